"""Watch streams: event order, resume from a resourceVersion, 410 Expired, bookmarks, selectors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from kubernetes.aio import client as k8s
from kubernetes.aio import watch as k8s_watch
from kubernetes.aio.client.exceptions import ApiException

from .conftest import GROUP, widget


def new_watch() -> Any:
    factory: Any = k8s_watch.Watch  # the client's watch module is untyped
    return factory()


def cm(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": {}}


async def collect(stream: Any, count: int, within: float = 5.0) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []

    async def run() -> None:
        async for event in stream:
            if event["type"] == "BOOKMARK":
                continue
            events.append((event["type"], event["raw_object"]["metadata"]["name"]))
            if len(events) >= count:
                return

    await asyncio.wait_for(run(), within)
    return events


async def raw_watch(url: str, path: str, **params: str) -> list[dict[str, Any]]:
    """Read a whole watch stream (the server ends it at timeoutSeconds)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{url}{path}",
            params={"watch": "true", **params},
            timeout=aiohttp.ClientTimeout(total=10),
        ) as rsp,
    ):
        assert rsp.status == 200
        assert rsp.headers["Content-Type"].startswith("application/json")
        return [json.loads(line) async for line in rsp.content if line.strip()]


class TestWatchStream:
    async def test_initial_state_then_live_changes_in_order(self, client: Any) -> None:
        core: Any = k8s.CoreV1Api(client)
        await core.create_namespaced_config_map("default", cm("before"))
        w: Any = new_watch()
        stream = w.stream(core.list_namespaced_config_map, "default", timeout_seconds=5)
        first = await collect(stream, 1)
        assert first == [("ADDED", "before")]
        await core.create_namespaced_config_map("default", cm("after"))
        await core.patch_namespaced_config_map("before", "default", {"data": {"k": "v"}})
        await core.delete_namespaced_config_map("after", "default")
        rest = await collect(stream, 3)
        await w.close()
        assert rest == [("ADDED", "after"), ("MODIFIED", "before"), ("DELETED", "after")]

    async def test_resume_from_a_resource_version_replays_only_later_events(
        self, client: Any
    ) -> None:
        custom: Any = k8s.CustomObjectsApi(client)
        await custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("a"))
        listing = await custom.list_namespaced_custom_object(GROUP, "v1", "default", "widgets")
        since = listing["metadata"]["resourceVersion"]
        await custom.create_namespaced_custom_object(GROUP, "v1", "default", "widgets", widget("b"))
        await custom.patch_namespaced_custom_object(
            GROUP, "v1", "default", "widgets", "a", {"spec": {"size": 2}}
        )
        w: Any = new_watch()
        stream = w.stream(
            custom.list_namespaced_custom_object,
            GROUP,
            "v1",
            "default",
            "widgets",
            resource_version=since,
            timeout_seconds=5,
        )
        events = await collect(stream, 2)
        await w.close()
        assert events == [("ADDED", "b"), ("MODIFIED", "a")]

    async def test_deleted_event_carries_a_new_resource_version(self, api: Any) -> None:
        api.store.create("configmaps", "default", cm("gone"), manager="t")
        rv_before = api.store.resource_version
        api.store.delete("configmaps", "default", "gone")
        events = await raw_watch(
            api.url,
            "/api/v1/namespaces/default/configmaps",
            resourceVersion=str(rv_before),
            timeoutSeconds="0.3",
        )
        assert [e["type"] for e in events] == ["DELETED"]
        assert int(events[0]["object"]["metadata"]["resourceVersion"]) > rv_before

    async def test_timeout_seconds_ends_the_stream(self, api: Any) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        events = await raw_watch(
            api.url, "/api/v1/namespaces/default/configmaps", timeoutSeconds="0.3"
        )
        assert events == []
        assert 0.25 <= loop.time() - started < 5

    async def test_watch_on_a_single_object_path(self, api: Any) -> None:
        api.store.create("configmaps", "default", cm("one"), manager="t")
        api.store.create("configmaps", "default", cm("two"), manager="t")
        events = await raw_watch(
            api.url, "/api/v1/watch/namespaces/default/configmaps/one", timeoutSeconds="0.3"
        )
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "one")]


class TestExpiry:
    async def test_a_resource_version_older_than_the_history_gets_410(
        self, sandbox_factory: Callable[..., Awaitable[Any]]
    ) -> None:
        sb = await sandbox_factory(simulate_workloads=False, history_size=5)
        old = sb.store.resource_version
        for i in range(10):
            sb.store.create("configmaps", "default", cm(f"c{i}"), manager="t")
        events = await raw_watch(
            sb.url, "/api/v1/namespaces/default/configmaps", resourceVersion=str(old)
        )
        assert len(events) == 1 and events[0]["type"] == "ERROR"
        status = events[0]["object"]
        assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")

    async def test_the_client_raises_410_for_an_expired_version(
        self, sandbox_factory: Callable[..., Awaitable[Any]]
    ) -> None:
        sb = await sandbox_factory(simulate_workloads=False, history_size=3)
        old = sb.store.resource_version
        for i in range(6):
            sb.store.create("configmaps", "default", cm(f"c{i}"), manager="t")
        configuration = k8s.Configuration(host=sb.url)
        async with k8s.ApiClient(configuration) as api_client:
            core: Any = k8s.CoreV1Api(api_client)
            w: Any = new_watch()
            with pytest.raises(ApiException) as err:
                async for _ in w.stream(
                    core.list_namespaced_config_map,
                    "default",
                    resource_version=str(old),
                    timeout_seconds=2,
                ):
                    pass
            await w.close()
        assert err.value.status == 410

    async def test_a_recent_version_inside_the_window_still_replays(
        self, sandbox_factory: Callable[..., Awaitable[Any]]
    ) -> None:
        sb = await sandbox_factory(simulate_workloads=False, history_size=5)
        for i in range(10):
            sb.store.create("configmaps", "default", cm(f"c{i}"), manager="t")
        recent = sb.store.resource_version - 2
        events = await raw_watch(
            sb.url,
            "/api/v1/namespaces/default/configmaps",
            resourceVersion=str(recent),
            timeoutSeconds="0.3",
        )
        assert [e["object"]["metadata"]["name"] for e in events] == ["c8", "c9"]


class TestBookmarks:
    async def test_bookmarks_are_sent_only_when_allowed(
        self, sandbox_factory: Callable[..., Awaitable[Any]]
    ) -> None:
        sb = await sandbox_factory(simulate_workloads=False, bookmark_interval=0.1)
        rv = str(sb.store.resource_version)
        with_bookmarks = await raw_watch(
            sb.url,
            "/api/v1/namespaces/default/configmaps",
            resourceVersion=rv,
            allowWatchBookmarks="true",
            timeoutSeconds="0.3",
        )
        without = await raw_watch(
            sb.url,
            "/api/v1/namespaces/default/configmaps",
            resourceVersion=rv,
            timeoutSeconds="0.3",
        )
        assert len(with_bookmarks) >= 1
        assert {e["type"] for e in with_bookmarks} == {"BOOKMARK"}
        bookmark = with_bookmarks[0]["object"]
        assert (bookmark["kind"], bookmark["apiVersion"]) == ("ConfigMap", "v1")
        assert bookmark["metadata"]["resourceVersion"] == rv
        assert without == []

    async def test_send_initial_events_ends_with_an_annotated_bookmark(self, api: Any) -> None:
        api.store.create("configmaps", "default", cm("x"), manager="t")
        events = await raw_watch(
            api.url,
            "/api/v1/namespaces/default/configmaps",
            sendInitialEvents="true",
            resourceVersionMatch="NotOlderThan",
            allowWatchBookmarks="true",
            timeoutSeconds="0.3",
        )
        assert events[0]["type"] == "ADDED"
        assert events[1]["type"] == "BOOKMARK"
        assert events[1]["object"]["metadata"]["annotations"] == {
            "k8s.io/initial-events-end": "true"
        }


class TestFilteredWatch:
    async def test_label_changes_turn_into_added_and_deleted(self, api: Any) -> None:
        store = api.store
        store.create("configmaps", "default", cm("x", {"team": "a"}), manager="t")
        rv = str(store.resource_version)
        store.update_with(
            "configmaps", "default", "x", lambda o: o["metadata"]["labels"].__setitem__("team", "b")
        )
        store.update_with(
            "configmaps", "default", "x", lambda o: o["metadata"]["labels"].__setitem__("team", "a")
        )
        store.update_with("configmaps", "default", "x", lambda o: o.__setitem__("data", {"k": "v"}))
        events = await raw_watch(
            api.url,
            "/api/v1/namespaces/default/configmaps",
            resourceVersion=rv,
            labelSelector="team=a",
            timeoutSeconds="0.3",
        )
        assert [e["type"] for e in events] == ["DELETED", "ADDED", "MODIFIED"]

    async def test_namespace_scoped_and_cluster_wide_watches(self, api: Any) -> None:
        rv = str(api.store.resource_version)
        api.store.create("configmaps", "default", cm("here"), manager="t")
        api.store.create("configmaps", "kube-system", cm("there"), manager="t")
        scoped = await raw_watch(
            api.url,
            "/api/v1/namespaces/default/configmaps",
            resourceVersion=rv,
            timeoutSeconds="0.3",
        )
        everywhere = await raw_watch(
            api.url, "/api/v1/configmaps", resourceVersion=rv, timeoutSeconds="0.3"
        )
        assert [e["object"]["metadata"]["name"] for e in scoped] == ["here"]
        assert [e["object"]["metadata"]["name"] for e in everywhere] == ["here", "there"]

    async def test_field_selector_on_watch(self, api: Any) -> None:
        rv = str(api.store.resource_version)
        for name in ("a", "b"):
            api.store.create("configmaps", "default", cm(name), manager="t")
        events = await raw_watch(
            api.url,
            "/api/v1/namespaces/default/configmaps",
            resourceVersion=rv,
            fieldSelector="metadata.name=b",
            timeoutSeconds="0.3",
        )
        assert [e["object"]["metadata"]["name"] for e in events] == ["b"]

    async def test_deleting_a_crd_ends_watches_on_its_resources(self, api: Any) -> None:
        async def watch_widgets() -> list[dict[str, Any]]:
            return await raw_watch(
                api.url, f"/apis/{GROUP}/v1/namespaces/default/widgets", timeoutSeconds="30"
            )

        task = asyncio.create_task(watch_widgets())
        await asyncio.sleep(0)
        deadline = asyncio.get_running_loop().time() + 5
        while not api.store._subs.get((GROUP, "widgets")):
            assert asyncio.get_running_loop().time() < deadline, "the watch never subscribed"
            await asyncio.sleep(0.01)
        api.store.delete("customresourcedefinitions", None, f"widgets.{GROUP}")
        events = await asyncio.wait_for(task, 5)
        assert events == []
