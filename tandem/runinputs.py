"""The run report's inputs, read and checked: ``report.json``, ``trades.csv`` and ``equity.csv``.

Every loader raises :class:`RunReportError` (a ``ValueError``) whose message names the file and,
for a CSV, the line; nothing here writes. :mod:`tandem.runreport` draws what these return.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from brain.report import EQUITY_CURVE_COLUMNS, TRADE_LOG_COLUMNS

__all__ = ["EQUITY_COLUMNS", "Curve", "Figures", "RunReportError", "Trade", "load_curve", "load_figures", "load_trades"]

EQUITY_COLUMNS = EQUITY_CURVE_COLUMNS
"""The exact header of ``equity.csv`` (the brain writes it: :func:`brain.report.write_equity_curve`)."""


class RunReportError(ValueError):
    """An input of the run report is missing or malformed; the message names the file (and line)."""


class Latency(BaseModel):
    """``report.json``'s ``latency_us``: decision→confirmation round trip, microseconds."""

    p50: float
    p99: float
    n: int = 0


class Figures(BaseModel):
    """The ``report.json`` keys the report shows; other keys are allowed and ignored."""

    model_config = ConfigDict(extra="allow")

    bars_replayed: int
    decisions_sent: int
    decisions_by_outcome: dict[str, int]
    trades: int
    wins: int
    losses: int
    win_rate_pct: float
    starting_cash: float
    final_equity: float
    total_return_pct: float
    max_drawdown_pct: float
    realized_pnl: float
    unrealized_pnl: float = 0.0
    fees: float
    exits_by_reason: dict[str, int]
    breaker_trips: dict[str, int] = {}
    signals_skipped: dict[str, int] = {}
    latency_us: Latency
    instrument: str | None = None
    venue: str | None = None
    ledger_agrees: bool | None = None
    exchange_reconciliation: dict[str, Any] | None = None
    exchange_stops: bool | None = None
    """Whether protective stops rested on the exchange (else the brain's exit plan alone protected positions)."""
    wall_time_s: float | None = None
    belief_modes: list[tuple[str, str]] = []
    """The executor's belief mode over time, as the brain heard it: (bar close ISO UTC, mode) at each change."""
    instruments: list[str] = []
    """Every instrument traded, the configured one first (several: a portfolio)."""
    by_instrument: dict[str, dict[str, Any]] = {}
    """Each instrument's trades, wins, net P&L, fees and position (:func:`brain.report.build_report`)."""


@dataclass(frozen=True, slots=True)
class Curve:
    """``equity.csv`` as columns: ``ts`` datetime64[s] (bar close, UTC), the rest float64.

    ``others``: a portfolio's other instruments, ``{symbol: (close, position)}`` in file order (a
    close is NaN before the instrument's first bar); empty for one instrument."""

    ts: np.ndarray
    close: np.ndarray
    equity: np.ndarray
    drawdown_pct: np.ndarray
    position: np.ndarray
    others: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def instrument(self, index: int) -> Curve:
        """The curve with instrument ``index``'s close and position (0: the first instrument)."""
        if index == 0:
            return Curve(self.ts, self.close, self.equity, self.drawdown_pct, self.position)
        close, position = list(self.others.values())[index - 1]
        return Curve(self.ts, close, self.equity, self.drawdown_pct, position)


@dataclass(frozen=True, slots=True)
class Trade:
    """One ``trades.csv`` row: ``raw`` as written (for the table), the rest parsed."""

    raw: dict[str, str]
    opened_at: datetime
    closed_at: datetime
    entry_price: float
    exit_price: float
    net_pnl: float
    exit_reason: str


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunReportError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunReportError(f"{path}: cannot be read ({exc})") from None


def _utc(text: str) -> datetime:
    """``2022-01-01T00:00:00Z`` → an aware datetime; ValueError for anything else."""
    if not text.endswith("Z"):
        raise ValueError(f"time {text!r} is not ISO 8601 UTC ending in Z")
    return datetime.fromisoformat(text)


def _number(text: str, column: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{column} {text!r} is not a finite number")
    return value


def load_figures(path: Path) -> Figures:
    """``report.json`` → its figures.

    Raises:
        RunReportError: missing, unreadable, not JSON, or a shown key missing or of the wrong type.
    """
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise RunReportError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RunReportError(f"{path}: expected a JSON object, got {type(data).__name__}")
    try:
        return Figures.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RunReportError(f"{path}: {where}: {first['msg']} ({exc.error_count()} problem(s))") from None


def load_trades(path: Path) -> list[Trade]:
    """``trades.csv`` (:data:`brain.report.TRADE_LOG_COLUMNS`) → one :class:`Trade` per row.

    Raises:
        RunReportError: missing, unreadable, wrong header, or a row with a bad field (line named).
    """
    lines = _read_text(path).splitlines()
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None or not set(TRADE_LOG_COLUMNS) <= set(header):
        raise RunReportError(f"{path}:1: header must hold the columns {','.join(TRADE_LOG_COLUMNS)}; got {header}")
    trades = []
    for line_no, row in enumerate(reader, start=2):
        if len(row) != len(header):
            raise RunReportError(f"{path}:{line_no}: {len(row)} fields, the header has {len(header)}")
        raw = dict(zip(header, row, strict=True))
        try:
            trade = Trade(
                raw=raw,
                opened_at=_utc(raw["opened_at"]),
                closed_at=_utc(raw["closed_at"]),
                entry_price=_number(raw["entry_price"], "entry_price"),
                exit_price=_number(raw["exit_price"], "exit_price"),
                net_pnl=_number(raw["net_pnl"], "net_pnl"),
                exit_reason=raw["exit_reason"] or "UNKNOWN",
            )
            for column in ("quantity", "gross_pnl", "fees", "return_pct"):
                _number(raw[column], column)
            if raw["side"] not in ("LONG", "SHORT"):
                raise ValueError(f"side {raw['side']!r} is not LONG or SHORT")
            for column in ("trade", "entry_decision_id", "exit_decision_id"):
                if not raw[column].isdigit():
                    raise ValueError(f"{column} {raw[column]!r} is not a whole number")
        except ValueError as exc:
            raise RunReportError(f"{path}:{line_no}: {exc}") from None
        trades.append(trade)
    return trades


def load_curve(path: Path) -> Curve:
    """Parse ``equity.csv``: vectorised for the common case (45,000 rows in ~0.1 s); when that
    finds a problem, :func:`_first_bad_row` walks the rows to name the first bad line. A portfolio's
    file has two more columns per other instrument, ``close:<symbol>`` and ``position:<symbol>``
    (:func:`brain.report.write_equity_curve`); their close may be empty before the instrument's
    first bar.

    Raises:
        RunReportError: missing, unreadable, wrong header, a bad row (line named), non-increasing
            times, a non-positive price or a negative drawdown.
    """
    lines = _read_text(path).splitlines()
    header = tuple(lines[0].split(",")) if lines else ()
    others = _other_instruments(header)
    if header[: len(EQUITY_COLUMNS)] != EQUITY_COLUMNS or others is None:
        got = lines[0] if lines else "an empty file"
        raise RunReportError(f"{path}:1: header must be {','.join(EQUITY_COLUMNS)}, then close:<symbol>,"
                             f"position:<symbol> per other instrument of a portfolio; got {got!r}")  # fmt: skip
    if len(lines) < 2:
        raise RunReportError(f"{path}: no rows (one per replayed bar expected)")
    rows = [line.split(",") for line in lines[1:]]
    width = len(header)
    try:
        if any(len(r) != width or not r[0].endswith("Z") for r in rows):
            raise ValueError
        ts = np.array([r[0][:-1] for r in rows], dtype="datetime64[s]")
        numbers = itertools.chain.from_iterable(r[1:] for r in rows)
        values = np.fromiter(map(_cell, numbers), dtype=float, count=(width - 1) * len(rows)).reshape(-1, width - 1).T
        closes = values[[0, *range(4, width - 1, 2)]]
        if not (np.isfinite(values[1:4]).all() and np.isfinite(values[5::2]).all()
                and (np.isnan(closes) | (closes > 0)).all() and (others or np.isfinite(values[0]).all())
                and (values[2] >= 0).all() and (np.diff(ts) > np.timedelta64(0, "s")).all()):  # fmt: skip
            raise ValueError
    except ValueError:
        line_no, problem = _first_bad_row(rows, header)
        raise RunReportError(f"{path}:{line_no}: {problem}") from None
    pairs = {sym: (values[4 + 2 * i], values[5 + 2 * i]) for i, sym in enumerate(others)}
    return Curve(ts, *values[:4], others=pairs)


def _other_instruments(header: tuple[str, ...]) -> list[str] | None:
    """The symbols of a portfolio's extra column pairs after the five columns; ``None`` if malformed."""
    extra = header[len(EQUITY_COLUMNS):]
    if len(extra) % 2:
        return None
    symbols = []
    for close, position in zip(extra[::2], extra[1::2], strict=True):
        kind, _, sym = close.partition(":")
        if kind != "close" or not sym or position != f"position:{sym}":
            return None
        symbols.append(sym)
    return symbols


def _cell(text: str) -> float:
    """A number, or NaN for an empty cell (an instrument's close before its first bar)."""
    return float(text) if text else math.nan


def _first_bad_row(rows: list[list[str]], header: tuple[str, ...]) -> tuple[int, str]:
    """(1-based line, what is wrong) of the first ``equity.csv`` row that breaks a rule."""
    previous = None
    for line_no, fields in enumerate(rows, start=2):
        try:
            if len(fields) != len(header):
                raise ValueError(f"{len(fields)} fields, expected {len(header)}")
            t = _utc(fields[0])
            if previous is not None and t <= previous:
                raise ValueError(f"ts {fields[0]} is not after the previous row's")
            previous = t
            portfolio_start = len(header) > len(EQUITY_COLUMNS) and fields[1] == ""  # before the first instrument's bar
            close, _equity, dd, _position = (math.nan if portfolio_start and c == "close" else _number(f, c)
                                             for f, c in zip(fields[1:5], EQUITY_COLUMNS[1:], strict=True))  # fmt: skip
            if close <= 0:
                raise ValueError(f"close {fields[1]} is not > 0")
            if dd < 0:
                raise ValueError(f"drawdown_pct {fields[3]} is negative")
            for column, text in zip(header[len(EQUITY_COLUMNS):], fields[len(EQUITY_COLUMNS):], strict=True):
                if column.startswith("close:") and text == "":
                    continue  # before the instrument's first bar
                value = _number(text, column)
                if column.startswith("close:") and value <= 0:
                    raise ValueError(f"{column} {text} is not > 0")
        except ValueError as exc:
            return line_no, str(exc)
    return 1, "unreadable rows"  # not reached: every row passed what the vectorised parse refused
