"""A job woken early by a change runs its woken pass and keeps its clock."""

from __future__ import annotations

import asyncio

import pytest

from canary.controller.scheduler import REPHASE_AFTER, STARTUP_SPREAD, JobKind, Scheduler


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


@pytest.mark.looptime
async def test_passes_that_queued_together_are_not_due_together_again() -> None:
    """Canaries created at once queue for their first pass; one interval later they are
    due in the order and at the pace they ran, not all together again (loop time: each
    pass takes 50 ms of a single worker, 100 of them 5 s)."""
    loop = asyncio.get_running_loop()
    count, work, interval = 100, 0.05, 60.0
    lateness: list[float] = []
    rounds = asyncio.Event()

    async def run(namespace: str, name: str) -> float:
        await asyncio.sleep(work)  # the pass's own work, holding the only worker
        if len(lateness) >= 3 * count:
            rounds.set()
        return interval

    scheduler = Scheduler({"Canary": JobKind(run)}, max_concurrent=1, on_lateness=lateness.append)
    scheduler.starting = False  # created while the controller runs: due at once
    for i in range(count):
        scheduler.seen("test", f"c{i}", {"metadata": {"uid": f"u{i}"}})
    try:
        await rounds.wait()
    finally:
        await scheduler.stop()
    first, later = lateness[:count], lateness[count : 3 * count]
    assert max(first) >= (count - 1) * work * 0.99  # the first round queued: 5 s for the last
    assert max(later) <= REPHASE_AFTER + work  # the queue did not come back
    assert loop.time() < 3 * interval + count * work  # and every pass kept its interval


@pytest.mark.looptime
async def test_a_pass_on_time_keeps_the_rate_however_long_it_takes() -> None:
    """A slow pass (the API, the CPU) does not stretch the interval: the next one is due an
    interval after this one was due."""
    loop = asyncio.get_running_loop()
    starts: list[float] = []
    three = asyncio.Event()

    async def run(namespace: str, name: str) -> float:
        starts.append(loop.time())
        if len(starts) == 3:
            three.set()
        await asyncio.sleep(7.0)  # a slow pass
        return 60.0

    scheduler = Scheduler({"Canary": JobKind(run)})
    scheduler.starting = False
    scheduler.seen("test", "podinfo", {"metadata": {"uid": "u1"}})
    try:
        await three.wait()
    finally:
        await scheduler.stop()
    assert [round(t - starts[0], 3) for t in starts] == [0.0, 60.0, 120.0]
