"""``tandem chaos``: exactly-once effect and identical positions under a hostile bus and kills.

Steps (issue #3 §3):

1. **Reference**: a fault-free ``tandem paper`` run (:func:`tandem.paper.run_paper`) with the same
   data and settings into ``run_dir/reference`` → its ``trades.csv`` and its decision count.
2. **Chaos run** in ``run_dir/chaos`` with a fresh bus secret: a :class:`~testbed.proxy.ChaosProxy`
   sits between the two processes (loss, duplication, reordering, delay, corruption; forged,
   replayed and reflected datagrams); ``python -m executor`` and ``python -m brain`` each bind a
   fixed free loopback port and send through the proxy. A seeded plan (:func:`plan_kills`)
   SIGKILLs each process a number of times, each "after the k-th new decision passes the proxy"
   plus 0–300 ms, and restarts it with identical arguments after 0.1–1.0 s. Just before every
   SIGKILL, and before the executor is stopped at the end, that process's ``/metrics`` is scraped
   and its counters accumulated; the brain's last incarnation exits 0 by itself when the replay is
   done and reports its own counters in ``report.json``. Then the executor gets SIGTERM (it writes
   ``executor-ledger.json``). Logs are appended across incarnations, each start marked by a
   ``chaos_start`` line.
3. **Verdict** (:func:`evaluate`): at most one execution per ``decision_id`` (journal fills, and
   independently the ``decision_executed``/``decision_recovered`` lines of ``executor.log``), no
   decision at the executor that the brain did not send, no conflict, brain positions and cash
   equal to the executor's ledger, no unresolved decision, and ``trades.csv`` byte-identical to
   the reference unless decisions were reported expired (then the difference is reported, not a
   violation). Exit 0 only if every check passes, 1 naming each violation, 2 on bad settings.

**Flood** (any ``flood_*`` rate above 0, issue #11): a keyless attacker process,
``python -m testbed.flood`` (:mod:`testbed.flood`), starts once both processes are ready and sends
straight to their listening ports — garbage, forged prefixes, and authentic datagrams the proxy
copies to its tap (standing in for a packet capture): one decision re-sent, two replay requests
alternated, a confirmation re-sent. It never holds the key. It is stopped before the verdict and
reports what it sent. Under a flood the verdict is stricter: ``trades.csv`` must equal the
reference whatever expired, open positions must equal the reference's, and each log's lines about
hostile traffic must stay under :data:`~testbed.verdict.FLOOD_LOG_LINES_PER_S` a second.

``decision_addr``, ``confirm_addr`` and the metrics ports of the paper settings are not used:
chaos picks free loopback ports and serves metrics on ephemeral ports.

Jobs: this module is the command (reference run, chaos run, verdict, exit code); the settings are
:mod:`testbed.chaossettings`, the chaos run and kill plan :mod:`testbed.chaosrun`, a supervised
process :mod:`testbed.chaoschild`, the printed figures :mod:`testbed.chaosreport`, the checks
:mod:`testbed.verdict`, the proxy :mod:`testbed.proxy`. Their public names are re-exported here.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from foundation.atomicfile import write_atomic
from foundation.barcsv import bundled_path, load_bars
from foundation.errors import ConfigError
from foundation.process import run_main
from foundation.runtime import run
from foundation.settings import load_settings
from tandem.paper import INPUT_ERRORS, run_paper

from .chaoschild import ChaosFailure
from .chaosreport import figures, format_figures
from .chaosrun import ChaosRun, Kill, free_udp_port, plan_kills
from .chaossettings import ChaosSettings
from .proxy import LOOPBACK
from .verdict import evaluate, journal_rows

__all__ = [
    "ChaosFailure", "ChaosSettings", "Kill", "evaluate", "format_figures", "main", "plan_kills", "run_chaos",
]


def run_chaos(settings: ChaosSettings) -> dict[str, Any]:
    """Reference run, chaos run, verdict; returns the figures (also in ``run_dir/chaos-report.json``).

    Raises:
        MarketDataError, StrategyError, JournalError: bad input (checked before anything starts).
        ConfigError: the run directory is not empty, or too few decisions to place the kills.
        ChaosFailure, RuntimeError: a process failed or the run timed out (log tail in the message).
    """
    started = time.perf_counter()
    load_bars(settings.data or bundled_path(), limit=settings.bars)  # fail fast
    run_dir = settings.run_dir or Path("runs") / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ-chaos")
    ref_dir, chaos_dir = run_dir / "reference", run_dir / "chaos"
    for d in (ref_dir, chaos_dir):
        if d.exists() and any(d.iterdir()):
            raise ConfigError(f"run_dir: {d} is not empty (a brain journal there would be resumed)")
    ref = run_paper(settings.model_copy(update={
        "run_dir": ref_dir, "metrics_port": -1, "executor_metrics_port": -1,
        "decision_addr": f"{LOOPBACK}:{free_udp_port()}", "confirm_addr": f"{LOOPBACK}:{free_udp_port()}",
    }))  # fmt: skip
    if not ref["ledger_agrees"]:
        raise ChaosFailure(f"the fault-free reference run's ledgers disagree ({ref_dir})")
    ref_decisions = len(journal_rows(ref_dir / "brain.sqlite", "SELECT decision_id FROM decisions"))
    plan = plan_kills(settings.seed, settings.kills_executor, settings.kills_brain, ref_decisions)
    chaos_dir.mkdir(parents=True, exist_ok=True)
    out = run(ChaosRun(settings, chaos_dir, plan).run())
    ev = evaluate(ref_dir, chaos_dir, require_identical=bool(settings.flood_args()), run_seconds=out.seconds)
    result = figures(settings, ref, out, ev)
    result["wall_time_s"] = time.perf_counter() - started
    write_atomic(run_dir / "chaos-report.json", json.dumps(result, indent=2, default=str) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 if every check passed, 1 on a violation or a failed process, 2 on bad input."""

    def body() -> int:
        settings = load_settings(ChaosSettings, argv if argv is not None else sys.argv[1:], "tandem chaos")
        try:
            figures = run_chaos(settings)
        except ChaosFailure as exc:
            raise ChaosFailure(f"FAIL (seed {settings.seed}): {exc}") from exc
        except INPUT_ERRORS:
            raise
        except RuntimeError as exc:  # a failure of the reference run
            raise RuntimeError(f"FAIL (seed {settings.seed}): {exc}") from exc
        print(format_figures(figures))
        return 1 if figures["violations"] else 0

    return run_main("tandem chaos", body, input_errors=INPUT_ERRORS)
