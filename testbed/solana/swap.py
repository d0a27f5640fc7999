"""The Jupiter-shaped swap service: quotes, RFQ swap transactions and prices (sans-IO).

Shapes follow Jupiter's Swap API v1 (https://dev.jup.ag/docs/api/swap-api/quote,
https://dev.jup.ag/docs/api/swap-api/swap) and Price API v3
(https://dev.jup.ag/docs/api/price-api/v3/price); errors are ``{"error": text, "errorCode": CODE}``
with HTTP 400 (:class:`SwapError`). Amounts are strings of raw integer units.

**Pricing** (the replay clock of :mod:`.market`; no look-ahead): ``P`` = the open of the first
bar whose open time >= the clock, ``s`` = ``spread_bps / 1e4``, computed exactly (rationals
over the decimal text of ``P``), then floored:

* buy (input USDC): ``out_base_raw = floor(in_usdc_raw / 1e6 / (P * (1 + s)) * 1e8)``;
* sell (input base): ``out_usdc_raw = floor(in_base_raw / 1e8 * P * (1 - s) * 1e6)``;
* ``otherAmountThreshold = floor(outAmount * (1 - slippageBps / 1e4))``.

Only base <-> USDC trades; ``swapMode=ExactIn`` only. Refusals: no bar at or after the clock
(``NO_MARKET_DATA``), a mint pair other than base/USDC (``TOKEN_NOT_TRADABLE``), the same mint on
both sides (``CIRCULAR_ARBITRAGE_IS_DISABLED``), amount 0 or not a u64 (``INVALID_AMOUNT``), an
output of 0 raw units or beyond the maker's inventory (``COULD_NOT_FIND_ANY_ROUTE``),
``ExactOut`` (``EXACT_OUT_NOT_SUPPORTED``), malformed parameters (``INVALID_REQUEST``).

**Swap transactions** (RFQ style, like Jupiter Z; research p2/p4): a v0 message, fee payer the
user, instructions ComputeBudget ``set_compute_unit_limit`` (200 000 by default; with
``dynamicComputeUnitLimit`` the simulated units * 1.2, rounded up), ``set_compute_unit_price``
(only when > 0), SPL Token ``transfer_checked`` user → maker of ``inAmount`` of the input mint,
then ``transfer_checked`` maker → user of ``outAmount`` of the output mint, between associated
token accounts. The maker signs; the user's signature slot holds ``Signature.default()`` for the
user to fill. The blockhash is the chain tip's; ``lastValidBlockHeight`` its expiry. The fee
the user pays is 5000 lamports per signature (two) plus ``prioritizationFeeLamports`` =
``ceil(computeUnitPriceMicroLamports * computeUnitLimit / 1e6)``.
The ``quoteResponse`` must be one this service issued (same mints and amounts), else
``INVALID_QUOTE``; the maker delivers exactly its ``outAmount``.

**Prices**: the base mint at the mark (:meth:`.market.ReplayMarket.mark_price`), USDC at 1.0, SOL
at ``sol_usd`` (a stand-in: the bundled data has no SOL prices); unknown ids are left out.
"""

from __future__ import annotations

import base64
import math
from collections import OrderedDict
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.token.associated import get_associated_token_address
from solders.transaction import VersionedTransaction
from spl.token.instructions import transfer_checked
from spl.token.models import TransferCheckedParams

from .chain import VALID_BLOCKS, Chain
from .faults import Faults
from .keys import (
    BASE_DECIMALS,
    BASE_MINT,
    MAKER,
    QUOTE_DECIMALS,
    QUOTE_MINT,
    SOL_DECIMALS,
    SOL_MINT,
    TOKEN_PROGRAM_ID,
)
from .market import ReplayMarket
from .render import error_text
from .tokens import U64_MAX

__all__ = [
    "DEFAULT_CU_LIMIT", "DEFAULT_SLIPPAGE_BPS", "PRICE_IMPACT_PCT", "ROUTE_LABEL", "SwapError", "SwapService",
    "priority_fee_lamports", "rfq_transaction",
]

DEFAULT_CU_LIMIT = 200_000
"""agave's default per-instruction compute limit; what Jupiter sets without dynamicComputeUnitLimit."""
DYNAMIC_CU_MARGIN = Fraction(6, 5)
DEFAULT_SLIPPAGE_BPS = 50
"""Jupiter's default ``slippageBps``."""
PRICE_IMPACT_PCT = "0.0001"
ROUTE_LABEL = "tandem-local-rfq"
MAX_PRICE_IDS = 50
"""Jupiter Price API v3: at most 50 ids per request."""
MAX_ISSUED_QUOTES = 100_000

_DECIMALS = {BASE_MINT: BASE_DECIMALS, QUOTE_MINT: QUOTE_DECIMALS}


class SwapError(Exception):
    """A refusal: HTTP ``status``, Jupiter-style ``code`` and text."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def body(self) -> dict[str, str]:
        return {"error": self.message, "errorCode": self.code}


def priority_fee_lamports(cu_price_micro_lamports: int, cu_limit: int) -> int:
    """``ceil(cu_price * cu_limit / 1e6)`` lamports (agave's prioritization fee)."""
    return -(-cu_price_micro_lamports * cu_limit // 1_000_000)


def rfq_transaction(user: Pubkey, maker: Keypair, input_mint: Pubkey, output_mint: Pubkey, in_amount: int,
                    out_amount: int, blockhash: Hash, cu_limit: int, cu_price: int) -> VersionedTransaction:  # fmt: skip
    """The swap transaction, signed by ``maker`` only (the user's slot is ``Signature.default()``)."""
    m = maker.pubkey()
    ixs = [set_compute_unit_limit(cu_limit)]
    if cu_price > 0:
        ixs.append(set_compute_unit_price(cu_price))
    for source_owner, dest_owner, mint, amount in ((user, m, input_mint, in_amount), (m, user, output_mint, out_amount)):
        ixs.append(transfer_checked(TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID, source=get_associated_token_address(source_owner, mint), mint=mint,
            dest=get_associated_token_address(dest_owner, mint), owner=source_owner, amount=amount,
            decimals=_DECIMALS[mint])))  # fmt: skip
    msg = MessageV0.try_compile(user, ixs, [], blockhash)
    signers = list(msg.account_keys)[: msg.header.num_required_signatures]
    sigs = [maker.sign_message(to_bytes_versioned(msg)) if k == m else Signature.default() for k in signers]
    return VersionedTransaction.populate(msg, sigs)


class SwapService:
    """Quotes and swaps against the maker, priced from ``market``; ``faults.fail_swaps`` dooms swaps.

    Args:
        spread_bps: the maker's half-spread around the bar price, in basis points.
        sol_usd: the SOL price the price API reports (USD per SOL).
    """

    def __init__(self, chain: Chain, market: ReplayMarket, faults: Faults, spread_bps: float = 2.0,
                 sol_usd: float = 150.0, maker: Keypair = MAKER) -> None:  # fmt: skip
        if not 0 <= spread_bps < 10_000:
            raise ValueError(f"spread_bps must be in [0, 10000), got {spread_bps}")
        self.chain, self.market, self.faults, self.maker = chain, market, faults, maker
        self.spread = Fraction(repr(float(spread_bps))) / 10_000
        self.sol_usd = float(sol_usd)
        self._issued: OrderedDict[tuple[str, str, int, int], None] = OrderedDict()

    # -------------------------------------------------------------------------------- quote
    def quote(self, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /swap/v1/quote``.

        Raises:
            SwapError: see the module's refusals.
        """
        input_mint, output_mint = _mint_param(query, "inputMint"), _mint_param(query, "outputMint")
        amount = _int_param(query, "amount", None, "INVALID_AMOUNT")
        slippage = _int_param(query, "slippageBps", DEFAULT_SLIPPAGE_BPS, "INVALID_REQUEST")
        mode = query.get("swapMode", "ExactIn")
        if mode == "ExactOut":
            raise SwapError("EXACT_OUT_NOT_SUPPORTED", "only swapMode=ExactIn is served by the local RFQ maker")
        if mode != "ExactIn":
            raise SwapError("INVALID_REQUEST", f"swapMode must be ExactIn or ExactOut, got {mode!r}")
        if not 0 <= slippage <= 10_000:
            raise SwapError("INVALID_REQUEST", f"slippageBps must be in [0, 10000], got {slippage}")
        if not 0 < amount <= U64_MAX:
            raise SwapError("INVALID_AMOUNT", f"amount must be a positive u64 of raw units, got {amount}")
        if input_mint == output_mint:
            raise SwapError("CIRCULAR_ARBITRAGE_IS_DISABLED", "inputMint and outputMint are the same")
        if {input_mint, output_mint} != {BASE_MINT, QUOTE_MINT}:
            raise SwapError("TOKEN_NOT_TRADABLE",
                            f"only {BASE_MINT} <-> {QUOTE_MINT} (USDC) is tradable on the local cluster")
        out = self._out_amount(input_mint, amount)
        if out <= 0:
            raise SwapError("COULD_NOT_FIND_ANY_ROUTE", f"{amount} raw units buy less than one raw unit of {output_mint}")
        inventory = self.chain.token_amount(get_associated_token_address(self.maker.pubkey(), output_mint))
        if out > inventory:
            raise SwapError("COULD_NOT_FIND_ANY_ROUTE", "the maker has not enough inventory for this amount")
        threshold = out * (10_000 - slippage) // 10_000
        im, om = str(input_mint), str(output_mint)
        self._remember((im, om, amount, out))
        return {
            "inputMint": im, "inAmount": str(amount), "outputMint": om, "outAmount": str(out),
            "otherAmountThreshold": str(threshold), "swapMode": "ExactIn", "slippageBps": slippage,
            "platformFee": None, "priceImpactPct": PRICE_IMPACT_PCT,
            "routePlan": [{"swapInfo": {"ammKey": str(self.maker.pubkey()), "label": ROUTE_LABEL, "inputMint": im,
                                        "outputMint": om, "inAmount": str(amount), "outAmount": str(out),
                                        "feeAmount": "0", "feeMint": im}, "percent": 100}],
            "contextSlot": self.chain.height, "timeTaken": 0.0,
        }  # fmt: skip

    def _out_amount(self, input_mint: Pubkey, amount: int) -> int:
        price = self.market.trade_price()
        if price is None:
            raise SwapError("NO_MARKET_DATA", "no market data at the clock")
        p = Fraction(repr(price))
        if input_mint == QUOTE_MINT:  # buy base with USDC
            return math.floor(Fraction(amount, 10**QUOTE_DECIMALS) / (p * (1 + self.spread)) * 10**BASE_DECIMALS)
        return math.floor(Fraction(amount, 10**BASE_DECIMALS) * p * (1 - self.spread) * 10**QUOTE_DECIMALS)

    def _remember(self, key: tuple[str, str, int, int]) -> None:
        self._issued[key] = None
        self._issued.move_to_end(key)
        while len(self._issued) > MAX_ISSUED_QUOTES:
            self._issued.popitem(last=False)

    # --------------------------------------------------------------------------------- swap
    def swap(self, body: object) -> dict[str, Any]:
        """``POST /swap/v1/swap``: the maker-signed transaction for an issued quote.

        Raises:
            SwapError: a malformed body, a quote this service did not issue, a user without the
                two token accounts, ``prioritizationFeeLamports`` (not served).
        """
        if not isinstance(body, dict):
            raise SwapError("INVALID_REQUEST", "the body must be a JSON object")
        quote = body.get("quoteResponse")
        if not isinstance(quote, dict):
            raise SwapError("INVALID_REQUEST", "quoteResponse (the /quote answer) is required")
        user = _pubkey(body.get("userPublicKey"), "userPublicKey")
        if user == self.maker.pubkey():
            raise SwapError("INVALID_REQUEST", "userPublicKey is the maker")
        if "prioritizationFeeLamports" in body:
            raise SwapError("INVALID_REQUEST", "prioritizationFeeLamports is not served here; use computeUnitPriceMicroLamports")
        if body.get("asLegacyTransaction"):
            raise SwapError("INVALID_REQUEST", "asLegacyTransaction is not served: swaps are v0 transactions")
        cu_price = body.get("computeUnitPriceMicroLamports", 0)
        if cu_price is None:
            cu_price = 0
        if isinstance(cu_price, bool) or not isinstance(cu_price, int) or not 0 <= cu_price <= U64_MAX:
            raise SwapError("INVALID_REQUEST", f"computeUnitPriceMicroLamports must be a u64, got {cu_price!r}")
        dynamic = body.get("dynamicComputeUnitLimit", False)
        for flag in ("dynamicComputeUnitLimit", "wrapAndUnwrapSol"):
            if not isinstance(body.get(flag, False), bool):
                raise SwapError("INVALID_REQUEST", f"{flag} must be a boolean")
        im, om = _pubkey(quote.get("inputMint"), "quoteResponse.inputMint"), _pubkey(
            quote.get("outputMint"), "quoteResponse.outputMint")
        in_amount = _amount(quote.get("inAmount"), "quoteResponse.inAmount")
        out_amount = _amount(quote.get("outAmount"), "quoteResponse.outAmount")
        if (str(im), str(om), in_amount, out_amount) not in self._issued:
            raise SwapError("INVALID_QUOTE", "quoteResponse was not issued by this service (or was altered)")
        for mint in (im, om):
            if self.chain.account(get_associated_token_address(user, mint)) is None:
                raise SwapError("INVALID_REQUEST", f"userPublicKey has no associated token account for {mint}")
        bh, last_valid = self.chain.blockhash_at(self.chain.height), self.chain.height + VALID_BLOCKS
        cu_limit = DEFAULT_CU_LIMIT
        tx = rfq_transaction(user, self.maker, im, om, in_amount, out_amount, bh, cu_limit, cu_price)
        out: dict[str, Any] = {}
        if dynamic:
            sim = self.chain.simulate(tx)
            if sim.err is None:
                cu_limit = math.ceil(sim.units * DYNAMIC_CU_MARGIN)
                tx = rfq_transaction(user, self.maker, im, om, in_amount, out_amount, bh, cu_limit, cu_price)
            out["simulationError"] = None if sim.err is None else {"errorCode": "TRANSACTION_ERROR",
                                                                   "error": error_text(sim.err)}
        if self.faults.take("fail_swaps"):
            self.chain.doom(tx.message, get_associated_token_address(self.maker.pubkey(), om))
        return {"swapTransaction": base64.b64encode(bytes(tx)).decode(), "lastValidBlockHeight": last_valid,
                "prioritizationFeeLamports": priority_fee_lamports(cu_price, cu_limit), "computeUnitLimit": cu_limit,
                **out}  # fmt: skip

    # -------------------------------------------------------------------------------- price
    def price(self, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /price/v3?ids=MINT[,MINT...]``.

        Raises:
            SwapError: ``ids`` missing or empty, or more than 50 ids.
        """
        ids = [i.strip() for i in query.get("ids", "").split(",") if i.strip()]
        if not ids:
            raise SwapError("INVALID_REQUEST", "ids (comma-separated mint addresses) is required")
        if len(ids) > MAX_PRICE_IDS:
            raise SwapError("INVALID_REQUEST", f"at most {MAX_PRICE_IDS} ids per request")
        known = {str(BASE_MINT): (self.market.mark_price(), BASE_DECIMALS), str(QUOTE_MINT): (1.0, QUOTE_DECIMALS),
                 str(SOL_MINT): (self.sol_usd, SOL_DECIMALS)}  # fmt: skip
        return {i: {"usdPrice": float(known[i][0]), "blockId": self.chain.height, "decimals": known[i][1],
                    "priceChange24h": 0.0} for i in dict.fromkeys(ids) if i in known}  # fmt: skip


def _mint_param(query: Mapping[str, str], name: str) -> Pubkey:
    if name not in query:
        raise SwapError("INVALID_REQUEST", f"query parameter {name} is required")
    return _pubkey(query[name], name)


def _pubkey(text: Any, name: str) -> Pubkey:
    if not isinstance(text, str):
        raise SwapError("INVALID_REQUEST", f"{name} must be a base58 address string")
    try:
        return Pubkey.from_string(text)
    except ValueError:
        raise SwapError("INVALID_REQUEST", f"{name} is not a base58 address: {text!r}") from None


def _int_param(query: Mapping[str, str], name: str, default: int | None, code: str) -> int:
    text = query.get(name)
    if text is None:
        if default is None:
            raise SwapError(code, f"query parameter {name} is required")
        return default
    if not text.isascii() or not text.isdigit():
        raise SwapError(code, f"{name} must be a non-negative integer, got {text!r}")
    return int(text)


def _amount(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise SwapError("INVALID_REQUEST", f"{name} must be a string of raw integer units, got {value!r}")
