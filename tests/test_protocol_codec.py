"""Properties of the protocol v5 codec (``protocol/codec.py``, rules in ``protocol/SPEC.md``).

Hypothesis builds arbitrary valid messages of all four types (decision, confirmation, replay
request, heartbeat); hand-made datagrams probe every codec check of SPEC §8: size, version, type,
exact size (including a known type of another size), tag, fields (with a *valid* tag, computed
here with hashlib exactly as SPEC §7 says) and freshness, plus the errors local code gets for
building an invalid message.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    CONFIRMATION_SIZE,
    DECISION_SIZE,
    DEFAULT_MAX_AGE_NS,
    DEFAULT_MAX_SKEW_NS,
    HEARTBEAT_SIZE,
    PROTOCOL_VERSION,
    RECONCILE_ID_BASE,
    REPLAY_REQUEST_SIZE,
    AuthenticationFailed,
    BeliefMode,
    Codec,
    DatagramSizeError,
    DecisionReason,
    ExecutionConfirmation,
    Heartbeat,
    Instrument,
    InstrumentKind,
    Intent,
    InvalidField,
    LocalProtocolError,
    MessageType,
    Posture,
    RejectCode,
    RemoteProtocolError,
    ReplayRequest,
    Role,
    Side,
    StaleDatagram,
    Status,
    TradeDecision,
    UnknownMessageType,
    VersionMismatch,
    derive_key,
)
from protocol.messages import CONFIRMATION_COLUMNS

SECRET = b"codec property tests"
KEY = derive_key(SECRET)
CODEC = Codec(KEY)
NOW = 1_735_689_600_000_000_000  # 2025-01-01T00:00:00Z
S = 1_000_000_000
U64_MAX = 2**64 - 1
USDC = bytes.fromhex("c6fa7af3bedbad3a3d65f36aabc97431b1bbe4c2d2f6e0e47ca60203452f5d61")

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies -------------------------------------------------------------------------------

symbols = st.binary(min_size=1, max_size=32).map(lambda b: bytes(0x21 + x % 94 for x in b))
instruments = st.one_of(
    symbols.map(lambda v: Instrument(InstrumentKind.SYMBOL, v)),
    st.binary(min_size=32, max_size=32).map(lambda v: Instrument(InstrumentKind.MINT, v)),
)
u64 = st.integers(0, U64_MAX)
ids = st.integers(1, U64_MAX)
decision_ids = st.integers(1, RECONCILE_ID_BASE - 1)  # ids from 2**63 are the executor's (SPEC §6.2, v4)
executor_ids = st.integers(RECONCILE_ID_BASE, U64_MAX)
RECONCILED_LEGS = [(Intent.OPEN, Side.BUY), (Intent.CLOSE, Side.SELL), (Intent.REDUCE, Side.SELL),
                   (Intent.OPEN, Side.SELL), (Intent.CLOSE, Side.BUY), (Intent.REDUCE, Side.BUY)]  # shorts: v6
positive = st.floats(min_value=0.0, exclude_min=True, allow_nan=False, allow_infinity=False)
finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def decisions(draw: st.DrawFn) -> TradeDecision:
    created = draw(st.integers(0, U64_MAX - 1))
    side, intent, ref = draw(st.sampled_from(Side)), draw(st.sampled_from(Intent)), draw(positive)
    stop = draw(st.one_of(st.just(0.0), positive))
    if intent in (Intent.PROTECT, Intent.TAKE_PROFIT) and stop == 0:
        stop = 1.0  # a PROTECT needs a stop, a TAKE_PROFIT its limit (SPEC §6.1)
    if side is Side.BUY and intent is Intent.OPEN and stop >= ref:
        stop = ref / 2  # an entry's stop is below its reference (0.0 when ref is the least subnormal)
    if side is Side.SELL and intent is Intent.OPEN and 0 < stop <= ref:
        stop = 0.0 if ref * 2 == math.inf else ref * 2  # a short entry's stop is above its reference (v6)
    return TradeDecision(
        decision_id=draw(decision_ids),
        instrument=draw(instruments),
        side=side,
        intent=intent,
        reason=draw(st.sampled_from(DecisionReason)),
        quantity=draw(positive),
        reference_price=ref,
        max_slippage_bps=draw(st.integers(0, 10_000)),
        created_at_ns=created,
        expires_at_ns=draw(st.integers(created + 1, U64_MAX)),
        market_ts_ns=draw(u64),
        stop_price=stop,
    )


@st.composite
def confirmations(draw: st.DrawFn) -> ExecutionConfirmation:
    status = draw(st.sampled_from(Status))
    reconciled = status is Status.FILLED and draw(st.booleans())
    if status is Status.FILLED:
        code, qty, price, fee = RejectCode.NONE, draw(positive), draw(positive), draw(finite)
    elif status is Status.PARTIALLY_FILLED:
        code = draw(st.sampled_from(RejectCode))
        qty, price, fee = draw(positive), draw(positive), draw(finite)
    elif status is Status.ACCEPTED:
        code, qty, price, fee = RejectCode.NONE, 0.0, 0.0, 0.0
    else:
        code = draw(st.sampled_from([c for c in RejectCode if c is not RejectCode.NONE]))
        qty = price = fee = 0.0
    if reconciled:
        intent, side = draw(st.sampled_from(RECONCILED_LEGS))
    else:
        intent = Intent.PROTECT if status is Status.ACCEPTED else draw(st.sampled_from(Intent))
        side = draw(st.sampled_from(Side))
    return ExecutionConfirmation(
        decision_id=draw(executor_ids if reconciled else decision_ids),
        seq=draw(ids),
        instrument=draw(instruments),
        side=side,
        intent=intent,
        status=status,
        reject_code=code,
        executed_qty=qty,
        avg_price=price,
        fee=fee,
        executed_at_ns=draw(u64),
        venue_ref=draw(st.binary(max_size=16)),
        venue_ref_truncated=draw(st.booleans()),
        slippage_over_limit=status.executed and draw(st.booleans()),
        reconciled=reconciled,
        sent_at_ns=draw(u64),
    )


replay_requests = st.builds(ReplayRequest, from_seq=ids, sent_at_ns=u64)
heartbeats = st.builds(Heartbeat, role=st.sampled_from(Role), last_seq=u64, incarnation=u64,
                       in_flight=st.integers(0, 2**32 - 1), journal_id=u64, mode=st.sampled_from(BeliefMode),
                       entries_allowed=st.booleans(), kill_switch=st.booleans(),
                       entry_scale_bp=st.integers(0, 10_000), entry_cooldown_ms=st.integers(0, 2**32 - 1),
                       max_notional=st.floats(min_value=0.0, allow_nan=False, allow_infinity=False),
                       sent_at_ns=u64)  # fmt: skip
SIZES = {TradeDecision: DECISION_SIZE, ExecutionConfirmation: CONFIRMATION_SIZE,
         ReplayRequest: REPLAY_REQUEST_SIZE, Heartbeat: HEARTBEAT_SIZE}  # fmt: skip


# -- fixed messages ---------------------------------------------------------------------------


def _decision(**over: Any) -> TradeDecision:
    fields: dict[str, Any] = dict(
        decision_id=7, instrument=Instrument.symbol("BTC/USDT"), side=Side.BUY, intent=Intent.OPEN,
        reason=DecisionReason.SIGNAL, quantity=0.5, reference_price=37000.0, max_slippage_bps=50,
        created_at_ns=NOW, expires_at_ns=NOW + 30 * S, market_ts_ns=NOW,
    )  # fmt: skip
    fields.update(over)
    return TradeDecision(**fields)


def _confirmation(**over: Any) -> ExecutionConfirmation:
    fields: dict[str, Any] = dict(
        decision_id=7, seq=3, instrument=Instrument(InstrumentKind.MINT, USDC), side=Side.SELL,
        intent=Intent.CLOSE, status=Status.FILLED, reject_code=RejectCode.NONE, executed_qty=0.5,
        avg_price=37010.0, fee=18.5, executed_at_ns=NOW - S, venue_ref=bytes(range(1, 17)),
        venue_ref_truncated=True, sent_at_ns=NOW,
    )  # fmt: skip
    fields.update(over)
    return ExecutionConfirmation(**fields)


DATAGRAMS = {
    "decision_symbol": CODEC.encode(_decision()),
    "decision_mint": CODEC.encode(
        _decision(instrument=Instrument(InstrumentKind.MINT, USDC), side=Side.SELL, intent=Intent.CLOSE,
                  reason=DecisionReason.STOP_LOSS)
    ),
    "decision_entry_with_stop": CODEC.encode(_decision(stop_price=34040.0)),
    "decision_protect": CODEC.encode(
        _decision(side=Side.SELL, intent=Intent.PROTECT, reason=DecisionReason.TRAILING_TAKE_PROFIT,
                  reference_price=41000.0, stop_price=38950.0)
    ),
    "confirmation_mint_filled": CODEC.encode(_confirmation()),
    "confirmation_symbol_rejected": CODEC.encode(
        _confirmation(instrument=Instrument.symbol("ETH/USDT"), status=Status.REJECTED,
                      reject_code=RejectCode.INSUFFICIENT_FUNDS, executed_qty=0.0, avg_price=0.0, fee=0.0,
                      venue_ref=b"", venue_ref_truncated=False)
    ),
    "confirmation_accepted": CODEC.encode(
        _confirmation(intent=Intent.PROTECT, status=Status.ACCEPTED, executed_qty=0.0, avg_price=0.0, fee=0.0)
    ),
    "confirmation_expired": CODEC.encode(
        _confirmation(status=Status.EXPIRED, reject_code=RejectCode.EXPIRED, executed_qty=0.0, avg_price=0.0,
                      fee=0.0, venue_ref=b"", venue_ref_truncated=False)
    ),
    "replay_request": CODEC.encode(ReplayRequest(from_seq=42, sent_at_ns=NOW)),
    "heartbeat_brain": CODEC.encode(Heartbeat(Role.BRAIN, last_seq=41, incarnation=0x1234_5678_9ABC_DEF0,
                                              sent_at_ns=NOW)),
    "heartbeat_executor": CODEC.encode(Heartbeat(Role.EXECUTOR, last_seq=U64_MAX, incarnation=U64_MAX,
                                                 sent_at_ns=NOW)),
    "heartbeat_executor_posture": CODEC.encode(Heartbeat(Role.EXECUTOR, last_seq=9, incarnation=3, in_flight=1,
                                                         journal_id=0x51, mode=BeliefMode.YELLOW,
                                                         entry_scale_bp=2_500, entry_cooldown_ms=30_000,
                                                         max_notional=1_000.0, sent_at_ns=NOW)),
    "confirmation_reconciled": CODEC.encode(
        _confirmation(decision_id=RECONCILE_ID_BASE + 7, instrument=Instrument.symbol("BTC/USDT"), side=Side.BUY,
                      intent=Intent.OPEN, venue_ref=b"", venue_ref_truncated=False, fee=0.0, reconciled=True)
    ),
}  # fmt: skip


def _retag(body: bytes, key: bytes = KEY) -> bytes:
    """Tag ``body`` as SPEC §7 says, independently of the codec."""
    return body + hashlib.blake2b(body, key=key, digest_size=16).digest()


def _patch(datagram: bytes, offset: int, value: bytes) -> bytes:
    """``datagram`` with ``value`` written at ``offset`` and a fresh valid tag."""
    body = bytearray(datagram[:-16])
    body[offset : offset + len(value)] = value
    return _retag(bytes(body))


def _f64(x: float) -> bytes:
    return struct.pack("<d", x)


def _u64(x: int) -> bytes:
    return x.to_bytes(8, "little")


# -- round trips ------------------------------------------------------------------------------


@FAST
@given(decisions())
def test_decision_round_trip(msg: TradeDecision) -> None:
    """Any valid decision encodes to 112 bytes that decode to an equal decision and re-encode identically."""
    data = CODEC.encode(msg)
    assert len(data) == DECISION_SIZE
    decoded = CODEC.decode(data, msg.created_at_ns)
    assert decoded == msg
    assert CODEC.encode(decoded) == data


@FAST
@given(confirmations())
def test_confirmation_round_trip(msg: ExecutionConfirmation) -> None:
    """Any valid confirmation encodes to 128 bytes that decode to an equal one, sent_at_ns included."""
    data = CODEC.encode(msg)
    assert len(data) == CONFIRMATION_SIZE
    decoded = CODEC.decode(data, msg.sent_at_ns)
    assert isinstance(decoded, ExecutionConfirmation)
    assert decoded == msg
    assert decoded.sent_at_ns == msg.sent_at_ns
    assert decoded.venue_ref_truncated == msg.venue_ref_truncated
    assert CODEC.encode(decoded) == data


@FAST
@given(st.one_of(replay_requests, heartbeats))
def test_replay_request_and_heartbeat_round_trip(msg: ReplayRequest | Heartbeat) -> None:
    """Any valid replay request (40 bytes) or heartbeat (72 bytes) round-trips, sent_at_ns included."""
    data = CODEC.encode(msg)
    assert len(data) == SIZES[type(msg)]
    decoded = CODEC.decode(data, msg.sent_at_ns)
    assert type(decoded) is type(msg)
    assert decoded == msg
    assert decoded.sent_at_ns == msg.sent_at_ns  # type: ignore[union-attr]  # not part of ==
    assert CODEC.encode(decoded) == data


@FAST
@given(st.one_of(replay_requests, heartbeats))
def test_replay_request_and_heartbeat_follow_the_spec_layout(msg: ReplayRequest | Heartbeat) -> None:
    """Bytes 0..7: version, type, zero flags, role (or 0), zero reserved (replay) or in_flight (heartbeat);
    sent_at_ns at 8; a heartbeat's journal_id at 32 and its posture at 40..55 (SPEC §6.3-6.4)."""
    data = CODEC.encode(msg)
    if isinstance(msg, ReplayRequest):
        assert data[:8] == bytes([6, 3, 0, 0, 0, 0, 0, 0])
        assert int.from_bytes(data[16:24], "little") == msg.from_seq
    else:
        assert data[:4] == bytes([6, 4, 0, msg.role])
        assert int.from_bytes(data[4:8], "little") == msg.in_flight
        assert int.from_bytes(data[16:24], "little") == msg.last_seq
        assert int.from_bytes(data[24:32], "little") == msg.incarnation
        assert int.from_bytes(data[32:40], "little") == msg.journal_id
        assert data[40] == msg.mode and data[41] == msg.entries_allowed | msg.kill_switch << 1
        assert struct.unpack_from("<HId", data, 42) == (msg.entry_scale_bp, msg.entry_cooldown_ms, msg.max_notional)
    assert int.from_bytes(data[8:16], "little") == msg.sent_at_ns
    assert _retag(data[:-16]) == data


@FAST
@given(st.one_of(replay_requests, heartbeats), u64, u64)
def test_replay_request_and_heartbeat_differ_per_send_only_in_sent_at_and_tag(
    msg: ReplayRequest | Heartbeat, t1: int, t2: int
) -> None:
    """encode(sent_at_ns=...) restamps bytes 8..15 (and so the tag) and nothing else."""
    a, b = CODEC.encode(msg, sent_at_ns=t1), CODEC.encode(msg, sent_at_ns=t2)
    assert a[:8] == b[:8] and a[16:-16] == b[16:-16]
    assert int.from_bytes(a[8:16], "little") == t1 and int.from_bytes(b[8:16], "little") == t2


@FAST
@given(decisions(), u64)
def test_decision_is_byte_identical_on_retransmit(msg: TradeDecision, sent: int) -> None:
    """A decision's bytes do not depend on the transmission time passed to encode."""
    assert CODEC.encode(msg, sent_at_ns=sent) == CODEC.encode(msg)


@FAST
@given(confirmations(), u64, u64)
def test_confirmation_retransmit_differs_only_in_sent_at_and_tag(
    msg: ExecutionConfirmation, t1: int, t2: int
) -> None:
    """Two transmissions of one confirmation differ only in bytes 8..15 (sent_at_ns) and 112..127 (tag)."""
    a, b = CODEC.encode(msg, sent_at_ns=t1), CODEC.encode(msg, sent_at_ns=t2)
    assert a[:8] == b[:8] and a[16:112] == b[16:112]
    assert int.from_bytes(a[8:16], "little") == t1 and int.from_bytes(b[8:16], "little") == t2


@FAST
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_remote_protocol_errors(data: bytes) -> None:
    """Random bytes are rejected with a RemoteProtocolError, never another exception."""
    with pytest.raises(RemoteProtocolError):
        CODEC.decode(data, NOW)


@FAST
@given(
    st.sampled_from(
        [(1, DECISION_SIZE), (2, CONFIRMATION_SIZE), (3, REPLAY_REQUEST_SIZE), (4, HEARTBEAT_SIZE)]
    ),
    st.data(),
)
def test_authentic_random_bodies_decode_or_raise_invalid_field(
    kind: tuple[int, int], data: st.DataObject
) -> None:
    """A correctly tagged random body, received at its own stamp, decodes or raises InvalidField."""
    mtype, size = kind
    body = bytes([PROTOCOL_VERSION, mtype]) + data.draw(st.binary(min_size=size - 18, max_size=size - 18))
    stamp_at = 64 if mtype == 1 else 8  # created_at_ns / sent_at_ns (types 2, 3, 4), SPEC §9
    now = int.from_bytes(body[stamp_at : stamp_at + 8], "little")
    try:
        msg = CODEC.decode(_retag(body), now)
    except InvalidField:
        return
    assert CODEC.encode(msg) == _retag(body)


# -- corruption, size, authentication --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DATAGRAMS))
def test_every_single_bit_flip_is_rejected(name: str) -> None:
    """Flipping any one bit of a valid datagram is rejected: version, type/size or tag, by position."""
    data = DATAGRAMS[name]
    CODEC.decode(data, NOW)  # the original is valid
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(RemoteProtocolError) as info:
            CODEC.decode(bytes(flipped), NOW)
        # A flipped type byte names either no type or another type of another size.
        expected = {0: (VersionMismatch,), 1: (UnknownMessageType, DatagramSizeError)}.get(
            bit // 8, (AuthenticationFailed,)
        )
        assert type(info.value) in expected, (bit, info.value)


@pytest.mark.parametrize("name", sorted(DATAGRAMS))
def test_every_truncation_and_some_extensions_fail_size(name: str) -> None:
    """Every prefix shorter than the datagram, and longer datagrams, raise DatagramSizeError."""
    data = DATAGRAMS[name]
    for n in range(len(data)):
        with pytest.raises(DatagramSizeError):
            CODEC.decode(data[:n], NOW)
    for extra in (b"\0", b"\xff" * 16, data, bytes(1000)):
        with pytest.raises(DatagramSizeError):
            CODEC.decode(data + extra, NOW)


def test_decision_sized_confirmation_type_fails_size() -> None:
    """A 112-byte datagram typed CONFIRMATION (and 128 typed DECISION) fails the exact-size check."""
    dec, conf = DATAGRAMS["decision_symbol"], DATAGRAMS["confirmation_mint_filled"]
    with pytest.raises(DatagramSizeError):
        CODEC.decode(dec[:1] + b"\x02" + dec[2:], NOW)
    with pytest.raises(DatagramSizeError):
        CODEC.decode(conf[:1] + b"\x01" + conf[2:], NOW)


@pytest.mark.parametrize("name", sorted(DATAGRAMS))
def test_known_type_of_another_size_fails_size(name: str) -> None:
    """Byte 1 naming any other known type fails the size check (SPEC §8), even with a valid tag."""
    data = DATAGRAMS[name]
    for mtype in MessageType:
        if mtype == data[1]:
            continue
        for candidate in (data[:1] + bytes([mtype]) + data[2:], _patch(data, 1, bytes([mtype]))):
            with pytest.raises(DatagramSizeError):
                CODEC.decode(candidate, NOW)


@pytest.mark.parametrize("name", sorted(DATAGRAMS))
def test_other_secret_fails_authentication(name: str) -> None:
    """A datagram tagged under another secret raises AuthenticationFailed."""
    other = Codec(derive_key(b"another secret"))
    with pytest.raises(AuthenticationFailed):
        other.decode(DATAGRAMS[name], NOW)


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4, 5, 7, 255])
def test_other_versions_fail_version(version: int) -> None:
    """Any version byte but 6 raises VersionMismatch, even with a valid tag (1 to 5: protocol v1-v5 peers)."""
    with pytest.raises(VersionMismatch):
        CODEC.decode(_patch(DATAGRAMS["decision_symbol"], 0, bytes([version])), NOW)


@pytest.mark.parametrize(
    "name", ["decision_symbol", "confirmation_mint_filled", "replay_request", "heartbeat_brain"]
)
def test_unknown_and_reserved_types_fail_type(name: str) -> None:
    """Type 0 and every unassigned type 5..255 raise UnknownMessageType, before size, even with a valid tag.

    Types 1..4 are defined (3 replay request, 4 heartbeat) and are no longer rejected as unknown.
    """
    assert {int(t) for t in MessageType} == {1, 2, 3, 4}
    data = DATAGRAMS[name]
    for mtype in [0, *range(5, 256)]:
        with pytest.raises(UnknownMessageType):
            CODEC.decode(_patch(data, 1, bytes([mtype])), NOW)
        with pytest.raises(UnknownMessageType):  # type is checked before the exact size
            CODEC.decode(_patch(data, 1, bytes([mtype])) + b"\0", NOW)


def test_check_order_earlier_failure_wins() -> None:
    """Checks run in SPEC order: version, type, size, tag, field, stale; the first failure wins."""
    dec = DATAGRAMS["decision_symbol"]
    with pytest.raises(VersionMismatch):  # bad version and wrong length
        CODEC.decode(b"\x01\x01" + dec[2:50], NOW)
    with pytest.raises(UnknownMessageType):  # unknown type and wrong length
        CODEC.decode(b"\x06\x09" + dec[2:50], NOW)
    with pytest.raises(DatagramSizeError):  # known type of another size and garbage tag
        CODEC.decode(b"\x06\x04" + dec[2:], NOW)
    bad_role = _patch(DATAGRAMS["heartbeat_brain"], 3, b"\x03")
    with pytest.raises(AuthenticationFailed):  # bad role under a wrong tag
        CODEC.decode(bad_role[:-1] + bytes([bad_role[-1] ^ 1]), NOW)
    with pytest.raises(InvalidField):  # bad role and stale
        CODEC.decode(bad_role, NOW - 3600 * S)
    with pytest.raises(DatagramSizeError):  # wrong length and garbage tag
        CODEC.decode(dec[:-1], NOW)
    bad_field = _patch(dec, 3, b"\x09")
    with pytest.raises(AuthenticationFailed):  # bad field under a wrong tag
        CODEC.decode(bad_field[:-1] + bytes([bad_field[-1] ^ 1]), NOW)
    with pytest.raises(InvalidField):  # bad field and stale
        CODEC.decode(bad_field, NOW + 3600 * S)


def test_derive_key_is_the_spec_construction() -> None:
    """derive_key is BLAKE2b(secret, 32 bytes, person="tandem-bus-v1") and the tag BLAKE2b-keyed 16 bytes."""
    assert KEY == hashlib.blake2b(SECRET, digest_size=32, person=b"tandem-bus-v1").digest()
    data = DATAGRAMS["confirmation_mint_filled"]
    assert _retag(data[:-16]) == data


# -- freshness --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DATAGRAMS))
def test_freshness_window_boundaries(name: str) -> None:
    """Stamp at now-max_age and now+max_skew is fresh; 1 ns beyond either is StaleDatagram."""
    data = DATAGRAMS[name]
    stamp = NOW  # every fixed datagram is stamped NOW (created_at_ns or sent_at_ns)
    CODEC.decode(data, stamp + DEFAULT_MAX_AGE_NS)
    CODEC.decode(data, stamp - DEFAULT_MAX_SKEW_NS)
    with pytest.raises(StaleDatagram):
        CODEC.decode(data, stamp + DEFAULT_MAX_AGE_NS + 1)
    with pytest.raises(StaleDatagram):
        CODEC.decode(data, stamp - DEFAULT_MAX_SKEW_NS - 1)


def test_freshness_window_is_configurable() -> None:
    """A codec built with max_age_ns/max_skew_ns uses those bounds, inclusive."""
    codec = Codec(KEY, max_age_ns=2 * S, max_skew_ns=0)
    data = DATAGRAMS["decision_symbol"]
    codec.decode(data, NOW + 2 * S)
    codec.decode(data, NOW)
    with pytest.raises(StaleDatagram):
        codec.decode(data, NOW + 2 * S + 1)
    with pytest.raises(StaleDatagram):
        codec.decode(data, NOW - 1)


def test_confirmation_freshness_uses_sent_at_not_executed_at() -> None:
    """A confirmation is fresh by sent_at_ns even when executed_at_ns is hours old."""
    old = _confirmation(executed_at_ns=NOW - 3 * 3600 * S)
    assert CODEC.decode(CODEC.encode(old, sent_at_ns=NOW), NOW) == old
    with pytest.raises(StaleDatagram):
        CODEC.decode(CODEC.encode(old, sent_at_ns=NOW - 61 * S), NOW)


def test_expired_but_fresh_decision_decodes() -> None:
    """A fresh decision past expires_at_ns decodes normally (the executor answers EXPIRED)."""
    msg = _decision(created_at_ns=NOW - 10 * S, expires_at_ns=NOW - 5 * S)
    assert CODEC.decode(CODEC.encode(msg), NOW) == msg


# -- authentic but invalid fields ------------------------------------------------------------

DEC = DATAGRAMS["decision_symbol"]
DEC_MINT = DATAGRAMS["decision_mint"]
DEC_STOP = DATAGRAMS["decision_entry_with_stop"]
PROT = DATAGRAMS["decision_protect"]
ACC = DATAGRAMS["confirmation_accepted"]
CONF = DATAGRAMS["confirmation_mint_filled"]
REJ = DATAGRAMS["confirmation_symbol_rejected"]
EXP = DATAGRAMS["confirmation_expired"]
RR = DATAGRAMS["replay_request"]
HB = DATAGRAMS["heartbeat_brain"]
HB_EXEC = DATAGRAMS["heartbeat_executor"]
HB_POSTURE = DATAGRAMS["heartbeat_executor_posture"]
RECON = DATAGRAMS["confirmation_reconciled"]

BAD_FIELDS = {
    # decision (offsets from SPEC §6.1)
    "decision_flag_venue_ref_truncated": (DEC, 2, b"\x02"),
    "decision_flag_reserved_bit": (DEC, 2, b"\x80"),
    "decision_side_0": (DEC, 3, b"\x00"),
    "decision_side_3": (DEC, 3, b"\x03"),
    "decision_intent_6": (DEC, 4, b"\x06"),
    "decision_intent_take_profit_without_limit": (DEC, 4, b"\x05"),
    "decision_intent_protect_without_stop": (DEC, 4, b"\x04"),
    "decision_reason_0": (DEC, 5, b"\x00"),
    "decision_reason_9": (DEC, 5, b"\x09"),
    "decision_slippage_10001": (DEC, 6, (10_001).to_bytes(2, "little")),
    "decision_id_0": (DEC, 8, _u64(0)),
    "decision_id_2_pow_63": (DEC, 8, _u64(RECONCILE_ID_BASE)),
    "decision_id_u64_max": (DEC, 8, _u64(U64_MAX)),
    "decision_symbol_embedded_nul": (DEC, 16, b"BTC\0USDT"),
    "decision_symbol_all_nul": (DEC, 16, bytes(32)),
    "decision_symbol_space": (DEC, 16, b"BTC USDT"),
    "decision_symbol_non_ascii": (DEC, 16, b"BTC/\xe2\x82\xac"),
    "decision_symbol_leading_nul": (DEC, 16, b"\0TC/USDT"),
    "decision_quantity_nan": (DEC, 48, _f64(math.nan)),
    "decision_quantity_inf": (DEC, 48, _f64(math.inf)),
    "decision_quantity_zero": (DEC, 48, _f64(0.0)),
    "decision_quantity_negative": (DEC, 48, _f64(-0.5)),
    "decision_price_nan": (DEC, 56, _f64(math.nan)),
    "decision_price_neg_inf": (DEC, 56, _f64(-math.inf)),
    "decision_expires_equals_created": (DEC, 72, _u64(NOW)),
    "decision_stop_price_negative": (DEC, 88, _f64(-1.0)),
    "decision_stop_price_nan": (DEC_STOP, 88, _f64(math.nan)),
    "decision_stop_price_inf": (DEC_MINT, 88, _f64(math.inf)),
    "decision_buy_open_stop_at_reference": (DEC_STOP, 88, _f64(37000.0)),
    "decision_buy_open_stop_above_reference": (DEC, 88, _f64(40000.0)),
    "decision_protect_stop_zero": (PROT, 88, _f64(0.0)),
    "decision_protect_stop_negative_zero": (PROT, 88, _f64(-0.0)),
    "decision_entry_price_under_its_stop": (DEC_STOP, 56, _f64(34000.0)),
    "decision_mint_flag_cleared": (DEC_MINT, 2, b"\x00"),  # USDC bytes hold non-printable bytes
    # confirmation (offsets from SPEC §6.2)
    "confirmation_flag_reserved_bit": (CONF, 2, b"\x10"),
    "confirmation_flag_high_bit": (CONF, 2, b"\x80"),
    "confirmation_slippage_flag_on_rejected": (REJ, 2, b"\x04"),
    "confirmation_slippage_flag_on_accepted": (ACC, 2, b"\x04"),
    "confirmation_side_9": (CONF, 3, b"\x09"),
    "confirmation_intent_0": (CONF, 4, b"\x00"),
    "confirmation_status_0": (CONF, 5, b"\x00"),
    "confirmation_status_7": (CONF, 5, b"\x07"),
    "confirmation_filled_as_accepted": (CONF, 5, b"\x06"),
    "confirmation_accepted_with_reject_code": (ACC, 6, b"\x09"),
    "confirmation_accepted_with_qty": (ACC, 64, _f64(0.5)),
    "confirmation_accepted_with_fee": (ACC, 80, _f64(0.01)),
    "confirmation_accepted_intent_close": (ACC, 4, b"\x02"),
    "confirmation_reject_code_11": (REJ, 6, b"\x0b"),
    "confirmation_filled_with_reject_code": (CONF, 6, b"\x01"),
    "confirmation_venue_ref_len_17": (CONF, 7, b"\x11"),
    "confirmation_venue_ref_padding_nonzero": (REJ, 96, b"\x01"),
    "confirmation_decision_id_0": (CONF, 16, _u64(0)),
    "confirmation_seq_0": (CONF, 24, _u64(0)),
    "confirmation_filled_zero_qty": (CONF, 64, _f64(0.0)),
    "confirmation_filled_negative_qty": (CONF, 64, _f64(-1.0)),
    "confirmation_qty_nan": (CONF, 64, _f64(math.nan)),
    "confirmation_filled_zero_price": (CONF, 72, _f64(0.0)),
    "confirmation_fee_nan": (CONF, 80, _f64(math.nan)),
    "confirmation_fee_inf": (CONF, 80, _f64(math.inf)),
    "confirmation_rejected_with_qty": (REJ, 64, _f64(0.5)),
    "confirmation_expired_with_fee": (EXP, 80, _f64(0.01)),  # v5: REJECTED and FAILED may carry a fee
    "confirmation_rejected_code_none": (REJ, 6, b"\x00"),
    "confirmation_rejected_as_filled": (REJ, 5, b"\x01"),
    # reconciled confirmations (SPEC §6.2, "Reconciliation"; v4)
    "confirmation_reconciled_small_id": (CONF, 2, b"\x09"),  # MINT | RECONCILED on decision 7
    "confirmation_reconciled_id_2_pow_63_minus_1": (RECON, 16, _u64(RECONCILE_ID_BASE - 1)),
    "confirmation_executor_id_without_flag": (CONF, 16, _u64(RECONCILE_ID_BASE)),
    "confirmation_reconciled_flag_cleared": (RECON, 2, b"\x00"),
    "confirmation_reconciled_partially_filled": (RECON, 5, b"\x02"),
    "confirmation_reconciled_protect_sell": (RECON, 3, bytes([Side.SELL, Intent.PROTECT])),
    # replay request (offsets from SPEC §6.3)
    "replay_flags_mint": (RR, 2, b"\x01"),
    "replay_flags_truncated": (RR, 2, b"\x02"),
    "replay_flags_high_bit": (RR, 2, b"\x80"),
    "replay_reserved_u8": (RR, 3, b"\x01"),
    "replay_reserved_u32_low": (RR, 4, b"\x01"),
    "replay_reserved_u32_high": (RR, 7, b"\x80"),
    "replay_from_seq_0": (RR, 16, _u64(0)),
    # heartbeat (offsets from SPEC §6.4)
    "heartbeat_flags_mint": (HB, 2, b"\x01"),
    "heartbeat_flags_high_bit": (HB, 2, b"\x80"),
    "heartbeat_role_0": (HB, 3, b"\x00"),
    "heartbeat_role_3": (HB, 3, b"\x03"),
    "heartbeat_role_255": (HB, 3, b"\xff"),
    "heartbeat_flags_slippage_bit": (HB, 2, b"\x04"),
    "heartbeat_executor_role_0": (HB_EXEC, 3, b"\x00"),
    "heartbeat_flags_reconciled_bit": (HB, 2, b"\x08"),
    # heartbeat posture (SPEC §6.4, v4)
    "heartbeat_mode_5": (HB_POSTURE, 40, b"\x05"),
    "heartbeat_mode_255": (HB, 40, b"\xff"),
    "heartbeat_guard_flags_bit_2": (HB_POSTURE, 41, b"\x04"),
    "heartbeat_guard_flags_high_bit": (HB, 41, b"\x81"),
    "heartbeat_entry_scale_bp_10001": (HB_POSTURE, 42, (10_001).to_bytes(2, "little")),
    "heartbeat_entry_scale_bp_65535": (HB, 42, b"\xff\xff"),
    "heartbeat_max_notional_negative": (HB_POSTURE, 48, _f64(-1.0)),
    "heartbeat_max_notional_nan": (HB, 48, _f64(math.nan)),
    "heartbeat_max_notional_inf": (HB_POSTURE, 48, _f64(math.inf)),
    "heartbeat_max_notional_neg_inf": (HB, 48, _f64(-math.inf)),
}


@pytest.mark.parametrize("case", sorted(BAD_FIELDS))
def test_authentic_invalid_field_raises_invalid_field(case: str) -> None:
    """A correctly tagged datagram with an out-of-range or inconsistent field raises InvalidField."""
    datagram, offset, value = BAD_FIELDS[case]
    CODEC.decode(datagram, NOW)  # the unpatched datagram is valid
    with pytest.raises(InvalidField):
        CODEC.decode(_patch(datagram, offset, value), NOW)


def test_authentic_partial_fill_may_carry_any_reject_code() -> None:
    """PARTIALLY_FILLED with reject code NONE or a reason both decode (only FILLED requires NONE)."""
    for code in (0, 4):
        msg = CODEC.decode(_patch(CONF, 5, bytes([2, code])), NOW)
        assert isinstance(msg, ExecutionConfirmation)
        assert msg.status is Status.PARTIALLY_FILLED and msg.reject_code is RejectCode(code)


def test_authentic_heartbeat_and_replay_edge_values_decode() -> None:
    """last_seq 0, both roles, from_seq 1 and u64 maxima are valid (no rule on last_seq/incarnation)."""
    for role in (1, 2):
        msg = CODEC.decode(_patch(HB, 3, bytes([role]) + bytes(4)), NOW)
        assert isinstance(msg, Heartbeat) and msg.role is Role(role)
    msg = CODEC.decode(_patch(HB, 4, b"\xff\xff\xff\xff"), NOW)  # in_flight: any u32
    assert isinstance(msg, Heartbeat) and msg.in_flight == 2**32 - 1
    msg = CODEC.decode(_patch(HB, 32, _u64(U64_MAX)), NOW)  # journal_id: any u64
    assert isinstance(msg, Heartbeat) and msg.journal_id == U64_MAX
    msg = CODEC.decode(_patch(HB, 16, _u64(0) + _u64(0)), NOW)
    assert isinstance(msg, Heartbeat) and msg.last_seq == 0 and msg.incarnation == 0
    for from_seq in (1, U64_MAX):
        msg = CODEC.decode(_patch(RR, 16, _u64(from_seq)), NOW)
        assert isinstance(msg, ReplayRequest) and msg.from_seq == from_seq


def test_venue_ref_may_contain_nul_bytes() -> None:
    """The length byte, not NUL-stripping, delimits venue_ref, so trailing 0x00 bytes survive."""
    msg = _confirmation(venue_ref=b"ab\0\0", venue_ref_truncated=False)
    decoded = CODEC.decode(CODEC.encode(msg), NOW)
    assert isinstance(decoded, ExecutionConfirmation) and decoded.venue_ref == b"ab\0\0"


def test_stop_price_sits_at_offset_88_before_the_tag() -> None:
    """stop_price is the f64 at bytes 88..95 (SPEC §6.1 v2) and the tag covers it (bytes 96..111)."""
    data = DATAGRAMS["decision_protect"]
    assert len(data) == 112 and data[0] == 6
    assert struct.unpack_from("<d", data, 88)[0] == 38950.0
    assert _retag(data[:96]) == data
    assert struct.unpack_from("<d", DATAGRAMS["decision_symbol"], 88)[0] == 0.0  # default: no stop


def test_stop_price_rules_that_decode() -> None:
    """Allowed: a SELL/CLOSE with any stop, a SELL/OPEN stop above its reference, a BUY/OPEN stop just below."""
    for over in ({"side": Side.SELL, "intent": Intent.CLOSE, "stop_price": 99_999.0},
                 {"side": Side.SELL, "intent": Intent.OPEN, "stop_price": 40_000.0},
                 {"stop_price": math.nextafter(37000.0, 0.0)},
                 {"side": Side.BUY, "intent": Intent.PROTECT, "stop_price": 1e-300}):  # fmt: skip
        msg = _decision(**over)
        assert CODEC.decode(CODEC.encode(msg), NOW) == msg


def test_reconciled_confirmation_sets_flag_0x08_and_round_trips() -> None:
    """RECONCILED is flag bit 3 (0x08) on an executor-issued decision_id (>= 2**63); it decodes back, and the
    largest decision id, 2**63 - 1, still belongs to an ordinary confirmation (SPEC §4, §6.2)."""
    assert RECON[2] == 0x08 and int.from_bytes(RECON[16:24], "little") == RECONCILE_ID_BASE + 7
    msg = CODEC.decode(RECON, NOW)
    assert isinstance(msg, ExecutionConfirmation) and msg.reconciled and msg.status is Status.FILLED
    assert CODEC.encode(msg) == RECON
    for intent, side in RECONCILED_LEGS:
        leg = _confirmation(decision_id=U64_MAX, intent=intent, side=side, reconciled=True)
        assert CODEC.decode(CODEC.encode(leg), NOW) == leg
    top = _confirmation(decision_id=RECONCILE_ID_BASE - 1)
    decoded = CODEC.decode(CODEC.encode(top), NOW)
    assert isinstance(decoded, ExecutionConfirmation) and not decoded.reconciled
    assert decoded != replace(top, decision_id=RECONCILE_ID_BASE, reconciled=True)  # the flag is content


def test_from_columns_turns_the_three_flags_into_bools() -> None:
    """CONFIRMATION_COLUMNS ends venue_ref_truncated, slippage_over_limit, reconciled, sent_at_ns (indexes
    12..15); from_columns turns 0/1 (SQLite) or a masked flag bit into bools, and may stop after venue_ref."""
    assert CONFIRMATION_COLUMNS[11:] == ("venue_ref", "venue_ref_truncated", "slippage_over_limit", "reconciled",
                                         "sent_at_ns")  # fmt: skip
    base = _confirmation(decision_id=RECONCILE_ID_BASE + 1, intent=Intent.REDUCE, reconciled=True,
                         slippage_over_limit=True)  # fmt: skip
    row = [getattr(base, name) for name in CONFIRMATION_COLUMNS]
    row[12:15] = [2, 1, 8]
    rebuilt = ExecutionConfirmation.from_columns(row)
    assert rebuilt == base and rebuilt.sent_at_ns == NOW
    assert (rebuilt.venue_ref_truncated, rebuilt.slippage_over_limit, rebuilt.reconciled) == (True, True, True)
    short = ExecutionConfirmation.from_columns([getattr(_confirmation(), n) for n in CONFIRMATION_COLUMNS[:13]])
    assert short.reconciled is False and short.slippage_over_limit is False and short.sent_at_ns == 0
    with pytest.raises(LocalProtocolError):  # a journal row of an executor id without the flag
        ExecutionConfirmation.from_columns(row[:14] + [0])


def test_heartbeat_posture_defaults_are_neutral() -> None:
    """A heartbeat's posture defaults to the neutral Posture (mode NONE, entries allowed, no kill switch,
    10000 bp, no cooldown, no cap): bytes 40..55 = 00 01 1027 00000000 0.0; 0/1 ints become bools."""
    hb = Heartbeat(Role.BRAIN, 0, 1)
    assert hb.posture == Posture() and Posture().allows_entries
    data = CODEC.encode(hb, sent_at_ns=NOW)
    assert data[40:56] == bytes([0, 1]) + (10_000).to_bytes(2, "little") + bytes(4) + _f64(0.0)
    coerced = Heartbeat(Role.EXECUTOR, 0, 1, mode=3, entries_allowed=0, kill_switch=1)  # type: ignore[arg-type]
    assert coerced.mode is BeliefMode.ORANGE and coerced.entries_allowed is False and coerced.kill_switch is True
    assert not coerced.posture.allows_entries
    assert not Posture(entry_scale_bp=0).allows_entries and not Posture(kill_switch=True).allows_entries
    for mode in BeliefMode:
        msg = Heartbeat(Role.EXECUTOR, 1, 2, mode=mode, entries_allowed=False, kill_switch=True, entry_scale_bp=0,
                        entry_cooldown_ms=2**32 - 1, max_notional=1e300, sent_at_ns=NOW)  # fmt: skip
        assert CODEC.decode(CODEC.encode(msg), NOW) == msg


def test_authentic_guard_flags_decode_to_the_two_bools() -> None:
    """guard_flags (byte 41) 0x00..0x03 decode to entries_allowed (0x01) and kill_switch (0x02)."""
    for guard in range(4):
        msg = CODEC.decode(_patch(HB_POSTURE, 41, bytes([guard])), NOW)
        assert isinstance(msg, Heartbeat)
        assert (msg.entries_allowed, msg.kill_switch) == (bool(guard & 1), bool(guard & 2))


def test_accepted_status_is_not_executed() -> None:
    """ACCEPTED (a PROTECT carried out) is a success that traded nothing: Status.executed is False."""
    assert Status.ACCEPTED == 6 and not Status.ACCEPTED.executed
    assert Intent.PROTECT == 4
    msg = CODEC.decode(ACC, NOW)
    assert isinstance(msg, ExecutionConfirmation) and msg.status is Status.ACCEPTED and msg.notional == 0


def test_mint_with_trailing_zero_bytes_round_trips() -> None:
    """A mint ending in 0x00 bytes keeps them (the flag, not padding, marks a mint)."""
    mint = Instrument(InstrumentKind.MINT, b"\x05" * 30 + b"\0\0")
    assert CODEC.decode(CODEC.encode(_decision(instrument=mint)), NOW).instrument == mint


# -- local errors -----------------------------------------------------------------------------

BAD_DECISIONS: dict[str, dict[str, Any]] = {
    "decision_id_0": {"decision_id": 0},
    "decision_id_negative": {"decision_id": -1},
    "decision_id_over_u64": {"decision_id": 2**64},
    "decision_id_2_pow_63": {"decision_id": RECONCILE_ID_BASE},
    "decision_id_u64_max": {"decision_id": U64_MAX},
    "side_3": {"side": 3},
    "intent_0": {"intent": 0},
    "reason_99": {"reason": 99},
    "quantity_0": {"quantity": 0.0},
    "quantity_negative": {"quantity": -1.0},
    "quantity_nan": {"quantity": math.nan},
    "quantity_inf": {"quantity": math.inf},
    "price_0": {"reference_price": 0.0},
    "price_nan": {"reference_price": math.nan},
    "slippage_negative": {"max_slippage_bps": -1},
    "slippage_10001": {"max_slippage_bps": 10_001},
    "expires_equals_created": {"expires_at_ns": NOW},
    "expires_before_created": {"expires_at_ns": NOW - 1},
    "created_negative": {"created_at_ns": -1, "expires_at_ns": 1},
    "market_ts_over_u64": {"market_ts_ns": 2**64},
    "stop_price_negative": {"stop_price": -0.5},
    "stop_price_nan": {"stop_price": math.nan},
    "stop_price_inf": {"stop_price": math.inf},
    "buy_open_stop_equals_reference": {"stop_price": 37000.0},
    "buy_open_stop_above_reference": {"stop_price": 37000.5},
    "sell_open_stop_below_reference": {"side": Side.SELL, "stop_price": 36999.5},  # a short's stop is above (v6)
    "sell_open_stop_equals_reference": {"side": Side.SELL, "stop_price": 37000.0},
    "protect_without_stop": {"side": Side.SELL, "intent": Intent.PROTECT},
}

BAD_CONFIRMATIONS: dict[str, dict[str, Any]] = {
    "decision_id_0": {"decision_id": 0},
    "seq_0": {"seq": 0},
    "seq_over_u64": {"seq": 2**64},
    "status_0": {"status": 0},
    "reject_code_11": {"reject_code": 11},
    "reconciled_small_id": {"reconciled": True, "intent": Intent.OPEN, "side": Side.BUY},
    "executor_id_not_reconciled": {"decision_id": RECONCILE_ID_BASE},
    "reconciled_rejected": {"decision_id": RECONCILE_ID_BASE, "reconciled": True, "status": Status.REJECTED,
                            "reject_code": RejectCode.GUARD, "executed_qty": 0.0, "avg_price": 0.0, "fee": 0.0},
    "reconciled_partially_filled": {"decision_id": RECONCILE_ID_BASE, "reconciled": True,
                                    "status": Status.PARTIALLY_FILLED},
    "reconciled_protect": {"decision_id": RECONCILE_ID_BASE, "reconciled": True, "intent": Intent.PROTECT},
    "filled_with_reject_code": {"reject_code": RejectCode.SLIPPAGE_EXCEEDED},
    "filled_zero_qty": {"executed_qty": 0.0},
    "filled_zero_price": {"avg_price": 0.0},
    "qty_negative": {"executed_qty": -0.5},
    "qty_nan": {"executed_qty": math.nan},
    "fee_nan": {"fee": math.nan},
    "fee_inf": {"fee": -math.inf},
    "rejected_with_qty": {"status": Status.REJECTED, "reject_code": RejectCode.GUARD, "avg_price": 0.0,
                          "fee": 0.0},
    "rejected_code_none": {"status": Status.REJECTED, "executed_qty": 0.0, "avg_price": 0.0, "fee": 0.0},
    "rejected_with_price": {"status": Status.REJECTED, "reject_code": RejectCode.VENUE_ERROR, "executed_qty": 0.0,
                            "fee": 0.01},
    "expired_with_fee": {"status": Status.EXPIRED, "reject_code": RejectCode.EXPIRED, "executed_qty": 0.0,
                         "avg_price": 0.0},
    "venue_ref_17_bytes": {"venue_ref": bytes(17)},
    "executed_at_negative": {"executed_at_ns": -1},
    "accepted_not_protect": {"status": Status.ACCEPTED, "executed_qty": 0.0, "avg_price": 0.0, "fee": 0.0},
    "accepted_with_qty": {"status": Status.ACCEPTED, "intent": Intent.PROTECT},
    "accepted_with_reject_code": {"status": Status.ACCEPTED, "intent": Intent.PROTECT, "executed_qty": 0.0,
                                  "avg_price": 0.0, "fee": 0.0, "reject_code": RejectCode.GUARD},
    "sent_at_over_u64": {"sent_at_ns": 2**64},
}  # fmt: skip


BAD_REPLAYS: dict[str, dict[str, Any]] = {
    "from_seq_0": {"from_seq": 0},
    "from_seq_negative": {"from_seq": -1},
    "from_seq_over_u64": {"from_seq": 2**64},
    "sent_at_negative": {"from_seq": 1, "sent_at_ns": -1},
    "sent_at_over_u64": {"from_seq": 1, "sent_at_ns": 2**64},
}

BAD_HEARTBEATS: dict[str, dict[str, Any]] = {
    "role_0": {"role": 0},
    "role_3": {"role": 3},
    "last_seq_negative": {"last_seq": -1},
    "last_seq_over_u64": {"last_seq": 2**64},
    "incarnation_negative": {"incarnation": -1},
    "incarnation_over_u64": {"incarnation": 2**64},
    "sent_at_over_u64": {"sent_at_ns": 2**64},
    "mode_5": {"mode": 5},
    "mode_negative": {"mode": -1},
    "entries_allowed_2": {"entries_allowed": 2},
    "entries_allowed_none": {"entries_allowed": None},
    "kill_switch_str": {"kill_switch": "yes"},
    "entry_scale_bp_negative": {"entry_scale_bp": -1},
    "entry_scale_bp_10001": {"entry_scale_bp": 10_001},
    "entry_scale_bp_float": {"entry_scale_bp": 5000.0},
    "entry_cooldown_ms_negative": {"entry_cooldown_ms": -1},
    "entry_cooldown_ms_over_u32": {"entry_cooldown_ms": 2**32},
    "max_notional_negative": {"max_notional": -0.5},
    "max_notional_nan": {"max_notional": math.nan},
    "max_notional_inf": {"max_notional": math.inf},
}


@pytest.mark.parametrize("case", sorted(BAD_REPLAYS))
def test_invalid_replay_request_raises_local_protocol_error(case: str) -> None:
    """A replay request with from_seq < 1 or a field outside u64 cannot be built."""
    with pytest.raises(LocalProtocolError):
        ReplayRequest(**BAD_REPLAYS[case])


@pytest.mark.parametrize("case", sorted(BAD_HEARTBEATS))
def test_invalid_heartbeat_raises_local_protocol_error(case: str) -> None:
    """A heartbeat with an unknown role or mode, a field outside u64 (u32) or a posture field out of range
    cannot be built; nor can a Posture with the same posture field."""
    fields: dict[str, Any] = {"role": Role.BRAIN, "last_seq": 0, "incarnation": 1, **BAD_HEARTBEATS[case]}
    with pytest.raises(LocalProtocolError):
        Heartbeat(**fields)
    posture = {k: v for k, v in BAD_HEARTBEATS[case].items() if k in Posture.__dataclass_fields__}
    if posture:
        with pytest.raises(LocalProtocolError):
            Posture(**posture)


@pytest.mark.parametrize("case", sorted(BAD_DECISIONS))
def test_invalid_decision_raises_local_protocol_error(case: str) -> None:
    """Constructing a decision with an out-of-range field raises LocalProtocolError."""
    with pytest.raises(LocalProtocolError):
        _decision(**BAD_DECISIONS[case])


@pytest.mark.parametrize("case", sorted(BAD_CONFIRMATIONS))
def test_invalid_confirmation_raises_local_protocol_error(case: str) -> None:
    """Constructing a confirmation with an out-of-range or inconsistent field raises LocalProtocolError."""
    with pytest.raises(LocalProtocolError):
        _confirmation(**BAD_CONFIRMATIONS[case])


@pytest.mark.parametrize(
    "make",
    [
        lambda: Instrument.symbol(""),
        lambda: Instrument.symbol("X" * 33),
        lambda: Instrument.symbol("BTC USDT"),
        lambda: Instrument.symbol("BTC\0USDT"),
        lambda: Instrument.symbol("BTC/€"),
        lambda: Instrument(InstrumentKind.MINT, bytes(31)),
        lambda: Instrument(InstrumentKind.MINT, bytes(33)),
        lambda: Instrument.mint("not-a-base58-mint-0OIl"),
    ],
    ids=["empty", "33_bytes", "space", "nul", "non_ascii", "mint_31", "mint_33", "bad_base58"],
)
def test_invalid_instrument_raises_local_protocol_error(make: Any) -> None:
    """An empty, over-long or non-printable symbol, or a mint not of 32 bytes, raises LocalProtocolError."""
    with pytest.raises(LocalProtocolError):
        make()


def test_plain_int_enums_are_coerced_to_members() -> None:
    """Ints naming enum members are stored as those members, so `is` comparisons hold."""
    msg = _confirmation(side=2, intent=2, status=1, reject_code=0)
    assert msg.side is Side.SELL and msg.status is Status.FILLED and msg.reject_code is RejectCode.NONE
    assert _decision(reason=2).reason is DecisionReason.STOP_LOSS
    assert Heartbeat(role=2, last_seq=0, incarnation=0).role is Role.EXECUTOR  # type: ignore[arg-type]


def test_codec_local_errors() -> None:
    """Empty secret, short key, non-message and out-of-range sent_at_ns raise LocalProtocolError."""
    with pytest.raises(LocalProtocolError):
        derive_key(b"")
    with pytest.raises(LocalProtocolError):
        Codec(KEY[:31])
    with pytest.raises(LocalProtocolError):
        CODEC.encode("not a message")  # type: ignore[arg-type]
    for msg in (_confirmation(), ReplayRequest(from_seq=1), Heartbeat(Role.EXECUTOR, 0, 0)):
        for sent in (-1, 2**64):
            with pytest.raises(LocalProtocolError):
                CODEC.encode(msg, sent_at_ns=sent)
        CODEC.encode(msg, sent_at_ns=U64_MAX)  # the largest u64 is fine


def test_local_protocol_error_is_not_remote() -> None:
    """LocalProtocolError (our bug) and RemoteProtocolError (peer's datagram) are disjoint branches."""
    assert not issubclass(LocalProtocolError, RemoteProtocolError)
    assert issubclass(LocalProtocolError, ValueError)


def test_replace_revalidates() -> None:
    """dataclasses.replace builds a new message through validation, so it cannot make an invalid one."""
    assert replace(_decision(), decision_id=8).decision_id == 8
    with pytest.raises(LocalProtocolError):
        replace(_decision(), quantity=-1.0)


@pytest.mark.parametrize("status", [Status.REJECTED, Status.FAILED])
@given(fee=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6))
def test_a_failed_execution_round_trips_with_its_fee(status: Status, fee: float) -> None:
    """Since v5 a REJECTED or FAILED confirmation carries the fee a failed execution paid (SPEC §6.2):
    any finite fee round-trips; nothing traded."""
    conf = _confirmation(status=status, reject_code=RejectCode.VENUE_ERROR, executed_qty=0.0, avg_price=0.0,
                         fee=fee)  # fmt: skip
    decoded = CODEC.decode(CODEC.encode(conf), NOW)
    assert decoded == conf and decoded.fee == fee
