"""Prometheus configuration and alert rules, checked and unit-tested by a real ``promtool``.

deploy/prometheus/prometheus.yml and rules/tandem.yml are what the compose prometheus service
loads; rules/tandem_test.yml holds promtool unit tests in which every alert fires in a failing case
and stays silent in a healthy one. Without promtool these tests fail (never skip); ``make test``
installs it (Debian's ``prometheus`` package).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from test_dashboard import exported_metrics, metric_names, run_promtool

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
RULES = PROMETHEUS / "rules" / "tandem.yml"
RULE_TESTS = PROMETHEUS / "rules" / "tandem_test.yml"
ISSUE_ALERTS = (
    "TandemExecutorDown",
    "TandemNoConfirmations",
    "TandemHighConfirmationLatency",
    "TandemDatagramsRejected",
    "TandemBreakerTripped",
    "TandemUnprotectedPositions",
    "TandemPositionMismatch",
    "TandemExitSlippageOverLimit",  # issue #10 §1
    "TandemExecutorJournalFault",  # issue #10 §7
)
CONTAINER_CONFIG = "/etc/prometheus/prometheus.yml"


@pytest.fixture(scope="module")
def alerts() -> dict[str, dict[str, Any]]:
    """Alert name -> rule, from rules/tandem.yml."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert all("alert" in rule for rule in rules), "recording rules belong elsewhere"
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    return {rule["alert"]: rule for rule in rules}


def promtool_ok(*args: str | Path) -> str:
    """Run promtool, assert exit 0, return its stdout."""
    result = run_promtool(*args)
    assert result.returncode == 0, f"promtool {' '.join(map(str, args))}:\n{result.stdout}{result.stderr}"
    return result.stdout


def test_promtool_check_config_loads_the_rules() -> None:
    """`promtool check config` accepts prometheus.yml and, through its rule_files, the alert rules."""
    out = promtool_ok("check", "config", CONFIG)
    assert "SUCCESS: 1 rule files found" in out and str(RULES.relative_to(ROOT)) in out


def test_promtool_check_rules() -> None:
    """`promtool check rules` accepts tandem.yml."""
    assert "SUCCESS" in promtool_ok("check", "rules", RULES)


def test_promtool_unit_tests_pass() -> None:
    """`promtool test rules tandem_test.yml`: every alert fires, or stays silent, exactly as the cases expect."""
    assert "SUCCESS" in promtool_ok("test", "rules", RULE_TESTS)


def test_promtool_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """The unit tests are not vacuous: with one threshold changed, `promtool test rules` fails."""
    broken = RULES.read_text().replace(
        "tandem_executor_unprotected_positions > 0", "tandem_executor_unprotected_positions > 1"
    )
    assert broken != RULES.read_text()
    (tmp_path / RULES.name).write_text(broken)
    (tmp_path / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    result = run_promtool("test", "rules", tmp_path / RULE_TESTS.name)
    assert result.returncode != 0 and "TandemUnprotectedPositions" in result.stdout + result.stderr


def test_every_issue_alert_is_defined(alerts: dict[str, dict[str, Any]]) -> None:
    """The seven alerts of the issue exist in tandem.yml."""
    assert not set(ISSUE_ALERTS) - set(alerts), sorted(set(ISSUE_ALERTS) - set(alerts))


def test_alerts_have_for_severity_and_templated_annotations(alerts: dict[str, dict[str, Any]]) -> None:
    """Each alert has `for:`, a critical/warning severity and summary + description using $labels or $value."""
    for name, rule in alerts.items():
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name}: for"
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert set(annotations) >= {"summary", "description"}, name
        text = annotations["summary"] + annotations["description"]
        assert "$labels." in text or "$value" in text, name


def test_alert_expressions_use_only_exported_metrics(alerts: dict[str, dict[str, Any]]) -> None:
    """Every metric an alert expression names is exported by the real brain/executor registries (or is `up`)."""
    exported = exported_metrics()
    for name, rule in alerts.items():
        used = metric_names(rule["expr"])
        assert used, name
        assert not used - exported, f"{name}: {sorted(used - exported)}"


def test_issue_alerts_watch_the_metrics_the_issue_names(alerts: dict[str, dict[str, Any]]) -> None:
    """Each issue alert is built on the metrics the issue describes (both processes for rejections and positions)."""
    expected = {
        "TandemExecutorDown": {"up"},
        "TandemNoConfirmations": {"tandem_brain_pending_decisions", "tandem_brain_decision_outcomes_total"},
        "TandemHighConfirmationLatency": {"tandem_brain_confirmation_latency_seconds_bucket"},
        "TandemDatagramsRejected": {
            "tandem_brain_datagrams_rejected_total",
            "tandem_executor_datagrams_rejected_total",
        },
        "TandemBreakerTripped": {"tandem_brain_breaker_tripped"},
        "TandemUnprotectedPositions": {"tandem_executor_unprotected_positions"},
        "TandemPositionMismatch": {
            "tandem_brain_position_quantity",
            "tandem_executor_position_quantity",
            "tandem_brain_resuming",
        },
    }
    for name, metrics in expected.items():
        assert metric_names(alerts[name]["expr"]) == metrics, name
    assert 'up{job="tandem_executor"}' in alerts["TandemExecutorDown"]["expr"]
    assert "absent(" in alerts["TandemExecutorDown"]["expr"]
    assert 'outcome!="EXPIRED_UNCONFIRMED"' in alerts["TandemNoConfirmations"]["expr"]
    assert "on (instrument)" in alerts["TandemPositionMismatch"]["expr"]
    assert alerts["TandemPositionMismatch"]["for"] == "1m"


def test_latency_threshold_is_a_bucket_boundary_under_the_decision_ttl(
    alerts: dict[str, dict[str, Any]],
) -> None:
    """The latency alert counts confirmations above a bucket boundary of the real histogram (so the
    count is exact), and that threshold lies well under the brain's decision TTL."""
    from brain.metrics import BrainMetrics
    from brain.settings import BrainSettings

    thresholds = set(re.findall(r'_bucket\{le="([0-9.]+)"\}', alerts["TandemHighConfirmationLatency"]["expr"]))
    assert len(thresholds) == 1, thresholds
    (threshold,) = thresholds
    buckets = {
        float(sample.labels["le"])
        for family in BrainMetrics().registry.collect()
        if family.name == "tandem_brain_confirmation_latency_seconds"
        for sample in family.samples
        if sample.name.endswith("_bucket")
    }
    assert float(threshold) in buckets
    assert float(threshold) <= BrainSettings.model_fields["decision_ttl_s"].default / 2


def test_every_alert_has_a_firing_and_a_silent_unit_test(alerts: dict[str, dict[str, Any]]) -> None:
    """tandem_test.yml loads tandem.yml and has, for every alert, a case where it fires and one where it stays silent."""
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == [RULES.name]
    fires: set[str] = set()
    silent: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            name = check["alertname"]
            assert name in alerts, f"test for an unknown alert {name}"
            if check.get("exp_alerts"):
                fires.add(name)
                for alert in check["exp_alerts"]:
                    assert alert["exp_labels"]["severity"] == alerts[name]["labels"]["severity"], name
                    assert set(alert.get("exp_annotations", {})) == {"summary", "description"}, name
            else:
                silent.add(name)
    assert not set(alerts) - fires, f"never shown to fire: {sorted(set(alerts) - fires)}"
    assert not set(alerts) - silent, f"never shown silent: {sorted(set(alerts) - silent)}"


def test_rule_files_resolve_to_the_rules_in_the_container_and_here() -> None:
    """rule_files, relative to prometheus.yml, find tandem.yml and not the unit-test file, both in the checkout
    and in the container (where compose mounts the config at /etc/prometheus/prometheus.yml and rules/ beside it)."""
    config = yaml.safe_load(CONFIG.read_text())
    patterns = config["rule_files"]
    assert all(not PurePosixPath(p).is_absolute() for p in patterns), (
        "absolute rule paths only work in the container"
    )
    local = {path for p in patterns for path in CONFIG.parent.glob(p)}
    assert local == {RULES}

    prom = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["prometheus"]
    assert f"--config.file={CONTAINER_CONFIG}" in prom["command"]
    mounts = {}
    for volume in prom["volumes"]:
        source, target, *mode = volume.split(":")
        if source.startswith("./"):
            assert mode == ["ro"], volume
            mounts[PurePosixPath(target)] = ROOT / source
    assert mounts[PurePosixPath(CONTAINER_CONFIG)] == CONFIG
    in_container = PurePosixPath(CONTAINER_CONFIG).parent
    for pattern in patterns:
        target = in_container / pattern
        covering = [t for t in mounts if t in target.parents]
        assert covering, f"{target} is not mounted"
        (mount,) = covering
        assert set(mounts[mount].glob(str(target.relative_to(mount)))) == {RULES}
