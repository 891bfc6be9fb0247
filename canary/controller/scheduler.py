"""One job per object (each Canary, each GitSource), each on its own interval, in one place.

Flagger runs a goroutine per Canary driven by its own ticker; we run an asyncio task per
object, fed by the watch caches (``seen``/``forget``). The rules:

* **Fixed rate.** A pass is due every interval, counted from when the previous one was
  *due*, not from when it ended: a slow API or a busy CPU shows up as lateness instead of
  silently stretching every interval. A pass that asks to come back sooner (initialization,
  a Git revert, a retry) is due that many seconds after it ended.
* **Queues dissolve.** A pass that started more than :data:`REPHASE_AFTER` seconds late (its
  lateness reported) counts its next interval from when it started. Passes that fell due
  together (thousands of Canaries created at once, a stall) and waited in line for their turn
  are then due in the order and at the pace they ran, instead of falling due together, and
  queueing, again every interval. Counted from the due time, such a queue came back every
  interval for as long as the controller ran.
* **Spread.** Jobs created while the controller starts (the first listing of the cache) run
  their first pass at once, as fast as the concurrency limit and the CPU allow, so that after
  a restart every Canary is looked at within seconds (as Argo Rollouts' workers drain their
  queue); their *second* pass then comes at a random point of the interval after it (up to
  :data:`STARTUP_SPREAD` seconds later than the interval), so that ten thousand Canaries
  listed together do not keep ticking together. A Canary created later runs at once, on the
  phase of its creation.
* **Bounded.** At most ``max_concurrent`` passes run at the same time; a pass waiting for its
  turn is late, and the lateness metric says so (start time minus due time).
* **Woken.** A change that matters (a new interval, a command annotation on a Canary, a new
  generation of a GitSource, a new pod template of a Canary's target, told by
  `canary.controller.targets`) makes the job due now.
* A pass that raises is logged (one line with the cause; the traceback at DEBUG) and retried
  after a backoff; it never stops the job or another.

``time_scale`` multiplies every delay (demos and tests only; 1 in production).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from canary.controller.logs import describe
from canary.errors import CanaryError
from canary.model.commands import ONE_SHOT, PAUSED

log = logging.getLogger("canary.scheduler")

RunPass = Callable[[str, str], Awaitable[float | None]]
Fingerprint = Callable[[Mapping[str, Any]], object]
ERROR_BACKOFF = (2.0, 5.0, 10.0, 30.0, 60.0)
STARTUP_SPREAD = 30.0
REPHASE_AFTER = 0.25
DEFAULT_MAX_CONCURRENT = 32
# Only commands wake a Canary's job: other annotations under our prefix (the GitSource's
# source/revision marks, rewritten on every applied commit) must not.
_COMMAND_KEYS = frozenset((*ONE_SHOT.values(), PAUSED))


def fingerprint(body: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What wakes a Canary's job at once: the interval and the command annotations."""
    spec = body.get("spec") or {}
    analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
    interval = str(analysis.get("interval") or "")
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    commands = tuple(sorted((k, str(v)) for k, v in annotations.items() if k in _COMMAND_KEYS))
    return interval, commands


def generation(body: Mapping[str, Any]) -> object:
    """What wakes a GitSource's job: a new spec (our own status writes must not)."""
    return (body.get("metadata") or {}).get("generation")


@dataclass(frozen=True, slots=True)
class JobKind:
    """How the jobs of one kind run: their pass, and what of the object wakes them."""

    run_pass: RunPass
    fingerprint: Fingerprint = fingerprint
    first_delay: Callable[[Mapping[str, Any]], float] | None = None
    # The pass for a job woken early by a change (a command, an edit), if it differs: a
    # Canary's woken pass acts on the change but takes no analysis step before it is due.
    run_woken: RunPass | None = None


@dataclass
class _Job:
    kind: str
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    fingerprint: object = None
    passes: int = 0
    uid: str = ""


class Scheduler:
    def __init__(
        self,
        kinds: Mapping[str, JobKind] | RunPass,
        *,
        time_scale: float = 1.0,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
        on_lateness: Callable[[float], None] | None = None,
        on_count: Callable[[str, int], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.kinds: dict[str, JobKind] = (
            dict(kinds) if isinstance(kinds, Mapping) else {"Canary": JobKind(kinds)}
        )
        self.time_scale = time_scale
        self.on_lateness = on_lateness  # seconds a pass started after it was due
        self.on_count = on_count  # Canaries per namespace
        self.jobs: dict[tuple[str, str, str], _Job] = {}
        self.starting = True  # while the caches list what exists: spread the second passes
        self._gate = asyncio.Semaphore(max(1, max_concurrent))
        self._counts: Counter[str] = Counter()
        self._rng = rng or random.Random()

    # -- what the caches tell ------------------------------------------------------------

    def seen(
        self, namespace: str, name: str, body: Mapping[str, Any], kind: str = "Canary"
    ) -> None:
        """A watch event: start the object's job, or wake it if it must act now."""
        key = (kind, namespace, name)
        spec = self.kinds[kind]
        job = self.jobs.get(key)
        mark = spec.fingerprint(body)
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if job is not None and job.uid and uid and job.uid != uid and job.task is not None:
            job.task.cancel()  # deleted and created again under the same name
            job = None
        if job is None or job.task is None or job.task.done():
            fresh = key not in self.jobs
            job = _Job(kind=kind, fingerprint=mark, uid=uid)
            self.jobs[key] = job
            phase = 0.0
            if self.starting and spec.first_delay is not None:
                phase = self._rng.uniform(0.0, min(STARTUP_SPREAD, spec.first_delay(body)))
            job.task = asyncio.create_task(
                self._loop(kind, namespace, name, job, phase * self.time_scale),
                name=f"{kind.lower()}:{namespace}/{name}",
            )
            if fresh and kind == "Canary":
                self._counts[namespace] += 1
                self._report(namespace)
            return
        if mark != job.fingerprint:
            job.fingerprint = mark
            job.wake.set()

    def wake(self, namespace: str, name: str, kind: str = "Canary") -> None:
        job = self.jobs.get((kind, namespace, name))
        if job is not None:
            job.wake.set()

    async def forget(self, namespace: str, name: str, uid: str = "", kind: str = "Canary") -> None:
        key = (kind, namespace, name)
        current = self.jobs.get(key)
        if current is not None and uid and current.uid and current.uid != uid:
            return  # a late DELETED of an older object with the same name
        job = self.jobs.pop(key, None)
        if job is not None:
            self._forgotten(job, namespace)
            if job.task is not None:
                job.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job.task

    async def stop(self) -> None:
        for kind, namespace, name in list(self.jobs):
            await self.forget(namespace, name, kind=kind)

    def count(self, kind: str = "Canary") -> int:
        return sum(1 for k, _, _ in self.jobs if k == kind)

    def _forgotten(self, job: _Job, namespace: str) -> None:
        if job.kind == "Canary":
            self._counts[namespace] -= 1
            self._report(namespace)

    def _report(self, namespace: str) -> None:
        if self.on_count is not None:
            self.on_count(namespace, self._counts[namespace])

    # -- the job -------------------------------------------------------------------------

    def _failed(self, kind: str, namespace: str, name: str, exc: Exception, delay: float) -> None:
        """One line for a failed pass: WARNING for an error of ours (the API server said
        no, a router could not write), ERROR for anything else (a bug); the traceback at
        DEBUG only."""
        level = logging.WARNING if isinstance(exc, CanaryError) else logging.ERROR
        log.log(
            level,
            "pass for %s %s/%s failed: %s; retrying in %.3gs",
            kind,
            namespace,
            name,
            describe(exc),
            delay * self.time_scale,
        )
        log.debug("the failed pass of %s %s/%s", kind, namespace, name, exc_info=exc)

    async def _loop(self, kind: str, namespace: str, name: str, job: _Job, phase: float) -> None:
        """The job's passes: the first now, the second ``phase`` seconds later than its
        interval asks (the startup spread), then one per interval."""
        loop = asyncio.get_running_loop()
        run_pass = self.kinds[kind].run_pass
        run_woken = self.kinds[kind].run_woken or run_pass
        failures = 0
        due = loop.time()
        while True:
            wait = due - loop.time()
            scheduled, woken = due, False
            if wait > 0:
                job.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(job.wake.wait(), timeout=wait)
                if job.wake.is_set():
                    due, woken = loop.time(), True  # woken early: due now
            job.wake.clear()
            async with self._gate:
                started = loop.time()
                late = max(0.0, started - due)
                if self.on_lateness is not None and kind == "Canary":
                    self.on_lateness(late)
                try:
                    delay = await (run_woken if woken else run_pass)(namespace, name)
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    delay = ERROR_BACKOFF[min(failures, len(ERROR_BACKOFF) - 1)]
                    failures += 1
                    self._failed(kind, namespace, name, exc, delay)
            job.passes += 1
            if delay is None:
                # The object is gone (or finalized): end, unless a newer job replaced us.
                key = (kind, namespace, name)
                if self.jobs.get(key) is job:
                    del self.jobs[key]
                    self._forgotten(job, namespace)
                return
            delay = max(0.0, delay) * self.time_scale
            ended = loop.time()
            # Fixed rate: the next pass is due one interval after this one was *due*. When
            # that is more than an interval behind (a stall), missed ticks are dropped rather
            # than run back to back; the lateness of the late pass was reported already.
            due = due + delay + phase
            phase = 0.0
            if late > REPHASE_AFTER * self.time_scale:
                due += late  # counted from its start: a queue it waited in does not come back
            if due < ended - delay:
                due = ended
            if woken:
                # A woken pass does not move the clock: the next pass is due when it
                # was anyway (or sooner, when this pass asked for it).
                due = min(scheduled, ended + delay)
            if delay <= 0:
                await asyncio.sleep(0)
