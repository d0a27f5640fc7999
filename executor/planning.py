"""Order planning: what the executor sends for a decision, as pure functions of the decision, the
ledger, the stops held and the (market) time.

No I/O, no clock, no logging, no event loop (an import-linter contract in ``pyproject.toml`` holds
it): :mod:`executor.core` and :mod:`executor.gateway` ask these functions what to do, then make the
awaited venue calls (through :class:`~executor.orders.OrderOps`) and act on the answers.

:func:`plan_decision` turns one journaled decision into one :data:`Plan`, checked in this order
(the rules of :mod:`executor.core`):

1. the venue does not list the instrument → :class:`Refusal` ``REJECTED / UNKNOWN_INSTRUMENT``;
2. expired (a retry or restart after its expiry) → :class:`RecoverExpired`: only look its orders
   up — a PROTECT's stop (leg ``p``), then the decision's own order (leg ``e``) — never place;
3. PROTECT → :class:`MoveStop` of the whole position to ``stop_price``; refused
   (``REJECTED / GUARD``) when protective orders are off, ``REJECTED / INSUFFICIENT_POSITION``
   when nothing is held or the decision's side is not the position's closing side (SELL for a
   long, BUY for a short);
4. an exit (CLOSE, REDUCE; a SELL exits a long, a BUY a short) of a position not held on that
   side → ``REJECTED / INSUFFICIENT_POSITION``; with protective orders → :class:`ExitPosition`
   through the exit order gateway, which owns the stop; larger than the position beyond
   :data:`~executor.ledger.POSITION_REL_TOL` → ``REJECTED / INSUFFICIENT_POSITION``, else the
   quantity is clamped to the position. Without protective orders → :class:`PlaceOrder` of a
   reduce-only MARKET order with no slippage bound (DESIGN.md invariant 3: an exit is never
   refused for slippage);
5. an entry (OPEN): a short (SELL) without ``allow_short`` → ``REJECTED / GUARD``; an entry
   against a held position (a BUY while short, a SELL while long) → ``REJECTED / GUARD`` (no
   netting: a reversal is two decisions, SPEC.md §6.1); else → :class:`PlaceOrder` of a
   LIMIT_IOC at ``max_slippage_bps`` from the reference (:func:`decision_order`), or a MARKET
   order when ``max_slippage_bps`` >= :data:`NO_SLIPPAGE_BOUND_BPS`; once it fills,
   :func:`entry_stop` places the stop at :meth:`~protocol.TradeDecision.stop_for_fill` of the
   fill price, on the closing side.

The exit order gateway's orders: :func:`stop_order` (a protective stop) and :func:`exit_order` (a
reduce-only market order on the closing side); the bound on brain-driven stop moves:
:func:`admit_move`.

Units: positions are signed (the ledger's: > 0 long, < 0 short); order quantities in base units,
> 0, prices in quote per base unit, slippage and offsets in bps,
market times in Unix ns (the move window in seconds of market time). Nothing here raises for a
refusal: refusals are values (:class:`Refusal`), and the caller raises :meth:`Refusal.error`.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

from protocol import DecisionReason, Intent, RejectCode, Side, Status, TradeDecision

from .ledger import POSITION_REL_TOL, Ledger
from .venue.base import CORE, GATEWAY, OrderReport, OrderRequest, OrderType
from .venue.coid import OrderIds
from .venue.errors import PermanentVenueError

__all__ = [
    "MOVE_WINDOW_S",
    "NO_SLIPPAGE_BOUND_BPS",
    "EntryStop",
    "ExitPosition",
    "MoveAdmission",
    "MoveStop",
    "PlaceOrder",
    "PlaceTakeProfit",
    "Plan",
    "RecoverExpired",
    "Refusal",
    "ReportTakeProfit",
    "admit_move",
    "closing_side",
    "decision_order",
    "entry_stop",
    "exit_order",
    "plan_decision",
    "stop_kind",
    "stop_order",
    "take_profit_order",
]

NO_SLIPPAGE_BOUND_BPS = 10_000
"""A ``max_slippage_bps`` at or above this (100 %) bounds nothing: an entry is then a MARKET order,
and an exit's order carries it (the paper venue checks no slippage at 10,000 bps)."""
MOVE_WINDOW_S = 60.0
"""The window of the bound on brain-driven stop moves, seconds of market time (``max_moves_per_min``
of :class:`~executor.gateway.ExitOrderGateway`)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A decision refused before any order is sent.

    Attributes:
        detail: why, for logs and the caller's error.
        reject_code: what the confirmation carries.
        status: REJECTED (a pre-trade check) or FAILED.
    """

    detail: str
    reject_code: RejectCode
    status: Status = Status.REJECTED

    def error(self) -> PermanentVenueError:
        """The refusal as the error the venue call sites raise (confirmed with its status and code)."""
        return PermanentVenueError(self.detail, self.reject_code, self.status)


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Send ``request`` (owner ``"core"``) and wait for its fill.

    Attributes:
        request: an entry, or an exit on a venue without protective orders.
        held: base units held before it on the order's side (the ledger's position, unsigned).
        protect: an entry on a venue with protective orders: once filled, protect the position
            (:func:`entry_stop`).
    """

    request: OrderRequest
    held: float
    protect: bool = False


@dataclass(frozen=True, slots=True)
class MoveStop:
    """A PROTECT: move the stop of ``symbol`` to ``stop`` for the whole position ``qty`` (base units,
    unsigned) through the exit order gateway; ``side`` is the stop's, the position's closing side."""

    symbol: str
    qty: float
    stop: float
    side: Side = Side.SELL


@dataclass(frozen=True, slots=True)
class ExitPosition:
    """A CLOSE or REDUCE through the exit order gateway: ``side`` (SELL a long, BUY a short) ``qty``
    of a position of ``position_qty`` (base units, unsigned) at the market; ``reference_price`` is
    the decision's."""

    symbol: str
    qty: float
    position_qty: float
    reference_price: float
    side: Side = Side.SELL


@dataclass(frozen=True, slots=True)
class PlaceTakeProfit:
    """A TAKE_PROFIT (exit leg, issue #16): rest a reduce-only limit on ``side`` (the closing side)
    for ``qty`` at ``price`` through the exit order gateway, replacing the position's previous one."""

    symbol: str
    qty: float
    price: float
    side: Side


@dataclass(frozen=True, slots=True)
class ReportTakeProfit:
    """A REDUCE with reason PARTIAL_TAKE_PROFIT: answer with what the resting take-profit filled; send
    no order. ``position_qty`` (base units, unsigned) is the position before that fill."""

    symbol: str
    position_qty: float


@dataclass(frozen=True, slots=True)
class RecoverExpired:
    """An expired decision met again (retry or restart): look its orders up, place nothing.

    Attributes:
        symbol: the venue symbol.
        stop_id: a PROTECT's stop (leg ``p``), looked up first: found, it is the answer as it
            stands (open: ACCEPTED); ``None`` for other intents.
        order_id: the decision's own order (leg ``e``; for a PROTECT, the market exit a crossed
            stop became): found, it is waited for (owner ``owner``) and confirmed.
        owner: the module owning that order (:data:`~executor.venue.base.GATEWAY` for a sell on a
            venue with protective orders, else :data:`~executor.venue.base.CORE`).
    """

    symbol: str
    stop_id: str | None
    order_id: str
    owner: str


Plan = Refusal | PlaceOrder | MoveStop | ExitPosition | RecoverExpired | PlaceTakeProfit | ReportTakeProfit
"""What :func:`plan_decision` answers."""


def decision_order(d: TradeDecision, client_order_id: str, typ: OrderType, *, guarded: bool = True) -> OrderRequest:
    """The order of decision ``d`` itself (owner ``"core"``).

    A LIMIT_IOC's price sits ``max_slippage_bps`` from ``reference_price``, against the trader (above
    for a buy, below for a sell); other types carry no price. ``guarded=False`` (an exit) drops the
    slippage bound — ``max_slippage_bps`` becomes :data:`NO_SLIPPAGE_BOUND_BPS` — and makes the
    order reduce-only (it may only shrink the position it exits).
    """
    limit = None
    if typ is OrderType.LIMIT_IOC:
        slip = d.max_slippage_bps / 1e4
        limit = d.reference_price * (1 + slip) if d.side is Side.BUY else d.reference_price * (1 - slip)
    return OrderRequest(
        client_order_id=client_order_id, decision_id=d.decision_id, symbol=str(d.instrument), side=d.side, type=typ,
        amount=d.quantity, price=limit, market_ts_ns=d.market_ts_ns, reference_price=d.reference_price,
        max_slippage_bps=d.max_slippage_bps if guarded else NO_SLIPPAGE_BOUND_BPS, owner=CORE,
        expires_at_ns=d.expires_at_ns, reduce_only=not guarded,
    )  # fmt: skip


def plan_decision(
    d: TradeDecision, ledger: Ledger, ids: OrderIds, *, listed: bool, protective: bool, venue_name: str,
    expired: bool, allow_short: bool = False, resting_limits: bool = False,
) -> Plan:  # fmt: skip
    """What to do for the journaled decision ``d`` (see the module docstring for the rules).

    Args:
        d: the decision (for a repeated id, the journaled one).
        ledger: the executor's ledger (its position in ``d.instrument``).
        ids: this executor's client order ids.
        listed: the venue lists ``d``'s instrument.
        protective: protective orders are on, and the venue holds them.
        venue_name: for refusal details.
        expired: the decision has expired and may have been placed before (a retry or restart on a
            venue whose orders survive a restart).
        allow_short: short entries are on (a derivatives venue).
        resting_limits: the venue can rest the take-profit leg (a reduce-only limit).
    """
    symbol = str(d.instrument)
    if not listed:
        return Refusal(f"{venue_name} does not list {symbol}", RejectCode.UNKNOWN_INSTRUMENT)
    order_id = ids.order(d.decision_id)
    if expired:
        stop_id = (ids.stop(d.decision_id) if d.intent is Intent.PROTECT
                   else ids.take_profit(d.decision_id) if d.intent is Intent.TAKE_PROFIT else None)  # fmt: skip
        owner = GATEWAY if protective and d.intent is not Intent.OPEN else CORE
        return RecoverExpired(symbol, stop_id, order_id, owner)
    held = ledger.position(d.instrument)  # signed: < 0 short
    side_name = "long" if held > 0 else "short"
    if d.intent is Intent.PROTECT:
        if not protective:
            return Refusal(f"{venue_name}: protective orders are off on this venue", RejectCode.GUARD)
        if held == 0:
            return Refusal(f"no {symbol} position to protect", RejectCode.INSUFFICIENT_POSITION)
        if d.side is not closing_side(held):
            return Refusal(f"a {d.side.name} PROTECT cannot protect the {side_name} {symbol} (its stop is a"
                           f" {closing_side(held).name})", RejectCode.INSUFFICIENT_POSITION)  # fmt: skip
        return MoveStop(symbol, abs(held), d.stop_price, closing_side(held))
    if d.intent is Intent.TAKE_PROFIT or (d.intent is Intent.REDUCE and d.reason is DecisionReason.PARTIAL_TAKE_PROFIT):
        return _take_profit_plan(d, held, symbol, venue_name, resting_limits)
    if d.intent in (Intent.CLOSE, Intent.REDUCE):
        pos = held if d.side is Side.SELL else -held  # what this exit can close: > 0 on its side
        if pos <= 0:
            what = "sell" if d.side is Side.SELL else "buy back"
            have = f"the position is {side_name} {abs(held)!r}" if held else "no position is held"
            return Refusal(f"{what} {d.quantity!r} {symbol}: {have}", RejectCode.INSUFFICIENT_POSITION)
        if not protective:  # an exit is never refused for slippage
            return PlaceOrder(decision_order(d, order_id, OrderType.MARKET, guarded=False), pos)
        if d.quantity > pos * (1 + POSITION_REL_TOL):
            return Refusal(f"{d.side.name.lower()} {d.quantity!r} exceeds position {pos!r}",
                           RejectCode.INSUFFICIENT_POSITION)  # fmt: skip
        return ExitPosition(symbol, min(d.quantity, pos), pos, d.reference_price, d.side)
    if d.side is Side.SELL and not allow_short:
        return Refusal(f"{venue_name}: short entries are off (allow_short)", RejectCode.GUARD)
    if held and (held > 0) is not (d.side is Side.BUY):
        return Refusal(f"{d.side.name} OPEN while {side_name} {abs(held)!r} {symbol}: no netting, close the"
                       f" position first", RejectCode.GUARD)  # fmt: skip
    typ = OrderType.MARKET if d.max_slippage_bps >= NO_SLIPPAGE_BOUND_BPS else OrderType.LIMIT_IOC
    return PlaceOrder(decision_order(d, order_id, typ), abs(held), protect=protective)


def _take_profit_plan(d: TradeDecision, held: float, symbol: str, venue_name: str, resting_limits: bool) -> Plan:
    """The take-profit leg's decisions (SPEC.md §6.1 "Exit legs"): refused where no limit can rest, or
    with no position on the closing side (or a take-profit larger than it)."""
    if not resting_limits:
        return Refusal(f"{venue_name} cannot rest a take-profit (a reduce-only limit)", RejectCode.GUARD)
    pos = held if d.side is Side.SELL else -held
    if pos <= 0:
        return Refusal(f"no {symbol} position on the closing side of a {d.side.name} take-profit",
                       RejectCode.INSUFFICIENT_POSITION)  # fmt: skip
    if d.intent is Intent.REDUCE:
        return ReportTakeProfit(symbol, pos)
    if d.quantity > pos * (1 + POSITION_REL_TOL):
        return Refusal(f"take-profit {d.quantity!r} exceeds position {pos!r}", RejectCode.INSUFFICIENT_POSITION)
    return PlaceTakeProfit(symbol, min(d.quantity, pos), d.stop_price, d.side)


def take_profit_order(
    ids: OrderIds, symbol: str, qty: float, price: float, decision_id: int, market_ts_ns: int, side: Side,
) -> OrderRequest:  # fmt: skip
    """The take-profit leg (leg ``t`` of ``decision_id``, owner ``"gateway"``): a resting reduce-only
    LIMIT on ``side`` (the closing side) for ``qty`` at ``price``."""
    return OrderRequest(
        client_order_id=ids.take_profit(decision_id), decision_id=decision_id, symbol=symbol, side=side,
        type=OrderType.LIMIT, amount=qty, price=price, reduce_only=True, market_ts_ns=market_ts_ns,
        reference_price=price, owner=GATEWAY,
    )  # fmt: skip


def closing_side(position: float) -> Side:
    """The side that exits a signed ``position``: SELL for a long (> 0), BUY for a short (< 0)."""
    return Side.BUY if position < 0 else Side.SELL


@dataclass(frozen=True, slots=True)
class EntryStop:
    """The stop a filled entry gets.

    Attributes:
        symbol: the venue symbol.
        qty: the whole position after the fill, base units (unsigned).
        stop: :meth:`~protocol.TradeDecision.stop_for_fill` of the fill price — the level the brain's
            exit plan computes from the same confirmation, not the decision's ``stop_price``.
        move: a stop is held for the symbol already (the entry grew a position): move it, unbounded
            by :func:`admit_move`; else place one.
        side: the stop's side, the position's closing side (SELL for a long, BUY for a short).
    """

    symbol: str
    qty: float
    stop: float
    move: bool
    side: Side = Side.SELL


def entry_stop(d: TradeDecision, held: float, report: OrderReport, stops: Container[str]) -> EntryStop | None:
    """The stop for entry ``d`` once its order ended as ``report``; ``None`` when nothing filled or
    the decision asks for no stop (``stop_price`` 0).

    Args:
        held: base units held before the entry.
        stops: the symbols the exit order gateway holds a stop for.
    """
    if report.filled <= 0 or d.stop_price <= 0:
        return None
    symbol = str(d.instrument)
    side = Side.BUY if d.side is Side.SELL else Side.SELL
    return EntryStop(symbol, held + report.filled, d.stop_for_fill(report.avg_price), symbol in stops, side)


def stop_kind(derivatives: bool) -> OrderType:
    """The protective order type: a reduce-only STOP_MARKET on derivatives, a STOP_LOSS_LIMIT on spot
    (Binance spot has no stop-market)."""
    return OrderType.STOP_MARKET if derivatives else OrderType.STOP_LOSS_LIMIT


def stop_order(
    ids: OrderIds, symbol: str, qty: float, stop: float, decision_id: int, market_ts_ns: int, *, derivatives: bool,
    limit_offset_bps: float, side: Side = Side.SELL,
) -> OrderRequest:  # fmt: skip
    """The protective stop (leg ``p`` of ``decision_id``, owner ``"gateway"``): ``side`` (SELL for a
    long, BUY for a short) ``qty`` once the price trades at ``stop``. On spot its limit sits
    ``limit_offset_bps`` beyond the trigger, against the trader (room for the fill in a fast market);
    on derivatives it is reduce-only."""
    kind = stop_kind(derivatives)
    offset = limit_offset_bps / 1e4
    limit = stop * (1 - offset) if side is Side.SELL else stop * (1 + offset)
    return OrderRequest(
        client_order_id=ids.stop(decision_id), decision_id=decision_id,
        symbol=symbol, side=side, type=kind, amount=qty, stop_price=stop,
        price=limit if kind is OrderType.STOP_LOSS_LIMIT else None,
        reduce_only=derivatives, market_ts_ns=market_ts_ns, reference_price=stop, owner=GATEWAY,
    )  # fmt: skip


def exit_order(
    ids: OrderIds, symbol: str, qty: float, decision_id: int, market_ts_ns: int, ref: float, *, derivatives: bool,
    side: Side = Side.SELL,
) -> OrderRequest:  # fmt: skip
    """The gateway's market order for ``qty`` on ``side`` (SELL exits a long, BUY a short; leg ``e``
    of ``decision_id``, owner ``"gateway"``; reduce-only on derivatives), ``ref`` its reference
    price — a CLOSE, a REDUCE, or the exit a crossed PROTECT becomes."""
    return OrderRequest(
        client_order_id=ids.order(decision_id), decision_id=decision_id,
        symbol=symbol, side=side, type=OrderType.MARKET, amount=qty, reduce_only=derivatives,
        market_ts_ns=market_ts_ns, reference_price=ref, owner=GATEWAY,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class MoveAdmission:
    """What the bound on stop moves says about one more move of a symbol's stop.

    Attributes:
        window: the move times to keep, seconds of market time, oldest first: those within
            :data:`MOVE_WINDOW_S` of this one, and this one when admitted.
        refusal: ``None`` when admitted, else ``REJECTED / GUARD`` (the old stop stays).
    """

    window: tuple[float, ...]
    refusal: Refusal | None = None


def admit_move(window: tuple[float, ...], symbol: str, market_ts_ns: int, max_moves: int) -> MoveAdmission:
    """At most ``max_moves`` brain-driven moves of ``symbol``'s stop per :data:`MOVE_WINDOW_S` of
    market time — the decisions' ``market_ts_ns``: the wall clock live, the replay's own pace in a
    replay.

    Args:
        window: the times kept from the last call (:attr:`MoveAdmission.window`), ``()`` at first.
    """
    now = market_ts_ns / 1e9
    start = 0
    while start < len(window) and now - window[start] > MOVE_WINDOW_S:
        start += 1
    kept = window[start:]
    if len(kept) >= max_moves:
        detail = f"{symbol}: more than {max_moves} stop moves in {MOVE_WINDOW_S:g} s"
        return MoveAdmission(kept, Refusal(detail, RejectCode.GUARD))
    return MoveAdmission((*kept, now))
