"""MetricTemplate and AlertProvider specs, parsed with field paths.

These are the two companion kinds of a Canary (reference/flagger.md 1.3, 1.4).
A provider type we do not know is an error (design principle 6: never a silent
fallback, unlike Flagger which falls back to Prometheus or logs and moves on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from canary.model.canary import API_VERSION, FLAGGER_API_VERSION
from canary.model.duration import DurationError, parse_duration
from canary.model.reader import Issues, Reader

METRIC_PROVIDER_TYPES = frozenset({"prometheus"})
FLAGGER_METRIC_PROVIDER_TYPES = frozenset(
    {
        "influxdb",
        "datadog",
        "externalmetrics",
        "stackdriver",
        "cloudwatch",
        "newrelic",
        "graphite",
        "dynatrace",
        "keptn",
        "splunk",
    }
)
ALERT_PROVIDER_TYPES = frozenset({"slack", "msteams", "discord", "rocket", "gchat", "generic"})


@dataclass(frozen=True, slots=True)
class MetricTemplate:
    name: str
    namespace: str
    provider_type: str
    query: str
    address: str | None = None
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    secret_name: str | None = None
    region: str | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True, slots=True)
class AlertProvider:
    name: str
    namespace: str
    type: str
    address: str | None = None
    channel: str = "general"
    username: str = "canary-engine"
    proxy: str | None = None
    secret_name: str | None = None
    message_template: str | None = None
    timeout_seconds: float = 5.0


def _header(doc: Reader, kind: str) -> tuple[Reader, Reader]:
    api_version = doc.string("apiVersion")
    if api_version == FLAGGER_API_VERSION:
        doc.issues.error(
            "apiVersion", f'"{FLAGGER_API_VERSION}" is Flagger\'s; use "{API_VERSION}"'
        )
    elif api_version and api_version != API_VERSION:
        doc.issues.error("apiVersion", f'expected "{API_VERSION}", got "{api_version}"')
    found = doc.string("kind")
    if found and found != kind:
        doc.issues.error("kind", f'expected "{kind}", got "{found}"')
    meta = doc.obj("metadata") or Reader({}, "metadata", doc.issues)
    spec = doc.obj("spec", required=True) or Reader({}, "spec", doc.issues)
    return meta, spec


def parse_metric_template(doc: Mapping[str, Any]) -> MetricTemplate:
    issues = Issues()
    meta, spec = _header(Reader(doc, "", issues), "MetricTemplate")
    provider = spec.obj("provider") or Reader({}, "spec.provider", issues)
    ptype = provider.string("type") or "prometheus"
    if ptype in FLAGGER_METRIC_PROVIDER_TYPES:
        issues.error(
            "spec.provider.type",
            f'metric provider "{ptype}" is valid in Flagger but not supported by canary-engine yet; '
            "supported: prometheus",
        )
    elif ptype not in METRIC_PROVIDER_TYPES:
        issues.error(
            "spec.provider.type", f'unknown metric provider "{ptype}"; supported: prometheus'
        )
    headers: dict[str, tuple[str, ...]] = {}
    raw_headers = provider.raw("headers", {})
    if isinstance(raw_headers, Mapping):
        for key, value in raw_headers.items():
            if isinstance(value, str):
                headers[str(key)] = (value,)
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                headers[str(key)] = tuple(value)
            else:
                issues.error(
                    f"spec.provider.headers.{key}", "expected a string or a list of strings"
                )
    else:
        issues.error("spec.provider.headers", "expected an object of header names to values")
    secret = provider.obj("secretRef")
    template = MetricTemplate(
        name=meta.string("name"),
        namespace=meta.string("namespace") or "default",
        provider_type=ptype,
        query=spec.string("query", required=True),
        address=provider.opt_str("address"),
        headers=headers,
        secret_name=secret.string("name", required=True) if secret else None,
        region=provider.opt_str("region"),
        insecure_skip_verify=provider.boolean("insecureSkipVerify"),
    )
    if template.address and not template.address.startswith(("http://", "https://")):
        issues.error("spec.provider.address", "expected an http:// or https:// URL")
    issues.raise_if_errors()
    return template


def parse_alert_provider(doc: Mapping[str, Any]) -> AlertProvider:
    issues = Issues()
    meta, spec = _header(Reader(doc, "", issues), "AlertProvider")
    ptype = spec.string("type", required=True)
    if ptype and ptype not in ALERT_PROVIDER_TYPES:
        issues.error(
            "spec.type",
            f'unknown alert provider type "{ptype}"; expected one of: {", ".join(sorted(ALERT_PROVIDER_TYPES))}',
        )
    secret = spec.obj("secretRef")
    timeout = 5.0
    raw_timeout = spec.string("timeout")
    if raw_timeout:
        try:
            timeout = parse_duration(raw_timeout)
        except DurationError as exc:
            issues.error("spec.timeout", str(exc))
    provider = AlertProvider(
        name=meta.string("name"),
        namespace=meta.string("namespace") or "default",
        type=ptype,
        address=spec.opt_str("address"),
        channel=spec.string("channel") or "general",
        username=spec.string("username") or "canary-engine",
        proxy=spec.opt_str("proxy"),
        secret_name=secret.string("name", required=True) if secret else None,
        message_template=spec.opt_str("messageTemplate"),
        timeout_seconds=timeout,
    )
    if provider.address is None and provider.secret_name is None:
        issues.error(
            "spec.address", "required unless spec.secretRef names a Secret with an address key"
        )
    issues.raise_if_errors()
    return provider
