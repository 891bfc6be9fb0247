"""The generic web provider against a real JSON endpoint on loopback (tests/vendors/web.py)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from analysis import (
    AnalysisSpecError,
    AnalysisSpecErrors,
    BadQueryError,
    HTTPStatusError,
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
    render_query,
)
from analysis._web import WebProvider
from tests.vendors import Failure
from tests.vendors.web import PATH, TOKEN, WebServer

CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="istio")
NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture
async def server() -> AsyncIterator[WebServer]:
    srv = WebServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()


def config_for(
    server: WebServer,
    *,
    web: Mapping[str, Any] | None = None,
    secret: Mapping[str, str] | None = None,
    timeout_seconds: float = 5.0,
    **spec: Any,
) -> ProviderConfig:
    """The ProviderConfig the controller builds from the user's template, body rendered."""
    raw = server.provider()
    if web is not None:
        raw = {**raw, "web": {**raw["web"], **web}}
    raw = {**raw, "secretRef": {"name": "checks"}, **spec}
    parsed = parse_provider_spec(raw)
    return provider_config(
        parsed,
        secret=server.secret_data() if secret is None else secret,
        timeout_seconds=timeout_seconds,
        render=lambda t: render_query(t, CTX, interval="1m"),
    )


def provider_for(server: WebServer, **kw: Any) -> WebProvider:
    provider = make_provider(config_for(server, **kw))
    assert isinstance(provider, WebProvider)
    return provider


GET = {"method": "GET", "body": None}
GET_QUERY = (
    f"{PATH}?namespace={{{{ namespace }}}}&target={{{{ target }}}}&window={{{{ interval }}}}"
)


class TestRequest:
    async def test_post_sends_the_rendered_body_and_the_secret_token(
        self, server: WebServer
    ) -> None:
        server.answer(0.25)
        value = await provider_for(server).run_query(server.query("podinfo", "test"))
        assert value == 0.25
        seen = server.requests[-1]
        assert (seen.method, seen.path) == ("POST", PATH)
        assert seen.json() == {"namespace": "test", "target": "podinfo", "window": "1m"}
        assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
        assert seen.headers["Content-Type"] == "application/json"

    async def test_get_takes_the_rendered_url_relative_to_the_address(
        self, server: WebServer
    ) -> None:
        server.answer(0.5)
        query = render_query(GET_QUERY, CTX, interval="2m")
        assert await provider_for(server, web=GET).run_query(query) == 0.5
        seen = server.requests[-1]
        assert (seen.method, seen.path, seen.body) == ("GET", PATH, b"")
        assert dict(seen.query) == {"namespace": "test", "target": "podinfo", "window": "2m"}
        assert "Content-Type" not in seen.headers

    async def test_absolute_url_ignores_the_address(self, server: WebServer) -> None:
        provider = provider_for(server, web=GET, address="http://unused.invalid:1")
        assert await provider.run_query(f"{server.base_url}{PATH}?target=podinfo") == 1.0

    async def test_relative_url_without_an_address_names_the_address_field(
        self, server: WebServer
    ) -> None:
        raw = {**server.provider(), "secretRef": {"name": "checks"}}
        del raw["address"]
        config = provider_config(parse_provider_spec(raw), secret=server.secret_data())
        with pytest.raises(BadQueryError, match=r"spec\.provider\.address"):
            await make_provider(config).run_query(PATH)
        assert server.requests == []

    async def test_spec_headers_are_sent_with_the_secret_headers(self, server: WebServer) -> None:
        provider = provider_for(
            server, headers={"X-Team": ["payments"], "Content-Type": ["application/json; v=2"]}
        )
        await provider.run_query(PATH)
        seen = server.requests[-1]
        assert seen.headers["X-Team"] == "payments"
        assert seen.headers["Content-Type"] == "application/json; v=2"
        assert seen.headers["Authorization"] == f"Bearer {TOKEN}"

    async def test_put_is_sent_as_put_with_the_body(self, server: WebServer) -> None:
        server.answer(0.1)
        assert await provider_for(server, web={"method": "PUT"}).run_query(PATH) == 0.1
        seen = server.requests[-1]
        assert seen.method == "PUT"
        assert seen.json()["target"] == "podinfo"


class TestValue:
    @pytest.mark.parametrize(
        ("path", "answer", "expected"),
        [
            ("{$.data.errorRate}", {"data": {"errorRate": 3}}, 3.0),
            ("{.data.errorRate}", {"data": {"errorRate": 0.125}}, 0.125),
            ("$.data.errorRate", {"data": {"errorRate": "0.75"}}, 0.75),
            ("{$.data.ok}", {"data": {"ok": True}}, 1.0),
            ("{$.data.ok}", {"data": {"ok": False}}, 0.0),
            ("{$.data.values}", {"data": {"values": [42]}}, 42.0),
            ("{$.data.values[-1]}", {"data": {"values": [1, 2, 7]}}, 7.0),
            ("{$.data['p99.9']}", {"data": {"p99.9": 250}}, 250.0),
            (
                '{$.results[?(@.name == "errors")].value}',
                {"results": [{"name": "requests", "value": 90}, {"name": "errors", "value": 4}]},
                4.0,
            ),
            ("{$..errorRate}", {"a": {"b": {"errorRate": 0.5}}}, 0.5),
        ],
    )
    async def test_the_number_at_the_path_is_the_value(
        self, server: WebServer, path: str, answer: Any, expected: float
    ) -> None:
        server.raw = answer
        assert await provider_for(server, web={"jsonPath": path}).run_query(PATH) == expected

    @pytest.mark.parametrize(
        ("answer", "said"),
        [
            ({"data": {"errorRate": None}}, "is null"),
            ({"data": {}}, "selected nothing"),
            ({"other": 1}, "selected nothing"),
            ({"data": {"errorRate": []}}, "empty list"),
            ({"data": {"errorRate": "NaN"}}, "NaN"),
        ],
    )
    async def test_missing_null_or_nan_is_no_data_naming_the_path(
        self, server: WebServer, answer: Any, said: str
    ) -> None:
        server.raw = answer
        with pytest.raises(NoDataError, match=said) as info:
            await provider_for(server).run_query(PATH)
        assert "{$.data.errorRate}" in str(info.value)

    async def test_null_from_the_endpoint_is_no_data(self, server: WebServer) -> None:
        server.answer(None)
        with pytest.raises(NoDataError, match="is null"):
            await provider_for(server).run_query(PATH)

    async def test_several_values_are_multiple_series(self, server: WebServer) -> None:
        server.raw = {"data": [{"errorRate": 1}, {"errorRate": 2}]}
        provider = provider_for(server, web={"jsonPath": "{$.data[*].errorRate}"})
        with pytest.raises(MultipleSeriesError, match="selected 2 values") as info:
            await provider.run_query(PATH)
        assert info.value.series == 2

    async def test_a_list_of_several_numbers_is_multiple_series(self, server: WebServer) -> None:
        server.raw = {"data": {"errorRate": [1, 2, 3]}}
        with pytest.raises(MultipleSeriesError, match="list of 3 values"):
            await provider_for(server).run_query(PATH)

    @pytest.mark.parametrize(
        ("value", "said"),
        [
            ({"rate": 1, "total": 2}, "an object with keys rate, total"),
            ("high", "the string 'high'"),
            ([[1]], "a list"),
        ],
    )
    async def test_anything_else_is_a_query_error_showing_what_was_found(
        self, server: WebServer, value: Any, said: str
    ) -> None:
        server.raw = {"data": {"errorRate": value}}
        with pytest.raises(QueryError, match=said) as info:
            await provider_for(server).run_query(PATH)
        assert not isinstance(info.value, NoDataError | MultipleSeriesError)


class TestErrors:
    async def test_no_token_is_unauthorized(self, server: WebServer) -> None:
        raw = {k: v for k, v in server.provider().items()}
        raw["web"] = {k: v for k, v in raw["web"].items() if k != "secretHeaders"}
        config = provider_config(parse_provider_spec(raw), render=lambda t: t)
        with pytest.raises(UnauthorizedError, match="missing bearer token") as info:
            await make_provider(config).run_query(PATH)
        assert info.value.status_code == 401

    async def test_wrong_token_is_unauthorized_without_the_token(self, server: WebServer) -> None:
        wrong = "Bearer wrong-token-5521"
        with pytest.raises(UnauthorizedError) as info:
            await provider_for(server, secret={"api-token": wrong}).run_query(PATH)
        assert info.value.status_code == 403
        assert "invalid token" in str(info.value)
        assert "wrong-token-5521" not in str(info.value)

    async def test_bad_request_is_a_bad_query_with_the_endpoint_message(
        self, server: WebServer
    ) -> None:
        provider = provider_for(server, web={"body": '{"namespace": "{{ namespace }}"}'})
        with pytest.raises(BadQueryError, match="target is required"):
            await provider.run_query(PATH)

    @pytest.mark.parametrize("status", [429, 500, 503])
    async def test_rate_limits_and_server_errors_are_http_status_errors(
        self, server: WebServer, status: int
    ) -> None:
        server.fail_with(Failure(status=status, body={"error": f"echo {TOKEN}"}))
        with pytest.raises(HTTPStatusError) as info:
            await provider_for(server).run_query(PATH)
        assert info.value.status_code == status
        assert not isinstance(info.value, UnauthorizedError)
        assert TOKEN not in str(info.value)

    async def test_a_redirect_is_not_read_as_an_answer(self, server: WebServer) -> None:
        server.fail_with(Failure(status=302, body="moved", content_type="text/plain"))
        with pytest.raises(HTTPStatusError, match="HTTP 302") as info:
            await provider_for(server).run_query(PATH)
        assert info.value.status_code == 302

    async def test_slow_answer_is_a_timeout(self, server: WebServer) -> None:
        server.fail_with(Failure(status=200, delay=2.0))
        with pytest.raises(QueryTimeoutError, match=r"did not answer within 0\.2s"):
            await provider_for(server, timeout_seconds=0.2).run_query(PATH)

    async def test_unreachable_address_is_unavailable(self, server: WebServer) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        provider = provider_for(server, address=f"http://127.0.0.1:{port}")
        with pytest.raises(ProviderUnavailableError) as info:
            await provider.run_query(PATH)
        assert not isinstance(info.value, QueryTimeoutError)

    async def test_an_answer_that_is_not_json_is_a_query_error(self, server: WebServer) -> None:
        server.html = f"<html>signed in as {TOKEN}</html>"
        with pytest.raises(QueryError, match="not JSON") as info:
            await provider_for(server).run_query(PATH)
        assert TOKEN not in str(info.value)


class TestSpec:
    def test_a_bad_json_path_method_and_secret_header_are_reported_together(self) -> None:
        raw = {
            "type": "web",
            "secretRef": {"name": "checks"},
            "web": {
                "jsonPath": "{$.data[}",
                "method": "DELETE",
                "secretHeaders": {"Authorization": 7},
            },
        }
        with pytest.raises(AnalysisSpecErrors) as info:
            parse_provider_spec(raw)
        by_path = {p.path: p.detail for p in info.value.problems}
        assert set(by_path) == {
            "spec.provider.web.jsonPath",
            "spec.provider.web.method",
            "spec.provider.web.secretHeaders.Authorization",
        }
        assert "column 8" in by_path["spec.provider.web.jsonPath"]
        assert "GET, POST, PUT" in by_path["spec.provider.web.method"]

    @pytest.mark.parametrize(
        ("path", "said"),
        [
            ("{$.a}{$.b}", "around the braces"),
            ("{range .items[*]}", "range/end"),
            ("data.value", r"starts with \$"),
            ("{$.a['x]}", "not closed"),
            ("{$.a[1,2]}", "unions"),
            ("{$.a[?(@.x ~ 1)]}", "expected =="),
            ("{$.a", "does not close"),
        ],
    )
    def test_json_path_syntax_is_checked_when_the_template_is_parsed(
        self, path: str, said: str
    ) -> None:
        with pytest.raises(AnalysisSpecErrors, match=said) as info:
            parse_provider_spec({"type": "web", "web": {"jsonPath": path}})
        assert info.value.path == "spec.provider.web.jsonPath"

    def test_a_header_name_that_is_not_a_token_is_refused(self) -> None:
        raw = {"type": "web", "web": {"jsonPath": "{$.v}", "secretHeaders": {"Bad Header": "k"}}}
        with pytest.raises(AnalysisSpecErrors, match="'Bad Header'") as info:
            parse_provider_spec(raw)
        assert info.value.path == "spec.provider.web.secretHeaders"

    def test_a_secret_without_the_header_key_names_the_header(self, server: WebServer) -> None:
        with pytest.raises(AnalysisSpecError) as info:
            config_for(server, secret={"other": "x"})
        assert info.value.path == "spec.provider.web.secretHeaders.Authorization"
        assert "'api-token'" in str(info.value)

    def test_the_body_is_rendered_with_the_canary_names_and_interval(
        self, server: WebServer
    ) -> None:
        config = config_for(server)
        assert config.web is not None and config.web.body is not None
        assert json.loads(config.web.body) == {
            "namespace": "test",
            "target": "podinfo",
            "window": "1m",
        }


class TestEvaluate:
    def check(self, server: WebServer, **bounds: float) -> Any:
        return metric_check_from_spec(
            {
                "name": "error-rate",
                "templateRef": {"name": "error-rate"},
                "thresholdRange": bounds,
                "interval": "1m",
            },
            path="spec.analysis.metrics[0]",
            template_query=server.query("podinfo", "test"),
            template_name="error-rate",
        )

    async def test_a_good_value_passes(self, server: WebServer) -> None:
        server.answer(0.4)
        v = await evaluate(self.check(server, max=1), CTX, provider_for(server), now=NOW)
        assert (v.outcome, v.value) == (Outcome.PASS, 0.4)

    async def test_a_bad_value_fails(self, server: WebServer) -> None:
        server.answer(2.5)
        v = await evaluate(self.check(server, max=1), CTX, provider_for(server), now=NOW)
        assert (v.outcome, v.value) == (Outcome.FAIL, 2.5)

    async def test_a_boolean_judged_with_min_one(self, server: WebServer) -> None:
        server.answer(2.5)  # above healthy_below: healthy is false
        provider = provider_for(server, web={"jsonPath": "{$.data.healthy}"})
        v = await evaluate(self.check(server, min=1), CTX, provider, now=NOW)
        assert (v.outcome, v.value) == (Outcome.FAIL, 0.0)
        server.answer(0.2)
        v = await evaluate(self.check(server, min=1), CTX, provider, now=NOW)
        assert (v.outcome, v.value) == (Outcome.PASS, 1.0)

    async def test_no_data_is_a_no_data_verdict(self, server: WebServer) -> None:
        server.answer(None)
        v = await evaluate(self.check(server, max=1), CTX, provider_for(server), now=NOW)
        assert v.outcome is Outcome.NODATA
        assert v.summary.startswith("no values found for custom metric: error-rate:")
        assert "is null" in v.summary

    async def test_a_refused_token_is_an_error_verdict(self, server: WebServer) -> None:
        provider = provider_for(server, secret={"api-token": "Bearer nope-nope-nope"})
        v = await evaluate(self.check(server, max=1), CTX, provider, now=NOW)
        assert (v.outcome, v.error) == (Outcome.ERROR, "UnauthorizedError")
        assert v.summary.startswith("Metric query failed for error-rate:")
        assert "nope-nope-nope" not in v.summary
