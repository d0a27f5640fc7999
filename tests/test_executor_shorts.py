"""Short positions on the executor's side (issue #16): the signed ledger, the planning rules (no
netting, closing sides, allow_short), the paper venue as a 1x perpetual, the gateway's stop and exit
orders on the BUY side, the reconcile diff of signed positions, and the settings that refuse shorts on
spot venues. Pure or in-process; the processes and the local exchange are exercised in
``test_shorts_end_to_end.py``."""

from __future__ import annotations

import dataclasses
from array import array

import math

import pytest

from executor.ledger import Ledger, LedgerError
from executor.planning import (
    EntryStop,
    ExitPosition,
    MoveStop,
    PlaceOrder,
    Refusal,
    closing_side,
    entry_stop,
    exit_order,
    plan_decision,
    stop_order,
)
from executor.reconcile import (
    Adopt,
    BeliefView,
    ClearPhantom,
    Evidence,
    FixDrift,
    PlaceStop,
    ReconcileRules,
    ReconcileState,
    StopView,
    diff,
)
from executor.settings import ExecutorSettings
from executor.venue.base import OrderReport, OrderStatus, OrderType
from executor.venue.coid import OrderIds
from executor.venue.paper import PaperRefusal, PaperVenue
from foundation.bars import Bars
from foundation.errors import ConfigError
from protocol import DecisionReason, Instrument, Intent, LocalProtocolError, RejectCode, Side, Status, TradeDecision

PERP = Instrument.symbol("BTC/USDT:USDT")
SYMBOL = str(PERP)
IDS = OrderIds("0000000a")
T0 = 1_700_000_000_000_000_000


def decision(did: int = 7, *, side: Side = Side.SELL, intent: Intent = Intent.OPEN, qty: float = 0.5,
             ref: float = 100.0, stop: float = 0.0, slip: int = 50) -> TradeDecision:  # fmt: skip
    return TradeDecision(
        decision_id=did, instrument=PERP, side=side, intent=intent, reason=DecisionReason.SIGNAL, quantity=qty,
        reference_price=ref, max_slippage_bps=slip, created_at_ns=T0, expires_at_ns=T0 + 10**9, market_ts_ns=T0,
        stop_price=stop,
    )  # fmt: skip


def ledger_with(position: float) -> Ledger:
    """A ledger allowing shorts that holds ``position`` (signed) at 100."""
    ledger = Ledger(10_000.0, allow_short=True)
    if position:
        ledger.apply_fill(Side.BUY if position > 0 else Side.SELL, PERP, abs(position), 100.0, 0.0)
    return ledger


def plan(d: TradeDecision, position: float = 0.0, *, protective: bool = True, allow_short: bool = True) -> object:
    return plan_decision(d, ledger_with(position), IDS, listed=True, protective=protective, venue_name="v",
                         expired=False, allow_short=allow_short)  # fmt: skip


# -- the ledger -----------------------------------------------------------------------------------


def test_a_short_is_a_negative_position_and_its_sale_adds_cash() -> None:
    """Selling from flat opens a short (< 0) at the fill price; cash grows by the proceeds less the fee;
    a second sale re-weights the average; a buy covers, and the last cover leaves the ledger flat."""
    ledger = Ledger(1_000.0, allow_short=True)
    ledger.apply_fill(Side.SELL, PERP, 2.0, 100.0, 0.5)
    assert ledger.position(PERP) == -2.0 and ledger.avg_cost(PERP) == 100.0 and ledger.cash == 1_000.0 + 200.0 - 0.5
    ledger.apply_fill(Side.SELL, PERP, 2.0, 110.0, 0.5)
    assert ledger.position(PERP) == -4.0 and ledger.avg_cost(PERP) == 105.0
    ledger.apply_fill(Side.BUY, PERP, 1.0, 90.0, 0.25)
    assert ledger.position(PERP) == -3.0 and ledger.avg_cost(PERP) == 105.0  # a cover keeps the average
    ledger.apply_fill(Side.BUY, PERP, 3.0, 90.0, 0.25)
    assert ledger.position(PERP) == 0.0 and ledger.positions() == {}
    # bought back at 90 what was sold at 105 on average: +15 a unit, less 1.5 of fees
    assert ledger.cash == pytest.approx(1_000.0 + 4 * 15.0 - 1.5)


def test_the_ledger_never_nets_through_zero_and_refuses_shorts_when_not_allowed() -> None:
    """A cover larger than the short, or a sale larger than the long, is refused whole (the ledger is
    unchanged); a sale from flat is refused on a ledger without shorts."""
    short = ledger_with(-1.0)
    before = short.snapshot()
    with pytest.raises(LedgerError, match="exceeds the position -1.0"):
        short.apply_fill(Side.BUY, PERP, 1.5, 100.0, 0.0)
    assert short.snapshot() == before
    long_ = ledger_with(1.0)
    with pytest.raises(LedgerError, match="exceeds the position 1.0"):
        long_.apply_fill(Side.SELL, PERP, 1.5, 100.0, 0.0)
    spot = Ledger(1_000.0)
    with pytest.raises(LedgerError, match="no shorts on this venue"):
        spot.apply_fill(Side.SELL, PERP, 1.0, 100.0, 0.0)
    assert spot.cash == 1_000.0 and spot.positions() == {}


def test_check_refuses_what_apply_refuses_and_changes_nothing() -> None:
    """``Ledger.check`` (a fill checked before it is journaled) raises exactly what ``apply`` would
    and leaves the ledger as it was; a fill it passes, applied, moves cash and position."""
    from executor.ledger import Fill

    bad = [Fill(1, PERP, Side.BUY, 1.5, 100.0, 0.0, 1), Fill(2, PERP, Side.BUY, 0.1, math.nan, 0.0, 2),
           Fill(3, PERP, Side.BUY, 0.0, 0.0, math.inf, 3), Fill(4, PERP, Side.BUY, 0.0, 0.0, 0.1, 4, fee_native=-1)]  # fmt: skip
    for fill in bad:
        short = ledger_with(-1.0)
        before = short.snapshot()
        with pytest.raises(LedgerError) as checked:
            short.check(fill)
        assert short.snapshot() == before
        with pytest.raises(LedgerError) as applied:
            short.apply(fill)
        assert str(checked.value) == str(applied.value) and short.snapshot() == before
    short = ledger_with(-1.0)
    good = Fill(5, PERP, Side.BUY, 0.4, 99.0, 0.04, 5)
    short.check(good)
    short.apply(good)
    assert short.position(PERP) == pytest.approx(-0.6) and short.cash == ledger_with(-1.0).cash - (0.4 * 99.0 + 0.04)


def test_from_fills_rebuilds_a_short_bit_for_bit() -> None:
    """The ledger is a fold: the fills of a short, applied again, give the same snapshot."""
    from executor.ledger import Fill

    fills = [Fill(1, PERP, Side.SELL, 0.3, 101.25, 0.03, 1), Fill(2, PERP, Side.SELL, 0.2, 99.5, 0.02, 2),
             Fill(3, PERP, Side.BUY, 0.1, 97.0, 0.01, 3)]  # fmt: skip
    live = Ledger(500.0, allow_short=True)
    for f in fills:
        live.apply(f)
    assert Ledger.from_fills(500.0, fills, allow_short=True).snapshot() == live.snapshot()
    assert live.position(PERP) == pytest.approx(-0.4)


# -- planning -------------------------------------------------------------------------------------


def test_a_short_entry_is_a_sell_limit_ioc_below_the_reference_protected_above() -> None:
    """SELL/OPEN with allow_short: a SELL LIMIT_IOC at the slippage bound below the reference; once filled
    its stop is a BUY at stop_for_fill of the fill, above it."""
    d = decision(stop=108.0)
    got = plan(d)
    assert isinstance(got, PlaceOrder) and got.protect and got.held == 0.0
    assert got.request.side is Side.SELL and got.request.type is OrderType.LIMIT_IOC
    assert got.request.price == 100.0 * (1 - 50 / 1e4) and not got.request.reduce_only
    report = OrderReport("c", "1", SYMBOL, Side.SELL, OrderType.LIMIT_IOC, OrderStatus.FILLED, 0.5, 0.5, 99.8, 0.0)
    assert entry_stop(d, 0.0, report, set()) == EntryStop(SYMBOL, 0.5, 99.8 * (108.0 / 100.0), False, Side.BUY)


def test_a_short_entry_is_refused_without_allow_short_and_against_a_long() -> None:
    """No allow_short: REJECTED/GUARD naming the setting. Against a held position (either way): GUARD, no
    netting — a reversal is two decisions."""
    off = plan(decision(), allow_short=False)
    assert isinstance(off, Refusal) and off.reject_code is RejectCode.GUARD and "allow_short" in off.detail
    against_long = plan(decision(), 0.5)
    assert isinstance(against_long, Refusal) and against_long.reject_code is RejectCode.GUARD
    assert "no netting" in against_long.detail
    buy_while_short = plan(decision(side=Side.BUY), -0.5)
    assert isinstance(buy_while_short, Refusal) and buy_while_short.reject_code is RejectCode.GUARD


def test_a_short_is_exited_by_a_buy_and_never_by_a_sell() -> None:
    """BUY/CLOSE of a short goes through the gateway as a BUY (clamped to the short within tolerance);
    without protective orders it is a reduce-only MARKET BUY with no slippage bound. A BUY/CLOSE with no
    short, a SELL/CLOSE of a short and a cover larger than the short are INSUFFICIENT_POSITION."""
    got = plan(decision(side=Side.BUY, intent=Intent.CLOSE, qty=0.5, ref=95.0), -0.5)
    assert got == ExitPosition(SYMBOL, 0.5, 0.5, 95.0, Side.BUY)
    bare = plan(decision(side=Side.BUY, intent=Intent.CLOSE, qty=0.5), -0.5, protective=False)
    assert isinstance(bare, PlaceOrder) and bare.request.side is Side.BUY and bare.request.reduce_only
    assert bare.request.type is OrderType.MARKET and bare.held == 0.5
    for d, pos in ((decision(side=Side.BUY, intent=Intent.CLOSE), 0.0),
                   (decision(side=Side.SELL, intent=Intent.CLOSE), -0.5),
                   (decision(side=Side.BUY, intent=Intent.REDUCE, qty=0.8), -0.5)):  # fmt: skip
        refused = plan(d, pos)
        assert isinstance(refused, Refusal) and refused.reject_code is RejectCode.INSUFFICIENT_POSITION, (d, pos)


def test_a_short_is_protected_by_a_buy_stop_and_a_protect_on_the_wrong_side_is_refused() -> None:
    """PROTECT of a short: its side must be BUY (the closing side); the stop order is a reduce-only BUY
    STOP_MARKET on derivatives, a BUY STOP_LOSS_LIMIT with its limit above the trigger on spot."""
    assert plan(decision(side=Side.BUY, intent=Intent.PROTECT, stop=104.0), -0.5) == MoveStop(SYMBOL, 0.5, 104.0,
                                                                                               Side.BUY)  # fmt: skip
    wrong = plan(decision(side=Side.SELL, intent=Intent.PROTECT, stop=104.0), -0.5)
    assert isinstance(wrong, Refusal) and wrong.reject_code is RejectCode.INSUFFICIENT_POSITION
    assert "short" in wrong.detail
    assert closing_side(-0.5) is Side.BUY and closing_side(0.5) is Side.SELL
    stop = stop_order(IDS, SYMBOL, 0.5, 104.0, 9, T0, derivatives=True, limit_offset_bps=50.0, side=Side.BUY)
    assert (stop.side, stop.type, stop.reduce_only, stop.price) == (Side.BUY, OrderType.STOP_MARKET, True, None)
    spot = stop_order(IDS, SYMBOL, 0.5, 104.0, 9, T0, derivatives=False, limit_offset_bps=50.0, side=Side.BUY)
    assert spot.price == 104.0 * (1 + 50 / 1e4) > spot.stop_price
    out = exit_order(IDS, SYMBOL, 0.5, 9, T0, 95.0, derivatives=True, side=Side.BUY)
    assert (out.side, out.type, out.reduce_only) == (Side.BUY, OrderType.MARKET, True)


def test_a_short_entrys_stop_must_be_above_its_reference() -> None:
    """Protocol v6: a SELL/OPEN stop at or below its reference is refused at construction (and on the wire)."""
    with pytest.raises(LocalProtocolError, match="above reference_price"):
        decision(stop=99.0)
    with pytest.raises(LocalProtocolError, match="above reference_price"):
        decision(stop=100.0)
    assert decision(stop=100.5).stop_for_fill(90.0) == 90.0 * (100.5 / 100.0)


# -- the paper venue as a 1x perpetual -------------------------------------------------------------


def _bars() -> Bars:
    ts = array("q", [T0 // 1_000_000 + i * 60_000 for i in range(4)])
    prices = array("d", [100.0, 101.0, 102.0, 103.0])
    return Bars(ts, prices, prices, prices, prices, array("d", [1.0] * 4), "test")


def test_the_paper_venue_sells_short_against_collateral_and_covers_clamped() -> None:
    """A short entry needs notional + fee of collateral: cash less twice the short already open (1x); a
    cover (reduce-only) is clamped to the short within tolerance; without shorts the sale is refused."""
    venue = PaperVenue(_bars(), instrument=PERP, fee_bps=10.0)
    ledger = Ledger(100.0, allow_short=True)
    fill = venue.quote(decision(qty=0.99), ledger)
    assert not isinstance(fill, PaperRefusal) and fill.qty == 0.99 and fill.price == 100.0
    too_big = venue.quote(decision(qty=1.0), ledger)  # 100 + 0.1 fee > 100 of cash
    assert isinstance(too_big, PaperRefusal) and too_big.reject_code is RejectCode.INSUFFICIENT_FUNDS
    ledger.apply_fill(Side.SELL, PERP, 0.5, 100.0, 0.05)  # cash 149.95, short 0.5 at 100
    room = venue.quote(decision(qty=0.5), ledger)  # collateral 149.95 - 2 * 0.5 * 100 = 49.95 < 50.05
    assert isinstance(room, PaperRefusal) and room.reject_code is RejectCode.INSUFFICIENT_FUNDS
    cover = venue.quote(decision(side=Side.BUY, intent=Intent.CLOSE, qty=0.5 * (1 + 1e-10)), ledger)
    assert not isinstance(cover, PaperRefusal) and cover.qty == 0.5
    over = venue.quote(decision(side=Side.BUY, intent=Intent.CLOSE, qty=0.6), ledger)
    assert isinstance(over, PaperRefusal) and over.reject_code is RejectCode.INSUFFICIENT_POSITION
    no_shorts = venue.quote(decision(qty=0.1), Ledger(100.0))
    assert isinstance(no_shorts, PaperRefusal) and no_shorts.reject_code is RejectCode.INSUFFICIENT_POSITION
    assert no_shorts.status is Status.REJECTED


# -- the reconcile diff with signed positions ------------------------------------------------------

RULES = ReconcileRules(phantom_grace_s=0.0, phantom_misses=1)


def _run(belief: BeliefView, evidence: Evidence) -> object:
    return diff(belief, evidence, ReconcileState(), 0, RULES, is_our_stop=lambda c: c.startswith("td"), protective=True)


def test_an_orphan_short_is_adopted_with_its_stop_above() -> None:
    """A short on the venue the ledger lacks: adopted signed, its stop adopt_stop_pct above its entry."""
    plan = _run(BeliefView({}, {}, {}), Evidence({SYMBOL: (-0.3, 200.0)}, []))
    assert plan.corrections == (Adopt(SYMBOL, -0.3, 200.0, 200.0 * 1.08),)


def test_a_phantom_short_is_cleared_and_a_flip_is_a_drift() -> None:
    """A ledger short gone from the venue: ClearPhantom with the signed quantity. A venue long where the
    ledger holds a short: FixDrift of the two signed sizes (the reconciler makes it two corrections)."""
    phantom = _run(BeliefView({SYMBOL: -0.4}, {SYMBOL: 100.0}, {}), Evidence({}, [], marks={SYMBOL: 101.0}))
    assert phantom.corrections == (ClearPhantom(SYMBOL, -0.4, 101.0),)
    flip = _run(BeliefView({SYMBOL: -0.4}, {SYMBOL: 100.0}, {}), Evidence({SYMBOL: (0.2, 99.0)}, [],
                                                                           marks={SYMBOL: 101.0}))  # fmt: skip
    assert FixDrift(SYMBOL, -0.4, 0.2, 101.0) in flip.corrections


def test_a_short_without_its_buy_stop_gets_one_and_a_sell_stop_does_not_cover_it() -> None:
    """Stop coverage of a short: a held SELL stop does not count (it is not the closing side); a BUY stop
    is placed above the average cost."""
    sell_stop = OrderReport("tdp1", "1", SYMBOL, Side.SELL, OrderType.STOP_MARKET, OrderStatus.OPEN, 0.4, 0.0, 0.0,
                            0.0, 90.0)  # fmt: skip
    plan = _run(BeliefView({SYMBOL: -0.4}, {SYMBOL: 100.0}, {SYMBOL: StopView("tdp1", 0.4, 90.0, Side.SELL)}),
                Evidence({SYMBOL: (-0.4, 100.0)}, [sell_stop]))  # fmt: skip
    kinds = [type(c).__name__ for c in plan.corrections]
    assert "CancelStop" in kinds
    assert PlaceStop(SYMBOL, -0.4, 100.0 * 1.08) in plan.corrections


# -- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("venue", "exchange", "needle"), [
    ("solana-emulator", "binance", "swaps tokens"),
    ("binance-emulator", "binance", "Binance spot"),
])  # fmt: skip
def test_allow_short_is_refused_on_spot_venues(tmp_path, venue: str, exchange: str, needle: str) -> None:
    """allow_short on a spot venue is a configuration error that names the setting and the venue."""
    settings = ExecutorSettings(venue=venue, exchange=exchange, allow_short=True, emulator_port=1,
                                emulator_ca=tmp_path / "ca.pem", solana_rpc_url="http://127.0.0.1:1",
                                solana_keypair_file=tmp_path / "k.json",
                                instrument="So11111111111111111111111111111111111111112")  # fmt: skip
    with pytest.raises(ConfigError, match=needle) as err:
        settings.check_venue()
    assert "allow_short" in str(err.value)


# -- the paper venue with several markets (the portfolio's executor side) ---------------------------


def _flat_bars(price: float) -> Bars:
    ts = array("q", [T0 // 1_000_000 + i * 60_000 for i in range(4)])
    prices = array("d", [price] * 4)
    return Bars(ts, prices, prices, prices, prices, array("d", [1.0] * 4), f"{price}")


def test_several_markets_fill_at_their_own_bars_and_share_the_collateral() -> None:
    """Two markets: each decision fills at its own instrument's open; a third instrument is refused
    UNKNOWN_INSTRUMENT naming the listed ones; every short held takes collateral, priced at its own market,
    from an entry on any instrument."""
    eth = Instrument.symbol("ETH/USDT:USDT")
    venue = PaperVenue(_bars(), instrument=PERP, fee_bps=0.0, markets={eth: _flat_bars(10.0)})
    assert venue.lists(SYMBOL) and venue.lists(str(eth)) and not venue.lists("SOL/USDT:USDT")
    ledger = Ledger(100.0, allow_short=True)
    eth_short = TradeDecision(
        decision_id=8, instrument=eth, side=Side.SELL, intent=Intent.OPEN, reason=DecisionReason.SIGNAL, quantity=3.0,
        reference_price=10.0, max_slippage_bps=50, created_at_ns=T0, expires_at_ns=T0 + 10**9, market_ts_ns=T0,
    )  # fmt: skip
    fill = venue.quote(eth_short, ledger)
    assert not isinstance(fill, PaperRefusal) and fill.price == 10.0
    ledger.apply_fill(Side.SELL, eth, 3.0, 10.0, 0.0)  # cash 130, short 30 of ETH notional
    # 130 - 2 x 30 = 70 free: a BTC long of 0.69 (69) fits, 0.71 (71) does not
    assert not isinstance(venue.quote(decision(side=Side.BUY, qty=0.69), ledger), PaperRefusal)
    refused = venue.quote(decision(side=Side.BUY, qty=0.71), ledger)
    assert isinstance(refused, PaperRefusal) and refused.reject_code is RejectCode.INSUFFICIENT_FUNDS
    assert "free of the shorts' collateral" in refused.detail
    sol = dataclasses.replace(eth_short, instrument=Instrument.symbol("SOL/USDT:USDT"))
    unknown = venue.quote(sol, ledger)
    assert isinstance(unknown, PaperRefusal) and unknown.reject_code is RejectCode.UNKNOWN_INSTRUMENT
    assert "BTC/USDT:USDT, ETH/USDT:USDT" in unknown.detail
