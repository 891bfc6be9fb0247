"""``canary report`` with the metric series read from the metrics server.

The slow test runs Debian's Prometheus scraping two demo-app processes: the canary answers
20% errors and 40 ms, the primary no errors and 10 ms, each generating 200 requests/s of its
own. The report must carry and draw both series with those values. The others check what
happens when the series cannot be read (the report is written all the same, one line says
why) and how the model and the picture take series in.
"""

from __future__ import annotations

import json
import statistics
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from canary.report.measured import step_for
from canary.report.model import build_report
from canary.report.picture import decision_svg
from tests.cli.conftest import Cluster, Invoke
from tests.prometheus_fixtures import DemoApp, PrometheusServer
from tests.report._data import EVENTS, canary, verdict

SVG = "{http://www.w3.org/2000/svg}"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _series_lines(svg: str, metric: str) -> dict[str, list[ET.Element]]:
    root = ET.fromstring(svg)
    group = next(g for g in root.iter(f"{SVG}g") if g.get("data-metric") == metric)
    lines: dict[str, list[ET.Element]] = {"canary": [], "primary": []}
    for line in group.iter(f"{SVG}polyline"):
        classes = (line.get("class") or "").split()
        for side in lines:
            if f"series-line-{side}" in classes:
                lines[side].append(line)
    return lines


def _live_canary(now: datetime) -> dict[str, Any]:
    """A finished run of 30 s with three ticks, its builtin metrics judged every 10 s."""
    started = now - timedelta(seconds=30)
    ticks = [
        {
            "time": _iso(started + timedelta(seconds=10 * i)),
            "weight": 10 * i,
            "verdicts": [
                verdict("request-success-rate", "Fail", 80.0),
                verdict("request-duration", "Pass", 60.0),
            ],
        }
        for i in (1, 2, 3)
    ]
    return {
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {
                "interval": "10s",
                "threshold": 5,
                "maxWeight": 50,
                "stepWeight": 10,
                "metrics": [
                    {
                        "name": "request-success-rate",
                        "interval": "10s",
                        "thresholdRange": {"min": 99},
                    },
                    {"name": "request-duration", "interval": "10s", "thresholdRange": {"max": 500}},
                ],
            },
        },
        "status": {
            "phase": "Failed",
            "analysisHistory": [
                {
                    "revision": "main@sha1:cccccccccccc",
                    "started": _iso(started),
                    "ended": _iso(now),
                    "result": "Failed",
                    "reason": "failed checks threshold reached 5",
                    "ticks": ticks,
                }
            ],
        },
    }


@pytest.mark.slow
def test_series_from_a_real_prometheus(
    cli: Invoke,
    cluster: Cluster,
    prometheus_server: PrometheusServer,
    demo_app_factory: Callable[..., DemoApp],
) -> None:
    common = {"namespace": "test", "latency_sigma": 0.2, "self_load": 200.0}
    canary_app = demo_app_factory(
        workload="podinfo", pod="podinfo-7d9f8b6c4-x1y2z", version="v2", error_rate=0.2,
        latency_ms=40.0, seed=11, **common,
    )  # fmt: skip
    primary_app = demo_app_factory(
        workload="podinfo-primary", pod="podinfo-primary-6c5d4f9b8-abcde", version="v1",
        error_rate=0.0, latency_ms=10.0, seed=12, **common,
    )  # fmt: skip
    prometheus_server.set_targets([canary_app, primary_app])
    prometheus_server.wait_for_samples([canary_app, primary_app], window="40s", samples=30)
    obj = _live_canary(datetime.now(UTC))
    cluster.canary("podinfo", spec=obj["spec"], status=obj["status"])
    args = ["report", "podinfo", "-n", "test", "--kubeconfig", cluster.kubeconfig]
    args += ["--metrics-server", prometheus_server.url]

    result = cli(*args, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert "missing" not in result.stderr
    data = json.loads(result.stdout)
    metrics = {m["name"]: m["measured"] for m in data["metrics"]}
    rate, duration = metrics["request-success-rate"], metrics["request-duration"]
    assert rate["step"] == step_for(40.0)  # the run (30 s) and one interval before it
    canary_rates = [p["value"] for p in rate["canary"]]
    primary_rates = [p["value"] for p in rate["primary"]]
    assert len(canary_rates) >= 25 and len(primary_rates) >= 25
    assert all(65.0 < v < 92.0 for v in canary_rates), canary_rates  # 20% errors
    assert all(v == 100.0 for v in primary_rates), primary_rates
    assert all(p["time"].endswith("Z") for p in rate["canary"])
    # request-duration in ms: the canary's P99 (40 ms median) above the primary's (10 ms)
    assert statistics.median(p["value"] for p in duration["canary"]) > 2 * statistics.median(
        p["value"] for p in duration["primary"]
    )

    svg = cli(*args, "-o", "svg")
    assert svg.exit_code == 0, svg.stderr
    lines = _series_lines(svg.stdout, "request-success-rate")
    assert lines["canary"] and lines["primary"]
    assert sum(int(e.get("data-points") or 0) for e in lines["canary"]) >= 20


@pytest.fixture
def recorded(cluster: Cluster) -> Cluster:
    obj = canary()
    cluster.canary("podinfo", spec=obj["spec"], status=obj["status"])
    for at, kind, message in EVENTS:
        cluster.event("podinfo", message, type=kind, at=at)
    return cluster


def test_unreachable_metrics_server_still_writes_the_report(cli: Invoke, recorded: Cluster) -> None:
    result = cli(
        "report", "podinfo", "-n", "test", "--run", "1", "-o", "json",
        "--kubeconfig", recorded.kubeconfig, "--metrics-server", "http://127.0.0.1:9",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert all(m["measured"] is None for m in data["metrics"])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("metric series missing from http://127.0.0.1:9: ")
    assert "cannot reach Prometheus" in lines[0] and "request-duration primary" in lines[0]
    assert "Traceback" not in result.stderr


def test_the_canarys_metrics_server_is_the_default(cli: Invoke, cluster: Cluster) -> None:
    obj = canary()
    cluster.canary(
        "podinfo", spec={**obj["spec"], "metricsServer": "http://127.0.0.1:9"}, status=obj["status"]
    )
    result = cli("report", "podinfo", "-n", "test", "--run", "1", "-o", "svg",
                 "--kubeconfig", cluster.kubeconfig)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("<svg")
    assert "metric series missing from http://127.0.0.1:9" in result.stderr


def test_no_metrics_server_no_series_and_no_word(cli: Invoke, recorded: Cluster) -> None:
    result = cli("report", "podinfo", "-n", "test", "--run", "1", "-o", "json",
                 "--kubeconfig", recorded.kubeconfig)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""


def test_the_model_takes_series_and_the_picture_draws_them() -> None:
    start = datetime(2024, 5, 1, 9, 59, tzinfo=UTC)  # a minute before run 1 started
    canary_side = [(start + timedelta(seconds=5 * i), 95.0 + (i % 3)) for i in range(60)]
    primary_side = [(at, 99.5) for at, _ in canary_side[:20] + canary_side[30:]]  # a gap
    canary_side.append((start + timedelta(seconds=301), float("nan")))  # not a point
    report = build_report(
        canary(), [], run=1, measured={"request-success-rate": (canary_side, primary_side, 5.0)}
    )
    metric = next(m for m in report.metrics if m.name == "request-success-rate")
    assert metric.measured is not None and len(metric.measured.canary) == 60
    assert metric.measured.canary[0].offset == -60.0  # before the axis: not drawn
    assert metric.measured.primary[0].time == "2024-05-01T09:59:00Z"
    data = report.to_dict()["metrics"][0]["measured"]
    assert data["canary"][12] == {"time": "2024-05-01T10:00:00Z", "offset": 0.0, "value": 95.0}
    lines = _series_lines(decision_svg(report), "request-success-rate")
    assert len(lines["canary"]) == 1 and int(lines["canary"][0].get("data-points") or 0) == 48
    assert len(lines["primary"]) == 2  # split at the gap
    other = _series_lines(decision_svg(report), "request-duration")
    assert other == {"canary": [], "primary": []}
