"""``provider: skipper``: a weighted copy of the user's Ingress that Skipper prefers.

The user's Ingress (``spec.ingressRef``) is read and never written; the router keeps
``<ingress>-canary`` in step with it, with both ``<svc>-primary`` and
``<svc>-canary`` behind each of its paths and Skipper's ``zalando.org/backend-weights``
and ``zalando.org/skipper-predicate`` annotations. Objects: `builders.skipper`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.adapters.routers._store import ObjectStore, WeightedRouter
from canary.adapters.routers.builders import skipper
from canary.adapters.routers.builders._common import RouterError, is_owned_by
from canary.adapters.routers.builders.ingress import INGRESS_API_VERSION
from canary.core.observations import Routes
from canary.model.canary import Canary
from canary.ports import Kube, RequiredApi

INSTALL_INGRESS = "use Kubernetes 1.19 or later (Ingress in networking.k8s.io/v1)"


class SkipperRouter(WeightedRouter):
    def __init__(self, kube: Kube) -> None:
        self.store = ObjectStore(kube)

    def required_apis(self, canary: Canary) -> tuple[RequiredApi, ...]:
        return (RequiredApi(INGRESS_API_VERSION, "Ingress", INSTALL_INGRESS),)

    async def _original(self, canary: Canary) -> Mapping[str, Any]:
        ref = canary.spec.ingress_ref
        if ref is None or not ref.name:
            raise RouterError(
                "the skipper provider needs ingressRef (the Ingress to clone)",
                field="spec.ingressRef",
            )
        original = await self.store.get(INGRESS_API_VERSION, "Ingress", ref.name, canary.namespace)
        if original is None:
            raise RouterError(
                f'Ingress "{ref.name}" not found in namespace "{canary.namespace}"',
                field="spec.ingressRef.name",
            )
        return original

    async def _converge(self, canary: Canary, routes: Routes | None) -> None:
        original = await self._original(canary)
        await self.store.converge(
            INGRESS_API_VERSION,
            "Ingress",
            skipper.canary_ingress_name(canary),
            canary.namespace,
            lambda cur: skipper.canary_ingress(canary, original, cur, routes),
        )

    async def get_routes(self, canary: Canary) -> Routes | None:
        obj = await self.store.get(
            INGRESS_API_VERSION, "Ingress", skipper.canary_ingress_name(canary), canary.namespace
        )
        return skipper.read_routes(canary, obj)

    async def finalize(self, canary: Canary) -> None:
        """Delete our ``<ingress>-canary`` at once, as Flagger does, so the original Ingress
        routes alone again (waiting for garbage collection would keep the copy, which
        outranks it, in charge). A copy that existed before the takeover is restored."""
        if canary.spec.ingress_ref is None:
            return
        name = skipper.canary_ingress_name(canary)
        current = await self.store.get(INGRESS_API_VERSION, "Ingress", name, canary.namespace)
        if current is None:
            return
        if is_owned_by(current, canary):
            await self.store.kube.delete(INGRESS_API_VERSION, "Ingress", name, canary.namespace)
        else:
            await self.store.restore(INGRESS_API_VERSION, "Ingress", name, canary.namespace, canary)
