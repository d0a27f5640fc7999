"""The README's metrics catalogue is the processes' real metric set, and the names follow the
Prometheus naming guide (https://prometheus.io/docs/practices/naming/)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from brain.metrics import BrainMetrics
from executor.metrics import ExecutorMetrics

README = Path(__file__).resolve().parent.parent / "README.md"
_ROW = re.compile(r"^\| `(?P<name>[a-z_:]+)` \| (?P<type>\w+) \| (?P<labels>[^|]*) \| (?P<meaning>[^|]+) \|$")


def catalogue_rows(metrics: Any) -> list[tuple[str, str, tuple[str, ...], str]]:
    """(exposed name, type, label names, help text) of every metric object on ``metrics``."""
    rows = []
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            name = metric._name + ("_total" if metric._type == "counter" else "")
            rows.append((name, metric._type, tuple(metric._labelnames), metric._documentation))
    return rows


def render_table(rows: list[tuple[str, str, tuple[str, ...], str]]) -> str:
    """The README table for ``rows``."""
    lines = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for name, typ, labels, doc in rows:
        lines.append(f"| `{name}` | {typ} | {', '.join(f'`{label}`' for label in labels) or '–'} | {doc} |")
    return "\n".join(lines)


def readme_rows() -> dict[str, tuple[str, tuple[str, ...], str]]:
    out = {}
    for line in README.read_text().splitlines():
        m = _ROW.match(line)
        if m:
            labels = tuple(label.strip(" `") for label in m["labels"].split(",") if label.strip(" –"))
            out[m["name"]] = (m["type"], labels, m["meaning"].strip())
    return out


def test_readme_lists_every_metric_with_its_type_labels_and_meaning() -> None:
    """Each exported metric is a README row with the same type, labels and meaning; no extra rows."""
    exported = {name: (typ, labels, doc) for m in (BrainMetrics(), ExecutorMetrics()) for name, typ, labels, doc
                in catalogue_rows(m)}  # fmt: skip
    assert len(exported) >= 50
    assert readme_rows() == exported


def test_names_follow_prometheus_conventions() -> None:
    """tandem_<process>_ prefix, snake_case, _total only on counters, base units in the name."""
    for process, metrics in (("brain", BrainMetrics()), ("executor", ExecutorMetrics())):
        for name, typ, labels, doc in catalogue_rows(metrics):
            assert re.fullmatch(rf"tandem_{process}_[a-z0-9_]+", name), name
            assert name.endswith("_total") == (typ == "counter"), name
            assert not re.search(r"_(ms|us|millis|micros|percent|pct|bps)(_|$)", name), f"{name}: not a base unit"
            if typ == "histogram":  # durations, or a ratio (exit slippage)
                assert name.endswith(("_seconds", "_ratio")), name
            assert doc and (doc[0].isupper() or doc[0].isdigit() or doc[0] == "("), name
            assert all(re.fullmatch(r"[a-z_]+", label) for label in labels), name
