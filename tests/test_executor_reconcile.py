"""The reconcile diff (executor/reconcile.py): the ledger and the gateway's stops against the venue's
reports, into corrections — each rule, and the bounds on repairs as a property."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from executor.belief import MismatchKind
from executor.reconcile import (
    Adopt,
    BeliefView,
    CancelStop,
    ClearPhantom,
    Evidence,
    FixDrift,
    PlaceStop,
    ReconcileRules,
    ReconcileState,
    ResizeStop,
    StopView,
    diff,
)
from executor.venue.base import OrderReport, OrderStatus, OrderType
from protocol import Side

S = "BTC/USDT:USDT"
NS = 1_000_000_000
RULES = ReconcileRules(phantom_grace_s=30.0, phantom_misses=3, repair_cooldown_s=60.0, max_repairs=2)


def _stop(coid: str, qty: float, level: float = 90.0, symbol: str = S) -> OrderReport:
    return OrderReport(coid, "1", symbol, Side.SELL, OrderType.STOP_MARKET, OrderStatus.OPEN, qty, 0.0, 0.0, 0.0, level)


def _ours(coid: str) -> bool:
    return coid.startswith("td")


def _run(belief: BeliefView, evidence: Evidence, state: ReconcileState | None = None, now: int = 0,
         rules: ReconcileRules = RULES):  # fmt: skip
    return diff(belief, evidence, state or ReconcileState(), now, rules, is_our_stop=_ours, protective=True)


def test_agreeing_books_give_nothing() -> None:
    """Ledger = venue and one stop covering the position: no correction, no mismatch."""
    belief = BeliefView({S: 0.5}, {S: 100.0}, {S: StopView("tdp1", 0.5, 90.0)})
    plan = _run(belief, Evidence({S: (0.5, 100.0)}, [_stop("tdp1", 0.5)]))
    assert plan.corrections == () and plan.mismatches == ()


def test_orphan_is_adopted_at_the_venues_entry_with_a_stop() -> None:
    """A position the ledger lacks is adopted at the venue's entry price (or the mark on spot), with
    its stop ``adopt_stop_pct`` below; its stop is not asked for separately."""
    plan = _run(BeliefView({}, {}, {}), Evidence({S: (0.3, 200.0)}, []))
    assert plan.corrections == (Adopt(S, 0.3, 200.0, 200.0 * 0.92),)
    assert plan.mismatches == ((S, MismatchKind.ORPHAN),)
    spot = _run(BeliefView({}, {}, {}), Evidence({S: (0.3, 0.0)}, [], marks={S: 150.0}))
    assert spot.corrections == (Adopt(S, 0.3, 150.0, 150.0 * 0.92),)


def test_phantom_waits_for_the_grace_period_and_the_misses() -> None:
    """A ledger position missing on the venue is cleared only after 30 s since first missed AND 3
    consecutive misses; before that it is a mismatch, and still believed."""
    belief = BeliefView({S: 0.5}, {S: 100.0}, {})
    state = ReconcileState()
    gone = Evidence({}, [], marks={S: 95.0})
    assert _run(belief, gone, state, 0).corrections == ()
    assert _run(belief, gone, state, 40 * NS).corrections == ()  # two misses only
    plan = _run(belief, gone, state, 41 * NS)
    assert plan.corrections == (ClearPhantom(S, 0.5, 95.0),)
    state2 = ReconcileState()
    for t in (0, 1, 2, 3):
        quick = _run(belief, gone, state2, t * NS)
    assert quick.corrections == (), "four misses inside the grace period clear nothing"


def test_a_miss_then_the_position_back_resets_the_count() -> None:
    """A venue that lagged once and shows the position again: the miss count starts over."""
    belief = BeliefView({S: 0.5}, {S: 100.0}, {S: StopView("tdp1", 0.5, 90.0)})
    state = ReconcileState()
    _run(belief, Evidence({}, [], marks={S: 95.0}), state, 0)
    _run(belief, Evidence({S: (0.5, 100.0)}, [_stop("tdp1", 0.5)]), state, NS)
    assert state.misses == {}


def test_drift_is_set_to_the_venues_size() -> None:
    """Both hold it in other sizes: the ledger is set to the venue's, at the mark."""
    belief = BeliefView({S: 0.5}, {S: 100.0}, {S: StopView("tdp1", 0.5, 90.0)})
    plan = _run(belief, Evidence({S: (0.7, 100.0)}, [_stop("tdp1", 0.5)], marks={S: 101.0}))
    assert plan.corrections[0] == FixDrift(S, 0.5, 0.7, 101.0)
    assert ResizeStop(S, 0.7, 90.0) in plan.corrections  # the stop now short of the venue's size
    assert {k for _, k in plan.mismatches} == {MismatchKind.DRIFT, MismatchKind.STOP_SHORT}


def test_stop_coverage_missing_extra_and_orphaned() -> None:
    """A position without our stop gets one; a second stop of ours, and one on a flat symbol, are
    cancelled; someone else's orders are not ours to touch."""
    belief = BeliefView({S: 0.5}, {S: 100.0}, {})
    plan = _run(belief, Evidence({S: (0.5, 100.0)}, [_stop("someone-else", 0.5)]))
    assert plan.corrections == (PlaceStop(S, 0.5, 92.0),)
    two = BeliefView({S: 0.5}, {S: 100.0}, {S: StopView("tdp1", 0.5, 90.0)})
    plan = _run(two, Evidence({S: (0.5, 100.0)}, [_stop("tdp1", 0.5), _stop("tdp0", 0.5)]))
    assert plan.corrections == (CancelStop(S, "tdp0"),)
    flat = _run(BeliefView({}, {}, {}), Evidence({}, [_stop("tdp9", 0.5)]))
    assert flat.corrections == (CancelStop(S, "tdp9"),)


def test_dust_and_lot_rounding_are_not_a_missing_or_short_stop() -> None:
    """Below the venue's minimum amount nothing can protect it: no stop is asked for dust, and a stop
    short only by less than the minimum (its lot rounding) covers the position."""
    belief = BeliefView({S: 0.00001}, {S: 100.0}, {})
    assert _run(belief, Evidence({S: (0.00001, 100.0)}, [], min_amount={S: 0.001})).corrections == ()
    rounded = BeliefView({S: 0.01098}, {S: 100.0}, {S: StopView("tdp1", 0.0109, 90.0)})
    assert _run(rounded, Evidence({S: (0.01098, 100.0)}, [_stop("tdp1", 0.0109)], min_amount={S: 0.0001})).corrections == ()


def test_a_failed_fetch_changes_nothing_and_is_a_mismatch() -> None:
    """No evidence is evidence of nothing: no correction, and a fetch_failed mismatch for the debt."""
    plan = _run(BeliefView({S: 0.5}, {S: 100.0}, {}), Evidence(None, None))
    assert plan.corrections == () and plan.mismatches == (("*", MismatchKind.FETCH_FAILED),)


def test_a_symbol_with_a_decision_executing_is_left_alone() -> None:
    """Its order is moving the position: no conclusion about it this cycle."""
    belief = BeliefView({}, {}, {}, busy=frozenset({S}))
    assert _run(belief, Evidence({S: (0.3, 200.0)}, [])).corrections == ()


_SYMBOLS = [f"S{i}/USDT:USDT" for i in range(6)]


@settings(max_examples=200, deadline=None)
@given(cycles=st.lists(st.lists(st.sampled_from(_SYMBOLS), max_size=6, unique=True), min_size=1, max_size=30),
       gap_s=st.floats(0.1, 120.0))  # fmt: skip
def test_repairs_are_bounded_per_cycle_and_per_symbol(cycles: list[list[str]], gap_s: float) -> None:
    """However many positions keep losing their stops, a cycle repairs at most ``max_repairs`` and a
    symbol is repaired at most once per ``repair_cooldown_s``; the rest is reported as skipped."""
    state = ReconcileState()
    last: dict[str, float] = {}
    now = 0.0
    for unprotected in cycles:
        belief = BeliefView({s: 1.0 for s in unprotected}, {s: 10.0 for s in unprotected}, {})
        plan = _run(belief, Evidence({s: (1.0, 10.0) for s in unprotected}, []), state, int(now * NS))
        repairs = [c for c in plan.corrections if isinstance(c, PlaceStop)]
        assert len(repairs) <= RULES.max_repairs
        for c in repairs:
            assert c.symbol not in last or now - last[c.symbol] >= RULES.repair_cooldown_s
            last[c.symbol] = now
        assert len(repairs) + len(plan.skipped) == len(unprotected)
        now += gap_s
