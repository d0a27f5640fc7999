"""The executor's pure, synchronous core: decision in, confirmation out, exactly once.

``ExecutorCore.on_decision(decision, now_ns)`` applies, in order:

a. **already confirmed** → the stored confirmation, ``duplicate=True``, never executed again
   (also after a restart: the journal is the memory);
b. **journaled but not confirmed** (in flight) → resolved now exactly as a restart would;
c. **expired** (``now_ns > expires_at_ns``) → ``EXPIRED / RejectCode.EXPIRED``, journaled
   (decision and confirmation, no fill), not executed;
d. otherwise: journal the decision (committed before acting), ask the venue, journal the outcome
   (fill + confirmation + state done in one transaction), then apply the fill to the ledger.

A repeated ``decision_id`` whose other fields differ from the journaled decision is answered like
(a) or (b) — with the journaled decision's outcome; the new content is never executed — and the
outcome carries ``conflict=True`` so the application can count it.

Confirmation seq numbers are gap-free from 1 in the order outcomes are journaled (the journal
enforces it). A confirmation that executed nothing carries ``executed_at_ns = 0``; its ``sent_at_ns``
is 0 here and stamped by the sender at each transmission.

Restart (:meth:`ExecutorCore.open`): the ledger is rebuilt as a fold over the journal's fills, then
every in-flight decision is resolved in decision-id order. The paper venue is atomic with the
journal (a fill exists only once its outcome is committed), so an in-flight decision did not
execute: it is executed now, judged against its journaled ``received_at_ns`` (expiry) and its own
``market_ts_ns`` (price), which gives the same answer it would have had without the crash.

Errors: the core raises none of its own; journal failures propagate as
:class:`~executor.journal.JournalError`, and nothing is applied to the ledger unless its outcome
was committed first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from protocol import ExecutionConfirmation, RejectCode, Status, TradeDecision
from protocol.messages import VENUE_REF_SIZE

from .journal import Journal, JournalError
from .ledger import Fill, Ledger
from .paper import PaperRefusal, PaperVenue

__all__ = ["ExecutorCore", "Outcome"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one decision delivery.

    Attributes:
        confirmation: the confirmation to send (``sent_at_ns`` 0, stamped by the sender).
        duplicate: the decision id had been received before (retransmit or replay).
        executed: this call traded (a fill was journaled and applied to the ledger).
        conflict: the id repeated with different content; the stored outcome was answered.
        detail: why it did not execute, for logs (empty when executed or duplicate-confirmed).
    """

    confirmation: ExecutionConfirmation
    duplicate: bool
    executed: bool
    conflict: bool = False
    detail: str = ""


class ExecutorCore:
    """Decisions → venue → journal → ledger; see the module docstring for the rules.

    Args:
        journal: the open journal (owned by the core from now on; :meth:`close` closes it).
        venue: the paper venue.
        ledger: the ledger matching the journal's fills (see :meth:`open`).

    Attributes:
        recovered: outcomes of the in-flight decisions :meth:`open` resolved; their
            confirmations are new and must be sent to the brain.
    """

    __slots__ = ("journal", "ledger", "recovered", "venue")

    def __init__(self, journal: Journal, venue: PaperVenue, ledger: Ledger) -> None:
        self.journal = journal
        self.venue = venue
        self.ledger = ledger
        self.recovered: tuple[Outcome, ...] = ()

    @classmethod
    def open(
        cls, journal_path: str | Path, venue: PaperVenue, starting_cash: float, *, synchronous: str = "NORMAL"
    ) -> ExecutorCore:
        """Open (or create) the journal, rebuild the ledger, and resolve in-flight decisions.

        Raises:
            JournalError: see :class:`~executor.journal.Journal` (corrupt file, other starting
                cash, ...).
        """
        journal = Journal(journal_path, starting_cash=starting_cash, synchronous=synchronous)
        try:
            core = cls(journal, venue, Ledger.from_fills(journal.starting_cash, journal.fills()))
            core.recovered = tuple(core.recover())
        except BaseException:
            journal.close()
            raise
        return core

    def recover(self) -> list[Outcome]:
        """Resolve every in-flight decision, in decision-id order; returns their outcomes."""
        out = []
        for decision in self.journal.in_flight():
            rec = self.journal.decision(decision.decision_id)
            assert rec is not None
            out.append(self._resolve(decision, rec.received_at_ns, duplicate=False, conflict=False))
        return out

    def on_decision(self, decision: TradeDecision, now_ns: int) -> Outcome:
        """Handle one received decision at wall clock ``now_ns`` (Unix ns); see rules a–d."""
        rec = self.journal.decision(decision.decision_id)
        if rec is None:
            self.journal.record_decision(decision, now_ns)
            return self._resolve(decision, now_ns, duplicate=False, conflict=False)
        conflict = rec.decision != decision
        if rec.state == "received":
            return self._resolve(rec.decision, rec.received_at_ns, duplicate=True, conflict=conflict)
        conf = self.journal.confirmation_for(decision.decision_id)
        if conf is None:
            raise JournalError(
                f"{self.journal.path}: decision {decision.decision_id} is done without a confirmation"
            )
        return Outcome(conf, duplicate=True, executed=False, conflict=conflict)

    def _resolve(self, d: TradeDecision, received_at_ns: int, *, duplicate: bool, conflict: bool) -> Outcome:
        """Decide, journal and apply the outcome of a journaled, in-flight decision."""
        seq = self.journal.next_seq()
        if received_at_ns > d.expires_at_ns:
            detail = f"received at {received_at_ns} ns, expired at {d.expires_at_ns} ns"
            return self._refuse(d, seq, Status.EXPIRED, RejectCode.EXPIRED, detail, duplicate, conflict)
        quote = self.venue.quote(d, self.ledger)
        if isinstance(quote, PaperRefusal):
            return self._refuse(d, seq, quote.status, quote.reject_code, quote.detail, duplicate, conflict)
        ref = quote.venue_ref_full
        conf = ExecutionConfirmation(
            decision_id=d.decision_id,
            seq=seq,
            instrument=d.instrument,
            side=d.side,
            intent=d.intent,
            status=Status.FILLED,
            reject_code=RejectCode.NONE,
            executed_qty=quote.qty,
            avg_price=quote.price,
            fee=quote.fee,
            executed_at_ns=quote.executed_at_ns,
            venue_ref=ref[:VENUE_REF_SIZE],
            venue_ref_truncated=len(ref) > VENUE_REF_SIZE,
        )
        fill = Fill(
            d.decision_id, d.instrument, d.side, quote.qty, quote.price, quote.fee, quote.executed_at_ns
        )
        self.journal.record_outcome(conf, fill, ref)
        self.ledger.apply(fill)
        return Outcome(conf, duplicate=duplicate, executed=True, conflict=conflict)

    def _refuse(
        self,
        d: TradeDecision,
        seq: int,
        status: Status,
        code: RejectCode,
        detail: str,
        duplicate: bool,
        conflict: bool,
    ) -> Outcome:
        conf = ExecutionConfirmation(
            decision_id=d.decision_id,
            seq=seq,
            instrument=d.instrument,
            side=d.side,
            intent=d.intent,
            status=status,
            reject_code=code,
            executed_qty=0.0,
            avg_price=0.0,
            fee=0.0,
            executed_at_ns=0,
        )
        self.journal.record_outcome(conf, None, b"")
        return Outcome(conf, duplicate=duplicate, executed=False, conflict=conflict, detail=detail)

    def close(self) -> None:
        """Close the journal."""
        self.journal.close()
