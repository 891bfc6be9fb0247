"""Gloo Edge's Upstreams and RouteTable, computed without I/O (``provider: gloo``).

Objects (Flagger's ``pkg/router/gloo.go``, reference/flagger.md section 3):

* Upstreams ``<ns>-<svc>-primaryupstream-<port>`` and ``<ns>-<svc>-canaryupstream-<port>``
  (``gloo.solo.io/v1``) in the Canary's namespace, with ``spec.kube = {serviceName:
  <svc>-primary|<svc>-canary, serviceNamespace, servicePort: service.port, selector:
  the Service's selector}``. With ``spec.upstreamRef`` the user's Upstream lends its
  connection settings: ``labels``, ``sslConfig``, ``circuitBreakers``,
  ``connectionConfig``, ``loadBalancerConfig``, ``useHttp2``,
  ``initialStreamWindowSize``, ``initialConnectionWindowSize`` and
  ``httpProxyHostname`` are copied, and its ``spec.labels`` (filtered by the
  controller's label prefixes) become the Upstream's labels. Flagger creates them
  once; we also keep the ones the Canary owns in step (an Upstream of that name the
  Canary does not own is left alone, as Flagger leaves it).
* RouteTable ``<svc>`` (``gateway.solo.io/v1``): one route with
  ``inheritablePathMatchers: true`` (the path comes from the user's VirtualService
  that delegates to it) and ``routeAction.multi.destinations`` = the primary and
  canary Upstreams with their weights (a weight of 0 is left out, as Go's
  ``omitempty`` does).

A/B testing (``analysis.match``): the weighted route gets ``matchers`` — per match
entry one matcher with its headers (``exact`` as value, ``regex`` as a regex, and,
unlike Flagger which turns them into a presence check, ``prefix``/``suffix`` as the
equivalent regex) and ``method.exact`` as ``methods``. Flagger folds every entry
into a single matcher and writes no other route, so requests that do not match
find no route in the table; we keep the entries as alternatives and add a second
route without matchers to the primary, as Flagger does for Contour and Istio.

Gloo Edge has no mirroring or cookie affinity that Flagger drives: both are
refused. Weights are read from ``routes[0]`` (Flagger's ``GetRoutes``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any, Literal

from canary.adapters.metadata import filter_metadata
from canary.adapters.routers.builders._common import (
    INITIAL_ROUTES,
    Obj,
    RouterError,
    apex_object,
    is_owned_by,
    managed_object,
    percentages,
)
from canary.core.observations import Routes
from canary.jsontree import json_copy
from canary.model.canary import Canary

GATEWAY_API_VERSION = "gateway.solo.io/v1"  # RouteTable, VirtualService
GLOO_API_VERSION = "gloo.solo.io/v1"  # Upstream

#: The Upstream spec fields Flagger copies from the ``spec.upstreamRef`` Upstream.
COPIED_UPSTREAM_FIELDS = (
    "labels",
    "sslConfig",
    "circuitBreakers",
    "connectionConfig",
    "loadBalancerConfig",
    "useHttp2",
    "initialStreamWindowSize",
    "initialConnectionWindowSize",
    "httpProxyHostname",
)

Which = Literal["primary", "canary"]


def upstream_name(canary: Canary, which: Which) -> str:
    """``<ns>-<svc>-primaryupstream-<port>`` or ``<ns>-<svc>-canaryupstream-<port>``."""
    service = canary.spec.service
    return f"{canary.namespace}-{service.name}-{which}upstream-{service.port}"


def config_upstream_key(canary: Canary) -> tuple[str, str] | None:
    """(namespace, name) of the ``spec.upstreamRef`` Upstream (namespace: the Canary's
    when left out), or None without a reference."""
    ref = canary.spec.upstream_ref
    if ref is None:
        return None
    return ref.namespace or canary.namespace, ref.name


# --------------------------------------------------------------------------- upstreams


def upstream(
    canary: Canary,
    which: Which,
    current: Obj | None,
    *,
    service: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    include_label_prefixes: Collection[str] = ("*",),
) -> Obj | None:
    """The ``which`` Upstream, or None when an Upstream of that name belongs to someone else.

    ``service``: the Service ``<svc>-primary`` / ``<svc>-canary`` (its selector is
    copied; None leaves the selector out, so Gloo takes every endpoint of the
    Service). ``config``: the ``spec.upstreamRef`` Upstream, if any.
    """
    if current is not None and not is_owned_by(current, canary):
        return None
    svc = canary.spec.service
    config_spec = (config or {}).get("spec") or {}
    spec: Obj = {
        key: json_copy(config_spec[key])
        for key in COPIED_UPSTREAM_FIELDS
        if config_spec.get(key) not in (None, "", {}, [], False, 0)
    }
    kube: Obj = {
        "serviceName": svc.primary_name if which == "primary" else svc.canary_name,
        "serviceNamespace": canary.namespace,
        "servicePort": svc.port,
    }
    selector = ((service or {}).get("spec") or {}).get("selector")
    if selector:
        kube["selector"] = dict(selector)
    spec["kube"] = kube
    labels = filter_metadata(config_spec.get("labels") or {}, include_label_prefixes)
    return managed_object(
        canary,
        current,
        api_version=GLOO_API_VERSION,
        kind="Upstream",
        name=upstream_name(canary, which),
        spec=spec,
        labels=labels,
        mark_for_flux=False,
    )


# ------------------------------------------------------------------------- route table


def _header_matcher(name: str, rule: Any, where: str) -> Obj:
    """One Gloo header matcher from an Istio-style string match."""
    if not isinstance(rule, Mapping):
        raise RouterError("expected a string match (exact, prefix, suffix or regex)", field=where)
    if rule.get("exact"):
        return {"name": name, "value": str(rule["exact"])}
    if rule.get("regex"):
        return {"name": name, "value": str(rule["regex"]), "regex": True}
    if rule.get("prefix"):
        return {"name": name, "value": f"{re.escape(str(rule['prefix']))}.*", "regex": True}
    if rule.get("suffix"):
        return {"name": name, "value": f".*{re.escape(str(rule['suffix']))}", "regex": True}
    wanted = ", ".join(sorted(rule)) or "nothing"
    raise RouterError(
        f"Gloo matches headers by exact, prefix, suffix or regex, got {wanted}", field=where
    )


def _matchers(canary: Canary) -> list[Obj]:
    """One matcher per ``analysis.match`` entry (entries are alternatives)."""
    out: list[Obj] = []
    for index, entry in enumerate(canary.spec.analysis_or_default.match):
        base = f"spec.analysis.match[{index}]"
        for key in entry:
            if key not in ("headers", "method", "name"):
                raise RouterError(
                    f"Gloo routes A/B traffic by headers and method only, not by {key}",
                    field=f"{base}.{key}",
                )
        headers = entry.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise RouterError("expected an object of header matches", field=f"{base}.headers")
        matcher: Obj = {}
        if headers:
            matcher["headers"] = [
                _header_matcher(str(name), headers[name], f"{base}.headers.{name}")
                for name in sorted(headers)
            ]
        method = entry.get("method")
        if method is not None:
            if not isinstance(method, Mapping) or not method.get("exact"):
                raise RouterError("Gloo matches a method exactly", field=f"{base}.method")
            matcher["methods"] = [str(method["exact"])]
        if not matcher:
            raise RouterError("expected a header or a method to match", field=base)
        out.append(matcher)
    return out


def _destination(canary: Canary, which: Which, weight: int) -> Obj:
    out: Obj = {
        "destination": {
            "upstream": {"name": upstream_name(canary, which), "namespace": canary.namespace}
        }
    }
    if weight:
        out["weight"] = weight
    return out


def _route(canary: Canary, matchers: list[Obj], primary: int, canary_weight: int) -> Obj:
    route: Obj = {}
    if matchers:
        route["matchers"] = matchers
    route["routeAction"] = {
        "multi": {
            "destinations": [
                _destination(canary, "primary", primary),
                _destination(canary, "canary", canary_weight),
            ]
        }
    }
    route["inheritablePathMatchers"] = True
    return route


def _check_features(canary: Canary, routes: Routes) -> None:
    if routes.mirrored:
        raise RouterError(
            "Gloo Edge cannot mirror traffic for Flagger", field="spec.analysis.mirror"
        )
    if canary.spec.analysis_or_default.session_affinity is not None:
        raise RouterError(
            "Gloo Edge has no cookie session affinity for canaries",
            field="spec.analysis.sessionAffinity",
        )


def route_table_spec(canary: Canary, routes: Routes) -> Obj:
    """The RouteTable spec that routes ``routes``."""
    _check_features(canary, routes)
    if canary.spec.analysis_or_default.match:
        return {
            "routes": [
                _route(canary, _matchers(canary), routes.primary, routes.canary),
                _route(canary, [], 100, 0),
            ]
        }
    return {"routes": [_route(canary, [], routes.primary, routes.canary)]}


def route_table(canary: Canary, current: Obj | None, routes: Routes | None = None) -> Obj:
    """RouteTable ``<svc>``; with ``routes`` None (reconcile) the current weights are kept."""
    if routes is None:
        try:
            routes = read_routes(canary, current) or INITIAL_ROUTES
        except RouterError:  # routes nowhere (0/0): start over from primary 100 / canary 0
            routes = INITIAL_ROUTES
    return apex_object(
        canary,
        current,
        api_version=GATEWAY_API_VERSION,
        kind="RouteTable",
        spec=route_table_spec(canary, routes),
    )


def _weight(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)


def read_routes(canary: Canary, obj: Mapping[str, Any] | None) -> Routes | None:
    """The weights of ``routes[0]``; None if it routes to neither Upstream."""
    if not obj:
        return None
    table_routes = (obj.get("spec") or {}).get("routes") or ()
    if not table_routes:
        return None
    primary, canary_upstream = upstream_name(canary, "primary"), upstream_name(canary, "canary")
    multi = (table_routes[0].get("routeAction") or {}).get("multi") or {}
    p = c = 0
    seen = False
    for dest in multi.get("destinations") or ():
        name = ((dest.get("destination") or {}).get("upstream") or {}).get("name")
        if name == primary:
            p, seen = _weight(dest.get("weight")), True
        elif name == canary_upstream:
            c, seen = _weight(dest.get("weight")), True
    where = f'RouteTable "{canary.spec.service.name}"'
    return percentages(p, c, False, where) if seen else None
