"""Leader election with a coordination.k8s.io Lease.

kopf's peering is not leader election (two equal-priority replicas both
freeze), so several replicas elect one leader here, in the manner of
client-go's leaderelection: the holder renews the Lease every ``renew`` seconds;
a candidate takes it over when ``renewTime + leaseDurationSeconds`` has passed;
every write carries the Lease's resourceVersion, so two candidates cannot both
win (the loser gets 409 Conflict). A leader that cannot renew before its own
lease would expire stops acting at once (``is_leader`` turns false before any
other replica may take over), and every tick checks ``is_leader`` before it acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from canary.controller.logs import describe
from canary.ports import Conflict, Kube, KubeError, NotFound
from canary.timestamps import format_micro, parse_time

log = logging.getLogger("canary.leader")


def _fmt(moment: datetime) -> str:
    return format_micro(moment)


def _parse(text: str | None) -> datetime | None:
    return parse_time(text) if text else None


class LeaderElector:
    """Holds (or waits for) the Lease; `is_leader` is what ticks check."""

    def __init__(
        self,
        kube: Kube,
        *,
        namespace: str,
        name: str = "canary-engine-leader",
        identity: str,
        lease_seconds: float = 15.0,
        renew_seconds: float = 5.0,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self._valid_until = 0.0  # monotonic deadline of our own lease
        self._task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()
        # Expiry is judged on our own clock, from when we last saw the record change
        # (as client-go does): the holder's wall clock may be skewed from ours.
        self._observed: tuple[object, object] | None = None
        self._observed_at = 0.0

    @property
    def is_leader(self) -> bool:
        loop = asyncio.get_running_loop()
        # Stop acting a safety margin before the lease could be taken over.
        return loop.time() < self._valid_until - min(1.0, self.lease_seconds / 10)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="leader-election")

    async def stop(self, *, release: bool = True) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if release and self.is_leader:
            with contextlib.suppress(KubeError):
                await self._release()
        self._valid_until = 0.0

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        was_leader = False
        while True:
            started = loop.time()
            try:
                if await asyncio.wait_for(self.try_acquire_or_renew(), timeout=self.renew_seconds):
                    self._valid_until = started + self.lease_seconds
            except (TimeoutError, KubeError) as exc:
                log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
            except Exception as exc:  # a malformed Lease must not end the election for good
                log.error(
                    "lease %s/%s: unexpected error; retrying: %s",
                    self.namespace,
                    self.name,
                    describe(exc),
                )
                log.debug("the unexpected error of the lease", exc_info=exc)
            leader = self.is_leader
            if leader != was_leader:
                log.info("%s %s leadership", self.identity, "acquired" if leader else "lost")
                was_leader = leader
                self.changed.set()
                self.changed = asyncio.Event()
            await asyncio.sleep(self.renew_seconds)

    async def try_acquire_or_renew(self) -> bool:
        now = datetime.now(UTC)
        lease = await self.kube.get("coordination.k8s.io/v1", "Lease", self.name, self.namespace)
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_seconds),
            "renewTime": _fmt(now),
        }
        if lease is None:
            spec["acquireTime"] = _fmt(now)
            spec["leaseTransitions"] = 0
            try:
                await self.kube.create(
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace},
                        "spec": spec,
                    }
                )
            except KubeError:
                return False
            return True
        current = lease.get("spec") or {}
        holder = current.get("holderIdentity")
        try:
            duration = float(current.get("leaseDurationSeconds") or self.lease_seconds)
        except (TypeError, ValueError):
            duration = self.lease_seconds
        clock = asyncio.get_running_loop().time()
        record = (holder, current.get("renewTime"))
        if record != self._observed:
            self._observed, self._observed_at = record, clock
        expired = not holder or clock > self._observed_at + duration
        if holder and holder != self.identity and not expired:
            return False
        if holder == self.identity:
            spec["acquireTime"] = current.get("acquireTime") or _fmt(now)
            spec["leaseTransitions"] = current.get("leaseTransitions") or 0
        else:
            spec["acquireTime"] = _fmt(now)
            try:
                transitions = int(current.get("leaseTransitions") or 0)
            except (TypeError, ValueError):
                transitions = 0
            spec["leaseTransitions"] = transitions + 1
        updated = dict(lease)
        updated["spec"] = spec
        try:
            await self.kube.replace(updated)
        except (Conflict, NotFound):
            return False
        return True

    async def _release(self) -> None:
        lease = await self.kube.get("coordination.k8s.io/v1", "Lease", self.name, self.namespace)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        updated = dict(lease)
        spec = dict(lease.get("spec") or {})
        spec["holderIdentity"] = None
        spec["renewTime"] = None
        updated["spec"] = spec
        with contextlib.suppress(Conflict, NotFound):
            await self.kube.replace(updated)


class AlwaysLeader:
    """Single-replica mode (leader election disabled)."""

    is_leader = True

    def start(self) -> None:
        pass

    async def stop(self, *, release: bool = True) -> None:
        pass
