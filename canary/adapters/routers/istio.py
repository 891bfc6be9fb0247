"""``provider: istio``: DestinationRules and a VirtualService with weighted routes.

Writes DestinationRules ``<svc>-primary`` / ``<svc>-canary`` and VirtualService
``<svc>`` (``networking.istio.io/v1beta1`` as Flagger does, ``v1`` on request); the
objects and the routing states are described in `builders.istio`. A VirtualService
or DestinationRule that existed before is taken over with its original recorded,
and ``finalize`` restores it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.adapters.routers._store import ObjectStore, WeightedRouter
from canary.adapters.routers.builders import istio
from canary.adapters.routers.builders.cookies import (
    CookieFactory,
    SessionCookies,
    random_cookie_value,
)
from canary.core.observations import Routes
from canary.model.canary import Canary
from canary.ports import Kube, RequiredApi

INSTALL_ISTIO = "install Istio (its CRDs in networking.istio.io)"


class IstioRouter(WeightedRouter):
    def __init__(
        self,
        kube: Kube,
        *,
        version: str = istio.DEFAULT_ISTIO_VERSION,
        new_cookie: CookieFactory = random_cookie_value,
    ) -> None:
        self.store = ObjectStore(kube)
        self.api_version = istio.istio_api_version(version)
        self.version = version
        self.new_cookie = new_cookie

    def required_apis(self, canary: Canary) -> tuple[RequiredApi, ...]:
        return (
            RequiredApi(self.api_version, "VirtualService", INSTALL_ISTIO),
            RequiredApi(self.api_version, "DestinationRule", INSTALL_ISTIO),
        )

    async def reconcile(self, canary: Canary) -> None:
        service = canary.spec.service
        for name in (service.canary_name, service.primary_name):
            await self._destination_rule(canary, name)
        await self._converge(canary, None)

    async def _destination_rule(self, canary: Canary, name: str) -> None:
        await self.store.converge(
            self.api_version,
            "DestinationRule",
            name,
            canary.namespace,
            lambda cur: istio.destination_rule(canary, name, cur, version=self.version),
        )

    async def _converge(self, canary: Canary, routes: Routes | None) -> None:
        """Rebuild the VirtualService, where the routes live."""
        await self.store.converge(
            self.api_version,
            "VirtualService",
            canary.spec.service.name,
            canary.namespace,
            lambda cur: istio.virtual_service(
                canary, cur, routes, version=self.version, new_cookie=self.new_cookie
            ),
        )

    async def _virtual_service(self, canary: Canary) -> Mapping[str, Any] | None:
        """The VirtualService as it stands (None before the first pass made it)."""
        return await self.store.get(
            self.api_version, "VirtualService", canary.spec.service.name, canary.namespace
        )

    async def get_routes(self, canary: Canary) -> Routes | None:
        return istio.read_routes(canary, await self._virtual_service(canary))

    async def get_session_cookies(self, canary: Canary) -> SessionCookies:
        """The session-affinity cookies the VirtualService hands out now (for the status)."""
        return istio.read_cookies(canary, await self._virtual_service(canary))

    async def finalize(self, canary: Canary) -> None:
        """Restore a VirtualService or DestinationRules that existed before the takeover."""
        service = canary.spec.service
        for kind, name in (
            ("VirtualService", service.name),
            ("DestinationRule", service.primary_name),
            ("DestinationRule", service.canary_name),
        ):
            await self.store.restore(self.api_version, kind, name, canary.namespace, canary)
