"""Kuma's TrafficRoute, computed without I/O (``provider: kuma``).

TrafficRoute ``<svc>`` (``kuma.io/v1alpha1``) is a cluster-scoped object, so it has no
namespace; the mesh it belongs to is the top-level ``mesh`` field, taken from the
Canary's ``kuma.io/mesh`` annotation (``default`` without one). Kuma names a
Kubernetes Service port ``<name>_<namespace>_svc_<port>`` in its ``kuma.io/service``
tag, so, as Flagger writes it (reference/flagger.md section 3, Kuma)::

    spec:
      sources:      [{match: {kuma.io/service: "*"}}]
      destinations: [{match: {kuma.io/service: <svc>_<ns>_svc_<port>}}]
      conf:
        split:
          - {weight: p, destination: {kuma.io/service: <svc>-primary_<ns>_svc_<port>}}
          - {weight: c, destination: {kuma.io/service: <svc>-canary_<ns>_svc_<port>}}

Its annotations are ``service.apex.annotations``, or ``<port>.service.kuma.io: http``
when the apex has none (Flagger's default), plus Flux's reconcile-disabled marker.
A TrafficRoute only splits by weight: A/B testing (``analysis.match``), mirroring and
session affinity are refused with a `RouterError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.adapters.routers.builders._common import (
    INITIAL_ROUTES,
    Obj,
    RouterError,
    managed_object,
    percentages,
)
from canary.core.observations import Routes
from canary.model.canary import Canary

KUMA_API_VERSION = "kuma.io/v1alpha1"
KUMA_SERVICE_TAG = "kuma.io/service"
MESH_ANNOTATION = "kuma.io/mesh"
DEFAULT_MESH = "default"


def service_tag(name: str, namespace: str, port: int) -> str:
    """The ``kuma.io/service`` tag Kuma gives port ``port`` of Service ``name``."""
    return f"{name}_{namespace}_svc_{port}"


def parse_service_tag(tag: str) -> tuple[str, str, int] | None:
    """``(name, namespace, port)`` of a Kubernetes Service tag; None for any other tag."""
    parts = tag.rsplit("_", 3)
    if len(parts) != 4 or parts[2] != "svc" or not parts[3].isdigit():
        return None
    return parts[0], parts[1], int(parts[3])


def mesh_of(canary: Canary) -> str:
    return canary.annotations.get(MESH_ANNOTATION) or DEFAULT_MESH


def _annotations(canary: Canary) -> dict[str, str]:
    service = canary.spec.service
    if service.apex.annotations:
        return dict(service.apex.annotations)
    return {f"{service.port}.service.kuma.io": "http"}


def _check(canary: Canary, routes: Routes | None) -> None:
    if canary.spec.analysis_or_default.match:
        raise RouterError(
            "a Kuma TrafficRoute splits by weight only; it cannot route by header or cookie "
            "(A/B testing)",
            field="spec.analysis.match",
        )
    analysis = canary.spec.analysis_or_default
    if analysis.mirror or (routes is not None and routes.mirrored):
        raise RouterError("a Kuma TrafficRoute cannot mirror traffic", field="spec.analysis.mirror")
    if analysis.session_affinity is not None:
        raise RouterError(
            "a Kuma TrafficRoute has no cookie-based session affinity",
            field="spec.analysis.sessionAffinity",
        )


def traffic_route(canary: Canary, current: Obj | None, routes: Routes | None = None) -> Obj:
    """TrafficRoute ``<svc>``; with ``routes`` None (reconcile) the current weights are kept."""
    _check(canary, routes)
    if routes is None:
        try:
            routes = read_routes(canary, current) or INITIAL_ROUTES
        except RouterError:  # routes nowhere (0/0): start over from primary 100 / canary 0
            routes = INITIAL_ROUTES
    service = canary.spec.service
    ns, port = canary.namespace, service.port
    spec = {
        "sources": [{"match": {KUMA_SERVICE_TAG: "*"}}],
        "destinations": [{"match": {KUMA_SERVICE_TAG: service_tag(service.name, ns, port)}}],
        "conf": {
            "split": [
                {
                    "weight": routes.primary,
                    "destination": {KUMA_SERVICE_TAG: service_tag(service.primary_name, ns, port)},
                },
                {
                    "weight": routes.canary,
                    "destination": {KUMA_SERVICE_TAG: service_tag(service.canary_name, ns, port)},
                },
            ]
        },
    }
    obj = managed_object(
        canary,
        current,
        api_version=KUMA_API_VERSION,
        kind="TrafficRoute",
        name=service.name,
        spec=spec,
        annotations=_annotations(canary),
    )
    obj["metadata"].pop("namespace", None)  # cluster-scoped
    # Like Flagger, the mesh is chosen when the route is created and kept afterwards.
    obj["mesh"] = (current or {}).get("mesh") or mesh_of(canary)
    return obj


def read_routes(canary: Canary, obj: Mapping[str, Any] | None) -> Routes | None:
    """The weights of a TrafficRoute's split; None if it sends nothing to either Service."""
    if not obj:
        return None
    service = canary.spec.service
    conf = (obj.get("spec") or {}).get("conf") or {}
    p = c = 0
    seen = False
    for split in conf.get("split") or ():
        tag = parse_service_tag(str((split.get("destination") or {}).get(KUMA_SERVICE_TAG, "")))
        if tag is None or tag[1] != canary.namespace:
            continue
        weight = split.get("weight", 0)
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise RouterError(f'TrafficRoute "{service.name}": weight {weight!r} is not a number')
        if tag[0] == service.primary_name:
            p, seen = weight, True
        elif tag[0] == service.canary_name:
            c, seen = weight, True
    return percentages(p, c, False, f'TrafficRoute "{service.name}"') if seen else None
