"""The OSM router: Flagger's SMI v1alpha2 TrafficSplit, written by the shared SMI builder."""

from __future__ import annotations

import pytest

from canary.adapters.routers import RouterError, ServiceRouter, SmiRouter, make_router
from canary.adapters.routers.builders import smi
from canary.adapters.routers.osm import OSM_SMI_PROVIDER, OsmRouter
from canary.core.observations import Routes
from canary.demo.traffic import ServiceEntry, TrafficGenerator
from tests.routers.fakes import FakeKube
from tests.routers.support import NS, binomial_tolerance, make_canary, pod, target

API = "split.smi-spec.io/v1alpha2"
AB = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 5,
    "match": [{"headers": {"x": {"exact": "1"}}}],
}


class TestOsmRouter:
    def test_is_the_smi_v1alpha2_router_for_the_osm_mesh(self) -> None:
        router = make_router("osm", FakeKube())
        assert isinstance(router, OsmRouter) and isinstance(router, SmiRouter)
        assert router.provider == smi.SmiProvider("v1alpha2", "osm")
        assert OSM_SMI_PROVIDER == "smi:v1alpha2:osm"
        assert [str(api) for api in router.required_apis(make_canary("osm"))] == [
            f"{API} TrafficSplit"
        ]

    @pytest.mark.parametrize("weight", [0, 25, 100])
    async def test_exact_object_at_weights(self, weight: int) -> None:
        kube = FakeKube()
        router = make_router("osm", kube)
        canary = make_canary("osm", service={"hosts": ["podinfo.test"], "gateways": ["gw"]})
        await router.reconcile(canary)
        await router.set_routes(canary, 100 - weight, weight, False)
        split = kube.peek(API, "TrafficSplit", "podinfo")
        assert split is not None
        assert split["spec"] == {
            "service": "podinfo.test",
            "backends": [
                {"service": "podinfo-canary", "weight": weight},
                {"service": "podinfo-primary", "weight": 100 - weight},
            ],
        }
        # integers (v1alpha2), and no Istio gateways annotation for the osm mesh
        assert "annotations" not in split["metadata"]
        assert split["metadata"]["ownerReferences"][0]["name"] == "podinfo"
        assert await router.get_routes(canary) == Routes(100 - weight, weight)

    async def test_reconcile_keeps_weights(self) -> None:
        kube = FakeKube()
        router = make_router("osm", kube)
        canary = make_canary("osm")
        await router.reconcile(canary)
        await router.set_routes(canary, 75, 25, False)
        await router.reconcile(canary)
        assert await router.get_routes(canary) == Routes(75, 25)

    async def test_ab_and_mirroring_are_refused_naming_the_field(self) -> None:
        router = make_router("osm", FakeKube())
        with pytest.raises(RouterError) as err:
            await router.reconcile(make_canary("osm", analysis=AB, validate=False))
        assert err.value.field == "spec.analysis.match"
        with pytest.raises(RouterError) as err:
            await router.set_routes(make_canary("osm"), 100, 0, True)
        assert err.value.field == "spec.analysis.mirror"
        with pytest.raises(Exception, match=r"spec\.analysis\.match"):
            make_canary("osm", analysis=AB)

    async def test_simulated_split_follows_each_weight(self) -> None:
        kube = FakeKube()
        canary = make_canary("osm")
        services = ServiceRouter(kube)
        await services.initialize(canary, target())
        await services.reconcile_apex(canary, target())
        kube.put(pod("podinfo-primary-a", {"app": "podinfo-primary"}))
        kube.put(pod("podinfo-c", {"app": "podinfo"}))
        router = make_router("osm", kube)
        await router.reconcile(canary)
        gen = TrafficGenerator(kube, ServiceEntry(NS, "podinfo"), seed=3, smi_version="v1alpha2")
        n = 2000
        for weight in (0, 25, 100):
            await router.set_routes(canary, 100 - weight, weight, False)
            await gen.refresh()
            window = await gen.send(n)
            assert window.routed == n and window.unrouted == window.unavailable == 0
            p = weight / 100
            assert abs(window.canary_share - p) <= binomial_tolerance(n, p), (weight, window)
