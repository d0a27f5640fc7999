"""Issue #10 §1 and §3 on the local Binance exchange, through the real ccxt client (HTTPS on
loopback): exits are never refused for slippage, a stop move the market has already crossed becomes
the exit it stands for, and the stop on the exchange is the level the brain's plan holds.

The rigs (an in-process :class:`~testbed.emulator.BinanceEmulator`, an :class:`ExecutorCore` over
:class:`CcxtVenue`) and the end-state checks are those of ``tests/test_ccxt_venue.py``.
"""

from __future__ import annotations

import pytest
import test_ccxt_venue
from test_ccxt_venue import (
    SPOT,
    USDM,
    Rig,
    SpotRig,
    assert_end_state,
    assert_spot_end_state,
    decision,
    entry,
    on_decision,
    spot_decision,
)

from brain.exits import ExitRules
from brain.tracker import PositionTracker
from protocol import DecisionReason, Instrument, Intent, Side, Status

TICK = 0.1  # BTCUSDT price filter tick in the emulator's exchangeInfo fixtures (USDⓈ-M)
bars, rig, spot = test_ccxt_venue.bars, test_ccxt_venue.rig, test_ccxt_venue.spot  # the rigs' fixtures


def _held(r: Rig, symbol: str = USDM) -> float:
    return r.core.ledger.position(Instrument.symbol(symbol))


async def test_exit_far_below_its_reference_executes_and_is_flagged(rig: Rig) -> None:
    """A CLOSE whose reference is twice the market (a gap of -5,000 bps, max_slippage_bps 50) sells at
    the market anyway: FILLED, flagged SLIPPAGE_OVER_LIMIT, its slippage reported, no stop left."""
    await on_decision(rig, entry(rig))
    ref = rig.bars.close[19] * 2
    close = decision(2, rig.bar_ns(20), side=Side.SELL, intent=Intent.CLOSE, qty=_held(rig), ref=ref, slip=50,
                     reason=DecisionReason.STOP_LOSS)  # fmt: skip
    out = await on_decision(rig, close)
    c = out.confirmation
    assert c.status is Status.FILLED and c.avg_price == pytest.approx(rig.bars.open[20])
    assert c.slippage_over_limit and out.exit_slippage_bps == pytest.approx((ref - c.avg_price) / ref * 1e4)
    assert_end_state(rig, out, Status.FILLED)


async def test_protect_above_the_market_becomes_a_market_exit_usdm(rig: Rig) -> None:
    """A PROTECT whose new stop sits 2 % above the market (USDⓈ-M refuses it: -2021 would immediately
    trigger) sells the position at the market instead: FILLED for the PROTECT, flat, the old stop
    cancelled, no stop left, one exit order under the PROTECT's decision id."""
    await on_decision(rig, entry(rig))
    held = _held(rig)
    above = round(rig.bars.open[15] * 1.02, 1)
    move = decision(2, rig.bar_ns(15), side=Side.SELL, intent=Intent.PROTECT, qty=held, ref=rig.bars.close[14],
                    stop=above, reason=DecisionReason.TRAILING_TAKE_PROFIT)  # fmt: skip
    out = await on_decision(rig, move)
    c = out.confirmation
    assert (c.status, c.intent, c.side) == (Status.FILLED, Intent.PROTECT, Side.SELL)
    assert c.executed_qty == pytest.approx(held) and c.avg_price == pytest.approx(rig.bars.open[15])
    assert_end_state(rig, out, Status.FILLED)
    ids = rig.core.ids
    orders = {o["clientOrderId"] for o in rig.state()["orders"]}
    assert ids.order(2) in orders
    algos = {a["clientAlgoId"]: a["algoStatus"] for a in rig.state()["algo_orders"]}
    assert algos == {ids.stop(1): "CANCELED"}, algos
    assert rig.core.gateway.stops == {} and rig.core.gateway.unprotected == {}


async def test_protect_above_the_market_becomes_a_market_exit_spot(spot: SpotRig) -> None:
    """On spot the move is one cancel/replace; the new stop-loss-limit is refused as already crossed
    (-2010 inside -2021): the old stop is gone, and the position is sold at the market, flat."""
    ref = spot.bars.close[9]
    await on_decision(spot, spot_decision(spot, 1, 10, stop=round(ref * 0.92, 2)))
    held = _held(spot, SPOT)
    above = round(spot.bars.open[15] * 1.02, 2)
    out = await on_decision(spot, spot_decision(spot, 2, 15, side=Side.SELL, intent=Intent.PROTECT, qty=held,
                                                stop=above, reason=DecisionReason.TRAILING_TAKE_PROFIT))  # fmt: skip
    c = out.confirmation
    assert (c.status, c.intent) == (Status.FILLED, Intent.PROTECT) and c.executed_qty == pytest.approx(held)
    assert_spot_end_state(spot, out, Status.FILLED)
    statuses = {o["clientOrderId"]: o["status"] for o in spot.state()["orders"]}
    ids = spot.core.ids
    assert statuses[ids.stop(1)] == "CANCELED" and statuses[ids.order(2)] == "FILLED"


async def test_one_stop_level_on_the_exchange_and_in_the_plan(rig: Rig) -> None:
    """The entry on bar 108 fills 6 above its reference (the close of bar 107). The stop on the exchange
    is stop_for_fill of the fill — 8 % below the fill, not below the reference — and the brain's plan,
    built from the same confirmation, holds the same level (to the exchange's 0.1 tick)."""
    bar = 108
    ref = rig.bars.close[bar - 1]
    assert rig.bars.open[bar] - ref == 6.0
    d = decision(1, rig.bar_ns(bar), ref=ref, stop=ref * 0.92)
    out = await on_decision(rig, d)
    c = out.confirmation
    assert c.avg_price == rig.bars.open[bar]
    [stop] = [a for a in rig.state()["algo_orders"] if a["algoStatus"] == "NEW"]
    tracker = PositionTracker(10_000.0, ExitRules())
    tracker.apply(c, d.reason, decision=d)
    plan_stop = tracker.position(Instrument.symbol(USDM)).plan.stop_price
    assert plan_stop == d.stop_for_fill(c.avg_price) == pytest.approx(c.avg_price * 0.92, rel=1e-12)
    assert abs(float(stop["triggerPrice"]) - plan_stop) <= TICK / 2 + 1e-9, (stop["triggerPrice"], plan_stop)
    assert float(stop["triggerPrice"]) > ref * 0.92 + 5  # not the level at the reference
    assert rig.core.gateway.stops[USDM].stop_price == d.stop_for_fill(c.avg_price)
    assert_end_state(rig, out, Status.FILLED)
