"""Recorded OHLCV bars: the bundled file, validation errors that name file and line, gaps, limit."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from foundation.barcsv import (
    BUNDLED_BARS,
    BUNDLED_DIGESTS,
    BUNDLED_PORTFOLIO,
    HEADER,
    MarketDataError,
    bundled_path,
    count_bars,
    load_bars,
)
from foundation.bars import Bars

MS = 1_000_000
T_MS = 1_700_006_400_000  # open time of the first bar of the small files, Unix ms
HEAD = ",".join(HEADER)


def row(i: int, close: float = 100.0, *, ts_ms: int | None = None) -> str:
    """A valid 1m row ``i`` minutes after ``T_MS``."""
    ts = T_MS + i * 60_000 if ts_ms is None else ts_ms
    return f"{ts},{close},{close + 1},{close - 1},{close},10.0"


def write(tmp_path: Path, *lines: str) -> Path:
    p = tmp_path / "bars.csv"
    p.write_text("\n".join(lines) + "\n", encoding="ascii")
    return p


@pytest.fixture(scope="module")
def bundled() -> Bars:
    return load_bars(bundled_path())


def test_bundled_file_loads_45031_one_minute_bars(bundled: Bars) -> None:
    """The bundled FTX BTC-PERP file has 45,031 bars at a 60,000 ms interval."""
    assert len(bundled) == 45_031
    assert bundled.interval_ms == 60_000
    assert bundled.ts_ms[0] == 1_640_991_660_000  # 2021-12-31 23:01 UTC
    first = bundled[0]
    assert (first.open, first.high, first.low, first.close) == (46319.0, 46385.0, 46319.0, 46377.0)
    assert bundled.close_ns(0) == (1_640_991_660_000 + 60_000) * MS


def test_limit_keeps_the_first_bars(bundled: Bars, tmp_path: Path) -> None:
    """``limit`` returns only the first N bars, identical to the head of the full load."""
    few = load_bars(bundled_path(), limit=10)
    assert len(few) == 10
    assert [few[i] for i in range(10)] == [bundled[i] for i in range(10)]
    assert [bundled.head(3)[i] for i in range(3)] == [bundled[i] for i in range(3)]


def test_limit_stops_before_reading_later_lines(tmp_path: Path) -> None:
    """Lines past the limit are not read, so a bad line after them does not fail the load."""
    p = write(tmp_path, HEAD, row(0), row(1), "garbage")
    assert len(load_bars(p, limit=2)) == 2
    with pytest.raises(MarketDataError, match=":4:"):
        load_bars(p)


@pytest.mark.parametrize(
    ("lines", "line", "what"),
    [
        (("time,open,high,low,close,volume", row(0)), 1, "header must be"),
        ((HEAD, row(0), f"{T_MS + 60_000},100,101,99,100"), 3, "expected 6 fields, got 5"),
        ((HEAD, row(0), f"{T_MS + 60_000},100,101,99,100,1,7"), 3, "expected 6 fields, got 7"),
        ((HEAD, row(0), f"{T_MS + 60_000},abc,101,99,100,1"), 3, "not a number"),
        ((HEAD, row(0), f"{T_MS + 60_000}.5,100,101,99,100,1"), 3, "not a number"),
        ((HEAD, row(0), row(1, ts_ms=T_MS)), 3, "does not increase"),
        ((HEAD, row(0), row(1), row(2, ts_ms=T_MS)), 4, "does not increase"),
        ((HEAD, row(0), f"{T_MS + 60_000},100,101,99,102,1"), 3, "OHLC out of order"),  # high < close
        ((HEAD, row(0), f"{T_MS + 60_000},100,101,99,100,-1"), 3, "volume must be >= 0"),
        ((HEAD, row(0), f"{T_MS + 60_000},100,nan,99,100,1"), 3, "non-finite"),
        ((HEAD, row(0), f"{T_MS + 60_000},100,101,99,100,inf"), 3, "non-finite"),
        ((HEAD, row(0), f"{T_MS + 60_000},0,101,0,100,1"), 3, "prices must be > 0"),
    ],
    ids=["header", "too-few-fields", "too-many-fields", "word", "fractional-ts", "same-ts", "earlier-ts",
         "high-below-close", "negative-volume", "nan", "inf", "zero-price"],  # fmt: skip
)
def test_malformed_file_names_path_and_line(tmp_path: Path, lines: tuple[str, ...], line: int, what: str) -> None:
    """Each broken rule raises MarketDataError whose message starts "<path>:<line>: " and says what."""
    p = write(tmp_path, *lines)
    with pytest.raises(MarketDataError) as info:
        load_bars(p)
    message = str(info.value)
    assert message.startswith(f"{p}:{line}: ")
    assert what in message


def test_header_only_file_is_an_error(tmp_path: Path) -> None:
    """A file with a header and no bars fails, naming the file."""
    p = write(tmp_path, HEAD)
    with pytest.raises(MarketDataError, match="no bars"):
        load_bars(p)


def test_missing_file_error_names_the_path(tmp_path: Path) -> None:
    """Loading a file that does not exist raises MarketDataError naming the path."""
    p = tmp_path / "nowhere" / "bars.csv"
    with pytest.raises(MarketDataError) as info:
        load_bars(p)
    assert str(p) in str(info.value)


def test_gaps_are_kept_not_filled(tmp_path: Path) -> None:
    """A missing minute stays missing: len equals the rows, and look-up in the gap picks the next bar."""
    p = write(tmp_path, HEAD, row(0), row(1), row(3), row(4))  # minute 2 is missing
    bars = load_bars(p)
    assert len(bars) == 4
    assert bars.interval_ms == 60_000
    assert list(bars.ts_ms) == [T_MS, T_MS + 60_000, T_MS + 180_000, T_MS + 240_000]
    assert bars.first_open_at_or_after((T_MS + 120_000) * MS) == 2  # in the gap → the bar after it
    assert bars.first_open_at_or_after((T_MS + 60_000) * MS + 1) == 2  # 1 ns after an open → next bar


def test_first_open_at_or_after_edges(tmp_path: Path) -> None:
    """Exactly at an open returns that bar; before the first returns 0; after the last returns None."""
    bars = load_bars(write(tmp_path, HEAD, row(0), row(1), row(2)))
    assert bars.first_open_at_or_after((T_MS + 60_000) * MS) == 1
    assert bars.first_open_at_or_after(0) == 0
    assert bars.first_open_at_or_after((T_MS + 120_000) * MS + 1) is None


def test_every_bundled_file_has_its_digest_and_count() -> None:
    """BUNDLED_DIGESTS holds each bundled file's SHA-256 with its size and the bar count load_bars
    gives it — what lets count_bars skip the parse — and nothing else."""
    files = [BUNDLED_BARS, *(name for _, name in BUNDLED_PORTFOLIO)]
    table = {}
    for name in files:
        path = bundled_path(name)
        table[hashlib.sha256(path.read_bytes()).hexdigest()] = (path.stat().st_size, len(load_bars(path)))
    assert table == BUNDLED_DIGESTS


def test_count_bars_counts_what_load_bars_loads(tmp_path: Path) -> None:
    """count_bars agrees with load_bars, limits included: for the bundled file (by its digest) and a
    copy one byte different (parsed)."""
    bundled = bundled_path()
    changed = tmp_path / "changed.csv"
    changed.write_bytes(bundled.read_bytes() + f"{load_bars(bundled).ts_ms[-1] + 60_000},1,2,1,1,0\n".encode())
    for path, total in ((bundled, 45_031), (changed, 45_032)):
        for limit in (None, 1, 100, 45_031, 10**6):
            assert count_bars(path, limit) == len(load_bars(path, limit)) == min(total, limit or total)


def test_count_bars_refuses_what_load_bars_refuses(tmp_path: Path) -> None:
    """A malformed file, a header alone, a missing file: the same MarketDataError as load_bars."""
    broken = write(tmp_path, HEAD, row(0), f"{T_MS + 60_000},abc,101,99,100,1")
    for path, what in ((broken, f"{broken}:3: not a number"), (tmp_path / "nowhere.csv", "cannot open")):
        with pytest.raises(MarketDataError) as info:
            count_bars(path)
        assert what in str(info.value)
    with pytest.raises(MarketDataError, match="no bars"):
        count_bars(write(tmp_path, HEAD))
