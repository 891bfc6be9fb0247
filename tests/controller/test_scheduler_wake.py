"""A job woken early by a change runs its woken pass and keeps its clock."""

from __future__ import annotations

import asyncio

import pytest

from canary.controller.scheduler import STARTUP_SPREAD, JobKind, Scheduler


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


@pytest.mark.looptime
async def test_canaries_listed_at_startup_pass_at_once_and_then_tick_on_spread_phases() -> None:
    """After a restart every Canary is looked at at once; their later ticks are spread."""
    loop = asyncio.get_running_loop()
    passes: dict[str, list[float]] = {}
    both = asyncio.Event()
    count = 50

    async def run(namespace: str, name: str) -> float:
        passes.setdefault(name, []).append(loop.time())
        if sum(len(times) >= 2 for times in passes.values()) == count:
            both.set()
        return 60.0

    scheduler = Scheduler({"Canary": JobKind(run, first_delay=lambda body: 60.0)})
    start = loop.time()
    for i in range(count):  # the first listing: the scheduler is starting
        scheduler.seen("test", f"c{i}", {"metadata": {"uid": f"u{i}"}})
    scheduler.starting = False
    try:
        await both.wait()
    finally:
        await scheduler.stop()
    firsts = [times[0] - start for times in passes.values()]
    seconds = [times[1] - times[0] for times in passes.values()]
    assert max(firsts) < 1  # every first pass at once
    assert all(60 <= gap <= 60 + STARTUP_SPREAD for gap in seconds)  # then one interval + phase
    assert len({round(gap) for gap in seconds}) > count // 3  # and the phases differ
