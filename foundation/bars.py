"""The market-data model: one OHLCV bar, and columns of them with the bar-close rule and time
look-up. Pure: no file is read here (:mod:`foundation.barcsv` loads CSV files into it).
"""

from __future__ import annotations

import bisect
from array import array
from typing import NamedTuple

__all__ = ["Bar", "Bars"]


class Bar(NamedTuple):
    """One OHLCV bar. ``ts_ms`` is the open time (Unix ms, UTC); prices in quote currency.

    A NamedTuple (immutable, like the frozen dataclass it was): one is built per replayed bar, and
    a NamedTuple is built several times faster than a frozen dataclass, which sets each field
    through ``object.__setattr__`` (issue #17)."""

    ts_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class Bars:
    """Columnar bars (``array`` columns, about 48 bytes per bar) with time look-up.

    Attributes:
        ts_ms, open, high, low, close, volume: parallel columns.
        interval_ms: the most common spacing between consecutive bars (the timeframe).
        source: where the bars came from (a path), for messages.
    """

    __slots__ = ("close", "high", "interval_ms", "low", "open", "source", "ts_ms", "volume")

    def __init__(self, ts_ms: array, o: array, h: array, lo: array, c: array, v: array, source: str) -> None:
        self.ts_ms, self.open, self.high, self.low, self.close, self.volume = ts_ms, o, h, lo, c, v
        self.source = source
        self.interval_ms = _modal_interval(ts_ms)

    def __len__(self) -> int:
        return len(self.ts_ms)

    def __getitem__(self, i: int) -> Bar:
        return Bar(self.ts_ms[i], self.open[i], self.high[i], self.low[i], self.close[i], self.volume[i])

    def close_ns(self, i: int) -> int:
        """Close time of bar ``i`` in Unix ns: its open time plus the timeframe
        (:attr:`interval_ms`), but never later than the next bar's open.

        The cap makes irregular spacing safe: calendar-month bars (28 to 31 days against a
        modal 31), a shortened session, bars resampled with a hole. A decision made at this close
        then fills at the next bar's open — the first open at or after the close — and never skips
        a bar (DESIGN.md invariant 6). A gap after the bar (a weekend, a holiday, an outage) keeps
        the full timeframe: the close is still the bar's own end, and the fill is the next open
        after the gap.
        """
        close_ms = self.ts_ms[i] + self.interval_ms
        if i + 1 < len(self.ts_ms) and self.ts_ms[i + 1] < close_ms:
            close_ms = self.ts_ms[i + 1]
        return close_ms * 1_000_000

    def first_open_at_or_after(self, t_ns: int) -> int | None:
        """Index of the first bar whose open time is at or after ``t_ns``, or ``None``."""
        i = bisect.bisect_left(self.ts_ms, -(-t_ns // 1_000_000))  # ceil to ms
        return i if i < len(self.ts_ms) else None

    def head(self, n: int) -> Bars:
        """The first ``n`` bars (a copy)."""
        cols = (self.ts_ms, self.open, self.high, self.low, self.close, self.volume)
        return Bars(*(col[:n] for col in cols), source=self.source)


def _modal_interval(ts_ms: array) -> int:
    if len(ts_ms) < 2:
        return 60_000
    counts: dict[int, int] = {}
    for a, b in zip(ts_ms, ts_ms[1:]):
        counts[b - a] = counts.get(b - a, 0) + 1
    return max(counts, key=counts.__getitem__)
