"""The executor journal's rows as values: a journaled decision, a confirmation, a Solana swap record
(:mod:`executor.journal` reads them; the SQL is :mod:`executor.journalschema`'s). u64 fields are
stored as SQLite's signed INTEGER (:func:`~executor.journalidentity.i64`) and read back with
:func:`~executor.journalidentity.u64`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from protocol import ExecutionConfirmation, Instrument, TradeDecision

from .journalidentity import u64
from .venue.solana.records import SwapRecord, SwapState

__all__ = ["DecisionState", "JournaledDecision", "confirmation_row", "decision_row", "swap_row"]

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
