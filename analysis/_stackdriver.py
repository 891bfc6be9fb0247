"""Google Cloud Monitoring (``type: stackdriver``): an MQL query of a project, one number back.

What Flagger does, and so what we do (fluxcd/flagger pkg/metrics/providers/stackdriver.go):

* The Secret (``spec.provider.secretRef``) holds ``project`` (the project id, required) and
  optionally ``serviceAccountKey`` (a service account's JSON key). Without the key, Google's
  Application Default Credentials: on GKE with Workload Identity, the metadata server.
* The query is Monitoring Query Language, sent to ``QueryTimeSeries`` of ``projects/<project>``
  (REST: ``POST https://monitoring.googleapis.com/v3/projects/<project>/timeSeries:query``
  with ``{"query": ...}``; ``spec.provider.address`` replaces the host). MQL carries its
  own window (``| align delta(1m) | every 1m``, ``| within 5m``), so ``at`` is not sent:
  the API has no time parameter besides the query.
* The value is the first value of the first point of the first time series
  (``timeSeriesData[0].pointData[0].values[0]``). Cloud Monitoring lists points newest first,
  so this is the latest aligned point. No series, no point or no value is
  :class:`NoDataError`; NaN too. Flagger reads ``GetDoubleValue()``, which turns an ``int64``
  result into 0; we read ``int64Value`` as its number, and refuse a distribution, bool or
  string with a message saying to reduce it to a number.
* ``IsOnline`` sends an empty query and takes the 400 ``INVALID_ARGUMENT`` it provokes as
  "reachable and authorised"; so does :meth:`StackdriverProvider.is_online`.

Flagger goes through Google's client library (gRPC). MQL is what that API answers; the
PromQL endpoint Google now recommends for new dashboards
(``/v1/projects/<project>/location/global/prometheus/api/v1/query``) is not what a Flagger
MetricTemplate of this type contains, so it is not used here (a ``prometheus`` provider
pointed at that endpoint, with a token, serves PromQL).

Tokens. With ``serviceAccountKey``, the OAuth 2.0 JWT-bearer grant Google documents for
service accounts: a JWT (``iss`` the key's ``client_email``, ``aud`` its ``token_uri``,
``scope`` monitoring.read, one hour) signed RS256 with the key's ``private_key``, posted to
``token_uri`` as ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=...``.
Without it, ``GET http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token``
with ``Metadata-Flavor: Google`` (the host from ``GCE_METADATA_HOST`` as Google's libraries
read it). Either token is kept until five minutes before it expires, per key (or metadata
host) in the module, since a provider is built per tick.

Why no library for the token. ``google-auth`` is *not* installed here (the kubernetes client
37 no longer depends on it): it would add +24 MB (it pulls ``cryptography`` and ``cffi``),
~90 ms of import, and its transports are blocking (requests, urllib3) or aiohttp, not httpx.
``cryptography`` alone is +18 MB of compiled code (28 ms import) for one RSA signature an
hour; ``rsa`` (pure Python, +1.4 MB with pyasn1) is archived by its maintainer. The RS256
signature is therefore written here: PKCS #1 v1.5 over SHA-256 (RFC 8017 section 8.2; the
key read from its PKCS #8 or PKCS #1 DER), computed with the CRT, with the base blinded by a
random factor (so the exponentiation's timing says nothing about the key) and the result
checked with the public exponent before use. PKCS #1 v1.5 signatures are deterministic, so
the tests compare it byte for byte with ``openssl dgst -sha256 -sign``, and the loopback
token server verifies each JWT with ``openssl dgst -verify``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

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
    "RSAPrivateKey",
    "ServiceAccountKey",
    "StackdriverProvider",
    "load_rsa_private_key",
    "rs256_sign",
]

TITLE = "Google Cloud Monitoring"
SCOPE = "https://www.googleapis.com/auth/monitoring.read"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_METADATA_HOST = "metadata.google.internal"
GOOGLE_MONITORING_API = "https://monitoring.googleapis.com"
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
JWT_LIFETIME = 3600
REFRESH_BEFORE = 300.0
KEY_PATH = "spec.provider.secretRef serviceAccountKey"

# DER of DigestInfo{sha256, NULL} before the 32-byte hash (RFC 8017 section 9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_RSA_ENCRYPTION_OID = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1
_PEM = re.compile(
    r"-----BEGIN (?P<label>[A-Z ]+)-----(?P<body>[A-Za-z0-9+/=\s]+)-----END (?P=label)-----"
)


# -- RS256 -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RSAPrivateKey:
    """An RSA private key with its CRT parameters (RFC 8017 section 3.2)."""

    n: int = field(repr=False)
    e: int
    d: int = field(repr=False)
    p: int = field(repr=False)
    q: int = field(repr=False)
    dp: int = field(repr=False)
    dq: int = field(repr=False)
    qinv: int = field(repr=False)

    @property
    def size(self) -> int:
        """The modulus' length in bytes (and so the signature's)."""
        return (self.n.bit_length() + 7) // 8


def _der(data: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    """The content of the DER element of ``tag`` at ``pos``, and the position after it."""
    if pos + 2 > len(data) or data[pos] != tag:
        raise ValueError(f"expected DER tag 0x{tag:02x} at byte {pos}")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return data[pos : pos + length], pos + length


def _rsa_from_pkcs1(der: bytes) -> RSAPrivateKey:
    body, _ = _der(der, 0, 0x30)
    numbers: list[int] = []
    pos = 0
    for _ in range(9):  # version, n, e, d, p, q, dp, dq, qinv
        raw, pos = _der(body, pos, 0x02)
        numbers.append(int.from_bytes(raw, "big"))
    version, n, e, d, p, q, dp, dq, qinv = numbers
    if version != 0 or p * q != n:
        raise ValueError("not a two-prime RSA private key")
    return RSAPrivateKey(n, e, d, p, q, dp, dq, qinv)


def load_rsa_private_key(pem: str) -> RSAPrivateKey:
    """The RSA key of a PEM ``PRIVATE KEY`` (PKCS #8, as in Google's JSON keys) or
    ``RSA PRIVATE KEY`` (PKCS #1). Raises ValueError (never quoting the key)."""
    match = _PEM.search(pem)
    if match is None:
        raise ValueError("no PEM 'PRIVATE KEY' block")
    try:
        der = base64.b64decode("".join(match["body"].split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the PEM block is not base64") from None
    label = match["label"]
    if label == "RSA PRIVATE KEY":
        return _rsa_from_pkcs1(der)
    if label != "PRIVATE KEY":
        raise ValueError(f"a PEM {label!r} block, expected an unencrypted 'PRIVATE KEY'")
    info, _ = _der(der, 0, 0x30)
    _, pos = _der(info, 0, 0x02)  # version
    algorithm, pos = _der(info, pos, 0x30)
    oid, _ = _der(algorithm, 0, 0x06)
    if oid != _RSA_ENCRYPTION_OID:
        raise ValueError("the private key is not an RSA key")
    inner, _ = _der(info, pos, 0x04)
    return _rsa_from_pkcs1(inner)


def rs256_sign(key: RSAPrivateKey, message: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 with SHA-256 (JWS ``RS256``) of ``message``."""
    t = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    k = key.size
    if k < len(t) + 11:
        raise ValueError("the RSA key is too short for SHA-256 signatures")
    encoded = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    m = int.from_bytes(encoded, "big")
    # Blinding: sign m * r^e, then divide by r; the exponentiation never sees m itself.
    while True:
        r = secrets.randbelow(key.n - 3) + 2
        if math.gcd(r, key.n) == 1:
            break
    blinded = (m * pow(r, key.e, key.n)) % key.n
    s1 = pow(blinded % key.p, key.dp, key.p)
    s2 = pow(blinded % key.q, key.dq, key.q)
    h = (key.qinv * (s1 - s2)) % key.p
    signature = ((s2 + h * key.q) * pow(r, -1, key.n)) % key.n
    if pow(signature, key.e, key.n) != m:  # a faulty CRT step would leak a factor
        raise ValueError("the RSA signature did not verify; the key is inconsistent")
    return signature.to_bytes(k, "big")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# -- service-account key -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceAccountKey:
    """The fields of a service account's JSON key that the JWT-bearer grant uses."""

    client_email: str
    token_uri: str
    private_key_id: str | None
    key: RSAPrivateKey = field(repr=False)
    fingerprint: str = field(repr=False)

    @classmethod
    def parse(cls, raw: str) -> ServiceAccountKey:
        """Raise :class:`AnalysisSpecError` naming the Secret key, never quoting it."""
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise AnalysisSpecError(
                KEY_PATH,
                f"is not JSON ({exc.msg} at line {exc.lineno}); expected the service "
                "account's JSON key as downloaded from Google Cloud",
            ) from None
        if not isinstance(data, Mapping):
            raise AnalysisSpecError(KEY_PATH, "expected a JSON object (a service account key)")
        kind = data.get("type")
        if kind != "service_account":
            raise AnalysisSpecError(
                KEY_PATH,
                f'has "type": {kind!r}; only a service account key ("type": '
                '"service_account") can be used here',
            )
        missing = [k for k in ("client_email", "private_key") if not isinstance(data.get(k), str)]
        if missing:
            raise AnalysisSpecError(KEY_PATH, f"has no {' and '.join(missing)}")
        token_uri = data.get("token_uri") or "https://oauth2.googleapis.com/token"
        if not isinstance(token_uri, str) or not token_uri.startswith(("https://", "http://")):
            raise AnalysisSpecError(KEY_PATH, "has a token_uri that is not an http(s) URL")
        try:
            key = load_rsa_private_key(data["private_key"])
        except ValueError as exc:
            raise AnalysisSpecError(KEY_PATH, f"private_key cannot be read: {exc}") from None
        key_id = data.get("private_key_id")
        return cls(
            client_email=data["client_email"],
            token_uri=token_uri,
            private_key_id=key_id if isinstance(key_id, str) and key_id else None,
            key=key,
            fingerprint=hashlib.sha256(data["private_key"].encode()).hexdigest(),
        )

    def assertion(self, now: int) -> str:
        """The signed JWT of the grant, issued at ``now`` (seconds)."""
        header: dict[str, str] = {"alg": "RS256", "typ": "JWT"}
        if self.private_key_id:
            header["kid"] = self.private_key_id
        claims = {
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + JWT_LIFETIME,
        }
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        return f"{signing_input}.{_b64url(rs256_sign(self.key, signing_input.encode()))}"


@dataclass(frozen=True, slots=True)
class _Token:
    value: str = field(repr=False)
    expires_at: float


# Access tokens per (token endpoint, client or metadata host, key fingerprint).
_TOKENS: dict[tuple[str, str, str], _Token] = {}


# -- HTTP with Google's error shapes -------------------------------------------------------


def _google_error(response: httpx.Response) -> str:
    """OAuth (``error``, ``error_description``) or API (``error.message``, ``status``) words."""
    try:
        body: Any = response.json()
    except ValueError:
        return " ".join(response.text[:200].split())
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            parts = [str(error.get("status") or ""), str(error.get("message") or "")]
            return ": ".join(p for p in parts if p)
        if isinstance(error, str):
            description = body.get("error_description")
            return f"{error}: {description}" if description else error
    return " ".join(response.text[:200].split())


class _GoogleHTTP(VendorHTTP):
    """:class:`VendorHTTP` that reads Google's error bodies (the API's and OAuth's)."""

    def vendor_error(self, response: httpx.Response) -> tuple[str, str]:
        return _google_error(response), ""


class StackdriverProvider(SingleValue):
    """Cloud Monitoring's MQL ``timeSeries:query`` behind :class:`~analysis.MetricProvider`.

    ``environ`` replaces ``os.environ`` (``GCE_METADATA_HOST``) for tests; ``client`` and
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
        google_api: str = GOOGLE_MONITORING_API,
    ) -> None:
        self._config = config
        self._client = client
        self._transport = transport
        self._environ = environ
        self._base = config.address.rstrip("/")
        # Where the pod's own token (the metadata server's) may go: anyone who can write a
        # MetricTemplate names its address, and that token is the controller's identity.
        self._google_api = google_api.rstrip("/")

    def __repr__(self) -> str:
        return f"StackdriverProvider(address={safe_address(self._base)!r})"

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def _http(
        self, title: str, endpoint: str, secrets: Sequence[str] = (), *, auth: bool = False
    ) -> _GoogleHTTP:
        return _GoogleHTTP(
            self._config,
            title,
            endpoint=endpoint,
            secrets=secrets,
            auth_endpoint=auth,
            client=self._client,
            transport=self._transport,
        )

    # -- tokens ----------------------------------------------------------------------------

    async def access_token(self, query: str) -> str:
        """An OAuth 2.0 access token: from the key's grant, or from the metadata server."""
        raw = self._config.secret_value("serviceAccountKey")
        if raw is not None:
            key = ServiceAccountKey.parse(raw)
            cache = (key.token_uri, key.client_email, key.fingerprint)
            cached = _TOKENS.get(cache)
            if cached is not None and cached.expires_at - REFRESH_BEFORE > time.time():
                return cached.value
            return await self._grant(key, cache, query)
        if self._base != self._google_api:
            raise AnalysisSpecError(
                "spec.provider.address",
                f"the pod's own Google credentials go only to {self._google_api}: with "
                "another address, put a serviceAccountKey in the Secret",
            )
        env = self.environ
        host = env.get("GCE_METADATA_HOST") or env.get("GCE_METADATA_ROOT") or DEFAULT_METADATA_HOST
        cache = (f"http://{host}{TOKEN_PATH}", "metadata", "")
        cached = _TOKENS.get(cache)
        if cached is not None and cached.expires_at - REFRESH_BEFORE > time.time():
            return cached.value
        return await self._metadata(cache, query)

    async def _grant(self, key: ServiceAccountKey, cache: tuple[str, str, str], query: str) -> str:
        issued = int(time.time())
        assertion = key.assertion(issued)
        http = self._http("Google's token endpoint", key.token_uri, (assertion,), auth=True)
        response = await http.send(
            "POST",
            key.token_uri,
            query=query,
            content=urlencode({"grant_type": JWT_BEARER, "assertion": assertion}),
            headers=[("Content-Type", "application/x-www-form-urlencoded")],
        )
        return self._keep(cache, http.decode(response, query), issued, http, query)

    async def _metadata(self, cache: tuple[str, str, str], query: str) -> str:
        url = cache[0]
        http = self._http("the GCE metadata server", url, auth=True)
        issued = int(time.time())
        response = await http.send(
            "GET",
            url,
            query=query,
            params={"scopes": SCOPE},
            headers=[("Metadata-Flavor", "Google")],
        )
        return self._keep(cache, http.decode(response, query), issued, http, query)

    def _keep(
        self,
        cache: tuple[str, str, str],
        answer: Any,
        issued: int,
        http: _GoogleHTTP,
        query: str,
    ) -> str:
        token = answer.get("access_token") if isinstance(answer, Mapping) else None
        if not isinstance(token, str) or not token:
            raise UnauthorizedError(
                f"{http.title} at {http.where} answered without an access_token", query=query
            )
        lifetime = answer.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, int | float) else 3600.0
        _TOKENS[cache] = _Token(token, issued + seconds)
        return token

    # -- timeSeries:query ------------------------------------------------------------------

    async def _query(self, query: str) -> Any:
        project = self._config.secret_value("project")
        if project is None:
            raise AnalysisSpecError(
                "spec.provider.secretRef",
                "a stackdriver provider needs the Secret's 'project' key (the project id)",
            )
        token = await self.access_token(query)
        url = f"{self._base}/v3/projects/{quote(project, safe='')}/timeSeries:query"
        http = self._http(TITLE, self._base, (token,))
        response = await http.send(
            "POST",
            url,
            query=query,
            json_body={"query": query},
            headers=[("Authorization", f"Bearer {token}"), ("Accept", "application/json")],
        )
        return http.decode(response, query)

    async def run_query(self, query: str, *, at: datetime | None = None) -> float:
        del at  # MQL carries its own window; timeSeries:query takes no time
        return _first_value(await self._query(query), query)

    async def is_online(self) -> bool:
        """Flagger's check: an empty query must be refused as invalid, not as unauthorised."""
        try:
            await self._query("")
        except BadQueryError:
            return True
        except (QueryError, AnalysisSpecError):
            return False
        return True


def _first_value(answer: Any, query: str) -> float:
    """The number in ``timeSeriesData[0].pointData[0].values[0]`` (see the module docstring)."""
    return _number(_first_typed_value(answer, query), query)


def _first_typed_value(answer: Any, query: str) -> Mapping[str, Any]:
    """The first TypedValue of the first point of the first series; none is no data."""
    if not isinstance(answer, Mapping):
        raise QueryError(
            f"{TITLE} answered query {short(query)!r} with a JSON {type(answer).__name__}, "
            "not a QueryTimeSeriesResponse",
            query=query,
        )
    data = answer.get("timeSeriesData") or []
    partial = answer.get("partialErrors") or []
    said = "; ".join(
        str(e.get("message")) for e in partial if isinstance(e, Mapping) and e.get("message")
    )
    note = f" (partial errors: {said})" if said else ""
    if not isinstance(data, list):
        raise QueryError(
            f"{TITLE} answered query {short(query)!r} with a bad timeSeriesData", query=query
        )
    if not data:
        raise NoDataError(
            f"{TITLE} returned no time series for query {short(query)!r}{note}", query=query
        )
    first = data[0]
    points = first.get("pointData") if isinstance(first, Mapping) else None
    if not points or not isinstance(points, list):
        raise NoDataError(f"{TITLE} returned a time series without points{note}", query=query)
    values = points[0].get("values") if isinstance(points[0], Mapping) else None
    if not values or not isinstance(values, list) or not isinstance(values[0], Mapping):
        raise NoDataError(f"{TITLE} returned a point without values{note}", query=query)
    typed: Mapping[str, Any] = values[0]
    return typed


def _number(typed: Mapping[str, Any], query: str) -> float:
    """A TypedValue's number: ``doubleValue`` or ``int64Value`` (a string in JSON)."""
    if "doubleValue" in typed:
        raw = typed["doubleValue"]
    elif "int64Value" in typed:
        raw = typed["int64Value"]
    else:
        kinds = ", ".join(sorted(typed)) or "nothing"
        raise QueryError(
            f"{TITLE} query {short(query)!r} returned a {kinds}, not a number; reduce it to one "
            "(e.g. percentile(value.latencies, 99) or count_true)",
            query=query,
        )
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise QueryError(
            f"{TITLE} answered query {short(query)!r} with a non-numeric value {raw!r}", query=query
        ) from None
    if math.isnan(value):
        raise NoDataError(f"{TITLE} returned NaN for query {short(query)!r}", query=query)
    return value
