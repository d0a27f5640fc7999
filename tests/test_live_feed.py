"""The live feed through the real ccxt.pro client: the local Binance's kline streams (testbed/emulator/
stream.py) and the brain's LiveFeed (brain/livefeed.py) reading them over TLS on loopback — warm-up,
closed bars only, reconnects, gaps filled through REST, staleness, and capped reconnect backoff."""

from __future__ import annotations

import asyncio
import time

import ccxt.pro as ccxtpro
import pytest

from brain.livebars import BarSource
from brain.livefeed import FeedSettings, LiveFeed
from brain.metrics import BrainMetrics
from foundation.barcsv import bundled_path, load_bars
from foundation.exchange_session import ccxt_config
from testbed.emulator import BinanceEmulator, StreamFault

BARS = load_bars(bundled_path(), limit=160)
FSYM = "BTC/USDT:USDT"
TF = 60_000


def _recorded(i: int) -> list[float | int]:
    return [BARS.ts_ms[i], BARS.open[i], BARS.high[i], BARS.low[i], BARS.close[i], BARS.volume[i]]


def _client(emu: BinanceEmulator) -> ccxtpro.binanceusdm:
    return ccxtpro.binanceusdm(ccxt_config(emu.session(), "", "", "usdm"))


async def test_stream_serves_ccxt_pro_three_updates_a_bar_and_rest_agrees() -> None:
    """Before the first subscription REST shows the history only; then each bar streams as three
    updates, the last one the recorded bar, and REST klines and server time follow the stream."""
    async with BinanceEmulator(BARS, stream={"start": 20, "bars_per_s": 20}) as emu:
        ex = _client(emu)
        try:
            history = await ex.fetch_ohlcv(FSYM, "1m", limit=50)
            assert history == [_recorded(i) for i in range(20)]
            assert await ex.fetch_time() == BARS.ts_ms[20]
            seen: dict[int, list[list[float | int]]] = {}
            while len(seen) < 4:
                for candle in await asyncio.wait_for(ex.watch_ohlcv(FSYM, "1m"), 5):
                    seen.setdefault(candle[0], []).append(list(candle))
            first = BARS.ts_ms[20]
            assert seen[first][0][1:5] == [BARS.open[20]] * 4  # at the open: o = h = l = c
            assert seen[first][-1] == _recorded(20)  # the last update is the recorded bar
            rest = await ex.fetch_ohlcv(FSYM, "1m", since=first, limit=10)
            assert rest[:3] == [_recorded(20), _recorded(21), _recorded(22)]
            assert rest[-1][0] == emu.stream.bars[emu.stream.index].ts_ms  # the bar forming now, last
            assert await ex.fetch_time() >= rest[-1][0]
        finally:
            await ex.close()


async def test_spot_stream_serves_ccxt_pro_binance_too() -> None:
    """The spot stream (``stream.binance.com:9443/ws``) serves ccxt.pro's ``binance`` the same bars."""
    async with BinanceEmulator(BARS, stream={"start": 20, "bars_per_s": 20}) as emu:
        ex = ccxtpro.binance(ccxt_config(emu.session(), "", "", "spot"))
        try:
            last: dict[int, list[float | int]] = {}
            while len(last) < 3:
                for candle in await asyncio.wait_for(ex.watch_ohlcv("BTC/USDT", "1m"), 5):
                    last[candle[0]] = list(candle)
            assert last[BARS.ts_ms[20]] == _recorded(20) and last[BARS.ts_ms[21]] == _recorded(21)
            assert any("/ws" in str(url) for url in ex.clients)
        finally:
            await ex.close()


async def test_stream_faults_as_ccxt_pro_sees_them() -> None:
    """A gap leaves bars out of the stream (REST has them); a disconnect makes ccxt.pro open a
    second connection."""
    faults = [StreamFault("gap", 24, bars=3), StreamFault("disconnect", 30)]
    async with BinanceEmulator(BARS, stream={"start": 20, "bars_per_s": 25, "faults": faults}) as emu:
        ex = _client(emu)
        try:
            streamed: set[int] = set()
            while max(streamed, default=0) < BARS.ts_ms[34]:
                try:
                    for candle in await asyncio.wait_for(ex.watch_ohlcv(FSYM, "1m"), 5):
                        streamed.add(candle[0])
                except ccxtpro.NetworkError:
                    await asyncio.sleep(0.01)
            assert {BARS.ts_ms[i] for i in (24, 25, 26)}.isdisjoint(streamed)
            assert {BARS.ts_ms[i] for i in (23, 27)} <= streamed
            rest = await ex.fetch_ohlcv(FSYM, "1m", since=BARS.ts_ms[24], limit=3)
            assert rest == [_recorded(i) for i in (24, 25, 26)]
            assert emu.stream.connections == 2 and emu.stream.fault_counts["disconnect"] == 1
        finally:
            await ex.close()


async def _collect(feed: LiveFeed) -> list:
    out = []
    while (item := await asyncio.wait_for(feed.next_bar(), 30)) is not None:
        out.append(item)
    return out


async def test_feed_hands_over_every_bar_once_in_order_through_every_fault() -> None:
    """Warm-up history, then every recorded bar closed exactly once, in order, with its recorded
    values — through a disconnect, a gap, a duplicated and a late kline and a short stall — and the
    last bar closed by the exchange's clock and REST."""
    n = 120
    faults = [StreamFault("disconnect", 40), StreamFault("gap", 55, bars=4), StreamFault("duplicate_final", 70),
              StreamFault("late", 80), StreamFault("stall", 95, seconds=0.3)]  # fmt: skip
    bars = BARS.head(n)
    async with BinanceEmulator(bars, stream={"start": 20, "bars_per_s": 40, "faults": faults}) as emu:
        metrics = BrainMetrics()
        feed = LiveFeed(_client(emu), FSYM, FeedSettings("1m", TF, warmup_bars=20, stale_after=40, poll_s=0.05,
                                                         reconnect_initial_s=0.05, until_ms=bars.ts_ms[-1]),
                        metrics)  # fmt: skip
        try:
            await feed.start()
            items = await _collect(feed)
        finally:
            await feed.close()
            await feed.exchange.close()
        got = [[c.closed.bar.ts_ms, c.closed.bar.open, c.closed.bar.high, c.closed.bar.low, c.closed.bar.close,
                c.closed.bar.volume] for c in items]  # fmt: skip
        assert got == [_recorded(i) for i in range(n)]
        assert [c.closed.close_ns for c in items] == [(bars.ts_ms[i] + TF) * 1_000_000 for i in range(n)]
        figures = feed.figures()
        assert figures["reconnects"] >= 1, figures
        # the four bars the gap fault kept off the stream came through REST — by a gap fill, or by the
        # REST poll for a bar the exchange's clock closed when it got there first (CI saw 3 + 1)
        assert all(items[i].closed.source is BarSource.REST for i in range(55, 59)), [c.closed.source for c in items[55:59]]
        assert figures["gap_filled"] == sum(c.closed.gap_filled for c in items) >= 1, figures
        assert all(c.fresh for c in items[25:]), "no stall here was long enough to make the feed stale"
        samples = {s.labels.get("outcome"): s.value for f in metrics.feed_bars.collect() for s in f.samples
                   if s.name.endswith("_total")}  # fmt: skip
        assert samples["gap_filled"] == figures["gap_filled"] and metrics.feed_reconnects._value.get() >= 1


async def test_stall_past_the_threshold_makes_bars_stale_then_fresh_again() -> None:
    """A stream silent for more than feed_stale_after intervals (the exchange's clock moving on):
    the bars closed meanwhile are handed over stale; once the stream is back, fresh again."""
    bars = BARS.head(110)
    faults = [StreamFault("stall", 50, seconds=1.0)]
    async with BinanceEmulator(bars, stream={"start": 20, "bars_per_s": 40, "faults": faults}) as emu:
        feed = LiveFeed(_client(emu), FSYM, FeedSettings("1m", TF, warmup_bars=20, stale_after=5, poll_s=0.05,
                                                         until_ms=bars.ts_ms[-1]))  # fmt: skip
        try:
            await feed.start()
            items = await _collect(feed)
        finally:
            await feed.close()
            await feed.exchange.close()
    assert [c.closed.bar.ts_ms for c in items] == list(bars.ts_ms)
    fresh = [c.fresh for c in items]
    stale_at = [i for i, f in enumerate(fresh) if not f and i >= 20]
    assert stale_at and 50 <= min(stale_at) and max(stale_at) < 105, stale_at  # inside the stall's 40 bars
    assert all(fresh[30:50]) and all(fresh[max(stale_at) + 3 :]), fresh


async def test_unreachable_stream_retries_with_capped_backoff() -> None:
    """A stream that cannot be reached: the feed starts on REST history, stays stale, and retries
    with delays doubling to reconnect_max_s — counted, never raised."""
    async with BinanceEmulator(BARS) as emu:  # REST only: no websocket path, the upgrade gets a 404
        emu.advance_to(BARS.ts_ms[30])  # REST klines show the bars closed by the clock
        delays: list[float] = []

        async def sleep(seconds: float) -> None:
            delays.append(seconds)
            await asyncio.sleep(0.001)

        metrics = BrainMetrics()
        feed = LiveFeed(_client(emu), FSYM, FeedSettings("1m", TF, warmup_bars=10, poll_s=60.0,
                                                         reconnect_initial_s=0.5, reconnect_max_s=4.0),
                        metrics, sleep=sleep)  # fmt: skip
        try:
            await feed.start()
            deadline = time.monotonic() + 20
            while len([d for d in delays if d != 60.0]) < 5 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert feed.stale
        finally:
            await feed.close()
            await feed.exchange.close()
    backoff = [d for d in delays if d != 60.0][:5]
    assert backoff == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert metrics.feed_reconnects._value.get() >= 5 and metrics.feed_up._value.get() == 0


@pytest.mark.parametrize("timeframe", ["1m"])
def test_feed_settings_take_ccxts_timeframe(timeframe: str) -> None:
    """The timeframe in milliseconds comes from ccxt's own parser."""
    from brain.marketclient import timeframe_ms

    assert timeframe_ms(timeframe) == 60_000 and timeframe_ms("4h") == 14_400_000
