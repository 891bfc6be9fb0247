"""``provider: traefik``: a weighted TraefikService named after the apex Service.

TraefikService ``<svc>`` (``traefik.io/v1alpha1``) splits between ``<svc>-primary``
and ``<svc>-canary``; the object is described in `builders.traefik`. The user's
IngressRoute points at it and is left alone. A TraefikService ``<svc>`` that existed
before is taken over with its original recorded, and ``finalize`` restores it.
"""

from __future__ import annotations

from canary.adapters.routers._store import ObjectStore, WeightedRouter
from canary.adapters.routers.builders import traefik
from canary.core.observations import Routes
from canary.model.canary import Canary
from canary.ports import Kube, RequiredApi

INSTALL_TRAEFIK = (
    "install Traefik v2.10 or later with its CRDs (traefik.io: IngressRoute, TraefikService)"
)


class TraefikRouter(WeightedRouter):
    def __init__(self, kube: Kube) -> None:
        self.store = ObjectStore(kube)

    def required_apis(self, canary: Canary) -> tuple[RequiredApi, ...]:
        return (RequiredApi(traefik.TRAEFIK_API_VERSION, traefik.TRAEFIK_SERVICE, INSTALL_TRAEFIK),)

    async def _converge(self, canary: Canary, routes: Routes | None) -> None:
        await self.store.converge(
            traefik.TRAEFIK_API_VERSION,
            traefik.TRAEFIK_SERVICE,
            canary.spec.service.name,
            canary.namespace,
            lambda cur: traefik.traefik_service(canary, cur, routes),
        )

    async def get_routes(self, canary: Canary) -> Routes | None:
        obj = await self.store.get(
            traefik.TRAEFIK_API_VERSION,
            traefik.TRAEFIK_SERVICE,
            canary.spec.service.name,
            canary.namespace,
        )
        return traefik.read_routes(canary, obj)

    async def finalize(self, canary: Canary) -> None:
        """Restore a TraefikService that existed before the takeover (ours is collected)."""
        await self.store.restore(
            traefik.TRAEFIK_API_VERSION,
            traefik.TRAEFIK_SERVICE,
            canary.spec.service.name,
            canary.namespace,
            canary,
        )
