"""The brain's pure core: bars and confirmations in, decisions and skips out.

No I/O and no clock: every call is given the market time (the close of the bar being
processed) and the wall time (for the decision's freshness and expiry stamps). The asyncio
application sends what :meth:`BrainCore.on_bar` returns and feeds back what arrives.

Per bar, in order: mark the position and evaluate its exit plan; feed equity to the breakers;
run the strategy; then decide. Rules (issue #2):

* an exit that fires sends a SELL/CLOSE with the exit's reason — never blocked by breakers;
* BUY while positioned → skip ``already_positioned``; BUY or SELL while a decision for that
  instrument awaits its confirmation → skip ``awaiting_confirmation``; SELL with no position →
  skip ``no_position``; BUY while a breaker is tripped → skip ``breaker``; BUY while the executor
  has been silent past the link's threshold → skip ``executor_silent``;
* an entry is sized at ``entry_fraction`` of equity (cash + positions at mark).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from protocol import DecisionReason, ExecutionConfirmation, Instrument, Intent, Side, TradeDecision
from tandem.marketdata import Bar

from .risk import Approved, CircuitBreakers, Trip, size_entry
from .strategy import Strategy
from .tracker import ApplyResult, PositionTracker

__all__ = ["BrainConfig", "BrainCore", "Skip", "SkipReason", "Step"]


class SkipReason(str, enum.Enum):
    ALREADY_POSITIONED = "already_positioned"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    NO_POSITION = "no_position"
    BREAKER = "breaker"
    EXECUTOR_SILENT = "executor_silent"
    ZERO_SIZE = "zero_size"


@dataclass(frozen=True, slots=True)
class Skip:
    """A signal the brain did not act on, and why."""

    reason: SkipReason
    side: Side
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Step:
    """What one bar produced: decisions to send, skips to log and count, a breaker trip."""

    decisions: tuple[TradeDecision, ...] = ()
    skips: tuple[Skip, ...] = ()
    trip: Trip | None = None


@dataclass(frozen=True, slots=True)
class BrainConfig:
    """Decision parameters. Fractions are of equity; times in ns; slippage in bps."""

    instrument: Instrument
    entry_fraction: float = 0.05
    lot_size: float = 0.0
    decision_ttl_ns: int = 10_000_000_000
    max_slippage_bps: int = 50


class BrainCore:
    """Strategy → decisions, with the skip rules, sizing, exits and breakers.

    Args:
        config: decision parameters.
        strategy: signal source (see :mod:`brain.strategy`).
        tracker: the position tracker (changed only through :meth:`on_confirmation`).
        breakers: circuit breakers.
        next_decision_id: returns the next decision id; in a replay 1, 2, 3... so that a restarted
            brain re-derives the ids it journaled (see :mod:`brain.app`).
    """

    def __init__(
        self,
        config: BrainConfig,
        strategy: Strategy,
        tracker: PositionTracker,
        breakers: CircuitBreakers,
        next_decision_id: Callable[[], int],
    ) -> None:
        self.config = config
        self.strategy = strategy
        self.tracker = tracker
        self.breakers = breakers
        self._next_id = next_decision_id
        self.pending: dict[int, TradeDecision] = {}
        self.skips: Counter[SkipReason] = Counter()

    def awaiting(self, instrument: Instrument) -> bool:
        return any(d.instrument == instrument for d in self.pending.values())

    def on_bar(self, bar: Bar, market_ns: int, wall_ns: int, executor_alive: bool = True) -> Step:
        """Process one bar whose close is known at ``market_ns``; stamp decisions with ``wall_ns``.

        ``executor_alive`` is the link's verdict; when False, entries are skipped (exits are not).
        """
        inst = self.config.instrument
        tracker = self.tracker
        price = bar.close
        exit_reason = tracker.mark(inst, price, market_ns)
        trip = self.breakers.on_equity(tracker.equity(), market_ns)
        signal = self.strategy.on_bar(bar)
        position = tracker.position(inst)
        busy = self.awaiting(inst)

        if position is not None and exit_reason is not None and not busy:
            d = self._decide(Side.SELL, Intent.CLOSE, exit_reason, position.quantity, price, market_ns, wall_ns)
            return Step((d,), (), trip)
        if signal is None:
            return Step((), (), trip)

        skip: Skip | None = None
        if busy:
            skip = Skip(SkipReason.AWAITING_CONFIRMATION, signal)
        elif signal is Side.BUY:
            verdict = self.breakers.check_entry(market_ns)
            if position is not None:
                skip = Skip(SkipReason.ALREADY_POSITIONED, signal)
            elif not isinstance(verdict, Approved):
                skip = Skip(SkipReason.BREAKER, signal, verdict.reason)
            elif not executor_alive:
                skip = Skip(SkipReason.EXECUTOR_SILENT, signal, "no heartbeat from the executor")
            else:
                qty = size_entry(tracker.equity(), price, self.config.entry_fraction, self.config.lot_size)
                if qty <= 0:
                    skip = Skip(SkipReason.ZERO_SIZE, signal)
                else:
                    d = self._decide(Side.BUY, Intent.OPEN, DecisionReason.SIGNAL, qty, price, market_ns, wall_ns)
                    return Step((d,), (), trip)
        elif position is None:
            skip = Skip(SkipReason.NO_POSITION, signal)
        else:
            d = self._decide(Side.SELL, Intent.CLOSE, DecisionReason.SIGNAL, position.quantity, price, market_ns, wall_ns)
            return Step((d,), (), trip)
        self.skips[skip.reason] += 1
        return Step((), (skip,), trip)

    def on_confirmation(self, conf: ExecutionConfirmation) -> ApplyResult:
        """Apply a confirmation to the tracker and settle the decision it answers."""
        decision = self.pending.pop(conf.decision_id, None)
        result = self.tracker.apply(conf, decision.reason if decision else None)
        if result.trade is not None:
            self.breakers.on_trade_closed(result.trade.net_pnl, conf.executed_at_ns)
        return result

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

        The tracker is untouched: nothing happened at the venue (DESIGN.md invariant 1).
        """
        return self.pending.pop(decision_id, None)

    def _decide(
        self, side: Side, intent: Intent, reason: DecisionReason, qty: float, price: float, market_ns: int, wall_ns: int
    ) -> TradeDecision:
        decision = TradeDecision(
            decision_id=self._next_id(),
            instrument=self.config.instrument,
            side=side,
            intent=intent,
            reason=reason,
            quantity=qty,
            reference_price=price,
            max_slippage_bps=self.config.max_slippage_bps,
            created_at_ns=wall_ns,
            expires_at_ns=wall_ns + self.config.decision_ttl_ns,
            market_ts_ns=market_ns,
        )
        self.pending[decision.decision_id] = decision
        return decision
