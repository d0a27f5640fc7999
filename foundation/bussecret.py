"""The bus secret: made, written, read and checked — and turned into the bus codec, in one place.

The secret's text form is specified in ``protocol/SPEC.md`` (§7.1, "The secret's text form"): a key
file or the ``TANDEM_BUS_SECRET`` text is decoded the same way (:func:`decode_secret`), so both
processes derive the same key whichever source each was given.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from protocol import Codec, derive_key

from .atomicfile import write_atomic
from .errors import ConfigError
from .privatefile import read_private_file

if TYPE_CHECKING:
    from .settings import CommonSettings

__all__ = [
    "MAX_KEY_FILE_BYTES",
    "MIN_BUS_SECRET_BYTES",
    "bus_codec",
    "decode_secret",
    "load_bus_secret",
    "new_bus_secret",
    "write_secret_file",
]


def new_bus_secret() -> bytes:
    """A fresh random 32-byte bus secret (``secrets.token_bytes``)."""
    return secrets.token_bytes(32)


def write_secret_file(path: Path, secret: bytes) -> None:
    """Write ``secret`` hex-encoded to ``path`` with mode 0600, atomically (:mod:`foundation.atomicfile`:
    an existing file is replaced whole, and a key file open to others, which :func:`load_bus_secret`
    refuses, becomes a 0600 one).

    Raises:
        OSError: it cannot be written; an existing file keeps its contents.
    """
    write_atomic(path, secret.hex() + "\n", mode=0o600)


MIN_BUS_SECRET_BYTES = 32
"""Every bus secret, text or file, loopback included, is at least 256 bits: the BLAKE2b key
strength (``derive_key`` makes a 32-byte key), and what ``tandem keygen`` writes."""


def decode_secret(text: str) -> bytes:
    """The secret a ``TANDEM_BUS_SECRET`` text or a key file's text stands for (SPEC.md §7.1):
    surrounding whitespace (``str.strip``) is ignored; then hex — pairs of hex digits in either
    case, ASCII whitespace allowed between pairs (``bytes.fromhex``), the form
    :func:`write_secret_file` writes — is decoded, and anything else (odd length, a ``0x`` prefix,
    any other character) is taken as UTF-8 text.

    Raises:
        UnicodeEncodeError: ``text`` is not valid Unicode (a lone surrogate, as ``os.environ``
            makes of bytes that are not UTF-8).
    """
    text = text.strip()
    try:
        return bytes.fromhex(text)
    except ValueError:
        return text.encode()


def load_bus_secret(secret: SecretStr | None, secret_file: Path | None) -> bytes:
    """The bus secret from ``TANDEM_BUS_SECRET`` (text) or ``TANDEM_BUS_SECRET_FILE``.

    Both hold the secret as text, decoded the same way (:func:`decode_secret`: hex is decoded,
    other text taken as UTF-8), so one process given the variable and the other the file derive the
    same key from the same text. A key file must be readable by its owner only. The secret's value
    never appears in an error message.

    Returns:
        The secret, at least :data:`MIN_BUS_SECRET_BYTES` bytes.

    Raises:
        ConfigError: neither or both are set; the file cannot be read, or is open to group or
            others ("permissions 0644 for '<path>' are too open; chmod 600 it"); the text is not
            UTF-8; the secret is empty or shorter than :data:`MIN_BUS_SECRET_BYTES`. The message
            names the setting.
    """
    if secret is not None and secret_file is not None:
        raise ConfigError("bus_secret: set TANDEM_BUS_SECRET or TANDEM_BUS_SECRET_FILE, not both")
    if secret is not None:  # decoded like a key file's text: the same text gives the same key (SPEC.md §7.1)
        try:
            setting, raw = "bus_secret", decode_secret(secret.get_secret_value())
        except UnicodeEncodeError:
            raise ConfigError("bus_secret: TANDEM_BUS_SECRET is not UTF-8 text (hex or UTF-8)") from None
    elif secret_file is not None:
        setting, raw = "bus_secret_file", _read_key_file(secret_file)
    else:
        raise ConfigError("bus_secret: no secret configured; set TANDEM_BUS_SECRET or TANDEM_BUS_SECRET_FILE")
    if not raw:
        raise ConfigError(f"{setting}: the secret is empty")
    if len(raw) < MIN_BUS_SECRET_BYTES:
        raise ConfigError(
            f"{setting}: the bus secret is {len(raw)} bytes, at least {MIN_BUS_SECRET_BYTES} are required "
            "(`tandem keygen PATH` writes one)"
        )
    return raw


MAX_KEY_FILE_BYTES = 4096
"""The most a key file may hold: a 32-byte secret is 65 bytes of hex and a newline; a longer one
still fits many times over. Only this much (plus one byte, to tell) is ever read, so a path like
``/dev/zero`` or a huge file cannot make the process read without end."""


def _read_key_file(path: Path) -> bytes:
    """The secret in ``path`` (:func:`~foundation.privatefile.read_private_file`: a regular file of at
    most :data:`MAX_KEY_FILE_BYTES`, open to its owner only), decoded as text."""
    data = read_private_file(path, setting="bus_secret_file", max_bytes=MAX_KEY_FILE_BYTES)
    try:
        return decode_secret(data.decode())
    except UnicodeDecodeError:
        raise ConfigError(f"bus_secret_file: {path} is not a text file (hex or UTF-8)") from None


def bus_codec(settings: CommonSettings) -> Codec:
    """The bus codec of a process: its secret (:func:`load_bus_secret`) made into a key
    (:func:`protocol.derive_key`) and its freshness window (``max_age_s``, ``max_skew_s``).

    Raises:
        ConfigError: the secret is missing or refused (see :func:`load_bus_secret`).
    """
    secret = load_bus_secret(settings.bus_secret, settings.bus_secret_file)
    return Codec(derive_key(secret), max_age_ns=int(settings.max_age_s * 1e9), max_skew_ns=int(settings.max_skew_s * 1e9))
