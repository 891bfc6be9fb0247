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
    "OnMaxInconclusive",
    "Outcome",
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
    """What a check becomes once it has been inconclusive ``maxInconclusive`` times in a row."""

    FAIL = "fail"
    PASS = "pass"


class MetricKind(enum.StrEnum):
    """Where a metric's query comes from."""

    BUILTIN = "builtin"
    TEMPLATE = "template"
    INLINE = "inline"
