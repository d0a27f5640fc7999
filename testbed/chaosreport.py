"""The chaos verdict's figures and their text: what ``tandem chaos`` prints and writes to
``chaos-report.json``.

:func:`figures` gathers everything as JSON-friendly values: the proxy's counters per direction
(``brain->executor``, ``executor->brain``), the processes' counters — the scraped incarnations'
plus, for the brain, its last ``report.json`` — the kill plan and what of it ran, the flood's own
figures, and the verdict's checks (:func:`testbed.verdict.evaluate`). :func:`format_figures`
renders them as aligned text, ending with the verdict line (``PASS: every check passed`` or
``FAIL: n violations`` and each violation).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .chaosrun import ChaosOutcome
from .chaossettings import ChaosSettings

__all__ = ["figures", "format_figures"]


_DIRS = {"decisions": "brain->executor", "confirmations": "executor->brain"}


def _kv(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in d.items()) or "none"


def figures(settings: ChaosSettings, ref: dict[str, Any], out: ChaosOutcome,
            ev: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Everything the verdict prints, as JSON-friendly values (also written to chaos-report.json).

    Process counters are the scraped incarnations' plus, for the brain, its last report.json.
    """
    st, e, last = out.proxy.stats, out.executor.scraped, ev["brain_report"]
    b = {n: Counter(c) for n, c in out.brain.scraped.items()}
    b["tandem_brain_decision_retransmits_total"][""] += last["retransmits"]
    b["tandem_brain_replay_requests_total"][""] += last["replay_requests"]
    b["tandem_brain_datagrams_rejected_total"].update(last["datagrams_rejected"])

    def one(c: dict[str, Counter[str]], name: str) -> int:
        return int(sum(c[name].values()))

    def per_dir(fn: Any) -> dict[str, Any]:
        return {_DIRS[d]: fn(d) for d in _DIRS}

    faults = ("dropped", "duplicated", "reordered", "delayed", "corrupted")
    evaluated = {k: v for k, v in ev.items() if k not in ("brain_report", "reference_decisions", "reference_trades")}
    latency = last.get("latency_us", {})
    return {
        "seed": settings.seed,
        "rates": repr(settings.rates()),
        "reference": {"decisions": ev["reference_decisions"], "trades": ev["reference_trades"],
                      "wall_time_s": ref["wall_time_s"], "run_dir": ref["run_dir"]},  # fmt: skip
        "faults": per_dir(lambda d: {a: st.total(a, d) for a in faults}),
        "traffic": per_dir(lambda d: st.by_kind("received", d)),
        "retransmits_proxy": st.total("received", "decisions", "decision_retransmit"),
        "retransmits_brain": one(b, "tandem_brain_decision_retransmits_total"),
        "replay_requests_proxy": st.total("received", "decisions", "replay_request"),
        "replay_requests_brain": one(b, "tandem_brain_replay_requests_total"),
        "replays_served": one(e, "tandem_executor_replay_requests_served_total"),
        "confirmations_replayed": one(e, "tandem_executor_confirmations_replayed_total"),
        "confirmations_resent_proxy": st.total("received", "confirmations", "confirmation_resent"),
        "forged": per_dir(lambda d: {"random bytes": st.total("forged_random", d),
                                     "other secret": st.total("forged_other_secret", d)}),  # fmt: skip
        "replayed": per_dir(lambda d: st.total("replayed", d)),
        "reflected": per_dir(lambda d: st.total("reflected", d)),
        "rejected_executor": {k: int(n) for k, n in sorted(e["tandem_executor_datagrams_rejected_total"].items())},
        "rejected_brain": {k: int(n) for k, n in sorted(b["tandem_brain_datagrams_rejected_total"].items())},
        "executor_counted": {"executions": one(e, "tandem_executor_executions_total"),
                             "duplicate decisions answered": one(e, "tandem_executor_duplicate_decisions_total"),
                             "conflicts": one(e, "tandem_executor_decision_conflicts_total")},  # fmt: skip
        "kills": {"executor": out.executor.kills, "brain": out.brain.kills},
        "restarts": {"executor": out.executor.starts - 1, "brain": out.brain.starts - 1},
        "kill_plan": [k.describe() for k in out.plan],
        "kills_skipped": [k.describe() for k in out.plan if k not in out.done],
        "chaos_wall_time_s": out.seconds,
        "flood": out.flood,
        "suppressed_duplicate_answers": one(e, "tandem_executor_duplicate_answers_suppressed_total"),
        "replays_ignored": one(e, "tandem_executor_replay_requests_ignored_total"),
        "latency_us_last_brain": {k: latency.get(k) for k in ("p50", "p99", "max", "n")},
        **evaluated,
    }


def format_figures(f: dict[str, Any]) -> str:
    """The verdict as aligned text for the terminal."""

    def row(label: str, text: str) -> str:
        return f"  {label:<22} {text}"

    def two(label: str, per_dir: dict[str, Any]) -> list[str]:
        return [row(label if i == 0 else "", f"{d}: {_kv(x)}") for i, (d, x) in enumerate(per_dir.items())]

    ref, kills, restarts = f["reference"], f["kills"], f["restarts"]
    forged = {d: f"{sum(x.values())} ({_kv(x)})" for d, x in f["forged"].items()}
    if f["trades_identical"]:
        trades = f"identical to the reference ({f['trades']} trades)"
    else:
        trades = f"DIFFERS from the reference ({f['trades']} vs {ref['trades']} trades, {f['expired']} expired decisions)"
    skipped = f"; skipped (brain done) {' '.join(f['kills_skipped'])}" if f["kills_skipped"] else ""
    lines = [
        f"tandem chaos report  (seed {f['seed']})",
        row("reference", f"{ref['decisions']} decisions, {ref['trades']} trades  ({ref['run_dir']})"),
        row("decisions sent", f"{f['decisions_sent']}  (brain journal; {_kv(f['outcomes'])})"),
        *two("faults injected", f["faults"]),
        *two("traffic (proxy)", f["traffic"]),
        row("retransmits", f"proxy saw {f['retransmits_proxy']} decision retransmits; brain counted "
                           f"{f['retransmits_brain']}"),
        row("replays", f"brain requested {f['replay_requests_brain']} (proxy saw {f['replay_requests_proxy']}), "
                       f"executor served {f['replays_served']}, confirmations replayed {f['confirmations_replayed']}; "
                       f"proxy saw {f['confirmations_resent_proxy']} confirmations resent"),
        row("forged injected", f"to executor {forged['brain->executor']}; to brain {forged['executor->brain']}"),
        row("replayed injected", f"to executor {f['replayed']['brain->executor']}, to brain "
                                 f"{f['replayed']['executor->brain']}; reflected to brain "
                                 f"{f['reflected']['brain->executor']}, to executor {f['reflected']['executor->brain']}"),
        row("rejected by executor", _kv(f["rejected_executor"])),
        row("rejected by brain", _kv(f["rejected_brain"])),
        row("executor counted", _kv(f["executor_counted"])),
        row("kills", f"executor {kills['executor']} (restarts {restarts['executor']}), brain {kills['brain']} "
                     f"(restarts {restarts['brain']});  plan (who@k-th decision+delay/downtime) "
                     f"{' '.join(f['kill_plan']) or 'none'}{skipped}"),
        row("max executions per id", f"{f['max_executions_journal']} (journal fills, {f['executed_ids_journal']} ids); "
                                     f"{f['max_executions_log']} (executor.log, {f['executed_ids_log']} ids, "
                                     f"{f['recovered_in_log']} recovered)"),
        row("foreign decisions", f"{f['foreign_decisions']} unknown, {f['altered_decisions']} altered at the executor; "
                                 f"conflicts logged {f['decision_conflicts_log']}"),
        row("confirmations", f"{f['confirmations_compared']} applied by the brain, "
                             f"{f['confirmations_mismatched']} differ from the executor's journal"),
        row("ledgers", f"positions {'equal' if f['positions_equal'] else 'DIFFER'} (brain {_kv(f['brain_positions'])}; "
                       f"executor {_kv(f['executor_positions'])}); cash {f['brain_cash']:,.6f} vs "
                       f"{f['executor_cash']:,.6f} (relative difference {f['cash_rel_diff']:.3g})"),
        row("unresolved decisions", str(f["unresolved"])),
        row("expired decisions", str(f["expired"])),
        *_flood_rows(f, row),
        row("trades.csv", trades),
        row("wall time", f"{f['wall_time_s']:.1f} s  (reference {ref['wall_time_s']:.1f} s, chaos run "
                         f"{f['chaos_wall_time_s']:.1f} s)"),
    ]
    if f["violations"]:
        lines.append(f"verdict                  FAIL: {len(f['violations'])} violations")
        lines += [f"  violation: {x}" for x in f["violations"]]
    else:
        lines.append("verdict                  PASS: every check passed")
    return "\n".join(lines)


def _flood_rows(f: dict[str, Any], row: Any) -> list[str]:
    """The flood's lines of the verdict (none without a flood)."""
    flood = f.get("flood")
    if not flood:
        return []
    lat, logs = f["latency_us_last_brain"], f["logs"]
    return [
        row("flood (keyless)", f"{flood['seconds']:.1f} s: {_kv(flood['rates_per_s'])} per second; "
                               f"sent {_kv(flood['sent'])}; send errors {flood['send_errors']}"),
        row("flood answered", f"duplicate answers suppressed {f['suppressed_duplicate_answers']}, "
                              f"replay requests ignored {f['replays_ignored']}"),
        row("round trip (us)", f"p50 {lat['p50'] or 0:.0f}  p99 {lat['p99'] or 0:.0f}  max {lat['max'] or 0:.0f}  "
                               f"(n={lat['n']}, the brain's last incarnation)"),
        row("logs", "; ".join(f"{n}.log {x['bytes'] / 1e6:.2f} MB, {x['lines']} lines, {x['flood_lines']} about "
                              f"hostile traffic" for n, x in logs.items())),
    ]
