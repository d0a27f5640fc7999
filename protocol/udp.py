"""The only I/O of the protocol: one asyncio ``DatagramProtocol`` per endpoint.

It feeds received bytes to :class:`~protocol.codec.Codec` with the wall clock, hands valid
messages to ``on_message`` and rejected ones to ``on_reject`` (which counts them); a rejected
datagram is never read further. Like aioquic's ``QuicConnectionProtocol``, it holds no
protocol logic of its own.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

from .codec import Codec, Message
from .errors import RemoteProtocolError

__all__ = ["Address", "DatagramEndpoint", "open_endpoint"]

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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's UDPTransport is not a subclass

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            msg = self.codec.decode(data, self._clock())
        except RemoteProtocolError as exc:
            self._on_reject(exc, addr)
            return
        self._on_message(msg, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable (peer not up yet) lands here; UDP is lossy by contract and
        # the sender's retry logic owns recovery, so there is nothing to do.
        pass

    def send(self, msg: Message, *, sent_at_ns: int | None = None) -> bytes:
        """Encode ``msg`` (stamping ``sent_at_ns`` on confirmations) and send it to the peer.

        Returns:
            The datagram bytes sent, so a caller may keep them for identical retransmission.
        """
        data = self.codec.encode(msg, sent_at_ns=self._clock() if sent_at_ns is None else sent_at_ns)
        self.send_raw(data)
        return data

    def send_raw(self, data: bytes) -> None:
        """Send already-encoded bytes to the peer (no-op before the socket is up)."""
        if self.transport is not None and self.peer is not None:
            self.transport.sendto(data, self.peer)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_endpoint(
    bind: Address,
    codec: Codec,
    on_message: Callable[[Message, Address], None],
    on_reject: Callable[[RemoteProtocolError, Address], None],
    peer: Address | None = None,
    clock: Callable[[], int] = time.time_ns,
) -> DatagramEndpoint:
    """Bind a UDP socket on ``bind`` (port 0 picks an ephemeral port) and return its endpoint.

    A peer given by host name (``executor:45110`` in a compose network) is resolved once here, in
    the bound socket's address family: uvloop's ``sendto`` accepts only numeric addresses.

    Raises:
        OSError: the address cannot be bound or the peer's name does not resolve.
    """
    loop = asyncio.get_running_loop()
    transport, endpoint = await loop.create_datagram_endpoint(
        lambda: DatagramEndpoint(codec, on_message, on_reject, None, clock), local_addr=bind
    )
    endpoint.transport = transport  # uvloop may call connection_made only on the next loop turn
    if peer is not None:
        try:
            family = transport.get_extra_info("socket").family
            infos = await loop.getaddrinfo(peer[0], peer[1], family=family, type=socket.SOCK_DGRAM)
        except OSError:
            transport.close()
            raise
        endpoint.peer = infos[0][4][:2]
    return endpoint
