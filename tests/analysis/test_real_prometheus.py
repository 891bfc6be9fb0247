"""End to end: Debian's Prometheus scraping real demo-app processes with known behaviour.

The canary answers 5% errors with a median latency of 50 ms, the primary 0.5%
and 20 ms; a second pair ("twin") is identical on both sides.  Every app
generates 200 requests/s of its own (Poisson), so a 10 s window holds about
2,000 requests per side: the standard error of a 5% rate is then 0.5 points,
and the tolerances below are about five standard errors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from analysis import (
    Outcome,
    PrometheusProvider,
    ProviderConfig,
    ProviderUnavailableError,
    QueryContext,
    Verdict,
    evaluate,
    metric_check_from_spec,
)
from tests.prometheus_fixtures import DemoApp, PrometheusServer, prometheus_binary

pytestmark = pytest.mark.slow

RPS = 200.0
WINDOW = "10s"
CANARY_ERR, PRIMARY_ERR = 0.05, 0.005
CANARY_MS, PRIMARY_MS, SIGMA = 50.0, 20.0, 0.3


@dataclass
class Lab:
    prometheus: PrometheusServer
    canary: DemoApp
    primary: DemoApp
    twin: DemoApp
    twin_primary: DemoApp

    def provider(self) -> PrometheusProvider:
        return PrometheusProvider(ProviderConfig(address=self.prometheus.url, timeout_seconds=5.0))


@pytest.fixture(scope="module")
def lab(prometheus_server: PrometheusServer, demo_app_factory: Callable[..., DemoApp]) -> Lab:
    common = {"namespace": "test", "latency_sigma": SIGMA, "self_load": RPS}
    canary = demo_app_factory(
        workload="podinfo", pod="podinfo-7d9f8b6c4-x1y2z", version="v2", error_rate=CANARY_ERR,
        latency_ms=CANARY_MS, seed=1, extra_args=["--ingress", "podinfo", "--ingress-canary"], **common,
    )  # fmt: skip
    primary = demo_app_factory(
        workload="podinfo-primary", pod="podinfo-primary-6c5d4f9b8-abcde", version="v1",
        error_rate=PRIMARY_ERR, latency_ms=PRIMARY_MS, seed=2, extra_args=["--ingress", "podinfo"], **common,
    )  # fmt: skip
    twin = demo_app_factory(
        workload="twin", pod="twin-5f6d7c8b9-qwert", error_rate=PRIMARY_ERR, latency_ms=PRIMARY_MS, seed=3,
        **common,
    )  # fmt: skip
    twin_primary = demo_app_factory(
        workload="twin-primary", pod="twin-primary-8b9c7d6f5-asdfg", error_rate=PRIMARY_ERR,
        latency_ms=PRIMARY_MS, seed=4, **common,
    )  # fmt: skip
    apps = [canary, primary, twin, twin_primary]
    prometheus_server.set_targets(apps)
    prometheus_server.wait_for_samples(apps, window="22s", samples=20)  # two judged windows
    return Lab(prometheus_server, canary, primary, twin, twin_primary)


def ctx(provider: str, target: str = "podinfo") -> QueryContext:
    return QueryContext(name=target, namespace="test", target=target, provider=provider)


def p99_ms(median_ms: float) -> float:
    return median_ms * math.exp(SIGMA * 2.3263478740408408)


class TestBuiltinQueries:
    @pytest.mark.parametrize("mesh", ["kubernetes", "istio", "linkerd", "nginx"])
    async def test_success_rate(self, lab: Lab, mesh: str) -> None:
        check = metric_check_from_spec(
            {"name": "request-success-rate", "interval": WINDOW, "thresholdRange": {"min": 99}},
            path="m",
        )
        v = await evaluate(check, ctx(mesh), lab.provider(), now=datetime.now(UTC))
        assert v.value == pytest.approx(100 * (1 - CANARY_ERR), abs=2.5)
        assert v.outcome is Outcome.FAIL
        assert v.summary.startswith("success rate 9") and v.summary.endswith("< 99%")

    @pytest.mark.parametrize("mesh", ["kubernetes", "istio", "linkerd"])
    async def test_p99_duration_in_ms(self, lab: Lab, mesh: str) -> None:
        check = metric_check_from_spec(
            {"name": "request-duration", "interval": WINDOW, "thresholdRange": {"max": 500}},
            path="m",
        )
        v = await evaluate(check, ctx(mesh), lab.provider(), now=datetime.now(UTC))
        assert v.outcome is Outcome.PASS and v.unit == "ms"
        assert v.value == pytest.approx(p99_ms(CANARY_MS), rel=0.2)

    async def test_nginx_duration_is_the_mean(self, lab: Lab) -> None:
        check = metric_check_from_spec({"name": "request-duration", "interval": WINDOW}, path="m")
        v = await evaluate(check, ctx("nginx"), lab.provider(), now=datetime.now(UTC))
        assert v.value == pytest.approx(CANARY_MS * math.exp(SIGMA**2 / 2), rel=0.1)


class TestTemplatedQueries:
    async def test_template_with_variables_measures_the_request_rate(self, lab: Lab) -> None:
        check = metric_check_from_spec(
            {
                "name": "request-rate",
                "interval": WINDOW,
                "thresholdRange": {"min": 1},
                "templateVariables": {"pod": lab.primary.pod},
            },
            path="m",
            template_query=(
                'sum(rate(http_request_duration_seconds_count{kubernetes_namespace="{{ namespace }}",'
                'kubernetes_pod_name="{{ variables.pod }}"}[{{ interval }}]))'
            ),
        )
        v = await evaluate(check, ctx("kubernetes"), lab.provider(), now=datetime.now(UTC))
        assert v.outcome is Outcome.PASS
        assert v.value == pytest.approx(RPS, rel=0.15)

    async def test_primary_twin_of_a_template(self, lab: Lab) -> None:
        template = (
            'sum(rate(istio_requests_total{destination_workload="{{ target }}",response_code=~"5.*"}'
            '[{{ interval }}])) / sum(rate(istio_requests_total{destination_workload="{{ target }}"}'
            "[{{ interval }}]))"
        )
        check = metric_check_from_spec(
            {"name": "err", "interval": WINDOW}, path="m", template_query=template
        )
        provider = lab.provider()
        canary = await evaluate(check, ctx("istio"), provider, now=datetime.now(UTC))
        primary = await evaluate(check, ctx("istio").for_primary(), provider, now=datetime.now(UTC))
        assert canary.value == pytest.approx(CANARY_ERR, abs=0.025)
        assert primary.value == pytest.approx(PRIMARY_ERR, abs=0.005)


class TestFailures:
    async def test_bad_query_is_an_error_verdict_quoting_prometheus(self, lab: Lab) -> None:
        check = metric_check_from_spec(
            {"name": "broken", "query": "sum(rate(x[1m])", "thresholdRange": {"max": 1}}, path="m"
        )
        v = await evaluate(check, ctx("kubernetes"), lab.provider(), now=datetime.now(UTC))
        assert (v.outcome, v.error) == (Outcome.ERROR, "PrometheusAPIError")
        assert v.summary.startswith("Metric query failed for broken: Prometheus rejected query")
        assert "bad_data" in v.summary

    async def test_empty_result_is_no_data(self, lab: Lab) -> None:
        check = metric_check_from_spec(
            {"name": "request-success-rate", "interval": WINDOW}, path="m"
        )
        v = await evaluate(
            check, ctx("kubernetes", target="ghost"), lab.provider(), now=datetime.now(UTC)
        )
        assert v.outcome is Outcome.NODATA
        assert v.summary.startswith(
            "no values found for prometheus metric request-success-rate probably ghost.test is not receiving traffic"
        )

    async def test_stopped_prometheus_is_an_error_verdict(
        self, lab: Lab, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        server = PrometheusServer(
            workdir=tmp_path_factory.mktemp("stopped"), binary=prometheus_binary()
        )
        server.start()
        provider = PrometheusProvider(ProviderConfig(address=server.url, timeout_seconds=2.0))
        assert await provider.is_online() is True
        server.stop()
        assert await provider.is_online() is False
        with pytest.raises(
            ProviderUnavailableError, match=re.escape(f"cannot reach Prometheus at {server.url}")
        ):
            await provider.run_query("vector(1)")
        check = metric_check_from_spec(
            {"name": "request-success-rate", "thresholdRange": {"min": 99}}, path="m"
        )
        v = await evaluate(check, ctx("kubernetes"), provider, now=datetime.now(UTC))
        assert (v.outcome, v.error) == (Outcome.ERROR, "ProviderUnavailableError")
        assert v.summary.startswith(
            f"Prometheus query failed: cannot reach Prometheus at {server.url}"
        )


async def judge_two_windows(lab: Lab, name: str, target: str, mesh: str = "kubernetes") -> Verdict:
    """Two chained 10 s windows, as the controller chains them (each interval is capped)."""
    check = metric_check_from_spec(
        {"name": name, "interval": WINDOW, "compare": {"warmup": "0s"}}, path="m"
    )
    provider = lab.provider()
    now = datetime.now(UTC) - timedelta(seconds=1)
    first = await evaluate(check, ctx(mesh, target), provider, now=now - timedelta(seconds=10))
    return await evaluate(
        check, ctx(mesh, target), provider, now=now, previous=first.to_status(), last_step=False
    )


class TestStatisticalJudge:
    async def test_canary_with_more_errors_fails_against_its_primary(self, lab: Lab) -> None:
        v = await judge_two_windows(lab, "request-success-rate", "podinfo")
        assert v.outcome is Outcome.FAIL and v.conclusive, v.summary
        c = v.comparison
        assert c is not None
        assert c.canary_value == pytest.approx(100 * CANARY_ERR, abs=2.5)
        assert c.primary_value == pytest.approx(100 * PRIMARY_ERR, abs=1.0)
        assert c.canary_samples == pytest.approx(RPS * 20, rel=0.25)
        assert c.p_value <= 0.01

    async def test_equal_versions_pass(self, lab: Lab) -> None:
        v = await judge_two_windows(lab, "request-success-rate", "twin")
        assert v.outcome is Outcome.PASS, v.summary

    async def test_slower_canary_fails_on_latency_and_equal_twin_passes(self, lab: Lab) -> None:
        slow = await judge_two_windows(lab, "request-duration", "podinfo")
        assert slow.outcome is Outcome.FAIL, slow.summary
        assert slow.comparison is not None and slow.comparison.ratio is not None
        assert slow.comparison.ratio == pytest.approx(CANARY_MS / PRIMARY_MS, rel=0.3)
        same = await judge_two_windows(lab, "request-duration", "twin", mesh="istio")
        assert same.outcome is Outcome.PASS, same.summary

    async def test_the_first_window_is_a_warm_up_by_default(self, lab: Lab) -> None:
        check = metric_check_from_spec(
            {"name": "request-success-rate", "interval": WINDOW, "compare": {}}, path="m"
        )
        v = await evaluate(check, ctx("kubernetes"), lab.provider(), now=datetime.now(UTC))
        assert v.outcome is Outcome.INCONCLUSIVE and v.warming_up, v.summary
        assert "warming up (10s observed, not judged)" in v.summary
