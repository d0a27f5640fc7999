"""Sans-IO Binance exchange state: accounts, bars, the replay clock, and the API the server calls.

No sockets and no wall clock here: the server (``server.py``, ``params.py``) parses requests into
the typed calls below and renders the results (``payloads.py``). Time is the replay clock ``clock_ms``,
moved only by :meth:`Engine.advance_to`.

The engine is put together by job: this module holds the state, the clock, market prices, the
order queries and cancels; :mod:`.matching` places and matches regular orders (the matching
rules are there), :mod:`.algo` handles USDⓈ-M conditional (algo) orders, and :mod:`.ledger` moves
the money (fees, spot locks, USDⓈ-M positions and margin).

* ``advance_to(ts)``: each bar with open time < ``ts`` not processed yet "happens", in order:
  for each account, its regular orders are matched against the bar, then its algo orders.
* Market prices: the reference price of a market order is the open of the first bar whose open
  time >= ``clock_ms`` (none: ``-1013 "Market is closed."``); the mark is the last replayed close
  (before any bar: the next open).
* Spot cancel-replace (:meth:`Engine.cancel_replace`): the new order's filters first (plain
  error, nothing done), then cancel and placement with no await in between.

Errors: every rejection raises :class:`testbed.emulator.errors.BinanceError`; misuse of the API
(unknown account, clock going back) raises ``ValueError``.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from . import ledger
from .algo import AlgoOrders
from .errors import BinanceError, E
from .matching import OrderMatching
from .model import (
    D0,
    Account,
    AlgoOrder,
    AlgoStatus,
    Bar,
    Fill,
    Order,
    OrderRequest,
    OrderType,
    Position,
    Side,
    Status,
    Venue,
)
from .specs import SymbolSpec

__all__ = [
    "Account", "AlgoOrder", "AlgoStatus", "Bar", "CancelReplace", "Engine", "Fill", "Order", "OrderRequest", "OrderType",
    "Position", "Side", "Status", "Venue",
]


@dataclass(slots=True)
class CancelReplace:
    """Outcome of :meth:`Engine.cancel_replace`: each leg's order or error."""

    cancelled: Order | None = None
    cancel_error: BinanceError | None = None
    new_attempted: bool = False
    new_order: Order | None = None
    new_error: BinanceError | None = None

    @property
    def ok(self) -> bool:
        return self.cancelled is not None and self.new_order is not None


class Engine(OrderMatching, AlgoOrders):
    """Exchange state for spot and USDⓈ-M over one set of bars.

    Args:
        bars: the replayed bars, strictly increasing open times (all symbols trade these bars).
        spot_specs / usdm_specs: symbol rules (``specs_from_exchange_info``); only symbols listed
            in ``symbols`` are tradable.
        symbols: exchange symbol ids with bars, e.g. ``("BTCUSDT",)``.
        usdm_fees: (maker, taker) rates for USDⓈ-M.
        start_ms: initial clock; default the first bar's open time.
    """

    def __init__(self, bars: Sequence[Bar], spot_specs: dict[str, SymbolSpec], usdm_specs: dict[str, SymbolSpec],
                 symbols: Sequence[str] = ("BTCUSDT",), usdm_fees: tuple[Decimal, Decimal] = (Decimal("0.0002"), Decimal("0.0005")),
                 start_ms: int | None = None) -> None:
        if not bars:
            raise ValueError("the engine needs at least one bar")
        self.bars = list(bars)
        self._ts = [b.ts_ms for b in self.bars]
        self.symbols = tuple(symbols)
        self.specs = {Venue.SPOT: {s: spot_specs[s] for s in symbols if s in spot_specs},
                      Venue.USDM: {s: usdm_specs[s] for s in symbols if s in usdm_specs}}
        self.usdm_maker, self.usdm_taker = usdm_fees
        self.clock_ms = self.bars[0].ts_ms if start_ms is None else start_ms
        self.next_bar = 0  # index of the first bar not processed yet
        self.accounts: dict[str, Account] = {}
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._algo_ids = itertools.count(1_000_001)

    # ----------------------------------------------------------------------------- accounts
    def create_account(self, api_key: str, secret: str, spot: dict[str, str | Decimal] | None = None,
                       usdm_usdt: str | Decimal = D0, leverage: int = 1) -> Account:
        """Create (or replace) an account: spot free balances by asset, USDⓈ-M USDT wallet."""
        acct = Account(api_key, secret, wallet=Decimal(str(usdm_usdt)))
        for asset, amount in (spot or {}).items():
            acct.balances[asset] = [Decimal(str(amount)), D0]
        for s in self.symbols:
            acct.leverage[s] = leverage
            acct.positions[s] = Position()
        self.accounts[api_key] = acct
        return acct

    def account(self, api_key: str) -> Account:
        try:
            return self.accounts[api_key]
        except KeyError:
            raise ValueError(f"unknown API key {api_key!r}") from None

    def spec(self, venue: Venue, symbol: str) -> SymbolSpec:
        spec = self.specs[venue].get(symbol)
        if spec is None:
            raise E.invalid_symbol()
        return spec

    # -------------------------------------------------------------------------------- market
    def next_open_index(self) -> int | None:
        """Index of the first bar whose open time >= the clock (the market-order fill bar)."""
        i = bisect.bisect_left(self._ts, self.clock_ms)
        return i if i < len(self.bars) else None

    def reference_price(self) -> Decimal:
        """The price a market order would get now; raises -1013 "Market is closed." at the end."""
        i = self.next_open_index()
        if i is None:
            raise E.market_closed()
        return self.bars[i].open

    def mark_price(self) -> Decimal:
        """Last replayed close; before any bar has happened, the next open."""
        if self.next_bar > 0:
            return self.bars[self.next_bar - 1].close
        return self.bars[0].open

    def closed_bars(self) -> list[Bar]:
        """Bars fully closed at the clock (open + interval <= clock): what klines may show."""
        step = self._ts[1] - self._ts[0] if len(self._ts) > 1 else 60_000
        return self.bars[: bisect.bisect_right(self._ts, self.clock_ms - step)]

    def advance_to(self, ts_ms: int) -> list[int]:
        """Let every unprocessed bar with open time < ``ts_ms`` happen; set the clock to ``ts_ms``.

        Returns:
            orderIds / algoIds whose state changed, in event order.
        Raises:
            ValueError: ``ts_ms`` is before the clock.
        """
        if ts_ms < self.clock_ms:
            raise ValueError(f"clock cannot go back: {ts_ms} < {self.clock_ms}")
        changed: list[int] = []
        while self.next_bar < len(self.bars) and self.bars[self.next_bar].ts_ms < ts_ms:
            bar = self.bars[self.next_bar]
            self.next_bar += 1
            for acct in self.accounts.values():
                changed += self._process_bar(acct, bar)
        self.clock_ms = ts_ms
        return changed

    def release_delayed(self, api_key: str, venue: Venue, order_id: int) -> bool:
        """Fill a ``delayed`` market order now (wall-clock delay elapsed). Returns True if it filled."""
        acct = self.account(api_key)
        order = acct.orders[venue].get(order_id)
        if order is None or not order.is_open or not order.delayed:
            return False
        i = self.next_open_index()
        if i is None:
            return False
        order.delayed = False
        bar = self.bars[i]
        self._fill_market(acct, order, bar.open, bar.ts_ms)
        return True

    def _process_bar(self, acct: Account, bar: Bar) -> list[int]:
        """One bar for one account: its regular orders (:mod:`.matching`), then its algo orders."""
        return self._match_orders(acct, bar) + self._match_algos(acct, bar)

    # ------------------------------------------------------------------------- order queries, cancels
    def find_order(self, api_key: str, venue: Venue, symbol: str, order_id: int | None = None,
                   client_order_id: str | None = None) -> Order:
        """The order by id or clientOrderId (newest match); -2013 if none."""
        self.spec(venue, symbol)
        orders = self.account(api_key).orders[venue]
        if order_id is not None:
            o = orders.get(order_id)
            if o is not None and o.symbol == symbol and (client_order_id is None or o.client_order_id == client_order_id):
                return o
            raise E.no_such_order()
        for o in sorted(orders.values(), key=lambda o: -o.order_id):
            if o.client_order_id == client_order_id and o.symbol == symbol:
                return o
        raise E.no_such_order()

    def cancel_order(self, api_key: str, venue: Venue, symbol: str, order_id: int | None = None,
                     client_order_id: str | None = None) -> Order:
        """Cancel an open order (unlocking spot funds); -2011 if unknown or not open."""
        try:
            order = self.find_order(api_key, venue, symbol, order_id, client_order_id)
        except Exception:
            raise E.unknown_order() from None
        if not order.is_open:
            raise E.unknown_order()
        self._unlock(self.account(api_key), order)
        order.set_status(Status.CANCELED)
        order.update_ms = self.clock_ms
        return order

    def cancel_replace(self, api_key: str, symbol: str, req: OrderRequest, cancel_order_id: int | None = None,
                       cancel_client_id: str | None = None, allow_failure: bool = False,
                       new_error: BinanceError | None = None) -> CancelReplace:
        """Spot ``POST /api/v3/order/cancelReplace``: cancel one order and place ``req``, atomically.

        The new order's request-level checks (filters, type, market open) come first and raise
        like ``new_order`` with nothing done (Binance: "Filters and Order Count are evaluated
        before the processing of the cancellation and order placement"). Then the cancel; if it
        fails and not ``allow_failure`` (``STOP_ON_FAILURE``) the new order is not attempted.
        Then the placement (balance, duplicate id, stop side), seeing the funds the cancel freed.

        Args:
            new_error: a forced rejection of the placement (the ``insufficient_balance`` fault).
        Returns:
            what happened to each leg; the caller renders the 200 / -2021 / -2022 answer.
        """
        if req.symbol != symbol:
            raise ValueError("cancel_replace: symbol mismatch")
        acct = self.account(api_key)
        checked = self._check_new(Venue.SPOT, req)
        out = CancelReplace()
        try:
            out.cancelled = self.cancel_order(api_key, Venue.SPOT, symbol, cancel_order_id, cancel_client_id)
        except BinanceError as e:
            out.cancel_error = e
            if not allow_failure:
                return out
        out.new_attempted = True
        try:
            if new_error is not None:
                raise new_error
            out.new_order = self._place(acct, Venue.SPOT, req, *checked)
        except BinanceError as e:
            out.new_error = e
        return out

    def open_orders(self, api_key: str, venue: Venue, symbol: str | None = None) -> list[Order]:
        if symbol is not None:
            self.spec(venue, symbol)
        return sorted((o for o in self.account(api_key).orders[venue].values()
                       if o.is_open and (symbol is None or o.symbol == symbol)), key=lambda o: o.order_id)

    def my_trades(self, api_key: str, venue: Venue, symbol: str) -> list[Fill]:
        self.spec(venue, symbol)
        return [f for f in self.account(api_key).trades[venue] if f.symbol == symbol]

    # ------------------------------------------------------------------------- USDⓈ-M account
    def unrealized(self, acct: Account, symbol: str) -> Decimal:
        return ledger.unrealized(acct, symbol, self.mark_price())

    def position_im(self, acct: Account, symbol: str) -> Decimal:
        return ledger.position_im(acct, symbol, self.mark_price())

    def open_order_im(self, acct: Account, symbol: str) -> Decimal:
        return ledger.open_order_im(acct, symbol)

    def available_usdm(self, acct: Account) -> Decimal:
        return ledger.available_usdm(acct, self.mark_price())

    def set_leverage(self, api_key: str, symbol: str, leverage: int) -> int:
        self.spec(Venue.USDM, symbol)
        if not 1 <= leverage <= 125:
            raise E.mandatory("leverage")
        self.account(api_key).leverage[symbol] = leverage
        return leverage
