"""Contour's HTTPProxy, computed without I/O (``provider: contour``).

HTTPProxy ``<svc>`` (``projectcontour.io/v1``) is a child proxy: it has no
``virtualhost``, and the user's root HTTPProxy includes it for a host (Flagger does
not read ``service.hosts`` or ``service.gateways`` for Contour). Its spec, as
Flagger's ``pkg/router/contour.go`` writes it (reference/flagger.md section 3):

* ``routes[0]``: ``conditions: [{prefix}]`` (``service.match[0].uri.prefix``, default
  ``/``), ``timeoutPolicy: {response: service.timeout, idle: 5m}`` when a timeout is
  set, ``retryPolicy: {count: retries.attempts, perTryTimeout}`` when retries are
  set, and ``services`` ``<svc>-primary`` / ``<svc>-canary`` on ``service.port``
  with their weights (a weight of 0 is left out, as Go's ``omitempty`` does; Contour
  gives an unweighted service no traffic when another one has a weight). Every
  service sets the request header ``l5d-dst-override:
  <name>.<ns>.svc.cluster.local:<port>`` so a Linkerd sidecar behind Envoy keeps the
  split.
* ``ingressClassName``: the controller's ``--ingress-class`` (Flagger's
  ``-ingress-class``; Flagger 1.43 moved it from the ``projectcontour.io/ingress.class``
  annotation to this field).
* A/B testing (``analysis.match``): the weighted route carries the header
  conditions and a second route ``[{prefix}]`` sends everything else to the primary.
  Contour matches headers by ``exact`` or ``contains``; Flagger maps ``prefix`` and
  ``suffix`` to ``contains``, and so do we. Unlike Flagger, each ``match`` entry gets
  its own weighted route (entries are alternatives, as in Istio; Flagger folds all
  of them into one route, where Contour would AND them and refuse a second
  ``prefix`` in one condition block), and only the first condition of a route
  carries the prefix.

Contour has no mirroring or cookie affinity that Flagger drives: both are refused.
Weights are read from ``routes[0]`` (Flagger's ``GetRoutes``).
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
from canary.core.observations import Routes
from canary.model.canary import Canary

CONTOUR_API_VERSION = "projectcontour.io/v1"
LINKERD_OVERRIDE_HEADER = "l5d-dst-override"
IDLE_TIMEOUT = "5m"  # Flagger's fixed per-route idle timeout when service.timeout is set


def _prefix(canary: Canary) -> str:
    """``service.match[0].uri.prefix``, else ``/`` (Flagger's makePrefix)."""
    match = canary.spec.service.match
    uri = (match[0].get("uri") or {}) if match else {}
    prefix = uri.get("prefix") if isinstance(uri, Mapping) else None
    return str(prefix) if prefix else "/"


def _header_condition(name: str, rule: Any, where: str) -> Obj:
    """One Contour header condition from an Istio-style string match."""
    if not isinstance(rule, Mapping):
        raise RouterError("expected a string match (exact, prefix or suffix)", field=where)
    for key in ("exact", "prefix", "suffix"):
        if rule.get(key):
            return {"name": name, "exact" if key == "exact" else "contains": str(rule[key])}
    wanted = ", ".join(sorted(rule)) or "nothing"
    raise RouterError(
        f"Contour matches headers by exact, prefix or suffix (as contains), got {wanted}",
        field=where,
    )


def _match_conditions(canary: Canary) -> list[list[Obj]]:
    """The conditions of each weighted A/B route: one list per ``analysis.match`` entry."""
    prefix = _prefix(canary)
    out: list[list[Obj]] = []
    for index, entry in enumerate(canary.spec.analysis_or_default.match):
        base = f"spec.analysis.match[{index}]"
        for key in entry:
            if key not in ("headers", "name"):
                raise RouterError(
                    f"Contour routes A/B traffic by headers only, not by {key}",
                    field=f"{base}.{key}",
                )
        headers = entry.get("headers") or {}
        if not isinstance(headers, Mapping) or not headers:
            raise RouterError("expected at least one header to match", field=f"{base}.headers")
        conditions: list[Obj] = []
        for name in sorted(headers):
            header = _header_condition(str(name), headers[name], f"{base}.headers.{name}")
            conditions.append(
                {"prefix": prefix, "header": header} if not conditions else {"header": header}
            )
        out.append(conditions)
    return out


def _service(canary: Canary, name: str, weight: int) -> Obj:
    port = canary.spec.service.port
    out: Obj = {"name": name, "port": port}
    if weight:
        out["weight"] = weight
    out["requestHeadersPolicy"] = {
        "set": [
            {
                "name": LINKERD_OVERRIDE_HEADER,
                "value": f"{name}.{canary.namespace}.svc.cluster.local:{port}",
            }
        ]
    }
    return out


def _route(canary: Canary, conditions: list[Obj], primary: int, canary_weight: int) -> Obj:
    service = canary.spec.service
    route: Obj = {
        "conditions": conditions,
        "services": [
            _service(canary, service.primary_name, primary),
            _service(canary, service.canary_name, canary_weight),
        ],
    }
    if service.timeout:
        route["timeoutPolicy"] = {"response": service.timeout, "idle": IDLE_TIMEOUT}
    if service.retries is not None:
        retry: Obj = {"count": int(service.retries.get("attempts") or 0)}
        if service.retries.get("perTryTimeout"):
            retry["perTryTimeout"] = str(service.retries["perTryTimeout"])
        route["retryPolicy"] = retry
    return route


def _check_features(canary: Canary, routes: Routes) -> None:
    analysis = canary.spec.analysis_or_default
    if routes.mirrored:
        raise RouterError("Contour cannot mirror traffic for Flagger", field="spec.analysis.mirror")
    if analysis.session_affinity is not None:
        raise RouterError(
            "Contour has no cookie session affinity for canaries",
            field="spec.analysis.sessionAffinity",
        )


def http_proxy_spec(canary: Canary, routes: Routes, *, ingress_class: str | None = None) -> Obj:
    """The HTTPProxy spec that routes ``routes``."""
    _check_features(canary, routes)
    prefix_only = [{"prefix": _prefix(canary)}]
    if canary.spec.analysis_or_default.match:
        proxy_routes = [
            _route(canary, conditions, routes.primary, routes.canary)
            for conditions in _match_conditions(canary)
        ]
        proxy_routes.append(_route(canary, prefix_only, 100, 0))
    else:
        proxy_routes = [_route(canary, prefix_only, routes.primary, routes.canary)]
    spec: Obj = {"routes": proxy_routes}
    if ingress_class:
        spec["ingressClassName"] = ingress_class
    return spec


def http_proxy(
    canary: Canary,
    current: Obj | None,
    routes: Routes | None = None,
    *,
    ingress_class: str | None = None,
) -> Obj:
    """HTTPProxy ``<svc>``; with ``routes`` None (reconcile) the current weights are kept."""
    if routes is None:
        try:
            routes = read_routes(canary, current) or INITIAL_ROUTES
        except RouterError:  # routes nowhere (0/0): start over from primary 100 / canary 0
            routes = INITIAL_ROUTES
    return apex_object(
        canary,
        current,
        api_version=CONTOUR_API_VERSION,
        kind="HTTPProxy",
        spec=http_proxy_spec(canary, routes, ingress_class=ingress_class),
    )


def _weight(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)


def read_routes(canary: Canary, obj: Mapping[str, Any] | None) -> Routes | None:
    """The weights of ``routes[0]``; None if it routes to neither service."""
    if not obj:
        return None
    proxy_routes = (obj.get("spec") or {}).get("routes") or ()
    if not proxy_routes:
        return None
    service = canary.spec.service
    p = c = 0
    seen = False
    for backend in proxy_routes[0].get("services") or ():
        name = backend.get("name")
        if name == service.primary_name:
            p, seen = _weight(backend.get("weight")), True
        elif name == service.canary_name:
            c, seen = _weight(backend.get("weight")), True
    return percentages(p, c, False, f'HTTPProxy "{service.name}"') if seen else None
