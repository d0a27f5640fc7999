"""Reaching an exchange's API at an address of our choosing: an aiohttp session for ccxt whose only
reachable hosts are the exchange's own names, each resolved to a loopback port, and whose TLS
context trusts only a given CA.

This is how a tandem process trades with a local exchange (the Binance emulator beside the
product, ``testbed.emulator``) through the real, unmodified ccxt client: the URLs stay
``https://api.binance.com`` and ``https://fapi.binance.com``, ccxt's error mapping stays its own,
and nothing can reach the real exchange by mistake (its certificate would not verify against the
CA given, and any other name is refused).

:func:`loopback_session` builds a ``ClientSession`` whose resolver maps exactly
:data:`BINANCE_HOSTS` to ``127.0.0.1:<port>`` (aiohttp connects to the port in the resolver
result, while TLS SNI and hostname verification still use the URL's hostname) and refuses every
other name with :class:`LoopbackRefused`. IP-literal URLs skip resolvers in aiohttp, so a request
hook refuses any URL host outside the list too.

ccxt and a caller-supplied session (ccxt 4.5.90 ``async_support/base/exchange.py``): passing
``'session'`` in the config sets ``own_session = False``; ``exchange.close()`` then sets
``self.session = None`` without closing it, and its ``tcp_connector`` stays ``None`` (it is only
created with an own session). So the **caller closes the session** (``await session.close()``)
after ``await exchange.close()``. ccxt's own ``ssl_context``/``cafile`` are not used for requests
on a supplied session: the session's connector carries the TLS context.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import ssl
from pathlib import Path
from types import SimpleNamespace

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = ["BINANCE_HOSTS", "LoopbackRefused", "LoopbackResolver", "binance_signature", "ccxt_config",
           "client_context_from_file", "loopback_session"]

BINANCE_HOSTS: tuple[str, ...] = (
    "api.binance.com",  # spot: urls['api']['public'|'private'|'v1']
    "fapi.binance.com",  # USDⓈ-M: fapiPublic/fapiPrivate(V2|V3)
    "testnet.binance.vision",  # spot sandbox (set_sandbox_mode)
    "testnet.binancefuture.com",  # USDⓈ-M sandbox
    "demo-api.binance.com",  # spot demo trading (enableDemoTrading)
    "demo-fapi.binance.com",  # USDⓈ-M demo trading
    "stream.binance.com",  # spot market streams (ccxt.pro urls['api']['ws']['spot'], port 9443)
    "fstream.binance.com",  # USDⓈ-M market streams (urls['api']['ws']['linear'], /market/ws for klines)
)
"""Every host ccxt 4.5.90's ``binance``/``binanceusdm`` ``urls['api']``/``urls['test']``/``urls['demo']``
use for the REST endpoints tandem calls (spot ``api.binance.com``, USDⓈ-M ``fapi.binance.com``,
their testnet and demo hosts), and the ccxt.pro market-stream hosts (``watch_ohlcv``)."""


def client_context_from_file(ca_pem_path: str | Path) -> ssl.SSLContext:
    """Client SSLContext trusting only the CA in ``ca_pem_path`` (not the system store), TLS 1.2+,
    hostname checking on.

    Raises:
        OSError, ssl.SSLError: the file cannot be read or holds no certificate.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname + CERT_REQUIRED, no default CAs
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile=str(ca_pem_path))
    return ctx


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


def binance_signature(query: str, secret: str) -> str:
    """The ``signature`` parameter of a Binance SIGNED request: lowercase hex HMAC-SHA256 of the
    query string, keyed by the API secret (Binance spot ``rest-api.md``, "SIGNED (TRADE and
    USER_DATA) Endpoint security"; the same for USDⓈ-M). For the few calls tandem makes outside
    ccxt (the replay clock of a local exchange); ccxt signs its own."""
    return hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
