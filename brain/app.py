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
shows the account as it was before the fill, and the fill first appears in bar *i+1*'s row. The
curve, its drawdown and peak are :mod:`brain.equity`'s (drawdown rule: :mod:`brain.drawdown`).

**Outcomes**: every decision ends exactly once in the report and the outcome metric
(:mod:`brain.stats`); an executed answer to a decision resolved ``EXPIRED_UNCONFIRMED`` is applied
(the venue is the truth), and counted and logged as an error.

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

**Restart**: a brain started on an existing journal re-runs the replay from the first bar; each
re-derived decision is paired with its journaled twin (:mod:`brain.restart`): a journaled
confirmation is applied at once, a journaled local resolution is re-applied, and the first decision
with neither is resent byte-identical from the journal, after which the replay is live again. The
link asks the executor to replay every confirmation after the last one journaled.

Errors (from :meth:`BrainApp.replay`): :class:`~brain.journal.BrainJournalError` (the journal does
not match this replay), :class:`ExecutorJournalFault`, :class:`~foundation.errors.StorageFault`.

The jobs beside the shell live in their own modules: wall-time pacing (:mod:`brain.pacing`), the
equity curve (:mod:`brain.equity`), the replay's tally (:mod:`brain.stats`), restart matching
(:mod:`brain.restart`), a replay's waves of confirmations (:mod:`brain.waves`), gauge export
(:mod:`brain.gauges`) and the counters and log lines of each live confirmation
(:mod:`brain.confirmlog`). :class:`EquityCurve`, :class:`EquityPoint`,
:class:`Pacing`, :class:`ReplayStats` and :data:`EXPIRED_UNCONFIRMED` are re-exported here from the
modules that define them.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from structlog.contextvars import bound_contextvars

from foundation.bars import Bar, Bars
from foundation.shell import LinkShell
from protocol import BrainLink, Codec, ExecutionConfirmation, Instrument, Posture, TradeDecision
from protocol.udp import Address

from .confirmlog import log_live_confirmation
from .core import BrainCore
from .equity import EquityCurve, EquityPoint
from .feeds import Feed, PortfolioFeed, ReplayFeed
from .gauges import ReplayGauges
from .journal import BrainJournal, JournaledDecision
from .livefeed import LiveFeed
from .metrics import BrainMetrics
from .pacing import Pacing
from .restart import RestartMatcher
from .stats import EXPIRED_UNCONFIRMED, OutcomeTally, ReplayStats
from .tracker import Applied
from .waves import Waves
from .wiring import LinkSettings

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
_UNPACED = Pacing()  # as fast as lockstep allows, no progress reports


class ExecutorJournalFault(RuntimeError):
    """The executor's journal was replaced or went back (see the module docstring); the message
    says which, with the identities and sequence numbers."""


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
        pacing: Pacing = _UNPACED,
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
        self._gauges = ReplayGauges(metrics)
        for inst in core.config.instruments:
            self._gauges.instrument(str(inst))  # exported at 0 from its first export on
            metrics.mark_price.labels(str(inst))
        self._closes: dict[Instrument, float] = {}  # each instrument's last close (a portfolio's equity rows)
        if on_progress is not None:
            self.on_progress = on_progress  # type: ignore[method-assign]
        self._restart = RestartMatcher(journal.path, journal.history(),
                                       [c for c in journal.confirmations() if c.reconciled])  # fmt: skip
        self._replaying = False  # applying journaled confirmations (:meth:`_apply_journaled`)
        self._replay_waves = restamp  # a replay applies confirmations by waves (:mod:`brain.waves`)
        self._waves = Waves()
        self._releasing = False
        self._sent_at: dict[int, float] = {}
        self._settled = asyncio.Event()
        self._settled.set()
        self._heard = asyncio.Event()
        self._bar_index = 0  # the bar being replayed: where decisions made by confirmations are journaled
        self._outcomes = OutcomeTally(self.stats.outcomes)
        self._fault_seen = False
        self._executor_journal_known = journal.executor_journal_id() != 0
        self._fills_after: int | None = None  # latest executed_at_ns of the fills applied during this bar
        self._mode: str | None = None  # the executor's belief mode last seen (its heartbeats' posture)

    async def start(self) -> None:
        """Bind and send the first heartbeat (the executor answers with its ``last_seq``)."""
        await self._open(self.confirm_bind, self.decision_peer)
        self.log.info("brain_listening", confirm_addr=f"{self.address[0]}:{self.address[1]}",
                      decision_addr=f"{self.decision_peer[0]}:{self.decision_peer[1]}",
                      journaled_decisions=len(self._restart), next_seq=self.link.expected_seq)  # fmt: skip
        self.link.handle_timer(time.time_ns())
        self._flush()
        self.metrics.resuming.set(1 if self._restart else 0)
        self._export_positions()

    # -- replay -------------------------------------------------------------------------

    async def replay(self, bars: Bars) -> ReplayStats:
        """Run every bar of ``bars`` through the core, in lockstep with confirmations, at the pace of
        :attr:`pacing` (:class:`~brain.feeds.ReplayFeed`).

        Raises:
            BrainJournalError: the journal holds decisions this replay does not re-derive.
        """
        self.metrics.replay_bars.set(len(bars))
        return await self.run_feed(ReplayFeed(bars, self.pacing, self.on_progress))

    async def replay_markets(self, markets: Sequence[tuple[Instrument, Bars]]) -> ReplayStats:
        """A portfolio's replay: every instrument's bars merged by close time
        (:class:`~brain.feeds.PortfolioFeed`), the configured instrument first, in lockstep per
        close time.

        Raises:
            BrainJournalError: the journal holds decisions this replay does not re-derive.
        """
        self.metrics.replay_bars.set(sum(len(bars) for _, bars in markets))
        return await self.run_feed(PortfolioFeed(markets, self.pacing, self.on_progress))

    async def run_feed(self, feed: Feed) -> ReplayStats:
        """Trade the closed bars of ``feed`` until it ends, in lockstep with confirmations: the same
        step on every bar, replayed or live, so the same bars give the same decisions. Entries are
        decided only on a fresh bar (:attr:`~brain.feeds.FeedBar.fresh`) — except while a restarted
        brain re-derives its journaled decisions, which must come out as they were. A silent
        executor pauses a replay (``feed.pauses_on_silence``) and blocks entries live (the market
        does not wait).

        Raises:
            BrainJournalError: the journal holds decisions the feed's bars do not re-derive.
        """
        self.stats.equity_curve.start(self.core.tracker.equity())
        if isinstance(feed, LiveFeed):
            feed.on_mark = self._on_mark
        live = not feed.pauses_on_silence
        last_ns = None
        was_fresh = True
        while (item := await feed.next_bar()) is not None:
            closed = item.closed
            if self._restart.passed(item.index):
                self._restart.check_done()  # raises: journaled decisions this feed did not re-derive
            fresh = item.fresh or self._restart.covers(item.index)
            if not fresh:
                self.stats.stale_bars += 1
            if fresh != was_fresh:  # one line per change: the stale stretches are in the log
                if fresh:
                    self.log.info("feed_bars_fresh", bar_ts_ms=closed.bar.ts_ms)
                else:
                    self.log.warning("feed_bars_stale", bar_ts_ms=closed.bar.ts_ms, detail="entries refused")
                was_fresh = fresh
            if live:
                self.metrics.feed_last_closed_bar.set(closed.close_ns / 1e9)
                self.metrics.feed_lag.set(max(0.0, time.time() - closed.close_ns / 1e9))
            await self._bar(closed.bar, closed.close_ns, item.index, fresh=fresh,
                            pause_on_silence=feed.pauses_on_silence, group=item.group)  # fmt: skip
            last_ns = closed.close_ns
        if last_ns is not None:
            self._gauges.bar(last_ns, self.stats, self.core)
        self.stats.feed = feed.figures()
        self._restart.check_done()
        return self.stats

    async def _bar(self, bar: Bar, close_ns: int, index: int, *, fresh: bool = True,
                   pause_on_silence: bool, group: tuple[tuple[Instrument, Bar], ...] = ()) -> None:  # fmt: skip
        """One close time through the core: decide, send, await the confirmations (lockstep), record equity.

        Args:
            bar: the configured instrument's bar (one instrument).
            index: the close time's identity in the journal (restart matching).
            fresh: entries may be decided on it (a live feed's verdict).
            pause_on_silence: wait for a silent executor (a replay) instead of only blocking entries.
            group: a portfolio's bars closing at ``close_ns`` (:class:`~brain.feeds.FeedBar`), all
                decided from the same state, their decisions sent together and every one
                confirmed before the next close time; empty: ``bar`` alone.
        """
        core, stats, metrics, link = self.core, self.stats, self.metrics, self.link
        tracker = core.tracker
        bars = group or ((core.config.instrument, bar),)
        self._check_journal_fault()
        now = time.time_ns()
        alive = link.executor_alive(now)
        if pause_on_silence and not alive:
            await self._await_executor()
            self._check_journal_fault()
            now = time.time_ns()
            alive = link.executor_alive(now)
        self._bar_index = index
        if self._restart.receiving:
            self._apply_journaled()  # a reconciled confirmation the live run applied between closes
        trips_before = len(core.breakers.trips)
        step = core.on_bars(bars, close_ns, now, executor_alive=alive,
                            executor_journal_ok=link.journal_fault is None, feed_fresh=fresh,
                            posture=self._posture(close_ns))  # fmt: skip
        stats.bars += len(bars)
        for skip in step.skips:
            metrics.skips.labels(skip.reason.value).inc()
            self.log.info("signal_skipped", reason=skip.reason.value, side=skip.side.name, detail=skip.detail,
                          instrument=str(skip.instrument), bar_ts_ms=bar.ts_ms)  # fmt: skip
        trips = core.breakers.trips
        if len(trips) > trips_before:  # one bar can trip two breakers
            for trip in trips[trips_before:]:
                self._on_trip(trip)
        for inst, b in bars:
            self._closes[inst] = b.close
        after = before = (tracker.equity(), self._positions())  # the account before this close's fills
        self._fills_after = None
        if step.decisions or core.pending or self._restart:
            self._dispatch(step.decisions, index)
            if core.pending:
                await self._await_confirmations()
                self._check_journal_fault()
            after = (tracker.equity(), self._positions())
        elif index % _YIELD_EVERY == 0:
            await asyncio.sleep(0)
        # filled after the close (a gap): the fill shows in the next row
        equity, positions = before if self._fills_after is not None and self._fills_after > close_ns else after
        first, markets = core.config.instrument, core.config.markets
        others = tuple((self._closes.get(inst, math.nan), positions[i + 1])
                       for i, inst in enumerate(markets)) if markets else ()  # fmt: skip
        stats.equity_curve.record(close_ns, self._closes.get(first, math.nan), equity, positions[0], others)
        self._gauges.bar_due(time.monotonic, close_ns, stats, core)

    def _posture(self, close_ns: int) -> Posture | None:
        """The executor's risk posture from its newest heartbeat (protocol v4), for this bar's entry;
        a change of mode is recorded at the bar's close (the run report's mode over time) and
        exported."""
        posture = self.link.executor_posture
        mode = posture.mode.name if posture is not None else None
        if mode is not None and mode != self._mode:
            self._mode = mode
            self.stats.belief_modes.append((close_ns, mode))
            self.metrics.executor_belief_mode.set(int(posture.mode))
            self.metrics.executor_kill_switch.set(1 if posture.kill_switch else 0)
            if len(self.stats.belief_modes) > 1 or mode != "GREEN":
                self.log.warning("executor_belief_mode", mode=mode, kill_switch=posture.kill_switch,
                                 entries_allowed=posture.entries_allowed, entry_scale_bp=posture.entry_scale_bp)  # fmt: skip
        return posture

    def _on_mark(self, bar: Bar) -> None:
        """A live feed's forming bar: the mark price and equity at it, for the gauges only — exits
        are decided on closed bars, as in a replay (the stop on the venue protects in between)."""
        inst = self.core.config.instrument
        self.metrics.mark_price.labels(str(inst)).set(bar.close)
        self.metrics.equity.set(self.core.tracker.equity_at(inst, bar.close))

    def _positions(self) -> tuple[float, ...]:
        """The signed position of every instrument traded (base units), in the configured order."""
        position, instruments = self.core.tracker.position, self.core.config.instruments
        if len(instruments) == 1:  # once per bar: the common case without a generator
            p = position(instruments[0])
            return (p.signed_quantity if p else 0.0,)
        return tuple(p.signed_quantity if (p := position(inst)) else 0.0 for inst in instruments)

    def on_progress(self, bars_done: int, bars_total: int) -> None:
        """Called with the replay's progress (see :class:`Pacing`); the default does nothing."""

    def _export_positions(self) -> None:
        """Positions as gauges; not while resuming, when the tracker is still catching up with
        positions the executor holds already (the mismatch alert would fire on a healthy restart)."""
        if self._restart:
            return
        self._gauges.positions({str(inst): pos.signed_quantity for inst, pos in self.core.tracker.positions.items()})

    def _on_trip(self, trip: Any) -> None:
        self.metrics.trips.labels(trip.kind.value).inc()
        self.log.warning("breaker_tripped", kind=trip.kind.value, detail=trip.detail, at_ns=trip.at_ns,
                         until_ns=trip.until_ns)  # fmt: skip

    def _dispatch(self, decisions: tuple[TradeDecision, ...], bar_index: int) -> None:
        """Send new decisions; settle re-derived ones as journaled (a restarted brain's re-run), their
        journaled confirmations applied in seq order (:meth:`_apply_journaled`)."""
        for decision in decisions:
            journaled = self._restart.take(decision, bar_index)  # raises if it differs from its twin
            if journaled is None:
                self._send(decision, bar_index)
            else:
                self._resume(journaled, bar_index)
                if not self._restart:  # caught up with the journal: live from here on
                    self.metrics.resuming.set(0)
                    self._export_positions()
        self._apply_journaled()

    def _apply_journaled(self) -> None:
        """Receive the journaled confirmations that are ready, in the seq order the live run received
        them (:mod:`brain.restart`), through the same waves (:meth:`_receive`); one loop at a time —
        an application that derives decisions (:meth:`BrainCore.protect_now`) readies more, which
        this loop picks up in turn."""
        if self._replaying:
            return
        self._replaying = True
        try:
            while (conf := self._restart.next_ready()) is not None:
                self._receive(conf, journal=False)
        finally:
            self._replaying = False

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

    def _resume(self, journaled: JournaledDecision, bar_index: int) -> None:
        """Replace a re-derived decision by its journaled twin (matched by :class:`RestartMatcher`)
        and settle it as journaled."""
        d = journaled.decision
        self.core.adopt(d)
        self.stats.resumed_decisions += 1
        log = self.log.bind(decision_id=d.decision_id)
        if journaled.confirmation is not None:
            self.stats.decisions_sent += 1
            self._restart.ready(journaled.confirmation)  # applied at its turn (seq order)
        elif journaled.resolution is not None:
            self.stats.decisions_sent += 1
            self.core.abandon(d.decision_id)
            self._outcomes.expired(d.decision_id)
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
        self._gauges.link(self.link.stats)

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
            self._outcomes.expired(d.decision_id)
            self._sent_at.pop(d.decision_id, None)
            self.metrics.outcomes.labels(EXPIRED_UNCONFIRMED).inc()
            self.log.warning("decision_expired_unconfirmed", decision_id=d.decision_id,
                             detail="expired, and the executor holds no confirmation for it")  # fmt: skip
        self.metrics.pending.set(len(self.core.pending))
        if not self.core.pending:
            self._settled.set()

    # -- confirmations ----------------------------------------------------------------------

    def on_confirmation(self, conf: ExecutionConfirmation, now: int) -> None:
        """Journal and apply one in-order confirmation; the only path into the tracker (in a replay,
        applied with the rest of its wave: :meth:`_receive`)."""
        if self._restart.awaits(conf.decision_id):  # answers a decision the re-run has not reached yet
            self.journal.record_confirmation(conf, now)
            self._restart.attach(conf)
            return
        if conf.decision_id in self._waves or (conf.decision_id not in self.core.pending
                                              and self.core.tracker.is_applied(conf.decision_id)):  # fmt: skip
            self.metrics.duplicates.inc()
            return
        self.journal.record_confirmation(conf, now)
        sent = self._sent_at.pop(conf.decision_id, None)
        if sent is not None:
            latency = time.perf_counter() - sent
            self.metrics.latency.observe(latency)
            self.stats.latencies_s.append(latency)
        self._receive(conf, journal=True)

    def _receive(self, conf: ExecutionConfirmation, *, journal: bool) -> None:
        """Apply ``conf``: at once live; in a replay with its wave (:mod:`brain.waves`)."""
        if not self._replay_waves:
            self._apply(conf, time.time_ns(), journal=journal)
            return
        self._waves.hold(conf, journal)
        if self._releasing:
            return  # the wave being applied made this decision; its own wave is released after it
        self._releasing = True
        try:
            while wave := self._waves.take(self.core.pending):
                for held, live in wave:
                    self._apply(held, time.time_ns(), journal=live)
        finally:
            self._releasing = False

    def _apply(self, conf: ExecutionConfirmation, now: int, *, journal: bool) -> None:
        # every line this confirmation causes (breaker trips, anomalies) carries its decision and seq
        with bound_contextvars(decision_id=conf.decision_id, seq=conf.seq):
            self._apply_bound(conf, now, journal=journal)

    def _apply_bound(self, conf: ExecutionConfirmation, now: int, *, journal: bool) -> None:
        log = self.log
        awaited = conf.decision_id in self.core.pending
        resolved = self._outcomes.resolved(conf.decision_id)  # its outcome was counted as EXPIRED_UNCONFIRMED
        trips_before = len(self.core.breakers.trips)
        result = self.core.on_confirmation(conf)
        if conf.status.executed and result.applied not in (Applied.DUPLICATE, Applied.NOT_EXECUTED) \
                and conf.executed_at_ns > (self._fills_after or 0):  # fmt: skip
            self._fills_after = conf.executed_at_ns
        counted = False if conf.reconciled else self._outcomes.confirmed(conf.decision_id, conf.status.name,
                                                                          conf.status.executed)  # fmt: skip
        if journal:  # live: count and log; a re-run of journaled history only rebuilds state
            log_live_confirmation(self.metrics, log, conf, result, awaited=awaited, resolved=resolved,
                                  counted=counted)
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
