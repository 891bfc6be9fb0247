"""The Prometheus provider below the HTTP seam (respx): auth, timeouts, error translation, shapes."""

from __future__ import annotations

import base64
import math
import re
from datetime import UTC, datetime

import httpx
import pytest
import respx

from analysis import (
    AnalysisSpecError,
    HTTPStatusError,
    MultipleSeriesError,
    NoDataError,
    Outcome,
    PrometheusAPIError,
    PrometheusProvider,
    ProviderConfig,
    ProviderUnavailableError,
    QueryContext,
    QueryError,
    QueryTimeoutError,
    UnknownProviderError,
    evaluate,
    make_provider,
    metric_check_from_spec,
    provider_config_from_spec,
)

BASE = "http://prom.test:9090"
QUERY_URL = f"{BASE}/api/v1/query"
CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="kubernetes")
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def vector(*values: str, labels: list[dict[str, str]] | None = None) -> dict[str, object]:
    labels = labels or [{} for _ in values]
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": lab, "value": [1700000000.0, v]}
                for lab, v in zip(labels, values, strict=True)
            ],
        },
    }


def provider(**kw: object) -> PrometheusProvider:
    return PrometheusProvider(ProviderConfig(address=BASE, **kw))  # type: ignore[arg-type]


class TestValues:
    @respx.mock
    async def test_single_sample_is_returned_as_float(self) -> None:
        route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=vector("99.5")))
        assert await provider().run_query("up") == 99.5
        assert route.calls.last.request.url.params["query"] == "up"

    @respx.mock
    async def test_time_parameter_is_sent_when_given(self) -> None:
        route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=vector("1")))
        at = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
        await provider().run_query("up", at=at)
        assert float(route.calls.last.request.url.params["time"]) == at.timestamp()

    @respx.mock
    async def test_scalar_result(self) -> None:
        body = {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "42"]}}
        respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=body))
        assert await provider().run_query("scalar(up)") == 42.0

    @respx.mock
    async def test_empty_result_is_no_data(self) -> None:
        respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=vector()))
        with pytest.raises(NoDataError, match="no values found for query 'rate"):
            await provider().run_query("rate(x[1m])")

    @respx.mock
    async def test_nan_is_no_data(self) -> None:
        respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=vector("NaN")))
        with pytest.raises(NoDataError, match="NaN"):
            await provider().run_query("a / b")

    @respx.mock
    async def test_infinity_is_a_value(self) -> None:
        respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=vector("+Inf")))
        assert math.isinf(await provider().run_query("histogram_quantile(0.99, x)"))

    @respx.mock
    async def test_several_series_is_an_error_naming_query_and_count(self) -> None:
        body = vector("1", "2", "3", labels=[{"pod": "a"}, {"pod": "b"}, {"pod": "c"}])
        respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=body))
        with pytest.raises(MultipleSeriesError) as info:
            await provider().run_query("rate(x[1m])")
        assert info.value.series == 3
        assert "'rate(x[1m])' returned 3 series" in str(info.value)

    @respx.mock
    async def test_range_vector_in_instant_query_is_an_error(self) -> None:
        body = {"status": "success", "data": {"resultType": "matrix", "result": []}}
        respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=body))
        with pytest.raises(QueryError, match="returned a matrix"):
            await provider().run_query("x[1m]")

    @respx.mock
    async def test_is_online_checks_vector_one(self) -> None:
        route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=vector("1")))
        assert await provider().is_online() is True
        assert route.calls.last.request.url.params["query"] == "vector(1)"
        route.mock(return_value=httpx.Response(200, json=vector("0")))
        assert await provider().is_online() is False
        route.mock(side_effect=httpx.ConnectError("refused"))
        assert await provider().is_online() is False


class TestShapes:
    @respx.mock
    async def test_range_samples_drop_nan_and_keep_order(self) -> None:
        body = {
            "status": "success",
            "data": {
                "resultType": "matrix",
                "result": [{"metric": {}, "values": [[1, "3"], [2, "NaN"], [3, "1"]]}],
            },
        }
        route = respx.get(f"{BASE}/api/v1/query_range").mock(
            return_value=httpx.Response(200, json=body)
        )
        start = datetime(2024, 1, 1, tzinfo=UTC)
        end = datetime(2024, 1, 1, 0, 1, tzinfo=UTC)
        assert await provider().query_samples("x", start=start, end=end, step_seconds=10) == (
            3.0,
            1.0,
        )
        params = route.calls.last.request.url.params
        assert (params["step"], float(params["start"]), float(params["end"])) == (
            "10",
            start.timestamp(),
            end.timestamp(),
        )

    @respx.mock
    async def test_buckets_are_sorted_by_le_with_inf_last(self) -> None:
        body = vector("10", "4", "7", labels=[{"le": "+Inf"}, {"le": "0.1"}, {"le": "0.5"}])
        respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=body))
        assert await provider().query_buckets("sum by (le) (x)") == (
            (0.1, 4.0),
            (0.5, 7.0),
            (math.inf, 10.0),
        )

    @respx.mock
    async def test_buckets_without_le_or_repeated_le_are_errors(self) -> None:
        route = respx.get(QUERY_URL).mock(
            return_value=httpx.Response(200, json=vector("1", labels=[{"pod": "a"}]))
        )
        with pytest.raises(QueryError, match="without an 'le' label"):
            await provider().query_buckets("x")
        route.mock(
            return_value=httpx.Response(
                200, json=vector("1", "2", labels=[{"le": "1"}, {"le": "1"}])
            )
        )
        with pytest.raises(MultipleSeriesError, match="repeated le"):
            await provider().query_buckets("x")


class TestAuthAndHeaders:
    @respx.mock
    async def test_bearer_token(self) -> None:
        route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=vector("1")))
        await provider(token="s3cr3t").run_query("up")
        assert route.calls.last.request.headers["authorization"] == "Bearer s3cr3t"

    @respx.mock
    async def test_basic_auth(self) -> None:
        route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=vector("1")))
        await provider(username="alice", password="pw:1").run_query("up")
        expected = "Basic " + base64.b64encode(b"alice:pw:1").decode()
        assert route.calls.last.request.headers["authorization"] == expected

    @respx.mock
    async def test_custom_headers_with_several_values(self) -> None:
        route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=vector("1")))
        cfg = provider_config_from_spec(
            {"address": BASE, "headers": {"X-Scope-OrgID": ["tenant-a"], "X-Multi": ["a", "b"]}}
        )
        await PrometheusProvider(cfg).run_query("up")
        headers = route.calls.last.request.headers
        assert headers["x-scope-orgid"] == "tenant-a"
        assert headers.get_list("x-multi") == ["a", "b"]

    @respx.mock
    async def test_no_authorization_without_credentials(self) -> None:
        route = respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=vector("1")))
        await provider().run_query("up")
        assert "authorization" not in route.calls.last.request.headers

    def test_secrets_are_hidden_from_repr(self) -> None:
        cfg = ProviderConfig(address=BASE, token="tok-123", username="u", password="pw-456")
        assert "tok-123" not in repr(cfg) and "pw-456" not in repr(cfg)


class TestErrors:
    @respx.mock
    async def test_bad_query_is_translated_with_error_type(self) -> None:
        body = {
            "status": "error",
            "errorType": "bad_data",
            "error": "1:5: parse error: unclosed left parenthesis",
        }
        respx.get(QUERY_URL).mock(return_value=httpx.Response(400, json=body))
        with pytest.raises(PrometheusAPIError) as info:
            await provider().run_query("sum(x")
        assert (info.value.status_code, info.value.error_type) == (400, "bad_data")
        assert "unclosed left parenthesis" in str(info.value) and "'sum(x'" in str(info.value)

    @respx.mock
    async def test_execution_error_422(self) -> None:
        body = {
            "status": "error",
            "errorType": "execution",
            "error": "many-to-many matching not allowed",
        }
        respx.get(QUERY_URL).mock(return_value=httpx.Response(422, json=body))
        with pytest.raises(PrometheusAPIError, match="execution"):
            await provider().run_query("a / b")

    @respx.mock
    @pytest.mark.parametrize("status", [401, 403, 404, 500, 502, 503])
    async def test_http_errors_without_prometheus_body(self, status: int) -> None:
        respx.get(QUERY_URL).mock(return_value=httpx.Response(status, text="upstream says no"))
        with pytest.raises(HTTPStatusError) as info:
            await provider().run_query("up")
        assert info.value.status_code == status
        assert f"HTTP {status}" in str(info.value) and "upstream says no" in str(info.value)

    @respx.mock
    async def test_non_json_success_is_an_error(self) -> None:
        respx.get(QUERY_URL).mock(return_value=httpx.Response(200, text="<html>login</html>"))
        with pytest.raises(HTTPStatusError, match="without a JSON success body"):
            await provider().run_query("up")

    @respx.mock
    async def test_timeout(self) -> None:
        respx.get(QUERY_URL).mock(side_effect=httpx.ReadTimeout("slow"))
        with pytest.raises(QueryTimeoutError, match=r"did not answer within 2s"):
            await provider(timeout_seconds=2.0).run_query("up")

    @respx.mock
    async def test_connection_refused(self) -> None:
        respx.get(QUERY_URL).mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(
            ProviderUnavailableError, match=r"cannot reach Prometheus at http://prom\.test:9090"
        ):
            await provider().run_query("up")

    @respx.mock
    async def test_credentials_in_address_never_reach_messages(self) -> None:
        respx.get("http://prom.test:9090/api/v1/query").mock(
            side_effect=httpx.ConnectError("refused")
        )
        p = PrometheusProvider(ProviderConfig(address="http://bob:hunter2@prom.test:9090"))
        with pytest.raises(ProviderUnavailableError) as info:
            await p.run_query("up")
        assert "hunter2" not in str(info.value) and "hunter2" not in repr(p)

    @respx.mock
    async def test_token_never_reaches_error_messages(self) -> None:
        respx.get(QUERY_URL).mock(return_value=httpx.Response(401, text="unauthorized"))
        with pytest.raises(HTTPStatusError) as info:
            await provider(token="tok-SECRET").run_query("up")
        assert "tok-SECRET" not in str(info.value)


class TestTimeoutIsReal:
    async def test_a_silent_server_times_out(self) -> None:
        import asyncio

        never = asyncio.Event()  # the server answers nothing, however long the client waits

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)
            await never.wait()
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            p = PrometheusProvider(
                ProviderConfig(address=f"http://127.0.0.1:{port}", timeout_seconds=0.3)
            )
            # Only the client's own 0.3 s timeout can end the call; the outer limit just keeps a
            # broken client from hanging the suite, with room for a loaded machine.
            with pytest.raises(QueryTimeoutError):
                await asyncio.wait_for(p.run_query("up"), timeout=60)
        finally:
            never.set()
            server.close()


class TestConfig:
    def test_defaults(self) -> None:
        cfg = provider_config_from_spec(None)
        assert (cfg.type, cfg.address, cfg.timeout_seconds) == (
            "prometheus",
            "http://prometheus:9090",
            5.0,
        )

    def test_secret_keys(self) -> None:
        cfg = provider_config_from_spec(
            {"type": "prometheus", "address": "https://p:9090/", "insecureSkipVerify": True},
            secret={"username": "u", "password": "p", "address": "https://other:9090"},
        )
        assert (cfg.address, cfg.username, cfg.password, cfg.insecure_skip_verify) == (
            "https://other:9090",
            "u",
            "p",
            True,
        )

    def test_unknown_type_names_the_field(self) -> None:
        with pytest.raises(UnknownProviderError) as info:
            provider_config_from_spec({"type": "prometeus"}, path="spec.provider")
        assert info.value.path == "spec.provider.type"
        assert "unknown provider type 'prometeus'" in str(info.value)

    @pytest.mark.parametrize(
        ("type_", "keys"),
        [
            ("datadog", "'datadog_api_key' and 'datadog_application_key'"),
            ("newrelic", "'newrelic_query_key' and 'newrelic_account_id'"),
            ("splunk", "'sf_token_key'"),
            ("dynatrace", "'dynatrace_token'"),
        ],
    )
    def test_a_flagger_type_without_its_secret_names_the_keys_it_needs(
        self, type_: str, keys: str
    ) -> None:
        with pytest.raises(AnalysisSpecError, match=keys) as info:
            provider_config_from_spec({"type": type_})
        assert info.value.path == "spec.provider.secretRef"

    @pytest.mark.parametrize(
        ("spec", "path"),
        [
            ({"address": "prometheus:9090"}, "spec.provider.address"),
            ({"insecureSkipVerify": "yes"}, "spec.provider.insecureSkipVerify"),
            ({"headers": {"X": [1]}}, "spec.provider.headers.X"),
        ],
    )
    def test_bad_fields_are_named(self, spec: dict[str, object], path: str) -> None:
        with pytest.raises(AnalysisSpecError) as info:
            provider_config_from_spec(spec)
        assert info.value.path == path

    def test_half_basic_auth_is_rejected(self) -> None:
        with pytest.raises(AnalysisSpecError, match="username"):
            provider_config_from_spec({}, secret={"username": "u"})

    def test_make_provider_returns_a_prometheus_provider(self) -> None:
        assert isinstance(make_provider(ProviderConfig()), PrometheusProvider)


class TestBucketCounts:
    """A bucket's count is a number of requests: what cannot be one is an error, never 0.

    A count read as 0 at ``le="0.1"`` would say that no request was faster than 100 ms,
    so an identical canary would be rolled back as slower.
    """

    LES = ["0.05", "0.1", "0.25", "+Inf"]

    def buckets(self, le: str | None = None, count: str = "") -> dict[str, object]:
        """A sane histogram answer, with bucket ``le``'s count replaced by ``count``."""
        values = {"0.05": "500", "0.1": "900", "0.25": "980", "+Inf": "1000"}
        if le is not None:
            values[le] = count
        return vector(*(values[le] for le in self.LES), labels=[{"le": le} for le in self.LES])

    @respx.mock
    async def test_a_nan_bucket_count_is_an_error_naming_the_bucket(self) -> None:
        respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=self.buckets("0.1", "NaN")))
        with pytest.raises(QueryError) as info:
            await provider().query_buckets('sum by (le) (increase(x{pod="c"}[1m]))')
        assert not isinstance(info.value, NoDataError)  # data there is, and it is wrong
        message = str(info.value)
        assert 'histogram bucket le="0.1"' in message and "is NaN" in message
        assert "'sum by (le) (increase(x{pod=\"c\"}[1m]))'" in message

    @respx.mock
    @pytest.mark.parametrize(
        ("raw", "shown"), [("+Inf", "is +Inf"), ("-Inf", "is -Inf"), ("-3", "is negative (-3)")]
    )
    async def test_an_infinite_or_negative_bucket_count_is_an_error_naming_the_bucket(
        self, raw: str, shown: str
    ) -> None:
        respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=self.buckets("0.1", raw)))
        with pytest.raises(
            QueryError, match=r'histogram bucket le="0\.1" of query .* ' + re.escape(shown)
        ):
            await provider().query_buckets("sum by (le) (x)")

    @respx.mock
    async def test_a_rounding_negative_bucket_count_reads_as_zero(self) -> None:
        # increase() extrapolates and a recording rule may subtract: -1e-9 is 0, not an error.
        respx.get(QUERY_URL).mock(
            return_value=httpx.Response(200, json=self.buckets("0.05", "-1e-9"))
        )
        assert await provider().query_buckets("sum by (le) (x)") == (
            (0.05, 0.0),
            (0.1, 900.0),
            (0.25, 980.0),
            (math.inf, 1000.0),
        )

    @respx.mock
    async def test_an_identical_canary_with_a_nan_bucket_is_an_error_verdict_not_a_failure(
        self,
    ) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            canary = "primary" not in request.url.params["query"]
            return httpx.Response(
                200, json=self.buckets("0.1", "NaN") if canary else self.buckets()
            )

        respx.get(QUERY_URL).mock(side_effect=answer)
        check = metric_check_from_spec(
            {"name": "request-duration", "interval": "1m", "compare": {"warmup": "0s"}}, path="m"
        )
        verdict = await evaluate(check, CTX, provider(), now=NOW, last_step=True)
        assert verdict.outcome is Outcome.ERROR
        assert 'histogram bucket le="0.1"' in verdict.summary and "NaN" in verdict.summary


def _answer(result_type: str, result: object) -> dict[str, object]:
    return {"status": "success", "data": {"resultType": result_type, "result": result}}


class TestMalformedAnswers:
    """A Prometheus-compatible proxy may answer valid JSON of the wrong shape: that is a
    QueryError naming the URL and what was wrong, never an IndexError or a TypeError."""

    MALFORMED = "malformed answer from http://prom.test:9090/api/v1/query: "

    @respx.mock
    @pytest.mark.parametrize(
        ("result_type", "result", "what"),
        [
            ("scalar", [], "scalar"),
            ("scalar", None, "scalar"),
            ("scalar", [1.0], "scalar"),
            ("vector", None, "result"),
            ("vector", [None], "entry"),
            ("vector", [{"metric": {}}], "no value"),
            ("vector", [{"metric": {}, "value": None}], "value"),
            ("vector", [{"metric": {}, "value": [1.0]}], "value"),
            ("vector", [{"metric": None, "value": [1.0, "1"]}], "metric"),
        ],
    )
    async def test_a_malformed_value_answer_is_a_query_error_naming_what_was_wrong(
        self, result_type: str, result: object, what: str
    ) -> None:
        respx.get(QUERY_URL).mock(
            return_value=httpx.Response(200, json=_answer(result_type, result))
        )
        with pytest.raises(QueryError) as info:
            await provider().run_query("up")
        assert str(info.value).startswith(self.MALFORMED) and what in str(info.value)
        assert "'up'" in str(info.value)

    @respx.mock
    @pytest.mark.parametrize(
        ("result", "what"),
        [
            (None, "result"),
            ([None], "entry"),
            ([{"metric": None, "value": [1.0, "1"]}], "metric"),
            ([{"metric": ["le", "+Inf"], "value": [1.0, "1"]}], "metric"),
            ([{"metric": {"le": "+Inf"}, "value": []}], "value"),
            ([{"metric": {"le": "+Inf"}}], "no value"),
            ([{"metric": {"le": "NaN"}, "value": [1.0, "1"]}], "no bucket boundary"),
        ],
    )
    async def test_a_malformed_bucket_answer_is_a_query_error_naming_what_was_wrong(
        self, result: object, what: str
    ) -> None:
        respx.get(QUERY_URL).mock(return_value=httpx.Response(200, json=_answer("vector", result)))
        with pytest.raises(QueryError) as info:
            await provider().query_buckets("sum by (le) (x)")
        assert str(info.value).startswith(self.MALFORMED) and what in str(info.value)

    @respx.mock
    @pytest.mark.parametrize(
        ("result", "what"),
        [
            ([None], "entry"),
            ([{"metric": {}, "values": None}], "values"),
            ([{"metric": {}, "values": [[1, "3"], "4"]}], "point"),
            ([{"metric": {}, "values": [[1]]}], "point"),
            ([{"metric": {}, "values": [[1e20, "3"]]}], "time is 1e+20"),
            ([{"metric": {}, "values": [["NaN", "3"]]}], 'time is "NaN"'),
        ],
    )
    async def test_a_malformed_range_answer_is_a_query_error_naming_what_was_wrong(
        self, result: object, what: str
    ) -> None:
        respx.get(f"{BASE}/api/v1/query_range").mock(
            return_value=httpx.Response(200, json=_answer("matrix", result))
        )
        start = datetime(2024, 1, 1, tzinfo=UTC)
        with pytest.raises(QueryError) as info:
            await provider().query_samples("x", start=start, end=start, step_seconds=10)
        message = str(info.value)
        assert message.startswith(
            "malformed answer from http://prom.test:9090/api/v1/query_range: "
        )
        assert what in message

    @respx.mock
    async def test_a_malformed_answer_is_an_error_verdict_not_a_traceback(self) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            if "primary" in request.url.params["query"]:
                return httpx.Response(200, json=vector("1000"))
            return httpx.Response(200, json=_answer("vector", [{"metric": {}, "value": None}]))

        respx.get(QUERY_URL).mock(side_effect=answer)
        check = metric_check_from_spec(
            {"name": "request-success-rate", "interval": "1m", "compare": {"warmup": "0s"}},
            path="m",
        )
        verdict = await evaluate(check, CTX, provider(), now=NOW, last_step=True)
        assert verdict.outcome is Outcome.ERROR and "malformed answer" in verdict.summary
