"""`canary run --no-cross-namespace-refs`: references into other namespaces are refused by field."""

from __future__ import annotations

from typing import Any

import pytest

from canary.model import cross_namespace_refs, parse_canary


def canary(metrics: list[dict[str, Any]], alerts: list[dict[str, Any]]) -> Any:
    return parse_canary(
        {
            "apiVersion": "canary.gitops.dev/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "team-a"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "service": {"port": 9898},
                "analysis": {
                    "interval": "1m",
                    "threshold": 2,
                    "stepWeight": 10,
                    "metrics": metrics,
                    "alerts": alerts,
                },
            },
        }
    )


def test_references_into_another_namespace_are_named_by_field() -> None:
    found = cross_namespace_refs(
        canary(
            [
                {"name": "own", "templateRef": {"name": "t"}, "thresholdRange": {"max": 1}},
                {
                    "name": "shared",
                    "templateRef": {"name": "t", "namespace": "platform"},
                    "thresholdRange": {"max": 1},
                },
            ],
            [
                {"name": "team", "providerRef": {"name": "slack", "namespace": "team-a"}},
                {"name": "ops", "providerRef": {"name": "slack", "namespace": "ops"}},
            ],
        )
    )
    assert [issue.path for issue in found] == [
        "spec.analysis.metrics[1].templateRef.namespace",
        "spec.analysis.alerts[1].providerRef.namespace",
    ]
    assert "MetricTemplate platform/t is in another namespace" in found[0].message
    assert "--no-cross-namespace-refs" in found[1].message


def test_references_within_the_canarys_namespace_are_fine() -> None:
    metrics = [{"name": "own", "templateRef": {"name": "t"}, "thresholdRange": {"max": 1}}]
    alerts = [{"name": "team", "providerRef": {"name": "slack"}}]
    assert cross_namespace_refs(canary(metrics, alerts)) == ()


class Recorder:
    def __init__(self) -> None:
        self.paths: list[str] = []

    async def get_path(self, path: str, params: Any = None) -> dict[str, Any] | None:
        self.paths.append(path)
        return {}


async def test_a_metric_query_into_another_namespace_is_refused_when_refs_are_bounded() -> None:
    from analysis import BadQueryError
    from canary.adapters.kube_reader import SameNamespaceReader

    inner = Recorder()
    reader = SameNamespaceReader(inner, "team-a")
    own = "/apis/metrics.keptn.sh/v1beta1/namespaces/team-a/keptnmetrics/latency"
    assert await reader.get_path(own) == {}
    other = "/apis/external.metrics.k8s.io/v1beta1/namespaces/platform/errors"
    with pytest.raises(BadQueryError, match=r"namespace platform, not the Canary's \(team-a\)"):
        await reader.get_path(other)
    assert inner.paths == [own]
