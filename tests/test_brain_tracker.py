"""The position tracker is a fold over confirmations (DESIGN.md invariants 1 and 3)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from factories import BTC, DAY, ETH, MIN, T0, failed, filled
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brain.exits import ExitRules
from brain.tracker import Applied, PositionTracker
from protocol import DecisionReason, ExecutionConfirmation, Intent, RejectCode, Side, Status

CASH = 10_000.0
RULES = ExitRules()
FAILURES = (Status.REJECTED, Status.EXPIRED, Status.FAILED)


def tracker() -> PositionTracker:
    return PositionTracker(CASH, RULES)


def state(t: PositionTracker) -> tuple[Any, ...]:
    """Everything a confirmation may change, for equality checks."""
    plans = {inst: t.exit_watch(inst).plan for inst in t.positions}  # type: ignore[union-attr]
    return (t.cash, t.realized_pnl, t.fees, t.anomalies, t.positions, list(t.closed_trades), plans)


# -- examples -------------------------------------------------------------------------------


def test_open_and_close_realizes_2_times_10() -> None:
    """Buy 2 @ 100 then sell 2 @ 110 with no fees: realized P&L 20 and cash back to start + 20."""
    t = tracker()
    opened = t.apply(filled(1, Side.BUY, 2, 100.0, T0))
    assert opened.applied is Applied.OPENED
    assert t.cash == CASH - 200
    pos = t.position(BTC)
    assert pos is not None and pos.quantity == 2 and pos.avg_entry_price == 100.0 and pos.opened_at_ns == T0
    closed = t.apply(filled(2, Side.SELL, 2, 110.0, T0 + DAY), DecisionReason.SIGNAL)
    assert closed.applied is Applied.CLOSED and closed.position is None
    assert t.realized_pnl == 20
    assert t.cash == CASH + 20
    assert t.fees == 0
    assert t.position(BTC) is None and t.exit_watch(BTC) is None
    [trade] = t.closed_trades
    assert trade == closed.trade
    assert (trade.quantity, trade.entry_price, trade.exit_price, trade.gross_pnl, trade.net_pnl) == (2, 100, 110, 20, 20)
    assert trade.exit_reason is DecisionReason.SIGNAL
    assert (trade.entry_decision_id, trade.exit_decision_id) == (1, 2)


def test_fees_are_kept_apart_from_gross_pnl() -> None:
    """Fees reduce cash and net P&L but not gross realized P&L."""
    t = tracker()
    t.apply(filled(1, Side.BUY, 2, 100.0, fee=1.0))
    t.apply(filled(2, Side.SELL, 2, 110.0, fee=1.5))
    assert t.realized_pnl == 20
    assert t.fees == 2.5
    assert t.cash == CASH + 20 - 2.5
    assert t.closed_trades[0].net_pnl == pytest.approx(17.5)


def test_exit_plan_attached_in_the_same_step_as_the_entry() -> None:
    """Right after an entry FILLED is applied, the position has its exit plan (invariant 3)."""
    t = tracker()
    entry, opened_at = 123.0, T0 + 7 * MIN
    result = t.apply(filled(1, Side.BUY, 3, entry, opened_at))
    watch = t.exit_watch(BTC)
    assert watch is not None
    assert watch.plan.stop_price == pytest.approx(entry * 0.92)
    assert watch.plan.activation_price == pytest.approx(entry * 1.12)
    assert watch.plan.deadline_ns == opened_at + 14 * DAY
    assert result.position is not None and result.position.plan == watch.plan


def test_partial_sell_reduces_and_keeps_the_plan() -> None:
    """Selling part of a position reduces it, realizes P&L on that part, and keeps the exit plan."""
    t = tracker()
    t.apply(filled(1, Side.BUY, 4, 100.0))
    plan = t.exit_watch(BTC).plan  # type: ignore[union-attr]
    result = t.apply(filled(2, Side.SELL, 1, 90.0, partial=True))
    assert result.applied is Applied.REDUCED
    assert t.position(BTC).quantity == 3  # type: ignore[union-attr]
    assert t.realized_pnl == -10
    assert t.exit_watch(BTC).plan == plan  # type: ignore[union-attr]


def test_adding_to_a_position_averages_the_entry() -> None:
    """A second buy adds to the position at the average entry and re-plans from it."""
    t = tracker()
    t.apply(filled(1, Side.BUY, 1, 100.0, T0))
    result = t.apply(filled(2, Side.BUY, 1, 120.0, T0 + DAY))
    assert result.applied is Applied.ADDED
    pos = t.position(BTC)
    assert pos is not None and pos.quantity == 2 and pos.avg_entry_price == 110 and pos.opened_at_ns == T0
    assert t.exit_watch(BTC).plan.stop_price == pytest.approx(110 * 0.92)  # type: ignore[union-attr]


@pytest.mark.parametrize("status", FAILURES)
def test_failure_confirmation_changes_nothing(status: Status) -> None:
    """REJECTED / EXPIRED / FAILED confirmations leave the tracker as it was."""
    t = tracker()
    t.apply(filled(1, Side.BUY, 2, 100.0))
    before = state(t)
    assert t.apply(failed(2, Side.SELL, status)).applied is Applied.NOT_EXECUTED
    assert t.apply(failed(3, Side.BUY, status, instrument=ETH)).applied is Applied.NOT_EXECUTED
    assert state(t) == before


@pytest.mark.parametrize("status", [Status.REJECTED, Status.FAILED])
def test_a_failed_execution_pays_its_fee_and_changes_nothing_else(status: Status) -> None:
    """A swap that landed and failed pays its network fee (protocol v5): cash and fees move by the
    fee, positions, P&L and plans do not; applied twice, once."""
    t = tracker()
    t.apply(filled(1, Side.BUY, 2, 100.0))
    cash, fees, positions = t.cash, t.fees, t.positions
    assert t.apply(failed(2, Side.SELL, status, fee=0.0009765625)).applied is Applied.NOT_EXECUTED
    assert (t.cash, t.fees, t.positions) == (cash - 0.0009765625, fees + 0.0009765625, positions)
    t.apply(failed(2, Side.SELL, status, fee=0.0009765625))
    assert t.cash == cash - 0.0009765625


def test_same_confirmation_twice_has_the_effect_of_once() -> None:
    """A re-delivered confirmation is recognised by decision_id and ignored."""
    t = tracker()
    conf = filled(1, Side.BUY, 2, 100.0)
    t.apply(conf)
    before = state(t)
    again = t.apply(dataclasses.replace(conf, sent_at_ns=T0 + 5))
    assert again.applied is Applied.DUPLICATE
    assert state(t) == before


def test_sell_without_a_position_is_an_anomaly_not_a_short() -> None:
    """An executed sell with no long position is counted as an anomaly and opens nothing."""
    t = tracker()
    result = t.apply(filled(1, Side.SELL, 1, 100.0))
    assert result.applied is Applied.ANOMALY
    assert t.anomalies == 1 and t.positions == {} and t.closed_trades == []


def test_marks_value_equity_without_changing_positions() -> None:
    """A mark updates equity and unrealized P&L but not cash or positions."""
    t = tracker()
    t.apply(filled(1, Side.BUY, 2, 100.0))
    before = state(t)
    assert t.mark(BTC, 105.0, T0 + MIN) is None
    assert t.equity() == CASH + 10 and t.unrealized_pnl() == 10
    assert t.mark(BTC, 91.0, T0 + 2 * MIN) is DecisionReason.STOP_LOSS
    assert state(t) == before


# -- properties -----------------------------------------------------------------------------


@st.composite
def confirmation_sequences(draw: st.DrawFn) -> list[ExecutionConfirmation]:
    """Interleaved buys, valid sells (never more than held), failures and re-deliveries.

    A scratch tracker follows along so that every sell is valid against the position it meets.
    """
    scratch = tracker()
    confs: list[ExecutionConfirmation] = []
    next_id = 1
    for step in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(("buy", "sell", "sell", "fail", "dup")))
        inst = draw(st.sampled_from((BTC, ETH)))
        at = T0 + step * MIN
        held = scratch.position(inst)
        if kind == "dup" and confs:
            earlier = draw(st.sampled_from(confs))
            conf = dataclasses.replace(earlier, sent_at_ns=at)  # retransmitted: fresh send stamp
        elif kind == "fail":
            side, status = draw(st.sampled_from(Side)), draw(st.sampled_from(FAILURES))
            conf = failed(next_id, side, status, at, instrument=inst)
            next_id += 1
        elif kind == "sell" and held is not None:
            whole = draw(st.booleans())
            qty = held.quantity if whole else held.quantity * draw(st.floats(0.01, 0.99))
            price = draw(st.floats(1.0, 1_000.0))
            fee = draw(st.sampled_from((0.0, 0.1, 1.0)))
            conf = filled(next_id, Side.SELL, qty, price, at, fee=fee, instrument=inst, partial=not whole)
            next_id += 1
        else:
            qty, price = draw(st.floats(0.001, 10.0)), draw(st.floats(1.0, 1_000.0))
            fee = draw(st.sampled_from((0.0, 0.1, 1.0)))
            conf = filled(next_id, Side.BUY, qty, price, at, fee=fee, instrument=inst, partial=draw(st.booleans()))
            next_id += 1
        scratch.apply(conf)
        confs.append(conf)
    return confs


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(confirmation_sequences())
def test_duplicates_and_failures_equal_first_successes_only(confs: list[ExecutionConfirmation]) -> None:
    """Any mix of duplicates and failures folds to the same state as the first successes alone."""
    full = tracker()
    for conf in confs:
        full.apply(conf)
    seen: set[int] = set()
    firsts = []
    for conf in confs:
        if conf.decision_id not in seen:
            seen.add(conf.decision_id)
            if conf.status.executed:
                firsts.append(conf)
    clean = tracker()
    for conf in firsts:
        clean.apply(conf)
    assert state(full) == state(clean)
    assert full.anomalies == 0


@PROPERTY
@given(confirmation_sequences())
def test_failure_confirmations_never_change_state(confs: list[ExecutionConfirmation]) -> None:
    """At any point in a sequence, applying a failure confirmation leaves the state unchanged."""
    t = tracker()
    for conf in confs:
        before = state(t)
        result = t.apply(conf)
        if not conf.status.executed:
            assert result.applied in (Applied.NOT_EXECUTED, Applied.DUPLICATE)
            assert state(t) == before


@PROPERTY
@given(confirmation_sequences())
def test_replay_into_a_fresh_tracker_rebuilds_identical_state(confs: list[ExecutionConfirmation]) -> None:
    """The tracker is a fold: replaying the same confirmations rebuilds exactly the same state."""
    first, second = tracker(), tracker()
    results_first = [first.apply(c) for c in confs]
    results_second = [second.apply(c) for c in confs]
    assert results_first == results_second
    assert state(first) == state(second)
    assert all(first.is_applied(c.decision_id) for c in confs)


# -- PROTECT confirmations and partial fills (protocol v2) ----------------------------------


def _accepted(decision_id: int, instrument: Any = BTC) -> ExecutionConfirmation:
    return ExecutionConfirmation(
        decision_id=decision_id, seq=decision_id, instrument=instrument, side=Side.SELL, intent=Intent.PROTECT,
        status=Status.ACCEPTED, reject_code=RejectCode.NONE, executed_qty=0.0, avg_price=0.0, fee=0.0,
        executed_at_ns=T0 + MIN,
    )  # fmt: skip


def test_accepted_protect_changes_nothing() -> None:
    """An ACCEPTED PROTECT (stop moved on the venue) leaves cash, positions, P&L and plan as they were."""
    t = tracker()
    t.apply(filled(1, Side.BUY, 2, 100.0))
    t.mark(BTC, 115.0, T0 + MIN)  # trailing armed: the watch's peak must survive too
    before, peak = state(t), t.exit_watch(BTC).peak  # type: ignore[union-attr]
    result = t.apply(_accepted(2), DecisionReason.TRAILING_TAKE_PROFIT)
    assert result.applied is Applied.ACCEPTED and result.position == t.position(BTC)
    assert state(t) == before and t.exit_watch(BTC).peak == peak == 115.0  # type: ignore[union-attr]
    assert t.is_applied(2) and t.apply(_accepted(2)).applied is Applied.DUPLICATE


def test_accepted_protect_while_flat_changes_nothing() -> None:
    """An ACCEPTED PROTECT with no position is not an anomaly and changes nothing."""
    t = tracker()
    before = state(t)
    assert t.apply(_accepted(1)).applied is Applied.ACCEPTED
    assert state(t) == before and t.anomalies == 0


@pytest.mark.parametrize("reason", [DecisionReason.STOP_LOSS, DecisionReason.TRAILING_TAKE_PROFIT, None])
def test_protect_stop_filled_on_the_venue_is_a_stop_loss_sell(reason: DecisionReason | None) -> None:
    """A PROTECT answered FILLED is applied as the sell it is; its trade's exit reason is STOP_LOSS."""
    t = tracker()
    t.apply(filled(1, Side.BUY, 2, 100.0))
    result = t.apply(filled(2, Side.SELL, 2, 107.0, T0 + DAY, fee=0.5, intent=Intent.PROTECT), reason)
    assert result.applied is Applied.CLOSED and t.position(BTC) is None and t.exit_watch(BTC) is None
    assert result.trade is not None and result.trade.exit_reason is DecisionReason.STOP_LOSS
    assert t.realized_pnl == 14 and t.cash == CASH + 14 - 0.5


def test_protect_partially_filled_reduces_and_keeps_the_plan() -> None:
    """A PROTECT whose stop partly filled reduces the position (STOP_LOSS trade) and keeps its exit plan."""
    t = tracker()
    t.apply(filled(1, Side.BUY, 4, 100.0))
    plan = t.exit_watch(BTC).plan  # type: ignore[union-attr]
    result = t.apply(filled(2, Side.SELL, 1, 92.0, partial=True, intent=Intent.PROTECT), DecisionReason.TRAILING_TAKE_PROFIT)
    assert result.applied is Applied.REDUCED and t.position(BTC).quantity == 3  # type: ignore[union-attr]
    assert result.trade is not None and result.trade.exit_reason is DecisionReason.STOP_LOSS
    assert t.exit_watch(BTC).plan == plan  # type: ignore[union-attr]


def test_partial_entry_opens_the_executed_quantity() -> None:
    """An entry PARTIALLY_FILLED opens a position of the executed quantity, with its plan."""
    t = tracker()
    result = t.apply(filled(1, Side.BUY, 1.25, 100.0, partial=True))
    assert result.applied is Applied.OPENED and t.position(BTC).quantity == 1.25  # type: ignore[union-attr]
    assert t.cash == CASH - 125 and t.exit_watch(BTC) is not None
