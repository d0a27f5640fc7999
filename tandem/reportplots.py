"""The run report's pictures (:mod:`tandem.runreport`): panels on one time axis, drawn with
matplotlib's object API (no pyplot state) and returned as PNG bytes.

- **price**: the close with every trade's entry (green up-triangle at the entry price) and exit
  (down-triangle at the exit price, coloured by exit reason) joined by a line that is green for a
  winner and red for a loser, with the time a position was held shaded;
- **equity**: the equity curve against the starting cash, the executor's belief modes shaded;
- **drawdown**: the drawdown from the peak, deeper lower.

:func:`draw` stacks the panels asked for. Rendering is deterministic: the same inputs give the
same bytes (no timestamp in the PNG's metadata).
"""

from __future__ import annotations

import io
from collections import Counter
from datetime import datetime
from typing import Any

import matplotlib
import matplotlib.dates as mdates
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import Formatter

from .runinputs import Curve, Trade

__all__ = ["INSTRUMENT_PNG_SIZE_PX", "PNG_SIZE_PX", "draw"]

_FIG_INCHES, _DPI = (16.0, 10.0), 100
PNG_SIZE_PX = (int(_FIG_INCHES[0] * _DPI), int(_FIG_INCHES[1] * _DPI))
"""Width and height of ``report.png`` in pixels."""

# Colours (matplotlib's tab10, which stays readable for the common colour-vision deficiencies).
_PRICE, _EQUITY, _GAIN, _LOSS, _HELD = "#1f3b57", "#1f77b4", "#2ca02c", "#d62728", "#2ca02c"
_EXIT_COLOURS = {
    "SIGNAL": "#d62728", "STOP_LOSS": "#111111", "TRAILING_TAKE_PROFIT": "#ff7f0e", "TIME_STOP": "#9467bd",
    "BREAKER": "#8c564b", "MANUAL": "#e377c2",
}  # fmt: skip
_OTHER_EXIT = "#7f7f7f"
_RC = {
    "font.size": 12, "axes.titlesize": 12, "axes.labelsize": 12, "xtick.labelsize": 11, "ytick.labelsize": 11,
    "legend.fontsize": 10.5, "axes.grid": True, "grid.alpha": 0.25, "axes.spines.top": False,
    "axes.spines.right": False, "figure.facecolor": "white", "savefig.facecolor": "white",
}  # fmt: skip


# -- the picture ----------------------------------------------------------------------------


class _Thousands(Formatter):
    """Tick labels with thousands separators and just enough decimals for the tick step."""

    decimals = 0

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix

    def set_locs(self, locs: Any) -> None:
        super().set_locs(locs)
        steps = np.diff(np.asarray(locs, dtype=float))
        step = float(np.min(np.abs(steps[steps != 0]))) if np.any(steps != 0) else 1.0
        self.decimals = next((d for d in range(7) if abs(round(step, d) - step) <= step * 1e-6), 6)

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:,.{self.decimals}f}{self.suffix}"


def _headroom(ax: Any, values: np.ndarray, top: float = 0.22) -> None:
    """Y limits around ``values`` with ``top`` of the height free above them for the legend."""
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))  # a portfolio instrument: NaN before its first bar
    span = (hi - lo) or max(abs(hi) * 0.01, 1.0)
    ax.set_ylim(lo - span * 0.05, hi + span * top / (1 - top))


def plot_price(ax: Any, curve: Curve, trades: list[Trade]) -> None:
    ax.plot(curve.ts, curve.close, color=_PRICE, lw=0.8, label="close", zorder=2)
    handles = [ax.lines[-1]]
    if np.any(curve.position != 0):
        ax.fill_between(curve.ts, 0, 1, where=curve.position != 0, step="post", transform=ax.get_xaxis_transform(),
                        color=_HELD, alpha=0.08, lw=0, zorder=1)  # fmt: skip
        handles.append(Patch(color=_HELD, alpha=0.2, label="position held"))
    if trades:
        segments = [
            ((mdates.date2num(t.opened_at), t.entry_price), (mdates.date2num(t.closed_at), t.exit_price)) for t in trades
        ]
        colours = [_GAIN if t.net_pnl > 0 else _LOSS for t in trades]
        ax.add_collection(LineCollection(segments, colors=colours, linewidths=1.6, alpha=0.8, zorder=3))
        handles.append(ax.scatter([t.opened_at for t in trades], [t.entry_price for t in trades], marker="^", s=48,
                                  color=_GAIN, edgecolors="#145214", linewidths=0.6, zorder=4,
                                  label=f"entry ({len(trades)})"))  # fmt: skip
        by_reason = Counter(t.exit_reason for t in trades)
        for reason in sorted(by_reason, key=lambda r: (-by_reason[r], r)):
            group = [t for t in trades if t.exit_reason == reason]
            handles.append(ax.scatter([t.closed_at for t in group], [t.exit_price for t in group], marker="v", s=48,
                                      color=_EXIT_COLOURS.get(reason, _OTHER_EXIT), edgecolors="#333333",
                                      linewidths=0.6, zorder=4,
                                      label=f"exit: {reason.lower().replace('_', ' ')} ({len(group)})"))  # fmt: skip
    prices = np.concatenate([curve.close, [t.entry_price for t in trades], [t.exit_price for t in trades]])
    _headroom(ax, prices)
    ax.set_ylabel("price")
    ax.yaxis.set_major_formatter(_Thousands())
    ax.legend(handles=handles, loc="upper left", ncols=len(handles) if len(handles) <= 6 else (len(handles) + 1) // 2,
              framealpha=0.9, columnspacing=1.4)  # fmt: skip


_MODE_COLOURS = {"YELLOW": "#f2c94c", "ORANGE": "#f2994a", "RED": "#eb5757"}
"""Background of the equity panel while the executor's belief mode was not GREEN."""


def plot_modes(ax: Any, curve: Curve, modes: list[tuple[str, str]]) -> None:
    """Shade the stretches the executor's belief mode was YELLOW, ORANGE or RED (issue #14)."""
    if not modes or len(curve.ts) == 0:
        return
    starts = [np.datetime64(t.rstrip("Z"), "s") for t, _ in modes]
    ends = [*starts[1:], curve.ts[-1]]
    shown: set[str] = set()
    for (_, mode), start, end in zip(modes, starts, ends, strict=True):
        colour = _MODE_COLOURS.get(mode)
        if colour is None:
            continue
        ax.axvspan(start, end, color=colour, alpha=0.18, lw=0, zorder=0,
                   label=None if mode in shown else f"belief {mode}")  # fmt: skip
        shown.add(mode)


def plot_equity(ax: Any, curve: Curve, starting_cash: float) -> None:
    ax.plot(curve.ts, curve.equity, color=_EQUITY, lw=1.3, label="equity", zorder=3)
    ax.axhline(starting_cash, color="#555555", ls="--", lw=1.0, label=f"starting cash {starting_cash:,.2f}", zorder=2)
    ax.fill_between(curve.ts, curve.equity, starting_cash, where=curve.equity >= starting_cash, interpolate=True,
                    color=_GAIN, alpha=0.15, lw=0)  # fmt: skip
    ax.fill_between(curve.ts, curve.equity, starting_cash, where=curve.equity < starting_cash, interpolate=True,
                    color=_LOSS, alpha=0.15, lw=0)  # fmt: skip
    final = float(curve.equity[-1])
    change = (final / starting_cash - 1) * 100 if starting_cash else 0.0
    ax.annotate(f"{final:,.2f} ({change:+.2f}%)", xy=(curve.ts[-1], final), xytext=(-4, 8), textcoords="offset points",
                ha="right", va="bottom", fontsize=11, color=_EQUITY, weight="bold",
                bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": _EQUITY, "alpha": 0.9})  # fmt: skip
    values = np.append(curve.equity, starting_cash)
    _headroom(ax, values, top=0.18)
    ax.set_ylabel("equity")
    ax.yaxis.set_major_formatter(_Thousands())
    ax.legend(loc="upper left", ncols=2, framealpha=0.9)


def plot_drawdown(ax: Any, curve: Curve) -> None:
    dd = curve.drawdown_pct
    ax.fill_between(curve.ts, dd, 0, color=_LOSS, alpha=0.35, lw=0)
    ax.plot(curve.ts, dd, color=_LOSS, lw=0.7)
    deepest = int(np.argmax(dd))
    top = float(dd[deepest])
    ax.set_ylim(max(top * 1.25, 0.1), 0)  # inverted: 0 at the top, deeper is lower
    ax.yaxis.set_major_formatter(_Thousands("%"))
    ax.set_ylabel("drawdown")
    if top > 0:
        when = curve.ts[deepest].astype(datetime).strftime("%Y-%m-%d %H:%M")
        ax.plot(curve.ts[deepest], top, "o", color="#7f0000", ms=5)
        right = deepest > len(dd) * 0.7
        ax.annotate(f"max {top:.2f}%  ({when} UTC)", xy=(curve.ts[deepest], top), xytext=(-10 if right else 10, 0),
                    textcoords="offset points", ha="right" if right else "left", va="center", fontsize=11,
                    color="#7f0000", bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "#7f0000", "alpha": 0.9})


_INSTRUMENT_INCHES = (16.0, 6.0)
INSTRUMENT_PNG_SIZE_PX = (int(_INSTRUMENT_INCHES[0] * _DPI), int(_INSTRUMENT_INCHES[1] * _DPI))
"""Width and height of a portfolio's per-instrument picture (the price panel alone), pixels."""


def draw(curve: Curve, title: str, subtitle: str, *, trades: list[Trade] | None = None,
         starting_cash: float | None = None, modes: list[tuple[str, str]] | None = None) -> bytes:  # fmt: skip
    """Panels on one time axis as PNG bytes: price with ``trades`` (unless ``trades`` is None),
    then equity against ``starting_cash`` and drawdown (unless ``starting_cash`` is None), with
    ``modes`` (the executor's belief modes) shaded on the equity. Three panels are
    :data:`PNG_SIZE_PX`; the price panel alone is :data:`INSTRUMENT_PNG_SIZE_PX`.

    Raises:
        ValueError: no panel asked for.
    """
    kinds = (["price"] if trades is not None else []) + (["equity", "drawdown"] if starting_cash is not None else [])
    if not kinds:
        raise ValueError("draw: no panel asked for (give trades, starting_cash or both)")
    ratios = {"price": 3.0, "equity": 2.0, "drawdown": 1.3}
    inches = _FIG_INCHES if len(kinds) > 1 else _INSTRUMENT_INCHES
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=inches, dpi=_DPI, layout="constrained")
        grid = fig.add_gridspec(len(kinds), 1, height_ratios=[ratios[k] for k in kinds])
        axes: list[Any] = []
        for i, kind in enumerate(kinds):
            ax = fig.add_subplot(grid[i], sharex=axes[0] if axes else None)
            axes.append(ax)
            if kind == "price":
                assert trades is not None
                plot_price(ax, curve, trades)
            elif kind == "equity":
                assert starting_cash is not None
                plot_modes(ax, curve, modes or [])
                plot_equity(ax, curve, starting_cash)
            else:
                plot_drawdown(ax, curve)
        for ax in axes[:-1]:
            ax.tick_params(labelbottom=False)
        bottom = axes[-1]
        locator = mdates.AutoDateLocator(minticks=6, maxticks=14)
        bottom.xaxis.set_major_locator(locator)
        bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
            locator, formats=["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%S.%f"],
            zero_formats=["", "%Y", "%b %d", "%b %d", "%H:%M", "%H:%M"], show_offset=False))  # fmt: skip
        if len(curve.ts) > 1:
            bottom.set_xlim(curve.ts[0], curve.ts[-1])
        bottom.set_xlabel("time (UTC)")
        fig.suptitle(title, fontsize=16, weight="bold")
        axes[0].set_title(subtitle, loc="left", fontsize=12, color="#444444")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()
