"""What both journals do with their SQLite file before they trust it.

- **A wiped journal is not a new one.** SQLite opens a 0-byte file as an empty database, so a
  journal truncated by accident would silently start over while the other process still trades
  on what it held. :func:`wiped` names that state (a 0-byte file, a database without tables, or
  a ``-wal`` left without its database) and the journal refuses it.
- **A new journal appears whole.** :func:`create` builds it under a temporary name (schema and
  identity committed, in rollback mode) and links it into place, so a kill during creation
  leaves no file at the journal's path that a restart would then refuse as wiped.
- **A write either lands or stops the process.** :func:`write_retrying` runs a journal write
  (one statement, or one transaction) up to :data:`WRITE_ATTEMPTS` times, rolling back and
  backing off between attempts, when SQLite reports an operational failure — locked or busy
  beyond :data:`BUSY_TIMEOUT_S`, disk full, an I/O error. A lock held for a few seconds is ridden
  out; a fault that lasts is :class:`JournalWriteFailed`, and the process stops with exit code
  :data:`~foundation.errors.STORAGE_FAULT_EXIT` rather than going on with state it could not journal.
- **Starting afresh keeps the old one.** :func:`set_aside` renames the journal and its ``-wal``
  and ``-shm`` to ``<name>.<UTC time>.bak`` (``-wal``/``-shm`` suffixed, so the copy still opens
  with its WAL); nothing is deleted.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from .errors import StorageFault

T = TypeVar("T")

__all__ = [
    "BUSY_TIMEOUT_S",
    "FRESH_HINT",
    "WRITE_ATTEMPTS",
    "JournalWriteFailed",
    "connect_readonly",
    "create",
    "set_aside",
    "table_names",
    "wiped",
    "write_retrying",
]

FRESH_HINT = "--fresh-journal sets it aside and starts a new one"
"""How a refusal ends: the way out (``TANDEM_FRESH_JOURNAL=true`` in the environment)."""
_SIDE_FILES = ("-wal", "-shm")

BUSY_TIMEOUT_S = 1.0
"""How long one attempt waits on a lock another connection holds (SQLite's busy timeout)."""
WRITE_ATTEMPTS = 4
"""Attempts of one journal write before it is given up: with :data:`BUSY_TIMEOUT_S` and the
backoff between them, a write is given up after about 5 s of a held lock (under 1 s for a full
disk, which fails at once)."""
_BACKOFF_S = (0.1, 0.25, 0.5)


class JournalWriteFailed(StorageFault):
    """A journal write failed :data:`WRITE_ATTEMPTS` times; the message names the journal, what was
    being written, SQLite's error and how long it was tried."""


def write_retrying(conn: sqlite3.Connection, attempt: Callable[[], T], *, path: object,
                   what: str | Callable[[], str]) -> T:  # fmt: skip
    """Run ``attempt()`` (a journal write: one statement in autocommit mode, or one transaction it
    opens and commits) until it succeeds, at most :data:`WRITE_ATTEMPTS` times. ``what`` names the
    write in the error (a callable: called only then).

    Only ``sqlite3.OperationalError`` (locked, busy, disk full, I/O error, read-only) is retried;
    an open transaction is rolled back before the next attempt. Any other error propagates at once.

    Raises:
        JournalWriteFailed: every attempt failed; nothing was written.
    """
    started = time.monotonic()
    for n in range(WRITE_ATTEMPTS):
        try:
            return attempt()
        except sqlite3.OperationalError as exc:
            last = exc
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if n < WRITE_ATTEMPTS - 1:
                time.sleep(_BACKOFF_S[min(n, len(_BACKOFF_S) - 1)])
    if callable(what):
        what = what()
    raise JournalWriteFailed(f"{path}: {what} could not be written: {last} ({WRITE_ATTEMPTS} attempts in"
                             f" {time.monotonic() - started:.1f} s)")  # fmt: skip


def wiped(path: Path) -> str | None:
    """What is wrong with the journal file at ``path`` before SQLite opens it, or ``None``.

    Returns:
        ``"is empty (0 bytes)"`` for an existing empty file; ``"is missing but its -wal is
        there"`` when only its write-ahead log is left; ``None`` otherwise (absent, or not
        empty: SQLite and the journal's own checks decide).
    """
    try:
        if path.stat().st_size == 0:
            return "is empty (0 bytes): wiped or truncated"
        return None
    except FileNotFoundError:
        pass
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return f"is missing but its write-ahead log {wal.name} is there: the journal was deleted in part"
    return None


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection that never changes the journal.

    A journal closed cleanly has no write-ahead log: it is read as an immutable file (SQLite's
    ``immutable=1`` URI parameter), so no ``-wal``/``-shm`` appear. A journal whose process stopped
    without closing it (killed, or a full disk) still has its ``-wal``: the main file alone may then
    be half-way through a checkpoint — pages of committed transactions copied back only in part —
    and reads as malformed, so it is read with its WAL (``mode=ro``; SQLite may create the
    ``-shm`` index beside it, as opening the journal would).
    """
    wal = Path(f"{path}-wal")
    uri = f"file:{quote(str(path.absolute()))}"
    if wal.exists() and wal.stat().st_size > 0:
        return sqlite3.connect(f"{uri}?mode=ro", uri=True)
    return sqlite3.connect(f"{uri}?immutable=1", uri=True)


def table_names(conn: sqlite3.Connection) -> set[str]:
    """Names of the tables in an open database (empty for a database without any)."""
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def create(path: Path, init: Callable[[sqlite3.Connection], None], *, page_size: int | None = None) -> None:
    """Create the journal at ``path`` atomically: ``init(conn)`` runs in one transaction on a
    temporary file next to it, which is then linked into place (never over an existing file).

    ``page_size`` (bytes, a power of two from 512 to 65536; ``None``: SQLite's default, 4096) is
    fixed for the file's life once it is created (https://www.sqlite.org/pragma.html#pragma_page_size:
    it cannot change in WAL mode). A WAL commit writes every page it changed in full, so a journal
    of small rows commits faster on small pages.

    Raises:
        sqlite3.Error: from ``init`` or SQLite (the caller translates it); nothing is left at
            ``path``.
        OSError: the directory cannot be written.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    tmp.unlink(missing_ok=True)
    Path(f"{tmp}-journal").unlink(missing_ok=True)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            if page_size is not None:
                conn.execute(f"PRAGMA page_size={int(page_size)}")
            conn.execute("BEGIN IMMEDIATE")
            init(conn)
            conn.execute("COMMIT")
        finally:
            conn.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: the caller opens and checks that one
        except OSError:  # a file system without hard links: rename (the run-dir lock excludes a race)
            if not os.path.lexists(path):
                os.rename(tmp, path)
        _sync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def set_aside(path: Path, now: datetime | None = None) -> Path | None:
    """Rename the journal at ``path`` (with its ``-wal`` and ``-shm``) to
    ``<path>.<UTC YYYYmmddTHHMMSSZ>.bak`` (``.1``, ``.2``... if taken); returns the new name,
    or ``None`` when there was nothing to set aside. Nothing is deleted.

    Raises:
        OSError: a rename failed.
    """
    present = [s for s in ("", *_SIDE_FILES) if os.path.lexists(f"{path}{s}")]
    if not present:
        return None
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    backup, n = Path(f"{path}.{stamp}.bak"), 0
    while any(os.path.lexists(f"{backup}{s}") for s in ("", *_SIDE_FILES)):
        n += 1
        backup = Path(f"{path}.{stamp}.{n}.bak")
    for suffix in present:  # the database first: a -wal without it is refused, never replayed
        os.rename(f"{path}{suffix}", f"{backup}{suffix}")
    return backup
