"""The Istio router: DestinationRules and the VirtualService in every routing state."""

from __future__ import annotations

import json
from typing import Any

import pytest

from canary.adapters.routers import IstioRouter, RouterError, make_router
from canary.adapters.routers.builders import (
    FLAGGER_ORIGINAL_CONFIG_ANNOTATION,
    FLUX_RECONCILE_ANNOTATION,
    KUBECTL_LAST_APPLIED_ANNOTATION,
    ORIGINAL_CONFIG_ANNOTATION,
    SessionCookies,
    istio,
    seeded_cookie_factory,
)
from canary.core.observations import Routes
from tests.routers.fakes import FakeKube
from tests.routers.support import NS, make_canary, strip_server_fields

VS = "networking.istio.io/v1beta1"
SERVICE = {
    "port": 9898,
    "hosts": ["app.example.com"],
    "gateways": ["public-gateway.istio-system.svc.cluster.local"],
    "match": [{"uri": {"prefix": "/api"}}],
    "rewrite": {"uri": "/", "type": "ReplacePrefixMatch"},
    "timeout": "30s",
    "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "gateway-error"},
    "headers": {"request": {"add": {"x-a": "1"}}},
    "corsPolicy": {"allowOrigins": [{"exact": "https://example.com"}], "maxAge": "24h"},
    "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
}
SETTINGS = {
    "rewrite": {"uri": "/"},
    "timeout": "30s",
    "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "gateway-error"},
    "corsPolicy": {"allowOrigins": [{"exact": "https://example.com"}], "maxAge": "24h"},
    "headers": {"request": {"add": {"x-a": "1"}}},
}
AFFINITY = {
    "interval": "1m",
    "threshold": 5,
    "stepWeight": 10,
    "sessionAffinity": {
        "cookieName": "flagger-cookie",
        "maxAge": 3600,
        "sameSite": "Lax",
        "secure": True,
    },
}


def dest(host: str, weight: int, **extra: Any) -> dict[str, Any]:
    return {"destination": {"host": host}, "weight": weight, **extra}


def http(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec["http"])


class TestDestinationRules:
    def test_host_and_traffic_policy(self) -> None:
        canary = make_canary("istio", service=SERVICE)
        dr = istio.destination_rule(canary, "podinfo-primary", None)
        assert dr["apiVersion"] == VS
        assert dr["kind"] == "DestinationRule"
        assert dr["metadata"]["name"] == "podinfo-primary"
        assert dr["spec"] == {
            "host": "podinfo-primary",
            "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
        }

    def test_without_traffic_policy(self) -> None:
        dr = istio.destination_rule(make_canary("istio"), "podinfo-canary", None)
        assert dr["spec"] == {"host": "podinfo-canary"}


class TestVirtualService:
    @pytest.mark.parametrize("weight", [0, 30, 100])
    def test_exact_spec_at_weight(self, weight: int) -> None:
        canary = make_canary("istio", service=SERVICE)
        vs = istio.virtual_service(canary, None, Routes(100 - weight, weight))
        assert vs["metadata"] == {
            "name": "podinfo",
            "namespace": NS,
            "annotations": {FLUX_RECONCILE_ANNOTATION: "disabled"},
            "ownerReferences": [
                {
                    "apiVersion": "canary.gitops.dev/v1beta1",
                    "kind": "Canary",
                    "name": "podinfo",
                    "uid": "canary-uid-1",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        assert vs["spec"] == {
            "hosts": ["app.example.com", "podinfo"],
            "gateways": ["public-gateway.istio-system.svc.cluster.local"],
            "http": [
                {
                    "match": [{"uri": {"prefix": "/api"}}],
                    **SETTINGS,
                    "route": [
                        dest("podinfo-primary", 100 - weight),
                        dest("podinfo-canary", weight),
                    ],
                }
            ],
        }
        assert istio.read_routes(canary, vs) == Routes(100 - weight, weight)

    def test_defaults_mesh_gateway_and_apex_host(self) -> None:
        vs = istio.virtual_service(make_canary("istio"), None)
        assert vs["spec"] == {
            "hosts": ["podinfo"],
            "gateways": ["mesh"],
            "http": [{"route": [dest("podinfo-primary", 100), dest("podinfo-canary", 0)]}],
        }

    def test_wildcard_host_is_not_extended(self) -> None:
        vs = istio.virtual_service(make_canary("istio", service={"hosts": ["*"]}), None)
        assert vs["spec"]["hosts"] == ["*"]

    def test_apex_metadata_on_the_virtual_service(self) -> None:
        canary = make_canary(
            "istio", service={"apex": {"labels": {"a": "1"}, "annotations": {"b": "2"}}}
        )
        meta = istio.virtual_service(canary, None)["metadata"]
        assert meta["labels"] == {"a": "1"}
        assert meta["annotations"] == {"b": "2", FLUX_RECONCILE_ANNOTATION: "disabled"}

    def test_destination_port_with_port_discovery_behind_a_gateway(self) -> None:
        canary = make_canary("istio", service={"portDiscovery": True, "gateways": ["gw"]})
        route = istio.virtual_service(canary, None)["spec"]["http"][0]["route"]
        assert route[0]["destination"] == {"host": "podinfo-primary", "port": {"number": 9898}}

    def test_delegation_has_no_hosts_or_gateways(self) -> None:
        vs = istio.virtual_service(make_canary("istio", service={"delegation": True}), None)
        assert "hosts" not in vs["spec"]
        assert "gateways" not in vs["spec"]

    def test_delegation_with_hosts_is_refused(self) -> None:
        canary = make_canary("istio", service={"delegation": True, "hosts": ["a.example.com"]})
        with pytest.raises(RouterError) as err:
            istio.virtual_service(canary, None)
        assert err.value.field == "spec.service.hosts"

    def test_tcp_route(self) -> None:
        canary = make_canary("istio", service={"appProtocol": "tcp", "match": [{"port": 9898}]})
        vs = istio.virtual_service(canary, None, Routes(60, 40))
        assert vs["spec"]["tcp"] == [
            {
                "match": [{"port": 9898}],
                "route": [dest("podinfo-primary", 60), dest("podinfo-canary", 40)],
            }
        ]
        assert "http" not in vs["spec"]
        assert istio.read_routes(canary, vs) == Routes(60, 40)

    def test_v1_api_version_on_request(self) -> None:
        assert (
            istio.virtual_service(make_canary("istio"), None, version="v1")["apiVersion"]
            == "networking.istio.io/v1"
        )
        with pytest.raises(RouterError):
            istio.istio_api_version("v2")


class TestMirroring:
    def test_mirror_with_percentage(self) -> None:
        canary = make_canary(
            "istio",
            analysis={
                "interval": "1m",
                "threshold": 5,
                "iterations": 5,
                "mirror": True,
                "mirrorWeight": 25,
            },
        )
        vs = istio.virtual_service(canary, None, Routes(100, 0, True))
        route = vs["spec"]["http"][0]
        assert route["mirror"] == {"host": "podinfo-canary"}
        assert route["mirrorPercentage"] == {"value": 25.0}
        assert istio.read_routes(canary, vs) == Routes(100, 0, True)
        off = istio.virtual_service(canary, vs, Routes(100, 0, False))
        assert "mirror" not in off["spec"]["http"][0]
        assert istio.read_routes(canary, off) == Routes(100, 0, False)

    def test_mirror_weight_zero_mirrors_everything(self) -> None:
        canary = make_canary(
            "istio", analysis={"interval": "1m", "threshold": 5, "iterations": 5, "mirror": True}
        )
        route = istio.virtual_service(canary, None, Routes(100, 0, True))["spec"]["http"][0]
        assert route["mirror"] == {"host": "podinfo-canary"}
        assert "mirrorPercentage" not in route


class TestABTesting:
    ANALYSIS: dict[str, Any] = {
        "interval": "1m",
        "threshold": 5,
        "iterations": 10,
        "match": [
            {"headers": {"x-canary": {"exact": "insider"}}},
            {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
        ],
    }

    def test_two_route_form(self) -> None:
        canary = make_canary(
            "istio", service={"match": [{"uri": {"prefix": "/api"}}]}, analysis=self.ANALYSIS
        )
        vs = istio.virtual_service(canary, None, Routes(0, 100))
        assert http(vs["spec"]) == [
            {
                "match": [
                    {"uri": {"prefix": "/api"}, "headers": {"x-canary": {"exact": "insider"}}},
                    {
                        "uri": {"prefix": "/api"},
                        "headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}},
                    },
                ],
                "route": [dest("podinfo-primary", 0), dest("podinfo-canary", 100)],
            },
            {"match": [{"uri": {"prefix": "/api"}}], "route": [dest("podinfo-primary", 100)]},
        ]
        assert istio.read_routes(canary, vs) == Routes(0, 100)

    def test_without_service_match(self) -> None:
        canary = make_canary("istio", analysis=self.ANALYSIS)
        routes = http(istio.virtual_service(canary, None)["spec"])
        assert routes[0]["match"] == list(self.ANALYSIS["match"])
        assert routes[1] == {"route": [dest("podinfo-primary", 100)]}

    def test_mirroring_with_ab_is_refused(self) -> None:
        canary = make_canary("istio", analysis=self.ANALYSIS)
        with pytest.raises(RouterError) as err:
            istio.virtual_service(canary, None, Routes(100, 0, True))
        assert err.value.field == "spec.analysis.mirror"


class TestSessionAffinity:
    def test_cookie_lifecycle(self) -> None:
        canary = make_canary("istio", analysis=AFFINITY)
        factory = seeded_cookie_factory(7)
        start = istio.virtual_service(canary, None)
        assert len(http(start["spec"])) == 1

        step = istio.virtual_service(canary, start, Routes(90, 10), new_cookie=factory)
        cookie = istio.read_cookies(canary, step).canary
        name, _, value = cookie.partition("=")
        assert name == "flagger-cookie" and len(value) == 10 and value.isalpha()
        sticky, weighted = http(step["spec"])
        assert sticky == {
            "name": "sticky-route",
            "match": [{"headers": {"Cookie": {"regex": f".*flagger-cookie.*{value}.*"}}}],
            "route": [dest("podinfo-primary", 0), dest("podinfo-canary", 100)],
        }
        assert weighted["route"] == [
            dest("podinfo-primary", 90),
            dest(
                "podinfo-canary",
                10,
                headers={
                    "response": {
                        "add": {"Set-Cookie": f"{cookie}; Max-Age=3600; SameSite=Lax; Secure"}
                    }
                },
            ),
        ]
        assert istio.read_routes(canary, step) == Routes(90, 10)

        # The next step keeps the same cookie.
        later = istio.virtual_service(canary, step, Routes(80, 20), new_cookie=factory)
        assert istio.read_cookies(canary, later) == SessionCookies(canary=cookie)

        # Back to 0: the cookie is expired on a route that matches it.
        done = istio.virtual_service(canary, later, Routes(100, 0), new_cookie=factory)
        expiring, weighted = http(done["spec"])
        assert expiring["headers"] == {"response": {"add": {"Set-Cookie": f"{cookie}; Max-Age=-1"}}}
        assert expiring["route"] == [dest("podinfo-primary", 100), dest("podinfo-canary", 0)]
        assert "headers" not in weighted["route"][1]
        assert istio.read_cookies(canary, done) == SessionCookies(previous=cookie)
        assert istio.read_routes(canary, done) == Routes(100, 0)

        # A new run hands out a new cookie.
        again = istio.virtual_service(canary, done, Routes(90, 10), new_cookie=factory)
        assert istio.read_cookies(canary, again).canary not in ("", cookie)

    def test_primary_cookie_lasts_one_interval(self) -> None:
        analysis = {**AFFINITY, "sessionAffinity": {"cookieName": "c", "primaryCookieName": "p"}}
        canary = make_canary("istio", analysis=analysis)
        vs = istio.virtual_service(
            canary, None, Routes(90, 10), new_cookie=seeded_cookie_factory(1)
        )
        cookies = istio.read_cookies(canary, vs)
        assert cookies.primary.startswith("p=")
        names = [r.get("name") for r in http(vs["spec"])]
        assert names == ["sticky-route", "sticky-route-primary", None]
        primary_sticky = http(vs["spec"])[1]
        assert primary_sticky["route"] == [dest("podinfo-primary", 100), dest("podinfo-canary", 0)]
        weighted = http(vs["spec"])[2]
        assert (
            weighted["route"][0]["headers"]["response"]["add"]["Set-Cookie"]
            == f"{cookies.primary}; Max-Age=60"
        )

    def test_reconcile_keeps_the_cookie(self) -> None:
        canary = make_canary("istio", analysis=AFFINITY)
        step = istio.virtual_service(
            canary, None, Routes(90, 10), new_cookie=seeded_cookie_factory(3)
        )
        assert istio.virtual_service(canary, step)["spec"] == step["spec"]


class TestIstioRouter:
    async def test_reconcile_creates_three_objects_and_reads_back(self) -> None:
        kube = FakeKube()
        router = make_router("istio", kube)
        assert isinstance(router, IstioRouter)
        canary = make_canary("istio", service=SERVICE)
        assert await router.get_routes(canary) is None
        await router.reconcile(canary)
        assert sorted(kube.writes) == [
            ("create", "DestinationRule", "podinfo-canary"),
            ("create", "DestinationRule", "podinfo-primary"),
            ("create", "VirtualService", "podinfo"),
        ]
        assert await router.get_routes(canary) == Routes(100, 0)

    async def test_reconcile_never_resets_weights_or_mirroring(self) -> None:
        kube = FakeKube()
        router = make_router("istio", kube)
        canary = make_canary(
            "istio", analysis={"interval": "1m", "threshold": 5, "iterations": 3, "mirror": True}
        )
        await router.reconcile(canary)
        await router.set_routes(canary, 100, 0, True)
        await router.reconcile(canary)
        assert await router.get_routes(canary) == Routes(100, 0, True)
        await router.set_routes(canary, 40, 60, False)
        changed = make_canary(
            "istio",
            service={"timeout": "5s"},
            analysis={"interval": "1m", "threshold": 5, "iterations": 3},
        )
        await router.reconcile(changed)
        vs = kube.peek(VS, "VirtualService", "podinfo")
        assert vs is not None
        assert vs["spec"]["http"][0]["timeout"] == "5s"
        assert await router.get_routes(changed) == Routes(40, 60)

    async def test_session_cookies_are_exposed(self) -> None:
        kube = FakeKube()
        router = IstioRouter(kube, new_cookie=seeded_cookie_factory(5))
        canary = make_canary("istio", analysis=AFFINITY)
        await router.set_routes(canary, 95, 5, False)
        cookies = await router.get_session_cookies(canary)
        assert cookies.canary.startswith("flagger-cookie=")

    async def test_takeover_records_and_finalize_restores(self) -> None:
        kube = FakeKube()
        original = {
            "apiVersion": VS,
            "kind": "VirtualService",
            "metadata": {
                "name": "podinfo",
                "namespace": NS,
                "labels": {"team": "web"},
                "annotations": {"x": "y"},
            },
            "spec": {
                "hosts": ["podinfo"],
                "http": [{"route": [{"destination": {"host": "podinfo"}}]}],
            },
        }
        kube.put(original)
        router = make_router("istio", kube)
        canary = make_canary("istio", revertOnDeletion=True)
        await router.reconcile(canary)
        await router.set_routes(canary, 50, 50, False)
        taken = kube.peek(VS, "VirtualService", "podinfo")
        assert taken is not None
        assert "ownerReferences" not in taken["metadata"]
        record = json.loads(taken["metadata"]["annotations"][ORIGINAL_CONFIG_ANNOTATION])
        assert record["spec"] == original["spec"]
        assert await router.get_routes(canary) == Routes(50, 50)
        await router.finalize(canary)
        restored = kube.peek(VS, "VirtualService", "podinfo")
        assert restored is not None
        assert strip_server_fields(restored) == strip_server_fields(original)

    async def test_finalize_reads_flaggers_annotation(self) -> None:
        kube = FakeKube()
        flagger_spec = {
            "hosts": ["podinfo"],
            "http": [{"route": [{"destination": {"host": "podinfo"}}]}],
        }
        kube.put(
            {
                "apiVersion": VS,
                "kind": "VirtualService",
                "metadata": {
                    "name": "podinfo",
                    "namespace": NS,
                    "annotations": {FLAGGER_ORIGINAL_CONFIG_ANNOTATION: json.dumps(flagger_spec)},
                },
                "spec": {"hosts": ["podinfo"], "http": [{"route": [dest("podinfo-primary", 100)]}]},
            }
        )
        await make_router("istio", kube).finalize(make_canary("istio"))
        restored = kube.peek(VS, "VirtualService", "podinfo")
        assert restored is not None
        assert restored["spec"] == flagger_spec
        assert "annotations" not in restored["metadata"]

    async def test_finalize_prefers_kubectl_last_applied(self) -> None:
        kube = FakeKube()
        applied = {"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "v2"}}]}]}
        kube.put(
            {
                "apiVersion": VS,
                "kind": "VirtualService",
                "metadata": {
                    "name": "podinfo",
                    "namespace": NS,
                    "annotations": {KUBECTL_LAST_APPLIED_ANNOTATION: json.dumps({"spec": applied})},
                },
                "spec": {
                    "hosts": ["podinfo"],
                    "http": [{"route": [{"destination": {"host": "v1"}}]}],
                },
            }
        )
        router = make_router("istio", kube)
        canary = make_canary("istio")
        await router.reconcile(canary)
        await router.finalize(canary)
        restored = kube.peek(VS, "VirtualService", "podinfo")
        assert restored is not None
        assert restored["spec"] == applied
        assert set(restored["metadata"]["annotations"]) == {KUBECTL_LAST_APPLIED_ANNOTATION}

    async def test_finalize_leaves_owned_objects_to_garbage_collection(self) -> None:
        kube = FakeKube()
        router = make_router("istio", kube)
        canary = make_canary("istio")
        await router.reconcile(canary)
        writes = len(kube.writes)
        await router.finalize(canary)
        assert len(kube.writes) == writes

    async def test_concurrent_change_is_retried_not_clobbered(self) -> None:
        kube = FakeKube()
        router = make_router("istio", kube)
        canary = make_canary("istio")
        await router.reconcile(canary)
        raced: list[bool] = []

        def someone_else_writes(verb: str, obj: dict[str, Any]) -> None:
            if verb == "replace" and not raced:
                raced.append(True)
                current = kube.peek(VS, "VirtualService", "podinfo")
                assert current is not None
                current["metadata"].setdefault("labels", {})["touched"] = "yes"
                kube.put(current)

        kube.before_write = someone_else_writes
        await router.set_routes(canary, 70, 30, False)
        assert await router.get_routes(canary) == Routes(70, 30)
        assert raced == [True]
