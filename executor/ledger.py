"""The executor's authoritative account for the paper venue: cash and positions.

The ledger is a fold over fills: :meth:`Ledger.from_fills` rebuilds it from the journal's fills
(in confirmation order), and the live ledger is the same fold applied one fill at a time, so a
rebuilt ledger equals the live one bit for bit.

Units: cash and fees in quote currency, quantities in base units, prices in quote per base unit.
Average entry cost is the volume-weighted fill *price* of the open quantity; fees are charged to
cash, not folded into the cost (a sell leaves the average cost of what remains unchanged).

Errors::

    LedgerError (ValueError)   a fill that would break the account: a non-finite or non-positive
                               quantity or price, a non-finite fee, or a sell of more than is held
                               (beyond :data:`DUST_REL_TOL`); the ledger is left unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from protocol import Instrument, Side

__all__ = ["DUST_REL_TOL", "POSITION_REL_TOL", "Fill", "Ledger", "LedgerError", "Position"]

DUST_REL_TOL = 1e-12
"""Relative tolerance under which a remaining position counts as zero and is removed: float
rounding of a sum of buys minus the same quantity sold leaves ~1e-16 relative, far below it."""

POSITION_REL_TOL = 1e-9
"""A sell may exceed the position by this fraction of it (float rounding of a "sell all"); it is
then clamped to the position held, so the ledger ends exactly flat. Applied before an order is
sent — by the paper venue's fill rules and by the executor's exit planning
(:func:`executor.planning.plan_decision`) — never by :meth:`Ledger.apply_fill`."""


class LedgerError(ValueError):
    """A fill the ledger refuses to apply; the ledger is unchanged."""


@dataclass(frozen=True, slots=True)
class Fill:
    """One executed trade, venue-neutral, as journaled and folded into the ledger.

    Attributes:
        decision_id: the decision that caused it.
        instrument: what traded.
        side: buy or sell.
        qty: base units, > 0.
        price: quote per base unit, > 0 (slippage included).
        fee: quote currency (negative for a rebate).
        executed_at_ns: when the venue executed (market time for the paper venue), Unix ns.
    """

    decision_id: int
    instrument: Instrument
    side: Side
    qty: float
    price: float
    fee: float
    executed_at_ns: int


@dataclass(frozen=True, slots=True)
class Position:
    """An open position: ``qty`` base units (> 0) at ``avg_cost`` quote per base unit."""

    qty: float
    avg_cost: float


class Ledger:
    """Cash and long positions per instrument; mutated only by :meth:`apply_fill`.

    Args:
        starting_cash: quote currency at the start of the journal, finite and >= 0.

    Raises:
        LedgerError: ``starting_cash`` negative or not finite.
    """

    __slots__ = ("_cash", "_positions", "starting_cash")

    def __init__(self, starting_cash: float) -> None:
        if not math.isfinite(starting_cash) or starting_cash < 0:
            raise LedgerError(f"starting_cash must be finite and >= 0, got {starting_cash!r}")
        self.starting_cash = float(starting_cash)
        self._cash = float(starting_cash)
        self._positions: dict[Instrument, Position] = {}

    @classmethod
    def from_fills(cls, starting_cash: float, fills: Iterable[Fill]) -> Ledger:
        """Rebuild a ledger as a fold of ``fills`` (in the order they were applied) over cash."""
        ledger = cls(starting_cash)
        for f in fills:
            ledger.apply(f)
        return ledger

    @property
    def cash(self) -> float:
        """Quote currency available."""
        return self._cash

    def position(self, instrument: Instrument) -> float:
        """Base units held of ``instrument`` (0.0 when flat)."""
        pos = self._positions.get(instrument)
        return pos.qty if pos is not None else 0.0

    def avg_cost(self, instrument: Instrument) -> float:
        """Volume-weighted entry price of the open quantity (0.0 when flat)."""
        pos = self._positions.get(instrument)
        return pos.avg_cost if pos is not None else 0.0

    def positions(self) -> dict[Instrument, Position]:
        """A copy of the open positions."""
        return dict(self._positions)

    def apply(self, fill: Fill) -> None:
        """Apply a :class:`Fill` record (see :meth:`apply_fill`)."""
        self.apply_fill(fill.side, fill.instrument, fill.qty, fill.price, fill.fee)

    def apply_fill(self, side: Side, instrument: Instrument, qty: float, price: float, fee: float) -> None:
        """Apply one fill.

        Buy: ``cash -= qty*price + fee``; position grows and its average cost is re-weighted.
        Sell: ``cash += qty*price - fee``; position shrinks and is removed when what remains is
        within :data:`DUST_REL_TOL` of zero, relative to the quantity held.

        Raises:
            LedgerError: ``qty``/``price`` not finite and > 0, ``fee`` not finite, or a sell
                larger than the position beyond the dust tolerance (no shorting on paper).
        """
        if not (math.isfinite(qty) and qty > 0 and math.isfinite(price) and price > 0):
            raise LedgerError(f"fill needs finite qty > 0 and price > 0, got qty={qty!r} price={price!r}")
        if not math.isfinite(fee):
            raise LedgerError(f"fill fee must be finite, got {fee!r}")
        held = self._positions.get(instrument)
        held_qty = held.qty if held is not None else 0.0
        if side is Side.BUY:
            new_qty = held_qty + qty
            cost = (held_qty * held.avg_cost + qty * price) / new_qty if held is not None else price
            self._positions[instrument] = Position(new_qty, cost)
            self._cash -= qty * price + fee
            return
        remaining = held_qty - qty
        if abs(remaining) <= DUST_REL_TOL * max(held_qty, qty):
            self._positions.pop(instrument, None)
        elif remaining < 0:
            raise LedgerError(f"sell of {qty!r} {instrument} exceeds the position {held_qty!r}")
        else:
            assert held is not None
            self._positions[instrument] = Position(remaining, held.avg_cost)
        self._cash += qty * price - fee

    def snapshot(self) -> dict[str, Any]:
        """Plain values, for logs and comparison.

        Returns:
            ``{"starting_cash": float, "cash": float,
            "positions": {str(instrument): {"qty": float, "avg_cost": float}}}``.
        """
        return {
            "starting_cash": self.starting_cash,
            "cash": self._cash,
            "positions": {
                str(i): {"qty": p.qty, "avg_cost": p.avg_cost} for i, p in sorted(
                    self._positions.items(), key=lambda kv: (kv[0].kind, kv[0].value)
                )
            },
        }

    def __repr__(self) -> str:
        return f"Ledger(cash={self._cash!r}, positions={len(self._positions)})"
