"""The take-profit leg on the executor's side (issue #16), pure or in-process on the paper venue: the
planning rules, the paper venue's resting limits matched against the bars (no look-ahead: only bars
that opened before the venue's clock), and the executor core with its journal answering TAKE_PROFIT
and its report, cancelling the leg with every exit."""

from __future__ import annotations

from array import array
from pathlib import Path

import pytest

from executor.core import ExecutorCore
from executor.ledger import Ledger
from executor.planning import PlaceTakeProfit, Refusal, ReportTakeProfit, plan_decision, take_profit_order
from executor.venue.base import GATEWAY, OrderRequest, OrderStatus, OrderType
from executor.venue.coid import OrderIds
from executor.venue.paper import PaperVenue
from foundation.bars import Bars
from protocol import DecisionReason, Instrument, Intent, RejectCode, Side, Status, TradeDecision

PERP = Instrument.symbol("BTC-PERP")
IDS = OrderIds("0000000a")
T0 = 1_700_000_000_000  # ms
MIN = 60_000
NOW = 1_900_000_000_000_000_000


def _bars() -> Bars:
    """Six 1-minute bars: opens 100, 101, 102, 104, 99, 100; highs open + 1, lows open - 1."""
    opens = [100.0, 101.0, 102.0, 104.0, 99.0, 100.0]
    ts = array("q", [T0 + i * MIN for i in range(len(opens))])
    return Bars(ts, array("d", opens), array("d", [o + 1 for o in opens]), array("d", [o - 1 for o in opens]),
                array("d", opens), array("d", [1.0] * len(opens)), "test")  # fmt: skip


def ns(bar: int) -> int:
    return (T0 + bar * MIN) * 1_000_000


def decision(did: int, bar: int, *, side: Side = Side.SELL, intent: Intent = Intent.TAKE_PROFIT, qty: float = 0.5,
             price: float = 102.5, reason: DecisionReason = DecisionReason.PARTIAL_TAKE_PROFIT,
             ref: float = 100.0) -> TradeDecision:  # fmt: skip
    return TradeDecision(
        decision_id=did, instrument=PERP, side=side, intent=intent, reason=reason, quantity=qty, reference_price=ref,
        max_slippage_bps=10_000, created_at_ns=NOW - 1, expires_at_ns=2**64 - 1, market_ts_ns=ns(bar),
        stop_price=price if intent in (Intent.TAKE_PROFIT, Intent.PROTECT) else 0.0,
    )  # fmt: skip


def holding(position: float) -> Ledger:
    ledger = Ledger(10_000.0, allow_short=True)
    if position:
        ledger.apply_fill(Side.BUY if position > 0 else Side.SELL, PERP, abs(position), 100.0, 0.0)
    return ledger


def plan(d: TradeDecision, position: float, resting: bool = True) -> object:
    return plan_decision(d, holding(position), IDS, listed=True, protective=False, venue_name="v", expired=False,
                         resting_limits=resting)  # fmt: skip


# -- planning -------------------------------------------------------------------------------------


def test_a_take_profit_rests_on_the_closing_side_where_a_limit_can_rest() -> None:
    """TAKE_PROFIT → PlaceTakeProfit (a reduce-only LIMIT, leg t, owned by the gateway); a REDUCE with reason
    PARTIAL_TAKE_PROFIT → ReportTakeProfit, no order; refused where no limit rests, with no position on
    the closing side, or larger than the position."""
    assert plan(decision(2, 1), 1.0) == PlaceTakeProfit("BTC-PERP", 0.5, 102.5, Side.SELL)
    assert plan(decision(3, 2, intent=Intent.REDUCE, ref=102.5), 1.0) == ReportTakeProfit("BTC-PERP", 1.0)
    assert plan(decision(2, 1, side=Side.BUY, price=97.5), -1.0) == PlaceTakeProfit("BTC-PERP", 0.5, 97.5, Side.BUY)
    for d, pos, resting, code in ((decision(2, 1), 1.0, False, RejectCode.GUARD),
                                  (decision(2, 1), 0.0, True, RejectCode.INSUFFICIENT_POSITION),
                                  (decision(2, 1), -1.0, True, RejectCode.INSUFFICIENT_POSITION),
                                  (decision(2, 1, qty=1.5), 1.0, True, RejectCode.INSUFFICIENT_POSITION)):  # fmt: skip
        refused = plan(d, pos, resting)
        assert isinstance(refused, Refusal) and refused.reject_code is code, (d, pos, resting)
    req = take_profit_order(IDS, "BTC-PERP", 0.5, 102.5, 2, ns(1), Side.SELL)
    assert (req.type, req.reduce_only, req.price, req.owner, req.client_order_id) == (
        OrderType.LIMIT, True, 102.5, GATEWAY, IDS.take_profit(2))


# -- the paper venue's resting limits -------------------------------------------------------------


async def test_a_resting_limit_fills_at_its_limit_on_the_first_bar_through_it_and_never_before() -> None:
    """Placed at bar 1's open: bar 1 (high 102) does not reach 102.5; bar 2 (high 103) does — but only once
    the clock has passed bar 2's open; it fills at the limit, for at most the position, with the fee."""
    venue = PaperVenue(_bars(), instrument=PERP, fee_bps=10.0)
    ledger = holding(1.0)
    venue.bind(ledger)
    req = take_profit_order(IDS, "BTC-PERP", 0.5, 102.5, 2, ns(1), Side.SELL)
    placed = await venue.submit(req)
    assert placed.status is OrderStatus.OPEN and [o.client_order_id for o in await venue.open_orders()] == [IDS.take_profit(2)]
    await venue.observe_time(ns(2))  # bar 1 happened: below the limit
    assert (await venue.fetch_order(req.client_order_id, "BTC-PERP")).status is OrderStatus.OPEN
    await venue.observe_time(ns(3))  # bar 2 happened: through it
    filled = await venue.fetch_order(req.client_order_id, "BTC-PERP")
    assert (filled.status, filled.filled, filled.avg_price, filled.updated_at_ns) == (OrderStatus.FILLED, 0.5, 102.5, ns(2))
    assert filled.fee == pytest.approx(0.5 * 102.5 * 10 / 1e4) and await venue.open_orders() == []
    assert ledger.position(PERP) == 1.0  # the venue filled it; the executor books it when it reports it


async def test_the_venue_holds_what_its_resting_limit_filled_before_the_executor_books_it() -> None:
    """A portfolio (issue #16): another instrument's decision moves the clock past the bar that fills the
    take-profit, and reconciliation asks before the report books it — the venue's holdings already
    hold the fill (its own book), the ledger does not yet: no drift, and nothing set back."""
    eth = Instrument.symbol("ETH-PERP")
    venue = PaperVenue(_bars(), instrument=PERP, markets={eth: _bars()})
    ledger = holding(1.0)
    venue.bind(ledger)
    await venue.submit(take_profit_order(IDS, "BTC-PERP", 0.5, 102.5, 2, ns(1), Side.SELL))
    assert (await venue.holdings(["BTC-PERP"]))["BTC-PERP"].qty == 1.0
    await venue.observe_time(ns(3))  # ETH's decision on bar 3: BTC's bar 2 went through the limit
    assert (await venue.holdings(["BTC-PERP", "ETH-PERP"]))["BTC-PERP"].qty == 0.5
    assert ledger.position(PERP) == 1.0
    ledger.apply_fill(Side.SELL, PERP, 0.5, 102.5, 0.0)  # the report books it
    assert (await venue.holdings(["BTC-PERP"]))["BTC-PERP"].qty == ledger.position(PERP) == 0.5
    close = OrderRequest(client_order_id="close-5", decision_id=5, symbol="BTC-PERP", side=Side.SELL,
                         type=OrderType.MARKET, amount=0.5, reduce_only=True, market_ts_ns=ns(4), reference_price=99.0,
                         max_slippage_bps=10_000)  # fmt: skip
    assert (await venue.submit(close)).filled == 0.5  # a market fill moves the venue's book at once
    assert await venue.holdings(["BTC-PERP"]) == {}


async def test_a_gap_fills_at_the_open_a_cancel_before_the_bar_cancels_and_nothing_left_expires() -> None:
    """A sell limit at 103 when bar 3 opens at 104 fills at 104 (better); a buy limit cancelled before any
    bar reaches it is CANCELED; a reduce-only limit with no position left expires unfilled."""
    venue = PaperVenue(_bars(), instrument=PERP)
    venue.bind(holding(1.0))
    gap = take_profit_order(IDS, "BTC-PERP", 0.5, 103.0, 2, ns(3), Side.SELL)
    await venue.submit(gap)
    await venue.observe_time(ns(4))
    assert (await venue.fetch_order(gap.client_order_id, "BTC-PERP")).avg_price == 104.0
    short = PaperVenue(_bars(), instrument=PERP)
    short.bind(holding(-1.0))
    cover = take_profit_order(IDS, "BTC-PERP", 0.5, 97.5, 3, ns(1), Side.BUY)
    await short.submit(cover)
    gone = await short.cancel(cover.client_order_id, "BTC-PERP")
    assert gone.status is OrderStatus.CANCELED and gone.filled == 0.0
    flat = PaperVenue(_bars(), instrument=PERP)
    flat.bind(holding(0.0))
    await flat.submit(take_profit_order(IDS, "BTC-PERP", 0.5, 100.5, 4, ns(0), Side.SELL))
    await flat.observe_time(ns(2))
    assert (await flat.fetch_order(IDS.take_profit(4), "BTC-PERP")).status is OrderStatus.EXPIRED


# -- the executor core on the paper venue -----------------------------------------------------------


async def _core(tmp_path: Path) -> ExecutorCore:
    return await ExecutorCore.open(tmp_path / "executor.sqlite", PaperVenue(_bars(), instrument=PERP, fee_bps=0.0),
                                   10_000.0, allow_short=True)  # fmt: skip


async def test_the_core_rests_reports_and_cancels_the_take_profit_through_its_journal(tmp_path: Path) -> None:
    """Entry; TAKE_PROFIT → ACCEPTED, journaled; its report before a bar trades through → REJECTED, it rests
    on; after → FILLED at the limit, the ledger reduced, the journal cleared. A second take-profit is
    cancelled by the CLOSE, which fills at the market."""
    core = await _core(tmp_path)
    try:
        buy = decision(1, 0, side=Side.BUY, intent=Intent.OPEN, qty=1.0, reason=DecisionReason.SIGNAL)
        assert (await core.on_decision(buy, NOW)).confirmation.status is Status.FILLED
        accepted = (await core.on_decision(decision(2, 1), NOW)).confirmation
        assert accepted.status is Status.ACCEPTED and core.journal.take_profits() == {
            "BTC-PERP": (IDS.take_profit(2).replace("0000000a", core.namespace), 102.5, 0.5)}
        early = (await core.on_decision(decision(3, 2, intent=Intent.REDUCE, ref=102.5), NOW)).confirmation
        assert (early.status, early.reject_code) == (Status.REJECTED, RejectCode.VENUE_ERROR)
        report = (await core.on_decision(decision(4, 3, intent=Intent.REDUCE, ref=102.5), NOW)).confirmation
        assert (report.status, report.executed_qty, report.avg_price) == (Status.FILLED, 0.5, 102.5)
        assert core.ledger.position(PERP) == 0.5 and core.journal.take_profits() == {}
        again = (await core.on_decision(decision(5, 3, price=110.0, qty=0.25), NOW)).confirmation
        assert again.status is Status.ACCEPTED
        close = (await core.on_decision(decision(6, 4, intent=Intent.CLOSE, reason=DecisionReason.SIGNAL,
                                                 ref=104.0), NOW)).confirmation  # fmt: skip
        assert close.status is Status.FILLED and close.executed_qty == 0.5 and core.ledger.position(PERP) == 0.0
        assert core.gateway.take_profits == {} and core.journal.take_profits() == {}
        assert (await core.venue.fetch_order(core.ids.take_profit(5), "BTC-PERP")).status is OrderStatus.CANCELED
    finally:
        core.close()


async def test_a_restart_on_the_paper_venue_rests_the_journaled_take_profit_again(tmp_path: Path) -> None:
    """The paper venue's orders die with the process; its journaled take-profit does not: a restarted
    executor rests it again from its decision's market time, so it fills where the uninterrupted run's
    would (bar 2, at the limit) — a kill cannot change a paper run's trades."""
    core = await _core(tmp_path)
    try:
        buy = decision(1, 0, side=Side.BUY, intent=Intent.OPEN, qty=1.0, reason=DecisionReason.SIGNAL)
        await core.on_decision(buy, NOW)
        assert (await core.on_decision(decision(2, 1), NOW)).confirmation.status is Status.ACCEPTED
    finally:
        core.close()
    core = await _core(tmp_path)  # a new process: a new paper venue, empty
    try:
        assert set(core.gateway.take_profits) == {"BTC-PERP"}
        report = (await core.on_decision(decision(3, 3, intent=Intent.REDUCE, ref=102.5), NOW)).confirmation
        assert (report.status, report.executed_qty, report.avg_price) == (Status.FILLED, 0.5, 102.5)
        assert core.ledger.position(PERP) == 0.5 and core.journal.take_profits() == {}
    finally:
        core.close()


async def test_a_fill_the_ledger_would_refuse_is_not_journaled(tmp_path: Path) -> None:
    """A venue report selling more than the ledger holds (a fill booked twice elsewhere) is answered FAILED
    and never journaled: the journal still folds into a ledger, so the executor can open it again."""
    from executor.venue.base import OrderReport

    core = await _core(tmp_path)
    try:
        buy = decision(1, 0, side=Side.BUY, intent=Intent.OPEN, qty=1.0, reason=DecisionReason.SIGNAL)
        await core.on_decision(buy, NOW)
        sell = decision(2, 1, intent=Intent.CLOSE, qty=1.0, reason=DecisionReason.SIGNAL)
        core.admit(sell, NOW)
        too_much = OrderReport(core.ids.order(2), "x", "BTC-PERP", Side.SELL, OrderType.MARKET, OrderStatus.FILLED,
                               2.0, 2.0, 101.0, 0.0, updated_at_ns=ns(1))  # fmt: skip
        out = core.settle(sell, too_much, duplicate=False, conflict=False)
        assert out.confirmation.status is Status.FAILED and core.ledger.position(PERP) == 1.0
    finally:
        core.close()
    again = await _core(tmp_path)  # the journal opens: nothing unfoldable was written
    try:
        assert again.ledger.position(PERP) == 1.0
    finally:
        again.close()


async def test_a_decision_arriving_while_a_restarted_executor_opens_runs_once(tmp_path: Path) -> None:
    """Chaos on a portfolio found it: a copy of a decision left in flight reaches the endpoint while it opens
    (its datagram waited on the pre-bound socket); start() must not queue the journal's copy as a second job,
    which would place the take-profit again and fail for ever on the journal's "not in flight"."""
    import asyncio
    import time

    from harness import sample

    from executor.app import ExecutorApp
    from executor.metrics import ExecutorMetrics
    from protocol import Codec, derive_key

    core = await _core(tmp_path)
    try:
        await core.on_decision(decision(1, 0, side=Side.BUY, intent=Intent.OPEN, qty=1.0, reason=DecisionReason.SIGNAL),
                               NOW)  # fmt: skip
        tp = decision(2, 1)
        core.admit(tp, time.time_ns())  # journaled, then the process died: in flight
        metrics = ExecutorMetrics()
        app = ExecutorApp(core, Codec(derive_key(b"x" * 32)), metrics, ("127.0.0.1", 0), ("127.0.0.1", 9),
                          retry_unresolved_s=0.05)  # fmt: skip
        app.on_decision(tp, time.time_ns())  # the brain's copy, delivered as the endpoint opens
        await app.start()
        try:
            for _ in range(100):
                if app.idle:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # a second job, had there been one, would have failed by now
            assert app.idle and sample(metrics.handler_errors) == 0
            conf = core.journal.confirmation_for(2)
            assert conf is not None and conf.status is Status.ACCEPTED
            assert set(core.gateway.take_profits) == {"BTC-PERP"}
        finally:
            app.close()
    finally:
        core.close()


async def test_the_paper_venue_remembers_a_bounded_number_of_market_orders(monkeypatch) -> None:
    """The soak of issue #17 found every market order kept for ever (~500 bytes a decision): the venue keeps
    the newest MARKET_ORDERS_KEPT of them — enough for any decision still in flight — and every resting limit."""
    import executor.venue.paper as paper

    monkeypatch.setattr(paper, "MARKET_ORDERS_KEPT", 3)  # the bound itself, not the venue's behaviour, is scaled
    venue = PaperVenue(_bars(), instrument=PERP)
    venue.bind(holding(1.0))
    tp = take_profit_order(IDS, "BTC-PERP", 0.5, 110.0, 1, ns(0), Side.SELL)
    await venue.submit(tp)
    for did in range(2, 8):
        req = OrderRequest(client_order_id=f"m{did}", decision_id=did, symbol="BTC-PERP", side=Side.BUY,
                           type=OrderType.MARKET, amount=0.01, market_ts_ns=ns(1), reference_price=101.0,
                           max_slippage_bps=10_000)  # fmt: skip
        assert (await venue.submit(req)).status is OrderStatus.FILLED
    kept = [c for c in (f"m{d}" for d in range(2, 8)) if await venue.fetch_order(c, "BTC-PERP") is not None]
    assert kept == ["m5", "m6", "m7"]
    assert (await venue.fetch_order(tp.client_order_id, "BTC-PERP")).status is OrderStatus.OPEN
