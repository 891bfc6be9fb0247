"""``provider: apisix``: weights on a high-priority clone of the user's ApisixRoute.

The user's ApisixRoute (``spec.routeRef``) is read and never written; the router
keeps ``<route>-<svc>-canary`` in step with it and writes the primary and canary
weights there. Objects: `builders.apisix`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.adapters.routers._store import ObjectStore, WeightedRouter
from canary.adapters.routers.builders import apisix
from canary.adapters.routers.builders._common import RouterError
from canary.core.observations import Routes
from canary.model.canary import Canary
from canary.ports import Kube, RequiredApi

INSTALL_APISIX = "install the APISIX ingress controller with its CRDs (apisix.apache.org/v2)"


class ApisixRouter(WeightedRouter):
    def __init__(self, kube: Kube) -> None:
        self.store = ObjectStore(kube)

    def required_apis(self, canary: Canary) -> tuple[RequiredApi, ...]:
        return (RequiredApi(apisix.APISIX_API_VERSION, apisix.APISIX_ROUTE, INSTALL_APISIX),)

    async def _original(self, canary: Canary) -> Mapping[str, Any]:
        name = apisix.route_name(canary)
        original = await self.store.get(
            apisix.APISIX_API_VERSION, apisix.APISIX_ROUTE, name, canary.namespace
        )
        if original is None:
            raise RouterError(
                f'ApisixRoute "{name}" not found in namespace "{canary.namespace}"',
                field="spec.routeRef.name",
            )
        return original

    async def _converge(self, canary: Canary, routes: Routes | None) -> None:
        original = await self._original(canary)
        await self.store.converge(
            apisix.APISIX_API_VERSION,
            apisix.APISIX_ROUTE,
            apisix.canary_route_name(canary),
            canary.namespace,
            lambda cur: apisix.canary_apisix_route(canary, original, cur, routes),
        )

    async def get_routes(self, canary: Canary) -> Routes | None:
        obj = await self.store.get(
            apisix.APISIX_API_VERSION,
            apisix.APISIX_ROUTE,
            apisix.canary_route_name(canary),
            canary.namespace,
        )
        return apisix.read_routes(canary, obj)

    async def finalize(self, canary: Canary) -> None:
        """Nothing of the user's was written; our clone is owned and collected with the
        Canary (as in Flagger). A clone name that existed before is restored."""
        if canary.spec.route_ref is None:
            return
        await self.store.restore(
            apisix.APISIX_API_VERSION,
            apisix.APISIX_ROUTE,
            apisix.canary_route_name(canary),
            canary.namespace,
            canary,
        )
