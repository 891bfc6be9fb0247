"""The routing objects each provider writes, computed from the Canary alone: no I/O.

Every builder takes ``(canary, current object or None, routes or None)`` and
returns the whole object as it should be; every reader takes an object and returns
the weights it routes. The routers in `canary.adapters.routers` only fetch, call a
builder and write; the core team, `canary simulate` and the tests use these
functions directly. ``routes=None`` means "reconcile": keep the routing state the
current object holds (weights, mirroring, session cookies).
"""

from canary.adapters.routers.builders import gateway, ingress, istio, services, smi
from canary.adapters.routers.builders._common import (
    FLAGGER_ORIGINAL_CONFIG_ANNOTATION,
    FLUX_RECONCILE_ANNOTATION,
    KUBECTL_LAST_APPLIED_ANNOTATION,
    ORIGINAL_CONFIG_ANNOTATION,
    RouterError,
    check_weights,
    is_owned_by,
    owner_reference,
    restored_object,
)
from canary.adapters.routers.builders.cookies import SessionCookies, seeded_cookie_factory

__all__ = [
    "FLAGGER_ORIGINAL_CONFIG_ANNOTATION",
    "FLUX_RECONCILE_ANNOTATION",
    "KUBECTL_LAST_APPLIED_ANNOTATION",
    "ORIGINAL_CONFIG_ANNOTATION",
    "RouterError",
    "SessionCookies",
    "check_weights",
    "gateway",
    "ingress",
    "is_owned_by",
    "istio",
    "owner_reference",
    "restored_object",
    "seeded_cookie_factory",
    "services",
    "smi",
]
