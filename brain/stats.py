"""What a replay tallies for its report: :class:`ReplayStats`, and each decision's outcome counted once.

**Outcomes**: every decision ends exactly once in the report and the outcome metric. A decision the
link resolved as never executed (``EXPIRED_UNCONFIRMED``) that the executor later answers with a
non-executed status (it arrived after its expiry) is not counted again; one that it answers as
executed — which the resolution rule excludes — is applied all the same (the venue is the truth),
moves its outcome to the confirmation's status, and is counted and logged as an error (metrics and
log lines: :mod:`brain.confirmlog`). :class:`OutcomeTally` keeps that rule.

Outcome names are :class:`protocol.Status` names plus :data:`EXPIRED_UNCONFIRMED`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .equity import EquityCurve

__all__ = ["EXPIRED_UNCONFIRMED", "OutcomeTally", "ReplayStats"]

EXPIRED_UNCONFIRMED = "EXPIRED_UNCONFIRMED"
"""Outcome of a decision the link proved can never execute (expired, no confirmation)."""


@dataclass
class ReplayStats:
    """Figures the replay gathers beyond what the tracker holds.

    ``peak_equity`` and ``max_drawdown_pct`` (quote currency, percent) are the equity curve's
    (:class:`~brain.equity.EquityCurve`), read-only here.
    """

    bars: int = 0
    decisions_sent: int = 0
    resumed_decisions: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    silent_pauses: int = 0
    restamped: int = 0
    interrupted: bool = False
    equity_curve: EquityCurve = field(default_factory=lambda: EquityCurve())
    warnings: list[str] = field(default_factory=list)  # for the report (e.g. data too short to warm up)
    executor_journal_fault: str | None = None
    stale_bars: int = 0  # live feed: bars handed over stale (no entry decided on them)
    feed: dict[str, int] | None = None  # live feed: what it saw (received, duplicated, refused, ...), at the end
    belief_modes: list[tuple[int, str]] = field(default_factory=list)  # (bar close ns, the executor's mode) at each change

    @property
    def peak_equity(self) -> float:
        return self.equity_curve.peak_equity

    @property
    def max_drawdown_pct(self) -> float:
        return self.equity_curve.max_drawdown_pct


class OutcomeTally:
    """Counts each decision's outcome exactly once into ``outcomes`` (module docstring).

    Args:
        outcomes: the counter to keep (:attr:`ReplayStats.outcomes`), outcome name → decisions.
    """

    __slots__ = ("_abandoned", "outcomes")

    def __init__(self, outcomes: Counter[str]) -> None:
        self.outcomes = outcomes
        self._abandoned: set[int] = set()  # decisions resolved EXPIRED_UNCONFIRMED (outcome counted)

    def expired(self, decision_id: int) -> None:
        """The link resolved ``decision_id`` as never executed: counted as ``EXPIRED_UNCONFIRMED``."""
        self._abandoned.add(decision_id)
        self.outcomes[EXPIRED_UNCONFIRMED] += 1

    def resolved(self, decision_id: int) -> bool:
        """Was ``decision_id`` resolved (and counted) as ``EXPIRED_UNCONFIRMED``?"""
        return decision_id in self._abandoned

    def confirmed(self, decision_id: int, status: str, executed: bool) -> bool:
        """A confirmation with ``status`` (executed or not) for ``decision_id``; returns whether it
        was counted (False: a late non-executed answer to a decision already counted as expired)."""
        resolved = decision_id in self._abandoned
        counted = not resolved or executed  # each decision ends exactly once
        if counted:
            self.outcomes[status] += 1
        if resolved and executed:
            self._abandoned.discard(decision_id)
            self.outcomes[EXPIRED_UNCONFIRMED] -= 1
            if not self.outcomes[EXPIRED_UNCONFIRMED]:
                del self.outcomes[EXPIRED_UNCONFIRMED]
        return counted
