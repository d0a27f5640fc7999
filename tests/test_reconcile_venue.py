"""Reconciliation and the belief controller on the local Binance (issue #14 §5), with a second,
independent ccxt client acting as a person on the same account.

The rig runs the production apps: an :class:`~executor.app.ExecutorApp` with its
:class:`~executor.reconciler.Reconciler` trading USDⓈ-M through the real ccxt client, and a
:class:`~brain.app.BrainApp` over loopback UDP that learns every correction only through a
confirmation. Each scenario ends with the four-way agreement the ccxt tests use — the exchange,
the ledger and the brain hold the same position, one open stop of ours covers it (none when flat),
no duplicate order — and the mode sequence it should produce.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt
import pytest
import structlog
import structlog.testing

from brain.app import BrainApp
from brain.core import BrainConfig, BrainCore
from brain.exits import ExitRules
from brain.journal import BrainJournal
from brain.metrics import BrainMetrics
from brain.risk import BreakerRules, CircuitBreakers
from brain.tracker import PositionTracker
from executor.app import ExecutorApp
from executor.belief import DebtRules
from executor.controller import ControllerRules, Mode
from executor.core import ExecutorCore
from executor.metrics import ExecutorMetrics
from executor.orders import OrderOps
from executor.reconcile import ReconcileRules
from executor.reconciler import Reconciler
from executor.venue.ccxt_venue import CcxtVenue
from executor.venue.retry import RetryPolicy
from foundation.barcsv import bundled_path, load_bars
from foundation.bars import Bars
from protocol import (
    RECONCILE_ID_BASE,
    Codec,
    DecisionReason,
    Instrument,
    Intent,
    RejectCode,
    Side,
    Status,
    TradeDecision,
    derive_key,
)
from testbed.emulator import BinanceEmulator, Fault

KEY, SECRET = "reconcile-key", "reconcile-secret"
CASH = 10_000.0
USDM = "BTC/USDT:USDT"
INST = Instrument.symbol(USDM)
BARS: Bars = load_bars(bundled_path(), limit=300)
START = 40  # the market stands at this bar


class Silent:
    """A strategy that never signals: the brain here only applies what the executor confirms."""

    def on_bar(self, bar: Any) -> None:
        return None


@dataclass
class Rig:
    emu: BinanceEmulator
    core: ExecutorCore
    reconciler: Reconciler
    executor: ExecutorApp
    brain: BrainApp
    person: Any  # an independent ccxt client on the same account
    path: Path

    def exchange(self) -> dict[str, Any]:
        return self.emu.state()["accounts"][KEY]["usdm"]

    def modes(self) -> list[str]:
        """The controller's mode sequence so far, from GREEN."""
        return ["GREEN", *(t.after.name for t in self.reconciler.controller.history)]

    async def until(self, what: Callable[[], bool], timeout_s: float = 20.0, why: str = "") -> None:
        deadline = time.monotonic() + timeout_s
        while not what():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {why or what}; modes {self.modes()}")
            await asyncio.sleep(0.05)

    def agree(self, qty: float) -> None:
        """Four-way agreement: exchange = ledger = brain = ``qty`` (signed: < 0 a short); one stop of ours,
        on the closing side, covers it."""
        st = self.exchange()
        venue_qty = float(st["positions"].get("BTCUSDT", {}).get("positionAmt", 0.0))
        ledger_qty = self.core.ledger.position(INST)
        brain_pos = self.brain.core.tracker.position(INST)
        brain_qty = brain_pos.signed_quantity if brain_pos is not None else 0.0
        assert venue_qty == pytest.approx(qty, abs=1e-9) and ledger_qty == pytest.approx(qty, abs=1e-9), (venue_qty, ledger_qty)
        assert brain_qty == pytest.approx(qty, abs=1e-9), brain_qty
        stops = [a for a in st["algo_orders"] if a["algoStatus"] == "NEW" and a["clientAlgoId"].startswith("td")]
        if qty:
            assert len(stops) == 1, stops
            assert float(stops[0]["quantity"]) == pytest.approx(abs(qty), abs=1e-9)
            assert stops[0]["side"] == ("SELL" if qty > 0 else "BUY"), stops  # the closing side
        else:
            assert stops == [], stops
        ids = Counter(a["clientAlgoId"] for a in st["algo_orders"]) + Counter(
            o["clientOrderId"] for o in st["orders"] if o["clientOrderId"].startswith("td"))  # fmt: skip
        assert all(n == 1 for n in ids.values()), ids


async def _start_executor(emu: BinanceEmulator, path: Path, run_dir: Path, brain_addr: tuple[str, int],
                          codec: Codec, *, interval_s: float = 0.3, debt_ref_s: float = 10.0,
                          burst_per_min: float = 9.0) -> tuple[ExecutorCore, Reconciler, ExecutorApp]:  # fmt: skip
    config = emu.ccxt_config("usdm", KEY, SECRET, timeout_ms=1_000)
    # live semantics: no replay clock — the market stands where the test put it, whatever the orders' times
    venue = CcxtVenue("binanceusdm", config, session=config["session"], recv_window_ms=500, ambiguity_margin_s=0.2)
    ops = OrderOps(venue, RetryPolicy(attempts=3, deadline_s=2.0, base_s=0.02, cap_s=0.1), absent_checks=2,
                   absent_gap_s=0.05, poll_s=0.05, fill_timeout_s=1.5)  # fmt: skip
    core = await ExecutorCore.open(path, venue, CASH, ops=ops)
    metrics = ExecutorMetrics()
    reconciler = Reconciler(
        core, [USDM], run_dir=run_dir, metrics=metrics,
        rules=ReconcileRules(phantom_grace_s=1.0, phantom_misses=2, repair_cooldown_s=1.0),
        debt_rules=DebtRules(debt_ref_s=debt_ref_s),
        controller_rules=ControllerRules(persistence_s=3.0, recovery_s=3.0, burst_per_min=burst_per_min),
    )  # fmt: skip
    app = ExecutorApp(core, codec, metrics, ("127.0.0.1", 0), brain_addr, reconciler=reconciler,
                      reconcile_interval_s=interval_s, maintenance_s=60.0)  # fmt: skip
    await app.start()
    return core, reconciler, app


async def _start_brain(tmp: Path, codec: Codec) -> BrainApp:
    journal = BrainJournal(tmp / "brain.sqlite", instrument=USDM, starting_cash=CASH)
    core = BrainCore(BrainConfig(INST, exchange_stops=True), Silent(), PositionTracker(CASH, ExitRules()),
                     CircuitBreakers(BreakerRules()), itertools.count(1).__next__)  # fmt: skip
    brain = BrainApp(core, codec, journal, BrainMetrics(), ("127.0.0.1", 0), ("127.0.0.1", 9))
    await brain.start()
    return brain


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with BinanceEmulator(BARS) as emu:
        emu.create_account(KEY, SECRET, usdm_usdt=str(CASH))
        emu.advance_to(BARS.ts_ms[START])
        codec = Codec(derive_key(b"reconcile-test-secret-32-bytes!!"))
        brain = await _start_brain(tmp_path, codec)
        core, reconciler, executor = await _start_executor(emu, tmp_path / "executor.sqlite", tmp_path,
                                                           brain.address, codec)  # fmt: skip
        assert brain.endpoint is not None
        brain.endpoint.peer = brain.endpoint.peer_name = brain.decision_peer = executor.address
        person = ccxt.binanceusdm(emu.ccxt_config("usdm", KEY, SECRET, timeout_ms=2_000))
        await person.load_markets()
        r = Rig(emu, core, reconciler, executor, brain, person, tmp_path / "executor.sqlite")
        try:
            yield r
        finally:
            await person.close()
            brain.close()
            r.executor.close()  # the current ones: a test that restarts the executor closed the first itself
            brain.journal.close()
            await r.core.aclose()


_ids = itertools.count(1)


def _report(scenario: str, since: float, rig: Rig) -> None:
    """One line for the closing note (shown with ``pytest -s``): the scenario, the time from the
    fault to its correction, and the mode timeline so far."""
    print(f"\nRECONCILE {scenario}: {time.monotonic() - since:.2f} s; modes {' -> '.join(rig.modes())}")


def _decision(side: Side, intent: Intent, qty: float, *, stop: float = 0.0) -> TradeDecision:
    ref = BARS.close[START - 1]
    now = time.time_ns()
    return TradeDecision(decision_id=next(_ids), instrument=INST, side=side, intent=intent, reason=DecisionReason.SIGNAL,
                         quantity=qty, reference_price=ref, max_slippage_bps=10_000, created_at_ns=now,
                         expires_at_ns=now + 30_000_000_000, market_ts_ns=BARS.ts_ms[START] * 1_000_000,
                         stop_price=stop)  # fmt: skip


async def _decide(r: Rig, d: TradeDecision) -> Any:
    """Hand ``d`` to the executor as its link would, and wait for its journaled confirmation."""
    r.executor.on_decision(d, time.time_ns())
    await r.until(lambda: r.core.journal.confirmation_for(d.decision_id) is not None, why=f"decision {d.decision_id}")
    return r.core.journal.confirmation_for(d.decision_id)


async def test_a_manual_market_buy_is_adopted_stopped_and_confirmed_to_the_brain(rig: Rig) -> None:
    """A person buys by hand: the next cycle adopts the position (a reconciled fill in the ledger,
    a RECONCILED confirmation the brain applies with an exit plan), places its stop at once, and the
    mode stays GREEN."""
    fault = time.monotonic()
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await rig.person.create_order(USDM, "market", "buy", 0.02)
        await rig.until(lambda: rig.core.ledger.position(INST) > 0, why="adoption")
        _report("hand buy adopted", fault, rig)
        await rig.until(lambda: any(e["event"] == "reconcile.summary" and e["corrections"] for e in logs),
                        why="the adopting cycle's summary")  # fmt: skip
    # One correlation id ties the adoption to its cycle's summary, which names the decision id.
    [adopt_log] = [e for e in logs if e["event"] == "reconcile_adopt"]
    [summary] = [e for e in logs if e["event"] == "reconcile.summary" and e["corrections"] == ["Adopt"]]
    assert adopt_log["reconcile_cycle"] == summary["reconcile_cycle"]
    assert summary["decision_ids"] == [adopt_log["decision_id"]]
    await rig.until(lambda: rig.brain.core.tracker.position(INST) is not None, why="the brain to apply it")
    [adopted] = [c for c in rig.core.journal.confirmations_from(1) if c.reconciled]
    assert adopted.decision_id > RECONCILE_ID_BASE and (adopted.side, adopted.intent) == (Side.BUY, Intent.OPEN)
    assert rig.brain.core.tracker.position(INST).plan.stop_price > 0  # the plan, in the same step
    await rig.until(lambda: not rig.reconciler.last.plan.mismatches, why="a clean cycle")
    rig.agree(0.02)
    audit = [a["kind"] for a in rig.core.journal.reconciliations()]
    assert audit == ["adopt"], audit
    assert rig.modes() == ["GREEN"]


async def test_a_hand_short_is_adopted_with_a_buy_stop_and_a_hand_flip_is_cleared_then_adopted(rig: Rig) -> None:
    """Issue #16: a person sells short by hand on an executor that opens no shorts itself — the venue is
    the truth: the short is adopted (RECONCILED OPEN/SELL), protected at once by a reduce-only BUY stop
    above its entry, and the brain holds a short with its plan. Then the person buys twice its size:
    the venue is long; reconciliation clears the short and adopts the long (two confirmations, never
    netted), and the BUY stop gives way to one SELL stop."""
    fault = time.monotonic()
    await rig.person.create_order(USDM, "market", "sell", 0.02)
    await rig.until(lambda: rig.core.ledger.position(INST) < 0, why="the short adopted")
    _report("hand short adopted", fault, rig)
    await rig.until(lambda: rig.brain.core.tracker.position(INST) is not None, why="the brain to apply it")
    short = rig.brain.core.tracker.position(INST)
    assert short.short and short.plan.stop_price > short.avg_entry_price  # its stop above, in the same step
    await rig.until(lambda: not rig.reconciler.last.plan.mismatches, why="a clean cycle")
    rig.agree(-0.02)
    flipped = time.monotonic()
    await rig.person.create_order(USDM, "market", "buy", 0.04)
    await rig.until(lambda: rig.core.ledger.position(INST) > 0, why="the flip reconciled")
    _report("hand flip to a long: short cleared, long adopted", flipped, rig)
    await rig.until(lambda: (p := rig.brain.core.tracker.position(INST)) is not None and not p.short,
                    why="the brain to hold the long")  # fmt: skip
    legs = [(c.intent, c.side, c.executed_qty) for c in rig.core.journal.confirmations_from(1) if c.reconciled]
    assert legs[0] == (Intent.OPEN, Side.SELL, pytest.approx(0.02))
    assert (Intent.CLOSE, Side.BUY, pytest.approx(0.02)) in legs and legs[-1] == (Intent.OPEN, Side.BUY,
                                                                                    pytest.approx(0.02))  # fmt: skip
    await rig.until(lambda: not rig.reconciler.last.plan.mismatches, why="a clean cycle after the flip")
    rig.agree(0.02)
    assert rig.brain.core.tracker.anomalies == 0


async def test_a_stop_cancelled_by_hand_is_repaired_once(rig: Rig) -> None:
    """An entry through tandem, then the person cancels its stop: one repair puts it back."""
    await _decide(rig, _decision(Side.BUY, Intent.OPEN, 0.02, stop=BARS.close[START - 1] * 0.92))
    await rig.until(lambda: rig.brain.core.tracker.position(INST) is not None)
    [stop] = [a for a in rig.exchange()["algo_orders"] if a["algoStatus"] == "NEW"]
    fault = time.monotonic()
    await rig.person.cancel_order(None, USDM, {"clientAlgoId": stop["clientAlgoId"], "trigger": True})
    await rig.until(lambda: any(a["kind"] == "stop_placed" for a in rig.core.journal.reconciliations()), why="repair")
    _report("stop cancelled by hand, repaired", fault, rig)
    await rig.until(lambda: not rig.reconciler.last.plan.mismatches, why="a clean cycle")
    await asyncio.sleep(1.0)  # more cycles: no second repair
    rig.agree(0.02)
    assert [a["kind"] for a in rig.core.journal.reconciliations()] == ["stop_placed"]
    assert rig.modes() == ["GREEN"]


async def test_a_position_closed_by_hand_is_cleared_after_the_grace_and_the_brain_told(rig: Rig) -> None:
    """The person closes the position (and its stop): the ledger keeps it through the grace period
    and the misses, then clears it; the brain learns it by a RECONCILED close."""
    await _decide(rig, _decision(Side.BUY, Intent.OPEN, 0.02, stop=BARS.close[START - 1] * 0.92))
    await rig.until(lambda: rig.brain.core.tracker.position(INST) is not None)
    for algo in [a for a in rig.exchange()["algo_orders"] if a["algoStatus"] == "NEW"]:
        await rig.person.cancel_order(None, USDM, {"clientAlgoId": algo["clientAlgoId"], "trigger": True})
    gone_at = time.monotonic()
    await rig.person.create_order(USDM, "market", "sell", 0.02, None, {"reduceOnly": True})
    await rig.until(lambda: rig.core.ledger.position(INST) == 0, why="the phantom cleared")
    assert time.monotonic() - gone_at >= 1.0  # not before the grace period
    _report("position closed by hand, phantom cleared (grace 1 s, 2 misses)", gone_at, rig)
    await rig.until(lambda: rig.brain.core.tracker.position(INST) is None, why="the brain told")
    [cleared] = [c for c in rig.core.journal.confirmations_from(1) if c.reconciled]
    assert (cleared.side, cleared.intent) == (Side.SELL, Intent.CLOSE)
    trade = rig.brain.core.tracker.closed_trades[-1]
    assert trade.exit_reason is DecisionReason.MANUAL
    await rig.until(lambda: not rig.reconciler.last.plan.mismatches, why="a clean cycle")
    rig.agree(0.0)
    assert rig.modes() == ["GREEN"]


async def test_endpoints_failing_30s_escalate_entries_refused_exits_and_protect_execute_then_steps_down(rig: Rig) -> None:
    """Every endpoint failing for 30 s: the debt grows (failed fetches are never "all fine") and the
    mode climbs; back up, the mode is still high for its recovery window: an entry is refused
    (REJECTED / BELIEF_GUARD) while an exit and a PROTECT execute; then the mode steps down one
    level at a time, with hysteresis, to GREEN — and the brain learned each mode from heartbeats."""
    await _restart_reconciler(rig, interval_s=1.0, debt_ref_s=20.0, burst_per_min=60.0)  # a slow climb, no burst
    await _decide(rig, _decision(Side.BUY, Intent.OPEN, 0.04, stop=BARS.close[START - 1] * 0.92))
    await rig.until(lambda: rig.brain.core.tracker.position(INST) is not None)
    fault = time.monotonic()
    rig.emu.install_faults(Fault("http_5xx", count=1_000_000, status=503))
    await asyncio.sleep(30.0)
    rig.emu.faults.clear()
    back = time.monotonic()
    escalated = rig.reconciler.controller.mode
    assert Mode.ORANGE <= escalated < Mode.RED, rig.modes()  # climbed, below the kill switch
    assert rig.executor.link.posture.entries_allowed is False
    await rig.until(lambda: rig.brain.link.executor_posture is not None
                    and rig.brain.link.executor_posture.mode >= 3, why="the brain to learn it")  # fmt: skip
    entry = await _decide(rig, _decision(Side.BUY, Intent.OPEN, 0.01, stop=BARS.close[START - 1] * 0.92))
    assert (entry.status, entry.reject_code) == (Status.REJECTED, RejectCode.BELIEF_GUARD)
    protect = await _decide(rig, _decision(Side.SELL, Intent.PROTECT, 0.04, stop=BARS.close[START - 1] * 0.95))
    assert protect.status is Status.ACCEPTED, protect
    reduce = await _decide(rig, _decision(Side.SELL, Intent.REDUCE, 0.02))
    assert reduce.status is Status.FILLED, reduce
    await rig.until(lambda: rig.reconciler.controller.mode is Mode.GREEN, timeout_s=30.0, why="recovery")
    _report(f"30 s outage (back after {back - fault:.1f} s), GREEN again", fault, rig)
    modes = rig.modes()
    climb, fall = modes[: modes.index(escalated.name) + 1], modes[modes.index(escalated.name):]
    assert [Mode[m] for m in climb] == sorted(Mode[m] for m in climb), modes
    assert [Mode[m] for m in fall] == sorted((Mode[m] for m in fall), reverse=True), modes
    assert all(Mode[a] - Mode[b] == 1 for a, b in itertools.pairwise(fall)), f"one level at a time: {modes}"
    times = [t.at_ns for t in rig.reconciler.controller.history if t.after < t.before]
    assert all(b - a >= 3e9 for a, b in itertools.pairwise(times)), "a recovery window between steps"
    await rig.until(lambda: not rig.reconciler.last.plan.mismatches, why="a clean cycle")
    rig.agree(0.02)
    await rig.until(lambda: rig.brain.link.executor_posture.mode == 1, why="GREEN again in the heartbeats")


async def _restart_reconciler(rig: Rig, **kw: Any) -> None:
    """The executor again on the same journal, with other reconcile timings."""
    rig.executor.close()
    await rig.core.aclose()
    rig.core, rig.reconciler, rig.executor = await _start_executor(rig.emu, rig.path, rig.path.parent, rig.brain.address,
                                                                   rig.executor.codec, **kw)  # fmt: skip
    assert rig.brain.endpoint is not None
    rig.brain.endpoint.peer = rig.brain.endpoint.peer_name = rig.brain.decision_peer = rig.executor.address


async def test_a_burst_trips_red_and_the_kill_switch_until_the_operator_clears_it(rig: Rig, tmp_path: Path) -> None:
    """Evidence failing every cycle is a growth burst: RED at once, and the kill switch latches —
    entries refused, an exit executes — and it stays on after the venue is back, until the
    operator's ``tandem killswitch clear``; the executor journals, logs and counts the clear."""
    await _decide(rig, _decision(Side.BUY, Intent.OPEN, 0.02, stop=BARS.close[START - 1] * 0.92))
    fault = time.monotonic()
    rig.emu.install_faults(Fault("http_5xx", count=1_000_000, status=503))
    await rig.until(lambda: rig.reconciler.controller.kill_switch, why="the kill switch")
    _report("evidence failing: burst to RED, kill switch", fault, rig)
    rig.emu.faults.clear()
    assert rig.modes()[-1] == "RED" and rig.executor.link.posture.kill_switch
    await rig.until(lambda: not rig.reconciler.last.plan.mismatches, why="the venue back")
    await asyncio.sleep(1.0)
    assert rig.reconciler.controller.kill_switch, "the kill switch cleared itself"
    refused = await _decide(rig, _decision(Side.BUY, Intent.OPEN, 0.01))
    assert (refused.status, refused.reject_code) == (Status.REJECTED, RejectCode.BELIEF_GUARD)
    closed = await _decide(rig, _decision(Side.SELL, Intent.CLOSE, 0.02))
    assert closed.status is Status.FILLED
    proc = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "tandem.cli", "killswitch", "clear", "--run-dir",
                                 str(tmp_path)], check=False, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    asked = time.monotonic()
    await rig.until(lambda: not rig.reconciler.controller.kill_switch, why="the clear taken")
    _report("tandem killswitch clear taken", asked, rig)
    assert not (tmp_path / "kill-switch.clear").exists()
    assert [a["kind"] for a in rig.core.journal.reconciliations() if a["kind"].startswith("kill")] == ["kill_switch_cleared"]
    assert rig.reconciler.metrics.kill_switch_clears._value.get() == 1
    status = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "tandem.cli", "killswitch", "status",
                                   "--run-dir", str(tmp_path)], check=False, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert status.returncode == 0 and '"kill_switch": false' in status.stdout, status.stdout + status.stderr
    await rig.until(lambda: rig.reconciler.controller.mode is Mode.GREEN, timeout_s=30.0, why="recovery after the clear")
    rig.agree(0.0)


async def test_a_restarted_executor_whose_journal_was_deleted_adopts_the_position_at_start(rig: Rig, tmp_path: Path) -> None:
    """A position open, the executor stopped and its journal deleted: the new executor's first cycle
    adopts the position, keeps one stop covering it (the old journal's stop is tandem's), and
    journals the adoption — before any decision is executed."""
    await _decide(rig, _decision(Side.BUY, Intent.OPEN, 0.03, stop=BARS.close[START - 1] * 0.92))
    await rig.until(lambda: rig.brain.core.tracker.position(INST) is not None)
    rig.executor.close()
    await rig.core.aclose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{rig.path}{suffix}").unlink(missing_ok=True)
    codec = rig.executor.codec
    started = time.monotonic()
    core, reconciler, executor = await _start_executor(rig.emu, tmp_path / "executor.sqlite", tmp_path,
                                                       rig.brain.address, codec)  # fmt: skip
    rig.core, rig.reconciler, rig.executor = core, reconciler, executor
    await rig.until(lambda: core.ledger.position(INST) > 0, why="adoption at start")
    _report("journal deleted, restarted: adopted at start", started, rig)
    [adopted] = [c for c in core.journal.confirmations_from(1) if c.reconciled]
    assert adopted.seq == 1 and adopted.executed_qty == pytest.approx(0.03)
    await rig.until(lambda: not reconciler.last.plan.mismatches, why="a clean cycle")
    st = rig.exchange()
    stops = [a for a in st["algo_orders"] if a["algoStatus"] == "NEW"]
    assert len(stops) == 1 and float(stops[0]["quantity"]) == pytest.approx(0.03), stops
    assert float(st["positions"]["BTCUSDT"]["positionAmt"]) == pytest.approx(core.ledger.position(INST))
    assert rig.modes() == ["GREEN"]
