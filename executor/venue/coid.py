"""Client order ids derived from the decision: stable across retries and restarts.

``td<namespace><role><decision_id>``, e.g. ``td3fa9c1d2e42``:

- ``namespace``: 8 lowercase hex digits, random per executor journal (stored in it), so two
  runs that both start their decision ids at 1 never share an id on a real account;
- ``role``: ``e`` the decision's own order (entry or exit), ``p`` the protective stop placed
  because of that decision (an entry's first stop, or a PROTECT decision's replacement);
- ``decision_id``: decimal, up to 20 digits (u64).

At most 2 + 8 + 1 + 20 = 31 characters from ``[0-9a-z]``, inside Binance's rule for
``newClientOrderId`` — ``^[\\.A-Z\\:/a-z0-9_-]{1,36}$`` (Binance spot and USDⓈ-M REST docs, "New
order" parameters) — and the charset of every ccxt exchange we know of.
"""

from __future__ import annotations

import re
import secrets
from typing import Literal

__all__ = ["MAX_LENGTH", "Role", "client_order_id", "new_namespace", "parse"]

MAX_LENGTH = 36
"""Binance's limit on ``newClientOrderId`` (spot and USDⓈ-M)."""

Role = Literal["e", "p"]
_NAMESPACE = re.compile(r"[0-9a-f]{8}")
_PARSE = re.compile(r"td([0-9a-f]{8})([ep])([0-9]{1,20})")


def new_namespace() -> str:
    """A fresh random namespace: 8 lowercase hex digits (32 bits)."""
    return secrets.token_hex(4)


def client_order_id(namespace: str, decision_id: int, role: Role = "e") -> str:
    """The client order id of ``decision_id``'s order in ``role``.

    Raises:
        ValueError: ``namespace`` is not 8 lowercase hex digits, ``decision_id`` not in 1..2**64-1,
            or ``role`` not ``"e"``/``"p"``.
    """
    if not _NAMESPACE.fullmatch(namespace):
        raise ValueError(f"client order id namespace must be 8 lowercase hex digits, got {namespace!r}")
    if not 1 <= decision_id < 1 << 64:
        raise ValueError(f"decision_id must be in 1..2**64-1, got {decision_id}")
    if role not in ("e", "p"):
        raise ValueError(f"role must be 'e' or 'p', got {role!r}")
    return f"td{namespace}{role}{decision_id}"


def parse(coid: str) -> tuple[str, Role, int] | None:
    """``(namespace, role, decision_id)`` of one of our ids, or ``None`` for a foreign id."""
    m = _PARSE.fullmatch(coid)
    if m is None:
        return None
    return m.group(1), m.group(2), int(m.group(3))  # type: ignore[return-value]
