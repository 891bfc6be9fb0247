"""A Canary with a full status, and the ways a status gets mangled, for the commands that show it.

The status ``canary get``, ``status``, ``wait``, ``report`` and the dashboard read is not only
what the controller wrote: an older CRD keeps fields it does not know, a person edits it with
``kubectl``, a write is cut half way. :func:`mangled` replaces one field; :func:`statuses`
(hypothesis) replaces a few with any JSON value, numbers JSON cannot hold (NaN, infinities,
``10**400``) and control characters included.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)

# A terminal escape sequence: clear the screen, retitle the window, turn the text red.
EVIL = "webhook said \x1b[2J\x1b]0;pwned\x07\x1b[31mFAIL\x1b[0m"

SPEC: dict[str, Any] = {
    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
    "service": {"port": 9898},
    "analysis": {
        "interval": "1m",
        "threshold": 5,
        "maxWeight": 50,
        "stepWeight": 10,
        "metrics": [
            {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
            {
                "name": "latency",
                "templateRef": {"name": "lat"},
                "compare": {"test": "latency", "bucketsQuery": "sum by (le) (rate(x_bucket[1m]))"},
            },
        ],
    },
}

_STATUS: dict[str, Any] = {
    "phase": "Progressing",
    "canaryWeight": 30,
    "failedChecks": 2,
    "iterations": 0,
    "currentRevision": "main@sha1:0123456789abcdef0123456789abcdef01234567",
    "lastGoodRevision": "main@sha1:fedcba9876543210fedcba9876543210fedcba98",
    "lastTransitionTime": "2024-05-01T12:00:00Z",
    "message": "Advancing",
    "analysis": [
        {
            "name": "request-success-rate",
            "outcome": "Pass",
            "summary": "ok",
            "value": 99.6,
            "threshold": ">= 99",
            "time": "2024-05-01T12:00:00Z",
            "details": {"judge": "threshold", "state": {"canary": [100, 3], "primary": [900, 9]}},
        },
        {
            "name": "latency",
            "outcome": "Inconclusive",
            "summary": "need more",
            "value": 81.0,
            "primaryValue": 80.0,
            "threshold": "<= 500ms",
            "details": {
                "comparison": {
                    "test": "poisson",
                    "canary": 81.0,
                    "primary": 80.0,
                    "canarySamples": 1840,
                    "primarySamples": 16000,
                    "neededSamples": 3200,
                    "dispersion": 6.8,
                    "pValue": 0.2,
                    "likelihoodRatio": 1.3,
                    "interval": [-0.1, 0.2],
                }
            },
        },
    ],
    "analysisHistory": [
        {
            "revision": "main@sha1:0123",
            "started": "2024-05-01T12:00:00Z",
            "ticks": [
                {
                    "time": "2024-05-01T12:01:00Z",
                    "weight": 10,
                    "verdicts": [
                        {"name": "request-success-rate", "outcome": "Pass", "value": 99.5},
                        {
                            "name": "latency",
                            "outcome": "Inconclusive",
                            "value": 80,
                            "primaryValue": 79,
                            "samples": 100,
                        },
                    ],
                },
                {
                    "time": "2024-05-01T12:02:00Z",
                    "weight": 20,
                    "verdicts": [
                        {"name": "request-success-rate", "outcome": "Fail", "value": 98.0},
                        {
                            "name": "latency",
                            "outcome": "Pass",
                            "value": 82,
                            "primaryValue": 80,
                            "samples": 300,
                        },
                    ],
                },
            ],
        }
    ],
    "conditions": [
        {
            "type": "Promoted",
            "status": "Unknown",
            "reason": "Progressing",
            "message": "m",
            "lastTransitionTime": "2024-05-01T12:00:00Z",
        }
    ],
    "gitRevert": {
        "state": "Reverted",
        "goodRevision": "g",
        "badRevision": "main@sha1:0123",
        "commit": "c0ffee",
        "attempts": 2,
    },
    "knownBad": [{"revision": "r1", "images": ["a:1"], "failedAt": "2024"}],
    "pendingAlerts": [
        {"kind": "Failed", "created": "2024-05-01T12:00:00Z", "destinations": ["slack"]}
    ],
}

EVENTS: list[dict[str, Any]] = [
    {
        "type": "Normal",
        "reason": "Synced",
        "message": "New revision detected",
        "count": 1,
        "firstTimestamp": "2024-05-01T12:00:00Z",
        "lastTimestamp": "2024-05-01T12:00:00Z",
    }
]


def status() -> dict[str, Any]:
    """A fresh copy of the full status (a run under way, every section filled)."""
    return copy.deepcopy(_STATUS)


def canary(state: Any = None) -> dict[str, Any]:
    """The Canary as the API returns it, holding ``state`` (default: the full status)."""
    return {
        "apiVersion": "canary.gitops.dev/v1beta1",
        "kind": "Canary",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "creationTimestamp": "2024-05-01T11:00:00Z",
        },
        "spec": copy.deepcopy(SPEC),
        "status": status() if state is None else state,
    }


def mangled(*changes: tuple[tuple[str | int, ...], Any]) -> dict[str, Any]:
    """The Canary whose status has each ``(path, value)`` of ``changes`` set."""
    state = status()
    for path, value in changes:
        here: Any = state
        for key in path[:-1]:
            here = here[key]
        here[path[-1]] = value
    return canary(state)


def strict_json(text: str | bytes) -> Any:
    """``text`` parsed as JSON that any parser reads: ``NaN`` and ``Infinity`` refused."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


# --------------------------------------------------------------------------- hypothesis

# What broke the views once, drawn often: a field picked at random rarely matters otherwise.
_HOSTILE = st.sampled_from(
    [
        10**400,
        -5,
        float("nan"),
        float("inf"),
        True,
        5,
        "Skipped",
        ">= 99.5.",
        "<= 1e999",
        "<= 1e308 and >= -1e308",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2024-05-01t12:01:00z",
        EVIL,
        "\x00\ufffe",
    ]
)
_LEAVES = st.one_of(
    _HOSTILE,
    st.none(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["Pass", "Fail", "Inconclusive", "2024-05-01T12:00:00Z", "2024-05-01"]),
)
json_values = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["name", "outcome", "value", "time", "x"]), inner, max_size=3
        ),
    ),
    max_leaves=6,
)


def _paths(tree: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found += _paths(value, (*prefix, index))
    return found


_ALL_PATHS = _paths(_STATUS)


@st.composite
def statuses(draw: st.DrawFn) -> dict[str, Any]:
    """The full status with one to six of its fields (at any depth) set to any JSON value."""
    state = status()
    for path in draw(st.lists(st.sampled_from(_ALL_PATHS), min_size=1, max_size=6)):
        here: Any = state
        try:
            for key in path[:-1]:
                here = here[key]
            here[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced a container on the way
    return state
