"""A Canary as the API returns it, with a recorded status of two runs, and its Events."""

from __future__ import annotations

from typing import Any

FIRST = "main@sha1:aaaaaaaaaaaa"
SECOND = "main@sha1:bbbbbbbbbbbb"
GOOD = "main@sha1:9999999"


def verdict(name: str, outcome: str, value: float | None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "outcome": outcome}
    if value is not None:
        out["value"] = value
    out.update(extra)
    return out


def canary(metric: str = "request-success-rate") -> dict[str, Any]:
    """Run 1 (FIRST) failed on ``metric`` at 92.1% after two failed checks; run 2 (SECOND) is
    under way: a compare metric ``error-rate`` with an inconclusive hold, then a pass."""
    spec = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898},
        "analysis": {
            "interval": "1m",
            "threshold": 2,
            "maxWeight": 50,
            "stepWeight": 10,
            "metrics": [
                {"name": metric, "interval": "1m", "thresholdRange": {"min": 99}},
                {"name": "request-duration", "interval": "1m", "thresholdRange": {"max": 500}},
                {
                    "name": "error-rate",
                    "interval": "1m",
                    "thresholdRange": {"max": 5},
                    "compare": {"maxInconclusive": 3},
                    "templateRef": {"name": "error-rate"},
                },
            ],
        },
    }
    first_run = {
        "revision": FIRST,
        "started": "2024-05-01T10:00:00Z",
        "ended": "2024-05-01T10:04:00Z",
        "result": "Failed",
        "reason": "failed checks threshold reached 2",
        "ticks": [
            {
                "time": "2024-05-01T10:01:00Z",
                "weight": 10,
                "verdicts": [
                    verdict(metric, "Pass", 99.9),
                    verdict("request-duration", "Pass", 120.0),
                ],
            },
            {
                "time": "2024-05-01T10:02:00Z",
                "weight": 20,
                "verdicts": [
                    verdict(metric, "Fail", 92.1),
                    verdict("request-duration", "Pass", 130.0),
                ],
            },
            {
                "time": "2024-05-01T10:03:00Z",
                "weight": 20,
                "verdicts": [
                    verdict(metric, "Fail", 91.5),
                    verdict("request-duration", "Pass", 135.0),
                ],
            },
        ],
    }
    second_run = {
        "revision": SECOND,
        "started": "2024-05-01T11:00:00Z",
        "ticks": [
            {
                "time": "2024-05-01T11:01:00Z",
                "weight": 10,
                "verdicts": [
                    verdict(metric, "Pass", 99.95),
                    verdict("error-rate", "Inconclusive", 0.8, primaryValue=0.5, samples=120),
                ],
            },
            {
                "time": "2024-05-01T11:02:00Z",
                "weight": 10,
                "verdicts": [
                    verdict(metric, "Pass", 99.97),
                    verdict("error-rate", "Pass", 0.6, primaryValue=0.55, samples=1840),
                ],
            },
        ],
    }
    status = {
        "phase": "Progressing",
        "canaryWeight": 20,
        "failedChecks": 0,
        "currentRevision": SECOND,
        "lastGoodRevision": GOOD,
        "lastTransitionTime": "2024-05-01T11:02:00Z",
        "conditions": [
            {
                "type": "Promoted",
                "status": "Unknown",
                "reason": "Progressing",
                "message": "New revision detected, progressing canary analysis.",
            }
        ],
        "analysis": [
            {
                "name": metric,
                "outcome": "Pass",
                "summary": "success rate 99.97% >= 99%",
                "value": 99.97,
                "threshold": ">= 99%",
                "time": "2024-05-01T11:02:00Z",
            },
            {
                "name": "error-rate",
                "outcome": "Pass",
                "summary": "error-rate: canary 0.6% vs primary 0.55%",
                "value": 0.6,
                "primaryValue": 0.55,
                "threshold": "<= 5%",
                "time": "2024-05-01T11:02:00Z",
                "details": {
                    "comparison": {
                        "test": "ratio",
                        "canary": 0.6,
                        "primary": 0.55,
                        "pValue": 0.031,
                        "likelihoodRatio": 24.5,
                        "canarySamples": 1840,
                        "primarySamples": 16000,
                        "neededSamples": 3200,
                        "dispersion": 6.83,
                    }
                },
            },
        ],
        "analysisHistory": [first_run, second_run],
        "gitRevert": {
            "state": "Reverted",
            "goodRevision": GOOD,
            "badRevision": FIRST,
            "commit": "c0ffee1234567890",
            "reason": "failed checks threshold reached 2",
            "attempts": 1,
        },
    }
    return {
        "apiVersion": "canary.gitops.dev/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": spec,
        "status": status,
    }


# (time, type, message) of the Events about the canary.
EVENTS: list[tuple[str, str, str]] = [
    ("2024-05-01T09:59:00Z", "Normal", "New revision detected! Scaling up podinfo.test"),
    ("2024-05-01T10:00:00Z", "Normal", "Starting canary analysis for podinfo.test"),
    ("2024-05-01T10:00:00Z", "Normal", "Advance podinfo.test canary weight 10"),
    ("2024-05-01T10:02:00Z", "Warning", "Halt podinfo.test advancement success rate 92.1% < 99%"),
    (
        "2024-05-01T10:04:00Z",
        "Warning",
        "Rolling back podinfo.test failed checks threshold reached 2",
    ),
    ("2024-05-01T10:04:00Z", "Warning", "Canary failed! Scaling down podinfo.test"),
    (
        "2024-05-01T10:04:30Z",
        "Normal",
        f"Reverted podinfo.test in Git to {GOOD}: commit c0ffee1234567890",
    ),
    ("2024-05-01T10:59:00Z", "Normal", "New revision detected! Scaling up podinfo.test"),
    ("2024-05-01T11:00:00Z", "Normal", "Starting canary analysis for podinfo.test"),
    (
        "2024-05-01T11:00:30Z",
        "Warning",
        "Halt podinfo.test advancement waiting for promotion approval gate",
    ),
]


def events() -> list[dict[str, Any]]:
    return [
        {
            "type": kind,
            "reason": "Synced",
            "message": message,
            "count": 1,
            "firstTimestamp": at,
            "lastTimestamp": at,
        }
        for at, kind, message in EVENTS
    ]
