"""``tandem fuzz``: hostile datagrams against the live brain and executor endpoints (issue #3 §4).

The datagrams come from :class:`testbed.hostile.HostileDatagrams`. :func:`run_fuzz` (reused by
``tests/test_fuzz.py``)
    starts a real :class:`~brain.app.BrainApp` and :class:`~executor.app.ExecutorApp` on ephemeral
    loopback ports with SQLite journals in ``workdir`` (as ``tests/harness.py`` does, but without
    ``tests/``), trades once so there is state to protect, snapshots that state, sends ``count``
    datagrams to each endpoint from a separate UDP socket in batches — waiting after each batch
    until the endpoints' ``*_datagrams_rejected_total`` counters have caught up, so nothing is lost
    in a socket buffer and the count check is exact — then checks: counts by reason equal the
    expected ones, the snapshot is unchanged, no unhandled error reached the loop, and a real
    decision → confirmation round trip still goes through.

Errors: none of its own; a failed check is reported in :class:`FuzzReport` (``ok`` is False) and
``tandem fuzz`` exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import socket
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brain.app import BrainApp
from brain.core import BrainConfig
from brain.exits import DAY_NS, ExitRules
from executor.app import ExecutorApp
from foundation.barcsv import bundled_path, load_bars
from foundation.bars import Bars
from foundation.bussecret import new_bus_secret
from foundation.logs import configure_logging
from foundation.runtime import run
from protocol import (
    Codec,
    Message,
    RejectReason,
    Side,
    derive_key,
)

from .hostile import INSTRUMENT, HostileDatagrams, Kind, Target, expected_reason
from .loopback import start_pair

__all__ = [
    "Endpoints",
    "FuzzReport",
    "HostileDatagrams",
    "Kind",
    "Target",
    "expected_reason",
    "main",
    "run_fuzz",
    "snapshot",
    "start_endpoints",
]


class _Signal:
    """A strategy that emits one programmed signal on the next bar (``signal``), then nothing."""

    def __init__(self) -> None:
        self.signal: Side | None = None

    def on_bar(self, bar: Any) -> Side | None:
        signal, self.signal = self.signal, None
        return signal


@dataclass
class Endpoints:
    """A live brain and executor wired to each other over loopback UDP (see :func:`start_endpoints`)."""

    brain: BrainApp
    executor: ExecutorApp
    secret: bytes
    bars: Bars
    strategy: _Signal
    next_bar: int = 0

    async def trade(self, side: Side) -> None:
        """Signal ``side`` on the next bar and replay two bars: one decision, its confirmation."""
        i = self.next_bar
        if i + 2 > len(self.bars):
            raise RuntimeError("no bars left to trade on")
        cols = (
            self.bars.ts_ms,
            self.bars.open,
            self.bars.high,
            self.bars.low,
            self.bars.close,
            self.bars.volume,
        )
        self.strategy.signal = side
        await self.brain.replay(Bars(*(c[i : i + 2] for c in cols), source=self.bars.source))
        self.next_bar = i + 2

    def close(self) -> None:
        self.brain.close()
        self.executor.close()
        self.brain.journal.close()
        self.executor.core.close()


async def start_endpoints(
    workdir: Path, *, secret: bytes | None = None, starting_cash: float = 10_000.0
) -> Endpoints:
    """Start an executor (paper venue) and a brain on ephemeral loopback ports, wired to each other.

    Journals go to ``workdir``; the bundled bars feed the venue; the brain trades only when told
    (:meth:`Endpoints.trade`), with exits and slippage limits too wide to act on their own.
    """
    secret = secret or new_bus_secret()
    codec = Codec(derive_key(secret))
    bars = load_bars(bundled_path(), limit=200)
    strategy = _Signal()
    brain, executor = await start_pair(
        workdir, bars, strategy, codec, starting_cash=starting_cash,
        config=BrainConfig(INSTRUMENT, max_slippage_bps=10_000),
        exit_rules=ExitRules(99.0, 1e6, 99.0, 10_000 * DAY_NS),
    )  # fmt: skip
    return Endpoints(brain, executor, secret, bars, strategy)


def _row_counts(path: str | Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [
            t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        return {t: db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}


_LIVENESS = ("_up", "_last_heard_timestamp_seconds")
"""Gauges that move with time and heartbeats, not with what a datagram changes."""


def _samples(registry: Any, skip: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every metric sample except ``skip``'s (the reject counters), the process collector's, the
    liveness gauges and creation timestamps."""
    families = [fam for fam in registry.collect()
                if fam.name != skip and not fam.name.startswith("process_") and not fam.name.endswith(_LIVENESS)]  # fmt: skip
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for fam in families
            for s in fam.samples if not s.name.endswith("_created")}  # fmt: skip


def _stats(stats: Any) -> dict[str, int]:
    return {k: v for k, v in dataclasses.asdict(stats).items() if k != "heartbeats_sent"}  # heartbeats tick


def snapshot(ep: Endpoints) -> dict[str, Any]:
    """Everything a datagram could change on either side, except liveness timestamps and reject counters."""
    b, x, t = ep.brain, ep.executor, ep.brain.core.tracker
    return {
        "brain.tracker": (t.cash, t.realized_pnl, t.fees, t.anomalies,
                          {str(i): dataclasses.astuple(p) for i, p in t.positions.items()},
                          [dataclasses.astuple(c) for c in t.closed_trades]),
        "brain.pending": sorted(b.core.pending),
        "brain.link": (b.link.expected_seq, sorted(b.link.outbox), b.link.peer_incarnation,
                       b.link.peer_last_seq, _stats(b.link.stats)),
        "brain.journal": _row_counts(b.journal.path),
        "brain.metrics": _samples(b.metrics.registry, "tandem_brain_datagrams_rejected"),
        "executor.ledger": x.core.ledger.snapshot(),
        "executor.journal": (x.core.journal.next_seq(), _row_counts(x.core.journal.path)),
        "executor.link": (x.link.last_seq, x.link.brain_incarnation, x.link.brain_applied_seq,
                          _stats(x.link.stats)),
        "executor.metrics": _samples(x.metrics.registry, "tandem_executor_datagrams_rejected"),
    }  # fmt: skip


def rejected(ep: Endpoints, target: Target) -> Counter[str]:
    """The endpoint's ``*_datagrams_rejected_total`` counter, by reason."""
    metric = (ep.brain if target is Target.BRAIN else ep.executor).metrics.rejected
    return Counter({s.labels["reason"]: int(s.value) for fam in metric.collect() for s in fam.samples
                    if s.name.endswith("_total")})  # fmt: skip


# -- the run ---------------------------------------------------------------------------------


@dataclass
class FuzzReport:
    """Figures and verdicts of one fuzz run; ``ok`` when every check passed."""

    count: int  # datagrams per endpoint
    seed: int
    batch: int
    elapsed_s: float = 0.0
    generating_s: float = 0.0  # part of elapsed_s spent making the datagrams (same process, same core)
    sent: dict[Target, Counter[Kind]] = field(default_factory=dict)
    expected: dict[Target, Counter[RejectReason]] = field(default_factory=dict)
    counted: dict[Target, Counter[str]] = field(default_factory=dict)
    state_before: dict[str, Any] = field(default_factory=dict)
    state_after: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # unhandled errors that reached the loop
    failures: list[str] = field(default_factory=list)  # failed checks, one line each
    round_trip: str = ""  # the decision -> confirmation after the fuzz, when it went through

    @property
    def ok(self) -> bool:
        return not self.failures and not self.errors

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.sent.values())

    @property
    def rate(self) -> float:
        """Datagrams sent and counted per second (both endpoints)."""
        return self.total / self.elapsed_s if self.elapsed_s else 0.0

    def format(self) -> str:
        targets = list(Target)
        head = "".join(f"{t.value:>14}" for t in targets)
        lines = [
            f"tandem fuzz: {self.total:,} hostile datagrams ({self.count:,} per endpoint), seed {self.seed}",
            f"  elapsed {self.elapsed_s:.1f} s, {self.rate:,.0f} datagrams/s sent, rejected and counted",
            f"  (of which {self.generating_s:.1f} s making them: the generator shares the endpoints' loop)",
            f"  {'rejected, by reason':<28}{head}   (counted = expected)",
        ]
        for reason in RejectReason:
            cells = []
            for t in targets:
                got, want = (
                    self.counted.get(t, Counter())[reason.value],
                    self.expected.get(t, Counter())[reason],
                )
                cells.append(f"{got:>14,}" if got == want else f"{got:>8,}!={want:,}")
            lines.append(f"    {reason.value:<26}" + "".join(cells))
        totals = "".join(f"{sum(self.counted.get(t, Counter()).values()):>14,}" for t in targets)
        lines += [f"    {'total':<26}{totals}", f"  {'sent, by class':<28}{head}"]
        for kind in Kind:
            lines.append(
                f"    {kind.value:<26}"
                + "".join(f"{self.sent.get(t, Counter())[kind]:>14,}" for t in targets)
            )
        changed = sorted(k for k in self.state_before if self.state_before[k] != self.state_after.get(k))
        lines.append(f"  state unchanged: {'yes' if not changed else 'NO, changed: ' + ', '.join(changed)}")
        lines.append(f"  round trip after the fuzz: {self.round_trip or 'FAILED'}")
        lines.append(
            f"  unhandled errors: {len(self.errors)}" + "".join(f"\n    {e}" for e in self.errors[:5])
        )
        lines += [f"  FAILED: {f}" for f in self.failures]
        lines.append(f"  result: {'PASS' if self.ok else 'FAIL'}")
        return "\n".join(lines)


def _plain(counts: dict[Any, int]) -> dict[str, int]:
    return {k.value: n for k, n in counts.items()}


async def _sendto(sock: socket.socket, data: bytes, addr: tuple[str, int]) -> None:
    while True:
        try:
            sock.sendto(data, addr)
            return
        except BlockingIOError:  # our send buffer is full: let the loop drain it
            await asyncio.sleep(0)


async def _catch_up(ep: Endpoints, goal: dict[Target, int], timeout_s: float) -> bool:
    """Yield to the loop until each endpoint has counted ``goal`` rejects; False on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while any(sum(rejected(ep, t).values()) < n for t, n in goal.items()):
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0)
    return True


async def _settled(ep: Endpoints, timeout_s: float = 5.0) -> bool:
    """Wait until each side's heartbeat has told the other its current ``last_seq`` and incarnation,
    so the heartbeats that keep flowing during the fuzz change nothing the snapshot holds."""
    b, x = ep.brain.link, ep.executor.link
    deadline = time.monotonic() + timeout_s
    while (x.brain_incarnation, x.brain_applied_seq, b.peer_incarnation, b.peer_last_seq) != (
        b.incarnation, b.expected_seq - 1, x.incarnation, x.last_seq):  # fmt: skip
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def fuzz_endpoints(
    ep: Endpoints,
    *,
    count: int,
    seed: int,
    batch: int = 64,
    generators: dict[Target, HostileDatagrams] | None = None,
    catch_up_s: float = 5.0,
) -> FuzzReport:
    """Send ``count`` hostile datagrams to each live endpoint, then run every check (module docstring).

    The endpoints must have traded at least once (:meth:`Endpoints.trade`) so that real messages
    are among the mutated ones and there is state to protect.

    Args:
        batch: datagrams per endpoint between counter checks; a loopback socket's default receive
            buffer (212992 bytes) holds about 256 small datagrams, so larger batches lose some.
        generators: the sources to use (default: :class:`HostileDatagrams` with ``seed`` and real
            messages from both journals).
        catch_up_s: how long the reject counters may take to reach the datagrams sent; after it,
            the missing ones are reported as lost and the run stops.
    """
    report = FuzzReport(count, seed, batch)
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def record(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        report.errors.append(f"{context.get('message')}: {context.get('exception')!r}")
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(record)
    try:
        await _fuzz(ep, report, generators, catch_up_s)
    finally:
        loop.set_exception_handler(previous)
    return report


async def _fuzz(
    ep: Endpoints, report: FuzzReport, gens: dict[Target, HostileDatagrams] | None, catch_up_s: float
) -> None:
    b, x = ep.brain, ep.executor
    if gens is None:
        samples: list[Message] = [j.decision for j in b.journal.history().values()]
        samples += x.core.journal.confirmations_from(1)
        window = {"max_age_ns": b.codec.max_age_ns, "max_skew_ns": b.codec.max_skew_ns}
        gens = {
            t: HostileDatagrams(ep.secret, t, seed=report.seed, samples=samples, **window) for t in Target
        }
    addr = {Target.BRAIN: b.address, Target.EXECUTOR: x.address}
    base = {t: rejected(ep, t) for t in Target}
    sent = dict.fromkeys(Target, 0)
    if not await _settled(ep):
        report.failures.append(
            "the link did not settle before the fuzz (heartbeats not exchanged within 5 s)"
        )
    report.state_before = snapshot(ep)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    started = time.perf_counter()
    try:
        while any(n < report.count for n in sent.values()):
            for t in Target:
                t0 = time.perf_counter()
                datagrams = gens[t].batch(min(report.batch, report.count - sent[t]))
                report.generating_s += time.perf_counter() - t0
                for data in datagrams:
                    await _sendto(sock, data, addr[t])
                sent[t] += len(datagrams)
            if not await _catch_up(ep, {t: sum(base[t].values()) + sent[t] for t in Target}, catch_up_s):
                got = {t.value: sum((rejected(ep, t) - base[t]).values()) for t in Target}
                report.failures.append(
                    f"datagrams never counted within {catch_up_s} s (lost in a socket"
                    f" buffer, or an endpoint stopped): sent {_plain(sent)}, counted {got}"
                )
                break
    finally:
        report.elapsed_s = time.perf_counter() - started
        sock.close()
    for t in Target:
        report.sent[t], report.expected[t] = gens[t].sent, gens[t].expected
        report.counted[t] = rejected(ep, t) - base[t]
        if report.counted[t] != Counter(_plain(gens[t].expected)):
            report.failures.append(
                f"{t.value}: counted {dict(report.counted[t])} != expected {_plain(gens[t].expected)}"
            )
    report.state_after = snapshot(ep)
    if report.state_after != report.state_before:
        changed = sorted(k for k in report.state_before if report.state_before[k] != report.state_after[k])
        report.failures.append(f"state changed: {', '.join(changed)}")
    await _round_trip(ep, report)


async def _round_trip(ep: Endpoints, report: FuzzReport) -> None:
    """A real decision → confirmation through both endpoints, after the fuzz."""
    b, x = ep.brain, ep.executor
    seq, next_seq, filled = b.link.expected_seq, x.core.journal.next_seq(), b.stats.outcomes["FILLED"]
    side = Side.SELL if b.core.tracker.positions else Side.BUY
    try:
        await asyncio.wait_for(ep.trade(side), 10.0)
    except TimeoutError:
        report.failures.append(
            f"round trip after the fuzz: no confirmation for the {side.name} decision in 10 s"
        )
        return
    once = (b.link.expected_seq, x.core.journal.next_seq(), b.stats.outcomes["FILLED"]) == (
        seq + 1, next_seq + 1, filled + 1)  # fmt: skip
    agree = math.isclose(b.core.tracker.cash, x.core.ledger.cash, abs_tol=1e-9) and {
        str(i): p.quantity for i, p in b.core.tracker.positions.items()
    } == {str(i): p.qty for i, p in x.core.ledger.positions().items()}
    if not once:
        report.failures.append(
            f"round trip after the fuzz: the {side.name} decision was not filled and applied once"
        )
    elif not agree:
        report.failures.append(
            "round trip after the fuzz: the brain's cash or positions differ from the executor's"
        )
    else:
        report.round_trip = (f"{side.name} decision -> FILLED confirmation seq {seq}, applied;"
                             " cash and positions agree on both sides")  # fmt: skip


async def run_fuzz(workdir: Path, *, count: int, seed: int, batch: int = 64) -> FuzzReport:
    """Start endpoints in ``workdir``, open a position, :func:`fuzz_endpoints` (its round trip closes it)."""
    ep = await start_endpoints(workdir)
    try:
        await asyncio.wait_for(ep.trade(Side.BUY), 10.0)
        return await fuzz_endpoints(ep, count=count, seed=seed, batch=batch)
    finally:
        ep.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tandem fuzz", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--count", type=int, default=500_000, help="datagrams per endpoint (default 500000: 1M in all)"
    )
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--batch", type=int, default=64, help="datagrams per endpoint between counter checks")
    parser.add_argument(
        "--log-level", default="error", help="endpoint log level (default error: rejects are warnings)"
    )
    opts = parser.parse_args(argv)
    if opts.count < 1 or opts.batch < 1:
        parser.error("--count and --batch must be >= 1")
    configure_logging(opts.log_level)
    with tempfile.TemporaryDirectory(prefix="tandem-fuzz-") as tmp:
        report = run(run_fuzz(Path(tmp), count=opts.count, seed=opts.seed, batch=opts.batch))
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
