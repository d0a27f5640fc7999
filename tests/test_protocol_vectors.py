"""Golden vectors of protocol v5 (``protocol/vectors.json``, described in ``protocol/SPEC.md``).

Valid vectors are checked three ways: the codec decodes them to the documented fields, encoding
the documented fields reproduces the bytes exactly, and an independent reader built only from the
SPEC byte tables (offsets hard-coded here, ``hashlib`` for the key and tag) agrees with both.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path
from typing import Any

import pytest

import protocol
from protocol import (
    RECONCILE_ID_BASE,
    BeliefMode,
    Codec,
    DecisionReason,
    ExecutionConfirmation,
    Heartbeat,
    Instrument,
    InstrumentKind,
    Intent,
    MessageType,
    RejectCode,
    RejectReason,
    RemoteProtocolError,
    ReplayRequest,
    Role,
    Side,
    StaleDatagram,
    Status,
    TradeDecision,
    derive_key,
)

VECTORS: dict[str, Any] = json.loads((Path(protocol.__file__).parent / "vectors.json").read_text("utf-8"))
VALID = VECTORS["valid"]
INVALID = VECTORS["invalid"]
NOW_NS: int = VECTORS["now_ns"]
SECRET = bytes.fromhex(VECTORS["secret_hex"])
KEY = bytes.fromhex(VECTORS["key_hex"])


def _codec() -> Codec:
    return Codec(KEY, max_age_ns=VECTORS["max_age_ns"], max_skew_ns=VECTORS["max_skew_ns"])


def _instrument(spec: dict[str, str]) -> Instrument:
    if spec["kind"] == "SYMBOL":
        return Instrument.symbol(spec["symbol"])
    inst = Instrument.mint(spec["mint"])
    assert inst.value.hex() == spec["mint_hex"]
    return inst


def _message(case: dict[str, Any]) -> protocol.Message:
    f = dict(case["fields"])
    if case["type"] == "REPLAY_REQUEST":
        return ReplayRequest(**f)
    if case["type"] == "HEARTBEAT":
        f["role"] = Role[f["role"]]
        f["mode"] = BeliefMode[f["mode"]]
        return Heartbeat(**f)
    f["instrument"] = _instrument(f["instrument"])
    f["side"] = Side[f["side"]]
    f["intent"] = Intent[f["intent"]]
    if case["type"] == "DECISION":
        f["reason"] = DecisionReason[f["reason"]]
        return TradeDecision(**f)
    f["status"] = Status[f["status"]]
    f["reject_code"] = RejectCode[f["reject_code"]]
    f["venue_ref"] = bytes.fromhex(f.pop("venue_ref_hex"))
    return ExecutionConfirmation(**f)


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["name"] for c in cases]


def _case(cases: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (case,) = [c for c in cases if c["name"] == name]
    return case


EDGES = {
    # valid vector exactly on a freshness bound -> its invalid twin 1 ns past that bound (SPEC.md §9)
    "decision_created_exactly_max_age_ago": "stale_decision",
    "decision_created_exactly_max_skew_ahead": "future_decision",
    "confirmation_sent_exactly_max_skew_ahead": "future_confirmation",
    "replay_request_sent_exactly_max_age_ago": "stale_replay_request",
}


# -- independent reader: offsets from SPEC.md §6, nothing from protocol.codec ----------------


def _u64(b: bytes, off: int) -> int:
    return int.from_bytes(b[off : off + 8], "little")


def _f64(b: bytes, off: int) -> float:
    return float(struct.unpack_from("<d", b, off)[0])


def _spec_instrument(flags: int, raw: bytes) -> dict[str, str]:
    if flags & 0x01:
        return {"kind": "MINT", "mint_hex": raw.hex()}
    return {"kind": "SYMBOL", "symbol": raw.rstrip(b"\0").decode("ascii")}


def _spec_read(b: bytes) -> dict[str, Any]:
    """Read a datagram with the SPEC byte tables; enums by name, like ``vectors.json``."""
    flags = b[2]
    if b[1] == 3:  # §6.3
        assert len(b) == 40
        assert b[2:8] == bytes(6)  # flags, reserved u8, reserved u32
        return {"from_seq": _u64(b, 16), "sent_at_ns": _u64(b, 8)}
    if b[1] == 4:  # §6.4
        assert len(b) == 72
        assert b[2] == 0  # flags
        assert b[41] & ~0x03 == 0  # guard_flags: ENTRIES_ALLOWED 0x01, KILL_SWITCH 0x02
        return {
            "role": {1: "BRAIN", 2: "EXECUTOR"}[b[3]],
            "last_seq": _u64(b, 16),
            "incarnation": _u64(b, 24),
            "in_flight": int.from_bytes(b[4:8], "little"),
            "journal_id": _u64(b, 32),
            "mode": {0: "NONE", 1: "GREEN", 2: "YELLOW", 3: "ORANGE", 4: "RED"}[b[40]],
            "entries_allowed": bool(b[41] & 0x01),
            "kill_switch": bool(b[41] & 0x02),
            "entry_scale_bp": int.from_bytes(b[42:44], "little"),
            "entry_cooldown_ms": int.from_bytes(b[44:48], "little"),
            "max_notional": _f64(b, 48),
            "sent_at_ns": _u64(b, 8),
        }
    if b[1] == 1:
        assert len(b) == 112
        return {
            "decision_id": _u64(b, 8),
            "instrument": _spec_instrument(flags, b[16:48]),
            "side": Side(b[3]).name,
            "intent": Intent(b[4]).name,
            "reason": DecisionReason(b[5]).name,
            "quantity": _f64(b, 48),
            "reference_price": _f64(b, 56),
            "max_slippage_bps": int.from_bytes(b[6:8], "little"),
            "created_at_ns": _u64(b, 64),
            "expires_at_ns": _u64(b, 72),
            "market_ts_ns": _u64(b, 80),
            "stop_price": _f64(b, 88),
        }
    assert b[1] == 2 and len(b) == 128
    ref_len = b[7]
    assert not any(b[96 + ref_len : 112])
    return {
        "decision_id": _u64(b, 16),
        "seq": _u64(b, 24),
        "instrument": _spec_instrument(flags, b[32:64]),
        "side": Side(b[3]).name,
        "intent": Intent(b[4]).name,
        "status": Status(b[5]).name,
        "reject_code": RejectCode(b[6]).name,
        "executed_qty": _f64(b, 64),
        "avg_price": _f64(b, 72),
        "fee": _f64(b, 80),
        "executed_at_ns": _u64(b, 88),
        "venue_ref_hex": b[96 : 96 + ref_len].hex(),
        "venue_ref_truncated": bool(flags & 0x02),
        "slippage_over_limit": bool(flags & 0x04),
        "reconciled": bool(flags & 0x08),
        "sent_at_ns": _u64(b, 8),
    }


# -- tests ----------------------------------------------------------------------------------


def test_key_derivation_matches_vectors() -> None:
    """derive_key and a direct hashlib BLAKE2b(person="tandem-bus-v1") both give key_hex."""
    independent = hashlib.blake2b(SECRET, digest_size=32, person=b"tandem-bus-v1").digest()
    assert independent == KEY
    assert derive_key(SECRET) == KEY


def test_vector_file_covers_the_documented_cases() -> None:
    """vectors.json holds every case SPEC.md promises, with reasons from RejectReason."""
    names = set(_ids(VALID))
    assert {
        "decision_buy_open_btc_usdt",
        "decision_sell_close_stop_loss_usdc_mint",
        "decision_sell_protect_trailing_btc_usdt",
        "confirmation_filled_binance_order_id",
        "confirmation_accepted_protect",
        "confirmation_filled_mint_truncated_signature",
        "confirmation_rejected_insufficient_funds",
        "confirmation_expired",
        "heartbeat_brain",
        "heartbeat_executor",
        "replay_request_from_seq_6",
        *EDGES,
        "decision_max_slippage_bps_0",
        "decision_max_slippage_bps_10000",
        "decision_stop_price_negative_zero",
        "confirmation_expired_negative_zero",
        "decision_sell_close_mint_with_zero_ends",
        "confirmation_venue_ref_with_zero_bytes",
        *V4_VALID,
    } <= names
    assert {c["type"] for c in VALID} == {t.name for t in MessageType}
    roles = {c["fields"]["role"] for c in VALID if c["type"] == "HEARTBEAT"}
    assert roles == {r.name for r in Role}
    beats = [c["fields"] for c in VALID if c["type"] == "HEARTBEAT"]
    assert {b["mode"] for b in beats} == {m.name for m in BeliefMode}
    assert {(b["entries_allowed"], b["kill_switch"]) for b in beats} == {(True, False), (False, False),
                                                                        (False, True), (True, True)}  # fmt: skip
    assert {0, 10_000} <= {b["entry_scale_bp"] for b in beats}
    assert 0.0 in {b["max_notional"] for b in beats} and any(b["max_notional"] > 0 for b in beats)
    codes = {c["fields"]["reject_code"] for c in VALID if c["type"] == "CONFIRMATION"}
    assert "BELIEF_GUARD" in codes
    reasons = {c["reason"] for c in INVALID}
    # every codec check has a vector; "direction" is the link's check (SPEC §8 #8), not the bytes'
    assert reasons == {r.value for r in RejectReason if r.value != "direction"}
    assert {
        "unknown_type",
        "known_type_wrong_size",
        "replay_request_from_seq_0",
        "heartbeat_unknown_role",
        "decision_negative_stop_price",
        "wrong_version",
        *EDGES.values(),
        "decision_max_slippage_bps_10001",
        "decision_protect_stop_price_negative_zero",
        "decision_buy_open_stop_at_reference",
        "decision_expires_at_created_at",
        "confirmation_venue_ref_padding_not_zero",
        "confirmation_venue_ref_len_17",
        *V4_INVALID,
    } <= set(_ids(INVALID))
    assert VECTORS["protocol_version"] == protocol.PROTOCOL_VERSION


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_valid_vector_decodes_to_documented_fields(case: dict[str, Any]) -> None:
    """Each valid datagram decodes at now_ns to exactly the message its fields describe."""
    data = bytes.fromhex(case["hex"])
    decoded = _codec().decode(data, NOW_NS)
    expected = _message(case)
    assert decoded == expected
    assert type(decoded) is type(expected)
    if not isinstance(expected, TradeDecision):
        assert decoded.sent_at_ns == expected.sent_at_ns  # type: ignore[union-attr]  # excluded from ==
    if isinstance(expected, ExecutionConfirmation):
        assert isinstance(decoded, ExecutionConfirmation)
        assert decoded.venue_ref_truncated == expected.venue_ref_truncated


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_encoding_documented_fields_gives_exact_bytes(case: dict[str, Any]) -> None:
    """Encoding the documented fields with the vector key reproduces the datagram byte for byte."""
    assert _codec().encode(_message(case)).hex() == case["hex"]


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_spec_byte_table_reads_valid_vector(case: dict[str, Any]) -> None:
    """A reader built from the SPEC offsets and hashlib agrees with the fields and the tag."""
    data = bytes.fromhex(case["hex"])
    types = {"DECISION": (1, 112), "CONFIRMATION": (2, 128), "REPLAY_REQUEST": (3, 40), "HEARTBEAT": (4, 72)}
    assert (data[0], (data[1], len(data))) == (6, types[case["type"]])
    body, tag = data[:-16], data[-16:]
    assert hashlib.blake2b(body, key=KEY, digest_size=16).digest() == tag
    expected = dict(case["fields"])
    if "instrument" in expected:
        expected["instrument"] = {k: v for k, v in expected["instrument"].items() if k != "mint"}
    assert _spec_read(data) == expected
    assert data[2] & ~0x0F == 0


def test_truncated_signature_vector_carries_first_16_bytes() -> None:
    """The Solana case carries the first 16 of the 64 signature bytes with flag 0x02 set."""
    (case,) = [c for c in VALID if c["name"] == "confirmation_filled_mint_truncated_signature"]
    full = bytes.fromhex(case["venue_ref_full"]["signature_hex"])
    data = bytes.fromhex(case["hex"])
    assert len(full) == 64
    assert data[7] == 16 and data[96:112] == full[:16]
    assert data[2] == 0x01 | 0x02
    from solders.signature import Signature

    assert bytes(Signature.from_string(case["venue_ref_full"]["signature"])) == full


def test_binance_order_id_vector_is_ascii_decimal() -> None:
    """The Binance case carries the orderId as ASCII decimal digits, not truncated."""
    (case,) = [c for c in VALID if c["name"] == "confirmation_filled_binance_order_id"]
    ref = bytes.fromhex(case["fields"]["venue_ref_hex"])
    assert ref.isdigit() and len(ref) <= 16
    assert not case["fields"]["venue_ref_truncated"]


@pytest.mark.parametrize("case", INVALID, ids=_ids(INVALID))
def test_invalid_vector_is_rejected_with_documented_reason(case: dict[str, Any]) -> None:
    """Each invalid datagram raises the documented RemoteProtocolError subclass and reason."""
    with pytest.raises(RemoteProtocolError) as info:
        _codec().decode(bytes.fromhex(case["hex"]), NOW_NS)
    assert info.value.reason is RejectReason(case["reason"])
    assert type(info.value).__name__ == case["error"]
    assert getattr(protocol, case["error"]).reason is info.value.reason


def test_heartbeat_and_replay_vectors_tell_one_gap_story() -> None:
    """The executor heartbeat is ahead of the brain's, and the replay request asks for the next seq."""
    by_name = {c["name"]: c["fields"] for c in VALID}
    brain, executor = by_name["heartbeat_brain"], by_name["heartbeat_executor"]
    assert executor["last_seq"] > brain["last_seq"]
    assert by_name["replay_request_from_seq_6"]["from_seq"] == brain["last_seq"] + 1
    assert brain["incarnation"] > 2**53 and executor["incarnation"] > 2**53  # JSON ints, not doubles


def test_known_type_wrong_size_vector_names_a_defined_type() -> None:
    """The 'known type, wrong size' datagram names type 3, yet is a decision's 112 bytes."""
    (case,) = [c for c in INVALID if c["name"] == "known_type_wrong_size"]
    data = bytes.fromhex(case["hex"])
    assert data[1] == MessageType.REPLAY_REQUEST and len(data) == 112
    assert case["reason"] == "size"
    (unknown,) = [c for c in INVALID if c["name"] == "unknown_type"]
    assert bytes.fromhex(unknown["hex"])[1] not in set(MessageType)


def test_mint_instrument_round_trips_base58() -> None:
    """The USDC mint's base58 address and its 32 raw bytes name the same Instrument."""
    (case,) = [c for c in VALID if c["name"] == "decision_sell_close_stop_loss_usdc_mint"]
    spec = case["fields"]["instrument"]
    inst = Instrument(InstrumentKind.MINT, bytes.fromhex(spec["mint_hex"]))
    assert inst == Instrument.mint(spec["mint"])
    assert str(inst) == spec["mint"]


def test_v2_peer_is_rejected_with_version_mismatch() -> None:
    """A datagram stamped version 2 (a protocol v2 peer) is refused with VersionMismatch, nothing else read."""
    (case,) = [c for c in INVALID if c["name"] == "wrong_version"]
    data = bytes.fromhex(case["hex"])
    assert data[0] == 2 and protocol.PROTOCOL_VERSION == 6
    assert (case["reason"], case["error"]) == ("version", "VersionMismatch")


def test_heartbeat_carries_in_flight_and_journal_id() -> None:
    """The executor heartbeat vector holds in_flight (u32 at bytes 4..7) and journal_id (u64 at 32..39),
    and is 72 bytes (since v4)."""
    (case,) = [c for c in VALID if c["name"] == "heartbeat_executor"]
    data = bytes.fromhex(case["hex"])
    assert len(data) == 72 == protocol.HEARTBEAT_SIZE
    assert int.from_bytes(data[4:8], "little") == case["fields"]["in_flight"] == 2
    assert int.from_bytes(data[32:40], "little") == case["fields"]["journal_id"] != 0


def test_v3_exit_over_slippage_limit_flag() -> None:
    """The exit vector sets flag 0x04 (SLIPPAGE_OVER_LIMIT) on a FILLED confirmation and decodes to it."""
    (case,) = [c for c in VALID if c["name"] == "confirmation_filled_exit_over_slippage_limit"]
    data = bytes.fromhex(case["hex"])
    assert data[2] & 0x04 and case["fields"]["slippage_over_limit"] is True
    msg = Codec(bytes.fromhex(VECTORS["key_hex"])).decode(data, VECTORS["now_ns"])
    assert msg.slippage_over_limit and msg.status is Status.FILLED


def test_protect_vectors_carry_stop_price_and_accepted_status() -> None:
    """The PROTECT decision's stop_price sits at bytes 88..95, and its ACCEPTED answer traded nothing."""
    by_name = {c["name"]: c for c in VALID}
    protect = by_name["decision_sell_protect_trailing_btc_usdt"]
    data = bytes.fromhex(protect["hex"])
    assert (data[3], data[4]) == (Side.SELL, Intent.PROTECT)
    assert _f64(data, 88) == protect["fields"]["stop_price"] > 0
    entry = by_name["decision_buy_open_btc_usdt"]["fields"]
    assert 0 < entry["stop_price"] < entry["reference_price"]
    accepted = by_name["confirmation_accepted_protect"]["fields"]
    assert (accepted["status"], accepted["intent"], accepted["reject_code"]) == ("ACCEPTED", "PROTECT", "NONE")
    assert accepted["executed_qty"] == accepted["avg_price"] == accepted["fee"] == 0
    assert accepted["decision_id"] == protect["fields"]["decision_id"]


V4_VALID = (
    "confirmation_reconciled_adopted",
    "confirmation_reconciled_cleared",
    "confirmation_reconciled_drift_down",
    "decision_id_largest",
    "confirmation_rejected_belief_guard",
    "heartbeat_executor_posture_yellow",
    "heartbeat_executor_posture_orange",
    "heartbeat_executor_posture_red_kill_switch",
    "heartbeat_executor_kill_switch_with_entries_allowed",
)
V4_INVALID = {  # name -> reason (SPEC.md §12, added with issue #14)
    "confirmation_reconciled_rejected": "field",
    "confirmation_reconciled_partially_filled": "field",
    "confirmation_reconciled_small_decision_id": "field",
    "confirmation_executor_id_not_reconciled": "field",
    "confirmation_reconciled_protect": "field",  # v4's open_sell, valid since v6 (a short adopted)
    "decision_id_2_pow_63": "field",
    "heartbeat_guard_flags_unknown_bit": "field",
    "heartbeat_entry_scale_bp_10001": "field",
    "heartbeat_mode_5": "field",
    "heartbeat_max_notional_negative": "field",
    "heartbeat_max_notional_nan": "field",
    "heartbeat_max_notional_inf": "field",
    "v3_heartbeat": "version",
    "v3_decision": "version",
}


# -- v4 vectors (issue #14) ---------------------------------------------------------------------


def test_reconciled_vectors_carry_flag_0x08_and_executor_ids() -> None:
    """SPEC §6.2 "Reconciliation": each reconciled vector is FILLED with flag 0x08 and a decision_id >= 2^63
    (bytes 16..23), OPEN, CLOSE or REDUCE of a long or (since v6) a short; every other confirmation
    vector has neither."""
    legs = set()
    for case in VALID:
        if case["type"] != "CONFIRMATION":
            continue
        data = bytes.fromhex(case["hex"])
        decoded = _codec().decode(data, NOW_NS)
        assert isinstance(decoded, ExecutionConfirmation)
        reconciled = bool(data[2] & 0x08)
        assert reconciled is case["fields"]["reconciled"] is decoded.reconciled
        assert reconciled is (_u64(data, 16) >= 2**63) is (decoded.decision_id >= RECONCILE_ID_BASE)
        if reconciled:
            assert decoded.status is Status.FILLED and data[5] == 1
            legs.add((decoded.intent, decoded.side))
    assert {(Intent.OPEN, Side.BUY), (Intent.CLOSE, Side.SELL), (Intent.REDUCE, Side.SELL),
            (Intent.OPEN, Side.SELL), (Intent.CLOSE, Side.BUY)} <= legs  # the last two: a short's, since v6
    adopted = _case(VALID, "confirmation_reconciled_adopted")["fields"]
    assert adopted["decision_id"] == 2**63 + 1 == RECONCILE_ID_BASE + 1


def test_decision_ids_stop_below_2_pow_63() -> None:
    """The largest decision id, 2^63 - 1, decodes; 2^63 is InvalidField (the executor's id space)."""
    data = bytes.fromhex(_case(VALID, "decision_id_largest")["hex"])
    assert _u64(data, 8) == 2**63 - 1 == _codec().decode(data, NOW_NS).decision_id  # type: ignore[union-attr]
    bad = bytes.fromhex(_case(INVALID, "decision_id_2_pow_63")["hex"])
    assert _u64(bad, 8) == 2**63
    with pytest.raises(protocol.InvalidField):
        _codec().decode(bad, NOW_NS)


def test_belief_guard_vector_is_reject_code_10() -> None:
    """BELIEF_GUARD is RejectCode 10, carried by a REJECTED answer to an OPEN (byte 6)."""
    data = bytes.fromhex(_case(VALID, "confirmation_rejected_belief_guard")["hex"])
    assert RejectCode.BELIEF_GUARD == 10 and data[6] == 10
    assert (data[4], data[5]) == (Intent.OPEN, Status.REJECTED)


def test_posture_vectors_follow_the_spec_layout() -> None:
    """Heartbeat bytes 40..55 (SPEC §6.4): mode u8, guard_flags u8, entry_scale_bp u16, entry_cooldown_ms
    u32, max_notional f64; byte 2 stays 0; the decoded Posture matches."""
    for case in VALID:
        if case["type"] != "HEARTBEAT":
            continue
        data, f = bytes.fromhex(case["hex"]), case["fields"]
        assert data[2] == 0 and data[40] == BeliefMode[f["mode"]]
        assert data[41] == f["entries_allowed"] * 0x01 | f["kill_switch"] * 0x02
        assert struct.unpack_from("<HId", data, 42) == (f["entry_scale_bp"], f["entry_cooldown_ms"],
                                                        f["max_notional"])  # fmt: skip
        hb = _codec().decode(data, NOW_NS)
        assert isinstance(hb, Heartbeat)
        assert hb.posture == protocol.Posture(BeliefMode[f["mode"]], f["entries_allowed"], f["kill_switch"],
                                              f["entry_scale_bp"], f["entry_cooldown_ms"], f["max_notional"])
        if f["role"] == "BRAIN":  # a brain sends the neutral posture
            assert hb.posture == protocol.Posture()
    red = _case(VALID, "heartbeat_executor_posture_red_kill_switch")["fields"]
    assert red["kill_switch"] and red["entry_cooldown_ms"] == 2**32 - 1


@pytest.mark.parametrize(("name", "reason"), V4_INVALID.items(), ids=list(V4_INVALID))
def test_v4_invalid_vectors(name: str, reason: str) -> None:
    """Each v4 invalid vector is rejected with its reason; the v3 datagrams at the version check (a v3
    heartbeat is 56 bytes, so the version must be checked before the size)."""
    case = _case(INVALID, name)
    data = bytes.fromhex(case["hex"])
    assert case["reason"] == reason
    with pytest.raises(RemoteProtocolError) as info:
        _codec().decode(data, NOW_NS)
    assert info.value.reason is RejectReason(reason)
    if name.startswith("v3_"):
        assert data[0] == 3 and hashlib.blake2b(data[:-16], key=KEY, digest_size=16).digest() == data[-16:]
    if name == "v3_heartbeat":
        assert (len(data), data[1]) == (56, MessageType.HEARTBEAT)


# -- edge vectors (issue #12 §3 j) ------------------------------------------------------------


def _stamp(data: bytes) -> int:
    """The freshness stamp by the SPEC tables: created_at_ns of a decision, sent_at_ns otherwise."""
    return _u64(data, 64) if data[1] == 1 else _u64(data, 8)


@pytest.mark.parametrize(("edge", "twin"), EDGES.items(), ids=list(EDGES))
def test_stamp_exactly_on_a_freshness_bound_is_fresh_and_one_ns_past_it_is_stale(edge: str, twin: str) -> None:
    """SPEC §9: both bounds are inclusive. A stamp of exactly now - max_age or now + max_skew decodes;
    the same datagram decoded 1 ns later (past bound) or earlier (future bound) is stale, and so is the
    twin stamped 1 ns outside the window at now_ns — through a fresh codec and through the memo."""
    data = bytes.fromhex(_case(VALID, edge)["hex"])
    stamp, max_age, max_skew = _stamp(data), VECTORS["max_age_ns"], VECTORS["max_skew_ns"]
    past = stamp == NOW_NS - max_age
    assert past or stamp == NOW_NS + max_skew
    outside = NOW_NS + 1 if past else NOW_NS - 1
    codec = _codec()
    assert codec.decode(data, NOW_NS) == _message(_case(VALID, edge))
    with pytest.raises(StaleDatagram):
        codec.decode(data, outside)  # remembered bytes: only freshness runs again
    with pytest.raises(StaleDatagram):
        _codec().decode(data, outside)
    twin_case = _case(INVALID, twin)
    twin_data = bytes.fromhex(twin_case["hex"])
    assert twin_case["reason"] == "stale" and twin_data[1] == data[1]
    assert _stamp(twin_data) == (stamp - 1 if past else stamp + 1)
    with pytest.raises(StaleDatagram):
        _codec().decode(twin_data, NOW_NS)
    inside = NOW_NS - 1 if past else NOW_NS + 1  # the twin decoded 1 ns the other way is on the bound: fresh
    assert _codec().decode(twin_data, inside) is not None


def test_max_slippage_bps_ends_are_valid_and_one_past_is_not() -> None:
    """max_slippage_bps (u16 at bytes 6..7) is valid at 0 and 10000; 10001 is InvalidField."""
    for name, value in (("decision_max_slippage_bps_0", 0), ("decision_max_slippage_bps_10000", 10_000)):
        case = _case(VALID, name)
        data = bytes.fromhex(case["hex"])
        assert int.from_bytes(data[6:8], "little") == case["fields"]["max_slippage_bps"] == value
        assert _codec().decode(data, NOW_NS).max_slippage_bps == value  # type: ignore[union-attr]
    bad = bytes.fromhex(_case(INVALID, "decision_max_slippage_bps_10001")["hex"])
    assert int.from_bytes(bad[6:8], "little") == 10_001
    with pytest.raises(protocol.InvalidField):
        _codec().decode(bad, NOW_NS)


def test_negative_zero_is_valid_where_zero_is_and_keeps_its_sign_bit() -> None:
    """-0.0 (bytes 00 .. 00 80) is a stop_price of 'none' and an '= 0' of a non-executed confirmation; it
    is read from JSON, decoded and encoded with its sign bit. It is not a PROTECT's stop (> 0 needed)."""
    neg_zero = struct.pack("<d", -0.0)
    assert neg_zero == bytes(7) + b"\x80"
    cases = {"decision_stop_price_negative_zero": ("stop_price", (88,)),
             "confirmation_expired_negative_zero": ("executed_qty", (64, 72, 80))}  # fmt: skip
    for name, (field, offsets) in cases.items():
        case = _case(VALID, name)
        data = bytes.fromhex(case["hex"])
        assert all(data[o : o + 8] == neg_zero for o in offsets)
        assert math.copysign(1.0, case["fields"][field]) == -1.0  # the JSON text "-0.0" is negative zero
        decoded = _codec().decode(data, NOW_NS)
        assert math.copysign(1.0, getattr(decoded, field)) == -1.0
        assert _codec().encode(decoded).hex() == case["hex"]
    stop = _codec().decode(bytes.fromhex(_case(VALID, "decision_stop_price_negative_zero")["hex"]), NOW_NS)
    assert isinstance(stop, TradeDecision) and stop.stop_for_fill(37000.0) == 0.0  # no stop, like +0.0
    bad = bytes.fromhex(_case(INVALID, "decision_protect_stop_price_negative_zero")["hex"])
    assert (bad[4], bad[88:96]) == (Intent.PROTECT, neg_zero)
    with pytest.raises(protocol.InvalidField):
        _codec().decode(bad, NOW_NS)


BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"  # SPEC.md §5.1


def _base58(raw: bytes) -> str:
    """Base58 as SPEC §5.1 states it: the bytes as a big-endian number, one '1' per leading 0x00 byte."""
    n, out = int.from_bytes(raw, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = BASE58[r] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def test_mints_display_in_the_spec_base58_alphabet() -> None:
    """Every mint in the vectors is its mint_hex in the SPEC's base58 alphabet (checked without solders)."""
    mints = [c["fields"]["instrument"] for c in VALID if c["fields"].get("instrument", {}).get("kind") == "MINT"]
    assert len(mints) >= 3
    for spec in mints:
        assert _base58(bytes.fromhex(spec["mint_hex"])) == spec["mint"]
        assert str(Instrument(InstrumentKind.MINT, bytes.fromhex(spec["mint_hex"]))) == spec["mint"]
    assert _base58(bytes(32)) == "1" * 32


def test_mint_ending_in_zero_bytes_keeps_them() -> None:
    """The trailing 0x00 bytes of a mint are data: the wire carries all 32 bytes, decoding keeps them, and
    the leading 0x00 is a leading '1' in base58."""
    case = _case(VALID, "decision_sell_close_mint_with_zero_ends")
    data = bytes.fromhex(case["hex"])
    raw = bytes.fromhex(case["fields"]["instrument"]["mint_hex"])
    assert data[2] & 0x01 and data[16:48] == raw and raw.endswith(b"\0\0\0") and raw[0] == 0
    decoded = _codec().decode(data, NOW_NS)
    assert decoded.instrument.value == raw and len(decoded.instrument.value) == 32  # type: ignore[union-attr]
    assert case["fields"]["instrument"]["mint"].startswith("1")


def test_venue_ref_with_zero_bytes_is_delimited_by_its_length() -> None:
    """A venue_ref may begin and end with 0x00: byte 7 gives its length, the rest of the 16 bytes is zero
    padding, and a nonzero padding byte or a length of 17 is InvalidField."""
    case = _case(VALID, "confirmation_venue_ref_with_zero_bytes")
    data = bytes.fromhex(case["hex"])
    ref = bytes.fromhex(case["fields"]["venue_ref_hex"])
    assert data[7] == len(ref) == 9 and ref[0] == 0 and ref.endswith(b"\0\0")
    assert data[96:112] == ref + bytes(7)
    assert _codec().decode(data, NOW_NS).venue_ref == ref  # type: ignore[union-attr]
    for name in ("confirmation_venue_ref_padding_not_zero", "confirmation_venue_ref_len_17"):
        with pytest.raises(protocol.InvalidField):
            _codec().decode(bytes.fromhex(_case(INVALID, name)["hex"]), NOW_NS)


def test_stop_price_rule_vectors() -> None:
    """SPEC §6.1: a BUY OPEN stop equal to its reference and an expiry equal to the creation are
    InvalidField (strict inequalities)."""
    for name in ("decision_buy_open_stop_at_reference", "decision_expires_at_created_at"):
        data = bytes.fromhex(_case(INVALID, name)["hex"])
        with pytest.raises(protocol.InvalidField):
            _codec().decode(data, NOW_NS)
    at_ref = bytes.fromhex(_case(INVALID, "decision_buy_open_stop_at_reference")["hex"])
    assert (at_ref[3], at_ref[4]) == (Side.BUY, Intent.OPEN) and _f64(at_ref, 88) == _f64(at_ref, 56)
    same = bytes.fromhex(_case(INVALID, "decision_expires_at_created_at")["hex"])
    assert _u64(same, 64) == _u64(same, 72)


def test_vector_file_is_what_make_vectors_writes() -> None:
    """protocol/vectors.json is exactly the generator's output (tests/make_vectors.py --check)."""
    import importlib.util

    path = Path(__file__).parent / "make_vectors.py"
    spec = importlib.util.spec_from_file_location("make_vectors", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == (Path(protocol.__file__).parent / "vectors.json").read_text("utf-8")


# -- v5 vectors (issue #15) ---------------------------------------------------------------------


def test_v5_failed_executions_carry_their_fee() -> None:
    """REJECTED and FAILED confirmations may carry a fee (a failed execution's, SPEC §6.2 since v5):
    the vectors decode with it, nothing traded."""
    for name, status in (("confirmation_rejected_swap_failed_with_fee", "REJECTED"),
                         ("confirmation_failed_with_fee", "FAILED")):  # fmt: skip
        case = _case(VALID, name)
        conf = _codec().decode(bytes.fromhex(case["hex"]), NOW_NS)
        assert conf.status.name == status and conf.fee == case["fields"]["fee"] > 0
        assert conf.executed_qty == conf.avg_price == 0.0


V5_INVALID = {"confirmation_expired_with_fee": "field", "confirmation_rejected_with_executed_qty": "field",
              "v4_decision": "version"}  # fmt: skip


@pytest.mark.parametrize(("name", "reason"), V5_INVALID.items(), ids=list(V5_INVALID))
def test_v5_invalid_vectors(name: str, reason: str) -> None:
    """Each v5 invalid vector is rejected with its reason; a v4 decision at the version check."""
    case = _case(INVALID, name)
    data = bytes.fromhex(case["hex"])
    assert case["reason"] == reason
    with pytest.raises(RemoteProtocolError) as info:
        _codec().decode(data, NOW_NS)
    assert info.value.reason is RejectReason(reason)
    if name == "v4_decision":
        assert data[0] == 4 and hashlib.blake2b(data[:-16], key=KEY, digest_size=16).digest() == data[-16:]


# -- v6 vectors (issue #16: short positions) ----------------------------------------------------


def test_v6_short_decisions_decode_with_their_stop_above_the_reference() -> None:
    """A short entry (SELL OPEN) carries its stop above the reference; its exit is a BUY CLOSE and its
    stop move a BUY PROTECT (SPEC §6.1 since v6)."""
    short = _codec().decode(bytes.fromhex(_case(VALID, "decision_sell_open_short_with_stop")["hex"]), NOW_NS)
    assert isinstance(short, TradeDecision) and (short.side, short.intent) == (Side.SELL, Intent.OPEN)
    assert short.stop_price > short.reference_price
    assert short.stop_for_fill(41_000.0) == 41_000.0 * (43_200.0 / 40_000.0) > 41_000.0
    close = _codec().decode(bytes.fromhex(_case(VALID, "decision_buy_close_short")["hex"]), NOW_NS)
    protect = _codec().decode(bytes.fromhex(_case(VALID, "decision_buy_protect_short")["hex"]), NOW_NS)
    assert (close.side, close.intent) == (Side.BUY, Intent.CLOSE)
    assert (protect.side, protect.intent) == (Side.BUY, Intent.PROTECT)


V6_INVALID = {"decision_sell_open_stop_below_reference": "field", "decision_sell_open_stop_at_reference": "field",
              "decision_take_profit_without_limit": "field", "decision_intent_6": "field",
              "decision_reason_9": "field", "v5_decision": "version"}  # fmt: skip


def test_v6_exit_leg_vectors() -> None:
    """The exit legs' decisions (SPEC §6.1 "Exit legs", since v6): a TAKE_PROFIT carries its limit in
    stop_price and is answered ACCEPTED; a REDUCE reports the take-profit's fill by its reason; a PROTECT
    to breakeven is a PROTECT with reason BREAKEVEN."""
    codec = _codec()
    tp = codec.decode(bytes.fromhex(_case(VALID, "decision_take_profit_long")["hex"]), NOW_NS)
    assert (tp.intent, tp.reason, tp.stop_price, tp.side) == (Intent.TAKE_PROFIT, DecisionReason.PARTIAL_TAKE_PROFIT,
                                                              41_200.0, Side.SELL)  # fmt: skip
    accepted = codec.decode(bytes.fromhex(_case(VALID, "confirmation_take_profit_accepted")["hex"]), NOW_NS)
    assert accepted.status is Status.ACCEPTED and accepted.intent is Intent.TAKE_PROFIT
    report = codec.decode(bytes.fromhex(_case(VALID, "decision_reduce_partial_take_profit")["hex"]), NOW_NS)
    assert (report.intent, report.reason) == (Intent.REDUCE, DecisionReason.PARTIAL_TAKE_PROFIT)
    be = codec.decode(bytes.fromhex(_case(VALID, "decision_protect_breakeven")["hex"]), NOW_NS)
    assert (be.intent, be.reason) == (Intent.PROTECT, DecisionReason.BREAKEVEN)


@pytest.mark.parametrize(("name", "reason"), V6_INVALID.items(), ids=list(V6_INVALID))
def test_v6_invalid_vectors(name: str, reason: str) -> None:
    """Each v6 invalid vector is rejected with its reason: a short's stop at or below its reference, and a
    v5 decision at the version check."""
    case = _case(INVALID, name)
    data = bytes.fromhex(case["hex"])
    assert case["reason"] == reason
    with pytest.raises(RemoteProtocolError) as info:
        _codec().decode(data, NOW_NS)
    assert info.value.reason is RejectReason(reason)
    if name == "v5_decision":
        assert data[0] == 5 and hashlib.blake2b(data[:-16], key=KEY, digest_size=16).digest() == data[-16:]
