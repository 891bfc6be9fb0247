"""The Grafana dashboard and the Prometheus alert rules: valid, built on metrics the controller
exports (with their labels), every PromQL expression accepted by promtool, and the alerts
firing on the series they are meant for (``promtool test rules``)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics_core import Metric

from canary.controller.metrics import Metrics

from .support import DEPLOY, PROMTOOL, ROOT

DASHBOARD = DEPLOY / "grafana" / "canary-engine.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
#: Values for Grafana's variables when an expression is checked outside Grafana.
GRAFANA_VARIABLES = {
    "$__rate_interval": "2m",
    "$__range": "6h",
    "$__interval": "30s",
    "$namespace": "apps|team-a",
    "$name": "podinfo",
    "$target": "podinfo",
    "$metric": "request-success-rate",
}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported() -> dict[str, set[str]]:
    """Sample name → label names, for every series the controller's registry can export."""
    out: dict[str, set[str]] = {}
    metrics = Metrics(version="test", provider="kubernetes")
    for family in metrics.registry.collect():
        assert isinstance(family, Metric)
        labels = _declared_labels(metrics, family.name)
        for suffix in SUFFIXES.get(family.type, ("",)):
            out[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return out


def _declared_labels(metrics: Metrics, family: str) -> set[str]:
    """Label names as declared: by prometheus_client's families (``_name``, ``_labelnames``)
    or by the per-Canary ones of `canary.controller.series` (``name``, ``labelnames``)."""
    for value in vars(metrics).values():
        name = getattr(value, "name", None) or getattr(value, "_name", None)
        if name in (family, f"{family}_total"):
            return set(getattr(value, "labelnames", None) or getattr(value, "_labelnames", ()))
    raise LookupError(family)


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def dashboard_expressions() -> list[tuple[str, str]]:
    """``(where, PromQL)`` of every panel target and annotation query."""
    out = [
        (f"panel {p['title']!r} {t['refId']}", t["expr"]) for p in panels() for t in p["targets"]
    ]
    out += [
        (f"annotation {a['name']!r}", a["expr"])
        for a in dashboard()["annotations"]["list"]
        if "expr" in a
    ]
    return out


def substitute(expr: str) -> str:
    # Longest names first: $namespace before $name.
    for variable in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(variable, GRAFANA_VARIABLES[variable])
    assert "$" not in expr, f"an unknown Grafana variable in {expr}"
    return expr


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False, cwd=cwd
    )


SELECTOR = re.compile(r"\b(canary_engine_[a-z_]+)\s*(\{[^}]*\})?")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"')


def check_metrics_and_labels(expr: str) -> list[str]:
    known = exported()
    problems = []
    for name, braces in SELECTOR.findall(expr):
        if name not in known:
            problems.append(f"{name} is not exported by canary/controller/metrics.py")
            continue
        for label, _ in MATCHER.findall(braces or ""):
            if label not in known[name]:
                problems.append(f"{name} has no label {label}")
    return problems


# --------------------------------------------------------------------------- dashboard


def test_dashboard_has_what_grafana_needs() -> None:
    d = dashboard()
    assert d["uid"] == "canary-engine" and d["title"]
    assert d["id"] is None  # importable into any Grafana
    assert isinstance(d["schemaVersion"], int)
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        assert set(p["gridPos"]) == {"h", "w", "x", "y"}
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
    for p in panels():
        assert p["datasource"] == DATASOURCE, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DATASOURCE and t["refId"] and t["expr"].strip()
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs))


def test_dashboard_variables() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    for name in ("namespace", "name"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"] == DATASOURCE
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
    assert "$namespace" in variables["name"]["definition"]


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    text = " ".join(expr for _, expr in dashboard_expressions())
    for metric in (
        "canary_engine_canary_weight",
        "canary_engine_canary_status",
        "canary_engine_canary_metric_analysis",
        "canary_engine_canary_metric_threshold",
        "canary_engine_canary_successes_total",
        "canary_engine_canary_failures_total",
        "canary_engine_canary_duration_seconds_bucket",
        "canary_engine_git_reverts_total",
        "canary_engine_notification_failures_total",
        "canary_engine_tick_lateness_seconds_bucket",
        "canary_engine_decisions_total",
    ):
        assert metric in text, metric
    # Everything about canaries follows the namespace variable.
    for where, expr in dashboard_expressions():
        if "canary_engine_canary_" in expr:
            assert '"$namespace"' in expr, where


def _panel(title: str) -> dict[str, Any]:
    return next(p for p in panels() if p["title"] == title)


@pytest.mark.parametrize(
    ("title", "metric"),
    [
        ("Request rate by version", "istio_requests_total"),
        ("Error rate by version", "istio_requests_total"),
        ("Latency p99 by version", "istio_request_duration_milliseconds_bucket"),
    ],
)
def test_primary_versus_canary_panels_show_both_versions(title: str, metric: str) -> None:
    """Flagger-style: each panel has the primary (``$target-primary``) and the canary
    (``$target``), from Istio's telemetry and from the HTTP observer's, by namespace."""
    exprs = {t["refId"]: t["expr"] for t in _panel(title)["targets"]}
    assert set(exprs) == {"A", "B", "C", "D"}
    istio_primary, istio_canary, http_primary, http_canary = (exprs[r] for r in "ABCD")
    assert metric in istio_primary and metric in istio_canary
    assert 'destination_workload="$target-primary"' in istio_primary
    assert 'destination_workload="$target"' in istio_canary
    assert "http_request_duration_seconds" in http_primary + http_canary
    assert 'kubernetes_pod_name=~"$target-primary-[0-9a-zA-Z]+' in http_primary
    assert 'kubernetes_pod_name=~"$target-[0-9a-zA-Z]+' in http_canary
    for expr in exprs.values():
        assert '=~"$namespace"' in expr
    legends = [t["legendFormat"] for t in _panel(title)["targets"]]
    assert [legend.split()[0] for legend in legends] == ["primary", "canary"] * 2
    colours = {
        o["matcher"]["options"]: o["properties"][0]["value"]["fixedColor"]
        for o in _panel(title)["fieldConfig"]["overrides"]
    }
    assert colours == {"A": "blue", "C": "blue", "B": "yellow", "D": "yellow"}


def test_latency_by_version_is_in_milliseconds_for_both_observers() -> None:
    panel = _panel("Latency p99 by version")
    assert panel["fieldConfig"]["defaults"]["unit"] == "ms"
    http = [t["expr"] for t in panel["targets"] if "http_request" in t["expr"]]
    assert http and all(e.startswith("1000 * histogram_quantile(0.99") for e in http)


def test_the_target_and_metric_variables() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    target = variables["target"]
    assert target["type"] == "query" and target["datasource"] == DATASOURCE
    assert not target["multi"] and not target["includeAll"]  # "$target-primary" is one name
    assert "canary_engine_canary_weight" in target["definition"]
    assert "$namespace" in target["definition"]
    metric = variables["metric"]
    assert metric["multi"] and metric["includeAll"] and metric["allValue"] == ".*"
    assert "canary_engine_canary_metric_analysis" in metric["definition"]


def test_each_metric_is_drawn_against_its_threshold() -> None:
    panel = _panel("$metric against its threshold")
    assert panel["repeat"] == "metric"
    exprs = {t["refId"]: t["expr"] for t in panel["targets"]}
    assert "canary_engine_canary_metric_analysis{" in exprs["A"]
    assert "canary_engine_canary_metric_threshold{" in exprs["B"]
    assert "bound" in exprs["B"] and "{{bound}}" in panel["targets"][1]["legendFormat"]
    for expr in exprs.values():
        assert 'metric=~"$metric"' in expr and 'name=~"$name"' in expr
    (dashed,) = panel["fieldConfig"]["overrides"]
    assert dashed["matcher"] == {"id": "byFrameRefID", "options": "B"}
    assert {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}} in dashed[
        "properties"
    ]


def test_rows_follow_each_other_without_overlap() -> None:
    """Panels of one row sit below it and above the next (no two overlap)."""
    taken: set[tuple[int, int]] = set()
    for p in dashboard()["panels"]:
        g = p["gridPos"]
        xs, ys = range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])
        cells = {(x, y) for x in xs for y in ys}
        assert not cells & taken, p["title"]
        taken |= cells


@pytest.mark.parametrize("where_expr", dashboard_expressions(), ids=lambda pair: pair[0])
def test_dashboard_uses_exported_metrics_and_labels(where_expr: tuple[str, str]) -> None:
    assert check_metrics_and_labels(where_expr[1]) == []


def test_every_dashboard_expression_parses_with_promtool(tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:expression_{i}", "expr": substitute(expr)}
        for i, (_, expr) in enumerate(dashboard_expressions())
    ]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8"
    )
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


# --------------------------------------------------------------------------- alerts


def test_alert_rules_pass_promtool() -> None:
    done = promtool("check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_example_alerts() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert {
        "CanaryEngineCanaryFailed",
        "CanaryEngineGitRevertFailed",
        "CanaryEngineNotificationsFailing",
        "CanaryEngineDown",
    } <= set(rules)
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert check_metrics_and_labels(rule["expr"]) == [], name


UNIT_TESTS = """
rule_files:
  - {alerts}
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'canary_engine_canary_status{{name="podinfo", namespace="apps", instance="a"}}'
        values: '0 0 2 2 2 2'
      - series: 'canary_engine_canary_status{{name="other", namespace="apps", instance="a"}}'
        values: '1 1 1 1 1 1'
      - series: 'canary_engine_git_reverts_total{{result="Reverted", instance="a"}}'
        values: '0 1 1 1 1 1'
      - series: 'canary_engine_git_reverts_total{{result="Failed", instance="a"}}'
        values: '0 0 0 1 1 1'
      - series: 'canary_engine_notification_failures_total{{provider_type="slack", instance="a"}}'
        values: '0 0 2 2 2 2'
      - series: 'canary_engine_info{{version="0.1.0", mesh_provider="kubernetes", instance="a"}}'
        values: '1 1 1 1 1 1'
    alert_rule_test:
      - eval_time: 5m
        alertname: CanaryEngineCanaryFailed
        exp_alerts:
          - exp_labels: {{severity: warning, namespace: apps, name: podinfo}}
            exp_annotations:
              summary: Canary apps/podinfo failed and was rolled back
              description: >-
                The last release of apps/podinfo failed its analysis and traffic went back
                to the primary. `kubectl describe canary -n apps` shows the failed checks;
                the status records the Git revert.
      - eval_time: 5m
        alertname: CanaryEngineGitRevertFailed
        exp_alerts:
          - exp_labels: {{severity: critical, result: Failed}}
            exp_annotations:
              summary: canary-engine could not revert a failed release in Git
              description: >-
                A Git revert ended in state Failed within the last 15 minutes. The cluster
                runs the primary (the last good version), but Git still holds the failed
                revision, so the next change or a manual sync may roll it out again. The
                Canary's status (gitRevert) and the controller's logs name the repository
                and the error.
      - eval_time: 5m
        alertname: CanaryEngineDown
        exp_alerts: []
  - interval: 1m
    input_series:
      - series: 'up{{job="canary-engine"}}'
        values: '0 0 0 0 0 0 0 0'
    alert_rule_test:
      - eval_time: 7m
        alertname: CanaryEngineDown
        exp_alerts:
          - exp_labels: {{severity: critical}}
            exp_annotations:
              summary: canary-engine is down
              description: >-
                No canary-engine replica has exposed metrics for 5 minutes: canaries are
                neither analysed nor rolled back. Check `kubectl -n canary-engine get pods`
                and the logs.
"""


def test_the_alerts_fire_on_their_series(tmp_path: Path) -> None:
    tests = tmp_path / "alerts-test.yaml"
    tests.write_text(UNIT_TESTS.format(alerts=ALERTS), encoding="utf-8")
    done = promtool("test", "rules", str(tests))
    assert done.returncode == 0, done.stdout + done.stderr


# --------------------------------------------------------------------------- docs


def test_observability_doc_names_every_metric() -> None:
    doc = (ROOT / "docs" / "observability.md").read_text(encoding="utf-8")
    families = {
        name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
        for name in exported()
    }
    missing = sorted(f for f in families if f not in doc)
    assert missing == []
    for alert in alert_rules():
        assert alert["alert"] in doc
