"""A local Binance-compatible exchange (spot and USDⓈ-M) that ccxt reaches over HTTPS on loopback.

The real, unmodified ``ccxt.async_support.binance`` / ``binanceusdm`` keep their real URLs
(``https://api.binance.com``, ``https://fapi.binance.com``) and error mapping; a session from
:func:`loopback_session` resolves those names to the emulator and trusts only its throwaway CA.

Usage::

    async with BinanceEmulator(load_bars(path, limit=300)) as emu:
        emu.create_account("key", "secret", spot={"USDT": "10000"}, usdm_usdt="10000")
        ex = ccxt.async_support.binance(emu.ccxt_config("spot", "key", "secret"))
        ...
        emu.advance_to(ts_ms)          # bars before ts_ms happen: stops trigger, limits fill
        await ex.close()               # then emu closes the sessions it handed out

Modules: ``engine`` (sans-IO state, clock and queries), ``matching`` (order placement and
matching), ``algo`` (USDⓈ-M conditional orders), ``ledger`` (balances, fees, positions, margin),
``model`` (orders, fills, accounts), ``specs`` (exchangeInfo filters), ``payloads`` (Binance JSON
shapes), ``auth`` (HMAC/timestamp checks), ``errors`` (codes/texts), ``faults`` (fault plan),
``server`` (aiohttp route table and dispatch; the ccxt call → endpoint table is there), ``params``
(request parsing), ``marketdata`` / ``trading`` / ``control`` (the handlers: market data; orders
and accounts; ``/_emulator/*``), ``tls`` (trustme CA); the loopback session and ccxt config come
from :mod:`foundation.exchange_session`.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path

import aiohttp
from aiohttp import web

from foundation.exchange_session import LoopbackRefused, LoopbackResolver, ccxt_config, loopback_session

from .control import snapshot
from .engine import Bar, Engine, Venue
from .errors import BinanceError
from .faults import Endpoint, Fault, FaultKind, FaultPlan
from .server import EmulatorServer
from .specs import load_fixture, specs_from_exchange_info
from .stream import KlineStream, StreamFault, StreamFaultKind, parse_stream_faults
from .tls import BINANCE_HOSTS, EmulatorTLS

__all__ = [
    "BINANCE_HOSTS", "Bar", "BinanceEmulator", "BinanceError", "Endpoint", "Engine", "Fault", "FaultKind",
    "FaultPlan", "KlineStream", "LoopbackRefused", "LoopbackResolver", "StreamFault", "StreamFaultKind", "Venue",
    "bars_from_marketdata", "ccxt_config", "loopback_session", "parse_stream_faults", "serve",
]


def bars_from_marketdata(bars: object) -> list[Bar]:
    """Engine bars from a ``foundation.bars.Bars`` (floats → exact ``Decimal`` of their repr)."""
    if isinstance(bars, list) and (not bars or isinstance(bars[0], Bar)):
        return bars
    return [Bar(bars.ts_ms[i], Decimal(repr(bars.open[i])), Decimal(repr(bars.high[i])), Decimal(repr(bars.low[i])),
                Decimal(repr(bars.close[i])), Decimal(repr(bars.volume[i]))) for i in range(len(bars))]


class BinanceEmulator:
    """Async context manager running the HTTPS emulator on ``127.0.0.1`` (ephemeral port by default).

    Args:
        bars: a ``foundation.bars.Bars`` or a list of :class:`Bar` (every symbol trades them).
        symbols: exchange symbol ids to list, default ``("BTCUSDT",)`` (must be in the fixtures).
        port: TCP port, 0 for an ephemeral one.
        ca_path: where to write the CA PEM; default a temporary file removed on exit.
        start_ms: initial replay clock (default: first bar open).
        stream: serve kline streams (:mod:`.stream`): ``{"start": bar index, "bars_per_s": speed,
            "faults": [StreamFault, ...]}``; ``None``: REST only.

    Attributes (after ``__aenter__``): ``port``, ``ca_path``, ``engine``, ``faults``, ``server``,
    ``stream`` (a :class:`KlineStream` or ``None``).
    """

    def __init__(self, bars: object, symbols: Sequence[str] = ("BTCUSDT",), port: int = 0,
                 ca_path: str | Path | None = None, start_ms: int | None = None,
                 stream: dict | None = None) -> None:
        usdm_fee = load_fixture("usdm_commission_rate_btcusdt.json")
        self._spot_info = load_fixture("spot_exchange_info.json")
        self._usdm_info = load_fixture("usdm_exchange_info.json")
        self.engine = Engine(bars_from_marketdata(bars), specs_from_exchange_info(self._spot_info, futures=False),
                             specs_from_exchange_info(self._usdm_info, futures=True), symbols,
                             (Decimal(usdm_fee["makerCommissionRate"]), Decimal(usdm_fee["takerCommissionRate"])),
                             start_ms)
        self.faults = FaultPlan()
        self.server = EmulatorServer(self.engine, self.faults, self._spot_info, self._usdm_info, usdm_fee)
        self.tls = EmulatorTLS()
        self.stream: KlineStream | None = None
        if stream is not None:
            eb = self.engine.bars
            interval = eb[1].ts_ms - eb[0].ts_ms if len(eb) > 1 else 60_000
            self.stream = KlineStream(eb, tuple(symbols), interval, start=stream.get("start", 0),
                                      bars_per_s=stream.get("bars_per_s", 10.0), faults=stream.get("faults"))
        self._want_port = port
        self._ca_arg = ca_path
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._runner: web.AppRunner | None = None
        self._sessions: list[aiohttp.ClientSession] = []
        self.port = 0
        self.ca_path: Path | None = None

    async def __aenter__(self) -> BinanceEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._ca_arg is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tandem-emulator-")
            self.ca_path = Path(self._tmp.name) / "ca.pem"
        else:
            self.ca_path = Path(self._ca_arg)
        self.tls.write_ca(self.ca_path)
        self._runner = web.AppRunner(self.server.app(self.stream), shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._want_port, ssl_context=self.tls.server_context())
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self.stream is not None:
            await self.stream.close()
        self.server.close()
        for s in self._sessions:
            await s.close()
        self._sessions.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # ------------------------------------------------------------------------- in-process
    def create_account(self, api_key: str, secret: str, spot: dict[str, str | Decimal] | None = None,
                       usdm_usdt: str | Decimal = "0", leverage: int = 1):
        """Add an account: spot free balances by asset, USDⓈ-M USDT wallet, default leverage."""
        return self.engine.create_account(api_key, secret, spot, usdm_usdt, leverage)

    def advance_to(self, ts_ms: int) -> list[int]:
        """Same as ``POST /_emulator/advance``: bars before ``ts_ms`` happen."""
        return self.engine.advance_to(ts_ms)

    def state(self) -> dict:
        """Same as ``GET /_emulator/state``."""
        return snapshot(self.engine)

    def install_faults(self, *faults: Fault) -> None:
        """Same as ``POST /_emulator/faults``."""
        self.faults.install(*faults)

    def session(self) -> aiohttp.ClientSession:
        """A new loopback session (closed by the emulator on exit, or by the caller earlier)."""
        s = loopback_session(self.port, self.ca_path)
        self._sessions.append(s)
        return s

    def ccxt_config(self, market: str = "spot", api_key: str | None = None, secret: str | None = None,
                    timeout_ms: int = 10_000, **extra: object) -> dict:
        """ccxt config on a fresh loopback session; key/secret default to the first account."""
        if api_key is None:
            api_key = next(iter(self.engine.accounts))
        if secret is None:
            secret = self.engine.accounts[api_key].secret if api_key in self.engine.accounts else ""
        return ccxt_config(self.session(), api_key, secret, market, timeout_ms, **extra)


async def serve(port: int = 0, bars_csv: str | None = None, ca_out: str | None = None, api_key: str = "emulator",
                secret: str = "emulator-secret", spot: dict[str, str] | None = None, usdm_usdt: str = "10000",
                limit: int | None = None, symbols: Iterable[str] = ("BTCUSDT",),
                ready: asyncio.Event | None = None, stream: dict | None = None) -> None:
    """Run the emulator as a standalone process until cancelled (``stream``: see
    :class:`BinanceEmulator`).

    Prints one JSON line ``{"port": ..., "ca_path": ..., "api_key": ...}`` on stdout once listening,
    so a parent process can connect (``loopback_session(port, ca_path)``).
    """
    from foundation.barcsv import bundled_path, load_bars

    bars = load_bars(bars_csv or bundled_path(), limit=limit)
    emu = BinanceEmulator(bars, tuple(symbols), port=port, ca_path=ca_out, stream=stream)
    async with emu:
        emu.create_account(api_key, secret, spot if spot is not None else {"USDT": "10000"}, usdm_usdt)
        print(json.dumps({"port": emu.port, "ca_path": str(emu.ca_path), "api_key": api_key}), flush=True)
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()
