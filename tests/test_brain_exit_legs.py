"""Exit legs in the brain (issue #16): the partial take-profit (PARTIAL_TP: a TAKE_PROFIT resting on the
venue, its fill reported by a REDUCE with reason PARTIAL_TAKE_PROFIT) and the move of the stop to
breakeven (BREAKEVEN: after the take-profit filled, or at a price trigger), for a long and a short —
the plan's levels, the watch's floor, and every transition of the core. Pure: times passed in."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
from factories import BTC, MIN, MS, T0, Scripted, accept, fill, refuse

from brain.core import BrainConfig, BrainCore, Step
from brain.exits import ExitPlan, ExitRules, ExitWatch
from brain.risk import BreakerRules, CircuitBreakers
from brain.tracker import Applied, Position, PositionTracker
from foundation.bars import Bar
from protocol import DecisionReason, ExecutionConfirmation, Intent, RejectCode, Side, Status, TradeDecision

CASH = 10_000.0
WALL_LAG = 5_000_000_000  # wall clock 5 s after market time, to tell the two stamps apart
FEE = 1.0  # the entry's fee: on 5 units, breakeven sits 2 * 1.0 / 5 = 0.4 from the entry
TP_RULES = ExitRules(partial_tp_pct=5.0, partial_tp_fraction=0.5)  # a take-profit at +5 % for half
TRIGGER_RULES = ExitRules(breakeven_trigger_pct=3.0)  # breakeven at +3 %, no take-profit
SIDES = pytest.mark.parametrize("side", [Side.BUY, Side.SELL], ids=["long", "short"])


# =============================================================================================
# helpers
# =============================================================================================


def sgn(side: Side) -> float:
    """+1 for a long, -1 for a short: a price ``100 + sgn * x`` is ``x`` in profit."""
    return 1.0 if side is Side.BUY else -1.0


def closing(side: Side) -> Side:
    return Side.SELL if side is Side.BUY else Side.BUY


def profit(side: Side, pct: float, entry: float = 100.0) -> float:
    """The price ``pct`` percent in profit from ``entry`` (above for a long, below for a short)."""
    return entry * (1 + sgn(side) * pct / 100)


def beyond(side: Side, level: float) -> float:
    """The next float past ``level`` on the profit side (above for a long, below for a short)."""
    return math.nextafter(level, math.inf if side is Side.BUY else -math.inf)


def short_of(side: Side, level: float) -> float:
    """The next float before ``level`` seen from the entry (below for a long, above for a short)."""
    return math.nextafter(level, -math.inf if side is Side.BUY else math.inf)


class Rig:
    """A BrainCore (shorts allowed) with real tracker and breakers, a scripted strategy and a scripted
    clock; bars carry a high and a low of their own."""

    def __init__(self, *, rules: ExitRules = TP_RULES, lot_size: float = 0.0, exchange_stops: bool = False,
                 entry_fraction: float = 0.05) -> None:  # fmt: skip
        self.strategy = Scripted()
        self.config = BrainConfig(BTC, entry_fraction=entry_fraction, lot_size=lot_size,
                                  exchange_stops=exchange_stops, allow_short=True)  # fmt: skip
        self.tracker = PositionTracker(CASH, rules)
        self.core = BrainCore(self.config, self.strategy, self.tracker, CircuitBreakers(BreakerRules()),
                              itertools.count(1).__next__)  # fmt: skip
        self.now = T0

    @property
    def wall(self) -> int:
        return self.now + WALL_LAG

    def bar(self, close: float, signal: Side | None = None, *, high: float | None = None,
            low: float | None = None) -> Step:  # fmt: skip
        """Advance the clock a minute, program ``signal`` and feed one bar closing at ``close``
        (its high and low default to the close)."""
        self.now += MIN
        self.strategy.next = signal
        hi = max(close, high if high is not None else close)
        lo = min(close, low if low is not None else close)
        return self.core.on_bar(Bar(self.now // MS - 60_000, close, hi, lo, close, 1.0), self.now, self.wall)

    def reach(self, side: Side, level: float, close: float) -> Step:
        """A bar closing at ``close`` whose extreme on ``side``'s profit side touches ``level`` exactly
        (the high for a long, the low for a short)."""
        if side is Side.BUY:
            return self.bar(close, high=level)
        return self.bar(close, low=level)

    def enter(self, side: Side, price: float = 100.0, *, fill_price: float | None = None,
              fee: float = FEE) -> Position:  # fmt: skip
        """A ``side`` signal at ``price`` while flat and its fill: a long (BUY) or a short (SELL) is open."""
        [d] = self.bar(price, side).decisions
        assert (d.side, d.intent) == (side, Intent.OPEN)
        assert self.core.on_confirmation(fill(d, fill_price, fee=fee)).applied is Applied.OPENED
        pos = self.tracker.position(BTC)
        assert pos is not None and pos.side is side
        return pos

    def take_profit(self) -> TradeDecision:
        """The TAKE_PROFIT due right after the entry's confirmation (:meth:`BrainCore.protect_now`)."""
        [tp] = self.core.protect_now(self.wall)
        assert tp.intent is Intent.TAKE_PROFIT
        return tp

    def resting(self, side: Side, **kw: float) -> TradeDecision:
        """An entry whose TAKE_PROFIT was ACCEPTED: the take-profit rests on the venue."""
        self.enter(side, **kw)
        tp = self.take_profit()
        assert self.core.on_confirmation(accept(tp)).applied is Applied.ACCEPTED
        assert self.core.pending == {}
        return tp

    def watch(self) -> ExitWatch:
        w = self.tracker.exit_watch(BTC)
        assert w is not None
        return w


def breakeven_of(pos: Position) -> float:
    """The breakeven level of ``pos`` as SPEC.md 'Exit legs' states it: entry ± 2 × entry fee / quantity."""
    per_unit = 2 * pos.entry_fees / pos.quantity
    return pos.avg_entry_price - per_unit if pos.short else pos.avg_entry_price + per_unit


def not_filled(d: TradeDecision) -> ExecutionConfirmation:
    """The executor's answer to a take-profit report while the take-profit rests unfilled."""
    return dataclasses.replace(refuse(d), reject_code=RejectCode.VENUE_ERROR)


# =============================================================================================
# 1. the rules and the plan
# =============================================================================================


def test_leg_rules_are_off_by_default_and_validated() -> None:
    """Defaults: no take-profit (0), half the position when on, no breakeven trigger (0); a take-profit or
    trigger percent outside [0, 100) and a fraction outside (0, 1) are refused."""
    rules = ExitRules()
    assert (rules.partial_tp_pct, rules.partial_tp_fraction, rules.breakeven_trigger_pct) == (0.0, 0.5, 0.0)
    for bad in ({"partial_tp_pct": -1.0}, {"partial_tp_pct": 100.0}, {"partial_tp_fraction": 0.0},
                {"partial_tp_fraction": 1.0}, {"partial_tp_fraction": 1.5}, {"breakeven_trigger_pct": -0.5},
                {"breakeven_trigger_pct": 100.0}):  # fmt: skip
        with pytest.raises(ValueError):
            ExitRules(**bad)  # type: ignore[arg-type]
    assert (
        ExitRules(partial_tp_pct=99.9, partial_tp_fraction=0.99, breakeven_trigger_pct=99.9).partial_tp_pct
        == 99.9
    )


@SIDES
def test_plan_levels_of_the_legs(side: Side) -> None:
    """Entry 200, take-profit 5 % for 40 %, trigger 3 %: the limit sits 5 % in profit (210 long, 190
    short), the trigger 3 % (206 / 194); the hard stop and the trailing activation are unchanged."""
    rules = ExitRules(partial_tp_pct=5.0, partial_tp_fraction=0.4, breakeven_trigger_pct=3.0)
    plan = ExitPlan.for_entry(rules, 200.0, T0, side=side)
    assert plan.tp_price == pytest.approx(profit(side, 5.0, 200.0))
    assert plan.tp_fraction == 0.4
    assert plan.breakeven_trigger_price == pytest.approx(profit(side, 3.0, 200.0))
    bare = ExitPlan.for_entry(ExitRules(), 200.0, T0, side=side)
    assert (plan.stop_price, plan.activation_price) == (bare.stop_price, bare.activation_price)
    assert plan.stop_price == pytest.approx(profit(side, -8.0, 200.0))


@SIDES
def test_plan_without_legs_has_no_levels_and_never_triggers(side: Side) -> None:
    """With the legs off the plan holds 0 for the limit, the fraction and the trigger; nothing trades
    through and nothing triggers, however far the price goes. Each leg is independent of the other."""
    plan = ExitPlan.for_entry(ExitRules(), 100.0, T0, side=side)
    assert (plan.tp_price, plan.tp_fraction, plan.breakeven_trigger_price) == (0.0, 0.0, 0.0)
    assert not plan.traded_through(1e12, 1e-12)
    assert not plan.breakeven_triggered(1e12) and not plan.breakeven_triggered(1e-12)
    only_trigger = ExitPlan.for_entry(TRIGGER_RULES, 100.0, T0, side=side)
    assert (only_trigger.tp_price, only_trigger.tp_fraction) == (0.0, 0.0)
    assert only_trigger.breakeven_trigger_price == pytest.approx(profit(side, 3.0))
    only_tp = ExitPlan.for_entry(TP_RULES, 100.0, T0, side=side)
    assert only_tp.tp_price == pytest.approx(profit(side, 5.0)) and only_tp.tp_fraction == 0.5
    assert only_tp.breakeven_trigger_price == 0.0


@SIDES
def test_traded_through_edges(side: Side) -> None:
    """A bar trades through a long's limit when its high is at or above it, a short's when its low is at or
    below it — the limit itself counts, the float before it does not, and the other extreme never does."""
    plan = ExitPlan.for_entry(TP_RULES, 100.0, T0, side=side)
    tp = plan.tp_price
    if side is Side.BUY:
        assert plan.traded_through(tp, 99.0)
        assert plan.traded_through(beyond(side, tp), 99.0)
        assert not plan.traded_through(short_of(side, tp), 99.0)
        assert not plan.traded_through(104.0, 1.0)  # a deep low is a short's trade-through, not a long's
    else:
        assert plan.traded_through(101.0, tp)
        assert plan.traded_through(101.0, beyond(side, tp))
        assert not plan.traded_through(101.0, short_of(side, tp))
        assert not plan.traded_through(1e6, 96.0)  # a high spike is a long's trade-through, not a short's


@SIDES
def test_breakeven_triggered_edges(side: Side) -> None:
    """The trigger fires at its price and beyond (above for a long, below for a short), not a float
    before it, and never on the losing side."""
    plan = ExitPlan.for_entry(TRIGGER_RULES, 100.0, T0, side=side)
    trigger = plan.breakeven_trigger_price
    assert plan.breakeven_triggered(trigger)
    assert plan.breakeven_triggered(beyond(side, trigger))
    assert plan.breakeven_triggered(profit(side, 20.0))
    assert not plan.breakeven_triggered(short_of(side, trigger))
    assert not plan.breakeven_triggered(100.0)
    assert not plan.breakeven_triggered(profit(side, -5.0))


# =============================================================================================
# 2. the watch: the floor tightens the stop, never loosens it
# =============================================================================================


@SIDES
def test_floor_tightens_the_stop_and_a_stop_out_at_it_is_breakeven(side: Side) -> None:
    """Without a floor the stop in force is the plan's (STOP_LOSS at it); with the floor at entry ± 0.4 the
    stop in force is the floor: the floor itself, a price past it and the old plan stop all fire
    BREAKEVEN; a price a float inside it does not fire."""
    plan = ExitPlan.for_entry(ExitRules(), 100.0, T0, side=side)
    w = ExitWatch(plan)
    assert w.floor is None and w.stop_price == plan.stop_price
    assert ExitWatch(plan).evaluate(plan.stop_price, T0 + 1) is DecisionReason.STOP_LOSS
    floor = profit(side, 0.4)
    w.floor = floor
    assert w.stop_price == floor
    assert w.evaluate(beyond(side, floor), T0 + 1) is None
    assert w.evaluate(floor, T0 + 2) is DecisionReason.BREAKEVEN
    for price in (profit(side, -0.5), plan.stop_price, profit(side, -20.0)):
        fresh = ExitWatch(plan)
        fresh.floor = floor
        assert fresh.evaluate(price, T0 + 3) is DecisionReason.BREAKEVEN, price


@SIDES
def test_floor_never_loosens_the_stop(side: Side) -> None:
    """A plan stop already past breakeven (101 for a long, 99 for a short) stays the stop in force when a
    looser floor (100.4 / 99.6) is set: it fires at its own level, as STOP_LOSS, and a price between the
    two does not fire."""
    stop = profit(side, 1.0)
    plan = ExitPlan.for_entry(ExitRules(), 100.0, T0, stop, side)
    w = ExitWatch(plan)
    w.floor = profit(side, 0.4)
    assert w.stop_price == stop
    assert (
        w.evaluate(profit(side, 0.8), T0 + 1) is DecisionReason.STOP_LOSS
    )  # between floor and stop: the stop binds
    fresh = ExitWatch(plan)
    fresh.floor = profit(side, 0.4)
    assert fresh.evaluate(profit(side, 1.5), T0 + 1) is None


# =============================================================================================
# 3. the TAKE_PROFIT decision
# =============================================================================================


@SIDES
def test_take_profit_decided_right_after_the_entry_fill(side: Side) -> None:
    """An entry that fills at 100.2 (fee 1): protect_now gives one TAKE_PROFIT on the closing side, reason
    PARTIAL_TAKE_PROFIT, for half the 5 units, its limit (stop_price) 5 % from the FILL, referred to the
    average entry at the fill's time; asked once only; awaited like any decision."""
    r = Rig()
    pos = r.enter(side, fill_price=100.2)
    [tp] = r.core.protect_now(r.wall)
    assert (tp.side, tp.intent, tp.reason) == (
        closing(side),
        Intent.TAKE_PROFIT,
        DecisionReason.PARTIAL_TAKE_PROFIT,
    )
    assert tp.instrument == BTC
    assert tp.quantity == 2.5 == pos.quantity * 0.5
    assert tp.stop_price == pos.plan.tp_price == pytest.approx(profit(side, 5.0, 100.2))
    assert tp.reference_price == pos.avg_entry_price == 100.2
    assert tp.market_ts_ns == pos.opened_at_ns and tp.created_at_ns == r.wall
    assert r.core.pending == {tp.decision_id: tp}
    assert r.core.protect_now(r.wall) == ()
    # while it awaits its answer, a bar through the limit reports nothing
    assert r.reach(side, profit(side, 6.0, 100.2), profit(side, 1.0)).decisions == ()
    assert r.tracker.position(BTC) == pos


@SIDES
def test_take_profit_decided_on_the_next_bar_without_protect_now(side: Side) -> None:
    """When protect_now is not called, the next bar places the take-profit: the same TAKE_PROFIT,
    referred to that bar's close and time."""
    r = Rig()
    pos = r.enter(side)
    [tp] = r.bar(profit(side, 1.0)).decisions
    assert (tp.side, tp.intent, tp.reason, tp.quantity) == (closing(side), Intent.TAKE_PROFIT,
                                                             DecisionReason.PARTIAL_TAKE_PROFIT, 2.5)  # fmt: skip
    assert tp.stop_price == pos.plan.tp_price
    assert tp.reference_price == profit(side, 1.0) and tp.market_ts_ns == r.now
    assert r.core.protect_now(r.wall) == ()  # not twice


@pytest.mark.parametrize(("lot", "fraction", "expected"),
                         [(1.0, 0.5, 2.0), (1.0, 0.3, 1.0), (0.1, 0.33, 1.6), (0.0, 0.33, 1.65)])  # fmt: skip
@SIDES
def test_take_profit_quantity_rounds_down_to_the_lot(
    side: Side, lot: float, fraction: float, expected: float
) -> None:
    """5 units held: half is 2.5 → 2 lots of 1; 30 % is 1.5 → 1; 33 % is 1.65 → 1.6 with a 0.1 lot, 1.65
    with no lot size."""
    r = Rig(rules=ExitRules(partial_tp_pct=5.0, partial_tp_fraction=fraction), lot_size=lot)
    pos = r.enter(side)
    assert pos.quantity == pytest.approx(5.0)
    tp = r.take_profit()
    assert tp.quantity == pytest.approx(expected)
    assert tp.quantity <= pos.quantity * fraction


@SIDES
def test_take_profit_smaller_than_a_lot_is_not_decided(side: Side) -> None:
    """With a 3-unit lot the entry is 3 units and half of it rounds down to 0 lots: no TAKE_PROFIT, ever,
    and nothing is reported when a bar trades through the would-be limit."""
    r = Rig(lot_size=3.0)
    pos = r.enter(side)
    assert pos.quantity == 3.0
    assert r.core.protect_now(r.wall) == ()
    assert r.reach(side, profit(side, 6.0), profit(side, 2.0)).decisions == ()
    assert r.bar(profit(side, 1.0)).decisions == ()


# =============================================================================================
# 4. ACCEPTED: the take-profit rests; its fill reported on a trade-through only
# =============================================================================================


@SIDES
def test_resting_take_profit_is_reported_only_when_a_bar_trades_through(side: Side) -> None:
    """Once ACCEPTED the take-profit rests: bars that stop a float short of the limit, or spike the
    wrong way, report nothing; the bar whose extreme touches the limit exactly decides a REDUCE on the
    closing side, reason PARTIAL_TAKE_PROFIT, for the take-profit's quantity, referred to its limit. The
    position changes only with that REDUCE's confirmation."""
    r = Rig()
    tp = r.resting(side)
    pos = r.tracker.position(BTC)
    limit = tp.stop_price
    assert r.reach(side, short_of(side, limit), profit(side, 1.0)).decisions == ()
    assert r.reach(side, profit(side, -5.0), profit(side, 1.0)).decisions == ()  # the losing side's extreme
    assert r.bar(profit(side, 2.0)).decisions == ()
    [d] = r.reach(side, limit, profit(side, 4.0)).decisions
    assert (d.side, d.intent, d.reason) == (closing(side), Intent.REDUCE, DecisionReason.PARTIAL_TAKE_PROFIT)
    assert d.quantity == tp.quantity == 2.5
    assert d.reference_price == limit and d.market_ts_ns == r.now
    assert r.core.pending == {d.decision_id: d}
    assert r.tracker.position(BTC) == pos and r.watch().floor is None
    assert r.reach(side, limit, profit(side, 4.0)).decisions == ()  # awaited: not asked twice


@SIDES
def test_rejected_report_keeps_the_take_profit_resting_and_asks_again(side: Side) -> None:
    """A report answered REJECTED / VENUE_ERROR (the take-profit rests unfilled) changes nothing: no floor,
    the same position; a bar that does not trade through asks nothing, the next that does sends the
    REDUCE again (same quantity and limit, a new decision)."""
    r = Rig()
    tp = r.resting(side)
    pos = r.tracker.position(BTC)
    [d1] = r.reach(side, tp.stop_price, profit(side, 4.0)).decisions
    assert r.core.on_confirmation(not_filled(d1)).applied is Applied.NOT_EXECUTED
    assert r.core.pending == {} and r.tracker.position(BTC) == pos and r.watch().floor is None
    assert r.bar(profit(side, 3.0)).decisions == ()
    assert r.core.protect_now(r.wall) == ()
    [d2] = r.reach(side, beyond(side, tp.stop_price), profit(side, 4.5)).decisions
    assert d2.decision_id != d1.decision_id
    assert (d2.intent, d2.reason, d2.quantity, d2.reference_price) == (
        Intent.REDUCE, DecisionReason.PARTIAL_TAKE_PROFIT, tp.quantity, tp.stop_price)  # fmt: skip


@pytest.mark.parametrize("how", ["expired", "abandoned"])
@SIDES
def test_expired_report_does_not_close_the_whole_position(side: Side, how: str) -> None:
    """A take-profit report that never reached the venue in time (answered EXPIRED, or abandoned as never
    executed) sent no order: the take-profit still rests, the REDUCE of its quantity is the thing to ask
    again. It must never become a CLOSE of the whole position (a market exit labelled
    PARTIAL_TAKE_PROFIT): the next bar through the limit decides the REDUCE for the take-profit's quantity."""
    r = Rig()
    tp = r.resting(side)
    [d1] = r.reach(side, tp.stop_price, profit(side, 4.0)).decisions
    if how == "expired":
        r.core.on_confirmation(refuse(d1, Status.EXPIRED))
    else:
        assert r.core.abandon(d1.decision_id) == d1
    assert r.core.pending == {}
    [d2] = r.reach(side, tp.stop_price, profit(side, 4.0)).decisions
    assert d2.intent is not Intent.CLOSE, f"{d2.intent.name} {d2.quantity} ({d2.reason.name})"
    assert (d2.intent, d2.reason, d2.quantity) == (
        Intent.REDUCE,
        DecisionReason.PARTIAL_TAKE_PROFIT,
        tp.quantity,
    )


# =============================================================================================
# 5. refused: the leg is off for this position
# =============================================================================================


@SIDES
def test_refused_take_profit_turns_the_leg_off(side: Side) -> None:
    """A TAKE_PROFIT answered REJECTED (the venue cannot rest one): no further TAKE_PROFIT, no REDUCE report
    however far bars trade through, no breakeven floor; the hard stop still fires as STOP_LOSS."""
    r = Rig()
    pos = r.enter(side)
    tp = r.take_profit()
    assert r.core.on_confirmation(refuse(tp)).applied is Applied.NOT_EXECUTED
    assert r.core.pending == {} and r.core.protect_now(r.wall) == ()
    for _ in range(3):
        assert r.reach(side, profit(side, 7.0), profit(side, 4.0)).decisions == ()
    assert r.tracker.position(BTC) == pos and r.watch().floor is None
    [c] = r.bar(pos.plan.stop_price).decisions
    assert (c.intent, c.reason, c.quantity) == (Intent.CLOSE, DecisionReason.STOP_LOSS, 5.0)


# =============================================================================================
# 6. the take-profit's fill: reduce, and the stop to breakeven
# =============================================================================================


@SIDES
def test_take_profit_fill_reduces_and_moves_the_stop_to_breakeven(side: Side) -> None:
    """The report's FILLED answer at the limit: the position keeps 2.5 of 5 units (trade reason
    PARTIAL_TAKE_PROFIT, referred to the limit) and the floor is entry ± 2 × fee / quantity = 100.4 for a long,
    99.6 for a short — the protective level; without exchange stops nothing is sent for it, and the
    leg is done: no more TAKE_PROFIT or REDUCE however the bars go."""
    r = Rig()
    tp = r.resting(side)
    [d] = r.reach(side, tp.stop_price, profit(side, 4.0)).decisions
    result = r.core.on_confirmation(fill(d, fee=0.5))
    assert result.applied is Applied.REDUCED
    pos = result.position
    assert pos is not None and pos == r.tracker.position(BTC)
    assert pos.quantity == 2.5 and pos.side is side and pos.entry_fees == pytest.approx(0.5)
    trade = result.trade
    assert trade is not None and trade.exit_reason is DecisionReason.PARTIAL_TAKE_PROFIT
    assert (trade.quantity, trade.exit_price, trade.exit_reference_price) == (
        2.5,
        tp.stop_price,
        tp.stop_price,
    )
    floor = r.watch().floor
    assert floor == breakeven_of(pos)
    assert floor == pytest.approx(profit(side, 0.4))
    assert r.watch().stop_price == floor == r.core.protective_level(BTC)
    assert r.core.protect_now(r.wall) == ()
    assert r.reach(side, profit(side, 8.0), profit(side, 4.0)).decisions == ()
    assert r.bar(profit(side, 1.0)).decisions == ()
    assert r.tracker.position(BTC) == pos


@SIDES
def test_take_profit_fill_with_exchange_stops_protects_at_breakeven(side: Side) -> None:
    """With exchange stops, right after the take-profit's fill protect_now sends a PROTECT on the closing
    side, reason BREAKEVEN, for the 2.5 units left, its stop exactly the floor (entry ± 2 × fee / qty);
    once ACCEPTED it is the venue's stop and nothing more is sent on quiet bars."""
    r = Rig(exchange_stops=True)
    tp = r.resting(side)
    assert r.core.stop_on_venue(BTC) == pytest.approx(profit(side, -8.0))
    [d] = r.reach(side, tp.stop_price, profit(side, 4.0)).decisions
    pos = r.core.on_confirmation(fill(d)).position
    assert pos is not None
    [p] = r.core.protect_now(r.wall)
    assert (p.side, p.intent, p.reason, p.quantity) == (
        closing(side),
        Intent.PROTECT,
        DecisionReason.BREAKEVEN,
        2.5,
    )
    assert p.stop_price == r.watch().floor == breakeven_of(pos)
    assert p.stop_price == pytest.approx(profit(side, 0.4))
    assert r.core.protect_now(r.wall) == ()
    assert r.core.on_confirmation(accept(p)).applied is Applied.ACCEPTED
    assert r.core.stop_on_venue(BTC) == p.stop_price
    assert r.bar(profit(side, 2.0)).decisions == ()
    assert r.reach(side, profit(side, 6.0), profit(side, 3.0)).decisions == ()


@SIDES
def test_breakeven_protect_goes_on_the_next_bar_without_protect_now(side: Side) -> None:
    """When protect_now is not called after the take-profit's fill, the next bar sends the PROTECT
    BREAKEVEN at the floor, referred to its close."""
    r = Rig(exchange_stops=True)
    tp = r.resting(side)
    [d] = r.reach(side, tp.stop_price, profit(side, 4.0)).decisions
    pos = r.core.on_confirmation(fill(d)).position
    assert pos is not None
    [p] = r.bar(profit(side, 3.0)).decisions
    assert (p.intent, p.reason, p.quantity) == (Intent.PROTECT, DecisionReason.BREAKEVEN, 2.5)
    assert p.stop_price == breakeven_of(pos) and p.reference_price == profit(side, 3.0)


@SIDES
def test_take_profit_fill_then_a_stop_out_at_the_floor_is_breakeven(side: Side) -> None:
    """After the take-profit filled, a bar a float inside the floor exits nothing; a close at the floor
    decides a CLOSE of the 2.5 units left with reason BREAKEVEN, booked as such — and with the exit's fee
    equal to the entry's share, the trade nets zero (that is what breakeven means)."""
    r = Rig()
    tp = r.resting(side)
    [d] = r.reach(side, tp.stop_price, profit(side, 4.0)).decisions
    r.core.on_confirmation(fill(d, fee=0.5))
    floor = r.watch().floor
    assert floor is not None
    assert r.bar(beyond(side, floor)).decisions == ()
    [c] = r.bar(floor).decisions
    assert (c.side, c.intent, c.reason, c.quantity) == (
        closing(side),
        Intent.CLOSE,
        DecisionReason.BREAKEVEN,
        2.5,
    )
    result = r.core.on_confirmation(fill(c, fee=0.5))
    assert result.applied is Applied.CLOSED and result.trade is not None
    assert result.trade.exit_reason is DecisionReason.BREAKEVEN
    assert result.trade.net_pnl == pytest.approx(0.0, abs=1e-9)
    assert [t.exit_reason for t in r.tracker.closed_trades] == [DecisionReason.PARTIAL_TAKE_PROFIT,
                                                                 DecisionReason.BREAKEVEN]  # fmt: skip


@SIDES
def test_take_profit_filled_at_once_does_not_close_the_rest(side: Side) -> None:
    """The venue may fill the TAKE_PROFIT the moment it is placed (the executor's gateway then answers
    FILLED: the fill is final). That is the take-profit done — 2.5 units left, trade PARTIAL_TAKE_PROFIT,
    the floor set — and not a partly filled exit to finish: the next quiet bar (between the floor and
    the limit) decides no CLOSE of the remainder."""
    r = Rig()
    r.enter(side)
    tp = r.take_profit()
    result = r.core.on_confirmation(fill(tp, tp.stop_price))
    assert result.applied is Applied.REDUCED
    assert result.trade is not None and result.trade.exit_reason is DecisionReason.PARTIAL_TAKE_PROFIT
    pos = r.tracker.position(BTC)
    assert pos is not None and pos.quantity == 2.5
    assert r.watch().floor == breakeven_of(pos)
    step = r.bar(profit(side, 3.0))
    assert [(d.intent.name, d.reason.name, d.quantity) for d in step.decisions] == []
    assert r.tracker.position(BTC) == pos


# =============================================================================================
# 7. the breakeven trigger
# =============================================================================================


@SIDES
def test_trigger_moves_the_stop_to_breakeven_on_a_close(side: Side) -> None:
    """Trigger at 3 %: a bar whose extreme passes the trigger but closes a float short of it sets no floor;
    a close exactly at the trigger sets it (entry ± 2 × fee / qty) without a decision (no exchange stops);
    then a close at the floor exits the whole position with reason BREAKEVEN."""
    r = Rig(rules=TRIGGER_RULES)
    pos = r.enter(side)
    trigger = pos.plan.breakeven_trigger_price
    assert r.core.protect_now(r.wall) == ()  # no take-profit leg
    assert r.reach(side, profit(side, 4.0), short_of(side, trigger)).decisions == ()
    assert r.watch().floor is None
    assert r.bar(trigger).decisions == ()
    assert r.watch().floor == breakeven_of(pos) == pytest.approx(profit(side, 0.4))
    assert r.core.protective_level(BTC) == r.watch().floor
    assert r.bar(beyond(side, r.watch().floor)).decisions == ()  # type: ignore[arg-type]
    [c] = r.bar(profit(side, 0.2)).decisions
    assert (c.side, c.intent, c.reason, c.quantity) == (
        closing(side),
        Intent.CLOSE,
        DecisionReason.BREAKEVEN,
        5.0,
    )
    result = r.core.on_confirmation(fill(c))
    assert result.applied is Applied.CLOSED and result.trade is not None
    assert result.trade.exit_reason is DecisionReason.BREAKEVEN


@SIDES
def test_trigger_with_exchange_stops_protects_at_breakeven_once(side: Side) -> None:
    """With exchange stops the trigger bar itself sends PROTECT BREAKEVEN at the floor exactly (closing side,
    the whole position, referred to the bar's close); after it is ACCEPTED, later closes past the trigger
    neither move the floor nor send another PROTECT."""
    r = Rig(rules=TRIGGER_RULES, exchange_stops=True)
    pos = r.enter(side)
    [p] = r.bar(profit(side, 3.5)).decisions
    assert (p.side, p.intent, p.reason, p.quantity) == (
        closing(side),
        Intent.PROTECT,
        DecisionReason.BREAKEVEN,
        5.0,
    )
    assert p.stop_price == breakeven_of(pos) == r.watch().floor
    assert p.reference_price == profit(side, 3.5) and p.market_ts_ns == r.now
    r.core.on_confirmation(accept(p))
    assert r.core.stop_on_venue(BTC) == p.stop_price
    assert r.bar(profit(side, 4.0)).decisions == ()
    assert r.bar(profit(side, 3.0)).decisions == ()
    assert r.watch().floor == p.stop_price


@SIDES
def test_trailing_stop_past_the_floor_wins(side: Side) -> None:
    """The floor never holds a stop back: once the trailing stop (5 % from the best price since +12 %) is
    tighter than the breakeven floor, it is the protective level and its exit is TRAILING_TAKE_PROFIT."""
    r = Rig(rules=TRIGGER_RULES)
    r.enter(side)
    r.bar(profit(side, 3.0))
    floor = r.watch().floor
    assert floor is not None
    assert r.bar(profit(side, 13.0)).decisions == ()
    trail = r.watch().trailing_stop
    assert trail == pytest.approx(profit(side, 13.0) * (1 - sgn(side) * 0.05))
    assert r.core.protective_level(BTC) == trail
    [c] = r.bar(profit(side, 7.0)).decisions
    assert (c.intent, c.reason) == (Intent.CLOSE, DecisionReason.TRAILING_TAKE_PROFIT)


# =============================================================================================
# 8. CLOSE forgets the take-profit
# =============================================================================================


@SIDES
def test_close_forgets_the_take_profit(side: Side) -> None:
    """A position closed (stop-out) while its take-profit rests: flat bars through the old limit report
    nothing; after a new entry the first bar through the limit places a NEW TAKE_PROFIT (never a REDUCE
    for the forgotten one), bars while it awaits its answer report nothing, and only once it is ACCEPTED
    does a bar through the limit send the REDUCE report."""
    r = Rig()
    old = r.resting(side)
    pos = r.tracker.position(BTC)
    assert pos is not None
    [c] = r.bar(pos.plan.stop_price).decisions
    assert (c.intent, c.reason) == (Intent.CLOSE, DecisionReason.STOP_LOSS)
    assert r.core.on_confirmation(fill(c)).applied is Applied.CLOSED
    assert r.reach(side, old.stop_price, profit(side, 2.0)).decisions == ()
    assert r.core.protect_now(r.wall) == ()
    r.enter(side)
    [tp] = r.reach(side, old.stop_price, profit(side, 4.0)).decisions
    assert (tp.intent, tp.reason) == (Intent.TAKE_PROFIT, DecisionReason.PARTIAL_TAKE_PROFIT)
    assert tp.decision_id != old.decision_id
    assert r.reach(side, old.stop_price, profit(side, 4.0)).decisions == ()
    r.core.on_confirmation(accept(tp))
    [d] = r.reach(side, tp.stop_price, profit(side, 4.0)).decisions
    assert (d.intent, d.reason, d.quantity) == (
        Intent.REDUCE,
        DecisionReason.PARTIAL_TAKE_PROFIT,
        tp.quantity,
    )


@SIDES
def test_close_forgets_the_take_profit_and_a_refused_new_one_reports_nothing(side: Side) -> None:
    """After a stop-out CLOSE and a new entry whose TAKE_PROFIT is refused, no bar through the limit reports
    a fill: the old take-profit was forgotten with the position, and the new one never rested."""
    r = Rig()
    r.resting(side)
    pos = r.tracker.position(BTC)
    assert pos is not None
    [c] = r.bar(pos.plan.stop_price).decisions
    r.core.on_confirmation(fill(c))
    r.enter(side)
    tp = r.take_profit()
    r.core.on_confirmation(refuse(tp))
    for _ in range(2):
        assert r.reach(side, profit(side, 6.0), profit(side, 4.0)).decisions == ()


# =============================================================================================
# 9. legs off: nothing new
# =============================================================================================


@pytest.mark.parametrize("exchange_stops", [False, True], ids=["brain-stops", "exchange-stops"])
@SIDES
def test_legs_off_by_default_nothing_changes(side: Side, exchange_stops: bool) -> None:
    """Default rules: no TAKE_PROFIT after the fill, none on later bars however far they spike, no floor at
    any profit; the stop stays the plan's 8 % and fires STOP_LOSS."""
    r = Rig(rules=ExitRules(), exchange_stops=exchange_stops)
    pos = r.enter(side)
    assert r.core.protect_now(r.wall) == ()
    for close, extreme in ((2.0, 6.0), (4.0, 11.0), (5.0, 5.0), (3.0, 3.0)):
        step = r.reach(side, profit(side, extreme), profit(side, close))
        assert step.decisions == () and step.skips == ()
    assert r.watch().floor is None and r.watch().stop_price == pos.plan.stop_price
    assert r.core.protective_level(BTC) == pos.plan.stop_price
    [c] = r.bar(pos.plan.stop_price).decisions
    assert (c.side, c.intent, c.reason, c.quantity) == (
        closing(side),
        Intent.CLOSE,
        DecisionReason.STOP_LOSS,
        5.0,
    )


@SIDES
def test_legs_off_trailing_with_exchange_stops_is_as_before(side: Side) -> None:
    """Default rules with exchange stops, the trailing path: the activation bar (±13) sends PROTECT
    TRAILING_TAKE_PROFIT at 5 % from it, a further move (±20) moves it again, the pull-back (±13) closes
    with TRAILING_TAKE_PROFIT — no TAKE_PROFIT, no PARTIAL_TAKE_PROFIT, no BREAKEVEN anywhere."""
    r = Rig(rules=ExitRules(), exchange_stops=True)
    r.enter(side)
    assert r.reach(side, profit(side, 10.0), profit(side, 6.0)).decisions == ()
    [p1] = r.bar(profit(side, 13.0)).decisions
    assert (p1.intent, p1.reason) == (Intent.PROTECT, DecisionReason.TRAILING_TAKE_PROFIT)
    assert p1.stop_price == pytest.approx(profit(side, 13.0) * (1 - sgn(side) * 0.05))
    r.core.on_confirmation(accept(p1))
    [p2] = r.bar(profit(side, 20.0)).decisions
    assert (p2.intent, p2.reason) == (Intent.PROTECT, DecisionReason.TRAILING_TAKE_PROFIT)
    r.core.on_confirmation(accept(p2))
    [c] = r.bar(profit(side, 13.0)).decisions
    assert (c.intent, c.reason, c.quantity) == (Intent.CLOSE, DecisionReason.TRAILING_TAKE_PROFIT, 5.0)
    assert not any(d.intent is Intent.TAKE_PROFIT or d.reason in (DecisionReason.PARTIAL_TAKE_PROFIT,
                                                                   DecisionReason.BREAKEVEN) for d in (p1, p2, c))  # fmt: skip


@pytest.mark.parametrize("answer", ["gone", "no_position"])
@SIDES
def test_a_report_refused_for_good_turns_the_leg_off(side: Side, answer: str) -> None:
    """A report answered FAILED / VENUE_ERROR (no take-profit rests any more: the venue expired it) or
    REJECTED / INSUFFICIENT_POSITION (nothing on its side to take profit on) turns the leg off: the next
    bar through the limit asks nothing, unlike a REJECTED / VENUE_ERROR ("rests unfilled")."""
    r = Rig()
    tp = r.resting(side)
    [d1] = r.reach(side, tp.stop_price, profit(side, 4.0)).decisions
    if answer == "gone":
        conf = dataclasses.replace(refuse(d1), status=Status.FAILED, reject_code=RejectCode.VENUE_ERROR)
    else:
        conf = dataclasses.replace(refuse(d1), reject_code=RejectCode.INSUFFICIENT_POSITION)
    assert r.core.on_confirmation(conf).applied is Applied.NOT_EXECUTED
    step = r.reach(side, beyond(side, tp.stop_price), profit(side, 4.5))
    assert [d for d in step.decisions if d.reason is DecisionReason.PARTIAL_TAKE_PROFIT] == []
