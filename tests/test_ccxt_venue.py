"""The executor trading through the real ccxt client against the local Binance emulator (HTTPS on
loopback): entries, protective stops, exits, and every fault mode of issue #4.

Each fault test ends with the same four checks (:func:`assert_end_state`): no duplicate order on
the exchange (one order per client order id), no lost fill (the ledger equals the exchange), no
unprotected position (a position has exactly one open stop of ours; flat has none), and the
confirmation status the fault calls for.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from executor.core import ExecutorCore, Outcome
from executor.metrics import ExecutorMetrics
from executor.orders import OrderOps, Unresolved
from executor.planning import decision_order
from executor.venue.base import CORE, OrderType
from executor.venue.ccxt_venue import CcxtVenue
from executor.venue.replay_clock import clock_sync
from executor.venue.retry import RetryPolicy
from foundation.barcsv import bundled_path, load_bars
from foundation.bars import Bars
from protocol import DecisionReason, Instrument, Intent, RejectCode, Side, Status, TradeDecision
from testbed.emulator import BinanceEmulator, Fault

KEY, SECRET = "test-key", "test-secret"
CASH = 10_000.0
MS = 1_000_000
USDM = "BTC/USDT:USDT"
NOW = 1_900_000_000_000_000_000  # wall clock for the journal (decisions never expire here)


@pytest.fixture(scope="module")
def bars() -> Bars:
    return load_bars(bundled_path(), limit=400)


@dataclass
class Rig:
    emu: BinanceEmulator
    core: ExecutorCore
    bars: Bars
    path: Path

    def bar_ns(self, i: int) -> int:
        return self.bars.ts_ms[i] * MS

    def state(self) -> dict[str, Any]:
        return self.emu.state()["accounts"][KEY]["usdm"]


async def open_core(emu: BinanceEmulator, path: Path, market: str = "usdm", *, allow_short: bool = False,
                    metrics: ExecutorMetrics | None = None) -> ExecutorCore:  # fmt: skip
    config = emu.ccxt_config(market, KEY, SECRET, timeout_ms=1_000)
    exchange = "binanceusdm" if market == "usdm" else "binance"
    venue = CcxtVenue(exchange, config, before_order=clock_sync(config["session"], KEY, SECRET),
                      recv_window_ms=500, ambiguity_margin_s=0.2)  # a lost request is dead after 0.7 s
    ops = OrderOps(venue, RetryPolicy(attempts=4, deadline_s=5.0, base_s=0.02, cap_s=0.1),
                   absent_checks=3, absent_gap_s=0.05, poll_s=0.05, fill_timeout_s=1.5, metrics=metrics)  # fmt: skip
    return await ExecutorCore.open(path, venue, CASH, ops=ops, allow_short=allow_short)


@pytest.fixture
async def rig(tmp_path: Path, bars: Bars) -> AsyncIterator[Rig]:
    async with BinanceEmulator(bars) as emu:
        emu.create_account(KEY, SECRET, usdm_usdt=str(CASH))
        core = await open_core(emu, tmp_path / "executor.sqlite")
        r = Rig(emu, core, bars, tmp_path / "executor.sqlite")
        try:
            yield r
        finally:
            await r.core.aclose()


def decision(
    did: int, market_ts_ns: int, *, side: Side = Side.BUY, intent: Intent = Intent.OPEN, qty: float = 0.02,
    ref: float = 46_500.0, stop: float = 0.0, slip: int = 10_000, reason: DecisionReason = DecisionReason.SIGNAL,
) -> TradeDecision:  # fmt: skip
    return TradeDecision(
        decision_id=did, instrument=Instrument.symbol(USDM), side=side, intent=intent, reason=reason, quantity=qty,
        reference_price=ref, max_slippage_bps=slip, created_at_ns=NOW - 1, expires_at_ns=2**64 - 1,
        market_ts_ns=market_ts_ns, stop_price=stop,
    )  # fmt: skip


def entry(r: Rig, did: int = 1, bar: int = 10, **kw: Any) -> TradeDecision:
    ref = r.bars.close[bar - 1]
    kw.setdefault("stop", round(ref * 0.92, 1))
    return decision(did, r.bar_ns(bar), ref=ref, **kw)


def exit_(r: Rig, did: int, bar: int, qty: float | None = None) -> TradeDecision:
    held = r.core.ledger.position(Instrument.symbol(USDM))
    return decision(did, r.bar_ns(bar), side=Side.SELL, intent=Intent.CLOSE, qty=qty or held, ref=r.bars.close[bar - 1])


async def on_decision(r: Rig, d: TradeDecision) -> Outcome:
    """As the executor app does: an execution the venue left ambiguous stays in flight and is
    tried again (the retransmitted decision resolves it, looking the order up first)."""
    for _ in range(5):
        try:
            return await r.core.on_decision(d, NOW)
        except Unresolved:
            await asyncio.sleep(0.05)
    raise AssertionError(f"decision {d.decision_id} still unresolved")


def assert_end_state(r: Rig, outcome: Outcome, status: Status) -> None:
    """No duplicate, no lost fill, no unprotected position, the right status."""
    st = r.state()
    spawned = {str(a.get("actualOrderId")) for a in st["algo_orders"]}  # orders a triggered stop placed
    coids = Counter(o["clientOrderId"] for o in st["orders"] if str(o["orderId"]) not in spawned)
    coids += Counter(a["clientAlgoId"] for a in st["algo_orders"])
    assert all(n == 1 for n in coids.values()), f"duplicate orders on the exchange: {coids}"
    pos = st["positions"].get("BTCUSDT", {"positionAmt": "0", "entryPrice": "0"})
    held = r.core.ledger.position(Instrument.symbol(USDM))
    assert held == pytest.approx(float(pos["positionAmt"]), abs=1e-12), "ledger position != exchange position"
    # futures wallet = cash + open notional at cost for a long-only ledger (see executor.ledger)
    wallet = float(st["wallet"])
    at_cost = r.core.ledger.cash + held * r.core.ledger.avg_cost(Instrument.symbol(USDM))
    assert at_cost == pytest.approx(wallet, abs=1e-6), f"ledger {at_cost} != exchange wallet {wallet}"
    open_stops = [a for a in st["algo_orders"] if a["algoStatus"] == "NEW"]
    assert len(open_stops) == (1 if held > 0 else 0), f"stops {open_stops} for position {held}"
    if held > 0:
        assert float(open_stops[0]["quantity"]) == pytest.approx(held) and open_stops[0]["reduceOnly"] in (True, "true")
    assert outcome.confirmation.status is status, outcome


async def test_entry_fills_and_places_reduce_only_stop_on_exchange(rig: Rig) -> None:
    out = await on_decision(rig, entry(rig))
    c = out.confirmation
    assert c.status is Status.FILLED and c.executed_qty == pytest.approx(0.02)
    assert c.avg_price == pytest.approx(rig.bars.open[10])  # first bar at or after the decision's time
    assert c.fee == pytest.approx(0.02 * rig.bars.open[10] * 0.0005, rel=1e-6)  # taker 5 bps (commissionRate fixture)
    assert_end_state(rig, out, Status.FILLED)
    stop = [a for a in rig.state()["algo_orders"] if a["algoStatus"] == "NEW"][0]
    assert float(stop["triggerPrice"]) == pytest.approx(round(rig.bars.close[9] * 0.92, 1))
    assert stop["clientAlgoId"] == rig.core.ids.stop(1)


async def test_exit_closes_position_and_leaves_no_orphan_stop(rig: Rig) -> None:
    await on_decision(rig, entry(rig))
    out = await on_decision(rig, exit_(rig, 2, 20))
    assert out.confirmation.status is Status.FILLED and out.confirmation.side is Side.SELL
    assert out.confirmation.avg_price == pytest.approx(rig.bars.open[20])
    assert_end_state(rig, out, Status.FILLED)
    assert rig.core.gateway.stops == {}


async def test_protect_moves_stop_new_before_old_is_cancelled(rig: Rig) -> None:
    await on_decision(rig, entry(rig))
    held = rig.core.ledger.position(Instrument.symbol(USDM))
    move = decision(2, rig.bar_ns(15), side=Side.SELL, intent=Intent.PROTECT, qty=held, ref=rig.bars.close[14],
                    stop=round(rig.bars.close[14] * 0.97, 1), reason=DecisionReason.TRAILING_TAKE_PROFIT)  # fmt: skip
    out = await on_decision(rig, move)
    assert out.confirmation.status is Status.ACCEPTED and out.confirmation.executed_qty == 0
    assert_end_state(rig, out, Status.ACCEPTED)
    algos = {a["clientAlgoId"]: a["algoStatus"] for a in rig.state()["algo_orders"]}
    ids = rig.core.ids
    assert algos == {ids.stop(1): "CANCELED", ids.stop(2): "NEW"}


async def test_stop_that_triggered_is_the_exit_no_second_order(rig: Rig, bars: Bars) -> None:
    """The stop fills on the exchange while the brain decides; the brain's CLOSE reports that fill."""
    first = 10
    ref = bars.close[first - 1]
    stop = round(min(bars.low[first + 1: first + 60]) + 1.0, 1)  # a level the next hour trades through
    assert stop < ref
    await on_decision(rig, decision(1, rig.bar_ns(first), ref=ref, stop=stop))
    out = await on_decision(rig, exit_(rig, 2, first + 60))
    c = out.confirmation
    assert c.status is Status.FILLED and c.side is Side.SELL and c.executed_qty == pytest.approx(0.02)
    assert c.avg_price <= stop  # filled at the stop (or a gap below it), not at the later bar
    orders = rig.state()["orders"]
    assert not any(o["clientOrderId"] == rig.core.ids.order(2) for o in orders), "a second close was sent"
    assert_end_state(rig, out, Status.FILLED)


# -- fault modes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault("timeout_after_accept", "order_create", seconds=3.0), Status.FILLED),
        (Fault("drop_response", "order_create"), Status.FILLED),
        (Fault("http_5xx", "order_create", count=3, status=503), Status.FILLED),
        (Fault("http_5xx", "order_create", count=2, status=500), Status.FILLED),
        (Fault("rate_limit_429", "order_create", count=2), Status.FILLED),
        (Fault("rate_limit_1003", "order_create", count=2), Status.FILLED),
        (Fault("timestamp_1021", "order_create", count=2), Status.FILLED),
        (Fault("insufficient_balance", "order_create"), Status.FAILED),
        (Fault("partial_fill", "order_create", fraction=0.5), Status.PARTIALLY_FILLED),
        (Fault("delayed_fill", "order_create", seconds=0.3), Status.FILLED),
    ],
    ids=lambda v: v.kind if isinstance(v, Fault) else "",
)
async def test_entry_fault(rig: Rig, fault: Fault, status: Status) -> None:
    rig.emu.install_faults(fault)
    out = await on_decision(rig, entry(rig))
    assert rig.emu.faults.applied[fault.kind] >= 1, "the fault never fired"
    assert_end_state(rig, out, status)
    if status is Status.FAILED:
        assert out.confirmation.reject_code is RejectCode.INSUFFICIENT_FUNDS
    if status is Status.PARTIALLY_FILLED:
        assert 0 < out.confirmation.executed_qty < 0.02


@pytest.mark.parametrize("fault", [Fault("timestamp_1021", "open_orders", count=2),
                                   Fault("http_5xx", "open_orders", count=2, status=503)], ids=lambda f: f.kind)
async def test_a_transient_error_sweeping_open_stops_at_start_is_retried(tmp_path: Path, bars: Bars,
                                                                         fault: Fault) -> None:  # fmt: skip
    """A restarted executor sweeps the venue's open orders for stops it no longer holds (the gateway's
    ``cancel_extras``). That read goes through the retry policy and the venue-call metrics like every
    other: two transient answers (-1021, a 503) cost two retries, not the start."""
    metrics = ExecutorMetrics()
    async with BinanceEmulator(bars) as emu:
        emu.create_account(KEY, SECRET, usdm_usdt=str(CASH))
        emu.install_faults(fault)
        core = await open_core(emu, tmp_path / "executor.sqlite", metrics=metrics)
        try:
            assert emu.faults.applied[fault.kind] == 2
            assert metrics.retries.labels(call="open_orders")._value.get() == 2
            assert core.gateway.stops == {}
        finally:
            await core.aclose()


async def test_timeout_then_unknown_order_on_lookup_is_not_resubmitted(rig: Rig) -> None:
    """Timeout after the exchange accepted the order, then two -2013 answers while it 'propagates':
    the order is found on the third lookup and never sent twice."""
    rig.emu.install_faults(Fault("timeout_after_accept", "order_create", seconds=3.0),
                           Fault("unknown_order_2013", "order_query", count=2))  # fmt: skip
    out = await on_decision(rig, entry(rig))
    assert rig.emu.faults.applied["unknown_order_2013"] == 2
    assert_end_state(rig, out, Status.FILLED)


async def test_exit_with_unknown_order_on_stop_cancel_leaves_no_orphan(rig: Rig) -> None:
    """-2011 on the stop's cancel although it is open: the lookup shows it open, the cancel is
    retried, and no stop is left behind (freqtrade #12528)."""
    await on_decision(rig, entry(rig))
    rig.emu.install_faults(Fault("unknown_order_2011", "order_cancel", count=1))
    out = await on_decision(rig, exit_(rig, 2, 20))
    assert rig.emu.faults.applied["unknown_order_2011"] == 1
    assert_end_state(rig, out, Status.FILLED)


@pytest.mark.parametrize("kind", ["timeout_after_accept", "drop_response", "http_5xx"])
async def test_exit_fault_no_duplicate_close(rig: Rig, kind: str) -> None:
    await on_decision(rig, entry(rig))
    rig.emu.install_faults(Fault(kind, "order_create", seconds=3.0, status=502))
    out = await on_decision(rig, exit_(rig, 2, 20))
    assert rig.emu.faults.applied[kind] == 1
    assert_end_state(rig, out, Status.FILLED)


async def test_restart_after_order_placed_before_outcome_journaled(rig: Rig, tmp_path: Path) -> None:
    """kill -9 between placing the order and journaling its outcome: recovery finds the order by
    client order id, confirms its fill, places the stop, and never orders twice."""
    d = entry(rig)
    admitted = rig.core.admit(d, NOW)
    assert not isinstance(admitted, Outcome)
    req = decision_order(d, rig.core.ids.order(1), OrderType.MARKET)
    await rig.core.ops.place(req)  # reached the exchange ...
    await rig.core.aclose()  # ... and the process died before the outcome was journaled
    rig.core = await open_core(rig.emu, rig.path)
    assert [o.confirmation.status for o in rig.core.recovered] == [Status.FILLED]
    assert_end_state(rig, rig.core.recovered[0], Status.FILLED)


async def test_restart_adopts_open_stop_and_exit_cancels_it(rig: Rig) -> None:
    await on_decision(rig, entry(rig))
    await rig.core.aclose()
    rig.core = await open_core(rig.emu, rig.path)
    assert set(rig.core.gateway.stops) == {USDM}
    out = await on_decision(rig, exit_(rig, 2, 20))
    assert_end_state(rig, out, Status.FILLED)


async def test_protective_order_from_another_module_is_refused_and_counted(rig: Rig) -> None:
    from executor.metrics import ExecutorMetrics
    from executor.venue.base import OrderRequest
    from executor.venue.errors import OwnershipConflict

    metrics = ExecutorMetrics()
    rig.core.ops.metrics = metrics
    await on_decision(rig, entry(rig))
    rogue = OrderRequest(client_order_id=rig.core.ids.stop(99), decision_id=99, symbol=USDM, side=Side.SELL,
                         type=OrderType.STOP_MARKET, amount=0.02, stop_price=40_000.0, owner=CORE)  # fmt: skip
    with pytest.raises(OwnershipConflict):
        await rig.core.ops.place(rogue)
    with pytest.raises(OwnershipConflict):
        await rig.core.ops.cancel(rig.core.ids.stop(1), USDM, owner="reconciler")
    conflicts = {s.labels["module"]: s.value for s in metrics.ownership_conflicts.collect()[0].samples
                 if s.name.endswith("_total")}  # fmt: skip
    assert conflicts == {"core": 1.0, "reconciler": 1.0}
    created = {(s.labels["module"], s.labels["kind"], s.labels["action"]) for s in metrics.protective.collect()[0].samples
               if s.name.endswith("_total")}  # fmt: skip
    assert created == {("gateway", "stop_market", "create")}
    assert len([a for a in rig.state()["algo_orders"] if a["algoStatus"] == "NEW"]) == 1  # the rogue stop never left


async def test_entry_below_min_notional_rejected_before_sending(rig: Rig) -> None:
    out = await on_decision(rig, entry(rig, qty=0.0001))
    assert out.confirmation.status is Status.REJECTED and out.confirmation.reject_code is RejectCode.INVALID_QUANTITY
    assert rig.state()["orders"] == []


# -- Binance spot: IOC entries, stop-loss-limit protection, atomic cancel/replace ----------------

SPOT = "BTC/USDT"


@dataclass
class SpotRig(Rig):
    def state(self) -> dict[str, Any]:
        return self.emu.state()["accounts"][KEY]["spot"]


@pytest.fixture
async def spot(tmp_path: Path, bars: Bars) -> AsyncIterator[SpotRig]:
    async with BinanceEmulator(bars) as emu:
        emu.create_account(KEY, SECRET, spot={"USDT": str(CASH)})
        core = await open_core(emu, tmp_path / "executor.sqlite", "spot")
        r = SpotRig(emu, core, bars, tmp_path / "executor.sqlite")
        try:
            yield r
        finally:
            await r.core.aclose()


def spot_decision(r: Rig, did: int, bar: int, **kw: Any) -> TradeDecision:
    d = decision(did, r.bar_ns(bar), ref=r.bars.close[bar - 1], **kw)
    return TradeDecision(**{**{f: getattr(d, f) for f in TradeDecision.__slots__}, "instrument": Instrument.symbol(SPOT)})


def assert_spot_end_state(r: SpotRig, outcome: Outcome, status: Status) -> None:
    st = r.state()
    coids = Counter(o["clientOrderId"] for o in st["orders"])
    assert all(n == 1 for n in coids.values()), f"duplicate orders on the exchange: {coids}"
    btc = sum(float(st["balances"].get("BTC", {}).get(k, 0)) for k in ("free", "locked"))
    usdt = sum(float(st["balances"].get("USDT", {}).get(k, 0)) for k in ("free", "locked"))
    held = r.core.ledger.position(Instrument.symbol(SPOT))
    assert held == pytest.approx(btc, abs=1e-12), "ledger position != BTC balance"
    assert r.core.ledger.cash == pytest.approx(usdt, abs=1e-6), "ledger cash != USDT balance"
    stops = [o for o in st["orders"] if o["type"] == "STOP_LOSS_LIMIT" and o["status"] == "NEW"]
    assert len(stops) == (1 if held > 0 else 0), f"stops {stops} for position {held}"
    if held > 0:
        assert float(stops[0]["origQty"]) == pytest.approx(held)
    assert outcome.confirmation.status is status, outcome


async def test_spot_ioc_entry_nets_base_commission_and_places_stop_loss_limit(spot: SpotRig) -> None:
    ref = spot.bars.close[9]
    out = await on_decision(spot, spot_decision(spot, 1, 10, slip=50, stop=round(ref * 0.92, 2)))
    c = out.confirmation
    assert c.status is Status.FILLED
    assert c.executed_qty == pytest.approx(0.02 * 0.999)  # 0.1 % commission taken in BTC
    assert c.fee == pytest.approx(0.02 * 0.001 * c.avg_price)  # ... reported in quote
    orders = {o["clientOrderId"]: o for o in spot.state()["orders"]}
    assert orders[spot.core.ids.order(1)]["timeInForce"] == "IOC"
    assert_spot_end_state(spot, out, Status.FILLED)


async def test_spot_ioc_entry_beyond_slippage_limit_fails_and_nothing_is_left(spot: SpotRig, bars: Bars) -> None:
    bar = next(i for i in range(10, 399) if bars.open[i] > bars.close[i - 1] * 1.0005)  # next open gaps up > 5 bps
    out = await on_decision(spot, spot_decision(spot, 1, bar, slip=1, stop=round(bars.close[bar - 1] * 0.92, 2)))
    assert out.confirmation.reject_code is RejectCode.SLIPPAGE_EXCEEDED
    assert_spot_end_state(spot, out, Status.FAILED)


async def test_spot_protect_and_exit_use_atomic_cancel_replace(spot: SpotRig) -> None:
    ref = spot.bars.close[9]
    await on_decision(spot, spot_decision(spot, 1, 10, stop=round(ref * 0.92, 2)))
    held = spot.core.ledger.position(Instrument.symbol(SPOT))
    move = spot_decision(spot, 2, 15, side=Side.SELL, intent=Intent.PROTECT, qty=held, stop=round(ref * 0.97, 2),
                         reason=DecisionReason.TRAILING_TAKE_PROFIT)  # fmt: skip
    out = await on_decision(spot, move)
    assert_spot_end_state(spot, out, Status.ACCEPTED)
    out = await on_decision(spot, spot_decision(spot, 3, 20, side=Side.SELL, intent=Intent.CLOSE, qty=held))
    assert out.confirmation.executed_qty == pytest.approx(held)
    assert_spot_end_state(spot, out, Status.FILLED)
    statuses = {o["clientOrderId"]: o["status"] for o in spot.state()["orders"]}
    ids = spot.core.ids
    assert statuses == {ids.order(1): "FILLED", ids.stop(1): "CANCELED", ids.stop(2): "CANCELED", ids.order(3): "FILLED"}


async def test_spot_stop_that_filled_is_reported_by_the_exit(spot: SpotRig, bars: Bars) -> None:
    ref = bars.close[9]
    stop = round(min(bars.low[11:70]) + 1.0, 2)
    await on_decision(spot, spot_decision(spot, 1, 10, stop=stop))
    held = spot.core.ledger.position(Instrument.symbol(SPOT))
    assert ref > stop
    out = await on_decision(spot, spot_decision(spot, 2, 70, side=Side.SELL, intent=Intent.CLOSE, qty=held))
    assert out.confirmation.executed_qty == pytest.approx(held)
    assert stop * (1 - 0.005) - 1e-6 <= out.confirmation.avg_price < ref  # the stop-limit's fill, not bar 70's
    assert spot.core.ids.order(2) not in {o["clientOrderId"] for o in spot.state()["orders"]}
    assert_spot_end_state(spot, out, Status.FILLED)


@pytest.mark.parametrize("kind", ["timeout_after_accept", "drop_response", "http_5xx", "rate_limit_429",
                                  "timestamp_1021", "partial_fill"])  # fmt: skip
async def test_spot_entry_fault(spot: SpotRig, kind: str) -> None:
    spot.emu.install_faults(Fault(kind, "order_create", seconds=3.0, status=503, fraction=0.5))
    ref = spot.bars.close[9]
    out = await on_decision(spot, spot_decision(spot, 1, 10, slip=50, stop=round(ref * 0.92, 2)))
    assert spot.emu.faults.applied[kind] >= 1
    assert_spot_end_state(spot, out, Status.PARTIALLY_FILLED if kind == "partial_fill" else Status.FILLED)


async def test_spot_exit_replace_timeout_does_not_sell_twice(spot: SpotRig) -> None:
    ref = spot.bars.close[9]
    await on_decision(spot, spot_decision(spot, 1, 10, stop=round(ref * 0.92, 2)))
    held = spot.core.ledger.position(Instrument.symbol(SPOT))
    spot.emu.install_faults(Fault("timeout_after_accept", "order_create", seconds=3.0))
    out = await on_decision(spot, spot_decision(spot, 2, 20, side=Side.SELL, intent=Intent.CLOSE, qty=held))
    assert spot.emu.faults.applied["timeout_after_accept"] == 1
    assert_spot_end_state(spot, out, Status.FILLED)


# -- the executor application: worker, unresolved retry, maintenance -----------------------------


async def start_app(rig: Rig, **kw: Any) -> Any:
    from executor.app import ExecutorApp
    from executor.metrics import ExecutorMetrics
    from protocol import Codec, derive_key

    app = ExecutorApp(rig.core, Codec(derive_key(b"x" * 32)), ExecutorMetrics(), ("127.0.0.1", 0),
                      ("127.0.0.1", 9), **kw)  # fmt: skip
    await app.start()
    return app


async def test_app_keeps_an_unresolved_decision_in_flight_until_the_exchange_answers(rig: Rig) -> None:
    """A 5xx burst longer than one execution's budget: the decision is not confirmed as a guess;
    it stays in flight, is retried, and ends FILLED with one order on the exchange."""
    import time

    import structlog

    from foundation.logs import merge_log_context

    app = await start_app(rig, retry_unresolved_s=0.2)
    try:
        rig.emu.install_faults(Fault("http_5xx", "order_create", count=5, status=503))
        d = entry(rig)
        with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars, merge_log_context]) as logs:
            app.on_decision(d, time.time_ns())
            app.on_decision(d, time.time_ns())  # a retransmit while it executes: dropped, not run twice
            for _ in range(200):
                if rig.core.journal.confirmation_for(1) is not None and app.idle:
                    break
                await asyncio.sleep(0.05)
        conf = rig.core.journal.confirmation_for(1)
        # every line of the decision's path, retries and lookups included, names it and its order
        ids = rig.core.ids
        events = {e["event"] for e in logs}
        assert {"order_ambiguous", "decision_unresolved", "stop_placed", "decision_executed"} <= events, events
        for e in logs:
            assert e.get("decision_id") == 1, e
            assert e.get("client_order_id") in (ids.order(1), ids.stop(1)), e
        assert [e["seq"] for e in logs if e["event"] == "decision_executed"] == [conf.seq]
        assert conf is not None and conf.status is Status.FILLED
        assert app.metrics.unresolved._value.get() >= 1
        assert app.metrics.duplicates._value.get() == 1
        assert_end_state(rig, Outcome(conf, duplicate=False, executed=True), Status.FILLED)
    finally:
        app.close()


async def test_maintenance_cancels_a_stop_whose_position_is_gone(rig: Rig) -> None:
    """A stop of ours on the exchange while the ledger is flat (freqtrade #12528) is cancelled."""
    await rig.core.gateway.protect(USDM, 0.02, 40_000.0, 77, rig.bar_ns(12))
    assert [a["algoStatus"] for a in rig.state()["algo_orders"]] == ["NEW"]
    app = await start_app(rig)
    try:
        await app.maintain()
    finally:
        app.close()
    assert [a["algoStatus"] for a in rig.state()["algo_orders"]] == ["CANCELED"]
    assert rig.core.gateway.stops == {}


# -- regressions from the order-safety review -------------------------------------------------


async def test_restart_after_entry_and_stop_placed_before_outcome_journaled(rig: Rig) -> None:
    """kill -9 after the entry *and* its stop reached the exchange: recovery confirms the fill and
    keeps the one stop (no -4116 duplicate, no FAILED)."""
    d = entry(rig)
    assert not isinstance(rig.core.admit(d, NOW), Outcome)
    await rig.core._execute(d, recovering=False, expired=False)
    await rig.core.aclose()
    rig.core = await open_core(rig.emu, rig.path)
    assert_end_state(rig, rig.core.recovered[0], Status.FILLED)


async def test_timeout_then_orders_invisible_longer_than_the_lookups_is_not_resent(rig: Rig) -> None:
    """Timeout, then three -2013 answers: the order is not taken as absent before the exchange's
    recvWindow has passed, so it is found, never sent twice (Binance would accept a second order
    with the id of a filled one)."""
    rig.emu.install_faults(Fault("timeout_after_accept", "order_create", seconds=3.0),
                           Fault("unknown_order_2013", "order_query", count=3))  # fmt: skip
    out = await on_decision(rig, entry(rig))
    assert rig.emu.faults.applied["unknown_order_2013"] == 3
    assert_end_state(rig, out, Status.FILLED)


async def test_entry_adding_to_a_position_keeps_its_fill_when_the_stop_move_is_refused(rig: Rig) -> None:
    await on_decision(rig, entry(rig, qty=0.02))
    ref = rig.bars.close[14]
    add = decision(2, rig.bar_ns(15), ref=ref, qty=0.02, stop=round(ref * 0.999, 1))
    rig.emu.install_faults(Fault("insufficient_balance", "order_create", count=1))
    out = await on_decision(rig, add)
    assert out.confirmation.status is Status.FAILED  # the add itself was refused: nothing changes
    add2 = decision(3, rig.bar_ns(16), ref=rig.bars.close[15], qty=0.02, stop=round(rig.bars.close[15] * 0.96, 1))
    out = await on_decision(rig, add2)
    assert out.confirmation.status is Status.FILLED
    assert_end_state(rig, out, Status.FILLED)


@pytest.mark.parametrize("market", ["usdm", "spot"])
async def test_reduce_leaves_the_remainder_protected(rig: Rig, spot: SpotRig, market: str) -> None:
    r = rig if market == "usdm" else spot
    inst = USDM if market == "usdm" else SPOT
    ref = r.bars.close[9]
    first = (decision(1, r.bar_ns(10), ref=ref, qty=0.04, stop=round(ref * 0.92, 1)) if market == "usdm"
             else spot_decision(spot, 1, 10, qty=0.04, stop=round(ref * 0.92, 2)))  # fmt: skip
    await on_decision(r, first)
    held = r.core.ledger.position(Instrument.symbol(inst))
    half = round(held / 2, 5)
    cut = (decision(2, r.bar_ns(20), side=Side.SELL, intent=Intent.REDUCE, qty=half, ref=r.bars.close[19])
           if market == "usdm" else
           spot_decision(spot, 2, 20, side=Side.SELL, intent=Intent.REDUCE, qty=half))  # fmt: skip
    out = await on_decision(r, cut)
    assert 0 < r.core.ledger.position(Instrument.symbol(inst)) < held
    assert not r.core.gateway.unprotected
    (assert_end_state if market == "usdm" else assert_spot_end_state)(r, out, Status.FILLED)  # type: ignore[operator]


async def test_stop_that_fired_while_the_executor_was_down_is_the_next_exit(rig: Rig, bars: Bars) -> None:
    first = 10
    ref = bars.close[first - 1]
    stop = round(min(bars.low[first + 1: first + 60]) + 1.0, 1)
    await on_decision(rig, decision(1, rig.bar_ns(first), ref=ref, stop=stop))
    await rig.core.aclose()
    rig.emu.advance_to(bars.ts_ms[first + 60])  # the stop triggers while the executor is down
    rig.core = await open_core(rig.emu, rig.path)
    assert USDM in rig.core.gateway.fired
    out = await on_decision(rig, exit_(rig, 2, first + 61))
    assert out.confirmation.executed_qty == pytest.approx(0.02) and out.confirmation.avg_price <= stop
    assert_end_state(rig, out, Status.FILLED)


async def test_move_whose_old_stop_cancel_stayed_ambiguous_is_retried_to_one_stop(rig: Rig) -> None:
    await on_decision(rig, entry(rig))
    held = rig.core.ledger.position(Instrument.symbol(USDM))
    rig.emu.install_faults(Fault("http_5xx", "order_cancel", count=4, status=503))
    mv = decision(2, rig.bar_ns(15), side=Side.SELL, intent=Intent.PROTECT, qty=held, ref=rig.bars.close[14],
                  stop=round(rig.bars.close[14] * 0.97, 1), reason=DecisionReason.TRAILING_TAKE_PROFIT)  # fmt: skip
    out = await on_decision(rig, mv)
    assert_end_state(rig, out, Status.ACCEPTED)


async def test_spot_stop_refused_then_position_closed_is_not_retried(spot: SpotRig) -> None:
    ref = spot.bars.close[9]
    await on_decision(spot, spot_decision(spot, 1, 10, stop=0.0))
    held = spot.core.ledger.position(Instrument.symbol(SPOT))
    spot.emu.install_faults(Fault("insufficient_balance", "order_create"))
    assert await spot.core.gateway.protect(SPOT, held, round(ref * 0.92, 2), 1, spot.bar_ns(10)) is None
    assert spot.core.gateway.unprotected == {SPOT: held}
    out = await on_decision(spot, spot_decision(spot, 2, 20, side=Side.SELL, intent=Intent.CLOSE, qty=held))
    assert out.confirmation.status is Status.FILLED
    assert await spot.core.gateway.reprotect(spot.core.held()) == 0
    assert spot.core.gateway.unprotected == {}
    assert_spot_end_state(spot, out, Status.FILLED)


def test_definite_binance_codes_in_an_operation_failed_are_permanent() -> None:
    from ccxt.base import errors as cx

    from executor.venue.ccxt_venue import translate
    from executor.venue.errors import AmbiguousVenueError, PermanentVenueError

    refused = cx.OperationFailed('binanceusdm {"code":-2020,"msg":"Unable to fill."}')
    unknown = cx.OperationFailed('binance {"code":-1007,"msg":"Timeout waiting for response from backend server."}')
    assert isinstance(translate(refused, where="create_order", idempotent=False), PermanentVenueError)
    assert isinstance(translate(unknown, where="create_order", idempotent=False), AmbiguousVenueError)
