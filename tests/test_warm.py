"""Warm children (``tandem.warm``, issue #17): the brain and the executor import while ``tandem paper``
checks its inputs, create nothing until given their command line, and are stopped when the run is
refused. Real processes throughout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import procs
import pytest

from tandem import paper
from tandem.warm import ROLES, WarmChild


def test_a_warm_child_given_no_command_line_exits_having_created_nothing(tmp_path: Path) -> None:
    before = set(os.listdir(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "tandem.warm", "executor"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)  # fmt: skip
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert set(os.listdir(tmp_path)) == before


def test_a_warm_child_refuses_an_unknown_role() -> None:
    proc = subprocess.run([sys.executable, "-m", "tandem.warm", "exchange"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "usage: python -m tandem.warm {executor|brain}" in proc.stderr
    with pytest.raises(ValueError, match="not 'exchange'"):
        WarmChild("exchange")


def test_a_started_warm_child_is_the_process_its_command_line_names(tmp_path: Path) -> None:
    """Its standard error is appended to the log after the parent's first line, its exit code is the
    process's own: here the executor refusing a bad setting (2), naming it in the log."""
    log = tmp_path / "executor.log"
    log.write_text('{"event": "paper_start"}\n')
    child = WarmChild("executor")
    proc = child.start(["--run-dir", str(tmp_path / "run"), "--heartbeat-s", "-1"], log, stdout=True)
    assert proc.wait(timeout=60) == 2
    assert proc.stdout is not None
    proc.stdout.close()
    text = log.read_text()
    assert text.startswith('{"event": "paper_start"}\n') and "heartbeat_s" in text, text
    assert not (tmp_path / "run").exists()
    child.close()  # started: not stopped again
    assert proc.returncode == 2


def test_a_warm_child_that_died_cannot_be_started(tmp_path: Path) -> None:
    child = WarmChild("brain")
    child.proc.kill()
    child.proc.wait()
    with pytest.raises(RuntimeError, match="the brain exited with -9 before it started"):
        child.start(["--help"], tmp_path / "brain.log", stdout=False)


def test_a_refused_run_stops_its_warm_children_and_creates_no_run_dir(tmp_path: Path) -> None:
    """``tandem paper`` on a malformed data file: refused (exit 2) before anything is created, and the
    two children it started before checking — already importing — are stopped, not left waiting."""
    bad = tmp_path / "bars.csv"
    bad.write_text("timestamp_ms,open,high,low,close,volume\n1,2,3,1,2,5\nnot,a,bar,at,all,x\n")
    warm = [WarmChild(role) for role in ROLES]
    run_dir = tmp_path / "run"
    code = paper.main(["--data", str(bad), "--run-dir", str(run_dir), "--metrics-port", "-1",
                       "--executor-metrics-port", "-1", "--decision-addr", f"127.0.0.1:{procs.free_port()}",
                       "--confirm-addr", f"127.0.0.1:{procs.free_port()}"], warm=warm)  # fmt: skip
    assert code == 2
    assert not run_dir.exists()
    deadline = time.monotonic() + 10
    while any(w.proc.poll() is None for w in warm) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [w.proc.returncode for w in warm] == [-9, -9]  # killed while still importing or waiting


def test_tandem_paper_reads_its_children_ready_line_through_the_warm_start(tmp_path: Path) -> None:
    """The ready line a warm executor prints is the one ``python -m executor`` prints (``tandem paper``
    waits for it): JSON on stdout, naming the address it bound."""
    log = tmp_path / "executor.log"
    log.touch()
    key = tmp_path / "bus.key"
    key.write_text(os.urandom(32).hex())
    key.chmod(0o600)
    child = WarmChild("executor")
    proc = child.start(["--run-dir", str(tmp_path / "run"), "--bus-secret-file", str(key), "--metrics-port", "-1",
                        "--decision-addr", "127.0.0.1:0", "--confirm-addr", f"127.0.0.1:{procs.free_port()}",
                        "--bars", "100"], log, stdout=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "executor_ready" and ready["decision_addr"].startswith("127.0.0.1:"), ready
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]
        assert proc.stdout is not None
        proc.stdout.close()
    assert (tmp_path / "run" / "executor.sqlite").is_file()


def test_an_import_that_fails_is_reported_in_the_log_once_started(tmp_path: Path) -> None:
    """As ``python -m executor`` would write it: the traceback in the run's log, exit 1 (here the
    executor package shadowed by one whose import raises)."""
    shadow = tmp_path / "shadow" / "executor"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("the executor cannot be imported here")\n')
    log = tmp_path / "executor.log"
    log.write_text('{"event": "paper_start"}\n')
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    # run from tmp_path, not the checkout: `-m` puts the working directory first on sys.path
    proc = subprocess.Popen([sys.executable, "-m", "tandem.warm", "executor"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)  # fmt: skip
    out, err = proc.communicate(json.dumps({"argv": [], "stderr": str(log), "stdout": "pipe"}) + "\n", timeout=60)
    assert (proc.returncode, out, err) == (1, "", "")
    text = log.read_text()
    assert text.startswith('{"event": "paper_start"}\n') and "ImportError: the executor cannot be imported here" in text
