"""Read-build-write against the API server, the only I/O the routers do.

A router asks for one object to converge: the store reads it, hands it to a pure
builder and writes the result only when it differs (create when absent, replace
with the read ``resourceVersion`` otherwise). When someone else wrote the object in
between (409 Conflict, or AlreadyExists on create) the store reads it again and
rebuilds, so a write never clobbers a change it did not see. Timeouts belong to the
`Kube` adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from canary.adapters.routers.builders._common import (
    Obj,
    RouterError,
    check_weights,
    is_owned_by,
    restored_object,
)
from canary.core.observations import Routes
from canary.model.canary import Canary
from canary.ports import AlreadyExists, Conflict, Kube

Build = Callable[[Obj | None], Obj | None]


class ObjectStore:
    def __init__(self, kube: Kube, *, attempts: int = 3) -> None:
        self.kube = kube
        self.attempts = attempts

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str
    ) -> Mapping[str, Any] | None:
        """For reading only (`Kube.read`): routers read routes and never change what they read."""
        return await self.kube.read(api_version, kind, name, namespace)

    async def converge(
        self, api_version: str, kind: str, name: str, namespace: str, build: Build
    ) -> Obj | None:
        """Write ``build(current)`` unless it is None or equal to ``current``; return the result."""
        for _ in range(self.attempts):
            # Lent, not owned (`Kube.read`): builders copy whatever they keep of it, and the
            # router tests hand them frozen objects, so one that changes its input fails.
            current = cast("Obj | None", await self.kube.read(api_version, kind, name, namespace))
            desired = build(current)
            if desired is None or desired == current:
                return current
            try:
                if current is None:
                    return await self.kube.create(desired)
                return await self.kube.replace(desired)
            except (Conflict, AlreadyExists):
                continue
        raise RouterError(
            f"{kind} {namespace}/{name} kept changing while it was being written "
            f"({self.attempts} attempts); will retry on the next pass"
        )

    async def restore(
        self, api_version: str, kind: str, name: str, namespace: str, canary: Canary
    ) -> None:
        """Put back an object that existed before the Canary took it over, as it was; one
        the Canary created is left alone (it is owned, and collected with the Canary)."""
        await self.converge(
            api_version,
            kind,
            name,
            namespace,
            lambda cur: None if cur is None or is_owned_by(cur, canary) else restored_object(cur),
        )


class WeightedRouter:
    """The `Router` verbs of a router whose routes live in one routing object it rebuilds:
    ``reconcile`` rebuilds it keeping its routes, ``set_routes`` with new ones. A router
    says how in ``_converge``."""

    async def _converge(self, canary: Canary, routes: Routes | None) -> None:
        raise NotImplementedError

    async def reconcile(self, canary: Canary) -> None:
        await self._converge(canary, None)

    async def set_routes(
        self, canary: Canary, primary: int, canary_weight: int, mirrored: bool
    ) -> None:
        routes = check_weights(primary, canary_weight)
        await self._converge(canary, Routes(routes.primary, routes.canary, mirrored))
