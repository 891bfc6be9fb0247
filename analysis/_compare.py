"""The statistical canary-vs-primary judge (``metrics[].compare``), pure functions only.

Fetching happens elsewhere; here, numbers go in and a decision comes out, so
every verdict can be replayed from the numbers stored in the status.  Both
tests are the sequential count test of :mod:`analysis._stats`:

* ``errorRate``: events are errors among requests;
* ``latency``: events are requests slower than a threshold chosen per window
  from the pooled histogram of both versions (the bucket boundary at the
  ``quantile`` of the pooled data), so a slower canary shows up as a larger
  share of the slow requests.  Choosing the threshold from pooled data keeps
  the canary's share of slow requests exchangeable under the null.

A FAIL needs three things: enough requests on both sides (``minSampleSize``),
statistical evidence (mixture likelihood ratio >= 1/alpha, i.e. the
anytime-valid p-value <= alpha), and a practically relevant gap (canary
worse by at least ``allowedIncrease`` as a ratio and ``minDifference`` in
absolute terms).  Too little data is INCONCLUSIVE, at most ``maxInconclusive``
times in a row; then ``onMaxInconclusive`` decides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from analysis._spec.compare import CompareSpec
from analysis._spec.vocabulary import (
    REQUEST_DURATION,
    REQUEST_SUCCESS_RATE,
    Bucket,
    CompareTest,
    OnMaxInconclusive,
    Outcome,
)
from analysis._stats import (
    RATIO_GRID,
    histogram_quantile,
    mixture_log_lambda,
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
    "new_state",
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


def new_state(window_end: datetime) -> SequentialState:
    return SequentialState(window_end=window_end, log_lr=tuple(0.0 for _ in RATIO_GRID))


def _clean(x: float) -> float:
    return 0.0 if not math.isfinite(x) or x < 0 else float(x)


def add_window(
    state: SequentialState, window: Window, spec: CompareSpec, *, window_end: datetime
) -> SequentialState:
    """Fold one window's counts into the running evidence (pure)."""
    n_c, n_p = _clean(window.canary_requests), _clean(window.primary_requests)
    # Prometheus' increase() extrapolates; events are counted, so round them.
    x_c = float(round(min(_clean(window.canary_events), n_c)))
    x_p = float(round(min(_clean(window.primary_events), n_p)))
    step = stratum_log_lr(n_c, x_c, n_p, x_p, spec.allowed_increase)
    log_lr = tuple(float(a) for a in np.asarray(state.log_lr) + step)
    lam = mixture_log_lambda(log_lr)
    return replace(
        state,
        window_end=window_end,
        log_lr=log_lr,
        canary_requests=state.canary_requests + n_c,
        canary_events=state.canary_events + x_c,
        primary_requests=state.primary_requests + n_p,
        primary_events=state.primary_events + x_p,
        max_log_lambda=max(state.max_log_lambda, lam),
        windows=state.windows + 1,
    )


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
    canary: Sequence[Bucket], primary: Sequence[Bucket], quantile: float
) -> tuple[Window, float]:
    """Turn two cumulative histograms into requests and slow-request counts.

    The slowness threshold is the largest finite bucket boundary above which at
    least ``1 - quantile`` of the pooled requests lie (the smallest boundary
    when the tail is thinner than that).  Returns the window and the threshold.
    """
    les = sorted({le for le, _ in canary} & {le for le, _ in primary})
    if not les or not math.isinf(les[-1]):
        les = sorted({le for le, _ in canary} | {le for le, _ in primary})
    c = _align(canary, les)
    p = _align(primary, les)
    n_c, n_p = _clean(c[-1]), _clean(p[-1])
    total = n_c + n_p
    finite = [i for i, le in enumerate(les) if math.isfinite(le)]
    if not finite or total <= 0:
        return Window(n_c, 0.0, n_p, 0.0), math.inf
    chosen = finite[0]
    for i in finite:
        above = (total - (c[i] + p[i])) / total
        if above >= 1 - quantile:
            chosen = i
    return Window(n_c, n_c - c[chosen], n_p, n_p - p[chosen]), les[chosen]


def add_histograms(
    state: SequentialState,
    canary: Sequence[Bucket],
    primary: Sequence[Bucket],
    spec: CompareSpec,
    *,
    window_end: datetime,
) -> SequentialState:
    """Fold one window's histograms into the evidence and the cumulative histograms."""
    window, _ = window_from_histograms(canary, primary, spec.quantile)
    state = add_window(state, window, spec, window_end=window_end)
    les = state.hist_le or tuple(sorted({le for le, _ in canary} | {le for le, _ in primary}))
    c_add = _align(canary, les)
    p_add = _align(primary, les)
    c_old = state.canary_hist or tuple(0.0 for _ in les)
    p_old = state.primary_hist or tuple(0.0 for _ in les)
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


def decide(
    spec: CompareSpec,
    state: SequentialState,
    *,
    metric: str,
    buckets_to_ms: float = 1.0,
) -> CompareResult:
    """Decide from the accumulated evidence; also updates the inconclusive counter."""
    log_lambda = mixture_log_lambda(state.log_lr)
    p_value = min(1.0, math.exp(-log_lambda))
    if spec.test is CompareTest.ERROR_RATE:
        values = _error_rate_values(state, metric)
    else:
        values = _latency_values(spec, state, metric, buckets_to_ms)
    comparison = _comparison(spec, state, values, p_value=p_value, log_lambda=log_lambda)
    head = _headline(values, state.canary_requests)
    state = replace(state, max_log_lambda=max(state.max_log_lambda, log_lambda))
    smaller_side = min(state.canary_requests, state.primary_requests)
    if smaller_side < spec.min_sample_size:
        return _too_little_data(spec, state, comparison, head, values)
    state = replace(state, inconclusive=0)
    return _judged(spec, state, comparison, head, values, log_lambda=log_lambda, p_value=p_value)


def _error_rate_values(state: SequentialState, metric: str) -> _Values:
    n_c, n_p = state.canary_requests, state.primary_requests
    c_val = 100.0 * state.canary_events / n_c if n_c > 0 else None
    p_val = 100.0 * state.primary_events / n_p if n_p > 0 else None
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


def _latency_values(
    spec: CompareSpec, state: SequentialState, metric: str, buckets_to_ms: float
) -> _Values:
    les = list(state.hist_le)

    def quantile_ms(hist: tuple[float, ...]) -> float | None:
        if not les:
            return None
        value = histogram_quantile(spec.quantile, les, list(hist)) * buckets_to_ms
        return None if math.isnan(value) else value

    c_val = quantile_ms(state.canary_hist)
    p_val = quantile_ms(state.primary_hist)
    qname = f"p{spec.quantile * 100:g}"
    label = f"request duration {qname}" if metric == REQUEST_DURATION else f"{metric} {qname}"
    return _Values(label, "ms", c_val, p_val, c_val, p_val)


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
    )


def _headline(values: _Values, canary_requests: float) -> str:
    """``success rate 97.2% (primary 99.6%, n=1,840)``: the start of every sentence."""
    unit = values.unit
    canary = "n/a" if values.shown_canary is None else format_value(values.shown_canary, unit)
    primary = "n/a" if values.shown_primary is None else format_value(values.shown_primary, unit)
    return f"{values.label} {canary} (primary {primary}, n={_n(canary_requests)})"


def _too_little_data(
    spec: CompareSpec,
    state: SequentialState,
    comparison: Comparison,
    head: str,
    values: _Values,
) -> CompareResult:
    """Inconclusive, and counted; ``onMaxInconclusive`` decides once the count runs out."""
    count = state.inconclusive + 1
    state = replace(state, inconclusive=count)
    smaller_side = min(state.canary_requests, state.primary_requests)
    need = (
        f"too little data: {_n(smaller_side)} of {spec.min_sample_size:,} requests "
        "on the smaller side"
    )
    if count > spec.max_inconclusive:
        tail = f"{need}, still inconclusive after {count} checks (maxInconclusive {spec.max_inconclusive})"
        outcome = (
            Outcome.FAIL if spec.on_max_inconclusive is OnMaxInconclusive.FAIL else Outcome.PASS
        )
    else:
        tail = f"{need} (inconclusive {count} of {spec.max_inconclusive})"
        outcome = Outcome.INCONCLUSIVE
    summary = f"{head}, {tail}"
    return CompareResult(
        outcome, comparison, summary, False, state, values.shown_canary, values.unit
    )


def _judged(
    spec: CompareSpec,
    state: SequentialState,
    comparison: Comparison,
    head: str,
    values: _Values,
    *,
    log_lambda: float,
    p_value: float,
) -> CompareResult:
    """Enough data: FAIL needs evidence (likelihood ratio >= 1/alpha) and a relevant gap."""
    significant = log_lambda >= math.log(1.0 / spec.alpha)
    difference, ratio = comparison.difference, comparison.ratio
    min_diff = spec.effective_min_difference
    relevant = (
        difference is not None
        and ratio is not None
        and difference >= min_diff
        and ratio >= spec.allowed_increase
    )
    value, unit = values.shown_canary, values.unit
    if significant and relevant:
        summary = f"{head}, {_gap(spec, comparison, unit)}, {_p(p_value)}"
        return CompareResult(Outcome.FAIL, comparison, summary, spec.fail_fast, state, value, unit)
    if significant:
        tail = (
            f"statistically worse ({_p(p_value)}) but within allowedIncrease "
            f"{spec.allowed_increase:g} / minDifference {format_value(min_diff)}"
        )
    else:
        tail = f"no significant regression, {_p(p_value)}"
    return CompareResult(Outcome.PASS, comparison, f"{head}, {tail}", False, state, value, unit)


def _gap(spec: CompareSpec, comparison: Comparison, unit: str) -> str:
    """How much worse the canary is: points of error rate, or percent slower."""
    difference, ratio = comparison.difference, comparison.ratio
    if spec.test is CompareTest.ERROR_RATE:
        return "" if difference is None else f"worse by {format_value(difference)} points"
    if difference is None or ratio is None:
        return ""
    return f"slower by {format_value((ratio - 1) * 100)}% (+{format_value(difference, unit)})"
