"""``tandem bench``, CI-sized (issue #17): the real executor process against the bench's brain, and a bare
UDP echo measured in the same run. Absolute times on a shared machine are noise, so this fails only on a
gross regression — a ratio against the echo far above where the code stands — and on any lost or
duplicated confirmation; the targets themselves are judged by the full ``tandem bench`` (README,
"Measured")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from testbed.bench import BLOCK_WARMUP, LATENCY_BLOCKS

TANDEM = str(Path(sys.executable).parent / "tandem")

GROSS = {"p50_ratio": 25.0, "p99_ratio": 40.0, "pipelined_per_s": 1_500.0}
"""Far from where the code stands: on an idle 2-core machine p50 is 3.2-3.7x the echo's, p99 3.2-3.4x,
and 10,700-12,400 decisions/s go through pipelined (the journaled echo alone, the floor of any executor
with this journal, is ~2x the echo at p50). In this suite another test process runs beside the bench
and takes CPU from one peer's blocks more than another's (ratios of 14-17 were seen, and once a p99
ratio of 70, before the peers took turns in blocks), so only a regression several times over fails
here; the pipelined rate is the steadier witness."""

RUNS = 3
"""A gross regression shows in every run; a burst of load from the test beside it, in one. So the
timing bounds fail only when all of up to this many runs break one; exactly-once is checked in each."""


def _ci_sized_bench() -> dict:
    proc = subprocess.run([TANDEM, "bench", "--rounds", "400", "--warmup", "100", "--throughput", "3000", "--json"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(proc.stdout)
    c = r["confirmations"]
    latency = 100 + LATENCY_BLOCKS * BLOCK_WARMUP + 400  # warm-up, then each block's discarded ones and its share
    assert c == {"sent": latency + 400 + 3000 + latency, "received": c["sent"], "unexpected": 0}, c
    p = r["placement"]  # round trips pinned: the brain's side on one CPU, every peer on another
    assert p is None if len(os.sched_getaffinity(0)) < 2 else p["client_cpu"] != p["peer_cpu"], p
    t, e = r["tandem_latency"], r["echo_latency"]
    assert 0 < e["p50"] <= e["p90"] <= e["p99"] <= e["max"] and 0 < t["p50"] <= t["p99"]
    j = r["journaled_echo_latency"]  # decode, one journal transaction, encode: the floor with journaling
    assert 0 < j["p50"] <= j["p99"] <= j["max"]
    b = r["sqlite_echo_latency"]  # decode, one row committed, encode: the floor of any journal within the rules
    assert 0 < b["p50"] <= b["p99"] <= b["max"]
    assert r["cpu_us_per_request"]["sqlite_echo"]["latency"] >= 0
    u = r["busy_poll_off_latency"]  # the executor again, --busy-poll-us 0: the table shows both settings
    assert 0 < u["p50"] <= u["p99"] <= u["max"]
    v = r["targets"]
    assert v["p50_ratio"] == t["p50"] / e["p50"] and v["pipelined_per_s"] == r["tandem_rate"]
    return r


def _gross(r: dict) -> list[str]:
    """What in run ``r`` is grossly slow: a ratio above :data:`GROSS`, a rate below it, or pipelining
    no faster than lockstep."""
    v = r["targets"]
    broken = [f"{k} {v[k]:.2f} > {GROSS[k]}" for k in ("p50_ratio", "p99_ratio") if v[k] > GROSS[k]]
    if v["pipelined_per_s"] < GROSS["pipelined_per_s"]:
        broken.append(f"pipelined {v['pipelined_per_s']:,.0f}/s < {GROSS['pipelined_per_s']:,.0f}")
    if r["tandem_rate"] <= r["tandem_lockstep_rate"] * 1.2:  # many in flight must beat one at a time
        broken.append(f"pipelined {r['tandem_rate']:,.0f}/s not above lockstep {r['tandem_lockstep_rate']:,.0f}/s")
    return broken


def test_a_ci_sized_bench_run_confirms_every_decision_once_and_is_not_grossly_slower() -> None:
    seen = []
    for _ in range(RUNS):
        broken = _gross(_ci_sized_bench())
        if not broken:
            return
        seen.append(broken)
    raise AssertionError(f"grossly slow in each of {RUNS} runs: {seen}")


def test_gross_judges_each_bound() -> None:
    """The judge itself: a run at the code's usual figures passes; each bound broken alone fails."""
    ok = {"targets": {"p50_ratio": 4.5, "p99_ratio": 4.8, "pipelined_per_s": 10_500.0},
          "tandem_rate": 10_500.0, "tandem_lockstep_rate": 3_000.0}  # fmt: skip
    assert _gross(ok) == []
    for key, value in (("p50_ratio", 26.0), ("p99_ratio", 70.0), ("pipelined_per_s", 1_000.0)):
        r = {**ok, "targets": {**ok["targets"], key: value}}
        assert len(_gross(r)) == 1 and key.split("_")[0] in _gross(r)[0], _gross(r)
    assert _gross({**ok, "tandem_lockstep_rate": 10_000.0}) != []


def test_the_soak_reports_memory_and_descriptors() -> None:
    """A short soak: the samples, the growth from the post-warm-up sample, every confirmation once."""
    proc = subprocess.run([TANDEM, "bench", "--soak", "5000", "--warmup", "50", "--json"], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(proc.stdout)
    s = r["soak"]
    assert r["placement"] is None  # a soak runs unpinned, as deployed
    assert s["decisions"] == 5000 and len(s["samples"]) == 51
    assert all(x["rss_bytes"] > 10 * 2**20 and x["fds"] > 3 for x in s["samples"])
    assert s["rss_growth_pct"] == (s["rss_last_bytes"] / s["rss_after_warmup_bytes"] - 1) * 100
    assert r["confirmations"] == {"sent": 50 + 1 + 5000, "received": 50 + 1 + 5000, "unexpected": 0}
