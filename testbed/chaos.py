"""``tandem chaos``: exactly-once effect and identical positions under a hostile bus and kills.

Steps (issue #3 §3):

1. **Reference**: a fault-free ``tandem paper`` run (:func:`tandem.paper.run_paper`) with the same
   data and settings into ``run_dir/reference`` → its ``trades.csv`` and its decision count.
2. **Chaos run** in ``run_dir/chaos`` with a fresh bus secret: a :class:`~testbed.proxy.ChaosProxy`
   sits between the two processes (loss, duplication, reordering, delay, corruption; forged,
   replayed and reflected datagrams); ``python -m executor`` and ``python -m brain`` each bind a
   fixed free loopback port and send through the proxy. A seeded plan (:func:`plan_kills`)
   SIGKILLs each process a number of times, each "after the k-th new decision passes the proxy"
   plus 0–300 ms, and restarts it with identical arguments after 0.1–1.0 s. Just before every
   SIGKILL, and before the executor is stopped at the end, that process's ``/metrics`` is scraped
   and its counters accumulated; the brain's last incarnation exits 0 by itself when the replay is
   done and reports its own counters in ``report.json``. Then the executor gets SIGTERM (it writes
   ``executor-ledger.json``). Logs are appended across incarnations, each start marked by a
   ``chaos_start`` line.
3. **Verdict** (:func:`evaluate`): at most one execution per ``decision_id`` (journal fills, and
   independently the ``decision_executed``/``decision_recovered`` lines of ``executor.log``), no
   decision at the executor that the brain did not send, no conflict, brain positions and cash
   equal to the executor's ledger, no unresolved decision, and ``trades.csv`` byte-identical to
   the reference unless decisions were reported expired (then the difference is reported, not a
   violation). Exit 0 only if every check passes, 1 naming each violation, 2 on bad settings.

**Flood** (any ``flood_*`` rate above 0, issue #11): a keyless attacker process,
``python -m testbed.flood`` (:mod:`testbed.flood`), starts once both processes are ready and sends
straight to their listening ports — garbage, forged prefixes, and authentic datagrams the proxy
copies to its tap (standing in for a packet capture): one decision re-sent, two replay requests
alternated, a confirmation re-sent. It never holds the key. It is stopped before the verdict and
reports what it sent. Under a flood the verdict is stricter: ``trades.csv`` must equal the
reference whatever expired, open positions must equal the reference's, and each log's lines about
hostile traffic must stay under :data:`~testbed.verdict.FLOOD_LOG_LINES_PER_S` a second.

``decision_addr``, ``confirm_addr`` and the metrics ports of the paper settings are not used:
chaos picks free loopback ports and serves metrics on ephemeral ports.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import Field

from brain.settings import BrainSettings
from executor.settings import ExecutorSettings
from foundation.atomicfile import write_atomic
from foundation.barcsv import bundled_path, load_bars
from foundation.bussecret import new_bus_secret, write_secret_file
from foundation.errors import ConfigError
from foundation.process import run_main
from foundation.runtime import run
from foundation.settings import load_settings
from tandem.children import child_flags, log_tail
from tandem.paper import INPUT_ERRORS, PaperSettings, run_paper

from .proxy import LOOPBACK, ChaosProxy, FaultRates
from .verdict import evaluate, journal_rows

__all__ = ["ChaosFailure", "ChaosSettings", "Kill", "evaluate", "main", "plan_kills", "run_chaos"]

_READY_TIMEOUT_S = 60.0
_SCRAPE_TIMEOUT_S = 5.0
_STOP_TIMEOUT_S = 10.0
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
_FLOOD_RATES = ("garbage_per_s", "forged_per_s", "decision_replays_per_s", "replay_requests_per_s",
                "confirmation_replays_per_s")  # fmt: skip
_BRAIN_COUNTERS = (
    "tandem_brain_datagrams_rejected_total", "tandem_brain_decision_retransmits_total", "tandem_brain_replay_requests_total",
    "tandem_brain_duplicate_confirmations_total",
)  # fmt: skip


class ChaosSettings(PaperSettings):
    """Paper settings plus the fault profile, the kill plan and a time limit."""

    seed: int = Field(1, description="seeds the faults, the injections and the kill plan")
    loss: float = Field(0.20, ge=0, le=1, description="probability a datagram is dropped")
    duplicate: float = Field(0.05, ge=0, le=1, description="probability a datagram is sent twice")
    reorder: float = Field(0.05, ge=0, le=1, description="probability a datagram is held back (reordered)")
    corrupt: float = Field(0.01, ge=0, le=1, description="probability 1-3 bits of a datagram are flipped")
    delay: float = Field(0.05, ge=0, le=1, description="probability a datagram gets extra latency")
    delay_max_ms: float = Field(50.0, ge=0, description="largest extra latency, ms")
    forged_per_s: float = Field(20.0, ge=0, description="forged datagrams injected per second and direction")
    replayed_per_s: float = Field(5.0, ge=0, description="captured datagrams re-sent per second and direction")
    reflected_per_s: float = Field(2.0, ge=0, description="captured datagrams sent back to their sender, per s")
    kills_executor: int = Field(3, ge=0, description="SIGKILLs of the executor (each restarted)")
    kills_brain: int = Field(3, ge=0, description="SIGKILLs of the brain (each restarted)")
    timeout_s: float = Field(300.0, gt=0, description="the chaos run fails past this many seconds")
    flood_garbage_per_s: float = Field(0.0, ge=0, lt=1e7, description="keyless flood: random 112-byte datagrams per second at the executor")
    flood_garbage_to_brain: bool = Field(False, description="keyless flood: as many random 128-byte datagrams at the brain")
    flood_forged_per_s: float = Field(0.0, ge=0, lt=1e7, description="keyless flood: random datagrams behind a valid prefix per second (each costs a tag check)")
    flood_decision_replays_per_s: float = Field(0.0, ge=0, lt=1e7, description="keyless flood: one captured decision re-sent per second")
    flood_replay_requests_per_s: float = Field(0.0, ge=0, lt=1e7, description="keyless flood: two captured replay requests alternated, per second")
    flood_confirmation_replays_per_s: float = Field(0.0, ge=0, lt=1e7, description="keyless flood: one captured confirmation re-sent to the brain per second")
    run_dir: Path | None = Field(None, description="new output folder (default: runs/<UTC timestamp>-chaos)")
    decision_addr: str = Field("127.0.0.1:45110", description="ignored: chaos picks free loopback ports")
    confirm_addr: str = Field("127.0.0.1:45115", description="ignored: chaos picks free loopback ports")
    metrics_port: int = Field(0, ge=-1, le=65535, description="ignored: metrics go to free ports")
    executor_metrics_port: int = Field(0, ge=-1, le=65535, description="ignored: metrics go to free ports")

    def rates(self) -> FaultRates:
        return FaultRates(**{name: getattr(self, name) for name in FaultRates.__dataclass_fields__})

    def flood_args(self) -> list[str]:
        """The flooder's rate flags; empty when no flood is asked for."""
        rates = {name: getattr(self, f"flood_{name}") for name in _FLOOD_RATES}
        if not any(rates.values()):
            return []
        out = [f"--{name.replace('_', '-')}={value!r}" for name, value in rates.items()]
        return out + (["--garbage-to-brain"] if self.flood_garbage_to_brain else [])


class ChaosFailure(RuntimeError):
    """A process failed or the run exceeded its time limit; the message has the log tail."""


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


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


# -- processes ----------------------------------------------------------------------------------


class _Child:
    """One supervised process (``python -m brain`` or ``executor``), restarted with identical argv."""

    def __init__(self, name: str, argv: list[str], log: Path, counters: tuple[str, ...]) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.counters = counters
        self.proc: asyncio.subprocess.Process | None = None
        self.exited: asyncio.Future[int] | None = None
        self.metrics_port: int | None = None
        self.starts = 0
        self.kills = 0
        self.scraped: dict[str, Counter[str]] = {n: Counter() for n in counters}

    @property
    def running(self) -> bool:
        return self.exited is not None and not self.exited.done()

    def failure(self, what: str) -> ChaosFailure:
        return ChaosFailure(f"{self.name} {what}; {self.log}:\n{log_tail(self.log)}")

    async def start(self) -> None:
        """Start an incarnation and wait for its ready line (its metrics port)."""
        with self.log.open("a+b") as fh:
            if fh.tell():
                fh.seek(-1, 2)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")  # a line cut by SIGKILL must not swallow the next incarnation's first
            marker = {"event": "chaos_start", "process": self.name, "incarnation": self.starts + 1}
            fh.write(json.dumps(marker).encode() + b"\n")
            fh.flush()
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=fh
            )
        self.starts += 1
        self.exited = asyncio.ensure_future(self.proc.wait())
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(_READY_TIMEOUT_S):
                while True:
                    line = await self.proc.stdout.readline()
                    if not line:
                        raise self.failure(f"exited with {await self.exited} before it was ready")
                    try:
                        msg = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if msg.get("event") == f"{self.name}_ready":
                        self.metrics_port = msg.get("metrics_port")
                        return
        except TimeoutError:
            raise self.failure(f"did not print its ready line within {_READY_TIMEOUT_S:.0f} s") from None

    async def scrape(self, http: Any) -> None:
        """Add this incarnation's counters (from ``/metrics``) to :attr:`scraped`."""
        from prometheus_client.parser import text_string_to_metric_families

        url = f"http://{LOOPBACK}:{self.metrics_port}/metrics"
        try:
            async with http.get(url) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise self.failure(f"metrics at {url} could not be scraped ({exc!r})") from None
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name in self.scraped:
                    self.scraped[s.name][s.labels.get("reason", "")] += s.value

    async def kill(self) -> None:
        assert self.proc is not None and self.exited is not None
        self.proc.kill()
        await self.exited
        self.kills += 1

    async def stop(self) -> int:
        """SIGTERM and wait (SIGKILL after :data:`_STOP_TIMEOUT_S`); returns the exit code."""
        assert self.proc is not None and self.exited is not None
        self.proc.terminate()
        try:
            return await asyncio.wait_for(asyncio.shield(self.exited), _STOP_TIMEOUT_S)
        except TimeoutError:
            self.proc.kill()
            await self.exited
            raise self.failure(f"did not stop within {_STOP_TIMEOUT_S:.0f} s of SIGTERM") from None

    def abort(self) -> None:
        if self.running and self.proc is not None:
            self.proc.kill()


@dataclass
class _Outcome:
    """What the chaos run gathered besides the files in its directory."""

    proxy: ChaosProxy
    executor: _Child
    brain: _Child
    plan: list[Kill]
    done: list[Kill] = field(default_factory=list)
    seconds: float = 0.0
    flood: dict[str, Any] | None = None  # the flooder's own figures


class _ChaosRun:
    """One chaos run: the proxy, the two supervised processes and the kill plan, on one loop."""

    def __init__(self, settings: ChaosSettings, run_dir: Path, plan: list[Kill]) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.plan = plan
        self.secret = new_bus_secret()
        key = run_dir / "bus.key"
        write_secret_file(key, self.secret)
        self.exe_port, self.brain_port = _free_udp_port(), _free_udp_port()
        self.proxy = ChaosProxy(
            self.secret, settings.rates(), settings.seed, executor=(LOOPBACK, self.exe_port),
            brain=(LOOPBACK, self.brain_port),
        )  # fmt: skip
        self._flooder: asyncio.subprocess.Process | None = None
        # fresh_journal off: a restarted process must resume its journal, never set it aside
        self.common = {"run_dir": str(run_dir), "bus_secret_file": str(key), "metrics_port": 0, "fresh_journal": False}

    async def run(self) -> _Outcome:
        started = time.perf_counter()
        await self.proxy.start()
        a_host, a_port = self.proxy.decision_addr
        b_host, b_port = self.proxy.confirm_addr
        s = self.settings
        exe_flags = child_flags(s, ExecutorSettings, decision_addr=f"{LOOPBACK}:{self.exe_port}",
                           confirm_addr=f"{b_host}:{b_port}", **self.common)  # fmt: skip
        brain_flags = child_flags(s, BrainSettings, decision_addr=f"{a_host}:{a_port}",
                             confirm_addr=f"{LOOPBACK}:{self.brain_port}", **self.common)  # fmt: skip
        executor = _Child("executor", [sys.executable, "-m", "executor", *exe_flags], self.run_dir / "executor.log",
                          _EXECUTOR_COUNTERS)  # fmt: skip
        brain = _Child("brain", [sys.executable, "-m", "brain", *brain_flags], self.run_dir / "brain.log",
                       _BRAIN_COUNTERS)  # fmt: skip
        out = _Outcome(self.proxy, executor, brain, self.plan)
        try:
            async with asyncio.timeout(s.timeout_s), aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=_SCRAPE_TIMEOUT_S)
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
        line = await asyncio.wait_for(proc.stdout.readline(), _READY_TIMEOUT_S)
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
        out, _ = await asyncio.wait_for(proc.communicate(), _STOP_TIMEOUT_S)
        try:
            return dict(json.loads(out.decode().strip().splitlines()[-1]))
        except (ValueError, IndexError):
            raise ChaosFailure(f"the flooder printed no figures ({out[-200:]!r})") from None

    async def _kills(self, out: _Outcome, http: Any) -> None:
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
            await child.scrape(http)
            await child.kill()
            brain_done = not await self._watch(asyncio.sleep(kill.downtime_s), *others)
            await child.start()  # also when the brain is done: the executor must write its ledger
            out.done.append(kill)
            if brain_done:
                return

    async def _watch(self, aw: Any, *children: _Child) -> bool:
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


_DIRS = {"decisions": "brain->executor", "confirmations": "executor->brain"}


def _kv(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in d.items()) or "none"


def _figures(settings: ChaosSettings, ref: dict[str, Any], out: _Outcome, ev: dict[str, Any]) -> dict[str, Any]:
    """Everything the verdict prints, as JSON-friendly values (also written to chaos-report.json).

    Process counters are the scraped incarnations' plus, for the brain, its last report.json.
    """
    st, e, last = out.proxy.stats, out.executor.scraped, ev["brain_report"]
    b = {n: Counter(c) for n, c in out.brain.scraped.items()}
    b["tandem_brain_decision_retransmits_total"][""] += last["retransmits"]
    b["tandem_brain_replay_requests_total"][""] += last["replay_requests"]
    b["tandem_brain_datagrams_rejected_total"].update(last["datagrams_rejected"])

    def one(c: dict[str, Counter[str]], name: str) -> int:
        return int(sum(c[name].values()))

    def per_dir(fn: Any) -> dict[str, Any]:
        return {_DIRS[d]: fn(d) for d in _DIRS}

    faults = ("dropped", "duplicated", "reordered", "delayed", "corrupted")
    evaluated = {k: v for k, v in ev.items() if k not in ("brain_report", "reference_decisions", "reference_trades")}
    latency = last.get("latency_us", {})
    return {
        "seed": settings.seed,
        "rates": repr(settings.rates()),
        "reference": {"decisions": ev["reference_decisions"], "trades": ev["reference_trades"],
                      "wall_time_s": ref["wall_time_s"], "run_dir": ref["run_dir"]},  # fmt: skip
        "faults": per_dir(lambda d: {a: st.total(a, d) for a in faults}),
        "traffic": per_dir(lambda d: st.by_kind("received", d)),
        "retransmits_proxy": st.total("received", "decisions", "decision_retransmit"),
        "retransmits_brain": one(b, "tandem_brain_decision_retransmits_total"),
        "replay_requests_proxy": st.total("received", "decisions", "replay_request"),
        "replay_requests_brain": one(b, "tandem_brain_replay_requests_total"),
        "replays_served": one(e, "tandem_executor_replay_requests_served_total"),
        "confirmations_replayed": one(e, "tandem_executor_confirmations_replayed_total"),
        "confirmations_resent_proxy": st.total("received", "confirmations", "confirmation_resent"),
        "forged": per_dir(lambda d: {"random bytes": st.total("forged_random", d),
                                     "other secret": st.total("forged_other_secret", d)}),  # fmt: skip
        "replayed": per_dir(lambda d: st.total("replayed", d)),
        "reflected": per_dir(lambda d: st.total("reflected", d)),
        "rejected_executor": {k: int(n) for k, n in sorted(e["tandem_executor_datagrams_rejected_total"].items())},
        "rejected_brain": {k: int(n) for k, n in sorted(b["tandem_brain_datagrams_rejected_total"].items())},
        "executor_counted": {"executions": one(e, "tandem_executor_executions_total"),
                             "duplicate decisions answered": one(e, "tandem_executor_duplicate_decisions_total"),
                             "conflicts": one(e, "tandem_executor_decision_conflicts_total")},  # fmt: skip
        "kills": {"executor": out.executor.kills, "brain": out.brain.kills},
        "restarts": {"executor": out.executor.starts - 1, "brain": out.brain.starts - 1},
        "kill_plan": [k.describe() for k in out.plan],
        "kills_skipped": [k.describe() for k in out.plan if k not in out.done],
        "chaos_wall_time_s": out.seconds,
        "flood": out.flood,
        "suppressed_duplicate_answers": one(e, "tandem_executor_duplicate_answers_suppressed_total"),
        "replays_ignored": one(e, "tandem_executor_replay_requests_ignored_total"),
        "latency_us_last_brain": {k: latency.get(k) for k in ("p50", "p99", "max", "n")},
        **evaluated,
    }


def format_figures(f: dict[str, Any]) -> str:
    """The verdict as aligned text for the terminal."""

    def row(label: str, text: str) -> str:
        return f"  {label:<22} {text}"

    def two(label: str, per_dir: dict[str, Any]) -> list[str]:
        return [row(label if i == 0 else "", f"{d}: {_kv(x)}") for i, (d, x) in enumerate(per_dir.items())]

    ref, kills, restarts = f["reference"], f["kills"], f["restarts"]
    forged = {d: f"{sum(x.values())} ({_kv(x)})" for d, x in f["forged"].items()}
    if f["trades_identical"]:
        trades = f"identical to the reference ({f['trades']} trades)"
    else:
        trades = f"DIFFERS from the reference ({f['trades']} vs {ref['trades']} trades, {f['expired']} expired decisions)"
    skipped = f"; skipped (brain done) {' '.join(f['kills_skipped'])}" if f["kills_skipped"] else ""
    lines = [
        f"tandem chaos report  (seed {f['seed']})",
        row("reference", f"{ref['decisions']} decisions, {ref['trades']} trades  ({ref['run_dir']})"),
        row("decisions sent", f"{f['decisions_sent']}  (brain journal; {_kv(f['outcomes'])})"),
        *two("faults injected", f["faults"]),
        *two("traffic (proxy)", f["traffic"]),
        row("retransmits", f"proxy saw {f['retransmits_proxy']} decision retransmits; brain counted "
                           f"{f['retransmits_brain']}"),
        row("replays", f"brain requested {f['replay_requests_brain']} (proxy saw {f['replay_requests_proxy']}), "
                       f"executor served {f['replays_served']}, confirmations replayed {f['confirmations_replayed']}; "
                       f"proxy saw {f['confirmations_resent_proxy']} confirmations resent"),
        row("forged injected", f"to executor {forged['brain->executor']}; to brain {forged['executor->brain']}"),
        row("replayed injected", f"to executor {f['replayed']['brain->executor']}, to brain "
                                 f"{f['replayed']['executor->brain']}; reflected to brain "
                                 f"{f['reflected']['brain->executor']}, to executor {f['reflected']['executor->brain']}"),
        row("rejected by executor", _kv(f["rejected_executor"])),
        row("rejected by brain", _kv(f["rejected_brain"])),
        row("executor counted", _kv(f["executor_counted"])),
        row("kills", f"executor {kills['executor']} (restarts {restarts['executor']}), brain {kills['brain']} "
                     f"(restarts {restarts['brain']});  plan (who@k-th decision+delay/downtime) "
                     f"{' '.join(f['kill_plan']) or 'none'}{skipped}"),
        row("max executions per id", f"{f['max_executions_journal']} (journal fills, {f['executed_ids_journal']} ids); "
                                     f"{f['max_executions_log']} (executor.log, {f['executed_ids_log']} ids, "
                                     f"{f['recovered_in_log']} recovered)"),
        row("foreign decisions", f"{f['foreign_decisions']} unknown, {f['altered_decisions']} altered at the executor; "
                                 f"conflicts logged {f['decision_conflicts_log']}"),
        row("confirmations", f"{f['confirmations_compared']} applied by the brain, "
                             f"{f['confirmations_mismatched']} differ from the executor's journal"),
        row("ledgers", f"positions {'equal' if f['positions_equal'] else 'DIFFER'} (brain {_kv(f['brain_positions'])}; "
                       f"executor {_kv(f['executor_positions'])}); cash {f['brain_cash']:,.6f} vs "
                       f"{f['executor_cash']:,.6f} (relative difference {f['cash_rel_diff']:.3g})"),
        row("unresolved decisions", str(f["unresolved"])),
        row("expired decisions", str(f["expired"])),
        *_flood_rows(f, row),
        row("trades.csv", trades),
        row("wall time", f"{f['wall_time_s']:.1f} s  (reference {ref['wall_time_s']:.1f} s, chaos run "
                         f"{f['chaos_wall_time_s']:.1f} s)"),
    ]
    if f["violations"]:
        lines.append(f"verdict                  FAIL: {len(f['violations'])} violations")
        lines += [f"  violation: {x}" for x in f["violations"]]
    else:
        lines.append("verdict                  PASS: every check passed")
    return "\n".join(lines)


def _flood_rows(f: dict[str, Any], row: Any) -> list[str]:
    """The flood's lines of the verdict (none without a flood)."""
    flood = f.get("flood")
    if not flood:
        return []
    lat, logs = f["latency_us_last_brain"], f["logs"]
    return [
        row("flood (keyless)", f"{flood['seconds']:.1f} s: {_kv(flood['rates_per_s'])} per second; "
                               f"sent {_kv(flood['sent'])}; send errors {flood['send_errors']}"),
        row("flood answered", f"duplicate answers suppressed {f['suppressed_duplicate_answers']}, "
                              f"replay requests ignored {f['replays_ignored']}"),
        row("round trip (us)", f"p50 {lat['p50'] or 0:.0f}  p99 {lat['p99'] or 0:.0f}  max {lat['max'] or 0:.0f}  "
                               f"(n={lat['n']}, the brain's last incarnation)"),
        row("logs", "; ".join(f"{n}.log {x['bytes'] / 1e6:.2f} MB, {x['lines']} lines, {x['flood_lines']} about "
                              f"hostile traffic" for n, x in logs.items())),
    ]


# -- entry points -------------------------------------------------------------------------------


def run_chaos(settings: ChaosSettings) -> dict[str, Any]:
    """Reference run, chaos run, verdict; returns the figures (also in ``run_dir/chaos-report.json``).

    Raises:
        MarketDataError, StrategyError, JournalError: bad input (checked before anything starts).
        ConfigError: the run directory is not empty, or too few decisions to place the kills.
        ChaosFailure, RuntimeError: a process failed or the run timed out (log tail in the message).
    """
    started = time.perf_counter()
    load_bars(settings.data or bundled_path(), limit=settings.bars)  # fail fast
    run_dir = settings.run_dir or Path("runs") / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ-chaos")
    ref_dir, chaos_dir = run_dir / "reference", run_dir / "chaos"
    for d in (ref_dir, chaos_dir):
        if d.exists() and any(d.iterdir()):
            raise ConfigError(f"run_dir: {d} is not empty (a brain journal there would be resumed)")
    ref = run_paper(settings.model_copy(update={
        "run_dir": ref_dir, "metrics_port": -1, "executor_metrics_port": -1,
        "decision_addr": f"{LOOPBACK}:{_free_udp_port()}", "confirm_addr": f"{LOOPBACK}:{_free_udp_port()}",
    }))  # fmt: skip
    if not ref["ledger_agrees"]:
        raise ChaosFailure(f"the fault-free reference run's ledgers disagree ({ref_dir})")
    ref_decisions = len(journal_rows(ref_dir / "brain.sqlite", "SELECT decision_id FROM decisions"))
    plan = plan_kills(settings.seed, settings.kills_executor, settings.kills_brain, ref_decisions)
    chaos_dir.mkdir(parents=True, exist_ok=True)
    out = run(_ChaosRun(settings, chaos_dir, plan).run())
    ev = evaluate(ref_dir, chaos_dir, require_identical=bool(settings.flood_args()), run_seconds=out.seconds)
    figures = _figures(settings, ref, out, ev)
    figures["wall_time_s"] = time.perf_counter() - started
    write_atomic(run_dir / "chaos-report.json", json.dumps(figures, indent=2, default=str) + "\n")
    return figures


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 if every check passed, 1 on a violation or a failed process, 2 on bad input."""

    def body() -> int:
        settings = load_settings(ChaosSettings, argv if argv is not None else sys.argv[1:], "tandem chaos")
        try:
            figures = run_chaos(settings)
        except ChaosFailure as exc:
            raise ChaosFailure(f"FAIL (seed {settings.seed}): {exc}") from exc
        except INPUT_ERRORS:
            raise
        except RuntimeError as exc:  # a failure of the reference run
            raise RuntimeError(f"FAIL (seed {settings.seed}): {exc}") from exc
        print(format_figures(figures))
        return 1 if figures["violations"] else 0

    return run_main("tandem chaos", body, input_errors=INPUT_ERRORS)
