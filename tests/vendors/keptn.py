"""Keptn's KeptnMetric, as a cluster with Keptn's metrics operator holds it.

Keptn has no address to stand in for: its metrics operator runs each ``KeptnMetric``'s query
against a Keptn metrics provider every ``spec.fetchIntervalSeconds`` and writes the answer
into the object's status (``value``, a decimal string; ``rawValue``, the provider's bytes;
``lastUpdated``; ``errMsg`` when the query failed). So this module has no server: it holds
the manifests a user applies (Keptn's ``metrics.keptn.sh`` CRD, served as ``v1beta1`` — the
version Flagger reads — and ``v1``, the storage version; a KeptnMetric) and plays the
operator's part by writing the status (:meth:`KeptnMetrics.status_patch`).

What a test or the end-to-end test calls:

* ``keptn = KeptnMetrics()``; apply :meth:`KeptnMetrics.manifests` (``namespace``: where the
  KeptnMetric lives, usually the canary's) to the sandbox;
* :meth:`KeptnMetrics.metric_template` (``type: keptn``, no address, no Secret; the query is
  Flagger's ``keptnmetric/<namespace>/<name>``);
* set the value: ``await keptn.set_value(kube, namespace, 0.5)`` with a
  :class:`canary.adapters.kube.KubeClient` (or anything with its ``patch``), or apply
  ``keptn.status_patch(0.5)`` as a merge patch of the ``status`` subresource yourself;
  ``set_value(..., None)`` removes the value (not fetched yet), ``set_error`` writes errMsg.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any, Protocol

GROUP = "metrics.keptn.sh"
FLAGGER_VERSION = "v1beta1"
STORAGE_VERSION = "v1"
METRIC_NAME = "response-time"

_STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "value": {"type": "string"},
        "rawValue": {"type": "string", "format": "byte"},
        "errMsg": {"type": "string"},
        "lastUpdated": {"type": "string", "format": "date-time"},
        "intervalResults": {"type": "array", "items": {"type": "object"}},
    },
}
_SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["provider", "query"],
    "properties": {
        "provider": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}},
        },
        "query": {"type": "string"},
        "fetchIntervalSeconds": {"type": "integer"},
        "range": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


class Patcher(Protocol):
    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Any,
        *,
        patch_type: Any = "merge",
        subresource: str | None = None,
    ) -> Any: ...


def crd() -> dict[str, Any]:
    """Keptn's KeptnMetric CustomResourceDefinition (the fields the operator and Flagger use)."""

    def version(name: str, storage: bool) -> dict[str, Any]:
        return {
            "name": name,
            "served": True,
            "storage": storage,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Provider", "type": "string", "jsonPath": ".spec.provider.name"},
                {"name": "Query", "type": "string", "jsonPath": ".spec.query"},
                {"name": "Value", "type": "string", "jsonPath": ".status.value"},
            ],
            "schema": {
                "openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": _SPEC_SCHEMA, "status": _STATUS_SCHEMA},
                }
            },
        }

    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"keptnmetrics.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": "keptnmetrics",
                "singular": "keptnmetric",
                "kind": "KeptnMetric",
                "listKind": "KeptnMetricList",
            },
            "versions": [version(FLAGGER_VERSION, False), version(STORAGE_VERSION, True)],
        },
    }


class KeptnMetrics:
    """One KeptnMetric and what a user writes to check it; see the module docstring."""

    type = "keptn"

    def __init__(self, name: str = METRIC_NAME) -> None:
        self.name = name

    # -- what a user writes (docs/gitbook/usage/metrics.md, "Keptn") ---------------

    def keptn_metric(self, namespace: str) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{STORAGE_VERSION}",
            "kind": "KeptnMetric",
            "metadata": {"name": self.name, "namespace": namespace},
            "spec": {
                "provider": {"name": "my-prometheus-keptn-provider"},
                "query": "histogram_quantile(0.8, sum by(le) "
                "(rate(http_server_request_latency_seconds_bucket{status_code='200'}[5m])))",
                "fetchIntervalSeconds": 10,
            },
        }

    def manifests(self, namespace: str) -> list[dict[str, Any]]:
        """The CRD (as Keptn's installation applies it) and the user's KeptnMetric."""
        return [crd(), self.keptn_metric(namespace)]

    def provider(self) -> dict[str, Any]:
        return {"type": "keptn"}

    def secret_data(self) -> dict[str, str] | None:
        return None

    def query(self, target: str, namespace: str) -> str:
        return f"keptnmetric/{namespace}/{self.name}"

    def metric_template(self, name: str, namespace: str, target: str) -> dict[str, Any]:
        """The MetricTemplate: it reads the KeptnMetric in ``namespace``."""
        return {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"provider": self.provider(), "query": self.query(target, namespace)},
        }

    # -- what Keptn's metrics operator writes ---------------------------------------

    @staticmethod
    def status_patch(value: float | str | None) -> dict[str, Any]:
        """The merge patch of ``status`` after a fetch (None: the value removed)."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if value is None:
            return {"status": {"value": None, "rawValue": None, "errMsg": None}}
        text = value if isinstance(value, str) else repr(float(value))
        raw = base64.b64encode(text.encode()).decode()
        return {"status": {"value": text, "rawValue": raw, "lastUpdated": now, "errMsg": None}}

    @staticmethod
    def error_patch(message: str) -> dict[str, Any]:
        """The status after a failed fetch: no value, Keptn's error message."""
        return {"status": {"value": None, "errMsg": message}}

    async def set_value(self, kube: Patcher, namespace: str, value: float | str | None) -> None:
        await self._patch(kube, namespace, self.status_patch(value))

    async def set_error(self, kube: Patcher, namespace: str, message: str) -> None:
        await self._patch(kube, namespace, self.error_patch(message))

    async def _patch(self, kube: Patcher, namespace: str, patch: dict[str, Any]) -> None:
        await kube.patch(
            f"{GROUP}/{STORAGE_VERSION}",
            "KeptnMetric",
            self.name,
            namespace,
            patch,
            patch_type="merge",
            subresource="status",
        )
