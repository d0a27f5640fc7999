"""The executor's authoritative account for the paper venue: cash and positions.

The ledger is a fold over fills: :meth:`Ledger.from_fills` rebuilds it from the journal's fills
(in confirmation order), and the live ledger is the same fold applied one fill at a time, so a
rebuilt ledger equals the live one bit for bit.

Units: cash and fees in quote currency, quantities in base units, prices in quote per base unit.
Average entry cost is the volume-weighted fill *price* of the open quantity; fees are charged to
cash, not folded into the cost (an exit leaves the average cost of what remains unchanged).

**Signed positions** (issue #16): a long is > 0, a short < 0. A buy adds to a long or covers a
short; a sell reduces a long or — on a ledger that allows shorts (a derivatives venue) — opens or
adds to a short. A short is held in cash terms like a perpetual's: its sale adds the proceeds to
cash, so the account's value is ``cash + Σ signed qty × mark`` on either side. No fill takes a
position through zero (no netting: a reversal is two decisions, close then open).

**Fees paid in another asset** (Solana: the network fee, paid in SOL lamports, issue #15): a fill's
``fee`` is always its quote-currency value, charged to :attr:`Ledger.cash` like any fee, so cash is
what the account is worth in quote terms; ``fee_native`` keeps what was actually paid in the
venue's native unit. The ledger sums both (:attr:`Ledger.native_fees`,
:attr:`Ledger.native_fees_quote`), so the quote balance the venue should hold is
:attr:`Ledger.quote_balance` (cash plus the fees it did not pay in quote), and the native balance
spent on fees is exact. A **fee-only fill** (``qty`` 0, ``price`` 0: a transaction that landed and
failed, protocol v5) moves only cash and those sums.

Errors::

    LedgerError (ValueError)   a fill that would break the account: a non-finite or non-positive
                               quantity or price (but for a fee-only fill), a non-finite fee, a
                               negative ``fee_native``, a fill that would take a position
                               through zero, or a sell from flat on a ledger without shorts
                               (beyond :data:`DUST_REL_TOL`); the ledger is left unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, NamedTuple

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


class Fill(NamedTuple):
    """One executed trade, venue-neutral, as journaled and folded into the ledger.

    Attributes:
        decision_id: the decision that caused it.
        instrument: what traded.
        side: buy or sell.
        qty: base units, > 0.
        price: quote per base unit, > 0 (slippage included).
        fee: quote currency (negative for a rebate); for a fee paid in another asset, its value in
            quote at the fill.
        executed_at_ns: when the venue executed (market time for the paper venue), Unix ns.
        fee_native: the fee as paid in the venue's native unit when it was not paid in quote
            (Solana: lamports), else 0.

    A fee-only fill has ``qty`` 0 and ``price`` 0 (a failed execution that paid a fee).

    A ``NamedTuple``, as immutable as a frozen dataclass and built ~6x faster (15 fields: 0.27 against
    1.6 us; a frozen dataclass sets each field through ``object.__setattr__``): one or more are built for
    every fill (issue #17).
    """

    decision_id: int
    instrument: Instrument
    side: Side
    qty: float
    price: float
    fee: float
    executed_at_ns: int
    fee_native: int = 0

    @property
    def fee_only(self) -> bool:
        """Nothing traded; only a fee was paid."""
        return self.qty == 0 and self.price == 0


class Position(NamedTuple):
    """An open position: ``qty`` base units (> 0 long, < 0 short) at ``avg_cost`` quote per base unit."""

    qty: float
    avg_cost: float


class Ledger:
    """Cash and signed positions per instrument; mutated only by :meth:`apply_fill`.

    Args:
        starting_cash: quote currency at the start of the journal, finite and >= 0.
        allow_short: a sell from flat opens a short (a derivatives venue); otherwise it is refused.

    Raises:
        LedgerError: ``starting_cash`` negative or not finite.
    """

    __slots__ = ("_cash", "_native_fees", "_native_fees_quote", "_positions", "allow_short", "starting_cash")

    def __init__(self, starting_cash: float, *, allow_short: bool = False) -> None:
        if not math.isfinite(starting_cash) or starting_cash < 0:
            raise LedgerError(f"starting_cash must be finite and >= 0, got {starting_cash!r}")
        self.starting_cash = float(starting_cash)
        self.allow_short = allow_short
        self._cash = float(starting_cash)
        self._positions: dict[Instrument, Position] = {}
        self._native_fees = 0
        self._native_fees_quote = 0.0

    @classmethod
    def from_fills(cls, starting_cash: float, fills: Iterable[Fill], *, allow_short: bool = False) -> Ledger:
        """Rebuild a ledger as a fold of ``fills`` (in the order they were applied) over cash."""
        ledger = cls(starting_cash, allow_short=allow_short)
        for f in fills:
            ledger.apply(f)
        return ledger

    @property
    def cash(self) -> float:
        """Quote currency available."""
        return self._cash

    @property
    def native_fees(self) -> int:
        """Fees paid in the venue's native unit (Solana: lamports), summed."""
        return self._native_fees

    @property
    def native_fees_quote(self) -> float:
        """The quote value of those fees (charged to :attr:`cash`, not paid in quote)."""
        return self._native_fees_quote

    @property
    def quote_balance(self) -> float:
        """The quote currency the venue account should hold: :attr:`cash` plus the fees paid in
        another asset."""
        return self._cash + self._native_fees_quote

    def position(self, instrument: Instrument) -> float:
        """Base units held of ``instrument``, signed (< 0 short; 0.0 when flat)."""
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
        """Apply a :class:`Fill` record (see :meth:`apply_fill`; a fee-only fill moves cash only).

        Raises:
            LedgerError: as :meth:`apply_fill`, or a negative ``fee_native``; nothing changed.
        """
        position = self._checked(fill)
        if fill.fee_only:
            self._cash -= fill.fee
        else:
            self._set(fill.instrument, position)
            self._move_cash(fill.side, fill.qty, fill.price, fill.fee)
        if fill.fee_native:
            self._native_fees += fill.fee_native
            self._native_fees_quote += fill.fee

    def check(self, fill: Fill) -> None:
        """Raise what :meth:`apply` would raise for ``fill``, changing nothing (a fill is checked
        before it is journaled: a journal the ledger cannot fold cannot be opened).

        Raises:
            LedgerError: see :meth:`apply`.
        """
        self._checked(fill)

    def _checked(self, fill: Fill) -> Position | None:
        """The position ``fill`` leaves (``None``: flat; unchanged for a fee-only fill), or raise."""
        if fill.fee_native < 0:
            raise LedgerError(f"fee_native must be >= 0, got {fill.fee_native!r}")
        if fill.fee_only:
            if not math.isfinite(fill.fee):
                raise LedgerError(f"fill fee must be finite, got {fill.fee!r}")
            return self._positions.get(fill.instrument)
        return self._after(fill.side, fill.instrument, fill.qty, fill.price, fill.fee)

    def apply_fill(self, side: Side, instrument: Instrument, qty: float, price: float, fee: float) -> None:
        """Apply one fill.

        Buy: ``cash -= qty*price + fee``; sell: ``cash += qty*price - fee``. A fill on the
        position's side (or from flat) grows it and re-weights its average cost; a fill on the
        other side shrinks it, and it is removed when what remains is within
        :data:`DUST_REL_TOL` of zero, relative to the quantity held.

        Raises:
            LedgerError: ``qty``/``price`` not finite and > 0, ``fee`` not finite, a fill larger
                than the position it reduces beyond the dust tolerance (never netted through
                zero), or a sell from flat without ``allow_short``; nothing changed.
        """
        self._set(instrument, self._after(side, instrument, qty, price, fee))
        self._move_cash(side, qty, price, fee)

    def _move_cash(self, side: Side, qty: float, price: float, fee: float) -> None:
        if side is Side.BUY:
            self._cash -= qty * price + fee
        else:
            self._cash += qty * price - fee

    def _set(self, instrument: Instrument, position: Position | None) -> None:
        if position is None:
            self._positions.pop(instrument, None)
        else:
            self._positions[instrument] = position

    def _after(self, side: Side, instrument: Instrument, qty: float, price: float, fee: float) -> Position | None:
        """The position in ``instrument`` after the fill (``None``: flat), or raise (:meth:`apply_fill`)."""
        if not (math.isfinite(qty) and qty > 0 and math.isfinite(price) and price > 0):
            raise LedgerError(f"fill needs finite qty > 0 and price > 0, got qty={qty!r} price={price!r}")
        if not math.isfinite(fee):
            raise LedgerError(f"fill fee must be finite, got {fee!r}")
        held = self._positions.get(instrument)
        held_qty = held.qty if held is not None else 0.0
        buy = side is Side.BUY
        if held_qty == 0 or (held_qty > 0) is buy:  # open, or grow on the position's side
            if not buy and held_qty == 0 and not self.allow_short:
                raise LedgerError(f"sell of {qty!r} {instrument} exceeds the position 0.0 (no shorts on this venue)")
            size = abs(held_qty) + qty
            cost = (abs(held_qty) * held.avg_cost + qty * price) / size if held is not None else price
            return Position(size if buy else -size, cost)
        remaining = abs(held_qty) - qty  # reduce
        if abs(remaining) <= DUST_REL_TOL * max(abs(held_qty), qty):
            return None
        if remaining < 0:
            what = "sell" if not buy else "buy"
            raise LedgerError(f"{what} of {qty!r} {instrument} exceeds the position {held_qty!r}")
        assert held is not None
        return Position(remaining if held_qty > 0 else -remaining, held.avg_cost)

    def snapshot(self) -> dict[str, Any]:
        """Plain values, for logs and comparison.

        Returns:
            ``{"starting_cash": float, "cash": float, "native_fees": int, "native_fees_quote": float,
            "positions": {str(instrument): {"qty": float, "avg_cost": float}}}``.
        """
        return {
            "starting_cash": self.starting_cash,
            "cash": self._cash,
            "native_fees": self._native_fees,
            "native_fees_quote": self._native_fees_quote,
            "positions": {
                str(i): {"qty": p.qty, "avg_cost": p.avg_cost} for i, p in sorted(
                    self._positions.items(), key=lambda kv: (kv[0].kind, kv[0].value)
                )
            },
        }

    def __repr__(self) -> str:
        return f"Ledger(cash={self._cash!r}, positions={len(self._positions)})"
