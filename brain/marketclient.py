"""The ccxt.pro client the live feed reads market data with, built from the brain's settings.

Market data needs no API key. ``sandbox`` switches ccxt to the exchange's testnet URLs
(``set_sandbox_mode``), so a brain trading the testnet sees the testnet's prices. With
``emulator_port``/``emulator_ca`` (set by ``tandem paper --venue binance-emulator``) the client
keeps Binance's real URLs and reaches the local exchange through a loopback session
(:func:`foundation.exchange_session.loopback_session`): the same ccxt.pro code, unchanged.

Errors: :class:`~foundation.errors.ConfigError` for an exchange id ccxt.pro does not know, a
timeframe the exchange does not offer, or a local exchange other than Binance's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from foundation.errors import ConfigError
from foundation.exchange_session import ccxt_config, loopback_session

__all__ = ["LOCAL_MARKETS", "MarketClient", "build_market_client", "timeframe_ms"]

LOCAL_MARKETS = {"binance": "spot", "binanceusdm": "usdm"}
"""Exchange ids the local Binance serves, and the market each trades."""


def timeframe_ms(timeframe: str) -> int:
    """``"1m"`` → 60,000: ccxt's own parser (``Exchange.parse_timeframe``, seconds) in ms."""
    import ccxt

    return int(ccxt.Exchange.parse_timeframe(timeframe) * 1000)


@dataclass
class MarketClient:
    """A ccxt.pro client and the loopback session it was given, if any."""

    exchange: Any
    session: Any = None

    async def close(self) -> None:
        """Close the client, then the loopback session (ccxt does not close a session it did not
        create: ccxt 4.5.90 ``async_support/base/exchange.py``)."""
        await self.exchange.close()
        if self.session is not None:
            await self.session.close()


def build_market_client(settings: Any) -> MarketClient:
    """A ccxt.pro client for ``settings.exchange`` (call inside the running event loop; the caller
    closes it with :meth:`MarketClient.close`).

    Raises:
        ConfigError: an unknown exchange id, a timeframe it does not list, or a local exchange
            (``emulator_port``) for an exchange other than ``binance``/``binanceusdm``.
    """
    import ccxt.pro as ccxtpro  # ~1 s to import: only a live feed pays it

    cls = getattr(ccxtpro, settings.exchange, None)
    if cls is None or not isinstance(cls, type):
        raise ConfigError(f"exchange: ccxt.pro has no exchange {settings.exchange!r}")
    timeframes = getattr(cls(), "timeframes", None) or {}  # checked before a session exists to be closed
    if timeframes and settings.timeframe not in timeframes:
        raise ConfigError(f"timeframe: {settings.exchange} offers {', '.join(timeframes)}, not {settings.timeframe!r}")
    if settings.emulator_port:
        market = LOCAL_MARKETS.get(settings.exchange)
        if market is None:
            raise ConfigError(f"exchange: the local Binance serves {sorted(LOCAL_MARKETS)}, not {settings.exchange!r}")
        session = loopback_session(settings.emulator_port, settings.emulator_ca)
        out = MarketClient(cls(ccxt_config(session, "", "", market)), session)
    else:
        out = MarketClient(cls({"enableRateLimit": True}))
        if settings.sandbox:
            out.exchange.set_sandbox_mode(True)
    return out
