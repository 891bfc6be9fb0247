"""``gatewayapi:v1``, ``gatewayapi:v1beta1`` and ``linkerd``: one weighted HTTPRoute.

The HTTPRoute ``<svc>`` is described in `builders.gateway`. ``linkerd`` is the same
router in mesh mode (GAMMA): unless ``service.gatewayRefs`` says otherwise, the
route's parent is the apex Service (``group: ""``, ``kind: Service``), and
mirroring is refused because Linkerd does not implement it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.adapters.routers._store import ObjectStore, WeightedRouter
from canary.adapters.routers.builders import gateway
from canary.adapters.routers.builders.cookies import (
    CookieFactory,
    SessionCookies,
    random_cookie_value,
)
from canary.core.observations import Routes
from canary.model.canary import Canary
from canary.ports import Kube, RequiredApi

INSTALL_GATEWAY_API = "install the Gateway API CRDs (gateway.networking.k8s.io, standard channel)"
INSTALL_LINKERD = "install Linkerd with the Gateway API CRDs (gateway.networking.k8s.io)"


class GatewayAPIRouter(WeightedRouter):
    def __init__(
        self,
        kube: Kube,
        *,
        version: str = "v1",
        mesh: bool = False,
        new_cookie: CookieFactory = random_cookie_value,
    ) -> None:
        self.store = ObjectStore(kube)
        self.api_version = gateway.gateway_api_version(version)
        self.version = version
        self.mesh = mesh
        self.new_cookie = new_cookie

    def required_apis(self, canary: Canary) -> tuple[RequiredApi, ...]:
        install = INSTALL_LINKERD if self.mesh else INSTALL_GATEWAY_API
        return (RequiredApi(self.api_version, "HTTPRoute", install),)

    async def _converge(self, canary: Canary, routes: Routes | None) -> None:
        await self.store.converge(
            self.api_version,
            "HTTPRoute",
            canary.spec.service.name,
            canary.namespace,
            lambda cur: gateway.http_route(
                canary,
                cur,
                routes,
                version=self.version,
                mesh=self.mesh,
                new_cookie=self.new_cookie,
            ),
        )

    async def _route(self, canary: Canary) -> Mapping[str, Any] | None:
        """The HTTPRoute as it stands (None before the first pass made it)."""
        return await self.store.get(
            self.api_version, "HTTPRoute", canary.spec.service.name, canary.namespace
        )

    async def get_routes(self, canary: Canary) -> Routes | None:
        return gateway.read_routes(canary, await self._route(canary))

    async def get_session_cookies(self, canary: Canary) -> SessionCookies:
        return gateway.read_cookies(canary, await self._route(canary))

    async def finalize(self, canary: Canary) -> None:
        """Restore an HTTPRoute that existed before the takeover."""
        await self.store.restore(
            self.api_version, "HTTPRoute", canary.spec.service.name, canary.namespace, canary
        )
