"""Small builders for brain tests: confirmations, decisions' answers and bars.

Times are Unix ns; ``T0`` is a UTC midnight (2023-11-15 00:00Z) so day-boundary tests read plainly.
"""

from __future__ import annotations

import dataclasses

from foundation.bars import Bar
from protocol import ExecutionConfirmation, Instrument, Intent, RejectCode, Side, Status, TradeDecision

BTC = Instrument.symbol("BTC-PERP")
ETH = Instrument.symbol("ETH-PERP")
MS = 1_000_000
MIN = 60_000 * MS
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = 1_700_006_400 * 1_000_000_000  # a UTC midnight, ns

_REJECT_CODES = {Status.REJECTED: RejectCode.GUARD, Status.EXPIRED: RejectCode.EXPIRED,
                 Status.FAILED: RejectCode.VENUE_ERROR}  # fmt: skip


def filled(
    decision_id: int,
    side: Side,
    qty: float,
    price: float,
    at_ns: int = T0,
    *,
    fee: float = 0.0,
    instrument: Instrument = BTC,
    partial: bool = False,
    seq: int | None = None,
    intent: Intent | None = None,
) -> ExecutionConfirmation:
    """An executed confirmation (FILLED, or PARTIALLY_FILLED with ``partial``); ``intent`` defaults
    to OPEN for a buy, CLOSE for a sell."""
    return ExecutionConfirmation(
        decision_id=decision_id,
        seq=seq or decision_id,
        instrument=instrument,
        side=side,
        intent=intent or (Intent.OPEN if side is Side.BUY else Intent.CLOSE),
        status=Status.PARTIALLY_FILLED if partial else Status.FILLED,
        reject_code=RejectCode.SLIPPAGE_EXCEEDED if partial else RejectCode.NONE,
        executed_qty=qty,
        avg_price=price,
        fee=fee,
        executed_at_ns=at_ns,
    )


def failed(
    decision_id: int,
    side: Side = Side.BUY,
    status: Status = Status.REJECTED,
    at_ns: int = T0,
    *,
    instrument: Instrument = BTC,
    seq: int | None = None,
    fee: float = 0.0,
) -> ExecutionConfirmation:
    """A confirmation that nothing executed (REJECTED, EXPIRED or FAILED, zero quantity; ``fee``: a
    failed execution's, REJECTED and FAILED only)."""
    return ExecutionConfirmation(
        decision_id=decision_id,
        seq=seq or decision_id,
        instrument=instrument,
        side=side,
        intent=Intent.OPEN if side is Side.BUY else Intent.CLOSE,
        status=status,
        reject_code=_REJECT_CODES[status],
        executed_qty=0.0,
        avg_price=0.0,
        fee=fee,
        executed_at_ns=at_ns,
    )


def fill(
    decision: TradeDecision, price: float | None = None, *, fee: float = 0.0, qty: float | None = None
) -> ExecutionConfirmation:
    """The executor's FILLED answer to ``decision``, at its reference price unless ``price``; with
    ``qty`` below the decision's quantity, PARTIALLY_FILLED for that quantity."""
    partial = qty is not None and qty < decision.quantity
    return filled(decision.decision_id, decision.side, decision.quantity if qty is None else qty,
                  decision.reference_price if price is None else price, decision.market_ts_ns,
                  fee=fee, instrument=decision.instrument, partial=partial, intent=decision.intent)  # fmt: skip


def accept(decision: TradeDecision) -> ExecutionConfirmation:
    """The executor's ACCEPTED answer to a PROTECT decision: the stop moved, nothing traded."""
    return ExecutionConfirmation(
        decision_id=decision.decision_id, seq=decision.decision_id, instrument=decision.instrument,
        side=decision.side, intent=decision.intent, status=Status.ACCEPTED, reject_code=RejectCode.NONE,
        executed_qty=0.0, avg_price=0.0, fee=0.0, executed_at_ns=decision.market_ts_ns,
    )  # fmt: skip


def refuse(decision: TradeDecision, status: Status = Status.REJECTED) -> ExecutionConfirmation:
    """The executor's not-executed answer to ``decision`` (its intent echoed)."""
    conf = failed(decision.decision_id, decision.side, status, decision.market_ts_ns, instrument=decision.instrument)
    return dataclasses.replace(conf, intent=decision.intent)


def bar(close: float, ts_ms: int = T0 // MS) -> Bar:
    """A flat bar (open = high = low = close) with volume 1."""
    return Bar(ts_ms, close, close, close, close, 1.0)


class Scripted:
    """A strategy that returns whatever signal the test programmed for the next bar."""

    def __init__(self) -> None:
        self.next: Side | None = None
        self.seen: list[Bar] = []

    def on_bar(self, b: Bar) -> Side | None:
        self.seen.append(b)
        signal, self.next = self.next, None
        return signal
