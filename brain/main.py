"""``tandem brain`` / ``python -m brain``: build the brain from settings and replay the data.

Start-up creates nothing until every input has been checked and every port bound: settings, the
bus secret, the data file, the strategy (loaded and instantiated), ``run_dir``, then the
confirmation port and the metrics port (:func:`foundation.process.claim`). Only then is ``run_dir``
created and locked for the brain (``brain.lock``: a second brain on it is refused, naming the
holder) and the journal opened. An empty or foreign journal is refused unless ``--fresh-journal``
(which sets it aside and starts a new one), checked once without writing before anything is
created and again once the lock is held.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import structlog

from foundation.barcsv import MarketDataError, bundled_path, load_bars
from foundation.bars import Bars
from foundation.bussecret import bus_codec
from foundation.errors import StorageFault
from foundation.metricsserver import start_metrics_server
from foundation.process import Claim, claim, close_serving, process_main, signals_call
from foundation.runtime import settle_heap
from protocol import Codec

from .app import BrainApp, ExecutorJournalFault, Pacing
from .core import BrainCore
from .journal import BrainJournal, BrainJournalError, check_journal
from .livefeed import FeedError, FeedSettings, LiveFeed
from .metrics import BrainMetrics
from .report import build_report, write_equity_curve, write_report, write_trade_log
from .risk import CircuitBreakers
from .settings import BrainSettings
from .strategy import Strategy, StrategyError, load_strategy, warmup_shortfall
from .tracker import PositionTracker
from .wiring import confirm_bind, decision_peer, outputs

if TYPE_CHECKING:
    from .marketclient import MarketClient

__all__ = ["main", "run_brain"]


def _rejected(metrics: BrainMetrics) -> dict[str, float]:
    return {
        s.labels["reason"]: s.value
        for fam in metrics.rejected.collect()
        for s in fam.samples
        if s.name.endswith("_total") and s.value
    }


async def run_brain(settings: BrainSettings, ready: Any = None) -> dict[str, Any]:
    """Replay the configured data through a brain talking to the configured executor.

    Args:
        settings: brain settings.
        ready: optional callable given ``{"confirm_addr": ..., "metrics_port": ...}`` once bound.

    With ``settings.hold`` the outputs are written when the replay ends and the brain then keeps
    its link and metrics up until SIGTERM/SIGINT (what ``docker compose`` runs); otherwise it
    returns when the replay ends. With ``settings.progress_interval_s`` it prints
    ``{"event": "replay_progress", "bars": N, "total": T}`` lines on stdout while replaying.

    Returns:
        The report (also written to ``run_dir/report.json``, with ``trades.csv`` and
        ``equity.csv``).

    Raises:
        ConfigError, MarketDataError, StrategyError: bad settings, secret, data, strategy or
            ``run_dir``, an unresolvable host, a port in use — before anything is created.
            :class:`~foundation.rundir.RunDirBusy`: another brain holds ``run_dir``.
            BrainJournalError: an empty, foreign or mismatched journal — before any datagram is sent.
    """
    log = structlog.get_logger("brain")
    codec = bus_codec(settings)
    bind = confirm_bind(settings)
    peer = decision_peer(settings)  # a malformed address is refused here, before anything is created
    bars = load_bars(settings.data or bundled_path(), limit=settings.bars) if settings.feed == "replay" else None
    markets = tuple((sym, load_bars(path, limit=settings.bars)) for sym, path in settings.market_files())
    strategy = load_strategy(settings.strategy, settings.strategy_params)
    paths = outputs(settings.run_dir)
    market = None
    if settings.feed == "live":  # ccxt and aiohttp load only for a live feed (issue #17: a replay starts faster)
        from .marketclient import build_market_client

        market = build_market_client(settings)  # a bad exchange id: refused here
    try:
        held = claim(settings, bind, setting="confirm_addr", metrics_port=settings.metrics_port, role="brain",
                     peer=peer, peer_setting="decision_addr")  # fmt: skip
    except BaseException:
        if market is not None:
            await market.close()
        raise
    try:
        if not settings.fresh_journal:  # refused before anything is created; checked again under the lock
            check_journal(paths["journal"], instrument=settings.portfolio_key(), starting_cash=settings.starting_cash)
        if (backup := held.take_run_dir(settings, "brain", paths["journal"])) is not None:
            log.warning("journal_set_aside", journal=str(paths["journal"]), backup=str(backup), reason="fresh_journal")
        journal = BrainJournal(paths["journal"], instrument=settings.portfolio_key(),
                               starting_cash=settings.starting_cash)  # fmt: skip
    except BaseException:
        held.close()
        if market is not None:
            await market.close()
        raise
    try:
        return await _replay(settings, ready, held, codec, bars, markets, strategy, journal, market)
    finally:
        if market is not None:
            await market.close()
        held.close()  # the run dir's lock goes last: the outputs are written under it


async def _replay(settings: BrainSettings, ready: Any, held: Claim, codec: Codec, bars: Bars | None,
                  markets: tuple[tuple[str, Bars], ...], strategy: Strategy, journal: BrainJournal,
                  market: MarketClient | None) -> dict[str, Any]:  # fmt: skip
    """:func:`run_brain` once its inputs are checked, its ports bound and its run dir locked:
    ``bars`` to replay (with a portfolio's other ``markets``: their bars merged by close time, one
    strategy instance each), or (``bars`` None) the live feed on ``market``."""
    log = structlog.get_logger("brain")
    paths = outputs(settings.run_dir)
    # Decision ids are 1, 2, 3... in replay order. A restarted brain re-derives the same ids for
    # the decisions it journaled (BrainApp matches them) and continues past them, so an id is
    # never reused for a different decision.
    ids = itertools.count(1)

    tracker = PositionTracker(settings.starting_cash, settings.exit_rules())
    breakers = CircuitBreakers(settings.breaker_rules())
    config = settings.brain_config()
    strategies = {config.instrument: strategy} | {
        inst: load_strategy(settings.strategy, settings.strategy_params) for inst in config.markets
    }  # one instance per instrument: a strategy keeps state
    core = BrainCore(config, strategies, tracker, breakers, ids.__next__)
    metrics = BrainMetrics()
    pacing = Pacing(settings.replay_bars_per_s, settings.progress_interval_s)
    live = bars is None
    app = BrainApp(core, codec, journal, metrics, confirm_bind(settings), decision_peer(settings),
                   settings.link_settings(), pacing, _print_progress,
                   restamp=not live)  # a replay re-stamps (SPEC.md §10.1); live rules resolve expired decisions
    app.bound_socket = held.take_udp()
    server = await start_metrics_server(metrics.registry, settings.metrics_host, settings.metrics_port,
                                        sock=held.take_metrics())  # fmt: skip
    journaled_live = journal.feed_start_ms() is not None
    if journal.history() and journaled_live != live:
        await close_serving(app, server)
        raise BrainJournalError(
            f"{journal.path}: this journal holds a {'live' if journaled_live else 'replay'} run's decisions; a "
            f"{'live' if live else 'replay'} brain cannot resume it (use another run_dir, or --fresh-journal)"
        )
    await app.start()
    settle_heap()
    feed = None
    if live:
        assert market is not None
        feed = LiveFeed(market.exchange, settings.market_symbol(), feed_settings(settings, strategy), metrics)
        try:
            await feed.start(since_ms=journal.feed_start_ms())
            if feed.first_ms is not None:
                journal.record_feed_start(feed.first_ms)
        except BaseException:
            await feed.close()
            await close_serving(app, server)
            raise
    task = asyncio.current_task()
    assert task is not None
    report: dict[str, Any] | None = None
    with signals_call(task.cancel):  # before the ready line: a SIGTERM right after it is handled
        if ready is not None:
            ready({"confirm_addr": "%s:%d" % app.address, "metrics_port": server.port if server else None})
        if bars is not None:
            log.info("brain_started", bars=len(bars), source=bars.source, strategy=settings.strategy,
                     instruments=list(settings.instruments()), metrics_port=server.port if server else None)  # fmt: skip
            short = warmup_shortfall(strategy, settings.strategy, len(bars))
            if short is not None:
                log.warning("warmup_too_short", detail=short)
                app.stats.warnings.append(short)
        else:
            log.info("brain_started", feed="live", exchange=settings.exchange, instrument=settings.instrument,
                     timeframe=settings.timeframe, strategy=settings.strategy,
                     metrics_port=server.port if server else None)  # fmt: skip
        try:
            if feed is not None:
                await app.run_feed(feed)
            elif markets:
                assert bars is not None
                await app.replay_markets(((config.instrument, bars),
                                          *zip(config.markets, (b for _, b in markets), strict=True)))  # fmt: skip
            else:
                assert bars is not None
                await app.replay(bars)
            report = _write_outputs(app, metrics, paths)
            log.info("brain_finished", trades=report["trades"], final_equity=report["final_equity"])
            if settings.hold:
                log.info("brain_holding", detail="replay done; link and metrics stay up until SIGTERM")
                await asyncio.Event().wait()
        except ExecutorJournalFault as exc:  # logged by the app as it happened; the run stops here
            log.error("brain_stopped", reason="executor_journal_fault", detail=str(exc), bars=app.stats.bars)
        except asyncio.CancelledError:
            if report is None:
                app.stats.interrupted = True
                log.warning("brain_interrupted", bars=app.stats.bars)
        finally:
            if feed is not None:
                app.stats.feed = feed.figures()
                await feed.close()
            await close_serving(app, server)
    if report is None:
        report = _write_outputs(app, metrics, paths)
    journal.close()
    return report


def feed_settings(settings: BrainSettings, strategy: Strategy) -> FeedSettings:
    """The live feed's settings: the brain's, with the warm-up the strategy asks for (its
    ``warmup_bars``; 200 when it does not say: the slow EMA of the default strategy)."""
    from .marketclient import timeframe_ms

    warmup = settings.feed_warmup_bars or getattr(strategy, "warmup_bars", None) or 200
    return FeedSettings(settings.timeframe, timeframe_ms(settings.timeframe), warmup_bars=int(warmup),
                        stale_after=settings.feed_stale_after, poll_s=settings.feed_poll_s,
                        reconnect_max_s=settings.feed_reconnect_max_s, until_ms=settings.feed_until_ms)  # fmt: skip


def _print_progress(bars_done: int, bars_total: int) -> None:
    print(json.dumps({"event": "replay_progress", "bars": bars_done, "total": bars_total}), flush=True)


def _write_outputs(app: BrainApp, metrics: BrainMetrics, paths: dict[str, Any]) -> dict[str, Any]:
    """Build the report and write report.json, trades.csv and equity.csv; returns the report."""
    core, tracker = app.core, app.core.tracker
    trips = Counter(t.kind.value for t in core.breakers.trips)
    report = build_report(tracker, app.stats, app.link.stats, trips, Counter({k.value: v for k, v in core.skips.items()}),
                          _rejected(metrics), core.config.instruments)  # fmt: skip
    report["instrument"] = str(core.config.instrument)
    report["instruments"] = [str(i) for i in core.config.instruments]
    try:  # each atomically: a full disk leaves the previous file, never a truncated one
        write_trade_log(paths["trades"], tracker.closed_trades)
        write_equity_curve(paths["equity"], app.stats.equity_curve, tuple(str(i) for i in core.config.markets))
        write_report(paths["report"], report)
    except OSError as exc:
        raise StorageFault(f"{exc.filename or 'an output'}: cannot be written: {exc.strerror or exc}") from exc
    return report


async def _serve(settings: BrainSettings, ready: Any) -> int:
    report = await run_brain(settings, ready)
    return 1 if report["interrupted"] or report["executor_journal_fault"] else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (1 = interrupted, or stopped by an executor journal fault;
    2 = bad configuration or input). Prints
    one JSON line ``{"event": "brain_ready", ...}`` on stdout once it listens."""
    return process_main(argv, prog="tandem brain", settings_cls=BrainSettings, ready_event="brain_ready",
                        serve=_serve, errors=(MarketDataError, StrategyError, BrainJournalError, FeedError))  # fmt: skip
