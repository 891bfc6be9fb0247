"""A release simulator and the two rollout policies the decision benchmark compares.

Why it exists: to measure, on the *same* simulated releases, how often Flagger's
usual fixed-threshold policy and our statistical judge roll back good releases,
promote bad ones, and how fast they roll back, without any cluster.

Model of one release (one minute = one analysis interval):

* total traffic ``10 * canary_rps`` requests/s, split by the current canary
  weight; request counts per minute are Poisson, with shared traffic bursts
  (x3 for a minute, probability ``burst_prob``);
* errors are binomial per request; the base error rate drifts (a log-normal
  random walk shared by both versions) and shared incidents multiply it
  (x4 for a minute, probability ``burst_prob``);
* latencies are log-normal (median, shape), binned into the demo app's
  histogram buckets; the median drifts like the error rate;
* a good release behaves exactly like the primary; a bad one has a higher
  error rate or latency (see :data:`EFFECTS`).

The threshold policy is Flagger's: interval 1m, threshold 5, stepWeight 10,
maxWeight 50, ``request-success-rate >= 99`` and ``request-duration <= 500``
(p99 in ms over the last minute).  The statistical policy runs the same step
schedule with ``compare`` on both metrics (defaults), calling the analysis
package's pure judge functions directly (exactly what ``evaluate`` calls after
fetching).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from analysis import (
    CompareSpec,
    Outcome,
    SequentialState,
    Window,
    add_histograms,
    add_window,
    decide,
    judge_threshold,
    new_state,
    parse_compare,
)
from analysis._stats import histogram_quantile

__all__ = [
    "EFFECTS",
    "TRAFFIC_CLASSES",
    "Effect",
    "Minute",
    "Release",
    "Result",
    "run_statistical",
    "run_threshold",
    "simulate_minute",
]

BUCKETS_S: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.0125,
    0.015,
    0.0175,
    0.02,
    0.025,
    0.03,
    0.035,
    0.04,
    0.05,
    0.06,
    0.075,
    0.1,
    0.125,
    0.15,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    math.inf,
)  # fmt: skip  (the demo app's buckets)
_LOG_BOUNDS = np.log(np.array(BUCKETS_S[:-1]))
TRAFFIC_CLASSES: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
T0 = datetime(2024, 1, 1, tzinfo=UTC)

INTERVAL_MIN = 1
THRESHOLD = 5
STEP_WEIGHT = 10
MAX_WEIGHT = 50
MIN_SUCCESS_RATE = 99.0
MAX_DURATION_MS = 500.0
MAX_MINUTES = 60


@dataclass(frozen=True, slots=True)
class Effect:
    """How a bad release differs from the primary (``name`` "good" means: not at all)."""

    name: str
    label: str
    error_ratio: float = 1.0
    fixed_base_error: float | None = None
    median_ratio: float = 1.0
    sigma_extra: float = 0.0


GOOD = Effect("good", "good release (identical to the primary)")
EFFECTS: tuple[Effect, ...] = (
    Effect("err-1-5", "errors 1% -> 5%", error_ratio=5.0, fixed_base_error=0.01),
    Effect("err-1-2", "errors 1% -> 2%", error_ratio=2.0, fixed_base_error=0.01),
    Effect("err-x3", "errors x3 (base 0.1-2%)", error_ratio=3.0),
    Effect("p99-50-shift", "p99 +50% (all latencies x1.5)", median_ratio=1.5),
    Effect("p99-50-tail", "p99 +50% (tail only)", sigma_extra=math.log(1.5) / 2.3263478740408408),
)


@dataclass(frozen=True, slots=True)
class Release:
    """One simulated release: the primary's behaviour, traffic and the canary's effect."""

    seed: int
    canary_rps: float
    base_error: float
    median_ms: float
    sigma: float
    effect: Effect
    drift_sd: float = 0.05
    burst_prob: float = 0.05


@dataclass(frozen=True, slots=True)
class Minute:
    """What one minute at one canary weight produced, for both versions."""

    canary_requests: int
    canary_errors: int
    primary_requests: int
    primary_errors: int
    canary_hist: npt.NDArray[np.int64]  # per-bucket (not cumulative) counts
    primary_hist: npt.NDArray[np.int64]


@dataclass
class Result:
    rolled_back: bool
    minutes: int
    reason: str = ""


@dataclass
class _World:
    """Per-release random state: drift walks advance once per minute."""

    release: Release
    rng: np.random.Generator
    err_drift: float = 1.0
    lat_drift: float = 1.0
    minute: int = 0
    history: list[Minute] = field(default_factory=list)

    def step(self, weight: float) -> Minute:
        r, rng = self.release, self.rng
        if self.minute > 0:
            self.err_drift *= math.exp(rng.normal(0.0, r.drift_sd))
            self.lat_drift *= math.exp(rng.normal(0.0, r.drift_sd / 2))
        self.minute += 1
        traffic_burst = 3.0 if rng.random() < r.burst_prob else 1.0
        incident = 4.0 if rng.random() < r.burst_prob else 1.0
        total = 10.0 * r.canary_rps * 60.0 * traffic_burst
        n_c = int(rng.poisson(weight * total))
        n_p = int(rng.poisson((1 - weight) * total))
        p_p = min(1.0, r.base_error * self.err_drift * incident)
        p_c = min(1.0, p_p * r.effect.error_ratio)
        m_p = r.median_ms * self.lat_drift
        m_c = m_p * r.effect.median_ratio
        s_p, s_c = r.sigma, r.sigma + r.effect.sigma_extra
        minute = Minute(
            canary_requests=n_c,
            canary_errors=int(rng.binomial(n_c, p_c)),
            primary_requests=n_p,
            primary_errors=int(rng.binomial(n_p, p_p)),
            canary_hist=_latency_hist(rng, n_c, m_c, s_c),
            primary_hist=_latency_hist(rng, n_p, m_p, s_p),
        )
        return minute


def _bucket_probs(median_ms: float, sigma: float) -> npt.NDArray[np.float64]:
    z = (_LOG_BOUNDS - math.log(median_ms / 1000.0)) / sigma
    cdf = np.array([0.5 * math.erfc(-x / math.sqrt(2.0)) for x in z])
    probs = np.diff(np.concatenate(([0.0], cdf, [1.0])))
    probs = np.clip(probs, 0.0, None)
    out: npt.NDArray[np.float64] = probs / probs.sum()
    return out


def _latency_hist(
    rng: np.random.Generator, n: int, median_ms: float, sigma: float
) -> npt.NDArray[np.int64]:
    if n == 0:
        return np.zeros(len(BUCKETS_S), dtype=np.int64)
    out: npt.NDArray[np.int64] = rng.multinomial(n, _bucket_probs(median_ms, sigma))
    return out


def simulate_minute(world: _World, weight: float) -> Minute:
    return world.step(weight)


def _cumulative(hist: npt.NDArray[np.int64]) -> list[tuple[float, float]]:
    return list(zip(BUCKETS_S, np.cumsum(hist).astype(float).tolist(), strict=True))


def _flagger_checks(m: Minute) -> str | None:
    """Flagger's builtin checks on one minute; the first failure's sentence, or None."""
    if m.canary_requests == 0:
        return "no values found (no canary traffic)"
    sr = 100.0 * (1 - m.canary_errors / m.canary_requests)
    r = judge_threshold("request-success-rate", sr, min=MIN_SUCCESS_RATE)
    if r.outcome is Outcome.FAIL:
        return r.summary
    cum = np.cumsum(m.canary_hist).astype(float).tolist()
    p99 = histogram_quantile(0.99, list(BUCKETS_S), cum) * 1000.0
    r = judge_threshold("request-duration", p99, max=MAX_DURATION_MS)
    if r.outcome is Outcome.FAIL:
        return r.summary
    return None


def run_threshold(release: Release) -> Result:
    """Flagger's policy: cumulative failed checks, rollback at the tick after the 5th."""
    world = _World(release, np.random.default_rng([release.seed, 1]))
    weight, failed = STEP_WEIGHT, 0
    for minute in range(1, MAX_MINUTES + 1):
        m = world.step(weight / 100)
        if failed >= THRESHOLD:
            return Result(True, minute, "failed checks threshold reached")
        if _flagger_checks(m) is not None:
            failed += 1
            continue
        if weight >= MAX_WEIGHT:
            return Result(False, minute)
        weight += STEP_WEIGHT
    return Result(True, MAX_MINUTES, "timeout")


ERROR_SPEC: CompareSpec = parse_compare({}, "bench.compare", metric_name="request-success-rate")
LATENCY_SPEC: CompareSpec = parse_compare({}, "bench.compare", metric_name="request-duration")


def run_statistical(
    release: Release, error_spec: CompareSpec = ERROR_SPEC, latency_spec: CompareSpec = LATENCY_SPEC
) -> Result:
    """Same schedule; a conclusive FAIL rolls back at once, INCONCLUSIVE holds the step."""
    world = _World(release, np.random.default_rng([release.seed, 1]))
    weight, failed = STEP_WEIGHT, 0
    err_state: SequentialState = new_state(T0)
    lat_state: SequentialState = new_state(T0)
    for minute in range(1, MAX_MINUTES + 1):
        m = world.step(weight / 100)
        if failed >= THRESHOLD:
            return Result(True, minute, "failed checks threshold reached")
        now = T0 + timedelta(minutes=minute)
        err_state = add_window(
            err_state,
            Window(m.canary_requests, m.canary_errors, m.primary_requests, m.primary_errors),
            error_spec,
            window_end=now,
        )
        lat_state = add_histograms(
            lat_state,
            _cumulative(m.canary_hist),
            _cumulative(m.primary_hist),
            latency_spec,
            window_end=now,
        )
        err = decide(error_spec, err_state, metric="request-success-rate")
        lat = decide(latency_spec, lat_state, metric="request-duration", buckets_to_ms=1000.0)
        err_state, lat_state = err.state, lat.state
        verdicts = (err, lat)
        if any(v.outcome is Outcome.FAIL and v.conclusive for v in verdicts):
            return Result(
                True, minute, next(v.summary for v in verdicts if v.outcome is Outcome.FAIL)
            )
        if any(v.outcome is Outcome.FAIL for v in verdicts):
            failed += 1
            continue
        if any(v.outcome is Outcome.INCONCLUSIVE for v in verdicts):
            continue
        if weight >= MAX_WEIGHT:
            return Result(False, minute)
        weight += STEP_WEIGHT
    return Result(True, MAX_MINUTES, "timeout")
