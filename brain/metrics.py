"""The brain's Prometheus metrics, in a registry of its own (one per brain instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["LATENCY_BUCKETS", "BrainMetrics"]

LATENCY_BUCKETS = (
    50e-6, 100e-6, 200e-6, 300e-6, 500e-6, 750e-6, 1e-3, 2e-3, 5e-3, 10e-3, 25e-3, 50e-3, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
)  # fmt: skip
"""Seconds; loopback round trips sit around 100 µs–1 ms, retransmitted ones far above."""


class BrainMetrics:
    """Counters, gauges and the decision→confirmation latency histogram."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.positions_opened = Counter("brain_positions_opened_total", "Positions opened by a confirmation", registry=r)
        self.positions_closed = Counter("brain_positions_closed_total", "Positions closed by a confirmation", registry=r)
        self.confirmations = Counter(
            "brain_position_confirmations_received_total", "Valid confirmations received", ["status"], registry=r
        )
        self.duplicates = Counter("brain_duplicate_confirmations_total", "Confirmations already applied", registry=r)
        self.unknown = Counter(
            "brain_unsolicited_confirmations_total", "Confirmations for decisions not awaiting one", registry=r
        )
        self.latency = Histogram(
            "brain_decision_latency_seconds", "Decision sent to its confirmation received", buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.handler_errors = Counter(
            "brain_handler_errors_total", "Valid datagrams whose handling raised", registry=r
        )
        self.rejected = Counter("brain_datagrams_rejected_total", "Datagrams dropped, by reason", ["reason"], registry=r)
        self.decisions = Counter("brain_decisions_sent_total", "Decisions sent", ["side", "reason"], registry=r)
        self.retransmits = Counter("brain_decision_retransmits_total", "Decisions resent unconfirmed", registry=r)
        self.replay_requests = Counter("brain_replay_requests_total", "Confirmation replays requested", registry=r)
        self.skips = Counter("brain_signals_skipped_total", "Strategy signals not acted on", ["reason"], registry=r)
        self.trips = Counter("brain_breaker_trips_total", "Circuit breaker trips", ["kind"], registry=r)
        self.bars = Counter("brain_bars_replayed_total", "Bars processed", registry=r)
        self.equity = Gauge("brain_equity", "Cash plus positions at mark, quote currency", registry=r)
        self.cash = Gauge("brain_cash", "Cash, quote currency", registry=r)
