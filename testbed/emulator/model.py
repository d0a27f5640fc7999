"""Emulator data model: enums, orders, fills, positions and accounts (state, no behaviour).

The order lifecycle is a transition table (:data:`TRANSITIONS`); :meth:`Order.set_status` raises
``ValueError`` on an illegal transition. Quantities are base units, prices quote currency,
times Unix ms on the replay clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

__all__ = [
    "D0", "TRANSITIONS", "Account", "AlgoOrder", "AlgoStatus", "Bar", "Fill", "Order", "OrderRequest", "OrderType",
    "Position", "Side", "Status", "Venue",
]

D0 = Decimal(0)


class Venue(StrEnum):
    SPOT = "spot"
    USDM = "usdm"


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP_LOSS_LIMIT = "STOP_LOSS_LIMIT"  # spot
    STOP_MARKET = "STOP_MARKET"  # USDⓈ-M, algo service only
    TAKE_PROFIT_MARKET = "TAKE_PROFIT_MARKET"  # USDⓈ-M, algo service only


class Status(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"


class AlgoStatus(StrEnum):
    NEW = "NEW"
    CANCELED = "CANCELED"
    FINISHED = "FINISHED"  # triggered and its order reached a final state
    EXPIRED = "EXPIRED"


_OPEN = {Status.NEW, Status.PARTIALLY_FILLED}
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.NEW: frozenset({Status.PARTIALLY_FILLED, Status.FILLED, Status.CANCELED, Status.EXPIRED}),
    Status.PARTIALLY_FILLED: frozenset({Status.PARTIALLY_FILLED, Status.FILLED, Status.CANCELED, Status.EXPIRED}),
    Status.FILLED: frozenset(), Status.CANCELED: frozenset(), Status.EXPIRED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class Bar:
    """One replayed bar: open time (Unix ms, UTC) and prices in quote currency."""

    ts_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = D0


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order, already parsed from Binance parameters (quantities in base units)."""

    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str | None = None
    client_order_id: str | None = None
    quote_order_qty: Decimal | None = None
    reduce_only: bool = False
    close_position: bool = False
    fill_fraction: float | None = None  # fault: only this part of the first fill happens
    delayed: bool = False  # fault: do not fill at placement


@dataclass(slots=True)
class Fill:
    trade_id: int
    order_id: int
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    maker: bool
    realized_pnl: Decimal = D0

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty


@dataclass(slots=True)
class Order:
    venue: Venue
    order_id: int
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    orig_qty: Decimal
    price: Decimal
    stop_price: Decimal
    time_in_force: str
    time_ms: int
    reduce_only: bool = False
    close_position: bool = False
    orig_type: OrderType | None = None
    status: Status = Status.NEW
    executed_qty: Decimal = D0
    cum_quote: Decimal = D0
    update_ms: int = 0
    working: bool = True  # False for an untriggered spot stop
    working_ms: int = -1
    fills: list[Fill] = field(default_factory=list)
    locked: Decimal = D0  # spot: amount still locked (quote for buys, base for sells)
    fill_fraction: float | None = None
    delayed: bool = False

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty else D0

    def set_status(self, new: Status) -> None:
        if new not in TRANSITIONS[self.status]:
            raise ValueError(f"order {self.order_id}: illegal transition {self.status} -> {new}")
        self.status = new


@dataclass(slots=True)
class AlgoOrder:
    """A USDⓈ-M conditional order held by Binance's Algo Service until it triggers."""

    algo_id: int
    client_algo_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    trigger_price: Decimal
    reduce_only: bool
    close_position: bool
    time_in_force: str
    create_ms: int
    status: AlgoStatus = AlgoStatus.NEW
    update_ms: int = 0
    trigger_ms: int = 0
    actual_order_id: int | None = None
    reject_reason: str = ""


@dataclass(slots=True)
class Position:
    amt: Decimal = D0  # signed: > 0 long, < 0 short (one-way mode)
    entry: Decimal = D0
    update_ms: int = 0


@dataclass(slots=True)
class Account:
    api_key: str
    secret: str
    balances: dict[str, list[Decimal]] = field(default_factory=dict)  # spot asset -> [free, locked]
    wallet: Decimal = D0  # USDⓈ-M USDT wallet balance
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    orders: dict[Venue, dict[int, Order]] = field(default_factory=lambda: {Venue.SPOT: {}, Venue.USDM: {}})
    algo_orders: dict[int, AlgoOrder] = field(default_factory=dict)
    trades: dict[Venue, list[Fill]] = field(default_factory=lambda: {Venue.SPOT: [], Venue.USDM: []})

    def free(self, asset: str) -> Decimal:
        return self.balances.get(asset, [D0, D0])[0]

    def _bal(self, asset: str) -> list[Decimal]:
        return self.balances.setdefault(asset, [D0, D0])
