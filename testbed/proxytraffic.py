"""What passes the chaos proxy, named and counted: datagram kinds, directions and fault counters.

Every pass-through datagram is first **classified** (:class:`Classifier`) with the real secret —
``decision_new`` / ``decision_retransmit`` (its ``decision_id`` was seen before),
``confirmation`` / ``confirmation_resent`` (its ``seq`` was seen before), ``replay_request``,
``heartbeat``, or ``other`` if it does not decode. :class:`ProxyStats` counts what happened to it,
keyed ``(direction, kind, action)``.

Classification decodes with a freshness window of ±2^62 ns, i.e. it ignores freshness: the
proxy must classify datagrams the receiver may call stale (an old incarnation's, a late
duplicate) rather than guess, and freshness is the receiver's business.

Bounds: at most :data:`MAX_TRACKED_IDS` decision ids and seqs remembered for classification
(beyond that a new id is still named new, but not remembered).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Final

from protocol import (
    Codec,
    ExecutionConfirmation,
    RemoteProtocolError,
    ReplayRequest,
    TradeDecision,
    derive_key,
)

__all__ = ["ACTIONS", "DIRECTIONS", "KINDS", "MAX_TRACKED_IDS", "Classifier", "ProxyStats"]

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

MAX_TRACKED_IDS: Final = 1_000_000
_IGNORE_FRESHNESS_NS: Final = 2**62


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
