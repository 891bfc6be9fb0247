"""A small stand-in for Knative Serving's controller, for the sandbox (which has none).

It does, through the API like the real one, what ``provider: knative`` relies on:

* a Knative Service whose ``spec.template`` changed gets a new Revision
  ``<service>-<00001..>`` (the template's spec, labelled with its Service) and a
  Deployment ``<revision>-deployment`` whose pods carry ``serving.knative.dev/revision``
  (the sandbox's workload simulator runs them);
* a Revision is ``Ready`` once its Deployment has an available replica;
* the Service's status: ``observedGeneration``, ``latestCreatedRevisionName``,
  ``latestReadyRevisionName``, ``traffic`` (``spec.traffic`` with ``latestRevision``
  entries resolved to the latest ready Revision) and a ``Ready`` condition, written
  through the status subresource.

Traffic-only changes create no Revision, as in Knative.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from canary.adapters.kube import KubeClient
from canary.ports import AlreadyExists

API = "serving.knative.dev/v1"
REVISION_LABEL = "serving.knative.dev/revision"
SERVICE_LABEL = "serving.knative.dev/service"


def _ready(ok: bool) -> list[dict[str, Any]]:
    return [{"type": "Ready", "status": "True" if ok else "Unknown"}]


class KnativeServing:
    def __init__(self, kube: KubeClient, namespace: str, *, interval: float = 0.05) -> None:
        self.kube = kube
        self.namespace = namespace
        self.interval = interval
        self.templates: dict[str, list[tuple[str, Any]]] = {}  # service -> [(revision, template)]

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[KnativeServing]:
        task = asyncio.create_task(self._loop())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a passing API error: next round
                for ksvc in await self.kube.list(API, "Service", self.namespace):
                    await self._reconcile(ksvc)
            await asyncio.sleep(self.interval)

    async def _reconcile(self, ksvc: dict[str, Any]) -> None:
        name = ksvc["metadata"]["name"]
        template = (ksvc.get("spec") or {}).get("template") or {}
        revisions = self.templates.setdefault(name, [])
        if not revisions or revisions[-1][1] != template:
            revision = f"{name}-{len(revisions) + 1:05d}"
            await self._create_revision(ksvc, revision, template)
            revisions.append((revision, template))
        ready = [r for r, _ in revisions if await self._revision_ready(r)]
        latest_ready = ready[-1] if ready else ""
        traffic = []
        for entry in (ksvc.get("spec") or {}).get("traffic") or [
            {"latestRevision": True, "percent": 100}
        ]:
            follows = entry.get("latestRevision")
            if follows is None:
                follows = not entry.get("revisionName")
            traffic.append(
                {
                    "revisionName": latest_ready if follows else entry.get("revisionName"),
                    "latestRevision": bool(follows),
                    "percent": entry.get("percent", 0),
                }
            )
        status = {
            "observedGeneration": ksvc["metadata"].get("generation", 1),
            "latestCreatedRevisionName": revisions[-1][0],
            "latestReadyRevisionName": latest_ready,
            "traffic": traffic,
            "conditions": _ready(latest_ready == revisions[-1][0]),
        }
        if (ksvc.get("status") or {}) != status:
            await self.kube.patch(
                API, "Service", name, self.namespace, {"status": status}, subresource="status"
            )

    async def _create_revision(
        self, ksvc: dict[str, Any], revision: str, template: dict[str, Any]
    ) -> None:
        service = ksvc["metadata"]["name"]
        labels = {SERVICE_LABEL: service, REVISION_LABEL: revision}
        spec = template.get("spec") or {}
        with contextlib.suppress(AlreadyExists):
            await self.kube.create(
                {
                    "apiVersion": API,
                    "kind": "Revision",
                    "metadata": {"name": revision, "namespace": self.namespace, "labels": labels},
                    "spec": spec,
                }
            )
        with contextlib.suppress(AlreadyExists):
            await self.kube.create(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {
                        "name": f"{revision}-deployment",
                        "namespace": self.namespace,
                        "labels": labels,
                    },
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": {REVISION_LABEL: revision}},
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": {
                                "containers": [
                                    {"name": "user-container", **c}  # Knative's default name
                                    for c in spec.get("containers") or []
                                ]
                            },
                        },
                    },
                }
            )

    async def _revision_ready(self, revision: str) -> bool:
        deployment = await self.kube.get(
            "apps/v1", "Deployment", f"{revision}-deployment", self.namespace
        )
        ready = bool(((deployment or {}).get("status") or {}).get("availableReplicas"))
        current = await self.kube.get(API, "Revision", revision, self.namespace)
        if current is not None and (current.get("status") or {}).get("conditions") != _ready(ready):
            await self.kube.patch(
                API,
                "Revision",
                revision,
                self.namespace,
                {"status": {"observedGeneration": 1, "conditions": _ready(ready)}},
                subresource="status",
            )
        return ready
