"""A real brain and a real executor in one process, wired over loopback UDP.

Both are the production apps (:class:`~brain.app.BrainApp`, :class:`~executor.app.ExecutorApp`)
with SQLite journals in a folder, UDP sockets on 127.0.0.1 and the real codec; only the process
boundary is missing. Used by the test harness (``tests/harness.py``) and ``tandem fuzz``.

Either side can be started alone on a given port, so a test can stop one and start it again on
its journal and address (a restart).
"""

from __future__ import annotations

import itertools
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
from executor.venue.paper import PaperVenue
from foundation.bars import Bars
from protocol import Codec, Instrument
from protocol.udp import Address

__all__ = ["INSTRUMENT", "start_brain", "start_executor", "start_pair"]

INSTRUMENT = Instrument.symbol("BTC-PERP")
_EPHEMERAL: Address = ("127.0.0.1", 0)
_DISCARD: Address = ("127.0.0.1", 9)  # a placeholder peer: datagrams sent there are lost


async def start_executor(
    workdir: Path, bars: Bars, codec: Codec, brain_addr: Address, *, bind: Address = _EPHEMERAL,
    starting_cash: float = 10_000.0, fee_bps: float = 10.0, slippage_bps: float = 0.0, allow_short: bool = False,
) -> ExecutorApp:  # fmt: skip
    """An executor (paper venue on ``bars``) on ``bind``, journal ``workdir/executor.sqlite``
    (reopened and recovered if it exists), sending to ``brain_addr``; ``allow_short``: it executes
    short entries."""
    venue = PaperVenue(bars, instrument=INSTRUMENT, fee_bps=fee_bps, slippage_bps=slippage_bps)
    core = await ExecutorCore.open(workdir / "executor.sqlite", venue, starting_cash, allow_short=allow_short)
    executor = ExecutorApp(core, codec, ExecutorMetrics(), bind, brain_addr)
    await executor.start()
    return executor


async def start_brain(
    workdir: Path, strategy: Any, codec: Codec, executor_addr: Address, *, bind: Address = _EPHEMERAL,
    starting_cash: float = 10_000.0, config: BrainConfig | None = None, exit_rules: ExitRules | None = None,
    breaker_rules: BreakerRules | None = None,
) -> BrainApp:  # fmt: skip
    """A brain on ``bind``, journal ``workdir/brain.sqlite`` (resumed if it exists), sending to
    ``executor_addr``; decision ids 1, 2, 3... as in a replay."""
    journal = BrainJournal(workdir / "brain.sqlite", instrument=str(INSTRUMENT), starting_cash=starting_cash)
    core = BrainCore(
        config or BrainConfig(INSTRUMENT),
        strategy,
        PositionTracker(starting_cash, exit_rules or ExitRules()),
        CircuitBreakers(breaker_rules or BreakerRules()),
        itertools.count(1).__next__,
    )
    brain = BrainApp(core, codec, journal, BrainMetrics(), bind, executor_addr)
    await brain.start()
    return brain


async def start_pair(
    workdir: Path, bars: Bars, strategy: Any, codec: Codec, *, starting_cash: float = 10_000.0,
    config: BrainConfig | None = None, exit_rules: ExitRules | None = None, breaker_rules: BreakerRules | None = None,
    fee_bps: float = 10.0, slippage_bps: float = 0.0,
) -> tuple[BrainApp, ExecutorApp]:  # fmt: skip
    """A brain and an executor on ephemeral ports, each sending to the other.

    The brain binds first (its first heartbeat goes to a placeholder and is lost); once the
    executor is bound, the brain's peer is pointed at it.
    """
    brain = await start_brain(workdir, strategy, codec, _DISCARD, starting_cash=starting_cash, config=config,
                              exit_rules=exit_rules, breaker_rules=breaker_rules)  # fmt: skip
    executor = await start_executor(workdir, bars, codec, brain.address, starting_cash=starting_cash,
                                    fee_bps=fee_bps, slippage_bps=slippage_bps,
                                    allow_short=config is not None and config.allow_short)  # fmt: skip
    assert brain.endpoint is not None
    brain.endpoint.peer = brain.endpoint.peer_name = brain.decision_peer = executor.address
    return brain, executor
