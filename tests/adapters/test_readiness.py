"""Readiness rules of Deployments and DaemonSets (reference/flagger.md 2.9, checklist 13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from canary.adapters.readiness import (
    daemonset_readiness,
    deployment_readiness,
    parse_time,
    readiness,
    threshold_count,
)
from canary.core.observations import Readiness
from tests.adapters.builders import daemonset, deployment

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def stamp(seconds_ago: int) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def dep_status(
    *,
    replicas: int = 2,
    updated: int = 2,
    available: int = 2,
    observed: int = 1,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "observedGeneration": observed,
        "replicas": replicas,
        "updatedReplicas": updated,
        "availableReplicas": available,
        "readyReplicas": available,
        "conditions": conditions or [],
    }


def unavailable_since(seconds_ago: int) -> dict[str, Any]:
    return {
        "type": "Available",
        "status": "False",
        "reason": "MinimumReplicasUnavailable",
        "lastUpdateTime": stamp(seconds_ago),
        "lastTransitionTime": stamp(seconds_ago),
    }


DEPLOYMENT_CASES = [
    pytest.param(
        deployment(status=dep_status()), 100, Readiness.ok(), id="all-updated-and-available"
    ),
    pytest.param(
        deployment(generation=2, status=dep_status(observed=1)),
        100,
        Readiness.waiting(
            "waiting for rollout to finish: observed deployment generation less than desired generation"
        ),
        id="generation-not-observed",
    ),
    pytest.param(
        deployment(
            status=dep_status(
                updated=1,
                conditions=[
                    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
                ],
            )
        ),
        100,
        Readiness.failed('deployment "podinfo" exceeded its progress deadline'),
        id="progress-deadline-exceeded-is-final",
    ),
    pytest.param(
        deployment(status=dep_status(replicas=2, updated=1, available=1)),
        100,
        Readiness.waiting(
            "waiting for rollout to finish: 1 out of 2 new replicas have been updated"
        ),
        id="replicas-not-updated",
    ),
    pytest.param(
        deployment(status=dep_status(replicas=3, updated=2, available=2)),
        100,
        Readiness.waiting("waiting for rollout to finish: 1 old replicas are pending termination"),
        id="old-replicas-terminating",
    ),
    pytest.param(
        deployment(status=dep_status(available=1)),
        100,
        Readiness.waiting(
            "waiting for rollout to finish: 1 of 2 (readyThreshold 100%) updated replicas are available"
        ),
        id="below-ready-threshold",
    ),
    pytest.param(
        deployment(status=dep_status(available=1)), 50, Readiness.ok(), id="threshold-50-met"
    ),
    pytest.param(
        deployment(replicas=10, status=dep_status(replicas=10, updated=10, available=7)),
        70,
        Readiness.ok(),
        id="threshold-is-exact-floor",
    ),
    pytest.param(
        deployment(replicas=10, status=dep_status(replicas=10, updated=10, available=6)),
        70,
        Readiness.waiting(
            "waiting for rollout to finish: 6 of 10 (readyThreshold 70%) updated replicas are available"
        ),
        id="threshold-70-missed",
    ),
    pytest.param(
        deployment(status=dep_status(available=0, conditions=[unavailable_since(601)])),
        100,
        Readiness(
            False,
            "waiting for rollout to finish: 0 of 2 (readyThreshold 100%) updated replicas are available",
            retriable=False,
        ),
        id="unavailable-past-canary-deadline-is-final",
    ),
    pytest.param(
        deployment(status=dep_status(available=0, conditions=[unavailable_since(599)])),
        100,
        Readiness.waiting(
            "waiting for rollout to finish: 0 of 2 (readyThreshold 100%) updated replicas are available"
        ),
        id="unavailable-within-deadline-retriable",
    ),
    pytest.param(
        deployment(status=dep_status(conditions=[unavailable_since(3600)])),
        100,
        Readiness.ok(),
        id="stale-unavailable-condition-but-ready",
    ),
    pytest.param(
        deployment(replicas=0, status=dep_status(replicas=0, updated=0, available=0)),
        100,
        Readiness.ok(),
        id="scaled-to-zero",
    ),
]


@pytest.mark.parametrize(("obj", "threshold", "expected"), DEPLOYMENT_CASES)
def test_deployment_readiness(obj: dict[str, Any], threshold: int, expected: Readiness) -> None:
    assert deployment_readiness(obj, threshold, 600, NOW) == expected


def test_deployment_deadline_uses_the_given_deadline() -> None:
    obj = deployment(status=dep_status(available=0, conditions=[unavailable_since(120)]))
    assert deployment_readiness(obj, 100, 60, NOW).retriable is False
    assert deployment_readiness(obj, 100, 600, NOW).retriable is True


def test_naive_now_is_taken_as_utc() -> None:
    obj = deployment(status=dep_status(available=0, conditions=[unavailable_since(601)]))
    naive = NOW.replace(tzinfo=None)
    assert deployment_readiness(obj, 100, 600, naive).retriable is False


def ds_status(
    desired: int = 3, updated: int = 3, available: int = 3, observed: int = 1
) -> dict[str, Any]:
    return {
        "observedGeneration": observed,
        "desiredNumberScheduled": desired,
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
    }


DAEMONSET_CASES = [
    pytest.param(daemonset(status=ds_status()), 100, None, Readiness.ok(), id="ready"),
    pytest.param(
        daemonset(generation=3, status=ds_status(observed=2)),
        100,
        None,
        Readiness.waiting(
            "waiting for rollout to finish: observed daemonset generation less than desired generation"
        ),
        id="generation-not-observed",
    ),
    pytest.param(
        daemonset(status=ds_status(updated=1, available=1)),
        100,
        None,
        Readiness.waiting("waiting for rollout to finish: 1 out of 3 new pods have been updated"),
        id="pods-not-updated",
    ),
    pytest.param(
        daemonset(status=ds_status(available=2)),
        100,
        None,
        Readiness.waiting(
            "waiting for rollout to finish: 2 of 3 (readyThreshold 100%) updated pods are available"
        ),
        id="below-threshold",
    ),
    pytest.param(
        daemonset(status=ds_status(available=2)), 60, None, Readiness.ok(), id="threshold-60-met"
    ),
    pytest.param(
        daemonset(status=ds_status(available=2)),
        100,
        NOW - timedelta(seconds=700),
        Readiness.failed("exceeded its progressDeadlineSeconds: 600"),
        id="past-deadline-since-rollout-start",
    ),
    pytest.param(
        daemonset(status=ds_status(available=2)),
        100,
        NOW - timedelta(seconds=100),
        Readiness.waiting(
            "waiting for rollout to finish: 2 of 3 (readyThreshold 100%) updated pods are available"
        ),
        id="within-deadline",
    ),
    pytest.param(
        daemonset(status=ds_status(desired=0, updated=0, available=0)),
        100,
        None,
        Readiness.ok(),
        id="no-node-selected",
    ),
]


@pytest.mark.parametrize(("obj", "threshold", "since", "expected"), DAEMONSET_CASES)
def test_daemonset_readiness(
    obj: dict[str, Any], threshold: int, since: datetime | None, expected: Readiness
) -> None:
    assert daemonset_readiness(obj, threshold, 600, NOW, since) == expected


def test_readiness_dispatches_on_kind() -> None:
    ds = daemonset(status=ds_status(updated=0, available=0))
    dep = deployment(status=dep_status(updated=0, available=0))
    assert "new pods" in readiness(ds, 100, 600, NOW).message
    assert "new replicas" in readiness(dep, 100, 600, NOW).message


@pytest.mark.parametrize(
    ("total", "percent", "expected"),
    [(0, 100, 0), (1, 100, 1), (3, 50, 1), (10, 70, 7), (10, 0, 0), (7, 99, 6), (4, 150, 4)],
)
def test_threshold_count_is_floor_of_exact_product(total: int, percent: int, expected: int) -> None:
    assert threshold_count(total, percent) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T12:00:00Z", NOW),
        ("2026-01-01T13:00:00+01:00", NOW),
        ("not a time", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_time(text: Any, expected: datetime | None) -> None:
    assert parse_time(text) == expected
