"""The alert catalogue (reference 5.1) and its metadata fields: checklist item 42.

Each row drives a scenario and finds the alert it must send: Flagger's exact message, its
severity, and whether it carries the metadata fields (Target, Failed checks threshold,
Progress deadline, Traffic routing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from canary.core import Alert, AlertKind, MetricResult, Outcome, Readiness
from canary.model import Phase, Severity
from tests.core.harness import (
    Script,
    canary_doc,
    fail_from,
    finished,
    hook,
    run,
    running_status,
    running_world,
    single_step,
)


def alerts_of(result: Any) -> list[Alert]:
    return list(result.alerts())


def initialized() -> list[Alert]:
    return alerts_of(run(canary_doc({"stepWeight": 10}), 2, start="fresh"))


def started() -> list[Alert]:
    return alerts_of(run(canary_doc({"stepWeight": 10}), 1))


def waiting_approval() -> list[Alert]:
    doc = canary_doc({"stepWeight": 10, "webhooks": [hook("gate", "confirm-rollout")]})
    return alerts_of(run(doc, 3, Script(hooks={"gate": False})))


def waiting_promotion() -> list[Alert]:
    doc = canary_doc({"stepWeight": 100, "webhooks": [hook("promo", "confirm-promotion")]})
    return alerts_of(run(doc, 5, Script(hooks={"promo": False})))


def waiting_traffic_increase() -> list[Alert]:
    doc = canary_doc({"stepWeight": 10, "webhooks": [hook("cti", "confirm-traffic-increase")]})
    return alerts_of(run(doc, 4, Script(hooks={"cti": False})))


def rollback_webhook() -> list[Alert]:
    doc = canary_doc({"stepWeight": 10, "webhooks": [hook("rb", "rollback")]})
    return alerts_of(run(doc, 4, Script(hooks={"rb": True}), until=finished))


def threshold() -> list[Alert]:
    doc = canary_doc({"stepWeight": 10, "threshold": 2})
    return alerts_of(run(doc, 8, Script(metrics=fail_from(3)), until=finished))


FINDING = "success rate 94.52% (primary 100%, n=475), worse by 5.48 points, p<0.001"


def regression() -> list[Alert]:
    """The statistical judge's conclusive FAIL (compare.failFast) at the second check."""

    def results(tick: int, names: tuple[str, ...]) -> tuple[MetricResult, ...]:
        outcome = Outcome.FAIL if tick >= 4 else Outcome.PASS
        return tuple(MetricResult(n, outcome, FINDING, fail_fast=True) for n in names)

    doc = canary_doc({"stepWeight": 10})
    return alerts_of(run(doc, 8, Script(results=results), until=finished))


def progress_deadline() -> list[Alert]:
    return list(
        single_step(
            canary_doc({"stepWeight": 10}),
            running_status(weight=10),
            running_world(90, 10),
            Script(canary_ready=Readiness.failed("timeout")),
        ).alerts
    )


def promotion_failed() -> list[Alert]:
    return list(
        single_step(
            canary_doc({"stepWeight": 10}),
            running_status(Phase.PROMOTING, weight=100),
            running_world(0, 100),
            Script(primary_ready=Readiness.failed("timeout")),
        ).alerts
    )


def promoted() -> list[Alert]:
    return alerts_of(run(canary_doc({"stepWeight": 50}), 8, until=finished))


def skipped() -> list[Alert]:
    return alerts_of(run(canary_doc({"stepWeight": 50}, skipAnalysis=True), 3, until=finished))


CATALOGUE: list[Any] = [
    pytest.param(
        initialized,
        AlertKind.INITIALIZED,
        "New Deployment detected, initialization completed.",
        Severity.INFO,
        True,
        id="item42-initialized",
    ),
    pytest.param(
        started,
        AlertKind.STARTED,
        "New revision detected, progressing canary analysis.",
        Severity.INFO,
        True,
        id="item42-new-revision",
    ),
    pytest.param(
        waiting_approval,
        AlertKind.WAITING_APPROVAL,
        "Canary is waiting for approval.",
        Severity.WARN,
        False,
        id="item42-confirm-rollout",
    ),
    pytest.param(
        waiting_promotion,
        AlertKind.WAITING_PROMOTION,
        "Canary promotion is waiting for approval.",
        Severity.WARN,
        False,
        id="item42-confirm-promotion",
    ),
    pytest.param(
        waiting_traffic_increase,
        AlertKind.WAITING_TRAFFIC_INCREASE,
        "Canary traffic increase is waiting for approval.",
        Severity.WARN,
        False,
        id="item42-confirm-traffic-increase",
    ),
    pytest.param(
        rollback_webhook,
        AlertKind.ROLLBACK_WEBHOOK,
        "Rolling back manual webhook invoked",
        Severity.WARN,
        False,
        id="item42-rollback-webhook",
    ),
    pytest.param(
        threshold,
        AlertKind.THRESHOLD_REACHED,
        "Failed checks threshold reached 2",
        Severity.ERROR,
        False,
        id="item42-threshold",
    ),
    pytest.param(
        regression,
        AlertKind.REGRESSION,
        # the finding once, not "...primary: conclusive regression: <finding>"
        f"Canary is conclusively worse than the primary: {FINDING}",
        Severity.ERROR,
        False,
        id="conclusive-regression",
    ),
    pytest.param(
        promotion_failed,
        AlertKind.PROMOTION_FAILED,
        "Promotion failed, primary not ready: timeout",
        Severity.ERROR,
        False,
        id="item42-promotion-failed",
    ),
    pytest.param(
        promoted,
        AlertKind.PROMOTED,
        "Canary analysis completed successfully, promotion finished.",
        Severity.INFO,
        False,
        id="item42-success",
    ),
    pytest.param(
        skipped,
        AlertKind.SKIPPED,
        "Canary analysis was skipped, promotion finished.",
        Severity.INFO,
        False,
        id="item42-skipped",
    ),
]


@pytest.mark.parametrize(("scenario", "kind", "message", "severity", "metadata"), CATALOGUE)
def test_item42_alert_catalogue(
    scenario: Callable[[], list[Alert]],
    kind: AlertKind,
    message: str,
    severity: Severity,
    metadata: bool,
) -> None:
    found = [a for a in scenario() if a.kind is kind]
    assert len(found) == 1, [a.message for a in scenario()]
    alert = found[0]
    assert (alert.message, alert.severity, alert.with_metadata) == (message, severity, metadata)
    assert (alert.canary_name, alert.namespace, alert.target) == (
        "podinfo",
        "test",
        "Deployment/podinfo.test",
    )
    assert bool(alert.fields) is metadata


def test_item42_progress_deadline_alert_is_an_error() -> None:
    """The message itself is covered (xfail) in test_rollback.py."""
    (alert,) = progress_deadline()
    assert (alert.kind, alert.severity, alert.with_metadata) == (
        AlertKind.PROGRESS_DEADLINE,
        Severity.ERROR,
        False,
    )


@pytest.mark.parametrize(
    ("analysis", "provider", "routing"),
    [
        pytest.param(
            {"stepWeight": 10, "maxWeight": 50},
            "istio",
            "Weight step: 10 max: 50",
            id="item42-weight-step",
        ),
        pytest.param(
            {"stepWeights": [1, 2, 10, 80]},
            "istio",
            "Weight steps: 1,2,10,80 max: 80",
            id="item42-weight-steps",
        ),
        pytest.param({"iterations": 3}, "istio", "Blue/Green", id="item42-blue-green"),
        pytest.param(
            {"iterations": 3, "match": [{"headers": {"x": {"exact": "y"}}}]},
            "istio",
            "A/B Testing",
            id="item42-ab",
        ),
        pytest.param({}, "kubernetes", "Blue/Green", id="item42-kubernetes-forced-blue-green"),
    ],
)
def test_item42_metadata_fields(analysis: dict[str, Any], provider: str, routing: str) -> None:
    doc = canary_doc({**analysis, "threshold": 3}, provider=provider, progressDeadlineSeconds=120)
    (alert,) = run(doc, 1).alerts()
    assert alert.fields == (
        ("Target", "Deployment/podinfo.test"),
        ("Failed checks threshold", "3"),
        ("Progress deadline", "120s"),
        ("Traffic routing", routing),
    )


def test_alerts_carry_the_run_context() -> None:
    """Ours: an alert says what a message needs (revisions, images, failed checks, analysis)."""
    from tests.core.harness import World

    doc = canary_doc({"stepWeight": 10, "threshold": 1})
    result = run(
        doc,
        6,
        Script(metrics=fail_from(3, Outcome.FAIL)),
        world=World(revision="r1"),
        new_git_revision="r2",
        until=finished,
    )
    (alert,) = [a for a in result.alerts() if a.kind is AlertKind.THRESHOLD_REACHED]
    assert (alert.revision, alert.previous_revision) == ("r2", "r1")
    assert alert.images == ("ghcr.io/stefanprodan/podinfo:v2",)
    assert alert.previous_images == ("ghcr.io/stefanprodan/podinfo:6.0.0",)
    assert alert.failed_checks == 1 and alert.threshold == 1
    assert alert.duration_seconds == 180.0
    assert [m.name for m in alert.analysis] == ["request-success-rate"]
