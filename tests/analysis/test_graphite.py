"""The graphite provider against a loopback stand-in of graphite-web's render API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from analysis import (
    AnalysisSpecError,
    BadQueryError,
    HTTPStatusError,
    MetricCheck,
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
from analysis._graphite import MINUTES_HINT, GraphiteProvider, render_params
from tests.vendors import Failure
from tests.vendors.graphite import GraphiteServer

CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="kubernetes")
QUERY = "target=sumSeries(app.test.podinfo.requests)&from=-60s"


@pytest.fixture
async def server() -> AsyncIterator[GraphiteServer]:
    srv = GraphiteServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()


def provider_for(server: GraphiteServer, *, timeout: float = 5.0) -> GraphiteProvider:
    """The provider a user's MetricTemplate and Secret for ``server`` make."""
    secret = server.secret_data() or {}
    spec = parse_provider_spec(server.provider() | {"secretRef": {"name": "graphite"}})
    config = provider_config(spec, secret=secret, timeout_seconds=timeout)
    provider = make_provider(config)
    assert isinstance(provider, GraphiteProvider)
    return provider


def assert_no_credentials(server: GraphiteServer, exc: BaseException) -> None:
    for value in (server.secret_data() or {}).values():
        assert value not in str(exc)


class TestRequest:
    async def test_render_is_asked_for_json_with_the_querys_parameters(
        self, server: GraphiteServer
    ) -> None:
        await provider_for(server).run_query(
            "target=summarize(\n  sumSeries(app.test.podinfo.*),\n  '60s', 'sum')\n&from=-60s"
        )
        seen = server.requests[-1]
        assert (seen.method, seen.path) == ("GET", "/render")
        assert seen.param("target") == "summarize( sumSeries(app.test.podinfo.*), '60s', 'sum')"
        assert (seen.param("from"), seen.param("format")) == ("-60s", "json")
        assert seen.param("now") is None

    async def test_a_format_in_the_query_is_replaced_by_json(self, server: GraphiteServer) -> None:
        await provider_for(server).run_query(QUERY + "&format=png")
        assert [v for k, v in server.requests[-1].query if k == "format"] == ["json"]

    async def test_at_is_sent_as_graphites_now(self, server: GraphiteServer) -> None:
        at = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
        await provider_for(server).run_query(QUERY, at=at)
        assert server.requests[-1].param("now") == str(int(at.timestamp()))

    async def test_a_now_in_the_query_is_kept(self, server: GraphiteServer) -> None:
        await provider_for(server).run_query(QUERY + "&now=1700000000", at=datetime.now(UTC))
        assert [v for k, v in server.requests[-1].query if k == "now"] == ["1700000000"]

    async def test_secret_becomes_basic_auth(self, server: GraphiteServer) -> None:
        await provider_for(server).run_query(QUERY)
        assert (
            server.requests[-1].headers["Authorization"] == "Basic ZmxhZ2dlcjpncmFwaGl0ZS1wdy01ZTFm"
        )

    async def test_without_secret_no_authorization_is_sent(self, server: GraphiteServer) -> None:
        server.username = server.password = None
        provider = make_provider(provider_config(parse_provider_spec(server.provider())))
        assert await provider.run_query(QUERY) == 1.0
        assert "Authorization" not in server.requests[-1].headers

    def test_render_url_keeps_the_address_path(self) -> None:
        config = ProviderConfig(type="graphite", address="http://graphite.monitoring/graphite/")
        assert GraphiteProvider(config).render_url == "http://graphite.monitoring/graphite/render"

    def test_render_params_split_like_a_url_query(self) -> None:
        assert render_params("target=a.b%2Cc&target=x+y&from=-5min") == [
            ("target", "a.b,c"),
            ("target", "x y"),
            ("from", "-5min"),
            ("format", "json"),
        ]

    async def test_a_query_without_target_is_refused_before_sending(
        self, server: GraphiteServer
    ) -> None:
        with pytest.raises(BadQueryError, match=r"has no target.*render API query string"):
            await provider_for(server).run_query("sumSeries(app.test.podinfo.*)")
        assert server.requests == []


class TestValue:
    async def test_last_non_null_datapoint_is_the_value(self, server: GraphiteServer) -> None:
        server.points = [1.0, 2.0, 3.0, None, None]
        assert await provider_for(server).run_query(QUERY) == 3.0

    async def test_value_of_a_generated_window(self, server: GraphiteServer) -> None:
        server.answer(97.5)
        assert await provider_for(server).run_query(QUERY) == 97.5

    async def test_only_null_datapoints_is_no_data(self, server: GraphiteServer) -> None:
        server.answer(None)
        with pytest.raises(NoDataError, match="only null datapoints"):
            await provider_for(server).run_query(QUERY)

    async def test_no_series_is_no_data(self, server: GraphiteServer) -> None:
        server.series_per_target = 0
        with pytest.raises(NoDataError, match="no series"):
            await provider_for(server).run_query(QUERY)

    async def test_several_series_is_an_error_naming_the_count(
        self, server: GraphiteServer
    ) -> None:
        server.series_per_target = 3
        with pytest.raises(MultipleSeriesError, match=r"returned 3 series.*sumSeries") as info:
            await provider_for(server).run_query(QUERY)
        assert info.value.series == 3

    async def test_nan_points_are_skipped_and_strings_are_numbers(
        self, server: GraphiteServer
    ) -> None:
        body = '[{"target": "x", "datapoints": [["4.5", 10], [NaN, 20], [null, 30]]}]'
        server.fail_with(Failure(status=200, body=body))
        assert await provider_for(server).run_query(QUERY) == 4.5

    async def test_only_nan_is_no_data(self, server: GraphiteServer) -> None:
        server.fail_with(Failure(status=200, body='[{"target": "x", "datapoints": [[NaN, 1]]}]'))
        with pytest.raises(NoDataError):
            await provider_for(server).run_query(QUERY)


class TestErrors:
    async def test_wrong_password_is_unauthorized(self, server: GraphiteServer) -> None:
        provider = provider_for(server)
        server.password = "another-password"
        with pytest.raises(UnauthorizedError, match="HTTP 401") as info:
            await provider.run_query(QUERY)
        assert "graphite-pw-5e1f" not in str(info.value)

    async def test_403_is_unauthorized(self, server: GraphiteServer) -> None:
        server.fail_with(Failure(status=403, body="Forbidden", content_type="text/plain"))
        with pytest.raises(UnauthorizedError, match=r"HTTP 403.*Forbidden") as info:
            await provider_for(server).run_query(QUERY)
        assert_no_credentials(server, info.value)

    async def test_minutes_as_m_is_graphites_400_with_a_hint(self, server: GraphiteServer) -> None:
        with pytest.raises(BadQueryError) as info:
            await provider_for(server).run_query("target=app.test.podinfo.x&from=-1m")
        message = str(info.value)
        assert "Invalid parameters (Invalid offset unit 'm')" in message
        assert MINUTES_HINT in message
        assert_no_credentials(server, info.value)

    async def test_a_400_without_minutes_has_no_hint(self, server: GraphiteServer) -> None:
        with pytest.raises(BadQueryError) as info:
            await provider_for(server).run_query("target=app.test.podinfo.x&from=-1x")
        assert "Invalid offset unit 'x'" in str(info.value)
        assert MINUTES_HINT not in str(info.value)

    @pytest.mark.parametrize("status", [429, 500, 503])
    async def test_server_errors_are_http_status_errors(
        self, server: GraphiteServer, status: int
    ) -> None:
        server.fail_with(Failure(status=status, body="<h2>Graphite encountered an error</h2>"))
        with pytest.raises(HTTPStatusError) as info:
            await provider_for(server).run_query(QUERY)
        assert info.value.status_code == status and not isinstance(info.value, UnauthorizedError)
        assert f"HTTP {status}" in str(info.value) and "Graphite encountered" in str(info.value)
        assert_no_credentials(server, info.value)

    async def test_slow_answer_is_a_timeout(self, server: GraphiteServer) -> None:
        server.fail_with(Failure(status=200, delay=2.0))
        with pytest.raises(QueryTimeoutError, match=r"did not answer within 0.2s"):
            await provider_for(server, timeout=0.2).run_query(QUERY)

    async def test_unreachable_address(self) -> None:
        gone = GraphiteServer()
        await gone.start()
        provider = provider_for(gone)
        await gone.close()
        with pytest.raises(ProviderUnavailableError, match="cannot reach Graphite") as info:
            await provider.run_query(QUERY)
        assert_no_credentials(gone, info.value)

    @pytest.mark.parametrize(
        ("body", "match"),
        [
            ("<html>not json</html>", "not JSON"),
            (json.dumps({"target": "x"}), "not a list of series"),
            (json.dumps([{"target": "x"}]), "without datapoints"),
            (
                json.dumps([{"target": "x", "datapoints": [[1.0]]}]),
                r"expected \[value, timestamp\]",
            ),
            (json.dumps([{"target": "x", "datapoints": [["lots", 1]]}]), "non-numeric"),
        ],
    )
    async def test_garbage_is_a_query_error(
        self, server: GraphiteServer, body: str, match: str
    ) -> None:
        server.fail_with(Failure(status=200, body=body, content_type="text/html"))
        with pytest.raises(QueryError, match=match) as info:
            await provider_for(server).run_query(QUERY)
        assert type(info.value) is QueryError


class TestOnline:
    async def test_online_when_graphite_answers_even_without_data(
        self, server: GraphiteServer
    ) -> None:
        server.series_per_target = 0
        assert await provider_for(server).is_online() is True
        assert server.requests[-1].param("target") == "test"

    async def test_offline_when_credentials_are_refused(self, server: GraphiteServer) -> None:
        provider = provider_for(server)
        server.password = "changed-password"
        assert await provider.is_online() is False


class TestSpec:
    def test_flaggers_documented_template_gives_a_graphite_provider(self) -> None:
        template = {
            "type": "graphite",
            "address": "http://graphite.monitoring",
            "secretRef": {"name": "graphite-basic-auth"},
        }
        config = provider_config(
            parse_provider_spec(template), secret={"username": "your-user", "password": "pw-123"}
        )
        provider = make_provider(config)
        assert isinstance(provider, GraphiteProvider)
        assert provider.render_url == "http://graphite.monitoring/render"

    def test_graphite_without_address_names_the_field(self) -> None:
        with pytest.raises(AnalysisSpecError) as info:
            provider_config(parse_provider_spec({"type": "graphite"}))
        assert info.value.path == "spec.provider.address"
        assert "graphite" in str(info.value)

    def test_username_without_password_names_the_secret(self) -> None:
        spec = parse_provider_spec(
            {"type": "graphite", "address": "http://g", "secretRef": {"name": "g"}}
        )
        with pytest.raises(AnalysisSpecError) as info:
            provider_config(spec, secret={"username": "u"})
        assert info.value.path == "spec.provider.secretRef"


class TestEvaluate:
    def check(self, server: GraphiteServer, **threshold: float) -> MetricCheck:
        return metric_check_from_spec(
            {"name": "success-rate", "interval": "60s", "thresholdRange": threshold},
            path="spec.analysis.metrics[0]",
            template_query=server.query(CTX.target, CTX.namespace),
        )

    async def test_good_value_passes_and_bad_fails(self, server: GraphiteServer) -> None:
        check = self.check(server, min=99)
        server.answer(99.7)
        verdict = await evaluate(check, CTX, provider_for(server), now=datetime.now(UTC))
        assert (verdict.outcome, verdict.value) == (Outcome.PASS, 99.7)
        target = server.requests[-1].param("target") or ""
        assert "app.test.podinfo.exception" in target and "'60s'" in target
        assert server.requests[-1].param("from") == "-60s"
        server.answer(91.0)
        verdict = await evaluate(check, CTX, provider_for(server), now=datetime.now(UTC))
        assert (verdict.outcome, verdict.value) == (Outcome.FAIL, 91.0)

    async def test_no_data_is_a_no_data_verdict(self, server: GraphiteServer) -> None:
        server.answer(None)
        verdict = await evaluate(
            self.check(server, min=99), CTX, provider_for(server), now=datetime.now(UTC)
        )
        assert verdict.outcome is Outcome.NODATA
        assert verdict.summary.startswith("no values found for custom metric: success-rate:")

    @pytest.mark.parametrize("interval", ["1m", "1min"])
    async def test_a_minute_interval_renders_in_seconds_which_graphite_reads(
        self, server: GraphiteServer, interval: str
    ) -> None:
        server.answer(99.5)
        check = metric_check_from_spec(
            {"name": "success-rate", "interval": interval, "thresholdRange": {"min": 99}},
            path="spec.analysis.metrics[0]",
            template_query=server.query(CTX.target, CTX.namespace),
        )
        verdict = await evaluate(check, CTX, provider_for(server), now=datetime.now(UTC))
        assert verdict.outcome is Outcome.PASS, verdict.summary
        assert server.requests[-1].param("from") == "-60s"
