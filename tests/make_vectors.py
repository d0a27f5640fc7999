"""Generate ``protocol/vectors.json``, the golden vectors of protocol v4, from the codec.

Usage::

    .venv/bin/python tests/make_vectors.py          # (re)write protocol/vectors.json
    .venv/bin/python tests/make_vectors.py --check  # exit 1 if the file is not what this writes

The output is deterministic: a fixed secret, a fixed ``now_ns`` and fixed messages. Every float is
chosen exactly representable in binary64 with a short decimal form, so the JSON number means the
same double in any language. The Solana signature is synthetic (BLAKE2b of a fixed label), the
Binance orderId is made up; the USDC mint is the real one. ``tests/test_protocol_vectors.py``
checks the file against the codec; regenerate only for a deliberate wire change (a new version).
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import struct
import sys
from pathlib import Path
from typing import Any

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
    RemoteProtocolError,
    ReplayRequest,
    Role,
    Side,
    Status,
    TradeDecision,
    derive_key,
)

VECTORS_PATH = Path(protocol.__file__).parent / "vectors.json"

SECRET = b"tandem protocol v1 golden vectors"
NOW_NS = 1_735_689_600_000_000_000  # 2025-01-01T00:00:00Z
S = 1_000_000_000  # ns per second
MS = 1_000_000  # ns per millisecond

USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
BINANCE_ORDER_ID = 41220583211  # synthetic, 11 decimal digits
SOLANA_SIGNATURE = hashlib.blake2b(b"tandem golden vector signature", digest_size=64).digest()
BRAIN_INCARNATION = 0x9E3779B97F4A7C15  # fixed stand-ins for the random per-start values, > 2^53
EXECUTOR_INCARNATION = 0xD1B54A32D192ED03
EXECUTOR_JOURNAL_ID = 0x5851F42D4C957F2D  # stand-in for the executor journal's random identity
MAX_AGE_NS = protocol.DEFAULT_MAX_AGE_NS  # the freshness window of every vector (SPEC.md §9)
MAX_SKEW_NS = protocol.DEFAULT_MAX_SKEW_NS
# A synthetic mint that begins and ends with 0x00 bytes: the trailing ones are data, not padding
# (SPEC.md §5.1), and the leading one is a leading "1" in base58.
ZERO_ENDED_MINT = b"\0" + hashlib.blake2b(b"tandem golden vector mint", digest_size=28).digest() + b"\0\0\0"
# A synthetic 9-byte venue reference with 0x00 bytes inside and at its end: its length byte, not
# NUL-stripping, delimits it (SPEC.md §5.2).
VENUE_REF_WITH_NULS = bytes.fromhex("00a1b2c3d4e5f60000")

MESSAGE_TYPES = {
    TradeDecision: MessageType.DECISION,
    ExecutionConfirmation: MessageType.CONFIRMATION,
    ReplayRequest: MessageType.REPLAY_REQUEST,
    Heartbeat: MessageType.HEARTBEAT,
}


def _instrument_json(inst: Instrument) -> dict[str, str]:
    if inst.kind is InstrumentKind.SYMBOL:
        return {"kind": "SYMBOL", "symbol": inst.value.decode("ascii")}
    return {"kind": "MINT", "mint": str(inst), "mint_hex": inst.value.hex()}


def _fields_json(msg: protocol.Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in msg.__dataclass_fields__:
        value = getattr(msg, name)
        if isinstance(value, Instrument):
            value = _instrument_json(value)
        elif isinstance(value, enum.Enum):
            value = value.name
        elif isinstance(value, bytes):
            value = value.hex()
            name = f"{name}_hex"
        out[name] = value
    return out


def _valid_messages() -> list[tuple[str, str, protocol.Message]]:
    btc = Instrument.symbol("BTC/USDT")
    usdc = Instrument.mint(USDC_MINT)
    created_1 = NOW_NS - 1 * S
    created_2 = NOW_NS - 2 * S
    return [
        (
            "decision_buy_open_btc_usdt",
            "BUY to OPEN 0.0625 BTC/USDT on a strategy signal, 50 bps slippage, 30 s to live, with a "
            "protective stop at 34155.25 (about 8 % below the reference price).",
            TradeDecision(
                decision_id=1,
                instrument=btc,
                side=Side.BUY,
                intent=Intent.OPEN,
                reason=DecisionReason.SIGNAL,
                quantity=0.0625,
                reference_price=37125.25,
                max_slippage_bps=50,
                created_at_ns=created_1,
                expires_at_ns=created_1 + 30 * S,
                market_ts_ns=created_1 - 250 * MS,
                stop_price=34155.25,
            ),
        ),
        (
            "decision_sell_close_stop_loss_usdc_mint",
            "SELL to CLOSE 1250.75 of the USDC mint on a hard stop-loss, 100 bps slippage.",
            TradeDecision(
                decision_id=2,
                instrument=usdc,
                side=Side.SELL,
                intent=Intent.CLOSE,
                reason=DecisionReason.STOP_LOSS,
                quantity=1250.75,
                reference_price=0.9990234375,
                max_slippage_bps=100,
                created_at_ns=created_2,
                expires_at_ns=created_2 + 10 * S,
                market_ts_ns=created_2,
            ),
        ),
        (
            "decision_sell_protect_trailing_btc_usdt",
            "PROTECT the 0.0625 BTC/USDT long: move its protective stop up to the trailing stop 39425.5 "
            "(SELL is the closing side; nothing trades unless the stop already filled).",
            TradeDecision(
                decision_id=6,
                instrument=btc,
                side=Side.SELL,
                intent=Intent.PROTECT,
                reason=DecisionReason.TRAILING_TAKE_PROFIT,
                quantity=0.0625,
                reference_price=41500.5,
                max_slippage_bps=50,
                created_at_ns=created_1,
                expires_at_ns=created_1 + 30 * S,
                market_ts_ns=created_1 - 250 * MS,
                stop_price=39425.5,
            ),
        ),
        (
            "confirmation_filled_binance_order_id",
            "Decision 1 FILLED on Binance; venue_ref is the orderId as ASCII decimal (fits, not cut).",
            ExecutionConfirmation(
                decision_id=1,
                seq=1,
                instrument=btc,
                side=Side.BUY,
                intent=Intent.OPEN,
                status=Status.FILLED,
                reject_code=RejectCode.NONE,
                executed_qty=0.0625,
                avg_price=37130.5,
                fee=2.3203125,
                executed_at_ns=NOW_NS - 500 * MS,
                venue_ref=str(BINANCE_ORDER_ID).encode("ascii"),
                venue_ref_truncated=False,
                sent_at_ns=NOW_NS - 100 * MS,
            ),
        ),
        (
            "confirmation_filled_mint_truncated_signature",
            "Decision 2 FILLED on Solana; venue_ref is the first 16 of the 64 signature bytes, flag 0x02.",
            ExecutionConfirmation(
                decision_id=2,
                seq=2,
                instrument=usdc,
                side=Side.SELL,
                intent=Intent.CLOSE,
                status=Status.FILLED,
                reject_code=RejectCode.NONE,
                executed_qty=1250.75,
                avg_price=0.9990234375,
                fee=0.0048828125,
                executed_at_ns=NOW_NS - 1500 * MS,
                venue_ref=SOLANA_SIGNATURE[:16],
                venue_ref_truncated=True,
                sent_at_ns=NOW_NS - 1 * S,
            ),
        ),
        (
            "confirmation_partially_filled_rebate",
            "Decision 5 PARTIALLY_FILLED (rest would exceed slippage) with a maker rebate (fee < 0).",
            ExecutionConfirmation(
                decision_id=5,
                seq=3,
                instrument=Instrument.symbol("BTC-PERP"),
                side=Side.SELL,
                intent=Intent.REDUCE,
                status=Status.PARTIALLY_FILLED,
                reject_code=RejectCode.SLIPPAGE_EXCEEDED,
                executed_qty=0.5,
                avg_price=36990.0,
                fee=-0.25,
                executed_at_ns=NOW_NS - 3 * S,
                venue_ref=b"1234567890123456",
                venue_ref_truncated=False,
                sent_at_ns=NOW_NS - 2 * S,
            ),
        ),
        (
            "confirmation_rejected_insufficient_funds",
            "Decision 3 REJECTED before the venue: not enough cash; nothing executed, no venue_ref.",
            ExecutionConfirmation(
                decision_id=3,
                seq=4,
                instrument=Instrument.symbol("ETH/USDT"),
                side=Side.BUY,
                intent=Intent.OPEN,
                status=Status.REJECTED,
                reject_code=RejectCode.INSUFFICIENT_FUNDS,
                executed_qty=0.0,
                avg_price=0.0,
                fee=0.0,
                executed_at_ns=NOW_NS - 200 * MS,
                sent_at_ns=NOW_NS - 200 * MS,
            ),
        ),
        (
            "confirmation_expired",
            "Decision 4 arrived after expires_at_ns: EXPIRED with reject code EXPIRED, nothing executed.",
            ExecutionConfirmation(
                decision_id=4,
                seq=5,
                instrument=Instrument.symbol("SOL/USDT"),
                side=Side.SELL,
                intent=Intent.CLOSE,
                status=Status.EXPIRED,
                reject_code=RejectCode.EXPIRED,
                executed_qty=0.0,
                avg_price=0.0,
                fee=0.0,
                executed_at_ns=NOW_NS - 50 * MS,
                sent_at_ns=NOW_NS - 50 * MS,
            ),
        ),
        (
            "confirmation_accepted_protect",
            "Decision 6 ACCEPTED: the protective stop is on the venue at the new price; nothing traded, "
            "reject code NONE, venue_ref is the stop order's id.",
            ExecutionConfirmation(
                decision_id=6,
                seq=6,
                instrument=btc,
                side=Side.SELL,
                intent=Intent.PROTECT,
                status=Status.ACCEPTED,
                reject_code=RejectCode.NONE,
                executed_qty=0.0,
                avg_price=0.0,
                fee=0.0,
                executed_at_ns=NOW_NS - 600 * MS,
                venue_ref=b"41220583344",
                venue_ref_truncated=False,
                sent_at_ns=NOW_NS - 500 * MS,
            ),
        ),
        (
            "confirmation_filled_exit_over_slippage_limit",
            "Decision 7 (a STOP_LOSS CLOSE with reference 40000 and max_slippage_bps 50) FILLED at 38000 "
            "after a gap down: 500 bps worse than its reference, executed anyway (exits are never refused "
            "for slippage) and flagged SLIPPAGE_OVER_LIMIT (0x04).",
            ExecutionConfirmation(
                decision_id=7,
                seq=7,
                instrument=btc,
                side=Side.SELL,
                intent=Intent.CLOSE,
                status=Status.FILLED,
                reject_code=RejectCode.NONE,
                executed_qty=0.0625,
                avg_price=38000.0,
                fee=2.375,
                executed_at_ns=NOW_NS - 350 * MS,
                venue_ref=b"41220583401",
                venue_ref_truncated=False,
                slippage_over_limit=True,
                sent_at_ns=NOW_NS - 340 * MS,
            ),
        ),
        (
            "heartbeat_brain",
            "Brain heartbeat: it has applied confirmations up to seq 5 in order; 1 decision awaits its "
            "confirmation; journal_id 0 (the brain sends none).",
            Heartbeat(
                role=Role.BRAIN,
                last_seq=5,
                incarnation=BRAIN_INCARNATION,
                in_flight=1,
                journal_id=0,
                sent_at_ns=NOW_NS - 400 * MS,
            ),
        ),
        (
            "heartbeat_executor",
            "Executor heartbeat: it has issued confirmations up to seq 7 (the brain is missing 6 and 7) "
            "and holds 2 decisions in flight (received in time, still executing); its journal's identity; "
            "its risk posture GREEN: entries allowed (guard_flags 0x01) at full size (10000 bp), 15 s "
            "between two entries per instrument, no notional cap (0.0).",
            Heartbeat(
                role=Role.EXECUTOR,
                last_seq=7,
                incarnation=EXECUTOR_INCARNATION,
                in_flight=2,
                journal_id=EXECUTOR_JOURNAL_ID,
                mode=BeliefMode.GREEN,
                entries_allowed=True,
                kill_switch=False,
                entry_scale_bp=10_000,
                entry_cooldown_ms=15_000,
                max_notional=0.0,
                sent_at_ns=NOW_NS - 300 * MS,
            ),
        ),
        (
            "replay_request_from_seq_6",
            "Brain asks the executor to resend every confirmation with seq >= 6 (its next expected seq).",
            ReplayRequest(from_seq=6, sent_at_ns=NOW_NS - 250 * MS),
        ),
        *_edge_messages(btc),
        *_v4_messages(btc),
        *_v5_messages(),
        *_v6_messages(btc),
    ]


def _edge_messages(btc: Instrument) -> list[tuple[str, str, protocol.Message]]:
    """Edge cases (issue #12 §3 j), appended after the original vectors so those stay byte-identical:
    stamps exactly on a freshness bound, the ends of max_slippage_bps, -0.0, a mint with 0x00 ends and
    a venue_ref with 0x00 bytes."""
    at_age, at_skew = NOW_NS - MAX_AGE_NS, NOW_NS + MAX_SKEW_NS

    def buy_open(decision_id: int, created: int, **kw: Any) -> TradeDecision:
        fields: dict[str, Any] = {
            "decision_id": decision_id, "instrument": btc, "side": Side.BUY, "intent": Intent.OPEN,
            "reason": DecisionReason.SIGNAL, "quantity": 0.0625, "reference_price": 37125.25,
            "max_slippage_bps": 50, "created_at_ns": created, "expires_at_ns": created + 90 * S,
            "market_ts_ns": created,
        } | kw  # fmt: skip
        return TradeDecision(**fields)

    def not_executed(decision_id: int, seq: int, sent: int, **kw: Any) -> ExecutionConfirmation:
        fields: dict[str, Any] = {
            "decision_id": decision_id, "seq": seq, "instrument": btc, "side": Side.BUY, "intent": Intent.OPEN,
            "status": Status.REJECTED, "reject_code": RejectCode.GUARD, "executed_qty": 0.0, "avg_price": 0.0,
            "fee": 0.0, "executed_at_ns": 0, "sent_at_ns": sent,
        } | kw  # fmt: skip
        return ExecutionConfirmation(**fields)

    return [
        (
            "decision_created_exactly_max_age_ago",
            "A decision created exactly max_age (60 s) before now_ns: on the past bound, which is inclusive, "
            "so fresh. Decoded at now_ns + 1 ns it is stale.",
            buy_open(10, at_age),
        ),
        (
            "decision_created_exactly_max_skew_ahead",
            "A decision created exactly max_skew (5 s) after now_ns: on the future bound, which is inclusive, "
            "so fresh. Decoded at now_ns - 1 ns it is stale.",
            buy_open(11, at_skew),
        ),
        (
            "confirmation_sent_exactly_max_skew_ahead",
            "A REJECTED (GUARD) confirmation sent exactly max_skew (5 s) after now_ns: fresh (inclusive bound). "
            "Decoded at now_ns - 1 ns it is stale.",
            not_executed(10, 8, at_skew),
        ),
        (
            "replay_request_sent_exactly_max_age_ago",
            "A replay request sent exactly max_age (60 s) before now_ns: fresh (inclusive bound). Decoded at "
            "now_ns + 1 ns it is stale.",
            ReplayRequest(from_seq=8, sent_at_ns=at_age),
        ),
        (
            "decision_max_slippage_bps_0",
            "BUY OPEN with max_slippage_bps 0, the lowest allowed: an entry filled at no price worse than its "
            "reference.",
            buy_open(12, NOW_NS - 1 * S, max_slippage_bps=0),
        ),
        (
            "decision_max_slippage_bps_10000",
            "BUY OPEN with max_slippage_bps 10000 (100 %), the highest allowed; the reference executor sends "
            "such an entry as a market order.",
            buy_open(13, NOW_NS - 1 * S, max_slippage_bps=10_000),
        ),
        (
            "decision_stop_price_negative_zero",
            "BUY OPEN whose stop_price is -0.0 (sign bit set, bytes 88..95 = 00..80): finite and not below 0, "
            "so valid, and like +0.0 it means no protective stop. Encoding must keep the sign bit.",
            buy_open(14, NOW_NS - 1 * S, stop_price=-0.0),
        ),
        (
            "confirmation_expired_negative_zero",
            "An EXPIRED confirmation whose executed_qty, avg_price and fee are -0.0: '= 0' compares "
            "numerically, so valid (senders should send +0.0). Encoding must keep the sign bits.",
            not_executed(
                14, 9, NOW_NS - 20 * MS, status=Status.EXPIRED, reject_code=RejectCode.EXPIRED,
                executed_qty=-0.0, avg_price=-0.0, fee=-0.0,
            ),
        ),
        (
            "decision_sell_close_mint_with_zero_ends",
            "SELL CLOSE on a synthetic mint whose first byte and last three bytes are 0x00: the trailing "
            "0x00 bytes are part of the mint, not padding; the leading one is the leading '1' of its base58.",
            TradeDecision(
                decision_id=15,
                instrument=Instrument.mint(ZERO_ENDED_MINT),
                side=Side.SELL,
                intent=Intent.CLOSE,
                reason=DecisionReason.TIME_STOP,
                quantity=8.5,
                reference_price=2.25,
                max_slippage_bps=100,
                created_at_ns=NOW_NS - 1 * S,
                expires_at_ns=NOW_NS + 9 * S,
                market_ts_ns=NOW_NS - 1 * S,
            ),
        ),
        (
            "confirmation_venue_ref_with_zero_bytes",
            "A FILLED confirmation whose 9-byte venue_ref begins with 0x00 and ends with two 0x00 bytes: "
            "venue_ref_len (9), not NUL-stripping, delimits it; bytes 105..111 are the zero padding.",
            ExecutionConfirmation(
                decision_id=12,
                seq=10,
                instrument=btc,
                side=Side.BUY,
                intent=Intent.OPEN,
                status=Status.FILLED,
                reject_code=RejectCode.NONE,
                executed_qty=0.0625,
                avg_price=37125.25,
                fee=2.3203125,
                executed_at_ns=NOW_NS - 600 * MS,
                venue_ref=VENUE_REF_WITH_NULS,
                venue_ref_truncated=False,
                sent_at_ns=NOW_NS - 10 * MS,
            ),
        ),
    ]


def _v4_messages(btc: Instrument) -> list[tuple[str, str, protocol.Message]]:
    """Cases of protocol v4 (issue #14), appended after the v3 ones: reconciled confirmations, the largest
    decision id, a BELIEF_GUARD refusal, and executor heartbeats with every risk posture mode and both
    guard bits."""

    def reconciled(n: int, seq: int, intent: Intent, side: Side, qty: float, price: float, at: int,
                   **kw: Any) -> ExecutionConfirmation:  # fmt: skip
        return ExecutionConfirmation(
            decision_id=RECONCILE_ID_BASE + n, seq=seq, instrument=btc, side=side, intent=intent,
            status=Status.FILLED, reject_code=RejectCode.NONE, executed_qty=qty, avg_price=price, fee=0.0,
            executed_at_ns=at, reconciled=True, **kw,
        )  # fmt: skip

    def executor_beat(last_seq: int, sent: int, **posture: Any) -> Heartbeat:
        return Heartbeat(role=Role.EXECUTOR, last_seq=last_seq, incarnation=EXECUTOR_INCARNATION, in_flight=0,
                         journal_id=EXECUTOR_JOURNAL_ID, sent_at_ns=sent, **posture)  # fmt: skip

    return [
        (
            "confirmation_reconciled_adopted",
            "RECONCILED (flag 0x08): the executor found a 0.03125 BTC/USDT long on the venue that its ledger "
            "did not hold and adopted it at the venue's entry price 37500.5: FILLED, OPEN, BUY, with the "
            "executor-issued decision_id 2^63 + 1, numbered seq 11 like any confirmation; no fee.",
            reconciled(1, 11, Intent.OPEN, Side.BUY, 0.03125, 37500.5, NOW_NS - 700 * MS,
                       sent_at_ns=NOW_NS - 690 * MS),
        ),
        (
            "confirmation_reconciled_cleared",
            "RECONCILED: the venue no longer holds the 0.0625 BTC/USDT long of the executor's ledger (closed "
            "outside tandem); the ledger position is cleared at the mark 38250.75: FILLED, CLOSE, SELL, "
            "decision_id 2^63 + 2, seq 12; the venue_ref is the venue's last order id for it.",
            reconciled(2, 12, Intent.CLOSE, Side.SELL, 0.0625, 38250.75, NOW_NS - 650 * MS,
                       venue_ref=b"41220583999", sent_at_ns=NOW_NS - 640 * MS),
        ),
        (
            "confirmation_reconciled_drift_down",
            "RECONCILED: the venue holds 0.001953125 BTC/USDT less than the executor's ledger (a size "
            "drift); the ledger is reduced to match: FILLED, REDUCE, SELL, decision_id 2^63 + 3, seq 13.",
            reconciled(3, 13, Intent.REDUCE, Side.SELL, 0.001953125, 38250.75, NOW_NS - 600 * MS,
                       sent_at_ns=NOW_NS - 590 * MS),
        ),
        (
            "decision_id_largest",
            "BUY OPEN with decision_id 2^63 - 1, the largest a decision may carry: ids from 2^63 up are "
            "the executor's (reconciled confirmations).",
            TradeDecision(
                decision_id=RECONCILE_ID_BASE - 1, instrument=btc, side=Side.BUY, intent=Intent.OPEN,
                reason=DecisionReason.SIGNAL, quantity=0.0625, reference_price=37125.25, max_slippage_bps=50,
                created_at_ns=NOW_NS - 1 * S, expires_at_ns=NOW_NS + 29 * S, market_ts_ns=NOW_NS - 1 * S,
            ),
        ),
        (
            "confirmation_rejected_belief_guard",
            "Decision 17, a BUY OPEN, REJECTED with reject code BELIEF_GUARD (10): the executor's belief guard "
            "refused the entry (here: its posture allowed no entries); nothing executed.",
            ExecutionConfirmation(
                decision_id=17, seq=14, instrument=btc, side=Side.BUY, intent=Intent.OPEN,
                status=Status.REJECTED, reject_code=RejectCode.BELIEF_GUARD, executed_qty=0.0, avg_price=0.0,
                fee=0.0, executed_at_ns=0, sent_at_ns=NOW_NS - 150 * MS,
            ),
        ),
        (
            "heartbeat_executor_posture_yellow",
            "Executor heartbeat, posture YELLOW (2): entries allowed (guard_flags 0x01) at half size (5000 bp), "
            "60 s between two entries per instrument, at most 2500.0 quote per entry.",
            executor_beat(14, NOW_NS - 280 * MS, mode=BeliefMode.YELLOW, entries_allowed=True, kill_switch=False,
                          entry_scale_bp=5_000, entry_cooldown_ms=60_000, max_notional=2500.0),
        ),
        (
            "heartbeat_executor_posture_orange",
            "Executor heartbeat, posture ORANGE (3): no entries (guard_flags 0x00), entry_scale_bp 0, a 15 min "
            "cooldown and a 500.25 cap kept for when entries resume.",
            executor_beat(14, NOW_NS - 260 * MS, mode=BeliefMode.ORANGE, entries_allowed=False, kill_switch=False,
                          entry_scale_bp=0, entry_cooldown_ms=900_000, max_notional=500.25),
        ),
        (
            "heartbeat_executor_posture_red_kill_switch",
            "Executor heartbeat, posture RED (4): kill switch on, no entries (guard_flags 0x02), entry_scale_bp 0, "
            "entry_cooldown_ms at its u32 maximum 4294967295, no notional cap. Exits and PROTECT still pass.",
            executor_beat(14, NOW_NS - 240 * MS, mode=BeliefMode.RED, entries_allowed=False, kill_switch=True,
                          entry_scale_bp=0, entry_cooldown_ms=2**32 - 1, max_notional=0.0),
        ),
        (
            "heartbeat_executor_kill_switch_with_entries_allowed",
            "Executor heartbeat, posture GREEN with both guard bits set (0x03): the controller allows entries, "
            "but an operator's kill switch is on, and the kill switch wins: no entries.",
            executor_beat(14, NOW_NS - 220 * MS, mode=BeliefMode.GREEN, entries_allowed=True, kill_switch=True,
                          entry_scale_bp=10_000, entry_cooldown_ms=0, max_notional=0.0),
        ),
    ]


def _v5_messages() -> list[tuple[str, str, protocol.Message]]:
    """Cases of protocol v5 (issue #15), appended after the v4 ones: failed executions that paid a fee."""
    usdc = Instrument.mint(USDC_MINT)
    failed_swap_signature = hashlib.blake2b(b"tandem golden vector failed swap", digest_size=64).digest()
    return [
        (
            "confirmation_rejected_swap_failed_with_fee",
            "Decision 18, a BUY OPEN on the USDC mint, whose Solana swap landed with an instruction error "
            "(the swap's slippage check failed): REJECTED, SLIPPAGE_EXCEEDED, nothing traded, and the network "
            "fee it paid anyway, 0.0009765625 quote (since v5). venue_ref: the first 16 bytes of the failed "
            "transaction's signature (flag 0x02).",
            ExecutionConfirmation(
                decision_id=18, seq=15, instrument=usdc, side=Side.BUY, intent=Intent.OPEN,
                status=Status.REJECTED, reject_code=RejectCode.SLIPPAGE_EXCEEDED, executed_qty=0.0, avg_price=0.0,
                fee=0.0009765625, executed_at_ns=0, venue_ref=failed_swap_signature[:16], venue_ref_truncated=True,
                sent_at_ns=NOW_NS - 120 * MS,
            ),
        ),
        (
            "confirmation_failed_with_fee",
            "Decision 19, a SELL CLOSE on the USDC mint, FAILED with VENUE_ERROR after a transaction that "
            "landed and failed: nothing traded, fee 0.00048828125 quote (since v5).",
            ExecutionConfirmation(
                decision_id=19, seq=16, instrument=usdc, side=Side.SELL, intent=Intent.CLOSE,
                status=Status.FAILED, reject_code=RejectCode.VENUE_ERROR, executed_qty=0.0, avg_price=0.0,
                fee=0.00048828125, executed_at_ns=0, sent_at_ns=NOW_NS - 110 * MS,
            ),
        ),
    ]  # fmt: skip


def _retag(key: bytes, body: bytes) -> bytes:
    return body + hashlib.blake2b(body, key=key, digest_size=16).digest()


def _patched(key: bytes, datagram: bytes, offset: int, value: bytes) -> bytes:
    """``datagram`` with ``value`` written at ``offset`` and a fresh, valid tag."""
    body = bytearray(datagram[:-16])
    body[offset : offset + len(value)] = value
    return _retag(key, bytes(body))


def _invalid_cases(codec: Codec, key: bytes, valid: dict[str, bytes]) -> list[tuple[str, str, bytes]]:
    dec = valid["decision_buy_open_btc_usdt"]
    conf = valid["confirmation_filled_binance_order_id"]
    replay = valid["replay_request_from_seq_6"]
    beat = valid["heartbeat_executor"]
    decision = TradeDecision(
        decision_id=9,
        instrument=Instrument.symbol("BTC/USDT"),
        side=Side.BUY,
        intent=Intent.OPEN,
        reason=DecisionReason.SIGNAL,
        quantity=0.0625,
        reference_price=37125.25,
        max_slippage_bps=50,
        created_at_ns=NOW_NS - 60 * S - 1,
        expires_at_ns=NOW_NS + 30 * S,
        market_ts_ns=NOW_NS - 60 * S - 1,
    )
    future = ExecutionConfirmation(
        decision_id=1, seq=1, instrument=Instrument.symbol("BTC/USDT"), side=Side.BUY,
        intent=Intent.OPEN, status=Status.REJECTED, reject_code=RejectCode.GUARD,
        executed_qty=0.0, avg_price=0.0, fee=0.0, executed_at_ns=NOW_NS,
    )  # fmt: skip
    return [
        ("empty", "Zero bytes: shorter than the 2-byte prefix.", b""),
        ("truncated_confirmation", "A valid confirmation missing its last byte (127 bytes).", conf[:-1]),
        ("extended_decision", "A valid decision with one extra byte (113 bytes).", dec + b"\0"),
        ("known_type_wrong_size", "A valid decision (112 bytes) with byte 1 set to 3: a REPLAY_REQUEST "
         "must be 40 bytes.", dec[:1] + b"\x03" + dec[2:]),
        ("wrong_version", "A valid decision with byte 0 set to 2, as a protocol v2 peer sends it.",
         b"\x02" + dec[1:]),
        ("unknown_type", "A valid decision with byte 1 set to 9 (no such type).",
         dec[:1] + b"\x09" + dec[2:]),
        ("bad_tag", "A valid decision with the last tag bit flipped.", dec[:-1] + bytes([dec[-1] ^ 0x01])),
        ("altered_body", "A valid confirmation with executed_qty changed, tag left as is.",
         conf[:64] + bytes([conf[64] ^ 0x10]) + conf[65:]),
        ("decision_unknown_side", "Authentic decision with side = 3.", _patched(key, dec, 3, b"\x03")),
        ("decision_reserved_flag", "Authentic decision with flag bit 0x02 set (confirmation-only bit).",
         _patched(key, dec, 2, b"\x02")),
        ("decision_negative_stop_price", "Authentic decision with stop_price = -1.0 (must be >= 0).",
         _patched(key, dec, 88, struct.pack("<d", -1.0))),
        ("confirmation_inconsistent_status", "Authentic FILLED confirmation with reject code 1.",
         _patched(key, conf, 6, b"\x01")),
        ("replay_request_from_seq_0", "Authentic replay request with from_seq = 0.",
         _patched(key, replay, 16, bytes(8))),
        ("heartbeat_unknown_role", "Authentic heartbeat with role = 3.", _patched(key, beat, 3, b"\x03")),
        ("heartbeat_flag", "Authentic heartbeat with flag bit 0x01 set (heartbeat flags must be 0).",
         _patched(key, beat, 2, b"\x01")),
        ("confirmation_slippage_flag_not_executed", "Authentic REJECTED confirmation with flag "
         "SLIPPAGE_OVER_LIMIT (0x04): only an executed status may carry it.",
         _patched(key, valid["confirmation_rejected_insufficient_funds"], 2, b"\x04")),
        ("confirmation_reserved_flag", "Authentic confirmation with flag bit 0x10 set (reserved; 0x08 is "
         "RECONCILED since v4).", _patched(key, conf, 2, b"\x10")),
        ("stale_decision", "Authentic decision created 60 s + 1 ns before now_ns.", codec.encode(decision)),
        ("future_confirmation", "Authentic confirmation sent 5 s + 1 ns after now_ns.",
         codec.encode(future, sent_at_ns=NOW_NS + 5 * S + 1)),
        *_edge_invalid_cases(codec, key, valid),
        *_v4_invalid_cases(key, valid),
        *_v5_invalid_cases(key, valid),
        *_v6_invalid_cases(key, valid),
    ]  # fmt: skip


def _edge_invalid_cases(codec: Codec, key: bytes, valid: dict[str, bytes]) -> list[tuple[str, str, bytes]]:
    """The invalid twins of the edge cases (issue #12 §3 j), appended after the original ones."""
    dec = valid["decision_buy_open_btc_usdt"]
    protect = valid["decision_sell_protect_trailing_btc_usdt"]
    nuls = valid["confirmation_venue_ref_with_zero_bytes"]
    future = TradeDecision(
        decision_id=16, instrument=Instrument.symbol("BTC/USDT"), side=Side.BUY, intent=Intent.OPEN,
        reason=DecisionReason.SIGNAL, quantity=0.0625, reference_price=37125.25, max_slippage_bps=50,
        created_at_ns=NOW_NS + MAX_SKEW_NS + 1, expires_at_ns=NOW_NS + MAX_SKEW_NS + 30 * S,
        market_ts_ns=NOW_NS + MAX_SKEW_NS + 1,
    )  # fmt: skip
    created = dec[64:72]
    return [
        ("future_decision", "Authentic decision created 5 s + 1 ns after now_ns (one past the inclusive "
         "future bound).", codec.encode(future)),
        ("stale_replay_request", "Authentic replay request sent 60 s + 1 ns before now_ns (one past the "
         "inclusive past bound).", codec.encode(ReplayRequest(8), sent_at_ns=NOW_NS - MAX_AGE_NS - 1)),
        ("decision_max_slippage_bps_10001", "Authentic decision with max_slippage_bps = 10001 (must be "
         "0..10000).", _patched(key, dec, 6, struct.pack("<H", 10_001))),
        ("decision_protect_stop_price_negative_zero", "Authentic PROTECT decision with stop_price = -0.0: a "
         "PROTECT needs stop_price > 0, and -0.0 is not.", _patched(key, protect, 88, struct.pack("<d", -0.0))),
        ("decision_buy_open_stop_at_reference", "Authentic BUY OPEN decision with stop_price equal to its "
         "reference_price 37125.25 (must be below it).", _patched(key, dec, 88, struct.pack("<d", 37125.25))),
        ("decision_expires_at_created_at", "Authentic decision with expires_at_ns equal to created_at_ns "
         "(must be later).", _patched(key, dec, 72, created)),
        ("confirmation_venue_ref_padding_not_zero", "Authentic confirmation with venue_ref_len 9 and a nonzero "
         "byte at offset 105, after the reference (the padding must be 0x00).", _patched(key, nuls, 105, b"\x01")),
        ("confirmation_venue_ref_len_17", "Authentic confirmation with venue_ref_len 17 (must be 0..16).",
         _patched(key, valid["confirmation_filled_binance_order_id"], 7, b"\x11")),
    ]  # fmt: skip


def _v4_invalid_cases(key: bytes, valid: dict[str, bytes]) -> list[tuple[str, str, bytes]]:
    """Invalid cases of protocol v4 (issue #14), appended after the v3 ones: the RECONCILED rules, the
    decision-id space, the heartbeat's posture fields, and v3 datagrams."""
    adopted = valid["confirmation_reconciled_adopted"]
    rejected = valid["confirmation_rejected_insufficient_funds"]
    beat = valid["heartbeat_executor"]
    dec = valid["decision_buy_open_btc_usdt"]
    executor_id = struct.pack("<Q", RECONCILE_ID_BASE + 4)
    v3_heartbeat = struct.pack(  # the v3 layout (SPEC.md §13): 40-byte body <BBBBIQQQQ, then the tag
        "<BBBBIQQQQ", 3, MessageType.HEARTBEAT, 0, Role.EXECUTOR, 2, NOW_NS - 300 * MS, 7, EXECUTOR_INCARNATION,
        EXECUTOR_JOURNAL_ID,
    )  # fmt: skip
    return [
        ("confirmation_reconciled_rejected", "Authentic REJECTED (INSUFFICIENT_FUNDS) confirmation with flag "
         "RECONCILED (0x08) and the executor-issued decision_id 2^63 + 4: RECONCILED requires FILLED.",
         _patched(key, _patched(key, rejected, 16, executor_id), 2, b"\x08")),
        ("confirmation_reconciled_partially_filled", "The reconciled adoption with status PARTIALLY_FILLED (2): "
         "RECONCILED requires FILLED.", _patched(key, adopted, 5, b"\x02")),
        ("confirmation_reconciled_small_decision_id", "The reconciled adoption with decision_id 1: RECONCILED "
         "requires an executor-issued decision_id >= 2^63.", _patched(key, adopted, 16, struct.pack("<Q", 1))),
        ("confirmation_executor_id_not_reconciled", "The reconciled adoption with flag RECONCILED cleared "
         "(flags 0x00) and decision_id still 2^63 + 1: such an id needs RECONCILED.",
         _patched(key, adopted, 2, b"\x00")),
        ("confirmation_reconciled_protect", "The reconciled adoption with intent PROTECT (4): a reconciled "
         "confirmation is OPEN, CLOSE or REDUCE (since v6 on either side; v4 and v5 allowed OPEN/BUY, "
         "CLOSE/SELL and REDUCE/SELL only).", _patched(key, adopted, 4, b"\x04")),
        ("decision_id_2_pow_63", "Authentic BUY OPEN decision with decision_id 2^63: ids from 2^63 up are the "
         "executor's.", _patched(key, dec, 8, struct.pack("<Q", RECONCILE_ID_BASE))),
        ("heartbeat_guard_flags_unknown_bit", "Authentic executor heartbeat with guard_flags 0x05 (bit 2 is "
         "reserved; 0x01 ENTRIES_ALLOWED and 0x02 KILL_SWITCH only).", _patched(key, beat, 41, b"\x05")),
        ("heartbeat_entry_scale_bp_10001", "Authentic executor heartbeat with entry_scale_bp 10001 (must be "
         "0..10000).", _patched(key, beat, 42, struct.pack("<H", 10_001))),
        ("heartbeat_mode_5", "Authentic executor heartbeat with mode 5 (BeliefMode is 0..4).",
         _patched(key, beat, 40, b"\x05")),
        ("heartbeat_max_notional_negative", "Authentic executor heartbeat with max_notional -1.0 (must be >= 0).",
         _patched(key, beat, 48, struct.pack("<d", -1.0))),
        ("heartbeat_max_notional_nan", "Authentic executor heartbeat with max_notional NaN (must be finite).",
         _patched(key, beat, 48, struct.pack("<d", math.nan))),
        ("heartbeat_max_notional_inf", "Authentic executor heartbeat with max_notional +infinity (must be "
         "finite).", _patched(key, beat, 48, struct.pack("<d", math.inf))),
        ("v3_heartbeat", "A v3 executor heartbeat (version byte 3, the 56-byte v3 layout, tagged with the "
         "vector key), as a v3 peer sends it: rejected on its version before its size.",
         _retag(key, v3_heartbeat)),
        ("v3_decision", "The decision of decision_buy_open_btc_usdt as a v3 peer sends it: version byte 3 (a "
         "v3 decision has the v4 layout), tagged with the vector key.", _patched(key, dec, 0, b"\x03")),
    ]  # fmt: skip


def _v5_invalid_cases(key: bytes, valid: dict[str, bytes]) -> list[tuple[str, str, bytes]]:
    """Invalid cases of protocol v5 (issue #15), appended after the v4 ones."""
    expired = valid["confirmation_expired"]
    with_fee = valid["confirmation_rejected_swap_failed_with_fee"]
    dec = valid["decision_buy_open_btc_usdt"]
    return [
        ("confirmation_expired_with_fee", "Authentic EXPIRED confirmation with fee 0.5: an expired decision "
         "never reached the venue, so only REJECTED and FAILED may carry a fee.",
         _patched(key, expired, 80, struct.pack("<d", 0.5))),
        ("confirmation_rejected_with_executed_qty", "The failed swap's REJECTED confirmation with executed_qty "
         "1.0: a fee may come without a fill, never a quantity.",
         _patched(key, with_fee, 64, struct.pack("<d", 1.0))),
        ("v4_decision", "The decision of decision_buy_open_btc_usdt as a v4 peer sends it: version byte 4 (a "
         "v4 decision has the v5 layout), tagged with the vector key.", _patched(key, dec, 0, b"\x04")),
    ]  # fmt: skip


def _v6_messages(btc: Instrument) -> list[tuple[str, str, protocol.Message]]:
    """Cases of protocol v6 (issue #16: short positions), appended after the v5 ones."""
    perp = Instrument.symbol("BTC/USDT:USDT")
    return [
        (
            "decision_sell_open_short_with_stop",
            "Decision 20, a short entry: SELL OPEN 0.25 BTC/USDT:USDT at the reference 40000.0 with its "
            "protective stop 43200.0 above it (8 % above; since v6 a SELL/OPEN stop must be above the "
            "reference).",
            TradeDecision(
                decision_id=20, instrument=perp, side=Side.SELL, intent=Intent.OPEN, reason=DecisionReason.SIGNAL,
                quantity=0.25, reference_price=40_000.0, max_slippage_bps=50, created_at_ns=NOW_NS - 100 * MS,
                expires_at_ns=NOW_NS + 9_900 * MS, market_ts_ns=NOW_NS - 100 * MS, stop_price=43_200.0,
            ),
        ),
        (
            "decision_buy_close_short",
            "Decision 21: BUY CLOSE 0.25 BTC/USDT:USDT, the exit of the short (a trailing take-profit); "
            "no stop.",
            TradeDecision(
                decision_id=21, instrument=perp, side=Side.BUY, intent=Intent.CLOSE,
                reason=DecisionReason.TRAILING_TAKE_PROFIT, quantity=0.25, reference_price=36_000.0,
                max_slippage_bps=50, created_at_ns=NOW_NS - 90 * MS, expires_at_ns=NOW_NS + 9_910 * MS,
                market_ts_ns=NOW_NS - 90 * MS,
            ),
        ),
        (
            "decision_buy_protect_short",
            "Decision 22: BUY PROTECT, move the short's stop down to 37800.0 (the closing side of a short "
            "is BUY).",
            TradeDecision(
                decision_id=22, instrument=perp, side=Side.BUY, intent=Intent.PROTECT,
                reason=DecisionReason.TRAILING_TAKE_PROFIT, quantity=0.25, reference_price=36_000.0,
                max_slippage_bps=50, created_at_ns=NOW_NS - 80 * MS, expires_at_ns=NOW_NS + 9_920 * MS,
                market_ts_ns=NOW_NS - 80 * MS, stop_price=37_800.0,
            ),
        ),
        (
            "decision_take_profit_long",
            "Decision 23, an exit leg (since v6): TAKE_PROFIT, rest a reduce-only SELL limit for 0.125 of a "
            "0.25 BTC/USDT:USDT long at the limit 41200.0 (stop_price carries the limit price); reason "
            "PARTIAL_TAKE_PROFIT.",
            TradeDecision(
                decision_id=23, instrument=perp, side=Side.SELL, intent=Intent.TAKE_PROFIT,
                reason=DecisionReason.PARTIAL_TAKE_PROFIT, quantity=0.125, reference_price=40_000.0,
                max_slippage_bps=50, created_at_ns=NOW_NS - 75 * MS, expires_at_ns=NOW_NS + 9_925 * MS,
                market_ts_ns=NOW_NS - 75 * MS, stop_price=41_200.0,
            ),
        ),
        (
            "confirmation_take_profit_accepted",
            "Decision 23's answer: ACCEPTED, the take-profit rests on the venue (nothing traded).",
            ExecutionConfirmation(
                decision_id=23, seq=19, instrument=perp, side=Side.SELL, intent=Intent.TAKE_PROFIT,
                status=Status.ACCEPTED, reject_code=RejectCode.NONE, executed_qty=0.0, avg_price=0.0, fee=0.0,
                executed_at_ns=0, venue_ref=b"41220584001", sent_at_ns=NOW_NS - 74 * MS,
            ),
        ),
        (
            "decision_reduce_partial_take_profit",
            "Decision 24: SELL REDUCE 0.125 with reason PARTIAL_TAKE_PROFIT (since v6): a bar traded through "
            "the take-profit's limit; the executor answers with that resting order's fill and sends no order.",
            TradeDecision(
                decision_id=24, instrument=perp, side=Side.SELL, intent=Intent.REDUCE,
                reason=DecisionReason.PARTIAL_TAKE_PROFIT, quantity=0.125, reference_price=41_200.0,
                max_slippage_bps=50, created_at_ns=NOW_NS - 73 * MS, expires_at_ns=NOW_NS + 9_927 * MS,
                market_ts_ns=NOW_NS - 73 * MS,
            ),
        ),
        (
            "decision_protect_breakeven",
            "Decision 25: SELL PROTECT with reason BREAKEVEN (since v6): the long's stop moves up to its entry "
            "price plus fees, 40040.0.",
            TradeDecision(
                decision_id=25, instrument=perp, side=Side.SELL, intent=Intent.PROTECT,
                reason=DecisionReason.BREAKEVEN, quantity=0.125, reference_price=41_150.0, max_slippage_bps=50,
                created_at_ns=NOW_NS - 72 * MS, expires_at_ns=NOW_NS + 9_928 * MS, market_ts_ns=NOW_NS - 72 * MS,
                stop_price=40_040.0,
            ),
        ),
        (
            "confirmation_reconciled_adopted_short",
            "RECONCILED: a 0.5 BTC/USDT:USDT short found on the venue and adopted at its entry price 41000.25: "
            "FILLED, OPEN, SELL (since v6), decision_id 2^63 + 5, seq 17.",
            ExecutionConfirmation(
                decision_id=RECONCILE_ID_BASE + 5, seq=17, instrument=perp, side=Side.SELL, intent=Intent.OPEN,
                status=Status.FILLED, reject_code=RejectCode.NONE, executed_qty=0.5, avg_price=41_000.25, fee=0.0,
                executed_at_ns=NOW_NS - 70 * MS, reconciled=True, sent_at_ns=NOW_NS - 60 * MS,
            ),
        ),
        (
            "confirmation_reconciled_cleared_short",
            "RECONCILED: the ledger's 0.5 BTC/USDT:USDT short is gone from the venue and is cleared at the "
            "mark 40500.5: FILLED, CLOSE, BUY (since v6), decision_id 2^63 + 6, seq 18.",
            ExecutionConfirmation(
                decision_id=RECONCILE_ID_BASE + 6, seq=18, instrument=perp, side=Side.BUY, intent=Intent.CLOSE,
                status=Status.FILLED, reject_code=RejectCode.NONE, executed_qty=0.5, avg_price=40_500.5, fee=0.0,
                executed_at_ns=NOW_NS - 50 * MS, reconciled=True, sent_at_ns=NOW_NS - 40 * MS,
            ),
        ),
    ]  # fmt: skip


def _v6_invalid_cases(key: bytes, valid: dict[str, bytes]) -> list[tuple[str, str, bytes]]:
    """Invalid cases of protocol v6 (issue #16), appended after the v5 ones."""
    short = valid["decision_sell_open_short_with_stop"]
    dec = valid["decision_buy_open_btc_usdt"]
    return [
        ("decision_sell_open_stop_below_reference", "The short entry with stop_price 36800.0, below its "
         "reference 40000.0: a SELL/OPEN stop must be above the reference (since v6).",
         _patched(key, short, 88, struct.pack("<d", 36_800.0))),
        ("decision_sell_open_stop_at_reference", "The short entry with stop_price equal to its reference "
         "40000.0: a SELL/OPEN stop must be strictly above it.",
         _patched(key, short, 88, struct.pack("<d", 40_000.0))),
        ("decision_take_profit_without_limit", "The take-profit decision with stop_price 0.0: a TAKE_PROFIT "
         "needs its limit price > 0.", _patched(key, valid["decision_take_profit_long"], 88, struct.pack("<d", 0.0))),
        ("decision_intent_6", "The take-profit decision with intent 6 (Intent is 1..5).",
         _patched(key, valid["decision_take_profit_long"], 4, b"\x06")),
        ("decision_reason_9", "The take-profit decision with reason 9 (DecisionReason is 1..8).",
         _patched(key, valid["decision_take_profit_long"], 5, b"\x09")),
        ("v5_decision", "The decision of decision_buy_open_btc_usdt as a v5 peer sends it: version byte 5 (a "
         "v5 decision has the v6 layout), tagged with the vector key.", _patched(key, dec, 0, b"\x05")),
    ]  # fmt: skip


def build() -> str:
    """Return the JSON text of the golden vectors (deterministic)."""
    key = derive_key(SECRET)
    codec = Codec(key)
    valid_json = []
    valid_bytes: dict[str, bytes] = {}
    for name, description, msg in _valid_messages():
        data = codec.encode(msg)
        decoded = codec.decode(data, NOW_NS)
        assert decoded == msg and codec.encode(decoded) == data, name
        assert getattr(decoded, "sent_at_ns", None) == getattr(msg, "sent_at_ns", None), name
        entry: dict[str, Any] = {
            "name": name,
            "description": description,
            "type": MESSAGE_TYPES[type(msg)].name,
            "fields": _fields_json(msg),
        }
        if name == "confirmation_filled_mint_truncated_signature":
            from solders.signature import Signature

            entry["venue_ref_full"] = {
                "signature": str(Signature.from_bytes(SOLANA_SIGNATURE)),
                "signature_hex": SOLANA_SIGNATURE.hex(),
            }
        entry["hex"] = data.hex()
        valid_json.append(entry)
        valid_bytes[name] = data
    invalid_json = []
    for name, description, data in _invalid_cases(codec, key, valid_bytes):
        try:
            codec.decode(data, NOW_NS)
        except RemoteProtocolError as exc:
            error = exc
        else:  # pragma: no cover - a generator bug
            raise AssertionError(f"invalid vector {name} decodes")
        invalid_json.append(
            {
                "name": name,
                "description": description,
                "hex": data.hex(),
                "reason": error.reason.value,
                "error": type(error).__name__,
            }
        )
    doc = {
        "description": "Golden vectors of tandem protocol v6; see protocol/SPEC.md, 'Golden vectors'.",
        "protocol_version": protocol.PROTOCOL_VERSION,
        "secret_hex": SECRET.hex(),
        "key_hex": key.hex(),
        "now_ns": NOW_NS,
        "max_age_ns": protocol.DEFAULT_MAX_AGE_NS,
        "max_skew_ns": protocol.DEFAULT_MAX_SKEW_NS,
        "valid": valid_json,
        "invalid": invalid_json,
    }
    return json.dumps(doc, indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = build()
    if "--check" in argv:
        current = VECTORS_PATH.read_text(encoding="utf-8") if VECTORS_PATH.exists() else ""
        if current != text:
            print(f"{VECTORS_PATH} is out of date; run tests/make_vectors.py", file=sys.stderr)
            return 1
        return 0
    VECTORS_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {VECTORS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
