"""The one drawdown rule: how far equity stands below its running peak, in percent.

Both users compute it here, so the figure the report and the equity curve show is the figure the
breaker acts on:

* the drawdown breaker (:meth:`brain.risk.CircuitBreakers.on_equity`, peak from the first equity
  it is fed), and
* the equity curve's ``drawdown_pct`` column and the report's ``max_drawdown_pct``
  (:meth:`brain.equity.EquityCurve.record`, peak from the account's equity at the replay's start).

Rule: a new high (or the first equity seen) becomes the peak and the drawdown is 0; otherwise the
drawdown is ``(peak - equity) / peak * 100`` while the peak is positive, and 0 when it is not (an
account that never held positive equity has no drawdown to speak of). Equity and peak are in quote
currency; the result is a percentage, >= 0 for finite inputs.
"""

from __future__ import annotations

__all__ = ["drawdown"]


def drawdown(peak: float | None, equity: float) -> tuple[float, float]:
    """The running peak after ``equity`` and the drawdown below it.

    Args:
        peak: the peak so far (quote currency), or None before any equity was seen.
        equity: the current equity (quote currency).

    Returns:
        ``(peak, drawdown_pct)``: the updated peak and the drawdown from it, percent.
    """
    if peak is None or equity > peak:
        return equity, 0.0
    return peak, (peak - equity) / peak * 100 if peak > 0 else 0.0
