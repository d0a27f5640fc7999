"""A seeded UDP fault proxy between the brain and the executor, for ``tandem chaos`` (issue #3 §3).

Two directions, each one loopback socket that receives and forwards:

* ``decisions``: the brain's ``decision_addr`` points at :attr:`ChaosProxy.decision_addr`; what
  arrives (decisions, replay requests, brain heartbeats) is forwarded to the executor's bind address;
* ``confirmations``: the executor's ``confirm_addr`` points at :attr:`ChaosProxy.confirm_addr`;
  what arrives (confirmations, executor heartbeats) is forwarded to the brain's bind address.

Every pass-through datagram is first **classified** (:class:`~testbed.proxytraffic.Classifier`:
``decision_new``, ``decision_retransmit``, ``confirmation``, ``confirmation_resent``,
``replay_request``, ``heartbeat`` or ``other``) with the real secret, and then meets the faults a
seeded :class:`~testbed.proxyfaults.FaultModel` draws for it, in this order: **loss**;
**corruption** (1–3 random bits flipped); **duplication** (the same bytes sent twice);
**reordering** (held back and released right after the next datagram forwarded in that direction,
or after 2–50 ms if none comes) or else **delay** (extra latency up to ``delay_max_ms``).

On top of that traffic the proxy **injects**, at seeded exponential intervals, forged, replayed and
reflected datagrams into each direction's receiver (:mod:`testbed.proxyinject`).

With a **tap** (:attr:`ChaosProxy.tap`, a loopback address), a copy of every pass-through
datagram, as received, is sent there before any fault: it stands for an attacker's packet capture,
feeding the keyless flooder (:mod:`testbed.flood`) the authentic datagrams it re-sends.

Determinism: the k-th datagram of a direction always meets the same faults for a given seed
(:mod:`testbed.proxyfaults`); injections have streams of their own (:mod:`testbed.proxyinject`).

Bounds: at most :data:`MAX_DELAYED` datagrams waiting on a delay (beyond that they are forwarded
at once), :data:`MAX_HELD` held for reordering per direction,
:data:`~testbed.proxyinject.REPLAY_RING` kept for replays,
:data:`~testbed.proxytraffic.MAX_TRACKED_IDS` decision ids and seqs remembered for classification.
Sockets bind to 127.0.0.1 only. No threads: one ``DatagramProtocol`` per direction and loop timers.

Jobs: this module is the datagram loop (sockets, forwarding, holding, delaying); the fault model
is :mod:`testbed.proxyfaults`, classification and counters :mod:`testbed.proxytraffic`, injection
:mod:`testbed.proxyinject`. Their public names are re-exported here.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Final

from .proxyfaults import FaultModel, FaultRates, Faults, flip_bits
from .proxyinject import Injector
from .proxytraffic import ACTIONS, DIRECTIONS, KINDS, Classifier, ProxyStats

__all__ = [
    "ACTIONS",
    "DIRECTIONS",
    "KINDS",
    "ChaosProxy",
    "Classifier",
    "FaultModel",
    "FaultRates",
    "Faults",
    "ProxyStats",
    "flip_bits",
]

Address = tuple[str, int]

LOOPBACK: Final = "127.0.0.1"
MAX_DELAYED: Final = 1024
MAX_HELD: Final = 16


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes], None]) -> None:
        self._on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP port unreachable while a peer is down: UDP is lossy by contract


class _Direction:
    """One direction's socket, fault stream and held datagrams."""

    def __init__(self, name: str, rates: FaultRates, seed: int, target: Address | None) -> None:
        self.name = name
        self.target = target
        self.faults = FaultModel(rates, random.Random(f"{seed}:{name}:faults"))
        self.socket = _Socket(lambda data: None)
        self.held: dict[int, tuple[bytes, asyncio.TimerHandle]] = {}  # insertion-ordered
        self.held_ids = 0


class ChaosProxy:
    """The fault proxy; see the module docstring.

    Args:
        secret: the bus secret, to classify pass-through traffic (never to forge).
        rates: fault probabilities and injection rates.
        seed: seeds every random stream.
        executor: the executor's decision address (target of the ``decisions`` direction).
        brain: the brain's confirmation address (target of the ``confirmations`` direction).
    """

    def __init__(
        self, secret: bytes, rates: FaultRates, seed: int, *, executor: Address | None = None,
        brain: Address | None = None,
    ) -> None:  # fmt: skip
        self.rates = rates
        self.seed = seed
        self.stats = ProxyStats()
        self.new_decisions = 0
        self._classifier = Classifier(secret)
        self._dirs = {
            "decisions": _Direction("decisions", rates, seed, executor),
            "confirmations": _Direction("confirmations", rates, seed, brain),
        }
        self._injector = Injector(
            secret, rates, seed, self.stats, send=lambda name, data: self._send(self._dirs[name], data),
            has_target=lambda name: self._dirs[name].target is not None,
        )
        self._delayed: set[asyncio.TimerHandle] = set()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._closed = False
        self.tap: Address | None = None
        """Where a copy of every pass-through datagram goes (see the module docstring), or None."""

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind both sockets on 127.0.0.1 (ephemeral ports) and start the injection schedules."""
        loop = asyncio.get_running_loop()
        for d in self._dirs.values():
            handler = self._on_datagram_for(d)
            transport, d.socket = await loop.create_datagram_endpoint(
                lambda h=handler: _Socket(h), local_addr=(LOOPBACK, 0)  # type: ignore[misc]
            )
            d.socket.transport = transport  # uvloop may call connection_made only on the next loop turn
        self._injector.start()

    def close(self) -> None:
        """Stop injecting, drop held and delayed datagrams, close the sockets."""
        self._closed = True
        self._injector.close()
        for h in (*self._delayed, *(h for d in self._dirs.values() for _, h in d.held.values())):
            h.cancel()
        self._delayed.clear()
        for d in self._dirs.values():
            d.held.clear()
            if d.socket.transport is not None:
                d.socket.transport.close()
        for _, fut in self._waiters:
            if not fut.done():
                fut.cancel()

    @property
    def decision_addr(self) -> Address:
        """Where the brain must send (its ``decision_addr``)."""
        return self._bound("decisions")

    @property
    def confirm_addr(self) -> Address:
        """Where the executor must send (its ``confirm_addr``)."""
        return self._bound("confirmations")

    def _bound(self, name: str) -> Address:
        t = self._dirs[name].socket.transport
        assert t is not None, "start() first"
        return t.get_extra_info("sockname")[:2]

    def set_targets(self, *, executor: Address | None = None, brain: Address | None = None) -> None:
        """Change where each direction forwards to (``None`` keeps the current target)."""
        if executor is not None:
            self._dirs["decisions"].target = executor
        if brain is not None:
            self._dirs["confirmations"].target = brain

    async def wait_new_decisions(self, n: int) -> None:
        """Return once ``n`` new (never seen) authentic decisions have reached the proxy."""
        if self.new_decisions >= n:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((n, fut))
        await fut

    # -- pass-through -----------------------------------------------------------------------

    def _on_datagram_for(self, d: _Direction) -> Callable[[bytes], None]:
        return lambda data: self._on_datagram(d, data)

    def _on_datagram(self, d: _Direction, data: bytes) -> None:
        if self._closed:
            return
        if self.tap is not None and d.socket.transport is not None:
            d.socket.transport.sendto(data, self.tap)
        kind, authentic = self._classifier.classify(data)
        self.stats.add(d.name, kind, "received")
        if authentic:
            self._injector.record(d.name, data)
        if kind == "decision_new":
            self.new_decisions += 1
            self._wake()
        f = d.faults.decide(len(data))
        if f.drop:
            self.stats.add(d.name, kind, "dropped")
            return
        self.stats.add(d.name, kind, "forwarded")
        if f.bits:
            data = flip_bits(data, f.bits)
            self.stats.add(d.name, kind, "corrupted")
        copies = 2 if f.duplicate else 1
        if f.duplicate:
            self.stats.add(d.name, kind, "duplicated")
        if f.hold_s is not None and len(d.held) < MAX_HELD:
            self.stats.add(d.name, kind, "reordered")
            for _ in range(copies):
                self._hold(d, data, f.hold_s)
            return
        if f.delay_s is not None and len(self._delayed) < MAX_DELAYED:
            self.stats.add(d.name, kind, "delayed")
            for _ in range(copies):
                self._later(f.delay_s, self._forward, d, data)
            return
        for _ in range(copies):
            self._forward(d, data)

    def _hold(self, d: _Direction, data: bytes, hold_s: float) -> None:
        d.held_ids += 1
        key = d.held_ids
        d.held[key] = (data, asyncio.get_running_loop().call_later(hold_s, self._release_one, d, key))

    def _release_one(self, d: _Direction, key: int) -> None:
        """A held datagram whose hold time ran out before a later datagram released it."""
        held = d.held.pop(key, None)
        if held is not None:
            self._send(d, held[0])

    def _forward(self, d: _Direction, data: bytes) -> None:
        """Send a pass-through datagram, then release every datagram held back before it."""
        self._send(d, data)
        for key in list(d.held):
            held, handle = d.held.pop(key)
            handle.cancel()
            self._send(d, held)

    def _later(self, delay_s: float, fn: Callable[..., None], *args: object) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._delayed.discard(handle)
            fn(*args)

        handle = loop.call_later(delay_s, fire)
        self._delayed.add(handle)

    def _send(self, d: _Direction, data: bytes, to: Address | None = None) -> None:
        target = to or d.target
        if self._closed or target is None or d.socket.transport is None:
            return
        d.socket.transport.sendto(data, target)

    def _wake(self) -> None:
        keep = []
        for n, fut in self._waiters:
            if self.new_decisions >= n:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((n, fut))
        self._waiters = keep
