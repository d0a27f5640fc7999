"""Exit plans: hard stop-loss, trailing take-profit and time stop for a long or a short position.

A plan is fixed when the position opens (:meth:`ExitPlan.for_entry`); an :class:`ExitWatch`
carries the one piece of state a plan needs, the best price since the trailing stop activated
(the highest for a long, the lowest for a short), and is evaluated on every price with the clock
passed in. Exits are never subject to entry guards or circuit breakers (DESIGN.md invariant 3).

Default rules (from the project's issue #2 plan): stop-loss 8 % below entry; trailing
take-profit activates at +12 % and trails 5 % below the highest price since activation; time
stop after 14 days. A short mirrors them (issue #16): its stop sits 8 % *above* the entry, the
trailing stop activates 12 % below the entry and trails 5 % above the lowest price since.

**Exit legs** (issue #16), off by default: the plan's hard stop (HARD_SL) and trailing stop (TRAIL)
as above, plus a partial take-profit (PARTIAL_TP: ``partial_tp_fraction`` of the position at
``partial_tp_pct`` profit, a limit order resting on the venue) and a move of the stop to
breakeven (BREAKEVEN: the entry price plus fees — the entry's fee and an exit's taken as equal — once
the take-profit filled, or once the price reached ``breakeven_trigger_pct`` profit). A stop only
ever tightens: :attr:`ExitWatch.floor` holds the breakeven level once it applies.
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
    partial_tp_pct: float = 0.0  # 0: no take-profit leg
    partial_tp_fraction: float = 0.5
    breakeven_trigger_pct: float = 0.0  # 0: breakeven only after the take-profit filled (if on)

    def __post_init__(self) -> None:
        for name in ("stop_loss_pct", "trailing_pct"):
            if not 0 < getattr(self, name) < 100:
                raise ValueError(f"{name} must be in (0, 100), got {getattr(self, name)}")
        if self.trailing_activation_pct <= 0:
            raise ValueError(f"trailing_activation_pct must be > 0, got {self.trailing_activation_pct}")
        if self.time_stop_ns <= 0:
            raise ValueError(f"time_stop_ns must be > 0, got {self.time_stop_ns}")
        if not 0 <= self.partial_tp_pct < 100:
            raise ValueError(f"partial_tp_pct must be in [0, 100), got {self.partial_tp_pct}")
        if not 0 < self.partial_tp_fraction < 1:
            raise ValueError(f"partial_tp_fraction must be in (0, 1), got {self.partial_tp_fraction}")
        if not 0 <= self.breakeven_trigger_pct < 100:
            raise ValueError(f"breakeven_trigger_pct must be in [0, 100), got {self.breakeven_trigger_pct}")


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
    tp_price: float = 0.0  # the take-profit's limit; 0: no take-profit leg
    tp_fraction: float = 0.0
    breakeven_trigger_price: float = 0.0  # 0: no price trigger

    @property
    def short(self) -> bool:
        return self.side is Side.SELL

    def traded_through(self, high: float, low: float) -> bool:
        """Whether a bar of ``high`` and ``low`` traded through the take-profit's limit (at or above it
        for a long, at or below it for a short): the resting order filled, or could have."""
        if self.tp_price <= 0:
            return False
        return low <= self.tp_price if self.short else high >= self.tp_price

    def breakeven_triggered(self, price: float) -> bool:
        """Whether ``price`` reached the breakeven trigger (never, without one)."""
        if self.breakeven_trigger_price <= 0:
            return False
        return price <= self.breakeven_trigger_price if self.short else price >= self.breakeven_trigger_price

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
        tp, be = rules.partial_tp_pct / 100, rules.breakeven_trigger_pct / 100
        sign = -1.0 if side is Side.SELL else 1.0
        stop, activation = entry_price * (1 - sign * sl), entry_price * (1 + sign * act)
        return cls(
            entry_price=entry_price,
            stop_price=stop_price if stop_price > 0 else stop,
            activation_price=activation,
            trail_fraction=rules.trailing_pct / 100,
            deadline_ns=opened_at_ns + rules.time_stop_ns,
            side=side,
            tp_price=entry_price * (1 + sign * tp) if tp > 0 else 0.0,
            tp_fraction=rules.partial_tp_fraction if tp > 0 else 0.0,
            breakeven_trigger_price=entry_price * (1 + sign * be) if be > 0 else 0.0,
        )


class ExitWatch:
    """Evaluates an :class:`ExitPlan` against prices; remembers the best price (``peak``: the highest
    for a long, the lowest for a short) once trailing is active."""

    __slots__ = ("floor", "peak", "plan")

    def __init__(self, plan: ExitPlan) -> None:
        self.plan = plan
        self.peak: float | None = None  # best price since activation; None = not active
        self.floor: float | None = None  # the breakeven stop, once it applies (BREAKEVEN leg)

    @property
    def stop_price(self) -> float:
        """The hard stop in force: the plan's, or the breakeven level once it applies and is tighter."""
        floor, stop = self.floor, self.plan.stop_price
        if floor is None:
            return stop
        return min(stop, floor) if self.plan.short else max(stop, floor)

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
        if price <= self.stop_price:
            return self._stop_reason()
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

    def _stop_reason(self) -> DecisionReason:
        """STOP_LOSS, or BREAKEVEN when the breakeven level is the stop in force."""
        return DecisionReason.BREAKEVEN if self.floor is not None and self.stop_price == self.floor else DecisionReason.STOP_LOSS

    def _evaluate_short(self, price: float, now_ns: int) -> DecisionReason | None:
        """The mirror of the long rules: the stop above, the trailing stop above the lowest price."""
        plan = self.plan
        if price >= self.stop_price:
            return self._stop_reason()
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
