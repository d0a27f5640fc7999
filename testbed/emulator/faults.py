"""Fault plan: misbehaviour the emulator applies to the next N matching requests.

A :class:`Fault` names a :class:`FaultKind`, the :class:`Endpoint` kind it matches (``any`` for
all), an optional market (``spot``/``usdm``), a count and its parameters. :meth:`FaultPlan.take`
is called by the server once per request; it consumes one use of the first matching fault
(installation order) whose kind applies to that endpoint, and counts it in ``applied``.

What each kind does (the server applies it; the engine only sees ``partial_fill``/``delayed_fill``
as order options):

* ``timeout_after_accept`` (order_create/cancel): act, then hold the answer ``seconds`` (> the
  client timeout) → ccxt ``RequestTimeout``; the order exists.
* ``drop_response`` (any): act, then abort the TCP connection without an answer → ccxt
  ``ExchangeNotAvailable`` (a ``NetworkError``); the order exists.
* ``http_5xx`` (any): answer ``status`` (500/502/503) without acting. 500 and 503 carry Binance's
  JSON bodies (-1001 "Internal error; unable to process your request. Please try again." and
  "Service Unavailable."), 502 an HTML gateway page.
* ``rate_limit_429`` (any): HTTP 429 ``{"code":-1003,"msg":"Too much request weight used; ..."}``.
* ``rate_limit_1003`` (any): -1003 with ``status`` 418 (IP ban text, default) or another 4xx
  (400 → "Too many requests queued.").
* ``unknown_order_2011`` (order_cancel) / ``unknown_order_2013`` (order_query): answer the error
  though the order exists (eventual consistency).
* ``timestamp_1021`` (any signed): -1021 "Timestamp for this request is outside of the recvWindow.".
* ``insufficient_balance`` (order_create): -2010 (spot) / -2019 (USDⓈ-M) without acting; on spot
  cancelReplace the cancel happens and the new leg is rejected (-2021 "partially failed").
* ``partial_fill`` (order_create): only ``fraction`` of the order's first fill happens; a MARKET
  or IOC order's rest EXPIRES (status EXPIRED, executedQty < origQty), a FOK order EXPIRES with
  nothing filled, a GTC LIMIT order's rest stays open.

Spot ``POST /api/v3/order/cancelReplace`` is an ``order_create`` endpoint: a timeout/drop after
accept leaves both the cancel and the new order done.
* ``delayed_fill`` (order_create): the order is accepted NEW and fills on a later ``advance_to``
  or after ``seconds`` of wall-clock time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from enum import StrEnum

__all__ = ["Endpoint", "Fault", "FaultKind", "FaultPlan"]


class Endpoint(StrEnum):
    ORDER_CREATE = "order_create"
    ORDER_QUERY = "order_query"
    ORDER_CANCEL = "order_cancel"
    OPEN_ORDERS = "open_orders"
    ACCOUNT = "account"  # balances, positions, trades, leverage
    MARKET_DATA = "market_data"  # public endpoints
    ANY = "any"


class FaultKind(StrEnum):
    TIMEOUT_AFTER_ACCEPT = "timeout_after_accept"
    DROP_RESPONSE = "drop_response"
    HTTP_5XX = "http_5xx"
    RATE_LIMIT_429 = "rate_limit_429"
    RATE_LIMIT_1003 = "rate_limit_1003"
    UNKNOWN_ORDER_2011 = "unknown_order_2011"
    UNKNOWN_ORDER_2013 = "unknown_order_2013"
    TIMESTAMP_1021 = "timestamp_1021"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    PARTIAL_FILL = "partial_fill"
    DELAYED_FILL = "delayed_fill"


_ALL = frozenset(Endpoint) - {Endpoint.ANY}
_SIGNED = _ALL - {Endpoint.MARKET_DATA}
APPLIES: dict[FaultKind, frozenset[Endpoint]] = {
    FaultKind.TIMEOUT_AFTER_ACCEPT: _ALL,
    FaultKind.DROP_RESPONSE: _ALL,
    FaultKind.HTTP_5XX: _ALL,
    FaultKind.RATE_LIMIT_429: _ALL,
    FaultKind.RATE_LIMIT_1003: _ALL,
    FaultKind.UNKNOWN_ORDER_2011: frozenset({Endpoint.ORDER_CANCEL}),
    FaultKind.UNKNOWN_ORDER_2013: frozenset({Endpoint.ORDER_QUERY}),
    FaultKind.TIMESTAMP_1021: _SIGNED,
    FaultKind.INSUFFICIENT_BALANCE: frozenset({Endpoint.ORDER_CREATE}),
    FaultKind.PARTIAL_FILL: frozenset({Endpoint.ORDER_CREATE}),
    FaultKind.DELAYED_FILL: frozenset({Endpoint.ORDER_CREATE}),
}
"""Endpoint kinds each fault can apply to (``Endpoint.ANY`` in a fault means "any of these")."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault. ``count`` is how many matching requests it hits.

    Attributes:
        kind: what happens.
        endpoint: which endpoint kind it matches (``any``: every one the kind applies to).
        count: number of requests to hit (>= 1).
        market: ``"spot"``, ``"usdm"`` or ``None`` for both.
        status: HTTP status for ``http_5xx`` (500/502/503) and ``rate_limit_1003`` (418 or 4xx).
        seconds: hold time for ``timeout_after_accept``; wall-clock delay for ``delayed_fill``
            (``0`` = fill only on a later ``advance_to``).
        fraction: filled part for ``partial_fill``, 0 < fraction < 1.
    """

    kind: FaultKind
    endpoint: Endpoint = Endpoint.ANY
    count: int = 1
    market: str | None = None
    status: int | None = None
    seconds: float = 5.0
    fraction: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind(self.kind))
        object.__setattr__(self, "endpoint", Endpoint(self.endpoint))
        if self.count < 1:
            raise ValueError("fault count must be >= 1")
        if self.endpoint is not Endpoint.ANY and self.endpoint not in APPLIES[self.kind]:
            raise ValueError(f"{self.kind} cannot apply to {self.endpoint}")
        if self.market not in (None, "spot", "usdm"):
            raise ValueError(f"market must be spot, usdm or None, not {self.market!r}")
        if self.kind is FaultKind.HTTP_5XX and self.status not in (None, 500, 502, 503):
            raise ValueError("http_5xx status must be 500, 502 or 503")
        if self.kind is FaultKind.RATE_LIMIT_1003 and self.status is not None and not 400 <= self.status < 500:
            raise ValueError("rate_limit_1003 status must be 4xx")
        if not 0 < self.fraction < 1:
            raise ValueError("partial_fill fraction must be in (0, 1)")
        if self.seconds < 0:
            raise ValueError("seconds must be >= 0")

    def matches(self, endpoint: Endpoint, market: str | None) -> bool:
        if endpoint not in APPLIES[self.kind]:
            return False
        if self.endpoint is not Endpoint.ANY and self.endpoint is not endpoint:
            return False
        return self.market is None or self.market == market

    def to_json(self) -> dict:
        d = asdict(self)
        d["kind"], d["endpoint"] = self.kind.value, self.endpoint.value
        return d

    @classmethod
    def from_json(cls, d: dict) -> Fault:
        return cls(**d)


class FaultPlan:
    """Installed faults with their remaining counts, and counters of what was applied.

    Attributes:
        applied: ``Counter`` of fault kind value -> times applied.
        log: ``(kind, endpoint, market, path)`` per application, in order.
    """

    def __init__(self) -> None:
        self._pending: list[list] = []  # [fault, remaining]
        self.applied: Counter[str] = Counter()
        self.log: list[tuple[str, str, str | None, str]] = []

    def install(self, *faults: Fault) -> None:
        for f in faults:
            self._pending.append([f, f.count])

    def clear(self) -> None:
        """Drop pending faults (the counters stay)."""
        self._pending.clear()

    def pending(self) -> list[tuple[Fault, int]]:
        return [(f, n) for f, n in self._pending]

    def take(self, endpoint: Endpoint, market: str | None, path: str = "",
             kinds: frozenset[FaultKind] | None = None) -> Fault | None:
        """Consume one use of the first pending fault matching the request, or ``None``.

        Args:
            kinds: only consider these kinds (the server asks in phases: transport, then
                semantic); ``None`` for all.
        """
        for entry in self._pending:
            fault, _ = entry
            if (kinds is None or fault.kind in kinds) and fault.matches(endpoint, market):
                entry[1] -= 1
                if entry[1] <= 0:
                    self._pending.remove(entry)
                self.applied[fault.kind.value] += 1
                self.log.append((fault.kind.value, endpoint.value, market, path))
                return fault
        return None

    def to_json(self) -> dict:
        return {"pending": [f.to_json() | {"remaining": n} for f, n in self._pending],
                "applied": dict(self.applied), "log": [list(x) for x in self.log]}
