"""Issue #10 §1, §2, §4, §5, §6 end to end: ``tandem paper`` (the brain and the executor as real
processes over UDP) on small bar files shaped like each case that broke a stated rule.

* calendar-month bars (28- to 31-day spacing against a modal 31 days);
* real daily bars with weekend and holiday gaps (``tests/data/binance_BTC-USDT_1d_weekdays.csv``);
* a gap down straight through a stop, and through a time stop;
* a token priced around 1e-6;
* 5-decimal FX hourly bars with a weekend gap.

For each: the fill bar and price (the next bar's open, whatever the spacing), the exit executing
whatever its slippage, the stop level, the equity rows (a row at *t* holds exactly the fills at or
before *t*) and the printed precision (every number reads back to the exact value). Signals come
from ``tests/scripted_strategy.py``; fees and paper slippage are 0 so that a fill is exactly an open.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_paper_cli import free_udp_port

TANDEM = str(Path(sys.executable).parent / "tandem")
TESTS = Path(__file__).parent
DAILY = TESTS / "data" / "binance_BTC-USDT_1d_weekdays.csv"
CASH = 10_000.0
HEADER = "timestamp_ms,open,high,low,close,volume"


@dataclass
class Run:
    proc: subprocess.CompletedProcess[str]
    report: dict[str, Any]
    trades: list[dict[str, str]]
    equity: list[dict[str, str]]
    bars: list[tuple[int, float, float, float, float]]  # ts_ms, open, high, low, close from the data file


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_bars(path: Path, rows: list[tuple[str, str, str, str, str]]) -> Path:
    """``rows`` of (ISO open time UTC, open, high, low, close) as decimal strings; volume 1."""
    path.write_text(HEADER + "\n" + "".join(f"{_ms(t)},{o},{h},{lo},{c},1\n" for t, o, h, lo, c in rows))
    return path


def read_bars(path: Path) -> list[tuple[int, float, float, float, float]]:
    with path.open() as fh:
        return [(int(r["timestamp_ms"]), float(r["open"]), float(r["high"]), float(r["low"]), float(r["close"]))
                for r in csv.DictReader(fh)]  # fmt: skip


def paper(tmp: Path, data: Path, *flags: str, buys: list[int] = (), sells: list[int] = (),  # type: ignore[assignment]
          strategy: bool = True) -> Run:  # fmt: skip
    """Run ``tandem paper`` on ``data`` with the scripted strategy; the run must succeed."""
    run_dir = tmp / "run"
    params = json.dumps({"buys": list(buys), "sells": list(sells)})
    args = [TANDEM, "paper", "--data", str(data), "--run-dir", str(run_dir), "--fee-bps", "0", "--slippage-bps", "0",
            "--decision-addr", f"127.0.0.1:{free_udp_port()}", "--confirm-addr", f"127.0.0.1:{free_udp_port()}",
            "--metrics-port", "-1", "--executor-metrics-port", "-1", "--progress", "off", *flags]  # fmt: skip
    if strategy:
        args += ["--strategy", "scripted_strategy:ScriptedSignals", "--strategy-params", params]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    with (run_dir / "trades.csv").open() as fh:
        trades = list(csv.DictReader(fh))
    with (run_dir / "equity.csv").open() as fh:
        equity = list(csv.DictReader(fh))
    return Run(proc, json.loads((run_dir / "report.json").read_text()), trades, equity, read_bars(data))


def assert_rows_honest(run: Run) -> None:
    """One equity row per bar, stamped at the bar's close, whose position is exactly that of the trades
    open at that time: opened (filled) at or before it, not yet closed at or before it (§4)."""
    assert len(run.equity) == len(run.bars) and run.report["open_positions"] == {}
    for row in run.equity:
        ts = row["ts"]
        held = sum(float(t["quantity"]) for t in run.trades if t["opened_at"] <= ts < t["closed_at"])
        assert float(row["position"]) == held, row


def next_open(run: Run, ts_text: str) -> tuple[int, float]:
    """(index, open) of the first bar opening at or after ``ts_text``."""
    ms = _ms(ts_text.rstrip("Z"))
    return next((i, b[1]) for i, b in enumerate(run.bars) if b[0] >= ms)


# -- §2: calendar months --------------------------------------------------------------------------

MONTHS = [
    ("2019-01-01", "10000", "10500", "9800", "10200"),
    ("2019-02-01", "10000", "10100", "8900", "9000"),  # 28 days: closes below the stop (9200)
    ("2019-03-01", "8800", "9000", "8500", "8700"),  # the stop-loss must fill here, at 8800
    ("2019-04-01", "10500", "11000", "10400", "10900"),  # the old rule skipped to here: a "winning" stop
    ("2019-05-01", "10900", "11200", "10800", "11000"),
    ("2019-06-01", "11000", "11500", "10900", "11400"),
    ("2019-07-01", "11400", "11600", "11000", "11100"),
    ("2019-08-01", "11100", "11300", "10800", "11200"),
]


def test_calendar_month_bars_fill_at_the_next_open_and_the_stop_executes(tmp_path: Path) -> None:
    """Monthly bars (modal spacing 31 days): the entry decided on January fills at February's open; the
    stop-loss decided on February's close (28 days later) fills at March's open — not April's — at
    8800, 222 bps below its reference, and executes (flagged in the trade log); rows are honest."""
    run = paper(tmp_path, write_bars(tmp_path / "months.csv", MONTHS), buys=[0])
    [t] = run.trades
    assert (t["opened_at"], t["closed_at"], t["exit_reason"]) == ("2019-02-01T00:00:00Z", "2019-03-01T00:00:00Z",
                                                                   "STOP_LOSS")  # fmt: skip
    assert (float(t["entry_price"]), float(t["exit_price"])) == (10000.0, 8800.0)
    assert float(t["exit_reference_price"]) == 9000.0
    assert float(t["exit_slippage_bps"]) == pytest.approx((9000 - 8800) / 9000 * 1e4)
    assert float(t["net_pnl"]) < 0 and run.report["decisions_by_outcome"] == {"FILLED": 2}
    # equity rows are stamped at each month's close: the next month's open
    assert [r["ts"] for r in run.equity[:3]] == ["2019-02-01T00:00:00Z", "2019-03-01T00:00:00Z", "2019-04-01T00:00:00Z"]
    qty = float(t["quantity"])
    assert qty == 0.05 * CASH / 10200.0
    assert float(run.equity[1]["equity"]) == pytest.approx(CASH + qty * (8800.0 - 10000.0), rel=1e-12)
    assert_rows_honest(run)


# -- §1, §2, §4: real daily bars with weekends and holidays ----------------------------------------


def test_daily_bars_with_gaps_time_stop_through_a_holiday_gap_and_friday_entry(tmp_path: Path) -> None:
    """Real daily BTC bars without weekends and holidays. Trade 1: bought on Jan 2's close, filled at
    Jan 3's open; the 9.5-day time stop fires on Friday Jan 12's close and fills at Tuesday Jan 16's
    open (Monday was a holiday), 63 bps below its reference — executed, not refused. Friday Jan 12's
    row still holds the position (the fill is after the gap). Trade 2: bought on Friday Jan 19's
    close, filled at Monday Jan 22's open; Friday's row is flat."""
    run = paper(tmp_path, DAILY, "--time-stop-days", "9.5", buys=[0, 12], sells=[15])
    bars = run.bars
    assert [_iso(bars[i][0]) for i in (0, 1, 8, 9, 12, 13)] == [
        "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z", "2024-01-12T00:00:00Z", "2024-01-16T00:00:00Z",
        "2024-01-19T00:00:00Z", "2024-01-22T00:00:00Z"]  # fmt: skip
    t1, t2 = run.trades
    assert (float(t1["entry_price"]), t1["opened_at"]) == (bars[1][1], "2024-01-03T00:00:00Z")
    assert (t1["exit_reason"], float(t1["exit_price"]), t1["closed_at"]) == ("TIME_STOP", bars[9][1],
                                                                              "2024-01-16T00:00:00Z")  # fmt: skip
    assert float(t1["exit_reference_price"]) == bars[8][4]
    assert float(t1["exit_slippage_bps"]) == pytest.approx((bars[8][4] - bars[9][1]) / bars[8][4] * 1e4)
    assert float(t1["exit_slippage_bps"]) > 50  # beyond the default max_slippage_bps: it executed anyway
    assert (float(t2["entry_price"]), t2["opened_at"]) == (bars[13][1], "2024-01-22T00:00:00Z")
    assert (t2["exit_reason"], float(t2["exit_price"])) == ("SIGNAL", bars[16][1])
    rows = {r["ts"]: r for r in run.equity}
    friday12, friday19 = rows["2024-01-13T00:00:00Z"], rows["2024-01-20T00:00:00Z"]
    assert float(friday12["position"]) == float(t1["quantity"])  # the exit filled on Tuesday, after this row
    assert float(friday19["position"]) == 0.0  # the entry filled on Monday, after this row
    assert float(rows["2024-01-23T00:00:00Z"]["position"]) == float(t2["quantity"])
    assert_rows_honest(run)


# -- §1, §6: a gap down straight through a stop; a signal on the exit's bar ------------------------

GAP_THROUGH_STOP = [
    ("2024-03-04", "100", "101", "99", "100"),  # Mon: BUY
    ("2024-03-05", "100", "101", "99", "99"),  # entry fills at 100; stop 92
    ("2024-03-06", "99", "99.5", "97.5", "98"),
    ("2024-03-07", "98", "98.5", "96.5", "97"),
    ("2024-03-08", "97", "97", "95", "96"),  # Fri
    ("2024-03-11", "85", "86", "80", "82"),  # Mon: gaps straight through the stop; closes at 82 -> STOP_LOSS
    ("2024-03-12", "80", "81", "78", "79"),  # the exit fills here, at 80
    ("2024-03-13", "79", "80", "78", "79.5"),
]


def test_gap_down_through_the_stop_executes_and_a_same_bar_signal_is_counted(tmp_path: Path) -> None:
    """Monday opens at 85 and closes at 82, through the 92 stop: the stop-loss exit fills at Tuesday's
    open, 80, 244 bps below its 82 reference, and executes. The strategy's SELL on that same Monday is
    skipped as awaiting_confirmation and counted (README)."""
    run = paper(tmp_path, write_bars(tmp_path / "gap.csv", GAP_THROUGH_STOP), buys=[0], sells=[5])
    [t] = run.trades
    assert (float(t["entry_price"]), float(t["exit_price"]), t["exit_reason"]) == (100.0, 80.0, "STOP_LOSS")
    assert t["closed_at"] == "2024-03-12T00:00:00Z"
    assert float(t["exit_slippage_bps"]) == pytest.approx((82 - 80) / 82 * 1e4)
    assert run.report["signals_skipped"] == {"awaiting_confirmation": 1}
    assert run.report["decisions_by_outcome"] == {"FILLED": 2}
    assert_rows_honest(run)


# -- §5: precision ---------------------------------------------------------------------------------

MICRO = [
    ("2024-01-01T00:00", "0.000001234567", "0.000001250001", "0.000001230001", "0.000001240009"),
    ("2024-01-01T01:00", "0.000001240009", "0.000001260003", "0.000001239999", "0.000001251113"),
    ("2024-01-01T02:00", "0.000001251113", "0.000001270007", "0.000001250001", "0.000001263337"),
    ("2024-01-01T03:00", "0.000001263337", "0.000001280009", "0.000001260001", "0.000001277771"),
    ("2024-01-01T04:00", "0.000001277771", "0.000001290001", "0.000001270003", "0.000001281119"),
    ("2024-01-01T05:00", "0.000001281119", "0.000001299999", "0.000001280007", "0.000001291113"),
]


def test_prices_around_a_millionth_print_exactly(tmp_path: Path) -> None:
    """A token priced around 1.2e-6: every price, quantity and amount in trades.csv and equity.csv reads
    back to the exact value (entry and exit are the exact opens, the closes the exact closes)."""
    run = paper(tmp_path, write_bars(tmp_path / "micro.csv", MICRO), buys=[0], sells=[3])
    [t] = run.trades
    assert float(t["entry_price"]) == float(MICRO[1][1]) and float(t["exit_price"]) == float(MICRO[4][1])
    qty = float(t["quantity"])
    assert qty == 0.05 * CASH / float(MICRO[0][4])
    assert float(t["gross_pnl"]) == (float(MICRO[4][1]) - float(MICRO[1][1])) * qty
    assert [float(r["close"]) for r in run.equity] == [float(row[4]) for row in MICRO]
    assert all(len(r["close"]) > 6 for r in run.equity), "a price lost its digits"
    assert_rows_honest(run)


FX = [  # EURUSD-shaped hourly bars, 5 decimals, across a weekend (Friday 21:00 -> Sunday 22:00 UTC)
    ("2024-03-08T19:00", "1.09421", "1.09455", "1.09398", "1.09437"),
    ("2024-03-08T20:00", "1.09437", "1.09466", "1.09401", "1.09413"),
    ("2024-03-08T21:00", "1.09413", "1.09431", "1.09372", "1.09389"),  # Friday's last bar: BUY
    ("2024-03-10T22:00", "1.09352", "1.09378", "1.09311", "1.09367"),  # Sunday's first: the entry fills here
    ("2024-03-10T23:00", "1.09367", "1.09394", "1.09341", "1.09381"),
    ("2024-03-11T00:00", "1.09381", "1.09419", "1.09366", "1.09402"),  # SELL
    ("2024-03-11T01:00", "1.09402", "1.09433", "1.09387", "1.09417"),  # the exit fills here
    ("2024-03-11T02:00", "1.09417", "1.09428", "1.09379", "1.09394"),
]


def test_fx_bars_keep_their_fifth_decimal_and_the_weekend_entry_row_is_flat(tmp_path: Path) -> None:
    """5-decimal FX bars: prices print with their 5th decimal (exactly); the entry decided on Friday's
    last bar fills at Sunday 22:00's open, and Friday's row (22:00 Friday) is still flat."""
    run = paper(tmp_path, write_bars(tmp_path / "fx.csv", FX), buys=[2], sells=[5])
    [t] = run.trades
    assert (t["opened_at"], float(t["entry_price"])) == ("2024-03-10T22:00:00Z", 1.09352)
    assert (t["closed_at"], float(t["exit_price"])) == ("2024-03-11T01:00:00Z", 1.09402)
    assert [r["close"] for r in run.equity] == [row[4] for row in FX]  # the shortest exact text: as in the file
    rows = {r["ts"]: r for r in run.equity}
    assert float(rows["2024-03-08T22:00:00Z"]["position"]) == 0.0
    assert float(rows["2024-03-10T23:00:00Z"]["position"]) == float(t["quantity"])
    assert_rows_honest(run)


# -- §6: data too short for the warm-up ------------------------------------------------------------


def test_data_too_short_for_the_warm_up_is_warned_with_the_numbers(tmp_path: Path) -> None:
    """156 bars for the default EMA 50/200: the run succeeds, trades nothing, and says so on stderr, in
    the printed report and in report.json, with both numbers."""
    data = tmp_path / "short.csv"
    src = (TESTS / "data" / "binance_BTC-USDT_1d_weekdays.csv").read_text().splitlines()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [HEADER]
    for i in range(156):  # the real daily closes, re-stamped hourly and repeated: only the count matters
        fields = src[1 + i % 56].split(",")
        rows.append(",".join([str(int((start + timedelta(hours=i)).timestamp() * 1000)), *fields[1:]]))
    data.write_text("\n".join(rows) + "\n")
    run = paper(tmp_path, data, strategy=False)
    assert run.report["trades"] == 0
    expected = "the data has 156 bars but strategy brain.strategy:EmaCrossover needs 200 bars of warm-up"
    assert expected in run.proc.stderr
    assert any(expected in w for w in run.report["warnings"])
    assert "warning" in run.proc.stdout.lower() and "156 bars" in run.proc.stdout
