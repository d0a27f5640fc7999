"""A real Prometheus (Debian's ``prometheus`` package) scrapes a real paper session.

docker-compose.yml's ``keygen``, ``executor`` and ``brain`` run as OS processes on loopback with
the compose file's commands and environment (paper mode), and Prometheus with
``deploy/prometheus/prometheus.yml`` and its rules; see the fixture for the few differences. Through Prometheus's HTTP API the tests check that both targets are up, that the
catalogue's series arrive with the values the processes' own reports hold, that every Grafana
panel query evaluates on the scraped data, that every alert rule evaluates without error, and that
killing the executor makes TandemExecutorDown go active.

Nothing is skipped: without the ``prometheus`` binary the tests fail with the install command.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import procs
import pytest
import yaml

from tandem.children import wait_ready

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "tandem.json"
BARS = 9_000
BARS_PER_S = 1_500  # ~6 s of replay: decisions arrive across several 1 s scrapes


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    return procs.free_port(kind)


@dataclass
class Session:
    run_dir: Path
    executor: subprocess.Popen[str]
    brain: subprocess.Popen[str]
    prometheus: subprocess.Popen[bytes]
    api: str
    ports: dict[str, int]
    bus: tuple[int, int]  # the executor's decision port, the brain's confirmation port

    def query(self, expr: str) -> list[dict[str, Any]]:
        """``/api/v1/query`` → the result vector; fails the test on a query error."""
        url = f"{self.api}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.api}{path}", timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def value(self, expr: str) -> float:
        (only,) = self.query(expr)
        return float(only["value"][1])

    def wait(self, expr: str, what: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Poll until ``expr`` returns a non-empty vector."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result:
                return result
            time.sleep(0.25)
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}: {expr}")


def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    assert path, "Debian's prometheus package is needed: apt-get install prometheus (make test installs it)"
    return path


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def compose_service(compose: dict[str, Any], name: str) -> tuple[list[str], dict[str, str]]:
    """A compose service's command and its TANDEM_* environment in paper mode (its env files,
    ``${TANDEM_MODE:-paper}`` read as ``paper``, then its ``environment``, which wins)."""
    svc = compose["services"][name]
    env: dict[str, str] = {}
    for entry in svc.get("env_file", []):
        path = entry if isinstance(entry, str) else entry["path"]
        text = (ROOT / path.replace("${TANDEM_MODE:-paper}", "paper")).read_text()
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                env[key.strip()] = value.strip()
    env.update({k: str(v) for k, v in svc.get("environment", {}).items()})
    return list(svc["command"]), env


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """docker-compose.yml's keygen, executor and brain as processes on loopback, and Prometheus
    with deploy/prometheus/prometheus.yml and its rules, scraping both.

    What differs from compose, and only that: addresses (127.0.0.1 and free ports instead of
    service names and fixed ports), the paths of the secret and the run directory, the first 9,000
    bars instead of the month, paced at 1,500 bars/s instead of 40, and 1 s scrape and evaluation
    intervals instead of 5 s."""
    binary = prometheus_binary()
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    run_dir = tmp_path_factory.mktemp("prom-session")
    key = run_dir / "secrets" / "bus_secret"
    key.parent.mkdir()
    keygen_cmd, _ = compose_service(compose, "keygen")
    assert keygen_cmd[:2] == ["tandem", "keygen"] and keygen_cmd[-1] == "/secrets/bus_secret"
    subprocess.run([sys.executable, "-m", "tandem.cli", *keygen_cmd[1:-1], str(key)], check=True, timeout=60)
    decision, confirm = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    loopback = {"TANDEM_BUS_SECRET_FILE": str(key), "TANDEM_RUN_DIR": str(run_dir), "TANDEM_METRICS_HOST": "127.0.0.1",
                "TANDEM_METRICS_PORT": "0", "TANDEM_BARS": str(BARS), "TANDEM_DECISION_ADDR": f"127.0.0.1:{decision}",
                "TANDEM_CONFIRM_ADDR": f"127.0.0.1:{confirm}"}  # fmt: skip
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    procs: list[subprocess.Popen[Any]] = []
    logs: list[Any] = []
    ready: dict[str, dict[str, Any]] = {}
    try:
        started: dict[str, subprocess.Popen[str]] = {}
        for name in ("executor", "brain"):  # compose: the brain starts once the executor is healthy
            cmd, env = compose_service(compose, name)
            assert cmd == ["tandem", name]
            assert env["TANDEM_LOG_FORMAT"] == "json" and (name == "executor" or env["TANDEM_HOLD"] == "true")
            env |= loopback
            if name == "brain":
                env["TANDEM_REPLAY_BARS_PER_S"] = str(BARS_PER_S)
            log = (run_dir / f"{name}.log").open("w")
            logs.append(log)
            proc = subprocess.Popen([sys.executable, "-m", "tandem.cli", *cmd[1:]], stdout=subprocess.PIPE, stderr=log,
                                    text=True, cwd=run_dir, env=base_env | env)  # fmt: skip
            procs.append(proc)
            started[name] = proc
            ready[name] = wait_ready(proc, run_dir / f"{name}.log", name, lambda m, n=name: m.get("event") == f"{n}_ready", 60)
        executor, brain = started["executor"], started["brain"]
        ports = {"tandem_executor": ready["executor"]["metrics_port"], "tandem_brain": ready["brain"]["metrics_port"]}

        web = free_port()
        config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        for job in config["scrape_configs"]:
            job["scrape_interval"] = "1s"
            (target,) = [t for sc in job["static_configs"] for t in sc["targets"]]
            service, _, port = target.partition(":")
            assert int(port) == int(compose_service(compose, service)[1]["TANDEM_METRICS_PORT"]), target
            job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
        (run_dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        shutil.copytree(PROMETHEUS_CONFIG.parent / "rules", run_dir / "rules")  # rule_files are relative to the config
        prom_log = (run_dir / "prometheus.log").open("wb")
        logs.append(prom_log)
        prometheus = subprocess.Popen(
            [binary, f"--config.file={run_dir / 'prometheus.yml'}", f"--storage.tsdb.path={run_dir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{web}"],
            stdout=prom_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        procs.append(prometheus)
        api = f"http://127.0.0.1:{web}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{api}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert prometheus.poll() is None, (run_dir / "prometheus.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.2)
        s = Session(run_dir, executor, brain, prometheus, api, ports, (decision, confirm))
        # the replay is over when the brain holds: then every figure is final
        s.wait(f"tandem_brain_bars_replayed_total >= {BARS}", "the replay to end", timeout_s=90)
        time.sleep(2.5)  # two more scrapes of the final state
        yield s
    finally:
        for proc in reversed(procs):
            stop(proc)
        for log in logs:
            log.close()


def test_both_processes_are_scraped_and_up(session: Session) -> None:
    """Prometheus sees both targets healthy, scraped from the ports the processes announced."""
    targets = session.get("/api/v1/targets")["activeTargets"]
    by_job = {t["labels"]["job"]: t for t in targets}
    assert set(by_job) == {"tandem_executor", "tandem_brain"}
    for job, t in by_job.items():
        assert t["health"] == "up", t
        assert t["scrapeUrl"] == f"http://127.0.0.1:{session.ports[job]}/metrics"
        assert session.value(f'up{{job="{job}"}}') == 1


def test_catalogue_series_match_the_session_reports(session: Session) -> None:
    """The scraped figures are the session's own: equity, cash, trades, decisions, positions."""
    report = json.loads((session.run_dir / "report.json").read_text())
    assert report["bars_replayed"] == BARS and report["decisions_sent"] > 0 and report["trades"] > 0
    assert session.value("tandem_brain_bars_replayed_total") == BARS
    assert session.value("tandem_brain_replay_bars") == BARS
    assert session.value("tandem_brain_equity") == pytest.approx(report["final_equity"], rel=1e-9)
    assert session.value("tandem_brain_cash") == pytest.approx(report["cash"], rel=1e-9)
    assert session.value("tandem_brain_drawdown_ratio") <= report["max_drawdown_pct"] / 100 + 1e-12
    assert session.value("sum(tandem_brain_decisions_sent_total)") == report["decisions_sent"]
    outcomes = {r["metric"]["outcome"]: float(r["value"][1]) for r in session.query("tandem_brain_decision_outcomes_total")}
    assert {k: v for k, v in outcomes.items() if v} == {k: float(v) for k, v in report["decisions_by_outcome"].items()}
    exits = {r["metric"]["reason"]: float(r["value"][1]) for r in session.query("tandem_brain_exits_total")}
    assert {k: v for k, v in exits.items() if v} == {k: float(v) for k, v in report["exits_by_reason"].items()}
    assert set(exits) >= {"SIGNAL", "STOP_LOSS", "TRAILING_TAKE_PROFIT", "TIME_STOP"}  # exported at 0 from the start
    assert session.value("tandem_brain_confirmation_latency_seconds_count") == report["latency_us"]["n"]
    assert session.value("tandem_brain_pending_decisions") == 0
    assert session.value("tandem_executor_inflight_decisions") == 0
    assert session.value("tandem_brain_executor_up") == 1 and session.value("tandem_executor_brain_up") == 1
    held = {k: float(v) for k, v in report["open_positions"].items()}
    for side in ("brain", "executor"):
        series = {r["metric"]["instrument"]: float(r["value"][1])
                  for r in session.query(f"tandem_{side}_position_quantity")}  # fmt: skip
        assert {k: v for k, v in series.items() if v} == held, side
        assert session.value(f"tandem_{side}_open_positions") == len(held)
    assert session.value("tandem_executor_executions_total") == sum(
        v for k, v in report["decisions_by_outcome"].items() if k in ("FILLED", "PARTIALLY_FILLED")
    )
    for kind in ("daily_loss", "drawdown", "losing_streak"):
        assert session.query(f'tandem_brain_breaker_tripped{{kind="{kind}"}}'), kind
    assert session.value('process_resident_memory_bytes{job="tandem_brain"}') > 1e6


def _panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if expr:
                out.append((panel["title"], re.sub(r"\$__(rate_)?interval|\$__range", "1m", expr)))
    return out


def test_every_dashboard_query_returns_data_from_the_session(session: Session) -> None:
    """Each Grafana panel query evaluates on what Prometheus scraped from the session and returns
    series. Rejected-datagram panels need a rejected datagram: one garbage datagram is sent to each
    process (real UDP) first, and must be counted."""
    queries = _panel_queries()
    assert len(queries) >= 8
    # a malformed datagram to each bus port: counted under reason "version" (its first byte, "n", is not version 2)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for port in session.bus:
            s.sendto(b"not a tandem datagram", ("127.0.0.1", port))
    for side in ("brain", "executor"):
        session.wait(f'tandem_{side}_datagrams_rejected_total{{reason="version"}} == 1', f"{side} to count the datagram")
    time.sleep(2.5)  # rate() needs two scrapes of the new value
    empty = []
    for title, expr in queries:
        if not session.query(expr):
            empty.append((title, expr))
    assert empty == [], f"panel queries with no data: {empty}"


def test_every_alert_rule_evaluates_and_none_fires_on_a_healthy_session(session: Session) -> None:
    """All rules loaded from deploy/prometheus/rules evaluate without error; on a healthy
    session (both up, ledgers agreeing, nothing unprotected) none of the issue's alerts is active
    except the ones about things the test did on purpose."""
    groups = session.get("/api/v1/rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    names = {r["name"] for r in rules}
    for alert in ("TandemExecutorDown", "TandemNoConfirmations", "TandemHighConfirmationLatency",
                  "TandemDatagramsRejected", "TandemBreakerTripped", "TandemUnprotectedPositions",
                  "TandemPositionMismatch"):  # fmt: skip
        assert alert in names, alert
    deadline = time.monotonic() + 10
    while any(r.get("health") != "ok" for r in rules) and time.monotonic() < deadline:
        time.sleep(0.5)
        rules = [r for g in session.get("/api/v1/rules")["groups"] for r in g["rules"]]
    assert [(r["name"], r.get("health"), r.get("lastError")) for r in rules if r.get("health") != "ok"] == []
    active = {a["labels"]["alertname"] for a in session.get("/api/v1/alerts")["alerts"]}
    assert not active & {"TandemExecutorDown", "TandemBrainDown", "TandemNoConfirmations",
                         "TandemUnprotectedPositions", "TandemPositionMismatch", "TandemHighConfirmationLatency"}, active


def test_killing_the_executor_raises_executor_down(session: Session) -> None:
    """SIGKILL the executor: its target goes down and TandemExecutorDown becomes pending/firing;
    the brain reports the executor silent on its own link gauge too. (Runs last: it ends the session.)"""
    session.executor.kill()
    session.executor.wait()
    session.wait('up{job="tandem_executor"} == 0', "the executor's target to go down", timeout_s=15)
    deadline = time.monotonic() + 20
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {a["labels"]["alertname"]: a["state"] for a in session.get("/api/v1/alerts")["alerts"]}
        if "TandemExecutorDown" in states:
            break
        time.sleep(0.5)
    assert states.get("TandemExecutorDown") in ("pending", "firing"), states
    session.wait("tandem_brain_executor_up == 0", "the brain to see the executor silent", timeout_s=15)
