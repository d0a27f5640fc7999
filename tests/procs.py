"""Helpers for tests that run ``tandem`` commands as real processes and check what they refuse.

Every command runs with ``python -m tandem.cli`` in a scratch working directory (no ``.env``) and
an environment without ``TANDEM_*`` variables, unless a test passes some.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from foundation.bussecret import new_bus_secret, write_secret_file

__all__ = ["clean_env", "free_port", "listing", "make_key", "refused", "start", "tandem", "wait_ready", "write_bars"]


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without ``TANDEM_*`` variables, plus ``extra``."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")} | extra


def tandem(*args: str, cwd: Path, env: dict[str, str] | None = None, prefix: Sequence[str] = (),
           timeout: float = 60) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run ``tandem ARGS`` to completion (``prefix``: a wrapper such as ``setpriv ...``)."""
    return subprocess.run([*prefix, sys.executable, "-m", "tandem.cli", *args], cwd=cwd, env=env or clean_env(),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def start(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``tandem ARGS`` (stdout piped for its ready line, stderr to a file next to ``cwd``)."""
    err = (cwd / f"stderr-{len(list(cwd.glob('stderr-*')))}.log").open("w")
    with err:
        return subprocess.Popen([sys.executable, "-m", "tandem.cli", *args], cwd=cwd, env=env or clean_env(),
                                stdout=subprocess.PIPE, stderr=err, text=True)  # fmt: skip


def wait_ready(proc: subprocess.Popen[str], event: str) -> dict[str, Any]:
    """The ready line (``{"event": event, ...}``) ``proc`` prints once it listens."""
    assert proc.stdout is not None
    for line in proc.stdout:
        msg = json.loads(line)
        if msg.get("event") == event:
            return msg
    raise AssertionError(f"exited with {proc.wait()} before {event}")


def refused(proc: subprocess.CompletedProcess[str], prog: str) -> str:
    """Assert ``proc`` exited 2 with exactly one line on stderr, ``<prog>: ...``, and nothing on
    stdout; returns that line without the prefix."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"tandem {prog}: "), lines[0]
    assert proc.stdout == "", proc.stdout
    return lines[0].removeprefix(f"tandem {prog}: ")


def listing(path: Path) -> dict[str, int] | None:
    """Every file under ``path`` with its size (``None``: ``path`` does not exist)."""
    if not path.exists():
        return None
    return {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*")) if p.is_file()}


def make_key(directory: Path) -> Path:
    """A fresh 32-byte bus secret file, mode 0600."""
    key = directory / "bus.key"
    write_secret_file(key, new_bus_secret())
    return key


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A loopback port free at the time of the call, drawn below the kernel's ephemeral range
    (``/proc/sys/net/ipv4/ip_local_port_range``, 32768-60999 by default): a port the kernel hands out
    to every ``bind(0)`` and outgoing socket may be taken again by any process between this call and
    the test's own bind — it was, under two test processes — while one drawn at random from 10000-32767
    collides only with another test's draw."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(10_000, 32_768)
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port in 10000-32767 after 200 draws")


def write_bars(path: Path, rows: Sequence[str], n_valid: int = 0) -> Path:
    """A bar CSV: ``n_valid`` ordinary 1-minute bars, then ``rows`` as given."""
    body = [f"{1_600_000_000_000 + 60_000 * i},100,101,99,100,1" for i in range(n_valid)]
    path.write_text("timestamp_ms,open,high,low,close,volume\n" + "".join(f"{r}\n" for r in [*body, *rows]))
    return path
