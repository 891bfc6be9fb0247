"""Numerical building blocks of the statistical judge (numpy only, no scipy).

Kept apart from the judge so each piece can be checked against known values:
the normal distribution (CDF via ``erfc``, quantile by Acklam's rational
approximation refined with one Halley step), a stable log-sum-exp, the
conditional-binomial log likelihood ratios of the sequential count test,
and histogram quantiles the way PromQL's ``histogram_quantile`` computes them.

The sequential count test
-------------------------
Per window ``s`` the canary saw ``n_c`` requests with ``x_c`` events (errors,
or requests slower than a threshold), the primary ``n_p`` and ``x_p``.  Given
the window's total ``k = x_c + x_p`` events, the canary's share of them is
Binomial(k, pi(theta)) with ``pi(theta) = theta n_c / (theta n_c + n_p)`` where
``theta`` is the ratio of the canary's event rate to the primary's.  That
conditional law does not depend on the base rate, so drift and bursts that hit
both versions cancel, and windows with different traffic splits combine by
multiplying likelihood ratios.  The test of ``theta <= theta0`` against
``theta > theta0`` uses a mixture over a fixed grid of alternatives; the mixture
of likelihood-ratio martingales is itself a non-negative martingale under the
null, so by Ville's inequality rejecting when it exceeds ``1/alpha`` keeps the
false-alarm probability below ``alpha`` no matter how often it is checked.
(With binomial rather than Poisson events the conditional law is
hypergeometric (Fisher's noncentral one away from ``theta = 1``); computed exactly at
the null's edge ``theta0 = 1.1`` and base rates of 1-80%, the likelihood ratio's
expectation stays at most 1 there, so the test stays valid, slightly conservative.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "RATIO_GRID",
    "RATIO_WEIGHTS",
    "Scatter",
    "dispersion",
    "histogram_quantile",
    "logsumexp",
    "mixture_log_lambda",
    "needed_canary_requests",
    "normal_cdf",
    "normal_quantile",
    "scatter",
    "stratum_log_lr",
]

FloatArray = npt.NDArray[np.float64]

# Alternatives of the mixture, as multiples of the null ratio theta0, with equal weights.
RATIO_GRID: FloatArray = np.geomspace(1.15, 10.0, 14)
RATIO_WEIGHTS: FloatArray = np.full(RATIO_GRID.shape, 1.0 / RATIO_GRID.size)


def normal_cdf(z: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


_A = (
    -3.969683028665376e01,
    2.209460984245205e02,
    -2.759285104469687e02,
    1.383577518672690e02,
    -3.066479806614716e01,
    2.506628277459239e00,
)
_B = (
    -5.447609879822406e01,
    1.615858368580409e02,
    -1.556989798598866e02,
    6.680131188771972e01,
    -1.328068155288572e01,
)
_C = (
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549732539343734e00,
    4.374664141464968e00,
    2.938163982698783e00,
)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
      3.754408661907416e00)  # fmt: skip


def normal_quantile(p: float) -> float:
    """Inverse of :func:`normal_cdf` (Acklam's approximation plus one Halley step)."""
    if not 0.0 < p < 1.0:
        if p == 0.0:
            return -math.inf
        if p == 1.0:
            return math.inf
        raise ValueError(f"probability must be in [0, 1], got {p}")
    plow = 0.02425
    if p < plow:
        q = math.sqrt(-2 * math.log(p))
        x = (((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]) / (
            (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1
        )
    elif p <= 1 - plow:
        q = p - 0.5
        r = q * q
        x = (
            (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5])
            * q
            / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1)
        )
    else:
        q = math.sqrt(-2 * math.log(1 - p))
        x = -(((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]) / (
            (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1
        )
    # One Halley refinement step brings it to ~1e-15.
    e = normal_cdf(x) - p
    u = e * math.sqrt(2 * math.pi) * math.exp(x * x / 2)
    return x - u / (1 + x * u / 2)


def logsumexp(values: FloatArray) -> float:
    m = float(np.max(values))
    if math.isinf(m):
        return m
    return m + math.log(float(np.sum(np.exp(values - m))))


def stratum_log_lr(
    canary_n: float,
    canary_x: float,
    primary_n: float,
    primary_x: float,
    theta0: float,
    grid: FloatArray = RATIO_GRID,
) -> FloatArray:
    """Log likelihood ratio of each alternative ``theta0 * grid[j]`` vs ``theta0`` for one window.

    Degenerate windows (no requests on one side, or no events) carry no
    information and return zeros.
    """
    if canary_n <= 0 or primary_n <= 0 or canary_x + primary_x <= 0:
        return np.zeros(grid.shape)
    theta = theta0 * grid
    pi0 = theta0 * canary_n / (theta0 * canary_n + primary_n)
    pi1 = theta * canary_n / (theta * canary_n + primary_n)
    q0 = primary_n / (theta0 * canary_n + primary_n)
    q1 = primary_n / (theta * canary_n + primary_n)
    out: FloatArray = canary_x * (np.log(pi1) - math.log(pi0)) + primary_x * (
        _log_complement(pi1, q1) - _log_complement_of(pi0, q0)
    )
    return out


NEAR_ONE = 1e-8
"""How close to 1 a share may come before log(1 - share) is taken from 1 - share computed
without cancellation (:func:`_log_complement`)."""


def _log_complement(p: FloatArray, q: FloatArray) -> FloatArray:
    """log(1 - p), given ``q``, 1 - p computed without cancellation.

    ``log1p(-p)`` everywhere but where ``p`` is within :data:`NEAR_ONE` of 1: a canary with
    ten million times the primary's requests (or a stored count gone wrong) made ``p`` round
    to 1 and ``log1p(-1)`` raise; ``log(q)`` there is exact.  Elsewhere the very numbers
    they were (the judge's hot path, and no verdict moves by a last digit).
    """
    if float(q.min()) >= NEAR_ONE:
        out: FloatArray = np.log1p(-p)
        return out
    near = q < NEAR_ONE
    out = np.where(near, np.log(np.where(near, q, 1.0)), np.log1p(-np.where(near, 0.0, p)))
    return out


def _log_complement_of(p: float, q: float) -> float:
    """:func:`_log_complement` of one share."""
    return math.log1p(-p) if q >= NEAR_ONE else math.log(q)


def mixture_log_lambda(
    log_lr: Sequence[float] | FloatArray, dispersion: float | Sequence[float] = 1.0
) -> float:
    """Log of the mixture likelihood ratio for the accumulated per-alternative log LRs.

    ``log_lr`` is one block of :data:`RATIO_GRID` per tested boundary, all
    alternatives weighted equally: a mixture of martingales with fixed weights
    is a martingale, so several boundaries cost no union bound.  Each log LR is
    divided by its block's ``dispersion`` first (the quasi-likelihood correction
    for counts that vary more than independent requests would); one number
    applies to every block.
    """
    arr = np.asarray(log_lr, dtype=np.float64)
    if arr.size == 0 or arr.size % RATIO_GRID.size:
        raise ValueError(
            f"expected a multiple of {RATIO_GRID.size} log likelihood ratios, got {arr.size}"
        )
    blocks = arr.size // RATIO_GRID.size
    phi = np.broadcast_to(np.maximum(np.asarray(dispersion, dtype=np.float64), 1.0), (blocks,))
    return logsumexp(arr / np.repeat(phi, RATIO_GRID.size) - math.log(arr.size))


DISPERSION_PRIOR_DF = 4.0
"""Pseudo-windows the dispersion estimate starts from: of perfectly binomial counts, or of
the scatter a declared retry policy makes (``expected``, see :func:`scatter`).

With two or three windows a Pearson statistic is mostly noise; the prior keeps
the estimate near where it starts until the windows say otherwise, and one wild window
moves it by at most a few units instead of a hundredfold.
"""


OUTLIER_FACTOR = 15.0
"""A window whose Pearson term is more than this many times the others' mean (and more than
this) is left out of the dispersion estimate: one cold or broken minute, not the scatter of the rest.

Why: a canary still cold in its first judged minute, or a pod that fails for one minute,
gives one window a Pearson term of 50 to 500 while the others stay near 1. Counted, that
one window would inflate the dispersion to 5-10 for the rest of the run and divide the
evidence of a real regression by as much (measured: 3.3% of 1% -> 2% regressions missed
after a cold start, and 27% next to one bad pod). Left out, it costs nothing in validity:
the window's own evidence is capped (``WINDOW_CAP`` in :mod:`analysis._compare`) so it cannot
fail the canary alone, and only the single largest term is ever left out, so a second
wild window counts in full. Retries that fail together spread their scatter over every
window and are not outliers in this sense (their false rollbacks did not move: 13 against
14 of 1,600 good releases). 15 was chosen on ``bench/decision_quality.py``: 8 also cut the
misses but let more retry storms through; 30 left some cold starts in.
"""


PAIR_EVENTS = 5.0
"""Events each side needs in a pair of neighbouring windows for the pair to count
(:func:`_neighbour_scatter`), Pearson's rule of thumb; half the pairs must count."""

NEIGHBOUR_FACTOR = 2.0
"""How many times the scatter between neighbouring windows the run's own must be before the
neighbours' is taken instead (:func:`_neighbour_scatter`): a ratio that changed, not clusters.

Under the null both measure the same scatter, and taking the smaller of the two every time
would take their noise for less scatter: measured on ``bench/decision_quality.py`` (class 5,
clustered errors and stalled pods; before the safeguards of :func:`_neighbour_scatter`), 5 more
false rollbacks of 2,400 at 1, 3 more at 2; with them, 1 more at 2. A regression 10 times
the primary's error rate from minute 5 on is caught 196 times in 200 at 2 (1 before); 3
times, 133 (78 before; 185 at 1, 74 at 3).
"""

Row = tuple[float, float, float, float]
"""One window's counts: canary requests, canary events, primary requests, primary events."""


def dispersion(windows: Sequence[Row], expected: float = 1.0) -> float:
    """How many times more the canary's share of events varies than the binomial allows.

    ``windows`` are ``(canary requests, canary events, primary requests, primary
    events)``.  Under the model each window's canary share of its ``k`` events is
    Binomial(k, pi) with ``pi = theta n_c / (theta n_c + n_p)``; ``theta`` is
    the Mantel-Haenszel estimate over all windows (so a steady regression is not
    mistaken for noise), and the Pearson statistic over the windows, divided by its degrees
    of freedom and shrunk towards 1 by :data:`DISPERSION_PRIOR_DF`, estimates the
    overdispersion phi (>= 1).  Retries that fail together, errors that come in
    bursts: all make phi > 1, and dividing the log likelihood ratios by phi is the
    classical quasi-likelihood correction.  A single wild window (a cold or broken
    minute) is left out of the estimate (:data:`OUTLIER_FACTOR`).

    ``expected`` is where the estimate starts instead of 1, with the weight of
    :data:`DISPERSION_PRIOR_DF` windows: the scatter a declared retry policy makes (every
    failed request counted ``retries + 1`` times at most).  Why a start and not a floor:
    retries that succeed make no clusters, and a few windows of independent errors bring the
    estimate back down; why not from the windows alone: the first two or three of them cannot
    tell clusters from a steady ratio, and a good release is rolled back in them.
    """
    return scatter(windows, expected).phi


@dataclass(frozen=True, slots=True)
class Scatter:
    """What :func:`scatter` measured.

    ``phi`` is :func:`dispersion`; ``ratio`` the Mantel-Haenszel ratio the scatter was
    measured around (None when there was nothing to measure it around: fewer than two
    windows with events, or all their events on one side); ``wild`` the position, in the
    windows given, of the one window left out as wild (None when none was); ``pearson``
    and ``df`` the Pearson statistic and its degrees of freedom, before the prior.
    """

    phi: float
    ratio: float | None
    wild: int | None = None
    pearson: float = 0.0
    df: float = 0.0


def scatter(windows: Sequence[Row], expected: float = 1.0) -> Scatter:
    """:func:`dispersion`, with the ratio it was measured around and the window it left out.

    Where the run's ratio changed, the scatter between neighbouring windows stands for it
    (:func:`_neighbour_scatter`).
    """
    start = max(1.0, expected)
    kept = [i for i, w in enumerate(windows) if w[0] > 0 and w[2] > 0 and w[1] + w[3] > 0]
    rows = [windows[i] for i in kept]
    if len(rows) < 2:
        return Scatter(start, None)
    arr = np.asarray(rows, dtype=np.float64)
    theta = _common_ratio(arr)
    if theta is None:
        return Scatter(start, None)  # all events on one side: no spread of the share to measure
    terms = _pearson_terms(arr, theta)
    wild = None
    if terms.size >= 3:
        # The wild window is judged against a ratio fitted without it: fitted with it, it
        # drags the ratio towards itself and makes every other window look wild as well.
        worst = int(np.argmax(terms))
        others = np.delete(arr, worst, axis=0)
        theirs = _common_ratio(others)
        if theirs is not None:
            rest = _pearson_terms(others, theirs)
            alone = float(_pearson_terms(arr[worst : worst + 1], theirs).sum())
            if alone > OUTLIER_FACTOR * max(1.0, float(rest.mean())):
                terms, wild, theta = rest, kept[worst], theirs
    df = max(float(terms.size) - 1.0, 0.0)
    pearson = float(terms.sum())
    phi = _shrunk(pearson, df, start)
    between = _neighbour_scatter(arr)
    # Whether the ratio changed is asked of the counts alone, each estimate shrunk towards 1:
    # asked with a declared start, the start itself could tip the run's estimate over the
    # neighbours' and put phi below the undeclared one (a declared policy adding a FAIL).
    if between is not None and _shrunk(pearson, df, 1.0) > NEIGHBOUR_FACTOR * _shrunk(
        *between, 1.0
    ):
        phi = _shrunk(*between, start)  # the ratio changed during the run: that is no scatter
    return Scatter(phi, theta, wild, pearson, df)


def _shrunk(pearson: float, df: float, start: float) -> float:
    """A Pearson statistic on ``df`` degrees of freedom as a dispersion: per degree of
    freedom, with :data:`DISPERSION_PRIOR_DF` pseudo-windows at ``start``, never below 1."""
    return max(1.0, (pearson + DISPERSION_PRIOR_DF * start) / (df + DISPERSION_PRIOR_DF))


def _neighbour_scatter(arr: FloatArray) -> tuple[float, float] | None:
    """The scatter between neighbouring windows: each pair's Pearson statistic around its
    own ratio (one degree of freedom), summed, with the one wild pair left out as
    :func:`scatter` leaves out a wild window; the sum and the pairs counted, to be shrunk as
    the run's own is (:func:`_shrunk`).

    Why: a canary whose ratio to the primary changes during the run (it starts failing at
    minute 3, or fails more every minute) has windows that disagree with one common ratio,
    and the scatter around it read the regression itself as scatter: a canary failing 30%
    of its requests from minute 3 on, against 1%, measured phi near 30 and was promoted
    (0 of 200 caught), and a canary five times slower from minute 5 on (0 of 100). Between
    neighbours, a step is one wild pair and a trend a small difference, while clusters
    scatter neighbours as much as any two windows. It replaces the run's scatter only where
    that is :data:`NEIGHBOUR_FACTOR` times more.

    Two things keep a pod that stalls for a minute (every request it serves 3-10 times
    slower) from passing for a step: a pair counts only with :data:`PAIR_EVENTS` events on
    each side (in a thin tail, where the primary has next to no slow requests, a stalled
    minute next to a quiet one agrees with a ratio of 300, and is no wild pair at all), and
    the latest pair is never left out as wild (a change in the latest window is a step or
    one wild minute, and only the next window tells). Without them, two stalled canary
    minutes failed 3 good runs of 100 in ``tests/analysis/test_judge_validity.py`` (none
    with them), and the benchmark's stalled-pod rows 3 good releases of 800 more. None when
    fewer than two pairs, or fewer than half of them, count.
    """
    # All pairs at once (every tick, every tested boundary: this is the judge's hot path):
    # pair i is windows i and i + 1, around its own Mantel-Haenszel ratio.
    n_c, x_c, n_p, x_p = arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]
    total = n_c + n_p
    tops, bottoms = x_c * n_p / total, x_p * n_c / total
    top, bottom = tops[:-1] + tops[1:], bottoms[:-1] + bottoms[1:]
    # A pair with few events on a side cannot contradict the other window: a stalled
    # minute next to a quiet one in a thin tail looks like a steady ratio of 300.
    counts = (top > 0) & (bottom > 0)
    counts &= np.minimum(x_c[:-1] + x_c[1:], x_p[:-1] + x_p[1:]) >= PAIR_EVENTS
    theta = top[counts] / bottom[counts]
    first = np.flatnonzero(counts)
    values = _row_terms(arr[first], theta) + _row_terms(arr[first + 1], theta)
    if values.size < max(2.0, (len(arr) - 1) / 2):
        return None
    worst = int(np.argmax(values))
    others = np.delete(values, worst)
    # The latest pair is kept: a change in the latest window may be a step or one wild
    # minute (a stalled pod), and only the next window tells them apart.
    latest = worst == values.size - 1
    if not latest and values[worst] > OUTLIER_FACTOR * max(1.0, float(others.mean())):
        values = others
    return float(values.sum()), float(values.size)


def _common_ratio(arr: FloatArray) -> float | None:
    """The Mantel-Haenszel ratio of the canary's event rate to the primary's, over windows.

    A pooled ratio would mix up windows with different weights and base rates (a shared
    incident at 20% weight). None when all events are on one side.
    """
    n_c, x_c, n_p, x_p = arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]
    total = n_c + n_p
    top, bottom = float(np.sum(x_c * n_p / total)), float(np.sum(x_p * n_c / total))
    return top / bottom if top > 0 and bottom > 0 else None


def _row_terms(arr: FloatArray, theta: FloatArray) -> FloatArray:
    """Each row's Pearson term at its own ratio ``theta``; 0 where it has no variance."""
    n_c, x_c, n_p, x_p = arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]
    k = x_c + x_p
    pi = theta * n_c / (theta * n_c + n_p)
    var = k * pi * (1 - pi)
    safe = np.where(var > 0, var, 1.0)
    terms: FloatArray = np.where(var > 0, (x_c - k * pi) ** 2 / safe, 0.0)
    return terms


def _pearson_terms(arr: FloatArray, theta: float) -> FloatArray:
    """Each window's Pearson term of the canary's share of events, at the ratio ``theta``."""
    n_c, x_c, n_p, x_p = arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]
    k = x_c + x_p
    pi = theta * n_c / (theta * n_c + n_p)
    var = k * pi * (1 - pi)
    ok = var > 0
    terms: FloatArray = (x_c[ok] - k[ok] * pi[ok]) ** 2 / var[ok]
    return terms


def needed_canary_requests(
    *,
    base_rate: float,
    effect_rate: float,
    traffic_ratio: float,
    theta0: float,
    log_boundary: float,
    dispersion: float = 1.0,
    z: float = 2.0,
) -> float | None:
    """Canary requests after which the test detects ``effect_rate`` with high probability.

    The primary has event rate ``base_rate`` and ``traffic_ratio`` primary
    requests per canary request; a canary at ``effect_rate`` then adds, per
    canary request, an expected ``mu`` to the log likelihood ratio of each
    alternative, with variance ``v`` (Poisson approximation).  The test rejects
    once the log LR of the best alternative passes ``log_boundary``; this
    returns the smallest ``n`` with ``n mu - z sqrt(n v) >= log_boundary * phi``,
    i.e. the boundary is passed with probability about ``Phi(z)`` (98% for
    ``z = 2``).  ``None`` when no alternative gains evidence (no events at all).
    """
    if base_rate <= 0 or effect_rate <= base_rate * theta0 or traffic_ratio <= 0:
        return None
    theta1 = effect_rate / base_rate
    rho = traffic_ratio
    theta = theta0 * RATIO_GRID
    pi0 = theta0 / (theta0 + rho)
    pi = theta / (theta + rho)
    down = _log_complement(pi, rho / (theta + rho)) - _log_complement_of(pi0, rho / (theta0 + rho))
    up = np.log(pi / pi0)
    mu = base_rate * (theta1 * up + rho * down)
    v = base_rate * (theta1 * up**2 + rho * down**2)
    best = int(np.argmax(mu))
    if mu[best] <= 0:
        return None
    m, var = float(mu[best]), float(v[best])
    bound = log_boundary * max(dispersion, 1.0)
    root = (z * math.sqrt(var) + math.sqrt(z * z * var + 4 * m * bound)) / (2 * m)
    return root * root


def histogram_quantile(q: float, les: Sequence[float], counts: Sequence[float]) -> float:
    """Quantile ``q`` of a cumulative histogram, interpolated like PromQL's ``histogram_quantile``.

    ``les`` must be sorted and end with ``+Inf``; ``counts`` are cumulative.
    Returns NaN for an empty histogram.
    """
    if not les or counts[-1] <= 0:
        return math.nan
    rank = q * counts[-1]
    prev_le, prev_count = 0.0, 0.0
    for i, (le, c) in enumerate(zip(les, counts, strict=True)):
        if c >= rank:
            if math.isinf(le):
                return les[i - 1] if i > 0 else math.nan
            if i == 0 and le <= 0:
                return le
            if c == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (c - prev_count)
        prev_le, prev_count = le, c
    return math.nan
