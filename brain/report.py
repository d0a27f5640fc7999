"""Run outputs: the trade log CSV and the report's figures.

The trade log holds only values that follow from the data and settings (market times, prices,
quantities, P&L), never wall-clock times, so two runs with the same inputs write identical bytes.

Numbers are written with Python's ``repr`` of the IEEE-754 double: the shortest decimal that reads
back to the same value (https://docs.python.org/3/tutorial/floatingpoint.html), so no digit is
lost whatever the price scale — a 5-decimal FX rate, a token at 1e-6 — and ``float(text)`` gives
back exactly the value the brain held.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from foundation.atomicfile import write_atomic
from protocol import Instrument, LinkStats, Side

from .equity import EquityCurve
from .stats import ReplayStats
from .tracker import ClosedTrade, PositionTracker

__all__ = ["EQUITY_CURVE_COLUMNS", "TRADE_LOG_COLUMNS", "build_report", "write_equity_curve", "write_report",
           "write_trade_log"]

TRADE_LOG_COLUMNS = (
    "trade", "instrument", "side", "entry_decision_id", "exit_decision_id", "opened_at", "closed_at", "quantity",
    "entry_price", "exit_price", "gross_pnl", "fees", "net_pnl", "return_pct", "exit_reason",
    "exit_reference_price", "exit_slippage_bps",
)  # fmt: skip
"""``side``: ``LONG`` or ``SHORT`` (issue #16). ``exit_reference_price``: the price the exit decision referred to (the mark it saw; for a stop
that filled on the venue, its stop level); ``exit_slippage_bps``: how much worse the exit filled,
bps (negative: better). Exits execute whatever the slippage (DESIGN.md invariant 3); this is where
it shows. Both empty when the exit decision is not known."""


_EPOCH = datetime.date(1970, 1, 1)


def _date(day: int) -> str:
    """Days since 1970-01-01 → ``2022-01-01T``."""
    return f"{_EPOCH + datetime.timedelta(days=day)}T"


def _clock(second: int) -> str:
    """Seconds into a day (0..86399) → ``00:00:00Z``."""
    hour, rest = divmod(second, 3600)
    return f"{hour:02d}:{rest // 60:02d}:{rest % 60:02d}Z"


def _iso(ns: int) -> str:
    """Unix ns (>= 0) → ``2022-01-01T00:00:00Z``: whole seconds of POSIX time (every day 86,400 s,
    as the data's ``timestamp_ms`` counts), by arithmetic — not ``gmtime``, which a ``right/`` time
    zone makes count leap seconds."""
    return _iso_column((ns,))[0]


def _iso_column(column: Iterable[int]) -> list[str]:
    """:func:`_iso` of every time in ``column``, the same strings about four times faster: each
    date and each time of day is formatted once and then looked up — an equity curve's rows share a
    few dozen dates and, on 1-minute bars, 1,440 times of day."""
    dates: dict[int, str] = {}
    clocks: dict[int, str] = {}
    out = []
    for ns in column:
        day, second = divmod(ns // 1_000_000_000, 86_400)
        date = dates.get(day)
        if date is None:
            date = dates[day] = _date(day)
        clock = clocks.get(second)
        if clock is None:
            clock = clocks[second] = _clock(second)
        out.append(date + clock)
    return out


def write_trade_log(path: Path, trades: list[ClosedTrade]) -> None:
    """One CSV row per closed trade; money in quote currency, quantity in base units, every number
    exact (module docstring). Written atomically (:mod:`foundation.atomicfile`).

    Raises:
        OSError: it cannot be written; the previous file stays as it was.
    """
    fh = io.StringIO(newline="")
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(TRADE_LOG_COLUMNS)
    for n, t in enumerate(trades, start=1):
        slip = t.exit_slippage_bps
        w.writerow((
            n, str(t.instrument), "SHORT" if t.side is Side.SELL else "LONG", t.entry_decision_id,
            t.exit_decision_id, _iso(t.opened_at_ns),
            _iso(t.closed_at_ns), repr(t.quantity), repr(t.entry_price), repr(t.exit_price),
            repr(t.gross_pnl), repr(t.fees), repr(t.net_pnl), repr(t.return_pct),
            t.exit_reason.name if t.exit_reason else "UNKNOWN",
            repr(t.exit_reference_price) if slip is not None else "", repr(slip) if slip is not None else "",
        ))  # fmt: skip
    write_atomic(path, fh.getvalue())


EQUITY_CURVE_COLUMNS = ("ts", "close", "equity", "drawdown_pct", "position")


def write_equity_curve(path: Path, curve: EquityCurve, others: tuple[str, ...] = ()) -> None:
    """One CSV row per replayed bar: its close time (ISO UTC), close price and equity (quote
    currency), drawdown from the peak so far (percent) and the position held (base units).

    A portfolio (``others``: the symbols of the instruments after the first, one per
    :attr:`~brain.equity.EquityCurve.others` column pair) has a row per close time; ``close`` and
    ``position`` are the first instrument's and two columns follow per other instrument,
    ``close:<symbol>`` and ``position:<symbol>`` (a close is empty before the instrument's first
    bar). One instrument writes exactly the five columns.

    Like the trade log it holds no wall-clock values: the same inputs write the same bytes. Written
    atomically (:mod:`foundation.atomicfile`).

    Raises:
        OSError: it cannot be written; the previous file stays as it was.
    """
    fh = io.StringIO(newline="")
    w = csv.writer(fh, lineterminator="\n")
    if len(others) != len(curve.others) and len(curve):
        raise ValueError(f"{len(others)} symbols for the {len(curve.others)} other instruments of the equity curve")
    w.writerow((*EQUITY_CURVE_COLUMNS, *(f"{k}:{sym}" for sym in others for k in ("close", "position"))))
    if not curve.others:  # ISO times and float reprs need no CSV quoting: one f-string a row (~30 % faster)
        fh.write("".join([
            f"{iso},{close!r},{equity!r},{dd!r},{position!r}\n"
            for iso, close, equity, dd, position in zip(
                _iso_column(curve.close_ns), curve.close, curve.equity, curve.drawdown_pct, curve.position, strict=True
            )
        ]))  # fmt: skip
    else:
        columns = [c for pair in curve.others for c in pair]
        for i, iso in enumerate(_iso_column(curve.close_ns)):
            w.writerow((iso, _price(curve.close[i]), repr(curve.equity[i]), repr(curve.drawdown_pct[i]),
                        repr(curve.position[i]), *(_price(c[i]) for c in columns)))  # fmt: skip
    write_atomic(path, fh.getvalue())


def _price(value: float) -> str:
    """A close, or empty before the instrument's first bar (NaN)."""
    return "" if math.isnan(value) else repr(value)


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def build_report(tracker: PositionTracker, stats: ReplayStats, link: LinkStats, breaker_trips: Counter[str],
                 skips: Counter[str], rejected: dict[str, float],
                 instruments: tuple[Instrument, ...] = ()) -> dict[str, Any]:  # fmt: skip
    """The figures ``tandem paper`` prints (all money in quote currency, percentages in %);
    ``by_instrument`` lists ``instruments`` (the configured ones) first."""
    trades = tracker.closed_trades
    wins = sum(1 for t in trades if t.net_pnl > 0)
    equity = tracker.equity()
    lat = sorted(stats.latencies_s)
    return {
        "bars_replayed": stats.bars,
        "interrupted": stats.interrupted,
        "decisions_sent": stats.decisions_sent,
        "decisions_by_outcome": dict(sorted(stats.outcomes.items())),
        "resumed_decisions": stats.resumed_decisions,
        "retransmits": link.retransmits,
        "replay_requests": link.replay_requests,
        "duplicate_confirmations": link.duplicates,
        "executor_restarts_seen": link.peer_restarts,
        "silent_pauses": stats.silent_pauses,
        "decisions_restamped": stats.restamped,
        "trades": len(trades),
        "trades_by_side": _by_side(trades),
        "by_instrument": _by_instrument(tracker, instruments),
        "wins": wins,
        "losses": len(trades) - wins,
        "win_rate_pct": wins / len(trades) * 100 if trades else 0.0,
        "starting_cash": tracker.starting_cash,
        "cash": tracker.cash,
        "final_equity": equity,
        "total_return_pct": (equity / tracker.starting_cash - 1) * 100,
        "max_drawdown_pct": stats.max_drawdown_pct,
        "realized_pnl": tracker.realized_pnl,
        "unrealized_pnl": tracker.unrealized_pnl(),
        "fees": tracker.fees,
        "exits_by_reason": dict(sorted(Counter(t.exit_reason.name if t.exit_reason else "UNKNOWN" for t in trades).items())),
        "breaker_trips": dict(sorted(breaker_trips.items())),
        "signals_skipped": dict(sorted(skips.items())),
        "open_positions": {str(i): p.signed_quantity for i, p in tracker.positions.items()},
        "datagrams_rejected": rejected,
        "anomalies": tracker.anomalies,
        "warnings": list(stats.warnings),
        "executor_journal_fault": stats.executor_journal_fault,
        "feed": None if stats.feed is None else {**stats.feed, "stale_bars": stats.stale_bars},
        "belief_modes": [[_iso(ns), mode] for ns, mode in stats.belief_modes],
        "latency_us": {
            "n": len(lat),
            "p50": _percentile(lat, 0.50) * 1e6,
            "p99": _percentile(lat, 0.99) * 1e6,
            "max": (lat[-1] if lat else 0.0) * 1e6,
            "mean": (statistics.fmean(lat) if lat else 0.0) * 1e6,
        },
    }


def _by_side(trades: list[ClosedTrade]) -> dict[str, dict[str, float]]:
    """Trades, wins and net P&L (quote currency) of the longs and of the shorts."""
    out: dict[str, dict[str, float]] = {}
    for name, side in (("LONG", Side.BUY), ("SHORT", Side.SELL)):
        mine = [t for t in trades if t.side is side]
        out[name] = {"trades": len(mine), "wins": sum(1 for t in mine if t.net_pnl > 0),
                     "net_pnl": sum(t.net_pnl for t in mine)}  # fmt: skip
    return out


def _by_instrument(tracker: PositionTracker, configured: tuple[Instrument, ...]) -> dict[str, dict[str, Any]]:
    """Each instrument's trades, wins, net P&L and fees (quote currency), its position (signed base
    units) and its trades by side: a portfolio's breakdown (issue #16); the configured instruments
    first, then any other traded or held (a position adopted by reconciliation)."""
    out: dict[str, dict[str, Any]] = {}
    instruments = list(dict.fromkeys([*configured, *(t.instrument for t in tracker.closed_trades),
                                      *tracker.positions]))  # fmt: skip
    for inst in instruments:
        mine = [t for t in tracker.closed_trades if t.instrument == inst]
        position = tracker.position(inst)
        out[str(inst)] = {
            "trades": len(mine),
            "wins": sum(1 for t in mine if t.net_pnl > 0),
            "net_pnl": sum(t.net_pnl for t in mine),
            "fees": sum(t.fees for t in mine),
            "position": position.signed_quantity if position is not None else 0.0,
            "by_side": _by_side(mine),
        }
    return out


def write_report(path: Path, report: dict[str, Any]) -> None:
    """``report.json``, atomically.

    Raises:
        OSError: it cannot be written; the previous file stays as it was.
    """
    write_atomic(path, json.dumps(report, indent=2, sort_keys=False) + "\n")
