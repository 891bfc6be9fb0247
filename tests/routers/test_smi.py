"""The SMI router: one TrafficSplit per canary, v1alpha1 to v1alpha3."""

from __future__ import annotations

import json
from typing import Any

import pytest

from canary.adapters.routers import RouterError, SmiRouter, make_router
from canary.adapters.routers.builders import ORIGINAL_CONFIG_ANNOTATION, smi
from canary.core.observations import Routes
from tests.routers.fakes import FakeKube
from tests.routers.support import NS, make_canary, strip_server_fields


class TestTrafficSplit:
    @pytest.mark.parametrize(
        ("version", "weights"),
        [
            ("v1alpha1", (0, 25, 100)),
            ("v1alpha2", (0, 25, 100)),
            ("v1alpha3", (0, 25, 100)),
        ],
    )
    def test_exact_object_at_weights(self, version: str, weights: tuple[int, ...]) -> None:
        provider = smi.SmiProvider.parse(f"smi:{version}")
        canary = make_canary(f"smi:{version}")
        for w in weights:
            split = smi.traffic_split(canary, None, Routes(100 - w, w), provider=provider)
            as_weight: Any = str if version == "v1alpha1" else int
            assert split == {
                "apiVersion": f"split.smi-spec.io/{version}",
                "kind": "TrafficSplit",
                "metadata": {
                    "name": "podinfo",
                    "namespace": NS,
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
                "spec": {
                    "service": "podinfo",
                    "backends": [
                        {"service": "podinfo-canary", "weight": as_weight(w)},
                        {"service": "podinfo-primary", "weight": as_weight(100 - w)},
                    ],
                },
            }
            assert smi.read_routes(canary, split) == Routes(100 - w, w)

    def test_first_host_is_the_root_service(self) -> None:
        canary = make_canary(
            "smi:v1alpha2", service={"hosts": ["podinfo.test.svc.cluster.local", "other"]}
        )
        split = smi.traffic_split(canary, None, provider=smi.SmiProvider("v1alpha2"))
        assert split["spec"]["service"] == "podinfo.test.svc.cluster.local"

    def test_istio_mesh_suffix_adds_the_gateways_annotation(self) -> None:
        canary = make_canary(
            "smi:v1alpha3:istio", service={"gateways": ["public-gw"]}, validate=False
        )
        provider = smi.SmiProvider.parse("smi:v1alpha3:istio")
        split = smi.traffic_split(canary, None, provider=provider)
        annotation = split["metadata"]["annotations"][smi.ISTIO_GATEWAYS_ANNOTATION]
        assert json.loads(annotation) == ["public-gw"]

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [(100, 100), ("100", 100), ("0", 0), ("500m", 0), ("1500m", 2), ("1k", 1000), (12.6, 13)],
    )
    def test_quantities(self, raw: Any, expected: int) -> None:
        assert smi.quantity(raw) == expected

    @pytest.mark.parametrize("raw", ["ten", "", True, "1x"])
    def test_bad_quantities(self, raw: Any) -> None:
        with pytest.raises(ValueError):
            smi.quantity(raw)

    def test_unknown_versions_are_refused(self) -> None:
        with pytest.raises(RouterError) as err:
            smi.SmiProvider.parse("smi:v1beta9")
        assert err.value.field == "spec.provider"

    def test_ab_and_mirroring_are_refused(self) -> None:
        provider = smi.SmiProvider("v1alpha3")
        ab = make_canary(
            "smi:v1alpha3",
            analysis={
                "interval": "1m",
                "threshold": 1,
                "iterations": 2,
                "match": [{"headers": {"x": {"exact": "1"}}}],
            },
            validate=False,
        )
        with pytest.raises(RouterError) as err:
            smi.traffic_split(ab, None, provider=provider)
        assert err.value.field == "spec.analysis.match"
        with pytest.raises(RouterError) as err:
            smi.traffic_split(
                make_canary("smi:v1alpha3"), None, Routes(100, 0, True), provider=provider
            )
        assert err.value.field == "spec.analysis.mirror"


class TestSmiRouter:
    @pytest.mark.parametrize("provider", ["smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3"])
    async def test_walks_weights_and_reconcile_keeps_them(self, provider: str) -> None:
        kube = FakeKube()
        router = make_router(provider, kube)
        assert isinstance(router, SmiRouter)
        canary = make_canary(provider)
        await router.reconcile(canary)
        assert await router.get_routes(canary) == Routes(100, 0)
        await router.set_routes(canary, 60, 40, False)
        await router.reconcile(canary)
        assert await router.get_routes(canary) == Routes(60, 40)

    async def test_takeover_and_finalize(self) -> None:
        kube = FakeKube()
        original = {
            "apiVersion": "split.smi-spec.io/v1alpha2",
            "kind": "TrafficSplit",
            "metadata": {"name": "podinfo", "namespace": NS},
            "spec": {"service": "podinfo", "backends": [{"service": "podinfo-v1", "weight": 100}]},
        }
        kube.put(original)
        router = make_router("smi:v1alpha2", kube)
        canary = make_canary("smi:v1alpha2")
        await router.set_routes(canary, 70, 30, False)
        taken = kube.peek("split.smi-spec.io/v1alpha2", "TrafficSplit", "podinfo")
        assert taken is not None and ORIGINAL_CONFIG_ANNOTATION in taken["metadata"]["annotations"]
        await router.finalize(canary)
        restored = kube.peek("split.smi-spec.io/v1alpha2", "TrafficSplit", "podinfo")
        assert restored is not None
        assert strip_server_fields(restored) == strip_server_fields(original)


class TestRelativeWeights:
    def test_read_as_percentages(self) -> None:
        canary = make_canary("smi:v1alpha2")
        split = {
            "spec": {
                "backends": [
                    {"service": "podinfo-canary", "weight": 1},
                    {"service": "podinfo-primary", "weight": 3},
                ]
            }
        }
        assert smi.read_routes(canary, split) == Routes(75, 25)

    def test_no_weight_anywhere_is_an_error(self) -> None:
        canary = make_canary("smi:v1alpha2")
        split = {
            "spec": {
                "backends": [
                    {"service": "podinfo-canary", "weight": 0},
                    {"service": "podinfo-primary", "weight": 0},
                ]
            }
        }
        with pytest.raises(RouterError, match="no weight"):
            smi.read_routes(canary, split)
