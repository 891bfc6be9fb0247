"""The keptn provider, reading KeptnMetrics from the sandbox's API server.

Keptn's CRD and a KeptnMetric are applied to the sandbox (tests/vendors/keptn.py), the test
plays Keptn's metrics operator by writing the status, and the provider reads it with the
controller's real :class:`KubeClient` through :class:`canary.adapters.kube_reader.KubePathReader`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from analysis import (
    BadQueryError,
    HTTPStatusError,
    MetricCheck,
    MetricProvider,
    NoDataError,
    Outcome,
    ProviderUnavailableError,
    QueryContext,
    QueryError,
    QueryTimeoutError,
    UnauthorizedError,
    evaluate,
    make_provider,
    metric_check_from_spec,
    parse_provider_spec,
    provider_config,
)
from analysis._keptn import KeptnProvider, KeptnQuery, parse_keptn_query
from canary.adapters.kube import KubeClient, connect
from canary.adapters.kube_reader import KubePathReader, translate
from canary.ports import Conflict, Forbidden, Invalid, Unavailable
from kubesandbox import Sandbox
from tests.vendors.keptn import GROUP, KeptnMetrics

AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
NAMESPACE = "test"
CTX = QueryContext(name="podinfo", namespace=NAMESPACE, target="podinfo", provider="istio")


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    sb = await Sandbox.start(simulate_workloads=False)
    await sb.apply_manifest(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    )
    yield sb
    await sb.stop()


@pytest.fixture
async def kube(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[KubeClient]:
    client = await connect(str(sandbox.write_kubeconfig(tmp_path / "kubeconfig")))
    yield client
    await client.aclose()


@pytest.fixture
async def keptn(sandbox: Sandbox) -> KeptnMetrics:
    metrics = KeptnMetrics()
    for obj in metrics.manifests(NAMESPACE):
        await sandbox.apply_manifest(obj)
    return metrics


def provider(kube: KubeClient, *, timeout: float = 5.0) -> MetricProvider:
    cfg = provider_config(parse_provider_spec({"type": "keptn"}), timeout_seconds=timeout)
    return make_provider(cfg, kube=KubePathReader(kube))


class TestQueries:
    def test_a_keptnmetric_query_names_the_object_flagger_reads(self) -> None:
        parsed = parse_keptn_query("keptnmetric/my-namespace/response-time")
        assert parsed == KeptnQuery("keptnmetrics", "my-namespace", "response-time")
        assert parsed.path == (
            f"/apis/{GROUP}/v1beta1/namespaces/my-namespace/keptnmetrics/response-time"
        )

    def test_flaggers_documented_example_ignores_timeframe_and_arguments(self) -> None:
        parsed = parse_keptn_query("keptnmetric/my-namespace/response-time/2m/reporter=destination")
        assert (parsed.resource, parsed.namespace, parsed.name) == (
            "keptnmetrics",
            "my-namespace",
            "response-time",
        )

    def test_plural_upper_case_and_surrounding_space_are_accepted_like_flagger(self) -> None:
        parsed = parse_keptn_query("  KeptnMetrics/Test/Response-Time\n")
        assert (parsed.namespace, parsed.name) == ("test", "response-time")

    def test_an_analysis_query_keeps_timeframe_and_arguments(self) -> None:
        parsed = parse_keptn_query("analysis/ns/my-definition/5m/a=1;b=2;broken")
        assert parsed == KeptnQuery(
            "analyses", "ns", "my-definition", "5m", (("a", "1"), ("b", "2"))
        )
        assert parse_keptn_query("analysis/ns/def").timeframe == "1m"

    @pytest.mark.parametrize(
        ("query", "problem"),
        [
            ("keptnmetric/ns", "is not <keptnmetric|analysis>"),
            ("prometheus/ns/name", "expected 'keptnmetric' or 'analysis'"),
            ("keptnmetric//name", "empty namespace or name"),
        ],
    )
    def test_malformed_queries_are_bad_queries(self, query: str, problem: str) -> None:
        with pytest.raises(BadQueryError, match=problem):
            parse_keptn_query(query)


class TestKeptnMetric:
    async def test_the_status_value_is_the_metric(
        self, kube: KubeClient, keptn: KeptnMetrics
    ) -> None:
        await keptn.set_value(kube, NAMESPACE, 0.42)
        assert await provider(kube).run_query(keptn.query("podinfo", NAMESPACE), at=AT) == 0.42
        await keptn.set_value(kube, NAMESPACE, "1.5e3")
        assert await provider(kube).run_query(keptn.query("podinfo", NAMESPACE)) == 1500.0

    async def test_zero_and_negative_values_are_values(
        self, kube: KubeClient, keptn: KeptnMetrics
    ) -> None:
        await keptn.set_value(kube, NAMESPACE, "0")
        assert await provider(kube).run_query(keptn.query("podinfo", NAMESPACE)) == 0.0
        await keptn.set_value(kube, NAMESPACE, "-2.5")
        assert await provider(kube).run_query(keptn.query("podinfo", NAMESPACE)) == -2.5

    async def test_a_value_not_fetched_yet_is_no_data(
        self, kube: KubeClient, keptn: KeptnMetrics
    ) -> None:
        with pytest.raises(NoDataError, match="not fetched it yet") as caught:
            await provider(kube).run_query(keptn.query("podinfo", NAMESPACE))
        assert f"{NAMESPACE}/{keptn.name}" in str(caught.value)

    async def test_keptns_fetch_error_is_quoted(
        self, kube: KubeClient, keptn: KeptnMetrics
    ) -> None:
        await keptn.set_error(kube, NAMESPACE, "prometheus: connection refused")
        with pytest.raises(QueryError, match="prometheus: connection refused") as caught:
            await provider(kube).run_query(keptn.query("podinfo", NAMESPACE))
        assert not isinstance(caught.value, NoDataError)

    @pytest.mark.parametrize("value", ["fast", "1,5", "0x1A", "12ms"])
    async def test_a_value_that_is_not_a_number_is_a_query_error(
        self, kube: KubeClient, keptn: KeptnMetrics, value: str
    ) -> None:
        await keptn.set_value(kube, NAMESPACE, value)
        with pytest.raises(QueryError, match="not a number") as caught:
            await provider(kube).run_query(keptn.query("podinfo", NAMESPACE))
        assert not isinstance(caught.value, NoDataError)

    async def test_nan_is_no_data(self, kube: KubeClient, keptn: KeptnMetrics) -> None:
        await keptn.set_value(kube, NAMESPACE, "NaN")
        with pytest.raises(NoDataError, match="NaN"):
            await provider(kube).run_query(keptn.query("podinfo", NAMESPACE))

    async def test_a_missing_keptnmetric_is_a_bad_query_naming_it(
        self, kube: KubeClient, keptn: KeptnMetrics
    ) -> None:
        with pytest.raises(BadQueryError, match=f"KeptnMetric {NAMESPACE}/latency not found"):
            await provider(kube).run_query(f"keptnmetric/{NAMESPACE}/latency")

    async def test_without_keptn_installed_the_metric_is_not_found(
        self, sandbox: Sandbox, kube: KubeClient
    ) -> None:
        with pytest.raises(BadQueryError, match="metrics operator is installed"):
            await provider(kube).run_query(f"keptnmetric/{NAMESPACE}/response-time")

    async def test_an_analysis_query_is_refused_with_the_way_out(
        self, kube: KubeClient, keptn: KeptnMetrics
    ) -> None:
        with pytest.raises(BadQueryError, match="keptnmetric/<namespace>/<name>"):
            await provider(kube).run_query(f"analysis/{NAMESPACE}/my-definition/2m")

    async def test_is_online_when_keptns_api_is_served(
        self, sandbox: Sandbox, kube: KubeClient
    ) -> None:
        assert await provider(kube).is_online() is False
        for obj in KeptnMetrics().manifests(NAMESPACE):
            await sandbox.apply_manifest(obj)
        assert await provider(kube).is_online() is True

    async def test_an_unreachable_api_server_is_unavailable(
        self, sandbox: Sandbox, kube: KubeClient
    ) -> None:
        await sandbox.stop()
        with pytest.raises(ProviderUnavailableError):
            await provider(kube).run_query(f"keptnmetric/{NAMESPACE}/response-time")

    async def test_without_a_kubernetes_client_there_is_no_provider(self) -> None:
        cfg = provider_config(parse_provider_spec({"type": "keptn"}))
        with pytest.raises(ProviderUnavailableError, match="no client was given"):
            make_provider(cfg)

    async def test_the_reader_is_bounded_by_the_providers_timeout(self) -> None:
        class Stalled:
            async def get_path(self, path: str, params: object = None) -> None:
                await asyncio.Event().wait()  # never answers

        cfg = provider_config(parse_provider_spec({"type": "keptn"}), timeout_seconds=0.05)
        stalled = KeptnProvider(cfg, kube=Stalled())
        with pytest.raises(QueryTimeoutError, match="KeptnMetric test/x"):
            await stalled.run_query("keptnmetric/test/x")


class TestReaderErrors:
    """How the reader words the client's errors (kube_reader.translate)."""

    def test_forbidden_is_unauthorized_and_says_what_to_grant(self) -> None:
        error = translate(Forbidden("keptnmetrics is forbidden", status=403), "/apis/x")
        assert isinstance(error, UnauthorizedError) and error.status_code == 403
        assert "keptnmetrics is forbidden" in str(error) and "service account" in str(error)

    def test_invalid_is_a_bad_query(self) -> None:
        error = translate(Invalid("bad selector", status=400), "/apis/x")
        assert isinstance(error, BadQueryError) and error.status_code == 400

    def test_a_timeout_is_a_timeout(self) -> None:
        try:
            raise Unavailable("GET /apis/x failed: TimeoutError()") from TimeoutError()
        except Unavailable as exc:
            error = translate(exc, "/apis/x")
        assert isinstance(error, QueryTimeoutError)

    def test_unavailable_keeps_the_status(self) -> None:
        error = translate(Unavailable("down", status=503), "/apis/x")
        assert type(error) is ProviderUnavailableError and "HTTP 503" in str(error)

    def test_anything_else_is_an_http_status_error(self) -> None:
        error = translate(Conflict("gone", status=410), "/apis/x")
        assert type(error) is HTTPStatusError and error.status_code == 410


class TestEvaluate:
    def check(self, keptn: KeptnMetrics) -> MetricCheck:
        return metric_check_from_spec(
            {
                "name": "response time",
                "templateRef": {"name": "response-time", "namespace": "istio-system"},
                "thresholdRange": {"max": 0.5},
                "interval": "1m",
            },
            path="spec.analysis.metrics[0]",
            template_query="keptnmetric/{{ namespace }}/" + keptn.name,
            template_name="response-time",
        )

    async def test_pass_and_fail_on_the_threshold(
        self, kube: KubeClient, keptn: KeptnMetrics
    ) -> None:
        check = self.check(keptn)
        await keptn.set_value(kube, NAMESPACE, 0.2)
        good = await evaluate(check, CTX, provider(kube), now=AT)
        assert (good.outcome, good.value) == (Outcome.PASS, 0.2)
        await keptn.set_value(kube, NAMESPACE, 0.9)
        bad = await evaluate(check, CTX, provider(kube), now=AT)
        assert (bad.outcome, bad.value) == (Outcome.FAIL, 0.9)

    async def test_a_value_not_fetched_yet_is_a_no_data_verdict(
        self, kube: KubeClient, keptn: KeptnMetrics
    ) -> None:
        v = await evaluate(self.check(keptn), CTX, provider(kube), now=AT)
        assert v.outcome is Outcome.NODATA
        assert v.summary.startswith("no values found for custom metric: response time:")
        assert "not fetched it yet" in v.summary

    async def test_a_missing_keptnmetric_is_an_error_verdict(
        self, sandbox: Sandbox, kube: KubeClient
    ) -> None:
        v = await evaluate(self.check(KeptnMetrics()), CTX, provider(kube), now=AT)
        assert (v.outcome, v.error) == (Outcome.ERROR, "BadQueryError")
        assert f"KeptnMetric {NAMESPACE}/response-time not found" in v.summary
