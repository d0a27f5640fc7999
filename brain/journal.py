"""The brain's SQLite journal (WAL): its outbox of decisions and the confirmations it applied.

A decision is written before it is sent; a confirmation is written when it is applied. The
tracker can therefore be rebuilt by folding the stored confirmations (DESIGN.md invariants 1
and 7), and a restarted brain can match the decisions it re-derives with the ones it sent.

``synchronous=NORMAL`` in WAL mode survives a process crash; only an OS crash or power loss can
drop the last commits (https://www.sqlite.org/pragma.html#pragma_synchronous).

A new journal is created whole, with ``meta`` rows ``kind`` = ``tandem-brain``, ``schema``,
``instrument`` and ``starting_cash`` (:func:`foundation.journalfile.create`). An existing file is
checked before anything is written to it: an empty one (0 bytes or no tables: wiped) is refused
rather than silently started over, as is one that is not a brain journal (``--fresh-journal``
sets it aside first, :func:`foundation.journalfile.set_aside`).

Errors: :class:`BrainJournalError` (an empty file, a file that is not a usable SQLite database or
not a brain journal, or one made for another schema, instrument or starting cash), with the path
in the message. A write that keeps failing — locked too long, disk full, an I/O error — is retried
a bounded number of times and then raises :class:`~foundation.journalfile.JournalWriteFailed`: the
brain stops (exit code 3) rather than go on with state it could not journal.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from foundation import journalfile
from protocol import (
    DecisionReason,
    ExecutionConfirmation,
    Instrument,
    RejectCode,
    Status,
    TradeDecision,
)

__all__ = ["JOURNAL_KIND", "BrainJournal", "BrainJournalError", "JournaledDecision", "check_journal"]

SCHEMA_VERSION = 5  # 2: decisions.stop_price (protocol v2); 3: reconciled confirmations (protocol v4); 4: protocol v5 datagrams; 5: protocol v6 (shorts)
JOURNAL_KIND = "tandem-brain"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id INTEGER PRIMARY KEY, instrument BLOB NOT NULL, instrument_kind INTEGER NOT NULL,
    side INTEGER NOT NULL, intent INTEGER NOT NULL, reason INTEGER NOT NULL,
    quantity REAL NOT NULL, reference_price REAL NOT NULL, max_slippage_bps INTEGER NOT NULL,
    created_at_ns INTEGER NOT NULL, expires_at_ns INTEGER NOT NULL, market_ts_ns INTEGER NOT NULL,
    bar_index INTEGER NOT NULL, datagram BLOB NOT NULL, stop_price REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS resolutions (
    decision_id INTEGER PRIMARY KEY, kind TEXT NOT NULL, resolved_at_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS confirmations (
    decision_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, status INTEGER NOT NULL,
    reject_code INTEGER NOT NULL, executed_qty REAL NOT NULL, avg_price REAL NOT NULL,
    fee REAL NOT NULL, executed_at_ns INTEGER NOT NULL, venue_ref BLOB NOT NULL,
    venue_ref_truncated INTEGER NOT NULL, received_at_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reconciled (
    seq INTEGER PRIMARY KEY, decision_id INTEGER NOT NULL UNIQUE, instrument_kind INTEGER NOT NULL,
    instrument BLOB NOT NULL, side INTEGER NOT NULL, intent INTEGER NOT NULL, executed_qty REAL NOT NULL,
    avg_price REAL NOT NULL, fee REAL NOT NULL, executed_at_ns INTEGER NOT NULL, received_at_ns INTEGER NOT NULL
);
"""

_INSERT_DECISION = "INSERT INTO decisions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
_INSERT_CONFIRMATION = "INSERT OR IGNORE INTO confirmations VALUES (?,?,?,?,?,?,?,?,?,?,?)"
_INSERT_RECONCILED = "INSERT OR IGNORE INTO reconciled VALUES (?,?,?,?,?,?,?,?,?,?,?)"
_I64_WRAP = 1 << 64  # a reconciled decision id (>= 2**63, protocol v4) stored as SQLite's signed INTEGER


@dataclass(frozen=True, slots=True)
class JournaledDecision:
    """A decision as the journal holds it: what was sent, on which bar, and how it ended."""

    decision: TradeDecision
    bar_index: int
    datagram: bytes
    confirmation: ExecutionConfirmation | None
    resolution: str | None


def _refuse_wiped(path: Path) -> None:
    problem = journalfile.wiped(path)
    if problem is not None:
        raise BrainJournalError(f"{path}: the brain journal {problem}; refusing to start a new journal over it "
                                f"({journalfile.FRESH_HINT})")  # fmt: skip


def _identity(path: Path, conn: sqlite3.Connection) -> dict[str, str]:
    """The ``meta`` rows of a brain journal; refuses a database without tables or that is not one."""
    tables = journalfile.table_names(conn)
    if not tables:
        raise BrainJournalError(f"{path}: the brain journal holds no tables: wiped or never written; refusing "
                                f"to start a new journal over it ({journalfile.FRESH_HINT})")  # fmt: skip
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
    kind = meta.get("kind", JOURNAL_KIND if "schema" in meta else None)  # journals before 'kind' have 'schema'
    if kind != JOURNAL_KIND:
        what = f"a {kind} journal" if kind else "no schema in its meta table"
        raise BrainJournalError(f"{path}: not a {JOURNAL_KIND} journal ({what})")
    return meta


def check_journal(path: Path, *, instrument: str, starting_cash: float) -> None:
    """Check an existing brain journal as :class:`BrainJournal` would open it, writing nothing
    (read only; see :func:`foundation.journalfile.connect_readonly`). A missing
    file passes.

    Raises:
        BrainJournalError: empty, not a brain journal, or another schema, instrument or starting cash.
    """
    _refuse_wiped(path)
    if not path.exists():
        return
    try:
        conn = journalfile.connect_readonly(path)
        try:
            meta = _identity(path, conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BrainJournalError(f"{path}: not a usable brain journal: {exc}") from None
    expected = {"schema": str(SCHEMA_VERSION), "instrument": instrument, "starting_cash": repr(starting_cash)}
    for key, value in expected.items():
        if key in meta and meta[key] != value:
            raise BrainJournalError(_mismatch(path, key, meta[key], value))


def _mismatch(path: Path, key: str, stored: str, wanted: str) -> str:
    """The refusal of a journal whose ``key`` meta row is ``stored`` where the settings say ``wanted``."""
    if key == "schema":
        # A brain journal is not migrated: its outbox holds datagrams encoded in the older protocol.
        return (f"{path}: journal schema {stored} was written by another tandem version (this one reads and "
                f"writes schema {wanted}); start both processes with --fresh-journal: the executor adopts any "
                f"position open on the venue at start and confirms it to the brain (README: Reconciliation)")  # fmt: skip
    return f"{path}: journal has {key}={stored}, settings say {wanted}"


def _init(conn: sqlite3.Connection, meta: dict[str, str]) -> None:
    """A new journal's tables and identity, in the creating transaction."""
    for stmt in _SCHEMA.split(";"):
        if stmt.strip():
            conn.execute(stmt)
    conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())


class BrainJournalError(RuntimeError):
    """The journal file cannot be used; the message names the path."""


class BrainJournal:
    """Outbox and applied confirmations of one brain, in one SQLite file."""

    def __init__(self, path: Path, *, instrument: str, starting_cash: float, synchronous: str = "NORMAL") -> None:
        """Open (or create, whole) the journal at ``path``.

        Raises:
            BrainJournalError: see the module docstring; nothing was written to the file.
        """
        self.path = path
        expected = {"schema": str(SCHEMA_VERSION), "instrument": instrument, "starting_cash": repr(starting_cash)}
        _refuse_wiped(Path(path))
        try:
            if not Path(path).exists():
                journalfile.create(Path(path), lambda conn: _init(conn, {"kind": JOURNAL_KIND, **expected}))
            self._db = sqlite3.connect(path, isolation_level=None, timeout=journalfile.BUSY_TIMEOUT_S)
        except sqlite3.DatabaseError as exc:
            raise BrainJournalError(f"{path}: not a usable brain journal: {exc}") from None
        try:
            self._check_identity()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous.upper() == 'FULL' else 'NORMAL'}")
            self._check_meta(expected)  # before any table is created in a journal that is refused
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise BrainJournalError(f"{path}: not a usable brain journal: {exc}") from None
        except BaseException:
            self._db.close()
            raise

    def _check_identity(self) -> None:
        """Refuse a database without tables (wiped) or that is not a brain journal, before
        anything is written to it."""
        _identity(self.path, self._db)

    def _check_meta(self, expected: dict[str, str]) -> None:
        """Each ``expected`` meta row equals the stored one (stored when missing)."""
        stored = dict(self._db.execute("SELECT key, value FROM meta"))
        for key, value in expected.items():
            if key not in stored:
                self._db.execute("INSERT INTO meta VALUES (?, ?)", (key, value))
            elif stored[key] != value:
                raise BrainJournalError(_mismatch(self.path, key, stored[key], value))

    def _write(self, what: str, sql: str, params: tuple[object, ...]) -> None:
        """One statement, committed (autocommit), with :func:`~foundation.journalfile.write_retrying`.

        Raises:
            JournalWriteFailed: it kept failing; nothing was written.
        """
        journalfile.write_retrying(self._db, lambda: self._db.execute(sql, params), path=self.path, what=what)

    def record_decision(self, d: TradeDecision, bar_index: int, datagram: bytes) -> None:
        """Journal a decision (and the exact bytes that will be sent) before sending it.

        Raises:
            JournalWriteFailed: see :meth:`_write`.
        """
        self._write(f"decision {d.decision_id}", _INSERT_DECISION, (
            d.decision_id, d.instrument.value, d.instrument.kind, d.side, d.intent, d.reason, d.quantity,
            d.reference_price, d.max_slippage_bps, d.created_at_ns, d.expires_at_ns, d.market_ts_ns,
            bar_index, datagram, d.stop_price,
        ))  # fmt: skip

    def record_restamp(self, d: TradeDecision, datagram: bytes) -> None:
        """Replace a journaled decision's stamps and bytes with its re-stamped twin (same id, same
        content; SPEC.md §10.1), before the new bytes are sent.

        Raises:
            JournalWriteFailed: see :meth:`_write`.
        """
        self._write(f"re-stamped decision {d.decision_id}",
                    "UPDATE decisions SET created_at_ns = ?, expires_at_ns = ?, datagram = ? WHERE decision_id = ?",
                    (d.created_at_ns, d.expires_at_ns, datagram, d.decision_id))  # fmt: skip

    def record_confirmation(self, c: ExecutionConfirmation, received_at_ns: int) -> None:
        """Journal an applied confirmation (a duplicate decision_id is ignored).

        Raises:
            JournalWriteFailed: see :meth:`_write`.
        """
        if c.reconciled:  # the executor's correction (protocol v4): no decision of ours to join with
            self._write(f"reconciled confirmation seq {c.seq}", _INSERT_RECONCILED, (
                c.seq, c.decision_id - _I64_WRAP, c.instrument.kind, c.instrument.value, c.side, c.intent,
                c.executed_qty, c.avg_price, c.fee, c.executed_at_ns, received_at_ns,
            ))  # fmt: skip
            return
        self._write(f"confirmation seq {c.seq}", _INSERT_CONFIRMATION, (
            c.decision_id, c.seq, c.status, c.reject_code, c.executed_qty, c.avg_price, c.fee,
            c.executed_at_ns, c.venue_ref, int(c.venue_ref_truncated), received_at_ns,
        ))  # fmt: skip

    def record_resolution(self, decision_id: int, kind: str, at_ns: int) -> None:
        """Journal that an unconfirmed decision was resolved locally (``kind``, e.g. expired).

        Raises:
            JournalWriteFailed: see :meth:`_write`.
        """
        self._write(f"resolution of decision {decision_id}", "INSERT OR IGNORE INTO resolutions VALUES (?, ?, ?)",
                    (decision_id, kind, at_ns))  # fmt: skip

    def last_applied_seq(self) -> int:
        """Highest confirmation seq applied (0 if none), reconciled ones included."""
        return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM (SELECT seq FROM confirmations"
                                    " UNION ALL SELECT seq FROM reconciled)").fetchone()[0])  # fmt: skip

    def history(self) -> dict[int, JournaledDecision]:
        """Every journaled decision with its datagram, bar index, confirmation and resolution."""
        confs = {c.decision_id: c for c in self.confirmations()}
        resolved = dict(self._db.execute("SELECT decision_id, kind FROM resolutions"))
        out = {}
        rows = self._db.execute(
            "SELECT decision_id, instrument_kind, instrument, side, intent, reason, quantity, reference_price,"
            " max_slippage_bps, created_at_ns, expires_at_ns, market_ts_ns, bar_index, datagram, stop_price"
            " FROM decisions"
        )
        for (did, kind, inst, side, intent, reason, qty, price, slip, created, expires, market, bar, data,
             stop) in rows:  # fmt: skip
            d = TradeDecision.from_columns((did, Instrument(kind, inst), side, intent, reason, qty, price, slip,
                                            created, expires, market, stop))  # fmt: skip
            out[did] = JournaledDecision(d, bar, bytes(data), confs.get(did), resolved.get(did))
        return out

    def datagram(self, decision_id: int) -> bytes | None:
        """The exact bytes sent for ``decision_id`` (for identical retransmission), if journaled."""
        row = self._db.execute("SELECT datagram FROM decisions WHERE decision_id = ?", (decision_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def decision_reasons(self) -> dict[int, DecisionReason]:
        return {i: DecisionReason(r) for i, r in self._db.execute("SELECT decision_id, reason FROM decisions")}

    def confirmations(self) -> Iterator[ExecutionConfirmation]:
        """Applied confirmations in application order (seq): those of our decisions, joined with
        them, and the executor's reconciled ones (protocol v4)."""
        rows = self._db.execute(
            "SELECT c.decision_id, c.seq, d.instrument_kind, d.instrument, d.side, d.intent, c.status,"
            " c.reject_code, c.executed_qty, c.avg_price, c.fee, c.executed_at_ns, c.venue_ref,"
            " c.venue_ref_truncated, 0 FROM confirmations c JOIN decisions d USING (decision_id)"
            " UNION ALL SELECT r.decision_id, r.seq, r.instrument_kind, r.instrument, r.side, r.intent, ?, ?,"
            " r.executed_qty, r.avg_price, r.fee, r.executed_at_ns, X'', 0, 1 FROM reconciled r ORDER BY 2",
            (int(Status.FILLED), int(RejectCode.NONE)),
        )  # fmt: skip
        for (did, seq, kind, inst, side, intent, status, code, qty, price, fee, at, ref, trunc, rec) in rows:
            if rec:
                did += _I64_WRAP  # stored as a signed 64-bit INTEGER
            yield ExecutionConfirmation.from_columns((did, seq, Instrument(kind, inst), side, intent, status, code,
                                                      qty, price, fee, at, bytes(ref), trunc, 0, rec))  # fmt: skip

    def last_applied_received_at(self) -> int:
        """When (Unix ns, brain clock) the highest-seq applied confirmation was received; 0 if none."""
        row = self._db.execute("SELECT received_at_ns FROM (SELECT seq, received_at_ns FROM confirmations UNION ALL"
                               " SELECT seq, received_at_ns FROM reconciled) ORDER BY seq DESC LIMIT 1").fetchone()  # fmt: skip
        return 0 if row is None else int(row[0])

    def executor_journal_id(self) -> int:
        """The identity of the executor journal that confirmed this brain's history (SPEC.md §10.6),
        or 0 before the executor was first heard."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'executor_journal_id'").fetchone()
        return 0 if row is None else int(row[0])

    def record_executor_journal_id(self, journal_id: int) -> None:
        """Remember the executor journal's identity the first time it is heard (kept for good)."""
        self._write("the executor journal's id", "INSERT OR IGNORE INTO meta VALUES ('executor_journal_id', ?)",
                    (str(journal_id),))  # fmt: skip

    def feed_start_ms(self) -> int | None:
        """Open time (Unix ms) of the first bar a live feed handed this brain, or ``None`` (a replay's
        journal, or none yet): a restarted live brain loads its history from there, so it
        re-derives its journaled decisions from the same first bar."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'feed_start_ms'").fetchone()
        return None if row is None else int(row[0])

    def record_feed_start(self, ts_ms: int) -> None:
        """Remember the first bar of a live feed (kept for good: the first call wins).

        Raises:
            JournalWriteFailed: see :meth:`_write`.
        """
        self._write("the live feed's first bar", "INSERT OR IGNORE INTO meta VALUES ('feed_start_ms', ?)",
                    (str(ts_ms),))  # fmt: skip

    def close(self) -> None:
        self._db.close()
