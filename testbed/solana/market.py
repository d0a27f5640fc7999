"""The replayed market behind the swap service: bars and the replay clock (sans-IO).

The clock is moved only by :meth:`ReplayMarket.advance` (the executor's
``POST /_emulator/advance?ts_ms=N`` before each order) and never moves backwards: an earlier
time is ignored, so a retransmitted or recovered decision cannot rewind the market.

Prices follow the replay rule of :mod:`testbed.emulator.engine` and the paper venue (no look-ahead):

* :meth:`ReplayMarket.trade_price` — what a swap trades at now: the open of the first bar whose
  open time >= the clock; None after the last bar.
* :meth:`ReplayMarket.mark_price` — the mark: the close of the last bar whose open time < the
  clock; before any bar, the first bar's open.

Prices are the bars' floats (quote currency per base unit, here USDC per base token).
"""

from __future__ import annotations

import bisect

from foundation.bars import Bars

__all__ = ["ReplayMarket"]


class ReplayMarket:
    """Bars plus the replay clock (Unix ms), starting at the first bar's open time.

    Raises:
        ValueError: ``bars`` is empty.
    """

    def __init__(self, bars: Bars) -> None:
        if len(bars) == 0:
            raise ValueError("the market needs at least one bar")
        self._ts = list(bars.ts_ms)
        self._open = list(bars.open)
        self._close = list(bars.close)
        self.clock_ms = self._ts[0]

    def advance(self, ts_ms: int) -> int:
        """Move the clock to ``ts_ms`` unless that is earlier; returns the clock."""
        self.clock_ms = max(self.clock_ms, ts_ms)
        return self.clock_ms

    def trade_price(self) -> float | None:
        i = bisect.bisect_left(self._ts, self.clock_ms)
        return self._open[i] if i < len(self._ts) else None

    def mark_price(self) -> float:
        i = bisect.bisect_left(self._ts, self.clock_ms)  # bars [0, i) opened before the clock
        return self._close[i - 1] if i > 0 else self._open[0]
