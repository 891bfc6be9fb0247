"""The patch formats as pure functions, and strategic merge through the server."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubesandbox.apiserver.patching import (
    PatchError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)

from .conftest import GROUP, deployment, widget

json_scalars = st.one_of(st.booleans(), st.integers(-5, 5), st.text(max_size=3))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


class TestMergePatch:
    def test_null_deletes_and_lists_are_replaced(self) -> None:
        doc = {"a": {"b": 1, "c": 2}, "l": [1, 2], "keep": True}
        assert merge_patch(doc, {"a": {"b": None, "d": 3}, "l": [3]}) == {
            "a": {"c": 2, "d": 3},
            "l": [3],
            "keep": True,
        }
        assert doc == {"a": {"b": 1, "c": 2}, "l": [1, 2], "keep": True}  # input untouched

    @given(json_objects)
    def test_patching_with_the_document_itself_changes_nothing(self, doc: dict[str, Any]) -> None:
        assert merge_patch(doc, doc) == doc

    @given(json_objects, json_objects)
    def test_every_patched_key_has_the_patch_value(
        self, doc: dict[str, Any], patch: dict[str, Any]
    ) -> None:
        result = merge_patch(doc, patch)
        for key, value in patch.items():
            if not isinstance(value, dict):
                assert result[key] == value


class TestJsonPatch:
    def test_all_operations(self) -> None:
        doc = {"a": [1, 2], "b": {"c": 1}, "m": "x"}
        ops = [
            {"op": "add", "path": "/a/1", "value": 9},
            {"op": "add", "path": "/a/-", "value": 7},
            {"op": "remove", "path": "/b/c"},
            {"op": "replace", "path": "/m", "value": "y"},
            {"op": "copy", "from": "/m", "path": "/n"},
            {"op": "move", "from": "/n", "path": "/b/moved"},
            {"op": "test", "path": "/a", "value": [1, 9, 2, 7]},
            {"op": "add", "path": "/with~1slash", "value": 1},
        ]
        assert json_patch(doc, ops) == {
            "a": [1, 9, 2, 7],
            "b": {"moved": "y"},
            "m": "y",
            "with/slash": 1,
        }

    @pytest.mark.parametrize(
        "op",
        [
            {"op": "test", "path": "/v", "value": "2"},
            {"op": "test", "path": "/t", "value": 1},
            {"op": "remove", "path": "/missing"},
            {"op": "replace", "path": "/missing", "value": 1},
            {"op": "add", "path": "/l/5", "value": 1},
            {"op": "bogus", "path": "/v"},
        ],
    )
    def test_failures_raise_patch_error(self, op: dict[str, Any]) -> None:
        with pytest.raises(PatchError):
            json_patch({"v": "1", "t": True, "l": []}, [op])

    @given(json_objects, st.text(min_size=1, max_size=3), json_values)
    def test_add_then_remove_restores_the_document(
        self, doc: dict[str, Any], key: str, value: Any
    ) -> None:
        if key in doc:
            return
        pointer = "/" + key.replace("~", "~0").replace("/", "~1")
        added = json_patch(doc, [{"op": "add", "path": pointer, "value": value}])
        assert json_patch(added, [{"op": "remove", "path": pointer}]) == doc


class TestStrategicMerge:
    def test_containers_merge_by_name_and_env_by_name(self) -> None:
        original = deployment("web")
        original["spec"]["template"]["spec"]["containers"].append(
            {"name": "sidecar", "image": "envoy"}
        )
        original["spec"]["template"]["spec"]["containers"][0]["env"] = [
            {"name": "A", "value": "1"},
            {"name": "B", "value": "2"},
        ]
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "nginx:2",
                                "env": [{"name": "B", "value": "3"}],
                            }
                        ]
                    }
                }
            }
        }
        result = strategic_merge_patch(original, patch, "Deployment")
        containers = result["spec"]["template"]["spec"]["containers"]
        assert [(c["name"], c["image"]) for c in containers] == [
            ("app", "nginx:2"),
            ("sidecar", "envoy"),
        ]
        assert containers[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]

    def test_ports_merge_by_container_port_in_pods_and_port_in_services(self) -> None:
        pod = {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}]}]}}
        merged = strategic_merge_patch(
            pod, {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 81}]}]}}, "Pod"
        )
        assert merged["spec"]["containers"][0]["ports"] == [
            {"containerPort": 80},
            {"containerPort": 81},
        ]
        svc = {"spec": {"ports": [{"port": 80, "name": "http"}]}}
        merged = strategic_merge_patch(
            svc, {"spec": {"ports": [{"port": 80, "name": "web"}]}}, "Service"
        )
        assert merged["spec"]["ports"] == [{"port": 80, "name": "web"}]

    def test_directives_delete_replace_order_and_primitive_lists(self) -> None:
        original = {
            "metadata": {
                "finalizers": ["a", "b"],
                "ownerReferences": [{"uid": "1", "name": "x"}, {"uid": "2", "name": "y"}],
            },
            "spec": {
                "volumes": [{"name": "v1", "emptyDir": {}}, {"name": "v2", "emptyDir": {}}],
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            },
        }
        patch = {
            "metadata": {
                "finalizers": ["c"],
                "$deleteFromPrimitiveList/finalizers": ["a"],
                "ownerReferences": [{"uid": "1", "$patch": "delete"}],
            },
            "spec": {
                "$setElementOrder/volumes": [{"name": "v2"}, {"name": "v1"}],
                "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
            },
        }
        result = strategic_merge_patch(original, patch, "Deployment")
        assert result["metadata"]["finalizers"] == ["b", "c"]
        assert result["metadata"]["ownerReferences"] == [{"uid": "2", "name": "y"}]
        assert [v["name"] for v in result["spec"]["volumes"]] == ["v2", "v1"]
        assert result["spec"]["strategy"] == {"type": "Recreate"}
        replaced = strategic_merge_patch(
            original, {"spec": {"volumes": [{"$patch": "replace"}, {"name": "only"}]}}, "Deployment"
        )
        assert replaced["spec"]["volumes"] == [{"name": "only"}]

    def test_lists_without_merge_keys_are_replaced(self) -> None:
        original = {
            "spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["x", "y"]}]}}}
        }
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["z"]}]}}}}
        result = strategic_merge_patch(original, patch, "Deployment")
        assert result["spec"]["template"]["spec"]["containers"][0]["args"] == ["z"]


async def send_patch(
    url: str, path: str, content_type: str, body: Any
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.patch(
            f"{url}{path}", data=json.dumps(body), headers={"Content-Type": content_type}
        ) as rsp,
    ):
        return rsp.status, json.loads(await rsp.text())


class TestPatchesOverHttp:
    async def test_strategic_merge_on_a_deployment(self, api: Any) -> None:
        api.store.create("deployments", "default", deployment("web"), manager="t")
        code, body = await send_patch(
            api.url,
            "/apis/apps/v1/namespaces/default/deployments/web",
            "application/strategic-merge-patch+json",
            {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "envoy"}]}}}},
        )
        assert code == 200
        assert [c["name"] for c in body["spec"]["template"]["spec"]["containers"]] == [
            "app",
            "side",
        ]

    async def test_strategic_merge_on_a_custom_resource_is_415(self, api: Any) -> None:
        api.store.create("widgets", "default", widget("w"), manager="t")
        code, body = await send_patch(
            api.url,
            f"/apis/{GROUP}/v1/namespaces/default/widgets/w",
            "application/strategic-merge-patch+json",
            {"spec": {"size": 2}},
        )
        assert (code, body["reason"]) == (415, "UnsupportedMediaType")

    async def test_failed_json_patch_test_is_422_and_changes_nothing(self, api: Any) -> None:
        created = api.store.create("widgets", "default", widget("w"), manager="t").obj
        ops: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
            {"op": "add", "path": "/metadata/finalizers", "value": ["x"]},
        ]
        code, _ = await send_patch(
            api.url,
            f"/apis/{GROUP}/v1/namespaces/default/widgets/w",
            "application/json-patch+json",
            ops,
        )
        assert code == 422
        assert (
            api.store.fetch("widgets", "w", "default")["metadata"]["resourceVersion"]
            == created["metadata"]["resourceVersion"]
        )
        ops[0]["value"] = created["metadata"]["resourceVersion"]
        code, body = await send_patch(
            api.url,
            f"/apis/{GROUP}/v1/namespaces/default/widgets/w",
            "application/json-patch+json",
            ops,
        )
        assert (code, body["metadata"]["finalizers"]) == (200, ["x"])

    async def test_unknown_patch_type_is_415(self, api: Any) -> None:
        api.store.create("widgets", "default", widget("w"), manager="t")
        code, _ = await send_patch(
            api.url, f"/apis/{GROUP}/v1/namespaces/default/widgets/w", "text/plain", {}
        )
        assert code == 415
