"""The chaos run: the proxy, the two supervised processes, the seeded kill plan and the flood, on one loop.

In ``run_dir/chaos`` with a fresh bus secret: a :class:`~testbed.proxy.ChaosProxy` sits between
the two processes; ``python -m executor`` and ``python -m brain`` (:class:`~testbed.chaoschild.ChaosChild`)
each bind a fixed free loopback port and send through the proxy. A seeded plan (:func:`plan_kills`)
SIGKILLs each process a number of times, each "after the k-th new decision passes the proxy"
plus 0–300 ms (:data:`KILL_DELAY_S`), and restarts it with identical arguments after 0.1–1.0 s
(:data:`DOWNTIME_S`). The brain's last incarnation exits 0 by itself when the replay is done and
reports its own counters in ``report.json``; then the executor gets SIGTERM (it writes
``executor-ledger.json``). A restarted process resumes its journal (``fresh_journal`` off).

**Flood** (any ``flood_*`` rate above 0): ``python -m testbed.flood`` starts once both processes
are ready, sends straight to their listening ports, is fed authentic datagrams by the proxy's tap,
and is stopped (SIGTERM) before the verdict, printing its figures.

Errors: :class:`~testbed.chaoschild.ChaosFailure` (a process failed, the flooder did not start,
or the run exceeded ``timeout_s``); :class:`~foundation.errors.ConfigError` from
:func:`plan_kills`.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from brain.settings import BrainSettings
from executor.settings import ExecutorSettings
from foundation.bussecret import new_bus_secret, write_secret_file
from foundation.errors import ConfigError
from tandem.children import child_flags, log_tail

from .chaoschild import READY_TIMEOUT_S, STOP_TIMEOUT_S, ChaosChild, ChaosFailure
from .chaossettings import ChaosSettings
from .proxy import LOOPBACK, ChaosProxy

__all__ = ["DOWNTIME_S", "KILL_DELAY_S", "ChaosOutcome", "ChaosRun", "Kill", "free_udp_port", "plan_kills"]

SCRAPE_TIMEOUT_S = 5.0
KILL_DELAY_S = (0.0, 0.3)
"""Extra delay after the k-th new decision, so a kill lands anywhere in the processing."""
DOWNTIME_S = (0.1, 1.0)
"""How long a killed process stays down before its restart."""

_EXECUTOR_COUNTERS = (
    "tandem_executor_datagrams_rejected_total", "tandem_executor_duplicate_answers_suppressed_total",
    "tandem_executor_replay_requests_ignored_total", "tandem_executor_replay_requests_served_total",
    "tandem_executor_confirmations_replayed_total", "tandem_executor_duplicate_decisions_total", "tandem_executor_executions_total",
    "tandem_executor_decision_conflicts_total", "tandem_executor_decisions_received_total",
)  # fmt: skip
_BRAIN_COUNTERS = (
    "tandem_brain_datagrams_rejected_total", "tandem_brain_decision_retransmits_total", "tandem_brain_replay_requests_total",
    "tandem_brain_duplicate_confirmations_total",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Kill:
    """One planned SIGKILL: of ``target``, ``delay_s`` after the ``after_decision``-th new decision
    reached the proxy; restarted ``downtime_s`` later."""

    target: str
    after_decision: int
    delay_s: float
    downtime_s: float

    def describe(self) -> str:
        """``E@12+150ms/0.40s``: executor, after decision 12, 150 ms late, down 0.40 s."""
        return f"{self.target[0].upper()}@{self.after_decision}+{self.delay_s * 1e3:.0f}ms/{self.downtime_s:.2f}s"


def plan_kills(seed: int, executor: int, brain: int, decisions: int) -> list[Kill]:
    """The seeded kill plan: ``k`` uniform in ``[1, decisions)`` per kill, targets interleaved in
    seeded order, sorted by ``k``.

    Raises:
        ConfigError: kills were asked for but the reference made fewer than 2 decisions.
    """
    if executor + brain == 0:
        return []
    if decisions < 2:
        raise ConfigError(f"kills need a reference with at least 2 decisions, it made {decisions}")
    rng = random.Random(f"{seed}:kills")
    targets = ["executor"] * executor + ["brain"] * brain
    rng.shuffle(targets)
    ks = sorted(rng.randrange(1, decisions) for _ in targets)
    return [Kill(t, k, rng.uniform(*KILL_DELAY_S), rng.uniform(*DOWNTIME_S)) for t, k in zip(targets, ks)]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])



@dataclass
class ChaosOutcome:
    """What the chaos run gathered besides the files in its directory."""

    proxy: ChaosProxy
    executor: ChaosChild
    brain: ChaosChild
    plan: list[Kill]
    done: list[Kill] = field(default_factory=list)
    seconds: float = 0.0
    flood: dict[str, Any] | None = None  # the flooder's own figures


class ChaosRun:
    """One chaos run: the proxy, the two supervised processes and the kill plan, on one loop."""

    def __init__(self, settings: ChaosSettings, run_dir: Path, plan: list[Kill]) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.plan = plan
        self.secret = new_bus_secret()
        key = run_dir / "bus.key"
        write_secret_file(key, self.secret)
        self.exe_port, self.brain_port = free_udp_port(), free_udp_port()
        self.proxy = ChaosProxy(
            self.secret, settings.rates(), settings.seed, executor=(LOOPBACK, self.exe_port),
            brain=(LOOPBACK, self.brain_port),
        )  # fmt: skip
        self._flooder: asyncio.subprocess.Process | None = None
        # fresh_journal off: a restarted process must resume its journal, never set it aside
        self.common = {"run_dir": str(run_dir), "bus_secret_file": str(key), "metrics_port": 0, "fresh_journal": False}

    async def run(self) -> ChaosOutcome:
        started = time.perf_counter()
        await self.proxy.start()
        a_host, a_port = self.proxy.decision_addr
        b_host, b_port = self.proxy.confirm_addr
        s = self.settings
        # the executor logs a line per decision at debug only (issue #17); the verdict counts those lines
        # as the second, independent witness of how often each decision executed
        exe_flags = child_flags(s, ExecutorSettings, decision_addr=f"{LOOPBACK}:{self.exe_port}",
                                confirm_addr=f"{b_host}:{b_port}", **{**self.common, "log_level": "debug"})  # fmt: skip
        brain_flags = child_flags(s, BrainSettings, decision_addr=f"{a_host}:{a_port}",
                             confirm_addr=f"{LOOPBACK}:{self.brain_port}", **self.common)  # fmt: skip
        executor = ChaosChild("executor", [sys.executable, "-m", "executor", *exe_flags],
                              self.run_dir / "executor.log", _EXECUTOR_COUNTERS)  # fmt: skip
        brain = ChaosChild("brain", [sys.executable, "-m", "brain", *brain_flags], self.run_dir / "brain.log",
                           _BRAIN_COUNTERS)  # fmt: skip
        out = ChaosOutcome(self.proxy, executor, brain, self.plan)
        try:
            async with asyncio.timeout(s.timeout_s), aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_S)
            ) as http:
                await executor.start()
                await brain.start()
                flooder = await self._start_flood()
                await self._kills(out, http)
                if brain.running:
                    await self._watch(asyncio.shield(brain.exited), executor)  # type: ignore[arg-type]
                if (code := brain.exited.result()) != 0:  # type: ignore[union-attr]
                    raise brain.failure(f"exited with {code}")
                if flooder is not None:
                    out.flood = await self._stop_flood(flooder)
                    flooder = None
                await executor.scrape(http)
                if (code := await executor.stop()) != 0:
                    raise executor.failure(f"exited with {code} after SIGTERM")
        except TimeoutError:
            raise ChaosFailure(
                f"the chaos run exceeded {s.timeout_s:g} s; {brain.log}:\n{log_tail(brain.log)}\n"
                f"{executor.log}:\n{log_tail(executor.log)}"
            ) from None
        finally:
            if self._flooder is not None and self._flooder.returncode is None:
                self._flooder.kill()
                await self._flooder.wait()
            self.proxy.close()
            for child in (brain, executor):
                child.abort()
                if child.exited is not None:
                    await asyncio.gather(child.exited, return_exceptions=True)
        out.seconds = time.perf_counter() - started
        return out

    async def _start_flood(self) -> asyncio.subprocess.Process | None:
        """Start the keyless flooder at both processes' own ports and point the proxy's tap at it."""
        args = self.settings.flood_args()
        if not args:
            return None
        argv = [sys.executable, "-m", "testbed.flood", f"--executor={LOOPBACK}:{self.exe_port}",
                f"--brain={LOOPBACK}:{self.brain_port}", f"--tap={LOOPBACK}:0", f"--seed={self.settings.seed}", *args]
        proc = self._flooder = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=(self.run_dir / "flood.log").open("ab"),
        )  # fmt: skip
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT_S)
        try:
            ready = json.loads(line)
            host, _, port = ready["tap"].rpartition(":")
        except (ValueError, KeyError, AttributeError):
            raise ChaosFailure(f"the flooder did not start ({line!r}); {self.run_dir / 'flood.log'}") from None
        self.proxy.tap = (host, int(port))
        return proc

    async def _stop_flood(self, proc: asyncio.subprocess.Process) -> dict[str, Any]:
        """SIGTERM the flooder; its figures (the last line it prints)."""
        self.proxy.tap = None
        proc.terminate()
        assert proc.stdout is not None
        out, _ = await asyncio.wait_for(proc.communicate(), STOP_TIMEOUT_S)
        try:
            return dict(json.loads(out.decode().strip().splitlines()[-1]))
        except (ValueError, IndexError):
            raise ChaosFailure(f"the flooder printed no figures ({out[-200:]!r})") from None

    async def _kills(self, out: ChaosOutcome, http: Any) -> None:
        children = {"executor": out.executor, "brain": out.brain}
        for kill in self.plan:
            child = children[kill.target]
            others = [c for c in children.values() if c is not child]
            if not await self._watch(self.proxy.wait_new_decisions(kill.after_decision), *children.values()):
                return  # the brain finished: the remaining kills cannot land
            if not await self._watch(asyncio.sleep(kill.delay_s), *children.values()):
                return
            if not child.running:  # exited between the watch and now
                code = child.exited.result()  # type: ignore[union-attr]
                if child.name == "brain" and code == 0:
                    return
                raise child.failure(f"exited by itself with {code}")
            try:
                await child.scrape(http)
            except ChaosFailure:
                if await self._finished(child):
                    return  # the brain finished between the check above and the scrape: nothing to kill
                raise
            await child.kill()
            brain_done = not await self._watch(asyncio.sleep(kill.downtime_s), *others)
            await child.start()  # also when the brain is done: the executor must write its ledger
            out.done.append(kill)
            if brain_done:
                return

    @staticmethod
    async def _finished(child: ChaosChild) -> bool:
        """Whether ``child`` is the brain and it exits 0 within :data:`SCRAPE_TIMEOUT_S` (its metrics
        server goes first as it shuts down, so a scrape can fail just before the exit)."""
        if child.name != "brain" or child.exited is None:
            return False
        try:
            code = await asyncio.wait_for(asyncio.shield(child.exited), SCRAPE_TIMEOUT_S)
        except TimeoutError:
            return False
        return code == 0

    async def _watch(self, aw: Any, *children: ChaosChild) -> bool:
        """Await ``aw`` while watching ``children``: True once it completes; False if the brain
        finished (exit 0) first.

        Raises:
            ChaosFailure: a watched process exited by itself (the executor at all, the brain non-zero).
        """
        task = asyncio.ensure_future(aw)
        watched = [c.exited for c in children if c.running]
        done, _ = await asyncio.wait({task, *watched}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
            return True
        task.cancel()
        for c in children:
            if c.exited in done:
                code = c.exited.result()  # type: ignore[union-attr]
                if c.name == "brain" and code == 0:
                    return False
                raise c.failure(f"exited by itself with {code}")
        return False  # pragma: no cover - one of the watched futures completed
