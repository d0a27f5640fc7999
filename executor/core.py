"""The executor's core: decision in, confirmation out, exactly once — on any venue.

``await ExecutorCore.on_decision(decision, now_ns)`` applies, in order:

a. **already confirmed** → the stored confirmation, ``duplicate=True``, never executed again
   (also after a restart: the journal is the memory);
b. **journaled but not confirmed** (in flight) → resolved now exactly as a restart would;
c. **expired** (``now_ns > expires_at_ns``) → ``EXPIRED / RejectCode.EXPIRED``, journaled
   (decision and confirmation, no fill), not executed;
d. otherwise: journal the decision (committed before acting; for an in-process venue the app
   may commit it with its outcome instead, :meth:`~executor.journal.Journal.group`), execute it
   on the venue through
   :class:`~executor.orders.OrderOps` (entries) or the exit order gateway (exits and PROTECT),
   journal the outcome (fill + confirmation + state done in one transaction), then apply the fill to
   the ledger.

**Exits are never refused for slippage** (DESIGN.md invariant 3): an entry is a LIMIT_IOC at
``max_slippage_bps`` from its reference (or the paper venue's equivalent check), but a CLOSE or
REDUCE is a market order whatever the distance from its reference — a stop that does not execute
because the price moved against the position is the failure the exit plan exists to prevent. An
executed exit worse than its reference (a PROTECT's stop fill: worse than its ``stop_price``) by
more than ``max_slippage_bps`` carries the ``SLIPPAGE_OVER_LIMIT`` flag in its confirmation, and
its slippage is in :attr:`Outcome.exit_slippage_bps` for the application to count and log.

**One stop level**: a filled entry's protective stop is placed at
:meth:`~protocol.TradeDecision.stop_for_fill` of the fill price — the level the brain's exit plan
computes from the same confirmation — not at the ``stop_price`` the decision carried.

The synchronous steps — :meth:`ExecutorCore.admit` (rules a–b and journaling) and
:meth:`ExecutorCore.settle` (report → confirmation, journal, ledger) — contain every state change;
the awaited venue calls sit between them and change nothing here. What to send is planned by the
pure functions of :mod:`executor.planning` (:func:`~executor.planning.plan_decision`,
:func:`~executor.planning.entry_stop`); this module makes the venue calls they call for.

A repeated ``decision_id`` whose other fields differ from the journaled decision is answered like
(a) or (b) — with the journaled decision's outcome; the new content is never executed — and the
outcome carries ``conflict=True`` so the application can count it.

Confirmation seq numbers are gap-free from 1 in the order outcomes are journaled (the journal
enforces it). A confirmation that executed nothing carries ``executed_at_ns = 0``; its ``sent_at_ns``
is 0 here and stamped by the sender at each transmission.

Restart (:meth:`ExecutorCore.open`): the ledger is rebuilt as a fold over the journal's fills, then
every in-flight decision is resolved in decision-id order, **looking its order up by client order
id before anything is sent** (DESIGN.md invariant 4 and 7): an order the venue already has is
settled from the venue's report, never placed twice; only an order the venue proves absent is
placed (paper orders live in memory, so on paper that is always a fresh placement with the same
price — judged against the journaled ``received_at_ns`` for expiry and ``market_ts_ns`` for price).

Errors: :class:`~executor.orders.Unresolved` propagates when the venue's answer stays ambiguous —
the decision stays in flight and the caller tries again later; journal failures propagate as
:class:`~executor.journal.JournalError`; nothing is applied to the ledger unless its outcome was
committed first. Venue refusals become REJECTED/FAILED confirmations.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import structlog

from protocol import ExecutionConfirmation, Intent, RejectCode, Side, Status, TradeDecision, slippage_bps
from protocol.messages import VENUE_REF_SIZE

from . import planning
from .gateway import ExitOrderGateway
from .journal import Journal, JournalError
from .ledger import Fill, Ledger, LedgerError
from .orders import OrderOps
from .venue.base import OrderReport, OrderStatus, OrderType, Venue
from .venue.coid import OrderIds, is_exit_leg_id
from .venue.errors import PermanentVenueError
from .venue.retry import RetryPolicy

__all__ = ["ExecutorCore", "Outcome", "Pending"]


def _exit_slippage_bps(d: TradeDecision, side: Side, avg_price: float) -> float | None:
    """Slippage of an executed exit against its reference — a CLOSE's or REDUCE's
    ``reference_price``, a PROTECT's ``stop_price`` (its stop filled) — in bps; ``None`` for an entry."""
    if d.intent in (Intent.CLOSE, Intent.REDUCE):
        return slippage_bps(side, d.reference_price, avg_price)
    if d.intent is Intent.PROTECT:
        return slippage_bps(side, d.stop_price, avg_price)
    return None


def _venue_ref(report: OrderReport) -> bytes:
    """The full venue reference of an order: the venue's bytes (a Solana signature), else its order
    id, else our client order id (ASCII)."""
    if report.venue_ref:
        return report.venue_ref
    return report.venue_order_id.encode("ascii", "replace") or report.client_order_id.encode("ascii")


class Outcome(NamedTuple):
    """What became of one decision delivery. (A ``NamedTuple``, as :class:`~executor.venue.base.OrderRequest`.)

    Attributes:
        confirmation: the confirmation to send (``sent_at_ns`` 0, stamped by the sender).
        duplicate: the decision id had been received before (retransmit or replay).
        executed: this call traded (a fill was journaled and applied to the ledger).
        conflict: the id repeated with different content; the stored outcome was answered.
        detail: why it did not execute, for logs (empty when executed or duplicate-confirmed).
        exit_slippage_bps: for an executed exit (CLOSE, REDUCE, a PROTECT's stop fill), how much
            worse than its reference the fill is, bps (negative: better); else ``None``.
    """

    confirmation: ExecutionConfirmation
    duplicate: bool
    executed: bool
    conflict: bool = False
    detail: str = ""
    exit_slippage_bps: float | None = None


class Pending(NamedTuple):
    """A journaled decision still to execute: what :meth:`ExecutorCore.admit` hands on when it has
    no stored outcome to answer with.

    Attributes:
        decision: the journaled decision (for a repeated id, the journaled content, not the new one).
        received_at_ns: when it was first received, Unix ns (judges its expiry).
        duplicate: received before and still in flight (a retransmit, or one a restart left): it is
            resolved like a recovery, looking its order up first.
        conflict: the id repeated with different content.
    """

    decision: TradeDecision
    received_at_ns: int
    duplicate: bool = False
    conflict: bool = False


class ExecutorCore:
    """Decisions → venue → journal → ledger; see the module docstring for the rules.

    Args:
        journal: the open journal (owned by the core from now on; :meth:`close` closes it).
        venue: where orders go (started by :meth:`open`).
        ledger: the ledger matching the journal's fills (see :meth:`open`).
        ops: order primitives over ``venue`` (default: :class:`OrderOps` with a default policy).
        protective: place protective stops on the venue when it supports them.
        allow_short: short entries (SELL OPEN) are executed; the ledger must allow them too.

    Attributes:
        recovered: outcomes of the in-flight decisions :meth:`open` resolved; their
            confirmations are new and must be sent to the brain.
        gateway: the exit order gateway (owns protective orders).
        namespace, ids: this journal's client order id namespace and its id factory.
    """

    def __init__(
        self, journal: Journal, venue: Venue, ledger: Ledger, *, ops: OrderOps | None = None, protective: bool = True,
        allow_short: bool = False,
    ) -> None:  # fmt: skip
        self.journal = journal
        self.allow_short = allow_short
        self.venue = venue
        self.ledger = ledger
        self.ops = ops if ops is not None else OrderOps(venue, RetryPolicy())
        self.namespace = journal.namespace()
        self.ids = OrderIds(self.namespace)
        self.gateway = ExitOrderGateway(self.ops, self.namespace, store=journal, metrics=self.ops.metrics)
        self.protective = protective and venue.supports_protective
        self.recovered: tuple[Outcome, ...] = ()
        self.entry_guard: Callable[[TradeDecision], object | None] | None = None
        """The belief guard's backstop (:meth:`executor.reconciler.Reconciler.admit`): a refusal
        (anything with a ``reason``) for an OPEN about to execute, else ``None``; exits always pass."""
        self.log = structlog.get_logger("executor")
        venue.bind(ledger)  # a simulated venue keeps its account in the ledger; a real one ignores it
        venue.keep_records(journal)  # the Solana venue journals each signed transaction before sending it

    @classmethod
    async def open(
        cls, journal_path: str | Path, venue: Venue, starting_cash: float, *, synchronous: str = "NORMAL",
        ops: OrderOps | None = None, protective: bool = True, allow_short: bool = False,
    ) -> ExecutorCore:  # fmt: skip
        """Open (or create) the journal, rebuild the ledger, start the venue, adopt its protective
        orders and resolve in-flight decisions (an unresolved one stays in flight).

        Raises:
            JournalError: see :class:`~executor.journal.Journal` (corrupt file, other starting
                cash, ...). VenueError: the venue could not start.
        """
        journal = Journal(journal_path, starting_cash=starting_cash, synchronous=synchronous)
        try:
            # a derivatives venue's ledger can hold a short even when tandem opens none (allow_short off):
            # one sold by hand is adopted by reconciliation, never refused — the venue is the truth
            ledger = Ledger.from_fills(journal.starting_cash, journal.fills(), allow_short=venue.supports_short)
            core = cls(journal, venue, ledger, ops=ops, protective=protective, allow_short=allow_short)
            await venue.start()
            if core.protective:
                await core.gateway.adopt(core.held())
            elif venue.supports_resting_limits and venue.orders_survive_restart:
                await core.gateway.tp.adopt()
            elif venue.supports_resting_limits:  # the paper venue: its resting orders died with the process
                await core.gateway.tp.restore(core.held(), core._decision_time)
            core.recovered = tuple(await core.recover())
        except BaseException:
            journal.close()
            raise
        return core

    def _decision_time(self, decision_id: int) -> int | None:
        """The market time of a journaled decision (``None`` when the journal has no such decision)."""
        rec = self.journal.decision(decision_id)
        return None if rec is None else rec.decision.market_ts_ns

    def held(self) -> dict[str, float]:
        """The ledger's positions by venue symbol, base units, signed (< 0 short)."""
        return {str(i): p.qty for i, p in self.ledger.positions().items()}

    async def recover(self) -> list[Outcome]:
        """Resolve every in-flight decision, in decision-id order; returns their outcomes."""
        out = []
        for decision in self.journal.in_flight():
            rec = self.journal.decision(decision.decision_id)
            assert rec is not None
            out.append(await self.resolve(decision, rec.received_at_ns, duplicate=False, conflict=False,
                                          recovering=True))  # fmt: skip
        return out

    def admit(self, decision: TradeDecision, now_ns: int) -> Outcome | Pending:
        """Rules a–b, synchronously: the stored :class:`Outcome` of a confirmed decision, or the
        :class:`Pending` decision to resolve (a new one is journaled first).

        Raises:
            JournalError: a done decision without a confirmation, or a journal write refused.
        """
        rec = self.journal.decision(decision.decision_id)
        if rec is None:
            self.journal.record_decision(decision, now_ns)
            return Pending(decision, now_ns)
        conflict = rec.decision != decision
        if rec.state == "received":
            return Pending(rec.decision, rec.received_at_ns, duplicate=True, conflict=conflict)
        conf = self.journal.confirmation_for(decision.decision_id)
        if conf is None:
            raise JournalError(
                f"{self.journal.path}: decision {decision.decision_id} is done without a confirmation"
            )
        return Outcome(conf, duplicate=True, executed=False, conflict=conflict)

    async def on_decision(self, decision: TradeDecision, now_ns: int) -> Outcome:
        """Handle one received decision at wall clock ``now_ns`` (Unix ns); see rules a–d."""
        admitted = self.admit(decision, now_ns)
        if isinstance(admitted, Outcome):
            return admitted
        return await self.resolve(admitted.decision, admitted.received_at_ns, duplicate=admitted.duplicate,
                                  conflict=admitted.conflict, recovering=admitted.duplicate, now_ns=now_ns)  # fmt: skip

    async def resolve(
        self, d: TradeDecision, received_at_ns: int, *, duplicate: bool, conflict: bool, recovering: bool,
        now_ns: int | None = None,
    ) -> Outcome:  # fmt: skip
        """Execute a journaled, in-flight decision and settle its outcome.

        ``now_ns`` (wall clock) matters for a retry on a real venue: once the decision has
        expired, a retry only looks its order up — it never places a late order.

        Raises:
            Unresolved: the venue's answer stayed ambiguous; nothing was journaled or applied.
        """
        may_exist = recovering and self.venue.orders_survive_restart
        expired = received_at_ns > d.expires_at_ns or (may_exist and now_ns is not None and now_ns > d.expires_at_ns)
        if expired and not may_exist:
            detail = f"received at {received_at_ns} ns, expired at {d.expires_at_ns} ns"
            return self._refuse(d, Status.EXPIRED, RejectCode.EXPIRED, detail, duplicate, conflict)
        if self.entry_guard is not None and d.intent is Intent.OPEN and not recovering:
            refused = self.entry_guard(d)
            if refused is not None:  # the belief guard (issue #14): entries only, never an exit
                return self._refuse(d, Status.REJECTED, RejectCode.BELIEF_GUARD, str(getattr(refused, "reason", refused)),
                                    duplicate, conflict)  # fmt: skip
        try:
            report = await self._execute(d, recovering=recovering, expired=expired)
        except PermanentVenueError as exc:
            return self._refuse(d, exc.status, exc.reject_code, exc.detail, duplicate, conflict)
        if report is None:  # recovering an expired decision whose order the venue never had
            detail = f"received at {received_at_ns} ns, expired at {d.expires_at_ns} ns"
            return self._refuse(d, Status.EXPIRED, RejectCode.EXPIRED, detail, duplicate, conflict)
        return self.settle(d, report, duplicate=duplicate, conflict=conflict)

    async def _execute(self, d: TradeDecision, *, recovering: bool, expired: bool) -> OrderReport | None:
        """Make the venue calls :func:`~executor.planning.plan_decision` calls for; returns the
        report to confirm with (``None``: expired and the venue has nothing).

        Raises:
            PermanentVenueError: refused by the plan or by the venue. Unresolved: see :meth:`resolve`.
        """
        await self.venue.observe_time(d.market_ts_ns)  # a replay venue's clock: its resting orders fill up to it
        plan = planning.plan_decision(d, self.ledger, self.ids, listed=self.venue.lists(str(d.instrument)),
                                      protective=self.protective, venue_name=self.venue.name, expired=expired,
                                      allow_short=self.allow_short,
                                      resting_limits=self.venue.supports_resting_limits)  # fmt: skip
        if isinstance(plan, planning.Refusal):
            raise plan.error()
        if isinstance(plan, planning.RecoverExpired):
            if plan.stop_id is not None:  # a PROTECT's stop (open: ACCEPTED), or the exit a crossed stop became
                found = await self.ops.lookup(plan.stop_id, plan.symbol, reason="recovery")
                if found is not None:
                    if d.intent is Intent.TAKE_PROFIT and not found.status.terminal:
                        self.gateway.tp.hold(plan.symbol, found, d.stop_price)  # it rests: the gateway's
                    return found
            found = await self.ops.lookup(plan.order_id, plan.symbol, reason="recovery")
            return None if found is None else await self.ops.settle(found, plan.symbol, owner=plan.owner)
        if isinstance(plan, planning.MoveStop):
            return await self.gateway.move(plan.symbol, plan.qty, plan.stop, d.decision_id, d.market_ts_ns,
                                           recovering=recovering, side=plan.side)  # fmt: skip
        if isinstance(plan, planning.PlaceTakeProfit):  # the exit legs are the gateway's too
            return await self.gateway.tp.place(plan.symbol, plan.qty, plan.price, d.decision_id, d.market_ts_ns,
                                               side=plan.side, recovering=recovering)  # fmt: skip
        if isinstance(plan, planning.ReportTakeProfit):
            report = await self.gateway.take_profit_fill(plan.symbol, plan.position_qty, d.decision_id, d.market_ts_ns)
            if report is None and plan.symbol in self.gateway.take_profits:
                raise PermanentVenueError(f"{plan.symbol}: the take-profit rests unfilled", RejectCode.VENUE_ERROR,
                                          Status.REJECTED)  # fmt: skip
            if report is None:  # the brain drops the leg (SPEC.md §6.1 "Exit legs")
                raise PermanentVenueError(f"{plan.symbol}: no take-profit rests", RejectCode.VENUE_ERROR, Status.FAILED)
            return report
        if isinstance(plan, planning.ExitPosition):  # exits go through the gateway, which owns the stop
            return await self.gateway.exit(plan.symbol, plan.qty, plan.position_qty, d.decision_id, d.market_ts_ns,
                                           plan.reference_price, recovering=recovering, side=plan.side)  # fmt: skip
        req = plan.request
        if req.reduce_only:  # an exit on a venue without stops: its take-profit goes first, as every leg does
            took = await self.gateway.tp.cancel(req.symbol)
            if took is not None:
                return took  # it had filled: that fill answers the exit, the brain finishes it on its next bar
        report = await self.ops.settle(await self.ops.place(req, lookup_first=recovering), req.symbol, owner=req.owner)
        if plan.protect:
            stop = planning.entry_stop(d, plan.held, report, self.gateway.stops)
            if stop is not None:
                await self._protect_entry(d, stop, recovering)
        return report

    async def _protect_entry(self, d: TradeDecision, stop: planning.EntryStop, recovering: bool) -> None:
        """Place (or, for a grown position, move) a filled entry's stop. Whatever happens to the
        stop, the entry's fill stands: a refusal marks the position unprotected (retried by
        maintenance), a stop found filled is kept for the next exit decision."""
        gw = self.gateway
        try:
            if stop.move:
                r = await gw.move(stop.symbol, stop.qty, stop.stop, d.decision_id, d.market_ts_ns,
                                  recovering=recovering, bounded=False, crossed_exits=False, side=stop.side)  # fmt: skip
                if r.status.terminal and r.filled > 0:
                    gw.fired[stop.symbol] = r  # the old stop had fired: reported with the next exit
            else:
                await gw.protect(stop.symbol, stop.qty, stop.stop, d.decision_id, d.market_ts_ns, recovering=recovering,
                                 side=stop.side)  # fmt: skip
        except PermanentVenueError as exc:
            gw.mark_unprotected(stop.symbol, stop.qty, stop.stop, d.decision_id, d.market_ts_ns, exc.detail,
                                side=stop.side)  # fmt: skip

    def settle(self, d: TradeDecision, report: OrderReport, *, duplicate: bool, conflict: bool) -> Outcome:
        """The venue's final report → confirmation, journaled with its fill, then applied."""
        if report.filled <= 0:
            if d.intent in (Intent.PROTECT, Intent.TAKE_PROFIT) and not report.status.terminal:
                conf = self._confirm(d, Status.ACCEPTED, RejectCode.NONE, ref=_venue_ref(report))
                return Outcome(conf, duplicate=duplicate, executed=False, conflict=conflict,
                               detail=f"stop at {report.stop_price} ({report.client_order_id})")  # fmt: skip
            code = RejectCode.SLIPPAGE_EXCEEDED if report.type is OrderType.LIMIT_IOC else RejectCode.VENUE_ERROR
            detail = f"{self.venue.name} order {report.client_order_id} ended {report.status} with nothing filled"
            status = Status.FAILED
            if report.reject_code is not RejectCode.NONE:  # the venue says why (a transaction that landed and failed)
                code = report.reject_code  # REJECTED with its reason; FAILED for funds, as a venue's refusal is
                status = Status.FAILED if code is RejectCode.INSUFFICIENT_FUNDS else Status.REJECTED
            if report.fee != 0:  # a failed execution that paid a fee (protocol v5): journaled as a fee-only fill
                fee_only = Fill(d.decision_id, d.instrument, report.side, 0.0, 0.0, report.fee,
                                report.updated_at_ns or 1, report.fee_native)  # fmt: skip
                conf = self._confirm(d, status, code, fill=fee_only, ref=_venue_ref(report))
                self.ledger.apply(fee_only)
                return Outcome(conf, duplicate=duplicate, executed=False, conflict=conflict,
                               detail=f"{detail}; fee {report.fee} paid")  # fmt: skip
            return self._refuse(d, status, code, detail, duplicate, conflict)
        full = report.status is OrderStatus.FILLED
        code = RejectCode.NONE if full else (
            RejectCode.SLIPPAGE_EXCEEDED if report.type is OrderType.LIMIT_IOC else RejectCode.VENUE_ERROR)  # fmt: skip
        fill = Fill(d.decision_id, d.instrument, report.side, report.filled, report.avg_price, report.fee,
                    report.updated_at_ns or 1, report.fee_native)  # fmt: skip
        slip = _exit_slippage_bps(d, report.side, report.avg_price)
        over = slip is not None and slip > d.max_slippage_bps
        coid = report.client_order_id  # an exit leg's fill (a stop, the take-profit): its row goes with the outcome
        settled = coid if is_exit_leg_id(coid) and self.ids.mine(coid) is not None else None
        try:  # never journal a fill the ledger would refuse: a journal that cannot be folded cannot be opened
            self.ledger.check(fill)
        except LedgerError as exc:
            self.log.critical("fill_refused_by_the_ledger", client_order_id=report.client_order_id, detail=str(exc))
            return self._refuse(d, Status.FAILED, RejectCode.VENUE_ERROR,
                                f"the venue's fill is refused by the ledger ({exc}); reconciliation settles it",
                                duplicate, conflict)  # fmt: skip
        conf = self._confirm(d, Status.FILLED if full else Status.PARTIALLY_FILLED, code, fill=fill,
                             ref=_venue_ref(report), slippage_over_limit=over, settled_leg=settled)  # fmt: skip
        self.gateway.claim(report.client_order_id)  # booked now: it answers no other decision
        self.ledger.apply(fill)
        return Outcome(conf, duplicate=duplicate, executed=True, conflict=conflict, exit_slippage_bps=slip)

    def _refuse(
        self, d: TradeDecision, status: Status, code: RejectCode, detail: str, duplicate: bool, conflict: bool,
    ) -> Outcome:  # fmt: skip
        conf = self._confirm(d, status, code)
        return Outcome(conf, duplicate=duplicate, executed=False, conflict=conflict, detail=detail)

    def _confirm(
        self, d: TradeDecision, status: Status, code: RejectCode, *, fill: Fill | None = None, ref: bytes = b"",
        slippage_over_limit: bool = False, settled_leg: str | None = None,
    ) -> ExecutionConfirmation:  # fmt: skip
        """Build the next confirmation for ``d`` and journal it (with ``fill``, one transaction)."""
        conf = ExecutionConfirmation(
            decision_id=d.decision_id,
            seq=self.journal.next_seq(),
            instrument=d.instrument,
            side=fill.side if fill is not None else d.side,
            intent=d.intent,
            status=status,
            reject_code=code,
            executed_qty=fill.qty if fill is not None else 0.0,
            avg_price=fill.price if fill is not None else 0.0,
            fee=fill.fee if fill is not None else 0.0,
            executed_at_ns=fill.executed_at_ns if fill is not None and not fill.fee_only else 0,
            venue_ref=ref[:VENUE_REF_SIZE],
            venue_ref_truncated=len(ref) > VENUE_REF_SIZE,
            slippage_over_limit=slippage_over_limit,
        )
        self.journal.record_outcome(conf, fill, ref, settled_leg=settled_leg)
        return conf

    def close(self) -> None:
        """Close the journal (see :meth:`aclose` for the venue too)."""
        self.journal.close()

    async def aclose(self) -> None:
        """Close the venue's connections, then the journal."""
        try:
            await self.venue.close()
        finally:
            self.journal.close()
