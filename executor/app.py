"""The executor's asyncio shell: decisions in over UDP, confirmations out, metrics and logs.

Every decision goes through :meth:`ExecutorCore.on_decision`, which journals before it acts
and records the outcome before this module sends the confirmation (DESIGN.md invariant 7).
The link (:class:`~protocol.link.ExecutorLink`) stamps confirmations, serves replay requests from
the journal and sends heartbeats; one re-armed timer drives it. Datagrams go to the configured
brain address, never back to a datagram's source address, so a forged source cannot redirect them.
"""

from __future__ import annotations

import secrets
import time

import structlog

from protocol import (
    Codec,
    DecisionReceived,
    ExecutorLink,
    Message,
    RemoteProtocolError,
    ReplayRequested,
    TradeDecision,
)
from protocol.udp import Address, DatagramEndpoint, LinkTimer, open_endpoint
from tandem.runtime import RateLimitedLog

from .core import ExecutorCore, Outcome
from .metrics import ExecutorMetrics

__all__ = ["REPLAY_BATCH", "ExecutorApp"]

REPLAY_BATCH = 64
"""Confirmations sent per replay request; the brain asks again for the rest (bounds a burst)."""


class ExecutorApp:
    """Wires :class:`ExecutorCore` to a UDP endpoint, the link and metrics.

    Args:
        core: the executor core (journal, venue, ledger).
        codec: bus codec (shared secret).
        metrics: this executor's metrics.
        decision_bind: where decisions are received (port 0 = ephemeral).
        confirm_peer: the brain's confirmation address.
        heartbeat_s: heartbeat period.
    """

    def __init__(
        self,
        core: ExecutorCore,
        codec: Codec,
        metrics: ExecutorMetrics,
        decision_bind: Address,
        confirm_peer: Address,
        heartbeat_s: float = 0.5,
    ) -> None:
        self.core = core
        self.codec = codec
        self.metrics = metrics
        self.decision_bind = decision_bind
        self.confirm_peer = confirm_peer
        self.link = ExecutorLink(
            codec,
            incarnation=secrets.randbits(64),
            last_seq=core.journal.next_seq() - 1,
            heartbeat_interval_ns=int(heartbeat_s * 1e9),
        )
        self.endpoint: DatagramEndpoint | None = None
        self.log = structlog.get_logger("executor")
        self._reject_log = RateLimitedLog(self.log, "datagram_rejected")
        self._timer = LinkTimer(self._on_timer)

    @property
    def address(self) -> Address:
        """The bound decision address (after :meth:`start`)."""
        assert self.endpoint is not None
        return self.endpoint.address

    async def start(self) -> None:
        """Bind, then send the confirmations of decisions resolved during recovery."""
        self.endpoint = await open_endpoint(
            self.decision_bind, self.codec, self._on_message, self._on_reject, peer=self.confirm_peer
        )
        self.endpoint.on_error = self._on_handler_error
        self.metrics.cash.set(self.core.ledger.cash)
        now = time.time_ns()
        for outcome in self.core.recovered:
            c = outcome.confirmation
            self.log.info("decision_recovered", decision_id=c.decision_id, seq=c.seq, status=c.status.name,
                          executed=outcome.executed)  # fmt: skip
            self._answer(outcome, time.perf_counter(), now)
        self.link.handle_timer(now)  # first heartbeat at once
        self._flush()

    def close(self) -> None:
        self._timer.cancel()
        if self.endpoint is not None:
            self.endpoint.close()

    def _flush(self) -> None:
        assert self.endpoint is not None
        for data in self.link.datagrams_to_send():
            self.endpoint.send_raw(data)
        self._timer.arm(self.link.get_timer())

    def _on_timer(self) -> None:
        self.link.handle_timer(time.time_ns())
        self._flush()

    def _on_message(self, msg: Message, addr: Address) -> None:
        now = time.time_ns()
        try:
            event = self.link.receive(msg, now)
        except RemoteProtocolError as exc:
            self._on_reject(exc, addr)
            return
        if isinstance(event, DecisionReceived):
            self.on_decision(event.decision, now)
        elif isinstance(event, ReplayRequested):
            self._replay(event.from_seq, now)
        self._flush()

    def _on_handler_error(self, exc: Exception, addr: Address) -> None:
        self.metrics.handler_errors.inc()
        self.log.error("datagram_handler_failed", peer=f"{addr[0]}:{addr[1]}", error=f"{type(exc).__name__}: {exc}",
                       exc_info=exc)  # fmt: skip

    def _on_reject(self, exc: RemoteProtocolError, addr: Address) -> None:
        self.metrics.rejected.labels(exc.reason.value).inc()
        self._reject_log.warning(exc.reason.value, peer=f"{addr[0]}:{addr[1]}", error=str(exc))

    def _replay(self, from_seq: int, now: int) -> None:
        confs = self.core.journal.confirmations_from(from_seq, REPLAY_BATCH)
        self.metrics.replays.inc()
        self.metrics.replayed.inc(len(confs))
        self.log.info("replay_served", from_seq=from_seq, count=len(confs))
        for conf in confs:
            self.link.send_confirmation(conf, now)

    def on_decision(self, decision: TradeDecision, now: int) -> None:
        """Handle one authentic decision: journal, execute once, confirm."""
        started = time.perf_counter()
        self.metrics.decisions.inc()
        outcome = self.core.on_decision(decision, now)
        log = self.log.bind(decision_id=decision.decision_id)
        if outcome.conflict:
            self.metrics.conflicts.inc()
            log.error("decision_conflict", detail="decision_id repeated with different content; stored outcome answered")
        if outcome.duplicate:
            self.metrics.duplicates.inc()
            log.info("decision_duplicate", seq=outcome.confirmation.seq, status=outcome.confirmation.status.name)
        else:
            c = outcome.confirmation
            log.info("decision_executed" if outcome.executed else "decision_not_executed", seq=c.seq,
                     status=c.status.name, reject_code=c.reject_code.name, executed_qty=c.executed_qty,
                     avg_price=c.avg_price, fee=c.fee, detail=outcome.detail)  # fmt: skip
        if outcome.executed:
            self.metrics.executions.inc()
            self.metrics.cash.set(self.core.ledger.cash)
        self._answer(outcome, started, now)

    def _answer(self, outcome: Outcome, started: float, now: int) -> None:
        conf = outcome.confirmation
        self.link.send_confirmation(conf, now)
        self.metrics.confirmations.labels(conf.status.name).inc()
        self.metrics.processing.observe(time.perf_counter() - started)
