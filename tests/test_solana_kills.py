"""An executor killed mid-swap, as real processes: the local Solana cluster, ``tandem executor
--venue solana-emulator`` and ``tandem brain`` over UDP (issue #15 §2, the two kills).

- **After journaling, before sending**: the cluster holds the first ``sendTransaction`` without
  landing it (``stall_sends``); the executor is SIGKILLed while it waits. Restarted, it finds the
  signed transaction in its journal and sends those bytes — the first quote is never repeated.
- **After sending, before confirming**: the cluster lands the transaction and holds the answer
  (``stall_after_land``); SIGKILL. Restarted, it finds the signature landed and confirms it.

Each ends with the issue's checks: every decision landed at most one swap (exactly one per FILLED
decision), the executor's ledger equals the on-chain USDC, token and SOL, the killed decision's
order has one attempt and its signature is the one that landed, and the brain's replay completes.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from procs import free_port, make_key, start, wait_ready

from foundation.barcsv import bundled_path
from testbed.solana import BASE_MINT
from testbed.solana_local import cluster_state, reconcile, start_cluster

BARS = 600
CASH = 10_000.0


def _post(port: int, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/_emulator/{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")  # fmt: skip
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.mark.parametrize("fault", ["stall_sends", "stall_after_land"])
def test_an_executor_killed_mid_swap_lands_each_decision_once(tmp_path: Path, fault: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    cluster = start_cluster(run, bundled_path(), BARS, CASH, block_s=0.05)
    key = make_key(tmp_path)
    dec, conf = free_port(), free_port()
    r = cluster.ready
    exe_args = [
        "executor", f"--run-dir={run}", f"--bus-secret-file={key}", f"--decision-addr=127.0.0.1:{dec}",
        f"--confirm-addr=127.0.0.1:{conf}", "--metrics-port=-1", "--venue=solana-emulator",
        f"--solana-rpc-url={r['rpc_url']}", f"--swap-api-url={r['swap_url']}", f"--price-api-url={r['price_url']}",
        f"--solana-keypair-file={cluster.keypair_file}", f"--quote-mint={r['quote_mint']}",
        f"--emulator-port={cluster.port}", f"--instrument={BASE_MINT}", "--solana-poll-s=0.05",
    ]  # fmt: skip
    executor = start(*exe_args, cwd=tmp_path)
    brain = None
    try:
        wait_ready(executor, "executor_ready")
        _post(cluster.port, "faults", {fault: 1})
        brain = start("brain", f"--run-dir={run}", f"--bus-secret-file={key}", f"--decision-addr=127.0.0.1:{dec}",
                      f"--confirm-addr=127.0.0.1:{conf}", "--metrics-port=-1", f"--bars={BARS}",
                      f"--instrument={BASE_MINT}", "--no-exchange-stops", '--strategy-params={"fast": 10, "slow": 40}',
                      cwd=tmp_path)  # fmt: skip
        deadline = time.monotonic() + 30
        while cluster_state(cluster.port)["faults"][fault] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cluster_state(cluster.port)["faults"][fault] == 0, "the fault never fired"
        executor.send_signal(signal.SIGKILL)  # the answer is held: the executor is mid-send
        assert executor.wait(timeout=10) == -signal.SIGKILL
        killed = _first_order(run)
        executor = start(*exe_args, cwd=tmp_path)  # the supervisor's restart
        wait_ready(executor, "executor_ready")
        assert brain.wait(timeout=90) == 0
    finally:
        for p in (brain, executor):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(timeout=20)
        account = cluster_state(cluster.port)
        cluster.stop()
    ledger = json.loads((run / "executor-ledger.json").read_text())
    rec = reconcile(account, ledger, cluster.sol_lamports)
    assert rec["agrees"], rec["mismatches"]
    report = json.loads((run / "report.json").read_text())
    filled = report["decisions_by_outcome"].get("FILLED", 0)
    assert report["decisions_by_outcome"] == {"FILLED": filled} and filled >= 2
    landed = {x["signature"] for x in account["landed"] if x["err"] is None}
    assert len(landed) == filled, "a decision landed other than exactly one swap"
    with sqlite3.connect(run / "executor.sqlite") as db:
        attempts = db.execute("SELECT signature, state FROM swaps WHERE client_order_id = ?", (killed[0],)).fetchall()
    assert attempts == [(killed[1], "landed")], attempts  # never re-quoted: the journaled bytes landed
    assert killed[1] in landed


def _first_order(run: Path) -> tuple[str, str]:
    """(client order id, signature) of the first journaled swap: the one the kill interrupted."""
    with sqlite3.connect(f"file:{run / 'executor.sqlite'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT client_order_id, signature, state FROM swaps ORDER BY rowid LIMIT 1").fetchone()
    assert row is not None and row[2] == "signed", row
    return row[0], row[1]
