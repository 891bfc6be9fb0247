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

Expected canary requests count the shared traffic bursts (mean 1 + 2 x 5%) and
the diurnal curve; drift, incidents, bad and stalled pods and the cold start are
left out (they carry no evidence about the regression, and a test can only lose
by them).  The analysis lasts the schedule plus the
hold the compare judge may take at the last step to collect the evidence its
configured effect needs (``maxInconclusive`` intervals at the last weight).

A regression is called *detectable* when that expectation reaches
:data:`DETECTABLE_NATS`, the evidence with which a test must pass its rejection
level with 98% probability (the issue's target: at most 2% missed).  The
compare judge rejects when its mixture likelihood ratio reaches 1/alpha, i.e.
the best alternative's log LR reaches ``B = log(1/alpha) + log(K)`` (alpha
0.01; K = 14 alternatives: 7.2 nats).  A log LR summed over many requests is
about normal with variance about twice its mean ``E`` (for small effects), so
``E - 2 sqrt(2 E) >= B`` gives ``sqrt(E) = sqrt(2) + sqrt(2 + B)``: about 20
nats.  Below that, no test at this alpha catches the regression 98% of the
time within the analysis, and the target does not apply (the tables still
show what each judge did).

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

from bench.simulator import (
    RETRY_CLUSTER,
    Z90,
    Z99,
    FloatArray,
    Release,
    bucket_probs,
    diurnal_factor,
)

__all__ = ["DETECTABLE_NATS", "REJECT_NATS", "Evidence", "expected_evidence"]

HOLD_INTERVALS = 5
"""The compare judge's default ``maxInconclusive``: how long it may hold at the last step."""


def _boundary(alpha: float = 0.01, components: int = 14) -> float:
    return math.log(1.0 / alpha) + math.log(components)


def _required_nats(z: float = 2.0) -> float:
    root = z / math.sqrt(2.0) + math.sqrt(z * z / 2.0 + _boundary())
    return root * root


DETECTABLE_NATS = round(_required_nats(), 1)
REJECT_NATS = _boundary()
"""The rejection level ``B`` (7.24 nats): expected evidence at which about half the releases
cross it."""


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

    @property
    def detectable(self) -> bool:
        return self.nats >= DETECTABLE_NATS


def _steps(release: Release) -> list[tuple[float, float]]:
    """(expected canary requests, canary weight) of each minute of the analysis."""
    w = release.world
    per_minute = 60.0 * w.total_rps * (1.0 + 2.0 * w.burst_prob)
    steps = (*w.schedule.steps, *(w.schedule.steps[-1] for _ in range(HOLD_INTERVALS)))
    out = []
    for t, weight in enumerate(steps, start=1):
        traffic = per_minute * diurnal_factor(w, release.diurnal_factor, t - 0.5)
        out.append((traffic * weight / 100, weight / 100))
    return out


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


def expected_evidence(release: Release) -> Evidence:
    """The evidence about ``release.effect`` (errors or latency) over the analysis."""
    w, effect = release.world, release.effect
    steps = _steps(release)
    n = sum(c for c, _ in steps)
    minutes = len(steps)
    if effect.is_error:
        p0 = release.base_error / (RETRY_CLUSTER if w.retries else 1.0)
        p1 = min(p0 * effect.error_ratio, 0.999)
        what = "failing original requests" if w.retries else "errors"
        q0, q1 = np.array([p0, 1 - p0]), np.array([p1, 1 - p1])
        per_minute = [_two_sample_nats(c, weight, q1, q0) for c, weight in steps]
        return Evidence(
            minutes, n, n * p0, n * (p1 - p0), sum(per_minute), what, _first_minute(per_minute)
        )
    layout = w.layout
    q0 = bucket_probs(layout, release.median_ms, release.sigma)
    q1 = bucket_probs(
        layout, release.median_ms * effect.median_ratio, release.sigma, effect.tail_ratio
    )
    # A p99 test reads the tail: every bucket from the primary's p90 up, and the
    # rest as one (a test of the median is a different question: quantile 0.5).
    p90 = release.median_ms * math.exp(Z90 * release.sigma)
    edges = np.array([*(le * layout.to_ms for le in layout.les), math.inf])
    body = edges <= p90
    q0t = np.array([q0[body].sum(), *q0[~body]])
    q1t = np.array([q1[body].sum(), *q1[~body]])
    per_minute = [_two_sample_nats(c, weight, q1t, q0t) for c, weight in steps]
    p99 = release.median_ms * math.exp(Z99 * release.sigma)
    bounds = [le * layout.to_ms for le in layout.les]
    i = next((i for i, b in enumerate(bounds) if b >= p99), len(bounds) - 1)
    above0, above1 = float(q0[i + 1 :].sum()), float(q1[i + 1 :].sum())
    what = f"requests over {bounds[i]:g} ms"
    return Evidence(
        minutes,
        n,
        n * above0,
        n * (above1 - above0),
        sum(per_minute),
        what,
        _first_minute(per_minute),
    )
