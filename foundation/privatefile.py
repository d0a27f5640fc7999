"""Reading a private key file: the bus secret, a Solana keypair — refused when others may touch it.

Checked on the open file, so the file checked is the file read: a regular file (a FIFO would
block, a device never end), no larger than a bound (only that much plus one byte is ever read),
and with no permission bit for group or others — as ssh refuses a private key that has them
(``sshkey_perm_ok`` in OpenSSH's authfile.c). The content never appears in an error message.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import ConfigError

__all__ = ["PRIVATE_FILE_MODE_MASK", "read_private_file"]

PRIVATE_FILE_MODE_MASK = 0o077
"""Permission bits a private file must not have: any access by group or others."""


def read_private_file(path: Path, *, setting: str, max_bytes: int) -> bytes:
    """The bytes of the private file at ``path``.

    Args:
        setting: the setting that named the file, for error messages (``bus_secret_file``).
        max_bytes: the most the file may hold.

    Raises:
        ConfigError: it cannot be read, is not a regular file, holds more than ``max_bytes``, or
            group or others may read or write it ("permissions 0644 for '<path>' are too open;
            chmod 600 it"). The message names ``setting``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO without a writer does not block
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError(f"{setting}: {path} is not a regular file")
            if st.st_mode & PRIVATE_FILE_MODE_MASK:
                raise ConfigError(f"{setting}: permissions {st.st_mode & 0o777:04o} for '{path}' are too open; chmod 600 it")
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise ConfigError(f"{setting}: {path} holds more than {max_bytes} bytes: not a key file")
    return data
