"""Strategies: turn bars into buy/sell signals; the brain decides what to do with them.

A strategy is any object with ``on_bar(bar) -> Side | None``, called once per bar in time order
(it must keep its own indicator state). It says nothing about size, exits or risk: those belong
to the brain's core. Load one by dotted path with :func:`load_strategy`.

A strategy may say how many bars it needs before its first possible signal with a
``warmup_bars`` attribute (an int); data no longer than that can trade nothing, and
:func:`warmup_shortfall` turns it into a warning with the numbers.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from foundation.bars import Bar
from protocol import Side

__all__ = ["DEFAULT_STRATEGY", "EmaCrossover", "Strategy", "StrategyError", "load_strategy", "warmup_shortfall"]

DEFAULT_STRATEGY = "brain.strategy:EmaCrossover"


class StrategyError(ValueError):
    """A strategy path cannot be imported or its parameters are invalid."""


class Strategy(Protocol):
    def on_bar(self, bar: Bar) -> Side | None:
        """Return ``Side.BUY`` to enter, ``Side.SELL`` to exit, or ``None``."""
        ...


class EmaCrossover:
    """Moving-average crossover on closes: buy when the fast EMA crosses above the slow one,
    sell when it crosses below.

    Defaults are the classic 50/200 "golden cross / death cross" periods (J. J. Murphy,
    *Technical Analysis of the Financial Markets*, 1999, ch. 9), applied here to the bar
    timeframe of the feed. EMA smoothing ``alpha = 2 / (n + 1)``, seeded with the first close.
    No signal until ``slow`` bars have been seen (warm-up).

    Args:
        fast: fast EMA period in bars (>= 1).
        slow: slow EMA period in bars (> fast).

    Raises:
        StrategyError: invalid periods.
    """

    __slots__ = ("_a_fast", "_a_slow", "_above", "_fast", "_n", "_slow", "fast", "slow")

    def __init__(self, fast: int = 50, slow: int = 200) -> None:
        if not (isinstance(fast, int) and isinstance(slow, int) and 1 <= fast < slow):
            raise StrategyError(f"EmaCrossover needs integer periods 1 <= fast < slow, got {fast}, {slow}")
        self.fast, self.slow = fast, slow
        self._a_fast, self._a_slow = 2.0 / (fast + 1), 2.0 / (slow + 1)
        self._fast = self._slow = 0.0
        self._n = 0
        self._above: bool | None = None

    @property
    def warmup_bars(self) -> int:
        """Bars seen before the first possible signal: ``slow`` (the first crossover can be seen
        on bar ``slow + 1``)."""
        return self.slow

    def on_bar(self, bar: Bar) -> Side | None:
        close = bar.close
        if self._n == 0:
            self._fast = self._slow = close
        else:
            self._fast += self._a_fast * (close - self._fast)
            self._slow += self._a_slow * (close - self._slow)
        self._n += 1
        if self._n < self.slow:
            return None
        above = self._fast > self._slow
        previous, self._above = self._above, above
        if previous is None or previous == above:
            return None
        return Side.BUY if above else Side.SELL


def load_strategy(path: str, params: dict[str, Any] | None = None) -> Strategy:
    """Instantiate a strategy class from ``"package.module:ClassName"`` with keyword ``params``.

    The module is user code: whatever its import or the class's constructor raises (a syntax
    error, an exception, ``sys.exit``) is turned into one :class:`StrategyError` naming the path.

    Raises:
        StrategyError: bad path, import failure, missing attribute, an attribute that is not a
            class, bad parameters, a constructor that raised, or an object without an ``on_bar``
            method.
    """
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise StrategyError(f"strategy must look like 'package.module:ClassName', got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - user code: any failure is a bad setting
        raise StrategyError(f"cannot load strategy {path!r}: importing {module_name!r} raised {_describe(exc)}") from None
    factory = getattr(module, attr, None)
    if factory is None:
        raise StrategyError(f"cannot load strategy {path!r}: module {module_name!r} has no attribute {attr!r}")
    if not isinstance(factory, type):
        raise StrategyError(f"strategy {path!r} is a {type(factory).__name__}, not a class")
    try:
        strategy = factory(**(params or {}))
    except StrategyError:
        raise
    except TypeError as exc:
        raise StrategyError(f"bad parameters for strategy {path!r}: {exc}") from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - user code, as above
        raise StrategyError(f"strategy {path!r} refused its parameters: {_describe(exc)}") from None
    if not callable(getattr(strategy, "on_bar", None)):
        raise StrategyError(f"strategy {path!r} has no on_bar(bar) method")
    return strategy


def _describe(exc: BaseException) -> str:
    """``ExcType: message`` on one line (a SyntaxError also names its file and line)."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({exc.filename}:{exc.lineno})"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def warmup_shortfall(strategy: Strategy, path: str, bars: int) -> str | None:
    """A warning when ``bars`` bars are too few for ``strategy`` (loaded from ``path``) to signal
    at all — its ``warmup_bars`` is ``bars`` or more — else ``None`` (also when the strategy does
    not say how many it needs)."""
    need = getattr(strategy, "warmup_bars", None)
    if not isinstance(need, int) or bars > need:
        return None
    return (f"the data has {bars} bars but strategy {path} needs {need} bars of warm-up before its first signal"
            f" ({need + 1} or more to trade at all): no trade is possible")
