"""Loopback UDP harness: a real executor endpoint and a real brain endpoint in one process.

The wiring is :mod:`testbed.loopback` (production apps, real SQLite journals, real UDP sockets on
127.0.0.1, the real codec); this module adds a fixed secret, a scripted strategy and metric
sampling. Only the process boundary is missing (``tests/test_paper_cli.py`` covers that).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brain.app import BrainApp
from brain.core import BrainConfig
from brain.exits import ExitRules
from brain.risk import BreakerRules
from executor.app import ExecutorApp
from foundation.bars import Bars
from protocol import Codec, derive_key
from testbed.loopback import INSTRUMENT, start_brain, start_executor, start_pair

__all__ = ["INSTRUMENT", "SECRET", "Harness", "ScriptedStrategy", "sample", "start_brain", "start_executor",
           "start_harness"]  # fmt: skip

SECRET = b"harness-secret-harness-secret-32"


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
    config: BrainConfig | None = None,
) -> Harness:
    """Start an executor and a brain on ephemeral loopback ports, wired to each other (the executor
    executes shorts when ``config.allow_short``)."""
    codec = Codec(derive_key(SECRET))
    brain, executor = await start_pair(tmp, bars, strategy, codec, starting_cash=starting_cash, exit_rules=exit_rules,
                                       breaker_rules=breaker_rules, fee_bps=fee_bps, slippage_bps=slippage_bps,
                                       config=config)  # fmt: skip
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
