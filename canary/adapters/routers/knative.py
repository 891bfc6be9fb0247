"""``knative``: the traffic split of the Knative Service that is the target.

There is no routing object of our own: the Knative Service named by ``targetRef``
carries the split in ``spec.traffic`` (see `builders.knative`), between the pinned
primary Revision and the latest one. Flagger's router leaves the Service alone on
deletion; with ``revertOnDeletion`` this one gives it Knative's default back (all
traffic to the latest Revision), so later revisions are not stuck at 0%.
"""

from __future__ import annotations

from canary.adapters.routers._store import ObjectStore, WeightedRouter
from canary.adapters.routers.builders import knative
from canary.core.observations import Routes
from canary.model.canary import Canary
from canary.ports import Kube, RequiredApi

INSTALL_KNATIVE = "install Knative Serving (its CRDs in serving.knative.dev)"


class KnativeRouter(WeightedRouter):
    def __init__(self, kube: Kube) -> None:
        self.store = ObjectStore(kube)

    def required_apis(self, canary: Canary) -> tuple[RequiredApi, ...]:
        return (
            RequiredApi(knative.KNATIVE_API_VERSION, "Service", INSTALL_KNATIVE),
            RequiredApi(knative.KNATIVE_API_VERSION, "Revision", INSTALL_KNATIVE),
        )

    async def _converge(self, canary: Canary, routes: Routes | None) -> None:
        await self.store.converge(
            knative.KNATIVE_API_VERSION,
            "Service",
            canary.spec.target_ref.name,
            canary.namespace,
            lambda cur: knative.knative_service(canary, cur, routes),
        )

    async def get_routes(self, canary: Canary) -> Routes | None:
        service = await self.store.get(
            knative.KNATIVE_API_VERSION, "Service", canary.spec.target_ref.name, canary.namespace
        )
        return knative.read_routes(canary, service)

    async def finalize(self, canary: Canary) -> None:
        """Knative's default traffic back: every request to the latest Revision."""
        await self.store.converge(
            knative.KNATIVE_API_VERSION,
            "Service",
            canary.spec.target_ref.name,
            canary.namespace,
            knative.restored_service,
        )
