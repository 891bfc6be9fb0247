"""The Kubernetes External Metrics API behind :class:`~analysis.MetricProvider` (``externalmetrics``).

Metric adapters (KEDA, prometheus-adapter, the Datadog cluster agent, ...) serve
``external.metrics.k8s.io/v1beta1`` for the HorizontalPodAutoscaler: the API server proxies
``GET /apis/external.metrics.k8s.io/v1beta1/namespaces/<namespace>/<metric>?labelSelector=<s>``
to the adapter registered by an APIService, which answers an ``ExternalMetricValueList``
whose ``items[].value`` are Kubernetes quantities (``"42"``, ``"500m"``, ``"1.5k"``,
``"2Mi"``, ``"1e3"``). Flagger's provider reads that API; so does this one, and a canary can
then reuse the numbers (and the rate-limit batching) an autoscaler already relies on.

The query is Flagger's: ``[<namespace>/]<metricName>[?labelSelector=<url-encoded selector>]``,
namespace ``default`` when left out (``/<metric>`` too), at most one ``/``. The selector is
percent-decoded here and sent as the ``labelSelector`` parameter; the adapter validates it.

Which number, and why: the *first* item's value, as Flagger reads it (an adapter answers one
item per matching series; a selector that narrows to one series is the user's job). The
quantity is parsed exactly (:func:`parse_quantity`, decimal arithmetic, every suffix
apimachinery accepts) and only then turned into a float. No items is
:class:`~analysis.NoDataError`. The window is the adapter's own (``at`` cannot be honoured:
the API has no time parameter).

Where the request goes: by default through the Kubernetes API (the
:class:`~analysis.KubeReader` the caller hands over, with the controller's own identity), as a
metric adapter is meant to be reached. As in Flagger, ``spec.provider.address`` (or the
Secret's ``address``) sends it to that API server or adapter directly instead, with the
Secret's ``token`` as a bearer token (else the pod's service-account token, when there is
one) and ``insecureSkipVerify`` honoured. Errors: an unknown metric or an API with no adapter
(404) is :class:`~analysis.BadQueryError` naming both; a rejected selector (400) too.

``is_online`` reads the group-version's discovery document: an adapter is registered and
answering, or not. (Flagger lists a ``dummy-metric`` in ``kube-system`` instead, which an
adapter may well answer with a 404.)
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from analysis._http import SingleValue, VendorHTTP, short
from analysis._providers import KubeReader
from analysis._spec.errors import (
    BadQueryError,
    HTTPStatusError,
    NoDataError,
    QueryError,
    QueryTimeoutError,
)
from analysis._spec.provider import ProviderConfig

__all__ = [
    "API_PATH",
    "DEFAULT_NAMESPACE",
    "ExternalMetricQuery",
    "ExternalMetricsProvider",
    "check_query",
    "parse_external_query",
    "parse_quantity",
]

API_PATH = "/apis/external.metrics.k8s.io/v1beta1"
DEFAULT_NAMESPACE = "default"
SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
_FORMAT = "[<namespace>/]<metricName>[?labelSelector=<url-encoded label selector>]"

# apimachinery's suffixes: binary (powers of 1024), decimal SI (powers of 1000, n to E).
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|[numkMGTPE])?"
)


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes quantity (``resource.Quantity``'s string form) as an exact Decimal.

    ``<sign?><digits[.digits]><suffix?>`` where the suffix is a binary SI one (``Ki`` ...
    ``Ei``: 1024^n), a decimal SI one (``n u m k M G T P E``) or a decimal exponent
    (``e3``, ``E-2``). A lone ``E`` is exa (10^18), ``E3`` an exponent. Raises ValueError
    for anything else (spaces included).
    """
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    try:
        number = Decimal(match["number"])
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"{text!r} is not a Kubernetes quantity") from None
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * (Decimal(1024) ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix])
    return number.scaleb(int(suffix[1:]))


@dataclass(frozen=True, slots=True)
class ExternalMetricQuery:
    """A parsed query: the namespace, the metric and the label selector (``""``: all)."""

    namespace: str
    metric: str
    label_selector: str = ""

    @property
    def path(self) -> str:
        return (
            f"{API_PATH}/namespaces/{quote(self.namespace, safe='')}/{quote(self.metric, safe='')}"
        )

    @property
    def params(self) -> dict[str, str]:
        return {"labelSelector": self.label_selector} if self.label_selector else {}


def check_query(query: str) -> None:
    """Raise for a query that names no metric (``canary lint`` asks this offline)."""
    parse_external_query(query)


def parse_external_query(query: str) -> ExternalMetricQuery:
    """Flagger's query syntax (see the module docstring); :class:`BadQueryError` otherwise."""
    parts = urlsplit("dummy:///" + query.strip())
    path = parts.path.removeprefix("/")
    names = path.split("/")
    if len(names) > 2:
        raise BadQueryError(
            f"external metrics query {short(query)!r} has too many '/': expected {_FORMAT}",
            query=query,
        )
    namespace = names[0] if len(names) == 2 and names[0] else DEFAULT_NAMESPACE
    metric = names[-1]
    if not metric:
        raise BadQueryError(
            f"external metrics query {short(query)!r} has no metric name: expected {_FORMAT}",
            query=query,
        )
    selectors = parse_qs(parts.query).get("labelSelector") or [""]
    return ExternalMetricQuery(namespace, metric, selectors[0])


class ExternalMetricsProvider(SingleValue):
    """``external.metrics.k8s.io`` through the Kubernetes API (or an address); see the module docstring."""

    title = "the External Metrics API"

    def __init__(
        self,
        config: ProviderConfig,
        *,
        kube: KubeReader,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._kube = kube
        self._http = VendorHTTP(
            config, "the External Metrics API", client=client, transport=transport
        )

    async def run_query(self, query: str, *, at: datetime | None = None) -> float:
        parsed = parse_external_query(query)
        where = f"{parsed.metric} in namespace {parsed.namespace}"
        answer = await self._get(parsed.path, parsed.params, query)
        if answer is None:
            raise BadQueryError(
                f"the External Metrics API has no metric {where} (HTTP 404): check the "
                "metric name, and that a metrics adapter is registered "
                "(APIService v1beta1.external.metrics.k8s.io)",
                query=query,
            )
        return _first_value(answer, where, query)

    async def is_online(self) -> bool:
        try:
            return await self._get(API_PATH, {}, API_PATH) is not None
        except QueryError:
            return False

    async def _get(
        self, path: str, params: Mapping[str, str], query: str
    ) -> Mapping[str, Any] | None:
        if self._config.address:
            return await self._get_direct(path, params, query)
        try:
            return await asyncio.wait_for(
                self._kube.get_path(path, params or None), timeout=self._config.timeout_seconds
            )
        except TimeoutError:
            raise QueryTimeoutError(
                f"the Kubernetes API did not answer within {self._config.timeout_seconds:g}s "
                f"to {path} (query {short(query)!r})",
                query=query,
            ) from None

    async def _get_direct(
        self, path: str, params: Mapping[str, str], query: str
    ) -> Mapping[str, Any] | None:
        """Flagger's ``address`` mode: the API server or the adapter itself, with a token.

        The pod's own service-account token goes only to the cluster's API server (the
        address ``KUBERNETES_SERVICE_HOST`` names): anyone who can write a MetricTemplate can
        name an address, and that token can change Deployments. Elsewhere the Secret's
        ``token`` is needed. Whichever token is sent is masked in every message.
        """
        token = self._config.token
        if token is None and _is_cluster_api(self._config.address):
            token = _service_account_token()
        headers = [("Authorization", f"Bearer {token}")] if token else []
        if token:
            self._http.also_mask(token)
        try:
            response = await self._http.send(
                "GET",
                self._config.address + path,
                query=query,
                params=params or None,
                headers=headers,
            )
        except HTTPStatusError as exc:
            if exc.status_code == 404:
                return None
            raise
        answer = self._http.decode(response, query)
        if not isinstance(answer, Mapping):
            raise QueryError(
                f"the External Metrics API answered {short(query)!r} with a "
                f"{type(answer).__name__}, not an object",
                query=query,
            )
        return answer


def _is_cluster_api(address: str) -> bool:
    """Whether ``address`` is this cluster's API server, as the pod's environment names it."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    parts = urlsplit(address)
    return bool(host) and parts.hostname in (host, "kubernetes.default.svc", "kubernetes.default")


def _service_account_token() -> str | None:
    try:
        return SERVICE_ACCOUNT_TOKEN.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _first_value(answer: Mapping[str, Any], where: str, query: str) -> float:
    items = answer.get("items")
    if items is None or items == []:
        raise NoDataError(f"the External Metrics API has no value for {where}", query=query)
    if not isinstance(items, list) or not isinstance(items[0], Mapping):
        raise QueryError(
            f"the External Metrics API answered {where} without an ExternalMetricValueList "
            f"(items: {short(repr(items), 80)})",
            query=query,
        )
    raw = items[0].get("value")
    if not isinstance(raw, str):
        raise QueryError(
            f"the External Metrics API answered {where} with a value that is not a quantity: "
            f"{raw!r}",
            query=query,
        )
    try:
        return float(parse_quantity(raw))
    except ValueError:
        raise QueryError(
            f"the External Metrics API answered {where} with {short(raw, 80)!r}, which is not "
            "a Kubernetes quantity",
            query=query,
        ) from None
