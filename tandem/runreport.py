"""``tandem report RUN_DIR``: a run directory as a picture (``report.png``) and a page (``report.html``).

Inputs, all written by ``tandem paper`` (the brain writes the first three, paper adds its checks to
``report.json``):

- ``report.json``: the report's figures (:func:`brain.report.build_report`, plus ``ledger_agrees``,
  ``venue``, ``wall_time_s`` ... from :func:`tandem.paper.run_paper`);
- ``trades.csv``: one row per closed trade (:data:`brain.report.TRADE_LOG_COLUMNS`);
- ``equity.csv``: one row per replayed bar, columns :data:`EQUITY_COLUMNS` — the bar's close time
  (ISO 8601 UTC, ``2022-01-01T00:00:00Z``), its close price and the equity (quote currency), the
  drawdown from the peak so far (percent, >= 0) and the position held (base units).

``report.png`` (1600 x 1000 px) stacks three panels on one time axis: the close price with every
trade's entry (green up-triangle at the entry price) and exit (down-triangle at the exit price,
coloured by exit reason) joined by a line that is green for a winner and red for a loser, with
the time a position was held shaded; the equity curve against the starting cash; and the
drawdown, deeper lower. ``report.html`` is one self-contained file: the picture as a ``data:``
URI, a table of the key figures and the trade list.

Errors: one, :class:`RunReportError` (a ``ValueError``), whose message names the file and, for a
CSV, the line. Every input is read and checked before anything is written, and each output is
written to a temporary file in the run directory and renamed over the old one, so a failure
leaves no partial file: an input error or a failed write leaves the previous outputs as they
were (only a failure between the two renames could pair a new picture with an old page). Rendering is deterministic: the
same inputs give the same bytes.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.dates as mdates
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import Formatter

from foundation.atomicfile import write_atomic_many

from .runinputs import (
    EQUITY_COLUMNS,
    Curve,
    Figures,
    RunReportError,
    Trade,
    load_curve,
    load_figures,
    load_trades,
)

__all__ = ["EQUITY_COLUMNS", "PNG_SIZE_PX", "RunReportError", "main", "render_report"]

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
    lo, hi = float(np.min(values)), float(np.max(values))
    span = (hi - lo) or max(abs(hi) * 0.01, 1.0)
    ax.set_ylim(lo - span * 0.05, hi + span * top / (1 - top))


def _plot_price(ax: Any, curve: Curve, trades: list[Trade]) -> None:
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


def _plot_modes(ax: Any, curve: Curve, modes: list[tuple[str, str]]) -> None:
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


def _plot_equity(ax: Any, curve: Curve, starting_cash: float) -> None:
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


def _plot_drawdown(ax: Any, curve: Curve) -> None:
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


def _title(figures: Figures, curve: Curve, instrument: str) -> tuple[str, str]:
    start, end = (curve.ts[i].astype(datetime).strftime("%Y-%m-%d %H:%M") for i in (0, -1))
    title = (f"{instrument}   {start} → {end} UTC   ·   return {figures.total_return_pct:+.2f}%   ·   "
             f"max drawdown {figures.max_drawdown_pct:.2f}%   ·   {figures.trades:,} trades")  # fmt: skip
    subtitle = (f"{figures.bars_replayed:,} bars · win rate {figures.win_rate_pct:.1f}% "
                f"({figures.wins} won, {figures.losses} lost) · equity {figures.starting_cash:,.2f} → "
                f"{figures.final_equity:,.2f} · fees {figures.fees:,.2f}")  # fmt: skip
    return title, subtitle


def _draw(figures: Figures, curve: Curve, trades: list[Trade], instrument: str) -> bytes:
    """The three panels as PNG bytes, :data:`PNG_SIZE_PX`."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=_FIG_INCHES, dpi=_DPI, layout="constrained")
        grid = fig.add_gridspec(3, 1, height_ratios=(3.0, 2.0, 1.3))
        ax_price = fig.add_subplot(grid[0])
        ax_equity = fig.add_subplot(grid[1], sharex=ax_price)
        ax_dd = fig.add_subplot(grid[2], sharex=ax_price)
        _plot_price(ax_price, curve, trades)
        _plot_modes(ax_equity, curve, figures.belief_modes)
        _plot_equity(ax_equity, curve, figures.starting_cash)
        _plot_drawdown(ax_dd, curve)
        for ax in (ax_price, ax_equity):
            ax.tick_params(labelbottom=False)
        locator = mdates.AutoDateLocator(minticks=6, maxticks=14)
        ax_dd.xaxis.set_major_locator(locator)
        ax_dd.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
            locator, formats=["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%S.%f"],
            zero_formats=["", "%Y", "%b %d", "%b %d", "%H:%M", "%H:%M"], show_offset=False))  # fmt: skip
        if len(curve.ts) > 1:
            ax_dd.set_xlim(curve.ts[0], curve.ts[-1])
        ax_dd.set_xlabel("time (UTC)")
        title, subtitle = _title(figures, curve, instrument)
        fig.suptitle(title, fontsize=16, weight="bold")
        ax_price.set_title(subtitle, loc="left", fontsize=12, color="#444444")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


# -- the page -------------------------------------------------------------------------------

_CSS = """
body { font: 15px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1b1f24;
       margin: 24px auto; max-width: 1640px; padding: 0 20px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; }
.sub { color: #57606a; margin: 0 0 16px; }
img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eaeef2; text-align: left; white-space: nowrap; }
thead th { position: sticky; top: 0; background: #f6f8fa; border-bottom: 2px solid #d0d7de; }
table.summary th { font-weight: 600; color: #57606a; }
td.num, th.num { text-align: right; }
.pos { color: #1a7f37; } .neg { color: #cf222e; } .bad { color: #cf222e; font-weight: 600; }
tbody tr:hover { background: #f6f8fa; }
"""

def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M" if t.second == 0 else "%Y-%m-%d %H:%M:%S")


def _held(t: Trade) -> str:
    minutes = int((t.closed_at - t.opened_at).total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return f"{days}d {hours}h {mins:02d}m" if days else f"{hours}h {mins:02d}m" if hours else f"{mins}m"


def _price(value: float) -> str:
    """Thousands separators; more decimals for cheap instruments."""
    return f"{value:,.2f}" if value >= 100 else f"{value:,.4f}" if value >= 1 else f"{value:.8f}"


_TRADE_TABLE: tuple[tuple[str, str, Callable[[Trade], str]], ...] = (  # (heading, kind, cell text)
    ("#", "num", lambda t: t.raw["trade"]),
    ("opened (UTC)", "", lambda t: _when(t.opened_at)),
    ("closed (UTC)", "", lambda t: _when(t.closed_at)),
    ("held", "num", _held),
    ("quantity", "num", lambda t: t.raw["quantity"]),
    ("entry", "num", lambda t: _price(t.entry_price)),
    ("exit", "num", lambda t: _price(t.exit_price)),
    ("gross P&L", "num", lambda t: f"{float(t.raw['gross_pnl']):+,.2f}"),
    ("fees", "num", lambda t: f"{float(t.raw['fees']):,.2f}"),
    ("net P&L", "signed", lambda t: f"{t.net_pnl:+,.2f}"),
    ("return", "signed", lambda t: f"{float(t.raw['return_pct']):+.2f}%"),
    ("exit reason", "", lambda t: t.raw["exit_reason"]),
    ("entry id", "num", lambda t: t.raw["entry_decision_id"]),
    ("exit id", "num", lambda t: t.raw["exit_decision_id"]),
)
"""The trade list: money in quote currency (2 decimals; trades.csv keeps 4), quantity as written."""


def _class(names: str) -> str:
    """`` class="..."`` for a non-empty class list, else nothing."""
    names = names.strip()
    return f' class="{names}"' if names else ""


def _kv(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in d.items()) or "none"


def _summary_rows(f: Figures, curve: Curve, instrument: str, trades: list[Trade]) -> list[tuple[str, str, str]]:
    """(label, value, css class) for the key-figures table; values are plain text (escaped later)."""
    start, end = (curve.ts[i].astype(datetime).strftime("%Y-%m-%d %H:%M") for i in (0, -1))
    sign = "pos" if f.total_return_pct > 0 else "neg" if f.total_return_pct < 0 else ""
    net = sum(t.net_pnl for t in trades)
    rows = [
        ("instrument", instrument, ""),
        ("period", f"{start} → {end} UTC ({f.bars_replayed:,} bars)", ""),
        ("total return", f"{f.total_return_pct:+.2f}%  (equity {f.starting_cash:,.2f} → {f.final_equity:,.2f})", sign),
        ("max drawdown", f"{f.max_drawdown_pct:.2f}%", ""),
        ("trades", f"{f.trades:,}  (wins {f.wins}, losses {f.losses}, win rate {f.win_rate_pct:.1f}%)", ""),
        ("realized P&L", f"gross {f.realized_pnl:+,.2f}, net of fees {net:+,.2f}; unrealized {f.unrealized_pnl:+,.2f}",
         ""),
        ("fees", f"{f.fees:,.2f}", ""),
        ("exits by reason", _kv(f.exits_by_reason), ""),
        ("decisions by outcome", f"{f.decisions_sent:,} sent  ({_kv(f.decisions_by_outcome)})", ""),
        ("breaker trips", _kv(f.breaker_trips), ""),
        ("signals skipped", _kv(f.signals_skipped), ""),
        ("round trip latency", f"p50 {f.latency_us.p50:,.0f} µs, p99 {f.latency_us.p99:,.0f} µs  (n={f.latency_us.n})",
         ""),
    ]  # fmt: skip
    shorts = [t for t in trades if t.raw.get("side") == "SHORT"]
    if shorts:  # a run with shorts (issue #16): longs and shorts apart
        longs = [t for t in trades if t.raw.get("side") != "SHORT"]
        by_side = "; ".join(f"{name} {len(ts):,} (wins {sum(t.net_pnl > 0 for t in ts)}, net {sum(t.net_pnl for t in ts):+,.2f})"
                            for name, ts in (("long", longs), ("short", shorts)))  # fmt: skip
        rows.insert(rows.index(next(r for r in rows if r[0] == "trades")) + 1, ("trades by side", by_side, ""))
    if f.venue:
        rows.insert(1, ("venue", f.venue, ""))
    if f.ledger_agrees is None:
        rows.append(("ledger agreement", "not checked (no executor ledger in report.json)", ""))
    else:
        rows.append(("ledger agreement", "executor ledger agrees with the brain" if f.ledger_agrees
                     else "executor ledger DISAGREES with the brain", "" if f.ledger_agrees else "bad"))  # fmt: skip
    rec = f.exchange_reconciliation
    if rec is not None:
        ok = bool(rec.get("agrees"))
        rows.append(("exchange account", "agrees with the ledger" if ok else "DISAGREES with the ledger",
                     "" if ok else "bad"))  # fmt: skip
    if f.exchange_stops is not None:
        rows.append(("protective stops", "on the exchange (the brain moves them)" if f.exchange_stops
                     else "none on this venue: the brain's exit plan alone protects positions", ""))  # fmt: skip
    if f.belief_modes:
        changes = [f"{t} {m}" for t, m in f.belief_modes]
        text = f"{f.belief_modes[0][1]} throughout" if len(changes) == 1 else " → ".join(changes)
        bad = "" if all(m == "GREEN" for _, m in f.belief_modes) else "bad"
        rows.append(("executor belief mode", text, bad))
    if f.wall_time_s is not None:
        rows.append(("wall time", f"{f.wall_time_s:.2f} s", ""))
    return rows


def _page(f: Figures, curve: Curve, trades: list[Trade], instrument: str, png: bytes, run_dir: Path) -> str:
    e = html.escape
    title, subtitle = _title(f, curve, instrument)
    summary = "\n".join(
        f'<tr><th scope="row">{e(label)}</th><td{_class(cls)}>{e(value)}</td></tr>'
        for label, value, cls in _summary_rows(f, curve, instrument, trades)
    )
    head = "".join(f'<th scope="col"{_class("num" if kind else "")}>{e(h)}</th>' for h, kind, _cell in _TRADE_TABLE)
    body = []
    for t in trades:
        sign = "pos" if t.net_pnl > 0 else "neg"
        cells = "".join(f"<td{_class('num ' + sign if kind == 'signed' else kind)}>{e(cell(t))}</td>"
                        for _h, kind, cell in _TRADE_TABLE)  # fmt: skip
        body.append(f'<tr class="trade">{cells}</tr>')
    trade_rows = "\n".join(body) or f'<tr><td colspan="{len(_TRADE_TABLE)}">no closed trades</td></tr>'
    image = base64.b64encode(png).decode("ascii")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{e(title)}</h1>
<p class="sub">{e(subtitle)} · run directory {e(str(run_dir))}</p>
<img src="data:image/png;base64,{image}" width="{PNG_SIZE_PX[0]}" height="{PNG_SIZE_PX[1]}"
 alt="{e(f"{instrument}: close price with trade entries and exits, equity curve, drawdown")}">
<h2>Key figures</h2>
<table class="summary">
{summary}
</table>
<h2>Trades ({len(trades):,})</h2>
<table class="trades">
<thead><tr>{head}</tr></thead>
<tbody>
{trade_rows}
</tbody>
</table>
<p class="sub">Money in the instrument's quote currency, quantities in base units, times in UTC (market time).
Written by <code>tandem report</code> from report.json, trades.csv and equity.csv.</p>
</body>
</html>
"""


# -- output ---------------------------------------------------------------------------------


def _write_atomically(outputs: dict[Path, bytes]) -> None:
    """Write each file to a temporary sibling, sync it, then rename them all over the targets
    (:func:`foundation.atomicfile.write_atomic_many`).

    Raises:
        RunReportError: a file cannot be written; the previous ones stay in place.
    """
    try:
        write_atomic_many(outputs)
    except OSError as exc:
        raise RunReportError(f"{exc.filename or 'output'}: cannot be written ({exc.strerror or exc})") from None


def render_report(run_dir: Path) -> dict[str, Path]:
    """Render ``run_dir/report.png`` and ``run_dir/report.html`` from the run's outputs.

    Args:
        run_dir: a run directory holding ``report.json``, ``trades.csv`` and ``equity.csv`` (see
            the module docstring for their shapes and units).

    Returns:
        ``{"png": run_dir/report.png, "html": run_dir/report.html}``. The PNG is
        :data:`PNG_SIZE_PX` (1600 x 1000) pixels; the HTML embeds it as a ``data:`` URI.

    Raises:
        RunReportError: ``run_dir`` is not a directory; an input is missing, unreadable or
            malformed (the message names the file, and the line for a CSV); ``trades.csv`` and
            ``report.json`` disagree on the number of trades; or an output cannot be written.
            Nothing is written unless every input is valid.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunReportError(f"{run_dir}: not a directory")
    report_path, trades_path, equity_path = run_dir / "report.json", run_dir / "trades.csv", run_dir / "equity.csv"
    figures = load_figures(report_path)
    trades = load_trades(trades_path)
    if len(trades) != figures.trades:
        raise RunReportError(f"{trades_path}: {len(trades)} trades, but {report_path} says {figures.trades}")
    curve = load_curve(equity_path)
    instrument = figures.instrument or (trades[0].raw["instrument"] if trades else "") or "instrument"
    png = _draw(figures, curve, trades, instrument)
    page = _page(figures, curve, trades, instrument, png, run_dir)
    paths = {"png": run_dir / "report.png", "html": run_dir / "report.html"}
    _write_atomically({paths["png"]: png, paths["html"]: page.encode("utf-8")})
    return paths


def main(argv: list[str] | None = None) -> int:
    """``tandem report RUN_DIR``: exit 0 and print the written paths, or exit 2 and print
    ``tandem report: <message>`` on stderr when an input is missing or malformed."""
    parser = argparse.ArgumentParser(
        prog="tandem report",
        description="Render a run directory's report.png (price with trades, equity, drawdown) and report.html "
        "(the picture, the key figures and the trade list) from its report.json, trades.csv and equity.csv.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a run directory written by tandem paper")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        paths = render_report(args.run_dir)
    except RunReportError as exc:
        print(f"tandem report: {exc}", file=sys.stderr)
        return 2
    for path in paths.values():
        print(path)
    return 0
