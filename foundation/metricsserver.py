"""The Prometheus ``/metrics`` endpoint of a process, served on its own event loop.

prometheus-client's ``start_http_server`` runs a thread; STYLE.md keeps one loop and no threads. The
endpoint is an ``asyncio.start_server`` whose HTTP/1.1 framing is h11's (sans-IO: it parses the
request, enforces sizes, keep-alive and ``Connection: close``) and whose body is prometheus-client's
``generate_latest`` — the two libraries' parts, no HTTP parsing of our own. It was aiohttp's server
until issue #17: importing aiohttp cost each process ~0.1 s of start-up (``make paper`` waits for
two of them), h11 ~0.02 s.

What it answers: ``GET`` or ``HEAD /metrics`` (any query) → 200 with the exposition
(``CONTENT_TYPE_LATEST``); another path → 404; another method → 405; a request h11 refuses
(malformed, over :data:`MAX_REQUEST_BYTES`) → 400 and the connection closes. A connection that sends
nothing for :data:`IDLE_TIMEOUT_S` (a keep-alive between scrapes, or a client that stalls mid-request)
is closed. Each connection is its own task; none can block the loop or another scrape.
"""

from __future__ import annotations

import asyncio
import socket
from http import HTTPStatus
from typing import Any

import h11
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["IDLE_TIMEOUT_S", "MAX_REQUEST_BYTES", "MetricsServer", "start_metrics_server"]

IDLE_TIMEOUT_S = 30.0
"""Seconds a connection may stay silent (between two scrapes, or inside one request) before it is
closed. Prometheus scrapes every 15 s by default and opens a new connection when one was closed."""
MAX_REQUEST_BYTES = 16 * 1024
"""The largest request head accepted (h11's ``max_incomplete_event_size``; its default too)."""
_READ_BYTES = 65_536


class MetricsServer:
    """A running endpoint; :meth:`close` stops it and drops its connections.

    Attributes:
        port: the bound TCP port.
    """

    def __init__(self, server: asyncio.Server, port: int, connections: set[asyncio.Task[None]]) -> None:
        self._server = server
        self._connections = connections
        self.port = port

    async def close(self) -> None:
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()


async def start_metrics_server(
    registry: Any, host: str, port: int, sock: socket.socket | None = None, *, idle_timeout_s: float = IDLE_TIMEOUT_S
) -> MetricsServer | None:
    """Serve ``registry`` on ``http://host:port/metrics``; port 0 picks one, -1 disables.

    Args:
        sock: a TCP socket already bound and listening (:func:`foundation.ports.bind_tcp`), served
            instead of binding ``host:port`` here (``host`` and ``port`` are then ignored); the
            server listens on it from now on and closes it.
        idle_timeout_s: see :data:`IDLE_TIMEOUT_S`.

    Raises:
        OSError: ``host:port`` cannot be bound.
    """
    if sock is None and port < 0:
        return None
    connections: set[asyncio.Task[None]] = set()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        try:
            await _serve(registry, reader, writer, idle_timeout_s)
        finally:
            connections.discard(task)

    if sock is not None:
        server = await asyncio.start_server(on_connection, sock=sock)
    else:
        server = await asyncio.start_server(on_connection, host, port)
    return MetricsServer(server, server.sockets[0].getsockname()[1], connections)


async def _serve(registry: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle_timeout_s: float) -> None:
    """One connection: request after request (keep-alive) until either side closes it."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_BYTES)
    try:
        while True:
            try:
                request = await _next_request(conn, reader, idle_timeout_s)
            except h11.RemoteProtocolError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    status = exc.error_status_hint
                    writer.write(_respond(conn, status, b"bad request\n", "text/plain; charset=utf-8", head=False))
                    await writer.drain()
                return
            if request is None:
                return
            writer.write(_answer(conn, registry, request))
            await writer.drain()
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except (TimeoutError, ConnectionError, h11.LocalProtocolError):
        return
    finally:
        writer.close()


async def _next_request(conn: h11.Connection, reader: asyncio.StreamReader, idle_timeout_s: float) -> h11.Request | None:
    """The next request whole (its body, if any, read and ignored), or ``None`` when the client closed.

    Raises:
        h11.RemoteProtocolError: a request h11 refuses. TimeoutError: silence for ``idle_timeout_s``.
    """
    request: h11.Request | None = None
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            async with asyncio.timeout(idle_timeout_s):
                data = await reader.read(_READ_BYTES)
            conn.receive_data(data)  # b"": the client closed its side
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.EndOfMessage):
            return request
        elif isinstance(event, h11.ConnectionClosed):
            return None
        # h11.Data (a body nobody needs) is read and dropped


def _answer(conn: h11.Connection, registry: Any, request: h11.Request) -> bytes:
    path = request.target.split(b"?", 1)[0]
    head = request.method == b"HEAD"
    if path != b"/metrics":
        return _respond(conn, 404, b"not found: the metrics are at /metrics\n", "text/plain; charset=utf-8", head=head)
    if request.method not in (b"GET", b"HEAD"):
        return _respond(conn, 405, b"method not allowed\n", "text/plain; charset=utf-8", head=head,
                        extra=[("Allow", "GET, HEAD")])  # fmt: skip
    return _respond(conn, 200, generate_latest(registry), CONTENT_TYPE_LATEST, head=head)


def _respond(conn: h11.Connection, status: int, body: bytes, content_type: str, *, head: bool,
             extra: list[tuple[str, str]] | None = None) -> bytes:  # fmt: skip
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *(extra or [])]
    out = conn.send(h11.Response(status_code=status, headers=headers, reason=HTTPStatus(status).phrase)) or b""
    if not head:
        out += conn.send(h11.Data(data=body)) or b""
    return out + (conn.send(h11.EndOfMessage()) or b"")
