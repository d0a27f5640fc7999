"""Full trade cycles through the loopback UDP harness (real sockets, real journals, real bars)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
import structlog
from harness import INSTRUMENT, ScriptedStrategy, sample, start_harness

from foundation.barcsv import bundled_path, load_bars
from foundation.logs import merge_log_context
from protocol import DecisionReason, Side, Status

BARS = load_bars(bundled_path(), limit=400)


@pytest.fixture
async def harness(tmp_path: Path):
    """A brain and an executor on ephemeral loopback ports, buying on bar 10 and selling on bar 60."""
    h = await start_harness(tmp_path, BARS, ScriptedStrategy({10: Side.BUY, 60: Side.SELL}), slippage_bps=2.0)
    yield h
    h.close()


async def test_full_trade_cycle(harness) -> None:
    """A buy and a sell travel over UDP, fill at the next bar's open, and update both sides alike."""
    stats = await harness.brain.replay(BARS)
    tracker = harness.brain.core.tracker
    ledger = harness.executor.core.ledger
    assert stats.bars == len(BARS)
    assert stats.decisions_sent == 2 and stats.outcomes == {"FILLED": 2}
    (trade,) = tracker.closed_trades
    # Fills at the open of the bar after the signal bar, 2 bps against the trader (no look-ahead).
    assert trade.entry_price == pytest.approx(BARS.open[11] * (1 + 2e-4))
    assert trade.exit_price == pytest.approx(BARS.open[61] * (1 - 2e-4))
    assert trade.opened_at_ns == BARS.ts_ms[11] * 1_000_000
    assert trade.exit_reason is DecisionReason.SIGNAL
    assert tracker.position(INSTRUMENT) is None and ledger.position(INSTRUMENT) == 0
    assert tracker.cash == pytest.approx(ledger.cash, abs=1e-9)
    assert tracker.fees == pytest.approx(trade.fees) and trade.fees > 0
    m = harness.brain.metrics
    assert sample(m.positions_opened) == 1 and sample(m.positions_closed) == 1
    assert sample(m.outcomes, outcome="FILLED") == 2
    assert sample(m.latency) == 2
    assert sample(m.exits, reason="SIGNAL") == 1
    assert sample(m.pending) == 0 and sample(m.open_positions) == 0
    assert sample(m.position, instrument=str(INSTRUMENT)) == 0.0
    em = harness.executor.metrics
    assert sample(em.executions) == 2
    assert sample(em.position, instrument=str(INSTRUMENT)) == 0.0 and sample(em.open_positions) == 0
    assert sample(em.cash) == pytest.approx(ledger.cash) and sample(em.inflight) == 0


async def test_executor_gauges_read_the_ledger_while_a_position_is_open(harness) -> None:
    """The executor's cash, position, open-positions and in-flight gauges are read from the ledger
    when scraped (issue #17): mid-run, with the buy filled and the sell not yet sent, they show the
    open position and the cash it cost."""
    await harness.brain.replay(BARS.head(30))
    ledger, em = harness.executor.core.ledger, harness.executor.metrics
    held = ledger.position(INSTRUMENT)
    assert held > 0 and ledger.cash < harness.brain.core.tracker.starting_cash
    assert sample(em.position, instrument=str(INSTRUMENT)) == held and sample(em.open_positions) == 1
    assert sample(em.cash) == ledger.cash and sample(em.inflight) == 0


async def test_journals_record_the_cycle(harness, tmp_path: Path) -> None:
    """Both journals hold the decisions and confirmations, and the brain's rebuilds its tracker."""
    await harness.brain.replay(BARS)
    with sqlite3.connect(tmp_path / "executor.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM fills").fetchone()[0] == 2
        assert [r[0] for r in db.execute("SELECT seq FROM confirmations ORDER BY seq")] == [1, 2]
    from brain.tracker import PositionTracker

    rebuilt = PositionTracker(10_000.0, harness.brain.core.tracker.exit_rules)
    journal = harness.brain.journal
    history = journal.history()
    for conf in journal.confirmations():
        decision = history[conf.decision_id].decision
        rebuilt.apply(conf, decision.reason, decision=decision)
    assert rebuilt.cash == harness.brain.core.tracker.cash
    assert rebuilt.closed_trades == harness.brain.core.tracker.closed_trades


async def test_stop_loss_exit_over_udp(tmp_path: Path) -> None:
    """A position whose price falls through its stop is closed by a STOP_LOSS decision over UDP."""
    from brain.exits import ExitRules

    h = await start_harness(tmp_path, BARS, ScriptedStrategy({5: Side.BUY}), exit_rules=ExitRules(stop_loss_pct=0.2))
    try:
        await h.brain.replay(BARS)
        trades = h.brain.core.tracker.closed_trades
        assert trades and trades[0].exit_reason is DecisionReason.STOP_LOSS
        stop = trades[0].entry_price * (1 - 0.002)
        # The exit was decided on the first bar whose close fell to the stop, and filled at the next open.
        first = next(i for i in range(7, len(BARS)) if BARS.close[i] <= stop)
        assert trades[0].closed_at_ns == BARS.ts_ms[first + 1] * 1_000_000
    finally:
        h.close()


async def test_duplicate_decision_datagram_executes_once(harness) -> None:
    """Re-sending a decision's exact datagram is answered from the journal and never re-executed; a burst of
    copies gets one answer per 50 ms (the rest are counted and dropped before the journal is read)."""
    await harness.brain.replay(BARS.head(20))
    datagram = harness.brain.journal.datagram(1)
    await asyncio.sleep(0.06)  # past the answer interval of the original confirmation
    for _ in range(5):
        harness.brain.endpoint.send_raw(datagram)
    await asyncio.sleep(0.2)
    assert sample(harness.executor.metrics.executions) == 1
    assert sample(harness.executor.metrics.duplicates) == 5
    assert sample(harness.executor.metrics.duplicates_suppressed) == 4
    assert sample(harness.brain.metrics.duplicates) == 1
    harness.brain.endpoint.send_raw(datagram)  # after the interval: answered again
    await asyncio.sleep(0.2)
    assert sample(harness.brain.metrics.duplicates) == 2
    assert sample(harness.executor.metrics.executions) == 1
    assert len(harness.brain.core.tracker.positions) == 1


async def test_forged_datagram_is_dropped_and_counted(harness) -> None:
    """A datagram tagged with another secret is dropped, counted by reason, and changes nothing."""
    from protocol import PROTOCOL_VERSION, Codec, derive_key

    await harness.brain.replay(BARS.head(20))
    datagram = harness.brain.journal.datagram(1)
    other = Codec(derive_key(b"not-the-secret"))
    forged = other.encode(harness.codec.decode(datagram, time.time_ns()))
    before = harness.executor.core.ledger.cash
    harness.brain.endpoint.send_raw(forged)
    harness.brain.endpoint.send_raw(bytes((PROTOCOL_VERSION, 1)) + b"garbage")  # a decision of the wrong size
    await asyncio.sleep(0.2)
    assert sample(harness.executor.metrics.rejected, reason="auth") == 1
    assert sample(harness.executor.metrics.rejected, reason="size") == 1
    assert harness.executor.core.ledger.cash == before


async def test_decision_id_bound_on_every_line_of_its_path(harness) -> None:
    """Every log line about a decision, on both sides, carries its decision_id; the executor's
    also its clientOrderId, and every line from the confirmation on its seq (contextvars and the
    executor's LogContext, merged as configure_logging merges them)."""
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars, merge_log_context]) as logs:
        await harness.brain.replay(BARS)
    path_events = {"decision_sent", "confirmation_applied", "decision_executed", "decision_not_executed",
                   "decision_duplicates", "decision_retransmitted", "confirmation_duplicate"}  # fmt: skip
    lines = [e for e in logs if e["event"] in path_events]
    assert {e["event"] for e in lines} >= {"decision_sent", "confirmation_applied", "decision_executed"}
    assert all(isinstance(e.get("decision_id"), int) for e in lines)
    assert sorted({e["decision_id"] for e in lines}) == [1, 2]
    ids = harness.executor.core.ids
    for e in lines:
        if e["event"] != "decision_sent":  # numbered from here on
            assert isinstance(e.get("seq"), int) and e["seq"] >= 1, e
        if e["event"].startswith("decision_") and e["event"] != "decision_sent":  # the executor's lines
            assert e["client_order_id"] == ids.order(e["decision_id"]), e
    assert structlog.contextvars.get_contextvars() == {}  # nothing leaks past the decision


async def test_failed_confirmation_changes_nothing(tmp_path: Path) -> None:
    """A buy the venue refuses (insufficient funds) comes back REJECTED and opens nothing."""
    from brain.core import BrainConfig

    h = await start_harness(tmp_path, BARS, ScriptedStrategy({3: Side.BUY}))
    h.brain.core.config = BrainConfig(INSTRUMENT, entry_fraction=1.0)  # whole equity + fee > cash
    try:
        await h.brain.replay(BARS.head(10))
        assert h.brain.stats.outcomes == {Status.REJECTED.name: 1}
        assert h.brain.core.tracker.positions == {} and h.brain.core.tracker.cash == 10_000.0
        assert h.executor.core.ledger.cash == 10_000.0
    finally:
        h.close()


async def test_handler_failure_is_counted_and_the_endpoint_keeps_serving(harness) -> None:
    """A decision whose handling fails (the journal is gone) is counted and logged; the executor's
    socket stays open and nothing was executed, so the brain's retransmits can succeed later."""
    journal = harness.executor.core.journal
    journal.close()  # every journal access now raises JournalError...
    journal._max_decision_id = 1 << 62  # ...including the admission's lookup, which new ids otherwise skip
    task = asyncio.create_task(harness.brain.replay(BARS))
    try:
        deadline = asyncio.get_running_loop().time() + 5
        while sample(harness.executor.metrics.handler_errors) < 2:  # first send and a retransmit
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        assert not harness.executor.endpoint.transport.is_closing()
        assert sample(harness.executor.metrics.executions) == 0
        assert harness.brain.core.pending  # still awaiting: nothing was confirmed or applied
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_equity_curve_gauges_and_progress_follow_the_replay(harness) -> None:
    """One equity point per bar, ending at the tracker's equity with the position it held; the
    gauges show the last bar; the paced replay reports its progress and takes its time."""
    from brain.app import Pacing

    seen: list[tuple[int, int]] = []
    harness.brain.pacing = Pacing(bars_per_s=2_000, progress_interval_s=0.05)
    harness.brain.on_progress = lambda done, total: seen.append((done, total))
    started = time.perf_counter()
    stats = await harness.brain.replay(BARS)
    elapsed = time.perf_counter() - started
    assert elapsed >= (len(BARS) - 1) / 2_000  # paced: 400 bars at 2,000/s take at least ~0.2 s
    curve, tracker, m = stats.equity_curve, harness.brain.core.tracker, harness.brain.metrics
    assert len(curve) == len(BARS)
    assert [p.close for p in curve] == list(BARS.close)
    assert [p.close_ns for p in curve] == [BARS.close_ns(i) for i in range(len(BARS))]
    assert curve[-1].equity == pytest.approx(tracker.equity())
    assert max(p.drawdown_pct for p in curve) == pytest.approx(stats.max_drawdown_pct)
    held = [i for i, p in enumerate(curve) if p.position > 0]
    # lockstep: the buy decided on bar 10 is confirmed (filled at bar 11's open) before bar 10 ends
    assert held == list(range(10, 60))
    assert sample(m.bars) == len(BARS) and sample(m.replay_bars) == len(BARS)
    assert sample(m.market_time) == BARS.close_ns(len(BARS) - 1) / 1e9
    assert sample(m.equity) == pytest.approx(tracker.equity())
    assert sample(m.drawdown) == pytest.approx(curve[-1].drawdown_pct / 100)
    assert seen[0] == (0, len(BARS)) and seen[-1] == (len(BARS), len(BARS)) and len(seen) >= 3
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))


async def test_brain_sending_to_a_stale_address_recovers_when_the_executor_restarts(harness) -> None:
    """The executor's container restarted at a new address: its heartbeats (new incarnation) reach
    the brain, which still sends to the old address. Seeing the restart, the brain resolves the
    executor's name again and its decisions arrive; the replay completes with both trades."""
    import secrets
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:
        gone.bind(("127.0.0.1", 0))
        stale = gone.getsockname()[:2]
    brain, executor = harness.brain, harness.executor
    real = brain.endpoint.peer
    brain.endpoint.peer = stale  # what the name resolved to before the restart
    executor.link.incarnation = secrets.randbits(64)  # what a restarted executor announces
    stats = await asyncio.wait_for(brain.replay(BARS), 20)
    assert brain.endpoint.peer == real
    assert brain.link.stats.peer_restarts == 1
    assert stats.outcomes == {"FILLED": 2}


async def test_paced_replay_does_not_burst_to_catch_up_after_a_pause(harness) -> None:
    """At 200 bars/s, confirmations held back for 1.5 s on bar 10 pause the replay; after it the
    pace stays 200 bars/s (the remaining 389 bars take ~1.95 s) instead of replaying the lost 1.5 s
    (300 bars) at once."""
    from brain.app import Pacing

    brain, executor = harness.brain, harness.executor
    brain_addr = executor.endpoint.peer
    executor.endpoint.peer = ("127.0.0.1", 9)  # confirmations and heartbeats lost for now
    loop = asyncio.get_running_loop()
    loop.call_later(1.5, lambda: setattr(executor.endpoint, "peer", brain_addr))
    brain.pacing = Pacing(bars_per_s=200)
    started = time.perf_counter()
    stats = await brain.replay(BARS)
    elapsed = time.perf_counter() - started
    assert stats.outcomes == {"FILLED": 2}
    # 10 bars (0.05 s) + the 1.5 s pause + 389 bars at 200/s (1.95 s); a burst would end near 2.0 s
    assert elapsed >= 3.2, elapsed
