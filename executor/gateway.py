"""The exit order gateway: the only module that creates, amends or cancels protective orders.

On a derivatives venue a protective order is a reduce-only STOP_MARKET; on spot a STOP_LOSS_LIMIT
whose limit sits ``stop_limit_offset_bps`` below the trigger (Binance spot has no stop-market).
Every call goes through :class:`~executor.orders.OrderOps` as owner ``"gateway"``, which records the
module and order kind in metrics; the same calls from any other module are refused there as an
ownership conflict.

Rules — no window in which an open position has no stop, and no stop left behind (the failure of
freqtrade issue #12528, a stop left on the exchange after its position was closed):

- **protect** (entry filled): place the stop for the whole position. A permanent refusal leaves
  the position counted in ``unprotected`` (metric and critical log) — it is retried by
  :meth:`reprotect`.
- **move** (trailing, a PROTECT decision): derivatives: the new stop is placed *before* the old one
  is cancelled (both reduce-only, so two triggers cannot over-sell). Spot: the base asset is
  locked by the old stop, so both happen in one venue call (Binance ``order/cancelReplace``,
  ``STOP_ON_FAILURE``). At most ``max_moves_per_min`` moves per symbol per 60 s of market time
  (the decisions' ``market_ts_ns``: the wall clock live, the replay's clock in a replay); others are
  refused (REJECTED/GUARD) and the old stop stays.
- **exit** (CLOSE/REDUCE): derivatives: the reduce-only close is placed first, the stop cancelled
  after it filled (and re-placed for any remainder). Spot: the stop is replaced by the market sell
  in one cancel/replace call.
- A stop found **already filled** (it triggered while the brain was deciding) *is* the exit: its
  fill is reported for the decision and nothing else is sent.

State is a cache of the venue: :meth:`adopt` rebuilds it from the venue's open orders after a
restart (ours are recognised by the client order id namespace and role ``p``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import structlog

from protocol import RejectCode, Side, Status

from .orders import GATEWAY, OrderOps, Unresolved
from .venue.base import OrderReport, OrderRequest, OrderStatus, OrderType
from .venue.coid import client_order_id, parse as parse_coid
from .venue.errors import PermanentVenueError

__all__ = ["ExitOrderGateway", "Protection"]


@dataclass
class Protection:
    """The protective stop held for one symbol (a long position: a SELL stop)."""

    client_order_id: str
    stop_price: float
    qty: float
    kind: OrderType


class ExitOrderGateway:
    """Owns protective orders; see the module docstring.

    Args:
        ops: order primitives over the venue.
        namespace: this executor's client order id namespace.
        stop_limit_offset_bps: spot: the stop-limit's limit price sits this far below its trigger
            (room for the fill in a fast market), bps.
        max_moves_per_min: bound on cancel/replace per position.
        metrics: object with an ``unprotected`` Gauge, or ``None``.
    """

    def __init__(
        self, ops: OrderOps, namespace: str, *, stop_limit_offset_bps: float = 50.0, max_moves_per_min: int = 6,
        metrics: object | None = None,
    ) -> None:  # fmt: skip
        self.ops = ops
        self.venue = ops.venue
        self.namespace = namespace
        self.offset = stop_limit_offset_bps / 1e4
        self.max_moves = max_moves_per_min
        self.metrics = metrics
        self.stops: dict[str, Protection] = {}
        self.unprotected: dict[str, float] = {}  # symbol -> qty that should have a stop and has none
        self._moves: dict[str, deque[float]] = {}
        self._retry: dict[str, tuple[float, float, int, int]] = {}
        self.log = structlog.get_logger("gateway")

    @property
    def kind(self) -> OrderType:
        return OrderType.STOP_MARKET if self.venue.derivatives else OrderType.STOP_LOSS_LIMIT

    def _request(self, symbol: str, qty: float, stop: float, decision_id: int, market_ts_ns: int) -> OrderRequest:
        kind = self.kind
        return OrderRequest(
            client_order_id=client_order_id(self.namespace, decision_id, "p"), decision_id=decision_id,
            symbol=symbol, side=Side.SELL, type=kind, amount=qty, stop_price=stop,
            price=stop * (1 - self.offset) if kind is OrderType.STOP_LOSS_LIMIT else None,
            reduce_only=self.venue.derivatives, market_ts_ns=market_ts_ns, reference_price=stop, owner=GATEWAY,
        )  # fmt: skip

    def _exit_request(self, symbol: str, qty: float, decision_id: int, market_ts_ns: int, ref: float) -> OrderRequest:
        return OrderRequest(
            client_order_id=client_order_id(self.namespace, decision_id, "e"), decision_id=decision_id,
            symbol=symbol, side=Side.SELL, type=OrderType.MARKET, amount=qty, reduce_only=self.venue.derivatives,
            market_ts_ns=market_ts_ns, reference_price=ref, owner=GATEWAY,
        )  # fmt: skip

    def _set_unprotected(self, symbol: str, qty: float) -> None:
        if qty > 0:
            self.unprotected[symbol] = qty
        else:
            self.unprotected.pop(symbol, None)
        if self.metrics is not None:
            self.metrics.unprotected.set(len(self.unprotected))

    # -- the three operations --------------------------------------------------------------

    async def protect(self, symbol: str, qty: float, stop: float, decision_id: int, market_ts_ns: int,
                      *, recovering: bool = False) -> OrderReport | None:  # fmt: skip
        """Place the stop for a new position of ``qty``; ``None`` if the venue refused it (the
        position is then counted unprotected and retried by :meth:`reprotect`)."""
        req = self._request(symbol, qty, stop, decision_id, market_ts_ns)
        try:
            report = await self.ops.place(req, lookup_first=recovering)
        except PermanentVenueError as exc:
            self.log.critical("position_unprotected", symbol=symbol, qty=qty, stop=stop, detail=exc.detail)
            self._set_unprotected(symbol, qty)
            self._retry[symbol] = (qty, stop, decision_id, market_ts_ns)
            return None
        self.stops[symbol] = Protection(req.client_order_id, stop, qty, req.type)
        self._set_unprotected(symbol, 0.0)
        self.log.info("stop_placed", symbol=symbol, client_order_id=req.client_order_id, stop=stop, qty=qty,
                      status=str(report.status))  # fmt: skip
        return report

    async def _refresh(self, symbol: str) -> OrderReport | None:
        """The held stop's current report, dropping it from the cache once it is terminal."""
        held = self.stops.get(symbol)
        if held is None:
            return None
        found = await self.ops.lookup(held.client_order_id, symbol, reason="refresh")
        if found is None or found.status.terminal:
            self.stops.pop(symbol, None)
        return found

    async def move(self, symbol: str, qty: float, stop: float, decision_id: int, market_ts_ns: int) -> OrderReport:
        """Move the stop to ``stop`` (a PROTECT decision). Returns the new stop's report (OPEN),
        or the old stop's report if it had already filled (the position is gone).

        Raises:
            PermanentVenueError: refused by the bound on moves (GUARD) or by the venue.
        """
        now = market_ts_ns / 1e9  # market time: live it is the wall clock; a replay keeps its own pace
        window = self._moves.setdefault(symbol, deque())
        while window and now - window[0] > 60:
            window.popleft()
        old = await self._refresh(symbol)
        if old is not None and old.filled > 0 and old.status.terminal:
            return old
        if len(window) >= self.max_moves:
            raise PermanentVenueError(f"{symbol}: more than {self.max_moves} stop moves in 60 s", RejectCode.GUARD,
                                      Status.REJECTED)  # fmt: skip
        window.append(now)
        req = self._request(symbol, qty, stop, decision_id, market_ts_ns)
        held = self.stops.get(symbol)
        if held is None:
            return await self._placed(symbol, req, await self.ops.place(req))
        if self.venue.derivatives:
            report = await self.ops.place(req)  # new first: never a moment without a stop
            self.stops[symbol] = Protection(req.client_order_id, stop, qty, req.type)
            gone = await self.ops.cancel(held.client_order_id, symbol, owner=GATEWAY, kind=held.kind)
            if gone is not None and gone.filled > 0:
                # the old stop fired while the new one went in: that fill is the answer, and the
                # new stop has no position left to protect — cancel it so it is not orphaned
                self.log.warning("stop_filled_during_move", symbol=symbol, old=held.client_order_id)
                await self.ops.cancel(req.client_order_id, symbol, owner=GATEWAY, kind=req.type)
                self.stops.pop(symbol, None)
                return gone
            return report
        return await self._placed(symbol, req, await self._replace(held, req))

    async def _placed(self, symbol: str, req: OrderRequest, report: OrderReport) -> OrderReport:
        if report.client_order_id == req.client_order_id and not report.status.terminal:
            self.stops[symbol] = Protection(req.client_order_id, req.stop_price or 0.0, req.amount, req.type)
            self._set_unprotected(symbol, 0.0)
        return report

    async def _replace(self, held: Protection, req: OrderRequest) -> OrderReport:
        """Spot: cancel ``held`` and place ``req`` in one call; if the cancel part failed because
        the stop already filled, return the stop's report."""
        self.ops._check_owner(held.kind, held.client_order_id, GATEWAY, "amend")
        replace = getattr(self.venue, "replace", None)
        if replace is None:
            raise PermanentVenueError(f"{self.venue.name} cannot cancel/replace", RejectCode.VENUE_ERROR)
        try:
            return await self.ops._once("cancel_replace", lambda: replace(held.client_order_id, req))
        except PermanentVenueError:
            found = await self.ops.lookup(held.client_order_id, req.symbol, reason="replace")
            if found is not None and found.status.terminal:
                self.stops.pop(req.symbol, None)
                if found.filled > 0:
                    return found
                # -2021: the stop was cancelled but the new order refused — protect again at once
                self.log.error("replace_half_failed", symbol=req.symbol, old=held.client_order_id)
                await self.protect(req.symbol, held.qty, held.stop_price, req.decision_id, req.market_ts_ns)
            raise
        except Exception:
            # ambiguous: find out what the venue did before anything else
            new = await self.ops.lookup(req.client_order_id, req.symbol, reason="replace")
            if new is not None:
                return new
            old = await self.ops.lookup(held.client_order_id, req.symbol, reason="replace")
            if old is not None and old.status.terminal and old.filled > 0:
                self.stops.pop(req.symbol, None)
                return old
            raise Unresolved(f"cancel/replace of {held.client_order_id} unresolved") from None

    async def exit(self, symbol: str, qty: float, decision_id: int, market_ts_ns: int, ref: float,
                   *, recovering: bool = False) -> OrderReport:  # fmt: skip
        """Close ``qty`` of the position (CLOSE/REDUCE); returns the report to confirm with."""
        req = self._exit_request(symbol, qty, decision_id, market_ts_ns, ref)
        if recovering:
            found = await self.ops.lookup(req.client_order_id, symbol, reason="recovery")
            if found is not None:
                report = await self.ops.settle(found, symbol, owner=GATEWAY)
                await self._after_exit(symbol, qty, report, decision_id, market_ts_ns)
                return report
        held = await self._refresh(symbol) if symbol in self.stops else None
        if held is not None and held.filled > 0 and held.status.terminal:
            self.log.info("exit_already_done_by_stop", symbol=symbol, client_order_id=held.client_order_id,
                          filled=held.filled, price=held.avg_price)  # fmt: skip
            return held
        prot = self.stops.get(symbol)
        if prot is None or self.venue.derivatives:
            try:
                report = await self.ops.settle(await self.ops.place(req), symbol, owner=GATEWAY)
            except PermanentVenueError:
                # a reduce-only close refused: the stop may have closed the position meanwhile
                fired = await self._refresh(symbol) if prot is not None else None
                if fired is not None and fired.filled > 0 and fired.status.terminal:
                    self.log.info("exit_done_by_stop_meanwhile", symbol=symbol, client_order_id=fired.client_order_id)
                    return fired
                raise
        else:
            report = await self._replace(prot, req)
            if report.client_order_id == req.client_order_id:
                self.stops.pop(symbol, None)
                report = await self.ops.settle(report, symbol, owner=GATEWAY)
        await self._after_exit(symbol, qty, report, decision_id, market_ts_ns)
        return report

    async def _after_exit(self, symbol: str, qty: float, report: OrderReport, decision_id: int,
                          market_ts_ns: int) -> None:  # fmt: skip
        """After the close: cancel the stop (derivatives) and protect any remainder."""
        prot = self.stops.get(symbol)
        remaining = max(prot.qty - report.filled, 0.0) if prot is not None else 0.0
        if prot is not None and self.venue.derivatives:
            await self.ops.cancel(prot.client_order_id, symbol, owner=GATEWAY, kind=prot.kind)
            self.stops.pop(symbol, None)
        if prot is not None and remaining > prot.qty * 1e-9 and report.status is not OrderStatus.FILLED:
            await self.protect(symbol, remaining, prot.stop_price, decision_id, market_ts_ns)

    async def reprotect(self) -> int:
        """Try again to place every stop the venue refused; returns how many are still missing."""
        for symbol, (qty, stop, decision_id, market_ts_ns) in list(self._retry.items()):
            if await self.protect(symbol, qty, stop, decision_id, market_ts_ns, recovering=True) is not None:
                self._retry.pop(symbol, None)
        return len(self.unprotected)

    async def adopt(self) -> int:
        """Rebuild the cache from the venue's open orders (ours, role ``p``); returns how many."""
        found = 0
        for o in await self.venue.open_orders():
            parsed = parse_coid(o.client_order_id)
            if parsed is None or parsed[0] != self.namespace or parsed[1] != "p":
                continue
            self.stops[o.symbol] = Protection(o.client_order_id, o.stop_price or 0.0, o.amount, o.type)
            found += 1
        return found

    async def orphans(self, positions: dict[str, float]) -> list[str]:
        """Cancel our stops whose symbol has no position in ``positions`` (base units); returns
        the client order ids cancelled. The guard against freqtrade #12528."""
        cancelled = []
        for o in await self.venue.open_orders():
            parsed = parse_coid(o.client_order_id)
            if parsed is None or parsed[0] != self.namespace or parsed[1] != "p":
                continue
            if positions.get(o.symbol, 0.0) <= 0:
                await self.ops.cancel(o.client_order_id, o.symbol, owner=GATEWAY, kind=o.type)
                self.stops.pop(o.symbol, None)
                cancelled.append(o.client_order_id)
        return cancelled
