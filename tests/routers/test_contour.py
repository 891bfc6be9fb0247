"""The Contour router: one HTTPProxy ``<svc>`` with Flagger's routes, weights and headers."""

from __future__ import annotations

import random
from typing import Any

import pytest

from canary.adapters.routers import RouterError, ServiceRouter, make_router
from canary.adapters.routers.builders import ORIGINAL_CONFIG_ANNOTATION, contour
from canary.adapters.routers.contour import ContourRouter
from canary.core.observations import Routes
from canary.demo.traffic import (
    ContourEntry,
    RequestProfile,
    Snapshot,
    TrafficGenerator,
    TrafficRequest,
    resolve,
)
from canary.model import Canary
from tests.routers.fakes import FakeKube
from tests.routers.support import (
    NS,
    binomial_tolerance,
    make_canary,
    pod,
    strip_server_fields,
    target,
)

API = "projectcontour.io/v1"
HOST = "app.example.com"
OWNER = {
    "apiVersion": "canary.gitops.dev/v1beta1",
    "kind": "Canary",
    "name": "podinfo",
    "uid": "canary-uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}
FLUX = {"kustomize.toolkit.fluxcd.io/reconcile": "disabled"}
AB = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 5,
    "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
}


def service(name: str, weight: int) -> dict[str, Any]:
    """A service entry of the HTTPProxy as Flagger writes it (weight 0 left out)."""
    out: dict[str, Any] = {"name": name, "port": 9898}
    if weight:
        out["weight"] = weight
    out["requestHeadersPolicy"] = {
        "set": [{"name": "l5d-dst-override", "value": f"{name}.{NS}.svc.cluster.local:9898"}]
    }
    return out


def ab(match: list[dict[str, Any]]) -> dict[str, Any]:
    return {**AB, "match": match}


class TestHTTPProxy:
    @pytest.mark.parametrize("weight", [0, 25, 100])
    def test_exact_object_at_weights(self, weight: int) -> None:
        canary = make_canary("contour")
        proxy = contour.http_proxy(canary, None, Routes(100 - weight, weight))
        assert proxy == {
            "apiVersion": API,
            "kind": "HTTPProxy",
            "metadata": {
                "name": "podinfo",
                "namespace": NS,
                "annotations": FLUX,
                "ownerReferences": [OWNER],
            },
            "spec": {
                "routes": [
                    {
                        "conditions": [{"prefix": "/"}],
                        "services": [
                            service("podinfo-primary", 100 - weight),
                            service("podinfo-canary", weight),
                        ],
                    }
                ]
            },
        }
        assert contour.read_routes(canary, proxy) == Routes(100 - weight, weight)

    def test_new_proxy_starts_at_primary_100(self) -> None:
        canary = make_canary("contour")
        assert contour.read_routes(canary, contour.http_proxy(canary, None)) == Routes(100, 0)

    def test_prefix_timeout_retries_ingress_class_and_apex_metadata(self) -> None:
        canary = make_canary(
            "contour",
            service={
                "match": [{"uri": {"prefix": "/api"}}],
                "timeout": "15s",
                "retries": {"attempts": 3, "perTryTimeout": "5s", "retryOn": "5xx"},
                "apex": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
            },
        )
        proxy = contour.http_proxy(canary, None, Routes(90, 10), ingress_class="contour")
        assert proxy["metadata"]["labels"] == {"team": "a"}
        assert proxy["metadata"]["annotations"] == {"note": "x", **FLUX}
        assert proxy["spec"] == {
            "routes": [
                {
                    "conditions": [{"prefix": "/api"}],
                    "services": [service("podinfo-primary", 90), service("podinfo-canary", 10)],
                    "timeoutPolicy": {"response": "15s", "idle": "5m"},
                    "retryPolicy": {"count": 3, "perTryTimeout": "5s"},
                }
            ],
            "ingressClassName": "contour",
        }

    def test_ab_header_route_then_primary_route(self) -> None:
        canary = make_canary("contour", analysis=AB)
        proxy = contour.http_proxy(canary, None, Routes(0, 100))
        assert proxy["spec"]["routes"] == [
            {
                "conditions": [{"prefix": "/", "header": {"name": "x-canary", "exact": "insider"}}],
                "services": [service("podinfo-primary", 0), service("podinfo-canary", 100)],
            },
            {
                "conditions": [{"prefix": "/"}],
                "services": [service("podinfo-primary", 100), service("podinfo-canary", 0)],
            },
        ]
        assert contour.read_routes(canary, proxy) == Routes(0, 100)
        back = contour.http_proxy(canary, proxy, Routes(100, 0))
        assert contour.read_routes(canary, back) == Routes(100, 0)

    def test_ab_prefix_and_suffix_are_contains_and_entries_are_alternatives(self) -> None:
        canary = make_canary(
            "contour",
            analysis=ab(
                [
                    {"headers": {"x-b": {"prefix": "be"}, "x-a": {"exact": "1"}}},
                    {"headers": {"cookie": {"suffix": "canary"}}},
                ]
            ),
        )
        routes = contour.http_proxy_spec(canary, Routes(0, 100))["routes"]
        assert [r["conditions"] for r in routes] == [
            [
                {"prefix": "/", "header": {"name": "x-a", "exact": "1"}},
                {"header": {"name": "x-b", "contains": "be"}},
            ],
            [{"prefix": "/", "header": {"name": "cookie", "contains": "canary"}}],
            [{"prefix": "/"}],
        ]

    @pytest.mark.parametrize(
        ("match", "field"),
        [
            ([{"headers": {"x": {"regex": "a.*"}}}], "spec.analysis.match[0].headers.x"),
            ([{"uri": {"prefix": "/beta"}}], "spec.analysis.match[0].uri"),
            ([{"headers": {"x": "plain"}}], "spec.analysis.match[0].headers.x"),
        ],
    )
    def test_unsupported_matches_are_refused_naming_the_field(
        self, match: list[dict[str, Any]], field: str
    ) -> None:
        canary = make_canary("contour", analysis=ab(match), validate=False)
        with pytest.raises(RouterError) as err:
            contour.http_proxy(canary, None, Routes(0, 100))
        assert err.value.field == field

    def test_mirroring_and_session_affinity_are_refused(self) -> None:
        with pytest.raises(RouterError) as err:
            contour.http_proxy(make_canary("contour"), None, Routes(100, 0, True))
        assert err.value.field == "spec.analysis.mirror"
        sticky = make_canary(
            "contour",
            analysis={"interval": "1m", "stepWeight": 10, "sessionAffinity": {"cookieName": "c"}},
            validate=False,
        )
        with pytest.raises(RouterError) as err:
            contour.http_proxy(sticky, None, Routes(90, 10))
        assert err.value.field == "spec.analysis.sessionAffinity"

    def test_the_parser_refuses_mirroring_and_affinity_too(self) -> None:
        from canary.model import SpecError

        with pytest.raises(SpecError, match=r"spec\.analysis\.mirror"):
            make_canary("contour", analysis={"interval": "1m", "iterations": 2, "mirror": True})

    def test_reconcile_keeps_the_weights_and_rebuilds_the_rest(self) -> None:
        canary = make_canary("contour")
        written = contour.http_proxy(canary, None, Routes(65, 35))
        assert contour.http_proxy(canary, written, None) == written
        edited = make_canary("contour", service={"timeout": "3s"})
        rebuilt = contour.http_proxy(edited, written, None)
        assert contour.read_routes(edited, rebuilt) == Routes(65, 35)
        assert rebuilt["spec"]["routes"][0]["timeoutPolicy"] == {"response": "3s", "idle": "5m"}

    def test_read_routes_as_percentages_and_unweighted_entries(self) -> None:
        canary = make_canary("contour")
        proxy = {
            "spec": {
                "routes": [
                    {
                        "services": [
                            {"name": "podinfo-primary", "port": 9898, "weight": 3},
                            {"name": "podinfo-canary", "port": 9898, "weight": 1},
                        ]
                    }
                ]
            }
        }
        assert contour.read_routes(canary, proxy) == Routes(75, 25)
        assert contour.read_routes(canary, {"spec": {"routes": []}}) is None
        assert contour.read_routes(canary, None) is None
        nowhere = {"spec": {"routes": [{"services": [{"name": "podinfo-primary", "port": 1}]}]}}
        with pytest.raises(RouterError, match="no weight"):
            contour.read_routes(canary, nowhere)


class TestContourRouter:
    async def test_walks_weights_and_reconcile_keeps_them(self) -> None:
        kube = FakeKube()
        router = make_router("contour", kube)
        assert isinstance(router, ContourRouter)
        canary = make_canary("contour")
        assert [str(a) for a in router.required_apis(canary)] == [f"{API} HTTPProxy"]
        await router.reconcile(canary)
        assert await router.get_routes(canary) == Routes(100, 0)
        for weight in (25, 50, 100, 0):
            await router.set_routes(canary, 100 - weight, weight, False)
            await router.reconcile(canary)
            assert await router.get_routes(canary) == Routes(100 - weight, weight)
        writes = len(kube.writes)
        await router.reconcile(canary)
        assert len(kube.writes) == writes  # nothing written when in step

    async def test_ingress_class_from_the_controller(self) -> None:
        kube = FakeKube()
        canary = make_canary("contour")
        await ContourRouter(kube, ingress_class="internal").reconcile(canary)
        proxy = kube.peek(API, "HTTPProxy", "podinfo")
        assert proxy is not None and proxy["spec"]["ingressClassName"] == "internal"

    async def test_takeover_and_finalize(self) -> None:
        kube = FakeKube()
        original = {
            "apiVersion": API,
            "kind": "HTTPProxy",
            "metadata": {
                "name": "podinfo",
                "namespace": NS,
                "annotations": {"projectcontour.io/ingress.class": "contour"},
            },
            "spec": {"routes": [{"services": [{"name": "podinfo", "port": 9898}]}]},
        }
        kube.put(original)
        router = ContourRouter(kube)
        canary = make_canary("contour")
        await router.set_routes(canary, 70, 30, False)
        taken = kube.peek(API, "HTTPProxy", "podinfo")
        assert taken is not None
        annotations = taken["metadata"]["annotations"]
        assert ORIGINAL_CONFIG_ANNOTATION in annotations
        assert annotations["projectcontour.io/ingress.class"] == "contour"
        assert "ownerReferences" not in taken["metadata"]
        await router.finalize(canary)
        restored = kube.peek(API, "HTTPProxy", "podinfo")
        assert restored is not None
        assert strip_server_fields(restored) == strip_server_fields(original)

    async def test_an_owned_proxy_is_left_to_garbage_collection(self) -> None:
        kube = FakeKube()
        router = ContourRouter(kube)
        canary = make_canary("contour")
        await router.reconcile(canary)
        writes = len(kube.writes)
        await router.finalize(canary)
        assert len(kube.writes) == writes


# ---------------------------------------------------------------- the simulated data plane

N = 2000
PRIMARY_PODS = {"podinfo-primary-a", "podinfo-primary-b"}
CANARY_PODS = {"podinfo-c"}


def root_proxy() -> dict[str, Any]:
    """The user's root HTTPProxy for the host, including the Canary's proxy."""
    return {
        "apiVersion": API,
        "kind": "HTTPProxy",
        "metadata": {"name": "podinfo-ingress", "namespace": NS},
        "spec": {
            "virtualhost": {"fqdn": HOST},
            "includes": [{"name": "podinfo", "namespace": NS, "conditions": [{"prefix": "/"}]}],
        },
    }


async def cluster(analysis: dict[str, Any] | None = None) -> tuple[FakeKube, Canary, ContourRouter]:
    kube = FakeKube()
    canary = make_canary("contour", analysis=analysis)
    services = ServiceRouter(kube)
    await services.initialize(canary, target())
    await services.reconcile_apex(canary, target())
    for name in sorted(PRIMARY_PODS):
        kube.put(pod(name, {"app": "podinfo-primary"}))
    for name in sorted(CANARY_PODS):
        kube.put(pod(name, {"app": "podinfo"}))
    kube.put(root_proxy())
    router = ContourRouter(kube)
    await router.reconcile(canary)
    return kube, canary, router


class TestTrafficThroughContour:
    async def test_measured_split_follows_each_step(self) -> None:
        kube, canary, router = await cluster()
        gen = TrafficGenerator(kube, ContourEntry(NS, HOST), seed=7)
        for weight in (0, 10, 50, 100):
            await router.set_routes(canary, 100 - weight, weight, False)
            await gen.refresh()
            window = await gen.send(N)
            assert window.routed == N and window.unrouted == window.unavailable == 0
            expected = weight / 100
            assert abs(window.canary_share - expected) <= binomial_tolerance(N, expected), window
            if weight == 0:
                assert set(window.pods) == PRIMARY_PODS
            if weight == 100:
                assert set(window.pods) == CANARY_PODS

    async def test_ab_sends_matching_requests_only(self) -> None:
        kube, canary, router = await cluster(AB)
        await router.set_routes(canary, 0, 100, False)
        profiles = (
            RequestProfile(weight=1, headers={"X-Canary": "insider"}),
            RequestProfile(weight=1, headers={"X-Canary": "outsider"}),
        )
        gen = TrafficGenerator(kube, ContourEntry(NS, HOST), profiles=profiles, seed=3)
        await gen.refresh()
        window = await gen.send(400)
        assert window.routed == 400
        assert abs(window.canary_share - 0.5) <= binomial_tolerance(400, 0.5)
        snapshot = gen.snapshot
        assert snapshot is not None
        rng = random.Random(1)
        for headers, wanted in (
            ({"x-canary": "insider"}, "podinfo-canary"),
            ({}, "podinfo-primary"),
        ):
            request = TrafficRequest(1, 1, HOST, headers=headers)
            assert resolve(snapshot, ContourEntry(NS, HOST), request, rng).service == wanted

    def test_unknown_host_and_longest_prefix(self) -> None:
        child = {
            "metadata": {"name": "podinfo"},
            "spec": {
                "routes": [
                    {"conditions": [{"prefix": "/"}], "services": [{"name": "a", "port": 1}]},
                    {
                        "conditions": [{"prefix": "/api"}],
                        "services": [
                            {"name": "b", "port": 1, "weight": 1},
                            {"name": "m", "port": 1, "mirror": True},
                        ],
                    },
                ]
            },
        }
        snapshot = Snapshot(NS, http_proxies=(root_proxy(), child))
        rng = random.Random(0)
        api = resolve(snapshot, ContourEntry(NS, HOST), TrafficRequest(1, 1, HOST, "/api/x"), rng)
        assert (api.service, api.mirrors) == ("b", ("m",))
        assert (
            resolve(snapshot, ContourEntry(NS, HOST), TrafficRequest(1, 1, HOST), rng).service
            == "a"
        )
        other = resolve(
            snapshot, ContourEntry(NS, "other.example.com"), TrafficRequest(1, 1, "x"), rng
        )
        assert other.service is None
