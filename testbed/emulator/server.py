"""aiohttp shell around the engine: Binance REST routes, signing checks, faults, control routes.

Which ccxt 4.5.90 call hits which route (``binance`` spot / ``binanceusdm``):

======================================  ===============================================================
ccxt call                               endpoint
======================================  ===============================================================
load_markets (spot / usdm)              GET /api/v3/exchangeInfo / GET /fapi/v1/exchangeInfo
fetch_time                              GET /api/v3/time / GET /fapi/v1/time
fetch_ticker                            GET /api/v3/ticker/24hr / GET /fapi/v1/ticker/24hr
fetch_ohlcv                             GET /api/v3/klines / GET /fapi/v1/klines
create_order market/limit               POST /api/v3/order / POST /fapi/v1/order
create_order('limit', ..., {'timeIn-    same, timeInForce=IOC|FOK: never rests; ccxt status 'expired'
  Force': 'IOC'|'FOK',                    with filled < amount when not (fully) filled (engine rules)
  'newClientOrderId': cid})
create_order spot 'STOP_LOSS_LIMIT'     POST /api/v3/order (type=STOP_LOSS_LIMIT, stopPrice)
  (or 'limit' + params triggerPrice)
create_order usdm with any of           POST /fapi/v1/algoOrder (algoType=CONDITIONAL, type=STOP_MARKET,
  triggerPrice/stopPrice/stopLossPrice    triggerPrice, clientAlgoId, reduceOnly/closePosition)
  (e.g. 'market' + {'stopPrice': p,
  'reduceOnly': True} or 'STOP_MARKET')
fetch_order(id, sym)                    GET /api/v3/order?orderId / GET /fapi/v1/order?orderId
fetch_order(None|id, sym,               GET .../order?origClientOrderId=<cid>
  {'clientOrderId': cid})
fetch_order(id, sym, {'trigger': True}) GET /fapi/v1/algoOrder?algoId (clientAlgoId with clientOrderId)
fetch_order(None, sym, {'origClient-    GET /fapi/v1/algoOrder?clientAlgoId=<cid>; once triggered: algoStatus
  OrderId': cid, 'trigger': True})        FINISHED, info['actualOrderId'] (str) → fetch_order(that, sym) for
                                          the fill (GET /fapi/v1/order?orderId)
edit_order(id|None, 'BTC/USDT', type,   POST /api/v3/order/cancelReplace, cancelReplaceMode=STOP_ON_FAILURE,
  side, amount, price, params)            cancelOrderId=id unless params has cancelOrigClientOrderId (then
  (spot; e.g. params                      id may be None); newClientOrderId from params. 200 → ccxt returns
  {'cancelOrigClientOrderId': old,        the parsed newOrderResponse (the NEW order). -2022 HTTP 400 (cancel
  'newClientOrderId': new,                failed, new NOT_ATTEMPTED) and -2021 HTTP 409 (cancel done, new
  'stopPrice': p})                        failed) both → ccxt ``BadResponse`` (an ``OperationFailed``, not an
                                          ``ExchangeError``); its text is "binance " + the JSON body (data.*)
cancel_order  (same id rules)           DELETE /api/v3/order / DELETE /fapi/v1/order
cancel_order(id, sym, {'trigger':True}) DELETE /fapi/v1/algoOrder
fetch_open_orders(sym)                  GET /api/v3/openOrders / GET /fapi/v1/openOrders
fetch_open_orders(sym,{'trigger':True}) GET /fapi/v1/openAlgoOrders
fetch_balance                           GET /api/v3/account / GET /fapi/v3/account (v2 with useV2)
fetch_positions                         GET /fapi/v1/leverageBracket (once) + GET /fapi/v3/positionRisk
fetch_my_trades(sym)                    GET /api/v3/myTrades / GET /fapi/v1/userTrades
set_leverage                            POST /fapi/v1/leverage
======================================  ===============================================================

cancelReplace details (Binance spot rest-api "Cancel an Existing Order and Send a New Order"): the
new order's filters are checked first (plain error such as -1013, nothing cancelled); then, with no
await in between, the cancel and the placement (which sees the funds the cancel released). Both
modes are served (``ALLOW_FAILURE``: cancel failed + new placed → -2021/409; both failed → -2022/400).
For fault injection it is endpoint kind ``order_create``; ``insufficient_balance`` there cancels and
then rejects the new leg (-2021 with newOrderResponse -2010), as Binance's engine would.
ccxt 4.5.90 pitfalls: give the trigger as ``stopPrice`` (``triggerPrice`` is used but also leaks
through as an extra parameter); name the target ``cancelOrigClientOrderId`` (``origClientOrderId``
becomes the NEW order's id, and ``cancelNewClientOrderId`` alone suppresses ``cancelOrderId``).

Also served: ``/api/v3/ping``, ``/api/v3/ticker/price``, ``/fapi/v1/ping``,
``/fapi/v1/ticker/price``, ``/fapi/v2/account``, ``/fapi/v2|v3/balance``, ``/fapi/v2/positionRisk``,
``/fapi/v1/commissionRate``. Unknown paths answer 404 with an empty body.

Control routes (not Binance's), signed exactly like a Binance USER_DATA request by a known key:
``POST /_emulator/advance`` (``ts_ms``) → ``{"clock_ms", "changed"}``; ``GET /_emulator/state`` →
the whole state; ``GET|POST|DELETE /_emulator/faults`` (POST ``faults`` = JSON list of
:class:`~testbed.emulator.faults.Fault` dicts) → the fault plan and counters.

Timestamps: ``serverTime`` and the signature window use the wall clock; every order, trade and
kline time is on the replay clock.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from aiohttp import web

from . import payloads as P
from .auth import params_of, verify
from .engine import AlgoStatus, Bar, Engine, Order, OrderRequest, OrderType, Side, Venue
from .errors import BinanceError, E
from .faults import Endpoint, Fault, FaultKind, FaultPlan

__all__ = ["EmulatorServer", "snapshot"]

_TRANSPORT = frozenset({FaultKind.HTTP_5XX, FaultKind.RATE_LIMIT_429, FaultKind.RATE_LIMIT_1003})
_SEMANTIC = frozenset(FaultKind) - _TRANSPORT
_INTERVALS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
              "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000,
              "1d": 86_400_000}


@dataclass(slots=True)
class Ctx:
    api_key: str | None
    params: dict[str, str]
    venue: Venue | None
    fault: Fault | None


Handler = Callable[[Ctx], object]


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    endpoint: Endpoint
    venue: Venue | None
    signed: bool
    control: bool = False
    own_faults: frozenset[FaultKind] = frozenset()  # semantic faults the handler applies itself


def _dec(p: dict[str, str], name: str, required: bool = False) -> Decimal | None:
    v = p.get(name)
    if v in (None, ""):
        if required:
            raise E.mandatory(name)
        return None
    try:
        d = Decimal(v)
    except InvalidOperation:
        raise E.illegal_chars(name) from None
    if not d.is_finite():
        raise E.illegal_chars(name)
    return d


def _int(p: dict[str, str], name: str) -> int | None:
    v = p.get(name)
    if v in (None, ""):
        return None
    try:
        return int(v)
    except ValueError:
        raise E.illegal_chars(name) from None


def _req(p: dict[str, str], name: str) -> str:
    v = p.get(name)
    if not v:
        raise E.mandatory(name)
    return v


def _bool(p: dict[str, str], name: str) -> bool:
    return p.get(name, "false").lower() == "true"


def snapshot(eng: Engine) -> dict:
    """The whole engine state as JSON (control route ``GET /_emulator/state``)."""
    accounts = {}
    for key, a in eng.accounts.items():
        accounts[key] = {
            "spot": {"balances": {k: {"free": str(v[0]), "locked": str(v[1])} for k, v in sorted(a.balances.items())},
                     "orders": [P.spot_order(o) for o in a.orders[Venue.SPOT].values()],
                     "trades": P.spot_trades(a.trades[Venue.SPOT])},
            "usdm": {"wallet": str(a.wallet), "available": str(eng.available_usdm(a)),
                     "positions": {s: {"positionAmt": str(p.amt), "entryPrice": str(p.entry),
                                       "unRealizedProfit": str(eng.unrealized(a, s)), "leverage": a.leverage.get(s, 1)}
                                   for s, p in a.positions.items()},
                     "orders": [P.futures_order(o, eng) for o in a.orders[Venue.USDM].values()],
                     "algo_orders": [P.algo_order(x, eng) for x in a.algo_orders.values()],
                     "trades": P.futures_trades(a.trades[Venue.USDM], eng)},
        }
    nxt = eng.next_open_index()
    return {"clock_ms": eng.clock_ms, "next_bar_ms": eng.bars[nxt].ts_ms if nxt is not None else None,
            "processed_bars": eng.next_bar, "mark_price": str(eng.mark_price()), "accounts": accounts}


class EmulatorServer:
    """Binance REST over an :class:`Engine` and a :class:`FaultPlan`.

    Args:
        engine: the exchange state.
        faults: the fault plan consulted per request.
        spot_info / usdm_info: exchangeInfo bodies to serve (filtered to the engine's symbols).
        usdm_commission: body for GET /fapi/v1/commissionRate.
        wall_ms: wall clock in Unix ms (signature window, serverTime).
    """

    def __init__(self, engine: Engine, faults: FaultPlan, spot_info: dict, usdm_info: dict,
                 usdm_commission: dict, wall_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.engine, self.faults, self.wall_ms = engine, faults, wall_ms
        syms = set(engine.symbols)
        self.spot_info = spot_info | {"symbols": [s for s in spot_info["symbols"] if s["symbol"] in syms]}
        self.usdm_info = usdm_info | {"symbols": [s for s in usdm_info["symbols"] if s["symbol"] in syms]}
        self.usdm_commission = usdm_commission
        self._held: set[asyncio.Task] = set()
        self._timers: list[asyncio.TimerHandle] = []
        S, U, ANY = Venue.SPOT, Venue.USDM, None
        md, oc, oq, ox, oo, ac = (Endpoint.MARKET_DATA, Endpoint.ORDER_CREATE, Endpoint.ORDER_QUERY,
                                  Endpoint.ORDER_CANCEL, Endpoint.OPEN_ORDERS, Endpoint.ACCOUNT)
        self.routes: dict[tuple[str, str], Route] = {}
        for prefix, v in (("/api/v3", S), ("/fapi/v1", U)):
            self.routes |= {
                ("GET", f"{prefix}/ping"): Route(lambda c: {}, md, v, False),
                ("GET", f"{prefix}/time"): Route(lambda c: {"serverTime": self.wall_ms()}, md, v, False),
                ("GET", f"{prefix}/exchangeInfo"): Route(self._exchange_info, md, v, False),
                ("GET", f"{prefix}/ticker/24hr"): Route(self._ticker_24hr, md, v, False),
                ("GET", f"{prefix}/ticker/price"): Route(self._ticker_price, md, v, False),
                ("GET", f"{prefix}/klines"): Route(self._klines, md, v, False),
                ("POST", f"{prefix}/order"): Route(self._new_order, oc, v, True),
                ("GET", f"{prefix}/order"): Route(self._query_order, oq, v, True),
                ("DELETE", f"{prefix}/order"): Route(self._cancel_order, ox, v, True),
                ("GET", f"{prefix}/openOrders"): Route(self._open_orders, oo, v, True),
            }
        self.routes |= {
            ("POST", "/api/v3/order/cancelReplace"): Route(self._cancel_replace, oc, S, True,
                                                           own_faults=frozenset({FaultKind.INSUFFICIENT_BALANCE})),
            ("GET", "/api/v3/account"): Route(self._spot_account, ac, S, True),
            ("GET", "/api/v3/myTrades"): Route(self._my_trades, ac, S, True),
            ("GET", "/fapi/v1/userTrades"): Route(self._my_trades, ac, U, True),
            ("GET", "/fapi/v2/account"): Route(lambda c: self._futures_account(c, 2), ac, U, True),
            ("GET", "/fapi/v3/account"): Route(lambda c: self._futures_account(c, 3), ac, U, True),
            ("GET", "/fapi/v2/balance"): Route(self._futures_balance, ac, U, True),
            ("GET", "/fapi/v3/balance"): Route(self._futures_balance, ac, U, True),
            ("GET", "/fapi/v2/positionRisk"): Route(lambda c: self._position_risk(c, 2), ac, U, True),
            ("GET", "/fapi/v3/positionRisk"): Route(lambda c: self._position_risk(c, 3), ac, U, True),
            ("GET", "/fapi/v1/leverageBracket"): Route(self._leverage_bracket, ac, U, True),
            ("POST", "/fapi/v1/leverage"): Route(self._set_leverage, ac, U, True),
            ("GET", "/fapi/v1/commissionRate"): Route(lambda c: self.usdm_commission, ac, U, True),
            ("POST", "/fapi/v1/algoOrder"): Route(self._new_algo, oc, U, True),
            ("GET", "/fapi/v1/algoOrder"): Route(self._query_algo, oq, U, True),
            ("DELETE", "/fapi/v1/algoOrder"): Route(self._cancel_algo, ox, U, True),
            ("GET", "/fapi/v1/openAlgoOrders"): Route(self._open_algos, oo, U, True),
            ("POST", "/_emulator/advance"): Route(self._ctl_advance, Endpoint.ANY, ANY, True, True),
            ("GET", "/_emulator/state"): Route(lambda c: snapshot(self.engine), Endpoint.ANY, ANY, True, True),
            ("GET", "/_emulator/faults"): Route(lambda c: self.faults.to_json(), Endpoint.ANY, ANY, True, True),
            ("POST", "/_emulator/faults"): Route(self._ctl_faults, Endpoint.ANY, ANY, True, True),
            ("DELETE", "/_emulator/faults"): Route(self._ctl_clear_faults, Endpoint.ANY, ANY, True, True),
        }

    # ---------------------------------------------------------------------------- plumbing
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    def close(self) -> None:
        """Cancel held (timeout-fault) answers and pending delayed-fill timers."""
        for t in list(self._held):
            t.cancel()
        for h in self._timers:
            h.cancel()

    def _secret_of(self, key: str) -> str | None:
        acct = self.engine.accounts.get(key)
        return acct.secret if acct else None

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        route = self.routes.get((request.method, request.path))
        if route is None:
            return web.Response(status=404, text="")
        market = route.venue.value if route.venue else None
        if not route.control:
            fault = self.faults.take(route.endpoint, market, request.path, kinds=_TRANSPORT)
            if fault is not None:
                return _transport_answer(fault)
        raw_query, raw_body = request.rel_url.raw_query_string, await request.text()
        sem: Fault | None = None
        try:
            if route.signed:
                key, params = verify(raw_query, raw_body, request.headers.get("X-MBX-APIKEY"), self._secret_of,
                                     self.wall_ms())
            else:
                key, params = None, params_of(raw_query, raw_body)
            if not route.control:
                sem = self.faults.take(route.endpoint, market, request.path, kinds=_SEMANTIC)
                if sem is None or sem.kind not in route.own_faults:
                    _raise_semantic(sem, route.venue)
            result = route.handler(Ctx(key, params, route.venue, sem))
            if isinstance(result, Awaitable):
                result = await result
        except BinanceError as e:
            return _json(e.body(), e.status)
        if sem is not None and sem.kind is FaultKind.TIMEOUT_AFTER_ACCEPT:
            task = asyncio.current_task()
            self._held.add(task)
            try:
                await asyncio.sleep(sem.seconds)
            finally:
                self._held.discard(task)
        if sem is not None and sem.kind is FaultKind.DROP_RESPONSE:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # no answer at all; aiohttp drops the handler quietly
        return _json(result)

    # ------------------------------------------------------------------------- market data
    def _exchange_info(self, c: Ctx) -> dict:
        info = self.spot_info if c.venue is Venue.SPOT else self.usdm_info
        return info | {"serverTime": self.wall_ms()}

    def _symbol(self, c: Ctx) -> str:
        sym = _req(c.params, "symbol")
        self.engine.spec(c.venue, sym)
        return sym

    def _ticker_24hr(self, c: Ctx) -> dict:
        sym = self._symbol(c)
        e = self.engine
        return P.ticker_24hr(sym, e.closed_bars(), e.mark_price(), e.clock_ms, c.venue is Venue.USDM)

    def _ticker_price(self, c: Ctx) -> dict:
        return P.ticker_price(self._symbol(c), self.engine.mark_price(), self.engine.clock_ms, c.venue is Venue.USDM)

    def _klines(self, c: Ctx) -> list:
        self._symbol(c)
        interval = _INTERVALS.get(_req(c.params, "interval"))
        bars = self.engine.closed_bars()
        native = self.engine._ts[1] - self.engine._ts[0] if len(self.engine._ts) > 1 else 60_000
        if interval is None or interval % native:
            raise E.invalid_interval()
        if interval != native:
            bars = _aggregate(bars, interval, self.engine.clock_ms)
        start, end = _int(c.params, "startTime"), _int(c.params, "endTime")
        limit = min(_int(c.params, "limit") or 500, 1000 if c.venue is Venue.SPOT else 1500)
        bars = [b for b in bars if (start is None or b.ts_ms >= start) and (end is None or b.ts_ms <= end)]
        bars = bars[:limit] if start is not None else bars[-limit:]
        return [P.kline(b, interval) for b in bars]

    # ------------------------------------------------------------------------------ orders
    def _order_request(self, c: Ctx, algo: bool = False) -> OrderRequest:
        p = c.params
        sym = self._symbol(c)
        try:
            side = Side(_req(p, "side"))
        except ValueError:
            raise E.invalid_side() from None
        try:
            otype = OrderType(_req(p, "type"))
        except ValueError:
            raise E.invalid_order_type() from None
        if algo and p.get("algoType") != "CONDITIONAL":
            raise E.mandatory("algoType")
        if c.venue is Venue.USDM and p.get("positionSide", "BOTH") != "BOTH":
            raise BinanceError(-4061, "Order's position side does not match user's setting.")
        tif = p.get("timeInForce")
        if otype in (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT) and not tif:
            raise E.mandatory("timeInForce")
        if tif and tif not in ("GTC", "IOC", "FOK", "GTX", "GTD"):
            raise E.invalid_tif()
        price = _dec(p, "price", required=otype in (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT))
        stop = _dec(p, "triggerPrice" if algo else "stopPrice", required=otype is not OrderType.MARKET and otype is not OrderType.LIMIT)
        if otype is OrderType.MARKET and price is not None:
            raise E.not_required("price")
        qty = _dec(p, "quantity")
        quote_qty = _dec(p, "quoteOrderQty") if c.venue is Venue.SPOT else None
        if qty is None and quote_qty is None and not _bool(p, "closePosition"):
            raise E.mandatory("quantity")
        fault = c.fault
        return OrderRequest(
            symbol=sym, side=side, type=otype, quantity=qty, price=price, stop_price=stop, time_in_force=tif,
            client_order_id=p.get("clientAlgoId" if algo else "newClientOrderId") or None, quote_order_qty=quote_qty,
            reduce_only=_bool(p, "reduceOnly"), close_position=_bool(p, "closePosition"),
            fill_fraction=fault.fraction if fault and fault.kind is FaultKind.PARTIAL_FILL else None,
            delayed=bool(fault and fault.kind is FaultKind.DELAYED_FILL))

    def _new_order(self, c: Ctx) -> dict:
        req = self._order_request(c)
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

    def _cancel_replace(self, c: Ctx) -> dict:
        """POST /api/v3/order/cancelReplace (spot): 200 both legs, else -2022 (400) / -2021 (409)."""
        p = c.params
        sym = self._symbol(c)
        mode = _req(p, "cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise E.illegal_chars("cancelReplaceMode")
        oid, cid = _int(p, "cancelOrderId"), p.get("cancelOrigClientOrderId") or None
        if oid is None and cid is None:
            raise BinanceError(-1102, "Param 'cancelOrigClientOrderId' or 'cancelOrderId' must be sent, "
                                      "but both were empty/null!")
        req = self._order_request(c)
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

    def _ids(self, c: Ctx) -> tuple[int | None, str | None]:
        oid, cid = _int(c.params, "orderId"), c.params.get("origClientOrderId") or None
        if oid is None and cid is None:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        return oid, cid

    def _query_order(self, c: Ctx) -> dict:
        sym = self._symbol(c)
        order = self.engine.find_order(c.api_key, c.venue, sym, *self._ids(c))
        return P.spot_order(order) if c.venue is Venue.SPOT else P.futures_order(order, self.engine)

    def _cancel_order(self, c: Ctx) -> dict:
        sym = self._symbol(c)
        order = self.engine.cancel_order(c.api_key, c.venue, sym, *self._ids(c))
        if c.venue is Venue.SPOT:
            cancel_id = c.params.get("newClientOrderId") or uuid.uuid4().hex[:22]
            return P.spot_cancel(order, cancel_id, self.engine.clock_ms)
        return P.futures_order(order, self.engine, with_time=False)

    def _open_orders(self, c: Ctx) -> list:
        sym = c.params.get("symbol") or None
        orders = self.engine.open_orders(c.api_key, c.venue, sym)
        if c.venue is Venue.SPOT:
            return [P.spot_order(o) for o in orders]
        return [P.futures_order(o, self.engine) for o in orders]

    def _my_trades(self, c: Ctx) -> list:
        sym = self._symbol(c)
        fills = self.engine.my_trades(c.api_key, c.venue, sym)
        start, end, from_id = _int(c.params, "startTime"), _int(c.params, "endTime"), _int(c.params, "fromId")
        oid = _int(c.params, "orderId")
        fills = [f for f in fills if (start is None or f.time_ms >= start) and (end is None or f.time_ms <= end)
                 and (from_id is None or f.trade_id >= from_id) and (oid is None or f.order_id == oid)]
        fills = fills[-min(_int(c.params, "limit") or 500, 1000):]
        return P.spot_trades(fills) if c.venue is Venue.SPOT else P.futures_trades(fills, self.engine)

    # ----------------------------------------------------------------------------- accounts
    def _spot_account(self, c: Ctx) -> dict:
        return P.spot_account(self.engine.account(c.api_key), self.engine.clock_ms)

    def _futures_account(self, c: Ctx, version: int) -> dict:
        return P.futures_account(self.engine.account(c.api_key), self.engine, version)

    def _futures_balance(self, c: Ctx) -> list:
        return P.futures_balance(self.engine.account(c.api_key), self.engine)

    def _position_risk(self, c: Ctx, version: int) -> list:
        sym = c.params.get("symbol") or None
        if sym:
            self.engine.spec(Venue.USDM, sym)
        return P.futures_position_risk(self.engine.account(c.api_key), self.engine, version, sym)

    def _leverage_bracket(self, c: Ctx) -> list:
        sym = c.params.get("symbol")
        rows = P.leverage_brackets(sorted(self.engine.specs[Venue.USDM]))
        return [r for r in rows if r["symbol"] == sym][0] if sym else rows

    def _set_leverage(self, c: Ctx) -> dict:
        sym = self._symbol(c)
        lev = _int(c.params, "leverage")
        if lev is None:
            raise E.mandatory("leverage")
        self.engine.set_leverage(c.api_key, sym, lev)
        return {"leverage": lev, "maxNotionalValue": "1000000", "symbol": sym}

    # --------------------------------------------------------------------------- algo orders
    def _new_algo(self, c: Ctx) -> dict:
        algo = self.engine.new_algo_order(c.api_key, self._order_request(c, algo=True))
        return P.algo_order(algo, self.engine)

    def _algo_ids(self, c: Ctx) -> tuple[int | None, str | None]:
        aid, cid = _int(c.params, "algoId"), c.params.get("clientAlgoId") or None
        if aid is None and cid is None:
            raise BinanceError(-1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!")
        return aid, cid

    def _query_algo(self, c: Ctx) -> dict:
        return P.algo_order(self.engine.find_algo(c.api_key, *self._algo_ids(c)), self.engine)

    def _cancel_algo(self, c: Ctx) -> dict:
        return P.algo_cancel(self.engine.cancel_algo(c.api_key, *self._algo_ids(c)))

    def _open_algos(self, c: Ctx) -> list:
        sym = c.params.get("symbol") or None
        return [P.algo_order(a, self.engine) for a in self.engine.open_algo_orders(c.api_key, sym)
                if a.status is AlgoStatus.NEW]

    # ------------------------------------------------------------------------------ control
    def _ctl_advance(self, c: Ctx) -> dict:
        ts = _int(c.params, "ts_ms")
        if ts is None:
            raise E.mandatory("ts_ms")
        try:
            changed = self.engine.advance_to(ts)
        except ValueError as exc:
            raise BinanceError(-1104, str(exc)) from None
        return {"clock_ms": self.engine.clock_ms, "changed": changed}

    def _ctl_faults(self, c: Ctx) -> dict:
        try:
            faults = [Fault.from_json(d) for d in json.loads(_req(c.params, "faults"))]
        except (ValueError, TypeError) as exc:
            raise BinanceError(-1100, f"bad faults: {exc}") from None
        self.faults.install(*faults)
        return self.faults.to_json()

    def _ctl_clear_faults(self, c: Ctx) -> dict:
        self.faults.clear()
        return self.faults.to_json()


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body, separators=(",", ":")), content_type="application/json")


def _transport_answer(f: Fault) -> web.Response:
    if f.kind is FaultKind.HTTP_5XX:
        status = f.status or 503
        if status == 502:
            return web.Response(status=502, content_type="text/html",
                                text="<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
                                     "</h1></center></body></html>")
        if status == 500:
            return _json({"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}, 500)
        return _json({"code": -1008, "msg": "Service Unavailable."}, 503)
    status = 429 if f.kind is FaultKind.RATE_LIMIT_429 else (f.status or 418)
    err = E.rate_limited(status)
    return _json(err.body(), status)


def _raise_semantic(f: Fault | None, venue: Venue | None) -> None:
    if f is None:
        return
    if f.kind is FaultKind.TIMESTAMP_1021:
        raise E.timestamp_outside()
    if f.kind is FaultKind.UNKNOWN_ORDER_2011:
        raise E.unknown_order()
    if f.kind is FaultKind.UNKNOWN_ORDER_2013:
        raise E.no_such_order()
    if f.kind is FaultKind.INSUFFICIENT_BALANCE:
        raise E.margin_insufficient() if venue is Venue.USDM else E.insufficient_balance()


def _aggregate(bars: list[Bar], interval: int, clock_ms: int) -> list[Bar]:
    """Native bars merged into ``interval`` bars; a group still open at the clock is left out."""
    out: list[Bar] = []
    group: list[Bar] = []
    for b in bars:
        if group and b.ts_ms // interval != group[0].ts_ms // interval:
            out.append(_merge(group, interval))
            group = []
        group.append(b)
    if group and (group[0].ts_ms // interval + 1) * interval <= clock_ms:
        out.append(_merge(group, interval))
    return out


def _merge(group: list[Bar], interval: int) -> Bar:
    return Bar(group[0].ts_ms // interval * interval, group[0].open, max(b.high for b in group),
               min(b.low for b in group), group[-1].close, sum((b.volume for b in group), Decimal(0)))
