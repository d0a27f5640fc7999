"""The run outputs' times (``trades.csv``, ``equity.csv``, ``report.json``): Unix ns written as
``YYYY-MM-DDTHH:MM:SSZ`` in POSIX time, whatever the process's time zone."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from brain.report import _iso, _iso_column

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EDGES = [0, 59 * 10**9, 86_399 * 10**9, 86_400 * 10**9, 951_782_400 * 10**9, 1_641_011_580 * 10**9, 2**64 - 1]


def _reference(ns: int) -> str:
    """datetime's arithmetic from the epoch (not ``fromtimestamp``, which asks the C library)."""
    return (EPOCH + timedelta(seconds=ns // 1_000_000_000)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_iso_and_iso_column_agree_with_datetime() -> None:
    """Edges (the epoch, day boundaries, a leap day, the u64 ceiling) and 20,000 random times: the
    column formatter and the one-value formatter give datetime's string."""
    rng = random.Random(17)
    values = EDGES + [rng.randrange(0, 2**64) for _ in range(20_000)]
    expected = [_reference(ns) for ns in values]
    assert _iso_column(values) == expected
    assert [_iso(ns) for ns in values] == expected
    assert _iso(951_782_400 * 10**9) == "2000-02-29T00:00:00Z"


def test_a_leap_second_time_zone_changes_nothing() -> None:
    """Under ``TZ=right/UTC`` glibc's ``gmtime`` counts leap seconds (midnight 2000-02-29 would read
    2000-02-28T23:59:38Z); the outputs' times are POSIX time, so they stay as they are."""
    code = "from brain.report import _iso, _iso_column; print(_iso(951782400 * 10**9), _iso_column([951782400 * 10**9])[0])"
    env = {**os.environ, "TZ": "right/UTC"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True)
    assert out.stdout.split() == ["2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z"]
