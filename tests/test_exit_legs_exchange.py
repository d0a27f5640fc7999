"""The four exit legs on the local Binance's USDⓈ-M perpetual through the real ccxt client (issue #16):
a short carrying HARD_SL, TRAIL, PARTIAL_TP and BREAKEVEN, with the legs' faults — the take-profit
partly filled while a trailing move is in flight, the stop firing while the take-profit rests, and
a kill between placing the take-profit and journaling its outcome. Every scenario ends with the
exchange, the ledger and the exit order gateway agreeing, and no order left behind.

The rig (an in-process :class:`~testbed.emulator.BinanceEmulator`, an :class:`ExecutorCore` over
:class:`CcxtVenue` on the replay clock) is ``tests/test_ccxt_venue.py``'s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import test_ccxt_venue
from test_ccxt_venue import CASH, KEY, SECRET, USDM, Rig, decision, on_decision, open_core

from executor.core import Outcome
from executor.planning import take_profit_order
from protocol import DecisionReason, Instrument, Intent, Side, Status
from foundation.bars import Bars
from testbed.emulator import BinanceEmulator, Fault

bars = test_ccxt_venue.bars  # the rig's bars fixture
INST = Instrument.symbol(USDM)
QTY = 0.02


@pytest.fixture
async def rig(tmp_path: Path, bars: Bars) -> AsyncIterator[Rig]:
    """``test_ccxt_venue``'s rig, with shorts on (``allow_short``)."""
    async with BinanceEmulator(bars) as emu:
        emu.create_account(KEY, SECRET, usdm_usdt=str(CASH))
        core = await open_core(emu, tmp_path / "executor.sqlite", allow_short=True)
        r = Rig(emu, core, bars, tmp_path / "executor.sqlite")
        try:
            yield r
        finally:
            await r.core.aclose()


def _held(r: Rig) -> float:
    return r.core.ledger.position(INST)


async def _open_short(r: Rig, bar: int = 10) -> Outcome:
    ref = r.bars.close[bar - 1]
    out = await on_decision(r, decision(1, r.bar_ns(bar), side=Side.SELL, qty=QTY, ref=ref, stop=round(ref * 1.08, 1)))
    assert out.confirmation.status is Status.FILLED and _held(r) == pytest.approx(-QTY)
    return out


def _first_bar_trading_below(r: Rig, level: float, start: int) -> int:
    return next(i for i in range(start, len(r.bars)) if r.bars.low[i] <= level)


def _first_bar_trading_above(r: Rig, level: float, start: int) -> int:
    return next(i for i in range(start, len(r.bars)) if r.bars.high[i] >= level)


def _agree(r: Rig) -> dict:
    """Exchange = ledger (position and wallet); the gateway holds exactly the orders open on the
    exchange (one stop on the closing side covering the position, and the take-profit if it rests);
    no client order id used twice."""
    st = r.state()
    held = _held(r)
    pos = float(st["positions"].get("BTCUSDT", {}).get("positionAmt", 0.0))
    assert pos == pytest.approx(held, abs=1e-12)
    wallet = float(st["wallet"])
    assert r.core.ledger.cash + held * r.core.ledger.avg_cost(INST) == pytest.approx(wallet, abs=1e-6)
    stops = [a for a in st["algo_orders"] if a["algoStatus"] == "NEW"]
    limits = [o for o in st["orders"] if o["status"] in ("NEW", "PARTIALLY_FILLED")]
    gw = r.core.gateway
    if held:
        assert len(stops) == 1 and stops[0]["side"] == ("BUY" if held < 0 else "SELL")
        assert float(stops[0]["quantity"]) == pytest.approx(abs(held)), (stops, held)
        assert set(gw.stops) == {USDM} and gw.stops[USDM].client_order_id == stops[0]["clientAlgoId"]
    else:
        assert stops == [] and gw.stops == {}
    assert [o["clientOrderId"] for o in limits] == [tp.client_order_id for tp in gw.take_profits.values()]
    assert all(o["reduceOnly"] in (True, "true") for o in limits)
    spawned = {str(a.get("actualOrderId")) for a in st["algo_orders"]}
    ids = Counter(o["clientOrderId"] for o in st["orders"] if str(o["orderId"]) not in spawned)
    ids += Counter(a["clientAlgoId"] for a in st["algo_orders"])
    assert all(n == 1 for n in ids.values()), ids
    return st


async def test_a_short_with_all_four_legs(rig: Rig) -> None:
    """HARD_SL: the entry's BUY stop 8 % above. PARTIAL_TP: half rests as a reduce-only BUY limit below
    (ACCEPTED); the bars trade through it; the report fills it at the limit, and the stop shrinks to the
    remaining half. BREAKEVEN: the stop moves down to the entry minus fees. TRAIL: it moves down again.
    Then the market rises through it: the next exit is answered by the stop's fill — flat, no order left."""
    opened = await _open_short(rig, bar=46)  # the bundled bars fall from bar 46 to 58, then rise
    entry = opened.confirmation.avg_price
    _agree(rig)
    limit = round(entry * 0.998, 1)  # 0.2 % in profit
    tp = await on_decision(rig, decision(2, rig.bar_ns(47), side=Side.BUY, intent=Intent.TAKE_PROFIT, qty=QTY / 2,
                                         ref=rig.bars.close[46], stop=limit, reason=DecisionReason.PARTIAL_TAKE_PROFIT))
    assert tp.confirmation.status is Status.ACCEPTED
    assert rig.core.journal.take_profits() == {USDM: (rig.core.ids.take_profit(2), limit, QTY / 2)}
    _agree(rig)
    through = _first_bar_trading_below(rig, limit, 47) + 1
    report = await on_decision(rig, decision(3, rig.bar_ns(through), side=Side.BUY, intent=Intent.REDUCE,
                                             qty=QTY / 2, ref=limit, reason=DecisionReason.PARTIAL_TAKE_PROFIT))
    c = report.confirmation
    assert (c.status, c.side, c.intent) == (Status.FILLED, Side.BUY, Intent.REDUCE)
    assert c.executed_qty == pytest.approx(QTY / 2) and c.avg_price <= limit  # at the limit (or better on a gap)
    assert _held(rig) == pytest.approx(-QTY / 2) and rig.core.journal.take_profits() == {}
    _agree(rig)  # the stop shrank to the remaining half
    fee = opened.confirmation.fee
    breakeven = round(entry - 2 * fee / QTY, 1)
    be = await on_decision(rig, decision(4, rig.bar_ns(through + 1), side=Side.BUY, intent=Intent.PROTECT,
                                         qty=QTY / 2, ref=rig.bars.close[through], stop=breakeven,
                                         reason=DecisionReason.BREAKEVEN))  # fmt: skip
    assert be.confirmation.status is Status.ACCEPTED
    assert float(_agree(rig)["algo_orders"][-1]["triggerPrice"]) == pytest.approx(breakeven)
    trail = round(max(rig.bars.high[through:through + 2]) + 5.0, 1)  # tighter, still above the market
    assert trail < breakeven
    moved = await on_decision(rig, decision(5, rig.bar_ns(through + 2), side=Side.BUY, intent=Intent.PROTECT,
                                            qty=QTY / 2, ref=rig.bars.close[through + 1], stop=trail,
                                            reason=DecisionReason.TRAILING_TAKE_PROFIT))  # fmt: skip
    assert moved.confirmation.status is Status.ACCEPTED
    _agree(rig)
    fired_at = _first_bar_trading_above(rig, trail, through + 2) + 1
    out = await on_decision(rig, decision(6, rig.bar_ns(fired_at), side=Side.BUY, intent=Intent.CLOSE, qty=QTY / 2,
                                          ref=rig.bars.close[fired_at - 1], reason=DecisionReason.STOP_LOSS))
    assert out.confirmation.status is Status.FILLED and out.confirmation.avg_price >= trail
    assert _held(rig) == 0.0
    st = _agree(rig)
    assert [o["clientOrderId"] for o in st["orders"] if o["clientOrderId"] == rig.core.ids.order(6)] == []  # no order sent


async def test_the_take_profit_partly_filled_while_a_trailing_move_is_in_flight(rig: Rig) -> None:
    """The take-profit fills only in part (the exchange's partial_fill fault) and a trailing move comes
    first: the move goes through for the whole position (reduce-only caps it); the report then takes the
    partial fill as final (the rest cancelled), and the stop shrinks to what remains."""
    await _open_short(rig)
    limit = round(min(rig.bars.low[11:40]) + 1.0, 1)
    rig.emu.install_faults(Fault("partial_fill", endpoint="order_create", market="usdm", fraction=0.5))
    tp = await on_decision(rig, decision(2, rig.bar_ns(11), side=Side.BUY, intent=Intent.TAKE_PROFIT, qty=QTY / 2,
                                         ref=rig.bars.close[10], stop=limit, reason=DecisionReason.PARTIAL_TAKE_PROFIT))
    assert tp.confirmation.status is Status.ACCEPTED
    through = _first_bar_trading_below(rig, limit, 11) + 1
    level = round(max(rig.bars.high[11:through + 1]) * 1.01, 1)
    move = await on_decision(rig, decision(3, rig.bar_ns(through), side=Side.BUY, intent=Intent.PROTECT, qty=QTY,
                                           ref=rig.bars.close[through - 1], stop=level,
                                           reason=DecisionReason.TRAILING_TAKE_PROFIT))  # fmt: skip
    assert move.confirmation.status is Status.ACCEPTED
    partial = [o for o in rig.state()["orders"] if o["clientOrderId"] == rig.core.ids.take_profit(2)]
    assert partial[0]["status"] == "PARTIALLY_FILLED", partial
    # the report on the same bar (no later bar can fill the rest first)
    report = await on_decision(rig, decision(4, rig.bar_ns(through), side=Side.BUY, intent=Intent.REDUCE,
                                             qty=QTY / 2, ref=limit, reason=DecisionReason.PARTIAL_TAKE_PROFIT))
    c = report.confirmation
    assert c.status is Status.PARTIALLY_FILLED and c.executed_qty == pytest.approx(QTY / 4)  # what filled, final
    assert _held(rig) == pytest.approx(-QTY * 3 / 4)
    st = _agree(rig)  # the rest cancelled; the stop covers the 3/4 left
    assert [o["status"] for o in st["orders"] if o["clientOrderId"] == rig.core.ids.take_profit(2)] == ["CANCELED"]


async def test_the_stop_firing_while_the_take_profit_rests_cancels_it(rig: Rig) -> None:
    """The stop fires before the take-profit's limit is reached: the next exit is answered by the stop's
    fill, and the take-profit is cancelled with it — nothing rests on a flat account."""
    await _open_short(rig)
    limit = round(min(rig.bars.low[11:400]) - 500.0, 1)  # never reached
    await on_decision(rig, decision(2, rig.bar_ns(11), side=Side.BUY, intent=Intent.TAKE_PROFIT, qty=QTY / 2,
                                    ref=rig.bars.close[10], stop=limit, reason=DecisionReason.PARTIAL_TAKE_PROFIT))
    level = round(rig.bars.high[12] + 1.0, 1)
    await on_decision(rig, decision(3, rig.bar_ns(12), side=Side.BUY, intent=Intent.PROTECT, qty=QTY,
                                    ref=rig.bars.close[11], stop=level, reason=DecisionReason.TRAILING_TAKE_PROFIT))
    fired = _first_bar_trading_above(rig, level, 12) + 1
    out = await on_decision(rig, decision(4, rig.bar_ns(fired), side=Side.BUY, intent=Intent.CLOSE, qty=QTY,
                                          ref=rig.bars.close[fired - 1], reason=DecisionReason.STOP_LOSS))
    assert out.confirmation.status is Status.FILLED and out.confirmation.executed_qty == pytest.approx(QTY)
    assert _held(rig) == 0.0 and rig.core.gateway.take_profits == {} and rig.core.journal.take_profits() == {}
    st = _agree(rig)
    assert [o["status"] for o in st["orders"] if o["clientOrderId"] == rig.core.ids.take_profit(2)] == ["CANCELED"]


async def test_a_kill_between_placing_the_take_profit_and_journaling_its_outcome(rig: Rig) -> None:
    """The take-profit is journaled (write-ahead) and reaches the exchange, then the executor dies before
    the decision's outcome is journaled: the restarted executor adopts the resting order, answers the
    decision ACCEPTED from it, and never places a second one."""
    await _open_short(rig)
    limit = round(min(rig.bars.low[11:400]) - 500.0, 1)
    d = decision(2, rig.bar_ns(11), side=Side.BUY, intent=Intent.TAKE_PROFIT, qty=QTY / 2, ref=rig.bars.close[10],
                 stop=limit, reason=DecisionReason.PARTIAL_TAKE_PROFIT)  # fmt: skip
    assert not isinstance(rig.core.admit(d, test_ccxt_venue.NOW), Outcome)
    req = take_profit_order(rig.core.ids, USDM, QTY / 2, limit, 2, d.market_ts_ns, Side.BUY)
    rig.core.journal.record_take_profit(USDM, req.client_order_id, limit, QTY / 2)
    await rig.core.ops.place(req)  # reached the exchange ...
    await rig.core.aclose()  # ... and the process died before the outcome was journaled
    rig.core = await open_core(rig.emu, rig.path, allow_short=True)
    assert [o.confirmation.status for o in rig.core.recovered] == [Status.ACCEPTED]
    assert set(rig.core.gateway.take_profits) == {USDM}
    st = _agree(rig)
    assert Counter(o["clientOrderId"] for o in st["orders"])[req.client_order_id] == 1


async def test_a_take_profit_filled_while_it_rests_is_no_drift_and_is_booked_once(rig: Rig) -> None:
    """The take-profit fills on the exchange between two decisions: a reconcile cycle then sees the venue
    short of the ledger by exactly that fill, which no outcome has booked yet — no drift, no correction;
    the brain's report books it, once."""
    from executor.reconcile import ReconcileRules
    from executor.reconciler import Reconciler

    await _open_short(rig, bar=46)
    limit = round(rig.bars.close[45] * 0.998, 1)
    await on_decision(rig, decision(2, rig.bar_ns(47), side=Side.BUY, intent=Intent.TAKE_PROFIT, qty=QTY / 2,
                                    ref=rig.bars.close[46], stop=limit, reason=DecisionReason.PARTIAL_TAKE_PROFIT))
    through = _first_bar_trading_below(rig, limit, 47) + 1
    await rig.core.venue.observe_time(rig.bar_ns(through))  # the exchange fills it; the executor has not looked
    report = await Reconciler(rig.core, [USDM], rules=ReconcileRules(phantom_grace_s=0, phantom_misses=1)).cycle(
        rig.bar_ns(through))  # fmt: skip
    assert report.plan.corrections == () and report.plan.mismatches == (), report.plan
    assert _held(rig) == pytest.approx(-QTY)  # not booked by the reconcile
    out = await on_decision(rig, decision(3, rig.bar_ns(through), side=Side.BUY, intent=Intent.REDUCE, qty=QTY / 2,
                                          ref=limit, reason=DecisionReason.PARTIAL_TAKE_PROFIT))
    assert out.confirmation.executed_qty == pytest.approx(QTY / 2) and _held(rig) == pytest.approx(-QTY / 2)
    _agree(rig)


async def test_a_take_profit_that_filled_while_the_executor_was_down_is_booked_once(rig: Rig) -> None:
    """Killed after the take-profit reached the exchange and before its outcome was journaled; it fills while
    the executor is down. The restarted executor answers the in-flight TAKE_PROFIT with that fill — and
    nothing else is answered with it again: the next CLOSE sells the rest at the market."""
    await _open_short(rig, bar=46)
    limit = round(rig.bars.close[45] * 0.998, 1)
    d = decision(2, rig.bar_ns(47), side=Side.BUY, intent=Intent.TAKE_PROFIT, qty=QTY / 2, ref=rig.bars.close[46],
                 stop=limit, reason=DecisionReason.PARTIAL_TAKE_PROFIT)  # fmt: skip
    assert not isinstance(rig.core.admit(d, test_ccxt_venue.NOW), Outcome)
    req = take_profit_order(rig.core.ids, USDM, QTY / 2, limit, 2, d.market_ts_ns, Side.BUY)
    rig.core.journal.record_take_profit(USDM, req.client_order_id, limit, QTY / 2)
    await rig.core.ops.place(req)
    through = _first_bar_trading_below(rig, limit, 47) + 1
    await rig.core.venue.observe_time(rig.bar_ns(through))  # it fills (the replay clock moves on) ...
    await rig.core.aclose()  # ... and the executor dies with the outcome unjournaled
    rig.core = await open_core(rig.emu, rig.path, allow_short=True)
    [recovered] = rig.core.recovered
    assert recovered.confirmation.status is Status.FILLED and recovered.confirmation.executed_qty == pytest.approx(QTY / 2)
    assert rig.core.gateway.tp_fired == {} and rig.core.journal.take_profits() == {}
    out = await on_decision(rig, decision(3, rig.bar_ns(through + 1), side=Side.BUY, intent=Intent.CLOSE, qty=QTY / 2,
                                          ref=rig.bars.close[through]))  # fmt: skip
    assert out.confirmation.status is Status.FILLED and _held(rig) == 0.0
    _agree(rig)  # the exchange is flat too: the take-profit's fill was booked once


async def test_a_take_profit_partly_filled_then_a_kill_is_booked_once_and_rests_no_more(rig: Rig) -> None:
    """The take-profit fills in part (partial_fill fault) and the executor dies before its TAKE_PROFIT's
    outcome is journaled. The restarted executor adopts the resting order, and the recovered decision
    finds it partly filled: the rest is cancelled, the part booked once — the gateway holds no leg and a
    reconcile cycle sees nothing to correct; the CLOSE sells what remains."""
    from executor.reconcile import ReconcileRules
    from executor.reconciler import Reconciler

    await _open_short(rig, bar=46)
    limit = round(rig.bars.close[45] * 0.998, 1)
    d = decision(2, rig.bar_ns(47), side=Side.BUY, intent=Intent.TAKE_PROFIT, qty=QTY / 2, ref=rig.bars.close[46],
                 stop=limit, reason=DecisionReason.PARTIAL_TAKE_PROFIT)  # fmt: skip
    assert not isinstance(rig.core.admit(d, test_ccxt_venue.NOW), Outcome)
    rig.emu.install_faults(Fault("partial_fill", endpoint="order_create", market="usdm", fraction=0.5))
    req = take_profit_order(rig.core.ids, USDM, QTY / 2, limit, 2, d.market_ts_ns, Side.BUY)
    rig.core.journal.record_take_profit(USDM, req.client_order_id, limit, QTY / 2)
    await rig.core.ops.place(req)
    through = _first_bar_trading_below(rig, limit, 47) + 1
    await rig.core.venue.observe_time(rig.bar_ns(through))  # half of it fills ...
    await rig.core.aclose()  # ... and the executor dies
    rig.core = await open_core(rig.emu, rig.path, allow_short=True)
    [recovered] = rig.core.recovered
    assert recovered.confirmation.executed_qty == pytest.approx(QTY / 4)
    assert rig.core.gateway.take_profits == {} and rig.core.journal.take_profits() == {}
    cycle = await Reconciler(rig.core, [USDM], rules=ReconcileRules(phantom_grace_s=0, phantom_misses=1)).cycle(
        rig.bar_ns(through))  # fmt: skip
    assert cycle.plan.corrections == (), cycle.plan
    out = await on_decision(rig, decision(3, rig.bar_ns(through + 1), side=Side.BUY, intent=Intent.CLOSE,
                                          qty=QTY * 3 / 4, ref=rig.bars.close[through]))  # fmt: skip
    assert out.confirmation.executed_qty == pytest.approx(QTY * 3 / 4) and _held(rig) == 0.0
    _agree(rig)
