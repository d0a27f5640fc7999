"""The replay clock, driven by the executor: before each order the emulator's market time is moved
to the decision's ``market_ts_ns``, so the order meets the same bar the paper venue would fill it
at (DESIGN.md invariant 6: the first price at or after the decision's time, no look-ahead).

This is the one non-Binance call the executor makes, and only with ``venue=binance-emulator``:
``POST https://api.binance.com/_emulator/advance`` signed like any Binance SIGNED request
(``X-MBX-APIKEY`` header, HMAC-SHA256 ``signature`` over the query string). The clock never moves
backwards, so a retransmitted or recovered decision cannot rewind the market: the emulator's answer
to a time it has passed (-1104) means the market is there already, and the order goes ahead.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp

from foundation.exchange_session import binance_signature

from .base import OrderRequest
from .errors import TemporaryVenueError

__all__ = ["ADVANCE_URL", "advance_url_clock", "clock_sync"]

ADVANCE_URL = "https://api.binance.com/_emulator/advance"


def clock_sync(session: aiohttp.ClientSession, api_key: str, secret: str) -> Callable[[OrderRequest], Awaitable[None]]:
    """A ``before_order`` hook for :class:`~executor.venue.ccxt_venue.CcxtVenue`.

    The hook raises :class:`TemporaryVenueError` when the emulator cannot be reached or refuses
    (nothing was ordered yet, so the order may simply be tried again).
    """
    last = 0

    async def advance(req: Any) -> None:  # an OrderRequest, or anything with its market_ts_ns
        nonlocal last
        ts_ms = req.market_ts_ns // 1_000_000
        if ts_ms <= last:
            return
        query = urlencode({"ts_ms": ts_ms, "timestamp": int(time.time() * 1000)})
        url = f"{ADVANCE_URL}?{query}&signature={binance_signature(query, secret)}"
        try:
            async with session.post(url, headers={"X-MBX-APIKEY": api_key}) as resp:
                body: Any = await resp.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise TemporaryVenueError(f"emulator clock to {ts_ms}: {type(exc).__name__}: {exc}") from exc
        if resp.status == 400 and isinstance(body, dict) and body.get("code") == -1104:
            last = max(last, ts_ms)  # the market is past it already (a restarted executor's recovery): so be it
            return
        if resp.status != 200:
            raise TemporaryVenueError(f"emulator clock to {ts_ms}: HTTP {resp.status} {body}")
        last = max(last, int(body.get("clock_ms", ts_ms)))

    return advance


def advance_url_clock(url: str) -> Callable[[OrderRequest], Awaitable[None]]:
    """A ``before_order`` hook for a local venue whose clock is moved by an unsigned loopback call:
    ``POST {url}?ts_ms=N`` answered ``{"clock_ms": ...}`` (the local Solana cluster's swap service).

    The hook raises :class:`TemporaryVenueError` when it cannot be reached or refuses.
    """
    last = 0

    async def advance(req: Any) -> None:  # an OrderRequest, or anything with its market_ts_ns
        nonlocal last
        ts_ms = req.market_ts_ns // 1_000_000
        if ts_ms <= last:
            return
        try:  # a session per move: nothing left open when the venue closes
            async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
                        session.post(url, params={"ts_ms": str(ts_ms)}) as resp):  # fmt: skip
                body: Any = await resp.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise TemporaryVenueError(f"local clock to {ts_ms}: {type(exc).__name__}: {exc}") from exc
        if resp.status != 200 or not isinstance(body, dict):
            raise TemporaryVenueError(f"local clock to {ts_ms}: HTTP {resp.status} {body}")
        last = max(last, int(body.get("clock_ms", ts_ms)))

    return advance
