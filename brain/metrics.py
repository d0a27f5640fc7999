"""The brain's Prometheus metrics, in a registry of its own (one per brain instance).

Names follow the Prometheus naming guide (https://prometheus.io/docs/practices/naming/): the
``tandem_brain_`` prefix, ``_total`` on counters, base units (seconds, ratios 0..1). Money is in
the quote currency of the instrument (USD for the bundled FTX BTC-PERP month); quantities are in
base units. The README's metrics catalogue lists every one.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from protocol import DecisionReason, RejectReason, Status

from .core import SkipReason
from .risk import BreakerKind

__all__ = ["FEED_OUTCOMES", "LATENCY_BUCKETS", "BrainMetrics"]

FEED_OUTCOMES = ("received", "duplicated", "refused", "bad", "gap_filled")
"""Label values of ``tandem_brain_feed_bars_total`` (:class:`~brain.livebars.FeedCounts`)."""

LATENCY_BUCKETS = (
    50e-6, 100e-6, 200e-6, 300e-6, 500e-6, 750e-6, 1e-3, 2e-3, 5e-3, 10e-3, 25e-3, 50e-3, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
)  # fmt: skip
"""Seconds; loopback round trips sit around 100 µs–1 ms, retransmitted ones and exchange round
trips (tens to hundreds of ms) far above."""

_NS = "tandem_brain"


class BrainMetrics:
    """Counters, gauges and the decision→confirmation latency histogram; see the README catalogue."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        # decisions and their outcomes
        self.decisions = Counter(f"{_NS}_decisions_sent_total", "Decisions sent (first transmission), by side (BUY, SELL) and reason (SIGNAL, STOP_LOSS, ...)", ["side", "reason"],
                                 registry=r)  # fmt: skip
        self.outcomes = Counter(
            f"{_NS}_decision_outcomes_total",
            "How decisions ended: the confirmation status (FILLED, PARTIALLY_FILLED, ACCEPTED, REJECTED, EXPIRED, FAILED) or EXPIRED_UNCONFIRMED", ["outcome"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            f"{_NS}_confirmation_latency_seconds", "Decision sent to its confirmation received, seconds",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.pending = Gauge(f"{_NS}_pending_decisions", "Decisions sent and not yet confirmed", registry=r)
        self.retransmits = Counter(f"{_NS}_decision_retransmits_total", "Decisions resent unconfirmed", registry=r)
        self.replay_requests = Counter(f"{_NS}_replay_requests_total", "Confirmation replays requested", registry=r)
        self.duplicates = Counter(f"{_NS}_duplicate_confirmations_total", "Confirmations already applied", registry=r)
        self.unknown = Counter(
            f"{_NS}_unsolicited_confirmations_total", "Confirmations for decisions not awaiting one", registry=r
        )
        self.late_confirmations = Counter(
            f"{_NS}_late_confirmations_total",
            "Non-executed confirmations for decisions already resolved EXPIRED_UNCONFIRMED (not counted again)", registry=r,
        )  # fmt: skip
        self.resolution_contradicted = Counter(
            f"{_NS}_expired_decisions_executed_total",
            "Decisions resolved EXPIRED_UNCONFIRMED then confirmed as executed (applied; should never happen)", registry=r,
        )  # fmt: skip
        self.restamped = Counter(
            f"{_NS}_decisions_restamped_total",
            "Replay decisions the executor provably never journaled, sent again under the same id with fresh stamps",
            registry=r,
        )  # fmt: skip
        self.journal_faults = Counter(
            f"{_NS}_executor_journal_faults_total",
            "Times the executor's journal was seen replaced (another journal id) or gone back (last seq below the applied one)",
            registry=r,
        )  # fmt: skip
        self.journal_fault = Gauge(
            f"{_NS}_executor_journal_fault", "1 once the executor's journal was replaced or went back (entries blocked), else 0",
            registry=r,
        )  # fmt: skip
        # the bus
        self.rejected = Counter(f"{_NS}_datagrams_rejected_total", "Datagrams dropped, by reason (size, version, type, auth, field, stale, direction)", ["reason"], registry=r)
        self.handler_errors = Counter(f"{_NS}_handler_errors_total", "Valid datagrams whose handling raised", registry=r)
        self.executor_up = Gauge(f"{_NS}_executor_up", "1 if the executor was heard within silence_s (default 3 s), else 0", registry=r)
        self.executor_heard = Gauge(
            f"{_NS}_executor_last_heard_timestamp_seconds", "Unix time the executor was last heard", registry=r
        )
        # positions and money
        self.positions_opened = Counter(f"{_NS}_positions_opened_total", "Positions opened by a confirmation", registry=r)
        self.positions_closed = Counter(f"{_NS}_positions_closed_total", "Positions closed by a confirmation", registry=r)
        self.exits = Counter(f"{_NS}_exits_total", "Closed trades, by exit reason (SIGNAL, STOP_LOSS, TRAILING_TAKE_PROFIT, TIME_STOP, BREAKER, MANUAL)", ["reason"], registry=r)
        self.open_positions = Gauge(f"{_NS}_open_positions", "Positions held", registry=r)
        self.position = Gauge(f"{_NS}_position_quantity", "Position held, base units (0 when flat)", ["instrument"], registry=r)
        self.equity = Gauge(f"{_NS}_equity", "Cash plus positions at mark price, quote currency", registry=r)
        self.cash = Gauge(f"{_NS}_cash", "Cash, quote currency", registry=r)
        self.peak_equity = Gauge(f"{_NS}_peak_equity", "Highest equity seen, quote currency", registry=r)
        self.drawdown = Gauge(f"{_NS}_drawdown_ratio", "(peak equity - equity) / peak equity, 0..1", registry=r)
        # strategy and risk
        self.skips = Counter(f"{_NS}_signals_skipped_total", "Strategy signals not acted on, by reason (breaker, already_positioned, ...)", ["reason"], registry=r)
        self.trips = Counter(f"{_NS}_breaker_trips_total", "Circuit breaker trips, by kind (daily_loss, drawdown, losing_streak)", ["kind"], registry=r)
        self.tripped = Gauge(f"{_NS}_breaker_tripped", "1 while the breaker blocks entries (at market time), else 0", ["kind"],
                             registry=r)  # fmt: skip
        self.resuming = Gauge(
            f"{_NS}_resuming",
            "1 while a restarted brain re-derives its journaled decisions (positions not exported yet), else 0",
            registry=r,
        )  # fmt: skip
        # the replay
        self.bars = Counter(f"{_NS}_bars_replayed_total", "Bars processed", registry=r)
        self.replay_bars = Gauge(f"{_NS}_replay_bars", "Bars in the replayed data", registry=r)
        self.market_time = Gauge(
            f"{_NS}_market_time_seconds", "Close time of the last bar processed, unix seconds", registry=r
        )
        # the live feed (feed=live)
        self.feed_up = Gauge(f"{_NS}_feed_up", "1 while the live feed's stream is connected, else 0 (0 with feed=replay)",
                             registry=r)  # fmt: skip
        self.feed_stale = Gauge(
            f"{_NS}_feed_stale",
            "1 while the live feed is stale (stream down, or the market moved feed_stale_after intervals past its last update): entries blocked",
            registry=r,
        )  # fmt: skip
        self.feed_last_closed_bar = Gauge(
            f"{_NS}_feed_last_closed_bar_timestamp_seconds", "Close time of the last closed bar the live feed handed over, unix seconds",
            registry=r,
        )  # fmt: skip
        self.feed_lag = Gauge(
            f"{_NS}_feed_lag_seconds", "Wall clock minus the close time of the last closed bar handed over, when it was processed, seconds",
            registry=r,
        )  # fmt: skip
        self.feed_bars = Counter(
            f"{_NS}_feed_bars_total",
            "Live feed klines by outcome: received (updates and REST rows), duplicated, refused (late, out of order), bad (invalid data), gap_filled (closed bars fetched through REST to fill a gap)",
            ["outcome"], registry=r,
        )  # fmt: skip
        # the executor's belief (protocol v4: its heartbeats carry its posture; its corrections come as confirmations)
        self.executor_belief_mode = Gauge(
            f"{_NS}_executor_belief_mode", "The executor's belief mode from its heartbeats: 0 none yet, 1 GREEN, 2 YELLOW, 3 ORANGE, 4 RED",
            registry=r,
        )  # fmt: skip
        self.executor_kill_switch = Gauge(
            f"{_NS}_executor_kill_switch", "1 while the executor's kill switch is on (no entries), from its heartbeats", registry=r
        )
        self.reconciled = Counter(
            f"{_NS}_reconciled_confirmations_total",
            "The executor's corrections applied (RECONCILED confirmations), by intent (OPEN: adopted or grew, CLOSE: cleared, REDUCE: shrank)",
            ["intent"], registry=r,
        )  # fmt: skip
        self.mark_price = Gauge(
            f"{_NS}_mark_price", "Last price of the bar forming now (live feed), quote currency; the equity gauge follows it between closes",
            ["instrument"], registry=r,
        )  # fmt: skip
        self.feed_reconnects = Counter(f"{_NS}_feed_reconnects_total", "Times the live feed's stream dropped and was reconnected",
                                       registry=r)  # fmt: skip
        self._initialize_labels()

    def _initialize_labels(self) -> None:
        """Export every known label value at 0 from the start, so a query over a series that has
        not moved yet returns 0 instead of nothing (Prometheus instrumentation practice: "avoid
        missing metrics", https://prometheus.io/docs/practices/instrumentation/#avoid-missing-metrics)."""
        for reason in RejectReason:
            self.rejected.labels(reason.value)
        for outcome in [*(s.name for s in Status), "EXPIRED_UNCONFIRMED"]:
            self.outcomes.labels(outcome)
        for exit_reason in DecisionReason:
            self.exits.labels(exit_reason.name)
        for skip in SkipReason:
            self.skips.labels(skip.value)
        for kind in BreakerKind:
            self.trips.labels(kind.value)
            self.tripped.labels(kind.value)
        for outcome in FEED_OUTCOMES:
            self.feed_bars.labels(outcome)
        for intent in ("OPEN", "CLOSE", "REDUCE"):
            self.reconciled.labels(intent)
