"""The executor's Prometheus metrics, in a registry of its own (one per executor instance).

Names follow the Prometheus naming guide (https://prometheus.io/docs/practices/naming/): the
``tandem_executor_`` prefix, ``_total`` on counters, base units. Money is in the quote currency,
quantities in base units. The README's metrics catalogue lists every one.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, ProcessCollector

from protocol import RejectReason, Status

__all__ = ["EXIT_SLIPPAGE_BUCKETS", "GUARDS", "LOOKUP_REASONS", "REPAIR_KINDS", "VENUE_CALLS", "VENUE_ERROR_KINDS", "ExecutorMetrics"]

VENUE_CALLS = ("create_order", "fetch_order", "cancel_order", "cancel_replace", "holdings", "open_orders", "mark_price")
"""``call`` label values: the venue calls :meth:`executor.orders.OrderOps.call` makes."""
VENUE_ERROR_KINDS = ("temporary", "ambiguous", "permanent")
"""``kind`` label values: :mod:`executor.venue.errors` classes."""
LOOKUP_REASONS = ("ambiguous", "cancel", "recovery", "refresh", "replace")
"""``reason`` label values of order lookups by clientOrderId (executor.orders, executor.gateway)."""

REPAIR_KINDS = ("stop_missing", "stop_short", "stop_extra")
"""``kind`` label values of the reconcile repair counters (:class:`executor.belief.MismatchKind`)."""
GUARDS = ("kill_switch", "entries_paused", "max_notional", "cooldown", "open_orders")
"""``guard`` label values of entries refused by the belief guard (:class:`executor.controller.EntryGuard`)."""
SOLANA_SEND_KINDS = ("first", "resend")
"""``kind`` label values of Solana sends: the first (with preflight) and re-sends of the same bytes."""
SOLANA_VERDICTS = ("landed", "failed", "expired", "refused", "pending")
"""``verdict`` label values: what a Solana transaction came to (:mod:`executor.venue.solana.sender`)."""
SOLANA_CALLS = ("getEpochInfo", "getSignatureStatuses", "getTransaction", "getTokenAccountBalance", "getBalance",
                "quote", "swap", "price")  # fmt: skip
"""``call`` label values of Solana RPC and Jupiter retries."""

_PROCESSING_BUCKETS = (10e-6, 25e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 50e-3, 0.25, 1.0)
EXIT_SLIPPAGE_BUCKETS = (-0.01, -0.0025, 0.0, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
"""Ratio against the exit's reference (1 bps = 0.0001; negative: better): the default
``max_slippage_bps`` is 50 (0.005); a gap through a stop on daily bars is hundreds to thousands of bps."""


class ExecutorMetrics:
    """Decisions received, confirmations sent by status, duplicates, conflicts and rejects."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        self.decisions = Counter("tandem_executor_decisions_received_total", "Valid decisions received", registry=r)
        self.confirmations = Counter(
            "tandem_executor_confirmations_sent_total", "Confirmations sent, by status (FILLED, PARTIALLY_FILLED, ACCEPTED, REJECTED, EXPIRED, FAILED)", ["status"], registry=r
        )
        self.executions = Counter("tandem_executor_executions_total", "Decisions that traded", registry=r)
        self.duplicates = Counter("tandem_executor_duplicate_decisions_total", "Decisions already seen: answered from the journal, or dropped while in flight", registry=r)
        self.conflicts = Counter(
            "tandem_executor_decision_conflicts_total", "Decision ids repeated with different content", registry=r
        )
        self.handler_errors = Counter(
            "tandem_executor_handler_errors_total", "Valid datagrams whose handling raised", registry=r
        )
        self.rejected = Counter("tandem_executor_datagrams_rejected_total", "Datagrams dropped, by reason (size, version, type, auth, field, stale, direction)", ["reason"], registry=r)
        self.processing = Histogram(
            "tandem_executor_decision_processing_seconds", "Decision received to confirmation sent, seconds", buckets=_PROCESSING_BUCKETS,
            registry=r,
        )
        self.busy_polls = Counter(
            "tandem_executor_busy_polls_total", "Busy-poll windows after an answer, by result (hit: a datagram came within busy_poll_us; miss: the window ran out)", ["result"], registry=r
        )
        self.replays = Counter("tandem_executor_replay_requests_served_total", "Replay requests answered", registry=r)
        self.replayed = Counter("tandem_executor_confirmations_replayed_total", "Confirmations resent by replay", registry=r)
        self.replays_ignored = Counter(
            "tandem_executor_replay_requests_ignored_total",
            "Replay requests not served: nothing after what the brain applied, or over the per-source or global limit", registry=r)
        self.duplicates_suppressed = Counter(
            "tandem_executor_duplicate_answers_suppressed_total",
            "Duplicate decisions not answered: the same decision id was answered under 50 ms before", registry=r)
        self.cash = Gauge("tandem_executor_ledger_cash", "Ledger cash, quote currency", registry=r)
        self.venue_errors = Counter(
            "tandem_executor_venue_errors_total", "Venue calls that failed, by call and kind (temporary, ambiguous, permanent)",
            ["call", "kind"], registry=r,
        )  # fmt: skip
        self.retries = Counter("tandem_executor_venue_retries_total", "Venue calls retried, by call (create_order, fetch_order, cancel_order, cancel_replace)", ["call"], registry=r)
        self.lookups = Counter(
            "tandem_executor_order_lookups_total", "Orders looked up by clientOrderId, by reason (ambiguous, cancel, recovery, refresh, replace)", ["reason"], registry=r
        )
        self.protective = Counter(
            "tandem_executor_protective_orders_total",
            "Exit-leg order calls, by owning module, order kind (stop_market, stop_loss_limit: the stop legs; limit: the take-profit) and action",
            ["module", "kind", "action"], registry=r,
        )  # fmt: skip
        self.ownership_conflicts = Counter(
            "tandem_executor_protective_ownership_conflicts_total",
            "Protective order calls refused because the module is not the exit order gateway",
            ["module", "kind"], registry=r,
        )  # fmt: skip
        self.unprotected = Gauge(
            "tandem_executor_unprotected_positions", "Positions without a protective order on the venue", registry=r
        )
        self.unresolved = Counter(
            "tandem_executor_unresolved_decisions_total", "Decision executions left in flight because the venue stayed ambiguous",
            registry=r,
        )  # fmt: skip
        self.inflight = Gauge("tandem_executor_inflight_decisions", "Decisions queued or executing", registry=r)
        self.stops_crossed = Counter(
            "tandem_executor_stop_moves_crossed_total",
            "Stop moves the market had already crossed (the venue refused the stop as immediately triggering): sold at market instead",
            registry=r,
        )  # fmt: skip
        self.exit_slippage = Histogram(
            "tandem_executor_exit_slippage_ratio",
            "Executed exits: how much worse than the decision's reference they filled, ratio (0.005 = 50 bps; negative: better)",
            buckets=EXIT_SLIPPAGE_BUCKETS, registry=r,
        )  # fmt: skip
        self.exits_over_slippage = Counter(
            "tandem_executor_exits_over_slippage_limit_total",
            "Exits executed worse than the decision's max_slippage_bps (exits are never refused for slippage)", registry=r,
        )  # fmt: skip
        self.position = Gauge(
            "tandem_executor_position_quantity", "Ledger position, base units (0 when flat)", ["instrument"], registry=r
        )
        self.open_positions = Gauge("tandem_executor_open_positions", "Positions in the ledger", registry=r)
        self.brain_up = Gauge("tandem_executor_brain_up", "1 if the brain was heard within silence_s (default 3 s), else 0", registry=r)
        self.brain_heard = Gauge(
            "tandem_executor_brain_last_heard_timestamp_seconds", "Unix time the brain was last heard", registry=r
        )
        # reconciliation and the belief controller (issue #14)
        self.reconcile_runs = Counter("tandem_executor_reconcile_runs_total", "Reconcile cycles run", registry=r)
        self.reconcile_failures = Counter(
            "tandem_executor_reconcile_failures_total",
            "Reconcile cycles whose evidence fetch failed or one of whose corrections the venue refused", registry=r,
        )  # fmt: skip
        self.reconcile_duration = Histogram(
            "tandem_executor_reconcile_duration_seconds", "One reconcile cycle, evidence fetch and corrections, seconds",
            buckets=(1e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0), registry=r,
        )  # fmt: skip
        self.reconcile_adoptions = Counter(
            "tandem_executor_reconcile_adoptions_total", "Positions found on the venue and adopted into the ledger (and protected)",
            registry=r,
        )  # fmt: skip
        self.reconcile_phantoms = Counter(
            "tandem_executor_reconcile_phantoms_cleared_total", "Ledger positions the venue no longer held, cleared after the grace period",
            registry=r,
        )  # fmt: skip
        self.reconcile_drift_fixes = Counter(
            "tandem_executor_reconcile_drift_fixes_total", "Ledger positions set to the venue's size", registry=r
        )
        self.reconcile_repairs = Counter(
            "tandem_executor_reconcile_repairs_total", "Protective stops repaired, by kind (stop_missing, stop_short, stop_extra)",
            ["kind"], registry=r,
        )  # fmt: skip
        self.reconcile_repairs_skipped = Counter(
            "tandem_executor_reconcile_repairs_skipped_total",
            "Stop repairs held back by the cooldown or the per-cycle bound, by kind", ["kind"], registry=r,
        )  # fmt: skip
        self.belief_debt_seconds = Gauge(
            "tandem_executor_belief_debt_seconds", "Age of the oldest unresolved mismatch between the ledger and the venue, seconds",
            registry=r,
        )  # fmt: skip
        self.belief_debt_instruments = Gauge(
            "tandem_executor_belief_debt_instruments", "Instruments with an unresolved mismatch", registry=r
        )
        self.mismatch_streak = Gauge(
            "tandem_executor_mismatch_streak", "Consecutive reconcile cycles with a mismatch or a failed fetch", registry=r
        )
        self.belief_debt_score = Gauge(
            "tandem_executor_belief_debt_score",
            "Belief debt score: debt_seconds / debt_ref_s + instruments x instrument_weight + streak x streak_weight", registry=r,
        )  # fmt: skip
        self.belief_mode = Enum(
            "tandem_executor_belief_mode", "The belief controller's risk posture (1 for the current state)",
            states=["GREEN", "YELLOW", "ORANGE", "RED"], registry=r,
        )  # fmt: skip
        self.kill_switch = Gauge(
            "tandem_executor_kill_switch", "1 while the kill switch is on (no entries until the operator clears it), else 0",
            registry=r,
        )  # fmt: skip
        self.kill_switch_clears = Counter(
            "tandem_executor_kill_switch_clears_total", "Operator requests to clear the kill switch taken (tandem killswitch clear)",
            registry=r,
        )  # fmt: skip
        self.guard_refusals = Counter(
            "tandem_executor_entries_refused_by_guard_total",
            "Entries refused by the belief guard (REJECTED / BELIEF_GUARD), by guard (kill_switch, entries_paused, max_notional, cooldown, open_orders)",
            ["guard"], registry=r,
        )  # fmt: skip
        # the venue's capabilities and the Solana venue (issue #15)
        self.protective_supported = Gauge(
            "tandem_executor_protective_stops_supported",
            "1 when the venue holds protective stop orders; 0 (an AMM, Solana): positions are protected by the brain's exit plan alone",
            registry=r,
        )  # fmt: skip
        self.solana_sends = Counter(
            "tandem_executor_solana_sends_total",
            "Solana transactions sent, by kind: first (with preflight) or resend (the same signed bytes)", ["kind"],
            registry=r,
        )  # fmt: skip
        self.solana_verdicts = Counter(
            "tandem_executor_solana_verdicts_total",
            "What Solana transactions came to: landed, failed (landed with an error), expired, refused (preflight), pending (no conclusion yet)",
            ["verdict"], registry=r,
        )  # fmt: skip
        self.solana_rpc_retries = Counter(
            "tandem_executor_solana_rpc_retries_total", "Retries of Solana RPC and Jupiter calls (429, 5xx, timeouts), by call",
            ["call"], registry=r,
        )  # fmt: skip
        self._initialize_labels()

    def _initialize_labels(self) -> None:
        """Export every known label value at 0 from the start ("avoid missing metrics",
        https://prometheus.io/docs/practices/instrumentation/#avoid-missing-metrics)."""
        for reason in RejectReason:
            self.rejected.labels(reason.value)
        self.confirmed = {status: self.confirmations.labels(status.name) for status in Status}
        """``confirmations`` by status, the children resolved once (the per-decision path)."""
        for call in VENUE_CALLS:
            self.retries.labels(call)
            for kind in VENUE_ERROR_KINDS:
                self.venue_errors.labels(call, kind)
        for reason in LOOKUP_REASONS:
            self.lookups.labels(reason)
        for kind in REPAIR_KINDS:
            self.reconcile_repairs.labels(kind)
            self.reconcile_repairs_skipped.labels(kind)
        for guard in GUARDS:
            self.guard_refusals.labels(guard)
        for kind in SOLANA_SEND_KINDS:
            self.solana_sends.labels(kind)
        for verdict in SOLANA_VERDICTS:
            self.solana_verdicts.labels(verdict)
        for call in SOLANA_CALLS:
            self.solana_rpc_retries.labels(call)
