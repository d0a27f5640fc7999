"""How the replay advances in wall time: an optional bar rate and progress reports.

A paced replay is what ``docker compose up`` runs, so a dashboard has something to watch; a
``tandem paper`` run replays as fast as lockstep allows. Pacing never changes what the replay
decides — the lockstep rules (:mod:`brain.app`) make the trade log the same at any speed.

**Catching up**: bar *i* is due ``i / bars_per_s`` seconds after the start. A replay that falls
more than 1 s behind (it paused while the executor was silent) moves its start instead of
replaying the lost time in a burst.

Times are the event loop's clock (``loop.time()``, seconds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Pacer", "Pacing"]

_CATCH_UP_S = 1.0  # behind by more than this (a pause): restart the schedule instead of bursting


@dataclass(frozen=True, slots=True)
class Pacing:
    """How the replay advances in wall time.

    Attributes:
        bars_per_s: at most this many bars per second (0 = as fast as lockstep allows); a paced
            replay is what ``docker compose up`` runs, so a dashboard has something to watch.
        progress_interval_s: call ``on_progress(bars_done, bars_total)`` at most this often
            (0 = never), and once at the end.
    """

    bars_per_s: float = 0.0
    progress_interval_s: float = 0.0


class Pacer:
    """One replay's schedule under a :class:`Pacing`, on ``loop``'s clock (started when created)."""

    __slots__ = ("_loop", "_next_progress", "_started", "pacing")

    def __init__(self, pacing: Pacing, loop: asyncio.AbstractEventLoop) -> None:
        self.pacing = pacing
        self._loop = loop
        self._started = loop.time()
        self._next_progress = self._started

    async def wait_for(self, i: int) -> None:
        """Sleep until bar ``i`` is due (at once when unpaced); see "catching up" above."""
        pacing, loop = self.pacing, self._loop
        if pacing.bars_per_s > 0:
            due = self._started + i / pacing.bars_per_s
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            elif loop.time() - due > _CATCH_UP_S:  # behind after a pause (executor silent): no burst
                self._started = loop.time() - i / pacing.bars_per_s

    def progress(self, bars_done: int, bars_total: int, report: Callable[[int, int], None]) -> None:
        """``report(bars_done, bars_total)`` if a progress report is due."""
        if self.pacing.progress_interval_s > 0 and self._loop.time() >= self._next_progress:
            report(bars_done, bars_total)
            self._next_progress = self._loop.time() + self.pacing.progress_interval_s

    def finished(self, bars_total: int, report: Callable[[int, int], None]) -> None:
        """The report at the end of the replay (when progress is reported at all)."""
        if self.pacing.progress_interval_s > 0:
            report(bars_total, bars_total)
