"""Client side: an aiohttp session whose only reachable hosts are Binance's, all on loopback.

:func:`loopback_session` builds a ``ClientSession`` whose resolver maps exactly
:data:`~tandem.emulator.tls.BINANCE_HOSTS` to ``127.0.0.1:<port>`` (aiohttp connects to the port
in the resolver result, while TLS SNI and hostname verification still use the URL's hostname) and
refuses every other name with :class:`LoopbackRefused`. IP-literal URLs skip resolvers in aiohttp,
so a request hook refuses any URL host outside the list too. The TLS context trusts only the
emulator's CA, so even a leak could not complete a handshake with the real Binance.

ccxt and a caller-supplied session (ccxt 4.5.90 ``async_support/base/exchange.py``): passing
``'session'`` in the config sets ``own_session = False``; ``exchange.close()`` then sets
``self.session = None`` without closing it, and its ``tcp_connector`` stays ``None`` (it is only
created with an own session). So the **caller closes the session** (``await session.close()``)
after ``await exchange.close()``. ccxt's own ``ssl_context``/``cafile`` are not used for requests
on a supplied session: the session's connector carries the TLS context.
"""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from tandem.emulator.tls import BINANCE_HOSTS, client_context_from_file

__all__ = ["LoopbackRefused", "LoopbackResolver", "ccxt_config", "loopback_session"]


class LoopbackRefused(OSError):
    """A request for a host that is not one of the emulated Binance hosts."""


class LoopbackResolver(AbstractResolver):
    """Resolves :data:`BINANCE_HOSTS` to ``127.0.0.1:<port>``; refuses everything else."""

    def __init__(self, port: int, hosts: tuple[str, ...] = BINANCE_HOSTS) -> None:
        self.port, self.hosts = port, frozenset(hosts)

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if host not in self.hosts:
            raise LoopbackRefused(f"loopback resolver refuses {host!r}: only {sorted(self.hosts)} go to the emulator")
        return [ResolveResult(hostname=host, host="127.0.0.1", port=self.port, family=socket.AF_INET,
                              proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        return None


def loopback_session(port: int, ca_pem_path: str | Path, hosts: tuple[str, ...] = BINANCE_HOSTS) -> aiohttp.ClientSession:
    """A ClientSession reaching only the emulator on ``127.0.0.1:port`` under Binance's names.

    Must be created inside a running event loop; the caller closes it.
    """
    allowed = frozenset(hosts)

    async def _guard(_session: aiohttp.ClientSession, _ctx: SimpleNamespace, params: aiohttp.TraceRequestStartParams) -> None:
        if params.url.host not in allowed:
            raise LoopbackRefused(f"refusing {params.url.host!r}: not an emulated Binance host")

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(_guard)
    connector = aiohttp.TCPConnector(resolver=LoopbackResolver(port, hosts), ssl=client_context_from_file(ca_pem_path),
                                     use_dns_cache=False, family=socket.AF_INET)
    return aiohttp.ClientSession(connector=connector, trust_env=False, trace_configs=[trace])


def ccxt_config(session: aiohttp.ClientSession, api_key: str, secret: str, market: str = "spot",
                timeout_ms: int = 10_000, **extra: object) -> dict:
    """Config for ``ccxt.async_support.binance`` (market="spot") or ``binanceusdm`` ("usdm").

    Options turn off what would call endpoints the emulator does not serve (ccxt 4.5.90):
    ``fetchCurrencies: False`` (else load_markets calls sapi ``capital/config/getall`` with keys),
    ``fetchMargins: False`` (else fetch_markets calls sapi ``margin/allPairs`` and
    ``margin/isolated/allPairs``), ``fetchMarkets.types`` = ``['spot']`` or ``['linear']``
    (else also fapi/dapi ``exchangeInfo``). ``adjustForTimeDifference`` stays off.
    """
    if market not in ("spot", "usdm"):
        raise ValueError("market must be 'spot' or 'usdm'")
    options: dict = {
        "fetchCurrencies": False,
        "fetchMargins": False,
        "fetchMarkets": {"types": ["spot"] if market == "spot" else ["linear"]},
        "adjustForTimeDifference": False,
    }
    if market == "usdm":
        options |= {"defaultType": "swap", "defaultSubType": "linear"}
    cfg = {"apiKey": api_key, "secret": secret, "session": session, "timeout": timeout_ms,
           "enableRateLimit": False, "options": options}
    cfg.update(extra)
    return cfg
