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
    raise RouterError(
        f'unknown provider "{provider}"; supported: {", ".join(PROVIDERS)}', field="spec.provider"
    )


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
