"""The run directory: checked before anything is created, and one writer per process role.

:func:`check_run_dir` says whether a directory can be created (or written) at ``run_dir`` without
creating anything; :func:`make_run_dir` then creates it. :func:`lock_run_dir` takes the role's
lock file (``executor.lock``, ``brain.lock``) with ``flock(LOCK_EX | LOCK_NB)`` and holds it for
the life of the process: a second executor (or brain) on the same directory is refused, naming
the holder (pid, host, start time, written into the lock file). The kernel releases an ``flock``
when its holder exits, however it exits (kill -9 included), so a stale lock file never blocks a
restart; the file itself stays. :func:`check_not_in_use` asks, without taking anything for
longer than the question, whether a role's lock is held (``tandem paper`` before it writes into a
directory). Linux ``flock(2)`` locks are per open file, so they also exclude a second lock taken
in the same process.

Errors are :class:`~foundation.errors.ConfigError` naming ``run_dir``, or :class:`RunDirBusy`.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

from .errors import ConfigError

__all__ = [
    "RUN_DIR_FILES",
    "RunDirBusy",
    "RunDirLock",
    "check_not_in_use",
    "check_run_dir",
    "lock_path",
    "lock_run_dir",
    "make_run_dir",
]


RUN_DIR_FILES = (
    "bus.key", "brain.lock", "executor.lock", "brain.log", "executor.log",
    "brain.sqlite", "brain.sqlite-wal", "brain.sqlite-shm",
    "executor.sqlite", "executor.sqlite-wal", "executor.sqlite-shm", "executor-ledger.json",
    "trades.csv", "equity.csv", "report.json", "report.png", "report.html",
)  # fmt: skip
"""Every file tandem writes into a run directory (the apps' ``outputs()``, ``tandem paper``'s
logs and key, SQLite's WAL files, the run report); each must be absent or a regular file."""


class RunDirBusy(ConfigError):
    """Another process holds the run directory's lock for this role; the message names it."""


def check_run_dir(path: Path) -> None:
    """Refuse a ``run_dir`` that cannot be created or written, creating nothing.

    Raises:
        ConfigError: ``path`` exists and is not a directory (a file, ``/dev/null``) or is not
            writable, or one of :data:`RUN_DIR_FILES` in it is not a regular file (a directory in
            the way, a dangling symlink); or its nearest existing ancestor is not a directory (a file in the way) or
            not writable. The message starts with ``run_dir:``.
    """
    try:
        if path.exists():
            if not path.is_dir():
                raise ConfigError(f"run_dir: {path} exists and is not a directory")
            if not _writable(path):
                raise ConfigError(f"run_dir: {path} is not writable (permission denied)")
            for name in RUN_DIR_FILES:
                entry = path / name
                if os.path.lexists(entry) and not entry.is_file():
                    kind = "a directory" if entry.is_dir() else "not a regular file"
                    raise ConfigError(f"run_dir: {entry} is {kind}; tandem writes a file there")
            return
        parent = path.parent
        while not parent.exists():
            parent = parent.parent
    except OSError as exc:
        raise ConfigError(f"run_dir: {path}: {exc.strerror or exc}") from None
    if not parent.is_dir():
        raise ConfigError(f"run_dir: cannot create {path}: {parent} is not a directory")
    if not _writable(parent):
        raise ConfigError(f"run_dir: cannot create {path}: {parent} is not writable (permission denied)")


def _writable(directory: Path) -> bool:
    """Whether this process may create files in ``directory`` (its effective ids, capabilities
    included, as ``faccessat(AT_EACCESS)`` sees them; a read-only file system counts as not)."""
    effective = os.access in os.supports_effective_ids
    return os.access(directory, os.W_OK | os.X_OK, effective_ids=effective)


def make_run_dir(path: Path) -> None:
    """Create ``run_dir`` and its parents (an existing directory is fine).

    Raises:
        ConfigError: it cannot be created; the message names ``run_dir`` and the reason.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"run_dir: cannot create {path}: {exc.strerror or exc}") from None


class RunDirLock:
    """A held run-directory lock; :meth:`release` (or process exit) gives it up."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        """Unlock and close (idempotent). The lock file stays, describing its last holder."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_path(run_dir: Path, role: str) -> Path:
    """``run_dir/<role>.lock``."""
    return run_dir / f"{role}.lock"


def lock_run_dir(run_dir: Path, role: str) -> RunDirLock:
    """Take ``run_dir/<role>.lock`` for this process and write the holder into it.

    Args:
        run_dir: an existing directory.
        role: ``"executor"`` or ``"brain"``: one of each may run on a directory.

    Returns:
        The held lock; keep it for the life of the process.

    Raises:
        RunDirBusy: another process holds it ("run dir X is in use by executor pid 1234 on host h
            (started 2026-12-05T07:40:00Z); lock X/executor.lock"); nothing is written.
        ConfigError: the lock file cannot be opened (names ``run_dir``).
    """
    path = lock_path(run_dir, role)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ConfigError(f"run_dir: cannot open the lock file {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        message = _busy(run_dir, role, path, fd)
        os.close(fd)
        raise RunDirBusy(message) from None
    except BaseException:
        os.close(fd)
        raise
    holder = {"role": role, "pid": os.getpid(), "host": socket.gethostname(),
              "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
    return RunDirLock(path, fd)


def check_not_in_use(run_dir: Path, roles: tuple[str, ...] = ("executor", "brain")) -> None:
    """Refuse a run directory whose lock is held for any of ``roles``; takes nothing for longer
    than the question (a shared lock, released at once) and creates no lock file.

    Raises:
        RunDirBusy: a lock is held; the message names the holder, as :func:`lock_run_dir`'s.
    """
    for role in roles:
        path = lock_path(run_dir, role)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError(f"run_dir: cannot open the lock file {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirBusy(_busy(run_dir, role, path, fd)) from None
        finally:
            os.close(fd)  # closing releases the shared lock too


def _busy(run_dir: Path, role: str, path: Path, fd: int) -> str:
    """The refusal: who holds ``path``, from what it wrote into it (re-read briefly: a holder
    that has just taken the lock may not have written yet)."""
    holder: dict[str, object] = {}
    for _ in range(20):
        try:
            holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except (OSError, ValueError):
            holder = {}
        if holder:
            break
        time.sleep(0.005)
    if isinstance(holder, dict) and "pid" in holder:
        who = f"{role} pid {holder.get('pid')} on host {holder.get('host')} (started {holder.get('started')})"
    else:
        who = f"another {role} (holder not recorded)"
    return f"run dir {run_dir} is in use by {who}; lock {path}"
