"""Issue #10 §7: a slow exchange and ``EXPIRED_UNCONFIRMED``, on the local Binance exchange.

The executor is still executing a decision — the exchange accepted the order NEW and fills it 3 s
later — when its heartbeats, stamped after the decision's 1 s expiry, reach the brain. Under the
v2 rule (a heartbeat stamped after the expiry, with every confirmation applied) the brain would
have resolved the decision as never executed while the order was about to fill. The v3 heartbeat
carries the executor's count of decisions in flight, and the brain resolves nothing while it is
above 0 (SPEC.md §10.1). Real parts: the production brain and executor apps over loopback UDP, the
executor trading through the real ccxt client against the emulator over HTTPS.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from harness import SECRET, ScriptedStrategy
from test_ccxt_venue import KEY, USDM, open_core
from test_ccxt_venue import SECRET as API_SECRET

from brain.app import EXPIRED_UNCONFIRMED, BrainApp
from brain.core import BrainConfig, BrainCore
from brain.exits import ExitRules
from brain.journal import BrainJournal
from brain.metrics import BrainMetrics
from brain.risk import BreakerRules, CircuitBreakers
from brain.tracker import PositionTracker
from executor.app import ExecutorApp
from executor.metrics import ExecutorMetrics
from foundation.barcsv import bundled_path, load_bars
from protocol import Codec, Instrument, Side, Status, derive_key
from testbed.emulator import BinanceEmulator, Fault

TTL_S = 1.0
FILL_DELAY_S = 3.0


async def test_brain_never_resolves_a_decision_the_executor_still_executes(tmp_path: Path) -> None:
    """The entry's order fills 3 s after it was placed, 2 s past the decision's expiry: the brain sees
    executor heartbeats stamped after the expiry reporting it in flight, resolves nothing, and applies
    the FILLED confirmation once — one outcome for one decision, no EXPIRED_UNCONFIRMED."""
    bars = load_bars(bundled_path(), limit=40)
    inst = Instrument.symbol(USDM)
    codec = Codec(derive_key(SECRET))
    async with BinanceEmulator(bars) as emu:
        emu.create_account(KEY, API_SECRET, usdm_usdt="10000")
        emu.install_faults(Fault("delayed_fill", "order_create", seconds=FILL_DELAY_S))
        core = await open_core(emu, tmp_path / "executor.sqlite")
        core.ops.fill_timeout_s = 10.0  # poll until the delayed fill lands (default 10 s)
        journal = BrainJournal(tmp_path / "brain.sqlite", instrument=USDM, starting_cash=10_000.0)
        brain_core = BrainCore(
            BrainConfig(inst, decision_ttl_ns=int(TTL_S * 1e9), max_slippage_bps=10_000),
            ScriptedStrategy({10: Side.BUY}), PositionTracker(10_000.0, ExitRules()), CircuitBreakers(BreakerRules()),
            itertools.count(1).__next__,
        )  # fmt: skip
        brain = BrainApp(brain_core, codec, journal, BrainMetrics(), ("127.0.0.1", 0), ("127.0.0.1", 9))
        await brain.start()
        executor = ExecutorApp(core, codec, ExecutorMetrics(), ("127.0.0.1", 0), brain.address, heartbeat_s=0.1)
        await executor.start()
        assert brain.endpoint is not None
        brain.endpoint.peer = brain.endpoint.peer_name = brain.decision_peer = executor.address
        seen_in_flight_after_expiry: list[int] = []
        on_link_event = brain._on_link_event

        def watch(ready: list, now: int) -> None:  # record what the brain learnt before acting on it
            for d in brain.core.pending.values():
                if brain.link.peer_heartbeat_sent_ns > d.expires_at_ns and brain.link.peer_in_flight:
                    seen_in_flight_after_expiry.append(brain.link.peer_in_flight)
            on_link_event(ready, now)

        brain._on_link_event = watch  # type: ignore[method-assign]
        started = time.monotonic()
        try:
            stats = await brain.replay(bars.head(30))
            confirmed = core.journal.confirmation_for(1)
        finally:
            brain.close()
            executor.close()
            await core.aclose()
        elapsed = time.monotonic() - started
    assert emu.faults.applied["delayed_fill"] == 1
    assert elapsed >= FILL_DELAY_S - 0.5, "the order did not stay in flight past the decision's expiry"
    assert seen_in_flight_after_expiry, "no heartbeat stamped after the expiry reported the decision in flight"
    assert dict(stats.outcomes) == {"FILLED": 1}, stats.outcomes
    assert EXPIRED_UNCONFIRMED not in stats.outcomes
    assert brain.core.tracker.position(inst) is not None
    rows = journal._db.execute("SELECT COUNT(*) FROM resolutions").fetchone()[0]
    assert rows == 0, "the brain journaled a resolution for a decision the executor executed"
    assert confirmed is not None and confirmed.status is Status.FILLED
    journal.close()
