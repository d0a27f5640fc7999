"""``tandem paper`` and the other entry points as real subprocesses on a slice of the real data."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import procs
import pytest

TANDEM = str(Path(sys.executable).parent / "tandem")  # the installed console script


def free_udp_port() -> int:
    return procs.free_port()


def paper(run_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [
        TANDEM, "paper", "--run-dir", str(run_dir), "--bars", "3000",
        "--strategy-params", '{"fast": 10, "slow": 40}',
        "--decision-addr", f"127.0.0.1:{free_udp_port()}", "--confirm-addr", f"127.0.0.1:{free_udp_port()}",
        "--metrics-port", "-1", "--executor-metrics-port", "-1", *extra,
    ]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    base = tmp_path_factory.mktemp("paper")
    first = paper(base / "a")
    assert first.returncode == 0, first.stderr
    second = paper(base / "b")
    assert second.returncode == 0, second.stderr
    return base / "a", base / "b", first.stdout


def test_paper_prints_report_and_writes_outputs(two_runs) -> None:
    """Two processes over UDP replay 3,000 real bars; the report and the run directory are complete."""
    run_dir, _, stdout = two_runs
    report = json.loads((run_dir / "report.json").read_text())
    assert report["bars_replayed"] == 3000
    assert report["trades"] > 0
    assert report["decisions_sent"] == sum(report["decisions_by_outcome"].values())
    for label in ("bars replayed", "decisions sent", "trades", "win rate", "total return", "max drawdown", "fees",
                  "exits by reason", "breaker trips", "wall time", "agrees with the brain"):  # fmt: skip
        assert label in stdout
    for name in ("trades.csv", "brain.sqlite", "executor.sqlite", "brain.log", "executor.log", "executor-ledger.json"):
        assert (run_dir / name).is_file(), name
    rows = list(csv.DictReader((run_dir / "trades.csv").open()))
    assert len(rows) == report["trades"]
    assert sum(float(r["net_pnl"]) for r in rows) == pytest.approx(report["realized_pnl"] - report["fees"], abs=0.01)


def test_paper_venue_is_reconciled_and_stays_green(two_runs) -> None:
    """The paper venue is reconciled too — at start and every ``reconcile_interval_s``, not after each
    decision (it lives in the executor's process: issue #17): every cycle finds the account equal to
    the ledger — no mismatch, no correction — and the mode stays GREEN."""
    run_dir, _, _ = two_runs
    report = json.loads((run_dir / "report.json").read_text())
    cycles = [json.loads(line) for line in (run_dir / "executor.log").read_text().splitlines()
              if '"reconcile.summary"' in line]  # fmt: skip
    assert 1 <= len(cycles) < report["decisions_sent"]
    assert all(c["mode"] == "GREEN" and c["mismatches"] == [] and c["corrections"] == [] for c in cycles)
    assert [mode for _, mode in report["belief_modes"]] == ["GREEN"]


def test_paper_trade_logs_are_byte_identical(two_runs) -> None:
    """Two runs with the same data and settings write byte-identical trade logs."""
    a, b, _ = two_runs
    assert (a / "trades.csv").read_bytes() == (b / "trades.csv").read_bytes()


def test_paper_ledgers_agree(two_runs) -> None:
    """At the end, the executor's ledger (cash and positions) equals the brain's tracker."""
    run_dir, _, _ = two_runs
    report = json.loads((run_dir / "report.json").read_text())
    ledger = json.loads((run_dir / "executor-ledger.json").read_text())
    assert ledger["cash"] == pytest.approx(report["cash"], rel=1e-12)
    assert {k: v["quantity"] for k, v in ledger["positions"].items()} == pytest.approx(report["open_positions"])


def test_invalid_setting_fails_at_start_naming_it(tmp_path: Path) -> None:
    """An invalid value stops the command before anything runs, naming the setting, env var and flag."""
    proc = subprocess.run([TANDEM, "paper", "--stop-loss-pct", "-3", "--run-dir", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert "stop_loss_pct" in proc.stderr and "TANDEM_STOP_LOSS_PCT" in proc.stderr and "--stop-loss-pct" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_invalid_env_setting_fails_naming_it(tmp_path: Path) -> None:
    """A bad TANDEM_* environment variable is reported with the setting's name."""
    env = {"TANDEM_ENTRY_FRACTION": "1.5", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "brain"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "entry_fraction" in proc.stderr and "TANDEM_ENTRY_FRACTION" in proc.stderr


def test_malformed_data_file_fails_with_line_number(tmp_path: Path) -> None:
    """``--data`` with a malformed file fails before any process starts, naming file and line."""
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp_ms,open,high,low,close,volume\n1000,1,2,0.5,1.5,3\n2000,1,2,0.5,oops,3\n")
    proc = subprocess.run([TANDEM, "paper", "--data", str(bad), "--run-dir", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2
    assert f"{bad}:3:" in proc.stderr


def test_module_entry_points_answer_help() -> None:
    """``python -m brain``, ``python -m executor`` and ``tandem`` all start and print their usage."""
    for args in ([sys.executable, "-m", "brain", "--help"], [sys.executable, "-m", "executor", "--help"], [TANDEM, "--help"]):
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "usage" in proc.stdout


@pytest.mark.parametrize(("exchange", "symbol"), [("binanceusdm", "BTC/USDT:USDT"), ("binance", "BTC/USDT")])
def test_paper_through_ccxt_and_the_binance_emulator(tmp_path: Path, exchange: str, symbol: str) -> None:
    """The full cycle — brain → executor → ccxt → local Binance over HTTPS → confirmation → tracker —
    on 3,000 real bars; the exchange's account, the executor's ledger and the brain agree, every
    position got its stop on the exchange, and no stop is left behind."""
    run_dir = tmp_path / exchange
    proc = paper(run_dir, "--venue", "binance-emulator", "--exchange", exchange)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert f"binance-emulator ({exchange}, ccxt)" in proc.stdout and "exchange account       agrees" in proc.stdout
    report = json.loads((run_dir / "report.json").read_text())
    rec = report["exchange_reconciliation"]
    assert rec["agrees"] and rec["orphans"] == []
    assert report["trades"] > 0 and report["decisions_by_outcome"].get("FILLED", 0) >= 2 * report["trades"]
    assert set(report["open_positions"]) <= {symbol}
    log = (run_dir / "executor.log").read_text()
    assert log.count('"event":"stop_placed"') >= report["trades"], "an entry filled without a stop on the exchange"
    account = json.loads((run_dir / "exchange-account.json").read_text())
    assert account, "the exchange account was not saved"


def test_paper_through_solana_and_the_local_cluster(tmp_path: Path) -> None:
    """The full cycle on Solana — brain → executor → Jupiter-shaped quote and swap → a signed
    transaction through solana-py → the local cluster (LiteSVM, the real SPL Token program) →
    fills read from the landed balances → confirmation → tracker — on 3,000 real bars, with the
    token as a mint on the wire. The cluster's USDC, token and SOL balances equal the executor's
    ledger; every decision landed one swap; the report says no stop rests on the AMM."""
    from testbed.solana import BASE_MINT

    run_dir = tmp_path / "solana"
    proc = paper(run_dir, "--venue", "solana-emulator")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "exchange account       agrees" in proc.stdout
    assert "protective stops       none on this venue: the brain's exit plan alone protects positions" in proc.stdout
    report = json.loads((run_dir / "report.json").read_text())
    rec = report["exchange_reconciliation"]
    assert rec["agrees"] and rec["mismatches"] == [] and rec["sol_lamports"] == rec["expected_sol_lamports"]
    assert report["instrument"] == str(BASE_MINT) and report["exchange_stops"] is False
    filled = report["decisions_by_outcome"].get("FILLED", 0)
    assert report["trades"] > 0 and filled >= 2 * report["trades"]
    account = json.loads((run_dir / "exchange-account.json").read_text())
    landed_ok = [r for r in account["landed"] if r["err"] is None]
    assert len(landed_ok) == filled, "a decision landed other than exactly one swap"
    ledger = json.loads((run_dir / "executor-ledger.json").read_text())
    assert ledger["native_fees"] == sum(r["fee"] for r in account["landed"]) > 0
    with (run_dir / "trades.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == report["trades"] and {r["instrument"] for r in rows} == {str(BASE_MINT)}
