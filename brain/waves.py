"""Waves: a replay applies the confirmations of decisions in flight together all at once, in
decision-id order (issue #16).

The decisions in flight together — a portfolio's close time, or those a confirmation made
(:meth:`~brain.core.BrainCore.protect_now`) — are answered in whatever order the executor finished
them, which loss and reordering on the bus change from run to run. Cash is a float sum, so the
order of application moves equity's last bit and with it a later entry's size. So in a replay each
confirmation is held until every decision in flight has its own; then the whole wave is applied,
the confirmations of our decisions in decision-id order and the executor's reconciled ones
(protocol v4, ids >= 2**63) after them; a reconciled one that arrives with nothing in flight is a
wave of its own. The same inputs give the same bytes, whatever the bus did. A restarted brain
re-receives its journal in seq order through the same waves (:mod:`brain.restart`), so it rebuilds
the waves the live run applied. One instrument has one decision in flight at a time: every wave is
one confirmation, applied as it arrives.
"""

from __future__ import annotations

from collections.abc import Collection

from protocol import ExecutionConfirmation

__all__ = ["Waves"]


class Waves:
    """The confirmations held for the wave in flight, each with whether it arrived live (``True``) or
    was re-received from the journal by a restarted brain (``False``)."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[int, tuple[ExecutionConfirmation, bool]] = {}

    def __contains__(self, decision_id: object) -> bool:
        return decision_id in self._held

    def hold(self, conf: ExecutionConfirmation, live: bool) -> None:
        """Keep ``conf`` until its wave is complete (:meth:`take`)."""
        self._held[conf.decision_id] = (conf, live)

    def take(self, in_flight: Collection[int]) -> list[tuple[ExecutionConfirmation, bool]]:
        """The wave to apply now, in order, if every decision id in ``in_flight`` has its confirmation
        held (and something is held); else ``[]``. What is returned is no longer held."""
        if not self._held or any(did not in self._held for did in in_flight):
            return []
        wave = sorted(self._held.values(), key=lambda held: (held[0].reconciled, held[0].decision_id))
        self._held.clear()
        return wave
