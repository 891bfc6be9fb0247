"""MetricTemplate and AlertProvider specs, parsed with field paths.

These are the two companion kinds of a Canary (reference/flagger.md 1.3, 1.4).
A provider type we do not know is an error (design principle 6: never a silent
fallback, unlike Flagger which falls back to Prometheus or logs and moves on).

A MetricTemplate's ``spec.provider`` is parsed by `analysis`'s own parser
(`analysis.spec.parse_provider_spec`): the controller hands the resulting
`ProviderSpec` to `analysis.provider_config` as it is, so the provider types,
the address and header rules live in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from analysis.spec import (
    SUPPORTED_PROVIDER_TYPES,
    AnalysisSpecError,
    ProviderSpec,
    parse_provider_spec,
)
from canary.model.canary import API_VERSION, FLAGGER_API_VERSION
from canary.model.duration import DurationError, parse_duration
from canary.model.reader import Issues, Reader

# analysis's list, under the name `canary lint` knows it by.
METRIC_PROVIDER_TYPES = SUPPORTED_PROVIDER_TYPES
ALERT_PROVIDER_TYPES = frozenset({"slack", "msteams", "discord", "rocket", "gchat", "generic"})


@dataclass(frozen=True, slots=True)
class MetricTemplate:
    """A parsed MetricTemplate: the query, and the provider as `analysis` reads it.

    ``provider.secret_name`` names the Secret with the credentials, which the
    controller reads when a metric runs (never at parse time).
    """

    name: str
    namespace: str
    query: str
    provider: ProviderSpec = field(default_factory=ProviderSpec)


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
    template = MetricTemplate(
        name=meta.string("name"),
        namespace=meta.string("namespace") or "default",
        provider=_parse_provider(spec),
        query=spec.string("query", required=True),
    )
    issues.raise_if_errors()
    return template


def _parse_provider(spec: Reader) -> ProviderSpec:
    """``spec.provider`` by `analysis`'s parser; each of its problems becomes an issue."""
    try:
        return parse_provider_spec(spec.raw("provider"), path=spec.at("provider"))
    except AnalysisSpecError as exc:
        for problem in exc.problems:
            spec.issues.error(problem.path, problem.detail)
        return ProviderSpec()


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
