"""Kubernetes Events for every decision, aggregated the way kubectl expects.

Each Event is a core/v1 Event about the Canary with reason ``Synced`` (as
Flagger), type Normal or Warning, and source component ``canary-engine``. A
message repeated within ten minutes bumps ``count`` and ``lastTimestamp`` of the
existing Event instead of creating a new one, so a halted canary shows
"x12 over 12m" rather than twelve Events. Every Event is also logged and handed
to the event webhooks. Posting an Event never fails a tick: errors are logged.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from canary.core import EmitEvent, EventType
from canary.model import Canary
from canary.ports import Kube, KubeError
from canary.timestamps import format_time

log = logging.getLogger("canary.events")

COMPONENT = "canary-engine"
REASON = "Synced"
AGGREGATE_SECONDS = 600.0
CACHE_SIZE = 4096

Forwarder = Callable[[Canary, EmitEvent], Awaitable[None]]


def _now() -> str:
    return format_time(datetime.now(UTC))


class EventRecorder:
    def __init__(self, kube: Kube, *, instance: str = "", forward: Forwarder | None = None) -> None:
        self.kube = kube
        self.instance = instance
        self.forward = forward
        self._recent: OrderedDict[tuple[str, str, str, str], tuple[str, int, float]] = OrderedDict()

    async def emit(self, canary: Canary, event: EmitEvent) -> None:
        level = logging.WARNING if event.type is EventType.WARNING else logging.INFO
        log.log(level, "%s/%s: %s", canary.namespace, canary.name, event.message)
        try:
            await self._post(canary, event)
        except KubeError as exc:
            log.warning("could not record event for %s/%s: %s", canary.namespace, canary.name, exc)
        if self.forward is not None:
            try:
                await self.forward(canary, event)
            except Exception as exc:  # forwarding is best effort by design
                log.warning(
                    "event webhook for %s/%s failed: %s", canary.namespace, canary.name, exc
                )

    async def _post(self, canary: Canary, event: EmitEvent) -> None:
        await self.post(
            {
                "apiVersion": "canary.gitops.dev/v1beta1",
                "kind": "Canary",
                "name": canary.name,
                "namespace": canary.namespace,
                "uid": canary.uid,
            },
            event.type.value,
            REASON,
            event.message,
        )

    async def emit_about(
        self, involved: Mapping[str, str], type_: str, reason: str, message: str
    ) -> None:
        """An Event about any object (a GitSource, say); logged, never raises."""
        level = logging.WARNING if type_ == "Warning" else logging.INFO
        log.log(
            level,
            "%s %s/%s: %s",
            involved.get("kind"),
            involved.get("namespace"),
            involved.get("name"),
            message,
        )
        try:
            await self.post(involved, type_, reason, message)
        except KubeError as exc:
            log.warning(
                "could not record event for %s/%s: %s",
                involved.get("namespace"),
                involved.get("name"),
                exc,
            )

    async def post(
        self, involved: Mapping[str, str], type_: str, reason: str, message: str
    ) -> None:
        namespace, name = str(involved.get("namespace", "")), str(involved.get("name", ""))
        key = (namespace, f"{involved.get('kind')}/{name}", type_, message)
        stamp = _now()
        cached = self._recent.get(key)
        if cached is not None and time.monotonic() - cached[2] < AGGREGATE_SECONDS:
            event_name, count, _ = cached
            try:
                await self.kube.patch(
                    "v1",
                    "Event",
                    event_name,
                    namespace,
                    {"count": count + 1, "lastTimestamp": stamp},
                )
                self._remember(key, event_name, count + 1)
                return
            except KubeError:
                pass  # the Event expired or was deleted: create a new one
        created = await self.kube.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": f"{name}.", "namespace": namespace},
                "involvedObject": dict(involved),
                "reason": reason,
                "message": message[:1024],
                "type": type_,
                "source": {"component": COMPONENT},
                "reportingComponent": COMPONENT,
                "reportingInstance": self.instance or COMPONENT,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
            }
        )
        self._remember(key, str(created.get("metadata", {}).get("name", "")), 1)

    def _remember(self, key: tuple[str, str, str, str], name: str, count: int) -> None:
        self._recent[key] = (name, count, time.monotonic())
        self._recent.move_to_end(key)
        while len(self._recent) > CACHE_SIZE:
            self._recent.popitem(last=False)
