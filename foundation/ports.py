"""Binding the ports a process listens on, before it creates anything.

A tandem process binds its UDP socket and its metrics socket first, so a port in use, a host that
does not resolve or an address that is not local is refused before a run directory, a journal or a
log exists. The sockets bound here are handed over to the endpoint
(:func:`protocol.udp.open_endpoint`, ``sock=``) and to the metrics server
(:func:`foundation.metricsserver.start_metrics_server`, ``sock=``). :func:`probe` binds and releases, for
``tandem paper``, which hands the ports to its child processes.

Errors are :class:`~foundation.errors.ConfigError`, one line naming the setting::

    decision_addr: cannot resolve host 'nosuch.invalid': Name or service not known
    metrics_port: cannot bind 127.0.0.1:9101 (tcp): Address already in use
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Literal

from .errors import ConfigError

__all__ = ["Port", "bind_tcp", "bind_udp", "check_peer_is_not_self", "probe", "resolve"]

Proto = Literal["udp", "tcp"]
_TYPES = {"udp": socket.SOCK_DGRAM, "tcp": socket.SOCK_STREAM}
_BACKLOG = 100  # asyncio's default for create_server
UDP_RECEIVE_BUFFER = 4 << 20
"""Bytes of kernel receive buffer asked for on a listening UDP socket (SO_RCVBUF; Linux caps it at
``net.core.rmem_max`` and doubles it for bookkeeping). The default (``rmem_default``, 208 KiB) holds
a few hundred datagrams: about 2 ms of a 169k datagrams/s flood, so a process descheduled for a
time slice would lose the peer's datagrams behind the garbage. 4 MiB holds tens of milliseconds."""


@dataclass(frozen=True, slots=True)
class Port:
    """A port a process will listen on: the setting that names it, host, port (0 = any free
    one), ``"udp"`` or ``"tcp"``, and the setting that names the host if another one
    (``metrics_host`` for ``metrics_port``)."""

    setting: str
    host: str
    port: int
    proto: Proto
    host_setting: str | None = None


def resolve(host: str, port: int, *, setting: str, proto: Proto = "udp") -> list[tuple[int, tuple]]:
    """``(family, sockaddr)`` of every local address ``host`` names (``getaddrinfo``), in order.

    Raises:
        ConfigError: the host does not resolve; the message names ``setting``.
    """
    try:
        infos = socket.getaddrinfo(host or None, port, type=_TYPES[proto], flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise ConfigError(f"{setting}: cannot resolve host {host!r}: {reason}") from None
    return [(family, sockaddr) for family, _, _, _, sockaddr in infos]


def _bind(p: Port) -> socket.socket:
    """A socket bound to the first address of ``p.host`` that binds, set up as asyncio would:
    a TCP socket gets ``SO_REUSEADDR`` (a port in TIME_WAIT is free again) and, on IPv6,
    ``IPV6_V6ONLY`` (``loop.create_server``), and listens at once: on Linux, sockets bound with
    ``SO_REUSEADDR`` may share a port until one listens, so only a listening socket holds it. A UDP
    socket gets neither option (``loop.create_datagram_endpoint``) and is exclusive once bound."""
    error: OSError | None = None
    for family, sockaddr in resolve(p.host, p.port, setting=p.host_setting or p.setting, proto=p.proto):
        sock = socket.socket(family, _TYPES[p.proto])
        try:
            if p.proto == "tcp":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if p.proto == "udp":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
            sock.bind(sockaddr)
            if p.proto == "tcp":
                sock.listen(_BACKLOG)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        sock.setblocking(False)
        return sock
    assert error is not None  # getaddrinfo never answers with an empty list
    raise ConfigError(f"{p.setting}: cannot bind {_show(p.host, p.port)} ({p.proto}): {error.strerror or error}")


def _show(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_udp(host: str, port: int, *, setting: str, host_setting: str | None = None) -> socket.socket:
    """A UDP socket bound to ``host:port`` (port 0 = an ephemeral one), non-blocking.

    Raises:
        ConfigError: the host does not resolve (the message names ``host_setting``, default
            ``setting``), or no address of it can be bound: in use, not local, not permitted
            (names ``setting``).
    """
    return _bind(Port(setting, host, port, "udp", host_setting))


def bind_tcp(host: str, port: int, *, setting: str, host_setting: str | None = None) -> socket.socket | None:
    """A TCP socket bound to ``host:port`` and listening; ``None`` for port -1 (off).

    Connections made before a server accepts on it wait in its backlog (a health check that
    scrapes it times out rather than passing before the process is ready).

    Raises:
        ConfigError: as :func:`bind_udp`.
    """
    return None if port < 0 else _bind(Port(setting, host, port, "tcp", host_setting))


def probe(ports: Iterable[Port]) -> None:
    """Bind every port at once, then release them all: each host resolves and each port is free,
    including of each other (two settings on one port). Port 0 only resolves its host.

    Raises:
        ConfigError: the first port that cannot be bound, naming its setting.
    """
    with ExitStack() as held:
        for p in ports:
            if p.port == 0:
                resolve(p.host, 0, setting=p.host_setting or p.setting, proto=p.proto)
            else:
                held.enter_context(_bind(p))


def check_peer_is_not_self(sock: socket.socket, peer: tuple[str, int], *, setting: str, own_setting: str) -> None:
    """Refuse a peer address that names the socket this process listens on (``localhost:45110``
    beside ``127.0.0.1:45110``): the process would send its datagrams to itself. A peer that does
    not resolve yet passes (compose's DNS names a container only once it runs); a socket bound to
    the wildcard address counts as every address on its port.

    Raises:
        ConfigError: the peer resolves to the bound address; the message names both settings.
    """
    bound_ip, bound_port = sock.getsockname()[:2]
    host, port = peer
    if port != bound_port:
        return
    try:
        infos = socket.getaddrinfo(host, port, family=sock.family, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError):
        return
    wildcard = bound_ip in ("0.0.0.0", "::")
    for *_, sockaddr in infos:
        ip = sockaddr[0]
        if ip == bound_ip or (wildcard and ipaddress.ip_address(ip).is_loopback):
            raise ConfigError(f"{setting}: {_show(host, port)} is this process's own listening address"
                              f" ({own_setting} {_show(bound_ip, bound_port)}): it would send to itself")
