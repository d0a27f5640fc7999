"""The exit order gateway: the only module that creates, amends or cancels protective orders.

On a derivatives venue a protective order is a reduce-only STOP_MARKET; on spot a STOP_LOSS_LIMIT
whose limit sits ``stop_limit_offset_bps`` below the trigger (Binance spot has no stop-market).
Every call goes through :class:`~executor.orders.OrderOps` as owner ``"gateway"``, which records the
module and order kind in metrics; the same calls from any other module are refused there as an
ownership conflict.

Rules — no window in which an open position has no stop, and no stop left behind (the failure of
freqtrade issue #12528, a stop left on the exchange after its position was closed):

- **Write-ahead**: the client order id of a symbol's stop is journaled (``store``) before the
  stop is sent, so a restart looks up exactly that order (:meth:`adopt`).
- **protect** (entry filled): place the stop for the whole position. A refusal leaves the position
  counted in ``unprotected`` (metric and critical log); :meth:`reprotect` tries again for the
  ledger's current quantity. A remainder below the venue's minimum amount (dust) is not protected.
- **move** (trailing, a PROTECT decision): derivatives: the new stop is placed *before* the old one
  is cancelled (both reduce-only, so two triggers cannot over-sell). Spot: the base asset is
  locked by the old stop, so both happen in one venue call (Binance ``order/cancelReplace``,
  ``STOP_ON_FAILURE``). At most ``max_moves_per_min`` brain-driven moves per symbol per 60 s of
  market time (the decisions' ``market_ts_ns``: the wall clock live, the replay's clock in a
  replay); others are refused (REJECTED/GUARD) and the old stop stays. A repeated move (a retry
  after an ambiguous answer, or a restart) looks its order up first.
- **exit** (CLOSE/REDUCE): derivatives: the reduce-only close is placed first; then a remainder
  gets its own stop before the old one is cancelled, and a full close cancels the stop.
  Spot: the stop is replaced by the market sell in one cancel/replace call, and a remainder is
  protected again at once.
- A stop found **already filled** (it triggered while the brain was deciding, or while the
  executor was down) *is* the exit: its fill is kept in ``fired`` and reported for the next exit
  or PROTECT decision of that symbol, and nothing else is sent.
- A **move above the market** (a PROTECT whose new level the price has already crossed — a gap,
  or a fast fall between the decision and the order): the venue refuses the stop as one that would
  trigger at once (:class:`~executor.venue.errors.StopWouldTrigger`). The stop would have fired, so
  the move becomes the exit it stands for: the position is sold at the market (role ``e`` of the
  PROTECT's decision id, looked up first on a restart) and the PROTECT is confirmed with that fill.
  Never silently dropped (DESIGN.md invariant 3).

The orders themselves and the bound on moves are planned by pure functions
(:func:`~executor.planning.stop_order`, :func:`~executor.planning.exit_order`,
:func:`~executor.planning.admit_move`); this module makes the venue calls. Client order ids come
from :class:`~executor.venue.coid.OrderIds`, and the venue's cancel/replace is the interface's
(:meth:`~executor.venue.base.Venue.replace`, :attr:`~executor.venue.base.Venue.supports_replace`).

**Sides** (issue #16): a long's stop is a SELL below the price, a short's a BUY above it; every
rule above mirrors for a short (a move places the new BUY stop before the old one goes; an exit is
a reduce-only BUY). Each operation takes the stop's side — the position's closing side — and a
held :class:`Protection` keeps it. Positions passed in (:meth:`adopt`, :meth:`reprotect`,
:meth:`orphans`) are signed, as the ledger's: > 0 long, < 0 short.

**The take-profit leg** (issue #16) is :mod:`executor.takeprofit`'s (:attr:`ExitOrderGateway.tp`);
the gateway does what involves the stop: :meth:`take_profit_fill` answers a REDUCE with reason
PARTIAL_TAKE_PROFIT with what the take-profit filled and shrinks the stop to what remains (or, the
take-profit gone with its position, answers with the stop's fill); a stop that fires drops the
take-profit; every exit cancels it, and a fill found meanwhile answers that decision, as a fired
stop does. No take-profit outlives its position (:meth:`orphans`).

State is a cache of the venue and the journal: :meth:`adopt` rebuilds it after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog

from protocol import RejectCode, Side

from . import planning
from .orders import GATEWAY, OrderOps, Unresolved
from .takeprofit import TakeProfitLeg, TakeProfits, TakeProfitStore
from .venue.base import OrderReport, OrderRequest, OrderType
from .venue.coid import Leg, OrderIds
from .venue.coid import parse as parse_coid
from .venue.errors import PermanentVenueError, StopWouldTrigger, VenueError

__all__ = ["ExitOrderGateway", "Protection", "ProtectiveStore"]


@dataclass
class Protection:
    """The protective stop held for one symbol: a SELL stop for a long, a BUY stop for a short."""

    client_order_id: str
    stop_price: float
    qty: float
    kind: OrderType
    side: Side = Side.SELL


class ProtectiveStore(TakeProfitStore, Protocol):
    """Where the gateway journals its stops and take-profits (the executor's
    :class:`~executor.journal.Journal`)."""

    def record_protective(self, symbol: str, client_order_id: str, stop_price: float, qty: float) -> None: ...
    def clear_protective(self, symbol: str) -> None: ...
    def protective(self) -> dict[str, tuple[str, float, float]]: ...


class _NoStore:
    def record_protective(self, symbol: str, client_order_id: str, stop_price: float, qty: float) -> None:
        pass

    def clear_protective(self, symbol: str) -> None:
        pass

    def protective(self) -> dict[str, tuple[str, float, float]]:
        return {}

    def record_take_profit(self, symbol: str, client_order_id: str, limit_price: float, qty: float) -> None:
        pass

    def clear_take_profit(self, symbol: str) -> None:
        pass

    def take_profits(self) -> dict[str, tuple[str, float, float]]:
        return {}


class ExitOrderGateway:
    """Owns protective orders; see the module docstring.

    Args:
        ops: order primitives over the venue.
        namespace: this executor's client order id namespace.
        store: journal of the current stop per symbol (default: none, for tests of the gateway alone).
        stop_limit_offset_bps: spot: the stop-limit's limit price sits this far below its trigger
            (room for the fill in a fast market), bps.
        max_moves_per_min: bound on brain-driven cancel/replace per symbol.
        metrics: object with an ``unprotected`` Gauge and a ``stops_crossed`` Counter (moves turned
            into exits), or ``None``.
    """

    def __init__(
        self, ops: OrderOps, namespace: str, *, store: ProtectiveStore | None = None,
        stop_limit_offset_bps: float = 50.0, max_moves_per_min: int = 6, metrics: object | None = None,
    ) -> None:  # fmt: skip
        self.ops = ops
        self.venue = ops.venue
        self.namespace = namespace
        self.ids = OrderIds(namespace)
        self.store: ProtectiveStore = store if store is not None else _NoStore()
        self.offset_bps = stop_limit_offset_bps
        self.max_moves = max_moves_per_min
        self.metrics = metrics
        self.stops: dict[str, Protection] = {}
        self.fired: dict[str, OrderReport] = {}  # stop fills not yet reported through a decision
        self.unprotected: dict[str, float] = {}  # symbol -> qty that should have a stop and has none
        self._retry: dict[str, tuple[float, int, int, Side]] = {}  # symbol -> (stop, decision_id, market_ts_ns, side)
        self._moves: dict[str, tuple[float, ...]] = {}  # symbol -> market times of recent moves (planning.admit_move)
        self.log = structlog.get_logger("gateway")
        self.tp = TakeProfits(ops, self.ids, self.store, self.log)  # the take-profit legs

    @property
    def kind(self) -> OrderType:
        """The protective order type on this venue (:func:`~executor.planning.stop_kind`)."""
        return planning.stop_kind(self.venue.derivatives)

    def _request(self, symbol: str, qty: float, stop: float, decision_id: int, market_ts_ns: int,
                 side: Side = Side.SELL) -> OrderRequest:  # fmt: skip
        return planning.stop_order(self.ids, symbol, qty, stop, decision_id, market_ts_ns,
                                   derivatives=self.venue.derivatives, limit_offset_bps=self.offset_bps, side=side)  # fmt: skip

    # -- bookkeeping ------------------------------------------------------------------------

    def _set_unprotected(self, symbol: str, qty: float) -> None:
        if qty > 0:
            self.unprotected[symbol] = qty
        else:
            self.unprotected.pop(symbol, None)
            self._retry.pop(symbol, None)
        if self.metrics is not None:
            self.metrics.unprotected.set(len(self.unprotected))

    def mark_unprotected(self, symbol: str, qty: float, stop: float, decision_id: int, market_ts_ns: int,
                         detail: str, *, side: Side = Side.SELL) -> None:  # fmt: skip
        """A position of ``qty`` has no stop on the venue: count it, log it, retry in :meth:`reprotect`."""
        self.log.critical("position_unprotected", symbol=symbol, qty=qty, stop=stop, side=side.name, detail=detail)
        self._set_unprotected(symbol, qty)
        self._retry[symbol] = (stop, decision_id, market_ts_ns, side)

    def _hold(self, symbol: str, prot: Protection) -> None:
        self.stops[symbol] = prot
        self._set_unprotected(symbol, 0.0)

    def _forget(self, symbol: str) -> None:
        self.stops.pop(symbol, None)
        self.store.clear_protective(symbol)

    # -- the three operations --------------------------------------------------------------

    async def protect(self, symbol: str, qty: float, stop: float, decision_id: int, market_ts_ns: int,
                      *, recovering: bool = False, crossed_raises: bool = False,
                      side: Side = Side.SELL) -> OrderReport | None:  # fmt: skip
        """Place the stop for a position of ``qty``; ``None`` if the venue refused it (the position
        is then counted unprotected, unless ``qty`` is dust below the venue's minimum).

        Raises:
            StopWouldTrigger: with ``crossed_raises``, the market is already through ``stop``
                (:meth:`move` then exits instead).
        """
        req = self._request(symbol, qty, stop, decision_id, market_ts_ns, side)
        self.store.record_protective(symbol, req.client_order_id, stop, qty)
        try:
            report = await self.ops.place(req, lookup_first=recovering)
            if report.status.terminal and report.filled <= 0:  # a cancelled twin found on recovery
                report = await self.ops.place(req)
        except PermanentVenueError as exc:
            self.store.clear_protective(symbol)
            if crossed_raises and isinstance(exc, StopWouldTrigger):
                raise
            if exc.reject_code is RejectCode.INVALID_QUANTITY:
                self.log.warning("dust_not_protected", symbol=symbol, qty=qty, detail=exc.detail)
                self._set_unprotected(symbol, 0.0)
                return None
            self.mark_unprotected(symbol, qty, stop, decision_id, market_ts_ns, exc.detail, side=side)
            return None
        if report.status.terminal and report.filled > 0:
            self.fired[symbol] = report  # it triggered already
            self._forget(symbol)
            return report
        self._hold(symbol, Protection(req.client_order_id, stop, qty, req.type, side))
        self.log.info("stop_placed", symbol=symbol, client_order_id=req.client_order_id, stop=stop, qty=qty,
                      side=side.name, status=str(report.status))  # fmt: skip
        return report

    async def check_fired(self, symbol: str) -> OrderReport | None:
        """The fill of ``symbol``'s stop if it has triggered (and forget it), else ``None``."""
        if symbol in self.fired:
            return self.fired.pop(symbol)
        held = self.stops.get(symbol)
        if held is None:
            return None
        found = await self.ops.lookup(held.client_order_id, symbol, reason="refresh")
        if found is None or (found.status.terminal and found.filled <= 0):
            self.log.error("stop_gone", symbol=symbol, client_order_id=held.client_order_id)
            self._forget(symbol)
            return None
        if found.status.terminal:
            self.stops.pop(symbol, None)  # its journal row goes with the outcome that books this fill
            try:
                await self.tp.drop(symbol)  # the stop closed the position: no take-profit outlives it
            except (PermanentVenueError, Unresolved, VenueError) as exc:  # the stop's fill is returned whatever
                self.log.error("take_profit_cancel_failed", symbol=symbol, detail=str(exc))
            return found
        return None

    async def move(self, symbol: str, qty: float, stop: float, decision_id: int, market_ts_ns: int, *,
                   recovering: bool = False, bounded: bool = True, crossed_exits: bool = True,
                   side: Side = Side.SELL) -> OrderReport:  # fmt: skip
        """Move the stop to ``stop`` for ``qty``. Returns the new stop's report (OPEN), a stop's
        fill if it had triggered (the position is gone), or — the market already through ``stop``,
        for a PROTECT decision (``crossed_exits``) — the fill of the market exit that replaces the
        move (module docstring).

        Raises:
            PermanentVenueError: refused by the bound on moves (GUARD) or by the venue (the old stop
                stays); StopWouldTrigger without ``crossed_exits``. Unresolved: the venue's answers
                stayed ambiguous.
        """
        if not crossed_exits:  # an entry's stop for a grown position: ``decision_id``'s "e" order is the entry
            return await self._move(symbol, qty, stop, decision_id, market_ts_ns, recovering=recovering,
                                    bounded=bounded, side=side)  # fmt: skip
        if recovering:  # a move that became an exit before a restart: that exit is the answer
            found = await self.ops.lookup(self.ids.order(decision_id), symbol, reason="recovery")
            if found is not None:
                report = await self.ops.settle(found, symbol, owner=GATEWAY)
                await self._after_exit(symbol, self.stops.get(symbol), qty - report.filled, decision_id, market_ts_ns)
                return report
        try:
            return await self._move(symbol, qty, stop, decision_id, market_ts_ns, recovering=recovering,
                                    bounded=bounded, side=side)  # fmt: skip
        except StopWouldTrigger as exc:
            self.log.warning("stop_above_market_exit", symbol=symbol, stop=stop, qty=qty, side=side.name,
                             detail=exc.detail, action="the stop would fire at once: exiting at the market instead")  # fmt: skip
            if self.metrics is not None:
                self.metrics.stops_crossed.inc()
            return await self.exit(symbol, qty, qty, decision_id, market_ts_ns, stop, side=side)

    async def _move(self, symbol: str, qty: float, stop: float, decision_id: int, market_ts_ns: int, *,
                    recovering: bool, bounded: bool, side: Side = Side.SELL) -> OrderReport:  # fmt: skip
        fired = await self.check_fired(symbol)
        if fired is not None:
            return fired
        if bounded:
            admitted = planning.admit_move(self._moves.get(symbol, ()), symbol, market_ts_ns, self.max_moves)
            self._moves[symbol] = admitted.window
            if admitted.refusal is not None:
                raise admitted.refusal.error()
        req = self._request(symbol, qty, stop, decision_id, market_ts_ns, side)
        held = self.stops.get(symbol)
        if held is None:
            report = await self.protect(symbol, qty, stop, decision_id, market_ts_ns, recovering=recovering,
                                        crossed_raises=True, side=side)  # fmt: skip
            if report is None:
                raise PermanentVenueError(f"{symbol}: the venue refused the stop at {stop}", RejectCode.VENUE_ERROR)
            return report
        if held.client_order_id == req.client_order_id:  # this very move was done before a retry
            found = await self.ops.lookup(req.client_order_id, symbol, reason="recovery")
            if found is not None and not (found.status.terminal and found.filled <= 0):
                await self.cancel_extras(symbol)  # the old stop, if its cancel never completed
                return found
        if self.venue.derivatives:
            self.store.record_protective(symbol, req.client_order_id, stop, qty)
            report = await self.ops.place(req, lookup_first=recovering)  # new first: never a moment without a stop
            self._hold(symbol, Protection(req.client_order_id, stop, qty, req.type, side))
            gone = await self.ops.cancel(held.client_order_id, symbol, owner=GATEWAY, kind=held.kind)
            if gone is not None and gone.filled > 0:
                # the old stop fired while the new one went in: that fill is the answer, and the
                # new stop has no position left to protect — cancel it so it is not orphaned
                self.log.warning("stop_filled_during_move", symbol=symbol, old=held.client_order_id)
                await self.ops.cancel(req.client_order_id, symbol, owner=GATEWAY, kind=req.type)
                self._forget(symbol)
                return gone
            return report
        report = await self._replace(held, req)
        if report.client_order_id == req.client_order_id and not report.status.terminal:
            self._hold(symbol, Protection(req.client_order_id, stop, qty, req.type, side))
        return report

    async def _replace(self, held: Protection, req: OrderRequest) -> OrderReport:
        """Spot: cancel ``held`` and place ``req`` in one call; if the cancel part failed because
        the stop already filled, return the stop's report (and forget it)."""
        self.ops.check_owner(held.kind, held.client_order_id, GATEWAY, "amend")
        if not self.venue.supports_replace:
            raise PermanentVenueError(f"{self.venue.name} cannot cancel/replace", RejectCode.VENUE_ERROR)
        if req.type in (OrderType.STOP_LOSS_LIMIT, OrderType.STOP_MARKET):
            self.store.record_protective(req.symbol, req.client_order_id, req.stop_price or 0.0, req.amount)
        try:
            return await self.ops.call("cancel_replace", lambda: self.venue.replace(held.client_order_id, req))
        except StopWouldTrigger:
            # the new stop is already crossed: the caller exits instead, so no re-protect at the old level
            found = await self.ops.lookup(held.client_order_id, req.symbol, reason="replace")
            if found is not None and found.status.terminal:
                self._forget(req.symbol)
                if found.filled > 0:
                    return found
            else:
                self.store.record_protective(req.symbol, held.client_order_id, held.stop_price, held.qty)
            raise
        except PermanentVenueError:
            found = await self.ops.lookup(held.client_order_id, req.symbol, reason="replace")
            if found is not None and found.status.terminal:
                self._forget(req.symbol)
                if found.filled > 0:
                    return found
                # -2021: the stop was cancelled but the new order refused — protect again at once
                self.log.error("replace_half_failed", symbol=req.symbol, old=held.client_order_id)
                await self.protect(req.symbol, held.qty, held.stop_price, req.decision_id, req.market_ts_ns,
                                   side=held.side)  # fmt: skip
            else:
                self.store.record_protective(req.symbol, held.client_order_id, held.stop_price, held.qty)
            raise
        except Exception:
            # ambiguous: find out what the venue did before anything else
            new = await self.ops.lookup(req.client_order_id, req.symbol, reason="replace")
            if new is not None:
                return new
            old = await self.ops.lookup(held.client_order_id, req.symbol, reason="replace")
            if old is not None and old.status.terminal and old.filled > 0:
                self._forget(req.symbol)
                return old
            raise Unresolved(f"cancel/replace of {held.client_order_id} unresolved") from None

    async def exit(self, symbol: str, qty: float, position_qty: float, decision_id: int, market_ts_ns: int,
                   ref: float, *, recovering: bool = False, side: Side = Side.SELL) -> OrderReport:  # fmt: skip
        """Close ``qty`` of a position of ``position_qty`` (CLOSE/REDUCE) with an order on ``side``
        (SELL a long, BUY a short); returns the report to confirm with."""
        req = planning.exit_order(self.ids, symbol, qty, decision_id, market_ts_ns, ref,
                                  derivatives=self.venue.derivatives, side=side)  # fmt: skip
        prot = self.stops.get(symbol)
        if recovering:
            found = await self.ops.lookup(req.client_order_id, symbol, reason="recovery")
            if found is not None:
                report = await self.ops.settle(found, symbol, owner=GATEWAY)
                await self._after_exit(symbol, self.stops.get(symbol), position_qty - report.filled, decision_id,
                                       market_ts_ns)  # fmt: skip
                return report
        fired = await self.check_fired(symbol)
        if fired is not None:
            self.log.info("exit_already_done_by_stop", symbol=symbol, client_order_id=fired.client_order_id,
                          filled=fired.filled, price=fired.avg_price)  # fmt: skip
            return fired
        took = await self.tp.cancel(symbol)  # every leg goes with the exit
        if took is not None:
            self.log.info("exit_found_take_profit_filled", symbol=symbol, client_order_id=took.client_order_id,
                          filled=took.filled, price=took.avg_price)  # fmt: skip
            return took  # that fill answers the exit; the brain finishes the rest on its next bar
        prot = self.stops.get(symbol)
        if prot is None or self.venue.derivatives:
            try:
                report = await self.ops.settle(await self.ops.place(req), symbol, owner=GATEWAY)
            except PermanentVenueError:
                # a reduce-only close refused: the stop may have closed the position meanwhile
                fired = await self.check_fired(symbol) if prot is not None else None
                if fired is not None:
                    self.log.info("exit_done_by_stop_meanwhile", symbol=symbol, client_order_id=fired.client_order_id)
                    return fired
                raise
        else:
            report = await self._replace(prot, req)
            if report.client_order_id != req.client_order_id:
                return report  # the stop had filled: that is the exit
            self._forget(symbol)  # the replace cancelled the stop
            report = await self.ops.settle(report, symbol, owner=GATEWAY)
        await self._after_exit(symbol, prot, position_qty - report.filled, decision_id, market_ts_ns)
        return report

    async def _after_exit(self, symbol: str, prot: Protection | None, remaining: float, decision_id: int,
                          market_ts_ns: int) -> None:  # fmt: skip
        """After a close: protect any remainder (before the old stop goes), cancel the old stop."""
        if prot is None:
            return
        held = self.stops.get(symbol)
        if remaining > max(prot.qty, remaining) * 1e-9:
            if held is not None and held.client_order_id == self.ids.stop(decision_id):
                return  # done before a restart
            await self.protect(symbol, remaining, prot.stop_price, decision_id, market_ts_ns, side=prot.side)
        else:
            self._set_unprotected(symbol, 0.0)
        if held is not None and held.client_order_id == prot.client_order_id and self.venue.derivatives:
            gone = await self.ops.cancel(prot.client_order_id, symbol, owner=GATEWAY, kind=prot.kind)
            if gone is not None and gone.filled > 0:
                self.log.error("stop_filled_after_exit", symbol=symbol, client_order_id=prot.client_order_id)
                self.fired[symbol] = gone
            if self.stops.get(symbol) is held:
                self._forget(symbol)

    # -- the take-profit leg (:mod:`executor.takeprofit`), where it meets the stop --------------------

    @property
    def take_profits(self) -> dict[str, TakeProfitLeg]:
        """The take-profit resting per symbol."""
        return self.tp.held

    @property
    def tp_fired(self) -> dict[str, OrderReport]:
        """Take-profit fills found and not yet reported through a decision."""
        return self.tp.fired

    async def take_profit_fill(self, symbol: str, position_qty: float, decision_id: int,
                               market_ts_ns: int) -> OrderReport | None:  # fmt: skip
        """What the take-profit filled (its rest cancelled: the fill is final), or ``None`` while it
        rests unfilled or when none rests. When none rests any more (the venue expired it: its stop
        closed the position first), the stop's fill answers instead — the position is gone. After a
        take-profit's fill the stop shrinks to what remains of ``position_qty`` (base units, before
        the fill) — at the same level, never a moment without one — or is cancelled when nothing
        remains."""
        report, gone = await self.tp.take_fill(symbol)
        if gone:
            return await self.check_fired(symbol)  # a reduce-only order expires when its stop closed the position
        if report is None:
            return None
        stop = self.stops.get(symbol)
        remaining = position_qty - report.filled
        if stop is not None:
            try:
                if remaining > position_qty * 1e-9:
                    moved = await self.move(symbol, remaining, stop.stop_price, decision_id, market_ts_ns,
                                            bounded=False, crossed_exits=False, side=stop.side)  # fmt: skip
                    if moved.status.terminal and moved.filled > 0:  # the stop had fired too: the next exit's answer
                        self.log.warning("stop_filled_with_the_take_profit", symbol=symbol,
                                         client_order_id=moved.client_order_id)  # fmt: skip
                        self.fired[symbol] = moved
                else:
                    await self._after_exit(symbol, stop, 0.0, decision_id, market_ts_ns)
            except (PermanentVenueError, Unresolved) as exc:  # the fill stands; reconciliation resizes the stop
                self.log.error("stop_resize_after_take_profit_failed", symbol=symbol, detail=str(exc))
        return report

    def claim(self, client_order_id: str) -> None:
        """A fill of ``client_order_id`` is being booked: it answers no later decision (a stop or
        take-profit fill found on recovery and kept in :attr:`fired` / :attr:`tp_fired`, or a
        recovered take-profit held as resting)."""
        for symbol in [s for s, r in self.fired.items() if r.client_order_id == client_order_id]:
            del self.fired[symbol]
        self.tp.claim(client_order_id)

    def pending_fills(self) -> dict[str, float]:
        """Fills the venue made and no outcome has booked yet (a fired stop, a filled take-profit kept
        for the next decision), signed per symbol: what the venue's position differs from the ledger's
        by, for now."""
        out: dict[str, float] = {}
        for kept in (self.fired, self.tp.fired):
            for symbol, r in kept.items():
                out[symbol] = out.get(symbol, 0.0) + (r.filled if r.side is Side.BUY else -r.filled)
        return out

    # -- restart and maintenance -----------------------------------------------------------

    async def adopt(self, positions: dict[str, float]) -> int:
        """After a restart: look up each journaled stop (open → held; filled → ``fired``; gone →
        the position is unprotected), and cancel any other open stop of ours. ``positions`` are
        the ledger's, signed. Returns the number of stops held."""
        for symbol, (coid, stop, qty) in self.store.protective().items():
            found = await self.ops.lookup(coid, symbol, reason="recovery")
            parsed = parse_coid(coid)
            did = parsed.decision_id if parsed is not None else 0
            held = positions.get(symbol, 0.0)
            if found is not None and not found.status.terminal:
                self.stops[symbol] = Protection(coid, stop, found.amount or qty, found.type, found.side)
            elif found is not None and found.filled > 0:
                self.fired[symbol] = found  # its journal row goes with the outcome that books this fill
            elif held:
                self.mark_unprotected(symbol, abs(held), stop, did, 0, f"stop {coid} not on the venue",
                                      side=planning.closing_side(held))  # fmt: skip
        for coid in await self.cancel_extras():
            self.log.warning("extra_stop_cancelled", client_order_id=coid)
        await self.tp.adopt()
        return len(self.stops)

    async def reprotect(self, positions: dict[str, float]) -> int:
        """Try again to place every stop the venue refused, for the position now held (``positions``:
        signed, the ledger's); returns how many positions are still unprotected."""
        for symbol, (stop, decision_id, market_ts_ns, side) in list(self._retry.items()):
            held = positions.get(symbol, 0.0)
            if not held or planning.closing_side(held) is not side or symbol in self.stops:
                self._set_unprotected(symbol, 0.0)
                continue
            await self.protect(symbol, abs(held), stop, decision_id, market_ts_ns, recovering=True, side=side)
        return len(self.unprotected)

    async def cancel_extras(self, symbol: str | None = None) -> list[str]:
        """Cancel our open stops (for ``symbol``, or all) other than the one held for their symbol —
        a replaced stop whose cancel never completed; returns the client order ids cancelled.

        The read is retried and counted as every venue call is (``OrderOps.call``): a transient
        error — a 5xx, -1021 — must not fail an executor's start (:meth:`adopt`) or an exit.

        Raises:
            VenueError: the read kept failing past the retry budget, or failed permanently.
        """
        cancelled = []
        for o in await self.ops.call("open_orders", lambda: self.venue.open_orders(symbol)):
            if self.ids.mine(o.client_order_id, Leg.STOP) is None:
                continue
            held = self.stops.get(o.symbol)
            if held is None or held.client_order_id != o.client_order_id:
                gone = await self.ops.cancel(o.client_order_id, o.symbol, owner=GATEWAY, kind=o.type)
                if gone is not None and gone.filled > 0:
                    self.log.error("extra_stop_filled", symbol=o.symbol, client_order_id=o.client_order_id)
                    self.fired[o.symbol] = gone
                cancelled.append(o.client_order_id)
        return cancelled

    async def orphans(self, positions: dict[str, float]) -> list[str]:
        """Cancel our stops whose symbol has no position in ``positions`` (base units, signed), and
        any stop of ours that is not the one held for its symbol; returns the client order ids
        cancelled. The guard against freqtrade #12528."""
        for symbol in [s for s in self.stops if not positions.get(s, 0.0)]:
            self._forget(symbol)
        cancelled = []
        for symbol in [s for s in self.take_profits if not positions.get(s, 0.0)]:
            coid = self.take_profits[symbol].client_order_id
            await self.tp.drop(symbol)
            cancelled.append(coid)
        return cancelled + await self.cancel_extras()
