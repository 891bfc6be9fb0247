"""Amazon CloudWatch's GetMetricData (AWS JSON 1.0) and STS AssumeRoleWithWebIdentity, on loopback.

:class:`CloudWatchServer` answers ``POST /`` with ``X-Amz-Target:
GraniteServiceVersion20100801.GetMetricData`` as the AWS API reference documents it, and
checks the request the way AWS does: it recomputes the Signature Version 4 signature from
what arrived with the secret key it knows (its own code, not the provider's signer) and
refuses a missing, malformed, stale or wrong signature, an unknown access key, a scope for
another region or service, and a temporary key without its session token, each with
AWS's error code and a 403 (400 for a malformed header). A request it accepts must have
the documented shape (``MetricDataQueries`` with valid ``Id`` and one of ``MetricStat`` or
``Expression``, ``StartTime`` before ``EndTime``), else a 400 ``ValidationError``.

It answers one ``MetricDataResult`` per query whose ``ReturnData`` is not false, values newest
first: :attr:`VendorServer.value`, then :attr:`CloudWatchServer.older` (None: no values).

:class:`STSServer` is the regional STS endpoint for IRSA: ``AssumeRoleWithWebIdentity``
(Query protocol, unsigned) checks the role and the web identity token and answers the
documented XML with fresh temporary credentials, which it registers with the CloudWatch
server so they are accepted there (with their session token) until they expire.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote
from xml.sax.saxutils import escape

from aiohttp import web

from tests.vendors import LOOPBACK, Seen, VendorServer

TARGET = "GraniteServiceVersion20100801.GetMetricData"
JSON_10 = "application/x-amz-json-1.0"
_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<cred>[^,]+), ?SignedHeaders=(?P<signed>[^,]+), ?"
    r"Signature=(?P<sig>[0-9a-f]{64})$"
)


def aws_error(status: int, code: str, message: str) -> web.Response:
    """An AWS JSON 1.0 error of a Query-compatible service (CloudWatch): body and header."""
    return web.Response(
        status=status,
        text=json.dumps({"__type": code, "message": message}),
        content_type=JSON_10,
        headers={"x-amzn-query-error": f"{code};Sender"},
    )


def _uri(text: str, slash: bool) -> str:
    return quote(text, safe="/-_.~" if slash else "-_.~")


def expected_signature(
    request: web.Request, body: bytes, signed: list[str], secret: str, scope: str
) -> str:
    """The SigV4 signature AWS would compute for ``request`` (written apart from the provider)."""
    header_lines = []
    for name in signed:
        values = request.headers.getall(name, [])
        joined = ",".join(" ".join(v.split()) for v in values)
        header_lines.append(f"{name}:{joined}\n")
    query = sorted(
        (_uri(k, False), _uri(v, False))
        for k, v in parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True)
    )
    canonical = "\n".join(
        [
            request.method,
            _uri(request.rel_url.raw_path, True),
            "&".join(f"{k}={v}" for k, v in query),
            "".join(header_lines),
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    amz_date = request.headers.get("X-Amz-Date", "")
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    date, region, service, terminator = scope.split("/")
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class CloudWatchServer(VendorServer):
    type = "cloudwatch"
    REGION = "eu-west-1"
    ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
    SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

    def __init__(self) -> None:
        super().__init__()
        # access key id -> (secret access key, session token or None, expiry or None)
        self.keys: dict[str, tuple[str, str | None, float | None]] = {
            self.ACCESS_KEY_ID: (self.SECRET_ACCESS_KEY, None, None)
        }
        self.older: list[float] = []

    # -- what a user writes -------------------------------------------------------

    def provider(self) -> dict[str, Any]:
        return {"type": "cloudwatch", "region": self.REGION, "address": self.base_url}

    def secret_data(self) -> dict[str, str] | None:
        return {
            "aws_access_key_id": self.ACCESS_KEY_ID,
            "aws_secret_access_key": self.SECRET_ACCESS_KEY,
        }

    def query(self, target: str, namespace: str) -> str:
        """Flagger's documented error-rate example: ErrorCount / RequestCount of the app."""

        def stat(ident: str, name: str) -> dict[str, Any]:
            return {
                "Id": ident,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "MyKubernetesCluster",
                        "MetricName": name,
                        "Dimensions": [{"Name": "appName", "Value": f"{target}.{namespace}"}],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                    "Unit": "Count",
                },
                "ReturnData": False,
            }

        queries = [
            {"Id": "e1", "Expression": "m1 / m2", "Label": "ErrorRate"},
            stat("m1", "ErrorCount"),
            stat("m2", "RequestCount"),
        ]
        return json.dumps(queries, indent=2)

    # -- the API ----------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/", self._handle)

    def _check_signature(self, request: web.Request, body: bytes) -> web.Response | None:
        auth = request.headers.get("Authorization")
        if auth is None:
            return aws_error(403, "MissingAuthenticationToken", "Missing Authentication Token")
        match = _AUTH.match(auth)
        if match is None:
            return aws_error(
                400,
                "IncompleteSignature",
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.",
            )
        cred = match["cred"].split("/")
        if len(cred) != 5 or cred[4] != "aws4_request":
            return aws_error(
                400, "IncompleteSignature", f"Credential is malformed: {match['cred']}"
            )
        key_id, date, region, service = cred[:4]
        known = self.keys.get(key_id)
        if known is None or (known[2] is not None and known[2] < time.time()):
            return aws_error(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            )
        secret, token, _ = known
        if region != self.REGION:
            return aws_error(
                403,
                "SignatureDoesNotMatch",
                f"Credential should be scoped to a valid region, not '{region}'.",
            )
        if service != "monitoring":
            return aws_error(
                403,
                "SignatureDoesNotMatch",
                f"Credential should be scoped to correct service: 'monitoring', not '{service}'.",
            )
        signed = match["signed"].split(";")
        if "host" not in signed or "x-amz-date" not in signed or signed != sorted(signed):
            return aws_error(
                403,
                "SignatureDoesNotMatch",
                "The host and x-amz-date headers must be signed, names sorted.",
            )
        amz_date = request.headers.get("X-Amz-Date", "")
        try:
            sent = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return aws_error(400, "IncompleteSignature", f"Invalid X-Amz-Date: {amz_date!r}")
        if date != amz_date[:8]:
            return aws_error(
                403, "SignatureDoesNotMatch", "Date in Credential scope does not match X-Amz-Date."
            )
        if abs(datetime.now(UTC) - sent) > timedelta(minutes=15):
            return aws_error(403, "SignatureDoesNotMatch", f"Signature expired: {amz_date}")
        want = expected_signature(request, body, signed, secret, "/".join(cred[1:]))
        if not hmac.compare_digest(want, match["sig"]):
            return aws_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.",
            )
        if token is not None and (
            "x-amz-security-token" not in signed
            or request.headers.get("X-Amz-Security-Token") != token
        ):
            return aws_error(
                403,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            )
        return None

    async def _handle(self, request: web.Request) -> web.Response:
        seen = await self.seen(request)
        failure = await self.failure_response()
        if failure is not None:
            return failure
        refused = self._check_signature(request, seen.body)
        if refused is not None:
            return refused
        if request.headers.get("X-Amz-Target") != TARGET:
            return aws_error(
                400,
                "UnknownOperationException",
                f"Unknown operation {request.headers.get('X-Amz-Target')}",
            )
        if request.headers.get("Content-Type") != JSON_10:
            return aws_error(400, "SerializationException", "Expected application/x-amz-json-1.0")
        try:
            body = json.loads(seen.body)
        except ValueError:
            return aws_error(
                400, "SerializationException", "Start of structure or map found where not expected."
            )
        if not isinstance(body, dict):
            return aws_error(400, "SerializationException", "Expected a JSON object.")
        problem = _validate(body)
        if problem is not None:
            return aws_error(400, *problem)
        return web.json_response(self._results(body), content_type=JSON_10)

    def _results(self, body: dict[str, Any]) -> dict[str, Any]:
        end = int(body["EndTime"]) // 60 * 60
        values = [] if self.value is None else [self.value, *self.older]
        results = []
        for q in body["MetricDataQueries"]:
            if q.get("ReturnData") is False:
                continue
            results.append(
                {
                    "Id": q["Id"],
                    "Label": q.get("Label", q["Id"]),
                    "Timestamps": [end - 60 * i for i in range(len(values))],
                    "Values": values,
                    "StatusCode": "Complete",
                }
            )
        return {"MetricDataResults": results, "Messages": []}


def _validate(body: dict[str, Any]) -> tuple[str, str] | None:
    """GetMetricData's documented constraints: (code, message) of the first broken one."""
    for name in ("MetricDataQueries", "StartTime", "EndTime"):
        if name not in body:
            return "MissingParameter", f"The parameter {name} is required."
    queries = body["MetricDataQueries"]
    if not isinstance(queries, list) or not queries:
        return "ValidationError", "The parameter MetricDataQueries must contain at least 1 item."
    start, end = body["StartTime"], body["EndTime"]
    if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in (start, end)):
        return "SerializationException", "StartTime and EndTime must be epoch seconds."
    if start >= end:
        return "ValidationError", "The parameter StartTime must be less than the parameter EndTime."
    for i, q in enumerate(queries, 1):
        if not isinstance(q, dict) or not isinstance(q.get("Id"), str) or not _ID.match(q["Id"]):
            return (
                "ValidationError",
                f"The value for parameter MetricDataQueries.member.{i}.Id must start with a "
                "lowercase letter and contain only letters, numbers and underscores.",
            )
        if ("MetricStat" in q) == ("Expression" in q):
            return (
                "ValidationError",
                f"Exactly one element of the metricStat or the expression must be set in "
                f"MetricDataQueries.member.{i}.",
            )
    if all(q.get("ReturnData") is False for q in queries):
        return "ValidationError", "At least one MetricDataQuery must have ReturnData true."
    return None


class STSServer:
    """AWS STS for IRSA: AssumeRoleWithWebIdentity, Query protocol, XML answers.

    Not a :class:`VendorServer` (a user writes no MetricTemplate for it): it stands beside
    the :class:`CloudWatchServer` whose credentials it issues.
    """

    ROLE_ARN = "arn:aws:iam::123456789012:role/flagger-cloudwatch"
    NS = "https://sts.amazonaws.com/doc/2011-06-15/"

    def __init__(self, cloudwatch: CloudWatchServer) -> None:
        self.cloudwatch = cloudwatch
        self.web_identity_token = "eyJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(48)
        self.lifetime_seconds = 3600
        self.issued: list[str] = []
        self.requests: list[Seen] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    async def start(self) -> STSServer:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        assert site._server is not None
        self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _error(self, status: int, code: str, message: str) -> web.Response:
        text = (
            f'<ErrorResponse xmlns="{self.NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error>"
            f"<RequestId>{secrets.token_hex(16)}</RequestId></ErrorResponse>"
        )
        return web.Response(status=status, text=text, content_type="text/xml")

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            Seen(
                request.method,
                request.path,
                tuple(request.query.items()),
                dict(request.headers),
                body,
            )
        )
        if not request.content_type.startswith("application/x-www-form-urlencoded"):
            return self._error(400, "InvalidParameterValue", "Expected a form-encoded body.")
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        if form.get("Action") != "AssumeRoleWithWebIdentity" or form.get("Version") != "2011-06-15":
            return self._error(
                400, "InvalidAction", f"Could not find operation {form.get('Action')}"
            )
        for name in ("RoleArn", "RoleSessionName", "WebIdentityToken"):
            if not form.get(name):
                return self._error(400, "MissingParameter", f"The parameter {name} is required.")
        if not re.fullmatch(r"[\w+=,.@-]{2,64}", form["RoleSessionName"]):
            return self._error(400, "ValidationError", "RoleSessionName is invalid.")
        if form["WebIdentityToken"] != self.web_identity_token:
            return self._error(
                400,
                "InvalidIdentityToken",
                "Couldn't retrieve verification key from your identity provider.",
            )
        if form["RoleArn"] != self.ROLE_ARN:
            return self._error(
                403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"
            )
        key_id = "ASIA" + secrets.token_hex(8).upper()
        secret = secrets.token_urlsafe(30)
        token = "FwoGZXIvYXdzE" + secrets.token_urlsafe(60)
        expires = time.time() + self.lifetime_seconds
        self.cloudwatch.keys[key_id] = (secret, token, expires)
        self.issued.append(key_id)
        expiration = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = (
            f'<AssumeRoleWithWebIdentityResponse xmlns="{self.NS}">'
            "<AssumeRoleWithWebIdentityResult>"
            "<SubjectFromWebIdentityToken>system:serviceaccount:flagger-system:flagger"
            "</SubjectFromWebIdentityToken>"
            "<Audience>sts.amazonaws.com</Audience>"
            "<AssumedRoleUser>"
            f"<Arn>arn:aws:sts::123456789012:assumed-role/flagger-cloudwatch/{escape(form['RoleSessionName'])}</Arn>"
            f"<AssumedRoleId>AROACLKWSDQRAOEXAMPLE:{escape(form['RoleSessionName'])}</AssumedRoleId>"
            "</AssumedRoleUser>"
            "<Credentials>"
            f"<SessionToken>{token}</SessionToken>"
            f"<SecretAccessKey>{secret}</SecretAccessKey>"
            f"<Expiration>{expiration}</Expiration>"
            f"<AccessKeyId>{key_id}</AccessKeyId>"
            "</Credentials>"
            "<Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE</Provider>"
            "</AssumeRoleWithWebIdentityResult>"
            f"<ResponseMetadata><RequestId>{secrets.token_hex(16)}</RequestId></ResponseMetadata>"
            "</AssumeRoleWithWebIdentityResponse>"
        )
        return web.Response(text=text, content_type="text/xml")
