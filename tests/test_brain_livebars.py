"""The live feed's bar assembler (brain/livebars.py): stream and REST klines in, every closed bar out
exactly once, in order, with its final values — under disconnects, silences, gaps, duplicates and
out-of-order klines — against a scripted exchange that holds the truth."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from brain.livebars import BarAssembler, BarSource, GapRequest, check_candle
from foundation.bars import Bar

TF = 60_000
T0 = 1_640_995_200_000  # 2022-01-01T00:00Z, on the minute grid


def _bar(i: int, ts: int | None = None) -> Bar:
    o = 100.0 + i
    c = o + (1.0 if i % 2 else -1.0)
    return Bar(T0 + i * TF if ts is None else ts, o, max(o, c) + 0.5, min(o, c) - 0.5, c, 10.0 + i)


def _row(b: Bar) -> list[float | int]:
    return [b.ts_ms, b.open, b.high, b.low, b.close, b.volume]


def _update(b: Bar, phase: int) -> Bar:
    """What the exchange shows of bar ``b`` after its update ``phase`` (2: the final values)."""
    if phase >= 2:
        return b
    if phase == 0:
        return Bar(b.ts_ms, b.open, b.open, b.open, b.open, 0.0)
    mid = (b.open + b.close) / 2
    return Bar(b.ts_ms, b.open, max(b.open, mid), min(b.open, mid), mid, b.volume / 2)


class Exchange:
    """The truth: bars (holes allowed: minutes nobody traded), the market at bar ``i`` update ``phase``."""

    def __init__(self, bars: list[Bar]) -> None:
        self.bars = bars
        self.i, self.phase = 0, -1

    def rest(self, since: int | None, until: int | None = None, limit: int = 1000) -> list[list[float | int]]:
        shown = [*self.bars[: self.i]]
        if self.i < len(self.bars) and self.phase >= 0:
            shown.append(_update(self.bars[self.i], self.phase))
        rows = [b for b in shown if (since is None or b.ts_ms >= since) and (until is None or b.ts_ms < until)]
        return [_row(b) for b in (rows[:limit] if since is not None else rows[-limit:])]

    def clock(self) -> int:
        if self.i >= len(self.bars):
            return self.bars[-1].ts_ms + TF
        return self.bars[self.i].ts_ms + max(self.phase, 0) * TF // 3


def _drain(asm: BarAssembler, ex: Exchange, out: list[Bar]) -> None:
    """What the feed does after every input: fill gaps through REST, take the closed bars."""
    for _ in range(100):
        gap = asm.gap()
        if gap is None:
            break
        asm.on_rest(ex.rest(gap.since_ms, gap.until_ms), gap)
    else:
        raise AssertionError("gap requests did not converge")
    out.extend(c.bar for c in asm.closed())


def test_contiguous_stream_closes_each_bar_with_its_final_values() -> None:
    """A bar closes when the next bar's first update arrives, with the values of its last update."""
    asm = BarAssembler(TF)
    bars = [_bar(i) for i in range(4)]
    for b in bars:
        asm.on_stream([_row(_update(b, p)) for p in range(3)])
    closed = asm.closed()
    assert [c.bar for c in closed] == bars[:3] and all(c.source is BarSource.STREAM for c in closed)
    assert asm.forming == bars[3] and asm.gap() is None
    assert closed[0].close_ns == (bars[0].ts_ms + TF) * 1_000_000


def test_forming_bar_is_never_emitted() -> None:
    """The newest bar is a mark, not a signal: nothing is emitted until a later bar is seen."""
    asm = BarAssembler(TF)
    asm.on_stream([_row(_update(_bar(0), 0)), _row(_update(_bar(0), 1))])
    assert asm.closed() == [] and asm.forming is not None and asm.forming.close == _update(_bar(0), 1).close


def test_duplicate_and_late_klines_are_counted_and_never_emitted_again() -> None:
    """A repeated final kline is a duplicate; a changed one for a closed bar is refused; neither is emitted."""
    asm = BarAssembler(TF)
    b0, b1 = _bar(0), _bar(1)
    asm.on_stream([_row(b0), _row(_update(b1, 0))])
    assert [c.bar for c in asm.closed()] == [b0]
    late = Bar(b0.ts_ms, b0.open, b0.high, b0.low, b0.low, b0.volume)
    asm.on_stream([_row(b0), _row(late)])
    assert asm.counts.duplicated == 1 and asm.counts.refused == 1
    assert asm.closed() == []


def test_jump_in_the_stream_is_filled_from_rest_in_order() -> None:
    """Bars the stream skipped come from REST, in order, before the bar that revealed the gap."""
    ex = Exchange([_bar(i) for i in range(10)])
    asm = BarAssembler(TF)
    out: list[Bar] = []
    for i, phase in ((0, 2), (1, 0), (1, 2), (6, 0)):  # the stream jumps from bar 1 to bar 6
        ex.i, ex.phase = i, phase
        asm.on_stream([_row(_update(ex.bars[i], phase))])
        _drain(asm, ex, out)
    assert out == ex.bars[:6]
    assert asm.counts.gap_filled == 5  # bar 1 (its final unconfirmed: the next update skipped bars) and 2..5


def test_rest_gap_fill_skips_minutes_nobody_traded() -> None:
    """A hole in the exchange's own history (no bar) is taken as such once REST answered for it."""
    bars = [_bar(0), _bar(1), _bar(5), _bar(6)]  # minutes 2, 3, 4 have no bar
    ex = Exchange(bars)
    asm = BarAssembler(TF)
    out: list[Bar] = []
    ex.i, ex.phase = 3, 0
    asm.on_rest(ex.rest(None), GapRequest(T0, None), warmup=True)
    _drain(asm, ex, out)
    assert out == bars[:3]


def test_silence_makes_the_last_update_unconfirmed() -> None:
    """After a silence the stream may have skipped a bar's final update: REST gives its values."""
    ex = Exchange([_bar(i) for i in range(5)])
    asm = BarAssembler(TF)
    out: list[Bar] = []
    ex.i, ex.phase = 0, 2
    asm.on_stream([_row(ex.bars[0])])
    ex.i, ex.phase = 1, 1
    asm.on_stream([_row(_update(ex.bars[1], 0)), _row(_update(ex.bars[1], 1))])
    asm.on_silence()  # the final update of bar 1 never came
    ex.i, ex.phase = 2, 0
    asm.on_stream([_row(_update(ex.bars[2], 0))])
    _drain(asm, ex, out)
    assert out == ex.bars[:2]  # bar 1 with REST's final values, not the half-way update


def test_clock_and_rest_close_the_last_bar() -> None:
    """With no later bar ever (the end of the data, a stalled stream), the exchange's clock past a
    bar's close and REST close it."""
    ex = Exchange([_bar(i) for i in range(3)])
    asm = BarAssembler(TF)
    ex.i, ex.phase = 2, 2
    asm.on_rest(ex.rest(None), GapRequest(T0, None), warmup=True)
    assert [c.bar for c in asm.closed()] == ex.bars[:2]
    ex.i, ex.phase = 3, -1  # the market has passed the last bar's close
    asm.on_rest(ex.rest(ex.bars[2].ts_ms), server_time_ms=ex.clock())
    assert [c.bar for c in asm.closed()] == [ex.bars[2]]


def test_restart_resumes_after_the_last_processed_bar() -> None:
    """``after_ms``: nothing at or before it is emitted again; the next bar is asked for if missing."""
    ex = Exchange([_bar(i) for i in range(6)])
    asm = BarAssembler(TF, after_ms=ex.bars[2].ts_ms)
    out: list[Bar] = []
    ex.i, ex.phase = 5, 0
    asm.on_stream([_row(ex.bars[1]), _row(_update(ex.bars[5], 0))])
    _drain(asm, ex, out)
    assert out == ex.bars[3:5] and asm.counts.refused == 1


def test_bad_candles_are_dropped_and_counted() -> None:
    """NaN, non-positive prices, high < low, off-grid times and short rows never become bars."""
    good = _row(_bar(0))
    bad = [
        [T0, math.nan, 2.0, 1.0, 1.5, 1.0], [T0, 0.0, 2.0, 0.0, 1.0, 1.0], [T0, 1.5, 1.0, 2.0, 1.5, 1.0],
        [T0 + 1, 1.0, 1.0, 1.0, 1.0, 1.0], [T0, 1.0, 1.0], [T0, 1.0, 1.0, 1.0, 1.0, -1.0],
        [T0, 1.0, 1.2, 0.9, 1.3, 1.0],
    ]  # fmt: skip
    for row in bad:
        assert isinstance(check_candle(row, TF), str), row
    assert isinstance(check_candle(good, TF), Bar)
    asm = BarAssembler(TF)
    problems = asm.on_stream(bad)
    assert len(problems) == len(bad) and asm.counts.bad == len(bad) and asm.forming is None


# -- the property: any mix of faults, the truth comes out once, in order ------------------------------

_ACTIONS = st.sampled_from(["send", "send", "send", "send", "drop", "disconnect", "duplicate", "late", "poll"])


@settings(max_examples=300, deadline=None)
@given(holes=st.sets(st.integers(3, 38), max_size=6), script=st.lists(_ACTIONS, min_size=120, max_size=120),
       warmup=st.integers(1, 5))  # fmt: skip
def test_any_fault_mix_emits_the_exchanges_bars_once_in_order(holes: set[int], script: list[str], warmup: int) -> None:
    """Whatever the stream does — lose updates during silences the feed notices, drop the
    connection, repeat a final kline, send an old bar's update late — the feed hands over exactly
    the exchange's closed bars, each once, in order, with their final values."""
    bars = [_bar(i) for i in range(40) if i not in holes]
    ex = Exchange(bars)
    asm = BarAssembler(TF)
    out: list[Bar] = []
    ex.i, ex.phase = warmup, -1  # the market stands at the open of bar `warmup`
    asm.on_rest(ex.rest(None, limit=warmup + 1), GapRequest(bars[0].ts_ms, None), warmup=True,
                server_time_ms=ex.clock())  # fmt: skip
    _drain(asm, ex, out)
    actions = iter(script)
    silent = False
    for i in range(warmup, len(bars)):
        for phase in range(3):
            ex.i, ex.phase = i, phase
            action = next(actions, "send")
            if action == "drop":  # lost during a silence the feed notices
                silent = True
                continue
            if action == "disconnect":
                asm.on_disconnect()
                silent = False
                continue
            if action == "poll":  # the feed's monitor: the clock, and REST once the forming bar closed
                asm.on_silence()
                forming = asm.forming
                if forming is not None and forming.ts_ms + TF <= ex.clock():
                    asm.on_rest(ex.rest(forming.ts_ms), server_time_ms=ex.clock())
                _drain(asm, ex, out)
                continue
            if silent:
                asm.on_silence()
                silent = False
            asm.on_stream([_row(_update(bars[i], phase))])
            if phase == 0 and i > warmup and action == "duplicate":
                asm.on_stream([_row(bars[i - 1])])
            if phase == 0 and i > warmup and action == "late":
                prev = bars[i - 1]
                asm.on_stream([_row(Bar(prev.ts_ms, prev.open, prev.high, prev.low, prev.low, prev.volume))])
            _drain(asm, ex, out)
    ex.i, ex.phase = len(bars), -1  # the end: the clock passes the last close
    forming = asm.forming
    since = forming.ts_ms if forming is not None else (asm.last_emitted_ms or bars[0].ts_ms)
    asm.on_rest(ex.rest(since), server_time_ms=ex.clock())
    _drain(asm, ex, out)
    assert out == bars, (len(out), len(bars))
