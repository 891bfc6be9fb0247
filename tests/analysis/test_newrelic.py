"""The newrelic provider against a loopback New Relic Insights query API (tests/vendors/newrelic.py)."""

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
    MultipleSeriesError,
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
from analysis._newrelic import NewRelicProvider
from tests.vendors import Failure
from tests.vendors.newrelic import ACCOUNT_ID, QUERY_KEY, NewRelicServer

AT = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="nginx")
QUERY = "SELECT count(*) FROM Transaction WHERE appName = 'podinfo'"


@pytest.fixture
async def server() -> AsyncIterator[NewRelicServer]:
    srv = NewRelicServer()
    await srv.start()
    yield srv
    await srv.close()


def config(
    server: NewRelicServer,
    *,
    interval: str = "1m",
    timeout: float = 5.0,
    secret: dict[str, str] | None = None,
    address: str | None = None,
) -> ProviderConfig:
    spec = {**server.provider(), "secretRef": {"name": "newrelic"}}
    if address is not None:
        spec["address"] = address
    return provider_config(
        parse_provider_spec(spec),
        secret=secret if secret is not None else server.secret_data(),
        interval=interval,
        timeout_seconds=timeout,
    )


def provider(server: NewRelicServer, **kw: Any) -> MetricProvider:
    return make_provider(config(server, **kw))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_no_secret(exc: BaseException) -> None:
    assert QUERY_KEY not in str(exc)
    assert ACCOUNT_ID not in str(exc)


class TestRequest:
    async def test_nrql_gets_flaggers_since_clause_and_the_query_key(
        self, server: NewRelicServer
    ) -> None:
        query = server.query("podinfo", "test")
        assert await provider(server, interval="2m").run_query(query) == 1.0
        seen = server.requests[-1]
        assert (seen.method, seen.path) == ("GET", f"/v1/accounts/{ACCOUNT_ID}/query")
        assert seen.param("nrql") == query.strip() + " SINCE 120 seconds ago"
        assert seen.headers["X-Query-Key"] == QUERY_KEY

    async def test_a_past_tick_reads_an_absolute_window_of_one_interval(
        self, server: NewRelicServer
    ) -> None:
        await provider(server, interval="5m").run_query(QUERY, at=AT)
        end_ms = int(AT.timestamp()) * 1000
        assert (
            server.requests[-1].param("nrql") == f"{QUERY} SINCE {end_ms - 300_000} UNTIL {end_ms}"
        )


class TestValue:
    async def test_the_result_of_an_arithmetic_select(self, server: NewRelicServer) -> None:
        server.answer(2.75)
        assert await provider(server).run_query(server.query("podinfo", "test")) == 2.75

    @pytest.mark.parametrize("key", ["count", "average", "latest"])
    async def test_a_bare_aggregate_is_read_too(self, server: NewRelicServer, key: str) -> None:
        server.result_key = key
        server.answer(42.0)
        assert await provider(server).run_query(QUERY) == 42.0

    async def test_a_single_percentile(self, server: NewRelicServer) -> None:
        server.results = [{"percentiles": {"95": 0.31}}]
        assert await provider(server).run_query(QUERY) == 0.31

    async def test_zero_is_a_value(self, server: NewRelicServer) -> None:
        server.answer(0)
        assert await provider(server).run_query(QUERY) == 0.0

    async def test_null_is_no_data(self, server: NewRelicServer) -> None:
        server.answer(None)
        with pytest.raises(NoDataError, match="null"):
            await provider(server).run_query(QUERY)

    async def test_nan_is_no_data(self, server: NewRelicServer) -> None:
        server.answer(math.nan)
        with pytest.raises(NoDataError, match="NaN"):
            await provider(server).run_query(QUERY)

    async def test_no_result_is_no_data(self, server: NewRelicServer) -> None:
        server.results = []
        with pytest.raises(NoDataError, match="no result"):
            await provider(server).run_query(QUERY)

    async def test_several_results_are_an_error(self, server: NewRelicServer) -> None:
        server.results = [{"count": 3}, {"average": 0.2}]
        with pytest.raises(MultipleSeriesError, match="2 results") as info:
            await provider(server).run_query("SELECT count(*), average(duration) FROM Transaction")
        assert info.value.series == 2

    async def test_facets_are_not_one_number(self, server: NewRelicServer) -> None:
        server.fail_with(Failure(200, {"facets": [{"name": "a", "results": [{"count": 1}]}]}))
        with pytest.raises(QueryError, match="FACET"):
            await provider(server).run_query(QUERY + " FACET appName")


class TestErrors:
    async def test_a_wrong_key_is_refused_and_never_quoted(self, server: NewRelicServer) -> None:
        secret = {"newrelic_account_id": ACCOUNT_ID, "newrelic_query_key": "NRIQ-wrong-key-0000"}
        with pytest.raises(UnauthorizedError, match=r"HTTP 401.*Invalid query key") as info:
            await provider(server, secret=secret).run_query(QUERY)
        assert "NRIQ-wrong-key-0000" not in str(info.value)

    @pytest.mark.parametrize("status", [401, 403])
    async def test_refused_credentials(self, server: NewRelicServer, status: int) -> None:
        server.fail_with(Failure(status, {"error": f"Query key {QUERY_KEY} is not allowed"}))
        with pytest.raises(UnauthorizedError, match=f"HTTP {status}") as info:
            await provider(server).run_query(QUERY)
        assert info.value.status_code == status
        assert_no_secret(info.value)

    async def test_bad_nrql_carries_new_relics_message(self, server: NewRelicServer) -> None:
        with pytest.raises(BadQueryError, match="NRQL Syntax Error") as info:
            await provider(server).run_query("SELEKT count(*) FROM Transaction")
        assert info.value.status_code == 400

    @pytest.mark.parametrize("status", [429, 500, 503])
    async def test_rate_limit_and_server_errors(self, server: NewRelicServer, status: int) -> None:
        server.fail_with(Failure(status, {"error": "Internal Server Error"}))
        with pytest.raises(HTTPStatusError) as info:
            await provider(server).run_query(QUERY)
        assert type(info.value) is HTTPStatusError and info.value.status_code == status
        assert_no_secret(info.value)

    async def test_slow_answer_times_out(self, server: NewRelicServer) -> None:
        server.fail_with(Failure(200, delay=1.0))
        with pytest.raises(QueryTimeoutError, match=r"did not answer within 0\.1s"):
            await provider(server, timeout=0.1).run_query(QUERY)

    async def test_unreachable_address(self, server: NewRelicServer) -> None:
        address = f"http://127.0.0.1:{closed_port()}"
        with pytest.raises(ProviderUnavailableError, match="cannot reach New Relic") as info:
            await provider(server, address=address).run_query(QUERY)
        assert_no_secret(info.value)

    @pytest.mark.parametrize(
        ("body", "content_type", "match"),
        [
            ("<html>maintenance</html>", "text/html", "not JSON"),
            ({"results": "none"}, "application/json", "no 'results' list"),
            ("[1, 2]", "application/json", "not a JSON object"),
            ({"results": [[1.0]]}, "application/json", "not an object with a value"),
            ({"results": [{}]}, "application/json", "not an object with a value"),
            ({"results": [{"result": "7"}]}, "application/json", "non-numeric"),
        ],
    )
    async def test_garbage_is_a_query_error(
        self, server: NewRelicServer, body: object, content_type: str, match: str
    ) -> None:
        server.fail_with(Failure(200, body, content_type=content_type))
        with pytest.raises(QueryError, match=match) as info:
            await provider(server).run_query(QUERY)
        assert_no_secret(info.value)

    async def test_the_loopback_api_rejects_a_request_without_nrql(
        self, server: NewRelicServer
    ) -> None:
        async with httpx.AsyncClient() as client:
            answer = await client.get(
                f"{server.base_url}/v1/accounts/{ACCOUNT_ID}/query",
                headers={"X-Query-Key": QUERY_KEY},
            )
        assert (answer.status_code, answer.json()) == (400, {"error": "Missing nrql parameter"})


class TestIsOnline:
    async def test_runs_a_query_with_the_key(self, server: NewRelicServer) -> None:
        assert await provider(server).is_online() is True
        seen = server.requests[-1]
        assert seen.headers["X-Query-Key"] == QUERY_KEY
        assert (seen.param("nrql") or "").startswith("SELECT count(*) FROM Metric SINCE")

    async def test_a_refused_key_is_offline(self, server: NewRelicServer) -> None:
        secret = {"newrelic_account_id": ACCOUNT_ID, "newrelic_query_key": "NRIQ-wrong-0000"}
        assert await provider(server, secret=secret).is_online() is False

    async def test_unreachable_is_offline(self, server: NewRelicServer) -> None:
        unreachable = provider(server, address=f"http://127.0.0.1:{closed_port()}")
        assert await unreachable.is_online() is False


class TestEvaluate:
    def check(self, server: NewRelicServer) -> MetricCheck:
        return metric_check_from_spec(
            {
                "name": "error rate",
                "templateRef": {"name": "newrelic-error-rate", "namespace": "ingress-nginx"},
                "thresholdRange": {"max": 5},
                "interval": "1m",
            },
            path="spec.analysis.metrics[0]",
            template_query=server.query("{{ ingress }}", "{{ namespace }}"),
            template_name="newrelic-error-rate",
        )

    async def test_pass_and_fail_on_the_threshold(self, server: NewRelicServer) -> None:
        check = self.check(server)
        server.answer(0.4)
        good = await evaluate(check, CTX, provider(server), now=AT)
        assert (good.outcome, good.value) == (Outcome.PASS, 0.4)
        expected = server.query("podinfo", "test").strip() + " SINCE 60 seconds ago"
        assert server.requests[-1].param("nrql") == expected
        server.answer(7.5)
        bad = await evaluate(check, CTX, provider(server), now=AT)
        assert (bad.outcome, bad.value) == (Outcome.FAIL, 7.5)

    async def test_null_is_a_no_data_verdict(self, server: NewRelicServer) -> None:
        server.answer(None)
        v = await evaluate(self.check(server), CTX, provider(server), now=AT)
        assert v.outcome is Outcome.NODATA
        assert v.summary.startswith("no values found for custom metric: error rate:")

    async def test_a_server_error_is_an_error_verdict(self, server: NewRelicServer) -> None:
        server.fail_with(Failure(503, {"error": "Service Unavailable"}))
        v = await evaluate(self.check(server), CTX, provider(server), now=AT)
        assert (v.outcome, v.error) == (Outcome.ERROR, "HTTPStatusError")
        assert "New Relic" in v.summary and "HTTP 503" in v.summary
        assert QUERY_KEY not in v.summary


class TestFlaggerManifests:
    """The MetricTemplate and Secret of Flagger's docs (usage/metrics.md, "New Relic")."""

    TEMPLATE_PROVIDER = {"type": "newrelic", "secretRef": {"name": "newrelic"}}
    SECRET = {
        "newrelic_account_id": "your-account-id",
        "newrelic_query_key": "your-insights-query-key",
    }

    def test_the_documented_template_uses_the_insights_api(self) -> None:
        cfg = provider_config(parse_provider_spec(self.TEMPLATE_PROVIDER), secret=self.SECRET)
        assert cfg.address == "https://insights-api.newrelic.com"
        assert isinstance(make_provider(cfg), NewRelicProvider)

    def test_the_secrets_address_overrides_for_eu_accounts(self) -> None:
        secret = {**self.SECRET, "address": "https://insights-api.eu.newrelic.com"}
        cfg = provider_config(parse_provider_spec(self.TEMPLATE_PROVIDER), secret=secret)
        assert cfg.address == "https://insights-api.eu.newrelic.com"

    @pytest.mark.parametrize("key", ["newrelic_account_id", "newrelic_query_key"])
    def test_a_secret_without_a_key_names_secret_ref_and_the_key(self, key: str) -> None:
        secret = {k: v for k, v in self.SECRET.items() if k != key}
        with pytest.raises(AnalysisSpecError) as info:
            provider_config(parse_provider_spec(self.TEMPLATE_PROVIDER), secret=secret)
        assert info.value.path == "spec.provider.secretRef"
        assert key in str(info.value)

    def test_a_config_without_keys_is_refused_by_the_provider(self) -> None:
        with pytest.raises(AnalysisSpecError, match="newrelic_query_key") as info:
            NewRelicProvider(
                ProviderConfig(type="newrelic", secret=(("newrelic_account_id", "1234"),))
            )
        assert info.value.path == "spec.provider.secretRef"
