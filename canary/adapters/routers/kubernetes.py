"""The Services every provider needs, and the ``kubernetes`` provider that needs nothing more.

`ServiceRouter` is Flagger's KubernetesRouter: ``initialize`` creates or updates
``<svc>-primary`` and ``<svc>-canary`` (done before the primary workload exists),
``reconcile_apex`` points ``<svc>`` at the primary pods (done once the primary is
ready, so clients never hit an empty Service), and ``finalize`` puts a taken-over
apex Service back on ``revertOnDeletion``. The controller calls it for every
provider, next to the provider's `Router`.

`KubernetesRouter` is the `Router` of ``provider: kubernetes``: plain Services cannot
split traffic, so the apex always selects the primary, the run is blue/green with
analysis traffic sent to ``<svc>-canary``, and the weights it reports are 100/0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from canary.adapters.routers._store import ObjectStore
from canary.adapters.routers.builders import services
from canary.adapters.routers.builders._common import RouterError, check_weights
from canary.adapters.routers.builders.services import DEFAULT_SELECTOR_LABELS
from canary.core.observations import Routes
from canary.model.canary import TOTAL_WEIGHT, Canary
from canary.ports import Kube, RequiredApi


class ServiceRouter:
    """Creates and updates ``<svc>``, ``<svc>-primary`` and ``<svc>-canary``."""

    def __init__(
        self, kube: Kube, *, selector_labels: Sequence[str] = DEFAULT_SELECTOR_LABELS
    ) -> None:
        self.store = ObjectStore(kube)
        self.selector_labels = tuple(selector_labels)

    async def initialize(self, canary: Canary, target: Mapping[str, Any]) -> None:
        """Create or update ``<svc>-canary`` (target pods) and ``<svc>-primary`` (primary pods)."""
        await self._converge(canary, target, "canary")
        await self._converge(canary, target, "primary")

    async def reconcile_apex(self, canary: Canary, target: Mapping[str, Any]) -> None:
        """Create ``<svc>``, or take it over, so that it selects the primary pods."""
        await self._converge(canary, target, "apex")

    async def _converge(
        self, canary: Canary, target: Mapping[str, Any], role: services.ServiceRole
    ) -> None:
        await self.store.converge(
            "v1",
            "Service",
            services.service_name(canary, role),
            canary.namespace,
            lambda cur: services.role_service(
                role, canary, target, cur, selector_labels=self.selector_labels
            ),
        )

    async def finalize(self, canary: Canary, target: Mapping[str, Any] | None = None) -> None:
        """Give a taken-over apex Service its own selector and ports back."""
        await self.store.converge(
            "v1",
            "Service",
            canary.spec.service.name,
            canary.namespace,
            lambda cur: (
                None
                if cur is None
                else services.restored_apex_service(
                    canary, cur, target, selector_labels=self.selector_labels
                )
            ),
        )


class KubernetesRouter:
    """``provider: kubernetes``: blue/green through Services only; nothing to shift."""

    def __init__(self, kube: Kube) -> None:
        self.store = ObjectStore(kube)

    def required_apis(self, canary: Canary) -> tuple[RequiredApi, ...]:
        return ()  # Services are in every cluster

    async def reconcile(self, canary: Canary) -> None:
        if canary.spec.analysis_or_default.match:
            raise RouterError(
                "A/B testing needs a router that can match requests; the kubernetes provider cannot",
                field="spec.analysis.match",
            )

    async def set_routes(
        self, canary: Canary, primary: int, canary_weight: int, mirrored: bool
    ) -> None:
        check_weights(primary, canary_weight)
        if mirrored:
            raise RouterError(
                "the kubernetes provider cannot mirror traffic", field="spec.analysis.mirror"
            )

    async def get_routes(self, canary: Canary) -> Routes | None:
        apex = await self.store.get("v1", "Service", canary.spec.service.name, canary.namespace)
        return None if apex is None else Routes(primary=TOTAL_WEIGHT, canary=0)

    async def finalize(self, canary: Canary) -> None:
        """Nothing: the apex Service is restored by `ServiceRouter.finalize`."""
