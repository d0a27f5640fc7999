"""The emulator's own control endpoints (``/_emulator/*``, not Binance's) and the state snapshot.

Control routes, signed exactly like a Binance USER_DATA request by a known key (the route table
is :mod:`.server`'s; no fault is ever drawn for them):

* ``POST /_emulator/advance`` (``ts_ms``) → ``{"clock_ms", "changed"}``: bars before ``ts_ms``
  happen (:meth:`~.engine.Engine.advance_to`); a clock going back answers -1104;
* ``GET /_emulator/state`` → the whole state (:func:`snapshot`);
* ``GET|POST|DELETE /_emulator/faults`` (POST ``faults`` = JSON list of
  :class:`~testbed.emulator.faults.Fault` dicts; a bad list answers -1100) → the fault plan and
  counters.
"""

from __future__ import annotations

import json

from . import payloads as P
from .engine import Engine
from .errors import BinanceError, E
from .faults import Fault, FaultPlan
from .model import Venue
from .params import Ctx, param_int, param_req

__all__ = ["Control", "snapshot"]


def snapshot(eng: Engine) -> dict:
    """The whole engine state as JSON (control route ``GET /_emulator/state``)."""
    accounts = {}
    for key, a in eng.accounts.items():
        accounts[key] = {
            "spot": {"balances": {k: {"free": str(v[0]), "locked": str(v[1])} for k, v in sorted(a.balances.items())},
                     "orders": [P.spot_order(o) for o in a.orders[Venue.SPOT].values()],
                     "trades": P.spot_trades(a.trades[Venue.SPOT])},
            "usdm": {"wallet": str(a.wallet), "available": str(eng.available_usdm(a)),
                     "positions": {s: {"positionAmt": str(p.amt), "entryPrice": str(p.entry),
                                       "unRealizedProfit": str(eng.unrealized(a, s)), "leverage": a.leverage.get(s, 1)}
                                   for s, p in a.positions.items()},
                     "orders": [P.futures_order(o, eng) for o in a.orders[Venue.USDM].values()],
                     "algo_orders": [P.algo_order(x, eng) for x in a.algo_orders.values()],
                     "trades": P.futures_trades(a.trades[Venue.USDM], eng)},
        }
    nxt = eng.next_open_index()
    return {"clock_ms": eng.clock_ms, "next_bar_ms": eng.bars[nxt].ts_ms if nxt is not None else None,
            "processed_bars": eng.next_bar, "mark_price": str(eng.mark_price()), "accounts": accounts}


class Control:
    """The ``/_emulator/*`` handlers over ``engine`` and ``faults``."""

    def __init__(self, engine: Engine, faults: FaultPlan) -> None:
        self.engine, self.faults = engine, faults

    def advance(self, c: Ctx) -> dict:
        ts = param_int(c.params, "ts_ms")
        if ts is None:
            raise E.mandatory("ts_ms")
        try:
            changed = self.engine.advance_to(ts)
        except ValueError as exc:
            raise BinanceError(-1104, str(exc)) from None
        return {"clock_ms": self.engine.clock_ms, "changed": changed}

    def state(self, c: Ctx) -> dict:
        return snapshot(self.engine)

    def get_faults(self, c: Ctx) -> dict:
        return self.faults.to_json()

    def install_faults(self, c: Ctx) -> dict:
        try:
            faults = [Fault.from_json(d) for d in json.loads(param_req(c.params, "faults"))]
        except (ValueError, TypeError) as exc:
            raise BinanceError(-1100, f"bad faults: {exc}") from None
        self.faults.install(*faults)
        return self.faults.to_json()

    def clear_faults(self, c: Ctx) -> dict:
        self.faults.clear()
        return self.faults.to_json()
