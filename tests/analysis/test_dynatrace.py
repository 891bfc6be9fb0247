"""The dynatrace provider against a loopback Dynatrace Metrics API v2 (tests/vendors/dynatrace.py)."""

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
from analysis._dynatrace import DynatraceProvider
from tests.vendors import Failure
from tests.vendors.dynatrace import TOKEN, DynatraceServer

AT = datetime(2024, 5, 6, 7, 8, 9, 250_000, tzinfo=UTC)
CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="istio")
SELECTOR = "builtin:service.response.time:splitBy():percentile(95)"


@pytest.fixture
async def server() -> AsyncIterator[DynatraceServer]:
    srv = DynatraceServer()
    await srv.start()
    yield srv
    await srv.close()


def config(
    server: DynatraceServer,
    *,
    interval: str = "1m",
    timeout: float = 5.0,
    secret: dict[str, str] | None = None,
    address: str | None = None,
) -> ProviderConfig:
    spec = {**server.provider(), "secretRef": {"name": "dynatrace"}}
    if address is not None:
        spec["address"] = address
    return provider_config(
        parse_provider_spec(spec),
        secret=secret if secret is not None else server.secret_data(),
        interval=interval,
        timeout_seconds=timeout,
    )


def provider(server: DynatraceServer, **kw: Any) -> MetricProvider:
    return make_provider(config(server, **kw))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestRequest:
    async def test_selector_window_in_ms_and_token_follow_flagger(
        self, server: DynatraceServer
    ) -> None:
        query = server.query("podinfo", "test")
        assert await provider(server, interval="2m").run_query(query, at=AT) == 1.0
        seen = server.requests[-1]
        assert (seen.method, seen.path) == ("GET", "/api/v2/metrics/query")
        assert seen.param("metricSelector") == query.strip()
        assert seen.param("resolution") == "Inf"
        end_ms = 1714979289250
        assert (seen.param("from"), seen.param("to")) == (str(end_ms - 1_200_000), str(end_ms))
        assert seen.headers["Authorization"] == f"Api-Token {TOKEN}"

    async def test_window_ends_now_without_at(self, server: DynatraceServer) -> None:
        before = math.floor(datetime.now(UTC).timestamp() * 1000)
        await provider(server).run_query(SELECTOR)
        after = math.floor(datetime.now(UTC).timestamp() * 1000)
        end = int(server.requests[-1].param("to") or 0)
        assert before <= end <= after
        assert int(server.requests[-1].param("from") or 0) == end - 600_000

    async def test_a_managed_environment_path_is_kept(self, server: DynatraceServer) -> None:
        address = f"{server.base_url}/e/1a2b3c4d"
        with pytest.raises(HTTPStatusError) as info:  # the loopback API has no /e/ prefix
            await provider(server, address=address).run_query(SELECTOR)
        # Without the prefix the same query answers 200 (TestValue): the path was kept. The
        # message names the host only (a path may hold a key, docs/analysis.md).
        assert info.value.status_code == 404
        assert "/e/1a2b3c4d" not in str(info.value) and server.base_url in str(info.value)


class TestValue:
    async def test_the_last_non_null_value_of_the_only_series(
        self, server: DynatraceServer
    ) -> None:
        server.values = [310.0, 250.5, None]
        assert await provider(server).run_query(SELECTOR) == 250.5

    async def test_the_one_folded_value(self, server: DynatraceServer) -> None:
        server.answer(812.25)
        assert await provider(server).run_query(SELECTOR) == 812.25

    async def test_zero_is_a_value(self, server: DynatraceServer) -> None:
        server.answer(0.0)
        assert await provider(server).run_query(SELECTOR) == 0.0

    async def test_no_series_is_no_data(self, server: DynatraceServer) -> None:
        server.answer(None)
        with pytest.raises(NoDataError, match="no series"):
            await provider(server).run_query(SELECTOR)

    @pytest.mark.parametrize("values", [[None], [None, None], [math.nan], []])
    async def test_only_null_values_is_no_data(
        self, server: DynatraceServer, values: list[float | None]
    ) -> None:
        server.values = values
        with pytest.raises(NoDataError, match="only null"):
            await provider(server).run_query(SELECTOR)

    async def test_several_series_are_an_error_naming_the_count(
        self, server: DynatraceServer
    ) -> None:
        server.series = 3
        with pytest.raises(MultipleSeriesError, match=r"3 series.*:splitBy\(\)") as info:
            await provider(server).run_query("builtin:service.response.time")
        assert info.value.series == 3

    async def test_series_of_several_metrics_count_together(self, server: DynatraceServer) -> None:
        body = {
            "result": [
                {"metricId": "a", "data": [{"timestamps": [1], "values": [1.0]}]},
                {"metricId": "b", "data": [{"timestamps": [1], "values": [2.0]}]},
            ]
        }
        server.fail_with(Failure(200, body))
        with pytest.raises(MultipleSeriesError, match="2 series"):
            await provider(server).run_query("a,b")


class TestErrors:
    async def test_a_wrong_token_is_refused_and_never_quoted(self, server: DynatraceServer) -> None:
        wrong = "dt0c01.WRONGWRONGWRONG.SECRETSECRETSECRET"
        with pytest.raises(
            UnauthorizedError, match=r"HTTP 401.*Token Authentication failed"
        ) as info:
            await provider(server, secret={"dynatrace_token": wrong}).run_query(SELECTOR)
        assert wrong not in str(info.value)

    @pytest.mark.parametrize("status", [401, 403])
    async def test_refused_credentials(self, server: DynatraceServer, status: int) -> None:
        said = {
            "error": {"code": status, "message": f"Token {TOKEN} is missing scope metrics.read"}
        }
        server.fail_with(Failure(status, said))
        with pytest.raises(UnauthorizedError, match=r"missing scope metrics\.read") as info:
            await provider(server).run_query(SELECTOR)
        assert info.value.status_code == status
        assert TOKEN not in str(info.value)

    async def test_bad_selector_carries_dynatraces_message(self, server: DynatraceServer) -> None:
        with pytest.raises(BadQueryError, match="The metric selector is invalid") as info:
            await provider(server).run_query("(builtin:service.response.time")
        assert info.value.status_code == 400

    async def test_constraint_violations_name_the_parameter(self, server: DynatraceServer) -> None:
        with pytest.raises(
            BadQueryError, match=r"Constraints violated.*metricSelector: must not be null"
        ):
            await provider(server).run_query("   ")

    @pytest.mark.parametrize("status", [429, 500, 503])
    async def test_rate_limit_and_server_errors(self, server: DynatraceServer, status: int) -> None:
        server.fail_with(Failure(status, {"error": {"code": status, "message": "Try again later"}}))
        with pytest.raises(HTTPStatusError, match="Try again later") as info:
            await provider(server).run_query(SELECTOR)
        assert type(info.value) is HTTPStatusError and info.value.status_code == status
        assert TOKEN not in str(info.value)

    async def test_slow_answer_times_out(self, server: DynatraceServer) -> None:
        server.fail_with(Failure(200, delay=1.0))
        with pytest.raises(QueryTimeoutError, match=r"did not answer within 0\.1s"):
            await provider(server, timeout=0.1).run_query(SELECTOR)

    async def test_unreachable_address(self, server: DynatraceServer) -> None:
        address = f"http://127.0.0.1:{closed_port()}"
        with pytest.raises(ProviderUnavailableError, match="cannot reach Dynatrace") as info:
            await provider(server, address=address).run_query(SELECTOR)
        assert TOKEN not in str(info.value)

    @pytest.mark.parametrize(
        ("body", "content_type", "match"),
        [
            ("<html>gateway timeout</html>", "text/html", "not JSON"),
            ({"totalCount": 0}, "application/json", "no 'result' list"),
            ("[]", "application/json", "not a JSON object"),
            ({"result": [{"metricId": "x"}]}, "application/json", "without a 'data' list"),
            ({"result": [{"data": [{"timestamps": []}]}]}, "application/json", "'values' list"),
            ({"result": [{"data": [{"values": ["7"]}]}]}, "application/json", "non-numeric"),
        ],
    )
    async def test_garbage_is_a_query_error(
        self, server: DynatraceServer, body: object, content_type: str, match: str
    ) -> None:
        server.fail_with(Failure(200, body, content_type=content_type))
        with pytest.raises(QueryError, match=match) as info:
            await provider(server).run_query(SELECTOR)
        assert TOKEN not in str(info.value)

    async def test_the_loopback_api_rejects_a_request_without_token(
        self, server: DynatraceServer
    ) -> None:
        async with httpx.AsyncClient() as client:
            answer = await client.get(
                f"{server.base_url}/api/v2/metrics/query", params={"metricSelector": SELECTOR}
            )
        assert answer.status_code == 401
        assert answer.json() == {
            "error": {"code": 401, "message": "Missing authorization parameter."}
        }


class TestIsOnline:
    async def test_lists_one_metric_with_the_token(self, server: DynatraceServer) -> None:
        assert await provider(server).is_online() is True
        seen = server.requests[-1]
        assert (seen.path, seen.param("pageSize")) == ("/api/v2/metrics", "1")
        assert seen.headers["Authorization"] == f"Api-Token {TOKEN}"

    async def test_a_refused_token_is_offline(self, server: DynatraceServer) -> None:
        secret = {"dynatrace_token": "dt0c01.NOPE.NOPE"}
        assert await provider(server, secret=secret).is_online() is False

    async def test_unreachable_is_offline(self, server: DynatraceServer) -> None:
        unreachable = provider(server, address=f"http://127.0.0.1:{closed_port()}")
        assert await unreachable.is_online() is False


class TestEvaluate:
    def check(self, server: DynatraceServer) -> MetricCheck:
        return metric_check_from_spec(
            {
                "name": "response-time-95pct",
                "templateRef": {"name": "response-time-95pct", "namespace": "istio-system"},
                "thresholdRange": {"max": 1000},
                "interval": "1m",
            },
            path="spec.analysis.metrics[0]",
            template_query=server.query("{{ target }}", "{{ namespace }}"),
            template_name="response-time-95pct",
        )

    async def test_pass_and_fail_on_the_threshold(self, server: DynatraceServer) -> None:
        check = self.check(server)
        server.answer(420.0)
        good = await evaluate(check, CTX, provider(server), now=AT)
        assert (good.outcome, good.value) == (Outcome.PASS, 420.0)
        assert (
            server.requests[-1].param("metricSelector") == server.query("podinfo", "test").strip()
        )
        server.answer(1850.0)
        bad = await evaluate(check, CTX, provider(server), now=AT)
        assert (bad.outcome, bad.value) == (Outcome.FAIL, 1850.0)

    async def test_no_series_is_a_no_data_verdict(self, server: DynatraceServer) -> None:
        server.answer(None)
        v = await evaluate(self.check(server), CTX, provider(server), now=AT)
        assert v.outcome is Outcome.NODATA
        assert v.summary.startswith("no values found for custom metric: response-time-95pct:")

    async def test_several_series_are_an_error_verdict(self, server: DynatraceServer) -> None:
        server.series = 2
        v = await evaluate(self.check(server), CTX, provider(server), now=AT)
        assert (v.outcome, v.error) == (Outcome.ERROR, "MultipleSeriesError")
        assert "Dynatrace returned 2 series" in v.summary


class TestFlaggerManifests:
    """The MetricTemplate and Secret of Flagger's docs (usage/metrics.md, "Dynatrace")."""

    TEMPLATE_PROVIDER = {
        "type": "dynatrace",
        "address": "https://xxxxxxxx.live.dynatrace.com",
        "secretRef": {"name": "dynatrace"},
    }
    SECRET = {"dynatrace_token": "ZHQwYz..."}

    def test_the_documented_template_and_secret_make_a_provider(self) -> None:
        cfg = provider_config(parse_provider_spec(self.TEMPLATE_PROVIDER), secret=self.SECRET)
        assert cfg.address == "https://xxxxxxxx.live.dynatrace.com"
        assert isinstance(make_provider(cfg), DynatraceProvider)

    def test_the_address_is_required(self) -> None:
        spec = {k: v for k, v in self.TEMPLATE_PROVIDER.items() if k != "address"}
        with pytest.raises(AnalysisSpecError) as info:
            provider_config(parse_provider_spec(spec), secret=self.SECRET)
        assert info.value.path == "spec.provider.address"

    def test_a_secret_without_the_token_names_secret_ref_and_the_key(self) -> None:
        with pytest.raises(AnalysisSpecError) as info:
            provider_config(parse_provider_spec(self.TEMPLATE_PROVIDER), secret={"other": "x"})
        assert info.value.path == "spec.provider.secretRef"
        assert "dynatrace_token" in str(info.value)

    def test_a_config_without_token_or_address_is_refused_by_the_provider(self) -> None:
        with pytest.raises(AnalysisSpecError, match="dynatrace_token"):
            DynatraceProvider(
                ProviderConfig(type="dynatrace", address="https://x.live.dynatrace.com")
            )
        with pytest.raises(AnalysisSpecError) as info:
            DynatraceProvider(
                ProviderConfig(type="dynatrace", address="", secret=(("dynatrace_token", "t0k3n"),))
            )
        assert info.value.path == "spec.provider.address"
