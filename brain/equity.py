"""The replay's equity curve: one row per replayed bar, with its drawdown, peak and worst drawdown.

Each row is the account after one bar: its close time (Unix ns), close price, equity (quote
currency), drawdown from the peak so far (percent, >= 0) and the position held (base units). The
drawdown is :func:`brain.drawdown.drawdown` — the rule the drawdown breaker uses — with the peak
starting at the account's equity when the replay starts (:meth:`EquityCurve.start`).

Which equity a row holds is the replay's business (:meth:`brain.app.BrainApp.replay`): rows are
honest in time — the row of bar *i* is stamped at its close and reflects exactly the fills at or
before that time, so a fill after a gap first shows in the next bar's row.

A portfolio's rows (issue #16) are one per close time, with the portfolio's equity; ``close`` and
``position`` are the first instrument's, and :attr:`EquityCurve.others` holds the same two columns
for each other instrument (its last close so far, NaN before its first bar).

Storage: five parallel ``array`` columns, plus two per other instrument (:class:`EquityCurve`);
``equity.csv`` is written from them by :func:`brain.report.write_equity_curve`.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass

from .drawdown import drawdown

__all__ = ["EquityCurve", "EquityPoint"]


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """The account after one bar: its close time (Unix ns), close price, equity (quote currency),
    drawdown from the peak so far (percent, >= 0) and the position held (base units)."""

    close_ns: int
    close: float
    equity: float
    drawdown_pct: float
    position: float


class EquityCurve:
    """One :class:`EquityPoint` per replayed bar, kept as five parallel ``array`` columns (a month
    of 1-minute bars is 45,000 points: ~1.8 MB, and an append costs well under a microsecond).

    Attributes:
        peak_equity: the highest equity so far (quote currency; 0.0 until :meth:`start`).
        max_drawdown_pct: the deepest drawdown of any row so far (percent, >= 0).
    """

    __slots__ = ("close", "close_ns", "drawdown_pct", "equity", "max_drawdown_pct", "others", "peak_equity",
                 "position")

    def __init__(self) -> None:
        self.close_ns = array("q")
        self.close, self.equity, self.drawdown_pct, self.position = array("d"), array("d"), array("d"), array("d")
        self.others: list[tuple[array, array]] = []
        """A portfolio's other instruments, in order: each one's (close, position) columns."""
        self.peak_equity = 0.0
        self.max_drawdown_pct = 0.0

    def start(self, equity: float) -> None:
        """The account's equity before the first bar (quote currency): the peak to start from."""
        self.peak_equity = equity

    def record(self, close_ns: int, close: float, equity: float, position: float,
               others: tuple[tuple[float, float], ...] = ()) -> None:  # fmt: skip
        """The row of the bar closing at ``close_ns``, its drawdown from the running peak; ``others``:
        each other instrument's (close, position) for a portfolio (the same number on every row)."""
        self.peak_equity, dd = drawdown(self.peak_equity, equity)
        self.max_drawdown_pct = max(self.max_drawdown_pct, dd)
        self.close_ns.append(close_ns)
        self.close.append(close)
        self.equity.append(equity)
        self.drawdown_pct.append(dd)
        self.position.append(position)
        if not others and not self.others:
            return
        if not self.others:
            self.others = [(array("d"), array("d")) for _ in others]
        for (closes, positions), (c, p) in zip(self.others, others, strict=True):
            closes.append(c)
            positions.append(p)

    def __len__(self) -> int:
        return len(self.close_ns)

    def __getitem__(self, i: int) -> EquityPoint:
        return EquityPoint(self.close_ns[i], self.close[i], self.equity[i], self.drawdown_pct[i], self.position[i])

    def __iter__(self) -> Iterator[EquityPoint]:
        return map(EquityPoint, self.close_ns, self.close, self.equity, self.drawdown_pct, self.position)
