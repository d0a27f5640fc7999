"""Belief debt (executor/belief.py) and the belief controller (executor/controller.py), issue #14.

Pure modules driven by a scripted clock (Unix ns integers): reconcile evidence in, debt aggregates out;
aggregates in, a mode and its entry guards out. Hypothesis checks the controller's properties over
arbitrary series: more debt never allows more exposure, no flapping inside the hysteresis band, no move up
without the persistence window, and exits and protection are approved whatever the knobs say.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from executor.belief import ALL_INSTRUMENTS, BeliefDebt, DebtAggregates, DebtRules, MismatchKind
from executor.controller import (
    DEFAULT_KNOBS,
    Approved,
    BeliefController,
    Cause,
    ControllerRules,
    ControllerState,
    Denied,
    EntryGuard,
    GuardKnobs,
    Mode,
    admit_entry,
    scale_entry,
)
from protocol import Intent

S = 1_000_000_000
T0 = 1_735_689_600 * S  # 2025-01-01T00:00:00Z
CYCLE_S = 10  # the reconcile cadence the default rules assume
RULES = ControllerRules()
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DRIFT = MismatchKind.DRIFT
ORPHAN = MismatchKind.ORPHAN
EXITS = (Intent.CLOSE, Intent.REDUCE, Intent.PROTECT)


def agg(score: float, growth: float = 0.0) -> DebtAggregates:
    return DebtAggregates(score=score, growth_per_min=growth)


def feed(ctl: BeliefController, scores: list[float], *, start_s: float = 0, dt_s: float = CYCLE_S) -> int:
    """Feed ``scores`` (no growth) one cycle apart from ``start_s``; returns the last cycle's time, ns."""
    now = T0
    for i, score in enumerate(scores):
        now = T0 + round((start_s + i * dt_s) * S)
        ctl.update(agg(score), now)
    return now


# -- belief debt ------------------------------------------------------------------------------------------


def test_first_seen_is_kept_while_the_mismatch_is_seen_again() -> None:
    """A (instrument, kind) seen again keeps its first_seen; its last_seen and the debt's age advance."""
    debt = BeliefDebt()
    debt.observe(T0, [("BTC/USDT", DRIFT)], fetch_failed=False)
    a = debt.observe(T0 + 30 * S, [("BTC/USDT", DRIFT), ("BTC/USDT", DRIFT)], fetch_failed=False)
    (m,) = debt.open()
    assert (m.instrument, m.kind, m.first_seen_ns, m.last_seen_ns) == ("BTC/USDT", DRIFT, T0, T0 + 30 * S)
    assert a.debt_seconds == 30.0 and a.instruments == 1 and a.streak == 2


def test_a_mismatch_not_seen_again_is_resolved() -> None:
    """A mismatch absent from a successful cycle is removed; one still seen stays, with its own age."""
    debt = BeliefDebt()
    debt.observe(T0, [("BTC/USDT", DRIFT), ("ETH/USDT", ORPHAN)], fetch_failed=False)
    a = debt.observe(T0 + 10 * S, [("ETH/USDT", ORPHAN), ("SOL/USDT", DRIFT)], fetch_failed=False)
    assert [(m.instrument, m.first_seen_ns) for m in debt.open()] == [
        ("ETH/USDT", T0),
        ("SOL/USDT", T0 + 10 * S),
    ]
    assert a.instruments == 2 and a.debt_seconds == 10.0
    clean = debt.observe(T0 + 20 * S, [], fetch_failed=False)
    assert debt.open() == [] and clean == DebtAggregates(0.0, 0, 0, 0.0, clean.growth_per_min)


def test_the_same_instrument_with_two_kinds_is_two_mismatches_but_one_instrument() -> None:
    """Mismatches are kept per (instrument, kind); the instrument count counts instruments."""
    debt = BeliefDebt()
    a = debt.observe(T0, [("BTC/USDT", DRIFT), ("BTC/USDT", MismatchKind.STOP_SHORT)], fetch_failed=False)
    assert len(debt.open()) == 2 and a.instruments == 1


def test_streak_counts_consecutive_dirty_cycles_and_a_clean_cycle_resets_it() -> None:
    """The streak counts cycles with any mismatch or failed fetch (even new ones); a clean cycle zeroes it."""
    debt = BeliefDebt()
    streaks = [
        debt.observe(T0 + i * CYCLE_S * S, ev, fetch_failed=ff).streak
        for i, (ev, ff) in enumerate(
            [
                ([("A", DRIFT)], False),
                ([("B", ORPHAN)], False),  # A resolved, B new: still a dirty cycle
                ([], True),
                ([], False),
                ([("C", MismatchKind.STOP_MISSING)], False),
            ]
        )
    ]
    assert streaks == [1, 2, 3, 0, 1]


def test_the_score_is_the_documented_formula() -> None:
    """score = debt_s / debt_ref_s + instruments × instrument_weight + streak × streak_weight."""
    rules = DebtRules(debt_ref_s=30.0, instrument_weight=2.0, streak_weight=0.25)
    debt = BeliefDebt(rules)
    debt.observe(T0, [("A", DRIFT)], fetch_failed=False)
    a = debt.observe(T0 + 45 * S, [("A", DRIFT), ("B", ORPHAN), ("C", ORPHAN)], fetch_failed=False)
    assert a.score == pytest.approx(45 / 30 + 3 * 2.0 + 2 * 0.25)


def test_a_failed_fetch_raises_the_score_and_the_streak_and_resolves_nothing() -> None:
    """A failed fetch raises streak and score, resolves nothing, and is kept as ("*", fetch_failed)."""
    debt = BeliefDebt()
    before = debt.observe(T0, [("BTC/USDT", DRIFT)], fetch_failed=False)
    after = debt.observe(T0 + 10 * S, [], fetch_failed=True)
    assert after.streak == before.streak + 1 and after.score > before.score
    assert {(m.instrument, m.kind) for m in debt.open()} == {
        ("BTC/USDT", DRIFT),
        (ALL_INSTRUMENTS, MismatchKind.FETCH_FAILED),
    }
    assert after.instruments == 1 and after.debt_seconds == 10.0
    kept = next(m for m in debt.open() if m.instrument == "BTC/USDT")
    assert kept.last_seen_ns == T0  # kept, not seen


def test_debt_grows_while_fetches_keep_failing_and_a_good_fetch_repays_it() -> None:
    """Debt ages from the first of repeated failed fetches; the first good fetch resolves it."""
    debt = BeliefDebt()
    debt.observe(T0, [], fetch_failed=False)
    seen = [debt.observe(T0 + i * CYCLE_S * S, [], fetch_failed=True) for i in range(1, 7)]
    assert [a.debt_seconds for a in seen] == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert [a.streak for a in seen] == [1, 2, 3, 4, 5, 6]
    assert all(b.score > a.score for a, b in pairwise(seen)) and seen[0].score > 0
    assert all(a.instruments == 0 for a in seen)
    (m,) = debt.open()
    assert (m.instrument, m.first_seen_ns) == (ALL_INSTRUMENTS, T0 + CYCLE_S * S)
    ok = debt.observe(T0 + 70 * S, [], fetch_failed=False)
    assert debt.open() == [] and ok.score == 0.0 and ok.streak == 0


def test_a_failed_fetch_for_one_instrument_keeps_only_that_instruments_mismatches() -> None:
    """(instrument, fetch_failed) keeps that instrument's mismatches open; others resolve as usual."""
    debt = BeliefDebt()
    debt.observe(T0, [("A", DRIFT), ("B", DRIFT)], fetch_failed=False)
    debt.observe(T0 + 10 * S, [("A", MismatchKind.FETCH_FAILED)], fetch_failed=False)
    assert {(m.instrument, m.kind) for m in debt.open()} == {("A", DRIFT), ("A", MismatchKind.FETCH_FAILED)}


def test_growth_per_minute_is_the_slope_of_the_score_between_cycles() -> None:
    """growth_per_min is Δscore / minutes between cycles: 0 on the first, negative while debt is repaid."""
    debt = BeliefDebt()
    first = debt.observe(T0, [("A", DRIFT)], fetch_failed=False)
    second = debt.observe(T0 + 30 * S, [("A", DRIFT), ("B", DRIFT)], fetch_failed=False)
    third = debt.observe(T0 + 90 * S, [], fetch_failed=False)
    assert first.growth_per_min == 0.0
    assert second.growth_per_min == pytest.approx((second.score - first.score) / 0.5)
    assert third.growth_per_min == pytest.approx(-second.score / 1.0) and third.growth_per_min < 0


def test_the_slope_is_taken_over_at_least_the_floor() -> None:
    """A cycle run milliseconds after another divides the step by slope_floor_s, not by the milliseconds."""
    debt = BeliefDebt()
    debt.observe(T0, [], fetch_failed=False)
    a = debt.observe(T0 + S // 100, [("A", DRIFT)], fetch_failed=False)
    assert a.growth_per_min == pytest.approx(a.score / (DebtRules().slope_floor_s / 60))


def test_time_going_backwards_and_bad_debt_rules_raise() -> None:
    """A cycle earlier than the previous one is a caller's error, and so are rules with no scale."""
    debt = BeliefDebt()
    debt.observe(T0, [], fetch_failed=False)
    debt.observe(T0, [], fetch_failed=False)  # the same time is allowed
    with pytest.raises(ValueError, match="backwards"):
        debt.observe(T0 - 1, [], fetch_failed=False)
    for bad in (
        {"debt_ref_s": 0.0},
        {"slope_floor_s": -1.0},
        {"instrument_weight": -0.1},
        {"streak_weight": math.nan},
    ):
        with pytest.raises(ValueError):
            DebtRules(**bad)


evidence = st.lists(
    st.tuples(
        st.integers(0, 60),  # seconds since the previous cycle
        st.sets(st.tuples(st.sampled_from("ABCD"), st.sampled_from(list(MismatchKind))), max_size=5),
        st.booleans(),  # fetch_failed
    ),
    min_size=1,
    max_size=40,
)


@FAST
@given(evidence)
def test_debt_aggregates_agree_with_the_open_mismatches(cycles: list[tuple[int, set, bool]]) -> None:
    """For any evidence, the aggregates are the documented formulas over open() and the cycle history."""
    debt, rules = BeliefDebt(), DebtRules()
    now, streak, prev_score, prev_ns = T0, 0, None, None
    for dt, seen, failed in cycles:
        now += dt * S
        before = {(m.instrument, m.kind): m for m in debt.open()}
        a = debt.observe(now, seen, fetch_failed=failed)
        opened = {(m.instrument, m.kind): m for m in debt.open()}
        streak = streak + 1 if seen or failed else 0
        assert a.streak == streak
        for key in seen:
            assert opened[key].last_seen_ns == now
            expected_first = before[key].first_seen_ns if key in before else now
            assert opened[key].first_seen_ns == expected_first
        if failed:
            assert set(before) <= set(opened)
        elif not any(k is MismatchKind.FETCH_FAILED for _, k in seen):
            assert set(opened) == set(seen)
        debt_s = max(((now - m.first_seen_ns) / S for m in opened.values()), default=0.0)
        instruments = len({i for i, _ in opened if i != ALL_INSTRUMENTS})
        assert (a.debt_seconds, a.instruments) == (debt_s, instruments)
        assert a.score == pytest.approx(rules.score(debt_s, instruments, streak))
        if prev_score is None:
            assert a.growth_per_min == 0.0
        else:
            minutes = max((now - prev_ns) / S, rules.slope_floor_s) / 60
            assert a.growth_per_min == pytest.approx((a.score - prev_score) / minutes)
        prev_score, prev_ns = a.score, now


# -- the default rules, end to end ------------------------------------------------------------------------


def _run(evidence_at: list[tuple[list[tuple[str, MismatchKind]], bool]]) -> BeliefController:
    debt, ctl = BeliefDebt(), BeliefController()
    for i, (ev, failed) in enumerate(evidence_at):
        now = T0 + i * CYCLE_S * S
        ctl.update(debt.observe(now, ev, fetch_failed=failed), now)
    return ctl


def _entered(ctl: BeliefController) -> dict[Mode, float]:
    return {t.after: (t.at_ns - T0) / S for t in ctl.history}


def test_one_stuck_mismatch_climbs_yellow_orange_red_at_the_documented_times() -> None:
    """One stuck mismatch (10 s cycle) reaches YELLOW, ORANGE, RED 50 s, 120 s, 240 s after it appears."""
    ctl = _run([([], False)] + [([("BTC/USDT", DRIFT)], False)] * 40)
    assert _entered(ctl) == {Mode.YELLOW: 60.0, Mode.ORANGE: 130.0, Mode.RED: 250.0}
    assert all(t.cause is Cause.PERSISTENCE for t in ctl.history) and ctl.kill_switch


def test_a_mismatch_resolved_within_forty_seconds_never_leaves_green() -> None:
    """A race between a fill and the reconcile fetch that clears within five cycles leaves GREEN."""
    ctl = _run([([], False)] + [([("BTC/USDT", DRIFT)], False)] * 5 + [([], False)] * 20)
    assert ctl.history == () and ctl.mode is Mode.GREEN


def test_failing_fetches_climb_to_red_too() -> None:
    """A venue whose evidence cannot be fetched is not "all fine": YELLOW after 70 s, RED after 260 s."""
    ctl = _run([([], False)] + [([], True)] * 40)
    entered = _entered(ctl)
    assert entered[Mode.YELLOW] - CYCLE_S == 70.0 and entered[Mode.RED] - CYCLE_S == 260.0


def test_three_instruments_going_wrong_in_one_cycle_is_a_burst_two_are_not() -> None:
    """Three instruments going wrong in one cycle trip RED at once as a burst; two do not."""
    three = _run([([], False), ([("A", DRIFT), ("B", ORPHAN), ("C", DRIFT)], False)])
    two = _run([([], False), ([("A", DRIFT), ("B", ORPHAN)], False)])
    assert three.mode is Mode.RED and three.history[-1].cause is Cause.BURST
    assert two.mode is Mode.GREEN


# -- the controller's properties ------------------------------------------------------------------------

segment = st.tuples(
    st.floats(0.0, 8.0),  # B's score, held for the segment
    st.integers(1, 20),  # cycles in the segment
    st.integers(1, 30),  # seconds between its cycles
    st.integers(0, 9),  # 0: B's first cycle in the segment is a growth burst
    st.one_of(st.just(0.0), st.floats(0.0, 3.0)),  # A's extra score
    st.one_of(st.just(0.0), st.floats(0.0, 3.0)),  # A's extra growth
    st.integers(0, 3),  # A's extra instruments and streak
    st.integers(0, 9),  # 0: A's first cycle in the segment is a growth burst (B's is not)
)


@FAST
@given(st.lists(segment, min_size=1, max_size=12))
def test_more_debt_never_allows_more_exposure(
    segments: list[tuple[float, int, int, int, float, float, int, int]],
) -> None:
    """Where A's aggregates >= B's at every cycle, A's mode is never lower nor its knobs more permissive."""
    a_ctl, b_ctl = BeliefController(), BeliefController()
    now, burst = T0, RULES.burst_per_min
    for score, cycles, dt_s, b_burst, extra, extra_growth, extra_n, a_burst in segments:
        for i in range(cycles):
            now += dt_s * S
            growth = burst if i == 0 and b_burst == 0 else 0.0
            b = DebtAggregates(score * 30, int(score), int(score * 3), score, growth)
            a_growth = growth + extra_growth + (burst if i == 0 and a_burst == 0 else 0.0)
            a = DebtAggregates(
                b.debt_seconds + extra * 60,
                b.instruments + extra_n,
                b.streak + extra_n,
                score + extra,
                a_growth,
            )
            ka, kb = a_ctl.update(a, now), b_ctl.update(b, now)
            assert a_ctl.mode >= b_ctl.mode
            assert ka.at_least_as_strict_as(kb)
            assert ka.allow_entries <= kb.allow_entries and ka.entry_scale <= kb.entry_scale
            assert ka.max_notional <= kb.max_notional and ka.entry_cooldown_s >= kb.entry_cooldown_s
            assert ka.max_open_orders_per_instrument <= kb.max_open_orders_per_instrument
            assert ka.kill_switch >= kb.kill_switch


def test_the_knob_table_is_ordered_from_green_to_red() -> None:
    """Each mode's knobs are at least as strict as the lower mode's; only RED has the kill switch."""
    assert [k.mode for k in DEFAULT_KNOBS] == [Mode.GREEN, Mode.YELLOW, Mode.ORANGE, Mode.RED]
    assert [int(m) for m in Mode] == [1, 2, 3, 4]
    assert all(b.at_least_as_strict_as(a) for a, b in pairwise(DEFAULT_KNOBS))
    assert [k.allow_entries for k in DEFAULT_KNOBS] == [True, True, False, False]
    assert [k.kill_switch for k in DEFAULT_KNOBS] == [False, False, False, True]
    assert DEFAULT_KNOBS[0].max_notional == math.inf and DEFAULT_KNOBS[1].entry_scale == 0.5


def _walk(lo: float, hi: float) -> st.SearchStrategy[list[tuple[int, float]]]:
    """Random walks of (seconds since the previous cycle, score) inside [lo, hi)."""
    return st.lists(
        st.tuples(st.integers(1, 60), st.floats(lo, hi, exclude_max=True)), min_size=50, max_size=300
    )


@FAST
@given(st.sampled_from([Mode.YELLOW, Mode.ORANGE, Mode.RED]), st.booleans(), st.data())
def test_a_score_inside_the_hysteresis_band_never_changes_the_mode(
    mode: Mode, start_high: bool, data
) -> None:
    """A score wandering between a mode's down and up thresholds makes zero transitions, from either side."""
    lo, hi = RULES.down_threshold(mode), RULES.up_threshold(mode)
    start = mode if start_high else Mode(mode - 1)
    ctl = BeliefController(mode=start, kill_switch=start is Mode.RED)
    now = T0
    for dt, score in data.draw(_walk(lo, hi)):
        now += dt * S
        ctl.update(agg(score), now)
        assert ctl.debt_mode is start
    assert ctl.history == ()


def test_a_score_crossing_both_thresholds_faster_than_the_windows_does_not_flap() -> None:
    """A score crossing both thresholds every 20 s for an hour (179 naive flips) changes nothing."""
    ctl = BeliefController()
    scores = [1.2 if i % 2 else 0.3 for i in range(180)]
    naive_flips = sum((a >= 1.0) != (b >= 1.0) for a, b in pairwise(scores))
    feed(ctl, scores, dt_s=20)
    assert naive_flips == 179 and ctl.history == () and ctl.mode is Mode.GREEN
    yellow = BeliefController(mode=Mode.YELLOW)
    feed(yellow, scores, dt_s=20)
    assert yellow.history == () and yellow.mode is Mode.YELLOW


below_red = st.lists(  # (score below RED's up threshold held for n cycles, n, seconds between cycles)
    st.tuples(st.floats(0.0, RULES.up[2], exclude_max=True), st.integers(1, 30), st.integers(1, 60)),
    max_size=25,
)


@FAST
@given(below_red)
def test_reversals_are_separated_by_the_windows(walk: list[tuple[float, int, int]]) -> None:
    """Without bursts, a step down needs recovery_s since the last change, a step up persistence_s."""
    ctl = BeliefController()
    now = T0
    for score, cycles, dt in walk:
        for _ in range(cycles):
            now += dt * S
            ctl.update(agg(score), now)
    hist = ctl.history
    for prev, nxt in pairwise(hist):
        gap_s = (nxt.at_ns - prev.at_ns) / S
        if nxt.after < nxt.before:
            assert gap_s >= RULES.recovery_s
        elif prev.after < prev.before:
            assert gap_s >= RULES.persistence_s
    assert all(t.cause in (Cause.PERSISTENCE, Cause.RECOVERY) for t in hist)


@FAST
@given(
    st.floats(RULES.up[0], 100.0),  # the spike's height
    st.integers(0, int(RULES.persistence_s * 1000) - 1),  # its duration, ms
    st.integers(100, 10_000),  # ms between cycles
)
def test_a_spike_shorter_than_the_persistence_window_does_not_raise_the_mode(
    height: float, duration_ms: int, cycle_ms: int
) -> None:
    """A score at any height for less than persistence_s, seen by any number of cycles, leaves GREEN."""
    ctl = BeliefController()
    now = T0
    ctl.update(agg(0.0), now)
    start = now + cycle_ms * 1_000_000
    now = start
    while now - start <= duration_ms * 1_000_000:
        ctl.update(agg(height), now)
        now += cycle_ms * 1_000_000
    ctl.update(agg(0.0), now)
    assert ctl.mode is Mode.GREEN and ctl.history == ()


def test_upward_needs_the_persistence_window_and_may_jump_several_modes() -> None:
    """A score held above RED's threshold goes up only after persistence_s, then straight to RED."""
    ctl = BeliefController()
    feed(ctl, [7.0, 7.0, 7.0])  # 0, 10, 20 s
    assert ctl.mode is Mode.GREEN
    feed(ctl, [7.0], start_s=30)
    assert ctl.mode is Mode.RED and ctl.kill_switch
    (t,) = ctl.history
    assert (t.before, t.after, t.cause, t.at_ns) == (Mode.GREEN, Mode.RED, Cause.PERSISTENCE, T0 + 30 * S)


def test_downward_needs_the_recovery_window_one_mode_at_a_time() -> None:
    """From ORANGE, a clean score steps down to YELLOW after recovery_s and to GREEN recovery_s later."""
    ctl = BeliefController(mode=Mode.ORANGE)
    feed(ctl, [0.0] * 25)  # 0 .. 240 s
    assert [(t.before, t.after, (t.at_ns - T0) / S) for t in ctl.history] == [
        (Mode.ORANGE, Mode.YELLOW, 120.0),
        (Mode.YELLOW, Mode.GREEN, 240.0),
    ]
    assert all(t.cause is Cause.RECOVERY for t in ctl.history)


def test_a_growth_burst_trips_red_at_once_even_at_low_debt_and_latches_the_kill_switch() -> None:
    """A burst trips RED at once at low debt; the kill switch stays latched until cleared."""
    ctl = BeliefController()
    ctl.update(agg(0.0), T0)
    knobs = ctl.update(agg(0.2, growth=RULES.burst_per_min), T0 + S)
    assert ctl.mode is Mode.RED and ctl.kill_switch and knobs.kill_switch and not knobs.allow_entries
    assert ctl.history[-1].cause is Cause.BURST
    last = feed(ctl, [0.0] * 360, start_s=2)  # an hour of no debt
    assert ctl.mode is Mode.RED and ctl.kill_switch and ctl.knobs == RULES.knobs_for(Mode.RED)
    assert ctl.debt_mode is Mode.GREEN  # underneath, the debt has recovered
    assert ctl.clear_kill_switch(last) is True
    assert ctl.mode is Mode.GREEN and not ctl.kill_switch and ctl.knobs.allow_entries
    assert ctl.history[-1] == replace(ctl.history[-1], before=Mode.RED, after=Mode.GREEN, cause=Cause.CLEARED)
    assert ctl.clear_kill_switch(last) is False


def test_every_clear_is_reported() -> None:
    """Each clear of a set kill switch returns True and adds a CLEARED transition; a no-op returns False."""
    ctl = BeliefController()
    now, returned = T0, []
    for _ in range(3):
        ctl.update(agg(0.0), now)
        ctl.update(agg(0.5, growth=50.0), now + S)
        now += 10 * S
        returned += [ctl.clear_kill_switch(now), ctl.clear_kill_switch(now)]
    assert returned == [True, False] * 3
    assert [t.cause for t in ctl.history] == [Cause.BURST, Cause.CLEARED] * 3


def test_clearing_while_the_debt_still_calls_for_red_leaves_orange_and_red_returns_after_persistence() -> (
    None
):
    """A clear under RED-level debt leaves ORANGE (no entries); RED returns after a fresh persistence."""
    ctl = BeliefController()
    last = feed(ctl, [8.0] * 4)
    assert ctl.kill_switch
    assert ctl.clear_kill_switch(last)
    assert ctl.mode is Mode.ORANGE and not ctl.knobs.allow_entries and not ctl.kill_switch
    feed(ctl, [8.0] * 3, start_s=40)  # 40, 50, 60 s: above since 40 s
    assert ctl.mode is Mode.ORANGE
    feed(ctl, [8.0], start_s=70)
    assert ctl.mode is Mode.RED and ctl.kill_switch


def test_the_mode_and_the_latch_survive_a_restart_through_the_journal() -> None:
    """The journaled state restores the mode and the latch; leaving the mode needs a fresh recovery window."""
    ctl = BeliefController()
    ctl.update(agg(0.0), T0)
    ctl.update(agg(0.5, growth=20.0), T0 + S)
    blob = json.dumps(ctl.state().as_dict())
    back = BeliefController.from_state(ControllerState.from_dict(json.loads(blob)))
    assert back.mode is Mode.RED and back.kill_switch and back.state() == ctl.state()
    assert back.clear_kill_switch(T0 + 2 * S) and back.mode is Mode.ORANGE

    yellow = BeliefController.from_state(ControllerState(Mode.YELLOW, kill_switch=False))
    feed(yellow, [0.0] * 12, start_s=1000)  # 110 s of evidence after the restart
    assert yellow.mode is Mode.YELLOW
    feed(yellow, [0.0], start_s=1120)
    assert yellow.mode is Mode.GREEN
    with pytest.raises(ValueError, match="RED"):
        ControllerState(Mode.RED, kill_switch=False)


def test_bad_rules_knobs_and_times_raise() -> None:
    """Out-of-order thresholds or knob tables, out-of-range knobs and time going backwards raise."""
    for bad in (
        {"up": (1.0, 1.0, 6.0)},
        {"down": (1.0, 1.8, 3.6)},
        {"down": (0.0, 1.8, 3.6)},
        {"persistence_s": -1.0},
        {"burst_per_min": 0.0},
        {"knobs": (DEFAULT_KNOBS[1], DEFAULT_KNOBS[0], DEFAULT_KNOBS[2], DEFAULT_KNOBS[3])},
        {
            "knobs": (
                DEFAULT_KNOBS[0],
                replace(DEFAULT_KNOBS[1], max_open_orders_per_instrument=3),
                *DEFAULT_KNOBS[2:],
            )
        },
    ):
        with pytest.raises(ValueError):
            ControllerRules(**bad)
    for knob in (
        {"entry_scale": 1.5},
        {"max_notional": math.nan},
        {"entry_cooldown_s": -1.0},
        {"kill_switch": True},
    ):
        with pytest.raises(ValueError):
            replace(DEFAULT_KNOBS[0], **knob)
    ctl = BeliefController()
    ctl.update(agg(0.0), T0)
    with pytest.raises(ValueError, match="backwards"):
        ctl.update(agg(0.0), T0 - 1)


# -- the guard --------------------------------------------------------------------------------------------

any_knobs = st.one_of(
    st.sampled_from(DEFAULT_KNOBS),
    st.builds(
        lambda mode, allow, scale, cap, cool, n, kill: GuardKnobs(
            mode, allow and not kill, scale, cap, cool, n, kill
        ),
        st.sampled_from(list(Mode)),
        st.booleans(),
        st.floats(0.0, 1.0),
        st.one_of(st.just(math.inf), st.floats(0.0, 1e9)),
        st.floats(0.0, 1e6),
        st.integers(0, 5),
        st.booleans(),
    ),
)


@FAST
@given(
    any_knobs,
    st.sampled_from(EXITS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(0, 10**6),
    st.one_of(st.none(), st.integers(0, 10**12)),
)
def test_exits_and_protection_are_approved_in_every_mode_for_any_notional(
    knobs: GuardKnobs, intent: Intent, notional: float, open_orders: int, since_last: int | None
) -> None:
    """CLOSE, REDUCE and PROTECT are approved under any knobs (kill switch too), notional and order count."""
    last = None if since_last is None else T0 - since_last
    verdict = admit_entry(
        knobs, intent=intent, notional=notional, now_ns=T0, last_entry_ns=last, open_orders=open_orders
    )
    assert verdict == Approved()


def _open(knobs: GuardKnobs, notional: float = 100.0, last: int | None = None, open_orders: int = 0):
    return admit_entry(
        knobs, intent=Intent.OPEN, notional=notional, now_ns=T0, last_entry_ns=last, open_orders=open_orders
    )


def test_an_entry_is_denied_for_each_reason_with_its_guard() -> None:
    """OPEN is denied by each guard (kill switch, paused, notional, cooldown, open orders) with its reason."""
    green, yellow = RULES.knobs_for(Mode.GREEN), RULES.knobs_for(Mode.YELLOW)
    capped = replace(yellow, max_notional=500.0)
    cases = {
        EntryGuard.KILL_SWITCH: _open(RULES.knobs_for(Mode.RED)),
        EntryGuard.ENTRIES_PAUSED: _open(RULES.knobs_for(Mode.ORANGE)),
        EntryGuard.MAX_NOTIONAL: _open(capped, notional=500.01),
        EntryGuard.COOLDOWN: _open(yellow, last=T0 - 59 * S),
        EntryGuard.OPEN_ORDERS: _open(green, open_orders=2),
    }
    for guard, verdict in cases.items():
        assert isinstance(verdict, Denied) and verdict.guard is guard and verdict.reason
    nan = _open(capped, notional=math.nan)
    assert isinstance(nan, Denied) and nan.guard is EntryGuard.MAX_NOTIONAL
    assert _open(capped, notional=500.0) == Approved()
    assert _open(yellow, last=T0 - 60 * S) == Approved()
    assert _open(green, open_orders=1, last=T0) == Approved()


@FAST
@given(any_knobs, st.floats(0.0, 1e6), st.floats(1e-6, 1e6))
def test_scale_entry_scales_caps_and_passes_the_guards_notional_check(
    knobs: GuardKnobs, qty: float, price: float
) -> None:
    """scale_entry is qty × scale capped at max_notional / price, 0 without entries, and passes the cap."""
    sized = scale_entry(knobs, qty, price)
    if not knobs.allow_entries or knobs.kill_switch:
        assert sized == 0.0
        return
    assert 0.0 <= sized <= qty * knobs.entry_scale
    assert sized * price <= knobs.max_notional
    if sized < qty * knobs.entry_scale:
        assert sized == pytest.approx(knobs.max_notional / price, rel=1e-12)
    verdict = _open(knobs, notional=sized * price)
    assert not (isinstance(verdict, Denied) and verdict.guard is EntryGuard.MAX_NOTIONAL)


def test_the_notional_cap_rounds_the_size_down() -> None:
    """Where max_notional / price × price rounds above the cap, the size is nudged down to pass the guard."""
    capped = replace(RULES.knobs_for(Mode.GREEN), max_notional=100.0)
    assert (100.0 / 0.3) * 0.3 > 100.0
    sized = scale_entry(capped, 1_000.0, 0.3)
    assert sized * 0.3 <= 100.0 and sized == pytest.approx(100.0 / 0.3, rel=1e-15)
    assert _open(capped, notional=sized * 0.3) == Approved()
    assert scale_entry(RULES.knobs_for(Mode.YELLOW), 3.0, 50.0) == 1.5
    assert scale_entry(RULES.knobs_for(Mode.ORANGE), 3.0, 50.0) == 0.0


def test_scale_entry_rejects_a_meaningless_price() -> None:
    """A non-positive or non-finite price, or a negative quantity, is a caller's error."""
    for qty, price in ((1.0, 0.0), (1.0, -1.0), (1.0, math.inf), (-1.0, 10.0), (math.nan, 10.0)):
        with pytest.raises(ValueError):
            scale_entry(DEFAULT_KNOBS[0], qty, price)
