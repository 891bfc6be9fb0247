"""The datadog provider against a loopback Datadog API (tests/vendors/datadog.py)."""

from __future__ import annotations

import math
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from analysis import (
    AnalysisSpecError,
    BadQueryError,
    HTTPStatusError,
    MetricCheck,
    MetricProvider,
    NoDataError,
    Outcome,
    ProviderConfig,
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
from analysis._datadog import DatadogProvider
from tests.vendors import Failure
from tests.vendors.datadog import API_KEY, APPLICATION_KEY, DatadogServer

AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
SECRETS = (API_KEY, APPLICATION_KEY)
CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="istio")


@pytest.fixture
async def server() -> AsyncIterator[DatadogServer]:
    srv = DatadogServer()
    await srv.start()
    yield srv
    await srv.close()


def config(
    server: DatadogServer,
    *,
    interval: str = "1m",
    timeout: float = 5.0,
    secret: dict[str, str] | None = None,
    address: str | None = None,
) -> ProviderConfig:
    spec = {**server.provider(), "secretRef": {"name": "datadog"}}
    if address is not None:
        spec["address"] = address
    return provider_config(
        parse_provider_spec(spec),
        secret=secret if secret is not None else server.secret_data(),
        interval=interval,
        timeout_seconds=timeout,
    )


def provider(server: DatadogServer, **kw: Any) -> MetricProvider:
    return make_provider(config(server, **kw))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_no_secret(exc: BaseException) -> None:
    for value in SECRETS:
        assert value not in str(exc)


class TestRequest:
    async def test_query_window_and_keys_follow_flagger(self, server: DatadogServer) -> None:
        query = server.query("podinfo", "test")
        assert await provider(server, interval="2m").run_query(query, at=AT) == 1.0
        seen = server.requests[-1]
        assert (seen.method, seen.path) == ("GET", "/api/v1/query")
        assert seen.param("query") == query
        end = int(AT.timestamp())
        assert (seen.param("from"), seen.param("to")) == (str(end - 10 * 120), str(end))
        assert seen.headers["DD-API-KEY"] == API_KEY
        assert seen.headers["DD-APPLICATION-KEY"] == APPLICATION_KEY

    async def test_window_ends_now_without_at(self, server: DatadogServer) -> None:
        before = math.floor(datetime.now(UTC).timestamp())
        await provider(server).run_query("avg:system.load.1{*}")
        after = math.floor(datetime.now(UTC).timestamp())
        end = int(server.requests[-1].param("to") or 0)
        assert before <= end <= after
        assert int(server.requests[-1].param("from") or 0) == end - 600

    async def test_spec_headers_are_sent_too(self, server: DatadogServer) -> None:
        spec = {
            **server.provider(),
            "secretRef": {"name": "datadog"},
            "headers": {"X-Team": ["payments"]},
        }
        cfg = provider_config(parse_provider_spec(spec), secret=server.secret_data())
        await make_provider(cfg).run_query("avg:system.load.1{*}")
        assert server.requests[-1].headers["X-Team"] == "payments"


class TestWhichPoint:
    async def test_the_oldest_point_is_the_value_not_the_incomplete_newest(
        self, server: DatadogServer
    ) -> None:
        server.points = [2.5, 3.0, 4.0, 0.1]
        assert await provider(server).run_query("q{*}") == 2.5

    async def test_null_buckets_are_skipped_not_read_as_zero(self, server: DatadogServer) -> None:
        server.points = [None, None, 7.25, 1.0]
        assert await provider(server).run_query("q{*}") == 7.25

    async def test_nan_buckets_are_skipped(self, server: DatadogServer) -> None:
        server.points = [math.nan, 4.0]
        assert await provider(server).run_query("q{*}") == 4.0

    async def test_the_first_series_counts_when_grouped(self, server: DatadogServer) -> None:
        server.points = [11.0, 12.0]
        server.more_series = [[99.0, 99.0]]
        assert await provider(server).run_query("q{*} by {pod}") == 11.0

    async def test_zero_is_a_value(self, server: DatadogServer) -> None:
        server.answer(0.0)
        assert await provider(server).run_query("q{*}") == 0.0


class TestNoData:
    async def test_no_series_is_no_data(self, server: DatadogServer) -> None:
        server.answer(None)
        with pytest.raises(NoDataError, match="no series"):
            await provider(server).run_query("q{*}")

    @pytest.mark.parametrize("points", [[None, None], [math.nan], []])
    async def test_only_empty_points_is_no_data(
        self, server: DatadogServer, points: list[float | None]
    ) -> None:
        server.points = points
        with pytest.raises(NoDataError):
            await provider(server).run_query("q{*}")


class TestErrors:
    @pytest.mark.parametrize("status", [401, 403])
    async def test_refused_credentials(self, server: DatadogServer, status: int) -> None:
        server.fail_with(Failure(status, {"errors": ["Forbidden"]}))
        with pytest.raises(UnauthorizedError, match=f"HTTP {status}.*Forbidden") as info:
            await provider(server).run_query("q{*}")
        assert_no_secret(info.value)

    async def test_a_wrong_key_is_refused_and_never_quoted(self, server: DatadogServer) -> None:
        wrong = {"datadog_api_key": "not-the-key-1234", "datadog_application_key": "nope-5678"}
        with pytest.raises(UnauthorizedError) as info:
            await provider(server, secret=wrong).run_query("q{*}")
        assert "not-the-key-1234" not in str(info.value) and "nope-5678" not in str(info.value)

    async def test_bad_query_carries_datadogs_message(self, server: DatadogServer) -> None:
        said = "Error parsing query: unable to parse sum:istio{: Rule 'scope_expr' didn't match"
        server.fail_with(Failure(400, {"errors": [said]}))
        with pytest.raises(BadQueryError, match="Rule 'scope_expr' didn't match") as info:
            await provider(server).run_query("sum:istio{")
        assert info.value.status_code == 400

    async def test_status_error_in_a_200_answer_is_a_bad_query(self, server: DatadogServer) -> None:
        server.fail_with(Failure(200, {"status": "error", "error": "unknown function foo"}))
        with pytest.raises(BadQueryError, match="unknown function foo"):
            await provider(server).run_query("foo(q{*})")

    @pytest.mark.parametrize("status", [429, 500, 503])
    async def test_rate_limit_and_server_errors(self, server: DatadogServer, status: int) -> None:
        server.fail_with(Failure(status, {"errors": ["Internal error"]}))
        with pytest.raises(HTTPStatusError) as info:
            await provider(server).run_query("q{*}")
        assert type(info.value) is HTTPStatusError and info.value.status_code == status
        assert_no_secret(info.value)

    async def test_slow_answer_times_out(self, server: DatadogServer) -> None:
        server.fail_with(Failure(200, delay=1.0))
        with pytest.raises(QueryTimeoutError, match=r"did not answer within 0\.1s"):
            await provider(server, timeout=0.1).run_query("q{*}")

    async def test_unreachable_address(self, server: DatadogServer) -> None:
        address = f"http://127.0.0.1:{closed_port()}"
        with pytest.raises(ProviderUnavailableError, match="cannot reach Datadog") as info:
            await provider(server, address=address).run_query("q{*}")
        assert_no_secret(info.value)

    @pytest.mark.parametrize(
        ("body", "content_type", "match"),
        [
            ("<html>bad gateway</html>", "text/html", "not JSON"),
            ({"series": "none"}, "application/json", "no 'series' list"),
            ([1, 2], "application/json", "not a JSON object"),
            ({"series": [{"scope": "*"}]}, "application/json", "without a 'pointlist'"),
            (
                {"series": [{"pointlist": [[1.0]]}]},
                "application/json",
                "not \\[timestamp, value\\]",
            ),
            ({"series": [{"pointlist": [[1.0, "7"]]}]}, "application/json", "non-numeric"),
        ],
    )
    async def test_garbage_is_a_query_error(
        self, server: DatadogServer, body: object, content_type: str, match: str
    ) -> None:
        server.fail_with(Failure(200, body, content_type=content_type))
        with pytest.raises(QueryError, match=match) as info:
            await provider(server).run_query("q{*}")
        assert_no_secret(info.value)

    async def test_the_loopback_api_rejects_a_request_without_query(
        self, server: DatadogServer
    ) -> None:
        headers = {"DD-API-KEY": API_KEY, "DD-APPLICATION-KEY": APPLICATION_KEY}
        async with httpx.AsyncClient() as client:
            answer = await client.get(
                f"{server.base_url}/api/v1/query", params={"from": "1", "to": "2"}, headers=headers
            )
        assert answer.status_code == 400
        assert answer.json() == {"errors": ["Missing required parameter 'query'"]}


class TestIsOnline:
    async def test_validates_the_api_key(self, server: DatadogServer) -> None:
        assert await provider(server).is_online() is True
        seen = server.requests[-1]
        assert (seen.path, seen.headers["DD-API-KEY"]) == ("/api/v1/validate", API_KEY)

    async def test_a_refused_key_is_offline(self, server: DatadogServer) -> None:
        wrong = {"datadog_api_key": "wrong-key-1234", "datadog_application_key": "x-app-5678"}
        assert await provider(server, secret=wrong).is_online() is False

    async def test_unreachable_is_offline(self, server: DatadogServer) -> None:
        assert (
            await provider(server, address=f"http://127.0.0.1:{closed_port()}").is_online() is False
        )


class TestEvaluate:
    def check(self, server: DatadogServer) -> MetricCheck:
        return metric_check_from_spec(
            {
                "name": "404s percentage",
                "templateRef": {"name": "not-found-percentage", "namespace": "istio-system"},
                "thresholdRange": {"max": 5},
                "interval": "1m",
            },
            path="spec.analysis.metrics[0]",
            template_query=server.query("{{ target }}", "{{ namespace }}"),
            template_name="not-found-percentage",
        )

    async def test_pass_and_fail_on_the_threshold(self, server: DatadogServer) -> None:
        check = self.check(server)
        server.answer(1.5)
        good = await evaluate(check, CTX, provider(server), now=AT)
        assert (good.outcome, good.value) == (Outcome.PASS, 1.5)
        assert server.requests[-1].param("query") == server.query("podinfo", "test")
        server.answer(12.0)
        bad = await evaluate(check, CTX, provider(server), now=AT)
        assert (bad.outcome, bad.value) == (Outcome.FAIL, 12.0)

    async def test_no_series_is_a_no_data_verdict(self, server: DatadogServer) -> None:
        server.answer(None)
        v = await evaluate(self.check(server), CTX, provider(server), now=AT)
        assert v.outcome is Outcome.NODATA
        assert v.summary.startswith("no values found for custom metric: 404s percentage:")

    async def test_refused_keys_are_an_error_verdict(self, server: DatadogServer) -> None:
        server.fail_with(Failure(403, {"errors": ["Forbidden"]}))
        v = await evaluate(self.check(server), CTX, provider(server), now=AT)
        assert (v.outcome, v.error) == (Outcome.ERROR, "UnauthorizedError")
        assert "Datadog" in v.summary and "refused the credentials" in v.summary
        assert API_KEY not in v.summary


class TestFlaggerManifests:
    """The MetricTemplate and Secret of Flagger's docs (usage/metrics.md, "Datadog")."""

    TEMPLATE_PROVIDER = {
        "type": "datadog",
        "address": "https://api.datadoghq.com",
        "secretRef": {"name": "datadog"},
    }
    SECRET = {
        "datadog_api_key": "your-datadog-api-key",
        "datadog_application_key": "your-datadog-application-key",
    }

    def test_the_documented_template_and_secret_make_a_provider(self) -> None:
        cfg = provider_config(parse_provider_spec(self.TEMPLATE_PROVIDER), secret=self.SECRET)
        assert cfg.address == "https://api.datadoghq.com"
        assert isinstance(make_provider(cfg), DatadogProvider)

    def test_the_address_defaults_to_datadogs_us1_api(self) -> None:
        spec = {k: v for k, v in self.TEMPLATE_PROVIDER.items() if k != "address"}
        cfg = provider_config(parse_provider_spec(spec), secret=self.SECRET)
        assert cfg.address == "https://api.datadoghq.com"

    @pytest.mark.parametrize("key", ["datadog_api_key", "datadog_application_key"])
    def test_a_secret_without_a_key_names_secret_ref_and_the_key(self, key: str) -> None:
        secret = {k: v for k, v in self.SECRET.items() if k != key}
        with pytest.raises(AnalysisSpecError) as info:
            provider_config(parse_provider_spec(self.TEMPLATE_PROVIDER), secret=secret)
        assert info.value.path == "spec.provider.secretRef"
        assert key in str(info.value)

    def test_a_config_without_keys_is_refused_by_the_provider(self) -> None:
        with pytest.raises(AnalysisSpecError, match="datadog_application_key") as info:
            DatadogProvider(
                ProviderConfig(type="datadog", secret=(("datadog_api_key", "abcd1234"),))
            )
        assert info.value.path == "spec.provider.secretRef"
