"""Issue #11 §1: keyless traffic cannot change a trade. Real processes: ``tandem executor``, the keyless
flooder (``python -m testbed.flood``, which never holds the key and re-sends only what its tap showed it), and
this test as the brain on a real UDP socket; and ``tandem chaos`` with its flood mode, end to end."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from procs import make_key, start, wait_ready

from foundation.barcsv import bundled_path, load_bars
from protocol import (
    Codec,
    DecisionReason,
    ExecutionConfirmation,
    Heartbeat,
    Instrument,
    Intent,
    ReplayRequest,
    Role,
    Side,
    TradeDecision,
    derive_key,
)
from protocol.errors import RemoteProtocolError

TANDEM = str(Path(sys.executable).parent / "tandem")
BARS = load_bars(bundled_path(), limit=200)


@dataclass
class Rig:
    """A live executor (paper venue), and this test as its brain: ``sock`` is the brain's socket."""

    executor: subprocess.Popen[str]
    decision_addr: tuple[str, int]
    metrics_port: int
    sock: socket.socket
    codec: Codec
    run: Path
    tmp: Path

    def send(self, msg: object) -> bytes:
        data = self.codec.encode(msg, sent_at_ns=time.time_ns())  # type: ignore[arg-type]
        self.sock.sendto(data, self.decision_addr)
        return data

    def drain(self, seconds: float) -> list[bytes]:
        """Every datagram that reaches the brain's socket within ``seconds``."""
        out, end = [], time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                out.append(self.sock.recv(2048))
            except TimeoutError:
                break
        return out

    def confirmations(self, datagrams: list[bytes]) -> list[ExecutionConfirmation]:
        out = []
        for d in datagrams:
            try:
                msg = self.codec.decode(d, time.time_ns())
            except RemoteProtocolError:
                continue
            if isinstance(msg, ExecutionConfirmation):
                out.append(msg)
        return out

    def metric(self, name: str) -> float:
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        total = 0.0
        for line in body.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    key = make_key(tmp_path)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    brain = sock.getsockname()
    run = tmp_path / "run"
    proc = start("executor", f"--run-dir={run}", f"--bus-secret-file={key}", "--decision-addr=127.0.0.1:0",
                 f"--confirm-addr={brain[0]}:{brain[1]}", "--metrics-port=0", "--bars=200", cwd=tmp_path)  # fmt: skip
    try:
        ready = wait_ready(proc, "executor_ready")
        host, _, port = ready["decision_addr"].rpartition(":")
        codec = Codec(derive_key(bytes.fromhex(key.read_text().strip())))
        yield Rig(proc, (host, int(port)), ready["metrics_port"], sock, codec, run, tmp_path)
    finally:
        proc.kill()
        proc.wait()
        sock.close()


def flooder(rig: Rig, *args: str) -> tuple[subprocess.Popen[str], tuple[str, int]]:
    """The keyless flooder at the rig's executor (and its brain socket), with a tap; returns it and the tap."""
    brain = rig.sock.getsockname()
    proc = subprocess.Popen([sys.executable, "-m", "testbed.flood", f"--executor={rig.decision_addr[0]}:{rig.decision_addr[1]}",
                             f"--brain={brain[0]}:{brain[1]}", "--tap=127.0.0.1:0", *args],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    host, _, port = ready["tap"].rpartition(":")
    return proc, (host, int(port))


def stop(proc: subprocess.Popen[str]) -> dict:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    return json.loads(out.strip().splitlines()[-1])


def decision(decision_id: int, qty: float = 0.01) -> TradeDecision:
    now = time.time_ns()
    return TradeDecision(
        decision_id=decision_id, instrument=Instrument.symbol("BTC-PERP"), side=Side.BUY, intent=Intent.OPEN,
        reason=DecisionReason.SIGNAL, quantity=qty, reference_price=BARS.close[10], max_slippage_bps=10_000,
        created_at_ns=now, expires_at_ns=now + 10_000_000_000, market_ts_ns=BARS.close_ns(10 + decision_id),
    )  # fmt: skip


def log_events(tmp: Path) -> list[dict]:
    """The executor's log lines (its stderr, JSON lines: :func:`procs.start` puts it in ``tmp``)."""
    out = []
    for line in (tmp / "stderr-0.log").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def test_a_captured_decision_resent_20000_a_second_is_answered_a_few_times_a_second(rig: Rig) -> None:
    """One authentic decision datagram re-sent 20,000/s for 2 s by a process without the key: executed once,
    answered at most once per 50 ms (about 40 answers, not 40,000), a few log lines; and a new decision sent
    meanwhile is executed and confirmed at once."""
    rig.drain(0.3)  # the executor's first heartbeat
    captured = rig.send(decision(1))
    [first] = rig.confirmations(rig.drain(0.5))
    assert first.decision_id == 1 and first.status.executed
    flood, tap = flooder(rig, "--decision-replays-per-s=20000")
    rig.sock.sendto(captured, tap)  # what a packet capture would show the attacker
    time.sleep(0.2)
    rig.send(decision(2))
    seen = rig.confirmations(rig.drain(2.0))
    figures = stop(flood)
    sent = figures["sent"]["decision_replay"]
    assert sent >= 20_000, figures
    answers = [c for c in seen if c.decision_id == 1]
    assert 1 <= len(answers) <= 2.5 / 0.05 + 5, len(answers)  # one per 50 ms at most over ~2.2 s
    assert [c.decision_id for c in seen if c.decision_id == 2] == [2]
    assert rig.metric("tandem_executor_executions_total") == 2
    assert rig.metric("tandem_executor_duplicate_answers_suppressed_total") >= sent * 0.5
    duplicates = [e for e in log_events(rig.tmp) if e.get("event") == "decision_duplicates"]
    assert len(duplicates) <= 6, len(duplicates)  # one line a second, each with the count suppressed
    assert all(isinstance(e["suppressed"], int) for e in duplicates) and duplicates[-1]["suppressed"] > 0


def test_captured_replay_requests_alternated_are_not_amplified(rig: Rig) -> None:
    """Two captured replay requests (from_seq 1 and 2) alternated at 2,000/s for 2 s: once the brain has said
    it applied everything, they resend nothing; a brain that is behind gets its own request served at once,
    from its own source, while the attacker's get at most the global budget."""
    rig.drain(0.3)
    for i in range(1, 6):
        rig.send(decision(i))
        rig.drain(0.15)
    requests = [rig.codec.encode(ReplayRequest(f), sent_at_ns=time.time_ns()) for f in (1, 2)]
    rig.send(Heartbeat(Role.BRAIN, 5, 77))  # the brain has applied all 5
    rig.drain(0.2)
    flood, tap = flooder(rig, "--replay-requests-per-s=2000")
    for r in requests:
        rig.sock.sendto(r, tap)
    heartbeat_every = 0.4
    seen: list[bytes] = []
    end = time.monotonic() + 2.0
    while time.monotonic() < end:  # the brain stays alive and caught up
        rig.send(Heartbeat(Role.BRAIN, 5, 77))
        seen += rig.drain(heartbeat_every)
    figures = stop(flood)
    sent = figures["sent"]["replay_request"]
    assert sent >= 3_000, figures
    resent = rig.confirmations(seen)
    assert resent == [], f"{len(resent)} confirmations resent for {sent} captured requests"
    assert rig.metric("tandem_executor_replay_requests_ignored_total") >= sent * 0.9

    # a brain that is behind (a restart that lost its last two) asks from its own source: served at once
    flood, tap = flooder(rig, "--replay-requests-per-s=2000")
    for r in requests:
        rig.sock.sendto(r, tap)
    time.sleep(0.3)
    rig.send(Heartbeat(Role.BRAIN, 3, 78))
    rig.send(ReplayRequest(4))
    got = rig.confirmations(rig.drain(1.0))
    figures = stop(flood)
    assert {4, 5} <= {c.seq for c in got}
    ratio = len(got) * 128 / (figures["sent"]["replay_request"] * 40)
    assert ratio < 1.0, f"amplification {ratio:.2f}: {len(got)} confirmations for {figures['sent']['replay_request']}"


def _socket_drops(port: int) -> int:
    """Datagrams the kernel dropped for the UDP socket on ``port`` (its receive buffer was full)."""
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            return int(fields[-1])
    raise AssertionError(f"no UDP socket on port {port}")


def test_a_garbage_flood_is_counted_to_the_datagram_and_logs_a_line_a_second(rig: Rig) -> None:
    """100,000 random datagrams a second for 2 s: every one is either counted by reason in the executor's
    metrics or dropped by the kernel for a full buffer (none is lost unaccounted, none crashes it), the log
    gets about one line per reason per second, and a decision sent during the flood is confirmed."""
    rig.drain(0.3)
    flood, _ = flooder(rig, "--garbage-per-s=100000")
    time.sleep(1.0)
    rig.send(decision(1))
    time.sleep(1.0)
    figures = stop(flood)
    confirmed = rig.confirmations(rig.drain(1.0))
    assert [c.decision_id for c in confirmed if c.decision_id == 1] == [1]
    sent = figures["sent"]["garbage"]
    assert sent >= 150_000, figures
    deadline = time.monotonic() + 10
    while True:
        counted = rig.metric("tandem_executor_datagrams_rejected_total")
        dropped = _socket_drops(rig.decision_addr[1])
        if counted + dropped >= sent or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert counted + dropped == sent, (counted, dropped, sent)
    assert counted >= sent * 0.5, f"only {counted} of {sent} reached the executor's checks"
    lines = [e for e in log_events(rig.tmp) if e.get("event") == "datagram_rejected"]
    reasons = {e["reason"] for e in lines}
    assert reasons <= {"version", "type", "size"} and len(lines) <= 4 * len(reasons), lines
    assert rig.executor.poll() is None


def test_chaos_under_a_keyless_flood_ends_as_the_reference(tmp_path: Path) -> None:
    """The CI-sized flood: `tandem chaos` with kills, bus faults and a keyless flooder sending garbage to both
    processes, forged prefixes, a captured decision, captured replay requests and a captured confirmation —
    PASS: trades.csv byte-identical to the fault-free run, the same open positions, bounded logs."""
    run = tmp_path / "run"
    args = [TANDEM, "chaos", "--run-dir", str(run), "--bars", "8000", "--strategy-params", '{"fast": 10, "slow": 40}',
            "--seed", "7", "--kills-executor", "1", "--kills-brain", "1", "--timeout-s", "120",
            "--flood-garbage-per-s", "40000", "--flood-garbage-to-brain", "--flood-forged-per-s", "2000",
            "--flood-decision-replays-per-s", "10000", "--flood-replay-requests-per-s", "1000",
            "--flood-confirmation-replays-per-s", "2000"]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "verdict                  PASS" in out
    assert re.search(r"trades\.csv\s+identical to the reference", out), out
    report = json.loads((run / "chaos-report.json").read_text())
    flood = report["flood"]
    rates = flood["rates_per_s"]
    assert flood["seconds"] > 1.0 and rates["garbage"] > 30_000 and rates["garbage_brain"] > 30_000, flood
    assert rates["decision_replay"] > 7_000 and rates["confirmation_replay"] > 1_000, flood  # captured ones flowed
    assert report["suppressed_duplicate_answers"] > 1_000
    assert report["expired"] == 0 and report["violations"] == []
    for name, logs in report["logs"].items():
        assert logs["flood_lines"] <= 12 * report["chaos_wall_time_s"] + 50, (name, logs)
