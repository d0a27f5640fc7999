"""Short positions in the brain (issue #16): the mirrored exit plan, the signed tracker, and the core's
short entries, covers, reversals, breakers and exchange stops — pure, times passed in."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest
from factories import BTC, DAY, ETH, MIN, MS, T0, Scripted, accept, bar, failed, fill, filled, refuse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brain.core import BrainConfig, BrainCore, SkipReason, Step
from brain.exits import ExitPlan, ExitRules, ExitWatch
from brain.risk import BreakerKind, BreakerRules, CircuitBreakers
from brain.tracker import Applied, PositionTracker
from protocol import (
    RECONCILE_ID_BASE,
    DecisionReason,
    ExecutionConfirmation,
    Intent,
    RejectCode,
    Side,
    Status,
    TradeDecision,
)

CASH = 10_000.0
RULES = ExitRules()
WALL_LAG = 5_000_000_000  # wall clock 5 s after market time


# =============================================================================================
# helpers
# =============================================================================================


def short_watch(entry: float = 100.0, opened_at_ns: int = T0, rules: ExitRules = RULES) -> ExitWatch:
    return ExitWatch(ExitPlan.for_entry(rules, entry, opened_at_ns, side=Side.SELL))


def tracker() -> PositionTracker:
    return PositionTracker(CASH, RULES)


def state(t: PositionTracker) -> tuple[Any, ...]:
    """Everything a confirmation may change, for equality checks."""
    plans = {inst: t.exit_watch(inst).plan for inst in t.positions}  # type: ignore[union-attr]
    return (t.cash, t.realized_pnl, t.fees, t.anomalies, t.positions, list(t.closed_trades), plans)


def short_open(decision_id: int, qty: float, price: float, at_ns: int = T0, *, fee: float = 0.0,
               instrument: Any = BTC, partial: bool = False) -> ExecutionConfirmation:  # fmt: skip
    """An executed SELL/OPEN: a short entry."""
    return filled(decision_id, Side.SELL, qty, price, at_ns, fee=fee, instrument=instrument, partial=partial,
                  intent=Intent.OPEN)  # fmt: skip


def cover(decision_id: int, qty: float, price: float, at_ns: int = T0, *, fee: float = 0.0,
          instrument: Any = BTC, partial: bool = False) -> ExecutionConfirmation:  # fmt: skip
    """An executed BUY/CLOSE: a short cover."""
    return filled(decision_id, Side.BUY, qty, price, at_ns, fee=fee, instrument=instrument, partial=partial,
                  intent=Intent.CLOSE)  # fmt: skip


def decision(decision_id: int, side: Side, intent: Intent, qty: float, reference: float, *,
             stop: float = 0.0, reason: DecisionReason = DecisionReason.SIGNAL) -> TradeDecision:  # fmt: skip
    return TradeDecision(
        decision_id=decision_id, instrument=BTC, side=side, intent=intent, reason=reason, quantity=qty,
        reference_price=reference, max_slippage_bps=50, created_at_ns=T0, expires_at_ns=T0 + 10 * MIN,
        market_ts_ns=T0, stop_price=stop,
    )  # fmt: skip


def reconciled(
    n: int, side: Side, intent: Intent, qty: float, price: float, at_ns: int = T0
) -> ExecutionConfirmation:
    """An executor-issued reconciliation confirmation (adopt, clear or drift)."""
    return ExecutionConfirmation(
        decision_id=RECONCILE_ID_BASE + n, seq=n, instrument=BTC, side=side, intent=intent, status=Status.FILLED,
        reject_code=RejectCode.NONE, executed_qty=qty, avg_price=price, fee=0.0, executed_at_ns=at_ns,
        reconciled=True,
    )  # fmt: skip


class Rig:
    """A BrainCore (shorts allowed unless told) with real tracker and breakers, a scripted strategy
    and a scripted clock."""

    def __init__(self, *, allow_short: bool = True, entry_fraction: float = 0.05, exchange_stops: bool = False,
                 protect_step_bps: float = 25.0, rules: ExitRules = RULES,
                 breaker_rules: BreakerRules | None = None) -> None:  # fmt: skip
        self.strategy = Scripted()
        self.config = BrainConfig(BTC, entry_fraction=entry_fraction, exchange_stops=exchange_stops,
                                  protect_step_bps=protect_step_bps, allow_short=allow_short)  # fmt: skip
        self.tracker = PositionTracker(CASH, rules)
        self.breakers = CircuitBreakers(breaker_rules or BreakerRules())
        self.core = BrainCore(
            self.config, self.strategy, self.tracker, self.breakers, itertools.count(1).__next__
        )
        self.now = T0

    def bar(self, close: float, signal: Side | None = None, *, advance: int = MIN) -> Step:
        """Advance the clock, program ``signal`` and feed one bar closing at ``close``."""
        self.now += advance
        self.strategy.next = signal
        return self.core.on_bar(bar(close, self.now // MS - 60_000), self.now, self.now + WALL_LAG)

    def short(self, price: float = 100.0, fill_price: float | None = None) -> TradeDecision:
        """SELL signal at ``price`` while flat and its fill: a short is open."""
        [d] = self.bar(price, Side.SELL).decisions
        assert (d.side, d.intent) == (Side.SELL, Intent.OPEN)
        assert self.core.on_confirmation(fill(d, fill_price)).applied is Applied.OPENED
        return d

    def long(self, price: float = 100.0) -> TradeDecision:
        """BUY signal at ``price`` while flat and its fill: a long is open."""
        [d] = self.bar(price, Side.BUY).decisions
        assert (d.side, d.intent) == (Side.BUY, Intent.OPEN)
        assert self.core.on_confirmation(fill(d)).applied is Applied.OPENED
        return d


# =============================================================================================
# 1. the exit plan of a short
# =============================================================================================


def test_short_plan_levels_mirror_the_long_ones() -> None:
    """A short's plan: stop 8 % ABOVE the entry, activation 12 % BELOW it, 5 % trail, 14-day deadline."""
    plan = ExitPlan.for_entry(RULES, 250.0, T0, side=Side.SELL)
    assert plan.side is Side.SELL and plan.short
    assert plan.stop_price == pytest.approx(250.0 * 1.08) and plan.stop_price > plan.entry_price
    assert plan.activation_price == pytest.approx(250.0 * 0.88) and plan.activation_price < plan.entry_price
    assert plan.trail_fraction == pytest.approx(0.05)
    assert plan.deadline_ns == T0 + 14 * DAY
    long_plan = ExitPlan.for_entry(RULES, 250.0, T0)
    assert not long_plan.short and long_plan.stop_price == pytest.approx(250.0 * 0.92)


def test_short_plan_uses_a_given_stop_price_as_is() -> None:
    """A stop_price > 0 (the level placed from the fill) is the plan's stop, unchanged; the
    activation still comes from the entry."""
    plan = ExitPlan.for_entry(RULES, 100.0, T0, 108.54, Side.SELL)
    assert plan.stop_price == 108.54
    assert plan.activation_price == pytest.approx(88.0)
    assert ExitPlan.for_entry(RULES, 100.0, T0, 0.0, Side.SELL).stop_price == pytest.approx(108.0)


def test_short_stop_loss_fires_at_or_above_the_stop() -> None:
    """Entry 100: 107 is quiet, the stop level itself and 109 fire STOP_LOSS; a fall to 91 (a long's stop) does not."""
    w = short_watch()
    assert w.evaluate(107.0, T0 + 1) is None
    assert w.evaluate(91.0, T0 + 2) is None
    assert short_watch().evaluate(w.plan.stop_price, T0 + 1) is DecisionReason.STOP_LOSS
    assert short_watch().evaluate(109.0, T0 + 1) is DecisionReason.STOP_LOSS


def test_short_trailing_not_before_activation() -> None:
    """Above the −12 % activation (88) the trail is off: 95, 89, 100 exit nothing and arm nothing."""
    w = short_watch()
    for i, price in enumerate((95.0, 89.0, 100.0, 105.0)):
        assert w.evaluate(price, T0 + i) is None
    assert w.peak is None and w.trailing_stop is None


def test_short_trailing_tracks_the_lowest_price_and_fires_above_it() -> None:
    """85 activates (peak 85, trailing 89.25); a rise to 87 keeps the trough; 84 lowers it (88.2);
    88 is below the trailing stop; 88.3 fires TRAILING_TAKE_PROFIT."""
    w = short_watch()
    assert w.evaluate(85.0, T0 + 1) is None
    assert w.peak == 85.0 and w.trailing_stop == pytest.approx(85.0 * 1.05)
    assert w.evaluate(87.0, T0 + 2) is None
    assert w.peak == 85.0  # a higher price never raises a short's trough
    assert w.evaluate(84.0, T0 + 3) is None
    assert w.peak == 84.0 and w.trailing_stop == pytest.approx(88.2)
    assert w.evaluate(88.0, T0 + 4) is None
    assert w.evaluate(88.3, T0 + 5) is DecisionReason.TRAILING_TAKE_PROFIT


def test_short_trailing_activates_exactly_at_the_activation_price_and_fires_exactly_at_the_trail() -> None:
    """The activation price itself arms the trail; a price equal to trough × 1.05 fires it."""
    w = short_watch()
    assert w.evaluate(w.plan.activation_price, T0 + 1) is None
    assert w.peak == w.plan.activation_price
    stop = w.trailing_stop
    assert stop is not None and stop == pytest.approx(w.plan.activation_price * 1.05)
    assert w.evaluate(stop, T0 + 2) is DecisionReason.TRAILING_TAKE_PROFIT


def test_short_time_stop() -> None:
    """A short still open at the 14-day deadline exits with TIME_STOP, not a nanosecond before."""
    w = short_watch()
    assert w.evaluate(100.0, T0 + 14 * DAY - 1) is None
    assert w.evaluate(100.0, T0 + 14 * DAY) is DecisionReason.TIME_STOP


def test_short_stop_loss_wins_over_the_time_stop() -> None:
    """At the deadline a price above the stop reports STOP_LOSS (stop first, time last)."""
    assert short_watch().evaluate(110.0, T0 + 30 * DAY) is DecisionReason.STOP_LOSS


def test_short_trailing_stop_property() -> None:
    """trailing_stop is None before activation and trough × (1 + trail) after it — above the trough."""
    w = short_watch()
    assert w.trailing_stop is None
    w.evaluate(80.0, T0 + 1)
    assert w.trailing_stop == pytest.approx(84.0)
    assert w.trailing_stop > w.peak  # type: ignore[operator]
    w.evaluate(82.0, T0 + 2)
    assert w.trailing_stop == pytest.approx(84.0)  # the trough holds on a bounce


# =============================================================================================
# 2. the tracker with shorts
# =============================================================================================


def test_sell_open_opens_a_short() -> None:
    """A SELL/OPEN fill opens a short: side SELL, signed quantity < 0, closing side BUY, a mirrored plan;
    the sale's proceeds less fee are added to cash."""
    t = tracker()
    result = t.apply(short_open(1, 2, 100.0, T0, fee=0.5))
    assert result.applied is Applied.OPENED
    pos = t.position(BTC)
    assert pos is not None and result.position == pos
    assert pos.side is Side.SELL and pos.short
    assert pos.quantity == 2 and pos.signed_quantity == -2
    assert pos.closing_side is Side.BUY
    assert pos.avg_entry_price == 100.0 and pos.entry_fees == 0.5 and pos.entry_decision_id == 1
    assert t.cash == CASH + 200 - 0.5 and t.fees == 0.5
    watch = t.exit_watch(BTC)
    assert watch is not None and watch.plan == pos.plan
    assert pos.plan.short and pos.plan.stop_price == pytest.approx(108.0)
    assert pos.plan.activation_price == pytest.approx(88.0)


def test_short_equity_and_unrealized_pnl_are_signed() -> None:
    """Equity = cash + signed qty × mark: a short loses when the mark rises and gains when it falls."""
    t = tracker()
    t.apply(short_open(1, 2, 100.0, fee=0.5))
    cash = CASH + 200 - 0.5
    assert t.equity() == pytest.approx(cash - 200) and t.unrealized_pnl() == 0  # no mark yet: entry price
    assert t.mark(BTC, 105.0, T0 + MIN) is None
    assert t.equity() == pytest.approx(cash - 210) and t.unrealized_pnl() == pytest.approx(-10)
    assert t.mark(BTC, 90.0, T0 + 2 * MIN) is None
    assert t.equity() == pytest.approx(cash - 180) and t.unrealized_pnl() == pytest.approx(20)
    assert t.equity_at(BTC, 110.0) == pytest.approx(cash - 220)
    assert t.mark(BTC, 109.0, T0 + 3 * MIN) is DecisionReason.STOP_LOSS
    assert t.cash == cash  # marks never move cash


def test_adding_to_a_short_reweights_the_average() -> None:
    """SELL/OPEN 2 @ 100 then 2 @ 110: a 4-unit short at 105, plan from the average, first open kept."""
    t = tracker()
    t.apply(short_open(1, 2, 100.0, T0, fee=0.2))
    result = t.apply(short_open(2, 2, 110.0, T0 + MIN, fee=0.3))
    assert result.applied is Applied.ADDED
    pos = t.position(BTC)
    assert pos is not None and pos.side is Side.SELL and pos.signed_quantity == -4
    assert pos.avg_entry_price == pytest.approx(105.0)
    assert pos.opened_at_ns == T0 and pos.entry_decision_id == 1 and pos.entry_fees == pytest.approx(0.5)
    assert pos.plan.short and pos.plan.stop_price == pytest.approx(105.0 * 1.08)
    assert pos.plan.activation_price == pytest.approx(105.0 * 0.88)
    assert t.exit_watch(BTC).plan == pos.plan  # type: ignore[union-attr]
    assert t.cash == pytest.approx(CASH + 200 + 220 - 0.5)


@pytest.mark.parametrize(("exit_price", "gross"), [(90.0, 20.0), (110.0, -20.0)])
def test_buy_close_covers_the_short(exit_price: float, gross: float) -> None:
    """SELL 2 @ 100 then BUY/CLOSE 2: realized gross = (entry − exit) × qty; the trade's side is SELL;
    cash ends at start + gross − fees."""
    t = tracker()
    t.apply(short_open(1, 2, 100.0, T0, fee=0.5))
    result = t.apply(cover(2, 2, exit_price, T0 + DAY, fee=0.3), DecisionReason.SIGNAL)
    assert result.applied is Applied.CLOSED and result.position is None
    assert t.position(BTC) is None and t.exit_watch(BTC) is None
    assert t.realized_pnl == pytest.approx(gross)
    assert t.fees == pytest.approx(0.8)
    assert t.cash == pytest.approx(CASH + gross - 0.8)
    [trade] = t.closed_trades
    assert trade == result.trade
    assert trade.side is Side.SELL
    assert (trade.quantity, trade.entry_price, trade.exit_price) == (2, 100.0, exit_price)
    assert trade.gross_pnl == pytest.approx(gross) and trade.net_pnl == pytest.approx(gross - 0.8)
    assert trade.exit_reason is DecisionReason.SIGNAL
    assert (trade.entry_decision_id, trade.exit_decision_id, trade.opened_at_ns, trade.closed_at_ns) == (
        1, 2, T0, T0 + DAY)  # fmt: skip


@pytest.mark.parametrize(("fill_price", "bps"), [(90.9, 100.0), (89.1, -100.0), (90.0, 0.0)])
def test_cover_slippage_is_measured_as_a_buy(fill_price: float, bps: float) -> None:
    """A cover referred to 90 that fills at 90.9 paid more: +100 bps; at 89.1, −100 bps (better)."""
    t = tracker()
    t.apply(short_open(1, 2, 100.0))
    d = decision(2, Side.BUY, Intent.CLOSE, 2, 90.0)
    result = t.apply(cover(2, 2, fill_price, T0 + MIN), d.reason, decision=d)
    assert result.trade is not None and result.trade.exit_reference_price == 90.0
    assert result.trade.exit_slippage_bps == pytest.approx(bps)


def test_partial_cover_leaves_a_reduced_short() -> None:
    """SELL 4 @ 100, BUY/CLOSE 1 @ 95 (partial): a 3-unit short remains, same average and plan; 5 realized."""
    t = tracker()
    t.apply(short_open(1, 4, 100.0, fee=0.4))
    plan = t.position(BTC).plan  # type: ignore[union-attr]
    result = t.apply(cover(2, 1, 95.0, T0 + MIN, partial=True), DecisionReason.SIGNAL)
    assert result.applied is Applied.REDUCED
    pos = t.position(BTC)
    assert pos is not None and result.position == pos
    assert pos.side is Side.SELL and pos.signed_quantity == -3 and pos.avg_entry_price == 100.0
    assert pos.plan == plan and t.exit_watch(BTC).plan == plan  # type: ignore[union-attr]
    assert pos.entry_fees == pytest.approx(0.3)
    assert t.realized_pnl == pytest.approx(5.0)
    assert result.trade is not None and result.trade.side is Side.SELL and result.trade.quantity == 1
    assert result.trade.fees == pytest.approx(0.1)
    assert t.anomalies == 0


def test_over_cover_closes_the_short_and_never_opens_a_long() -> None:
    """SELL 2 @ 100, BUY/CLOSE 3 @ 95: the short closes on 2 units (10 realized), one anomaly, no long."""
    t = tracker()
    t.apply(short_open(1, 2, 100.0))
    result = t.apply(cover(2, 3, 95.0, T0 + MIN), DecisionReason.SIGNAL)
    assert result.applied is Applied.CLOSED and result.position is None
    assert t.positions == {} and t.exit_watch(BTC) is None
    assert t.anomalies == 1
    assert result.trade is not None and result.trade.quantity == 2 and result.trade.side is Side.SELL
    assert t.realized_pnl == pytest.approx(10.0)
    assert t.cash == pytest.approx(CASH + 200 - 3 * 95.0)  # the whole fill's cash is booked
    assert t.mark(BTC, 50.0, T0 + DAY) is None  # nothing left to exit


def _no_short_sell_close(t: PositionTracker) -> ExecutionConfirmation:
    return filled(9, Side.SELL, 1, 100.0, T0 + MIN, intent=Intent.CLOSE)


def _no_short_buy_close(t: PositionTracker) -> ExecutionConfirmation:
    return cover(9, 1, 100.0, T0 + MIN)


def _sell_close_while_short(t: PositionTracker) -> ExecutionConfirmation:
    t.apply(short_open(1, 2, 100.0))
    return filled(9, Side.SELL, 1, 100.0, T0 + MIN, intent=Intent.CLOSE)


@pytest.mark.parametrize("case", [_no_short_sell_close, _no_short_buy_close, _sell_close_while_short],
                         ids=["sell-close-flat", "buy-close-flat", "sell-close-while-short"])  # fmt: skip
def test_exits_on_the_wrong_side_are_anomalies(case: Any) -> None:
    """A SELL CLOSE or BUY CLOSE with no position, and a SELL CLOSE while short: one anomaly, its cash
    booked, no position opened or changed, no trade."""
    t = tracker()
    conf = case(t)
    positions, cash = t.positions, t.cash
    result = t.apply(conf, DecisionReason.SIGNAL)
    assert result.applied is Applied.ANOMALY
    assert t.anomalies == 1
    assert t.positions == positions and t.closed_trades == []
    assert result.position == positions.get(BTC)
    notional = conf.executed_qty * conf.avg_price
    assert t.cash == pytest.approx(cash + (notional if conf.side is Side.SELL else -notional))


def test_buy_open_while_short_covers_it() -> None:
    """A BUY (even intent OPEN) while a short is held covers the short first — it never nets into a long."""
    t = tracker()
    t.apply(short_open(1, 2, 100.0))
    result = t.apply(filled(2, Side.BUY, 2, 95.0, T0 + MIN, intent=Intent.OPEN), DecisionReason.SIGNAL)
    assert result.applied is Applied.CLOSED and t.positions == {}
    assert result.trade is not None and result.trade.side is Side.SELL
    assert t.realized_pnl == pytest.approx(10.0)


def test_protect_buy_filled_closes_the_short_as_a_stop_loss() -> None:
    """A BUY/PROTECT answered FILLED (the venue's stop bought) closes the short with reason STOP_LOSS
    whatever reason is passed; its slippage is measured against the stop level, as a buy."""
    t = tracker()
    t.apply(short_open(1, 2, 100.0, fee=0.5))
    p = decision(2, Side.BUY, Intent.PROTECT, 2, 95.0, stop=108.0, reason=DecisionReason.TRAILING_TAKE_PROFIT)
    conf = filled(2, Side.BUY, 2, 108.54, T0 + DAY, fee=0.5, intent=Intent.PROTECT)
    result = t.apply(conf, DecisionReason.TRAILING_TAKE_PROFIT, decision=p)
    assert result.applied is Applied.CLOSED and t.position(BTC) is None and t.exit_watch(BTC) is None
    trade = result.trade
    assert trade is not None and trade.exit_reason is DecisionReason.STOP_LOSS and trade.side is Side.SELL
    assert trade.gross_pnl == pytest.approx(-17.08)
    assert trade.exit_reference_price == 108.0
    assert trade.exit_slippage_bps == pytest.approx(50.0)  # paid 0.54 (0.5 %) above the 108 stop
    assert t.cash == pytest.approx(CASH - 17.08 - 1.0)


def test_reconciled_sell_open_adopts_a_short() -> None:
    """A reconciled OPEN/SELL (executor-issued id, reconciled=True) adopts a short with a plan from the
    rules; a reconciled CLOSE/BUY clears it again."""
    t = tracker()
    adopt = reconciled(1, Side.SELL, Intent.OPEN, 3, 100.0)
    assert adopt.decision_id >= RECONCILE_ID_BASE and adopt.reconciled
    result = t.apply(adopt, DecisionReason.MANUAL)
    assert result.applied is Applied.OPENED
    pos = t.position(BTC)
    assert pos is not None and pos.side is Side.SELL and pos.signed_quantity == -3
    assert pos.plan.short and pos.plan.stop_price == pytest.approx(108.0)
    assert t.cash == CASH + 300
    clear = t.apply(reconciled(2, Side.BUY, Intent.CLOSE, 3, 100.0, T0 + MIN), DecisionReason.MANUAL)
    assert clear.applied is Applied.CLOSED and t.positions == {} and t.anomalies == 0
    assert clear.trade is not None and clear.trade.exit_reason is DecisionReason.MANUAL


def test_replaying_short_confirmations_rebuilds_the_same_state() -> None:
    """Open, add, partial cover, a wrong-side anomaly, a failed fee, a duplicate, a stop fill, a
    reconciled adoption and a long on another instrument: a second tracker fed the same
    confirmations ends in exactly the same state."""
    confs: list[tuple[ExecutionConfirmation, DecisionReason | None]] = [
        (short_open(1, 4, 100.0, T0, fee=0.4), None),
        (short_open(2, 2, 106.0, T0 + MIN, fee=0.2, partial=True), None),
        (filled(3, Side.BUY, 1, 3_000.0, T0 + MIN, fee=1.0, instrument=ETH), None),
        (cover(4, 1, 98.0, T0 + 2 * MIN, fee=0.1, partial=True), DecisionReason.SIGNAL),
        (filled(5, Side.SELL, 1, 97.0, T0 + 3 * MIN, intent=Intent.CLOSE), DecisionReason.SIGNAL),
        (failed(6, Side.BUY, Status.FAILED, T0 + 4 * MIN, fee=0.05), DecisionReason.SIGNAL),
        (cover(4, 1, 98.0, T0 + 2 * MIN, fee=0.1, partial=True), DecisionReason.SIGNAL),  # re-delivered
        (
            filled(7, Side.BUY, 5, 110.0, T0 + 5 * MIN, fee=0.5, intent=Intent.PROTECT),
            DecisionReason.STOP_LOSS,
        ),
        (reconciled(1, Side.SELL, Intent.OPEN, 2, 111.0, T0 + 6 * MIN), DecisionReason.MANUAL),
    ]
    first = tracker()
    results = [first.apply(c, r).applied for c, r in confs]
    assert results == [Applied.OPENED, Applied.ADDED, Applied.OPENED, Applied.REDUCED, Applied.ANOMALY,
                       Applied.NOT_EXECUTED, Applied.DUPLICATE, Applied.CLOSED, Applied.OPENED]  # fmt: skip
    assert first.position(BTC).signed_quantity == -2  # type: ignore[union-attr]
    again = tracker()
    for c, r in confs:
        again.apply(c, r)
    assert state(again) == state(first)


@st.composite
def short_sequences(draw: st.DrawFn) -> list[ExecutionConfirmation]:
    """Short entries, covers (partial, whole, or over), wrong-side sells, longs, failures and re-deliveries."""
    confs: list[ExecutionConfirmation] = []
    for n in range(1, draw(st.integers(1, 25)) + 1):
        at = T0 + n * MIN
        kind = draw(st.sampled_from(("short", "short", "cover", "cover", "sell", "buy", "fail", "dup")))
        qty, price = draw(st.floats(0.01, 10.0)), draw(st.floats(1.0, 1_000.0))
        fee = draw(st.sampled_from((0.0, 0.1, 1.0)))
        if kind == "dup" and confs:
            conf = draw(st.sampled_from(confs))
        elif kind == "short":
            conf = short_open(n, qty, price, at, fee=fee)
        elif kind == "cover":
            conf = cover(n, qty, price, at, fee=fee)
        elif kind == "sell":
            conf = filled(n, Side.SELL, qty, price, at, fee=fee, intent=Intent.CLOSE)
        elif kind == "buy":
            conf = filled(n, Side.BUY, qty, price, at, fee=fee, intent=Intent.OPEN)
        else:
            conf = failed(n, Side.BUY, Status.FAILED, at, fee=fee)
        confs.append(conf)
    return confs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(short_sequences())
def test_replay_of_any_short_sequence_is_exact(confs: list[ExecutionConfirmation]) -> None:
    """Any sequence folds to the same state twice; a position is never of zero or negative quantity and
    its watch always carries its plan."""
    a, b = tracker(), tracker()
    for conf in confs:
        a.apply(conf, DecisionReason.SIGNAL)
        pos = a.position(BTC)
        if pos is not None:
            assert pos.quantity > 0 and pos.signed_quantity == (-pos.quantity if pos.short else pos.quantity)
            assert a.exit_watch(BTC).plan == pos.plan and pos.plan.side is pos.side  # type: ignore[union-attr]
    for conf in confs:
        b.apply(conf, DecisionReason.SIGNAL)
    assert state(a) == state(b)


# =============================================================================================
# 3. the core with allow_short
# =============================================================================================


def test_sell_signal_while_flat_opens_a_short() -> None:
    """With allow_short a SELL signal while flat sends SELL/OPEN sized at 5 % of equity, its stop 8 %
    above the reference; the fill opens a short whose plan stop is the level placed from the fill."""
    r = Rig()
    step = r.bar(100.0, Side.SELL)
    assert step.skips == () and step.trip is None
    [d] = step.decisions
    assert (d.side, d.intent, d.reason, d.instrument) == (Side.SELL, Intent.OPEN, DecisionReason.SIGNAL, BTC)
    assert d.quantity == pytest.approx(5.0) and d.reference_price == 100.0
    assert d.stop_price > d.reference_price and d.stop_price == pytest.approx(108.0)
    assert r.tracker.positions == {} and r.tracker.cash == CASH  # deciding changes nothing
    result = r.core.on_confirmation(fill(d, 100.5))
    assert result.applied is Applied.OPENED
    pos = r.tracker.position(BTC)
    assert pos is not None and pos.side is Side.SELL and pos.signed_quantity == pytest.approx(-5.0)
    assert pos.plan.stop_price == d.stop_for_fill(100.5) == pytest.approx(100.5 * 1.08)
    assert r.core.stop_on_venue(BTC) == pos.plan.stop_price
    assert r.core.pending == {}


def test_sell_signal_while_flat_without_allow_short_is_skipped() -> None:
    """Without allow_short the same SELL signal while flat is skipped NO_POSITION and sends nothing."""
    r = Rig(allow_short=False)
    step = r.bar(100.0, Side.SELL)
    assert step.decisions == ()
    assert [(s.reason, s.side) for s in step.skips] == [(SkipReason.NO_POSITION, Side.SELL)]
    assert r.core.pending == {} and r.core.skips[SkipReason.NO_POSITION] == 1


def test_buy_signal_while_short_covers_it() -> None:
    """A BUY signal while short sends BUY/CLOSE for the whole short, reason SIGNAL; its fill closes it."""
    r = Rig()
    d = r.short(100.0)
    step = r.bar(95.0, Side.BUY)
    [c] = step.decisions
    assert (c.side, c.intent, c.reason, c.quantity) == (
        Side.BUY,
        Intent.CLOSE,
        DecisionReason.SIGNAL,
        d.quantity,
    )
    assert c.stop_price == 0.0
    result = r.core.on_confirmation(fill(c))
    assert result.applied is Applied.CLOSED and result.trade is not None
    assert result.trade.side is Side.SELL and result.trade.gross_pnl == pytest.approx(25.0)
    assert r.tracker.positions == {}


def test_sell_signal_while_short_is_already_positioned() -> None:
    """A SELL signal while short is skipped ALREADY_POSITIONED."""
    r = Rig()
    r.short(100.0)
    step = r.bar(99.0, Side.SELL)
    assert step.decisions == ()
    assert [(s.reason, s.side) for s in step.skips] == [(SkipReason.ALREADY_POSITIONED, Side.SELL)]


def test_reversal_long_to_short_is_close_then_open() -> None:
    """A SELL signal while long sends only SELL/CLOSE; once it FILLED, the next bar with no signal sends
    the SELL/OPEN (sized from equity then, stop above) — and only once."""
    r = Rig()
    r.long(100.0)
    [c] = r.bar(101.0, Side.SELL).decisions
    assert (c.side, c.intent, c.reason) == (Side.SELL, Intent.CLOSE, DecisionReason.SIGNAL)
    assert r.core.on_confirmation(fill(c)).applied is Applied.CLOSED
    [o] = r.bar(102.0).decisions
    assert (o.side, o.intent, o.reason) == (Side.SELL, Intent.OPEN, DecisionReason.SIGNAL)
    assert o.quantity == pytest.approx(r.tracker.equity() * 0.05 / 102.0)
    assert o.stop_price == pytest.approx(102.0 * 1.08)
    assert r.core.on_confirmation(fill(o)).applied is Applied.OPENED
    assert r.tracker.position(BTC).side is Side.SELL  # type: ignore[union-attr]
    assert r.bar(102.0).decisions == ()


def test_reversal_short_to_long_is_close_then_open() -> None:
    """A BUY signal while short covers; after the cover FILLED, the next bar sends BUY/OPEN."""
    r = Rig()
    r.short(100.0)
    [c] = r.bar(97.0, Side.BUY).decisions
    assert (c.side, c.intent) == (Side.BUY, Intent.CLOSE)
    r.core.on_confirmation(fill(c))
    [o] = r.bar(97.0).decisions
    assert (o.side, o.intent, o.reason) == (Side.BUY, Intent.OPEN, DecisionReason.SIGNAL)
    assert o.stop_price == pytest.approx(97.0 * 0.92)


def test_reversal_waits_for_the_close_to_fill() -> None:
    """While the reversal's close awaits its confirmation, bars send nothing; after a partial fill the
    remainder is closed first; the entry comes only on the bar after the position is flat."""
    r = Rig()
    d = r.long(100.0)
    [c] = r.bar(101.0, Side.SELL).decisions
    assert r.bar(101.0).decisions == ()  # awaiting
    assert r.core.on_confirmation(fill(c, qty=2.0)).applied is Applied.REDUCED
    [rest] = r.bar(101.0).decisions
    assert (rest.side, rest.intent, rest.reason) == (Side.SELL, Intent.CLOSE, DecisionReason.SIGNAL)
    assert rest.quantity == pytest.approx(d.quantity - 2.0)
    assert r.core.on_confirmation(fill(rest)).applied is Applied.CLOSED
    [o] = r.bar(101.0).decisions
    assert (o.side, o.intent) == (Side.SELL, Intent.OPEN)


def test_no_reversal_entry_without_allow_short() -> None:
    """Without allow_short a SELL signal while long closes the long and nothing follows."""
    r = Rig(allow_short=False)
    r.long(100.0)
    [c] = r.bar(101.0, Side.SELL).decisions
    assert (c.side, c.intent) == (Side.SELL, Intent.CLOSE)
    r.core.on_confirmation(fill(c))
    assert r.bar(102.0).decisions == ()
    assert r.bar(103.0).decisions == ()
    assert r.tracker.positions == {} and r.core.pending == {}


def test_a_new_signal_while_the_close_awaits_drops_the_reversal() -> None:
    """A BUY signal while the reversal's close awaits is skipped — and drops the reversal: after the fill
    no SELL/OPEN follows."""
    r = Rig()
    r.long(100.0)
    [c] = r.bar(101.0, Side.SELL).decisions
    step = r.bar(101.0, Side.BUY)
    assert step.decisions == () and [s.reason for s in step.skips] == [SkipReason.AWAITING_CONFIRMATION]
    r.core.on_confirmation(fill(c))
    assert r.bar(101.0).decisions == ()
    assert r.bar(101.0).decisions == ()


def test_a_new_signal_on_the_bar_after_the_close_replaces_the_reversal() -> None:
    """After the close FILLED, a BUY signal on the next bar wins: BUY/OPEN, never the pending SELL/OPEN."""
    r = Rig()
    r.long(100.0)
    [c] = r.bar(101.0, Side.SELL).decisions
    r.core.on_confirmation(fill(c))
    [o] = r.bar(101.0, Side.BUY).decisions
    assert (o.side, o.intent) == (Side.BUY, Intent.OPEN)
    r.core.on_confirmation(fill(o))
    assert r.bar(101.0).decisions == ()
    assert r.tracker.position(BTC).side is Side.BUY  # type: ignore[union-attr]


def test_short_stop_loss_sends_a_buy_close() -> None:
    """Short at 100: a mark of 107 sends nothing; 109 (through the 108 stop) sends BUY/CLOSE STOP_LOSS."""
    r = Rig()
    d = r.short(100.0)
    assert r.bar(107.0).decisions == ()
    [c] = r.bar(109.0).decisions
    assert (c.side, c.intent, c.reason, c.quantity) == (
        Side.BUY,
        Intent.CLOSE,
        DecisionReason.STOP_LOSS,
        d.quantity,
    )
    result = r.core.on_confirmation(fill(c))
    assert result.trade is not None and result.trade.exit_reason is DecisionReason.STOP_LOSS
    assert result.trade.gross_pnl == pytest.approx(-45.0)


def test_short_trailing_take_profit_through_the_core() -> None:
    """Short at 100: 87 arms the trail, 85 lowers it (89.25), 89.5 sends BUY/CLOSE TRAILING_TAKE_PROFIT."""
    r = Rig()
    r.short(100.0)
    assert r.bar(87.0).decisions == () and r.bar(85.0).decisions == () and r.bar(89.0).decisions == ()
    [c] = r.bar(89.5).decisions
    assert (c.side, c.intent, c.reason) == (Side.BUY, Intent.CLOSE, DecisionReason.TRAILING_TAKE_PROFIT)


def _short_round_trip(r: Rig, entry: float, exit: float) -> float:
    """Short at ``entry``, cover on a BUY signal at ``exit``; the reversal's BUY/OPEN that follows is
    refused. Returns the round trip's net P&L."""
    r.short(entry)
    [c] = r.bar(exit, Side.BUY).decisions
    result = r.core.on_confirmation(fill(c))
    assert result.trade is not None
    [o] = r.bar(exit).decisions
    assert (o.side, o.intent) == (Side.BUY, Intent.OPEN)
    r.core.on_confirmation(refuse(o))
    return result.trade.net_pnl


def test_losing_shorts_count_toward_the_losing_streak_and_a_winning_one_resets_it() -> None:
    """Shorts covered higher are losses for the breakers (streak 1, 2); one covered lower resets it to 0."""
    r = Rig()
    assert _short_round_trip(r, 100.0, 101.0) < 0 and r.breakers.streak == 1
    assert _short_round_trip(r, 100.0, 102.0) < 0 and r.breakers.streak == 2
    assert _short_round_trip(r, 100.0, 97.0) > 0 and r.breakers.streak == 0


def test_losing_short_trips_a_one_loss_breaker_and_blocks_the_next_short() -> None:
    """With max_consecutive_losses=1 a losing short trips LOSING_STREAK; the next SELL entry is skipped BREAKER."""
    r = Rig(allow_short=True, breaker_rules=BreakerRules(max_consecutive_losses=1))
    r.short(100.0)
    [c] = r.bar(104.0, Side.BUY).decisions
    r.core.on_confirmation(fill(c))
    assert [t.kind for t in r.breakers.trips] == [BreakerKind.LOSING_STREAK]
    step = r.bar(104.0)  # the reversal's entry is due: refused by the breaker
    assert step.decisions == () and [s.reason for s in step.skips] == [SkipReason.BREAKER]
    step = r.bar(104.0, Side.SELL)
    assert step.decisions == ()
    [skip] = step.skips
    assert skip.reason is SkipReason.BREAKER and "losing_streak" in skip.detail


def test_winning_short_does_not_trip_a_one_loss_breaker() -> None:
    """With max_consecutive_losses=1 a short covered lower (a win) trips nothing."""
    r = Rig(breaker_rules=BreakerRules(max_consecutive_losses=1))
    r.short(100.0)
    [c] = r.bar(96.0, Side.BUY).decisions
    r.core.on_confirmation(fill(c))
    assert r.breakers.trips == []


def test_rising_mark_trips_the_daily_loss_for_a_short_but_never_blocks_its_stop() -> None:
    """A 100-unit short at 100: a mark of 105 costs 5 % of equity → DAILY_LOSS; 109 still sends the
    BUY/CLOSE stop-loss; a new SELL is skipped BREAKER."""
    r = Rig(entry_fraction=1.0)
    d = r.short(100.0)
    assert d.quantity == pytest.approx(100.0)
    step = r.bar(105.0)
    assert step.trip is not None and step.trip.kind is BreakerKind.DAILY_LOSS and step.decisions == ()
    [c] = r.bar(109.0).decisions
    assert (c.side, c.intent, c.reason) == (Side.BUY, Intent.CLOSE, DecisionReason.STOP_LOSS)
    r.core.on_confirmation(fill(c))
    step = r.bar(109.0, Side.SELL)
    assert step.decisions == () and [s.reason for s in step.skips] == [SkipReason.BREAKER]


def test_falling_mark_does_not_trip_the_daily_loss_for_a_short() -> None:
    """A 100-unit short whose mark falls 6 % is a gain: no breaker trips."""
    r = Rig(entry_fraction=1.0)
    r.short(100.0)
    assert r.bar(94.0).trip is None and r.breakers.trips == []


# -- exchange stops for a short ------------------------------------------------------------


def test_protective_level_of_a_short_is_the_lower_of_plan_stop_and_trailing_stop() -> None:
    """Before activation the level is the plan stop (108); once trailing, min(plan stop, trailing stop)."""
    r = Rig()
    r.short(100.0)
    assert r.core.protective_level(BTC) == pytest.approx(108.0)
    r.bar(88.0)
    watch = r.tracker.exit_watch(BTC)
    assert watch is not None and watch.trailing_stop == pytest.approx(92.4)
    assert r.core.protective_level(BTC) == pytest.approx(92.4)
    assert r.core.protective_level(BTC) == min(r.tracker.position(BTC).plan.stop_price, watch.trailing_stop)  # type: ignore[union-attr]


def test_protective_level_keeps_the_plan_stop_when_the_trailing_stop_is_above_it() -> None:
    """With a 1 % activation and 10 % trail, a trough of 99 puts the trailing stop at 108.9, above the
    108 plan stop: the level stays 108 (the lower); with exchange stops no PROTECT goes; a trough of 95
    (trailing 104.5) brings a BUY/PROTECT at 104.5."""
    rules = ExitRules(stop_loss_pct=8.0, trailing_activation_pct=1.0, trailing_pct=10.0)
    r = Rig(rules=rules, exchange_stops=True)
    r.short(100.0)
    assert r.bar(99.0).decisions == ()
    assert r.tracker.exit_watch(BTC).trailing_stop == pytest.approx(108.9)  # type: ignore[union-attr]
    assert r.core.protective_level(BTC) == pytest.approx(108.0)
    [p] = r.bar(95.0).decisions
    assert (p.side, p.intent) == (Side.BUY, Intent.PROTECT)
    assert p.stop_price == pytest.approx(104.5) == r.core.protective_level(BTC)


def test_short_protect_follows_the_trailing_stop_down_in_steps() -> None:
    """exchange_stops on, short 5 @ 100 (stop 108 placed): nothing due at the fill or at 95; at 88 the
    trailing stop (92.4) is far below → BUY/PROTECT at the protective level for the whole short; after
    it is accepted, 87.9 (−11 bps) sends nothing, 87.7 (−34 bps) sends the next one; a bounce sends nothing."""
    r = Rig(exchange_stops=True)
    d = r.short(100.0)
    assert r.core.protect_now(r.now) == ()
    assert r.core.stop_on_venue(BTC) == pytest.approx(108.0)
    assert r.bar(95.0).decisions == ()
    [p] = r.bar(88.0).decisions
    assert (p.side, p.intent, p.reason) == (Side.BUY, Intent.PROTECT, DecisionReason.TRAILING_TAKE_PROFIT)
    assert p.quantity == d.quantity and p.reference_price == 88.0
    assert p.stop_price == r.core.protective_level(BTC) == pytest.approx(92.4)
    assert r.core.on_confirmation(accept(p)).applied is Applied.ACCEPTED
    assert r.core.stop_on_venue(BTC) == p.stop_price
    assert r.tracker.position(BTC).quantity == d.quantity  # type: ignore[union-attr]
    assert r.bar(87.9).decisions == ()
    [p2] = r.bar(87.7).decisions
    assert (p2.side, p2.intent) == (Side.BUY, Intent.PROTECT)
    assert p2.stop_price == r.core.protective_level(BTC) == pytest.approx(87.7 * 1.05)
    r.core.on_confirmation(accept(p2))
    assert r.bar(90.0).decisions == () and r.bar(91.0).decisions == ()


def test_short_protect_is_not_sent_while_the_price_rises_toward_the_stop() -> None:
    """exchange_stops on: a short whose mark climbs toward (but below) its stop sends no PROTECT."""
    r = Rig(exchange_stops=True)
    r.short(100.0)
    for close in (101.0, 104.0, 107.5):
        assert r.bar(close).decisions == ()
    assert r.core.protective_level(BTC) == pytest.approx(108.0)


def test_short_protect_filled_on_the_venue_closes_with_stop_loss() -> None:
    """A BUY/PROTECT answered FILLED closes the short with STOP_LOSS; the core forgets its stop."""
    r = Rig(exchange_stops=True)
    r.short(100.0)
    [p] = r.bar(88.0).decisions
    result = r.core.on_confirmation(fill(p, price=92.5))
    assert result.applied is Applied.CLOSED and result.trade is not None
    assert result.trade.exit_reason is DecisionReason.STOP_LOSS and result.trade.side is Side.SELL
    assert result.trade.gross_pnl == pytest.approx(7.5 * p.quantity)
    assert r.tracker.positions == {} and r.core.stop_on_venue(BTC) is None
    assert r.bar(88.0).decisions == ()


def _dust_short(r: Rig) -> TradeDecision:
    """A short at 100 whose stop-loss cover the venue refuses for its minimum size: the short is dust."""
    r.short(100.0)
    [c] = r.bar(109.0).decisions
    assert c.reason is DecisionReason.STOP_LOSS
    conf = dataclasses.replace(refuse(c), reject_code=RejectCode.INVALID_QUANTITY)
    r.core.on_confirmation(conf)
    assert BTC in r.core.dust
    return c


def test_short_entry_adding_to_dust_with_a_higher_plan_stop_sends_no_protect() -> None:
    """Dust short 5 @ 100, new short @ 90 (stop 97.2 placed): the plan from the ~94.7 average stops at
    ~102.3 — the level moved UP from the one on the venue, so no PROTECT, now or on the next bar."""
    r = Rig(exchange_stops=True)
    _dust_short(r)
    [o] = r.bar(90.0, Side.SELL).decisions
    assert (o.side, o.intent) == (Side.SELL, Intent.OPEN) and o.stop_price == pytest.approx(97.2)
    assert r.core.on_confirmation(fill(o)).applied is Applied.ADDED
    pos = r.tracker.position(BTC)
    assert pos is not None and pos.side is Side.SELL and 90.0 < pos.avg_entry_price < 100.0
    assert (
        pos.plan.stop_price == pytest.approx(pos.avg_entry_price * 1.08)
        and pos.plan.stop_price > o.stop_price
    )
    assert r.core.protect_now(r.now + WALL_LAG) == ()
    assert r.bar(90.0).decisions == ()


def test_short_entry_adding_to_dust_with_a_lower_plan_stop_protects_at_once() -> None:
    """Dust short 5 @ 100, new short @ 110 (stop 118.8 placed): the plan from the ~104.75 average stops
    at ~113.1, below the venue's — protect_now sends BUY/PROTECT there right away, for the whole short."""
    r = Rig(exchange_stops=True)
    _dust_short(r)
    [o] = r.bar(110.0, Side.SELL).decisions
    assert o.stop_price == pytest.approx(118.8)
    assert r.core.on_confirmation(fill(o)).applied is Applied.ADDED
    pos = r.tracker.position(BTC)
    assert pos is not None and pos.side is Side.SELL and 100.0 < pos.avg_entry_price < 110.0
    assert (
        pos.plan.stop_price == pytest.approx(pos.avg_entry_price * 1.08)
        and pos.plan.stop_price < o.stop_price
    )
    [p] = r.core.protect_now(r.now + WALL_LAG)
    assert (p.side, p.intent) == (Side.BUY, Intent.PROTECT)
    assert p.stop_price == pos.plan.stop_price == r.core.protective_level(BTC)
    assert p.quantity == pos.quantity > 5.0
    assert r.core.protect_now(r.now + WALL_LAG) == ()


def test_reconciled_short_adopted_by_the_core_gets_a_protect() -> None:
    """An adopted short (reconciled SELL/OPEN, no decision known: no stop known on the venue) is held as
    a short with reason MANUAL; with exchange stops the next bar sends BUY/PROTECT at its plan stop."""
    r = Rig(exchange_stops=True)
    result = r.core.on_confirmation(reconciled(1, Side.SELL, Intent.OPEN, 3, 100.0, r.now))
    assert result.applied is Applied.OPENED
    assert r.tracker.position(BTC).side is Side.SELL  # type: ignore[union-attr]
    [p] = r.bar(100.0).decisions
    assert (p.side, p.intent, p.quantity) == (Side.BUY, Intent.PROTECT, 3)
    assert p.stop_price == pytest.approx(108.0)


@pytest.mark.parametrize("how", ["reversal", "buy-signal"])
def test_no_long_entry_is_decided_while_a_dust_short_is_held(how: str) -> None:
    """A short whose cover the venue refused for its minimum size (dust) is still held: the reversal's
    BUY/OPEN (the close did not close it) or a BUY signal's must not be sent, because a BUY fill while
    short covers the short (tracker rules) — the entry would be netted into the dust, the excess counted
    as an anomaly, never the long the brain decided (a reversal is close, *then* open)."""
    r = Rig()
    r.short(100.0)
    if how == "reversal":
        [c] = r.bar(97.0, Side.BUY).decisions  # the signal cover: its opposite entry is pending
    else:
        [c] = r.bar(109.0).decisions  # the stop-loss cover: no reversal
    assert (c.side, c.intent) == (Side.BUY, Intent.CLOSE)
    r.core.on_confirmation(dataclasses.replace(refuse(c), reject_code=RejectCode.INVALID_QUANTITY))
    assert BTC in r.core.dust and r.tracker.position(BTC).side is Side.SELL  # type: ignore[union-attr]
    step = r.bar(97.0, None if how == "reversal" else Side.BUY)
    for d in step.decisions:
        assert not (d.side is Side.BUY and d.intent is Intent.OPEN), d
        r.core.on_confirmation(fill(d))
    assert r.tracker.anomalies == 0
