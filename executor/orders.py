"""Safe order primitives over a :class:`~executor.venue.base.Venue`: place without duplicating,
cancel idempotently, wait for a fill. Used by the executor core (owner ``"core"``: entries, and
exits on a venue without protective orders) and by the exit order gateway (owner ``"gateway"``).

Rules (DESIGN.md invariant 4):

- **Place** (:meth:`OrderOps.place`): a temporary error is retried with the same request (it had no
  effect). After an *ambiguous* error (timeout, dropped connection, 5xx) the order is looked up by
  its client order id before anything is resubmitted. It counts as absent only when the venue has
  said "no such order" at least :attr:`OrderOps.absent_checks` times, ``absent_gap_s`` apart,
  **and** the venue's ambiguity window has passed since the ambiguous answer
  (:attr:`~executor.venue.base.Venue.ambiguity_window_s`: Binance refuses a request older than its
  ``recvWindow``, so after that the lost request can no longer be accepted; counting from the
  answer rather than the send also covers an accepted order that queries do not show yet). Only then is the same
  request sent again — at most :attr:`OrderOps.resubmits` times; a resend refused as a duplicate
  client order id means the first one exists, and it is looked up. This matters because Binance
  keeps client order ids unique only among *open* orders: a filled market order would not stop a
  blind resend. Still unresolved → :class:`Unresolved`, and the caller keeps the decision in
  flight and tries again later; it never confirms a guess. A lookup that fails for any reason is
  unresolved too, never "absent".
- **Cancel** (:meth:`OrderOps.cancel`): "unknown order" counts as cancelled only when a lookup
  confirms the order is not open; an order found filled is returned as filled (its fill is not
  lost).
- **Wait** (:meth:`OrderOps.settle`): an order still working is polled every ``poll_s`` until it is
  terminal or ``fill_timeout_s`` passes; then its remainder is cancelled and the final report
  returned (a partial fill stays a partial fill).

Time is injected (:attr:`OrderOps.clock`, :attr:`OrderOps.sleep`; default ``time.monotonic`` and
``asyncio.sleep``), so a test drives the waits above with a scripted clock. The retry policy of a
single call (:class:`~executor.venue.retry.RetryPolicy`) keeps its own timing.

Whether an order is protective — for the ownership check, and for the venue, which may keep those
apart (``protective=`` on :meth:`~executor.venue.base.Venue.fetch_order`/``cancel``) — is read from
its type when known, else from its client order id's leg (:func:`executor.venue.coid.parse`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from .venue.base import (
    CORE,
    GATEWAY,
    PROTECTIVE_TYPES,
    OrderReport,
    OrderRequest,
    OrderStatus,
    OrderType,
    Venue,
)
from .venue.coid import is_exit_leg_id
from .venue.coid import parse as parse_coid
from .venue.errors import (
    AmbiguousVenueError,
    OwnershipConflict,
    PermanentVenueError,
    TemporaryVenueError,
    VenueError,
)
from .venue.retry import RetryPolicy

__all__ = ["CORE", "GATEWAY", "OrderOps", "Unresolved", "is_exit_leg", "is_protective"]


_TRIGGER_TYPES = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LOSS_LIMIT})


def is_protective(client_order_id: str, kind: Any = None) -> bool:
    """A protective stop — a trigger order, which a venue may keep apart (USDⓈ-M's algo orders): by
    its type (``kind``, an :class:`~executor.venue.base.OrderType`) when given, else by its client
    order id's leg (a stop's)."""
    if kind is not None:
        return kind in _TRIGGER_TYPES
    parsed = parse_coid(client_order_id)
    return parsed is not None and parsed.protective


def is_exit_leg(client_order_id: str, kind: Any = None) -> bool:
    """An exit-leg order the exit order gateway owns: a protective stop or the resting take-profit
    (by its type when given, else by its client order id's leg)."""
    if kind in PROTECTIVE_TYPES:
        return True
    return is_exit_leg_id(client_order_id)


def _duplicate_id(exc: PermanentVenueError) -> bool:
    """The venue refused a client order id it already has (Binance spot -2010 "Duplicate order
    sent.", USDⓈ-M -4116 "ClientOrderId is duplicated")."""
    text = exc.detail.lower()
    return "duplicate" in text or "-4116" in text


class Unresolved(VenueError):
    """The venue's answer stayed ambiguous past every bound; the decision stays in flight."""

    kind = "unresolved"


@dataclass
class OrderOps:
    """Placement, cancel and wait primitives with the bounds above.

    Attributes:
        venue: where orders go.
        policy: retry policy for each single venue call.
        metrics: object with ``venue_errors`` (Counter labelled ``call``, ``kind``), ``retries``
            (``call``), ``lookups`` (``reason``), ``protective`` (``module``, ``kind``, ``action``)
            and ``ownership_conflicts`` (``module``, ``kind``); ``None`` = no metrics.
        absent_checks: consecutive "no such order" answers that prove an ambiguous order absent.
        absent_gap_s: pause between those lookups.
        resubmits: resubmissions allowed after proven absence.
        poll_s, fill_timeout_s: see :meth:`settle`.
        clock: monotonic seconds (default ``time.monotonic``): the ambiguity window and the fill
            timeout are measured on it.
        sleep: awaited for each pause, seconds (default ``asyncio.sleep``).
    """

    venue: Venue
    policy: RetryPolicy
    metrics: Any = None
    absent_checks: int = 3
    absent_gap_s: float = 0.2
    resubmits: int = 2
    poll_s: float = 0.25
    fill_timeout_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep

    def __post_init__(self) -> None:
        self.log = structlog.get_logger("orders").bind(venue=self.venue.name)

    # -- bookkeeping ------------------------------------------------------------------------

    def _count(self, name: str, **labels: str) -> None:
        if self.metrics is not None:
            getattr(self.metrics, name).labels(**labels).inc()

    def check_owner(self, req_type: Any, coid: str, owner: str, action: str) -> None:
        """Exit-leg orders (stops, the take-profit) belong to the gateway; anything else is refused and
        counted."""
        if not is_exit_leg(coid, req_type):
            return
        kind = str(req_type) if req_type is not None else "protective"
        if owner != GATEWAY:
            self._count("ownership_conflicts", module=owner, kind=kind)
            self.log.error("ownership_conflict", module=owner, kind=kind, action=action, client_order_id=coid)
            raise OwnershipConflict(f"{owner} may not {action} protective order {coid}: the exit order gateway owns it")
        self._count("protective", module=owner, kind=kind, action=action)

    async def call(self, call: str, fn: Any) -> Any:
        def on_retry(exc: BaseException) -> None:
            self._count("retries", call=call)

        try:
            return await self.policy.call(fn, what=call, log=self.log, on_retry=on_retry)
        except VenueError as exc:
            self._count("venue_errors", call=call, kind=exc.kind)
            raise

    # -- primitives ------------------------------------------------------------------------

    async def lookup(self, coid: str, symbol: str, *, reason: str, sent_at: float | None = None) -> OrderReport | None:
        """The order by client order id, or ``None`` after ``absent_checks`` consistent "absent"
        answers — and, when ``sent_at`` (:attr:`clock` seconds of an ambiguous answer) is given,
        not before the venue's ambiguity window has passed since then.

        Raises:
            Unresolved: a lookup failed (temporary errors past the retry budget, or any permanent
                error such as an archived order or a revoked key): never taken as "absent".
        """
        self._count("lookups", reason=reason)
        until = (sent_at + self.venue.ambiguity_window_s) if sent_at is not None else 0.0
        checks = 0
        protective = is_protective(coid)
        while True:
            try:
                found = await self.call("fetch_order", lambda: self.venue.fetch_order(coid, symbol,
                                                                                      protective=protective))  # fmt: skip
            except (TemporaryVenueError, PermanentVenueError) as exc:
                raise Unresolved(f"lookup of {coid} failed: {exc.detail}") from exc
            if found is not None:
                self.log.info("order_found", client_order_id=coid, reason=reason, status=str(found.status))
                return found
            checks += 1
            if checks >= self.absent_checks and self.clock() >= until:
                return None
            await self.sleep(self.absent_gap_s)

    async def place(self, req: OrderRequest, *, lookup_first: bool = False) -> OrderReport:
        """Place ``req`` exactly once (see the module docstring); returns the venue's report.

        Args:
            lookup_first: look the order up before the first send (restart recovery).

        Raises:
            PermanentVenueError: refused (nothing placed). Unresolved: see module docstring.
        """
        self.check_owner(req.type, req.client_order_id, req.owner, "create")
        if lookup_first:
            found = await self.lookup(req.client_order_id, req.symbol, reason="recovery")
            if found is not None:
                return found
        for attempt in range(self.resubmits + 1):
            sent_at = self.clock()
            try:
                return await self.call("create_order", lambda: self.venue.submit(req))
            except PermanentVenueError as exc:
                if attempt == 0 or not _duplicate_id(exc):
                    raise
                self.log.warning("order_duplicate_on_resend", client_order_id=req.client_order_id, detail=exc.detail)
                found = await self.lookup(req.client_order_id, req.symbol, reason="ambiguous", sent_at=sent_at)
                if found is not None:
                    return found
                raise Unresolved(f"{req.client_order_id}: refused as a duplicate yet not found") from exc
            except (AmbiguousVenueError, TemporaryVenueError) as exc:
                self.log.warning("order_ambiguous", client_order_id=req.client_order_id, attempt=attempt + 1,
                                 error=exc.kind, detail=exc.detail)  # fmt: skip
                # the window runs from the ambiguous answer, not the send: it then also covers an
                # order that was accepted but is not visible to queries yet
                found = await self.lookup(req.client_order_id, req.symbol, reason="ambiguous",
                                          sent_at=self.clock())  # fmt: skip
                if found is not None:
                    return found
        raise Unresolved(f"order {req.client_order_id} still unresolved after {self.resubmits + 1} sends")

    async def cancel(self, coid: str, symbol: str, *, owner: str = CORE, kind: Any = None) -> OrderReport | None:
        """Cancel idempotently; returns the final report (FILLED if it filled first) or ``None``
        once the venue confirms no such order exists. Raises :class:`Unresolved` if the order
        stays open through every retry."""
        self.check_owner(kind, coid, owner, "cancel")
        protective = is_protective(coid, kind)
        for _ in range(self.resubmits + 1):
            try:
                report = await self.call("cancel_order", lambda: self.venue.cancel(coid, symbol, protective=protective))
            except (AmbiguousVenueError, TemporaryVenueError):
                report = None
            if report is not None and report.status.terminal:
                return report
            found = await self.lookup(coid, symbol, reason="cancel")
            if found is None or found.status.terminal:
                return found
        raise Unresolved(f"cancel of {coid} unconfirmed: the order is still open")

    async def settle(self, report: OrderReport, symbol: str, *, owner: str = CORE) -> OrderReport:
        """Poll a working order until terminal or the fill timeout; then cancel its remainder."""
        deadline = self.clock() + self.fill_timeout_s
        coid = report.client_order_id
        protective = is_protective(coid, report.type)
        while not report.status.terminal and self.clock() < deadline:
            await self.sleep(self.poll_s)
            try:
                found = await self.call("fetch_order", lambda: self.venue.fetch_order(coid, symbol,
                                                                                      protective=protective))  # fmt: skip
            except TemporaryVenueError:
                continue
            if found is not None:
                report = found
        if report.status.terminal:
            return report
        self.log.warning("order_fill_timeout", client_order_id=coid, filled=report.filled, amount=report.amount)
        final = await self.cancel(coid, symbol, owner=owner, kind=report.type)
        if final is None:
            raise Unresolved(f"order {coid} vanished while its remainder was cancelled")
        if final.status is OrderStatus.PARTIALLY_FILLED:
            raise Unresolved(f"order {coid} still working after cancel")
        return final
