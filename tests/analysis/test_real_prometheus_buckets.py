"""The latency judge on the proxies' own coarse buckets, against a real Prometheus.

Two pairs of demo-app processes export Istio's and Linkerd's metrics with each
proxy's *default* bucket layout (``--mesh-buckets default``): Istio's 100, 250,
500 ms boundaries around a p99 of about 230 ms (median 80 ms, shape 0.45).  In
the "shop" pair the canary's tail alone is heavier: its median is the same and
its p99 is 25% higher (about 290 ms), an effect that the count above the 100 ms
boundary barely shows.  The "twin" pair is identical on both sides.  Each app
makes 200 requests/s of its own, so a 10 s window holds about 2,000 requests
per side; up to six windows are judged, chained as the controller chains them (a
run at the canary's weights judges many more), and the first failed one ends the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from analysis import (
    Outcome,
    QueryContext,
    Verdict,
    metric_check_from_spec,
)
from tests.prometheus_fixtures import DemoApp, PrometheusServer, judge_run

pytestmark = pytest.mark.slow

RPS = 200.0
WINDOW_SECONDS = 10
WINDOWS = 6
MEDIAN_MS, SIGMA = 80.0, 0.45
TAIL_SIGMA = SIGMA + math.log(1.25) / 2.3263478740408408  # p99 x1.25, same median


@pytest.fixture(scope="module")
def lab(
    prometheus_server: PrometheusServer, demo_app_factory: Callable[..., DemoApp]
) -> PrometheusServer:
    def app(workload: str, sigma: float, seed: int) -> DemoApp:
        return demo_app_factory(
            workload=workload, pod=f"{workload}-5f6d7c8b9-{seed:05d}", namespace="test",
            latency_ms=MEDIAN_MS, latency_sigma=sigma, self_load=RPS, seed=seed,
            extra_args=["--mesh-buckets", "default"],
        )  # fmt: skip

    apps = [
        app("shop", TAIL_SIGMA, 1),
        app("shop-primary", SIGMA, 2),
        app("twin", SIGMA, 3),
        app("twin-primary", SIGMA, 4),
    ]
    prometheus_server.set_targets(apps)
    window = f"{WINDOWS * WINDOW_SECONDS + 3}s"
    prometheus_server.wait_for_samples(
        apps, window=window, samples=WINDOWS * WINDOW_SECONDS + 1, timeout=WINDOWS * 20.0
    )
    return prometheus_server


async def judge_windows(lab: PrometheusServer, mesh: str, target: str) -> Verdict:
    check = metric_check_from_spec(
        {"name": "request-duration", "interval": f"{WINDOW_SECONDS}s", "compare": {"warmup": "0s"}},
        path="spec.analysis.metrics[0]",
    )
    ctx = QueryContext(name=target, namespace="test", target=target, provider=mesh)
    return await judge_run(check, ctx, lab.url, windows=WINDOWS, window_seconds=WINDOW_SECONDS)


@pytest.mark.parametrize("mesh", ["istio", "linkerd"])
class TestTailOnDefaultBuckets:
    async def test_a_heavier_tail_alone_fails_the_canary(
        self, lab: PrometheusServer, mesh: str
    ) -> None:
        v = await judge_windows(lab, mesh, "shop")
        assert v.outcome is Outcome.FAIL and v.conclusive, v.summary
        c = v.comparison
        assert c is not None and c.ratio is not None and c.ratio >= 1.1, v.summary
        # the pooled p99's boundary, the two above it, and the pooled p90's when it is another
        assert v.state is not None and 3 <= len(v.state.bounds) <= 4, v.state

    async def test_identical_versions_pass(self, lab: PrometheusServer, mesh: str) -> None:
        v = await judge_windows(lab, mesh, "twin")
        assert v.outcome is Outcome.PASS, v.summary
