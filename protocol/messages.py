"""Protocol v6 messages: frozen, slotted dataclasses that validate on construction.

Constructing a message with a bad field raises :class:`~protocol.errors.LocalProtocolError`;
the codec turns that into :class:`~protocol.errors.InvalidField` when the bad value came off
the wire. Units: quantities in base-asset units, prices in quote currency per base unit, fees in
quote currency, times in Unix nanoseconds (UTC), slippage and entry scale in basis points
(1 bps = 0.01 %), cooldowns in milliseconds, notionals in quote currency.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .enums import BeliefMode, DecisionReason, InstrumentKind, Intent, RejectCode, Role, Side, Status
from .errors import LocalProtocolError

__all__ = [
    "CONFIRMATION_COLUMNS",
    "DECISION_COLUMNS",
    "FULL_ENTRY_SCALE_BP",
    "INSTRUMENT_SIZE",
    "RECONCILE_ID_BASE",
    "VENUE_REF_SIZE",
    "ExecutionConfirmation",
    "Heartbeat",
    "Instrument",
    "Posture",
    "ReplayRequest",
    "TradeDecision",
    "slippage_bps",
]

INSTRUMENT_SIZE = 32
"""Bytes of the instrument field: a Solana mint is 32 raw bytes; symbols are NUL-padded."""

VENUE_REF_SIZE = 16
"""Bytes of the venue reference carried in a confirmation (see SPEC.md, "venue reference")."""

RECONCILE_ID_BASE = 2**63
"""The reserved decision-id space (since v4): ids ``>= 2**63`` are issued by the executor, for the
confirmations of its reconciliation with the venue (flag ``RECONCILED``), never by the brain. A
decision's id is ``1 .. 2**63 - 1``; SPEC.md §6.2, "Reconciliation"."""

FULL_ENTRY_SCALE_BP = 10_000
"""``entry_scale_bp`` of full entry size (100 %, in basis points): the neutral heartbeat value."""

_U64_MAX = 2**64 - 1
_U32_MAX = 2**32 - 1


def _fail(msg: str) -> None:
    raise LocalProtocolError(msg)


@dataclass(frozen=True, slots=True)
class Instrument:
    """What is traded: an exchange symbol (``BTC/USDT``) or a Solana mint (32 raw bytes).

    Raises:
        LocalProtocolError: empty or over-long symbol, non-printable or NUL byte in a symbol,
            or a mint that is not exactly 32 bytes.
    """

    kind: InstrumentKind
    value: bytes

    def __post_init__(self) -> None:
        _coerce_enum(self, "kind", InstrumentKind)
        if self.kind is InstrumentKind.SYMBOL:
            if not 0 < len(self.value) <= INSTRUMENT_SIZE:
                _fail(f"symbol must be 1..{INSTRUMENT_SIZE} bytes, got {len(self.value)}")
            if any(b < 0x21 or b > 0x7E for b in self.value):
                _fail(f"symbol must be printable ASCII without spaces, got {self.value!r}")
        elif self.kind is InstrumentKind.MINT:
            if len(self.value) != INSTRUMENT_SIZE:
                _fail(f"mint must be {INSTRUMENT_SIZE} bytes, got {len(self.value)}")
        else:  # pragma: no cover - IntEnum construction already fails
            _fail(f"unknown instrument kind {self.kind!r}")

    def __hash__(self) -> int:
        # the value alone: two instruments with equal values and different kinds are unequal (eq
        # compares both) and may share a hash. ~3x faster than the generated hash of (kind, value),
        # which a replay computes several times a bar (dict keys); issue #17
        return hash(self.value)

    @classmethod
    def symbol(cls, symbol: str) -> Instrument:
        """An exchange symbol such as ``"BTC/USDT"`` (ccxt unified form) or ``"BTC-PERP"``."""
        try:
            raw = symbol.encode("ascii")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"symbol must be ASCII, got {symbol!r}") from None
        return cls(InstrumentKind.SYMBOL, raw)

    @classmethod
    def mint(cls, address: bytes | str) -> Instrument:
        """A Solana mint, from its 32 raw bytes or its base58 address."""
        if isinstance(address, str):
            from solders.pubkey import Pubkey  # local: only mint users pay the import

            try:
                address = bytes(Pubkey.from_string(address))
            except ValueError as exc:
                raise LocalProtocolError(f"invalid base58 mint address {address!r}: {exc}") from None
        return cls(InstrumentKind.MINT, address)

    @classmethod
    def parse(cls, text: str) -> Instrument:
        """An instrument from its text: a Solana mint when ``text`` is base58 of exactly 32 bytes
        (a mint address, 32..44 characters), else an exchange symbol. No exchange symbol is 32
        bytes of base58 — ``/``, ``-``, ``:`` and ``_`` are not base58 digits, and a base58 text of
        32 bytes is at least 32 characters long.

        Raises:
            LocalProtocolError: neither a mint nor a valid symbol.
        """
        if 32 <= len(text) <= 44:
            from solders.pubkey import Pubkey

            try:
                return cls(InstrumentKind.MINT, bytes(Pubkey.from_string(text)))
            except ValueError:
                pass
        return cls.symbol(text)

    def __str__(self) -> str:
        if self.kind is InstrumentKind.SYMBOL:
            return self.value.decode("ascii")
        from solders.pubkey import Pubkey

        return str(Pubkey.from_bytes(self.value))


_MEMBERS: dict[type[enum.IntEnum], dict[object, enum.IntEnum]] = {}
"""Each field enum's members by value, built on first use: a dict lookup per decoded field instead
of the enum's constructor (a received datagram's fields arrive as ints)."""


def _coerce_enum(msg: object, name: str, cls: type[enum.IntEnum]) -> None:
    """Replace a plain int field with its enum member; fail if it names no member."""
    value = getattr(msg, name)
    if type(value) is cls:
        return
    members = _MEMBERS.get(cls)
    if members is None:
        members = _MEMBERS[cls] = {m.value: m for m in cls}
    member = members.get(value) if type(value) is int else None
    if member is None:
        try:  # anything else an IntEnum accepts (an int subclass, another IntEnum's member)
            member = cls(value)
        except (ValueError, TypeError):
            raise LocalProtocolError(f"{name} must be a {cls.__name__}, got {value!r}") from None
    object.__setattr__(msg, name, member)  # frozen dataclass: the documented escape hatch


def _check_u64(name: str, value: int) -> None:
    if not 0 <= value <= _U64_MAX:
        _fail(f"{name} must fit in u64, got {value}")


def _check_finite(name: str, value: float, *, positive: bool = False, nonneg: bool = False) -> None:
    if not math.isfinite(value):
        _fail(f"{name} must be finite, got {value!r}")
    if positive and value <= 0:
        _fail(f"{name} must be > 0, got {value!r}")
    if nonneg and value < 0:
        _fail(f"{name} must be >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class TradeDecision:
    """Brain → executor: trade ``quantity`` of ``instrument`` on ``side`` (type 1, 112 bytes).

    Attributes:
        decision_id: unique per brain, 1 .. 2**63 - 1 (ids from :data:`RECONCILE_ID_BASE` up are the
            executor's, since v4); identical on every retransmit. Idempotency key.
        instrument: what to trade.
        side: buy or sell.
        intent: open, close or reduce a position, (``PROTECT``) place or move its protective
            stop to ``stop_price``, or (``TAKE_PROFIT``, since v6) place or move its resting
            take-profit, a reduce-only limit for ``quantity`` at ``stop_price``; a PROTECT's ``quantity`` is the position's and its ``side`` the
            closing side (SELL for a long, BUY for a short), and nothing trades unless the venue reports the stop
            already filled.
        reason: why the brain decided (strategy signal or which exit rule).
        quantity: base-asset units, finite and > 0.
        reference_price: the mark price the brain saw (quote per base unit), finite and > 0.
        max_slippage_bps: refuse a fill worse than the reference by more than this (0..10000).
        created_at_ns: wall clock when the decision was made (freshness, Unix ns).
        expires_at_ns: wall clock after which the executor answers EXPIRED instead of trading.
        market_ts_ns: time of the market data the decision was based on; a replay venue fills
            at the first price at or after it (no look-ahead). Equals ``created_at_ns`` live.
        stop_price: the protective stop, quote per base unit; finite and >= 0, 0.0 = none. On an
            entry it is the stop *at the reference price*: once the entry fills at ``avg_price``,
            the executor places the stop at :meth:`stop_for_fill` — the same distance below the
            fill — and the brain's exit plan uses that same level (one stop level, computed from
            the fill). On a PROTECT, the new stop as is (> 0). A BUY/OPEN's stop must be below
            ``reference_price``, a SELL/OPEN's (a short entry, since v6) above it. Added in
            protocol v2; taken relative to the fill since v3.

    Raises:
        LocalProtocolError: any field out of range (``decision_id`` 0 or >= 2**63 included), a
            PROTECT or TAKE_PROFIT without a price, a BUY/OPEN whose stop is not below its reference price, or a
            SELL/OPEN whose stop is not above it.
    """

    decision_id: int
    instrument: Instrument
    side: Side
    intent: Intent
    reason: DecisionReason
    quantity: float
    reference_price: float
    max_slippage_bps: int
    created_at_ns: int
    expires_at_ns: int
    market_ts_ns: int
    stop_price: float = 0.0

    def __post_init__(self) -> None:
        _coerce_enum(self, "side", Side)
        _coerce_enum(self, "intent", Intent)
        _coerce_enum(self, "reason", DecisionReason)
        _check_u64("decision_id", self.decision_id)
        if self.decision_id == 0:
            _fail("decision_id must be >= 1")
        if self.decision_id >= RECONCILE_ID_BASE:
            _fail(f"decision_id must be < 2**63 (ids from 2**63 are the executor's), got {self.decision_id}")
        _check_finite("quantity", self.quantity, positive=True)
        _check_finite("reference_price", self.reference_price, positive=True)
        if not 0 <= self.max_slippage_bps <= 10_000:
            _fail(f"max_slippage_bps must be 0..10000, got {self.max_slippage_bps}")
        for name in ("created_at_ns", "expires_at_ns", "market_ts_ns"):
            _check_u64(name, getattr(self, name))
        if self.expires_at_ns <= self.created_at_ns:
            _fail("expires_at_ns must be after created_at_ns")
        _check_finite("stop_price", self.stop_price, nonneg=True)
        if self.intent is Intent.PROTECT and self.stop_price <= 0:
            _fail("a PROTECT decision needs stop_price > 0")
        if self.intent is Intent.TAKE_PROFIT and self.stop_price <= 0:
            _fail("a TAKE_PROFIT decision needs stop_price > 0 (its limit price)")
        if self.intent is Intent.OPEN and self.stop_price > 0:
            if self.side is Side.BUY and self.stop_price >= self.reference_price:
                _fail(f"a BUY/OPEN stop_price must be below reference_price, got {self.stop_price!r}"
                      f" >= {self.reference_price!r}")  # fmt: skip
            if self.side is Side.SELL and self.stop_price <= self.reference_price:
                _fail(f"a SELL/OPEN (short entry) stop_price must be above reference_price, got"
                      f" {self.stop_price!r} <= {self.reference_price!r}")  # fmt: skip

    @classmethod
    def from_columns(cls, row: Sequence[Any]) -> TradeDecision:
        """A decision from its fields in :data:`DECISION_COLUMNS` order — the one place a decision is
        rebuilt from stored or wire columns (the codec, the brain's and the executor's journals).
        Enum fields may be their integer codes.

        Raises:
            LocalProtocolError: a field out of range, or a code no enum member has.
        """
        return cls(*row)

    def restamped(self, now_ns: int) -> TradeDecision:
        """The same decision — same id, same content — made again at ``now_ns``: ``created_at_ns``
        = ``now_ns`` and the same time to live. Only for a decision the executor provably never
        journaled and never can (SPEC.md §10.1, re-stamping in a replay).

        Raises:
            LocalProtocolError: ``now_ns`` out of range (the new expiry is capped at u64).
        """
        ttl = self.expires_at_ns - self.created_at_ns
        return dataclasses.replace(self, created_at_ns=now_ns, expires_at_ns=min(now_ns + ttl, 2**64 - 1))

    def stop_for_fill(self, avg_price: float) -> float:
        """The protective stop of this entry once it filled at ``avg_price`` (quote per base unit):
        ``avg_price * (stop_price / reference_price)``, evaluated in IEEE-754 double precision in
        exactly that order, so the executor (placing it) and the brain (planning with it) hold
        the same level to the bit. ``0.0`` when the decision carries no stop. SPEC.md §6.1.
        """
        if self.stop_price <= 0:
            return 0.0
        return avg_price * (self.stop_price / self.reference_price)


DECISION_COLUMNS = tuple(f.name for f in dataclasses.fields(TradeDecision))
"""The fields of a :class:`TradeDecision` in constructor order, for :meth:`TradeDecision.from_columns`."""


def slippage_bps(side: Side, reference_price: float, avg_price: float) -> float:
    """How much worse than ``reference_price`` a fill at ``avg_price`` is for the trader, in bps
    (1 bps = 0.01 %): ``(avg - ref) / ref * 1e4`` for a BUY, ``(ref - avg) / ref * 1e4`` for a
    SELL. Negative when the fill is better. SPEC.md §6.2 (flag ``SLIPPAGE_OVER_LIMIT``).
    """
    diff = avg_price - reference_price if side is Side.BUY else reference_price - avg_price
    return diff / reference_price * 1e4


@dataclass(frozen=True, slots=True)
class ExecutionConfirmation:
    """Executor → brain: what became of one decision (type 2, exactly 128 bytes).

    Attributes:
        decision_id: the decision this answers.
        seq: per-executor confirmation sequence number, >= 1, gap-free in send order.
        instrument, side, intent: echoed from the decision.
        status: filled, partially filled, rejected, expired, failed, or (a PROTECT or TAKE_PROFIT carried out,
            nothing traded) accepted.
        reject_code: why it was not (fully) filled; ``NONE`` when filled or accepted.
        executed_qty: base units traded (0 unless executed).
        avg_price: volume-weighted fill price, quote per base unit (0 unless executed).
        fee: quote currency paid (negative for a rebate). An executed status may carry any fee;
            REJECTED and FAILED carry the fee a venue charged for an execution that failed (since
            v5: a Solana swap that landed with an instruction error still pays its network fee),
            else 0; EXPIRED and ACCEPTED carry 0.
        venue_ref: up to 16 bytes identifying the fill at the venue (order id or the first 16
            bytes of a transaction signature); ``venue_ref_truncated`` says it was cut, and the
            executor journal keeps the full value.
        executed_at_ns: when the venue executed (market time for a replay venue), Unix ns.
        slippage_over_limit: the fill is worse than the decision's ``reference_price`` by more
            than its ``max_slippage_bps``. Only an exit (CLOSE, REDUCE, or a PROTECT whose stop
            filled) executes past the limit — protective exits are never refused for slippage
            (DESIGN.md invariant 3) — so the flag records that it did. Executed statuses only.
        reconciled: the confirmation reports a correction the executor made so that its ledger
            matches the venue — a position found on the venue and adopted, a ledger position the
            venue no longer has cleared, a size drift corrected — not the outcome of a brain
            decision (flag ``RECONCILED``, since v4). Set if and only if ``decision_id`` >=
            :data:`RECONCILE_ID_BASE` (an executor-issued id); only with status FILLED, and with
            intent OPEN and side BUY (adopt, drift up) or intent CLOSE / REDUCE and side SELL
            (clear, drift down). SPEC.md §6.2, "Reconciliation".
        sent_at_ns: wall clock at transmission, for freshness; set by the sender each time.

    Raises:
        LocalProtocolError: any field out of range or inconsistent with ``status``, or
            ``reconciled`` inconsistent with ``decision_id``, ``status``, ``intent`` or ``side``.
    """

    decision_id: int
    seq: int
    instrument: Instrument
    side: Side
    intent: Intent
    status: Status
    reject_code: RejectCode
    executed_qty: float
    avg_price: float
    fee: float
    executed_at_ns: int
    venue_ref: bytes = b""
    venue_ref_truncated: bool = False
    slippage_over_limit: bool = False
    reconciled: bool = False
    sent_at_ns: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        _coerce_enum(self, "side", Side)
        _coerce_enum(self, "intent", Intent)
        _coerce_enum(self, "status", Status)
        _coerce_enum(self, "reject_code", RejectCode)
        _check_u64("decision_id", self.decision_id)
        _check_u64("seq", self.seq)
        if self.decision_id == 0 or self.seq == 0:
            _fail("decision_id and seq must be >= 1")
        _check_finite("executed_qty", self.executed_qty, nonneg=True)
        _check_finite("avg_price", self.avg_price, nonneg=True)
        _check_finite("fee", self.fee)
        _check_u64("executed_at_ns", self.executed_at_ns)
        _check_u64("sent_at_ns", self.sent_at_ns)
        if len(self.venue_ref) > VENUE_REF_SIZE:
            _fail(f"venue_ref must be <= {VENUE_REF_SIZE} bytes, got {len(self.venue_ref)}")
        if self.slippage_over_limit and not self.status.executed:
            _fail(f"slippage_over_limit is only for an executed status, got {self.status.name}")
        if self.status.executed:
            if self.executed_qty <= 0 or self.avg_price <= 0:
                _fail(f"{self.status.name} needs executed_qty > 0 and avg_price > 0")
            if self.status is Status.FILLED and self.reject_code is not RejectCode.NONE:
                _fail("FILLED must carry reject_code NONE")
        elif self.status is Status.ACCEPTED:
            if self.intent not in (Intent.PROTECT, Intent.TAKE_PROFIT):
                _fail(f"ACCEPTED answers a PROTECT or TAKE_PROFIT decision only, got intent {self.intent.name}")
            if self.executed_qty != 0 or self.avg_price != 0 or self.fee != 0:
                _fail("ACCEPTED must have zero executed_qty, avg_price and fee")
            if self.reject_code is not RejectCode.NONE:
                _fail("ACCEPTED must carry reject_code NONE")
        else:
            if self.executed_qty != 0 or self.avg_price != 0:
                _fail(f"{self.status.name} must have zero executed_qty and avg_price")
            if self.fee != 0 and self.status is Status.EXPIRED:  # v5: a failed execution's fee is allowed
                _fail("EXPIRED must have zero fee (nothing reached the venue)")
            if self.reject_code is RejectCode.NONE:
                _fail(f"{self.status.name} must carry a reject_code")
        self._check_reconciled()

    def _check_reconciled(self) -> None:
        """The ``RECONCILED`` rules (SPEC.md §6.2, "Reconciliation"; since v4)."""
        executor_id = self.decision_id >= RECONCILE_ID_BASE
        if not self.reconciled:
            if executor_id:
                _fail(f"decision_id {self.decision_id} >= 2**63 is an executor-issued id: only a reconciled"
                      " confirmation carries one")  # fmt: skip
            return
        if not executor_id:
            _fail(f"a reconciled confirmation needs an executor-issued decision_id >= 2**63,"
                  f" got {self.decision_id}")  # fmt: skip
        if self.status is not Status.FILLED:
            _fail(f"a reconciled confirmation must be FILLED, got {self.status.name}")
        if (self.intent, self.side) not in _RECONCILED_LEGS:
            _fail(f"a reconciled confirmation is OPEN, CLOSE or REDUCE (any side), got"
                  f" {self.intent.name}/{self.side.name}")  # fmt: skip

    @classmethod
    def from_columns(cls, row: Sequence[Any]) -> ExecutionConfirmation:
        """A confirmation from its fields in :data:`CONFIRMATION_COLUMNS` order (``sent_at_ns`` and
        the flags after ``venue_ref`` may be left off) — the one place a confirmation is rebuilt
        from stored or wire columns (the codec, the brain's and the executor's journals). Enum
        fields may be their integer codes, flags any int (nonzero is set: 0/1 from SQLite, the
        masked flag bit from the wire).

        Raises:
            LocalProtocolError: a field out of range or inconsistent with ``status``, or a code no
                enum member has.
        """
        values = list(row)
        for i in (12, 13, 14):  # venue_ref_truncated, slippage_over_limit, reconciled: ints to bools
            if i < len(values):
                values[i] = bool(values[i])
        return cls(*values)

    @property
    def notional(self) -> float:
        """Executed quantity × average price, in quote currency."""
        return self.executed_qty * self.avg_price


_RECONCILED_LEGS = frozenset({
    (Intent.OPEN, Side.BUY), (Intent.CLOSE, Side.SELL), (Intent.REDUCE, Side.SELL),
    (Intent.OPEN, Side.SELL), (Intent.CLOSE, Side.BUY), (Intent.REDUCE, Side.BUY),
})  # fmt: skip
"""(intent, side) of a reconciled confirmation: for a long, adopt or drift up (OPEN/BUY), clear
(CLOSE/SELL), drift down (REDUCE/SELL); for a short (since v6) the same with the sides swapped."""

CONFIRMATION_COLUMNS = tuple(f.name for f in dataclasses.fields(ExecutionConfirmation))
"""The fields of an :class:`ExecutionConfirmation` in constructor order, for
:meth:`ExecutionConfirmation.from_columns`."""


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """Brain → executor: resend every confirmation with ``seq >= from_seq`` (type 3, 40 bytes).

    Sent when the brain sees a gap in confirmation sequence numbers, or learns from a heartbeat
    that confirmations it has not applied exist. The executor answers from its journal.

    Raises:
        LocalProtocolError: ``from_seq`` < 1 or a field outside u64.
    """

    from_seq: int
    sent_at_ns: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        _check_u64("from_seq", self.from_seq)
        _check_u64("sent_at_ns", self.sent_at_ns)
        if self.from_seq == 0:
            _fail("from_seq must be >= 1")


def _check_posture(msg: Posture | Heartbeat) -> None:
    """Validate (and coerce) the six risk-posture fields shared by :class:`Posture` and
    :class:`Heartbeat` (SPEC.md §6.4)."""
    _coerce_enum(msg, "mode", BeliefMode)
    for name in ("entries_allowed", "kill_switch"):
        value = getattr(msg, name)
        if type(value) is not bool:
            if not (type(value) is int and value in (0, 1)):
                _fail(f"{name} must be a bool, got {value!r}")
            object.__setattr__(msg, name, bool(value))  # frozen dataclass: the documented escape hatch
    if not (isinstance(msg.entry_scale_bp, int) and 0 <= msg.entry_scale_bp <= FULL_ENTRY_SCALE_BP):
        _fail(f"entry_scale_bp must be 0..{FULL_ENTRY_SCALE_BP}, got {msg.entry_scale_bp!r}")
    if not (isinstance(msg.entry_cooldown_ms, int) and 0 <= msg.entry_cooldown_ms <= _U32_MAX):
        _fail(f"entry_cooldown_ms must be a u32, got {msg.entry_cooldown_ms!r}")
    _check_finite("max_notional", msg.max_notional, nonneg=True)


@dataclass(frozen=True, slots=True)
class Posture:
    """The executor's risk posture, as its heartbeats carry it (SPEC.md §6.4, since v4).

    The executor's belief controller sets it; the brain scales or suppresses its entries by it, and
    the executor enforces the same knobs as a backstop (refusing an entry with ``BELIEF_GUARD``).
    Exits and PROTECT moves are never refused for it. The defaults are the neutral posture — what a
    brain's heartbeat carries, and an executor's without a belief controller: nothing limited.

    Attributes:
        mode: the controller's level (``NONE``: no controller).
        entries_allowed: new entries (OPEN) may be sent; False: none.
        kill_switch: the kill switch is on: no entries, whatever else says.
        entry_scale_bp: entry size multiplier, basis points 0..10000 (10000 = full size).
        entry_cooldown_ms: least time between two entries in one instrument, ms (u32; 0 = none).
        max_notional: largest notional of one entry, quote currency; finite, >= 0 (0 = no cap).

    Raises:
        LocalProtocolError: a field out of range or an unknown mode.
    """

    mode: BeliefMode = BeliefMode.NONE
    entries_allowed: bool = True
    kill_switch: bool = False
    entry_scale_bp: int = FULL_ENTRY_SCALE_BP
    entry_cooldown_ms: int = 0
    max_notional: float = 0.0

    def __post_init__(self) -> None:
        _check_posture(self)

    @property
    def allows_entries(self) -> bool:
        """Entries may be sent at all: allowed, no kill switch, and a nonzero size."""
        return self.entries_allowed and not self.kill_switch and self.entry_scale_bp > 0


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Either direction, periodically: "I am here, this is my last sequence and my posture" (type 4,
    72 bytes).

    Attributes:
        role: who sends it.
        last_seq: the executor's highest confirmation seq issued, or the brain's highest seq
            applied in order (0 = none yet).
        incarnation: random per process start; a change tells the peer the sender restarted.
        in_flight: executor: decisions it has journaled and not yet confirmed (received in
            time, still executing); brain: decisions awaiting a confirmation. u32.
        journal_id: the sender's journal identity (random u64 made with the journal and kept
            for its life; 0 = the sender has none). A change tells the peer the journal was
            replaced (SPEC.md §10.6).
        mode, entries_allowed, kill_switch, entry_scale_bp, entry_cooldown_ms, max_notional: the
            executor's risk posture (:class:`Posture`, since v4); a brain sends the neutral
            defaults, and the executor ignores them.
        sent_at_ns: wall clock at transmission, for freshness.

    Raises:
        LocalProtocolError: a field outside u64 (``in_flight``, ``entry_cooldown_ms`` outside
            u32), an unknown role or mode, ``entry_scale_bp`` above 10000, or ``max_notional``
            negative or not finite.
    """

    role: Role
    last_seq: int
    incarnation: int
    in_flight: int = 0
    journal_id: int = 0
    mode: BeliefMode = BeliefMode.NONE
    entries_allowed: bool = True
    kill_switch: bool = False
    entry_scale_bp: int = FULL_ENTRY_SCALE_BP
    entry_cooldown_ms: int = 0
    max_notional: float = 0.0
    sent_at_ns: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        _coerce_enum(self, "role", Role)
        for name in ("last_seq", "incarnation", "journal_id", "sent_at_ns"):
            _check_u64(name, getattr(self, name))
        if not (isinstance(self.in_flight, int) and 0 <= self.in_flight <= _U32_MAX):
            _fail(f"in_flight must be a u32, got {self.in_flight!r}")
        _check_posture(self)

    @property
    def posture(self) -> Posture:
        """The risk posture this heartbeat carries."""
        return Posture(self.mode, self.entries_allowed, self.kill_switch, self.entry_scale_bp,
                       self.entry_cooldown_ms, self.max_notional)  # fmt: skip
