"""Deletion semantics: finalizers, garbage collection, namespace and CRD termination, discovery changes."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from kubesandbox.apiserver import ApiError

from .conftest import GROUP, WIDGET_CRD, widget


def cm(
    name: str,
    namespace: str = "default",
    owners: list[dict[str, Any]] | None = None,
    finalizers: list[str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if owners:
        meta["ownerReferences"] = owners
    if finalizers:
        meta["finalizers"] = finalizers
    return {"metadata": meta, "data": {}}


def ref(owner: dict[str, Any], block: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": block,
    }


class TestFinalizers:
    def test_delete_with_finalizers_marks_the_object_and_keeps_it(self, api: Any) -> None:
        store = api.store
        store.create(
            "widgets",
            "default",
            {**widget("w"), "metadata": {"name": "w", "finalizers": ["a/x", "b/y"]}},
            manager="t",
        )
        result = store.delete("widgets", "default", "w")
        assert not result.removed
        kept = store.get("widgets", "w", "default")
        assert kept["metadata"]["deletionTimestamp"]
        assert kept["metadata"]["finalizers"] == ["a/x", "b/y"]

    def test_the_object_goes_when_the_last_finalizer_goes(self, api: Any) -> None:
        store = api.store
        store.create("configmaps", "default", cm("c", finalizers=["a/x", "b/y"]), manager="t")
        store.delete("configmaps", "default", "c")
        store.update_with(
            "configmaps", "default", "c", lambda o: o["metadata"].__setitem__("finalizers", ["b/y"])
        )
        assert store.get("configmaps", "c", "default") is not None
        store.update_with(
            "configmaps", "default", "c", lambda o: o["metadata"].__setitem__("finalizers", [])
        )
        assert store.get("configmaps", "c", "default") is None

    def test_no_new_finalizers_once_deleting(self, api: Any) -> None:
        store = api.store
        store.create("configmaps", "default", cm("c", finalizers=["a/x"]), manager="t")
        store.delete("configmaps", "default", "c")
        with pytest.raises(ApiError) as err:
            store.update_with(
                "configmaps",
                "default",
                "c",
                lambda o: o["metadata"]["finalizers"].append("late/one"),
            )
        assert err.value.code == 422
        assert err.value.causes[0].field == "metadata.finalizers"

    async def test_a_pending_deletion_answers_with_the_object(self, api: Any) -> None:
        api.store.create(
            "widgets",
            "default",
            {**widget("w"), "metadata": {"name": "w", "finalizers": ["a/x"]}},
            manager="t",
        )
        async with (
            aiohttp.ClientSession() as session,
            session.delete(f"{api.url}/apis/{GROUP}/v1/namespaces/default/widgets/w") as rsp,
        ):
            body = json.loads(await rsp.text())
        assert rsp.status == 200
        assert body["kind"] == "Widget" and body["metadata"]["deletionTimestamp"]


class TestGarbageCollection:
    def test_background_deletion_removes_dependents_recursively(self, api: Any) -> None:
        store = api.store
        owner = store.create("configmaps", "default", cm("owner"), manager="t").obj
        child = store.create(
            "configmaps", "default", cm("child", owners=[ref(owner)]), manager="t"
        ).obj
        store.create("configmaps", "default", cm("grandchild", owners=[ref(child)]), manager="t")
        store.create("configmaps", "default", cm("unrelated"), manager="t")
        store.delete("configmaps", "default", "owner")
        assert [o["metadata"]["name"] for o in store.list("configmaps", "default")] == ["unrelated"]

    def test_a_dependent_with_another_live_owner_only_loses_the_reference(self, api: Any) -> None:
        store = api.store
        a = store.create("configmaps", "default", cm("a"), manager="t").obj
        b = store.create("configmaps", "default", cm("b"), manager="t").obj
        store.create("configmaps", "default", cm("shared", owners=[ref(a), ref(b)]), manager="t")
        store.delete("configmaps", "default", "a")
        shared = store.get("configmaps", "shared", "default")
        assert [r["name"] for r in shared["metadata"]["ownerReferences"]] == ["b"]

    def test_orphan_keeps_dependents_without_the_reference(self, api: Any) -> None:
        store = api.store
        owner = store.create("configmaps", "default", cm("owner"), manager="t").obj
        store.create("configmaps", "default", cm("child", owners=[ref(owner)]), manager="t")
        store.delete("configmaps", "default", "owner", propagation="Orphan")
        child = store.get("configmaps", "child", "default")
        assert child is not None and "ownerReferences" not in child["metadata"]

    def test_foreground_waits_for_blocking_dependents(self, api: Any) -> None:
        store = api.store
        owner = store.create("configmaps", "default", cm("owner"), manager="t").obj
        store.create(
            "configmaps",
            "default",
            cm("child", owners=[ref(owner)], finalizers=["hold/on"]),
            manager="t",
        )
        result = store.delete("configmaps", "default", "owner", propagation="Foreground")
        assert not result.removed
        pending = store.get("configmaps", "owner", "default")
        assert "foregroundDeletion" in pending["metadata"]["finalizers"]
        assert store.get("configmaps", "child", "default")["metadata"]["deletionTimestamp"]
        store.update_with(
            "configmaps", "default", "child", lambda o: o["metadata"].__setitem__("finalizers", [])
        )
        assert store.get("configmaps", "child", "default") is None
        assert store.get("configmaps", "owner", "default") is None

    async def test_propagation_policy_from_delete_options_body(self, api: Any) -> None:
        owner = api.store.create("configmaps", "default", cm("owner"), manager="t").obj
        api.store.create("configmaps", "default", cm("child", owners=[ref(owner)]), manager="t")
        async with (
            aiohttp.ClientSession() as session,
            session.delete(
                f"{api.url}/api/v1/namespaces/default/configmaps/owner",
                data=json.dumps(
                    {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"}
                ),
            ) as rsp,
        ):
            assert rsp.status == 200
        assert api.store.get("configmaps", "child", "default") is not None


class TestNamespaces:
    def test_deleting_a_namespace_deletes_its_content_then_itself(self, api: Any) -> None:
        store = api.store
        store.create("namespaces", None, {"metadata": {"name": "team"}}, manager="t")
        store.create(
            "configmaps", "team", cm("c", namespace="team", finalizers=["hold/on"]), manager="t"
        )
        store.create("widgets", "team", widget("w", namespace="team"), manager="t")
        store.delete("namespaces", None, "team")
        ns = store.get("namespaces", "team")
        assert ns["status"]["phase"] == "Terminating"
        assert store.get("widgets", "w", "team") is None
        with pytest.raises(ApiError) as err:
            store.create("configmaps", "team", cm("late", namespace="team"), manager="t")
        assert err.value.code == 403
        store.update_with(
            "configmaps", "team", "c", lambda o: o["metadata"].__setitem__("finalizers", [])
        )
        assert store.get("namespaces", "team") is None

    def test_default_namespaces_exist_at_start(self, api: Any) -> None:
        names = {n["metadata"]["name"] for n in api.store.list("namespaces")}
        assert {"default", "kube-system"} <= names


class TestCrdLifecycle:
    async def discovery(self, url: str, path: str) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session, session.get(f"{url}{path}") as rsp:
            return rsp.status, json.loads(await rsp.text())

    async def test_established_condition_and_discovery(self, api: Any) -> None:
        crd = api.store.get("customresourcedefinitions", f"widgets.{GROUP}")
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions["Established"] == "True" and conditions["NamesAccepted"] == "True"
        assert crd["status"]["acceptedNames"]["kind"] == "Widget"
        code, listing = await self.discovery(api.url, f"/apis/{GROUP}/v1")
        assert code == 200
        names = {r["name"]: r for r in listing["resources"]}
        assert set(names) == {"widgets", "widgets/status", "widgets/scale"}
        assert names["widgets"]["shortNames"] == ["wd"] and names["widgets"]["namespaced"] is True
        code, groups = await self.discovery(api.url, "/apis")
        assert GROUP in {g["name"] for g in groups["groups"]}

    async def test_deleting_a_crd_deletes_its_objects_and_stops_serving(self, api: Any) -> None:
        store = api.store
        store.create(
            "widgets",
            "default",
            {**widget("w"), "metadata": {"name": "w", "finalizers": ["hold/on"]}},
            manager="t",
        )
        store.delete("customresourcedefinitions", None, f"widgets.{GROUP}")
        crd = store.get("customresourcedefinitions", f"widgets.{GROUP}")
        assert crd is not None and crd["metadata"]["deletionTimestamp"]
        with pytest.raises(ApiError) as err:
            store.create("widgets", "default", widget("new"), manager="t")
        assert err.value.code == 405
        store.update_with(
            "widgets", "default", "w", lambda o: o["metadata"].__setitem__("finalizers", [])
        )
        assert store.get("customresourcedefinitions", f"widgets.{GROUP}") is None
        code, _ = await self.discovery(api.url, f"/apis/{GROUP}/v1")
        assert code == 404
        code, groups = await self.discovery(api.url, "/apis")
        assert GROUP not in {g["name"] for g in groups["groups"]}
        await api.apply_manifest(WIDGET_CRD)
        assert store.list("widgets", "default") == []
