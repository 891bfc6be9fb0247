"""Wiring of the notification dispatcher: AlertProviders and Secrets from the API, and
the Canary status as the outbox of recorded alerts.

The dispatcher (canary.adapters.notifiers) routes and delivers; this module gives it a
resolver that reads the AlertProvider a canary's ``alerts[]`` names and the Secret it
references, the global notifier from flags and environment, the callback that turns a
given-up delivery into a Warning Event and a counter, and the one that removes a delivered
(or given-up) destination from ``status.pendingAlerts`` (`PendingAlertClearer`). A bad
AlertProvider is reported as a failed delivery naming the field, never as an exception in
a tick; an API error while reading it is retried by the dispatcher.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from canary.adapters.notifiers import (
    DeliveryOutcome,
    GlobalNotifierConfig,
    NotificationDispatcher,
    NotifierConfigError,
    PrometheusNotificationMetrics,
    ProviderRef,
    ResolvedProvider,
    RetryPolicy,
)
from canary.adapters.secrets import read_secret
from canary.core import Alert, EmitEvent, EventType
from canary.core.outbox import without_destination
from canary.model import API_VERSION, Canary, SpecError, SpecIssue, parse_alert_provider
from canary.model.status import CanaryStatus
from canary.ports import Conflict, Kube, KubeError

if TYPE_CHECKING:
    from canary.controller.events import EventRecorder
    from canary.controller.metrics import Metrics
    from canary.settings import Settings

log = logging.getLogger("canary.notify")

#: How long a message is tried (reading its AlertProvider, waiting its turn, every post)
#: before it is given up: a Warning Event, a counter, and it leaves the status.
DELIVERY_BUDGET_SECONDS = 120.0
CLEAR_ATTEMPTS = 8


class AlertProviderResolver:
    """Reads an AlertProvider and its Secret for the dispatcher.

    Returns None only when the AlertProvider does not exist. One that exists but
    cannot be used (a spec error, or a ``secretRef`` naming a Secret that does not
    exist) raises `NotifierConfigError` naming the field, which the dispatcher
    reports as "AlertProvider ns/name is invalid: <field>: <problem>" instead of
    "not found".
    """

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    async def __call__(self, ref: ProviderRef) -> ResolvedProvider | None:
        obj = await self.kube.get(API_VERSION, "AlertProvider", ref.name, ref.namespace)
        if obj is None:
            return None
        try:
            provider = parse_alert_provider(obj)
        except SpecError as exc:
            log.warning("AlertProvider %s/%s is invalid: %s", ref.namespace, ref.name, exc)
            raise NotifierConfigError(list(exc.errors or exc.issues)) from None
        secret: dict[str, str] | None = None
        if provider.secret_name:
            secret = await read_secret(self.kube, provider.secret_name, ref.namespace)
            if secret is None:
                raise NotifierConfigError(
                    [
                        SpecIssue(
                            "spec.secretRef.name",
                            f"Secret {ref.namespace}/{provider.secret_name} not found",
                        )
                    ]
                )
        return ResolvedProvider.from_secret(provider, secret)


class PendingAlertClearer:
    """Removes a destination that has its message (or was given up) from
    ``status.pendingAlerts``, at once, so a restart does not send it again.

    The write has the Canary's resourceVersion as a precondition and is made again on a
    conflict; when it cannot be made (the API server is down), the dispatcher's memory keeps
    the message from being sent twice by this process, and the next pass removes it.
    """

    def __init__(self, kube: Kube, *, attempts: int = CLEAR_ATTEMPTS, backoff: float = 1.0) -> None:
        self.kube = kube
        self.attempts = attempts
        self.backoff = backoff  # the first wait after an API error; doubles, at most 10 s

    async def __call__(
        self, canary: Canary, key: str, destination: str, outcome: DeliveryOutcome
    ) -> None:
        delay = 0.05
        for attempt in range(1, self.attempts + 1):
            try:
                await self._clear(canary, key, destination)
                return
            except Conflict:
                pass  # the Canary changed meanwhile: read it again
            except KubeError as exc:
                log.info(
                    "cannot remove notification %s of %s/%s from the status yet: %s",
                    key,
                    canary.namespace,
                    canary.name,
                    exc,
                )
                delay = max(delay, self.backoff)
            if attempt < self.attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        log.warning(
            "could not remove the %s notification %s of %s/%s from the status; the next pass will",
            outcome.value,
            key,
            canary.namespace,
            canary.name,
        )

    async def _clear(self, canary: Canary, key: str, destination: str) -> None:
        body = await self.kube.get(API_VERSION, "Canary", canary.name, canary.namespace)
        if body is None:
            return
        meta = body.get("metadata") or {}
        if canary.uid and meta.get("uid") and meta.get("uid") != canary.uid:
            return  # deleted and created again: not the Canary the alert was about
        stored = (body.get("status") or {}).get("pendingAlerts")
        pending = CanaryStatus.from_dict({"pendingAlerts": stored}).pending_alerts
        left = without_destination(pending, key, destination)
        if left == pending:
            return
        patch = {
            "metadata": {"resourceVersion": meta.get("resourceVersion")},
            "status": {"pendingAlerts": [p.to_dict() for p in left] or None},
        }
        await self.kube.patch(
            API_VERSION, "Canary", canary.name, canary.namespace, patch, subresource="status"
        )


def build_notifier(
    kube: Kube, options: Settings, events: EventRecorder, metrics: Metrics
) -> NotificationDispatcher:
    async def on_failure(canary: Canary, alert: Alert, reason: str) -> None:
        await events.emit(canary, EmitEvent(EventType.WARNING, reason))

    return NotificationDispatcher(
        AlertProviderResolver(kube),
        global_config=GlobalNotifierConfig.of(options.chat),
        cluster=options.cluster_name,
        on_failure=on_failure,
        on_settled=PendingAlertClearer(kube),
        metrics=PrometheusNotificationMetrics(
            None, total=metrics.notifications, failures=metrics.notification_failures
        ),
        # --time-scale (demos and tests) shortens the budget like every interval
        retry=RetryPolicy(give_up_after=DELIVERY_BUDGET_SECONDS * options.time_scale),
    )
