"""``provider: contour``: one HTTPProxy ``<svc>`` with the weighted services.

The object and its routing states are described in `builders.contour`. The user's
root HTTPProxy (the one with the ``virtualhost``) includes it; the controller never
touches the root. An HTTPProxy ``<svc>`` that existed before is taken over with its
original recorded, and ``finalize`` puts it back (Flagger leaves it rewritten).
"""

from __future__ import annotations

from canary.adapters.routers._store import ObjectStore, WeightedRouter
from canary.adapters.routers.builders import contour
from canary.core.observations import Routes
from canary.model.canary import Canary
from canary.ports import Kube, RequiredApi

INSTALL_CONTOUR = "install Contour (its HTTPProxy CRD in projectcontour.io)"


class ContourRouter(WeightedRouter):
    def __init__(self, kube: Kube, *, ingress_class: str | None = None) -> None:
        self.store = ObjectStore(kube)
        self.ingress_class = ingress_class or None

    def required_apis(self, canary: Canary) -> tuple[RequiredApi, ...]:
        return (RequiredApi(contour.CONTOUR_API_VERSION, "HTTPProxy", INSTALL_CONTOUR),)

    async def _converge(self, canary: Canary, routes: Routes | None) -> None:
        await self.store.converge(
            contour.CONTOUR_API_VERSION,
            "HTTPProxy",
            canary.spec.service.name,
            canary.namespace,
            lambda cur: contour.http_proxy(canary, cur, routes, ingress_class=self.ingress_class),
        )

    async def get_routes(self, canary: Canary) -> Routes | None:
        proxy = await self.store.get(
            contour.CONTOUR_API_VERSION, "HTTPProxy", canary.spec.service.name, canary.namespace
        )
        return contour.read_routes(canary, proxy)

    async def finalize(self, canary: Canary) -> None:
        """Restore an HTTPProxy that existed before the takeover."""
        await self.store.restore(
            contour.CONTOUR_API_VERSION,
            "HTTPProxy",
            canary.spec.service.name,
            canary.namespace,
            canary,
        )
