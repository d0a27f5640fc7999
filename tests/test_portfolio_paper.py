"""``tandem paper --portfolio`` end to end (issue #16): the bundled four instruments, shorts and every exit
leg, as two real processes over UDP — byte-identical outputs run to run, every leg on both sides, the
per-instrument report and pictures, the ledger agreeing. (Chaos on the same portfolio:
``tests/test_chaos.py``.)"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from procs import free_port

from foundation.barcsv import BUNDLED_PORTFOLIO

TANDEM = str(Path(sys.executable).parent / "tandem")
PORTFOLIO = [
    "--portfolio", "--allow-short", "--strategy-params", '{"fast": 10, "slow": 30}', "--stop-loss-pct", "3",
    "--trailing-activation-pct", "4", "--trailing-pct", "2", "--partial-tp-pct", "2.5", "--breakeven-trigger-pct",
    "1.5", "--entry-fraction", "0.2", "--progress", "off", "--metrics-port", "-1", "--executor-metrics-port", "-1",
]  # fmt: skip
"""What ``make portfolio`` runs (the Makefile's PORTFOLIO_FLAGS), without the metrics ports."""


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    runs = []
    for n in (1, 2):
        run_dir = tmp_path_factory.mktemp("portfolio") / f"run{n}"
        # ports of its own: the defaults may be taken by another test file's run on the other worker
        ports = [f"--decision-addr=127.0.0.1:{free_port()}", f"--confirm-addr=127.0.0.1:{free_port()}"]
        proc = subprocess.run([TANDEM, "paper", *PORTFOLIO, *ports, "--run-dir", str(run_dir)], capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        runs.append(run_dir)
    return runs


def test_the_same_portfolio_gives_the_same_bytes(two_runs: list[Path]) -> None:
    first, second = two_runs
    for name in ("trades.csv", "equity.csv"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_every_instrument_trades_long_and_short_and_every_leg_fires(two_runs: list[Path]) -> None:
    run = two_runs[0]
    report = json.loads((run / "report.json").read_text())
    symbols = [sym for sym, _ in BUNDLED_PORTFOLIO]
    assert report["instruments"] == symbols and list(report["by_instrument"]) == symbols
    assert report["ledger_agrees"] is True
    rows = [line.split(",") for line in (run / "trades.csv").read_text().splitlines()[1:]]
    assert len(rows) == report["trades"] > 40
    for sym in symbols:
        mine = [r for r in rows if r[1] == sym]
        sides = Counter(r[2] for r in mine)
        assert sides["LONG"] > 0 and sides["SHORT"] > 0, (sym, sides)
        stats = report["by_instrument"][sym]
        assert stats["trades"] == len(mine) and stats["net_pnl"] == pytest.approx(sum(float(r[12]) for r in mine))
    reasons = {(r[2], r[14]) for r in rows}
    for leg in ("STOP_LOSS", "TRAILING_TAKE_PROFIT", "PARTIAL_TAKE_PROFIT", "BREAKEVEN"):  # HARD_SL, TRAIL, PARTIAL_TP, BREAKEVEN
        assert {(side, leg) for side in ("LONG", "SHORT")} & reasons, leg
    assert report["decisions_by_outcome"].get("ACCEPTED", 0) > 0  # the take-profits rested on the venue
    assert sum(report["by_instrument"][s]["trades"] for s in symbols) == report["trades"]
    assert report["total_return_pct"] == pytest.approx((report["final_equity"] / 10_000 - 1) * 100)


def test_a_close_time_is_one_row_with_every_instrument(two_runs: list[Path]) -> None:
    """499 bars of four instruments closing together: 499 rows, each instrument's close and position."""
    lines = (two_runs[0] / "equity.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[:5] == ["ts", "close", "equity", "drawdown_pct", "position"]
    assert header[5:] == [f"{k}:{sym}" for sym, _ in BUNDLED_PORTFOLIO[1:] for k in ("close", "position")]
    assert len(lines) == 1 + 499
    last = dict(zip(header, lines[-1].split(","), strict=True))
    report = json.loads((two_runs[0] / "report.json").read_text())
    held = {sym: float(last[f"position:{sym}"] if i else last["position"]) for i, (sym, _) in enumerate(BUNDLED_PORTFOLIO)}
    assert {s: q for s, q in held.items() if q} == report["open_positions"]


def test_the_report_has_a_picture_per_instrument(two_runs: list[Path]) -> None:
    run = two_runs[0]
    for sym, _ in BUNDLED_PORTFOLIO:
        png = (run / f"report-{sym.replace('/', '-')}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", png[16:24]) == (1600, 600)
    assert struct.unpack(">II", (run / "report.png").read_bytes()[16:24]) == (1600, 1000)
    page = (run / "report.html").read_text()
    assert "Instruments (4)" in page and page.count("data:image/png;base64,") == 5
    for sym, _ in BUNDLED_PORTFOLIO:
        assert f"<td>{sym}</td>" in page
