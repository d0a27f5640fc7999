"""The executor's asyncio shell: decisions in over UDP, confirmations out, metrics and logs.

Every decision goes through :meth:`ExecutorCore.on_decision`, which journals before it acts
and records the outcome before this module sends the confirmation (DESIGN.md invariant 7).
Confirmations go to the configured brain address, never back to a datagram's source address,
so a forged source cannot redirect them.
"""

from __future__ import annotations

import time

import structlog

from protocol import Codec, ExecutionConfirmation, Message, RemoteProtocolError, TradeDecision
from protocol.udp import Address, DatagramEndpoint, open_endpoint
from tandem.runtime import RateLimitedLog

from .core import ExecutorCore, Outcome
from .metrics import ExecutorMetrics

__all__ = ["ExecutorApp"]


class ExecutorApp:
    """Wires :class:`ExecutorCore` to a UDP endpoint and metrics.

    Args:
        core: the executor core (journal, venue, ledger).
        codec: bus codec (shared secret).
        metrics: this executor's metrics.
        decision_bind: where decisions are received (port 0 = ephemeral).
        confirm_peer: the brain's confirmation address.
    """

    def __init__(
        self, core: ExecutorCore, codec: Codec, metrics: ExecutorMetrics, decision_bind: Address, confirm_peer: Address
    ) -> None:
        self.core = core
        self.codec = codec
        self.metrics = metrics
        self.decision_bind = decision_bind
        self.confirm_peer = confirm_peer
        self.endpoint: DatagramEndpoint | None = None
        self.log = structlog.get_logger("executor")
        self._reject_log = RateLimitedLog(self.log, "datagram_rejected")

    @property
    def address(self) -> Address:
        """The bound decision address (after :meth:`start`)."""
        assert self.endpoint is not None and self.endpoint.transport is not None
        return self.endpoint.transport.get_extra_info("sockname")[:2]

    async def start(self) -> None:
        """Bind, then send the confirmations of decisions resolved during recovery."""
        self.endpoint = await open_endpoint(
            self.decision_bind, self.codec, self._on_message, self._on_reject, peer=self.confirm_peer
        )
        self.metrics.cash.set(self.core.ledger.cash)
        for outcome in self.core.recovered:
            self.log.info("decision_recovered", decision_id=outcome.confirmation.decision_id)
            self._answer(outcome, time.perf_counter())

    def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()

    def _on_message(self, msg: Message, addr: Address) -> None:
        if isinstance(msg, TradeDecision):
            self.on_decision(msg)
        else:  # an authentic confirmation sent to the executor's port: wrong direction
            self.metrics.rejected.labels("direction").inc()
            self._reject_log.warning("direction", peer=f"{addr[0]}:{addr[1]}", error="confirmation sent to the executor")

    def _on_reject(self, exc: RemoteProtocolError, addr: Address) -> None:
        self.metrics.rejected.labels(exc.reason.value).inc()
        self._reject_log.warning(exc.reason.value, peer=f"{addr[0]}:{addr[1]}", error=str(exc))

    def on_decision(self, decision: TradeDecision) -> None:
        """Handle one authentic decision: journal, execute once, confirm."""
        started = time.perf_counter()
        self.metrics.decisions.inc()
        outcome = self.core.on_decision(decision, time.time_ns())
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
        self._answer(outcome, started)

    def _answer(self, outcome: Outcome, started: float) -> None:
        assert self.endpoint is not None
        conf: ExecutionConfirmation = outcome.confirmation
        self.endpoint.send(conf)
        self.metrics.confirmations.labels(conf.status.name).inc()
        self.metrics.processing.observe(time.perf_counter() - started)
