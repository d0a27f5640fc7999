"""The bundled month paper-traded with the defaults gives the golden trades and equity curve.

Determinism is a product property (DESIGN.md: a replay is reproducible), and the month is where a
last-ulp change in sizing shows: protocol v4's posture once rescaled every GREEN entry by
``x * 10000 / 10000``, which moved two quantities by one ulp on 22-23 January. How to regenerate the
golden files when trading is meant to change: ``tests/golden/README.md``.
"""

from __future__ import annotations

import difflib
import hashlib
import subprocess
import sys
from pathlib import Path

import procs

GOLDEN = Path(__file__).parent / "golden"
TANDEM = str(Path(sys.executable).parent / "tandem")


def _free_udp_port() -> int:
    return procs.free_port()


def test_the_bundled_month_trades_exactly_the_golden_trades(tmp_path: Path) -> None:
    proc = subprocess.run(
        [TANDEM, "paper", "--run-dir", str(tmp_path), "--progress", "off",
         "--decision-addr", f"127.0.0.1:{_free_udp_port()}", "--confirm-addr", f"127.0.0.1:{_free_udp_port()}",
         "--metrics-port", "-1", "--executor-metrics-port", "-1"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    want = (GOLDEN / "paper_month_trades.csv").read_text()
    got = (tmp_path / "trades.csv").read_text()
    diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True), "golden", "this run", n=0))
    assert got == want, f"trades.csv moved from the golden file:\n{diff[:4000]}"
    equity = hashlib.sha256((tmp_path / "equity.csv").read_bytes()).hexdigest()
    assert equity == (GOLDEN / "paper_month_equity.sha256").read_text().strip(), "equity.csv moved from the golden"
