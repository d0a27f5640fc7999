"""Jupiter's HTTP APIs, as the venue uses them: quote, swap transaction, prices.

- ``GET {swap_api}/quote?inputMint&outputMint&amount&slippageBps&swapMode=ExactIn`` → a quote
  (amounts are strings of raw token units; ``priceImpactPct`` a decimal string, 0.01 = 1 %);
- ``POST {swap_api}/swap`` with ``{quoteResponse, userPublicKey, wrapAndUnwrapSol: false,
  computeUnitPriceMicroLamports}`` → ``{swapTransaction (base64 of a versioned transaction),
  lastValidBlockHeight, prioritizationFeeLamports, computeUnitLimit}``;
- ``GET {price_api}?ids=MINT,...`` (Price API v3) → ``{MINT: {"usdPrice": float, ...}}``.

Source: Jupiter's Swap API v1 (``https://api.jup.ag/swap/v1``) and Price API v3
(``https://api.jup.ag/price/v3``) documentation; an API key goes in the ``x-api-key`` header.

Errors: none of these calls changes anything, so every failure may be retried. A refused
connection, a timeout, HTTP 429 or 5xx → :class:`~executor.venue.errors.TemporaryVenueError`; any
other HTTP error, or an answer without the fields above →
:class:`~executor.venue.errors.PermanentVenueError` (``NO_MARKET_DATA`` when the service says it
has no price or route, else ``VENUE_ERROR``), naming the call and the service's message.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from protocol import RejectCode

from ..errors import PermanentVenueError, TemporaryVenueError

__all__ = ["Jupiter", "Quote", "SwapTransaction"]


@dataclass(frozen=True, slots=True)
class Quote:
    """An ExactIn quote: ``in_amount`` raw units of ``input_mint`` for ``out_amount`` of ``output_mint``.

    Attributes:
        price_impact: a fraction (0.01 = 1 %).
        raw: the service's whole answer, sent back as ``quoteResponse``.
    """

    input_mint: str
    output_mint: str
    in_amount: int
    out_amount: int
    price_impact: float
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SwapTransaction:
    """The unsigned (or partly signed) transaction for a quote, and when its blockhash expires."""

    tx: bytes
    last_valid_block_height: int
    compute_unit_limit: int
    prioritization_fee_lamports: int


_NO_ROUTE = ("NO_MARKET_DATA", "COULD_NOT_FIND_ANY_ROUTE", "NO_ROUTES_FOUND", "TOKEN_NOT_TRADABLE")


class Jupiter:
    """A client of the two APIs over one aiohttp session.

    Args:
        swap_url: the Swap API base, e.g. ``https://api.jup.ag/swap/v1``.
        price_url: the Price API endpoint, e.g. ``https://api.jup.ag/price/v3``.
        api_key: sent as ``x-api-key`` when given (never logged).
        timeout_s: per request.
    """

    def __init__(self, swap_url: str, price_url: str, *, api_key: str = "", timeout_s: float = 10.0) -> None:
        self.swap_url = swap_url.rstrip("/")
        self.price_url = price_url
        self._headers = {"x-api-key": api_key} if api_key else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _json(self, call: str, method: str, url: str, **kw: Any) -> Any:
        try:
            async with self._http().request(method, url, **kw) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TemporaryVenueError(f"{call}: {type(exc).__name__}: {exc}") from exc
        if status == 429 or status >= 500:
            raise TemporaryVenueError(f"{call}: HTTP {status} {text[:200]}")
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        if status != 200:
            code = body.get("errorCode", "") if isinstance(body, dict) else ""
            reject = RejectCode.NO_MARKET_DATA if code in _NO_ROUTE else RejectCode.VENUE_ERROR
            raise PermanentVenueError(f"{call}: HTTP {status} {text[:200]}", reject)
        if body is None:
            raise PermanentVenueError(f"{call}: not a JSON answer: {text[:200]!r}")
        return body

    async def quote(self, input_mint: str, output_mint: str, amount: int, slippage_bps: int) -> Quote:
        """An ExactIn quote for ``amount`` raw units of ``input_mint``.

        Raises:
            TemporaryVenueError, PermanentVenueError: see the module docstring.
        """
        params = {"inputMint": input_mint, "outputMint": output_mint, "amount": str(amount),
                  "slippageBps": str(slippage_bps), "swapMode": "ExactIn"}  # fmt: skip
        body = await self._json("quote", "GET", f"{self.swap_url}/quote", params=params)
        try:
            quote = Quote(str(body["inputMint"]), str(body["outputMint"]), int(body["inAmount"]),
                          int(body["outAmount"]), float(body.get("priceImpactPct") or 0.0), body)  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise PermanentVenueError(f"quote: malformed answer ({type(exc).__name__}: {exc})") from None
        if (quote.input_mint, quote.output_mint, quote.in_amount) != (input_mint, output_mint, amount):
            raise PermanentVenueError(f"quote: answered {quote.in_amount} {quote.input_mint} -> {quote.output_mint}, "
                                      f"asked {amount} {input_mint} -> {output_mint}")  # fmt: skip
        return quote

    async def swap(self, quote: Quote, user: str, *, cu_price_micro_lamports: int) -> SwapTransaction:
        """The swap transaction for ``quote``, paid and signed by ``user`` (base58).

        Raises:
            TemporaryVenueError, PermanentVenueError: see the module docstring.
        """
        payload = {"quoteResponse": quote.raw, "userPublicKey": user, "wrapAndUnwrapSol": False,
                   "computeUnitPriceMicroLamports": cu_price_micro_lamports}  # fmt: skip
        body = await self._json("swap", "POST", f"{self.swap_url}/swap", json=payload)
        try:
            return SwapTransaction(base64.b64decode(body["swapTransaction"], validate=True),
                                   int(body["lastValidBlockHeight"]), int(body.get("computeUnitLimit") or 0),
                                   int(body.get("prioritizationFeeLamports") or 0))  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise PermanentVenueError(f"swap: malformed answer ({type(exc).__name__}: {exc})") from None

    async def prices(self, mints: list[str]) -> dict[str, float]:
        """USD prices of ``mints`` (those the service knows).

        Raises:
            TemporaryVenueError, PermanentVenueError: see the module docstring.
        """
        body = await self._json("price", "GET", self.price_url, params={"ids": ",".join(mints)})
        out: dict[str, float] = {}
        if isinstance(body, dict):
            for mint in mints:
                entry = body.get(mint)
                if isinstance(entry, dict) and entry.get("usdPrice") is not None:
                    try:
                        out[mint] = float(entry["usdPrice"])
                    except (TypeError, ValueError):
                        continue
        return out
