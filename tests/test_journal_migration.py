"""An executor journal of an older schema is upgraded in place when the executor opens it, keeping
its whole history; one that would not fit today's schema is refused and left as it was. Schema 7
(issue #17) keeps a decided decision, its confirmation and its fill in one ``outcomes`` row; the
fixture ``journal_v6.downgrade_to_6`` writes the same history back into schema 6's three tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from journal_v6 import downgrade_to_6

from executor.journal import SCHEMA_VERSION, Journal, JournalConflict, JournalMismatch, check_journal
from executor.ledger import Fill
from protocol import (
    RECONCILE_ID_BASE,
    ExecutionConfirmation,
    Instrument,
    Intent,
    RejectCode,
    Side,
    Status,
    TradeDecision,
)

INST = Instrument.symbol("BTC-PERP")


def decision(did: int, side: Side = Side.BUY, intent: Intent = Intent.OPEN) -> TradeDecision:
    return TradeDecision(decision_id=did, instrument=INST, side=side, intent=intent, reason=1, quantity=0.1,
                         reference_price=100.0, max_slippage_bps=50, created_at_ns=did, expires_at_ns=2**64 - 1,
                         market_ts_ns=did)  # fmt: skip


def confirmation(did: int, seq: int, status: Status = Status.FILLED, fill: Fill | None = None,
                 code: RejectCode = RejectCode.NONE, ref: bytes = b"", reconciled: bool = False,
                 intent: Intent = Intent.OPEN) -> ExecutionConfirmation:  # fmt: skip
    return ExecutionConfirmation(
        decision_id=did, seq=seq, instrument=INST, side=fill.side if fill else Side.BUY, intent=intent, status=status,
        reject_code=code, executed_qty=fill.qty if fill else 0.0, avg_price=fill.price if fill else 0.0,
        fee=fill.fee if fill else 0.0, executed_at_ns=fill.executed_at_ns if fill and not fill.fee_only else 0,
        venue_ref=ref[:16], venue_ref_truncated=len(ref) > 16, reconciled=reconciled,
    )  # fmt: skip


def write_history(path: Path) -> None:
    """Every kind of row an executor writes: a fill outside a group and one inside, a refusal, a
    fee-only fill with a native fee, a decision in flight, a reconciled correction and its audit."""
    with Journal(path, starting_cash=1000.0, venue="paper") as j:
        j.record_decision(decision(7), 1)
        fill7 = Fill(7, INST, Side.BUY, 0.1, 100.5, 0.01, 5)
        j.record_outcome(confirmation(7, 1, fill=fill7, ref=b"paper-7-a-long-venue-reference"), fill7,
                         b"paper-7-a-long-venue-reference")  # fmt: skip
        with j.group():
            j.record_decision(decision(8, Side.SELL, Intent.CLOSE), 6)
            fill8 = Fill(8, INST, Side.SELL, 0.1, 99.5, 0.02, 7, 5000)
            j.record_outcome(confirmation(8, 2, fill=fill8, intent=Intent.CLOSE), fill8, b"paper-8")
        j.record_decision(decision(9), 8)
        j.record_outcome(confirmation(9, 3, Status.REJECTED, code=RejectCode.SLIPPAGE_EXCEEDED), None, b"")
        j.record_decision(decision(10), 9)
        fee_only = Fill(10, INST, Side.BUY, 0.0, 0.0, 0.003, 11, 5000)
        j.record_outcome(confirmation(10, 4, Status.FAILED, fill=fee_only, code=RejectCode.VENUE_ERROR), fee_only,
                         b"sig-10")  # fmt: skip
        j.record_decision(decision(11), 12)
        action = j.next_action_id()
        fix = Fill(action, INST, Side.SELL, 0.05, 101.0, 0.0, 13)
        j.record_reconciled(confirmation(action, 5, fill=fix, reconciled=True, intent=Intent.CLOSE), fix,
                            kind="position_corrected", detail="venue holds less", at_ns=13)  # fmt: skip


def history(path: Path) -> dict[str, object]:
    """Everything the journal answers about its history."""
    with Journal(path, starting_cash=1000.0, venue="paper") as j:
        return {
            "in_flight": j.in_flight(),
            "fills": list(j.fills()),
            "confirmations": j.confirmations_from(1),
            "decisions": [j.decision(i) for i in (7, 8, 9, 10, 11, 12)],
            "confirmation_of": [j.confirmation_for(i) for i in (7, 8, 9, 10, 11, RECONCILE_ID_BASE + 1)],
            "next_seq": j.next_seq(),
            "next_action_id": j.next_action_id(),
            "reconciliations": j.reconciliations(),
        }


def schema_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
    finally:
        db.close()


def tables(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        db.close()


def test_a_schema_6_journal_is_upgraded_to_one_row_outcomes_and_reads_back_the_same(tmp_path: Path) -> None:
    """A schema-6 journal (three tables) opens as schema 7 (``received`` and ``outcomes``) and answers
    exactly as it did: decisions and their states, fills (the fee-only one with its own time and
    native fee), confirmations (the cut venue reference, the reconciled flag), what is in flight, the
    next seq and action id. The in-flight decision then takes its outcome, and a duplicate is refused."""
    path = tmp_path / "executor.sqlite"
    write_history(path)
    before = history(path)
    assert [d.decision_id for d in before["in_flight"]] == [11]  # type: ignore[attr-defined]
    assert len(before["fills"]) == 4 and before["next_seq"] == 6  # type: ignore[arg-type]
    downgrade_to_6(path)
    assert schema_version(path) == 6 and {"decisions", "fills", "confirmations"} <= tables(path)
    check_journal(path, venue="paper", starting_cash=1000.0)  # an older journal passes the pre-check
    assert history(path) == before
    assert schema_version(path) == SCHEMA_VERSION == 7
    assert {"received", "outcomes"} <= tables(path) and not {"decisions", "fills", "confirmations"} & tables(path)
    with Journal(path, starting_cash=1000.0, venue="paper") as j:
        fill = Fill(11, INST, Side.BUY, 0.1, 100.0, 0.01, 14)
        j.record_outcome(confirmation(11, 6, fill=fill), fill, b"paper-11")
        assert j.in_flight() == [] and j.decision(11).state == "done"  # type: ignore[union-attr]
        with pytest.raises(JournalConflict):
            j.record_decision(decision(7), 15)
        with pytest.raises(JournalConflict):
            j.record_decision(decision(11), 15)
    db = sqlite3.connect(path)  # the old names still read, as views
    assert db.execute("SELECT COUNT(*) FROM fills").fetchone()[0] == 5
    assert [r[0] for r in db.execute("SELECT seq FROM confirmations ORDER BY seq")] == [1, 2, 3, 4, 5, 6]
    assert db.execute("SELECT state FROM decisions WHERE decision_id = 11").fetchone()[0] == "done"
    db.close()


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ("UPDATE fills SET qty = 0.2 WHERE decision_id = 7", "the fill of decision 7 differs from its confirmation"),
        ("UPDATE fills SET venue_ref_full = x'00' WHERE decision_id = 8",
         "the fill of decision 8 differs from its confirmation"),
        ("DELETE FROM confirmations WHERE decision_id = 8", "the fill of decision 8 has no confirmation"),
        ("DELETE FROM confirmations WHERE decision_id = 9", "decision 9 is done without a confirmation"),
        ("UPDATE confirmations SET intent = 2 WHERE decision_id = 9",
         "the confirmation of decision 9 names another instrument or intent"),
        ("DELETE FROM decisions WHERE decision_id = 9", "the confirmation of decision 9 has no decision"),
    ],
)
def test_a_schema_6_journal_that_would_lose_a_row_is_refused_and_left_as_it_was(
    tmp_path: Path, change: str, refusal: str,
) -> None:  # fmt: skip
    """Rows the one-row ``outcomes`` could not hold whole (a fill that is not its confirmation's, a
    fill or a done decision without a confirmation, a confirmation without its decision) are never
    dropped: the upgrade is refused with the decision's id, and the file stays schema 6, unchanged."""
    path = tmp_path / "executor.sqlite"
    write_history(path)
    downgrade_to_6(path)
    db = sqlite3.connect(path)
    with db:
        db.execute(change)
    dump = list(db.iterdump())
    db.close()
    with pytest.raises(JournalMismatch, match=f"cannot upgrade the journal from schema 6 to 7: {refusal}"):
        Journal(path, starting_cash=1000.0, venue="paper")
    db = sqlite3.connect(path)
    assert list(db.iterdump()) == dump and schema_version(path) == 6
    db.close()


@pytest.mark.parametrize("old", [3, 4, 5])
def test_an_older_journal_is_migrated_in_place_and_keeps_its_history(tmp_path: Path, old: int) -> None:
    """An executor journal written before reconciliation (schema 3), before the Solana venue (schema 4)
    or before the exit legs (schema 5, no ``take_profits`` table) opens: the missing columns
    (``confirmations.reconciled``, ``fills.fee_native``) and tables (``reconciliations``, ``swaps``)
    are added, every old confirmation reads back unreconciled, old fills with no native fee, the
    next reserved action id starts the reserved space, and it ends as schema 7."""
    path = tmp_path / "executor.sqlite"
    with Journal(path, starting_cash=1000.0, venue="paper") as j:
        j.record_decision(decision(7), 1)
        fill = Fill(7, INST, Side.BUY, 0.1, 100.0, 0.01, 5)
        conf = confirmation(7, 1, fill=fill, ref=b"paper-7")
        j.record_outcome(conf, fill, b"paper-7")
    downgrade_to_6(path)
    db = sqlite3.connect(path)
    with db:  # back to the old schema, as an executor before issue #16 (#15, #14) wrote it
        db.execute("DROP TABLE take_profits")
        if old <= 4:
            db.execute("ALTER TABLE fills DROP COLUMN fee_native")
            db.execute("DROP TABLE swaps")
        if old == 3:
            db.execute("ALTER TABLE confirmations DROP COLUMN reconciled")
            db.execute("DROP TABLE reconciliations")
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (old,))
    db.close()
    check_journal(path, venue="paper", starting_cash=1000.0)  # an older journal passes the pre-check
    with Journal(path, starting_cash=1000.0, venue="paper") as again:
        assert again.confirmation_for(7) == conf and not again.confirmation_for(7).reconciled  # type: ignore[union-attr]
        assert list(again.fills()) == [Fill(7, INST, Side.BUY, 0.1, 100.0, 0.01, 5, 0)]
        assert again.next_action_id() == RECONCILE_ID_BASE + 1 and again.reconciliations() == []
        assert again.swaps("any") == []
    assert schema_version(path) == 7
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM take_profits").fetchone()[0] == 0  # the table came with the migration
    db.close()


def test_schema_6_rows_written_by_hand_map_column_by_column(tmp_path: Path) -> None:
    """Rows put into schema 6's tables by name, with a distinct value in every column (not made
    through today's views), read back field for field after the upgrade: a column mapped to
    another would show here. The decision is a CLOSE/SELL whose partial fill is reported BUY-side
    by its confirmation (sides may differ), with a cut venue reference and a native fee; a second
    decision is in flight."""
    path = tmp_path / "executor.sqlite"
    Journal(path, starting_cash=1000.0, venue="paper").close()
    downgrade_to_6(path)
    db = sqlite3.connect(path)
    with db:
        decision_cols = ("decision_id, instrument_kind, instrument, side, intent, reason, quantity, reference_price,"
                         " max_slippage_bps, created_at_ns, expires_at_ns, market_ts_ns, stop_price, received_at_ns,"
                         " state")  # fmt: skip
        db.execute(f"INSERT INTO decisions ({decision_cols}) VALUES"
                   " (21, 0, x'4254432d50455250', 2, 2, 3, 0.5, 101.25, 25, 1000, 2000, 1500, 0.0, 1100, 'done'),"
                   " (22, 0, x'4254432d50455250', 1, 1, 1, 0.25, 99.5, 30, 3000, 4000, 3500, 98.0, 3100, 'received')")
        db.execute("INSERT INTO fills (decision_id, instrument_kind, instrument, side, qty, price, fee, executed_at_ns,"
                   " venue_ref_full, fee_native) VALUES (21, 0, x'4254432d50455250', 1, 0.375, 100.75, 0.0625, 1600,"
                   " x'7265662d32312d612d6c6f6e672d6f6e652d6f662d3234', 7)")  # fmt: skip
        db.execute("INSERT INTO confirmations (seq, decision_id, instrument_kind, instrument, side, intent, status,"
                   " reject_code, executed_qty, avg_price, fee, executed_at_ns, venue_ref, venue_ref_truncated,"
                   " venue_ref_full, slippage_over_limit, reconciled) VALUES (1, 21, 0, x'4254432d50455250', 1, 2, 2,"
                   " 4, 0.375, 100.75, 0.0625, 1600, x'7265662d32312d612d6c6f6e672d6f', 1,"
                   " x'7265662d32312d612d6c6f6e672d6f6e652d6f662d3234', 1, 0)")  # fmt: skip
    db.close()
    with Journal(path, starting_cash=1000.0, venue="paper") as j:
        done, waiting = j.decision(21), j.decision(22)
        assert done is not None and waiting is not None
        assert (done.state, done.received_at_ns, waiting.state, waiting.received_at_ns) == ("done", 1100, "received", 3100)
        assert done.decision == TradeDecision(
            decision_id=21, instrument=INST, side=Side.SELL, intent=Intent.CLOSE, reason=3, quantity=0.5,
            reference_price=101.25, max_slippage_bps=25, created_at_ns=1000, expires_at_ns=2000, market_ts_ns=1500,
        )  # fmt: skip
        assert j.in_flight() == [TradeDecision(
            decision_id=22, instrument=INST, side=Side.BUY, intent=Intent.OPEN, reason=1, quantity=0.25,
            reference_price=99.5, max_slippage_bps=30, created_at_ns=3000, expires_at_ns=4000, market_ts_ns=3500,
            stop_price=98.0,
        )]  # fmt: skip
        assert j.confirmation_for(21) == ExecutionConfirmation(
            decision_id=21, seq=1, instrument=INST, side=Side.BUY, intent=Intent.CLOSE,
            status=Status.PARTIALLY_FILLED, reject_code=RejectCode.SLIPPAGE_EXCEEDED, executed_qty=0.375,
            avg_price=100.75, fee=0.0625, executed_at_ns=1600, venue_ref=b"ref-21-a-long-o", venue_ref_truncated=True,
            slippage_over_limit=True,
        )  # fmt: skip
        assert list(j.fills()) == [Fill(21, INST, Side.BUY, 0.375, 100.75, 0.0625, 1600, 7)]
        assert j.next_seq() == 2
    db = sqlite3.connect(path)
    assert db.execute("SELECT venue_ref_full FROM fills").fetchone()[0] == b"ref-21-a-long-one-of-24"
    db.close()
