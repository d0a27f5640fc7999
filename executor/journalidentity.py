"""The executor journal's identity and errors, and the checks made on a journal file without opening
it for writing: what ``tandem paper`` asks before it writes into a run directory
(:func:`check_journal`), what ``tandem killswitch`` reads while the executor runs
(:func:`read_belief`), and the SQLite error translation every journal read and write goes through.
The journal itself is :class:`executor.journal.Journal`.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from foundation import journalfile

from .journalschema import GET_META

__all__ = [
    "JOURNAL_KIND",
    "SCHEMA_VERSION",
    "JournalConflict",
    "JournalCorrupt",
    "JournalEmpty",
    "JournalError",
    "JournalMismatch",
    "check_journal",
    "new_journal_id",
    "read_belief",
]

SCHEMA_VERSION = 7  # 2: decisions.stop_price (protocol v2); 3: identity (kind, journal_id, venue); 4: reconciliation; 5: swaps, fee_native; 6: take_profits; 7: one row per outcome
_MIGRATABLE = (3, 4, 5, 6)  # older schemas the executor upgrades in place when it opens the journal
JOURNAL_KIND = "tandem-executor"


class JournalError(Exception):
    """Base of the journal's errors; the message names the journal file."""


class JournalCorrupt(JournalError):
    """The file is not a SQLite database, or is damaged."""


class JournalEmpty(JournalCorrupt):
    """An existing journal file is empty (0 bytes, or a database without tables): it was wiped,
    and starting a new journal over it would forget what it held."""


class JournalMismatch(JournalError):
    """The file is not a tandem executor journal, or was written with another schema version,
    starting cash or venue."""


class JournalConflict(JournalError):
    """A write the journal's rules forbid (see the module docstring)."""


_CORRUPT_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
_I64_WRAP = 1 << 64
_I64_MAX = (1 << 63) - 1


def identity(path: str, conn: sqlite3.Connection, venue: str | None) -> dict[str, Any]:
    """The ``meta`` rows of the open database, checked: not without tables (wiped), an executor
    journal of this schema with a ``journal_id``, and (``venue`` given) of that venue.

    Raises:
        JournalEmpty, JournalMismatch: see :class:`Journal`.
    """
    tables = journalfile.table_names(conn)
    if not tables:
        raise JournalEmpty(f"{path}: the executor journal holds no tables: wiped or never written; refusing "
                           f"to start a new journal over it ({journalfile.FRESH_HINT})")  # fmt: skip
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
    kind = meta.get("kind")
    if "schema_version" not in meta:
        what = f"a {kind} journal" if kind else "no schema_version in its meta table"
        raise JournalMismatch(f"{path}: not a {JOURNAL_KIND} journal ({what})")
    if meta["schema_version"] != SCHEMA_VERSION and meta["schema_version"] not in _MIGRATABLE:
        raise JournalMismatch(f"{path}: journal has schema_version={meta['schema_version']!r}, "
                              f"opened with {SCHEMA_VERSION!r}")  # fmt: skip
    if kind != JOURNAL_KIND:
        raise JournalMismatch(f"{path}: not a {JOURNAL_KIND} journal (kind {kind!r})")
    if not meta.get("journal_id"):
        raise JournalMismatch(f"{path}: the journal has no journal_id")
    stored = meta.get("venue")
    if venue is not None and stored is not None and stored != venue:
        raise JournalMismatch(f"{path}: journal was created for venue {stored}, opened for venue {venue}")
    return meta


def _refuse_wiped(path: Path) -> None:
    """Raises JournalEmpty for a file :func:`foundation.journalfile.wiped` finds wiped."""
    problem = journalfile.wiped(path)
    if problem is not None:
        raise JournalEmpty(f"{path}: the executor journal {problem}; refusing to start a new journal over it "
                           f"({journalfile.FRESH_HINT})")  # fmt: skip


def check_journal(path: Path, *, venue: str | None = None, starting_cash: float | None = None) -> None:
    """Check an existing journal file as :class:`Journal` would open it, writing nothing
    (:func:`foundation.journalfile.connect_readonly`: the identity is committed at creation, in the
    file itself; a journal left with its write-ahead log is read with it). A missing file passes.
    What ``tandem paper`` asks before it writes into a run directory.

    Raises:
        JournalEmpty, JournalCorrupt, JournalMismatch: see :class:`Journal`.
    """
    _refuse_wiped(path)
    if not path.exists():
        return
    with translated(str(path)):
        conn = journalfile.connect_readonly(path)
        try:
            meta = identity(str(path), conn, venue)
        finally:
            conn.close()
    if starting_cash is not None and meta.get("starting_cash") != float(starting_cash):
        raise JournalMismatch(f"{path}: journal has starting_cash={meta.get('starting_cash')!r}, "
                              f"opened with {float(starting_cash)!r}")  # fmt: skip


def read_belief(path: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The belief state an executor journal last recorded (``None``: none yet) and its kill-switch
    audit rows (``at_ns``, ``kind``, ``detail``), read without writing (the executor may be running:
    read through SQLite's read-only URI, which sees the WAL).

    Raises:
        JournalError: the file is not a readable executor journal.
    """
    with translated(str(path)):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            identity(str(path), conn, None)
            row = conn.execute(GET_META, ("belief_state",)).fetchone()
            tables = journalfile.table_names(conn)
            clears = conn.execute("SELECT at_ns, kind, detail FROM reconciliations WHERE kind LIKE 'kill_switch%'"
                                  " ORDER BY id").fetchall() if "reconciliations" in tables else []  # fmt: skip
        finally:
            conn.close()
    return (json.loads(row[0]) if row else None), [{"at_ns": u64(a), "kind": k, "detail": d} for a, k, d in clears]


def new_journal_id() -> int:
    """A fresh journal identity: a random u64 in 1..2**64-1 (0 means "no journal" on the wire)."""
    while True:
        value = secrets.randbits(64)
        if value:
            return value


def i64(u: int) -> int:
    """u64 → SQLite's signed INTEGER (two's complement)."""
    return u - _I64_WRAP if u > _I64_MAX else u


def u64(i: int) -> int:
    """SQLite's signed INTEGER → u64 (inverse of :func:`i64`)."""
    return i + _I64_WRAP if i < 0 else i


def journal_error(path: str, exc: sqlite3.Error) -> JournalError:
    """The journal's error for ``exc``, naming ``path``: :class:`JournalConflict` for a constraint,
    :class:`JournalCorrupt` for a file that is not a valid journal, else :class:`JournalError`."""
    if isinstance(exc, sqlite3.IntegrityError):
        return JournalConflict(f"{path}: {exc}")
    if isinstance(exc, sqlite3.DatabaseError) and (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF in _CORRUPT_CODES:
        return JournalCorrupt(f"{path}: not a valid SQLite journal: {exc}")
    return JournalError(f"{path}: {exc}")


@contextmanager
def translated(path: str) -> Iterator[None]:
    """Translate ``sqlite3`` errors into the journal's tree (:func:`journal_error`), once."""
    try:
        yield
    except sqlite3.Error as exc:
        raise journal_error(path, exc) from exc
