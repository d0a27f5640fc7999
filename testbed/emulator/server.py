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

cancelReplace (details, ccxt pitfalls): :mod:`.trading`.

Also served: ``/api/v3/ping``, ``/api/v3/ticker/price``, ``/fapi/v1/ping``,
``/fapi/v1/ticker/price``, ``/fapi/v2/account``, ``/fapi/v2|v3/balance``, ``/fapi/v2/positionRisk``,
``/fapi/v1/commissionRate``. Unknown paths answer 404 with an empty body.

Control routes (not Binance's, ``/_emulator/*``: advance the clock, state, faults): :mod:`.control`.
Websocket kline streams (``watch_ohlcv``; ``stream.binance.com``, ``fstream.binance.com``): :mod:`.stream`.

Jobs: this module holds the route table and the dispatch (signature check, faults, error
answers); requests are parsed by :mod:`.params`; the handlers are :mod:`.marketdata`,
:mod:`.trading` and :mod:`.control`. Faults: a transport fault (``http_5xx``, ``rate_limit_*``)
answers before the request is read; a semantic one is drawn after the signature check and
raised as its Binance error unless the route applies it itself (``own_faults``);
``timeout_after_accept`` holds the answer ``seconds`` after the handler ran and
``drop_response`` aborts the connection with no answer.

Timestamps: ``serverTime`` and the signature window use the wall clock; every order, trade and
kline time is on the replay clock.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from .auth import params_of, verify
from .control import Control
from .engine import Engine
from .errors import BinanceError, E
from .faults import Endpoint, Fault, FaultKind, FaultPlan
from .marketdata import MarketData
from .model import Venue
from .params import Ctx
from .stream import STREAM_PATHS, KlineStream
from .trading import Trading

__all__ = ["EmulatorServer"]

_TRANSPORT = frozenset({FaultKind.HTTP_5XX, FaultKind.RATE_LIMIT_429, FaultKind.RATE_LIMIT_1003})
_SEMANTIC = frozenset(FaultKind) - _TRANSPORT


Handler = Callable[[Ctx], object]


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    endpoint: Endpoint
    venue: Venue | None
    signed: bool
    control: bool = False
    own_faults: frozenset[FaultKind] = frozenset()  # semantic faults the handler applies itself


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
        self.market = MarketData(engine, self.spot_info, self.usdm_info, wall_ms)
        self.trading = Trading(engine, usdm_commission)
        self.control = Control(engine, faults)
        self._held: set[asyncio.Task] = set()
        m, t, x = self.market, self.trading, self.control
        S, U, ANY = Venue.SPOT, Venue.USDM, None
        md, oc, oq, ox, oo, ac = (Endpoint.MARKET_DATA, Endpoint.ORDER_CREATE, Endpoint.ORDER_QUERY,
                                  Endpoint.ORDER_CANCEL, Endpoint.OPEN_ORDERS, Endpoint.ACCOUNT)
        self.routes: dict[tuple[str, str], Route] = {}
        for prefix, v in (("/api/v3", S), ("/fapi/v1", U)):
            self.routes |= {
                ("GET", f"{prefix}/ping"): Route(lambda c: {}, md, v, False),
                ("GET", f"{prefix}/time"): Route(m.server_time, md, v, False),
                ("GET", f"{prefix}/exchangeInfo"): Route(m.exchange_info, md, v, False),
                ("GET", f"{prefix}/ticker/24hr"): Route(m.ticker_24hr, md, v, False),
                ("GET", f"{prefix}/ticker/price"): Route(m.ticker_price, md, v, False),
                ("GET", f"{prefix}/klines"): Route(m.klines, md, v, False),
                ("POST", f"{prefix}/order"): Route(t.new_order, oc, v, True),
                ("GET", f"{prefix}/order"): Route(t.query_order, oq, v, True),
                ("DELETE", f"{prefix}/order"): Route(t.cancel_order, ox, v, True),
                ("GET", f"{prefix}/openOrders"): Route(t.open_orders, oo, v, True),
            }
        self.routes |= {
            ("POST", "/api/v3/order/cancelReplace"): Route(t.cancel_replace, oc, S, True,
                                                           own_faults=frozenset({FaultKind.INSUFFICIENT_BALANCE})),
            ("GET", "/api/v3/account"): Route(t.spot_account, ac, S, True),
            ("GET", "/api/v3/myTrades"): Route(t.my_trades, ac, S, True),
            ("GET", "/fapi/v1/userTrades"): Route(t.my_trades, ac, U, True),
            ("GET", "/fapi/v2/account"): Route(lambda c: t.futures_account(c, 2), ac, U, True),
            ("GET", "/fapi/v3/account"): Route(lambda c: t.futures_account(c, 3), ac, U, True),
            ("GET", "/fapi/v2/balance"): Route(t.futures_balance, ac, U, True),
            ("GET", "/fapi/v3/balance"): Route(t.futures_balance, ac, U, True),
            ("GET", "/fapi/v2/positionRisk"): Route(lambda c: t.position_risk(c, 2), ac, U, True),
            ("GET", "/fapi/v3/positionRisk"): Route(lambda c: t.position_risk(c, 3), ac, U, True),
            ("GET", "/fapi/v1/leverageBracket"): Route(t.leverage_bracket, ac, U, True),
            ("POST", "/fapi/v1/leverage"): Route(t.set_leverage, ac, U, True),
            ("GET", "/fapi/v1/commissionRate"): Route(t.commission_rate, ac, U, True),
            ("POST", "/fapi/v1/algoOrder"): Route(t.new_algo, oc, U, True),
            ("GET", "/fapi/v1/algoOrder"): Route(t.query_algo, oq, U, True),
            ("DELETE", "/fapi/v1/algoOrder"): Route(t.cancel_algo, ox, U, True),
            ("GET", "/fapi/v1/openAlgoOrders"): Route(t.open_algos, oo, U, True),
            ("POST", "/_emulator/advance"): Route(x.advance, Endpoint.ANY, ANY, True, True),
            ("GET", "/_emulator/state"): Route(x.state, Endpoint.ANY, ANY, True, True),
            ("GET", "/_emulator/faults"): Route(x.get_faults, Endpoint.ANY, ANY, True, True),
            ("POST", "/_emulator/faults"): Route(x.install_faults, Endpoint.ANY, ANY, True, True),
            ("DELETE", "/_emulator/faults"): Route(x.clear_faults, Endpoint.ANY, ANY, True, True),
        }

    # ---------------------------------------------------------------------------- plumbing
    def app(self, stream: KlineStream | None = None) -> web.Application:
        """The aiohttp application: the kline streams' websocket paths when ``stream`` is given
        (:mod:`.stream`; REST klines and ``serverTime`` then follow its clock), then every REST path."""
        app = web.Application()
        if stream is not None:
            self.market.stream = stream
            for path in STREAM_PATHS:
                app.router.add_get(path, stream.handle)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    def close(self) -> None:
        """Cancel held (timeout-fault) answers and pending delayed-fill timers."""
        for t in list(self._held):
            t.cancel()
        self.trading.close()

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

