"""Crash recovery through the loopback harness: restart either side on its journal mid-replay.

A "kill" here stops an app without any shutdown work (its task is cancelled, its socket closed,
its journal left as it was); ``tandem chaos`` does the same with SIGKILL on real processes.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from harness import sample, start_brain, start_executor, start_harness

from brain.app import EXPIRED_UNCONFIRMED, BrainApp
from brain.core import BrainConfig
from brain.strategy import EmaCrossover
from foundation.barcsv import bundled_path, load_bars
from protocol import Status

BARS = load_bars(bundled_path(), limit=6000)
BLACK_HOLE = ("127.0.0.1", 9)  # the discard port: datagrams sent there are lost


def strategy() -> EmaCrossover:
    return EmaCrossover(fast=10, slow=40)


async def reference_trades(tmp: Path) -> list:
    tmp.mkdir()
    h = await start_harness(tmp, BARS, strategy())
    try:
        await h.brain.replay(BARS)
        return h.brain.core.tracker.closed_trades
    finally:
        h.close()


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def kill_brain(brain: BrainApp, task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    brain.close()
    brain.journal.close()
    await asyncio.sleep(0.01)  # the transport closes its socket on the next loop turn


def fills_per_decision(tmp: Path) -> dict[int, int]:
    with sqlite3.connect(tmp / "executor.sqlite") as db:
        return dict(db.execute("SELECT decision_id, COUNT(*) FROM fills GROUP BY decision_id"))


async def test_brain_restart_with_a_decision_in_flight(tmp_path: Path) -> None:
    """A brain killed while a decision is unsent resumes, resends it with the same id, and ends
    with the same trades as an uninterrupted run; every decision executed once."""
    expected = await reference_trades(tmp_path / "ref")
    run = tmp_path / "run"
    run.mkdir()
    h = await start_harness(run, BARS, strategy())
    executor_addr = h.executor.address
    h.brain.endpoint.peer = BLACK_HOLE  # decisions from now on are lost
    task = asyncio.create_task(h.brain.replay(BARS))
    await until(lambda: h.brain.core.pending)
    bind = h.brain.address
    await kill_brain(h.brain, task)
    brain = await start_brain(run, strategy(), h.codec, executor_addr, bind=bind)
    try:
        # resuming: flagged, and no position exported while the tracker catches up with the journal
        assert sample(brain.metrics.resuming) == 1
        assert not [s for fam in brain.metrics.position.collect() for s in fam.samples]
        await brain.replay(BARS)
        assert sample(brain.metrics.resuming) == 0
        assert sample(brain.metrics.position, instrument=str(brain.core.config.instrument)) == sum(
            p.quantity for p in brain.core.tracker.positions.values()
        )
        assert brain.stats.resumed_decisions >= 1
        assert brain.core.tracker.closed_trades == expected
        assert set(fills_per_decision(run).values()) == {1}
        assert brain.core.tracker.cash == h.executor.core.ledger.cash
    finally:
        brain.close()
        brain.journal.close()
        h.executor.close()
        h.executor.core.close()


async def test_brain_restart_after_confirmation_lost(tmp_path: Path) -> None:
    """The executor executed, its confirmation was lost and the brain died: the restarted brain
    gets the confirmation (answered duplicate or replayed), never a second execution."""
    expected = await reference_trades(tmp_path / "ref")
    run = tmp_path / "run"
    run.mkdir()
    h = await start_harness(run, BARS, strategy())
    brain_addr, executor_addr = h.brain.address, h.executor.address
    h.executor.endpoint.peer = BLACK_HOLE  # confirmations and heartbeats from now on are lost
    task = asyncio.create_task(h.brain.replay(BARS))
    await until(lambda: h.executor.core.journal.next_seq() > 1)  # the executor executed something
    await kill_brain(h.brain, task)
    h.executor.endpoint.peer = brain_addr
    brain = await start_brain(run, strategy(), h.codec, executor_addr, bind=brain_addr)
    try:
        await brain.replay(BARS)
        assert brain.core.tracker.closed_trades == expected
        assert set(fills_per_decision(run).values()) == {1}
        assert brain.core.tracker.cash == h.executor.core.ledger.cash
    finally:
        brain.close()
        brain.journal.close()
        h.executor.close()
        h.executor.core.close()


async def test_executor_restart_mid_replay(tmp_path: Path) -> None:
    """An executor killed mid-replay and restarted on its journal and port loses nothing: the brain
    notices the new incarnation, resends, and both ledgers end equal to an uninterrupted run."""
    expected = await reference_trades(tmp_path / "ref")
    run = tmp_path / "run"
    run.mkdir()
    h = await start_harness(run, BARS, strategy())
    task = asyncio.create_task(h.brain.replay(BARS))
    await until(lambda: h.executor.core.journal.next_seq() > 4)
    bind = h.executor.address
    h.executor.close()
    h.executor.core.close()
    await asyncio.sleep(0.3)
    executor = await start_executor(run, BARS, h.codec, h.brain.address, bind=bind)
    try:
        await asyncio.wait_for(task, 60)
        assert h.brain.core.tracker.closed_trades == expected
        assert set(fills_per_decision(run).values()) == {1}
        assert h.brain.core.tracker.cash == executor.core.ledger.cash
    finally:
        h.brain.close()
        h.brain.journal.close()
        executor.close()
        executor.core.close()


async def test_unconfirmed_expired_decision_is_resolved_without_execution(tmp_path: Path) -> None:
    """A decision that never reaches the executor before it expires is resolved as expired once an
    executor heartbeat stamped after the expiry shows nothing outstanding; it never executes."""
    h = await start_harness(tmp_path, BARS, strategy())
    h.brain.core.config = BrainConfig(h.brain.core.config.instrument, decision_ttl_ns=300_000_000)
    executor_addr = h.executor.address
    h.brain.endpoint.peer = BLACK_HOLE
    task = asyncio.create_task(h.brain.replay(BARS))
    try:
        await until(lambda: h.brain.core.pending)
        (decision_id,) = h.brain.core.pending
        await until(lambda: h.brain.stats.outcomes[EXPIRED_UNCONFIRMED] == 1, timeout=5)
        h.brain.endpoint.peer = executor_addr
        await asyncio.wait_for(task, 60)
        assert decision_id not in fills_per_decision(tmp_path)
        with sqlite3.connect(tmp_path / "brain.sqlite") as db:
            assert db.execute("SELECT kind FROM resolutions WHERE decision_id=?", (decision_id,)).fetchone() == (
                EXPIRED_UNCONFIRMED,
            )
        assert h.brain.core.tracker.cash == h.executor.core.ledger.cash
    finally:
        h.close()


async def test_late_decision_is_answered_expired(tmp_path: Path) -> None:
    """A decision that reaches the executor after its expiry is answered EXPIRED and not executed."""
    h = await start_harness(tmp_path, BARS, strategy())
    h.brain.core.config = BrainConfig(h.brain.core.config.instrument, decision_ttl_ns=1)
    try:
        await h.brain.replay(BARS.head(300))
        assert h.brain.stats.outcomes[Status.EXPIRED.name] >= 1
        assert fills_per_decision(tmp_path) == {}
        assert h.brain.core.tracker.positions == {}
    finally:
        h.close()

