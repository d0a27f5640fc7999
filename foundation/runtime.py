"""Process plumbing both apps share: the event loop, addresses and setting errors.

Nothing here knows about trading.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

from pydantic import ValidationError

from .errors import ConfigError

__all__ = ["GC_GEN0_THRESHOLD", "describe_validation_error", "parse_address", "run", "settle_heap"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop where available (the standard asyncio loop otherwise)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows or a non-CPython build
        return asyncio.run(main)
    return uvloop.run(main)


GC_GEN0_THRESHOLD = 20_000
"""Net allocations of container objects between two young-generation collections, once a process
serves (CPython's default is 700). The hot paths free what they allocate by reference counting;
what made the collector run — ~7 % of the executor's samples when pipelined — was the default
threshold firing every few decisions. Raised with the old objects frozen, ``tandem bench`` measured
the executor's CPU per pipelined decision 141-145 → 120-125 us. Cycles are still collected.
Source: https://docs.python.org/3/library/gc.html#gc.set_threshold and ``gc.freeze``.
"""


def settle_heap() -> None:
    """Call once a process has started and is about to serve: move every object made so far
    (modules, settings, bars, the journal's rows read at start) out of the collector's sight
    (``gc.freeze``: they live as long as the process), and collect the young generation only every
    :data:`GC_GEN0_THRESHOLD` net allocations. The older generations keep CPython's ratios."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, older, oldest)


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
