"""Hostile datagrams: a seeded generator of datagrams an endpoint must drop (issue #3 §4).

:class:`HostileDatagrams` makes random bytes, random bytes behind a valid prefix, mutations of
valid datagrams of every type (bit flips, byte substitutions, truncations, extensions, type and
version changes), valid messages tagged with another secret, authentic ones with a field out of
range, authentic ones stamped outside the freshness window, and authentic fresh ones sent to the
wrong side of the link. Each comes with the reason ``protocol/SPEC.md`` §8 says it must be
rejected for (:class:`Kind` lists the classes). Used by ``tandem fuzz`` and the tests.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import math
import random
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from protocol import (
    DEFAULT_MAX_AGE_NS,
    DEFAULT_MAX_SKEW_NS,
    MESSAGE_SIZES,
    PROTOCOL_VERSION,
    RECONCILE_ID_BASE,
    TAG_SIZE,
    BeliefMode,
    Codec,
    DecisionReason,
    ExecutionConfirmation,
    Heartbeat,
    Instrument,
    InstrumentKind,
    Intent,
    Message,
    MessageType,
    RejectCode,
    RejectReason,
    ReplayRequest,
    Role,
    Side,
    Status,
    TradeDecision,
    derive_key,
)

__all__ = ["INSTRUMENT", "HostileDatagrams", "Kind", "Target", "expected_reason"]


INSTRUMENT = Instrument.symbol("BTC-PERP")
_UNKNOWN_TYPES = [t for t in range(256) if t not in MESSAGE_SIZES]
_U64_MAX = 2**64 - 1
_U32_MAX = 2**32 - 1
_RECONCILED_LEGS = ((Intent.OPEN, Side.BUY), (Intent.CLOSE, Side.SELL), (Intent.REDUCE, Side.SELL),
                    (Intent.OPEN, Side.SELL), (Intent.CLOSE, Side.BUY), (Intent.REDUCE, Side.BUY))  # shorts: v6
_S = 1_000_000_000


class Target(str, enum.Enum):
    """The endpoint a datagram is sent to."""

    EXECUTOR = "executor"
    BRAIN = "brain"


class Kind(str, enum.Enum):
    """Classes of hostile datagrams, with the reason (SPEC §8) each must be rejected for."""

    RANDOM = "random"  # random bytes, length 0..200: size, version, type or auth by its prefix
    RANDOM_SIZED = "random_sized"  # valid version/type prefix, exact size, random rest: auth
    BIT_FLIP = "bit_flip"  # one bit of a valid datagram flipped: by prefix, else auth
    MULTI_BIT_FLIP = "multi_bit_flip"  # 2..16 distinct bits flipped: by prefix, else auth
    BYTE_SUBSTITUTION = "byte_substitution"  # 1..8 bytes replaced by other values: by prefix, else auth
    TRUNCATION = "truncation"  # a valid datagram cut short (0..size-1 bytes): size
    EXTENSION = "extension"  # a valid datagram with 1..64 random bytes appended: size
    TYPE_SWAP = "type_swap"  # type byte changed: size (another known type) or type (unknown)
    VERSION_CHANGE = "version_change"  # version byte changed: version
    OTHER_SECRET = "other_secret"  # a valid message tagged with another secret: auth
    BAD_FIELD = "bad_field"  # right secret, one field out of range (SPEC §4-§6): field
    STALE = "stale"  # right secret, stamped outside the freshness window (SPEC §9): stale
    WRONG_DIRECTION = "wrong_direction"  # right secret, fresh, for the other side (SPEC §10.4): direction


def expected_reason(data: bytes) -> RejectReason:
    """The reason for a datagram whose tag does not verify: SPEC §8 checks 1-5, in order."""
    if len(data) < 2:
        return RejectReason.SIZE
    if data[0] != PROTOCOL_VERSION:
        return RejectReason.VERSION
    size = MESSAGE_SIZES.get(data[1])
    if size is None:
        return RejectReason.TYPE
    if len(data) != size:
        return RejectReason.SIZE
    return RejectReason.AUTH


# -- field breakers: each turns the body of a valid datagram into one that breaks a SPEC rule ----


def _not_in(enum_cls: type[enum.IntEnum]) -> list[int]:
    return [v for v in range(256) if v not in {m.value for m in enum_cls}]


def _reserved(allowed: int) -> list[int]:
    return [v for v in range(256) if v & ~allowed]


_BAD = {name: _not_in(cls) for name, cls in (("side", Side), ("intent", Intent), ("reason", DecisionReason),
        ("status", Status), ("code", RejectCode), ("role", Role), ("mode", BeliefMode))}  # fmt: skip
_BAD_SYMBOLS = (b"", b"BTC\0USDT", b"BTC USDT", b"BTC/\x7fUSDT", b"\xff" * 32, b"\x01BTC")
Breaker = Callable[[random.Random, bytearray], None]


def _put(fmt: str, off: int, value: Callable[[random.Random, bytearray], Any]) -> Breaker:
    return lambda r, b: struct.pack_into("<" + fmt, b, off, value(r, b))


def _choice(values: list[int] | tuple[Any, ...]) -> Callable[[random.Random, bytearray], Any]:
    return lambda r, b: r.choice(values)


def _bad_positive_float(r: random.Random, b: bytearray) -> float:
    return r.choice((math.nan, math.inf, -math.inf, 0.0, -0.0, -r.uniform(1e-9, 1e9)))


def _bad_nonneg_float(r: random.Random, b: bytearray) -> float:
    return r.choice((math.nan, math.inf, -math.inf, -r.uniform(1e-9, 1e9)))


def _bad_symbol(r: random.Random, b: bytearray) -> None:
    b[2] = 0  # flag MINT clear: the 32 bytes must be a printable symbol
    b[16:48] = r.choice(_BAD_SYMBOLS).ljust(32, b"\0")


def _bad_venue_padding(r: random.Random, b: bytearray) -> None:
    b[7] = r.randint(0, 15)
    b[96 + 15] = r.randint(1, 255)  # a nonzero byte after the length


def _executed_but_refused(r: random.Random, b: bytearray) -> None:
    b[5] = r.choice((Status.REJECTED, Status.EXPIRED, Status.FAILED))
    b[6] = r.randint(1, 9)
    struct.pack_into("<d", b, 64, r.uniform(1e-9, 10.0))


def _filled_with_code(r: random.Random, b: bytearray) -> None:
    b[5], b[6] = Status.FILLED, r.randint(1, 9)  # FILLED needs reject_code NONE (and qty, price > 0)


def _accepted_but_traded(r: random.Random, b: bytearray) -> None:
    b[4], b[5], b[6] = Intent.PROTECT, Status.ACCEPTED, 0  # ACCEPTED trades nothing (SPEC §6.2)
    struct.pack_into("<d", b, 64, r.uniform(1e-9, 10.0))


def _slippage_flag_not_executed(r: random.Random, b: bytearray) -> None:
    b[2] |= 0x04  # SLIPPAGE_OVER_LIMIT: executed statuses only (SPEC §4, §6.2)
    b[4], b[5], b[6] = Intent.CLOSE, r.choice((Status.REJECTED, Status.EXPIRED, Status.FAILED)), r.randint(1, 9)
    b[7] = 0
    b[64:88] = bytes(24)  # qty, price, fee 0: only the flag breaks the rule
    b[96:112] = bytes(16)


def _small_id(r: random.Random, b: bytes) -> int:
    """A decision's id: 1 .. 2**63 - 1."""
    return r.randint(1, RECONCILE_ID_BASE - 1)


def _executor_id(r: random.Random, b: bytes) -> int:
    """An executor-issued id (reconciled confirmations only, v4): 2**63 .. 2**64 - 1."""
    return r.randint(RECONCILE_ID_BASE, _U64_MAX)


def _reconciled_small_id(r: random.Random, b: bytearray) -> None:
    b[2] |= 0x08  # RECONCILED needs an executor-issued decision_id >= 2**63 (SPEC §6.2, v4)
    struct.pack_into("<Q", b, 16, _small_id(r, b))


def _executor_id_unflagged(r: random.Random, b: bytearray) -> None:
    b[2] &= ~0x08  # a decision_id >= 2**63 needs RECONCILED
    struct.pack_into("<Q", b, 16, _executor_id(r, b))


def _reconciled_partial(r: random.Random, b: bytearray) -> None:
    b[2] |= 0x08  # RECONCILED needs FILLED: here an otherwise valid PARTIALLY_FILLED adoption
    struct.pack_into("<Q", b, 16, _executor_id(r, b))
    b[3], b[4], b[5], b[6] = Side.BUY, Intent.OPEN, Status.PARTIALLY_FILLED, 0
    struct.pack_into("<dd", b, 64, r.uniform(1e-6, 10.0), r.uniform(0.01, 1e5))


def _reconciled_wrong_leg(r: random.Random, b: bytearray) -> None:
    b[2] |= 0x08  # a reconciled FILLED is OPEN, CLOSE or REDUCE (either side since v6), never PROTECT
    struct.pack_into("<Q", b, 16, _executor_id(r, b))
    b[3], b[4] = r.choice(((Side.BUY, Intent.PROTECT), (Side.SELL, Intent.PROTECT)))
    b[5], b[6] = Status.FILLED, 0
    struct.pack_into("<dd", b, 64, r.uniform(1e-6, 10.0), r.uniform(0.01, 1e5))


def _protect_without_stop(r: random.Random, b: bytearray) -> None:
    b[4] = Intent.PROTECT  # a PROTECT needs stop_price > 0 (SPEC §6.1)
    struct.pack_into("<d", b, 88, r.choice((0.0, -0.0)))


_FIELD_BREAKERS: dict[int, tuple[Breaker, ...]] = {
    MessageType.DECISION: (
        _put("B", 2, _choice(_reserved(0x01))), _put("B", 3, _choice(_BAD["side"])),
        _put("B", 4, _choice(_BAD["intent"])), _put("B", 5, _choice(_BAD["reason"])),
        _put("H", 6, lambda r, b: r.randint(10_001, 65_535)), _put("Q", 8, lambda r, b: 0),
        _put("Q", 8, _executor_id), _bad_symbol,
        _put("d", 48, _bad_positive_float), _put("d", 56, _bad_positive_float),
        _put("Q", 72, lambda r, b: r.randint(0, struct.unpack_from("<Q", b, 64)[0])),  # expires <= created
        _put("d", 88, _bad_nonneg_float), _protect_without_stop,
    ),
    MessageType.CONFIRMATION: (
        _put("B", 2, _choice(_reserved(0x0F))), _put("B", 3, _choice(_BAD["side"])),
        _put("B", 4, _choice(_BAD["intent"])), _put("B", 5, _choice(_BAD["status"])),
        _put("B", 6, _choice(_BAD["code"])), _put("B", 7, lambda r, b: r.randint(17, 255)),
        _bad_venue_padding,
        _put("Q", 16, lambda r, b: 0), _put("Q", 24, lambda r, b: 0), _put("d", 64, _bad_nonneg_float),
        _put("d", 72, _bad_nonneg_float), _put("d", 80, _choice((math.nan, math.inf, -math.inf))),
        _executed_but_refused, _filled_with_code, _accepted_but_traded, _slippage_flag_not_executed,
        _reconciled_small_id, _executor_id_unflagged, _reconciled_partial, _reconciled_wrong_leg,
    ),
    MessageType.REPLAY_REQUEST: (
        _put("B", 2, _choice(_reserved(0))), _put("B", 3, lambda r, b: r.randint(1, 255)),
        _put("I", 4, lambda r, b: r.randint(1, 2**32 - 1)), _put("Q", 16, lambda r, b: 0),
    ),
    MessageType.HEARTBEAT: (  # bytes 4..7 are in_flight since v3: any value is valid
        _put("B", 2, _choice(_reserved(0))), _put("B", 3, _choice(_BAD["role"])),
        _put("B", 40, _choice(_BAD["mode"])), _put("B", 41, _choice(_reserved(0x03))),  # posture, v4
        _put("H", 42, lambda r, b: r.randint(10_001, 65_535)), _put("d", 48, _bad_nonneg_float),
    ),
}  # fmt: skip


# -- the generator ---------------------------------------------------------------------------


class HostileDatagrams:
    """Seeded source of datagrams that ``target`` must reject, each with its expected reason.

    Args:
        secret: the endpoints' bus secret (valid datagrams are encoded with it).
        target: which endpoint the datagrams are for (decides the wrong-direction messages).
        seed: the same seed gives the same classes and mutations (stamps follow ``clock``).
        samples: real messages seen on the link, mutated alongside generated ones.
        max_age_ns, max_skew_ns: the receiver's freshness window (SPEC §9).
        clock: wall clock, Unix ns.

    Attributes:
        sent: datagrams made so far, by :class:`Kind`.
        expected: datagrams made so far, by the :class:`RejectReason` they must be counted under.
    """

    def __init__(
        self,
        secret: bytes,
        target: Target,
        *,
        seed: int,
        samples: Iterable[Message] = (),
        max_age_ns: int = DEFAULT_MAX_AGE_NS,
        max_skew_ns: int = DEFAULT_MAX_SKEW_NS,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.target = target
        self._rng = r = random.Random(f"{seed}:{target.value}")
        self._key = derive_key(secret)
        self._codec = Codec(self._key)
        other = Codec(derive_key(secret + b"/not-the-secret/" + r.randbytes(16)))
        self._max_age_ns, self._max_skew_ns, self._clock = max_age_ns, max_skew_ns, clock
        now = clock()
        self._messages: list[Message] = list(samples) + [self._message(i, now) for i in range(256)]
        self._valid = [self._encode(self._codec, m, now) for m in self._messages]
        self._foreign = [self._encode(other, m, now) for m in self._messages]
        if target is Target.EXECUTOR:  # authentic, fresh, but for the brain
            self._wrong_way = [m for m in self._messages if isinstance(m, ExecutionConfirmation)
                               or (isinstance(m, Heartbeat) and m.role is Role.EXECUTOR)]  # fmt: skip
        else:
            self._wrong_way = [m for m in self._messages if isinstance(m, (TradeDecision, ReplayRequest))
                               or (isinstance(m, Heartbeat) and m.role is Role.BRAIN)]  # fmt: skip
        self._kinds = tuple(Kind)
        self._make = {k: getattr(self, "_" + k.value) for k in Kind}
        self.sent: Counter[Kind] = Counter()
        self.expected: Counter[RejectReason] = Counter()

    def batch(self, n: int) -> list[bytes]:
        """``n`` datagrams of randomly chosen kinds; counted in :attr:`sent` and :attr:`expected`."""
        out = []
        kinds, r = self._kinds, self._rng
        for _ in range(n):
            kind = kinds[r.randrange(len(kinds))]
            data, reason = self._make[kind]()
            self.sent[kind] += 1
            self.expected[reason] += 1
            out.append(data)
        return out

    def make(self, kind: Kind) -> tuple[bytes, RejectReason]:
        """One datagram of ``kind`` and the reason it must be rejected for (not counted)."""
        return self._make[kind]()

    # -- valid material ---------------------------------------------------------------------

    def _message(self, i: int, now: int) -> Message:
        r = self._rng
        mtype = i % 4
        symbol = r.choice(("BTC-PERP", "BTC/USDT", "SOL/USDC", "X", "A" * 32))
        inst = (
            Instrument(InstrumentKind.MINT, r.randbytes(32))
            if r.random() < 0.3
            else Instrument.symbol(symbol)
        )
        side, intent = r.choice(list(Side)), r.choice(list(Intent))
        if mtype == 0:
            ref = r.uniform(0.01, 1e5)
            priced = intent in (Intent.PROTECT, Intent.TAKE_PROFIT)  # a stop, a limit: > 0 (SPEC §6.1)
            stop = ref * r.uniform(0.5, 0.99) if priced or r.random() < 0.5 else 0.0
            if side is Side.SELL and intent is Intent.OPEN and stop:
                stop = ref * (ref / stop)  # a short entry's stop lies above its reference (v6)
            return TradeDecision(
                decision_id=r.randint(1, RECONCILE_ID_BASE - 1), instrument=inst, side=side, intent=intent,
                reason=r.choice(list(DecisionReason)), quantity=r.uniform(1e-6, 10.0),
                reference_price=ref, max_slippage_bps=r.randint(0, 10_000),
                created_at_ns=now, expires_at_ns=now + 10 * _S, market_ts_ns=now, stop_price=stop,
            )  # fmt: skip
        if mtype == 1:
            status = r.choice(list(Status))
            done = status.executed
            if status is Status.ACCEPTED:  # answers a PROTECT only, reject code NONE
                intent = Intent.PROTECT
            reconciled = status is Status.FILLED and r.random() < 0.25  # an executor's correction (v4)
            decision_id = _small_id(r, b"")
            if reconciled:
                intent, side = r.choice(_RECONCILED_LEGS)
                decision_id = _executor_id(r, b"")
            return ExecutionConfirmation(
                decision_id=decision_id, seq=r.randint(1, _U64_MAX), instrument=inst, side=side, intent=intent,
                status=status,
                reject_code=RejectCode(0 if status in (Status.FILLED, Status.ACCEPTED)
                                       else r.randint(1 - done, max(RejectCode))),
                executed_qty=r.uniform(1e-6, 10.0) if done else 0.0,
                avg_price=r.uniform(0.01, 1e5) if done else 0.0, fee=r.uniform(-1.0, 10.0) if done else 0.0,
                executed_at_ns=now if done else 0, venue_ref=r.randbytes(r.randint(1, 16)) if done else b"",
                venue_ref_truncated=done and r.random() < 0.5, reconciled=reconciled, sent_at_ns=now,
            )  # fmt: skip
        if mtype == 2:
            return ReplayRequest(from_seq=r.randint(1, _U64_MAX), sent_at_ns=now)
        return Heartbeat(
            r.choice(list(Role)), r.randint(0, _U64_MAX), r.randint(0, _U64_MAX),
            in_flight=r.randint(0, _U32_MAX), journal_id=r.randint(0, _U64_MAX), mode=r.choice(list(BeliefMode)),
            entries_allowed=r.random() < 0.5, kill_switch=r.random() < 0.2, entry_scale_bp=r.randint(0, 10_000),
            entry_cooldown_ms=r.randint(0, _U32_MAX), max_notional=r.choice((0.0, r.uniform(0.0, 1e6))),
            sent_at_ns=now,
        )  # fmt: skip

    @staticmethod
    def _encode(codec: Codec, msg: Message, stamp: int) -> bytes:
        if isinstance(msg, TradeDecision):
            expires = min(stamp + max(msg.expires_at_ns - msg.created_at_ns, 1), _U64_MAX)
            msg = dataclasses.replace(msg, created_at_ns=stamp, expires_at_ns=expires)
            return codec.encode(msg)
        return codec.encode(msg, sent_at_ns=stamp)

    def _original(self) -> bytes:
        return self._valid[self._rng.randrange(len(self._valid))]

    def _tag(self, body: bytes) -> bytes:
        return body + hashlib.blake2b(body, digest_size=TAG_SIZE, key=self._key).digest()

    # -- one method per Kind ----------------------------------------------------------------

    def _random(self) -> tuple[bytes, RejectReason]:
        data = self._rng.randbytes(self._rng.randint(0, 200))
        return data, expected_reason(data)

    def _random_sized(self) -> tuple[bytes, RejectReason]:
        mtype = self._rng.choice(list(MESSAGE_SIZES))
        data = bytes((PROTOCOL_VERSION, mtype)) + self._rng.randbytes(MESSAGE_SIZES[mtype] - 2)
        return data, RejectReason.AUTH

    def _flip(self, nbits: int) -> tuple[bytes, RejectReason]:
        data = bytearray(self._original())
        for bit in self._rng.sample(range(len(data) * 8), nbits):  # distinct bits: never the original
            data[bit >> 3] ^= 1 << (bit & 7)
        return bytes(data), expected_reason(data)

    def _bit_flip(self) -> tuple[bytes, RejectReason]:
        return self._flip(1)

    def _multi_bit_flip(self) -> tuple[bytes, RejectReason]:
        return self._flip(self._rng.randint(2, 16))

    def _byte_substitution(self) -> tuple[bytes, RejectReason]:
        r, data = self._rng, bytearray(self._original())
        for i in r.sample(range(len(data)), r.randint(1, 8)):
            data[i] ^= r.randint(1, 255)  # a nonzero xor: every chosen byte changes
        return bytes(data), expected_reason(data)

    def _truncation(self) -> tuple[bytes, RejectReason]:
        data = self._original()
        return data[: self._rng.randrange(len(data))], RejectReason.SIZE

    def _extension(self) -> tuple[bytes, RejectReason]:
        return self._original() + self._rng.randbytes(self._rng.randint(1, 64)), RejectReason.SIZE

    def _type_swap(self) -> tuple[bytes, RejectReason]:
        r, data = self._rng, bytearray(self._original())
        known = [t for t in MESSAGE_SIZES if t != data[1]]  # another size: half the swaps
        data[1] = r.choice(known) if r.random() < 0.5 else r.choice(_UNKNOWN_TYPES)
        return bytes(data), expected_reason(data)

    def _version_change(self) -> tuple[bytes, RejectReason]:
        data = bytearray(self._original())
        data[0] = (PROTOCOL_VERSION + self._rng.randint(1, 255)) % 256
        return bytes(data), RejectReason.VERSION

    def _other_secret(self) -> tuple[bytes, RejectReason]:
        return self._foreign[self._rng.randrange(len(self._foreign))], RejectReason.AUTH

    def _bad_field(self) -> tuple[bytes, RejectReason]:
        data = bytearray(self._original()[:-TAG_SIZE])
        self._rng.choice(_FIELD_BREAKERS[data[1]])(self._rng, data)
        return self._tag(bytes(data)), RejectReason.FIELD

    def _stale(self) -> tuple[bytes, RejectReason]:
        r, now = self._rng, self._clock()
        old, new = now - self._max_age_ns - 2 * _S, now + self._max_skew_ns + 2 * _S  # 2 s margins
        stamp = r.choice((
            r.randint(old - 10 * _S, old), r.randint(0, old), 0,  # just too old, long ago, epoch
            r.randint(new, new + 10 * _S), r.randint(new, _U64_MAX - 1),  # just too new, far future
        ))  # fmt: skip
        msg = self._messages[r.randrange(len(self._messages))]
        return self._encode(self._codec, msg, stamp), RejectReason.STALE

    def _wrong_direction(self) -> tuple[bytes, RejectReason]:
        msg = self._wrong_way[self._rng.randrange(len(self._wrong_way))]
        return self._encode(self._codec, msg, self._clock()), RejectReason.DIRECTION


# -- live endpoints --------------------------------------------------------------------------


