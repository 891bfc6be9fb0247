"""For every provider, what ``set_routes`` writes is what ``get_routes`` reads back.

Table-driven over the pure builders (every provider, strategy and routing state),
property-based over all weight splits, and once more through the routers with the
in-memory API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.adapters.routers import PROVIDERS, RouterError, make_router
from canary.adapters.routers.builders import gateway, ingress, istio, seeded_cookie_factory, smi
from canary.core.observations import Routes
from canary.model import Canary
from tests.routers.fakes import FakeKube
from tests.routers.support import ingress as make_ingress
from tests.routers.support import make_canary

Build = Callable[[Canary, dict[str, Any] | None, Routes | None], dict[str, Any]]
Read = Callable[[Canary, dict[str, Any]], Routes | None]

PROGRESSIVE = {"interval": "1m", "threshold": 5, "stepWeight": 10}
MIRRORED_BG = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 5,
    "mirror": True,
    "mirrorWeight": 50,
}
AFFINITY = {**PROGRESSIVE, "sessionAffinity": {"cookieName": "c", "primaryCookieName": "p"}}
AB = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 5,
    "match": [{"headers": {"x-user": {"exact": "beta"}}}],
}
AB_COOKIE = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 5,
    "match": [{"headers": {"Cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}],
}
GW = {"gatewayRefs": [{"name": "gw"}]}
REF = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"}


def nginx_build(c: Canary, cur: dict[str, Any] | None, r: Routes | None) -> dict[str, Any]:
    return ingress.canary_ingress(c, make_ingress(), cur, r)


def istio_build(c: Canary, cur: dict[str, Any] | None, r: Routes | None) -> dict[str, Any]:
    return istio.virtual_service(c, cur, r, new_cookie=seeded_cookie_factory(0))


def gateway_build(c: Canary, cur: dict[str, Any] | None, r: Routes | None) -> dict[str, Any]:
    return gateway.http_route(c, cur, r, new_cookie=seeded_cookie_factory(0))


def linkerd_build(c: Canary, cur: dict[str, Any] | None, r: Routes | None) -> dict[str, Any]:
    return gateway.http_route(c, cur, r, mesh=True, version="v1beta1")


def smi_build(version: str) -> Build:
    provider = smi.SmiProvider(version)
    return lambda c, cur, r: smi.traffic_split(c, cur, r, provider=provider)


# (case id, canary, build, read, can mirror, A/B: reads back 0/100 while on)
CASES: list[tuple[str, Canary, Build, Read, bool]] = [
    (
        "nginx",
        make_canary("nginx", ingressRef=REF, analysis=PROGRESSIVE),
        nginx_build,
        ingress.read_ingress_routes,
        False,
    ),
    ("istio", make_canary("istio", analysis=PROGRESSIVE), istio_build, istio.read_routes, False),
    (
        "istio-mirror",
        make_canary("istio", analysis=MIRRORED_BG),
        istio_build,
        istio.read_routes,
        True,
    ),
    (
        "istio-affinity",
        make_canary("istio", analysis=AFFINITY),
        istio_build,
        istio.read_routes,
        False,
    ),
    (
        "istio-tcp",
        make_canary("istio", service={"appProtocol": "tcp"}, analysis=PROGRESSIVE),
        istio_build,
        istio.read_routes,
        False,
    ),
    (
        "gatewayapi",
        make_canary("gatewayapi:v1", service=GW, analysis=PROGRESSIVE),
        gateway_build,
        gateway.read_routes,
        False,
    ),
    (
        "gatewayapi-mirror",
        make_canary("gatewayapi:v1", service=GW, analysis=MIRRORED_BG),
        gateway_build,
        gateway.read_routes,
        True,
    ),
    (
        "gatewayapi-affinity",
        make_canary("gatewayapi:v1", service=GW, analysis=AFFINITY),
        gateway_build,
        gateway.read_routes,
        False,
    ),
    (
        "linkerd",
        make_canary("linkerd", analysis=PROGRESSIVE),
        linkerd_build,
        gateway.read_routes,
        False,
    ),
    (
        "smi-v1alpha1",
        make_canary("smi:v1alpha1", analysis=PROGRESSIVE),
        smi_build("v1alpha1"),
        smi.read_routes,
        False,
    ),
    (
        "smi-v1alpha2",
        make_canary("smi:v1alpha2", analysis=PROGRESSIVE),
        smi_build("v1alpha2"),
        smi.read_routes,
        False,
    ),
    (
        "smi-v1alpha3",
        make_canary("smi:v1alpha3", analysis=PROGRESSIVE),
        smi_build("v1alpha3"),
        smi.read_routes,
        False,
    ),
]
IDS = [case[0] for case in CASES]

AB_CASES: list[tuple[str, Canary, Build, Read]] = [
    (
        "nginx",
        make_canary("nginx", ingressRef=REF, analysis=AB),
        nginx_build,
        ingress.read_ingress_routes,
    ),
    ("istio", make_canary("istio", analysis=AB), istio_build, istio.read_routes),
    (
        "gatewayapi",
        make_canary("gatewayapi:v1", service=GW, analysis=AB),
        gateway_build,
        gateway.read_routes,
    ),
    ("linkerd", make_canary("linkerd", analysis=AB), linkerd_build, gateway.read_routes),
    (
        "gatewayapi-cookie",
        make_canary("gatewayapi:v1", service=GW, analysis=AB_COOKIE),
        gateway_build,
        gateway.read_routes,
    ),
]


class TestReadBackWhatWasBuilt:
    @pytest.mark.parametrize(("case", "canary", "build", "read", "mirror"), CASES, ids=IDS)
    @pytest.mark.parametrize("weight", [0, 1, 50, 99, 100])
    def test_weights(
        self, case: str, canary: Canary, build: Build, read: Read, mirror: bool, weight: int
    ) -> None:
        routes = Routes(100 - weight, weight)
        assert read(canary, build(canary, None, routes)) == routes

    @pytest.mark.parametrize(
        ("case", "canary", "build", "read", "mirror"),
        [c for c in CASES if c[4]],
        ids=[c[0] for c in CASES if c[4]],
    )
    def test_mirroring(
        self, case: str, canary: Canary, build: Build, read: Read, mirror: bool
    ) -> None:
        assert read(canary, build(canary, None, Routes(100, 0, True))) == Routes(100, 0, True)

    @pytest.mark.parametrize(
        ("case", "canary", "build", "read"), AB_CASES, ids=[c[0] for c in AB_CASES]
    )
    def test_ab_on_and_off(self, case: str, canary: Canary, build: Build, read: Read) -> None:
        on = build(canary, None, Routes(0, 100))
        assert read(canary, on) == Routes(0, 100)
        assert read(canary, build(canary, on, Routes(100, 0))) == Routes(100, 0)

    @pytest.mark.parametrize(("case", "canary", "build", "read", "mirror"), CASES, ids=IDS)
    def test_reconcile_keeps_the_state(
        self, case: str, canary: Canary, build: Build, read: Read, mirror: bool
    ) -> None:
        routes = Routes(35, 65, mirror)
        written = build(canary, None, routes)
        assert build(canary, written, None) == written
        assert read(canary, build(canary, written, None)) == routes


@st.composite
def splits(draw: st.DrawFn) -> Routes:
    canary = draw(st.integers(min_value=0, max_value=100))
    return Routes(100 - canary, canary)


class TestProperties:
    @settings(max_examples=60, deadline=None)
    @given(case=st.sampled_from(CASES), steps=st.lists(splits(), min_size=1, max_size=6))
    def test_any_walk_reads_back_the_last_step(
        self, case: tuple[str, Canary, Build, Read, bool], steps: list[Routes]
    ) -> None:
        _, canary, build, read, _ = case
        obj = build(canary, None, None)
        for routes in steps:
            obj = build(canary, obj, routes)
            assert read(canary, obj) == routes


class TestFactory:
    @pytest.mark.parametrize("provider", PROVIDERS)
    def test_every_supported_provider_has_a_router(self, provider: str) -> None:
        router = make_router(provider, FakeKube())
        for method in ("reconcile", "set_routes", "get_routes", "finalize"):
            assert callable(getattr(router, method))

    @pytest.mark.parametrize("provider", ["crossover", "istio2", "", "smi:v2"])
    def test_unknown_provider_is_a_spec_error(self, provider: str) -> None:
        with pytest.raises(RouterError) as err:
            make_router(provider, FakeKube())
        assert err.value.field == "spec.provider"
        assert f'"{provider}"' in str(err.value)

    async def test_same_walk_through_every_router(self) -> None:
        # apisix clones a user's ApisixRoute and knative splits a Knative Service's
        # revisions: their own tests (test_apisix.py, test_knative.py) walk them.
        for provider in PROVIDERS:
            if provider in ("kubernetes", "apisix", "knative"):
                continue
            kube = FakeKube()
            kube.put(make_ingress())
            extra: dict[str, Any] = {"ingressRef": REF} if provider in ("nginx", "skipper") else {}
            service = dict(GW) if provider.startswith("gatewayapi") else {}
            if provider.startswith("appmesh"):
                service["meshName"] = "global"
            canary = make_canary(provider, service=service, **extra)
            router = make_router(provider, kube, new_cookie=seeded_cookie_factory(1))
            await router.reconcile(canary)
            assert await router.get_routes(canary) == Routes(100, 0), provider
            for weight in (10, 60, 100, 0):
                await router.set_routes(canary, 100 - weight, weight, False)
                await router.reconcile(canary)
                assert await router.get_routes(canary) == Routes(100 - weight, weight), provider
