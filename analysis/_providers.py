"""The seam between judging and fetching: the metric provider Protocol and its factory.

Judges only see numbers; everything that talks to a metric server hides behind
:class:`MetricProvider`.  A provider is built from a :class:`ProviderConfig`
(the ``spec.provider`` block of a MetricTemplate, with its Secret already
resolved by the caller) by :func:`make_provider`, which is the single place
that decides which provider types exist.  Flagger's other provider types are
recognised and refused as "not supported yet", which is a different message
from a name nobody knows (an unknown name is an error, never a silent fallback
to Prometheus as in Flagger).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from analysis._errors import ProviderNotSupportedError, SpecError, UnknownProviderError

__all__ = [
    "DEFAULT_PROMETHEUS_ADDRESS",
    "DEFAULT_TIMEOUT_SECONDS",
    "NOT_SUPPORTED_PROVIDER_TYPES",
    "SUPPORTED_PROVIDER_TYPES",
    "Bucket",
    "MetricProvider",
    "ProviderConfig",
    "make_provider",
    "provider_config_from_spec",
]

DEFAULT_PROMETHEUS_ADDRESS = "http://prometheus:9090"
DEFAULT_TIMEOUT_SECONDS = 5.0

SUPPORTED_PROVIDER_TYPES: frozenset[str] = frozenset({"prometheus"})
NOT_SUPPORTED_PROVIDER_TYPES: frozenset[str] = frozenset(
    {
        "datadog",
        "influxdb",
        "cloudwatch",
        "newrelic",
        "graphite",
        "stackdriver",
        "dynatrace",
        "keptn",
        "splunk",
        "externalmetrics",
    }
)

Bucket = tuple[float, float]
"""One cumulative histogram bucket: (upper bound ``le`` in the metric's unit, count)."""


@runtime_checkable
class MetricProvider(Protocol):
    """What a metric server must offer to the judges.

    ``run_query`` returns exactly one number or raises a :class:`~analysis.QueryError`
    subclass (``NoDataError`` for an empty result or NaN).  ``query_samples`` runs
    a range query and returns the values of its single series, oldest first.
    ``query_buckets`` runs an instant query grouped ``by (le)`` and returns the
    cumulative buckets sorted by ``le`` (``+Inf`` included).
    """

    async def run_query(self, query: str, *, at: datetime | None = None) -> float: ...

    async def is_online(self) -> bool: ...

    async def query_samples(
        self, query: str, *, start: datetime, end: datetime, step_seconds: float
    ) -> tuple[float, ...]: ...

    async def query_buckets(
        self, query: str, *, at: datetime | None = None
    ) -> tuple[Bucket, ...]: ...


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


def _check_type(type_: str, path: str) -> str:
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


def provider_config_from_spec(
    spec: Mapping[str, object] | None,
    *,
    path: str = "spec.provider",
    secret: Mapping[str, str] | None = None,
    default_address: str = DEFAULT_PROMETHEUS_ADDRESS,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> ProviderConfig:
    """Build a :class:`ProviderConfig` from a MetricTemplate ``spec.provider`` mapping.

    ``secret`` is the decoded data of the template's ``secretRef`` Secret (keys
    ``token`` or ``username``/``password`` for Prometheus, plus ``address``
    which overrides the spec's address as in Flagger).  ``None`` spec means the
    default Prometheus (builtin metrics and inline queries).
    """
    spec = spec or {}
    raw_type = spec.get("type", "prometheus")
    if raw_type in (None, ""):
        raw_type = "prometheus"
    if not isinstance(raw_type, str):
        raise SpecError(f"{path}.type", f"expected a string, got {raw_type!r}")
    type_ = _check_type(raw_type, f"{path}.type")

    address = spec.get("address", default_address)
    if address in (None, ""):
        address = default_address
    if not isinstance(address, str):
        raise SpecError(f"{path}.address", f"expected a URL string, got {address!r}")
    secret = secret or {}
    if secret.get("address"):
        address = secret["address"]
    if not address.startswith(("http://", "https://")):
        raise SpecError(f"{path}.address", f"expected an http:// or https:// URL, got {address!r}")

    headers: list[tuple[str, str]] = []
    raw_headers = spec.get("headers") or {}
    if not isinstance(raw_headers, Mapping):
        raise SpecError(f"{path}.headers", "expected a map of header name to list of values")
    for name, values in raw_headers.items():
        if not isinstance(name, str) or not name:
            raise SpecError(f"{path}.headers", f"expected header names as strings, got {name!r}")
        vals = [values] if isinstance(values, str) else values
        if not isinstance(vals, list) or not all(isinstance(v, str) for v in vals):
            raise SpecError(f"{path}.headers.{name}", "expected a list of strings")
        headers.extend((name, v) for v in vals)

    insecure = spec.get("insecureSkipVerify", False)
    if not isinstance(insecure, bool):
        raise SpecError(f"{path}.insecureSkipVerify", f"expected true or false, got {insecure!r}")
    region = spec.get("region")
    if region is not None and not isinstance(region, str):
        raise SpecError(f"{path}.region", f"expected a string, got {region!r}")
    if not (isinstance(timeout_seconds, int | float) and math.isfinite(timeout_seconds)) or (
        timeout_seconds <= 0
    ):
        raise SpecError("timeout_seconds", f"expected a positive number, got {timeout_seconds!r}")

    token = secret.get("token") or None
    username = secret.get("username") or None
    password = secret.get("password") or None
    if (username is None) != (password is None):
        raise SpecError(
            f"{path}.secretRef", "expected both 'username' and 'password' keys in the Secret"
        )
    return ProviderConfig(
        type=type_,
        address=address.rstrip("/"),
        headers=tuple(headers),
        token=token,
        username=username,
        password=password,
        insecure_skip_verify=insecure,
        ca_file=None,
        ca_data=secret.get("ca.crt") or secret.get("caFile") or None,
        timeout_seconds=float(timeout_seconds),
        region=region,
    )


def make_provider(config: ProviderConfig, *, path: str = "spec.provider.type") -> MetricProvider:
    """Return a provider for ``config``; unknown or unsupported types name ``path``."""
    _check_type(config.type, path)
    # Loaded on use so that importing analysis stays free of httpx (pure spec parsing).
    module = importlib.import_module("analysis._prometheus")
    provider: MetricProvider = module.PrometheusProvider(config)
    return provider
