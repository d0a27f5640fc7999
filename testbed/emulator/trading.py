"""Signed trading and account endpoints: orders, cancel-replace, algo orders, balances, positions.

The handlers the route table (:mod:`.server`) maps the signed Binance routes to: each parses its
request (:mod:`.params`), calls the engine and renders Binance's JSON (:mod:`.payloads`).

cancelReplace details (Binance spot rest-api "Cancel an Existing Order and Send a New Order"): the
new order's filters are checked first (plain error such as -1013, nothing cancelled); then, with no
await in between, the cancel and the placement (which sees the funds the cancel released). Both
modes are served (``ALLOW_FAILURE``: cancel failed + new placed → -2021/409; both failed → -2022/400).
For fault injection it is endpoint kind ``order_create``; ``insufficient_balance`` there cancels and
then rejects the new leg (-2021 with newOrderResponse -2010), as Binance's engine would.
ccxt 4.5.90 pitfalls: give the trigger as ``stopPrice`` (``triggerPrice`` is used but also leaks
through as an extra parameter); name the target ``cancelOrigClientOrderId`` (``origClientOrderId``
becomes the NEW order's id, and ``cancelNewClientOrderId`` alone suppresses ``cancelOrderId``).

A ``delayed_fill`` fault with ``seconds`` > 0 fills the market order that many wall seconds later
(:meth:`~.engine.Engine.release_delayed` on a loop timer; :meth:`Trading.close` cancels pending
ones). Spot ``newOrderRespType``: as sent, else FULL for MARKET/LIMIT and ACK for the rest.
"""

from __future__ import annotations

import asyncio
import uuid

from . import payloads as P
from .engine import Engine
from .errors import BinanceError, E
from .faults import FaultKind
from .model import AlgoStatus, Order, OrderRequest, OrderType, Venue
from .params import Ctx, algo_ids, order_ids, order_request, param_int, param_req, symbol

__all__ = ["Trading"]


class Trading:
    """Order, algo-order and account handlers over ``engine``.

    Args:
        engine: the exchange state.
        usdm_commission: body for GET /fapi/v1/commissionRate.
    """

    def __init__(self, engine: Engine, usdm_commission: dict) -> None:
        self.engine = engine
        self.usdm_commission = usdm_commission
        self._timers: list[asyncio.TimerHandle] = []

    def close(self) -> None:
        """Cancel pending delayed-fill timers."""
        for h in self._timers:
            h.cancel()

    # ------------------------------------------------------------------------------ orders
    def new_order(self, c: Ctx) -> dict:
        req = order_request(self.engine, c)
        order = self.engine.new_order(c.api_key, c.venue, req)
        self._arm_delayed(c, req, order)
        if c.venue is Venue.SPOT:
            return P.spot_new_order(order, self._resp_type(c, req))
        return P.futures_order(order, self.engine, with_time=False)

    def _arm_delayed(self, c: Ctx, req: OrderRequest, order: Order) -> None:
        if req.delayed and c.fault is not None and c.fault.seconds > 0:
            loop = asyncio.get_running_loop()
            self._timers.append(loop.call_later(c.fault.seconds, self.engine.release_delayed, c.api_key, c.venue,
                                                order.order_id))

    @staticmethod
    def _resp_type(c: Ctx, req: OrderRequest) -> str:
        """Spot newOrderRespType: as sent, else FULL for MARKET/LIMIT and ACK for the rest."""
        return c.params.get("newOrderRespType") or ("FULL" if req.type in (OrderType.MARKET, OrderType.LIMIT) else "ACK")

    def cancel_replace(self, c: Ctx) -> dict:
        """POST /api/v3/order/cancelReplace (spot): 200 both legs, else -2022 (400) / -2021 (409)."""
        p = c.params
        sym = symbol(self.engine, c)
        mode = param_req(p, "cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise E.illegal_chars("cancelReplaceMode")
        oid, cid = param_int(p, "cancelOrderId"), p.get("cancelOrigClientOrderId") or None
        if oid is None and cid is None:
            raise BinanceError(-1102, "Param 'cancelOrigClientOrderId' or 'cancelOrderId' must be sent, "
                                      "but both were empty/null!")
        req = order_request(self.engine, c)
        forced = None
        if c.fault is not None and c.fault.kind is FaultKind.INSUFFICIENT_BALANCE:
            forced = E.insufficient_balance()
        r = self.engine.cancel_replace(c.api_key, sym, req, oid, cid, allow_failure=mode == "ALLOW_FAILURE",
                                       new_error=forced)
        if r.cancelled is not None:
            cancel_id = p.get("cancelNewClientOrderId") or uuid.uuid4().hex[:22]
            cancel_resp = P.spot_cancel(r.cancelled, cancel_id, self.engine.clock_ms)
        else:
            cancel_resp = r.cancel_error.body()
        new_resp = None
        if r.new_order is not None:
            self._arm_delayed(c, req, r.new_order)
            new_resp = P.spot_new_order(r.new_order, self._resp_type(c, req))
        elif r.new_error is not None:
            new_resp = r.new_error.body()
        body = {"cancelResult": "SUCCESS" if r.cancelled is not None else "FAILURE",
                "newOrderResult": ("SUCCESS" if r.new_order is not None else "FAILURE") if r.new_attempted
                else "NOT_ATTEMPTED",
                "cancelResponse": cancel_resp, "newOrderResponse": new_resp}
        if r.ok:
            return body
        if r.cancelled is None and r.new_order is None:
            raise E.cancel_replace_failed(body)
        raise E.cancel_replace_partial(body)

    def query_order(self, c: Ctx) -> dict:
        sym = symbol(self.engine, c)
        order = self.engine.find_order(c.api_key, c.venue, sym, *order_ids(c))
        return P.spot_order(order) if c.venue is Venue.SPOT else P.futures_order(order, self.engine)

    def cancel_order(self, c: Ctx) -> dict:
        sym = symbol(self.engine, c)
        order = self.engine.cancel_order(c.api_key, c.venue, sym, *order_ids(c))
        if c.venue is Venue.SPOT:
            cancel_id = c.params.get("newClientOrderId") or uuid.uuid4().hex[:22]
            return P.spot_cancel(order, cancel_id, self.engine.clock_ms)
        return P.futures_order(order, self.engine, with_time=False)

    def open_orders(self, c: Ctx) -> list:
        sym = c.params.get("symbol") or None
        orders = self.engine.open_orders(c.api_key, c.venue, sym)
        if c.venue is Venue.SPOT:
            return [P.spot_order(o) for o in orders]
        return [P.futures_order(o, self.engine) for o in orders]

    def my_trades(self, c: Ctx) -> list:
        sym = symbol(self.engine, c)
        fills = self.engine.my_trades(c.api_key, c.venue, sym)
        start, end = param_int(c.params, "startTime"), param_int(c.params, "endTime")
        from_id, oid = param_int(c.params, "fromId"), param_int(c.params, "orderId")
        fills = [f for f in fills if (start is None or f.time_ms >= start) and (end is None or f.time_ms <= end)
                 and (from_id is None or f.trade_id >= from_id) and (oid is None or f.order_id == oid)]
        fills = fills[-min(param_int(c.params, "limit") or 500, 1000):]
        return P.spot_trades(fills) if c.venue is Venue.SPOT else P.futures_trades(fills, self.engine)

    # ----------------------------------------------------------------------------- accounts
    def spot_account(self, c: Ctx) -> dict:
        return P.spot_account(self.engine.account(c.api_key), self.engine.clock_ms)

    def futures_account(self, c: Ctx, version: int) -> dict:
        return P.futures_account(self.engine.account(c.api_key), self.engine, version)

    def futures_balance(self, c: Ctx) -> list:
        return P.futures_balance(self.engine.account(c.api_key), self.engine)

    def position_risk(self, c: Ctx, version: int) -> list:
        sym = c.params.get("symbol") or None
        if sym:
            self.engine.spec(Venue.USDM, sym)
        return P.futures_position_risk(self.engine.account(c.api_key), self.engine, version, sym)

    def leverage_bracket(self, c: Ctx) -> list:
        sym = c.params.get("symbol")
        rows = P.leverage_brackets(sorted(self.engine.specs[Venue.USDM]))
        return [r for r in rows if r["symbol"] == sym][0] if sym else rows

    def set_leverage(self, c: Ctx) -> dict:
        sym = symbol(self.engine, c)
        lev = param_int(c.params, "leverage")
        if lev is None:
            raise E.mandatory("leverage")
        self.engine.set_leverage(c.api_key, sym, lev)
        return {"leverage": lev, "maxNotionalValue": "1000000", "symbol": sym}

    def commission_rate(self, c: Ctx) -> dict:
        return self.usdm_commission

    # --------------------------------------------------------------------------- algo orders
    def new_algo(self, c: Ctx) -> dict:
        algo = self.engine.new_algo_order(c.api_key, order_request(self.engine, c, algo=True))
        return P.algo_order(algo, self.engine)

    def query_algo(self, c: Ctx) -> dict:
        return P.algo_order(self.engine.find_algo(c.api_key, *algo_ids(c)), self.engine)

    def cancel_algo(self, c: Ctx) -> dict:
        return P.algo_cancel(self.engine.cancel_algo(c.api_key, *algo_ids(c)))

    def open_algos(self, c: Ctx) -> list:
        sym = c.params.get("symbol") or None
        return [P.algo_order(a, self.engine) for a in self.engine.open_algo_orders(c.api_key, sym)
                if a.status is AlgoStatus.NEW]
