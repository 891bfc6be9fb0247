"""Canaries, AlertProviders and alerts shared by the notification tests."""

from __future__ import annotations

from datetime import UTC, datetime

from canary.adapters.notifiers import ResolvedProvider
from canary.core.actions import Alert, AlertKind
from canary.model.canary import (
    AlertRef,
    AnalysisSpec,
    Canary,
    CanarySpec,
    ObjectRef,
    ServiceSpec,
    Severity,
    WebhookSpec,
)
from canary.model.resources import AlertProvider
from canary.model.status import MetricStatus

NOW = datetime(2026, 3, 1, 12, 30, 0, tzinfo=UTC)
SECRET_PATH = "T0SECRET/B0SECRET/xoxSECRETpath42"
TOKEN = "xoxb-token-that-must-not-leak-7731"


def canary(
    alerts: tuple[AlertRef, ...] = (),
    webhooks: tuple[WebhookSpec, ...] = (),
    *,
    name: str = "podinfo",
    namespace: str = "test",
    analysis: bool = True,
) -> Canary:
    spec = CanarySpec(
        target_ref=ObjectRef(kind="Deployment", name=name),
        service=ServiceSpec(name=name, port=9898),
        analysis=AnalysisSpec(alerts=alerts, webhooks=webhooks) if analysis else None,
    )
    return Canary(name=name, namespace=namespace, spec=spec, uid="uid-1234")


def provider(
    type_: str,
    address: str,
    *,
    name: str = "on-call",
    namespace: str = "test",
    token: str | None = None,
    proxy: str | None = None,
    template: str | None = None,
    timeout: float = 5.0,
    channel: str = "general",
    username: str = "canary-engine",
) -> ResolvedProvider:
    spec = AlertProvider(
        name=name,
        namespace=namespace,
        type=type_,
        address=address,
        channel=channel,
        username=username,
        message_template=template,
        timeout_seconds=timeout,
    )
    return ResolvedProvider(spec, address=address, token=token, proxy=proxy)


SUCCESS_RATE = MetricStatus(
    name="request-success-rate",
    outcome="Pass",
    summary="success rate 99.95% is above the minimum 99%",
    value=99.95,
    threshold=">= 99",
)
LATENCY = MetricStatus(
    name="request-duration",
    outcome="Pass",
    summary="p99 latency 212ms is below the maximum 500ms",
    value=212.0,
    threshold="<= 500",
    primary_value=230.0,
)
FAILING_RATE = MetricStatus(
    name="request-success-rate",
    outcome="Fail",
    summary="success rate 91.2% is below the minimum 99%",
    value=91.2,
    threshold=">= 99",
    primary_value=99.8,
)


def promoted() -> Alert:
    return Alert(
        kind=AlertKind.PROMOTED,
        severity=Severity.INFO,
        message="Canary analysis completed successfully, promotion finished.",
        canary_name="podinfo",
        namespace="test",
        target="Deployment/podinfo.test",
        revision="main@sha1:4f9c2e1ab3d2",
        previous_revision="main@sha1:77aa0b3c9e10",
        images=("ghcr.io/stefanprodan/podinfo:6.5.1",),
        previous_images=("ghcr.io/stefanprodan/podinfo:6.5.0",),
        weight=0,
        duration_seconds=754.0,
        analysis=(SUCCESS_RATE, LATENCY),
    )


def threshold_reached() -> Alert:
    return Alert(
        kind=AlertKind.THRESHOLD_REACHED,
        severity=Severity.ERROR,
        message="Failed checks threshold reached 5",
        canary_name="podinfo",
        namespace="test",
        target="Deployment/podinfo.test",
        revision="main@sha1:4f9c2e1ab3d2",
        previous_revision="main@sha1:77aa0b3c9e10",
        weight=20,
        failed_checks=5,
        threshold=5,
        duration_seconds=312.0,
        analysis=(FAILING_RATE, LATENCY),
    )


def reverted() -> Alert:
    return Alert(
        kind=AlertKind.REVERTED,
        severity=Severity.WARN,
        message="Reverted main@sha1:4f9c2e1ab3d2 in Git.",
        canary_name="podinfo",
        namespace="test",
        revision="main@sha1:4f9c2e1ab3d2",
        previous_revision="main@sha1:77aa0b3c9e10",
        revert_commit="9d1e0c5b7a3f2e4d6c8b0a1f3e5d7c9b1a2f4e6d",
    )


def waiting() -> Alert:
    return Alert(
        kind=AlertKind.WAITING_PROMOTION,
        severity=Severity.WARN,
        message="Canary promotion is waiting for approval.",
        canary_name="podinfo",
        namespace="test",
    )


def alert_of(kind: AlertKind, severity: Severity = Severity.INFO) -> Alert:
    return Alert(
        kind=kind,
        severity=severity,
        message=f"{kind.value} happened",
        canary_name="podinfo",
        namespace="test",
    )
