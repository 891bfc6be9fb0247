"""Read-build-write against the API server, the only I/O the routers do.

A router asks for one object to converge: the store reads it, hands it to a pure
builder and writes the result only when it differs (create when absent, replace
with the read ``resourceVersion`` otherwise). When someone else wrote the object in
between (409 Conflict, or AlreadyExists on create) the store reads it again and
rebuilds, so a write never clobbers a change it did not see. Timeouts belong to the
`Kube` adapter.
"""

from __future__ import annotations

from collections.abc import Callable

from canary.adapters.routers.builders._common import Obj, RouterError
from canary.ports import AlreadyExists, Conflict, Kube

Build = Callable[[Obj | None], Obj | None]


class ObjectStore:
    def __init__(self, kube: Kube, *, attempts: int = 3) -> None:
        self.kube = kube
        self.attempts = attempts

    async def get(self, api_version: str, kind: str, name: str, namespace: str) -> Obj | None:
        return await self.kube.get(api_version, kind, name, namespace)

    async def converge(
        self, api_version: str, kind: str, name: str, namespace: str, build: Build
    ) -> Obj | None:
        """Write ``build(current)`` unless it is None or equal to ``current``; return the result."""
        for _ in range(self.attempts):
            current = await self.kube.get(api_version, kind, name, namespace)
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
