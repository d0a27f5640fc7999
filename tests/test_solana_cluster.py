"""The local Solana cluster and Jupiter-shaped swap service (testbed/solana), driven by the real
solana-py ``AsyncClient`` and real aiohttp HTTP on 127.0.0.1, and the ``solana-emulator`` plugin
running ``python -m testbed.solana`` as a real process."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import stat
import time
import urllib.request
from collections.abc import AsyncIterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
import pytest
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solana.rpc.models import TokenAccountOpts, TxOpts
from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.pubkey import Pubkey
from solders.rpc.errors import SendTransactionPreflightFailureMessage
from solders.signature import Signature
from solders.token.associated import get_associated_token_address
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    InstructionErrorCustom,
    TransactionConfirmationStatus,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
)

from foundation.barcsv import bundled_path, load_bars
from tandem.localvenue import local_venue
from testbed.solana import BASE_MINT, MAKER, QUOTE_MINT, SOL_MINT, LocalCluster, seeded
from testbed.solana_local import LocalSolana, reconcile

BARS = load_bars(bundled_path(), limit=120)
CASH = 10_000.0
SOL_LAMPORTS = 2 * 10**9
SPREAD = Fraction(2, 10_000)
SIG_FEE = 2 * 5000  # two signatures (user, maker), 5000 lamports each


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture
async def cl() -> AsyncIterator[LocalCluster]:
    """A cluster without a ticker: blocks come from ``chain.advance`` / ``/_emulator/blocks``."""
    async with LocalCluster(BARS, CASH, block_s=0) as c:
        c.chain.advance(5)
        yield c


@pytest.fixture
async def client(cl: LocalCluster) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(cl.rpc_url, commitment=Confirmed, timeout=5) as c:
        yield c


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


# ------------------------------------------------------------------------------------- helpers
async def get_quote(http: aiohttp.ClientSession, cl: LocalCluster, input_mint: Pubkey, output_mint: Pubkey,
                    amount: int, slippage_bps: int = 50) -> dict[str, Any]:  # fmt: skip
    params = {"inputMint": str(input_mint), "outputMint": str(output_mint), "amount": str(amount),
              "slippageBps": str(slippage_bps), "swapMode": "ExactIn"}  # fmt: skip
    async with http.get(cl.swap_url + "/quote", params=params) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def get_swap(http: aiohttp.ClientSession, cl: LocalCluster, quote: dict[str, Any],
                   cu_price: int = 0) -> tuple[VersionedTransaction, dict[str, Any]]:  # fmt: skip
    body = {"quoteResponse": quote, "userPublicKey": str(cl.user.pubkey()), "wrapAndUnwrapSol": False,
            "computeUnitPriceMicroLamports": cu_price}  # fmt: skip
    async with http.post(cl.swap_url + "/swap", json=body) as resp:
        assert resp.status == 200, await resp.text()
        out = await resp.json()
    return VersionedTransaction.from_bytes(base64.b64decode(out["swapTransaction"])), out


def user_signed(tx: VersionedTransaction, kp: Keypair) -> VersionedTransaction:
    """The user's signature put at its index (research p4): the maker's stays as it is."""
    i = list(tx.message.account_keys).index(kp.pubkey())
    sigs = list(tx.signatures)
    sigs[i] = kp.sign_message(to_bytes_versioned(tx.message))
    return VersionedTransaction.populate(tx.message, sigs)


async def signed_swap(http: aiohttp.ClientSession, cl: LocalCluster, usdc_in: int = 100 * 10**6,
                      cu_price: int = 0) -> tuple[VersionedTransaction, dict[str, Any], dict[str, Any]]:  # fmt: skip
    q = await get_quote(http, cl, QUOTE_MINT, BASE_MINT, usdc_in)
    tx, body = await get_swap(http, cl, q, cu_price)
    return user_signed(tx, cl.user), q, body


async def send(client: AsyncClient, tx: VersionedTransaction, preflight: bool = True) -> Signature:
    opts = TxOpts(skip_preflight=not preflight, skip_confirmation=True, preflight_commitment=Confirmed)
    return (await client.send_raw_transaction(bytes(tx), opts)).value


async def preflight_refusal(client: AsyncClient, tx: VersionedTransaction) -> SendTransactionPreflightFailureMessage:
    with pytest.raises(RPCException) as info:
        await send(client, tx)
    answer = info.value.args[0]
    assert isinstance(answer, SendTransactionPreflightFailureMessage), answer
    return answer


def token_deltas(meta: Any, owner: Pubkey) -> dict[str, int]:
    """Raw token changes of ``owner``'s accounts from pre/postTokenBalances."""
    out: dict[str, int] = {}
    for sign, balances in ((-1, meta.pre_token_balances), (1, meta.post_token_balances)):
        for b in balances:
            if b.owner == owner:
                out[str(b.mint)] = out.get(str(b.mint), 0) + sign * int(b.ui_token_amount.amount)
    return out


async def rpc_raw(http: aiohttp.ClientSession, cl: LocalCluster, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with http.post(cl.rpc_url, data=data, headers={"Content-Type": "application/json"}) as resp:
        return resp.status, await resp.json(content_type=None)


async def control(http: aiohttp.ClientSession, cl: LocalCluster, path: str, body: Any = None,
                  params: dict[str, str] | None = None) -> tuple[int, Any]:  # fmt: skip
    async with http.post(f"{cl.base_url}/_emulator/{path}", json=body, params=params) as resp:
        return resp.status, await resp.json()


def expected_buy(usdc_raw: int, price: float) -> int:
    return math.floor(Fraction(usdc_raw, 10**6) / (Fraction(repr(price)) * (1 + SPREAD)) * 10**8)


def expected_sell(base_raw: int, price: float) -> int:
    return math.floor(Fraction(base_raw, 10**8) * Fraction(repr(price)) * (1 - SPREAD) * 10**6)


def user_usdc(cl: LocalCluster) -> int:
    return cl.chain.token_amount(get_associated_token_address(cl.user.pubkey(), QUOTE_MINT))


def user_base(cl: LocalCluster) -> int:
    return cl.chain.token_amount(get_associated_token_address(cl.user.pubkey(), BASE_MINT))


# ------------------------------------------------------------------------------ happy swaps
async def test_buy_swap_lands_with_exact_deltas_and_fee(cl: LocalCluster, client: AsyncClient, http) -> None:
    """A buy: quote at the next open plus spread, maker-signed tx, user signs, preflight send,
    status, and getTransaction's token balances give the exact fill; the fee is charged in lamports."""
    usdc_in = 100 * 10**6
    q = await get_quote(http, cl, QUOTE_MINT, BASE_MINT, usdc_in, slippage_bps=50)
    out = expected_buy(usdc_in, BARS.open[0])
    assert q["outAmount"] == str(out) and q["inAmount"] == str(usdc_in)
    assert q["otherAmountThreshold"] == str(out * 9950 // 10_000)
    assert q["routePlan"][0]["swapInfo"]["label"] == "tandem-local-rfq" and q["priceImpactPct"] == "0.0001"
    assert q["contextSlot"] == cl.chain.height and q["swapMode"] == "ExactIn"

    tx, body = await get_swap(http, cl, q, cu_price=1_000)
    assert body["computeUnitLimit"] == 200_000 and body["prioritizationFeeLamports"] == 200  # ceil(1000*200000/1e6)
    assert body["lastValidBlockHeight"] == cl.chain.height + 150
    keys = list(tx.message.account_keys)
    assert keys[0] == cl.user.pubkey() and tx.signatures[0] == Signature.default()  # fee payer's slot left empty
    assert tx.verify_with_results()[keys.index(MAKER.pubkey())]  # the maker's signature is real

    signed = user_signed(tx, cl.user)
    sig = await send(client, signed)
    assert sig == signed.signatures[0]
    status = (await client.get_signature_statuses([sig])).value[0]
    assert status is not None and status.err is None and status.slot == cl.chain.height
    assert status.confirmation_status == TransactionConfirmationStatus.Confirmed

    got = (await client.get_transaction(sig, encoding="json", max_supported_transaction_version=0)).value
    meta = got.transaction.meta
    assert meta.err is None and meta.fee == SIG_FEE + 200
    assert token_deltas(meta, cl.user.pubkey()) == {str(QUOTE_MINT): -usdc_in, str(BASE_MINT): out}
    assert token_deltas(meta, MAKER.pubkey()) == {str(QUOTE_MINT): usdc_in, str(BASE_MINT): -out}
    assert meta.pre_balances[0] - meta.post_balances[0] == meta.fee
    assert (await client.get_balance(cl.user.pubkey())).value == SOL_LAMPORTS - meta.fee
    bal = (await client.get_token_account_balance(get_associated_token_address(cl.user.pubkey(), BASE_MINT))).value
    assert bal.amount == str(out) and bal.decimals == 8
    accounts = (await client.get_token_accounts_by_owner_json_parsed(
        cl.user.pubkey(), TokenAccountOpts(mint=QUOTE_MINT))).value  # fmt: skip
    assert [a.account.data.parsed["info"]["tokenAmount"]["amount"] for a in accounts] == [str(10_000 * 10**6 - usdc_in)]
    state = cl.state()
    assert state["user"]["base_raw"] == out and state["landed"] == [
        {"signature": str(sig), "err": None, "fee": SIG_FEE + 200, "slot": status.slot}]


async def test_sell_swap_after_buy(cl: LocalCluster, client: AsyncClient, http) -> None:
    """A sell of the bought base pays USDC at the next open minus spread, exactly."""
    signed, q, _ = await signed_swap(http, cl)
    await send(client, signed)
    base = int(q["outAmount"])
    q2 = await get_quote(http, cl, BASE_MINT, QUOTE_MINT, base)
    usdc_out = expected_sell(base, BARS.open[0])
    assert q2["outAmount"] == str(usdc_out)
    tx, _ = await get_swap(http, cl, q2)
    sig = await send(client, user_signed(tx, cl.user))
    meta = (await client.get_transaction(sig, max_supported_transaction_version=0)).value.transaction.meta
    assert meta.err is None and meta.fee == SIG_FEE
    assert token_deltas(meta, cl.user.pubkey()) == {str(BASE_MINT): -base, str(QUOTE_MINT): usdc_out}
    assert user_base(cl) == 0 and user_usdc(cl) == 10_000 * 10**6 - 100 * 10**6 + usdc_out


async def test_dynamic_compute_unit_limit_sets_the_simulated_units(cl: LocalCluster, client: AsyncClient, http) -> None:
    """dynamicComputeUnitLimit: the limit is the simulated units * 1.2 (rounded up) and the priority fee follows it."""
    q = await get_quote(http, cl, QUOTE_MINT, BASE_MINT, 10**6)
    body = {"quoteResponse": q, "userPublicKey": str(cl.user.pubkey()), "computeUnitPriceMicroLamports": 50_000,
            "dynamicComputeUnitLimit": True}  # fmt: skip
    async with http.post(cl.swap_url + "/swap", json=body) as resp:
        out = await resp.json()
    limit = out["computeUnitLimit"]
    assert out["simulationError"] is None and 0 < limit < 200_000
    assert out["prioritizationFeeLamports"] == math.ceil(50_000 * limit / 10**6)
    tx = VersionedTransaction.from_bytes(base64.b64decode(out["swapTransaction"]))
    sig = await send(client, user_signed(tx, cl.user))
    meta = (await client.get_transaction(sig, max_supported_transaction_version=0)).value.transaction.meta
    assert meta.err is None and meta.fee == SIG_FEE + out["prioritizationFeeLamports"]
    assert meta.compute_units_consumed <= limit


async def test_token_account_balance_of_a_missing_account(client: AsyncClient) -> None:
    """getTokenAccountBalance of an account that does not exist: agave's "Invalid param: could not find account"."""
    with pytest.raises(RPCException) as info:
        await client.get_token_account_balance(Keypair().pubkey())
    assert "Invalid param: could not find account" in str(info.value)


async def test_resending_landed_bytes_never_executes_twice(cl: LocalCluster, client: AsyncClient, http) -> None:
    """The same bytes again: preflight says AlreadyProcessed (not sent), skipPreflight returns the
    signature; the swap is counted once."""
    signed, q, _ = await signed_swap(http, cl)
    sig = await send(client, signed)
    cl.chain.advance()
    refusal = await preflight_refusal(client, signed)
    assert refusal.data.err == TransactionErrorFieldless.AlreadyProcessed
    assert refusal.message == "Transaction simulation failed: This transaction has already been processed"
    assert await send(client, signed, preflight=False) == sig
    assert user_base(cl) == int(q["outAmount"]) and len(cl.chain.landed) == 1
    assert cl.state()["sends"] == {str(sig): 3}


async def test_statuses_finalize_at_32_blocks_and_leave_the_recent_cache(cl: LocalCluster, client: AsyncClient,
                                                                          http) -> None:  # fmt: skip
    """confirmed with confirmations = depth, finalized (confirmations null) once 32 deep; without
    searchTransactionHistory a status older than 300 slots is null."""
    signed, _, _ = await signed_swap(http, cl)
    sig = await send(client, signed)
    cl.chain.advance(31)
    st = (await client.get_signature_statuses([sig])).value[0]
    assert st.confirmation_status == TransactionConfirmationStatus.Confirmed and st.confirmations == 31
    cl.chain.advance(1)
    st = (await client.get_signature_statuses([sig])).value[0]
    assert st.confirmation_status == TransactionConfirmationStatus.Finalized and st.confirmations is None
    cl.chain.advance(300 - 32 + 1)
    assert (await client.get_signature_statuses([sig])).value == [None]
    st = (await client.get_signature_statuses([sig], search_transaction_history=True)).value[0]
    assert st is not None and st.confirmation_status == TransactionConfirmationStatus.Finalized


# ----------------------------------------------------------------------------------- faults
async def test_drop_sends_answers_but_never_lands_that_send(cl: LocalCluster, client: AsyncClient, http) -> None:
    """drop_sends: the signature comes back, nothing lands; a resend of the same bytes lands once."""
    status, body = await control(http, cl, "faults", {"drop_sends": 1})
    assert status == 200 and body["faults"]["drop_sends"] == 1
    signed, q, _ = await signed_swap(http, cl)
    sig = await send(client, signed)
    assert sig == signed.signatures[0]
    await control(http, cl, "blocks", params={"n": "3"})
    assert (await client.get_signature_statuses([sig], search_transaction_history=True)).value == [None]
    assert user_base(cl) == 0 and cl.faults.drop_sends == 0
    assert await send(client, signed, preflight=False) == sig
    status_after = (await client.get_signature_statuses([sig], search_transaction_history=True)).value[0]
    assert status_after is not None and status_after.err is None
    assert user_base(cl) == int(q["outAmount"])


async def test_never_land_expires_after_last_valid_block_height(http) -> None:
    """never_land with real 20 ms blocks: re-sends never land; once the height passes
    lastValidBlockHeight the status is still null and preflight answers BlockhashNotFound."""
    async with LocalCluster(BARS, CASH, block_s=0.02) as cl, AsyncClient(cl.rpc_url, commitment=Confirmed,
                                                                         timeout=5) as client:  # fmt: skip
        await control(http, cl, "faults", {"never_land": 1})
        signed, _, body = await signed_swap(http, cl)
        last_valid = body["lastValidBlockHeight"]
        sig = await send(client, signed)
        deadline = time.monotonic() + 20
        height = 0
        while height <= last_valid:
            assert time.monotonic() < deadline, f"height {height} never passed {last_valid}"
            assert await send(client, signed, preflight=False) == sig
            height = (await client.get_epoch_info()).value.block_height
            await asyncio.sleep(0.1)
        assert (await client.get_signature_statuses([sig], search_transaction_history=True)).value == [None]
        refusal = await preflight_refusal(client, signed)
        assert refusal.data.err == TransactionErrorFieldless.BlockhashNotFound
        assert refusal.message == "Transaction simulation failed: Blockhash not found"
        _, valid = await rpc_raw(http, cl, {"jsonrpc": "2.0", "id": 1, "method": "isBlockhashValid",
                                            "params": [str(signed.message.recent_blockhash)]})  # fmt: skip
        assert valid["result"]["value"] is False
        state = cl.state()
        assert state["landed"] == [] and state["sends"][str(sig)] >= 3 and state["faults"]["cursed"] == [str(sig)]
        assert user_usdc(cl) == 10_000 * 10**6 and cl.chain.lamports(cl.user.pubkey()) == SOL_LAMPORTS
        fresh, q, _ = await signed_swap(http, cl)  # the count was one signature: the next one lands
        await send(client, fresh)
        assert user_base(cl) == int(q["outAmount"])


async def test_fail_swaps_lands_failed_with_fee_and_no_tokens_moved(cl: LocalCluster, client: AsyncClient, http) -> None:
    """fail_swaps: preflight passes, the transaction lands with the maker leg's Token
    InsufficientFunds (Custom 1), the fee is charged and no token moves."""
    await control(http, cl, "faults", {"fail_swaps": 1})
    signed, _, _ = await signed_swap(http, cl)
    sig = await send(client, signed)  # preflight (honest state) passes
    status = (await client.get_signature_statuses([sig])).value[0]
    failure = TransactionErrorInstructionError(2, InstructionErrorCustom(1))  # [cu limit, user leg, maker leg]
    assert status is not None and status.err == failure
    meta = (await client.get_transaction(sig, max_supported_transaction_version=0)).value.transaction.meta
    assert meta.err == failure and meta.fee == SIG_FEE
    assert set(token_deltas(meta, cl.user.pubkey()).values()) == {0}
    assert set(token_deltas(meta, MAKER.pubkey()).values()) == {0}
    assert (await client.get_balance(cl.user.pubkey())).value == SOL_LAMPORTS - SIG_FEE
    assert user_usdc(cl) == 10_000 * 10**6 and user_base(cl) == 0
    assert cl.state()["landed"][0]["err"] == "Error processing Instruction 2: custom program error: 0x1"
    _, raw = await rpc_raw(http, cl, {"jsonrpc": "2.0", "id": 1, "method": "getSignatureStatuses", "params": [[str(sig)]]})
    err_json = {"InstructionError": [2, {"Custom": 1}]}
    assert raw["result"]["value"][0]["err"] == err_json and raw["result"]["value"][0]["status"] == {"Err": err_json}
    same, _, _ = await signed_swap(http, cl)
    assert same.signatures[0] == sig  # same quote, same block: byte-identical transaction (deterministic ed25519)
    cl.chain.advance()
    again, q, _ = await signed_swap(http, cl)
    await send(client, again)
    assert user_base(cl) == int(q["outAmount"])  # the maker got its inventory back; the count was one


async def test_http_429_and_500(cl: LocalCluster, client: AsyncClient, http) -> None:
    """http_429 / http_500 answer the next RPC or swap requests; the price API and control routes are not counted."""
    await control(http, cl, "faults", {"http_429": 2, "http_500": 1})
    with pytest.raises(SolanaRpcException) as info:
        await client.get_block_height()
    assert isinstance(info.value.__cause__, httpx2.HTTPStatusError)
    assert info.value.__cause__.response.status_code == 429
    async with http.get(cl.price_url, params={"ids": str(QUOTE_MINT)}) as resp:
        assert resp.status == 200
    async with http.get(cl.swap_url + "/quote", params={"inputMint": str(QUOTE_MINT)}) as resp:
        assert resp.status == 429 and (await resp.json())["error"] == "Too many requests"
    with pytest.raises(SolanaRpcException) as info:
        await client.get_epoch_info()
    assert info.value.__cause__.response.status_code == 500
    assert (await client.get_block_height()).value == cl.chain.height


async def test_lag_blocks_hides_recent_heights_statuses_and_balances(cl: LocalCluster, client: AsyncClient,
                                                                     http) -> None:  # fmt: skip
    """lag_blocks K: heights, slots, context slots, statuses, transactions and balances are those of K blocks ago."""
    signed, q, _ = await signed_swap(http, cl)
    h = cl.chain.height
    sig = await send(client, signed)
    await control(http, cl, "faults", {"lag_blocks": 2})
    statuses = await client.get_signature_statuses([sig], search_transaction_history=True)
    assert statuses.value == [None] and statuses.context.slot == h - 2
    info = (await client.get_epoch_info()).value
    assert info.absolute_slot == info.block_height == h - 2
    assert (await client.get_block_height()).value == h - 2 and (await client.get_slot()).value == h - 2
    assert (await client.get_transaction(sig, max_supported_transaction_version=0)).value is None
    lb = await client.get_latest_blockhash()
    assert lb.context.slot == h - 2 and lb.value.last_valid_block_height == h - 2 + 150
    assert lb.value.blockhash == cl.chain.blockhash_at(h - 2)
    usdc = await client.get_token_account_balance(get_associated_token_address(cl.user.pubkey(), QUOTE_MINT))
    assert usdc.value.amount == str(10_000 * 10**6) and usdc.context.slot == h - 2  # before the swap
    cl.chain.advance(2)
    status = (await client.get_signature_statuses([sig])).value[0]
    assert status is not None and status.slot == h and status.confirmations == 0
    assert user_base(cl) == int(q["outAmount"]) and cl.state()["height"] == h + 2


async def test_stall_sends_holds_without_landing(cl: LocalCluster, client: AsyncClient, http) -> None:
    """stall_sends: no answer (the client times out) and nothing lands; solana-py would itself
    resend a timed-out request once (max_transport_retries=1 by default), so 0 is used here."""
    await control(http, cl, "faults", {"stall_sends": 1})
    signed, _, _ = await signed_swap(http, cl)
    async with AsyncClient(cl.rpc_url, commitment=Confirmed, timeout=0.5, max_transport_retries=0) as short:
        with pytest.raises(SolanaRpcException) as info:
            await send(short, signed)
    assert isinstance(info.value.__cause__, httpx2.TimeoutException)
    statuses = await client.get_signature_statuses([signed.signatures[0]], search_transaction_history=True)
    assert statuses.value == [None] and cl.chain.landed == {}
    assert cl.state()["sends"] == {str(signed.signatures[0]): 1}


async def test_stall_sends_is_resent_by_solana_py_default_retry(cl: LocalCluster, http) -> None:
    """A quirk to know: with solana-py's default max_transport_retries=1 a timed-out sendTransaction
    is posted again by the client itself, so one stalled send still lands (two sends counted)."""
    await control(http, cl, "faults", {"stall_sends": 1})
    signed, q, _ = await signed_swap(http, cl)
    async with AsyncClient(cl.rpc_url, commitment=Confirmed, timeout=1.0) as short:
        assert await send(short, signed) == signed.signatures[0]
    assert cl.state()["sends"] == {str(signed.signatures[0]): 2} and user_base(cl) == int(q["outAmount"])


async def test_stall_after_land_lands_then_holds(cl: LocalCluster, client: AsyncClient, http) -> None:
    """stall_after_land: the transaction lands, the answer never comes."""
    await control(http, cl, "faults", {"stall_after_land": 1})
    signed, q, _ = await signed_swap(http, cl)
    async with AsyncClient(cl.rpc_url, commitment=Confirmed, timeout=0.5, max_transport_retries=0) as short:
        with pytest.raises(SolanaRpcException) as info:
            await send(short, signed)
    assert isinstance(info.value.__cause__, httpx2.TimeoutException)
    status = (await client.get_signature_statuses([signed.signatures[0]])).value[0]
    assert status is not None and status.err is None
    assert user_base(cl) == int(q["outAmount"]) and cl.faults.stall_after_land == 0


async def test_insufficient_funds_refused_at_preflight(cl: LocalCluster, client: AsyncClient, http) -> None:
    """/_emulator/balance: too little USDC → preflight refuses with Token InsufficientFunds and
    nothing lands; too little SOL for the fee → InsufficientFundsForFee, and skipPreflight drops it uncharged."""
    status, body = await control(http, cl, "balance", {"usdc": 5 * 10**6})
    assert status == 200 and body["usdc_raw"] == 5 * 10**6 and body["sol_lamports"] == SOL_LAMPORTS
    signed, _, _ = await signed_swap(http, cl, usdc_in=100 * 10**6)
    refusal = await preflight_refusal(client, signed)
    assert refusal.data.err == TransactionErrorInstructionError(1, InstructionErrorCustom(1))  # the user's leg
    assert refusal.message == "Transaction simulation failed: Error processing Instruction 1: custom program error: 0x1"
    assert "Program log: Error: insufficient funds" in refusal.data.logs
    assert cl.chain.landed == {} and user_usdc(cl) == 5 * 10**6

    _, body = await control(http, cl, "balance", {"usdc": 10_000 * 10**6, "sol": 1_000})
    assert body["sol_lamports"] == 1_000
    signed, _, _ = await signed_swap(http, cl)
    refusal = await preflight_refusal(client, signed)
    assert refusal.data.err == TransactionErrorFieldless.InsufficientFundsForFee
    assert await send(client, signed, preflight=False) == signed.signatures[0]
    assert cl.chain.landed == {} and cl.chain.lamports(cl.user.pubkey()) == 1_000


async def test_unsigned_transaction_is_refused_or_dropped(cl: LocalCluster, client: AsyncClient, http) -> None:
    """The swap transaction as served (the user's slot empty): preflight answers -32003, skipPreflight never lands it."""
    q = await get_quote(http, cl, QUOTE_MINT, BASE_MINT, 10**6)
    tx, _ = await get_swap(http, cl, q)
    with pytest.raises(RPCException) as info:
        await send(client, tx)
    assert "TransactionSignatureVerificationFailure" in str(info.value)
    assert await send(client, tx, preflight=False) == tx.signatures[0]
    assert cl.chain.landed == {}


# ---------------------------------------------------------------------------- RPC and clock
async def test_epoch_info_height_and_slot_agree(cl: LocalCluster, client: AsyncClient, http) -> None:
    """getEpochInfo's absoluteSlot == blockHeight == getBlockHeight == getSlot, before and after blocks."""
    for _ in range(2):
        info = (await client.get_epoch_info()).value
        h = cl.chain.height
        assert (info.absolute_slot, info.block_height, info.slot_index, info.slots_in_epoch) == (h, h, h, 432_000)
        assert (await client.get_block_height()).value == h == (await client.get_slot()).value
        status, body = await control(http, cl, "blocks", params={"n": "40"})
        assert status == 200 and body["height"] == h + 40


async def test_ticker_produces_blocks() -> None:
    """With --block-s the height grows on its own."""
    async with LocalCluster(BARS, CASH, block_s=0.02) as cl:
        start, deadline = cl.chain.height, time.monotonic() + 10
        while cl.chain.height < start + 5:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert cl.state()["slot"] == cl.chain.height


async def test_replay_clock_never_goes_back_and_prices_follow_it(cl: LocalCluster, http) -> None:
    """/_emulator/advance: a quote trades at the first open at or after the clock; an earlier time is
    ignored; after the last bar there is no market."""
    ts = list(BARS.ts_ms)
    status, body = await control(http, cl, "advance", params={"ts_ms": str(ts[10] + 1)})
    assert status == 200 and body == {"clock_ms": ts[10] + 1}
    status, body = await control(http, cl, "advance", params={"ts_ms": str(ts[3])})
    assert body == {"clock_ms": ts[10] + 1}  # never backwards
    q = await get_quote(http, cl, QUOTE_MINT, BASE_MINT, 10**9)
    assert q["outAmount"] == str(expected_buy(10**9, BARS.open[11]))
    await control(http, cl, "advance", params={"ts_ms": str(ts[-1] + 1)})
    async with http.get(cl.swap_url + "/quote", params={"inputMint": str(QUOTE_MINT), "outputMint": str(BASE_MINT),
                                                        "amount": "1000000"}) as resp:  # fmt: skip
        assert resp.status == 400
        assert await resp.json() == {"error": "no market data at the clock", "errorCode": "NO_MARKET_DATA"}
    status, body = await control(http, cl, "advance", params={"ts_ms": "soon"})
    assert status == 400 and "ts_ms" in body["error"]


async def test_price_endpoint_marks_at_last_replayed_close(cl: LocalCluster, http) -> None:
    """Price API v3: base at the last replayed close (first open before any bar), USDC 1.0, SOL at
    --sol-usd, unknown mints left out."""
    ids = ",".join([str(BASE_MINT), str(QUOTE_MINT), str(SOL_MINT), str(Keypair().pubkey())])
    async with http.get(cl.price_url, params={"ids": ids}) as resp:
        body = await resp.json()
    assert body == {
        str(BASE_MINT): {"usdPrice": BARS.open[0], "blockId": cl.chain.height, "decimals": 8, "priceChange24h": 0.0},
        str(QUOTE_MINT): {"usdPrice": 1.0, "blockId": cl.chain.height, "decimals": 6, "priceChange24h": 0.0},
        str(SOL_MINT): {"usdPrice": 150.0, "blockId": cl.chain.height, "decimals": 9, "priceChange24h": 0.0},
    }
    for clock, close in ((BARS.ts_ms[3], BARS.close[2]), (BARS.ts_ms[3] + 1, BARS.close[3])):
        await control(http, cl, "advance", params={"ts_ms": str(clock)})
        async with http.get(cl.price_url, params={"ids": str(BASE_MINT)}) as resp:
            assert (await resp.json())[str(BASE_MINT)]["usdPrice"] == close
    async with http.get(cl.price_url) as resp:
        assert resp.status == 400 and (await resp.json())["errorCode"] == "INVALID_REQUEST"


async def test_api_key_guards_the_swap_routes(http) -> None:
    """--api-key: quote and swap need x-api-key (401 JSON otherwise); the price API does not."""
    async with LocalCluster(BARS, CASH, block_s=0, api_key="sekrit") as cl:
        params = {"inputMint": str(QUOTE_MINT), "outputMint": str(BASE_MINT), "amount": "1000000"}
        async with http.get(cl.swap_url + "/quote", params=params) as resp:
            assert resp.status == 401 and (await resp.json())["errorCode"] == "UNAUTHORIZED"
        async with http.get(cl.swap_url + "/quote", params=params, headers={"x-api-key": "wrong"}) as resp:
            assert resp.status == 401
        async with http.get(cl.swap_url + "/quote", params=params, headers={"x-api-key": "sekrit"}) as resp:
            assert resp.status == 200
            q = await resp.json()
        body = {"quoteResponse": q, "userPublicKey": str(cl.user.pubkey())}
        async with http.post(cl.swap_url + "/swap", json=body) as resp:
            assert resp.status == 401
        async with http.post(cl.swap_url + "/swap", json=body, headers={"x-api-key": "sekrit"}) as resp:
            assert resp.status == 200 and "swapTransaction" in await resp.json()
        async with http.get(cl.price_url, params={"ids": str(QUOTE_MINT)}) as resp:
            assert resp.status == 200


async def test_malformed_requests_get_clear_errors(cl: LocalCluster, http) -> None:
    """Bad JSON-RPC bodies answer JSON-RPC errors (never a 500); bad swap/control input answers 400 JSON."""
    assert await rpc_raw(http, cl, b"{not json") == (
        200, {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None})
    assert (await rpc_raw(http, cl, []))[1]["error"]["code"] == -32600
    assert (await rpc_raw(http, cl, {"method": "getSlot", "id": 3}))[1]["error"]["code"] == -32600  # no "jsonrpc"
    status, body = await rpc_raw(http, cl, {"jsonrpc": "2.0", "id": 4, "method": "getBlocksWithLimit"})
    assert status == 200 and body == {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": 4}
    _, body = await rpc_raw(http, cl, {"jsonrpc": "2.0", "id": 5, "method": "getBalance", "params": ["not-a-key"]})
    assert body["error"]["code"] == -32602 and "not-a-key" in body["error"]["message"]
    for bad_params in (["AAAA", {"encoding": "base64"}], ["A" * 200, {"encoding": "base64"}], ["0OIl"]):
        _, body = await rpc_raw(http, cl, {"jsonrpc": "2.0", "id": 6, "method": "sendTransaction", "params": bad_params})
        assert body["error"]["code"] == -32602, bad_params  # undecodable, unsanitary, not base58
    _, body = await rpc_raw(http, cl, {"jsonrpc": "2.0", "id": 6, "method": "isBlockhashValid", "params": ["x"]})
    assert body["error"]["code"] == -32602
    _, body = await rpc_raw(http, cl, [{"jsonrpc": "2.0", "id": 7, "method": "getHealth"},
                                       {"jsonrpc": "2.0", "id": 8, "method": "getSlot"}])  # fmt: skip
    assert body == [{"jsonrpc": "2.0", "result": "ok", "id": 7}, {"jsonrpc": "2.0", "result": cl.chain.height, "id": 8}]

    q = await get_quote(http, cl, QUOTE_MINT, BASE_MINT, 10**6)
    for params, code in (({"inputMint": str(QUOTE_MINT), "outputMint": str(BASE_MINT), "amount": "0"}, "INVALID_AMOUNT"),
                         ({"inputMint": str(QUOTE_MINT), "outputMint": str(SOL_MINT), "amount": "5"}, "TOKEN_NOT_TRADABLE"),
                         ({"inputMint": "xyz", "outputMint": str(BASE_MINT), "amount": "5"}, "INVALID_REQUEST")):  # fmt: skip
        async with http.get(cl.swap_url + "/quote", params=params) as resp:
            assert resp.status == 400 and (await resp.json())["errorCode"] == code
    altered = q | {"outAmount": str(int(q["outAmount"]) * 2)}
    async with http.post(cl.swap_url + "/swap", json={"quoteResponse": altered,
                                                      "userPublicKey": str(cl.user.pubkey())}) as resp:  # fmt: skip
        assert resp.status == 400 and (await resp.json())["errorCode"] == "INVALID_QUOTE"
    async with http.post(cl.swap_url + "/swap", data=b"[") as resp:
        assert resp.status == 400 and (await resp.json())["errorCode"] == "INVALID_REQUEST"
    status, body = await control(http, cl, "faults", {"drop_everything": 1})
    assert status == 400 and "unknown fault" in body["error"]
    status, body = await control(http, cl, "balance", {"usdc": -1})
    assert status == 400 and "usdc" in body["error"]


async def test_get_transaction_needs_max_supported_version_for_v0(cl: LocalCluster, client: AsyncClient, http) -> None:
    """getTransaction of a v0 swap without maxSupportedTransactionVersion answers agave's -32015."""
    signed, _, _ = await signed_swap(http, cl)
    sig = await send(client, signed)
    _, body = await rpc_raw(http, cl, {"jsonrpc": "2.0", "id": 1, "method": "getTransaction",
                                       "params": [str(sig), {"encoding": "json"}]})  # fmt: skip
    assert body["error"]["code"] == -32015 and "maxSupportedTransactionVersion" in body["error"]["message"]
    _, body = await rpc_raw(http, cl, {"jsonrpc": "2.0", "id": 2, "method": "getTransaction",
                                       "params": [str(sig), {"encoding": "json", "maxSupportedTransactionVersion": 0}]})
    result = body["result"]
    assert result["version"] == 0 and result["meta"]["status"] == {"Ok": None}
    assert result["transaction"]["signatures"][0] == str(sig)


# ----------------------------------------------------------------------------------- plugin
def test_fixed_identities_are_deterministic() -> None:
    """Mints and maker come from sha256 seeds: the plugin's instrument() needs nothing running."""
    assert LocalSolana.instrument("anything") == str(BASE_MINT) == str(seeded("base-mint").pubkey())
    assert local_venue("solana-emulator") is LocalSolana
    assert len({str(BASE_MINT), str(QUOTE_MINT), str(MAKER.pubkey())}) == 3


def test_plugin_runs_the_cluster_as_a_process(tmp_path: Path) -> None:
    """start() runs python -m testbed.solana: ready line, 0600 keypair of 64 bytes, state over
    HTTP, reconcile against a hand-made ledger, clean exit on SIGTERM."""
    with pytest.raises(ValueError, match="no kline stream"):
        LocalSolana.start(tmp_path, bundled_path(), 60, 1_000.0, "binance", stream={"start": 0, "bars_per_s": 1})
    venue = LocalSolana.start(tmp_path, bundled_path(), 60, 1_000.0, "binance")
    try:
        keyfile = tmp_path / "solana-keypair.json"
        assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
        secret = json.loads(keyfile.read_text())
        assert len(secret) == 64 and all(0 <= b <= 255 for b in secret)
        user = Keypair.from_bytes(bytes(secret)).pubkey()
        ready = venue.cluster.ready
        assert ready["event"] == "solana_ready" and ready["user"] == str(user) and ready["base_mint"] == str(BASE_MINT)
        assert ready["sol_mint"] == str(SOL_MINT) and ready["maker"] == str(MAKER.pubkey())
        settings = venue.executor_settings()
        assert settings == {"venue": "solana-emulator", "solana_rpc_url": f"http://127.0.0.1:{ready['port']}/",
                            "swap_api_url": f"http://127.0.0.1:{ready['port']}/swap/v1",
                            "price_api_url": f"http://127.0.0.1:{ready['port']}/price/v3",
                            "solana_keypair_file": str(keyfile), "quote_mint": str(QUOTE_MINT),
                            "emulator_port": ready["port"]}  # fmt: skip
        assert venue.brain_settings() == {"exchange_stops": False} and venue.running()
        request = urllib.request.Request(settings["solana_rpc_url"], method="POST", headers={"Content-Type": "application/json"},
                                         data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getHealth"}).encode())  # fmt: skip
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=5) as resp:
            assert json.loads(resp.read())["result"] == "ok"
        account = venue.account()
        assert account["user"] == {"pubkey": str(user), "sol_lamports": SOL_LAMPORTS, "usdc_raw": 1_000 * 10**6,
                                   "base_raw": 0}  # fmt: skip
        assert account["clock_ms"] == BARS.ts_ms[0] and account["landed"] == []
        ledger = {"cash": 1_000.0, "positions": {}, "quote_balance": 1_000.0, "native_fees": 0,
                  "starting_sol_lamports": SOL_LAMPORTS}  # fmt: skip
        rec = venue.reconcile(account, ledger)
        assert rec["agrees"] and rec["exchange_cash"] == 1_000.0 and rec["sol_lamports"] == SOL_LAMPORTS
        assert not venue.reconcile(account, ledger | {"quote_balance": 999.0})["agrees"]
        assert venue.describe() == "solana-emulator (local cluster, Jupiter-shaped RFQ swaps; no stops on an AMM: the brain's exit plan protects positions)"
    finally:
        venue.stop()
    assert venue.cluster.proc.returncode == 0 and not venue.running()
    assert "solana.ready" in (tmp_path / "solana.log").read_text()


def test_reconcile_on_hand_made_snapshots() -> None:
    """reconcile(): USDC to 1e-6 against quote_balance, base to 1e-8 against the position, SOL exactly."""
    fee = SIG_FEE + 200
    account = {"user": {"pubkey": "x", "usdc_raw": 9_900 * 10**6, "base_raw": 215_850, "sol_lamports": SOL_LAMPORTS - fee}}
    ledger = {"cash": 9_899.97, "positions": {str(BASE_MINT): {"quantity": 0.0021585, "avg_cost": 46_328.0}},
              "quote_balance": 9_900.0, "native_fees": fee, "starting_sol_lamports": SOL_LAMPORTS}  # fmt: skip
    rec = reconcile(account, ledger)
    assert rec["agrees"] and rec["mismatches"] == []
    assert (rec["exchange_cash"], rec["exchange_position"], rec["ledger_cash"], rec["ledger_position"]) == (
        9_900.0, 0.0021585, 9_899.97, 0.0021585)
    assert rec["open_orders"] == 0 and rec["orphans"] == [] and rec["sol_lamports"] == SOL_LAMPORTS - fee
    assert reconcile(account, ledger | {"quote_balance": 9_900.0000009})["agrees"]  # within 1e-6 USDC
    off = [ledger | {"quote_balance": 9_900.000002},
           ledger | {"positions": {str(BASE_MINT): {"quantity": 0.00215852, "avg_cost": 1.0}}},
           ledger | {"native_fees": fee - 1},
           ledger | {"positions": {}}]
    for bad in off:
        result = reconcile(account, bad)
        assert not result["agrees"] and len(result["mismatches"]) == 1, result
