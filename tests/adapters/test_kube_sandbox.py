"""`KubeClient` against the sandbox API server over HTTP on loopback.

Each test talks to a real HTTP server with real API semantics (resourceVersion
preconditions, validation, patch types, server-side apply, discovery, watch) and
checks what the adapter promises: plain dicts in and out, discovery by kind, and
errors translated into the `canary.ports` tree.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from canary.adapters.kube import KubeClient, WatchEvent, connect
from canary.ports import AlreadyExists, Conflict, Invalid, NotFound, Unavailable
from tests.adapters.builders import deployment, pod_template
from tests.adapters.conftest import NAMESPACE, minimal_crd


def config_map(
    name: str, data: dict[str, str], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels or {}},
        "data": data,
    }


class TestReadWrite:
    async def test_create_get_replace_delete_round_trip(self, kube: KubeClient) -> None:
        created = await kube.create(config_map("settings", {"a": "1"}))
        assert created["metadata"]["resourceVersion"]
        fetched = await kube.get("v1", "ConfigMap", "settings", NAMESPACE)
        assert fetched is not None and fetched["data"] == {"a": "1"}

        fetched["data"]["a"] = "2"
        replaced = await kube.replace(fetched)
        assert replaced["data"] == {"a": "2"}
        assert replaced["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]

        assert await kube.delete("v1", "ConfigMap", "settings", NAMESPACE) is True
        assert await kube.get("v1", "ConfigMap", "settings", NAMESPACE) is None
        assert await kube.delete("v1", "ConfigMap", "settings", NAMESPACE) is False

    async def test_list_filters_by_label_and_fills_kind(self, kube: KubeClient) -> None:
        await kube.create(config_map("one", {}, {"tier": "web"}))
        await kube.create(config_map("two", {}, {"tier": "db"}))
        web_only = await kube.list("v1", "ConfigMap", NAMESPACE, label_selector="tier=web")
        assert [i["metadata"]["name"] for i in web_only] == ["one"]
        assert web_only[0]["kind"] == "ConfigMap" and web_only[0]["apiVersion"] == "v1"
        everything = await kube.list("v1", "ConfigMap", NAMESPACE, label_selector="tier")
        assert {i["metadata"]["name"] for i in everything} == {"one", "two"}

    async def test_cluster_scoped_kind(self, kube: KubeClient) -> None:
        namespace = await kube.get("v1", "Namespace", NAMESPACE)
        assert namespace is not None and namespace["metadata"]["name"] == NAMESPACE

    async def test_namespaced_kind_without_namespace_is_a_programming_error(
        self, kube: KubeClient
    ) -> None:
        with pytest.raises(ValueError, match="namespaced"):
            await kube.get("v1", "ConfigMap", "x")


class TestPatch:
    async def test_merge_json_and_strategic(self, kube: KubeClient) -> None:
        await kube.create(config_map("p", {"a": "1", "b": "2"}))
        merged = await kube.patch(
            "v1", "ConfigMap", "p", NAMESPACE, {"data": {"b": None, "c": "3"}}
        )
        assert merged["data"] == {"a": "1", "c": "3"}
        jsoned = await kube.patch(
            "v1",
            "ConfigMap",
            "p",
            NAMESPACE,
            [{"op": "replace", "path": "/data/a", "value": "9"}],
            patch_type="json",
        )
        assert jsoned["data"] == {"a": "9", "c": "3"}

        two_containers = pod_template(
            spec={
                "containers": [
                    {"name": "app", "image": "app:1"},
                    {"name": "sidecar", "image": "side:1"},
                ]
            },
            labels={"app": "web"},
        )
        await kube.create(deployment("web", selector={"app": "web"}, template=two_containers))
        patch = {
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}
        }
        strategic = await kube.patch(
            "apps/v1", "Deployment", "web", NAMESPACE, patch, patch_type="strategic"
        )
        images = {
            c["name"]: c["image"] for c in strategic["spec"]["template"]["spec"]["containers"]
        }
        assert images == {"app": "app:2", "sidecar": "side:1"}

    async def test_subresources(self, kube: KubeClient) -> None:
        await kube.create(deployment("web", replicas=1))
        scaled = await kube.patch(
            "apps/v1",
            "Deployment",
            "web",
            NAMESPACE,
            {"spec": {"replicas": 3}},
            subresource="scale",
        )
        assert scaled["kind"] == "Scale" and scaled["spec"]["replicas"] == 3
        status = await kube.patch(
            "apps/v1",
            "Deployment",
            "web",
            NAMESPACE,
            {"status": {"observedGeneration": 7}},
            subresource="status",
        )
        assert status["status"]["observedGeneration"] == 7
        current = await kube.get("apps/v1", "Deployment", "web", NAMESPACE)
        assert current is not None and current["spec"]["replicas"] == 3

    async def test_wrong_body_shape_is_refused_before_sending(self, kube: KubeClient) -> None:
        with pytest.raises(TypeError):
            await kube.patch("v1", "ConfigMap", "p", NAMESPACE, {"op": "add"}, patch_type="json")
        with pytest.raises(TypeError):
            await kube.patch("v1", "ConfigMap", "p", NAMESPACE, [{"op": "add"}], patch_type="merge")


class TestServerSideApply:
    async def test_apply_creates_updates_and_reports_conflicts(self, kube: KubeClient) -> None:
        first = await kube.apply(config_map("ssa", {"a": "1"}), field_manager="canary-engine")
        assert first["data"] == {"a": "1"}
        again = await kube.apply(config_map("ssa", {"a": "2"}), field_manager="canary-engine")
        assert again["data"] == {"a": "2"}
        with pytest.raises(Conflict):
            await kube.apply(config_map("ssa", {"a": "3"}), field_manager="someone-else")
        forced = await kube.apply(
            config_map("ssa", {"a": "3"}), field_manager="someone-else", force=True
        )
        assert forced["data"] == {"a": "3"}


class TestErrors:
    async def test_stale_resource_version_is_a_conflict(self, kube: KubeClient) -> None:
        created = await kube.create(config_map("c", {"a": "1"}))
        await kube.patch("v1", "ConfigMap", "c", NAMESPACE, {"data": {"a": "2"}})
        created["data"]["a"] = "3"
        with pytest.raises(Conflict) as caught:
            await kube.replace(created)
        assert caught.value.status == 409

    async def test_creating_twice_is_already_exists(self, kube: KubeClient) -> None:
        await kube.create(config_map("c", {}))
        with pytest.raises(AlreadyExists):
            await kube.create(config_map("c", {}))

    async def test_invalid_object_carries_field_causes(self, kube: KubeClient) -> None:
        broken = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d", "namespace": NAMESPACE},
            "spec": {},
        }
        with pytest.raises(Invalid) as caught:
            await kube.create(broken)
        assert caught.value.status == 422
        assert {c.get("field") for c in caught.value.causes} >= {"spec.selector", "spec.template"}

    async def test_patching_a_missing_object_is_not_found(self, kube: KubeClient) -> None:
        with pytest.raises(NotFound):
            await kube.patch("v1", "ConfigMap", "nope", NAMESPACE, {"data": {}})

    async def test_unknown_kind_and_group(self, kube: KubeClient) -> None:
        with pytest.raises(NotFound, match="Gizmo"):
            await kube.get("v1", "Gizmo", "x", NAMESPACE)
        with pytest.raises(NotFound, match=r"example\.com/v9"):
            await kube.get("example.com/v9", "Gizmo", "x", NAMESPACE)


class TestDiscovery:
    async def test_a_kind_installed_later_is_found(self, kube: KubeClient) -> None:
        with pytest.raises(NotFound):
            await kube.list("canary.gitops.dev/v1beta1", "Canary", NAMESPACE)
        await kube.create(minimal_crd("canary.gitops.dev", "Canary", "canaries"))
        info = await kube.resource("canary.gitops.dev/v1beta1", "Canary")
        assert (info.plural, info.namespaced) == ("canaries", True)
        assert "status" in info.subresources
        assert await kube.list("canary.gitops.dev/v1beta1", "Canary", NAMESPACE) == []


class TestWatch:
    async def test_changes_arrive_in_order_after_the_given_version(self, kube: KubeClient) -> None:
        created = await kube.create(config_map("w", {"a": "1"}))
        seen: list[WatchEvent] = []

        async def follow() -> None:
            version = created["metadata"]["resourceVersion"]
            async for event in kube.watch(
                "v1", "ConfigMap", NAMESPACE, resource_version=version, timeout_seconds=10
            ):
                if event.type != "BOOKMARK":
                    seen.append(event)
                if event.type == "DELETED":
                    return

        task = asyncio.create_task(follow())
        await kube.patch("v1", "ConfigMap", "w", NAMESPACE, {"data": {"a": "2"}})
        await kube.delete("v1", "ConfigMap", "w", NAMESPACE)
        await asyncio.wait_for(task, 10)
        assert [(e.type, e.object["metadata"]["name"]) for e in seen] == [
            ("MODIFIED", "w"),
            ("DELETED", "w"),
        ]
        assert seen[0].object["data"] == {"a": "2"}
        assert all(e.object["kind"] == "ConfigMap" for e in seen)

    async def test_resume_from_resource_version(self, kube: KubeClient) -> None:
        created = await kube.create(config_map("r", {"a": "1"}))
        await kube.patch("v1", "ConfigMap", "r", NAMESPACE, {"data": {"a": "2"}})
        events = kube.watch(
            "v1",
            "ConfigMap",
            NAMESPACE,
            resource_version=created["metadata"]["resourceVersion"],
            timeout_seconds=5,
        )
        first = await asyncio.wait_for(anext(events), 5)
        await events.aclose()
        assert first.type == "MODIFIED" and first.object["data"] == {"a": "2"}


# ----------------------------------------------------------------------------- transport


@pytest.fixture
async def stalling_server() -> Any:
    """An HTTP server whose resource answers never come (discovery does)."""
    release = asyncio.Event()

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "kind": "APIResourceList",
                "groupVersion": "v1",
                "resources": [{"name": "configmaps", "kind": "ConfigMap", "namespaced": True}],
            }
        )

    async def stall(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    async def overloaded(request: web.Request) -> web.Response:
        return web.json_response(
            {"kind": "Status", "code": 503, "reason": "ServiceUnavailable", "message": "busy"},
            status=503,
        )

    app = web.Application()
    app.router.add_get("/api/v1", discovery)
    app.router.add_get("/api/v1/namespaces/slow/configmaps/{name}", stall)
    app.router.add_get("/api/v1/namespaces/busy/configmaps/{name}", overloaded)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        release.set()
        await runner.cleanup()


def kubeconfig_for(url: str, path: Path) -> str:
    from kubesandbox.kubeconfig import write_kubeconfig

    return str(write_kubeconfig(path, url))


class TestTransport:
    async def test_every_call_has_a_timeout(self, stalling_server: str, tmp_path: Path) -> None:
        client = await connect(
            kubeconfig_for(stalling_server, tmp_path / "kc"), request_timeout=0.5
        )
        try:
            started = time.monotonic()
            with pytest.raises(Unavailable):
                await client.get("v1", "ConfigMap", "x", "slow")
            assert time.monotonic() - started < 5
        finally:
            await client.aclose()

    async def test_server_overload_is_unavailable(
        self, stalling_server: str, tmp_path: Path
    ) -> None:
        client = await connect(kubeconfig_for(stalling_server, tmp_path / "kc"))
        try:
            with pytest.raises(Unavailable) as caught:
                await client.get("v1", "ConfigMap", "x", "busy")
            assert caught.value.status == 503
        finally:
            await client.aclose()

    async def test_connection_refused_is_unavailable(self, tmp_path: Path) -> None:
        client = await connect(
            kubeconfig_for("http://127.0.0.1:9", tmp_path / "kc"), request_timeout=2
        )
        try:
            with pytest.raises(Unavailable):
                await client.get("v1", "ConfigMap", "x", "default")
        finally:
            await client.aclose()

    async def test_rate_limit_spaces_calls_beyond_the_burst(
        self, api_sandbox: Any, tmp_path: Path
    ) -> None:
        path = api_sandbox.write_kubeconfig(tmp_path / "kc")
        client = await connect(str(path), qps=20, burst=2)
        try:
            await client.resource("v1", "ConfigMap")  # spends one token on discovery
            started = time.monotonic()
            for _ in range(5):
                await client.get("v1", "Namespace", "default")
            # 6 calls with a burst of 2 at 20/s: at least 4 waits of 50 ms.
            assert time.monotonic() - started >= 0.19
        finally:
            await client.aclose()

    async def test_closed_client_refuses_calls(self, api_sandbox: Any, tmp_path: Path) -> None:
        client = await connect(str(api_sandbox.write_kubeconfig(tmp_path / "kc")))
        await client.aclose()
        with pytest.raises(Unavailable):
            await client.get("v1", "Namespace", "default")
