"""Knative Service targets (``targetRef: {apiVersion: serving.knative.dev/v1, kind: Service}``).

Knative keeps every version of a Service as an immutable Revision, so there is no
``-primary`` workload to create or promote: as in Flagger (pkg/canary/knative_controller.go)
the *primary* is a Revision pinned by the Service's ``flagger.app/primary-revision``
annotation, and the *canary* is ``status.latestCreatedRevisionName``, the Revision
Knative created from the Service's current template.

* observe: the target's revision is the latest created Revision's name (a new
  template makes Knative create a new Revision, which starts a run); each side is
  ready when its Revision's ``Ready`` condition is True. The primary exists once the
  annotation does.
* ensure_primary: pin the latest created Revision as the primary (the annotation),
  once; the traffic split itself is the router's (`routers.knative`).
* promote: pin the latest created Revision again, and move the primary's traffic entry
  to it (the weights stay; the router then routes 100% to the primary, as Flagger).
* scaling: Knative scales Revisions itself (to zero too); nothing to do, as Flagger.
* finalize: the annotation goes (``revertOnDeletion``); the router gives the traffic back.

Readiness is read from the Revisions (serving.knative.dev/v1 ``Revision``), as Flagger
does; Knative's own controller creates them.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from canary.adapters.routers.builders.knative import (
    KNATIVE_API_VERSION,
    PRIMARY_REVISION_ANNOTATION,
    primary_revision,
)
from canary.adapters.workloads import WorkloadError, conflicting_canaries
from canary.core.actions import ScaleMode
from canary.core.observations import PrimaryObservation, Readiness, TargetObservation
from canary.model.canary import Canary
from canary.ports import Conflict, Kube, Obj

__all__ = ["KnativeWorkloads", "latest_revision", "revision_readiness"]

CONFLICT_RETRIES = 5


def latest_revision(service: Mapping[str, Any] | None) -> str:
    """``status.latestCreatedRevisionName`` ("" before Knative has created one)."""
    return str(((service or {}).get("status") or {}).get("latestCreatedRevisionName") or "")


def revision_readiness(name: str, revision: Mapping[str, Any] | None, namespace: str) -> Readiness:
    """A Revision is ready when its ``Ready`` condition is True (Knative's ``IsReady``).

    A Revision whose deployment missed its progress deadline will not become ready by
    waiting; anything else not ready yet may.
    """
    what = f"Knative Revision {name}.{namespace}"
    if revision is None:
        return Readiness.waiting(f"{what} not found")
    for condition in (revision.get("status") or {}).get("conditions") or ():
        if not isinstance(condition, Mapping) or condition.get("type") != "Ready":
            continue
        if condition.get("status") == "True":
            return Readiness.ok()
        reason = str(condition.get("reason") or "")
        message = str(condition.get("message") or "")
        detail = f": {reason}{' ' + message if message else ''}" if reason or message else ""
        if condition.get("status") == "False" and reason == "ProgressDeadlineExceeded":
            return Readiness.failed(f"{what} is not ready{detail}")
        return Readiness.waiting(f"{what} is not ready{detail}")
    return Readiness.waiting(f"{what} is not ready")


def _images(spec: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        str(c.get("image", "")) for c in spec.get("containers") or () if isinstance(c, Mapping)
    )


def _revision_id(name: str) -> str:
    """The target's revision for the status: a digest of the Revision's name (16 hex)."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def _repin_traffic(service: Obj, old: str, new: str) -> None:
    """Move the primary's pinned traffic entries from ``old`` to ``new`` (weights kept).

    Promotion makes the primary run the new version, as a ``-primary`` Deployment gets
    the new template while the weights stay; the router then routes all to the primary.
    Without this, between the two writes the old Revision would be neither side."""
    if not old:
        return
    for entry in (service.get("spec") or {}).get("traffic") or ():
        if isinstance(entry, dict) and entry.get("revisionName") == old:
            if not entry.get("latestRevision"):
                entry["revisionName"] = new


class KnativeWorkloads:
    """The `canary.ports.Workloads` of a Knative Service target, through the `Kube` port."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    async def _read_service(self, canary: Canary) -> Mapping[str, Any] | None:
        return await self.kube.read(
            KNATIVE_API_VERSION, "Service", canary.spec.target_ref.name, canary.namespace
        )

    async def _read_revision(self, canary: Canary, name: str) -> Mapping[str, Any] | None:
        if not name:
            return None
        return await self.kube.read(KNATIVE_API_VERSION, "Revision", name, canary.namespace)

    def _describe(self, canary: Canary) -> str:
        return f"Knative Service {canary.spec.target_ref.name}.{canary.namespace}"

    # ------------------------------------------------------------------ observe

    async def observe(
        self, canary: Canary, *, now: datetime | None = None, since: datetime | None = None
    ) -> tuple[TargetObservation | None, PrimaryObservation | None]:
        service = await self._read_service(canary)
        if service is None:
            return None, None
        latest, primary = latest_revision(service), primary_revision(service)
        canary_rev, primary_rev = await asyncio.gather(
            self._read_revision(canary, latest), self._read_revision(canary, primary)
        )
        template = ((service.get("spec") or {}).get("template") or {}).get("spec") or {}
        if latest:
            target_ready = revision_readiness(latest, canary_rev, canary.namespace)
        else:
            target_ready = Readiness.waiting(f"{self._describe(canary)} has no Revision yet")
        target = TargetObservation(
            template_hash=_revision_id(latest) if latest else "",
            readiness=target_ready,
            images=_images(template),
        )
        if not primary:
            return target, None
        primary_obs = PrimaryObservation(
            readiness=revision_readiness(primary, primary_rev, canary.namespace),
            images=_images((primary_rev or {}).get("spec") or {}),
        )
        return target, primary_obs

    # ------------------------------------------------------------------ pinning

    async def _pin(self, canary: Canary, *, only_if_missing: bool) -> None:
        """Set the primary-revision annotation to the latest created Revision."""
        for _ in range(CONFLICT_RETRIES):
            service = await self.kube.get(
                KNATIVE_API_VERSION, "Service", canary.spec.target_ref.name, canary.namespace
            )
            if service is None:
                raise WorkloadError(f"{self._describe(canary)} not found")
            latest = latest_revision(service)
            if not latest:
                raise WorkloadError(
                    f"{self._describe(canary)} has no Revision yet "
                    "(status.latestCreatedRevisionName is empty)"
                )
            current = primary_revision(service)
            if current == latest or (only_if_missing and current):
                return
            annotations = service.setdefault("metadata", {}).setdefault("annotations", {})
            annotations[PRIMARY_REVISION_ANNOTATION] = latest
            _repin_traffic(service, current, latest)
            try:
                await self.kube.replace(service)
                return
            except Conflict:
                continue
        raise WorkloadError(f"{self._describe(canary)} kept changing while it was being pinned")

    async def ensure_primary(self, canary: Canary) -> None:
        """Pin the latest created Revision as the primary, the first time only."""
        await self._pin(canary, only_if_missing=True)

    async def promote(self, canary: Canary) -> None:
        """The latest created Revision becomes the primary."""
        await self._pin(canary, only_if_missing=False)

    # ------------------------------------------------------------------ scaling

    async def scale_target(self, canary: Canary, mode: ScaleMode) -> None:
        """Nothing: Knative scales every Revision by its traffic (to zero too)."""

    async def reconcile_primary_scaler(self, canary: Canary, init: bool) -> None:
        """Nothing: a Knative Service has no autoscalerRef (the parser refuses one)."""

    async def pause_target_scaler(self, canary: Canary, paused: bool) -> None:
        """Nothing to pause."""

    async def finalize(self, canary: Canary) -> None:
        """Unpin: the primary-revision annotation goes."""
        for _ in range(CONFLICT_RETRIES):
            service: Obj | None = await self.kube.get(
                KNATIVE_API_VERSION, "Service", canary.spec.target_ref.name, canary.namespace
            )
            annotations = ((service or {}).get("metadata") or {}).get("annotations") or {}
            if service is None or PRIMARY_REVISION_ANNOTATION not in annotations:
                return
            del service["metadata"]["annotations"][PRIMARY_REVISION_ANNOTATION]
            try:
                await self.kube.replace(service)
                return
            except Conflict:
                continue
        raise WorkloadError(f"{self._describe(canary)} kept changing while it was being unpinned")

    async def find_conflicting_canaries(self, canary: Canary) -> list[str]:
        return await conflicting_canaries(self.kube, canary, "Service", "serving.knative.dev")
