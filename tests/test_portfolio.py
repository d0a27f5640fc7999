"""A portfolio of instruments (issue #16 §3), without processes: the core deciding several
instruments from one state, the exposure cap, portfolio breakers, the merged feed, the settings and
the equity file's extra columns."""

from __future__ import annotations

import asyncio
import itertools
import math
from pathlib import Path

import pytest
from factories import BTC, ETH, MIN, MS, T0, Scripted, bar, fill
from pydantic import ValidationError

from brain.core import BrainConfig, BrainCore, SkipReason, Step
from brain.equity import EquityCurve
from brain.exits import ExitRules
from brain.feeds import PortfolioFeed
from brain.pacing import Pacing
from brain.report import write_equity_curve
from brain.risk import BreakerKind, BreakerRules, CircuitBreakers, cap_exposure
from brain.settings import BrainSettings
from brain.tracker import PositionTracker
from executor.settings import ExecutorSettings
from foundation.barcsv import BUNDLED_PORTFOLIO, bundled_path, load_bars
from foundation.bars import Bar
from foundation.errors import ConfigError
from protocol import DecisionReason, Instrument, Intent, Side
from tandem.paper import PaperSettings
from tandem.runinputs import RunReportError, load_curve

CASH = 10_000.0
SOL = Instrument.symbol("SOL-PERP")


class Book:
    """A BrainCore over BTC, ETH and SOL with a scripted strategy each, real tracker and breakers."""

    def __init__(self, entry_fraction: float = 0.1, cap: float = 1.0, rules: BreakerRules | None = None) -> None:
        self.strategies = {BTC: Scripted(), ETH: Scripted(), SOL: Scripted()}
        config = BrainConfig(BTC, markets=(ETH, SOL), entry_fraction=entry_fraction, max_exposure_fraction=cap)
        self.tracker = PositionTracker(CASH, ExitRules())
        self.core = BrainCore(config, self.strategies, self.tracker, CircuitBreakers(rules or BreakerRules()),
                              itertools.count(1).__next__)  # fmt: skip
        self.now = T0

    def close(self, prices: dict[Instrument, float], signals: dict[Instrument, Side] | None = None) -> Step:
        """One close time: each instrument in ``prices`` gets a bar, with its programmed signal."""
        self.now += MIN
        for inst, side in (signals or {}).items():
            self.strategies[inst].next = side
        bars = tuple((inst, bar(p, self.now // MS - 60_000)) for inst, p in prices.items())
        return self.core.on_bars(bars, self.now, self.now + 1)


def test_one_close_decides_every_instrument_from_the_same_equity() -> None:
    """Three BUY signals on one close: three entries, in the order given, each 10 % of the same equity
    (no fill can land between them), each on its own instrument."""
    b = Book()
    step = b.close({BTC: 40_000.0, ETH: 2_000.0, SOL: 100.0}, {BTC: Side.BUY, ETH: Side.BUY, SOL: Side.BUY})
    assert [d.instrument for d in step.decisions] == [BTC, ETH, SOL]
    assert [d.quantity for d in step.decisions] == [1_000 / 40_000, 1_000 / 2_000, 1_000 / 100]
    assert all(d.intent is Intent.OPEN and d.market_ts_ns == b.now for d in step.decisions)
    assert len({d.decision_id for d in step.decisions}) == 3
    assert set(b.core.pending) == {d.decision_id for d in step.decisions}


def test_the_lockstep_is_per_instrument() -> None:
    """While BTC's entry awaits its confirmation, BTC's next signal is skipped but ETH still trades."""
    b = Book()
    [btc] = b.close({BTC: 40_000.0, ETH: 2_000.0}, {BTC: Side.BUY}).decisions
    step = b.close({BTC: 40_100.0, ETH: 2_010.0}, {BTC: Side.SELL, ETH: Side.BUY})
    assert [d.instrument for d in step.decisions] == [ETH]
    [skip] = step.skips
    assert (skip.reason, skip.instrument) == (SkipReason.AWAITING_CONFIRMATION, BTC)
    b.core.on_confirmation(fill(btc))
    assert b.tracker.position(BTC) is not None and b.tracker.position(ETH) is None


def test_equity_is_cash_plus_every_position_at_its_own_mark() -> None:
    b = Book()
    btc, eth = b.close({BTC: 40_000.0, ETH: 2_000.0}, {BTC: Side.BUY, ETH: Side.BUY}).decisions
    b.core.on_confirmation(fill(btc))
    b.core.on_confirmation(fill(eth))
    b.close({BTC: 44_000.0, ETH: 1_800.0})  # BTC +10 %, ETH -10 %
    assert b.tracker.equity() == pytest.approx(CASH + 100.0 - 100.0)
    b.close({BTC: 44_000.0})  # only BTC has a bar: ETH keeps its last mark
    assert b.tracker.equity() == pytest.approx(CASH)


def test_the_exposure_cap_cuts_an_entry_and_refuses_one_with_no_room() -> None:
    """A 3 % cap under a 10 % entry fraction: the entry is cut to 3 % of equity; an entry on top of a
    held remainder worth the whole cap is skipped ``exposure_cap``."""
    b = Book(entry_fraction=0.1, cap=0.03)
    [d] = b.close({BTC: 40_000.0}, {BTC: Side.BUY}).decisions
    assert d.quantity * 40_000.0 == pytest.approx(0.03 * CASH)
    assert cap_exposure(5.0, 100.0, 1_000.0, 0.0, 0.25) == 2.5
    assert cap_exposure(5.0, 100.0, 1_000.0, -2.5, 0.25) == 0.0  # a short counts by its size
    assert cap_exposure(5.0, 100.0, 1_000.0, 0.0, 0.25, lot_size=1.0) == 2.0
    assert cap_exposure(1.0, 100.0, 1_000.0, 0.0, 0.25) == 1.0  # under the cap: untouched
    b.core.on_confirmation(fill(d))
    b.core.dust.add(BTC)  # the held position is dust: entries on its side add to it
    step = b.close({BTC: 40_000.0}, {BTC: Side.BUY})
    assert step.decisions == ()
    [skip] = step.skips
    assert skip.reason is SkipReason.EXPOSURE_CAP and str(BTC) in skip.detail


def test_the_breakers_act_on_the_portfolio() -> None:
    """A loss on ETH trips the daily-loss breaker for the portfolio: BTC's entry is refused, and ETH's
    stop-loss still goes out on the same close."""
    b = Book(entry_fraction=0.5, rules=BreakerRules(daily_loss_pct=3.0))
    [eth] = b.close({BTC: 40_000.0, ETH: 2_000.0}, {ETH: Side.BUY}).decisions
    b.core.on_confirmation(fill(eth))
    step = b.close({BTC: 40_000.0, ETH: 1_800.0}, {BTC: Side.BUY})  # -10 % on half the account: -5 %
    assert step.trip is not None and step.trip.kind is BreakerKind.DAILY_LOSS
    [exit_] = step.decisions
    assert (exit_.instrument, exit_.side, exit_.reason) == (ETH, Side.SELL, DecisionReason.STOP_LOSS)
    [skip] = step.skips
    assert (skip.reason, skip.instrument) == (SkipReason.BREAKER, BTC)


def test_a_core_refuses_strategies_that_do_not_match_its_instruments() -> None:
    config = BrainConfig(BTC, markets=(ETH,))
    with pytest.raises(ValueError, match="strategies for BTC-PERP"):
        BrainCore(config, {BTC: Scripted()}, PositionTracker(CASH, ExitRules()), CircuitBreakers(BreakerRules()),
                  itertools.count(1).__next__)  # fmt: skip
    with pytest.raises(ValueError, match="listed twice"):
        BrainConfig(BTC, markets=(ETH, BTC))
    with pytest.raises(ValueError, match="max_exposure_fraction"):
        BrainConfig(BTC, max_exposure_fraction=0.0)


# -- the merged feed ---------------------------------------------------------------------------


def test_the_portfolio_feed_merges_by_close_time() -> None:
    """The bundled files close together: each close time is one item with four bars, in order; a
    file that starts later joins the groups from its first bar."""
    markets = [(Instrument.symbol(sym), load_bars(bundled_path(name))) for sym, name in BUNDLED_PORTFOLIO]
    late = load_bars(bundled_path(BUNDLED_PORTFOLIO[1][1]))
    late_bars = late.head(len(late))
    markets[1] = (markets[1][0], _tail(late_bars, 100))

    async def read() -> list:
        feed = PortfolioFeed(markets, Pacing(), lambda done, total: None)
        items = []
        while (item := await feed.next_bar()) is not None:
            items.append(item)
        return items

    items = asyncio.run(read())
    assert len(items) == 499 and [i.index for i in items] == list(range(499))
    assert [len(i.group) for i in items[:100]] == [3] * 100 and all(len(i.group) == 4 for i in items[100:])
    assert [inst for inst, _ in items[200].group] == [inst for inst, _ in markets]
    closes = [i.closed.close_ns for i in items]
    assert closes == sorted(closes) and len(set(closes)) == len(closes)
    assert items[0].closed.bar == items[0].group[0][1]


def _tail(bars, start: int):
    """``bars`` from index ``start`` on (a market that starts later)."""
    from array import array

    from foundation.bars import Bars

    cols = [array(a.typecode, a[start:]) for a in (bars.ts_ms, bars.open, bars.high, bars.low, bars.close, bars.volume)]
    return Bars(*cols, source=bars.source)


# -- settings ------------------------------------------------------------------------------------


def test_markets_are_symbol_path_pairs_checked_where_they_are_given(tmp_path: Path) -> None:
    s = BrainSettings(instrument="BTC/USDT", markets=" ETH/USDT=a.csv , SOL/USDT=b.csv")
    assert s.market_files() == (("ETH/USDT", Path("a.csv")), ("SOL/USDT", Path("b.csv")))
    assert s.instruments() == ("BTC/USDT", "ETH/USDT", "SOL/USDT")
    assert s.portfolio_key() == "BTC/USDT,ETH/USDT,SOL/USDT"
    assert BrainSettings().portfolio_key() == "BTC-PERP"  # one instrument: the journal's key as before
    for bad, words in (("ETH/USDT", "not SYMBOL=PATH"), ("=a.csv", "not SYMBOL=PATH"), ("ETH/USDT=", "not SYMBOL=PATH"),
                       ("ETH USDT=a.csv", "printable ASCII"), ("BTC/USDT=a.csv", "listed twice")):  # fmt: skip
        with pytest.raises(ValidationError, match=words):
            BrainSettings(instrument="BTC/USDT", markets=bad)
    with pytest.raises(ValidationError, match="live feed watches one symbol"):
        BrainSettings(markets="ETH/USDT=a.csv", feed="live")
    with pytest.raises(ConfigError, match="paper venue only"):
        ExecutorSettings(markets="ETH/USDT=a.csv", venue="solana-emulator").check_venue()
    with pytest.raises(ValidationError, match="paper venue only"):
        PaperSettings(markets="ETH/USDT=a.csv", venue="binance-emulator")


def test_the_bundled_portfolio_sets_instrument_data_and_markets() -> None:
    s = PaperSettings(portfolio=True)
    assert s.instruments() == tuple(sym for sym, _ in BUNDLED_PORTFOLIO)
    assert s.data == bundled_path(BUNDLED_PORTFOLIO[0][1]) and s.data.is_file()
    assert all(path.is_file() for _, path in s.market_files())
    with pytest.raises(ValidationError, match="drop data"):
        PaperSettings(portfolio=True, data=Path("x.csv"))


# -- the equity file ---------------------------------------------------------------------------


def test_a_portfolio_equity_file_round_trips_with_its_extra_columns(tmp_path: Path) -> None:
    curve = EquityCurve()
    curve.start(CASH)
    curve.record(T0, 40_000.0, CASH, 0.1, ((math.nan, 0.0), (100.0, -2.0)))
    curve.record(T0 + MIN, 40_100.0, CASH - 50, 0.1, ((2_000.0, 0.5), (101.0, -2.0)))
    path = tmp_path / "equity.csv"
    write_equity_curve(path, curve, ("ETH/USDT", "SOL/USDT"))
    lines = path.read_text().splitlines()
    assert lines[0] == ("ts,close,equity,drawdown_pct,position,close:ETH/USDT,position:ETH/USDT,close:SOL/USDT,"
                        "position:SOL/USDT")  # fmt: skip
    assert lines[1].split(",")[5] == ""  # ETH before its first bar
    loaded = load_curve(path)
    assert list(loaded.others) == ["ETH/USDT", "SOL/USDT"]
    eth_close, eth_position = loaded.others["ETH/USDT"]
    assert math.isnan(eth_close[0]) and eth_close[1] == 2_000.0 and list(eth_position) == [0.0, 0.5]
    assert list(loaded.instrument(2).position) == [-2.0, -2.0] and list(loaded.instrument(0).close) == [40_000.0, 40_100.0]
    assert loaded.drawdown_pct[1] == pytest.approx(0.5)
    path.write_text(lines[0].replace("position:SOL/USDT", "position:BNB/USDT") + "\n" + "\n".join(lines[1:]) + "\n")
    with pytest.raises(RunReportError, match="close:<symbol>"):
        load_curve(path)
    path.write_text(lines[0] + "\n" + lines[1].replace(",100.0,", ",-1.0,") + "\n")
    with pytest.raises(RunReportError, match=r"equity.csv:2: close:SOL/USDT -1.0 is not > 0"):
        load_curve(path)


def test_a_bar_holds_no_instrument_so_the_group_names_it() -> None:
    """A group pairs each bar with its instrument: the same prices on two instruments stay apart."""
    b = Book()
    same = 100.0
    step = b.close({ETH: same, SOL: same}, {SOL: Side.BUY})
    [d] = step.decisions
    assert d.instrument == SOL and isinstance(b.strategies[ETH].seen[0], Bar)
