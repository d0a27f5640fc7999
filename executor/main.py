"""``tandem executor`` / ``python -m executor``: serve decisions until SIGTERM or SIGINT.

Start-up creates nothing until every input has been checked and every port bound: settings,
the bus secret, the venue settings and data file, ``run_dir``, then the decision port and the
metrics port (:func:`foundation.process.claim`). Only then is ``run_dir`` created and locked for the
executor (``executor.lock``: a second executor on it is refused, naming the holder) and the
journal opened. An empty, foreign or other-venue journal is refused unless ``--fresh-journal``
(which sets it aside and starts a new one), checked once without writing before anything is
created and again, authoritatively, once the lock is held.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import structlog

from foundation.atomicfile import write_atomic
from foundation.barcsv import MarketDataError, bundled_path, load_bars
from foundation.bussecret import bus_codec
from foundation.errors import ConfigError, StorageFault
from foundation.metricsserver import start_metrics_server
from foundation.process import claim, close_serving, process_main, signals_call
from foundation.rundir import make_run_dir
from foundation.runtime import parse_address, settle_heap
from protocol import Instrument

from .app import ExecutorApp
from .core import ExecutorCore
from .journal import Journal, JournalError, check_journal
from .metrics import ExecutorMetrics
from .orders import OrderOps
from .reconciler import Reconciler
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
        markets = {Instrument.symbol(sym): load_bars(path, limit=settings.bars) for sym, path in settings.market_files()}
        return PaperVenue(
            bars, instrument=Instrument.symbol(settings.instrument), markets=markets, fee_bps=settings.fee_bps,
            slippage_bps=settings.slippage_bps,
        )  # fmt: skip
    if settings.venue in ("solana", "solana-emulator"):
        return _solana_venue(settings)
    from .venue.ccxt_venue import CcxtVenue  # ccxt loads in ~1 s: only when it is used

    key, secret = settings.exchange_keys()
    if settings.venue == "binance-emulator":
        from foundation.exchange_session import ccxt_config, loopback_session

        from .venue.replay_clock import clock_sync

        assert settings.emulator_ca is not None
        session = loopback_session(settings.emulator_port, settings.emulator_ca)
        config = ccxt_config(session, key, secret, market="usdm" if settings.exchange == "binanceusdm" else "spot",
                             timeout_ms=settings.order_timeout_ms)  # fmt: skip
        venue = CcxtVenue(settings.exchange, config, before_order=clock_sync(session, key, secret), session=session)
        venue.replay_clock = True  # the local Binance replays bars on the clock the executor moves
        return venue
    config = {"apiKey": key, "secret": secret, "timeout": settings.order_timeout_ms}
    return CcxtVenue(settings.exchange, config, sandbox=settings.sandbox)


def _solana_venue(settings: ExecutorSettings) -> Venue:
    """The Solana venue (:mod:`executor.venue.solana`), or the same on a local cluster whose swap
    service follows the replay clock (``solana-emulator``).

    Raises:
        ConfigError: the keypair file is unreadable, open to others or not a keypair; the API key
            file is unreadable.
    """
    from .settings import check_solana_cluster
    from .venue.errors import PermanentVenueError
    from .venue.solana.jupiter import Jupiter
    from .venue.solana.keys import load_keypair
    from .venue.solana.rpc import Rpc
    from .venue.solana.venue import SolanaVenue

    assert settings.solana_keypair_file is not None  # check_venue
    keypair = load_keypair(settings.solana_keypair_file)
    emulated = settings.venue == "solana-emulator"
    cluster = "localnet" if emulated else settings.solana_cluster

    def check_cluster(genesis: str) -> None:
        why = check_solana_cluster(genesis, cluster, live=settings.live)
        if why is not None:
            raise PermanentVenueError(why)

    before_order = None
    if emulated:
        from .venue.replay_clock import advance_url_clock

        before_order = advance_url_clock(f"http://127.0.0.1:{settings.emulator_port}/_emulator/advance")
    timeout_s = settings.order_timeout_ms / 1000
    venue = SolanaVenue(
        rpc=Rpc(settings.solana_rpc_url, timeout_s=timeout_s),
        jupiter=Jupiter(settings.swap_api_url, settings.price_api_url, api_key=settings.swap_api_key_value(),
                        timeout_s=timeout_s),
        keypair=keypair, base_mint=settings.instrument, quote_mint=settings.quote_mint,
        priority_fee_micro_lamports=settings.priority_fee_micro_lamports,
        compute_unit_limit=settings.compute_unit_limit, confirm_timeout_s=settings.solana_confirm_timeout_s,
        poll_s=settings.solana_poll_s, lookup_wait_s=max(2 * settings.solana_poll_s, 1.0),
        max_attempts=settings.solana_max_attempts, before_order=before_order, check_cluster=check_cluster,
    )  # fmt: skip
    venue.replay_clock = emulated  # the local swap service prices the bar at the decision's market time
    return venue


async def build_core(
    settings: ExecutorSettings, metrics: ExecutorMetrics | None = None, venue: Venue | None = None
) -> ExecutorCore:
    """Start the venue, and open (or recover) the journal in ``run_dir`` (created if missing; a
    serving executor holds its lock first, see :func:`serve`).

    Args:
        venue: a venue from :func:`build_venue` (default: built here, and closed here on failure;
            one passed in is the caller's to close on failure).

    Raises:
        ConfigError, MarketDataError, JournalError, VenueError: bad setting, data file, journal
            (empty, foreign, another venue's: :class:`~executor.journal.Journal`) or venue.
    """
    owned = venue is None
    venue = build_venue(settings) if venue is None else venue
    try:
        if settings.allow_short and not venue.supports_short:
            raise ConfigError(f"allow_short: {venue.name} is a spot market and cannot hold a short; shorts need a "
                              f"derivatives venue (paper, or a perpetual such as binanceusdm)")  # fmt: skip
        make_run_dir(settings.run_dir)
        path = outputs(settings.run_dir)["journal"]
        # creates the journal with its identity, or checks it (venue included) before the core opens it
        Journal(path, starting_cash=settings.starting_cash, synchronous=settings.journal_synchronous,
                venue=settings.venue_id()).close()  # fmt: skip
        ops = OrderOps(venue, RetryPolicy(), metrics, fill_timeout_s=settings.fill_timeout_s)
        return await ExecutorCore.open(
            path, venue, settings.starting_cash,
            synchronous=settings.journal_synchronous, ops=ops, protective=settings.protective_stops,
            allow_short=settings.allow_short,
        )  # fmt: skip
    except BaseException:
        if owned:
            await venue.close()
        raise


def ledger_snapshot(core: ExecutorCore) -> dict[str, Any]:
    """The ledger as plain values: cash and positions (base units, average cost); with fees paid in
    another asset (Solana), the quote balance the venue should hold and those fees (lamports, and
    their quote value)."""
    return {
        "cash": core.ledger.cash,
        "quote_balance": core.ledger.quote_balance,
        "native_fees": core.ledger.native_fees,
        "native_fees_quote": core.ledger.native_fees_quote,
        "positions": {str(i): {"quantity": p.qty, "avg_cost": p.avg_cost} for i, p in core.ledger.positions().items()},
    }


async def serve(settings: ExecutorSettings, ready: Any = None) -> None:
    """Run the executor until cancelled or signalled; writes the ledger snapshot on the way out.

    Args:
        settings: executor settings.
        ready: optional callable given ``{"decision_addr": ..., "metrics_port": ...}`` once bound.

    Raises:
        ConfigError: a bad setting or bus secret, a ``run_dir`` that cannot be written, a host
            that does not resolve, a port in use; :class:`~foundation.rundir.RunDirBusy`: another
            executor holds ``run_dir``. MarketDataError, JournalError, VenueError: bad data file,
            journal or venue. Every one of them before anything is created, except a journal or
            venue error (after ``run_dir`` and its lock file exist).
    """
    log = structlog.get_logger("executor")
    codec = bus_codec(settings)
    bind = parse_address(settings.decision_addr, setting="decision_addr")
    peer = parse_address(settings.confirm_addr, setting="confirm_addr")
    venue = build_venue(settings)
    held = None
    try:
        held = claim(settings, bind, setting="decision_addr", metrics_port=settings.metrics_port, role="executor",
                     peer=peer, peer_setting="confirm_addr")  # fmt: skip
        journal = outputs(settings.run_dir)["journal"]
        if not settings.fresh_journal:  # refused before anything is created; checked again under the lock
            check_journal(journal, venue=settings.venue_id(), starting_cash=settings.starting_cash)
        if (backup := held.take_run_dir(settings, "executor", journal)) is not None:
            log.warning("journal_set_aside", journal=str(journal), backup=str(backup), reason="fresh_journal")
        metrics = ExecutorMetrics()
        venue.metrics = metrics  # the Solana venue counts its sends and verdicts
        core = await build_core(settings, metrics, venue)
        metrics.protective_supported.set(1 if core.protective else 0)
    except BaseException:
        if held is not None:
            held.close()
        await venue.close()
        raise
    reconciler = Reconciler(core, list(settings.instruments()), run_dir=settings.run_dir, rules=settings.reconcile_rules(),
                            debt_rules=settings.debt_rules(), controller_rules=settings.controller_rules(),
                            metrics=metrics)  # fmt: skip
    app = ExecutorApp(core, codec, metrics, bind, peer, heartbeat_s=settings.heartbeat_s, silence_s=settings.silence_s,
                      reconciler=reconciler, reconcile_interval_s=settings.reconcile_interval_s,
                      busy_poll_us=settings.busy_poll_us)  # fmt: skip
    app.bound_socket = held.take_udp()
    server = None
    stop = asyncio.Event()
    app.on_failure = stop.set
    try:
        with signals_call(stop.set):
            try:
                await app.start()  # heartbeats from now on: a brain waiting to hear the executor starts
                server = await start_metrics_server(metrics.registry, settings.metrics_host, settings.metrics_port,
                                                    sock=held.take_metrics())  # fmt: skip
                settle_heap()
                host, port = app.address
                info = {"decision_addr": f"{host}:{port}", "metrics_port": server.port if server else None}
                log.info("executor_ready", venue=settings.venue, recovered=len(core.recovered),
                         next_seq=core.journal.next_seq(), **info)  # fmt: skip
                if ready is not None:
                    ready(info)
                await stop.wait()
            finally:
                await close_serving(app, server)
    finally:
        try:
            snapshot = ledger_snapshot(core)
            ledger = outputs(settings.run_dir)["ledger"]
            try:  # atomic: a full disk leaves the previous snapshot, never a truncated one
                write_atomic(ledger, json.dumps(snapshot, indent=2) + "\n")
            except OSError as exc:
                log.error("ledger_snapshot_not_written", path=str(ledger), error=str(exc))
                if app.failure is None:
                    app.failure = StorageFault(f"{ledger}: the ledger snapshot could not be written: {exc}")
            await core.aclose()
            log.info("executor_stopped", **snapshot)
        finally:
            held.close()  # the run dir's lock goes last: the ledger snapshot is written under it
    if app.failure is not None:
        raise app.failure


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 = bad configuration or input). Prints one JSON line
    ``{"event": "executor_ready", ...}`` on stdout once it accepts decisions."""
    return process_main(argv, prog="tandem executor", settings_cls=ExecutorSettings, ready_event="executor_ready",
                        serve=serve, errors=(MarketDataError, JournalError, VenueError))  # fmt: skip
