"""The brain app with exchange stops on, through the loopback harness: an entry filled above its
reference needs no PROTECT (the stop placed with it and the plan's are one level, computed from the
fill), and the run's decisions are re-derived identically on restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import SECRET, ScriptedStrategy

from brain.core import BrainConfig
from foundation.barcsv import bundled_path, load_bars
from protocol import Codec, Intent, Side, derive_key
from testbed.loopback import INSTRUMENT, start_pair

BARS = load_bars(bundled_path(), limit=400)
SCRIPT = {10: Side.BUY, 300: Side.SELL}
CONFIG = BrainConfig(INSTRUMENT, exchange_stops=True, protect_step_bps=25.0)


async def _run(tmp: Path) -> tuple[dict, list]:
    codec = Codec(derive_key(SECRET))
    brain, executor = await start_pair(tmp, BARS, ScriptedStrategy(SCRIPT), codec, config=CONFIG, slippage_bps=2.0)
    try:
        await brain.replay(BARS)
        return brain.journal.history(), list(brain.core.tracker.closed_trades)
    finally:
        brain.close()
        brain.journal.close()
        executor.close()
        executor.core.close()


async def test_entry_filled_above_its_reference_needs_no_protect_and_resumes(tmp_path: Path) -> None:
    """Entry filled 2 bps above its reference: the plan's stop is stop_for_fill of the fill (8 % below the
    fill), the level the executor places with the entry, so no PROTECT goes out on the entry's bar; a
    brain restarted on the journal re-derives every decision identically."""
    history, trades = await _run(tmp_path)
    decisions = sorted(history.values(), key=lambda j: j.decision.decision_id)
    entry = decisions[0]
    assert entry.decision.intent is Intent.OPEN and entry.confirmation is not None
    fill = entry.confirmation.avg_price
    assert fill > entry.decision.reference_price  # slippage: the fill is above the reference
    assert not [j for j in decisions if j.bar_index == entry.bar_index and j.decision.intent is Intent.PROTECT]
    assert trades and trades[0].entry_price == fill
    assert entry.decision.stop_for_fill(fill) == pytest.approx(fill * 0.92, rel=1e-12)
    assert all(j.confirmation is not None for j in decisions)
    # a second brain on the same journal (the executor answers duplicates from its journal) re-derives it all
    again, trades_again = await _run(tmp_path)
    assert again.keys() == history.keys() and trades_again == trades
