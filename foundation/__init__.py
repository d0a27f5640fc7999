"""The foundation both tandem processes stand on: nothing here knows about trading.

Layer 2 of 4 (``protocol`` → ``foundation`` → ``brain`` | ``executor`` → ``tandem``; imports point
down only, checked by the import-linter contracts in ``pyproject.toml``):

- ``settings``: the settings base class both processes share, and how settings are loaded;
- ``errors``: ``ConfigError`` (exit 2) and ``StorageFault`` (exit 3);
- ``runtime``: the event loop (uvloop), ``host:port`` parsing, setting errors as one line each;
- ``bussecret``: the bus secret, made, written, read, checked, and made into the bus codec;
- ``logs``: structlog, a sink that cannot raise, rate-limited lines;
- ``metricsserver``: the Prometheus ``/metrics`` endpoint on the process's loop;
- ``process``: how a process starts (ports bound and inputs checked first, then the run directory
  locked) and ends (exit codes, signals);
- ``shell``: the asyncio shell around each side's sans-IO link (endpoint, timer, drop accounting);
- ``ports``, ``rundir``, ``journalfile``, ``atomicfile``: binding before start, run-directory
  checks and locks, SQLite journal files, atomic whole-file writes;
- ``bars`` (the market-data model) and ``barcsv`` (recorded bars from a CSV, and the bundled month
  in ``data/``);
- ``exchange_session``: reaching an exchange's API at a local address through the real ccxt client.
"""
