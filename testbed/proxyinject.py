"""Datagrams the chaos proxy injects on top of the traffic it passes: forged, replayed, reflected.

At seeded exponential intervals (rates per direction and second, :class:`~testbed.proxyfaults.FaultRates`),
into each direction's receiver:

* forged datagrams (``forged_per_s``): half random bytes of a message's exact size behind a
  plausible ``version, type`` prefix, half correctly encoded random messages tagged with
  **another** secret — both must fail the receiver's tag check;
* replayed datagrams (``replayed_per_s``): byte copies of authentic datagrams seen earlier in
  that direction, half picked among the last :data:`REPLAY_RECENT` ("soon"), half among the last
  :data:`REPLAY_RING` ("after a while");
* reflected datagrams (``reflected_per_s``): copies of authentic datagrams sent back to the
  side that sent them (SPEC §10.4: dropped as ``direction``).

Determinism: injections have streams of their own (seeded ``(seed, direction, "inject")`` for the
content and ``(seed, direction, action, "schedule")`` for the timing), so their timing never shifts
the fault decisions (:mod:`testbed.proxyfaults`); which earlier datagram a replay copies depends on
what has arrived by then, i.e. on asyncio timing.

Bounds: :data:`REPLAY_RING` authentic datagrams kept per direction for replays. Counted in
:class:`~testbed.proxytraffic.ProxyStats` under the actions ``forged_random``,
``forged_other_secret``, ``replayed`` and ``reflected``, by message kind.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from protocol import (
    MESSAGE_SIZES,
    PROTOCOL_VERSION,
    BeliefMode,
    Codec,
    DecisionReason,
    ExecutionConfirmation,
    Heartbeat,
    Instrument,
    Intent,
    MessageType,
    RejectCode,
    ReplayRequest,
    Role,
    Side,
    Status,
    TradeDecision,
    derive_key,
)

from .proxyfaults import FaultRates
from .proxytraffic import DIRECTIONS, ProxyStats

__all__ = ["REPLAY_RECENT", "REPLAY_RING", "Injector", "random_message"]

REPLAY_RING: Final = 512
REPLAY_RECENT: Final = 8


class Injector:
    """Schedules and makes the injected datagrams of both directions (module docstring).

    Args:
        secret: the bus secret; forged datagrams are tagged with a key derived from something else.
        rates: the injection rates (``forged_per_s``, ``replayed_per_s``, ``reflected_per_s``).
        seed: seeds the injection streams.
        stats: where injections are counted.
        send: ``send(direction, data)`` sends through that direction's socket to its receiver.
        has_target: ``has_target(direction)``: does that direction have a receiver yet?
    """

    def __init__(self, secret: bytes, rates: FaultRates, seed: int, stats: ProxyStats,
                 send: Callable[[str, bytes], None], has_target: Callable[[str], bool]) -> None:
        self.rates = rates
        self.seed = seed
        self.stats = stats
        self._send = send
        self._has_target = has_target
        self._forger = Codec(derive_key(b"not the bus secret: " + secret))
        self._rng = {name: random.Random(f"{seed}:{name}:inject") for name in DIRECTIONS}
        self._recorded: dict[str, deque[tuple[str, bytes]]] = {
            name: deque(maxlen=REPLAY_RING) for name in DIRECTIONS  # (message kind, bytes)
        }
        self._timers: list[asyncio.TimerHandle] = []
        self._closed = False

    def record(self, direction: str, data: bytes) -> None:
        """Keep an authentic pass-through datagram of ``direction`` for replays and reflections."""
        self._recorded[direction].append((MessageType(data[1]).name.lower(), data))

    def start(self) -> None:
        """Start the injection schedules (on the running loop)."""
        for name in DIRECTIONS:
            for action, rate in (("forged", self.rates.forged_per_s), ("replayed", self.rates.replayed_per_s),
                                 ("reflected", self.rates.reflected_per_s)):  # fmt: skip
                if rate > 0:
                    self._schedule(name, action, rate)

    def close(self) -> None:
        """Stop injecting."""
        self._closed = True
        for h in self._timers:
            h.cancel()
        self._timers.clear()

    def _schedule(self, direction: str, action: str, rate: float) -> None:
        rng = random.Random(f"{self.seed}:{direction}:{action}:schedule")
        loop = asyncio.get_running_loop()

        def fire() -> None:
            if self._closed:
                return
            getattr(self, f"_inject_{action}")(direction)
            self._timers[slot] = loop.call_later(rng.expovariate(rate), fire)

        slot = len(self._timers)
        self._timers.append(loop.call_later(rng.expovariate(rate), fire))

    def _inject_forged(self, direction: str) -> None:
        r = self._rng[direction]
        mtype = r.choice(list(MessageType))
        if r.random() < 0.5:
            data = bytes((PROTOCOL_VERSION, mtype)) + r.randbytes(MESSAGE_SIZES[mtype] - 2)
            action = "forged_random"
        else:
            data = self._forger.encode(random_message(mtype, r, time.time_ns()), sent_at_ns=time.time_ns())
            action = "forged_other_secret"
        self.stats.add(direction, mtype.name.lower(), action)
        self._send(direction, data)

    def _inject_replayed(self, direction: str) -> None:
        picked = self._pick_recorded(direction)
        if picked is not None:
            self.stats.add(direction, picked[0], "replayed")
            self._send(direction, picked[1])

    def _inject_reflected(self, direction: str) -> None:
        """Send a copy of this direction's traffic back to its sender (the other direction's target)."""
        picked = self._pick_recorded(direction)
        other = "confirmations" if direction == "decisions" else "decisions"
        if picked is not None and self._has_target(other):
            self.stats.add(direction, picked[0], "reflected")
            self._send(other, picked[1])

    def _pick_recorded(self, direction: str) -> tuple[str, bytes] | None:
        recorded = self._recorded[direction]
        if not recorded:
            return None
        r = self._rng[direction]
        recent = r.random() < 0.5
        n = len(recorded)
        i = n - 1 - r.randrange(min(n, REPLAY_RECENT)) if recent else r.randrange(n)
        return recorded[i]


def random_message(
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
                     mode=r.choice(list(BeliefMode)), entries_allowed=r.random() < 0.5,
                     entry_scale_bp=r.randrange(0, 10_001), sent_at_ns=now_ns)  # fmt: skip
