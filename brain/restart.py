"""Restart matching: a restarted brain's re-derived decisions paired with their journaled twins.

**Restart**: a brain started on an existing journal re-runs the replay from the first bar. Each
decision the core re-derives is matched with its journaled twin (same id, same bar, same fields;
anything else means the data or settings changed and is refused): a journaled confirmation is
applied, a journaled local resolution is re-applied, and the first decision with neither is resent
byte-identical from the journal, after which the replay is live again.

**Journaled confirmations are received again in their seq order**, the order the live run received
them, and go through the same waves as live ones (:meth:`brain.app.BrainApp._receive`): with
several instruments the decisions of one close time are answered in whatever order the executor
finished them, and a re-run that applied them in the order it re-derives their decisions would
rebuild other waves — cash is a float sum, so another last bit of equity and another entry size on
a later bar. A confirmation is *ready* once its decision is re-derived (the executor's reconciled
ones, which answer no decision, are ready from the start); :meth:`RestartMatcher.next_ready` hands
them out while the next seq of the journal is ready, and stops at the first that is not (its
decision comes on a later bar). The link asks the
executor to replay every confirmation after the last one journaled. (What is applied or resent is
the app's job, :meth:`brain.app.BrainApp._resume`; the pairing and its checks are here.)

"Same fields" is side, intent, reason, quantity, instrument and stop price.

Errors: :class:`~brain.journal.BrainJournalError` when a pair differs, or when the replay ends with
journaled decisions it never re-derived.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from protocol import ExecutionConfirmation, TradeDecision

from .journal import BrainJournalError, JournaledDecision

__all__ = ["RestartMatcher"]


class RestartMatcher:
    """The journaled decisions this incarnation has not re-derived yet, keyed by decision id.

    Args:
        path: the journal's path (for error messages).
        history: :meth:`~brain.journal.BrainJournal.history` (empty for a fresh journal).
        reconciled: the journal's reconciled confirmations (:meth:`~brain.journal.BrainJournal.confirmations`
            with ``reconciled``), ready from the start.
    """

    __slots__ = ("_history", "_last_bar", "_ready", "_seqs", "path")

    def __init__(self, path: Path, history: dict[int, JournaledDecision],
                 reconciled: Iterable[ExecutionConfirmation] = ()) -> None:  # fmt: skip
        self.path = path
        self._history = history
        self._last_bar = max((j.bar_index for j in history.values()), default=-1)
        self._ready: dict[int, ExecutionConfirmation] = {c.seq: c for c in reconciled}
        seqs = {j.confirmation.seq for j in history.values() if j.confirmation is not None} | set(self._ready)
        self._seqs = deque(sorted(seqs))  # every journaled seq not applied yet, in order

    @property
    def receiving(self) -> bool:
        """Journaled confirmations are still to be received again (:meth:`next_ready`)."""
        return bool(self._seqs)

    def ready(self, conf: ExecutionConfirmation) -> None:
        """A journaled confirmation whose decision was re-derived: received at its turn (:meth:`next_ready`)."""
        self._ready[conf.seq] = conf

    def next_ready(self) -> ExecutionConfirmation | None:
        """The journaled confirmation to receive next — the lowest seq not received yet — if it is
        ready; else ``None`` (its decision is re-derived on a later bar)."""
        if self._seqs and (conf := self._ready.pop(self._seqs[0], None)) is not None:
            self._seqs.popleft()
            return conf
        return None

    def __len__(self) -> int:
        """Journaled decisions still to be re-derived (0: live)."""
        return len(self._history)

    def take(self, derived: TradeDecision, bar_index: int) -> JournaledDecision | None:
        """The journaled twin of ``derived`` (made on bar ``bar_index``), no longer awaited; None if
        it was never journaled (a new decision, to be sent).

        Raises:
            BrainJournalError: the twin was journaled on another bar or with other fields.
        """
        journaled = self._history.pop(derived.decision_id, None)
        if journaled is None:
            return None
        if journaled.bar_index == self._last_bar:
            self._last_bar = max((j.bar_index for j in self._history.values()), default=-1)
        d = journaled.decision
        same = (d.side, d.intent, d.reason, d.quantity, d.instrument, d.stop_price) == (
            derived.side, derived.intent, derived.reason, derived.quantity, derived.instrument,
            derived.stop_price)  # fmt: skip
        if not same or journaled.bar_index != bar_index:
            raise BrainJournalError(
                f"{self.path}: decision {d.decision_id} was journaled on bar {journaled.bar_index} as"
                f" {d.side.name} {d.quantity} ({d.reason.name}); this replay derives it on bar {bar_index} as"
                f" {derived.side.name} {derived.quantity} ({derived.reason.name}): data or settings changed"
            )
        return journaled

    def awaits(self, decision_id: int) -> bool:
        """Is ``decision_id`` journaled and not re-derived yet?"""
        return decision_id in self._history

    def attach(self, conf: ExecutionConfirmation) -> None:
        """Keep ``conf`` (journaled already, newer than every journaled seq) with its decision,
        applied when the re-run reaches it."""
        self._seqs.append(conf.seq)
        journaled = self._history[conf.decision_id]
        self._history[conf.decision_id] = dataclasses.replace(journaled, confirmation=conf)

    def passed(self, bar_index: int) -> bool:
        """Has the run gone past every bar a journaled decision still awaited was made on? (Then
        those decisions will never be re-derived: :meth:`check_done` would fail.)"""
        return bool(self._history) and bar_index > self._last_bar

    def covers(self, bar_index: int) -> bool:
        """Is ``bar_index`` at or before the last bar a journaled decision still awaited was made on
        (a bar being re-derived, whose decisions must come out as they were journaled)?"""
        return bool(self._history) and bar_index <= self._last_bar

    def check_done(self) -> None:
        """At the end of the replay: every journaled decision must have been re-derived.

        Raises:
            BrainJournalError: journaled decisions were left that this replay did not re-derive.
        """
        if self._history:
            raise BrainJournalError(
                f"{self.path}: {len(self._history)} journaled decisions were not re-derived by this replay"
                " (data or settings changed since the journal was written)"
            )
