"""A metric adapter serving the Kubernetes External Metrics API on loopback, and its registration.

The External Metrics API (``external.metrics.k8s.io/v1beta1``, k8s.io/metrics) is what
KEDA, prometheus-adapter or the Datadog cluster agent serve behind the API server for the
HorizontalPodAutoscaler. :class:`ExternalMetricsAdapter` serves it as those adapters do
(the ``custom-metrics-apiserver`` library's shapes):

* ``GET /apis/external.metrics.k8s.io/v1beta1``: the ``APIResourceList`` naming the metrics
  it serves (``namespaced``, kind ``ExternalMetricValueList``, verb ``get``);
* ``GET /apis/external.metrics.k8s.io/v1beta1/namespaces/<ns>/<metric>?labelSelector=<s>``:
  an ``ExternalMetricValueList`` with one item per matching series, ``value`` a quantity
  string (``"500m"`` for 0.5). The series' labels are :attr:`metric_labels`, or, when None,
  the equality requirements of the selector (a series exists for any selector); a selector
  they do not satisfy answers no items. A selector that does not parse is a 400 ``Status``
  (``BadRequest``), a metric it does not serve a 404 ``Status`` (``NotFound``).

Authentication as an aggregated adapter does it: a request proxied by the API server carries
the caller in ``X-Remote-User`` (a real adapter also checks the API server's client
certificate, which this loopback one cannot); a request sent straight to it (Flagger's
``address`` mode) needs ``Authorization: Bearer`` :data:`TOKEN`; anything else is a 401
``Status``.

What a test or the end-to-end test calls:

* ``await adapter.start()``, then apply :meth:`ExternalMetricsAdapter.registration` to the
  sandbox (a Namespace, a selector-less Service, its Endpoints at 127.0.0.1:<port> with
  ``appProtocol: http``, and the ``v1beta1.external.metrics.k8s.io`` APIService);
* :meth:`~tests.vendors.VendorServer.metric_template` (``type: externalmetrics``, no address,
  no Secret) and :meth:`ExternalMetricsAdapter.query`;
* ``adapter.answer(0.5)`` (served as ``"500m"``) or ``adapter.answer_quantity("2Mi")`` for the
  value, ``adapter.answer(None)`` for no items.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tests.vendors import LOOPBACK, VendorServer

GROUP = "external.metrics.k8s.io"
VERSION = "v1beta1"
API_PATH = f"/apis/{GROUP}/{VERSION}"
APISERVICE_NAME = f"{VERSION}.{GROUP}"
TOKEN = "em-token-7d1c4b9a2e8f4a6b9c0d1e2f3a4b5c6d"
METRIC = "istio_requests_error_percentage"
ADAPTER_NAMESPACE = "custom-metrics"
ADAPTER_SERVICE = "metrics-adapter"


def status(code: int, reason: str, message: str) -> web.Response:
    """A ``meta/v1 Status`` error, as every Kubernetes-style API server answers one."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.json_response(body, status=code)


def format_quantity(value: float) -> str:
    """``value`` the way ``resource.Quantity`` prints it: ``"3"``, ``"500m"``, ``"1500m"``."""
    exact = Decimal(repr(value))
    if exact == exact.to_integral_value():
        return str(int(exact))
    milli = exact * 1000
    if milli == milli.to_integral_value():
        return f"{int(milli)}m"
    return format(exact, "f")


_REQUIREMENT = re.compile(
    r"\s*(?P<not>!)?\s*(?P<key>[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
    r"|\s+(?P<setop>in|notin)\s*\((?P<values>[^()]*)\))?\s*"
)


def parse_selector(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """``(key, operator, values)`` of each requirement; ValueError for a malformed one."""
    requirements: list[tuple[str, str, tuple[str, ...]]] = []
    if not text.strip():
        return requirements
    for part in re.split(r",(?![^()]*\))", text):
        match = _REQUIREMENT.fullmatch(part)
        if match is None:
            raise ValueError(f"unable to parse requirement: {part.strip()!r}")
        key = match["key"]
        if match["not"]:
            if match["op"] or match["setop"]:
                raise ValueError(f"unable to parse requirement: {part.strip()!r}")
            requirements.append((key, "!", ()))
        elif match["op"]:
            requirements.append(
                (key, "!=" if match["op"] == "!=" else "=", (match["value"] or "",))
            )
        elif match["setop"]:
            values = tuple(v.strip() for v in match["values"].split(",") if v.strip())
            requirements.append((key, match["setop"], values))
        else:
            requirements.append((key, "exists", ()))
    return requirements


def matches(
    requirements: list[tuple[str, str, tuple[str, ...]]], labels: Mapping[str, str]
) -> bool:
    for key, op, values in requirements:
        present = key in labels
        value = labels.get(key, "")
        ok = {
            "=": present and value == values[0],
            "!=": not present or value != values[0],
            "in": present and value in values,
            "notin": not present or value not in values,
            "exists": present,
            "!": not present,
        }[op]
        if not ok:
            return False
    return True


class ExternalMetricsAdapter(VendorServer):
    """An external metrics adapter on loopback; see the module docstring."""

    type = "externalmetrics"

    def __init__(self, metric: str = METRIC) -> None:
        super().__init__()
        self.metric = metric
        self.quantity: str | None = None  # served as it is when set (answer_quantity)
        self.more_values: list[str] = []  # further items after the first
        self.metric_labels: dict[str, str] | None = None
        self.namespace = ADAPTER_NAMESPACE
        self.service = ADAPTER_SERVICE

    # -- what a test drives ---------------------------------------------------

    def answer(self, value: float | None) -> None:
        super().answer(value)
        self.quantity = None

    def answer_quantity(self, quantity: str) -> None:
        """Serve this exact quantity string (``"2Mi"``, ``"1e3"``) as the first item's value."""
        self.answer(0.0)
        self.quantity = quantity

    # -- what a user writes (docs/gitbook/usage/metrics.md, "Kubernetes External Metrics") ----

    def provider(self) -> dict[str, Any]:
        return {"type": "externalmetrics"}

    def secret_data(self) -> dict[str, str] | None:
        return None

    def query(self, target: str, namespace: str) -> str:
        return f"{namespace}/{self.metric}?labelSelector={quote(f'app={target}', safe='')}"

    def registration(self) -> list[dict[str, Any]]:
        """What an adapter's installation applies: its Service, Endpoints and APIService.

        The Service has no selector and its Endpoints point at this loopback server, so the
        sandbox's aggregation layer can reach it (``appProtocol: http``: no certificate).
        """
        port_name = "api"
        return [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}},
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": self.service, "namespace": self.namespace},
                "spec": {
                    "ports": [
                        {
                            "name": port_name,
                            "port": 443,
                            "targetPort": self.port,
                            "protocol": "TCP",
                            "appProtocol": "http",
                        }
                    ]
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": self.service, "namespace": self.namespace},
                "subsets": [
                    {
                        "addresses": [{"ip": LOOPBACK}],
                        "ports": [
                            {
                                "name": port_name,
                                "port": self.port,
                                "protocol": "TCP",
                                "appProtocol": "http",
                            }
                        ],
                    }
                ],
            },
            self.apiservice(),
        ]

    def apiservice(self) -> dict[str, Any]:
        return {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": APISERVICE_NAME},
            "spec": {
                "group": GROUP,
                "version": VERSION,
                "service": {"namespace": self.namespace, "name": self.service, "port": 443},
                "insecureSkipTLSVerify": True,
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        }

    # -- the API -----------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(API_PATH, self._discovery)
        app.router.add_get(API_PATH + "/namespaces/{namespace}/{metric}", self._metric)

    def _authenticated(self, request: web.Request) -> bool:
        if request.headers.get("X-Remote-User"):
            return True
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    async def _discovery(self, request: web.Request) -> web.Response:
        await self.seen(request)
        if not self._authenticated(request):
            return status(401, "Unauthorized", "Unauthorized")
        failure = await self.failure_response()
        if failure is not None:
            return failure
        return web.json_response(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{GROUP}/{VERSION}",
                "resources": [
                    {
                        "name": self.metric,
                        "singularName": "",
                        "namespaced": True,
                        "kind": "ExternalMetricValueList",
                        "verbs": ["get"],
                    }
                ],
            }
        )

    async def _metric(self, request: web.Request) -> web.Response:
        await self.seen(request)
        if not self._authenticated(request):
            return status(401, "Unauthorized", "Unauthorized")
        failure = await self.failure_response()
        if failure is not None:
            return failure
        metric = request.match_info["metric"]
        namespace = request.match_info["namespace"]
        if metric != self.metric:
            return status(
                404,
                "NotFound",
                f'the server could not find the metric "{metric}" for namespace {namespace}',
            )
        try:
            requirements = parse_selector(request.query.get("labelSelector", ""))
        except ValueError as exc:
            return status(400, "BadRequest", str(exc))
        labels = self.metric_labels
        if labels is None:
            labels = {key: values[0] for key, op, values in requirements if op == "="}
        items: list[dict[str, Any]] = []
        if self.value is not None and matches(requirements, labels):
            first = self.quantity if self.quantity is not None else format_quantity(self.value)
            for value in (first, *self.more_values):
                items.append(
                    {
                        "metricName": metric,
                        "metricLabels": labels,
                        "timestamp": "2024-05-06T07:08:09Z",
                        "value": value,
                    }
                )
        return web.json_response(
            {
                "kind": "ExternalMetricValueList",
                "apiVersion": f"{GROUP}/{VERSION}",
                "metadata": {},
                "items": items,
            }
        )
