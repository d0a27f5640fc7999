"""The Solana venue: an SPL token swapped against a quote mint (USDC) through Jupiter's APIs,
signed with the wallet's keypair, sent through solana-py — each order landing at most once.

**An order** (:meth:`SolanaVenue.submit`) is one swap, ExactIn:

- a buy spends ``amount × reference_price`` of the quote mint (raw units, rounded down), a sell
  ``amount`` of the base mint; ``slippageBps`` is the decision's ``max_slippage_bps``;
- **a quote worse than the decision allows is refused before signing** (``REJECTED /
  SLIPPAGE_EXCEEDED``): for an entry (a LIMIT_IOC, :func:`executor.planning.decision_order`), a
  price beyond its limit or a price impact beyond ``max_slippage_bps``; an exit (MARKET) is never
  refused for slippage (DESIGN.md invariant 3);
- the swap transaction from the API is checked before it is signed: our wallet pays its fee, its
  compute-unit limit is within ``compute_unit_limit`` and its compute-unit price within the
  priority fee asked for, and every other signature it carries verifies;
- signed, **journaled** (:class:`~.records.SwapRecord`, state ``signed``), then sent and driven to
  a verdict by :class:`~.sender.Sender`. The same swap under the same blockhash is byte for byte
  the same transaction — for a second order it would be taken for the first (``AlreadyProcessed``)
  and one landing counted twice — so a transaction whose signature the journal already holds is
  never sent: the venue fetches the swap again once a block has passed;
- the fill is read from the landed transaction (:func:`.outcome.swap_fill`): base received or
  given, quote paid or received, their ratio the price; the network fee (lamports) is reported in
  quote currency at the SOL price of the Price API, and as ``fee_native``.

**Exactly once.** An order's attempts are the journal's. :meth:`submit` first settles any attempt
already made — a landed one is the answer, a ``signed`` one is driven (same bytes) — and builds a
new transaction only when every attempt is ``expired`` or ``refused``, at most ``max_attempts`` and
not after the decision's expiry (then ``EXPIRED / EXPIRED``). An attempt still without a verdict
after ``confirm_timeout_s`` raises :class:`~executor.venue.errors.AmbiguousVenueError`;
:meth:`fetch_order` then drives it a little longer and raises
:class:`~executor.venue.errors.TemporaryVenueError` while it may still land — it returns ``None``
("no such order") **only** when every attempt provably never landed. So the executor's lookup
(:mod:`executor.orders`) never takes a transaction that may land for an absent order, and a
restarted executor resumes from the journal: it never re-quotes a decision whose transaction may
still land.

**Outcomes**: landed and ok → FILLED; landed with an instruction error → REJECTED with its reason
(:func:`.outcome.reject_code`) and the fee it paid (protocol v5); refused at preflight for funds →
FAILED ``INSUFFICIENT_FUNDS``, for anything else REJECTED (no fee: never broadcast); expired unlanded
→ a new attempt within the decision's time to live, else EXPIRED; RPC 429 / 5xx → retried with
backoff (:class:`~executor.venue.retry.RetryPolicy`); a lagging node → no conclusion.

**No stops on an AMM**: ``supports_protective`` is False; positions are protected by the brain's
exit plan alone, and exits are never blocked.

Units: amounts in base units (UI, i.e. raw / 10^decimals), prices in quote per base unit, fees in
quote currency, ``fee_native`` in lamports.
"""

from __future__ import annotations

import asyncio
import math
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.token.associated import get_associated_token_address
from solders.transaction import VersionedTransaction

from protocol import RejectCode, Side, Status

from ..base import Balance, OrderReport, OrderRequest, OrderStatus, OrderType, PositionReport, Venue
from ..errors import AmbiguousVenueError, PermanentVenueError, TemporaryVenueError, VenueError
from ..retry import RetryPolicy
from .jupiter import Jupiter, Quote
from .outcome import Expired, Landed, Pending, reject_code, swap_fill
from .records import SwapRecord, SwapState, SwapStore
from .rpc import Rpc
from .sender import Refused, Sender

__all__ = ["COMPUTE_BUDGET_PROGRAM", "LAMPORTS_PER_SOL", "SOL_MINT", "SolanaVenue"]

SOL_MINT = "So11111111111111111111111111111111111111112"
"""Wrapped SOL's mint: the Price API's id for SOL."""
LAMPORTS_PER_SOL = 1_000_000_000
COMPUTE_BUDGET_PROGRAM = "ComputeBudget111111111111111111111111111111"
"""Its instructions: 2 = SetComputeUnitLimit(u32), 3 = SetComputeUnitPrice(u64 micro-lamports)."""
_FEE_PRICE_TTL_S = 60.0
"""How long a SOL price fetched for fee conversion is reused, seconds."""
_SIGNATURE_CLASH_RETRIES = 20
"""Swap transactions fetched at most for one attempt while each repeats an earlier order's
signature (a block passes between two)."""


class SolanaVenue(Venue):
    """See the module docstring.

    Args:
        rpc, jupiter: the cluster and the swap service.
        keypair: the wallet (fee payer and owner of both token accounts).
        base_mint, quote_mint: the traded token and what it is priced in (base58).
        policy: retry policy for each read.
        priority_fee_micro_lamports: the compute-unit price asked for (and the most accepted).
        compute_unit_limit: the largest compute-unit limit accepted in a swap transaction.
        confirm_timeout_s: how long :meth:`submit` drives an attempt before answering "ambiguous".
        lookup_wait_s: how long :meth:`fetch_order` drives a pending attempt.
        poll_s: pause between two looks at a pending transaction.
        max_attempts: transactions built for one order at most.
        before_order: awaited with each request before its quote (a replay clock), or ``None``.
        check_cluster: called with the cluster's genesis hash at :meth:`start`; raises
            :class:`~executor.venue.errors.VenueError` to refuse it (the ``--live`` guard).
        metrics: the executor's metrics (Solana counters), or ``None``.
    """

    name = "solana"
    supports_protective = False
    supports_replace = False
    derivatives = False
    ambiguity_window_s = 0.0  # absence is proven by block height, not by a window
    orders_survive_restart = True

    def __init__(self, *, rpc: Rpc, jupiter: Jupiter, keypair: Keypair, base_mint: str, quote_mint: str,
                 policy: RetryPolicy | None = None, priority_fee_micro_lamports: int = 0,
                 compute_unit_limit: int = 1_400_000, confirm_timeout_s: float = 90.0, lookup_wait_s: float = 2.0,
                 poll_s: float = 0.5, max_attempts: int = 3,
                 before_order: Callable[[OrderRequest], Awaitable[None]] | None = None,
                 check_cluster: Callable[[str], None] | None = None, metrics: Any = None) -> None:  # fmt: skip
        self.rpc, self.jupiter, self.keypair = rpc, jupiter, keypair
        self.wallet = str(keypair.pubkey())
        self.base_mint, self.quote_mint = base_mint, quote_mint
        self.policy = policy if policy is not None else RetryPolicy()
        self.priority_fee = priority_fee_micro_lamports
        self.compute_unit_limit = compute_unit_limit
        self.confirm_timeout_s, self.lookup_wait_s, self.poll_s = confirm_timeout_s, lookup_wait_s, poll_s
        self.max_attempts = max_attempts
        self.before_order, self.check_cluster, self.metrics = before_order, check_cluster, metrics
        self.base_decimals = self.quote_decimals = 0
        self.base_account = get_associated_token_address(keypair.pubkey(), Pubkey.from_string(base_mint))
        self.quote_account = get_associated_token_address(keypair.pubkey(), Pubkey.from_string(quote_mint))
        self._store: SwapStore | None = None
        self._sender: Sender | None = None
        self._sol_price: tuple[float, float] | None = None  # (quote per SOL, monotonic time fetched)
        self.log = structlog.get_logger("solana").bind(wallet=self.wallet)

    # -- lifecycle ------------------------------------------------------------------------------

    def keep_records(self, store: SwapStore) -> None:
        """Keep swap attempts in ``store`` (the executor journal)."""
        self._store = store
        self._sender = Sender(self.rpc, store, policy=self.policy, poll_s=self.poll_s, metrics=self.metrics)

    async def start(self) -> None:
        """Check the cluster and read both token accounts' decimals.

        Raises:
            VenueError: the cluster is refused (``check_cluster``), it cannot be reached, or the
                wallet has no token account for a mint (create it first, e.g. ``spl-token
                create-account MINT``).
        """
        genesis = await self.policy.call(self.rpc.genesis_hash, what="getGenesisHash", log=self.log)
        if self.check_cluster is not None:
            self.check_cluster(genesis)
        for mint, account, attr in ((self.base_mint, self.base_account, "base_decimals"),
                                    (self.quote_mint, self.quote_account, "quote_decimals")):  # fmt: skip
            found = await self.policy.call(lambda a=account: self.rpc.token_balance(a), what="getTokenAccountBalance",
                                           log=self.log)  # fmt: skip
            if found is None:
                raise PermanentVenueError(f"solana: wallet {self.wallet} has no token account for mint {mint} "
                                          f"({account}); create it first (spl-token create-account {mint})")  # fmt: skip
            setattr(self, attr, found[1])
        self.log.info("solana_venue_started", rpc=self.rpc.url, genesis=genesis, base_mint=self.base_mint,
                      quote_mint=self.quote_mint, base_decimals=self.base_decimals, quote_decimals=self.quote_decimals)  # fmt: skip

    async def close(self) -> None:
        try:
            await self.jupiter.close()
        finally:
            await self.rpc.close()

    # -- what it trades -------------------------------------------------------------------------

    def lists(self, symbol: str) -> bool:
        return symbol == self.base_mint

    def base_asset(self, symbol: str) -> str | None:
        """The base mint itself (balances are keyed by mint)."""
        return symbol if symbol == self.base_mint else None

    def min_amount(self, symbol: str) -> float:
        """One raw unit of the base mint."""
        return 10.0**-self.base_decimals

    # -- orders ---------------------------------------------------------------------------------

    def _records(self) -> tuple[SwapStore, Sender]:
        if self._store is None or self._sender is None:
            raise PermanentVenueError("solana: no journal for swap attempts (keep_records was not called)")
        return self._store, self._sender

    async def submit(self, request: OrderRequest) -> OrderReport:
        """Execute ``request`` as one swap, exactly once (module docstring).

        Raises:
            PermanentVenueError: refused (nothing executed; a REJECTED/FAILED/EXPIRED status and its
                code). AmbiguousVenueError: an attempt may still land. TemporaryVenueError: a read
                failed before anything was signed.
        """
        store, sender = self._records()
        coid = request.client_order_id
        while True:
            found = await self._resolve(store.swaps(coid), request, self.confirm_timeout_s)
            if isinstance(found, OrderReport):
                return found
            if found is not None:
                raise AmbiguousVenueError(f"solana: {found[0].signature} may still land: {found[1].why}")
            records = store.swaps(coid)
            if any(r.state is SwapState.SIGNED for r in records):  # pragma: no cover - drive marks every verdict
                raise AmbiguousVenueError(f"solana: order {coid} has an attempt without a verdict")
            if len(records) >= self.max_attempts:
                raise PermanentVenueError(f"solana: {len(records)} transactions of {coid} never landed",
                                          RejectCode.EXPIRED, Status.EXPIRED)  # fmt: skip
            if records and request.expires_at_ns and time.time_ns() > request.expires_at_ns:
                raise PermanentVenueError(f"solana: {records[-1].signature} expired unlanded after the decision's "
                                          "expiry; no new transaction", RejectCode.EXPIRED, Status.EXPIRED)  # fmt: skip
            rec = await self._build(request, attempt=len(records) + 1)
            store.record_swap(rec)  # journaled before the first send
            verdict = await sender.drive(rec, wait_s=self.confirm_timeout_s, first=True)
            if isinstance(verdict, Landed):
                return await self._report(rec, request)
            if isinstance(verdict, Refused):
                code = reject_code(verdict.err, _instructions(VersionedTransaction.from_bytes(rec.tx)), self.wallet)
                status = Status.FAILED if code is RejectCode.INSUFFICIENT_FUNDS else Status.REJECTED
                raise PermanentVenueError(f"solana: refused at preflight: {verdict.message[:300]}", code, status)
            if isinstance(verdict, Pending):
                raise AmbiguousVenueError(f"solana: {rec.signature} may still land: {verdict.why}")
            assert isinstance(verdict, Expired)  # the loop builds the next attempt, if one is allowed

    async def _build(self, req: OrderRequest, *, attempt: int) -> SwapRecord:
        """Quote, check, fetch and verify the transaction, sign it: the attempt to journal."""
        if self.before_order is not None:
            await self.before_order(req)
        buy = req.side is Side.BUY
        if buy:
            reference = req.reference_price or await self._mark()
            amount = math.floor(req.amount * reference * 10**self.quote_decimals)
            pair = (self.quote_mint, self.base_mint)
        else:
            amount = round(req.amount * 10**self.base_decimals)
            pair = (self.base_mint, self.quote_mint)
        if amount <= 0:
            raise PermanentVenueError(f"solana: {req.amount} is below one raw unit", RejectCode.INVALID_QUANTITY,
                                      Status.REJECTED)  # fmt: skip
        slippage = max(0, min(int(req.max_slippage_bps), 10_000))
        quote = await self._call("quote", lambda: self.jupiter.quote(pair[0], pair[1], amount, slippage))
        self._check_quote(req, quote)
        store, _ = self._records()
        for _ in range(_SIGNATURE_CLASH_RETRIES):
            swap = await self._call("swap", lambda: self.jupiter.swap(quote, self.wallet,
                                                                       cu_price_micro_lamports=self.priority_fee))  # fmt: skip
            signed = self._sign(swap.tx)
            if store.swap_by_signature(str(signed.signatures[0])) is None:
                break
            # The same swap under the same blockhash is the same transaction: sent for a second
            # order it would be taken for the first (AlreadyProcessed). Wait for another blockhash.
            self.log.info("swap_signature_clash", signature=str(signed.signatures[0]), client_order_id=req.client_order_id)
            await asyncio.sleep(self.poll_s)
        else:
            raise TemporaryVenueError(f"solana: the swap for {req.client_order_id} kept the signature of an earlier "
                                      "order (the same blockhash); nothing sent")  # fmt: skip
        return SwapRecord(req.client_order_id, attempt, str(signed.signatures[0]), bytes(signed),
                          swap.last_valid_block_height, quote.input_mint, quote.output_mint, quote.in_amount,
                          quote.out_amount, time.time_ns(), req.market_ts_ns)  # fmt: skip

    def _check_quote(self, req: OrderRequest, quote: Quote) -> None:
        """Refuse an entry's quote worse than its decision allows (never an exit's)."""
        if req.type is not OrderType.LIMIT_IOC or req.price is None:
            return
        if quote.out_amount <= 0:
            raise PermanentVenueError("solana: the quote gives nothing", RejectCode.SLIPPAGE_EXCEEDED, Status.REJECTED)
        base_raw, quote_raw = ((quote.out_amount, quote.in_amount) if req.side is Side.BUY
                               else (quote.in_amount, quote.out_amount))  # fmt: skip
        price = (quote_raw / 10**self.quote_decimals) / (base_raw / 10**self.base_decimals)
        worse = price > req.price if req.side is Side.BUY else price < req.price
        if worse or quote.price_impact * 1e4 > req.max_slippage_bps:
            raise PermanentVenueError(
                f"solana: quote at {price:.10g} (impact {quote.price_impact * 100:.4g} %) is worse than the limit "
                f"{req.price:.10g} ({req.max_slippage_bps} bps from {req.reference_price:.10g})",
                RejectCode.SLIPPAGE_EXCEEDED, Status.REJECTED,
            )  # fmt: skip

    def _sign(self, raw: bytes) -> VersionedTransaction:
        """Verify the API's transaction (module docstring) and add our signature in our slot."""
        try:
            tx = VersionedTransaction.from_bytes(raw)
        except ValueError as exc:
            raise PermanentVenueError(f"solana: the swap transaction does not parse: {exc}") from None
        msg = tx.message
        keys = list(msg.account_keys)
        me = self.keypair.pubkey()
        signers = keys[: msg.header.num_required_signatures]
        if not keys or keys[0] != me:
            raise PermanentVenueError(f"solana: the swap transaction's fee payer is {keys[0] if keys else None}, "
                                      f"not the wallet {me}")  # fmt: skip
        for (program, _), data in zip(_instructions(tx), (bytes(ix.data) for ix in msg.instructions), strict=True):
            if program != COMPUTE_BUDGET_PROGRAM or not data:
                continue
            if data[0] == 2 and len(data) >= 5 and struct.unpack_from("<I", data, 1)[0] > self.compute_unit_limit:
                raise PermanentVenueError(f"solana: compute unit limit {struct.unpack_from('<I', data, 1)[0]} above "
                                          f"compute_unit_limit {self.compute_unit_limit}")  # fmt: skip
            if data[0] == 3 and len(data) >= 9 and struct.unpack_from("<Q", data, 1)[0] > self.priority_fee:
                raise PermanentVenueError(f"solana: compute unit price {struct.unpack_from('<Q', data, 1)[0]} above "
                                          f"the priority fee asked for ({self.priority_fee} micro-lamports)")  # fmt: skip
        signatures = list(tx.signatures)
        signatures[signers.index(me)] = self.keypair.sign_message(to_bytes_versioned(msg))
        signed = VersionedTransaction.populate(msg, signatures)
        if not all(signed.verify_with_results()):
            raise PermanentVenueError("solana: a signature of the swap transaction does not verify")
        return signed

    async def _report(self, rec: SwapRecord, req: OrderRequest | None) -> OrderReport:
        """The report of a landed attempt, from the transaction's balances."""
        signature = Signature.from_string(rec.signature)
        got = await self._call("getTransaction", lambda: self.rpc.transaction(signature))
        if got is None or got.transaction.meta is None:
            raise TemporaryVenueError(f"solana: {rec.signature} landed but this node has not got it yet")
        meta = got.transaction.meta
        try:
            fill = swap_fill(meta, self.wallet, self.base_mint, self.quote_mint)
        except ValueError as exc:
            raise PermanentVenueError(f"solana: {rec.signature}: {exc}") from None
        side = Side.BUY if rec.input_mint == self.quote_mint else Side.SELL
        fee = fill.fee_lamports / LAMPORTS_PER_SOL * await self._sol_in_quote()
        at_ns = rec.market_ts_ns if self.replay_clock else (int(got.block_time) * 1_000_000_000 if got.block_time
                                                            else rec.created_at_ns)  # fmt: skip
        typ = req.type if req is not None else OrderType.MARKET
        amount = req.amount if req is not None else fill.quantity(self.base_decimals)
        if meta.err is not None:
            code = reject_code(meta.err, _instructions(VersionedTransaction.from_bytes(rec.tx)), self.wallet)
            return OrderReport(rec.client_order_id, rec.signature, self.base_mint, side, typ, OrderStatus.REJECTED,
                               amount, 0.0, 0.0, fee, updated_at_ns=at_ns, venue_ref=bytes(signature),
                               fee_native=fill.fee_lamports, reject_code=code)  # fmt: skip
        qty = fill.quantity(self.base_decimals)
        price = fill.avg_price(self.base_decimals, self.quote_decimals)
        return OrderReport(rec.client_order_id, rec.signature, self.base_mint, side, typ,
                           OrderStatus.FILLED if qty > 0 else OrderStatus.REJECTED, amount, qty, price, fee,
                           updated_at_ns=at_ns, venue_ref=bytes(signature), fee_native=fill.fee_lamports)  # fmt: skip

    async def fetch_order(self, client_order_id: str, symbol: str, *, protective: bool = False) -> OrderReport | None:
        """The order's landed swap, or ``None`` once every attempt provably never landed.

        Raises:
            TemporaryVenueError: an attempt may still land (driven for ``lookup_wait_s`` first).
        """
        store, _ = self._records()
        found = await self._resolve(store.swaps(client_order_id), None, self.lookup_wait_s)
        if found is None or isinstance(found, OrderReport):
            return found
        raise TemporaryVenueError(f"solana: {found[0].signature} may still land: {found[1].why}")

    async def _resolve(self, records: list[SwapRecord], request: OrderRequest | None,
                       wait_s: float) -> OrderReport | tuple[SwapRecord, Pending] | None:  # fmt: skip
        """An order's journaled attempts, resolved: the report of one that landed (or landed and
        failed) — driving each still-signed one for up to ``wait_s`` — or the attempt that may still
        land with its verdict, or ``None`` when none may land."""
        _, sender = self._records()
        for rec in records:
            if rec.state in (SwapState.LANDED, SwapState.FAILED):
                return await self._report(rec, request)
        for rec in records:
            if rec.state is SwapState.SIGNED:
                verdict = await sender.drive(rec, wait_s=wait_s, first=False)
                if isinstance(verdict, Landed):
                    return await self._report(rec, request)
                if isinstance(verdict, Pending):
                    return rec, verdict
        return None

    async def cancel(self, client_order_id: str, symbol: str, *, protective: bool = False) -> OrderReport | None:
        """A swap cannot be cancelled: its final report, as :meth:`fetch_order`."""
        return await self.fetch_order(client_order_id, symbol)

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        """None: a swap never rests."""
        return []

    async def positions(self) -> list[PositionReport]:
        return []

    async def balances(self) -> dict[str, Balance]:
        """The base and quote token balances (keyed by mint) and SOL (``"SOL"``)."""
        out: dict[str, Balance] = {}
        for mint, account, decimals in ((self.base_mint, self.base_account, self.base_decimals),
                                        (self.quote_mint, self.quote_account, self.quote_decimals)):  # fmt: skip
            found = await self._call("getTokenAccountBalance", lambda a=account: self.rpc.token_balance(a))
            out[mint] = Balance(mint, (found[0] / 10**decimals) if found else 0.0, 0.0)
        lamports = await self._call("getBalance", lambda: self.rpc.lamports(self.keypair.pubkey()))
        out["SOL"] = Balance("SOL", lamports / LAMPORTS_PER_SOL, 0.0)
        return out

    async def mark_price(self, symbol: str) -> float | None:
        """The Price API's price of the base mint in the quote mint."""
        if symbol != self.base_mint:
            return None
        return await self._mark()

    async def _mark(self) -> float:
        prices = await self._call("price", lambda: self.jupiter.prices([self.base_mint, self.quote_mint]))
        base, quote = prices.get(self.base_mint), prices.get(self.quote_mint)
        if not base or not quote:
            raise PermanentVenueError(f"solana: no price for {self.base_mint} in {self.quote_mint}",
                                      RejectCode.NO_MARKET_DATA, Status.REJECTED)  # fmt: skip
        return base / quote

    async def _sol_in_quote(self) -> float:
        """Quote currency per SOL (for the fee), fetched at most every :data:`_FEE_PRICE_TTL_S`."""
        now = time.monotonic()
        if self._sol_price is not None and now - self._sol_price[1] < _FEE_PRICE_TTL_S:
            return self._sol_price[0]
        try:
            prices = await self._call("price", lambda: self.jupiter.prices([SOL_MINT, self.quote_mint]))
        except VenueError:
            if self._sol_price is not None:
                return self._sol_price[0]  # a stale price beats no fill report
            raise
        sol, quote = prices.get(SOL_MINT), prices.get(self.quote_mint)
        if not sol or not quote:
            if self._sol_price is not None:
                return self._sol_price[0]
            raise TemporaryVenueError(f"solana: no SOL price in {self.quote_mint} for the fee")
        self._sol_price = (sol / quote, now)
        return sol / quote

    async def _call(self, what: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        def on_retry(exc: BaseException) -> None:
            if self.metrics is not None:
                self.metrics.solana_rpc_retries.labels(call=what).inc()

        return await self.policy.call(fn, what=what, log=self.log, on_retry=on_retry)


def _instructions(tx: VersionedTransaction) -> list[tuple[str, frozenset[str]]]:
    """Each instruction of ``tx``, in order: its program id and its (static) accounts' addresses.
    Program ids and signers are always static keys; accounts from lookup tables are left out."""
    keys = list(tx.message.account_keys)
    return [(str(keys[ix.program_id_index]), frozenset(str(keys[i]) for i in bytes(ix.accounts) if i < len(keys)))
            for ix in tx.message.instructions]  # fmt: skip
