"""The NGINX router: the ``<ingress>-canary`` clone and its canary annotations."""

from __future__ import annotations

from typing import Any

import pytest

from canary.adapters.routers import NginxRouter, RouterError, make_router
from canary.adapters.routers.builders import KUBECTL_LAST_APPLIED_ANNOTATION, ingress
from canary.core.observations import Routes
from canary.model import Canary
from tests.routers.fakes import FakeKube
from tests.routers.support import NS, make_canary, strip_server_fields
from tests.routers.support import ingress as make_ingress

P = "nginx.ingress.kubernetes.io"
REF = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"}
AB = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 10,
    "match": [
        {"headers": {"x-canary": {"exact": "insider"}}},
        {"headers": {"cookie": {"exact": "canary"}}},
    ],
}


def nginx_canary(analysis: dict[str, Any] | None = None) -> Canary:
    return make_canary("nginx", analysis=analysis, ingressRef=REF)


def ann(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj["metadata"]["annotations"])


class TestCanaryIngressObject:
    def test_exact_clone_at_weight_zero(self) -> None:
        original = make_ingress(
            annotations={
                "kubernetes.io/ingress.class": "nginx",
                KUBECTL_LAST_APPLIED_ANNOTATION: "{}",
                f"{P}/canary-weight": "30",
                f"{P}/canary-by-header": "stale",
                f"{P}/proxy-body-size": "8m",
            }
        )
        obj = ingress.canary_ingress(nginx_canary(), original, None)
        expected_spec = make_ingress()["spec"]
        expected_spec["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = (
            "podinfo-canary"
        )
        assert obj == {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": "podinfo-canary",
                "namespace": NS,
                "labels": {"app": "podinfo"},
                "annotations": {
                    "kubernetes.io/ingress.class": "nginx",
                    f"{P}/proxy-body-size": "8m",
                    f"{P}/canary": "true",
                    f"{P}/canary-weight": "0",
                },
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
            },
            "spec": expected_spec,
        }

    @pytest.mark.parametrize("weight", [0, 35, 100])
    def test_weight_annotation_and_read_back(self, weight: int) -> None:
        canary = nginx_canary()
        obj = ingress.canary_ingress(canary, make_ingress(), None, Routes(100 - weight, weight))
        assert ann(obj)[f"{P}/canary-weight"] == str(weight)
        assert ann(obj)[f"{P}/canary"] == "true"
        assert ingress.read_ingress_routes(canary, obj) == Routes(100 - weight, weight)

    def test_ab_header_exact_and_cookie(self) -> None:
        canary = nginx_canary(AB)
        obj = ingress.canary_ingress(canary, make_ingress(), None, Routes(0, 100))
        routing = {k: v for k, v in ann(obj).items() if k.startswith(f"{P}/canary")}
        assert routing == {
            f"{P}/canary": "true",
            f"{P}/canary-by-header": "x-canary",
            f"{P}/canary-by-header-value": "insider",
            f"{P}/canary-by-cookie": "canary",
        }
        assert ingress.read_ingress_routes(canary, obj) == Routes(0, 100)

    def test_ab_header_regex_becomes_pattern(self) -> None:
        analysis = {**AB, "match": [{"headers": {"user-agent": {"regex": ".*Firefox.*"}}}]}
        canary = nginx_canary(analysis)
        obj = ingress.canary_ingress(canary, make_ingress(), None, Routes(0, 100))
        assert ann(obj)[f"{P}/canary-by-header"] == "user-agent"
        assert ann(obj)[f"{P}/canary-by-header-pattern"] == ".*Firefox.*"
        assert f"{P}/canary-by-header-value" not in ann(obj)

    def test_ab_back_to_zero_resets_annotations(self) -> None:
        canary = nginx_canary(AB)
        on = ingress.canary_ingress(canary, make_ingress(), None, Routes(0, 100))
        off = ingress.canary_ingress(canary, make_ingress(), on, Routes(100, 0))
        routing = {k: v for k, v in ann(off).items() if k.startswith(f"{P}/canary")}
        assert routing == {f"{P}/canary": "true", f"{P}/canary-weight": "0"}
        assert ingress.read_ingress_routes(canary, off) == Routes(100, 0)

    def test_custom_prefix(self) -> None:
        canary = nginx_canary()
        obj = ingress.canary_ingress(
            canary, make_ingress(), None, Routes(80, 20), prefix="custom.io"
        )
        assert ann(obj)["custom.io/canary-weight"] == "20"
        assert f"{P}/canary-weight" not in ann(obj)
        assert ingress.read_ingress_routes(canary, obj, "custom.io") == Routes(80, 20)

    @pytest.mark.parametrize(
        ("match", "field"),
        [
            ([{"headers": {"x-a": {"prefix": "v"}}}], "spec.analysis.match[0].headers.x-a"),
            ([{"uri": {"prefix": "/api"}}], "spec.analysis.match[0].uri"),
            (
                [{"headers": {"x-a": {"exact": "1"}}}, {"headers": {"x-b": {"exact": "2"}}}],
                "spec.analysis.match[1].headers.x-b",
            ),
        ],
    )
    def test_matches_nginx_cannot_express_are_refused(
        self, match: list[dict[str, Any]], field: str
    ) -> None:
        canary = make_canary(
            "nginx", analysis={**AB, "match": match}, ingressRef=REF, validate=False
        )
        with pytest.raises(RouterError) as err:
            ingress.canary_ingress(canary, make_ingress(), None, Routes(0, 100))
        assert err.value.field == field

    def test_original_without_the_apex_backend_is_an_error(self) -> None:
        with pytest.raises(RouterError) as err:
            ingress.canary_ingress(nginx_canary(), make_ingress(backend="other"), None)
        assert err.value.field == "spec.ingressRef.name"

    def test_mirroring_is_refused(self) -> None:
        with pytest.raises(RouterError) as err:
            ingress.canary_ingress(nginx_canary(), make_ingress(), None, Routes(100, 0, True))
        assert err.value.field == "spec.analysis.mirror"


class TestNginxRouter:
    async def test_walks_weights_and_never_touches_the_original(self) -> None:
        kube = FakeKube()
        original = kube.put(make_ingress())
        router = make_router("nginx", kube)
        canary = nginx_canary()
        assert await router.get_routes(canary) is None
        await router.reconcile(canary)
        assert await router.get_routes(canary) == Routes(100, 0)
        for weight in (10, 20, 50):
            await router.set_routes(canary, 100 - weight, weight, False)
            assert await router.get_routes(canary) == Routes(100 - weight, weight)
        assert kube.peek("networking.k8s.io/v1", "Ingress", "podinfo") == original
        assert all(name == "podinfo-canary" for _, _, name in kube.writes)

    async def test_reconcile_keeps_weights_and_syncs_the_original(self) -> None:
        kube = FakeKube()
        kube.put(make_ingress())
        router = make_router("nginx", kube)
        canary = nginx_canary()
        await router.reconcile(canary)
        await router.set_routes(canary, 70, 30, False)
        changed = make_ingress(
            annotations={"kubernetes.io/ingress.class": "nginx", f"{P}/proxy-read-timeout": "60"}
        )
        changed["spec"]["rules"][0]["host"] = "new.example.com"
        kube.put(changed)
        await router.reconcile(canary)
        clone = kube.peek("networking.k8s.io/v1", "Ingress", "podinfo-canary")
        assert clone is not None
        assert clone["spec"]["rules"][0]["host"] == "new.example.com"
        assert clone["metadata"]["annotations"][f"{P}/proxy-read-timeout"] == "60"
        assert await router.get_routes(canary) == Routes(70, 30)

    async def test_reconcile_twice_writes_once(self) -> None:
        kube = FakeKube()
        kube.put(make_ingress())
        router = make_router("nginx", kube)
        await router.reconcile(nginx_canary())
        await router.reconcile(nginx_canary())
        assert kube.writes == [("create", "Ingress", "podinfo-canary")]

    async def test_prefix_from_the_factory(self) -> None:
        kube = FakeKube()
        kube.put(make_ingress())
        router = make_router("nginx", kube, ingress_annotations_prefix="ingress.example.io")
        assert isinstance(router, NginxRouter)
        await router.set_routes(nginx_canary(), 60, 40, False)
        clone = kube.peek("networking.k8s.io/v1", "Ingress", "podinfo-canary")
        assert clone is not None
        assert clone["metadata"]["annotations"]["ingress.example.io/canary-weight"] == "40"

    async def test_missing_ingress_names_the_ref(self) -> None:
        router = make_router("nginx", FakeKube())
        with pytest.raises(RouterError) as err:
            await router.reconcile(nginx_canary())
        assert err.value.field == "spec.ingressRef.name"

    async def test_without_ingress_ref(self) -> None:
        router = make_router("nginx", FakeKube())
        with pytest.raises(RouterError) as err:
            await router.reconcile(make_canary("nginx", validate=False))
        assert err.value.field == "spec.ingressRef"

    async def test_finalize_restores_a_taken_over_clone_only(self) -> None:
        kube = FakeKube()
        kube.put(make_ingress())
        stranger = make_ingress("podinfo-canary", annotations={"someone": "else"})
        kube.put(stranger)
        router = make_router("nginx", kube)
        canary = nginx_canary()
        await router.set_routes(canary, 50, 50, False)
        await router.finalize(canary)
        restored = kube.peek("networking.k8s.io/v1", "Ingress", "podinfo-canary")
        assert restored is not None
        assert strip_server_fields(restored) == strip_server_fields(stranger)
