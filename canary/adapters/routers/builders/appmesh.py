"""AWS App Mesh objects, computed without I/O (``appmesh`` = v1beta1, ``appmesh:v1beta2``).

Flagger's App Mesh routers (reference/flagger.md section 3) write, in the Canary's
namespace, for the Service ``<svc>``:

``appmesh`` (``appmesh.k8s.aws/v1beta1``; ``service.meshName`` is required)
  * VirtualNodes ``<svc>``, ``<svc>-primary`` and ``<svc>-canary``:
    ``{meshName, listeners: [{portMapping: {port, protocol}}],
    serviceDiscovery: {dns: {hostName: <svc>-primary.<ns>}}, backends}`` (the ``<svc>``
    node discovers the primary's host; the others their own);
  * VirtualServices ``<svc>.<ns>`` and ``<svc>-canary.<ns>``, each embedding its router:
    ``{meshName, virtualRouter: {name: <svc>|<svc>-canary, listeners}, routes}``.

``appmesh:v1beta2`` (``appmesh.k8s.aws/v1beta2``; the mesh comes from the namespace)
  * VirtualNodes ``<svc>-primary`` and ``<svc>-canary``: ``{listeners: [{portMapping,
    timeout}], serviceDiscovery: {dns: {hostname: <name>.<ns>.svc.cluster.local.}},
    podSelector: {matchLabels: {<label>: <value>-primary | <value>}}, backends}``;
  * VirtualRouters ``<svc>`` and ``<svc>-canary``: ``{listeners: [{portMapping}], routes}``;
  * VirtualServices ``<svc>`` and ``<svc>-canary``:
    ``{provider: {virtualRouter: {virtualRouterRef: {name: <router>}}}}``.

The weights live in the apex router's first route (``routes[0].http`` in v1beta1,
``routes[0].httpRoute`` in v1beta2), ``action.weightedTargets`` = ``[<svc>-canary: c,
<svc>-primary: p]``; the ``-canary`` router always sends everything to the canary.
A route matches the prefix of ``service.match[0].uri.prefix`` (default ``/``) and
carries ``service.retries`` as a retry policy (and, in v1beta2, ``service.timeout`` as a
per-request timeout, also on the node listeners).

A/B testing (``analysis.match``) turns the apex routes into ``<svc>-a`` (priority 10:
the headers of every match entry, all required, with the weights) and ``<svc>-b``
(priority 20: the primary only). App Mesh matches headers by exact, prefix, suffix or
regex value; other match fields are refused. App Mesh cannot mirror traffic or pin
sessions by cookie, so mirroring and session affinity are refused with a `RouterError`.
With ``service.hosts``, the apex VirtualService carries the App Mesh gateway
annotations (``gateway.appmesh.k8s.aws/*``).

Version-specific read-only fields (``awsName``, ``meshRef``, set by App Mesh's
admission webhook in v1beta2) are kept from the current object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from canary.adapters.routers.builders._common import (
    INITIAL_ROUTES,
    Obj,
    RouterError,
    managed_object,
    percentages,
)
from canary.core.observations import Routes
from canary.jsontree import json_copy
from canary.model.canary import TOTAL_WEIGHT, Canary
from canary.model.duration import DurationError, parse_duration

APPMESH_GROUP = "appmesh.k8s.aws"
APPMESH_VERSIONS = ("v1beta1", "v1beta2")
GATEWAY_ANNOTATION_PREFIX = "gateway.appmesh.k8s.aws"
HEADER_MATCH_KINDS = ("exact", "prefix", "regex", "suffix")
AB_PRIORITIES = (10, 20)
DEFAULT_RETRY_EVENTS = ("gateway-error",)
DEFAULT_PER_TRY_TIMEOUT_MS = 250
# v1beta2 keeps these from the current object: App Mesh's webhook and users set them.
KEPT_SPEC_FIELDS = ("awsName", "meshRef")

Role = Literal["apex", "primary", "canary"]


def api_version(version: str) -> str:
    if version not in APPMESH_VERSIONS:
        raise RouterError(
            f'unknown App Mesh API version "{version}"; expected one of '
            f"{', '.join(APPMESH_VERSIONS)}",
            field="spec.provider",
        )
    return f"{APPMESH_GROUP}/{version}"


def route_key(version: str) -> str:
    """Where a route's HTTP routing lives: ``http`` (v1beta1) or ``httpRoute`` (v1beta2)."""
    return "http" if version == "v1beta1" else "httpRoute"


# ---------------------------------------------------------------------------- names


def node_name(canary: Canary, role: Role) -> str:
    service = canary.spec.service
    return {"apex": service.name, "primary": service.primary_name, "canary": service.canary_name}[
        role
    ]


def router_name(canary: Canary, role: Literal["apex", "canary"]) -> str:
    """The virtual router (and, in v1beta2, the VirtualService) of ``role``."""
    service = canary.spec.service
    return service.name if role == "apex" else service.canary_name


def virtual_service_name(canary: Canary, role: Literal["apex", "canary"], version: str) -> str:
    """v1beta1 names the VirtualService by its host, ``<router>.<ns>``; v1beta2 by the router."""
    name = router_name(canary, role)
    return f"{name}.{canary.namespace}" if version == "v1beta1" else name


# --------------------------------------------------------------------------- pieces


def _protocol(canary: Canary) -> str:
    return "grpc" if "grpc" in canary.spec.service.port_name else "http"


def _port(canary: Canary, version: str) -> int:
    """v1beta1 listens on ``service.port``; v1beta2 on the numeric ``targetPort`` if any."""
    service = canary.spec.service
    target = service.target_port
    if version == "v1beta2" and isinstance(target, int) and not isinstance(target, bool):
        if target > 0:
            return target
    return service.port


def _port_mapping(canary: Canary, version: str) -> Obj:
    return {"port": _port(canary, version), "protocol": _protocol(canary)}


def _millis(text: Any) -> int | None:
    """Milliseconds in a Go duration (``"1m"``, ``"250ms"``); None when unset or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return int(parse_duration(text) * 1000)
    except DurationError:
        return None


def _duration(ms: int) -> Obj:
    return {"unit": "ms", "value": ms}


def _retry_policy(canary: Canary, version: str) -> Obj | None:
    """``service.retries`` as App Mesh's retry policy (one retry on gateway errors within
    250 ms by default, as Flagger)."""
    retries = canary.spec.service.retries
    if retries is None:
        return None
    per_try = _millis(retries.get("perTryTimeout"))
    timeout = DEFAULT_PER_TRY_TIMEOUT_MS if per_try is None else per_try
    attempts = retries.get("attempts")
    attempts = attempts if isinstance(attempts, int) and attempts > 0 else 1
    retry_on = retries.get("retryOn")
    events = str(retry_on).split(",") if retry_on else list(DEFAULT_RETRY_EVENTS)
    if version == "v1beta1":
        return {"perRetryTimeoutMillis": timeout, "maxRetries": attempts, "httpRetryEvents": events}
    return {
        "perRetryTimeout": _duration(timeout),
        "maxRetries": attempts,
        "httpRetryEvents": events,
    }


def _route_prefix(canary: Canary) -> str:
    """App Mesh matches a path prefix only: the first ``service.match``'s ``uri.prefix``."""
    match = canary.spec.service.match
    if match:
        uri = match[0].get("uri")
        if isinstance(uri, Mapping) and uri.get("prefix"):
            return str(uri["prefix"])
    return "/"


def header_matches(canary: Canary) -> list[Obj]:
    """``analysis.match`` as App Mesh route headers: every entry's headers, all required."""
    headers: list[Obj] = []
    for index, entry in enumerate(canary.spec.analysis_or_default.match):
        where = f"spec.analysis.match[{index}]"
        for key in entry:
            if key not in ("headers", "name"):
                raise RouterError(
                    f'App Mesh routes match request headers only, not "{key}"', field=where
                )
        rules = entry.get("headers") or {}
        if not isinstance(rules, Mapping):
            raise RouterError("expected an object of header names to string matches", field=where)
        for name, rule in rules.items():
            kinds = [k for k in HEADER_MATCH_KINDS if isinstance(rule, Mapping) and rule.get(k)]
            extra = (
                [k for k in rule if k not in HEADER_MATCH_KINDS]
                if isinstance(rule, Mapping)
                else []
            )
            if not kinds or extra:
                raise RouterError(
                    f"App Mesh matches a header by {', '.join(HEADER_MATCH_KINDS)}",
                    field=f"{where}.headers.{name}",
                )
            headers.append({"name": str(name), "match": {k: str(rule[k]) for k in kinds}})
    return headers


def gateway_annotations(canary: Canary) -> dict[str, str]:
    """The App Mesh gateway's annotations for the apex VirtualService when hosts are set."""
    service = canary.spec.service
    if not service.hosts:
        return {}
    annotations = {
        f"{GATEWAY_ANNOTATION_PREFIX}/expose": "true",
        # Flagger joins the hosts with a trailing comma; the gateway splits on commas.
        f"{GATEWAY_ANNOTATION_PREFIX}/domain": "".join(f"{h}," for h in service.hosts),
    }
    if service.timeout:
        annotations[f"{GATEWAY_ANNOTATION_PREFIX}/timeout"] = service.timeout
    attempts = (service.retries or {}).get("attempts")
    if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 0:
        annotations[f"{GATEWAY_ANNOTATION_PREFIX}/retries"] = str(attempts)
    return annotations


def _kept(current: Mapping[str, Any] | None) -> Obj:
    spec = (current or {}).get("spec") or {}
    return {k: json_copy(spec[k]) for k in KEPT_SPEC_FIELDS if k in spec}


def _target(name: str, weight: int, version: str) -> Obj:
    if version == "v1beta1":
        return {"virtualNodeName": name, "weight": weight}
    return {"virtualNodeRef": {"name": name}, "weight": weight}


def _target_name(target: Mapping[str, Any]) -> str:
    if "virtualNodeRef" in target:
        return str((target.get("virtualNodeRef") or {}).get("name", ""))
    return str(target.get("virtualNodeName", ""))


def _http_route(canary: Canary, version: str, targets: list[Obj], headers: list[Obj]) -> Obj:
    match: Obj = {"prefix": _route_prefix(canary)}
    if headers:
        match["headers"] = headers
    route: Obj = {"match": match}
    timeout = _millis(canary.spec.service.timeout)
    if version == "v1beta2" and timeout is not None:
        route["timeout"] = {"perRequest": _duration(timeout)}
    retry = _retry_policy(canary, version)
    if retry is not None:
        route["retryPolicy"] = retry
    route["action"] = {"weightedTargets": targets}
    return route


def _weighted(canary: Canary, routes: Routes, version: str) -> list[Obj]:
    service = canary.spec.service
    return [
        _target(service.canary_name, routes.canary, version),
        _target(service.primary_name, routes.primary, version),
    ]


def router_routes(
    canary: Canary, role: Literal["apex", "canary"], routes: Routes, version: str
) -> list[Obj]:
    """The routes of the apex or ``-canary`` router (A/B form on the apex with ``match``)."""
    key = route_key(version)
    if role == "canary":
        everything = _weighted(canary, Routes(0, TOTAL_WEIGHT), version)
        return [
            {"name": router_name(canary, role), key: _http_route(canary, version, everything, [])}
        ]
    name = canary.spec.service.name
    if not canary.spec.analysis_or_default.match:
        weighted = _weighted(canary, routes, version)
        return [{"name": name, key: _http_route(canary, version, weighted, [])}]
    primary_only = [_target(canary.spec.service.primary_name, TOTAL_WEIGHT, version)]
    return [
        {
            "name": f"{name}-a",
            "priority": AB_PRIORITIES[0],
            key: _http_route(
                canary, version, _weighted(canary, routes, version), header_matches(canary)
            ),
        },
        {
            "name": f"{name}-b",
            "priority": AB_PRIORITIES[1],
            key: _http_route(canary, version, primary_only, []),
        },
    ]


def _check(canary: Canary, routes: Routes | None, version: str) -> None:
    api_version(version)
    analysis = canary.spec.analysis_or_default
    if analysis.mirror or (routes is not None and routes.mirrored):
        raise RouterError("App Mesh cannot mirror traffic", field="spec.analysis.mirror")
    if analysis.session_affinity is not None:
        raise RouterError(
            "App Mesh routes have no cookie-based session affinity",
            field="spec.analysis.sessionAffinity",
        )
    if version == "v1beta1" and not canary.spec.service.mesh_name:
        raise RouterError(
            "the appmesh provider needs the App Mesh mesh name", field="spec.service.meshName"
        )


def _kept_routes(canary: Canary, current: Obj | None, version: str) -> Routes:
    try:
        return read_routes(canary, current, version=version) or INITIAL_ROUTES
    except RouterError:  # routes nowhere (0/0): start over from primary 100 / canary 0
        return INITIAL_ROUTES


# ---------------------------------------------------------------------------- nodes


def _backends(canary: Canary, version: str) -> list[Obj]:
    out: list[Obj] = []
    for backend in canary.spec.service.backends:
        if version == "v1beta1":
            out.append({"virtualService": {"virtualServiceName": backend}})
        elif backend.startswith("arn:aws"):
            out.append({"virtualService": {"virtualServiceARN": backend}})
        else:
            out.append({"virtualService": {"virtualServiceRef": {"name": backend}}})
    return out


def virtual_node(
    canary: Canary,
    role: Role,
    current: Obj | None,
    *,
    version: str,
    selector: tuple[str, str] = ("app", ""),
) -> Obj:
    """VirtualNode ``<svc>`` (v1beta1 only), ``<svc>-primary`` or ``<svc>-canary``.

    ``selector`` is the target's pod label and value (v1beta2's ``podSelector``: the
    primary's pods carry ``<value>-primary``, the canary's ``<value>``).
    """
    _check(canary, None, version)
    if role == "apex" and version != "v1beta1":
        raise RouterError("App Mesh v1beta2 has no apex virtual node")
    service = canary.spec.service
    ns = canary.namespace
    listener: Obj = {"portMapping": _port_mapping(canary, version)}
    if version == "v1beta1":
        host_of = service.primary_name if role in ("apex", "primary") else service.canary_name
        spec: Obj = {
            "meshName": service.mesh_name,
            "listeners": [listener],
            "serviceDiscovery": {"dns": {"hostName": f"{host_of}.{ns}"}},
        }
    else:
        timeout = _millis(service.timeout)
        if timeout is not None:
            listener["timeout"] = {"http": {"perRequest": _duration(timeout)}}
        label, value = selector
        value = value or canary.spec.target_ref.name
        pods = f"{value}-primary" if role == "primary" else value
        spec = {
            **_kept(current),
            "listeners": [listener],
            "serviceDiscovery": {
                "dns": {"hostname": f"{node_name(canary, role)}.{ns}.svc.cluster.local."}
            },
            "podSelector": {"matchLabels": {label: pods}},
        }
    backends = _backends(canary, version)
    if backends:
        spec["backends"] = backends
    return managed_object(
        canary,
        current,
        api_version=api_version(version),
        kind="VirtualNode",
        name=node_name(canary, role),
        spec=spec,
        mark_for_flux=False,
    )


# ------------------------------------------------------------------ routers, services


def virtual_router(
    canary: Canary,
    role: Literal["apex", "canary"],
    current: Obj | None,
    routes: Routes | None = None,
    *,
    version: str = "v1beta2",
) -> Obj:
    """v1beta2 VirtualRouter ``<svc>`` or ``<svc>-canary``; ``routes`` None keeps the weights."""
    _check(canary, routes, version)
    if version != "v1beta2":
        raise RouterError("App Mesh v1beta1 embeds its virtual router in the VirtualService")
    if routes is None:
        routes = _kept_routes(canary, current, version)
    spec = {
        **_kept(current),
        "listeners": [{"portMapping": _port_mapping(canary, version)}],
        "routes": router_routes(canary, role, routes, version),
    }
    return managed_object(
        canary,
        current,
        api_version=api_version(version),
        kind="VirtualRouter",
        name=router_name(canary, role),
        spec=spec,
        mark_for_flux=False,
    )


def virtual_service(
    canary: Canary,
    role: Literal["apex", "canary"],
    current: Obj | None,
    routes: Routes | None = None,
    *,
    version: str,
) -> Obj:
    """VirtualService ``<svc>.<ns>`` / ``<svc>-canary.<ns>`` (v1beta1, with its router and
    routes; ``routes`` None keeps the weights) or ``<svc>`` / ``<svc>-canary`` (v1beta2,
    pointing at the VirtualRouter of the same name)."""
    _check(canary, routes, version)
    name = router_name(canary, role)
    if version == "v1beta1":
        if routes is None:
            routes = _kept_routes(canary, current, version)
        spec: Obj = {
            "meshName": canary.spec.service.mesh_name,
            "virtualRouter": {
                "name": name,
                "listeners": [{"portMapping": _port_mapping(canary, version)}],
            },
            "routes": router_routes(canary, role, routes, version),
        }
    else:
        spec = {
            **_kept(current),
            "provider": {"virtualRouter": {"virtualRouterRef": {"name": name}}},
        }
    return managed_object(
        canary,
        current,
        api_version=api_version(version),
        kind="VirtualService",
        name=virtual_service_name(canary, role, version),
        spec=spec,
        annotations=gateway_annotations(canary) if role == "apex" else None,
        mark_for_flux=False,
    )


def read_routes(canary: Canary, obj: Mapping[str, Any] | None, *, version: str) -> Routes | None:
    """The weights of the apex's first route (v1beta1 VirtualService or v1beta2
    VirtualRouter); None when it has no route to either node."""
    if not obj:
        return None
    service = canary.spec.service
    where = f'{obj.get("kind", "VirtualRouter")} "{(obj.get("metadata") or {}).get("name", "")}"'
    first = next(iter((obj.get("spec") or {}).get("routes") or ()), None)
    if not isinstance(first, Mapping):
        return None
    http = first.get(route_key(version)) or {}
    p = c = 0
    seen = False
    for target in (http.get("action") or {}).get("weightedTargets") or ():
        weight = target.get("weight", 0)
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise RouterError(f"{where}: weight {weight!r} is not a number")
        name = _target_name(target)
        if name == service.primary_name:
            p, seen = weight, True
        elif name == service.canary_name:
            c, seen = weight, True
    return percentages(p, c, False, where) if seen else None
