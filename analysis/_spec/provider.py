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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

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
    "NOT_SUPPORTED_PROVIDER_TYPES",
    "SUPPORTED_PROVIDER_TYPES",
    "ProviderConfig",
    "ProviderSpec",
    "check_provider_type",
    "parse_provider_spec",
    "provider_config",
    "provider_config_from_spec",
]

DEFAULT_PROMETHEUS_ADDRESS = "http://prometheus:9090"
#: Secret keys that name where or whose data it is, not how to get in: not masked in messages
#: (an org called "prod" would otherwise mask every "prod"). An address is shown without its
#: user:password@ part, and a key in its path or query is masked (`VendorHTTP.where`).
NOT_CREDENTIALS = frozenset({"address", "project", "org", "newrelic_account_id", "region"})
DEFAULT_TIMEOUT_SECONDS = 5.0

SUPPORTED_PROVIDER_TYPES: frozenset[str] = frozenset(v.type for v in VENDORS)
# Every type Flagger knows is implemented; the name stays for callers that ask.
NOT_SUPPORTED_PROVIDER_TYPES: frozenset[str] = frozenset()


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
        values = [v for k, v in self.secret if k not in NOT_CREDENTIALS]
        values += [self.token or "", self.password or ""]
        # "Bearer abc..." is masked whole, and its token alone too (an echo may quote it).
        parts = [part for v in values if len(v.split()) > 1 for part in v.split()[1:]]
        return tuple(v for v in [*values, *parts] if len(v) >= 4)


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
    return ProviderConfig(
        type=spec.type,
        address=address.rstrip("/"),
        headers=spec.headers,
        token=secret.get("token") or None,
        username=username,
        password=password,
        insecure_skip_verify=spec.insecure_skip_verify,
        ca_file=None,
        ca_data=secret.get("ca.crt") or secret.get("caFile") or None,
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
    """The Secret's address, else the spec's, else the default (Prometheus: the controller's)."""
    fallback = default_address if row.type == "prometheus" else row.default_address
    address = secret.get("address") or spec.address or fallback or ""
    if address and not address.startswith(("http://", "https://")):
        raise AnalysisSpecError(
            f"{path}.address", f"expected an http:// or https:// URL, got {address!r}"
        )
    if not address and row.address_required:
        raise AnalysisSpecError(
            f"{path}.address",
            f"a {row.type} provider needs the address of its API "
            "(spec.provider.address or the Secret's 'address' key)",
        )
    return address


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
    if not address.startswith(("http://", "https://")):
        problems.add(f"{path}.address", f"expected an http:// or https:// URL, got {address!r}")
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
