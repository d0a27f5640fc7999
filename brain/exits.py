"""Exit plans: hard stop-loss, trailing take-profit and time stop for a long or a short position.

A plan is fixed when the position opens (:meth:`ExitPlan.for_entry`); an :class:`ExitWatch`
carries the one piece of state a plan needs, the best price since the trailing stop activated
(the highest for a long, the lowest for a short), and is evaluated on every price with the clock
passed in. Exits are never subject to entry guards or circuit breakers (DESIGN.md invariant 3).

Default rules (from the project's issue #2 plan): stop-loss 8 % below entry; trailing
take-profit activates at +12 % and trails 5 % below the highest price since activation; time
stop after 14 days. A short mirrors them (issue #16): its stop sits 8 % *above* the entry, the
trailing stop activates 12 % below the entry and trails 5 % above the lowest price since.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol import DecisionReason, Side

__all__ = ["DAY_NS", "ExitPlan", "ExitRules", "ExitWatch"]

DAY_NS = 86_400 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class ExitRules:
    """Configured exit rules, in percent of entry price and nanoseconds.

    Raises:
        ValueError: a percentage outside (0, 100) or a non-positive time stop.
    """

    stop_loss_pct: float = 8.0
    trailing_activation_pct: float = 12.0
    trailing_pct: float = 5.0
    time_stop_ns: int = 14 * DAY_NS

    def __post_init__(self) -> None:
        for name in ("stop_loss_pct", "trailing_pct"):
            if not 0 < getattr(self, name) < 100:
                raise ValueError(f"{name} must be in (0, 100), got {getattr(self, name)}")
        if self.trailing_activation_pct <= 0:
            raise ValueError(f"trailing_activation_pct must be > 0, got {self.trailing_activation_pct}")
        if self.time_stop_ns <= 0:
            raise ValueError(f"time_stop_ns must be > 0, got {self.time_stop_ns}")


@dataclass(frozen=True, slots=True)
class ExitPlan:
    """Price and time levels of one position's exits (quote currency, Unix ns).

    ``side`` is the position's: ``BUY`` a long (stop below the entry, trailing above it), ``SELL`` a
    short (stop above, trailing below).
    """

    entry_price: float
    stop_price: float
    activation_price: float
    trail_fraction: float
    deadline_ns: int
    side: Side = Side.BUY

    @property
    def short(self) -> bool:
        return self.side is Side.SELL

    @classmethod
    def for_entry(cls, rules: ExitRules, entry_price: float, opened_at_ns: int, stop_price: float = 0.0,
                  side: Side = Side.BUY) -> ExitPlan:  # fmt: skip
        """The plan for a position opened on ``side`` (``BUY``: a long, ``SELL``: a short) at
        ``entry_price`` at ``opened_at_ns``.

        ``stop_price`` (quote per base unit), when > 0, is the hard stop as already computed from
        the fill — the level the executor placed on the venue
        (:meth:`~protocol.TradeDecision.stop_for_fill`); otherwise it is
        ``entry_price * (1 - stop_loss_pct / 100)`` for a long, ``entry_price * (1 + stop_loss_pct
        / 100)`` for a short.
        """
        sl, act = rules.stop_loss_pct / 100, rules.trailing_activation_pct / 100
        if side is Side.SELL:
            stop, activation = entry_price * (1 + sl), entry_price * (1 - act)
        else:
            stop, activation = entry_price * (1 - sl), entry_price * (1 + act)
        return cls(
            entry_price=entry_price,
            stop_price=stop_price if stop_price > 0 else stop,
            activation_price=activation,
            trail_fraction=rules.trailing_pct / 100,
            deadline_ns=opened_at_ns + rules.time_stop_ns,
            side=side,
        )


class ExitWatch:
    """Evaluates an :class:`ExitPlan` against prices; remembers the best price (``peak``: the highest
    for a long, the lowest for a short) once trailing is active."""

    __slots__ = ("peak", "plan")

    def __init__(self, plan: ExitPlan) -> None:
        self.plan = plan
        self.peak: float | None = None  # best price since activation; None = not active

    @property
    def trailing_stop(self) -> float | None:
        """Current trailing stop price, or ``None`` before activation."""
        if self.peak is None:
            return None
        return self.peak * (1 + self.plan.trail_fraction) if self.plan.short else self.peak * (1 - self.plan.trail_fraction)

    def evaluate(self, price: float, now_ns: int) -> DecisionReason | None:
        """Which exit fires at ``price`` (quote) and ``now_ns``, if any.

        Order: stop-loss, then trailing take-profit, then time stop; the first that fires wins.
        """
        plan = self.plan
        if plan.short:
            return self._evaluate_short(price, now_ns)
        if price <= plan.stop_price:
            return DecisionReason.STOP_LOSS
        if self.peak is None:
            if price >= plan.activation_price:
                self.peak = price
        elif price > self.peak:
            self.peak = price
        if self.peak is not None and price <= self.peak * (1 - plan.trail_fraction):
            return DecisionReason.TRAILING_TAKE_PROFIT
        if now_ns >= plan.deadline_ns:
            return DecisionReason.TIME_STOP
        return None

    def _evaluate_short(self, price: float, now_ns: int) -> DecisionReason | None:
        """The mirror of the long rules: the stop above, the trailing stop above the lowest price."""
        plan = self.plan
        if price >= plan.stop_price:
            return DecisionReason.STOP_LOSS
        if self.peak is None:
            if price <= plan.activation_price:
                self.peak = price
        elif price < self.peak:
            self.peak = price
        if self.peak is not None and price >= self.peak * (1 + plan.trail_fraction):
            return DecisionReason.TRAILING_TAKE_PROFIT
        if now_ns >= plan.deadline_ns:
            return DecisionReason.TIME_STOP
        return None
