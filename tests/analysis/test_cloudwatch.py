"""The CloudWatch provider against a loopback GetMetricData that verifies SigV4 like AWS.

The signer is checked first against AWS's published examples (so the server's own verifier
is not the only judge), then every path of the provider against tests/vendors/cloudwatch.py.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import yaml

from analysis import (
    AnalysisSpecError,
    BadQueryError,
    HTTPStatusError,
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
from analysis._cloudwatch import (
    AWSCredentials,
    CloudWatchProvider,
    canonical_request,
    sign_request,
    signing_key,
    string_to_sign,
)
from tests.http_fixtures import free_port
from tests.vendors import Failure
from tests.vendors.cloudwatch import CloudWatchServer, STSServer

FIXTURES = Path(__file__).parents[1] / "fixtures" / "flagger" / "metric-templates.yaml"
AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="kubernetes")

# The example credentials of AWS's SigV4 documentation and test suite.
EXAMPLE = AWSCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_TIME = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
SUITE_SCOPE = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"


@pytest.fixture
async def server() -> AsyncIterator[CloudWatchServer]:
    s = CloudWatchServer()
    await s.start()
    yield s
    await s.close()


@pytest.fixture
async def sts(server: CloudWatchServer) -> AsyncIterator[STSServer]:
    s = STSServer(server)
    await s.start()
    yield s
    await s.close()


def config(
    server: CloudWatchServer,
    *,
    secret: Mapping[str, str] | bool | None = True,
    interval: str = "1m",
    timeout: float = 5.0,
    **spec: Any,
) -> ProviderConfig:
    """What the controller builds from the server's MetricTemplate and Secret."""
    data = server.secret_data() if secret is True else (secret or None)
    raw = {**server.provider(), **spec}
    if data:
        raw["secretRef"] = {"name": "aws"}
    return provider_config(
        parse_provider_spec(raw), secret=data, interval=interval, timeout_seconds=timeout
    )


def provider(
    server: CloudWatchServer, *, environ: Mapping[str, str] | None = None, **kw: Any
) -> CloudWatchProvider:
    """A provider of ``server``, which stands for AWS (it may receive the controller's own
    credentials)."""
    return CloudWatchProvider(
        config(server, **kw), environ=environ or {}, trusted_endpoint=server.base_url
    )


def sent_body(server: CloudWatchServer) -> Any:
    return server.requests[-1].json()


class TestSignatureVersion4AgainstAWSExamples:
    """Known answers published by AWS: a signer that only agrees with itself proves nothing."""

    def test_get_vanilla_of_the_sigv4_test_suite(self) -> None:
        headers = sign_request(
            "GET", "https://example.amazonaws.com/", {}, b"", EXAMPLE,
            region="us-east-1", service="service", now=SUITE_TIME,
        )  # fmt: skip
        assert headers["X-Amz-Date"] == "20150830T123600Z"
        assert headers["Authorization"] == (
            f"AWS4-HMAC-SHA256 Credential={SUITE_SCOPE}, SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        )

    def test_get_vanilla_canonical_request_and_string_to_sign(self) -> None:
        empty = hashlib.sha256(b"").hexdigest()
        canonical, signed = canonical_request(
            "GET",
            "/",
            "",
            {"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"},
            empty,
        )
        assert canonical == (
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            f"host;x-amz-date\n{empty}"
        )
        assert signed == "host;x-amz-date"
        assert string_to_sign(
            "20150830T123600Z", "20150830/us-east-1/service/aws4_request", canonical
        ) == (
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        )

    def test_post_vanilla_of_the_sigv4_test_suite(self) -> None:
        headers = sign_request(
            "POST", "https://example.amazonaws.com/", {}, b"", EXAMPLE,
            region="us-east-1", service="service", now=SUITE_TIME,
        )  # fmt: skip
        assert headers["Authorization"].endswith(
            "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        )

    def test_query_parameters_are_sorted_as_in_get_vanilla_query_order_key_case(self) -> None:
        headers = sign_request(
            "GET", "https://example.amazonaws.com/?Param2=value2&Param1=value1", {}, b"", EXAMPLE,
            region="us-east-1", service="service", now=SUITE_TIME,
        )  # fmt: skip
        assert headers["Authorization"].endswith(
            "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        )

    def test_signing_key_derivation_of_the_iam_documentation(self) -> None:
        key = signing_key(EXAMPLE.secret_access_key, "20120215", "us-east-1", "iam")
        assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"

    def test_iam_list_users_example_with_a_body_and_content_type(self) -> None:
        body = b"Action=ListUsers&Version=2010-05-08"
        content_type = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        headers = sign_request(
            "POST", "https://iam.amazonaws.com/", content_type, body, EXAMPLE,
            region="us-east-1", service="iam", now=datetime(2011, 9, 9, 23, 36, tzinfo=UTC),
        )  # fmt: skip
        canonical, _ = canonical_request(
            "POST", "/", "", {k: v for k, v in headers.items() if k != "Authorization"},
            hashlib.sha256(body).hexdigest(),
        )  # fmt: skip
        assert hashlib.sha256(canonical.encode()).hexdigest() == (
            "3511de7e95d28ecd39e9513b642aee07e54f4941150d8df8bf94b328ef7e55e2"
        )
        assert headers["Authorization"] == (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/iam/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date, "
            "Signature=ced6826de92d2bdeed8f846f0bf508e8559e98e4b0199114b84c54174deb456c"
        )

    def test_a_session_token_is_sent_and_signed(self) -> None:
        temporary = AWSCredentials("ASIAEXAMPLE", "secret", "the-session-token")
        headers = sign_request(
            "POST", "http://127.0.0.1:8080/", {}, b"{}", temporary,
            region="eu-west-1", service="monitoring", now=SUITE_TIME,
        )  # fmt: skip
        assert headers["X-Amz-Security-Token"] == "the-session-token"
        assert headers["Host"] == "127.0.0.1:8080"
        assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in headers["Authorization"]


class TestGetMetricDataRequest:
    async def test_sends_flaggers_queries_window_and_json_protocol(
        self, server: CloudWatchServer
    ) -> None:
        server.answer(0.25)
        query = server.query("podinfo", "test")
        assert await provider(server).run_query(query, at=AT) == 0.25
        seen = server.requests[-1]
        assert (seen.method, seen.path) == ("POST", "/")
        assert seen.headers["X-Amz-Target"] == "GraniteServiceVersion20100801.GetMetricData"
        assert seen.headers["Content-Type"] == "application/x-amz-json-1.0"
        assert f"Credential={server.ACCESS_KEY_ID}/20" in seen.headers["Authorization"]
        assert "/eu-west-1/monitoring/aws4_request" in seen.headers["Authorization"]
        body = seen.json()
        assert body["MetricDataQueries"] == json.loads(query)
        assert body["EndTime"] == AT.timestamp()
        assert body["StartTime"] == AT.timestamp() - 10 * 60  # Flagger: 10 x interval
        assert (body["MaxDatapoints"], body["ScanBy"]) == (20, "TimestampDescending")

    async def test_the_window_is_ten_intervals_of_the_metric(
        self, server: CloudWatchServer
    ) -> None:
        await provider(server, interval="30s").run_query(server.query("a", "b"), at=AT)
        body = sent_body(server)
        assert body["EndTime"] - body["StartTime"] == 300

    async def test_without_at_the_window_ends_now(self, server: CloudWatchServer) -> None:
        before = datetime.now(UTC).timestamp()
        await provider(server).run_query(server.query("a", "b"))
        after = datetime.now(UTC).timestamp()
        assert before - 0.001 <= sent_body(server)["EndTime"] <= after + 0.001

    async def test_the_first_value_of_the_first_result_is_the_newest_point(
        self, server: CloudWatchServer
    ) -> None:
        server.answer(2.0)
        server.older = [50.0, 70.0]
        assert await provider(server).run_query(server.query("a", "b"), at=AT) == 2.0

    async def test_a_single_metric_stat_query_of_the_flagger_fixture(
        self, server: CloudWatchServer
    ) -> None:
        template = next(
            d
            for d in yaml.safe_load_all(FIXTURES.read_text())
            if d["spec"]["provider"]["type"] == "cloudwatch"
        )
        server.answer(41.5)
        assert await provider(server).run_query(template["spec"]["query"], at=AT) == 41.5

    async def test_default_endpoint_is_the_regional_monitoring_host(self) -> None:
        def endpoint(region: str) -> str:
            cfg = provider_config(parse_provider_spec({"type": "cloudwatch", "region": region}))
            return repr(CloudWatchProvider(cfg))

        assert "https://monitoring.ap-northeast-1.amazonaws.com" in endpoint("ap-northeast-1")
        assert "https://monitoring.cn-north-1.amazonaws.com.cn" in endpoint("cn-north-1")


class TestNoData:
    async def test_empty_values_are_no_data(self, server: CloudWatchServer) -> None:
        server.answer(None)
        with pytest.raises(NoDataError, match=r"no data points for result 'e1' in the last 10m"):
            await provider(server).run_query(server.query("a", "b"), at=AT)

    async def test_nan_is_no_data(self, server: CloudWatchServer) -> None:
        server.answer(math.nan)
        with pytest.raises(NoDataError, match="NaN"):
            await provider(server).run_query(server.query("a", "b"), at=AT)

    async def test_no_results_is_no_data(self, server: CloudWatchServer) -> None:
        server.fail_with(Failure(200, {"MetricDataResults": [], "Messages": []}))
        with pytest.raises(NoDataError, match="no MetricDataResults"):
            await provider(server).run_query(server.query("a", "b"), at=AT)

    async def test_a_forbidden_result_is_unauthorized(self, server: CloudWatchServer) -> None:
        answer = {"MetricDataResults": [{"Id": "e1", "Values": [], "StatusCode": "Forbidden"}]}
        server.fail_with(Failure(200, answer))
        with pytest.raises(UnauthorizedError, match="Forbidden"):
            await provider(server).run_query(server.query("a", "b"), at=AT)


class TestCredentials:
    async def test_the_controllers_own_credentials_never_sign_for_an_address_a_template_names(
        self, server: CloudWatchServer
    ) -> None:
        environ = {"AWS_ACCESS_KEY_ID": server.ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": "s" * 40}
        p = CloudWatchProvider(config(server, secret={}), environ=environ)
        with pytest.raises(AnalysisSpecError, match="aws_access_key_id") as caught:
            await p.run_query(server.query("a", "b"), at=AT)
        assert caught.value.path == "spec.provider.address"
        assert server.requests == []

    async def test_a_wrong_secret_key_fails_the_signature_check(
        self, server: CloudWatchServer
    ) -> None:
        secret = {"aws_access_key_id": server.ACCESS_KEY_ID, "aws_secret_access_key": "x" * 40}
        with pytest.raises(UnauthorizedError) as caught:
            await provider(server, secret=secret).run_query(server.query("a", "b"), at=AT)
        assert caught.value.status_code == 403
        assert "SignatureDoesNotMatch" in str(caught.value)
        assert "x" * 40 not in str(caught.value)

    async def test_an_unknown_access_key_is_an_invalid_client_token(
        self, server: CloudWatchServer
    ) -> None:
        secret = {"aws_access_key_id": "AKIANOTKNOWN0000", "aws_secret_access_key": "s" * 40}
        with pytest.raises(UnauthorizedError, match="InvalidClientTokenId") as caught:
            await provider(server, secret=secret).run_query(server.query("a", "b"), at=AT)
        assert "AKIANOTKNOWN0000" not in str(caught.value)

    async def test_a_scope_for_another_region_is_refused(self, server: CloudWatchServer) -> None:
        with pytest.raises(UnauthorizedError, match="valid region"):
            await provider(server, region="us-east-1").run_query(server.query("a", "b"), at=AT)

    async def test_the_environment_is_used_without_a_secret(self, server: CloudWatchServer) -> None:
        env = {
            "AWS_ACCESS_KEY_ID": server.ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": server.SECRET_ACCESS_KEY,
        }
        server.answer(3.0)
        assert (
            await provider(server, secret=None, environ=env).run_query(server.query("a", "b"))
            == 3.0
        )

    async def test_the_secret_wins_over_the_environment(self, server: CloudWatchServer) -> None:
        env = {"AWS_ACCESS_KEY_ID": "AKIAWRONG", "AWS_SECRET_ACCESS_KEY": "wrong-secret"}
        server.answer(4.0)
        assert await provider(server, environ=env).run_query(server.query("a", "b")) == 4.0

    async def test_temporary_credentials_in_the_secret_send_their_session_token(
        self, server: CloudWatchServer
    ) -> None:
        server.keys["ASIATEMPORARY01"] = ("temporary-secret-key", "session-token-value", None)
        secret = {
            "aws_access_key_id": "ASIATEMPORARY01",
            "aws_secret_access_key": "temporary-secret-key",
            "aws_session_token": "session-token-value",
        }
        server.answer(5.0)
        assert await provider(server, secret=secret).run_query(server.query("a", "b")) == 5.0
        assert server.requests[-1].headers["X-Amz-Security-Token"] == "session-token-value"
        without = {k: v for k, v in secret.items() if k != "aws_session_token"}
        with pytest.raises(UnauthorizedError, match="InvalidClientTokenId") as caught:
            await provider(server, secret=without).run_query(server.query("a", "b"))
        assert "temporary-secret-key" not in str(caught.value)

    async def test_half_a_key_pair_in_the_secret_names_the_missing_key(
        self, server: CloudWatchServer
    ) -> None:
        with pytest.raises(UnauthorizedError, match="no aws_secret_access_key"):
            await provider(server, secret={"aws_access_key_id": "AKIAONLY"}).run_query("[]")
        assert server.requests == []

    async def test_no_credentials_anywhere_says_where_to_put_them(
        self, server: CloudWatchServer
    ) -> None:
        with pytest.raises(UnauthorizedError, match="AWS_WEB_IDENTITY_TOKEN_FILE"):
            await provider(server, secret=None).run_query(server.query("a", "b"))
        assert server.requests == []


class TestWebIdentity:
    def environ(self, sts: STSServer, token_file: Path, **extra: str) -> dict[str, str]:
        token_file.write_text(sts.web_identity_token + "\n")
        return {
            "AWS_ROLE_ARN": sts.ROLE_ARN,
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
            "AWS_ENDPOINT_URL_STS": sts.base_url,
            **extra,
        }

    async def test_assumes_the_role_and_signs_with_the_temporary_credentials(
        self, server: CloudWatchServer, sts: STSServer, tmp_path: Path
    ) -> None:
        env = self.environ(sts, tmp_path / "token", AWS_ROLE_SESSION_NAME="flagger-session")
        server.answer(7.5)
        assert (
            await provider(server, secret=None, environ=env).run_query(server.query("a", "b"))
            == 7.5
        )
        call = sts.requests[-1]
        form = dict(parse_qsl(call.body.decode()))
        assert (call.method, call.path) == ("POST", "/")
        assert form["Action"] == "AssumeRoleWithWebIdentity"
        assert form["Version"] == "2011-06-15"
        assert form["RoleSessionName"] == "flagger-session"
        assert form["RoleArn"] == sts.ROLE_ARN
        assert form["WebIdentityToken"] == sts.web_identity_token
        assert "Authorization" not in call.headers  # the call is not signed
        used = server.requests[-1].headers
        assert f"Credential={sts.issued[-1]}/" in used["Authorization"]
        assert used["X-Amz-Security-Token"].startswith("FwoGZXIvYXdzE")

    async def test_credentials_are_reused_until_shortly_before_they_expire(
        self, server: CloudWatchServer, sts: STSServer, tmp_path: Path
    ) -> None:
        env = self.environ(sts, tmp_path / "token")
        for _ in range(3):
            await provider(server, secret=None, environ=env).run_query(server.query("a", "b"))
        assert len(sts.requests) == 1

    async def test_credentials_close_to_expiry_are_renewed(
        self, server: CloudWatchServer, sts: STSServer, tmp_path: Path
    ) -> None:
        sts.lifetime_seconds = 120  # inside the five minutes before expiry
        env = self.environ(sts, tmp_path / "token")
        for _ in range(2):
            await provider(server, secret=None, environ=env).run_query(server.query("a", "b"))
        assert len(sts.requests) == 2 and len(set(sts.issued)) == 2

    async def test_a_refused_web_identity_token_is_unauthorized_without_the_token(
        self, server: CloudWatchServer, sts: STSServer, tmp_path: Path
    ) -> None:
        env = self.environ(sts, tmp_path / "token")
        (tmp_path / "token").write_text("eyJ.not-the-right-token.sig")
        with pytest.raises(UnauthorizedError, match="InvalidIdentityToken") as caught:
            await provider(server, secret=None, environ=env).run_query(server.query("a", "b"))
        assert "not-the-right-token" not in str(caught.value)
        assert server.requests == []

    async def test_a_role_the_token_may_not_assume_is_access_denied(
        self, server: CloudWatchServer, sts: STSServer, tmp_path: Path
    ) -> None:
        env = self.environ(sts, tmp_path / "token", AWS_ROLE_ARN="arn:aws:iam::1:role/other")
        with pytest.raises(UnauthorizedError, match="AccessDenied"):
            await provider(server, secret=None, environ=env).run_query(server.query("a", "b"))

    async def test_a_missing_token_file_is_named(
        self, server: CloudWatchServer, sts: STSServer, tmp_path: Path
    ) -> None:
        env = self.environ(sts, tmp_path / "token")
        env["AWS_WEB_IDENTITY_TOKEN_FILE"] = str(tmp_path / "absent")
        with pytest.raises(UnauthorizedError, match="absent"):
            await provider(server, secret=None, environ=env).run_query(server.query("a", "b"))
        assert sts.requests == []


class TestErrors:
    async def test_a_query_that_is_not_json_is_a_bad_query_before_any_request(
        self, server: CloudWatchServer
    ) -> None:
        with pytest.raises(BadQueryError, match="not JSON"):
            await provider(server).run_query('SELECT AVG(CPUUtilization) FROM SCHEMA("AWS/EC2")')
        with pytest.raises(BadQueryError, match="array of MetricDataQuery"):
            await provider(server).run_query('{"Id": "m1"}')
        assert server.requests == []

    async def test_a_query_aws_rejects_is_a_bad_query_with_its_message(
        self, server: CloudWatchServer
    ) -> None:
        query = '[{"Id": "M1", "Expression": "SUM(METRICS())"}]'
        with pytest.raises(BadQueryError, match=r"ValidationError: .*must start with a lowercase"):
            await provider(server).run_query(query)

    @pytest.mark.parametrize("status", [401, 403])
    async def test_refused_credentials_are_unauthorized(
        self, server: CloudWatchServer, status: int
    ) -> None:
        body = {"__type": "AccessDeniedException", "message": "User is not authorized"}
        server.fail_with(Failure(status, body, content_type="application/x-amz-json-1.0"))
        with pytest.raises(UnauthorizedError, match="not authorized") as caught:
            await provider(server).run_query(server.query("a", "b"))
        assert caught.value.status_code == status
        assert server.SECRET_ACCESS_KEY not in str(caught.value)

    @pytest.mark.parametrize("status", [429, 500, 503])
    async def test_rate_limits_and_server_errors_are_http_status_errors(
        self, server: CloudWatchServer, status: int
    ) -> None:
        body = {"__type": "InternalServiceError", "message": "try again"}
        server.fail_with(Failure(status, body))
        with pytest.raises(HTTPStatusError) as caught:
            await provider(server).run_query(server.query("a", "b"))
        assert caught.value.status_code == status and not isinstance(
            caught.value, UnauthorizedError
        )
        assert "try again" in str(caught.value)

    async def test_throttling_answered_with_400_is_not_a_bad_query(
        self, server: CloudWatchServer
    ) -> None:
        server.fail_with(Failure(400, {"__type": "Throttling", "message": "Rate exceeded"}))
        with pytest.raises(HTTPStatusError, match=r"rate limited.*Rate exceeded"):
            await provider(server).run_query(server.query("a", "b"))

    async def test_a_slow_answer_is_a_timeout(self, server: CloudWatchServer) -> None:
        server.fail_with(Failure(status=200, delay=1.0))
        with pytest.raises(QueryTimeoutError, match=r"did not answer within 0\.2s"):
            await provider(server, timeout=0.2).run_query(server.query("a", "b"))

    async def test_an_unreachable_address_is_unavailable(self, server: CloudWatchServer) -> None:
        dead = f"http://127.0.0.1:{free_port()}"
        with pytest.raises(ProviderUnavailableError, match="cannot reach Amazon CloudWatch"):
            await provider(server, address=dead).run_query("[]")

    @pytest.mark.parametrize(
        ("body", "content_type", "words"),
        [
            ("<html>gateway</html>", "text/html", "not JSON"),
            ({"Unexpected": []}, "application/x-amz-json-1.0", "without a MetricDataResults"),
            ({"MetricDataResults": [{"Id": "e1"}]}, "application/x-amz-json-1.0", "without Values"),
            (
                {"MetricDataResults": [{"Id": "e1", "Values": ["1"]}]},
                "application/json",
                "non-numeric",
            ),
        ],
    )
    async def test_garbage_is_a_query_error(
        self, server: CloudWatchServer, body: Any, content_type: str, words: str
    ) -> None:
        server.fail_with(Failure(200, body, content_type=content_type))
        with pytest.raises(QueryError, match=words):
            await provider(server).run_query(server.query("a", "b"))


class TestIsOnline:
    async def test_online_when_the_empty_query_is_refused_as_a_bad_request(
        self, server: CloudWatchServer
    ) -> None:
        assert await provider(server).is_online() is True
        assert server.requests[-1].json()["MetricDataQueries"] == []

    async def test_offline_when_the_credentials_are_refused(self, server: CloudWatchServer) -> None:
        secret = {"aws_access_key_id": server.ACCESS_KEY_ID, "aws_secret_access_key": "wrong"}
        assert await provider(server, secret=secret).is_online() is False


class TestSpec:
    def test_flaggers_documented_template_gives_a_config_the_provider_accepts(self) -> None:
        template = next(
            d
            for d in yaml.safe_load_all(FIXTURES.read_text())
            if d["spec"]["provider"]["type"] == "cloudwatch"
        )
        cfg = provider_config(parse_provider_spec(template["spec"]["provider"]), interval="1m")
        assert (cfg.type, cfg.region, cfg.address, cfg.secret) == (
            "cloudwatch",
            "eu-west-1",
            "",
            (),
        )
        assert isinstance(make_provider(cfg), CloudWatchProvider)

    def test_without_region_the_spec_error_names_the_field(self) -> None:
        with pytest.raises(AnalysisSpecError) as caught:
            parse_provider_spec({"type": "cloudwatch"})
        assert caught.value.path == "spec.provider.region"

    async def test_a_config_without_region_is_an_error_verdict_not_a_crash(self) -> None:
        cfg = ProviderConfig(type="cloudwatch", address="")
        with pytest.raises(AnalysisSpecError, match="region"):
            await CloudWatchProvider(cfg, environ={}).run_query("[]")


class TestEvaluate:
    def check(self, server: CloudWatchServer) -> Any:
        return metric_check_from_spec(
            {"name": "app error rate", "templateRef": {"name": "cloudwatch-error-rate"},
             "thresholdRange": {"max": 0.1}, "interval": "1m"},
            path="spec.analysis.metrics[0]",
            template_query=server.query("{{ target }}", "{{ namespace }}"),
        )  # fmt: skip

    async def test_a_good_value_passes_and_a_bad_one_fails(self, server: CloudWatchServer) -> None:
        check = self.check(server)
        server.answer(0.02)
        good = await evaluate(check, CTX, provider(server), now=AT)
        assert good.outcome is Outcome.PASS and good.value == 0.02
        dims = sent_body(server)["MetricDataQueries"][1]["MetricStat"]["Metric"]["Dimensions"]
        assert dims == [{"Name": "appName", "Value": "podinfo.test"}]
        server.answer(0.5)
        bad = await evaluate(check, CTX, provider(server), now=AT)
        assert bad.outcome is Outcome.FAIL and bad.value == 0.5

    async def test_no_data_and_refusals_are_clear_verdicts(self, server: CloudWatchServer) -> None:
        check = self.check(server)
        server.answer(None)
        empty = await evaluate(check, CTX, provider(server), now=AT)
        assert empty.outcome is Outcome.NODATA
        assert empty.summary.startswith("no values found for custom metric: app error rate:")
        wrong = {"aws_access_key_id": server.ACCESS_KEY_ID, "aws_secret_access_key": "not-it"}
        refused = await evaluate(check, CTX, provider(server, secret=wrong), now=AT)
        assert refused.outcome is Outcome.ERROR and refused.error == "UnauthorizedError"
        assert "refused the credentials (HTTP 403): SignatureDoesNotMatch" in refused.summary
