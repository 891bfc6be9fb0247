"""The primary workload and its autoscaler, computed from the target: pure functions.

Why it exists: the controller never edits the user's workload except its size; the
stable version runs in a clone, ``<target>-primary``, which it creates and, on
promotion, overwrites with the target's pod template (reference/flagger.md 2.4, 2.8,
checklist 2-3, 11, 32). What exactly the clone looks like — selector and pod labels
``<label>: <value>-primary``, ConfigMap/Secret references renamed to their ``-primary``
copies, anti-affinity and topology-spread selectors pointed at the primary pods, the
fields copied on promotion, the replica count when scaling the target back up — is
decided here without I/O, so each rule has a table test. `canary.adapters.workloads`
reads the objects, calls these functions and writes the results.

The template hash (the revision of the target, compared with ``lastAppliedSpec`` and
``lastPromotedSpec``) is defined here as well: the first 16 hex characters of SHA-256
over the canonical JSON (sorted keys, no whitespace, UTF-8) of ``spec.template``, with
the controller's own scale-to-zero node selector removed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from functools import partial
from typing import Any, Literal

from canary.adapters.configtracker import ConfigRef, primary_config_name, rename_config_refs
from canary.adapters.metadata import filter_metadata, owner_reference
from canary.jsontree import json_copy
from canary.model.canary import AutoscalerRef, Canary

__all__ = [
    "DEFAULT_SELECTOR_LABELS",
    "REVISION_ANNOTATION",
    "SCALE_TO_ZERO_KEY",
    "SCALE_TO_ZERO_KEYS",
    "hpa_differs",
    "images",
    "primary_daemonset",
    "primary_deployment",
    "primary_hpa",
    "primary_name",
    "primary_pod_spec",
    "primary_workload",
    "promoted_primary",
    "revision_id",
    "scale_up_replicas",
    "selector_error",
    "selector_label",
    "template_hash",
]

DEFAULT_SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")
# On the primary's pod template: the revision it runs. Derived from the target's template
# hash and tracked config checksums, so repeating a promotion does not restart pods, and a
# config-only change (same template) still rolls the primary.
REVISION_ANNOTATION = "canary.gitops.dev/revision"
# A DaemonSet cannot be scaled; a node selector that matches no node empties it.
SCALE_TO_ZERO_KEY = "canary.gitops.dev/scale-to-zero"
SCALE_TO_ZERO_KEYS = (SCALE_TO_ZERO_KEY, "flagger.app/scale-to-zero")

_DEPLOYMENT_COPIED = (
    "progressDeadlineSeconds",
    "minReadySeconds",
    "revisionHistoryLimit",
    "strategy",
)
_DAEMONSET_COPIED = ("minReadySeconds", "revisionHistoryLimit", "updateStrategy")


def primary_name(target_name: str) -> str:
    return f"{target_name}-primary"


# ----------------------------------------------------------------------------- revision


def _without_scale_to_zero(template: Mapping[str, Any]) -> dict[str, Any]:
    result = json_copy(dict(template))
    node_selector = (result.get("spec") or {}).get("nodeSelector")
    if isinstance(node_selector, dict):
        for key in SCALE_TO_ZERO_KEYS:
            node_selector.pop(key, None)
        if not node_selector:
            del result["spec"]["nodeSelector"]
    return result


def template_hash(template: Mapping[str, Any]) -> str:
    """The target's revision: SHA-256 of the canonical JSON of ``spec.template`` (16 hex).

    Stable across key order and processes; any change of the template (image, env, a
    pod annotation such as ``kubectl rollout restart``'s) changes it; the controller's
    scale-to-zero node selector does not.
    """
    canonical = json.dumps(
        _without_scale_to_zero(template), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def revision_id(template_digest: str, tracked_configs: Mapping[str, str]) -> str:
    """The value of `REVISION_ANNOTATION`: template hash plus config checksums, hashed."""
    parts = [template_digest, *(f"{k}={v}" for k, v in sorted(tracked_configs.items()))]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def images(workload: Mapping[str, Any]) -> tuple[str, ...]:
    """The container images of a workload's pod template, in order."""
    pod_spec = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
    return tuple(
        str(c.get("image"))
        for c in pod_spec.get("containers") or ()
        if isinstance(c, Mapping) and c.get("image")
    )


# ----------------------------------------------------------------------------- selector


def selector_label(
    workload: Mapping[str, Any], labels: Collection[str] = DEFAULT_SELECTOR_LABELS
) -> tuple[str, str] | None:
    """The first of ``labels`` present in ``spec.selector.matchLabels``, with its value."""
    match = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    for label in labels:
        value = match.get(label)
        if isinstance(value, str) and value:
            return label, value
    return None


def selector_error(
    workload: Mapping[str, Any], labels: Collection[str] = DEFAULT_SELECTOR_LABELS
) -> str:
    """Empty if the workload has a usable selector label, else the message to report."""
    if selector_label(workload, labels) is not None:
        return ""
    meta = workload.get("metadata") or {}
    return (
        f"{workload.get('kind', 'workload')} {meta.get('name')}.{meta.get('namespace')} "
        f"spec.selector.matchLabels must contain one of: {', '.join(labels)}"
    )


# ----------------------------------------------------------------------------- pod spec


def _rewrite_selector(selector: Any, values: Mapping[str, str]) -> None:
    """Point a label selector that selects the target's pods at the primary's pods."""
    if not isinstance(selector, dict):
        return
    match = selector.get("matchLabels")
    if isinstance(match, dict):
        for key, value in list(match.items()):
            if value in values:
                match[key] = values[value]
    for expression in selector.get("matchExpressions") or ():
        if isinstance(expression, dict) and expression.get("operator") in ("In", "NotIn"):
            expression["values"] = [values.get(v, v) for v in expression.get("values") or ()]


def primary_pod_spec(
    pod_spec: Mapping[str, Any],
    *,
    label_value: str,
    target_name: str,
    renamed: Collection[ConfigRef] = (),
) -> dict[str, Any]:
    """The target's pod spec as the primary runs it.

    References to the tracked configs in ``renamed`` use their ``-primary`` copies;
    pod anti-affinity and topology-spread selectors with the target's label value (or
    name) select the primary's pods; the scale-to-zero node selector is dropped.
    """
    names = {(ref.kind, ref.name) for ref in renamed}
    spec = rename_config_refs(
        pod_spec,
        lambda kind, name: primary_config_name(name) if (kind, name) in names else None,
    )
    values = {label_value: f"{label_value}-primary", target_name: f"{target_name}-primary"}
    anti = (spec.get("affinity") or {}).get("podAntiAffinity")
    if isinstance(anti, dict):
        for term in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or ():
            if isinstance(term, dict):
                _rewrite_selector(term.get("labelSelector"), values)
        for weighted in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or ():
            if isinstance(weighted, dict) and isinstance(weighted.get("podAffinityTerm"), dict):
                _rewrite_selector(weighted["podAffinityTerm"].get("labelSelector"), values)
    for constraint in spec.get("topologySpreadConstraints") or ():
        if isinstance(constraint, dict):
            _rewrite_selector(constraint.get("labelSelector"), values)
    node_selector = spec.get("nodeSelector")
    if isinstance(node_selector, dict):
        for key in SCALE_TO_ZERO_KEYS:
            node_selector.pop(key, None)
        if not node_selector:
            del spec["nodeSelector"]
    return spec


def _primary_template(
    target: Mapping[str, Any],
    label: str,
    label_value: str,
    renamed: Collection[ConfigRef],
    revision: str,
) -> dict[str, Any]:
    template = (target.get("spec") or {}).get("template") or {}
    meta = template.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != label}
    labels[label] = f"{label_value}-primary"
    annotations = dict(meta.get("annotations") or {})
    annotations[REVISION_ANNOTATION] = revision
    return {
        # Other template metadata (e.g. the null creationTimestamp the API server writes) is
        # kept, so a promotion of an unchanged template compares equal and writes nothing.
        "metadata": {**json_copy(dict(meta)), "labels": labels, "annotations": annotations},
        "spec": primary_pod_spec(
            template.get("spec") or {},
            label_value=label_value,
            target_name=str((target.get("metadata") or {}).get("name", "")),
            renamed=renamed,
        ),
    }


def _object_labels(
    target: Mapping[str, Any], label: str, label_value: str, include_prefixes: Collection[str]
) -> dict[str, str]:
    labels = filter_metadata((target.get("metadata") or {}).get("labels") or {}, include_prefixes)
    labels[label] = f"{label_value}-primary"
    return labels


# ----------------------------------------------------------------------------- primary workloads


PrimaryKind = Literal["Deployment", "DaemonSet"]


def primary_workload(
    kind: PrimaryKind,
    target: Mapping[str, Any],
    canary: Canary,
    *,
    label: str,
    label_value: str,
    revision: str,
    renamed: Collection[ConfigRef] = (),
    include_label_prefixes: Collection[str] = ("*",),
) -> dict[str, Any]:
    """The ``<target>-primary`` Deployment or DaemonSet to create (owned by the Canary)."""
    tmeta = target.get("metadata") or {}
    tspec = target.get("spec") or {}
    spec: dict[str, Any] = {}
    if kind == "Deployment":  # a DaemonSet has no replicas: it runs on every node
        replicas = tspec.get("replicas")
        spec["replicas"] = replicas if isinstance(replicas, int) and replicas > 0 else 1
    spec["selector"] = {"matchLabels": {label: f"{label_value}-primary"}}
    spec["template"] = _primary_template(target, label, label_value, renamed, revision)
    for field in _DAEMONSET_COPIED if kind == "DaemonSet" else _DEPLOYMENT_COPIED:
        if tspec.get(field) is not None:
            spec[field] = json_copy(tspec[field])
    return {
        "apiVersion": target.get("apiVersion", "apps/v1"),
        "kind": kind,
        "metadata": {
            "name": primary_name(str(tmeta.get("name"))),
            "namespace": tmeta.get("namespace") or canary.namespace,
            "labels": _object_labels(target, label, label_value, include_label_prefixes),
            "annotations": filter_metadata(tmeta.get("annotations") or {}, include_label_prefixes),
            "ownerReferences": [owner_reference(canary)],
        },
        "spec": spec,
    }


primary_deployment = partial(primary_workload, "Deployment")
primary_daemonset = partial(primary_workload, "DaemonSet")


def promoted_primary(
    primary: Mapping[str, Any],
    target: Mapping[str, Any],
    *,
    label: str,
    label_value: str,
    revision: str,
    renamed: Collection[ConfigRef] = (),
    copy_replicas: bool = True,
    include_label_prefixes: Collection[str] = ("*",),
) -> dict[str, Any]:
    """The primary after promotion: the current object with the target's template.

    Copied: the pod template (labels ``<label>: <value>-primary``, ``-primary`` config
    references, the revision annotation), the rollout fields (Deployment:
    progressDeadlineSeconds, minReadySeconds, revisionHistoryLimit, strategy; DaemonSet:
    minReadySeconds, revisionHistoryLimit, updateStrategy), filtered object labels and
    annotations, and — for a Deployment without an autoscaler (``copy_replicas``) — the
    target's replica count when it is above zero. The selector is immutable and kept.
    """
    result = json_copy(dict(primary))
    tspec = target.get("spec") or {}
    spec = result.setdefault("spec", {})
    copied = _DAEMONSET_COPIED if result.get("kind") == "DaemonSet" else _DEPLOYMENT_COPIED
    for field in copied:
        if tspec.get(field) is not None:
            spec[field] = json_copy(tspec[field])
        else:
            spec.pop(field, None)
    if copy_replicas and result.get("kind") != "DaemonSet":
        replicas = tspec.get("replicas")
        if isinstance(replicas, int) and replicas > 0:
            spec["replicas"] = replicas
    spec["template"] = _primary_template(target, label, label_value, renamed, revision)
    meta = result.setdefault("metadata", {})
    meta["labels"] = _object_labels(target, label, label_value, include_label_prefixes)
    kept = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k.startswith(("deployment.kubernetes.io/", "deprecated.daemonset."))
    }
    meta["annotations"] = {
        **filter_metadata(
            (target.get("metadata") or {}).get("annotations") or {}, include_label_prefixes
        ),
        **kept,
    }
    return result


# ----------------------------------------------------------------------------- scaling


def scale_up_replicas(
    target: Mapping[str, Any],
    primary: Mapping[str, Any] | None,
    hpa: Mapping[str, Any] | None,
) -> int:
    """Replicas for the target when a run starts (Flagger's ScaleFromZero, checklist 11).

    The target's own ``spec.replicas`` if above zero; else, with an autoscaler, its
    ``minReplicas`` if above one; else, without one, the primary's replicas if above
    zero; else 1.
    """
    own = (target.get("spec") or {}).get("replicas")
    if isinstance(own, int) and own > 0:
        return own
    if hpa is not None:
        minimum = (hpa.get("spec") or {}).get("minReplicas")
        return minimum if isinstance(minimum, int) and minimum > 1 else 1
    if primary is not None:
        replicas = (primary.get("spec") or {}).get("replicas")
        if isinstance(replicas, int) and replicas > 0:
            return replicas
    return 1


def primary_hpa(
    target_hpa: Mapping[str, Any],
    canary: Canary,
    autoscaler: AutoscalerRef,
    *,
    include_label_prefixes: Collection[str] = ("*",),
) -> dict[str, Any]:
    """The ``<hpa>-primary`` autoscaler (autoscaling/v2): the target's HPA aimed at the
    primary, with ``primaryScalerReplicas`` overriding min/max."""
    meta = target_hpa.get("metadata") or {}
    source = target_hpa.get("spec") or {}
    ref = source.get("scaleTargetRef") or {}
    spec: dict[str, Any] = {
        "scaleTargetRef": {
            "apiVersion": ref.get("apiVersion", "apps/v1"),
            "kind": ref.get("kind", canary.spec.target_ref.kind),
            "name": primary_name(canary.spec.target_ref.name),
        },
        "maxReplicas": source.get("maxReplicas"),
    }
    if source.get("minReplicas") is not None:
        spec["minReplicas"] = source["minReplicas"]
    for field in ("metrics", "behavior"):
        if source.get(field) is not None:
            spec[field] = json_copy(source[field])
    if autoscaler.primary_min_replicas is not None:
        spec["minReplicas"] = autoscaler.primary_min_replicas
    if autoscaler.primary_max_replicas is not None:
        spec["maxReplicas"] = autoscaler.primary_max_replicas
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": primary_name(autoscaler.name),
            "namespace": meta.get("namespace") or canary.namespace,
            "labels": filter_metadata(meta.get("labels") or {}, include_label_prefixes),
            "ownerReferences": [owner_reference(canary)],
        },
        "spec": spec,
    }


def hpa_differs(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether the primary HPA must be updated (min defaults to 1, as the API does)."""
    old = existing.get("spec") or {}
    new = desired.get("spec") or {}
    if (old.get("minReplicas") or 1) != (new.get("minReplicas") or 1):
        return True
    return any(
        old.get(f) != new.get(f) for f in ("maxReplicas", "metrics", "behavior", "scaleTargetRef")
    )
