"""The workload adapter for each kind of target, chosen by ``spec.targetRef``.

As Flagger's canary factory (``Controller(kind)``), the controller holds one
`TargetWorkloads` and one `TargetServices`, and each call goes to the implementation
for the Canary's target:

=========================================  =================================  ==============
targetRef                                  workloads                          Services
=========================================  =================================  ==============
``apps/v1`` Deployment, DaemonSet          `workloads.KubeWorkloads`          `ServiceRouter`
``v1`` Service                             `service_workloads` (copies)       none
``serving.knative.dev/v1`` Service         `knative_workloads` (Revisions)    none
=========================================  =================================  ==============

A Service target *is* the apex and its copies are ``-primary``/``-canary`` (Flagger's
KubernetesNoopRouter); a Knative Service routes by Revision. Neither gets the
``<svc>``, ``<svc>-primary`` and ``<svc>-canary`` Services of a Deployment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from canary.adapters.knative_workloads import KnativeWorkloads
from canary.adapters.routers import DEFAULT_SELECTOR_LABELS, ServiceRouter
from canary.adapters.routers.builders.knative import is_knative_target
from canary.adapters.service_workloads import ServiceTargetWorkloads
from canary.adapters.workloads import KubeWorkloads, WorkloadOptions
from canary.core.actions import ScaleMode
from canary.core.observations import PrimaryObservation, TargetObservation
from canary.model.canary import Canary
from canary.ports import Kube, Services, Workloads

__all__ = ["TargetServices", "TargetWorkloads", "has_own_services"]


def has_own_services(canary: Canary) -> bool:
    """Whether the target needs the ``<svc>`` Services (a Deployment or a DaemonSet)."""
    return canary.spec.target_ref.kind != "Service"


class TargetWorkloads:
    """`canary.ports.Workloads` for every kind of target."""

    def __init__(self, kube: Kube, options: WorkloadOptions | None = None) -> None:
        self.pods = KubeWorkloads(kube, options)
        self.services = ServiceTargetWorkloads(kube, options)
        self.knative = KnativeWorkloads(kube)

    def of(self, canary: Canary) -> Workloads:
        if is_knative_target(canary):
            return self.knative
        if canary.spec.target_ref.kind == "Service":
            return self.services
        return self.pods

    async def observe(
        self, canary: Canary, *, now: datetime | None = None, since: datetime | None = None
    ) -> tuple[TargetObservation | None, PrimaryObservation | None]:
        return await self.of(canary).observe(canary, now=now, since=since)

    async def ensure_primary(self, canary: Canary) -> None:
        await self.of(canary).ensure_primary(canary)

    async def promote(self, canary: Canary) -> None:
        await self.of(canary).promote(canary)

    async def scale_target(self, canary: Canary, mode: ScaleMode) -> None:
        await self.of(canary).scale_target(canary, mode)

    async def reconcile_primary_scaler(self, canary: Canary, init: bool) -> None:
        await self.of(canary).reconcile_primary_scaler(canary, init)

    async def pause_target_scaler(self, canary: Canary, paused: bool) -> None:
        await self.of(canary).pause_target_scaler(canary, paused)

    async def finalize(self, canary: Canary) -> None:
        await self.of(canary).finalize(canary)

    async def find_conflicting_canaries(self, canary: Canary) -> list[str]:
        return await self.of(canary).find_conflicting_canaries(canary)


class TargetServices:
    """`canary.ports.Services`: the `ServiceRouter` for Deployments and DaemonSets, nothing
    for Service and Knative targets."""

    def __init__(
        self,
        kube: Kube,
        *,
        selector_labels: Sequence[str] = DEFAULT_SELECTOR_LABELS,
        inner: Services | None = None,
    ) -> None:
        self.inner: Services = inner or ServiceRouter(kube, selector_labels=selector_labels)

    async def initialize(self, canary: Canary, target: Mapping[str, Any]) -> None:
        if has_own_services(canary):
            await self.inner.initialize(canary, target)

    async def reconcile_apex(self, canary: Canary, target: Mapping[str, Any]) -> None:
        if has_own_services(canary):
            await self.inner.reconcile_apex(canary, target)

    async def finalize(self, canary: Canary, target: Mapping[str, Any] | None) -> None:
        if has_own_services(canary):
            await self.inner.finalize(canary, target)
