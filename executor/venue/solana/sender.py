"""Sending one signed transaction exactly once: the same bytes until a verdict, never a second
transaction while the first may land.

:meth:`Sender.drive` takes a journaled attempt (:class:`~.records.SwapRecord`, already committed
in state ``signed``) and:

1. on its first send only, sends with **preflight**: a node that simulates the transaction and
   refuses it does not forward it, so the refusal proves it never lands → ``refused`` — except
   ``AlreadyProcessed`` (it landed already: look it up) and ``BlockhashNotFound`` (this node does
   not know the blockhash — it may lag behind the one that issued it): no conclusion;
2. then looks (``getEpochInfo``, then ``getSignatureStatuses`` with history) and judges
   (:func:`.outcome.judge`): ``landed`` / ``failed`` (a status, with or without an error),
   ``expired`` (past ``lastValidBlockHeight`` at a node that had seen that height), or no
   conclusion — on which it **re-sends the same bytes** (``skipPreflight``: the signature makes a
   second landing impossible) and looks again every ``poll_s``;
3. records the verdict in the journal before returning it, and returns :class:`~.outcome.Pending`
   when ``wait_s`` passes without one (a lagging node, an RPC that keeps failing): the caller then
   must not build another transaction for the order.

Every RPC read goes through the venue's :class:`~executor.venue.retry.RetryPolicy` (429 and 5xx
back off with jitter); a read that still fails is "no conclusion", never "expired". Public bots
have double-swapped by building a new transaction after ``confirmTransaction`` timed out while
the first was still valid, or by re-quoting after a restart; both are impossible here: a new
transaction is built only for an order whose every attempt is ``expired`` or ``refused``
(:mod:`.venue`), and the attempt is journaled before it is sent, so a restart finds it.

Time is injected (``clock``, ``sleep``) for tests; defaults ``time.monotonic`` and ``asyncio.sleep``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from solders.signature import Signature

from ..errors import TemporaryVenueError
from ..retry import RetryPolicy
from .outcome import Expired, Landed, Pending, judge
from .records import SwapRecord, SwapState, SwapStore
from .rpc import Rpc, SendRefused

__all__ = ["Refused", "Sender"]

_NO_CONCLUSION_AT_PREFLIGHT = frozenset({"AlreadyProcessed", "BlockhashNotFound"})


@dataclass(frozen=True, slots=True)
class Refused:
    """The node refused the first send at preflight: never broadcast. ``err``: the simulation's error."""

    err: Any
    message: str


def _err_name(err: Any) -> str:
    return str(err).rsplit(".", 1)[-1]


class Sender:
    """Drives journaled attempts to a verdict (module docstring).

    Args:
        rpc: the cluster. store: the journal (attempts are marked there).
        policy: retry policy for each RPC read.
        poll_s: pause between two looks (and re-sends).
        metrics: an object with ``solana_sends`` (labels ``kind``: first, resend) and
            ``solana_verdicts`` (``verdict``) counters and ``on_retry`` hook, or ``None``.
    """

    def __init__(self, rpc: Rpc, store: SwapStore, *, policy: RetryPolicy, poll_s: float, metrics: Any = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:  # fmt: skip
        self.rpc, self.store, self.policy, self.poll_s = rpc, store, policy, poll_s
        self.metrics, self.clock, self.sleep = metrics, clock, sleep
        self.log = structlog.get_logger("solana")

    def _count(self, name: str, **labels: str) -> None:
        if self.metrics is not None:
            getattr(self.metrics, name).labels(**labels).inc()

    async def _read(self, what: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        def on_retry(exc: BaseException) -> None:
            self._count("solana_rpc_retries", call=what)

        return await self.policy.call(fn, what=what, log=self.log, on_retry=on_retry)

    async def _send(self, rec: SwapRecord, *, preflight: bool) -> None:
        self._count("solana_sends", kind="first" if preflight else "resend")
        await self.rpc.send(rec.tx, preflight=preflight)

    async def drive(self, rec: SwapRecord, *, wait_s: float, first: bool) -> Landed | Expired | Refused | Pending:
        """Drive ``rec`` (journaled, state ``signed``) to a verdict within ``wait_s`` (module docstring).

        Raises:
            JournalError: the verdict could not be recorded (the caller stops; the journal still
                says ``signed``, so a restart drives it again).
        """
        log = self.log.bind(signature=rec.signature, client_order_id=rec.client_order_id, attempt=rec.attempt)
        if first:
            try:
                await self._send(rec, preflight=True)
            except SendRefused as refused:
                if _err_name(refused.err) not in _NO_CONCLUSION_AT_PREFLIGHT:
                    self.store.mark_swap(rec.signature, SwapState.REFUSED, refused.message[:500])
                    self._count("solana_verdicts", verdict="refused")
                    log.warning("swap_refused_at_preflight", error=str(refused.err), detail=refused.message[:300])
                    return Refused(refused.err, refused.message)
                log.info("swap_preflight_no_conclusion", error=str(refused.err))
            except TemporaryVenueError as exc:
                log.warning("swap_send_failed", detail=str(exc))  # no conclusion: it may have gone out
        signature = Signature.from_string(rec.signature)
        deadline = self.clock() + wait_s
        looks = 0
        while True:
            looks += 1
            try:
                slot, height = await self._read("getEpochInfo", self.rpc.epoch)
                status, context_slot = await self._read("getSignatureStatuses", lambda: self.rpc.status(signature))
            except TemporaryVenueError as exc:
                verdict: Landed | Expired | Pending = Pending(f"RPC: {exc}")
            else:
                verdict = judge(rec.last_valid_block_height, slot, height, status, context_slot)
            if isinstance(verdict, Landed):
                state = SwapState.LANDED if verdict.err is None else SwapState.FAILED
                self.store.mark_swap(rec.signature, state, "" if verdict.err is None else str(verdict.err)[:500])
                self._count("solana_verdicts", verdict=str(state))
                log.info("swap_landed", slot=verdict.slot, err=None if verdict.err is None else str(verdict.err),
                         looks=looks)  # fmt: skip
                return verdict
            if isinstance(verdict, Expired):
                detail = f"block height {verdict.height} > last valid {verdict.last_valid_block_height}, no status"
                self.store.mark_swap(rec.signature, SwapState.EXPIRED, detail)
                self._count("solana_verdicts", verdict="expired")
                log.warning("swap_expired", detail=detail, looks=looks)
                return verdict
            if self.clock() >= deadline:
                self._count("solana_verdicts", verdict="pending")
                log.warning("swap_no_conclusion", detail=verdict.why, looks=looks, wait_s=wait_s)
                return verdict
            try:
                await self._send(rec, preflight=False)
            except (TemporaryVenueError, SendRefused) as exc:
                log.info("swap_resend_failed", detail=str(exc))
            await self.sleep(self.poll_s)
