"""What the dashboard knows of the cluster: the Canaries, watched, and whether it can see them.

One :class:`~canary.adapters.cache.Informer` per namespace shown (one for all of them by
default) lists the Canaries once and then watches them, resuming after a dropped watch and
relisting after a 410, as the controller's own caches do. Every change bumps :attr:`Board.version`
and wakes the pages' event streams (:meth:`Board.changed`): nothing polls the API for objects.

Trouble is shown, not raised: a Canary kind that is not served (the CRDs are not installed), an
API server that cannot be reached, or a list the user may not make become a :class:`Problem`
that the pages show as a banner while the informers keep retrying.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from canary.adapters.cache import CacheStats, Informer
from canary.adapters.kube import KubeClient
from canary.ports import KubeError

__all__ = ["API_VERSION", "Board", "Problem"]

API_VERSION = "canary.gitops.dev/v1beta1"
MONITOR_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Problem:
    """Why the dashboard cannot show the canaries as they are (a banner on every page)."""

    title: str
    detail: str
    hint: str = ""


class Board:
    """The Canaries of ``namespaces`` (None: all), kept current by watching them."""

    def __init__(self, client: KubeClient, namespaces: Sequence[str] | None) -> None:
        self.client = client
        self.namespaces = tuple(namespaces) if namespaces else None
        self.version = 0
        self._changed = asyncio.Event()
        self.informers = [
            Informer(
                client,
                API_VERSION,
                "Canary",
                namespace=namespace,
                listeners=[self._heard],
                stats=CacheStats(),
            )
            for namespace in (self.namespaces or (None,))
        ]
        self._monitor: asyncio.Task[None] | None = None
        self._reachable = True
        self._signature: Any = None

    # -- running -------------------------------------------------------------------------

    def start(self) -> None:
        for informer in self.informers:
            informer.start()
        self._monitor = asyncio.create_task(self._watch_health(), name="dashboard-health")

    async def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        for informer in self.informers:
            await informer.stop()

    def _heard(self, _kind: str, _obj: Any) -> None:
        self.bump()

    def bump(self) -> None:
        """Something changed: wake everyone waiting in :meth:`changed`."""
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, since: int, timeout: float) -> bool:
        """Wait until :attr:`version` differs from ``since`` (True) or ``timeout`` (False)."""
        if self.version != since:
            return True
        event = self._changed
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            return self.version != since
        return True

    async def _watch_health(self) -> None:
        """Bump when the informers' health changes (synced, an error, a kind not served), and
        check that an API server a watch failed on answers again (the informer keeps its last
        error until its next watch ends)."""
        while True:
            if any(i.last_error for i in self.informers):
                try:
                    await self.client.get_path("/version")
                    self._reachable = True
                except KubeError:
                    self._reachable = False
            signature = (
                self._reachable,
                tuple((i.synced.is_set(), i.last_error, i.not_served) for i in self.informers),
            )
            if signature != self._signature:
                self._signature = signature
                self.bump()
            await asyncio.sleep(MONITOR_SECONDS)

    async def settle(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) for the first lists, or for a problem to show: a
        page asked for right after the start shows the canaries, not "connecting"."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.connecting:
                    await self.changed(self.version, timeout)

    @property
    def connecting(self) -> bool:
        return any(
            not i.synced.is_set() and not i.last_error and not i.not_served for i in self.informers
        )

    # -- reading -------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.informers)

    def canaries(self) -> list[Mapping[str, Any]]:
        """Every Canary shown, sorted by namespace then name."""
        found: list[Mapping[str, Any]] = []
        for informer in self.informers:
            found.extend(informer.items())
        return sorted(found, key=_key)

    def canary(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        for informer in self.informers:
            if informer.covers(namespace):
                found = informer.get(name, namespace)
                if found is not None:
                    return found
        return None

    def covers(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    def problem(self) -> Problem | None:
        """The trouble to show, or None when the canaries are current."""
        for informer in self.informers:
            where = f" in namespace {informer.namespace}" if informer.namespace else ""
            if informer.not_served:
                return Problem(
                    "The Canary resource is not installed",
                    f"the API server does not serve canary.gitops.dev/v1beta1 Canary{where}.",
                    "Install canary-engine's CRDs: kubectl apply -f crds/ "
                    "(the dashboard picks them up when they appear).",
                )
            error = informer.last_error
            if not informer.synced.is_set():
                if not error:
                    return Problem("Connecting to the cluster…", f"listing the Canaries{where}.")
                hint = "The dashboard keeps retrying."
                lowered = error.lower()
                if "forbidden" in lowered or "403" in lowered:
                    hint = (
                        "Your kubeconfig's user may not list Canaries there; "
                        "choose namespaces with -n NAMESPACE."
                    )
                return Problem(f"Cannot list the Canaries{where}", error, hint)
            if error and not self._reachable:
                return Problem(
                    "The API server cannot be reached",
                    error,
                    "What is shown is the last known state; the dashboard keeps retrying.",
                )
        return None


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
