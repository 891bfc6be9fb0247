"""Wiring of the notification dispatcher: AlertProviders and Secrets from the API.

The dispatcher (canary.adapters.notifiers) routes and delivers; this module
gives it a resolver that reads the AlertProvider a canary's ``alerts[]`` names
and the Secret it references, the global notifier from flags and environment,
and the callbacks that turn a given-up delivery into a Warning Event and a
counter. A bad AlertProvider is reported as a failed delivery naming the field,
never as an exception in a tick.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from canary.adapters.notifiers import (
    GlobalNotifierConfig,
    NotificationDispatcher,
    NotifierConfigError,
    PrometheusNotificationMetrics,
    ProviderRef,
    ResolvedProvider,
)
from canary.adapters.secrets import read_secret
from canary.core import Alert, EmitEvent, EventType
from canary.model import API_VERSION, Canary, SpecError, SpecIssue, parse_alert_provider
from canary.ports import Kube

if TYPE_CHECKING:
    from canary.controller.events import EventRecorder
    from canary.controller.metrics import Metrics
    from canary.settings import Settings

log = logging.getLogger("canary.notify")


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
        metrics=PrometheusNotificationMetrics(
            None, total=metrics.notifications, failures=metrics.notification_failures
        ),
    )
