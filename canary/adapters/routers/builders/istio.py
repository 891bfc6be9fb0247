"""Istio's DestinationRules and VirtualService, computed without I/O.

Objects (reference/flagger.md section 3, Istio):

* DestinationRules ``<svc>-primary`` and ``<svc>-canary``:
  ``spec = {host: <name>, trafficPolicy: service.trafficPolicy}``.
* VirtualService ``<svc>``: ``hosts`` = ``service.hosts`` + ``<svc>`` (unless present
  or ``*``), ``gateways`` = ``service.gateways`` or ``[mesh]`` (both omitted for a
  delegate VirtualService), and ``http[0]`` with ``service.match``, ``rewrite``,
  ``timeout``, ``retries``, ``corsPolicy``, ``headers`` and the weighted ``route`` to
  ``<svc>-primary`` / ``<svc>-canary``. ``appProtocol: tcp`` writes ``tcp[0]`` instead.

Routing states layered on that route:

* mirroring: ``mirror.host = <svc>-canary`` and ``mirrorPercentage.value = mirrorWeight``
  (when > 0, else Istio mirrors everything);
* A/B testing: two routes, ``[analysis.match x service.match]`` with the weights and
  ``[service.match]`` to the primary only;
* session affinity (`cookies`): ``Set-Cookie`` on the canary destination and a
  ``sticky-route`` in front that sends the cookie's owners to the canary.

Everything is rebuilt from the Canary and a routing state. Reconciling reads that
state back from the current object first (`read_state`), so it never resets
weights, mirroring or cookies in the middle of a run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from canary.adapters.routers.builders._common import (
    INITIAL_ROUTES,
    Obj,
    RouterError,
    apex_object,
    drop_none,
    managed_object,
    percentages,
)
from canary.adapters.routers.builders.cookies import (
    COOKIE_HEADER,
    PRIMARY_STICKY_ROUTE_NAME,
    SET_COOKIE_HEADER,
    STICKY_ROUTE_NAME,
    CookieFactory,
    SessionCookies,
    canary_set_cookie,
    cookie_of_set_cookie,
    cookie_regex,
    expire_set_cookie,
    is_expiry,
    next_cookies,
    primary_set_cookie,
    random_cookie_value,
)
from canary.core.observations import Routes
from canary.jsontree import json_copy
from canary.model.canary import Canary, SessionAffinity

ISTIO_GROUP = "networking.istio.io"
DEFAULT_ISTIO_VERSION = (
    "v1beta1"  # what Flagger writes; Istio serves v1, v1beta1 and v1alpha3 alike
)
ISTIO_VERSIONS = ("v1", "v1beta1", "v1alpha3")


def istio_api_version(version: str = DEFAULT_ISTIO_VERSION) -> str:
    if version not in ISTIO_VERSIONS:
        raise RouterError(
            f'unknown Istio API version "{version}"; expected one of {", ".join(ISTIO_VERSIONS)}'
        )
    return f"{ISTIO_GROUP}/{version}"


@dataclass(frozen=True, slots=True)
class MeshState:
    """What a mesh routing object routes: weights, mirroring and session cookies."""

    routes: Routes = INITIAL_ROUTES
    cookies: SessionCookies = field(default_factory=SessionCookies)

    @staticmethod
    def kept(read_state: StateReader, canary: Canary, current: Obj | None) -> MeshState:
        """The state to keep when reconciling: the current one, or the initial one if
        unreadable. ``read_state`` reads the provider's object (VirtualService, HTTPRoute)."""
        try:
            return read_state(canary, current) or MeshState()
        except RouterError:  # routes nowhere (0/0): start over from primary 100 / canary 0
            return MeshState()

    @staticmethod
    def wanted(
        read_state: StateReader,
        canary: Canary,
        current: Obj | None,
        routes: Routes | None,
        affinity: SessionAffinity | None,
        new_cookie: CookieFactory,
    ) -> MeshState:
        """The state to write: with ``routes`` None (reconcile) the current one (:meth:`kept`),
        else ``routes`` with the session cookies moved on (``affinity`` None: none are used)."""
        old = MeshState.kept(read_state, canary, current)
        if routes is None:
            return old
        return MeshState(routes, next_cookies(affinity, old.cookies, routes.canary, new_cookie))

    @staticmethod
    def routes_of(state: MeshState | None) -> Routes | None:
        return state.routes if state is not None else None

    @staticmethod
    def cookies_of(state: MeshState | None) -> SessionCookies:
        return state.cookies if state is not None else SessionCookies()


#: How a provider's builder reads the state back from its routing object.
StateReader = Callable[[Canary, Mapping[str, Any] | None], MeshState | None]


def is_tcp(canary: Canary) -> bool:
    return (canary.spec.service.app_protocol or "").lower() == "tcp"


# ------------------------------------------------------------------ destination rules


def destination_rule(
    canary: Canary, name: str, current: Obj | None, *, version: str = DEFAULT_ISTIO_VERSION
) -> Obj:
    """DestinationRule ``name`` (``<svc>-primary`` or ``<svc>-canary``)."""
    spec = drop_none({"host": name, "trafficPolicy": canary.spec.service.traffic_policy})
    return managed_object(
        canary,
        current,
        api_version=istio_api_version(version),
        kind="DestinationRule",
        name=name,
        spec=spec,
        mark_for_flux=False,
    )


# -------------------------------------------------------------------- virtual service


def _hosts(canary: Canary) -> list[str]:
    service = canary.spec.service
    hosts = list(service.hosts)
    if service.name not in hosts and "*" not in hosts:
        hosts.append(service.name)
    return hosts


def _gateways(canary: Canary) -> list[str]:
    return list(canary.spec.service.gateways) or ["mesh"]


def _destination(canary: Canary, host: str, weight: int) -> Obj:
    service = canary.spec.service
    destination: Obj = {"host": host}
    via_gateway = bool(service.gateways) and service.gateways[0] != "mesh"
    if service.port_discovery and (via_gateway or service.delegation):
        destination["port"] = {"number": service.port}
    return {"destination": destination, "weight": weight}


def _route_settings(canary: Canary) -> Obj:
    """The per-route fields copied from ``spec.service`` (everything but match/route)."""
    service = canary.spec.service
    rewrite = None
    if service.rewrite:
        rewrite = {
            k: service.rewrite[k] for k in ("uri", "authority") if service.rewrite.get(k)
        } or None
    return drop_none(
        {
            "rewrite": rewrite,
            "timeout": service.timeout,
            "retries": service.retries,
            "corsPolicy": service.cors_policy,
            "headers": service.headers,
        }
    )


def merge_matches(
    first: Sequence[Mapping[str, Any]], common: Sequence[Mapping[str, Any]]
) -> list[Obj]:
    """Every ``first`` match combined with every ``common`` one (headers and sourceLabels of ``first`` win)."""
    if not common:
        return [json_copy(dict(m)) for m in first]
    merged = []
    for a in first:
        for c in common:
            m = json_copy(dict(c))
            if a.get("headers"):
                m["headers"] = json_copy(a["headers"])
            if a.get("sourceLabels"):
                m["sourceLabels"] = json_copy(a["sourceLabels"])
            merged.append(m)
    return merged


def _http_route(
    canary: Canary, match: Sequence[Mapping[str, Any]], route: list[Obj], name: str | None = None
) -> Obj:
    out: Obj = {}
    if name:
        out["name"] = name
    if match:
        out["match"] = [json_copy(dict(m)) for m in match]
    out.update(_route_settings(canary))
    out["route"] = route
    return out


def _add_response_header(target: Obj, header: str, value: str) -> None:
    headers = target.setdefault("headers", {})
    response = headers.setdefault("response", {})
    response.setdefault("add", {})[header] = value


def _cookie_match(cookie: str) -> Obj:
    return {"headers": {COOKIE_HEADER: {"regex": cookie_regex(cookie)}}}


def _http(canary: Canary, state: MeshState) -> list[Obj]:
    service = canary.spec.service
    analysis = canary.spec.analysis_or_default
    primary, canary_svc = service.primary_name, service.canary_name
    routes = state.routes

    if (
        analysis.match
    ):  # A/B testing: matching requests follow the weights, the rest stay on the primary
        if routes.mirrored:
            raise RouterError(
                "mirroring cannot be combined with A/B testing (analysis.match)",
                field="spec.analysis.mirror",
            )
        return [
            _http_route(
                canary,
                merge_matches(analysis.match, service.match),
                [
                    _destination(canary, primary, routes.primary),
                    _destination(canary, canary_svc, routes.canary),
                ],
            ),
            _http_route(canary, service.match, [_destination(canary, primary, 100)]),
        ]

    primary_dest = _destination(canary, primary, routes.primary)
    canary_dest = _destination(canary, canary_svc, routes.canary)
    cookies = state.cookies
    if cookies.canary:
        _add_response_header(
            canary_dest, SET_COOKIE_HEADER, canary_set_cookie(canary, cookies.canary)
        )
    if cookies.primary:
        _add_response_header(
            primary_dest, SET_COOKIE_HEADER, primary_set_cookie(canary, cookies.primary)
        )
    weighted = _http_route(canary, service.match, [primary_dest, canary_dest])
    if routes.mirrored:
        weighted["mirror"] = {"host": canary_svc}
        if analysis.mirror_weight > 0:
            weighted["mirrorPercentage"] = {"value": float(analysis.mirror_weight)}

    http: list[Obj] = []
    if cookies.canary:
        http.append(
            _http_route(
                canary,
                merge_matches([_cookie_match(cookies.canary)], service.match),
                [_destination(canary, primary, 0), _destination(canary, canary_svc, 100)],
                STICKY_ROUTE_NAME,
            )
        )
    elif cookies.previous:
        expiring = _http_route(
            canary,
            merge_matches([_cookie_match(cookies.previous)], service.match),
            [
                _destination(canary, primary, routes.primary),
                _destination(canary, canary_svc, routes.canary),
            ],
            STICKY_ROUTE_NAME,
        )
        _add_response_header(expiring, SET_COOKIE_HEADER, expire_set_cookie(cookies.previous))
        http.append(expiring)
    if cookies.primary:
        http.append(
            _http_route(
                canary,
                merge_matches([_cookie_match(cookies.primary)], service.match),
                [_destination(canary, primary, 100), _destination(canary, canary_svc, 0)],
                PRIMARY_STICKY_ROUTE_NAME,
            )
        )
    http.append(weighted)
    return http


def _tcp(canary: Canary, state: MeshState) -> list[Obj]:
    service = canary.spec.service
    route: Obj = {}
    ports = [
        {"port": m["port"]}
        for m in service.match
        if isinstance(m.get("port"), int) and m["port"] > 0
    ]
    if ports:
        route["match"] = ports
    route["route"] = [
        _destination(canary, service.primary_name, state.routes.primary),
        _destination(canary, service.canary_name, state.routes.canary),
    ]
    return [route]


def virtual_service_spec(canary: Canary, state: MeshState) -> Obj:
    """The VirtualService spec that routes ``state``."""
    service = canary.spec.service
    if service.delegation and (service.hosts or service.gateways):
        field_name = "spec.service.hosts" if service.hosts else "spec.service.gateways"
        raise RouterError(
            "a delegate VirtualService (service.delegation) cannot have hosts or gateways",
            field=field_name,
        )
    if state.routes.mirrored and is_tcp(canary):
        raise RouterError(
            "Istio cannot mirror TCP traffic (appProtocol: tcp)", field="spec.analysis.mirror"
        )
    spec: Obj = {}
    if not service.delegation:
        spec["hosts"] = _hosts(canary)
        spec["gateways"] = _gateways(canary)
    if is_tcp(canary):
        spec["tcp"] = _tcp(canary, state)
    else:
        spec["http"] = _http(canary, state)
    return spec


def virtual_service(
    canary: Canary,
    current: Obj | None,
    routes: Routes | None = None,
    *,
    version: str = DEFAULT_ISTIO_VERSION,
    new_cookie: CookieFactory = random_cookie_value,
) -> Obj:
    """VirtualService ``<svc>``.

    With ``routes`` None (reconcile) the routing state of ``current`` is kept; else
    the object routes ``routes`` and the session cookies move on accordingly.
    """
    analysis = canary.spec.analysis_or_default
    affinity = analysis.session_affinity if not analysis.match and not is_tcp(canary) else None
    state = MeshState.wanted(read_state, canary, current, routes, affinity, new_cookie)
    return apex_object(
        canary,
        current,
        api_version=istio_api_version(version),
        kind="VirtualService",
        spec=virtual_service_spec(canary, state),
    )


# --------------------------------------------------------------------------- reading


def _weights(
    route: Sequence[Mapping[str, Any]], primary: str, canary_svc: str
) -> tuple[int, int, bool]:
    p = c = 0
    seen = False
    for dest in route:
        host = (dest.get("destination") or {}).get("host")
        weight = int(dest.get("weight") or 0)
        if host == primary:
            p, seen = weight, True
        elif host == canary_svc:
            c, seen = weight, True
    return p, c, seen


def _set_cookie(target: Mapping[str, Any]) -> str:
    add = (((target.get("headers") or {}).get("response") or {}).get("add")) or {}
    return str(add.get(SET_COOKIE_HEADER, ""))


def read_state(canary: Canary, obj: Mapping[str, Any] | None) -> MeshState | None:
    """The routing state of a VirtualService; None if it routes to neither service."""
    if not obj:
        return None
    spec = obj.get("spec") or {}
    if is_tcp(canary):
        return _tcp_state(canary, spec)
    service = canary.spec.service
    weighted, sticky = _weighted_and_sticky(spec.get("http") or (), service.canary_name)
    if weighted is None:
        return None
    p, c, _ = _weights(weighted.get("route") or (), service.primary_name, service.canary_name)
    mirror = weighted.get("mirror") or {}
    mirrored = mirror.get("host") == service.canary_name
    return MeshState(Routes(p, c, mirrored), _cookies(canary, weighted, sticky))


def _tcp_state(canary: Canary, spec: Mapping[str, Any]) -> MeshState | None:
    """The weights of the first TCP route to either service (TCP has no cookies)."""
    service = canary.spec.service
    for tcp in spec.get("tcp") or ():
        p, c, seen = _weights(tcp.get("route") or (), service.primary_name, service.canary_name)
        if seen:
            return MeshState(percentages(p, c, False, f'VirtualService "{service.name}"'))
    return None


def _weighted_and_sticky(
    routes: Iterable[Mapping[str, Any]], canary_svc: str
) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """The first HTTP route that sends to the canary, and the canary's sticky route (the
    primary's sticky route is neither: it only ever routes to the primary)."""
    weighted: Mapping[str, Any] | None = None
    sticky: Mapping[str, Any] | None = None
    for http in routes:
        name = http.get("name")
        if name == STICKY_ROUTE_NAME:
            sticky = http
            continue
        if name == PRIMARY_STICKY_ROUTE_NAME:
            continue
        hosts = {(d.get("destination") or {}).get("host") for d in http.get("route") or ()}
        if weighted is None and canary_svc in hosts:
            weighted = http
    return weighted, sticky


def _cookies(
    canary: Canary, weighted: Mapping[str, Any], sticky: Mapping[str, Any] | None
) -> SessionCookies:
    """The session cookies the weighted route hands out, and the one the sticky route
    expires (kept only until the canary hands out a new one)."""
    service = canary.spec.service
    canary_cookie = primary_cookie = previous = ""
    for dest in weighted.get("route") or ():
        host = (dest.get("destination") or {}).get("host")
        value = _set_cookie(dest)
        if value and host == service.canary_name:
            canary_cookie = cookie_of_set_cookie(value)
        elif value and host == service.primary_name:
            primary_cookie = cookie_of_set_cookie(value)
    if sticky is not None and not canary_cookie:
        value = _set_cookie(sticky)
        if value and is_expiry(value):
            previous = cookie_of_set_cookie(value)
    return SessionCookies(canary_cookie, previous, primary_cookie)


def read_routes(canary: Canary, obj: Mapping[str, Any] | None) -> Routes | None:
    """The weights a VirtualService routes (None if it routes to neither service)."""
    return MeshState.routes_of(read_state(canary, obj))


def read_cookies(canary: Canary, obj: Mapping[str, Any] | None) -> SessionCookies:
    return MeshState.cookies_of(read_state(canary, obj))
