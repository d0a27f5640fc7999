"""Process plumbing shared by the brain and the executor: event loop, logs, metrics, secrets.

Nothing here knows about trading. Layering: ``brain`` and ``executor`` import this module;
it imports neither.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import stat
import socket
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
    "MIN_BUS_SECRET_BYTES",
    "ConfigError",
    "MetricsServer",
    "RateLimitedLog",
    "configure_logging",
    "decode_secret",
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


STORAGE_FAULT_EXIT = 3
"""Exit code of a process stopped by a storage fault (:class:`StorageFault`): distinct from 1 (a
run that failed) and 2 (bad input), so a supervisor — compose's restart policy — restarts it on the
same run directory, where it resumes from its journal."""


class StorageFault(RuntimeError):
    """A write the process cannot go on without failed for good (a journal write after bounded
    retries, an output file): disk full, an I/O error, a journal locked too long. The process stops
    with :data:`STORAGE_FAULT_EXIT`; the message names the file and the error."""


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


# -- secrets ----------------------------------------------------------------------------


def new_bus_secret() -> bytes:
    """A fresh random 32-byte bus secret (``secrets.token_bytes``)."""
    return secrets.token_bytes(32)


def write_secret_file(path: Path, secret: bytes) -> None:
    """Write ``secret`` hex-encoded to ``path`` with mode 0600, atomically (:mod:`tandem.atomicfile`:
    an existing file is replaced whole, and a key file open to others, which :func:`load_bus_secret`
    refuses, becomes a 0600 one).

    Raises:
        OSError: it cannot be written; an existing file keeps its contents.
    """
    from .atomicfile import write_atomic

    write_atomic(path, secret.hex() + "\n", mode=0o600)


MIN_BUS_SECRET_BYTES = 32
"""Every bus secret, text or file, loopback included, is at least 256 bits: the BLAKE2b key
strength (``derive_key`` makes a 32-byte key), and what ``tandem keygen`` writes."""

_SECRET_FILE_MODE_MASK = 0o077
"""Permission bits a key file must not have: any access by group or others (as ssh refuses a
private key that has them, ``sshkey_perm_ok`` in OpenSSH's authfile.c)."""


def decode_secret(text: str) -> bytes:
    """A key file's text as the secret: hex is decoded (the form :func:`write_secret_file`
    writes), anything else is taken as UTF-8 text; surrounding whitespace is ignored."""
    text = text.strip()
    try:
        return bytes.fromhex(text)
    except ValueError:
        return text.encode()


def load_bus_secret(secret: SecretStr | None, secret_file: Path | None) -> bytes:
    """The bus secret from ``TANDEM_BUS_SECRET`` (text) or ``TANDEM_BUS_SECRET_FILE``.

    A key file holds the secret as text (see :func:`decode_secret`) and must be readable by its
    owner only. The secret's value never appears in an error message.

    Returns:
        The secret, at least :data:`MIN_BUS_SECRET_BYTES` bytes.

    Raises:
        ConfigError: neither or both are set; the file cannot be read, or is open to group or
            others ("permissions 0644 for '<path>' are too open; chmod 600 it"); the secret is
            empty or shorter than :data:`MIN_BUS_SECRET_BYTES`. The message names the setting.
    """
    if secret is not None and secret_file is not None:
        raise ConfigError("bus_secret: set TANDEM_BUS_SECRET or TANDEM_BUS_SECRET_FILE, not both")
    if secret is not None:
        setting, raw = "bus_secret", secret.get_secret_value().encode()
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
    """The secret in ``path``, refused when it is not a regular file (a FIFO would block, a device
    never end), is larger than :data:`MAX_KEY_FILE_BYTES`, or when group or others may read or write
    it (checked on the open file, so the file checked is the file read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO without a writer does not block
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError(f"bus_secret_file: {path} is not a regular file")
            if st.st_mode & _SECRET_FILE_MODE_MASK:
                raise ConfigError(
                    f"bus_secret_file: permissions {st.st_mode & 0o777:04o} for '{path}' are too open; chmod 600 it"
                )
            data = fh.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"bus_secret_file: cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise ConfigError(f"bus_secret_file: {path} holds more than {MAX_KEY_FILE_BYTES} bytes: not a key file")
    try:
        return decode_secret(data.decode())
    except UnicodeDecodeError:
        raise ConfigError(f"bus_secret_file: {path} is not a text file (hex or UTF-8)") from None


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
        factory: Any = structlog.BytesLoggerFactory(LogSink(out.buffer if hasattr(out, "buffer") else out))
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=tty))
        factory = structlog.PrintLoggerFactory(LogSink(out))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(levels[level.upper()]),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
    return as_json


class LogSink:
    """The log stream, minus the failures: a log line that cannot be written (disk full, a closed
    pipe) is dropped and counted in :attr:`errors` instead of raising inside whatever was logging
    — a trading step must not fail half-way because its log line did not fit. A full disk still
    stops the process, through the journal write that follows (:class:`StorageFault`)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.errors = 0

    def write(self, data: Any) -> None:
        try:
            self._stream.write(data)
        except (OSError, ValueError):  # ValueError: the stream was closed
            self.errors += 1

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            self.errors += 1

    def isatty(self) -> bool:
        return bool(getattr(self._stream, "isatty", lambda: False)())


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

    def due(self, key: str) -> bool:
        """Whether a line for ``key`` may be logged now; when not, the datagram is counted as
        suppressed. Call :meth:`warning` (or :meth:`info`) right after a True, with the fields."""
        if self._clock() < self._next.get(key, 0.0):
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        return True

    def warning(self, key: str, **fields: Any) -> bool:
        """Log ``event`` for ``key`` unless one was logged within the interval; True if logged."""
        return self._emit(self._log.warning, key, fields)

    def info(self, key: str, **fields: Any) -> bool:
        """As :meth:`warning`, at info level (duplicates are expected traffic, not a threat)."""
        return self._emit(self._log.info, key, fields)

    def _emit(self, method: Any, key: str, fields: dict[str, Any]) -> bool:
        now = self._clock()
        if now < self._next.get(key, 0.0):
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._next[key] = now + self._interval
        method(self._event, reason=key, suppressed=self._suppressed.pop(key, 0), **fields)
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


async def start_metrics_server(
    registry: Any, host: str, port: int, sock: socket.socket | None = None
) -> MetricsServer | None:
    """Serve ``registry`` on ``http://host:port/metrics``; port 0 picks one, -1 disables.

    Args:
        sock: a TCP socket already bound (:func:`tandem.ports.bind_tcp`), served instead of
            binding ``host:port`` here (``host`` and ``port`` are then ignored); the server
            listens on it from now on and closes it.

    Raises:
        OSError: ``host:port`` cannot be bound.
    """
    if sock is None and port < 0:
        return None
    from aiohttp import web
    from prometheus_client.aiohttp import make_aiohttp_handler

    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site: web.BaseSite = web.SockSite(runner, sock) if sock is not None else web.TCPSite(runner, host, port)
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
