"""``tandem paper``: the executor and the brain as two OS processes over UDP, then a report.

Steps: check every input before anything is created (:func:`check_inputs`: settings, data file,
strategy, ``run_dir``, each port the children will bind, and, in an existing ``run_dir``, that
no executor or brain holds it and that its journals would be accepted); make the run directory
and a fresh bus secret (``bus.key``, mode 0600); start
``python -m executor`` and ``python -m brain`` together and wait for the executor's ready line (the
brain's replay waits until it hears the executor); when the brain has
replayed the data, stop the executor (SIGTERM), compare the brain's positions with the executor's
ledger, and print the report. Logs go to ``brain.log`` and ``executor.log`` in the run directory.

``--venue solana-emulator`` trades the bars as an SPL token against USDC on a local Solana cluster
(:mod:`testbed.solana_local`): the executor's Solana venue quotes, signs and sends real
transactions through solana-py to a LiteSVM cluster and a Jupiter-shaped swap service that prices
the same bars; no stop rests on an AMM, so the brain's exit plan alone protects positions; at the
end the token, USDC and SOL balances on the cluster are reconciled with the executor's ledger.

``--venue binance-emulator`` puts the real ccxt client and a local Binance between the executor and
the market (:mod:`testbed.emulated`): the emulator replays the same bars as a third process, the
executor trades through ``ccxt.async_support`` over HTTPS on loopback with protective stops on the
exchange, the brain moves them (``exchange_stops``), and at the end the exchange's account is
reconciled with the executor's ledger as well. ``--exchange binanceusdm`` (default; USDⓈ-M
perpetual ``BTC/USDT:USDT``) or ``binance`` (spot ``BTC/USDT``) picks the market.

While the brain replays, a progress bar on stderr (tqdm: bars done, bars/s, ETA) follows the
``{"event": "replay_progress", "bars": N, "total": T}`` lines the brain prints on its stdout
(``progress_interval_s``); ``--progress auto`` (default) shows it only when stderr is a terminal.
At the end :func:`tandem.runreport.render_report` draws ``report.png`` and ``report.html``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from brain.journal import BrainJournalError
from brain.journal import check_journal as check_brain_journal
from brain.settings import BrainSettings
from brain.strategy import Strategy, StrategyError, load_strategy, warmup_shortfall
from executor.journal import JournalError
from executor.journal import check_journal as check_executor_journal
from executor.settings import ExecutorSettings, venue_id
from foundation.atomicfile import write_atomic
from foundation.barcsv import BUNDLED_PORTFOLIO, MarketDataError, bundled_path, count_bars, load_bars
from foundation.bussecret import load_bus_secret, new_bus_secret, write_secret_file
from foundation.errors import STORAGE_FAULT_EXIT, ConfigError, StorageFault
from foundation.ports import Port, probe
from foundation.process import run_main
from foundation.rundir import check_not_in_use, check_run_dir, make_run_dir
from foundation.runtime import parse_address
from foundation.settings import load_settings

from .children import child_flags, log_tail, wait_ready
from .localvenue import local_venue
from .progress import PROGRESS_INTERVAL_S, ReplayProgress
from .warm import ROLES, WarmChild

__all__ = ["INPUT_ERRORS", "PaperSettings", "check_inputs", "main", "picture_line", "render", "run_paper"]

INPUT_ERRORS = (ConfigError, MarketDataError, StrategyError, JournalError, BrainJournalError)
"""What :func:`check_inputs` raises: bad input, exit code 2."""

_READY_TIMEOUT_S = 60.0


class PaperSettings(BrainSettings):
    """Brain settings plus the executor's venue settings; ``run_dir`` defaults to a new folder."""

    run_dir: Path | None = Field(None, description="output folder (default: runs/<UTC timestamp>)")  # type: ignore[assignment]
    fee_bps: float = Field(10.0, ge=-100, le=1000, description="taker fee, bps of notional (Binance VIP 0 spot: 10)")
    slippage_bps: float = Field(2.0, ge=0, lt=10_000, description="paper fills move against the trader by this, bps")
    journal_synchronous: Literal["NORMAL", "FULL"] = Field("NORMAL", description="executor journal SQLite synchronous")
    executor_metrics_port: int = Field(9102, ge=-1, le=65535, description="executor Prometheus port (-1 = off)")
    venue: Literal["paper", "binance-emulator", "solana-emulator"] = Field(
        "paper", description="paper (the paper venue), binance-emulator (ccxt against a local Binance) or "
        "solana-emulator (Jupiter-shaped swaps on a local Solana cluster)",
    )
    exchange: Literal["binanceusdm", "binance"] = Field(
        "binanceusdm", description="binance-emulator: binanceusdm (USDⓈ-M perpetual) or binance (spot)"
    )
    bus_secret: SecretStr | None = Field(None, exclude=True, description="ignored: paper makes a fresh secret per run")
    progress: Literal["auto", "on", "off"] = Field(
        "auto", description="replay progress bar on stderr (bars/s, ETA): auto = only when stderr is a terminal"
    )
    portfolio: bool = Field(
        False, description="trade the bundled portfolio: Binance BTC, ETH, SOL and BNB/USDT 4-hour bars, 2023-12-30 → "
        "2024-03-22 (sets instrument, data and markets)",
    )
    stream_bars_per_s: float = Field(
        100.0, gt=0, le=100_000, description="feed=live: the local exchange streams the bars at this many per second"
    )
    stream_faults: str = Field(
        "[]", description='feed=live: faults of the local exchange\'s stream, JSON: [{"kind": "gap", "at_bar": 300, "bars": 3}, '
        '{"kind": "disconnect"|"stall"|"duplicate_final"|"late", "at_bar": N, "seconds": S}]'
    )

    @model_validator(mode="after")
    def _bundled_portfolio(self) -> PaperSettings:
        """``portfolio``: the bundled instruments and files (:data:`~foundation.barcsv.BUNDLED_PORTFOLIO`);
        refused beside an explicit ``instrument``, ``data`` or ``markets`` (which one would win?)."""
        if not self.portfolio:
            return self
        given = sorted({"instrument", "data", "markets"} & self.model_fields_set)
        if given:
            raise ValueError(f"portfolio: sets instrument, data and markets itself; drop {', '.join(given)} (or "
                             f"drop portfolio and list your own markets)")  # fmt: skip
        (first, first_file), *rest = BUNDLED_PORTFOLIO
        self.instrument, self.data = first, bundled_path(first_file)
        self.markets = ",".join(f"{sym}={bundled_path(name)}" for sym, name in rest)
        return self

    @model_validator(mode="after")
    def _portfolio_on_paper(self) -> PaperSettings:
        if self.markets and self.venue != "paper":
            raise ValueError(f"markets: a portfolio of several instruments trades on the paper venue only; "
                             f"venue={self.venue} replays `instrument` alone")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _live_feed_needs_an_exchange(self) -> PaperSettings:
        if self.feed == "live" and self.venue == "paper":
            raise ValueError("feed=live reads an exchange's kline stream: pass --venue binance-emulator (the local "
                             "Binance) or solana-emulator (priced by the local Binance's stream)")  # fmt: skip
        if self.allow_short and (self.venue == "solana-emulator" or (self.venue == "binance-emulator"
                                                                     and self.exchange == "binance")):  # fmt: skip
            where = "solana-emulator swaps tokens" if self.venue == "solana-emulator" else "exchange=binance is spot"
            raise ValueError(f"allow_short: {where} and cannot hold a short; shorts need a derivatives venue: "
                             f"--venue paper, or --venue binance-emulator --exchange binanceusdm")  # fmt: skip
        return self

    def show_progress(self) -> bool:
        """Whether to draw the progress bar: ``on``, or ``auto`` with stderr on a terminal."""
        return self.progress == "on" or (self.progress == "auto" and sys.stderr.isatty())


def _wait_ready(proc: subprocess.Popen[str], log: Path) -> dict[str, Any]:
    return wait_ready(proc, log, "executor", lambda msg: msg.get("event") == "executor_ready", _READY_TIMEOUT_S)


def check_inputs(settings: PaperSettings) -> Path:
    """Everything the session and its children would refuse, checked before anything is created;
    returns the run directory to use (``settings.run_dir`` or a new ``runs/<UTC timestamp>``).

    Checks: the data file; the strategy, imported and instantiated with its parameters (from the
    working directory too, as ``python -m brain`` would import it); ``run_dir`` creatable and
    writable; every port the children bind — decision and confirmation (UDP), the brain's and
    the executor's metrics (TCP, unless -1 or 0) — resolvable and free, each bound and released;
    in an existing ``run_dir``, no executor or brain holding its lock and, without
    ``fresh_journal``, journals the children would accept (read without writing). Once all pass, data
    too short for the strategy's warm-up is warned about on stderr (the run goes ahead).

    Raises:
        ConfigError (RunDirBusy), MarketDataError, StrategyError, JournalError, BrainJournalError:
            the first input refused; the message names the setting or file.
    """
    files = (settings.data or bundled_path(), *(path for _, path in settings.market_files()))
    shortest = min(count_bars(path, limit=settings.bars) for path in files)  # bundled files: by their digests
    strategy = _check_strategy(settings.strategy, settings.strategy_params)
    short = warmup_shortfall(strategy, settings.strategy, shortest)
    run_dir = settings.run_dir or Path("runs") / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    check_run_dir(run_dir)
    probe([
        Port("decision_addr", *parse_address(settings.decision_addr, setting="decision_addr"), "udp"),
        Port("confirm_addr", *parse_address(settings.confirm_addr, setting="confirm_addr"), "udp"),
        *(Port(name, settings.metrics_host, port, "tcp", "metrics_host")
          for name, port in (("metrics_port", settings.metrics_port), ("executor_metrics_port", settings.executor_metrics_port))
          if port >= 0),
    ])  # fmt: skip
    if run_dir.is_dir():
        check_not_in_use(run_dir)
        if (run_dir / "bus.key").exists():  # kept and used again: it must pass the processes' checks
            load_bus_secret(None, run_dir / "bus.key")
        if not settings.fresh_journal:
            instrument = settings.portfolio_key()
            if settings.venue != "paper":
                instrument = local_venue(settings.venue).instrument(settings.exchange)
            check_executor_journal(run_dir / "executor.sqlite", venue=venue_id(settings.venue, settings.exchange),
                                   starting_cash=settings.starting_cash)  # fmt: skip
            check_brain_journal(run_dir / "brain.sqlite", instrument=instrument, starting_cash=settings.starting_cash)
    if short is not None:  # not an error: the run goes ahead (every check passed), and its report repeats it
        print(f"tandem paper: warning: {short}", file=sys.stderr)
    return run_dir


def _check_strategy(path: str, params: dict[str, Any]) -> Strategy:
    """Load and instantiate the strategy as the brain will (and return it): ``python -m brain`` has
    the working directory on ``sys.path``, which the ``tandem`` console script has not.

    Raises:
        StrategyError: it cannot be imported, or does not take these parameters.
    """
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return load_strategy(path, params)
    finally:
        if added:
            sys.path.remove(cwd)


def _live_stream(settings: PaperSettings) -> dict[str, Any]:
    """The local exchange's kline stream for ``--feed live``: from the bar after the strategy's
    warm-up (the bars before it are the REST history the brain loads first, so it starts from the
    same first bar as a replay), at ``stream_bars_per_s``, with ``stream_faults``.

    Raises:
        ConfigError: the data has no bar after the warm-up.
    """
    bars = load_bars(settings.data or bundled_path(), limit=settings.bars)
    warmup = settings.feed_warmup_bars or getattr(_check_strategy(settings.strategy, settings.strategy_params),
                                                  "warmup_bars", None) or 200  # fmt: skip
    if warmup >= len(bars):
        raise ConfigError(f"feed=live: the data has {len(bars)} bars, none after the {warmup} bars of warm-up")
    return {"start": int(warmup), "bars_per_s": settings.stream_bars_per_s, "faults": settings.stream_faults,
            "last_ms": bars.ts_ms[-1]}  # fmt: skip


def _live_feed_settings(settings: PaperSettings, stream: dict[str, Any]) -> dict[str, Any]:
    """The brain's live-feed settings for the local stream: stop after its last bar; ask the
    exchange's clock after two bars of silence; unless given, call the feed stale only after two
    wall seconds of lag (``2 x stream_bars_per_s`` bars, at least 3): a replay at hundreds of bars a
    second must not call a decision's round trip staleness."""
    speed = settings.stream_bars_per_s
    out: dict[str, Any] = {"feed": "live", "feed_until_ms": stream["last_ms"], "feed_poll_s": max(0.01, 2 / speed)}
    if "feed_stale_after" not in settings.model_fields_set:
        out["feed_stale_after"] = max(3, math.ceil(2 * speed))
    return out


def _by_side_lines(r: dict[str, Any]) -> list[str]:
    """A line for the longs and one for the shorts, when the run took any short."""
    sides = r.get("trades_by_side") or {}
    if not sides.get("SHORT", {}).get("trades"):
        return []
    return [f"    {name.lower():<5}                {s['trades']}  (wins {s['wins']}, net P&L {s['net_pnl']:+,.2f})"
            for name, s in sides.items()]


def _instrument_lines(r: dict[str, Any]) -> list[str]:
    """A portfolio's breakdown: a line per instrument (trades, wins, longs/shorts, net P&L, position)."""
    by = r.get("by_instrument") or {}
    if len(r.get("instruments") or ()) < 2:
        return []
    lines = ["  by instrument"]
    for sym, s in by.items():
        sides = s.get("by_side", {})
        lines.append(f"    {sym:<20} {s['trades']:>4} trades (wins {s['wins']}, long {sides.get('LONG', {}).get('trades', 0)}, "
                     f"short {sides.get('SHORT', {}).get('trades', 0)})  net P&L {s['net_pnl']:+,.2f}  "
                     f"position {s['position']:g}")  # fmt: skip
    return lines


def _mark_log(path: Path, process: str) -> Path:
    """Append to ``path`` (a run dir's logs are audit records: a second run on the same run dir
    adds to them, never wipes them) a first line marking this start; returns ``path``."""
    with path.open("a") as fh:
        marker = {"event": "paper_start", "process": process, "timestamp": datetime.now(UTC).isoformat()}
        fh.write(json.dumps(marker) + "\n")
    return path


def _raise_storage_fault(process: str, code: int | None, log: Path) -> None:
    """A child that exited with :data:`~foundation.errors.STORAGE_FAULT_EXIT`: raise it as one.

    Raises:
        StorageFault: the child stopped on a storage fault; the message says how to resume.
    """
    if code == STORAGE_FAULT_EXIT:
        raise StorageFault(f"the {process} stopped on a storage fault (exit {code}){_free_space(log.parent)}; free the "
                           f"space or fix the disk, then run again with the same --run-dir: it resumes from the "
                           f"journals; {log}:\n{log_tail(log)}")  # fmt: skip


def _free_space(run_dir: Path) -> str:
    """What the run directory's filesystem has left, for a storage fault's message: the child's own
    line may not have fitted in its log when the disk is what filled up."""
    try:
        st = os.statvfs(run_dir)
    except OSError:
        return ""
    free = st.f_bavail * st.f_frsize
    return f" — {run_dir} has {free:,} bytes free" + (": No space left on device" if free < 1 << 20 else "")


def run_paper(settings: PaperSettings, *, draw: bool = True, warm: Sequence[WarmChild] = ()) -> dict[str, Any]:
    """Run one paper session; returns the brain's report plus ``wall_time_s`` and the ledger check,
    and with ``draw`` the run report's pictures (``run_report``, :func:`render`; ``tandem paper``
    draws them after printing the report, issue #17).

    The brain and the executor are :class:`~tandem.warm.WarmChild` processes: ``warm`` ones, already
    importing since before this call (``tandem paper`` starts them before its own imports), or
    started here, before the inputs are checked. Either way they import while the checks run, and
    this call stops any it did not use.

    Raises:
        ConfigError, MarketDataError, StrategyError, JournalError, BrainJournalError
            (:data:`INPUT_ERRORS`): an input refused by :func:`check_inputs`, before anything is
            created.
        RuntimeError: a child process failed (its log tail is in the message).
    """
    started = time.perf_counter()
    children = {w.role: w for w in warm} or {role: WarmChild(role) for role in ROLES}
    try:
        return _run_paper(settings, draw, children, started)
    finally:
        for child in children.values():
            child.close()


def _run_paper(settings: PaperSettings, draw: bool, children: dict[str, WarmChild], started: float) -> dict[str, Any]:
    run_dir = check_inputs(settings)
    make_run_dir(run_dir)
    key = run_dir / "bus.key"
    if not key.exists():  # a run dir's key is kept: a resumed run talks with the same secret
        write_secret_file(key, new_bus_secret())
    common: dict[str, Any] = {"run_dir": str(run_dir), "bus_secret_file": str(key)}
    exe_extra: dict[str, Any] = {}
    brain_extra: dict[str, Any] = {}
    exchange = feed_source = None
    if settings.venue != "paper":  # a local exchange: its plugin (aiohttp's server, trustme) loads only when used
        venue_cls = local_venue(settings.venue)
        stream = _live_stream(settings) if settings.feed == "live" else None
        data = settings.data or bundled_path()
        if stream is not None and settings.venue != "binance-emulator":
            # a mint has no kline stream: the local Binance streams the same bars as the ccxt feed of
            # the same asset (feed_symbol), and the venue trades the mint
            feed_cls = local_venue("binance-emulator")
            feed_source = feed_cls.start(run_dir, data, settings.bars, settings.starting_cash, settings.exchange,
                                         stream=stream)  # fmt: skip
        try:
            exchange = venue_cls.start(run_dir, data, settings.bars, settings.starting_cash, settings.exchange,
                                       stream=None if feed_source is not None else stream)  # fmt: skip
        except BaseException:
            if feed_source is not None:
                feed_source.stop()
            raise
        common["instrument"] = venue_cls.instrument(settings.exchange)
        exe_extra = exchange.executor_settings()
        brain_extra = exchange.brain_settings()
        if feed_source is not None:
            brain_extra |= feed_source.brain_settings() | {"exchange_stops": brain_extra.get("exchange_stops", False),
                                                           "feed_symbol": feed_cls.instrument(settings.exchange)}  # fmt: skip
        if stream is not None:
            brain_extra |= _live_feed_settings(settings, stream)
    brain_extra["hold"] = False  # a holding brain would outlive its replay, and paper waits for it to exit
    show_progress = settings.show_progress()
    if show_progress:
        brain_extra["progress_interval_s"] = settings.progress_interval_s or PROGRESS_INTERVAL_S
    exe_log, brain_log = run_dir / "executor.log", run_dir / "brain.log"
    executor = children["executor"].start(
        child_flags(settings, ExecutorSettings, metrics_port=settings.executor_metrics_port, **common, **exe_extra),
        _mark_log(exe_log, "executor"), stdout=True,
    )  # fmt: skip
    progress = brain = None
    try:
        # both start at once (issue #17); the brain's replay waits until it hears the executor, and an
        # executor that fails to start takes the brain down
        brain = children["brain"].start(child_flags(settings, BrainSettings, **common, **brain_extra),
                                        _mark_log(brain_log, "brain"), stdout=show_progress)  # fmt: skip
        _wait_ready(executor, exe_log)
        progress = ReplayProgress(brain.stdout) if show_progress else None
        while brain.poll() is None:
            if executor.poll() is not None:
                brain.kill()
                brain.wait()
                _raise_storage_fault("executor", executor.returncode, exe_log)
                raise RuntimeError(f"executor exited with {executor.returncode} mid-run; {exe_log}:\n{log_tail(exe_log)}")
            if progress is not None:
                progress.wait(0.05)
            else:
                try:  # returns as soon as the brain exits (polled at 0.5 ms, doubling up to 50 ms)
                    brain.wait(0.05)
                except subprocess.TimeoutExpired:
                    pass
        if brain.returncode != 0:
            _raise_storage_fault("brain", brain.returncode, brain_log)
            raise RuntimeError(f"brain exited with {brain.returncode}; {brain_log}:\n{log_tail(brain_log)}")
    finally:
        if progress is not None:
            progress.close()
        if brain is not None and brain.poll() is None:  # the executor never became ready
            brain.kill()
            brain.wait()
        if executor.poll() is None:
            executor.terminate()
            try:
                executor.wait(timeout=10)
            except subprocess.TimeoutExpired:
                executor.kill()
                executor.wait()
        account = None
        if feed_source is not None:
            feed_source.stop()
        if exchange is not None:
            try:
                account = exchange.account() if exchange.running() else None
            finally:
                exchange.stop()
    report = json.loads((run_dir / "report.json").read_text())
    ledger = json.loads((run_dir / "executor-ledger.json").read_text())
    report["executor_ledger"] = ledger
    brain_pos = report["open_positions"]
    exe_pos = {k: v["quantity"] for k, v in ledger["positions"].items()}
    report["ledger_agrees"] = brain_pos.keys() == exe_pos.keys() and all(
        abs(brain_pos[k] - exe_pos[k]) <= 1e-9 * max(1.0, abs(exe_pos[k])) for k in exe_pos
    )
    report["venue"] = settings.venue if exchange is None else exchange.describe()
    report["exchange_stops"] = bool(brain_extra.get("exchange_stops", False))
    if exchange is not None:
        if account is None:
            raise RuntimeError(f"{settings.venue} exited mid-run; see its log in {run_dir}")
        rec = exchange.reconcile(account, ledger)
        report["exchange_reconciliation"] = rec
        _write_output(run_dir / "exchange-account.json", json.dumps(account, indent=2) + "\n")
        report["ledger_agrees"] = report["ledger_agrees"] and rec["agrees"]
    report["run_dir"] = str(run_dir)
    report["wall_time_s"] = time.perf_counter() - started
    _write_output(run_dir / "report.json", json.dumps(report, indent=2) + "\n")  # the brain's, plus the checks
    if draw:
        report["run_report"] = render(run_dir)
    return report


def _write_output(path: Path, text: str) -> None:
    """Write one of the session's outputs atomically.

    Raises:
        StorageFault: it cannot be written (a full or failing disk); the previous file stays.
    """
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise StorageFault(f"{path}: cannot be written: {exc.strerror or exc}") from exc


def render(run_dir: Path) -> dict[str, Any]:
    """``report.png`` and ``report.html``: ``{"png": path, "html": path, "seconds": s}``, or
    ``{"error": message}`` when an input is missing or malformed (the run itself stands)."""
    from .runreport import RunReportError, render_report  # matplotlib loads (~0.4 s) only after the replay

    started = time.perf_counter()
    try:
        paths = render_report(run_dir)
    except RunReportError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a drawing bug must not turn a good session into a failure
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {**{k: str(v) for k, v in paths.items()}, "seconds": time.perf_counter() - started}


def format_report(r: dict[str, Any]) -> str:
    """The report as aligned text for the terminal."""

    def kv(d: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in d.items()) or "none"

    lat = r["latency_us"]
    lines = [
        "tandem paper report",
        f"  venue                  {r.get('venue', 'paper')}",
        f"  bars replayed          {r['bars_replayed']}",
        f"  decisions sent         {r['decisions_sent']}  ({kv(r['decisions_by_outcome'])})",
        f"  trades                 {r['trades']}  (wins {r['wins']}, losses {r['losses']}, win rate {r['win_rate_pct']:.1f}%)",
        *_by_side_lines(r),
        f"  total return           {r['total_return_pct']:+.2f}%  (equity {r['starting_cash']:,.2f} -> {r['final_equity']:,.2f})",
        f"  max drawdown           {r['max_drawdown_pct']:.2f}%",
        f"  realized P&L (gross)   {r['realized_pnl']:+,.2f}   unrealized {r['unrealized_pnl']:+,.2f}",
        f"  fees                   {r['fees']:,.2f}",
        f"  exits by reason        {kv(r['exits_by_reason'])}",
        *_instrument_lines(r),
        f"  breaker trips          {kv(r['breaker_trips'])}",
        f"  signals skipped        {kv(r['signals_skipped'])}",
        f"  retransmits            {r['retransmits']}   datagrams rejected: {kv(r['datagrams_rejected'])}",
        f"  round trip (us)        p50 {lat['p50']:.0f}  p99 {lat['p99']:.0f}  max {lat['max']:.0f}  (n={lat['n']})",
        f"  open positions         {kv(r['open_positions'])}",
        f"  executor ledger        {'agrees with the brain' if r['ledger_agrees'] else 'DISAGREES with the brain'}"
        f"  (cash {r['executor_ledger']['cash']:,.2f})",
    ]
    rec = r.get("exchange_reconciliation")
    if rec is not None:
        lines.append(
            f"  exchange account       {'agrees with the ledger' if rec['agrees'] else 'DISAGREES with the ledger'}"
            f"  (balance {rec['exchange_cash']:,.6f} vs {rec.get('ledger_quote_balance', rec['ledger_cash']):,.6f},"
            f" position {rec['exchange_position']:g}"
            f" vs {rec['ledger_position']:g}, open orders {rec['open_orders']}, orphaned stops {len(rec['orphans'])}"
            + (f", SOL {rec['sol_lamports']:,} vs {rec['expected_sol_lamports']:,} lamports" if "sol_lamports" in rec else "")
            + ")"
        )
    if "exchange_stops" in r:
        lines.append("  protective stops       " + ("on the exchange (the brain moves them)" if r["exchange_stops"] else
                                                  "none on this venue: the brain's exit plan alone protects positions"))  # fmt: skip
    lines += [f"  WARNING                {w}" for w in r.get("warnings", [])]
    picture = r.get("run_report")
    if picture is not None:
        lines.append(picture_line(picture))
    lines += [
        f"  run directory          {r['run_dir']}  (trades.csv, equity.csv, report.json, brain.sqlite, executor.sqlite,"
        " logs)",
        f"  wall time              {r['wall_time_s']:.2f} s",
    ]
    return "\n".join(lines)


def picture_line(picture: dict[str, Any]) -> str:
    """The report's line naming the pictures :func:`render` drew, or why they are missing."""
    if "error" in picture:
        return f"  report picture         NOT WRITTEN: {picture['error']}"
    return f"  report picture         {picture['png']}  and  {Path(picture['html']).name}  ({picture['seconds']:.1f} s)"


def main(argv: list[str] | None = None, *, warm: Sequence[WarmChild] = ()) -> int:
    """Entry point (``warm``: the brain and the executor, started early by :mod:`tandem.cli`); exit 0 on success, 1 if a process failed or the ledgers disagree, 2 on bad input, 3 on a
    storage fault (a process could not write its journal or outputs; run again on the same run dir). The
    report is printed as soon as the session ends, then the pictures are drawn and named (issue #17:
    matplotlib's import and the drawing take most of a second the reader need not wait for)."""

    def body() -> int:
        settings = load_settings(PaperSettings, argv if argv is not None else sys.argv[1:], "tandem paper")
        report = run_paper(settings, draw=False, warm=warm)
        print(format_report(report), flush=True)
        print(picture_line(render(Path(report["run_dir"]))))
        return 0 if report["ledger_agrees"] else 1

    try:
        return run_main("tandem paper", body, input_errors=INPUT_ERRORS)
    finally:
        for child in warm:  # refused before the session began: they have only imported modules
            child.close()
