"""Simulated clients whose requests follow the routing objects the way a real data plane would.

There is no proxy in the sandbox, so something must play NGINX, Envoy (Istio), a
Gateway API implementation, Linkerd or kube-proxy: read the objects the controller
writes and decide, request by request, which pods serve it. This module does that,
so the metrics that reach Prometheus follow the weights, and tests can check that
the objects the routers write *behave* as intended, not only that they look right.

Deliberately independent of `canary.adapters.routers`: it reads the objects as a
proxy would (VirtualService routes in order, HTTPRoute rules by Gateway API
precedence, NGINX canary annotations header > cookie > weight, TrafficSplit
weights, Service selectors), never the router code that wrote them.

Pieces:

* `Snapshot` + `resolve` (pure): one consistent view of the namespace's Services,
  Pods, Ingresses, VirtualServices, HTTPRoutes and TrafficSplits, and the routing
  decision for one request from one `Entry` (a Service called from inside the
  mesh, an Ingress host, or a Gateway).
* `TrafficGenerator`: re-reads the snapshot every ``refresh_interval`` (so a weight
  change applies within about a second), sends requests at a Poisson ``rate`` from
  a pool of clients with cookie jars (so sticky session cookies work), with a
  configurable mix of headers and cookies (`RequestProfile`), mirrors copies to the
  canary, and hands each request to a pluggable `Backend` with the version
  (``"primary"``/``"canary"``) and the pod that serves it. Counts per destination
  are kept per window (`TrafficWindow`) for comparing the measured split with the
  weights.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from canary.adapters.routers.builders.smi import parse_quantity
from canary.ports import NotFound

Obj = dict[str, Any]
Version = Literal["primary", "canary"]

DEFAULT_NGINX_PREFIX = "nginx.ingress.kubernetes.io"


class ObjectLister(Protocol):
    """What the generator needs from the API: `canary.ports.Kube` satisfies it."""

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]: ...


# ============================================================================ requests


@dataclass(frozen=True, slots=True)
class TrafficRequest:
    """One simulated HTTP request (a mirrored copy has ``shadow`` set)."""

    id: int
    client: int
    host: str
    path: str = "/"
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    shadow: bool = False

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None

    def cookies(self) -> dict[str, str]:
        return parse_cookie_header(self.header("cookie") or "")


@dataclass(frozen=True, slots=True)
class RequestProfile:
    """A kind of request in the mix, drawn with probability proportional to ``weight``."""

    weight: float = 1.0
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    path: str = "/"
    method: str = "GET"


def parse_cookie_header(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in value.split(";"):
        name, sep, val = part.strip().partition("=")
        if sep and name:
            out[name] = val
    return out


# ======================================================================= entry points


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """A client inside the mesh calling Service ``name`` (Istio mesh, GAMMA, SMI, kube-proxy)."""

    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class IngressEntry:
    """A client calling through the ingress controller the host of Ingress ``ingress``."""

    namespace: str
    ingress: str
    host: str | None = None  # default: the Ingress's first rule host


@dataclass(frozen=True, slots=True)
class GatewayEntry:
    """A client calling ``host`` through a Gateway (Gateway API ``Gateway`` or Istio gateway)."""

    namespace: str
    gateway: str
    host: str = ""
    gateway_namespace: str | None = None  # Gateway API: default the route's namespace


@dataclass(frozen=True, slots=True)
class TraefikEntry:
    """A client calling ``host`` through Traefik (the namespace's IngressRoutes)."""

    namespace: str
    host: str


@dataclass(frozen=True, slots=True)
class ApisixEntry:
    """A client calling ``host`` through the APISIX gateway (the namespace's ApisixRoutes)."""

    namespace: str
    host: str


@dataclass(frozen=True, slots=True)
class ContourEntry:
    """A client calling ``host`` through Contour's Envoy (the root HTTPProxy for the host)."""

    namespace: str
    host: str


@dataclass(frozen=True, slots=True)
class GlooEntry:
    """A client calling ``host`` through Gloo Edge's gateway-proxy (its VirtualServices)."""

    namespace: str
    host: str


Entry = (
    ServiceEntry
    | IngressEntry
    | GatewayEntry
    | TraefikEntry
    | ApisixEntry
    | ContourEntry
    | GlooEntry
)


# ========================================================================== snapshot


@dataclass(frozen=True)
class Snapshot:
    """The routing objects of one namespace as read at one moment."""

    namespace: str
    services: Mapping[str, Obj] = field(default_factory=dict)
    pods: tuple[Obj, ...] = ()
    ingresses: tuple[Obj, ...] = ()
    virtual_services: tuple[Obj, ...] = ()
    http_routes: tuple[Obj, ...] = ()
    traffic_splits: tuple[Obj, ...] = ()
    traffic_routes: tuple[Obj, ...] = ()  # Kuma (cluster-scoped)
    appmesh_services: tuple[Obj, ...] = ()  # App Mesh VirtualServices (v1beta1 or v1beta2)
    appmesh_routers: tuple[Obj, ...] = ()
    appmesh_nodes: tuple[Obj, ...] = ()
    ingress_routes: tuple[Obj, ...] = ()  # Traefik
    traefik_services: tuple[Obj, ...] = ()
    apisix_routes: tuple[Obj, ...] = ()
    knative_services: tuple[Obj, ...] = ()  # serving.knative.dev/v1 Service
    http_proxies: tuple[Obj, ...] = ()  # Contour
    gloo_virtual_services: tuple[Obj, ...] = ()  # Gloo Edge (gateway.solo.io/v1)
    route_tables: tuple[Obj, ...] = ()
    upstreams: tuple[Obj, ...] = ()


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where a request goes: the Service whose pods serve it, copies, response cookies."""

    service: str | None  # None: no route matched (the proxy answers 404)
    mirrors: tuple[str, ...] = ()
    set_cookies: tuple[str, ...] = ()
    via: str = ""  # "VirtualService/podinfo", "Ingress/podinfo-canary", ...


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _short_host(host: str, namespace: str) -> str:
    """``svc``, ``svc.ns``, ``svc.ns.svc`` and ``svc.ns.svc.cluster.local`` all name Service ``svc``."""
    for suffix in (f".{namespace}.svc.cluster.local", f".{namespace}.svc", f".{namespace}"):
        if host.endswith(suffix):
            return host[: -len(suffix)]
    return host


def _host_matches(pattern: str, host: str) -> bool:
    if pattern == "*" or pattern == host:
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return False


def _weighted_choice(rng: random.Random, items: Sequence[tuple[str, float]]) -> str | None:
    positive = [(name, w) for name, w in items if w > 0]
    if not positive:
        return items[0][0] if len(items) == 1 else None
    total = sum(w for _, w in positive)
    point = rng.random() * total
    for name, w in positive:
        point -= w
        if point < 0:
            return name
    return positive[-1][0]


def _quantity(value: Any) -> float:
    """A TrafficSplit weight as the mesh reads it; what cannot be read weighs nothing."""
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(parse_quantity(str(value)))
    except ValueError:
        return 0.0


# ------------------------------------------------------------------------------ Istio


def _istio_string(rule: Mapping[str, Any], value: str | None) -> bool:
    if value is None:
        return False
    if "exact" in rule:
        return value == str(rule["exact"])
    if "prefix" in rule:
        return value.startswith(str(rule["prefix"]))
    if "regex" in rule:
        return re.fullmatch(str(rule["regex"]), value) is not None
    return True


def _istio_match(match: Mapping[str, Any], request: TrafficRequest, gateway: str | None) -> bool:
    if "uri" in match and not _istio_string(match["uri"], request.path.split("?", 1)[0]):
        return False
    if "method" in match and not _istio_string(match["method"], request.method):
        return False
    if "authority" in match and not _istio_string(match["authority"], request.host):
        return False
    for name, rule in (match.get("headers") or {}).items():
        if not _istio_string(rule, request.header(name)):
            return False
    for name, rule in (match.get("withoutHeaders") or {}).items():
        if _istio_string(rule, request.header(name)):
            return False
    if match.get("queryParams"):
        query = dict(p.partition("=")[::2] for p in request.path.partition("?")[2].split("&") if p)
        for name, rule in match["queryParams"].items():
            if not _istio_string(rule, query.get(name)):
                return False
    if match.get("sourceLabels"):
        return False  # simulated clients carry no pod labels
    return not (match.get("gateways") and (gateway or "mesh") not in match["gateways"])


def _istio_set_cookies(headers: Mapping[str, Any] | None) -> list[str]:
    response = (headers or {}).get("response") or {}
    out = []
    for key in ("set", "add"):
        for name, value in (response.get(key) or {}).items():
            if name.lower() == "set-cookie":
                out.append(str(value))
    return out


def _resolve_virtual_service(
    vs: Mapping[str, Any],
    namespace: str,
    request: TrafficRequest,
    rng: random.Random,
    gateway: str | None,
) -> Resolution:
    via = f"VirtualService/{_name(vs)}"
    for route in (vs.get("spec") or {}).get("http") or ():
        matches = route.get("match") or [{}]
        if not any(_istio_match(m, request, gateway) for m in matches):
            continue
        destinations = route.get("route") or []
        choices = [
            (
                _short_host(str((d.get("destination") or {}).get("host", "")), namespace),
                float(d.get("weight") or 0),
            )
            for d in destinations
        ]
        chosen = _weighted_choice(rng, choices)
        cookies = _istio_set_cookies(route.get("headers"))
        for d in destinations:
            host = _short_host(str((d.get("destination") or {}).get("host", "")), namespace)
            if host == chosen:
                cookies.extend(_istio_set_cookies(d.get("headers")))
                break
        mirrors: tuple[str, ...] = ()
        mirror = route.get("mirror") or {}
        if mirror.get("host"):
            percent = float((route.get("mirrorPercentage") or {}).get("value", 100.0))
            if rng.random() * 100.0 < percent:
                mirrors = (_short_host(str(mirror["host"]), namespace),)
        return Resolution(chosen, mirrors, tuple(cookies), via)
    return Resolution(None, via=via)


def _vs_gateways(vs: Mapping[str, Any]) -> list[str]:
    return list((vs.get("spec") or {}).get("gateways") or ["mesh"])


def _gateway_names(gateway: str, namespace: str) -> set[str]:
    short = gateway.split(".", 1)[0].split("/")[-1]
    return {gateway, short, f"{namespace}/{short}"}


# ------------------------------------------------------------------------ Gateway API


def _path_key(match: Mapping[str, Any], path: str) -> tuple[int, int] | None:
    rule = match.get("path") or {"type": "PathPrefix", "value": "/"}
    kind = rule.get("type", "PathPrefix")
    value = str(rule.get("value", "/"))
    bare = path.split("?", 1)[0]
    if kind == "Exact":
        return (2, len(value)) if bare == value else None
    if kind == "PathPrefix":
        trimmed = value.rstrip("/")
        ok = value == "/" or bare == trimmed or bare.startswith(trimmed + "/")
        return (1, len(value)) if ok else None
    if kind == "RegularExpression":
        return (0, 0) if re.fullmatch(value, bare) else None
    return None


def _gateway_value(rule: Mapping[str, Any], value: str | None) -> bool:
    if value is None:
        return False
    if rule.get("type", "Exact") == "RegularExpression":
        return re.fullmatch(str(rule.get("value", "")), value) is not None
    return value == str(rule.get("value", ""))


def _gateway_match_key(match: Mapping[str, Any], request: TrafficRequest) -> tuple[int, ...] | None:
    path = _path_key(match, request.path)
    if path is None:
        return None
    if match.get("method") and match["method"] != request.method:
        return None
    headers = match.get("headers") or []
    if not all(_gateway_value(h, request.header(str(h.get("name", "")))) for h in headers):
        return None
    params = match.get("queryParams") or []
    if params:
        query = dict(p.partition("=")[::2] for p in request.path.partition("?")[2].split("&") if p)
        if not all(_gateway_value(q, query.get(str(q.get("name", "")))) for q in params):
            return None
    return (*path, 1 if match.get("method") else 0, len(headers), len(params))


def _filter_set_cookies(filters: Sequence[Mapping[str, Any]]) -> list[str]:
    out = []
    for f in filters or ():
        if f.get("type") != "ResponseHeaderModifier":
            continue
        modifier = f.get("responseHeaderModifier") or {}
        for key in ("set", "add"):
            for header in modifier.get(key) or ():
                if str(header.get("name", "")).lower() == "set-cookie":
                    out.append(str(header.get("value", "")))
    return out


def _resolve_http_routes(
    routes: Sequence[Mapping[str, Any]], request: TrafficRequest, rng: random.Random
) -> Resolution:
    found = _best_rule(routes, request)
    if found is None:
        return Resolution(None)
    rule, route = found
    backends = rule.get("backendRefs") or []
    choices = [
        (str(b.get("name", "")), float(1 if b.get("weight") is None else b["weight"]))
        for b in backends
        if b.get("kind", "Service") == "Service"
    ]
    chosen = _weighted_choice(rng, choices) if choices else None
    cookies = _filter_set_cookies(rule.get("filters") or ())
    for b in backends:
        if b.get("name") == chosen:
            cookies.extend(_filter_set_cookies(b.get("filters") or ()))
            break
    mirrors = [
        str((mirror.get("backendRef") or {}).get("name", ""))
        for mirror in _request_mirrors(rule)
        if rng.random() * 100.0 < _mirror_percent(mirror)
    ]
    return Resolution(chosen, tuple(mirrors), tuple(cookies), f"HTTPRoute/{_name(route)}")


def _best_rule(
    routes: Sequence[Mapping[str, Any]], request: TrafficRequest
) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """The (rule, route) whose match takes ``request`` with the highest precedence."""
    best: tuple[tuple[int, ...], int, int] | None = None
    found: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None
    for route_index, route in enumerate(routes):
        for rule_index, rule in enumerate((route.get("spec") or {}).get("rules") or ()):
            for match in rule.get("matches") or [{}]:
                key = _gateway_match_key(match, request)
                if key is None:
                    continue
                # Higher precedence first; ties go to the earlier route, then the earlier rule.
                rank = (key, -route_index, -rule_index)
                if best is None or rank > best:
                    best, found = rank, (rule, route)
    return found


def _request_mirrors(rule: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        f.get("requestMirror") or {}
        for f in rule.get("filters") or ()
        if f.get("type") == "RequestMirror"
    ]


def _mirror_percent(mirror: Mapping[str, Any]) -> float:
    """The share of requests mirrored: ``percent``, or ``fraction`` when it is given."""
    percent = float(mirror.get("percent", 100))
    fraction = mirror.get("fraction")
    if isinstance(fraction, Mapping):
        percent = (
            100.0
            * float(fraction.get("numerator", 0))
            / float(fraction.get("denominator", 100) or 100)
        )
    return percent


def _parent_is(
    ref: Mapping[str, Any], *, kind: str, name: str, namespace: str, route_namespace: str
) -> bool:
    ref_kind = ref.get("kind", "Gateway")
    group = ref.get("group", "gateway.networking.k8s.io" if ref_kind == "Gateway" else "")
    if ref_kind != kind or ref.get("name") != name:
        return False
    if kind == "Service" and group not in ("", "core"):
        return False
    return bool(ref.get("namespace", route_namespace) == namespace)


def _hostnames_match(route: Mapping[str, Any], host: str) -> bool:
    names = (route.get("spec") or {}).get("hostnames") or []
    return not names or not host or any(_host_matches(str(n), host) for n in names)


# ------------------------------------------------------------------------------ NGINX


def _ingress_path_matches(value: str, kind: str, path: str) -> bool:
    """Whether an Ingress path of ``pathType`` ``kind`` takes a request for ``path``: Exact,
    or Prefix by whole segments (``/api`` takes ``/api/x``, not ``/apix``)."""
    bare = path.split("?", 1)[0]
    if kind == "Exact":
        return bare == value
    trimmed = value.rstrip("/")
    return value == "/" or bare == trimmed or bare.startswith(trimmed + "/")


def _ingress_backend(ingress: Mapping[str, Any], host: str, path: str) -> tuple[str, str] | None:
    """(Service name, matched path) of the Ingress rule serving host and path."""
    spec = ingress.get("spec") or {}
    best: tuple[int, str, str] | None = None
    for rule in spec.get("rules") or ():
        rule_host = rule.get("host") or ""
        if rule_host and not _host_matches(rule_host, host):
            continue
        for p in (rule.get("http") or {}).get("paths") or ():
            value = str(p.get("path") or "/")
            ok = _ingress_path_matches(value, p.get("pathType", "Prefix"), path)
            if ok and (best is None or len(value) > best[0]):
                name = _service_of(p.get("backend"))
                if name:
                    best = (len(value), str(name), value)
    if best is not None:
        return best[1], best[2]
    default = _service_of(spec.get("defaultBackend"))
    return (str(default), "") if default else None


def _service_of(backend: Mapping[str, Any] | None) -> Any:
    """The Service name of an Ingress backend (None for a resource backend)."""
    return ((backend or {}).get("service") or {}).get("name")


def _nginx_canary(
    ingress: Mapping[str, Any], request: TrafficRequest, rng: random.Random, prefix: str
) -> bool | None:
    """True/False when the canary Ingress decides; None when it does not take the request."""
    ann = _annotations(ingress)

    def get(name: str) -> str | None:
        value = ann.get(f"{prefix}/{name}")
        return None if value is None else str(value)

    header = get("canary-by-header")
    if header:
        value = request.header(header)
        wanted, pattern = get("canary-by-header-value"), get("canary-by-header-pattern")
        if wanted:
            if value == wanted:
                return True
        elif pattern:
            if value is not None and re.search(pattern, value):
                return True
        elif value == "always":
            return True
        elif value == "never":
            return False
    cookie = get("canary-by-cookie")
    if cookie:
        value = request.cookies().get(cookie)
        if value == "always":
            return True
        if value == "never":
            return False
    try:
        weight = float(get("canary-weight") or 0)
        total = float(get("canary-weight-total") or 100)
    except ValueError:
        return False
    return rng.random() * total < weight


def _resolve_ingress(
    snapshot: Snapshot,
    entry: IngressEntry,
    request: TrafficRequest,
    rng: random.Random,
    prefix: str,
) -> Resolution:
    main = next((i for i in snapshot.ingresses if _name(i) == entry.ingress), None)
    if main is None:
        return Resolution(None, via=f"Ingress/{entry.ingress} (missing)")
    target = _ingress_backend(main, request.host, request.path)
    if target is None:
        return Resolution(None, via=f"Ingress/{entry.ingress}")
    service, matched_path = target
    for other in snapshot.ingresses:
        if other is main or str(_annotations(other).get(f"{prefix}/canary", "")).lower() != "true":
            continue
        canary_target = _ingress_backend(other, request.host, request.path)
        if canary_target is None or canary_target[1] != matched_path:
            continue
        if _nginx_canary(other, request, rng, prefix):
            return Resolution(canary_target[0], via=f"Ingress/{_name(other)}")
        break
    return Resolution(service, via=f"Ingress/{entry.ingress}")


# ---------------------------------------------------------------------------- Traefik

_TRAEFIK_TOKEN = re.compile(r"\s*(&&|\|\||!|\(|\)|[A-Za-z]+\((?:`[^`]*`|\"[^\"]*\"|[\s,])*\))")
_TRAEFIK_ARG = re.compile(r"`([^`]*)`|\"([^\"]*)\"")


def _traefik_matcher(call: str, request: TrafficRequest) -> bool:
    """One matcher of a Traefik rule (v2 and v3 names); an unknown one matches nothing."""
    name = call[: call.index("(")]
    args = [str(a or b) for a, b in _TRAEFIK_ARG.findall(call)]
    bare = request.path.split("?", 1)[0]
    host = request.host.split(":", 1)[0]
    if name == "Host":
        return any(host.lower() == a.lower() for a in args)
    if name == "HostRegexp":
        return any(re.fullmatch(a, host) for a in args)
    if name == "Path":
        return bare in args
    if name == "PathPrefix":
        return any(bare.startswith(a) for a in args)
    if name == "PathRegexp":
        return any(re.match(a, bare) for a in args)
    if name in ("Method", "Methods"):
        return request.method.upper() in (a.upper() for a in args)
    if name in ("Header", "Headers") and len(args) == 2:
        return request.header(args[0]) == args[1]
    if name in ("HeaderRegexp", "HeadersRegexp") and len(args) == 2:
        value = request.header(args[0])
        return value is not None and re.search(args[1], value) is not None
    if name == "Query" and args:
        query = dict(p.partition("=")[::2] for p in request.path.partition("?")[2].split("&") if p)
        return args[0] in query and (len(args) < 2 or query[args[0]] == args[1])
    return False


def traefik_rule_matches(rule: str, request: TrafficRequest) -> bool:
    """Whether a Traefik rule (``Host(`a`) && (PathPrefix(`/x`) || !Method(`POST`))``)
    takes ``request``; a rule that cannot be read matches nothing."""
    tokens: list[str] = []
    pos = 0
    while pos < len(rule):
        found = _TRAEFIK_TOKEN.match(rule, pos)
        if found is None:
            if rule[pos:].strip():
                return False
            break
        tokens.append(found.group(1))
        pos = found.end()

    def parse_or(i: int) -> tuple[bool, int]:
        value, i = parse_and(i)
        while i < len(tokens) and tokens[i] == "||":
            right, i = parse_and(i + 1)
            value = value or right
        return value, i

    def parse_and(i: int) -> tuple[bool, int]:
        value, i = parse_not(i)
        while i < len(tokens) and tokens[i] == "&&":
            right, i = parse_not(i + 1)
            value = value and right
        return value, i

    def parse_not(i: int) -> tuple[bool, int]:
        if i >= len(tokens):
            raise ValueError("rule ends early")
        if tokens[i] == "!":
            value, i = parse_not(i + 1)
            return not value, i
        if tokens[i] == "(":
            value, i = parse_or(i + 1)
            if i >= len(tokens) or tokens[i] != ")":
                raise ValueError("unbalanced parenthesis")
            return value, i + 1
        if tokens[i] in ("&&", "||", ")"):
            raise ValueError(f"unexpected {tokens[i]}")
        return _traefik_matcher(tokens[i], request), i + 1

    try:
        value, end = parse_or(0)
    except (ValueError, re.error):
        return False
    return value and end == len(tokens)


def _traefik_weight(ref: Mapping[str, Any]) -> float:
    weight = ref.get("weight")
    return 1.0 if weight is None else float(weight)  # Traefik's default weight is 1


def _traefik_target(
    snapshot: Snapshot, ref: Mapping[str, Any], rng: random.Random, depth: int = 0
) -> tuple[str | None, tuple[str, ...]]:
    """(Service that serves, Services that get a copy) for one service reference,
    following TraefikServices (weighted round robin, mirroring) down to Services."""
    name = str(ref.get("name", "")).split("@", 1)[0]
    if (ref.get("kind") or "Service") != "TraefikService":
        return (name or None), ()
    ts = next((t for t in snapshot.traefik_services if _name(t) == name), None)
    if ts is None or depth > 8:
        return None, ()
    spec = ts.get("spec") or {}
    weighted = spec.get("weighted")
    if isinstance(weighted, Mapping):
        children = list(weighted.get("services") or ())
        index = _weighted_choice(
            rng, [(str(i), _traefik_weight(c)) for i, c in enumerate(children)]
        )
        if index is None:
            return None, ()
        return _traefik_target(snapshot, children[int(index)], rng, depth + 1)
    mirroring = spec.get("mirroring")
    if isinstance(mirroring, Mapping):
        service, copies = _traefik_target(snapshot, mirroring, rng, depth + 1)
        for mirror in mirroring.get("mirrors") or ():
            if rng.random() * 100.0 < float(mirror.get("percent", 0)):
                target, _ = _traefik_target(snapshot, mirror, rng, depth + 1)
                copies += (target,) if target else ()
        return service, copies
    return None, ()


def _resolve_traefik(
    snapshot: Snapshot, entry: TraefikEntry, request: TrafficRequest, rng: random.Random
) -> Resolution:
    """Traefik takes the matching IngressRoute route with the highest priority (by
    default the length of its rule) and balances over its services (weight 1 each)."""
    best: tuple[int, Mapping[str, Any], Mapping[str, Any]] | None = None
    for candidate in sorted(snapshot.ingress_routes, key=_name):
        for route in (candidate.get("spec") or {}).get("routes") or ():
            rule = str(route.get("match", ""))
            if not traefik_rule_matches(rule, request):
                continue
            priority = int(route.get("priority") or len(rule))
            if best is None or priority > best[0]:
                best = (priority, route, candidate)
    if best is None:
        return Resolution(None, via="Traefik (no IngressRoute matched)")
    _, chosen_route, ingress_route = best
    services = list(chosen_route.get("services") or ())
    index = _weighted_choice(rng, [(str(i), _traefik_weight(s)) for i, s in enumerate(services)])
    via = f"IngressRoute/{_name(ingress_route)}"
    if index is None:
        return Resolution(None, via=via)
    service, mirrors = _traefik_target(snapshot, services[int(index)], rng)
    return Resolution(service, mirrors, via=via)


# ----------------------------------------------------------------------------- APISIX


def _apisix_path_key(paths: Sequence[Any], path: str) -> tuple[int, int] | None:
    """How well ``paths`` (exact, or a prefix ending in ``*``) take ``path``: exact
    first, then the longest prefix; None when none does."""
    bare = path.split("?", 1)[0]
    best: tuple[int, int] | None = None
    for value in (str(p) for p in paths):
        if value.endswith("*"):
            key = (0, len(value) - 1) if bare.startswith(value[:-1]) else None
        else:
            key = (1, len(value)) if bare == value else None
        if key is not None and (best is None or key > best):
            best = key
    return best


def _apisix_expr(expr: Mapping[str, Any], request: TrafficRequest) -> bool:
    subject = expr.get("subject") or {}
    scope, name = str(subject.get("scope", "")), str(subject.get("name", ""))
    value: str | None
    if scope == "Header":
        value = request.header(name)
    elif scope == "Cookie":
        value = request.cookies().get(name)
    elif scope == "Query":
        query = dict(p.partition("=")[::2] for p in request.path.partition("?")[2].split("&") if p)
        value = query.get(name)
    elif scope == "Path":
        value = request.path.split("?", 1)[0]
    else:
        return False
    op = str(expr.get("op", ""))
    wanted = str(expr.get("value", ""))
    options = [str(s) for s in expr.get("set") or ()]
    if op == "Equal":
        return value == wanted
    if op == "NotEqual":
        return value != wanted
    if op == "In":
        return value in options
    if op == "NotIn":
        return value not in options
    if op.startswith("Regex"):
        flags = re.IGNORECASE if op.endswith("CaseInsensitive") else 0
        found = value is not None and re.search(wanted, value, flags) is not None
        return not found if "NotMatch" in op else found
    return False


def _apisix_rule_key(rule: Mapping[str, Any], request: TrafficRequest) -> tuple[int, ...] | None:
    match = rule.get("match") or {}
    if match.get("remoteAddrs") or match.get("filter_func"):
        return None  # simulated clients have no address; Lua filters are not evaluated
    hosts = [str(h) for h in match.get("hosts") or ()]
    if hosts and not any(_host_matches(h, request.host) for h in hosts):
        return None
    methods = [str(m).upper() for m in match.get("methods") or ()]
    if methods and request.method.upper() not in methods:
        return None
    if not all(_apisix_expr(e, request) for e in match.get("exprs") or ()):
        return None
    path = _apisix_path_key(match.get("paths") or (), request.path)
    if path is None:
        return None
    return (*path, int(rule.get("priority") or 0))


def _resolve_apisix(
    snapshot: Snapshot, entry: ApisixEntry, request: TrafficRequest, rng: random.Random
) -> Resolution:
    """APISIX takes the matching HTTP rule with the most specific path and, among rules
    for the same path, the highest ``priority``; several backends are split by weight
    (traffic-split; a backend without a weight weighs 100)."""
    best: tuple[tuple[int, ...], Mapping[str, Any], Mapping[str, Any]] | None = None
    for candidate in sorted(snapshot.apisix_routes, key=_name):
        for rule in (candidate.get("spec") or {}).get("http") or ():
            key = _apisix_rule_key(rule, request)
            if key is not None and (best is None or key > best[0]):
                best = (key, rule, candidate)
    if best is None:
        return Resolution(None, via="APISIX (no ApisixRoute matched)")
    _, chosen_rule, route = best
    choices = [
        (str(b.get("serviceName", "")), float(100 if b.get("weight") is None else b["weight"]))
        for b in chosen_rule.get("backends") or ()
    ]
    chosen = _weighted_choice(rng, choices) if choices else None
    return Resolution(chosen, via=f"ApisixRoute/{_name(route)}")


# ---------------------------------------------------------------------------- Skipper

SKIPPER_CLASS = "skipper"


def _ingress_class(ingress: Mapping[str, Any]) -> str:
    return str(
        (ingress.get("spec") or {}).get("ingressClassName")
        or _annotations(ingress).get("kubernetes.io/ingress.class")
        or ""
    )


def _is_skipper_ingress(snapshot: Snapshot, name: str) -> bool:
    """Whether Ingress ``name`` belongs to Skipper (class ``skipper``) rather than NGINX."""
    return any(_name(i) == name and _ingress_class(i) == SKIPPER_CLASS for i in snapshot.ingresses)


def _skipper_predicates(ingress: Mapping[str, Any]) -> list[str]:
    raw = str(_annotations(ingress).get("zalando.org/skipper-predicate", ""))
    return [p.strip() for p in raw.split("&&") if p.strip()]


def _skipper_predicate(predicate: str, request: TrafficRequest) -> bool:
    """One Skipper predicate of the annotation; an unknown one matches nothing."""
    name, _, rest = predicate.partition("(")
    args = [str(a or b) for a, b in re.findall(r'"((?:[^"\\]|\\.)*)"|/((?:[^/\\]|\\.)*)/', rest)]
    if name in ("True", "Weight"):
        return True
    if name == "False":
        return False
    if name == "Method" and args:
        return request.method.upper() == args[0].upper()
    if name == "Header" and len(args) == 2:
        return request.header(args[0]) == args[1]
    if name == "HeaderRegexp" and len(args) == 2:
        value = request.header(args[0])
        return value is not None and re.search(args[1], value) is not None
    if name == "Cookie" and len(args) == 2:
        value = request.cookies().get(args[0])
        return value is not None and re.search(args[1], value) is not None
    return False


def _skipper_rank(predicates: Sequence[str]) -> int:
    """Skipper orders routes for the same path by predicate weight: ``Weight(n)`` counts
    ``n``, any other predicate 1."""
    rank = 0
    for predicate in predicates:
        found = re.fullmatch(r"Weight\(\s*(\d+)\s*\)", predicate)
        rank += int(found.group(1)) if found else 1
    return rank


def _skipper_path_key(path: Mapping[str, Any], request_path: str) -> tuple[int, int] | None:
    value = str(path.get("path") or "/")
    kind = str(path.get("pathType") or "ImplementationSpecific")
    if kind in ("Exact", "Prefix"):
        if not _ingress_path_matches(value, kind, request_path):
            return None
        return (1 if kind == "Exact" else 0, len(value))
    try:  # ImplementationSpecific: Skipper reads the path as a regular expression
        found = re.match(value, request_path.split("?", 1)[0])
    except re.error:
        return None
    return (0, len(value)) if found else None


def _resolve_skipper(
    snapshot: Snapshot, entry: IngressEntry, request: TrafficRequest, rng: random.Random
) -> Resolution:
    """Skipper, which merges every Ingress of its class: the most specific path wins,
    then the route with the heavier predicates (``False()`` switches an Ingress off);
    the backends of one path are split by ``zalando.org/backend-weights``."""
    best: tuple[tuple[int, ...], Mapping[str, Any], list[str]] | None = None
    for candidate in sorted(snapshot.ingresses, key=_name):
        if _ingress_class(candidate) != SKIPPER_CLASS:
            continue
        predicates = _skipper_predicates(candidate)
        if not all(_skipper_predicate(p, request) for p in predicates):
            continue
        rank = _skipper_rank(predicates)
        for key, services in _skipper_groups(candidate, request).items():
            ranked = (*key, rank)
            if best is None or ranked > best[0]:
                best = (ranked, candidate, services)
    if best is None:
        return Resolution(None, via="Skipper (no Ingress matched)")
    _, ingress, services = best
    chosen = _weighted_choice(rng, _skipper_choices(ingress, services))
    return Resolution(chosen, via=f"Ingress/{_name(ingress)}")


def _skipper_groups(
    ingress: Mapping[str, Any], request: TrafficRequest
) -> dict[tuple[int, int], list[str]]:
    """The backends of each path of ``ingress`` that takes the request, by path rank."""
    host = request.host or ""
    groups: dict[tuple[int, int], list[str]] = {}
    for rule in (ingress.get("spec") or {}).get("rules") or ():
        if rule.get("host") and not _host_matches(str(rule["host"]), host):
            continue
        for path in (rule.get("http") or {}).get("paths") or ():
            key = _skipper_path_key(path, request.path)
            service = _service_of(path.get("backend"))
            if key is not None and service:
                groups.setdefault(key, []).append(str(service))
    return groups


def _skipper_choices(ingress: Mapping[str, Any], services: list[str]) -> list[tuple[str, float]]:
    """Listed backends split by weight (an unlisted one gets none); no weights: equal shares."""
    weights: dict[str, Any] = {}
    raw = _annotations(ingress).get("zalando.org/backend-weights")
    with contextlib.suppress(ValueError):
        decoded = json.loads(str(raw)) if raw else None
        weights = decoded if isinstance(decoded, dict) else {}
    listed = any(s in weights for s in services)
    return [(s, float(weights.get(s, 0)) if listed else 1.0) for s in services]


# ---------------------------------------------------------------------------- Contour


def _contour_header(condition: Mapping[str, Any], request: TrafficRequest) -> bool:
    """A Contour header condition, as Envoy's header matcher reads it (an absent header
    fails every test but ``notpresent``)."""
    value = request.header(str(condition.get("name", "")))
    if condition.get("notpresent"):
        return value is None
    if value is None:
        return False
    if condition.get("present"):
        return True
    if "exact" in condition:
        return value == str(condition["exact"])
    if "notexact" in condition:
        return value != str(condition["notexact"])
    if "contains" in condition:
        return str(condition["contains"]) in value
    if "notcontains" in condition:
        return str(condition["notcontains"]) not in value
    return False  # Contour refuses a header condition that tests nothing


def _contour_join(parent: str, child: str) -> str:
    """An include's prefix followed by its child's (``/`` + ``/`` is ``/``)."""
    joined = parent.rstrip("/") + (child if child.startswith("/") else f"/{child}")
    return joined or "/"


def _contour_conditions(conditions: Sequence[Mapping[str, Any]]) -> tuple[str, list[Obj]]:
    """(path prefix, header conditions) of one condition block."""
    prefix = ""
    headers: list[Obj] = []
    for condition in conditions:
        if condition.get("prefix"):
            prefix = _contour_join(prefix, str(condition["prefix"]))
        if isinstance(condition.get("header"), Mapping):
            headers.append(dict(condition["header"]))
    return prefix, headers


def _contour_routes(
    snapshot: Snapshot, proxy: Mapping[str, Any], prefix: str, headers: list[Obj], depth: int = 0
) -> list[tuple[str, list[Obj], Mapping[str, Any], str]]:
    """The routes of ``proxy`` and of the HTTPProxies it includes (in this namespace), each
    with its full prefix and header conditions: (prefix, headers, route, via)."""
    spec = proxy.get("spec") or {}
    out: list[tuple[str, list[Obj], Mapping[str, Any], str]] = []
    for route in spec.get("routes") or ():
        own_prefix, own_headers = _contour_conditions(route.get("conditions") or ())
        full = _contour_join(prefix, own_prefix) if own_prefix else (prefix or "/")
        out.append((full, headers + own_headers, route, f"HTTPProxy/{_name(proxy)}"))
    if depth >= 8:  # Contour refuses include cycles; a simulated one stops here
        return out
    for include in spec.get("includes") or ():
        if include.get("namespace", snapshot.namespace) != snapshot.namespace:
            continue
        child = next((p for p in snapshot.http_proxies if _name(p) == include.get("name")), None)
        if child is None:
            continue
        inc_prefix, inc_headers = _contour_conditions(include.get("conditions") or ())
        joined = _contour_join(prefix, inc_prefix) if inc_prefix else prefix
        out.extend(_contour_routes(snapshot, child, joined, headers + inc_headers, depth + 1))
    return out


def _resolve_contour(
    snapshot: Snapshot, entry: ContourEntry, request: TrafficRequest, rng: random.Random
) -> Resolution:
    """Through Contour's Envoy: the root HTTPProxy whose ``virtualhost.fqdn`` is the host,
    with its includes flattened; the longest matching prefix wins, then the route with
    more header conditions. Services split by weight (none weighted: equal shares), and
    a ``mirror`` service gets a copy of every request."""
    roots = [
        p
        for p in snapshot.http_proxies
        if _host_matches(
            str(((p.get("spec") or {}).get("virtualhost") or {}).get("fqdn", "")), entry.host
        )
    ]
    if not roots:
        return Resolution(None, via=f"HTTPProxy for {entry.host} (missing)")
    path = request.path.split("?", 1)[0]
    candidates = [
        (len(prefix), len(headers), -index, route, via)
        for index, (prefix, headers, route, via) in enumerate(
            _contour_routes(snapshot, roots[0], "", [])
        )
        if path.startswith(prefix) and all(_contour_header(h, request) for h in headers)
    ]
    if not candidates:
        return Resolution(None, via=f"HTTPProxy/{_name(roots[0])}")
    *_, route, via = max(candidates, key=lambda c: c[:3])
    services = route.get("services") or ()
    split = [s for s in services if not s.get("mirror")]
    weighted = any(float(s.get("weight") or 0) > 0 for s in split)
    choices = [
        (str(s.get("name", "")), float(s.get("weight") or 0) if weighted else 1.0) for s in split
    ]
    mirrors = tuple(str(s.get("name", "")) for s in services if s.get("mirror"))
    return Resolution(_weighted_choice(rng, choices), mirrors, via=via)


# -------------------------------------------------------------------------- Gloo Edge


def _gloo_header(matcher: Mapping[str, Any], request: TrafficRequest) -> bool:
    value = request.header(str(matcher.get("name", "")))
    wanted = str(matcher.get("value") or "")
    if value is None:
        ok = False
    elif not wanted:
        ok = True  # no value: the header must be present
    elif matcher.get("regex"):
        ok = re.fullmatch(wanted, value) is not None
    else:
        ok = value == wanted
    return ok != bool(matcher.get("invertMatch"))


def _gloo_path(matcher: Mapping[str, Any], path: str) -> bool:
    if matcher.get("exact") is not None:
        return path == str(matcher["exact"])
    if matcher.get("regex") is not None:
        return re.fullmatch(str(matcher["regex"]), path) is not None
    return path.startswith(str(matcher.get("prefix") or "/"))


def _gloo_matches(
    matchers: Sequence[Mapping[str, Any]],
    request: TrafficRequest,
    parent: Mapping[str, Any] | None = None,
    *,
    inherit_path: bool = False,
    inherit_rest: bool = False,
) -> bool:
    """Whether one of ``matchers`` takes ``request`` (no matchers: prefix ``/``). A
    delegated route may take its path, or its headers and methods, from ``parent``."""
    path = request.path.split("?", 1)[0]
    for matcher in matchers or ({},):
        has_path = any(matcher.get(k) is not None for k in ("prefix", "exact", "regex"))
        source = parent if parent is not None and (inherit_path or not has_path) else matcher
        if not _gloo_path(source or {}, path):
            continue
        headers = list(matcher.get("headers") or ())
        methods = list(matcher.get("methods") or ())
        if parent is not None and inherit_rest:
            headers += list(parent.get("headers") or ())
            methods += list(parent.get("methods") or ())
        if methods and request.method not in methods:
            continue
        if all(_gloo_header(h, request) for h in headers):
            return True
    return False


def _gloo_action(snapshot: Snapshot, action: Mapping[str, Any], rng: random.Random) -> str | None:
    """The Service a route action sends to; None when it sends nowhere or names an
    Upstream that does not exist (Gloo rejects the route)."""
    multi = action.get("multi")
    if isinstance(multi, Mapping):
        refs = [
            (((d.get("destination") or {}).get("upstream") or {}), float(d.get("weight") or 0))
            for d in multi.get("destinations") or ()
        ]
    else:
        refs = [(((action.get("single") or {}).get("upstream") or {}), 1.0)]
    choices: list[tuple[str, float]] = []
    for ref, weight in refs:
        if ref.get("namespace", snapshot.namespace) != snapshot.namespace:
            return None
        upstream = next((u for u in snapshot.upstreams if _name(u) == ref.get("name")), None)
        kube = ((upstream or {}).get("spec") or {}).get("kube") or {}
        if not kube.get("serviceName"):
            return None
        choices.append((str(kube["serviceName"]), weight))
    return _weighted_choice(rng, choices) if choices else None


def _resolve_gloo(
    snapshot: Snapshot, entry: GlooEntry, request: TrafficRequest, rng: random.Random
) -> Resolution:
    """Through Gloo Edge's gateway-proxy: the Gloo VirtualService whose domains take the
    host, its routes in order, a ``delegateAction`` followed into the RouteTable it names
    (routes in order, inheriting the parent's path with ``inheritablePathMatchers``)."""
    for vs in snapshot.gloo_virtual_services:
        host = (vs.get("spec") or {}).get("virtualHost") or {}
        if not any(_host_matches(str(d), entry.host) for d in host.get("domains") or ("*",)):
            continue
        for route in host.get("routes") or ():
            matchers: Sequence[Mapping[str, Any]] = route.get("matchers") or ()
            if not _gloo_matches(matchers, request):
                continue
            delegate = route.get("delegateAction")
            if not isinstance(delegate, Mapping):
                target = _gloo_action(snapshot, route.get("routeAction") or {}, rng)
                return Resolution(target, via=f"VirtualService/{_name(vs)}")
            ref = delegate.get("ref") or delegate
            if ref.get("namespace", snapshot.namespace) != snapshot.namespace:
                continue
            found = _gloo_delegated(snapshot, str(ref.get("name")), matchers, request, rng)
            if found is not None:
                return found
        return Resolution(None, via=f"VirtualService/{_name(vs)}")
    return Resolution(None, via=f"Gloo VirtualService for {entry.host} (missing)")


def _gloo_delegated(
    snapshot: Snapshot,
    name: str,
    matchers: Sequence[Mapping[str, Any]],
    request: TrafficRequest,
    rng: random.Random,
) -> Resolution | None:
    """The first route of RouteTable ``name`` that takes the request, inheriting the
    parent's matcher that took it; None when none does."""
    table = next((t for t in snapshot.route_tables if _name(t) == name), None)
    chosen: Mapping[str, Any] = next(
        (m for m in matchers or ({},) if _gloo_matches([m], request)), {}
    )
    for child in ((table or {}).get("spec") or {}).get("routes") or ():
        if _gloo_matches(
            child.get("matchers") or (),
            request,
            chosen,
            inherit_path=bool(child.get("inheritablePathMatchers")),
            inherit_rest=bool(child.get("inheritableMatchers")),
        ):
            target = _gloo_action(snapshot, child.get("routeAction") or {}, rng)
            return Resolution(target, via=f"RouteTable/{_name(table or {})}")
    return None


# Snapshot field -> (apiVersion, kind) of the proxies' own routing CRDs, read with the rest.
PROXY_KINDS: dict[str, tuple[str, str]] = {
    "ingress_routes": ("traefik.io/v1alpha1", "IngressRoute"),
    "traefik_services": ("traefik.io/v1alpha1", "TraefikService"),
    "apisix_routes": ("apisix.apache.org/v2", "ApisixRoute"),
    "http_proxies": ("projectcontour.io/v1", "HTTPProxy"),
    "gloo_virtual_services": ("gateway.solo.io/v1", "VirtualService"),
    "route_tables": ("gateway.solo.io/v1", "RouteTable"),
    "upstreams": ("gloo.solo.io/v1", "Upstream"),
}


async def _with_proxy_kinds(api: ObjectLister, old: Snapshot, new: Snapshot) -> Snapshot:
    """``new`` with the `PROXY_KINDS` objects; a kind not served reads as none, one that
    cannot be read this time keeps its previous objects."""

    async def one(field_name: str, api_version: str, kind: str) -> tuple[Obj, ...]:
        try:
            return tuple(await api.list(api_version, kind, new.namespace))
        except NotFound:
            return ()
        except Exception:
            return tuple(getattr(old, field_name))

    found = await asyncio.gather(*(one(f, *kind) for f, kind in PROXY_KINDS.items()))
    fields: dict[str, Any] = dict(zip(PROXY_KINDS, found, strict=True))
    return dataclasses.replace(new, **fields)


# ---------------------------------------------------------------------------- resolve


def resolve(
    snapshot: Snapshot,
    entry: Entry,
    request: TrafficRequest,
    rng: random.Random,
    *,
    nginx_prefix: str = DEFAULT_NGINX_PREFIX,
) -> Resolution:
    """Which Service serves ``request`` arriving at ``entry``, as the data plane decides."""
    if isinstance(entry, TraefikEntry):
        return _resolve_traefik(snapshot, entry, request, rng)
    if isinstance(entry, ApisixEntry):
        return _resolve_apisix(snapshot, entry, request, rng)
    if isinstance(entry, ContourEntry):
        return _resolve_contour(snapshot, entry, request, rng)
    if isinstance(entry, GlooEntry):
        return _resolve_gloo(snapshot, entry, request, rng)
    if isinstance(entry, IngressEntry) and _is_skipper_ingress(snapshot, entry.ingress):
        return _resolve_skipper(snapshot, entry, request, rng)
    if isinstance(entry, IngressEntry):
        return _resolve_ingress(snapshot, entry, request, rng, nginx_prefix)
    if isinstance(entry, GatewayEntry):
        return _resolve_gateway(snapshot, entry, request, rng)
    return _resolve_service(snapshot, entry, request, rng)


def _resolve_gateway(
    snapshot: Snapshot, entry: GatewayEntry, request: TrafficRequest, rng: random.Random
) -> Resolution:
    """Through a gateway: an Istio VirtualService bound to it for the host, else the
    HTTPRoutes attached to the Gateway API Gateway."""
    ns = snapshot.namespace
    names = _gateway_names(entry.gateway, entry.gateway_namespace or ns)
    for vs in snapshot.virtual_services:
        hosts = (vs.get("spec") or {}).get("hosts") or []
        if names & set(_vs_gateways(vs)) and any(_host_matches(str(h), entry.host) for h in hosts):
            return _resolve_virtual_service(vs, ns, request, rng, entry.gateway)
    routes = [
        r
        for r in snapshot.http_routes
        if _hostnames_match(r, entry.host)
        and any(
            _parent_is(
                p,
                kind="Gateway",
                name=entry.gateway,
                namespace=entry.gateway_namespace or ns,
                route_namespace=ns,
            )
            for p in (r.get("spec") or {}).get("parentRefs") or ()
        )
    ]
    return _resolve_http_routes(routes, request, rng) if routes else Resolution(None)


def _resolve_service(
    snapshot: Snapshot, entry: ServiceEntry, request: TrafficRequest, rng: random.Random
) -> Resolution:
    """A client inside the mesh calling a Service: the mesh's routing for that Service
    (Istio, then GAMMA HTTPRoutes, then an SMI TrafficSplit), else the Service itself."""
    knative = _resolve_knative(snapshot, entry, rng)
    if knative is not None:
        return knative
    mesh = _resolve_kuma(snapshot, entry, rng) or _resolve_appmesh(snapshot, entry, request, rng)
    if mesh is not None:
        return mesh
    ns = snapshot.namespace
    for vs in snapshot.virtual_services:
        hosts = {_short_host(str(h), ns) for h in (vs.get("spec") or {}).get("hosts") or ()}
        if entry.name in hosts and "mesh" in _vs_gateways(vs):
            return _resolve_virtual_service(vs, ns, request, rng, None)
    routes = [
        r
        for r in snapshot.http_routes
        if any(
            _parent_is(
                p, kind="Service", name=entry.name, namespace=entry.namespace, route_namespace=ns
            )
            for p in (r.get("spec") or {}).get("parentRefs") or ()
        )
    ]
    if routes:
        resolution = _resolve_http_routes(routes, request, rng)
        if resolution.service is not None:
            return resolution
    for split in snapshot.traffic_splits:
        spec = split.get("spec") or {}
        if _short_host(str(spec.get("service", "")), ns) == entry.name:
            choices = [
                (str(b.get("service", "")), _quantity(b.get("weight", 0)))
                for b in spec.get("backends") or ()
            ]
            return Resolution(_weighted_choice(rng, choices), via=f"TrafficSplit/{_name(split)}")
    return Resolution(
        entry.name if entry.name in snapshot.services else None, via=f"Service/{entry.name}"
    )


# ---------------------------------------------------------------------------- knative

KNATIVE_REVISION_LABEL = "serving.knative.dev/revision"
KNATIVE_PRIMARY_ANNOTATION = "flagger.app/primary-revision"


def _resolve_knative(
    snapshot: Snapshot, entry: ServiceEntry, rng: random.Random
) -> Resolution | None:
    """A Knative Service's Route: ``spec.traffic`` percentages, each entry a pinned
    ``revisionName`` or (``latestRevision``, the default without a name) the latest
    *ready* Revision; None when ``entry`` names no Knative Service. Resolves to the
    Revision, whose pods carry the ``serving.knative.dev/revision`` label."""
    ksvc = next((k for k in snapshot.knative_services if _name(k) == entry.name), None)
    if ksvc is None:
        return None
    latest = str((ksvc.get("status") or {}).get("latestReadyRevisionName") or "")
    traffic = (ksvc.get("spec") or {}).get("traffic") or [{"latestRevision": True, "percent": 100}]
    choices: list[tuple[str, float]] = []
    for target in traffic:
        follows = target.get("latestRevision")
        if follows is None:
            follows = not target.get("revisionName")
        revision = latest if follows else str(target.get("revisionName") or "")
        choices.append((revision, float(target.get("percent") or 0)))
    chosen = _weighted_choice(rng, choices)
    return Resolution(chosen or None, via=f"KnativeService/{entry.name}")


def _knative_revision(snapshot: Snapshot, name: str) -> Version | None:
    """For a Revision of a Knative Service in the snapshot: primary when it is the pinned
    ``flagger.app/primary-revision`` (or none is pinned), else canary; None otherwise."""
    for ksvc in snapshot.knative_services:
        status = ksvc.get("status") or {}
        pinned = _annotations(ksvc).get(KNATIVE_PRIMARY_ANNOTATION)
        revisions = {
            status.get("latestReadyRevisionName"),
            status.get("latestCreatedRevisionName"),
            pinned,
            *((t or {}).get("revisionName") for t in (ksvc.get("spec") or {}).get("traffic") or ()),
        }
        if name and name in revisions:
            return "primary" if not pinned or name == pinned else "canary"
    return None


async def _with_knative(api: ObjectLister, old: Snapshot, new: Snapshot) -> Snapshot:
    """``new`` with the namespace's Knative Services (kept from ``old`` on a passing error)."""
    try:
        found = tuple(await api.list("serving.knative.dev/v1", "Service", new.namespace))
    except NotFound:
        found = ()
    except Exception:
        found = old.knative_services
    return dataclasses.replace(new, knative_services=found)


# ------------------------------------------------------------------ Kuma and App Mesh

KUMA_SERVICE_TAG = "kuma.io/service"


def _kuma_service(tag: str, namespace: str, caller: str) -> str | None:
    """The Service a ``kuma.io/service`` tag names in ``namespace`` (``<name>_<ns>_svc_<port>``);
    ``*`` is the called Service itself; None for another namespace or a non-Service tag."""
    if tag == "*":
        return caller
    parts = tag.rsplit("_", 3)
    if len(parts) != 4 or parts[2] != "svc" or parts[1] != namespace:
        return None
    return parts[0]


def _resolve_kuma(snapshot: Snapshot, entry: ServiceEntry, rng: random.Random) -> Resolution | None:
    """Kuma: the most specific TrafficRoute whose destination is the called Service sends
    the request to one of its ``conf.split`` destinations by weight (or ``conf.destination``)."""
    ns = snapshot.namespace
    best: tuple[int, Mapping[str, Any]] | None = None
    for route in snapshot.traffic_routes:
        spec = route.get("spec") or {}
        for selector in spec.get("destinations") or ():
            tag = str((selector.get("match") or {}).get(KUMA_SERVICE_TAG, ""))
            specific = 0 if tag == "*" else 1
            if _kuma_service(tag, ns, entry.name) == entry.name and (
                best is None or specific > best[0]
            ):
                best = (specific, route)
    if best is None:
        return None
    winner = best[1]
    conf = (winner.get("spec") or {}).get("conf") or {}
    split = conf.get("split") or (
        [{"weight": 1, "destination": conf["destination"]}] if conf.get("destination") else []
    )
    choices = [
        (
            _kuma_service(
                str((s.get("destination") or {}).get(KUMA_SERVICE_TAG, "")), ns, entry.name
            )
            or "",
            _quantity(s.get("weight", 0)),
        )
        for s in split
    ]
    chosen = _weighted_choice(rng, choices) if choices else None
    return Resolution(chosen or None, via=f"TrafficRoute/{_name(winner)}")


def _appmesh_header(rule: Mapping[str, Any], request: TrafficRequest) -> bool:
    """One App Mesh route header: exact, prefix, suffix, regex (whole value), range; ``invert``."""
    value = request.header(str(rule.get("name", "")))
    how = rule.get("match") or {}
    if value is None:
        matched = False
    elif "exact" in how:
        matched = value == str(how["exact"])
    elif "prefix" in how:
        matched = value.startswith(str(how["prefix"]))
    elif "suffix" in how:
        matched = value.endswith(str(how["suffix"]))
    elif "regex" in how:
        matched = re.fullmatch(str(how["regex"]), value) is not None
    elif "range" in how:
        bounds = how["range"] or {}
        matched = value.lstrip("-").isdigit() and (
            int(bounds.get("start", 0)) <= int(value) < int(bounds.get("end", 0))
        )
    else:
        matched = True  # a header that must only be present
    return matched != bool(rule.get("invert"))


def _appmesh_route_target(
    routes: Sequence[Mapping[str, Any]], request: TrafficRequest, rng: random.Random
) -> str | None:
    """The virtual node App Mesh sends ``request`` to: the first route by ``priority`` (0 is
    the highest; routes without one come last, in order) whose prefix, method and headers
    all match, then one of its weighted targets."""
    ordered = sorted(enumerate(routes), key=lambda r: (r[1].get("priority", 1001), r[0]))
    for _, route in ordered:
        http = route.get("httpRoute") or route.get("http2Route") or route.get("http")
        if not isinstance(http, Mapping):
            continue
        match = http.get("match") or {}
        if not request.path.startswith(str(match.get("prefix", "/"))):
            continue
        if match.get("method") and str(match["method"]).upper() != request.method.upper():
            continue
        if not all(_appmesh_header(h, request) for h in match.get("headers") or ()):
            continue
        targets = [
            (
                str((t.get("virtualNodeRef") or {}).get("name") or t.get("virtualNodeName", "")),
                float(t.get("weight", 0)),
            )
            for t in (http.get("action") or {}).get("weightedTargets") or ()
        ]
        return _weighted_choice(rng, targets) if targets else None
    return None


def _appmesh_node_service(snapshot: Snapshot, node: str) -> str | None:
    """The Service a virtual node's DNS service discovery names (``hostName`` in v1beta1)."""
    for obj in snapshot.appmesh_nodes:
        if _name(obj) == node:
            dns = ((obj.get("spec") or {}).get("serviceDiscovery") or {}).get("dns") or {}
            host = str(dns.get("hostname") or dns.get("hostName") or "").rstrip(".")
            return _short_host(host, snapshot.namespace) if host else None
    return None


def _resolve_appmesh(
    snapshot: Snapshot, entry: ServiceEntry, request: TrafficRequest, rng: random.Random
) -> Resolution | None:
    """App Mesh: the VirtualService for the called host (v1beta1: named after the host,
    routes embedded; v1beta2: ``awsName`` or ``<name>.<ns>``, routes in the VirtualRouter
    it names), a route, a virtual node, and the Service its DNS discovery names."""
    ns = snapshot.namespace
    for vs in snapshot.appmesh_services:
        spec = vs.get("spec") or {}
        if _short_host(str(spec.get("awsName") or _name(vs)), ns) != entry.name:
            continue
        via = f"VirtualService/{_name(vs)}"
        provider = spec.get("provider") or {}
        node: str | None
        if "routes" in spec or "virtualRouter" in spec:
            node = _appmesh_route_target(spec.get("routes") or (), request, rng)
        elif "virtualRouter" in provider:
            wanted = ((provider["virtualRouter"] or {}).get("virtualRouterRef") or {}).get("name")
            router = next((r for r in snapshot.appmesh_routers if _name(r) == wanted), None)
            routes = ((router or {}).get("spec") or {}).get("routes") or ()
            node = _appmesh_route_target(routes, request, rng)
        else:
            node = ((provider.get("virtualNode") or {}).get("virtualNodeRef") or {}).get("name")
        service = _appmesh_node_service(snapshot, node) if node else None
        return Resolution(service, via=via)
    return None


# field -> (apiVersion, kind, apiVersion to read when the first has none): App Mesh's
# v1beta2 first, its legacy v1beta1 when that has none (a cluster serves one or the other).
MESH_KINDS: dict[str, tuple[str, str, str]] = {
    "traffic_routes": ("kuma.io/v1alpha1", "TrafficRoute", ""),
    "appmesh_services": ("appmesh.k8s.aws/v1beta2", "VirtualService", "appmesh.k8s.aws/v1beta1"),
    "appmesh_routers": ("appmesh.k8s.aws/v1beta2", "VirtualRouter", ""),
    "appmesh_nodes": ("appmesh.k8s.aws/v1beta2", "VirtualNode", "appmesh.k8s.aws/v1beta1"),
}


async def _with_meshes(api: ObjectLister, old: Snapshot, new: Snapshot) -> Snapshot:
    """``new`` with Kuma's and App Mesh's objects (`MESH_KINDS`); a kind not served reads
    as none, one that cannot be read this time keeps its previous objects."""

    async def one(field_name: str, api_version: str, kind: str, fallback: str) -> tuple[Obj, ...]:
        try:
            found = tuple(await api.list(api_version, kind, new.namespace))
        except NotFound:
            found = ()
        except Exception:
            return tuple(getattr(old, field_name))
        return found or (await one(field_name, fallback, kind, "") if fallback else ())

    routes, services, routers, nodes = await asyncio.gather(
        *(one(f, *kind) for f, kind in MESH_KINDS.items())
    )
    return dataclasses.replace(
        new,
        traffic_routes=routes,
        appmesh_services=services,
        appmesh_routers=routers,
        appmesh_nodes=nodes,
    )


# ------------------------------------------------------------------------------- pods


def _ready(pod: Mapping[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") not in (None, "Running"):
        return False
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return bool(status.get("phase") == "Running")


def service_version(snapshot: Snapshot, service: str) -> Version:
    """Primary when the Service selects ``<value>-primary`` pods (or is named so), else canary.

    ``<x>-primary`` and ``<x>-canary`` are that by name whatever they select: the copies
    of a Service target select the user's own pods."""
    knative = _knative_revision(snapshot, service) if service not in snapshot.services else None
    if knative is not None:
        return knative
    if service.endswith(("-primary", "-canary")):
        return "canary" if service.endswith("-canary") else "primary"
    svc = snapshot.services.get(service)
    if svc is not None:
        selector = (svc.get("spec") or {}).get("selector") or {}
        if selector:
            return (
                "primary"
                if any(str(v).endswith("-primary") for v in selector.values())
                else "canary"
            )
    return "canary" if service.endswith("-canary") else "primary"


def service_pods(snapshot: Snapshot, service: str, *, synthetic: bool = False) -> list[str]:
    """Names of the ready pods behind ``service`` (sorted)."""
    svc = snapshot.services.get(service)
    selector = ((svc or {}).get("spec") or {}).get("selector") or {}
    if svc is None and _knative_revision(snapshot, service) is not None:
        selector = {KNATIVE_REVISION_LABEL: service}  # a Knative Revision's pods
    if not selector:
        return [f"{service}-0"] if synthetic else []
    names = sorted(
        _name(p)
        for p in snapshot.pods
        if _ready(p)
        and all(
            ((p.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in selector.items()
        )
    )
    if not names and synthetic:
        value = next(iter(selector.values()))
        names = [f"{value}-0"]
    return names


# ========================================================================== generator


class Backend(Protocol):
    """Serves one request on one pod; returns the HTTP status (None means 200).

    Raising counts as a failed request. The response of a mirrored copy is ignored.
    """

    def __call__(
        self, version: Version, pod: str, request: TrafficRequest
    ) -> Awaitable[int | None]: ...


@dataclass(frozen=True, slots=True)
class TrafficWindow:
    """What happened to the requests sent during one window."""

    started: float
    ended: float
    primary: int = 0
    canary: int = 0
    mirror: int = 0  # copies sent to the canary, not counted in canary
    unrouted: int = 0  # no route matched (404 from the proxy)
    unavailable: int = 0  # the chosen Service had no ready pods (503)
    failed: int = 0  # the backend raised or answered >= 500
    dropped: int = 0  # not sent because too many requests were in flight
    pods: Mapping[str, int] = field(default_factory=dict)

    @property
    def routed(self) -> int:
        return self.primary + self.canary

    @property
    def canary_share(self) -> float:
        """The fraction of routed requests the canary served (0 when nothing was routed)."""
        return self.canary / self.routed if self.routed else 0.0


@dataclass
class _Counts:
    started: float
    counts: Counter[str] = field(default_factory=Counter)
    pods: Counter[str] = field(default_factory=Counter)

    def freeze(self, ended: float) -> TrafficWindow:
        c = self.counts
        return TrafficWindow(
            started=self.started,
            ended=ended,
            primary=c["primary"],
            canary=c["canary"],
            mirror=c["mirror"],
            unrouted=c["unrouted"],
            unavailable=c["unavailable"],
            failed=c["failed"],
            dropped=c["dropped"],
            pods=dict(self.pods),
        )


def _loop_time() -> float:
    """The running loop's clock (virtual under looptime), else the monotonic clock."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


async def counting_backend(version: Version, pod: str, request: TrafficRequest) -> int | None:
    """A backend that serves every request instantly with 200."""
    return None


class TrafficGenerator:
    """Poisson traffic from simulated clients through the routing objects of one namespace."""

    def __init__(
        self,
        api: ObjectLister,
        entry: Entry,
        *,
        backend: Backend = counting_backend,
        rate: float = 20.0,
        profiles: Sequence[RequestProfile] = (RequestProfile(),),
        clients: int = 100,
        seed: int | None = None,
        refresh_interval: float = 0.5,
        max_in_flight: int = 200,
        nginx_prefix: str = DEFAULT_NGINX_PREFIX,
        istio_version: str = "v1beta1",
        gateway_version: str = "v1",
        smi_version: str = "v1alpha3",
        synthetic_pods: bool = False,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive (requests per second)")
        if (
            not profiles
            or any(p.weight < 0 for p in profiles)
            or sum(p.weight for p in profiles) <= 0
        ):
            raise ValueError("profiles need a positive total weight")
        self.api = api
        self.entry = entry
        self.backend = backend
        self.rate = rate
        self.profiles = tuple(profiles)
        self.clients = max(1, clients)
        self.rng = random.Random(seed)
        self.refresh_interval = refresh_interval
        self.max_in_flight = max_in_flight
        self.nginx_prefix = nginx_prefix
        self.kinds = (
            ("v1", "Service"),
            ("v1", "Pod"),
            ("networking.k8s.io/v1", "Ingress"),
            (f"networking.istio.io/{istio_version}", "VirtualService"),
            (f"gateway.networking.k8s.io/{gateway_version}", "HTTPRoute"),
            (f"split.smi-spec.io/{smi_version}", "TrafficSplit"),
        )
        self.synthetic_pods = synthetic_pods
        self.clock = clock or _loop_time
        self.sleep = sleep
        self.snapshot: Snapshot | None = None
        self.jars: dict[int, dict[str, str]] = {}
        self._ids = itertools.count(1)
        self._window = _Counts(self.clock())
        self._total = _Counts(self.clock())
        self._in_flight: set[asyncio.Task[Resolution]] = set()

    # ------------------------------------------------------------------ reading

    @property
    def namespace(self) -> str:
        return self.entry.namespace

    async def _list(self, api_version: str, kind: str) -> list[Obj] | None:
        """The objects of one kind; [] if the kind is not served, None on a passing error."""
        try:
            return await self.api.list(api_version, kind, self.namespace)
        except NotFound:  # kind not installed (no CRD): nothing routes that way
            return []
        except Exception:  # a passing API error: keep what was read last time
            return None

    async def refresh(self) -> Snapshot:
        """Read the namespace's routing objects again; returns the new snapshot.

        A kind that cannot be read this time keeps its previous objects, so a hiccup
        of the API server does not look like every route disappearing.
        """
        lists = await asyncio.gather(*(self._list(v, k) for v, k in self.kinds))
        old = self.snapshot or Snapshot(self.namespace)
        previous: list[Sequence[Obj]] = [
            list(old.services.values()),
            old.pods,
            old.ingresses,
            old.virtual_services,
            old.http_routes,
            old.traffic_splits,
        ]
        services, pods, ingresses, vss, routes, splits = (
            fresh if fresh is not None else list(prev)
            for fresh, prev in zip(lists, previous, strict=True)
        )
        self.snapshot = Snapshot(
            namespace=self.namespace,
            services={_name(s): s for s in services},
            pods=tuple(pods),
            ingresses=tuple(ingresses),
            virtual_services=tuple(vss),
            http_routes=tuple(routes),
            traffic_splits=tuple(splits),
        )
        self.snapshot = await _with_knative(self.api, old, self.snapshot)
        self.snapshot = await _with_proxy_kinds(self.api, old, self.snapshot)
        self.snapshot = await _with_meshes(self.api, old, self.snapshot)
        return self.snapshot

    # --------------------------------------------------------------- requests

    def _new_request(self) -> TrafficRequest:
        weights = [p.weight for p in self.profiles]
        profile = self.rng.choices(self.profiles, weights=weights)[0]
        client = self.rng.randrange(self.clients)
        cookies = {**self.jars.get(client, {}), **profile.cookies}
        headers = dict(profile.headers)
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        host = self._host()
        return TrafficRequest(next(self._ids), client, host, profile.path, profile.method, headers)

    def _host(self) -> str:
        entry = self.entry
        if isinstance(entry, GatewayEntry | TraefikEntry | ApisixEntry | ContourEntry | GlooEntry):
            return entry.host
        if isinstance(entry, ServiceEntry):
            return entry.name
        if entry.host:
            return entry.host
        for ingress in self.snapshot.ingresses if self.snapshot else ():
            if _name(ingress) == entry.ingress:
                for rule in (ingress.get("spec") or {}).get("rules") or ():
                    if rule.get("host"):
                        return str(rule["host"])
        return ""

    def _store_cookies(self, client: int, set_cookies: Sequence[str]) -> None:
        jar = self.jars.setdefault(client, {})
        for value in set_cookies:
            first, *attributes = [part.strip() for part in value.split(";")]
            name, sep, val = first.partition("=")
            if not sep:
                continue
            expired = any(
                a.lower().startswith("max-age=")
                and a.split("=", 1)[1].strip().startswith(("-", "0"))
                for a in attributes
            )
            if expired:
                jar.pop(name, None)
            else:
                jar[name] = val

    def _count(self, key: str, pod: str | None = None) -> None:
        for counts in (self._window, self._total):
            counts.counts[key] += 1
            if pod:
                counts.pods[pod] += 1

    async def _serve(
        self, service: str, request: TrafficRequest
    ) -> tuple[str, Version | None, str | None]:
        assert self.snapshot is not None
        pods = service_pods(self.snapshot, service, synthetic=self.synthetic_pods)
        if not pods:
            return "unavailable", None, None
        pod = self.rng.choice(pods)
        version = service_version(self.snapshot, service)
        try:
            status = await self.backend(version, pod, request)
        except Exception:
            return "failed", version, pod
        if status is not None and status >= 500:
            return "failed", version, pod
        return "ok", version, pod

    async def send_one(self) -> Resolution:
        """Send one request now (refreshing first if nothing was read yet)."""
        if self.snapshot is None:
            await self.refresh()
        assert self.snapshot is not None
        request = self._new_request()
        resolution = resolve(
            self.snapshot, self.entry, request, self.rng, nginx_prefix=self.nginx_prefix
        )
        mirrors = []
        for service in resolution.mirrors:
            shadow = TrafficRequest(
                request.id,
                request.client,
                f"{request.host}-shadow",
                request.path,
                request.method,
                request.headers,
                shadow=True,
            )
            mirrors.append(self._serve(service, shadow))
        if resolution.service is None:
            self._count("unrouted")
        else:
            outcome, version, pod = await self._serve(resolution.service, request)
            if outcome == "unavailable":
                self._count("unavailable")
            else:
                assert version is not None
                self._count(version, pod)
                if outcome == "failed":
                    self._count("failed")
                self._store_cookies(request.client, resolution.set_cookies)
        for outcome, _, _pod in await asyncio.gather(*mirrors):
            if outcome != "unavailable":
                self._count("mirror")
        return resolution

    async def send(self, count: int) -> TrafficWindow:
        """Send ``count`` requests one after another against the current snapshot; their window."""
        self.take_window()
        for _ in range(count):
            await self.send_one()
        return self.take_window()

    # ------------------------------------------------------------------- windows

    def take_window(self) -> TrafficWindow:
        """The counts since the last call, and a new window."""
        now = self.clock()
        window = self._window.freeze(now)
        self._window = _Counts(now)
        return window

    def totals(self) -> TrafficWindow:
        return self._total.freeze(self.clock())

    # --------------------------------------------------------------------- pacing

    async def _refresh_loop(self) -> None:
        while True:
            await self.refresh()
            await self.sleep(self.refresh_interval)

    def _launch(self) -> None:
        if len(self._in_flight) >= self.max_in_flight:
            self._count("dropped")
            return
        task = asyncio.ensure_future(self.send_one())
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def run(self, duration: float | None = None) -> None:
        """Send requests at ``rate`` (exponential gaps) until cancelled or ``duration`` ends."""
        await self.refresh()
        refresher = asyncio.ensure_future(self._refresh_loop())
        start = self.clock()
        due = start
        try:
            while duration is None or due - start < duration:
                due += self.rng.expovariate(self.rate)
                if duration is not None and due - start >= duration:
                    break
                delay = due - self.clock()
                if delay > 0:
                    await self.sleep(delay)
                self._launch()
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[TrafficGenerator]:
        """Generate traffic in the background for the duration of the ``async with``."""
        task = asyncio.ensure_future(self.run())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            for pending in list(self._in_flight):
                pending.cancel()
