"""Busy polling: watch a socket for a short window before the event loop sleeps on it (issue #17).

A process that answers a datagram and then sleeps in ``epoll_wait`` pays twice when the next one
comes a few hundred microseconds later: the wake-up itself, and a cold core — on this project's
2-core machine the same Python work costs ~1.7× the CPU after 0.5 ms asleep (a fixed loop: 70 µs
back to back, 121 µs after each sleep). :class:`BusyPoll` keeps the core awake instead: it asks
the kernel, without blocking, whether the socket is readable, again and again, until it is or the
window is over.

**It reads what it finds**, up to :data:`READ_BATCH` datagrams, and hands them to the caller, who
passes them to its protocol's ``datagram_received`` as the event loop would have. Leaving them to
the loop cost the executor a second round through it — ``epoll_wait``, the loop's read, the
callback, then waking the worker task — measured at ~12 µs of a ~195 µs lockstep round trip
(p50 197 → 185 µs, a real executor, pinned, four alternating runs). A socket error queued on the
socket (ICMP port unreachable after a send to a peer that is down, as ``ECONNREFUSED``) is read
too, and given to ``on_error`` as the loop gives it to ``error_received``.

The same trade as Linux's ``SO_BUSY_POLL`` / ``net.core.busy_read`` ("approximate time in us to
busy loop waiting for packets", https://docs.kernel.org/admin-guide/sysctl/net.html; loopback has
no device queue to poll, so it is done here, in user space) and the spinning stage of Aeron's
``BackoffIdleStrategy``: up to ``window`` of one core's time per poll, bought for latency. The
event loop runs nothing else meanwhile, so timers fire up to ``window`` late.
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_DATAGRAM", "MAX_WINDOW_US", "READ_BATCH", "BusyPoll"]

MAX_WINDOW_US = 5_000
"""The longest window accepted, µs: the event loop is blocked for the window, and a timer that
comes due meanwhile (a heartbeat: every 0.5 s by default) must not slip by more than a few ms."""

READ_BATCH = 32
"""Datagrams read at most per poll that finds the socket readable: libuv's bound per read callback
(``uv__udp_recvmsg``: "prevent loop starvation when the data comes in as fast as (or faster than)
we can read it", 32 reads), so a flood cannot hold the worker here."""

MAX_DATAGRAM = 65_536
"""Bytes read per datagram: libuv's read buffer (64 KiB), so an oversized datagram reaches the
protocol with its true length and is refused as the loop's read would refuse it."""


class BusyPoll:
    """Polls one socket for readability for up to ``window_us``, then reads what is queued.

    Args:
        fd: the socket's file descriptor (owned by the caller; this poll reads through a duplicate
            of it, closed by :meth:`close`). The socket is made non-blocking (one open file for
            both descriptors), as an event loop's socket is already.
        window_us: how long :meth:`wait` polls at most, µs; 1 to :data:`MAX_WINDOW_US`.
        on_error: given each socket error read (an ``OSError``; the protocol's ``error_received``).
            ``None`` drops them.

    Raises:
        ValueError: ``window_us`` outside 1..:data:`MAX_WINDOW_US`.
        OSError: ``fd`` cannot be duplicated (not an open socket).
    """

    def __init__(self, fd: int, window_us: int, on_error: Callable[[OSError], None] | None = None) -> None:
        if not 1 <= window_us <= MAX_WINDOW_US:
            raise ValueError(f"busy poll window {window_us} us is outside 1..{MAX_WINDOW_US}")
        self.window_ns = window_us * 1_000
        self.on_error = on_error
        self._sock = socket.socket(fileno=os.dup(fd))
        self._sock.setblocking(False)  # never wait in a read: no default timeout (socket.setdefaulttimeout)
        self._poll = select.poll()
        self._poll.register(self._sock.fileno(), select.POLLIN)

    @classmethod
    def on(cls, transport: Any, window_us: int, on_error: Callable[[OSError], None] | None = None) -> BusyPoll | None:
        """A poll of ``transport``'s socket (an asyncio or uvloop datagram transport), or ``None`` when
        ``window_us`` is 0 (off).

        Raises:
            ValueError: ``window_us`` above :data:`MAX_WINDOW_US`, or negative.
        """
        return cls(transport.get_extra_info("socket").fileno(), window_us, on_error) if window_us else None

    def wait(self) -> list[tuple[bytes, Any]] | None:
        """Poll until the socket is readable, then read up to :data:`READ_BATCH` datagrams without
        blocking: ``(data, address)`` pairs in arrival order (empty when only an error was queued).
        ``None``: the window ran out and nothing was read."""
        poll = self._poll.poll
        deadline = time.perf_counter_ns() + self.window_ns
        while not poll(0):
            if time.perf_counter_ns() >= deadline:
                return None
        got: list[tuple[bytes, Any]] = []
        recvfrom = self._sock.recvfrom
        for _ in range(READ_BATCH):
            try:
                got.append(recvfrom(MAX_DATAGRAM, socket.MSG_DONTWAIT))
            except BlockingIOError:
                break
            except OSError as exc:  # a queued socket error (ECONNREFUSED): reading it cleared it
                if self.on_error is not None:
                    self.on_error(exc)
        return got

    def close(self) -> None:
        """Close the duplicate descriptor (idempotent); the caller's socket stays open."""
        self._sock.close()
