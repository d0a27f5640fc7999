"""The brain app with exchange stops on, through the loopback harness: the PROTECT due at once after
an entry filled above its reference is sent on the entry's bar, journaled, and re-derived on restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import SECRET, ScriptedStrategy

from brain.core import BrainConfig
from protocol import Codec, Intent, Side, Status, derive_key
from tandem.loopback import INSTRUMENT, start_pair
from tandem.marketdata import bundled_path, load_bars

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


async def test_protect_due_at_once_is_sent_on_the_entry_bar_and_resumed(tmp_path: Path) -> None:
    """Entry filled 2 bps above its reference → a STOP_LOSS PROTECT at the fill's plan stop, journaled on
    the entry's bar and answered; a brain restarted on the journal re-derives every decision identically."""
    history, trades = await _run(tmp_path)
    decisions = sorted(history.values(), key=lambda j: j.decision.decision_id)
    entry, protect = decisions[0], decisions[1]
    assert entry.decision.intent is Intent.OPEN and entry.confirmation is not None
    fill = entry.confirmation.avg_price
    assert fill > entry.decision.reference_price  # slippage: the plan from the fill has a higher stop
    assert protect.decision.intent is Intent.PROTECT and protect.bar_index == entry.bar_index
    assert protect.decision.stop_price == pytest.approx(fill * 0.92)
    assert protect.decision.reference_price == fill and protect.decision.quantity == entry.decision.quantity
    assert protect.confirmation is not None and protect.confirmation.status in (Status.ACCEPTED, Status.REJECTED)
    assert all(j.confirmation is not None for j in decisions)
    # a second brain on the same journal (the executor answers duplicates from its journal) re-derives it all
    again, trades_again = await _run(tmp_path)
    assert again.keys() == history.keys() and trades_again == trades
