"""Recorded OHLCV bars: loading, validation and time look-up.

File format (the one ``../shared/data`` uses): a CSV with the exact header
``timestamp_ms,open,high,low,close,volume``; ``timestamp_ms`` is the bar's **open** time in Unix
milliseconds (UTC), strictly increasing; prices > 0 with ``low <= min(open, close)`` and
``high >= max(open, close)``; volume >= 0. Missing bars stay missing: nothing is filled in.

A file that breaks any rule raises :class:`MarketDataError` naming the file, the 1-based line and
the rule, and no bars are returned.
"""

from __future__ import annotations

import bisect
import csv
import math
from array import array
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["BUNDLED_BARS", "HEADER", "Bar", "Bars", "MarketDataError", "bundled_path", "load_bars"]

HEADER = ("timestamp_ms", "open", "high", "low", "close", "volume")
BUNDLED_BARS = "ftx_BTC-PERP_1m.csv"
"""Bundled default: FTX BTC-PERP 1-minute bars, 2021-12-31 23:01 → 2022-02-01 05:31 UTC, 45,031
rows, from nautechsystems/nautilus_trader (LGPL-3.0); see ``tandem/data/NOTICE``."""


class MarketDataError(ValueError):
    """A market-data file is missing or malformed; the message names file and line."""


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar. ``ts_ms`` is the open time (Unix ms, UTC); prices in quote currency."""

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


def bundled_path() -> Path:
    """Path of the bundled default bar file inside the installed package."""
    return Path(str(resources.files("tandem") / "data" / BUNDLED_BARS))


def load_bars(path: str | Path, limit: int | None = None) -> Bars:
    """Load and validate an OHLCV CSV.

    Args:
        path: the CSV file.
        limit: keep only the first ``limit`` bars (the whole file is still not read past them).

    Returns:
        The bars, in file order.

    Raises:
        MarketDataError: missing file, wrong header, wrong column count, unparsable or
            non-finite number, a timestamp that is negative or whose time in ns (the last bar's
            close too) does not fit in an unsigned 64-bit integer, non-increasing timestamp, or an
            OHLC/volume rule broken; the message is ``"<path>:<line>: <what>"``.
    """
    p = Path(path)
    cols = [array("q"), array("d"), array("d"), array("d"), array("d"), array("d")]
    ts, o, h, lo, c, v = cols
    try:
        fh = p.open(newline="", encoding="ascii")
    except OSError as exc:
        raise MarketDataError(f"{p}: cannot open market data file: {exc.strerror}") from None
    with fh:
        try:
            rows = csv.reader(fh)
            header = next(rows, None)
            if header is None or tuple(f.strip() for f in header) != HEADER:
                raise MarketDataError(f"{p}:1: header must be {','.join(HEADER)}, got {header!r}")
            last, last_line = -1, 1
            for lineno, row in enumerate(rows, start=2):
                if limit is not None and len(ts) >= limit:
                    break
                if len(row) != 6:
                    raise MarketDataError(f"{p}:{lineno}: expected 6 fields, got {len(row)}")
                try:
                    t = int(row[0])
                    fo, fh_, fl, fc, fv = (float(x) for x in row[1:])
                except ValueError as exc:
                    raise MarketDataError(f"{p}:{lineno}: not a number: {exc}") from None
                _check_row(p, lineno, t, last, fo, fh_, fl, fc, fv)
                last, last_line = t, lineno
                ts.append(t), o.append(fo), h.append(fh_), lo.append(fl), c.append(fc), v.append(fv)
        except UnicodeDecodeError as exc:
            raise MarketDataError(f"{p}: not an ASCII CSV file: {exc.reason} at byte {exc.start}") from None
        except csv.Error as exc:
            raise MarketDataError(f"{p}: CSV error: {exc}") from None
    if not ts:
        raise MarketDataError(f"{p}: no bars after the header")
    bars = Bars(*cols, source=str(p))
    if (ts[-1] + bars.interval_ms) * 1_000_000 > _U64_MAX:  # the last bar's close, in ns
        raise MarketDataError(f"{p}:{last_line}: timestamp_ms {ts[-1]} plus one bar ({bars.interval_ms} ms) is past"
                              f" the last time a u64 of ns can hold ({_U64_MAX // 1_000_000} ms)")  # fmt: skip
    return bars


_U64_MAX = (1 << 64) - 1
_MAX_TS_MS = _U64_MAX // 1_000_000
"""Latest bar open time, Unix ms: times travel as u64 Unix ns (``market_ts_ns``), so a bar's time
in ns must fit in 64 bits (2554-07-21 UTC); the array column itself is a signed 64-bit ``q``."""


def _check_row(p: Path, lineno: int, t: int, last: int, o: float, h: float, lo: float, c: float, v: float) -> None:
    if not 0 <= t <= _MAX_TS_MS:
        raise MarketDataError(f"{p}:{lineno}: timestamp_ms {t} is out of range: 0..{_MAX_TS_MS} (its time in ns"
                              " must fit in an unsigned 64-bit integer)")  # fmt: skip
    if t <= last:
        raise MarketDataError(f"{p}:{lineno}: timestamp_ms {t} does not increase (previous {last})")
    if not all(math.isfinite(x) for x in (o, h, lo, c, v)):
        raise MarketDataError(f"{p}:{lineno}: non-finite value")
    if min(o, h, lo, c) <= 0:
        raise MarketDataError(f"{p}:{lineno}: prices must be > 0")
    if v < 0:
        raise MarketDataError(f"{p}:{lineno}: volume must be >= 0")
    if h < max(o, c) or lo > min(o, c) or lo > h:
        raise MarketDataError(f"{p}:{lineno}: OHLC out of order (o={o} h={h} l={lo} c={c})")
