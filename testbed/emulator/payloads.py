"""Engine state rendered as Binance JSON bodies (field names, order and types as Binance sends).

Shapes follow the fixtures in ``fixtures/`` and ``/work/shared/data/fixtures/binance``:
spot ``new_order_full_response`` / ``order_response`` / ``cancel_order_response`` /
``account_response`` / ``account_trades_response`` (nautilus docs examples); USDⓈ-M
``order_response``, ``account_info_v2``, ``position_risk`` (nautilus docs examples), the v3
``account`` / ``positionRisk`` bodies and ``userTrades`` recorded by ccxt
(``ccxt_recorded/binance_static_http_responses.json``), and algo orders as ccxt 4.5.90 documents
them in ``parse_order`` (recorded live, Nov 2025). Numbers that Binance sends as JSON numbers
(ids, times) are ints; amounts are strings. Spot amounts have 8 decimals; USDⓈ-M prices and
quantities use the symbol's ``pricePrecision`` / ``quantityPrecision``.
"""

from __future__ import annotations

from decimal import Decimal

from .engine import D0, Account, AlgoOrder, Bar, Engine, Fill, Order, OrderType, Side, Venue

__all__ = [
    "algo_cancel", "algo_order", "futures_account", "futures_balance", "futures_order", "futures_position_risk",
    "futures_trades", "kline", "leverage_brackets", "spot_account", "spot_cancel", "spot_new_order", "spot_order",
    "spot_trades", "ticker_24hr", "ticker_price",
]


def f8(d: Decimal) -> str:
    return f"{d:.8f}"


def fn(d: Decimal, places: int) -> str:
    return f"{d:.{places}f}"


# --------------------------------------------------------------------------------------- spot
def _spot_common(o: Order) -> dict:
    return {
        "symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_order_id,
    }


def spot_new_order(o: Order, resp_type: str = "FULL") -> dict:
    """POST /api/v3/order answer for newOrderRespType ACK / RESULT / FULL."""
    out = _spot_common(o) | {"transactTime": o.time_ms}
    if resp_type == "ACK":
        return out
    out |= {
        "price": f8(o.price), "origQty": f8(o.orig_qty), "executedQty": f8(o.executed_qty),
        "origQuoteOrderQty": f8(D0), "cummulativeQuoteQty": f8(o.cum_quote), "status": o.status.value,
        "timeInForce": o.time_in_force, "type": o.type.value, "side": o.side.value,
    }
    if o.type is OrderType.STOP_LOSS_LIMIT:
        out["stopPrice"] = f8(o.stop_price)
    out |= {"workingTime": o.working_ms if o.working else -1, "selfTradePreventionMode": "NONE"}
    if resp_type == "FULL":
        out["fills"] = [{"price": f8(f.price), "qty": f8(f.qty), "commission": f8(f.commission),
                         "commissionAsset": f.commission_asset, "tradeId": f.trade_id} for f in o.fills]
    return out


def spot_order(o: Order) -> dict:
    """GET /api/v3/order and each element of GET /api/v3/openOrders."""
    return _spot_common(o) | {
        "price": f8(o.price), "origQty": f8(o.orig_qty), "executedQty": f8(o.executed_qty),
        "cummulativeQuoteQty": f8(o.cum_quote), "status": o.status.value, "timeInForce": o.time_in_force,
        "type": o.type.value, "side": o.side.value, "stopPrice": f8(o.stop_price), "icebergQty": f8(D0),
        "time": o.time_ms, "updateTime": o.update_ms, "isWorking": o.working,
        "workingTime": o.working_ms if o.working else -1, "origQuoteOrderQty": f8(D0),
        "selfTradePreventionMode": "NONE",
    }


def spot_cancel(o: Order, cancel_client_id: str, now_ms: int) -> dict:
    """DELETE /api/v3/order answer (``clientOrderId`` is the cancel request's own id, as on Binance)."""
    out = {"symbol": o.symbol, "origClientOrderId": o.client_order_id, "orderId": o.order_id, "orderListId": -1,
           "clientOrderId": cancel_client_id, "transactTime": now_ms, "price": f8(o.price),
           "origQty": f8(o.orig_qty), "executedQty": f8(o.executed_qty), "origQuoteOrderQty": f8(D0),
           "cummulativeQuoteQty": f8(o.cum_quote), "status": o.status.value, "timeInForce": o.time_in_force,
           "type": o.type.value, "side": o.side.value}
    if o.type is OrderType.STOP_LOSS_LIMIT:
        out["stopPrice"] = f8(o.stop_price)
    out["selfTradePreventionMode"] = "NONE"
    return out


def spot_account(acct: Account, now_ms: int) -> dict:
    """GET /api/v3/account (fee 10 bps as in ccxt's recorded spot account)."""
    rate = f8(Decimal("0.001"))
    return {
        "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
        "commissionRates": {"maker": rate, "taker": rate, "buyer": f8(D0), "seller": f8(D0)},
        "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
        "requireSelfTradePrevention": False, "preventSor": False, "updateTime": now_ms, "accountType": "SPOT",
        "balances": [{"asset": a, "free": f8(v[0]), "locked": f8(v[1])} for a, v in sorted(acct.balances.items())],
        "permissions": ["SPOT"], "uid": 354937868,
    }


def spot_trades(fills: list[Fill]) -> list[dict]:
    """GET /api/v3/myTrades."""
    return [{"symbol": f.symbol, "id": f.trade_id, "orderId": f.order_id, "orderListId": -1, "price": f8(f.price),
             "qty": f8(f.qty), "quoteQty": f8(f.quote_qty), "commission": f8(f.commission),
             "commissionAsset": f.commission_asset, "time": f.time_ms, "isBuyer": f.side is Side.BUY,
             "isMaker": f.maker, "isBestMatch": True} for f in fills]


# ------------------------------------------------------------------------------------ USDⓈ-M
def futures_order(o: Order, eng: Engine, with_time: bool = True) -> dict:
    """POST/GET/DELETE /fapi/v1/order and GET /fapi/v1/openOrders elements."""
    spec = eng.specs[Venue.USDM][o.symbol]
    pp, qp = spec.price_precision, spec.qty_precision
    out = {
        "orderId": o.order_id, "symbol": o.symbol, "status": o.status.value, "clientOrderId": o.client_order_id,
        "price": fn(o.price, pp), "avgPrice": fn(o.avg_price, 5), "origQty": fn(o.orig_qty, qp),
        "executedQty": fn(o.executed_qty, qp), "cumQty": fn(o.executed_qty, qp), "cumQuote": fn(o.cum_quote, 5),
        "timeInForce": o.time_in_force, "type": o.type.value, "reduceOnly": o.reduce_only,
        "closePosition": o.close_position, "side": o.side.value, "positionSide": "BOTH",
        "stopPrice": fn(o.stop_price, pp), "workingType": "CONTRACT_PRICE", "priceProtect": False,
        "origType": (o.orig_type or o.type).value, "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0,
    }
    if with_time:
        out["time"] = o.time_ms
    out["updateTime"] = o.update_ms
    return out


def futures_trades(fills: list[Fill], eng: Engine) -> list[dict]:
    """GET /fapi/v1/userTrades."""
    out = []
    for f in fills:
        spec = eng.specs[Venue.USDM][f.symbol]
        out.append({"symbol": f.symbol, "id": f.trade_id, "orderId": f.order_id, "side": f.side.value,
                    "price": fn(f.price, spec.price_precision), "qty": fn(f.qty, spec.qty_precision),
                    "realizedPnl": f8(f.realized_pnl), "marginAsset": "USDT", "quoteQty": fn(f.quote_qty, 5),
                    "commission": f8(f.commission), "commissionAsset": "USDT", "time": f.time_ms,
                    "positionSide": "BOTH", "buyer": f.side is Side.BUY, "maker": f.maker})
    return out


def _margins(acct: Account, eng: Engine) -> dict[str, Decimal]:
    upnl = sum((eng.unrealized(acct, s) for s in acct.positions), D0)
    pim = sum((eng.position_im(acct, s) for s in acct.positions), D0)
    oim = sum((eng.open_order_im(acct, s) for s in acct.positions), D0)
    maint = sum((abs(p.amt) * eng.mark_price() * Decimal("0.004") for p in acct.positions.values()), D0)
    avail = acct.wallet + upnl - pim - oim
    return {"upnl": upnl, "pim": pim, "oim": oim, "maint": maint, "avail": avail}


def futures_account(acct: Account, eng: Engine, version: int) -> dict:
    """GET /fapi/v2/account (nautilus ``account_info_v2``) or /fapi/v3/account (ccxt recorded)."""
    m = _margins(acct, eng)
    w = acct.wallet
    out: dict = {}
    if version == 2:
        out |= {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True, "updateTime": 0,
                "multiAssetsMargin": False, "tradeGroupId": -1}
    out |= {
        "totalInitialMargin": f8(m["pim"] + m["oim"]), "totalMaintMargin": f8(m["maint"]),
        "totalWalletBalance": f8(w), "totalUnrealizedProfit": f8(m["upnl"]), "totalMarginBalance": f8(w + m["upnl"]),
        "totalPositionInitialMargin": f8(m["pim"]), "totalOpenOrderInitialMargin": f8(m["oim"]),
        "totalCrossWalletBalance": f8(w), "totalCrossUnPnl": f8(m["upnl"]), "availableBalance": f8(m["avail"]),
        "maxWithdrawAmount": f8(max(D0, min(w, m["avail"]))),
        "assets": [{"asset": "USDT", "walletBalance": f8(w), "unrealizedProfit": f8(m["upnl"]),
                    "marginBalance": f8(w + m["upnl"]), "maintMargin": f8(m["maint"]),
                    "initialMargin": f8(m["pim"] + m["oim"]), "positionInitialMargin": f8(m["pim"]),
                    "openOrderInitialMargin": f8(m["oim"]), "crossWalletBalance": f8(w), "crossUnPnl": f8(m["upnl"]),
                    "availableBalance": f8(m["avail"]), "maxWithdrawAmount": f8(max(D0, min(w, m["avail"]))),
                    "marginAvailable": True, "updateTime": eng.clock_ms}],
    }
    positions = []
    for sym, p in sorted(acct.positions.items()):
        if version == 3 and p.amt == 0:
            continue
        notional = p.amt * eng.mark_price()
        row = {"symbol": sym, "positionSide": "BOTH", "positionAmt": fn(p.amt, eng.specs[Venue.USDM][sym].qty_precision),
               "unrealizedProfit": f8(eng.unrealized(acct, sym)), "isolatedMargin": "0", "notional": f8(notional),
               "isolatedWallet": "0", "initialMargin": f8(eng.position_im(acct, sym)),
               "maintMargin": f8(abs(notional) * Decimal("0.004")), "updateTime": p.update_ms}
        if version == 2:
            row |= {"positionInitialMargin": f8(eng.position_im(acct, sym)),
                    "openOrderInitialMargin": f8(eng.open_order_im(acct, sym)),
                    "leverage": str(acct.leverage.get(sym, 1)), "isolated": False, "entryPrice": fn(p.entry, 5),
                    "maxNotional": "250000", "bidNotional": "0", "askNotional": "0"}
        positions.append(row)
    out["positions"] = positions
    return out


def futures_balance(acct: Account, eng: Engine) -> list[dict]:
    """GET /fapi/v2|v3/balance (nautilus ``balance.json`` shape)."""
    m = _margins(acct, eng)
    return [{"accountAlias": "SgsR", "asset": "USDT", "balance": f8(acct.wallet), "crossWalletBalance": f8(acct.wallet),
             "crossUnPnl": f8(m["upnl"]), "availableBalance": f8(m["avail"]),
             "maxWithdrawAmount": f8(max(D0, min(acct.wallet, m["avail"]))), "marginAvailable": True,
             "updateTime": eng.clock_ms}]


def futures_position_risk(acct: Account, eng: Engine, version: int, symbol: str | None) -> list[dict]:
    """GET /fapi/v3/positionRisk (ccxt recorded: only open positions) or v2 (every symbol)."""
    out = []
    mark = eng.mark_price()
    for sym, p in sorted(acct.positions.items()):
        if symbol is not None and sym != symbol:
            continue
        if version == 3 and p.amt == 0:
            continue
        spec = eng.specs[Venue.USDM][sym]
        notional = p.amt * mark
        common = {"symbol": sym, "positionAmt": fn(p.amt, spec.qty_precision), "entryPrice": fn(p.entry, 5),
                  "breakEvenPrice": fn(p.entry, 5), "markPrice": f8(mark), "unRealizedProfit": f8(eng.unrealized(acct, sym)),
                  "liquidationPrice": "0", "isolatedMargin": "0", "notional": f8(notional), "isolatedWallet": "0",
                  "positionSide": "BOTH", "updateTime": p.update_ms}
        if version == 3:
            common |= {"marginAsset": "USDT", "initialMargin": f8(eng.position_im(acct, sym)),
                       "maintMargin": f8(abs(notional) * Decimal("0.004")),
                       "positionInitialMargin": f8(eng.position_im(acct, sym)),
                       "openOrderInitialMargin": f8(eng.open_order_im(acct, sym)), "adl": 0,
                       "bidNotional": "0", "askNotional": "0"}
        else:
            common |= {"leverage": str(acct.leverage.get(sym, 1)), "maxNotionalValue": "250000", "marginType": "cross",
                       "isAutoAddMargin": "false"}
        out.append(common)
    return out


def leverage_brackets(symbols: list[str]) -> list[dict]:
    """GET /fapi/v1/leverageBracket: BTCUSDT's first tiers in Binance's documented shape.

    Tier values are Binance's published BTCUSDT brackets (125x to 50k USDT, mmr 0.4 %, ...),
    abbreviated; the emulator uses only tier 1's 0.4 % for maintenance margin.
    """
    tiers = [(125, 50_000, 0, "0.004", "0.0"), (100, 600_000, 50_000, "0.005", "50.0"),
             (75, 3_000_000, 600_000, "0.0065", "950.0"), (1, 1_000_000_000, 3_000_000, "0.5", "1484000.0")]
    return [{"symbol": s, "notionalCoef": 1.0, "brackets": [
        {"bracket": i + 1, "initialLeverage": lev, "notionalCap": cap, "notionalFloor": floor,
         "maintMarginRatio": float(mmr), "cum": float(cum)} for i, (lev, cap, floor, mmr, cum) in enumerate(tiers)]}
        for s in symbols]


def algo_order(a: AlgoOrder, eng: Engine) -> dict:
    """POST/GET /fapi/v1/algoOrder and GET /fapi/v1/openAlgoOrders elements.

    After a trigger, ``actualOrderId`` is the orderId of the MARKET order it placed (query that
    with GET /fapi/v1/order for the fill); ``actualPrice``/``actualQty`` are its average price
    and executed quantity.
    """
    spec = eng.specs[Venue.USDM][a.symbol]
    pp, qp = spec.price_precision, spec.qty_precision
    out = {
        "algoId": a.algo_id, "clientAlgoId": a.client_algo_id, "algoType": "CONDITIONAL", "orderType": a.type.value,
        "symbol": a.symbol, "side": a.side.value, "positionSide": "BOTH", "timeInForce": a.time_in_force,
        "quantity": fn(a.quantity, qp), "algoStatus": a.status.value, "triggerPrice": fn(a.trigger_price, pp),
        "price": fn(D0, pp), "icebergQuantity": None, "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": "CONTRACT_PRICE", "priceMatch": "NONE", "closePosition": a.close_position,
        "priceProtect": False, "reduceOnly": a.reduce_only, "activatePrice": "", "callbackRate": "",
        "createTime": a.create_ms, "updateTime": a.update_ms, "triggerTime": a.trigger_ms, "goodTillDate": 0,
    }
    actual = None
    if a.actual_order_id is not None:
        for acct in eng.accounts.values():
            actual = acct.orders[Venue.USDM].get(a.actual_order_id) or actual
    out["actualOrderId"] = str(a.actual_order_id) if a.actual_order_id is not None else ""
    out["actualPrice"] = fn(actual.avg_price, pp) if actual else fn(D0, pp)
    out["actualQty"] = fn(actual.executed_qty, qp) if actual else fn(D0, qp)
    if a.reject_reason:
        out["rejectReason"] = a.reject_reason
    return out


def algo_cancel(a: AlgoOrder) -> dict:
    """DELETE /fapi/v1/algoOrder answer (ccxt 4.5.90 parse_order comment)."""
    return {"algoId": a.algo_id, "clientAlgoId": a.client_algo_id, "code": "200", "msg": "success"}


# ------------------------------------------------------------------------------ market data
def kline(b: Bar, interval_ms: int) -> list:
    """One GET /api/v3/klines row: [open time, o, h, l, c, volume, close time, quote volume, trades, ...]."""
    return [b.ts_ms, f8(b.open), f8(b.high), f8(b.low), f8(b.close), f8(b.volume), b.ts_ms + interval_ms - 1,
            "0", 0, "0", "0", "0"]


def ticker_24hr(symbol: str, bars: list[Bar], last: Decimal, now_ms: int, futures: bool) -> dict:
    """GET /api/v3|fapi/v1 ticker/24hr from the closed bars of the last 24 h (last = mark price)."""
    window = [b for b in bars if b.ts_ms >= now_ms - 86_400_000]
    o = window[0].open if window else last
    hi = max((b.high for b in window), default=last)
    lo = min((b.low for b in window), default=last)
    vol = sum((b.volume for b in window), D0)
    change = last - o
    out = {"symbol": symbol, "priceChange": f8(change), "priceChangePercent": fn(change / o * 100 if o else D0, 3),
           "weightedAvgPrice": f8(last)}
    if not futures:
        out["prevClosePrice"] = f8(o)
    out["lastPrice"] = f8(last)
    out["lastQty"] = f8(D0)
    if not futures:
        out |= {"bidPrice": f8(last), "bidQty": f8(D0), "askPrice": f8(last), "askQty": f8(D0)}
    out |= {"openPrice": f8(o), "highPrice": f8(hi), "lowPrice": f8(lo), "volume": f8(vol), "quoteVolume": f8(D0),
            "openTime": window[0].ts_ms if window else now_ms, "closeTime": now_ms, "firstId": 0, "lastId": 0,
            "count": len(window)}
    return out


def ticker_price(symbol: str, last: Decimal, now_ms: int, futures: bool) -> dict:
    out = {"symbol": symbol, "price": f8(last)}
    if futures:
        out["time"] = now_ms
    return out

