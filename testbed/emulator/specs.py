"""Symbol rules from a Binance ``exchangeInfo`` body, and the filter checks they imply.

Spot filters (Binance spot "Filters" doc): PRICE_FILTER (minPrice/maxPrice/tickSize, 0 disables a
bound), LOT_SIZE and MARKET_LOT_SIZE (minQty/maxQty/stepSize; MARKET_LOT_SIZE applies to MARKET
orders, a 0 step disables it), MIN_NOTIONAL (minNotional, applyToMarket) and NOTIONAL
(minNotional/applyMinToMarket/maxNotional/applyMaxToMarket). A failure is
``-1013 "Filter failure: <FILTER>"``. PERCENT_PRICE(_BY_SIDE) is not checked (replayed bars have no
5-minute average price).

USDⓈ-M uses the same PRICE_FILTER / LOT_SIZE / MARKET_LOT_SIZE / MIN_NOTIONAL(``notional``) data
but other codes: -1111 (not on the step/tick), -4003/-4005 (quantity out of range) and -4164
(notional too small, unless reduceOnly).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources

from .errors import E

__all__ = ["SymbolSpec", "load_fixture", "specs_from_exchange_info"]

_ZERO = Decimal(0)


def load_fixture(name: str) -> dict:
    """A JSON file from ``tandem/emulator/fixtures`` (see its NOTICE)."""
    return json.loads((resources.files("testbed.emulator") / "fixtures" / name).read_text("utf-8"))


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """The trading rules of one symbol. Prices in quote currency, quantities in base units."""

    symbol: str
    base: str
    quote: str
    order_types: tuple[str, ...]
    tick: Decimal
    min_price: Decimal
    max_price: Decimal
    step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_step: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    min_notional_market: bool
    max_notional: Decimal
    notional_filter: str  # "MIN_NOTIONAL" or "NOTIONAL": the name reported on failure
    price_precision: int  # futures display precision (pricePrecision), spot 8
    qty_precision: int

    def check_price(self, price: Decimal, futures: bool) -> None:
        """Raise PRICE_FILTER failure (-1013 spot, -1111/-4014 style futures) for a bad price."""
        bad_range = price <= 0 or (self.min_price and price < self.min_price) or (self.max_price and price > self.max_price)
        bad_tick = self.tick and (price - self.min_price) % self.tick != 0
        if futures:
            if bad_tick:
                raise E.precision_over_max()
            if bad_range:
                raise E.filter_failure("PRICE_FILTER")
        elif bad_range or bad_tick:
            raise E.filter_failure("PRICE_FILTER")

    def check_qty(self, qty: Decimal, market: bool, futures: bool) -> None:
        """Raise a LOT_SIZE / MARKET_LOT_SIZE failure for a bad quantity."""
        checks = [("LOT_SIZE", self.min_qty, self.max_qty, self.step)]
        if market and self.market_step:
            checks.append(("MARKET_LOT_SIZE", self.market_min_qty, self.market_max_qty, self.market_step))
        elif market and self.market_max_qty:  # spot MARKET_LOT_SIZE with step 0: only maxQty applies
            checks.append(("MARKET_LOT_SIZE", _ZERO, self.market_max_qty, _ZERO))
        for name, lo, hi, step in checks:
            if futures:
                if qty <= 0 or qty < lo:
                    raise E.qty_too_small()
                if hi and qty > hi:
                    raise E.qty_too_big()
                if step and (qty - lo) % step != 0:
                    raise E.precision_over_max()
            elif qty < lo or (hi and qty > hi) or (step and (qty - lo) % step != 0) or qty <= 0:
                raise E.filter_failure(name)

    def check_notional(self, notional: Decimal, market: bool, futures: bool, reduce_only: bool = False) -> None:
        """Raise the notional-filter failure for ``price * qty`` (quote currency)."""
        if futures:
            if not reduce_only and self.min_notional and notional < self.min_notional:
                raise E.min_notional_futures(_plain(self.min_notional))
            return
        if (not market or self.min_notional_market) and self.min_notional and notional < self.min_notional:
            raise E.filter_failure(self.notional_filter)
        if self.max_notional and notional > self.max_notional:
            raise E.filter_failure(self.notional_filter)

    def floor_qty(self, qty: Decimal) -> Decimal:
        """``qty`` rounded down to the LOT_SIZE step."""
        if not self.step:
            return qty
        return self.min_qty + ((qty - self.min_qty) // self.step) * self.step if qty >= self.min_qty else _ZERO


def _plain(d: Decimal) -> str:
    return format(d.normalize(), "f")


def _d(v: object) -> Decimal:
    return Decimal(str(v)) if v not in (None, "") else _ZERO


def specs_from_exchange_info(info: dict, futures: bool) -> dict[str, SymbolSpec]:
    """Parse every symbol of an exchangeInfo body into a :class:`SymbolSpec`, keyed by id."""
    out: dict[str, SymbolSpec] = {}
    for s in info.get("symbols", []):
        f = {flt["filterType"]: flt for flt in s.get("filters", [])}
        pf, lot, mlot = f.get("PRICE_FILTER", {}), f.get("LOT_SIZE", {}), f.get("MARKET_LOT_SIZE", {})
        notional_name = "NOTIONAL" if "NOTIONAL" in f else "MIN_NOTIONAL"
        nf = f.get(notional_name, {})
        min_notional = _d(nf.get("notional") if futures else nf.get("minNotional"))
        apply_market = bool(nf.get("applyToMarket", nf.get("applyMinToMarket", True)))
        out[s["symbol"]] = SymbolSpec(
            symbol=s["symbol"], base=s["baseAsset"], quote=s["quoteAsset"],
            order_types=tuple(s.get("orderTypes", ())),
            tick=_d(pf.get("tickSize")), min_price=_d(pf.get("minPrice")), max_price=_d(pf.get("maxPrice")),
            step=_d(lot.get("stepSize")), min_qty=_d(lot.get("minQty")), max_qty=_d(lot.get("maxQty")),
            market_step=_d(mlot.get("stepSize")), market_min_qty=_d(mlot.get("minQty")),
            market_max_qty=_d(mlot.get("maxQty")),
            min_notional=min_notional, min_notional_market=apply_market,
            max_notional=_d(nf.get("maxNotional")) if notional_name == "NOTIONAL" else _ZERO,
            notional_filter=notional_name,
            price_precision=int(s.get("pricePrecision", 8)), qty_precision=int(s.get("quantityPrecision", 8)),
        )
    return out

