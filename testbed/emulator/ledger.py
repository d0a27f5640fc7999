"""Account bookkeeping: spot balance locks and settlement, USDⓈ-M position settlement and margin.

Pure functions over an :class:`~testbed.emulator.model.Account` (no clock, no bars, no ids of their
own): the engine (:mod:`testbed.emulator.engine`, :mod:`testbed.emulator.matching`) decides what
fills at which price and calls these to move the money. Amounts are ``Decimal``: quantities in base
units, prices and money in quote currency (USDT for USDⓈ-M).

Rules:

* Spot balances are ``[free, locked]`` per asset. A resting spot order locks what it may spend
  (quote at its limit price for a buy, base for a sell); a market order locks nothing and settles
  at once. A fill releases the lock taken for its quantity and pays the fill price; a fully filled
  order refunds what is still locked (a buy that filled below its limit).
* Fees: spot 0.1 % (:data:`SPOT_FEE`: account ``takerCommission`` 10 bps, fixture
  ``commissionRates``) charged in the asset received; USDⓈ-M maker/taker from
  ``fixtures/usdm_commission_rate_btcusdt.json`` (0.02 % / 0.05 %) in USDT. Commissions are
  rounded down to 8 decimals.
* USDⓈ-M: one-way mode, cross margin, leverage 1 unless set; initial margin = notional /
  leverage; ``available = wallet + uPnL(mark) - position IM - open-order IM``; mark = the last
  replayed close (before any bar: the next open), passed in by the engine. No funding, no
  liquidation. A fill that reduces a position realizes ``closed qty * (price - entry)`` (sign by
  side); one that flips it through zero re-enters at the fill price.

Errors: :func:`lock_spot` raises :class:`~testbed.emulator.errors.BinanceError` -2010 (insufficient
balance); nothing else here raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_DOWN, Decimal

from .errors import E
from .model import D0, Account, Fill, Order, OrderType, Side, Venue
from .specs import SymbolSpec

__all__ = [
    "SPOT_FEE", "available_usdm", "lock_spot", "open_order_im", "position_im", "release_lock",
    "settle_futures", "settle_spot", "unrealized",
]

_Q8 = Decimal("0.00000001")
SPOT_FEE = Decimal("0.001")  # Binance spot base rate, 10 bps (fixture account takerCommission 10)


# ------------------------------------------------------------------------------------------ spot
def lock_spot(acct: Account, spec: SymbolSpec, order: Order, ref: Decimal | None) -> None:
    """Check the funds a new spot order needs (at ``ref``, else its limit price) and lock them if it rests.

    Raises:
        BinanceError: -2010 insufficient balance.
    """
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


def release_lock(acct: Account, spec: SymbolSpec, order: Order) -> None:
    """Give back what ``order`` still has locked (cancelled or expired)."""
    bal = acct._bal(spec.quote if order.side is Side.BUY else spec.base)
    bal[1] -= order.locked
    bal[0] += order.locked
    order.locked = D0


def settle_spot(acct: Account, spec: SymbolSpec, order: Order, price: Decimal, qty: Decimal, ts_ms: int,
                maker: bool, trade_ids: Iterator[int]) -> Fill:
    """Move the balances of a spot fill of ``qty`` at ``price``; the :class:`Fill` (id from ``trade_ids``)."""
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
    return Fill(next(trade_ids), order.order_id, order.symbol, order.side, price, qty, fee, fee_asset, ts_ms,
                maker)


# --------------------------------------------------------------------------------------- USDⓈ-M
def settle_futures(acct: Account, order: Order, price: Decimal, qty: Decimal, ts_ms: int, maker: bool,
                   fee_rate: Decimal, trade_ids: Iterator[int]) -> Fill:
    """Move the position and wallet of a USDⓈ-M fill (fee at ``fee_rate``); the :class:`Fill`."""
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
    fee = (qty * price * fee_rate).quantize(_Q8, ROUND_DOWN)
    acct.wallet += realized - fee
    return Fill(next(trade_ids), order.order_id, order.symbol, order.side, price, qty, fee, "USDT",
                ts_ms, maker, realized)


def unrealized(acct: Account, symbol: str, mark: Decimal) -> Decimal:
    """Unrealized P&L of the ``symbol`` position at ``mark`` (USDT)."""
    pos = acct.positions[symbol]
    return (mark - pos.entry) * pos.amt if pos.amt else D0


def position_im(acct: Account, symbol: str, mark: Decimal) -> Decimal:
    """Initial margin of the ``symbol`` position at ``mark``: notional / leverage (USDT)."""
    pos = acct.positions[symbol]
    return abs(pos.amt) * mark / Decimal(acct.leverage.get(symbol, 1))


def open_order_im(acct: Account, symbol: str) -> Decimal:
    """Initial margin of the open ``symbol`` LIMIT orders that may increase the position (USDT)."""
    lev = Decimal(acct.leverage.get(symbol, 1))
    return sum((o.remaining * o.price / lev for o in acct.orders[Venue.USDM].values()
                if o.is_open and o.symbol == symbol and not o.reduce_only and o.type is OrderType.LIMIT), D0)


def available_usdm(acct: Account, mark: Decimal) -> Decimal:
    """``wallet + uPnL(mark) - position IM - open-order IM`` over every symbol (USDT)."""
    upnl = sum((unrealized(acct, s, mark) for s in acct.positions), D0)
    im = sum((position_im(acct, s, mark) + open_order_im(acct, s) for s in acct.positions), D0)
    return acct.wallet + upnl - im
