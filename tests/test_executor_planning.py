"""The executor's order planning (pure functions, no venue, no clock) and the order primitives'
injected time: what is sent for each decision, the gateway's orders, the bound on stop moves, and
OrderOps' waits driven by a scripted clock over a fake venue.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from executor.core import ExecutorCore
from executor.ledger import POSITION_REL_TOL, Ledger
from executor.orders import OrderOps
from executor.planning import (
    MOVE_WINDOW_S,
    NO_SLIPPAGE_BOUND_BPS,
    EntryStop,
    ExitPosition,
    MoveStop,
    PlaceOrder,
    RecoverExpired,
    Refusal,
    admit_move,
    decision_order,
    entry_stop,
    exit_order,
    plan_decision,
    stop_order,
)
from executor.venue.base import (
    CORE,
    GATEWAY,
    Balance,
    OrderReport,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionReport,
    Venue,
)
from executor.venue.coid import OrderIds
from executor.venue.errors import PermanentVenueError
from executor.venue.retry import RetryPolicy
from protocol import DecisionReason, Instrument, Intent, RejectCode, Side, Status, TradeDecision

BTC = Instrument.symbol("BTC/USDT")
SYMBOL = str(BTC)
IDS = OrderIds("0000000a")
T0 = 1_700_000_000_000_000_000


def decision(
    did: int = 7, *, side: Side = Side.BUY, intent: Intent = Intent.OPEN, qty: float = 0.5, ref: float = 100.0,
    slip: int = 50, stop: float = 0.0, market_ts_ns: int = T0,
) -> TradeDecision:  # fmt: skip
    return TradeDecision(
        decision_id=did, instrument=BTC, side=side, intent=intent, reason=DecisionReason.SIGNAL, quantity=qty,
        reference_price=ref, max_slippage_bps=slip, created_at_ns=T0, expires_at_ns=T0 + 10**9,
        market_ts_ns=market_ts_ns, stop_price=stop,
    )  # fmt: skip


def holding(qty: float) -> Ledger:
    ledger = Ledger(10_000.0)
    if qty > 0:
        ledger.apply_fill(Side.BUY, BTC, qty, 100.0, 0.0)
    return ledger


def plan(d: TradeDecision, held: float = 0.0, *, listed: bool = True, protective: bool = True,
         expired: bool = False) -> object:  # fmt: skip
    return plan_decision(d, holding(held), IDS, listed=listed, protective=protective, venue_name="v", expired=expired)


def report(filled: float, avg: float = 101.0, status: OrderStatus = OrderStatus.FILLED) -> OrderReport:
    return OrderReport(IDS.order(7), "1", SYMBOL, Side.BUY, OrderType.LIMIT_IOC, status, 0.5, filled, avg, 0.0)


# -- plan_decision ------------------------------------------------------------------------------


@pytest.mark.parametrize("expired", [False, True])
def test_an_unlisted_instrument_is_refused_before_anything_else(expired: bool) -> None:
    """A symbol the venue does not list is REJECTED / UNKNOWN_INSTRUMENT, expired or not."""
    assert plan(decision(), listed=False, expired=expired) == Refusal("v does not list BTC/USDT",
                                                                      RejectCode.UNKNOWN_INSTRUMENT, Status.REJECTED)  # fmt: skip


def test_an_expired_decision_is_only_looked_up_a_protect_stop_first() -> None:
    """Expired: a PROTECT looks up its stop then its exit (gateway-owned); nothing is to be placed."""
    protect = decision(side=Side.SELL, intent=Intent.PROTECT, stop=95.0)
    assert plan(protect, 0.5, expired=True) == RecoverExpired(SYMBOL, IDS.stop(7), IDS.order(7), GATEWAY)


@pytest.mark.parametrize(("side", "protective", "owner"), [(Side.BUY, True, CORE), (Side.SELL, True, GATEWAY),
                                                           (Side.SELL, False, CORE), (Side.BUY, False, CORE)])  # fmt: skip
def test_an_expired_entry_or_exit_looks_up_its_own_order_with_its_owner(side: Side, protective: bool, owner: str) -> None:
    """Expired entries and exits look up leg e only; a sell belongs to the gateway when it holds stops."""
    intent = Intent.OPEN if side is Side.BUY else Intent.CLOSE
    got = plan(decision(side=side, intent=intent), 0.5, protective=protective, expired=True)
    assert got == RecoverExpired(SYMBOL, None, IDS.order(7), owner)


def test_a_protect_moves_the_stop_for_the_whole_position() -> None:
    """A PROTECT becomes a move of the stop to its stop_price for the quantity held, whatever it says."""
    assert plan(decision(side=Side.SELL, intent=Intent.PROTECT, qty=9.0, stop=95.0), 0.5) == MoveStop(SYMBOL, 0.5, 95.0)


@pytest.mark.parametrize(("protective", "held", "code"), [(False, 0.5, RejectCode.GUARD),
                                                          (True, 0.0, RejectCode.INSUFFICIENT_POSITION)])  # fmt: skip
def test_a_protect_without_stops_or_without_a_position_is_refused(protective: bool, held: float,
                                                                  code: RejectCode) -> None:  # fmt: skip
    """PROTECT is REJECTED / GUARD when protective orders are off, INSUFFICIENT_POSITION when flat."""
    got = plan(decision(side=Side.SELL, intent=Intent.PROTECT, stop=95.0), held, protective=protective)
    assert isinstance(got, Refusal) and (got.status, got.reject_code) == (Status.REJECTED, code)


def test_a_sell_goes_through_the_gateway_clamped_to_the_position() -> None:
    """With protective orders a sell within POSITION_REL_TOL of the position exits exactly the position."""
    over = 0.5 * (1 + POSITION_REL_TOL / 2)
    got = plan(decision(side=Side.SELL, intent=Intent.CLOSE, qty=over, ref=90.0), 0.5)
    assert got == ExitPosition(SYMBOL, 0.5, 0.5, 90.0)
    part = plan(decision(side=Side.SELL, intent=Intent.REDUCE, qty=0.2, ref=90.0), 0.5)
    assert part == ExitPosition(SYMBOL, 0.2, 0.5, 90.0)


def test_a_sell_larger_than_the_position_is_refused() -> None:
    """A sell beyond the position's tolerance is REJECTED / INSUFFICIENT_POSITION, never sent."""
    got = plan(decision(side=Side.SELL, intent=Intent.CLOSE, qty=0.6), 0.5)
    assert got == Refusal("sell 0.6 exceeds position 0.5", RejectCode.INSUFFICIENT_POSITION)


def test_an_exit_without_protective_orders_is_an_unbounded_market_order() -> None:
    """Without stops on the venue a CLOSE is a MARKET order with no slippage bound (never refused for it)."""
    got = plan(decision(side=Side.SELL, intent=Intent.CLOSE, qty=0.5, slip=5), 0.5, protective=False)
    assert isinstance(got, PlaceOrder) and not got.protect and got.held == 0.5
    req = got.request
    assert (req.type, req.price, req.max_slippage_bps, req.owner) == (OrderType.MARKET, None, NO_SLIPPAGE_BOUND_BPS, CORE)
    assert (req.client_order_id, req.side, req.amount, req.symbol) == (IDS.order(7), Side.SELL, 0.5, SYMBOL)


@pytest.mark.parametrize("protective", [True, False])
def test_an_entry_is_a_limit_ioc_at_its_slippage_bound(protective: bool) -> None:
    """An entry is a LIMIT_IOC priced max_slippage_bps above its reference; it is protected when stops are on."""
    d = decision(qty=0.5, ref=100.0, slip=50, stop=92.0)
    got = plan(d, 0.25, protective=protective)
    assert isinstance(got, PlaceOrder) and got.protect is protective and got.held == 0.25
    assert got.request == OrderRequest(client_order_id=IDS.order(7), decision_id=7, symbol=SYMBOL, side=Side.BUY,
                                       type=OrderType.LIMIT_IOC, amount=0.5, price=100.0 * (1 + 50 / 1e4),
                                       market_ts_ns=T0, reference_price=100.0, max_slippage_bps=50, owner=CORE,
                                       expires_at_ns=d.expires_at_ns)  # fmt: skip


def test_an_entry_without_a_slippage_bound_is_a_market_order() -> None:
    """max_slippage_bps 10,000 bounds nothing: the entry is a MARKET order without a price."""
    got = plan(decision(slip=NO_SLIPPAGE_BOUND_BPS))
    assert isinstance(got, PlaceOrder) and (got.request.type, got.request.price) == (OrderType.MARKET, None)


def test_a_guarded_sell_limit_sits_below_its_reference() -> None:
    """decision_order prices a sell's LIMIT_IOC below the reference; guarded=False drops the bound."""
    d = decision(side=Side.SELL, intent=Intent.CLOSE, ref=200.0, slip=100)
    assert decision_order(d, IDS.order(7), OrderType.LIMIT_IOC).price == 200.0 * (1 - 100 / 1e4)
    assert decision_order(d, IDS.order(7), OrderType.MARKET, guarded=False).max_slippage_bps == NO_SLIPPAGE_BOUND_BPS


# -- the entry's stop ---------------------------------------------------------------------------


def test_a_filled_entry_gets_its_stop_at_the_fill_not_at_the_reference() -> None:
    """The stop covers the whole position at stop_for_fill(avg price), and moves a stop already held."""
    d = decision(ref=100.0, stop=92.0)
    got = entry_stop(d, 0.25, report(0.5, avg=101.0), stops={})
    assert got == EntryStop(SYMBOL, 0.75, 101.0 * (92.0 / 100.0), move=False)
    assert got.stop == d.stop_for_fill(101.0) != 92.0
    assert entry_stop(d, 0.25, report(0.5), stops={SYMBOL}).move  # type: ignore[union-attr]


def test_no_stop_when_nothing_filled_or_none_was_asked() -> None:
    """An entry that filled nothing, or carries stop_price 0, gets no stop."""
    assert entry_stop(decision(stop=92.0), 0.0, report(0.0, status=OrderStatus.EXPIRED), stops={}) is None
    assert entry_stop(decision(stop=0.0), 0.0, report(0.5), stops={}) is None


# -- the gateway's orders -----------------------------------------------------------------------


def test_a_derivatives_stop_is_a_reduce_only_stop_market() -> None:
    """On derivatives the stop is leg p, a reduce-only STOP_MARKET without a limit, owned by the gateway."""
    req = stop_order(IDS, SYMBOL, 0.5, 95.0, 7, T0, derivatives=True, limit_offset_bps=50.0)
    assert req == OrderRequest(client_order_id=IDS.stop(7), decision_id=7, symbol=SYMBOL, side=Side.SELL,
                               type=OrderType.STOP_MARKET, amount=0.5, stop_price=95.0, reduce_only=True,
                               market_ts_ns=T0, reference_price=95.0, owner=GATEWAY)  # fmt: skip


def test_a_spot_stop_is_a_stop_loss_limit_below_its_trigger() -> None:
    """On spot the stop is a STOP_LOSS_LIMIT whose limit sits limit_offset_bps below the trigger."""
    req = stop_order(IDS, SYMBOL, 0.5, 95.0, 7, T0, derivatives=False, limit_offset_bps=50.0)
    assert (req.type, req.reduce_only, req.owner) == (OrderType.STOP_LOSS_LIMIT, False, GATEWAY)
    assert req.price == 95.0 * (1 - 50.0 / 1e4) and req.stop_price == 95.0


@pytest.mark.parametrize("derivatives", [True, False])
def test_the_gateway_exit_is_a_market_sell_of_the_decisions_own_leg(derivatives: bool) -> None:
    """The gateway's exit is leg e of the decision, a MARKET sell, reduce-only exactly on derivatives."""
    req = exit_order(IDS, SYMBOL, 0.3, 7, T0, 99.0, derivatives=derivatives)
    assert (req.client_order_id, req.type, req.side, req.amount) == (IDS.order(7), OrderType.MARKET, Side.SELL, 0.3)
    assert (req.reduce_only, req.reference_price, req.owner, req.price) == (derivatives, 99.0, GATEWAY, None)


# -- the bound on stop moves --------------------------------------------------------------------


def test_stop_moves_are_bounded_per_window_of_market_time() -> None:
    """max_moves moves within 60 s of market time pass; the next is REJECTED / GUARD and not counted."""
    window: tuple[float, ...] = ()
    for i in range(3):
        got = admit_move(window, SYMBOL, T0 + i * 10**9, 3)
        assert got.refusal is None
        window = got.window
    refused = admit_move(window, SYMBOL, T0 + 59 * 10**9, 3)
    assert refused.refusal == Refusal("BTC/USDT: more than 3 stop moves in 60 s", RejectCode.GUARD, Status.REJECTED)
    assert refused.window == window


def test_moves_older_than_the_window_no_longer_count() -> None:
    """A move more than 60 s of market time ago drops out of the window; one exactly 60 s ago still counts."""
    t0 = T0 / 1e9
    exactly = admit_move((t0,), SYMBOL, T0 + int(MOVE_WINDOW_S * 10**9), 1)
    assert exactly.refusal is not None and exactly.window == (t0,)
    later = admit_move((t0,), SYMBOL, T0 + int(MOVE_WINDOW_S * 10**9) + 10**6, 1)
    assert later.refusal is None and later.window == ((T0 + int(MOVE_WINDOW_S * 10**9) + 10**6) / 1e9,)


def test_a_refusal_becomes_the_error_its_confirmation_carries() -> None:
    """Refusal.error() is a PermanentVenueError with the refusal's detail, status and reject code."""
    err = Refusal("no", RejectCode.GUARD).error()
    assert isinstance(err, PermanentVenueError)
    assert (err.detail, err.status, err.reject_code) == ("no", Status.REJECTED, RejectCode.GUARD)


# -- OrderOps with a scripted clock over a fake venue ---------------------------------------------


class FakeVenue(Venue):
    """A venue answering from a script: every lookup says "absent" unless ``orders`` holds the id;
    records what it was asked, with the ``protective`` flag it was given."""

    name = "fake"
    ambiguity_window_s = 1.0

    def __init__(self) -> None:
        self.orders: dict[str, OrderReport] = {}
        self.fetches: list[tuple[str, bool]] = []
        self.cancels: list[tuple[str, bool]] = []
        self.bound: object = None

    def bind(self, ledger: Ledger) -> None:
        self.bound = ledger

    def lists(self, symbol: str) -> bool:
        return True

    async def submit(self, request: OrderRequest) -> OrderReport:
        raise PermanentVenueError("fake: submit")

    async def cancel(self, client_order_id: str, symbol: str, *, protective: bool = False) -> OrderReport | None:
        self.cancels.append((client_order_id, protective))
        found = self.orders.get(client_order_id)
        if found is None:
            return None
        self.orders[client_order_id] = OrderReport(found.client_order_id, "1", symbol, found.side, found.type,
                                                   OrderStatus.CANCELED, found.amount, found.filled, found.avg_price,
                                                   found.fee)  # fmt: skip
        return self.orders[client_order_id]

    async def fetch_order(self, client_order_id: str, symbol: str, *, protective: bool = False) -> OrderReport | None:
        self.fetches.append((client_order_id, protective))
        return self.orders.get(client_order_id)

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        return []

    async def balances(self) -> dict[str, Balance]:
        return {}

    async def positions(self) -> list[PositionReport]:
        return []


class ScriptedClock:
    """Monotonic seconds that move only when OrderOps sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def ops_over(venue: FakeVenue, clock: ScriptedClock, **kw: float) -> OrderOps:
    return OrderOps(venue, RetryPolicy(), clock=clock, sleep=clock.sleep, **kw)  # type: ignore[arg-type]


async def test_an_ambiguous_order_is_absent_only_after_the_venues_window_on_the_injected_clock() -> None:
    """lookup(sent_at=0) keeps asking every absent_gap_s until the 1 s ambiguity window has passed on
    the scripted clock — five answers, four pauses, no real sleep."""
    venue, clock = FakeVenue(), ScriptedClock()
    ops = ops_over(venue, clock, absent_checks=3, absent_gap_s=0.25)
    assert await ops.lookup(IDS.order(7), SYMBOL, reason="ambiguous", sent_at=0.0) is None
    assert len(venue.fetches) == 5 and clock.slept == [0.25] * 4 and clock.now == 1.0


async def test_a_working_order_is_polled_until_the_fill_timeout_then_cancelled() -> None:
    """settle() polls every poll_s on the injected clock until fill_timeout_s, then cancels the rest."""
    venue, clock = FakeVenue(), ScriptedClock()
    working = OrderReport(IDS.order(7), "1", SYMBOL, Side.BUY, OrderType.LIMIT_IOC, OrderStatus.OPEN, 0.5, 0.0, 0.0, 0.0)
    venue.orders[working.client_order_id] = working
    ops = ops_over(venue, clock, poll_s=0.5, fill_timeout_s=2.0)
    final = await ops.settle(working, SYMBOL)
    assert final.status is OrderStatus.CANCELED and clock.slept == [0.5] * 4
    assert venue.cancels == [(IDS.order(7), False)]


async def test_the_venue_is_told_which_orders_are_protective() -> None:
    """OrderOps reads our ids' legs and tells the venue protective=True for a stop, False otherwise."""
    venue, clock = FakeVenue(), ScriptedClock()
    ops = ops_over(venue, clock, absent_checks=1)
    await ops.lookup(IDS.stop(7), SYMBOL, reason="recovery")
    await ops.lookup(IDS.order(7), SYMBOL, reason="recovery")
    await ops.cancel(IDS.stop(7), SYMBOL, owner=GATEWAY, kind=OrderType.STOP_MARKET)
    assert venue.fetches[:2] == [(IDS.stop(7), True), (IDS.order(7), False)]
    assert venue.cancels == [(IDS.stop(7), True)]


async def test_a_venue_without_cancel_replace_says_so_and_refuses_it() -> None:
    """The Venue interface states cancel/replace: unsupported by default, and replace() then refuses."""
    venue = FakeVenue()
    assert venue.supports_replace is False
    with pytest.raises(PermanentVenueError, match="cannot cancel/replace"):
        await venue.replace(IDS.stop(7), stop_order(IDS, SYMBOL, 0.5, 95.0, 8, T0, derivatives=False,
                                                    limit_offset_bps=50.0))  # fmt: skip


async def test_the_core_hands_its_ledger_to_any_venue(tmp_path: Path) -> None:
    """ExecutorCore binds its ledger through Venue.bind, without knowing which venue it has."""
    venue = FakeVenue()
    core = await ExecutorCore.open(tmp_path / "executor.sqlite", venue, 1_000.0, protective=False)
    try:
        assert venue.bound is core.ledger and core.ids == OrderIds(core.namespace)
    finally:
        core.close()
