"""Belief debt: how far, and for how long, the executor's local state has disagreed with the venue.

DESIGN.md invariant 4: local state is a belief, the venue is the truth. Each reconcile cycle diffs the
ledger and the stops held against the venue's reports and hands the mismatches it found to
:meth:`BeliefDebt.observe`; what comes out, :class:`DebtAggregates`, is what
:class:`~executor.controller.BeliefController` turns into entry guards (issue #14, "Reconcile with the
venue, belief debt, and a belief controller that gates entries only").

Per instrument and kind, the first and the last time a mismatch was seen (:class:`Mismatch`). Aggregates:

* ``debt_seconds``: age of the oldest unresolved mismatch, seconds;
* ``instruments``: how many instruments have one;
* ``streak``: consecutive cycles with any mismatch or a failed fetch (0 after a clean cycle);
* ``score`` = ``debt_seconds / debt_ref_s + instruments × instrument_weight + streak × streak_weight``
  (:class:`DebtRules`);
* ``growth_per_min``: the score's slope since the previous cycle, score per minute.

A failed evidence fetch is never "all fine": it counts for the streak and is kept as the mismatch
(:data:`ALL_INSTRUMENTS`, :attr:`MismatchKind.FETCH_FAILED`), so the debt's age grows while fetches
keep failing; and what was open before stays open (nothing is resolved by evidence that never came).

No I/O, no clock, no logging, no event loop (an import-linter contract in ``pyproject.toml`` holds it):
times are Unix ns passed in by the caller; the reconcile loop owns the clock. Nothing here raises for
a mismatch; :class:`ValueError` is raised only for a caller's error (time going backwards, bad rules).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ALL_INSTRUMENTS",
    "BeliefDebt",
    "DebtAggregates",
    "DebtRules",
    "Mismatch",
    "MismatchKind",
]

ALL_INSTRUMENTS = "*"
"""The instrument of a failed fetch that concerned the whole account (``observe(fetch_failed=True)``)."""

_NS_PER_S = 1_000_000_000


class MismatchKind(enum.StrEnum):
    """What disagreed between the ledger and the venue."""

    ORPHAN = "orphan"
    """The venue holds an order or a position the ledger does not know."""
    PHANTOM = "phantom"
    """The ledger holds an order or a position the venue does not show."""
    DRIFT = "drift"
    """Both hold the position, with different quantities (beyond the ledger's tolerance)."""
    STOP_MISSING = "stop_missing"
    """A position the exit order gateway should protect has no stop on the venue."""
    STOP_SHORT = "stop_short"
    """The venue's stop covers less than the position."""
    STOP_EXTRA = "stop_extra"
    """A stop on the venue with no position (or more than the position) behind it."""
    FETCH_FAILED = "fetch_failed"
    """The evidence could not be fetched (for one instrument, or :data:`ALL_INSTRUMENTS`)."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One unresolved mismatch.

    Attributes:
        instrument: the venue symbol, or :data:`ALL_INSTRUMENTS` for a failed account-wide fetch.
        kind: what disagreed.
        first_seen_ns: the cycle it was first seen, Unix ns; kept while it is seen again.
        last_seen_ns: the last cycle it was seen, Unix ns (older than the last cycle only while a failed
            fetch kept it open).
    """

    instrument: str
    kind: MismatchKind
    first_seen_ns: int
    last_seen_ns: int

    def age_s(self, now_ns: int) -> float:
        """Seconds since it was first seen."""
        return (now_ns - self.first_seen_ns) / _NS_PER_S


@dataclass(frozen=True, slots=True)
class DebtRules:
    """The weights of the debt score.

    The defaults assume a reconcile cycle of about 10 s (the order of the executor's ``fill_timeout_s``,
    10 s: an order placed in one cycle has ended by the next). :class:`~executor.controller.ControllerRules`'
    thresholds are tuned to these weights and that cadence; a much faster cycle makes the streak term grow
    faster per minute, so scale ``streak_weight`` with the cycle.

    Attributes:
        debt_ref_s: seconds of debt that score 1: 60, so a minute-old mismatch scores 1, the YELLOW
            threshold on its own (issue #14).
        instrument_weight: score per instrument with a mismatch: 0.5, so two instruments wrong at once
            weigh as much as a minute of debt, and one new mismatch alone (0.5 + one streak step, 0.6) stays
            below YELLOW.
        streak_weight: score per consecutive dirty cycle: 0.1, so ten dirty cycles (about 100 s at the
            assumed cadence) add 1. It catches mismatches that come and go (each one resolved, so never old)
            but never stop coming.
        slope_floor_s: the least time the slope is taken over, seconds: 10 (the assumed cycle). A cycle run
            soon after another (an on-demand reconcile after a fill) must not turn an ordinary step of the
            score into a growth burst by dividing it by a few milliseconds.

    Raises:
        ValueError: a non-positive reference or floor, or a negative or non-finite weight.
    """

    debt_ref_s: float = 60.0
    instrument_weight: float = 0.5
    streak_weight: float = 0.1
    slope_floor_s: float = 10.0

    def __post_init__(self) -> None:
        if not (0 < self.debt_ref_s < math.inf and 0 < self.slope_floor_s < math.inf):
            raise ValueError("debt_ref_s and slope_floor_s must be positive and finite")
        if not (0 <= self.instrument_weight < math.inf and 0 <= self.streak_weight < math.inf):
            raise ValueError("instrument_weight and streak_weight must be >= 0 and finite")

    def score(self, debt_seconds: float, instruments: int, streak: int) -> float:
        """``debt_seconds / debt_ref_s + instruments × instrument_weight + streak × streak_weight``."""
        return (
            debt_seconds / self.debt_ref_s
            + instruments * self.instrument_weight
            + streak * self.streak_weight
        )


@dataclass(frozen=True, slots=True)
class DebtAggregates:
    """What one reconcile cycle says about the belief, for the controller, metrics and logs.

    Attributes:
        debt_seconds: age of the oldest unresolved mismatch, seconds (0 when none is open).
        instruments: instruments with an unresolved mismatch (:data:`ALL_INSTRUMENTS` not counted: a
            failed account-wide fetch weighs through its age and the streak).
        streak: consecutive cycles with any mismatch or a failed fetch, this one included.
        score: the debt score (:meth:`DebtRules.score`), >= 0.
        growth_per_min: the score's change since the previous cycle per minute of the time between them
            (at least :attr:`DebtRules.slope_floor_s`); 0 on the first cycle. Negative while debt is repaid.
    """

    debt_seconds: float = 0.0
    instruments: int = 0
    streak: int = 0
    score: float = 0.0
    growth_per_min: float = 0.0


class BeliefDebt:
    """The open mismatches and the score, updated once per reconcile cycle by :meth:`observe`."""

    def __init__(self, rules: DebtRules | None = None) -> None:
        self.rules = rules if rules is not None else DebtRules()
        self._open: dict[tuple[str, MismatchKind], Mismatch] = {}
        self._streak = 0
        self._last_ns: int | None = None
        self._last = DebtAggregates()

    @property
    def aggregates(self) -> DebtAggregates:
        """The last cycle's aggregates (all zero before the first)."""
        return self._last

    def observe(
        self, now_ns: int, mismatches: Iterable[tuple[str, MismatchKind]], *, fetch_failed: bool
    ) -> DebtAggregates:
        """Fold one reconcile cycle's evidence in.

        * a (instrument, kind) seen again keeps its ``first_seen_ns``; a new one starts at ``now_ns``;
        * one not seen this cycle is resolved (removed) — unless the evidence for it was not fetched: with
          ``fetch_failed`` nothing is resolved, and a (instrument, FETCH_FAILED) in ``mismatches`` keeps
          that instrument's mismatches open;
        * ``fetch_failed`` adds (:data:`ALL_INSTRUMENTS`, FETCH_FAILED), kept (first seen at the first
          failure) until a cycle whose fetch succeeds;
        * the streak counts this cycle when it has any mismatch or a failed fetch, else it is 0.

        Args:
            now_ns: the cycle's time, Unix ns.
            mismatches: (instrument, kind) pairs the diff found; duplicates count once.
            fetch_failed: the venue's account-wide evidence (orders, positions) could not be fetched.

        Returns:
            The aggregates after this cycle (also :attr:`aggregates`).

        Raises:
            ValueError: ``now_ns`` earlier than the previous cycle's.
        """
        if self._last_ns is not None and now_ns < self._last_ns:
            raise ValueError(f"cycle time went backwards: {now_ns} < {self._last_ns}")
        seen = {(instrument, MismatchKind(kind)) for instrument, kind in mismatches}
        if fetch_failed:
            seen.add((ALL_INSTRUMENTS, MismatchKind.FETCH_FAILED))
        unfetched = {instrument for instrument, kind in seen if kind is MismatchKind.FETCH_FAILED}
        kept: dict[tuple[str, MismatchKind], Mismatch] = {}
        for key in sorted(seen):
            old = self._open.get(key)
            first = old.first_seen_ns if old is not None else now_ns
            kept[key] = Mismatch(key[0], key[1], first, now_ns)
        for key, old in self._open.items():
            if key not in kept and (ALL_INSTRUMENTS in unfetched or key[0] in unfetched):
                kept[key] = old
        self._open = kept
        self._streak = self._streak + 1 if seen else 0

        debt_s = max((m.age_s(now_ns) for m in kept.values()), default=0.0)
        instruments = len({m.instrument for m in kept.values() if m.instrument != ALL_INSTRUMENTS})
        score = self.rules.score(debt_s, instruments, self._streak)
        growth = 0.0
        if self._last_ns is not None:
            minutes = max((now_ns - self._last_ns) / _NS_PER_S, self.rules.slope_floor_s) / 60.0
            growth = (score - self._last.score) / minutes
        self._last_ns = now_ns
        self._last = DebtAggregates(debt_s, instruments, self._streak, score, growth)
        return self._last

    def open(self) -> list[Mismatch]:
        """The unresolved mismatches, oldest first (then by instrument and kind), for logs."""
        return sorted(self._open.values(), key=lambda m: (m.first_seen_ns, m.instrument, m.kind))
