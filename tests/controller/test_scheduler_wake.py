"""A job woken early by a change runs its woken pass and keeps its clock."""

from __future__ import annotations

import asyncio

import pytest

from canary.controller.scheduler import JobKind, Scheduler


@pytest.mark.looptime
async def test_a_woken_pass_runs_the_woken_pass_and_does_not_move_the_next_tick() -> None:
    loop = asyncio.get_running_loop()
    passes: list[tuple[str, float]] = []
    ticked = asyncio.Event()

    async def on_interval(namespace: str, name: str) -> float:
        passes.append(("interval", loop.time()))
        ticked.set()
        return 60.0

    async def on_wake(namespace: str, name: str) -> float:
        passes.append(("woken", loop.time()))
        ticked.set()
        return 60.0

    scheduler = Scheduler({"Canary": JobKind(on_interval, run_woken=on_wake)})
    scheduler.starting = False
    start = loop.time()
    scheduler.seen("test", "podinfo", {"metadata": {"uid": "u1", "generation": 1}})
    try:
        while len(passes) < 1:
            ticked.clear()
            await ticked.wait()
        await asyncio.sleep(20.0)  # a person runs `canary promote` 20 s into the interval
        scheduler.wake("test", "podinfo")
        while len(passes) < 3:
            ticked.clear()
            await ticked.wait()
    finally:
        await scheduler.stop()
    kinds = [kind for kind, _ in passes]
    times = [round(t - start) for _, t in passes]
    assert kinds == ["interval", "woken", "interval"]
    assert times == [0, 20, 60]  # the next interval pass is where it always was
