"""Sans-IO codec for protocol v6: bytes in, checked messages out; messages in, tagged bytes out.

Every datagram is checked in this order before any field is read: size (at least the 2-byte
prefix), version, type, exact size of that type, MAC tag, fields, freshness. The first failing
check raises its :class:`~protocol.errors.RemoteProtocolError`; see ``protocol/SPEC.md`` for the
byte tables and rules. Time is a parameter (``now_ns``), never read here.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Final

from .enums import BeliefMode, InstrumentKind, MessageType, Role
from .errors import (
    AuthenticationFailed,
    DatagramSizeError,
    InvalidField,
    LocalProtocolError,
    RejectReason,
    StaleDatagram,
    UnknownMessageType,
    VersionMismatch,
)
from .messages import (
    INSTRUMENT_SIZE,
    VENUE_REF_SIZE,
    ExecutionConfirmation,
    Heartbeat,
    Instrument,
    ReplayRequest,
    TradeDecision,
)

__all__ = [
    "CONFIRMATION_SIZE",
    "DECISION_SIZE",
    "HEARTBEAT_SIZE",
    "MESSAGE_SIZES",
    "REPLAY_REQUEST_SIZE",
    "DEFAULT_MAX_AGE_NS",
    "DEFAULT_MAX_SKEW_NS",
    "PROTOCOL_VERSION",
    "TAG_SIZE",
    "Codec",
    "Message",
    "derive_key",
    "framing_error",
]

PROTOCOL_VERSION: Final = 6
"""Version byte of every datagram; 4 since the heartbeat carries the executor's risk posture and
the confirmation the ``RECONCILED`` flag (SPEC changelog)."""
TAG_SIZE: Final = 16
"""Bytes of the BLAKE2b keyed-MAC tag that ends every datagram (128-bit security)."""

DEFAULT_MAX_AGE_NS: Final = 60 * 1_000_000_000
"""A datagram stamped more than this before ``now`` is stale (replay window, 60 s)."""
DEFAULT_MAX_SKEW_NS: Final = 5 * 1_000_000_000
"""A datagram stamped more than this after ``now`` is stale (allowed clock skew, 5 s)."""

FLAG_MINT: Final = 0x01
FLAG_VENUE_REF_TRUNCATED: Final = 0x02
FLAG_SLIPPAGE_OVER_LIMIT: Final = 0x04
FLAG_RECONCILED: Final = 0x08
"""Confirmation flag (since v4): a correction of the executor's ledger to the venue, not the outcome of a
decision; its ``decision_id`` is executor-issued (>= 2**63). SPEC.md §6.2, "Reconciliation"."""
_CONFIRMATION_FLAGS: Final = FLAG_MINT | FLAG_VENUE_REF_TRUNCATED | FLAG_SLIPPAGE_OVER_LIMIT | FLAG_RECONCILED

# Heartbeat byte 41, ``guard_flags`` (since v4; SPEC.md §6.4). Not the flags byte (2), which stays 0.
GUARD_ENTRIES_ALLOWED: Final = 0x01
GUARD_KILL_SWITCH: Final = 0x02
_GUARD_FLAGS: Final = GUARD_ENTRIES_ALLOWED | GUARD_KILL_SWITCH

# <  little-endian, no padding.  Body = everything the tag covers.
_DECISION_BODY = struct.Struct("<BBBBBBHQ32sddQQQd")
_CONFIRMATION_BODY = struct.Struct("<BBBBBBBBQQQ32sdddQ16s")
_REPLAY_BODY = struct.Struct("<BBBBIQQ")
_HEARTBEAT_BODY = struct.Struct("<BBBBIQQQQBBHId")
DECISION_SIZE: Final = _DECISION_BODY.size + TAG_SIZE
CONFIRMATION_SIZE: Final = _CONFIRMATION_BODY.size + TAG_SIZE
REPLAY_REQUEST_SIZE: Final = _REPLAY_BODY.size + TAG_SIZE
HEARTBEAT_SIZE: Final = _HEARTBEAT_BODY.size + TAG_SIZE
assert (DECISION_SIZE, CONFIRMATION_SIZE, REPLAY_REQUEST_SIZE, HEARTBEAT_SIZE) == (112, 128, 40, 72)

_MESSAGE_TYPES: Final = {t.value: t for t in MessageType}
MESSAGE_SIZES: Final = {
    MessageType.DECISION: DECISION_SIZE,
    MessageType.CONFIRMATION: CONFIRMATION_SIZE,
    MessageType.REPLAY_REQUEST: REPLAY_REQUEST_SIZE,
    MessageType.HEARTBEAT: HEARTBEAT_SIZE,
}
_KEY_PERSON: Final = b"tandem-bus-v1"
_PREFIX_SIZES: Final = {bytes([PROTOCOL_VERSION, t]): size for t, size in MESSAGE_SIZES.items()}
_TYPES: Final = frozenset(int(t) for t in MESSAGE_SIZES)
MEMO_SIZE: Final = 4096
"""Authenticated datagrams a :class:`Codec` remembers (see :meth:`Codec.decode`)."""

Message = TradeDecision | ExecutionConfirmation | ReplayRequest | Heartbeat


def derive_key(secret: bytes) -> bytes:
    """Derive the 32-byte MAC key from a shared secret of any length.

    ``BLAKE2b(secret, digest_size=32, person=b"tandem-bus-v1")`` (RFC 7693), so that secrets
    longer than BLAKE2b's 64-byte key limit work and the key is bound to this protocol.

    Raises:
        LocalProtocolError: the secret is empty.
    """
    if not secret:
        raise LocalProtocolError("bus secret must not be empty")
    return hashlib.blake2b(secret, digest_size=32, person=_KEY_PERSON).digest()


def framing_error(data: bytes) -> RejectReason | None:
    """The reason the framing checks (SPEC.md §8 steps 1–4: size, version, type, exact size) drop
    ``data``, or ``None`` when they pass — without raising, without reading the body, without the
    tag: the cheapest way to turn away garbage (one slice and one dict lookup when it passes).
    :meth:`Codec.decode` applies the same checks first, raising instead."""
    if _PREFIX_SIZES.get(data[:2]) == len(data):
        return None
    if len(data) < 2:
        return RejectReason.SIZE
    if data[0] != PROTOCOL_VERSION:
        return RejectReason.VERSION
    if data[1] not in _TYPES:
        return RejectReason.TYPE
    return RejectReason.SIZE


def _encode_instrument(instrument: Instrument) -> tuple[int, bytes]:
    flag = FLAG_MINT if instrument.kind is InstrumentKind.MINT else 0
    return flag, instrument.value.ljust(INSTRUMENT_SIZE, b"\0")


_instrument_cache: dict[tuple[int, bytes], Instrument] = {}


def _decode_instrument(flags: int, raw: bytes) -> Instrument:
    """Parse the 32 instrument bytes; validated instruments are cached (hot path)."""
    key = (flags & FLAG_MINT, raw)
    inst = _instrument_cache.get(key)
    if inst is None:
        if flags & FLAG_MINT:
            inst = Instrument(InstrumentKind.MINT, raw)
        else:  # an embedded NUL survives rstrip and fails validation
            inst = Instrument(InstrumentKind.SYMBOL, raw.rstrip(b"\0"))
        if len(_instrument_cache) >= 4096:  # bound memory against a flood of distinct values
            _instrument_cache.clear()
        _instrument_cache[key] = inst
    return inst


def _stamp(sent: int) -> int:
    if not 0 <= sent < 2**64:
        raise LocalProtocolError(f"sent_at_ns must fit in u64, got {sent}")
    return sent


class Codec:
    """Encodes and decodes authenticated protocol v6 datagrams.

    Args:
        key: the 32-byte MAC key from :func:`derive_key`.
        max_age_ns: freshness window into the past (default 60 s).
        max_skew_ns: freshness window into the future (default 5 s).
    """

    __slots__ = ("_mac", "_memo", "max_age_ns", "max_skew_ns")

    def __init__(
        self,
        key: bytes,
        *,
        max_age_ns: int = DEFAULT_MAX_AGE_NS,
        max_skew_ns: int = DEFAULT_MAX_SKEW_NS,
    ) -> None:
        if len(key) != 32:
            raise LocalProtocolError("MAC key must be 32 bytes; use derive_key(secret)")
        self._mac = hashlib.blake2b(key=key, digest_size=TAG_SIZE)
        self.max_age_ns = max_age_ns
        self.max_skew_ns = max_skew_ns
        self._memo: dict[bytes, tuple[Message, int]] = {}

    def _tag(self, body: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(body)
        return mac.digest()

    # -- encode ---------------------------------------------------------------------------

    def encode(self, msg: Message, *, sent_at_ns: int | None = None) -> bytes:
        """Serialize and tag ``msg``.

        Args:
            msg: a decision or confirmation (already validated on construction).
            sent_at_ns: the transmission time to stamp on a confirmation, replay request or
                heartbeat; defaults to ``msg.sent_at_ns``. Ignored for decisions, which are
                identical on every send.

        Raises:
            LocalProtocolError: ``msg`` is not a message, or ``sent_at_ns`` does not fit in u64.
        """
        if isinstance(msg, TradeDecision):
            flags, inst = _encode_instrument(msg.instrument)
            body = _DECISION_BODY.pack(
                PROTOCOL_VERSION, MessageType.DECISION, flags, msg.side, msg.intent, msg.reason,
                msg.max_slippage_bps, msg.decision_id, inst, msg.quantity, msg.reference_price,
                msg.created_at_ns, msg.expires_at_ns, msg.market_ts_ns, msg.stop_price,
            )  # fmt: skip
        elif isinstance(msg, ExecutionConfirmation):
            flags, inst = _encode_instrument(msg.instrument)
            if msg.venue_ref_truncated:
                flags |= FLAG_VENUE_REF_TRUNCATED
            if msg.slippage_over_limit:
                flags |= FLAG_SLIPPAGE_OVER_LIMIT
            if msg.reconciled:
                flags |= FLAG_RECONCILED
            sent = msg.sent_at_ns if sent_at_ns is None else sent_at_ns
            if not 0 <= sent < 2**64:
                raise LocalProtocolError(f"sent_at_ns must fit in u64, got {sent}")
            body = _CONFIRMATION_BODY.pack(
                PROTOCOL_VERSION, MessageType.CONFIRMATION, flags, msg.side, msg.intent, msg.status,
                msg.reject_code, len(msg.venue_ref), sent, msg.decision_id, msg.seq, inst,
                msg.executed_qty, msg.avg_price, msg.fee, msg.executed_at_ns, msg.venue_ref,
            )  # fmt: skip
        elif isinstance(msg, ReplayRequest):
            sent = _stamp(msg.sent_at_ns if sent_at_ns is None else sent_at_ns)
            body = _REPLAY_BODY.pack(PROTOCOL_VERSION, MessageType.REPLAY_REQUEST, 0, 0, 0, sent, msg.from_seq)
        elif isinstance(msg, Heartbeat):
            sent = _stamp(msg.sent_at_ns if sent_at_ns is None else sent_at_ns)
            guard = GUARD_ENTRIES_ALLOWED * msg.entries_allowed | GUARD_KILL_SWITCH * msg.kill_switch
            body = _HEARTBEAT_BODY.pack(
                PROTOCOL_VERSION, MessageType.HEARTBEAT, 0, msg.role, msg.in_flight, sent, msg.last_seq,
                msg.incarnation, msg.journal_id, msg.mode, guard, msg.entry_scale_bp, msg.entry_cooldown_ms,
                msg.max_notional,
            )  # fmt: skip
        else:
            raise LocalProtocolError(f"cannot encode {type(msg).__name__}")
        return body + self._tag(body)

    # -- decode ---------------------------------------------------------------------------

    def decode(self, data: bytes, now_ns: int) -> Message:
        """Check and parse one datagram received at wall-clock ``now_ns``.

        The last :data:`MEMO_SIZE` datagrams that passed the tag and field checks are remembered
        with their message: the same bytes again (a retransmit, or a captured datagram an attacker
        re-sends at a high rate) cost a dict lookup instead of a MAC and a parse. Only the
        freshness check, which depends on ``now_ns``, runs again. The result is the same either way.

        Raises:
            DatagramSizeError, VersionMismatch, UnknownMessageType, AuthenticationFailed,
            InvalidField, StaleDatagram: the first check that failed, in that order.
        """
        if len(data) < 2:
            raise DatagramSizeError(f"datagram of {len(data)} bytes is shorter than the header")
        if data[0] != PROTOCOL_VERSION:
            raise VersionMismatch(f"version {data[0]} is not {PROTOCOL_VERSION}")
        mtype = _MESSAGE_TYPES.get(data[1])  # a dict lookup: the enum's constructor costs ~0.4 us
        if mtype is None:
            raise UnknownMessageType(f"message type {data[1]} is unknown")
        size = MESSAGE_SIZES[mtype]
        if len(data) != size:
            raise DatagramSizeError(f"{mtype.name} must be {size} bytes, got {len(data)}")
        memo = self._memo.get(data)
        if memo is not None:
            msg, stamp = memo
            if stamp < now_ns - self.max_age_ns or stamp > now_ns + self.max_skew_ns:
                raise StaleDatagram(f"{mtype.name} stamped {(now_ns - stamp) / 1e9:+.3f} s from now")
            return msg
        body = data[:-TAG_SIZE]
        if not hmac.compare_digest(self._tag(body), data[-TAG_SIZE:]):
            raise AuthenticationFailed(f"{mtype.name} tag does not verify")
        try:
            if mtype is MessageType.DECISION:
                msg: Message = self._parse_decision(body)
                stamp = msg.created_at_ns
            elif mtype is MessageType.CONFIRMATION:
                msg = self._parse_confirmation(body)
                stamp = msg.sent_at_ns
            elif mtype is MessageType.REPLAY_REQUEST:
                msg = self._parse_replay(body)
                stamp = msg.sent_at_ns
            else:
                msg = self._parse_heartbeat(body)
                stamp = msg.sent_at_ns
        except (LocalProtocolError, ValueError) as exc:
            raise InvalidField(f"{mtype.name}: {exc}") from None
        if len(self._memo) >= MEMO_SIZE:  # bounded: a flood of distinct datagrams cannot grow it
            self._memo.clear()
        self._memo[bytes(data)] = (msg, stamp)
        if stamp < now_ns - self.max_age_ns or stamp > now_ns + self.max_skew_ns:
            raise StaleDatagram(f"{mtype.name} stamped {(now_ns - stamp) / 1e9:+.3f} s from now")
        return msg

    @staticmethod
    def _parse_replay(body: bytes) -> ReplayRequest:
        _, _, flags, reserved8, reserved32, sent, from_seq = _REPLAY_BODY.unpack(body)
        if flags or reserved8 or reserved32:
            raise LocalProtocolError("flags and reserved bytes must be zero")
        return ReplayRequest(from_seq=from_seq, sent_at_ns=sent)

    @staticmethod
    def _parse_heartbeat(body: bytes) -> Heartbeat:
        (_, _, flags, role, in_flight, sent, last_seq, incarnation, journal_id, mode, guard, scale, cooldown,
         max_notional) = _HEARTBEAT_BODY.unpack(body)  # fmt: skip
        if flags:
            raise LocalProtocolError("flags must be zero")
        if guard & ~_GUARD_FLAGS:
            raise LocalProtocolError(f"unknown guard_flags bits 0x{guard:02x}")
        entries, kill = bool(guard & GUARD_ENTRIES_ALLOWED), bool(guard & GUARD_KILL_SWITCH)
        return Heartbeat(role=Role(role), last_seq=last_seq, incarnation=incarnation, in_flight=in_flight,
                         journal_id=journal_id, mode=BeliefMode(mode), entries_allowed=entries,
                         kill_switch=kill, entry_scale_bp=scale, entry_cooldown_ms=cooldown,
                         max_notional=max_notional, sent_at_ns=sent)  # fmt: skip

    @staticmethod
    def _parse_decision(body: bytes) -> TradeDecision:
        (_, _, flags, side, intent, reason, slip, decision_id, inst, qty, ref_price,
         created, expires, market_ts, stop) = _DECISION_BODY.unpack(body)  # fmt: skip
        if flags & ~FLAG_MINT:
            raise LocalProtocolError(f"unknown flag bits 0x{flags:02x}")
        return TradeDecision.from_columns((decision_id, _decode_instrument(flags, inst), side, intent, reason, qty,
                                           ref_price, slip, created, expires, market_ts, stop))  # fmt: skip

    @staticmethod
    def _parse_confirmation(body: bytes) -> ExecutionConfirmation:
        (_, _, flags, side, intent, status, code, ref_len, sent, decision_id, seq, inst, qty,
         price, fee, executed_at, ref) = _CONFIRMATION_BODY.unpack(body)  # fmt: skip
        if flags & ~_CONFIRMATION_FLAGS:
            raise LocalProtocolError(f"unknown flag bits 0x{flags:02x}")
        if ref_len > VENUE_REF_SIZE or any(ref[ref_len:]):
            raise LocalProtocolError("venue_ref length/padding is inconsistent")
        return ExecutionConfirmation.from_columns((
            decision_id, seq, _decode_instrument(flags, inst), side, intent, status, code, qty, price, fee,
            executed_at, ref[:ref_len], flags & FLAG_VENUE_REF_TRUNCATED, flags & FLAG_SLIPPAGE_OVER_LIMIT,
            flags & FLAG_RECONCILED, sent,
        ))  # fmt: skip
