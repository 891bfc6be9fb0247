"""The Stackdriver (Google Cloud Monitoring) provider against a loopback monitoring API and
token endpoint that verifies each JWT's RS256 signature with ``openssl``.

The RS256 signer is compared byte for byte with ``openssl dgst -sha256 -sign`` (PKCS #1 v1.5
signatures are deterministic), so it is not only judged by code written alongside it.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

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
from analysis._stackdriver import (
    _TOKENS,
    StackdriverProvider,
    load_rsa_private_key,
    rs256_sign,
)
from tests.http_fixtures import free_port
from tests.vendors import Failure
from tests.vendors.stackdriver import StackdriverServer

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="kubernetes")


def openssl(*args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One RSA key pair for the module's servers, made now (never committed)."""
    path = tmp_path_factory.mktemp("sa-key")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
            "-out", str(path / "key.pem"))  # fmt: skip
    yield path


@pytest.fixture
async def server(key_dir: Path) -> AsyncIterator[StackdriverServer]:
    # The provider keeps access tokens per (token endpoint, client, key) for the process.
    # Every server of this module shares the key, and a new one may get the port of an
    # earlier one: its token endpoint is then the same URL, and a token the new server never
    # issued would be sent to it (401 instead of what the test asks for). Start clean.
    _TOKENS.clear()
    s = StackdriverServer((key_dir / "key.pem").read_text())
    await s.start()
    yield s
    await s.close()


def config(
    server: StackdriverServer,
    *,
    secret: Mapping[str, str] | None = None,
    timeout: float = 5.0,
    **spec: Any,
) -> ProviderConfig:
    data = dict(server.secret_data() or {}) if secret is None else dict(secret)
    raw = {**server.provider(), "secretRef": {"name": "gcloud-sa"}, **spec}
    return provider_config(parse_provider_spec(raw), secret=data, timeout_seconds=timeout)


def provider(
    server: StackdriverServer, *, environ: Mapping[str, str] | None = None, **kw: Any
) -> StackdriverProvider:
    """A provider of ``server``, which stands for Google's API (the pod's token may go there)."""
    return StackdriverProvider(
        config(server, **kw), environ=environ or {}, google_api=server.base_url
    )


def monitoring_requests(server: StackdriverServer) -> list[Any]:
    return [r for r in server.requests if r.path.startswith("/v3/")]


def token_requests(server: StackdriverServer) -> list[Any]:
    return [r for r in server.requests if r.path == "/token"]


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_parts(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, claims, _ = assertion.split(".")
    return json.loads(unb64url(head)), json.loads(unb64url(claims))


class TestRS256:
    def test_signature_equals_openssls_byte_for_byte(self, key_dir: Path) -> None:
        message = b"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJmbGFnZ2VyIn0"
        expected = openssl("dgst", "-sha256", "-sign", str(key_dir / "key.pem"), data=message)
        key = load_rsa_private_key((key_dir / "key.pem").read_text())
        assert rs256_sign(key, message) == expected
        assert rs256_sign(key, message) == expected  # blinding changes nothing visible

    def test_a_pkcs1_rsa_private_key_is_the_same_key(self, key_dir: Path) -> None:
        pkcs1 = openssl("pkey", "-in", str(key_dir / "key.pem"), "-traditional").decode()
        assert pkcs1.startswith("-----BEGIN RSA PRIVATE KEY-----")
        pkcs8 = (key_dir / "key.pem").read_text()
        assert load_rsa_private_key(pkcs1) == load_rsa_private_key(pkcs8)

    def test_a_key_that_is_not_rsa_is_refused(self, tmp_path: Path) -> None:
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", str(tmp_path / "ec.pem"))  # fmt: skip
        with pytest.raises(ValueError, match="not an RSA key"):
            load_rsa_private_key((tmp_path / "ec.pem").read_text())


class TestQuery:
    async def test_sends_the_mql_to_the_projects_time_series_query_with_a_granted_token(
        self, server: StackdriverServer
    ) -> None:
        server.answer(212.5)
        query = server.query("podinfo", "test")
        assert await provider(server).run_query(query) == 212.5
        grant = token_requests(server)[-1]
        form = dict(parse_qsl(grant.body.decode()))
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        header, claims = jwt_parts(form["assertion"])
        assert header == {"alg": "RS256", "typ": "JWT", "kid": server.key_id}
        assert claims["iss"] == server.CLIENT_EMAIL
        assert claims["aud"] == f"{server.base_url}/token"
        assert claims["scope"] == "https://www.googleapis.com/auth/monitoring.read"
        assert claims["exp"] - claims["iat"] == 3600
        call = monitoring_requests(server)[-1]
        assert (call.method, call.path) == (
            "POST",
            f"/v3/projects/{server.PROJECT}/timeSeries:query",
        )
        assert call.json() == {"query": query}
        assert call.headers["Authorization"].startswith("Bearer ya29.c.")

    async def test_the_first_value_of_the_newest_point_is_used(
        self, server: StackdriverServer
    ) -> None:
        server.answer(1.5)
        server.older = [90.0, 80.0]
        assert await provider(server).run_query(server.query("a", "b")) == 1.5

    async def test_an_int64_result_is_its_number_not_zero(self, server: StackdriverServer) -> None:
        server.value_type = "INT64"
        server.answer(42)
        assert await provider(server).run_query(server.query("a", "b")) == 42.0

    async def test_the_token_is_reused_until_shortly_before_it_expires(
        self, server: StackdriverServer
    ) -> None:
        for _ in range(3):
            await provider(server).run_query(server.query("a", "b"))
        assert len(token_requests(server)) == 1
        assert len(monitoring_requests(server)) == 3

    async def test_a_token_close_to_expiry_is_renewed(self, server: StackdriverServer) -> None:
        server.token_lifetime = 120  # inside the five minutes before expiry
        for _ in range(2):
            await provider(server).run_query(server.query("a", "b"))
        assert len(token_requests(server)) == 2

    async def test_without_a_key_the_metadata_server_gives_the_token(
        self, server: StackdriverServer
    ) -> None:
        server.answer(3.0)
        env = {"GCE_METADATA_HOST": f"127.0.0.1:{server.port}"}
        p = provider(server, secret={"project": server.PROJECT}, environ=env)
        assert await p.run_query(server.query("a", "b")) == 3.0
        asked = next(r for r in server.requests if r.path.startswith("/computeMetadata/"))
        assert asked.method == "GET"
        assert asked.headers["Metadata-Flavor"] == "Google"
        assert asked.param("scopes") == "https://www.googleapis.com/auth/monitoring.read"
        assert token_requests(server) == []

    async def test_the_pods_own_token_never_goes_to_an_address_a_template_names(
        self, server: StackdriverServer
    ) -> None:
        env = {"GCE_METADATA_HOST": f"127.0.0.1:{server.port}"}
        p = StackdriverProvider(
            config(server, secret={"project": server.PROJECT}), environ=env
        )  # server.base_url is not Google's API here
        with pytest.raises(AnalysisSpecError, match="serviceAccountKey") as caught:
            await p.run_query(server.query("a", "b"))
        assert caught.value.path == "spec.provider.address"
        assert not any(r.path.startswith("/computeMetadata/") for r in server.requests)


class TestNoData:
    async def test_no_time_series_is_no_data(self, server: StackdriverServer) -> None:
        server.answer(None)
        with pytest.raises(NoDataError, match="no time series"):
            await provider(server).run_query(server.query("a", "b"))

    async def test_nan_is_no_data(self, server: StackdriverServer) -> None:
        server.answer(math.nan)
        with pytest.raises(NoDataError, match="NaN"):
            await provider(server).run_query(server.query("a", "b"))

    @pytest.mark.parametrize(
        ("series", "words"),
        [
            ([{"labelValues": []}], "without points"),
            ([{"pointData": [{"values": []}]}], "without values"),
        ],
    )
    async def test_a_series_without_points_or_values_is_no_data(
        self, server: StackdriverServer, series: list[Any], words: str
    ) -> None:
        await provider(server).run_query(server.query("a", "b"))  # a token first
        server.fail_with(Failure(200, {"timeSeriesData": series}))
        with pytest.raises(NoDataError, match=words):
            await provider(server).run_query(server.query("a", "b"))


class TestCredentials:
    async def test_a_key_the_service_does_not_know_is_refused_by_its_signature(
        self, server: StackdriverServer, tmp_path: Path
    ) -> None:
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                "-out", str(tmp_path / "other.pem"))  # fmt: skip
        other = (tmp_path / "other.pem").read_text()
        key = {**server.service_account_key(), "private_key": other}
        secret = {"project": server.PROJECT, "serviceAccountKey": json.dumps(key)}
        with pytest.raises(
            UnauthorizedError, match="invalid_grant: Invalid JWT Signature"
        ) as caught:
            await provider(server, secret=secret).run_query(server.query("a", "b"))
        assert "PRIVATE KEY" not in str(caught.value)
        assert monitoring_requests(server) == []

    async def test_an_access_token_the_api_does_not_know_is_unauthenticated(
        self, server: StackdriverServer
    ) -> None:
        await provider(server).run_query(server.query("a", "b"))
        server.tokens.clear()  # revoked on the service's side
        with pytest.raises(UnauthorizedError, match="UNAUTHENTICATED") as caught:
            await provider(server).run_query(server.query("a", "b"))
        token = monitoring_requests(server)[-1].headers["Authorization"].removeprefix("Bearer ")
        assert caught.value.status_code == 401 and token not in str(caught.value)

    async def test_another_project_is_permission_denied(self, server: StackdriverServer) -> None:
        secret = {**(server.secret_data() or {}), "project": "someone-elses"}
        with pytest.raises(UnauthorizedError, match="PERMISSION_DENIED"):
            await provider(server, secret=secret).run_query(server.query("a", "b"))

    async def test_a_metadata_server_that_refuses_is_unauthorized(
        self, server: StackdriverServer
    ) -> None:
        server.fail_with(
            Failure(403, "Workload Identity is not enabled", content_type="text/plain")
        )
        env = {"GCE_METADATA_HOST": f"127.0.0.1:{server.port}"}
        with pytest.raises(
            UnauthorizedError, match=r"metadata server.*Workload Identity is not enabled"
        ):
            await provider(server, secret={"project": server.PROJECT}, environ=env).run_query(
                "fetch x"
            )

    @pytest.mark.parametrize(
        ("raw", "words"),
        [
            ("{not json", "is not JSON"),
            ('{"type": "authorized_user", "client_email": "a", "private_key": "b"}', "service_account"),
            ('{"type": "service_account", "client_email": "a@b"}', "has no private_key"),
            ('{"type": "service_account", "client_email": "a", "private_key": "-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----"}', "cannot be read"),
        ],
    )  # fmt: skip
    async def test_a_bad_service_account_key_names_the_secret_key(
        self, server: StackdriverServer, raw: str, words: str
    ) -> None:
        secret = {"project": server.PROJECT, "serviceAccountKey": raw}
        with pytest.raises(AnalysisSpecError, match=words) as caught:
            await provider(server, secret=secret).run_query("fetch x")
        assert caught.value.path == "spec.provider.secretRef serviceAccountKey"
        assert server.requests == []


class TestErrors:
    async def test_a_query_the_api_rejects_is_a_bad_query_with_its_message(
        self, server: StackdriverServer
    ) -> None:
        with pytest.raises(BadQueryError, match="INVALID_ARGUMENT: Line 1, column 1"):
            await provider(server).run_query("sum(rate(istio_requests_total[1m]))")

    @pytest.mark.parametrize("status", [401, 403])
    async def test_refusals_of_the_api_are_unauthorized(
        self, server: StackdriverServer, status: int
    ) -> None:
        await provider(server).run_query(server.query("a", "b"))  # a token first
        server.fail_with(
            Failure(
                status,
                {"error": {"code": status, "message": "denied", "status": "PERMISSION_DENIED"}},
            )
        )
        with pytest.raises(UnauthorizedError, match="denied") as caught:
            await provider(server).run_query(server.query("a", "b"))
        assert caught.value.status_code == status
        assert server.private_key_pem.splitlines()[1] not in str(caught.value)

    @pytest.mark.parametrize("status", [429, 500, 503])
    async def test_rate_limits_and_server_errors_are_http_status_errors(
        self, server: StackdriverServer, status: int
    ) -> None:
        await provider(server).run_query(server.query("a", "b"))
        body = {"error": {"code": status, "message": "try later", "status": "UNAVAILABLE"}}
        server.fail_with(Failure(status, body))
        with pytest.raises(HTTPStatusError, match="try later") as caught:
            await provider(server).run_query(server.query("a", "b"))
        assert caught.value.status_code == status and not isinstance(
            caught.value, UnauthorizedError
        )

    async def test_a_slow_answer_is_a_timeout(self, server: StackdriverServer) -> None:
        await provider(server).run_query(server.query("a", "b"))
        server.fail_with(Failure(status=200, delay=1.0))
        with pytest.raises(QueryTimeoutError, match=r"did not answer within 0\.2s"):
            await provider(server, timeout=0.2).run_query(server.query("a", "b"))

    async def test_an_unreachable_api_is_unavailable(self, server: StackdriverServer) -> None:
        dead = f"http://127.0.0.1:{free_port()}"
        with pytest.raises(ProviderUnavailableError, match="cannot reach Google Cloud Monitoring"):
            await provider(server, address=dead).run_query(server.query("a", "b"))

    @pytest.mark.parametrize(
        ("body", "content_type", "words"),
        [
            ("<html>proxy error</html>", "text/html", "not JSON"),
            ([1, 2], "application/json", "not a QueryTimeSeriesResponse"),
            ({"timeSeriesData": [{"pointData": [{"values": [{"distributionValue": {}}]}]}]},
             "application/json", "distributionValue, not a number"),
        ],
    )  # fmt: skip
    async def test_garbage_is_a_query_error(
        self, server: StackdriverServer, body: Any, content_type: str, words: str
    ) -> None:
        await provider(server).run_query(server.query("a", "b"))
        server.fail_with(Failure(200, body, content_type=content_type))
        with pytest.raises(QueryError, match=words):
            await provider(server).run_query(server.query("a", "b"))


class TestIsOnline:
    async def test_online_when_the_empty_query_is_invalid(self, server: StackdriverServer) -> None:
        assert await provider(server).is_online() is True
        assert monitoring_requests(server)[-1].json() == {"query": ""}

    async def test_offline_when_the_project_is_not_readable(
        self, server: StackdriverServer
    ) -> None:
        secret = {**(server.secret_data() or {}), "project": "not-ours"}
        assert await provider(server, secret=secret).is_online() is False


class TestSpec:
    def test_flaggers_documented_template_gives_a_config_the_provider_accepts(self) -> None:
        spec = parse_provider_spec({"type": "stackdriver", "secretRef": {"name": "gcloud-sa"}})
        cfg = provider_config(spec, secret={"project": "my-project-id"})
        assert (cfg.address, cfg.secret_value("project")) == (
            "https://monitoring.googleapis.com",
            "my-project-id",
        )
        assert isinstance(make_provider(cfg), StackdriverProvider)

    def test_a_secret_without_project_is_a_spec_error_naming_it(self) -> None:
        spec = parse_provider_spec({"type": "stackdriver", "secretRef": {"name": "gcloud-sa"}})
        with pytest.raises(AnalysisSpecError, match="'project'") as caught:
            provider_config(spec, secret={"serviceAccountKey": "{}"})
        assert caught.value.path == "spec.provider.secretRef"

    def test_no_secret_ref_is_a_spec_error(self) -> None:
        with pytest.raises(AnalysisSpecError) as caught:
            parse_provider_spec({"type": "stackdriver"})
        assert caught.value.path == "spec.provider.secretRef"


class TestEvaluate:
    def check(self, server: StackdriverServer) -> Any:
        return metric_check_from_spec(
            {"name": "latency p99", "templateRef": {"name": "bytes-sent"},
             "thresholdRange": {"max": 500}, "interval": "1m"},
            path="spec.analysis.metrics[0]",
            template_query=server.query("{{ target }}", "{{ namespace }}"),
        )  # fmt: skip

    async def test_a_good_value_passes_and_a_bad_one_fails(self, server: StackdriverServer) -> None:
        check = self.check(server)
        server.answer(120.0)
        good = await evaluate(check, CTX, provider(server), now=NOW)
        assert good.outcome is Outcome.PASS and good.value == 120.0
        assert "'podinfo-canary'" in monitoring_requests(server)[-1].json()["query"]
        server.answer(900.0)
        bad = await evaluate(check, CTX, provider(server), now=NOW)
        assert bad.outcome is Outcome.FAIL and bad.value == 900.0

    async def test_no_data_and_refusals_are_clear_verdicts(self, server: StackdriverServer) -> None:
        check = self.check(server)
        server.answer(None)
        empty = await evaluate(check, CTX, provider(server), now=NOW)
        assert empty.outcome is Outcome.NODATA
        assert empty.summary.startswith("no values found for custom metric: latency p99:")
        secret = {**(server.secret_data() or {}), "project": "not-ours"}
        refused = await evaluate(check, CTX, provider(server, secret=secret), now=NOW)
        assert refused.outcome is Outcome.ERROR and refused.error == "UnauthorizedError"
        assert "PERMISSION_DENIED" in refused.summary
