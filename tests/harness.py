"""Loopback UDP harness: a real executor endpoint and a real brain endpoint in one process.

Both apps are the production classes (``ExecutorApp``, ``BrainApp``) with real SQLite journals in
a temporary folder, real UDP sockets on ephemeral 127.0.0.1 ports and the real codec; only the
process boundary is missing (``tests/test_paper_cli.py`` covers that).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brain.app import BrainApp
from brain.core import BrainConfig, BrainCore
from brain.exits import ExitRules
from brain.journal import BrainJournal
from brain.metrics import BrainMetrics
from brain.risk import BreakerRules, CircuitBreakers
from brain.tracker import PositionTracker
from executor.app import ExecutorApp
from executor.core import ExecutorCore
from executor.metrics import ExecutorMetrics
from executor.paper import PaperVenue
from protocol import Codec, Instrument, derive_key
from tandem.marketdata import Bars

SECRET = b"harness-secret-harness-secret-32"
INSTRUMENT = Instrument.symbol("BTC-PERP")


@dataclass
class Harness:
    brain: BrainApp
    executor: ExecutorApp
    codec: Codec

    def close(self) -> None:
        self.brain.close()
        self.executor.close()
        self.brain.journal.close()
        self.executor.core.close()


async def start_harness(
    tmp: Path,
    bars: Bars,
    strategy: Any,
    *,
    starting_cash: float = 10_000.0,
    exit_rules: ExitRules | None = None,
    breaker_rules: BreakerRules | None = None,
    fee_bps: float = 10.0,
    slippage_bps: float = 0.0,
) -> Harness:
    """Start an executor and a brain on ephemeral loopback ports, wired to each other."""
    codec = Codec(derive_key(SECRET))
    core = ExecutorCore.open(tmp / "executor.sqlite", PaperVenue(bars, instrument=INSTRUMENT, fee_bps=fee_bps,
                             slippage_bps=slippage_bps), starting_cash)  # fmt: skip
    journal = BrainJournal(tmp / "brain.sqlite", instrument=str(INSTRUMENT), starting_cash=starting_cash)
    ids = itertools.count(1)
    brain_core = BrainCore(
        BrainConfig(INSTRUMENT),
        strategy,
        PositionTracker(starting_cash, exit_rules or ExitRules()),
        CircuitBreakers(breaker_rules or BreakerRules()),
        ids.__next__,
    )
    brain = BrainApp(brain_core, codec, journal, BrainMetrics(), ("127.0.0.1", 0), ("127.0.0.1", 0))
    await brain.start()
    executor = ExecutorApp(core, codec, ExecutorMetrics(), ("127.0.0.1", 0), brain.address)
    assert brain.endpoint is not None
    brain.endpoint.peer = ("127.0.0.1", 0)  # placeholder until the executor is bound
    await executor.start()
    brain.endpoint.peer = executor.address
    brain.decision_peer = executor.address
    return Harness(brain, executor, codec)


class ScriptedStrategy:
    """Emits a programmed signal on given bar numbers (0-based count of on_bar calls)."""

    def __init__(self, script: dict[int, Any]) -> None:
        self.script = script
        self.n = -1

    def on_bar(self, bar: Any) -> Any:
        self.n += 1
        return self.script.get(self.n)


def sample(metric: Any, **labels: str) -> float:
    """Current value of a prometheus-client metric (with these labels)."""
    target = metric.labels(**labels) if labels else metric
    for fam in target.collect():
        for s in fam.samples:
            if s.name.endswith(("_total", "_count")) or s.name == fam.name:
                return s.value
    raise AssertionError(f"no sample for {metric}")
