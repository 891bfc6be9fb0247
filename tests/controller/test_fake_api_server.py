"""`canary.testing`'s fakes behave as their docstrings promise.

The reconcile-pass tests are only as good as the fakes under them: a FakeKube that
ignored resourceVersion would let a lost-update bug pass, one that kept a deleted
object with finalizers out of sight would hide a finalizer bug. These tests pin the
API-server behaviour the controller relies on.
"""

from __future__ import annotations

from typing import Any

import pytest

from canary.adapters.routers import RouterError
from canary.model import parse_canary
from canary.ports import AlreadyExists, Conflict, Forbidden, Invalid, NotFound, Unavailable
from canary.testing import (
    FakeKube,
    FakeRouter,
    InjectedError,
    KubeCall,
    canary_manifest,
    deployment,
)

NS = "test"


def config_map(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS, "labels": labels or {}},
        "data": {"k": "v"},
    }


async def test_a_write_with_a_stale_resource_version_conflicts() -> None:
    kube = FakeKube()
    created = await kube.create(deployment())
    fresh = await kube.patch("apps/v1", "Deployment", "podinfo", NS, {"spec": {"replicas": 3}})

    with pytest.raises(Conflict):
        await kube.replace(created)  # the read before the patch
    with pytest.raises(Conflict):
        await kube.patch(
            "apps/v1",
            "Deployment",
            "podinfo",
            NS,
            {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}},
        )
    replaced = await kube.replace({**fresh, "spec": {**fresh["spec"], "replicas": 4}})
    assert replaced["spec"]["replicas"] == 4
    assert int(replaced["metadata"]["resourceVersion"]) > int(fresh["metadata"]["resourceVersion"])


async def test_the_status_subresource_separates_status_from_spec_and_generation() -> None:
    kube = FakeKube()
    kube.seed({**canary_manifest(), "status": {"phase": "Initialized"}})
    api, kind = "canary.gitops.dev/v1beta1", "Canary"

    main = await kube.patch(api, kind, "podinfo", NS, {"status": {"phase": "Failed"}})
    assert main["status"] == {"phase": "Initialized"}  # ignored on the main resource
    assert main["metadata"]["generation"] == 1

    status = await kube.patch(
        api,
        kind,
        "podinfo",
        NS,
        {"status": {"phase": "Progressing"}, "spec": {"suspend": True}},
        subresource="status",
    )
    assert status["status"] == {"phase": "Progressing"}
    assert "suspend" not in status["spec"]  # ignored on the status subresource
    assert status["metadata"]["generation"] == 1

    spec = await kube.patch(api, kind, "podinfo", NS, {"spec": {"suspend": True}})
    assert spec["metadata"]["generation"] == 2


async def test_deleting_an_object_with_finalizers_marks_it_until_they_are_gone() -> None:
    kube = FakeKube()
    manifest = canary_manifest()
    manifest["metadata"]["finalizers"] = ["example.com/hold"]
    await kube.create(manifest)
    api, kind = "canary.gitops.dev/v1beta1", "Canary"

    assert await kube.delete(api, kind, "podinfo", NS) is True
    marked = await kube.get(api, kind, "podinfo", NS)
    assert marked is not None and marked["metadata"]["deletionTimestamp"]

    await kube.patch(api, kind, "podinfo", NS, {"metadata": {"finalizers": []}})
    assert await kube.get(api, kind, "podinfo", NS) is None
    assert await kube.delete(api, kind, "podinfo", NS) is False


async def test_objects_handed_out_are_copies() -> None:
    kube = FakeKube()
    created = await kube.create(deployment())
    created["spec"]["replicas"] = 99
    read = await kube.get("apps/v1", "Deployment", "podinfo", NS)
    assert read is not None and read["spec"]["replicas"] == 2
    read["spec"]["replicas"] = 98
    assert kube.objects("Deployment")[0]["spec"]["replicas"] == 2


async def test_create_fills_identity_and_refuses_duplicates() -> None:
    kube = FakeKube()
    first = await kube.create(
        {**config_map("x"), "metadata": {"generateName": "x-", "namespace": NS}}
    )
    second = await kube.create(
        {**config_map("x"), "metadata": {"generateName": "x-", "namespace": NS}}
    )
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert first["metadata"]["name"].startswith("x-")
    assert first["metadata"]["uid"] != second["metadata"]["uid"]
    await kube.create(config_map("cm"))
    with pytest.raises(AlreadyExists):
        await kube.create(config_map("cm"))
    with pytest.raises(NotFound):
        await kube.patch("v1", "ConfigMap", "missing", NS, {"data": {}})


async def test_list_filters_by_namespace_label_and_field_selectors() -> None:
    kube = FakeKube()
    kube.seed(
        config_map("a", {"app": "web", "tier": "front"}),
        config_map("b", {"app": "web"}),
        config_map("c", {"app": "db"}),
        {**config_map("d", {"app": "web"}), "metadata": {"name": "d", "namespace": "other"}},
    )

    async def names(**selectors: str) -> list[str]:
        found = await kube.list("v1", "ConfigMap", NS, **selectors)
        return [obj["metadata"]["name"] for obj in found]

    assert await names(label_selector="app=web") == ["a", "b"]
    assert await names(label_selector="app=web,!tier") == ["b"]
    assert await names(label_selector="app in (web,db),tier!=front") == ["b", "c"]
    assert await names(label_selector="app notin (web)") == ["c"]
    assert await names(field_selector="metadata.name=c") == ["c"]
    assert len(await kube.list("v1", "ConfigMap")) == 4  # every namespace


async def test_json_patches_apply_in_order_and_a_failed_test_changes_nothing() -> None:
    kube = FakeKube()
    kube.seed(deployment())
    patched = await kube.patch(
        "apps/v1",
        "Deployment",
        "podinfo",
        NS,
        [
            {"op": "test", "path": "/spec/replicas", "value": 2},
            {"op": "replace", "path": "/spec/replicas", "value": 0},
            {"op": "add", "path": "/metadata/labels", "value": {"a/b": "1"}},
            {"op": "remove", "path": "/metadata/labels/a~1b"},
        ],
        patch_type="json",
    )
    assert patched["spec"]["replicas"] == 0 and patched["metadata"]["labels"] == {}
    with pytest.raises(Invalid):
        await kube.patch(
            "apps/v1",
            "Deployment",
            "podinfo",
            NS,
            [
                {"op": "replace", "path": "/spec/replicas", "value": 5},
                {"op": "test", "path": "/spec/replicas", "value": 2},
            ],
            patch_type="json",
        )
    assert kube.objects("Deployment")[0]["spec"]["replicas"] == 0


async def test_injected_failures_hit_only_matching_calls_and_are_recorded() -> None:
    kube = FakeKube()
    kube.seed(deployment())
    kube.fail("get", kind="Deployment", name="podinfo", times=2)
    kube.fail("patch", subresource="status", error=Forbidden("no", status=403))

    for _ in range(2):
        with pytest.raises(Unavailable):
            await kube.get("apps/v1", "Deployment", "podinfo", NS)
    assert await kube.get("apps/v1", "Deployment", "podinfo", NS) is not None
    assert await kube.get("apps/v1", "Deployment", "other", NS) is None
    await kube.patch("apps/v1", "Deployment", "podinfo", NS, {"spec": {"paused": True}})
    with pytest.raises(Forbidden):
        await kube.patch(
            "apps/v1", "Deployment", "podinfo", NS, {"status": {}}, subresource="status"
        )
    assert [c.verb for c in kube.calls] == ["get", "get", "get", "get", "patch", "patch"]
    assert kube.calls[0] == KubeCall("get", "apps/v1", "Deployment", NS, "podinfo")


async def test_a_write_racing_the_caller_makes_its_precondition_fail() -> None:
    kube = FakeKube()
    read = await kube.create(deployment())

    def someone_else(cluster: FakeKube) -> None:
        cluster.edit(
            "apps/v1", "Deployment", "podinfo", NS, lambda o: o["spec"].update(paused=True)
        )

    kube.before("replace", someone_else)
    with pytest.raises(Conflict):
        await kube.replace(read)
    current = kube.peek("apps/v1", "Deployment", "podinfo", NS)
    assert current is not None and current["spec"]["paused"] is True


async def test_a_fake_router_holds_weights_per_canary_and_refuses_a_bad_split() -> None:
    router = FakeRouter("istio")
    one = parse_canary(canary_manifest("one"))
    two = parse_canary(canary_manifest("two"))
    assert await router.get_routes(one) is None

    await router.reconcile(one)
    await router.set_routes(one, 90, 10, False)
    await router.reconcile(one)  # never resets weights
    await router.reconcile(two)

    assert (await router.get_routes(one), await router.get_routes(two)) == (
        router.routes["test/one"],
        router.routes["test/two"],
    )
    assert router.weights_set() == [(90, 10)]
    with pytest.raises(RouterError, match="add up to 100"):
        await router.set_routes(one, 90, 20, False)
    router.fail("get_routes", canary="test/two")
    assert await router.get_routes(one) is not None
    with pytest.raises(InjectedError):
        await router.get_routes(two)
