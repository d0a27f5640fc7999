"""The executor's journal: decisions, fills and confirmations in SQLite (WAL), written before acting.

DESIGN.md invariants 2 and 7: a decision is committed (table ``received``, state ``received``)
before the executor acts on it; its outcome — confirmation and fill — is committed in one
transaction that moves it into ``outcomes`` (state ``done``): one row holds the decision, its
confirmation and its fill (schema 7, :mod:`executor.journalschema`). A decision found in
``received`` after a restart is *in flight*.

Durability: the database runs in WAL mode with ``synchronous=NORMAL`` by default. In WAL mode
NORMAL never loses a committed transaction on an application crash (kill -9), but the last
transactions may roll back after a power loss or OS crash; ``synchronous="FULL"`` makes every
commit durable at the cost of an fsync per commit. Source: SQLite docs,
https://www.sqlite.org/pragma.html#pragma_synchronous ("A transaction committed in WAL mode with
synchronous=NORMAL might roll back following a power loss or system crash. Transactions are durable
across application crashes regardless of the synchronous setting or journal mode.")

Storage: enums as their integer values; floats as REAL (IEEE double, exact round trip); u64 fields
(ids, ns times) as SQLite's signed 64-bit INTEGER in two's complement, so values >= 2**63 (e.g. a
"never" ``expires_at_ns``) survive; ordering by decision id is therefore done in Python.
``sent_at_ns`` is not stored: the sender stamps it at each transmission. An instrument is two
columns, ``instrument_kind`` and ``instrument`` (its raw bytes).

Identity: a journal is created whole (:func:`foundation.journalfile.create`) with ``meta`` rows
``kind`` = ``tandem-executor``, ``schema_version``, a random ``journal_id`` (u64, never 0; the
executor's heartbeats carry it so the brain notices a replaced journal), ``starting_cash`` and the
``venue`` it trades on (``paper``, ``binance-emulator:binanceusdm``, ``ccxt:binance:sandbox``...).
An existing file is checked before it is changed: an empty one (0 bytes, no tables: wiped), one
that is not a tandem executor journal, or one of another schema, starting cash or venue is
refused; nothing is ever created over it (``--fresh-journal`` sets it aside first,
:func:`foundation.journalfile.set_aside`).

Errors (every ``sqlite3`` error is translated once, in :func:`_translated`; messages start with
the journal's path)::

    JournalError                 base
    ├── JournalCorrupt           not a SQLite database, or a damaged one
    │   └── JournalEmpty         an existing file that is empty: wiped or truncated
    ├── JournalMismatch          not an executor journal, or schema version, starting cash or
    │                            venue differs from the stored one
    └── JournalConflict          an illegal write: a duplicate decision or outcome, an outcome for
                                 a decision not in flight, or a confirmation seq out of order

A write that keeps failing for an operational reason — the file locked beyond the busy timeout,
disk full, an I/O error — is retried a bounded number of times and then raises
:class:`~foundation.journalfile.JournalWriteFailed` (a :class:`~foundation.errors.StorageFault`, not a
``JournalError``): the executor stops with exit code 3 and resumes from the journal when restarted.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

from foundation import journalfile
from protocol import (
    RECONCILE_ID_BASE,
    DecisionReason,
    ExecutionConfirmation,
    Instrument,
    InstrumentKind,
    Side,
    TradeDecision,
)

from .journalidentity import (
    JOURNAL_KIND,
    SCHEMA_VERSION,
    JournalConflict,
    JournalCorrupt,
    JournalEmpty,
    JournalError,
    JournalMismatch,
    _refuse_wiped,
    check_journal,
    i64,
    identity,
    journal_error,
    new_journal_id,
    read_belief,
    translated,
    u64,
)
from .journalorders import OrderRecords
from .journalrows import (
    DecisionState,
    JournaledDecision,
    confirmation_row,
    decision_row,
    fill_of,
    instrument_and_intent,
    outcome_columns,
)
from .journalschema import (
    DELETE_RECEIVED,
    GET_META,
    INSERT_OUTCOME,
    INSERT_RECEIVED,
    INSERT_RECONCILIATION,
    MAX_ACTION_ID,
    MAX_DECISION_ID,
    MAX_SEQ,
    MIGRATION_REFUSALS,
    MIGRATIONS,
    PAGE_SIZE,
    PUT_META,
    SCHEMA_STATEMENTS,
    SELECT_CONFIRMATION,
    SELECT_CONFIRMATIONS_FROM,
    SELECT_DECISION,
    SELECT_FILLS,
    SELECT_IN_FLIGHT,
    SELECT_RECEIVED,
    WAL_AUTOCHECKPOINT_PAGES,
)
from .ledger import Fill
from .venue.coid import new_namespace

__all__ = [
    "JOURNAL_KIND",
    "SCHEMA_VERSION",
    "DecisionState",
    "Journal",
    "JournalConflict",
    "JournalCorrupt",
    "JournalEmpty",
    "JournalError",
    "JournalMismatch",
    "JournaledDecision",
    "check_journal",
    "new_journal_id",
    "read_belief",
]

_SYNCHRONOUS = ("NORMAL", "FULL")
_RESERVED_IDS = 1 << 63
"""Decision ids from here up are the executor's reconciled confirmations (protocol v4)."""


class Journal(OrderRecords):
    """An open journal file (created on first use, whole; see the module docstring).

    Args:
        path: the SQLite file; ``":memory:"`` is refused (no WAL, nothing survives).
        starting_cash: quote currency the ledger starts from. Stored on creation; on reopen it
            must equal the stored value. ``None`` reopens with whatever is stored.
        synchronous: ``"NORMAL"`` (default; survives a process kill) or ``"FULL"`` (also survives
            power loss); see the module docstring.
        venue: the venue's identity (``ExecutorSettings.venue_id()``). Stored on creation; on
            reopen it must equal the stored one. ``None`` checks nothing.

    Attributes:
        journal_id: this journal's identity, a random u64 in 1..2**64-1 made at creation.
        venue: the venue it was created for (``None`` if none was given).

    Raises:
        ValueError: ``synchronous`` not NORMAL or FULL.
        JournalEmpty: the file exists and is empty (0 bytes or no tables), or only its ``-wal``
            is left.
        JournalCorrupt: the file is not a SQLite database.
        JournalMismatch: not a tandem executor journal; other schema version, starting cash or
            venue; a new journal without ``starting_cash``.
        JournalError: WAL mode could not be enabled, or another SQLite failure.
    """

    __slots__ = ("_conn", "_cur", "_folded", "_group", "_group_seq", "_max_decision_id", "_next_seq", "journal_id", "path", "starting_cash", "venue")

    def __init__(
        self, path: str | Path, *, starting_cash: float | None = None, synchronous: str = "NORMAL",
        venue: str | None = None,
    ) -> None:  # fmt: skip
        sync = synchronous.upper()
        if sync not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {_SYNCHRONOUS}, got {synchronous!r}")
        self.path = str(path)
        self._group: list[tuple[str | Callable[[], str], Callable[[], None]]] | None = None  # the open group's writes (:meth:`group`)
        self._group_seq = 0  # the next seq when the open group began (restored if it fails)
        self._folded: dict[int, list[tuple[object, ...]]] = {}  # the open group's waiting decisions, by id (:meth:`record_outcome`)
        if self.path == ":memory:":
            raise JournalError(f"{self.path}: an in-memory journal keeps nothing across a restart; give a file")
        self._create_if_missing(Path(path), starting_cash, venue)
        with translated(self.path):
            self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=journalfile.BUSY_TIMEOUT_S)
            self._cur = self._conn.cursor()  # the per-decision writes' cursor: one, not one per statement
        try:
            with translated(self.path):
                self._checkidentity(venue)
                self._open(sync, starting_cash)
        except BaseException:
            self._conn.close()
            raise

    def _create_if_missing(self, path: Path, starting_cash: float | None, venue: str | None) -> None:
        """Refuse a wiped file; create a missing journal whole, identity included."""
        _refuse_wiped(path)
        if path.exists():
            return
        if starting_cash is None:
            raise JournalMismatch(f"{self.path}: new journal needs a starting_cash")
        meta: dict[str, Any] = {"kind": JOURNAL_KIND, "schema_version": SCHEMA_VERSION, "starting_cash": float(starting_cash),
                                "journal_id": i64(new_journal_id())}  # fmt: skip
        if venue is not None:
            meta["venue"] = venue

        def init(conn: sqlite3.Connection) -> None:
            for stmt in SCHEMA_STATEMENTS:
                conn.execute(stmt)
            conn.executemany(PUT_META, meta.items())

        with translated(self.path):
            journalfile.create(path, init, page_size=PAGE_SIZE)

    def _checkidentity(self, venue: str | None) -> None:
        """Refuse, before anything is written to it, a file that is not this kind of journal."""
        meta = identity(self.path, self._conn, venue)
        self.journal_id = u64(int(meta["journal_id"]))
        self.venue = meta.get("venue", venue)

    def _open(self, sync: str, starting_cash: float | None) -> None:
        conn = self._conn
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise JournalError(f"{self.path}: cannot enable WAL mode (journal_mode is {mode!r})")
        conn.execute(f"PRAGMA synchronous={sync}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")

        def open_schema() -> None:  # migrations, schema and the checks of the stored meta: one transaction
            version = conn.execute(GET_META, ("schema_version",)).fetchone()[0]
            while version in MIGRATIONS:  # one step at a time, in this one transaction
                for query, what in MIGRATION_REFUSALS.get(version, ()):
                    row = conn.execute(query).fetchone()
                    if row is not None:
                        raise JournalMismatch(f"{self.path}: cannot upgrade the journal from schema {version} to"
                                              f" {version + 1}: {what.format(u64(row[0]))}; nothing was changed")  # fmt: skip
                for stmt in MIGRATIONS[version]:
                    conn.execute(stmt)
                version += 1
            for stmt in SCHEMA_STATEMENTS:
                conn.execute(stmt)
            if self.venue is not None:
                self._check_meta("venue", self.venue)  # kept for good by a journal created without one
            cash = None if starting_cash is None else float(starting_cash)
            self.starting_cash = float(self._check_meta("starting_cash", cash))

        self._transaction(open_schema)
        self._next_seq = conn.execute(MAX_SEQ).fetchone()[0] + 1
        # the brain's own ids (below 2**63; the reserved space above is the executor's reconciled ones)
        self._max_decision_id = conn.execute(MAX_DECISION_ID).fetchone()[0]

    def _check_meta(self, key: str, value: float | None) -> float | int:
        row = self._conn.execute(GET_META, (key,)).fetchone()
        if row is None:
            if value is None:
                raise JournalMismatch(f"{self.path}: new journal needs a {key}")
            self._conn.execute(PUT_META, (key, value))
            return value
        if value is not None and row[0] != value:
            raise JournalMismatch(f"{self.path}: journal has {key}={row[0]!r}, opened with {value!r}")
        return row[0]

    def _transaction(self, body: Callable[[], None]) -> None:
        """``body`` in one transaction: committed, or rolled back and re-raised."""
        cur = self._cur
        cur.execute("BEGIN IMMEDIATE")
        try:
            body()
            cur.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:  # a failed COMMIT (disk full) leaves it open
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            raise

    def group(self) -> _Group:
        """Group commit (issue #17): every write made inside the ``with`` block waits, and all of them
        are committed in ONE transaction when the block ends — in the order they were made, all or
        nothing. For an executor whose venue lives in its own process (the paper venue), where a
        decision and its outcome may share a transaction: nothing outside the process saw either
        before the commit, and a crash before it loses both together, as if the datagrams had been
        lost (the brain sends them again). The caller answers nothing before the block has ended.

        Reads inside the block see only what was committed before it. If the block raises, nothing
        is written and the sequence of confirmations goes back to where it was.

        Raises:
            RuntimeError: a group is already open (on entering the block).
            JournalWriteFailed, JournalConflict, JournalError: the commit, as :meth:`_write`.
        """
        return _Group(self)

    def _open_group(self) -> None:
        if self._group is not None:
            raise RuntimeError("a journal group is already open")
        self._group, self._group_seq = [], self._next_seq

    def _discard_group(self) -> None:
        self._group, self._next_seq = None, self._group_seq
        self._folded.clear()

    def _commit_group(self) -> None:
        bodies, self._group = self._group, None
        self._folded.clear()
        if not bodies:
            return

        def all_bodies() -> None:
            for _, body in bodies:
                body()

        def what() -> str:  # built only for an error message
            whats = [w() if callable(w) else w for w, _ in bodies]
            listed = "; ".join(whats) if len(whats) <= 4 else f"{whats[0]}; ... {len(whats) - 2} more; {whats[-1]}"
            return f"one transaction ({listed})"

        try:
            self._write(what, all_bodies)
        except BaseException:
            self._discard_group()  # nothing was written: the seq goes back too
            raise

    def _write(self, what: str | Callable[[], str], body: Callable[[], None]) -> None:
        """``body`` in one transaction, with :func:`~foundation.journalfile.write_retrying` (inside
        :meth:`group`: kept for the group's transaction). ``what`` names the write in an error
        (a callable: built only then).

        Raises:
            JournalWriteFailed: it kept failing (locked, disk full, I/O error); nothing was written.
            JournalConflict, JournalError: as translated from SQLite (not retried).
        """
        if self._group is not None:
            self._group.append((what, body))
            return
        try:
            journalfile.write_retrying(self._conn, lambda: self._transaction(body), path=self.path, what=what)
        except sqlite3.Error as exc:
            raise journal_error(self.path, exc) from exc

    def _write_sql(self, what: str | Callable[[], str], sql: str, params: tuple[object, ...]) -> None:
        """One statement in one transaction, as :meth:`_write`."""

        def body() -> None:
            self._cur.execute(sql, params)

        self._write(what, body)

    def record_decision(self, decision: TradeDecision, received_at_ns: int) -> None:
        """Journal a received decision (in flight: table ``received``) and commit, before acting on
        it. Inside :meth:`group`, the commit comes at the group's end, and an outcome recorded in the
        same group takes the decision into its own row instead (:meth:`record_outcome`).

        Raises:
            JournalConflict: the decision id is already journaled.
        """
        d = decision
        params = (  # enums as ints: sqlite3 binds an int subclass only after looking for an adapter (~0.3 us each)
            i64(d.decision_id), int(d.instrument.kind), d.instrument.value, int(d.side), int(d.intent), int(d.reason),
            d.quantity, d.reference_price, d.max_slippage_bps, i64(d.created_at_ns),
            i64(d.expires_at_ns), i64(d.market_ts_ns), d.stop_price, i64(received_at_ns),
        )  # fmt: skip
        cur = self._cur
        if self._group is None:
            self._write(lambda: f"decision {d.decision_id}", lambda: cur.execute(INSERT_RECEIVED, params))
        else:  # its outcome may join it in the group's transaction and take it (record_outcome): then it is not written
            waiting = [params]
            self._folded[d.decision_id] = waiting

            def body() -> None:
                if waiting:
                    cur.execute(INSERT_RECEIVED, waiting[0])

            self._write(lambda: f"decision {d.decision_id}", body)
        if d.decision_id < _RESERVED_IDS:  # too high after a failed write: only slower
            self._max_decision_id = max(self._max_decision_id, d.decision_id)

    def record_outcome(self, conf: ExecutionConfirmation, fill: Fill | None, venue_ref_full: bytes, *,
                       settled_leg: str | None = None) -> None:  # fmt: skip
        """Journal a decision's outcome in ONE transaction: the decision leaves ``received`` and
        goes into ``outcomes`` with its confirmation and fill, one row.

        Args:
            conf: the confirmation; ``conf.seq`` must be :meth:`next_seq`.
            fill: the fill when something executed, else ``None``. Its side, quantity, price and fee
                are the confirmation's (the row stores them once); its time is its own.
            venue_ref_full: the whole venue reference (``conf.venue_ref`` may be cut); ``b""``
                when nothing reached the venue.
            settled_leg: the client order id of an exit leg (a stop, a take-profit) whose fill this
                outcome books: its ``protective`` or ``take_profits`` row goes in the same
                transaction, so a restart can neither lose that fill nor book it twice.

        Raises:
            JournalConflict: ``conf.seq`` is not :meth:`next_seq`; the decision is not journaled,
                already done, or of another instrument or intent than ``conf``; the fill is not
                ``conf``'s (decision id, instrument, side, quantity, price, fee).
        """
        if conf.seq != self._next_seq:
            raise JournalConflict(
                f"{self.path}: confirmation seq {conf.seq} is not the next one ({self._next_seq})"
            )
        if fill is not None and not fill_of(conf, fill):
            raise JournalConflict(f"{self.path}: the fill {fill} is not the one the confirmation of decision"
                                  f" {conf.decision_id} (seq {conf.seq}) reports")  # fmt: skip
        did = i64(conf.decision_id)
        named = (int(conf.instrument.kind), conf.instrument.value, int(conf.intent))
        outcome = outcome_columns(conf, fill, venue_ref_full)
        # the decision's insert waits in the same group: this row takes it, and it is not written
        waiting = self._folded.get(conf.decision_id) if self._group is not None else None
        if waiting is not None:
            decision = waiting[0]
            if instrument_and_intent(decision) != named:
                raise JournalConflict(f"{self.path}: the confirmation of decision {conf.decision_id} names another"
                                      " instrument or intent than the decision")  # fmt: skip
            del self._folded[conf.decision_id]
            waiting.clear()
            row = (conf.seq, *decision, *outcome)

        def body() -> None:
            cur = self._cur
            if waiting is not None:
                cur.execute(INSERT_OUTCOME, row)
            else:
                received = cur.execute(SELECT_RECEIVED, (did,)).fetchone()
                if received is None or instrument_and_intent(received) != named:
                    raise JournalConflict(f"{self.path}: decision {conf.decision_id} is not in flight, or of another"
                                          " instrument or intent")  # fmt: skip
                cur.execute(DELETE_RECEIVED, (did,))
                cur.execute(INSERT_OUTCOME, (conf.seq, *received, *outcome))
            if settled_leg is not None:
                self._conn.execute("DELETE FROM take_profits WHERE client_order_id = ?", (settled_leg,))
                self._conn.execute("DELETE FROM protective WHERE client_order_id = ?", (settled_leg,))

        self._write(lambda: f"outcome of decision {conf.decision_id} (seq {conf.seq})", body)
        self._next_seq += 1

    def record_reconciled(self, conf: ExecutionConfirmation, fill: Fill, *, kind: str, detail: str,
                          at_ns: int) -> None:  # fmt: skip
        """Journal a reconciliation's correction in ONE transaction: its outcome row under the
        reserved id (as a decision of reason MANUAL at the executed price, so the fill and the
        confirmation keep their references) and the audit row. The ledger is changed only after.

        Raises:
            JournalConflict: ``conf.seq`` is not :meth:`next_seq`, the id is used, or ``conf`` is
                not a reconciled confirmation of ``fill``.
        """
        if conf.seq != self._next_seq or not conf.reconciled or not fill_of(conf, fill):
            raise JournalConflict(f"{self.path}: reconciled confirmation {conf.decision_id} (seq {conf.seq}) does"
                                  f" not fit (next seq {self._next_seq})")  # fmt: skip
        did, at = i64(conf.decision_id), i64(at_ns)
        symbol = str(conf.instrument)
        row = (
            conf.seq, did, int(conf.instrument.kind), conf.instrument.value, int(conf.side), int(conf.intent),
            int(DecisionReason.MANUAL), conf.executed_qty, conf.avg_price, 10_000, at, at + 1, at, 0.0, at,
            *outcome_columns(conf, fill, b""),
        )  # fmt: skip

        def body() -> None:
            self._conn.execute(INSERT_OUTCOME, row)
            self._conn.execute(INSERT_RECONCILIATION, (at, kind, symbol, did, detail))

        self._write(f"{kind} of {symbol} (reconciled {conf.decision_id}, seq {conf.seq})", body)
        self._next_seq += 1

    def record_reconcile_action(self, *, kind: str, symbol: str, action_id: int, detail: str, at_ns: int) -> None:
        """Journal a reconciliation action that moves no position (a stop placed, resized or
        cancelled; a kill-switch clear): the audit row, committed before the action is taken.

        Raises:
            JournalWriteFailed: see :meth:`_write`.
        """
        self._write_sql(f"{kind} of {symbol}", INSERT_RECONCILIATION,
                        (i64(at_ns), kind, symbol, i64(action_id), detail))  # fmt: skip

    def next_action_id(self) -> int:
        """The next id of the reserved space (:data:`~protocol.RECONCILE_ID_BASE` + 1, + 2, ...) for a
        reconciliation's confirmation or action; never one used before."""
        with translated(self.path):
            row = self._conn.execute(MAX_ACTION_ID).fetchone()
        last = u64(int(row[0])) if row is not None and row[0] is not None else RECONCILE_ID_BASE
        return last + 1

    def reconciliations(self) -> list[dict[str, Any]]:
        """The audit of every reconciliation action, oldest first: ``at_ns``, ``kind``, ``symbol``,
        ``action_id``, ``detail``."""
        with translated(self.path):
            rows = self._conn.execute(
                "SELECT at_ns, kind, symbol, action_id, detail FROM reconciliations ORDER BY id").fetchall()
        return [{"at_ns": u64(a), "kind": k, "symbol": sym, "action_id": u64(i), "detail": d}
                for a, k, sym, i, d in rows]  # fmt: skip

    def belief_state(self) -> dict[str, Any] | None:
        """The belief controller's state as last journaled (mode, kill switch), or ``None``."""
        with translated(self.path):
            row = self._conn.execute(GET_META, ("belief_state",)).fetchone()
        return None if row is None else json.loads(row[0])

    def record_belief_state(self, state: dict[str, Any]) -> None:
        """Journal the belief controller's state (a latched kill switch survives a restart)."""
        self._write_sql("the belief state", "INSERT OR REPLACE INTO meta (key, value) VALUES ('belief_state', ?)",
                        (json.dumps(state, sort_keys=True),))  # fmt: skip

    def decision(self, decision_id: int) -> JournaledDecision | None:
        """The journaled decision with this id, or ``None`` — at once for an id above every one
        journaled (a new decision: the brain numbers them upwards), without a query (issue #17)."""
        if self._max_decision_id < decision_id < _RESERVED_IDS:
            return None
        with translated(self.path):
            row = self._conn.execute(SELECT_DECISION, (i64(decision_id),)).fetchone()
        return None if row is None else decision_row(row)

    def confirmation_for(self, decision_id: int) -> ExecutionConfirmation | None:
        """The stored confirmation of a decision (``sent_at_ns`` 0), or ``None``."""
        with translated(self.path):
            row = self._conn.execute(SELECT_CONFIRMATION, (i64(decision_id),)).fetchone()
        return None if row is None else confirmation_row(row)

    def next_seq(self) -> int:
        """The seq the next confirmation must carry: gap-free from 1."""
        return self._next_seq

    def namespace(self) -> str:
        """This journal's client order id namespace (8 hex digits, created once and kept; see
        :mod:`executor.venue.coid`), so ids stay stable across restarts and unique across runs."""
        with translated(self.path):
            row = self._conn.execute(GET_META, ("coid_namespace",)).fetchone()
            if row is not None:
                return str(row[0])
        value = new_namespace()
        self._write_sql("the client order id namespace", PUT_META, ("coid_namespace", value))
        return value

    def in_flight(self) -> list[TradeDecision]:
        """Decisions received but without an outcome, in decision-id order."""
        with translated(self.path):
            rows = self._conn.execute(SELECT_IN_FLIGHT).fetchall()
        return sorted((decision_row(r).decision for r in rows), key=lambda d: d.decision_id)

    def fills(self) -> Iterator[Fill]:
        """All fills in the order they were journaled (confirmation seq), to rebuild the ledger."""
        with translated(self.path):
            rows = self._conn.execute(SELECT_FILLS).fetchall()
        for did, kind, instr, side, qty, price, fee, at, native in rows:
            instrument = Instrument(InstrumentKind(kind), instr)
            yield Fill(u64(did), instrument, Side(side), qty, price, fee, u64(at), native)

    def confirmations_from(self, seq: int, limit: int = -1) -> list[ExecutionConfirmation]:
        """Confirmations with ``seq >= seq``, in seq order, at most ``limit`` (-1 = all), for replay."""
        with translated(self.path):
            rows = self._conn.execute(SELECT_CONFIRMATIONS_FROM + " LIMIT ?", (seq, limit)).fetchall()
        return [confirmation_row(r) for r in rows]

    def close(self) -> None:
        """Close the database (idempotent)."""
        with translated(self.path):
            self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Group:
    """The context manager :meth:`Journal.group` returns: a class, not a generator, as it is entered
    for every decision (a ``contextlib.contextmanager`` measured ~1.3 us more per block)."""

    __slots__ = ("_journal",)

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def __enter__(self) -> None:
        self._journal._open_group()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._journal._commit_group()
        else:
            self._journal._discard_group()
