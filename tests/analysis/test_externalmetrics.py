"""The externalmetrics provider, reading a loopback adapter through the sandbox's API server.

The adapter (tests/vendors/externalmetrics.py) is registered with an APIService, as in a real
cluster, and read with the controller's real :class:`KubeClient` through
:class:`canary.adapters.kube_reader.KubePathReader`; Flagger's ``address`` mode sends the same
requests to the adapter directly.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from analysis import (
    BadQueryError,
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
from analysis import _externalmetrics as externalmetrics
from analysis._externalmetrics import (
    ExternalMetricQuery,
    ExternalMetricsProvider,
    parse_external_query,
    parse_quantity,
)
from canary.adapters.cache import CachedKube
from canary.adapters.kube import KubeClient, connect
from canary.adapters.kube_reader import KubePathReader, kube_reader_for
from kubesandbox import Sandbox
from tests.vendors import Failure
from tests.vendors.externalmetrics import METRIC, TOKEN, ExternalMetricsAdapter, status

AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="istio")
METRIC_PATH = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/test/{METRIC}"


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    sb = await Sandbox.start(simulate_workloads=False)
    yield sb
    await sb.stop()


@pytest.fixture
async def kube(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[KubeClient]:
    client = await connect(str(sandbox.write_kubeconfig(tmp_path / "kubeconfig")))
    yield client
    await client.aclose()


@pytest.fixture
async def adapter(sandbox: Sandbox) -> AsyncIterator[ExternalMetricsAdapter]:
    server = ExternalMetricsAdapter()
    await server.start()
    for obj in server.registration():
        await sandbox.apply_manifest(obj)
    yield server
    await server.close()


def provider(
    kube: KubeClient, adapter: ExternalMetricsAdapter, *, timeout: float = 5.0
) -> MetricProvider:
    cfg = provider_config(parse_provider_spec(adapter.provider()), timeout_seconds=timeout)
    return make_provider(cfg, kube=KubePathReader(kube))


def direct(
    kube: KubeClient, address: str, *, token: str | None = TOKEN, timeout: float = 5.0
) -> MetricProvider:
    """Flagger's address mode: the adapter itself, with the Secret's token."""
    spec = {"type": "externalmetrics", "address": address, "secretRef": {"name": "em"}}
    secret = {"token": token} if token else {}
    cfg = provider_config(parse_provider_spec(spec), secret=secret, timeout_seconds=timeout)
    return make_provider(cfg, kube=KubePathReader(kube))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestQuantities:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("42", "42"),
            ("0", "0"),
            ("-3", "-3"),
            ("+7", "7"),
            ("1.5", "1.5"),
            (".5", "0.5"),
            ("2.", "2"),
            ("12345n", "0.000012345"),
            ("250u", "0.000250"),
            ("500m", "0.5"),
            ("1500m", "1.5"),
            ("1.5k", "1500"),
            ("3M", "3000000"),
            ("2G", "2000000000"),
            ("1T", "1000000000000"),
            ("1P", "1000000000000000"),
            ("1E", "1000000000000000000"),
            ("1Ki", "1024"),
            ("2Mi", "2097152"),
            ("1.5Gi", "1610612736"),
            ("1Ti", str(1024**4)),
            ("1Pi", str(1024**5)),
            ("1Ei", str(1024**6)),
            ("1e3", "1000"),
            ("1E3", "1000"),
            ("25e-2", "0.25"),
            ("1.5E+2", "150"),
        ],
    )
    def test_every_suffix_is_exact(self, text: str, expected: str) -> None:
        assert parse_quantity(text) == Decimal(expected)

    @pytest.mark.parametrize(
        "text",
        ["", "m", "1 m", " 1", "1mi", "1KI", "1K", "1e", "1e1.5", "--1", "0x10", "NaN", "1,5"],
    )
    def test_anything_else_is_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="not a Kubernetes quantity"):
            parse_quantity(text)


class TestQueries:
    def test_flaggers_form_with_a_namespace_and_a_url_encoded_selector(self) -> None:
        parsed = parse_external_query(
            "prod/queue_depth?labelSelector=app%3Dweb%2Ctier%20in%20(a%2Cb)"
        )
        assert parsed == ExternalMetricQuery("prod", "queue_depth", "app=web,tier in (a,b)")

    @pytest.mark.parametrize("query", ["queue_depth", "/queue_depth", " queue_depth\n"])
    def test_the_namespace_defaults_to_default(self, query: str) -> None:
        assert parse_external_query(query) == ExternalMetricQuery("default", "queue_depth")

    @pytest.mark.parametrize(
        ("query", "problem"),
        [("a/b/c", "too many '/'"), ("ns/", "no metric name"), ("?labelSelector=a", "no metric")],
    )
    def test_malformed_queries_are_bad_queries(self, query: str, problem: str) -> None:
        with pytest.raises(BadQueryError, match=problem):
            parse_external_query(query)


class TestThroughTheAPIServer:
    async def test_the_request_follows_flaggers_query(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        adapter.answer(0.5)
        query = adapter.query("podinfo", "test")
        assert await provider(kube, adapter).run_query(query, at=AT) == 0.5
        seen = adapter.requests[-1]
        assert (seen.method, seen.path) == ("GET", METRIC_PATH)
        assert seen.param("labelSelector") == "app=podinfo"
        assert seen.headers.get("X-Remote-User") == "admin"  # the controller's own identity

    async def test_the_quantity_is_read_exactly(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        adapter.answer_quantity("1.5Ki")
        assert await provider(kube, adapter).run_query(f"test/{METRIC}") == 1536.0
        adapter.answer_quantity("1e-3")
        assert await provider(kube, adapter).run_query(f"test/{METRIC}") == 0.001

    async def test_the_first_item_is_the_value(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        adapter.answer(2)
        adapter.more_values = ["900", "1k"]
        assert await provider(kube, adapter).run_query(f"test/{METRIC}") == 2.0

    async def test_without_a_namespace_the_default_one_is_asked(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        await provider(kube, adapter).run_query(METRIC)
        assert adapter.requests[-1].path.endswith(f"/namespaces/default/{METRIC}")
        assert adapter.requests[-1].param("labelSelector") is None

    async def test_no_items_is_no_data(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        adapter.answer(None)
        with pytest.raises(NoDataError, match=f"no value for {METRIC} in namespace test"):
            await provider(kube, adapter).run_query(adapter.query("podinfo", "test"))

    async def test_a_selector_no_series_matches_is_no_data(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        adapter.metric_labels = {"app": "other"}
        with pytest.raises(NoDataError):
            await provider(kube, adapter).run_query(adapter.query("podinfo", "test"))

    async def test_an_unknown_metric_is_a_bad_query_naming_it(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        with pytest.raises(BadQueryError, match="no metric nope in namespace test") as caught:
            await provider(kube, adapter).run_query("test/nope")
        assert "v1beta1.external.metrics.k8s.io" in str(caught.value)

    async def test_no_registered_adapter_is_a_bad_query_too(
        self, sandbox: Sandbox, kube: KubeClient
    ) -> None:
        cfg = provider_config(parse_provider_spec({"type": "externalmetrics"}))
        with pytest.raises(BadQueryError, match="HTTP 404"):
            await make_provider(cfg, kube=KubePathReader(kube)).run_query(METRIC)

    async def test_a_selector_the_adapter_rejects_is_a_bad_query_with_its_message(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        with pytest.raises(BadQueryError, match="unable to parse requirement") as caught:
            await provider(kube, adapter).run_query(f"test/{METRIC}?labelSelector=app%20in%20(a")
        assert caught.value.status_code == 400

    @pytest.mark.parametrize("code", [401, 403])
    async def test_a_refusal_is_unauthorized(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter, code: int
    ) -> None:
        adapter.fail_with(Failure(code, status(code, "Forbidden", "no access to this metric").text))
        with pytest.raises(UnauthorizedError, match="no access to this metric") as caught:
            await provider(kube, adapter).run_query(f"test/{METRIC}")
        assert caught.value.status_code == code
        assert "service account" in str(caught.value)

    @pytest.mark.parametrize("code", [429, 500, 503])
    async def test_a_failing_adapter_is_unavailable(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter, code: int
    ) -> None:
        adapter.fail_with(Failure(code, status(code, "InternalError", "backend exploded").text))
        with pytest.raises(ProviderUnavailableError, match="backend exploded"):
            await provider(kube, adapter).run_query(f"test/{METRIC}")

    async def test_an_adapter_that_is_down_is_unavailable(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        await adapter.close()
        with pytest.raises(ProviderUnavailableError, match="HTTP 503") as caught:
            await provider(kube, adapter).run_query(f"test/{METRIC}")
        assert "unable to handle the request" in str(caught.value)

    async def test_a_slow_adapter_is_a_timeout(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        adapter.fail_with(Failure(status=200, delay=2.0))
        with pytest.raises(QueryTimeoutError, match=r"within 0\.2s"):
            await provider(kube, adapter, timeout=0.2).run_query(f"test/{METRIC}")

    async def test_an_unreachable_api_server_is_unavailable(
        self, adapter: ExternalMetricsAdapter, tmp_path: Path
    ) -> None:
        path = tmp_path / "dead-kubeconfig"  # a kubeconfig of a server that is not there
        path.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
            f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{closed_port()}'}}}}]\n"
            "users: [{name: u, user: {token: t0k3n}}]\n"
            "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
        )
        client = await connect(str(path), request_timeout=5.0)
        try:
            with pytest.raises(ProviderUnavailableError, match="could not serve"):
                await provider(client, adapter).run_query(f"test/{METRIC}")
        finally:
            await client.aclose()

    @pytest.mark.parametrize(
        ("body", "content_type", "problem"),
        [
            ("<html>oops</html>", "text/html", "invalid JSON"),
            ('{"items": "many"}', "application/json", "without an ExternalMetricValueList"),
            ('{"items": [{"value": 3}]}', "application/json", "not a quantity"),
            ('{"items": [{"value": "3 apples"}]}', "application/json", "not a Kubernetes quantity"),
        ],
    )
    async def test_garbage_is_a_query_error(
        self,
        kube: KubeClient,
        adapter: ExternalMetricsAdapter,
        body: str,
        content_type: str,
        problem: str,
    ) -> None:
        adapter.fail_with(Failure(200, body, content_type=content_type))
        with pytest.raises(QueryError, match=problem):
            await provider(kube, adapter).run_query(f"test/{METRIC}")

    async def test_is_online_asks_the_adapters_discovery(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        assert await provider(kube, adapter).is_online() is True
        assert adapter.requests[-1].path == "/apis/external.metrics.k8s.io/v1beta1"
        await adapter.close()
        assert await provider(kube, adapter).is_online() is False


class TestAddressMode:
    async def test_the_adapter_is_asked_directly_with_the_secrets_token(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        adapter.answer(7.5)
        value = await direct(kube, adapter.base_url).run_query(adapter.query("podinfo", "test"))
        assert value == 7.5
        seen = adapter.requests[-1]
        assert seen.path == METRIC_PATH and seen.param("labelSelector") == "app=podinfo"
        assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
        assert "X-Remote-User" not in seen.headers

    async def test_a_wrong_token_is_unauthorized_without_the_token_in_the_message(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        wrong = "em-wrong-token-0123456789abcdef"
        with pytest.raises(UnauthorizedError) as caught:
            await direct(kube, adapter.base_url, token=wrong).run_query(f"test/{METRIC}")
        assert wrong not in str(caught.value) and TOKEN not in str(caught.value)

    async def test_the_pods_own_token_goes_only_to_the_clusters_api_server(
        self,
        kube: KubeClient,
        adapter: ExternalMetricsAdapter,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Anyone who can write a MetricTemplate names its address: the controller's own
        service-account token must not follow it there."""
        pod_token = tmp_path / "token"
        pod_token.write_text("controller-service-account-token-0123456789")
        monkeypatch.setattr(externalmetrics, "SERVICE_ACCOUNT_TOKEN", pod_token)
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
        with pytest.raises(UnauthorizedError):  # this adapter wants a token: none was sent
            await direct(kube, adapter.base_url, token=None).run_query(f"test/{METRIC}")
        assert "Authorization" not in adapter.requests[-1].headers

    async def test_an_unknown_metric_is_a_bad_query(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        with pytest.raises(BadQueryError, match="no metric nope"):
            await direct(kube, adapter.base_url).run_query("test/nope")

    async def test_an_unreachable_address_is_unavailable(self, kube: KubeClient) -> None:
        address = f"http://127.0.0.1:{closed_port()}"
        with pytest.raises(ProviderUnavailableError) as caught:
            await direct(kube, address).run_query(f"test/{METRIC}")
        assert TOKEN not in str(caught.value)


class TestWiring:
    def test_without_a_kubernetes_client_there_is_no_provider(self) -> None:
        cfg = provider_config(parse_provider_spec({"type": "externalmetrics"}))
        with pytest.raises(ProviderUnavailableError, match="no client was given"):
            make_provider(cfg)

    async def test_the_controllers_cached_client_is_read_through_its_kube_client(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        reader = kube_reader_for(CachedKube(kube))
        assert isinstance(reader, KubePathReader) and reader.client is kube
        assert kube_reader_for(object()) is None
        cfg = provider_config(parse_provider_spec(adapter.provider()))
        made = make_provider(cfg, kube=reader)
        assert isinstance(made, ExternalMetricsProvider)
        adapter.answer(4)
        assert await made.run_query(f"test/{METRIC}") == 4.0


class TestEvaluate:
    def check(self, adapter: ExternalMetricsAdapter) -> MetricCheck:
        return metric_check_from_spec(
            {
                "name": "error percentage",
                "templateRef": {"name": "error-percentage", "namespace": "istio-system"},
                "thresholdRange": {"max": 5},
                "interval": "1m",
            },
            path="spec.analysis.metrics[0]",
            template_query="{{ namespace }}/" + METRIC + "?labelSelector=app%3D{{ target }}",
            template_name="error-percentage",
        )

    async def test_pass_and_fail_on_the_threshold(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        check = self.check(adapter)
        adapter.answer(1.5)
        good = await evaluate(check, CTX, provider(kube, adapter), now=AT)
        assert (good.outcome, good.value) == (Outcome.PASS, 1.5)
        assert adapter.requests[-1].param("labelSelector") == "app=podinfo"
        adapter.answer_quantity("12")
        bad = await evaluate(check, CTX, provider(kube, adapter), now=AT)
        assert (bad.outcome, bad.value) == (Outcome.FAIL, 12.0)

    async def test_no_items_is_a_no_data_verdict(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        adapter.answer(None)
        v = await evaluate(self.check(adapter), CTX, provider(kube, adapter), now=AT)
        assert v.outcome is Outcome.NODATA
        assert v.summary.startswith("no values found for custom metric: error percentage:")

    async def test_an_adapter_that_is_down_is_an_error_verdict(
        self, kube: KubeClient, adapter: ExternalMetricsAdapter
    ) -> None:
        await adapter.close()
        v = await evaluate(self.check(adapter), CTX, provider(kube, adapter), now=AT)
        assert (v.outcome, v.error) == (Outcome.ERROR, "ProviderUnavailableError")
        assert "unable to handle the request" in v.summary
