"""Logging for every tandem process: structlog configured once, a sink that cannot raise, and a
rate limit for lines about hostile or repeated traffic.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TextIO

import structlog

__all__ = ["LogContext", "LogSink", "RateLimitedLog", "configure_logging", "merge_log_context"]


def configure_logging(level: str = "info", stream: TextIO | None = None, fmt: str = "auto") -> bool:
    """structlog to ``stream`` (stderr by default), ISO UTC timestamps and the log level.

    ``fmt``: ``"json"`` — one JSON object per line, rendered with orjson into a ``BytesLogger``,
    the fast path of structlog's performance guide
    (https://www.structlog.org/en/stable/performance.html); ``"console"`` — structlog's readable
    ``ConsoleRenderer`` (coloured on a terminal); ``"auto"`` — console when ``stream`` is a
    terminal, JSON otherwise (files, pipes, containers, log shippers).

    Context bound with ``structlog.contextvars``, and a :class:`LogContext`'s fields (a decision's
    ``decision_id`` and ``client_order_id``), are merged into every line. Returns True when the
    output is JSON.

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
        merge_log_context,
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
        # a logger binds its configuration once, on its first line, not on every line (structlog's
        # performance guide); a process configures logging once, before it logs anything
        cache_logger_on_first_use=True,
    )
    return as_json


class LogContext:
    """``with LogContext(fields):`` adds what ``fields()`` returns (a dict) to every log line written
    inside the block, in this task, and removes it on the way out. ``fields`` is called only when
    a line is written — on the hot path, where a decision's lines are rare (issue #17), the block
    costs one ``ContextVar.set`` and ``reset``, not the building and binding of every field.

    A field given to the log call itself, or bound with ``structlog.contextvars``, wins over one
    of ``fields`` (merged by :func:`merge_log_context`, which :func:`configure_logging` installs).
    An inner block replaces an outer one until it ends.
    """

    __slots__ = ("_fields", "_token")

    def __init__(self, fields: Callable[[], dict[str, Any]]) -> None:
        self._fields = fields
        self._token: Any = None

    def __enter__(self) -> None:
        self._token = _log_context.set(self._fields)

    def __exit__(self, *exc: object) -> None:
        _log_context.reset(self._token)


_log_context: ContextVar[Callable[[], dict[str, Any]] | None] = ContextVar("tandem_log_context", default=None)


def merge_log_context(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: the fields of the enclosing :class:`LogContext`, if any, into the line
    (a key already there is kept)."""
    fields = _log_context.get()
    if fields is not None:
        for key, value in fields().items():
            event_dict.setdefault(key, value)
    return event_dict


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
