"""``tandem bench``: decision→confirmation round trips between two processes over loopback UDP,
measured against a bare UDP echo between two processes (the floor).

The executor under test is the real one (``python -m executor``: paper venue, SQLite journal in
WAL mode, structlog to a file, metrics off); this process plays the brain with the real codec.
Phases: (1) ping-pong latency, one decision in flight, against every peer at once: the executor,
a bare UDP echo (the floor), two floors that journal (``testbed/benchpeers.py``: the journaled
echo — the executor's own journal, nothing else — and the SQLite echo — one row per decision, the
least any journal within the rules can write — both polling their socket after each answer as the
executor does by default) and a second executor with busy polling off (``--busy-poll-us 0``; the
first runs the default settings, which poll), so the table shows both. The peers take turns in
blocks (:data:`LATENCY_BLOCKS`), so every ratio compares peers measured across the same seconds —
absolute times on a shared machine are noise. (2) Throughput of the executor and of the echo, in
lockstep (one decision in flight, as a replay of one instrument runs) and pipelined (``window`` in
flight, as a portfolio or a burst runs). The table gives the ratios against the targets of issue
#17 (p50 <= 2x the echo's, p99 <= 3x, >= 10,000 decisions/s pipelined). Every decision must be
confirmed exactly once: a lost or duplicated confirmation fails the run.

``--soak N`` sends N decisions pipelined and samples the executor's resident memory (VmRSS) and its
open file descriptors every N/50 decisions; the growth is measured from the sample after the first
10 % (the warm-up: SQLite's page cache, the allocator's arenas) to the last.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from executor.settings import ExecutorSettings
from foundation.barcsv import bundled_path, load_bars
from foundation.bussecret import new_bus_secret, write_secret_file
from foundation.runtime import run
from protocol import (
    MESSAGE_SIZES,
    Codec,
    DecisionReason,
    ExecutionConfirmation,
    Instrument,
    Intent,
    MessageType,
    Side,
    TradeDecision,
    derive_key,
)

__all__ = ["main"]

DEFAULT_BUSY_POLL_US: int = ExecutorSettings.model_fields["busy_poll_us"].default
"""The executor's default busy-poll window, µs: the journaling floors poll as long after each answer."""

_TIMEOUT_S = 2.0


class _Client(asyncio.DatagramProtocol):
    """Matches replies to requests by key — decision_id (tandem) or an 8-byte counter (echo) — and
    calls what waits for each with the time it arrived (``time.perf_counter_ns``)."""

    def __init__(self, codec: Codec | None) -> None:
        self.codec = codec
        self.waiting: dict[int, Callable[[int], None]] = {}
        self.transport: Any = None
        self.replies = 0
        self.unexpected = 0  # a reply to nothing awaited: a duplicate, or one after its timeout

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        now = time.perf_counter_ns()
        if self.codec is None:
            key = int.from_bytes(data[:8], "little")
        else:
            msg = self.codec.decode(data, time.time_ns())
            if not isinstance(msg, ExecutionConfirmation):
                return  # the executor's heartbeats
            key = msg.decision_id
        on_reply = self.waiting.pop(key, None)
        self.replies += 1
        if on_reply is None:
            self.unexpected += 1
        else:
            on_reply(now)


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    s = sorted(samples_ns)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))] / 1e3  # noqa: E731
    return {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "max": s[-1] / 1e3, "mean": statistics.fmean(s) / 1e3}


class _Target:
    """One peer under test: how to build request ``i`` and where to send it."""

    def __init__(self, client: _Client, peer: tuple[str, int], make: Any) -> None:
        self.client, self.peer, self.make = client, peer, make

    async def roundtrip(self, i: int) -> int:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()

        def on_reply(at: int) -> None:
            if fut.done():  # it timed out: the phase has failed already
                self.client.unexpected += 1
            else:
                fut.set_result(at)

        self.client.waiting[i] = on_reply
        data = self.make(i)  # built (and, for a decision, encoded with its MAC) before the clock starts
        t0 = time.perf_counter_ns()
        self.client.transport.sendto(data, self.peer)
        t1 = await asyncio.wait_for(fut, _TIMEOUT_S)
        return t1 - t0

    async def latency(self, start: int, warmup: int, n: int) -> list[int]:
        for i in range(start, start + warmup):
            await self.roundtrip(i)
        return [await self.roundtrip(i) for i in range(start + warmup, start + warmup + n)]

    async def throughput(self, start: int, n: int, window: int) -> float:
        """Requests ``start`` .. ``start + n - 1`` with ``window`` in flight; returns requests per second.

        Driven from the receive callback, as a brain sends: each reply sends the next request at
        once — no task, timer or future per request, so this process is not what limits the rate.

        Raises:
            RuntimeError: no reply came for :data:`_TIMEOUT_S` while some were still awaited (lost).
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        end, nxt, received = start + n, start, 0
        waiting, send, make, peer = self.client.waiting, self.client.transport.sendto, self.make, self.peer

        def send_next() -> None:
            nonlocal nxt
            waiting[nxt] = on_reply
            send(make(nxt), peer)
            nxt += 1

        def on_reply(_at: int) -> None:
            nonlocal received
            received += 1
            if nxt < end:
                send_next()
            elif received == n and not done.done():
                done.set_result(None)

        t0 = time.perf_counter()
        for _ in range(min(window, n)):
            send_next()
        while not done.done():
            seen = received
            try:
                await asyncio.wait_for(asyncio.shield(done), _TIMEOUT_S)
            except TimeoutError:
                if received == seen:
                    raise RuntimeError(f"{n - received} of {n} replies missing: none for {_TIMEOUT_S} s") from None
        return n / (time.perf_counter() - t0)


def _decision_factory(codec: Codec, market_ts_ns: int, price: float) -> Any:
    inst = Instrument.symbol("BTC-PERP")

    def make(i: int) -> bytes:
        now = time.time_ns()
        d = TradeDecision(
            decision_id=i, instrument=inst, side=Side.BUY if i % 2 else Side.SELL,
            intent=Intent.OPEN if i % 2 else Intent.CLOSE, reason=DecisionReason.MANUAL, quantity=0.001,
            reference_price=price, max_slippage_bps=10_000, created_at_ns=now, expires_at_ns=now + 10**10,
            market_ts_ns=market_ts_ns,
        )  # fmt: skip
        return codec.encode(d)

    return make


def placement(pin: bool) -> tuple[int, int] | None:
    """(the CPU of this process — the brain's side —, the CPU of every peer) for the latency phase:
    two different CPUs this process may use, or ``None`` (``pin`` off, or fewer than two CPUs): the
    scheduler places them. The throughput phases and a soak always run unpinned.

    Why pin: a round trip between two processes costs ~20 µs when the scheduler puts them on one
    CPU and ~65 µs on two (each wake-up then crosses CPUs; measured here with the bare echo), and
    which it does changes from run to run — so did the floor, and every ratio with it. The
    executor, which polls its socket after each answer, keeps a CPU of its own anyway; so do a
    brain and an executor deployed as two containers. Pinned, every peer is measured that way.
    """
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if pin and len(cpus) >= 2 else None


def _set_cpus(pid: int, cpus: set[int]) -> None:
    """Let every thread of process ``pid`` run on ``cpus`` only (a thread or process gone by then
    is skipped: a peer that died fails the run where its answers go missing)."""
    with contextlib.suppress(FileNotFoundError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(int(tid), cpus)


def _spawn(args: list[str], log: Path, cpu: int | None = None) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start peer ``args`` (on ``cpu`` alone, if given) and read its JSON ready line."""
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    with log.open("w") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True, preexec_fn=pin)  # noqa: PLW1509
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        return proc, json.loads(line)
    except json.JSONDecodeError:
        proc.kill()
        raise RuntimeError(f"{args[:3]} did not start: {log.read_text()[-2000:]}") from None


def _cpu_s(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used, seconds, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _CpuMeter:
    """CPU time a peer process spends per request over a phase, microseconds (and this process's,
    :attr:`client_us`, over the same phase): ``/proc`` counts in clock ticks (10 ms), so a phase
    needs thousands of requests for a figure worth printing."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.client_us = 0.0

    async def per_request(self, phase: Any, n: int) -> tuple[Any, float]:
        before, mine = _cpu_s(self.pid), time.process_time()
        out = await phase
        self.client_us = (time.process_time() - mine) / n * 1e6
        return out, (_cpu_s(self.pid) - before) / n * 1e6


LATENCY_BLOCKS = 10
"""Ping-pong latency is measured in this many blocks per peer, the peers taking turns block by block
(the executor's block, the echo's, each floor's, then the executor's again): every peer is measured
across the same seconds. A shared machine's speed drifts over seconds (a fixed loop here runs
anywhere from 70 to 120 µs), and peers measured one after the other carried that drift into their
ratio."""

BLOCK_WARMUP = 20
"""Round trips discarded at the start of each block: the peer slept while the others were measured."""


async def _latencies(targets: dict[str, tuple[_Target, int]], warmup: int, n: int) -> dict[str, Any]:
    """``n`` ping-pong round trips to each target (name → target, its process id) after ``warmup``
    discarded ones, in :data:`LATENCY_BLOCKS` blocks taken in turn.

    Returns:
        name → (round trips in ns, CPU its process spent per measured round trip in µs — the sum of
        one ``/proc`` reading per block, each to a 10 ms tick: coarse for a short run —, the next
        request number: each target's requests are numbered from 1 on).
    """
    blocks = max(1, min(LATENCY_BLOCKS, n))
    nxt = dict.fromkeys(targets, 1)
    samples: dict[str, list[int]] = {name: [] for name in targets}
    cpu_s = dict.fromkeys(targets, 0.0)
    for name, (target, _) in targets.items():
        await target.latency(1, warmup, 0)
        nxt[name] += warmup
    for b in range(blocks):
        size = n // blocks + (1 if b < n % blocks else 0)
        for name, (target, pid) in targets.items():
            await target.latency(nxt[name], BLOCK_WARMUP, 0)
            before = _cpu_s(pid)
            samples[name] += await target.latency(nxt[name] + BLOCK_WARMUP, 0, size)
            cpu_s[name] += _cpu_s(pid) - before
            nxt[name] += BLOCK_WARMUP + size
    return {name: (samples[name], cpu_s[name] / max(n, 1) * 1e6, nxt[name]) for name in targets}


def _process_figures(pid: int) -> tuple[int, int]:
    """(resident memory in bytes, open file descriptors) of process ``pid``, from ``/proc``."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return rss, len(list(Path(f"/proc/{pid}/fd").iterdir()))


async def _soak(tandem: _Target, pid: int, start: int, n: int, window: int) -> dict[str, Any]:
    """``n`` decisions pipelined in 50 slices; the executor's RSS and FDs after each."""
    samples = [{"decisions": 0, "rss_bytes": _process_figures(pid)[0], "fds": _process_figures(pid)[1]}]
    step = max(1, n // 50)
    done = 0
    t0 = time.perf_counter()
    while done < n:
        k = min(step, n - done)
        await tandem.throughput(start + done, k, window)
        done += k
        rss, fds = _process_figures(pid)
        samples.append({"decisions": done, "rss_bytes": rss, "fds": fds, "seconds": time.perf_counter() - t0})
    warm = next(s for s in samples if s["decisions"] >= n // 10)
    last = samples[-1]
    return {
        "decisions": n, "seconds": time.perf_counter() - t0, "samples": samples,
        "rss_after_warmup_bytes": warm["rss_bytes"], "rss_last_bytes": last["rss_bytes"],
        "rss_growth_pct": (last["rss_bytes"] / warm["rss_bytes"] - 1) * 100,
        "fds_after_warmup": warm["fds"], "fds_last": last["fds"],
    }


async def _bench(opts: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    cpus = placement(opts.pin and not opts.soak)  # pinned for the round trips only: a soak runs unpinned
    peer_cpu = None if cpus is None else cpus[1]
    all_cpus = os.sched_getaffinity(0)
    if cpus is not None:
        os.sched_setaffinity(0, {cpus[0]})
    secret = new_bus_secret()
    key = workdir / "bus.key"
    write_secret_file(key, secret)
    codec = Codec(derive_key(secret))
    bars = load_bars(bundled_path(), limit=100)
    decisions = _decision_factory(codec, bars.close_ns(10), bars.close[10])
    procs: list[subprocess.Popen[str]] = []  # stopped on the way out, whatever failed
    transports: list[Any] = []  # closed on the way out

    async def open_client(client_codec: Codec | None) -> tuple[_Client, int]:
        """A client on an ephemeral loopback port, and that port."""
        client = _Client(client_codec)
        transport, _ = await loop.create_datagram_endpoint(lambda: client, local_addr=("127.0.0.1", 0))
        transports.append(transport)
        return client, transport.get_extra_info("sockname")[1]

    def spawn_executor(run_dir: Path, client_port: int, *extra: str) -> tuple[subprocess.Popen[str], tuple[str, int]]:
        run_dir.mkdir(exist_ok=True)
        proc, ready = _spawn(
            [sys.executable, "-m", "executor", "--decision-addr", "127.0.0.1:0", "--confirm-addr",
             f"127.0.0.1:{client_port}", "--bus-secret-file", str(key), "--run-dir", str(run_dir),
             "--metrics-port", "-1", "--bars", "100", "--starting-cash", "1e12", "--log-level", opts.log_level, *extra],
            run_dir / "executor.log", peer_cpu,
        )  # fmt: skip
        procs.append(proc)
        host, port = ready["decision_addr"].rsplit(":", 1)
        return proc, (host, int(port))

    try:
        tandem_client, port = await open_client(codec)
        executor, executor_addr = spawn_executor(workdir, port)  # the default settings: busy polling on
        tandem = _Target(tandem_client, executor_addr, decisions)
        executor_clients = [tandem_client]  # whose confirmations must each come exactly once
        echo, echo_ready = _spawn([sys.executable, "-m", "testbed.benchpeers", "--echo"], workdir / "echo.log", peer_cpu)
        procs.append(echo)
        echo_client, _ = await open_client(None)
        size = MESSAGE_SIZES[MessageType.DECISION]  # a decision's size, so both paths carry the same payload
        floor = _Target(echo_client, ("127.0.0.1", echo_ready["port"]), lambda i: i.to_bytes(8, "little").ljust(size, b"\0"))
        latency_only: dict[str, tuple[int, _Target]] = {}  # measured for ping-pong latency only, by result name
        if not opts.soak:
            for name in ("journaled_echo", "sqlite_echo"):  # the floors that journal
                proc, peer = _spawn([sys.executable, "-m", "testbed.benchpeers", f"--{name.replace('_', '-')}",
                                     "--bus-secret-file", str(key), "--journal", str(workdir / f"{name}.sqlite"),
                                     "--busy-poll-us", str(DEFAULT_BUSY_POLL_US)],
                                    workdir / f"{name}.log", peer_cpu)  # fmt: skip
                procs.append(proc)
                client, _ = await open_client(codec)
                latency_only[name] = (proc.pid, _Target(client, ("127.0.0.1", peer["port"]), decisions))
            client, port = await open_client(codec)  # the same executor with busy polling off
            unpolled, unpolled_addr = spawn_executor(workdir / "busy-poll-off", port, "--busy-poll-us", "0")
            latency_only["busy_poll_off"] = (unpolled.pid, _Target(client, unpolled_addr, decisions))
            executor_clients.append(client)
        n, w, warm, t = opts.rounds, opts.window, opts.warmup, opts.throughput
        if opts.soak:
            await tandem.latency(1, warm, 1)
            result: dict[str, Any] = {"soak": await _soak(tandem, executor.pid, 2 + warm, opts.soak, w)}
            sent = warm + 1 + opts.soak
        else:
            peers = {"tandem": (tandem, executor.pid), "echo": (floor, echo.pid)}
            peers |= {name: (target, pid) for name, (pid, target) in latency_only.items()}
            measured = await _latencies(peers, warm, n)
            if cpus is not None:  # the throughput phases as deployed: the scheduler places every process
                for pid in (os.getpid(), *(proc.pid for proc in procs)):
                    _set_cpus(pid, all_cpus)
            lat, lat_cpu, start = measured["tandem"]
            elat, elat_cpu, estart = measured["echo"]
            ex, ec = _CpuMeter(executor.pid), _CpuMeter(echo.pid)
            lock, lock_cpu = await ex.per_request(tandem.throughput(start, n, 1), n)
            rate, rate_cpu = await ex.per_request(tandem.throughput(start + n, t, w), t)
            client_rate_cpu = ex.client_us
            elock, elock_cpu = await ec.per_request(floor.throughput(estart, n, 1), n)
            erate, erate_cpu = await ec.per_request(floor.throughput(estart + n, t, w), t)
            result = {
                "tandem_latency": _percentiles(lat), "tandem_lockstep_rate": lock, "tandem_rate": rate,
                "echo_latency": _percentiles(elat), "echo_lockstep_rate": elock, "echo_rate": erate,
                "cpu_us_per_request": {"executor": {"latency": lat_cpu, "lockstep": lock_cpu, "pipelined": rate_cpu},
                                       "echo": {"latency": elat_cpu, "lockstep": elock_cpu, "pipelined": erate_cpu},
                                       "bench_client_pipelined": client_rate_cpu},
            }  # fmt: skip
            for name in latency_only:
                plat, plat_cpu, _ = measured[name]
                result[f"{name}_latency"] = _percentiles(plat)
                result["cpu_us_per_request"][name] = {"latency": plat_cpu}
            # the executors' requests: the latency phase's (warm-ups and blocks: up to start - 1), then
            # lockstep and pipelined; the polling-off executor's latency phase alone
            sent = (start - 1) + n + t + (measured["busy_poll_off"][2] - 1)
        await asyncio.sleep(0.2)  # a late duplicate would arrive by now
        result["placement"] = None if cpus is None else {"client_cpu": cpus[0], "peer_cpu": cpus[1]}
        result["confirmations"] = {"sent": sent, "received": sum(c.replies for c in executor_clients),
                                   "unexpected": sum(c.unexpected for c in executor_clients)}  # fmt: skip
    finally:
        for t_ in transports:
            t_.close()
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
    return result


TARGETS = {"p50_ratio": 2.0, "p99_ratio": 3.0, "pipelined_per_s": 10_000.0}
"""Issue #17's targets: round trip p50 and p99 against the echo's in the same run, and the pipelined rate."""


def verdicts(r: dict[str, Any]) -> dict[str, Any]:
    """The figures :data:`TARGETS` judges, and whether each is met."""
    t, e = r["tandem_latency"], r["echo_latency"]
    p50, p99, rate = t["p50"] / e["p50"], t["p99"] / e["p99"], r["tandem_rate"]
    return {"p50_ratio": p50, "p99_ratio": p99, "pipelined_per_s": rate,
            "met": {"p50_ratio": p50 <= TARGETS["p50_ratio"], "p99_ratio": p99 <= TARGETS["p99_ratio"],
                    "pipelined_per_s": rate >= TARGETS["pipelined_per_s"]}}  # fmt: skip


def format_result(r: dict[str, Any], opts: argparse.Namespace) -> str:
    c = r["confirmations"]
    exact = f"confirmations: {c['received']:,} for {c['sent']:,} decisions, {c['unexpected']} unexpected"
    if "soak" in r:
        s = r["soak"]
        return "\n".join([
            f"tandem bench --soak: {s['decisions']:,} decisions, {opts.window} in flight, {s['seconds']:.1f} s "
            f"({s['decisions'] / s['seconds']:,.0f}/s)",
            f"  executor RSS   after warm-up {s['rss_after_warmup_bytes'] / 2**20:.1f} MiB -> last "
            f"{s['rss_last_bytes'] / 2**20:.1f} MiB  (growth {s['rss_growth_pct']:+.2f} %; target < 5 %)",
            f"  open FDs       after warm-up {s['fds_after_warmup']} -> last {s['fds_last']}",
            f"  {exact}",
        ])  # fmt: skip
    t, e, j, b = r["tandem_latency"], r["echo_latency"], r["journaled_echo_latency"], r["sqlite_echo_latency"]
    u = r["busy_poll_off_latency"]
    p = r["placement"]
    where = ("placed by the scheduler" if p is None
             else f"round trips with the brain's side on CPU {p['client_cpu']}, the peers on CPU {p['peer_cpu']}")
    v = verdicts(r)
    cpu = r["cpu_us_per_request"]
    cols = ("p50", "p90", "p99", "max", "mean")
    row = lambda name, d: f"  {name:<26}" + "".join(f"{d[c]:>10.1f}" for c in cols)  # noqa: E731
    ok = lambda k: "met" if v["met"][k] else "NOT met"  # noqa: E731
    lines = [
        f"tandem bench: {opts.rounds} round trips per path after {opts.warmup} warm-up, in {LATENCY_BLOCKS} blocks per"
        f" path taken in turn; two processes, loopback UDP, {where}",
        f"  {'round trip (us)':<26}" + "".join(f"{c:>10}" for c in cols),
        row("decision -> confirmation", t),
        row("bare UDP echo (floor)", e),
        f"  {'ratio tandem / echo':<26}" + "".join(f"{t[c] / e[c]:>10.2f}" for c in cols),
        row("journaled echo", j),
        f"  {'ratio journaled / echo':<26}" + "".join(f"{j[c] / e[c]:>10.2f}" for c in cols),
        row("SQLite echo (one row)", b),
        f"  {'ratio SQLite echo / echo':<26}" + "".join(f"{b[c] / e[c]:>10.2f}" for c in cols),
        row("executor, busy poll off", u),
        f"  {'ratio busy poll off / echo':<26}" + "".join(f"{u[c] / e[c]:>10.2f}" for c in cols),
        f"  throughput                    lockstep ({opts.rounds:,}, 1 in flight)   pipelined ({opts.throughput:,}, "
        f"{opts.window} in flight)",
        f"    decisions/s                 {r['tandem_lockstep_rate']:>12,.0f}   {r['tandem_rate']:>12,.0f}",
        f"    echo datagrams/s            {r['echo_lockstep_rate']:>12,.0f}   {r['echo_rate']:>12,.0f}",
        f"  peer CPU per request (us)     latency {cpu['executor']['latency']:>7.1f}   lockstep "
        f"{cpu['executor']['lockstep']:>7.1f}   pipelined {cpu['executor']['pipelined']:>7.1f}   (executor)",
        f"                                latency {cpu['echo']['latency']:>7.1f}   lockstep "
        f"{cpu['echo']['lockstep']:>7.1f}   pipelined {cpu['echo']['pipelined']:>7.1f}   (echo)",
        f"                                latency {cpu['journaled_echo']['latency']:>7.1f}   (journaled echo)",
        f"                                latency {cpu['sqlite_echo']['latency']:>7.1f}   (SQLite echo)",
        f"                                latency {cpu['busy_poll_off']['latency']:>7.1f}   (executor, busy poll off)",
        f"                                this process (the brain's side), pipelined: "
        f"{cpu['bench_client_pipelined']:.1f}",
        f"  targets (issue #17): p50 ratio {v['p50_ratio']:.2f} <= 2 {ok('p50_ratio')}; p99 ratio {v['p99_ratio']:.2f} "
        f"<= 3 {ok('p99_ratio')}; pipelined {v['pipelined_per_s']:,.0f}/s >= 10,000 {ok('pipelined_per_s')}",
        f"  {exact}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tandem bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000, help="ping-pong round trips measured per path")
    parser.add_argument("--warmup", type=int, default=500, help="round trips discarded first")
    parser.add_argument("--throughput", type=int, default=20000, help="decisions in the sustained phase")
    parser.add_argument("--window", type=int, default=32, help="decisions in flight in the sustained phase")
    parser.add_argument("--log-level", default="info", help="the executor's log level (default: info, as deployed)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True,
                        help="this process on one CPU, every peer on another (default; see placement())")
    parser.add_argument("--soak", type=int, default=0, metavar="N",
                        help="instead: N decisions pipelined, the executor's RSS and open FDs sampled as they go")
    opts = parser.parse_args(argv)
    if min(opts.rounds, opts.throughput, opts.window) < 1 or opts.warmup < 0 or opts.soak < 0:
        parser.error("--rounds, --throughput and --window must be >= 1, --warmup and --soak >= 0")
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp:
        result = run(_bench(opts, Path(tmp)))
    if "soak" not in result:
        result["targets"] = verdicts(result)
    print(json.dumps(result, indent=2) if opts.json else format_result(result, opts))
    c = result["confirmations"]
    return 0 if c["received"] == c["sent"] and c["unexpected"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
