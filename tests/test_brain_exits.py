"""Exit rules: hard stop-loss, trailing take-profit and time stop, with time passed in."""

from __future__ import annotations

import pytest
from factories import DAY, T0

from brain.exits import DAY_NS, ExitPlan, ExitRules, ExitWatch
from protocol import DecisionReason

RULES = ExitRules()


def watch(entry: float = 100.0, opened_at_ns: int = T0) -> ExitWatch:
    return ExitWatch(ExitPlan.for_entry(RULES, entry, opened_at_ns))


def test_default_plan_levels() -> None:
    """The default plan is stop 8 % below entry, activation 12 % above, 5 % trail, deadline 14 days."""
    plan = ExitPlan.for_entry(RULES, 250.0, T0)
    assert plan.stop_price == pytest.approx(250.0 * 0.92)
    assert plan.activation_price == pytest.approx(250.0 * 1.12)
    assert plan.trail_fraction == pytest.approx(0.05)
    assert plan.deadline_ns == T0 + 14 * DAY
    assert DAY_NS == DAY


def test_stop_loss_fires_at_minus_9_percent() -> None:
    """Entry 100, price 91 (−9 %) → STOP_LOSS."""
    assert watch().evaluate(91.0, T0 + 1) is DecisionReason.STOP_LOSS


def test_stop_loss_quiet_at_minus_7_percent() -> None:
    """Entry 100, price 93 (−7 %, above the 92 stop) → no exit."""
    assert watch().evaluate(93.0, T0 + 1) is None


def test_stop_loss_fires_exactly_at_stop_price() -> None:
    """A price equal to the stop level fires the stop."""
    w = watch()
    assert w.evaluate(w.plan.stop_price, T0 + 1) is DecisionReason.STOP_LOSS


def test_trailing_activates_at_115_and_exits_at_108() -> None:
    """Price 115 (+15 %) activates the trail; 108 after a 115 peak → TRAILING_TAKE_PROFIT."""
    w = watch()
    assert w.evaluate(115.0, T0 + 1) is None
    assert w.peak == 115.0
    assert w.trailing_stop == pytest.approx(115.0 * 0.95)
    assert w.evaluate(110.0, T0 + 2) is None  # above the 109.25 trailing stop
    assert w.evaluate(108.0, T0 + 3) is DecisionReason.TRAILING_TAKE_PROFIT


def test_trailing_not_before_activation() -> None:
    """Below the +12 % activation the trail is off: a rise to 111 then a fall to 100 exits nothing."""
    w = watch()
    for i, price in enumerate((105.0, 111.0, 108.0, 100.0, 95.0)):
        assert w.evaluate(price, T0 + i) is None
    assert w.peak is None and w.trailing_stop is None


def test_trailing_peak_ratchets_up_only() -> None:
    """The peak follows new highs and never falls, so the trailing stop only rises."""
    w = watch()
    w.evaluate(115.0, T0 + 1)
    w.evaluate(120.0, T0 + 2)
    assert w.peak == 120.0
    assert w.evaluate(118.0, T0 + 3) is None
    assert w.peak == 120.0
    assert w.trailing_stop == pytest.approx(114.0)
    assert w.evaluate(114.5, T0 + 4) is None
    assert w.evaluate(113.0, T0 + 5) is DecisionReason.TRAILING_TAKE_PROFIT  # 115-based stop was 109.25


def test_time_stop_fires_after_15_days_not_13() -> None:
    """Default 14-day time stop: quiet at 13 days, fires at 15 days (flat price)."""
    w = watch()
    assert w.evaluate(100.0, T0 + 13 * DAY) is None
    assert w.evaluate(100.0, T0 + 15 * DAY) is DecisionReason.TIME_STOP


def test_time_stop_boundary_is_inclusive() -> None:
    """The time stop fires at exactly opened_at + 14 days, not 1 ns before."""
    w = watch()
    assert w.evaluate(100.0, T0 + 14 * DAY - 1) is None
    assert w.evaluate(100.0, T0 + 14 * DAY) is DecisionReason.TIME_STOP


def test_stop_loss_wins_over_time_stop() -> None:
    """When both fire, the stop-loss is reported (evaluation order)."""
    assert watch().evaluate(91.0, T0 + 15 * DAY) is DecisionReason.STOP_LOSS


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stop_loss_pct": 0.0},
        {"stop_loss_pct": 100.0},
        {"trailing_pct": 0.0},
        {"trailing_pct": 100.0},
        {"trailing_activation_pct": 0.0},
        {"time_stop_ns": 0},
    ],
)
def test_invalid_rules_raise(kwargs: dict) -> None:
    """Out-of-range exit rules raise ValueError on construction."""
    with pytest.raises(ValueError):
        ExitRules(**kwargs)
