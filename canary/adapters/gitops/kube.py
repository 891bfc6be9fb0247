"""Bridge from the controller's generic Kubernetes port to the reconciler's small apply port.

The GitSource reconciler is written against :class:`~canary.adapters.gitops.reconciler.KubeApply`
(apply, get, delete, list by :class:`ManifestRef`). The operator already has a Kubernetes adapter
implementing :class:`canary.ports.Kube`; :class:`PortKubeApply` adapts one to the other and
turns the port's :class:`~canary.ports.KubeError` family into :class:`KubeApplyError` carrying
the API server's message, which the reconciler puts into the ``ApplyFailed`` condition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from canary.adapters.gitops.manifests import ManifestRef
from canary.adapters.gitops.reconciler import KubeApplyError
from canary.ports import Invalid, Kube, KubeError

__all__ = ["PortKubeApply"]


def _error(exc: KubeError) -> KubeApplyError:
    message = str(exc)
    if isinstance(exc, Invalid) and exc.causes:
        details = "; ".join(
            f"{c.get('field', '')}: {c.get('message', '')}".strip(": ") for c in exc.causes
        )
        if details and details not in message:
            message = f"{message} ({details})"
    return KubeApplyError(message, status=exc.status, reason=type(exc).__name__)


class PortKubeApply:
    """:class:`KubeApply` over a :class:`canary.ports.Kube` implementation."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    async def apply(
        self, body: Mapping[str, Any], *, field_manager: str, force_conflicts: bool
    ) -> Mapping[str, Any]:
        try:
            return await self.kube.apply(
                dict(body), field_manager=field_manager, force=force_conflicts
            )
        except KubeError as exc:
            raise _error(exc) from None

    async def get(self, ref: ManifestRef) -> Mapping[str, Any] | None:
        try:
            return await self.kube.get(ref.api_version, ref.kind, ref.name, ref.namespace)
        except KubeError as exc:
            raise _error(exc) from None

    async def delete(self, ref: ManifestRef) -> bool:
        try:
            return await self.kube.delete(ref.api_version, ref.kind, ref.name, ref.namespace)
        except KubeError as exc:
            raise _error(exc) from None

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> Sequence[Mapping[str, Any]]:
        try:
            return await self.kube.list(api_version, kind, namespace)
        except KubeError as exc:
            raise _error(exc) from None
