"""Order placement and matching for spot and USDⓈ-M (regular orders; conditional ones: :mod:`.algo`).

:class:`OrderMatching` is mixed into :class:`~testbed.emulator.engine.Engine` and works on its
state (accounts, bars, replay clock, specs, order ids); the money moves through
:mod:`testbed.emulator.ledger`. Sans-IO, no wall clock.

Matching rules (one symbol's bars, shared by spot and USDⓈ-M):

* Per bar and per open order (by orderId), when the engine lets a bar happen: delayed market
  orders fill at the bar open; stops trigger (sell: ``low <= stop``; buy: ``high >= stop``); a
  triggered spot STOP_LOSS_LIMIT becomes a working limit and fills at its limit price when the bar
  trades through it; resting limits fill when the bar crosses (buy: ``low <= price``) at
  ``min(price, open)`` for a buy (``max`` for a sell). Fill time is the bar open time.
* A MARKET order fills at the open of the first bar whose open time >= ``clock_ms`` (the
  project's paper venue rule). No such bar: ``-1013 "Market is closed."``.
* A LIMIT order that crosses that same reference price fills at once at it (taker); otherwise it
  rests (maker). A stop already through its trigger price is rejected (spot -2010 "Stop price
  would trigger immediately.", USDⓈ-M -2021).
* timeInForce IOC / FOK (a LIMIT at placement, a spot STOP_LOSS_LIMIT when it triggers): never
  rests. IOC fills what crosses (all of it, or the ``partial_fill`` fraction) and the rest
  EXPIRES at once (status EXPIRED, executedQty < origQty, 0 if it did not cross); FOK fills all
  or EXPIRES with nothing (so a ``partial_fill`` fault expires it unfilled). Locked spot funds of
  the expired rest are released.
* A resting USDⓈ-M reduce-only limit fills at most what is left of the position it reduces when a
  bar trades through it (another order may have closed it in the same bar), and expires with
  nothing left — as Binance expires a reduce-only order that would grow the other side.
* USDⓈ-M admission: reduce-only needs a position to reduce (-2022; a market one is cut to its
  size); otherwise the margin the order adds (initial margin of what increases the position, plus
  the taker fee on the whole quantity) must fit in ``available`` (:func:`~.ledger.available_usdm`;
  -2019 otherwise). A duplicate open ``newClientOrderId``: spot -2010, USDⓈ-M -4116.

Errors: every rejection raises :class:`testbed.emulator.errors.BinanceError`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal

from .errors import E
from .ledger import available_usdm, lock_spot, release_lock, settle_futures, settle_spot
from .model import D0, Account, Bar, Order, OrderRequest, OrderType, Side, Status, Venue
from .specs import SymbolSpec

__all__ = ["OrderMatching"]


class OrderMatching:
    """Placement (:meth:`new_order`) and matching of regular orders; mixed into the engine."""

    # the engine's state and methods this mixin works with (Engine sets and defines them)
    bars: list[Bar]
    specs: dict[Venue, dict[str, SymbolSpec]]
    clock_ms: int
    usdm_maker: Decimal
    usdm_taker: Decimal
    _ids: itertools.count
    _trade_ids: itertools.count
    account: Callable[[str], Account]
    spec: Callable[[Venue, str], SymbolSpec]
    next_open_index: Callable[[], int | None]
    reference_price: Callable[[], Decimal]
    mark_price: Callable[[], Decimal]

    def new_order(self, api_key: str, venue: Venue, req: OrderRequest) -> Order:
        """Validate, accept and (if marketable) match an order. Raises BinanceError on rejection."""
        acct = self.account(api_key)
        return self._place(acct, venue, req, *self._check_new(venue, req))

    def _check_new(self, venue: Venue, req: OrderRequest) -> tuple[SymbolSpec, Decimal, Decimal | None]:
        """The request-level checks (type, filters, market open) of a new order; no state change.

        Returns ``(spec, quantity, reference price)``; the reference price (the next bar open) is
        ``None`` for a stop, whose own check comes at admission.
        """
        spec = self.spec(venue, req.symbol)
        futures = venue is Venue.USDM
        if futures and req.type not in (OrderType.MARKET, OrderType.LIMIT):
            raise E.use_algo_endpoint()
        if req.type.value not in spec.order_types or (futures and req.type is OrderType.STOP_LOSS_LIMIT):
            raise E.invalid_order_type()
        market = req.type is OrderType.MARKET
        ref = self.reference_price() if req.type in (OrderType.MARKET, OrderType.LIMIT) else None
        qty = req.quantity
        if qty is None and req.quote_order_qty is not None and market and not futures:
            qty = spec.floor_qty(req.quote_order_qty / ref)
        if qty is None:
            raise E.mandatory("quantity")
        spec.check_qty(qty, market, futures)
        if req.price is not None:
            spec.check_price(req.price, futures)
        if req.stop_price is not None:
            spec.check_price(req.stop_price, futures)
        spec.check_notional(qty * (ref if market else req.price), market, futures, req.reduce_only)
        return spec, qty, ref

    def _place(self, acct: Account, venue: Venue, req: OrderRequest, spec: SymbolSpec, qty: Decimal,
               ref: Decimal | None) -> Order:
        """Admit (duplicate id, balance/margin, stop side) and match a checked order; all or nothing."""
        futures = venue is Venue.USDM
        market = req.type is OrderType.MARKET
        if req.client_order_id and any(o.client_order_id == req.client_order_id and o.is_open
                                       for o in acct.orders[venue].values()):
            raise E.duplicate_client_id_futures() if futures else E.duplicate_order()
        order = Order(venue, next(self._ids), req.client_order_id or f"emu{self.clock_ms}x{len(acct.orders[venue])}",
                      req.symbol, req.side, req.type, qty, req.price or D0, req.stop_price or D0,
                      req.time_in_force or "GTC", self.clock_ms,
                      reduce_only=req.reduce_only, update_ms=self.clock_ms, working_ms=self.clock_ms,
                      fill_fraction=req.fill_fraction, delayed=req.delayed)
        if futures:
            self._admit_futures(acct, order, ref if market else req.price)
        else:
            self._admit_spot(acct, spec, order, ref if market else None)
        acct.orders[venue][order.order_id] = order
        if req.delayed:
            return order
        if market:
            i = self.next_open_index()
            self._fill_market(acct, order, self.bars[i].open, self.bars[i].ts_ms)
        elif order.working:  # a LIMIT: takes at the next open if it crosses it
            crosses = order.price >= ref if order.side is Side.BUY else order.price <= ref
            self._take(acct, order, crosses, ref, self.bars[self.next_open_index()].ts_ms)
        return order

    def _match_orders(self, acct: Account, bar: Bar) -> list[int]:
        """Let ``bar`` happen to ``acct``'s open orders (module docstring); the orderIds that changed."""
        changed: list[int] = []
        for venue in (Venue.SPOT, Venue.USDM):
            for order in sorted((o for o in acct.orders[venue].values() if o.is_open), key=lambda o: o.order_id):
                if order.type is OrderType.MARKET:
                    if order.delayed:
                        order.delayed = False
                        self._fill_market(acct, order, bar.open, bar.ts_ms)
                        changed.append(order.order_id)
                    continue
                if not order.working:
                    hit = bar.low <= order.stop_price if order.side is Side.SELL else bar.high >= order.stop_price
                    if not hit:
                        continue
                    order.working, order.working_ms, order.update_ms = True, bar.ts_ms, bar.ts_ms
                    changed.append(order.order_id)
                    if order.type is OrderType.STOP_LOSS_LIMIT:  # fills at its limit price if traded through
                        self._take(acct, order, bar.low <= order.price <= bar.high, order.price, bar.ts_ms)
                        continue
                crosses = bar.low <= order.price if order.side is Side.BUY else bar.high >= order.price
                if crosses:
                    px = min(order.price, bar.open) if order.side is Side.BUY else max(order.price, bar.open)
                    qty = order.remaining
                    if order.venue is Venue.USDM and (order.reduce_only or order.close_position):
                        # a reduce-only order never opens or grows a position: it fills what is left of the
                        # position it reduces (another order may have closed it in this bar), else expires
                        pos = acct.positions[order.symbol].amt
                        left = -pos if order.side is Side.BUY else pos
                        qty = min(qty, max(left, D0))
                        if qty <= 0:
                            self._expire(acct, order, bar.ts_ms)
                            changed.append(order.order_id)
                            continue
                    clamped = qty < order.remaining
                    self._fill(acct, order, px, qty, bar.ts_ms, maker=True)
                    if clamped and order.is_open:
                        self._expire(acct, order, bar.ts_ms)  # the rest would grow the other side: gone
                    changed.append(order.order_id)
        return changed

    def _take(self, acct: Account, order: Order, crosses: bool, price: Decimal, ts_ms: int) -> None:
        """Immediate (taker) match of a limit just placed or just triggered, by timeInForce.

        GTC (and GTX/GTD): fill at ``price`` if it crosses, else rest. IOC: fill what it can, expire
        the rest. FOK: fill all or expire with nothing; a ``partial_fill`` fault (only part of the
        quantity available) therefore expires a FOK order unfilled.
        """
        tif = order.time_in_force
        if tif == "FOK" and order.fill_fraction is not None:
            order.fill_fraction = None
            crosses = False
        if crosses:
            self._fill(acct, order, price, order.remaining, ts_ms, maker=False)
        if tif in ("IOC", "FOK") and order.is_open:
            self._expire(acct, order, ts_ms)

    def _unlock(self, acct: Account, order: Order) -> None:
        if order.locked:
            release_lock(acct, self.specs[order.venue][order.symbol], order)

    def _expire(self, acct: Account, order: Order, ts_ms: int) -> None:
        self._unlock(acct, order)
        order.set_status(Status.EXPIRED)
        order.update_ms = ts_ms

    def _admit_spot(self, acct: Account, spec: SymbolSpec, order: Order, ref: Decimal | None) -> None:
        if order.type is OrderType.STOP_LOSS_LIMIT:
            now = self.reference_price()
            if (order.side is Side.SELL and now <= order.stop_price) or (order.side is Side.BUY and now >= order.stop_price):
                raise E.stop_would_trigger()
            order.working, order.working_ms = False, -1
        lock_spot(acct, spec, order, ref)

    def _admit_futures(self, acct: Account, order: Order, price: Decimal) -> None:
        pos = acct.positions[order.symbol]
        signed = order.orig_qty if order.side is Side.BUY else -order.orig_qty
        if order.reduce_only:
            if pos.amt == 0 or (pos.amt > 0) == (signed > 0):
                raise E.reduce_only_rejected()
            if order.type is OrderType.MARKET:
                order.orig_qty = min(order.orig_qty, abs(pos.amt))
            return
        increase = order.orig_qty if pos.amt == 0 or (pos.amt > 0) == (signed > 0) else max(D0, order.orig_qty - abs(pos.amt))
        lev = Decimal(acct.leverage.get(order.symbol, 1))
        need = increase * price / lev + order.orig_qty * price * self.usdm_taker
        if need > available_usdm(acct, self.mark_price()):
            raise E.margin_insufficient()

    def _fill_market(self, acct: Account, order: Order, price: Decimal, ts_ms: int) -> None:
        qty = order.remaining
        if order.venue is Venue.SPOT:
            spec = self.specs[Venue.SPOT][order.symbol]
            asset, need = (spec.quote, qty * price) if order.side is Side.BUY else (spec.base, qty)
            if acct.free(asset) < need:  # a delayed order may no longer be affordable
                order.set_status(Status.EXPIRED)
                order.update_ms = ts_ms
                return
        elif order.reduce_only or order.close_position:
            pos = acct.positions[order.symbol]
            wrong = pos.amt == 0 or (pos.amt > 0) == (order.side is Side.BUY)
            if wrong:
                order.set_status(Status.EXPIRED)
                order.update_ms = ts_ms
                return
            qty = min(qty, abs(pos.amt))
            if order.close_position:
                order.orig_qty = qty
        self._fill(acct, order, price, qty, ts_ms, maker=False)
        if order.is_open:  # a partial_fill fault left a rest: a market order expires it
            order.set_status(Status.EXPIRED)

    def _fill(self, acct: Account, order: Order, price: Decimal, qty: Decimal, ts_ms: int, maker: bool) -> None:
        if order.fill_fraction is not None:
            spec = self.specs[order.venue][order.symbol]
            qty = spec.floor_qty(qty * Decimal(str(order.fill_fraction)))
            order.fill_fraction = None
        if qty > 0:
            if order.venue is Venue.SPOT:
                spot_spec = self.specs[Venue.SPOT][order.symbol]
                fill = settle_spot(acct, spot_spec, order, price, qty, ts_ms, maker, self._trade_ids)
            else:
                fill = settle_futures(acct, order, price, qty, ts_ms, maker,
                                      self.usdm_maker if maker else self.usdm_taker, self._trade_ids)
            order.fills.append(fill)
            acct.trades[order.venue].append(fill)
            order.executed_qty += qty
            order.cum_quote += price * qty
        order.update_ms = ts_ms
        if order.executed_qty >= order.orig_qty:
            order.set_status(Status.FILLED)
        elif order.executed_qty > 0:
            order.set_status(Status.PARTIALLY_FILLED)
