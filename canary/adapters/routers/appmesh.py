"""``appmesh`` (v1beta1) and ``appmesh:v1beta2``: App Mesh virtual nodes, routers, services.

The objects are described in `builders.appmesh`. ``reconcile`` converges the virtual
nodes first (a route may only name nodes that exist), then the ``-canary`` router and
service, then the apex ones; the weights live in the apex router's first route
(v1beta1: VirtualService ``<svc>.<ns>``; v1beta2: VirtualRouter ``<svc>``). In v1beta2
the nodes select pods by the target's selector label, read from the target workload.
``finalize`` restores any of these objects that existed before the takeover.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from canary.adapters.routers._store import ObjectStore, WeightedRouter
from canary.adapters.routers.builders import appmesh
from canary.adapters.routers.builders.services import DEFAULT_SELECTOR_LABELS, selector_label
from canary.core.observations import Routes
from canary.model.canary import Canary
from canary.ports import Kube, RequiredApi

INSTALL_APPMESH = "install the AWS App Mesh controller (its CRDs in appmesh.k8s.aws)"
# The -canary router first: the apex's routes are what traffic follows.
ROUTER_ROLES: tuple[Literal["apex", "canary"], ...] = ("canary", "apex")


class AppMeshRouter(WeightedRouter):
    def __init__(
        self,
        kube: Kube,
        *,
        version: str = "v1beta2",
        selector_labels: Sequence[str] = DEFAULT_SELECTOR_LABELS,
    ) -> None:
        self.store = ObjectStore(kube)
        self.api_version = appmesh.api_version(version)
        self.version = version
        self.selector_labels = tuple(selector_labels)

    def required_apis(self, canary: Canary) -> tuple[RequiredApi, ...]:
        kinds = ["VirtualNode", "VirtualService"]
        if self.version == "v1beta2":
            kinds.insert(1, "VirtualRouter")
        return tuple(RequiredApi(self.api_version, kind, INSTALL_APPMESH) for kind in kinds)

    # ------------------------------------------------------------------ objects

    def _node_roles(self) -> tuple[appmesh.Role, ...]:
        return ("apex", "primary", "canary") if self.version == "v1beta1" else ("primary", "canary")

    def _routing_object(self, canary: Canary) -> tuple[str, str]:
        """(kind, name) of the object that holds the weights."""
        if self.version == "v1beta1":
            return "VirtualService", appmesh.virtual_service_name(canary, "apex", self.version)
        return "VirtualRouter", appmesh.router_name(canary, "apex")

    async def _selector(self, canary: Canary) -> tuple[str, str]:
        ref = canary.spec.target_ref
        target = await self.store.get(
            ref.api_version or "apps/v1", ref.kind, ref.name, canary.namespace
        )
        if target is None:  # no target to read: Flagger's default label and the target's name
            return self.selector_labels[0], ref.name
        return selector_label(target, self.selector_labels)

    async def reconcile(self, canary: Canary) -> None:
        selector = await self._selector(canary) if self.version == "v1beta2" else ("app", "")
        for role in self._node_roles():
            await self._node(canary, role, selector)
        for router_role in ROUTER_ROLES:
            await self._router(canary, router_role, None)

    async def _node(self, canary: Canary, role: appmesh.Role, selector: tuple[str, str]) -> None:
        await self.store.converge(
            self.api_version,
            "VirtualNode",
            appmesh.node_name(canary, role),
            canary.namespace,
            lambda cur: appmesh.virtual_node(
                canary, role, cur, version=self.version, selector=selector
            ),
        )

    async def _router(
        self, canary: Canary, role: Literal["apex", "canary"], routes: Routes | None
    ) -> None:
        """The router of ``role`` and its VirtualService (one object in v1beta1)."""
        ns = canary.namespace
        if self.version == "v1beta2":
            await self.store.converge(
                self.api_version,
                "VirtualRouter",
                appmesh.router_name(canary, role),
                ns,
                lambda cur: appmesh.virtual_router(canary, role, cur, routes, version=self.version),
            )
        await self.store.converge(
            self.api_version,
            "VirtualService",
            appmesh.virtual_service_name(canary, role, self.version),
            ns,
            lambda cur: appmesh.virtual_service(canary, role, cur, routes, version=self.version),
        )

    async def _converge(self, canary: Canary, routes: Routes | None) -> None:
        """Rebuild the apex router, where the weights live."""
        await self._router(canary, "apex", routes)

    async def get_routes(self, canary: Canary) -> Routes | None:
        kind, name = self._routing_object(canary)
        obj = await self.store.get(self.api_version, kind, name, canary.namespace)
        return appmesh.read_routes(canary, obj, version=self.version)

    async def finalize(self, canary: Canary) -> None:
        """Restore any virtual node, router or service that existed before the takeover."""
        ns = canary.namespace
        objects = [("VirtualNode", appmesh.node_name(canary, r)) for r in self._node_roles()]
        for role in ROUTER_ROLES:
            objects.append(
                ("VirtualService", appmesh.virtual_service_name(canary, role, self.version))
            )
            if self.version == "v1beta2":
                objects.append(("VirtualRouter", appmesh.router_name(canary, role)))
        for kind, name in objects:
            await self.store.restore(self.api_version, kind, name, ns, canary)
