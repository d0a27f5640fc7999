"""``tandem bench``: decision→confirmation round trips between two processes over loopback UDP,
measured against a bare UDP echo between two processes (the floor).

The executor under test is the real one (``python -m executor``: paper venue, SQLite journal in
WAL mode, structlog to a file, metrics off); this process plays the brain with the real codec.
Phases: (1) ping-pong latency, one decision in flight; (2) sustained throughput with ``window``
decisions in flight; then the same two phases against an echo process that returns each datagram.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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

_TIMEOUT_S = 2.0


class _Client(asyncio.DatagramProtocol):
    """Matches replies to requests by key: decision_id (tandem) or a 8-byte counter (echo)."""

    def __init__(self, codec: Codec | None) -> None:
        self.codec = codec
        self.waiting: dict[int, asyncio.Future[int]] = {}
        self.transport: Any = None

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
        fut = self.waiting.pop(key, None)
        if fut is not None and not fut.done():
            fut.set_result(now)


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
        self.client.waiting[i] = fut
        t0 = time.perf_counter_ns()
        self.client.transport.sendto(self.make(i), self.peer)
        t1 = await asyncio.wait_for(fut, _TIMEOUT_S)
        return t1 - t0

    async def latency(self, start: int, warmup: int, n: int) -> list[int]:
        for i in range(start, start + warmup):
            await self.roundtrip(i)
        return [await self.roundtrip(i) for i in range(start + warmup, start + warmup + n)]

    async def throughput(self, start: int, n: int, window: int) -> float:
        sem = asyncio.Semaphore(window)

        async def one(i: int) -> None:
            async with sem:
                await self.roundtrip(i)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(start, start + n)))
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


def _spawn(args: list[str], log: Path) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    with log.open("w") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        return proc, json.loads(line)
    except json.JSONDecodeError:
        proc.kill()
        raise RuntimeError(f"{args[:3]} did not start: {log.read_text()[-2000:]}") from None


async def _bench(opts: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    secret = new_bus_secret()
    key = workdir / "bus.key"
    write_secret_file(key, secret)
    codec = Codec(derive_key(secret))
    tandem_client = _Client(codec)
    transport, _ = await loop.create_datagram_endpoint(lambda: tandem_client, local_addr=("127.0.0.1", 0))
    my_port = transport.get_extra_info("sockname")[1]
    bars = load_bars(bundled_path(), limit=100)
    executor, ready = _spawn(
        [sys.executable, "-m", "executor", "--decision-addr", "127.0.0.1:0", "--confirm-addr", f"127.0.0.1:{my_port}",
         "--bus-secret-file", str(key), "--run-dir", str(workdir), "--metrics-port", "-1", "--bars", "100",
         "--starting-cash", "1e12", "--log-level", opts.log_level],
        workdir / "executor.log",
    )  # fmt: skip
    echo, echo_ready = _spawn([sys.executable, "-m", "testbed.bench", "--echo-server"], workdir / "echo.log")
    try:
        host, port = ready["decision_addr"].rsplit(":", 1)
        tandem = _Target(tandem_client, (host, int(port)), _decision_factory(codec, bars.close_ns(10), bars.close[10]))
        echo_client = _Client(None)
        echo_transport, _ = await loop.create_datagram_endpoint(lambda: echo_client, local_addr=("127.0.0.1", 0))
        size = MESSAGE_SIZES[MessageType.DECISION]  # a decision's size, so both paths carry the same payload
        floor = _Target(echo_client, ("127.0.0.1", echo_ready["port"]), lambda i: i.to_bytes(8, "little").ljust(size, b"\0"))
        n, w, warm = opts.rounds, opts.window, opts.warmup
        result = {
            "tandem_latency": _percentiles(await tandem.latency(1, warm, n)),
            "tandem_rate": await tandem.throughput(1 + warm + n, opts.throughput, w),
            "echo_latency": _percentiles(await floor.latency(1, warm, n)),
            "echo_rate": await floor.throughput(1 + warm + n, opts.throughput, w),
        }
        echo_transport.close()
    finally:
        transport.close()
        for proc in (executor, echo):
            proc.terminate()
            proc.wait(timeout=10)
    return result


def _echo_server() -> int:
    """A bare UDP echo on an ephemeral loopback port; prints ``{"port": N}`` then serves."""

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.transport.sendto(data, addr)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        print(json.dumps({"port": transport.get_extra_info("sockname")[1]}), flush=True)
        await asyncio.Event().wait()

    try:
        run(serve())
    except KeyboardInterrupt:
        pass
    return 0


def format_result(r: dict[str, Any], opts: argparse.Namespace) -> str:
    t, e = r["tandem_latency"], r["echo_latency"]
    cols = ("p50", "p90", "p99", "max", "mean")
    row = lambda name, d: f"  {name:<26}" + "".join(f"{d[c]:>10.1f}" for c in cols)  # noqa: E731
    lines = [
        f"tandem bench: {opts.rounds} round trips per path after {opts.warmup} warm-up, two processes, loopback UDP",
        f"  {'round trip (us)':<26}" + "".join(f"{c:>10}" for c in cols),
        row("decision -> confirmation", t),
        row("bare UDP echo (floor)", e),
        f"  {'ratio tandem / echo':<26}" + "".join(f"{t[c] / e[c]:>10.2f}" for c in cols),
        f"  sustained, {opts.window} in flight, {opts.throughput} each:",
        f"    decisions/s        {r['tandem_rate']:>10,.0f}",
        f"    echo datagrams/s   {r['echo_rate']:>10,.0f}   (ratio {r['tandem_rate'] / r['echo_rate']:.2f})",
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
    parser.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.echo_server:
        return _echo_server()
    if min(opts.rounds, opts.throughput, opts.window) < 1 or opts.warmup < 0:
        parser.error("--rounds, --throughput and --window must be >= 1, --warmup >= 0")
    with tempfile.TemporaryDirectory(prefix="tandem-bench-") as tmp:
        result = run(_bench(opts, Path(tmp)))
    print(json.dumps(result, indent=2) if opts.json else format_result(result, opts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
