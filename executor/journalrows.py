"""The executor journal's rows as values: a journaled decision, a confirmation, a Solana swap record
(:mod:`executor.journal` reads them; the SQL is :mod:`executor.journalschema`'s). u64 fields are
stored as SQLite's signed INTEGER (:func:`~executor.journalidentity.i64`) and read back with
:func:`~executor.journalidentity.u64`."""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Literal

from protocol import ExecutionConfirmation, Instrument, TradeDecision

from .journalidentity import i64, u64
from .venue.solana.records import SwapRecord, SwapState

if TYPE_CHECKING:
    from .ledger import Fill

__all__ = ["DecisionState", "JournaledDecision", "confirmation_row", "decision_row", "fill_of", "instrument_and_intent",
           "outcome_columns", "swap_row"]  # fmt: skip

DecisionState = Literal["received", "done"]


@dataclass(frozen=True, slots=True)
class JournaledDecision:
    """A decision as journaled: when it was received (Unix ns) and its state."""

    decision: TradeDecision
    received_at_ns: int
    state: DecisionState


def decision_row(row: tuple) -> JournaledDecision:
    (did, kind, instr, side, intent, reason, qty, ref, slip, created, expires, market, stop, received, state) = row
    decision = TradeDecision.from_columns((u64(did), Instrument(kind, instr), side, intent, reason, qty, ref, slip,
                                           u64(created), u64(expires), u64(market), stop))  # fmt: skip
    return JournaledDecision(decision, u64(received), state)


def swap_row(row: tuple) -> SwapRecord:
    coid, attempt, sig, tx, lvbh, imint, omint, ina, outa, at, mts, state, detail = row
    return SwapRecord(coid, attempt, sig, bytes(tx), lvbh, imint, omint, ina, outa, u64(at), u64(mts),
                      SwapState(state), detail)  # fmt: skip


def confirmation_row(row: tuple) -> ExecutionConfirmation:
    (did, seq, kind, instr, side, intent, status, code, qty, price, fee, at, ref, truncated, over, rec) = row
    return ExecutionConfirmation.from_columns((u64(did), seq, Instrument(kind, instr), side, intent, status, code, qty,
                                               price, fee, u64(at), ref, truncated, over, rec))  # fmt: skip


instrument_and_intent = itemgetter(1, 2, 4)
"""A decision row's (``instrument_kind``, ``instrument``, ``intent``): what its confirmation must name."""


def fill_of(conf: ExecutionConfirmation, fill: Fill) -> bool:
    """``fill`` is what ``conf`` reports: its decision id, instrument, side, quantity, price and fee
    (an outcome row stores them once, as the confirmation's)."""
    return (fill.decision_id, fill.instrument, fill.side, fill.qty, fill.price, fill.fee) == (
        conf.decision_id, conf.instrument, conf.side, conf.executed_qty, conf.avg_price, conf.fee,
    )  # fmt: skip


def outcome_columns(conf: ExecutionConfirmation, fill: Fill | None, venue_ref_full: bytes) -> tuple[object, ...]:
    """The outcome's 14 columns of an ``outcomes`` row, after its decision's (``_OUTCOME_NAMES`` in
    :mod:`executor.journalschema`): enums as ints (sqlite3 binds an int subclass only after looking
    for an adapter), u64 times as i64; ``fill_at_ns`` NULL when nothing was filled."""
    return (
        int(conf.side), int(conf.status), int(conf.reject_code), conf.executed_qty, conf.avg_price, conf.fee,
        i64(conf.executed_at_ns), conf.venue_ref, int(conf.venue_ref_truncated), venue_ref_full,
        int(conf.slippage_over_limit), int(conf.reconciled),
        None if fill is None else i64(fill.executed_at_ns), 0 if fill is None else fill.fee_native,
    )  # fmt: skip
