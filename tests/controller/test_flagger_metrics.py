"""Flagger's self-metrics (``canary run --flagger-metrics``): names, labels and values."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from canary.controller.metrics import Metrics
from canary.model import CanaryStatus, MetricStatus, Phase, parse_canary

FLAGGER_FAMILIES = {
    "flagger_info": ("gauge", {"version", "mesh_provider"}),
    "flagger_canary_total": ("gauge", {"namespace"}),
    "flagger_canary_status": ("gauge", {"name", "namespace"}),
    "flagger_canary_phase": ("gauge", {"name", "namespace"}),
    "flagger_canary_weight": ("gauge", {"workload", "namespace"}),
    "flagger_canary_duration_seconds": ("histogram", {"name", "namespace"}),
    "flagger_canary_metric_analysis": ("gauge", {"name", "namespace", "metric"}),
    "flagger_canary_successes": (
        "counter",
        {"name", "namespace", "deployment_strategy", "analysis_status"},
    ),
    "flagger_canary_failures": (
        "counter",
        {"name", "namespace", "deployment_strategy", "analysis_status"},
    ),
}


def canary(analysis: dict[str, Any] | None = None, **spec: Any) -> Any:
    """A Canary named ``web`` whose target is the Deployment ``podinfo`` (the names differ)."""
    doc = {
        "apiVersion": "canary.gitops.dev/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": analysis
            or {
                "interval": "1m",
                "threshold": 2,
                "stepWeight": 10,
                "maxWeight": 50,
                "metrics": [
                    {"name": "request-success-rate", "thresholdRange": {"min": 99}},
                    {"name": "request-duration", "thresholdRange": {"max": 500}},
                ],
            },
            **spec,
        },
    }
    return parse_canary(doc)  # spec.provider given as a keyword replaces kubernetes


def sample(metrics: Metrics, family: str, /, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(family, labels)


def family_name(family: object) -> str | None:
    """A family's name: prometheus_client's own (``_name``) or ours (`canary.controller.series`)."""
    return getattr(family, "name", None) or getattr(family, "_name", None)


def label_names(family: object) -> tuple[str, ...]:
    return tuple(getattr(family, "labelnames", None) or getattr(family, "_labelnames", ()))


class TestFamilies:
    def test_flaggers_families_with_flaggers_label_names(self) -> None:
        metrics = Metrics(version="1.2.3", provider="istio", flagger=True)
        found = {f.name: f for f in metrics.registry.collect() if f.name.startswith("flagger_")}
        assert set(found) == set(FLAGGER_FAMILIES)
        assert metrics.flagger is not None
        for name, (kind, labels) in FLAGGER_FAMILIES.items():
            assert found[name].type == kind, name
            declared = next(v for v in vars(metrics.flagger).values() if family_name(v) == name)
            assert set(label_names(declared)) == labels, name
        assert sample(metrics, "flagger_info", version="1.2.3", mesh_provider="istio") == 1.0

    def test_ours_are_unchanged_and_flaggers_are_off_by_default_in_the_library(self) -> None:
        metrics = Metrics(version="1", provider="kubernetes")
        names = {f.name for f in metrics.registry.collect()}
        assert not any(n.startswith("flagger_") for n in names)
        assert "canary_engine_canary_status" in names and metrics.flagger is None

    def test_exposition_names(self) -> None:
        metrics = Metrics(CollectorRegistry(), version="v", provider="kubernetes", flagger=True)
        c = canary()
        metrics.set_total("apps", 3)
        metrics.observe_duration(c, 0.02)
        succeeded = CanaryStatus(phase=Phase.SUCCEEDED)
        metrics.record(c, CanaryStatus(phase=Phase.FINALISING), succeeded, "Succeeded")
        text = generate_latest(metrics.registry).decode()
        for line in (
            'flagger_canary_total{namespace="apps"} 3.0',
            'flagger_canary_duration_seconds_bucket{le="0.025",name="podinfo",namespace="apps"} 1.0',
            'flagger_canary_duration_seconds_bucket{le="10.0",name="podinfo",namespace="apps"} 1.0',
            'flagger_canary_successes_total{analysis_status="completed",deployment_strategy="canary",'
            'name="podinfo",namespace="apps"} 1.0',
            'flagger_canary_status{name="podinfo",namespace="apps"} 1.0',
            'canary_engine_canary_total{namespace="apps"} 3.0',
            'canary_engine_canary_duration_seconds_count{name="web",namespace="apps"} 1.0',
        ):
            assert line in text, line


class TestValues:
    @pytest.mark.parametrize(
        ("phase", "status", "phase_value"),
        [
            (Phase.INITIALIZING, 1, 0),
            (Phase.INITIALIZED, 1, 1),
            (Phase.WAITING, 1, 2),
            (Phase.PROGRESSING, 0, 3),
            (Phase.WAITING_PROMOTION, 1, 4),  # Flagger: only Progressing is 0
            (Phase.PROMOTING, 1, 5),
            (Phase.FINALISING, 1, 6),
            (Phase.SUCCEEDED, 1, 7),
            (Phase.FAILED, 2, 8),
            (Phase.TERMINATING, 1, 9),
            (Phase.TERMINATED, 1, 10),
        ],
    )
    def test_status_and_phase(self, phase: Phase, status: int, phase_value: int) -> None:
        metrics = Metrics(flagger=True)
        metrics.record(canary(), CanaryStatus(), CanaryStatus(phase=phase), "x")
        assert sample(metrics, "flagger_canary_status", name="podinfo", namespace="apps") == status
        assert (
            sample(metrics, "flagger_canary_phase", name="podinfo", namespace="apps") == phase_value
        )

    def test_weights_by_workload(self) -> None:
        metrics = Metrics(flagger=True)
        after = CanaryStatus(phase=Phase.PROGRESSING, canary_weight=30)
        metrics.record(canary(), CanaryStatus(), after, "x")
        assert sample(metrics, "flagger_canary_weight", workload="podinfo", namespace="apps") == 30
        assert (
            sample(metrics, "flagger_canary_weight", workload="podinfo-primary", namespace="apps")
            == 70
        )

    def test_metric_analysis_by_target_and_duration_in_seconds(self) -> None:
        metrics = Metrics(flagger=True)
        after = CanaryStatus(
            phase=Phase.PROGRESSING,
            analysis=(
                MetricStatus(name="request-success-rate", outcome="Pass", summary="", value=99.5),
                MetricStatus(name="request-duration", outcome="Pass", summary="", value=250.0),
                MetricStatus(name="no-value", outcome="NoData", summary=""),
            ),
        )
        metrics.record(canary(), CanaryStatus(), after, "x")

        def value(metric: str) -> float | None:
            return sample(
                metrics,
                "flagger_canary_metric_analysis",
                name="podinfo",
                namespace="apps",
                metric=metric,
            )

        assert value("request-success-rate") == 99.5
        assert value("request-duration") == 0.25  # Flagger records the duration in seconds
        assert value("no-value") is None
        ours = sample(
            metrics, "canary_engine_canary_metric_analysis", name="web", namespace="apps",
            metric="request-duration",
        )  # fmt: skip
        assert ours == 250.0

    def test_a_templated_metric_keeps_its_value(self) -> None:
        analysis = {
            "interval": "1m",
            "threshold": 2,
            "iterations": 3,
            "metrics": [
                {
                    "name": "request-duration",
                    "templateRef": {"name": "latency"},
                    "thresholdRange": {"max": 1},
                }
            ],
        }
        metrics = Metrics(flagger=True)
        after = CanaryStatus(
            phase=Phase.PROGRESSING,
            analysis=(
                MetricStatus(name="request-duration", outcome="Pass", summary="", value=0.4),
            ),
        )
        metrics.record(canary(analysis), CanaryStatus(), after, "x")
        assert (
            sample(
                metrics,
                "flagger_canary_metric_analysis",
                name="podinfo",
                namespace="apps",
                metric="request-duration",
            )
            == 0.4
        )

    @pytest.mark.parametrize(
        ("analysis", "strategy"),
        [
            ({"interval": "1m", "threshold": 1, "stepWeight": 10, "maxWeight": 50}, "canary"),
            ({"interval": "1m", "threshold": 1, "iterations": 2}, "blue-green"),
            (
                {
                    "interval": "1m",
                    "threshold": 1,
                    "iterations": 2,
                    "match": [{"headers": {"x-canary": {"exact": "1"}}}],
                },
                "ab-testing",
            ),
        ],
    )
    def test_successes_and_failures_once_per_transition(
        self, analysis: dict[str, Any], strategy: str
    ) -> None:
        metrics = Metrics(flagger=True)
        c = canary(analysis, provider="istio")
        done = CanaryStatus(phase=Phase.SUCCEEDED)
        metrics.record(c, CanaryStatus(phase=Phase.FINALISING), done, "x")
        metrics.record(c, done, done, "x")  # an idle pass after the promotion counts nothing
        failed = CanaryStatus(phase=Phase.FAILED)
        metrics.record(c, CanaryStatus(phase=Phase.PROGRESSING), failed, "x")
        labels = {
            "name": "podinfo",
            "namespace": "apps",
            "deployment_strategy": strategy,
            "analysis_status": "completed",
        }
        assert sample(metrics, "flagger_canary_successes_total", **labels) == 1
        assert sample(metrics, "flagger_canary_failures_total", **labels) == 1

    def test_a_skipped_analysis_is_counted_as_skipped(self) -> None:
        metrics = Metrics(flagger=True)
        c = canary(skipAnalysis=True)
        metrics.record(
            c, CanaryStatus(phase=Phase.PROGRESSING), CanaryStatus(phase=Phase.SUCCEEDED), "x"
        )
        assert (
            sample(
                metrics,
                "flagger_canary_successes_total",
                name="podinfo",
                namespace="apps",
                deployment_strategy="canary",
                analysis_status="skipped",
            )
            == 1
        )
