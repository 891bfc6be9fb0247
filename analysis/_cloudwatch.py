"""Amazon CloudWatch (``type: cloudwatch``): one signed GetMetricData call per query.

What Flagger does, and so what we do (fluxcd/flagger pkg/metrics/providers/cloudwatch.go):

* ``spec.provider.region`` is required; the query is the JSON array of ``MetricDataQuery``
  objects that GetMetricData takes (``Id``, ``MetricStat`` or ``Expression``, ``ReturnData``),
  so a metric-math expression such as ``m1 / m2`` gives an error rate in one call.
* The window is ``10 x interval`` ending now (``cloudWatchStartDeltaMultiplierOnMetricInterval``
  is 10; the ``interval`` of a ``1m`` metric asks for the last ten minutes), with
  ``MaxDatapoints: 20``. ``at`` ends the window when the caller gives one.
* The value is the first value of the first ``MetricDataResult``. GetMetricData returns
  the queries whose ``ReturnData`` is not false, each with its values newest first
  (``ScanBy`` defaults to ``TimestampDescending``; we send it explicitly), so this is the
  newest point of the first returned series. No result or no value is :class:`NoDataError`.
* ``IsOnline`` sends an empty query and takes the 400 it provokes as "reachable and
  authenticated"; so does :meth:`CloudWatchProvider.is_online`.

The request. AWS documents two wire protocols for CloudWatch today: the old AWS Query
(``Action=GetMetricData&Version=2010-08-01``, form-encoded, XML answers) and AWS JSON 1.0
(``POST /``, ``Content-Type: application/x-amz-json-1.0``, ``X-Amz-Target:
GraniteServiceVersion20100801.GetMetricData``), which the AWS SDKs now prefer ("FAQs on
CloudWatch supported protocols"). We send JSON 1.0: the user's query already *is* the
``MetricDataQueries`` member in JSON, so it goes out untouched, where the Query protocol
would need it flattened into ``MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Name``
parameters (and its XML answer parsed). The endpoint is ``https://monitoring.<region>.amazonaws.com/``
(``.amazonaws.com.cn`` in the China regions), or ``spec.provider.address`` (a VPC endpoint,
LocalStack, a test server).

Credentials, first found wins:

1. the MetricTemplate's Secret: ``aws_access_key_id``, ``aws_secret_access_key`` and optionally
   ``aws_session_token``. This is our extension: Flagger's CloudWatch provider has no Secret
   and reads only the controller's environment or its IRSA role; we accept both, so one
   controller can read metrics from several AWS accounts;
2. the controller's environment: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
   ``AWS_SESSION_TOKEN``;
3. the pod's web identity (IRSA, EKS Pod Identity's OIDC flavour): ``AWS_ROLE_ARN`` and the
   token in ``AWS_WEB_IDENTITY_TOKEN_FILE`` are exchanged with STS
   ``AssumeRoleWithWebIdentity`` (unsigned, Query protocol, XML answer) at
   ``https://sts.<region>.amazonaws.com`` or at ``AWS_ENDPOINT_URL_STS``, the AWS SDKs'
   documented per-service endpoint override. The temporary credentials are kept, per role and
   token file, until five minutes before their ``Expiration`` (a provider is built per tick,
   so the cache is the module's).

Signing: AWS Signature Version 4, written here (about sixty lines of hashlib/hmac) and tested
against AWS's published examples (the SigV4 test suite's ``get-vanilla``, ``post-vanilla`` and
``get-vanilla-query-order-key-case``, and the IAM documentation's signing-key derivation
and ``ListUsers`` example), not only against itself. Measured alternatives (Python 3.11,
this machine, Dec 2026):

* ``botocore`` 1.44: a 17.5 MB wheel, +35.5 MB installed with jmespath, python-dateutil, six
  and urllib3, ~95 ms to import ``botocore.auth``/``botocore.credentials``; and its signer
  wants its own ``AWSRequest``, not httpx. Far too big for one HMAC chain.
* ``aws-request-signer`` 1.2.0: 44 kB, no dependencies, 17 ms import; a one-person project
  without a release in years, and it only saves the same sixty lines.
* ``requests-aws4auth`` 1.4: an ``auth`` plug-in for requests (+3.9 MB with requests), so it
  does not sign an httpx request at all.

None is a well-kept small library that clearly beats the hand-written signer, so there is
no new dependency. Messages never carry a credential: the Secret's values are masked by
:class:`~analysis._http.VendorHTTP`, and the environment's or STS's credentials as well.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx

from analysis._http import SingleValue, VendorHTTP, short
from analysis._prometheus import safe_address
from analysis._spec.errors import (
    AnalysisSpecError,
    BadQueryError,
    NoDataError,
    QueryError,
    UnauthorizedError,
)
from analysis._spec.provider import ProviderConfig

__all__ = [
    "AWSCredentials",
    "CloudWatchProvider",
    "canonical_request",
    "check_query",
    "sign_request",
    "signing_key",
    "string_to_sign",
]

TITLE = "Amazon CloudWatch"
SERVICE = "monitoring"
TARGET = "GraniteServiceVersion20100801.GetMetricData"
CONTENT_TYPE = "application/x-amz-json-1.0"
WINDOW_INTERVALS = 10  # Flagger: cloudWatchStartDeltaMultiplierOnMetricInterval
MAX_DATAPOINTS = 20  # Flagger's MaxDatapoints
REFRESH_BEFORE = timedelta(minutes=5)
ALGORITHM = "AWS4-HMAC-SHA256"
STS_VERSION = "2011-06-15"

# Error codes that say "your credentials" whatever the status (AWS answers some with 400).
_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "ExpiredToken",
        "ExpiredTokenException",
        "IncompleteSignature",
        "InvalidClientTokenId",
        "InvalidIdentityToken",
        "InvalidSignatureException",
        "MissingAuthenticationToken",
        "RequestExpired",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
# Throttling comes back as HTTP 400 from the Query-compatible services: not a bad query.
_THROTTLE_CODES = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
)


@dataclass(frozen=True, slots=True)
class AWSCredentials:
    """One set of AWS credentials; ``source`` says where they came from (for messages)."""

    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expiration: datetime | None = None
    source: str = ""

    @property
    def values(self) -> tuple[str, ...]:
        """What a message must never contain."""
        return tuple(
            v for v in (self.access_key_id, self.secret_access_key, self.session_token) if v
        )


# Web-identity credentials per (STS endpoint, role, token file): providers are built per tick.
_WEB_IDENTITY: dict[tuple[str, str, str], AWSCredentials] = {}


# -- AWS Signature Version 4 ---------------------------------------------------------------


def _encode(text: str, *, keep_slash: bool = False) -> str:
    """SigV4's URI encoding: everything but ``A-Za-z0-9-_.~`` (and ``/`` in a path) as %XX."""
    return quote(text, safe="-_.~/" if keep_slash else "-_.~")


def canonical_request(
    method: str, path: str, query: str, headers: Mapping[str, str], payload_hash: str
) -> tuple[str, str]:
    """The canonical request of SigV4 and its ``SignedHeaders`` list.

    ``path`` and ``query`` are as sent on the wire; every header of ``headers`` is signed
    (names lower-cased and sorted, values trimmed with inner runs of spaces collapsed).
    """
    canonical_uri = _encode(path or "/", keep_slash=True)
    pairs = sorted((_encode(k), _encode(v)) for k, v in parse_qsl(query, keep_blank_values=True))
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.strip().lower()
        clean = " ".join(value.strip().split())
        lowered[key] = f"{lowered[key]},{clean}" if key in lowered else clean
    names = sorted(lowered)
    canonical_headers = "".join(f"{n}:{lowered[n]}\n" for n in names)
    signed = ";".join(names)
    text = "\n".join(
        [method.upper(), canonical_uri, canonical_query, canonical_headers, signed, payload_hash]
    )
    return text, signed


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")."""
    key = _hmac(("AWS4" + secret_access_key).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: AWSCredentials,
    *,
    region: str,
    service: str,
    now: datetime,
) -> dict[str, str]:
    """``headers`` plus ``Host``, ``X-Amz-Date``, ``X-Amz-Security-Token`` and ``Authorization``.

    Every header returned except ``Authorization`` is signed; send exactly these.
    """
    parts = urlsplit(url)
    out = dict(headers)
    if not any(k.lower() == "host" for k in out):
        host = parts.hostname or ""
        default_port = {"http": 80, "https": 443}.get(parts.scheme)
        if parts.port is not None and parts.port != default_port:
            host = f"{host}:{parts.port}"
        out["Host"] = host
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    out["X-Amz-Date"] = amz_date
    if credentials.session_token:
        out["X-Amz-Security-Token"] = credentials.session_token
    payload_hash = hashlib.sha256(body).hexdigest()
    canonical, signed = canonical_request(method, parts.path, parts.query, out, payload_hash)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    key = signing_key(credentials.secret_access_key, amz_date[:8], region, service)
    signature = hmac.new(
        key, string_to_sign(amz_date, scope, canonical).encode(), hashlib.sha256
    ).hexdigest()
    out["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    return out


# -- HTTP with AWS's error shapes ----------------------------------------------------------


def _aws_error(response: httpx.Response) -> tuple[str, str]:
    """(code, message) of an AWS error answer: JSON 1.0 (``__type``, ``message``) or Query XML."""
    header = response.headers.get("x-amzn-query-error", "")
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        code = str(body.get("__type") or body.get("code") or body.get("Code") or "")
        message = str(body.get("message") or body.get("Message") or "")
        code = header.split(";")[0] if header else code.rsplit("#", 1)[-1]
        return code, message
    try:
        root = ET.fromstring(response.text)
    except ET.ParseError:
        return header.split(";")[0], " ".join(response.text[:200].split())
    found: dict[str, str] = {}
    for element in root.iter():
        local = element.tag.rsplit("}", 1)[-1]
        if local in ("Code", "Message") and local not in found:
            found[local] = (element.text or "").strip()
    return found.get("Code", ""), found.get("Message", "")


class _AWSHTTP(VendorHTTP):
    """:class:`VendorHTTP` that reads AWS's error codes (JSON or XML bodies): throttling
    answers 400 there, and a refused key has codes of its own."""

    throttle_codes = _THROTTLE_CODES
    refusal_codes = _AUTH_CODES

    def vendor_error(self, response: httpx.Response) -> tuple[str, str]:
        code, message = _aws_error(response)
        return ": ".join(p for p in (code, message) if p), code


def _endpoint_for(region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://monitoring.{region}.{suffix}"


def _sts_endpoint_for(region: str) -> str:
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://sts.{region}.{suffix}"


def _epoch(moment: datetime) -> float:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return round(aware.timestamp(), 3)


def _window_words(seconds: float) -> str:
    return f"{seconds / 60:g}m" if seconds % 60 == 0 else f"{seconds:g}s"


class CloudWatchProvider(SingleValue):
    """CloudWatch GetMetricData behind :class:`~analysis.MetricProvider`; see the module docstring.

    ``environ`` replaces ``os.environ`` for the credential chain (tests); ``client`` and
    ``transport`` go to :class:`~analysis._http.VendorHTTP`.
    """

    title = TITLE

    def __init__(
        self,
        config: ProviderConfig,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
        trusted_endpoint: str | None = None,
    ) -> None:
        self._config = config
        self._client = client
        self._transport = transport
        self._environ = environ
        # An endpoint besides AWS's that may receive the controller's own credentials
        # (tests: the loopback stand-in); AWS's own endpoints always may.
        self._trusted_endpoint = (trusted_endpoint or "").rstrip("/")
        self._region = config.region or ""
        base = config.address.rstrip("/") if config.address else ""
        self._endpoint = base or (_endpoint_for(self._region) if self._region else "")

    def __repr__(self) -> str:
        return f"CloudWatchProvider(region={self._region!r}, endpoint={safe_address(self._endpoint)!r})"

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def _http(
        self, title: str, endpoint: str, secrets: Sequence[str] = (), *, auth: bool = False
    ) -> _AWSHTTP:
        return _AWSHTTP(
            self._config,
            title,
            endpoint=endpoint,
            secrets=secrets,
            auth_endpoint=auth,
            client=self._client,
            transport=self._transport,
        )

    # -- credentials -------------------------------------------------------------------

    def _may_sign_with_own_credentials(self) -> bool:
        """Whether the endpoint is AWS's: anyone who can write a MetricTemplate names its
        address, and a request signed with the controller's credentials can be replayed."""
        if self._trusted_endpoint and self._endpoint == self._trusted_endpoint:
            return True
        host = urlsplit(self._endpoint).hostname or ""
        return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))

    async def credentials(self, query: str) -> AWSCredentials:
        """The first credentials of the chain in the module docstring."""
        key_id = self._config.secret_value("aws_access_key_id")
        secret = self._config.secret_value("aws_secret_access_key")
        if key_id or secret:
            if not (key_id and secret):
                have, lack = (
                    ("aws_access_key_id", "aws_secret_access_key")
                    if key_id
                    else ("aws_secret_access_key", "aws_access_key_id")
                )
                raise UnauthorizedError(
                    f"{TITLE}: the MetricTemplate's Secret has {have} but no {lack}; "
                    "set both (and aws_session_token for temporary credentials)",
                    query=query,
                )
            return AWSCredentials(
                key_id,
                secret,
                self._config.secret_value("aws_session_token"),
                source="the MetricTemplate's Secret",
            )
        if not self._may_sign_with_own_credentials():
            raise AnalysisSpecError(
                "spec.provider.address",
                f"the controller's own AWS credentials sign requests only for AWS's endpoints "
                f"(*.amazonaws.com), not {safe_address(self._endpoint)}: with another address, "
                "put aws_access_key_id and aws_secret_access_key in the Secret",
            )
        env = self.environ
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            return AWSCredentials(
                env["AWS_ACCESS_KEY_ID"],
                env["AWS_SECRET_ACCESS_KEY"],
                env.get("AWS_SESSION_TOKEN") or None,
                source="the environment (AWS_ACCESS_KEY_ID)",
            )
        role = env.get("AWS_ROLE_ARN")
        token_file = env.get("AWS_WEB_IDENTITY_TOKEN_FILE")
        if role and token_file:
            return await self._web_identity(role, token_file, query)
        raise UnauthorizedError(
            f"{TITLE}: no AWS credentials: put aws_access_key_id and aws_secret_access_key in "
            "the MetricTemplate's Secret (spec.provider.secretRef), set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY in the controller's environment, or give its service "
            "account an IAM role (IRSA: AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE)",
            query=query,
        )

    async def _web_identity(self, role: str, token_file: str, query: str) -> AWSCredentials:
        env = self.environ
        endpoint = (
            env.get("AWS_ENDPOINT_URL_STS") or _sts_endpoint_for(self._region or "us-east-1")
        ).rstrip("/")
        key = (endpoint, role, token_file)
        now = datetime.now(UTC)
        cached = _WEB_IDENTITY.get(key)
        if cached is not None and cached.expiration is not None:
            if cached.expiration - REFRESH_BEFORE > now:
                return cached
        try:
            text = await asyncio.to_thread(Path(token_file).read_text, encoding="utf-8")
        except OSError as exc:
            raise UnauthorizedError(
                f"{TITLE}: cannot read the web identity token file {token_file} "
                f"(AWS_WEB_IDENTITY_TOKEN_FILE): {exc.strerror or type(exc).__name__}",
                query=query,
            ) from None
        token = text.strip()
        session = env.get("AWS_ROLE_SESSION_NAME") or f"canary-engine-{int(time.time())}"
        form = urlencode(
            {
                "Action": "AssumeRoleWithWebIdentity",
                "Version": STS_VERSION,
                "RoleArn": role,
                "RoleSessionName": session,
                "WebIdentityToken": token,
            }
        )
        sts = self._http("AWS STS", endpoint, (token,), auth=True)
        response = await sts.send(
            "POST",
            endpoint + "/",
            query=query,
            content=form,
            headers=[
                ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
                ("Accept", "text/xml"),
            ],
        )
        credentials = _parse_assume_role(response.text, role, query, sts)
        _WEB_IDENTITY[key] = credentials
        return credentials

    # -- GetMetricData -------------------------------------------------------------------

    async def _get_metric_data(self, body: Mapping[str, Any], query: str) -> Any:
        if not self._region:
            raise AnalysisSpecError(
                "spec.provider.region", "a cloudwatch provider needs the AWS region, e.g. us-east-1"
            )
        credentials = await self.credentials(query)
        url = self._endpoint + "/"
        content = json.dumps(body, separators=(",", ":")).encode()
        headers = sign_request(
            "POST",
            url,
            {"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET},
            content,
            credentials,
            region=self._region,
            service=SERVICE,
            now=datetime.now(UTC),
        )
        http = self._http(TITLE, self._endpoint, credentials.values)
        response = await http.send(
            "POST", url, query=query, headers=list(headers.items()), content=content
        )
        return http.decode(response, query)

    async def run_query(self, query: str, *, at: datetime | None = None) -> float:
        queries = _parse_queries(query)
        end = at or datetime.now(UTC)
        window = WINDOW_INTERVALS * self._config.interval_seconds
        start = end - timedelta(seconds=window)
        body = {
            "MetricDataQueries": queries,
            "StartTime": _epoch(start),
            "EndTime": _epoch(end),
            "MaxDatapoints": MAX_DATAPOINTS,
            "ScanBy": "TimestampDescending",
        }
        answer = await self._get_metric_data(body, query)
        return _first_value(answer, query, _window_words(window))

    async def is_online(self) -> bool:
        """Flagger's check: an empty query must be refused as a bad request, not as unauthorised."""
        body = {"MetricDataQueries": [], "StartTime": 0, "EndTime": 0}
        try:
            await self._get_metric_data(body, "[]")
        except BadQueryError:
            return True
        except (QueryError, AnalysisSpecError):
            return False
        return True


def check_query(query: str) -> None:
    """Raise :class:`~analysis.BadQueryError` for a query that is no MetricDataQuery array
    (``canary lint`` asks this offline)."""
    _parse_queries(query)


def _parse_queries(query: str) -> list[Any]:
    try:
        queries = json.loads(query)
    except json.JSONDecodeError as exc:
        raise BadQueryError(
            f"{TITLE} query is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "expected the array of MetricDataQuery objects that GetMetricData takes: "
            f"{short(query)!r}",
            query=query,
        ) from None
    if not isinstance(queries, list) or not all(isinstance(q, Mapping) for q in queries):
        raise BadQueryError(
            f"{TITLE} query must be a JSON array of MetricDataQuery objects "
            f'([{{"Id": "m1", "MetricStat": ...}}]), got {short(query)!r}',
            query=query,
        )
    return queries


def _first_value(answer: Any, query: str, window: str) -> float:
    results = answer.get("MetricDataResults") if isinstance(answer, Mapping) else None
    if not isinstance(results, list):
        raise QueryError(
            f"{TITLE} answered query {short(query)!r} without a MetricDataResults list",
            query=query,
        )
    if not results:
        raise NoDataError(
            f"{TITLE} returned no MetricDataResults for query {short(query)!r} "
            '(does one MetricDataQuery have "ReturnData" true?)',
            query=query,
        )
    first = results[0]
    values = first.get("Values") if isinstance(first, Mapping) else None
    if not isinstance(values, list):
        raise QueryError(
            f"{TITLE} answered query {short(query)!r} with a MetricDataResult without Values",
            query=query,
        )
    ident = f"{first.get('Id', '?')}"
    status = first.get("StatusCode")
    if not values:
        notes = [
            str(m.get("Value"))
            for m in (first.get("Messages") or [])
            if isinstance(m, Mapping) and m.get("Value")
        ]
        said = f": {'; '.join(notes)}" if notes else ""
        if status == "Forbidden":
            raise UnauthorizedError(
                f"{TITLE} may not read the metrics of result {ident!r} (StatusCode Forbidden){said}",
                query=query,
            )
        raise NoDataError(
            f"{TITLE} has no data points for result {ident!r} in the last {window} "
            f"(StatusCode {status}){said}",
            query=query,
        )
    value = values[0]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise QueryError(
            f"{TITLE} answered query {short(query)!r} with a non-numeric value {value!r}",
            query=query,
        )
    if math.isnan(value):
        raise NoDataError(f"{TITLE} returned NaN for result {ident!r}", query=query)
    return float(value)


def _parse_assume_role(text: str, role: str, query: str, sts: _AWSHTTP) -> AWSCredentials:
    """The temporary credentials in AssumeRoleWithWebIdentity's XML answer."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise QueryError(
            f"AWS STS at {sts.where} answered AssumeRoleWithWebIdentity with a body that is not "
            f"XML: {sts.clean(' '.join(text[:80].split()))!r}",
            query=query,
        ) from None
    found: dict[str, str] = {}
    for element in root.iter():
        local = element.tag.rsplit("}", 1)[-1]
        if local in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"):
            found[local] = (element.text or "").strip()
    missing = [k for k in ("AccessKeyId", "SecretAccessKey", "SessionToken") if not found.get(k)]
    if missing:
        raise QueryError(
            f"AWS STS at {sts.where} answered AssumeRoleWithWebIdentity for {role} without "
            f"{', '.join(missing)} in its Credentials",
            query=query,
        )
    expiration: datetime | None = None
    if found.get("Expiration"):
        try:
            expiration = datetime.fromisoformat(found["Expiration"].replace("Z", "+00:00"))
        except ValueError:
            expiration = None
    if expiration is not None and expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=UTC)
    return AWSCredentials(
        found["AccessKeyId"],
        found["SecretAccessKey"],
        found["SessionToken"],
        expiration=expiration,
        source=f"web identity ({role})",
    )
