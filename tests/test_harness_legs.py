"""One test per exit leg through the loopback UDP harness (issue #16): a short opened on a scripted
signal over real sockets, real journals and the real bundled bars, closed by each leg in turn —
HARD_SL, TRAIL, PARTIAL_TP (the resting limit filled at its limit) and BREAKEVEN. Each ends with the
brain's tracker and the executor's ledger in agreement and no leg left in the executor's journal.

The bundled month's bars 46–65 fall from 46,438 to 46,198 (bar 58) and rise back to 46,444 (bar 65):
the short is decided on bar 45's close and fills at bar 46's open.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import INSTRUMENT, ScriptedStrategy, start_harness

from brain.core import BrainConfig
from brain.exits import ExitRules
from foundation.barcsv import bundled_path, load_bars
from protocol import DecisionReason, Side

BARS = load_bars(bundled_path(), limit=120)
OFF = {"stop_loss_pct": 5.0, "trailing_activation_pct": 50.0}  # the legs a test does not exercise, far away


async def _short_closed_by(tmp_path: Path, **rules: float) -> tuple[list, object]:
    h = await start_harness(tmp_path, BARS, ScriptedStrategy({45: Side.SELL}), exit_rules=ExitRules(**(OFF | rules)),
                            config=BrainConfig(INSTRUMENT, allow_short=True))  # fmt: skip
    try:
        await h.brain.replay(BARS)
        tracker, ledger = h.brain.core.tracker, h.executor.core.ledger
        assert tracker.cash == pytest.approx(ledger.cash, abs=1e-9)
        assert {str(i): p.signed_quantity for i, p in tracker.positions.items()} == {
            str(i): p.qty for i, p in ledger.positions().items()}
        assert h.executor.core.journal.take_profits() == {} or tracker.positions
        return tracker.closed_trades, h
    finally:
        h.close()


async def test_hard_sl_closes_the_short_when_a_close_rises_through_its_stop(tmp_path: Path) -> None:
    """HARD_SL: the stop 0.01 % above the fill; bar 65 closes above it: a BUY/CLOSE, STOP_LOSS."""
    trades, _ = await _short_closed_by(tmp_path, stop_loss_pct=0.01)
    [t] = trades
    assert (t.side, t.exit_reason) == (Side.SELL, DecisionReason.STOP_LOSS)
    assert t.closed_at_ns == BARS.ts_ms[66] * 1_000_000 and t.gross_pnl < 0


async def test_trail_follows_the_lowest_close_and_closes_the_short_on_the_way_back(tmp_path: Path) -> None:
    """TRAIL: active from 0.3 % below the fill (bar 54), trailing 0.1 % above the lowest close (46,198 at
    bar 58); bar 60's close (46,247) is above 46,244.2: TRAILING_TAKE_PROFIT, a gain."""
    trades, _ = await _short_closed_by(tmp_path, trailing_activation_pct=0.3, trailing_pct=0.1)
    [t] = trades
    assert (t.side, t.exit_reason) == (Side.SELL, DecisionReason.TRAILING_TAKE_PROFIT)
    assert t.closed_at_ns == BARS.ts_ms[61] * 1_000_000 and t.gross_pnl > 0


async def test_partial_tp_fills_half_the_short_at_its_limit(tmp_path: Path) -> None:
    """PARTIAL_TP: a BUY limit for half the short 0.2 % below the fill rests on the paper venue; bar 53 trades
    through it; the brain's report books half at exactly the limit; the rest closes later."""
    trades, _ = await _short_closed_by(tmp_path, partial_tp_pct=0.2, partial_tp_fraction=0.5, stop_loss_pct=0.01)
    tp = [t for t in trades if t.exit_reason is DecisionReason.PARTIAL_TAKE_PROFIT]
    assert len(tp) == 1 and tp[0].side is Side.SELL
    assert tp[0].exit_price == pytest.approx(tp[0].entry_price * (1 - 0.002)) and tp[0].exit_slippage_bps == 0.0
    assert tp[0].quantity == pytest.approx(sum(t.quantity for t in trades) / 2)


async def test_breakeven_moves_the_stop_to_the_entry_minus_fees_and_closes_there(tmp_path: Path) -> None:
    """BREAKEVEN: at 0.1 % in profit (bar 50's close) the short's stop moves down to the entry minus twice
    the entry fee a unit; bar 51's close rises above it: BUY/CLOSE, BREAKEVEN, net of fees about nil."""
    trades, _ = await _short_closed_by(tmp_path, breakeven_trigger_pct=0.1)
    [t] = trades
    assert (t.side, t.exit_reason) == (Side.SELL, DecisionReason.BREAKEVEN)
    assert t.closed_at_ns == BARS.ts_ms[52] * 1_000_000
    assert abs(t.net_pnl) < t.fees  # closed near breakeven: what it made or lost is within its fees
