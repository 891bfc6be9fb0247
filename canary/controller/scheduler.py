"""One job per Canary, each on its own analysis interval.

Flagger runs a goroutine per Canary driven by its own ticker; we run an asyncio
task per Canary in kopf's event loop. A job runs a pass at once when the Canary
is first seen, then sleeps until the time the pass asked for (the analysis
interval, or sooner for initialization and Git reverts). A change of
``analysis.interval`` or a new command annotation wakes it at once. A pass that
raises is logged and retried after a backoff; it never stops the job or
disturbs other canaries. kopf's daemons would do this too but would put a
finalizer on every Canary; these jobs need none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from canary.model.commands import ONE_SHOT, PAUSED

log = logging.getLogger("canary.scheduler")

RunPass = Callable[[str, str], Awaitable[float | None]]
ERROR_BACKOFF = (2.0, 5.0, 10.0, 30.0, 60.0)
# Only commands wake a job: other annotations under our prefix (the GitSource's
# source/revision marks, rewritten on every applied commit) must not.
_COMMAND_KEYS = frozenset((*ONE_SHOT.values(), PAUSED))


def fingerprint(body: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What wakes a job at once: the interval and the command annotations."""
    spec = body.get("spec") or {}
    analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
    interval = str(analysis.get("interval") or "")
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    commands = tuple(sorted((k, str(v)) for k, v in annotations.items() if k in _COMMAND_KEYS))
    return interval, commands


@dataclass
class _Job:
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    fingerprint: tuple[str, tuple[tuple[str, str], ...]] = ("", ())
    passes: int = 0
    uid: str = ""


class Scheduler:
    def __init__(
        self,
        run_pass: RunPass,
        *,
        default_interval: float = 60.0,
        time_scale: float = 1.0,
        on_lateness: Callable[[float], None] | None = None,
        on_count: Callable[[str, int], None] | None = None,
    ) -> None:
        self.run_pass = run_pass
        self.default_interval = default_interval
        self.time_scale = time_scale  # < 1 runs every interval faster (demos and tests only)
        self.on_lateness = on_lateness  # seconds a pass started after it was due
        self.on_count = on_count  # canaries per namespace
        self.jobs: dict[tuple[str, str], _Job] = {}

    def _count(self, namespace: str) -> None:
        if self.on_count is not None:
            self.on_count(namespace, sum(1 for ns, _ in self.jobs if ns == namespace))

    def seen(self, namespace: str, name: str, body: Mapping[str, Any]) -> None:
        """A watch event for a Canary: start its job, or wake it if it must act now."""
        key = (namespace, name)
        job = self.jobs.get(key)
        print_ = fingerprint(body)
        uid = str((body.get("metadata") or {}).get("uid") or "")
        if job is not None and job.uid and uid and job.uid != uid and job.task is not None:
            job.task.cancel()  # the Canary was deleted and created again under the same name
            job = None
        if job is None or job.task is None or job.task.done():
            job = _Job(fingerprint=print_, uid=uid)
            self.jobs[key] = job
            job.task = asyncio.create_task(
                self._loop(namespace, name, job), name=f"canary:{namespace}/{name}"
            )
            self._count(namespace)
            return
        if print_ != job.fingerprint:
            job.fingerprint = print_
            job.wake.set()

    def wake(self, namespace: str, name: str) -> None:
        job = self.jobs.get((namespace, name))
        if job is not None:
            job.wake.set()

    async def forget(self, namespace: str, name: str, uid: str = "") -> None:
        current = self.jobs.get((namespace, name))
        if current is not None and uid and current.uid and current.uid != uid:
            return  # a late DELETED of an older object with the same name
        job = self.jobs.pop((namespace, name), None)
        self._count(namespace)
        if job is not None and job.task is not None:
            job.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job.task

    async def stop(self) -> None:
        for namespace, name in list(self.jobs):
            await self.forget(namespace, name)

    async def _loop(self, namespace: str, name: str, job: _Job) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        due = loop.time()
        while True:
            job.wake.clear()
            if self.on_lateness is not None:
                self.on_lateness(max(0.0, loop.time() - due))
            try:
                delay = await self.run_pass(namespace, name)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pass for canary %s/%s failed; retrying", namespace, name)
                delay = ERROR_BACKOFF[min(failures, len(ERROR_BACKOFF) - 1)]
                failures += 1
            job.passes += 1
            if delay is None:
                # The Canary is gone (or finalized): end, unless a newer job replaced us.
                if self.jobs.get((namespace, name)) is job:
                    del self.jobs[(namespace, name)]
                    self._count(namespace)
                return
            delay *= self.time_scale
            due = loop.time() + max(delay, 0.0)
            if delay <= 0:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(job.wake.wait(), timeout=delay)
            due = min(due, loop.time())  # woken early: due now
