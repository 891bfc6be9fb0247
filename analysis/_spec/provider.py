"""A MetricTemplate's ``spec.provider``: which metric server, and how to reach it.

Two steps, because they happen at different times.  :func:`parse_provider_spec`
reads the manifest into a :class:`ProviderSpec` when the MetricTemplate is
parsed (``canary.model``), reporting every bad field.  :func:`provider_config`
turns that spec into a :class:`ProviderConfig` when a metric runs, once the
caller has read the template's Secret: its keys become credentials and its
``address`` overrides the spec's, as in Flagger.

This module also decides which provider types exist.  Flagger's other types
are recognised and refused as "not supported yet", which is a different message
from a name nobody knows (never a silent fallback to Prometheus as in Flagger).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from analysis._spec.errors import (
    AnalysisSpecError,
    AnalysisSpecErrors,
    ProviderNotSupportedError,
    UnknownProviderError,
)
from analysis._spec.fields import Problems, read_bool, type_name
from analysis._spec.vendors import VENDORS, Vendor, vendor
from analysis._spec.vocabulary import promql_seconds
from analysis._spec.web import WebSpec, parse_web_spec

__all__ = [
    "DEFAULT_PROMETHEUS_ADDRESS",
    "DEFAULT_TIMEOUT_SECONDS",
    "MASK",
    "NOT_SUPPORTED_PROVIDER_TYPES",
    "SUPPORTED_PROVIDER_TYPES",
    "ProviderConfig",
    "ProviderSpec",
    "address_problem",
    "check_provider_type",
    "parse_provider_spec",
    "provider_config",
    "provider_config_from_spec",
    "redact",
    "safe_address",
]

DEFAULT_PROMETHEUS_ADDRESS = "http://prometheus:9090"
#: Secret keys that name where or whose data it is, not how to get in: not masked in messages
#: (an org called "prod" would otherwise mask every "prod"). An address is shown without its
#: user:password@ part, and a key in its path or query is masked (`VendorHTTP.where`).
#: A CA certificate is public, and no message quotes it: masked, a PEM of junk would mask
#: words such as "certificate" in the very message that says it is wrong.
NOT_CREDENTIALS = frozenset(
    {"address", "project", "org", "newrelic_account_id", "region", "ca.crt", "caFile"}
)
DEFAULT_TIMEOUT_SECONDS = 5.0
# The Secret keys a CA certificate is read from, in this order.
_CA_KEYS = ("ca.crt", "caFile")

SUPPORTED_PROVIDER_TYPES: frozenset[str] = frozenset(v.type for v in VENDORS)
# Every type Flagger knows is implemented; the name stays for callers that ask.
NOT_SUPPORTED_PROVIDER_TYPES: frozenset[str] = frozenset()
#: What a credential becomes in a message.
MASK = "***"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***`` (longest first)."""
    for value in sorted(set(secrets), key=len, reverse=True):
        if value:
            text = text.replace(value, MASK)
    return text


def safe_address(address: str) -> str:
    """``address`` without any ``user:password@`` part, fit for messages.

    Also when ``address`` is no URL at all, since that is when a message quotes it: a
    Secret's ``admin:pw@prom:9090`` (no scheme) or ``http://[prom`` (which ``urlsplit``
    refuses) shows as ``***@prom:9090``, everything before the last ``@`` hidden.
    """
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError:
        return _without_userinfo(address)
    if not parts.netloc:
        return _without_userinfo(address)
    if parts.username is None and parts.password is None:
        return address
    host = parts.hostname or ""
    if port is not None:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _without_userinfo(address: str) -> str:
    """``address`` with everything between its ``scheme://`` and its last ``@`` masked: where
    a password ends cannot be told in text that does not parse, so all of it goes."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "", address
    if "@" not in rest:
        return address
    return f"{scheme}{sep}{MASK}@{rest.rpartition('@')[2]}"


def _credentials(secret: Iterable[tuple[str, str]], *extra: str | None) -> tuple[str, ...]:
    """The values of ``secret`` that are credentials, and ``extra``: what messages must never
    contain ("Bearer abc..." is masked whole, and its token alone too: an echo may quote it)."""
    values = [v for k, v in secret if k not in NOT_CREDENTIALS]
    values += [v or "" for v in extra]
    parts = [part for v in values if len(v.split()) > 1 for part in v.split()[1:]]
    return tuple(v for v in [*values, *parts] if len(v) >= 4)


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A MetricTemplate's ``spec.provider``, parsed; ``None`` fields were not set.

    It holds no credentials: ``secret_name`` names the Secret (``secretRef``)
    whose keys the caller reads and hands to :func:`provider_config`.
    ``headers`` follows Go's ``http.Header``: a name may come with several values.
    """

    type: str = "prometheus"
    address: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    insecure_skip_verify: bool = False
    region: str | None = None
    secret_name: str | None = None
    web: WebSpec | None = None


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """A metric provider's connection settings, credentials already resolved.

    ``headers`` follows Go's ``http.Header`` (a name maps to a list of values).
    Credentials are excluded from ``repr`` so they cannot leak through logs.
    """

    type: str = "prometheus"
    address: str = DEFAULT_PROMETHEUS_ADDRESS
    headers: tuple[tuple[str, str], ...] = ()
    token: str | None = field(default=None, repr=False)
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    insecure_skip_verify: bool = False
    ca_file: str | None = None
    ca_data: str | None = field(default=None, repr=False)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    region: str | None = None
    # Every key of the Secret, for the vendors' own names (datadog_api_key, ...).
    secret: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # The metric's interval in seconds: the vendors whose API takes a time range use it.
    interval_seconds: float = 60.0
    web: WebSpec | None = None

    def secret_value(self, key: str) -> str | None:
        """The Secret's ``key``, or None when it is absent or empty."""
        for name, value in self.secret:
            if name == key:
                return value or None
        return None

    @property
    def credentials(self) -> tuple[str, ...]:
        """Every credential this configuration holds: what messages must never contain."""
        return _credentials(self.secret, self.token, self.password)

    @property
    def ca_origin(self) -> str:
        """Where the CA certificate came from, for a message about it: the Secret's key
        (``ca.crt``, or ``caFile``) or the setting it was given in."""
        origins = [f"ca_file {self.ca_file!r}"] if self.ca_file else []
        if self.ca_data:
            keys = [k for k in _CA_KEYS if self.secret_value(k) == self.ca_data]
            origins.append(f"the Secret's {keys[0]!r} key" if keys else "ca_data")
        return " and ".join(origins) or "no CA certificate"


def check_provider_type(type_: str, path: str) -> str:
    """``type_`` if we implement it; else which of the two errors it is, naming ``path``."""
    if type_ in SUPPORTED_PROVIDER_TYPES:
        return type_
    if type_ in NOT_SUPPORTED_PROVIDER_TYPES:
        raise ProviderNotSupportedError(
            path,
            f"provider type {type_!r} is not supported yet (supported: "
            f"{', '.join(sorted(SUPPORTED_PROVIDER_TYPES))})",
        )
    known = sorted(SUPPORTED_PROVIDER_TYPES | NOT_SUPPORTED_PROVIDER_TYPES)
    raise UnknownProviderError(
        path, f"unknown provider type {type_!r}; expected one of {', '.join(known)}"
    )


def parse_provider_spec(spec: object, *, path: str = "spec.provider") -> ProviderSpec:
    """Parse a MetricTemplate's ``spec.provider``; ``None`` is the default Prometheus.

    Raises :class:`~analysis.AnalysisSpecErrors` listing every problem, each naming its
    field; an unknown or not yet supported type keeps its own error class.
    """
    if spec is None:
        return ProviderSpec()
    if not isinstance(spec, Mapping):
        raise AnalysisSpecErrors(
            [AnalysisSpecError(path, f"expected a map, got {type_name(spec)}")]
        )
    problems = Problems()
    parsed = ProviderSpec(
        type=_read_type(spec, path, problems),
        address=_read_address(spec, path, problems),
        headers=_read_headers(spec, path, problems),
        insecure_skip_verify=read_bool(spec, "insecureSkipVerify", path, problems, False),
        region=_read_region(spec, path, problems),
        secret_name=_read_secret_name(spec, path, problems),
        web=parse_web_spec(spec.get("web"), f"{path}.web", problems),
    )
    _check_vendor_fields(parsed, path, problems, has_secret_ref=spec.get("secretRef") is not None)
    problems.raise_all()
    return parsed


def _check_vendor_fields(
    parsed: ProviderSpec, path: str, problems: Problems, *, has_secret_ref: bool
) -> None:
    """What the type's row says must be in the spec itself (the Secret is checked later)."""
    row = vendor(parsed.type)
    if row is None:
        return
    if row.secret_required and not has_secret_ref:
        keys = " and ".join(repr(k) for k in row.secret_keys)
        problems.add(
            f"{path}.secretRef",
            f"a {parsed.type} provider needs a Secret with {keys}; set secretRef.name",
        )
    if parsed.web is not None and parsed.web.secret_headers and not has_secret_ref:
        problems.add(
            f"{path}.secretRef",
            "web.secretHeaders take their values from a Secret: set secretRef.name",
        )
    if parsed.type == "web" and parsed.web is None:
        problems.add(f"{path}.web", "a web provider needs web.jsonPath: where the number is")
    if parsed.type != "web" and parsed.web is not None:
        problems.add(f"{path}.web", f"only a web provider takes web, not {parsed.type}")
    if parsed.type == "cloudwatch" and not parsed.region:
        problems.add(f"{path}.region", "a cloudwatch provider needs the AWS region, e.g. us-east-1")


def provider_config(
    spec: ProviderSpec,
    *,
    path: str = "spec.provider",
    secret: Mapping[str, str] | None = None,
    default_address: str = DEFAULT_PROMETHEUS_ADDRESS,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    interval: str = "1m",
    render: Callable[[str], str] | None = None,
) -> ProviderConfig:
    """The connection settings of ``spec`` with the decoded data of its Secret.

    ``secret`` holds the type's keys (Prometheus: ``token`` or ``username``/``password``;
    Datadog: ``datadog_api_key`` ...; see :mod:`analysis._spec.vendors`) and ``address``,
    which overrides the spec's address as in Flagger. Without an address anywhere, a
    Prometheus provider uses ``default_address`` (the Canary's ``metricsServer`` or the
    controller's default), the others their vendor's public API address where there is
    one. ``interval`` is the metric's; ``render`` renders the web provider's body
    template with the query's variables. Raises :class:`~analysis.AnalysisSpecError`
    naming the field or the Secret key.
    """
    secret = secret or {}
    row = vendor(spec.type)
    if row is None:
        check_provider_type(spec.type, f"{path}.type")
        raise AssertionError("unreachable")  # pragma: no cover
    address = _address(spec, row, secret, default_address, path)
    if not (isinstance(timeout_seconds, int | float) and math.isfinite(timeout_seconds)) or (
        timeout_seconds <= 0
    ):
        raise AnalysisSpecError(
            "timeout_seconds", f"expected a positive number, got {timeout_seconds!r}"
        )
    _check_secret_keys(spec, row, secret, path)
    username = secret.get("username") or None
    password = secret.get("password") or None
    if row.type in ("prometheus", "graphite") and (username is None) != (password is None):
        raise AnalysisSpecError(
            f"{path}.secretRef", "expected both 'username' and 'password' keys in the Secret"
        )
    ca_key = next((k for k in _CA_KEYS if secret.get(k)), None)
    return ProviderConfig(
        type=spec.type,
        address=address.rstrip("/"),
        headers=spec.headers,
        token=secret.get("token") or None,
        username=username,
        password=password,
        insecure_skip_verify=spec.insecure_skip_verify,
        ca_file=None,
        ca_data=secret[ca_key] if ca_key is not None else None,
        timeout_seconds=float(timeout_seconds),
        region=spec.region,
        secret=tuple(sorted((str(k), str(v)) for k, v in secret.items())),
        interval_seconds=_interval_seconds(interval, path),
        web=_web(spec, secret, render, path),
    )


def _address(
    spec: ProviderSpec,
    row: Vendor,
    secret: Mapping[str, str],
    default_address: str,
    path: str,
) -> str:
    """The Secret's address, else the spec's, else the default (Prometheus: the controller's).

    A bad one is an error naming where it came from (the Secret's ``address`` key is not
    ``spec.provider.address``), quoting it without ``user:password@`` or any of the
    Secret's credentials.
    """
    fallback = default_address if row.type == "prometheus" else row.default_address
    address = secret.get("address") or spec.address or fallback or ""
    problem = address_problem(address, _credentials(secret.items())) if address else None
    if problem is not None:
        if secret.get("address"):
            raise AnalysisSpecError(
                f"{path}.secretRef", f"{_secret_title(spec)} key 'address': {problem}"
            )
        if not spec.address:
            problem = (
                "not set, and the default address (the Canary's spec.metricsServer or the "
                f"controller's) is no metric server's: {problem}"
            )
        raise AnalysisSpecError(f"{path}.address", problem)
    if not address and row.address_required:
        raise AnalysisSpecError(
            f"{path}.address",
            f"a {row.type} provider needs the address of its API "
            "(spec.provider.address or the Secret's 'address' key)",
        )
    return address


def _secret_title(spec: ProviderSpec) -> str:
    """The provider's Secret, for a message about one of its keys."""
    return f"Secret {spec.secret_name}" if spec.secret_name else "the Secret"


def address_problem(address: str, secrets: Sequence[str] = ()) -> str | None:
    """What makes ``address`` no metric server's URL, quoting it without ``user:password@``
    or any of ``secrets``; None when it is one."""
    expected = (
        f"expected an http:// or https:// URL, got {redact(safe_address(address), secrets)!r}"
    )
    if not address.startswith(("http://", "https://")):
        return expected
    if any(c.isspace() or not c.isprintable() for c in address):
        return f"{expected} (it holds a space, a line break or another unprintable character)"
    try:
        parts = urlsplit(address)
    except ValueError:  # "Invalid IPv6 URL"
        return f"{expected} (a '[' or ']' around its host has no partner)"
    try:
        parts.port  # noqa: B018 - urlsplit reads the port only when asked
    except ValueError:
        return f"{expected} (its port is not a number from 0 to 65535)"
    if not parts.hostname:
        return f"{expected} (it has no host)"
    return None


def _check_secret_keys(
    spec: ProviderSpec, row: Vendor, secret: Mapping[str, str], path: str
) -> None:
    """Every key the type reads is in its Secret (the secretRef itself was checked at parse)."""
    if not row.secret_required or spec.secret_name is None:
        return
    missing = [k for k in row.secret_keys if not secret.get(k)]
    if missing:
        keys = " and ".join(repr(k) for k in missing)
        raise AnalysisSpecError(
            f"{path}.secretRef",
            f"Secret {spec.secret_name} has no {keys} key (a {row.type} provider needs "
            f"{' and '.join(repr(k) for k in row.secret_keys)})",
        )


def _web(
    spec: ProviderSpec,
    secret: Mapping[str, str],
    render: Callable[[str], str] | None,
    path: str,
) -> WebSpec | None:
    """``spec.provider.web`` with its body rendered; every secret header's key present."""
    web = spec.web
    if web is None:
        return None
    for header, key in web.secret_headers:
        if not secret.get(key):
            raise AnalysisSpecError(
                f"{path}.web.secretHeaders.{header}",
                f"Secret {spec.secret_name or '(no secretRef)'} has no {key!r} key",
            )
    if web.body is not None and render is not None:
        web = web.with_body(render(web.body))
    return web


def provider_config_from_spec(
    spec: Mapping[str, object] | None,
    *,
    path: str = "spec.provider",
    secret: Mapping[str, str] | None = None,
    default_address: str = DEFAULT_PROMETHEUS_ADDRESS,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> ProviderConfig:
    """:func:`parse_provider_spec` then :func:`provider_config`, raising the first problem.

    For callers holding a raw ``spec.provider`` mapping (tests, tools); the
    controller uses the spec the MetricTemplate parser made.
    """
    try:
        parsed = parse_provider_spec(spec, path=path)
    except AnalysisSpecErrors as exc:
        raise exc.problems[0] from None
    return provider_config(
        parsed,
        path=path,
        secret=secret,
        default_address=default_address,
        timeout_seconds=timeout_seconds,
    )


def _read_type(spec: Mapping[str, object], path: str, problems: Problems) -> str:
    raw_type = spec.get("type")
    if raw_type in (None, ""):
        return "prometheus"
    if not isinstance(raw_type, str):
        problems.add(f"{path}.type", f"expected a string, got {raw_type!r}")
        return "prometheus"
    try:
        return check_provider_type(raw_type, f"{path}.type")
    except AnalysisSpecError as exc:
        problems.add_error(exc)
        return raw_type


def _read_address(spec: Mapping[str, object], path: str, problems: Problems) -> str | None:
    address = spec.get("address")
    if address in (None, ""):
        return None
    if not isinstance(address, str):
        problems.add(f"{path}.address", f"expected a URL string, got {address!r}")
        return None
    problem = address_problem(address)
    if problem is not None:
        problems.add(f"{path}.address", problem)
        return None
    return address


def _read_headers(
    spec: Mapping[str, object], path: str, problems: Problems
) -> tuple[tuple[str, str], ...]:
    raw_headers = spec.get("headers") or {}
    if not isinstance(raw_headers, Mapping):
        problems.add(f"{path}.headers", "expected a map of header name to list of values")
        return ()
    headers: list[tuple[str, str]] = []
    for name, values in raw_headers.items():
        if not isinstance(name, str) or not name:
            problems.add(f"{path}.headers", f"expected header names as strings, got {name!r}")
            continue
        vals = [values] if isinstance(values, str) else values
        if not isinstance(vals, list) or not all(isinstance(v, str) for v in vals):
            problems.add(f"{path}.headers.{name}", "expected a list of strings")
            continue
        headers.extend((name, v) for v in vals)
    return tuple(headers)


def _read_region(spec: Mapping[str, object], path: str, problems: Problems) -> str | None:
    region = spec.get("region")
    if region is not None and not isinstance(region, str):
        problems.add(f"{path}.region", f"expected a string, got {region!r}")
        return None
    return region


def _read_secret_name(spec: Mapping[str, object], path: str, problems: Problems) -> str | None:
    """``secretRef.name``: the Secret with the credentials (and maybe the address)."""
    ref = spec.get("secretRef")
    if ref is None:
        return None
    if not isinstance(ref, Mapping):
        problems.add(f"{path}.secretRef", f"expected a map with a name, got {type_name(ref)}")
        return None
    name = ref.get("name")
    if not isinstance(name, str) or not name:
        problems.add(
            f"{path}.secretRef.name", f"expected a non-empty string, got {type_name(name)}"
        )
        return None
    return name


def _interval_seconds(interval: str, path: str) -> float:
    try:
        return promql_seconds(interval)
    except ValueError as exc:
        raise AnalysisSpecError(f"{path} interval", str(exc)) from None
