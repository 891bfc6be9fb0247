"""``provider: gloo``: Gloo Edge Upstreams for both Services and a RouteTable ``<svc>``.

The objects and their routing states are described in `builders.gloo`. Every
reconcile first writes the Upstreams ``<ns>-<svc>-primaryupstream-<port>`` and
``<ns>-<svc>-canaryupstream-<port>`` (reading the Services for their selectors and,
with ``spec.upstreamRef``, the user's Upstream for its connection settings), then
the RouteTable, which the user's Gloo VirtualService delegates to. A RouteTable
``<svc>`` that existed before is taken over with its original recorded, and
``finalize`` puts it back (Flagger leaves it rewritten).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from canary.adapters.routers._store import ObjectStore, WeightedRouter
from canary.adapters.routers.builders import gloo
from canary.adapters.routers.builders._common import RouterError
from canary.core.observations import Routes
from canary.model.canary import Canary
from canary.ports import Kube, RequiredApi

INSTALL_GLOO = "install Gloo Edge (its CRDs in gateway.solo.io and gloo.solo.io)"


class GlooRouter(WeightedRouter):
    def __init__(self, kube: Kube, *, include_label_prefixes: Collection[str] = ("*",)) -> None:
        self.store = ObjectStore(kube)
        self.include_label_prefixes = tuple(include_label_prefixes)

    def required_apis(self, canary: Canary) -> tuple[RequiredApi, ...]:
        return (
            RequiredApi(gloo.GATEWAY_API_VERSION, "RouteTable", INSTALL_GLOO),
            RequiredApi(gloo.GLOO_API_VERSION, "Upstream", INSTALL_GLOO),
        )

    async def reconcile(self, canary: Canary) -> None:
        config = await self._config_upstream(canary)
        sides: tuple[gloo.Which, ...] = ("primary", "canary")
        for which in sides:
            await self._upstream(canary, which, config)
        await self._converge(canary, None)

    async def _config_upstream(self, canary: Canary) -> Mapping[str, Any] | None:
        """The ``spec.upstreamRef`` Upstream; a `RouterError` naming the field when missing."""
        key = gloo.config_upstream_key(canary)
        if key is None:
            return None
        namespace, name = key
        found = await self.store.get(gloo.GLOO_API_VERSION, "Upstream", name, namespace)
        if found is None:
            raise RouterError(
                f"Upstream {namespace}/{name} not found (the Upstream whose settings the "
                "canary and primary Upstreams copy)",
                field="spec.upstreamRef",
            )
        return found

    async def _upstream(
        self, canary: Canary, which: gloo.Which, config: Mapping[str, Any] | None
    ) -> None:
        service = canary.spec.service
        service_name = service.primary_name if which == "primary" else service.canary_name
        svc = await self.store.get("v1", "Service", service_name, canary.namespace)
        await self.store.converge(
            gloo.GLOO_API_VERSION,
            "Upstream",
            gloo.upstream_name(canary, which),
            canary.namespace,
            lambda cur: gloo.upstream(
                canary,
                which,
                cur,
                service=svc,
                config=config,
                include_label_prefixes=self.include_label_prefixes,
            ),
        )

    async def _converge(self, canary: Canary, routes: Routes | None) -> None:
        """Rebuild the RouteTable, where the weights live."""
        await self.store.converge(
            gloo.GATEWAY_API_VERSION,
            "RouteTable",
            canary.spec.service.name,
            canary.namespace,
            lambda cur: gloo.route_table(canary, cur, routes),
        )

    async def get_routes(self, canary: Canary) -> Routes | None:
        table = await self.store.get(
            gloo.GATEWAY_API_VERSION, "RouteTable", canary.spec.service.name, canary.namespace
        )
        return gloo.read_routes(canary, table)

    async def finalize(self, canary: Canary) -> None:
        """Restore a RouteTable that existed before the takeover; the Upstreams the
        Canary owns go with it (owner references)."""
        await self.store.restore(
            gloo.GATEWAY_API_VERSION,
            "RouteTable",
            canary.spec.service.name,
            canary.namespace,
            canary,
        )
