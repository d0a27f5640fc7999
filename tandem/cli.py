"""The ``tandem`` command: ``paper``, ``brain``, ``executor``, ``report`` and ``keygen``, plus the
testbed's ``bench``, ``chaos`` and ``fuzz``.

Each subcommand parses its own flags (pydantic-settings), so ``tandem brain --help`` lists every
brain setting with its default. The product's commands are imported here; the testbed's tools
(``testbed/``: the local exchange, the fault proxy, the flooder, the benchmark) are never imported
by the product — they register in the ``tandem.commands`` entry-point group (``pyproject.toml``)
and are loaded by name only when asked for.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["COMMANDS_GROUP", "main"]

COMMANDS_GROUP = "tandem.commands"
"""The entry-point group of commands beside the product (``tandem bench``, ``chaos``, ``fuzz``, ``parity``)."""

_USAGE = """usage: tandem COMMAND [flags]

commands:
  paper      run the executor and the brain as two processes over UDP, replay the data, print a report
  brain      run the brain alone (strategy, exits, breakers, tracker) against a running executor
  executor   run the executor alone (paper venue, journal) until SIGTERM
  report     re-render a run directory's report (report.png, report.html) from its CSV and JSON files
  keygen     write a fresh 32-byte bus secret file (hex, mode 0600); --if-missing keeps an existing one
  killswitch see (status) or clear (clear) the executor's kill switch: --run-dir DIR

testbed (local exchange and fault tools beside the product):
  bench      measure decision->confirmation round trips between two processes, against a bare UDP echo
  chaos      paper-trade through a fault proxy with process kills; prove exactly-once and equal ledgers
  fuzz       send hostile datagrams to a live brain and executor; check each is rejected, counted, harmless
  parity     trade the same bars replayed and streamed live by the local Binance; prove the trade logs equal

Settings come from TANDEM_* environment variables, a .env file and flags; `tandem COMMAND --help`.
"""


def _command(name: str) -> Callable[[list[str]], int] | None:
    if name == "paper":
        from .warm import ROLES, WarmChild

        warm = [WarmChild(role) for role in ROLES]  # importing while this process imports and checks (issue #17)
        from .paper import main as paper

        return lambda argv: paper(argv, warm=warm)
    elif name == "brain":
        from brain.main import main
    elif name == "executor":
        from executor.main import main
    elif name == "report":
        from .runreport import main
    elif name == "keygen":
        from .keygen import main
    elif name == "killswitch":
        from .killswitch import main
    else:
        from importlib.metadata import entry_points  # only for the testbed's commands: ~15 ms of start-up

        found = entry_points(group=COMMANDS_GROUP, name=name)
        return next(iter(found)).load() if found else None
    return main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_USAGE, end="")
        return 0 if argv else 2
    command = _command(argv[0])
    if command is None:
        print(f"tandem: unknown command {argv[0]!r}\n\n{_USAGE}", end="", file=sys.stderr)
        return 2
    return command(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
