"""The watch loop of `canary wait` when the API server goes away mid-wait.

A pipeline's wait lasts minutes; an API server restart in that time must not end it, nor
print a traceback: the loss is told once, the watch is retried with a backoff, and the wait
ends with the release's outcome once the server answers again. (The process-level tests,
tests/e2e/test_wait.py, cover the outcomes against the sandbox; a server that disappears
and comes back with its data is easier to play with an in-process fake.)
"""

from __future__ import annotations

import asyncio
import copy
import io
from collections.abc import AsyncIterator, Callable
from typing import Any

from rich.console import Console

from canary.adapters.kube import WatchEvent
from canary.adapters.primary import template_hash
from canary.commands.release import Wanted
from canary.commands.wait import Reporter, Result, WaitRequest, follow
from canary.ports import Unavailable

OUTER = 60.0


def deployment(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "test"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
    }


def promoted(image: str) -> dict[str, Any]:
    spec = template_hash(deployment("podinfo", image)["spec"]["template"])
    return {"phase": "Succeeded", "lastAppliedSpec": spec, "lastPromotedSpec": spec}


class FlakyApi:
    """Just enough of the client for `follow`: objects by kind, one watch stream per call fed
    from a queue, and a switch that makes every call fail as an unreachable server does."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {
            "Canary": {
                "metadata": {"name": "podinfo", "namespace": "test"},
                "spec": {"targetRef": {"kind": "Deployment", "name": "podinfo"}},
                "status": promoted("app:v1"),
            },
            "podinfo": deployment("podinfo", "app:v2"),
            "podinfo-primary": deployment("podinfo-primary", "app:v1"),
        }
        self.down = False
        self.streams: list[asyncio.Queue[Exception | None]] = []
        self.opened = asyncio.Event()  # set when a watch opens

    def _check(self) -> None:
        if self.down:
            raise Unavailable("connection refused")

    async def get(self, api_version: str, kind: str, name: str, ns: str) -> Any:
        self._check()
        found = self.objects.get("Canary" if kind == "Canary" else name)
        return copy.deepcopy(found)

    async def list_versioned(self, api_version: str, kind: str, ns: str, **_: Any) -> Any:
        self._check()
        return [], "1"

    async def watch(self, api_version: str, kind: str, ns: str, **_: Any) -> AsyncIterator[Any]:
        self._check()
        queue: asyncio.Queue[Exception | None] = asyncio.Queue()
        self.streams.append(queue)
        self.opened.set()
        while True:
            item = await queue.get()
            if item is not None:
                raise item
            yield WatchEvent("MODIFIED", {})

    def break_streams(self) -> None:
        self.down = True
        for queue in self.streams:
            queue.put_nowait(Unavailable("watch Canary failed: server disconnected"))
        self.streams.clear()


class Written(io.StringIO):
    """What the reporter prints, with an event set on every write."""

    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def write(self, text: str) -> int:
        self.event.set()
        return super().write(text)


async def until(event: asyncio.Event, condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds, checking it each time ``event`` is set (a generous
    outer limit, no fixed wait)."""
    async with asyncio.timeout(OUTER):
        while not condition():
            event.clear()
            await event.wait()


async def test_an_api_server_lost_mid_wait_is_told_once_and_the_wait_ends_with_the_outcome() -> (
    None
):
    api = FlakyApi()
    buffer = Written()
    console = Console(file=buffer, width=200, color_system=None)
    loop = asyncio.get_running_loop()
    report = Reporter(console, loop.time, started=loop.time())
    request = WaitRequest("podinfo", "test", "", "", timeout=OUTER, timeout_text="60s")
    waiting = asyncio.create_task(follow(api, request, Wanted(), report))

    await until(buffer.event, lambda: "waiting for the controller" in buffer.getvalue())
    await until(api.opened, lambda: len(api.streams) == 2)  # the Canary's and the target's
    api.break_streams()
    await until(buffer.event, lambda: "could not be reached" in buffer.getvalue())
    api.objects["Canary"]["status"] = promoted("app:v2")
    api.down = False

    ending = await asyncio.wait_for(waiting, OUTER)

    output = buffer.getvalue()
    assert ending.result is Result.PROMOTED, output
    assert output.count("could not be reached") == 1, output
    assert "the API server answers again" in output
    assert "Traceback" not in output
