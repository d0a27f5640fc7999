"""Sans-IO Binance exchange state: accounts, orders, matching against replayed bars, a clock.

No sockets and no wall clock here: the server (``server.py``) parses requests into the typed
calls below and renders the results (``payloads.py``). Time is the replay clock ``clock_ms``,
moved only by :meth:`Engine.advance_to`.

Matching rules (one symbol's bars, shared by spot and USDⓈ-M):

* ``advance_to(ts)``: each bar with open time < ``ts`` not processed yet "happens", in order.
  Per bar and per open order (by orderId): delayed market orders fill at the bar open; stops
  trigger (sell: ``low <= stop``; buy: ``high >= stop``); USDⓈ-M STOP_MARKET fills at
  ``min(stop, open)`` for a sell (``max`` for a buy, i.e. the gap price); a triggered spot
  STOP_LOSS_LIMIT becomes a working limit and fills at its limit price when the bar trades
  through it; resting limits fill when the bar crosses (buy: ``low <= price``) at
  ``min(price, open)`` for a buy (``max`` for a sell). Fill time is the bar open time.
* A MARKET order fills at the open of the first bar whose open time >= ``clock_ms`` (the
  project's paper venue rule). No such bar: ``-1013 "Market is closed."``.
* A LIMIT order that crosses that same reference price fills at once at it (taker); otherwise it
  rests (maker). A stop already through its trigger price is rejected (spot -2010 "Stop price
  would trigger immediately.", USDⓈ-M -2021).
* timeInForce IOC / FOK (a LIMIT at placement, a spot STOP_LOSS_LIMIT when it triggers): never
  rests. IOC fills what crosses (all of it, or the ``partial_fill`` fraction) and the rest
  EXPIRES at once (status EXPIRED, executedQty < origQty, 0 if it did not cross); FOK fills all
  or EXPIRES with nothing (so a ``partial_fill`` fault expires it unfilled). Locked spot funds of
  the expired rest are released.
* Spot cancel-replace (:meth:`Engine.cancel_replace`): the new order's filters first (plain
  error, nothing done), then cancel and placement with no await in between.
* Fees: spot 0.1 % (account ``takerCommission`` 10 bps, fixture ``commissionRates``) charged in
  the asset received; USDⓈ-M maker/taker from ``fixtures/usdm_commission_rate_btcusdt.json``
  (0.02 % / 0.05 %) in USDT. Commissions are rounded to 8 decimals.
* USDⓈ-M: one-way mode, cross margin, leverage 1 unless set; initial margin = notional /
  leverage; ``available = wallet + uPnL(mark) - position IM - open-order IM``; mark = the last
  replayed close (before any bar: the next open). No funding, no liquidation.

Errors: every rejection raises :class:`testbed.emulator.errors.BinanceError`; misuse of the API
(unknown account, clock going back) raises ``ValueError``.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from .errors import BinanceError, E
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

_Q8 = Decimal("0.00000001")
SPOT_FEE = Decimal("0.001")  # Binance spot base rate, 10 bps (fixture account takerCommission 10)


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


class Engine:
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
        changed: list[int] = []
        for venue in (Venue.SPOT, Venue.USDM):
            for order in sorted((o for o in acct.orders[venue].values() if o.is_open), key=lambda o: o.order_id):
                if order.type is OrderType.MARKET:
                    if order.delayed:
                        order.delayed = False
                        self._fill_market(acct, order, bar.open, bar.ts_ms)
                        changed.append(order.order_id)
                    continue
                if not order.working:
                    hit = bar.low <= order.stop_price if order.side is Side.SELL else bar.high >= order.stop_price
                    if not hit:
                        continue
                    order.working, order.working_ms, order.update_ms = True, bar.ts_ms, bar.ts_ms
                    changed.append(order.order_id)
                    if order.type is OrderType.STOP_LOSS_LIMIT:  # fills at its limit price if traded through
                        self._take(acct, order, bar.low <= order.price <= bar.high, order.price, bar.ts_ms)
                        continue
                crosses = bar.low <= order.price if order.side is Side.BUY else bar.high >= order.price
                if crosses:
                    px = min(order.price, bar.open) if order.side is Side.BUY else max(order.price, bar.open)
                    self._fill(acct, order, px, order.remaining, bar.ts_ms, maker=True)
                    changed.append(order.order_id)
        for algo in sorted((a for a in acct.algo_orders.values() if a.status is AlgoStatus.NEW), key=lambda a: a.algo_id):
            sell = algo.side is Side.SELL
            stop = algo.type is OrderType.STOP_MARKET
            falling = sell == stop  # sell stop / buy take-profit trigger on the way down
            hit = bar.low <= algo.trigger_price if falling else bar.high >= algo.trigger_price
            if hit:
                px = min(algo.trigger_price, bar.open) if falling else max(algo.trigger_price, bar.open)
                self._trigger_algo(acct, algo, px, bar.ts_ms)
                changed.append(algo.algo_id)
        return changed

    # ---------------------------------------------------------------------------------- orders
    def new_order(self, api_key: str, venue: Venue, req: OrderRequest) -> Order:
        """Validate, accept and (if marketable) match an order. Raises BinanceError on rejection."""
        acct = self.account(api_key)
        return self._place(acct, venue, req, *self._check_new(venue, req))

    def _check_new(self, venue: Venue, req: OrderRequest) -> tuple[SymbolSpec, Decimal, Decimal | None]:
        """The request-level checks (type, filters, market open) of a new order; no state change.

        Returns ``(spec, quantity, reference price)``; the reference price (the next bar open) is
        ``None`` for a stop, whose own check comes at admission.
        """
        spec = self.spec(venue, req.symbol)
        futures = venue is Venue.USDM
        if futures and req.type not in (OrderType.MARKET, OrderType.LIMIT):
            raise E.use_algo_endpoint()
        if req.type.value not in spec.order_types or (futures and req.type is OrderType.STOP_LOSS_LIMIT):
            raise E.invalid_order_type()
        market = req.type is OrderType.MARKET
        ref = self.reference_price() if req.type in (OrderType.MARKET, OrderType.LIMIT) else None
        qty = req.quantity
        if qty is None and req.quote_order_qty is not None and market and not futures:
            qty = spec.floor_qty(req.quote_order_qty / ref)
        if qty is None:
            raise E.mandatory("quantity")
        spec.check_qty(qty, market, futures)
        if req.price is not None:
            spec.check_price(req.price, futures)
        if req.stop_price is not None:
            spec.check_price(req.stop_price, futures)
        spec.check_notional(qty * (ref if market else req.price), market, futures, req.reduce_only)
        return spec, qty, ref

    def _place(self, acct: Account, venue: Venue, req: OrderRequest, spec: SymbolSpec, qty: Decimal,
               ref: Decimal | None) -> Order:
        """Admit (duplicate id, balance/margin, stop side) and match a checked order; all or nothing."""
        futures = venue is Venue.USDM
        market = req.type is OrderType.MARKET
        if req.client_order_id and any(o.client_order_id == req.client_order_id and o.is_open
                                       for o in acct.orders[venue].values()):
            raise E.duplicate_client_id_futures() if futures else E.duplicate_order()
        order = Order(venue, next(self._ids), req.client_order_id or f"emu{self.clock_ms}x{len(acct.orders[venue])}",
                      req.symbol, req.side, req.type, qty, req.price or D0, req.stop_price or D0,
                      req.time_in_force or "GTC", self.clock_ms,
                      reduce_only=req.reduce_only, update_ms=self.clock_ms, working_ms=self.clock_ms,
                      fill_fraction=req.fill_fraction, delayed=req.delayed)
        if futures:
            self._admit_futures(acct, order, ref if market else req.price)
        else:
            self._admit_spot(acct, spec, order, ref if market else None)
        acct.orders[venue][order.order_id] = order
        if req.delayed:
            return order
        if market:
            i = self.next_open_index()
            self._fill_market(acct, order, self.bars[i].open, self.bars[i].ts_ms)
        elif order.working:  # a LIMIT: takes at the next open if it crosses it
            crosses = order.price >= ref if order.side is Side.BUY else order.price <= ref
            self._take(acct, order, crosses, ref, self.bars[self.next_open_index()].ts_ms)
        return order

    def _take(self, acct: Account, order: Order, crosses: bool, price: Decimal, ts_ms: int) -> None:
        """Immediate (taker) match of a limit just placed or just triggered, by timeInForce.

        GTC (and GTX/GTD): fill at ``price`` if it crosses, else rest. IOC: fill what it can, expire
        the rest. FOK: fill all or expire with nothing; a ``partial_fill`` fault (only part of the
        quantity available) therefore expires a FOK order unfilled.
        """
        tif = order.time_in_force
        if tif == "FOK" and order.fill_fraction is not None:
            order.fill_fraction = None
            crosses = False
        if crosses:
            self._fill(acct, order, price, order.remaining, ts_ms, maker=False)
        if tif in ("IOC", "FOK") and order.is_open:
            self._expire(acct, order, ts_ms)

    def _unlock(self, acct: Account, order: Order) -> None:
        if order.locked:
            spec = self.specs[order.venue][order.symbol]
            bal = acct._bal(spec.quote if order.side is Side.BUY else spec.base)
            bal[1] -= order.locked
            bal[0] += order.locked
            order.locked = D0

    def _expire(self, acct: Account, order: Order, ts_ms: int) -> None:
        self._unlock(acct, order)
        order.set_status(Status.EXPIRED)
        order.update_ms = ts_ms

    def _admit_spot(self, acct: Account, spec: SymbolSpec, order: Order, ref: Decimal | None) -> None:
        if order.type is OrderType.STOP_LOSS_LIMIT:
            now = self.reference_price()
            if (order.side is Side.SELL and now <= order.stop_price) or (order.side is Side.BUY and now >= order.stop_price):
                raise E.stop_would_trigger()
            order.working, order.working_ms = False, -1
        if order.side is Side.BUY:
            need, asset = order.orig_qty * (ref if ref is not None else order.price), spec.quote
        else:
            need, asset = order.orig_qty, spec.base
        if acct.free(asset) < need:
            raise E.insufficient_balance()
        if order.type is not OrderType.MARKET:  # resting orders lock funds; market orders settle at once
            bal = acct._bal(asset)
            bal[0] -= need
            bal[1] += need
            order.locked = need

    def _admit_futures(self, acct: Account, order: Order, price: Decimal) -> None:
        pos = acct.positions[order.symbol]
        signed = order.orig_qty if order.side is Side.BUY else -order.orig_qty
        if order.reduce_only:
            if pos.amt == 0 or (pos.amt > 0) == (signed > 0):
                raise E.reduce_only_rejected()
            if order.type is OrderType.MARKET:
                order.orig_qty = min(order.orig_qty, abs(pos.amt))
            return
        increase = order.orig_qty if pos.amt == 0 or (pos.amt > 0) == (signed > 0) else max(D0, order.orig_qty - abs(pos.amt))
        lev = Decimal(acct.leverage.get(order.symbol, 1))
        need = increase * price / lev + order.orig_qty * price * self.usdm_taker
        if need > self.available_usdm(acct):
            raise E.margin_insufficient()

    def _fill_market(self, acct: Account, order: Order, price: Decimal, ts_ms: int) -> None:
        qty = order.remaining
        if order.venue is Venue.SPOT:
            spec = self.specs[Venue.SPOT][order.symbol]
            asset, need = (spec.quote, qty * price) if order.side is Side.BUY else (spec.base, qty)
            if acct.free(asset) < need:  # a delayed order may no longer be affordable
                order.set_status(Status.EXPIRED)
                order.update_ms = ts_ms
                return
        elif order.reduce_only or order.close_position:
            pos = acct.positions[order.symbol]
            wrong = pos.amt == 0 or (pos.amt > 0) == (order.side is Side.BUY)
            if wrong:
                order.set_status(Status.EXPIRED)
                order.update_ms = ts_ms
                return
            qty = min(qty, abs(pos.amt))
            if order.close_position:
                order.orig_qty = qty
        self._fill(acct, order, price, qty, ts_ms, maker=False)
        if order.is_open:  # a partial_fill fault left a rest: a market order expires it
            order.set_status(Status.EXPIRED)

    def _fill(self, acct: Account, order: Order, price: Decimal, qty: Decimal, ts_ms: int, maker: bool) -> None:
        if order.fill_fraction is not None:
            spec = self.specs[order.venue][order.symbol]
            qty = spec.floor_qty(qty * Decimal(str(order.fill_fraction)))
            order.fill_fraction = None
        if qty > 0:
            if order.venue is Venue.SPOT:
                fill = self._settle_spot(acct, order, price, qty, ts_ms, maker)
            else:
                fill = self._settle_futures(acct, order, price, qty, ts_ms, maker)
            order.fills.append(fill)
            acct.trades[order.venue].append(fill)
            order.executed_qty += qty
            order.cum_quote += price * qty
        order.update_ms = ts_ms
        if order.executed_qty >= order.orig_qty:
            order.set_status(Status.FILLED)
        elif order.executed_qty > 0:
            order.set_status(Status.PARTIALLY_FILLED)

    def _settle_spot(self, acct: Account, order: Order, price: Decimal, qty: Decimal, ts_ms: int, maker: bool) -> Fill:
        spec = self.specs[Venue.SPOT][order.symbol]
        base, quote = acct._bal(spec.base), acct._bal(spec.quote)
        notional = price * qty
        if order.side is Side.BUY:
            fee, fee_asset = (qty * SPOT_FEE).quantize(_Q8, ROUND_DOWN), spec.base
            if order.locked:  # release the lock taken at the limit price, pay the fill price
                release = min(order.locked, qty * order.price)
                order.locked -= release
                quote[1] -= release
                quote[0] += release
            quote[0] -= notional
            base[0] += qty - fee
        else:
            fee, fee_asset = (notional * SPOT_FEE).quantize(_Q8, ROUND_DOWN), spec.quote
            if order.locked:
                release = min(order.locked, qty)
                order.locked -= release
                base[1] -= release
                base[0] += release
            base[0] -= qty
            quote[0] += notional - fee
        if order.executed_qty + qty >= order.orig_qty and order.locked:  # fully filled: refund the rest
            bal = quote if order.side is Side.BUY else base
            bal[1] -= order.locked
            bal[0] += order.locked
            order.locked = D0
        return Fill(next(self._trade_ids), order.order_id, order.symbol, order.side, price, qty, fee, fee_asset, ts_ms, maker)

    def _settle_futures(self, acct: Account, order: Order, price: Decimal, qty: Decimal, ts_ms: int, maker: bool) -> Fill:
        pos = acct.positions[order.symbol]
        signed = qty if order.side is Side.BUY else -qty
        realized = D0
        if pos.amt == 0 or (pos.amt > 0) == (signed > 0):
            new_amt = pos.amt + signed
            pos.entry = (abs(pos.amt) * pos.entry + qty * price) / abs(new_amt)
            pos.amt = new_amt
        else:
            closing = min(qty, abs(pos.amt))
            realized = closing * (price - pos.entry) * (1 if pos.amt > 0 else -1)
            pos.amt += signed
            if pos.amt == 0:
                pos.entry = D0
            elif (pos.amt > 0) == (signed > 0):  # flipped through zero
                pos.entry = price
        pos.update_ms = ts_ms
        fee = (qty * price * (self.usdm_maker if maker else self.usdm_taker)).quantize(_Q8, ROUND_DOWN)
        acct.wallet += realized - fee
        return Fill(next(self._trade_ids), order.order_id, order.symbol, order.side, price, qty, fee, "USDT",
                    ts_ms, maker, realized)

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
        pos = acct.positions[symbol]
        return (self.mark_price() - pos.entry) * pos.amt if pos.amt else D0

    def position_im(self, acct: Account, symbol: str) -> Decimal:
        pos = acct.positions[symbol]
        return abs(pos.amt) * self.mark_price() / Decimal(acct.leverage.get(symbol, 1))

    def open_order_im(self, acct: Account, symbol: str) -> Decimal:
        lev = Decimal(acct.leverage.get(symbol, 1))
        return sum((o.remaining * o.price / lev for o in acct.orders[Venue.USDM].values()
                    if o.is_open and o.symbol == symbol and not o.reduce_only and o.type is OrderType.LIMIT), D0)

    def available_usdm(self, acct: Account) -> Decimal:
        upnl = sum((self.unrealized(acct, s) for s in acct.positions), D0)
        im = sum((self.position_im(acct, s) + self.open_order_im(acct, s) for s in acct.positions), D0)
        return acct.wallet + upnl - im

    def set_leverage(self, api_key: str, symbol: str, leverage: int) -> int:
        self.spec(Venue.USDM, symbol)
        if not 1 <= leverage <= 125:
            raise E.mandatory("leverage")
        self.account(api_key).leverage[symbol] = leverage
        return leverage

    # ---------------------------------------------------------------------------- algo orders
    def new_algo_order(self, api_key: str, req: OrderRequest) -> AlgoOrder:
        """Accept a USDⓈ-M conditional (STOP_MARKET / TAKE_PROFIT_MARKET) order (POST /fapi/v1/algoOrder)."""
        acct = self.account(api_key)
        spec = self.spec(Venue.USDM, req.symbol)
        if req.type not in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET):
            raise E.invalid_order_type()
        if req.stop_price is None:
            raise E.mandatory("triggerPrice")
        spec.check_price(req.stop_price, futures=True)
        qty = req.quantity or D0
        if not req.close_position:
            if req.quantity is None:
                raise E.mandatory("quantity")
            spec.check_qty(qty, market=True, futures=True)
        now = self.reference_price()
        falling = (req.side is Side.SELL) == (req.type is OrderType.STOP_MARKET)
        if (falling and now <= req.stop_price) or (not falling and now >= req.stop_price):
            raise E.algo_would_trigger()
        if req.client_order_id and any(a.client_algo_id == req.client_order_id and a.status is AlgoStatus.NEW
                                       for a in acct.algo_orders.values()):
            raise E.duplicate_client_id_futures()
        algo = AlgoOrder(next(self._algo_ids), req.client_order_id or f"emualgo{self.clock_ms}", req.symbol, req.side,
                         req.type, qty, req.stop_price, req.reduce_only, req.close_position,
                         req.time_in_force or "GTC", self.clock_ms, update_ms=self.clock_ms)
        acct.algo_orders[algo.algo_id] = algo
        return algo

    def _trigger_algo(self, acct: Account, algo: AlgoOrder, price: Decimal, ts_ms: int) -> None:
        algo.trigger_ms = algo.update_ms = ts_ms
        pos = acct.positions[algo.symbol]
        qty = abs(pos.amt) if algo.close_position else algo.quantity
        if algo.reduce_only or algo.close_position:
            if pos.amt == 0 or (pos.amt > 0) == (algo.side is Side.BUY):
                algo.status, algo.reject_reason = AlgoStatus.CANCELED, "Reduce Only reject"
                return
            qty = min(qty, abs(pos.amt))
        order = Order(Venue.USDM, next(self._ids), algo.client_algo_id, algo.symbol, algo.side, OrderType.MARKET,
                      qty, D0, algo.trigger_price, algo.time_in_force, ts_ms, reduce_only=algo.reduce_only,
                      close_position=algo.close_position, orig_type=algo.type, update_ms=ts_ms, working_ms=ts_ms)
        acct.orders[Venue.USDM][order.order_id] = order
        self._fill(acct, order, price, qty, ts_ms, maker=False)
        algo.actual_order_id = order.order_id
        algo.status = AlgoStatus.FINISHED

    def find_algo(self, api_key: str, algo_id: int | None = None, client_algo_id: str | None = None) -> AlgoOrder:
        algos = self.account(api_key).algo_orders
        if algo_id is not None:
            a = algos.get(algo_id)
            if a is not None:
                return a
        else:
            for a in sorted(algos.values(), key=lambda a: -a.algo_id):
                if a.client_algo_id == client_algo_id:
                    return a
        raise E.no_such_order()

    def cancel_algo(self, api_key: str, algo_id: int | None = None, client_algo_id: str | None = None) -> AlgoOrder:
        try:
            algo = self.find_algo(api_key, algo_id, client_algo_id)
        except Exception:
            raise E.unknown_order() from None
        if algo.status is not AlgoStatus.NEW:
            raise E.unknown_order()
        algo.status, algo.update_ms = AlgoStatus.CANCELED, self.clock_ms
        return algo

    def open_algo_orders(self, api_key: str, symbol: str | None = None) -> list[AlgoOrder]:
        return sorted((a for a in self.account(api_key).algo_orders.values()
                       if a.status is AlgoStatus.NEW and (symbol is None or a.symbol == symbol)), key=lambda a: a.algo_id)
