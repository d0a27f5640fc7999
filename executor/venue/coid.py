"""Client order ids derived from the decision: stable across retries and restarts. The one place
that builds or reads them: :class:`OrderIds` (one factory per namespace, a method per leg) and
:func:`parse` (a typed :class:`ClientOrderId`, or ``None`` for an id that is not ours).

``td<namespace><leg><decision_id>``, e.g. ``td3fa9c1d2e42``:

- ``namespace``: 8 lowercase hex digits, random per executor journal (stored in it), so two
  runs that both start their decision ids at 1 never share an id on a real account;
- ``leg`` (:class:`Leg`): ``e`` the decision's own order (entry or exit, or the market exit a
  crossed PROTECT became), ``p`` the protective stop placed because of that decision (an entry's
  first stop, or a PROTECT decision's replacement);
- ``decision_id``: decimal, up to 20 digits (u64).

At most 2 + 8 + 1 + 20 = 31 characters from ``[0-9a-z]``, inside Binance's rule for
``newClientOrderId`` — ``^[\\.A-Z\\:/a-z0-9_-]{1,36}$`` (Binance spot and USDⓈ-M REST docs, "New
order" parameters) — and the charset of every ccxt exchange we know of.

The strings are a stored format: exchanges and executor journals hold them, so a restarted
executor must read the ids it wrote before any change here. A later leg gets a new letter; the
existing letters and the layout never change.

Errors: the factories raise ``ValueError`` for a bad namespace or decision id; :func:`parse` never
raises.
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["MAX_LENGTH", "PREFIX", "ClientOrderId", "Leg", "OrderIds", "is_exit_leg_id", "new_namespace", "parse"]

MAX_LENGTH = 36
"""Binance's limit on ``newClientOrderId`` (spot and USDⓈ-M)."""
PREFIX = "td"
"""Every id of ours starts with it."""
_MAX_DECISION_ID = (1 << 64) - 1


class Leg(enum.StrEnum):
    """Which of a decision's orders an id names; the value is its letter in the id."""

    ORDER = "e"  # the decision's own order: an entry, an exit, or the market exit of a crossed PROTECT
    STOP = "p"  # the protective stop placed because of the decision
    TAKE_PROFIT = "t"  # the resting take-profit placed because of the decision (issue #16)


_NAMESPACE = re.compile(r"[0-9a-f]{8}")
_PARSE = re.compile(rf"{PREFIX}([0-9a-f]{{8}})([{''.join(leg.value for leg in Leg)}])([0-9]{{1,20}})")


def new_namespace() -> str:
    """A fresh random namespace: 8 lowercase hex digits (32 bits)."""
    return secrets.token_hex(4)


def _check_namespace(namespace: str) -> None:
    if not _NAMESPACE.fullmatch(namespace):
        raise ValueError(f"client order id namespace must be 8 lowercase hex digits, got {namespace!r}")


def _check_leg(leg: Leg, decision_id: int) -> None:
    if not 1 <= decision_id <= _MAX_DECISION_ID:
        raise ValueError(f"decision_id must be in 1..2**64-1, got {decision_id}")
    if not isinstance(leg, Leg):
        raise TypeError(f"leg must be a Leg, got {leg!r}")


def _format(namespace: str, leg: Leg, decision_id: int) -> str:
    return f"{PREFIX}{namespace}{leg.value}{decision_id}"


@dataclass(frozen=True, slots=True)
class ClientOrderId:
    """One of our client order ids, parsed (or about to be formatted: ``str(coid)``).

    Attributes:
        namespace: 8 lowercase hex digits, the executor journal's.
        leg: which of the decision's orders.
        decision_id: the decision that caused the order, 1..2**64-1.

    Raises:
        ValueError: a namespace that is not 8 lowercase hex digits, or a decision id out of range.
        TypeError: ``leg`` is not a :class:`Leg`.
    """

    namespace: str
    leg: Leg
    decision_id: int

    def __post_init__(self) -> None:
        _check_namespace(self.namespace)
        _check_leg(self.leg, self.decision_id)

    def __str__(self) -> str:
        return _format(self.namespace, self.leg, self.decision_id)

    @property
    def protective(self) -> bool:
        """The id of a protective stop (a trigger order on the venue)."""
        return self.leg is Leg.STOP

    @property
    def exit_leg(self) -> bool:
        """The id of an order the exit order gateway owns: a stop or the take-profit."""
        return self.leg in (Leg.STOP, Leg.TAKE_PROFIT)


_LEG_AT = len(PREFIX) + 8  # where the leg letter sits, after the prefix and the namespace
_EXIT_LEGS = frozenset({Leg.STOP.value, Leg.TAKE_PROFIT.value})  # their letters


def is_exit_leg_id(text: str) -> bool:
    """Whether ``text`` is one of our ids of an exit leg (a protective stop or the take-profit).
    An id with any other letter where the leg sits is not one, whatever the rest: told by one
    character, the common case (a decision's own order) is never parsed."""
    if len(text) <= _LEG_AT or text[_LEG_AT] not in _EXIT_LEGS:
        return False
    parsed = parse(text)
    return parsed is not None and parsed.exit_leg


@lru_cache(maxsize=4096)  # an order's id is read several times on its way (issue #17: the hot path)
def parse(text: str) -> ClientOrderId | None:
    """The parts of one of our ids, or ``None`` for a foreign id (any namespace is ours here;
    :meth:`OrderIds.mine` also checks it)."""
    m = _PARSE.fullmatch(text)
    if m is None:
        return None
    did = int(m.group(3))
    if not 1 <= did <= _MAX_DECISION_ID:
        return None
    return ClientOrderId(m.group(1), Leg(m.group(2)), did)


@dataclass(frozen=True, slots=True)
class OrderIds:
    """The client order id factory of one namespace (one executor journal).

    Args:
        namespace: 8 lowercase hex digits (:meth:`executor.journal.Journal.namespace`).

    Raises:
        ValueError: a bad namespace.
    """

    namespace: str

    def __post_init__(self) -> None:
        _check_namespace(self.namespace)

    def id(self, leg: Leg, decision_id: int) -> str:
        """The id of ``decision_id``'s order in ``leg`` (``str`` of its :class:`ClientOrderId`,
        formatted here: the namespace was checked once, by the factory).

        Raises:
            ValueError: a decision id out of 1..2**64-1. TypeError: ``leg`` is not a :class:`Leg`.
        """
        _check_leg(leg, decision_id)
        return _format(self.namespace, leg, decision_id)

    def order(self, decision_id: int) -> str:
        """The id of the decision's own order (entry or exit): leg ``e``."""
        return self.id(Leg.ORDER, decision_id)

    def stop(self, decision_id: int) -> str:
        """The id of the protective stop placed because of the decision: leg ``p``."""
        return self.id(Leg.STOP, decision_id)

    def take_profit(self, decision_id: int) -> str:
        """The id of the resting take-profit placed because of the decision: leg ``t``."""
        return self.id(Leg.TAKE_PROFIT, decision_id)

    def mine(self, text: str, leg: Leg | None = None) -> ClientOrderId | None:
        """``text`` parsed, when it is an id of this namespace (and of ``leg``, if given); else ``None``."""
        parsed = parse(text)
        if parsed is None or parsed.namespace != self.namespace or (leg is not None and parsed.leg is not leg):
            return None
        return parsed
