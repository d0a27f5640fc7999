"""How the brain and the executor start and stop: :func:`claim` before anything is created,
:func:`process_main` around the whole process (:func:`run_main`: its exit codes, shared with every
``tandem`` command), :func:`signals_call` and :func:`close_serving` for their lifetime.

:func:`claim` and :meth:`Claim.take_run_dir`: every input checked and every port bound before
anything is created, then the run directory made and locked for the role before the journal is
opened (:mod:`foundation.ports`, :mod:`foundation.rundir`).

:func:`process_main` is ``main()`` for ``tandem brain`` and ``tandem executor``: settings, logging,
the one JSON ready line on stdout, uvloop, exit code 2 for bad configuration or input and 3 for a
storage fault (:class:`~foundation.errors.StorageFault`: a journal or output write that failed for
good).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protocol.udp import Address

from . import journalfile
from .errors import STORAGE_FAULT_EXIT, ConfigError, StorageFault
from .logs import configure_logging
from .ports import bind_tcp, bind_udp, check_peer_is_not_self
from .rundir import RunDirLock, check_not_in_use, check_run_dir, lock_run_dir, make_run_dir
from .runtime import run
from .settings import CommonSettings, load_settings
from .shell import LinkShell

if TYPE_CHECKING:  # a parent that only runs children (tandem paper) need not import the HTTP server
    from .metricsserver import MetricsServer

__all__ = ["Claim", "claim", "close_serving", "process_main", "run_main", "signals_call"]


@dataclass
class Claim:
    """What a process holds before it creates anything, and until it exits: its bound UDP and
    metrics sockets (until handed over) and, once taken, its run directory's lock."""

    udp: socket.socket | None
    metrics: socket.socket | None
    lock: RunDirLock | None = None

    def take_udp(self) -> socket.socket | None:
        """The UDP socket, now the caller's (for :attr:`LinkShell.bound_socket`)."""
        sock, self.udp = self.udp, None
        return sock

    def take_metrics(self) -> socket.socket | None:
        """The metrics socket, now the caller's (for ``start_metrics_server(sock=...)``)."""
        sock, self.metrics = self.metrics, None
        return sock

    def take_run_dir(self, settings: CommonSettings, role: str, journal: Path) -> Path | None:
        """Create ``run_dir``, lock it for ``role`` and, with ``fresh_journal``, set ``journal``
        aside; returns where it was set aside (``None``: nothing was).

        Raises:
            ConfigError: ``run_dir`` cannot be created. RunDirBusy: another process holds the lock.
            OSError: the journal could not be renamed.
        """
        make_run_dir(settings.run_dir)
        self.lock = lock_run_dir(settings.run_dir, role)
        return journalfile.set_aside(journal) if settings.fresh_journal else None

    def close(self) -> None:
        """Close what was not handed over and release the lock (idempotent)."""
        for sock in (self.take_udp(), self.take_metrics()):
            if sock is not None:
                sock.close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def claim(settings: CommonSettings, listen: Address, *, setting: str, metrics_port: int, role: str,
          peer: Address | None = None, peer_setting: str = "") -> Claim:  # fmt: skip
    """Check ``run_dir`` and bind the process's ports, creating nothing: the UDP ``listen``
    address (named ``setting`` in errors) and the metrics port (``metrics_host``, ``metrics_port``;
    -1 = none); check that ``peer`` (named ``peer_setting``) is not the address just bound
    (:func:`~foundation.ports.check_peer_is_not_self`); then ask whether another ``role`` process holds ``run_dir`` (so that one is
    named, before its journal is even read).

    Raises:
        ConfigError: ``run_dir`` cannot be created or written; a host does not resolve; a port
            is in use or cannot be bound; the peer is this process. The message names the setting.
        RunDirBusy: another ``role`` process holds ``run_dir``.
    """
    check_run_dir(settings.run_dir)
    udp = bind_udp(listen[0], listen[1], setting=setting)
    metrics = None
    try:
        if peer is not None:
            check_peer_is_not_self(udp, peer, setting=peer_setting, own_setting=setting)
        metrics = bind_tcp(settings.metrics_host, metrics_port, setting="metrics_port", host_setting="metrics_host")
        if settings.run_dir.is_dir():
            check_not_in_use(settings.run_dir, (role,))
    except BaseException:
        udp.close()
        if metrics is not None:
            metrics.close()
        raise
    return Claim(udp, metrics)


def run_main(prog: str, body: Callable[[], int | None], *, input_errors: tuple[type[Exception], ...] = ()) -> int:
    """Run a command's ``body`` and turn what it raises into the exit code every tandem command
    uses, with one line ``<prog>: <message>`` on stderr — the one place this ladder lives
    (``tandem brain``/``executor`` through :func:`process_main`, ``tandem paper``, ``tandem
    chaos``, ``tandem keygen``).

    Exit codes: ``body()``'s result (``None`` = 0); 3 (:data:`~foundation.errors.STORAGE_FAULT_EXIT`)
    for a :class:`~foundation.errors.StorageFault` (``<prog>: storage fault: ...``); 2 for bad
    configuration or input — :class:`~foundation.errors.ConfigError`, an ``OSError`` (a port that
    cannot be bound, a file that cannot be read) and ``input_errors``; 1 for any other
    ``RuntimeError`` (a run that failed). Anything else is a bug and keeps its traceback.
    """
    try:
        return body() or 0
    except StorageFault as exc:  # before RuntimeError, which it is
        _say(f"{prog}: storage fault: {exc}")
        return STORAGE_FAULT_EXIT
    except (ConfigError, OSError, *input_errors) as exc:  # before RuntimeError: some input errors are ones
        _say(f"{prog}: {exc}")
        return 2
    except RuntimeError as exc:
        _say(f"{prog}: {exc}")
        return 1


def _say(line: str) -> None:
    """One line on stderr. A stderr that cannot take it — a log file on the disk that just filled up,
    which is how a storage fault often looks — loses the line, never the exit code: stderr is then
    pointed at ``/dev/null``, so the interpreter's last flush at exit cannot fail either (it would
    turn exit code 3 into 1 or 120)."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives until the process exits


@contextmanager
def signals_call(callback: Callable[[], Any]) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM call ``callback`` on the running loop (stop an event, cancel
    a task) instead of killing the process; the handlers are removed on the way out. Both
    processes stop this way, so their outputs (journal, ledger snapshot, report) are written."""
    loop = asyncio.get_running_loop()
    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, callback)
    try:
        yield
    finally:
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def close_serving(app: LinkShell, server: MetricsServer | None) -> None:
    """The teardown both processes share: the app's endpoint and timer closed, then the metrics
    endpoint (``None``: it never started)."""
    app.close()
    if server is not None:
        await server.close()


def process_main(
    argv: list[str] | None,
    *,
    prog: str,
    settings_cls: type[CommonSettings],
    ready_event: str,
    serve: Callable[[Any, Callable[[dict[str, Any]], None]], Coroutine[Any, Any, int | None]],
    errors: tuple[type[Exception], ...],
) -> int:
    """Run one tandem process; returns its exit code.

    Args:
        argv: command-line flags (default ``sys.argv[1:]``).
        prog: the command name, prefixed to error messages.
        settings_cls: the settings to load (defaults, ``.env``, ``TANDEM_*``, flags).
        ready_event: the ``event`` of the JSON line printed on stdout once the process listens.
        serve: ``serve(settings, ready)``; its result (``None`` = 0) is the exit code.
        errors: input errors (bad data, journal, ...) reported as exit code 2, like a bad setting
            or an address that cannot be bound.
    """
    argv = sys.argv[1:] if argv is None else argv

    def body() -> int | None:
        settings = load_settings(settings_cls, argv, prog)
        configure_logging(settings.log_level, fmt=settings.log_format)

        def ready(info: dict[str, Any]) -> None:
            print(json.dumps({"event": ready_event, **info}), flush=True)

        return run(serve(settings, ready))

    return run_main(prog, body, input_errors=errors)
