"""The only I/O of the protocol: one asyncio ``DatagramProtocol`` per endpoint.

It feeds received bytes to :class:`~protocol.codec.Codec` with the wall clock, hands valid
messages to ``on_message`` and rejected ones to ``on_reject`` (which counts them); a rejected
datagram is never read further. Work per received datagram is bounded and cheapest for garbage:
the framing checks (:func:`~protocol.codec.framing_error`: one slice, one dict lookup) run first
and, when they fail, the datagram goes to ``on_drop`` with its reason — no exception is made,
no tag computed; only what passes framing costs a tag check, and a datagram already
authenticated costs a dict lookup (the codec's memo). Like aioquic's ``QuicConnectionProtocol``, it holds no
protocol logic of its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
import time
from collections.abc import Callable

from .codec import Codec, Message, framing_error
from .errors import RejectReason, RemoteProtocolError

__all__ = ["Address", "DatagramEndpoint", "LinkTimer", "open_endpoint"]

Address = tuple[str, int]


class DatagramEndpoint(asyncio.DatagramProtocol):
    """Decodes datagrams and dispatches them; sends encoded messages to a fixed peer.

    Args:
        codec: shared-secret codec.
        on_message: called as ``on_message(msg, addr)`` for each valid datagram.
        on_reject: called as ``on_reject(error, addr)`` for each rejected datagram.
        peer: where :meth:`send` goes (the peer's listening address), or ``None``.
        clock: wall clock in Unix ns (``time.time_ns``); tests may pass another.
    """

    def __init__(
        self,
        codec: Codec,
        on_message: Callable[[Message, Address], None],
        on_reject: Callable[[RemoteProtocolError, Address], None],
        peer: Address | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.codec = codec
        self.peer = peer
        self._on_message = on_message
        self._on_reject = on_reject
        self._clock = clock
        self.transport: asyncio.DatagramTransport | None = None
        self.peer_name: Address | None = None  # a host name not yet resolved
        self.on_error: Callable[[Exception, Address], None] | None = None
        """Called as ``on_error(exc, addr)`` when handling a datagram raises — a framing drop, a
        rejection or a message; ``None``: the exception propagates to the caller."""
        self.on_drop: Callable[[RejectReason, bytes, Address], None] | None = None
        """Called as ``on_drop(reason, data, addr)`` for a datagram the framing checks refuse;
        ``None``: such a datagram goes to ``on_reject`` with the codec's exception instead."""
        self._resolving = False
        self._next_resolve = 0.0
        self._task: asyncio.Task[None] | None = None
        self._deferred: asyncio.TimerHandle | None = None

    @property
    def address(self) -> Address:
        """The bound local address (host, port)."""
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[:2]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's UDPTransport is not a subclass

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            reason = framing_error(data)
            if reason is not None and self.on_drop is not None:
                self.on_drop(reason, data, addr)
                return
            try:
                msg = self.codec.decode(data, self._clock())
            except RemoteProtocolError as exc:
                self._on_reject(exc, addr)
                return
            self._on_message(msg, addr)
        except Exception as exc:  # see below
            # An exception escaping here would reach only the event loop's exception handler (uvloop
            # 0.22 logs it and keeps the socket), uncounted — or, read by the executor's busy poll,
            # end its worker. The handlers journal before they act, so a failed handling changed
            # nothing durable; report it and keep serving (the peer retransmits).
            if self.on_error is None:
                raise
            self.on_error(exc, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable (peer not up yet) lands here; UDP is lossy by contract and
        # the sender's retry logic owns recovery, so there is nothing to do.
        pass

    def send_raw(self, data: bytes) -> None:
        """Send already-encoded bytes to the peer; dropped while the peer is unknown or unresolved
        (UDP is lossy by contract: the link retransmits)."""
        if self.transport is None:
            return
        if self.peer is not None:
            self.transport.sendto(data, self.peer)
        elif self.peer_name is not None:
            self._resolve_soon()

    def refresh_peer(self) -> None:
        """Resolve the peer's host name again, in the background, at most once per second.

        For a peer that has gone silent: a compose container that restarted may have a new
        address behind the same service name. The old address is kept until the new one resolves.
        A numeric address resolves to itself; without a peer this does nothing.
        """
        if self.peer_name is not None and self.transport is not None:
            self._resolve_soon()

    def _resolve_soon(self) -> None:
        """Resolve ``peer_name`` in the background, at most once per second: a request inside the
        second is served when the second is over, not dropped."""
        loop = asyncio.get_running_loop()
        if self._resolving or self._deferred is not None:
            return
        if loop.time() < self._next_resolve:
            self._deferred = loop.call_at(self._next_resolve, self._resolve_deferred)
            return
        self._resolving = True
        self._next_resolve = loop.time() + 1.0
        self._task = loop.create_task(self._resolve())  # keep a reference until it finishes

    def _resolve_deferred(self) -> None:
        self._deferred = None
        if self.transport is not None and not self.transport.is_closing():
            self._resolve_soon()

    async def _resolve(self) -> None:
        assert self.peer_name is not None and self.transport is not None
        try:
            family = self.transport.get_extra_info("socket").family
            infos = await asyncio.get_running_loop().getaddrinfo(
                self.peer_name[0], self.peer_name[1], family=family, type=socket.SOCK_DGRAM
            )
            self.peer = infos[0][4][:2]
        except OSError:
            pass  # not resolvable (yet): a compose peer not started; retried on a later send or refresh
        finally:
            self._resolving = False

    def close(self) -> None:
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        if self.transport is not None:
            self.transport.close()


async def open_endpoint(
    bind: Address,
    codec: Codec,
    on_message: Callable[[Message, Address], None],
    on_reject: Callable[[RemoteProtocolError, Address], None],
    peer: Address | None = None,
    clock: Callable[[], int] = time.time_ns,
    sock: socket.socket | None = None,
) -> DatagramEndpoint:
    """Bind a UDP socket on ``bind`` (port 0 picks an ephemeral port) and return its endpoint.

    ``sock``, a UDP socket the caller has already bound, is used instead (``bind`` is then
    ignored): a process binds its ports before it creates any file, so a port in use stops it
    before it has written anything. The endpoint owns the socket from then on.

    A peer given by host name (``executor:45110`` in a compose network) is resolved here, in the
    bound socket's address family, because uvloop's ``sendto`` accepts only numeric addresses. A
    name that does not resolve yet (compose's DNS answers only for running containers) is retried
    on later sends, at most once a second; datagrams sent meanwhile are dropped.

    Raises:
        OSError: the address cannot be bound.
    """
    loop = asyncio.get_running_loop()
    factory = lambda: DatagramEndpoint(codec, on_message, on_reject, None, clock)  # noqa: E731
    if sock is not None:
        transport, endpoint = await loop.create_datagram_endpoint(factory, sock=sock)
    else:
        transport, endpoint = await loop.create_datagram_endpoint(factory, local_addr=bind)
    endpoint.transport = transport  # uvloop may call connection_made only on the next loop turn
    if peer is not None:
        endpoint.peer_name = peer
        await endpoint._resolve()
    return endpoint


class LinkTimer:
    """The single re-armed timer of a link: fires ``callback`` at a wall-clock deadline (ns).

    Call :meth:`arm` with the link's ``get_timer()`` after every event; an unchanged deadline
    keeps the pending handle.
    """

    def __init__(self, callback: Callable[[], None], clock: Callable[[], int] = time.time_ns) -> None:
        self._callback = callback
        self._clock = clock
        self._handle: asyncio.TimerHandle | None = None
        self._deadline: int | None = None

    def arm(self, deadline_ns: int) -> None:
        if self._handle is not None:
            if deadline_ns == self._deadline:
                return
            self._handle.cancel()
        self._deadline = deadline_ns
        delay = max(0.0, (deadline_ns - self._clock()) / 1e9)
        # a fresh context: the timer outlives whatever decision armed it, and must not carry its
        # log context (structlog contextvars) into later, unrelated callbacks
        self._handle = asyncio.get_running_loop().call_later(delay, self._fire, context=contextvars.Context())

    def _fire(self) -> None:
        self._handle = self._deadline = None
        self._callback()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._deadline = None
