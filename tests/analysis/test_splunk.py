"""The Splunk (SignalFx) provider against SignalFlow's REST API on loopback (tests/vendors/splunk.py)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analysis import (
    AnalysisSpecError,
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
from analysis._splunk import SplunkProvider, sse_events
from tests.vendors import Failure
from tests.vendors.splunk import EXECUTE, METRIC, TOKEN, SplunkServer

CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="istio")
AT = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture
async def server() -> AsyncIterator[SplunkServer]:
    srv = SplunkServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()


def config_for(
    server: SplunkServer,
    *,
    secret: dict[str, str] | None = None,
    interval: str = "1m",
    timeout_seconds: float = 5.0,
    **spec: Any,
) -> ProviderConfig:
    raw = {**server.provider(), "secretRef": {"name": "splunk"}, **spec}
    return provider_config(
        parse_provider_spec(raw),
        secret=server.secret_data() if secret is None else secret,
        interval=interval,
        timeout_seconds=timeout_seconds,
    )


def provider_for(server: SplunkServer, **kw: Any) -> SplunkProvider:
    provider = make_provider(config_for(server, **kw))
    assert isinstance(provider, SplunkProvider)
    return provider


def program(server: SplunkServer) -> str:
    return render_query(server.query("podinfo", "test"), CTX, interval="1m")


class TestServerSentEvents:
    def test_multi_line_data_joins_with_newlines_and_types_default_to_message(self) -> None:
        text = 'event: data\ndata: {\ndata:   "a": 1\ndata: }\n\ndata: plain\n\n'
        assert list(sse_events(text)) == [("data", '{\n  "a": 1\n}'), ("message", "plain")]

    def test_crlf_cr_comments_and_one_leading_space(self) -> None:
        text = ": keepalive\r\nevent:x\r\ndata:  two spaces\r\rid: 7\nretry: 10\ndata:y\n\n"
        assert list(sse_events(text)) == [("x", " two spaces"), ("message", "y")]

    def test_an_event_cut_off_by_the_end_of_the_stream_is_dropped(self) -> None:
        assert list(sse_events('event: data\ndata: {"a": 1}\n\nevent: data\ndata: {')) == [
            ("data", '{"a": 1}')
        ]

    def test_an_event_without_data_is_skipped(self) -> None:
        assert list(sse_events("event: control-message\n\n")) == []


class TestRequest:
    async def test_the_program_runs_over_ten_intervals_ending_at_the_given_time(
        self, server: SplunkServer
    ) -> None:
        server.answer(99.5)
        query = program(server)
        assert await provider_for(server, interval="2m").run_query(query, at=AT) == 99.5
        seen = server.requests[-1]
        assert (seen.method, seen.path) == ("POST", EXECUTE)
        stop = int(AT.timestamp() * 1000)
        assert seen.param("stop") == str(stop)
        assert seen.param("start") == str(stop - 10 * 120_000)
        assert seen.param("immediate") == "true"
        assert seen.headers["X-SF-Token"] == TOKEN
        assert seen.headers["Content-Type"] == "text/plain"
        assert seen.body.decode() == query
        assert "filter('sf_service', 'podinfo')" in query

    async def test_without_at_the_window_ends_now(self, server: SplunkServer) -> None:
        before = datetime.now(UTC)
        await provider_for(server).run_query(program(server))
        after = datetime.now(UTC)
        stop = int(server.requests[-1].param("stop") or 0)
        assert int(before.timestamp() * 1000) <= stop <= int(after.timestamp() * 1000)

    def test_the_api_address_is_turned_into_the_stream_address_and_back(self) -> None:
        api = SplunkProvider(ProviderConfig(type="splunk", address="https://api.us1.signalfx.com"))
        assert api.stream_address == "https://stream.us1.signalfx.com"
        assert api.api_address == "https://api.us1.signalfx.com"
        stream = SplunkProvider(
            ProviderConfig(type="splunk", address="https://stream.eu0.signalfx.com/")
        )
        assert stream.stream_address == "https://stream.eu0.signalfx.com"
        assert stream.api_address == "https://api.eu0.signalfx.com"

    def test_the_address_is_required(self, server: SplunkServer) -> None:
        raw = {"type": "splunk", "secretRef": {"name": "splunk"}}
        with pytest.raises(AnalysisSpecError) as info:
            provider_config(parse_provider_spec(raw), secret=server.secret_data())
        assert info.value.path == "spec.provider.address"

    def test_the_token_key_is_required(self, server: SplunkServer) -> None:
        with pytest.raises(AnalysisSpecError, match="sf_token_key") as info:
            config_for(server, secret={"other": "x"})
        assert info.value.path == "spec.provider.secretRef"


class TestValue:
    async def test_the_last_data_point_is_the_value(self, server: SplunkServer) -> None:
        server.earlier = (10.0, None, 20.0)
        server.answer(97.25)
        assert await provider_for(server).run_query(program(server), at=AT) == 97.25

    async def test_null_points_are_dropped_as_flagger_does(self, server: SplunkServer) -> None:
        server.earlier = (10.0,)
        server.answer(42.0)
        server.trailing_nulls = 2  # the latest points have no value yet
        assert await provider_for(server).run_query(program(server), at=AT) == 42.0

    async def test_only_null_points_is_no_data(self, server: SplunkServer) -> None:
        server.earlier = (None, None)
        server.answer(None)
        server.matched = True  # the series exists, but has no value in the window
        with pytest.raises(NoDataError, match="no data point in the window"):
            await provider_for(server).run_query(program(server))

    async def test_no_matching_time_series_is_no_data_saying_so(self, server: SplunkServer) -> None:
        server.answer(None)
        with pytest.raises(NoDataError, match="filters matched no time series") as info:
            await provider_for(server).run_query(program(server))
        assert "10 x 60s" in str(info.value)

    async def test_several_time_series_are_refused(self, server: SplunkServer) -> None:
        server.series = 3
        with pytest.raises(MultipleSeriesError, match="published 3 time series") as info:
            await provider_for(server).run_query(program(server))
        assert info.value.series == 3


class TestErrors:
    async def test_a_program_error_message_is_a_bad_query_with_signalflows_words(
        self, server: SplunkServer
    ) -> None:
        server.program_error = "Unknown function 'dta' at line 1"
        with pytest.raises(BadQueryError, match="Unknown function 'dta' at line 1"):
            await provider_for(server).run_query(program(server))

    async def test_a_program_that_publishes_nothing_is_refused(self, server: SplunkServer) -> None:
        with pytest.raises(BadQueryError, match="publishes no stream"):
            await provider_for(server).run_query("data('traces.count').sum()")

    async def test_an_aborted_job_is_a_bad_query_with_the_reason(
        self, server: SplunkServer
    ) -> None:
        server.abort = "Too many time series in the computation"
        with pytest.raises(BadQueryError, match=r"Too many time series.*\(FAILED\)"):
            await provider_for(server).run_query(program(server))

    async def test_bad_parameters_are_a_bad_query_with_the_vendor_message(
        self, server: SplunkServer
    ) -> None:
        provider = provider_for(server, interval="0s")  # an empty window: start == stop
        with pytest.raises(BadQueryError, match="start must be before stop") as info:
            await provider.run_query(program(server))
        assert info.value.status_code == 400

    async def test_a_wrong_token_is_unauthorized_without_the_token(
        self, server: SplunkServer
    ) -> None:
        wrong = "sfx-wrong-token-1234"
        with pytest.raises(UnauthorizedError, match="Invalid access token") as info:
            await provider_for(server, secret={"sf_token_key": wrong}).run_query(program(server))
        assert info.value.status_code == 401
        assert wrong not in str(info.value)

    async def test_forbidden_is_unauthorized(self, server: SplunkServer) -> None:
        server.fail_with(Failure(status=403, body={"message": f"token {TOKEN} lacks API scope"}))
        with pytest.raises(UnauthorizedError) as info:
            await provider_for(server).run_query(program(server))
        assert info.value.status_code == 403
        assert TOKEN not in str(info.value)

    @pytest.mark.parametrize("status", [429, 500, 503])
    async def test_rate_limits_and_server_errors_are_http_status_errors(
        self, server: SplunkServer, status: int
    ) -> None:
        server.fail_with(Failure(status=status, body={"message": f"busy ({TOKEN})"}))
        with pytest.raises(HTTPStatusError) as info:
            await provider_for(server).run_query(program(server))
        assert info.value.status_code == status
        assert not isinstance(info.value, UnauthorizedError)
        assert TOKEN not in str(info.value)

    async def test_a_slow_answer_is_a_timeout(self, server: SplunkServer) -> None:
        server.fail_with(Failure(status=200, delay=1.0))
        with pytest.raises(QueryTimeoutError, match=r"did not answer within 0\.2s"):
            await provider_for(server, timeout_seconds=0.2).run_query(program(server))

    async def test_an_unreachable_address_is_unavailable(self, server: SplunkServer) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        provider = provider_for(server, address=f"http://127.0.0.1:{port}")
        with pytest.raises(ProviderUnavailableError) as info:
            await provider.run_query(program(server))
        assert not isinstance(info.value, QueryTimeoutError)

    @pytest.mark.parametrize(
        ("body", "said"),
        [
            ("event: data\ndata: {not json\n\n", "not JSON"),
            ("event: data\ndata: [1, 2]\n\n", "not a JSON object"),
            ('event: data\ndata: {"logicalTimestampMs": 1}\n\n', "without a data list"),
            ('event: data\ndata: {"data": [{"value": 1}]}\n\n', "without tsId"),
            ('event: data\ndata: {"data": [{"tsId": "A", "value": "high"}]}\n\n', "non-numeric"),
        ],
    )
    async def test_garbage_in_the_stream_is_a_query_error(
        self, server: SplunkServer, body: str, said: str
    ) -> None:
        server.fail_with(Failure(status=200, body=body, content_type="text/event-stream"))
        with pytest.raises(QueryError, match=said) as info:
            await provider_for(server).run_query(program(server))
        assert not isinstance(info.value, NoDataError)

    async def test_a_page_that_is_not_an_event_stream_is_a_query_error(
        self, server: SplunkServer
    ) -> None:
        server.fail_with(Failure(status=200, body="<html>login</html>", content_type="text/html"))
        with pytest.raises(QueryError, match="text/html, not an event stream") as info:
            await provider_for(server).run_query(program(server))
        assert not isinstance(info.value, NoDataError)


class TestIsOnline:
    async def test_online_asks_the_metric_api_with_the_token(self, server: SplunkServer) -> None:
        assert await provider_for(server).is_online() is True
        seen = server.requests[-1]
        assert (seen.method, seen.path, seen.param("limit")) == ("GET", METRIC, "1")
        assert seen.headers["X-SF-Token"] == TOKEN

    async def test_a_refused_token_is_offline(self, server: SplunkServer) -> None:
        assert await provider_for(server, secret={"sf_token_key": "nope-nope"}).is_online() is False


class TestEvaluate:
    def check(self, server: SplunkServer) -> Any:
        return metric_check_from_spec(
            {
                "name": "error rate",
                "templateRef": {"name": "error-rate", "namespace": "istio-system"},
                "thresholdRange": {"max": 1},
                "interval": "1m",
            },
            path="spec.analysis.metrics[0]",
            template_query=server.query("podinfo", "test"),
            template_name="error-rate",
        )

    async def test_a_good_value_passes(self, server: SplunkServer) -> None:
        server.answer(0.3)
        v = await evaluate(self.check(server), CTX, provider_for(server), now=AT)
        assert (v.outcome, v.value) == (Outcome.PASS, 0.3)
        assert "filter('sf_service', 'podinfo')" in server.requests[-1].body.decode()

    async def test_a_bad_value_fails(self, server: SplunkServer) -> None:
        server.answer(9.0)
        v = await evaluate(self.check(server), CTX, provider_for(server), now=AT)
        assert (v.outcome, v.value) == (Outcome.FAIL, 9.0)

    async def test_no_data_is_a_no_data_verdict(self, server: SplunkServer) -> None:
        server.answer(None)
        v = await evaluate(self.check(server), CTX, provider_for(server), now=AT)
        assert v.outcome is Outcome.NODATA
        assert v.summary.startswith("no values found for custom metric: error rate:")

    async def test_a_program_error_is_an_error_verdict(self, server: SplunkServer) -> None:
        server.program_error = "Syntax error at line 2"
        v = await evaluate(self.check(server), CTX, provider_for(server), now=AT)
        assert (v.outcome, v.error) == (Outcome.ERROR, "BadQueryError")
        assert "Syntax error at line 2" in v.summary
        assert TOKEN not in v.summary

    async def test_the_window_follows_the_metric_interval(self, server: SplunkServer) -> None:
        await evaluate(self.check(server), CTX, provider_for(server, interval="5m"), now=AT)
        seen = server.requests[-1]
        span = int(seen.param("stop") or 0) - int(seen.param("start") or 0)
        assert timedelta(milliseconds=span) == timedelta(minutes=50)
