"""Hostile datagrams against the live brain and executor (issue #3 §4): every one rejected, counted
by reason, harmless; the endpoints work afterwards. ``tandem fuzz`` runs the same at 1M datagrams."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import structlog

from foundation.runtime import run
from protocol import (
    BrainLink,
    Codec,
    DecisionReason,
    ExecutorLink,
    Intent,
    RejectReason,
    RemoteProtocolError,
    Side,
    TradeDecision,
    derive_key,
)
from testbed.fuzz import (
    INSTRUMENT,
    HostileDatagrams,
    Kind,
    Target,
    fuzz_endpoints,
    run_fuzz,
    start_endpoints,
)

R = RejectReason
PREFIX_REASONS = {R.SIZE, R.VERSION, R.TYPE, R.AUTH}  # SPEC §8 checks 1-5
EXPECTED = {
    Kind.RANDOM: PREFIX_REASONS,
    Kind.RANDOM_SIZED: {R.AUTH},
    Kind.BIT_FLIP: PREFIX_REASONS,
    Kind.MULTI_BIT_FLIP: PREFIX_REASONS,
    Kind.BYTE_SUBSTITUTION: PREFIX_REASONS,
    Kind.TRUNCATION: {R.SIZE},
    Kind.EXTENSION: {R.SIZE},
    Kind.TYPE_SWAP: {R.SIZE, R.TYPE},
    Kind.VERSION_CHANGE: {R.VERSION},
    Kind.OTHER_SECRET: {R.AUTH},
    Kind.BAD_FIELD: {R.FIELD},
    Kind.STALE: {R.STALE},
    Kind.WRONG_DIRECTION: {R.DIRECTION},
}
SECRET = b"fuzz-test-secret-fuzz-test-secret"


def _reason(codec: Codec, link: Any, data: bytes) -> RejectReason | None:
    """What a receiver does with ``data``: the reject reason, or None if it was accepted."""
    try:
        link.receive(codec.decode(data, time.time_ns()), time.time_ns())
    except RemoteProtocolError as exc:
        return exc.reason
    return None


def test_generator_classes_map_to_their_reasons() -> None:
    """Each class of hostile datagram is rejected, sans-IO, for exactly the reason the generator predicts."""
    codec = Codec(derive_key(SECRET))
    for target in Target:
        gen = HostileDatagrams(SECRET, target, seed=11)
        link = (
            BrainLink(codec, incarnation=1) if target is Target.BRAIN else ExecutorLink(codec, incarnation=1)
        )
        seen: dict[Kind, Counter[RejectReason | None]] = {kind: Counter() for kind in Kind}
        for kind in Kind:
            for _ in range(600):
                data, predicted = gen.make(kind)
                got = _reason(codec, link, data)
                assert got == predicted, (target, kind, data.hex())
                seen[kind][got] += 1
        for kind, reasons in seen.items():
            assert set(reasons) <= EXPECTED[kind], (target, kind, reasons)
        assert set().union(*seen.values()) == set(RejectReason)
        assert set(seen[Kind.TYPE_SWAP]) == {R.SIZE, R.TYPE}  # another known type, or none


def test_live_endpoints_survive_200k_hostile_datagrams(tmp_path: Path) -> None:
    """100k hostile datagrams to each live endpoint: no crash, no state change, each counted by reason."""
    count = 100_000
    unhandled: list[dict[str, Any]] = []

    async def scenario() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: unhandled.append(ctx))
        return await run_fuzz(tmp_path, count=count, seed=20_250_611)

    report = run(scenario())  # uvloop, as deployed
    assert unhandled == [] and report.errors == []
    for target in Target:
        assert sum(report.sent[target].values()) == count
        assert set(report.sent[target]) == set(Kind)
        assert report.counted[target] == Counter({r.value: n for r, n in report.expected[target].items()})
        assert sum(report.counted[target].values()) == count
        assert set(report.counted[target]) == {r.value for r in RejectReason}
    assert report.state_before and report.state_after == report.state_before
    assert report.failures == []
    assert report.round_trip.startswith(
        "SELL decision -> FILLED"
    )  # the position opened before the fuzz closes
    assert report.ok


def test_reject_logging_is_rate_limited(tmp_path: Path) -> None:
    """A 20k-datagram flood writes a few rate-limited 'datagram_rejected' lines, not one per datagram."""
    with structlog.testing.capture_logs() as logs:
        report = run(run_fuzz(tmp_path, count=10_000, seed=5))
    assert report.ok, report.format()
    lines = [e for e in logs if e["event"] == "datagram_rejected"]
    # RateLimitedLog: at most one line per reason per second, per endpoint.
    bound = len(Target) * len(RejectReason) * (math.ceil(report.elapsed_s) + 1)
    assert 0 < len(lines) <= bound and len(lines) * 100 < 20_000
    assert {e["reason"] for e in lines} <= {r.value for r in RejectReason}


class _LeakyDatagrams(HostileDatagrams):
    """Hostile datagrams plus, in the first batch, one valid fresh decision (which the executor accepts)."""

    def __init__(self, *args: Any, decision: TradeDecision, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.decision: TradeDecision | None = decision

    def batch(self, n: int) -> list[bytes]:
        out = super().batch(n)
        if self.decision is not None:
            out.append(self._codec.encode(self.decision))
            self.decision = None
        return out


def test_fuzz_checks_catch_an_accepted_datagram(tmp_path: Path) -> None:
    """The checks are not vacuous: a valid decision slipped into the flood fails the count and state check."""

    async def scenario() -> Any:
        ep = await start_endpoints(tmp_path, secret=SECRET)
        try:
            await ep.trade(Side.BUY)
            now = time.time_ns()
            leak = TradeDecision(
                decision_id=10**9, instrument=INSTRUMENT, side=Side.BUY, intent=Intent.OPEN,
                reason=DecisionReason.MANUAL, quantity=1e-4, reference_price=ep.bars.close[50],
                max_slippage_bps=10_000, created_at_ns=now, expires_at_ns=now + 10**10,
                market_ts_ns=ep.bars.close_ns(50),
            )  # fmt: skip
            gens = {
                Target.EXECUTOR: _LeakyDatagrams(SECRET, Target.EXECUTOR, seed=1, decision=leak),
                Target.BRAIN: HostileDatagrams(SECRET, Target.BRAIN, seed=1),
            }
            return await fuzz_endpoints(ep, count=1_000, seed=1, generators=gens, catch_up_s=0.5)
        finally:
            ep.close()

    report = run(scenario())
    assert not report.ok
    assert any("never counted" in f for f in report.failures)
    changed = {k for k in report.state_before if report.state_before[k] != report.state_after[k]}
    assert {"executor.journal", "executor.link", "brain.metrics"} <= changed


def test_tandem_fuzz_command(tmp_path: Path) -> None:
    """`tandem fuzz` runs the live fuzz, prints counts by reason and class, and exits 0 when all pass."""
    out = subprocess.run(
        [sys.executable, "-m", "tandem.cli", "fuzz", "--count", "3000", "--seed", "9"],
        check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "6,000 hostile datagrams (3,000 per endpoint), seed 9" in out.stdout
    for name in [r.value for r in RejectReason] + [k.value for k in Kind]:
        assert f"    {name} " in out.stdout
    assert "state unchanged: yes" in out.stdout and out.stdout.rstrip().endswith("result: PASS")
