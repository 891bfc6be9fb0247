"""The Gateway API HTTPRoute, computed without I/O (``gatewayapi:v1``, ``gatewayapi:v1beta1``, ``linkerd``).

HTTPRoute ``<svc>`` in the Canary's namespace (reference/flagger.md section 3):

* ``parentRefs`` = ``service.gatewayRefs``; for ``linkerd`` (Gateway API for service
  meshes, "GAMMA") the default parent is the apex Service itself:
  ``{group: "", kind: Service, name: <svc>, port: <port>}``;
* ``hostnames`` = ``service.hosts``;
* ``rules[0]``: ``matches`` = ``service.match`` translated from Istio's shape (else
  ``PathPrefix /``), ``filters`` (header modifiers, URL rewrite, the static
  ``service.mirror`` filters, CORS), ``backendRefs`` to ``<svc>-primary`` and
  ``<svc>-canary`` with their weights, ``timeouts`` (``request`` = ``service.timeout``,
  ``backendRequest`` = ``service.backendTimeout``).

Routing states: mirroring adds a ``RequestMirror`` filter to ``<svc>-canary``; A/B
testing narrows ``rules[0]`` to ``[analysis.match x matches]`` and adds a rule that
sends the other requests to the primary; session affinity puts ``Set-Cookie`` on
the canary backend and a sticky rule matching the cookie in front. As for Istio,
reconciling keeps the state read back from the current object.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from canary.adapters.routers.builders._common import (
    Obj,
    RouterError,
    apex_object,
    drop_none,
    percentages,
)
from canary.adapters.routers.builders.cookies import (
    COOKIE_HEADER,
    SET_COOKIE_HEADER,
    CookieFactory,
    SessionCookies,
    canary_set_cookie,
    cookie_of_set_cookie,
    cookie_regex,
    expire_set_cookie,
    is_expiry,
    primary_set_cookie,
    random_cookie_value,
)
from canary.adapters.routers.builders.istio import MeshState
from canary.core.observations import Routes
from canary.model.canary import Canary
from canary.model.duration import DurationError, parse_duration

GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_VERSIONS = ("v1", "v1beta1")

_PATH_TYPES = {"exact": "Exact", "prefix": "PathPrefix", "regex": "RegularExpression"}
_VALUE_TYPES = {"exact": "Exact", "regex": "RegularExpression"}
_IGNORED_MATCH_KEYS = frozenset({"name"})


def gateway_api_version(version: str) -> str:
    if version not in GATEWAY_VERSIONS:
        raise RouterError(
            f'unknown Gateway API version "{version}"; expected one of {", ".join(GATEWAY_VERSIONS)}'
        )
    return f"{GATEWAY_GROUP}/{version}"


# ---------------------------------------------------------------------------- matches


def _string_match(rule: Any, kinds: Mapping[str, str], where: str) -> tuple[str, str]:
    if isinstance(rule, Mapping):
        for key, kind in kinds.items():
            if key in rule and rule[key] not in (None, ""):
                return kind, str(rule[key])
    raise RouterError(
        f"the Gateway API supports only {' or '.join(kinds)} matches here", field=where
    )


def translate_matches(matches: Sequence[Mapping[str, Any]], field: str) -> list[Obj]:
    """Istio ``HTTPMatchRequest``s as Gateway API ``HTTPRouteMatch``es."""
    out: list[Obj] = []
    for index, match in enumerate(matches):
        base = f"{field}[{index}]"
        result: Obj = {}
        for key, value in match.items():
            where = f"{base}.{key}"
            if key in _IGNORED_MATCH_KEYS or value in (None, False, {}, []):
                continue
            if key == "uri":
                kind, text = _string_match(value, _PATH_TYPES, where)
                result["path"] = {"type": kind, "value": text}
            elif key == "method":
                kind, text = _string_match(value, {"exact": "Exact"}, where)
                result["method"] = text
            elif key in ("headers", "queryParams"):
                if not isinstance(value, Mapping):
                    raise RouterError("expected a map of name to string match", field=where)
                items = []
                for name in sorted(value):
                    kind, text = _string_match(value[name], _VALUE_TYPES, f"{where}.{name}")
                    items.append({"type": kind, "name": name, "value": text})
                result[key] = items
            else:
                raise RouterError(f'the Gateway API cannot match on "{key}"', field=where)
        if result:
            out.append(result)
    return out


def _service_matches(canary: Canary) -> list[Obj]:
    matches = translate_matches(canary.spec.service.match, "spec.service.match")
    return matches or [{"path": {"type": "PathPrefix", "value": "/"}}]


def merge_matches(
    first: Sequence[Mapping[str, Any]], common: Sequence[Mapping[str, Any]]
) -> list[Obj]:
    """Every ``first`` match combined with every ``common`` one (headers and query params of ``first`` win)."""
    if not first:
        return [copy.deepcopy(dict(m)) for m in common]
    if not common:
        return [copy.deepcopy(dict(m)) for m in first]
    merged = []
    for a in first:
        for c in common:
            m = copy.deepcopy(dict(c))
            if a.get("headers"):
                m["headers"] = copy.deepcopy(a["headers"])
            if a.get("queryParams"):
                m["queryParams"] = copy.deepcopy(a["queryParams"])
            merged.append(m)
    return merged


# ---------------------------------------------------------------------------- filters


def _header_modifier(ops: Mapping[str, Any] | None, where: str) -> Obj | None:
    if not ops:
        return None
    out: Obj = {}
    for key in ("set", "add"):
        values = ops.get(key) or {}
        if not isinstance(values, Mapping):
            raise RouterError("expected a map of header name to value", field=f"{where}.{key}")
        if values:
            out[key] = [{"name": n, "value": str(values[n])} for n in sorted(values)]
    remove = ops.get("remove") or []
    if remove:
        out["remove"] = [str(r) for r in remove]
    return out or None


def _cors_filter(cors: Mapping[str, Any]) -> Obj:
    where = "spec.service.corsPolicy"
    origins: list[str] = []
    for index, origin in enumerate(cors.get("allowOrigins") or ()):
        if not isinstance(origin, Mapping) or "exact" not in origin:
            raise RouterError(
                "the Gateway API CORS filter accepts exact origins only",
                field=f"{where}.allowOrigins[{index}]",
            )
        origins.append(str(origin["exact"]))
    origins.extend(str(o) for o in cors.get("allowOrigin") or ())
    max_age: int | None = None
    if cors.get("maxAge"):
        try:
            max_age = round(parse_duration(str(cors["maxAge"])))
        except DurationError as exc:
            raise RouterError(str(exc), field=f"{where}.maxAge") from None
    body = drop_none(
        {
            "allowOrigins": origins,
            "allowMethods": list(cors.get("allowMethods") or []),
            "allowHeaders": list(cors.get("allowHeaders") or []),
            "exposeHeaders": list(cors.get("exposeHeaders") or []),
            "maxAge": max_age,
            "allowCredentials": cors.get("allowCredentials")
            if cors.get("allowCredentials")
            else None,
        }
    )
    return {"type": "CORS", "cors": body}


def rule_filters(canary: Canary) -> list[Obj]:
    """The filters every rule carries, from ``spec.service``."""
    service = canary.spec.service
    filters: list[Obj] = []
    headers = service.headers or {}
    request = _header_modifier(headers.get("request"), "spec.service.headers.request")
    if request:
        filters.append({"type": "RequestHeaderModifier", "requestHeaderModifier": request})
    response = _header_modifier(headers.get("response"), "spec.service.headers.response")
    if response:
        filters.append({"type": "ResponseHeaderModifier", "responseHeaderModifier": response})
    if service.rewrite:
        rewrite: Obj = {}
        if service.rewrite.get("authority"):
            rewrite["hostname"] = str(service.rewrite["authority"])
        if service.rewrite.get("uri"):
            uri = str(service.rewrite["uri"])
            if service.rewrite.get("type") == "ReplacePrefixMatch":
                rewrite["path"] = {"type": "ReplacePrefixMatch", "replacePrefixMatch": uri}
            else:
                rewrite["path"] = {"type": "ReplaceFullPath", "replaceFullPath": uri}
        if rewrite:
            filters.append({"type": "URLRewrite", "urlRewrite": rewrite})
    for mirror in service.mirror:
        filters.append({"type": "RequestMirror", "requestMirror": copy.deepcopy(dict(mirror))})
    if service.cors_policy:
        filters.append(_cors_filter(service.cors_policy))
    return filters


def _add_set_cookie(filters: list[Obj], value: str) -> list[Obj]:
    """``filters`` with ``Set-Cookie: value`` added (one ResponseHeaderModifier at most)."""
    out = copy.deepcopy(filters)
    for f in out:
        if f.get("type") == "ResponseHeaderModifier":
            modifier = f.setdefault("responseHeaderModifier", {})
            modifier["add"] = [
                *modifier.get("add", []),
                {"name": SET_COOKIE_HEADER, "value": value},
            ]
            return out
    out.append(
        {
            "type": "ResponseHeaderModifier",
            "responseHeaderModifier": {"add": [{"name": SET_COOKIE_HEADER, "value": value}]},
        }
    )
    return out


def _mirror_filter(canary: Canary) -> Obj:
    service = canary.spec.service
    return {
        "type": "RequestMirror",
        "requestMirror": {
            "backendRef": {
                "group": "",
                "kind": "Service",
                "name": service.canary_name,
                "port": service.port,
            }
        },
    }


# ------------------------------------------------------------------------------ rules


def _backend(canary: Canary, name: str, weight: int, set_cookie: str = "") -> Obj:
    ref: Obj = {
        "group": "",
        "kind": "Service",
        "name": name,
        "port": canary.spec.service.port,
        "weight": weight,
    }
    if set_cookie:
        ref["filters"] = _add_set_cookie([], set_cookie)
    return ref


def _timeouts(canary: Canary) -> Obj | None:
    service = canary.spec.service
    return (
        drop_none({"request": service.timeout, "backendRequest": service.backend_timeout}) or None
    )


def _rule(canary: Canary, matches: list[Obj], filters: list[Obj], backends: list[Obj]) -> Obj:
    return drop_none(
        {
            "matches": matches,
            "filters": filters,
            "backendRefs": backends,
            "timeouts": _timeouts(canary),
        }
    )


def _cookie_match(cookie: str) -> Obj:
    return {
        "headers": [
            {"type": "RegularExpression", "name": COOKIE_HEADER, "value": cookie_regex(cookie)}
        ]
    }


def parent_refs(canary: Canary, *, mesh: bool) -> list[Obj]:
    service = canary.spec.service
    if service.gateway_refs:
        return [drop_none(dict(ref)) for ref in service.gateway_refs]
    if mesh:
        return [{"group": "", "kind": "Service", "name": service.name, "port": service.port}]
    raise RouterError(
        "the Gateway API provider needs service.gatewayRefs (the HTTPRoute parents)",
        field="spec.service.gatewayRefs",
    )


def _rules(canary: Canary, state: MeshState, *, mesh: bool) -> list[Obj]:
    matches = _service_matches(canary)
    filters = rule_filters(canary)
    if state.routes.mirrored and mesh:
        raise RouterError("Linkerd does not mirror traffic", field="spec.analysis.mirror")
    if canary.spec.analysis_or_default.match:
        return _ab_rules(canary, state.routes, matches, filters)
    weighted = _weighted_rule(canary, state, matches, filters)
    return [*_sticky_rules(canary, state, filters), weighted]


def _ab_rules(canary: Canary, routes: Routes, matches: list[Obj], filters: list[Obj]) -> list[Obj]:
    """A/B testing: the requests that match ``analysis.match`` follow the weights, the
    others stay on the primary."""
    service = canary.spec.service
    if routes.mirrored:
        raise RouterError(
            "mirroring cannot be combined with A/B testing (analysis.match)",
            field="spec.analysis.mirror",
        )
    ab = translate_matches(canary.spec.analysis_or_default.match, "spec.analysis.match")
    return [
        _rule(
            canary,
            merge_matches(ab, matches),
            filters,
            [
                _backend(canary, service.primary_name, routes.primary),
                _backend(canary, service.canary_name, routes.canary),
            ],
        ),
        _rule(canary, matches, filters, [_backend(canary, service.primary_name, 100)]),
    ]


def _weighted_rule(canary: Canary, state: MeshState, matches: list[Obj], filters: list[Obj]) -> Obj:
    """The rule that splits traffic by weight; each backend hands out its session cookie."""
    service = canary.spec.service
    routes, cookies = state.routes, state.cookies
    return _rule(
        canary,
        matches,
        [*filters, _mirror_filter(canary)] if routes.mirrored else filters,
        [
            _backend(
                canary,
                service.primary_name,
                routes.primary,
                primary_set_cookie(canary, cookies.primary) if cookies.primary else "",
            ),
            _backend(
                canary,
                service.canary_name,
                routes.canary,
                canary_set_cookie(canary, cookies.canary) if cookies.canary else "",
            ),
        ],
    )


def _sticky_rules(canary: Canary, state: MeshState, filters: list[Obj]) -> list[Obj]:
    """The rules in front of the weighted one that keep a session where it started: the
    canary cookie's owners on the canary (or, once the canary cookie is gone, the weights
    with the old cookie expired), the primary cookie's owners on the primary."""
    service = canary.spec.service
    routes, cookies = state.routes, state.cookies
    svc_matches = translate_matches(service.match, "spec.service.match")

    def sticky(cookie: str, with_filters: list[Obj], primary: int, canary_weight: int) -> Obj:
        return _rule(
            canary,
            merge_matches([_cookie_match(cookie)], svc_matches),
            with_filters,
            [
                _backend(canary, service.primary_name, primary),
                _backend(canary, service.canary_name, canary_weight),
            ],
        )

    rules: list[Obj] = []
    if cookies.canary:
        rules.append(sticky(cookies.canary, filters, 0, 100))
    elif cookies.previous:
        expiring = _add_set_cookie(filters, expire_set_cookie(cookies.previous))
        rules.append(sticky(cookies.previous, expiring, routes.primary, routes.canary))
    if cookies.primary:
        rules.append(sticky(cookies.primary, filters, 100, 0))
    return rules


def http_route_spec(canary: Canary, state: MeshState, *, mesh: bool = False) -> Obj:
    spec: Obj = {"parentRefs": parent_refs(canary, mesh=mesh)}
    if canary.spec.service.hosts:
        spec["hostnames"] = list(canary.spec.service.hosts)
    spec["rules"] = _rules(canary, state, mesh=mesh)
    return spec


def http_route(
    canary: Canary,
    current: Obj | None,
    routes: Routes | None = None,
    *,
    version: str = "v1",
    mesh: bool = False,
    new_cookie: CookieFactory = random_cookie_value,
) -> Obj:
    """HTTPRoute ``<svc>``; with ``routes`` None (reconcile) the current routing state is kept."""
    analysis = canary.spec.analysis_or_default
    affinity = analysis.session_affinity if not analysis.match else None
    state = MeshState.wanted(read_state, canary, current, routes, affinity, new_cookie)
    return apex_object(
        canary,
        current,
        api_version=gateway_api_version(version),
        kind="HTTPRoute",
        spec=http_route_spec(canary, state, mesh=mesh),
    )


# ---------------------------------------------------------------------------- reading


def _cookie_names(canary: Canary) -> tuple[str, ...]:
    affinity = canary.spec.analysis_or_default.session_affinity
    if affinity is None:
        return ()
    return tuple(n for n in (affinity.cookie_name, affinity.primary_cookie_name) if n)


def _is_sticky(rule: Mapping[str, Any], cookie_names: Sequence[str]) -> bool:
    """A sticky rule matches the ``Cookie`` header against one of the session cookies."""
    for match in rule.get("matches") or ():
        for header in match.get("headers") or ():
            if (
                str(header.get("name", "")).lower() == "cookie"
                and header.get("type") == "RegularExpression"
                and any(str(header.get("value", "")).startswith(f".*{n}.*") for n in cookie_names)
            ):
                return True
    return False


def _filter_set_cookie(filters: Sequence[Mapping[str, Any]]) -> str:
    for f in filters or ():
        if f.get("type") != "ResponseHeaderModifier":
            continue
        for header in (f.get("responseHeaderModifier") or {}).get("add") or ():
            if str(header.get("name", "")).lower() == "set-cookie":
                return str(header.get("value", ""))
    return ""


def read_state(canary: Canary, obj: Mapping[str, Any] | None) -> MeshState | None:
    """The routing state of an HTTPRoute; None if no rule routes to both services."""
    if not obj:
        return None
    service = canary.spec.service
    weighted, previous = _weighted_and_expired(canary, (obj.get("spec") or {}).get("rules") or ())
    if weighted is None:
        return None
    p = c = 0
    canary_cookie = primary_cookie = ""
    for backend in weighted.get("backendRefs") or ():
        weight = backend.get("weight")
        weight = 1 if weight is None else int(weight)  # the Gateway API default weight is 1
        cookie = cookie_of_set_cookie(_filter_set_cookie(backend.get("filters") or ()))
        if backend.get("name") == service.primary_name:
            p, primary_cookie = weight, cookie
        elif backend.get("name") == service.canary_name:
            c, canary_cookie = weight, cookie
    mirrored = any(
        f.get("type") == "RequestMirror"
        and ((f.get("requestMirror") or {}).get("backendRef") or {}).get("name")
        == service.canary_name
        for f in weighted.get("filters") or ()
    )
    cookies = SessionCookies(canary_cookie, "" if canary_cookie else previous, primary_cookie)
    return MeshState(percentages(p, c, mirrored, f'HTTPRoute "{service.name}"'), cookies)


def _weighted_and_expired(
    canary: Canary, rules: Iterable[Mapping[str, Any]]
) -> tuple[Mapping[str, Any] | None, str]:
    """The first rule that routes to both services, and the session cookie a sticky rule
    expires (the canary cookie of the run before), if one does."""
    service = canary.spec.service
    cookie_names = _cookie_names(canary)
    weighted: Mapping[str, Any] | None = None
    previous = ""
    for rule in rules:
        names = {b.get("name") for b in rule.get("backendRefs") or ()}
        if _is_sticky(rule, cookie_names):
            value = _filter_set_cookie(rule.get("filters") or ())
            if value and is_expiry(value):
                previous = cookie_of_set_cookie(value)
            continue
        if weighted is None and service.primary_name in names and service.canary_name in names:
            weighted = rule
    return weighted, previous


def read_routes(canary: Canary, obj: Mapping[str, Any] | None) -> Routes | None:
    return MeshState.routes_of(read_state(canary, obj))


def read_cookies(canary: Canary, obj: Mapping[str, Any] | None) -> SessionCookies:
    return MeshState.cookies_of(read_state(canary, obj))
