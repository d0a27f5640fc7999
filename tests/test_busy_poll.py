"""Busy polling (issue #17): :class:`foundation.busypoll.BusyPoll` on real loopback sockets, with the
datagram sent by another process; and a real ``tandem executor`` that polls after each answer, with this
test as its brain, counting each window as a hit or a miss."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from procs import clean_env, make_key, start, tandem, wait_ready

from foundation.barcsv import bundled_path, load_bars
from foundation.busypoll import MAX_WINDOW_US, READ_BATCH, BusyPoll
from protocol import (
    Codec,
    DecisionReason,
    ExecutionConfirmation,
    Heartbeat,
    Instrument,
    Intent,
    Side,
    Status,
    TradeDecision,
    derive_key,
)
from protocol.errors import RemoteProtocolError

BARS = load_bars(bundled_path(), limit=200)


@pytest.fixture
def pair() -> tuple[socket.socket, socket.socket]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    yield rx, tx
    rx.close()
    tx.close()


def test_a_pending_datagram_ends_the_window_at_once_and_is_read(pair: tuple[socket.socket, socket.socket]) -> None:
    """A datagram already queued: ``wait`` returns it, with its sender, at its first look (no full
    window), and the socket is left empty."""
    rx, tx = pair
    tx.sendto(b"decision", rx.getsockname())
    time.sleep(0.01)  # delivered to rx's queue
    poll = BusyPoll(rx.fileno(), 1)  # a 1 µs window: only a first look that finds the datagram returns it
    try:
        assert poll.wait() == [(b"decision", tx.getsockname())]
        rx.setblocking(False)
        with pytest.raises(BlockingIOError):
            rx.recv(64)
    finally:
        poll.close()


def test_an_empty_socket_is_polled_for_the_whole_window(pair: tuple[socket.socket, socket.socket]) -> None:
    """Nothing arrives: ``wait`` is ``None``, and only once the window is over."""
    rx, _ = pair
    poll = BusyPoll(rx.fileno(), 2_000)
    t0 = time.perf_counter_ns()
    assert poll.wait() is None
    assert time.perf_counter_ns() - t0 >= 2_000_000
    poll.close()


def test_a_datagram_from_another_process_during_the_window_is_a_hit(pair: tuple[socket.socket, socket.socket]) -> None:
    """Another process, started and ready, is told to send 1 ms later: the window this one is spinning
    in ends on its datagram (a hit in the first few 5 ms windows), and the datagram is the one it sent."""
    rx, _ = pair
    host, port = rx.getsockname()
    sender = subprocess.Popen([sys.executable, "-c", (
        "import socket, sys, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "print('ready', flush=True); sys.stdin.readline(); time.sleep(0.001)\n"
        f"s.sendto(b'next', ('{host}', {port}))\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    poll = BusyPoll(rx.fileno(), MAX_WINDOW_US)
    try:
        assert sender.stdin is not None and sender.stdout is not None
        assert sender.stdout.readline() == "ready\n"
        sender.stdin.write("go\n")
        sender.stdin.flush()
        windows = 1
        while (got := poll.wait()) is None:  # a loaded machine may schedule the sender late: count the windows
            windows += 1
            assert windows <= 200, "no datagram within 200 windows (1 s)"
        assert [data for data, _ in got] == [b"next"]
    finally:
        poll.close()
        sender.stdin.close()  # type: ignore[union-attr]
        sender.stdout.close()  # type: ignore[union-attr]
        sender.wait(timeout=10)


def test_a_flood_is_read_in_batches_in_arrival_order(pair: tuple[socket.socket, socket.socket]) -> None:
    """More datagrams queued than one read takes: the first ``wait`` returns READ_BATCH of them, the
    next the rest, each in the order sent."""
    rx, tx = pair
    n = READ_BATCH + 8
    for i in range(n):
        tx.sendto(i.to_bytes(2, "big"), rx.getsockname())
    time.sleep(0.01)
    poll = BusyPoll(rx.fileno(), 1)
    try:
        first, second = poll.wait(), poll.wait()
        assert first is not None and second is not None
        assert [int.from_bytes(d, "big") for d, _ in first] == list(range(READ_BATCH))
        assert [int.from_bytes(d, "big") for d, _ in second] == list(range(READ_BATCH, n))
    finally:
        poll.close()


def _queue_refusal(sock: socket.socket) -> None:
    """Queue ECONNREFUSED on ``sock``: connect it to a loopback port nobody listens on and send (the
    ICMP port unreachable comes back; Linux reports it on a connected UDP socket)."""
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    dead = closed.getsockname()
    closed.close()
    sock.connect(dead)
    sock.send(b"heartbeat")  # the peer is down
    time.sleep(0.01)


def test_a_queued_socket_error_goes_to_on_error_and_the_datagrams_are_still_read(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """A connected socket's send to a loopback port nobody listens on queues ECONNREFUSED on it (ICMP
    port unreachable; Linux reports it on a connected UDP socket): the poll reads it, hands it to
    ``on_error`` — as the loop gives it to ``error_received`` — and still returns the datagram that
    came after it."""
    rx, tx = pair
    _queue_refusal(rx)
    rx.connect(tx.getsockname())  # the error stays queued
    tx.sendto(b"decision", rx.getsockname())
    time.sleep(0.01)
    errors: list[OSError] = []
    poll = BusyPoll(rx.fileno(), 1, errors.append)
    try:
        assert poll.wait() == [(b"decision", tx.getsockname())]
        assert [type(e) for e in errors] == [ConnectionRefusedError]
    finally:
        poll.close()


def test_a_read_never_waits_even_with_a_default_socket_timeout(pair: tuple[socket.socket, socket.socket]) -> None:
    """Only a socket error queued (no datagram) and a process-wide default timeout set: the poll reads
    the error and returns at once — its reads never wait for that timeout."""
    rx, _ = pair
    _queue_refusal(rx)
    errors: list[OSError] = []
    default = socket.getdefaulttimeout()
    socket.setdefaulttimeout(0.5)
    try:
        poll = BusyPoll(rx.fileno(), 1, errors.append)
    finally:
        socket.setdefaulttimeout(default)
    try:
        t0 = time.monotonic()
        assert poll.wait() == []
        assert time.monotonic() - t0 < 0.25
        assert [type(e) for e in errors] == [ConnectionRefusedError]
    finally:
        poll.close()


def test_closing_the_poll_leaves_the_callers_socket_open(pair: tuple[socket.socket, socket.socket]) -> None:
    """The poll reads through a duplicate descriptor: closing it closes that one only."""
    rx, tx = pair
    poll = BusyPoll(rx.fileno(), 1)
    dup = poll._sock.fileno()
    poll.close()
    poll.close()  # idempotent
    with pytest.raises(OSError):
        os.fstat(dup)
    tx.sendto(b"still open", rx.getsockname())
    assert rx.recv(64) == b"still open"


@pytest.mark.parametrize("window_us", [0, -1, MAX_WINDOW_US + 1])
def test_a_window_outside_its_bounds_is_refused(pair: tuple[socket.socket, socket.socket], window_us: int) -> None:
    """0 means off, and is the caller's to skip; above the cap, the loop's timers would slip."""
    with pytest.raises(ValueError, match="busy poll window"):
        BusyPoll(pair[0].fileno(), window_us)


@pytest.mark.parametrize("value", ["-1", str(MAX_WINDOW_US + 1), "fast"])
def test_the_executor_refuses_a_bad_busy_poll_setting(tmp_path: Path, value: str) -> None:
    """``--busy-poll-us`` out of 0..5000 or not a number: exit 2, one line naming the setting, nothing written."""
    proc = tandem("executor", f"--run-dir={tmp_path / 'run'}", f"--bus-secret-file={make_key(tmp_path)}",
                  f"--busy-poll-us={value}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "busy_poll_us" in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert not (tmp_path / "run").exists()


def _decision(decision_id: int) -> TradeDecision:
    now = time.time_ns()
    side, intent = (Side.BUY, Intent.OPEN) if decision_id % 2 else (Side.SELL, Intent.CLOSE)
    return TradeDecision(
        decision_id=decision_id, instrument=Instrument.symbol("BTC-PERP"), side=side, intent=intent,
        reason=DecisionReason.SIGNAL, quantity=0.01, reference_price=BARS.close[10], max_slippage_bps=10_000,
        created_at_ns=now, expires_at_ns=now + 10_000_000_000, market_ts_ns=BARS.close_ns(10),
    )  # fmt: skip


def _polls(metrics_port: int) -> tuple[float, float]:
    """The executor's ``tandem_executor_busy_polls_total`` for ``hit`` and for ``miss``; both must be exported."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    count: dict[str, float] = {}
    for line in body.splitlines():
        for result in ("hit", "miss"):
            if line.startswith(f'tandem_executor_busy_polls_total{{result="{result}"}} '):
                count[result] = float(line.rsplit(" ", 1)[1])
    assert set(count) == {"hit", "miss"}, f"busy-poll counters not exported: {count}"
    return count["hit"], count["miss"]


def _lockstep(tmp_path: Path, busy_poll_us: int, n: int) -> tuple[list[ExecutionConfirmation], float, float]:
    """``n`` decisions to a real executor, each sent as soon as the previous one's confirmation is read;
    returns the confirmations and the executor's busy-poll hits and misses."""
    key = make_key(tmp_path)
    brain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    brain.bind(("127.0.0.1", 0))
    proc = start("executor", f"--run-dir={tmp_path / 'run'}", f"--bus-secret-file={key}", "--decision-addr=127.0.0.1:0",
                 f"--confirm-addr=127.0.0.1:{brain.getsockname()[1]}", "--metrics-port=0", "--bars=200",
                 f"--busy-poll-us={busy_poll_us}", cwd=tmp_path, env=clean_env())  # fmt: skip
    try:
        ready = wait_ready(proc, "executor_ready")
        host, _, port = ready["decision_addr"].rpartition(":")
        codec = Codec(derive_key(bytes.fromhex(key.read_text().strip())))
        brain.settimeout(10)
        confs: list[ExecutionConfirmation] = []
        for i in range(1, n + 1):
            brain.sendto(codec.encode(_decision(i), sent_at_ns=time.time_ns()), (host, int(port)))
            while True:  # skip heartbeats
                try:
                    msg = codec.decode(brain.recv(2048), time.time_ns())
                except RemoteProtocolError:
                    continue
                if isinstance(msg, ExecutionConfirmation):
                    confs.append(msg)
                    break
        time.sleep(0.05)  # the last answer's window runs out
        return (confs, *_polls(ready["metrics_port"]))
    finally:
        proc.kill()
        proc.wait()
        brain.close()


def test_an_executor_polls_once_after_each_answer_and_catches_a_brain_that_answers_fast(tmp_path: Path) -> None:
    """40 decisions in lockstep, a 5 ms window: each one confirmed FILLED once, in order; one window per
    answer (hits + misses = 40), and most of them caught the next decision (a hit) — only the last answer
    has none to catch."""
    confs, hits, misses = _lockstep(tmp_path, MAX_WINDOW_US, 40)
    assert [c.decision_id for c in confs] == list(range(1, 41))
    assert all(c.status is Status.FILLED for c in confs)
    assert hits + misses == 40
    assert misses >= 1 and hits >= 20, (hits, misses)


def test_an_executor_with_busy_polling_off_never_polls(tmp_path: Path) -> None:
    """``--busy-poll-us 0``: the same 10 decisions confirmed, and no window counted at all."""
    confs, hits, misses = _lockstep(tmp_path, 0, 10)
    assert [c.decision_id for c in confs] == list(range(1, 11))
    assert (hits, misses) == (0, 0)


def test_a_brain_that_answers_fast_for_seconds_still_gets_the_executors_heartbeats(tmp_path: Path) -> None:
    """Decisions in lockstep for 2 s, each sent as soon as the last is confirmed: every window is a hit
    and the poll itself reads each next decision, yet the executor still gives its event loop a turn —
    its heartbeat timer (every 0.1 s here) keeps firing through the stream, not only after it."""
    key = make_key(tmp_path)
    brain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    brain.bind(("127.0.0.1", 0))
    proc = start("executor", f"--run-dir={tmp_path / 'run'}", f"--bus-secret-file={key}", "--decision-addr=127.0.0.1:0",
                 f"--confirm-addr=127.0.0.1:{brain.getsockname()[1]}", "--metrics-port=-1", "--bars=200",
                 "--heartbeat-s=0.1", "--busy-poll-us=2000", cwd=tmp_path, env=clean_env())  # fmt: skip
    try:
        ready = wait_ready(proc, "executor_ready")
        host, _, port = ready["decision_addr"].rpartition(":")
        codec = Codec(derive_key(bytes.fromhex(key.read_text().strip())))
        brain.settimeout(10)
        confirmed = 0
        heartbeats: list[float] = []  # when each arrived during the stream, s from its start
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < 2.0:
            i += 1
            brain.sendto(codec.encode(_decision(i), sent_at_ns=time.time_ns()), (host, int(port)))
            while True:
                try:
                    msg = codec.decode(brain.recv(2048), time.time_ns())
                except RemoteProtocolError:
                    continue
                if isinstance(msg, Heartbeat):
                    heartbeats.append(time.monotonic() - t0)
                elif isinstance(msg, ExecutionConfirmation):
                    assert msg.decision_id == i
                    confirmed += 1
                    break
    finally:
        proc.kill()
        proc.wait()
        brain.close()
    assert confirmed == i and confirmed >= 200, confirmed
    # 0.1 s apart: ~20 in 2 s; a starved loop sends none until the stream stops
    late = [t for t in heartbeats if t > 0.5]
    assert len(late) >= 8, heartbeats
    gaps = [b - a for a, b in itertools.pairwise(late)]
    assert max(gaps) < 0.5, gaps



_BRAIN = """
import socket, sys, time
from protocol import Codec, ExecutionConfirmation, derive_key
codec = Codec(derive_key(b"k" * 32))
brain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
brain.bind(("127.0.0.1", 0))
brain.settimeout(5)
print(brain.getsockname()[1], flush=True)
host, port, *decisions = sys.stdin.readline().split()
executor = (host, int(port))
seen = []
def until_confirmed(decision_id):
    deadline = time.monotonic() + 5
    while decision_id not in seen and time.monotonic() < deadline:  # heartbeats keep coming meanwhile
        msg = codec.decode(brain.recv(2048), time.time_ns())
        if isinstance(msg, ExecutionConfirmation):
            seen.append(msg.decision_id)
for i in range(0, len(decisions), 2):  # rounds: one is enough whose bad datagram comes within the window
    brain.sendto(bytes.fromhex(decisions[i]), executor)
    until_confirmed(i + 1)  # the executor now polls its socket for 5 ms
    brain.sendto(b"\\x05not a datagram", executor)  # read by the poll, dropped: the drop hook raises
    brain.sendto(bytes.fromhex(decisions[i + 1]), executor)
    until_confirmed(i + 2)
print(" ".join(map(str, seen)), flush=True)
"""


def test_a_bug_handling_a_datagram_the_poll_read_is_counted_and_the_worker_carries_on(tmp_path: Path) -> None:
    """A datagram read by the busy poll whose handling raises (here the drop hook, standing for any bug
    outside the endpoint's own guard) is counted in ``handler_errors``; the worker survives it and the
    next decision is confirmed — it does not stay in flight for good. The brain is another process, so
    it sends while this executor's loop is inside the poll's window, in five rounds."""
    from executor.app import ExecutorApp
    from executor.core import ExecutorCore
    from executor.metrics import ExecutorMetrics
    from executor.venue.paper import PaperVenue
    from foundation.runtime import run

    codec = Codec(derive_key(b"k" * 32))

    def broken_drop(*_: object) -> None:
        raise RuntimeError("a bug in the drop path")

    async def scenario() -> tuple[str, ExecutorMetrics, int, bool, set[int]]:
        env = clean_env(PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        brain = await asyncio.create_subprocess_exec(sys.executable, "-c", _BRAIN, env=env, stdin=asyncio.subprocess.PIPE,
                                                     stdout=asyncio.subprocess.PIPE)  # fmt: skip
        assert brain.stdin is not None and brain.stdout is not None
        brain_port = int(await asyncio.wait_for(brain.stdout.readline(), 30))
        core = await ExecutorCore.open(tmp_path / "executor.sqlite", PaperVenue(BARS, instrument=Instrument.symbol("BTC-PERP")),
                                       1e9)  # fmt: skip
        metrics = ExecutorMetrics()
        app = ExecutorApp(core, codec, metrics, ("127.0.0.1", 0), ("127.0.0.1", brain_port), busy_poll_us=MAX_WINDOW_US)
        await app.start()
        try:
            assert app.endpoint is not None and app._worker is not None
            app.endpoint.on_drop = broken_drop
            host, port = app.address
            decisions = " ".join(codec.encode(_decision(i), sent_at_ns=time.time_ns()).hex() for i in range(1, 11))
            brain.stdin.write(f"{host} {port} {decisions}\n".encode())
            await brain.stdin.drain()
            seen = (await asyncio.wait_for(brain.stdout.readline(), 30)).decode().strip()
            await brain.wait()
            hits = int(app._busy_polls[True]._value.get())
            return seen, metrics, hits, app._worker.done(), set(app._active)
        finally:
            app.close()
            await core.aclose()

    seen, metrics, hits, worker_done, active = run(scenario())
    assert seen == " ".join(map(str, range(1, 11)))
    # each bad datagram is counted, by whichever read took it: on a loaded machine the brain may miss
    # a 5 ms window, so it takes five rounds for at least one to land in the poll's
    assert 1 <= metrics.handler_errors._value.get() <= 5 and hits >= 1
    assert not worker_done and active == set()
