"""``smi:v1alpha1``, ``smi:v1alpha2``, ``smi:v1alpha3``: one TrafficSplit.

TrafficSplit ``<svc>`` is described in `builders.smi`; SMI has no header matching
and no mirroring, so A/B testing and mirroring are refused with a `RouterError`.
"""

from __future__ import annotations

from canary.adapters.routers._store import ObjectStore, WeightedRouter
from canary.adapters.routers.builders import smi
from canary.core.observations import Routes
from canary.model.canary import Canary
from canary.ports import Kube, RequiredApi

INSTALL_SMI = "install the SMI TrafficSplit CRD (split.smi-spec.io) of your service mesh"


class SmiRouter(WeightedRouter):
    def __init__(self, kube: Kube, *, provider: str = "smi:v1alpha3") -> None:
        self.store = ObjectStore(kube)
        self.provider = smi.SmiProvider.parse(provider)

    def required_apis(self, canary: Canary) -> tuple[RequiredApi, ...]:
        return (RequiredApi(self.provider.api_version, "TrafficSplit", INSTALL_SMI),)

    async def _converge(self, canary: Canary, routes: Routes | None) -> None:
        await self.store.converge(
            self.provider.api_version,
            "TrafficSplit",
            canary.spec.service.name,
            canary.namespace,
            lambda cur: smi.traffic_split(canary, cur, routes, provider=self.provider),
        )

    async def get_routes(self, canary: Canary) -> Routes | None:
        split = await self.store.get(
            self.provider.api_version, "TrafficSplit", canary.spec.service.name, canary.namespace
        )
        return smi.read_routes(canary, split)

    async def finalize(self, canary: Canary) -> None:
        """Restore a TrafficSplit that existed before the takeover."""
        await self.store.restore(
            self.provider.api_version,
            "TrafficSplit",
            canary.spec.service.name,
            canary.namespace,
            canary,
        )
