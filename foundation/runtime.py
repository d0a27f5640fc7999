"""Process plumbing both apps share: the event loop, addresses and setting errors.

Nothing here knows about trading.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from pydantic import ValidationError

from .errors import ConfigError

__all__ = ["describe_validation_error", "parse_address", "run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop where available (the standard asyncio loop otherwise)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows or a non-CPython build
        return asyncio.run(main)
    return uvloop.run(main)


def parse_address(value: str, *, setting: str) -> tuple[str, int]:
    """``"host:port"`` → ``(host, port)``; ``setting`` names the option in errors.

    Raises:
        ConfigError: not ``host:port`` or a port outside 0..65535.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{setting}: expected host:port, got {value!r}")
    try:
        port_n = int(port)
    except ValueError:
        raise ConfigError(f"{setting}: port must be an integer, got {port!r}") from None
    if not 0 <= port_n <= 65535:
        raise ConfigError(f"{setting}: port must be 0..65535, got {port_n}")
    return host.strip("[]"), port_n


def describe_validation_error(exc: ValidationError, env_prefix: str = "TANDEM_") -> str:
    """One line per invalid setting, naming the field, its env var and its CLI flag."""
    lines = []
    for err in exc.errors():
        if not err["loc"]:  # a rule across settings (a model validator): its message names them
            lines.append(f"invalid settings: {err['msg'].removeprefix('Value error, ')}")
            continue
        name = ".".join(str(p) for p in err["loc"])
        flag = "--" + name.replace("_", "-")
        value = err.get("input")
        shown = "" if "secret" in name else f" (got {_shorten(value)})"
        msg = err["msg"].removeprefix("Value error, ")  # a validator's own message says it all
        lines.append(f"invalid setting {name} ({env_prefix}{name.upper()} / {flag}): {msg}{shown}")
    return "\n".join(lines)


def _shorten(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to about ``limit`` characters with the full length said (a 60 kB
    flag value must not become a 60 kB error line)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 20]}... ({len(text)} characters)"
