"""Paper venue: fills a decision against recorded bars, without look-ahead (DESIGN.md invariant 6).

:meth:`PaperVenue.quote` is a pure function of the decision, the bars and the ledger; it never
mutates the ledger. It answers with a value, :class:`PaperFill` or :class:`PaperRefusal`, checked
in this order:

1. the decision's instrument is not the one the venue trades → ``REJECTED / UNKNOWN_INSTRUMENT``;
2. no bar opens at or after ``market_ts_ns`` → ``FAILED / NO_MARKET_DATA``;
3. the fill price (that bar's OPEN moved against the trader by ``slippage_bps``) is worse than
   ``reference_price`` by more than ``max_slippage_bps`` → ``REJECTED / SLIPPAGE_EXCEEDED``;
4. a buy whose ``qty*price + fee`` exceeds the ledger's cash → ``REJECTED / INSUFFICIENT_FUNDS``;
   a sell larger than the position (beyond :data:`POSITION_REL_TOL`) →
   ``REJECTED / INSUFFICIENT_POSITION``.

No errors are raised for a decision; the constructor raises ``ValueError`` on a bad setting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from protocol import Instrument, RejectCode, Side, Status, TradeDecision
from tandem.marketdata import Bars

from .ledger import Ledger

__all__ = [
    "DEFAULT_FEE_BPS",
    "POSITION_REL_TOL",
    "PaperFill",
    "PaperRefusal",
    "PaperVenue",
    "paper_venue_ref",
]

DEFAULT_FEE_BPS = 10.0
"""Binance spot base taker fee: VIP 0 spot taker 0.100 % = 10 bps (Binance fee schedule,
https://www.binance.com/en/fee/schedule, without the BNB discount)."""

POSITION_REL_TOL = 1e-9
"""A sell may exceed the position by this fraction of it (float rounding of a "sell all"); the
fill is then clamped to the position held, so the ledger ends exactly flat."""

_PAPER_REF_PREFIX = b"paper-"


def paper_venue_ref(decision_id: int) -> bytes:
    """Full venue reference of a paper fill: ASCII ``b"paper-<decision_id>"`` (up to 26 bytes).

    The confirmation carries its first 16 bytes and flags the cut; the journal keeps all of it.
    """
    return _PAPER_REF_PREFIX + str(decision_id).encode("ascii")


@dataclass(frozen=True, slots=True)
class PaperFill:
    """The decision would fill entirely.

    Attributes:
        qty: base units executed (the decision's quantity, or the position for a clamped sell).
        price: quote per base unit, the bar's open with slippage applied.
        fee: quote currency, ``qty * price * fee_bps / 1e4``.
        executed_at_ns: open time of the bar filled at, Unix ns.
        bar_index: index of that bar in the venue's :class:`~tandem.marketdata.Bars`.
        venue_ref_full: :func:`paper_venue_ref` of the decision.
    """

    qty: float
    price: float
    fee: float
    executed_at_ns: int
    bar_index: int
    venue_ref_full: bytes


@dataclass(frozen=True, slots=True)
class PaperRefusal:
    """The decision would not execute; ``status`` is REJECTED or FAILED, ``detail`` is for logs."""

    status: Status
    reject_code: RejectCode
    detail: str


class PaperVenue:
    """Simulated venue trading one instrument at recorded bar opens.

    Args:
        bars: recorded bars, in time order (see :mod:`tandem.marketdata`).
        instrument: the single instrument this venue lists.
        fee_bps: taker fee in bps of notional; default :data:`DEFAULT_FEE_BPS` (Binance VIP 0).
        slippage_bps: adverse price move applied to every fill, in bps of the open.

    Raises:
        ValueError: ``fee_bps`` not finite, or ``slippage_bps`` not finite, negative or >= 1e4.
    """

    __slots__ = ("bars", "fee_bps", "instrument", "slippage_bps")

    def __init__(
        self,
        bars: Bars,
        *,
        instrument: Instrument,
        fee_bps: float = DEFAULT_FEE_BPS,
        slippage_bps: float = 0.0,
    ) -> None:
        if not math.isfinite(fee_bps):
            raise ValueError(f"fee_bps must be finite, got {fee_bps!r}")
        if not (math.isfinite(slippage_bps) and 0 <= slippage_bps < 10_000):
            raise ValueError(f"slippage_bps must be in [0, 10000), got {slippage_bps!r}")
        self.bars = bars
        self.instrument = instrument
        self.fee_bps = float(fee_bps)
        self.slippage_bps = float(slippage_bps)

    def quote(self, decision: TradeDecision, ledger: Ledger) -> PaperFill | PaperRefusal:
        """Decide what ``decision`` would do now against ``ledger``; mutates nothing."""
        if decision.instrument != self.instrument:
            return PaperRefusal(
                Status.REJECTED,
                RejectCode.UNKNOWN_INSTRUMENT,
                f"paper venue trades {self.instrument}, not {decision.instrument}",
            )
        i = self.bars.first_open_at_or_after(decision.market_ts_ns)
        if i is None:
            return PaperRefusal(
                Status.FAILED,
                RejectCode.NO_MARKET_DATA,
                f"no bar opens at or after {decision.market_ts_ns} ns in {self.bars.source}",
            )
        open_ = self.bars.open[i]
        buy = decision.side is Side.BUY
        slip = self.slippage_bps / 1e4
        price = open_ * (1 + slip) if buy else open_ * (1 - slip)
        ref, limit = decision.reference_price, decision.max_slippage_bps / 1e4
        if (buy and price > ref * (1 + limit)) or (not buy and price < ref * (1 - limit)):
            return PaperRefusal(
                Status.REJECTED,
                RejectCode.SLIPPAGE_EXCEEDED,
                f"fill {price!r} vs reference {ref!r} exceeds {decision.max_slippage_bps} bps",
            )
        qty = decision.quantity
        if buy:
            fee = qty * price * self.fee_bps / 1e4
            if qty * price + fee > ledger.cash:
                return PaperRefusal(
                    Status.REJECTED,
                    RejectCode.INSUFFICIENT_FUNDS,
                    f"needs {qty * price + fee!r} quote, cash is {ledger.cash!r}",
                )
        else:
            held = ledger.position(decision.instrument)
            if qty > held * (1 + POSITION_REL_TOL):
                return PaperRefusal(
                    Status.REJECTED,
                    RejectCode.INSUFFICIENT_POSITION,
                    f"sell {qty!r} exceeds position {held!r}",
                )
            qty = min(qty, held)
            fee = qty * price * self.fee_bps / 1e4
        return PaperFill(
            qty=qty,
            price=price,
            fee=fee,
            executed_at_ns=self.bars.ts_ms[i] * 1_000_000,
            bar_index=i,
            venue_ref_full=paper_venue_ref(decision.decision_id),
        )
