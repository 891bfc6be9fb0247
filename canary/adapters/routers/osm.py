"""``provider: osm``: Open Service Mesh routes with an SMI TrafficSplit.

Flagger drives OSM with its SMI ``v1alpha2`` router and the mesh name ``osm``: one
TrafficSplit ``<svc>`` (``split.smi-spec.io/v1alpha2``) with integer weights, built by
`builders.smi` like any SMI provider. OSM has no header matching or mirroring in
Flagger either, so A/B testing and mirroring are refused with a `RouterError`.
"""

from __future__ import annotations

from canary.adapters.routers.smi import SmiRouter
from canary.ports import Kube

OSM_SMI_PROVIDER = "smi:v1alpha2:osm"


class OsmRouter(SmiRouter):
    def __init__(self, kube: Kube) -> None:
        super().__init__(kube, provider=OSM_SMI_PROVIDER)
