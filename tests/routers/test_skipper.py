"""The Skipper router: ``<ingress>-canary`` with both backends behind each path,
``zalando.org/backend-weights`` and the ``Weight(100)``/``False()`` predicate, as Flagger
writes it, and the simulated Skipper that follows it."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from canary.adapters.routers import RouterError, ServiceRouter, make_router
from canary.adapters.routers.builders import ORIGINAL_CONFIG_ANNOTATION, skipper
from canary.adapters.routers.skipper import SkipperRouter
from canary.core.observations import Routes
from canary.demo.traffic import IngressEntry, Snapshot, TrafficGenerator, TrafficRequest, resolve
from canary.model import SpecError
from tests.routers.fakes import FakeKube
from tests.routers.support import NS, binomial_tolerance, make_canary, pod, strip_server_fields
from tests.routers.support import target as make_target

API = "networking.k8s.io/v1"
HOST = "app.example.com"
N = 2000
REF = {"apiVersion": API, "kind": "Ingress", "name": "podinfo"}
WEIGHTS = "zalando.org/backend-weights"
PREDICATE = "zalando.org/skipper-predicate"
OWNER = {
    "apiVersion": "canary.gitops.dev/v1beta1",
    "kind": "Canary",
    "name": "podinfo",
    "uid": "canary-uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}
AB = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 5,
    "match": [{"headers": {"x": {"exact": "1"}}}],
}


def path(service: str, value: str = "/", port: int = 80) -> dict[str, Any]:
    return {
        "path": value,
        "pathType": "Prefix",
        "backend": {"service": {"name": service, "port": {"number": port}}},
    }


def user_ingress(*paths: dict[str, Any], predicate: str | None = None) -> dict[str, Any]:
    """The user's Ingress ``podinfo`` of class skipper."""
    annotations = {"team": "a", "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    if predicate is not None:
        annotations[PREDICATE] = predicate
    return {
        "apiVersion": API,
        "kind": "Ingress",
        "metadata": {
            "name": "podinfo",
            "namespace": NS,
            "labels": {"app": "podinfo"},
            "annotations": annotations,
        },
        "spec": {
            "ingressClassName": "skipper",
            "rules": [
                {
                    "host": HOST,
                    "http": {"paths": list(paths or (path("podinfo"), path("admin", "/admin")))},
                }
            ],
        },
    }


def canary_for(**kw: Any) -> Any:
    return make_canary("skipper", ingressRef=REF, **kw)


class TestInsertPredicate:
    @pytest.mark.parametrize(
        ("raw", "first", "expected"),
        [
            ("", "Weight(100)", "Weight(100)"),
            ('Method("GET")', "Weight(100)", 'Weight(100) && Method("GET")'),
            ('Weight(100) && Method("GET")', "Weight(100)", 'Weight(100) && Method("GET")'),
            ('Method("GET")&&False()', "False()", 'False() && Method("GET")'),
            (
                'Method("GET") &&  False() && Path("/x")',
                "Weight(100)",
                'Weight(100) && Method("GET") && Path("/x")',
            ),
        ],
    )
    def test_like_flagger(self, raw: str, first: str, expected: str) -> None:
        assert skipper.insert_predicate(raw, first) == expected


class TestCanaryIngress:
    @pytest.mark.parametrize("weight", [0, 25, 100])
    def test_exact_object_at_weights(self, weight: int) -> None:
        canary = canary_for()
        original = user_ingress(path("podinfo"), path("admin", "/admin"), predicate='Method("GET")')
        obj = skipper.canary_ingress(canary, original, None, Routes(100 - weight, weight))
        first = "False()" if weight == 0 else "Weight(100)"
        assert obj == {
            "apiVersion": API,
            "kind": "Ingress",
            "metadata": {
                "name": "podinfo-canary",
                "namespace": NS,
                "labels": {"app": "podinfo"},
                "annotations": {
                    "team": "a",
                    WEIGHTS: f'{{"podinfo-canary":{weight},"podinfo-primary":{100 - weight}}}',
                    PREDICATE: f'{first} && Method("GET")',
                },
                "ownerReferences": [OWNER],
            },
            "spec": {
                "ingressClassName": "skipper",
                "rules": [
                    {
                        "host": HOST,
                        "http": {
                            "paths": [
                                path("podinfo-primary"),
                                path("admin", "/admin"),
                                path("podinfo-canary"),
                            ]
                        },
                    }
                ],
            },
        }
        assert skipper.read_routes(canary, obj) == Routes(100 - weight, weight)

    def test_initial_copy_takes_over_at_primary_100(self) -> None:
        canary = canary_for()
        obj = skipper.canary_ingress(canary, user_ingress(), None)
        annotations = obj["metadata"]["annotations"]
        assert json.loads(annotations[WEIGHTS]) == {"podinfo-primary": 100, "podinfo-canary": 0}
        assert annotations[PREDICATE] == "Weight(100)"

    @pytest.mark.parametrize("weight", range(0, 101, 7))
    def test_round_trip_and_reconcile_keeps_the_state(self, weight: int) -> None:
        canary = canary_for()
        obj = skipper.canary_ingress(canary, user_ingress(), None)
        obj = skipper.canary_ingress(canary, user_ingress(), obj, Routes(100 - weight, weight))
        assert skipper.read_routes(canary, obj) == Routes(100 - weight, weight)
        assert skipper.canary_ingress(canary, user_ingress(), obj) == obj

    def test_changes_of_the_original_are_synced_keeping_weights(self) -> None:
        canary = canary_for()
        obj = skipper.canary_ingress(canary, user_ingress(), None, Routes(70, 30))
        changed = user_ingress(path("podinfo", "/v2"), predicate='Header("x", "y")')
        synced = skipper.canary_ingress(canary, changed, obj)
        assert [p["path"] for p in synced["spec"]["rules"][0]["http"]["paths"]] == ["/v2", "/v2"]
        assert synced["metadata"]["annotations"][PREDICATE] == 'Weight(100) && Header("x", "y")'
        assert skipper.read_routes(canary, synced) == Routes(70, 30)

    def test_an_ingress_without_the_backend_is_refused(self) -> None:
        with pytest.raises(RouterError) as err:
            skipper.canary_ingress(canary_for(), user_ingress(path("other")), None)
        assert err.value.field == "spec.ingressRef.name"

    def test_reading_weights(self) -> None:
        canary = canary_for()

        def ingress(value: str) -> dict[str, Any]:
            return {"metadata": {"name": "podinfo-canary", "annotations": {WEIGHTS: value}}}

        assert skipper.read_routes(
            canary, ingress('{"podinfo-primary": 3, "podinfo-canary": 1}')
        ) == Routes(75, 25)
        assert skipper.read_routes(canary, ingress('{"other": 1}')) is None
        assert skipper.read_routes(canary, {"metadata": {}}) is None
        with pytest.raises(RouterError, match="not a JSON object"):
            skipper.read_routes(canary, ingress("[1"))
        with pytest.raises(RouterError, match="not a number"):
            skipper.read_routes(canary, ingress('{"podinfo-primary": "x"}'))

    @pytest.mark.parametrize(
        ("analysis", "routes", "field"),
        [
            (AB, None, "spec.analysis.match"),
            (None, Routes(100, 0, True), "spec.analysis.mirror"),
            (
                {
                    "interval": "1m",
                    "threshold": 5,
                    "stepWeight": 10,
                    "sessionAffinity": {"cookieName": "c"},
                },
                None,
                "spec.analysis.sessionAffinity",
            ),
        ],
    )
    def test_what_skipper_cannot_do_is_refused_by_field(
        self, analysis: dict[str, Any] | None, routes: Routes | None, field: str
    ) -> None:
        canary = make_canary("skipper", analysis=analysis, ingressRef=REF, validate=False)
        with pytest.raises(RouterError) as err:
            skipper.canary_ingress(canary, user_ingress(), None, routes)
        assert err.value.field == field


class TestParser:
    def test_ingress_ref_is_required(self) -> None:
        with pytest.raises(SpecError) as err:
            make_canary("skipper")
        assert [i.path for i in err.value.errors] == ["spec.ingressRef"]

    def test_ab_testing_is_refused(self) -> None:
        with pytest.raises(SpecError) as err:
            make_canary("skipper", ingressRef=REF, analysis=AB)
        assert [i.path for i in err.value.errors] == ["spec.analysis.match"]


class TestSkipperRouter:
    async def test_walks_weights_and_never_writes_the_original(self) -> None:
        kube = FakeKube()
        kube.put(user_ingress())
        original = kube.peek(API, "Ingress", "podinfo")
        router = make_router("skipper", kube)
        assert isinstance(router, SkipperRouter)
        canary = canary_for()
        assert [str(a) for a in router.required_apis(canary)] == [f"{API} Ingress"]
        await router.reconcile(canary)
        assert await router.get_routes(canary) == Routes(100, 0)
        for weight in (10, 60, 100, 0):
            await router.set_routes(canary, 100 - weight, weight, False)
            await router.reconcile(canary)
            assert await router.get_routes(canary) == Routes(100 - weight, weight)
        copy = kube.peek(API, "Ingress", "podinfo-canary")
        assert copy is not None and copy["metadata"]["annotations"][PREDICATE] == "False()"
        assert kube.peek(API, "Ingress", "podinfo") == original

    async def test_finalize_deletes_our_copy_and_restores_a_taken_one(self) -> None:
        kube = FakeKube()
        kube.put(user_ingress())
        router = make_router("skipper", kube)
        canary = canary_for()
        await router.reconcile(canary)
        await router.finalize(canary)
        assert kube.peek(API, "Ingress", "podinfo-canary") is None
        await router.finalize(canary)  # already gone: nothing to do

        before = {
            **user_ingress(path("podinfo-v1")),
            "metadata": {"name": "podinfo-canary", "namespace": NS},
        }
        kube.put(before)
        await router.set_routes(canary, 50, 50, False)
        taken = kube.peek(API, "Ingress", "podinfo-canary")
        assert taken is not None and ORIGINAL_CONFIG_ANNOTATION in taken["metadata"]["annotations"]
        await router.finalize(canary)
        restored = kube.peek(API, "Ingress", "podinfo-canary")
        assert restored is not None
        assert strip_server_fields(restored) == strip_server_fields(before)

    async def test_a_missing_original_names_the_field(self) -> None:
        router = make_router("skipper", FakeKube())
        with pytest.raises(RouterError) as err:
            await router.reconcile(canary_for())
        assert err.value.field == "spec.ingressRef.name"


# ---------------------------------------------------------------------- simulated Skipper


def request(url: str = "/", **headers: str) -> TrafficRequest:
    return TrafficRequest(1, 0, HOST, url, "GET", headers)


class TestSkipperRouting:
    def test_predicates_outrank_and_false_switches_off(self) -> None:
        canary = canary_for()
        original = user_ingress()
        entry = IngressEntry(NS, "podinfo")
        rng = random.Random(0)
        on = skipper.canary_ingress(canary, original, None, Routes(0, 100))
        snapshot = Snapshot(NS, ingresses=(original, on))
        assert resolve(snapshot, entry, request(), rng).service == "podinfo-canary"
        assert resolve(snapshot, entry, request("/admin/x"), rng).service == "admin"
        off = skipper.canary_ingress(canary, original, on, Routes(100, 0))
        snapshot = Snapshot(NS, ingresses=(original, off))
        resolution = resolve(snapshot, entry, request(), rng)
        assert (resolution.service, resolution.via) == ("podinfo", "Ingress/podinfo")

    def test_header_predicates(self) -> None:
        beta = user_ingress(path("beta"), predicate='Weight(5) && Header("x-beta", "1")')
        beta["metadata"]["name"] = "beta"
        snapshot = Snapshot(NS, ingresses=(user_ingress(), beta))
        entry = IngressEntry(NS, "podinfo")
        rng = random.Random(0)
        assert resolve(snapshot, entry, request(**{"x-beta": "1"}), rng).service == "beta"
        assert resolve(snapshot, entry, request(), rng).service == "podinfo"


class TestSkipperTraffic:
    async def test_measured_split_follows_each_step(self) -> None:
        kube = FakeKube()
        canary = canary_for()
        services = ServiceRouter(kube)
        await services.initialize(canary, make_target())
        await services.reconcile_apex(canary, make_target())
        for name in ("podinfo-primary-a", "podinfo-primary-b"):
            kube.put(pod(name, {"app": "podinfo-primary"}))
        kube.put(pod("podinfo-c", {"app": "podinfo"}))
        kube.put(user_ingress())
        router = make_router("skipper", kube)
        await router.reconcile(canary)
        gen = TrafficGenerator(kube, IngressEntry(NS, "podinfo"), seed=42)
        for weight in (0, 10, 50, 100):
            await router.set_routes(canary, 100 - weight, weight, False)
            await gen.refresh()
            window = await gen.send(N)
            assert window.routed == N and window.unrouted == window.unavailable == 0
            expected = weight / 100
            assert abs(window.canary_share - expected) <= binomial_tolerance(N, expected), (
                weight,
                window,
            )
            if weight == 0:
                assert set(window.pods) == {"podinfo-primary-a", "podinfo-primary-b"}
            if weight == 100:
                assert set(window.pods) == {"podinfo-c"}
