"""Secrets never appear in logs, metrics or error messages (issue #3 §5)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import structlog
from harness import SECRET, ScriptedStrategy, start_harness
from prometheus_client import generate_latest

from foundation.barcsv import bundled_path, load_bars
from protocol import DECISION_SIZE, PROTOCOL_VERSION, Side

BARS = load_bars(bundled_path(), limit=300)


def forms(secret: bytes) -> list[str]:
    """The ways a secret could leak into text: raw, hex, and its halves."""
    text = secret.decode(errors="replace")
    return [text, secret.hex(), text[: len(text) // 2], text[len(text) // 2 :]]


async def test_secret_absent_from_logs_and_metrics(tmp_path: Path) -> None:
    """A full trade cycle with forged traffic logs and exports nothing that contains the bus secret."""
    h = await start_harness(tmp_path, BARS, ScriptedStrategy({10: Side.BUY, 60: Side.SELL}))
    try:
        with structlog.testing.capture_logs() as logs:
            await h.brain.replay(BARS)
            forged = bytes((PROTOCOL_VERSION, 1)) + bytes(DECISION_SIZE - 2)  # a forged decision: logged as rejected
            h.brain.endpoint.send_raw(forged)
            await asyncio.sleep(0.1)
        assert any(e["event"] == "datagram_rejected" and e["reason"] == "auth" for e in logs)
        text = "\n".join(repr(e) for e in logs)
        exported = generate_latest(h.brain.metrics.registry).decode() + generate_latest(h.executor.metrics.registry).decode()
    finally:
        h.close()
    assert len(logs) > 5
    for leak in forms(SECRET):
        assert leak not in text
        assert leak not in exported


def test_secret_absent_from_error_messages(tmp_path: Path) -> None:
    """A process refusing its configuration names the setting but never prints the secret."""
    secret = "hunter2-is-not-a-good-bus-secret"
    env = {"TANDEM_BUS_SECRET": secret[:16], "TANDEM_DECISION_ADDR": "0.0.0.0:0", "TANDEM_METRICS_PORT": "-1",
           "TANDEM_RUN_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "executor"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "bus_secret: the bus secret is 16 bytes" in proc.stderr
    env["TANDEM_BUS_SECRET_FILE"] = str(tmp_path / "missing.key")
    proc2 = subprocess.run([sys.executable, "-m", "brain"], capture_output=True, text=True, env=env, timeout=60)
    assert proc2.returncode == 2 and "bus_secret" in proc2.stderr
    for out in (proc.stdout + proc.stderr, proc2.stdout + proc2.stderr):
        assert secret[:16] not in out and secret[:8] not in out
