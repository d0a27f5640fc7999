"""The one venue interface: paper, ccxt and (later) Solana venues all implement :class:`Venue`.

Every call takes and returns venue-neutral values — :class:`OrderRequest` in, :class:`OrderReport`,
:class:`Balance` and :class:`PositionReport` out. A raw venue dict never crosses this interface,
and every foreign exception is translated once, at the adapter's edge, into
:mod:`executor.venue.errors`.

Units: amounts in base-asset units, prices in quote per base unit, fees in quote currency (an
adapter converts a fee charged in the base asset, see :class:`OrderReport`), times in Unix ns.

The interface states everything the executor uses — capabilities as attributes
(:attr:`Venue.supports_protective`, :attr:`Venue.supports_replace`, ...), the optional calls with a
default (:meth:`Venue.replace` refuses, :meth:`Venue.bind` does nothing) — so no caller probes a
venue with ``getattr`` or ``isinstance``. "No such order" is one answer: ``None`` from
:meth:`Venue.fetch_order` and :meth:`Venue.cancel` (an adapter translates its client's
not-found error into :class:`~executor.venue.errors.OrderAbsent` and answers that with ``None``).
Client order ids are opaque here: whether an order is a protective (trigger) order is passed in
(``protective=``), never read from the id (:mod:`executor.venue.coid` is the executor's).
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from protocol import RejectCode, Side

from .errors import PermanentVenueError

if TYPE_CHECKING:
    from ..ledger import Ledger

__all__ = [
    "CORE",
    "GATEWAY",
    "PROTECTIVE_TYPES",
    "Balance",
    "OrderReport",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "PositionReport",
    "Venue",
]


class OrderType(enum.StrEnum):
    """Order types tandem sends (Binance names; other venues map them in their adapter)."""

    MARKET = "market"
    LIMIT_IOC = "limit_ioc"  # marketable limit, immediate-or-cancel: the price caps slippage
    STOP_MARKET = "stop_market"  # futures protective stop: reduce-only, market once triggered
    STOP_LOSS_LIMIT = "stop_loss_limit"  # spot protective stop: a limit order once triggered
    LIMIT = "limit"  # a resting (good-till-cancelled) reduce-only limit: the take-profit exit leg


PROTECTIVE_TYPES = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LOSS_LIMIT, OrderType.LIMIT})
"""Exit-leg order types (protective stops, the resting take-profit): only the exit order gateway may
create, amend or cancel them."""

CORE = "core"
"""Owner name of :mod:`executor.core`: entries, and exits on a venue without protective orders
(the ``module`` label of the protective-order metrics)."""
GATEWAY = "gateway"
"""Owner name of the exit order gateway (:mod:`executor.gateway`), the only module allowed to touch
protective orders."""


class OrderStatus(enum.StrEnum):
    """Venue-neutral order status (ccxt's unified statuses, with the partial fill made explicit)."""

    OPEN = "open"  # accepted, resting or not yet triggered, nothing filled
    PARTIALLY_FILLED = "partially_filled"  # some filled, the rest still working
    FILLED = "filled"
    CANCELED = "canceled"  # terminal; ``filled`` may be > 0
    EXPIRED = "expired"  # terminal (IOC remainder, market order the book could not fill); ``filled`` may be > 0
    REJECTED = "rejected"

    @property
    def terminal(self) -> bool:
        """True when nothing more will fill."""
        return self not in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


class OrderRequest(NamedTuple):
    """One order to place.

    A ``NamedTuple``, as immutable as a frozen dataclass and built ~6x faster (15 fields: 0.27 against
    1.6 us; a frozen dataclass sets each field through ``object.__setattr__``): one or more are built for
    every decision (issue #17).

    Attributes:
        client_order_id: deterministic id (see :mod:`executor.venue.coid`); the venue's idempotency handle.
        decision_id: the decision that caused it (for the paper venue's references and for logs).
        symbol: unified symbol, e.g. ``"BTC/USDT"``.
        side: buy or sell.
        type: see :class:`OrderType`.
        amount: base units, > 0 (the adapter rounds it to the venue's step).
        price: limit price (LIMIT_IOC, STOP_LOSS_LIMIT), quote per base unit, else ``None``.
        stop_price: trigger price of a stop, else ``None``.
        reduce_only: futures: may only reduce the position.
        market_ts_ns: time of the market data the decision used; a replay venue fills at the first
            price at or after it (DESIGN.md invariant 6). Ignored by live venues.
        reference_price: the brain's mark price (paper slippage check), quote per base unit.
        max_slippage_bps: refuse a fill worse than ``reference_price`` by more than this.
        owner: the module placing it (:data:`CORE`, :data:`GATEWAY`); protective orders must come
            from the gateway.
        expires_at_ns: the decision's expiry, Unix ns (0: none given). A venue that may have to
            build a second execution for the order (Solana, after a transaction expired unlanded)
            builds none after it.
    """

    client_order_id: str
    decision_id: int
    symbol: str
    side: Side
    type: OrderType
    amount: float
    price: float | None = None
    stop_price: float | None = None
    reduce_only: bool = False
    market_ts_ns: int = 0
    reference_price: float = 0.0
    max_slippage_bps: int = 10_000
    owner: str = CORE
    expires_at_ns: int = 0


class OrderReport(NamedTuple):
    """What the venue says about one order. (A ``NamedTuple``, as :class:`OrderRequest`.)

    Attributes:
        client_order_id, venue_order_id: the order's two ids.
        symbol, side, type: as requested.
        status: see :class:`OrderStatus`.
        amount: base units ordered.
        filled: base units the account received (buy) or gave (sell), **net of any fee charged in
            the base asset** (Binance spot charges a buy's commission in the asset received).
        avg_price: quote per base unit of the gross fill (0.0 when nothing filled).
        fee: quote currency; a base-asset fee is converted at ``avg_price``. With the net
            ``filled`` this keeps ``filled*avg_price + fee`` equal to the quote paid on a buy.
        stop_price: trigger price for a stop, else ``None``.
        updated_at_ns: the venue's last update (fill time for a fill), Unix ns; 0 if unknown.
        venue_ref: the full venue reference as bytes when it is not ``venue_order_id`` in ASCII
            (Solana: the transaction's 64 signature bytes, SPEC.md §5.2), else ``b""``.
        fee_native: the fee as paid in the venue's native unit when not in quote (Solana: lamports;
            ``fee`` is its quote value), else 0.
        reject_code: why nothing (or not all) executed, when the venue's answer says (a Solana
            transaction that landed with an instruction error), else ``NONE``; with ``fee`` != 0
            and nothing filled, the executor confirms a failed execution that paid a fee
            (protocol v5).
    """

    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    type: OrderType
    status: OrderStatus
    amount: float
    filled: float
    avg_price: float
    fee: float
    stop_price: float | None = None
    updated_at_ns: int = 0
    venue_ref: bytes = b""
    fee_native: int = 0
    reject_code: RejectCode = RejectCode.NONE


@dataclass(frozen=True, slots=True)
class Balance:
    """One asset's balance: ``free`` + ``used`` (locked in open orders) = ``total``, asset units."""

    asset: str
    free: float
    used: float

    @property
    def total(self) -> float:
        return self.free + self.used


@dataclass(frozen=True, slots=True)
class PositionReport:
    """A position as the venue reports it: ``qty`` base units (> 0 long, < 0 short)."""

    symbol: str
    qty: float
    entry_price: float


class Venue(abc.ABC):
    """Where orders go. Every method raises only :class:`~executor.venue.errors.VenueError`.

    Attributes:
        name: for logs and metrics (``"paper"``, ``"binance"``, ...).
        supports_protective: the venue can hold protective stop orders.
        supports_replace: :meth:`replace` cancels one order and places another in one venue call.
        derivatives: positions are venue positions (futures) rather than asset balances (spot).
        ambiguity_window_s: how long after a send a lost order request could still be accepted by
            the venue (Binance: its ``recvWindow``); an unanswered order is not taken as absent
            before this has passed (:mod:`executor.orders`).
        orders_survive_restart: an order placed before a crash may exist afterwards (every real
            venue); False for the paper venue, whose orders live in the process's memory.
        replay_clock: the venue replays recorded bars on a clock the executor moves with its orders
            (the paper venue, the local Binance): reconciliation then runs at the decision's market
            time, so a replay stays deterministic (:mod:`executor.app`) — after each decision,
            unless the venue is :attr:`in_process`.
        in_process: the venue lives in the executor's process (the paper venue): nothing outside
            can move it, so reconciling it after every decision would only compare the executor with
            itself at the cost of a cycle per decision (issue #17); it is reconciled at start and
            every ``reconcile_interval_s``, as a live venue is.
    """

    name: str = "venue"
    supports_protective: bool = False
    supports_replace: bool = False
    derivatives: bool = False

    @property
    def supports_short(self) -> bool:
        """Short positions can be opened here: a derivatives venue (a perpetual). The paper venue,
        a perpetual, says so too."""
        return self.derivatives
    ambiguity_window_s: float = 0.0
    orders_survive_restart: bool = True
    replay_clock: bool = False
    in_process: bool = False
    supports_resting_limits: bool = False
    """A reduce-only limit order can rest here (the take-profit leg, issue #16)."""

    async def observe_time(self, market_ts_ns: int) -> None:
        """The market time of the decision about to be planned: a replay venue's clock (its resting
        orders fill against the bars before it); a live venue ignores it. Default: nothing."""

    async def start(self) -> None:
        """Connect and load markets (once). Default: nothing to do."""

    async def close(self) -> None:
        """Release connections. Default: nothing to do."""

    def bind(self, ledger: Ledger) -> None:
        """Keep the account's balances in the executor's ``ledger`` — a simulated venue (paper)
        does; a real venue holds its own. Default: nothing to do."""

    def keep_records(self, store: Any) -> None:
        """Keep the venue's own exactly-once records in ``store`` (the executor journal) — the
        Solana venue journals each signed transaction before sending it
        (:class:`~executor.venue.solana.records.SwapStore`). Default: nothing to keep."""

    @abc.abstractmethod
    def lists(self, symbol: str) -> bool:
        """True when the venue trades ``symbol`` (after :meth:`start`)."""

    @abc.abstractmethod
    async def submit(self, request: OrderRequest) -> OrderReport:
        """Place one order; returns the venue's report of it (possibly still OPEN)."""

    @abc.abstractmethod
    async def cancel(self, client_order_id: str, symbol: str, *, protective: bool = False) -> OrderReport | None:
        """Cancel; idempotent. Returns the order's final report, or ``None`` when the venue
        confirms no such order exists. An order already filled is returned as FILLED.

        Args:
            protective: the order is a protective (trigger) order; a venue that keeps those apart
                (Binance USDⓈ-M's algo service) looks there.
        """

    @abc.abstractmethod
    async def fetch_order(self, client_order_id: str, symbol: str, *, protective: bool = False) -> OrderReport | None:
        """The order with this client order id, or ``None`` when the venue says it does not exist
        (``protective`` as for :meth:`cancel`)."""

    async def replace(self, client_order_id: str, request: OrderRequest) -> OrderReport:
        """Cancel ``client_order_id`` and place ``request`` in one venue call (only when
        :attr:`supports_replace`); returns the new order's report.

        Raises:
            PermanentVenueError: the venue has no such call (the default), the cancel failed (e.g.
                the old order already filled; nothing new was placed) or the new order was refused
                (:class:`~executor.venue.errors.StopWouldTrigger` for a stop already crossed).
            AmbiguousVenueError: as for :meth:`submit`.
        """
        raise PermanentVenueError(f"{self.name} cannot cancel/replace", RejectCode.VENUE_ERROR)

    @abc.abstractmethod
    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        """Orders still working (OPEN or PARTIALLY_FILLED)."""

    @abc.abstractmethod
    async def balances(self) -> dict[str, Balance]:
        """Balances by asset code."""

    @abc.abstractmethod
    async def positions(self) -> list[PositionReport]:
        """Open positions (derivatives venues; spot venues derive them from balances)."""

    async def holdings(self, symbols: list[str]) -> dict[str, PositionReport]:
        """What the account holds of each of ``symbols`` (reconciliation's evidence): a derivatives
        venue's positions; on spot, the base asset's total balance (free + locked in orders), with
        entry price 0.0 (spot keeps none). Symbols held by nothing are left out.

        Raises:
            VenueError: a call failed (the caller counts a failed fetch; nothing is concluded).
        """
        if self.derivatives:
            return {p.symbol: p for p in await self.positions() if p.qty and p.symbol in symbols}
        balances = await self.balances()
        out = {}
        for symbol in symbols:
            base = self.base_asset(symbol)
            held = balances.get(base) if base is not None else None
            if held is not None and held.total > 0:
                out[symbol] = PositionReport(symbol, held.total, 0.0)
        return out

    def base_asset(self, symbol: str) -> str | None:
        """The asset bought and sold in ``symbol`` (``BTC`` for ``BTC/USDT``), or ``None`` when
        unknown. Default: the unified symbol's part before ``/``."""
        base, sep, _ = symbol.partition("/")
        return base if sep and base else None

    async def mark_price(self, symbol: str) -> float | None:
        """The last traded price of ``symbol`` (quote per base unit), or ``None`` when the venue
        has none to give. Default: ``None``.

        Raises:
            VenueError: the call failed.
        """
        return None

    def min_amount(self, symbol: str) -> float:
        """The venue's minimum order amount for ``symbol``, base units (a smaller position is dust:
        it cannot be sold or protected). Default: 0."""
        return 0.0
