"""Busy polling: watch a socket for a short window before the event loop sleeps on it (issue #17).

A process that answers a datagram and then sleeps in ``epoll_wait`` pays twice when the next one
comes a few hundred microseconds later: the wake-up itself, and a cold core — on this project's
2-core machine the same Python work costs ~1.7× the CPU after 0.5 ms asleep (a fixed loop: 70 µs
back to back, 121 µs after each sleep). :class:`BusyPoll` keeps the core awake instead: it asks
the kernel, without blocking, whether the socket is readable, again and again, until it is or the
window is over. It reads nothing: the event loop reads what arrived as usual — uvloop (libuv) reads
every queued datagram in one wake-up — so datagrams that queued up meanwhile still reach the
application together.

The same trade as Linux's ``SO_BUSY_POLL`` / ``net.core.busy_read`` ("approximate time in us to
busy loop waiting for packets", https://docs.kernel.org/admin-guide/sysctl/net.html; loopback has
no device queue to poll, so it is done here, in user space) and the spinning stage of Aeron's
``BackoffIdleStrategy``: up to ``window`` of one core's time per poll, bought for latency. The
event loop runs nothing else meanwhile, so timers fire up to ``window`` late.
"""

from __future__ import annotations

import select
import time
from typing import Any

__all__ = ["MAX_WINDOW_US", "BusyPoll"]

MAX_WINDOW_US = 5_000
"""The longest window accepted, µs: the event loop is blocked for the window, and a timer that
comes due meanwhile (a heartbeat: every 0.5 s by default) must not slip by more than a few ms."""


class BusyPoll:
    """Polls one socket for readability for up to ``window_us``.

    Args:
        fd: the socket's file descriptor (owned by the caller; not closed here).
        window_us: how long :meth:`wait` polls at most, µs; 1 to :data:`MAX_WINDOW_US`.

    Raises:
        ValueError: ``window_us`` outside 1..:data:`MAX_WINDOW_US`.
    """

    def __init__(self, fd: int, window_us: int) -> None:
        if not 1 <= window_us <= MAX_WINDOW_US:
            raise ValueError(f"busy poll window {window_us} us is outside 1..{MAX_WINDOW_US}")
        self.window_ns = window_us * 1_000
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)

    @classmethod
    def on(cls, transport: Any, window_us: int) -> BusyPoll | None:
        """A poll of ``transport``'s socket (an asyncio or uvloop datagram transport), or ``None`` when
        ``window_us`` is 0 (off).

        Raises:
            ValueError: ``window_us`` above :data:`MAX_WINDOW_US`, or negative.
        """
        return cls(transport.get_extra_info("socket").fileno(), window_us) if window_us else None

    def wait(self) -> bool:
        """Poll until the socket is readable (``True``) or the window is over (``False``); reads nothing.

        An error condition on the socket counts as readable: the event loop's read reports it."""
        poll = self._poll.poll
        deadline = time.perf_counter_ns() + self.window_ns
        while not poll(0):
            if time.perf_counter_ns() >= deadline:
                return False
        return True
