"""The brain's position tracker: a fold over ExecutionConfirmations (DESIGN.md invariant 1).

Nothing but :meth:`PositionTracker.apply` changes positions, cash or P&L, and it takes only a
confirmation. Executed confirmations (filled or partially filled) open, add to, reduce or close a
long or (issue #16) a short position — an entry partially filled opens a position of the executed
quantity, an exit partially filled leaves a reduced position whose exit plan stays active; any
other status changes nothing; a confirmation whose ``decision_id`` was already applied is ignored.

**Sides** (the executor's ledger folds fills by the same rules): a BUY covers a short when one is
held, else — when its intent is OPEN — opens or adds to a long; a SELL reduces a long when one is
held, else — when its intent is OPEN (a short entry, or a
reconciled short) — opens or adds to a short. A fill that is neither an entry (intent OPEN) nor
on the position's closing side — a SELL CLOSE with no long, a BUY CLOSE with no short, a SELL
CLOSE while short — is an anomaly: its cash is booked, no position changes. An
exit larger than the position closes the position and counts the excess as an anomaly: it is
never netted into a position on the other side (a reversal is two decisions, close then open).

A PROTECT decision (protocol v2: move the protective stop on the venue) trades nothing when it is
carried out (``ACCEPTED``: nothing changes). When the venue reports that stop already filled, its
confirmation carries an executed status and is applied as the sell it is, with exit reason
``STOP_LOSS`` whatever rule set the level: the venue's stop order is what sold. Because the state is a fold, replaying the same confirmations into a new
tracker rebuilds it exactly.

A position gets its exit plan in the same call that opens it (invariant 3). Its hard stop is the
one level the venue holds too: the entry decision's :meth:`~protocol.TradeDecision.stop_for_fill` of
the fill price (``stop_loss_pct`` below the fill when the decision is not known). Marks (prices) are
not position changes: :meth:`mark` records the latest price per instrument and evaluates the
exit plan.

Accounting (quote currency): a buy costs ``qty * price + fee``; a sell returns
``qty * price - fee`` (a short sale too: a perpetual's position held in cash terms, so equity =
cash + Σ signed quantity × mark); a REJECTED or FAILED confirmation's fee (a failed execution's,
protocol v5) is deducted from cash and counted in ``fees``; realized P&L is gross
``(exit - avg_entry) * qty`` for a long and ``(avg_entry - exit) * qty`` for a short; fees are
kept apart, and net = gross - fees.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocol import (
    DecisionReason,
    ExecutionConfirmation,
    Instrument,
    Intent,
    Side,
    Status,
    TradeDecision,
    slippage_bps,
)

from .exits import ExitPlan, ExitRules, ExitWatch

__all__ = ["Applied", "ApplyResult", "ClosedTrade", "Position", "PositionTracker"]

_QTY_EPS = 1e-12  # relative: a remainder below this fraction of the position counts as closed


@dataclass(frozen=True, slots=True)
class Position:
    """An open position. Prices in quote per base unit; ``quantity`` in base units, > 0 whatever
    the side; ``side`` BUY for a long, SELL for a short (:attr:`signed_quantity` < 0)."""

    instrument: Instrument
    quantity: float
    avg_entry_price: float
    opened_at_ns: int
    entry_decision_id: int
    entry_fees: float
    plan: ExitPlan
    side: Side = Side.BUY

    @property
    def short(self) -> bool:
        return self.side is Side.SELL

    @property
    def signed_quantity(self) -> float:
        """Base units, negative for a short."""
        return -self.quantity if self.side is Side.SELL else self.quantity

    @property
    def closing_side(self) -> Side:
        """The side that exits this position: SELL for a long, BUY for a short."""
        return Side.BUY if self.side is Side.SELL else Side.SELL


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """A round trip (or the closed part of one), for the trade log."""

    instrument: Instrument
    entry_decision_id: int
    exit_decision_id: int
    opened_at_ns: int
    closed_at_ns: int
    quantity: float
    entry_price: float
    exit_price: float
    gross_pnl: float
    fees: float
    exit_reason: DecisionReason | None
    exit_reference_price: float = 0.0
    side: Side = Side.BUY  # the position's: BUY a long, SELL a short

    @property
    def net_pnl(self) -> float:
        return self.gross_pnl - self.fees

    @property
    def exit_slippage_bps(self) -> float | None:
        """How much worse the exit filled than the price its decision referred to, bps (negative:
        better); ``None`` when the exit decision is not known."""
        if self.exit_reference_price <= 0:
            return None
        closing = Side.BUY if self.side is Side.SELL else Side.SELL
        return slippage_bps(closing, self.exit_reference_price, self.exit_price)

    @property
    def return_pct(self) -> float:
        """Net P&L as a percentage of the entry notional."""
        return self.net_pnl / (self.entry_price * self.quantity) * 100


class Applied(str, enum.Enum):
    """What :meth:`PositionTracker.apply` did."""

    OPENED = "opened"
    ADDED = "added"
    REDUCED = "reduced"
    CLOSED = "closed"
    NOT_EXECUTED = "not_executed"  # rejected / expired / failed: nothing changes
    ACCEPTED = "accepted"  # a PROTECT carried out: the stop moved on the venue, nothing changes
    DUPLICATE = "duplicate"  # decision_id already applied: nothing changes
    ANOMALY = "anomaly"  # an exit with no position to exit: recorded, flagged, never netted


@dataclass(frozen=True, slots=True)
class ApplyResult:
    applied: Applied
    position: Position | None = None  # the position after the change (None when flat)
    trade: ClosedTrade | None = None  # set when a sell realized P&L


class PositionTracker:
    """Long and short positions, cash and P&L, folded from confirmations.

    Args:
        starting_cash: quote currency.
        exit_rules: used to attach an :class:`ExitPlan` when a position opens.
    """

    def __init__(self, starting_cash: float, exit_rules: ExitRules) -> None:
        self.starting_cash = starting_cash
        self.exit_rules = exit_rules
        self.cash = starting_cash
        self.realized_pnl = 0.0  # gross
        self.fees = 0.0
        self.anomalies = 0
        self._positions: dict[Instrument, Position] = {}
        self._watches: dict[Instrument, ExitWatch] = {}
        self._marks: dict[Instrument, float] = {}
        self._applied: set[int] = set()
        self.closed_trades: list[ClosedTrade] = []

    # -- reads --------------------------------------------------------------------------

    def position(self, instrument: Instrument) -> Position | None:
        return self._positions.get(instrument)

    @property
    def positions(self) -> dict[Instrument, Position]:
        """Open positions (a copy)."""
        return dict(self._positions)

    def is_applied(self, decision_id: int) -> bool:
        return decision_id in self._applied

    def unrealized_pnl(self) -> float:
        """Σ (mark − avg entry) × signed qty over open positions; entry price where no mark yet."""
        return sum(
            (self._marks.get(i, p.avg_entry_price) - p.avg_entry_price) * p.signed_quantity
            for i, p in self._positions.items()
        )

    def equity(self) -> float:
        """Cash + open positions at mark, signed (quote currency)."""
        positions = self._positions
        if not positions:  # asked on every bar: flat and one position are the common cases, without a generator
            return self.cash
        if len(positions) == 1:  # the same sum: 0 + x is x
            ((i, p),) = positions.items()
            return self.cash + self._marks.get(i, p.avg_entry_price) * p.signed_quantity
        return self.cash + sum(self._marks.get(i, p.avg_entry_price) * p.signed_quantity
                               for i, p in positions.items())  # fmt: skip

    def equity_at(self, instrument: Instrument, price: float) -> float:
        """Equity with ``instrument`` marked at ``price`` instead of its last mark (a forming bar's
        last price); changes nothing — marks that evaluate exits go through :meth:`mark`."""
        return self.cash + sum((price if i == instrument else self._marks.get(i, p.avg_entry_price)) * p.signed_quantity
                               for i, p in self._positions.items())  # fmt: skip

    def exit_watch(self, instrument: Instrument) -> ExitWatch | None:
        return self._watches.get(instrument)

    # -- marks --------------------------------------------------------------------------

    def mark(self, instrument: Instrument, price: float, now_ns: int) -> DecisionReason | None:
        """Record the mark price and evaluate the position's exit plan; returns the exit that fires."""
        self._marks[instrument] = price
        watch = self._watches.get(instrument)
        return None if watch is None else watch.evaluate(price, now_ns)

    # -- the only mutation of positions -------------------------------------------------

    def apply(self, conf: ExecutionConfirmation, reason: DecisionReason | None = None, *,
              decision: TradeDecision | None = None) -> ApplyResult:  # fmt: skip
        """Fold one confirmation in. ``reason`` (the decision's) labels a closing trade; a PROTECT's
        stop that filled on the venue is labelled ``STOP_LOSS``. ``decision`` (the one answered,
        when known) gives an entry's stop (:meth:`~protocol.TradeDecision.stop_for_fill`) and an
        exit's reference price (for its slippage in the trade log)."""
        if conf.decision_id in self._applied:
            return ApplyResult(Applied.DUPLICATE, self._positions.get(conf.instrument))
        self._applied.add(conf.decision_id)
        if conf.status is Status.ACCEPTED:
            return ApplyResult(Applied.ACCEPTED, self._positions.get(conf.instrument))
        if not conf.status.executed:
            if conf.fee:  # a failed execution's fee (protocol v5, SPEC §6.2): paid, nothing traded
                self.cash -= conf.fee
                self.fees += conf.fee
            return ApplyResult(Applied.NOT_EXECUTED, self._positions.get(conf.instrument))
        old = self._positions.get(conf.instrument)
        if (old is None or old.side is conf.side) and conf.intent is Intent.OPEN:
            return self._enter(conf, decision.stop_for_fill(conf.avg_price) if decision is not None else 0.0)
        if old is not None and old.side is conf.side:  # not an entry, and not the position's closing side
            self._book_cash(conf)
            self.anomalies += 1
            return ApplyResult(Applied.ANOMALY, old)
        if conf.intent is Intent.PROTECT:
            reason = DecisionReason.STOP_LOSS
        stop_answered = (decision is not None and decision.reason is DecisionReason.PARTIAL_TAKE_PROFIT
                         and conf.executed_qty > decision.quantity * (1 + _QTY_EPS))  # fmt: skip
        if stop_answered:  # more than the take-profit's quantity: the stop's fill answered its report
            reason, decision = DecisionReason.STOP_LOSS, None
        reference = 0.0  # what the exit's slippage is measured against: a stop fill's is its stop level
        if decision is not None:
            reference = (decision.stop_price if decision.intent in (Intent.PROTECT, Intent.TAKE_PROFIT)
                         else decision.reference_price)  # a stop's level, a take-profit's limit  # fmt: skip
        return self._exit(conf, reason, reference)

    def _book_cash(self, conf: ExecutionConfirmation) -> None:
        notional = conf.executed_qty * conf.avg_price
        self.cash += -(notional + conf.fee) if conf.side is Side.BUY else notional - conf.fee
        self.fees += conf.fee

    def _enter(self, conf: ExecutionConfirmation, stop: float) -> ApplyResult:
        """Open or add to a position on ``conf.side`` (BUY: long, SELL: short)."""
        qty, price, inst = conf.executed_qty, conf.avg_price, conf.instrument
        self._book_cash(conf)
        old = self._positions.get(inst)
        if old is None:
            plan = ExitPlan.for_entry(self.exit_rules, price, conf.executed_at_ns, stop, conf.side)
            pos = Position(inst, qty, price, conf.executed_at_ns, conf.decision_id, conf.fee, plan, conf.side)
            applied = Applied.OPENED
        else:
            total = old.quantity + qty
            avg = (old.avg_entry_price * old.quantity + price * qty) / total
            plan = ExitPlan.for_entry(self.exit_rules, avg, old.opened_at_ns, side=old.side)
            pos = Position(inst, total, avg, old.opened_at_ns, old.entry_decision_id, old.entry_fees + conf.fee, plan,
                           old.side)  # fmt: skip
            applied = Applied.ADDED
        self._positions[inst] = pos
        self._watches[inst] = ExitWatch(plan)  # same step as the open: never unprotected
        return ApplyResult(applied, pos)

    def _exit(self, conf: ExecutionConfirmation, reason: DecisionReason | None, reference: float) -> ApplyResult:
        """Reduce or close the position ``conf`` exits (its side is the position's closing side)."""
        qty, price, inst = conf.executed_qty, conf.avg_price, conf.instrument
        self._book_cash(conf)
        old = self._positions.get(inst)
        if old is None:
            self.anomalies += 1
            return ApplyResult(Applied.ANOMALY, None)
        closed_qty = min(qty, old.quantity)
        if qty > old.quantity * (1 + _QTY_EPS):
            self.anomalies += 1  # exited more than held; the excess is never netted into the other side
        gross = (price - old.avg_entry_price) * closed_qty
        if old.short:
            gross = (old.avg_entry_price - price) * closed_qty
        self.realized_pnl += gross
        share = closed_qty / old.quantity
        trade = ClosedTrade(
            instrument=inst,
            entry_decision_id=old.entry_decision_id,
            exit_decision_id=conf.decision_id,
            opened_at_ns=old.opened_at_ns,
            closed_at_ns=conf.executed_at_ns,
            quantity=closed_qty,
            entry_price=old.avg_entry_price,
            exit_price=price,
            gross_pnl=gross,
            fees=old.entry_fees * share + conf.fee,
            exit_reason=reason,
            exit_reference_price=reference,
            side=old.side,
        )
        self.closed_trades.append(trade)
        remaining = old.quantity - closed_qty
        if remaining <= old.quantity * _QTY_EPS:
            del self._positions[inst]
            del self._watches[inst]
            return ApplyResult(Applied.CLOSED, None, trade)
        pos = Position(inst, remaining, old.avg_entry_price, old.opened_at_ns, old.entry_decision_id,
                       old.entry_fees * (1 - share), old.plan, old.side)  # fmt: skip
        self._positions[inst] = pos
        return ApplyResult(Applied.REDUCED, pos, trade)
