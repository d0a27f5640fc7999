"""The Prometheus ``/metrics`` endpoint of a process, served on its own event loop."""

from __future__ import annotations

import socket
from typing import Any

__all__ = ["MetricsServer", "start_metrics_server"]


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
        sock: a TCP socket already bound (:func:`foundation.ports.bind_tcp`), served instead of
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
