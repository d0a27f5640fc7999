"""BrainCore: bars and confirmations in, decisions and skips out — scripted strategy, times passed in."""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from typing import Any

import pytest
from factories import BTC, DAY, MIN, MS, T0, Scripted, accept, bar, fill, refuse
from hypothesis import given, settings
from hypothesis import strategies as st

from brain.core import BrainConfig, BrainCore, SkipReason, Step
from brain.exits import ExitRules
from brain.risk import Approved, BreakerKind, BreakerRules, CircuitBreakers
from brain.tracker import Applied, PositionTracker
from protocol import DecisionReason, Intent, RejectCode, Side, Status, TradeDecision

CASH = 10_000.0
WALL_LAG = 5_000_000_000  # wall clock runs 5 s after market time, to tell the two stamps apart


class Rig:
    """A BrainCore with real tracker and breakers, a scripted strategy and a scripted clock."""

    def __init__(self, entry_fraction: float = 0.05, lot_size: float = 0.0, exchange_stops: bool = False,
                 protect_step_bps: float = 25.0) -> None:  # fmt: skip
        self.strategy = Scripted()
        self.config = BrainConfig(BTC, entry_fraction=entry_fraction, lot_size=lot_size,
                                  exchange_stops=exchange_stops, protect_step_bps=protect_step_bps)  # fmt: skip
        self.tracker = PositionTracker(CASH, ExitRules())
        self.core = BrainCore(self.config, self.strategy, self.tracker, CircuitBreakers(BreakerRules()),
                              itertools.count(1).__next__)  # fmt: skip
        self.now = T0

    def bar(self, close: float, signal: Side | None = None, *, advance: int = MIN) -> Step:
        """Advance the clock, program ``signal`` and feed one bar closing at ``close``."""
        self.now += advance
        self.strategy.next = signal
        return self.core.on_bar(bar(close, self.now // MS - 60_000), self.now, self.now + WALL_LAG)

    def open(self, price: float = 100.0) -> TradeDecision:
        """BUY signal at ``price`` and its fill."""
        [d] = self.bar(price, Side.BUY).decisions
        assert self.core.on_confirmation(fill(d)).applied is Applied.OPENED
        return d

    def alive(self, close: float, *, executor_alive: bool = True) -> Step:
        """One bar without a signal, with the link's verdict on the executor."""
        self.now += MIN
        return self.core.on_bar(bar(close, self.now // MS - 60_000), self.now, self.now + WALL_LAG, executor_alive)


def snapshot(t: PositionTracker) -> tuple[Any, ...]:
    return (t.cash, t.realized_pnl, t.fees, t.positions, list(t.closed_trades))


# -- entries --------------------------------------------------------------------------------


def test_buy_signal_becomes_a_sized_entry_decision() -> None:
    """A BUY signal when flat sends BUY/OPEN sized at 5 % of equity, stamped with market and wall time."""
    r = Rig()
    step = r.bar(100.0, Side.BUY)
    assert step.skips == () and step.trip is None
    [d] = step.decisions
    assert (d.side, d.intent, d.reason, d.instrument) == (Side.BUY, Intent.OPEN, DecisionReason.SIGNAL, BTC)
    assert d.quantity == 5 and d.reference_price == 100.0
    assert d.market_ts_ns == r.now and d.created_at_ns == r.now + WALL_LAG
    assert d.expires_at_ns == d.created_at_ns + r.config.decision_ttl_ns
    assert r.core.pending == {d.decision_id: d}
    assert r.tracker.positions == {} and r.tracker.cash == CASH


def test_entry_quantity_rounds_down_to_lots() -> None:
    """With a 0.1 lot the 5-unit entry stays 5.0; with a 3-unit lot it rounds down to 3."""
    [d] = Rig(lot_size=0.1).bar(100.0, Side.BUY).decisions
    assert d.quantity == pytest.approx(5.0)
    [d] = Rig(lot_size=3.0).bar(100.0, Side.BUY).decisions
    assert d.quantity == 3.0


def test_entry_smaller_than_one_lot_is_skipped() -> None:
    """An entry that rounds to zero lots is skipped with ZERO_SIZE."""
    r = Rig(lot_size=10.0)
    step = r.bar(100.0, Side.BUY)
    assert step.decisions == () and step.skips[0].reason is SkipReason.ZERO_SIZE


def test_round_trip_through_confirmations_realizes_20() -> None:
    """BUY 2 @ 100, SELL 2 @ 110 via signals and fills: realized P&L 20, cash start + 20."""
    r = Rig(entry_fraction=0.02)
    d = r.open(100.0)
    assert d.quantity == 2
    assert r.tracker.exit_watch(BTC) is not None and r.core.pending == {}
    [sell] = r.bar(110.0, Side.SELL).decisions
    assert (sell.side, sell.intent, sell.reason, sell.quantity) == (Side.SELL, Intent.CLOSE, DecisionReason.SIGNAL, 2)
    assert r.tracker.position(BTC) is not None  # sending changed nothing
    result = r.core.on_confirmation(fill(sell))
    assert result.applied is Applied.CLOSED
    assert r.tracker.realized_pnl == 20 and r.tracker.cash == CASH + 20


def test_failed_entry_settles_the_decision_and_changes_nothing() -> None:
    """A REJECTED entry clears the pending decision; the next BUY signal is acted on again."""
    r = Rig()
    [d] = r.bar(100.0, Side.BUY).decisions
    assert r.core.on_confirmation(refuse(d)).applied is Applied.NOT_EXECUTED
    assert r.core.pending == {} and r.tracker.positions == {} and r.tracker.cash == CASH
    [again] = r.bar(100.0, Side.BUY).decisions
    assert again.decision_id != d.decision_id


# -- skip rules -----------------------------------------------------------------------------


def test_buy_while_positioned_is_refused() -> None:
    """A BUY signal with an open position is skipped ALREADY_POSITIONED and sends nothing."""
    r = Rig()
    r.open()
    step = r.bar(101.0, Side.BUY)
    assert step.decisions == ()
    assert [s.reason for s in step.skips] == [SkipReason.ALREADY_POSITIONED]
    assert r.core.skips == Counter({SkipReason.ALREADY_POSITIONED: 1})


def test_signals_while_awaiting_confirmation_are_skipped() -> None:
    """BUY or SELL while a decision for the instrument awaits confirmation → AWAITING_CONFIRMATION."""
    r = Rig()
    r.bar(100.0, Side.BUY)
    for signal in (Side.BUY, Side.SELL):
        step = r.bar(100.0, signal)
        assert step.decisions == ()
        assert [(s.reason, s.side) for s in step.skips] == [(SkipReason.AWAITING_CONFIRMATION, signal)]
    assert r.core.skips == Counter({SkipReason.AWAITING_CONFIRMATION: 2})


def test_sell_without_a_position_is_skipped() -> None:
    """A SELL signal when flat → NO_POSITION, nothing sent."""
    r = Rig()
    step = r.bar(100.0, Side.SELL)
    assert step.decisions == () and [s.reason for s in step.skips] == [SkipReason.NO_POSITION]


def test_skips_are_counted_by_reason() -> None:
    """core.skips counts every skipped signal by its reason; bars without a signal count nothing."""
    r = Rig()
    r.bar(100.0, Side.SELL)
    r.bar(100.0)
    [d] = r.bar(100.0, Side.BUY).decisions
    r.bar(100.0, Side.BUY)
    r.core.on_confirmation(fill(d))
    r.bar(100.0, Side.BUY)
    r.bar(100.0, Side.BUY)
    assert r.core.skips == Counter({SkipReason.NO_POSITION: 1, SkipReason.AWAITING_CONFIRMATION: 1,
                                    SkipReason.ALREADY_POSITIONED: 2})  # fmt: skip


# -- exits ----------------------------------------------------------------------------------


def test_stop_loss_sends_a_close_without_any_signal() -> None:
    """Entry 100, bar at 91 → SELL/CLOSE for the whole position with reason STOP_LOSS."""
    r = Rig()
    r.open(100.0)
    assert r.bar(93.0).decisions == ()
    [d] = r.bar(91.0).decisions
    assert (d.side, d.intent, d.reason, d.quantity) == (Side.SELL, Intent.CLOSE, DecisionReason.STOP_LOSS, 5)
    result = r.core.on_confirmation(fill(d))
    assert result.applied is Applied.CLOSED and result.trade is not None
    assert result.trade.exit_reason is DecisionReason.STOP_LOSS


def test_trailing_take_profit_through_the_core() -> None:
    """Bars 115 then 108 after an entry at 100 → SELL/CLOSE with TRAILING_TAKE_PROFIT."""
    r = Rig()
    r.open(100.0)
    assert r.bar(111.0).decisions == ()
    assert r.bar(115.0).decisions == ()
    [d] = r.bar(108.0).decisions
    assert d.reason is DecisionReason.TRAILING_TAKE_PROFIT and d.intent is Intent.CLOSE


def test_time_stop_through_the_core() -> None:
    """No exit 13 days after the entry; a TIME_STOP close at 15 days."""
    r = Rig()
    r.open(100.0)
    assert r.bar(100.0, advance=13 * DAY).decisions == ()
    [d] = r.bar(100.0, advance=2 * DAY).decisions
    assert d.reason is DecisionReason.TIME_STOP


def test_exit_is_not_resent_while_awaiting_and_is_retried_after_a_failure() -> None:
    """A pending exit is not duplicated; if it EXPIRES the next bar sends a fresh exit decision."""
    r = Rig()
    r.open(100.0)
    [d] = r.bar(91.0).decisions
    assert r.bar(90.0).decisions == ()
    r.core.on_confirmation(refuse(d, Status.EXPIRED))
    assert r.tracker.position(BTC) is not None
    [retry] = r.bar(90.0).decisions
    assert retry.reason is DecisionReason.STOP_LOSS and retry.decision_id != d.decision_id


@pytest.mark.parametrize("how", ["EXPIRED answer", "resolved never executed"])
def test_an_expired_signal_exit_is_decided_again_on_the_next_bar(how: str) -> None:
    """A SIGNAL exit (a crossover: it does not fire again) that expired — answered EXPIRED, or resolved as never
    executed — is decided again on the next bar with the same reason, until the position is flat."""
    r = Rig()
    r.open(100.0)
    [d] = r.bar(101.0, Side.SELL).decisions
    assert d.reason is DecisionReason.SIGNAL
    if how == "EXPIRED answer":
        r.core.on_confirmation(refuse(d, Status.EXPIRED))
    else:
        assert r.core.abandon(d.decision_id) == d
    [again] = r.bar(101.5).decisions  # no signal on this bar
    assert (again.side, again.intent, again.reason) == (Side.SELL, Intent.CLOSE, DecisionReason.SIGNAL)
    assert again.decision_id != d.decision_id
    assert r.core.on_confirmation(fill(again)).applied is Applied.CLOSED
    assert r.bar(102.0).decisions == ()


def test_a_refused_exit_is_not_retried_but_an_expired_entry_is_forgotten() -> None:
    """Only an exit that never got to the venue is retried: an entry that expired is not re-sent (the next
    signal decides), and a REJECTED exit (the venue said no) is not looped on."""
    r = Rig()
    [entry] = r.bar(100.0, Side.BUY).decisions
    r.core.on_confirmation(refuse(entry, Status.EXPIRED))
    assert r.bar(100.0).decisions == ()
    r.open(100.0)
    [d] = r.bar(101.0, Side.SELL).decisions
    r.core.on_confirmation(refuse(d, Status.REJECTED))
    assert r.bar(101.0).decisions == ()


def test_strategy_sees_every_bar_even_when_an_exit_fires() -> None:
    """The strategy's indicator state is fed on every bar, exits included."""
    r = Rig()
    r.open(100.0)
    r.bar(91.0)
    assert [b.close for b in r.strategy.seen] == [100.0, 91.0]


# -- breakers -------------------------------------------------------------------------------


def test_tripped_breaker_blocks_entries_but_not_the_stop_loss() -> None:
    """After a daily-loss trip, the stop-loss still closes the position and a BUY is skipped BREAKER."""
    r = Rig(entry_fraction=1.0)
    r.open(100.0)  # 100 units: equity moves one for one with the price
    step = r.bar(95.0)
    assert step.trip is not None and step.trip.kind is BreakerKind.DAILY_LOSS
    assert step.decisions == ()
    [d] = r.bar(91.0).decisions
    assert (d.side, d.intent, d.reason) == (Side.SELL, Intent.CLOSE, DecisionReason.STOP_LOSS)
    r.core.on_confirmation(fill(d))
    step = r.bar(91.0, Side.BUY)
    assert step.decisions == ()
    [skip] = step.skips
    assert skip.reason is SkipReason.BREAKER and "daily_loss" in skip.detail
    assert r.core.skips[SkipReason.BREAKER] == 1


def test_drawdown_trip_blocks_entries_while_the_stop_loss_exits() -> None:
    """A 25 % gap trips the drawdown breaker in the same bar the stop-loss fires; entries stay blocked."""
    r = Rig(entry_fraction=1.0)
    r.open(100.0)
    step = r.bar(75.0)
    assert BreakerKind.DRAWDOWN in {t.kind for t in r.core.breakers.trips}
    [d] = step.decisions
    assert d.reason is DecisionReason.STOP_LOSS and d.side is Side.SELL
    r.core.on_confirmation(fill(d))
    step = r.bar(80.0, Side.BUY, advance=3 * DAY)  # the daily-loss trip has expired by now
    [skip] = step.skips
    assert skip.reason is SkipReason.BREAKER and "drawdown" in skip.detail


def test_five_losing_trades_block_entries_for_the_cooldown() -> None:
    """Five losing round trips trip the losing-streak breaker; after 24 h entries resume."""
    r = Rig()
    for _ in range(5):
        r.open(100.0)
        [sell] = r.bar(99.0, Side.SELL).decisions
        r.core.on_confirmation(fill(sell))
    assert r.tracker.closed_trades[-1].net_pnl < 0 and len(r.tracker.closed_trades) == 5
    step = r.bar(100.0, Side.BUY)
    assert [s.reason for s in step.skips] == [SkipReason.BREAKER]
    assert "losing_streak" in step.skips[0].detail
    [d] = r.bar(100.0, Side.BUY, advance=DAY).decisions
    assert d.side is Side.BUY


# -- invariant 1 ----------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(60.0, 140.0),
            st.sampled_from((None, Side.BUY, Side.SELL)),
            st.sampled_from(("fill", "refuse", "hold")),
            st.sampled_from((MIN, MIN, DAY)),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_only_confirmations_change_the_tracker(script: list[tuple[float, Side | None, str, int]]) -> None:
    """on_bar (deciding and 'sending') never changes positions or cash; only on_confirmation does."""
    r = Rig()
    for close, signal, answer, advance in script:
        before = snapshot(r.tracker)
        r.bar(close, signal, advance=advance)
        assert snapshot(r.tracker) == before
        if answer == "hold":
            continue
        for d in list(r.core.pending.values()):
            conf = fill(d) if answer == "fill" else refuse(d)
            before = snapshot(r.tracker)
            result = r.core.on_confirmation(conf)
            if answer == "refuse":
                assert result.applied is Applied.NOT_EXECUTED and snapshot(r.tracker) == before
            else:
                assert result.applied in (Applied.OPENED, Applied.CLOSED) and snapshot(r.tracker) != before
        assert r.core.pending == {}


def test_silent_executor_blocks_entries_but_not_exits() -> None:
    """While the link says the executor is silent, a BUY is skipped (executor_silent) but a
    position's stop-loss still produces its SELL/CLOSE decision."""
    r = Rig()
    r.now += MIN
    r.strategy.next = Side.BUY
    step = r.core.on_bar(bar(100.0, r.now // MS - 60_000), r.now, r.now + WALL_LAG, executor_alive=False)
    assert step.decisions == () and [s.reason for s in step.skips] == [SkipReason.EXECUTOR_SILENT]
    r.open(100.0)
    r.now += MIN
    step = r.core.on_bar(bar(91.0, r.now // MS - 60_000), r.now, r.now + WALL_LAG, executor_alive=False)
    [d] = step.decisions
    assert (d.side, d.reason) == (Side.SELL, DecisionReason.STOP_LOSS)


def test_stale_feed_skips_entries_but_never_exits() -> None:
    """A bar from a stale live feed: a BUY is skipped (feed_stale); a SELL signal and a stop-loss
    still exit, and a fresh bar enters again."""
    r = Rig()
    r.now += MIN
    r.strategy.next = Side.BUY
    step = r.core.on_bar(bar(100.0, r.now // MS - 60_000), r.now, r.now + WALL_LAG, feed_fresh=False)
    assert step.decisions == () and [s.reason for s in step.skips] == [SkipReason.FEED_STALE]
    r.open(100.0)
    r.now += MIN
    r.strategy.next = Side.SELL
    step = r.core.on_bar(bar(100.5, r.now // MS - 60_000), r.now, r.now + WALL_LAG, feed_fresh=False)
    [d] = step.decisions
    assert (d.side, d.intent, d.reason) == (Side.SELL, Intent.CLOSE, DecisionReason.SIGNAL)
    r.core.on_confirmation(fill(d))
    r.open(100.0)
    r.now += MIN
    step = r.core.on_bar(bar(91.0, r.now // MS - 60_000), r.now, r.now + WALL_LAG, feed_fresh=False)
    [d] = step.decisions
    assert (d.side, d.reason) == (Side.SELL, DecisionReason.STOP_LOSS)


# -- protective stops (protocol v2) -------------------------------------------------------


def test_entry_carries_the_plans_hard_stop() -> None:
    """A BUY/OPEN carries stop_price = the exit plan's hard stop from its reference price (8 % below)."""
    r = Rig()
    [d] = r.bar(100.0, Side.BUY).decisions
    assert d.stop_price == 100.0 * (1 - ExitRules().stop_loss_pct / 100) == pytest.approx(92.0)
    r.core.on_confirmation(fill(d))
    assert r.core.stop_on_venue(BTC) == d.stop_price  # counted as placed once the entry filled
    [sell] = r.bar(101.0, Side.SELL).decisions
    assert sell.stop_price == 0.0  # exits carry none


def test_exchange_stops_off_sends_no_protect() -> None:
    """With exchange_stops off (the default), a rally that arms and raises the trailing stop sends nothing."""
    r = Rig()
    r.open(100.0)
    for close in (105.0, 113.0, 120.0, 125.0):
        assert r.bar(close).decisions == ()
    assert r.core.protective_level(BTC) == pytest.approx(125.0 * 0.95)
    assert r.core.protect_now(r.now) == ()


def test_protect_follows_the_trailing_stop_in_steps() -> None:
    """With exchange_stops on: no PROTECT below the step; once the trailing stop is 25 bps above the
    venue's level, one SELL/PROTECT for the position's quantity at that level, priced at the mark."""
    r = Rig(exchange_stops=True)
    d = r.open(100.0)
    assert r.core.protect_now(r.now) == ()  # filled at the reference: nothing due
    assert r.bar(105.0).decisions == ()  # plan stop 92 unchanged, trailing not active
    [p] = r.bar(113.0).decisions  # trailing active: 113 * 0.95 = 107.35 >> 92
    assert (p.side, p.intent, p.reason) == (Side.SELL, Intent.PROTECT, DecisionReason.TRAILING_TAKE_PROFIT)
    assert p.quantity == d.quantity and p.reference_price == 113.0
    assert p.stop_price == pytest.approx(113.0 * 0.95) and p.market_ts_ns == r.now
    assert r.core.on_confirmation(accept(p)).applied is Applied.ACCEPTED
    assert r.core.stop_on_venue(BTC) == p.stop_price and r.tracker.position(BTC).quantity == d.quantity
    assert r.bar(113.2).decisions == ()  # +17.7 bps: below the 25 bps step
    [p2] = r.bar(113.4).decisions  # +35 bps over the level on the venue
    assert p2.stop_price == pytest.approx(113.4 * 0.95) and p2.reason is DecisionReason.TRAILING_TAKE_PROFIT


def test_one_protect_in_flight_per_position() -> None:
    """While a PROTECT awaits its confirmation no other is sent, however far the level rises."""
    r = Rig(exchange_stops=True)
    r.open(100.0)
    [p] = r.bar(113.0).decisions
    assert r.bar(118.0).decisions == () and r.bar(124.0).decisions == ()
    r.core.on_confirmation(accept(p))
    [p2] = r.bar(124.0).decisions
    assert p2.stop_price == pytest.approx(124.0 * 0.95)


@pytest.mark.parametrize("fill_price", [100.02, 99.3, 100.0])
def test_one_stop_level_computed_from_the_fill(fill_price: float) -> None:
    """Whether the entry fills above, below or at its reference, the plan's hard stop is exactly the
    level the executor places (stop_for_fill of the fill, 8 % below it): no PROTECT is needed, now
    or on the next bar, and the stop the brain records on the venue is that same level."""
    r = Rig(exchange_stops=True, protect_step_bps=1_000)
    [d] = r.bar(100.0, Side.BUY).decisions
    assert d.stop_price == pytest.approx(100.0 * 0.92)
    r.core.on_confirmation(fill(d, price=fill_price))
    plan = r.core.tracker.position(BTC).plan
    assert plan.stop_price == d.stop_for_fill(fill_price) == r.core.stop_on_venue(BTC)
    assert plan.stop_price == pytest.approx(fill_price * 0.92, rel=1e-15)
    assert r.core.protect_now(r.now + WALL_LAG) == ()
    assert r.bar(fill_price).decisions == ()


def test_protect_is_never_blocked_by_breakers_or_a_silent_executor() -> None:
    """A tripped breaker and a silent executor block entries, not PROTECTs (DESIGN invariant 3)."""
    r = Rig(entry_fraction=1.0, exchange_stops=True)
    r.open(100.0)
    assert r.bar(95.0).trip.kind is BreakerKind.DAILY_LOSS  # type: ignore[union-attr]
    step = r.alive(113.0, executor_alive=False)
    assert not isinstance(r.core.breakers.check_entry(r.now), Approved)
    [p] = step.decisions
    assert p.intent is Intent.PROTECT and p.reason is DecisionReason.TRAILING_TAKE_PROFIT


def test_refused_protect_changes_nothing_and_is_retried_a_step_higher() -> None:
    """A REJECTED PROTECT changes nothing (the venue keeps the entry's stop); its level counts as sent, so
    the next PROTECT goes once the level is a step above it, not on every bar."""
    r = Rig(exchange_stops=True)
    d = r.open(100.0)
    [p] = r.bar(113.0).decisions
    assert r.core.on_confirmation(refuse(p)).applied is Applied.NOT_EXECUTED
    assert r.core.stop_on_venue(BTC) == d.stop_price and r.tracker.position(BTC).quantity == d.quantity
    assert r.bar(113.0).decisions == () and r.bar(113.2).decisions == ()
    [again] = r.bar(113.4).decisions
    assert again.intent is Intent.PROTECT and again.stop_price == pytest.approx(113.4 * 0.95)


def test_protect_filled_on_the_venue_closes_with_stop_loss() -> None:
    """A PROTECT answered FILLED (the venue's stop already filled) closes the position; exit reason STOP_LOSS."""
    r = Rig(exchange_stops=True)
    r.open(100.0)
    [p] = r.bar(113.0).decisions
    result = r.core.on_confirmation(fill(p, price=107.3))
    assert result.applied is Applied.CLOSED and result.trade is not None
    assert result.trade.exit_reason is DecisionReason.STOP_LOSS
    assert r.tracker.position(BTC) is None and r.core.stop_on_venue(BTC) is None
    assert r.bar(114.0).decisions == ()


def test_partial_entry_opens_the_executed_quantity() -> None:
    """An entry PARTIALLY_FILLED opens a position of the executed quantity with its plan and stop."""
    r = Rig(exchange_stops=True)
    [d] = r.bar(100.0, Side.BUY).decisions
    result = r.core.on_confirmation(fill(d, qty=2.0))
    assert result.applied is Applied.OPENED and r.tracker.position(BTC).quantity == 2.0
    assert r.tracker.exit_watch(BTC) is not None and r.core.stop_on_venue(BTC) == d.stop_price
    [p] = r.bar(113.0).decisions
    assert p.quantity == 2.0


@pytest.mark.parametrize("rebound", [91.0, 95.0])
def test_partial_exit_is_finished_on_the_next_bar(rebound: float) -> None:
    """A stop-loss exit PARTIALLY_FILLED leaves a reduced position whose plan stays active, and the next
    bar sends a SELL/CLOSE STOP_LOSS for the remainder even if the price is back above the stop."""
    r = Rig()
    r.open(100.0)
    [d] = r.bar(91.0).decisions
    result = r.core.on_confirmation(fill(d, qty=2.0))
    assert result.applied is Applied.REDUCED and r.core.pending == {}
    assert r.tracker.position(BTC).quantity == 3.0 and r.tracker.exit_watch(BTC) is not None
    [rest] = r.bar(rebound).decisions
    assert (rest.side, rest.intent, rest.reason, rest.quantity) == (Side.SELL, Intent.CLOSE, DecisionReason.STOP_LOSS, 3.0)
    assert r.core.on_confirmation(fill(rest)).applied is Applied.CLOSED
    assert [t.exit_reason for t in r.tracker.closed_trades] == [DecisionReason.STOP_LOSS] * 2
    assert r.bar(rebound).decisions == ()


def test_partial_signal_exit_is_finished_with_its_reason() -> None:
    """A SELL signal's exit that partly fills is finished on the next bar with reason SIGNAL, no new signal needed."""
    r = Rig()
    r.open(100.0)
    [d] = r.bar(101.0, Side.SELL).decisions
    r.core.on_confirmation(fill(d, qty=1.0))
    [rest] = r.bar(102.0).decisions
    assert (rest.reason, rest.quantity) == (DecisionReason.SIGNAL, 4.0)


def test_protect_partially_filled_reduces_and_the_rest_is_closed() -> None:
    """The venue's stop partly filled: REDUCED with exit reason STOP_LOSS, and the next bar closes the rest."""
    r = Rig(exchange_stops=True)
    r.open(100.0)
    [p] = r.bar(113.0).decisions
    result = r.core.on_confirmation(fill(p, price=107.3, qty=1.5))
    assert result.applied is Applied.REDUCED and result.trade.exit_reason is DecisionReason.STOP_LOSS
    [rest] = r.bar(110.0).decisions
    assert (rest.intent, rest.reason, rest.quantity) == (Intent.CLOSE, DecisionReason.STOP_LOSS, 3.5)


def test_protect_step_must_be_positive() -> None:
    """protect_step_bps of 0 or less is refused when the config is built."""
    for bad in (0.0, -5.0):
        with pytest.raises(ValueError):
            BrainConfig(BTC, protect_step_bps=bad)


# -- dust ---------------------------------------------------------------------------------------


def test_exit_refused_for_invalid_quantity_leaves_dust_held_but_not_traded() -> None:
    """A spot sale rounded down to the lot step leaves a remainder the venue refuses to sell
    (INVALID_QUANTITY): the brain keeps it (the ledger has it too) but stops trying to sell it,
    allows a new entry, and sells it along with the next exit."""
    r = Rig()
    r.open(100.0)
    [x] = r.bar(100.0, Side.SELL).decisions
    assert r.core.on_confirmation(fill(x, qty=x.quantity - 1e-6)).applied is Applied.REDUCED
    [rest] = r.bar(100.0).decisions  # the unfinished exit is finished next bar ...
    assert rest.side is Side.SELL and rest.quantity == pytest.approx(1e-6)
    refused = dataclasses.replace(refuse(rest), reject_code=RejectCode.INVALID_QUANTITY)
    assert r.core.on_confirmation(refused).applied is Applied.NOT_EXECUTED
    assert BTC in r.core.dust and r.tracker.position(BTC).quantity == pytest.approx(1e-6)
    for price in (100.0, 50.0, 100.0):  # ... but not again, whatever the price does (no stop-loss on dust)
        assert r.bar(price).decisions == ()
    [again] = r.bar(100.0, Side.BUY).decisions  # flat for entries
    assert again.side is Side.BUY and again.intent is Intent.OPEN
    assert r.core.on_confirmation(fill(again)).applied is Applied.ADDED
    assert BTC not in r.core.dust
    [close] = r.bar(101.0, Side.SELL).decisions
    assert close.quantity == pytest.approx(again.quantity + 1e-6)  # the dust goes with it
