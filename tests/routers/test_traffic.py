"""The traffic simulator follows what the routers write, as the real data planes would.

Every test here goes through the real routers: they write Services and routing
objects into the in-memory API, the generator reads them back and sends requests.
Weighted splits are compared with the weight within 4 binomial standard deviations
(``binomial_tolerance``); the seed is fixed, so a run is reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from canary.adapters.routers import ServiceRouter, make_router
from canary.adapters.routers.builders import seeded_cookie_factory
from canary.demo.traffic import (
    Entry,
    GatewayEntry,
    IngressEntry,
    RequestProfile,
    ServiceEntry,
    Snapshot,
    TrafficGenerator,
    TrafficRequest,
    Version,
    resolve,
    service_pods,
)
from canary.model import Canary
from canary.ports import Router, Unavailable
from tests.routers.fakes import FakeKube
from tests.routers.support import NS, binomial_tolerance, make_canary, pod, target
from tests.routers.support import ingress as make_ingress

N = 2000
REF = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"}
PRIMARY_PODS = {"podinfo-primary-a", "podinfo-primary-b"}
CANARY_PODS = {"podinfo-c"}


@dataclass
class Recorder:
    """A backend that remembers who served what."""

    served: list[tuple[Version, str, TrafficRequest]] = field(default_factory=list)
    status: int | None = None

    async def __call__(self, version: Version, pod: str, request: TrafficRequest) -> int | None:
        self.served.append((version, pod, request))
        return self.status


class Flaky:
    """An API whose list calls fail while ``failing`` is set."""

    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube
        self.failing = False

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None, **kw: Any
    ) -> list[Any]:
        if self.failing:
            raise Unavailable("the API server is restarting")
        return await self.kube.list(api_version, kind, namespace, **kw)


@dataclass
class Cluster:
    kube: FakeKube
    canary: Canary
    router: Router
    entry: Entry

    def generator(self, **kw: Any) -> TrafficGenerator:
        kw.setdefault("seed", 42)
        return TrafficGenerator(self.kube, self.entry, **kw)


# provider -> (spec.service, extra spec, entry)
SETUPS: dict[str, tuple[dict[str, Any], dict[str, Any], Entry]] = {
    "nginx": ({}, {"ingressRef": REF}, IngressEntry(NS, "podinfo")),
    "istio": ({}, {}, ServiceEntry(NS, "podinfo")),
    "istio-gateway": (
        {"gateways": ["public-gw.istio-system.svc.cluster.local"], "hosts": ["app.example.com"]},
        {},
        GatewayEntry(NS, "public-gw.istio-system.svc.cluster.local", "app.example.com"),
    ),
    "gatewayapi:v1": (
        {"gatewayRefs": [{"name": "gw"}], "hosts": ["app.example.com"]},
        {},
        GatewayEntry(NS, "gw", "app.example.com"),
    ),
    "gatewayapi:v1beta1": (
        {"gatewayRefs": [{"name": "gw"}]},
        {},
        GatewayEntry(NS, "gw", "app.example.com"),
    ),
    "linkerd": ({}, {}, ServiceEntry(NS, "podinfo")),
    "smi:v1alpha1": ({}, {}, ServiceEntry(NS, "podinfo")),
    "smi:v1alpha2": ({}, {}, ServiceEntry(NS, "podinfo")),
    "smi:v1alpha3": ({}, {}, ServiceEntry(NS, "podinfo")),
}


async def cluster(setup: str, analysis: dict[str, Any] | None = None) -> Cluster:
    service, extra, entry = SETUPS[setup]
    provider = "istio" if setup == "istio-gateway" else setup
    kube = FakeKube()
    canary = make_canary(provider, service=service, analysis=analysis, **extra)
    services = ServiceRouter(kube)
    await services.initialize(canary, target())
    await services.reconcile_apex(canary, target())
    for name in sorted(PRIMARY_PODS):
        kube.put(pod(name, {"app": "podinfo-primary"}))
    for name in sorted(CANARY_PODS):
        kube.put(pod(name, {"app": "podinfo"}))
    kube.put(pod("podinfo-not-ready", {"app": "podinfo"}, ready=False))
    kube.put(make_ingress())
    router = make_router(provider, kube, new_cookie=seeded_cookie_factory(9))
    await router.reconcile(canary)
    return Cluster(kube, canary, router, entry)


class TestWeightedSplit:
    @pytest.mark.parametrize("setup", list(SETUPS))
    async def test_measured_split_follows_each_step(self, setup: str) -> None:
        c = await cluster(setup)
        gen = c.generator()
        for weight in (0, 10, 50, 100):
            await c.router.set_routes(c.canary, 100 - weight, weight, False)
            await gen.refresh()
            window = await gen.send(N)
            assert window.routed == N
            assert window.unrouted == window.unavailable == 0
            expected = weight / 100
            assert abs(window.canary_share - expected) <= binomial_tolerance(N, expected), (
                setup,
                weight,
                window,
            )
            served_by = set(window.pods)
            if weight == 0:
                assert served_by == PRIMARY_PODS
            if weight == 100:
                assert served_by == CANARY_PODS  # never the pod that is not ready

    async def test_kubernetes_provider_apex_is_primary_canary_service_is_canary(self) -> None:
        kube = FakeKube()
        canary = make_canary(
            "kubernetes", analysis={"interval": "1m", "threshold": 1, "iterations": 3}
        )
        await ServiceRouter(kube).initialize(canary, target())
        await ServiceRouter(kube).reconcile_apex(canary, target())
        kube.put(pod("podinfo-primary-a", {"app": "podinfo-primary"}))
        kube.put(pod("podinfo-c", {"app": "podinfo"}))
        apex = await TrafficGenerator(kube, ServiceEntry(NS, "podinfo"), seed=1).send(200)
        assert (apex.primary, apex.canary) == (200, 0)
        direct = await TrafficGenerator(kube, ServiceEntry(NS, "podinfo-canary"), seed=1).send(200)
        assert (direct.primary, direct.canary) == (0, 200)

    async def test_weight_change_needs_a_refresh(self) -> None:
        c = await cluster("istio")
        gen = c.generator()
        await gen.refresh()
        await c.router.set_routes(c.canary, 0, 100, False)
        before = await gen.send(100)
        assert before.canary == 0  # still the old snapshot
        await gen.refresh()
        after = await gen.send(100)
        assert after.canary == 100


AB_HEADER = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 5,
    "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
}
AB_REGEX = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 5,
    "match": [{"headers": {"x-canary": {"regex": "ins.*"}}}],
}
AB_COOKIE_NGINX = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 5,
    "match": [{"headers": {"cookie": {"exact": "canary"}}}],
}
AB_COOKIE_MESH = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 5,
    "match": [{"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}],
}
INSIDERS = RequestProfile(weight=3, headers={"x-canary": "insider"})
COOKIE_USERS = RequestProfile(weight=3, cookies={"canary": "always"})
OTHERS = RequestProfile(weight=7, headers={"x-canary": "outsider"})


class TestABRouting:
    @pytest.mark.parametrize(
        ("setup", "analysis", "matching"),
        [
            ("nginx", AB_HEADER, INSIDERS),
            ("nginx", AB_REGEX, INSIDERS),
            ("nginx", AB_COOKIE_NGINX, COOKIE_USERS),
            ("istio", AB_HEADER, INSIDERS),
            ("istio", AB_COOKIE_MESH, COOKIE_USERS),
            ("gatewayapi:v1", AB_HEADER, INSIDERS),
            ("gatewayapi:v1", AB_REGEX, INSIDERS),
            ("gatewayapi:v1", AB_COOKIE_MESH, COOKIE_USERS),
            ("linkerd", AB_HEADER, INSIDERS),
        ],
    )
    async def test_only_matching_requests_reach_the_canary(
        self, setup: str, analysis: dict[str, Any], matching: RequestProfile
    ) -> None:
        c = await cluster(setup, analysis)
        recorder = Recorder()
        gen = c.generator(backend=recorder, profiles=[matching, OTHERS])
        await c.router.set_routes(c.canary, 0, 100, False)
        await gen.refresh()
        window = await gen.send(600)
        assert 0 < window.canary < 600
        for version, _, request in recorder.served:
            is_match = (
                request.header("x-canary") == "insider"
                or request.cookies().get("canary") == "always"
            )
            assert version == ("canary" if is_match else "primary"), request
        await c.router.set_routes(c.canary, 100, 0, False)
        await gen.refresh()
        assert (await gen.send(200)).canary == 0


class TestMirroring:
    @pytest.mark.parametrize(
        ("setup", "mirror_weight", "share"),
        [("istio", 0, 1.0), ("istio", 40, 0.4), ("gatewayapi:v1", 0, 1.0)],
    )
    async def test_copies_reach_the_canary_and_answers_come_from_the_primary(
        self, setup: str, mirror_weight: int, share: float
    ) -> None:
        analysis = {
            "interval": "1m",
            "threshold": 5,
            "iterations": 5,
            "mirror": True,
            "mirrorWeight": mirror_weight,
        }
        c = await cluster(setup, analysis)
        recorder = Recorder()
        gen = c.generator(backend=recorder)
        await c.router.set_routes(c.canary, 100, 0, True)
        await gen.refresh()
        window = await gen.send(N)
        assert (window.primary, window.canary) == (N, 0)
        assert abs(window.mirror / N - share) <= binomial_tolerance(N, share)
        shadows = [r for v, _, r in recorder.served if r.shadow]
        assert all(v == "canary" for v, _, r in recorder.served if r.shadow)
        assert all(r.host.endswith("-shadow") for r in shadows)
        assert len(shadows) == window.mirror
        await c.router.set_routes(c.canary, 100, 0, False)
        await gen.refresh()
        assert (await gen.send(100)).mirror == 0


class TestStickySessions:
    @pytest.mark.parametrize("setup", ["istio", "gatewayapi:v1"])
    async def test_a_client_that_met_the_canary_stays_there(self, setup: str) -> None:
        analysis = {
            "interval": "1m",
            "threshold": 5,
            "stepWeight": 10,
            "sessionAffinity": {"cookieName": "flagger-cookie"},
        }
        c = await cluster(setup, analysis)
        recorder = Recorder()
        gen = c.generator(backend=recorder, clients=40)
        await c.router.set_routes(c.canary, 90, 10, False)
        await gen.refresh()
        window = await gen.send(N)
        first_canary: dict[int, int] = {}
        for index, (version, _, request) in enumerate(recorder.served):
            if request.client in first_canary:
                assert version == "canary", f"client {request.client} left the canary"
            elif version == "canary":
                first_canary[request.client] = index
        assert first_canary  # some clients met the canary ...
        assert window.canary_share > 0.10 + binomial_tolerance(N, 0.10)  # ... and kept coming back

        # The run ends: the cookie is expired and everyone is back on the primary.
        await c.router.set_routes(c.canary, 100, 0, False)
        await gen.refresh()
        assert (await gen.send(400)).canary == 0
        assert all("flagger-cookie" not in jar for jar in gen.jars.values() if jar)


class TestGeneratorMechanics:
    @pytest.mark.looptime
    async def test_poisson_rate_over_virtual_time(self) -> None:
        c = await cluster("istio")
        await c.router.set_routes(c.canary, 50, 50, False)
        gen = c.generator(rate=40.0)
        await gen.run(duration=100.0)
        totals = gen.totals()
        expected = 40.0 * 100.0
        assert abs(totals.routed - expected) <= 4 * expected**0.5
        assert abs(totals.canary_share - 0.5) <= binomial_tolerance(totals.routed, 0.5)

    async def test_failures_and_missing_routes_are_counted(self) -> None:
        c = await cluster("istio")
        failing = c.generator(backend=Recorder(status=503))
        window = await failing.send(50)
        assert window.failed == 50 and window.primary == 50
        lost = TrafficGenerator(c.kube, ServiceEntry(NS, "nothing-here"), seed=1)
        assert (await lost.send(10)).unrouted == 10

    async def test_no_ready_pods_is_unavailable(self) -> None:
        c = await cluster("istio")
        await c.kube.delete("v1", "Pod", "podinfo-c", NS)
        await c.router.set_routes(c.canary, 0, 100, False)
        window = await c.generator().send(20)
        assert window.unavailable == 20

    async def test_an_api_hiccup_keeps_the_last_snapshot(self) -> None:
        c = await cluster("istio")
        await c.router.set_routes(c.canary, 0, 100, False)
        flaky = Flaky(c.kube)
        gen = TrafficGenerator(flaky, c.entry, seed=3)
        await gen.refresh()
        flaky.failing = True
        await gen.refresh()
        assert (await gen.send(50)).canary == 50

    def test_bad_settings_are_refused(self) -> None:
        with pytest.raises(ValueError):
            TrafficGenerator(FakeKube(), ServiceEntry(NS, "x"), rate=0)
        with pytest.raises(ValueError):
            TrafficGenerator(FakeKube(), ServiceEntry(NS, "x"), profiles=[RequestProfile(weight=0)])


class TestResolvePrecedence:
    def test_gateway_api_prefers_the_more_specific_rule(self) -> None:
        route = {
            "metadata": {"name": "r"},
            "spec": {
                "parentRefs": [{"name": "gw"}],
                "rules": [
                    {"backendRefs": [{"name": "root", "port": 80}]},
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                        "backendRefs": [{"name": "api", "port": 80}],
                    },
                    {
                        "matches": [{"path": {"type": "Exact", "value": "/api/login"}}],
                        "backendRefs": [{"name": "login", "port": 80}],
                    },
                ],
            },
        }
        snap = Snapshot(NS, http_routes=(route,))
        rng = random.Random(0)
        entry = GatewayEntry(NS, "gw")
        picks = {
            path: resolve(snap, entry, TrafficRequest(1, 0, "h", path), rng).service
            for path in ("/", "/apix", "/api/x", "/api/login")
        }
        assert picks == {"/": "root", "/apix": "root", "/api/x": "api", "/api/login": "login"}

    def test_pods_behind_a_service_follow_its_selector(self) -> None:
        snap = Snapshot(
            NS,
            services={"s": {"spec": {"selector": {"app": "a"}}}},
            pods=(
                pod("a-1", {"app": "a"}),
                pod("b-1", {"app": "b"}),
                pod("a-2", {"app": "a"}, ready=False),
            ),
        )
        assert service_pods(snap, "s") == ["a-1"]
        assert service_pods(snap, "missing") == []
        assert service_pods(snap, "missing", synthetic=True) == ["missing-0"]
