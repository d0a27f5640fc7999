"""Issue #11 §2: a storage fault ends in a clear error and a distinct exit code, never a hang, and the run
resumes byte-identical once the fault is gone — real processes, a real full disk (a small tmpfs in a private
mount namespace), a real SQLite lock held by another process, and key files that never end."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from procs import clean_env, free_port, make_key, refused, tandem

from foundation.errors import STORAGE_FAULT_EXIT

TESTS = Path(__file__).parent
FAST = ["--bars=8000", '--strategy-params={"fast": 10, "slow": 40}', "--progress=off", "--metrics-port=-1",
        "--executor-metrics-port=-1", f"--decision-addr=127.0.0.1:{free_port()}",
        f"--confirm-addr=127.0.0.1:{free_port()}"]  # fmt: skip
"""The bus on ports of its own: another test process (pytest -n) may be using the defaults."""


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fault-free run of the same inputs."""
    run = tmp_path_factory.mktemp("reference") / "run"
    proc = tandem("paper", f"--run-dir={run}", *FAST, cwd=run.parent)
    assert proc.returncode == 0, proc.stderr
    return run


def _namespace_prefix() -> list[str]:
    """``unshare`` into a private mount namespace (mapping this user to root when not root: an
    unprivileged user may mount a tmpfs there)."""
    unshare = shutil.which("unshare")
    assert unshare, "util-linux's unshare is needed to make a small tmpfs for the full-disk test"
    return [unshare, "--mount"] if os.geteuid() == 0 else [unshare, "--mount", "--map-root-user"]


@pytest.mark.parametrize("headroom", [250_000, 600_000])
def test_a_full_disk_stops_the_run_with_exit_3_and_the_resumed_run_is_identical(
        tmp_path: Path, reference: Path, headroom: int) -> None:  # fmt: skip
    """A 4 MiB tmpfs with only ``headroom`` bytes free: a journal write fails, the process stops with exit 3
    and one clear line (no hang, no traceback, no 0-byte ledger); after the space is freed the same command
    on the same run dir resumes and ends with trades.csv and equity.csv byte-identical to the reference."""
    mount, out = tmp_path / "mnt", tmp_path / "out"
    mount.mkdir()
    script = (f"mount -t tmpfs -o size=4m tmpfs {mount} && exec {sys.executable} {TESTS / 'storage_scenario.py'} "
              f"{mount} {out} -- " + " ".join(f"'{a}'" for a in FAST))  # fmt: skip
    proc = subprocess.run([*_namespace_prefix(), "sh", "-c", script], capture_output=True, text=True, timeout=300,
                          env=clean_env(HEADROOM=str(headroom)), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    first, second = result["first"], result["second"]
    assert first["rc"] == STORAGE_FAULT_EXIT, first
    assert "stopped on a storage fault (exit 3)" in first["stderr"] and "Traceback" not in first["stderr"], first
    assert "database or disk is full" in first["stderr"] or "No space left" in first["stderr"], first
    assert result["listing_after_first"].get("executor-ledger.json", 1) > 0, "a 0-byte ledger snapshot"
    assert second["rc"] == 0, second
    assert (out / "trades.csv").read_bytes() == (reference / "trades.csv").read_bytes()
    assert (out / "equity.csv").read_bytes() == (reference / "equity.csv").read_bytes()
    for log in ("brain.log", "executor.log"):  # appended, not wiped: both runs are in it
        assert (out / log).read_text().count('"event": "paper_start"') == 2, log


def _hold_lock(db: Path, seconds: float, started: threading.Event) -> None:
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    started.set()
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


def _paced_run(tmp_path: Path, lock_s: float) -> tuple[subprocess.CompletedProcess[str], Path]:
    """A paper run paced to ~4 s; 1 s in, another process holds brain.sqlite's write lock for ``lock_s``."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "tandem.cli", "paper", f"--run-dir={run}", *FAST,
                             "--replay-bars-per-s=2000"], cwd=tmp_path, env=clean_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    db = run / "brain.sqlite"
    deadline = time.monotonic() + 30
    while not (db.exists() and (run / "brain.sqlite-wal").exists()) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(1.0)
    started = threading.Event()
    locker = threading.Thread(target=_hold_lock, args=(db, lock_s, started))
    locker.start()
    assert started.wait(10)
    out, err = proc.communicate(timeout=120)
    locker.join()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), run


def test_a_brain_journal_locked_for_two_seconds_is_ridden_out(tmp_path: Path, reference: Path) -> None:
    """The brain's journal write-locked by another process for 2 s mid-run: its writes wait and retry, the
    run ends normally and byte-identical (the link applies nothing it has not journaled)."""
    proc, run = _paced_run(tmp_path, 2.0)
    assert proc.returncode == 0, proc.stderr
    assert (run / "trades.csv").read_bytes() == (reference / "trades.csv").read_bytes()


def test_a_brain_journal_locked_for_good_stops_with_exit_3_then_resumes(tmp_path: Path, reference: Path) -> None:
    """Locked for 12 s — longer than the bounded retries: the brain stops with exit 3 and one line naming its
    journal (no raw sqlite3 traceback, no wedge); run again on the same run dir, it resumes and ends identical."""
    started = time.monotonic()
    proc, run = _paced_run(tmp_path, 12.0)
    assert proc.returncode == STORAGE_FAULT_EXIT, (proc.returncode, proc.stderr)
    assert time.monotonic() - started < 60
    assert "brain stopped on a storage fault" in proc.stderr and "brain.sqlite" in proc.stderr, proc.stderr
    assert "database is locked" in proc.stderr and "sqlite3.OperationalError" not in proc.stderr, proc.stderr
    again = tandem("paper", f"--run-dir={run}", *FAST, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (run / "trades.csv").read_bytes() == (reference / "trades.csv").read_bytes()


@pytest.mark.parametrize("command", ["brain", "executor"])
@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "huge file"])
def test_a_key_file_that_never_ends_is_refused_without_reading_it_all(tmp_path: Path, command: str, kind: str) -> None:
    """``/dev/zero``, a FIFO nobody writes to, or a 64 MiB file as the bus secret file: refused at once in one
    line, reading at most 4 KiB (no 1.7 GB of RSS, no hang)."""
    if kind == "/dev/zero":
        path = Path("/dev/zero")
    elif kind == "fifo":
        path = tmp_path / "key.fifo"
        os.mkfifo(path, 0o600)
    else:
        path = tmp_path / "key.big"
        with path.open("wb") as fh:
            fh.truncate(64 << 20)
        path.chmod(0o600)
    started = time.monotonic()
    proc = tandem(command, f"--run-dir={tmp_path / 'run'}", f"--bus-secret-file={path}", "--metrics-port=-1",
                  "--decision-addr=127.0.0.1:0" if command == "executor" else "--confirm-addr=127.0.0.1:0",
                  cwd=tmp_path, timeout=20)  # fmt: skip
    line = refused(proc, command)
    assert time.monotonic() - started < 15
    if kind == "huge file":
        assert line == f"bus_secret_file: {path} holds more than 4096 bytes: not a key file", line
    else:
        assert line == f"bus_secret_file: {path} is not a regular file", line
    assert not (tmp_path / "run").exists()


def test_paper_on_an_existing_run_dir_keeps_its_key_and_appends_its_logs(tmp_path: Path) -> None:
    """A second `tandem paper` on a run dir keeps bus.key (same bytes) and appends to both logs."""
    run = tmp_path / "run"
    args = ["paper", f"--run-dir={run}", "--bars=300", "--progress=off", "--metrics-port=-1", "--executor-metrics-port=-1"]
    assert tandem(*args, cwd=tmp_path).returncode == 0
    key, logs = (run / "bus.key").read_bytes(), {n: (run / n).read_bytes() for n in ("brain.log", "executor.log")}
    again = tandem(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (run / "bus.key").read_bytes() == key
    for name, before in logs.items():
        after = (run / name).read_bytes()
        assert after.startswith(before) and len(after) > len(before), name


def test_paper_refuses_a_kept_key_that_is_open_to_others(tmp_path: Path) -> None:
    """The kept bus.key must pass the processes' checks up front: mode 0644 is refused before anything starts."""
    run = tmp_path / "run"
    run.mkdir()
    key = make_key(run)
    key.chmod(0o644)
    proc = tandem("paper", f"--run-dir={run}", "--bars=300", "--progress=off", "--metrics-port=-1",
                  "--executor-metrics-port=-1", cwd=tmp_path)  # fmt: skip
    assert refused(proc, "paper") == f"bus_secret_file: permissions 0644 for '{key}' are too open; chmod 600 it"


def test_an_executor_down_past_the_freshness_window_is_ridden_out_by_restamping(tmp_path: Path,
                                                                               reference: Path) -> None:
    """The executor stops on a storage fault while admitting a decision (its journal write-locked by another
    process), and stays down past the decision's expiry and past the freshness window, as a crash-looping
    service on a full disk would. Restarted on the same run dir, it proves — by a heartbeat stamped after
    every copy went stale — that it never journaled the decision; the brain sends it again under the same id
    with fresh stamps, and the replay ends byte-identical to the reference."""
    from procs import free_port, start, wait_ready

    key, run = make_key(tmp_path), tmp_path / "run"
    dec, conf = free_port(), free_port()
    exe_args = ["executor", f"--run-dir={run}", f"--bus-secret-file={key}", f"--decision-addr=127.0.0.1:{dec}",
                f"--confirm-addr=127.0.0.1:{conf}", "--metrics-port=-1", "--bars=8000", "--max-age-s=3"]  # fmt: skip
    executor = start(*exe_args, cwd=tmp_path)
    brain = None
    try:
        wait_ready(executor, "executor_ready")
        brain = start("brain", f"--run-dir={run}", f"--bus-secret-file={key}", f"--decision-addr=127.0.0.1:{dec}",
                      f"--confirm-addr=127.0.0.1:{conf}", "--metrics-port=-1", "--bars=8000",
                      '--strategy-params={"fast": 10, "slow": 40}', "--replay-bars-per-s=3000", "--decision-ttl-s=1",
                      "--max-age-s=3",
                      cwd=tmp_path)  # fmt: skip
        deadline = time.monotonic() + 30
        while _confirmed(run) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        # Between two decisions: with the brain stopped the executor finishes the one in flight
        # (its outcome written), so the write that fails is the next decision's admission.
        os.kill(brain.pid, signal.SIGSTOP)
        time.sleep(0.5)
        db = sqlite3.connect(run / "executor.sqlite", timeout=30, isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")  # the executor's next write fails for good
        os.kill(brain.pid, signal.SIGCONT)
        assert executor.wait(timeout=30) == STORAGE_FAULT_EXIT
        stopped = time.monotonic()
        while time.monotonic() - stopped < 4.5:  # down past the 1 s expiry and the 3 s freshness window
            time.sleep(0.1)
        db.execute("ROLLBACK")
        db.close()
        executor = start(*exe_args, cwd=tmp_path)  # the supervisor's restart
        wait_ready(executor, "executor_ready")
        assert brain.wait(timeout=60) == 0
    finally:
        for p in (brain, executor):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(timeout=20)
    errors = (tmp_path / "stderr-0.log").read_text()
    assert "storage fault" in errors and "database is locked" in errors, errors[-2000:]
    # admitting: on the paper venue the decision and its outcome are one transaction (issue #17)
    assert re.search(r"executor\.sqlite: one transaction \(decision \d+; outcome of decision \d+ \(seq \d+\)\) could "
                     r"not be written", errors), errors[-2000:]
    report = json.loads((run / "report.json").read_text())
    assert report["decisions_restamped"] >= 1, report
    assert report["decisions_by_outcome"] == json.loads((reference / "report.json").read_text())["decisions_by_outcome"]
    assert (run / "trades.csv").read_bytes() == (reference / "trades.csv").read_bytes()


def _confirmed(run: Path) -> int:
    db = run / "brain.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT COUNT(*) FROM confirmations").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
