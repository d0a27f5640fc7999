"""The local exchange's kline streams: Binance's websocket market streams over the replayed bars,
so the real ccxt.pro client (``watch_ohlcv``) connects unchanged.

Endpoints (ccxt 4.5.90 ``pro/binance.py`` ``urls['api']['ws']``; the hosts resolve to the emulator
through :func:`foundation.exchange_session.loopback_session`, and its certificate names them):

- spot: ``wss://stream.binance.com:9443/ws/<n>``;
- USDⓈ-M: ``wss://fstream.binance.com/market/ws/<n>`` (klines; ``/public/ws/<n>`` is served too).

A client sends ``{"method": "SUBSCRIBE", "params": ["btcusdt@kline_1m"], "id": N}`` and is answered
``{"result": null, "id": N}`` (Binance "Live Subscribing/Unsubscribing to streams"); ``UNSUBSCRIBE``
likewise. Only the bars' native interval is streamed.

**The stream clock.** Streaming starts at bar ``start`` when the first client subscribes (before
that the market stands at that bar's open) and advances ``bars_per_s`` bars per wall second. Each
bar is sent three times: an update at its open (open = high = low = close, volume 0), one a third
in (close half-way from open to the final close, high and low to match, half the volume), and the
final kline (``"x": true``) two thirds in — so a forming update and a final one look alike to
ccxt, which drops ``x``. Event times (``E``) are on this clock; so are the REST klines
(:meth:`KlineStream.rest_bars`: every bar before the current one closed, the current one with the
values of its last update) and ``serverTime`` (:meth:`KlineStream.clock_ms`): the exchange replays
the past and tells the time of the past. After the last bar the clock stands at its close.

**Faults** (:class:`StreamFault`, at a bar index): ``disconnect`` closes every stream connection
after the bar's first update (mid-bar); ``stall`` sends nothing for ``seconds`` of wall time while
the clock goes on (the bars it passes are in REST only); ``gap`` leaves ``bars`` bars out of the
stream (REST has them); ``duplicate_final`` sends the bar's final kline again after the next bar's
first update; ``late`` sends, after the next bar's first update, an update of the bar with a
different close (an out-of-order kline a client must refuse).

The matching engine's clock is separate: it moves only when the executor moves it
(``/_emulator/advance``, the replay clock), so a decision fills at the first open after its market
time at any streaming speed.
"""

from __future__ import annotations

import asyncio
import enum
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from .model import Bar

__all__ = ["STREAM_PATHS", "KlineStream", "StreamFault", "StreamFaultKind", "parse_stream_faults"]

STREAM_PATHS = ("/ws", "/ws/{n}", "/stream", "/market/ws/{n}", "/public/ws/{n}")
"""Websocket paths served (spot ``/ws/<n>``, USDⓈ-M ``/market/ws/<n>`` and ``/public/ws/<n>``)."""

_PHASES = 3  # updates per bar: at the open, a third in, the final one two thirds in
_INTERVAL_NAMES = {60_000: "1m", 180_000: "3m", 300_000: "5m", 900_000: "15m", 1_800_000: "30m",
                   3_600_000: "1h", 7_200_000: "2h", 14_400_000: "4h", 21_600_000: "6h", 28_800_000: "8h",
                   43_200_000: "12h", 86_400_000: "1d"}  # fmt: skip


class StreamFaultKind(str, enum.Enum):
    DISCONNECT = "disconnect"
    STALL = "stall"
    GAP = "gap"
    DUPLICATE_FINAL = "duplicate_final"
    LATE = "late"


@dataclass(frozen=True, slots=True)
class StreamFault:
    """One stream fault at bar ``at_bar`` (an index into the bars); see the module docstring.

    Attributes:
        bars: ``gap``: how many bars are left out (>= 1).
        seconds: ``stall``: wall seconds without a message (> 0).
    """

    kind: StreamFaultKind
    at_bar: int
    bars: int = 1
    seconds: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", StreamFaultKind(self.kind))
        if self.at_bar < 0 or self.bars < 1 or self.seconds < 0:
            raise ValueError(f"bad stream fault {self!r}")
        if self.kind is StreamFaultKind.STALL and self.seconds <= 0:
            raise ValueError("a stall needs seconds > 0")


def parse_stream_faults(text: str) -> list[StreamFault]:
    """``[{"kind": "gap", "at_bar": 300, "bars": 3}, ...]`` (JSON) as faults.

    Raises:
        ValueError: not a JSON list of fault objects, or a field out of range.
    """
    try:
        items = json.loads(text)
        if not isinstance(items, list):
            raise ValueError("expected a JSON list")
        return [StreamFault(**item) for item in items]
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"stream faults: {exc}") from None


class KlineStream:
    """The kline streams of one emulator (see the module docstring).

    Args:
        bars: the replayed bars (every listed symbol trades them), native interval ``interval_ms``.
        symbols: exchange symbol ids listed (``BTCUSDT``).
        start: index of the first bar streamed; the bars before it are history (REST only).
        bars_per_s: streaming speed, bars per wall second (> 0).
        faults: stream faults.
    """

    def __init__(self, bars: list[Bar], symbols: tuple[str, ...], interval_ms: int, start: int = 0,
                 bars_per_s: float = 10.0, faults: list[StreamFault] | None = None) -> None:  # fmt: skip
        if not 0 <= start < len(bars):
            raise ValueError(f"stream start {start} is outside the {len(bars)} bars")
        if bars_per_s <= 0:
            raise ValueError("bars_per_s must be > 0")
        self.bars, self.symbols, self.interval_ms = bars, symbols, interval_ms
        self.interval_name = _INTERVAL_NAMES.get(interval_ms, f"{interval_ms // 60_000}m")
        self.start, self.bars_per_s = start, bars_per_s
        self.faults = list(faults or [])
        self.index = start  # the bar forming now (len(bars): all closed)
        self.phase = -1  # its last update sent (-1: none yet: the market stands at its open)
        self.connections = 0
        self.sent = 0
        self.fault_counts: dict[str, int] = {k.value: 0 for k in StreamFaultKind}
        self._clients: dict[web.WebSocketResponse, set[str]] = {}
        self._task: asyncio.Task[None] | None = None
        self.done = asyncio.Event()

    # -- the clock and REST --------------------------------------------------------------------

    def clock_ms(self) -> int:
        """The stream's market time, Unix ms: the current bar's open plus its elapsed thirds."""
        if self.index >= len(self.bars):
            return self.bars[-1].ts_ms + self.interval_ms
        return self.bars[self.index].ts_ms + max(self.phase, 0) * self.interval_ms // _PHASES

    def rest_bars(self) -> list[Bar]:
        """What REST klines show now: every bar before the current one, and the current one with
        its last update's values (none before its first update)."""
        out = self.bars[: self.index]
        if self.index < len(self.bars) and self.phase >= 0:
            out = [*out, self._update(self.bars[self.index], self.phase)]
        return out

    # -- websocket -----------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """A stream connection: subscriptions in, klines out (see the module docstring)."""
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        self.connections += 1
        self._clients[ws] = set()
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                    method, params, rid = req["method"], req.get("params", []), req.get("id")
                except (ValueError, KeyError, TypeError):
                    await ws.send_json({"error": {"code": 2, "msg": "Invalid request"}})
                    continue
                if method == "SUBSCRIBE":
                    self._clients[ws].update(str(p).lower() for p in params)
                    await ws.send_json({"result": None, "id": rid})
                    self._begin()
                elif method == "UNSUBSCRIBE":
                    self._clients[ws].difference_update(str(p).lower() for p in params)
                    await ws.send_json({"result": None, "id": rid})
                else:
                    await ws.send_json({"result": None, "id": rid})
        finally:
            self._clients.pop(ws, None)
        return ws

    def _begin(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="kline-stream")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for ws in list(self._clients):
            await ws.close()

    # -- the streamer --------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        silent_until = 0.0
        skip_until = -1
        pending: list[tuple[Bar, bool]] = []  # (bar values, final) to send after the next bar's first update
        for i in range(self.start, len(self.bars)):
            bar = self.bars[i]
            for phase in range(_PHASES):
                due = t0 + ((i - self.start) + phase / _PHASES) / self.bars_per_s
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.index, self.phase = i, phase
                for fault in self.faults:
                    if fault.at_bar != i or phase != 0:
                        continue
                    if fault.kind is StreamFaultKind.STALL:
                        silent_until = loop.time() + fault.seconds
                        self.fault_counts[fault.kind.value] += 1
                    elif fault.kind is StreamFaultKind.GAP:
                        skip_until = i + fault.bars - 1
                        self.fault_counts[fault.kind.value] += 1
                quiet = loop.time() < silent_until or i <= skip_until
                if not quiet:
                    await self._publish(self._update(bar, phase), final=phase == _PHASES - 1)
                    if phase == 0 and pending:
                        for values, final in pending:
                            await self._publish(values, final=final)
                        pending.clear()
                if quiet or phase != _PHASES - 1:
                    if phase == 0 and not quiet:
                        await self._fault_after_first(i)
                    continue
                for fault in self.faults:
                    if fault.at_bar != i:
                        continue
                    if fault.kind is StreamFaultKind.DUPLICATE_FINAL:
                        pending.append((bar, True))
                        self.fault_counts[fault.kind.value] += 1
                    elif fault.kind is StreamFaultKind.LATE:
                        late_close = min(max(bar.close * Decimal("1.001"), bar.low), bar.high)
                        if late_close == bar.close:
                            late_close = bar.low if bar.low != bar.close else bar.high
                        pending.append((Bar(bar.ts_ms, bar.open, bar.high, bar.low, late_close, bar.volume), False))
                        self.fault_counts[fault.kind.value] += 1
        self.index, self.phase = len(self.bars), -1
        self.done.set()

    async def _fault_after_first(self, i: int) -> None:
        for fault in self.faults:
            if fault.at_bar == i and fault.kind is StreamFaultKind.DISCONNECT:
                self.fault_counts[fault.kind.value] += 1
                for ws in list(self._clients):
                    await ws.close()

    def _update(self, bar: Bar, phase: int) -> Bar:
        """Bar ``bar`` as its update number ``phase`` shows it (the last one: the final values)."""
        if phase >= _PHASES - 1:
            return bar
        if phase == 0:
            o = bar.open
            return Bar(bar.ts_ms, o, o, o, o, Decimal(0))
        mid = (bar.open + bar.close) / 2
        return Bar(bar.ts_ms, bar.open, max(bar.open, mid), min(bar.open, mid), mid, bar.volume / 2)

    async def _publish(self, values: Bar, *, final: bool) -> None:
        event_ms = self.clock_ms()
        for symbol in self.symbols:
            stream = f"{symbol.lower()}@kline_{self.interval_name}"
            payload: dict[str, Any] | None = None
            for ws, streams in list(self._clients.items()):
                if stream not in streams or ws.closed:
                    continue
                if payload is None:
                    payload = _kline_event(symbol, self.interval_name, self.interval_ms, values, final, event_ms)
                try:
                    await ws.send_json(payload)
                    self.sent += 1
                except (ConnectionError, RuntimeError):
                    self._clients.pop(ws, None)


def _kline_event(symbol: str, interval: str, interval_ms: int, b: Bar, final: bool, event_ms: int) -> dict[str, Any]:
    """A Binance ``kline`` stream event (spot and USDⓈ-M share the shape; Binance "Kline/Candlestick
    Streams")."""
    return {"e": "kline", "E": event_ms, "s": symbol,
            "k": {"t": b.ts_ms, "T": b.ts_ms + interval_ms - 1, "s": symbol, "i": interval, "f": 0, "L": 0,
                  "o": str(b.open), "c": str(b.close), "h": str(b.high), "l": str(b.low), "v": str(b.volume),
                  "n": 0, "x": final, "q": "0", "V": "0", "Q": "0", "B": "0"}}  # fmt: skip
