"""``gatewayapi:v1``, ``gatewayapi:v1beta1`` and ``linkerd``: one weighted HTTPRoute.

The HTTPRoute ``<svc>`` is described in `builders.gateway`. ``linkerd`` is the same
router in mesh mode (GAMMA): unless ``service.gatewayRefs`` says otherwise, the
route's parent is the apex Service (``group: ""``, ``kind: Service``), and
mirroring is refused because Linkerd does not implement it.
"""

from __future__ import annotations

from canary.adapters.routers._store import ObjectStore
from canary.adapters.routers.builders import gateway
from canary.adapters.routers.builders._common import check_weights, is_owned_by, restored_object
from canary.adapters.routers.builders.cookies import (
    CookieFactory,
    SessionCookies,
    random_cookie_value,
)
from canary.core.observations import Routes
from canary.model.canary import Canary
from canary.ports import Kube


class GatewayAPIRouter:
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

    async def reconcile(self, canary: Canary) -> None:
        await self._converge(canary, None)

    async def set_routes(
        self, canary: Canary, primary: int, canary_weight: int, mirrored: bool
    ) -> None:
        routes = check_weights(primary, canary_weight)
        await self._converge(canary, Routes(routes.primary, routes.canary, mirrored))

    async def get_routes(self, canary: Canary) -> Routes | None:
        route = await self.store.get(
            self.api_version, "HTTPRoute", canary.spec.service.name, canary.namespace
        )
        return gateway.read_routes(canary, route)

    async def get_session_cookies(self, canary: Canary) -> SessionCookies:
        route = await self.store.get(
            self.api_version, "HTTPRoute", canary.spec.service.name, canary.namespace
        )
        return gateway.read_cookies(canary, route)

    async def finalize(self, canary: Canary) -> None:
        """Restore an HTTPRoute that existed before the takeover."""
        await self.store.converge(
            self.api_version,
            "HTTPRoute",
            canary.spec.service.name,
            canary.namespace,
            lambda cur: None if cur is None or is_owned_by(cur, canary) else restored_object(cur),
        )
