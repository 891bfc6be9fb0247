"""The NGINX canary Ingress, computed without I/O.

ingress-nginx splits traffic between two Ingresses for the same host and path: the
user's Ingress (``spec.ingressRef``, never modified) and a second one marked with
``<prefix>/canary: "true"``. The controller keeps that second one,
``<ingress>-canary``, as a copy of the original whose backend ``<svc>`` is replaced
by ``<svc>-canary``; its annotations are the original's minus kubectl's
last-applied and minus every ``<prefix>/canary*`` key, plus the routing annotations:

* progressive (and blue/green): ``<prefix>/canary-weight: "<w>"``;
* A/B testing while the canary is on: ``canary-by-header`` with
  ``canary-by-header-value`` (exact match) or ``canary-by-header-pattern`` (regex),
  and ``canary-by-cookie`` for a header named ``cookie`` in the match (users send
  ``<cookie>=always``). NGINX evaluates header, then cookie, then weight.

Weights are read back from those annotations (`read_ingress_routes`).
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
)
from canary.core.observations import Routes
from canary.jsontree import json_copy
from canary.model.canary import TOTAL_WEIGHT, Canary

DEFAULT_ANNOTATIONS_PREFIX = "nginx.ingress.kubernetes.io"
INGRESS_API_VERSION = "networking.k8s.io/v1"


def canary_ingress_name(canary: Canary) -> str:
    ref = canary.spec.ingress_ref
    if ref is None or not ref.name:
        raise RouterError(
            "the nginx provider needs ingressRef (the Ingress to clone)", field="spec.ingressRef"
        )
    return f"{ref.name}-canary"


def ingress_api_version(canary: Canary) -> str:
    """Always ``networking.k8s.io/v1``: the only Ingress API since Kubernetes 1.22.

    An ``ingressRef.apiVersion`` of ``extensions/v1beta1`` or
    ``networking.k8s.io/v1beta1`` (old Flagger manifests) names the same object.
    """
    return INGRESS_API_VERSION


def _key(prefix: str, name: str) -> str:
    return f"{prefix}/{name}"


def _ab_annotations(canary: Canary, prefix: str) -> dict[str, str]:
    """The ``canary-by-*`` annotations for ``analysis.match`` (one header, one cookie)."""
    header: tuple[str, str, str] | None = None  # (name, kind, value)
    cookie: str | None = None
    for index, match in enumerate(canary.spec.analysis_or_default.match):
        base = f"spec.analysis.match[{index}]"
        for key in match:
            if key not in ("headers", "name"):
                raise RouterError(
                    f'NGINX can route A/B traffic by header or cookie only, not by "{key}"',
                    field=f"{base}.{key}",
                )
        for name, rule in (match.get("headers") or {}).items():
            where = f"{base}.headers.{name}"
            if not isinstance(rule, Mapping):
                raise RouterError("expected a string match (exact or regex)", field=where)
            if name.lower() == "cookie":
                if "exact" not in rule:
                    raise RouterError(
                        "a cookie match needs exact: <cookie name> (NGINX routes <name>=always to the canary)",
                        field=where,
                    )
                if cookie is not None and cookie != str(rule["exact"]):
                    raise RouterError("NGINX can route by one cookie only", field=where)
                cookie = str(rule["exact"])
                continue
            if "exact" in rule:
                wanted = (name, "exact", str(rule["exact"]))
            elif "regex" in rule:
                wanted = (name, "regex", str(rule["regex"]))
            else:
                raise RouterError(
                    "NGINX matches headers by exact value or regex only (no prefix or suffix)",
                    field=where,
                )
            if header is not None and header != wanted:
                raise RouterError("NGINX can route by one header only", field=where)
            header = wanted
    out: dict[str, str] = {}
    if header is not None:
        name, kind, value = header
        out[_key(prefix, "canary-by-header")] = name
        suffix = "canary-by-header-value" if kind == "exact" else "canary-by-header-pattern"
        out[_key(prefix, suffix)] = value
    if cookie is not None:
        out[_key(prefix, "canary-by-cookie")] = cookie
    return out


def routing_annotations(
    canary: Canary, routes: Routes, prefix: str = DEFAULT_ANNOTATIONS_PREFIX
) -> dict[str, str]:
    """The ``<prefix>/canary*`` annotations that route ``routes``."""
    if routes.mirrored:
        raise RouterError("NGINX cannot mirror traffic", field="spec.analysis.mirror")
    out = {_key(prefix, "canary"): "true"}
    if canary.spec.analysis_or_default.match and routes.canary > 0:
        out.update(_ab_annotations(canary, prefix))
        return out
    out[_key(prefix, "canary-weight")] = str(routes.canary)
    return out


def _is_routing_key(key: str, prefix: str) -> bool:
    return key.startswith(_key(prefix, "canary"))


def _retarget(spec: Obj, apex: str, canary_svc: str) -> bool:
    found = False
    backends = []
    default = spec.get("defaultBackend")
    if isinstance(default, dict):
        backends.append(default)
    for rule in spec.get("rules") or ():
        for path in ((rule or {}).get("http") or {}).get("paths") or ():
            if isinstance((path or {}).get("backend"), dict):
                backends.append(path["backend"])
    for backend in backends:
        service = backend.get("service")
        if isinstance(service, dict) and service.get("name") == apex:
            service["name"] = canary_svc
            found = True
    return found


def canary_ingress(
    canary: Canary,
    original: Mapping[str, Any],
    current: Obj | None,
    routes: Routes | None = None,
    *,
    prefix: str = DEFAULT_ANNOTATIONS_PREFIX,
) -> Obj:
    """``<ingress>-canary`` for ``original``; with ``routes`` None, the current routing is kept."""
    service = canary.spec.service
    spec = json_copy(original.get("spec") or {})
    if not _retarget(spec, service.name, service.canary_name):
        ingress = (original.get("metadata") or {}).get("name", "")
        raise RouterError(
            f'Ingress "{ingress}" has no backend for Service "{service.name}"; '
            "the canary Ingress would have nothing to route",
            field="spec.ingressRef.name",
        )
    annotations = {
        k: v
        for k, v in annotations_of(original).items()
        if k != KUBECTL_LAST_APPLIED_ANNOTATION and not _is_routing_key(k, prefix)
    }
    if routes is None:
        kept = {k: v for k, v in annotations_of(current).items() if _is_routing_key(k, prefix)}
        routing = kept if kept else routing_annotations(canary, INITIAL_ROUTES, prefix)
    else:
        routing = routing_annotations(canary, routes, prefix)
    annotations.update(routing)
    return managed_object(
        canary,
        current,
        api_version=ingress_api_version(canary),
        kind="Ingress",
        name=canary_ingress_name(canary),
        spec=spec,
        labels=labels_of(original),
        annotations=annotations,
        mark_for_flux=False,
    )


def read_ingress_routes(
    canary: Canary, obj: Mapping[str, Any], prefix: str = DEFAULT_ANNOTATIONS_PREFIX
) -> Routes:
    """The weights the canary Ingress routes: A/B annotations mean all matching traffic."""
    annotations = annotations_of(obj)
    if any(
        _key(prefix, k) in annotations
        for k in ("canary-by-header", "canary-by-cookie", "canary-by-header-pattern")
    ):
        return Routes(primary=0, canary=TOTAL_WEIGHT)
    raw = annotations.get(_key(prefix, "canary-weight"), "0")
    try:
        weight = int(str(raw).strip())
    except ValueError:
        raise RouterError(
            f'Ingress "{canary_ingress_name(canary)}" has a canary-weight that is not a number: "{raw}"'
        ) from None
    weight = max(0, min(TOTAL_WEIGHT, weight))
    return Routes(primary=TOTAL_WEIGHT - weight, canary=weight)
