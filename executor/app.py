"""The executor's asyncio shell: decisions in over UDP, confirmations out, metrics and logs.

A decision is admitted synchronously as it arrives (:meth:`ExecutorCore.admit`: a confirmed one is
answered at once from the journal; a new one is journaled before anything is done with it,
DESIGN.md invariant 7) and then executed by one worker task, in arrival order, so venue calls
never interleave. A retransmit of a decision that is queued or executing is counted and dropped —
its confirmation follows when the execution ends.

**Duplicates are cheap and bounded** (a captured decision re-sent 20,000 times a second is still
authentic): a decision answered less than :data:`DUPLICATE_ANSWER_INTERVAL_S` ago is counted and
dropped before the journal is read, so one decision id gets at most a few answers a second however
often it arrives (an answer always goes to the configured brain address, so the one the brain needs
is never withheld for long: the brain resends only after 100 ms and more). Log lines about
duplicates, like those about rejected datagrams, are rate-limited: one per kind per second, with
the count suppressed since. An execution the venue left ambiguous
(:class:`~executor.orders.Unresolved`) stays in flight and is retried after ``retry_unresolved_s``.

**Storage faults**: a journal write that fails for good (:class:`~foundation.journalfile.JournalWriteFailed`,
after bounded retries) — while admitting a decision, settling its outcome or recording a protective
order — stops the worker and the process (exit code 3): nothing it could not journal is acted on,
and a restart resumes from the journal, looking in-flight orders up on the venue first.

**Busy polling** (issue #17, :class:`~foundation.busypoll.BusyPoll`): once the worker has run a
decision's job (its group, or its execution) and has nothing queued, it polls the decision socket
for up to ``busy_poll_us`` before the loop sleeps, so a decision that follows within the window
finds a core that is awake and warm (the executor process sets it from its settings, 300 µs by
default; 0 here, where a test may run the brain in the same loop). What the poll reads goes to the
endpoint as the loop's read would give it, and the worker takes the job it queued at once, without
a round through the loop — but gives the loop a turn at least every :data:`LOOP_TURN_NS`, so its
timers and signal handlers still run while a fast brain keeps every window busy.

On a venue with protective orders, every ``maintenance_s`` the worker (between two decisions) also
re-places any stop the venue refused (:meth:`ExitOrderGateway.reprotect`) and cancels
stops of ours whose position the ledger no longer holds (:meth:`ExitOrderGateway.orphans`).

**Reconciliation** (issue #14, :class:`~executor.reconciler.Reconciler`): the worker runs a reconcile
cycle at start, after every decision the venue left ambiguous, and then every
``reconcile_interval_s`` of wall time — or, on a venue that replays recorded bars (the paper venue,
the local Binance on the replay clock), after each executed decision instead, at that decision's
market time, so a replay stays deterministic. Its corrections' confirmations go to the brain like
any other; its posture rides on every heartbeat; its guard refuses the entries the posture forbids.
The link (:class:`~protocol.link.ExecutorLink`) stamps confirmations, serves replay requests from
the journal and sends heartbeats; the endpoint, the timer that drives the link and the accounting
of dropped datagrams come from :class:`~foundation.shell.LinkShell`. Datagrams go to the configured
brain address, never back to a datagram's source address, so a forged source cannot redirect them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

from foundation.busypoll import BusyPoll
from foundation.errors import StorageFault
from foundation.logs import LogContext, RateLimitedLog
from foundation.shell import LinkShell
from protocol import Codec, DecisionReceived, ExecutorLink, Instrument, Posture, ReplayRequested, TradeDecision
from protocol.udp import Address

from .core import ExecutorCore, Outcome, Pending
from .metrics import ExecutorMetrics
from .orders import Unresolved
from .reconciler import Reconciler

__all__ = ["DUPLICATE_ANSWER_INTERVAL_S", "LOOP_TURN_NS", "REPLAY_BATCH", "ExecutorApp"]

REPLAY_BATCH = 64
"""Confirmations sent per replay request; the brain asks again for the rest (bounds a burst)."""
DUPLICATE_ANSWER_INTERVAL_S = 0.05
"""Least time between two answers to the same decision id, seconds: half the brain's first
retransmit interval (100 ms), so a retransmit after a lost answer is answered."""
LOOP_TURN_NS = 1_000_000
"""While the busy poll keeps reading decisions for the worker, the worker still lets the event loop run
at least this often, ns — its timers (heartbeats, retries, maintenance, reconciliation), its signal
handlers and whatever else is ready — so a brain that answers fast does not starve them."""
_ANSWERED_MAX = 4096  # decision ids remembered for the duplicate limiter
_RECONCILE = object()  # a queued reconcile cycle (None: a maintenance round)
_ARRIVALS = object()  # the decisions waiting in ExecutorApp._arrivals, for one group (an in-process venue)


class _Job(NamedTuple):
    """One queued execution for the worker.

    Attributes:
        pending: the journaled decision (:meth:`ExecutorCore.admit`); its ``conflict`` was counted
            when it was admitted.
        recovering: look its order up before anything is sent (a duplicate, a restart's leftover, a
            retry after an unresolved or failed attempt).
        started: ``time.perf_counter()`` when its handling began (the processing histogram).
    """

    pending: Pending
    recovering: bool
    started: float


class _Arrival(NamedTuple):
    """A decision for an in-process venue, not journaled yet: the worker admits and executes it with
    the others queued beside it in one journal transaction (:meth:`ExecutorApp._execute_group`).

    Attributes:
        decision: as received.
        received_at_ns: wall clock when it arrived (its freshness, as :meth:`ExecutorCore.admit` checks).
        started: ``time.perf_counter()`` when its handling began.
    """

    decision: TradeDecision
    received_at_ns: int
    started: float


class ExecutorApp(LinkShell):
    """Wires :class:`ExecutorCore` to a UDP endpoint, the link and metrics.

    Args:
        core: the executor core (journal, venue, ledger).
        codec: bus codec (shared secret).
        metrics: this executor's metrics.
        decision_bind: where decisions are received (port 0 = ephemeral).
        confirm_peer: the brain's confirmation address.
        heartbeat_s: heartbeat period.
        silence_s: the brain unheard this long is silent (``brain_up`` 0; its address is
            resolved again).
    """

    def __init__(
        self,
        core: ExecutorCore,
        codec: Codec,
        metrics: ExecutorMetrics,
        decision_bind: Address,
        confirm_peer: Address,
        heartbeat_s: float = 0.5,
        silence_s: float = 3.0,
        retry_unresolved_s: float = 2.0,
        maintenance_s: float = 5.0,
        reconciler: Reconciler | None = None,
        reconcile_interval_s: float = 10.0,
        busy_poll_us: int = 0,
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
            journal_id=core.journal.journal_id,
        )
        self.retry_unresolved_s = retry_unresolved_s
        self.maintenance_s = maintenance_s
        self._queue: asyncio.Queue[Any] = asyncio.Queue()  # a _Job, None (maintenance), _RECONCILE or _ARRIVALS
        self._arrivals: list[_Arrival] = []  # an in-process venue's decisions since _ARRIVALS was queued
        self._active: set[int] = set()
        self._worker: asyncio.Task[None] | None = None
        self.silence_s = silence_s
        self._ticker: asyncio.TimerHandle | None = None
        self._answered: OrderedDict[int, int] = OrderedDict()  # decision id -> when last answered (ns)
        self._duplicate_log = RateLimitedLog(self.log, "decision_duplicates")
        self._replay_log = RateLimitedLog(self.log, "replay_served")
        self._replays_ignored_seen = 0
        self.on_failure: Callable[[], None] | None = None
        """Called once on a storage fault (``serve`` stops the process with exit code 3)."""
        if core.ops.metrics is None:
            core.ops.metrics = metrics
            core.gateway.metrics = metrics
        self.reconciler = reconciler
        self.reconcile_interval_s = reconcile_interval_s
        self._reconcile_timer: asyncio.TimerHandle | None = None
        self._market_ns = 0  # the newest market time executed (a replay venue's clock)
        self.busy_poll_us = busy_poll_us
        self._busy_poll: BusyPoll | None = None  # set once the endpoint is open (busy_poll_us > 0)
        self._log_debug = False  # a line per decision (at debug): set by start
        self._busy_polls = {hit: metrics.busy_polls.labels("hit" if hit else "miss") for hit in (True, False)}
        # read when scraped, not set per decision (issue #17: the hot path); the scrape runs on this loop
        metrics.inflight.set_function(lambda: len(self._active))
        metrics.cash.set_function(lambda: self.core.ledger.cash)
        metrics.open_positions.set_function(lambda: len(self.core.ledger.positions()))
        self._position_gauges: set[Instrument] = set()  # instruments whose gauge reads the ledger
        if reconciler is not None:
            core.entry_guard = reconciler.admit
            reconciler.on_posture = self._set_posture
            self.link.posture = reconciler.posture

    async def start(self) -> None:
        """Bind, then send the confirmations of decisions resolved during recovery."""
        # asked once: each call through structlog's lazy logger proxy costs ~0.7 us (issue #17)
        self._log_debug = self.log.is_enabled_for(logging.DEBUG)
        await self._open(self.decision_bind, self.confirm_peer)
        assert self.endpoint is not None
        self._busy_poll = BusyPoll.on(self.endpoint.transport, self.busy_poll_us, self.endpoint.error_received)
        self._export_ledger()
        now = time.time_ns()
        for outcome in self.core.recovered:
            c = outcome.confirmation
            self.log.info("decision_recovered", decision_id=c.decision_id, seq=c.seq, status=c.status.name,
                          client_order_id=self.core.ids.order(c.decision_id),
                          executed=outcome.executed)  # fmt: skip
            self._answer(outcome, time.perf_counter(), now)
        for d in self.core.journal.in_flight():  # left in flight by an unresolved recovery
            if d.decision_id in self._active:
                continue  # its copy arrived while the endpoint opened and is queued already: one job per id
            rec = self.core.journal.decision(d.decision_id)
            assert rec is not None
            self._enqueue(_Job(Pending(d, rec.received_at_ns), recovering=True, started=time.perf_counter()))
        self._worker = asyncio.get_running_loop().create_task(self._work())
        if self.core.protective:
            self._ticker = asyncio.get_running_loop().call_later(self.maintenance_s, self._tick)
        if self.reconciler is not None:
            self._queue.put_nowait(_RECONCILE)  # at start: before the first decision is executed
            if not self.core.venue.replay_clock or self.core.venue.in_process:
                self._reconcile_timer = asyncio.get_running_loop().call_later(self.reconcile_interval_s,
                                                                              self._reconcile_tick)  # fmt: skip
        self.link.handle_timer(now)  # first heartbeat at once
        self._flush()

    @property
    def idle(self) -> bool:
        """Nothing queued or executing."""
        return not self._active

    def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self._reconcile_timer is not None:
            self._reconcile_timer.cancel()
        if self._worker is not None:
            self._worker.cancel()
        if self._busy_poll is not None:
            self._busy_poll.close()
        super().close()

    def _export_ledger(self) -> None:
        """Give every instrument the ledger holds its position gauge. The gauges read the ledger when
        scraped (issue #17: nothing set per decision); one exported before reads 0 once flat."""
        for inst in self.core.ledger.positions():
            if inst not in self._position_gauges:
                self._position_gauges.add(inst)
                self.metrics.position.labels(str(inst)).set_function(lambda i=inst: self.core.ledger.position(i))

    def _after_timer(self, now: int) -> None:
        heard = self.link.last_heard_ns
        alive = heard is not None and now - heard <= self.silence_s * 1e9
        self._watch_peer(alive, self.metrics.brain_up, self.metrics.brain_heard)

    def _enqueue(self, job: _Job) -> None:
        self._active.add(job.pending.decision.decision_id)
        self._count_in_flight()
        self._queue.put_nowait(job)

    def _count_in_flight(self) -> None:
        """Decisions journaled and not yet confirmed: the count every heartbeat carries (the brain
        resolves no expired decision while it is above 0, SPEC.md §10.1). The ``inflight`` gauge
        reads ``_active`` itself, when scraped."""
        self.link.in_flight = len(self._active)

    async def maintain(self) -> None:
        """One maintenance round (see the module docstring); the worker runs it when idle."""
        core = self.core
        if not core.protective:
            return
        try:  # runs in the worker, between decisions: never concurrent with an execution
            held = core.held()
            await core.gateway.reprotect(held)
            for coid in await core.gateway.orphans(held):
                self.log.warning("orphan_stop_cancelled", client_order_id=coid)
        except StorageFault:
            raise
        except Exception as exc:  # a venue hiccup: try again next round
            self.log.warning("maintenance_failed", error=type(exc).__name__, detail=str(exc))

    def _tick(self) -> None:
        """Queue a maintenance round behind the decisions, and the next tick."""
        self._queue.put_nowait(None)
        self._ticker = asyncio.get_running_loop().call_later(self.maintenance_s, self._tick)

    def _reconcile_tick(self) -> None:
        """Queue a reconcile cycle behind the decisions, and the next tick (a live venue)."""
        self._queue.put_nowait(_RECONCILE)
        self._reconcile_timer = asyncio.get_running_loop().call_later(self.reconcile_interval_s, self._reconcile_tick)

    def _set_posture(self, posture: Posture) -> None:
        """A new risk posture: every heartbeat from now on carries it (the next one at once)."""
        self.link.posture = posture
        self.link.handle_timer(time.time_ns())  # heartbeats are due on the timer; send the news now
        self._flush()

    async def reconcile(self) -> None:
        """One reconcile cycle (module docstring); its confirmations go to the brain. Runs in the
        worker, between decisions: never concurrent with an execution."""
        assert self.reconciler is not None
        now = self._market_ns if self.core.venue.replay_clock else time.time_ns()
        busy = frozenset(str(self.core.journal.decision(did).decision.instrument)  # type: ignore[union-attr]
                         for did in self._active if self.core.journal.decision(did) is not None)  # fmt: skip
        report = await self.reconciler.cycle(now, busy=busy)
        if report.confirmations:
            wall = time.time_ns()
            for conf in report.confirmations:
                self.link.send_confirmation(conf, wall)
                self.metrics.confirmed[conf.status].inc()
            self._export_ledger()
            self._flush()

    async def _work(self) -> None:
        loop_turn = time.perf_counter_ns()  # when the event loop last ran (this task last waited)
        while True:
            if self._queue.empty():  # the get waits: the event loop runs meanwhile
                job = await self._queue.get()
                loop_turn = time.perf_counter_ns()
            else:
                job = self._queue.get_nowait()
            try:
                if job is None:
                    await self.maintain()
                    continue
                if job is _RECONCILE:
                    await self.reconcile()
                    continue
                if job is _ARRIVALS:
                    arrivals, self._arrivals = self._arrivals, []
                    await self._execute_group(arrivals)
                else:
                    with self._log_context(job.pending.decision):
                        await self._execute(job)
            except StorageFault as exc:  # the journal cannot be written: execute nothing more
                self._fail(exc)
                return
            if self._busy_poll is not None and self._queue.empty() and self.failure is None:
                self._poll()  # a job ran and nothing else is queued
                if not self._queue.empty() and time.perf_counter_ns() - loop_turn >= LOOP_TURN_NS:
                    await asyncio.sleep(0)  # the poll keeps feeding the worker: give the loop its turn
                    loop_turn = time.perf_counter_ns()

    def _poll(self) -> None:
        """Busy-poll the decision socket (module docstring); what it reads goes to the endpoint, whose
        handling queues any job for the worker's next turn."""
        assert self._busy_poll is not None and self.endpoint is not None
        got = self._busy_poll.wait()
        self._busy_polls[bool(got)].inc()  # a hit: a datagram came (not only a socket error)
        if got:
            receive = self.endpoint.datagram_received  # it reports a handling that raises (on_error)
            for data, addr in got:
                receive(data, addr)

    def _on_failure(self) -> None:
        """A storage fault: tell the process (``on_failure``, set by ``serve``) to stop."""
        if self.on_failure is not None:
            self.on_failure()

    def _context(self, d: TradeDecision) -> dict[str, object]:
        """What every log line of ``d``'s path carries: its id and its order's clientOrderId
        (``seq`` joins once the confirmation is numbered)."""
        return {"decision_id": d.decision_id, "client_order_id": self.core.ids.order(d.decision_id)}

    def _log_context(self, d: TradeDecision) -> LogContext:
        """:meth:`_context` added to every log line written inside the ``with`` block (built only
        when a line is written)."""
        return LogContext(lambda: self._context(d))

    async def _execute_group(self, arrivals: list[_Arrival]) -> None:
        """Admit and execute the decisions queued together for an in-process venue, in arrival order,
        their journal rows — each decision and its outcome — in one transaction
        (:meth:`~executor.journal.Journal.group`), then answer them all: a group commit of the
        decisions that arrived in one loop tick or while the previous group ran (issue #17). The
        venue is in this process, so nothing outside it acted before the commit.

        Raises:
            StorageFault: the group could not be committed (the process stops; nothing of the
                group was written, and the brain sends those decisions again).
            Exception: anything else once a venue call was made is a bug — the in-memory ledger may
                have moved for decisions whose journal rows were discarded — and stops the process
                too (as StorageFault); before any venue call (an admission that cannot read the
                journal) the group is dropped, counted in ``handler_errors``, and the brain's
                retransmits are admitted again.
        """
        done: list[tuple[_Arrival, Outcome]] = []
        acted = False  # a venue call was made: from here on a failure cannot be undone in memory
        try:
            with self.core.journal.group():
                for a in arrivals:
                    d = a.decision
                    with self._log_context(d):
                        admitted = self.core.admit(d, a.received_at_ns)
                        if isinstance(admitted, Outcome):
                            done.append((a, admitted))
                            continue
                        if admitted.conflict:
                            self.metrics.conflicts.inc()
                        acted = True
                        outcome = await self.core.resolve(admitted.decision, admitted.received_at_ns,
                                                          duplicate=admitted.duplicate, conflict=False,
                                                          recovering=admitted.duplicate, now_ns=time.time_ns())  # fmt: skip
                        done.append((a, outcome))
        except StorageFault:
            raise
        except Exception as exc:
            ids = [a.decision.decision_id for a in arrivals]
            if acted:
                self.log.exception("decision_group_failed", decisions=ids)
                raise StorageFault(f"a group of {len(arrivals)} decisions failed before its commit: {exc!r}") from exc
            # nothing reached the venue and nothing was written: as a datagram whose handling failed —
            # counted and logged; the brain's retransmits are admitted again
            self.metrics.handler_errors.inc(len(arrivals))
            self.log.exception("decision_admission_failed", decisions=ids)
            for a in arrivals:
                self._active.discard(a.decision.decision_id)
            self._count_in_flight()
            return
        now = time.time_ns()
        for a, outcome in done:
            self._active.discard(a.decision.decision_id)
            self._send_answer(outcome, now)
        self._count_in_flight()
        self._flush()  # the answers go out first: the rest is bookkeeping no answer waits for
        executed = False
        for a, outcome in done:
            d = a.decision
            self._count_answer(outcome, a.started)
            self._report(outcome, d)
            if outcome.executed:
                executed = True
                if self.reconciler is not None:
                    self.reconciler.entered(d, outcome)
            if self.core.venue.replay_clock:
                self._market_ns = max(self._market_ns, d.market_ts_ns)
        if executed:
            self._export_ledger()

    async def _execute(self, job: _Job) -> None:
        p = job.pending
        d = p.decision
        retry = job._replace(recovering=True)
        try:  # the conflict was counted on admission: the outcome does not count it again
            outcome = await self.core.resolve(d, p.received_at_ns, duplicate=p.duplicate, conflict=False,
                                              recovering=job.recovering, now_ns=time.time_ns())  # fmt: skip
        except Unresolved as exc:
            self.metrics.unresolved.inc()
            self.log.error("decision_unresolved", detail=exc.detail, retry_in_s=self.retry_unresolved_s)
            if self.reconciler is not None:  # an ambiguous venue episode: look at the venue's truth
                self._queue.put_nowait(_RECONCILE)
            asyncio.get_running_loop().call_later(self.retry_unresolved_s, self._queue.put_nowait, retry)
            return
        except StorageFault:
            raise  # the worker stops the process (_work)
        except Exception:
            # journaled and not confirmed: it stays in flight (the brain must not conclude it never
            # executed) and is tried again, looking its order up first, like an unresolved one
            self.metrics.handler_errors.inc()
            self.log.exception("decision_failed", retry_in_s=self.retry_unresolved_s)
            asyncio.get_running_loop().call_later(self.retry_unresolved_s, self._queue.put_nowait, retry)
            return
        self._active.discard(d.decision_id)
        self._count_in_flight()
        self._report(outcome, d)
        if outcome.executed:
            self._export_ledger()
        self._send_answer(outcome, time.time_ns())
        self._flush()
        self._count_answer(outcome, job.started)
        if self.reconciler is not None:
            self.reconciler.entered(d, outcome)
            venue = self.core.venue
            if venue.replay_clock:
                self._market_ns = max(self._market_ns, d.market_ts_ns)
                if outcome.executed and not venue.in_process:  # a replay: reconcile at the decision's time
                    self._queue.put_nowait(_RECONCILE)

    def _on_link_event(self, event: DecisionReceived | ReplayRequested | None, now: int) -> None:
        if isinstance(event, DecisionReceived):
            self.on_decision(event.decision, now)
        elif isinstance(event, ReplayRequested):
            self._replay(event.from_seq, now)

    def _replay(self, from_seq: int, now: int) -> None:
        confs = self.core.journal.confirmations_from(from_seq, REPLAY_BATCH)
        self.metrics.replays.inc()
        self.metrics.replayed.inc(len(confs))
        self._replay_log.info("served", from_seq=from_seq, count=len(confs))
        for conf in confs:
            self.link.send_confirmation(conf, now)

    def _flush(self) -> None:
        super()._flush()
        ignored = self.link.stats.replays_ignored
        if ignored != self._replays_ignored_seen:
            self.metrics.replays_ignored.inc(ignored - self._replays_ignored_seen)
            self._replays_ignored_seen = ignored

    def on_decision(self, decision: TradeDecision, now: int) -> None:
        """Handle one authentic decision: answer a confirmed one, queue a new one (journaled).

        A new decision's log context is bound once, by the worker that executes it; here only the
        lines about duplicates carry it."""
        started = time.perf_counter()
        self.metrics.decisions.inc()
        did = decision.decision_id
        if did in self._active:
            self.metrics.duplicates.inc()
            self._duplicate_log.info("in_flight", **self._context(decision))
            return
        answered = self._answered.get(did)
        if answered is not None and now - answered < DUPLICATE_ANSWER_INTERVAL_S * 1e9:
            self.metrics.duplicates.inc()
            self.metrics.duplicates_suppressed.inc()
            return
        if self.core.venue.in_process:  # admitted by the worker, in its group (:meth:`_execute_group`)
            self._active.add(did)
            self._count_in_flight()
            if not self._arrivals:  # one queued marker for all that arrive before the worker takes them
                self._queue.put_nowait(_ARRIVALS)
            self._arrivals.append(_Arrival(decision, now, started))
            return
        admitted = self.core.admit(decision, now)
        if isinstance(admitted, Outcome):
            self._report(admitted, decision)
            self._answer(admitted, started, now)
            return
        if admitted.conflict:
            self.metrics.conflicts.inc()
        self._enqueue(_Job(admitted, recovering=admitted.duplicate, started=started))

    def _report(self, outcome: Outcome, decision: TradeDecision) -> None:
        """Count ``outcome`` and log it: a line per decision at debug only (issue #17: the hot path),
        while the metrics count every one; conflicts and exits over their slippage limit always.
        Each line carries the decision's context (:meth:`_context`), built only when a line is
        written. The caller exports the ledger's gauges after an execution (:meth:`_export_ledger`;
        once per group)."""
        log = self.log
        c = outcome.confirmation
        if outcome.conflict:
            self.metrics.conflicts.inc()
            log.error("decision_conflict", detail="decision_id repeated with different content; stored outcome answered",
                      seq=c.seq, **self._context(decision))  # fmt: skip
        if outcome.duplicate:
            self.metrics.duplicates.inc()
            self._duplicate_log.info("answered", seq=c.seq, status=c.status.name, **self._context(decision))
        else:
            if self._log_debug:
                log.debug("decision_executed" if outcome.executed else "decision_not_executed", seq=c.seq,
                          status=c.status.name, reject_code=c.reject_code.name, executed_qty=c.executed_qty,
                          avg_price=c.avg_price, fee=c.fee, detail=outcome.detail,
                          exit_slippage_bps=outcome.exit_slippage_bps, **self._context(decision))  # fmt: skip
            if outcome.exit_slippage_bps is not None:
                self.metrics.exit_slippage.observe(outcome.exit_slippage_bps / 1e4)
            if c.slippage_over_limit:
                self.metrics.exits_over_slippage.inc()
                log.warning("exit_slippage_over_limit", seq=c.seq, slippage_bps=outcome.exit_slippage_bps,
                            max_slippage_bps=decision.max_slippage_bps, reference_price=decision.reference_price,
                            avg_price=c.avg_price, intent=decision.intent.name,
                            detail="executed anyway: exits are never refused for slippage",
                            **self._context(decision))  # fmt: skip
        if outcome.executed:
            self.metrics.executions.inc()

    def _answer(self, outcome: Outcome, started: float, now: int) -> None:
        """Queue ``outcome``'s confirmation for the next flush and count it (:meth:`_count_answer`)."""
        self._send_answer(outcome, now)
        self._count_answer(outcome, started)

    def _send_answer(self, outcome: Outcome, now: int) -> None:
        """Queue ``outcome``'s confirmation for the next flush; remember when it was answered."""
        conf = outcome.confirmation
        answered = self._answered
        answered[conf.decision_id] = now
        answered.move_to_end(conf.decision_id)
        if len(answered) > _ANSWERED_MAX:
            answered.popitem(last=False)
        self.link.send_confirmation(conf, now)

    def _count_answer(self, outcome: Outcome, started: float) -> None:
        """An answer's metrics: confirmations by status, and the processing time from ``started``
        (``time.perf_counter`` seconds at receipt) until now."""
        self.metrics.confirmed[outcome.confirmation.status].inc()
        self.metrics.processing.observe(time.perf_counter() - started)
