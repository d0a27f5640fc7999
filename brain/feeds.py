"""The brain's market-data feeds behind one interface: closed bars in order, each with whether
entries may be decided on it and its identity in the journal.

- :class:`ReplayFeed`: a data file's bars (:class:`~foundation.bars.Bars`), paced in wall time
  (:mod:`brain.pacing`); every bar fresh; a bar's identity is its index in the file; while the
  executor is silent the replay waits (``pauses_on_silence``), so the result does not depend on
  timing.
- :class:`~brain.livefeed.LiveFeed`: the exchange's kline stream through ccxt.pro; a bar's
  identity is its open time in timeframes since the epoch (stable across restarts); the market
  does not wait for a silent executor, whose silence blocks entries instead.

:meth:`brain.app.BrainApp.run_feed` takes either and runs the same step on every bar, which is what
makes a live session trade what a replay of the same bars trades.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from foundation.bars import Bars

from .livebars import BarSource, ClosedBar
from .pacing import Pacer, Pacing

__all__ = ["Feed", "FeedBar", "ReplayFeed"]


@dataclass(frozen=True, slots=True)
class FeedBar:
    """A closed bar for the brain.

    Attributes:
        closed: the bar and its close time (Unix ns).
        fresh: entries may be decided on it (a live feed's verdict; always True in a replay).
        index: its identity in the journal (restart matching).
    """

    closed: ClosedBar
    fresh: bool
    index: int


class Feed(Protocol):
    """What :meth:`brain.app.BrainApp.run_feed` reads."""

    pauses_on_silence: bool
    """Wait for a silent executor before the next bar (a replay), instead of only blocking entries."""

    async def next_bar(self) -> FeedBar | None:
        """The next closed bar, or ``None`` at the end."""
        ...

    def figures(self) -> dict[str, int] | None:
        """What the feed saw, for the report (``None``: nothing to say)."""
        ...


class ReplayFeed:
    """The bars of a data file, in order, at the pace of ``pacing``.

    Args:
        bars: the recorded bars; a bar closes at :meth:`~foundation.bars.Bars.close_ns`.
        pacing: wall-time pace and progress reports.
        on_progress: ``on_progress(bars_done, bars_total)`` (see :class:`~brain.pacing.Pacing`).
    """

    pauses_on_silence = True

    def __init__(self, bars: Bars, pacing: Pacing, on_progress: Callable[[int, int], None]) -> None:
        self.bars, self.on_progress = bars, on_progress
        self._pacer = Pacer(pacing, asyncio.get_running_loop())
        self._next = 0

    async def next_bar(self) -> FeedBar | None:
        i, n = self._next, len(self.bars)
        if i >= n:
            if i == n:
                self._pacer.finished(n, self.on_progress)
                self._next += 1
            return None
        await self._pacer.wait_for(i)
        self._pacer.progress(i, n, self.on_progress)
        self._next += 1
        return FeedBar(ClosedBar(self.bars[i], self.bars.close_ns(i), BarSource.REPLAY), True, i)

    def figures(self) -> None:
        return None
