"""Market-data endpoints (unsigned): exchangeInfo, server time, tickers and klines.

Served for both venues (``/api/v3/...`` spot, ``/fapi/v1/...`` USDⓈ-M); the route table is
:mod:`.server`'s. ``serverTime`` is the wall clock; tickers and klines follow the replay clock:
they show only bars fully closed at ``clock_ms`` (:meth:`~.engine.Engine.closed_bars`), and the
price is the mark (the last replayed close). With kline streams (:mod:`.stream`), ``serverTime``
and the klines follow the stream's clock instead: the bars it has closed, and the one forming with
the values of its last update (:meth:`~.stream.KlineStream.rest_bars`).

Klines: the intervals Binance names (``1m`` … ``1d``, :data:`INTERVALS`) that are a multiple of
the bars' native interval; coarser ones are merged from native bars (open of the first, high/low
over the group, close of the last, volumes summed) and a group still open at the clock is left
out. ``limit`` defaults to 500, at most 1000 (spot) / 1500 (USDⓈ-M); with ``startTime`` the first
``limit`` bars from it are returned, else the last ``limit``. Another interval: -1120.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from . import payloads as P
from .engine import Engine
from .errors import E
from .model import Bar, Venue
from .params import Ctx, param_int, param_req, symbol
from .stream import KlineStream

__all__ = ["INTERVALS", "MarketData"]

INTERVALS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
             "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000,
             "1d": 86_400_000}
"""Kline interval name → milliseconds."""


class MarketData:
    """The market-data handlers.

    Args:
        engine: the exchange state.
        spot_info / usdm_info: exchangeInfo bodies to serve (already filtered to the engine's symbols).
        wall_ms: wall clock in Unix ms (``serverTime``).
    """

    def __init__(self, engine: Engine, spot_info: dict, usdm_info: dict, wall_ms: Callable[[], int]) -> None:
        self.engine, self.spot_info, self.usdm_info, self.wall_ms = engine, spot_info, usdm_info, wall_ms
        self.stream: KlineStream | None = None
        """Set when the emulator streams klines: REST klines and ``serverTime`` follow its clock."""

    def server_time(self, c: Ctx) -> dict:
        return {"serverTime": self.stream.clock_ms() if self.stream is not None else self.wall_ms()}

    def exchange_info(self, c: Ctx) -> dict:
        info = self.spot_info if c.venue is Venue.SPOT else self.usdm_info
        return info | {"serverTime": self.wall_ms()}

    def ticker_24hr(self, c: Ctx) -> dict:
        sym = symbol(self.engine, c)
        e = self.engine
        return P.ticker_24hr(sym, e.closed_bars(), e.mark_price(), e.clock_ms, c.venue is Venue.USDM)

    def ticker_price(self, c: Ctx) -> dict:
        return P.ticker_price(symbol(self.engine, c), self.engine.mark_price(), self.engine.clock_ms,
                              c.venue is Venue.USDM)  # fmt: skip

    def klines(self, c: Ctx) -> list:
        symbol(self.engine, c)
        interval = INTERVALS.get(param_req(c.params, "interval"))
        stream = self.stream
        bars = self.engine.closed_bars() if stream is None else stream.rest_bars()
        clock_ms = self.engine.clock_ms if stream is None else stream.clock_ms()
        native = self.engine._ts[1] - self.engine._ts[0] if len(self.engine._ts) > 1 else 60_000
        if interval is None or interval % native:
            raise E.invalid_interval()
        if interval != native:
            if stream is not None and stream.index < len(stream.bars):
                bars = bars[: stream.index]  # merged groups: closed bars only
            bars = _aggregate(bars, interval, clock_ms)
        start, end = param_int(c.params, "startTime"), param_int(c.params, "endTime")
        limit = min(param_int(c.params, "limit") or 500, 1000 if c.venue is Venue.SPOT else 1500)
        bars = [b for b in bars if (start is None or b.ts_ms >= start) and (end is None or b.ts_ms <= end)]
        bars = bars[:limit] if start is not None else bars[-limit:]
        return [P.kline(b, interval) for b in bars]


def _aggregate(bars: list[Bar], interval: int, clock_ms: int) -> list[Bar]:
    """Native bars merged into ``interval`` bars; a group still open at the clock is left out."""
    out: list[Bar] = []
    group: list[Bar] = []
    for b in bars:
        if group and b.ts_ms // interval != group[0].ts_ms // interval:
            out.append(_merge(group, interval))
            group = []
        group.append(b)
    if group and (group[0].ts_ms // interval + 1) * interval <= clock_ms:
        out.append(_merge(group, interval))
    return out


def _merge(group: list[Bar], interval: int) -> Bar:
    return Bar(group[0].ts_ms // interval * interval, group[0].open, max(b.high for b in group),
               min(b.low for b in group), group[-1].close, sum((b.volume for b in group), Decimal(0)))
