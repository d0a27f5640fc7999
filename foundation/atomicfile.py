"""Every file tandem writes whole is written atomically: temporary file, fsync, rename (issue #11 §2).

A reader — a later run, ``tandem report``, an operator — sees the old file or the new one, never a
truncated one: a full disk or a kill while writing leaves the previous contents in place (the
0-byte ``executor-ledger.json`` a full disk used to leave). The recipe is the one SQLite and
git use: write a temporary sibling (same directory, so the rename stays on one file system),
``fsync`` it, ``rename`` it over the target (atomic on POSIX), then ``fsync`` the directory so the
rename itself survives a power loss (``rename(2)``, ``fsync(2)``; see also the LWN article
"ext4 and data loss", 2009).

Logs are appended, not replaced, and SQLite journals keep their own atomicity: neither goes
through here.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["write_atomic", "write_atomic_many"]


def write_atomic(path: Path, data: bytes | str, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` (``str`` is UTF-8) atomically and durably.

    Args:
        path: the file to write; its directory must exist.
        data: the whole new contents.
        mode: the new file's permission bits (``0o600`` for a secret).

    Raises:
        OSError: the temporary file cannot be created, written or synced (disk full: ``ENOSPC``),
            or the rename fails; ``path`` keeps its previous contents and no temporary file is left.
    """
    write_atomic_many({path: data}, mode=mode)


def write_atomic_many(outputs: Mapping[Path, bytes | str], *, mode: int = 0o644) -> None:
    """Write every file of ``outputs`` to a temporary sibling and sync it, then rename them all.

    Either every rename happens or — when a write fails — none does (a failure while renaming,
    after every write succeeded, can leave the first ones renamed).

    Raises:
        OSError: as :func:`write_atomic`; nothing is left behind but the files already renamed.
    """
    temps: dict[Path, Path] = {}
    try:
        for path, data in outputs.items():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temps[path] = Path(tmp)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data.encode() if isinstance(data, str) else data)
                fh.flush()
                os.fchmod(fh.fileno(), mode)
                os.fsync(fh.fileno())
        for path, tmp in temps.items():
            os.replace(tmp, path)
        for directory in {p.parent for p in temps}:
            _fsync_dir(directory)
    finally:
        for tmp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
