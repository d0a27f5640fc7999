"""The Grafana dashboard and its provisioning: deploy/grafana/ and the grafana service of docker-compose.yml.

Every panel query names only metrics the real brain and executor registries export (plus
Prometheus's own ``up``), and is valid PromQL according to a real ``promtool`` (each query becomes
a recording rule of a temporary rules file). Without promtool these tests fail; ``make test``
installs it (Debian's ``prometheus`` package).

The PromQL helpers here (:func:`exported_metrics`, :func:`metric_names`, :func:`promtool_binary`)
are shared with tests/test_prometheus_rules.py.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from protocol import Status

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "tandem.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "tandem.yml"
DATASOURCE_UID = "prometheus"
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
"""Grafana's built-in interval variables, replaced by a plain duration before promtool parses a query."""


# -- shared PromQL helpers ---------------------------------------------------------------------------


def promtool_binary() -> str:
    """Path of ``promtool``; fails the calling test (never skips) when it is not on PATH."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found: install Debian's prometheus package "
            "(`apt-get install --no-install-recommends prometheus`; `make test` does it)",
            pytrace=False,
        )
    return path


def run_promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``promtool ARGS`` (stdout and stderr captured, text); fails the test if promtool is missing."""
    return subprocess.run([promtool_binary(), *map(str, args)], capture_output=True, text=True, timeout=120)


_QUERYABLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


@functools.cache
def exported_metrics() -> frozenset[str]:
    """Every series name Prometheus can store from a brain and an executor, plus ``up``.

    Taken from the real registries (``BrainMetrics().registry``, ``ExecutorMetrics().registry``):
    each family's sample names, and the names its type exposes even before a labelled child
    exists (counter ``x`` -> ``x_total``; histogram ``x`` -> ``x_bucket``, ``x_count``, ``x_sum``;
    gauge ``x`` -> ``x``). A counter's bare family name (``x`` without ``_total``) is not included:
    Prometheus never stores it.

    Returns:
        The set of metric names.
    """
    from brain.metrics import BrainMetrics
    from executor.metrics import ExecutorMetrics

    names = {"up"}
    for metrics in (BrainMetrics(), ExecutorMetrics()):
        for family in metrics.registry.collect():
            names.update(sample.name for sample in family.samples)
            names.update(family.name + suffix for suffix in _QUERYABLE_SUFFIXES.get(family.type, ("",)))
    return frozenset(names)


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE)
_IDENTIFIER = re.compile(r"(?<![\w:.$])[a-zA-Z_:][a-zA-Z0-9_:]*(?![\w:])")
_KEYWORDS = frozenset(
    "by without on ignoring group_left group_right and or unless bool offset atan2 inf nan".split()
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects.

    String literals, label matchers ``{...}``, range/subquery brackets ``[...]``, label lists
    (``by (...)``, ``on (...)``, ...), keywords, numbers and function or aggregation names
    (identifiers followed by ``(``) are dropped; what is left are metric names.

    Args:
        expr: a PromQL expression (Grafana variables such as ``$__rate_interval`` may appear inside
            range brackets).

    Returns:
        The set of metric names, e.g. ``{"tandem_brain_confirmation_latency_seconds_bucket"}`` for
        a ``histogram_quantile`` over it.

    Raises:
        AssertionError: the expression selects by ``__name__``, which this parser cannot follow.
    """
    assert "__name__" not in expr, f"select metrics by name, not by a __name__ matcher: {expr}"
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _LABEL_LISTS.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group(0)
        if word.lower() in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


def check_queries_parse(queries: dict[str, str], tmp_path: Path) -> None:
    """Assert each PromQL query parses, by ``promtool check rules`` on one recording rule per query.

    Args:
        queries: rule name (a valid metric name, e.g. ``panel_3_A``) -> PromQL expression, Grafana
            variables already replaced.
        tmp_path: where the temporary rules file is written.

    Raises:
        AssertionError: promtool refused the file; its output names the offending rule.
    """
    rules = {"groups": [{"name": "queries", "rules": [{"record": n, "expr": e} for n, e in queries.items()]}]}
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    result = run_promtool("check", "rules", path)
    assert result.returncode == 0, f"promtool check rules:\n{result.stdout}{result.stderr}"
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout, result.stdout


def test_metric_names_parser() -> None:
    """The name extractor keeps metric names and drops functions, labels, strings, ranges and numbers."""
    expr = (
        'histogram_quantile(0.99, sum by (le, job) (rate(a_bucket{job=~"x_y|z", le!="1"}[$__rate_interval])))'
        " / on (instance) group_left b_total offset 5m > 1e-9 or absent(up{job='c'}) unless sum(c:rule[5m:1m])"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "up", "c:rule"}


# -- the dashboard -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows; rows themselves excluded."""
    out = []
    for panel in dashboard["panels"]:
        if panel.get("type") == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def queries(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) for every query of the dashboard."""
    return [(panel, target) for panel in panels(dashboard) for target in panel.get("targets", [])]


def substitute(expr: str) -> str:
    """``expr`` with Grafana's interval variables replaced by durations (see GRAFANA_VARIABLES)."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def test_dashboard_identity_and_refresh(dashboard: dict[str, Any]) -> None:
    """uid/title `tandem`, a current schema version, 5 s refresh; unique panel ids and titles, no overlaps in the 24-column grid."""
    assert dashboard["uid"] == "tandem" and dashboard["title"] == "tandem"
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["refresh"] == "5s"
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    titles = [p["title"] for p in panels(dashboard)]
    assert len(titles) == len(set(titles)), "duplicate panel titles"
    cells: dict[tuple[int, int], str] = {}
    for p in panels(dashboard):
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]


def test_every_panel_has_a_prometheus_query(dashboard: dict[str, Any]) -> None:
    """Every panel has at least one target with an expression; panel and target datasources are uid `prometheus`."""
    assert panels(dashboard)
    for panel in panels(dashboard):
        targets = panel.get("targets", [])
        assert targets, f"panel {panel['title']!r} has no query"
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in targets:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]


def test_panel_queries_use_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    """Each metric a panel query names is exported by the real BrainMetrics/ExecutorMetrics registries (or is `up`)."""
    exported = exported_metrics()
    unknown = {
        (panel["title"], name)
        for panel, target in queries(dashboard)
        for name in metric_names(target["expr"])
        if name not in exported
    }
    assert not unknown, f"metrics no process exports: {sorted(unknown)}"
    for panel, target in queries(dashboard):
        assert metric_names(target["expr"]), f"{panel['title']!r}: a query without a metric: {target['expr']}"


def test_rate_windows_are_grafanas_rate_interval(dashboard: dict[str, Any]) -> None:
    """rate()/increase() windows are `$__rate_interval` (at least four 5 s scrapes), never a fixed duration."""
    windows = re.compile(r"\b(?:rate|irate|increase)\s*\([^\[]*\[([^\]]*)\]")
    for panel, target in queries(dashboard):
        for window in windows.findall(target["expr"]):
            assert window == "$__rate_interval", f"{panel['title']!r}: [{window}]"


def test_every_panel_query_is_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """promtool parses every panel query (as a recording rule, Grafana variables replaced by durations)."""
    found = {}
    for panel, target in queries(dashboard):
        expr = substitute(target["expr"])
        assert "$" not in expr, f"{panel['title']!r}: unknown Grafana variable in {expr}"
        found[f"panel_{panel['id']}_{target['refId']}"] = expr
    check_queries_parse(found, tmp_path)


def test_panel_query_checker_rejects_bad_promql(tmp_path: Path) -> None:
    """The promtool check above really parses: an unbalanced query or an unknown function fails it."""
    for bad in ("sum(rate(tandem_brain_equity[1m])", "no_such_function(up)", "up{job=}"):
        with pytest.raises(AssertionError, match="promtool check rules"):
            check_queries_parse({"bad": bad}, tmp_path)


def test_dashboard_covers_the_issue_panels(dashboard: dict[str, Any]) -> None:
    """Latency p50/p90/p99 and success rate; positions; equity and drawdown; outcomes; exits; rejections; breakers; link."""
    used = {name for _, target in queries(dashboard) for name in metric_names(target["expr"])}
    required = {
        "tandem_brain_confirmation_latency_seconds_bucket", "tandem_brain_decision_outcomes_total",
        "tandem_brain_open_positions", "tandem_executor_open_positions",
        "tandem_brain_position_quantity", "tandem_executor_position_quantity",
        "tandem_brain_equity", "tandem_brain_drawdown_ratio", "tandem_brain_exits_total",
        "tandem_brain_datagrams_rejected_total", "tandem_executor_datagrams_rejected_total",
        "tandem_brain_breaker_tripped", "tandem_brain_executor_up", "tandem_executor_brain_up", "up",
        "tandem_brain_decision_retransmits_total", "tandem_brain_replay_requests_total",
        "tandem_brain_bars_replayed_total", "tandem_brain_replay_bars",
    }  # fmt: skip
    assert not required - used, f"no panel shows {sorted(required - used)}"
    exprs = [target["expr"] for _, target in queries(dashboard)]
    for q in ("0.5", "0.9", "0.99"):
        assert any(
            re.search(
                rf"histogram_quantile\(\s*{re.escape(q)}\s*,.*tandem_brain_confirmation_latency_seconds_bucket",
                e,
            )
            for e in exprs
        ), f"no p{q} latency query"
    for kind in ("brain", "executor"):
        assert any(f"tandem_{kind}_datagrams_rejected_total" in e and "by (reason)" in e for e in exprs), kind


def test_success_rate_is_filled_partially_filled_accepted_over_all_outcomes(
    dashboard: dict[str, Any],
) -> None:
    """The success rate divides FILLED + PARTIALLY_FILLED + ACCEPTED by every outcome; all are real Status names."""
    (expr,) = [t["expr"] for p, t in queries(dashboard) if p["title"] == "Decision success rate"]
    numerator, _, denominator = expr.partition(" / ")
    (matched,) = re.findall(r'outcome=~"([^"]+)"', numerator)
    assert set(matched.split("|")) == {"FILLED", "PARTIALLY_FILLED", "ACCEPTED"}
    assert set(matched.split("|")) <= {s.name for s in Status}
    assert "tandem_brain_decision_outcomes_total" in denominator and "{" not in denominator


# -- provisioning ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grafana_service() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]


def container_mounts(service: dict[str, Any]) -> dict[str, tuple[Path, bool]]:
    """Container path -> (local path, read-only) for each bind mount (``./...``) of a compose service."""
    out = {}
    for volume in service["volumes"]:
        source, target, *mode = volume.split(":")
        if source.startswith("./"):
            out[target] = (ROOT / source, mode == ["ro"])
    return out


def local_path(service: dict[str, Any], container_path: str) -> Path:
    """The checkout path a container path of ``service`` comes from, through its bind mounts.

    Raises:
        AssertionError: no bind mount covers ``container_path``.
    """
    path = PurePosixPath(container_path)
    for target, (source, _) in container_mounts(service).items():
        if path == PurePosixPath(target) or PurePosixPath(target) in path.parents:
            return source / path.relative_to(target)
    raise AssertionError(f"{container_path} is not mounted from the checkout")


def test_provisioning_is_mounted_read_only(grafana_service: dict[str, Any]) -> None:
    """Both provisioning directories and the dashboards directory are bind-mounted read-only and exist."""
    mounts = container_mounts(grafana_service)
    for local in (DATASOURCES.parent, PROVIDERS.parent, DASHBOARD.parent):
        targets = [t for t, (source, _) in mounts.items() if source.resolve() == local.resolve()]
        assert len(targets) == 1, f"{local.relative_to(ROOT)} is not mounted once"
        assert mounts[targets[0]][1], f"{targets[0]} is not read-only"
        assert local.is_dir()
    assert local_path(grafana_service, "/etc/grafana/provisioning/datasources") == DATASOURCES.parent
    assert local_path(grafana_service, "/etc/grafana/provisioning/dashboards") == PROVIDERS.parent


def test_datasource_is_the_compose_prometheus_with_the_dashboards_uid() -> None:
    """One Prometheus datasource, uid `prometheus`, at the compose service's address, scrape interval 5 s."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    config = yaml.safe_load(DATASOURCES.read_text())
    (source,) = config["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus"
    prom = compose["services"]["prometheus"]
    container_ports = {spec.split(":")[-1] for spec in prom["ports"]}
    assert source["url"] == f"http://prometheus:{container_ports.pop()}" == "http://prometheus:9090"
    assert set(compose["services"]["grafana"]["networks"]) & set(prom["networks"])
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())["global"][
        "scrape_interval"
    ]
    assert source["jsonData"]["timeInterval"] == scrape


def test_dashboard_provider_loads_the_committed_dashboard(grafana_service: dict[str, Any]) -> None:
    """The file provider's path is where compose mounts deploy/grafana/dashboards; the home dashboard is tandem.json."""
    (provider,) = yaml.safe_load(PROVIDERS.read_text())["providers"]
    assert provider["type"] == "file"
    assert local_path(grafana_service, provider["options"]["path"]) == DASHBOARD.parent
    home = grafana_service["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert local_path(grafana_service, home) == DASHBOARD


def test_grafana_is_anonymous_viewer_on_loopback(grafana_service: dict[str, Any]) -> None:
    """Anonymous access as Viewer (never Editor/Admin), published on 127.0.0.1:3000 only, pinned Grafana 11 OSS image."""
    env = grafana_service["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true" and env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert grafana_service["ports"] == ["127.0.0.1:3000:3000"]
    assert re.fullmatch(r"grafana/grafana-oss:11\.\d+\.\d+", grafana_service["image"])
