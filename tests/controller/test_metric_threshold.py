"""``canary_engine_canary_metric_threshold``: each metric's thresholdRange bound, set beside its
value each time the analysis records one, so a dashboard draws the bound as a line."""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest

from canary.controller.metrics import Metrics
from canary.model import CanaryStatus, MetricStatus, Phase, parse_canary

FAMILY = "canary_engine_canary_metric_threshold"


def canary(metrics: list[dict[str, Any]], name: str = "web", target: str = "podinfo") -> Any:
    """A Canary ``web`` (target ``podinfo``, whose name the labels must not use) in ``apps``."""
    return parse_canary(
        {
            "apiVersion": "canary.gitops.dev/v1beta1",
            "kind": "Canary",
            "metadata": {"name": name, "namespace": "apps"},
            "spec": {
                "provider": "kubernetes",
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                "service": {"port": 9898},
                "analysis": {"interval": "1m", "threshold": 2, "stepWeight": 10,
                             "maxWeight": 50, "metrics": metrics},
            },
        }
    )  # fmt: skip


METRICS = [
    {"name": "request-success-rate", "thresholdRange": {"min": 99}},
    {"name": "request-duration", "thresholdRange": {"max": 500}},
    {"name": "band", "templateRef": {"name": "t"}, "thresholdRange": {"min": 1, "max": 2.5}},
    {"name": "compare-only", "templateRef": {"name": "t"}},
]


def status(*values: tuple[str, float | None]) -> CanaryStatus:
    return CanaryStatus(
        phase=Phase.PROGRESSING,
        analysis=tuple(
            MetricStatus(name=name, outcome="Pass", summary="", value=value)
            for name, value in values
        ),
    )


def thresholds(metrics: Metrics) -> dict[tuple[str, ...], float]:
    """``(name, namespace, metric, bound)`` -> value of every exported series."""
    return {
        (s.labels["name"], s.labels["namespace"], s.labels["metric"], s.labels["bound"]): s.value
        for family in metrics.registry.collect()
        if family.name == FAMILY
        for s in family.samples
    }


def test_the_bounds_of_each_recorded_metric() -> None:
    metrics = Metrics(version="t", provider="kubernetes")
    after = status(
        ("request-success-rate", 99.5),
        ("request-duration", 250.0),
        ("band", 1.5),
        ("compare-only", 3.0),
    )
    metrics.record(canary(METRICS), CanaryStatus(), after, "x")
    assert thresholds(metrics) == {
        ("web", "apps", "request-success-rate", "min"): 99.0,
        ("web", "apps", "request-duration", "max"): 500.0,  # milliseconds, as the value
        ("web", "apps", "band", "min"): 1.0,
        ("web", "apps", "band", "max"): 2.5,
    }
    text = generate_latest(metrics.registry).decode()
    assert "# TYPE canary_engine_canary_metric_threshold gauge" in text
    assert (
        'canary_engine_canary_metric_threshold{bound="min",metric="request-success-rate",'
        'name="web",namespace="apps"} 99.0' in text
    )


def test_set_only_with_a_value_like_the_metric_analysis_gauge() -> None:
    metrics = Metrics()
    metrics.record(canary(METRICS), CanaryStatus(), status(("request-success-rate", None)), "x")
    assert thresholds(metrics) == {}
    metrics.record(canary(METRICS), CanaryStatus(), CanaryStatus(phase=Phase.SUCCEEDED), "x")
    assert thresholds(metrics) == {}


def test_a_changed_range_replaces_the_bounds() -> None:
    metrics = Metrics()
    metrics.record(canary(METRICS), CanaryStatus(), status(("band", 1.5)), "x")
    changed = [{"name": "band", "templateRef": {"name": "t"}, "thresholdRange": {"max": 4}}]
    metrics.record(canary(changed), CanaryStatus(), status(("band", 1.5)), "x")
    assert thresholds(metrics) == {("web", "apps", "band", "max"): 4.0}  # min: gone
    metrics.record(canary([]), CanaryStatus(), status(("band", 1.5)), "x")
    assert thresholds(metrics) == {}  # no longer in the spec: no bound


def test_labels_are_bounded() -> None:
    metrics = Metrics()
    declared = metrics.metric_threshold.labelnames
    assert declared == ("name", "namespace", "metric", "bound")
    metrics.record(canary(METRICS), CanaryStatus(), status(("band", 1.5)), "x")
    for _ in range(3):  # every pass: the same series, not new ones
        metrics.record(canary(METRICS), CanaryStatus(), status(("band", 1.5)), "x")
    assert len(thresholds(metrics)) == 2
    assert {key[3] for key in thresholds(metrics)} <= {"min", "max"}


def test_a_deleted_canary_leaves_the_scrape_and_the_others_stay() -> None:
    metrics = Metrics(flagger=True)
    for c in (canary(METRICS), canary(METRICS, name="api", target="api")):
        metrics.observe_duration(c, 0.02)
        metrics.record(c, CanaryStatus(), status(("band", 1.5)), "x")

    def series() -> set[tuple[str, str]]:
        """(family, the Canary or target it is about) of every per-Canary sample."""
        return {
            (family.name, s.labels.get("name") or s.labels["workload"])
            for family in metrics.registry.collect()
            for s in family.samples
            if "namespace" in s.labels and ("name" in s.labels or "workload" in s.labels)
        }

    before = series()
    assert {n for _, n in before} == {"web", "podinfo", "podinfo-primary", "api", "api-primary"}
    metrics.forget("web", "apps", "podinfo")
    after = series()
    assert {n for _, n in after} == {"api", "api-primary"}
    assert after == {(f, n) for f, n in before if n in ("api", "api-primary")}
