"""Request parsing: Binance query/body parameters into typed values and engine calls' arguments.

A request reaches a handler as a :class:`Ctx` (API key, parameters already authenticated by
:mod:`.auth`, venue, the semantic fault drawn for it); the helpers here read its parameters the way
Binance does and raise Binance's errors:

* a missing or empty mandatory parameter: -1102 (``E.mandatory``);
* a value that does not parse (a non-integer, a non-finite decimal): -1100 (``E.illegal_chars``);
* booleans are the strings ``"true"`` / ``"false"`` (case-insensitive; absent = false);
* an unknown ``side`` -1117, ``type`` -1116, ``timeInForce`` -1115; a ``price`` on a MARKET order
  -1106; a ``positionSide`` other than ``BOTH`` (one-way mode) -4061.

:func:`order_request` turns an order's parameters (and a ``partial_fill`` / ``delayed_fill`` fault)
into an :class:`~testbed.emulator.model.OrderRequest`; the engine checks filters, balances and
prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .engine import Engine
from .errors import BinanceError, E
from .faults import Fault, FaultKind
from .model import OrderRequest, OrderType, Side, Venue

__all__ = [
    "Ctx", "algo_ids", "order_ids", "order_request", "param_bool", "param_dec", "param_int", "param_req",
    "symbol",
]


@dataclass(slots=True)
class Ctx:
    """One request as a handler sees it: the caller's API key (None if unsigned), its parameters
    (query and form body merged), the route's venue (None for control routes) and the semantic
    fault drawn for it (None: none)."""

    api_key: str | None
    params: dict[str, str]
    venue: Venue | None
    fault: Fault | None


def param_dec(p: dict[str, str], name: str, required: bool = False) -> Decimal | None:
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


def param_int(p: dict[str, str], name: str) -> int | None:
    v = p.get(name)
    if v in (None, ""):
        return None
    try:
        return int(v)
    except ValueError:
        raise E.illegal_chars(name) from None


def param_req(p: dict[str, str], name: str) -> str:
    v = p.get(name)
    if not v:
        raise E.mandatory(name)
    return v


def param_bool(p: dict[str, str], name: str) -> bool:
    return p.get(name, "false").lower() == "true"


def symbol(engine: Engine, c: Ctx) -> str:
    """The mandatory ``symbol``, listed on the request's venue (-1121 otherwise)."""
    sym = param_req(c.params, "symbol")
    engine.spec(c.venue, sym)
    return sym


def order_ids(c: Ctx) -> tuple[int | None, str | None]:
    """``(orderId, origClientOrderId)``; at least one must be sent (-1102)."""
    oid, cid = param_int(c.params, "orderId"), c.params.get("origClientOrderId") or None
    if oid is None and cid is None:
        raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
    return oid, cid


def algo_ids(c: Ctx) -> tuple[int | None, str | None]:
    """``(algoId, clientAlgoId)``; at least one must be sent (-1102)."""
    aid, cid = param_int(c.params, "algoId"), c.params.get("clientAlgoId") or None
    if aid is None and cid is None:
        raise BinanceError(-1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!")
    return aid, cid


def order_request(engine: Engine, c: Ctx, algo: bool = False) -> OrderRequest:
    """The new order a request asks for (``algo``: a ``/fapi/v1/algoOrder`` conditional order)."""
    p = c.params
    sym = symbol(engine, c)
    try:
        side = Side(param_req(p, "side"))
    except ValueError:
        raise E.invalid_side() from None
    try:
        otype = OrderType(param_req(p, "type"))
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
    price = param_dec(p, "price", required=otype in (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT))
    stop = param_dec(p, "triggerPrice" if algo else "stopPrice",
                     required=otype is not OrderType.MARKET and otype is not OrderType.LIMIT)
    if otype is OrderType.MARKET and price is not None:
        raise E.not_required("price")
    qty = param_dec(p, "quantity")
    quote_qty = param_dec(p, "quoteOrderQty") if c.venue is Venue.SPOT else None
    if qty is None and quote_qty is None and not param_bool(p, "closePosition"):
        raise E.mandatory("quantity")
    fault = c.fault
    return OrderRequest(
        symbol=sym, side=side, type=otype, quantity=qty, price=price, stop_price=stop, time_in_force=tif,
        client_order_id=p.get("clientAlgoId" if algo else "newClientOrderId") or None, quote_order_qty=quote_qty,
        reduce_only=param_bool(p, "reduceOnly"), close_position=param_bool(p, "closePosition"),
        fill_fraction=fault.fraction if fault and fault.kind is FaultKind.PARTIAL_FILL else None,
        delayed=bool(fault and fault.kind is FaultKind.DELAYED_FILL))
