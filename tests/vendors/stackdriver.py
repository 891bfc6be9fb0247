"""Google Cloud Monitoring's MQL ``timeSeries:query``, its OAuth token endpoint and the GCE
metadata server's token, on loopback.

:class:`StackdriverServer` makes a service account at start: an RSA key pair made by the
``openssl`` command in a temporary directory (no private key is ever committed), and the
JSON key a user downloads from Google Cloud, whose ``token_uri`` points here. It serves:

* ``POST /token``: the JWT-bearer grant Google documents for service accounts. The JWT's
  header (``RS256``, the key's ``kid``), claims (``iss`` the client email, ``aud`` this
  ``token_uri``, a monitoring ``scope``, ``iat``/``exp`` at most an hour apart and current)
  and RS256 signature are checked, the signature with ``openssl dgst -verify`` and the
  public key, independently of the provider's signer. It answers ``access_token``,
  ``expires_in`` (:attr:`StackdriverServer.token_lifetime`), or Google's OAuth error body.
* ``GET /computeMetadata/v1/instance/service-accounts/default/token``: the metadata server
  (``Metadata-Flavor: Google`` required), for Application Default Credentials on GKE.
* ``POST /v3/projects/{project}/timeSeries:query``: a Bearer token it issued (401
  ``UNAUTHENTICATED`` otherwise), the project of the key (403 ``PERMISSION_DENIED``), a JSON
  body with a non-empty MQL ``query`` that starts with ``fetch`` (400 ``INVALID_ARGUMENT``).
  The answer is one time series whose points are newest first: :attr:`VendorServer.value`,
  then :attr:`StackdriverServer.older`; None is an answer without ``timeSeriesData``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import secrets
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.vendors import VendorServer

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/monitoring.read",
        "https://www.googleapis.com/auth/monitoring",
        "https://www.googleapis.com/auth/cloud-platform",
    }
)
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def oauth_error(error: str, description: str, status: int = 400) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def api_error(status: int, code: str, message: str) -> web.Response:
    """Google APIs' JSON error (google.rpc.Status)."""
    return web.json_response(
        {"error": {"code": status, "message": message, "status": code}}, status=status
    )


async def openssl(*args: str) -> tuple[int, bytes]:
    """Run the ``openssl`` command; (exit status, output)."""
    proc = await asyncio.create_subprocess_exec(
        "openssl",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out


class StackdriverServer(VendorServer):
    type = "stackdriver"
    PROJECT = "flagger-demo-4711"
    CLIENT_EMAIL = "flagger@flagger-demo-4711.iam.gserviceaccount.com"

    def __init__(self, private_key_pem: str | None = None) -> None:
        """``private_key_pem`` reuses a key made earlier (tests share one); else start() makes one."""
        super().__init__()
        self.older: list[float] = []
        self.value_type = "DOUBLE"
        self.token_lifetime = 3599
        self.tokens: dict[str, float] = {}  # issued access token -> expiry (epoch seconds)
        self.key_id = secrets.token_hex(20)
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.private_key_pem = private_key_pem or ""

    # -- keys -------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        assert self._dir is not None, "start() the server first"
        return Path(self._dir.name)

    @property
    def private_key_file(self) -> Path:
        return self.directory / "key.pem"

    @property
    def public_key_file(self) -> Path:
        return self.directory / "public.pem"

    async def start(self) -> StackdriverServer:
        if shutil.which("openssl") is None:
            raise RuntimeError("the openssl command is needed to make the service account key")
        self._dir = tempfile.TemporaryDirectory(prefix="stackdriver-")
        if self.private_key_pem:
            self.private_key_file.write_text(self.private_key_pem)
        else:
            status, out = await openssl(
                "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                "-out", str(self.private_key_file),
            )  # fmt: skip
            assert status == 0, out
        status, out = await openssl(
            "pkey", "-in", str(self.private_key_file), "-pubout", "-out", str(self.public_key_file)
        )
        assert status == 0, out
        self.private_key_pem = self.private_key_file.read_text()
        await super().start()
        return self

    async def close(self) -> None:
        await super().close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def service_account_key(self) -> dict[str, str]:
        """The JSON key as Google Cloud hands it out, its token_uri pointing here."""
        return {
            "type": "service_account",
            "project_id": self.PROJECT,
            "private_key_id": self.key_id,
            "private_key": self.private_key_pem,
            "client_email": self.CLIENT_EMAIL,
            "client_id": "104467531276410958317",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": f"{self.base_url}/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/flagger",
        }

    # -- what a user writes -------------------------------------------------------

    def provider(self) -> dict[str, Any]:
        return {"type": "stackdriver", "address": self.base_url}

    def secret_data(self) -> dict[str, str] | None:
        return {
            "project": self.PROJECT,
            "serviceAccountKey": json.dumps(self.service_account_key(), indent=2),
        }

    def query(self, target: str, namespace: str) -> str:
        """Flagger's documented MQL: the p99 response latency of the canary service."""
        return (
            "fetch k8s_container\n"
            "| metric 'istio.io/service/server/response_latencies'\n"
            "| filter\n"
            f"    (metric.destination_service_name == '{target}-canary'\n"
            f"    && metric.destination_service_namespace == '{namespace}')\n"
            "| align delta(1m)\n"
            "| every 1m\n"
            "| group_by [],\n"
            "    [value_response_latencies_percentile:\n"
            "      percentile(value.response_latencies, 99)]\n"
        )

    # -- the APIs -----------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/token", self._token)
        app.router.add_get(TOKEN_PATH, self._metadata_token)
        app.router.add_post("/v3/projects/{project}/timeSeries:query", self._query)

    def _issue(self) -> dict[str, Any]:
        token = "ya29.c." + secrets.token_urlsafe(40)
        self.tokens[token] = time.time() + self.token_lifetime
        return {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}

    async def _token(self, request: web.Request) -> web.Response:
        await self.seen(request)
        failure = await self.failure_response()
        if failure is not None:
            return failure
        if request.content_type != "application/x-www-form-urlencoded":
            return oauth_error("invalid_request", "Expected a form-encoded body.")
        form = await request.post()
        grant = form.get("grant_type")
        if grant != JWT_BEARER:
            return oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant!r}")
        assertion = form.get("assertion")
        if not isinstance(assertion, str) or assertion.count(".") != 2:
            return oauth_error("invalid_grant", "Invalid JWT: the assertion is not a JWT.")
        head_b64, claims_b64, sig_b64 = assertion.split(".")
        try:
            header = json.loads(_unb64url(head_b64))
            claims = json.loads(_unb64url(claims_b64))
            signature = _unb64url(sig_b64)
        except ValueError:
            return oauth_error("invalid_grant", "Invalid JWT: cannot decode its parts.")
        if header.get("alg") != "RS256" or header.get("kid") != self.key_id:
            return oauth_error("invalid_grant", "Invalid JWT: unexpected alg or kid.")
        if claims.get("iss") != self.CLIENT_EMAIL:
            return oauth_error("invalid_grant", "Invalid grant: account not found")
        if claims.get("aud") != f"{self.base_url}/token":
            return oauth_error("invalid_grant", "Invalid JWT: audience is not the token endpoint.")
        if not set(str(claims.get("scope", "")).split()) & SCOPES:
            return oauth_error(
                "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        iat, exp, now = claims.get("iat"), claims.get("exp"), time.time()
        if not (
            isinstance(iat, int)
            and isinstance(exp, int)
            and 0 < exp - iat <= 3600
            and iat <= now + 60
            and exp > now
        ):
            return oauth_error(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                "timeframe. Check your iat and exp values in the JWT claim.",
            )
        data = self.directory / f"jwt-{secrets.token_hex(6)}"
        data.write_bytes(f"{head_b64}.{claims_b64}".encode())
        sig = data.with_suffix(".sig")
        sig.write_bytes(signature)
        status, _ = await openssl(
            "dgst",
            "-sha256",
            "-verify",
            str(self.public_key_file),
            "-signature",
            str(sig),
            str(data),
        )
        if status != 0:
            return oauth_error("invalid_grant", "Invalid JWT Signature.")
        return web.json_response(self._issue())

    async def _metadata_token(self, request: web.Request) -> web.Response:
        await self.seen(request)
        failure = await self.failure_response()
        if failure is not None:
            return failure
        if request.headers.get("Metadata-Flavor") != "Google":
            return web.Response(
                status=403,
                text="Missing required header: Metadata-Flavor: Google",
                content_type="text/plain",
            )
        return web.json_response(self._issue())

    async def _query(self, request: web.Request) -> web.Response:
        seen = await self.seen(request)
        failure = await self.failure_response()
        if failure is not None:
            return failure
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        if self.tokens.get(token, 0.0) < time.time():
            return api_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
            )
        if request.match_info["project"] != self.PROJECT:
            return api_error(
                403,
                "PERMISSION_DENIED",
                "Permission monitoring.timeSeries.list denied (or the resource may not exist).",
            )
        try:
            body = json.loads(seen.body)
        except ValueError:
            return api_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, str) or not query.strip():
            return api_error(
                400, "INVALID_ARGUMENT", "Field query had an invalid value: query is empty."
            )
        if not query.lstrip().startswith(("fetch", "{")):
            return api_error(
                400,
                "INVALID_ARGUMENT",
                "Line 1, column 1: Expected a table operation such as 'fetch'.",
            )
        return web.json_response(self._answer())

    def _answer(self) -> dict[str, Any]:
        descriptor = {
            "labelDescriptors": [],
            "pointDescriptors": [
                {
                    "key": "value_response_latencies_percentile",
                    "valueType": self.value_type,
                    "metricKind": "GAUGE",
                    "unit": "ms",
                }
            ],
        }
        if self.value is None:
            return {"timeSeriesDescriptor": descriptor}
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        points = []
        for i, value in enumerate([self.value, *self.older]):
            at = end - timedelta(minutes=i)
            typed: dict[str, Any] = (
                {"int64Value": str(int(value))}
                if self.value_type == "INT64"
                # proto3 JSON writes the non-finite doubles as strings
                else {
                    "doubleValue": value
                    if math.isfinite(value)
                    else str(value).replace("nan", "NaN")
                }
            )
            points.append(
                {
                    "values": [typed],
                    "timeInterval": {
                        "startTime": (at - timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
                        "endTime": at.isoformat().replace("+00:00", "Z"),
                    },
                }
            )
        return {
            "timeSeriesDescriptor": descriptor,
            "timeSeriesData": [{"labelValues": [], "pointData": points}],
        }
