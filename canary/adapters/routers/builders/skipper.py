"""The Skipper canary Ingress, computed without I/O (``provider: skipper``).

Flagger's Skipper router (reference/flagger.md section 3, ``pkg/router/skipper.go``)
leaves the user's Ingress (``spec.ingressRef``) untouched and keeps a copy of it,
``<ingress>-canary``, that takes the traffic over while a canary runs:

* in every rule, each path whose backend is the Service ``<svc>`` is pointed at
  ``<svc>-primary``, and a copy of that path pointing at ``<svc>-canary`` is appended
  to the rule's paths, so both backends serve the same host and path;
* ``zalando.org/backend-weights: {"<svc>-canary": c, "<svc>-primary": p}`` splits
  those paths (Skipper turns the weights into ``Traffic()`` predicates);
* ``zalando.org/skipper-predicate`` is the original's predicate with ``Weight(100)``
  put first, so Skipper prefers these routes to the original Ingress's routes for
  the same host and path; once the canary is back at weight 0, ``False()`` is put
  first instead, which switches the copy off and hands the traffic back to the
  original Ingress (and the apex Service).

The other annotations, the labels and the rest of the spec are the original's; its
later changes are synced on every reconcile, keeping the weights and the on/off
predicate (Flagger's reconcile resets them to the initial ones when the spec
changed). Where we differ: kubectl's last-applied annotation is not copied, and an
Ingress with no backend ``<svc>`` is an error naming ``spec.ingressRef.name``
(Flagger's check for it never fires).

Skipper could match headers with predicates, but Flagger's router does not (A/B
testing is a TODO there), and it mirrors nothing: A/B testing, mirroring and session
affinity are refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from canary.adapters.routers.builders._common import (
    INITIAL_ROUTES,
    KUBECTL_LAST_APPLIED_ANNOTATION,
    Obj,
    RouterError,
    annotations_of,
    labels_of,
    managed_object,
    percentages,
)
from canary.adapters.routers.builders._weights_only import refuse_beyond_weights
from canary.adapters.routers.builders.ingress import INGRESS_API_VERSION
from canary.core.observations import Routes
from canary.jsontree import json_copy
from canary.model.canary import Canary

BACKEND_WEIGHTS_ANNOTATION = "zalando.org/backend-weights"
PREDICATE_ANNOTATION = "zalando.org/skipper-predicate"
ROUTE_PREFERRED = "Weight(100)"  # outranks the original Ingress's route for the same path
ROUTE_DISABLED = "False()"  # matches nothing: the original Ingress routes alone


def canary_ingress_name(canary: Canary) -> str:
    ref = canary.spec.ingress_ref
    if ref is None or not ref.name:
        raise RouterError(
            "the skipper provider needs ingressRef (the Ingress to clone)", field="spec.ingressRef"
        )
    return f"{ref.name}-canary"


def insert_predicate(raw: str, first: str) -> str:
    """``raw`` (predicates joined by ``&&``) with ``first`` in front, and without any
    other ``Weight(100)`` or ``False()``."""
    kept = [
        p
        for p in (part.strip() for part in raw.split("&&"))
        if p and p not in (ROUTE_PREFERRED, ROUTE_DISABLED)
    ]
    return " && ".join([first, *kept])


def backend_weights(canary: Canary, routes: Routes) -> str:
    """The annotation's value as Go's encoder writes a map (keys sorted, no spaces)."""
    service = canary.spec.service
    weights = {service.primary_name: routes.primary, service.canary_name: routes.canary}
    return json.dumps(weights, sort_keys=True, separators=(",", ":"))


def _split_paths(spec: Obj, canary: Canary) -> bool:
    """Point every ``<svc>`` path at the primary and append its canary twin; True if any."""
    service = canary.spec.service
    found = False
    for rule in spec.get("rules") or ():
        paths = ((rule or {}).get("http") or {}).get("paths")
        if not isinstance(paths, list):
            continue
        for path in list(paths):
            backend = ((path or {}).get("backend") or {}).get("service")
            if not isinstance(backend, dict) or backend.get("name") != service.name:
                continue
            backend["name"] = service.primary_name
            twin = json_copy(path)
            twin["backend"]["service"]["name"] = service.canary_name
            paths.append(twin)
            found = True
    return found


def _kept(canary: Canary, current: Mapping[str, Any] | None) -> tuple[Routes, bool]:
    """The weights and the on/off state the current copy holds (initial: 100/0, on)."""
    try:
        routes = read_routes(canary, current)
    except RouterError:
        routes = None
    if routes is None:
        return INITIAL_ROUTES, False
    predicate = annotations_of(current).get(PREDICATE_ANNOTATION, "")
    return routes, predicate.split("&&", 1)[0].strip() == ROUTE_DISABLED


def canary_ingress(
    canary: Canary,
    original: Mapping[str, Any],
    current: Obj | None,
    routes: Routes | None = None,
) -> Obj:
    """``<ingress>-canary`` for ``original``; with ``routes`` None the current routing is kept."""
    refuse_beyond_weights(canary, routes, "Skipper's canary Ingress")
    spec = json_copy(dict(original.get("spec") or {}))
    if not _split_paths(spec, canary):
        ingress = (original.get("metadata") or {}).get("name", "")
        raise RouterError(
            f'Ingress "{ingress}" has no rule path with the backend "{canary.spec.service.name}"; '
            "the canary Ingress would have nothing to route",
            field="spec.ingressRef.name",
        )
    if routes is None:
        routes, disabled = _kept(canary, current)
    else:
        disabled = routes.canary == 0
    annotations = {
        k: v for k, v in annotations_of(original).items() if k != KUBECTL_LAST_APPLIED_ANNOTATION
    }
    annotations[BACKEND_WEIGHTS_ANNOTATION] = backend_weights(canary, routes)
    annotations[PREDICATE_ANNOTATION] = insert_predicate(
        annotations.get(PREDICATE_ANNOTATION, ""), ROUTE_DISABLED if disabled else ROUTE_PREFERRED
    )
    return managed_object(
        canary,
        current,
        api_version=INGRESS_API_VERSION,
        kind="Ingress",
        name=canary_ingress_name(canary),
        spec=spec,
        labels=labels_of(original),
        annotations=annotations,
        mark_for_flux=False,
    )


def read_routes(canary: Canary, obj: Mapping[str, Any] | None) -> Routes | None:
    """The weights in ``zalando.org/backend-weights``; None when the annotation is absent
    or names neither the primary nor the canary."""
    raw = annotations_of(obj).get(BACKEND_WEIGHTS_ANNOTATION)
    if raw is None:
        return None
    where = f'Ingress "{(obj or {}).get("metadata", {}).get("name", "")}"'
    try:
        weights = json.loads(raw)
    except ValueError:
        weights = None
    if not isinstance(weights, dict):
        raise RouterError(f"{where}: {BACKEND_WEIGHTS_ANNOTATION} is not a JSON object: {raw!r}")
    service = canary.spec.service
    if service.primary_name not in weights and service.canary_name not in weights:
        return None
    values = []
    for name in (service.primary_name, service.canary_name):
        value = weights.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise RouterError(f"{where}: backend weight {value!r} of {name!r} is not a number")
        values.append(round(value))
    return percentages(values[0], values[1], False, where)
