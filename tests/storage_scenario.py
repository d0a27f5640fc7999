"""A full disk, for tests/test_storage_faults.py: run inside a private mount namespace
(``unshare --mount``, with ``--map-root-user`` when not root) where ``MOUNT`` is a small tmpfs.

``python storage_scenario.py MOUNT OUT -- PAPER_ARGS...``: fill the tmpfs with a ballast file
leaving ``HEADROOM`` bytes, run ``tandem paper --run-dir MOUNT/run PAPER_ARGS``, delete the ballast,
run it again on the same run dir, copy ``trades.csv`` and ``equity.csv`` to ``OUT`` and print one
JSON line with both runs' exit codes, stderr tails and the run dir's listing after the first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HEADROOM = int(os.environ.get("HEADROOM", "400000"))


def main() -> None:
    mount, out, rest = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[sys.argv.index("--") + 1:]
    ballast = mount / "ballast"
    with ballast.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    os.truncate(ballast, max(0, ballast.stat().st_size - HEADROOM))
    run = mount / "run"
    cmd = [sys.executable, "-m", "tandem.cli", "paper", f"--run-dir={run}", *rest]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    listing = {p.name: p.stat().st_size for p in run.iterdir()} if run.exists() else {}
    ballast.unlink()
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("trades.csv", "equity.csv", "brain.log", "executor.log"):
        if (run / name).exists():
            shutil.copy(run / name, out / name)
    print(json.dumps({"first": {"rc": first.returncode, "stderr": first.stderr[:600] + " ... " + first.stderr[-2000:]},
                      "second": {"rc": second.returncode, "stderr": second.stderr[-3000:], "stdout": second.stdout},
                      "listing_after_first": listing}))  # fmt: skip


if __name__ == "__main__":
    main()
