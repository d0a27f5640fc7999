"""A strategy for tests run as real processes: signals on given bar numbers.

``tandem paper --strategy scripted_strategy:ScriptedSignals --strategy-params '{"buys": [0]}'``
with ``tests/`` on ``PYTHONPATH`` (the brain child imports it by name).
"""

from __future__ import annotations

from foundation.bars import Bar
from protocol import Side


class ScriptedSignals:
    """BUY on the bars numbered in ``buys``, SELL on those in ``sells`` (0-based count of bars seen).

    Args:
        buys, sells: bar numbers.
        warmup_bars: what the strategy claims it needs before its first signal (for the warm-up
            warning); 0 by default.
    """

    def __init__(self, buys: list[int] | None = None, sells: list[int] | None = None, warmup_bars: int = 0) -> None:
        self.buys, self.sells = set(buys or ()), set(sells or ())
        self.warmup_bars = warmup_bars
        self._n = 0

    def on_bar(self, bar: Bar) -> Side | None:
        n, self._n = self._n, self._n + 1
        if n in self.buys:
            return Side.BUY
        if n in self.sells:
            return Side.SELL
        return None
