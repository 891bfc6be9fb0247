"""The APISIX canary ApisixRoute, computed without I/O (``provider: apisix``).

Flagger's APISIX router (reference/flagger.md section 3, ``pkg/router/apisix.go``)
never writes the user's ApisixRoute (``spec.routeRef``). It clones it into
``<route>-<svc>-canary`` (``apisix.apache.org/v2``):

* ``spec.http`` holds one rule only: the first of the original's rules with a
  backend named ``<svc>`` (which must be its only backend), copied whole (match,
  plugins, timeout, authentication, ...) with ``priority: 10000``, so APISIX prefers
  it to the original rule for the same requests;
* its backends are the original backend renamed ``<svc>-primary`` with weight ``p``,
  and ``{serviceName: <svc>-canary, servicePort, resolveGranularity, subset}`` of
  the same backend with weight ``c`` (APISIX's traffic-split plugin applies them);
* labels and annotations are the original's.

Later changes to the original rule are synced on every reconcile, keeping the
weights (Flagger's reconcile rewrites the spec with its initial weights when the
rule changed). Where we differ: the original's L4 ``stream`` rules are not copied
(two routes for one ingress port), and kubectl's last-applied annotation is not
copied.

APISIX splits by weight only here, so A/B testing, mirroring and session affinity
are refused as in Flagger.
"""

from __future__ import annotations

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
from canary.core.observations import Routes
from canary.jsontree import json_copy
from canary.model.canary import Canary

APISIX_API_VERSION = "apisix.apache.org/v2"
APISIX_ROUTE = "ApisixRoute"
CANARY_PRIORITY = 10000  # Flagger's maxPriority
APISIX_DEFAULT_WEIGHT = 100  # what the APISIX ingress controller gives a backend without a weight


def route_name(canary: Canary) -> str:
    """The user's ApisixRoute (``spec.routeRef.name``)."""
    ref = canary.spec.route_ref
    if ref is None or not ref.name:
        raise RouterError(
            "the apisix provider needs routeRef (the ApisixRoute to clone)", field="spec.routeRef"
        )
    return ref.name


def canary_route_name(canary: Canary) -> str:
    return f"{route_name(canary)}-{canary.spec.service.name}-canary"


def _target_rule(original: Mapping[str, Any], service: str) -> Mapping[str, Any] | None:
    for rule in (original.get("spec") or {}).get("http") or ():
        if any((b or {}).get("serviceName") == service for b in (rule or {}).get("backends") or ()):
            return rule  # type: ignore[no-any-return]
    return None


def _canary_rule(canary: Canary, original: Mapping[str, Any], routes: Routes) -> Obj:
    service = canary.spec.service
    name = (original.get("metadata") or {}).get("name", "")
    found = _target_rule(original, service.name)
    if found is None:
        raise RouterError(
            f'ApisixRoute "{name}" has no HTTP rule with a backend "{service.name}"; '
            "the canary route would have nothing to split",
            field="spec.routeRef.name",
        )
    rule = json_copy(dict(found))
    backends = rule.get("backends") or []
    if len(backends) != 1:
        raise RouterError(
            f'ApisixRoute "{name}" rule "{rule.get("name", "")}" has {len(backends)} backends; '
            f'only a rule with the single backend "{service.name}" can be split',
            field="spec.routeRef.name",
        )
    primary = dict(backends[0])
    primary["serviceName"] = service.primary_name
    primary["weight"] = routes.primary
    canary_backend: Obj = {
        "serviceName": service.canary_name,
        "servicePort": primary.get("servicePort"),
        "weight": routes.canary,
    }
    for key in ("resolveGranularity", "subset"):
        if primary.get(key):
            canary_backend[key] = primary[key]
    rule["priority"] = CANARY_PRIORITY
    rule["backends"] = [primary, canary_backend]
    return rule


def canary_apisix_route(
    canary: Canary,
    original: Mapping[str, Any],
    current: Obj | None,
    routes: Routes | None = None,
) -> Obj:
    """``<route>-<svc>-canary`` for ``original``; with ``routes`` None the current weights are kept."""
    refuse_beyond_weights(canary, routes, "an APISIX route")
    if routes is None:
        try:
            routes = read_routes(canary, current) or INITIAL_ROUTES
        except RouterError:  # routes nowhere (0/0): start over from primary 100 / canary 0
            routes = INITIAL_ROUTES
    spec = {
        k: json_copy(v)
        for k, v in (original.get("spec") or {}).items()
        if k not in ("http", "stream")
    }
    spec["http"] = [_canary_rule(canary, original, routes)]
    annotations = {
        k: v for k, v in annotations_of(original).items() if k != KUBECTL_LAST_APPLIED_ANNOTATION
    }
    return managed_object(
        canary,
        current,
        api_version=APISIX_API_VERSION,
        kind=APISIX_ROUTE,
        name=canary_route_name(canary),
        spec=spec,
        labels=labels_of(original),
        annotations=annotations,
        mark_for_flux=False,
    )


def _weight(backend: Mapping[str, Any], where: str) -> int:
    value = backend.get("weight")
    if value is None:
        return APISIX_DEFAULT_WEIGHT
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RouterError(
            f"{where}: weight {value!r} of {backend.get('serviceName')!r} is not a whole number"
        )
    return value


def read_routes(canary: Canary, obj: Mapping[str, Any] | None) -> Routes | None:
    """The weights of the rule that routes to ``<svc>-primary``; None without one."""
    if not obj:
        return None
    service = canary.spec.service
    rule = _target_rule(obj, service.primary_name)
    if rule is None:
        return None
    where = f'ApisixRoute "{(obj.get("metadata") or {}).get("name", "")}"'
    p = c = 0
    for backend in rule.get("backends") or ():
        if backend.get("serviceName") == service.primary_name:
            p = _weight(backend, where)
        elif backend.get("serviceName") == service.canary_name:
            c = _weight(backend, where)
    return percentages(p, c, False, where)
