"""KEDA ScaledObjects as ``spec.autoscalerRef``: the ``<so>-primary`` copy and the pause.

Why it exists: a target scaled by KEDA needs two things HPAs do not. The primary gets its
own ScaledObject (``<so>-primary``) — the target's, aimed at ``<target>-primary``, with
each trigger's ``query`` rewritten for the primary's pods. And the target's ScaledObject
must be paused whenever the target is meant to run no pods (after initialization, after a
promotion or a rollback): an active ScaledObject would scale the target straight back up.
KEDA pauses a ScaledObject at a fixed replica count with the annotation
``autoscaling.keda.sh/paused-replicas``; ``"0"`` holds the target at zero.

Flagger's semantics (pkg/canary/scaled_object_reconciler.go), followed here:

* ``<so>-primary`` copies the target's spec, with ``scaleTargetRef.name`` set to
  ``<target>-primary`` and ``primaryScalerReplicas`` overriding ``minReplicaCount`` and
  ``maxReplicaCount``; a named KEDA HPA (``advanced.horizontalPodAutoscalerConfig.name``)
  gets ``-primary`` too, so the two ScaledObjects never fight over one HPA.
* Queries: with ``primaryScalerQueries`` set, each trigger *named* in it gets that query
  (unnamed triggers keep theirs); without it, every trigger's ``metadata.query`` has
  ``<target>-canary`` and ``<target>`` replaced by ``<target>-primary``.
* Created when missing; its spec is brought up to date only outside initialization (the
  Promoting phase), never on every pass.
* Pause (``paused-replicas: "0"``) at initialization, after a promotion and after a
  rollback; resume (the annotation removed) when a run starts, before the target is
  scaled up, and when the Canary is deleted (``revertOnDeletion``).

Differences, each a fix: the pause annotations of the target are not copied onto the
primary's ScaledObject (a Canary created while its target was paused would otherwise give
the primary a ScaledObject that holds it at zero replicas), and the automatic query
rewrite leaves ``<target>-primary`` alone instead of making it ``<target>-primary-primary``.

The object building is pure (``primary_scaled_object``, ``pause_patch``, ...);
`ScaledObjects` does the reads and writes through the `Kube` port.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from canary.adapters.metadata import filter_metadata, owner_reference
from canary.errors import CanaryError
from canary.jsontree import json_copy
from canary.model.canary import AutoscalerRef, Canary
from canary.ports import AlreadyExists, Conflict, Kube, Obj

__all__ = [
    "KEDA_API_VERSION",
    "PAUSED_REPLICAS_ANNOTATION",
    "SCALED_OBJECT",
    "ScaledObjects",
    "is_scaled_object",
    "pause_patch",
    "primary_query",
    "primary_scaled_object",
    "primary_triggers",
    "scaled_object_differs",
    "scaling_bounds",
]

KEDA_API_VERSION = "keda.sh/v1alpha1"
SCALED_OBJECT = "ScaledObject"
PAUSED_REPLICAS_ANNOTATION = "autoscaling.keda.sh/paused-replicas"
PAUSED_ANNOTATION = "autoscaling.keda.sh/paused"
#: Never copied from the target's ScaledObject to the primary's.
PAUSE_ANNOTATIONS = frozenset({PAUSED_REPLICAS_ANNOTATION, PAUSED_ANNOTATION})


def is_scaled_object(ref: AutoscalerRef | None) -> bool:
    return ref is not None and ref.kind == SCALED_OBJECT


def _primary(name: str) -> str:
    return f"{name}-primary"


# ----------------------------------------------------------------------------- building


def primary_query(query: str, target: str) -> str:
    """Flagger's best-effort rewrite: ``<target>`` and ``<target>-canary`` become
    ``<target>-primary`` (``<target>-primary`` itself stays as it is)."""
    pattern = re.compile(rf"{re.escape(target)}(?:-canary|(?!-primary))")
    return pattern.sub(_primary(target), query)


def primary_triggers(triggers: list[Any], target: str, queries: Mapping[str, str]) -> list[Any]:
    """The triggers of ``<so>-primary`` (a new list; the input is left as it was)."""
    result = json_copy(triggers)
    for trigger in result:
        if not isinstance(trigger, dict):
            continue
        metadata = trigger.get("metadata")
        if queries:
            name = trigger.get("name")
            if isinstance(name, str) and name in queries:
                if not isinstance(metadata, dict):
                    metadata = trigger["metadata"] = {}
                metadata["query"] = queries[name]
        elif isinstance(metadata, dict) and isinstance(metadata.get("query"), str):
            metadata["query"] = primary_query(metadata["query"], target)
    return result


def _primary_spec(source: Mapping[str, Any], canary: Canary, ref: AutoscalerRef) -> dict[str, Any]:
    spec: dict[str, Any] = json_copy(dict(source))
    target_ref = dict(spec.get("scaleTargetRef") or {})
    target_ref["name"] = _primary(canary.spec.target_ref.name)
    spec["scaleTargetRef"] = target_ref
    spec["triggers"] = primary_triggers(
        list(spec.get("triggers") or []), canary.spec.target_ref.name, ref.primary_scaler_queries
    )
    hpa = (spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}
    if hpa.get("name"):
        hpa["name"] = _primary(str(hpa["name"]))
    if ref.primary_min_replicas is not None:
        spec["minReplicaCount"] = ref.primary_min_replicas
    if ref.primary_max_replicas is not None:
        spec["maxReplicaCount"] = ref.primary_max_replicas
    return spec


def primary_scaled_object(
    target_so: Mapping[str, Any],
    canary: Canary,
    ref: AutoscalerRef,
    *,
    include_label_prefixes: Collection[str] = ("*",),
) -> dict[str, Any]:
    """The ``<so>-primary`` ScaledObject: the target's, aimed at ``<target>-primary``
    (module docstring for the rules), owned by the Canary."""
    meta = target_so.get("metadata") or {}
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in PAUSE_ANNOTATIONS
    }
    metadata: dict[str, Any] = {
        "name": _primary(ref.name),
        "namespace": meta.get("namespace") or canary.namespace,
        "labels": filter_metadata(meta.get("labels") or {}, include_label_prefixes),
        "ownerReferences": [owner_reference(canary)],
    }
    kept = filter_metadata(annotations, include_label_prefixes)
    if kept:
        metadata["annotations"] = kept
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": SCALED_OBJECT,
        "metadata": metadata,
        "spec": _primary_spec(target_so.get("spec") or {}, canary, ref),
    }


def scaled_object_differs(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether ``<so>-primary`` must be updated: its spec differs (metadata is left alone
    after creation, as Flagger does)."""
    return (existing.get("spec") or {}) != (desired.get("spec") or {})


def pause_patch(scaled_object: Mapping[str, Any], paused: bool) -> dict[str, Any] | None:
    """The merge patch that pauses (``paused-replicas: "0"``) or resumes (annotation
    removed) the target's ScaledObject; None when it already is as asked."""
    annotations = (scaled_object.get("metadata") or {}).get("annotations") or {}
    current = annotations.get(PAUSED_REPLICAS_ANNOTATION)
    if paused:
        if current == "0":
            return None
        return {"metadata": {"annotations": {PAUSED_REPLICAS_ANNOTATION: "0"}}}
    if current is None:
        return None
    return {"metadata": {"annotations": {PAUSED_REPLICAS_ANNOTATION: None}}}


def scaling_bounds(scaled_object: Mapping[str, Any]) -> dict[str, Any]:
    """The ScaledObject's replica bounds in an HPA's words (``spec.minReplicas``), for the
    scale-up rules shared with HPAs (its min replicas if above one, else 1)."""
    spec = scaled_object.get("spec") or {}
    bounds: dict[str, Any] = {}
    if spec.get("minReplicaCount") is not None:
        bounds["minReplicas"] = spec["minReplicaCount"]
    if spec.get("maxReplicaCount") is not None:
        bounds["maxReplicas"] = spec["maxReplicaCount"]
    return {"spec": bounds}


# ----------------------------------------------------------------------------- I/O


class ScaledObjects:
    """The KEDA part of the workload adapter: reads and writes through the `Kube` port.

    ``error`` builds the adapter's error type (`WorkloadError`) and ``check_owner`` refuses
    a ``<so>-primary`` that another Canary controls; both come from the workload adapter
    so the messages and errors are the same as for HPAs.
    """

    def __init__(
        self,
        kube: Kube,
        *,
        error: Callable[[str], CanaryError],
        check_owner: Callable[[Canary, Obj], None],
        include_label_prefixes: Collection[str] = ("*",),
        conflict_retries: int = 5,
    ) -> None:
        self.kube = kube
        self.error = error
        self.check_owner = check_owner
        self.include_label_prefixes = include_label_prefixes
        self.conflict_retries = max(1, conflict_retries)

    async def get_target(self, canary: Canary) -> Obj | None:
        ref = canary.spec.autoscaler_ref
        if ref is None:
            return None
        return await self.kube.get(KEDA_API_VERSION, SCALED_OBJECT, ref.name, canary.namespace)

    async def _require_target(self, canary: Canary) -> Obj:
        source = await self.get_target(canary)
        if source is None:
            ref = canary.spec.autoscaler_ref
            name = ref.name if ref is not None else "?"
            raise self.error(f"ScaledObject {name}.{canary.namespace} not found")
        return source

    async def reconcile_primary(self, canary: Canary, init: bool) -> None:
        """Create ``<so>-primary`` if missing; outside initialization also bring its spec
        up to date."""
        ref = canary.spec.autoscaler_ref
        if ref is None:
            return
        source = await self._require_target(canary)
        desired = primary_scaled_object(
            source, canary, ref, include_label_prefixes=self.include_label_prefixes
        )
        name = desired["metadata"]["name"]
        for _ in range(self.conflict_retries):
            existing = await self.kube.get(KEDA_API_VERSION, SCALED_OBJECT, name, canary.namespace)
            if existing is None:
                try:
                    await self.kube.create(desired)
                    return
                except AlreadyExists:
                    continue
            self.check_owner(canary, existing)
            if init or not scaled_object_differs(existing, desired):
                return
            try:
                await self.kube.replace({**existing, "spec": desired["spec"]})
                return
            except Conflict:
                continue
        raise self.error(f"ScaledObject {name}.{canary.namespace} kept changing")

    async def pause_target(self, canary: Canary, paused: bool, *, missing_ok: bool = False) -> None:
        """Pause (``paused-replicas: "0"``) or resume the target's ScaledObject; nothing is
        written when it already is as asked."""
        source = await self.get_target(canary) if missing_ok else await self._require_target(canary)
        if source is None:
            return
        patch = pause_patch(source, paused)
        if patch is None:
            return
        meta = source.get("metadata") or {}
        await self.kube.patch(
            KEDA_API_VERSION, SCALED_OBJECT, str(meta.get("name")), canary.namespace, patch
        )
