"""Keptn behind :class:`~analysis.MetricProvider`, with Flagger's ``keptn`` semantics.

Keptn's metrics operator keeps the value of each metric in the cluster: a ``KeptnMetric``
(``metrics.keptn.sh``) names a Keptn metrics provider and a query, Keptn runs the query every
``spec.fetchIntervalSeconds`` and writes the answer into the object's ``status.value`` (a
string, e.g. ``"0.42"``). A MetricTemplate of type ``keptn`` has no address and no Secret: it
reads that object through the Kubernetes API (the :class:`~analysis.KubeReader` the caller
hands over), so the value is whatever Keptn fetched last, over the KeptnMetric's own window
(``spec.range.interval``), not the metric's ``interval``.

The query is Flagger's ``<type>/<namespace>/<name>[/<timeframe>/<args>]``, split on ``/``
after trimming and lower-casing (Kubernetes names are lower case anyway):

* ``keptnmetric/<namespace>/<name>`` (or ``keptnmetrics/...``): ``GET
  /apis/metrics.keptn.sh/v1beta1/namespaces/<namespace>/keptnmetrics/<name>`` (the API
  version Flagger reads) and ``status.value`` as a decimal number. A timeframe and arguments
  after the name are ignored, as in Flagger (they belong to an Analysis).
* ``analysis/<namespace>/<name>/<timeframe>/<args>``: Flagger creates a Keptn ``Analysis`` of
  the AnalysisDefinition ``<name>`` and waits for its verdict (1 passed, 0 failed). That
  needs to create and delete objects, which a read-only KubeReader cannot; the query is
  refused with :class:`~analysis.BadQueryError` saying so (use a ``keptnmetric`` query).

Errors, where Flagger has one "could not retrieve KeptnMetric" error for all of them:

* the KeptnMetric does not exist (or Keptn's CRDs are not installed): ``BadQueryError`` naming
  ``<namespace>/<name>``: it fails the same way every tick until someone fixes it;
* ``status.value`` not there yet (Keptn has not fetched it): ``NoDataError``; when Keptn wrote
  ``status.errMsg`` instead, a ``QueryError`` quoting Keptn's message;
* a value that is not a number: ``QueryError``; ``NaN``: ``NoDataError``.

``is_online`` reads the group-version's discovery document: Keptn's CRDs are installed or not.
Every read is bounded by the provider's timeout (``QueryTimeoutError``); the reader's own
errors (API server unreachable, 403 for a service account without ``get`` on keptnmetrics)
come through as the reader raised them.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from analysis._http import SingleValue, short
from analysis._providers import KubeReader
from analysis._spec.errors import BadQueryError, NoDataError, QueryError, QueryTimeoutError
from analysis._spec.provider import ProviderConfig

__all__ = [
    "API_VERSION",
    "GROUP",
    "KeptnProvider",
    "KeptnQuery",
    "check_query",
    "parse_keptn_query",
]

GROUP = "metrics.keptn.sh"
API_VERSION = "v1beta1"
"""The version of Keptn's API Flagger reads (Keptn serves it next to ``v1``)."""

_KINDS = {
    "keptnmetric": "keptnmetrics",
    "keptnmetrics": "keptnmetrics",
    "analysis": "analyses",
    "analyses": "analyses",
}
_FORMAT = "<keptnmetric|analysis>/<namespace>/<name>[/<timeframe>/<arguments>]"
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|infinity|nan)")


@dataclass(frozen=True, slots=True)
class KeptnQuery:
    """A parsed query: which resource (``keptnmetrics`` or ``analyses``), where, which one."""

    resource: str
    namespace: str
    name: str
    timeframe: str = "1m"
    arguments: tuple[tuple[str, str], ...] = ()

    @property
    def path(self) -> str:
        return (
            f"/apis/{GROUP}/{API_VERSION}/namespaces/{quote(self.namespace, safe='')}"
            f"/{self.resource}/{quote(self.name, safe='')}"
        )


def check_query(query: str) -> None:
    """Raise for a query that names no KeptnMetric (``canary lint`` asks this offline)."""
    parse_keptn_query(query)


def parse_keptn_query(query: str) -> KeptnQuery:
    """Flagger's query syntax (see the module docstring); :class:`BadQueryError` otherwise."""
    parts = query.strip().lower().split("/")
    if len(parts) < 3:
        raise BadQueryError(
            f"Keptn query {short(query)!r} is not {_FORMAT}, e.g. keptnmetric/my-namespace/"
            "response-time",
            query=query,
        )
    resource = _KINDS.get(parts[0])
    if resource is None:
        raise BadQueryError(
            f"Keptn query {short(query)!r} starts with {parts[0]!r}: expected 'keptnmetric' "
            "or 'analysis'",
            query=query,
        )
    namespace, name = parts[1], parts[2]
    if not namespace or not name:
        raise BadQueryError(
            f"Keptn query {short(query)!r} has an empty namespace or name: expected {_FORMAT}",
            query=query,
        )
    timeframe = parts[3] if len(parts) >= 4 and parts[3] else "1m"
    arguments: list[tuple[str, str]] = []
    if len(parts) >= 5:
        for pair in parts[4].split(";"):
            key, sep, value = pair.partition("=")
            if sep and key and "=" not in value:
                arguments.append((key, value))
    return KeptnQuery(resource, namespace, name, timeframe, tuple(arguments))


def parse_metric_value(raw: str, where: str, query: str) -> float:
    """``status.value`` of a KeptnMetric as a float (a decimal number, as Go's ParseFloat)."""
    text = raw.strip()
    if not _NUMBER.fullmatch(text.lower()):
        raise QueryError(
            f"KeptnMetric {where} has a value that is not a number: {short(raw, 80)!r}",
            query=query,
        )
    value = float(text)
    if math.isnan(value):
        raise NoDataError(f"KeptnMetric {where} has the value NaN", query=query)
    return value


class KeptnProvider(SingleValue):
    """Keptn's KeptnMetric objects, read through the Kubernetes API; see the module docstring."""

    title = "Keptn"

    def __init__(self, config: ProviderConfig, *, kube: KubeReader) -> None:
        self._config = config
        self._kube = kube

    async def run_query(self, query: str, *, at: datetime | None = None) -> float:
        # ``at`` cannot be honoured: a KeptnMetric holds only the value Keptn fetched last.
        parsed = parse_keptn_query(query)
        if parsed.resource == "analyses":
            raise BadQueryError(
                f"Keptn query {short(query)!r} asks for an Analysis: creating Keptn Analysis "
                "objects is not supported yet; read a KeptnMetric instead "
                "(keptnmetric/<namespace>/<name>)",
                query=query,
            )
        where = f"{parsed.namespace}/{parsed.name}"
        obj = await self._read(parsed.path, f"KeptnMetric {where}", query)
        if obj is None:
            raise BadQueryError(
                f"KeptnMetric {where} not found ({GROUP}/{API_VERSION}): check the query's "
                "namespace and name, and that Keptn's metrics operator is installed",
                query=query,
            )
        return _value_of(obj, where, query)

    async def is_online(self) -> bool:
        try:
            path = f"/apis/{GROUP}/{API_VERSION}"
            return await self._read(path, "Keptn's API", path) is not None
        except QueryError:
            return False

    async def _read(self, path: str, what: str, query: str) -> Mapping[str, Any] | None:
        """``path`` through the KubeReader, within the provider's timeout."""
        try:
            return await asyncio.wait_for(
                self._kube.get_path(path), timeout=self._config.timeout_seconds
            )
        except TimeoutError:
            raise QueryTimeoutError(
                f"the Kubernetes API did not answer within {self._config.timeout_seconds:g}s "
                f"reading {what}",
                query=query,
            ) from None


def _value_of(obj: Mapping[str, Any], where: str, query: str) -> float:
    status = obj.get("status")
    status = status if isinstance(status, Mapping) else {}
    value = status.get("value")
    if value is None or value == "":
        error = status.get("errMsg")
        if isinstance(error, str) and error.strip():
            raise QueryError(
                f"Keptn could not fetch KeptnMetric {where}: {short(error, 300)}", query=query
            )
        raise NoDataError(
            f"KeptnMetric {where} has no status.value: Keptn has not fetched it yet",
            query=query,
        )
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QueryError(
            f"KeptnMetric {where} has a status.value that is not a number: {value!r}",
            query=query,
        )
    return parse_metric_value(str(value), where, query)
