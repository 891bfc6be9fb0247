"""How much evidence a perfect test could collect about a regression within the schedule.

"Perfect" means: it knows the true effect and uses every request, but like any
canary-vs-primary comparison it learns the primary's behaviour from the
primary's requests (the base rate drifts and has incidents, so nothing can know
it in advance).  Given how many requests of each kind both versions served (an
error, a request in a bucket), the canary's share of them is binomial with the
canary's traffic share when the canary is like the primary; the expected log
likelihood ratio of the real share against that is what the test can collect
(:func:`_two_sample_nats`), summed over the minutes of the analysis:

* errors: the kinds are failed and successful requests; with retries the
  units are the original requests (a failing request and its retries are one
  event), at the originals' error rate;
* latency: the kinds are the buckets of the world's own histogram layout from
  the primary's p90 up, and all faster requests as one kind: the most a test of
  the p99 on those buckets can see (a slower median is a question for a test
  of the median, ``quantile: 0.5``).

Each release's expected canary requests follow its own traffic: the world's
rate, its shared bursts, its gamma-Poisson factors (bursty worlds) and its
diurnal curve, minute by minute (:func:`bench.simulator.expected_traffic`), at
the nominal schedule's weights; drift, incidents, bad and stalled pods and the
cold start are left out (they carry no evidence about the regression, and a
test can only lose by them); a regression that begins or grows during the run
counts as it is in each minute (none before its onset).  The analysis lasts the schedule plus the hold
the compare judge may take at the last step to collect the evidence its
configured effect needs (``maxInconclusive`` intervals at the last weight).

The compare judge rejects when its mixture likelihood ratio reaches 1/alpha,
i.e. the best alternative's log LR reaches ``B = log(1/alpha) + log(K)``
(alpha 0.01; K = 14 alternatives: 7.2 nats): the perfect test is held to the
judge's own rejection level, which counts what any test pays for not knowing
the effect in advance (a test told the effect would reject at log(1/alpha),
4.6 nats).  A log LR summed over many requests is about normal with variance
about twice its mean ``E`` (for small effects), so a perfect test catches a
release by the end of the analysis with probability about
``Phi((E - B) / sqrt(2 E))`` (:func:`catch_probability`; simulating the perfect
test itself gives the same to within a point: ``tests/test_bench_decision_quality.py``).
A regression is called *detectable* when a perfect test would catch at least
:data:`DETECTABLE_CATCH` (98%) of a cell's releases, each with its own
parameters and traffic (the issue's target: at most 2% missed); for one
release that is an expectation of :data:`DETECTABLE_NATS` (20.3 nats).
Below that, no test held to the judge's rejection level keeps the misses under
2% within the analysis, and the targets on regressions (missed, never worse,
time to roll back) do not apply (the tables still show what each judge did).
Per release, not the median release's: where traffic comes in bursts, or
releases differ (base rates 0.1-2%, where the p99 falls among the buckets), a
release that happened to offer little evidence is the one any test misses.

The same sums say how soon a perfect test could roll back: the first minute at
which the expected evidence reaches the rejection level ``B`` itself
(:data:`REJECT_NATS`), when about half of such releases have crossed it
(:attr:`Evidence.first_minute`).  A regression whose evidence comes slowly (a
small effect on a low-weight canary) cannot be rolled back sooner by any
comparison, whatever the threshold judge does; the time-to-roll-back target is
read against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis._stats import normal_cdf, normal_quantile
from bench.simulator import (
    RETRY_CLUSTER,
    Z90,
    Z99,
    FloatArray,
    Release,
    bucket_probs,
    expected_traffic,
)

__all__ = [
    "DETECTABLE_CATCH",
    "DETECTABLE_NATS",
    "REJECT_NATS",
    "Evidence",
    "Kinds",
    "analysis_minutes",
    "catch_probability",
    "expected_evidence",
    "kinds",
]

HOLD_INTERVALS = 5
"""The compare judge's default ``maxInconclusive``: how long it may hold at the last step."""


def _boundary(alpha: float = 0.01, components: int = 14) -> float:
    return math.log(1.0 / alpha) + math.log(components)


DETECTABLE_CATCH = 0.98
"""The share of a cell's releases a perfect test must catch for the 2% target to apply."""

REJECT_NATS = _boundary()
"""The rejection level ``B`` (7.24 nats): expected evidence at which about half the releases
cross it."""


def _required_nats(catch: float = DETECTABLE_CATCH) -> float:
    # E - z sqrt(2 E) = B, a quadratic in sqrt(E).
    z = normal_quantile(catch)
    root = z / math.sqrt(2.0) + math.sqrt(z * z / 2.0 + REJECT_NATS)
    return root * root


DETECTABLE_NATS = _required_nats()
"""One release's expected evidence at which a perfect test catches it :data:`DETECTABLE_CATCH`
of the time (20.3 nats)."""


def catch_probability(nats: float) -> float:
    """How often a perfect test whose expected evidence is ``nats`` passes the rejection level."""
    if nats <= 0:
        return 0.0
    return normal_cdf((nats - REJECT_NATS) / math.sqrt(2.0 * nats))


@dataclass(frozen=True, slots=True)
class Evidence:
    """Expected over the nominal schedule: canary requests, events, and nats of evidence."""

    minutes: int
    canary_requests: float
    null_events: float  # canary events expected if the canary were like the primary
    extra_events: float  # more events expected from the regression
    nats: float
    events: str  # what the events are
    first_minute: int | None  # the first minute the expected evidence reaches REJECT_NATS
    catch: float  # how often a perfect test catches it (of a cell: the mean over its releases)

    @property
    def detectable(self) -> bool:
        return self.catch >= DETECTABLE_CATCH


def analysis_minutes(release: Release) -> list[tuple[float, float]]:
    """(expected canary requests, canary weight) of each minute of the analysis."""
    w = release.world
    traffic = expected_traffic(release)
    steps = (*w.schedule.steps, *(w.schedule.steps[-1] for _ in range(HOLD_INTERVALS)))
    return [
        (float(traffic[t]) * weight / 100, weight / 100) for t, weight in enumerate(steps, start=1)
    ]


def _bernoulli_kl(p1: float, p0: float) -> float:
    if p1 <= 0:
        return -math.log(1 - p0)
    if p1 >= 1:
        return -math.log(p0)
    return p1 * math.log(p1 / p0) + (1 - p1) * math.log((1 - p1) / (1 - p0))


def _two_sample_nats(n_c: float, weight: float, q1: FloatArray, q0: FloatArray) -> float:
    """Expected log LR of the canary's share of each kind of request, given their totals.

    A comparison never knows the primary's rates: it learns them from the
    primary's own requests.  Given how many requests of a kind (an error, a
    bucket) both versions served, the canary's share of them is binomial with
    the canary's traffic share under the null; the Kullback-Leibler divergence
    of the real share from it is what any canary-vs-primary test can gain.
    """
    n_p = n_c * (1.0 - weight) / weight
    k = n_c * q1 + n_p * q0
    nats = 0.0
    for kb, c1 in zip(k, n_c * q1, strict=True):
        if kb > 0:
            nats += kb * _bernoulli_kl(c1 / kb, weight)
    return nats


def _first_minute(per_minute: list[float]) -> int | None:
    total = 0.0
    for minute, nats in enumerate(per_minute, start=1):
        total += nats
        if total >= REJECT_NATS:
            return minute
    return None


@dataclass(frozen=True, slots=True)
class Kinds:
    """The kinds of request a perfect test counts, and each one's probability per request."""

    null: FloatArray  # on the primary (and on a good canary)
    regressed: FloatArray  # on the bad canary
    events: str  # what the table counts as the events
    null_events: float  # the events' probability per request, on the primary
    regressed_events: float  # and on the bad canary


def kinds(release: Release, minute: int = 1) -> Kinds:
    """Errors: failed and successful requests.  Latency: the buckets from the primary's p90
    up, and all faster requests as one kind (the most a test of the p99 on those buckets can
    see: a slower median is a question for a test of the median, ``quantile: 0.5``).  As
    they are in ``minute``, for a regression that begins or grows during the run."""
    w, effect = release.world, release.effect
    if effect.is_error:
        p0 = release.base_error / (RETRY_CLUSTER if w.retries else 1.0)
        p1 = min(p0 * effect.error_ratio_at(minute), 0.999)
        what = "failing original requests" if w.retries else "errors"
        return Kinds(np.array([p0, 1 - p0]), np.array([p1, 1 - p1]), what, p0, p1)
    layout = w.layout
    q0 = bucket_probs(layout, release.median_ms, release.sigma)
    q1 = bucket_probs(
        layout, release.median_ms * effect.median_ratio_at(minute), release.sigma, effect.tail_ratio
    )
    p90 = release.median_ms * math.exp(Z90 * release.sigma)
    edges = np.array([*(le * layout.to_ms for le in layout.les), math.inf])
    body = edges <= p90
    p99 = release.median_ms * math.exp(Z99 * release.sigma)
    bounds = [le * layout.to_ms for le in layout.les]
    i = next((i for i, b in enumerate(bounds) if b >= p99), len(bounds) - 1)
    return Kinds(
        np.array([q0[body].sum(), *q0[~body]]),
        np.array([q1[body].sum(), *q1[~body]]),
        f"requests over {bounds[i]:g} ms",
        float(q0[i + 1 :].sum()),
        float(q1[i + 1 :].sum()),
    )


def expected_evidence(release: Release) -> Evidence:
    """The evidence about ``release.effect`` (errors or latency) over the analysis."""
    steps = analysis_minutes(release)
    first = kinds(release)
    each = [kinds(release, t) if release.effect.varies else first for t in range(1, len(steps) + 1)]
    n = sum(c for c, _ in steps)
    per_minute = [
        _two_sample_nats(c, weight, k.regressed, k.null)
        for (c, weight), k in zip(steps, each, strict=True)
    ]
    nats = sum(per_minute)
    return Evidence(
        minutes=len(steps),
        canary_requests=n,
        null_events=sum(c * k.null_events for (c, _), k in zip(steps, each, strict=True)),
        extra_events=sum(
            c * (k.regressed_events - k.null_events) for (c, _), k in zip(steps, each, strict=True)
        ),
        nats=nats,
        events=first.events,
        first_minute=_first_minute(per_minute),
        catch=catch_probability(nats),
    )
