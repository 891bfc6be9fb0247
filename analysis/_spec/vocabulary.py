"""The words the analysis specs, the verdicts and canary's core share.

They live at the bottom of the package because everyone needs them and none of
them needs anything: the controller's core judges a tick by :class:`Outcome`
without loading the statistics, and the Canary parser checks a metric's name
against :data:`BUILTIN_METRICS` without loading the HTTP client.  A :data:`Bucket` is
here too: the provider that fetches histograms, the seam that declares them and the
judge that compares them all speak of it, and the seam loads the provider, so the
word cannot live in either.
"""

from __future__ import annotations

import enum
import re

__all__ = [
    "BUILTIN_METRICS",
    "FLAGGER_ONLY_PROVIDERS",
    "PROMQL_DURATION_RE",
    "REQUEST_DURATION",
    "REQUEST_SUCCESS_RATE",
    "Bucket",
    "CompareTest",
    "MetricKind",
    "OnInconclusive",
    "OnMaxInconclusive",
    "Outcome",
    "promql_seconds",
]

REQUEST_SUCCESS_RATE = "request-success-rate"
REQUEST_DURATION = "request-duration"
BUILTIN_METRICS: frozenset[str] = frozenset({REQUEST_SUCCESS_RATE, REQUEST_DURATION})

#: Providers Flagger knows that canary-engine accepts in a manifest but does not drive yet:
#: it has neither their routing nor their builtin queries (canary.model says so to a user).
FLAGGER_ONLY_PROVIDERS: frozenset[str] = frozenset(
    {
        "apisix",
        "appmesh",
        "appmesh:v1beta2",
        "contour",
        "gloo",
        "knative",
        "kuma",
        "osm",
        "skipper",
        "traefik",
    }
)

#: A PromQL range duration (``30s``, ``1m``, ``1h30m``, ``1d``, ``1w``, ``1y``): the one
#: spelling of it in ``analysis`` (canary's Go-style durations are in canary.model.duration).
PROMQL_DURATION_RE = re.compile(r"^(?:[0-9]+(?:ms|s|m|h|d|w|y))+$")

_DURATION_PART_RE = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}


def promql_seconds(duration: str) -> float:
    """Seconds in a PromQL duration such as ``1m30s``; ``ValueError`` for anything else."""
    if not PROMQL_DURATION_RE.match(duration):
        raise ValueError(f"expected a duration such as 1m or 30s, got {duration!r}")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART_RE.findall(duration))


Bucket = tuple[float, float]
"""One cumulative histogram bucket: (upper bound ``le`` in the metric's unit, count)."""


class Outcome(enum.StrEnum):
    """What a check concluded.  The string values are part of the status API.

    The one outcome type of canary-engine: verdicts carry it, and the core
    (``canary.core.observations``) re-exports it for its metric results.
    """

    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"
    NODATA = "NoData"
    ERROR = "Error"


class CompareTest(enum.StrEnum):
    """Which canary-vs-primary test a ``compare`` block runs."""

    ERROR_RATE = "errorRate"
    LATENCY = "latency"


class OnMaxInconclusive(enum.StrEnum):
    """What a check becomes once it has been inconclusive ``maxInconclusive`` times in a row.

    ``threshold`` (the default) lets the metric's ``thresholdRange`` decide when it has
    one, and otherwise holds like ``hold``: the canary stays where it is, keeps
    collecting, and says that it needs traffic or a person.  ``pass`` and ``fail`` are
    explicit choices a user makes knowing the check then rests on no evidence.
    """

    THRESHOLD = "threshold"
    HOLD = "hold"
    PASS = "pass"
    FAIL = "fail"


class OnInconclusive(enum.StrEnum):
    """What an inconclusive check does to the step: ``hold`` it, or let it ``advance``.

    ``advance`` is an opt-in for low traffic: a bigger weight brings the canary the
    requests it lacks.  The canary is never promoted on an inconclusive check.
    """

    HOLD = "hold"
    ADVANCE = "advance"


class MetricKind(enum.StrEnum):
    """Where a metric's query comes from."""

    BUILTIN = "builtin"
    TEMPLATE = "template"
    INLINE = "inline"
