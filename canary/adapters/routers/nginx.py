"""``provider: nginx``: weights and A/B rules as annotations on a canary Ingress.

The user's Ingress (``spec.ingressRef``) is read and never written; the router keeps
its ``<ingress>-canary`` copy in step with it (later changes to the original's spec
are synced on every reconcile) and writes the routing annotations under a
configurable prefix (``--ingress-annotations-prefix``, default
``nginx.ingress.kubernetes.io``). Objects and annotations: `builders.ingress`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.adapters.routers._store import ObjectStore, WeightedRouter
from canary.adapters.routers.builders import ingress
from canary.adapters.routers.builders._common import (
    RouterError,
)
from canary.core.observations import Routes
from canary.model.canary import Canary
from canary.ports import Kube, RequiredApi

INSTALL_INGRESS = "use Kubernetes 1.19 or later (Ingress in networking.k8s.io/v1)"


class NginxRouter(WeightedRouter):
    def __init__(
        self, kube: Kube, *, annotations_prefix: str = ingress.DEFAULT_ANNOTATIONS_PREFIX
    ) -> None:
        self.store = ObjectStore(kube)
        self.prefix = annotations_prefix.rstrip("/")

    def required_apis(self, canary: Canary) -> tuple[RequiredApi, ...]:
        return (RequiredApi(ingress.ingress_api_version(canary), "Ingress", INSTALL_INGRESS),)

    async def _original(self, canary: Canary) -> Mapping[str, Any]:
        ref = canary.spec.ingress_ref
        if ref is None or not ref.name:
            raise RouterError(
                "the nginx provider needs ingressRef (the Ingress to clone)",
                field="spec.ingressRef",
            )
        original = await self.store.get(
            ingress.ingress_api_version(canary), "Ingress", ref.name, canary.namespace
        )
        if original is None:
            raise RouterError(
                f'Ingress "{ref.name}" not found in namespace "{canary.namespace}"',
                field="spec.ingressRef.name",
            )
        return original

    async def _converge(self, canary: Canary, routes: Routes | None) -> None:
        original = await self._original(canary)
        await self.store.converge(
            ingress.ingress_api_version(canary),
            "Ingress",
            ingress.canary_ingress_name(canary),
            canary.namespace,
            lambda cur: ingress.canary_ingress(canary, original, cur, routes, prefix=self.prefix),
        )

    async def get_routes(self, canary: Canary) -> Routes | None:
        obj = await self.store.get(
            ingress.ingress_api_version(canary),
            "Ingress",
            ingress.canary_ingress_name(canary),
            canary.namespace,
        )
        return None if obj is None else ingress.read_ingress_routes(canary, obj, self.prefix)

    async def finalize(self, canary: Canary) -> None:
        """Nothing to revert: the original Ingress was never written; our copy is owned and collected.

        A ``<ingress>-canary`` that existed before the controller took it over is restored.
        """
        if canary.spec.ingress_ref is None:
            return
        await self.store.restore(
            ingress.ingress_api_version(canary),
            "Ingress",
            ingress.canary_ingress_name(canary),
            canary.namespace,
            canary,
        )
