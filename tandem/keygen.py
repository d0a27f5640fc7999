"""``tandem keygen PATH``: write a fresh bus secret file (64 hex characters = 32 bytes, mode 0600).

docker-compose.yml runs ``tandem keygen --if-missing /secrets/bus_secret`` as a one-shot init
service into the named volume ``tandem-secrets``, so the first ``docker compose up`` needs no
manual step and later ones keep the key. The secret itself is never printed.

The file is written next to its final name and renamed over it, so a kill during the write never
leaves a truncated key that ``--if-missing`` would then keep, and a replaced file always gets
mode 0600 (``os.open`` applies the mode only when it creates a file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from foundation.bussecret import MIN_BUS_SECRET_BYTES, decode_secret, new_bus_secret, write_secret_file
from foundation.errors import ConfigError
from foundation.process import run_main

__all__ = ["main", "write_new_secret"]


def write_new_secret(path: Path) -> int:
    """Write a fresh :func:`~foundation.bussecret.new_bus_secret` to ``path``, hex, mode 0600, atomically.

    Args:
        path: the key file; its directory must exist and be writable. An existing file is replaced.

    Returns:
        The secret's length in bytes (32; the file holds twice as many hex characters and a newline).

    Raises:
        OSError: the directory is missing or not writable, or ``path`` is a directory.
    """
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(path))
    secret = new_bus_secret()
    write_secret_file(path, secret)  # atomic: temporary file, fsync, rename
    return len(secret)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tandem keygen",
        description="Write a fresh random 32-byte bus secret to PATH (64 hex characters, mode 0600). "
        "Point TANDEM_BUS_SECRET_FILE of both processes at it.",
    )
    parser.add_argument(
        "path", type=Path, metavar="PATH", help="key file to write (its directory must exist)"
    )
    parser.add_argument(
        "--if-missing", action="store_true", help="keep PATH if it already holds a non-empty secret (exit 0)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``tandem keygen``.

    Args:
        argv: the arguments after ``keygen``: ``[--if-missing] PATH`` (``sys.argv[1:]`` when None).

    Returns:
        0 when a key was written or (``--if-missing``) an existing non-empty one kept; 2 on bad
        arguments or when PATH cannot be read or written (the message names PATH and the reason,
        never the secret).
    """
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    return run_main("tandem keygen", lambda: _keygen(args.path, if_missing=args.if_missing))


def _keygen(path: Path, *, if_missing: bool) -> int:
    """Keep (``if_missing``) or write the key at ``path``; the messages go to stderr.

    Raises:
        ConfigError: ``path`` cannot be read or written (the message names it and the reason,
            never the secret).
    """
    if if_missing and path.exists() and not path.is_dir():
        try:
            text = path.read_text()
            mode = path.stat().st_mode & 0o777
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
        if text.strip():
            size = len(decode_secret(text))
            print(f"tandem keygen: keeping the existing bus secret in {path} ({size} bytes)", file=sys.stderr)
            if size < MIN_BUS_SECRET_BYTES:
                print(
                    f"tandem keygen: warning: {size} bytes is shorter than {MIN_BUS_SECRET_BYTES}; the processes "
                    "refuse it (delete the file to get a new one)",
                    file=sys.stderr,
                )
            if mode & 0o077:
                print(
                    f"tandem keygen: warning: permissions {mode:04o} for '{path}' are too open; the processes "
                    "refuse it (chmod 600 it)",
                    file=sys.stderr,
                )
            return 0
    try:
        size = write_new_secret(path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"tandem keygen: wrote a new {size}-byte bus secret to {path} (mode 0600)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
