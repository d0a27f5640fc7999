"""``tandem executor`` / ``python -m executor``: serve decisions until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import structlog

from protocol import Codec, Instrument, derive_key
from tandem.marketdata import MarketDataError, bundled_path, load_bars
from tandem.runtime import check_bind_secret, load_bus_secret, parse_address, start_metrics_server
from tandem.shell import process_main

from .app import ExecutorApp
from .core import ExecutorCore
from .journal import JournalError
from .metrics import ExecutorMetrics
from .orders import OrderOps
from .settings import ExecutorSettings
from .venue.base import Venue
from .venue.errors import VenueError
from .venue.paper import PaperVenue
from .venue.retry import RetryPolicy

__all__ = ["build_core", "build_venue", "ledger_snapshot", "main", "serve"]


def outputs(run_dir: Path) -> dict[str, Path]:
    """Where the executor writes: journal and the final ledger snapshot."""
    return {"journal": run_dir / "executor.sqlite", "ledger": run_dir / "executor-ledger.json"}


def build_venue(settings: ExecutorSettings) -> Venue:
    """The configured venue (not yet started).

    Raises:
        ConfigError: unsafe or incomplete venue settings (see :meth:`ExecutorSettings.check_venue`).
        MarketDataError: bad data file (paper). VenueError: unknown ccxt exchange id.
    """
    settings.check_venue()
    if settings.venue == "paper":
        bars = load_bars(settings.data or bundled_path(), limit=settings.bars)
        return PaperVenue(
            bars, instrument=Instrument.symbol(settings.instrument), fee_bps=settings.fee_bps,
            slippage_bps=settings.slippage_bps,
        )  # fmt: skip
    from .venue.ccxt_venue import CcxtVenue  # ccxt loads in ~1 s: only when it is used

    key, secret = settings.exchange_keys()
    if settings.venue == "binance-emulator":
        from tandem.emulator.client import ccxt_config, loopback_session
        from .venue.emulator_clock import clock_sync

        assert settings.emulator_ca is not None
        session = loopback_session(settings.emulator_port, settings.emulator_ca)
        config = ccxt_config(session, key, secret, market="usdm" if settings.exchange == "binanceusdm" else "spot",
                             timeout_ms=settings.order_timeout_ms)  # fmt: skip
        return CcxtVenue(settings.exchange, config, before_order=clock_sync(session, key, secret), session=session)
    config = {"apiKey": key, "secret": secret, "timeout": settings.order_timeout_ms}
    return CcxtVenue(settings.exchange, config, sandbox=settings.sandbox)


async def build_core(settings: ExecutorSettings, metrics: ExecutorMetrics | None = None) -> ExecutorCore:
    """Build and start the venue, and open (or recover) the journal in ``run_dir``.

    Raises:
        ConfigError, MarketDataError, JournalError, VenueError: bad setting, data file, journal or venue.
    """
    venue = build_venue(settings)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    ops = OrderOps(venue, RetryPolicy(), metrics, fill_timeout_s=settings.fill_timeout_s)
    try:
        return await ExecutorCore.open(
            outputs(settings.run_dir)["journal"], venue, settings.starting_cash,
            synchronous=settings.journal_synchronous, ops=ops, protective=settings.protective_stops,
        )  # fmt: skip
    except BaseException:
        await venue.close()
        raise


def ledger_snapshot(core: ExecutorCore) -> dict[str, Any]:
    """The ledger as plain values: cash and positions (base units, average cost)."""
    return {
        "cash": core.ledger.cash,
        "positions": {str(i): {"quantity": p.qty, "avg_cost": p.avg_cost} for i, p in core.ledger.positions().items()},
    }


async def serve(settings: ExecutorSettings, ready: Any = None) -> None:
    """Run the executor until cancelled or signalled; writes the ledger snapshot on the way out.

    Args:
        settings: executor settings.
        ready: optional callable given ``{"decision_addr": ..., "metrics_port": ...}`` once bound.
    """
    log = structlog.get_logger("executor")
    secret = load_bus_secret(settings.bus_secret, settings.bus_secret_file)
    codec = Codec(derive_key(secret), max_age_ns=int(settings.max_age_s * 1e9), max_skew_ns=int(settings.max_skew_s * 1e9))
    bind = parse_address(settings.decision_addr, setting="decision_addr")
    peer = parse_address(settings.confirm_addr, setting="confirm_addr")
    check_bind_secret(bind[0], secret, setting="decision_addr")
    metrics = ExecutorMetrics()
    core = await build_core(settings, metrics)
    app = ExecutorApp(core, codec, metrics, bind, peer, heartbeat_s=settings.heartbeat_s, silence_s=settings.silence_s)
    server = await start_metrics_server(metrics.registry, settings.metrics_host, settings.metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
        host, port = app.address
        info = {"decision_addr": f"{host}:{port}", "metrics_port": server.port if server else None}
        log.info("executor_ready", venue=settings.venue, recovered=len(core.recovered), next_seq=core.journal.next_seq(), **info)
        if ready is not None:
            ready(info)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        app.close()
        if server is not None:
            await server.close()
        snapshot = ledger_snapshot(core)
        outputs(settings.run_dir)["ledger"].write_text(json.dumps(snapshot, indent=2) + "\n")
        await core.aclose()
        log.info("executor_stopped", **snapshot)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 = bad configuration or input). Prints one JSON line
    ``{"event": "executor_ready", ...}`` on stdout once it accepts decisions."""
    return process_main(argv, prog="tandem executor", settings_cls=ExecutorSettings, ready_event="executor_ready",
                        serve=serve, errors=(MarketDataError, JournalError, VenueError))  # fmt: skip
