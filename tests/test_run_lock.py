"""One writer per run directory: a second executor or brain on it is refused naming the holder, the
first keeps serving, and a SIGKILLed holder does not block a restart (the kernel drops its flock)."""

from __future__ import annotations

import re
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import listing, make_key, refused, start, tandem, wait_ready

from foundation.rundir import RunDirBusy, check_not_in_use, lock_run_dir


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes started by a test; any still running at its end is killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


def executor_args(run: Path, key: Path, metrics_port: int = -1) -> list[str]:
    return ["executor", f"--run-dir={run}", f"--bus-secret-file={key}", "--decision-addr=127.0.0.1:0",
            "--confirm-addr=127.0.0.1:9", f"--metrics-port={metrics_port}", "--bars=200"]  # fmt: skip


def brain_args(run: Path, key: Path) -> list[str]:
    # the executor's address is a discard port: the brain waits for it, listening, until stopped
    return ["brain", f"--run-dir={run}", f"--bus-secret-file={key}", "--confirm-addr=127.0.0.1:0",
            "--decision-addr=127.0.0.1:9", "--metrics-port=-1", "--bars=200"]  # fmt: skip


def holder_line(run: Path, role: str, pid: int) -> str:
    return (rf"run dir {re.escape(str(run))} is in use by {role} pid {pid} on host \S+ "
            rf"\(started \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ\); lock {re.escape(str(run / f'{role}.lock'))}")  # fmt: skip


def test_second_executor_refused_first_keeps_serving_kill_9_frees(tmp_path: Path, procs: list) -> None:
    """A second executor on a run dir exits 2 naming the first; the first still serves; after its SIGKILL a new one starts."""
    key, run = make_key(tmp_path), tmp_path / "run"
    first = start(*executor_args(run, key, metrics_port=0), cwd=tmp_path)
    procs.append(first)
    ready = wait_ready(first, "executor_ready")
    before = listing(run)
    second = tandem(*executor_args(run, key), cwd=tmp_path)
    assert re.fullmatch(holder_line(run, "executor", first.pid), refused(second, "executor"))
    assert listing(run) == before, "the refused executor wrote into the run dir"
    body = urllib.request.urlopen(f"http://127.0.0.1:{ready['metrics_port']}/metrics", timeout=5).read()
    assert b"tandem_executor_" in body and first.poll() is None
    first.send_signal(signal.SIGKILL)
    first.wait()
    third = start(*executor_args(run, key), cwd=tmp_path)
    procs.append(third)
    wait_ready(third, "executor_ready")
    third.terminate()
    assert third.wait(timeout=30) == 0


def test_second_brain_refused_kill_9_frees(tmp_path: Path, procs: list) -> None:
    """A second brain on a run dir exits 2 naming the first, which keeps running; after its SIGKILL a new one starts."""
    key, run = make_key(tmp_path), tmp_path / "run"
    first = start(*brain_args(run, key), cwd=tmp_path)
    procs.append(first)
    wait_ready(first, "brain_ready")
    before = listing(run)
    second = tandem(*brain_args(run, key), cwd=tmp_path)
    assert re.fullmatch(holder_line(run, "brain", first.pid), refused(second, "brain"))
    assert listing(run) == before and first.poll() is None
    first.send_signal(signal.SIGKILL)
    first.wait()
    third = start(*brain_args(run, key), cwd=tmp_path)
    procs.append(third)
    wait_ready(third, "brain_ready")
    third.terminate()
    assert third.wait(timeout=30) == 1  # interrupted mid-replay: outputs written, exit 1


def test_paper_refuses_a_run_dir_whose_executor_is_running(tmp_path: Path, procs: list) -> None:
    """tandem paper --run-dir on a directory an executor holds: exit 2 naming it, no bus.key or log written."""
    key, run = make_key(tmp_path), tmp_path / "run"
    executor = start(*executor_args(run, key), cwd=tmp_path)
    procs.append(executor)
    wait_ready(executor, "executor_ready")
    before = listing(run)
    proc = tandem("paper", f"--run-dir={run}", "--bars=200", "--metrics-port=-1", "--executor-metrics-port=-1",
                  "--decision-addr=127.0.0.1:0", "--confirm-addr=127.0.0.1:0", cwd=tmp_path)  # fmt: skip
    assert re.fullmatch(holder_line(run, "executor", executor.pid), refused(proc, "paper"))
    assert listing(run) == before


def test_lock_is_exclusive_in_one_process_and_released(tmp_path: Path) -> None:
    """Two locks on one role exclude each other even in one process; release frees it; roles are independent."""
    with lock_run_dir(tmp_path, "executor"):
        with pytest.raises(RunDirBusy, match=r"in use by executor pid \d+ on host"):
            lock_run_dir(tmp_path, "executor")
        with pytest.raises(RunDirBusy):
            check_not_in_use(tmp_path)
        lock_run_dir(tmp_path, "brain").release()
    check_not_in_use(tmp_path)
    lock_run_dir(tmp_path, "executor").release()
