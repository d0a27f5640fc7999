"""Wire enumerations of protocol v6 (one byte each on the wire; see ``protocol/SPEC.md``)."""

from __future__ import annotations

import enum

__all__ = [
    "BeliefMode",
    "DecisionReason",
    "Intent",
    "InstrumentKind",
    "MessageType",
    "RejectCode",
    "Role",
    "Side",
    "Status",
]


class MessageType(enum.IntEnum):
    """Byte 1 of every datagram."""

    DECISION = 1
    CONFIRMATION = 2
    REPLAY_REQUEST = 3
    HEARTBEAT = 4


class Role(enum.IntEnum):
    """Who sent a heartbeat."""

    BRAIN = 1
    EXECUTOR = 2


class InstrumentKind(enum.IntEnum):
    """How the 32 instrument bytes are read (flag bit 0)."""

    SYMBOL = 0  # exchange symbol, printable ASCII, NUL-padded, e.g. b"BTC/USDT"
    MINT = 1  # a Solana SPL token mint address, 32 raw bytes


class Side(enum.IntEnum):
    BUY = 1
    SELL = 2


class Intent(enum.IntEnum):
    """What the decision does to the position it concerns."""

    OPEN = 1
    CLOSE = 2
    REDUCE = 3
    # v2: place or move the protective stop of the position in ``instrument`` to ``stop_price``;
    # ``quantity`` is the position's, ``side`` the closing side (SELL for a long). Nothing trades
    # unless the venue reports the stop already filled.
    PROTECT = 4
    # v6: place or move the resting take-profit of the position in ``instrument``: a reduce-only limit
    # order on the closing side for ``quantity`` at ``stop_price`` (the limit price). Nothing trades
    # at once unless the venue fills it at once (SPEC.md §6.1, "Exit legs").
    TAKE_PROFIT = 5


class DecisionReason(enum.IntEnum):
    """Why the brain sent the decision."""

    SIGNAL = 1  # the strategy's entry (or exit) signal
    STOP_LOSS = 2
    TRAILING_TAKE_PROFIT = 3
    TIME_STOP = 4
    BREAKER = 5  # a circuit breaker flattened the position
    MANUAL = 6
    # v6 (exit legs): a REDUCE with this reason reports the resting take-profit's fill — the executor
    # answers with what that order filled and sends no order of its own; a TAKE_PROFIT carries it too
    PARTIAL_TAKE_PROFIT = 7
    BREAKEVEN = 8  # a PROTECT moving the stop to the entry price plus fees


class Status(enum.IntEnum):
    """Outcome of a decision as reported by the executor."""

    FILLED = 1
    PARTIALLY_FILLED = 2
    REJECTED = 3  # refused before reaching the venue, nothing executed
    EXPIRED = 4  # arrived after ``expires_at_ns``, nothing executed
    FAILED = 5  # the venue could not execute it, nothing executed
    ACCEPTED = 6  # v2: a PROTECT was carried out, the stop is on the venue at its price; nothing traded

    @property
    def executed(self) -> bool:
        """True when some quantity traded (never for ``ACCEPTED``)."""
        return self in (Status.FILLED, Status.PARTIALLY_FILLED)


class RejectCode(enum.IntEnum):
    """Reason code carried by a confirmation for anything not (fully) filled; ``NONE`` otherwise."""

    NONE = 0
    INSUFFICIENT_FUNDS = 1  # buy notional + fee exceeds the executor's cash
    INSUFFICIENT_POSITION = 2  # sell quantity exceeds the executor's position
    EXPIRED = 3  # received after expires_at_ns
    SLIPPAGE_EXCEEDED = 4  # fill price would move more than max_slippage_bps from reference
    NO_MARKET_DATA = 5  # no price at or after the decision's market time
    INVALID_QUANTITY = 6  # below the venue minimum or not a valid amount
    UNKNOWN_INSTRUMENT = 7  # the venue does not list the instrument
    VENUE_ERROR = 8  # the venue answered with an error
    GUARD = 9  # an executor-side guard refused it
    # v4: an entry (OPEN, with status REJECTED) refused by the executor's belief guard, i.e. its risk
    # posture: entries not allowed, kill switch, entry too large for max_notional, cooldown, too many
    # open orders (SPEC.md §6.4, "Risk posture")
    BELIEF_GUARD = 10


class BeliefMode(enum.IntEnum):
    """The executor's risk posture level, carried by its heartbeats (byte 40, since v4).

    Set by the executor's belief controller; a brain's heartbeat carries ``NONE``. The levels name
    how wary the controller is; what they allow is in the heartbeat's other posture fields
    (``entries_allowed``, ``kill_switch``, ``entry_scale_bp``, ``entry_cooldown_ms``,
    ``max_notional``), not in the level itself (SPEC.md §6.4).
    """

    NONE = 0  # no belief controller (every brain heartbeat; an executor without one)
    GREEN = 1  # normal
    YELLOW = 2  # cautious
    ORANGE = 3  # defensive
    RED = 4  # halted
