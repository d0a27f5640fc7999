"""Live bars, sans-IO: kline updates from the exchange's stream and its REST history in, closed bars
out — each exactly once, in time order, never a forming one, never with values it is not sure of.

The live feed (:mod:`brain.livefeed`) feeds this state machine what ccxt returns and asks it what
to fetch; it holds no socket and no clock of its own (times come in with the calls).

**When a bar is closed.** ccxt's ``watch_ohlcv`` drops Binance's final-kline flag (``k.x``,
ccxt 4.5.90 ``pro/binance.py`` ``handle_ohlcv``), so a forming update and the closed candle look
the same. A bar is therefore closed only when

- an update of a **later** open time arrives on the stream, or
- the exchange's REST klines (``fetch_ohlcv``) list a later bar after it, or its close time has
  passed by the exchange's clock (``server_time_ms``) — how a bar is confirmed closed when the
  stream is silent past its close.

**Whose values.** A bar closed by the stream carries the values of its last update only when that
update can have been the final one: Binance sends a kline's final update just before the first
update of the next kline, so the next update must be for the very next bar, with no disconnect
and no silence of the stream (:meth:`BarAssembler.on_silence`) in between. Otherwise — the stream
jumped bars, went silent or reconnected, or the bar's last values came from a REST row that was
still forming — the bar is *unconfirmed*, and :meth:`BarAssembler.gap` asks for its REST kline
before anything after it is emitted. REST's values of a closed bar always win.

**What is refused.** A candle with a NaN or infinite field, a price <= 0, ``high < low``,
``high`` below the open or close, ``low`` above them, a negative volume, or an open time not on
the timeframe's grid is *bad* (dropped, counted). A stream update for a bar already closed is a
*duplicate* when it repeats the closed values (ignored, counted) and *refused* otherwise (a late,
out-of-order kline: counted, never traded on). None of them can produce a second bar for the
same open time: closed bars are emitted strictly after the last one emitted.

**Gaps.** When the next bar to emit is missing or unconfirmed while a later bar is known,
:meth:`BarAssembler.gap` asks for the REST klines in between; once they arrived, the bars REST
lists are emitted in order and those it does not list are taken as never traded (a venue outage
leaves no bar; nothing is invented, as in a replay of recorded data). After a disconnect, the bars
held but not yet emitted are dropped and fetched again through REST.

Times are Unix milliseconds (the exchange's kline open times); prices in quote currency.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from foundation.bars import Bar

__all__ = ["BarAssembler", "BarSource", "ClosedBar", "FeedCounts", "GapRequest", "check_candle"]


class BarSource(str, enum.Enum):
    """How a bar's closure was learned."""

    STREAM = "stream"  # a later update on the stream
    REST = "rest"  # listed before a later bar by the REST klines (warm-up, gap fill, a silent stream)
    REPLAY = "replay"  # a data file's bar (:class:`brain.feeds.ReplayFeed`)


class ClosedBar(NamedTuple):
    """A bar known closed, with the time it closed (its open plus the timeframe), Unix ns. A
    NamedTuple, as :class:`~foundation.bars.Bar` is: one per replayed bar."""

    bar: Bar
    close_ns: int
    source: BarSource
    gap_filled: bool = False
    """Fetched through REST to fill a gap the stream left (counted in ``bars_gap_filled``)."""


@dataclass(frozen=True, slots=True)
class GapRequest:
    """REST klines wanted: every bar with ``since_ms <= open < until_ms`` (``until_ms`` None: up to
    the newest)."""

    since_ms: int
    until_ms: int | None


@dataclass
class FeedCounts:
    """What the assembler saw, for the feed's metrics (each a running total)."""

    received: int = 0  # stream updates and REST candles taken in
    duplicated: int = 0
    refused: int = 0  # older than the last bar emitted, with other values (late, out of order)
    bad: int = 0  # failed :func:`check_candle`
    gap_filled: int = 0  # bars emitted that came from a REST gap fill


def check_candle(candle: Sequence[float | int | None], timeframe_ms: int) -> Bar | str:
    """A ccxt OHLCV row ``[open_ms, open, high, low, close, volume]`` as a :class:`Bar`, or what is
    wrong with it (one line, for the log).

    Rules: six fields; the open time an integer >= 0 on the timeframe's grid (Binance klines open
    on multiples of the interval); prices finite and > 0; ``low <= min(open, close)``, ``high >=
    max(open, close)`` (so ``high >= low``); volume finite and >= 0 — the rules
    :mod:`foundation.barcsv` applies to recorded bars.
    """
    if len(candle) != 6 or any(x is None for x in candle):
        return f"expected 6 fields, got {list(candle)!r}"
    t, o, h, lo, c, v = candle
    if not isinstance(t, int) or t < 0 or t % timeframe_ms:
        return f"open time {t!r} is not on the {timeframe_ms} ms grid"
    fields = (float(o), float(h), float(lo), float(c), float(v))  # type: ignore[arg-type]
    if not all(math.isfinite(x) for x in fields):
        return f"non-finite value in {list(candle)!r}"
    fo, fh, fl, fc, fv = fields
    if min(fo, fh, fl, fc) <= 0:
        return f"price <= 0 in {list(candle)!r}"
    if fv < 0:
        return f"volume < 0 in {list(candle)!r}"
    if fh < fl or fh < max(fo, fc) or fl > min(fo, fc):
        return f"OHLC out of order (o={fo} h={fh} l={fl} c={fc})"
    return Bar(t, fo, fh, fl, fc, fv)


@dataclass(slots=True)
class _Held:
    """A bar known, not yet emitted: its latest values, how they came, and whether they are final
    (``confirmed``) once the bar is closed."""

    bar: Bar
    source: BarSource
    confirmed: bool
    gap_filled: bool = False


class BarAssembler:
    """Stream and REST candles in; closed bars out, once each and in order (see the module docstring).

    Args:
        timeframe_ms: the bar interval (60,000 for ``1m``).
        after_ms: open time of the last bar already processed (a restart resumes after it), or
            ``None``: the first bar REST or the stream gives is the first emitted.
    """

    def __init__(self, timeframe_ms: int, after_ms: int | None = None) -> None:
        if timeframe_ms <= 0:
            raise ValueError(f"timeframe_ms must be > 0, got {timeframe_ms}")
        self.timeframe_ms = timeframe_ms
        self.last_emitted_ms = after_ms
        self.counts = FeedCounts()
        self._held: dict[int, _Held] = {}
        self._newest: int | None = None  # open time of the newest bar seen (forming unless closed by the clock)
        self._closed_through_ms = 0  # the exchange's clock: a bar closing at or before it is closed
        self._complete: list[tuple[int, int]] = []  # ranges [since, until) REST listed in full, merged
        self._interrupted = False  # the stream went silent since its last update: that update may not be final
        self._emitted_values: Bar | None = None

    @property
    def forming(self) -> Bar | None:
        """The newest bar seen, still forming: the mark price, never a signal."""
        if self._newest is None:
            return None
        held = self._held.get(self._newest)
        return held.bar if held is not None else None

    # -- inputs ------------------------------------------------------------------------------

    def on_stream(self, candles: Iterable[Sequence[float | int | None]]) -> list[str]:
        """Take stream updates (``watch_ohlcv``'s rows, oldest first); returns one line per bad
        candle (for the log; each is also counted)."""
        problems: list[str] = []
        for candle in candles:
            self.counts.received += 1
            bar = check_candle(candle, self.timeframe_ms)
            if isinstance(bar, str):
                self.counts.bad += 1
                problems.append(bar)
                continue
            self._take(bar)
        return problems

    def on_rest(self, candles: Iterable[Sequence[float | int | None]], request: GapRequest | None = None, *,
                warmup: bool = False, server_time_ms: int | None = None) -> list[str]:  # fmt: skip
        """Take REST klines (``fetch_ohlcv``'s rows, oldest first, every page of one request). A row
        with a later row after it, or whose close is at or before ``server_time_ms`` (the
        exchange's clock), is closed, with REST's values; the newest row otherwise is the bar
        forming, its values unconfirmed. ``request``: the range these answer in full — a bar in it
        that REST does not list is taken as never traded; its bars count as gap-filled unless
        ``warmup`` (the history loaded before the first decision). Returns one line per bad
        candle."""
        problems: list[str] = []
        rows: list[Bar] = []
        for candle in candles:
            self.counts.received += 1
            bar = check_candle(candle, self.timeframe_ms)
            if isinstance(bar, str):
                self.counts.bad += 1
                problems.append(bar)
                continue
            rows.append(bar)
        rows.sort(key=lambda b: b.ts_ms)
        if server_time_ms is not None:
            self._closed_through_ms = max(self._closed_through_ms, server_time_ms)
        newest_row = rows[-1].ts_ms if rows else None
        for bar in rows:
            t = bar.ts_ms
            if self._emitted(t):
                continue  # REST repeats what was processed: nothing to count, it is how paging works
            closed = t != newest_row or self._closed_by_clock(t) or (request is not None and request.until_ms is not None)
            held = self._held.get(t)
            if held is not None and held.confirmed and not closed:
                continue  # a final value already held beats a REST row still forming
            filled = request is not None and not warmup
            self._held[t] = _Held(bar, BarSource.REST, confirmed=closed, gap_filled=filled)
            if self._newest is None or t > self._newest:
                self._newest = t
        if request is not None:
            until = request.until_ms if request.until_ms is not None else (newest_row if newest_row is not None else request.since_ms)
            self._add_complete(request.since_ms, until)
        return problems

    def on_silence(self) -> None:
        """The stream has been silent longer than it should be: the last update held may not be
        the final one of its bar (the stream may have skipped the rest), so it must be confirmed."""
        self._interrupted = True

    def on_disconnect(self) -> None:
        """The stream dropped: what is held but not emitted may lack its final values; drop it,
        to be fetched again through REST (:meth:`gap` asks for it)."""
        self._held.clear()
        self._newest = None
        self._complete = []
        self._interrupted = False

    # -- outputs -----------------------------------------------------------------------------

    def closed(self) -> list[ClosedBar]:
        """The bars now known closed and confirmed that come next, in order (each returned once)."""
        out: list[ClosedBar] = []
        while self._held:
            t = min(self._held)
            held = self._held[t]
            if not self._is_closed(t) or not held.confirmed:
                break  # forming, or closed with values to confirm through REST (:meth:`gap`)
            expected = None if self.last_emitted_ms is None else self.last_emitted_ms + self.timeframe_ms
            if expected is not None and t != expected and not self._completes(expected, t):
                break  # bars missing before it: :meth:`gap` asks REST for them first
            del self._held[t]
            if held.gap_filled:
                self.counts.gap_filled += 1
            self.last_emitted_ms = t
            self._emitted_values = held.bar
            out.append(ClosedBar(held.bar, (t + self.timeframe_ms) * 1_000_000, held.source, held.gap_filled))
        return out

    def gap(self) -> GapRequest | None:
        """The REST klines needed before more bars can be emitted, or ``None``."""
        if self._newest is None:
            return None
        expected = self.last_emitted_ms + self.timeframe_ms if self.last_emitted_ms is not None else min(self._held)
        for t in sorted(self._held):
            if t < expected:
                continue
            held = self._held[t]
            if not self._is_closed(t):
                if t > expected and not self._completes(expected, t):
                    return GapRequest(expected, t)  # bars missing before the forming one
                return None
            if t > expected and not self._completes(expected, t):
                return GapRequest(expected, t)
            if not held.confirmed:
                later = [u for u in self._held if u > t]
                return GapRequest(t, min(later) if later else None)
            expected = t + self.timeframe_ms
        return None

    # -- internals ---------------------------------------------------------------------------

    def _emitted(self, t: int) -> bool:
        return self.last_emitted_ms is not None and t <= self.last_emitted_ms

    def _closed_by_clock(self, t: int) -> bool:
        return t + self.timeframe_ms <= self._closed_through_ms

    def _is_closed(self, t: int) -> bool:
        return (self._newest is not None and t < self._newest) or self._closed_by_clock(t)

    def _completes(self, since: int, until: int) -> bool:
        """REST said which bars exist in ``[since, until)`` (those missing never traded)."""
        return any(a <= since and until <= b for a, b in self._complete)

    def _add_complete(self, since: int, until: int) -> None:
        """Remember that REST listed every bar of ``[since, until)``; ranges that touch are merged,
        and those wholly before the last bar emitted are forgotten."""
        spans = sorted([*self._complete, (since, until)])
        merged: list[tuple[int, int]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        floor = self.last_emitted_ms if self.last_emitted_ms is not None else -1
        self._complete = [(a, b) for a, b in merged if b > floor]

    def _take(self, bar: Bar) -> None:
        t = bar.ts_ms
        if self._emitted(t):
            if t == self.last_emitted_ms and bar == self._emitted_values:
                self.counts.duplicated += 1
            else:
                self.counts.refused += 1
            return
        held = self._held.get(t)
        if held is not None and held.confirmed and self._is_closed(t):  # settled by REST already
            self.counts.duplicated += 1 if held.bar == bar else 0
            self.counts.refused += 0 if held.bar == bar else 1
            return
        newest = self._newest
        if newest is not None and t < newest:
            # older than the newest bar: its values are settled (held, or to be fetched through REST)
            if held is not None and held.bar == bar:
                self.counts.duplicated += 1
            else:
                self.counts.refused += 1  # a late, out-of-order update: never traded on
            return
        if newest is not None and t > newest:
            previous = self._held.get(newest)
            if previous is not None and previous.source is BarSource.STREAM:
                # its last update was the final one only if this is the very next bar's first, unbroken
                previous.confirmed = t == newest + self.timeframe_ms and not self._interrupted
        self._held[t] = _Held(bar, BarSource.STREAM, confirmed=False)
        self._newest = t
        self._interrupted = False
