"""Traefik's TraefikService, computed without I/O (``provider: traefik``).

Flagger's Traefik router (reference/flagger.md section 3) keeps one object,
TraefikService ``<svc>`` in ``traefik.io/v1alpha1`` (the API group Traefik v2.10+
and v3 serve; Flagger moved to it from ``traefik.containo.us``)::

    spec:
      weighted:
        services:
          - {name: <svc>-primary, namespace: <ns>, port: <service.port>, weight: p}
          - {name: <svc>-canary,  namespace: <ns>, port: <service.port>, weight: c}  # only if c > 0

with the labels and annotations of ``service.apex`` and Flux's
``kustomize.toolkit.fluxcd.io/reconcile: disabled``. The user's IngressRoute sends
its traffic there (``services: [{name: <svc>, kind: TraefikService}]``); it is the
user's object and is never read or written here.

Where we differ: at primary 0 Flagger leaves the primary's ``weight`` out (its Go
field is ``omitempty``), which Traefik reads as its default weight 1; the primary is
written with an explicit ``weight: 0`` so the canary really gets everything. A
missing weight is read back the way Traefik reads it (1).

Traefik's weighted round robin matches nothing but weights, so A/B testing,
mirroring and session affinity are refused (`refuse_beyond_weights`), as Flagger's
router implements none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canary.adapters.routers.builders._common import (
    INITIAL_ROUTES,
    Obj,
    RouterError,
    apex_object,
    percentages,
)
from canary.adapters.routers.builders._weights_only import refuse_beyond_weights
from canary.core.observations import Routes
from canary.model.canary import Canary

TRAEFIK_API_VERSION = "traefik.io/v1alpha1"
TRAEFIK_SERVICE = "TraefikService"
TRAEFIK_DEFAULT_WEIGHT = 1  # what Traefik gives a weighted service without a weight


def _entry(canary: Canary, name: str, weight: int) -> Obj:
    return {
        "name": name,
        "namespace": canary.namespace,
        "port": canary.spec.service.port,
        "weight": weight,
    }


def traefik_service(canary: Canary, current: Obj | None, routes: Routes | None = None) -> Obj:
    """TraefikService ``<svc>``; with ``routes`` None (reconcile) the current weights are kept."""
    refuse_beyond_weights(canary, routes, "a TraefikService")
    if routes is None:
        try:
            routes = read_routes(canary, current) or INITIAL_ROUTES
        except RouterError:  # routes nowhere (0/0): start over from primary 100 / canary 0
            routes = INITIAL_ROUTES
    service = canary.spec.service
    services = [_entry(canary, service.primary_name, routes.primary)]
    if routes.canary > 0:
        services.append(_entry(canary, service.canary_name, routes.canary))
    return apex_object(
        canary,
        current,
        api_version=TRAEFIK_API_VERSION,
        kind=TRAEFIK_SERVICE,
        spec={"weighted": {"services": services}},
    )


def _weight(entry: Mapping[str, Any], where: str) -> int:
    value = entry.get("weight", TRAEFIK_DEFAULT_WEIGHT)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RouterError(
            f"{where}: weight {value!r} of {entry.get('name')!r} is not a whole number"
        )
    return value


def read_routes(canary: Canary, obj: Mapping[str, Any] | None) -> Routes | None:
    """The weights of TraefikService ``<svc>``; None if it lists neither the primary nor
    the canary (or does not exist)."""
    if not obj:
        return None
    service = canary.spec.service
    where = f'TraefikService "{service.name}"'
    weighted = (obj.get("spec") or {}).get("weighted") or {}
    p = c = 0
    seen = False
    for entry in weighted.get("services") or ():
        name = entry.get("name")
        if name == service.primary_name:
            p, seen = _weight(entry, where), True
        elif name == service.canary_name:
            c, seen = _weight(entry, where), True
    return percentages(p, c, False, where) if seen else None
