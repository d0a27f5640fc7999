"""Process plumbing shared by the brain and the executor: event loop, logs, metrics, secrets.

Nothing here knows about trading. Layering: ``brain`` and ``executor`` import this module;
it imports neither.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import sys
import json
import subprocess
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TextIO, TypeVar

import structlog
from pydantic import SecretStr, ValidationError

__all__ = [
    "wait_ready",
    "MIN_NETWORK_SECRET_BYTES",
    "ConfigError",
    "MetricsServer",
    "RateLimitedLog",
    "check_bind_secret",
    "is_loopback",
    "configure_logging",
    "describe_validation_error",
    "load_bus_secret",
    "new_bus_secret",
    "parse_address",
    "run",
    "start_metrics_server",
    "write_secret_file",
]

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it."""


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


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


MIN_NETWORK_SECRET_BYTES = 32
"""A bus that leaves loopback needs a secret of at least 256 bits (BLAKE2b key strength)."""


def check_bind_secret(host: str, secret: bytes, *, setting: str) -> None:
    """Refuse to listen beyond loopback with a short bus secret.

    Raises:
        ConfigError: ``host`` is not a loopback address and ``secret`` is shorter than
            :data:`MIN_NETWORK_SECRET_BYTES`; the message names the setting, never the secret.
    """
    if not is_loopback(host) and len(secret) < MIN_NETWORK_SECRET_BYTES:
        raise ConfigError(
            f"{setting}: refusing to bind {host} (not loopback) with a bus secret of {len(secret)} bytes; "
            f"configure one of at least {MIN_NETWORK_SECRET_BYTES} bytes (TANDEM_BUS_SECRET_FILE)"
        )


def describe_validation_error(exc: ValidationError, env_prefix: str = "TANDEM_") -> str:
    """One line per invalid setting, naming the field, its env var and its CLI flag."""
    lines = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        flag = "--" + name.replace("_", "-")
        value = err.get("input")
        shown = "" if "secret" in name else f" (got {value!r})"
        lines.append(f"invalid setting {name} ({env_prefix}{name.upper()} / {flag}): {err['msg']}{shown}")
    return "\n".join(lines)


# -- secrets ----------------------------------------------------------------------------


def new_bus_secret() -> bytes:
    """A fresh random 32-byte bus secret (``secrets.token_bytes``)."""
    return secrets.token_bytes(32)


def write_secret_file(path: Path, secret: bytes) -> None:
    """Write ``secret`` hex-encoded to ``path`` with mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret.hex() + "\n")


def load_bus_secret(secret: SecretStr | None, secret_file: Path | None) -> bytes:
    """The bus secret from ``TANDEM_BUS_SECRET`` (text) or ``TANDEM_BUS_SECRET_FILE``.

    A key file holds the secret as text; if that text is hex it is decoded to bytes (the form
    :func:`write_secret_file` writes). The secret's value never appears in an error message.

    Raises:
        ConfigError: neither or both are set, the file cannot be read, or the secret is empty.
    """
    if secret is not None and secret_file is not None:
        raise ConfigError("bus_secret: set TANDEM_BUS_SECRET or TANDEM_BUS_SECRET_FILE, not both")
    if secret is not None:
        raw = secret.get_secret_value().encode()
    elif secret_file is not None:
        try:
            text = secret_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"bus_secret_file: cannot read {secret_file}: {exc.strerror}") from None
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = text.encode()
    else:
        raise ConfigError("bus_secret: no secret configured; set TANDEM_BUS_SECRET or TANDEM_BUS_SECRET_FILE")
    if not raw:
        raise ConfigError("bus_secret: the secret is empty")
    return raw


# -- logging ----------------------------------------------------------------------------


def configure_logging(level: str = "info", stream: TextIO | None = None, fmt: str = "auto") -> bool:
    """structlog to ``stream`` (stderr by default), ISO UTC timestamps and the log level.

    ``fmt``: ``"json"`` — one JSON object per line, rendered with orjson into a ``BytesLogger``,
    the fast path of structlog's performance guide
    (https://www.structlog.org/en/stable/performance.html); ``"console"`` — structlog's readable
    ``ConsoleRenderer`` (coloured on a terminal); ``"auto"`` — console when ``stream`` is a
    terminal, JSON otherwise (files, pipes, containers, log shippers).

    Context bound with ``structlog.contextvars`` (a decision's ``decision_id``, ``client_order_id``,
    ``seq``) is merged into every line. Returns True when the output is JSON.

    Raises:
        ValueError: an unknown ``fmt`` or ``level``.
    """
    import orjson

    if fmt not in ("auto", "json", "console"):
        raise ValueError(f"log_format: expected auto, json or console, got {fmt!r}")
    levels = logging.getLevelNamesMapping()
    if level.upper() not in levels:
        raise ValueError(f"log_level: expected debug, info, warning or error, got {level!r}")
    out = stream or sys.stderr
    tty = out.isatty()
    as_json = fmt == "json" or (fmt == "auto" and not tty)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if as_json:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer(serializer=orjson.dumps)]
        factory: Any = structlog.BytesLoggerFactory(out.buffer if hasattr(out, "buffer") else out)
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=tty))
        factory = structlog.PrintLoggerFactory(out)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(levels[level.upper()]),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
    return as_json


class RateLimitedLog:
    """At most one log line per key per ``interval_s``; the lines say how many were suppressed.

    A flood of bad datagrams must not fill the disk, while the metrics still count every one.
    Time comes from ``clock`` (monotonic seconds) so tests can script it.
    """

    def __init__(self, log: Any, event: str, interval_s: float = 1.0, clock: Any = None) -> None:
        import time

        self._log, self._event, self._interval = log, event, interval_s
        self._clock = clock or time.monotonic
        self._next: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, **fields: Any) -> bool:
        """Log ``event`` for ``key`` unless one was logged within the interval; True if logged."""
        now = self._clock()
        if now < self._next.get(key, 0.0):
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._next[key] = now + self._interval
        self._log.warning(self._event, reason=key, suppressed=self._suppressed.pop(key, 0), **fields)
        return True


# -- metrics ----------------------------------------------------------------------------


class MetricsServer:
    """An aiohttp server on the process's own loop exposing ``/metrics`` for one registry.

    prometheus-client's ``start_http_server`` runs a thread; STYLE.md keeps one loop and no
    threads, so the exposition is served by aiohttp (a ccxt dependency) with
    ``prometheus_client.aiohttp.make_aiohttp_handler``.
    """

    def __init__(self, runner: Any, port: int) -> None:
        self._runner = runner
        self.port = port

    async def close(self) -> None:
        await self._runner.cleanup()


async def start_metrics_server(registry: Any, host: str, port: int) -> MetricsServer | None:
    """Serve ``registry`` on ``http://host:port/metrics``; port 0 picks one, -1 disables."""
    if port < 0:
        return None
    from aiohttp import web
    from prometheus_client.aiohttp import make_aiohttp_handler

    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return MetricsServer(runner, bound)


# -- child processes --------------------------------------------------------------------


def wait_ready(proc: subprocess.Popen[str], log: Path, what: str, is_ready: Callable[[dict[str, Any]], bool],
               timeout_s: float) -> dict[str, Any]:  # fmt: skip
    """The first JSON line on ``proc``'s stdout for which ``is_ready`` holds.

    Raises:
        RuntimeError: ``proc`` exited or stayed silent for ``timeout_s``; it is killed and the
            tail of ``log`` is in the message.
    """
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(msg, dict) and is_ready(msg):
            return msg
    proc.kill()
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise RuntimeError(f"{what} did not become ready (exit {proc.wait()}); {log}:\n{tail}")
