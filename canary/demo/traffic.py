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
import itertools
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


Entry = ServiceEntry | IngressEntry | GatewayEntry


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
    """Primary when the Service selects ``<value>-primary`` pods (or is named so), else canary."""
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
        if isinstance(entry, GatewayEntry):
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
