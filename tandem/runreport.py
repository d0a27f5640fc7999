"""``tandem report RUN_DIR``: a run directory as a picture (``report.png``) and a page (``report.html``).

Inputs, all written by ``tandem paper`` (the brain writes the first three, paper adds its checks to
``report.json``):

- ``report.json``: the report's figures (:func:`brain.report.build_report`, plus ``ledger_agrees``,
  ``venue``, ``wall_time_s`` ... from :func:`tandem.paper.run_paper`);
- ``trades.csv``: one row per closed trade (:data:`brain.report.TRADE_LOG_COLUMNS`);
- ``equity.csv``: one row per replayed bar, columns :data:`EQUITY_COLUMNS` — the bar's close time
  (ISO 8601 UTC, ``2022-01-01T00:00:00Z``), its close price and the equity (quote currency), the
  drawdown from the peak so far (percent, >= 0) and the position held (base units).

``report.png`` (1600 x 1000 px) stacks three panels on one time axis (:mod:`tandem.reportplots`):
the close price with every trade's entry and exit, the equity curve against the starting cash, and
the drawdown. ``report.html`` is one self-contained file: the picture as a ``data:`` URI, a table
of the key figures and the trade list.

A **portfolio** (issue #16: ``equity.csv`` with a ``close:<symbol>``/``position:<symbol>`` pair per
other instrument) gets the portfolio's equity and drawdown in ``report.png``, a picture per
instrument — its close with its own trades — in ``report-<symbol>.png`` (1600 x 600 px; the
symbol's ``/`` and ``:`` written ``-``), and a per-instrument table and the pictures in the page.

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
import re
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from foundation.atomicfile import write_atomic_many

from .reportplots import INSTRUMENT_PNG_SIZE_PX, PNG_SIZE_PX, draw
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


def _title(figures: Figures, curve: Curve, instrument: str) -> tuple[str, str]:
    start, end = (curve.ts[i].astype(datetime).strftime("%Y-%m-%d %H:%M") for i in (0, -1))
    title = (f"{instrument}   {start} → {end} UTC   ·   return {figures.total_return_pct:+.2f}%   ·   "
             f"max drawdown {figures.max_drawdown_pct:.2f}%   ·   {figures.trades:,} trades")  # fmt: skip
    subtitle = (f"{figures.bars_replayed:,} bars · win rate {figures.win_rate_pct:.1f}% "
                f"({figures.wins} won, {figures.losses} lost) · equity {figures.starting_cash:,.2f} → "
                f"{figures.final_equity:,.2f} · fees {figures.fees:,.2f}")  # fmt: skip
    return title, subtitle


def _instrument_pictures(figures: Figures, curve: Curve, trades: list[Trade]) -> list[tuple[str, bytes]]:
    """A portfolio's picture per instrument: (symbol, PNG) in the file's order; empty for one."""
    if not curve.others:
        return []
    out = []
    for i, sym in enumerate([figures.instrument or "instrument", *curve.others]):
        mine = [t for t in trades if t.raw["instrument"] == sym]
        stats = figures.by_instrument.get(sym, {})
        net = float(stats.get("net_pnl", sum(t.net_pnl for t in mine)))
        subtitle = (f"{len(mine):,} trades · wins {sum(t.net_pnl > 0 for t in mine)} · net P&L {net:+,.2f} · "
                    f"position at the end {float(stats.get('position', 0.0)):g}")  # fmt: skip
        out.append((sym, draw(curve.instrument(i), sym, subtitle, trades=mine)))
    return out


def _slug(symbol: str) -> str:
    """A symbol as a file-name part: ``BTC/USDT:USDT`` → ``BTC-USDT-USDT``."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", symbol)


def _instrument_table(f: Figures) -> str:
    """A portfolio's breakdown, one row per instrument (HTML)."""
    e = html.escape
    rows = []
    for sym, s in f.by_instrument.items():
        net = float(s.get("net_pnl", 0.0))
        sides = s.get("by_side", {})
        rows.append(
            f'<tr><td>{e(sym)}</td><td class="num">{int(s.get("trades", 0)):,}</td>'
            f'<td class="num">{int(s.get("wins", 0)):,}</td>'
            f'<td class="num">{int(sides.get("LONG", {}).get("trades", 0)):,}</td>'
            f'<td class="num">{int(sides.get("SHORT", {}).get("trades", 0)):,}</td>'
            f'<td class="num {"pos" if net > 0 else "neg" if net < 0 else ""}">{net:+,.2f}</td>'
            f'<td class="num">{float(s.get("fees", 0.0)):,.2f}</td>'
            f'<td class="num">{float(s.get("position", 0.0)):g}</td></tr>'
        )
    head = "".join(f'<th scope="col"{_class("num" if h != "instrument" else "")}>{h}</th>'
                   for h in ("instrument", "trades", "wins", "longs", "shorts", "net P&amp;L", "fees", "position"))  # fmt: skip
    return f'<table class="trades">\n<thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(rows) + "\n</tbody>\n</table>"


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


def _page(f: Figures, curve: Curve, trades: list[Trade], instrument: str, png: bytes, run_dir: Path,
          pictures: list[tuple[str, bytes]]) -> str:  # fmt: skip
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
    what = "portfolio equity, drawdown" if pictures else "close price with trade entries and exits, equity curve, drawdown"
    portfolio = ""
    if pictures:
        w, h = INSTRUMENT_PNG_SIZE_PX
        images = "\n".join(
            f'<h3>{e(sym)}</h3>\n<img src="data:image/png;base64,{base64.b64encode(pic).decode("ascii")}" width="{w}" '
            f'height="{h}" alt="{e(sym)}: close price with its trade entries and exits">' for sym, pic in pictures
        )
        portfolio = f"<h2>Instruments ({len(pictures)})</h2>\n{_instrument_table(f)}\n{images}\n"
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
 alt="{e(f"{instrument}: {what}")}">
<h2>Key figures</h2>
<table class="summary">
{summary}
</table>
{portfolio}<h2>Trades ({len(trades):,})</h2>
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
        ``{"png": run_dir/report.png, "html": run_dir/report.html}``, and for a portfolio each
        instrument's ``{symbol: run_dir/report-<symbol>.png}``. The PNG is :data:`PNG_SIZE_PX`
        (1600 x 1000) pixels; the HTML embeds every picture as a ``data:`` URI.

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
    pictures = _instrument_pictures(figures, curve, trades)
    if pictures:
        instrument = f"portfolio of {len(pictures)} instruments"
    title, subtitle = _title(figures, curve, instrument)
    png = draw(curve, title, subtitle, trades=None if pictures else trades, starting_cash=figures.starting_cash,
               modes=figures.belief_modes)  # fmt: skip
    page = _page(figures, curve, trades, instrument, png, run_dir, pictures)
    paths = {"png": run_dir / "report.png", "html": run_dir / "report.html"}
    outputs = {paths["png"]: png, paths["html"]: page.encode("utf-8")}
    for sym, pic in pictures:
        paths[sym] = run_dir / f"report-{_slug(sym)}.png"
        outputs[paths[sym]] = pic
    _write_atomically(outputs)
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
