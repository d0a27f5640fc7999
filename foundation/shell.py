"""The asyncio shell the brain and the executor share.

:class:`LinkShell` owns what is the same on both sides of the bus: one UDP endpoint, one
re-armed timer driving the side's sans-IO link (:mod:`protocol.link`), and the accounting of what
the endpoint drops — rejected datagrams (``metrics.rejected{reason}``, logged rate-limited) and
valid datagrams whose handling raised (``metrics.handler_errors``, logged) — and the peer's
address: when the link sees the peer restart, or (in the subclass) the peer goes silent, the
peer's host name is resolved again, since a restarted container may come back at a new address
behind the same service name. A subclass sets ``self.link`` and says what a link event means
(:meth:`LinkShell._on_link_event`). A storage fault raised inside a datagram or timer callback
stops the process (:meth:`LinkShell._fail`), as one raised anywhere else does
(:func:`foundation.process.process_main`).
"""

from __future__ import annotations

import socket
import time
from typing import Any

import structlog

from protocol import Codec, Message, RejectReason, RemoteProtocolError
from protocol.udp import Address, DatagramEndpoint, LinkTimer, open_endpoint

from .errors import STORAGE_FAULT_EXIT, StorageFault
from .logs import RateLimitedLog

__all__ = ["LinkShell"]


class LinkShell:
    """Endpoint, link timer and drop accounting; see the module docstring.

    Args:
        codec: bus codec (shared secret).
        metrics: has ``rejected`` (a Counter labelled ``reason``) and ``handler_errors``.
        logger: structlog logger name.
    """

    link: Any  # BrainLink or ExecutorLink, set by the subclass
    bound_socket: socket.socket | None = None
    """A UDP socket already bound to the listening address (:func:`foundation.ports.bind_udp`), set
    before ``start()``; the endpoint takes it over instead of binding. ``None``: bind at start."""

    def __init__(self, codec: Codec, metrics: Any, logger: str) -> None:
        self.codec = codec
        self.metrics = metrics
        self.endpoint: DatagramEndpoint | None = None
        self.log = structlog.get_logger(logger)
        self._reject_log = RateLimitedLog(self.log, "datagram_rejected")
        self._rejected = {r: metrics.rejected.labels(r.value) for r in RejectReason}  # children resolved once
        self._timer = LinkTimer(self._on_timer)
        self._peer_restarts_seen = 0
        self.failure: StorageFault | None = None
        """The storage fault that stops this process (see :meth:`_fail`), or None."""

    @property
    def address(self) -> Address:
        """The bound local address (after the endpoint is open)."""
        assert self.endpoint is not None
        return self.endpoint.address

    async def _open(self, bind: Address, peer: Address, sock: socket.socket | None = None) -> None:
        """Open the endpoint on ``sock`` (or :attr:`bound_socket`), else bind ``bind``.

        Raises:
            OSError: ``bind`` cannot be bound.
        """
        sock = sock or self.bound_socket
        self.bound_socket = None  # the endpoint owns it now
        self.endpoint = await open_endpoint(bind, self.codec, self._on_message, self._on_reject, peer=peer, sock=sock)
        self.endpoint.on_error = self._on_handler_error
        self.endpoint.on_drop = self._on_drop

    def close(self) -> None:
        self._timer.cancel()
        if self.endpoint is not None:
            self.endpoint.close()
        if self.bound_socket is not None:  # never started: the socket handed over is ours to close
            self.bound_socket.close()
            self.bound_socket = None

    # -- the link ---------------------------------------------------------------------------

    def _on_link_event(self, event: Any, now: int) -> None:
        """Act on what ``link.receive`` returned for one authentic message."""
        raise NotImplementedError

    def _after_timer(self, now: int) -> None:
        """Extra work after the link's timer ran (default: none)."""

    def _flush(self) -> None:
        """Send what the link queued and re-arm the timer on its next deadline. Before the endpoint
        is set — a datagram queued on a pre-bound socket is delivered while :meth:`_open` is still
        awaiting the transport — nothing is sent yet: the link keeps it for the next flush."""
        if self.endpoint is None:
            return
        for data in self.link.datagrams_to_send():
            self.endpoint.send_raw(data)
        self._timer.arm(self.link.get_timer())

    def _on_timer(self) -> None:
        if self.failure is not None:  # stopping: nothing more is sent or written
            return
        now = time.time_ns()
        self.link.handle_timer(now)
        try:
            self._after_timer(now)
        except StorageFault as exc:
            self._fail(exc)
        self._flush()

    # -- storage faults ---------------------------------------------------------------------

    def _fail(self, exc: StorageFault) -> None:
        """Record the first storage fault, log it and tell the subclass (:meth:`_on_failure`): the
        process must stop with :data:`~foundation.errors.STORAGE_FAULT_EXIT` — what it could not
        journal it must not act on, and a restart resumes from the journal."""
        if self.failure is not None:
            return
        self.failure = exc
        self.log.error("storage_fault", detail=str(exc), action=f"stopping with exit code {STORAGE_FAULT_EXIT}")
        self._on_failure()

    def _on_failure(self) -> None:
        """Wake whatever waits, so the process stops (default: nothing)."""

    def _on_message(self, msg: Message, addr: Address) -> None:
        if self.failure is not None:  # stopping on a storage fault: handle nothing more (each would retry a write)
            return
        now = time.time_ns()
        try:
            event = self.link.receive(msg, now, addr)
        except RemoteProtocolError as exc:  # authentic, but for the other side of the link
            self._on_reject(exc, addr)
            return
        restarts = self.link.stats.peer_restarts
        if restarts != self._peer_restarts_seen and self.endpoint is not None:
            # the peer restarted: a compose container that restarts may come back at a new address
            # behind the same name, and its heartbeats reach us while we still send to the old one
            self._peer_restarts_seen = restarts
            self.endpoint.refresh_peer()
        self._on_link_event(event, now)
        self._flush()

    # -- what both sides export -------------------------------------------------------------

    def _watch_peer(self, alive: bool, up: Any, heard: Any) -> None:
        """Peer liveness as the gauges ``up`` (1/0) and ``heard`` (Unix seconds); a silent peer's
        address is resolved again (a restarted container may have a new one)."""
        up.set(1 if alive else 0)
        if self.link.last_heard_ns is not None:
            heard.set(self.link.last_heard_ns / 1e9)
        if not alive and self.endpoint is not None:
            self.endpoint.refresh_peer()

    # -- drops ------------------------------------------------------------------------------

    def _on_reject(self, exc: RemoteProtocolError, addr: Address) -> None:
        self._rejected[exc.reason].inc()
        if self._reject_log.due(exc.reason.value):  # the line is built only when it is logged
            self._reject_log.warning(exc.reason.value, peer=f"{addr[0]}:{addr[1]}", error=str(exc))

    def _on_drop(self, reason: RejectReason, data: bytes, addr: Address) -> None:
        """A datagram the framing checks refused: counted; the codec is asked what is wrong with
        it only when a log line is due (at most one per reason per second)."""
        self._rejected[reason].inc()
        if self._reject_log.due(reason.value):
            try:
                self.codec.decode(data, time.time_ns())
                error = reason.value
            except RemoteProtocolError as exc:
                error = str(exc)
            self._reject_log.warning(reason.value, peer=f"{addr[0]}:{addr[1]}", error=error)

    def _on_handler_error(self, exc: Exception, addr: Address) -> None:
        if isinstance(exc, StorageFault):  # a journal write failed for good: stop, never carry on
            self._fail(exc)
            return
        self.metrics.handler_errors.inc()
        self.log.error("datagram_handler_failed", peer=f"{addr[0]}:{addr[1]}", error=f"{type(exc).__name__}: {exc}",
                       exc_info=exc)  # fmt: skip
