"""USDⓈ-M conditional orders: Binance's Algo Service (``/fapi/v1/algoOrder``), accept, trigger, cancel.

:class:`AlgoOrders` is mixed into :class:`~testbed.emulator.engine.Engine` and works on its state;
a triggered order becomes a regular MARKET order filled through :mod:`testbed.emulator.matching`.
Sans-IO, no wall clock.

Rules:

* Accepted types: STOP_MARKET and TAKE_PROFIT_MARKET, with ``triggerPrice``; a quantity unless
  ``closePosition``. A sell stop / buy take-profit triggers on the way down (``low <= trigger``),
  the others on the way up (``high >= trigger``). One already through its trigger at the reference
  price (the next bar open) is rejected (-2021); a ``clientAlgoId`` already used by a NEW algo
  order is rejected as a duplicate (-4116).
* Per bar (after the regular orders, by algoId): a triggered order fills at ``min(trigger, open)``
  on the way down (``max`` on the way up, i.e. the gap price) at the bar open time; its algo status
  becomes FINISHED with ``actualOrderId`` the MARKET order's id. ``reduceOnly`` / ``closePosition``
  with no position to reduce: CANCELED, "Reduce Only reject"; otherwise cut to the position.
* Algo ids start at 1,000,001 (kept apart from order ids).

Errors: every rejection raises :class:`testbed.emulator.errors.BinanceError` (-2011 cancel of an
unknown or not NEW algo order, -2013 query of an unknown one).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal

from .errors import E
from .model import D0, Account, AlgoOrder, AlgoStatus, Bar, Order, OrderRequest, OrderType, Side, Venue
from .specs import SymbolSpec

__all__ = ["AlgoOrders"]


class AlgoOrders:
    """Conditional (algo) orders of USDⓈ-M; mixed into the engine."""

    # the engine's state and methods this mixin works with (Engine sets and defines them)
    clock_ms: int
    _ids: itertools.count
    _algo_ids: itertools.count
    account: Callable[[str], Account]
    spec: Callable[[Venue, str], SymbolSpec]
    reference_price: Callable[[], Decimal]
    _fill: Callable[..., None]

    def new_algo_order(self, api_key: str, req: OrderRequest) -> AlgoOrder:
        """Accept a USDⓈ-M conditional (STOP_MARKET / TAKE_PROFIT_MARKET) order (POST /fapi/v1/algoOrder)."""
        acct = self.account(api_key)
        spec = self.spec(Venue.USDM, req.symbol)
        if req.type not in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET):
            raise E.invalid_order_type()
        if req.stop_price is None:
            raise E.mandatory("triggerPrice")
        spec.check_price(req.stop_price, futures=True)
        qty = req.quantity or D0
        if not req.close_position:
            if req.quantity is None:
                raise E.mandatory("quantity")
            spec.check_qty(qty, market=True, futures=True)
        now = self.reference_price()
        falling = (req.side is Side.SELL) == (req.type is OrderType.STOP_MARKET)
        if (falling and now <= req.stop_price) or (not falling and now >= req.stop_price):
            raise E.algo_would_trigger()
        if req.client_order_id and any(a.client_algo_id == req.client_order_id and a.status is AlgoStatus.NEW
                                       for a in acct.algo_orders.values()):
            raise E.duplicate_client_id_futures()
        algo = AlgoOrder(next(self._algo_ids), req.client_order_id or f"emualgo{self.clock_ms}", req.symbol, req.side,
                         req.type, qty, req.stop_price, req.reduce_only, req.close_position,
                         req.time_in_force or "GTC", self.clock_ms, update_ms=self.clock_ms)
        acct.algo_orders[algo.algo_id] = algo
        return algo

    def _match_algos(self, acct: Account, bar: Bar) -> list[int]:
        """Let ``bar`` trigger ``acct``'s NEW algo orders (module docstring); the algoIds that changed."""
        changed: list[int] = []
        for algo in sorted((a for a in acct.algo_orders.values() if a.status is AlgoStatus.NEW), key=lambda a: a.algo_id):
            sell = algo.side is Side.SELL
            stop = algo.type is OrderType.STOP_MARKET
            falling = sell == stop  # sell stop / buy take-profit trigger on the way down
            hit = bar.low <= algo.trigger_price if falling else bar.high >= algo.trigger_price
            if hit:
                px = min(algo.trigger_price, bar.open) if falling else max(algo.trigger_price, bar.open)
                self._trigger_algo(acct, algo, px, bar.ts_ms)
                changed.append(algo.algo_id)
        return changed

    def _trigger_algo(self, acct: Account, algo: AlgoOrder, price: Decimal, ts_ms: int) -> None:
        algo.trigger_ms = algo.update_ms = ts_ms
        pos = acct.positions[algo.symbol]
        qty = abs(pos.amt) if algo.close_position else algo.quantity
        if algo.reduce_only or algo.close_position:
            if pos.amt == 0 or (pos.amt > 0) == (algo.side is Side.BUY):
                algo.status, algo.reject_reason = AlgoStatus.CANCELED, "Reduce Only reject"
                return
            qty = min(qty, abs(pos.amt))
        order = Order(Venue.USDM, next(self._ids), algo.client_algo_id, algo.symbol, algo.side, OrderType.MARKET,
                      qty, D0, algo.trigger_price, algo.time_in_force, ts_ms, reduce_only=algo.reduce_only,
                      close_position=algo.close_position, orig_type=algo.type, update_ms=ts_ms, working_ms=ts_ms)
        acct.orders[Venue.USDM][order.order_id] = order
        self._fill(acct, order, price, qty, ts_ms, maker=False)
        algo.actual_order_id = order.order_id
        algo.status = AlgoStatus.FINISHED

    def find_algo(self, api_key: str, algo_id: int | None = None, client_algo_id: str | None = None) -> AlgoOrder:
        algos = self.account(api_key).algo_orders
        if algo_id is not None:
            a = algos.get(algo_id)
            if a is not None:
                return a
        else:
            for a in sorted(algos.values(), key=lambda a: -a.algo_id):
                if a.client_algo_id == client_algo_id:
                    return a
        raise E.no_such_order()

    def cancel_algo(self, api_key: str, algo_id: int | None = None, client_algo_id: str | None = None) -> AlgoOrder:
        try:
            algo = self.find_algo(api_key, algo_id, client_algo_id)
        except Exception:
            raise E.unknown_order() from None
        if algo.status is not AlgoStatus.NEW:
            raise E.unknown_order()
        algo.status, algo.update_ms = AlgoStatus.CANCELED, self.clock_ms
        return algo

    def open_algo_orders(self, api_key: str, symbol: str | None = None) -> list[AlgoOrder]:
        return sorted((a for a in self.account(api_key).algo_orders.values()
                       if a.status is AlgoStatus.NEW and (symbol is None or a.symbol == symbol)), key=lambda a: a.algo_id)
