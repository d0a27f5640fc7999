"""ccxt adapter (``ccxt.async_support``): any ccxt exchange id behind :class:`~executor.venue.base.Venue`.

Markets are loaded once in :meth:`CcxtVenue.start`. Before an order is sent its amount and price
are rounded with ccxt's ``amount_to_precision``/``price_to_precision`` and checked against the
market's minimum amount and minimum notional (``limits.amount.min``, ``limits.cost.min``); a
violation raises :class:`PermanentVenueError` with ``RejectCode.INVALID_QUANTITY`` and nothing is
sent.

Errors: every ccxt exception is translated in :func:`translate`, the only place that looks at
ccxt's exception classes (ccxt 4.5.90, ``ccxt/base/errors.py``):

=============================================  =====================================================
ccxt exception                                 tandem
=============================================  =====================================================
RequestTimeout, NetworkError (other),           AmbiguousVenueError — unless the call is a read
BadResponse, ExchangeNotAvailable, and any      (``idempotent=True``): then TemporaryVenueError
other OperationFailed (Binance 5xx with a
-1001/-1008 body)
RateLimitExceeded, DDoSProtection (429/418),    TemporaryVenueError (nothing happened: the request
InvalidNonce (-1021), OnMaintenance             was refused before it was processed)
OrderNotFound (-2011, -2013)                    OrderAbsent (Permanent, VENUE_ERROR): ``None`` from
                                                fetch/cancel (see the Venue contract)
BadResponse carrying -2022/-2021 (spot          Permanent, VENUE_ERROR (a definite failure, see
cancelReplace)                                  ``_CANCEL_REPLACE_FAILED``); StopWouldTrigger when
                                                the new leg was a stop refused as already triggered
OrderImmediatelyFillable (USDⓈ-M -2021, spot    StopWouldTrigger (Permanent, VENUE_ERROR): the stop
-2010 "Stop price would trigger immediately.")  would fire at once
InsufficientFunds                               Permanent, INSUFFICIENT_FUNDS
InvalidOrder, BadRequest, BadSymbol             Permanent, INVALID_QUANTITY / UNKNOWN_INSTRUMENT /
                                                VENUE_ERROR
AuthenticationError, PermissionDenied, others   Permanent, VENUE_ERROR
=============================================  =====================================================

Client order ids: orders are sent with ``newClientOrderId`` (Binance's parameter; ccxt passes
unknown params through) and looked up or cancelled with ``origClientOrderId``. Binance USDⓈ-M
conditional orders live in the Algo service since 2025-12: ccxt 4.5.90 routes a stop order and any
fetch/cancel with ``trigger=True`` to ``/fapi/v1/algoOrder``, keyed by ``clientAlgoId`` — so a
protective order (``protective=True``, told by the caller: the adapter never reads our ids) on a
derivatives market is fetched and cancelled with ``{"trigger": True}``.

Fees: Binance spot charges a buy's commission in the asset received. A fee in the base asset is
taken off ``filled`` and converted to quote at the fill price (see
:class:`~executor.venue.base.OrderReport`); a fee in a third asset (BNB) is reported as 0 and
logged, since its quote value is not known here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import ccxt.async_support as ccxt_async
import structlog
from ccxt.base import errors as cx

from protocol import RejectCode, Side, Status

from .base import (
    Balance,
    OrderReport,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionReport,
    Venue,
)
from .errors import (
    AmbiguousVenueError,
    OrderAbsent,
    PermanentVenueError,
    StopWouldTrigger,
    TemporaryVenueError,
    VenueError,
)

__all__ = ["CcxtVenue", "translate"]

T = TypeVar("T")

_TEMPORARY = (cx.RateLimitExceeded, cx.DDoSProtection, cx.InvalidNonce, cx.OnMaintenance)
_AMBIGUOUS = (cx.OperationFailed,)  # RequestTimeout, NetworkError, BadResponse, and Binance 5xx bodies -1001/-1008
_CANCEL_REPLACE_FAILED = ('"code":-2022', '"code":-2021')
"""Binance spot ``order/cancelReplace`` failures, which ccxt 4.5.90 raises as BadResponse: -2022
the cancel failed and nothing new was placed, -2021 the cancel succeeded and the new order failed
(Binance spot REST docs, "Cancel an Existing Order and Send a New Order")."""
_WOULD_TRIGGER = "would trigger immediately"
"""Binance spot's -2010 message for a stop already crossed ("Stop price would trigger immediately."),
as it appears in a cancelReplace body's ``newOrderResponse``."""
_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}
_CCXT_TYPE = {
    OrderType.MARKET: "market",
    OrderType.LIMIT_IOC: "limit",
    OrderType.STOP_MARKET: "STOP_MARKET",
    OrderType.STOP_LOSS_LIMIT: "STOP_LOSS_LIMIT",
    OrderType.LIMIT: "limit",
}


_UNKNOWN_OUTCOME_CODES = frozenset({-1001, -1006, -1007, -1008})
"""Binance codes whose request may or may not have been executed: -1001 internal error /
disconnected, -1006 unexpected response from the message bus ("execution status unknown"), -1007
backend timeout ("send status unknown; execution status unknown"), -1008 server overloaded (Binance
spot and USDⓈ-M REST docs, "Error codes"). Any other code in an error body is a definite answer."""
_CODE = re.compile(r'"code"\s*:\s*(-?\d+)')


def translate(exc: BaseException, *, where: str, idempotent: bool) -> VenueError:
    """The :class:`VenueError` for a ccxt exception raised by the call ``where``.

    Args:
        exc: what ccxt raised.
        where: names the call and order (goes into ``detail``).
        idempotent: the call changes nothing at the venue (a read), so an ambiguous failure is
            simply temporary.
    """
    detail = f"{where}: {type(exc).__name__}: {exc}"
    if isinstance(exc, cx.BadResponse) and any(c in str(exc) for c in _CANCEL_REPLACE_FAILED):
        if _WOULD_TRIGGER in str(exc).lower():  # the cancel was done, the new stop is already crossed
            return StopWouldTrigger(detail)
        return PermanentVenueError(detail)  # a definite answer: the cancel (or the new order) failed
    if isinstance(exc, cx.OrderImmediatelyFillable):
        return StopWouldTrigger(detail)
    if isinstance(exc, cx.OrderNotFound):
        return OrderAbsent(detail)
    if isinstance(exc, _TEMPORARY):
        return TemporaryVenueError(detail)
    if isinstance(exc, cx.InsufficientFunds):
        return PermanentVenueError(detail, RejectCode.INSUFFICIENT_FUNDS)
    if isinstance(exc, cx.BadSymbol):
        return PermanentVenueError(detail, RejectCode.UNKNOWN_INSTRUMENT)
    if isinstance(exc, (cx.InvalidOrder, cx.BadRequest)):
        return PermanentVenueError(detail, RejectCode.INVALID_QUANTITY if "filter" in str(exc).lower()
                                   else RejectCode.VENUE_ERROR)  # fmt: skip
    if isinstance(exc, _AMBIGUOUS):
        code = _CODE.search(str(exc))
        if code is not None and int(code.group(1)) not in _UNKNOWN_OUTCOME_CODES and not isinstance(exc, cx.NetworkError):
            return PermanentVenueError(detail)  # e.g. USDⓈ-M -2020 unable to fill, -2023 liquidation mode
        return TemporaryVenueError(detail) if idempotent else AmbiguousVenueError(detail)
    return PermanentVenueError(detail)


_DERIVATIVE_TYPES = ("future", "swap", "delivery", "linear", "inverse")


_FLOAT_TAIL = 1e-12
"""Relative nudge before the lot-step truncation: far above a float subtraction's error (~1e-16), far
below any lot step relative to an order (Binance BTCUSDT: 0.001 of a 0.01 order is 10 %)."""


@dataclass(frozen=True, slots=True)
class _At:
    """A market time for the replay clock hook, which reads ``market_ts_ns`` alone."""

    market_ts_ns: int
"""ccxt ``options['defaultType']`` values of a derivatives market."""


class CcxtVenue(Venue):
    """One ccxt exchange, one market type.

    Args:
        exchange_id: a ccxt id (``"binance"``, ``"binanceusdm"``, any other in ``ccxt.exchanges``).
        config: passed to the ccxt constructor (``apiKey``, ``secret``, ``options``, ``session``,
            ``timeout`` in ms, ...). Keys are never logged.
        sandbox: call ``set_sandbox_mode(True)`` (Binance testnet URLs).
        before_order: awaited with each request before it is sent (the emulator's replay clock; it
            reads the request's ``market_ts_ns`` alone, and is also awaited with a bare market time
            by :meth:`observe_time`);
            may raise :class:`TemporaryVenueError`.
        session: an aiohttp session passed in ``config`` that this venue closes on :meth:`close`
            (ccxt does not close a session it did not create).
        recv_window_ms: Binance ``recvWindow`` sent with signed requests (ccxt's default is 10 s):
            a request older than this is refused by the exchange, which bounds how long a lost
            order request could still be executed.
        ambiguity_margin_s: added to it for clock skew, giving :attr:`ambiguity_window_s`.

    Raises:
        PermanentVenueError: unknown exchange id (from the constructor), or markets failing to
            load for a permanent reason (from :meth:`start`).
    """

    def __init__(
        self,
        exchange_id: str,
        config: dict[str, Any],
        *,
        sandbox: bool = False,
        before_order: Callable[[Any], Awaitable[None]] | None = None,
        session: Any = None,
        recv_window_ms: int = 5_000,
        ambiguity_margin_s: float = 1.0,
    ) -> None:
        cls = getattr(ccxt_async, exchange_id, None)
        if exchange_id not in ccxt_async.exchanges or cls is None:
            raise PermanentVenueError(f"ccxt has no exchange {exchange_id!r}", RejectCode.VENUE_ERROR)
        self.name = exchange_id
        self.exchange = cls({"enableRateLimit": True, **config})
        if sandbox:
            self.exchange.set_sandbox_mode(True)
        # open orders of every symbol are read once at start (adopting protective orders after a
        # restart); ccxt refuses that by default because of its higher rate-limit weight
        opts = self.exchange.options.get("fetchOpenOrders")
        self.exchange.options["fetchOpenOrders"] = {**(opts if isinstance(opts, dict) else {}), "warnWithoutSymbol": False}
        if "recvWindow" in self.exchange.options:  # the Binance family
            self.exchange.options["recvWindow"] = recv_window_ms
            self.ambiguity_window_s = recv_window_ms / 1000 + ambiguity_margin_s
        else:  # no venue-side bound known: wait as long as ccxt's Binance default
            self.ambiguity_window_s = 10.0 + ambiguity_margin_s
        self.before_order = before_order
        self.session = session
        self.log = structlog.get_logger("venue").bind(venue=exchange_id)
        self.derivatives = False
        self.supports_protective = True

    @property  # type: ignore[override]
    def supports_replace(self) -> bool:
        """Spot markets of an exchange with ccxt's ``editOrder`` (Binance spot ``order/cancelReplace``)."""
        return not self.derivatives and bool(self.exchange.has.get("editOrder"))

    async def _call(self, where: str, fn: Callable[[], Awaitable[T]], *, idempotent: bool) -> T:
        try:
            return await fn()
        except VenueError:
            raise
        except cx.BaseError as exc:
            raise translate(exc, where=where, idempotent=idempotent) from exc
        except (OSError, TimeoutError) as exc:  # below ccxt: a socket error ccxt did not wrap
            raise translate(cx.NetworkError(str(exc)), where=where, idempotent=idempotent) from exc

    @property  # type: ignore[override]
    def supports_resting_limits(self) -> bool:
        """A derivatives market: a reduce-only GTC limit rests beside the reduce-only stop (on spot both
        would lock the same base asset)."""
        return self.derivatives

    async def observe_time(self, market_ts_ns: int) -> None:
        """A replay clock (``before_order``, the local Binance) on a market where a take-profit may
        rest: move it to the decision's time first, so a lookup sees what the bars before it filled."""
        if self.before_order is not None and self.supports_resting_limits:
            await self.before_order(_At(market_ts_ns))

    @property
    def supports_short(self) -> bool:
        """A derivatives market (ccxt's ``defaultType``: ``binanceusdm`` is ``future``), known from the
        constructor on, before :meth:`start` sets :attr:`derivatives`."""
        return self.exchange.options.get("defaultType", "spot") in _DERIVATIVE_TYPES

    async def start(self) -> None:
        """Load markets once (retry on temporary errors is the caller's policy)."""
        await self._call("load_markets", self.exchange.load_markets, idempotent=True)
        default = self.exchange.options.get("defaultType", "spot")
        self.derivatives = default in _DERIVATIVE_TYPES

    async def close(self) -> None:
        try:
            await self.exchange.close()
        finally:
            if self.session is not None:
                await self.session.close()

    def lists(self, symbol: str) -> bool:
        return symbol in (self.exchange.markets or {})

    # -- orders -----------------------------------------------------------------------------

    def _prepare(self, req: OrderRequest) -> tuple[str, float, float | None, dict[str, Any]]:
        """Round to the market's precision and check its minimums; returns ccxt arguments."""
        symbol = req.symbol
        if not self.lists(symbol):
            raise PermanentVenueError(f"{self.name} does not list {symbol}", RejectCode.UNKNOWN_INSTRUMENT,
                                      Status.REJECTED)  # fmt: skip
        market = self.exchange.market(symbol)
        ex = self.exchange
        try:
            # ccxt truncates to the lot step: nudge a float tail first (0.011 - 0.005 is 0.005999999999999999,
            # which would truncate a whole step away and leave dust the venue will not trade)
            amount = float(ex.amount_to_precision(symbol, req.amount * (1 + _FLOAT_TAIL)))
            price = float(ex.price_to_precision(symbol, req.price)) if req.price is not None else None
            stop = float(ex.price_to_precision(symbol, req.stop_price)) if req.stop_price is not None else None
        except cx.BaseError as exc:
            raise PermanentVenueError(f"{self.name} {symbol} {req.client_order_id}: {exc}",
                                      RejectCode.INVALID_QUANTITY, Status.REJECTED) from exc  # fmt: skip
        limits = market.get("limits") or {}
        min_amount = (limits.get("amount") or {}).get("min") or 0.0
        min_cost = (limits.get("cost") or {}).get("min") or 0.0
        mark = price or stop or req.reference_price
        if amount <= 0 or amount < min_amount or (mark and amount * mark < min_cost):
            raise PermanentVenueError(
                f"{self.name} {symbol} {req.client_order_id}: amount {amount} (from {req.amount}) below the "
                f"minimum amount {min_amount} or notional {amount * mark:.8g} below {min_cost}",
                RejectCode.INVALID_QUANTITY,
                Status.REJECTED,
            )
        params: dict[str, Any] = {"newClientOrderId": req.client_order_id}
        if req.type is OrderType.LIMIT_IOC:
            params["timeInForce"] = "IOC"
        elif req.type is OrderType.STOP_LOSS_LIMIT:
            params["stopPrice"] = stop
            params["timeInForce"] = "GTC"
        elif req.type is OrderType.STOP_MARKET:
            params["stopPrice"] = stop
        elif req.type is OrderType.LIMIT:
            params["timeInForce"] = "GTC"
        if req.reduce_only and self.derivatives:
            params["reduceOnly"] = True
        return symbol, amount, price, params

    async def submit(self, request: OrderRequest) -> OrderReport:
        symbol, amount, price, params = self._prepare(request)
        if self.before_order is not None:
            await self.before_order(request)
        side = "buy" if request.side is Side.BUY else "sell"
        where = f"create_order {symbol} {side} {amount} {request.type} {request.client_order_id}"
        order = await self._call(
            where,
            lambda: self.exchange.create_order(symbol, _CCXT_TYPE[request.type], side, amount, price, params),
            idempotent=False,
        )
        return await self._placed(order, request.client_order_id, where)

    async def _placed(self, order: dict[str, Any], client_order_id: str, where: str) -> OrderReport:
        """The report of an order the venue took; if its details cannot be read yet, the order's
        outcome is ambiguous (it exists) — never "temporary", which would resend it."""
        try:
            return await self._completed(order, client_order_id)
        except TemporaryVenueError as exc:
            raise AmbiguousVenueError(f"{where}: placed, details unreadable: {exc.detail}") from exc

    async def _completed(self, order: dict[str, Any], client_order_id: str) -> OrderReport:
        """The report, with fees from the order's trades when the order structure carries none:
        Binance returns commissions only in a new order's ``fills`` (spot, FULL response); a
        queried order (``GET /api/v3/order``) and every USDⓈ-M order response have none, while
        ``myTrades`` / ``userTrades`` do."""
        if float(order.get("filled") or 0) <= 0 or _has_fees(order) or not order.get("id"):
            return self._report(order, client_order_id)
        symbol = order.get("symbol") or ""
        trades = await self._call(
            f"fetch_my_trades {symbol} orderId={order['id']}",
            lambda: self.exchange.fetch_my_trades(symbol, None, None, {"orderId": order["id"]}),
            idempotent=True,
        )
        traded = sum(float(t.get("amount") or 0.0) for t in trades)
        filled = float(order.get("filled") or 0.0)
        if abs(traded - filled) > 1e-9 * max(filled, 1.0):
            raise TemporaryVenueError(f"{symbol} order {order['id']}: trades sum to {traded}, the order filled {filled}")
        fees = [t["fee"] for t in trades if t.get("fee")]
        return self._report({**order, "fees": fees, "fee": None}, client_order_id)

    def _lookup_params(self, client_order_id: str, protective: bool) -> dict[str, Any]:
        params: dict[str, Any] = {"origClientOrderId": client_order_id}
        if self.derivatives and protective:
            params["trigger"] = True
        return params

    async def fetch_order(self, client_order_id: str, symbol: str, *, protective: bool = False) -> OrderReport | None:
        params = self._lookup_params(client_order_id, protective)
        try:
            order = await self._call(f"fetch_order {symbol} {client_order_id}",
                                     lambda: self.exchange.fetch_order(None, symbol, params), idempotent=True)  # fmt: skip
        except OrderAbsent:
            return None
        info = order.get("info") or {}
        actual = info.get("actualOrderId") if isinstance(info, dict) else None
        if self.derivatives and actual and actual not in ("0", 0) and not float(order.get("filled") or 0):
            # a triggered USDⓈ-M algo (stop) order: its fill is on the order it spawned
            spawned = await self._call(f"fetch_order {symbol} {actual} (triggered {client_order_id})",
                                       lambda: self.exchange.fetch_order(str(actual), symbol), idempotent=True)  # fmt: skip
            report = await self._completed(spawned, client_order_id)
            stop = order.get("triggerPrice")
            return report._replace(client_order_id=client_order_id, type=OrderType.STOP_MARKET,
                           stop_price=float(stop) if stop else None)  # fmt: skip
        return await self._completed(order, client_order_id)

    async def cancel(self, client_order_id: str, symbol: str, *, protective: bool = False) -> OrderReport | None:
        params = self._lookup_params(client_order_id, protective)
        try:
            order = await self._call(f"cancel_order {symbol} {client_order_id}",
                                     lambda: self.exchange.cancel_order(None, symbol, params), idempotent=False)  # fmt: skip
        except OrderAbsent:
            return None
        return await self._placed(order, client_order_id, f"cancel_order {symbol} {client_order_id}")

    async def replace(self, client_order_id: str, request: OrderRequest) -> OrderReport:
        """Cancel ``client_order_id`` and place ``request`` in one venue call where the venue has
        one (Binance spot ``POST /api/v3/order/cancelReplace`` with ``STOP_ON_FAILURE``, through
        ccxt's ``edit_order``), so no moment passes with neither order on the book.

        Raises:
            PermanentVenueError: no such call here (not :attr:`supports_replace`), the cancel failed
                (e.g. the old order already filled; nothing new was placed) or the new order was
                refused; AmbiguousVenueError as for submit.
        """
        symbol, amount, price, params = self._prepare(request)
        if not self.supports_replace:
            raise PermanentVenueError(f"{self.name}: no atomic cancel/replace", RejectCode.VENUE_ERROR)
        if self.before_order is not None:
            await self.before_order(request)
        params = {**params, "cancelOrigClientOrderId": client_order_id}
        side = "buy" if request.side is Side.BUY else "sell"
        where = f"cancel_replace {symbol} {client_order_id} -> {request.type} {request.client_order_id}"
        order = await self._call(
            where,
            lambda: self.exchange.edit_order(None, symbol, _CCXT_TYPE[request.type], side, amount, price, params),
            idempotent=False,
        )
        return await self._placed(order, request.client_order_id, where)

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        orders = await self._call(f"fetch_open_orders {symbol}", lambda: self.exchange.fetch_open_orders(symbol),
                                  idempotent=True)  # fmt: skip
        out = [self._report(o, o.get("clientOrderId") or "") for o in orders]
        if self.derivatives:
            algo = await self._call(f"fetch_open_orders {symbol} trigger",
                                    lambda: self.exchange.fetch_open_orders(symbol, None, None, {"trigger": True}),
                                    idempotent=True)  # fmt: skip
            out += [self._report(o, o.get("clientOrderId") or "") for o in algo]
        return out

    async def balances(self) -> dict[str, Balance]:
        raw = await self._call("fetch_balance", self.exchange.fetch_balance, idempotent=True)
        out = {}
        for asset, total in (raw.get("total") or {}).items():
            free = float(raw.get("free", {}).get(asset) or 0.0)
            used = float(raw.get("used", {}).get(asset) or 0.0)
            if total or free or used:
                out[asset] = Balance(asset, free, used)
        return out

    async def positions(self) -> list[PositionReport]:
        if not self.derivatives:
            return []
        raw = await self._call("fetch_positions", self.exchange.fetch_positions, idempotent=True)
        out = []
        for p in raw:
            contracts = float(p.get("contracts") or 0.0) * float(p.get("contractSize") or 1.0)
            if contracts:
                sign = -1.0 if p.get("side") == "short" else 1.0
                out.append(PositionReport(p["symbol"], sign * contracts, float(p.get("entryPrice") or 0.0)))
        return out

    def base_asset(self, symbol: str) -> str | None:
        market = (self.exchange.markets or {}).get(symbol)
        return market.get("base") if market else None

    async def mark_price(self, symbol: str) -> float | None:
        ticker = await self._call(f"fetch_ticker {symbol}", lambda: self.exchange.fetch_ticker(symbol), idempotent=True)
        last = ticker.get("last") or ticker.get("close")
        return float(last) if last else None

    def min_amount(self, symbol: str) -> float:
        market = (self.exchange.markets or {}).get(symbol) or {}
        return float(((market.get("limits") or {}).get("amount") or {}).get("min") or 0.0)

    # -- parsing ----------------------------------------------------------------------------

    def _report(self, o: dict[str, Any], client_order_id: str) -> OrderReport:
        """A ccxt order structure → :class:`OrderReport` (fees normalised to quote)."""
        symbol = o.get("symbol") or ""
        market = self.exchange.markets.get(symbol, {}) if self.exchange.markets else {}
        base, quote = market.get("base"), market.get("quote")
        filled = float(o.get("filled") or 0.0)
        amount = float(o.get("amount") or 0.0)
        avg = float(o.get("average") or 0.0)
        if not avg and filled and o.get("cost"):
            avg = float(o["cost"]) / filled
        fee_quote = 0.0
        fee_base = 0.0
        fees = o.get("fees") or ([o["fee"]] if o.get("fee") else [])
        for f in fees:
            cost = float(f.get("cost") or 0.0)
            if not cost:
                continue
            if f.get("currency") == quote:
                fee_quote += cost
            elif f.get("currency") == base:
                fee_base += cost
            else:
                self.log.warning("fee_in_other_asset", order=client_order_id, currency=f.get("currency"), cost=cost)
        side = Side.BUY if o.get("side") == "buy" else Side.SELL
        net = filled
        if fee_base:
            net = filled - fee_base if side is Side.BUY else filled
            fee_quote += fee_base * avg
        status = _STATUS.get(o.get("status") or "", OrderStatus.OPEN)
        if status is OrderStatus.OPEN and filled > 0:
            status = OrderStatus.PARTIALLY_FILLED
        typ = _parse_type(o)
        stop = o.get("triggerPrice") or o.get("stopPrice")
        ts = o.get("lastUpdateTimestamp") or o.get("lastTradeTimestamp") or o.get("timestamp") or 0
        return OrderReport(
            client_order_id=o.get("clientOrderId") or client_order_id,
            venue_order_id=str(o.get("id") or ""),
            symbol=symbol,
            side=side,
            type=typ,
            status=status,
            amount=amount,
            filled=net if math.isfinite(net) else 0.0,
            avg_price=avg,
            fee=fee_quote,
            stop_price=float(stop) if stop else None,
            updated_at_ns=int(ts) * 1_000_000,
        )


def _has_fees(o: dict[str, Any]) -> bool:
    fees = o.get("fees") or ([o["fee"]] if o.get("fee") else [])
    return any(f.get("cost") is not None and f.get("currency") for f in fees)


def _parse_type(o: dict[str, Any]) -> OrderType:
    info = o.get("info") if isinstance(o.get("info"), dict) else {}
    raw = str(info.get("origType") or info.get("orderType") or info.get("type") or "").upper()
    if raw in ("STOP_LOSS_LIMIT", "STOP_LOSS", "STOP"):  # ccxt 4.5.90 reports a spot stop-loss-limit as "limit"
        return OrderType.STOP_LOSS_LIMIT
    if raw == "STOP_MARKET":
        return OrderType.STOP_MARKET
    t = str(o.get("type") or "").lower()
    if "stop" in t and "limit" in t:
        return OrderType.STOP_LOSS_LIMIT
    if "stop" in t or o.get("triggerPrice"):
        return OrderType.STOP_MARKET
    if t == "limit":
        return OrderType.LIMIT_IOC
    return OrderType.MARKET
