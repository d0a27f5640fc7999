"""Fees paid in another asset, fee-only fills, and swap attempts in the executor journal (issue #15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.journal import Journal, JournalConflict
from executor.ledger import Fill, Ledger, LedgerError
from executor.venue.solana.records import SwapRecord, SwapState
from protocol import ExecutionConfirmation, Instrument, Intent, RejectCode, Side, Status, TradeDecision

MINT = Instrument.mint("So11111111111111111111111111111111111111112")


def test_a_fee_paid_in_lamports_is_charged_to_cash_and_kept_apart() -> None:
    """cash is the quote value after every fee; quote_balance is what the venue holds in quote; the
    lamports are summed exactly."""
    ledger = Ledger(1_000.0)
    ledger.apply(Fill(1, MINT, Side.BUY, 2.0, 100.0, 0.00075, 10, fee_native=5_000))
    assert ledger.cash == 1_000.0 - 200.0 - 0.00075
    assert ledger.quote_balance == 1_000.0 - 200.0
    assert (ledger.native_fees, ledger.native_fees_quote) == (5_000, 0.00075)
    ledger.apply(Fill(2, MINT, Side.SELL, 2.0, 110.0, 0.00075, 20, fee_native=5_000))
    assert ledger.position(MINT) == 0.0 and ledger.native_fees == 10_000
    assert ledger.quote_balance == pytest.approx(1_000.0 + 20.0)


def test_a_fee_only_fill_moves_cash_and_nothing_else() -> None:
    """A swap that landed and failed (qty 0, price 0): its fee leaves cash, no position moves."""
    ledger = Ledger(1_000.0)
    ledger.apply(Fill(1, MINT, Side.BUY, 0.0, 0.0, 0.001, 10, fee_native=6_000))
    assert (ledger.cash, ledger.positions(), ledger.native_fees, ledger.quote_balance) == (999.999, {}, 6_000, 1_000.0)


@pytest.mark.parametrize("fill", [
    Fill(1, MINT, Side.BUY, 1.0, 100.0, 0.001, 10, fee_native=-1),
    Fill(1, MINT, Side.BUY, 0.0, 0.0, float("nan"), 10, fee_native=1),
    Fill(1, MINT, Side.SELL, 1.0, 100.0, 0.001, 10, fee_native=5_000),  # nothing held
])  # fmt: skip
def test_a_bad_fill_leaves_the_ledger_unchanged(fill: Fill) -> None:
    ledger = Ledger(1_000.0)
    before = ledger.snapshot()
    with pytest.raises(LedgerError):
        ledger.apply(fill)
    assert ledger.snapshot() == before


def test_fee_only_and_native_fills_fold_back_from_the_journal(tmp_path: Path) -> None:
    """The fold over the journal's fills rebuilds the native sums: a REJECTED confirmation with a fee
    (protocol v5) is journaled with its fee-only fill."""
    j = Journal(tmp_path / "executor.sqlite", starting_cash=1_000.0, venue="paper")
    for did, (status, code, qty, price) in enumerate(
        [(Status.FILLED, RejectCode.NONE, 2.0, 100.0), (Status.REJECTED, RejectCode.SLIPPAGE_EXCEEDED, 0.0, 0.0)], 1
    ):
        d = TradeDecision(decision_id=did, instrument=MINT, side=Side.BUY, intent=Intent.OPEN, reason=1, quantity=2.0,
                          reference_price=100.0, max_slippage_bps=50, created_at_ns=1, expires_at_ns=2, market_ts_ns=1)  # fmt: skip
        j.record_decision(d, 1)
        conf = ExecutionConfirmation(decision_id=did, seq=did, instrument=MINT, side=Side.BUY, intent=Intent.OPEN,
                                     status=status, reject_code=code, executed_qty=qty, avg_price=price, fee=0.00075,
                                     executed_at_ns=5)  # fmt: skip
        j.record_outcome(conf, Fill(did, MINT, Side.BUY, qty, price, 0.00075, 5, fee_native=5_000), b"sig")
    rebuilt = Ledger.from_fills(1_000.0, j.fills())
    assert (rebuilt.native_fees, rebuilt.position(MINT)) == (10_000, 2.0)
    assert rebuilt.cash == 1_000.0 - 200.0 - 0.00075 - 0.00075
    j.close()


def test_swap_attempts_are_journaled_once_and_marked(tmp_path: Path) -> None:
    j = Journal(tmp_path / "executor.sqlite", starting_cash=1_000.0, venue="paper")
    first = SwapRecord("tdabc-1e", 1, "sig1", b"\x01\x02", 150, "in", "out", 100, 7, 42, 40)
    j.record_swap(first)
    with pytest.raises(JournalConflict):
        j.record_swap(first)  # the same attempt twice
    with pytest.raises(JournalConflict):
        j.record_swap(SwapRecord("tdabc-1e", 2, "sig1", b"\x03", 300, "in", "out", 100, 7, 43, 40))  # same signature
    j.mark_swap("sig1", SwapState.EXPIRED, "height 151 > 150, no status")
    j.record_swap(SwapRecord("tdabc-1e", 2, "sig2", b"\x03", 300, "in", "out", 100, 7, 43, 40))
    got = j.swaps("tdabc-1e")
    assert [(r.attempt, r.state, r.tx) for r in got] == [(1, SwapState.EXPIRED, b"\x01\x02"), (2, SwapState.SIGNED, b"\x03")]
    assert got[0].detail == "height 151 > 150, no status" and j.swaps("other") == []
    with pytest.raises(JournalConflict):
        j.mark_swap("nope", SwapState.LANDED)
    j.close()
