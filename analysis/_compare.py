"""The statistical canary-vs-primary judge (``metrics[].compare``), pure functions only.

Fetching happens elsewhere; here, numbers go in and a decision comes out, so
every verdict can be replayed from the numbers stored in the status.  Both
tests are the sequential count test of :mod:`analysis._stats`:

* ``errorRate``: events are errors among requests;
* ``latency``: events are requests slower than a bucket boundary, at up to
  four boundaries chosen from the pooled histogram of both versions (the
  boundary at the pooled ``quantile``, the next two above it, and the boundary
  of the wider tail below it), so a slower canary shows up as a larger share of
  the slow requests.  Choosing the boundaries from pooled data (or from the
  warm primary's own, when those start lower: :func:`_first_bounds`) keeps the
  canary's share of slow requests exchangeable under the null.

Each window's likelihood ratio is capped (no single window decides for a
regression) and staked (none decides against one): :func:`_staked`.

A FAIL needs two things, at any sample size (the evidence is valid whenever it is
looked at): statistical evidence (mixture likelihood ratio >= 1/alpha, i.e. the
anytime-valid p-value <= alpha), and a practically relevant gap (errors: canary
worse by at least ``allowedIncrease`` as a ratio and ``minDifference`` in
absolute terms; latency: the canary's quantile not below the primary's, by
``minDifference`` ms when set; see :func:`_relevant`, and
:func:`_without_wild_window` for a veto that one wild window of the primary is
behind).  A PASS needs ``minSampleSize`` requests on both sides as well; fewer
is INCONCLUSIVE, at most ``maxInconclusive`` times in a row; then
``onMaxInconclusive`` decides.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import numpy.typing as npt

from analysis._spec.compare import SCATTERED, CompareSpec
from analysis._spec.vocabulary import (
    REQUEST_DURATION,
    REQUEST_SUCCESS_RATE,
    Bucket,
    CompareTest,
    OnInconclusive,
    OnMaxInconclusive,
    Outcome,
)
from analysis._stats import (
    RATIO_GRID,
    Scatter,
    histogram_quantile,
    mixture_log_lambda,
    needed_canary_requests,
    normal_quantile,
    scatter,
    stratum_log_lr,
)
from analysis._threshold import format_value
from analysis._verdict import Comparison, SequentialState

__all__ = [
    "CompareResult",
    "Window",
    "add_histograms",
    "add_window",
    "decide",
    "is_run_of",
    "new_state",
    "run_key",
    "window_from_histograms",
]


@dataclass(frozen=True, slots=True)
class Window:
    """What one window of time showed: requests and events (errors or slow requests) per side."""

    canary_requests: float
    canary_events: float
    primary_requests: float
    primary_events: float


@dataclass(frozen=True, slots=True)
class CompareResult:
    outcome: Outcome
    comparison: Comparison
    summary: str
    conclusive: bool
    state: SequentialState
    value: float | None
    unit: str
    warming_up: bool = False
    may_advance: bool = False
    stalled: bool = False
    primary_value: float | None = None  # the primary's, as ``value`` shows the canary's


RANKS = {CompareTest.ERROR_RATE: 1, CompareTest.LATENCY: 4}
"""Boundaries tested at once, at most: errors are one count; latency tests the boundary at
the pooled ``quantile``, the next two above it, and the boundary of the wider tail below it
when that is a fourth one (see :func:`window_from_histograms`).  A run's evidence keeps one
block per distinct boundary, sized when the boundaries are fixed."""

WINDOW_CAP = 0.75
"""A window adds at most ``WINDOW_CAP * log(1/alpha)`` per analysis interval to any log LR:
a window shorter than the metric's ``interval`` its share of that, a longer one no more.

Why: one bad minute (a pod that fails, a burst of retries) is not a regression,
and with the cap no single window can reach the rejection level alone; a
regression that lasts shows up in the next one.  Two windows at the cap for every
alternative (a clear regression) reach it: ``alpha ** -1.5``.  Why no more for a longer
window (an analysis interval longer than the metric's, a tick delayed by a restart): scaled
with its length, a window of two intervals could add twice the cap, and one bad minute in it
decided the run alone.  Capping keeps the test valid: ``E[min(LR, c)] <= E[LR] <= 1`` under
the null, so the capped product is a non-negative supermartingale and Ville's inequality
still bounds the false alarm rate by alpha.
"""

RECENT_WINDOWS = 60
"""Windows whose counts are kept for the dispersion estimate (the status stays small)."""


def new_state(window_end: datetime, test: CompareTest = CompareTest.ERROR_RATE) -> SequentialState:
    """The evidence of a new run whose first window starts at ``window_end``."""
    size = RANKS[test] * len(RATIO_GRID)
    return SequentialState(
        window_end=window_end, log_lr=tuple(0.0 for _ in range(size)), started=window_end
    )


def is_run_of(state: SequentialState, test: CompareTest) -> bool:
    """Whether a stored state can go on as the evidence of ``test`` (else a new run starts).

    Why not compare sizes with a new state: a latency run keeps one block of alternatives per
    distinct boundary once they are fixed, so its size depends on its buckets.  An error test
    keeps one block and no boundaries; a latency test at least one block per fixed boundary
    and at most :data:`RANKS` (states written when it tested three boundaries keep three),
    and more than one block before its boundaries are fixed.  A state of the other test is
    not carried on.
    """
    size = len(RATIO_GRID)
    if not state.log_lr or len(state.log_lr) % size:
        return False
    blocks = len(state.log_lr) // size
    if test is CompareTest.ERROR_RATE:
        return blocks == 1 and not state.bounds
    fewest = len(state.bounds) if state.bounds else 2
    return fewest <= blocks <= RANKS[CompareTest.LATENCY]


def run_key(spec: CompareSpec, *, interval: str, queries: Sequence[str]) -> str:
    """What a run's evidence is gathered under, in a few characters (:attr:`SequentialState.key`).

    Why: the evidence sums windows capped by ``alpha`` and the ``interval``, tested against
    ``allowedIncrease``, counted past the ``quantile``'s boundaries, by these ``queries``,
    after this ``warmup``; a commit that changes any of them mid-run went on with the old
    evidence under the new settings. A warm-up lengthened from 1m to 10m took the run back
    into it: a canary failing half its requests was reported on the evidence frozen before
    the change, "success rate 99%", and passed; a quantile changed from 0.99 to 0.5 was
    shown as "p50" while the p99's boundaries were still tested. The decision's own settings
    (``minSampleSize``, ``maxInconclusive``, ``detectIncrease``, ``minDifference``, the
    fallbacks, ``failFast``, ``retries``) are read at each decision and may change freely.
    """
    parts = (
        spec.test.value,
        repr(spec.alpha),
        repr(spec.allowed_increase),
        repr(spec.quantile),
        repr(spec.warmup_seconds),
        interval,
        *queries,
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _clean(x: float) -> float:
    return 0.0 if not math.isfinite(x) or x < 0 else float(x)


def _counts(window: Window) -> tuple[float, float, float, float]:
    # Prometheus' increase() extrapolates; requests and events are counted, so round them,
    # both: events rounded up past fractional requests made error rates over 100% (3 errors
    # of 2.6 requests, a success rate of -15%).
    n_c = float(round(_clean(window.canary_requests)))
    n_p = float(round(_clean(window.primary_requests)))
    x_c = float(round(min(_clean(window.canary_events), n_c)))
    x_p = float(round(min(_clean(window.primary_events), n_p)))
    return n_c, x_c, n_p, x_p


def add_window(
    state: SequentialState,
    window: Window | Sequence[Window],
    spec: CompareSpec,
    *,
    window_end: datetime,
    interval_seconds: float = 60.0,
) -> SequentialState:
    """Fold one window's counts into the running evidence (pure).

    ``window`` is one :class:`Window`, or one per tested boundary (latency).  A
    window that ends inside the warm-up (``compare.warmup`` after the run's
    first window began) is counted for the report but never judged.
    """
    windows = [window] if isinstance(window, Window) else list(window)
    started = state.started or state.window_end
    first = _counts(windows[0]) if windows else (0.0, 0.0, 0.0, 0.0)  # no boundary to count at
    # Once a window is judged the run is past its warm-up for good (a clock that went back
    # does not take it back there).
    if state.windows == 0 and spec.in_warmup(
        interval_seconds, (window_end - started).total_seconds()
    ):
        # Reported, never judged; not even its scatter counts: a cold start would
        # pass for overdispersion and discount the evidence of a real regression.
        warm = tuple(a + b for a, b in zip(state.warm, first, strict=True))
        return replace(
            state,
            window_end=window_end,
            started=started,
            warm=(warm[0], warm[1], warm[2], warm[3]),
            warm_windows=state.warm_windows + 1,
        )
    recent, caps = state.recent, state.recent_caps
    counted = [_counts(w) for w in windows]
    seconds = max(0.0, (window_end - state.window_end).total_seconds())
    share = min(1.0, seconds / max(interval_seconds, 1.0))  # no window decides alone
    cap = WINDOW_CAP * math.log(1.0 / spec.alpha) * share
    if any(x_c + x_p > 0 for _, x_c, _, x_p in counted):
        entry = (first[0], first[2], *(x for _, x_c, _, x_p in counted for x in (x_c, x_p)))
        recent = (*recent, entry)[-RECENT_WINDOWS:]
        if spec.test is CompareTest.LATENCY:  # only latency takes a wild window back
            caps = (*caps, cap)[-RECENT_WINDOWS:]
    steps = []
    for rank in range(len(state.log_lr) // len(RATIO_GRID)):
        if rank < len(windows):
            n_c, x_c, n_p, x_p = _counts(windows[rank])
            added = stratum_log_lr(n_c, x_c, n_p, x_p, spec.allowed_increase)
            steps.append(_staked(added, cap, spec.alpha))
        else:
            steps.append(np.zeros(len(RATIO_GRID)))
    floored = np.maximum(np.asarray(state.log_lr, dtype=np.float64), -EVIDENCE_FLOOR)
    log_lr = tuple(float(a) for a in floored + np.concatenate(steps))
    n_c, x_c, n_p, x_p = first
    matched = state.matched
    if n_p > 0:
        matched = (matched[0] + n_c, matched[1] + n_c * x_p / n_p)
    return replace(
        state,
        matched=matched,
        window_end=window_end,
        started=started,
        log_lr=log_lr,
        canary_requests=state.canary_requests + n_c,
        canary_events=state.canary_events + x_c,
        primary_requests=state.primary_requests + n_p,
        primary_events=state.primary_events + x_p,
        windows=state.windows + 1,
        recent=recent,
        recent_caps=caps,
    )


EVIDENCE_FLOOR = 20.0
"""How far below zero (in nats) an alternative's evidence can sink before the next window.

Why: a good canary's evidence against every regression grows without bound, up to 4.6 nats
a window (the stake, :func:`_staked`), and a regression that begins after a long good run
had first to pay all of it back: a canary going from 1% to 5% errors after 150 good
minutes (10,000 requests a minute) was rolled back 96 minutes later, and ``exp`` of a good
run's evidence overflowed after 156 minutes at 100,000 requests a minute (331 at 10,000),
the judge raising on every tick after. With the floor (the wealth of a bet never below
``e^-20`` before the next window: the CUSUM's restart, in the e-value's terms) the same
canary is rolled back 8 minutes after it turned. What it costs in validity: each window
may add at most ``e^-20`` to the wealth's expectation, so over ``T`` windows the chance of
a false rollback is at most ``alpha * (1 + T e^-20)``: a week of one-minute windows turns
1% into 1.00002%. For counts scattered by ``phi`` the bound weakens to ``alpha * (1 + T
e^(-20/phi))`` (the test reads the evidence divided by ``phi``); simulated, a day of
clustered errors at the null's edge was rolled back as often with the floor as without
(docs/analysis.md). On ``bench/decision_quality.py``, whose runs are short, it moved no
release.
"""


STAKE_KEPT = 0.01
"""The share of its wealth a window never stakes, at most (``alpha`` if smaller): :func:`_staked`."""


def _staked(log_lr: npt.NDArray[np.float64], cap: float, alpha: float) -> npt.NDArray[np.float64]:
    """What one window adds to each alternative's log LR: ``log(k + (1 - k) * min(LR,
    e^cap))``, the window's likelihood ratio capped (:data:`WINDOW_CAP`) and staked, keeping
    back ``k = min(alpha, STAKE_KEPT)``.

    Why staked: the cap keeps one window from deciding for a regression; the stake keeps one
    window from deciding against it.  A minute in which a pod of the primary fails or stalls
    makes the canary look far better than the primary, and its likelihood ratio for every
    regression is tiny (e^-20 to e^-1350 at 100 requests/s): unstaked, that one minute erased
    the evidence of every window after it, and a real regression next to it was promoted.
    Staked, a window costs an alternative at most log(1/k): log(1/alpha), the rejection
    level's own size, at the default alpha of 0.01 and below, 4.6 nats above it.  A window
    at the cap adds at most 0.01 nats less (k stays at or under 1%, so a large ``alpha`` does
    not cost the evidence a share of itself).  Per window, not per interval: an interval
    checked in two windows (``analysis.interval`` 30s, a metric's 1m) may cost twice that;
    scaling k with the window's length as the cap is scaled would make a short window stake
    next to nothing (ten 6 s windows of a minute kept 1.4 of its 3.4 nats).
    Still valid: under the null ``E[k + (1 - k) * min(LR, c)] <= k + (1 - k) = 1``, so the
    product stays a non-negative supermartingale (the bet of "testing by betting" that never
    stakes everything).  Measured on ``bench/decision_quality.py``: a regression next to one
    bad pod (100 requests/s) was missed 19 times in 150, now 12; no false rollback more
    anywhere, and no row's misses up by more than one release.  Keeping back 5% and 10%
    gained no more and cost cold starts 1 and 5 missed regressions.
    """
    kept = min(alpha, STAKE_KEPT)
    capped = np.minimum(log_lr, cap)
    return np.asarray(np.logaddexp(math.log(kept), math.log1p(-kept) + capped), dtype=np.float64)


def _align(buckets: Sequence[Bucket], les: Sequence[float]) -> list[float]:
    """Cumulative counts of ``buckets`` at boundaries ``les`` (missing boundaries interpolated down)."""
    table = dict(buckets)
    out: list[float] = []
    last = 0.0
    for le in les:
        last = table.get(le, last)
        out.append(last)
    return out


def window_from_histograms(
    canary: Sequence[Bucket],
    primary: Sequence[Bucket],
    quantile: float,
    ranks: int = 1,
    bounds: Sequence[float] = (),
) -> tuple[list[Window], tuple[float, ...]]:
    """Turn two cumulative histograms into requests and slow-request counts per boundary.

    Without ``bounds``, they are chosen from this window's pooled data: the
    largest finite bucket boundary above which at least ``1 - quantile`` of the
    pooled requests lie (the smallest boundary when the tail is thinner than
    that), then up to two boundaries above it, then the boundary of the wider
    tail (:func:`wide_tail`) when it is not one of those; at most ``ranks`` in
    all.  Why several above: on coarse buckets (Istio's 100, 250, 500 ms) the
    pooled p99 often lies far above the boundary below it, and a slower tail
    moves the count above the *next* boundary much more.  Why one below: a
    slower service moves many more requests past its p90 than past its p99,
    and at low traffic those are most of the evidence there is (see
    :func:`wide_tail`).  The judge fixes the boundaries at the run's first
    judged window and passes them back in: a boundary that moved between
    windows would mix a weak effect on many requests with a strong one on few
    and waste the evidence.  Chosen from pooled data, or fixed in advance, a
    boundary keeps the canary's share of the requests above it exchangeable
    under the null.  Returns the windows and the boundaries.
    """
    les = _shared_les(canary, primary)
    c = _align(canary, les)
    p = _align(primary, les)
    n_c, n_p = _clean(c[-1]), _clean(p[-1])
    finite = [le for le in les if math.isfinite(le)]
    if not bounds:
        if not finite or n_c + n_p <= 0:
            return [Window(n_c, 0.0, n_p, 0.0)], ()
        bounds = _pooled_bounds(c, p, les, quantile, ranks)
    windows = []
    for bound in bounds:
        below_c, below_p = _at(c, les, bound), _at(p, les, bound)
        windows.append(Window(n_c, n_c - below_c, n_p, n_p - below_p))
    return windows, tuple(bounds)


def _shared_les(canary: Sequence[Bucket], primary: Sequence[Bucket]) -> list[float]:
    """The bucket boundaries both histograms have, sorted; all of either's where they do not
    share +Inf (one side's histogram is then not whole, and nothing is read as shared)."""
    les = sorted({le for le, _ in canary} & {le for le, _ in primary})
    if not les or not math.isinf(les[-1]):
        les = sorted({le for le, _ in canary} | {le for le, _ in primary})
    return les


def _first_bounds(
    canary: Sequence[Bucket],
    primary: Sequence[Bucket],
    quantile: float,
    ranks: int,
    warm_bounds: Sequence[float],
) -> tuple[float, ...]:
    """The boundaries fixed at the first judged window: the pooled window's, or the warm
    primary's (from the warm-up's last window with primary traffic) when those start lower
    or the first judged window has no traffic.

    Why the lower of the two: one slow minute (a pod of either side that stalls) in the
    first judged window sets the pooled boundaries so far out that the later windows have
    no slow requests there, and a real regression is then missed; in the warm-up, the
    primary's tail is its usual one. Why still the pooled ones when the warm-up's are
    higher: the stall may be the warm-up's. Either choice keeps the canary's share above a
    boundary exchangeable under the null: the warm-up is not judged, and the pooled
    counts do not say which side a request came from.  Measured on
    ``bench/decision_quality.py``, alone: a 25% slower service at 2 requests/s with bursty
    counts missed 16 -> 14 of 150, a 50% slower one at 0.2-1 requests/s rolled back half a
    minute to a minute sooner, no false rollback more; the misses next to stalled pods
    stayed as they were (16 and 11 of 150): there it is the stalled minute's evidence and
    scatter that cost the run, not its boundaries.
    """
    _, pooled = window_from_histograms(canary, primary, quantile, ranks)
    if warm_bounds and (not pooled or warm_bounds[0] < pooled[0]):
        return tuple(warm_bounds)
    return pooled


def _pooled_bounds(
    c: Sequence[float], p: Sequence[float], les: Sequence[float], quantile: float, ranks: int
) -> tuple[float, ...]:
    total = c[-1] + p[-1]
    finite = [i for i, le in enumerate(les) if math.isfinite(le)]
    if total <= 0 or not finite:
        return ()  # no requests to place a boundary among (or counts that cancel out)

    def boundary_at(share: float) -> int:
        """The largest finite boundary above which at least ``share`` of the pooled requests lie."""
        chosen = 0
        for pos, i in enumerate(finite):
            if (total - (c[i] + p[i])) / total >= share:
                chosen = pos
        return chosen

    chosen = boundary_at(1 - quantile)
    out = [les[i] for i in finite[chosen : chosen + 3]]
    wide = les[finite[boundary_at(wide_tail(quantile))]]
    if wide not in out:
        out.append(wide)
    return tuple(out[:ranks])


def wide_tail(quantile: float) -> float:
    """The share of requests above the lowest tested boundary: sqrt(1 - quantile), 10% for p99.

    Why a boundary below the quantile: a service that got slower all over (a
    25% slower distribution) moves 2-3 times as many requests past its p90 as
    it would have there, and ten times as many requests lie there as past the
    p99.  At low traffic that is most of the evidence there is: the median
    release of class 4 of ``bench/decision_quality.py`` (2 requests/s in all,
    528 canary requests in the ten minutes of the analysis) offers a perfect
    test 7.5 nats past its p99's boundary, under the 8.3-8.6 this test needs,
    and 25 of the tail's 27 past its p90's; a third of such regressions were
    missed, a tenth now.  Why not lower: the further down, the less of the
    tail the boundary is about (the p80 or the p95 instead missed more in the
    benchmark).  Half the way from the tested tail to all requests on a log
    scale keeps that meaning for other quantiles: p99.9 gets the p96.8, p95
    the p77.6.  A tail-only regression leaves the count there as it is, and
    the extra block costs it log(4/3) = 0.29 nats of the rejection level; on
    coarse buckets the boundary is often the quantile's own (Istio's 100 ms),
    and then there is no extra block.
    """
    return math.sqrt(1.0 - quantile)


def _at(cumulative: Sequence[float], les: Sequence[float], bound: float) -> float:
    """The cumulative count at ``bound`` (at the largest boundary below it if it is missing)."""
    out = 0.0
    for le, count in zip(les, cumulative, strict=True):
        if le > bound:
            break
        out = count
    return _clean(out)


def add_histograms(
    state: SequentialState,
    canary: Sequence[Bucket],
    primary: Sequence[Bucket],
    spec: CompareSpec,
    *,
    window_end: datetime,
    interval_seconds: float = 60.0,
) -> SequentialState:
    """Fold one window's histograms into the evidence and the cumulative histograms."""
    ranks = len(state.log_lr) // len(RATIO_GRID)
    fixed = bool(state.bounds)
    chosen = state.bounds or _first_bounds(canary, primary, spec.quantile, ranks, state.warm_bounds)
    windows, bounds = window_from_histograms(canary, primary, spec.quantile, ranks, chosen)
    warm = state.warm_windows
    state = add_window(
        replace(state, bounds=bounds),
        windows,
        spec,
        window_end=window_end,
        interval_seconds=interval_seconds,
    )
    if state.warm_windows > warm:
        # The boundaries are fixed at the first *judged* window: a cold canary's
        # slowness would set them too high for the rest of the run. The warm
        # primary's own are kept for that choice.
        _, own = window_from_histograms((), primary, spec.quantile, ranks)
        return replace(state, bounds=(), warm_bounds=own or state.warm_bounds)
    if not fixed:
        state = replace(state, warm_bounds=())  # the run's boundaries are fixed now
    if not fixed and bounds and len(bounds) < ranks:
        # Fixed now, with fewer distinct boundaries than blocks: the blocks left over
        # hold no evidence (this was the first judged window), and kept they would
        # take their share of the mixture's weight for nothing.
        state = replace(state, log_lr=state.log_lr[: len(bounds) * len(RATIO_GRID)])
    # The run's histograms are kept at the boundaries both sides have (as the test itself
    # reads them): a boundary one side lacks would be filled in from the one below it, which
    # counts that side's requests there as slower than they are, and invents its quantile.
    shared = _shared_les(canary, primary)
    les = tuple(le for le in state.hist_le if le in shared) or tuple(shared)
    kept = [i for i, le in enumerate(state.hist_le) if le in les]
    c_add = _align(canary, les)
    p_add = _align(primary, les)
    c_old = tuple(state.canary_hist[i] for i in kept) if state.canary_hist else (0.0,) * len(les)
    p_old = tuple(state.primary_hist[i] for i in kept) if state.primary_hist else (0.0,) * len(les)
    return replace(
        state,
        hist_le=tuple(les),
        canary_hist=tuple(a + _clean(b) for a, b in zip(c_old, c_add, strict=True)),
        primary_hist=tuple(a + _clean(b) for a, b in zip(p_old, p_add, strict=True)),
    )


def _n(x: float) -> str:
    return f"{round(x):,}"


def _p(p: float) -> str:
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.2g}"


@dataclass(frozen=True, slots=True)
class _Values:
    """What the two sides measured, and how the sentence shows it.

    ``canary``/``primary`` are the compared values (error rate in %, or the
    latency quantile in ms); ``shown_*`` are what the sentence quotes, which for
    ``request-success-rate`` is the success rate, as in Flagger's messages.
    """

    label: str
    unit: str
    canary: float | None
    primary: float | None
    shown_canary: float | None
    shown_primary: float | None
    canary_past: bool = False
    """The canary's latency quantile lies past the last finite boundary: the value is that
    boundary, a lower bound (as PromQL's ``histogram_quantile`` reads it)."""
    primary_past: bool = False


def decide(
    spec: CompareSpec,
    state: SequentialState,
    *,
    metric: str,
    buckets_to_ms: float = 1.0,
    last_step: bool = True,
    has_threshold: bool = False,
) -> CompareResult:
    """Decide from the accumulated evidence; also updates the inconclusive counter.

    ``last_step`` says whether a PASS now would promote the canary (the last
    weight step or iteration): only there does the judge hold for the evidence
    the configured effect needs.  ``has_threshold`` says whether the metric has
    a ``thresholdRange`` that already passed this tick (``onMaxInconclusive:
    threshold`` falls back to it).
    """
    state = replace(state, last_step=last_step)
    if spec.test is CompareTest.ERROR_RATE:
        values = _error_rate_values(state, metric)
    else:
        values = _latency_values(spec, state, metric, buckets_to_ms)
    if state.windows == 0:
        return _warming_up(spec, state, values)
    phis, log_lr = _robust_evidence(spec, state)
    phi = max(phis)
    log_lambda = mixture_log_lambda(log_lr, phis)
    p_value = 1.0 if log_lambda <= 0 else math.exp(-log_lambda)
    needed = _needed(spec, state, phi)
    comparison = _comparison(
        spec, state, values, p_value=p_value, log_lambda=log_lambda, needed=needed, phi=phi
    )
    head = _headline(values, state.canary_requests)
    state = replace(state, max_log_lambda=max(state.max_log_lambda, log_lambda))
    significant = log_lambda >= math.log(1.0 / spec.alpha)
    relevant = _relevant(spec, comparison, canary_past=values.canary_past)
    if significant and not relevant:
        evidence = (log_lr, phis)
        calm = _without_wild_window(spec, state, metric, comparison, evidence, buckets_to_ms)
        if calm is None:
            calm = _lately(spec, state, metric, comparison)
        if calm is not None:
            state = replace(state, inconclusive=0)
            summary = f"{head}, {calm}, {_p(p_value)}"
            return _result(
                Outcome.FAIL, comparison, summary, state, values, conclusive=spec.fail_fast
            )
    if significant and relevant:
        state = replace(state, inconclusive=0)
        summary = f"{head}, {_gap(spec, comparison, values)}, {_p(p_value)}"
        return _result(Outcome.FAIL, comparison, summary, state, values, conclusive=spec.fail_fast)
    smaller_side = min(state.canary_requests, state.primary_requests)
    if smaller_side < spec.min_sample_size:
        need = (
            f"too little data: {_n(smaller_side)} of {spec.min_sample_size:,} "
            f"request{'' if spec.min_sample_size == 1 else 's'} "
            "on the smaller side"
        )
        return _scarce(spec, state, comparison, head, values, need, last_step, has_threshold)
    if last_step and not significant:
        held = _hold_for_evidence(spec, state, comparison, head, values, needed, log_lambda)
        if held is not None:
            return held
    state = replace(state, inconclusive=0)
    return _judged(spec, state, comparison, head, values, significant=significant, p_value=p_value)


def _result(
    outcome: Outcome,
    comparison: Comparison,
    summary: str,
    state: SequentialState,
    values: _Values,
    *,
    conclusive: bool = False,
    warming_up: bool = False,
    may_advance: bool = False,
    stalled: bool = False,
) -> CompareResult:
    return CompareResult(
        outcome,
        comparison,
        summary,
        conclusive,
        state,
        values.shown_canary,
        values.unit,
        warming_up=warming_up,
        may_advance=may_advance,
        stalled=stalled,
        primary_value=values.shown_primary,
    )


MEASURED_EVENTS = 5
"""Slow requests each side needs at a boundary (its wild window aside) for a scatter of its own.

The rule of thumb of Pearson's statistic: expected counts of at least five.  Below that,
far in the tail, the primary has next to no slow requests, and the ratio the scatter is
measured around is set by whatever few windows have some.
"""


def _robust_evidence(
    spec: CompareSpec, state: SequentialState
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The overdispersion of each tested boundary's counts, and the evidence to divide by it.

    Per boundary, :func:`~analysis._stats.scatter` measures the scatter phi of the recent
    windows around a common ratio, leaving one wild window out of it.  The error test takes
    that as it is.  The latency test counts the same requests at up to four boundaries, and
    a pod that stalls for a minute (a GC pause, a noisy neighbour) puts its whole share past
    all of them at once; where the primary has next to no slow requests, two such minutes
    on the canary's side agree with each other, look like a steady regression with an
    enormous ratio, and show no scatter at all.  So, for latency:

    * a boundary with fewer than :data:`MEASURED_EVENTS` slow requests on either side
      takes the wild window found at the boundary with the largest measured scatter, and
      the largest scatter measured elsewhere when that one is clearly more than the
      binomial's (Pearson's statistic beyond its ``1 - alpha`` quantile: a scatter within
      its own noise says nothing sure about another boundary, and dividing a thin tail's
      evidence by it lost a tail-only regression);
    * the wild window's evidence for a regression is taken back, exactly what it added
      under its own cap (:func:`_cap_of`), at every boundary; its evidence against one
      stays.  Left out of the
      scatter because it does not belong with the other windows, it has no business in
      the evidence either: left in, one stalled minute adds the cap at every boundary,
      and the ordinary scatter of a few later windows does the rest.

    Both only ever lower the evidence for a regression (an alternative whose likelihood
    ratio was above 1 keeps at most what it had, one below 1 stays below 1), so the test
    stays within Ville's bound wherever it was; and with one wild window in a run, what is
    left is the evidence of the other windows, of which the null is true.  Measured on ``bench/decision_quality.py`` (class
    5, a pod of either side stalls in 4% of the minutes): 1.8-2.0% of good releases were
    rolled back, 0.5-0.8% now, no other row of the corpus moved by more than one release.
    Taking the error test's wild window back as well cost regressions caught next to a bad
    pod and saved no good release: error counts have events on both sides in most windows,
    and a second failing minute shows in their scatter.
    """
    blocks = len(state.log_lr) // len(RATIO_GRID)
    rows = [_block_rows(state, rank) for rank in range(blocks)]
    fits = [scatter(r, spec.dispersion_start) for r in rows]
    if spec.test is not CompareTest.LATENCY:
        return tuple(f.phi for f in fits), state.log_lr
    measured = [_measured(r, f) for r, f in zip(rows, fits, strict=True)]
    best = max(
        (f for f, ok in zip(fits, measured, strict=True) if ok), key=lambda f: f.phi, default=None
    )
    wider = max(
        (f.phi for f, ok in zip(fits, measured, strict=True) if ok and _beyond_binomial(f, spec)),
        default=1.0,
    )
    log_lr = np.asarray(state.log_lr, dtype=np.float64).reshape(blocks, len(RATIO_GRID))
    cap = WINDOW_CAP * math.log(1.0 / spec.alpha)
    phis = []
    for rank, fit in enumerate(fits):
        phi, wild = fit.phi, fit.wild
        if not measured[rank]:
            phi = max(phi, wider)
            if wild is None and best is not None:
                wild = best.wild
        phis.append(phi)
        if wild is not None:
            added = stratum_log_lr(*rows[rank][wild], spec.allowed_increase)
            under = _cap_of(state, wild, cap)
            log_lr[rank] -= np.clip(_staked(added, under, spec.alpha), 0.0, under)
    return tuple(phis), tuple(float(x) for x in log_lr.ravel())


def _cap_of(state: SequentialState, index: int, full: float) -> float:
    """The cap window ``index`` of ``state.recent`` was added under; ``full`` (the whole
    interval's) for a window of a state written before the caps were kept: what a window of
    one interval was added under (a shorter one added less, and gives back more than it
    added; a longer one, in a release before the cap stopped growing with the window's
    length, may have added more)."""
    offset = len(state.recent) - len(state.recent_caps)
    return state.recent_caps[index - offset] if index >= offset else full


def _block_rows(state: SequentialState, rank: int) -> list[tuple[float, float, float, float]]:
    """The recent windows' counts at one tested boundary: (canary requests, canary events,
    primary requests, primary events), the layout :func:`~analysis._stats.scatter` reads."""
    return [
        (w[0], w[2 + 2 * rank], w[1], w[3 + 2 * rank])
        if len(w) >= 4 + 2 * rank
        else (w[0], 0.0, w[1], 0.0)
        for w in state.recent
    ]


def _measured(rows: Sequence[tuple[float, float, float, float]], fit: Scatter) -> bool:
    """Whether a boundary has the slow requests on both sides to measure its own scatter."""
    kept = [w for i, w in enumerate(rows) if i != fit.wild]
    canary, primary = sum(w[1] for w in kept), sum(w[3] for w in kept)
    return fit.ratio is not None and min(canary, primary) >= MEASURED_EVENTS


def _beyond_binomial(fit: Scatter, spec: CompareSpec) -> bool:
    """Whether the Pearson statistic is beyond its ``1 - alpha`` quantile (Wilson-Hilferty)."""
    if fit.df <= 0:
        return False
    a = 2.0 / (9.0 * fit.df)
    quantile = fit.df * (1.0 - a + normal_quantile(1.0 - spec.alpha) * math.sqrt(a)) ** 3
    return fit.pearson > quantile


def _warming_up(spec: CompareSpec, state: SequentialState, values: _Values) -> CompareResult:
    """Inside the warm-up: report what the canary showed, judge nothing, count nothing."""
    n_c, x_c, n_p, x_p = state.warm
    started = state.started or state.window_end
    seen = (state.window_end - started).total_seconds()
    what = "errors" if spec.test is CompareTest.ERROR_RATE else "slow requests"
    primary = f"{_rate(x_p, n_p)} of {_n(n_p)} on the primary"
    if n_c > 0:
        canary = _n(n_c)
        plural = "" if canary == "1" else "s"
        rates = f"{what} {_rate(x_c, n_c)} of {canary} canary request{plural}"
        rates += f" vs {primary}" if n_p > 0 else "; no primary requests yet"
    elif n_p > 0:
        rates = f"no canary requests yet; {what} {primary}"
    else:
        rates = "no requests yet on either side"
    summary = f"{values.label}: warming up ({seen:.0f}s observed, not judged): {rates}"
    comparison = Comparison(
        test=spec.test,
        canary_value=None,
        primary_value=None,
        difference=None,
        ratio=None,
        p_value=1.0,
        likelihood_ratio=1.0,
        canary_samples=round(n_c),
        primary_samples=round(n_p),
        canary_events=round(x_c),
        primary_events=round(x_p),
    )
    return _result(Outcome.INCONCLUSIVE, comparison, summary, state, values, warming_up=True)


def _rate(events: float, requests: float) -> str:
    return "n/a" if requests <= 0 else f"{format_value(100.0 * events / requests)}%"


def _needed(spec: CompareSpec, state: SequentialState, phi: float) -> int | None:
    """Canary requests the test needs to detect ``detectIncrease`` times the primary's rate.

    The primary's error rate is taken as both sides share it under the null (both sides'
    errors over both sides' requests): the primary's own while the canary is as good, a
    little higher while it is worse, so a worse canary is told it needs a little fewer.
    """
    n_c, n_p = state.canary_requests, state.primary_requests
    if n_c <= 0 or n_p <= 0:
        return None
    if spec.test is CompareTest.ERROR_RATE:
        base = (state.canary_events + state.primary_events) / (n_c + n_p)
        effect = max(base * spec.detect_increase, base + spec.effective_min_difference / 100.0)
    else:  # the share of requests slower than the primary's quantile
        base = 1.0 - spec.quantile
        effect = base * spec.detect_increase
    if base <= 0:
        return None
    needed = needed_canary_requests(
        base_rate=base,
        effect_rate=min(effect, 1.0),
        traffic_ratio=n_p / n_c,
        theta0=spec.allowed_increase,
        log_boundary=math.log(1.0 / spec.alpha) + math.log(len(state.log_lr)),
        dispersion=phi,
    )
    return None if needed is None or not math.isfinite(needed) else math.ceil(needed)


def _relevant(spec: CompareSpec, comparison: Comparison, *, canary_past: bool = False) -> bool:
    """Whether a significant regression is also big enough to act on.

    Significance already says the canary's event rate exceeds ``allowedIncrease``
    times the primary's.  For errors the shown rates must say so too, and differ
    by ``minDifference`` points.  For latency only the quantiles' gap is asked:
    at least ``minDifference`` ms, and by default (0) that the canary's quantile is
    not below the primary's.  Why not their ratio: interpolated inside coarse
    buckets (Istio's 100 to 250 ms) they understate a slower tail, 233 against
    218 ms for a real 25%.  Why the sign: the test counts requests past several
    boundaries, the p90's among them, and a canary whose body got slower while its
    p99 got faster is not a p99 regression.  A veto that one wild window of the
    primary is behind is lifted by :func:`_without_wild_window`.  A canary quantile past
    the last finite boundary (``canary_past``) reads as that boundary, a lower bound: its
    gap cannot be shown to be within ``minDifference``, and vetoing it promoted a canary
    whose p99 the buckets cannot even measure (every request past 500 ms, against a
    primary at 487 ms, read as "within minDifference 50").
    """
    difference, ratio = comparison.difference, comparison.ratio
    if spec.test is CompareTest.LATENCY and canary_past:
        return True
    if difference is None or difference < spec.effective_min_difference:
        return False
    if spec.test is CompareTest.LATENCY:
        return True
    return ratio is not None and ratio >= spec.allowed_increase


def _error_rate_values(
    state: SequentialState, metric: str, leave_out: Sequence[float] = ()
) -> _Values:
    """The canary's error rate, and the primary's over the same windows.

    The primary's rate is weighted as the canary's traffic (``state.matched``): with weights
    that grow step by step and a base rate that drifts or has an incident, the crude totals
    set the primary's early windows against the canary's late ones, and a canary at twice
    the primary's errors could look barely worse (or better) than the primary's run-long
    average. Without matched windows (no primary traffic yet) the crude totals stand.
    ``leave_out`` is one window of ``state.recent`` (canary and primary requests, canary
    and primary errors) taken out of both sides (:func:`_without_wild_window`).
    """
    n_c, n_p = state.canary_requests, state.primary_requests
    x_c, x_p = state.canary_events, state.primary_events
    matched_requests, matched_events = state.matched
    if len(leave_out) >= 4:
        w_nc, w_np, w_xc, w_xp = leave_out[:4]
        n_c, n_p, x_c, x_p = n_c - w_nc, n_p - w_np, x_c - w_xc, x_p - w_xp
        if w_np > 0:
            matched_requests -= w_nc
            matched_events -= w_nc * w_xp / w_np
        if matched_events < 0:  # a status from before the matched totals: the crude ones
            matched_requests = 0.0
    c_val = 100.0 * x_c / n_c if n_c > 0 else None
    if matched_requests > 0:
        p_val: float | None = 100.0 * matched_events / matched_requests
    else:
        p_val = 100.0 * x_p / n_p if n_p > 0 else None
    if metric == REQUEST_SUCCESS_RATE:
        return _Values(
            "success rate",
            "%",
            c_val,
            p_val,
            None if c_val is None else 100.0 - c_val,
            None if p_val is None else 100.0 - p_val,
        )
    return _Values(f"{metric} error rate", "%", c_val, p_val, c_val, p_val)


def _without_wild_window(
    spec: CompareSpec,
    state: SequentialState,
    metric: str,
    comparison: Comparison,
    evidence: tuple[Sequence[float], Sequence[float]],
    buckets_to_ms: float,
) -> str | None:
    """The gap of a significant regression that the run-long values hide behind one wild
    window of the primary, said without that window; None when there is no such window or
    the rest does not show a relevant gap.

    Why: the shown values are run-long.  A minute in which a primary pod fails 20-50% of
    its requests puts the primary's error rate near or above a canary that fails twice as
    often in every other minute; a minute in which one stalls (every request it serves
    3-10 times slower) puts the primary's p99 above a canary that is slower in every other
    minute.  The relevance check vetoed those findings: in ``bench/decision_quality.py``
    (class 5) 12 of 150 regressions 1% -> 2% next to a bad pod (100 requests/s) and 24 of
    the 27 slower services missed next to stalled pods were promoted that way; 7 and 3 now,
    with no false rollback more anywhere.  The window is the one the scatter already leaves
    out as wild (:func:`~analysis._stats.scatter`), and only where the canary's share of
    the events in it is below the share the other windows give it (the primary's wildness,
    not the canary's).  Without it, errors are asked ``allowedIncrease`` and
    ``minDifference`` again; latency, at ``minDifference`` 0, a larger share of the
    canary's requests than of the primary's past the boundary that decided (a set
    ``minDifference`` asks the run-long quantiles, which cannot leave a window out).  Only
    a veto is lifted, and only of a significant finding, so the false alarm bound stands.
    """
    log_lr, phis = evidence
    size = len(RATIO_GRID)
    blocks = min(len(log_lr) // size, len(phis))
    if blocks == 0:
        return None
    best = max(range(blocks), key=lambda b: max(log_lr[b * size : (b + 1) * size]) / phis[b])
    rows = _block_rows(state, best)
    fit = scatter(rows)
    if fit.wild is None or fit.ratio is None:
        return None
    n_c, x_c, n_p, x_p = rows[fit.wild]
    expected = fit.ratio * n_c / (fit.ratio * n_c + n_p) if n_c + n_p > 0 else 0.0
    if x_c + x_p <= 0 or x_c / (x_c + x_p) >= expected:
        return None  # the canary's wild window: it shows a regression, it hides none
    if spec.test is CompareTest.ERROR_RATE:
        return _errors_without(spec, state, metric, comparison, (n_c, n_p, x_c, x_p))
    if spec.effective_min_difference > 0 or best >= len(state.bounds):
        return None
    rest = [row for i, row in enumerate(rows) if i != fit.wild]
    c_req, c_ev = sum(r[0] for r in rest), sum(r[1] for r in rest)
    p_req, p_ev = sum(r[2] for r in rest), sum(r[3] for r in rest)
    if c_req <= 0 or p_req <= 0 or c_ev / c_req <= p_ev / p_req:
        return None
    bound = format_value(state.bounds[best] * buckets_to_ms, "ms")
    return (
        f"{_rate(c_ev, c_req)} of the canary's requests took over {bound}, "
        f"{_rate(p_ev, p_req)} of the primary's, leaving out one window in which the "
        f"primary was far slower ({_rate(x_p, n_p)} of its requests over {bound}; it sets "
        "the primary's quantile over the run)"
    )


def _lately(
    spec: CompareSpec, state: SequentialState, metric: str, comparison: Comparison
) -> str | None:
    """The error rates of a significant regression that began late in a long run, over the
    windows the judge keeps (:data:`RECENT_WINDOWS`); None in a run no longer than those, or
    where they show no relevant gap.

    Why: the floor under the evidence (:data:`EVIDENCE_FLOOR`) lets a regression that
    begins after hours of good windows become significant within minutes, but the shown
    rates are run-long, and the relevance check asked them: a canary good for 300 minutes
    and at 2% errors against 1% after read 1.05% against 1% at minute 330, within
    ``allowedIncrease`` 1.1, and was vetoed (rolled back 30 minutes after it turned, at the
    median of 40 runs; 15 now).  The kept windows are the run's latest, asked for the same
    ``allowedIncrease`` and ``minDifference``.  Only a veto is lifted, and only of a
    significant finding, so the false alarm bound stands.  Latency asks the sign of the
    quantiles' gap, which a late slowdown moves at once, not a ratio that hours dilute.  A
    run of the benchmark's length (at most 60 windows) never gets here.
    """
    rows = state.recent
    if (
        spec.test is not CompareTest.ERROR_RATE
        or len(rows) < RECENT_WINDOWS
        or state.windows <= len(rows)
    ):
        return None
    n_c, n_p = sum(r[0] for r in rows), sum(r[1] for r in rows)
    x_c, x_p = sum(r[2] for r in rows), sum(r[3] for r in rows)
    matched = (
        sum(r[0] for r in rows if r[1] > 0),
        sum(r[0] * r[3] / r[1] for r in rows if r[1] > 0),
    )
    latest = replace(
        state,
        canary_requests=n_c,
        canary_events=x_c,
        primary_requests=n_p,
        primary_events=x_p,
        matched=matched,
    )
    asked = _asked_again(spec, comparison, _error_rate_values(latest, metric))
    if asked is None:
        return None
    gap, canary, primary = asked
    return (
        f"{gap} over the last {len(rows)} windows (canary {canary}, primary {primary}; the "
        "run-long values hide a regression that began late)"
    )


def _asked_again(
    spec: CompareSpec, comparison: Comparison, values: _Values
) -> tuple[str, str, str] | None:
    """The relevance check asked of other error rates than the run-long ones (some windows
    left out): the gap in words and the two rates shown, or None when they are within it."""
    difference, ratio = _difference_and_ratio(values.canary, values.primary)
    again = replace(comparison, difference=difference, ratio=ratio)
    if not _relevant(spec, again):
        return None
    canary = format_value(values.shown_canary or 0.0, values.unit)
    primary = format_value(values.shown_primary or 0.0, values.unit)
    return _gap(spec, again, values), canary, primary


def _errors_without(
    spec: CompareSpec,
    state: SequentialState,
    metric: str,
    comparison: Comparison,
    window: tuple[float, float, float, float],
) -> str | None:
    """The error rates without one window (canary and primary requests, then errors), when
    they show a relevant gap; None otherwise."""
    n_c, n_p, x_c, x_p = window
    asked = _asked_again(spec, comparison, _error_rate_values(state, metric, leave_out=window))
    if asked is None:
        return None
    gap, canary, primary = asked
    return (
        f"{gap} leaving out one window in which the primary "
        f"failed far more (errors there: canary {_n(x_c)} of {_n(n_c)}, primary {_n(x_p)} of "
        f"{_n(n_p)}; the rest: canary {canary}, primary {primary})"
    )


def _latency_values(
    spec: CompareSpec, state: SequentialState, metric: str, buckets_to_ms: float
) -> _Values:
    les = list(state.hist_le)

    def quantile_ms(hist: tuple[float, ...]) -> float | None:
        if not les:
            return None
        value = histogram_quantile(spec.quantile, les, list(hist)) * buckets_to_ms
        return None if math.isnan(value) else value

    def past(hist: tuple[float, ...], value: float | None) -> bool:
        """The quantile falls in the +Inf bucket: it reads as the last finite boundary."""
        if value is None or len(hist) < 2 or not math.isinf(les[-1]):
            return False
        return hist[-2] < spec.quantile * hist[-1]

    c_val = quantile_ms(state.canary_hist)
    p_val = quantile_ms(state.primary_hist)
    qname = f"p{spec.quantile * 100:g}"
    label = f"request duration {qname}" if metric == REQUEST_DURATION else f"{metric} {qname}"
    return _Values(
        label,
        "ms",
        c_val,
        p_val,
        c_val,
        p_val,
        canary_past=past(state.canary_hist, c_val),
        primary_past=past(state.primary_hist, p_val),
    )


def _difference_and_ratio(
    canary: float | None, primary: float | None
) -> tuple[float | None, float | None]:
    if canary is None or primary is None:
        return None, None
    if primary > 0:
        return canary - primary, canary / primary
    return canary - primary, (math.inf if canary > 0 else 1.0)


def _comparison(
    spec: CompareSpec,
    state: SequentialState,
    values: _Values,
    *,
    p_value: float,
    log_lambda: float,
    needed: int | None,
    phi: float,
) -> Comparison:
    difference, ratio = _difference_and_ratio(values.canary, values.primary)
    return Comparison(
        test=spec.test,
        canary_value=values.canary,
        primary_value=values.primary,
        difference=difference,
        ratio=ratio,
        p_value=p_value,
        likelihood_ratio=math.exp(min(log_lambda, 700.0)),
        canary_samples=round(state.canary_requests),
        primary_samples=round(state.primary_requests),
        canary_events=round(state.canary_events),
        primary_events=round(state.primary_events),
        needed_samples=needed,
        dispersion=round(phi, 3),
    )


def _headline(values: _Values, canary_requests: float) -> str:
    """``success rate 97.2% (primary 99.6%, n=1,840)``: the start of every sentence."""
    unit = values.unit
    canary = "n/a" if values.shown_canary is None else format_value(values.shown_canary, unit)
    primary = "n/a" if values.shown_primary is None else format_value(values.shown_primary, unit)
    # A quantile past the last finite boundary is only known to be beyond it.
    canary = f"over {canary}" if values.canary_past else canary
    primary = f"over {primary}" if values.primary_past else primary
    return f"{values.label} {canary} (primary {primary}, n={_n(canary_requests)})"


def _scarce(
    spec: CompareSpec,
    state: SequentialState,
    comparison: Comparison,
    head: str,
    values: _Values,
    need: str,
    last_step: bool,
    has_threshold: bool,
) -> CompareResult:
    """Too few requests to judge: hold (counted), or step up where the user opted in.

    Once ``maxInconclusive`` holds in a row are spent, ``onMaxInconclusive``
    decides.  An inconclusive check never becomes a failed check unless the
    user chose ``fail``.
    """
    if spec.on_inconclusive is OnInconclusive.ADVANCE and not last_step:
        summary = f"{head}, {need}; stepping up for more traffic (onInconclusive: advance)"
        return _result(Outcome.INCONCLUSIVE, comparison, summary, state, values, may_advance=True)
    count = state.inconclusive + 1
    state = replace(state, inconclusive=count)
    if count <= spec.max_inconclusive:
        summary = f"{head}, {need} (inconclusive {count} of {spec.max_inconclusive})"
        return _result(Outcome.INCONCLUSIVE, comparison, summary, state, values)
    spent = (
        f"{need}, still inconclusive after {count} check{'' if count == 1 else 's'} "
        f"(maxInconclusive {spec.max_inconclusive})"
    )
    choice = spec.on_max_inconclusive
    if choice is OnMaxInconclusive.THRESHOLD and has_threshold:
        summary = f"{head}, {spent}; the thresholdRange decides, and it passed"
        return _result(Outcome.PASS, comparison, summary, state, values)
    if choice is OnMaxInconclusive.PASS:
        return _result(
            Outcome.PASS,
            comparison,
            f"{head}, {spent}; passed (onMaxInconclusive: pass)",
            state,
            values,
        )
    if choice is OnMaxInconclusive.FAIL:
        return _result(
            Outcome.FAIL,
            comparison,
            f"{head}, {spent}; failed (onMaxInconclusive: fail)",
            state,
            values,
        )
    summary = f"{head}, {spent}; holding"
    return _result(Outcome.INCONCLUSIVE, comparison, summary, state, values, stalled=True)


LEANING = {CompareTest.ERROR_RATE: 0.3, CompareTest.LATENCY: 0.0}
"""At the last step, a likelihood ratio above ``(1/alpha) ** LEANING`` is evidence that leans
towards a regression: the judge holds for more data before it lets the canary be promoted
(within ``maxInconclusive`` checks).  Holding never costs validity (the test is valid at any
number of looks), only time.

For errors, above 3.98 (p < 0.25 at alpha 0.01): an error test also holds for the requests
``detectIncrease`` needs, and knows when they are out of reach.  For latency, above 1 (the
data are likelier under a regression than under none), because that second reason does not
work there: ``neededSamples`` assumes twice the requests slower than the primary's quantile,
while a slower tail on coarse buckets multiplies the count above the next boundary by 3-6.
On Istio's and NGINX's buckets at 50 requests/s, at the last step, it asks for 12,000-19,000
canary requests, out of reach of the checks left, where the 4,500 there are catch 97% of 25%
slower tails; the judge then promoted the other 3% at once, eight of ten with a likelihood
ratio of 1-3.4 (class 7 of ``bench/decision_quality.py``, p99 +25% tail only: 5 of 150
missed on each layout; 1 when it holds above 1).  The price: good releases promote
0.06 minutes later on average (steady traffic).
"""


def _hold_for_evidence(
    spec: CompareSpec,
    state: SequentialState,
    comparison: Comparison,
    head: str,
    values: _Values,
    needed: int | None,
    log_lambda: float,
) -> CompareResult | None:
    """At the last step, hold (counted) rather than promote on evidence that is not enough.

    Two reasons to hold, each only while the inconclusive checks last: the
    evidence leans towards a regression (:data:`LEANING`), or the canary has
    fewer requests than ``detectIncrease`` needs and the missing ones can
    arrive in the checks left (at the canary's rate in the last window with events on
    either side: ``recent`` keeps no other).  Otherwise the check
    passes, and says how much evidence it rests on.
    """
    left = spec.max_inconclusive - state.inconclusive
    if left <= 0:
        return None
    count = state.inconclusive + 1
    if log_lambda > LEANING[spec.test] * math.log(1.0 / spec.alpha):
        summary = (
            f"{head}, leaning towards a regression ({_p(comparison.p_value)}); holding for "
            f"more data before promoting (check {count} of {spec.max_inconclusive})"
        )
        return _result(
            Outcome.INCONCLUSIVE, comparison, summary, replace(state, inconclusive=count), values
        )
    if needed is None or needed <= state.canary_requests:
        return None
    per_window = state.recent[-1][0] if state.recent else state.canary_requests / state.windows
    ticks = math.ceil((needed - state.canary_requests) / per_window) if per_window > 0 else left + 1
    if ticks > left:
        return None
    summary = (
        f"{head}, no regression so far; holding for the {_n(needed)} canary requests needed to "
        f"detect x{spec.detect_increase:g}{_scattered(spec, comparison)} "
        f"(about {ticks} more check{'s' if ticks != 1 else ''})"
    )
    return _result(
        Outcome.INCONCLUSIVE, comparison, summary, replace(state, inconclusive=count), values
    )


def _judged(
    spec: CompareSpec,
    state: SequentialState,
    comparison: Comparison,
    head: str,
    values: _Values,
    *,
    significant: bool,
    p_value: float,
) -> CompareResult:
    """Enough data and no relevant regression: PASS, saying how strong the evidence is."""
    if significant:
        tail = f"statistically worse ({_p(p_value)}) but {_within(spec, values)}"
    else:
        # A canary that looks worse in these numbers but passes must not read as "no
        # regression": the test has not seen enough yet (one interval never suffices).
        looks_worse = comparison.ratio is not None and comparison.ratio > 1.0
        tail = (
            f"worse in these numbers, not significant yet ({_p(p_value)}, alpha {spec.alpha:g})"
            if looks_worse
            else f"no significant regression, {_p(p_value)}"
        )
        needed = comparison.needed_samples
        if needed is not None and comparison.canary_samples < needed:
            tail += (
                f" (x{spec.detect_increase:g} needs ~{_n(needed)} canary requests to detect"
                f"{_scattered(spec, comparison)}; {_n(comparison.canary_samples)} so far)"
            )
    return _result(Outcome.PASS, comparison, f"{head}, {tail}", state, values)


def _scattered(spec: CompareSpec, comparison: Comparison) -> str:
    """``, errors 3.4x as scattered as independent ones``: why the test needs more requests.

    The requests needed grow with the overdispersion (``needed_canary_requests``), and a
    user who sees the number jump from one check to the next should see why.
    """
    if comparison.dispersion < SCATTERED:
        return ""
    what = "errors" if spec.test is CompareTest.ERROR_RATE else "slow requests"
    # With retries declared, the estimate started from them: say so, or the user would take
    # the figure for something the windows measured.
    declared = ""
    if spec.dispersion_start > 1.0:
        declared = f" (starting from {spec.retries} declared retries)"
    return f", {what} {comparison.dispersion:.1f}x as scattered as independent ones{declared}"


def _within(spec: CompareSpec, values: _Values) -> str:
    """Why a significant finding is not acted on: what :func:`_relevant` found it within."""
    min_diff = spec.effective_min_difference
    if spec.test is CompareTest.ERROR_RATE:
        return f"within allowedIncrease {spec.allowed_increase:g} / minDifference {format_value(min_diff)}"
    quantile = f"p{spec.quantile * 100:g}"
    if min_diff > 0:
        return f"its {quantile} is within minDifference {format_value(min_diff, 'ms')} of the primary's"
    return f"its {quantile} is not above the primary's"


def _gap(spec: CompareSpec, comparison: Comparison, values: _Values) -> str:
    """How much worse the canary is: points of error rate, or percent slower."""
    difference, ratio, unit = comparison.difference, comparison.ratio, values.unit
    if spec.test is CompareTest.ERROR_RATE:
        if difference is None:
            return ""
        points = format_value(difference)
        return f"worse by {points} point{'' if points == '1' else 's'}"
    if difference is None or ratio is None:
        return ""
    if difference <= 0 and values.canary_past and values.primary_past:
        # Both quantiles past the last finite boundary, each read as that boundary.
        shown = format_value(comparison.canary_value or 0.0, unit)
        return f"slower where these buckets cannot measure it (both over {shown})"
    if difference <= 0:  # the test counts requests past several boundaries, the p90's too
        return f"more of its requests are slow, at the same p{spec.quantile * 100:g}"
    at_least = "at least " if values.canary_past else ""
    if not math.isfinite(ratio):  # the primary's quantile is 0: no percentage to show
        return f"slower by {at_least}{format_value(difference, unit)}"
    return (
        f"slower by {at_least}{format_value((ratio - 1) * 100)}% "
        f"(+{format_value(difference, unit)})"
    )
