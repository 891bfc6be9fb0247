"""Core Service targets (``targetRef: {apiVersion: v1, kind: Service}``): "canary anything
behind a Service".

The workload behind the Service is someone else's (another cluster, an external
backend, pods this controller does not manage): what is released is the Service
itself. As Flagger's ServiceController (pkg/canary/service_controller.go):

* ``<target>-canary`` is a copy of the target Service, kept equal to it on every pass;
* ``<target>-primary`` is a copy made once, and overwritten with the target's spec on
  promotion (its cluster IP and identity kept, labels and annotations filtered by
  ``--include-label-prefix``);
* the target's revision is the digest of its ``spec``; both sides are always ready,
  and there is nothing to scale.

The copies are owned by the Canary (deleted with it) and lose ``kubectl``'s
last-applied annotation. A copy never takes the target's cluster IPs (assigned by the
API server) nor its node ports (allocated once per cluster). The traffic between the
two copies is the provider's router's: apex, ``-primary`` and ``-canary`` are the
names every router already uses, so ``spec.service.name`` must be the target's name.
The ``<svc>`` Services of Deployment targets (`routers.kubernetes.ServiceRouter`) are
not written for this kind: the target *is* the apex.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from canary.adapters.metadata import filter_metadata, is_controlled_by, owner_reference
from canary.adapters.primary import primary_name
from canary.adapters.workloads import WorkloadError, WorkloadOptions, conflicting_canaries
from canary.core.actions import ScaleMode
from canary.core.observations import PrimaryObservation, Readiness, TargetObservation
from canary.jsontree import json_copy
from canary.model.canary import Canary
from canary.ports import AlreadyExists, Conflict, Kube, NotFound, Obj

__all__ = ["ServiceTargetWorkloads", "copied_service", "promoted_service", "spec_hash"]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_SERVER_META = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields")
_ASSIGNED_IPS = ("clusterIP", "clusterIPs")


def canary_name(target_name: str) -> str:
    return f"{target_name}-canary"


def spec_hash(service: Mapping[str, Any]) -> str:
    """The target's revision: SHA-256 of the canonical JSON of its ``spec`` (16 hex)."""
    canonical = json.dumps(
        service.get("spec") or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _spec_for(target: Mapping[str, Any], current: Mapping[str, Any] | None) -> Obj:
    """The target's spec for a copy: the copy's own cluster IPs and node ports (none when
    it is new: the API server assigns them), and no ``healthCheckNodePort``."""
    spec = json_copy(dict(target.get("spec") or {}))
    now = dict((current or {}).get("spec") or {})
    for key in (*_ASSIGNED_IPS, "healthCheckNodePort"):
        spec.pop(key, None)
        if key in now:
            spec[key] = json_copy(now[key])
    if spec.get("clusterIP") is None and (target.get("spec") or {}).get("clusterIP") == "None":
        spec["clusterIP"] = "None"  # headless stays headless
    node_ports = {
        (p.get("name"), p.get("port"), p.get("protocol")): p.get("nodePort")
        for p in now.get("ports") or ()
        if isinstance(p, Mapping) and p.get("nodePort")
    }
    for port in spec.get("ports") or ():
        if isinstance(port, dict):
            port.pop("nodePort", None)
            kept = node_ports.get((port.get("name"), port.get("port"), port.get("protocol")))
            if kept:
                port["nodePort"] = kept
    return spec


def copied_service(
    canary: Canary, target: Mapping[str, Any], name: str, current: Mapping[str, Any] | None
) -> Obj:
    """Flagger's buildService: the target under another name, owned by the Canary,
    without kubectl's last-applied annotation."""
    tmeta = target.get("metadata") or {}
    meta: Obj = {
        "name": name,
        "namespace": canary.namespace,
        "ownerReferences": [owner_reference(canary)],
    }
    labels = dict(tmeta.get("labels") or {})
    annotations = {k: v for k, v in (tmeta.get("annotations") or {}).items() if k != LAST_APPLIED}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    if current is not None:
        cmeta = current.get("metadata") or {}
        meta.update({k: cmeta[k] for k in ("resourceVersion", "uid") if k in cmeta})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": _spec_for(target, current),
    }


def promoted_service(
    primary: Mapping[str, Any],
    target: Mapping[str, Any],
    *,
    include_label_prefixes: Collection[str] = ("*",),
) -> Obj:
    """Flagger's Promote: the primary with the target's spec (its own cluster IPs kept) and
    the target's labels and annotations, filtered by the include prefixes."""
    obj = json_copy(dict(primary))
    tmeta = target.get("metadata") or {}
    meta = obj.setdefault("metadata", {})
    for key, values in (
        ("labels", filter_metadata(tmeta.get("labels") or {}, include_label_prefixes)),
        ("annotations", filter_metadata(tmeta.get("annotations") or {}, include_label_prefixes)),
    ):
        if values:
            meta[key] = values
        else:
            meta.pop(key, None)
    obj["spec"] = _spec_for(target, primary)
    obj.pop("status", None)
    return obj


def _differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    cmeta, dmeta = current.get("metadata") or {}, desired.get("metadata") or {}
    return (
        (current.get("spec") or {}) != (desired.get("spec") or {})
        or (cmeta.get("labels") or {}) != (dmeta.get("labels") or {})
        or (cmeta.get("annotations") or {}) != (dmeta.get("annotations") or {})
    )


class ServiceTargetWorkloads:
    """The `canary.ports.Workloads` of a core Service target, through the `Kube` port."""

    def __init__(self, kube: Kube, options: WorkloadOptions | None = None) -> None:
        self.kube = kube
        self.options = options or WorkloadOptions()

    def _describe(self, canary: Canary, name: str | None = None) -> str:
        return f"Service {name or canary.spec.target_ref.name}.{canary.namespace}"

    async def _get(self, canary: Canary, name: str) -> Obj | None:
        return await self.kube.get("v1", "Service", name, canary.namespace)

    async def _require_target(self, canary: Canary) -> Obj:
        target = await self._get(canary, canary.spec.target_ref.name)
        if target is None:
            raise WorkloadError(f"{self._describe(canary)} not found")
        return target

    def _check_owner(self, canary: Canary, obj: Mapping[str, Any]) -> None:
        if not is_controlled_by(obj, canary):
            name = (obj.get("metadata") or {}).get("name")
            raise WorkloadError(
                f"Service {name}.{canary.namespace} is controlled by another owner; "
                f"is another Canary targeting {canary.spec.target_ref.name}?"
            )

    # ------------------------------------------------------------------ observe

    async def observe(
        self, canary: Canary, *, now: datetime | None = None, since: datetime | None = None
    ) -> tuple[TargetObservation | None, PrimaryObservation | None]:
        name = canary.spec.target_ref.name
        target, primary = await asyncio.gather(
            self.kube.read("v1", "Service", name, canary.namespace),
            self.kube.read("v1", "Service", primary_name(name), canary.namespace),
        )
        primary_obs = None if primary is None else PrimaryObservation(readiness=Readiness.ok())
        if target is None:
            return None, primary_obs
        return TargetObservation(template_hash=spec_hash(target), readiness=Readiness.ok()), (
            primary_obs
        )

    # ------------------------------------------------------------------ copies

    async def ensure_primary(self, canary: Canary) -> None:
        """Flagger's Initialize: ``-canary`` follows the target, ``-primary`` is made once."""
        target = await self._require_target(canary)
        name = canary.spec.target_ref.name
        await self._converge(canary, canary_name(name), target, update=True)
        await self._converge(canary, primary_name(name), target, update=False)

    async def _converge(self, canary: Canary, name: str, target: Obj, *, update: bool) -> None:
        for _ in range(max(1, self.options.conflict_retries)):
            current = await self._get(canary, name)
            if current is not None:
                self._check_owner(canary, current)
                if not update:
                    return
            desired = copied_service(canary, target, name, current)
            try:
                if current is None:
                    await self.kube.create(desired)
                elif _differs(current, desired):
                    await self.kube.replace(desired)
                return
            except (Conflict, AlreadyExists, NotFound):
                continue
        raise WorkloadError(f"{self._describe(canary, name)} kept changing while being written")

    async def promote(self, canary: Canary) -> None:
        """The primary copy takes the target's spec, labels and annotations."""
        name = primary_name(canary.spec.target_ref.name)
        for _ in range(max(1, self.options.conflict_retries)):
            target = await self._require_target(canary)
            primary = await self._get(canary, name)
            if primary is None:
                await self._converge(canary, name, target, update=False)
                return
            self._check_owner(canary, primary)
            desired = promoted_service(
                primary, target, include_label_prefixes=self.options.include_label_prefixes
            )
            if not _differs(primary, desired):
                return
            try:
                await self.kube.replace(desired)
                return
            except Conflict:
                continue
        raise WorkloadError(f"promoting {self._describe(canary)}: the primary kept changing")

    # ------------------------------------------------------------------ nothing to scale

    async def scale_target(self, canary: Canary, mode: ScaleMode) -> None:
        """Nothing: the pods behind the Service are not ours."""

    async def reconcile_primary_scaler(self, canary: Canary, init: bool) -> None:
        """Nothing: a Service has no autoscaler."""

    async def pause_target_scaler(self, canary: Canary, paused: bool) -> None:
        """Nothing to pause."""

    async def finalize(self, canary: Canary) -> None:
        """Nothing: the target was never changed; the copies go with the Canary."""

    async def find_conflicting_canaries(self, canary: Canary) -> list[str]:
        return await conflicting_canaries(self.kube, canary, "Service", "")
