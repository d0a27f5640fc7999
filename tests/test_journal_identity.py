"""A wiped or foreign journal is refused, never silently started over; ``--fresh-journal`` sets the
old one aside (renamed, never deleted); an executor journal has an identity (``journal_id``, kind,
venue) kept across reopens."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from procs import listing, make_key, refused, start, tandem, wait_ready

from brain.journal import BrainJournal, BrainJournalError
from executor.journal import SCHEMA_VERSION, Journal, JournalEmpty, JournalMismatch, check_journal
from foundation.journalfile import set_aside


def executor_args(run: Path, key: Path, *extra: str) -> list[str]:
    return ["executor", f"--run-dir={run}", f"--bus-secret-file={key}", "--decision-addr=127.0.0.1:0",
            "--confirm-addr=127.0.0.1:9", "--metrics-port=-1", "--bars=200", *extra]  # fmt: skip


def brain_args(run: Path, key: Path, *extra: str) -> list[str]:
    return ["brain", f"--run-dir={run}", f"--bus-secret-file={key}", "--confirm-addr=127.0.0.1:0",
            "--decision-addr=127.0.0.1:9", "--metrics-port=-1", "--bars=200", *extra]  # fmt: skip


def serve_once(args: list[str], cwd: Path, event: str) -> None:
    """Start a process, wait for its ready line, stop it with SIGTERM."""
    proc = start(*args, cwd=cwd)
    try:
        wait_ready(proc, event)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize(("role", "journal"), [("executor", "executor.sqlite"), ("brain", "brain.sqlite")])
def test_zero_byte_journal_refused_then_set_aside_with_fresh_journal(tmp_path: Path, role: str, journal: str) -> None:
    """A 0-byte journal: exit 2 naming the file, nothing written; with --fresh-journal it is renamed aside and a new one starts."""
    key, run = make_key(tmp_path), tmp_path / "run"
    run.mkdir()
    (run / journal).write_bytes(b"")
    args = (executor_args if role == "executor" else brain_args)(run, key)
    before = listing(run)
    line = refused(tandem(*args, cwd=tmp_path), role)
    assert line.startswith(f"{run / journal}: the {role} journal is empty (0 bytes)") and "--fresh-journal" in line, line
    assert listing(run) == before, "the refused process wrote into the run dir"
    serve_once([*args, "--fresh-journal"], tmp_path, f"{role}_ready")
    [backup] = run.glob(f"{journal}.*.bak")
    assert backup.stat().st_size == 0 and backup.name[len(journal) + 1:-4].endswith("Z")
    assert (run / journal).stat().st_size > 0


def test_paper_refuses_a_run_dir_with_a_wiped_journal(tmp_path: Path) -> None:
    """tandem paper --run-dir with a 0-byte executor journal: exit 2 naming it, before bus.key or a log is written."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "executor.sqlite").write_bytes(b"")
    proc = tandem("paper", f"--run-dir={run}", "--bars=200", "--metrics-port=-1", "--executor-metrics-port=-1",
                  "--decision-addr=127.0.0.1:0", "--confirm-addr=127.0.0.1:0", cwd=tmp_path)  # fmt: skip
    assert refused(proc, "paper").startswith(f"{run / 'executor.sqlite'}: the executor journal is empty (0 bytes)")
    assert listing(run) == {"executor.sqlite": 0}


def test_journal_of_another_venue_is_refused(tmp_path: Path) -> None:
    """An executor journal created for the paper venue, opened for a ccxt venue: exit 2 naming both venues."""
    key, run = make_key(tmp_path), tmp_path / "run"
    serve_once(executor_args(run, key), tmp_path, "executor_ready")
    before = listing(run)
    proc = tandem(*executor_args(run, key, "--venue=ccxt", "--exchange=binance", "--sandbox", "--api-key=k",
                                 "--api-secret=s"), cwd=tmp_path)  # fmt: skip
    line = refused(proc, "executor")
    assert line == f"{run / 'executor.sqlite'}: journal was created for venue paper, opened for venue ccxt:binance:sandbox"
    assert listing(run) == before


def test_journal_id_stable_across_reopen_and_unique(tmp_path: Path) -> None:
    """journal_id is made once (1..2**64-1), read back on every reopen, and differs between two journals."""
    with Journal(tmp_path / "a.sqlite", starting_cash=1_000.0, venue="paper") as a:
        first = a.journal_id
    with Journal(tmp_path / "a.sqlite", starting_cash=1_000.0) as again:
        assert again.journal_id == first and again.venue == "paper"
    with Journal(tmp_path / "b.sqlite", starting_cash=1_000.0, venue="paper") as b:
        assert b.journal_id != first
    assert 0 < first < 2**64 and SCHEMA_VERSION == 7


def test_a_new_journal_has_small_pages_and_sparse_checkpoints_and_is_checked_through_its_wal(tmp_path: Path) -> None:
    """Issue #17's storage layout: 1 KiB pages, a checkpoint every 10,000 WAL pages. A journal left open
    (its process killed: the write-ahead log still holds committed rows) passes the read-only check,
    which reads it with its WAL and changes nothing."""
    from executor.journalschema import PAGE_SIZE, WAL_AUTOCHECKPOINT_PAGES

    path = tmp_path / "executor.sqlite"
    j = Journal(path, starting_cash=1000.0, venue="paper")
    conn = j._conn  # the open connection: what the executor writes through
    assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE == 1024
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_AUTOCHECKPOINT_PAGES == 10_000
    j.record_belief_state({"mode": "GREEN"})  # committed into the WAL; no checkpoint before 10,000 pages
    wal = Path(f"{path}-wal")
    assert wal.stat().st_size > 0
    data = (path, wal)  # the -shm beside them is SQLite's index of the WAL, which a reader updates
    before = [p.read_bytes() for p in data]
    check_journal(path, venue="paper", starting_cash=1000.0)  # while the journal is open, as after a kill
    assert [p.read_bytes() for p in data] == before
    j.close()


def test_foreign_and_partial_journals_refused(tmp_path: Path) -> None:
    """A brain journal, a SQLite file without tables, or a -wal left without its database is not an executor
    journal; an executor journal is not a brain journal. Each file is left as it was."""
    brain = tmp_path / "brain.sqlite"
    BrainJournal(brain, instrument="BTC-PERP", starting_cash=1.0).close()
    with pytest.raises(JournalMismatch, match="not a tandem-executor journal \\(a tandem-brain journal\\)"):
        Journal(brain, starting_cash=1.0)
    with Journal(tmp_path / "e.sqlite", starting_cash=1.0):
        pass
    with pytest.raises(BrainJournalError, match="not a tandem-brain journal \\(a tandem-executor journal\\)"):
        BrainJournal(tmp_path / "e.sqlite", instrument="BTC-PERP", starting_cash=1.0)
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).execute("PRAGMA user_version = 1").connection.close()  # a header, no tables
    size = empty.stat().st_size
    with pytest.raises(JournalEmpty, match="holds no tables"):
        Journal(empty, starting_cash=1.0)
    assert empty.stat().st_size == size
    orphan = tmp_path / "orphan.sqlite"
    Path(f"{orphan}-wal").write_bytes(b"x" * 32)
    with pytest.raises(JournalEmpty, match="is missing but its write-ahead log orphan.sqlite-wal is there"):
        Journal(orphan, starting_cash=1.0)
    assert not orphan.exists()


def test_check_journal_reads_without_writing(tmp_path: Path) -> None:
    """check_journal (what tandem paper asks) refuses what Journal refuses and leaves no -wal/-shm behind."""
    path = tmp_path / "executor.sqlite"
    Journal(path, starting_cash=5.0, venue="paper").close()
    assert sorted(os.listdir(tmp_path)) == ["executor.sqlite"], "creation left a temporary file"
    check_journal(path, venue="paper", starting_cash=5.0)
    with pytest.raises(JournalMismatch, match="opened for venue binance-emulator:binanceusdm"):
        check_journal(path, venue="binance-emulator:binanceusdm")
    with pytest.raises(JournalMismatch, match=r"starting_cash=5\.0, opened with 6\.0"):
        check_journal(path, starting_cash=6.0)
    check_journal(tmp_path / "missing.sqlite")
    assert sorted(os.listdir(tmp_path)) == ["executor.sqlite"]


def test_set_aside_renames_the_journal_with_its_wal(tmp_path: Path) -> None:
    """set_aside moves the database, -wal and -shm to <name>.<UTC>.bak(-wal, -shm), a second time to .1.bak."""
    from datetime import UTC, datetime

    path = tmp_path / "executor.sqlite"
    now = datetime(2026, 12, 5, 7, 40, tzinfo=UTC)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").write_text(suffix or "db")
    backup = set_aside(path, now)
    assert backup == tmp_path / "executor.sqlite.20261205T074000Z.bak"
    assert sorted(os.listdir(tmp_path)) == [f"executor.sqlite.20261205T074000Z.bak{s}" for s in ("", "-shm", "-wal")]
    path.write_text("db2")
    assert set_aside(path, now) == tmp_path / "executor.sqlite.20261205T074000Z.1.bak"
    assert set_aside(path, now) is None
