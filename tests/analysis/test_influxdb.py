"""The influxdb provider against a loopback stand-in of InfluxDB's v2 Flux query API."""

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
from analysis._influxdb import InfluxDBProvider, parse_annotated_csv
from tests.vendors import Failure
from tests.vendors.influxdb import InfluxDBServer

CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="istio")
QUERY = 'from(bucket: "default") |> range(start: -1m) |> mean()'

ANNOTATED = (
    "#datatype,string,long,dateTime:RFC3339,double,string\r\n"
    "#group,false,false,true,false,true\r\n"
    "#default,_result,,,,\r\n"
    ",result,table,_start,_value,_field\r\n"
    ",,0,2024-01-01T00:00:00Z,{value},v\r\n"
    "\r\n"
)


@pytest.fixture
async def server() -> AsyncIterator[InfluxDBServer]:
    srv = InfluxDBServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()


def provider_for(server: InfluxDBServer, *, timeout: float = 5.0) -> InfluxDBProvider:
    """The provider a user's MetricTemplate and Secret for ``server`` make."""
    spec = parse_provider_spec(server.provider() | {"secretRef": {"name": "influx-token"}})
    config = provider_config(spec, secret=server.secret_data(), timeout_seconds=timeout)
    provider = make_provider(config)
    assert isinstance(provider, InfluxDBProvider)
    return provider


def assert_no_credentials(server: InfluxDBServer, exc: BaseException) -> None:
    assert server.token not in str(exc)


class TestRequest:
    async def test_flux_is_posted_with_token_org_and_csv_dialect(
        self, server: InfluxDBServer
    ) -> None:
        await provider_for(server).run_query(QUERY)
        seen = server.requests[-1]
        assert (seen.method, seen.path, seen.param("org")) == (
            "POST",
            "/api/v2/query",
            "canary-org",
        )
        assert seen.headers["Authorization"] == "Token influx-token-8c2d41"
        assert seen.headers["Accept"] == "application/csv"
        assert seen.headers["Content-Type"] == "application/json"
        body = seen.json()
        assert (body["query"], body["type"]) == (QUERY, "flux")
        assert body["dialect"]["annotations"] == ["datatype", "group", "default"]
        assert "now" not in body

    async def test_at_is_sent_as_the_querys_now(self, server: InfluxDBServer) -> None:
        at = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
        await provider_for(server).run_query(QUERY, at=at)
        assert server.requests[-1].json()["now"] == "2024-05-06T07:08:09Z"


class TestValue:
    async def test_a_count_is_a_long_and_a_number(self, server: InfluxDBServer) -> None:
        server.answer(42)
        assert await provider_for(server).run_query(QUERY) == 42.0

    async def test_a_double(self, server: InfluxDBServer) -> None:
        server.answer(97.25)
        assert await provider_for(server).run_query(QUERY) == 97.25

    async def test_the_first_record_is_the_value(self, server: InfluxDBServer) -> None:
        server.records = [1.5, 2.5, 3.5]
        assert await provider_for(server).run_query(QUERY) == 1.5

    async def test_empty_answer_is_no_data(self, server: InfluxDBServer) -> None:
        server.answer(None)
        with pytest.raises(NoDataError, match="no records"):
            await provider_for(server).run_query(QUERY)

    async def test_a_blank_body_is_no_data(self, server: InfluxDBServer) -> None:
        server.fail_with(Failure(status=200, body="\r\n", content_type="text/csv"))
        with pytest.raises(NoDataError):
            await provider_for(server).run_query(QUERY)

    async def test_a_null_first_value_is_no_data(self, server: InfluxDBServer) -> None:
        server.records = [None, 2.0]
        with pytest.raises(NoDataError, match="null _value"):
            await provider_for(server).run_query(QUERY)

    async def test_nan_is_no_data(self, server: InfluxDBServer) -> None:
        server.answer(float("nan"))
        with pytest.raises(NoDataError, match="NaN"):
            await provider_for(server).run_query(QUERY)

    async def test_several_tables_is_an_error_suggesting_group(
        self, server: InfluxDBServer
    ) -> None:
        server.tables = 3
        with pytest.raises(MultipleSeriesError, match=r"3 tables.*group\(\)") as info:
            await provider_for(server).run_query(QUERY)
        assert info.value.series == 3

    async def test_a_string_value_is_not_a_number(self, server: InfluxDBServer) -> None:
        body = ANNOTATED.replace(",double,", ",string,").format(value="fast")
        server.fail_with(Failure(status=200, body=body, content_type="text/csv"))
        with pytest.raises(QueryError, match="string _value 'fast'"):
            await provider_for(server).run_query(QUERY)

    async def test_the_default_annotation_fills_an_empty_value(
        self, server: InfluxDBServer
    ) -> None:
        body = ANNOTATED.replace("#default,_result,,,,", "#default,_result,,,7,").format(value="")
        server.fail_with(Failure(status=200, body=body, content_type="text/csv"))
        assert await provider_for(server).run_query(QUERY) == 7.0

    def test_blocks_of_different_schemas_are_parsed_apart(self) -> None:
        text = ANNOTATED.format(value="1.5") + ANNOTATED.replace(",_field", ",host").format(
            value="2.5"
        )
        blocks = parse_annotated_csv(text)
        assert [b.columns[-1] for b in blocks] == ["_field", "host"]
        assert [b.cell(b.rows[0], "_value") for b in blocks] == ["1.5", "2.5"]
        assert blocks[0].cell(blocks[0].rows[0], "result") == "_result"

    def test_plain_csv_without_annotations(self) -> None:
        (block,) = parse_annotated_csv(",result,table,_value\r\n,_result,0,3\r\n")
        assert (block.datatypes, block.cell(block.rows[0], "_value")) == ((), "3")


class TestErrors:
    async def test_in_band_error_table_is_a_query_error_with_influxs_words(
        self, server: InfluxDBServer
    ) -> None:
        server.runtime_error = 'runtime error @3:6-3:30: filter: type conflict: "x", string'
        with pytest.raises(QueryError, match=r"failed to run query.*type conflict") as info:
            await provider_for(server).run_query(QUERY)
        assert_no_credentials(server, info.value)

    async def test_wrong_token_is_unauthorized(self, server: InfluxDBServer) -> None:
        provider = provider_for(server)
        server.token = "another-token-value"
        with pytest.raises(UnauthorizedError, match=r"HTTP 401.*unauthorized access") as info:
            await provider.run_query(QUERY)
        assert "influx-token-8c2d41" not in str(info.value)

    async def test_403_is_unauthorized(self, server: InfluxDBServer) -> None:
        server.fail_with(Failure(status=403, body={"code": "forbidden", "message": "no read"}))
        with pytest.raises(UnauthorizedError, match=r"HTTP 403.*no read") as info:
            await provider_for(server).run_query(QUERY)
        assert_no_credentials(server, info.value)

    async def test_a_compile_error_is_a_bad_query(self, server: InfluxDBServer) -> None:
        with pytest.raises(BadQueryError, match=r"HTTP 400.*compilation failed") as info:
            await provider_for(server).run_query("buckets()")
        assert_no_credentials(server, info.value)

    async def test_an_unknown_org_is_influxs_404_naming_the_org(
        self, server: InfluxDBServer
    ) -> None:
        provider = provider_for(server)
        server.org = "other-org"
        # The org names whose data it is, not a way in: it is shown (the token never is).
        with pytest.raises(HTTPStatusError, match=r'HTTP 404.*organization name "canary-org"'):
            await provider.run_query(QUERY)

    @pytest.mark.parametrize("status", [429, 500, 503])
    async def test_server_errors_are_http_status_errors(
        self, server: InfluxDBServer, status: int
    ) -> None:
        server.fail_with(Failure(status=status, body={"code": "internal error", "message": "boom"}))
        with pytest.raises(HTTPStatusError) as info:
            await provider_for(server).run_query(QUERY)
        assert info.value.status_code == status and not isinstance(info.value, UnauthorizedError)
        assert "boom" in str(info.value)
        assert_no_credentials(server, info.value)

    async def test_slow_answer_is_a_timeout(self, server: InfluxDBServer) -> None:
        server.fail_with(Failure(status=200, delay=2.0))
        with pytest.raises(QueryTimeoutError, match=r"did not answer within 0.2s"):
            await provider_for(server, timeout=0.2).run_query(QUERY)

    async def test_unreachable_address(self) -> None:
        gone = InfluxDBServer()
        await gone.start()
        provider = provider_for(gone)
        await gone.close()
        with pytest.raises(ProviderUnavailableError, match="cannot reach InfluxDB") as info:
            await provider.run_query(QUERY)
        assert_no_credentials(gone, info.value)

    @pytest.mark.parametrize(
        ("body", "match"),
        [
            ("<html><body>proxy says hi</body></html>", "without a _value column"),
            (json.dumps({"results": []}), "without a _value column"),
            (ANNOTATED.format(value="lots").replace(",double,", ",,"), "non-numeric _value"),
        ],
    )
    async def test_garbage_is_a_query_error(
        self, server: InfluxDBServer, body: str, match: str
    ) -> None:
        server.fail_with(Failure(status=200, body=body, content_type="text/html"))
        with pytest.raises(QueryError, match=match) as info:
            await provider_for(server).run_query(QUERY)
        assert type(info.value) is QueryError


class TestOnline:
    async def test_online_when_health_passes(self, server: InfluxDBServer) -> None:
        assert await provider_for(server).is_online() is True
        assert server.requests[-1].path == "/health"

    async def test_offline_when_health_fails(self, server: InfluxDBServer) -> None:
        server.fail_with(Failure(status=503, body={"status": "fail"}))
        assert await provider_for(server).is_online() is False


class TestSpec:
    TEMPLATE = {
        "type": "influxdb",
        "address": "http://influxdb.monitoring:8086",
        "secretRef": {"name": "influx-token"},
    }

    def test_flaggers_documented_template_gives_an_influxdb_provider(self) -> None:
        config = provider_config(
            parse_provider_spec(self.TEMPLATE), secret={"token": "t0ken-abc", "org": "my-org"}
        )
        provider = make_provider(config)
        assert isinstance(provider, InfluxDBProvider)

    def test_a_secret_without_org_names_the_secret_and_the_key(self) -> None:
        with pytest.raises(AnalysisSpecError) as info:
            provider_config(parse_provider_spec(self.TEMPLATE), secret={"token": "t0ken-abc"})
        assert info.value.path == "spec.provider.secretRef"
        assert "'org'" in str(info.value) and "t0ken-abc" not in str(info.value)

    def test_a_template_without_secret_ref_names_it(self) -> None:
        with pytest.raises(AnalysisSpecError) as info:
            parse_provider_spec({"type": "influxdb", "address": "http://influxdb:8086"})
        assert info.value.path == "spec.provider.secretRef"

    def test_a_template_without_address_names_it(self) -> None:
        spec = parse_provider_spec({"type": "influxdb", "secretRef": {"name": "influx-token"}})
        with pytest.raises(AnalysisSpecError) as info:
            provider_config(spec, secret={"token": "t0ken-abc", "org": "my-org"})
        assert info.value.path == "spec.provider.address"

    def test_the_provider_itself_refuses_a_config_without_org(self) -> None:
        config = ProviderConfig(type="influxdb", address="http://i", secret=(("token", "t0ken"),))
        with pytest.raises(AnalysisSpecError, match="'org'"):
            InfluxDBProvider(config)


class TestEvaluate:
    def check(self, server: InfluxDBServer, **threshold: float) -> MetricCheck:
        return metric_check_from_spec(
            {"name": "not-found", "interval": "1m", "thresholdRange": threshold},
            path="spec.analysis.metrics[0]",
            template_query=server.query(CTX.target, CTX.namespace),
        )

    async def test_good_value_passes_and_bad_fails(self, server: InfluxDBServer) -> None:
        check = self.check(server, max=5)
        server.answer(2)
        verdict = await evaluate(check, CTX, provider_for(server), now=datetime.now(UTC))
        assert (verdict.outcome, verdict.value) == (Outcome.PASS, 2.0)
        flux = server.requests[-1].json()["query"]
        assert "range(start: -1m)" in flux and '== "podinfo"' in flux and '== "test"' in flux
        server.answer(12)
        verdict = await evaluate(check, CTX, provider_for(server), now=datetime.now(UTC))
        assert (verdict.outcome, verdict.value) == (Outcome.FAIL, 12.0)

    async def test_no_records_is_a_no_data_verdict(self, server: InfluxDBServer) -> None:
        server.answer(None)
        verdict = await evaluate(
            self.check(server, max=5), CTX, provider_for(server), now=datetime.now(UTC)
        )
        assert verdict.outcome is Outcome.NODATA
        assert verdict.summary.startswith("no values found for custom metric: not-found:")

    async def test_a_refused_token_is_an_error_verdict(self, server: InfluxDBServer) -> None:
        provider = provider_for(server)
        server.token = "rotated-token-value"
        verdict = await evaluate(self.check(server, max=5), CTX, provider, now=datetime.now(UTC))
        assert (verdict.outcome, verdict.error) == (Outcome.ERROR, "UnauthorizedError")
        assert "refused the credentials" in verdict.summary
        assert "influx-token-8c2d41" not in verdict.summary
