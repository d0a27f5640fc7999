"""Issue #11 §3, as real processes: a brain whose journal was lost stops instead of colliding with the
executor's history, and timing settings that would hang a process are refused up front."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from procs import free_port, listing, make_key, refused, tandem

ARGS = ["--bars=3000", '--strategy-params={"fast": 10, "slow": 40}', "--progress=off", "--metrics-port=-1",
        "--executor-metrics-port=-1", f"--decision-addr=127.0.0.1:{free_port()}",
        f"--confirm-addr=127.0.0.1:{free_port()}"]  # fmt: skip
"""The bus on ports of its own: another test process (pytest -n) may be using the defaults."""


def _count(db: Path, table: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_a_brain_whose_journal_was_lost_stops_and_sends_nothing(tmp_path: Path) -> None:
    """The brain's journal is deleted after a run; run again on the run dir, the executor (with its journal)
    reports a history the new brain does not have: the brain stops (exit 1, saying why) before sending a
    single decision — none is answered as a conflict, the executor's journal gains nothing."""
    run = tmp_path / "run"
    first = tandem("paper", f"--run-dir={run}", *ARGS, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    decisions = _count(run / "executor.sqlite", "decisions")
    assert decisions > 2
    (run / "brain.sqlite").unlink()
    again = tandem("paper", f"--run-dir={run}", *ARGS, cwd=tmp_path)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "this brain's journal holds none: the brain's journal was lost" in again.stderr, again.stderr
    assert _count(run / "executor.sqlite", "decisions") == decisions
    assert '"decision_conflict"' not in (run / "executor.log").read_text()
    assert _count(run / "brain.sqlite", "decisions") == 0


SETTINGS = [
    ({"silence_s": "1e-6"}, "invalid setting silence_s (TANDEM_SILENCE_S / --silence-s): Input should be greater than or equal to 0.1"),
    ({"heartbeat_s": "2", "silence_s": "3"}, "invalid settings: silence_s (3) must be at least twice heartbeat_s (2)"),
    ({"heartbeat_s": "0.0001"}, "invalid setting heartbeat_s (TANDEM_HEARTBEAT_S / --heartbeat-s): Input should be greater than or equal to 0.01"),
    ({"max_age_s": "0.001"}, "invalid setting max_age_s (TANDEM_MAX_AGE_S / --max-age-s): Input should be greater than or equal to 1"),
    ({"retransmit_s": "1e-9"}, "invalid setting retransmit_s (TANDEM_RETRANSMIT_S / --retransmit-s): Input should be greater than or equal to 0.005"),
    ({"retransmit_s": "2", "retransmit_max_s": "1"}, "invalid settings: retransmit_max_s (1) must be at least retransmit_s (2)"),
    ({"decision_ttl_s": "0.001"}, "invalid setting decision_ttl_s (TANDEM_DECISION_TTL_S / --decision-ttl-s): Input should be greater than or equal to 0.5"),
    ({"replay_bars_per_s": "1e-6"}, "invalid setting replay_bars_per_s (TANDEM_REPLAY_BARS_PER_S / --replay-bars-per-s): must be 0 (off) or at least 0.01"),
]  # fmt: skip


@pytest.mark.parametrize("by_env", [False, True], ids=["flag", "env"])
@pytest.mark.parametrize(("values", "message"), SETTINGS, ids=[",".join(v) for v, _ in SETTINGS])
def test_timing_settings_that_would_hang_are_refused(tmp_path: Path, values: dict[str, str], message: str,
                                                     by_env: bool) -> None:  # fmt: skip
    """``--silence-s 1e-6`` used to hang a replay for good; every timing floor is refused, one line, nothing written."""
    from procs import clean_env

    run = tmp_path / "run"
    if by_env:
        env = clean_env(**{f"TANDEM_{k.upper()}": v for k, v in values.items()})
        proc = tandem("paper", f"--run-dir={run}", *ARGS, cwd=tmp_path, env=env)
    else:
        proc = tandem("paper", f"--run-dir={run}", *ARGS, *(f"--{k.replace('_', '-')}={v}" for k, v in values.items()),
                      cwd=tmp_path)  # fmt: skip
    assert refused(proc, "paper").startswith(message)
    assert listing(run) is None


def test_the_executor_refuses_a_silence_shorter_than_two_heartbeats(tmp_path: Path) -> None:
    """The same floors hold for `tandem executor` (and `tandem brain`): one line, nothing created."""
    key = make_key(tmp_path)
    proc = tandem("executor", f"--run-dir={tmp_path / 'run'}", f"--bus-secret-file={key}", "--silence-s=0.5",
                  "--heartbeat-s=0.5", cwd=tmp_path)  # fmt: skip
    assert refused(proc, "executor") == "invalid settings: silence_s (0.5) must be at least twice heartbeat_s (0.5)"
    assert not (tmp_path / "run").exists()
