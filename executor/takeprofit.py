"""The take-profit exit leg (issue #16): a resting reduce-only LIMIT on the closing side, one per
symbol, owned by the exit order gateway (:class:`~executor.gateway.ExitOrderGateway` holds one
:class:`TakeProfits` and does what involves the stop: resizing it after a fill, dropping the
take-profit when the stop fired).

Rules (SPEC.md §6.1 "Exit legs"):

- **Write-ahead**: the take-profit's client order id (:func:`~executor.planning.take_profit_order`,
  leg ``t``) is journaled before it is sent, so a restart looks up exactly that order
  (:meth:`TakeProfits.adopt`) — or, on a venue whose orders die with the process (the paper venue),
  rests it again from its decision's market time (:meth:`TakeProfits.restore`).
- **A fill is final and booked once**: a partly filled take-profit has its rest cancelled when its
  fill is taken; a fill kept for a later decision sits in :attr:`TakeProfits.fired`; its journal row
  goes only with the outcome that books it (``Journal.record_outcome(settled_leg=...)``).
- **No take-profit outlives its position**: :meth:`TakeProfits.cancel` goes with every exit.

Units: quantities in base units, prices in quote per base unit, times in Unix ns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from protocol import Side

from . import planning
from .orders import GATEWAY, OrderOps
from .venue.base import OrderReport, OrderType
from .venue.coid import OrderIds
from .venue.coid import parse as parse_coid
from .venue.errors import PermanentVenueError

__all__ = ["TakeProfitLeg", "TakeProfitStore", "TakeProfits"]


@dataclass
class TakeProfitLeg:
    """The resting take-profit held for one symbol: a reduce-only limit on the closing side."""

    client_order_id: str
    limit_price: float
    qty: float
    side: Side


class TakeProfitStore(Protocol):
    """Where take-profits are journaled (the executor's :class:`~executor.journal.Journal`)."""

    def record_take_profit(self, symbol: str, client_order_id: str, limit_price: float, qty: float) -> None: ...
    def clear_take_profit(self, symbol: str) -> None: ...
    def take_profits(self) -> dict[str, tuple[str, float, float]]: ...


class TakeProfits:
    """The take-profit legs of every symbol; see the module docstring.

    Attributes:
        held: the take-profit resting per symbol.
        fired: take-profit fills found and not yet reported through a decision.
    """

    def __init__(self, ops: OrderOps, ids: OrderIds, store: TakeProfitStore, log: Any) -> None:
        self.ops, self.ids, self.store, self.log = ops, ids, store, log
        self.held: dict[str, TakeProfitLeg] = {}
        self.fired: dict[str, OrderReport] = {}

    async def _final(self, report: OrderReport, symbol: str) -> OrderReport:
        """A partly filled take-profit's rest cancelled: what it filled is final."""
        if report.filled > 0 and not report.status.terminal:
            return await self.ops.cancel(report.client_order_id, symbol, owner=GATEWAY, kind=OrderType.LIMIT) or report
        return report

    async def place(self, symbol: str, qty: float, price: float, decision_id: int, market_ts_ns: int, *,
                    side: Side, recovering: bool = False) -> OrderReport:  # fmt: skip
        """Rest the take-profit (replacing the symbol's previous one); returns its report: OPEN once
        it rests, or a fill — the previous one's, found filled while it was replaced, or this one's,
        filled at once (its rest cancelled, so the fill is final).

        Raises:
            PermanentVenueError: refused by the venue (nothing rests). Unresolved: ambiguous answers.
        """
        req = planning.take_profit_order(self.ids, symbol, qty, price, decision_id, market_ts_ns, side)
        old = self.held.get(symbol)
        if old is not None and old.client_order_id != req.client_order_id:
            gone = await self.cancel(symbol)
            if gone is not None:
                return gone
        self.store.record_take_profit(symbol, req.client_order_id, price, qty)
        try:
            report = await self._final(await self.ops.place(req, lookup_first=recovering), symbol)
        except PermanentVenueError:
            self.store.clear_take_profit(symbol)
            raise
        if report.status.terminal:
            if report.filled <= 0:
                self.store.clear_take_profit(symbol)  # else its row goes with the outcome that books the fill
            return report
        self.held[symbol] = TakeProfitLeg(req.client_order_id, price, qty, side)
        self.log.info("take_profit_placed", symbol=symbol, client_order_id=req.client_order_id, limit=price, qty=qty,
                      side=side.name)  # fmt: skip
        return report

    async def take_fill(self, symbol: str) -> tuple[OrderReport | None, bool]:
        """What the take-profit filled (final: its rest cancelled), or ``None`` while it rests
        unfilled; and whether it is gone (none rests, or the venue dropped it unfilled)."""
        report = self.fired.pop(symbol, None)
        if report is not None:
            return report, False
        held = self.held.get(symbol)
        if held is None:
            return None, True
        found = await self.ops.lookup(held.client_order_id, symbol, reason="refresh")
        if found is None or (found.status.terminal and found.filled <= 0):
            self.log.error("take_profit_gone", symbol=symbol, client_order_id=held.client_order_id)
            self.forget(symbol)
            return None, True
        if found.filled <= 0:
            return None, False
        found = await self._final(found, symbol)
        del self.held[symbol]  # its journal row goes with the outcome that books this fill
        return found, False

    async def cancel(self, symbol: str) -> OrderReport | None:
        """Cancel the symbol's take-profit; returns its fill when it had filled (in part) meanwhile —
        or one found before and not yet reported — else ``None``."""
        held = self.held.get(symbol)
        if held is None:
            return self.fired.pop(symbol, None)
        gone = await self.ops.cancel(held.client_order_id, symbol, owner=GATEWAY, kind=OrderType.LIMIT)
        if gone is not None and gone.filled > 0:
            del self.held[symbol]  # its journal row goes with the outcome that books this fill
            return gone
        self.forget(symbol)
        return self.fired.pop(symbol, None)

    async def drop(self, symbol: str) -> None:
        """The position closed another way (its stop): cancel the take-profit; a fill found meanwhile is
        kept for the next decision of the symbol (:attr:`fired`)."""
        took = await self.cancel(symbol)
        if took is not None:
            self.log.error("take_profit_filled_with_the_stop", symbol=symbol, client_order_id=took.client_order_id)
            self.fired[symbol] = took

    def hold(self, symbol: str, report: OrderReport, price: float) -> None:
        """Hold a take-profit found resting by a recovery (an expired TAKE_PROFIT looked up)."""
        self.held[symbol] = TakeProfitLeg(report.client_order_id, price, report.amount, report.side)

    def claim(self, client_order_id: str) -> None:
        """A fill of ``client_order_id`` is being booked: neither kept nor held any more."""
        for kept in (self.fired, self.held):
            for symbol in [s for s, x in kept.items() if x.client_order_id == client_order_id]:
                del kept[symbol]

    def forget(self, symbol: str) -> None:
        self.held.pop(symbol, None)
        self.store.clear_take_profit(symbol)

    async def adopt(self) -> int:
        """After a restart: look up each journaled take-profit (open → held; filled → kept for the
        next decision, its row kept until that outcome books it; gone → forgotten). Returns the
        number held."""
        for symbol, (coid, price, qty) in self.store.take_profits().items():
            found = await self.ops.lookup(coid, symbol, reason="recovery")
            if found is not None and not found.status.terminal:
                self.held[symbol] = TakeProfitLeg(coid, price, found.amount or qty, found.side)
            elif found is not None and found.filled > 0:
                self.fired[symbol] = found
            else:
                self.store.clear_take_profit(symbol)
        return len(self.held)

    async def restore(self, positions: dict[str, float], placed_at: Callable[[int], int | None]) -> int:
        """After a restart on a venue whose orders die with the process (the paper venue): rest each
        journaled take-profit again, same client order id, from the market time its decision was made
        (``placed_at(decision_id)``), on the closing side of the ledger's signed ``positions`` — the
        venue then matches it against the same bars as if it had never gone. Returns the number held.
        """
        for symbol, (coid, price, qty) in self.store.take_profits().items():
            parsed = parse_coid(coid)
            held = positions.get(symbol, 0.0)
            at = placed_at(parsed.decision_id) if parsed is not None else None
            if parsed is None or at is None or not held:
                self.store.clear_take_profit(symbol)
                continue
            side = planning.closing_side(held)
            report = await self.ops.place(planning.take_profit_order(self.ids, symbol, qty, price, parsed.decision_id,
                                                                     at, side))  # fmt: skip
            if not report.status.terminal:
                self.held[symbol] = TakeProfitLeg(coid, price, qty, side)
            elif report.filled > 0:
                self.fired[symbol] = report  # its row goes with the outcome that books it
            else:
                self.store.clear_take_profit(symbol)
        return len(self.held)
