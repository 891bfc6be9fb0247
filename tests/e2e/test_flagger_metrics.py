"""``canary run`` serves Flagger's self-metrics next to ours unless ``--no-flagger-metrics``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from canary.adapters.kube import KubeClient
from kubesandbox import SandboxThread
from tests.e2e.support import (
    OperatorProcess,
    canary_manifest,
    deployment_manifest,
    eventually,
    start_operator,
)

pytestmark = pytest.mark.slow

NS = "default"


async def _initialized(kube: KubeClient) -> bool:
    obj = await kube.get("canary.gitops.dev/v1beta1", "Canary", "podinfo", NS)
    return ((obj or {}).get("status") or {}).get("phase") == "Initialized"


async def _scrape(op: OperatorProcess, wanted: str) -> str:
    """/metrics once it shows ``wanted`` (our status gauge is set by the pass after the write)."""

    async def probe() -> str:
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(f"http://127.0.0.1:{op.port}/metrics")).text
        return text if wanted in text else ""

    return await eventually(probe, timeout=30, what=f"{wanted} on /metrics")


@pytest.mark.parametrize("flag", [None, "--flagger-metrics", "--no-flagger-metrics"])
async def test_metrics_endpoint_serves_flaggers_names_unless_disabled(
    cluster: SandboxThread,
    kube: KubeClient,
    tmp_path: Path,
    operators: list[OperatorProcess],
    flag: str | None,
) -> None:
    cluster.apply_manifest(deployment_manifest("podinfo", NS, "podinfo:v1"))
    cluster.apply_manifest(
        canary_manifest("podinfo", NS, {"interval": "10s", "threshold": 2, "iterations": 2})
    )
    op = start_operator(cluster, tmp_path, operators, *([flag] if flag else []))
    await eventually(lambda: _initialized(kube), timeout=30, what="the canary to initialize")
    metrics = await _scrape(op, 'canary_engine_canary_status{name="podinfo",namespace="default"}')
    assert 'canary_engine_canary_total{namespace="default"} 1.0' in metrics
    if flag == "--no-flagger-metrics":
        assert "flagger_" not in metrics
        return
    for line in (
        'flagger_canary_status{name="podinfo",namespace="default"} 1.0',
        'flagger_canary_phase{name="podinfo",namespace="default"} 1.0',
        'flagger_canary_total{namespace="default"} 1.0',
        'flagger_canary_weight{namespace="default",workload="podinfo"} 0.0',
        'flagger_canary_weight{namespace="default",workload="podinfo-primary"} 100.0',
        'flagger_info{mesh_provider="kubernetes",version="',
        'flagger_canary_duration_seconds_count{name="podinfo",namespace="default"}',
        "# TYPE flagger_canary_successes_total counter",
        "# TYPE flagger_canary_failures_total counter",
        "# TYPE flagger_canary_metric_analysis gauge",
    ):
        assert line in metrics, line
