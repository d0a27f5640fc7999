"""The testbed: local exchanges and fault tools that drive tandem from outside.

It sits beside the product and is never imported by it (an import-linter contract in
``pyproject.toml``); it reaches the command line through the ``tandem.commands`` and
``tandem.local_venues`` entry points instead.

- ``emulator/``: a local Binance (spot and USDⓈ-M) the real ccxt client reaches over HTTPS on
  loopback (``python -m testbed.emulator``); ``emulated``: it as a third process for
  ``tandem paper --venue binance-emulator``;
- ``chaos`` (with ``proxy``, the seeded fault proxy, ``verdict``, the checks, and ``flood``, the
  keyless flooder): ``tandem chaos``;
- ``fuzz`` (with ``hostile``, the datagram generator, and ``loopback``, both apps in one process):
  ``tandem fuzz``;
- ``bench``: ``tandem bench``.
"""
