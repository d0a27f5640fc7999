"""The Binance emulator driven by the real ccxt async client over HTTPS on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from urllib.parse import urlencode

import aiohttp
import ccxt.async_support as ccxt
import pytest
import yarl

from foundation.barcsv import bundled_path, load_bars
from testbed.emulator import BinanceEmulator, Fault, LoopbackRefused
from testbed.emulator.auth import sign
from testbed.emulator.errors import E
from testbed.emulator.specs import load_fixture

SYM, FSYM = "BTC/USDT", "BTC/USDT:USDT"
KEY, SECRET = "test-key-1", "test-secret-1"
BARS = load_bars(bundled_path(), limit=400)


@pytest.fixture
async def emu():
    async with BinanceEmulator(BARS) as e:
        e.create_account(KEY, SECRET, spot={"USDT": "100000", "BTC": "0"}, usdm_usdt="100000")
        yield e


@pytest.fixture
async def spot(emu):
    ex = ccxt.binance(emu.ccxt_config("spot", KEY, SECRET, timeout_ms=1000))
    await ex.load_markets()
    yield ex
    await ex.close()


@pytest.fixture
async def usdm(emu):
    ex = ccxt.binanceusdm(emu.ccxt_config("usdm", KEY, SECRET, timeout_ms=1000))
    await ex.load_markets()
    yield ex
    await ex.close()


def _stop_below(start: int) -> tuple[int, float]:
    """(bar index, stop) with the stop below every low in [start, i) and inside bar i's range."""
    lowest = BARS.low[start]
    for i in range(start + 1, len(BARS)):
        stop = lowest - 1
        if BARS.low[i] <= stop <= BARS.high[i]:
            return i, stop
        lowest = min(lowest, BARS.low[i])
    raise AssertionError("no stop-through bar in the slice")


async def test_load_markets_spot_and_usdm(spot, usdm):
    """load_markets works for spot (BTC/USDT with real filters) and USDⓈ-M (BTC/USDT:USDT)."""
    m = spot.market(SYM)
    assert m["spot"] and m["limits"]["amount"]["min"] == 1e-05 and m["limits"]["cost"]["min"] == 10.0
    assert m["precision"]["price"] == 0.01
    f = usdm.market(FSYM)
    assert f["swap"] and f["linear"] and f["precision"]["amount"] == 0.001
    assert list(spot.markets) == [SYM] and list(usdm.markets) == [FSYM]


async def test_market_buy_fills_at_next_bar_open_with_base_commission(emu, spot):
    """A market buy fills at the open of the first bar at/after the clock; fee 0.1 % in BTC."""
    emu.advance_to(BARS.ts_ms[5] + 1)  # bars 0..5 happened; next open is bar 6
    o = await spot.create_order(SYM, "market", "buy", 0.01)
    assert o["status"] == "closed" and o["filled"] == 0.01
    assert o["average"] == BARS.open[6]
    assert o["fee"]["currency"] == "BTC" and o["fee"]["cost"] == pytest.approx(1e-05)
    assert o["trades"][0]["info"]["commission"] == "0.00001000"
    bal = await spot.fetch_balance()
    assert bal["BTC"]["free"] == pytest.approx(0.00999)
    assert bal["USDT"]["free"] == pytest.approx(100000 - 0.01 * BARS.open[6])
    trades = await spot.fetch_my_trades(SYM)
    assert len(trades) == 1 and trades[0]["price"] == BARS.open[6] and trades[0]["fee"]["currency"] == "BTC"
    assert trades[0]["timestamp"] == BARS.ts_ms[6]


async def test_fetch_and_cancel_by_client_order_id(emu, spot):
    """fetch_order/cancel_order with params clientOrderId hit origClientOrderId and find the order."""
    low = BARS.open[0] - 5000
    o = await spot.create_order(SYM, "limit", "buy", 0.01, low, {"clientOrderId": "cid-1"})
    assert o["status"] == "open" and o["clientOrderId"] == "cid-1"
    got = await spot.fetch_order(None, SYM, {"clientOrderId": "cid-1"})
    assert got["id"] == o["id"] and got["price"] == low and got["status"] == "open"
    bal = await spot.fetch_balance()
    assert bal["USDT"]["used"] == pytest.approx(0.01 * low)
    opens = await spot.fetch_open_orders(SYM)
    assert [x["id"] for x in opens] == [o["id"]]
    c = await spot.cancel_order(None, SYM, {"clientOrderId": "cid-1"})
    assert c["id"] == o["id"] and c["status"] == "canceled"
    assert (await spot.fetch_balance())["USDT"]["used"] == 0
    assert await spot.fetch_open_orders(SYM) == []
    with pytest.raises(ccxt.OrderNotFound):
        await spot.cancel_order(o["id"], SYM)


async def test_spot_rejections_map_to_ccxt_errors(emu, spot):
    """Duplicate clientOrderId, LOT_SIZE/notional filters and balance use Binance's codes."""
    low = BARS.open[0] - 5000
    await spot.create_order(SYM, "limit", "buy", 0.01, low, {"clientOrderId": "dup"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        await spot.create_order(SYM, "limit", "buy", 0.01, low, {"clientOrderId": "dup"})
    with pytest.raises(ccxt.BadRequest, match="MIN_NOTIONAL"):  # -1013 → BadRequest in ccxt
        await spot.create_order(SYM, "market", "buy", 0.0001)
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):  # ccxt matches the text LOT_SIZE first
        await spot.privatePostOrder({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.000011"})
    with pytest.raises(ccxt.InsufficientFunds):
        await spot.create_order(SYM, "market", "buy", 50)
    with pytest.raises(ccxt.InsufficientFunds):
        await spot.create_order(SYM, "market", "sell", 1)
    emu.advance_to(BARS.ts_ms[-1] + 1)
    with pytest.raises(ccxt.MarketClosed):
        await spot.create_order(SYM, "market", "buy", 0.01)


async def test_spot_stop_loss_limit_triggers_and_fills_at_limit(emu, spot):
    """A STOP_LOSS_LIMIT sell locks BTC, triggers when a bar's low reaches the stop, fills at its limit."""
    await spot.create_order(SYM, "market", "buy", 0.01)
    i, stop = _stop_below(0)
    o = await spot.create_order(SYM, "STOP_LOSS_LIMIT", "sell", 0.009, stop, {"stopPrice": stop, "clientOrderId": "sl"})
    assert o["status"] == "open"
    bal = await spot.fetch_balance()
    assert bal["BTC"]["used"] == pytest.approx(0.009)
    emu.advance_to(BARS.ts_ms[i])  # bar i not yet happened
    assert (await spot.fetch_order(o["id"], SYM))["status"] == "open"
    emu.advance_to(BARS.ts_ms[i] + 1)
    done = await spot.fetch_order(None, SYM, {"clientOrderId": "sl"})
    assert done["status"] == "closed" and done["average"] == stop and done["filled"] == 0.009
    assert done["info"]["isWorking"] is True
    bal = await spot.fetch_balance()
    assert bal["BTC"]["used"] == 0 and bal["BTC"]["free"] == pytest.approx(0.00099)
    trades = await spot.fetch_my_trades(SYM)
    assert trades[-1]["timestamp"] == BARS.ts_ms[i] and trades[-1]["fee"]["currency"] == "USDT"
    with pytest.raises(ccxt.OrderImmediatelyFillable):  # stop above the market: Binance -2010
        await spot.create_order(SYM, "STOP_LOSS_LIMIT", "sell", 0.0009, BARS.open[0] + 5000,
                                {"stopPrice": BARS.open[0] + 5000})


async def test_usdm_reduce_only_stop_market_goes_through_algo_service(emu, usdm):
    """ccxt routes a USDⓈ-M stop to /fapi/v1/algoOrder; it triggers on advance_to and closes the long."""
    o = await usdm.create_order(FSYM, "market", "buy", 0.01)
    assert o["status"] == "closed" and o["average"] == BARS.open[0]
    i, stop = _stop_below(0)
    s = await usdm.create_order(FSYM, "market", "sell", 0.01, None, {"stopPrice": stop, "reduceOnly": True})
    assert s["info"]["algoType"] == "CONDITIONAL" and s["info"]["orderType"] == "STOP_MARKET"
    assert s["status"] == "open" and s["reduceOnly"] is True
    opens = await usdm.fetch_open_orders(FSYM, params={"trigger": True})
    assert [x["id"] for x in opens] == [s["id"]]
    emu.advance_to(BARS.ts_ms[i] + 1)
    algo = await usdm.fetch_order(s["id"], FSYM, {"trigger": True})
    assert algo["status"] == "closed" and algo["info"]["algoStatus"] == "FINISHED"
    fill = await usdm.fetch_order(algo["info"]["actualOrderId"], FSYM)
    assert fill["status"] == "closed" and fill["average"] == min(stop, BARS.open[i]) and fill["reduceOnly"] is True
    positions = await usdm.fetch_positions([FSYM])
    assert positions == []
    acct = emu.engine.account(KEY)
    assert acct.positions["BTCUSDT"].amt == 0
    trades = await usdm.fetch_my_trades(FSYM)
    assert len(trades) == 2 and float(trades[1]["info"]["realizedPnl"]) == pytest.approx(0.01 * (fill["average"] - BARS.open[0]))


async def test_usdm_reduce_only_and_margin_rejections(emu, usdm):
    """reduceOnly that would open a position → -2022 InvalidOrder; too large an order → -2019 InsufficientFunds."""
    with pytest.raises(ccxt.InvalidOrder, match="-2022"):
        await usdm.create_order(FSYM, "market", "sell", 0.01, None, {"reduceOnly": True})
    with pytest.raises(ccxt.InsufficientFunds, match="-2019"):
        await usdm.create_order(FSYM, "market", "buy", 10)
    with pytest.raises(ccxt.ExchangeError, match="-4120"):  # conditional type on the plain order endpoint
        await usdm.fapiPrivatePostOrder({"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET",
                                         "quantity": "0.01", "stopPrice": "1000"})


async def test_balance_positions_open_orders_agree_with_engine(emu, usdm):
    """fetch_balance/fetch_positions/fetch_open_orders report the engine's numbers."""
    await usdm.create_order(FSYM, "market", "buy", 0.02)
    limit = await usdm.create_order(FSYM, "limit", "buy", 0.01, BARS.open[0] - 3000)
    emu.advance_to(BARS.ts_ms[3])
    eng, acct = emu.engine, emu.engine.account(KEY)
    bal = await usdm.fetch_balance()
    assert bal["USDT"]["total"] == pytest.approx(float(acct.wallet + eng.unrealized(acct, "BTCUSDT")))  # marginBalance
    assert bal["USDT"]["free"] == pytest.approx(float(eng.available_usdm(acct)))
    (pos,) = await usdm.fetch_positions([FSYM])
    assert pos["contracts"] == 0.02 and pos["side"] == "long" and pos["entryPrice"] == BARS.open[0]
    assert pos["unrealizedPnl"] == pytest.approx(0.02 * (BARS.close[2] - BARS.open[0]))
    opens = await usdm.fetch_open_orders(FSYM)
    assert [o["id"] for o in opens] == [limit["id"]]
    state = emu.state()["accounts"][KEY]["usdm"]
    assert Decimal(state["positions"]["BTCUSDT"]["positionAmt"]) == Decimal("0.02")


async def test_bad_secret_and_unknown_key_are_authentication_errors(emu):
    """A wrong secret gets -1022 and an unknown key -2015: both ccxt AuthenticationError."""
    bad = ccxt.binance(emu.ccxt_config("spot", KEY, "wrong-secret", timeout_ms=1000))
    nokey = ccxt.binance(emu.ccxt_config("spot", "nobody", "x", timeout_ms=1000))
    try:
        with pytest.raises(ccxt.AuthenticationError, match="-1022"):
            await bad.fetch_balance()
        with pytest.raises(ccxt.AuthenticationError, match="-2015"):
            await nokey.fetch_balance()
    finally:
        await bad.close()
        await nokey.close()


FAULT_CASES = [
    (Fault("http_5xx", status=500), ccxt.OperationFailed),  # -1001 JSON body
    (Fault("http_5xx", status=502), ccxt.ExchangeNotAvailable),
    (Fault("http_5xx", status=503), ccxt.OperationFailed),  # -1008 JSON body
    (Fault("rate_limit_429"), ccxt.DDoSProtection),
    (Fault("rate_limit_1003"), ccxt.DDoSProtection),
    (Fault("rate_limit_1003", status=400), ccxt.RateLimitExceeded),
    (Fault("timestamp_1021"), ccxt.InvalidNonce),
]


@pytest.mark.parametrize(("fault", "exc"), FAULT_CASES, ids=lambda x: getattr(x, "kind", "") + str(getattr(x, "status", "")))
async def test_pre_action_faults_raise_and_do_not_act(emu, spot, fault, exc):
    """5xx/429/-1003/-1021 faults raise the mapped ccxt error and create no order."""
    emu.install_faults(fault)
    with pytest.raises(exc):
        await spot.create_order(SYM, "market", "buy", 0.01)
    assert all(not orders for orders in emu.engine.account(KEY).orders.values())
    assert emu.faults.applied[fault.kind.value] == 1
    o = await spot.create_order(SYM, "market", "buy", 0.01)  # the fault was used up
    assert o["status"] == "closed"


@pytest.mark.parametrize("kind", ["timeout_after_accept", "drop_response"])
async def test_accepted_then_lost_answer_leaves_the_order_on_the_exchange(emu, spot, kind):
    """After a timeout/dropped answer the order exists: the client must look it up, not resubmit."""
    emu.install_faults(Fault(kind, endpoint="order_create", seconds=3))
    t0 = time.monotonic()
    with pytest.raises(ccxt.RequestTimeout if kind == "timeout_after_accept" else ccxt.NetworkError):
        await spot.create_order(SYM, "market", "buy", 0.01, None, {"clientOrderId": f"lost-{kind}"})
    assert time.monotonic() - t0 < 2.5
    found = await spot.fetch_order(None, SYM, {"clientOrderId": f"lost-{kind}"})
    assert found["status"] == "closed" and found["filled"] == 0.01
    assert emu.faults.applied[kind] == 1


async def test_unknown_order_faults_on_existing_order(emu, spot):
    """-2011 on cancel and -2013 on query answer OrderNotFound although the order exists."""
    o = await spot.create_order(SYM, "limit", "buy", 0.01, BARS.open[0] - 5000)
    emu.install_faults(Fault("unknown_order_2011", endpoint="order_cancel"), Fault("unknown_order_2013"))
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        await spot.fetch_order(o["id"], SYM)
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):
        await spot.cancel_order(o["id"], SYM)
    assert (await spot.fetch_order(o["id"], SYM))["status"] == "open"
    assert emu.faults.applied == {"unknown_order_2011": 1, "unknown_order_2013": 1}


async def test_insufficient_balance_fault_spot_and_usdm(emu, spot, usdm):
    """Forced -2010 (spot) and -2019 (USDⓈ-M) both raise InsufficientFunds."""
    emu.install_faults(Fault("insufficient_balance", count=2))
    with pytest.raises(ccxt.InsufficientFunds, match="insufficient balance"):
        await spot.create_order(SYM, "market", "buy", 0.01)
    with pytest.raises(ccxt.InsufficientFunds, match="-2019"):
        await usdm.create_order(FSYM, "market", "buy", 0.01)
    assert emu.faults.applied["insufficient_balance"] == 2


async def test_partial_fill_fault(emu, spot):
    """A partial market fill expires the rest; a partial limit fill stays open PARTIALLY_FILLED."""
    emu.install_faults(Fault("partial_fill", fraction=0.4, count=2))
    o = await spot.create_order(SYM, "market", "buy", 0.01)
    assert o["status"] == "expired" and o["info"]["status"] == "EXPIRED" and o["filled"] == 0.004
    lim = await spot.create_order(SYM, "limit", "buy", 0.01, BARS.open[0] + 100)  # marketable
    assert lim["info"]["status"] == "PARTIALLY_FILLED" and lim["filled"] == 0.004 and lim["status"] == "open"


async def test_delayed_fill_fault(emu, spot):
    """A delayed market order stays NEW until the next advance_to (or D wall-clock seconds)."""
    emu.install_faults(Fault("delayed_fill", seconds=0), Fault("delayed_fill", seconds=0.2))
    o = await spot.create_order(SYM, "market", "buy", 0.01)
    assert o["status"] == "open" and o["filled"] == 0
    emu.advance_to(BARS.ts_ms[2] + 1)
    done = await spot.fetch_order(o["id"], SYM)
    assert done["status"] == "closed" and done["average"] == BARS.open[0]
    w = await spot.create_order(SYM, "market", "buy", 0.01)
    assert w["status"] == "open"
    await asyncio.sleep(0.4)
    assert (await spot.fetch_order(w["id"], SYM))["average"] == BARS.open[3]


async def _signed(session: aiohttp.ClientSession, method: str, path: str, params: dict, secret: str = SECRET):
    q = urlencode(params | {"timestamp": int(time.time() * 1000)})
    url = f"https://api.binance.com{path}?{q}&signature={sign(q, secret)}"
    async with session.request(method, yarl.URL(url, encoded=True), headers={"X-MBX-APIKEY": KEY}) as r:
        return r.status, await r.json()


async def test_control_endpoints_are_signed_and_work(emu):
    """/_emulator/advance, /state and /faults work with a signed request and refuse a bad one."""
    s = emu.session()
    status, body = await _signed(s, "POST", "/_emulator/advance", {"ts_ms": BARS.ts_ms[4]})
    assert status == 200 and body["clock_ms"] == BARS.ts_ms[4] and emu.engine.next_bar == 4
    status, body = await _signed(s, "POST", "/_emulator/advance", {"ts_ms": BARS.ts_ms[9]}, secret="nope")
    assert status == 400 and body["code"] == -1022 and emu.engine.clock_ms == BARS.ts_ms[4]
    faults = json.dumps([{"kind": "http_5xx", "endpoint": "account", "count": 2}]).replace(" ", "")
    status, body = await _signed(s, "POST", "/_emulator/faults", {"faults": faults})
    assert status == 200 and body["pending"][0]["remaining"] == 2
    status, body = await _signed(s, "GET", "/_emulator/state", {})
    assert status == 200 and body["clock_ms"] == BARS.ts_ms[4] and KEY in body["accounts"]


async def test_loopback_session_refuses_other_hosts(emu):
    """The loopback session never leaves loopback: other names and IP literals are refused."""
    s = emu.session()
    for url in ("https://example.com/", "https://8.8.8.8/"):
        with pytest.raises((LoopbackRefused, aiohttp.ClientConnectorError)):
            async with s.get(url):
                pass
    async with s.get("https://fapi.binance.com/fapi/v1/time") as r:
        assert r.status == 200 and abs((await r.json())["serverTime"] - time.time() * 1000) < 5000


def test_error_texts_match_the_docs_fixture():
    """The emulator's error bodies equal the docs-derived fixture's texts."""
    fixture = {(x["body"]["code"], x["body"]["msg"]) for x in load_fixture("spot_rest_errors.json")["examples"]}
    ours = [E.unknown_order(), E.no_such_order(), E.insufficient_balance(), E.duplicate_order(),
            E.filter_failure("LOT_SIZE"), E.timestamp_outside(), E.bad_signature(), E.invalid_symbol(),
            E.invalid_api_key()]
    for err in ours:
        assert (err.code, err.msg) in fixture


async def test_standalone_process_prints_port_and_ca(tmp_path):
    """``python -m testbed.emulator`` prints its port and CA path; another process can use them."""
    import sys

    from testbed.emulator import ccxt_config, loopback_session

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "testbed.emulator", "--limit", "50", "--ca-out", str(tmp_path / "ca.pem"),
        "--api-key", "pk", "--secret", "ps", stdout=asyncio.subprocess.PIPE)
    try:
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 15))
        assert info["ca_path"] == str(tmp_path / "ca.pem") and info["port"] > 0
        session = loopback_session(info["port"], info["ca_path"])
        ex = ccxt.binance(ccxt_config(session, "pk", "ps", "spot", 2000))
        try:
            await ex.load_markets()
            bal = await ex.fetch_balance()
            assert bal["USDT"]["free"] == 10000.0
        finally:
            await ex.close()  # ccxt does not close a session it did not create
            assert not session.closed
            await session.close()
    finally:
        proc.terminate()
        await proc.wait()


# ------------------------------------------------------------------------------ IOC / FOK
async def test_spot_ioc_limit_fills_at_the_open_or_expires(emu, spot):
    """IOC LIMIT: crossing fills at the next open (taker); the rest EXPIRES at once, locks released."""
    above, below = BARS.open[0] + 100, BARS.open[0] - 100
    o = await spot.create_order(SYM, "limit", "buy", 0.01, above, {"timeInForce": "IOC", "newClientOrderId": "ioc-1"})
    assert o["status"] == "closed" and o["filled"] == 0.01 and o["average"] == BARS.open[0]
    assert o["info"]["timeInForce"] == "IOC" and o["info"]["fills"][0]["price"] == f"{BARS.open[0]:.8f}"
    x = await spot.create_order(SYM, "limit", "buy", 0.01, below, {"timeInForce": "IOC", "newClientOrderId": "ioc-2"})
    assert x["status"] == "expired" and x["filled"] == 0 and x["remaining"] == 0.01
    info = x["info"]
    assert info["status"] == "EXPIRED" and info["executedQty"] == "0.00000000" and info["fills"] == []
    assert info["cummulativeQuoteQty"] == "0.00000000" and info["origQty"] == "0.01000000"
    bal = await spot.fetch_balance()
    assert bal["USDT"]["used"] == 0 and await spot.fetch_open_orders(SYM) == []
    emu.install_faults(Fault("partial_fill", fraction=0.4))
    p = await spot.create_order(SYM, "limit", "sell", 0.009, below, {"timeInForce": "IOC", "newClientOrderId": "ioc-3"})
    assert p["status"] == "expired" and p["filled"] == 0.0036 and p["remaining"] == pytest.approx(0.0054)
    assert p["info"]["status"] == "EXPIRED" and len(p["info"]["fills"]) == 1
    assert Decimal(p["info"]["cummulativeQuoteQty"]) == Decimal("0.0036") * Decimal(repr(BARS.open[0]))
    bal = await spot.fetch_balance()
    assert bal["BTC"]["used"] == 0 and bal["BTC"]["free"] == pytest.approx(0.00999 - 0.0036)
    emu.advance_to(BARS.ts_ms[20])  # nothing rests: later bars change nothing
    got = await spot.fetch_order(None, SYM, {"clientOrderId": "ioc-2"})
    assert got["status"] == "expired" and got["filled"] == 0


async def test_spot_fok_is_all_or_nothing(emu, spot):
    """FOK: fills completely at the open, or EXPIRES with executedQty 0 (also under partial_fill)."""
    above, below = BARS.open[0] + 100, BARS.open[0] - 100
    o = await spot.create_order(SYM, "limit", "buy", 0.01, above, {"timeInForce": "FOK", "newClientOrderId": "fok-1"})
    assert o["status"] == "closed" and o["filled"] == 0.01 and o["average"] == BARS.open[0]
    x = await spot.create_order(SYM, "limit", "buy", 0.01, below, {"timeInForce": "FOK", "newClientOrderId": "fok-2"})
    assert x["status"] == "expired" and x["filled"] == 0 and x["info"]["fills"] == []
    emu.install_faults(Fault("partial_fill", fraction=0.5))
    y = await spot.create_order(SYM, "limit", "buy", 0.01, above, {"timeInForce": "FOK", "newClientOrderId": "fok-3"})
    assert y["status"] == "expired" and y["filled"] == 0 and y["info"]["executedQty"] == "0.00000000"
    assert (await spot.fetch_balance())["USDT"]["used"] == 0
    assert len(await spot.fetch_my_trades(SYM)) == 1


async def test_usdm_ioc_and_fok(emu, usdm):
    """USDⓈ-M IOC/FOK: same rules; an expired rest leaves no open order and no margin held."""
    above, below = BARS.open[0] + 100, BARS.open[0] - 100
    x = await usdm.create_order(FSYM, "limit", "buy", 0.01, below, {"timeInForce": "IOC", "newClientOrderId": "fi-1"})
    assert x["status"] == "expired" and x["filled"] == 0 and x["info"]["status"] == "EXPIRED"
    emu.install_faults(Fault("partial_fill", fraction=0.4))
    p = await usdm.create_order(FSYM, "limit", "buy", 0.01, above, {"timeInForce": "IOC", "newClientOrderId": "fi-2"})
    assert p["status"] == "expired" and p["filled"] == 0.004 and p["average"] == BARS.open[0]
    f = await usdm.create_order(FSYM, "limit", "buy", 0.01, above, {"timeInForce": "FOK", "newClientOrderId": "fi-3"})
    assert f["status"] == "closed" and f["filled"] == 0.01
    assert await usdm.fetch_open_orders(FSYM) == []
    acct = emu.engine.account(KEY)
    assert acct.positions["BTCUSDT"].amt == Decimal("0.014") and emu.engine.open_order_im(acct, "BTCUSDT") == 0


# -------------------------------------------------------------------------- cancelReplace
async def _btc_under_stop(spot, cid: str = "sl-old") -> tuple[float, dict, int, float]:
    """Buy 0.01 BTC (0.00999 after fee) and lock all of it under a STOP_LOSS_LIMIT sell."""
    await spot.create_order(SYM, "market", "buy", 0.01)
    i, stop = _stop_below(0)
    qty = 0.00999
    o = await spot.create_order(SYM, "STOP_LOSS_LIMIT", "sell", qty, stop, {"stopPrice": stop, "newClientOrderId": cid})
    return qty, o, i, stop


async def test_cancel_replace_stop_by_market_sell(emu, spot):
    """edit_order(None, ..., {'cancelOrigClientOrderId'}) swaps a stop holding all BTC for a market sell."""
    qty, old, _, _ = await _btc_under_stop(spot)
    with pytest.raises(ccxt.InsufficientFunds):  # the stop locks the BTC: a plain sell cannot go
        await spot.create_order(SYM, "market", "sell", qty)
    new = await spot.edit_order(None, SYM, "market", "sell", qty, None,
                                {"cancelOrigClientOrderId": "sl-old", "newClientOrderId": "mkt-new"})
    assert new["id"] != old["id"] and new["clientOrderId"] == "mkt-new"
    assert new["status"] == "closed" and new["filled"] == qty and new["average"] == BARS.open[0]
    assert (await spot.fetch_order(old["id"], SYM))["status"] == "canceled"
    bal = await spot.fetch_balance()
    assert bal["BTC"]["free"] == 0 and bal["BTC"]["used"] == 0
    assert await spot.fetch_open_orders(SYM) == []


async def test_cancel_replace_stop_by_higher_stop(emu, spot):
    """A stop replaced (by orderId, and by clientOrderId) with a higher one: one lock, the new one triggers."""
    qty, old, i, stop = await _btc_under_stop(spot)
    emu.advance_to(BARS.ts_ms[1])  # bar 0 (its open is the stop + 1) happened; the market is above
    s2 = await spot.edit_order(old["id"], SYM, "STOP_LOSS_LIMIT", "sell", qty, stop + 1,
                               {"stopPrice": stop + 1, "newClientOrderId": "sl-2"})
    assert s2["status"] == "open" and s2["clientOrderId"] == "sl-2" and s2["triggerPrice"] == stop + 1
    s3 = await spot.edit_order(None, SYM, "limit", "sell", qty, stop + 2,
                               {"stopPrice": stop + 2, "cancelOrigClientOrderId": "sl-2", "newClientOrderId": "sl-3"})
    assert s3["info"]["type"] == "STOP_LOSS_LIMIT" and s3["info"]["stopPrice"] == f"{stop + 2:.8f}"
    assert [o["clientOrderId"] for o in await spot.fetch_open_orders(SYM)] == ["sl-3"]
    bal = await spot.fetch_balance()
    assert bal["BTC"]["used"] == pytest.approx(qty) and bal["BTC"]["free"] == 0
    emu.advance_to(BARS.ts_ms[i] + 1)
    done = await spot.fetch_order(None, SYM, {"clientOrderId": "sl-3"})
    assert done["status"] == "closed" and done["average"] == stop + 2
    states = {o.client_order_id: o.status.value for o in emu.engine.account(KEY).orders["spot"].values()}
    assert [states[c] for c in ("sl-old", "sl-2", "sl-3")] == ["CANCELED", "CANCELED", "FILLED"]


async def test_cancel_replace_cancel_failure_places_nothing(emu, spot):
    """Cancel of a filled/unknown order: -2022 (HTTP 400) → ccxt BadResponse, no new order."""
    filled = await spot.create_order(SYM, "market", "buy", 0.01, None, {"newClientOrderId": "done"})
    before = emu.state()["accounts"][KEY]["spot"]["balances"]
    with pytest.raises(ccxt.BadResponse, match="-2022") as ei:
        await spot.edit_order(filled["id"], SYM, "market", "sell", 0.005, None, {"newClientOrderId": "never"})
    body = json.loads(str(ei.value).split(" ", 1)[1])
    assert body["data"] == {"cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                            "cancelResponse": {"code": -2011, "msg": "Unknown order sent."}, "newOrderResponse": None}
    assert not isinstance(ei.value, ccxt.ExchangeError) and isinstance(ei.value, ccxt.OperationFailed)
    with pytest.raises(ccxt.OrderNotFound):
        await spot.fetch_order(None, SYM, {"clientOrderId": "never"})
    assert emu.state()["accounts"][KEY]["spot"]["balances"] == before
    status, raw = await _signed(emu.session(), "POST", "/api/v3/order/cancelReplace", {
        "symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.005",
        "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrigClientOrderId": "nobody", "newClientOrderId": "never2"})
    assert status == 400 and raw["code"] == -2022 and raw["msg"] == "Order cancel-replace failed."
    assert raw["data"]["newOrderResult"] == "NOT_ATTEMPTED"
    status, raw = await _signed(emu.session(), "POST", "/api/v3/order/cancelReplace", {  # ALLOW_FAILURE places it
        "symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.005",
        "cancelReplaceMode": "ALLOW_FAILURE", "cancelOrigClientOrderId": "nobody", "newClientOrderId": "anyway"})
    assert status == 409 and raw["code"] == -2021 and raw["msg"] == "Order cancel-replace partially failed."
    assert raw["data"]["cancelResult"] == "FAILURE" and raw["data"]["newOrderResult"] == "SUCCESS"
    assert raw["data"]["newOrderResponse"]["status"] == "FILLED"
    assert (await spot.fetch_order(None, SYM, {"clientOrderId": "anyway"}))["filled"] == 0.005


async def test_cancel_replace_new_order_failure_leaves_old_cancelled(emu, spot):
    """Cancel ok, new order rejected by the engine: -2021 (HTTP 409) → BadResponse; old stays CANCELED.

    A filter failure of the new order is checked first: plain -1013, nothing cancelled."""
    qty, old, _, _ = await _btc_under_stop(spot)
    with pytest.raises(ccxt.BadRequest, match="MIN_NOTIONAL"):  # -1013, checked before the cancel
        await spot.edit_order(old["id"], SYM, "market", "sell", 0.0001, None, {"newClientOrderId": "tiny"})
    assert (await spot.fetch_order(old["id"], SYM))["status"] == "open"
    high = BARS.open[0] + 500  # a sell stop above the market would trigger immediately
    with pytest.raises(ccxt.BadResponse, match="-2021") as ei:
        await spot.edit_order(old["id"], SYM, "STOP_LOSS_LIMIT", "sell", qty, high,
                              {"stopPrice": high, "newClientOrderId": "too-high"})
    data = json.loads(str(ei.value).split(" ", 1)[1])["data"]
    assert data["cancelResult"] == "SUCCESS" and data["newOrderResult"] == "FAILURE"
    assert data["cancelResponse"]["status"] == "CANCELED" and data["cancelResponse"]["orderId"] == int(old["id"])
    assert data["newOrderResponse"] == {"code": -2010, "msg": "Stop price would trigger immediately."}
    assert (await spot.fetch_order(old["id"], SYM))["status"] == "canceled"
    assert (await spot.fetch_balance())["BTC"]["free"] == pytest.approx(qty)
    o2 = await spot.create_order(SYM, "limit", "sell", qty, high, {"newClientOrderId": "rest"})
    emu.install_faults(Fault("insufficient_balance", endpoint="order_create"))
    status, raw = await _signed(emu.session(), "POST", "/api/v3/order/cancelReplace", {
        "symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": str(qty),
        "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrderId": o2["id"], "newClientOrderId": "nb"})
    assert status == 409 and raw["code"] == -2021 and raw["data"]["newOrderResult"] == "FAILURE"
    assert raw["data"]["newOrderResponse"]["code"] == -2010
    assert (await spot.fetch_order(o2["id"], SYM))["status"] == "canceled"


@pytest.mark.parametrize("kind", ["timeout_after_accept", "drop_response"])
async def test_cancel_replace_lost_answer_both_legs_done(emu, spot, kind):
    """A timed-out / dropped cancelReplace answer: the cancel and the new order both happened."""
    qty, old, _, _ = await _btc_under_stop(spot)
    emu.install_faults(Fault(kind, endpoint="order_create", seconds=3))
    with pytest.raises(ccxt.RequestTimeout if kind == "timeout_after_accept" else ccxt.NetworkError):
        await spot.edit_order(None, SYM, "market", "sell", qty, None,
                              {"cancelOrigClientOrderId": "sl-old", "newClientOrderId": "lost-new"})
    assert (await spot.fetch_order(old["id"], SYM))["status"] == "canceled"
    new = await spot.fetch_order(None, SYM, {"clientOrderId": "lost-new"})
    assert new["status"] == "closed" and new["filled"] == qty
    assert emu.faults.applied[kind] == 1


async def test_cancel_replace_into_ioc_with_partial_fill(emu, spot):
    """cancelReplace into a LIMIT IOC under partial_fill: part fills, the rest EXPIRED, nothing locked."""
    qty, old, _, _ = await _btc_under_stop(spot)
    emu.install_faults(Fault("partial_fill", fraction=0.5))
    new = await spot.edit_order(None, SYM, "limit", "sell", qty, BARS.open[0] - 100,
                                {"timeInForce": "IOC", "cancelOrigClientOrderId": "sl-old", "newClientOrderId": "ioc"})
    assert new["status"] == "expired" and 0 < new["filled"] < qty and new["average"] == BARS.open[0]
    bal = await spot.fetch_balance()
    assert bal["BTC"]["used"] == 0 and bal["BTC"]["free"] == pytest.approx(qty - new["filled"])


# ------------------------------------------------------------------------ algo → actual order
async def test_usdm_triggered_algo_points_to_its_fill(emu, usdm):
    """A triggered STOP_MARKET algo, fetched by clientAlgoId, is FINISHED with actualOrderId → the fill."""
    await usdm.create_order(FSYM, "market", "buy", 0.01)
    i, stop = _stop_below(0)
    s = await usdm.create_order(FSYM, "market", "sell", 0.01, None,
                                {"stopPrice": stop, "reduceOnly": True, "clientOrderId": "algo-sl"})
    assert s["info"]["clientAlgoId"] == "algo-sl" and s["info"]["actualOrderId"] == ""
    emu.advance_to(BARS.ts_ms[i] + 1)
    algo = await usdm.fetch_order(None, FSYM, {"origClientOrderId": "algo-sl", "trigger": True})
    assert algo["id"] == s["id"] and algo["clientOrderId"] == "algo-sl"
    assert algo["info"]["algoStatus"] == "FINISHED" and algo["status"] == "closed"
    actual = algo["info"]["actualOrderId"]
    assert actual and actual.isdigit()
    fill = await usdm.fetch_order(actual, FSYM)
    assert fill["id"] == actual and fill["status"] == "closed" and fill["filled"] == 0.01
    assert fill["average"] == min(stop, BARS.open[i]) and fill["info"]["origType"] == "STOP_MARKET"
    assert float(algo["info"]["actualQty"]) == 0.01
