"""Circuit breakers and position sizing: guards that answer with values.

``CircuitBreakers.check_entry(now_ns)`` returns :class:`Approved` or :class:`Denied` with a
reason; it is consulted for entries only — exits are never blocked (DESIGN.md invariant 3).

Breakers (defaults from the project's issue #2 plan):

* **daily loss**: equity falls 5 % or more below the day's starting equity (UTC day; the first
  equity seen in a day starts it) → entries blocked until the next UTC midnight.
* **drawdown**: equity falls 20 % or more below its running peak → entries blocked for the rest
  of the run (latched; a human restarts after review). The drawdown is :func:`brain.drawdown.drawdown`,
  the rule the equity curve and the report use too; the peak starts at the first equity fed.
* **losing streak**: 5 consecutive losing trades (net P&L < 0) → entries blocked for a cooldown
  (default 24 h, after freqtrade's StoplossGuard ``stop_duration``), then the streak restarts.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from protocol import FULL_ENTRY_SCALE_BP, Posture

from .drawdown import drawdown
from .exits import DAY_NS

__all__ = ["Approved", "BreakerKind", "BreakerRules", "CircuitBreakers", "Denied", "Trip", "cap_exposure", "guard_entry",
           "size_entry"]


class BreakerKind(str, enum.Enum):
    DAILY_LOSS = "daily_loss"
    DRAWDOWN = "drawdown"
    LOSING_STREAK = "losing_streak"


@dataclass(frozen=True, slots=True)
class Approved:
    pass


@dataclass(frozen=True, slots=True)
class Denied:
    """Entry refused; ``reason`` names the breaker and the figure that tripped it."""

    kind: BreakerKind
    reason: str


@dataclass(frozen=True, slots=True)
class Trip:
    """A breaker tripped at ``at_ns`` and blocks entries until ``until_ns`` (None = latched)."""

    kind: BreakerKind
    at_ns: int
    until_ns: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class BreakerRules:
    """Thresholds in percent of equity, a trade count, and a cooldown in ns.

    Raises:
        ValueError: a threshold out of range.
    """

    daily_loss_pct: float = 5.0
    max_drawdown_pct: float = 20.0
    max_consecutive_losses: int = 5
    losing_streak_cooldown_ns: int = DAY_NS

    def __post_init__(self) -> None:
        if not 0 < self.daily_loss_pct < 100 or not 0 < self.max_drawdown_pct < 100:
            raise ValueError("breaker percentages must be in (0, 100)")
        if self.max_consecutive_losses < 1 or self.losing_streak_cooldown_ns < 0:
            raise ValueError("max_consecutive_losses must be >= 1 and the cooldown >= 0")


class CircuitBreakers:
    """Tracks equity and closed trades; blocks entries while any breaker is tripped."""

    def __init__(self, rules: BreakerRules) -> None:
        self.rules = rules
        self.peak_equity: float | None = None
        self.day: int | None = None
        self.day_start_equity = 0.0
        self.streak = 0
        self.trips: list[Trip] = []
        self._blocked: dict[BreakerKind, Trip] = {}

    def on_equity(self, equity: float, now_ns: int) -> Trip | None:
        """Feed the current equity (quote) at ``now_ns``; returns a new trip, if any.

        When one call trips both the daily-loss and the drawdown breaker, both are recorded in
        :attr:`trips` and both block entries; the daily-loss trip is the one returned.
        """
        day = now_ns // DAY_NS
        if day != self.day:
            self.day, self.day_start_equity = day, equity
        self.peak_equity, dd_pct = drawdown(self.peak_equity, equity)
        rules = self.rules
        first: Trip | None = None  # both breakers are checked: one equity drop can trip both
        if self.day_start_equity > 0:
            loss_pct = (self.day_start_equity - equity) / self.day_start_equity * 100
            if loss_pct >= rules.daily_loss_pct and not self.active(BreakerKind.DAILY_LOSS, now_ns):
                detail = f"daily loss {loss_pct:.2f}% >= {rules.daily_loss_pct}% of {self.day_start_equity:.2f}"
                first = self._trip(BreakerKind.DAILY_LOSS, now_ns, (day + 1) * DAY_NS, detail)
        if dd_pct >= rules.max_drawdown_pct and not self.active(BreakerKind.DRAWDOWN, now_ns):
            detail = f"drawdown {dd_pct:.2f}% >= {rules.max_drawdown_pct}% from peak {self.peak_equity:.2f}"
            trip = self._trip(BreakerKind.DRAWDOWN, now_ns, None, detail)
            first = first or trip
        return first

    def on_trade_closed(self, net_pnl: float, now_ns: int) -> Trip | None:
        """Feed a closed trade's net P&L (quote); returns a new trip, if any."""
        self.streak = self.streak + 1 if net_pnl < 0 else 0
        if self.streak >= self.rules.max_consecutive_losses:
            n, self.streak = self.streak, 0
            until = now_ns + self.rules.losing_streak_cooldown_ns
            return self._trip(BreakerKind.LOSING_STREAK, now_ns, until, f"{n} consecutive losing trades")
        return None

    def check_entry(self, now_ns: int) -> Approved | Denied:
        """May a new position be opened at ``now_ns``?"""
        for kind, trip in self._blocked.items():
            if trip.until_ns is None or now_ns < trip.until_ns:
                return Denied(kind, f"{kind.value} breaker: {trip.detail}")
        return Approved()

    def active(self, kind: BreakerKind, now_ns: int) -> bool:
        """Does breaker ``kind`` block entries at ``now_ns`` (market time)?"""
        trip = self._blocked.get(kind)
        return trip is not None and (trip.until_ns is None or now_ns < trip.until_ns)

    def _trip(self, kind: BreakerKind, now_ns: int, until_ns: int | None, detail: str) -> Trip:
        trip = Trip(kind, now_ns, until_ns, detail)
        self._blocked[kind] = trip
        self.trips.append(trip)
        return trip


def size_entry(equity: float, price: float, fraction: float, lot_size: float = 0.0) -> float:
    """Quantity (base units) for an entry worth ``fraction`` of ``equity`` at ``price``.

    ``equity`` is portfolio value in quote currency (cash + open positions at mark); with
    ``lot_size`` > 0 the quantity is rounded down to a whole number of lots. Example from the
    plan: ``size_entry(10_000, 100, 0.05) == 5.0``.

    Raises:
        ValueError: non-positive price or a fraction outside (0, 1].
    """
    if price <= 0:
        raise ValueError(f"price must be > 0, got {price}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    qty = max(equity, 0.0) * fraction / price
    if lot_size > 0:
        # floor(qty / lot) with a 1e-9-lot tolerance: ``5.0 // 0.1`` is 49.0 in binary floating point.
        qty = math.floor(qty / lot_size + 1e-9) * lot_size
    return qty


def cap_exposure(qty: float, price: float, equity: float, held: float, cap_fraction: float,
                 lot_size: float = 0.0) -> float:
    """An entry of ``qty`` (base units) at ``price`` cut so the position in its instrument — ``held``
    (base units, either sign) plus the entry — is worth at most ``cap_fraction`` of the portfolio's
    ``equity`` (quote currency), then rounded down to ``lot_size``; 0 when no room is left. The
    per-instrument exposure cap of a portfolio (issue #16): one instrument's move cannot take more
    than that share of the account. Example: ``cap_exposure(5, 100, 1_000, 0, 0.25) == 2.5``.
    """
    room = max(0.0, cap_fraction * max(equity, 0.0) - abs(held) * price)
    if qty * price <= room:
        return qty
    qty = room / price
    if lot_size > 0:
        qty = math.floor(qty / lot_size + 1e-9) * lot_size
    return qty


def guard_entry(posture: Posture, qty: float, price: float, lot_size: float = 0.0) -> float:
    """An entry of ``qty`` at ``price`` as the executor's risk posture allows it (protocol v4,
    SPEC.md §6.4): scaled by ``entry_scale_bp`` / 10,000, then capped so ``qty * price`` does not
    exceed ``max_notional`` (0: no cap; rounded down a last ulp so the executor's check of the same
    product never refuses it), then rounded down to ``lot_size``. Base units; 0 when nothing is left.
    Whether entries are allowed at all is the caller's check (the kill switch, ``entries_allowed``).

    Raises:
        ValueError: a non-positive price.
    """
    if price <= 0:
        raise ValueError(f"price must be > 0, got {price}")
    if posture.entry_scale_bp < FULL_ENTRY_SCALE_BP:  # full scale leaves qty exact (x * 10000 / 10000 may not)
        qty = qty * posture.entry_scale_bp / FULL_ENTRY_SCALE_BP
    if posture.max_notional > 0 and qty * price > posture.max_notional:
        qty = math.nextafter(posture.max_notional / price, 0.0)
        while qty * price > posture.max_notional:
            qty = math.nextafter(qty, 0.0)
    if lot_size > 0:
        qty = math.floor(qty / lot_size + 1e-9) * lot_size
    return max(qty, 0.0)
