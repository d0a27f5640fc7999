"""Recorded OHLCV bars from a CSV file: loading and validation (the model is :mod:`foundation.bars`).

File format (the one ``../shared/data`` uses): a CSV with the exact header
``timestamp_ms,open,high,low,close,volume``; ``timestamp_ms`` is the bar's **open** time in Unix
milliseconds (UTC), strictly increasing; prices > 0 with ``low <= min(open, close)`` and
``high >= max(open, close)``; volume >= 0. Missing bars stay missing: nothing is filled in.

A file that breaks any rule raises :class:`MarketDataError` naming the file, the 1-based line and
the rule, and no bars are returned.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import math
import operator
import os
import stat
from array import array
from importlib import resources
from pathlib import Path

from .bars import Bars

__all__ = ["BUNDLED_BARS", "BUNDLED_DIGESTS", "BUNDLED_PORTFOLIO", "HEADER", "MarketDataError", "bundled_path", "count_bars",
           "load_bars"]

HEADER = ("timestamp_ms", "open", "high", "low", "close", "volume")
BUNDLED_BARS = "ftx_BTC-PERP_1m.csv"
"""Bundled default: FTX BTC-PERP 1-minute bars, 2021-12-31 23:01 → 2022-02-01 05:31 UTC, 45,031
rows, from nautechsystems/nautilus_trader (LGPL-3.0); see ``foundation/data/NOTICE``."""


BUNDLED_PORTFOLIO = (
    ("BTC/USDT", "binance_BTC-USDT_4h.csv"),
    ("ETH/USDT", "binance_ETH-USDT_4h.csv"),
    ("SOL/USDT", "binance_SOL-USDT_4h.csv"),
    ("BNB/USDT", "binance_BNB-USDT_4h.csv"),
)
"""The bundled portfolio (issue #16): ``(symbol, file)`` of Binance spot 4-hour bars, 2023-12-30 08:00
→ 2024-03-22 08:00 UTC, 499 rows each, from Drakkar-Software/OctoBot (GPL-3.0); see
``foundation/data/NOTICE``."""


BUNDLED_DIGESTS = {
    "3f60bafa3394da9d73e5996043b4bb0dcef248b4d01b2eabda75a4e82c8b26c7": (2_634_942, 45_031),  # ftx_BTC-PERP_1m.csv
    "f487bc7b2ceba228ec8967d9d40c9185c446edbaefd9b0ed56bde4359cf14224": (29_934, 499),  # binance_BTC-USDT_4h.csv
    "2fa39f8346341701bebb47f5d9158843206da52ac1002fb679b45c8efd0ac912": (28_108, 499),  # binance_ETH-USDT_4h.csv
    "390acdfa4b8b267ed3b3b854f61895e5545170208cb65de934082935d5140345": (25_149, 499),  # binance_SOL-USDT_4h.csv
    "5e54939ce61da08b2ac7f625db4a128cef21b564821d528fb31dd4d01eed6015": (24_243, 499),  # binance_BNB-USDT_4h.csv
}
"""The bundled files' SHA-256 digests, with their sizes in bytes and their bar counts: a file with
one of these digests is a bundled file as shipped, which :func:`load_bars` accepts with that many
bars (the test suite loads every one and checks all three), so :func:`count_bars` needs not parse
it again."""
_BUNDLED_SIZES = frozenset(size for size, _ in BUNDLED_DIGESTS.values())


class MarketDataError(ValueError):
    """A market-data file is missing or malformed; the message names file and line."""


def bundled_path(name: str = BUNDLED_BARS) -> Path:
    """Path of a bundled bar file inside the installed package (default: :data:`BUNDLED_BARS`;
    the portfolio's: :data:`BUNDLED_PORTFOLIO`)."""
    return Path(str(resources.files("foundation") / "data" / name))


def load_bars(path: str | Path, limit: int | None = None) -> Bars:
    """Load and validate an OHLCV CSV.

    Args:
        path: the CSV file.
        limit: keep only the first ``limit`` bars (the whole file is still not read past them).

    Returns:
        The bars, in file order.

    Raises:
        MarketDataError: missing file, wrong header, wrong column count, unparsable or
            non-finite number, a timestamp that is negative or whose time in ns (the last bar's
            close too) does not fit in an unsigned 64-bit integer, non-increasing timestamp, or an
            OHLC/volume rule broken; the message is ``"<path>:<line>: <what>"``.
    """
    p = Path(path)
    try:
        fh = p.open(newline="", encoding="ascii")
    except OSError as exc:
        raise MarketDataError(f"{p}: cannot open market data file: {exc.strerror}") from None
    with fh:
        try:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or tuple(f.strip() for f in header) != HEADER:
                raise MarketDataError(f"{p}:1: header must be {','.join(HEADER)}, got {header!r}")
            rows = list(itertools.islice(reader, limit))
        except UnicodeDecodeError as exc:
            raise MarketDataError(f"{p}: not an ASCII CSV file: {exc.reason} at byte {exc.start}") from None
        except csv.Error as exc:
            raise MarketDataError(f"{p}: CSV error: {exc}") from None
    cols = _columns(rows)
    if cols is None:  # something is wrong: the row-by-row walk names the first bad line
        cols = _checked_columns(p, rows)
    ts = cols[0]
    if not ts:
        raise MarketDataError(f"{p}: no bars after the header")
    bars = Bars(*cols, source=str(p))
    if (ts[-1] + bars.interval_ms) * 1_000_000 > _U64_MAX:  # the last bar's close, in ns
        raise MarketDataError(f"{p}:{len(ts) + 1}: timestamp_ms {ts[-1]} plus one bar ({bars.interval_ms} ms) is past"
                              f" the last time a u64 of ns can hold ({_U64_MAX // 1_000_000} ms)")  # fmt: skip
    return bars


def count_bars(path: str | Path, limit: int | None = None) -> int:
    """How many bars :func:`load_bars` would return for ``path`` and ``limit``, raising what it would
    raise: a check before a run, without keeping the bars. A file whose SHA-256 digest is in
    :data:`BUNDLED_DIGESTS` is counted without being parsed (~3 ms instead of ~130 ms for the
    bundled month: ``tandem paper`` checks its data before its children load it; issue #17). Only a
    regular file of a bundled file's size is hashed: another file, however large, or a pipe, goes
    straight to :func:`load_bars`.

    Raises:
        MarketDataError: as :func:`load_bars`.
    """
    known = None
    try:
        st = os.stat(path)
        if stat.S_ISREG(st.st_mode) and st.st_size in _BUNDLED_SIZES:
            with Path(path).open("rb") as fh:
                found = BUNDLED_DIGESTS.get(hashlib.file_digest(fh, "sha256").hexdigest())
            known = None if found is None else found[1]
    except OSError:
        pass  # load_bars says what is wrong with it
    if known is None or (limit is not None and limit < 1):  # a limit below 1: whatever load_bars does with it
        return len(load_bars(path, limit))
    return known if limit is None else min(known, limit)


def _columns(rows: list[list[str]]) -> list[array] | None:
    """The six columns of ``rows`` when every row keeps every rule of the module docstring, checked a
    column at a time (issue #17: about four times faster than row by row); ``None`` when any row does
    not, so that :func:`_checked_columns` can name it."""
    if any(len(r) != 6 for r in rows):
        return None
    try:
        ts = array("q", (int(r[0]) for r in rows))
        o, h, lo, c, v = (array("d", (float(r[k]) for r in rows)) for k in range(1, 6))
    except (ValueError, OverflowError):
        return None
    if not rows:
        return [ts, o, h, lo, c, v]
    ok = (0 <= ts[0] and ts[-1] <= _MAX_TS_MS and all(map(operator.lt, ts, itertools.islice(ts, 1, None)))
          and all(all(map(math.isfinite, col)) for col in (o, h, lo, c, v))
          and min(min(o), min(h), min(lo), min(c)) > 0 and min(v) >= 0
          and all(hi >= op and hi >= cl and lw <= op and lw <= cl and lw <= hi
                  for op, hi, lw, cl in zip(o, h, lo, c, strict=True)))  # fmt: skip
    return [ts, o, h, lo, c, v] if ok else None


def _checked_columns(p: Path, rows: list[list[str]]) -> list[array]:
    """The columns, row by row, raising at the first row that breaks a rule.

    Raises:
        MarketDataError: ``"<path>:<line>: <what>"``.
    """
    cols = [array("q"), array("d"), array("d"), array("d"), array("d"), array("d")]
    ts, o, h, lo, c, v = cols
    last = -1
    for lineno, row in enumerate(rows, start=2):
        if len(row) != 6:
            raise MarketDataError(f"{p}:{lineno}: expected 6 fields, got {len(row)}")
        try:
            t = int(row[0])
            fo, fh_, fl, fc, fv = (float(x) for x in row[1:])
        except ValueError as exc:
            raise MarketDataError(f"{p}:{lineno}: not a number: {exc}") from None
        _check_row(p, lineno, t, last, fo, fh_, fl, fc, fv)
        last = t
        ts.append(t), o.append(fo), h.append(fh_), lo.append(fl), c.append(fc), v.append(fv)
    return cols


_U64_MAX = (1 << 64) - 1
_MAX_TS_MS = _U64_MAX // 1_000_000
"""Latest bar open time, Unix ms: times travel as u64 Unix ns (``market_ts_ns``), so a bar's time
in ns must fit in 64 bits (2554-07-21 UTC); the array column itself is a signed 64-bit ``q``."""


def _check_row(p: Path, lineno: int, t: int, last: int, o: float, h: float, lo: float, c: float, v: float) -> None:
    if not 0 <= t <= _MAX_TS_MS:
        raise MarketDataError(f"{p}:{lineno}: timestamp_ms {t} is out of range: 0..{_MAX_TS_MS} (its time in ns"
                              " must fit in an unsigned 64-bit integer)")  # fmt: skip
    if t <= last:
        raise MarketDataError(f"{p}:{lineno}: timestamp_ms {t} does not increase (previous {last})")
    if not all(math.isfinite(x) for x in (o, h, lo, c, v)):
        raise MarketDataError(f"{p}:{lineno}: non-finite value")
    if min(o, h, lo, c) <= 0:
        raise MarketDataError(f"{p}:{lineno}: prices must be > 0")
    if v < 0:
        raise MarketDataError(f"{p}:{lineno}: volume must be >= 0")
    if h < max(o, c) or lo > min(o, c) or lo > h:
        raise MarketDataError(f"{p}:{lineno}: OHLC out of order (o={o} h={h} l={lo} c={c})")
