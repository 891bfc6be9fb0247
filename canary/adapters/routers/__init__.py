"""Traffic routers: one per ``spec.provider``, behind the `canary.ports.Router` Protocol.

The controller picks a router with `make_router` (``spec.provider`` or the
controller's default) and, for every provider, keeps the three Services with
`ServiceRouter`. Every router reads the weights back from its routing object: the
object is the truth, not the Canary status. The objects themselves are computed by
the pure functions of `canary.adapters.routers.builders`.

=====================  ==============================================================
provider               objects
=====================  ==============================================================
kubernetes             Services only (blue/green)
nginx                  Ingress ``<ingress>-canary`` with canary annotations
istio                  DestinationRules ``<svc>-primary``/``-canary``, VirtualService
gatewayapi:v1|v1beta1  HTTPRoute ``<svc>`` (parents: ``service.gatewayRefs``)
linkerd                HTTPRoute ``<svc>`` whose parent is the Service ``<svc>``
smi:v1alpha1|2|3       TrafficSplit ``<svc>``
contour                HTTPProxy ``<svc>`` (included by the user's root HTTPProxy)
gloo                   Upstreams ``<ns>-<svc>-{primary,canary}upstream-<port>``, RouteTable
traefik                TraefikService ``<svc>`` (the user's IngressRoute points at it)
apisix                 ApisixRoute ``<routeRef>-<svc>-canary``, a clone of ``routeRef``
skipper                Ingress ``<ingress>-canary`` with backend-weights annotations
kuma                   TrafficRoute ``<svc>`` (cluster-scoped)
osm                    TrafficSplit ``<svc>`` (SMI v1alpha2)
appmesh[:v1beta2]      VirtualNodes, VirtualRouter(s), VirtualServices
knative                the target Knative Service's ``spec.traffic`` over its revisions
=====================  ==============================================================
"""

from __future__ import annotations

from canary.adapters.routers.builders._common import RouterError
from canary.adapters.routers.builders.cookies import (
    CookieFactory,
    SessionCookies,
    random_cookie_value,
)
from canary.adapters.routers.builders.ingress import DEFAULT_ANNOTATIONS_PREFIX
from canary.adapters.routers.builders.istio import DEFAULT_ISTIO_VERSION
from canary.adapters.routers.builders.services import DEFAULT_SELECTOR_LABELS, selector_label
from canary.adapters.routers.gatewayapi import GatewayAPIRouter
from canary.adapters.routers.istio import IstioRouter
from canary.adapters.routers.kubernetes import KubernetesRouter, ServiceRouter
from canary.adapters.routers.nginx import NginxRouter
from canary.adapters.routers.smi import SmiRouter
from canary.model.canary import SUPPORTED_PROVIDERS
from canary.ports import Kube, Router

PROVIDERS = SUPPORTED_PROVIDERS  # a router for every provider a Canary may name
DEFAULT_LINKERD_VERSION = "v1beta1"


def make_router(
    provider: str,
    kube: Kube,
    *,
    ingress_annotations_prefix: str = DEFAULT_ANNOTATIONS_PREFIX,
    istio_version: str = DEFAULT_ISTIO_VERSION,
    linkerd_version: str = DEFAULT_LINKERD_VERSION,
    new_cookie: CookieFactory = random_cookie_value,
    ingress_class: str = "",
    include_label_prefixes: tuple[str, ...] = ("*",),
) -> Router:
    """The router for ``provider``; an unknown name is a `RouterError` naming ``spec.provider``.

    ``smi:<version>:<mesh>`` (Flagger's mesh suffix) is accepted for the SMI versions.
    """
    name = provider.strip()
    if name == "kubernetes":
        return KubernetesRouter(kube)
    if name == "nginx":
        return NginxRouter(kube, annotations_prefix=ingress_annotations_prefix)
    if name == "istio":
        return IstioRouter(kube, version=istio_version, new_cookie=new_cookie)
    if name in ("gatewayapi:v1", "gatewayapi:v1beta1"):
        return GatewayAPIRouter(kube, version=name.split(":", 1)[1], new_cookie=new_cookie)
    if name == "linkerd":
        return GatewayAPIRouter(kube, version=linkerd_version, mesh=True, new_cookie=new_cookie)
    if name.startswith("smi:"):
        return SmiRouter(kube, provider=name)
    router = _flagger_family_router(
        name,
        kube,
        ingress_class=ingress_class,
        include_label_prefixes=include_label_prefixes,
    )
    if router is not None:
        return router
    raise RouterError(
        f'unknown provider "{provider}"; supported: {", ".join(PROVIDERS)}', field="spec.provider"
    )


def _flagger_family_router(
    name: str,
    kube: Kube,
    *,
    ingress_class: str,
    include_label_prefixes: tuple[str, ...],
) -> Router | None:
    """The routers of Flagger's other provider families, each imported when first used."""
    if name == "contour":
        from canary.adapters.routers.contour import ContourRouter

        return ContourRouter(kube, ingress_class=ingress_class or None)
    if name == "gloo":
        from canary.adapters.routers.gloo import GlooRouter

        return GlooRouter(kube, include_label_prefixes=include_label_prefixes)
    if name == "traefik":
        from canary.adapters.routers.traefik import TraefikRouter

        return TraefikRouter(kube)
    if name == "apisix":
        from canary.adapters.routers.apisix import ApisixRouter

        return ApisixRouter(kube)
    if name == "skipper":
        from canary.adapters.routers.skipper import SkipperRouter

        return SkipperRouter(kube)
    if name == "kuma":
        from canary.adapters.routers.kuma import KumaRouter

        return KumaRouter(kube)
    if name == "osm":
        from canary.adapters.routers.osm import OsmRouter

        return OsmRouter(kube)
    if name in ("appmesh", "appmesh:v1beta2"):
        from canary.adapters.routers.appmesh import AppMeshRouter

        return AppMeshRouter(kube, version="v1beta2" if name.endswith("v1beta2") else "v1beta1")
    if name == "knative":
        from canary.adapters.routers.knative import KnativeRouter

        return KnativeRouter(kube)
    return None


__all__ = [
    "DEFAULT_ANNOTATIONS_PREFIX",
    "DEFAULT_SELECTOR_LABELS",
    "PROVIDERS",
    "GatewayAPIRouter",
    "IstioRouter",
    "KubernetesRouter",
    "NginxRouter",
    "RouterError",
    "ServiceRouter",
    "SessionCookies",
    "SmiRouter",
    "make_router",
    "selector_label",
]
