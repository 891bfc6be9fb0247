"""Alerts that are not lost: ``status.pendingAlerts``, the Canary's outbox.

An alert is recorded in the Canary's status by the same write that records the transition
behind it (the pass's one status write); it is delivered after that write, and each
destination is removed from the record once it has the message or was given up on. A
controller killed in between finds the record in the status and delivers it; one that
delivered it removes it straight away, so a restart does not send it again (see
docs/notifications.md for the window that remains).

Everything here is a pure function of statuses and alerts: the idempotency key, the record
of an alert (its facts, never an address or a token) and back, and how a pass's list of
pending alerts is formed and merged with one changed meanwhile. The delivery itself is the
notifier's (`canary.adapters.notifiers`), the removal the controller's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from canary.core.actions import Alert, AlertKind
from canary.model.canary import Severity
from canary.model.status import CanaryStatus, MetricStatus, PendingAlert

__all__ = [
    "MAX_PENDING_ALERTS",
    "alert_from_record",
    "alert_key",
    "alert_record",
    "merge_pending",
    "pending_alerts",
    "with_pending",
    "without_destination",
]

#: At most this many alerts wait in one Canary's status; beyond it the oldest is given up.
MAX_PENDING_ALERTS = 20

Settled = Callable[[str, str], bool]
"""``(key, destination)``: whether that delivery is over (sent, or given up)."""


def alert_key(owner: str, old: CanaryStatus, alert: Alert, index: int = 0) -> str:
    """The idempotency key of an alert: its kind, the canary (``owner``: its uid), and the
    stored status the pass decided from, which names the run and the transition.

    A pass replayed from the same stored status gives the same key; any two passes that
    record a transition start from different statuses. ``index`` tells apart two alerts of
    the same kind in one pass.
    """
    basis = old.with_(pending_alerts=()).to_dict()
    raw = json.dumps([owner, alert.kind.value, index, basis], sort_keys=True, default=str)
    return f"{alert.kind.value}-{hashlib.sha256(raw.encode()).hexdigest()[:16]}"


def alert_record(alert: Alert) -> dict[str, Any]:
    """What a message is made of, as JSON for the status (``pendingAlerts[].alert``).

    The verdicts keep their numbers and sentences, not the judge's working details.
    """
    return {
        "severity": alert.severity.value,
        "message": alert.message,
        "withMetadata": alert.with_metadata,
        "canary": alert.canary_name,
        "namespace": alert.namespace,
        "target": alert.target,
        "revision": alert.revision,
        "previousRevision": alert.previous_revision,
        "images": list(alert.images),
        "previousImages": list(alert.previous_images),
        "weight": alert.weight,
        "failedChecks": alert.failed_checks,
        "threshold": alert.threshold,
        "durationSeconds": alert.duration_seconds,
        "analysis": [replace(m, details={}).to_dict() for m in alert.analysis],
        "revertCommit": alert.revert_commit,
        "pullRequest": alert.pull_request,
        "failure": alert.failure,
        "fields": [[name, value] for name, value in alert.fields],
    }


def alert_from_record(kind: str, record: Mapping[str, Any]) -> Alert | None:
    """The alert a record was made from; None for a kind this version does not know."""
    try:
        alert_kind = AlertKind(kind)
    except ValueError:
        return None
    try:
        severity = Severity(str(record.get("severity") or "info"))
    except ValueError:
        severity = Severity.INFO
    duration = record.get("durationSeconds")
    return Alert(
        kind=alert_kind,
        severity=severity,
        message=_text(record, "message"),
        with_metadata=record.get("withMetadata") is True,
        canary_name=_text(record, "canary"),
        namespace=_text(record, "namespace"),
        target=_text(record, "target"),
        revision=_text(record, "revision"),
        previous_revision=_text(record, "previousRevision"),
        images=_strings(record.get("images")),
        previous_images=_strings(record.get("previousImages")),
        weight=_number(record.get("weight")),
        failed_checks=_number(record.get("failedChecks")),
        threshold=_number(record.get("threshold")),
        duration_seconds=float(duration)
        if isinstance(duration, int | float) and not isinstance(duration, bool)
        else None,
        analysis=tuple(
            MetricStatus.from_dict(m) for m in _list(record.get("analysis")) if isinstance(m, dict)
        ),
        revert_commit=_text(record, "revertCommit"),
        pull_request=_text(record, "pullRequest"),
        failure=_text(record, "failure"),
        fields=tuple(
            (str(f[0]), str(f[1]))
            for f in _list(record.get("fields"))
            if isinstance(f, list) and len(f) == 2
        ),
    )


def pending_alerts(
    owner: str,
    old: CanaryStatus,
    alerts: Iterable[tuple[Alert, tuple[str, ...]]],
    created: str,
) -> tuple[PendingAlert, ...]:
    """The records of a pass's alerts, each with the destinations it is owed (an alert
    going nowhere is not recorded)."""
    out: list[PendingAlert] = []
    seen: dict[AlertKind, int] = {}
    for alert, destinations in alerts:
        index = seen.get(alert.kind, 0)
        seen[alert.kind] = index + 1
        if not destinations:
            continue
        out.append(
            PendingAlert(
                key=alert_key(owner, old, alert, index),
                kind=alert.kind.value,
                created=created,
                destinations=destinations,
                alert=alert_record(alert),
            )
        )
    return tuple(out)


def with_pending(
    status: CanaryStatus, added: Sequence[PendingAlert], settled: Settled
) -> tuple[CanaryStatus, tuple[PendingAlert, ...]]:
    """``status`` with its pending alerts still owed to someone, then ``added`` (a key
    already there is not added twice), oldest first; and the oldest beyond
    `MAX_PENDING_ALERTS`, which the caller gives up on."""
    kept: list[PendingAlert] = []
    for pending in status.pending_alerts:
        owed = tuple(d for d in pending.destinations if not settled(pending.key, d))
        if owed:
            kept.append(
                pending if owed == pending.destinations else replace(pending, destinations=owed)
            )
    keys = {p.key for p in kept}
    kept.extend(p for p in added if p.key not in keys)
    dropped = tuple(kept[:-MAX_PENDING_ALERTS]) if len(kept) > MAX_PENDING_ALERTS else ()
    return status.with_(pending_alerts=tuple(kept[len(dropped) :])), dropped


def merge_pending(
    old: Sequence[PendingAlert], new: Sequence[PendingAlert], fresh: Sequence[PendingAlert]
) -> tuple[PendingAlert, ...]:
    """A pass's pending alerts (``new``, decided from ``old``) on a status whose pending
    alerts changed meanwhile to ``fresh`` (a delivery removed what it delivered).

    What the pass added stays; of the rest, a destination stays only while both the pass
    and ``fresh`` still owe it.
    """
    fresh_by_key = {p.key: p for p in fresh}
    known = {p.key for p in old}
    out: list[PendingAlert] = []
    for pending in new:
        if pending.key not in known:
            out.append(pending)
            continue
        current = fresh_by_key.get(pending.key)
        if current is None:
            continue
        owed = tuple(d for d in pending.destinations if d in current.destinations)
        if owed:
            out.append(replace(pending, destinations=owed))
    return tuple(out)


def without_destination(
    pending: Sequence[PendingAlert], key: str, destination: str
) -> tuple[PendingAlert, ...]:
    """``pending`` with one delivery done: the alert goes when no destination is left."""
    out: list[PendingAlert] = []
    for p in pending:
        if p.key == key:
            owed = tuple(d for d in p.destinations if d != destination)
            if owed:
                out.append(replace(p, destinations=owed))
        else:
            out.append(p)
    return tuple(out)


def _text(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    return value if isinstance(value, str) else ""


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _strings(value: object) -> tuple[str, ...]:
    return tuple(v for v in _list(value) if isinstance(v, str))


def _number(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)
