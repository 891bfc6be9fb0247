"""The watch caches against the sandbox API server: sync, events, 410 and relist, reads from
memory, reads of one's own writes, kinds that are not served."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from canary.adapters.cache import CachedKube, Informer, label_selector_matches
from canary.adapters.kube import KubeClient, connect
from canary.ports import NotFound
from tests.adapters.conftest import NAMESPACE, eventually


def configmap(name: str, value: str = "1", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels or {}},
        "data": {"v": value},
    }


@pytest.fixture
async def short_history() -> AsyncIterator[Any]:
    """A sandbox that keeps only a few events per kind, so old watch versions expire."""
    from kubesandbox import Sandbox

    sandbox = await Sandbox.start(simulate_workloads=False, history_size=4)
    try:
        yield sandbox
    finally:
        await sandbox.stop()


@pytest.fixture
async def client(short_history: Any, tmp_path: Path) -> AsyncIterator[KubeClient]:
    path = short_history.write_kubeconfig(tmp_path / "kubeconfig")
    kube = await connect(str(path), request_timeout=10.0)
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    try:
        yield kube
    finally:
        await kube.aclose()


@pytest.mark.parametrize("page_size", [500, 3], ids=["one page", "pages of three"])
async def test_a_watch_that_expired_lists_again_and_reports_every_difference(
    client: KubeClient, page_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("canary.adapters.kube.LIST_PAGE_SIZE", page_size)
    for name in ("keep", "change", "drop"):
        await client.create(configmap(name))
    events: list[tuple[str, str]] = []
    informer = Informer(
        client,
        "v1",
        "ConfigMap",
        namespace=NAMESPACE,
        listeners=[lambda kind, obj: events.append((kind, obj["metadata"]["name"]))],
    )
    informer.start()
    await asyncio.wait_for(informer.synced.wait(), 10)
    assert sorted(n for _, n in informer.store) == ["change", "drop", "keep"]
    await informer.stop()
    events.clear()

    # While the informer is away, more changes than the server keeps in its history.
    await client.patch("v1", "ConfigMap", "change", NAMESPACE, {"data": {"v": "2"}})
    await client.delete("v1", "ConfigMap", "drop", NAMESPACE)
    for i in range(6):
        await client.create(configmap(f"new-{i}"))
    informer.start()  # resumes from its old resourceVersion: the server answers 410

    async def caught_up() -> list[str]:
        return sorted(n for _, n in informer.store)

    names = await eventually(caught_up, lambda names: len(names) == 8, within=10)
    assert names == ["change", "keep", *(f"new-{i}" for i in range(6))]
    assert informer.store[(NAMESPACE, "change")]["data"] == {"v": "2"}
    assert informer.stats.relists == 2  # the first listing, and the one after the 410
    assert ("DELETED", "drop") in events
    assert ("MODIFIED", "change") in events
    assert "keep" not in {n for _, n in events}  # unchanged: no event
    await informer.stop()


async def test_reads_come_from_memory_and_see_their_own_writes(client: KubeClient) -> None:
    await client.create(configmap("settings", "a", {"team": "web"}))
    cache = CachedKube(client)
    try:
        first = await cache.get("v1", "ConfigMap", "settings", NAMESPACE)  # starts the cache
        assert first is not None
        assert await cache.wait_synced(10)
        api_before = cache.stats.api_reads

        for _ in range(5):
            again = await cache.get("v1", "ConfigMap", "settings", NAMESPACE)
            assert again is not None and again["data"] == {"v": "a"}
        listed = await cache.list("v1", "ConfigMap", NAMESPACE, label_selector="team=web")
        assert [o["metadata"]["name"] for o in listed] == ["settings"]
        assert cache.stats.api_reads == api_before

        await cache.patch("v1", "ConfigMap", "settings", NAMESPACE, {"data": {"v": "b"}})
        mine = await cache.get("v1", "ConfigMap", "settings", NAMESPACE)
        assert mine is not None and mine["data"] == {"v": "b"}  # without waiting for the watch

        # A copy: changing what a read returned does not change the cache.
        mine["data"]["v"] = "mutated"
        fresh = await cache.get("v1", "ConfigMap", "settings", NAMESPACE)
        assert fresh is not None and fresh["data"] == {"v": "b"}

        # `read` lends the cached object itself: no copy, no API call, the same object
        # until a watch event or a write replaces it.
        lent = await cache.read("v1", "ConfigMap", "settings", NAMESPACE)
        assert lent is await cache.read("v1", "ConfigMap", "settings", NAMESPACE)
        assert lent is not None and lent["data"] == {"v": "b"}
        # `read_list` lends the namespace's cached objects the same way.
        (lent_listed,) = await cache.read_list(
            "v1", "ConfigMap", NAMESPACE, label_selector="team=web"
        )
        assert lent_listed is lent
        assert await cache.read_list("v1", "ConfigMap", NAMESPACE, label_selector="team=ops") == []

        # A change made by someone else arrives through the watch.
        await client.patch("v1", "ConfigMap", "settings", NAMESPACE, {"data": {"v": "c"}})

        async def seen() -> Any:
            return await cache.get("v1", "ConfigMap", "settings", NAMESPACE)

        await eventually(seen, lambda obj: obj is not None and obj["data"] == {"v": "c"})
        assert cache.stats.api_reads == api_before
        assert lent["data"] == {"v": "b"}  # the lent version was replaced, never changed
    finally:
        await cache.aclose()


async def test_the_cache_keeps_no_managed_fields_and_lists_one_namespace_in_name_order(
    client: KubeClient,
) -> None:
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    for name in ("b", "a", "c"):
        await client.create(configmap(name))
    await client.create({**configmap("elsewhere"), "metadata": {"name": "z", "namespace": "other"}})
    from_api = await client.get("v1", "ConfigMap", "a", NAMESPACE)
    assert from_api is not None and from_api["metadata"].get("managedFields")  # the server has them
    cache = CachedKube(client)
    try:
        await cache.list("v1", "ConfigMap", NAMESPACE)
        assert await cache.wait_synced(10)
        listed = await cache.list("v1", "ConfigMap", NAMESPACE)
        assert [o["metadata"]["name"] for o in listed] == ["a", "b", "c"]
        assert all("managedFields" not in o["metadata"] for o in listed)
        assert all(o["metadata"]["resourceVersion"] for o in listed)
        everywhere = await cache.list("v1", "ConfigMap", "other")
        assert [o["metadata"]["name"] for o in everywhere] == ["z"]
    finally:
        await cache.aclose()


async def test_a_follower_starts_no_cache_and_hears_the_caches_reads_start(
    client: KubeClient,
) -> None:
    """``listen(..., start=False)``: what the operator uses for the Canaries' targets."""
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    await client.create(configmap("settings"))
    early: list[tuple[str, str, str]] = []
    late: list[tuple[str, str, str]] = []

    def heard(into: list[tuple[str, str, str]]) -> Any:
        return lambda kind, obj: into.append(
            (kind, obj["metadata"]["namespace"], obj["metadata"]["name"])
        )

    cache = CachedKube(client, namespaces=(NAMESPACE, "other"))
    try:
        cache.listen("v1", "ConfigMap", heard(early), start=False)
        assert cache.informers == {}  # following a kind caches nothing
        assert cache.peek("v1", "ConfigMap", "settings", NAMESPACE) is None  # nor asks the API
        assert cache.stats.api_reads == 0

        await cache.get("v1", "ConfigMap", "settings", NAMESPACE)  # a pass reads it
        assert await cache.wait_synced(10)
        assert list(cache.informers) == [("", "ConfigMap", NAMESPACE)]  # only where it was read
        assert ("MODIFIED", NAMESPACE, "settings") in early  # the first listing
        cache.listen("v1", "ConfigMap", heard(late), start=False)  # a running cache is followed too
        peeked = cache.peek("v1", "ConfigMap", "settings", NAMESPACE)
        assert peeked is not None and peeked["data"] == {"v": "1"}

        await client.patch("v1", "ConfigMap", "settings", NAMESPACE, {"data": {"v": "2"}})
        await client.create(
            {**configmap("unread"), "metadata": {"name": "x", "namespace": "other"}}
        )

        async def both() -> tuple[int, int]:
            return early.count(("MODIFIED", NAMESPACE, "settings")), len(late)

        assert await eventually(both, lambda counts: counts == (2, 1)) == (2, 1)
        assert late == [("MODIFIED", NAMESPACE, "settings")]
        assert not any(ns == "other" for _, ns, _ in early)  # no cache there: nothing heard
    finally:
        await cache.aclose()


async def test_a_kind_the_server_does_not_serve_is_not_asked_for_again(client: KubeClient) -> None:
    cache = CachedKube(client)
    try:
        for _ in range(3):
            with pytest.raises(NotFound):
                await cache.list("flagger.app/v1beta1", "Canary", NAMESPACE)
        assert cache.stats.api_reads == 1
        assert not any(key[0] == "flagger.app" for key in cache.informers)
    finally:
        await cache.aclose()


ROOT = Path(__file__).resolve().parents[2]
CANARY_API = "canary.gitops.dev/v1beta1"
CRD_API = "apiextensions.k8s.io/v1"


def our_crd(file: str) -> dict[str, Any]:
    import yaml

    loaded: dict[str, Any] = yaml.safe_load((ROOT / "crds" / file).read_text())
    return loaded


def a_canary(name: str) -> dict[str, Any]:
    return {
        "apiVersion": CANARY_API,
        "kind": "Canary",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 80},
        },
    }


async def test_a_crd_deleted_while_watched_is_reported_and_the_cache_resumes_when_it_is_back(
    client: KubeClient,
) -> None:
    crd = our_crd("canary.yaml")
    await client.create(crd)
    await eventually(lambda: client.served(CANARY_API, "Canary"), bool)
    await client.create(a_canary("before"))
    heard: list[tuple[str, str]] = []
    cache = CachedKube(client)
    cache.listen(
        CANARY_API, "Canary", lambda kind, obj: heard.append((kind, obj["metadata"]["name"]))
    )
    try:
        assert await cache.wait_synced(10)
        assert await cache.get(CANARY_API, "Canary", "before", NAMESPACE) is not None

        await client.delete(CRD_API, "CustomResourceDefinition", crd["metadata"]["name"])

        async def missing() -> list[Informer]:
            return cache.not_served("canary.gitops.dev")

        reported = await eventually(missing, bool)
        assert [i.kind for i in reported] == ["Canary"]
        assert "Canary (canary.gitops.dev/v1beta1) is not served" in reported[0].not_served
        assert ("DELETED", "before") in heard
        # A kind that is not served has no objects: reads say so from memory.
        assert await cache.get(CANARY_API, "Canary", "before", NAMESPACE) is None
        assert cache.not_served("apps") == []

        await client.create(crd)
        await eventually(lambda: client.served(CANARY_API, "Canary"), bool)
        await client.create(a_canary("after"))
        await eventually(missing, lambda found: not found, within=30)

        async def after() -> Any:
            return await cache.get(CANARY_API, "Canary", "after", NAMESPACE)

        assert await eventually(after, lambda obj: obj is not None, within=30)
        assert ("ADDED", "after") in heard or ("MODIFIED", "after") in heard
    finally:
        await cache.aclose()


async def test_one_kind_that_is_not_served_does_not_hide_its_siblings(client: KubeClient) -> None:
    await client.create(our_crd("canary.yaml"))
    await eventually(lambda: client.served(CANARY_API, "Canary"), bool)
    await client.create(a_canary("podinfo"))
    cache = CachedKube(client)
    try:
        # MetricTemplate's CRD is not installed; Canary's, in the same group-version, is.
        for _ in range(2):
            with pytest.raises(NotFound):
                await cache.get(CANARY_API, "MetricTemplate", "latency", NAMESPACE)
        assert await cache.get(CANARY_API, "Canary", "podinfo", NAMESPACE) is not None
        assert await cache.list(CANARY_API, "Canary", NAMESPACE)
    finally:
        await cache.aclose()


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        (None, {}, True),
        ("app=web", {"app": "web"}, True),
        ("app=web", {"app": "api"}, False),
        ("app!=web", {}, True),
        ("tier in (a, b)", {"tier": "b"}, True),
        ("tier notin (a,b)", {"tier": "b"}, False),
        ("sharding.fluxcd.io/key notin (shard2)", {}, True),
        ("sharding.fluxcd.io/key=shard2", {"sharding.fluxcd.io/key": "shard2"}, True),
        ("app,!beta", {"app": "x"}, True),
        ("app,!beta", {"app": "x", "beta": "1"}, False),
    ],
)
def test_label_selectors_match_as_the_api_server_does(
    selector: str | None, labels: dict[str, str], matches: bool
) -> None:
    assert label_selector_matches(selector, labels) is matches
