"""Circuit breakers and entry sizing, with a scripted clock (UTC days from ``T0``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from factories import DAY, HOUR, T0

from brain.risk import Approved, BreakerKind, BreakerRules, CircuitBreakers, Denied, guard_entry, size_entry
from protocol import BeliefMode, Posture


def breakers() -> CircuitBreakers:
    return CircuitBreakers(BreakerRules())


# -- sizing ---------------------------------------------------------------------------------


def test_size_entry_plan_example() -> None:
    """5 % of 10,000 quote at price 100 is 5 units."""
    assert size_entry(10_000, 100, 0.05) == 5


@pytest.mark.parametrize(
    ("price", "lot", "expected"),
    [
        (300.0, 1.0, 1.0),  # 1.67 → 1 lot
        (300.0, 0.5, 1.5),  # 1.67 → 3 lots of 0.5
        (300.0, 0.001, 1.666),
        (100.0, 0.1, 5.0),  # exact multiple of a decimal lot: 5.0 // 0.1 is 49.0 in floats
        (100.0, 0.01, 5.0),
        (100.0, 10.0, 0.0),  # less than one lot
    ],
)
def test_size_entry_rounds_down_to_whole_lots(price: float, lot: float, expected: float) -> None:
    """With a lot size the quantity is rounded down to whole lots, exact multiples kept."""
    assert size_entry(10_000, price, 0.05, lot) == pytest.approx(expected, abs=1e-12)


def test_size_entry_never_negative() -> None:
    """Negative equity sizes to zero."""
    assert size_entry(-500, 100, 0.05) == 0


@pytest.mark.parametrize(("price", "fraction"), [(0.0, 0.05), (-1.0, 0.05), (100.0, 0.0), (100.0, 1.5)])
def test_size_entry_rejects_bad_inputs(price: float, fraction: float) -> None:
    """Non-positive price or a fraction outside (0, 1] raises ValueError."""
    with pytest.raises(ValueError):
        size_entry(10_000, price, fraction)


# -- daily loss -----------------------------------------------------------------------------


def test_daily_loss_trips_at_5_percent_until_next_utc_midnight() -> None:
    """A 5 % fall below the day's first equity blocks entries until the next UTC midnight."""
    b = breakers()
    assert b.on_equity(10_000, T0 + HOUR) is None
    assert b.on_equity(9_501, T0 + 2 * HOUR) is None
    assert isinstance(b.check_entry(T0 + 2 * HOUR), Approved)
    trip = b.on_equity(9_500, T0 + 3 * HOUR)
    assert trip is not None and trip.kind is BreakerKind.DAILY_LOSS
    assert trip.until_ns == T0 + DAY
    verdict = b.check_entry(T0 + DAY - 1)
    assert isinstance(verdict, Denied) and verdict.kind is BreakerKind.DAILY_LOSS
    assert "daily_loss" in verdict.reason
    assert b.on_equity(9_500, T0 + DAY + HOUR) is None  # the new day starts at 9,500
    assert isinstance(b.check_entry(T0 + DAY + HOUR), Approved)


def test_daily_loss_counts_within_one_utc_day_only() -> None:
    """A fall across UTC midnight does not count: the new day starts at its first equity."""
    b = breakers()
    b.on_equity(10_000, T0 + DAY - HOUR)
    assert b.on_equity(9_400, T0 + DAY + HOUR) is None
    assert isinstance(b.check_entry(T0 + DAY + HOUR), Approved)


def test_daily_loss_trips_again_on_a_later_day() -> None:
    """After the reset, a new 5 % daily loss trips the breaker again."""
    b = breakers()
    b.on_equity(10_000, T0)
    assert b.on_equity(9_500, T0 + HOUR) is not None
    b.on_equity(9_500, T0 + DAY)
    trip = b.on_equity(9_000, T0 + DAY + HOUR)
    assert trip is not None and trip.kind is BreakerKind.DAILY_LOSS and trip.until_ns == T0 + 2 * DAY
    assert [t.kind for t in b.trips] == [BreakerKind.DAILY_LOSS, BreakerKind.DAILY_LOSS]


# -- drawdown -------------------------------------------------------------------------------


def test_drawdown_trips_at_20_percent_from_peak_and_latches() -> None:
    """Equity 20 % below its peak blocks entries for the rest of the run, even after recovery."""
    b = breakers()
    # one value per UTC day, each under 5 % below the previous: the daily-loss breaker stays quiet
    for day, equity in enumerate((10_000, 12_000, 11_500, 11_000, 10_500, 10_050, 9_700, 9_601)):
        assert b.on_equity(equity, T0 + day * DAY) is None
    trip = b.on_equity(9_600, T0 + 8 * DAY)
    assert trip is not None and trip.kind is BreakerKind.DRAWDOWN and trip.until_ns is None
    b.on_equity(13_000, T0 + 400 * DAY)
    verdict = b.check_entry(T0 + 400 * DAY)
    assert isinstance(verdict, Denied) and verdict.kind is BreakerKind.DRAWDOWN
    assert "12000.00" in verdict.reason  # names the peak


def test_one_crash_trips_daily_loss_and_drawdown_both() -> None:
    """A single 25 % drop trips both breakers; the drawdown still blocks after the day resets."""
    b = breakers()
    b.on_equity(10_000, T0)
    trip = b.on_equity(7_500, T0 + HOUR)
    assert trip is not None and trip.kind is BreakerKind.DAILY_LOSS
    assert {t.kind for t in b.trips} == {BreakerKind.DAILY_LOSS, BreakerKind.DRAWDOWN}
    b.on_equity(9_000, T0 + DAY + HOUR)  # back within 20 % of the peak, on a new day
    verdict = b.check_entry(T0 + DAY + HOUR)
    assert isinstance(verdict, Denied) and verdict.kind is BreakerKind.DRAWDOWN


# -- losing streak --------------------------------------------------------------------------


def test_five_losing_trades_trip_a_cooldown() -> None:
    """The 5th consecutive loss blocks entries for 24 h; afterwards entries are allowed again."""
    b = breakers()
    for i in range(4):
        assert b.on_trade_closed(-1.0, T0 + i) is None
    assert isinstance(b.check_entry(T0 + 4), Approved)
    trip = b.on_trade_closed(-1.0, T0 + 4)
    assert trip is not None and trip.kind is BreakerKind.LOSING_STREAK and trip.until_ns == T0 + 4 + DAY
    verdict = b.check_entry(T0 + DAY)
    assert isinstance(verdict, Denied) and verdict.kind is BreakerKind.LOSING_STREAK
    assert isinstance(b.check_entry(T0 + 4 + DAY), Approved)


def test_streak_restarts_after_a_trip() -> None:
    """After a streak trips, four more losses are not enough to trip it again."""
    b = breakers()
    for i in range(5):
        b.on_trade_closed(-1.0, T0 + i)
    for i in range(4):
        assert b.on_trade_closed(-1.0, T0 + 2 * DAY + i) is None
    assert isinstance(b.check_entry(T0 + 2 * DAY + 4), Approved)


def test_a_win_resets_the_losing_streak() -> None:
    """Four losses, a win, four losses: no trip; one more loss makes five in a row and trips."""
    b = breakers()
    for pnl in (-1, -1, -1, -1, 2, -1, -1, -1, -1):
        assert b.on_trade_closed(pnl, T0) is None
    assert b.on_trade_closed(-1, T0) is not None


def test_breakeven_trade_is_not_a_loss() -> None:
    """A trade with net P&L exactly 0 resets the streak."""
    b = breakers()
    for pnl in (-1, -1, -1, -1, 0, -1):
        assert b.on_trade_closed(pnl, T0) is None
    assert b.streak == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"daily_loss_pct": 0}, {"max_drawdown_pct": 100}, {"max_consecutive_losses": 0},
     {"losing_streak_cooldown_ns": -1}],  # fmt: skip
)
def test_invalid_breaker_rules_raise(kwargs: dict) -> None:
    """Out-of-range breaker thresholds raise ValueError."""
    with pytest.raises(ValueError):
        BreakerRules(**kwargs)


# -- the executor's posture on an entry (issue #14) ---------------------------------------------


@given(qty=st.floats(1e-6, 1e3), price=st.floats(1.0, 1e6))
def test_a_full_posture_leaves_the_entry_bit_identical(qty: float, price: float) -> None:
    """GREEN (full scale, no cap) must not touch the sized quantity, not even its last ulp: the
    bundled month's trades are byte-identical with and without the posture."""
    assert guard_entry(Posture(mode=BeliefMode.GREEN), qty, price) == qty


@given(qty=st.floats(1e-6, 1e3), price=st.floats(1.0, 1e6), scale_bp=st.integers(0, 10_000),
       cap=st.floats(0.0, 1e6))  # fmt: skip
def test_the_posture_only_narrows_an_entry(qty: float, price: float, scale_bp: int, cap: float) -> None:
    """Scaled and capped, an entry is never larger than asked and never over the notional cap."""
    guarded = guard_entry(Posture(mode=BeliefMode.YELLOW, entry_scale_bp=scale_bp, max_notional=cap), qty, price)
    assert 0.0 <= guarded <= qty
    if cap > 0:
        assert guarded * price <= cap


def test_the_posture_scales_then_rounds_to_the_lot() -> None:
    posture = Posture(mode=BeliefMode.YELLOW, entry_scale_bp=5_000)
    assert guard_entry(posture, 0.37, 100.0, lot_size=0.1) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="price"):
        guard_entry(posture, 1.0, 0.0)
