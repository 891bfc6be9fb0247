"""The traffic block of a Knative Service, computed without I/O (``provider: knative``).

Knative Serving keeps every version of a Service as an immutable Revision and splits
the Service's traffic between Revisions by ``spec.traffic`` percentages, so no primary
workload and no extra Services exist: the target itself is the routing object.
As in Flagger (pkg/router/knative.go), the Service's ``spec.traffic`` becomes exactly::

    - latestRevision: true        # the canary: whatever Revision Knative created last
      percent: <canary weight>
    - revisionName: <primary>     # the promoted Revision, pinned
      latestRevision: false
      percent: <primary weight>

The primary Revision is named by the Service's ``flagger.app/primary-revision``
annotation, which the workload side (`canary.adapters.knative_workloads`) writes when
it takes the Service over and again on every promotion (there it is set to
``status.latestCreatedRevisionName``). ``latestRevision: false`` is what Knative's
defaulting webhook adds to a pinned entry, so writing it keeps our object equal to the
stored one and no pass rewrites it.

Knative splits by percentage only: A/B matching, mirroring and session affinity are
refused with a `RouterError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.adapters.routers.builders._common import Obj, RouterError, percentages
from canary.core.observations import Routes
from canary.jsontree import json_copy
from canary.model.canary import TOTAL_WEIGHT, Canary

KNATIVE_API_VERSION = "serving.knative.dev/v1"
PRIMARY_REVISION_ANNOTATION = "flagger.app/primary-revision"
#: Knative's own default: every request to the latest ready Revision.
DEFAULT_TRAFFIC: tuple[Obj, ...] = ({"latestRevision": True, "percent": TOTAL_WEIGHT},)


def is_knative_target(canary: Canary) -> bool:
    ref = canary.spec.target_ref
    return ref.kind == "Service" and ref.api_version.split("/")[0] == "serving.knative.dev"


def primary_revision(obj: Mapping[str, Any] | None) -> str:
    """The pinned primary Revision of a Knative Service ("" when it is not pinned yet)."""
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(PRIMARY_REVISION_ANNOTATION) or "")


def check_features(canary: Canary, mirrored: bool = False) -> None:
    """Knative splits by percentage only."""
    analysis = canary.spec.analysis_or_default
    if analysis.match:
        raise RouterError(
            "Knative Service traffic cannot route by header or cookie (A/B testing)",
            field="spec.analysis.match",
        )
    if mirrored or analysis.mirror:
        raise RouterError(
            "Knative Service traffic cannot be mirrored", field="spec.analysis.mirror"
        )
    if analysis.session_affinity is not None:
        raise RouterError(
            "Knative Service traffic has no session affinity",
            field="spec.analysis.sessionAffinity",
        )


def traffic(primary: str, routes: Routes) -> list[Obj]:
    return [
        {"latestRevision": True, "percent": routes.canary},
        {"revisionName": primary, "latestRevision": False, "percent": routes.primary},
    ]


def knative_service(canary: Canary, current: Obj | None, routes: Routes | None = None) -> Obj:
    """The Knative Service ``current`` with its traffic split between the pinned primary
    Revision and the latest one; with ``routes`` None (reconcile) the current split is kept.

    Only ``spec.traffic`` changes: the Service is the user's (its template, labels and
    annotations stay theirs, and it gets no owner reference).
    """
    check_features(canary, routes.mirrored if routes is not None else False)
    name = f"{canary.spec.target_ref.name}.{canary.namespace}"
    if current is None:
        raise RouterError(f"Knative Service {name} not found")
    primary = primary_revision(current)
    if not primary:
        raise RouterError(
            f"Knative Service {name} has no {PRIMARY_REVISION_ANNOTATION} annotation yet"
        )
    if routes is None:
        try:
            routes = read_routes(canary, current) or Routes(TOTAL_WEIGHT, 0)
        except RouterError:  # routes nowhere (0/0): start over from primary 100 / canary 0
            routes = Routes(TOTAL_WEIGHT, 0)
    obj = json_copy(current)
    obj.setdefault("spec", {})["traffic"] = traffic(primary, routes)
    return obj


def restored_service(current: Obj | None) -> Obj | None:
    """``revertOnDeletion``: Knative's default traffic (all to the latest Revision) back."""
    if current is None:
        return None
    obj = json_copy(current)
    obj.setdefault("spec", {})["traffic"] = [dict(t) for t in DEFAULT_TRAFFIC]
    return obj


def _is_latest(target: Mapping[str, Any]) -> bool:
    """Knative's defaulting: an entry without ``revisionName`` follows the latest Revision."""
    latest = target.get("latestRevision")
    return bool(latest) if latest is not None else not target.get("revisionName")


def _percent(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        if value is None:
            return 0
        raise RouterError(f'Knative Service "{name}": percent {value!r} is not a number')
    return round(value)


def read_routes(canary: Canary, obj: Mapping[str, Any] | None) -> Routes | None:
    """The split of a Knative Service's ``spec.traffic``: canary = the latest-Revision
    entries, primary = the entries pinned to the primary Revision; None while the
    Service is not pinned (no annotation) or its traffic has neither entry."""
    primary = primary_revision(obj)
    if not obj or not primary:
        return None
    name = canary.spec.target_ref.name
    p = c = 0
    seen = False
    for target in (obj.get("spec") or {}).get("traffic") or ():
        if not isinstance(target, Mapping):
            continue
        if _is_latest(target):
            c += _percent(target.get("percent"), name)
        elif target.get("revisionName") == primary:
            p += _percent(target.get("percent"), name)
        else:
            continue
        seen = True
    return percentages(p, c, False, f'Knative Service "{name}"') if seen else None
