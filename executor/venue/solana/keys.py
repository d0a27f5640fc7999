"""The wallet's keypair, read from a private file in solana-keygen's format.

``solana-keygen new -o FILE`` writes a JSON array of the 64 bytes of an ed25519 keypair (32 secret,
32 public). The file must be readable by its owner only (as ssh refuses a private key open to
others: :func:`foundation.privatefile.read_private_file`); the key never appears in a log or an
error message.
"""

from __future__ import annotations

import json
from pathlib import Path

from solders.keypair import Keypair

from foundation.errors import ConfigError
from foundation.privatefile import read_private_file

__all__ = ["KEYPAIR_FILE_MAX_BYTES", "load_keypair"]

KEYPAIR_FILE_MAX_BYTES = 1024
"""64 numbers of at most 3 digits, commas and brackets: about 260 bytes; a larger file is not one."""


def load_keypair(path: Path, *, setting: str = "solana_keypair_file") -> Keypair:
    """The keypair in ``path``.

    Raises:
        ConfigError: the file cannot be read, is open to group or others, or is not a JSON array
            of 64 integers 0..255 making a valid ed25519 keypair. The message names ``setting``
            and the path, never the key.
    """
    data = read_private_file(path, setting=setting, max_bytes=KEYPAIR_FILE_MAX_BYTES)
    shape = "a JSON array of 64 bytes, as solana-keygen writes"
    try:
        values = json.loads(data)
    except ValueError:
        raise ConfigError(f"{setting}: {path} is not a Solana keypair file ({shape})") from None
    if not (isinstance(values, list) and len(values) == 64
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in values)):  # fmt: skip
        raise ConfigError(f"{setting}: {path} is not a Solana keypair file ({shape})")
    try:
        return Keypair.from_bytes(bytes(values))
    except ValueError:
        raise ConfigError(f"{setting}: {path} holds 64 bytes that are not an ed25519 keypair") from None
