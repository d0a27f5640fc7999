"""The verdict of ``tandem chaos``: checks over the two run directories' journals and logs.

:func:`evaluate` reads the reference and chaos run directories (SQLite journals, executor log,
reports, trade logs) and returns figures plus a list of violations: more than one execution of a
``decision_id``, an executor decision the brain did not send, a conflict, brain positions or cash
different from the executor's ledger, an unresolved decision, or a trade log different from the
reference without expired decisions to explain it. Under a flood (``require_identical``) a
trade log different from the reference is a violation whatever explains it, open positions must
equal the reference's, and each process's log must stay bounded: at most
:data:`FLOOD_LOG_LINES_PER_S` lines a second about rejected, duplicate or replayed traffic (they are
rate-limited, one per kind per second).
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from protocol import Status

__all__ = ["CASH_REL_TOL", "FLOOD_LOG_LINES_PER_S", "evaluate", "journal_rows", "log_figures"]

CASH_REL_TOL = 1e-9
"""Brain cash and executor cash may differ by this relative amount (float summation order)."""
FLOOD_LOG_LINES_PER_S = 12
"""Rate-limited log lines a process may write per second about hostile traffic: one per rejection
reason that occurs (7), per duplicate kind (2) and for replays served (1), with room for a
restart's fresh limiter."""
_FLOOD_EVENTS = frozenset({"datagram_rejected", "decision_duplicates", "replay_served"})


def journal_rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def _log_events(path: Path) -> tuple[Counter[int], Counter[int], int, int]:
    """``(executed, recovered-and-executed, conflicts, unparsable)`` from an executor log (JSON lines)."""
    executed: Counter[int] = Counter()
    recovered: Counter[int] = Counter()
    conflicts = unparsable = 0
    with path.open("rb") as fh:
        for raw in fh:
            try:
                line = json.loads(raw)
            except ValueError:
                unparsable += 1  # a line cut by SIGKILL
                continue
            event = line.get("event")
            if event == "decision_executed":
                executed[line["decision_id"]] += 1
            elif event == "decision_recovered" and line.get("executed"):
                recovered[line["decision_id"]] += 1
            elif event == "decision_conflict":
                conflicts += 1
    return executed, recovered, conflicts, unparsable


def log_figures(path: Path) -> dict[str, int]:
    """A log's size (bytes), its lines, and its lines about hostile traffic (rejected datagrams,
    duplicates, replays served)."""
    lines = flood = 0
    with path.open("rb") as fh:
        for raw in fh:
            lines += 1
            if b'"event": "' in raw or b'"event":"' in raw:
                try:
                    if json.loads(raw).get("event") in _FLOOD_EVENTS:
                        flood += 1
                except ValueError:
                    pass
    return {"bytes": path.stat().st_size, "lines": lines, "flood_lines": flood}


def evaluate(reference_dir: Path, chaos_dir: Path, *, require_identical: bool = False,
             run_seconds: float = 0.0) -> dict[str, Any]:  # fmt: skip
    """The checks of the verdict, from the two run directories' files.

    Args:
        require_identical: the flood checks (module docstring) apply.
        run_seconds: how long the chaos run took (bounds the flood's log lines).

    Returns:
        figures and ``violations`` (a list of sentences; empty = every check passed).
    """
    v: list[str] = []
    bj = chaos_dir / "brain.sqlite"
    decisions = {r[0] for r in journal_rows(bj, "SELECT decision_id FROM decisions")}
    statuses = dict(journal_rows(bj, "SELECT decision_id, status FROM confirmations"))
    resolved = {r[0] for r in journal_rows(bj, "SELECT decision_id FROM resolutions")}
    expired = sorted({d for d, s in statuses.items() if s == Status.EXPIRED} | resolved)
    unresolved = sorted(decisions - statuses.keys() - resolved)
    if unresolved:
        v.append(f"{len(unresolved)} decisions have no confirmation and no resolution: {unresolved[:10]}")
    # one outcome per decision: its confirmation's status, else its local resolution (a decision
    # resolved as expired may still be answered EXPIRED later, when a late copy reaches the executor)
    outcomes = Counter(Status(s).name for s in statuses.values()) + Counter(
        {"EXPIRED_UNCONFIRMED": len(resolved - statuses.keys())}
    )

    ej = chaos_dir / "executor.sqlite"
    fills = dict(journal_rows(ej, "SELECT decision_id, COUNT(*) FROM fills GROUP BY decision_id"))
    max_fills = max(fills.values(), default=0)
    if max_fills > 1:
        v.append(f"a decision_id executed {max_fills} times (journal fills): "
                 f"{sorted(d for d, n in fills.items() if n > 1)[:10]}")  # fmt: skip
    cols = ("decision_id, side, intent, reason, quantity, reference_price, created_at_ns, expires_at_ns,"
            " market_ts_ns")
    sent = {r[0]: r[1:] for r in journal_rows(bj, f"SELECT {cols} FROM decisions")}
    received = {r[0]: r[1:] for r in journal_rows(ej, f"SELECT {cols} FROM decisions")}
    foreign = sorted(d for d in received if d not in sent)
    altered = sorted(d for d in received if d in sent and received[d] != sent[d])
    if foreign:
        v.append(f"the executor journaled {len(foreign)} decisions the brain never sent: {foreign[:10]}")
    if altered:
        v.append(f"the executor journaled {len(altered)} decisions unlike the brain's: {altered[:10]}")
    conf_cols = "decision_id, seq, status, executed_qty, avg_price, fee"
    applied = {r[0]: r[1:] for r in journal_rows(bj, f"SELECT {conf_cols} FROM confirmations")}
    issued = {r[0]: r[1:] for r in journal_rows(ej, f"SELECT {conf_cols} FROM confirmations")}
    mismatched = sorted(d for d in applied if issued.get(d) != applied[d])
    if mismatched:
        v.append(f"{len(mismatched)} confirmations the brain applied differ from the executor's: {mismatched[:10]}")

    executed, recovered, conflicts, unparsable = _log_events(chaos_dir / "executor.log")
    per_id = executed + recovered
    max_log = max(per_id.values(), default=0)
    if max_log > 1:
        v.append(f"a decision_id was executed {max_log} times (executor.log): "
                 f"{sorted(d for d, n in per_id.items() if n > 1)[:10]}")  # fmt: skip
    if conflicts:
        v.append(f"the executor logged {conflicts} decision conflicts (an id repeated with other content)")

    report = json.loads((chaos_dir / "report.json").read_text())
    ledger = json.loads((chaos_dir / "executor-ledger.json").read_text())
    brain_pos = {k: float(q) for k, q in report["open_positions"].items()}
    exe_pos = {k: float(p["quantity"]) for k, p in ledger["positions"].items()}
    pos_equal = brain_pos.keys() == exe_pos.keys() and all(
        abs(brain_pos[k] - exe_pos[k]) <= CASH_REL_TOL * max(1.0, abs(exe_pos[k])) for k in exe_pos
    )
    cash_diff = abs(report["cash"] - ledger["cash"]) / max(1.0, abs(ledger["cash"]))
    if not pos_equal:
        v.append(f"positions differ: brain {brain_pos}, executor {exe_pos}")
    if cash_diff > CASH_REL_TOL:
        v.append(f"cash differs: brain {report['cash']!r}, executor {ledger['cash']!r} (rel. {cash_diff:.3g})")
    if report.get("anomalies"):
        v.append(f"the brain's tracker recorded {report['anomalies']} anomalies")

    ref_trades = (reference_dir / "trades.csv").read_bytes()
    trades = (chaos_dir / "trades.csv").read_bytes()
    identical = ref_trades == trades
    if not identical and require_identical:
        v.append(f"trades.csv differs from the reference under the flood ({len(expired)} decisions expired)")
    elif not identical and not expired:
        v.append("trades.csv differs from the reference although no decision expired")
    ref_report = json.loads((reference_dir / "report.json").read_text())
    logs = {name: log_figures(chaos_dir / f"{name}.log") for name in ("executor", "brain")}
    if require_identical:
        ref_pos = {k: float(q) for k, q in ref_report["open_positions"].items()}
        if brain_pos != ref_pos:
            v.append(f"open positions differ from the reference's: {brain_pos} vs {ref_pos}")
        bound = FLOOD_LOG_LINES_PER_S * max(run_seconds, 1.0) + 50
        for name, figures in logs.items():
            if figures["flood_lines"] > bound:
                v.append(f"{name}.log has {figures['flood_lines']} lines about hostile traffic in {run_seconds:.1f} s"
                         f" (bound {bound:.0f}: they must be rate-limited)")  # fmt: skip
    ref_decisions = len(journal_rows(reference_dir / "brain.sqlite", "SELECT decision_id FROM decisions"))
    return {
        "decisions_sent": len(decisions),
        "reference_decisions": ref_decisions,
        "outcomes": dict(sorted(outcomes.items())),
        "expired": len(expired),
        "unresolved": len(unresolved),
        "max_executions_journal": max_fills,
        "executed_ids_journal": len(fills),
        "max_executions_log": max_log,
        "executed_ids_log": len(per_id),
        "recovered_in_log": sum(recovered.values()),
        "unparsable_log_lines": unparsable,
        "decision_conflicts_log": conflicts,
        "foreign_decisions": len(foreign),
        "altered_decisions": len(altered),
        "confirmations_compared": len(applied),
        "confirmations_mismatched": len(mismatched),
        "positions_equal": pos_equal,
        "brain_positions": brain_pos,
        "executor_positions": exe_pos,
        "brain_cash": report["cash"],
        "executor_cash": ledger["cash"],
        "cash_rel_diff": cash_diff,
        "trades_identical": identical,
        "trades": sum(1 for _ in csv.reader(trades.decode().splitlines())) - 1,
        "reference_trades": sum(1 for _ in csv.reader(ref_trades.decode().splitlines())) - 1,
        "brain_report": report,
        "logs": logs,
        "violations": v,
    }


# -- report -------------------------------------------------------------------------------------

