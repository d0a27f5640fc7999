"""The brain's asyncio shell: replays bars through :class:`~brain.core.BrainCore` in lockstep.

It owns the link (:class:`~protocol.link.BrainLink`: outbox, retransmission, in-order
confirmations, replay requests, heartbeats), the journal and the metrics; the endpoint, the timer
that drives the link and the accounting of dropped datagrams come from
:class:`~foundation.shell.LinkShell`. Every trading rule lives in the pure core.

**Lockstep**: the replay clock does not pass a bar while a decision made on it awaits its
confirmation, nor while the executor is silent (in live trading silence blocks entries; in a
replay it pauses the clock instead, so the result does not depend on timing). Fills (at the next
bar's open, decided by the executor) and therefore the trade log are the same on every run.

**Equity rows are honest in time**: the row of bar *i* is stamped at its close and reflects exactly
the fills at or before that time. A decision made on bar *i* fills at bar *i+1*'s open; when a gap
follows the close (a weekend, a holiday, an outage), that fill happens after the close, so the row
shows the account as it was before the fill, and the fill first appears in bar *i+1*'s row.

**Outcomes**: every decision ends exactly once in the report and the outcome metric. A decision the
link resolved as never executed (``EXPIRED_UNCONFIRMED``) that the executor later answers with a
non-executed status (it arrived after its expiry) is not counted again; one that it answers as
executed — which the resolution rule excludes — is applied all the same (the venue is the truth),
moves its outcome to the confirmation's status, and is counted and logged as an error.

**Executor journal**: the executor's heartbeats carry its journal's identity and last seq (SPEC.md
§10.6). The first identity heard is kept in the brain's journal; a heartbeat with another one, or
a last seq below what the brain has applied, is a *journal fault* (the executor's journal was
wiped, replaced or rolled back). The brain then logs it, counts it, raises the
``tandem_brain_executor_journal_fault`` gauge (alert ``TandemExecutorJournalFault``), blocks every
entry, and — a lockstep replay cannot carry on without the confirmations that journal held —
ends the replay with :class:`ExecutorJournalFault`.

**Storage faults**: a confirmation is journaled before it is applied and before the link moves on
(:meth:`~protocol.link.BrainLink.applied`); a journal write that keeps failing
(:class:`~foundation.journalfile.JournalWriteFailed`) stops the brain (exit code 3) — raised in the
replay, or recorded by :meth:`~foundation.shell.LinkShell._fail` from a datagram or timer callback and
raised by the replay at its next step. With ``restamp`` (a replay), a decision the executor
provably never journaled is sent again under the same id with fresh stamps, so a restart after an
outage of any length ends as the uninterrupted run would (SPEC.md §10.1).

**Restart**: a brain started on an existing journal re-runs the replay from the first bar. Each
decision the core re-derives is matched with its journaled twin (same id, same bar, same fields;
anything else means the data or settings changed and is refused): a journaled confirmation is
applied at once, a journaled local resolution is re-applied, and the first decision with neither
is resent byte-identical from the journal, after which the replay is live again. The link asks the
executor to replay every confirmation after the last one journaled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from structlog.contextvars import bound_contextvars

from foundation.bars import Bars
from foundation.runtime import parse_address
from foundation.shell import LinkShell
from protocol import BrainLink, Codec, ExecutionConfirmation, LinkStats, TradeDecision
from protocol.udp import Address

from .core import BrainCore
from .journal import BrainJournal, BrainJournalError, JournaledDecision
from .metrics import BrainMetrics
from .risk import BreakerKind
from .tracker import Applied

__all__ = [
    "EXPIRED_UNCONFIRMED",
    "BrainApp",
    "EquityCurve",
    "EquityPoint",
    "ExecutorJournalFault",
    "LinkSettings",
    "Pacing",
    "ReplayStats",
]

_YIELD_EVERY = 2_000  # bars between yields to the loop when no decision is pending
_GAUGE_INTERVAL_S = 0.1  # wall seconds between exports of the per-bar gauges during a replay
EXPIRED_UNCONFIRMED = "EXPIRED_UNCONFIRMED"
"""Outcome of a decision the link proved can never execute (expired, no confirmation)."""


class ExecutorJournalFault(RuntimeError):
    """The executor's journal was replaced or went back (see the module docstring); the message
    says which, with the identities and sequence numbers."""


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Link timing, seconds (see :class:`~protocol.link.BrainLink` for the defaults' rationale)."""

    retransmit_s: float = 0.1
    retransmit_max_s: float = 1.0
    heartbeat_s: float = 0.5
    silence_s: float = 3.0


@dataclass
class ReplayStats:
    """Figures the replay gathers beyond what the tracker holds."""

    bars: int = 0
    decisions_sent: int = 0
    resumed_decisions: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    peak_equity: float = 0.0
    max_drawdown_pct: float = 0.0
    silent_pauses: int = 0
    restamped: int = 0
    interrupted: bool = False
    equity_curve: EquityCurve = field(default_factory=lambda: EquityCurve())
    warnings: list[str] = field(default_factory=list)  # for the report (e.g. data too short to warm up)
    executor_journal_fault: str | None = None


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """The account after one bar: its close time (Unix ns), close price, equity (quote currency),
    drawdown from the peak so far (percent, >= 0) and the position held (base units)."""

    close_ns: int
    close: float
    equity: float
    drawdown_pct: float
    position: float


class EquityCurve:
    """One :class:`EquityPoint` per replayed bar, kept as five parallel ``array`` columns (a month
    of 1-minute bars is 45,000 points: ~1.8 MB, and an append costs well under a microsecond)."""

    __slots__ = ("close", "close_ns", "drawdown_pct", "equity", "position")

    def __init__(self) -> None:
        self.close_ns = array("q")
        self.close, self.equity, self.drawdown_pct, self.position = array("d"), array("d"), array("d"), array("d")

    def append(self, close_ns: int, close: float, equity: float, drawdown_pct: float, position: float) -> None:
        self.close_ns.append(close_ns)
        self.close.append(close)
        self.equity.append(equity)
        self.drawdown_pct.append(drawdown_pct)
        self.position.append(position)

    def __len__(self) -> int:
        return len(self.close_ns)

    def __getitem__(self, i: int) -> EquityPoint:
        return EquityPoint(self.close_ns[i], self.close[i], self.equity[i], self.drawdown_pct[i], self.position[i])

    def __iter__(self) -> Iterator[EquityPoint]:
        return map(EquityPoint, self.close_ns, self.close, self.equity, self.drawdown_pct, self.position)


@dataclass(frozen=True, slots=True)
class Pacing:
    """How the replay advances in wall time.

    Attributes:
        bars_per_s: at most this many bars per second (0 = as fast as lockstep allows); a paced
            replay is what ``docker compose up`` runs, so a dashboard has something to watch.
        progress_interval_s: call ``on_progress(bars_done, bars_total)`` at most this often
            (0 = never), and once at the end.
    """

    bars_per_s: float = 0.0
    progress_interval_s: float = 0.0


class BrainApp(LinkShell):
    """Wires the core to a UDP endpoint, the link, a journal and metrics.

    Args:
        core: the pure brain.
        codec: bus codec (shared secret).
        journal: the brain's SQLite journal (may hold a previous incarnation's history).
        metrics: this brain's metrics.
        confirm_bind: where confirmations are received (port 0 = ephemeral).
        decision_peer: the executor's decision address.
        link: link timing.
        pacing: replay speed and progress reports.
        on_progress: called as ``on_progress(bars_done, bars_total)`` (see :class:`Pacing`).
        restamp: a replay's link rules (:class:`~protocol.link.BrainLink`, SPEC.md §10.1): nothing
            is resolved as expired; a decision the executor provably never journaled is sent again
            under the same id with fresh stamps, journaled first. ``False``: live rules.
    """

    def __init__(
        self,
        core: BrainCore,
        codec: Codec,
        journal: BrainJournal,
        metrics: BrainMetrics,
        confirm_bind: Address,
        decision_peer: Address,
        link: LinkSettings = LinkSettings(),
        pacing: Pacing = Pacing(),
        on_progress: Callable[[int, int], None] | None = None,
        restamp: bool = False,
    ) -> None:
        super().__init__(codec, metrics, "brain")
        self.core = core
        self.journal = journal
        self.confirm_bind = confirm_bind
        self.decision_peer = decision_peer
        self.link = BrainLink(
            codec,
            incarnation=secrets.randbits(64),
            next_seq=journal.last_applied_seq() + 1,
            retransmit_initial_ns=int(link.retransmit_s * 1e9),
            retransmit_max_ns=int(link.retransmit_max_s * 1e9),
            heartbeat_interval_ns=int(link.heartbeat_s * 1e9),
            silence_threshold_ns=int(link.silence_s * 1e9),
            executor_journal_id=journal.executor_journal_id(),
            # received then (brain clock): the executor had issued it by then, give or take the clock skew
            applied_by_ns=journal.last_applied_received_at() + codec.max_skew_ns if journal.last_applied_seq() else 0,
            restamp=restamp,
            history=bool(journal.history()) or journal.executor_journal_id() != 0,
        )
        self.stats = ReplayStats()
        self.pacing = pacing
        self._exported_positions.add(str(core.config.instrument))  # exported at 0 from the start
        self._next_gauges = 0.0
        self._bars_exported = 0
        if on_progress is not None:
            self.on_progress = on_progress  # type: ignore[method-assign]
        self._history: dict[int, JournaledDecision] = journal.history()
        self._sent_at: dict[int, float] = {}
        self._settled = asyncio.Event()
        self._settled.set()
        self._heard = asyncio.Event()
        self._link_seen = LinkStats()
        self._bar_index = 0  # the bar being replayed: where decisions made by confirmations are journaled
        self._abandoned: set[int] = set()  # decisions resolved EXPIRED_UNCONFIRMED (outcome counted)
        self._fault_seen = False
        self._executor_journal_known = journal.executor_journal_id() != 0
        self._fills_after: int | None = None  # latest executed_at_ns of the fills applied during this bar

    async def start(self) -> None:
        """Bind and send the first heartbeat (the executor answers with its ``last_seq``)."""
        await self._open(self.confirm_bind, self.decision_peer)
        self.log.info("brain_listening", confirm_addr=f"{self.address[0]}:{self.address[1]}",
                      decision_addr=f"{self.decision_peer[0]}:{self.decision_peer[1]}",
                      journaled_decisions=len(self._history), next_seq=self.link.expected_seq)  # fmt: skip
        self.link.handle_timer(time.time_ns())
        self._flush()
        self.metrics.resuming.set(1 if self._history else 0)
        self._export_positions()

    # -- replay -------------------------------------------------------------------------

    async def replay(self, bars: Bars) -> ReplayStats:
        """Run every bar through the core, in lockstep with confirmations.

        Raises:
            BrainJournalError: the journal holds decisions this replay does not re-derive.
        """
        core, stats, metrics, link, pacing = self.core, self.stats, self.metrics, self.link, self.pacing
        tracker = core.tracker
        stats.peak_equity = tracker.equity()
        metrics.replay_bars.set(len(bars))
        loop = asyncio.get_running_loop()
        started = loop.time()
        next_progress = started
        for i in range(len(bars)):
            if pacing.bars_per_s > 0:
                due = started + i / pacing.bars_per_s
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                elif loop.time() - due > 1.0:  # behind after a pause (executor silent): no burst to catch up
                    started = loop.time() - i / pacing.bars_per_s
            if pacing.progress_interval_s > 0 and loop.time() >= next_progress:
                self.on_progress(i, len(bars))
                next_progress = loop.time() + pacing.progress_interval_s
            self._check_journal_fault()
            now = time.time_ns()
            if not link.executor_alive(now):
                await self._await_executor()
                self._check_journal_fault()
                now = time.time_ns()
            bar = bars[i]
            self._bar_index = i
            trips_before = len(core.breakers.trips)
            close_ns = bars.close_ns(i)
            step = core.on_bar(bar, close_ns, now, executor_journal_ok=link.journal_fault is None)
            stats.bars += 1
            for skip in step.skips:
                metrics.skips.labels(skip.reason.value).inc()
                self.log.info("signal_skipped", reason=skip.reason.value, side=skip.side.name, detail=skip.detail,
                              bar_ts_ms=bar.ts_ms)  # fmt: skip
            for trip in core.breakers.trips[trips_before:]:  # one bar can trip two breakers
                self._on_trip(trip)
            before = (tracker.equity(), self._position_qty())  # the account before this bar's fills
            self._fills_after = None
            self._dispatch(step.decisions, i)
            if core.pending:
                await self._await_confirmations()
                self._check_journal_fault()
            elif i % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            if self._fills_after is not None and self._fills_after > close_ns:
                self._after_bar(close_ns, bar.close, *before)  # filled after the close (a gap): next bar's row
            else:
                self._after_bar(close_ns, bar.close, tracker.equity(), self._position_qty())
            if loop.time() >= self._next_gauges:
                self._export_bar_gauges(close_ns)
                self._next_gauges = loop.time() + _GAUGE_INTERVAL_S
        if len(bars):
            self._export_bar_gauges(bars.close_ns(len(bars) - 1))
        if self._history:
            raise BrainJournalError(
                f"{self.journal.path}: {len(self._history)} journaled decisions were not re-derived by this replay"
                " (data or settings changed since the journal was written)"
            )
        if pacing.progress_interval_s > 0:
            self.on_progress(len(bars), len(bars))
        return stats

    def _position_qty(self) -> float:
        position = self.core.tracker.position(self.core.config.instrument)
        return position.quantity if position else 0.0

    def _after_bar(self, close_ns: int, close: float, equity: float, position: float) -> None:
        """Drawdown bookkeeping and the equity curve's row for the bar closing at ``close_ns``."""
        stats = self.stats
        dd = 0.0
        if equity > stats.peak_equity:
            stats.peak_equity = equity
        elif stats.peak_equity > 0:
            dd = (stats.peak_equity - equity) / stats.peak_equity * 100
            if dd > stats.max_drawdown_pct:
                stats.max_drawdown_pct = dd
        stats.equity_curve.append(close_ns, close, equity, dd, position)

    def _export_bar_gauges(self, close_ns: int) -> None:
        """Bars replayed, market time, money and breaker state. Called at most every
        :data:`_GAUGE_INTERVAL_S` of wall time during a replay, and after its last bar: a scrape
        every few seconds needs no per-bar update, and a month replays in about a second."""
        stats, metrics, core = self.stats, self.metrics, self.core
        metrics.bars.inc(stats.bars - self._bars_exported)
        self._bars_exported = stats.bars
        curve = stats.equity_curve
        metrics.market_time.set(close_ns / 1e9)
        metrics.equity.set(curve.equity[-1] if len(curve) else core.tracker.equity())
        metrics.cash.set(core.tracker.cash)
        metrics.peak_equity.set(stats.peak_equity)
        metrics.drawdown.set(curve.drawdown_pct[-1] / 100 if len(curve) else 0.0)
        for kind in BreakerKind:
            metrics.tripped.labels(kind.value).set(1 if core.breakers.active(kind, close_ns) else 0)

    def on_progress(self, bars_done: int, bars_total: int) -> None:
        """Called with the replay's progress (see :class:`Pacing`); the default does nothing."""

    def _export_positions(self) -> None:
        """Positions as gauges; not while resuming, when the tracker is still catching up with
        positions the executor holds already (the mismatch alert would fire on a healthy restart)."""
        if self._history:
            return
        self._export_position_gauges({str(inst): pos.quantity for inst, pos in self.core.tracker.positions.items()})

    def _on_trip(self, trip: Any) -> None:
        self.metrics.trips.labels(trip.kind.value).inc()
        self.log.warning("breaker_tripped", kind=trip.kind.value, detail=trip.detail, at_ns=trip.at_ns,
                         until_ns=trip.until_ns)  # fmt: skip

    def _dispatch(self, decisions: tuple[TradeDecision, ...], bar_index: int) -> None:
        """Send new decisions; settle re-derived ones as journaled (a restarted brain's re-run)."""
        for decision in decisions:
            journaled = self._history.pop(decision.decision_id, None)
            if journaled is None:
                self._send(decision, bar_index)
            else:
                self._resume(decision, journaled, bar_index)
                if not self._history:  # caught up with the journal: live from here on
                    self.metrics.resuming.set(0)
                    self._export_positions()

    def _send(self, decision: TradeDecision, bar_index: int) -> None:
        data = self.codec.encode(decision)
        self.journal.record_decision(decision, bar_index, data)  # journal before acting
        self._transmit(decision, data)
        self.metrics.decisions.labels(decision.side.name, decision.reason.name).inc()
        self.log.info("decision_sent", decision_id=decision.decision_id, side=decision.side.name,
                      intent=decision.intent.name, reason=decision.reason.name, quantity=decision.quantity,
                      reference_price=decision.reference_price, stop_price=decision.stop_price,
                      market_ts_ns=decision.market_ts_ns)  # fmt: skip

    def _transmit(self, decision: TradeDecision, data: bytes) -> None:
        self._sent_at[decision.decision_id] = time.perf_counter()
        self._settled.clear()
        self.metrics.pending.set(len(self.core.pending))
        self.stats.decisions_sent += 1
        self.link.send_decision(decision, time.time_ns(), data)
        self._flush()

    def _resume(self, derived: TradeDecision, journaled: JournaledDecision, bar_index: int) -> None:
        """Replace a re-derived decision by its journaled twin and settle it as journaled."""
        d = journaled.decision
        same = (d.side, d.intent, d.reason, d.quantity, d.instrument, d.stop_price) == (
            derived.side, derived.intent, derived.reason, derived.quantity, derived.instrument,
            derived.stop_price)  # fmt: skip
        if not same or journaled.bar_index != bar_index:
            raise BrainJournalError(
                f"{self.journal.path}: decision {d.decision_id} was journaled on bar {journaled.bar_index} as"
                f" {d.side.name} {d.quantity} ({d.reason.name}); this replay derives it on bar {bar_index} as"
                f" {derived.side.name} {derived.quantity} ({derived.reason.name}): data or settings changed"
            )
        self.core.adopt(d)
        self.stats.resumed_decisions += 1
        log = self.log.bind(decision_id=d.decision_id)
        if journaled.confirmation is not None:
            self.stats.decisions_sent += 1
            self._apply(journaled.confirmation, time.time_ns(), journal=False)
        elif journaled.resolution is not None:
            self.stats.decisions_sent += 1
            self.core.abandon(d.decision_id)
            self._abandoned.add(d.decision_id)
            self.stats.outcomes[EXPIRED_UNCONFIRMED] += 1
        else:
            log.info("decision_resent_after_restart", bar_index=bar_index)
            self._transmit(d, journaled.datagram)

    async def _await_confirmations(self) -> None:
        await self._settled.wait()

    async def _await_executor(self) -> None:
        self.stats.silent_pauses += 1
        self.log.warning("executor_silent", detail="replay paused until the executor is heard again")
        while not self.link.executor_alive(time.time_ns()) and self.link.journal_fault is None and self.failure is None:
            self._heard.clear()
            await self._heard.wait()

    def _check_journal_fault(self) -> None:
        """End the replay on a journal fault (module docstring), or on a storage fault of its own.

        Raises:
            StorageFault: this brain's journal could not be written (:meth:`LinkShell._fail`).
            ExecutorJournalFault: the link saw the executor's journal replaced or go back.
        """
        if self.failure is not None:
            raise self.failure
        if self.link.journal_fault is not None:
            self.stats.executor_journal_fault = self.link.journal_fault
            raise ExecutorJournalFault(self.link.journal_fault)

    def _watch_journal(self) -> None:
        """Keep the executor journal's identity; on a fault: log, count, gauge, wake the replay."""
        link = self.link
        if link.executor_journal_id and not self._executor_journal_known:
            self.journal.record_executor_journal_id(link.executor_journal_id)
            self._executor_journal_known = True
        if link.journal_fault is not None and not self._fault_seen:
            self._fault_seen = True
            self.metrics.journal_faults.inc()
            self.metrics.journal_fault.set(1)
            self.log.error("executor_journal_fault", detail=link.journal_fault,
                           action="entries blocked; a replay stops")  # fmt: skip
            self._settled.set()
            self._heard.set()

    @property
    def entries_blocked(self) -> bool:
        """True after an executor journal fault: no entry is sent any more (exits still are)."""
        return self.link.journal_fault is not None

    # -- link -------------------------------------------------------------------------------

    def _flush(self) -> None:
        super()._flush()
        stats, seen, m = self.link.stats, self._link_seen, self.metrics
        if stats != seen:  # export the link's counters as they move
            m.retransmits.inc(stats.retransmits - seen.retransmits)
            m.replay_requests.inc(stats.replay_requests - seen.replay_requests)
            m.duplicates.inc(stats.duplicates - seen.duplicates)
            self._link_seen = dataclasses.replace(stats)

    def _after_timer(self, now: int) -> None:
        self._resolve_expired(now)
        self._watch_peer(self.link.executor_alive(now), self.metrics.executor_up, self.metrics.executor_heard)

    def _on_link_event(self, ready: list[ExecutionConfirmation], now: int) -> None:
        self._heard.set()
        self._watch_journal()
        for conf in ready:
            self.on_confirmation(conf, now)  # journaled, then applied (raises StorageFault if it cannot be)
            self.link.applied(conf)  # only then does the link move on
        self._resolve_expired(now)

    def _on_failure(self) -> None:
        """A storage fault: wake the replay, which raises it (:meth:`_check_journal_fault`)."""
        self._settled.set()
        self._heard.set()

    def _restamp(self, now: int) -> None:
        """Send again, under the same id with fresh stamps, what the executor provably never journaled
        (a replay: :meth:`~protocol.link.BrainLink.restampable`); journaled before it is sent."""
        for old in self.link.restampable():
            d = old.restamped(now)
            data = self.codec.encode(d)
            self.journal.record_restamp(d, data)
            self.core.adopt(d)
            self.link.send_decision(d, now, data)
            self.stats.restamped += 1
            self.metrics.restamped.inc()
            self.log.warning("decision_restamped", decision_id=d.decision_id, created_at_ns=old.created_at_ns,
                             detail="never reached the executor's journal and no copy of it can any more:"
                                    " sent again under the same id with fresh stamps")  # fmt: skip

    def _resolve_expired(self, now: int) -> None:
        self._restamp(now)
        for d in self.link.resolve_expired():
            self.journal.record_resolution(d.decision_id, EXPIRED_UNCONFIRMED, now)
            self.core.abandon(d.decision_id)
            self._abandoned.add(d.decision_id)
            self._sent_at.pop(d.decision_id, None)
            self.stats.outcomes[EXPIRED_UNCONFIRMED] += 1
            self.metrics.outcomes.labels(EXPIRED_UNCONFIRMED).inc()
            self.log.warning("decision_expired_unconfirmed", decision_id=d.decision_id,
                             detail="expired, and the executor holds no confirmation for it")  # fmt: skip
        self.metrics.pending.set(len(self.core.pending))
        if not self.core.pending:
            self._settled.set()

    # -- confirmations ----------------------------------------------------------------------

    def on_confirmation(self, conf: ExecutionConfirmation, now: int) -> None:
        """Journal and apply one in-order confirmation; the only path into the tracker."""
        journaled = self._history.get(conf.decision_id)
        if journaled is not None:  # answers a decision the re-run has not reached yet
            self.journal.record_confirmation(conf, now)
            self._history[conf.decision_id] = dataclasses.replace(journaled, confirmation=conf)
            return
        if conf.decision_id not in self.core.pending and self.core.tracker.is_applied(conf.decision_id):
            self.metrics.duplicates.inc()
            return
        self.journal.record_confirmation(conf, now)
        self._apply(conf, now, journal=True)

    def _apply(self, conf: ExecutionConfirmation, now: int, *, journal: bool) -> None:
        # every line this confirmation causes (breaker trips, anomalies) carries its decision and seq
        with bound_contextvars(decision_id=conf.decision_id, seq=conf.seq):
            self._apply_bound(conf, now, journal=journal)

    def _apply_bound(self, conf: ExecutionConfirmation, now: int, *, journal: bool) -> None:
        log = self.log
        awaited = conf.decision_id in self.core.pending
        resolved = conf.decision_id in self._abandoned  # its outcome was counted as EXPIRED_UNCONFIRMED
        trips_before = len(self.core.breakers.trips)
        result = self.core.on_confirmation(conf)
        if conf.status.executed and result.applied not in (Applied.DUPLICATE, Applied.NOT_EXECUTED) \
                and conf.executed_at_ns > (self._fills_after or 0):  # fmt: skip
            self._fills_after = conf.executed_at_ns
        sent = self._sent_at.pop(conf.decision_id, None)
        if sent is not None:
            latency = time.perf_counter() - sent
            self.metrics.latency.observe(latency)
            self.stats.latencies_s.append(latency)
        counted = not resolved or conf.status.executed  # each decision ends exactly once
        if counted:
            self.stats.outcomes[conf.status.name] += 1
        if resolved and conf.status.executed:
            self._abandoned.discard(conf.decision_id)
            self.stats.outcomes[EXPIRED_UNCONFIRMED] -= 1
            if not self.stats.outcomes[EXPIRED_UNCONFIRMED]:
                del self.stats.outcomes[EXPIRED_UNCONFIRMED]
        if journal:  # live: count and log; a re-run of journaled history only rebuilds state
            if resolved and conf.status.executed:
                self.metrics.resolution_contradicted.inc()
                log.error("expired_decision_executed", status=conf.status.name,
                          detail="resolved as never executed, then confirmed as executed: applied")  # fmt: skip
            elif resolved:
                self.metrics.late_confirmations.inc()
                log.info("confirmation_after_resolution", status=conf.status.name,
                         detail="already resolved EXPIRED_UNCONFIRMED; not counted again")  # fmt: skip
            elif not awaited:
                self.metrics.unknown.inc()
                log.warning("confirmation_unsolicited", status=conf.status.name)
            if counted:
                self.metrics.outcomes.labels(conf.status.name).inc()
            if result.applied is Applied.OPENED:
                self.metrics.positions_opened.inc()
            elif result.applied is Applied.CLOSED:
                self.metrics.positions_closed.inc()
            if result.trade is not None:
                reason = result.trade.exit_reason
                self.metrics.exits.labels(reason.name if reason else "UNKNOWN").inc()
            log.info("confirmation_applied", status=conf.status.name, venue_ref=conf.venue_ref.decode("ascii", "replace"),
                     reject_code=conf.reject_code.name, executed_qty=conf.executed_qty, avg_price=conf.avg_price,
                     fee=conf.fee, applied=result.applied.value,
                     net_pnl=None if result.trade is None else result.trade.net_pnl,
                     exit_slippage_bps=None if result.trade is None else result.trade.exit_slippage_bps,
                     slippage_over_limit=conf.slippage_over_limit)  # fmt: skip
        if result.applied is Applied.ANOMALY:
            log.error("position_anomaly", detail="executed sell with no long position")
        for trip in self.core.breakers.trips[trips_before:]:
            self._on_trip(trip)
        # a PROTECT due at once (the entry filled above its reference): sent before settling the bar
        self._dispatch(self.core.protect_now(time.time_ns()), self._bar_index)
        self._export_positions()
        self.metrics.pending.set(len(self.core.pending))
        if not self.core.pending:
            self._settled.set()


def decision_peer(settings: Any) -> Address:
    return parse_address(settings.decision_addr, setting="decision_addr")


def confirm_bind(settings: Any) -> Address:
    return parse_address(settings.confirm_addr, setting="confirm_addr")


def outputs(run_dir: Path) -> dict[str, Path]:
    """Where the brain writes: journal, trade log, report."""
    return {"journal": run_dir / "brain.sqlite", "trades": run_dir / "trades.csv", "report": run_dir / "report.json",
            "equity": run_dir / "equity.csv"}  # fmt: skip
