"""The executor's asyncio shell: decisions in over UDP, confirmations out, metrics and logs.

Every decision goes through :meth:`ExecutorCore.on_decision`, which journals before it acts
and records the outcome before this module sends the confirmation (DESIGN.md invariant 7).
The link (:class:`~protocol.link.ExecutorLink`) stamps confirmations, serves replay requests from
the journal and sends heartbeats; the endpoint, the timer that drives the link and the accounting
of dropped datagrams come from :class:`~tandem.shell.LinkShell`. Datagrams go to the configured
brain address, never back to a datagram's source address, so a forged source cannot redirect them.
"""

from __future__ import annotations

import secrets
import time

from protocol import Codec, DecisionReceived, ExecutorLink, ReplayRequested, TradeDecision
from protocol.udp import Address
from tandem.shell import LinkShell

from .core import ExecutorCore, Outcome
from .metrics import ExecutorMetrics

__all__ = ["REPLAY_BATCH", "ExecutorApp"]

REPLAY_BATCH = 64
"""Confirmations sent per replay request; the brain asks again for the rest (bounds a burst)."""


class ExecutorApp(LinkShell):
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
        super().__init__(codec, metrics, "executor")
        self.core = core
        self.decision_bind = decision_bind
        self.confirm_peer = confirm_peer
        self.link = ExecutorLink(
            codec,
            incarnation=secrets.randbits(64),
            last_seq=core.journal.next_seq() - 1,
            heartbeat_interval_ns=int(heartbeat_s * 1e9),
        )

    async def start(self) -> None:
        """Bind, then send the confirmations of decisions resolved during recovery."""
        await self._open(self.decision_bind, self.confirm_peer)
        self.metrics.cash.set(self.core.ledger.cash)
        now = time.time_ns()
        for outcome in self.core.recovered:
            c = outcome.confirmation
            self.log.info("decision_recovered", decision_id=c.decision_id, seq=c.seq, status=c.status.name,
                          executed=outcome.executed)  # fmt: skip
            self._answer(outcome, time.perf_counter(), now)
        self.link.handle_timer(now)  # first heartbeat at once
        self._flush()

    def _on_link_event(self, event: DecisionReceived | ReplayRequested | None, now: int) -> None:
        if isinstance(event, DecisionReceived):
            self.on_decision(event.decision, now)
        elif isinstance(event, ReplayRequested):
            self._replay(event.from_seq, now)

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
