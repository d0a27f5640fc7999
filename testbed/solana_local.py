"""``tandem paper --venue solana-emulator``: the local Solana cluster and swap service as a third process.

:class:`LocalSolana` is the ``solana-emulator`` plugin of the ``tandem.local_venues`` entry-point
group (:mod:`tandem.localvenue`). :meth:`LocalSolana.start` runs ``python -m testbed.solana`` on
the bars the brain replays; the user's keypair is written 0600 into the run directory
(``solana-keypair.json``), the process log is ``solana.log``. The executor's Solana venue reaches
it through ``executor_settings()`` (RPC, swap and price URLs, the keypair file, the USDC mint).
:meth:`LocalSolana.account` reads ``GET /_emulator/state``; :func:`reconcile` compares it with
the executor's ledger snapshot.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tandem.children import wait_ready

from .solana.keys import BASE_DECIMALS, BASE_MINT, LAMPORTS_PER_SOL, QUOTE_DECIMALS

__all__ = ["LocalSolana", "SolanaProcess", "reconcile"]

_READY_TIMEOUT_S = 30.0
_STATE_TIMEOUT_S = 10.0
DEFAULT_SOL = 2.0
"""SOL the user starts with (for fees), as ``python -m testbed.solana --sol``."""


@dataclass
class SolanaProcess:
    """A running cluster: its process, ready line and files."""

    proc: subprocess.Popen[str]
    ready: dict[str, Any]
    keypair_file: Path
    log: Path
    sol_lamports: int

    @property
    def port(self) -> int:
        return int(self.ready["port"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_cluster(run_dir: Path, data: Path, bars: int | None, starting_cash: float, sol: float = DEFAULT_SOL,
                  block_s: float | None = None) -> SolanaProcess:  # fmt: skip
    """Start ``python -m testbed.solana`` and wait for its ready line.

    Raises:
        RuntimeError: it exited or did not become ready within 30 s (its log tail is in the message).
    """
    keypair, log = run_dir / "solana-keypair.json", run_dir / "solana.log"
    args = [sys.executable, "-m", "testbed.solana", "--bars", str(data), "--cash", repr(float(starting_cash)),
            "--sol", repr(float(sol)), "--keypair-out", str(keypair)]  # fmt: skip
    if bars is not None:
        args += ["--limit", str(bars)]
    if block_s is not None:
        args += ["--block-s", repr(float(block_s))]
    with log.open("w") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
    ready = wait_ready(proc, log, "solana emulator", lambda msg: msg.get("event") == "solana_ready", _READY_TIMEOUT_S)
    return SolanaProcess(proc, ready, keypair, log, round(sol * LAMPORTS_PER_SOL))


def cluster_state(port: int, timeout_s: float = _STATE_TIMEOUT_S) -> dict[str, Any]:
    """``GET /_emulator/state`` (no proxy: it is on loopback).

    Raises:
        OSError: it cannot be reached (``urllib.error.URLError`` is one).
        RuntimeError: it answered something other than a JSON object.
    """
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/_emulator/state", timeout=timeout_s) as resp:
        body = json.loads(resp.read())
    if not isinstance(body, dict):
        raise RuntimeError(f"solana emulator state is not a JSON object: {body!r}")  # noqa: TRY004 - LocalVenue's error
    return body


def reconcile(account: dict[str, Any], ledger: dict[str, Any], starting_sol_lamports: int | None = None) -> dict[str, Any]:
    """Compare the cluster's user account (``/_emulator/state``) with the executor's ledger snapshot.

    The snapshot: ``{"cash": float, "positions": {mint: {"quantity", "avg_cost"}}, "quote_balance":
    float (USDC the ledger expects on chain), "native_fees": int (lamports), "starting_sol_lamports": int}``
    (:func:`executor.main.ledger_snapshot`). It agrees when on-chain USDC == ``quote_balance`` to
    1e-6 USDC, base == the base mint's position to 1e-8, and SOL == ``starting_sol_lamports -
    native_fees`` exactly. A snapshot without
    ``quote_balance`` is compared on ``cash``; without ``starting_sol_lamports``, on
    ``starting_sol_lamports`` given here (the plugin's own).

    Returns:
        ``{"agrees", "exchange_cash" (USDC), "exchange_position" (base), "ledger_cash",
        "ledger_position", "ledger_quote_balance", "open_orders": 0, "orphans": [], "sol_lamports",
        "expected_sol_lamports", "mismatches": [what disagrees]}``.
    """
    user = account["user"]
    ex_cash = int(user["usdc_raw"]) / 10**QUOTE_DECIMALS
    ex_pos = int(user["base_raw"]) / 10**BASE_DECIMALS
    sol = int(user["sol_lamports"])
    pos = ledger.get("positions", {}).get(str(BASE_MINT), {"quantity": 0.0})
    qty = float(pos["quantity"])
    quote_balance = float(ledger.get("quote_balance", ledger["cash"]))
    start_sol = ledger.get("starting_sol_lamports", starting_sol_lamports)
    expected_sol = None if start_sol is None else int(start_sol) - int(ledger.get("native_fees", 0))
    mismatches = []
    if abs(ex_cash - quote_balance) > 1e-6 * (1 + 1e-9):
        mismatches.append(f"USDC {ex_cash!r} on chain != ledger quote balance {quote_balance!r}")
    if abs(ex_pos - qty) > 1e-8 * (1 + 1e-9):
        mismatches.append(f"base {ex_pos!r} on chain != ledger position {qty!r}")
    if expected_sol is None or sol != expected_sol:
        mismatches.append(f"SOL {sol} lamports on chain != expected {expected_sol}")
    return {"agrees": not mismatches, "exchange_cash": ex_cash, "exchange_position": ex_pos,
            "ledger_cash": float(ledger["cash"]), "ledger_position": qty, "ledger_quote_balance": quote_balance,
            "open_orders": 0, "orphans": [], "sol_lamports": sol, "expected_sol_lamports": expected_sol,
            "mismatches": mismatches}  # fmt: skip


class LocalSolana:
    """The local Solana cluster as a local venue for ``tandem paper --venue solana-emulator``
    (:class:`tandem.localvenue.LocalVenue`): the executor swaps through the Jupiter-shaped API and
    signs with the run's keypair; no stops rest on the venue (``exchange_stops`` off)."""

    def __init__(self, cluster: SolanaProcess) -> None:
        self.cluster = cluster

    @staticmethod
    def instrument(exchange: str) -> str:
        """The base mint's address (fixed, whatever ``exchange`` says: there is one market)."""
        return str(BASE_MINT)

    @classmethod
    def start(cls, run_dir: Path, data: Path, bars: int | None, starting_cash: float, exchange: str,
              stream: dict[str, Any] | None = None) -> LocalSolana:  # fmt: skip
        """Start the cluster (see :func:`start_cluster`).

        Raises:
            ValueError: ``stream`` was asked for (there is no kline stream).
            RuntimeError: it did not become ready.
        """
        if stream is not None:
            raise ValueError("solana-emulator has no kline stream")
        return cls(start_cluster(Path(run_dir), Path(data), bars, starting_cash))

    def executor_settings(self) -> dict[str, Any]:
        r = self.cluster.ready
        return {"venue": "solana-emulator", "solana_rpc_url": r["rpc_url"], "swap_api_url": r["swap_url"],
                "price_api_url": r["price_url"], "solana_keypair_file": str(self.cluster.keypair_file),
                "quote_mint": r["quote_mint"], "emulator_port": self.cluster.port}  # fmt: skip

    def brain_settings(self) -> dict[str, Any]:
        return {"exchange_stops": False}

    def running(self) -> bool:
        return self.cluster.proc.poll() is None

    def account(self) -> dict[str, Any]:
        return cluster_state(self.cluster.port)

    def reconcile(self, account: dict[str, Any], ledger: dict[str, Any]) -> dict[str, Any]:
        return reconcile(account, ledger, self.cluster.sol_lamports)

    def describe(self) -> str:
        return "solana-emulator (local cluster, Jupiter-shaped RFQ swaps; no stops on an AMM: the brain's exit plan protects positions)"

    def stop(self) -> None:
        self.cluster.stop()
