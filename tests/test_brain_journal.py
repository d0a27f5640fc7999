"""Both journals keep a decision's ``stop_price`` (protocol v2) and refuse a journal of an old schema."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest
from factories import BTC, T0

from brain.journal import SCHEMA_VERSION as BRAIN_SCHEMA
from brain.journal import BrainJournal, BrainJournalError, check_journal
from executor.journal import SCHEMA_VERSION as EXECUTOR_SCHEMA
from executor.journal import Journal, JournalMismatch
from protocol import Codec, DecisionReason, Intent, Side, TradeDecision, derive_key

S = 1_000_000_000


def _protect() -> TradeDecision:
    return TradeDecision(
        decision_id=7, instrument=BTC, side=Side.SELL, intent=Intent.PROTECT,
        reason=DecisionReason.TRAILING_TAKE_PROFIT, quantity=0.25, reference_price=41_000.0, max_slippage_bps=50,
        created_at_ns=T0, expires_at_ns=T0 + 10 * S, market_ts_ns=T0, stop_price=38_950.5,
    )  # fmt: skip


def test_brain_journal_keeps_stop_price(tmp_path: Path) -> None:
    """A PROTECT journaled by the brain comes back from history() equal, stop_price included."""
    d = _protect()
    data = Codec(derive_key(b"k")).encode(d)
    journal = BrainJournal(tmp_path / "brain.sqlite", instrument="BTC-PERP", starting_cash=10_000.0)
    journal.record_decision(d, 3, data)
    journal.close()
    reopened = BrainJournal(tmp_path / "brain.sqlite", instrument="BTC-PERP", starting_cash=10_000.0)
    [j] = reopened.history().values()
    assert j.decision == d and j.decision.stop_price == 38_950.5 and j.datagram == data
    reopened.close()


@pytest.mark.parametrize("old", ["1", "2", "3", "4"])
def test_brain_journal_of_an_old_schema_is_refused(tmp_path: Path, old: str) -> None:
    """A brain journal written with an older schema (1: no stop_price; 2: protocol v3 datagrams, no
    reconciled confirmations; 3: protocol v4 datagrams; 4: protocol v5 datagrams) is refused, naming the schema: its journaled
    datagrams are of an old
    protocol version, so it cannot be resumed."""
    path = tmp_path / "brain.sqlite"
    BrainJournal(path, instrument="BTC-PERP", starting_cash=10_000.0).close()
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (old,))
    db.close()  # the last connection closed: the WAL is checkpointed into the file
    assert BRAIN_SCHEMA == 5
    before = path.read_bytes()
    with pytest.raises(BrainJournalError, match=f"journal schema {old} was written by another tandem version") as err:
        BrainJournal(path, instrument="BTC-PERP", starting_cash=10_000.0)
    assert "--fresh-journal" in str(err.value) and "adopts any position" in str(err.value)
    with pytest.raises(BrainJournalError, match=f"journal schema {old}"):
        check_journal(path, instrument="BTC-PERP", starting_cash=10_000.0)
    assert path.read_bytes() == before  # refused without a table created or a row written


def test_reconciled_confirmations_are_journaled_and_folded_back_in_seq_order(tmp_path: Path) -> None:
    """A reconciled confirmation (a reserved decision id >= 2**63, no decision of ours) is kept beside
    the decisions' confirmations and comes back from confirmations() in seq order, equal."""
    from protocol import RECONCILE_ID_BASE, ExecutionConfirmation, Instrument, Intent, RejectCode, Side, Status

    path = tmp_path / "brain.sqlite"
    journal = BrainJournal(path, instrument="BTC-PERP", starting_cash=10_000.0)
    adopted = ExecutionConfirmation(decision_id=RECONCILE_ID_BASE + 1, seq=1, instrument=Instrument.symbol("BTC-PERP"),
                                    side=Side.BUY, intent=Intent.OPEN, status=Status.FILLED, reject_code=RejectCode.NONE,
                                    executed_qty=0.5, avg_price=100.0, fee=0.0, executed_at_ns=7, reconciled=True)  # fmt: skip
    journal.record_confirmation(adopted, 11)
    journal.close()
    again = BrainJournal(path, instrument="BTC-PERP", starting_cash=10_000.0)
    try:
        assert list(again.confirmations()) == [adopted]
        assert again.last_applied_seq() == 1 and again.last_applied_received_at() == 11
    finally:
        again.close()


def test_executor_journal_keeps_stop_price(tmp_path: Path) -> None:
    """The executor journal stores a decision's stop_price and returns it (decision and in-flight)."""
    d = _protect()
    with Journal(tmp_path / "executor.sqlite", starting_cash=10_000.0) as journal:
        journal.record_decision(d, T0 + S)
    with Journal(tmp_path / "executor.sqlite", starting_cash=10_000.0) as journal:
        j = journal.decision(7)
        assert j is not None and j.decision == d and j.decision.stop_price == 38_950.5
        assert journal.in_flight() == [d]


def test_executor_journal_of_the_old_schema_is_refused(tmp_path: Path) -> None:
    """An executor journal written with schema version 1 is refused with JournalMismatch."""
    path = tmp_path / "executor.sqlite"
    with sqlite3.connect(path) as db:  # what a v1 executor left behind: meta only is enough
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value)")
        db.execute("INSERT INTO meta VALUES ('schema_version', 1), ('starting_cash', 10000.0)")
    assert EXECUTOR_SCHEMA == 7
    with pytest.raises(JournalMismatch, match="schema_version=1"):
        Journal(path, starting_cash=10_000.0)


def test_stop_filled_on_the_venue_reads_stop_loss_in_trades_csv(tmp_path: Path) -> None:
    """Entry and a PROTECT whose stop filled, journaled and folded back from the journal: trades.csv
    says STOP_LOSS for that exit, though the PROTECT was sent for the trailing stop."""
    from factories import filled

    from brain.exits import ExitRules
    from brain.report import write_trade_log
    from brain.tracker import PositionTracker

    codec = Codec(derive_key(b"k"))
    entry = TradeDecision(
        decision_id=6, instrument=BTC, side=Side.BUY, intent=Intent.OPEN, reason=DecisionReason.SIGNAL,
        quantity=0.25, reference_price=36_000.0, max_slippage_bps=50, created_at_ns=T0 - S,
        expires_at_ns=T0 + 9 * S, market_ts_ns=T0 - S, stop_price=33_120.0,
    )  # fmt: skip
    journal = BrainJournal(tmp_path / "brain.sqlite", instrument="BTC-PERP", starting_cash=10_000.0)
    for n, d in enumerate((entry, _protect())):
        journal.record_decision(d, n, codec.encode(d))
    journal.record_confirmation(filled(6, Side.BUY, 0.25, 36_000.0, T0, seq=1), T0)
    journal.record_confirmation(filled(7, Side.SELL, 0.25, 38_900.0, T0 + S, seq=2, intent=Intent.PROTECT), T0 + S)
    tracker = PositionTracker(10_000.0, ExitRules())
    history = journal.history()
    for conf in journal.confirmations():
        d = history[conf.decision_id].decision
        tracker.apply(conf, d.reason, decision=d)
    journal.close()
    write_trade_log(tmp_path / "trades.csv", tracker.closed_trades)
    [row] = csv.DictReader((tmp_path / "trades.csv").read_text().splitlines())
    assert (row["entry_decision_id"], row["exit_decision_id"], row["exit_reason"]) == ("6", "7", "STOP_LOSS")
    # a stop's fill is measured against the stop level its PROTECT set
    assert float(row["exit_reference_price"]) == _protect().stop_price
