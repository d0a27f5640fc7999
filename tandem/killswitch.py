"""``tandem killswitch``: see and clear the executor's kill switch (issue #14).

The belief controller latches the kill switch when it goes RED (the executor's ledger and the venue
disagree, or its evidence keeps failing): no entry is placed until an operator clears it. Exits and
protective stops keep working all along.

- ``tandem killswitch status --run-dir DIR``: the mode and the kill switch as the executor last
  journaled them, and every clear so far (read-only; the executor may be running).
- ``tandem killswitch clear --run-dir DIR``: asks the executor serving ``DIR`` to clear it, by
  writing ``DIR/kill-switch.clear`` (atomically; who asked and when). The executor takes the
  request at its next reconcile cycle: it journals it, logs ``kill_switch_cleared``, counts
  ``tandem_executor_kill_switch_clears_total`` and removes the file. With the executor stopped, the
  request waits for its next start. In compose: ``docker compose exec executor tandem killswitch
  clear --run-dir /data/live``.

Exit codes: 0 done; 2 a run directory without an executor journal, or one that cannot be written.
"""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

from executor.journal import JournalError, read_belief
from executor.main import outputs
from executor.reconciler import KILL_SWITCH_CLEAR_FILE
from foundation.atomicfile import write_atomic
from foundation.errors import ConfigError
from foundation.process import run_main

__all__ = ["main", "request_clear", "status"]


def _journal(run_dir: Path) -> Path:
    path = outputs(run_dir)["journal"]
    if not path.is_file():
        raise ConfigError(f"run_dir: {run_dir} holds no executor journal ({path.name})")
    return path


def status(run_dir: Path) -> dict[str, object]:
    """The belief state the executor last journaled, and the kill-switch clears so far.

    Raises:
        ConfigError: no executor journal in ``run_dir``, or one that cannot be read.
    """
    path = _journal(run_dir)
    try:
        state, clears = read_belief(path)
    except JournalError as exc:
        raise ConfigError(f"run_dir: {exc}") from None
    return {**(state or {"mode": "GREEN", "kill_switch": False}),
            "clear_requested": (run_dir / KILL_SWITCH_CLEAR_FILE).exists(), "clears": clears}  # fmt: skip


def request_clear(run_dir: Path) -> Path:
    """Write the clear request the executor takes at its next reconcile cycle; returns its path.

    Raises:
        ConfigError: no executor journal in ``run_dir``, or the request cannot be written.
    """
    _journal(run_dir)
    path = run_dir / KILL_SWITCH_CLEAR_FILE
    asked = {"by": f"{getpass.getuser()}@{socket.gethostname()}", "at": datetime.now(UTC).isoformat()}
    try:
        write_atomic(path, json.dumps(asked) + "\n")
    except OSError as exc:
        raise ConfigError(f"run_dir: cannot write {path}: {exc.strerror or exc}") from None
    return path


def main(argv: list[str] | None = None) -> int:
    """``tandem killswitch status|clear --run-dir DIR``."""
    parser = argparse.ArgumentParser(prog="tandem killswitch", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("status", "clear"))
    parser.add_argument("--run-dir", type=Path, required=True, help="the executor's run directory")
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)

    def body() -> int:
        if args.action == "clear":
            path = request_clear(args.run_dir)
            print(f"tandem killswitch: clear requested ({path}); the executor takes it at its next reconcile cycle",
                  file=sys.stderr)  # fmt: skip
            return 0
        print(json.dumps(status(args.run_dir), indent=2))
        return 0

    return run_main("tandem killswitch", body)
