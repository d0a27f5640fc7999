"""Paper venue: fills a decision against recorded bars, without look-ahead (DESIGN.md invariant 6).

:meth:`PaperVenue.quote` is a pure function of the decision, the bars and the ledger; it never
mutates the ledger. It answers with a value, :class:`PaperFill` or :class:`PaperRefusal`, checked
in this order:

1. the decision's instrument is not one the venue trades → ``REJECTED / UNKNOWN_INSTRUMENT``;
2. no bar opens at or after ``market_ts_ns`` → ``FAILED / NO_MARKET_DATA``;
3. an entry whose fill price (that bar's OPEN moved against the trader by ``slippage_bps``) is
   worse than ``reference_price`` by more than ``max_slippage_bps`` → ``REJECTED /
   SLIPPAGE_EXCEEDED``. An exit (CLOSE, REDUCE) is never refused for slippage (DESIGN.md
   invariant 3): it fills at that open however far the market gapped from its reference;
4. an exit (a CLOSE or REDUCE decision, a reduce-only order; a sell while long; a buy while
   short) larger than the position (beyond :data:`~executor.ledger.POSITION_REL_TOL`) →
   ``REJECTED / INSUFFICIENT_POSITION``, else clamped to it; a long entry whose ``qty*price +
   fee`` exceeds the ledger's cash → ``REJECTED / INSUFFICIENT_FUNDS``; a short entry (a sell
   from flat or short, issue #16) on a ledger that does not allow shorts → ``REJECTED /
   INSUFFICIENT_POSITION``, and one whose ``qty*price + fee`` exceeds the collateral left →
   ``REJECTED / INSUFFICIENT_FUNDS``.

The paper venue is a perpetual when its ledger allows shorts: one-way positions, 1× collateral —
a short's notional is backed by the account's own equity, so the collateral left for a new entry
is ``cash − 2 × Σ |short| × price`` over every short held, each at its own market's price at the
decision's time (cash holds the proceeds of the shorts already sold), no leverage, no funding
payments (the bundled bars carry no funding rate).

**Several markets** (the portfolio, issue #16): ``markets`` adds instruments beside the first, each
with its own bars; every rule above applies per instrument, against the one shared ledger.

No errors are raised for a decision; the constructor raises ``ValueError`` on a bad setting.

Behind the venue interface (:class:`~executor.venue.base.Venue`), :meth:`PaperVenue.submit` fills
a MARKET or LIMIT_IOC order by the same rules against the ledger it was bound to
(:meth:`PaperVenue.bind`) and keeps the report in memory, so :meth:`~PaperVenue.fetch_order` finds
it. Those in-memory orders die with the process — exactly as the paper venue's fills do not exist
until the journal commits them — so after a restart a lookup finds nothing and the order is placed
again, with the same outcome (the price depends only on the bars and ``market_ts_ns``). Refusals
raise :class:`~executor.venue.errors.PermanentVenueError` with the status and code above. The paper
venue holds no protective orders (``supports_protective`` is False): on paper the brain's own exit
plan is the stop.

**Resting limits** (the take-profit exit leg, issue #16; ``supports_resting_limits``): a reduce-only
``LIMIT`` order rests from the decision's market time. The venue's clock is the newest market time
it has seen (:meth:`PaperVenue.observe_time`, every order's ``market_ts_ns``); before any look at
its orders, each resting order is matched against the bars that opened since it was placed and
before that clock — bars that have happened. The first bar that trades through the limit (its high
at or above a sell's, its low at or below a buy's) fills it, at the limit, or at that bar's open
when the bar gapped through (better for the trader, as an exchange fills), for at most the
position it reduces, with the taker fee (the paper venue has one fee rate). The fill exists at the
venue only: the executor books it when the gateway reports it for a decision, as an exchange's.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from foundation.bars import Bars
from protocol import Instrument, Intent, RejectCode, Side, Status, TradeDecision

from ..ledger import DUST_REL_TOL, POSITION_REL_TOL, Ledger
from .base import (
    Balance,
    OrderReport,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionReport,
    Venue,
)
from .errors import PermanentVenueError

__all__ = [
    "DEFAULT_FEE_BPS",
    "PaperFill",
    "PaperRefusal",
    "PaperVenue",
    "paper_venue_ref",
]

DEFAULT_FEE_BPS = 10.0
"""Binance spot base taker fee: VIP 0 spot taker 0.100 % = 10 bps (Binance fee schedule,
https://www.binance.com/en/fee/schedule, without the BNB discount)."""

_PAPER_REF_PREFIX = b"paper-"


def paper_venue_ref(decision_id: int) -> bytes:
    """Full venue reference of a paper fill: ASCII ``b"paper-<decision_id>"`` (up to 26 bytes).

    The confirmation carries its first 16 bytes and flags the cut; the journal keeps all of it.
    """
    return _PAPER_REF_PREFIX + str(decision_id).encode("ascii")


class PaperFill(NamedTuple):
    """The decision would fill entirely. (A ``NamedTuple``, as :class:`~executor.venue.base.OrderRequest`.)

    Attributes:
        qty: base units executed (the decision's quantity, or the position for a clamped sell).
        price: quote per base unit, the bar's open with slippage applied.
        fee: quote currency, ``qty * price * fee_bps / 1e4``.
        executed_at_ns: open time of the bar filled at, Unix ns.
        bar_index: index of that bar in the venue's :class:`~foundation.bars.Bars`.
        venue_ref_full: :func:`paper_venue_ref` of the decision.
    """

    qty: float
    price: float
    fee: float
    executed_at_ns: int
    bar_index: int
    venue_ref_full: bytes


@dataclass(frozen=True, slots=True)
class PaperRefusal:
    """The decision would not execute; ``status`` is REJECTED or FAILED, ``detail`` is for logs."""

    status: Status
    reject_code: RejectCode
    detail: str


MARKET_ORDERS_KEPT = 10_000
"""Market and IOC orders (filled at once) the paper venue remembers, newest last. An order is looked up
only while its decision is in flight — a retry, a duplicate, a restart's recovery — and the venue's
orders die with the process anyway; remembering every one grew the executor by ~500 bytes a decision
(issue #17's soak: 107 → 575 MiB over 1,000,000). Resting limits (the take-profits) are kept until
the process ends."""


class PaperVenue(Venue):
    """Simulated venue trading one or more instruments at recorded bar opens.

    Args:
        bars: recorded bars of ``instrument``, in time order (see :mod:`foundation.barcsv`).
        instrument: the (first) instrument this venue lists.
        markets: more instruments and their bars (a portfolio); ``None``: ``instrument`` alone.
        fee_bps: taker fee in bps of notional; default :data:`DEFAULT_FEE_BPS` (Binance VIP 0).
        slippage_bps: adverse price move applied to every fill, in bps of the open.

    Raises:
        ValueError: ``fee_bps`` not finite, or ``slippage_bps`` not finite, negative or >= 1e4.
    """

    name = "paper"
    orders_survive_restart = False
    replay_clock = True
    in_process = True
    supports_short = True  # type: ignore[assignment]  # a perpetual: shorts when the ledger allows them
    supports_resting_limits = True  # the take-profit leg rests here, filled against the bars (module docstring)

    def __init__(
        self,
        bars: Bars,
        *,
        instrument: Instrument,
        fee_bps: float = DEFAULT_FEE_BPS,
        slippage_bps: float = 0.0,
        markets: Mapping[Instrument, Bars] | None = None,
    ) -> None:
        if not math.isfinite(fee_bps):
            raise ValueError(f"fee_bps must be finite, got {fee_bps!r}")
        if not (math.isfinite(slippage_bps) and 0 <= slippage_bps < 10_000):
            raise ValueError(f"slippage_bps must be in [0, 10000), got {slippage_bps!r}")
        self.bars = bars
        self.instrument = instrument
        self.markets: dict[Instrument, Bars] = {instrument: bars, **(markets or {})}
        self._by_symbol = {str(i): i for i in self.markets}
        self.fee_bps = float(fee_bps)
        self.slippage_bps = float(slippage_bps)
        self.ledger: Ledger | None = None
        self._orders: dict[str, OrderReport] = {}
        self._market_orders: deque[str] = deque()  # filled at once, oldest first: kept up to MARKET_ORDERS_KEPT
        self._resting: dict[str, _Resting] = {}
        self._held: dict[Instrument, float] | None = None  # the venue's positions (:meth:`_book`)
        self._clock_ns = 0

    def quote(self, decision: TradeDecision, ledger: Ledger) -> PaperFill | PaperRefusal:
        """Decide what ``decision`` would do now against ``ledger``; mutates nothing."""
        if decision.instrument not in self.markets:
            return PaperRefusal(
                Status.REJECTED,
                RejectCode.UNKNOWN_INSTRUMENT,
                f"paper venue trades {self._listed()}, not {decision.instrument}",
            )
        exit_ = decision.intent in (Intent.CLOSE, Intent.REDUCE)
        return self._quote(decision.side, decision.quantity, decision.reference_price,
                           10_000 if exit_ else decision.max_slippage_bps, decision.market_ts_ns, decision.decision_id,
                           decision.instrument, ledger, reduce_only=exit_)  # fmt: skip

    def _quote(
        self, side: Side, qty: float, ref: float, max_slippage_bps: int, market_ts_ns: int, decision_id: int,
        instrument: Instrument, ledger: Ledger, *, reduce_only: bool = False,
    ) -> PaperFill | PaperRefusal:  # fmt: skip
        bars = self.markets[instrument]
        i = bars.first_open_at_or_after(market_ts_ns)
        if i is None:
            return PaperRefusal(
                Status.FAILED,
                RejectCode.NO_MARKET_DATA,
                f"no bar opens at or after {market_ts_ns} ns in {bars.source}",
            )
        open_ = bars.open[i]
        buy = side is Side.BUY
        slip = self.slippage_bps / 1e4
        price = open_ * (1 + slip) if buy else open_ * (1 - slip)
        limit = max_slippage_bps / 1e4
        if (buy and price > ref * (1 + limit)) or (not buy and price < ref * (1 - limit)):
            return PaperRefusal(
                Status.REJECTED,
                RejectCode.SLIPPAGE_EXCEEDED,
                f"fill {price!r} vs reference {ref!r} exceeds {max_slippage_bps} bps",
            )
        held = ledger.position(instrument)  # signed: < 0 short
        exiting = reduce_only or (held > 0 and not buy) or (held < 0 and buy)
        if exiting:
            pos = held if not buy else -held  # what this order can close
            if qty > pos * (1 + POSITION_REL_TOL):
                return PaperRefusal(
                    Status.REJECTED,
                    RejectCode.INSUFFICIENT_POSITION,
                    f"{'sell' if not buy else 'buy'} {qty!r} exceeds position {held!r}",
                )
            qty = min(qty, pos)
            fee = qty * price * self.fee_bps / 1e4
        elif buy:
            fee = qty * price * self.fee_bps / 1e4
            free = self._free_collateral(ledger, market_ts_ns)
            if qty * price + fee > free:
                return PaperRefusal(
                    Status.REJECTED,
                    RejectCode.INSUFFICIENT_FUNDS,
                    f"needs {qty * price + fee!r} quote, cash is {ledger.cash!r}" + (
                        f" ({free!r} free of the shorts' collateral)" if free != ledger.cash else ""),
                )  # fmt: skip
        else:
            if not ledger.allow_short:
                return PaperRefusal(
                    Status.REJECTED,
                    RejectCode.INSUFFICIENT_POSITION,
                    f"sell {qty!r} exceeds position {held!r} (no shorts on this venue)",
                )
            fee = qty * price * self.fee_bps / 1e4
            collateral = self._free_collateral(ledger, market_ts_ns, (instrument, price))
            if qty * price + fee > collateral:
                return PaperRefusal(
                    Status.REJECTED,
                    RejectCode.INSUFFICIENT_FUNDS,
                    f"a short of {qty * price + fee!r} quote needs that much collateral, {collateral!r} is left",
                )
        return PaperFill(
            qty=qty,
            price=price,
            fee=fee,
            executed_at_ns=bars.ts_ms[i] * 1_000_000,
            bar_index=i,
            venue_ref_full=paper_venue_ref(decision_id),
        )

    # -- the venue interface ----------------------------------------------------------------

    def bind(self, ledger: Ledger) -> None:
        """Use ``ledger`` as the paper account's balances (the executor's own ledger)."""
        self.ledger = ledger

    def _book(self) -> dict[Instrument, float]:
        """The venue's own positions (signed base units): the ledger's when first asked — once the
        executor has rebuilt it from its journal — then moved by every fill this venue makes. A
        resting take-profit that filled is in it at once, before the executor books the fill (its
        next decision for the symbol does), so reconciliation sees the venue's truth, as on an
        exchange, and not the ledger echoed back."""
        if self._held is None:
            assert self.ledger is not None
            self._held = {i: p.qty for i, p in self.ledger.positions().items()}
        return self._held

    def _move(self, instrument: Instrument, side: Side, qty: float) -> None:
        book = self._book()
        before = book.get(instrument, 0.0)
        held = before + (qty if side is Side.BUY else -qty)
        if abs(held) <= DUST_REL_TOL * max(abs(before), qty):  # flat, by the ledger's rule
            book.pop(instrument, None)
        else:
            book[instrument] = held

    def lists(self, symbol: str) -> bool:
        return symbol in self._by_symbol

    def _listed(self) -> str:
        return ", ".join(str(i) for i in self.markets)

    def _free_collateral(self, ledger: Ledger, market_ts_ns: int,
                         at: tuple[Instrument, float] | None = None) -> float:  # fmt: skip
        """Cash less twice every short's notional (1× collateral, module docstring), each short priced
        at its market's first open at or after ``market_ts_ns`` (``at``: the price of the instrument
        being quoted; its average cost when its bars have none)."""
        free = ledger.cash
        for inst, pos in ledger.positions().items():
            if pos.qty < 0:
                if at is not None and inst == at[0]:
                    price = at[1]
                else:
                    bars = self.markets.get(inst)
                    j = bars.first_open_at_or_after(market_ts_ns) if bars is not None else None
                    price = bars.open[j] if bars is not None and j is not None else pos.avg_cost
                free += 2 * pos.qty * price
        return free

    async def observe_time(self, market_ts_ns: int) -> None:
        """Move the venue's clock to ``market_ts_ns`` (never back): resting orders fill against the bars
        that opened before it."""
        self._tick(market_ts_ns)

    def _tick(self, market_ts_ns: int) -> None:
        self._clock_ns = max(self._clock_ns, market_ts_ns)

    def _match_resting(self) -> None:
        """Fill each resting limit against the bars that opened since it was placed and before the
        clock (module docstring)."""
        for coid, r in list(self._resting.items()):
            req, i = r.request, r.next_bar
            bars = self.markets[self._by_symbol[req.symbol]]
            while i < len(bars) and bars.ts_ms[i] * 1_000_000 < self._clock_ns:
                limit, sell = req.price or 0.0, req.side is Side.SELL
                if (sell and bars.high[i] >= limit) or (not sell and bars.low[i] <= limit):
                    price = max(limit, bars.open[i]) if sell else min(limit, bars.open[i])
                    self._fill_resting(coid, price, bars.ts_ms[i] * 1_000_000)
                    break
                i += 1
            else:
                r.next_bar = i

    def _fill_resting(self, coid: str, price: float, at_ns: int) -> None:
        req = self._resting.pop(coid).request
        inst = self._by_symbol[req.symbol]
        held = self._book().get(inst, 0.0)
        pos = held if req.side is Side.SELL else -held  # what a reduce-only order can reduce
        qty = min(req.amount, max(pos, 0.0))
        if qty <= 0:  # nothing left to reduce: a reduce-only order expires
            self._orders[coid] = self._orders[coid]._replace(status=OrderStatus.EXPIRED, updated_at_ns=at_ns)
            return
        self._move(inst, req.side, qty)
        self._orders[coid] = self._orders[coid]._replace(status=OrderStatus.FILLED, filled=qty, avg_price=price,
                                     fee=qty * price * self.fee_bps / 1e4, updated_at_ns=at_ns)  # fmt: skip

    async def submit(self, request: OrderRequest) -> OrderReport:
        """Fill a MARKET or LIMIT_IOC order at once, or raise.

        Raises:
            PermanentVenueError: unbound ledger, a protective order type, an unlisted symbol, or
                any refusal of :meth:`quote` (status and reject code carried over).
        """
        if self.ledger is None:
            raise PermanentVenueError("paper venue: submit before bind(ledger)")
        self._tick(request.market_ts_ns)
        if request.type is OrderType.LIMIT:
            return self._rest(request)
        if request.type not in (OrderType.MARKET, OrderType.LIMIT_IOC):
            raise PermanentVenueError(f"paper venue holds no {request.type} orders", RejectCode.GUARD)
        if not self.lists(request.symbol):
            raise PermanentVenueError(f"paper venue trades {self._listed()}, not {request.symbol}",
                                      RejectCode.UNKNOWN_INSTRUMENT, Status.REJECTED)  # fmt: skip
        q = self._quote(request.side, request.amount, request.reference_price, request.max_slippage_bps,
                        request.market_ts_ns, request.decision_id, self._by_symbol[request.symbol], self.ledger,
                        reduce_only=request.reduce_only)  # fmt: skip
        if isinstance(q, PaperRefusal):
            raise PermanentVenueError(q.detail, q.reject_code, q.status)
        self._move(self._by_symbol[request.symbol], request.side, q.qty)
        report = OrderReport(
            client_order_id=request.client_order_id, venue_order_id=q.venue_ref_full.decode("ascii"),
            symbol=request.symbol, side=request.side, type=request.type, status=OrderStatus.FILLED,
            amount=request.amount, filled=q.qty, avg_price=q.price, fee=q.fee, updated_at_ns=q.executed_at_ns,
        )  # fmt: skip
        self._orders[request.client_order_id] = report
        self._market_orders.append(request.client_order_id)
        if len(self._market_orders) > MARKET_ORDERS_KEPT:
            del self._orders[self._market_orders.popleft()]
        return report

    def _rest(self, request: OrderRequest) -> OrderReport:
        """A resting reduce-only limit (the take-profit): OPEN now, matched against later bars.

        Raises:
            PermanentVenueError: not reduce-only, no limit price, or an unlisted symbol (REJECTED).
        """
        if not request.reduce_only or not request.price or request.price <= 0:
            raise PermanentVenueError("paper venue rests reduce-only limits with a price only (the take-profit)",
                                      RejectCode.GUARD, Status.REJECTED)  # fmt: skip
        if not self.lists(request.symbol):
            raise PermanentVenueError(f"paper venue trades {self._listed()}, not {request.symbol}",
                                      RejectCode.UNKNOWN_INSTRUMENT, Status.REJECTED)  # fmt: skip
        if request.client_order_id in self._orders:  # the same order again (a retry): as it stands
            self._match_resting()
            return self._orders[request.client_order_id]
        report = OrderReport(
            client_order_id=request.client_order_id, venue_order_id=paper_venue_ref(request.decision_id).decode() + "t",
            symbol=request.symbol, side=request.side, type=OrderType.LIMIT, status=OrderStatus.OPEN,
            amount=request.amount, filled=0.0, avg_price=0.0, fee=0.0, updated_at_ns=request.market_ts_ns,
            stop_price=request.price,
        )  # fmt: skip
        self._orders[request.client_order_id] = report
        bars = self.markets[self._by_symbol[request.symbol]]
        start = bars.first_open_at_or_after(request.market_ts_ns)
        self._resting[request.client_order_id] = _Resting(request, len(bars) if start is None else start)
        return report

    async def cancel(self, client_order_id: str, symbol: str, *, protective: bool = False) -> OrderReport | None:
        self._match_resting()  # a limit the bars already traded through filled before the cancel
        if client_order_id in self._resting:
            del self._resting[client_order_id]
            self._orders[client_order_id] = self._orders[client_order_id]._replace(status=OrderStatus.CANCELED)
        return self._orders.get(client_order_id)  # market and IOC orders filled at once: nothing to cancel

    async def fetch_order(self, client_order_id: str, symbol: str, *, protective: bool = False) -> OrderReport | None:
        self._match_resting()
        return self._orders.get(client_order_id)

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        self._match_resting()
        return [self._orders[c] for c in self._resting if symbol is None or self._orders[c].symbol == symbol]

    async def balances(self) -> dict[str, Balance]:
        cash = self.ledger.cash if self.ledger is not None else 0.0
        return {"QUOTE": Balance("QUOTE", cash, 0.0)}

    async def positions(self) -> list[PositionReport]:
        """The venue's positions (:meth:`_book`), each at the ledger's average cost."""
        if self.ledger is None:
            return []
        self._match_resting()
        cost = {i: p.avg_cost for i, p in self.ledger.positions().items()}
        return [PositionReport(str(i), qty, cost.get(i, 0.0)) for i, qty in self._book().items()]

    async def holdings(self, symbols: list[str]) -> dict[str, PositionReport]:
        """The venue's positions in ``symbols``: the ledger's, moved by the fills the executor has not
        booked yet (a resting take-profit's) — reconciliation finds them equal to what it expects."""
        return {p.symbol: p for p in await self.positions() if p.symbol in symbols}


@dataclass(slots=True)
class _Resting:
    """A resting limit and the index of the next bar to match it against."""

    request: OrderRequest
    next_bar: int
