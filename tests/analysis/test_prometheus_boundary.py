"""What may leave the Prometheus provider: only the package's errors, naming what was wrong,
never a credential, and never later than the timeout.

A verdict's summary quotes the provider's error, and the summary goes on to the Canary's
status, its Events and the alerts: a token a proxy echoes back would reach all of them.
Any other exception escapes ``evaluate`` (whose contract is to never raise for a metric's
problem) and the controller reports it as a defect, without saying what was wrong.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import respx

from analysis import (
    AnalysisSpecError,
    HTTPStatusError,
    Outcome,
    PrometheusAPIError,
    PrometheusProvider,
    ProviderConfig,
    ProviderUnavailableError,
    QueryContext,
    QueryError,
    QueryTimeoutError,
    evaluate,
    metric_check_from_spec,
    provider_config_from_spec,
)
from tests.http_fixtures import never_finishing_url

BASE = "http://prom.test:9090"
QUERY_URL = f"{BASE}/api/v1/query"
CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="kubernetes")
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TOKEN = "tok-S3CRET-9f8e7d"
# Not a certificate, but shaped like one: its content must not reach a message.
BAD_CA = "-----BEGIN CERTIFICATE-----\nQ0VSVC1DT05URU5ULTQyCg==\n-----END CERTIFICATE-----\n"
HUGE = "9" * 400  # a JSON integer no float holds


def provider(**kw: object) -> PrometheusProvider:
    return PrometheusProvider(ProviderConfig(address=BASE, **kw))  # type: ignore[arg-type]


def answer(data: str) -> httpx.Response:
    """A success answer whose ``data`` is the JSON text ``data``, as a proxy may write it."""
    body = '{"status":"success","data":' + data + "}"
    return httpx.Response(200, content=body.encode(), headers={"content-type": "application/json"})


def sample(value: str) -> str:
    """The ``data`` of a one-sample vector whose value is the JSON text ``value``."""
    return '{"resultType":"vector","result":[{"metric":{},"value":[0,' + value + "]}]}"


class TestCredentialsNeverReachMessages:
    """Every credential the provider holds is masked in whatever it quotes from an answer."""

    @respx.mock
    async def test_a_token_a_proxy_echoes_in_its_401_body_is_masked(self) -> None:
        respx.get(QUERY_URL).mock(
            return_value=httpx.Response(401, text=f"invalid bearer token {TOKEN}")
        )
        with pytest.raises(HTTPStatusError) as info:
            await provider(token=TOKEN).run_query("up")
        message = str(info.value)
        assert TOKEN not in message
        assert "HTTP 401" in message and "invalid bearer token ***" in message

    @respx.mock
    async def test_a_token_in_prometheus_error_field_is_masked(self) -> None:
        body = {"status": "error", "errorType": f"auth {TOKEN}", "error": f"token {TOKEN} denied"}
        respx.get(QUERY_URL).mock(return_value=httpx.Response(403, json=body))
        with pytest.raises(PrometheusAPIError) as info:
            await provider(token=TOKEN).run_query("up")
        assert TOKEN not in str(info.value) and TOKEN not in info.value.error_type
        assert "token *** denied" in str(info.value)

    @respx.mock
    async def test_a_secret_token_echoed_anywhere_in_an_answer_is_masked(self) -> None:
        # A malformed answer is quoted too: a proxy's echo may land in the value itself.
        respx.get(QUERY_URL).mock(return_value=answer(sample(f'"{TOKEN}"')))
        config = provider_config_from_spec(
            {"address": BASE, "secretRef": {"name": "prom-auth"}}, secret={"token": TOKEN}
        )
        with pytest.raises(QueryError) as info:
            await PrometheusProvider(config).run_query("up")
        assert TOKEN not in str(info.value) and "non-numeric value '***'" in str(info.value)

    @respx.mock
    async def test_basic_auth_user_password_and_header_echoed_back_are_masked(self) -> None:
        header = "Basic " + base64.b64encode(b"alice-ops:pw-S3CRET").decode()
        echo = f"user alice-ops with pw-S3CRET refused; you sent {header}"
        respx.get(QUERY_URL).mock(return_value=httpx.Response(401, text=echo))
        with pytest.raises(HTTPStatusError) as info:
            await provider(username="alice-ops", password="pw-S3CRET").run_query("up")
        message = str(info.value)
        assert "alice-ops" not in message and "pw-S3CRET" not in message
        assert header.split()[1] not in message

    @respx.mock
    async def test_a_credential_header_of_the_spec_echoed_back_is_masked(self) -> None:
        respx.get(QUERY_URL).mock(
            return_value=httpx.Response(403, text="key apikey-S3CRET-77 may not read tenant-a")
        )
        config = provider_config_from_spec(
            {
                "address": BASE,
                "headers": {"X-Api-Key": ["apikey-S3CRET-77"], "X-Scope-OrgID": ["tenant-a"]},
            }
        )
        with pytest.raises(HTTPStatusError) as info:
            await PrometheusProvider(config).run_query("up")
        # The tenant names whose data it is, not how to get in: it stays readable.
        assert str(info.value).endswith("key *** may not read tenant-a")

    @respx.mock
    async def test_a_verdict_summary_never_shows_the_echoed_token(self) -> None:
        respx.get(QUERY_URL).mock(
            return_value=httpx.Response(401, text=f"invalid bearer token {TOKEN}")
        )
        check = metric_check_from_spec(
            {"name": "request-success-rate", "thresholdRange": {"min": 99}}, path="m"
        )
        verdict = await evaluate(check, CTX, provider(token=TOKEN), now=NOW)
        assert verdict.outcome is Outcome.ERROR
        assert TOKEN not in verdict.summary and "HTTP 401" in verdict.summary

    def test_a_secret_address_without_scheme_names_the_secret_key_not_its_password(
        self,
    ) -> None:
        with pytest.raises(AnalysisSpecError) as info:
            provider_config_from_spec(
                {"secretRef": {"name": "prom-auth"}},
                secret={"address": "admin:hunter2-S3CRET@prom.test:9090", "token": TOKEN},
            )
        assert info.value.path == "spec.provider.secretRef"
        assert "Secret prom-auth key 'address'" in str(info.value)
        assert "hunter2" not in str(info.value) and "admin" not in str(info.value)
        assert "'***@prom.test:9090'" in str(info.value)

    def test_a_spec_address_without_scheme_is_quoted_without_its_password(self) -> None:
        with pytest.raises(AnalysisSpecError) as info:
            provider_config_from_spec({"address": "admin:hunter2-S3CRET@prom.test:9090"})
        assert info.value.path == "spec.provider.address"
        assert "hunter2" not in str(info.value)

    def test_a_bad_default_address_is_blamed_on_the_default_not_the_spec(self) -> None:
        with pytest.raises(AnalysisSpecError) as info:
            provider_config_from_spec(None, default_address="prometheus:9090")
        assert "the default address (the Canary's spec.metricsServer" in str(info.value)


class TestMalformedAnswersAreQueryErrors:
    """JSON Prometheus never sends, but a proxy may: a QueryError saying what, never a crash."""

    @respx.mock
    @pytest.mark.parametrize(
        "data",
        [sample(HUGE), '{"resultType":"scalar","result":[0,' + HUGE + "]}"],
        ids=["vector", "scalar"],
    )
    async def test_a_value_too_large_for_a_float_is_a_query_error(self, data: str) -> None:
        respx.get(QUERY_URL).mock(return_value=answer(data))
        with pytest.raises(QueryError, match=r"returned a number too large for a float: 999"):
            await provider().run_query("up")

    @respx.mock
    async def test_an_le_too_large_for_a_float_is_no_bucket_boundary(self) -> None:
        data = (
            '{"resultType":"vector","result":[{"metric":{"le":' + HUGE + '},"value":[0,"1"]},'
            '{"metric":{"le":"+Inf"},"value":[0,"1"]}]}'
        )
        respx.get(QUERY_URL).mock(return_value=answer(data))
        with pytest.raises(QueryError, match=r"le=999.* is no bucket boundary"):
            await provider().query_buckets("sum by (le) (x)")

    @respx.mock
    async def test_a_boolean_value_is_no_number(self) -> None:
        # float(True) is 1.0: a success rate of "true" would have read as 1%.
        respx.get(QUERY_URL).mock(return_value=answer(sample("true")))
        with pytest.raises(QueryError, match="non-numeric value True"):
            await provider().run_query("up")

    @respx.mock
    @pytest.mark.parametrize("method", ["run_query", "query_buckets"])
    async def test_json_nested_past_the_recursion_limit_is_a_malformed_answer(
        self, method: str
    ) -> None:
        respx.get(QUERY_URL).mock(return_value=answer("[" * 100_000 + "]" * 100_000))
        with pytest.raises(QueryError, match="its JSON is nested too deeply to read"):
            await getattr(provider(), method)("up")

    @respx.mock
    async def test_a_huge_value_is_an_error_verdict_not_a_traceback(self) -> None:
        respx.get(QUERY_URL).mock(return_value=answer(sample(HUGE)))
        check = metric_check_from_spec(
            {"name": "request-success-rate", "thresholdRange": {"min": 99}}, path="m"
        )
        verdict = await evaluate(check, CTX, provider(), now=NOW)
        assert verdict.outcome is Outcome.ERROR and "too large for a float" in verdict.summary


class TestBadSettingsAreNamed:
    """A setting no request can be sent with is an error naming it, never ssl's or urllib's."""

    @pytest.mark.parametrize(
        ("ca_crt", "said"),
        [
            (BAD_CA, "the Secret's 'ca.crt' key is not a PEM certificate OpenSSL can load ("),
            (
                BAD_CA.replace("Q0VS", "\N{LATIN CAPITAL LETTER A WITH DIAERESIS}"),
                "the Secret's 'ca.crt' key is not a PEM certificate (it holds characters past",
            ),
            # A CA certificate is no credential: its words are not masked in the message.
            ("not a certificate", "the Secret's 'ca.crt' key is not a PEM certificate OpenSSL"),
        ],
        ids=["not-pem", "not-ascii", "words"],
    )
    async def test_a_bad_ca_crt_in_the_secret_names_the_key_not_the_certificate(
        self, ca_crt: str, said: str
    ) -> None:
        config = provider_config_from_spec(
            {"address": "https://prom.test:9090", "secretRef": {"name": "prom-auth"}},
            secret={"token": TOKEN, "ca.crt": ca_crt},
        )
        with pytest.raises(ProviderUnavailableError) as info:
            await PrometheusProvider(config).run_query("up")
        message = str(info.value)
        assert message.startswith(
            "cannot check the TLS certificate of Prometheus at https://prom.test:9090: "
        )
        assert said in message
        assert "VC1DT05URU5U" not in message and "_ssl.c" not in message

    async def test_a_ca_file_that_cannot_be_read_is_named(self, tmp_path: Path) -> None:
        missing = tmp_path / "ca.pem"
        config = ProviderConfig(address="https://prom.test:9090", ca_file=str(missing))
        with pytest.raises(ProviderUnavailableError) as info:
            await PrometheusProvider(config).run_query("up")
        assert f"ca_file {str(missing)!r} cannot be read (No such file" in str(info.value)

    async def test_a_bad_ca_is_an_error_verdict_not_a_traceback(self) -> None:
        config = ProviderConfig(address="https://prom.test:9090", ca_data="not a certificate")
        check = metric_check_from_spec(
            {"name": "request-success-rate", "thresholdRange": {"min": 99}}, path="m"
        )
        verdict = await evaluate(check, CTX, PrometheusProvider(config), now=NOW)
        assert verdict.outcome is Outcome.ERROR and "ca_data is not a PEM" in verdict.summary

    @pytest.mark.parametrize(
        ("address", "why"),
        [
            ("http://[prom", "'[' or ']' around its host"),
            ("http://prom.test:99999", "port is not a number"),
            ("http://prom test:9090", "a space"),
            ("http://", "no host"),
        ],
    )
    def test_an_address_that_is_no_url_is_refused_naming_the_field(
        self, address: str, why: str
    ) -> None:
        with pytest.raises(AnalysisSpecError) as info:
            provider_config_from_spec(None, secret={"address": address})
        assert info.value.path == "spec.provider.secretRef"
        assert "key 'address'" in str(info.value) and why in str(info.value)
        with pytest.raises(AnalysisSpecError) as info:
            provider_config_from_spec({"address": address})
        assert info.value.path == "spec.provider.address" and why in str(info.value)

    async def test_a_provider_given_an_address_that_is_no_url_says_so(self) -> None:
        p = PrometheusProvider(ProviderConfig(address="http://[prom"))
        with pytest.raises(AnalysisSpecError) as info:
            await p.run_query("up")
        assert info.value.path.startswith("spec.provider.address")
        assert "'http://[prom'" in str(info.value)
        assert await p.is_online() is False

    async def test_a_host_httpx_refuses_is_an_address_error(self) -> None:
        # urlsplit takes it; httpx's IDNA encoding does not.
        p = PrometheusProvider(ProviderConfig(address="http://\N{GRINNING FACE}.test:9090"))
        with pytest.raises(AnalysisSpecError, match="is no URL httpx can use"):
            await p.run_query("up")

    async def test_a_token_past_ascii_is_a_query_error_without_the_token(self) -> None:
        with pytest.raises(ProviderUnavailableError) as info:
            await provider(token="tök-S3CRET-1").run_query("up")
        assert "cannot carry" in str(info.value) and "S3CRET" not in str(info.value)


class TestTimeoutBoundsTheWholeRequest:
    """``timeout_seconds`` is how long a query may take, not how long each read may wait."""

    @pytest.mark.parametrize("shared_client", [False, True], ids=["own-client", "shared-client"])
    async def test_a_server_that_never_finishes_its_answer_times_out(
        self, shared_client: bool
    ) -> None:
        async with never_finishing_url() as url, httpx.AsyncClient() as client:
            config = ProviderConfig(address=url, timeout_seconds=0.5)
            p = PrometheusProvider(config, client=client if shared_client else None)
            # Only the provider's own 0.5 s deadline can end the call; the outer limit just
            # keeps a broken provider from hanging the suite.
            with pytest.raises(QueryTimeoutError) as info:
                await asyncio.wait_for(p.run_query("up"), timeout=60)
        assert str(info.value) == f"Prometheus at {url} did not answer within 0.5s (query 'up')"
