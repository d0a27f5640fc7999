"""Reconciliation as a pure diff: the ledger and the gateway's stops (the executor's belief) against
what the venue reports (the truth), into corrections (nautilus ``live/reconciliation.py`` is the
model: a diff of local state against venue reports, applied by a loop; DESIGN.md invariant 4).

:func:`diff` compares, per symbol, the ledger's position with the venue's holding, and each
position's protective stop with the venue's open orders:

1. **orphan** (on the venue, not in the ledger): :class:`Adopt` — journaled as an external fill,
   confirmed to the brain, and protected at once (the retroactive plan: no position is ever
   unprotected, including one tandem did not open);
2. **phantom** (in the ledger, not on the venue): :class:`ClearPhantom` only after
   ``phantom_grace_s`` since it was first missed **and** ``phantom_misses`` consecutive misses —
   a venue that lags a fill must not make tandem forget a position;
3. **drift** (both hold it, in other sizes): :class:`FixDrift` to the venue's size;
4. **stop coverage** (a venue with protective orders): every position at or above the venue's
   minimum amount has exactly one stop of ours covering its size — a missing one is placed
   (:class:`PlaceStop`), a short one resized (:class:`ResizeStop`), an extra one or one left on a
   flat symbol cancelled (:class:`CancelStop`). Repairs are bounded: at most ``max_repairs`` a
   cycle and one per symbol per ``repair_cooldown_s``; a repair held back is returned in
   ``skipped``, and the mismatch stays open;
5. a **failed evidence fetch** (``holdings`` or ``open_orders`` is ``None``) changes nothing and
   is reported (``fetch_failed``): it raises the belief debt, never reads as "all fine".

A symbol with a decision executing (``BeliefView.busy``) is left alone this cycle: its order is
moving the position. Every mismatch seen — corrected or not — is in :attr:`ReconcilePlan.mismatches`,
the evidence of :class:`executor.belief.BeliefDebt`.

**Sides** (issue #16): positions are signed (> 0 long, < 0 short) on both sides of the diff. A
venue position on the other side of the ledger's is a drift (:class:`FixDrift` with the two
signed sizes), which the reconciler reports as two corrections, the ledger's cleared and the
venue's adopted — never netted in one. A short's stop is a BUY above its price; an adopted short's
stop sits ``adopt_stop_pct`` above its entry.

Quantities in base units (signed, as said), prices in quote per base unit, times
in Unix ns (the caller's clock: wall time live, market time on a replay clock, so a replay stays
deterministic). Nothing here does I/O or raises for a mismatch; the corrections are values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from protocol import Side

from .belief import MismatchKind
from .venue.base import OrderReport

__all__ = [
    "Adopt",
    "BeliefView",
    "CancelStop",
    "ClearPhantom",
    "Correction",
    "Evidence",
    "FixDrift",
    "PlaceStop",
    "ReconcilePlan",
    "ReconcileRules",
    "ReconcileState",
    "ResizeStop",
    "StopView",
    "diff",
]


@dataclass(frozen=True, slots=True)
class StopView:
    """The protective stop the gateway holds for a symbol: its client order id, quantity, level and
    side (SELL for a long's, BUY for a short's)."""

    client_order_id: str
    qty: float
    stop_price: float
    side: Side = Side.SELL


@dataclass(frozen=True, slots=True)
class BeliefView:
    """What the executor believes.

    Attributes:
        positions: the ledger's positions by symbol, base units, signed (flat symbols left out).
        avg_cost: their average cost, quote per base unit.
        stops: the gateway's protective stop per symbol.
        busy: symbols with a decision executing now (left alone this cycle).
    """

    positions: Mapping[str, float]
    avg_cost: Mapping[str, float]
    stops: Mapping[str, StopView]
    busy: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the venue reported this cycle.

    Attributes:
        holdings: position by symbol, base units, signed, with the venue's entry price (0.0 when it gives
            none: spot); ``None`` when the fetch failed.
        open_orders: every working order (ours and others); ``None`` when the fetch failed.
        marks: mark price by symbol (for an adoption without an entry price, and a phantom's exit).
        min_amount: the venue's minimum order amount by symbol (a smaller position is dust: not
            protected).
    """

    holdings: Mapping[str, tuple[float, float]] | None
    open_orders: Sequence[OrderReport] | None
    marks: Mapping[str, float] = field(default_factory=dict)
    min_amount: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReconcileRules:
    """Thresholds of the reconcile rules (module docstring).

    Attributes:
        rel_tol: relative size difference below which two quantities agree (float rounding of
            "sell all"; :data:`~executor.ledger.POSITION_REL_TOL` is 1e-9, venues round to their lot
            step: 1e-6 leaves both inside).
        phantom_grace_s: a ledger position missing on the venue is cleared only this long after it
            was first missed (30 s: longer than a venue's position endpoint takes to show a fill,
            Binance's documented eventual consistency of account data is seconds).
        phantom_misses: ... and only after this many consecutive cycles missed it.
        repair_cooldown_s: least time between two stop repairs of one symbol (60 s: a venue that
            keeps refusing a stop is asked once a minute, not every cycle).
        max_repairs: stop repairs per cycle at most.
        adopt_stop_pct: an adopted position's stop, percent below its entry (keep it equal to the
            brain's ``stop_loss_pct``, 8 by default, so the brain's plan and the venue's stop agree).
    """

    rel_tol: float = 1e-6
    phantom_grace_s: float = 30.0
    phantom_misses: int = 3
    repair_cooldown_s: float = 60.0
    max_repairs: int = 4
    adopt_stop_pct: float = 8.0


@dataclass
class ReconcileState:
    """What :func:`diff` remembers between cycles: when each phantom was first missed and how many
    cycles in a row, and when each symbol's stop was last repaired (Unix ns)."""

    misses: dict[str, tuple[int, int]] = field(default_factory=dict)
    last_repair_ns: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Adopt:
    """A position on the venue the ledger does not hold: take it in at ``price`` and protect it at
    ``stop_price``; ``qty`` is signed (< 0: a short)."""

    symbol: str
    qty: float
    price: float
    stop_price: float


@dataclass(frozen=True, slots=True)
class ClearPhantom:
    """A ledger position the venue no longer has: close it in the ledger at ``price`` (the mark);
    ``qty`` is the ledger's, signed."""

    symbol: str
    qty: float
    price: float


@dataclass(frozen=True, slots=True)
class FixDrift:
    """Both hold the symbol in other sizes (or on other sides): set the ledger's ``ledger_qty`` to
    ``venue_qty`` at ``price`` (both signed)."""

    symbol: str
    ledger_qty: float
    venue_qty: float
    price: float


@dataclass(frozen=True, slots=True)
class PlaceStop:
    """A position without a stop of ours: place one for ``qty`` (signed, the position's) at
    ``stop_price``."""

    symbol: str
    qty: float
    stop_price: float


@dataclass(frozen=True, slots=True)
class ResizeStop:
    """A stop covering less than the position: move it to cover ``qty`` (signed, the position's;
    same level)."""

    symbol: str
    qty: float
    stop_price: float


@dataclass(frozen=True, slots=True)
class CancelStop:
    """A stop of ours that is not the one held for a position: cancel it."""

    symbol: str
    client_order_id: str


Correction = Adopt | ClearPhantom | FixDrift | PlaceStop | ResizeStop | CancelStop


@dataclass(frozen=True, slots=True)
class ReconcilePlan:
    """One cycle's outcome.

    Attributes:
        corrections: what to do, in order (ledger corrections first, then stop repairs).
        mismatches: every (symbol, kind) seen this cycle, corrected or not ("*" for a failed fetch).
        skipped: stop repairs held back by the bounds: (symbol, kind, why).
    """

    corrections: tuple[Correction, ...]
    mismatches: tuple[tuple[str, MismatchKind], ...]
    skipped: tuple[tuple[str, MismatchKind, str], ...] = ()


def _same(a: float, b: float, rel_tol: float) -> bool:
    return abs(a - b) <= rel_tol * max(abs(a), abs(b), 1e-12)


def _adopt_stop(price: float, qty: float, rules: ReconcileRules) -> float:
    """The stop of a position of signed ``qty`` entered at ``price``: ``adopt_stop_pct`` below it
    for a long, above it for a short."""
    pct = rules.adopt_stop_pct / 100
    return price * (1 + pct) if qty < 0 else price * (1 - pct)


def diff(belief: BeliefView, evidence: Evidence, state: ReconcileState, now_ns: int, rules: ReconcileRules, *,
         is_our_stop: Callable[[str], bool], protective: bool) -> ReconcilePlan:  # fmt: skip
    """One reconcile cycle (module docstring); updates ``state``.

    Args:
        is_our_stop: whether a client order id is one of this executor's protective stops
            (:meth:`~executor.venue.coid.OrderIds.mine`).
        protective: the venue holds protective orders (stop coverage is checked).
    """
    if evidence.holdings is None or evidence.open_orders is None:
        return ReconcilePlan((), (("*", MismatchKind.FETCH_FAILED),))
    corrections: list[Correction] = []
    mismatches: list[tuple[str, MismatchKind]] = []
    holdings = evidence.holdings
    positions: dict[str, float] = {}  # what is held after the ledger corrections, for the stop checks
    undecided: set[str] = set()  # phantoms inside their grace period: no stop placed or cancelled
    for symbol in sorted(set(belief.positions) | set(holdings)):
        if symbol in belief.busy:
            continue
        mine = belief.positions.get(symbol, 0.0)
        theirs, entry = holdings.get(symbol, (0.0, 0.0))
        mark = evidence.marks.get(symbol, 0.0)
        if theirs and not mine:
            price = entry or mark
            mismatches.append((symbol, MismatchKind.ORPHAN))
            if price > 0:
                corrections.append(Adopt(symbol, theirs, price, _adopt_stop(price, theirs, rules)))
                positions[symbol] = theirs
            state.misses.pop(symbol, None)
            continue
        if mine and not theirs:
            first, count = state.misses.get(symbol, (now_ns, 0))
            state.misses[symbol] = (first, count + 1)
            mismatches.append((symbol, MismatchKind.PHANTOM))
            due = now_ns - first >= rules.phantom_grace_s * 1e9 and count + 1 >= rules.phantom_misses
            if due and (mark or belief.avg_cost.get(symbol, 0.0)) > 0:
                corrections.append(ClearPhantom(symbol, mine, mark or belief.avg_cost[symbol]))
                state.misses.pop(symbol, None)
            else:
                undecided.add(symbol)  # still believed until the grace is over: its stops left as they are
            continue
        state.misses.pop(symbol, None)
        if mine and not _same(mine, theirs, rules.rel_tol):  # other sizes, or other sides
            mismatches.append((symbol, MismatchKind.DRIFT))
            price = mark or entry or belief.avg_cost.get(symbol, 0.0)
            if price > 0:
                corrections.append(FixDrift(symbol, mine, theirs, price))
        if theirs:
            positions[symbol] = theirs
    skipped: list[tuple[str, MismatchKind, str]] = []
    if protective:
        repairs = _stop_repairs(belief, evidence, positions, corrections, mismatches, is_our_stop, rules,
                                frozenset(undecided))  # fmt: skip
        budget = rules.max_repairs
        for kind, fix in repairs:
            last = state.last_repair_ns.get(fix.symbol)
            if isinstance(fix, CancelStop):
                corrections.append(fix)  # a stop left behind is never kept waiting (freqtrade #12528)
                continue
            if last is not None and now_ns - last < rules.repair_cooldown_s * 1e9:
                skipped.append((fix.symbol, kind, f"cooldown: last repair {(now_ns - last) / 1e9:.1f} s ago"))
                continue
            if budget <= 0:
                skipped.append((fix.symbol, kind, f"at most {rules.max_repairs} repairs a cycle"))
                continue
            budget -= 1
            state.last_repair_ns[fix.symbol] = now_ns
            corrections.append(fix)
    return ReconcilePlan(tuple(corrections), tuple(mismatches), tuple(skipped))


def _stop_repairs(belief: BeliefView, evidence: Evidence, positions: Mapping[str, float],
                  corrections: Sequence[Correction], mismatches: list[tuple[str, MismatchKind]],
                  is_our_stop: Callable[[str], bool], rules: ReconcileRules,
                  undecided: frozenset[str]) -> list[tuple[MismatchKind, Correction]]:  # fmt: skip
    """Stop coverage: one stop of ours per position above the venue's minimum, covering it."""
    assert evidence.open_orders is not None
    ours: dict[str, list[OrderReport]] = {}
    for o in evidence.open_orders:
        if is_our_stop(o.client_order_id):
            ours.setdefault(o.symbol, []).append(o)
    adopted = {c.symbol for c in corrections if isinstance(c, Adopt)}
    out: list[tuple[MismatchKind, Correction]] = []
    for symbol in sorted(set(positions) | set(ours)):
        if symbol in belief.busy or symbol in undecided:
            continue
        held = belief.stops.get(symbol)
        signed = positions.get(symbol, 0.0)
        qty = abs(signed)
        closing = Side.BUY if signed < 0 else Side.SELL
        working = ours.get(symbol, [])
        keep = next((o for o in working if held is not None and o.client_order_id == held.client_order_id
                     and o.side is closing), None)  # fmt: skip
        for o in working:
            if o is not keep or qty <= 0:
                mismatches.append((symbol, MismatchKind.STOP_EXTRA))
                out.append((MismatchKind.STOP_EXTRA, CancelStop(symbol, o.client_order_id)))
        if qty <= 0 or symbol in adopted or qty < evidence.min_amount.get(symbol, 0.0):
            continue  # flat, protected with its adoption, or dust below the venue's minimum
        if keep is None:
            mismatches.append((symbol, MismatchKind.STOP_MISSING))
            level = held.stop_price if held is not None and held.side is closing else 0.0
            if level <= 0:
                cost = belief.avg_cost.get(symbol, 0.0) or evidence.marks.get(symbol, 0.0)
                level = _adopt_stop(cost, signed, rules) if cost > 0 else 0.0  # no known level
            if level > 0:
                out.append((MismatchKind.STOP_MISSING, PlaceStop(symbol, signed, level)))
        elif qty - keep.amount > max(evidence.min_amount.get(symbol, 0.0), qty * 1e-6):
            # short by more than the venue can cover: less than its minimum amount is the lot-step
            # rounding of the stop itself (and a spot buy's commission), which no order can protect
            mismatches.append((symbol, MismatchKind.STOP_SHORT))
            out.append((MismatchKind.STOP_SHORT, ResizeStop(symbol, signed, keep.stop_price or held.stop_price)))  # type: ignore[union-attr]
    return out
