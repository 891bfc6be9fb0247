"""The ``generic`` provider: one plain JSON object with a stable, documented schema.

For receivers we do not know (an incident tool, a chat bridge, a script) the
alert is posted as a flat JSON object whose keys are listed in `GENERIC_SCHEMA`
(a JSON Schema, also printed in docs/notifications.md). The schema is versioned
by ``schemaVersion``; keys are only ever added, never renamed or removed,
within a version. ``text`` is the human message (the AlertProvider's
messageTemplate when it has one), ``message`` is always Flagger's sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import Any, ClassVar

from canary.adapters.notifiers.base import WebhookSender
from canary.adapters.notifiers.rendering import Message
from canary.core.actions import AlertKind
from canary.model import MetricStatus

__all__ = ["GENERIC_SCHEMA", "SCHEMA_VERSION", "GenericSender", "generic_payload"]

SCHEMA_VERSION = "canary.gitops.dev/notification/v1"

_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING}

GENERIC_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "canary-engine generic notification",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "schemaVersion",
        "kind",
        "severity",
        "title",
        "message",
        "text",
        "canary",
        "namespace",
        "cluster",
        "target",
        "revision",
        "previousRevision",
        "images",
        "previousImages",
        "weight",
        "failedChecks",
        "threshold",
        "durationSeconds",
        "analysis",
        "revertCommit",
        "fields",
        "timestamp",
    ],
    "properties": {
        "schemaVersion": {"const": SCHEMA_VERSION},
        "kind": {"enum": [kind.value for kind in AlertKind]},
        "severity": {"enum": ["info", "warn", "error"]},
        "title": _STRING,
        "message": _STRING,
        "text": _STRING,
        "canary": _STRING,
        "namespace": _STRING,
        "cluster": _STRING,
        "target": _STRING,
        "revision": _STRING,
        "previousRevision": _STRING,
        "images": _STRINGS,
        "previousImages": _STRINGS,
        "weight": {"type": "integer", "minimum": 0, "maximum": 100},
        "failedChecks": {"type": "integer", "minimum": 0},
        "threshold": {"type": "integer", "minimum": 0},
        "durationSeconds": {"type": ["number", "null"], "minimum": 0},
        "analysis": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "outcome", "summary", "value", "threshold", "primaryValue"],
                "properties": {
                    "name": _STRING,
                    "outcome": {"enum": ["Pass", "Fail", "Inconclusive", "NoData", "Error"]},
                    "summary": _STRING,
                    "value": {"type": ["number", "null"]},
                    "threshold": _STRING,
                    "primaryValue": {"type": ["number", "null"]},
                    "advisory": {"type": "boolean"},
                },
            },
        },
        "revertCommit": _STRING,
        "revertCommitUrl": _STRING,
        "pullRequest": _STRING,
        "fields": {"type": "object", "additionalProperties": _STRING},
        "timestamp": {"type": "string", "format": "date-time"},
    },
}


def _finite(value: float | None) -> float | None:
    # JSON has no NaN or infinity; a missing number is null.
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return value


def generic_payload(message: Message) -> dict[str, Any]:
    alert = message.alert
    body: dict[str, Any] = {
        "schemaVersion": SCHEMA_VERSION,
        "kind": alert.kind.value,
        "severity": alert.severity.value,
        "title": message.title,
        "message": alert.message,
        "text": message.text,
        "canary": alert.canary_name,
        "namespace": alert.namespace,
        "cluster": message.cluster,
        "target": alert.target,
        "revision": alert.revision,
        "previousRevision": alert.previous_revision,
        "images": list(alert.images),
        "previousImages": list(alert.previous_images),
        "weight": alert.weight,
        "failedChecks": alert.failed_checks,
        "threshold": alert.threshold,
        "durationSeconds": _finite(alert.duration_seconds),
        "analysis": [_analysis_entry(m) for m in alert.analysis],
        "revertCommit": alert.revert_commit,
        "fields": dict(alert.fields),
        "timestamp": message.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    if message.commit_url:
        body["revertCommitUrl"] = message.commit_url
    if alert.pull_request:
        body["pullRequest"] = alert.pull_request
    return body


@dataclass(frozen=True, slots=True)
class GenericSender(WebhookSender):
    provider_type: ClassVar[str] = "generic"
    min_interval: ClassVar[float] = 0.0

    def payload(self, message: Message) -> dict[str, Any]:
        return generic_payload(message)


def _analysis_entry(m: MetricStatus) -> dict[str, Any]:
    """One metric of ``analysis``; ``advisory`` only for a ``dryRun`` metric (added key)."""
    entry: dict[str, Any] = {
        "name": m.name,
        "outcome": m.outcome,
        "summary": m.summary,
        "value": _finite(m.value),
        "threshold": m.threshold,
        "primaryValue": _finite(m.primary_value),
    }
    if m.advisory:
        entry["advisory"] = True
    return entry
