"""The brain's market-data feeds behind one interface: closed bars in order, each with whether
entries may be decided on it and its identity in the journal.

- :class:`ReplayFeed`: a data file's bars (:class:`~foundation.bars.Bars`), paced in wall time
  (:mod:`brain.pacing`); every bar fresh; a bar's identity is its index in the file; while the
  executor is silent the replay waits (``pauses_on_silence``), so the result does not depend on
  timing.
- :class:`PortfolioFeed`: several instruments' data files merged by bar close time (issue #16); each
  item is one close time with every instrument's bar closing then (:attr:`FeedBar.group`); its
  identity is the close time's index in the merged order.
- :class:`~brain.livefeed.LiveFeed`: the exchange's kline stream through ccxt.pro; a bar's
  identity is its open time in timeframes since the epoch (stable across restarts); the market
  does not wait for a silent executor, whose silence blocks entries instead.

:meth:`brain.app.BrainApp.run_feed` takes either and runs the same step on every bar, which is what
makes a live session trade what a replay of the same bars trades.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from foundation.bars import Bar, Bars
from protocol import Instrument

from .livebars import BarSource, ClosedBar
from .pacing import Pacer, Pacing

__all__ = ["Feed", "FeedBar", "PortfolioFeed", "ReplayFeed"]


class FeedBar(NamedTuple):
    """A closed bar for the brain (a NamedTuple, as :class:`~foundation.bars.Bar` is: one per bar).

    Attributes:
        closed: the bar and its close time (Unix ns).
        fresh: entries may be decided on it (a live feed's verdict; always True in a replay).
        index: its identity in the journal (restart matching).
        group: a portfolio's close time: every instrument's bar closing at ``closed.close_ns``, in
            the configured order (``closed`` is the first of them); empty for one instrument.
    """

    closed: ClosedBar
    fresh: bool
    index: int
    group: tuple[tuple[Instrument, Bar], ...] = ()


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


class _RecordedFeed:
    """What both replays share: items ``0 .. len - 1`` at the pace of ``pacing``, every one fresh, its
    index its identity in the journal; a subclass says how many there are and what item ``i`` is."""

    pauses_on_silence = True

    def __init__(self, pacing: Pacing, on_progress: Callable[[int, int], None]) -> None:
        self.on_progress = on_progress
        self._pacer = Pacer(pacing, asyncio.get_running_loop())
        self._next = 0

    def __len__(self) -> int:
        raise NotImplementedError

    def _item(self, i: int) -> FeedBar:
        raise NotImplementedError

    async def next_bar(self) -> FeedBar | None:
        i, n = self._next, len(self)
        if i >= n:
            if i == n:
                self._pacer.finished(n, self.on_progress)
                self._next += 1
            return None
        await self._pacer.wait_for(i)
        self._pacer.progress(i, n, self.on_progress)
        self._next += 1
        return self._item(i)

    def figures(self) -> None:
        return None


class ReplayFeed(_RecordedFeed):
    """The bars of a data file, in order, at the pace of ``pacing``.

    Args:
        bars: the recorded bars; a bar closes at :meth:`~foundation.bars.Bars.close_ns`.
        pacing: wall-time pace and progress reports.
        on_progress: ``on_progress(bars_done, bars_total)`` (see :class:`~brain.pacing.Pacing`).
    """

    def __init__(self, bars: Bars, pacing: Pacing, on_progress: Callable[[int, int], None]) -> None:
        super().__init__(pacing, on_progress)
        self.bars = bars

    def __len__(self) -> int:
        return len(self.bars)

    def _item(self, i: int) -> FeedBar:
        return FeedBar(ClosedBar(self.bars[i], self.bars.close_ns(i), BarSource.REPLAY), True, i)


class PortfolioFeed(_RecordedFeed):
    """Several instruments' recorded bars merged by close time, at the pace of ``pacing`` (one step
    per close time).

    Instruments whose bars close at the same time come in one :class:`FeedBar` (its ``group``), in
    the order of ``markets``; an instrument with no bar at a close time is absent from that group.

    Args:
        markets: ``(instrument, bars)`` of each instrument, the configured one first.
        pacing: wall-time pace and progress reports (counted in close times).
        on_progress: ``on_progress(done, total)`` (see :class:`~brain.pacing.Pacing`).

    Raises:
        ValueError: no markets.
    """

    def __init__(self, markets: Sequence[tuple[Instrument, Bars]], pacing: Pacing,
                 on_progress: Callable[[int, int], None]) -> None:  # fmt: skip
        if not markets:
            raise ValueError("a portfolio feed needs at least one market")
        super().__init__(pacing, on_progress)
        by_close: dict[int, list[tuple[Instrument, Bar]]] = {}
        for inst, bars in markets:
            for i in range(len(bars)):
                by_close.setdefault(bars.close_ns(i), []).append((inst, bars[i]))
        self.groups = [(close_ns, tuple(by_close[close_ns])) for close_ns in sorted(by_close)]

    def __len__(self) -> int:
        return len(self.groups)

    def _item(self, i: int) -> FeedBar:
        close_ns, group = self.groups[i]
        return FeedBar(ClosedBar(group[0][1], close_ns, BarSource.REPLAY), True, i, group)
