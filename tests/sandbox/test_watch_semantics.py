"""What an informer cache depends on, over real HTTP: list + watch from a resourceVersion,
410 Expired and the relist, bookmarks, snapshots of paged lists, generation, selectors.

Every test talks to a started sandbox with aiohttp, as a controller's client would, and
waits on conditions (an event, a bookmark) with generous outer limits, never on sleeps.
The expectations are kube-apiserver 1.32's (API concepts: "Efficient detection of
changes", "Semantics for get and list", "Semantics for watch"; the apps/v1 strategies).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from .conftest import GROUP, WIDGET_CRD, deployment, widget

Obj = dict[str, Any]
Factory = Callable[..., Awaitable[Any]]

WITHIN = 15.0  # outer limit for anything awaited; reached only when a test fails
CMS = "/api/v1/namespaces/default/configmaps"
SECRETS = "/api/v1/namespaces/default/secrets"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
DAEMONSETS = "/apis/apps/v1/namespaces/default/daemonsets"
WIDGETS = f"/apis/{GROUP}/v1/namespaces/default/widgets"
MERGE = "application/merge-patch+json"
INITIAL_EVENTS_END = {"k8s.io/initial-events-end": "true"}
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


def cm(name: str, labels: dict[str, str] | None = None, **data: str) -> Obj:
    meta: Obj = {"name": name}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def rv_of(obj: Obj) -> int:
    return int(obj["metadata"]["resourceVersion"])


def names(items: list[Obj]) -> list[str]:
    return [o["metadata"]["name"] for o in items]


class Api:
    """A bare HTTP client of one sandbox: JSON in, (status, JSON, headers) out."""

    def __init__(self, session: aiohttp.ClientSession, sandbox: Any) -> None:
        self.session = session
        self.sandbox = sandbox
        self.url: str = sandbox.url

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        **params: str,
    ) -> tuple[int, Obj, Any]:
        data = None if body is None else json.dumps(body)
        async with self.session.request(
            method,
            self.url + path,
            params=params,
            data=data,
            headers={"Content-Type": content_type},
            timeout=aiohttp.ClientTimeout(total=WITHIN),
        ) as rsp:
            return rsp.status, await rsp.json(), rsp.headers

    async def ok(self, method: str, path: str, body: Any = None, **params: str) -> Obj:
        content_type = MERGE if method == "PATCH" else "application/json"
        status, doc, _ = await self.call(method, path, body, content_type=content_type, **params)
        assert 200 <= status < 300, (status, doc)
        return doc

    async def list(self, path: str, **params: str) -> Obj:
        return await self.ok("GET", path, **params)

    async def create(self, path: str, obj: Obj) -> Obj:
        return await self.ok("POST", path, obj)

    async def patch(self, path: str, name: str, patch: Obj, sub: str = "") -> Obj:
        return await self.ok("PATCH", f"{path}/{name}{sub}", patch)

    async def delete(self, path: str, name: str) -> Obj:
        return await self.ok("DELETE", f"{path}/{name}")

    async def current_rv(self) -> int:
        """The store's resourceVersion, as a list (of anything) reports it."""
        return int((await self.list("/api/v1/namespaces"))["metadata"]["resourceVersion"])

    @asynccontextmanager
    async def watch(self, path: str, **params: str) -> AsyncIterator[Stream]:
        async with self.session.get(
            self.url + path,
            params={"watch": "true", **params},
            timeout=aiohttp.ClientTimeout(total=None, sock_read=WITHIN),
        ) as rsp:
            assert rsp.status == 200, await rsp.text()
            yield Stream(rsp)


class Stream:
    """One watch response, read event by event."""

    def __init__(self, rsp: aiohttp.ClientResponse) -> None:
        self.rsp = rsp
        self.seen: list[Obj] = []

    async def next(self, within: float = WITHIN) -> Obj | None:
        """The next event, or None when the server ended the stream."""
        while True:
            line = await asyncio.wait_for(self.rsp.content.readline(), within)
            if not line:
                return None
            if line.strip():
                event: Obj = json.loads(line)
                self.seen.append(event)
                return event

    async def until(self, done: Callable[[Obj], bool], within: float = WITHIN) -> list[Obj]:
        """Events up to and including the first one ``done`` accepts."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        events: list[Obj] = []
        while True:
            event = await self.next(max(0.01, deadline - loop.time()))
            assert event is not None, f"the stream ended first; events: {events}"
            events.append(event)
            if done(event):
                return events

    async def changes(self, count: int) -> list[tuple[str, str]]:
        """The next ``count`` non-bookmark events as (type, name)."""
        out: list[tuple[str, str]] = []
        while len(out) < count:
            event = await self.next()
            assert event is not None, f"the stream ended after {out}"
            if event["type"] != "BOOKMARK":
                out.append((event["type"], event["object"]["metadata"]["name"]))
        return out

    async def rest(self) -> list[Obj]:
        """Every event until the server ends the stream."""
        events: list[Obj] = []
        while (event := await self.next()) is not None:
            events.append(event)
        return events


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def api_for(session: aiohttp.ClientSession, sandbox_factory: Factory) -> Factory:
    """``await api_for(**sandbox options)``: an :class:`Api` on a new sandbox (no simulator
    unless asked for), with ``.sandbox`` set."""

    async def start(**options: Any) -> Api:
        options.setdefault("simulate_workloads", False)
        return Api(session, await sandbox_factory(**options))

    return start


def bookmark_at_least(rv: int) -> Callable[[Obj], bool]:
    return lambda e: e["type"] == "BOOKMARK" and rv_of(e["object"]) >= rv


class Informer:
    """The list-then-watch loop of a controller's cache, reduced to what the tests check."""

    def __init__(self, api: Api, path: str) -> None:
        self.api, self.path = api, path
        self.objects: dict[str, Obj] = {}
        self.version = ""

    async def relist(self, limit: int = 0) -> None:
        self.objects, token = {}, ""
        while True:
            params = {"limit": str(limit)} if limit else {}
            if token:
                params["continue"] = token
            page = await self.api.list(self.path, **params)
            self.objects.update({o["metadata"]["name"]: o for o in page["items"]})
            self.version = page["metadata"]["resourceVersion"]
            token = page["metadata"].get("continue", "")
            if not token:
                return

    def apply(self, event: Obj) -> None:
        obj = event["object"]
        if event["type"] in ("ADDED", "MODIFIED"):
            self.objects[obj["metadata"]["name"]] = obj
        elif event["type"] == "DELETED":
            self.objects.pop(obj["metadata"]["name"], None)
        self.version = obj["metadata"]["resourceVersion"]

    async def matches_server(self) -> None:
        truth = await self.api.list(self.path)
        assert {n: o["metadata"]["resourceVersion"] for n, o in self.objects.items()} == {
            o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in truth["items"]
        }


# ------------------------------------------------------------------------------------ 410


class TestExpiredResourceVersion:
    async def test_a_watch_from_an_expired_version_gets_one_410_error_event_and_ends(
        self, api_for: Factory
    ) -> None:
        api = await api_for(history_size=3)
        old = await api.current_rv()
        for i in range(5):
            await api.create(CMS, cm(f"c{i}"))
        async with api.watch(CMS, resourceVersion=str(old), allowWatchBookmarks="true") as w:
            events = await w.rest()  # no timeoutSeconds: the server ends it at once
        assert [e["type"] for e in events] == ["ERROR"]
        status = events[0]["object"]
        assert {k: status[k] for k in ("kind", "apiVersion", "status", "code", "reason")} == {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": 410,
            "reason": "Expired",
        }
        found = re.fullmatch(r"too old resource version: (\d+) \((\d+)\)", status["message"])
        assert found is not None and int(found[1]) == old
        # the number in parentheses is the oldest version a watch may still start from
        async with api.watch(CMS, resourceVersion=found[2], timeoutSeconds="0.2") as w:
            replayed = await w.rest()
        assert [e["type"] for e in replayed] == ["ADDED"] * 3

    async def test_a_relist_and_a_watch_from_its_version_miss_no_change_made_in_between(
        self, api_for: Factory
    ) -> None:
        api = await api_for(history_size=4)
        for name in ("keep", "edit", "drop"):
            await api.create(CMS, cm(name))
        informer = Informer(api, CMS)
        await informer.relist()
        for i in range(6):  # the informer's version falls out of the history
            await api.patch(CMS, "keep", {"data": {"n": str(i)}})
        async with api.watch(CMS, resourceVersion=informer.version) as w:
            (event,) = await w.rest()
        assert (event["type"], event["object"]["code"]) == ("ERROR", 410)

        await informer.relist(limit=2)
        # changes between the relist and the next watch
        await api.create(CMS, cm("new"))
        await api.patch(CMS, "edit", {"data": {"x": "1"}})
        await api.delete(CMS, "drop")
        async with api.watch(
            CMS, resourceVersion=informer.version, allowWatchBookmarks="true"
        ) as w:
            events = await w.until(lambda e: e["type"] == "DELETED")
        for event in events:
            informer.apply(event)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("ADDED", "new"),
            ("MODIFIED", "edit"),
            ("DELETED", "drop"),
        ]
        await informer.matches_server()

    async def test_the_history_is_kept_per_resource_type(self, api_for: Factory) -> None:
        api = await api_for(history_size=3)
        await api.create(CMS, cm("quiet"))
        since = await api.current_rv()
        for i in range(10):  # a busy type does not push a quiet one's events out
            await api.create(SECRETS, {"metadata": {"name": f"s{i}"}})
        await api.patch(CMS, "quiet", {"data": {"k": "v"}})
        async with api.watch(CMS, resourceVersion=str(since), timeoutSeconds="0.2") as w:
            events = await w.rest()
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("MODIFIED", "quiet")
        ]

    async def test_a_watch_from_a_version_not_reached_yet_starts_there(
        self, api_for: Factory
    ) -> None:
        api = await api_for()
        future = await api.current_rv() + 2
        async with api.watch(CMS, resourceVersion=str(future)) as w:
            await api.create(CMS, cm("one"))  # at future - 1: not sent
            await api.create(CMS, cm("two"))  # at future: not sent
            await api.create(CMS, cm("three"))
            assert await w.changes(1) == [("ADDED", "three")]


# ------------------------------------------------------------------ list resourceVersion


class TestListResourceVersion:
    async def test_a_list_carries_the_version_of_the_state_it_shows(self, api_for: Factory) -> None:
        api = await api_for()
        created = await api.create(CMS, cm("a"))
        listing = await api.list(CMS)
        assert rv_of(listing) == rv_of(created) == await api.current_rv()
        assert listing["kind"] == "ConfigMapList"

    async def test_an_exact_list_shows_the_state_at_that_version(self, api_for: Factory) -> None:
        api = await api_for()
        await api.create(CMS, cm("a", v="1"))
        await api.create(CMS, cm("gone"))
        then = rv_of(await api.list(CMS))
        await api.patch(CMS, "a", {"data": {"v": "2"}})
        await api.delete(CMS, "gone")
        await api.create(CMS, cm("later"))
        exact = await api.list(CMS, resourceVersion=str(then), resourceVersionMatch="Exact")
        assert rv_of(exact) == then
        assert names(exact["items"]) == ["a", "gone"]
        assert exact["items"][0]["data"] == {"v": "1"}
        # a limit without resourceVersionMatch is the same exact read (the legacy rule)
        legacy = await api.list(CMS, resourceVersion=str(then), limit="10")
        assert (rv_of(legacy), names(legacy["items"])) == (then, ["a", "gone"])

    async def test_an_exact_list_older_than_the_history_is_410(self, api_for: Factory) -> None:
        api = await api_for(history_size=2)
        then = await api.current_rv()
        for i in range(3):
            await api.create(CMS, cm(f"c{i}"))
        status, body, _ = await api.call(
            "GET", CMS, resourceVersion=str(then), resourceVersionMatch="Exact"
        )
        assert (status, body["kind"], body["reason"], body["code"]) == (
            410,
            "Status",
            "Expired",
            410,
        )
        assert body["message"] == "The resourceVersion for the provided list is too old."

    async def test_not_older_than_and_any_serve_the_current_state(self, api_for: Factory) -> None:
        api = await api_for()
        await api.create(CMS, cm("a"))
        then = await api.current_rv()
        for name in ("b", "c"):
            await api.create(CMS, cm(name))
        now = await api.current_rv()
        newer = await api.list(CMS, resourceVersion=str(then), resourceVersionMatch="NotOlderThan")
        assert (rv_of(newer), names(newer["items"])) == (now, ["a", "b", "c"])
        plain = await api.list(CMS, resourceVersion=str(then))
        assert (rv_of(plain), names(plain["items"])) == (now, ["a", "b", "c"])
        # resourceVersion=0 is served as the watch cache serves it: whole, limit ignored
        anything = await api.list(CMS, resourceVersion="0", limit="1")
        assert names(anything["items"]) == ["a", "b", "c"]
        assert "continue" not in anything["metadata"]

    async def test_a_version_not_reached_yet_is_a_504_too_large(self, api_for: Factory) -> None:
        api = await api_for()
        api.sandbox.server.freshness_timeout = 0.2
        ahead = await api.current_rv() + 100
        status, body, headers = await api.call("GET", CMS, resourceVersion=str(ahead))
        assert (status, body["reason"], body["code"]) == (504, "Timeout", 504)
        assert body["message"].startswith(f"Timeout: Too large resource version: {ahead}")
        assert body["details"]["causes"] == [
            {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
        ]
        assert body["details"]["retryAfterSeconds"] == 1
        assert headers["Retry-After"] == "1"

    async def test_a_read_for_the_next_version_waits_for_it(self, api_for: Factory) -> None:
        api = await api_for()
        next_rv = await api.current_rv() + 1
        waiting = asyncio.create_task(api.list(CMS, resourceVersion=str(next_rv)))
        await api.create(CMS, cm("arrives"))
        listing = await asyncio.wait_for(waiting, WITHIN)
        assert names(listing["items"]) == ["arrives"] and rv_of(listing) >= next_rv

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            (
                {"resourceVersionMatch": "NotOlderThan"},
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
                "resourceVersion is provided",
            ),
            (
                {"resourceVersion": "0", "resourceVersionMatch": "Exact"},
                'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden '
                'for resourceVersion "0"',
            ),
            (
                {"resourceVersion": "1", "resourceVersionMatch": "Newest"},
                'resourceVersionMatch: Unsupported value: "Newest": supported values: '
                '"Exact", "NotOlderThan", ""',
            ),
            (
                {"sendInitialEvents": "true"},
                "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
            ),
            (
                {"watch": "true", "resourceVersion": "5", "resourceVersionMatch": "NotOlderThan"},
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch "
                "unless sendInitialEvents is provided",
            ),
            (
                {"watch": "true", "sendInitialEvents": "true", "resourceVersion": "5"},
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
                "resourceVersionMatch to NotOlderThan",
            ),
        ],
    )
    async def test_forbidden_parameter_combinations_are_422_list_options_invalid(
        self, api_for: Factory, params: dict[str, str], message: str
    ) -> None:
        api = await api_for()
        status, body, _ = await api.call("GET", CMS, **params)
        assert (status, body["reason"]) == (422, "Invalid")
        assert body["message"] == f'ListOptions.meta.k8s.io "" is invalid: {message}'
        assert (body["details"]["kind"], body["details"]["group"]) == ("ListOptions", "meta.k8s.io")


# -------------------------------------------------------------------------- paged lists


class TestPagedList:
    async def test_pages_are_one_snapshot_and_a_watch_from_its_version_misses_nothing(
        self, api_for: Factory
    ) -> None:
        api = await api_for()
        for name in ("a", "b", "c", "d", "e"):
            await api.create(CMS, cm(name, n="0"))
        first = await api.list(CMS, limit="2")
        snapshot = rv_of(first)
        assert names(first["items"]) == ["a", "b"]
        assert first["metadata"]["remainingItemCount"] == 3
        # between the pages: one already listed changes, one not yet listed goes, one comes
        await api.patch(CMS, "a", {"data": {"n": "1"}})
        await api.delete(CMS, "d")
        await api.create(CMS, cm("f"))
        second = await api.list(CMS, limit="2", **{"continue": first["metadata"]["continue"]})
        third = await api.list(CMS, limit="2", **{"continue": second["metadata"]["continue"]})
        assert [rv_of(p) for p in (second, third)] == [snapshot, snapshot]
        assert names(second["items"]) == ["c", "d"] and names(third["items"]) == ["e"]
        assert "continue" not in third["metadata"]
        assert "remainingItemCount" not in third["metadata"]
        # the pages + a watch from their version are the truth: nothing lost, nothing twice
        informer = Informer(api, CMS)
        informer.objects = {
            o["metadata"]["name"]: o for p in (first, second, third) for o in p["items"]
        }
        async with api.watch(CMS, resourceVersion=str(snapshot)) as w:
            events = await w.until(lambda e: e["object"]["metadata"]["name"] == "f")
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("MODIFIED", "a"),
            ("DELETED", "d"),
            ("ADDED", "f"),
        ]
        for event in events:
            informer.apply(event)
        await informer.matches_server()

    async def test_an_expired_continue_token_is_410_with_a_token_for_the_latest_state(
        self, api_for: Factory
    ) -> None:
        api = await api_for(history_size=2)
        for name in ("a", "b", "c", "d"):
            await api.create(CMS, cm(name))
        first = await api.list(CMS, limit="2")
        for name in ("e", "f", "g"):  # the snapshot falls out of the history
            await api.create(CMS, cm(name))
        status, body, _ = await api.call(
            "GET", CMS, limit="2", **{"continue": first["metadata"]["continue"]}
        )
        assert (status, body["kind"], body["reason"], body["code"]) == (
            410,
            "Status",
            "Expired",
            410,
        )
        assert body["message"].startswith(
            "The provided continue parameter is too old to display a consistent list result."
        )
        # the token in the Status continues after the last key, in the latest state
        rest = await api.list(CMS, limit="10", **{"continue": body["metadata"]["continue"]})
        assert names(rest["items"]) == ["c", "d", "e", "f", "g"]
        assert rv_of(rest) == await api.current_rv()

    async def test_remaining_item_count_is_left_out_with_selectors(self, api_for: Factory) -> None:
        api = await api_for()
        for name in ("a", "b", "c"):
            await api.create(CMS, cm(name, {"team": "x"}))
        page = await api.list(CMS, limit="1", labelSelector="team=x")
        assert names(page["items"]) == ["a"] and page["metadata"]["continue"]
        assert "remainingItemCount" not in page["metadata"]
        nxt = await api.list(
            CMS, limit="5", labelSelector="team=x", **{"continue": page["metadata"]["continue"]}
        )
        assert names(nxt["items"]) == ["b", "c"]

    async def test_bad_continue_requests_are_400(self, api_for: Factory) -> None:
        api = await api_for()
        for name in ("a", "b"):
            await api.create(CMS, cm(name))
        token = (await api.list(CMS, limit="1"))["metadata"]["continue"]
        status, body, _ = await api.call(
            "GET", CMS, limit="1", resourceVersion="3", **{"continue": token}
        )
        assert (status, body["message"]) == (
            400,
            "specifying resource version is not allowed when using continue",
        )
        forged = base64.urlsafe_b64encode(b'{"nothing": 1}').decode()
        status, body, _ = await api.call("GET", CMS, **{"continue": forged})
        assert status == 400 and body["message"].startswith("invalid continue token")


# ---------------------------------------------------------------------------- bookmarks


class TestBookmarks:
    async def test_bookmarks_carry_the_latest_version_so_resuming_neither_replays_nor_misses(
        self, api_for: Factory
    ) -> None:
        api = await api_for(bookmark_interval=0.05)
        informer = Informer(api, CMS)
        await informer.relist()
        async with api.watch(
            CMS, resourceVersion=informer.version, allowWatchBookmarks="true"
        ) as w:
            await api.create(CMS, cm("a"))
            await api.patch(CMS, "a", {"data": {"k": "1"}})
            await api.create(SECRETS, {"metadata": {"name": "elsewhere"}})  # another type
            latest = await api.current_rv()
            events = await w.until(bookmark_at_least(latest))
        changes = [e for e in events if e["type"] != "BOOKMARK"]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in changes] == [
            ("ADDED", "a"),
            ("MODIFIED", "a"),
        ]
        for event in changes:
            informer.apply(event)
        bookmark = events[-1]["object"]
        assert (bookmark["kind"], bookmark["apiVersion"]) == ("ConfigMap", "v1")
        assert set(bookmark["metadata"]) == {"resourceVersion"}
        # every bookmark is at or after the last change sent before it, and never goes back
        last_change = 0
        bookmark_rvs = []
        for event in events:
            if event["type"] == "BOOKMARK":
                assert rv_of(event["object"]) >= last_change
                bookmark_rvs.append(rv_of(event["object"]))
            else:
                last_change = rv_of(event["object"])
        assert bookmark_rvs == sorted(bookmark_rvs) and rv_of(bookmark) == latest

        await api.patch(CMS, "a", {"data": {"k": "2"}})  # while no watch is open
        async with api.watch(
            CMS, resourceVersion=bookmark["metadata"]["resourceVersion"], timeoutSeconds="0.3"
        ) as w:
            resumed = [e for e in await w.rest() if e["type"] != "BOOKMARK"]
        assert [(e["type"], e["object"]["data"]) for e in resumed] == [("MODIFIED", {"k": "2"})]
        informer.apply(resumed[0])
        await informer.matches_server()

    async def test_changes_queued_while_a_bookmark_is_due_are_still_sent(
        self, api_for: Factory
    ) -> None:
        # A bookmark interval of zero keeps a bookmark always due: the state a busy server
        # reaches when its bookmark timer fires late. The stream once waited for the queue
        # with a timeout of zero there, which never returns an item, and went silent with
        # its changes queued until the watch's deadline.
        api = await api_for(bookmark_interval=0.0)
        informer = Informer(api, CMS)
        await informer.relist()
        async with api.watch(
            CMS, resourceVersion=informer.version, allowWatchBookmarks="true"
        ) as w:
            for name in ("a", "b", "c"):
                await api.create(CMS, cm(name))
            assert await w.changes(3) == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]

    async def test_the_initial_events_end_bookmark_carries_the_version_of_the_initial_state(
        self, api_for: Factory
    ) -> None:
        api = await api_for()
        for name in ("a", "b"):
            await api.create(CMS, cm(name))
        state = await api.current_rv()
        async with api.watch(
            CMS,
            sendInitialEvents="true",
            resourceVersionMatch="NotOlderThan",
            allowWatchBookmarks="true",
        ) as w:
            initial = await w.until(lambda e: e["type"] == "BOOKMARK")
            await api.create(CMS, cm("c"))
            assert await w.changes(1) == [("ADDED", "c")]
        assert [(e["type"], e["object"]["metadata"].get("name")) for e in initial] == [
            ("ADDED", "a"),
            ("ADDED", "b"),
            ("BOOKMARK", None),
        ]
        end = initial[-1]["object"]["metadata"]
        assert end == {"resourceVersion": str(state), "annotations": INITIAL_EVENTS_END}
        # resuming from it replays only what came after the initial state
        async with api.watch(CMS, resourceVersion=str(state), timeoutSeconds="0.2") as w:
            assert [e["object"]["metadata"]["name"] for e in await w.rest()] == ["c"]

    async def test_a_watch_without_a_version_ends_its_initial_events_with_a_bookmark(
        self, api_for: Factory
    ) -> None:
        """kube-apiserver 1.32 defaults such a watch to sendInitialEvents=true."""
        api = await api_for()
        await api.create(CMS, cm("a"))
        state = await api.current_rv()
        async with api.watch(CMS, allowWatchBookmarks="true", timeoutSeconds="0.2") as w:
            with_bookmarks = await w.rest()
        async with api.watch(CMS, resourceVersion="0", timeoutSeconds="0.2") as w:
            without = await w.rest()
        assert [e["type"] for e in with_bookmarks][:2] == ["ADDED", "BOOKMARK"]
        assert with_bookmarks[1]["object"]["metadata"] == {
            "resourceVersion": str(state),
            "annotations": INITIAL_EVENTS_END,
        }
        assert [e["type"] for e in without] == ["ADDED"]

    async def test_an_empty_initial_state_is_just_the_bookmark(self, api_for: Factory) -> None:
        api = await api_for()
        state = await api.current_rv()
        async with api.watch(
            CMS,
            sendInitialEvents="true",
            resourceVersionMatch="NotOlderThan",
            allowWatchBookmarks="true",
        ) as w:
            first = await w.next()
        assert first is not None and first["type"] == "BOOKMARK"
        assert first["object"]["metadata"]["annotations"] == INITIAL_EVENTS_END
        assert rv_of(first["object"]) == state

    async def test_a_watch_that_times_out_ends_with_a_bookmark(self, api_for: Factory) -> None:
        api = await api_for()  # bookmark_interval is 15 s: this one is the timeout's
        await api.create(CMS, cm("x"))
        await api.create(SECRETS, {"metadata": {"name": "later"}})
        latest = await api.current_rv()
        async with api.watch(
            CMS, resourceVersion=str(latest), allowWatchBookmarks="true", timeoutSeconds="0.3"
        ) as w:
            events = await w.rest()
        assert [e["type"] for e in events] == ["BOOKMARK"]
        assert rv_of(events[0]["object"]) == latest

    async def test_no_bookmarks_unless_allowed(self, api_for: Factory) -> None:
        api = await api_for(bookmark_interval=0.05)
        await api.create(CMS, cm("a"))
        async with api.watch(
            CMS,
            sendInitialEvents="true",
            resourceVersionMatch="NotOlderThan",
            timeoutSeconds="0.3",
        ) as w:
            events = await w.rest()
        assert [e["type"] for e in events] == ["ADDED"]


# --------------------------------------------------------------------------- generation


class TestGeneration:
    async def test_a_deployment_generation_counts_spec_and_annotation_changes_only(
        self, api_for: Factory
    ) -> None:
        api = await api_for()
        dep = await api.create(DEPLOYMENTS, deployment("web"))

        def generation(obj: Obj) -> int:
            return int(obj["metadata"]["generation"])

        assert generation(dep) == 1
        steps: list[tuple[str, Obj, str, int]] = [
            ("labels", {"metadata": {"labels": {"tier": "web"}}}, "", 1),
            ("status", {"status": {"observedGeneration": 1, "replicas": 1}}, "/status", 1),
            # the apps/v1 Deployment strategy counts annotations as desired state (they are
            # copied to the ReplicaSets): a change bumps the generation, labels never do
            ("annotations", {"metadata": {"annotations": {"team": "a"}}}, "", 2),
            ("replicas", {"spec": {"replicas": 3}}, "", 3),
            (
                "template annotations",
                {"spec": {"template": {"metadata": {"annotations": {"x": "1"}}}}},
                "",
                4,
            ),
            (
                "template labels",
                {"spec": {"template": {"metadata": {"labels": {"extra": "1"}}}}},
                "",
                5,
            ),
            ("paused", {"spec": {"paused": True}}, "", 6),
            ("same spec again", {"spec": {"paused": True}}, "", 6),
        ]
        for what, patch, sub, expected in steps:
            dep = await api.patch(DEPLOYMENTS, "web", patch, sub)
            assert generation(dep) == expected, what
        scaled = await api.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 1}}, "/scale")
        assert scaled["kind"] == "Scale"
        after_scale = await api.ok("GET", f"{DEPLOYMENTS}/web")
        assert generation(after_scale) == 7  # a scale is a spec change

    async def test_annotations_written_through_deployment_status_keep_the_generation(
        self, api_for: Factory
    ) -> None:
        """The deployment controller writes its revision annotation through /status."""
        api = await api_for()
        await api.create(DEPLOYMENTS, deployment("web"))
        patched = await api.patch(
            DEPLOYMENTS,
            "web",
            {"metadata": {"annotations": {"rev": "1"}, "labels": {"no": "way"}}},
            "/status",
        )
        assert patched["metadata"]["annotations"] == {"rev": "1"}
        assert patched["metadata"]["labels"] == {"app": "web"}  # labels only through the object
        assert patched["metadata"]["generation"] == 1

    async def test_a_simulated_rollout_leaves_the_generation_to_the_user(
        self, api_for: Factory
    ) -> None:
        api = await api_for(simulate_workloads=True)
        await api.create(DEPLOYMENTS, deployment("web", replicas=2))
        async with api.watch(DEPLOYMENTS, resourceVersion="1") as w:
            events = await w.until(
                lambda e: (e["object"].get("status") or {}).get("availableReplicas") == 2
            )
        done = events[-1]["object"]
        assert done["metadata"]["generation"] == 1
        assert done["status"]["observedGeneration"] == 1
        assert done["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "1"}

    async def test_a_daemonset_generation_counts_spec_changes_only(self, api_for: Factory) -> None:
        api = await api_for()
        body = deployment("agent")
        body["kind"] = "DaemonSet"
        del body["spec"]["replicas"]
        body["metadata"]["annotations"] = {TEMPLATE_GENERATION: "0"}
        ds = await api.create(DAEMONSETS, body)

        def seen(obj: Obj) -> tuple[int, str]:
            meta = obj["metadata"]
            return meta["generation"], meta["annotations"][TEMPLATE_GENERATION]

        assert seen(ds) == (1, "1")  # apps/v1 shows spec.templateGeneration, at least 1
        steps: list[tuple[str, Obj, tuple[int, str]]] = [
            ("labels", {"metadata": {"labels": {"x": "1"}}}, (1, "1")),
            ("annotations", {"metadata": {"annotations": {"y": "1"}}}, (1, "1")),
            (
                "template",
                {"spec": {"template": {"metadata": {"annotations": {"z": "1"}}}}},
                (2, "2"),
            ),
            ("strategy", {"spec": {"minReadySeconds": 5}}, (3, "2")),
            (
                "template generation by hand",
                {"metadata": {"annotations": {TEMPLATE_GENERATION: "9"}}},
                (3, "2"),
            ),
        ]
        for what, patch, expected in steps:
            ds = await api.patch(DAEMONSETS, "agent", patch)
            assert seen(ds) == expected, what

    async def test_a_custom_resource_generation_counts_spec_changes_only(
        self, api_for: Factory
    ) -> None:
        api = await api_for()
        api.sandbox.store.apply_manifest(WIDGET_CRD)
        created = await api.create(WIDGETS, widget("w"))
        assert created["metadata"]["generation"] == 1
        steps: list[tuple[str, Obj, str, int]] = [
            ("labels", {"metadata": {"labels": {"a": "b"}}}, "", 1),
            ("annotations", {"metadata": {"annotations": {"a": "b"}}}, "", 1),
            ("status", {"status": {"phase": "Ready"}}, "/status", 1),
            ("status through the object is ignored", {"status": {"phase": "No"}}, "", 1),
            ("spec", {"spec": {"size": 2}}, "", 2),
        ]
        for what, patch, sub, expected in steps:
            obj = await api.patch(WIDGETS, "w", patch, sub)
            assert obj["metadata"]["generation"] == expected, what
        assert obj["status"] == {"phase": "Ready"}


# ---------------------------------------------------------------------------- selectors


class TestSelectors:
    async def test_a_label_selected_watch_sees_objects_enter_as_added_and_leave_as_deleted(
        self, api_for: Factory
    ) -> None:
        api = await api_for()
        await api.create(CMS, cm("x", {"shard": "a"}, v="1"))
        await api.create(CMS, cm("y", {"shard": "b"}))
        async with api.watch(CMS, labelSelector="shard=a") as w:
            assert await w.changes(1) == [("ADDED", "x")]
            left = await api.patch(CMS, "x", {"metadata": {"labels": {"shard": "b"}}})
            (gone,) = await w.until(lambda e: e["type"] != "BOOKMARK")
            await api.patch(CMS, "y", {"data": {"ignored": "yes"}})  # never matched: not sent
            await api.patch(CMS, "y", {"metadata": {"labels": {"shard": "a"}}})
            await api.patch(CMS, "y", {"data": {"seen": "yes"}})
            await api.patch(CMS, "x", {"metadata": {"labels": {"shard": "a"}}})
            assert await w.changes(3) == [("ADDED", "y"), ("MODIFIED", "y"), ("ADDED", "x")]
        # the DELETED event shows the object as it last matched, at the change's version
        assert gone["type"] == "DELETED"
        assert gone["object"]["metadata"]["labels"] == {"shard": "a"}
        assert gone["object"]["metadata"]["resourceVersion"] == left["metadata"]["resourceVersion"]

    async def test_label_selectors_on_lists_and_on_resumed_watches(self, api_for: Factory) -> None:
        api = await api_for()
        await api.create(CMS, cm("a1", {"shard": "a"}))
        await api.create(CMS, cm("b1", {"shard": "b"}))
        listing = await api.list(CMS, labelSelector="shard in (a),!gone")
        assert names(listing["items"]) == ["a1"]
        await api.patch(CMS, "b1", {"metadata": {"labels": {"shard": "a"}}})
        await api.patch(CMS, "a1", {"metadata": {"labels": {"gone": "yes"}}})
        async with api.watch(
            CMS,
            labelSelector="shard in (a),!gone",
            resourceVersion=listing["metadata"]["resourceVersion"],
            timeoutSeconds="0.3",
        ) as w:
            replayed = await w.rest()
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in replayed] == [
            ("ADDED", "b1"),
            ("DELETED", "a1"),
        ]

    async def test_field_selectors_on_name_and_namespace_for_lists_and_watches(
        self, api_for: Factory
    ) -> None:
        api = await api_for()
        await api.create(CMS, cm("same"))
        await api.create(CMS, cm("other"))
        await api.create("/api/v1/namespaces/kube-system/configmaps", cm("same"))
        everywhere = "/api/v1/configmaps"
        by_name = await api.list(everywhere, fieldSelector="metadata.name=same")
        assert [o["metadata"]["namespace"] for o in by_name["items"]] == ["default", "kube-system"]
        one = await api.list(
            everywhere, fieldSelector="metadata.name=same,metadata.namespace=kube-system"
        )
        assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in one["items"]] == [
            ("kube-system", "same")
        ]
        outside = await api.list(everywhere, fieldSelector="metadata.namespace!=default")
        assert {o["metadata"]["namespace"] for o in outside["items"]} == {"kube-system"}
        async with api.watch(
            everywhere,
            fieldSelector="metadata.namespace=default,metadata.name!=other",
            resourceVersion=by_name["metadata"]["resourceVersion"],
        ) as w:
            await api.patch(CMS, "other", {"data": {"k": "v"}})
            await api.patch("/api/v1/namespaces/kube-system/configmaps", "same", {"data": {}})
            await api.patch(CMS, "same", {"data": {"k": "v"}})
            assert await w.changes(1) == [("MODIFIED", "same")]
        assert w.seen[0]["object"]["metadata"]["namespace"] == "default"

    async def test_an_unsupported_field_is_a_400(self, api_for: Factory) -> None:
        api = await api_for()
        status, body, _ = await api.call("GET", CMS, fieldSelector="data.k=v")
        assert (status, body["message"]) == (400, "field label not supported: data.k")
        async with api.session.get(
            api.url + CMS, params={"watch": "true", "fieldSelector": "spec.x=1"}
        ) as rsp:
            assert rsp.status == 400
