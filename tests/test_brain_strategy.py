"""Strategies: the EMA crossover's signals and loading a strategy by dotted path."""

from __future__ import annotations

from typing import Any

import pytest
from factories import bar

from brain.strategy import DEFAULT_STRATEGY, EmaCrossover, StrategyError, load_strategy
from protocol import Side

# fast=2 / slow=4 over a hand-made series; the expected signals were worked out from the EMA
# recurrence (alpha 2/3 and 2/5, seeded with the first close).
SERIES = (10, 10, 10, 10, 12, 13, 14, 9, 7, 7, 11, 12)
SIGNALS = (None, None, None, None, Side.BUY, None, None, Side.SELL, None, None, Side.BUY, None)


def run(strategy: EmaCrossover, closes: tuple[float, ...]) -> list[Side | None]:
    return [strategy.on_bar(bar(c)) for c in closes]


def test_ema_crossover_buys_on_up_cross_and_sells_on_down_cross() -> None:
    """Fast EMA crossing above the slow one → BUY; crossing below → SELL; otherwise nothing."""
    assert run(EmaCrossover(2, 4), SERIES) == list(SIGNALS)


def test_no_signal_during_warm_up() -> None:
    """Before ``slow`` bars have been seen there is no signal, even through wild crosses."""
    assert run(EmaCrossover(2, 4), (10, 20, 5, 30)) == [None] * 4
    assert run(EmaCrossover(3, 10), (10, 20, 5, 30, 1, 40, 2, 50, 1)) == [None] * 9


def test_no_repeat_signal_while_the_trend_holds() -> None:
    """A steady rise after the first cross gives one BUY, not one per bar."""
    signals = run(EmaCrossover(2, 4), (10, 10, 10, 10, *range(11, 30)))
    assert signals.count(Side.BUY) == 1 and Side.SELL not in signals


def test_default_periods_are_50_200() -> None:
    """The default crossover is the classic 50/200."""
    s = EmaCrossover()
    assert (s.fast, s.slow) == (50, 200)


@pytest.mark.parametrize(("fast", "slow"), [(0, 5), (-1, 5), (5, 5), (6, 5), (1.5, 4), ("2", 4), (2, 4.0)])
def test_invalid_periods_raise_strategy_error(fast: Any, slow: Any) -> None:
    """Periods must be integers with 1 <= fast < slow."""
    with pytest.raises(StrategyError, match="1 <= fast < slow"):
        EmaCrossover(fast, slow)


def test_load_strategy_by_dotted_path_with_params() -> None:
    """``module:Class`` with keyword params builds the strategy."""
    s = load_strategy("brain.strategy:EmaCrossover", {"fast": 2, "slow": 4})
    assert isinstance(s, EmaCrossover) and (s.fast, s.slow) == (2, 4)
    assert run(s, SERIES) == list(SIGNALS)


def test_load_default_strategy() -> None:
    """The default strategy path loads with no params."""
    assert isinstance(load_strategy(DEFAULT_STRATEGY), EmaCrossover)


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("brain.strategy.EmaCrossover", None, "must look like 'package.module:ClassName'"),
        ("brain.strategy:", None, "must look like"),
        (":EmaCrossover", None, "must look like"),
        ("no_such_package.strategies:Thing", None, "No module named 'no_such_package'"),
        (".strategy:EmaCrossover", None, "cannot load strategy '.strategy:EmaCrossover'"),
        ("brain.strategy:NoSuchStrategy", None, "NoSuchStrategy"),
        ("brain.strategy:EmaCrossover", {"speed": 3}, "bad parameters for strategy"),
        ("brain.strategy:EmaCrossover", {"fast": 300, "slow": 200}, "got 300, 200"),
        ("collections:OrderedDict", None, "has no on_bar(bar) method"),
    ],
)
def test_load_strategy_errors_are_clear(path: str, params: dict | None, message: str) -> None:
    """Bad paths, missing modules or attributes, bad params and non-strategies raise StrategyError."""
    with pytest.raises(StrategyError) as info:
        load_strategy(path, params)
    assert message in str(info.value)
