"""The brain's asyncio shell: replays bars through :class:`~brain.core.BrainCore` in lockstep.

It owns the UDP endpoint, the journal, timers and metrics; every trading rule lives in the
pure core. **Lockstep**: the replay clock does not pass a bar while a decision made on it awaits
its confirmation, so fills (at the next bar's open, decided by the executor) and therefore the
trade log are the same on every run. An unconfirmed decision is resent, byte-identical, every
``retransmit_s``; the executor's dedupe makes that harmless.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from protocol import Codec, ExecutionConfirmation, Message, RemoteProtocolError, TradeDecision
from protocol.udp import Address, DatagramEndpoint, open_endpoint
from tandem.marketdata import Bars
from tandem.runtime import RateLimitedLog, parse_address

from .core import BrainCore
from .journal import BrainJournal
from .metrics import BrainMetrics
from .tracker import Applied

__all__ = ["BrainApp", "ReplayStats"]

_YIELD_EVERY = 2_000  # bars between yields to the loop when no decision is pending


@dataclass
class ReplayStats:
    """Figures the replay gathers beyond what the tracker holds."""

    bars: int = 0
    decisions_sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    retransmits: int = 0
    latencies_s: list[float] = field(default_factory=list)
    peak_equity: float = 0.0
    max_drawdown_pct: float = 0.0
    interrupted: bool = False


class BrainApp:
    """Wires the core to a UDP endpoint, a journal and metrics.

    Args:
        core: the pure brain.
        codec: bus codec (shared secret).
        journal: the brain's SQLite journal.
        metrics: this brain's metrics.
        confirm_bind: where confirmations are received (port 0 = ephemeral).
        decision_peer: the executor's decision address.
        retransmit_s: resend period for unconfirmed decisions.
    """

    def __init__(
        self,
        core: BrainCore,
        codec: Codec,
        journal: BrainJournal,
        metrics: BrainMetrics,
        confirm_bind: Address,
        decision_peer: Address,
        retransmit_s: float = 0.2,
    ) -> None:
        self.core = core
        self.codec = codec
        self.journal = journal
        self.metrics = metrics
        self.confirm_bind = confirm_bind
        self.decision_peer = decision_peer
        self.retransmit_s = retransmit_s
        self.stats = ReplayStats()
        self.log = structlog.get_logger("brain")
        self._reject_log = RateLimitedLog(self.log, "datagram_rejected")
        self.endpoint: DatagramEndpoint | None = None
        self._datagrams: dict[int, bytes] = {}
        self._sent_at: dict[int, float] = {}
        self._settled = asyncio.Event()
        self._settled.set()

    @property
    def address(self) -> Address:
        """The bound confirmation address (after :meth:`start`)."""
        assert self.endpoint is not None and self.endpoint.transport is not None
        return self.endpoint.transport.get_extra_info("sockname")[:2]

    async def start(self) -> None:
        self.endpoint = await open_endpoint(
            self.confirm_bind, self.codec, self._on_message, self._on_reject, peer=self.decision_peer
        )
        self.log.info("brain_listening", confirm_addr=f"{self.address[0]}:{self.address[1]}",
                      decision_addr=f"{self.decision_peer[0]}:{self.decision_peer[1]}")  # fmt: skip

    def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()

    # -- replay -------------------------------------------------------------------------

    async def replay(self, bars: Bars) -> ReplayStats:
        """Run every bar through the core, in lockstep with confirmations."""
        core, stats, metrics = self.core, self.stats, self.metrics
        tracker = core.tracker
        stats.peak_equity = tracker.equity()
        for i in range(len(bars)):
            bar = bars[i]
            trips_before = len(core.breakers.trips)
            step = core.on_bar(bar, bars.close_ns(i), time.time_ns())
            stats.bars += 1
            for skip in step.skips:
                metrics.skips.labels(skip.reason.value).inc()
                self.log.info("signal_skipped", reason=skip.reason.value, side=skip.side.name, detail=skip.detail,
                              bar_ts_ms=bar.ts_ms)  # fmt: skip
            for trip in core.breakers.trips[trips_before:]:  # one bar can trip two breakers
                self._on_trip(trip)
            for decision in step.decisions:
                self._send(decision, i)
            if core.pending:
                await self._await_confirmations()
            elif i % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            equity = tracker.equity()
            if equity > stats.peak_equity:
                stats.peak_equity = equity
            elif stats.peak_equity > 0:
                dd = (stats.peak_equity - equity) / stats.peak_equity * 100
                if dd > stats.max_drawdown_pct:
                    stats.max_drawdown_pct = dd
        metrics.bars.inc(stats.bars)
        metrics.equity.set(tracker.equity())
        metrics.cash.set(tracker.cash)
        return stats

    def _on_trip(self, trip: Any) -> None:
        self.metrics.trips.labels(trip.kind.value).inc()
        self.log.warning("breaker_tripped", kind=trip.kind.value, detail=trip.detail, at_ns=trip.at_ns,
                         until_ns=trip.until_ns)  # fmt: skip

    def _send(self, decision: TradeDecision, bar_index: int) -> None:
        assert self.endpoint is not None
        data = self.codec.encode(decision)
        self.journal.record_decision(decision, bar_index, data)  # journal before acting
        self._datagrams[decision.decision_id] = data
        self._sent_at[decision.decision_id] = time.perf_counter()
        self._settled.clear()
        self.endpoint.send_raw(data)
        self.stats.decisions_sent += 1
        self.metrics.decisions.labels(decision.side.name, decision.reason.name).inc()
        self.log.info("decision_sent", decision_id=decision.decision_id, side=decision.side.name,
                      intent=decision.intent.name, reason=decision.reason.name, quantity=decision.quantity,
                      reference_price=decision.reference_price, market_ts_ns=decision.market_ts_ns)  # fmt: skip

    async def _await_confirmations(self) -> None:
        assert self.endpoint is not None
        while self.core.pending:
            try:
                await asyncio.wait_for(self._settled.wait(), self.retransmit_s)
            except TimeoutError:
                for decision_id in self.core.pending:
                    self.endpoint.send_raw(self._datagrams[decision_id])
                    self.stats.retransmits += 1
                    self.metrics.retransmits.inc()
                    self.log.info("decision_retransmitted", decision_id=decision_id)

    # -- datagrams ------------------------------------------------------------------------

    def _on_message(self, msg: Message, addr: Address) -> None:
        if isinstance(msg, ExecutionConfirmation):
            self.on_confirmation(msg)
        else:  # an authentic decision sent to the brain's port: wrong direction
            self.metrics.rejected.labels("direction").inc()
            self._reject_log.warning("direction", peer=f"{addr[0]}:{addr[1]}", error="decision sent to the brain")

    def _on_reject(self, exc: RemoteProtocolError, addr: Address) -> None:
        self.metrics.rejected.labels(exc.reason.value).inc()
        self._reject_log.warning(exc.reason.value, peer=f"{addr[0]}:{addr[1]}", error=str(exc))

    def on_confirmation(self, conf: ExecutionConfirmation) -> None:
        """Journal and apply one confirmation; the only path into the tracker."""
        log = self.log.bind(decision_id=conf.decision_id)
        now = time.time_ns()
        awaited = conf.decision_id in self.core.pending
        if not awaited and self.core.tracker.is_applied(conf.decision_id):
            self.metrics.duplicates.inc()
            log.debug("confirmation_duplicate", seq=conf.seq)
            return
        self.journal.record_confirmation(conf, now)
        trips_before = len(self.core.breakers.trips)
        result = self.core.on_confirmation(conf)
        sent = self._sent_at.pop(conf.decision_id, None)
        self._datagrams.pop(conf.decision_id, None)
        if sent is not None:
            latency = time.perf_counter() - sent
            self.metrics.latency.observe(latency)
            self.stats.latencies_s.append(latency)
        if not awaited:
            self.metrics.unknown.inc()
            log.warning("confirmation_unsolicited", seq=conf.seq, status=conf.status.name)
        self.stats.outcomes[conf.status.name] += 1
        self.metrics.confirmations.labels(conf.status.name).inc()
        if result.applied is Applied.OPENED:
            self.metrics.positions_opened.inc()
        elif result.applied is Applied.CLOSED:
            self.metrics.positions_closed.inc()
        log.info("confirmation_applied", seq=conf.seq, status=conf.status.name, reject_code=conf.reject_code.name,
                 executed_qty=conf.executed_qty, avg_price=conf.avg_price, fee=conf.fee, applied=result.applied.value,
                 net_pnl=None if result.trade is None else result.trade.net_pnl)  # fmt: skip
        if result.applied is Applied.ANOMALY:
            log.error("position_anomaly", detail="executed sell with no long position")
        if len(self.core.breakers.trips) > trips_before:
            self._on_trip(self.core.breakers.trips[-1])
        if not self.core.pending:
            self._settled.set()


def decision_peer(settings: Any) -> Address:
    return parse_address(settings.decision_addr, setting="decision_addr")


def confirm_bind(settings: Any) -> Address:
    return parse_address(settings.confirm_addr, setting="confirm_addr")


def outputs(run_dir: Path) -> dict[str, Path]:
    """Where the brain writes: journal, trade log, report."""
    return {"journal": run_dir / "brain.sqlite", "trades": run_dir / "trades.csv", "report": run_dir / "report.json"}
