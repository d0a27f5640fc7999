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
from protocol.udp import Address
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


async def start_executor(
    tmp: Path, bars: Bars, codec: Codec, brain_addr: Address, *, bind: Address = ("127.0.0.1", 0),
    starting_cash: float = 10_000.0, fee_bps: float = 10.0, slippage_bps: float = 0.0,
) -> ExecutorApp:  # fmt: skip
    """A real executor on ``bind`` with its journal in ``tmp`` (reopened if it exists)."""
    venue = PaperVenue(bars, instrument=INSTRUMENT, fee_bps=fee_bps, slippage_bps=slippage_bps)
    core = ExecutorCore.open(tmp / "executor.sqlite", venue, starting_cash)
    executor = ExecutorApp(core, codec, ExecutorMetrics(), bind, brain_addr)
    await executor.start()
    return executor


async def start_brain(
    tmp: Path, strategy: Any, codec: Codec, executor_addr: Address, *, bind: Address = ("127.0.0.1", 0),
    starting_cash: float = 10_000.0, exit_rules: ExitRules | None = None, breaker_rules: BreakerRules | None = None,
) -> BrainApp:  # fmt: skip
    """A real brain on ``bind`` with its journal in ``tmp`` (resumed if it exists)."""
    journal = BrainJournal(tmp / "brain.sqlite", instrument=str(INSTRUMENT), starting_cash=starting_cash)
    core = BrainCore(
        BrainConfig(INSTRUMENT),
        strategy,
        PositionTracker(starting_cash, exit_rules or ExitRules()),
        CircuitBreakers(breaker_rules or BreakerRules()),
        itertools.count(1).__next__,
    )
    brain = BrainApp(core, codec, journal, BrainMetrics(), bind, executor_addr)
    await brain.start()
    return brain


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
    # The brain binds first with a placeholder peer; once the executor is bound, point it there.
    brain = await start_brain(tmp, strategy, codec, ("127.0.0.1", 9), starting_cash=starting_cash,
                              exit_rules=exit_rules, breaker_rules=breaker_rules)  # fmt: skip
    executor = await start_executor(tmp, bars, codec, brain.address, starting_cash=starting_cash, fee_bps=fee_bps,
                                    slippage_bps=slippage_bps)  # fmt: skip
    assert brain.endpoint is not None
    brain.endpoint.peer = brain.decision_peer = executor.address
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
