"""The refusals of a router that can only split by weight (Traefik, APISIX, Skipper).

Flagger's routers for these providers write weights and nothing else: no header or
cookie matching, no mirroring, no sticky sessions. A Canary asking for one of them
gets a `RouterError` naming the field instead of a route that silently ignores it.
"""

from __future__ import annotations

from canary.adapters.routers.builders._common import RouterError
from canary.core.observations import Routes
from canary.model.canary import Canary


def refuse_beyond_weights(canary: Canary, routes: Routes | None, what: str) -> None:
    """Raise a `RouterError` when ``canary`` or ``routes`` need more than weights.

    ``what`` names the routing object in the message ("a TraefikService").
    """
    analysis = canary.spec.analysis_or_default
    if analysis.match:
        raise RouterError(
            f"{what} cannot route by header or cookie (A/B testing)", field="spec.analysis.match"
        )
    if analysis.mirror or (routes is not None and routes.mirrored):
        raise RouterError(f"{what} cannot mirror traffic", field="spec.analysis.mirror")
    if analysis.session_affinity is not None:
        raise RouterError(
            f"{what} cannot keep sessions on the canary", field="spec.analysis.sessionAffinity"
        )
