"""The Solana venue through the executor core, against the local cluster (issue #15 §3).

Real parts: the executor core and its SQLite journal, the Solana venue's solana-py ``AsyncClient``
and aiohttp client, and the local cluster (``testbed.solana.LocalCluster``: LiteSVM executing the
real SPL Token program, real signatures, real blockhash expiry) on loopback. Every test ends with
the checks the issue names: at most one landed swap per decision, the ledger equal to the on-chain
balances (USDC = the ledger's quote balance, base = its position, SOL = the start minus the
lamport fees it recorded), the confirmation's status, and the full signature in the journal with
its first 16 bytes in the confirmation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from solders.signature import Signature

from executor.core import ExecutorCore
from executor.orders import OrderOps, Unresolved
from executor.venue.replay_clock import advance_url_clock
from executor.venue.retry import RetryPolicy
from executor.venue.solana.jupiter import Jupiter
from executor.venue.solana.records import SwapState
from executor.venue.solana.rpc import Rpc
from executor.venue.solana.venue import SolanaVenue
from foundation.barcsv import bundled_path, load_bars
from protocol import (
    DecisionReason,
    ExecutionConfirmation,
    Instrument,
    Intent,
    RejectCode,
    Side,
    Status,
    TradeDecision,
)
from testbed.solana import BASE_MINT, QUOTE_MINT, LocalCluster

BARS = load_bars(bundled_path(), limit=200)
CASH = 10_000.0
MINT = Instrument.mint(str(BASE_MINT))
S = 1_000_000_000
FAST = RetryPolicy(attempts=5, deadline_s=3.0, base_s=0.01, cap_s=0.05)


@dataclass
class Rig:
    cl: LocalCluster
    venue: SolanaVenue
    core: ExecutorCore
    path: Path
    next_id: int = 1

    def decision(self, side: Side, intent: Intent, qty: float, bar: int, *, ttl_s: float = 30.0,
                 slippage_bps: int = 50) -> TradeDecision:  # fmt: skip
        now = time.time_ns()
        d = TradeDecision(
            decision_id=self.next_id, instrument=MINT, side=side, intent=intent, reason=DecisionReason.SIGNAL,
            quantity=qty, reference_price=BARS.close[bar - 1], max_slippage_bps=slippage_bps, created_at_ns=now,
            expires_at_ns=now + int(ttl_s * S), market_ts_ns=int(BARS.ts_ms[bar]) * 1_000_000,
        )  # fmt: skip
        self.next_id += 1
        return d

    async def decide(self, d: TradeDecision) -> ExecutionConfirmation:
        return (await self.core.on_decision(d, time.time_ns())).confirmation

    def agree(self) -> None:
        """Ledger = chain: USDC, base, SOL; at most one landed swap per order; every landing journaled."""
        user = self.cl.state()["user"]
        ledger = self.core.ledger
        assert user["usdc_raw"] / 1e6 == pytest.approx(ledger.quote_balance, abs=1e-6), (user, ledger.snapshot())
        assert user["base_raw"] / 1e8 == pytest.approx(ledger.position(MINT), abs=1e-12), (user, ledger.snapshot())
        assert user["sol_lamports"] == self.cl.sol_lamports - ledger.native_fees
        landed = {r["signature"] for r in self.cl.state()["landed"]}
        journaled = self.core.journal._conn.execute("SELECT client_order_id, signature, state FROM swaps").fetchall()
        per_order: dict[str, int] = {}
        for coid, sig, state in journaled:
            on_chain = sig in landed
            assert on_chain == (state in ("landed", "failed")), (sig, state)
            per_order[coid] = per_order.get(coid, 0) + on_chain
        assert all(n <= 1 for n in per_order.values()), per_order
        assert landed <= {sig for _, sig, _ in journaled}, "a landing the journal does not know"

    def signature_of(self, conf: ExecutionConfirmation) -> bytes:
        """The full reference journaled with ``conf``; its first 16 bytes are on the wire."""
        (full,) = self.core.journal._conn.execute(
            "SELECT venue_ref_full FROM confirmations WHERE decision_id = ?", (conf.decision_id,)).fetchone()  # fmt: skip
        assert len(full) == 64 and conf.venue_ref == full[:16] and conf.venue_ref_truncated
        return bytes(full)


def _note(what: str, rig: Rig, conf: ExecutionConfirmation, started: float) -> None:
    """One line for the closing note (``pytest -s``): the fault, the outcome and what it took."""
    attempts = [str(a.state) for a in rig.core.journal.swaps(rig.core.ids.order(conf.decision_id))]
    sends = sum(rig.cl.state()["sends"].values())
    print(f"SOLANA {what}: {conf.status.name}/{conf.reject_code.name}, attempts {attempts}, sends so far {sends}, "
          f"landed {len(rig.cl.state()['landed'])}, fee {conf.fee:.6f}, {time.monotonic() - started:.2f} s")


def _venue(cl: LocalCluster, **kw: object) -> SolanaVenue:
    venue = SolanaVenue(
        rpc=Rpc(cl.rpc_url, timeout_s=2.0), jupiter=Jupiter(cl.swap_url, cl.price_url, timeout_s=2.0), keypair=cl.user,
        base_mint=str(BASE_MINT), quote_mint=str(QUOTE_MINT), policy=FAST, poll_s=0.02,
        before_order=advance_url_clock(cl.base_url + "/_emulator/advance"), **kw,
    )  # fmt: skip
    venue.replay_clock = True
    return venue


async def _open(cl: LocalCluster, path: Path, **kw: object) -> ExecutorCore:
    venue = _venue(cl, **kw)
    ops = OrderOps(venue, FAST, absent_checks=1, absent_gap_s=0.01)
    return await ExecutorCore.open(path, venue, CASH, ops=ops)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with LocalCluster(BARS, CASH, block_s=0.02) as cl:
        path = tmp_path / "executor.sqlite"
        core = await _open(cl, path, confirm_timeout_s=5.0)
        try:
            yield Rig(cl, core.venue, core, path)  # type: ignore[arg-type]
        finally:
            await core.aclose()


async def test_a_buy_then_a_sell_fill_from_the_chain_with_their_fees(rig: Rig) -> None:
    """Happy path: each decision one landed swap, FILLED at the price the balances say, the
    lamport fee in quote at the SOL price; the ledger equals the chain."""
    t0 = time.monotonic()
    buy = await rig.decide(rig.decision(Side.BUY, Intent.OPEN, 0.05, 40))
    _note("happy buy", rig, buy, t0)
    assert buy.status is Status.FILLED and buy.executed_qty > 0
    price = BARS.open[40] * (1 + 2 / 1e4)  # the maker's 2 bps spread on the bar's open
    assert buy.avg_price == pytest.approx(price, rel=1e-6)
    assert buy.fee == pytest.approx(10_000 / 1e9 * 150.0)  # two signatures at SOL 150
    sig = rig.signature_of(buy)
    assert str(Signature.from_bytes(sig)) in {r["signature"] for r in rig.cl.state()["landed"]}
    sell = await rig.decide(rig.decision(Side.SELL, Intent.CLOSE, buy.executed_qty, 60))
    assert sell.status is Status.FILLED and sell.executed_qty == buy.executed_qty
    assert sell.avg_price == pytest.approx(BARS.open[60] * (1 - 2 / 1e4), rel=1e-6)
    assert rig.core.ledger.position(MINT) == 0.0 and rig.core.ledger.native_fees == 20_000
    rig.signature_of(sell)
    rig.agree()


async def test_a_retransmitted_decision_is_answered_from_the_journal(rig: Rig) -> None:
    d = rig.decision(Side.BUY, Intent.OPEN, 0.02, 40)
    first = await rig.decide(d)
    again = await rig.core.on_decision(d, time.time_ns())
    assert again.duplicate and again.confirmation == first
    assert len(rig.cl.state()["landed"]) == 1
    rig.agree()


async def test_two_identical_orders_in_one_block_are_two_transactions(tmp_path: Path) -> None:
    """The same swap under the same blockhash is byte for byte the same transaction: the second
    order would be taken for the first (AlreadyProcessed) and its fill counted twice. The venue
    waits for the next blockhash instead: two signatures, two landings, two fills."""
    async with LocalCluster(BARS, CASH, block_s=0) as cl:  # blocks only when the test says
        core = await _open(cl, tmp_path / "executor.sqlite", confirm_timeout_s=5.0)
        rig = Rig(cl, core.venue, core, tmp_path / "executor.sqlite")  # type: ignore[arg-type]
        try:
            first = await rig.decide(rig.decision(Side.BUY, Intent.OPEN, 0.02, 40))
            second = asyncio.ensure_future(rig.decide(rig.decision(Side.BUY, Intent.OPEN, 0.02, 40)))
            await asyncio.sleep(0.3)
            assert not second.done()  # waiting for a new blockhash, nothing sent
            assert len(cl.state()["landed"]) == 1
            cl.chain.advance(1)
            conf = await second
            assert first.status is conf.status is Status.FILLED
            assert rig.signature_of(first) != rig.signature_of(conf) and len(cl.state()["landed"]) == 2
            rig.agree()
        finally:
            await core.aclose()


async def test_sends_dropped_twice_land_once_on_a_resend(rig: Rig) -> None:
    rig.cl.faults.update({"drop_sends": 2})
    t0 = time.monotonic()
    conf = await rig.decide(rig.decision(Side.BUY, Intent.OPEN, 0.02, 40))
    _note("send dropped twice", rig, conf, t0)
    assert conf.status is Status.FILLED
    sig = str(Signature.from_bytes(rig.signature_of(conf)))
    assert rig.cl.state()["sends"][sig] >= 3 and len(rig.cl.state()["landed"]) == 1
    rig.agree()


async def test_a_transaction_that_never_lands_expires_and_a_second_one_fills_within_the_ttl(rig: Rig) -> None:
    """The first signature never lands; once the height is past its lastValidBlockHeight at a node
    that saw it, a new transaction is built (attempt 2) and lands. Never two landings."""
    rig.cl.faults.update({"never_land": 1})
    t0 = time.monotonic()
    conf = await rig.decide(rig.decision(Side.BUY, Intent.OPEN, 0.02, 40, ttl_s=60))
    _note("never lands, ttl 60 s (150 blocks of 0.02 s)", rig, conf, t0)
    assert conf.status is Status.FILLED
    attempts = rig.core.journal.swaps(rig.core.ids.order(conf.decision_id))
    assert [a.state for a in attempts] == [SwapState.EXPIRED, SwapState.LANDED]
    assert "last valid" in attempts[0].detail
    assert rig.signature_of(conf) == bytes(Signature.from_string(attempts[1].signature))
    rig.agree()


async def test_an_expiry_after_the_decisions_ttl_is_confirmed_expired(rig: Rig) -> None:
    rig.cl.faults.update({"never_land": 1})
    t0 = time.monotonic()
    conf = await rig.decide(rig.decision(Side.BUY, Intent.OPEN, 0.02, 40, ttl_s=1))
    _note("never lands, ttl 1 s", rig, conf, t0)
    assert (conf.status, conf.reject_code) == (Status.EXPIRED, RejectCode.EXPIRED)
    assert rig.cl.state()["landed"] == [] and rig.core.ledger.position(MINT) == 0.0
    rig.agree()


async def test_a_swap_that_lands_and_fails_is_rejected_with_its_fee(rig: Rig) -> None:
    """Landed with an instruction error: REJECTED with its reason, the fee paid (protocol v5), no
    token moved; the ledger's cash and SOL carry the fee."""
    rig.cl.faults.update({"fail_swaps": 1})
    t0 = time.monotonic()
    conf = await rig.decide(rig.decision(Side.BUY, Intent.OPEN, 0.02, 40))
    _note("landed but failed", rig, conf, t0)
    assert (conf.status, conf.reject_code) == (Status.REJECTED, RejectCode.VENUE_ERROR)
    assert conf.executed_qty == 0 and conf.fee == pytest.approx(10_000 / 1e9 * 150.0)
    rig.signature_of(conf)
    assert [r["err"] is not None for r in rig.cl.state()["landed"]] == [True]
    assert rig.core.ledger.cash == pytest.approx(CASH - conf.fee) and rig.core.ledger.native_fees == 10_000
    rig.agree()


async def test_rpc_429_and_500_are_retried_with_backoff(rig: Rig) -> None:
    rig.cl.faults.update({"http_429": 3, "http_500": 2})
    t0 = time.monotonic()
    conf = await rig.decide(rig.decision(Side.BUY, Intent.OPEN, 0.02, 40))
    _note("3 x 429 then 2 x 500", rig, conf, t0)
    assert conf.status is Status.FILLED and len(rig.cl.state()["landed"]) == 1
    rig.agree()


async def test_insufficient_usdc_or_sol_fails_at_preflight_with_nothing_paid(rig: Rig) -> None:
    for balance in ({"usdc": 1}, {"usdc": 10**12, "sol": 1_000}):
        await _set_balance(rig, balance)
        t0 = time.monotonic()
        conf = await rig.decide(rig.decision(Side.BUY, Intent.OPEN, 0.02, 40))
        _note(f"insufficient funds {balance}", rig, conf, t0)
        assert (conf.status, conf.reject_code) == (Status.FAILED, RejectCode.INSUFFICIENT_FUNDS), balance
        assert conf.fee == 0.0
    assert rig.cl.state()["landed"] == []
    attempts = [a for d in (1, 2) for a in rig.core.journal.swaps(rig.core.ids.order(d))]
    assert [a.state for a in attempts] == [SwapState.REFUSED, SwapState.REFUSED]


async def _set_balance(rig: Rig, body: dict[str, int]) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.post(rig.cl.base_url + "/_emulator/balance", json=body) as resp:
        assert resp.status == 200, await resp.text()


async def test_a_quote_worse_than_the_decision_allows_is_refused_before_signing(rig: Rig) -> None:
    """The entry's reference is 10 % below the bar it trades at: its 50 bps limit cannot be met, so
    nothing is signed or sent. An exit at the same distance is never refused."""
    d = rig.decision(Side.BUY, Intent.OPEN, 0.02, 40)
    d = TradeDecision(**{**{f: getattr(d, f) for f in d.__slots__ if f != "reference_price"},
                         "reference_price": BARS.open[40] * 0.9})  # fmt: skip
    conf = await rig.decide(d)
    assert (conf.status, conf.reject_code) == (Status.REJECTED, RejectCode.SLIPPAGE_EXCEEDED)
    assert rig.core.journal.swaps(rig.core.ids.order(d.decision_id)) == [] and rig.cl.state()["sends"] == {}
    bought = await rig.decide(rig.decision(Side.BUY, Intent.OPEN, 0.02, 41))
    exit_d = rig.decision(Side.SELL, Intent.CLOSE, bought.executed_qty, 42)
    exit_d = TradeDecision(**{**{f: getattr(exit_d, f) for f in exit_d.__slots__ if f != "reference_price"},
                              "reference_price": BARS.open[42] * 1.1})  # fmt: skip
    sold = await rig.decide(exit_d)
    assert sold.status is Status.FILLED and sold.slippage_over_limit
    rig.agree()


async def test_a_lagging_node_draws_no_conclusion_until_it_catches_up(tmp_path: Path) -> None:
    """A transaction that never lands, on a node that lags far behind: its height never passes the
    lastValidBlockHeight there, so nothing is concluded — the decision stays in flight (Unresolved)
    and no second transaction is built. Once the node catches up, the expiry is proven and the
    retransmitted decision fills with a second transaction."""
    async with LocalCluster(BARS, CASH, block_s=0.02) as cl:
        core = await _open(cl, tmp_path / "executor.sqlite", confirm_timeout_s=1.0)
        rig = Rig(cl, core.venue, core, tmp_path / "executor.sqlite")  # type: ignore[arg-type]
        try:
            cl.faults.update({"never_land": 1, "lag_blocks": 10_000})
            d = rig.decision(Side.BUY, Intent.OPEN, 0.02, 40, ttl_s=120)
            with pytest.raises(Unresolved):
                await rig.decide(d)
            await asyncio.sleep(3.5)  # the blockhash's 150 blocks at 0.02 s pass; the node still lags
            with pytest.raises(Unresolved):
                await rig.decide(d)
            attempts = core.journal.swaps(core.ids.order(d.decision_id))
            assert [a.state for a in attempts] == [SwapState.SIGNED], attempts
            cl.faults.update({"lag_blocks": 0})
            t0 = time.monotonic()
            conf = await rig.decide(d)
            _note("lagging node caught up (after 2 x Unresolved)", rig, conf, t0)
            assert conf.status is Status.FILLED
            assert [a.state for a in core.journal.swaps(core.ids.order(d.decision_id))] == [
                SwapState.EXPIRED, SwapState.LANDED]  # fmt: skip
            rig.agree()
        finally:
            await core.aclose()


async def test_a_restart_resumes_a_journaled_transaction_and_never_requotes(tmp_path: Path) -> None:
    """Killed after journaling, before the send went out (the send is held by the node and the
    task cancelled): the reopened executor finds the signed bytes in the journal and sends those —
    one landing, under the first signature; no second quote."""
    async with LocalCluster(BARS, CASH, block_s=0.02) as cl:
        path = tmp_path / "executor.sqlite"
        core = await _open(cl, path, confirm_timeout_s=5.0)
        rig = Rig(cl, core.venue, core, path)  # type: ignore[arg-type]
        d = rig.decision(Side.BUY, Intent.OPEN, 0.02, 40, ttl_s=60)
        cl.faults.update({"stall_sends": 1})
        task = asyncio.ensure_future(rig.decide(d))
        deadline = time.monotonic() + 5
        while cl.faults.stall_sends and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        task.cancel()  # the "kill": nothing after the journal write ran
        with pytest.raises(asyncio.CancelledError):
            await task
        [journaled] = core.journal.swaps(core.ids.order(d.decision_id))
        assert journaled.state is SwapState.SIGNED and cl.state()["landed"] == []
        await core.aclose()
        t0 = time.monotonic()
        again = await _open(cl, path, confirm_timeout_s=5.0)
        rig = Rig(cl, again.venue, again, path)  # type: ignore[arg-type]
        try:
            [outcome] = again.recovered
            _note("journaled then killed before the send; reopened", rig, outcome.confirmation, t0)
            assert outcome.confirmation.status is Status.FILLED
            assert rig.signature_of(outcome.confirmation) == bytes(Signature.from_string(journaled.signature))
            assert [a.state for a in again.journal.swaps(again.ids.order(d.decision_id))] == [SwapState.LANDED]
            rig.agree()
        finally:
            await again.aclose()
