"""Export of the replay's gauges and the link's counters to the brain's Prometheus metrics.

* **Per-bar gauges** (bars replayed, market time, equity, cash, peak equity, drawdown ratio,
  breakers tripped): at most every :data:`GAUGE_INTERVAL_S` of wall time during a replay, and
  after its last bar — a scrape every few seconds needs no per-bar update, and a month replays in
  about a second. Equity and drawdown are the equity curve's last row (:mod:`brain.equity`); the
  drawdown gauge is a ratio (0..1), the row's percentage / 100.
* **Positions** (the tracker's, per instrument, and how many are open): when they may have moved.
* **Link counters** (retransmits, replay requests, duplicates): the link's
  :class:`~protocol.LinkStats` moved since the last export, added as they move.

Metric names and help texts are :class:`~brain.metrics.BrainMetrics`'.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from protocol import LinkStats

from .core import BrainCore
from .metrics import BrainMetrics
from .risk import BreakerKind
from .stats import ReplayStats

__all__ = ["GAUGE_INTERVAL_S", "ReplayGauges"]

GAUGE_INTERVAL_S = 0.1
"""Wall seconds between exports of the per-bar gauges during a replay."""


class ReplayGauges:
    """Exports ``stats`` and the link's counters to ``metrics`` (module docstring)."""

    def __init__(self, metrics: BrainMetrics) -> None:
        self.metrics = metrics
        self._next_export = 0.0
        self._bars_exported = 0
        self._link_seen = LinkStats()
        self._positions: dict[str, Any] = {}  # instrument -> its position gauge (None until first set)

    def instrument(self, symbol: str) -> None:
        """Export ``symbol``'s position from the first :meth:`positions` on, at 0 while flat."""
        self._positions.setdefault(symbol, None)

    def positions(self, held: dict[str, float]) -> None:
        """``position{instrument}`` and ``open_positions`` from ``held`` (symbol → base units,
        signed); an instrument exported before and now flat reads 0, not its last quantity."""
        self.metrics.open_positions.set(len(held))
        for symbol in self._positions.keys() - held.keys():
            self._position(symbol).set(0.0)
        for symbol, qty in held.items():
            self._position(symbol).set(qty)

    def _position(self, symbol: str) -> Any:
        gauge = self._positions.get(symbol)
        if gauge is None:
            gauge = self._positions[symbol] = self.metrics.position.labels(symbol)
        return gauge

    def bar_due(self, clock: Callable[[], float], close_ns: int, stats: ReplayStats, core: BrainCore) -> None:
        """:meth:`bar` if :data:`GAUGE_INTERVAL_S` of ``clock`` (seconds) passed since the last export."""
        if clock() >= self._next_export:
            self.bar(close_ns, stats, core)
            self._next_export = clock() + GAUGE_INTERVAL_S

    def bar(self, close_ns: int, stats: ReplayStats, core: BrainCore) -> None:
        """Bars replayed, market time (the bar closing at ``close_ns``, Unix ns), money and breaker state."""
        metrics = self.metrics
        metrics.bars.inc(stats.bars - self._bars_exported)
        self._bars_exported = stats.bars
        curve = stats.equity_curve
        metrics.market_time.set(close_ns / 1e9)
        metrics.equity.set(curve.equity[-1] if len(curve) else core.tracker.equity())
        metrics.cash.set(core.tracker.cash)
        metrics.peak_equity.set(stats.peak_equity)
        metrics.drawdown.set(curve.drawdown_pct[-1] / 100 if len(curve) else 0.0)
        for kind in BreakerKind:
            metrics.tripped.labels(kind.value).set(1 if core.breakers.active(kind, close_ns) else 0)

    def link(self, stats: LinkStats) -> None:
        """Add what the link's counters moved since the last call."""
        seen, m = self._link_seen, self.metrics
        if stats != seen:  # export the link's counters as they move
            m.retransmits.inc(stats.retransmits - seen.retransmits)
            m.replay_requests.inc(stats.replay_requests - seen.replay_requests)
            m.duplicates.inc(stats.duplicates - seen.duplicates)
            self._link_seen = dataclasses.replace(stats)
