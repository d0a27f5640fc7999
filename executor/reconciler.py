"""The reconcile loop: evidence from the venue, the pure diff, corrections applied, belief debt, the
controller's posture — and the entry guard the executor enforces with it (issue #14).

One :meth:`Reconciler.cycle`:

1. **kill switch**: an operator's clear request (``kill-switch.clear`` in the run directory,
   written by ``tandem killswitch clear``) is taken: journaled, logged, counted, the file removed;
2. **evidence**: the venue's holdings of the traded symbols, its open orders and mark prices
   (each fetch through :class:`~executor.orders.OrderOps`, so a temporary error is retried within
   its bounds); a fetch that still fails is *evidence of nothing* — the cycle changes nothing and
   the belief debt grows;
3. **diff** (:func:`executor.reconcile.diff`) and **corrections**: an adoption, a phantom cleared
   or a drift fixed is journaled as a reconciled fill and confirmation (protocol v4 ``RECONCILED``,
   reserved decision ids; the brain learns it only through that confirmation), then applied to the
   ledger; an adopted position gets its stop at once; stop repairs go through the exit order
   gateway, journaled first (``reconciliations``). A correction the venue refuses is logged and
   counted, and the mismatch stays open for the next cycle;
4. **belief**: the cycle's mismatches into :class:`~executor.belief.BeliefDebt`, its aggregates into
   :class:`~executor.controller.BeliefController`; a new mode or kill switch is journaled (a latched
   kill switch survives a restart), logged (``execution.belief_state``) and exported; the posture
   goes into the executor's heartbeats (:attr:`Reconciler.posture`).

Each cycle logs ``reconcile.summary``. :meth:`Reconciler.admit` is the backstop: an OPEN the knobs
refuse is answered REJECTED / ``BELIEF_GUARD``; REDUCE, CLOSE and PROTECT always pass.

Times: ``now_ns`` is the caller's — the wall clock live, the replay's market time on a replay venue
(so a replay stays deterministic: the executor runs a cycle after each decision there, not on a
timer).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from structlog.contextvars import bound_contextvars

from protocol import (
    FULL_ENTRY_SCALE_BP,
    BeliefMode,
    ExecutionConfirmation,
    Instrument,
    Intent,
    Posture,
    RejectCode,
    Side,
    Status,
    TradeDecision,
)

from .belief import BeliefDebt, DebtAggregates, DebtRules
from .controller import BeliefController, ControllerRules, ControllerState, Denied, GuardKnobs, admit_entry
from .core import ExecutorCore, Outcome
from .ledger import Fill
from .orders import GATEWAY, Unresolved
from .planning import closing_side
from .reconcile import (
    Adopt,
    BeliefView,
    CancelStop,
    ClearPhantom,
    Correction,
    Evidence,
    FixDrift,
    PlaceStop,
    ReconcilePlan,
    ReconcileRules,
    ReconcileState,
    ResizeStop,
    StopView,
    diff,
)
from .venue.base import OrderType
from .venue.coid import Leg
from .venue.coid import parse as parse_coid
from .venue.errors import PermanentVenueError, VenueError

__all__ = ["KILL_SWITCH_CLEAR_FILE", "CycleReport", "Reconciler", "posture_of"]

KILL_SWITCH_CLEAR_FILE = "kill-switch.clear"
"""The operator's request to clear the kill switch, in the executor's run directory."""


def _tandem_stop(client_order_id: str) -> bool:
    """A protective stop placed by a tandem executor, of any journal's namespace: one executor trades
    one account, so a stop a previous journal of it left (a deleted journal, ``--fresh-journal``) is
    its own to keep or cancel."""
    parsed = parse_coid(client_order_id)
    return parsed is not None and parsed.leg is Leg.STOP


def posture_of(knobs: GuardKnobs) -> Posture:
    """The knobs as the heartbeat's posture (protocol v4: scale in bps, cooldown in ms, 0 = no cap)."""
    return Posture(
        mode=BeliefMode(int(knobs.mode)),
        entries_allowed=knobs.allow_entries,
        kill_switch=knobs.kill_switch,
        entry_scale_bp=round(knobs.entry_scale * FULL_ENTRY_SCALE_BP),
        entry_cooldown_ms=min(int(knobs.entry_cooldown_s * 1000), 2**32 - 1),
        max_notional=0.0 if math.isinf(knobs.max_notional) else knobs.max_notional,
    )


@dataclass(frozen=True, slots=True)
class CycleReport:
    """One cycle: its plan, the confirmations it produced (to send), the debt and the knobs after it."""

    plan: ReconcilePlan
    confirmations: tuple[ExecutionConfirmation, ...]
    debt: DebtAggregates
    knobs: GuardKnobs
    failed: tuple[str, ...] = ()  # corrections the venue refused, one line each
    seconds: float = 0.0


class Reconciler:
    """The reconcile loop of one executor (module docstring).

    Args:
        core: the executor core (ledger, journal, gateway, venue through its order ops).
        symbols: the symbols traded (the evidence asked for; ledger symbols are added).
        run_dir: where the operator's kill-switch clear request appears (``None``: none is taken).
        rules, debt_rules, controller_rules: the thresholds (defaults: the modules' documented ones).
        metrics: the executor's metrics (``reconcile_*``, ``belief_*``, ``kill_switch*``), or ``None``.
    """

    def __init__(self, core: ExecutorCore, symbols: list[str], *, run_dir: Path | None = None,
                 rules: ReconcileRules | None = None, debt_rules: DebtRules | None = None,
                 controller_rules: ControllerRules | None = None, metrics: Any = None) -> None:  # fmt: skip
        self.core, self.symbols, self.run_dir = core, list(symbols), run_dir
        self.rules = rules or ReconcileRules()
        self.state = ReconcileState()
        self.debt = BeliefDebt(debt_rules)
        saved = core.journal.belief_state()
        self.controller = (BeliefController.from_state(ControllerState.from_dict(saved), controller_rules)
                           if saved else BeliefController(controller_rules))  # fmt: skip
        self.metrics = metrics
        self.log = structlog.get_logger("reconcile")
        self.last_entry_ns: dict[str, int] = {}
        self.open_entry_orders: dict[str, int] = {}
        self.last: CycleReport | None = None
        self.cycles = 0  # the correlation id ``reconcile_cycle`` on every log line of a cycle
        self.on_posture: Callable[[Posture], None] | None = None
        """Called with the new posture whenever the knobs change (the app puts it in its heartbeats)."""
        self._export(self.controller.knobs, DebtAggregates())

    @property
    def knobs(self) -> GuardKnobs:
        return self.controller.knobs

    @property
    def posture(self) -> Posture:
        return posture_of(self.controller.knobs)

    # -- the backstop ------------------------------------------------------------------------

    def admit(self, d: TradeDecision) -> Denied | None:
        """The entry guard for one decision about to execute: a :class:`Denied` for an OPEN the knobs
        refuse (its reason goes into the REJECTED / BELIEF_GUARD confirmation), else ``None``."""
        symbol = str(d.instrument)
        verdict = admit_entry(self.controller.knobs, intent=d.intent, notional=d.quantity * d.reference_price,
                              now_ns=d.market_ts_ns, last_entry_ns=self.last_entry_ns.get(symbol),
                              open_orders=self.open_entry_orders.get(symbol, 0))  # fmt: skip
        if isinstance(verdict, Denied):
            if self.metrics is not None:
                self.metrics.guard_refusals.labels(verdict.guard.value).inc()
            self.log.warning("entry_refused_by_belief_guard", decision_id=d.decision_id, guard=verdict.guard.value,
                             detail=verdict.reason, mode=self.controller.mode.name)  # fmt: skip
            return verdict
        return None

    def entered(self, d: TradeDecision, outcome: Outcome) -> None:
        """An OPEN that executed: its market time starts the instrument's entry cooldown."""
        if d.intent is Intent.OPEN and outcome.executed:
            self.last_entry_ns[str(d.instrument)] = d.market_ts_ns

    # -- a cycle ---------------------------------------------------------------------------------

    async def cycle(self, now_ns: int, *, busy: frozenset[str] = frozenset()) -> CycleReport:
        """One reconcile cycle at ``now_ns`` (module docstring); ``busy``: symbols with a decision
        executing, left alone.

        Raises:
            StorageFault: a journal write failed for good (the process stops).
        """
        self.cycles += 1
        with bound_contextvars(reconcile_cycle=self.cycles):
            return await self._cycle(now_ns, busy)

    async def _cycle(self, now_ns: int, busy: frozenset[str]) -> CycleReport:
        started = time.perf_counter()
        self._take_clear_request(now_ns)
        core = self.core
        before = await self._take_profit_fills()
        evidence, fetch_error = await self._evidence()
        after = await self._take_profit_fills()
        # a take-profit that could not be looked up, or filled while the evidence was read, leaves its
        # symbol's holding unknowable this cycle: left alone, as a symbol with a decision executing is
        unsure = {s for s in set(before) | set(after) if after.get(s) is None or before.get(s) != after.get(s)}
        busy = busy | frozenset(unsure)
        belief = BeliefView(
            positions=self._expected_positions(after),
            avg_cost={str(i): p.avg_cost for i, p in core.ledger.positions().items()},
            stops={
                s: StopView(p.client_order_id, p.qty, p.stop_price, p.side) for s, p in core.gateway.stops.items()
            },
            busy=busy,
        )
        plan = diff(belief, evidence, self.state, now_ns, self.rules, protective=core.protective,
                    is_our_stop=_tandem_stop)  # fmt: skip
        confirmations: list[ExecutionConfirmation] = []
        failed: list[str] = []
        for correction in plan.corrections:
            try:
                confirmations.extend(await self._apply(correction, now_ns, evidence))
            except (PermanentVenueError, Unresolved, VenueError) as exc:
                failed.append(f"{type(correction).__name__} {correction.symbol}: {exc}")
                self.log.error("reconcile_correction_failed", correction=type(correction).__name__,
                               symbol=correction.symbol, error=f"{type(exc).__name__}: {exc}")  # fmt: skip
                continue
        fetch_failed = fetch_error is not None
        debt = self.debt.observe(now_ns, plan.mismatches, fetch_failed=fetch_failed)
        before = self.controller.state()
        knobs = self.controller.update(debt, now_ns)
        if self.controller.state() != before:
            self._belief_changed(before, now_ns, debt)
        seconds = time.perf_counter() - started
        report = CycleReport(plan, tuple(confirmations), debt, knobs, tuple(failed), seconds)
        self.last = report
        self._summarize(report, fetch_error)
        return report

    async def _take_profit_fills(self) -> dict[str, float | None]:
        """What each resting take-profit has filled so far, signed per symbol (``None``: it could not be
        looked up)."""
        core = self.core
        out: dict[str, float | None] = {}
        for symbol, leg in list(core.gateway.take_profits.items()):
            try:
                found = await core.ops.lookup(leg.client_order_id, symbol, reason="reconcile")
            except (VenueError, Unresolved):
                out[symbol] = None
                continue
            filled = found.filled if found is not None else 0.0
            out[symbol] = filled if leg.side is Side.BUY else -filled
        return out

    def _expected_positions(self, take_profit_fills: dict[str, float | None]) -> dict[str, float]:
        """The ledger's positions plus the fills the venue made that no outcome has booked yet — what
        the resting take-profits have filled (``take_profit_fills``), a fired stop or a take-profit fill
        kept for the next decision: the brain's next decision books those, so they are no drift."""
        core = self.core
        out = {str(i): p.qty for i, p in core.ledger.positions().items()}
        pending = core.gateway.pending_fills()
        for symbol, qty in take_profit_fills.items():
            if qty:
                pending[symbol] = pending.get(symbol, 0.0) + qty
        for symbol, qty in pending.items():
            total = out.get(symbol, 0.0) + qty
            if abs(total) <= 1e-12 * max(abs(qty), 1.0):
                out.pop(symbol, None)
            else:
                out[symbol] = total
        return out

    async def _evidence(self) -> tuple[Evidence, str | None]:
        core, venue = self.core, self.core.venue
        symbols = sorted(set(self.symbols) | {str(i) for i in core.ledger.positions()})
        try:
            holdings = await core.ops.call("holdings", lambda: venue.holdings(symbols))
            orders = await core.ops.call("open_orders", lambda: venue.open_orders(None))
            marks: dict[str, float] = {}
            for symbol in symbols:
                mark = await core.ops.call("mark_price", lambda s=symbol: venue.mark_price(s))
                if mark:
                    marks[symbol] = mark
        except (VenueError, Unresolved) as exc:
            return Evidence(None, None), f"{type(exc).__name__}: {exc}"
        entry_orders: dict[str, int] = {}
        for o in orders:
            if core.ids.mine(o.client_order_id, Leg.ORDER) is not None:
                entry_orders[o.symbol] = entry_orders.get(o.symbol, 0) + 1
        self.open_entry_orders = entry_orders
        return Evidence(
            holdings={s: (p.qty, p.entry_price) for s, p in holdings.items()},
            open_orders=orders, marks=marks, min_amount={s: venue.min_amount(s) for s in symbols},
        ), None  # fmt: skip

    # -- corrections -----------------------------------------------------------------------------

    async def _apply(self, c: Correction, now_ns: int, evidence: Evidence) -> list[ExecutionConfirmation]:
        """Carry out one correction; returns the reconciled confirmations it made (a ledger
        correction: one, or two for a position found on the other side; a stop repair: none)."""
        core = self.core
        if isinstance(c, Adopt):
            conf = self._reconciled(c.symbol, _entry_side(c.qty), Intent.OPEN, abs(c.qty), c.price, now_ns, "adopt",
                                    f"on the venue, not in the ledger: {c.qty} at {c.price}")  # fmt: skip
            self._count("adoptions")
            if core.protective:
                await core.gateway.protect(c.symbol, abs(c.qty), c.stop_price, conf.decision_id, now_ns,
                                           side=closing_side(c.qty))  # fmt: skip
            return [conf]
        if isinstance(c, ClearPhantom):
            conf = self._reconciled(c.symbol, closing_side(c.qty), Intent.CLOSE, abs(c.qty), c.price, now_ns,
                                    "clear_phantom", f"in the ledger, not on the venue: {c.qty}, cleared at the mark"
                                    f" {c.price}")  # fmt: skip
            self._count("phantoms")
            core.gateway.stops.pop(c.symbol, None)
            core.journal.clear_protective(c.symbol)
            return [conf]
        if isinstance(c, FixDrift):
            self._count("drift_fixes")
            if (c.ledger_qty > 0) is not (c.venue_qty > 0):  # on the other side: two corrections, never netted
                detail = f"ledger {c.ledger_qty}, venue {c.venue_qty} (the other side): cleared, then adopted"
                cleared = self._reconciled(c.symbol, closing_side(c.ledger_qty), Intent.CLOSE, abs(c.ledger_qty),
                                           c.price, now_ns, "fix_drift", detail)  # fmt: skip
                adopted = self._reconciled(c.symbol, _entry_side(c.venue_qty), Intent.OPEN, abs(c.venue_qty),
                                           c.price, now_ns, "fix_drift", detail)  # fmt: skip
                return [cleared, adopted]
            up = abs(c.venue_qty) > abs(c.ledger_qty)
            qty = abs(c.venue_qty - c.ledger_qty)
            side = _entry_side(c.ledger_qty) if up else closing_side(c.ledger_qty)
            conf = self._reconciled(c.symbol, side, Intent.OPEN if up else Intent.REDUCE, qty, c.price, now_ns,
                                    "fix_drift", f"ledger {c.ledger_qty}, venue {c.venue_qty}: set to the venue's")  # fmt: skip
            return [conf]
        action_id = core.journal.next_action_id()
        if isinstance(c, PlaceStop):
            core.journal.record_reconcile_action(kind="stop_placed", symbol=c.symbol, action_id=action_id,
                                                 detail=f"no stop: placing one for {c.qty} at {c.stop_price}",
                                                 at_ns=now_ns)  # fmt: skip
            self._repair("stop_missing")
            await core.gateway.protect(c.symbol, abs(c.qty), c.stop_price, action_id, now_ns, side=closing_side(c.qty))
        elif isinstance(c, ResizeStop):
            core.journal.record_reconcile_action(kind="stop_resized", symbol=c.symbol, action_id=action_id,
                                                 detail=f"stop short of the position: now {c.qty} at {c.stop_price}",
                                                 at_ns=now_ns)  # fmt: skip
            self._repair("stop_short")
            await core.gateway.move(c.symbol, abs(c.qty), c.stop_price, action_id, now_ns, bounded=False,
                                    side=closing_side(c.qty),
                                    crossed_exits=False)  # fmt: skip
        elif isinstance(c, CancelStop):
            kind = next((o.type for o in evidence.open_orders or () if o.client_order_id == c.client_order_id),
                        OrderType.STOP_MARKET)  # fmt: skip
            core.journal.record_reconcile_action(kind="stop_cancelled", symbol=c.symbol, action_id=action_id,
                                                 detail=f"extra or orphaned stop {c.client_order_id}", at_ns=now_ns)  # fmt: skip
            self._repair("stop_extra")
            await core.ops.cancel(c.client_order_id, c.symbol, owner=GATEWAY, kind=kind)
        return []

    def _reconciled(self, symbol: str, side: Side, intent: Intent, qty: float, price: float, now_ns: int,
                    kind: str, detail: str) -> ExecutionConfirmation:  # fmt: skip
        """Journal a ledger correction as a reconciled fill and confirmation, then apply it."""
        core = self.core
        action_id = core.journal.next_action_id()
        instrument = Instrument.parse(symbol)
        fill = Fill(action_id, instrument, side, qty, price, 0.0, now_ns)
        conf = ExecutionConfirmation(
            decision_id=action_id, seq=core.journal.next_seq(), instrument=instrument, side=side, intent=intent,
            status=Status.FILLED, reject_code=RejectCode.NONE, executed_qty=qty, avg_price=price, fee=0.0,
            executed_at_ns=now_ns, reconciled=True,
        )  # fmt: skip
        core.journal.record_reconciled(conf, fill, kind=kind, detail=detail, at_ns=now_ns)
        core.ledger.apply(fill)
        self.log.warning(f"reconcile_{kind}", symbol=symbol, decision_id=action_id, seq=conf.seq, side=side.name,
                         intent=intent.name, qty=qty, price=price, detail=detail)  # fmt: skip
        return conf

    # -- the operator's kill-switch clear --------------------------------------------------------

    def _take_clear_request(self, now_ns: int) -> None:
        if self.run_dir is None:
            return
        request = self.run_dir / KILL_SWITCH_CLEAR_FILE
        if not request.exists():
            return
        try:
            asked = json.loads(request.read_text() or "{}")
        except (OSError, ValueError):
            asked = {}
        before = self.controller.state()
        was_set = self.controller.clear_kill_switch(now_ns)
        by = str(asked.get("by", "unknown"))
        self.core.journal.record_reconcile_action(
            kind="kill_switch_cleared" if was_set else "kill_switch_clear_ignored", symbol="*",
            action_id=self.core.journal.next_action_id(), detail=f"requested by {by}", at_ns=now_ns,
        )  # fmt: skip
        request.unlink(missing_ok=True)
        if self.metrics is not None:
            self.metrics.kill_switch_clears.inc()
        self.log.warning("kill_switch_cleared" if was_set else "kill_switch_clear_ignored", by=by,
                         mode=self.controller.mode.name)  # fmt: skip
        if self.controller.state() != before:
            self._belief_changed(before, now_ns, self.debt.aggregates)

    # -- belief state, logs and metrics ----------------------------------------------------------

    def _belief_changed(self, before: ControllerState, now_ns: int, debt: DebtAggregates) -> None:
        after = self.controller.state()
        self.core.journal.record_belief_state(after.as_dict())
        last = self.controller.history[-1] if self.controller.history else None
        self.log.warning("execution.belief_state", mode=after.mode.name, previous=before.mode.name,
                         kill_switch=after.kill_switch, cause=last.cause.value if last else None,
                         detail=last.detail if last else None, debt_score=debt.score, debt_seconds=debt.debt_seconds,
                         instruments=debt.instruments, streak=debt.streak, at_ns=now_ns)  # fmt: skip
        knobs = self.controller.knobs
        self._export(knobs, debt)
        if self.on_posture is not None:
            self.on_posture(posture_of(knobs))

    def _summarize(self, r: CycleReport, fetch_error: str | None) -> None:
        kinds = [f"{s}:{k.value}" for s, k in r.plan.mismatches]
        self.log.info("reconcile.summary", decision_ids=[c.decision_id for c in r.confirmations], mismatches=kinds, corrections=[type(c).__name__ for c in r.plan.corrections],
                      skipped=[f"{s}:{k.value}: {why}" for s, k, why in r.plan.skipped], failed=list(r.failed),
                      fetch_error=fetch_error, mode=r.knobs.mode.name, debt_score=r.debt.score,
                      debt_seconds=r.debt.debt_seconds, streak=r.debt.streak, seconds=round(r.seconds, 4))  # fmt: skip
        m = self.metrics
        if m is None:
            return
        m.reconcile_runs.inc()
        if fetch_error is not None or r.failed:
            m.reconcile_failures.inc()
        m.reconcile_duration.observe(r.seconds)
        for _symbol, kind, _why in r.plan.skipped:
            m.reconcile_repairs_skipped.labels(kind.value).inc()
        self._export(r.knobs, r.debt)

    def _export(self, knobs: GuardKnobs, debt: DebtAggregates) -> None:
        m = self.metrics
        if m is None:
            return
        m.belief_mode.state(knobs.mode.name)
        m.kill_switch.set(1 if knobs.kill_switch else 0)
        m.belief_debt_seconds.set(debt.debt_seconds)
        m.belief_debt_instruments.set(debt.instruments)
        m.mismatch_streak.set(debt.streak)
        m.belief_debt_score.set(debt.score)

    def _count(self, what: str) -> None:
        if self.metrics is not None:
            getattr(self.metrics, f"reconcile_{what}").inc()

    def _repair(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.reconcile_repairs.labels(kind).inc()


def _entry_side(qty: float) -> Side:
    """The side that opens a position of signed ``qty``: BUY for a long, SELL for a short."""
    return Side.SELL if qty < 0 else Side.BUY
