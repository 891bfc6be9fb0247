"""A release simulator and the two rollout policies the decision benchmark compares.

Why it exists: to measure, on the *same* simulated releases, how often Flagger's
usual fixed-threshold policy and our statistical judge roll back good releases,
promote bad ones, hold undecided, and how fast they decide, without any cluster.

Model of one release (one minute = one analysis interval; minute 1 is the first
minute of canary traffic, the one the first analysis tick judges):

* **Traffic.** Total traffic ``World.total_rps`` requests/s, times a shared
  traffic burst (x3 for a minute, probability ``burst_prob``), times the diurnal
  factor (``diurnal`` "falling": the rate falls by a factor ``F`` (3-5, per
  release) along a cosine in log space over the schedule's nominal length ``T``
  minutes, then rises back, period ``2T``; "rising": the same curve shifted by
  half a period, from ``1/F`` up to 1), times, for ``bursty`` worlds, a
  per-minute Gamma(``k``, 1/``k``) factor (``k`` log-uniform 0.5-2: the count of
  a minute is negative binomial, coefficient of variation 0.7-1.4 on top of
  Poisson).  The minute's total is Poisson at that rate and is split between
  the versions binomially at the current canary weight (the mesh routes every
  request by weight, so bursts hit both versions at once).
* **Errors.** Binomial per request.  The base error rate drifts (a log-normal
  random walk shared by both versions, sd ``drift_sd`` per minute) and shared
  incidents multiply it (x4 for a minute, probability ``burst_prob``).  A bad
  release multiplies the canary's rate by ``Effect.error_ratio``.
* **Regressions that begin or grow during the run** (``Effect.onset``,
  ``Effect.growth``): the canary behaves like the primary until minute
  ``onset``, from then on it is ``error_ratio`` (or ``median_ratio``) times
  worse, and ``growth`` times worse again every minute after (a leak), up to
  ``Effect.peak``.  A regression that starts with a cache filling, a cron job, a
  slow leak: the canary's first minutes say nothing about it.
* **Retries** (``retries`` worlds): every failing request is retried 2 or 3
  times (equally likely) on the same version and every retry fails too, so
  errors come in clusters of 3-4.  Original requests fail at the base rate
  divided by :data:`RETRY_CLUSTER` (3.5) so that the observed error rate stays
  near the base rate.
  Where the retries are declared (``declared_retries``: the Canary's
  ``service.retries.attempts``), the compare judge is told (``compare.retries``).
* **One bad pod** (``bad_pod_prob`` > 0): each minute, independently on each
  side with that probability, one of the side's ``pods`` pods (2-6 per release,
  the same on both sides, as Flagger scales the canary like the primary) fails
  20-50% of its requests (its share of the side's requests is binomial, 1/pods).
* **One stalled pod** (``stall_prob`` > 0): the same, for latency: each minute,
  independently on each side with that probability, one of the side's pods
  stalls (a GC pause, a noisy neighbour) and every request it serves that minute
  takes ``S`` times as long (``S`` uniform 3-10 per side-minute; its share of
  the side's requests is binomial, 1/pods).  Errors are untouched.  Slow
  requests then come in clusters on one side, which a test that takes requests
  for independent units reads as a regression (or, on the primary's side, as an
  improvement).
* **Latency.** Log-normal (median, shape), binned into the world's histogram
  layout (the demo app's buckets, Istio's, Linkerd's or NGINX ingress'); the
  median drifts like the error rate (sd ``drift_sd / 2``).  A bad release
  multiplies the canary's median by ``Effect.median_ratio`` (a shift of every
  latency) or stretches its tail only by ``Effect.tail_ratio``: the fastest 90%
  of requests are untouched, slower ones take longer the further out they are
  (in normal quantiles ``z``: ``log L = mu + sigma z + log(tail_ratio) (z - z90) /
  (z99 - z90)`` above ``z90``), so the p99 grows by exactly that ratio.
* **Cold start** (``cold_start`` worlds): the canary's error rate is multiplied
  by ``M_err`` (5-10) and its latency by ``M_lat`` (2-3) at the moment its
  traffic starts; both decay linearly to 1 over ``D`` minutes (1-2); each minute
  takes the average over its span.  Only the first minutes: later weight steps
  bring no new cold pods.
* A good release behaves exactly like the primary, cold start aside.
* **Schedules.** ``Schedule.steps`` are the canary weights of the steps; the
  canary is promoted when the last step passes: stepWeight 10 to maxWeight 50
  (10, 20, 30, 40, 50: promoted at minute 5 at best), Flagger's stepWeights
  [1, 5, 25, 50] (minute 4), or A/B testing, ``iterations: 10`` with 10% of the
  traffic matched by header (ten steps at 10%: minute 10).

Everything that does not depend on the canary weight (drift, bursts, incidents,
the diurnal curve, gamma factors, bad-pod and stalled-pod minutes) is drawn once
per release from its seed; each minute's counts come from a generator seeded by (release,
minute), so the two policies see the same world and, at the same weight, the
very same minute.

The threshold policy is Flagger's: interval 1m, threshold 5 failed checks,
``request-success-rate >= 99`` and ``request-duration <= 500`` (p99 in ms over
the last minute, ``histogram_quantile`` on the world's buckets); no canary
request in a minute is NoData, a failed check.  The statistical policy runs the
same schedule with ``compare`` on both metrics (defaults, no threshold bounds),
calling the analysis package's pure judge functions directly (what ``evaluate``
calls after fetching), and acts as the controller does: a conclusive FAIL rolls
back at once, another FAIL is one failed check, an inconclusive verdict
(``warming_up`` and ``stalled`` included) holds the weight unless every
inconclusive verdict says ``may_advance``, in which case the weight steps up but
the canary is never promoted on such a tick.  ``decide`` is told, as the
controller tells it, whether a PASS would promote (``last_step``), that the
interval is 60 s, and that the metric has no threshold to fall back on.  Both
policies roll back at the tick after the 5th failed check; a run undecided after
:data:`MAX_MINUTES` minutes is "held".  For a bad release the threshold policy
also runs on its *good twin* (the same release and world without the
regression), to tell its rollbacks that carry evidence from those that are
right by accident.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache

import numpy as np
import numpy.typing as npt

from analysis import (
    CompareResult,
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
    "AB_TESTING",
    "DEFAULT_SCHEDULE",
    "EFFECTS",
    "ERR_1_2_LATE",
    "ERR_GROWING",
    "GOOD",
    "ISTIO",
    "LINKERD",
    "MAX_MINUTES",
    "NGINX",
    "P99_25_LATE",
    "P99_GROWING",
    "STEP_WEIGHTS",
    "Decision",
    "Effect",
    "Layout",
    "Minute",
    "Outcomes",
    "Release",
    "ReleaseWorld",
    "Result",
    "Schedule",
    "World",
    "bucket_probs",
    "diurnal_factor",
    "expected_traffic",
    "run_pair",
    "run_statistical",
    "run_threshold",
]

T0 = datetime(2024, 1, 1, tzinfo=UTC)
INTERVAL_S = 60.0
THRESHOLD = 5
MIN_SUCCESS_RATE = 99.0
MAX_DURATION_MS = 500.0
MAX_MINUTES = 60
RETRY_CLUSTER = 3.5  # a failing original request plus its 2-3 failing retries, on average
_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True, slots=True)
class Layout:
    """A histogram bucket layout: finite upper bounds in the metric's unit."""

    name: str
    les: tuple[float, ...]
    to_ms: float  # 1000.0 for seconds, 1.0 for milliseconds

    @property
    def cumulative_les(self) -> tuple[float, ...]:
        return (*self.les, math.inf)


DEMO = Layout(
    "demo app",
    (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025, 0.03, 0.035,
     0.04, 0.05, 0.06, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5,
     2.0, 2.5, 5.0, 10.0),
    1000.0,
)  # fmt: skip
# Envoy's default histogram buckets, which istio_request_duration_milliseconds uses.
ISTIO = Layout(
    "Istio",
    (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
     600000, 1800000, 3600000),
    1.0,
)  # fmt: skip
LINKERD = Layout(
    "Linkerd",
    (1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000,
     5000, 10000, 20000, 30000, 40000, 50000),
    1.0,
)  # fmt: skip
NGINX = Layout("NGINX ingress", (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), 1000.0)


@dataclass(frozen=True, slots=True)
class Schedule:
    """Canary weight (%) of each step; the canary is promoted when the last step passes.

    A/B testing (``iterations``) is that many steps at the same weight (the share
    of the traffic the header match sends to the canary).  An inconclusive tick
    that may advance steps the weight up to the last step but never promotes;
    with iterations it never reaches the last iteration either (the controller's
    ``_last_iteration_held``).
    """

    name: str
    steps: tuple[int, ...]
    iterations: bool = False


DEFAULT_SCHEDULE = Schedule("stepWeight 10, maxWeight 50", (10, 20, 30, 40, 50))
STEP_WEIGHTS = Schedule("stepWeights [1, 5, 25, 50]", (1, 5, 25, 50))
AB_TESTING = Schedule("A/B, iterations 10, 10% of traffic", (10,) * 10, iterations=True)


@dataclass(frozen=True, slots=True)
class Effect:
    """How a bad release differs from the primary (``name`` "good" means: not at all).

    ``target`` marks the effects the issue's targets are stated for (2x the
    error rate, +25% p99).
    """

    name: str
    label: str
    error_ratio: float = 1.0
    fixed_base_error: float | None = None
    median_ratio: float = 1.0
    tail_ratio: float = 1.0
    target: bool = False
    onset: int = 1  # the first minute the canary is worse (1: from its first minute)
    growth: float = 1.0  # how many times worse again each minute after the onset
    peak: float = 20.0  # the most a growing ratio reaches

    @property
    def is_error(self) -> bool:
        return self.error_ratio != 1.0

    def error_ratio_at(self, minute: int) -> float:
        """The canary's error rate over the primary's in ``minute`` (cold start aside)."""
        return self._at(self.error_ratio, minute)

    def median_ratio_at(self, minute: int) -> float:
        """The canary's latencies over the primary's in ``minute`` (cold start aside)."""
        return self._at(self.median_ratio, minute)

    @property
    def varies(self) -> bool:
        """Whether the regression changes during the run (begins late or grows)."""
        return self.onset > 1 or self.growth != 1.0

    def _at(self, ratio: float, minute: int) -> float:
        if ratio == 1.0 or minute < self.onset:
            return 1.0
        return float(min(ratio * self.growth ** (minute - self.onset), max(ratio, self.peak)))


Z99 = 2.3263478740408408  # the standard normal's 99th percentile
Z90 = 1.2815515655446004
GOOD = Effect("good", "good release")
ERR_1_5 = Effect("err-1-5", "errors 1% -> 5%", error_ratio=5.0, fixed_base_error=0.01)
ERR_1_2 = Effect("err-1-2", "errors 1% -> 2%", error_ratio=2.0, fixed_base_error=0.01, target=True)
ERR_X3 = Effect("err-x3", "errors x3 (base 0.1-2%)", error_ratio=3.0)
P99_50_SHIFT = Effect("p99-50-shift", "p99 +50% (all latencies x1.5)", median_ratio=1.5)
P99_25_SHIFT = Effect(
    "p99-25-shift", "p99 +25% (all latencies x1.25)", median_ratio=1.25, target=True
)
P99_50_TAIL = Effect("p99-50-tail", "p99 +50% (tail only)", tail_ratio=1.5)
P99_25_TAIL = Effect("p99-25-tail", "p99 +25% (tail only)", tail_ratio=1.25, target=True)
EFFECTS: tuple[Effect, ...] = (ERR_1_5, ERR_1_2, ERR_X3, P99_50_SHIFT, P99_50_TAIL)
ERR_1_2_LATE = Effect(
    "err-1-2-late", "errors 1% -> 2% from minute 3", 2.0, 0.01, target=True, onset=3
)
P99_25_LATE = Effect(
    "p99-25-late",
    "p99 +25% from minute 3 (all latencies x1.25)",
    median_ratio=1.25,
    target=True,
    onset=3,
)
ERR_GROWING = Effect("err-growing", "errors from 1%, x1.5 more every minute", 1.5, 0.01, growth=1.5)
P99_GROWING = Effect(
    "p99-growing", "latencies x1.1 more every minute", median_ratio=1.1, growth=1.1
)


@dataclass(frozen=True, slots=True)
class World:
    """How one row of the benchmark behaves, whatever the release (see the module docstring)."""

    total_rps: float
    schedule: Schedule = DEFAULT_SCHEDULE
    layout: Layout = DEMO
    diurnal: str = "flat"  # "flat", "falling" or "rising"
    bursty: bool = False
    retries: bool = False
    declared_retries: int = 0  # service.retries.attempts of the Canary (0: none declared)
    bad_pod_prob: float = 0.0
    stall_prob: float = 0.0
    cold_start: bool = False
    p99_ms: tuple[float, float] | None = None  # primary p99 range; None: median 20-100 ms
    burst_prob: float = 0.05
    drift_sd: float = 0.05


@dataclass(frozen=True, slots=True)
class Release:
    """One simulated release: its world, the primary's behaviour and the canary's effect."""

    seed: int
    world: World
    effect: Effect
    base_error: float
    median_ms: float
    sigma: float
    diurnal_factor: float = 1.0
    gamma_shape: float = math.inf
    pods: int = 1
    cold_minutes: float = 0.0
    cold_error: float = 1.0
    cold_latency: float = 1.0


def draw_release(rng: np.random.Generator, world: World, effect: Effect) -> Release:
    """The per-release parameters of a world (the ranges are in the module docstring)."""
    base = effect.fixed_base_error
    if base is None:
        base = float(math.exp(rng.uniform(math.log(0.001), math.log(0.02))))
    sigma = float(rng.uniform(0.3, 0.5))
    median = float(rng.uniform(20.0, 100.0))
    if world.p99_ms is not None:
        sigma = float(rng.uniform(0.3, 0.6))
        lo, hi = world.p99_ms
        median = float(math.exp(rng.uniform(math.log(lo), math.log(hi)))) / math.exp(Z99 * sigma)
    return Release(
        seed=int(rng.integers(0, 2**63 - 1)),
        world=world,
        effect=effect,
        base_error=base,
        median_ms=median,
        sigma=sigma,
        diurnal_factor=float(rng.uniform(3.0, 5.0)) if world.diurnal != "flat" else 1.0,
        gamma_shape=float(math.exp(rng.uniform(math.log(0.5), math.log(2.0))))
        if world.bursty
        else math.inf,
        pods=int(rng.integers(2, 7)),
        cold_minutes=float(rng.uniform(1.0, 2.0)) if world.cold_start else 0.0,
        cold_error=float(rng.uniform(5.0, 10.0)) if world.cold_start else 1.0,
        cold_latency=float(rng.uniform(2.0, 3.0)) if world.cold_start else 1.0,
    )


def diurnal_factor(world: World, factor: float, minute: float) -> float:
    """The diurnal traffic multiplier at ``minute`` (1 for flat worlds)."""
    if world.diurnal == "flat":
        return 1.0
    phase = math.pi * minute / len(world.schedule.steps)
    shape = (1 - math.cos(phase)) / 2 if world.diurnal == "falling" else (1 + math.cos(phase)) / 2
    return float(factor**-shape)


def _cold(release: Release, minute: int, peak: float) -> float:
    """Average over minute ``minute`` of a multiplier decaying linearly from ``peak`` to 1."""
    d = release.cold_minutes
    if d <= 0 or minute - 1 >= d:
        return 1.0
    a, b = (minute - 1) / d, min(minute / d, 1.0)  # the minute's span, in units of d
    area = (b - a) - (b * b - a * a) / 2  # integral of (1 - s) over [a, b]
    return 1.0 + (peak - 1.0) * area * d  # averaged over the whole minute (length 1/d)


@dataclass(frozen=True, slots=True)
class Minute:
    """What one minute at one canary weight produced, for both versions."""

    canary_requests: int
    canary_errors: int
    primary_requests: int
    primary_errors: int
    canary_hist: npt.NDArray[np.int64]  # per-bucket (not cumulative) counts, +Inf last
    primary_hist: npt.NDArray[np.int64]


FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class _Conditions:
    """The weight-independent part of a release's world, indexed by minute (0 unused)."""

    rate: FloatArray  # total requests per minute, expected
    err: FloatArray  # error-rate multiplier (drift x incident), shared
    lat: FloatArray  # latency multiplier (drift), shared
    bad_canary: FloatArray  # failure rate of the canary's bad pod this minute (0: none)
    bad_primary: FloatArray
    stall_canary: FloatArray  # latency multiplier of the canary's stalled pod (0: none)
    stall_primary: FloatArray


def _conditions(release: Release) -> _Conditions:
    w = release.world
    rng = np.random.default_rng([release.seed, 1])
    n = MAX_MINUTES + 1
    err_steps = rng.normal(0.0, w.drift_sd, n)
    lat_steps = rng.normal(0.0, w.drift_sd / 2, n)
    err_steps[:2] = lat_steps[:2] = 0.0  # minute 1 starts at the release's own values
    burst = np.where(rng.random(n) < w.burst_prob, 3.0, 1.0)
    incident = np.where(rng.random(n) < w.burst_prob, 4.0, 1.0)
    shape = release.gamma_shape
    gamma = rng.gamma(shape, 1.0 / shape, n) if math.isfinite(shape) else np.ones(n)
    bad = rng.random((2, n)) < w.bad_pod_prob
    bad_rate = np.where(bad, rng.uniform(0.2, 0.5, (2, n)), 0.0)
    # Drawn last, so the worlds without stalls keep every number they had.
    stall = np.zeros((2, n))
    if w.stall_prob > 0:
        stalled = rng.random((2, n)) < w.stall_prob
        stall = np.where(stalled, rng.uniform(3.0, 10.0, (2, n)), 0.0)
    minutes = np.arange(n) - 0.5  # the middle of each minute
    diurnal = np.array([diurnal_factor(w, release.diurnal_factor, float(t)) for t in minutes])
    return _Conditions(
        rate=60.0 * w.total_rps * burst * gamma * diurnal,
        err=np.exp(np.cumsum(err_steps)) * incident,
        lat=np.exp(np.cumsum(lat_steps)),
        bad_canary=bad_rate[0],
        bad_primary=bad_rate[1],
        stall_canary=stall[0],
        stall_primary=stall[1],
    )


def expected_traffic(release: Release) -> FloatArray:
    """The release's expected total requests in each minute (index 0 unused): its bursts,
    gamma-Poisson factors and diurnal curve, before the minute's own Poisson draw."""
    return _conditions(release).rate


@cache
def _log_bounds_ms(layout: Layout) -> FloatArray:
    return np.log(np.array(layout.les, dtype=np.float64) * layout.to_ms)


def bucket_probs(
    layout: Layout, median_ms: float, sigma: float, tail_ratio: float = 1.0
) -> FloatArray:
    """Probability of each bucket (+Inf last) for a log-normal latency.

    ``tail_ratio`` stretches the tail only: a request at the normal quantile
    ``z`` above ``Z90`` takes ``tail_ratio ** ((z - Z90) / (Z99 - Z90))`` times
    longer, so the fastest 90% are untouched and the p99 is ``tail_ratio`` times
    the primary's (the p99.9 about ``tail_ratio ** 1.7``).
    """
    y = _log_bounds_ms(layout) - math.log(median_ms)
    z = y / sigma
    if tail_ratio != 1.0:
        k = math.log(tail_ratio) / (Z99 - Z90)
        z = np.where(z > Z90, (y + k * Z90) / (sigma + k), z)
    cdf = np.array([0.5 * math.erfc(-x / _SQRT2) for x in z])
    probs = np.clip(np.diff(np.concatenate(([0.0], cdf, [1.0]))), 0.0, None)
    out: FloatArray = probs / probs.sum()
    return out


class ReleaseWorld:
    """One release's world: what any minute at any weight produces (deterministic)."""

    def __init__(self, release: Release) -> None:
        self.release = release
        self.cond = _conditions(release)

    def minute(self, t: int, weight: float) -> Minute:
        r, c = self.release, self.cond
        rng = np.random.default_rng([r.seed, 2, t])
        total = int(rng.poisson(c.rate[t]))
        n_c = int(rng.binomial(total, weight))
        n_p = total - n_c
        p_p = min(1.0, r.base_error * float(c.err[t]))
        p_c = min(1.0, p_p * r.effect.error_ratio_at(t) * _cold(r, t, r.cold_error))
        n_c, x_c = self._errors(rng, n_c, p_c, float(c.bad_canary[t]))
        n_p, x_p = self._errors(rng, n_p, p_p, float(c.bad_primary[t]))
        m_p = r.median_ms * float(c.lat[t])
        m_c = m_p * r.effect.median_ratio_at(t) * _cold(r, t, r.cold_latency)
        return Minute(
            canary_requests=n_c,
            canary_errors=x_c,
            primary_requests=n_p,
            primary_errors=x_p,
            canary_hist=self._latencies(
                rng, n_c, m_c, r.effect.tail_ratio, float(c.stall_canary[t])
            ),
            primary_hist=self._latencies(rng, n_p, m_p, 1.0, float(c.stall_primary[t])),
        )

    def _latencies(
        self, rng: np.random.Generator, n: int, median_ms: float, tail_ratio: float, stall: float
    ) -> npt.NDArray[np.int64]:
        """One side's histogram: its requests, those of a stalled pod ``stall`` times slower."""
        r = self.release
        layout = r.world.layout
        if stall <= 0:
            return _hist(rng, n, layout, median_ms, r.sigma, tail_ratio)
        on_stalled = int(rng.binomial(n, 1.0 / r.pods))
        return _hist(rng, n - on_stalled, layout, median_ms, r.sigma, tail_ratio) + _hist(
            rng, on_stalled, layout, median_ms * stall, r.sigma, tail_ratio
        )

    def _errors(
        self, rng: np.random.Generator, n: int, p: float, bad_rate: float
    ) -> tuple[int, int]:
        """(requests, errors) of one side: base errors, a bad pod, retries."""
        w = self.release.world
        if w.retries:
            p /= RETRY_CLUSTER
        x = 0
        if bad_rate > 0:
            on_bad = int(rng.binomial(n, 1.0 / self.release.pods))
            x += int(rng.binomial(on_bad, bad_rate + (1 - bad_rate) * p))
            n_good = n - on_bad
        else:
            n_good = n
        x += int(rng.binomial(n_good, p))
        if w.retries and x > 0:
            retried = 2 * x + int(rng.binomial(x, 0.5))
            return n + retried, x + retried
        return n, x


def _hist(
    rng: np.random.Generator,
    n: int,
    layout: Layout,
    median_ms: float,
    sigma: float,
    tail_ratio: float = 1.0,
) -> npt.NDArray[np.int64]:
    if n == 0:
        return np.zeros(len(layout.les) + 1, dtype=np.int64)
    probs = bucket_probs(layout, median_ms, sigma, tail_ratio)
    out: npt.NDArray[np.int64] = rng.multinomial(n, probs)
    return out


class Decision(enum.StrEnum):
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled back"
    HELD = "held"


@dataclass(frozen=True, slots=True)
class Result:
    decision: Decision
    minutes: int
    reason: str = ""

    @property
    def rolled_back(self) -> bool:
        return self.decision is Decision.ROLLED_BACK

    @property
    def promoted(self) -> bool:
        return self.decision is Decision.PROMOTED


class Tick(enum.Enum):
    """What one analysis tick does to the run."""

    PASS = "pass"  # advance, or promote at the last step
    FAILED = "failed"  # one failed check
    ROLL_BACK = "roll back"  # a conclusive regression: roll back now
    HOLD = "hold"  # inconclusive: stay at this weight
    STALLED = "stalled"  # inconclusive, paused for data or a person: stay
    ADVANCE = "advance"  # inconclusive, but may advance: step up, never promote


Judge = Callable[[Minute, int, bool], tuple[Tick, str]]
"""A policy's verdict on one minute: (the minute, its number, whether a PASS promotes)."""


def _drive(world: ReleaseWorld, judge: Judge) -> Result:
    """Run one schedule: the controller's tick loop around ``judge``."""
    schedule = world.release.world.schedule
    steps = schedule.steps
    last = len(steps) - 1
    step, failed, tick = 0, 0, Tick.PASS
    for minute in range(1, MAX_MINUTES + 1):
        m = world.minute(minute, steps[step] / 100)
        if failed >= THRESHOLD:
            return Result(Decision.ROLLED_BACK, minute, "failed checks threshold reached")
        tick, reason = judge(m, minute, step == last)
        if tick is Tick.ROLL_BACK:
            return Result(Decision.ROLLED_BACK, minute, reason)
        if tick is Tick.FAILED:
            failed += 1
        elif tick is Tick.ADVANCE and step + 1 < last + (not schedule.iterations):
            step += 1  # never onto the last iteration of A/B testing, never promoting
        elif tick is Tick.PASS:
            if step == last:
                return Result(Decision.PROMOTED, minute)
            step += 1
    return Result(Decision.HELD, MAX_MINUTES, "stalled" if tick is Tick.STALLED else "undecided")


def _cumulative(hist: npt.NDArray[np.int64], layout: Layout) -> list[tuple[float, float]]:
    return list(zip(layout.cumulative_les, np.cumsum(hist).astype(float).tolist(), strict=True))


def _flagger_judge(layout: Layout) -> Judge:
    """Flagger's builtin checks on the last minute; NoData (no canary request) fails."""
    les = list(layout.cumulative_les)

    def judge(m: Minute, _minute: int, _last_step: bool) -> tuple[Tick, str]:
        if m.canary_requests == 0:
            return Tick.FAILED, "no values found (no canary traffic)"
        sr = 100.0 * (1 - m.canary_errors / m.canary_requests)
        r = judge_threshold("request-success-rate", sr, min=MIN_SUCCESS_RATE)
        if r.outcome is Outcome.FAIL:
            return Tick.FAILED, r.summary
        cum = np.cumsum(m.canary_hist).astype(float).tolist()
        p99 = histogram_quantile(0.99, les, cum) * layout.to_ms
        r = judge_threshold("request-duration", p99, max=MAX_DURATION_MS)
        if r.outcome is Outcome.FAIL:
            return Tick.FAILED, r.summary
        return Tick.PASS, ""

    return judge


def run_threshold(release: Release, world: ReleaseWorld | None = None) -> Result:
    """Flagger's policy: cumulative failed checks, rollback at the tick after the 5th."""
    world = world or ReleaseWorld(release)
    return _drive(world, _flagger_judge(release.world.layout))


ERROR_SPEC: CompareSpec = parse_compare({}, "bench.compare", metric_name="request-success-rate")
LATENCY_SPEC: CompareSpec = parse_compare({}, "bench.compare", metric_name="request-duration")


class _CompareJudge:
    """``compare`` on both builtin metrics, states carried tick to tick as the controller does."""

    def __init__(self, layout: Layout, error_spec: CompareSpec, latency_spec: CompareSpec) -> None:
        self.layout, self.error_spec, self.latency_spec = layout, error_spec, latency_spec
        # The first window starts when the canary's traffic does (T0), as in evaluate().
        self.err_state: SequentialState = new_state(T0, error_spec.test)
        self.lat_state: SequentialState = new_state(T0, latency_spec.test)

    def __call__(self, m: Minute, minute: int, last_step: bool) -> tuple[Tick, str]:
        now = T0 + timedelta(minutes=minute)
        window = Window(m.canary_requests, m.canary_errors, m.primary_requests, m.primary_errors)
        err_state = add_window(
            self.err_state, window, self.error_spec, window_end=now, interval_seconds=INTERVAL_S
        )
        lat_state = add_histograms(
            self.lat_state,
            _cumulative(m.canary_hist, self.layout),
            _cumulative(m.primary_hist, self.layout),
            self.latency_spec,
            window_end=now,
            interval_seconds=INTERVAL_S,
        )
        err = decide(self.error_spec, err_state, metric="request-success-rate", last_step=last_step)
        lat = decide(
            self.latency_spec,
            lat_state,
            metric="request-duration",
            buckets_to_ms=self.layout.to_ms,
            last_step=last_step,
        )
        self.err_state, self.lat_state = err.state, lat.state
        return _controller_tick((err, lat))


def _controller_tick(verdicts: Sequence[CompareResult]) -> tuple[Tick, str]:
    """What canary/core/checks.py (``_judge``, ``_hold``) does with the tick's verdicts.

    ``warming_up``, ``stalled`` and ``may_advance`` are read as plain attributes.
    """
    failing = [v for v in verdicts if v.outcome is Outcome.FAIL]
    if any(v.conclusive for v in failing):
        return Tick.ROLL_BACK, next(v.summary for v in failing if v.conclusive)
    if failing:
        return Tick.FAILED, failing[0].summary
    waiting = [v for v in verdicts if v.outcome is Outcome.INCONCLUSIVE]
    if not waiting:
        return Tick.PASS, ""
    inconclusive = [v for v in waiting if not v.warming_up]
    if not inconclusive:
        return Tick.HOLD, waiting[0].summary  # warming up: observed, not judged
    if any(v.stalled for v in inconclusive):
        return Tick.STALLED, next(v.summary for v in inconclusive if v.stalled)
    if len(inconclusive) == len(waiting) and all(v.may_advance for v in inconclusive):
        return Tick.ADVANCE, inconclusive[0].summary
    return Tick.HOLD, inconclusive[0].summary


def run_statistical(
    release: Release,
    world: ReleaseWorld | None = None,
    error_spec: CompareSpec = ERROR_SPEC,
    latency_spec: CompareSpec = LATENCY_SPEC,
) -> Result:
    """Same schedule, the controller's handling of ``compare`` verdicts."""
    world = world or ReleaseWorld(release)
    error_spec = error_spec.with_mesh_retries(release.world.declared_retries)
    return _drive(world, _CompareJudge(release.world.layout, error_spec, latency_spec))


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Both policies on one release; for a bad release, the threshold policy on its good twin.

    The twin is the same release in the same world without the regression: when
    the threshold policy rolls both back, its rollback of the bad one is right
    by accident (it carries no evidence about the regression).
    """

    threshold: Result
    compare: Result
    threshold_twin: Result | None = None


def run_pair(release: Release) -> Outcomes:
    """Both policies on the same world (and the threshold policy on a bad release's twin)."""
    world = ReleaseWorld(release)
    twin = None
    if release.effect != GOOD:
        twin = run_threshold(replace(release, effect=GOOD))
    return Outcomes(run_threshold(release, world), run_statistical(release, world), twin)
