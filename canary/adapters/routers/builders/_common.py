"""What every router's object builder shares: errors, ownership, takeover bookkeeping.

The routers never edit an object in place. A builder takes the object as it is now
(or None) and returns the whole object as it should be; the I/O layer writes it only
when it differs. That makes two rules easy to keep for every provider:

* objects the controller creates carry a controller owner reference to the Canary,
  so Kubernetes deletes them with it;
* an object that already existed (a VirtualService, HTTPRoute or Service the user
  wrote) is *taken over*: it is never given an owner reference, and the first time
  the controller writes it the original spec and metadata are recorded in the
  ``canary.gitops.dev/original-configuration`` annotation, so ``revertOnDeletion``
  can put it back (`restored_object`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from canary.adapters.metadata import owner_reference as canary_owner_reference
from canary.core.observations import Routes
from canary.errors import CanaryError
from canary.jsontree import json_copy
from canary.model.canary import API_VERSION, TOTAL_WEIGHT, Canary

Obj = dict[str, Any]

ORIGINAL_CONFIG_ANNOTATION = "canary.gitops.dev/original-configuration"
FLAGGER_ORIGINAL_CONFIG_ANNOTATION = "flagger.kubernetes.io/original-configuration"
KUBECTL_LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
# Flagger marks the objects it manages so Flux's kustomize-controller leaves them alone.
FLUX_RECONCILE_ANNOTATION = "kustomize.toolkit.fluxcd.io/reconcile"
FLUX_RECONCILE_DISABLED = "disabled"

# Annotations that record history and survive any metadata rewrite.
_BOOKKEEPING = (
    ORIGINAL_CONFIG_ANNOTATION,
    FLAGGER_ORIGINAL_CONFIG_ANNOTATION,
    KUBECTL_LAST_APPLIED_ANNOTATION,
)


class RouterError(CanaryError):
    """A router cannot do what it was asked; `field` names the Canary field at fault."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


def check_weights(primary: int, canary_weight: int) -> Routes:
    """The weights as `Routes`, or a `RouterError` if they are not a split of 100."""
    for value in (primary, canary_weight):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= TOTAL_WEIGHT:
            raise RouterError(
                f"weights must be whole numbers between 0 and 100, got {primary}/{canary_weight}"
            )
    if primary + canary_weight != TOTAL_WEIGHT:
        raise RouterError(
            f"primary and canary weights must add up to 100, got {primary}+{canary_weight}"
        )
    return Routes(primary=primary, canary=canary_weight)


INITIAL_ROUTES = Routes(primary=TOTAL_WEIGHT, canary=0)


def percentages(primary: int, canary_weight: int, mirrored: bool, where: str) -> Routes:
    """Weights read from an object as percentages (Gateway API and SMI weights are relative).

    A route that gives both services weight 0 sends no traffic anywhere; that is
    reported as a `RouterError` (Flagger: "does not contain routes") rather than 0/0.
    """
    total = primary + canary_weight
    if primary < 0 or canary_weight < 0 or total <= 0:
        raise RouterError(
            f"{where} gives no weight to the primary or the canary ({primary}/{canary_weight})"
        )
    if total == TOTAL_WEIGHT:
        return Routes(primary, canary_weight, mirrored)
    canary_share = round(TOTAL_WEIGHT * canary_weight / total)
    return Routes(TOTAL_WEIGHT - canary_share, canary_share, mirrored)


# ------------------------------------------------------------------------- ownership


def owner_reference(canary: Canary) -> Obj | None:
    """The controller owner reference to the Canary (None when its uid is unknown)."""
    return canary_owner_reference(canary) if canary.uid else None


def is_owned_by(obj: Mapping[str, Any], canary: Canary) -> bool:
    """True when the object's controller is this Canary (by name, as Flagger checks)."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or ():
        if not ref.get("controller"):
            continue
        api_version = str(ref.get("apiVersion", ""))
        return (
            ref.get("kind") == "Canary"
            and api_version.split("/")[0] == API_VERSION.split("/")[0]
            and ref.get("name") == canary.name
        )
    return False


def annotations_of(obj: Mapping[str, Any] | None) -> dict[str, str]:
    if not obj:
        return {}
    return dict(obj.get("metadata", {}).get("annotations") or {})


def labels_of(obj: Mapping[str, Any] | None) -> dict[str, str]:
    if not obj:
        return {}
    return dict(obj.get("metadata", {}).get("labels") or {})


def _without_none(meta: Obj) -> Obj:
    return {k: v for k, v in meta.items() if v not in (None, {}, [])}


# -------------------------------------------------------------------------- building


def apex_object(
    canary: Canary, current: Obj | None, *, api_version: str, kind: str, spec: Obj
) -> Obj:
    """The routing object named after the apex service (a VirtualService, an HTTPRoute),
    with the apex's labels and annotations (``spec.service.apex``)."""
    apex = canary.spec.service.apex
    return managed_object(
        canary,
        current,
        api_version=api_version,
        kind=kind,
        name=canary.spec.service.name,
        spec=spec,
        labels=apex.labels,
        annotations=apex.annotations,
    )


def managed_object(
    canary: Canary,
    current: Obj | None,
    *,
    api_version: str,
    kind: str,
    name: str,
    spec: Obj,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    mark_for_flux: bool = True,
    record: Obj | None = None,
    keep_labels: Iterable[str] = (),
    keep_annotations: Iterable[str] = (),
    spec_key: str = "spec",
) -> Obj:
    """The desired object: ``spec`` and metadata laid over ``current`` (or a new object).

    * New objects get the labels, the annotations and the Canary as controller owner.
    * Objects the Canary owns get exactly these labels and annotations (plus the
      bookkeeping annotations and the keys in ``keep_*``, which are never touched).
    * Objects someone else owns are taken over: their original ``record`` (default:
      the current spec) and metadata are stored once in ``ORIGINAL_CONFIG_ANNOTATION``,
      our labels and annotations are merged in, and no owner reference is added.
    """
    wanted_labels = dict(labels or {})
    wanted_annotations = dict(annotations or {})
    if mark_for_flux:
        wanted_annotations[FLUX_RECONCILE_ANNOTATION] = FLUX_RECONCILE_DISABLED
    if current is None:
        owner = owner_reference(canary)
        meta = _without_none(
            {
                "name": name,
                "namespace": canary.namespace,
                "labels": wanted_labels,
                "annotations": wanted_annotations,
                "ownerReferences": [owner] if owner else None,
            }
        )
        return {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": meta,
            spec_key: json_copy(spec),
        }

    obj = json_copy(current)
    obj["apiVersion"] = api_version
    obj["kind"] = kind
    meta = obj.setdefault("metadata", {})
    old_labels = labels_of(current)
    old_annotations = annotations_of(current)
    if is_owned_by(current, canary):
        new_labels = {k: old_labels[k] for k in keep_labels if k in old_labels}
        new_labels.update(wanted_labels)
        new_annotations = {
            k: old_annotations[k]
            for k in (*_BOOKKEEPING, *keep_annotations)
            if k in old_annotations
        }
        new_annotations.update(wanted_annotations)
    else:
        new_labels = {**old_labels, **wanted_labels}
        new_annotations = {**old_annotations, **wanted_annotations}
        if ORIGINAL_CONFIG_ANNOTATION not in old_annotations:
            new_annotations[ORIGINAL_CONFIG_ANNOTATION] = original_record(
                current, json_copy(current.get(spec_key)) if record is None else record
            )
    if new_labels:
        meta["labels"] = new_labels
    else:
        meta.pop("labels", None)
    if new_annotations:
        meta["annotations"] = new_annotations
    else:
        meta.pop("annotations", None)
    obj[spec_key] = json_copy(spec)
    return obj


def original_record(current: Mapping[str, Any], spec: Any) -> str:
    """The JSON stored in ``ORIGINAL_CONFIG_ANNOTATION`` when an object is taken over."""
    annotations = {k: v for k, v in annotations_of(current).items() if k not in _BOOKKEEPING}
    return json.dumps(
        {"spec": spec, "labels": labels_of(current), "annotations": annotations},
        sort_keys=True,
        separators=(",", ":"),
    )


def parse_json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def original_spec(obj: Mapping[str, Any], spec_key: str = "spec") -> tuple[Any, Obj | None]:
    """The spec to restore and our full record (if any) of a taken-over object.

    The spec comes from ``kubectl``'s last-applied annotation when present (the user's
    latest declared intent), else from our record, else from Flagger's
    ``flagger.kubernetes.io/original-configuration``; (None, None) if none exists.
    """
    annotations = annotations_of(obj)
    ours = parse_json(annotations.get(ORIGINAL_CONFIG_ANNOTATION))
    ours = ours if isinstance(ours, dict) else None
    last_applied = parse_json(annotations.get(KUBECTL_LAST_APPLIED_ANNOTATION))
    if isinstance(last_applied, dict) and spec_key in last_applied:
        return last_applied[spec_key], ours
    if ours is not None and spec_key in ours:
        return ours[spec_key], ours
    flagger = parse_json(annotations.get(FLAGGER_ORIGINAL_CONFIG_ANNOTATION))
    if isinstance(flagger, dict):
        return flagger, ours
    return None, ours


def restored_object(current: Obj, spec_key: str = "spec") -> Obj | None:
    """``current`` put back the way it was before the controller took it over.

    None when nothing was recorded (the object was created by the controller, or
    taken over by a Flagger version that kept no record).
    """
    spec, ours = original_spec(current, spec_key)
    if spec is None:
        return None
    obj = json_copy(current)
    obj[spec_key] = spec
    restore_metadata(obj, ours)
    return obj


def restore_metadata(obj: Obj, ours: Mapping[str, Any] | None) -> None:
    """Put back the recorded labels and annotations and drop our bookkeeping."""
    meta = obj.setdefault("metadata", {})
    annotations = annotations_of(obj)
    if ours is not None:
        labels = dict(ours.get("labels") or {})
        restored = dict(ours.get("annotations") or {})
        if KUBECTL_LAST_APPLIED_ANNOTATION in annotations:
            restored[KUBECTL_LAST_APPLIED_ANNOTATION] = annotations[KUBECTL_LAST_APPLIED_ANNOTATION]
        meta["labels"] = labels
        annotations = restored
    annotations.pop(ORIGINAL_CONFIG_ANNOTATION, None)
    annotations.pop(FLAGGER_ORIGINAL_CONFIG_ANNOTATION, None)
    meta["annotations"] = annotations
    for key in ("labels", "annotations"):
        if not meta.get(key):
            meta.pop(key, None)


def drop_none(d: Mapping[str, Any]) -> Obj:
    """A copy of ``d`` without keys whose value is None or an empty container."""
    return {k: json_copy(v) for k, v in d.items() if v is not None and v != [] and v != {}}
