"""The live market-data feed: closed bars from an exchange through ccxt.pro, for the brain to trade.

:class:`LiveFeed` owns the I/O around the sans-IO :class:`~brain.livebars.BarAssembler`:

- **warm-up**: before the first decision, the closed history the strategy needs is loaded through
  REST (``fetch_ohlcv``: ``warmup_bars`` closed bars, or every bar since ``since_ms`` for a
  restarted brain that must re-derive its journaled decisions from the same first bar);
- **the stream**: ``watch_ohlcv`` on the exchange's kline stream. ccxt.pro reconnects by itself when
  a watch is called after the server dropped the connection, sometimes without raising: a new
  websocket client object in ``exchange.clients`` tells it happened. Either way the feed counts a
  reconnect, drops what the assembler held unemitted and fetches the missed closed bars through
  REST, in order, before new ones. A watch that raises is retried with capped exponential
  backoff (``reconnect_initial_s`` doubling to ``reconnect_max_s``);
- **the exchange's clock**: when the stream has been silent for ``poll_s``, the feed asks the
  exchange for its time (``fetch_time``) and, once the forming bar's close has passed by it, for
  the REST klines that confirm the bar closed;
- **staleness** (:attr:`LiveFeed.stale`): the stream is down, or the market has moved
  ``stale_after`` intervals past the stream's last update. A bar handed to the brain is *fresh*
  (entries allowed on it) only when the feed is not stale and the bar closed less than
  ``stale_after`` intervals before the market's time; exits are decided on every bar.

The market's time is the newest of: the open time of the newest kline seen (stream or REST) and
the exchange's clock when last asked. Wall time only paces the polling.

Errors: :meth:`LiveFeed.start` raises :class:`FeedError` when the exchange does not list the
instrument or the warm-up history cannot be loaded; afterwards network errors are retried and
counted, never raised.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from foundation.bars import Bar

from .feeds import FeedBar
from .livebars import BarAssembler, ClosedBar, GapRequest

__all__ = ["FeedError", "FeedSettings", "LiveFeed"]

_REST_PAGE = 1000
"""Klines per REST page: Binance spot's maximum (USDⓈ-M allows 1,500), https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints#klinecandlestick-data."""


class FeedError(RuntimeError):
    """The live feed cannot start: an unknown instrument, or no warm-up history."""


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """How the live feed behaves.

    Attributes:
        timeframe: the kline interval in the exchange's words (``1m``, ``5m``, ``4h``).
        timeframe_ms: the same in milliseconds.
        warmup_bars: closed bars loaded before the first decision (the strategy's warm-up).
        stale_after: intervals without the stream before the feed is stale (entries blocked).
        poll_s: stream silence, wall seconds, before the exchange's clock and REST are asked.
        reconnect_initial_s, reconnect_max_s: backoff between failed watches, doubling, capped.
        until_ms: stop after the bar opening at or after this time was handed over (0: never).
    """

    timeframe: str
    timeframe_ms: int
    warmup_bars: int = 200
    stale_after: int = 3
    poll_s: float = 5.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    until_ms: int = 0


@dataclass
class _State:
    connected: bool = False
    down: bool = False  # the stream failed, or dropped, and is not back (before its first try: not down)
    market_ms: int = 0  # the market's time as far as known (newest kline open, exchange clock)
    stream_ms: int = 0  # open time of the newest stream update
    last_stream_wall: float = 0.0
    reconnects: int = 0
    rest_calls: int = 0
    errors: list[str] = field(default_factory=list)


class LiveFeed:
    """Closed bars of ``symbol`` from ``exchange`` (a ccxt.pro exchange, markets not yet loaded); a
    :class:`brain.feeds.Feed`. A bar's journal identity is its open time in timeframes since the epoch.

    Args:
        exchange: the ccxt.pro client (its ``session`` may be a loopback one for a local exchange).
        symbol: the ccxt unified symbol (``BTC/USDT``, ``BTC/USDT:USDT``).
        settings: see :class:`FeedSettings`.
        metrics: the brain's metrics (``feed_*`` series), or ``None``.
        clock: wall clock, seconds (paces polling and backoff only).
        sleep: ``asyncio.sleep`` or a test's.
    """

    pauses_on_silence = False  # the market does not wait for a silent executor: entries are blocked instead

    def __init__(self, exchange: Any, symbol: str, settings: FeedSettings, metrics: Any = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:  # fmt: skip
        self.exchange, self.symbol, self.settings, self.metrics = exchange, symbol, settings, metrics
        self.clock, self.sleep = clock, sleep
        self.log = structlog.get_logger("brain.feed")
        self.assembler = BarAssembler(settings.timeframe_ms)
        self.state = _State()
        self._queue: asyncio.Queue[ClosedBar | None] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: Any = None
        self._done = False
        self._counted = dict.fromkeys(("received", "duplicated", "refused", "bad", "gap_filled"), 0)
        self.first_ms: int | None = None
        """Open time of the first bar loaded (the warm-up's first), once started."""
        self.on_mark: Callable[[Bar], None] | None = None
        """Called with the forming bar after each stream update (the mark price: equity, never a signal)."""

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self, since_ms: int | None = None) -> None:
        """Load the markets and the warm-up history; then follow the stream in the background.

        Args:
            since_ms: load every bar from this open time (a restarted brain re-deriving its
                journaled decisions from its first bar); ``None``: the last ``warmup_bars``.

        Raises:
            FeedError: the exchange does not list ``symbol``, or the history cannot be loaded.
        """
        import ccxt.async_support as ccxt  # the brain loads ccxt only for a live feed

        s = self.settings
        try:
            await self.exchange.load_markets()
        except ccxt.BaseError as exc:
            raise FeedError(f"feed: cannot load {self.exchange.id} markets: {type(exc).__name__}: {exc}") from None
        if self.symbol not in self.exchange.markets:
            raise FeedError(f"instrument: {self.exchange.id} does not list {self.symbol!r}")
        try:
            if since_ms is None:
                rows = await self._rest(None, s.warmup_bars + 1)
            else:
                rows = await self._fetch_range(since_ms, None)
            server_ms = await self._server_time()
        except ccxt.BaseError as exc:
            raise FeedError(f"feed: cannot load the warm-up history: {type(exc).__name__}: {exc}") from None
        if not rows:
            raise FeedError(f"feed: {self.exchange.id} returned no {s.timeframe} klines for {self.symbol}")
        self._observe(rows, server_ms)
        self.state.stream_ms = max(r[0] for r in rows if isinstance(r[0], int))  # until the stream speaks: REST's newest
        first = rows[0][0]
        self.first_ms = first if isinstance(first, int) else None
        self.assembler.on_rest(rows, GapRequest(first, None), warmup=True, server_time_ms=server_ms)
        self.log.info("feed_warmed_up", exchange=self.exchange.id, symbol=self.symbol, timeframe=s.timeframe,
                      bars=len(rows), first_ms=first, last_ms=rows[-1][0], server_ms=server_ms)  # fmt: skip
        await self._emit()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._watch(), name="feed-watch"),
                       loop.create_task(self._monitor(), name="feed-monitor")]  # fmt: skip

    async def next_bar(self) -> FeedBar | None:
        """The next closed bar, in order, with its freshness judged now; ``None`` once the feed
        stopped (``until_ms`` reached, or :meth:`close`)."""
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)  # every later call sees the end too
            return None
        return FeedBar(item, self._fresh(item), item.bar.ts_ms // self.settings.timeframe_ms)

    @property
    def mark(self) -> Bar | None:
        """The newest bar seen, still forming (the mark price), or ``None``."""
        return self.assembler.forming

    @property
    def stale(self) -> bool:
        """The stream is down, or the market moved ``stale_after`` intervals past its last update (or,
        before the stream's first update, past the newest bar REST gave)."""
        st, s = self.state, self.settings
        if st.down:
            return True
        return st.market_ms - st.stream_ms >= s.stale_after * s.timeframe_ms

    async def close(self) -> None:
        """Stop following the stream (the client is the caller's to close)."""
        self._done = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping: nothing to do with it
                pass
        self._tasks = []
        self._queue.put_nowait(None)

    def figures(self) -> dict[str, int]:
        """What the feed saw, for the report: the assembler's counts, reconnects and REST calls."""
        counts = self.assembler.counts
        return {"received": counts.received, "duplicated": counts.duplicated, "refused": counts.refused,
                "bad": counts.bad, "gap_filled": counts.gap_filled, "reconnects": self.state.reconnects,
                "rest_calls": self.state.rest_calls}  # fmt: skip

    # -- the stream ----------------------------------------------------------------------------

    async def _watch(self) -> None:
        import ccxt.async_support as ccxt

        s = self.settings
        backoff = s.reconnect_initial_s
        while not self._done:
            try:
                candles = await self.exchange.watch_ohlcv(self.symbol, s.timeframe)
            except asyncio.CancelledError:
                raise
            except (ccxt.BaseError, OSError) as exc:
                self._disconnected(f"{type(exc).__name__}: {exc}")
                await self.sleep(backoff)
                backoff = min(backoff * 2, s.reconnect_max_s)
                continue
            backoff = s.reconnect_initial_s
            client = self._ws_client()
            if self._client is not None and not _same(client, self._client) and self.state.connected:
                self._disconnected("the exchange closed the stream; ccxt reconnected")  # values in between may be lost
            self._client = client
            if not self.state.connected:
                self.state.connected, self.state.down = True, False
                self._gauge("feed_up", 1)
                self.log.info("feed_connected", reconnects=self.state.reconnects)
            self.state.last_stream_wall = self.clock()
            newest = max((c[0] for c in candles if isinstance(c[0], int)), default=0)
            self.state.stream_ms = max(self.state.stream_ms, newest)
            self.state.market_ms = max(self.state.market_ms, newest)
            for problem in self.assembler.on_stream(candles):
                self.log.warning("feed_bar_refused", reason="bad_data", detail=problem)
            if self.on_mark is not None and (forming := self.assembler.forming) is not None:
                self.on_mark(forming)
            try:
                await self._emit()
            except (ccxt.BaseError, OSError) as exc:  # a gap fill failed: retried on the next update
                self.log.warning("feed_rest_failed", detail=f"{type(exc).__name__}: {exc}")

    def _ws_client(self) -> tuple[Any, ...]:
        """The websocket clients ccxt.pro holds (a new client object after it reconnected); kept
        referenced by the feed, so an identity is never reused by another object."""
        clients = getattr(self.exchange, "clients", None) or {}
        return tuple(clients.values())

    def _disconnected(self, why: str) -> None:
        st = self.state
        st.reconnects += 1
        if self.metrics is not None:
            self.metrics.feed_reconnects.inc()
        if st.connected:
            self.log.warning("feed_disconnected", detail=why, reconnects=st.reconnects)
        st.connected, st.down = False, True
        self._gauge("feed_up", 0)
        self._gauge("feed_stale", 1)
        self.assembler.on_disconnect()

    # -- the exchange's clock ------------------------------------------------------------------

    async def _monitor(self) -> None:
        import ccxt.async_support as ccxt

        s = self.settings
        while not self._done:
            await self.sleep(s.poll_s)
            if self.clock() - self.state.last_stream_wall < s.poll_s and self.state.connected:
                self._gauge("feed_stale", 1 if self.stale else 0)
                continue
            self.assembler.on_silence()  # the stream may have skipped the rest of the forming bar
            try:
                server_ms = await self._server_time()
                self.state.market_ms = max(self.state.market_ms, server_ms)
                forming = self.assembler.forming
                if forming is not None and forming.ts_ms + s.timeframe_ms <= server_ms:
                    async with self._lock:
                        rows = await self._rest(forming.ts_ms, _REST_PAGE)
                        self._observe(rows, server_ms)
                        for problem in self.assembler.on_rest(rows, server_time_ms=server_ms):
                            self.log.warning("feed_bar_refused", reason="bad_data", detail=problem)
                    await self._emit()
            except asyncio.CancelledError:
                raise
            except (ccxt.BaseError, OSError) as exc:
                self.log.warning("feed_rest_failed", detail=f"{type(exc).__name__}: {exc}")
            self._gauge("feed_stale", 1 if self.stale else 0)

    # -- emitting ------------------------------------------------------------------------------

    async def _emit(self) -> None:
        """Fill gaps through REST, then queue every bar now known closed, in order."""
        async with self._lock:
            while (gap := self.assembler.gap()) is not None:
                rows = await self._fetch_range(gap.since_ms, gap.until_ms)
                self._observe(rows, None)
                for problem in self.assembler.on_rest(rows, gap):
                    self.log.warning("feed_bar_refused", reason="bad_data", detail=problem)
                self.log.info("feed_gap_filled", since_ms=gap.since_ms, until_ms=gap.until_ms, bars=len(rows))
            for closed in self.assembler.closed():
                if self._done:
                    return
                self._queue.put_nowait(closed)
                if self.settings.until_ms and closed.bar.ts_ms >= self.settings.until_ms:
                    self._done = True
                    self._queue.put_nowait(None)
                    return
            self._export_counts()

    def _fresh(self, closed: ClosedBar) -> bool:
        s = self.settings
        if self.stale:
            return False
        close_ms = closed.close_ns // 1_000_000
        return self.state.market_ms - close_ms < s.stale_after * s.timeframe_ms

    # -- REST ------------------------------------------------------------------------------------

    async def _rest(self, since_ms: int | None, limit: int) -> list[list[Any]]:
        self.state.rest_calls += 1
        return await self.exchange.fetch_ohlcv(self.symbol, self.settings.timeframe, since=since_ms, limit=limit)

    async def _fetch_range(self, since_ms: int, until_ms: int | None) -> list[list[Any]]:
        """Every kline with ``since_ms <= open < until_ms`` (``None``: to the newest), page by page."""
        out: list[list[Any]] = []
        cursor = since_ms
        while True:
            page = await self._rest(cursor, _REST_PAGE)
            rows = [r for r in page if isinstance(r[0], int) and r[0] >= cursor and (until_ms is None or r[0] < until_ms)]
            out += rows
            if len(page) < _REST_PAGE or not rows or (until_ms is not None and rows[-1][0] + self.settings.timeframe_ms >= until_ms):
                return out
            cursor = rows[-1][0] + self.settings.timeframe_ms

    async def _server_time(self) -> int:
        self.state.rest_calls += 1
        return int(await self.exchange.fetch_time())

    def _observe(self, rows: list[list[Any]], server_ms: int | None) -> None:
        newest = max((r[0] for r in rows if isinstance(r[0], int)), default=0)
        self.state.market_ms = max(self.state.market_ms, newest, server_ms or 0)

    # -- metrics ---------------------------------------------------------------------------------

    def _gauge(self, name: str, value: float) -> None:
        if self.metrics is not None:
            getattr(self.metrics, name).set(value)

    def _export_counts(self) -> None:
        if self.metrics is None:
            return
        counts = self.assembler.counts
        for name in self._counted:
            now = getattr(counts, name)
            if now > self._counted[name]:
                self.metrics.feed_bars.labels(name).inc(now - self._counted[name])
                self._counted[name] = now


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
