"""A seeded UDP fault proxy between the brain and the executor, for ``tandem chaos`` (issue #3 §3).

Two directions, each one loopback socket that receives and forwards:

* ``decisions``: the brain's ``decision_addr`` points at :attr:`ChaosProxy.decision_addr`; what
  arrives (decisions, replay requests, brain heartbeats) is forwarded to the executor's bind address;
* ``confirmations``: the executor's ``confirm_addr`` points at :attr:`ChaosProxy.confirm_addr`;
  what arrives (confirmations, executor heartbeats) is forwarded to the brain's bind address.

Every pass-through datagram is first **classified** (:class:`Classifier`) with the real secret —
``decision_new`` / ``decision_retransmit`` (its ``decision_id`` was seen before),
``confirmation`` / ``confirmation_resent`` (its ``seq`` was seen before), ``replay_request``,
``heartbeat``, or ``other`` if it does not decode — and then meets the faults a seeded
:class:`FaultModel` draws for it, in this order: **loss**; **corruption** (1–3 random bits
flipped); **duplication** (the same bytes sent twice); **reordering** (held back and released
right after the next datagram forwarded in that direction, or after 2–50 ms if none comes) or
else **delay** (extra latency up to ``delay_max_ms``).

On top of that traffic the proxy **injects**, at seeded exponential intervals, into each
direction's receiver:

* forged datagrams (``forged_per_s``): half random bytes of a message's exact size behind a
  plausible ``version, type`` prefix, half correctly encoded random messages tagged with
  **another** secret — both must fail the receiver's tag check;
* replayed datagrams (``replayed_per_s``): byte copies of authentic datagrams seen earlier in
  that direction, half picked among the last 8 ("soon"), half among the last 512 ("after a while");
* reflected datagrams (``reflected_per_s``): copies of authentic datagrams sent back to the
  side that sent them (SPEC §10.4: dropped as ``direction``).

With a **tap** (:attr:`ChaosProxy.tap`, a loopback address), a copy of every pass-through
datagram, as received, is sent there before any fault: it stands for an attacker's packet capture,
feeding the keyless flooder (:mod:`testbed.flood`) the authentic datagrams it re-sends.

Classification decodes with a freshness window of ±2^62 ns, i.e. it ignores freshness: the
proxy must classify datagrams the receiver may call stale (an old incarnation's, a late
duplicate) rather than guess, and freshness is the receiver's business.

Determinism: each direction draws its faults from its own ``random.Random`` seeded with
``(seed, direction)``, a fixed number of draws per datagram, so for a given seed the k-th
datagram of a direction always meets the same faults (timing only decides which datagram is
k-th); the same seed and input sequence give the same deliveries. Injections have streams of
their own, so their timing never shifts the fault decisions; which earlier datagram a replay
copies depends on what has arrived by then, i.e. on asyncio timing.

Bounds: at most :data:`MAX_DELAYED` datagrams waiting on a delay (beyond that they are forwarded
at once), :data:`MAX_HELD` held for reordering per direction, :data:`REPLAY_RING` kept for
replays, :data:`MAX_TRACKED_IDS` decision ids and seqs remembered for classification. Sockets
bind to 127.0.0.1 only. No threads: one ``DatagramProtocol`` per direction and loop timers.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from protocol import (
    MESSAGE_SIZES,
    PROTOCOL_VERSION,
    Codec,
    DecisionReason,
    ExecutionConfirmation,
    Heartbeat,
    Instrument,
    Intent,
    MessageType,
    RejectCode,
    RemoteProtocolError,
    ReplayRequest,
    Role,
    Side,
    Status,
    TradeDecision,
    derive_key,
)

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
DIRECTIONS: Final = ("decisions", "confirmations")
"""``decisions`` = brain → executor, ``confirmations`` = executor → brain."""
KINDS: Final = (
    "decision_new", "decision_retransmit", "confirmation", "confirmation_resent", "replay_request", "heartbeat",
    "other",
)  # fmt: skip
ACTIONS: Final = (
    "received", "forwarded", "dropped", "duplicated", "reordered", "delayed", "corrupted",
    "forged_random", "forged_other_secret", "replayed", "reflected",
)  # fmt: skip
"""Counter names. For pass-through traffic ``received == forwarded + dropped``; ``duplicated``
counts the extra copies; the last four count injected datagrams (by message kind)."""

MAX_DELAYED: Final = 1024
MAX_HELD: Final = 16
REPLAY_RING: Final = 512
REPLAY_RECENT: Final = 8
MAX_TRACKED_IDS: Final = 1_000_000
REORDER_HOLD_S: Final = (0.002, 0.05)
"""A held datagram is released after the next one, or after this many seconds (uniform)."""
_IGNORE_FRESHNESS_NS: Final = 2**62


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Fault probabilities per pass-through datagram (0..1) and injection rates per direction (/s).

    ``delay_max_ms`` bounds the extra latency of a delayed datagram (uniform in 0..max).
    """

    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    corrupt: float = 0.0
    delay: float = 0.0
    delay_max_ms: float = 50.0
    forged_per_s: float = 0.0
    replayed_per_s: float = 0.0
    reflected_per_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder", "corrupt", "delay"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in 0..1, got {getattr(self, name)}")
        for name in ("delay_max_ms", "forged_per_s", "replayed_per_s", "reflected_per_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True, slots=True)
class Faults:
    """What happens to one pass-through datagram.

    Attributes:
        drop: lost; nothing else applies.
        bits: bit positions (0 = LSB of byte 0) to flip before forwarding; empty = intact.
        duplicate: send the (possibly corrupted) bytes twice.
        hold_s: reorder: held back, released after the next datagram or after this many seconds.
        delay_s: extra latency, seconds (only when not held).
    """

    drop: bool = False
    bits: tuple[int, ...] = ()
    duplicate: bool = False
    hold_s: float | None = None
    delay_s: float | None = None


class FaultModel:
    """Draws :class:`Faults` for each datagram from one seeded stream (sans-IO, no clock).

    Every call consumes exactly eleven ``random()`` draws whatever it decides, and the datagram's
    size only scales the bit positions, so the faults of the k-th datagram are a function of the
    seed and k alone: timing can change which datagram is k-th, never what happens to it.
    """

    def __init__(self, rates: FaultRates, rng: random.Random) -> None:
        self.rates = rates
        self._rng = rng

    def decide(self, size: int) -> Faults:
        """The faults for a datagram of ``size`` bytes."""
        r, p = self._rng, self.rates
        lost, corrupt, dup, reorder, delayed = (r.random() < q for q in (p.loss, p.corrupt, p.duplicate, p.reorder, p.delay))
        n_bits = 1 + int(r.random() * 3)
        hold_s = REORDER_HOLD_S[0] + r.random() * (REORDER_HOLD_S[1] - REORDER_HOLD_S[0])
        delay_s = r.random() * p.delay_max_ms / 1e3
        # three positions drawn; a repeated one is flipped once (so rarely fewer bits than n_bits)
        picks = [int(r.random() * size * 8) for _ in range(3)][:n_bits]
        if lost:
            return Faults(drop=True)
        return Faults(
            bits=tuple(dict.fromkeys(picks)) if corrupt and size else (),
            duplicate=dup,
            hold_s=hold_s if reorder else None,
            delay_s=delay_s if delayed and not reorder else None,
        )


def flip_bits(data: bytes, bits: tuple[int, ...]) -> bytes:
    """``data`` with each listed bit inverted (bit ``i`` is bit ``i % 8`` of byte ``i // 8``)."""
    out = bytearray(data)
    for b in bits:
        out[b // 8] ^= 1 << (b % 8)
    return bytes(out)


class Classifier:
    """Names a datagram's kind with the real secret, ignoring freshness (module docstring)."""

    def __init__(self, secret: bytes) -> None:
        self._codec = Codec(derive_key(secret), max_age_ns=_IGNORE_FRESHNESS_NS, max_skew_ns=_IGNORE_FRESHNESS_NS)
        self._decisions: set[int] = set()
        self._seqs: set[int] = set()

    def classify(self, data: bytes) -> tuple[str, bool]:
        """``(kind, authentic)`` of one datagram; remembers decision ids and seqs it has seen."""
        try:
            msg = self._codec.decode(data, time.time_ns())
        except RemoteProtocolError:
            return "other", False
        if isinstance(msg, TradeDecision):
            return _seen(self._decisions, msg.decision_id, "decision_new", "decision_retransmit"), True
        if isinstance(msg, ExecutionConfirmation):
            return _seen(self._seqs, msg.seq, "confirmation", "confirmation_resent"), True
        if isinstance(msg, ReplayRequest):
            return "replay_request", True
        return "heartbeat", True


def _seen(seen: set[int], key: int, new: str, old: str) -> str:
    if key in seen:
        return old
    if len(seen) < MAX_TRACKED_IDS:
        seen.add(key)
    return new


class ProxyStats:
    """Counters keyed ``(direction, kind, action)``; see :data:`ACTIONS`."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()

    def add(self, direction: str, kind: str, action: str, n: int = 1) -> None:
        self.counts[(direction, kind, action)] += n

    def total(self, action: str, direction: str | None = None, kind: str | None = None) -> int:
        """Sum of one action, optionally for one direction and/or kind."""
        return sum(
            n for (d, k, a), n in self.counts.items()
            if a == action and (direction is None or d == direction) and (kind is None or k == kind)
        )  # fmt: skip

    def by_kind(self, action: str, direction: str | None = None) -> dict[str, int]:
        """``{kind: n}`` for one action (optionally one direction), sorted by kind, zeros omitted."""
        out: Counter[str] = Counter()
        for (d, k, a), n in self.counts.items():
            if a == action and (direction is None or d == direction):
                out[k] += n
        return {k: n for k, n in sorted(out.items()) if n}

    def as_dict(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{direction: {action: {kind: n}}}`` (JSON-friendly)."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (d, k, a), n in sorted(self.counts.items()):
            out.setdefault(d, {}).setdefault(a, {})[k] = n
        return out


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
    """One direction's socket, fault stream, held and recorded datagrams."""

    def __init__(self, name: str, rates: FaultRates, seed: int, target: Address | None) -> None:
        self.name = name
        self.target = target
        self.faults = FaultModel(rates, random.Random(f"{seed}:{name}:faults"))
        self.inject_rng = random.Random(f"{seed}:{name}:inject")
        self.socket = _Socket(lambda data: None)
        self.held: dict[int, tuple[bytes, asyncio.TimerHandle]] = {}  # insertion-ordered
        self.held_ids = 0
        self.recorded: deque[tuple[str, bytes]] = deque(maxlen=REPLAY_RING)  # (message kind, bytes)


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
        self._forger = Codec(derive_key(b"not the bus secret: " + secret))
        self._dirs = {
            "decisions": _Direction("decisions", rates, seed, executor),
            "confirmations": _Direction("confirmations", rates, seed, brain),
        }
        self._delayed: set[asyncio.TimerHandle] = set()
        self._injectors: list[asyncio.TimerHandle] = []
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
        for d in self._dirs.values():
            for action, rate in (("forged", self.rates.forged_per_s), ("replayed", self.rates.replayed_per_s),
                                 ("reflected", self.rates.reflected_per_s)):  # fmt: skip
                if rate > 0:
                    self._schedule_injection(d, action, rate)

    def close(self) -> None:
        """Stop injecting, drop held and delayed datagrams, close the sockets."""
        self._closed = True
        for h in (*self._injectors, *self._delayed, *(h for d in self._dirs.values() for _, h in d.held.values())):
            h.cancel()
        self._injectors.clear()
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
            d.recorded.append((MessageType(data[1]).name.lower(), data))
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

    # -- injection --------------------------------------------------------------------------

    def _schedule_injection(self, d: _Direction, action: str, rate: float) -> None:
        rng = random.Random(f"{self.seed}:{d.name}:{action}:schedule")
        loop = asyncio.get_running_loop()

        def fire() -> None:
            if self._closed:
                return
            getattr(self, f"_inject_{action}")(d)
            self._injectors[slot] = loop.call_later(rng.expovariate(rate), fire)

        slot = len(self._injectors)
        self._injectors.append(loop.call_later(rng.expovariate(rate), fire))

    def _inject_forged(self, d: _Direction) -> None:
        r = d.inject_rng
        mtype = r.choice(list(MessageType))
        if r.random() < 0.5:
            data = bytes((PROTOCOL_VERSION, mtype)) + r.randbytes(MESSAGE_SIZES[mtype] - 2)
            action = "forged_random"
        else:
            data = self._forger.encode(_random_message(mtype, r, time.time_ns()), sent_at_ns=time.time_ns())
            action = "forged_other_secret"
        self.stats.add(d.name, mtype.name.lower(), action)
        self._send(d, data)

    def _inject_replayed(self, d: _Direction) -> None:
        picked = self._pick_recorded(d)
        if picked is not None:
            self.stats.add(d.name, picked[0], "replayed")
            self._send(d, picked[1])

    def _inject_reflected(self, d: _Direction) -> None:
        """Send a copy of this direction's traffic back to its sender (the other direction's target)."""
        picked = self._pick_recorded(d)
        other = self._dirs["confirmations" if d.name == "decisions" else "decisions"]
        if picked is not None and other.target is not None:
            self.stats.add(d.name, picked[0], "reflected")
            self._send(other, picked[1])

    @staticmethod
    def _pick_recorded(d: _Direction) -> tuple[str, bytes] | None:
        if not d.recorded:
            return None
        r = d.inject_rng
        recent = r.random() < 0.5
        n = len(d.recorded)
        i = n - 1 - r.randrange(min(n, REPLAY_RECENT)) if recent else r.randrange(n)
        return d.recorded[i]


def _random_message(
    mtype: MessageType, r: random.Random, now_ns: int
) -> TradeDecision | ExecutionConfirmation | ReplayRequest | Heartbeat:
    """A valid, plausible message with random fields, stamped ``now_ns`` (to be tagged with a wrong key)."""
    inst = Instrument.symbol("BTC-PERP")
    if mtype is MessageType.DECISION:
        return TradeDecision(
            decision_id=r.randrange(1, 1 << 16), instrument=inst, side=r.choice(list(Side)), intent=Intent.OPEN,
            reason=DecisionReason.SIGNAL, quantity=r.uniform(0.001, 10.0), reference_price=r.uniform(1e3, 1e5),
            max_slippage_bps=50, created_at_ns=now_ns, expires_at_ns=now_ns + 10**10, market_ts_ns=now_ns,
        )  # fmt: skip
    if mtype is MessageType.CONFIRMATION:
        return ExecutionConfirmation(
            decision_id=r.randrange(1, 1 << 16), seq=r.randrange(1, 1 << 16), instrument=inst,
            side=r.choice(list(Side)), intent=Intent.OPEN, status=Status.FILLED, reject_code=RejectCode.NONE,
            executed_qty=r.uniform(0.001, 10.0), avg_price=r.uniform(1e3, 1e5), fee=r.uniform(0, 5),
            executed_at_ns=now_ns, sent_at_ns=now_ns,
        )  # fmt: skip
    if mtype is MessageType.REPLAY_REQUEST:
        return ReplayRequest(from_seq=r.randrange(1, 1 << 16), sent_at_ns=now_ns)
    return Heartbeat(role=r.choice(list(Role)), last_seq=r.randrange(0, 1 << 16), incarnation=r.getrandbits(64),
                     sent_at_ns=now_ns)  # fmt: skip
