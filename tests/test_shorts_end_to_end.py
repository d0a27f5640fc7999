"""Shorts end to end (issue #16): ``tandem paper --allow-short`` as real processes over UDP, on the paper
perpetual and on the local Binance's USDⓈ-M perpetual through ccxt — a short's stop is a BUY above the
price on the exchange, the brain moves it down (BUY PROTECT) and it fires there; at the end the brain,
the executor's ledger and the exchange's account agree, with no stop left behind — and the refusals
of shorts on spot venues."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from tests.test_paper_cli import paper

TIGHT_EXITS = ("--stop-loss-pct", "0.25", "--trailing-activation-pct", "0.4", "--trailing-pct", "0.15",
               "--protect-step-bps", "5", "--max-consecutive-losses", "100")  # fmt: skip
"""Exits near the price on 1-minute bars, so that in 3,000 bars every exit rule fires on both sides."""
LEGS = ("--partial-tp-pct", "0.2", "--partial-tp-fraction", "0.5", "--breakeven-trigger-pct", "0.15")
"""The exit legs on (issue #16): a take-profit for half the position 0.2 % in profit, breakeven at 0.15 %."""
EVERY_EXIT = {"SIGNAL", "STOP_LOSS", "TRAILING_TAKE_PROFIT", "PARTIAL_TAKE_PROFIT", "BREAKEVEN"}


def _trades(run_dir: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run_dir / "trades.csv").open()))


def _check_short_rows(rows: list[dict[str, str]]) -> None:
    """Each short's gross P&L is (entry - exit) x quantity, each long's (exit - entry) x quantity."""
    for r in rows:
        entry, exit_, qty = float(r["entry_price"]), float(r["exit_price"]), float(r["quantity"])
        want = (entry - exit_) * qty if r["side"] == "SHORT" else (exit_ - entry) * qty
        assert float(r["gross_pnl"]) == pytest.approx(want, rel=1e-12, abs=1e-12), r


def test_paper_perpetual_trades_longs_and_shorts_and_the_ledger_agrees(tmp_path: Path) -> None:
    """The paper venue as a perpetual with the exit legs: SELL signals while flat open shorts, a signal
    exit reverses (close, then open the other side on the next bar); every exit rule and leg fires on
    both sides (a take-profit at its limit, as the bars traded through it); the report splits longs and
    shorts, the ledger agrees with the brain, and equity.csv's position goes negative while short."""
    proc = paper(tmp_path / "run", "--allow-short", *TIGHT_EXITS, *LEGS)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "agrees with the brain" in proc.stdout
    assert "    short " in proc.stdout and "    long " in proc.stdout
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    by_side = report["trades_by_side"]
    assert by_side["SHORT"]["trades"] > 10 and by_side["LONG"]["trades"] > 10
    assert by_side["SHORT"]["trades"] + by_side["LONG"]["trades"] == report["trades"]
    rows = _trades(tmp_path / "run")
    _check_short_rows(rows)
    shorts = [r for r in rows if r["side"] == "SHORT"]
    for side in ("LONG", "SHORT"):  # every leg fired on both sides
        assert {r["exit_reason"] for r in rows if r["side"] == side} == EVERY_EXIT, side
    for r in (r for r in rows if r["exit_reason"] == "PARTIAL_TAKE_PROFIT"):  # filled at the limit, as a bar traded through
        assert float(r["exit_slippage_bps"]) == 0.0 and float(r["quantity"]) > 0
    assert sum(float(r["net_pnl"]) for r in shorts) == pytest.approx(by_side["SHORT"]["net_pnl"], abs=1e-6)
    html = (tmp_path / "run" / "report.html").read_text()
    assert f"short {by_side['SHORT']['trades']:,} (wins {by_side['SHORT']['wins']}" in html  # the HTML's side row
    positions = [float(line.rsplit(",", 1)[1]) for line in (tmp_path / "run" / "equity.csv").read_text().splitlines()[1:]]
    assert min(positions) < 0 < max(positions)


def test_shorts_on_the_local_binance_perpetual_carry_a_buy_stop_that_moves_down_and_fires(tmp_path: Path) -> None:
    """USDⓈ-M through ccxt with shorts, exchange stops and the exit legs: each short entry gets a
    reduce-only BUY stop above its fill and a reduce-only BUY take-profit limit below; the brain moves
    the stop down (trailing, breakeven: BUY PROTECT decisions, ACCEPTED); stops and take-profits fill on
    the exchange; shorts exit by all four legs; at the end the brain, the ledger and the exchange
    account agree and no order is left behind."""
    run_dir = tmp_path / "usdm"
    proc = paper(run_dir, "--venue", "binance-emulator", "--exchange", "binanceusdm", "--allow-short", *TIGHT_EXITS,
                 *LEGS)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "exchange account       agrees" in proc.stdout and "agrees with the brain" in proc.stdout
    report = json.loads((run_dir / "report.json").read_text())
    rec = report["exchange_reconciliation"]
    assert rec["agrees"] and rec["orphans"] == []
    assert rec["exchange_position"] == pytest.approx(rec["ledger_position"], abs=1e-12)
    rows = _trades(run_dir)
    _check_short_rows(rows)
    assert sum(r["side"] == "SHORT" for r in rows) >= 10
    assert {r["exit_reason"] for r in rows if r["side"] == "SHORT"} == EVERY_EXIT  # a short with all four legs
    log = [json.loads(line) for line in (run_dir / "executor.log").read_text().splitlines() if line.startswith("{")]
    buy_stops = [e for e in log if e.get("event") == "stop_placed" and e.get("side") == "BUY"]
    short_entries = {r["entry_decision_id"] for r in rows if r["side"] == "SHORT"}  # a partial exit is a row too
    assert len(buy_stops) >= len(short_entries), "a short without its BUY stop"
    db = sqlite3.connect(run_dir / "brain.sqlite")
    protects = db.execute("SELECT side, stop_price, reference_price FROM decisions WHERE intent = 4").fetchall()
    db.close()
    buy_protects = [p for p in protects if p[0] == 1]
    assert buy_protects and all(stop > ref for _, stop, ref in buy_protects), "a short's stop is above the price"
    assert report["decisions_by_outcome"].get("ACCEPTED", 0) >= len(buy_protects) // 2
    account = json.loads((run_dir / "exchange-account.json").read_text())
    fired = [a for a in account["usdm"]["algo_orders"] if a["algoStatus"] == "FINISHED" and a["side"] == "BUY"]
    assert fired, "no short's stop fired on the exchange"
    tps = [o for o in account["usdm"]["orders"] if o["clientOrderId"].startswith("td") and "t" in o["clientOrderId"][10:11]]
    assert any(o["status"] == "FILLED" and o["side"] == "BUY" for o in tps), "no short's take-profit filled on the exchange"
    assert all(o["reduceOnly"] in (True, "true") for o in tps) and not [o for o in tps if o["status"] == "NEW"]


@pytest.mark.parametrize(("venue", "needle"), [
    (("--venue", "solana-emulator"), "solana-emulator swaps tokens"),
    (("--venue", "binance-emulator", "--exchange", "binance"), "exchange=binance is spot"),
])  # fmt: skip
def test_shorts_on_a_spot_venue_are_refused_before_anything_starts(tmp_path: Path, venue: tuple[str, ...],
                                                                   needle: str) -> None:  # fmt: skip
    """--allow-short with a spot venue: exit 2, a message naming the setting and the venue, no run dir."""
    proc = paper(tmp_path / "run", "--allow-short", *venue)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "allow_short" in proc.stderr and needle in proc.stderr
    assert not (tmp_path / "run").exists()
