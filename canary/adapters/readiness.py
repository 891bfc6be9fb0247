"""Is a workload ready? Flagger's readiness rules as pure functions of its status.

Why it exists: the state machine only needs three facts about the target and the
primary — ready, or not ready and why, and whether waiting can still help — and those
facts come from rules with many details (reference/flagger.md 2.9, checklist 13-14):
observed generation, updated and old replicas, the ready threshold, the Deployment's
own ``ProgressDeadlineExceeded`` and the Canary's ``progressDeadlineSeconds`` measured
from the ``Available=False/MinimumReplicasUnavailable`` condition. Keeping the rules
here, pure and with the time passed in, makes them table-testable; the lead may move
them into `canary.core` later.

Messages are Flagger's (the controller prefixes ``<name>.<namespace> not ready:``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from canary.core.observations import Readiness

__all__ = [
    "daemonset_readiness",
    "deployment_readiness",
    "parse_time",
    "readiness",
    "threshold_count",
]


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp from the API (``2026-01-02T03:04:05Z``), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def threshold_count(total: int, threshold_percent: int) -> int:
    """How many of ``total`` must be available: ``floor(total * threshold%)``, exactly."""
    return (max(0, total) * max(0, min(100, threshold_percent))) // 100


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _condition(status: Mapping[str, Any], ctype: str) -> Mapping[str, Any] | None:
    for cond in status.get("conditions") or ():
        if isinstance(cond, Mapping) and cond.get("type") == ctype:
            return cond
    return None


def _generation_pending(obj: Mapping[str, Any]) -> bool:
    generation = _int((obj.get("metadata") or {}).get("generation"))
    observed = _int((obj.get("status") or {}).get("observedGeneration"))
    return generation > observed


def deployment_readiness(
    deployment: Mapping[str, Any],
    threshold_percent: int,
    deadline_seconds: int,
    now: datetime,
) -> Readiness:
    """Flagger's rules for a Deployment, in order.

    1. generation not yet observed ⇒ waiting (retriable);
    2. ``Progressing`` with reason ``ProgressDeadlineExceeded`` ⇒ failed;
    3. otherwise not ready while updated < desired replicas, old replicas remain, or
       fewer than ``floor(updated * threshold%)`` are available — and that is final
       (non-retriable) once ``Available=False/MinimumReplicasUnavailable`` has lasted
       longer than ``deadline_seconds``.
    """
    now = _aware(now)
    name = (deployment.get("metadata") or {}).get("name", "")
    status: Mapping[str, Any] = deployment.get("status") or {}
    spec: Mapping[str, Any] = deployment.get("spec") or {}
    if _generation_pending(deployment):
        return Readiness.waiting(
            "waiting for rollout to finish: observed deployment generation less than desired generation"
        )
    retriable = True
    available = _condition(status, "Available")
    if (
        available is not None
        and available.get("status") == "False"
        and available.get("reason") == "MinimumReplicasUnavailable"
    ):
        since = parse_time(available.get("lastUpdateTime")) or parse_time(
            available.get("lastTransitionTime")
        )
        if since is not None and since + timedelta(seconds=deadline_seconds) < now:
            retriable = False
    progressing = _condition(status, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Readiness.failed(f'deployment "{name}" exceeded its progress deadline')

    desired = spec.get("replicas")
    updated = _int(status.get("updatedReplicas"))
    message = ""
    if isinstance(desired, int) and updated < desired:
        message = f"waiting for rollout to finish: {updated} out of {desired} new replicas have been updated"
    elif _int(status.get("replicas")) > updated:
        old = _int(status.get("replicas")) - updated
        message = f"waiting for rollout to finish: {old} old replicas are pending termination"
    elif _int(status.get("availableReplicas")) < threshold_count(updated, threshold_percent):
        message = (
            f"waiting for rollout to finish: {_int(status.get('availableReplicas'))} of {updated} "
            f"(readyThreshold {threshold_percent}%) updated replicas are available"
        )
    if not message:
        return Readiness.ok()
    return Readiness(False, message, retriable)


def daemonset_readiness(
    daemonset: Mapping[str, Any],
    threshold_percent: int,
    deadline_seconds: int,
    now: datetime,
    since: datetime | None = None,
) -> Readiness:
    """Flagger's rules for a DaemonSet.

    A DaemonSet has no progress conditions, so the deadline counts from ``since``, the
    time the rollout began (Flagger uses the Canary's ``lastTransitionTime``); without it
    the readiness never becomes final.
    """
    now = _aware(now)
    if _generation_pending(daemonset):
        return Readiness.waiting(
            "waiting for rollout to finish: observed daemonset generation less than desired generation"
        )
    status: Mapping[str, Any] = daemonset.get("status") or {}
    desired = _int(status.get("desiredNumberScheduled"))
    updated = _int(status.get("updatedNumberScheduled"))
    available = _int(status.get("numberAvailable"))
    not_updated = updated < desired
    not_available = available < threshold_count(desired, threshold_percent)
    if not not_updated and not not_available:
        return Readiness.ok()
    if since is not None and _aware(since) + timedelta(seconds=deadline_seconds) < now:
        return Readiness.failed(f"exceeded its progressDeadlineSeconds: {deadline_seconds}")
    if not_updated:
        return Readiness.waiting(
            f"waiting for rollout to finish: {updated} out of {desired} new pods have been updated"
        )
    return Readiness.waiting(
        f"waiting for rollout to finish: {available} of {desired} "
        f"(readyThreshold {threshold_percent}%) updated pods are available"
    )


def readiness(
    workload: Mapping[str, Any],
    threshold_percent: int,
    deadline_seconds: int,
    now: datetime,
    since: datetime | None = None,
) -> Readiness:
    """`deployment_readiness` or `daemonset_readiness`, by the object's kind."""
    if workload.get("kind") == "DaemonSet":
        return daemonset_readiness(workload, threshold_percent, deadline_seconds, now, since)
    return deployment_readiness(workload, threshold_percent, deadline_seconds, now)
