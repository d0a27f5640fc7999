"""What the brain counts and logs for each live confirmation it applies.

A confirmation applied live (journaled now, not re-applied from the journal by a restarted
brain's re-run, which only rebuilds state) is counted in the brain's metrics and logged:

* its outcome (``tandem_brain_decision_outcomes_total{outcome}``) unless it was not counted — a
  late, non-executed answer to a decision already counted ``EXPIRED_UNCONFIRMED`` (:mod:`brain.stats`);
* positions opened / closed (``tandem_brain_positions_opened_total``, ``..._closed_total``), and
  closed trades by exit reason (``tandem_brain_exits_total{reason}``);
* ``expired_decision_executed`` (error; ``tandem_brain_expired_decisions_executed_total``): a
  decision resolved as never executed was confirmed as executed — applied all the same, the venue
  is the truth; ``confirmation_after_resolution`` (info; ``tandem_brain_late_confirmations_total``):
  a non-executed answer after the resolution; ``confirmation_unsolicited`` (warning;
  ``tandem_brain_unsolicited_confirmations_total``): an answer to no pending decision;
* one ``confirmation_applied`` line with the fill and what the tracker did with it.

Metrics are :class:`~brain.metrics.BrainMetrics`'; log lines carry the decision id and seq
bound by the caller.
"""

from __future__ import annotations

from typing import Any

from protocol import ExecutionConfirmation

from .metrics import BrainMetrics
from .tracker import Applied, ApplyResult

__all__ = ["log_live_confirmation"]


def log_live_confirmation(metrics: BrainMetrics, log: Any, conf: ExecutionConfirmation, result: ApplyResult, *,
                          awaited: bool, resolved: bool, counted: bool) -> None:  # fmt: skip
    """Count and log ``conf``, just applied with ``result`` (module docstring).

    Args:
        awaited: the decision was pending when the confirmation arrived.
        resolved: the decision had been resolved ``EXPIRED_UNCONFIRMED``.
        counted: its outcome was counted (:meth:`brain.stats.OutcomeTally.confirmed`).
    """
    if conf.reconciled:  # the executor's correction to match the venue (protocol v4): no decision of ours
        metrics.reconciled.labels(conf.intent.name).inc()
        log.warning("reconciled_confirmation_applied", intent=conf.intent.name, side=conf.side.name,
                    executed_qty=conf.executed_qty, avg_price=conf.avg_price, applied=result.applied.value,
                    detail="the executor corrected its ledger to the venue")  # fmt: skip
        if result.applied is Applied.OPENED:
            metrics.positions_opened.inc()
        elif result.applied is Applied.CLOSED:
            metrics.positions_closed.inc()
        if result.trade is not None:
            metrics.exits.labels(result.trade.exit_reason.name if result.trade.exit_reason else "UNKNOWN").inc()
        return
    if resolved and conf.status.executed:
        metrics.resolution_contradicted.inc()
        log.error("expired_decision_executed", status=conf.status.name,
                  detail="resolved as never executed, then confirmed as executed: applied")  # fmt: skip
    elif resolved:
        metrics.late_confirmations.inc()
        log.info("confirmation_after_resolution", status=conf.status.name,
                 detail="already resolved EXPIRED_UNCONFIRMED; not counted again")  # fmt: skip
    elif not awaited:
        metrics.unknown.inc()
        log.warning("confirmation_unsolicited", status=conf.status.name)
    if counted:
        metrics.outcomes.labels(conf.status.name).inc()
    if result.applied is Applied.OPENED:
        metrics.positions_opened.inc()
    elif result.applied is Applied.CLOSED:
        metrics.positions_closed.inc()
    if result.trade is not None:
        reason = result.trade.exit_reason
        metrics.exits.labels(reason.name if reason else "UNKNOWN").inc()
    log.info("confirmation_applied", status=conf.status.name, venue_ref=conf.venue_ref.decode("ascii", "replace"),
             reject_code=conf.reject_code.name, executed_qty=conf.executed_qty, avg_price=conf.avg_price,
             fee=conf.fee, applied=result.applied.value,
             net_pnl=None if result.trade is None else result.trade.net_pnl,
             exit_slippage_bps=None if result.trade is None else result.trade.exit_slippage_bps,
             slippage_over_limit=conf.slippage_over_limit)  # fmt: skip
