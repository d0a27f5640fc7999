"""``tandem paper --venue binance-emulator``: the local Binance exchange as a third process.

:class:`LocalBinance` is the ``binance-emulator`` plugin of the ``tandem.local_venues`` entry-point
group (:mod:`tandem.localvenue`). :func:`start_emulator` runs ``python -m testbed.emulator`` on the same bars the brain replays,
with a fresh throwaway API key and secret (written 0600 to the run directory; the executor reads
them from there like any exchange key file) and its CA certificate in the run directory.
:func:`exchange_state` reads the exchange's final account over the same HTTPS loopback path ccxt
uses, and :func:`reconcile` compares it with the executor's ledger.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from foundation.bussecret import write_secret_file
from foundation.exchange_session import binance_signature, loopback_session
from tandem.children import wait_ready

__all__ = ["EXCHANGE_SYMBOLS", "EmulatorProcess", "LocalBinance", "exchange_state", "reconcile", "start_emulator"]

EXCHANGE_SYMBOLS = {"binance": "BTC/USDT", "binanceusdm": "BTC/USDT:USDT"}
"""The ccxt unified symbol the emulator lists (as BTCUSDT) for each exchange id."""

_STATE_URL = "https://api.binance.com/_emulator/state"
_READY_TIMEOUT_S = 30.0


@dataclass
class EmulatorProcess:
    """A running emulator: its process, port, CA file and the account's key files."""

    proc: subprocess.Popen[str]
    port: int
    ca_path: Path
    api_key: str
    secret: str
    api_key_file: Path
    api_secret_file: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_emulator(run_dir: Path, data: Path, bars: int | None, starting_cash: float,
                   stream: dict[str, Any] | None = None) -> EmulatorProcess:  # fmt: skip
    """Start the emulator and wait for its ready line (``stream``: see
    :meth:`tandem.localvenue.LocalVenueClass.start`).

    Raises:
        RuntimeError: it exited or did not become ready within 30 s (its log tail is in the message).
    """
    api_key, secret = "paper-" + secrets.token_hex(8), secrets.token_hex(32)
    key_file, secret_file = run_dir / "exchange-api.key", run_dir / "exchange-api.secret"
    key_file.write_text(api_key + "\n")
    key_file.chmod(0o600)
    write_secret_file(secret_file, secret.encode())  # hex of the secret's bytes, 0600
    secret_text = secret_file.read_text().strip()
    cash = repr(float(starting_cash))
    log = run_dir / "emulator.log"
    args = [sys.executable, "-m", "testbed.emulator", "--bars", str(data), "--ca-out", str(run_dir / "emulator-ca.pem"),
            "--api-key", api_key, "--secret", secret_text, "--spot", json.dumps({"USDT": cash}), "--usdm-usdt", cash]
    if bars is not None:
        args += ["--limit", str(bars)]
    if stream is not None:
        args += ["--stream-bars-per-s", repr(float(stream["bars_per_s"])), "--stream-start", str(stream["start"]),
                 "--stream-faults", stream.get("faults", "[]")]
    with log.open("w") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)  # noqa: S603 - our own module
    ready = wait_ready(proc, log, "binance emulator", lambda msg: "port" in msg, _READY_TIMEOUT_S)
    return EmulatorProcess(proc, int(ready["port"]), Path(ready["ca_path"]), api_key, secret_text, key_file,
                           secret_file)  # fmt: skip


async def _state(emu: EmulatorProcess) -> dict[str, Any]:
    session = loopback_session(emu.port, emu.ca_path)
    try:
        query = urlencode({"timestamp": int(time.time() * 1000)})
        url = f"{_STATE_URL}?{query}&signature={binance_signature(query, emu.secret)}"
        async with session.get(url, headers={"X-MBX-APIKEY": emu.api_key}) as resp:
            resp.raise_for_status()
            return await resp.json(content_type=None)
    finally:
        await session.close()


def exchange_state(emu: EmulatorProcess) -> dict[str, Any]:
    """The emulator's account for the run's API key (``GET /_emulator/state``, signed)."""
    return asyncio.run(_state(emu))["accounts"][emu.api_key]


def reconcile(account: dict[str, Any], ledger: dict[str, Any], exchange: str, symbol: str) -> dict[str, Any]:
    """Compare the exchange's account with the executor's ledger snapshot.

    Spot: USDT balance (free + locked) against ledger cash, BTC balance against the position.
    USDⓈ-M: the wallet against ledger cash plus the open position at cost (cash + signed qty *
    avg_cost = starting cash + realized P&L - fees = the futures wallet, for a long or a short),
    and ``positionAmt`` (signed) against the position. Open orders left on the exchange while flat are listed
    as orphans.

    Returns:
        ``{"agrees": bool, "exchange_cash": float, "exchange_position": float, "ledger_cash": float,
        "ledger_position": float, "open_orders": int, "orphans": [client ids]}``.
    """
    pos = ledger["positions"].get(symbol, {"quantity": 0.0, "avg_cost": 0.0})
    qty, cost = float(pos["quantity"]), float(pos.get("avg_cost", 0.0))
    if exchange == "binanceusdm":
        usdm = account["usdm"]
        ex_cash = float(usdm["wallet"])
        ex_pos = float(usdm["positions"].get("BTCUSDT", {}).get("positionAmt", 0.0))
        ledger_cash = float(ledger["cash"]) + qty * cost
        open_ids = [a["clientAlgoId"] for a in usdm["algo_orders"] if a["algoStatus"] == "NEW"]
        open_ids += [o["clientOrderId"] for o in usdm["orders"] if o["status"] in ("NEW", "PARTIALLY_FILLED")]
    else:
        spot = account["spot"]
        bal = spot["balances"]
        ex_cash = sum(float(bal.get("USDT", {}).get(k, 0.0)) for k in ("free", "locked"))
        ex_pos = sum(float(bal.get("BTC", {}).get(k, 0.0)) for k in ("free", "locked"))
        ledger_cash = float(ledger["cash"])
        open_ids = [o["clientOrderId"] for o in spot["orders"] if o["status"] in ("NEW", "PARTIALLY_FILLED")]
    agrees = abs(ex_cash - ledger_cash) <= 1e-6 * max(1.0, abs(ex_cash)) and abs(ex_pos - qty) <= 1e-9
    orphans = open_ids if qty == 0 else []  # a long's SELL stop or a short's BUY stop is expected
    return {"agrees": agrees and not orphans, "exchange_cash": ex_cash, "exchange_position": ex_pos,
            "ledger_cash": ledger_cash, "ledger_position": qty, "open_orders": len(open_ids), "orphans": orphans}  # fmt: skip


class LocalBinance:
    """The Binance emulator as a local venue for ``tandem paper --venue binance-emulator``
    (:class:`tandem.localvenue.LocalVenue`): the executor trades it through the real ccxt client
    with protective stops on the exchange; the brain moves them (``exchange_stops``)."""

    def __init__(self, emu: EmulatorProcess, exchange: str, streaming: bool = False) -> None:
        self.emu, self.exchange, self.streaming = emu, exchange, streaming

    @staticmethod
    def instrument(exchange: str) -> str:
        """The ccxt unified symbol listed for ``exchange`` (``binance`` or ``binanceusdm``)."""
        return EXCHANGE_SYMBOLS[exchange]

    @classmethod
    def start(cls, run_dir: Path, data: Path, bars: int | None, starting_cash: float, exchange: str,
              stream: dict[str, Any] | None = None) -> LocalBinance:  # fmt: skip
        """Start the emulator (see :func:`start_emulator`)."""
        return cls(start_emulator(run_dir, data, bars, starting_cash, stream), exchange, stream is not None)

    def executor_settings(self) -> dict[str, Any]:
        emu = self.emu
        return {"venue": "binance-emulator", "exchange": self.exchange, "emulator_port": emu.port,
                "emulator_ca": str(emu.ca_path), "api_key_file": str(emu.api_key_file),
                "api_secret_file": str(emu.api_secret_file)}  # fmt: skip

    def brain_settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"exchange_stops": True}
        if self.streaming:  # the live feed reads the emulator's kline stream through ccxt.pro
            out |= {"exchange": self.exchange, "emulator_port": self.emu.port, "emulator_ca": str(self.emu.ca_path)}
        return out

    def running(self) -> bool:
        return self.emu.proc.poll() is None

    def account(self) -> dict[str, Any]:
        return exchange_state(self.emu)

    def reconcile(self, account: dict[str, Any], ledger: dict[str, Any]) -> dict[str, Any]:
        return reconcile(account, ledger, self.exchange, EXCHANGE_SYMBOLS[self.exchange])

    def describe(self) -> str:
        return f"binance-emulator ({self.exchange}, ccxt)"

    def stop(self) -> None:
        self.emu.stop()
