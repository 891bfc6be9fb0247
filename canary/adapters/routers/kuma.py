"""``provider: kuma``: one cluster-scoped TrafficRoute with weighted destinations.

TrafficRoute ``<svc>`` is described in `builders.kuma`. It is cluster-scoped, so it is
read and written without a namespace. Kubernetes never garbage-collects a
cluster-scoped object through an owner reference to a namespaced Canary, so
``finalize`` deletes the TrafficRoute this Canary created (else it would keep
sending the apex's traffic to ``<svc>-primary`` after the revert) and restores one
that existed before the takeover.
"""

from __future__ import annotations

from canary.adapters.routers._store import ObjectStore, WeightedRouter
from canary.adapters.routers.builders import kuma
from canary.adapters.routers.builders._common import is_owned_by
from canary.core.observations import Routes
from canary.model.canary import Canary
from canary.ports import Kube, RequiredApi

INSTALL_KUMA = "install Kuma (its CRDs in kuma.io, TrafficRoute among them)"
CLUSTER_SCOPED = ""  # the namespace argument for a cluster-scoped object


class KumaRouter(WeightedRouter):
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.store = ObjectStore(kube)

    def required_apis(self, canary: Canary) -> tuple[RequiredApi, ...]:
        return (RequiredApi(kuma.KUMA_API_VERSION, "TrafficRoute", INSTALL_KUMA),)

    async def _converge(self, canary: Canary, routes: Routes | None) -> None:
        await self.store.converge(
            kuma.KUMA_API_VERSION,
            "TrafficRoute",
            canary.spec.service.name,
            CLUSTER_SCOPED,
            lambda cur: kuma.traffic_route(canary, cur, routes),
        )

    async def get_routes(self, canary: Canary) -> Routes | None:
        route = await self.store.get(
            kuma.KUMA_API_VERSION, "TrafficRoute", canary.spec.service.name, CLUSTER_SCOPED
        )
        return kuma.read_routes(canary, route)

    async def finalize(self, canary: Canary) -> None:
        """Delete the TrafficRoute this Canary created; restore one it took over."""
        name = canary.spec.service.name
        current = await self.store.get(kuma.KUMA_API_VERSION, "TrafficRoute", name, CLUSTER_SCOPED)
        if current is not None and is_owned_by(current, canary):
            await self.kube.delete(kuma.KUMA_API_VERSION, "TrafficRoute", name, CLUSTER_SCOPED)
            return
        await self.store.restore(
            kuma.KUMA_API_VERSION, "TrafficRoute", name, CLUSTER_SCOPED, canary
        )
