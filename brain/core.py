"""The brain's pure core: bars and confirmations in, decisions and skips out.

No I/O and no clock: every call is given the market time (the close of the bar being
processed) and the wall time (for the decision's freshness and expiry stamps). The asyncio
application sends what :meth:`BrainCore.on_bar` returns and feeds back what arrives.

Per bar, in order: mark the position and evaluate its exit plan; feed equity to the breakers;
run the strategy; then decide. Rules (issue #2):

* an exit that fires sends a SELL/CLOSE with the exit's reason — never blocked by breakers; an
  exit that only partly filled is resent for the remainder on the next bar (same reason) until the
  position is flat, whether or not the exit rule still fires; so is an exit that **expired**
  (answered EXPIRED, or resolved as never executed, :meth:`BrainCore.abandon`) — a signal exit
  decided on a crossover that does not repeat included: an exit whose datagram lost a race with a
  flood or an outage is decided again, never forgotten with the position left open;
* **shorts** (``allow_short``, issue #16; a derivatives venue): a SELL signal while flat opens a
  short (SELL/OPEN, its stop above the price), a BUY signal while short closes it; every rule here
  mirrors for a short. A signal against a held position is an exit, never a netted reversal: with
  ``allow_short`` the opposite entry is due once the exit has closed the position — the next bar
  after it decides it (if no new signal came), through every entry guard: two decisions, close
  then open. Without ``allow_short`` a SELL signal while flat is skipped ``no_position``;
* BUY while long (SELL while short) → skip ``already_positioned``; BUY or SELL while a decision for that
  instrument awaits its confirmation — including the exit decided on this very bar — → skip
  ``awaiting_confirmation``; SELL with no position → skip ``no_position``; BUY while a breaker is
  tripped → skip ``breaker``; BUY while the executor has been silent past the link's threshold →
  skip ``executor_silent``; BUY after the executor's journal was replaced or went back → skip
  ``executor_journal``; BUY on a bar from a stale live feed → skip ``feed_stale``;
* an entry is sized at ``entry_fraction`` of equity (cash + positions at mark), and carries the
  hard stop of the exit plan at its reference price as ``stop_price``; the executor places the stop
  at the same distance below the *fill* (:meth:`~protocol.TradeDecision.stop_for_fill`), and the
  plan the confirmation opens uses that same level — one stop level, computed from the fill.

**A portfolio** (issue #16): :meth:`BrainCore.on_bars` takes every instrument's bar closing at one
time; all are marked, the breakers see the portfolio's equity once, then each instrument's rules
above run in the configured order with its own strategy, entries sized from that same equity and
capped per instrument (``max_exposure_fraction``, :func:`~brain.risk.cap_exposure`; skip
``exposure_cap``). One instrument is the same call with one bar (:meth:`BrainCore.on_bar`).

**Exchange stops** (``exchange_stops``, off by default): after every mark, when nothing else is
sent for the position and nothing awaits confirmation for it, the position's protective level —
``max(plan stop, trailing stop once active)`` — is compared with the level last sent for it (the
entry's ``stop_price``, counted as sent when the entry's confirmation is applied, then each
PROTECT's). When it has risen by ``protect_step_bps`` or more (for a short, fallen), a PROTECT on the
closing side (SELL for a long, BUY for a short) moves the venue's
stop there (reason TRAILING_TAKE_PROFIT once trailing is active, else STOP_LOSS). A refused
PROTECT is not retried at the same level (a venue that refuses stops would be asked every bar):
the next one goes when the level has risen another step. The stop
placed with an entry is the plan's own (both come from the fill); only when an entry *adds* to a
held remainder (dust) does the plan (from the average entry) stop higher than the fill's, and
then the PROTECT is due at once: :meth:`BrainCore.protect_now` makes it right after the
confirmation (else the next bar does). PROTECTs are exits: breakers and executor silence never block them (DESIGN.md invariant 3).

**Dust**: when the executor refuses an exit with ``INVALID_QUANTITY`` (the venue's minimum amount
or notional — what is left after a spot sale rounded down to the lot step, with the buy's
commission taken in the base asset), the remainder is *dust*: it stays in the tracker (the
executor's ledger holds it too, so they still agree, and it counts in equity) but it is not
traded — no exit, no PROTECT — and the instrument counts as flat for entries on its side. The next
entry on its side adds to it, and the exit after that sells it along; an entry on the other side is
skipped ``already_positioned`` while it is held (its fill would cover the dust: no netting).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from foundation.bars import Bar
from protocol import (
    FULL_ENTRY_SCALE_BP,
    DecisionReason,
    ExecutionConfirmation,
    Instrument,
    Intent,
    Posture,
    RejectCode,
    Side,
    Status,
    TradeDecision,
)

from .coretypes import BrainConfig, Gates, Skip, SkipReason, Step
from .exits import ExitPlan
from .risk import Approved, CircuitBreakers, cap_exposure, guard_entry, size_entry
from .strategy import Strategy
from .tracker import Applied, ApplyResult, Position, PositionTracker

__all__ = ["BrainConfig", "BrainCore", "Skip", "SkipReason", "Step"]


class BrainCore:
    """Strategy → decisions, with the skip rules, sizing, exits and breakers.

    Args:
        config: decision parameters.
        strategy: signal source (see :mod:`brain.strategy`) of ``config.instrument``; a portfolio
            gives one per instrument, ``{instrument: strategy}`` (each its own instance: a strategy
            keeps state).
        tracker: the position tracker (changed only through :meth:`on_confirmation`).
        breakers: circuit breakers.
        next_decision_id: returns the next decision id; in a replay 1, 2, 3... so that a restarted
            brain re-derives the ids it journaled (see :mod:`brain.app`).
    """

    def __init__(
        self,
        config: BrainConfig,
        strategy: Strategy | Mapping[Instrument, Strategy],
        tracker: PositionTracker,
        breakers: CircuitBreakers,
        next_decision_id: Callable[[], int],
    ) -> None:
        self.config = config
        self.strategies: dict[Instrument, Strategy] = (
            dict(strategy) if isinstance(strategy, Mapping) else {config.instrument: strategy}
        )
        if set(self.strategies) != set(config.instruments):
            raise ValueError(f"strategies for {', '.join(map(str, self.strategies))}; the instruments traded are "
                             f"{', '.join(map(str, config.instruments))}")  # fmt: skip
        self.tracker = tracker
        self.breakers = breakers
        self._next_id = next_decision_id
        self.pending: dict[int, TradeDecision] = {}
        self.skips: Counter[SkipReason] = Counter()
        self._stops: dict[Instrument, float] = {}  # protective level on the venue, as last confirmed
        self._sent: dict[Instrument, float] = {}  # protective level last sent (entry or PROTECT)
        self._protect_due: dict[Instrument, tuple[float, int]] = {}  # at once: (fill price, fill time)
        self._last_entry_ns: dict[Instrument, int] = {}  # market time of the last entry that executed
        self._closing: dict[Instrument, DecisionReason] = {}  # exit partly filled: finish it
        self.dust: set[Instrument] = set()  # a remainder the venue will not trade (see the module docstring)
        self._reverse: dict[Instrument, Side] = {}  # a signal exit's opposite entry, due once flat (allow_short)
        self._tp: dict[Instrument, _TakeProfit] = {}  # the take-profit leg of each position (exit legs)

    def awaiting(self, instrument: Instrument) -> bool:
        """A decision for ``instrument`` awaits its confirmation (asked on every bar: nothing pending is
        the common case, answered without a generator)."""
        return bool(self.pending) and any(d.instrument == instrument for d in self.pending.values())

    def on_bar(self, bar: Bar, market_ns: int, wall_ns: int, executor_alive: bool = True,
               executor_journal_ok: bool = True, feed_fresh: bool = True, posture: Posture | None = None) -> Step:  # fmt: skip
        """Process one bar of the configured instrument whose close is known at ``market_ns``; stamp
        decisions with ``wall_ns``: :meth:`on_bars` with that one bar.

        ``executor_alive`` is the link's verdict; when False, entries are skipped (exits are not).
        ``executor_journal_ok`` False (the executor's journal was replaced or went back) skips
        entries too, and so does ``feed_fresh`` False (a live feed that is stale, or a bar that
        closed too long ago: :attr:`~brain.livefeed.LiveFeed.stale`) — exits never. ``posture`` (the
        executor's risk posture from its heartbeats, protocol v4) scales an entry and caps its
        notional, and refuses it (``belief_guard``) while entries are off, the kill switch is on or
        the instrument's entry cooldown (market time) has not passed; it never touches an exit.
        """
        return self.on_bars(((self.config.instrument, bar),), market_ns, wall_ns, executor_alive=executor_alive,
                            executor_journal_ok=executor_journal_ok, feed_fresh=feed_fresh, posture=posture)  # fmt: skip

    def on_bars(self, bars: Sequence[tuple[Instrument, Bar]], market_ns: int, wall_ns: int, *,
                executor_alive: bool = True, executor_journal_ok: bool = True, feed_fresh: bool = True,
                posture: Posture | None = None) -> Step:  # fmt: skip
        """Process the bars of every instrument closing at ``market_ns`` (a portfolio's close time;
        one bar for a single instrument), all decided from the same state: every instrument is
        marked first, the breakers see the portfolio's equity once, then each instrument's strategy
        runs and its rules decide, in the order given, sized from that same equity (no confirmation
        can arrive in between: the core is pure). Arguments as :meth:`on_bar`.

        Raises:
            KeyError: an instrument without a strategy (:attr:`strategies`).
        """
        tracker = self.tracker
        gates = Gates(executor_alive, executor_journal_ok, feed_fresh, posture)
        if len(bars) == 1:  # one instrument, once per bar: the same steps without the lists
            ((inst, bar),) = bars
            exit_reason = tracker.mark(inst, bar.close, market_ns)
            equity = tracker.equity()
            trip = self.breakers.on_equity(equity, market_ns)
            ds, skip = self._instrument_bar(inst, bar, exit_reason, market_ns, wall_ns, equity, gates)
            if skip is None:
                return Step(ds, (), trip)
            self.skips[skip.reason] += 1
            return Step(ds, (skip,), trip)
        exits = [tracker.mark(inst, bar.close, market_ns) for inst, bar in bars]
        equity = tracker.equity()
        trip = self.breakers.on_equity(equity, market_ns)
        decisions: list[TradeDecision] = []
        skips: list[Skip] = []
        for (inst, bar), exit_reason in zip(bars, exits, strict=True):
            ds, skip = self._instrument_bar(inst, bar, exit_reason, market_ns, wall_ns, equity, gates)
            decisions.extend(ds)
            if skip is not None:
                self.skips[skip.reason] += 1
                skips.append(skip)
        return Step(tuple(decisions), tuple(skips), trip)

    def _instrument_bar(self, inst: Instrument, bar: Bar, exit_reason: DecisionReason | None, market_ns: int,
                        wall_ns: int, equity: float, gates: Gates) -> tuple[tuple[TradeDecision, ...], Skip | None]:  # fmt: skip
        """One instrument's rules on its bar (the module docstring): its decisions and its skip."""
        tracker = self.tracker
        price = bar.close
        signal = self.strategies[inst].on_bar(bar)
        position = tracker.position(inst)
        if inst in self.dust:
            position, exit_reason = None, None  # dust is held, not traded
        if position is not None and exit_reason is None:
            self._breakeven(position, position.plan.breakeven_triggered(price), price, market_ns)
        busy = self.awaiting(inst)

        if signal is not None or (position is not None and exit_reason is not None):
            self._reverse.pop(inst, None)  # a new signal, or an exit rule firing, supersedes a pending reversal
        exit_reason = exit_reason or self._closing.get(inst)
        if position is not None and exit_reason is not None and not busy:
            d = self._decide(inst, position.closing_side, Intent.CLOSE, exit_reason, position.quantity, price,
                             market_ns, wall_ns)  # fmt: skip
            if signal is None:
                return (d,), None
            return (d,), Skip(SkipReason.AWAITING_CONFIRMATION, signal, f"the {exit_reason.name} exit decided on this bar",
                              inst)  # fmt: skip
        if signal is None and position is None and not busy and inst in self._reverse:
            signal = self._reverse.pop(inst)  # the second decision of a reversal: the entry, guarded as any
        if signal is None:
            return self._legs(position, bar, market_ns, wall_ns, busy), None

        skip: Skip | None = None
        entry = position is None and (signal is Side.BUY or self.config.allow_short)
        if busy:
            skip = Skip(SkipReason.AWAITING_CONFIRMATION, signal, "", inst)
        elif position is not None and signal is position.side:
            skip = Skip(SkipReason.ALREADY_POSITIONED, signal, "", inst)
        elif entry and (held := tracker.position(inst)) is not None and held.side is not signal:
            # dust held on the other side: its fill would cover the dust, never open this side (no netting)
            skip = Skip(SkipReason.ALREADY_POSITIONED, signal, f"dust {held.signed_quantity!r} held on the other side",
                        inst)  # fmt: skip
        elif entry:
            decided = self._entry(inst, signal, price, market_ns, wall_ns, equity, gates)
            if isinstance(decided, TradeDecision):
                return (decided,), None
            skip = decided
        elif position is None:
            skip = Skip(SkipReason.NO_POSITION, signal, "", inst)
        else:
            d = self._decide(inst, position.closing_side, Intent.CLOSE, DecisionReason.SIGNAL, position.quantity,
                             price, market_ns, wall_ns)  # fmt: skip
            if self.config.allow_short:
                self._reverse[inst] = signal  # the opposite entry, once this exit has closed the position
            return (d,), None
        return self._legs(position, bar, market_ns, wall_ns, busy), skip

    def _entry(self, inst: Instrument, signal: Side, price: float, market_ns: int, wall_ns: int, equity: float,
               gates: Gates) -> TradeDecision | Skip:  # fmt: skip
        """An entry on ``signal`` through every guard, sized at ``entry_fraction`` of the portfolio's
        ``equity`` and capped at ``max_exposure_fraction`` of it; or the skip that refused it."""
        verdict = self.breakers.check_entry(market_ns)
        posture = gates.posture
        why: str | None
        if not isinstance(verdict, Approved):
            return Skip(SkipReason.BREAKER, signal, verdict.reason, inst)
        if not gates.executor_alive:
            return Skip(SkipReason.EXECUTOR_SILENT, signal, "no heartbeat from the executor", inst)
        if not gates.executor_journal_ok:
            return Skip(SkipReason.EXECUTOR_JOURNAL, signal, "the executor's journal was replaced or went back", inst)
        if not gates.feed_fresh:
            return Skip(SkipReason.FEED_STALE, signal, "the live feed is stale or the bar closed too long ago", inst)
        if (why := self._guarded(posture, market_ns, inst)) is not None:
            return Skip(SkipReason.BELIEF_GUARD, signal, why, inst)
        lot = self.config.lot_size
        qty = size_entry(equity, price, self.config.entry_fraction, lot)
        if posture is not None:
            qty = guard_entry(posture, qty, price, lot)
        if qty <= 0 and posture is not None and posture.entry_scale_bp < FULL_ENTRY_SCALE_BP:
            return Skip(SkipReason.BELIEF_GUARD, signal, "scaled to nothing by the executor's posture", inst)
        if qty <= 0:
            return Skip(SkipReason.ZERO_SIZE, signal, "", inst)
        held = self.tracker.position(inst)
        capped = cap_exposure(qty, price, equity, held.quantity if held is not None else 0.0,
                              self.config.max_exposure_fraction, lot)  # fmt: skip
        if capped <= 0:
            return Skip(SkipReason.EXPOSURE_CAP, signal, f"{inst} already holds {self.config.max_exposure_fraction:.0%}"
                        " of the portfolio's equity", inst)  # fmt: skip
        stop = ExitPlan.for_entry(self.tracker.exit_rules, price, market_ns, side=signal).stop_price
        return self._decide(inst, signal, Intent.OPEN, DecisionReason.SIGNAL, capped, price, market_ns, wall_ns, stop)

    def _guarded(self, posture: Posture | None, market_ns: int, inst: Instrument) -> str | None:
        """Why the executor's posture refuses an entry now, or ``None``."""
        if posture is None:
            return None
        if posture.kill_switch:
            return f"the executor's kill switch is on (mode {posture.mode.name})"
        if not posture.entries_allowed:
            return f"the executor allows no entries (mode {posture.mode.name})"
        last = self._last_entry_ns.get(inst)
        if posture.entry_cooldown_ms and last is not None and market_ns - last < posture.entry_cooldown_ms * 1_000_000:
            return f"entry cooldown {posture.entry_cooldown_ms} ms (mode {posture.mode.name})"
        return None

    def on_confirmation(self, conf: ExecutionConfirmation) -> ApplyResult:
        """Apply a confirmation to the tracker and settle the decision it answers.

        Also keeps the protective level on the venue (an entry's ``stop_price`` counts as placed
        once the entry executed; an ACCEPTED PROTECT's replaces it) and, when an exit only partly
        filled, remembers to finish it on the next bar.
        """
        decision = self.pending.pop(conf.decision_id, None)
        reason = decision.reason if decision else (DecisionReason.MANUAL if conf.reconciled else None)
        result = self.tracker.apply(conf, reason, decision=decision)
        if decision is not None and decision.intent is Intent.OPEN and conf.status.executed:
            self._last_entry_ns[conf.instrument] = decision.market_ts_ns  # the posture's entry cooldown
        if decision is not None and conf.status is Status.EXPIRED:
            self._retry_exit(decision)
        if result.trade is not None:
            self.breakers.on_trade_closed(result.trade.net_pnl, conf.executed_at_ns)
        inst = conf.instrument
        position = result.position
        if (decision is not None and decision.intent in (Intent.CLOSE, Intent.REDUCE)
                and conf.reject_code is RejectCode.INVALID_QUANTITY and position is not None):  # fmt: skip
            self.dust.add(inst)  # below the venue's minimum: hold it, stop trying to sell it
            self._closing.pop(inst, None)
        if position is None:
            if result.applied in (Applied.CLOSED, Applied.ANOMALY):
                self._forget(inst)
        elif result.applied in (Applied.OPENED, Applied.ADDED):
            self.dust.discard(inst)
            self._arm_take_profit(position)
            sent = decision.stop_for_fill(conf.avg_price) if decision is not None else 0.0  # what the venue holds
            self._stops[inst] = self._sent[inst] = sent
            self._closing.pop(inst, None)
            if self.config.exchange_stops and _tighter(position.plan.stop_price, sent, position.short):
                self._protect_due[inst] = (conf.avg_price, conf.executed_at_ns)
        elif (result.applied is Applied.REDUCED and decision is not None
              and decision.intent not in (Intent.REDUCE, Intent.TAKE_PROFIT)):  # fmt: skip
            # an exit (CLOSE, or a PROTECT whose stop filled) partly filled: finish it next bar
            assert result.trade is not None and result.trade.exit_reason is not None
            self._closing[inst] = result.trade.exit_reason
        elif result.applied is Applied.ACCEPTED and decision is not None and decision.intent is Intent.PROTECT:
            self._stops[inst] = decision.stop_price
        self._settle_take_profit(decision, conf, result)
        return result

    def protect_now(self, wall_ns: int) -> tuple[TradeDecision, ...]:
        """PROTECT decisions due at once: an entry added to a held remainder, so the plan's stop
        (from the average entry) is above the one placed with the fill. Priced at the fill.

        Empty unless ``exchange_stops`` is on; call it after :meth:`on_confirmation`.
        """
        out = []
        for inst, (price, at_ns) in list(self._protect_due.items()):
            position = self.tracker.position(inst)
            if position is None:
                del self._protect_due[inst]
                continue
            out.extend(self._protect(position, price, at_ns, wall_ns, self.awaiting(inst)))
        for inst, tp in list(self._tp.items()):
            position = self.tracker.position(inst)
            if tp.due and position is not None and not self.awaiting(inst):
                out.append(self._place_take_profit(position, tp, position.avg_entry_price, tp.at_ns, wall_ns))
        return tuple(out)

    def protective_level(self, instrument: Instrument) -> float | None:
        """The stop the position in ``instrument`` should have on the venue: the plan's hard stop,
        or the trailing stop once active and tighter — higher for a long, lower for a short (quote
        per base unit); ``None`` when flat."""
        position = self.tracker.position(instrument)
        if position is None:
            return None
        watch = self.tracker.exit_watch(instrument)
        level = position.plan.stop_price if watch is None else watch.stop_price  # with the breakeven floor
        trail = None if watch is None else watch.trailing_stop
        return trail if trail is not None and _tighter(trail, level, position.short) else level

    def stop_on_venue(self, instrument: Instrument) -> float | None:
        """The protective level last confirmed on the venue for the position, if any."""
        return self._stops.get(instrument)

    def _protect(
        self, position: Position | None, price: float, market_ns: int, wall_ns: int, busy: bool
    ) -> tuple[TradeDecision, ...]:
        """A PROTECT when the protective level rose ``protect_step_bps`` above the one last sent (for a
        short: fell that far below it), or at once (:meth:`protect_now`); at most one in flight per
        position."""
        if not self.config.exchange_stops or position is None or busy:
            return ()
        inst = position.instrument
        level = self.protective_level(inst)
        assert level is not None
        sent = self._sent.get(inst, 0.0)
        due = inst in self._protect_due
        step = self.config.protect_step_bps / 10_000
        if position.short:
            moved = sent <= 0 or (level < sent and (due or level <= sent * (1 - step)))
        else:
            moved = level > sent and (due or level >= sent * (1 + step))
        if not moved:
            return ()
        self._protect_due.pop(inst, None)
        self._sent[inst] = level
        watch = self.tracker.exit_watch(inst)
        trailing = watch is not None and watch.peak is not None
        breakeven = watch is not None and watch.floor is not None and watch.floor == level
        reason = (DecisionReason.TRAILING_TAKE_PROFIT if trailing else DecisionReason.BREAKEVEN if breakeven
                  else DecisionReason.STOP_LOSS)  # fmt: skip
        qty = position.quantity
        return (self._decide(inst, position.closing_side, Intent.PROTECT, reason, qty, price, market_ns, wall_ns, level),)

    # -- exit legs: the take-profit and breakeven (issue #16) --------------------------------------

    def _legs(self, position: Position | None, bar: Bar, market_ns: int, wall_ns: int,
              busy: bool) -> tuple[TradeDecision, ...]:  # fmt: skip
        """At most one leg decision for the position, first due first: the take-profit placed (a
        TAKE_PROFIT not yet sent), its fill reported (a REDUCE with reason PARTIAL_TAKE_PROFIT once a
        bar traded through its limit), else a PROTECT (:meth:`_protect`)."""
        if position is None or busy:
            return ()
        tp = self._tp.get(position.instrument)
        if tp is not None and tp.due:
            return (self._place_take_profit(position, tp, bar.close, market_ns, wall_ns),)
        if tp is not None and tp.resting and position.plan.traded_through(bar.high, bar.low):
            qty = min(tp.qty, position.quantity)
            return (self._decide(position.instrument, position.closing_side, Intent.REDUCE,
                                 DecisionReason.PARTIAL_TAKE_PROFIT, qty, tp.price, market_ns, wall_ns),)  # fmt: skip
        return self._protect(position, bar.close, market_ns, wall_ns, busy)

    def _arm_take_profit(self, position: Position) -> None:
        """A position opened (or grew): its take-profit leg is due, for ``tp_fraction`` of it (rounded
        down to the lot), unless the plan has none."""
        plan = position.plan
        qty = position.quantity * plan.tp_fraction
        if self.config.lot_size > 0:
            qty = math.floor(qty / self.config.lot_size) * self.config.lot_size
        if plan.tp_price <= 0 or qty <= 0:
            self._tp.pop(position.instrument, None)
            return
        self._tp[position.instrument] = _TakeProfit(plan.tp_price, qty, position.opened_at_ns)

    def _place_take_profit(self, position: Position, tp: _TakeProfit, price: float, market_ns: int,
                           wall_ns: int) -> TradeDecision:  # fmt: skip
        tp.due = False
        return self._decide(position.instrument, position.closing_side, Intent.TAKE_PROFIT,
                            DecisionReason.PARTIAL_TAKE_PROFIT, tp.qty, price, market_ns, wall_ns, tp.price)  # fmt: skip

    def _settle_take_profit(self, decision: TradeDecision | None, conf: ExecutionConfirmation,
                            result: ApplyResult) -> None:  # fmt: skip
        """The take-profit's answers: ACCEPTED, it rests; refused, the leg is off for this position; a
        fill (of the TAKE_PROFIT at once, or reported by a REDUCE), the leg is done and the stop moves
        to breakeven."""
        if decision is None or decision.reason is not DecisionReason.PARTIAL_TAKE_PROFIT:
            return
        inst = decision.instrument
        tp = self._tp.get(inst)
        if conf.status.executed:
            self._tp.pop(inst, None)
            if result.position is not None:
                self._breakeven(result.position, True, conf.avg_price, conf.executed_at_ns)
        elif tp is not None and decision.intent is Intent.TAKE_PROFIT:
            if conf.status is Status.ACCEPTED:
                tp.resting = True
            else:
                self._tp.pop(inst, None)  # the venue cannot rest it: the leg is off for this position
        elif tp is not None and (conf.status is Status.FAILED or (conf.status is Status.REJECTED
                                                                 and conf.reject_code is not RejectCode.VENUE_ERROR)):
            # no take-profit rests any more (the venue expired it), or the report was refused for another
            # reason than "rests unfilled" (no position on its side): the leg is off; an EXPIRED report
            # reached no venue, and the take-profit rests on
            self._tp.pop(inst, None)

    def _breakeven(self, position: Position, due: bool, price: float, at_ns: int) -> None:
        """Move the stop to the entry price plus fees (the entry's fee and an exit's, taken as equal)
        once ``due`` and not yet: the brain's plan at once, and with ``exchange_stops`` a PROTECT to it
        (reason BREAKEVEN)."""
        watch = self.tracker.exit_watch(position.instrument)
        if not due or watch is None or watch.floor is not None:
            return
        per_unit = 2 * position.entry_fees / position.quantity
        level = position.avg_entry_price - per_unit if position.short else position.avg_entry_price + per_unit
        watch.floor = level
        if self.config.exchange_stops:
            self._protect_due[position.instrument] = (price, at_ns)

    def _forget(self, inst: Instrument) -> None:
        self._tp.pop(inst, None)
        self._stops.pop(inst, None)
        self._sent.pop(inst, None)
        self._protect_due.pop(inst, None)
        self._closing.pop(inst, None)
        self.dust.discard(inst)

    def adopt(self, decision: TradeDecision) -> None:
        """Replace a just-made pending decision with its journaled twin (same id, original stamps).

        Used when a restarted brain re-runs its history: the core re-derives each decision, and
        the journal's copy — the bytes that were actually sent — is the one awaiting confirmation.
        """
        if decision.decision_id not in self.pending:
            raise KeyError(f"decision {decision.decision_id} is not pending")
        self.pending[decision.decision_id] = decision

    def abandon(self, decision_id: int) -> TradeDecision | None:
        """Stop awaiting a decision that provably never executed (expired, unconfirmed).

        The tracker is untouched: nothing happened at the venue (DESIGN.md invariant 1). An exit
        is decided again on the next bar (module docstring).
        """
        decision = self.pending.pop(decision_id, None)
        if decision is not None:
            self._retry_exit(decision)
        return decision

    def _retry_exit(self, decision: TradeDecision) -> None:
        """An exit (CLOSE or REDUCE, of a long or a short) that never executed: finish it on the next
        bar, same reason."""
        if decision.reason is DecisionReason.PARTIAL_TAKE_PROFIT:
            return  # a take-profit's report: the order still rests; the next bar through it asks again
        if decision.intent in (Intent.CLOSE, Intent.REDUCE) and self.tracker.position(decision.instrument) is not None:
            self._closing[decision.instrument] = decision.reason

    def _decide(
        self,
        instrument: Instrument,
        side: Side,
        intent: Intent,
        reason: DecisionReason,
        qty: float,
        price: float,
        market_ns: int,
        wall_ns: int,
        stop_price: float = 0.0,
    ) -> TradeDecision:
        decision = TradeDecision(
            decision_id=self._next_id(),
            instrument=instrument,
            side=side,
            intent=intent,
            reason=reason,
            quantity=qty,
            reference_price=price,
            max_slippage_bps=self.config.max_slippage_bps,
            created_at_ns=wall_ns,
            expires_at_ns=wall_ns + self.config.decision_ttl_ns,
            market_ts_ns=market_ns,
            stop_price=stop_price,
        )
        self.pending[decision.decision_id] = decision
        return decision


def _tighter(level: float, than: float, short: bool) -> bool:
    """Whether stop ``level`` is tighter than ``than``: higher for a long, lower for a short (a short's
    ``than`` of 0, no stop sent, is never tighter)."""
    if short:
        return than <= 0 or level < than
    return level > than


@dataclass(slots=True)
class _TakeProfit:
    """A position's take-profit leg: its limit and quantity; ``due`` until the TAKE_PROFIT is sent,
    ``resting`` once the venue holds it (ACCEPTED)."""

    price: float
    qty: float
    at_ns: int
    due: bool = True
    resting: bool = False
