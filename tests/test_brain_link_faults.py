"""Issue #10 §7 in the brain app: every decision ends exactly once, and an executor whose journal
was replaced or went back is noticed.

The production :class:`~brain.app.BrainApp` on a real loopback UDP socket; the "executor" is the
test itself, a UDP socket that sends exactly the heartbeats and confirmations each case needs
(through the real codec), so the orderings that are races between two processes are scripted here.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import SECRET, ScriptedStrategy, sample

from brain.app import EXPIRED_UNCONFIRMED, BrainApp, ExecutorJournalFault
from brain.core import BrainConfig, BrainCore
from brain.exits import ExitRules
from brain.journal import BrainJournal
from brain.metrics import BrainMetrics
from brain.risk import BreakerRules, CircuitBreakers
from brain.tracker import PositionTracker
from foundation.barcsv import bundled_path, load_bars
from protocol import (
    Codec,
    ExecutionConfirmation,
    Heartbeat,
    RejectCode,
    Role,
    Side,
    Status,
    TradeDecision,
    derive_key,
)
from testbed.loopback import INSTRUMENT

BARS = load_bars(bundled_path(), limit=30)
CODEC = Codec(derive_key(SECRET))
JOURNAL_A, JOURNAL_B = 0xA11CE, 0xB0B


@dataclass
class FakeExecutor:
    """A UDP socket speaking the executor's side of the bus, scripted by the test."""

    sock: socket.socket
    brain_addr: tuple[str, int]

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.getsockname()

    def heartbeat(self, last_seq: int, *, journal_id: int = JOURNAL_A, in_flight: int = 0) -> None:
        hb = Heartbeat(Role.EXECUTOR, last_seq, 7, in_flight=in_flight, journal_id=journal_id)
        self.sock.sendto(CODEC.encode(hb, sent_at_ns=time.time_ns()), self.brain_addr)

    def confirm(self, d: TradeDecision, seq: int, status: Status) -> None:
        executed = status.executed
        conf = ExecutionConfirmation(
            decision_id=d.decision_id, seq=seq, instrument=d.instrument, side=d.side, intent=d.intent, status=status,
            reject_code=RejectCode.NONE if executed else RejectCode.EXPIRED,
            executed_qty=d.quantity if executed else 0.0, avg_price=d.reference_price if executed else 0.0,
            fee=0.0, executed_at_ns=d.market_ts_ns if executed else 0,
        )  # fmt: skip
        self.sock.sendto(CODEC.encode(conf, sent_at_ns=time.time_ns()), self.brain_addr)

    async def decision(self) -> TradeDecision:
        """The next decision the brain sends (heartbeats and repeats skipped)."""
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.sock, 2048)
            msg = CODEC.decode(data, time.time_ns())
            if isinstance(msg, TradeDecision):
                return msg


@dataclass
class Rig:
    brain: BrainApp
    executor: FakeExecutor
    journal: BrainJournal


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    journal = BrainJournal(tmp_path / "brain.sqlite", instrument=str(INSTRUMENT), starting_cash=10_000.0)
    core = BrainCore(BrainConfig(INSTRUMENT, decision_ttl_ns=200_000_000), ScriptedStrategy({3: Side.BUY, 12: Side.SELL}),
                     PositionTracker(10_000.0, ExitRules()), CircuitBreakers(BreakerRules()),
                     itertools.count(1).__next__)  # fmt: skip
    brain = BrainApp(core, CODEC, journal, BrainMetrics(), ("127.0.0.1", 0), sock.getsockname())
    await brain.start()
    try:
        yield Rig(brain, FakeExecutor(sock, brain.address), journal)
    finally:
        brain.close()
        journal.close()
        sock.close()


async def _resolve_expired(r: Rig) -> TradeDecision:
    """Start the replay, take decision 1, and let it expire unanswered: a heartbeat stamped after its
    expiry with nothing in flight resolves it EXPIRED_UNCONFIRMED."""
    r.executor.heartbeat(0)
    d = await asyncio.wait_for(r.executor.decision(), 5)
    await asyncio.sleep((d.expires_at_ns - time.time_ns()) / 1e9 + 0.05)
    r.executor.heartbeat(0)
    for _ in range(100):
        await asyncio.sleep(0.01)
        if r.brain.stats.outcomes[EXPIRED_UNCONFIRMED]:
            return d
    raise AssertionError("decision 1 was not resolved")


async def test_a_late_expired_answer_is_not_counted_twice(rig: Rig) -> None:
    """Decision 1 is resolved EXPIRED_UNCONFIRMED; then the executor's EXPIRED answer to a copy that
    reached it after the expiry arrives: the tracker is unchanged and the decision ends once."""
    replay = asyncio.ensure_future(rig.brain.replay(BARS.head(8)))
    d = await _resolve_expired(rig)
    rig.executor.confirm(d, 1, Status.EXPIRED)
    stats = await asyncio.wait_for(replay, 5)
    await asyncio.sleep(0.05)
    assert dict(stats.outcomes) == {EXPIRED_UNCONFIRMED: 1}
    assert sample(rig.brain.metrics.outcomes, outcome="EXPIRED") == 0
    assert sample(rig.brain.metrics.outcomes, outcome=EXPIRED_UNCONFIRMED) == 1
    assert sample(rig.brain.metrics.late_confirmations) == 1
    assert rig.brain.core.tracker.positions == {}


async def test_an_executed_answer_after_resolution_is_applied_and_moves_the_outcome(rig: Rig) -> None:
    """Should a resolved decision be confirmed FILLED (the rule forbids it), the venue is the truth: the
    fill is applied, the outcome moves from EXPIRED_UNCONFIRMED to FILLED, and it is counted as an error."""
    replay = asyncio.ensure_future(rig.brain.replay(BARS.head(8)))
    d = await _resolve_expired(rig)
    rig.executor.confirm(d, 1, Status.FILLED)
    stats = await asyncio.wait_for(replay, 5)
    await asyncio.sleep(0.05)
    assert dict(stats.outcomes) == {"FILLED": 1}
    assert sample(rig.brain.metrics.resolution_contradicted) == 1
    assert rig.brain.core.tracker.position(INSTRUMENT) is not None


@pytest.mark.parametrize(("journal_id", "last_seq", "expect"), [
    (JOURNAL_B, 0, "executor journal changed"),  # wiped and started afresh: a new journal id, seq 0
    (JOURNAL_A, 0, "executor journal went back"),  # the same journal, rolled back below seq 1
])  # fmt: skip
async def test_a_replaced_or_rolled_back_executor_journal_stops_the_replay(
    rig: Rig, journal_id: int, last_seq: int, expect: str
) -> None:
    """After decision 1 is confirmed (seq 1) under journal A, a heartbeat from another journal, or from
    journal A at seq 0, is a journal fault: decision 2 is never resolved as never executed, the replay
    ends with ExecutorJournalFault, and the fault is logged, counted and exported."""
    replay = asyncio.ensure_future(rig.brain.replay(BARS))
    rig.executor.heartbeat(0)
    d1 = await asyncio.wait_for(rig.executor.decision(), 5)
    rig.executor.confirm(d1, 1, Status.FILLED)
    rig.executor.heartbeat(1)
    d2 = await asyncio.wait_for(rig.executor.decision(), 5)  # the SELL on bar 12
    assert d2.decision_id == 2
    await asyncio.sleep((d2.expires_at_ns - time.time_ns()) / 1e9 + 0.05)
    rig.executor.heartbeat(last_seq, journal_id=journal_id)
    with pytest.raises(ExecutorJournalFault, match=expect):
        await asyncio.wait_for(replay, 5)
    assert rig.brain.stats.outcomes == {"FILLED": 1}  # decision 2 left pending, not resolved
    assert 2 in rig.brain.core.pending and rig.brain.entries_blocked
    assert sample(rig.brain.metrics.journal_faults) == 1 and sample(rig.brain.metrics.journal_fault) == 1
    assert rig.journal.executor_journal_id() == JOURNAL_A
    assert rig.brain.stats.executor_journal_fault is not None and expect in rig.brain.stats.executor_journal_fault
