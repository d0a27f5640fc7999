"""``tandem parity``: the live feed against the replay of the same bars — the proof that a live
session trades what a replay of the same bars trades.

Two ``tandem paper`` sessions on the local Binance (``--venue binance-emulator``, the executor
trading through the real ccxt client), or on the local Solana cluster (``--venue solana-emulator``,
the executor swapping a mint through solana-py, the live brain priced by the local Binance's
stream of the same bars — the ccxt feed of the same asset):

1. **replay** in ``run_dir/replay``: the brain reads the bars from the data file;
2. **live** in ``run_dir/live``: the brain reads the same bars as the exchange streams them
   (``--feed live``: ccxt.pro ``watch_ohlcv`` with REST warm-up and gap fill), at
   ``stream_bars_per_s``, with ``stream_faults`` (disconnects, stalls, gaps, duplicated and late
   klines) if given.

Verdict: ``trades.csv`` and ``equity.csv`` byte-identical, both ledgers agreeing with the
exchange, and no bar decided twice (the live brain's journal holds one decision per bar and
exit). It prints both runs' figures and what the live feed saw (updates, gap-filled bars,
reconnects, REST calls). Exit 0 on PASS, 1 on FAIL, 2 on bad input.

A stall longer than ``feed_stale_after`` intervals blocks entries by design (``feed_stale``): with
one, the trade logs may differ, and the command says so rather than pass.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from foundation.atomicfile import write_atomic
from foundation.errors import ConfigError
from foundation.process import run_main
from foundation.settings import load_settings
from tandem.paper import INPUT_ERRORS, PaperSettings, run_paper

from .chaosrun import free_udp_port
from .proxy import LOOPBACK

__all__ = ["ParitySettings", "main", "run_parity"]


class ParitySettings(PaperSettings):
    """Paper settings for both sessions; the venue is a local one."""

    venue: Literal["binance-emulator", "solana-emulator"] = Field(  # type: ignore[assignment]
        "binance-emulator", description="binance-emulator (the local Binance) or solana-emulator (the local Solana "
        "cluster, priced live by the local Binance's stream), both sessions",
    )
    run_dir: Path | None = Field(None, description="new output folder (default: runs/<UTC timestamp>-parity)")
    decision_addr: str = Field("127.0.0.1:45110", description="ignored: parity picks free loopback ports")
    confirm_addr: str = Field("127.0.0.1:45115", description="ignored: parity picks free loopback ports")
    metrics_port: int = Field(-1, ge=-1, le=65535, description="ignored: no metrics are served")
    executor_metrics_port: int = Field(-1, ge=-1, le=65535, description="ignored: no metrics are served")


def _session(settings: ParitySettings, run_dir: Path, feed: str) -> dict[str, Any]:
    return run_paper(settings.model_copy(update={
        "run_dir": run_dir, "feed": feed, "metrics_port": -1, "executor_metrics_port": -1, "progress": "off",
        "decision_addr": f"{LOOPBACK}:{free_udp_port()}", "confirm_addr": f"{LOOPBACK}:{free_udp_port()}",
    }))  # fmt: skip


def _decisions_per_bar(journal: Path) -> int:
    """The most decisions of one kind (entry, or exit) the brain journaled on any one bar."""
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        row = db.execute("SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM decisions GROUP BY bar_index, intent, side)"
                         ).fetchone()  # fmt: skip
    return int(row[0] or 0)


def run_parity(settings: ParitySettings) -> dict[str, Any]:
    """Both sessions and the verdict; the figures (also ``run_dir/parity-report.json``).

    Raises:
        ConfigError, MarketDataError, StrategyError, JournalError: bad input.
        RuntimeError: a session failed (its log tail is in the message).
    """
    started = time.perf_counter()
    run_dir = settings.run_dir or Path("runs") / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ-parity")
    replay_dir, live_dir = run_dir / "replay", run_dir / "live"
    for d in (replay_dir, live_dir):
        if d.exists() and any(d.iterdir()):
            raise ConfigError(f"run_dir: {d} is not empty (a brain journal there would be resumed)")
    replay = _session(settings, replay_dir, "replay")
    live = _session(settings, live_dir, "live")
    files = {name: (replay_dir / name).read_bytes() == (live_dir / name).read_bytes()
             for name in ("trades.csv", "equity.csv")}  # fmt: skip
    most = _decisions_per_bar(live_dir / "brain.sqlite")
    failures = [f"{name} differs between {replay_dir} and {live_dir}" for name, same in files.items() if not same]
    for name, report in (("replay", replay), ("live", live)):
        if not report["ledger_agrees"]:
            failures.append(f"the {name} session's ledgers disagree")
    if most > 1:
        failures.append(f"a bar got {most} decisions of one kind in the live session")
    result = {
        "bars": live["bars_replayed"], "stream_bars_per_s": settings.stream_bars_per_s,
        "stream_faults": json.loads(settings.stream_faults), "identical": files,
        "most_decisions_per_bar": most, "feed": live.get("feed"),
        "replay": {k: replay[k] for k in ("decisions_sent", "trades", "total_return_pct", "max_drawdown_pct", "wall_time_s")},
        "live": {k: live[k] for k in ("decisions_sent", "trades", "total_return_pct", "max_drawdown_pct", "wall_time_s",
                                      "signals_skipped")},
        "latency_us": {"replay": replay["latency_us"], "live": live["latency_us"]},
        "failures": failures, "wall_time_s": time.perf_counter() - started,
    }  # fmt: skip
    write_atomic(run_dir / "parity-report.json", json.dumps(result, indent=2) + "\n")
    return result


def format_result(r: dict[str, Any]) -> str:
    """The verdict and figures as aligned text."""
    rp, lv, feed = r["replay"], r["live"], r["feed"] or {}
    lines = [
        "tandem parity report",
        f"  bars                   {r['bars']:,}  (streamed at {r['stream_bars_per_s']:g} bars/s)",
        f"  stream faults          {', '.join(f['kind'] + '@' + str(f['at_bar']) for f in r['stream_faults']) or 'none'}",
        f"  replay                 {rp['decisions_sent']} decisions, {rp['trades']} trades, return {rp['total_return_pct']:+.2f}%,"
        f" max drawdown {rp['max_drawdown_pct']:.2f}%  ({rp['wall_time_s']:.1f} s)",
        f"  live                   {lv['decisions_sent']} decisions, {lv['trades']} trades, return {lv['total_return_pct']:+.2f}%,"
        f" max drawdown {lv['max_drawdown_pct']:.2f}%  ({lv['wall_time_s']:.1f} s)",
        f"  live feed              {feed.get('received', 0):,} klines received, {feed.get('gap_filled', 0)} gap-filled,"
        f" {feed.get('duplicated', 0)} duplicated, {feed.get('refused', 0)} refused, {feed.get('bad', 0)} bad,"
        f" {feed.get('reconnects', 0)} reconnects, {feed.get('rest_calls', 0)} REST calls, {feed.get('stale_bars', 0)} stale bars",
        f"  round trip p50/p99 (us) replay {r['latency_us']['replay']['p50']:.0f}/{r['latency_us']['replay']['p99']:.0f},"
        f" live {r['latency_us']['live']['p50']:.0f}/{r['latency_us']['live']['p99']:.0f}",
        f"  trades.csv             {'identical' if r['identical']['trades.csv'] else 'DIFFERENT'}",
        f"  equity.csv             {'identical' if r['identical']['equity.csv'] else 'DIFFERENT'}",
        f"  decisions per bar      at most {r['most_decisions_per_bar']} of one kind",
        f"  wall time              {r['wall_time_s']:.1f} s",
    ]  # fmt: skip
    lines.append("verdict                  " + ("PASS" if not r["failures"] else "FAIL: " + "; ".join(r["failures"])))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``tandem parity``: exit 0 on PASS, 1 on FAIL or a failed session, 2 on bad input."""

    def body() -> int:
        settings = load_settings(ParitySettings, argv if argv is not None else sys.argv[1:], "tandem parity")
        result = run_parity(settings)
        print(format_result(result))
        return 1 if result["failures"] else 0

    return run_main("tandem parity", body, input_errors=INPUT_ERRORS)
