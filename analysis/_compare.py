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

from analysis._model import (
    REQUEST_DURATION,
    REQUEST_SUCCESS_RATE,
    CompareSpec,
    CompareTest,
    Comparison,
    OnMaxInconclusive,
    Outcome,
    SequentialState,
)
from analysis._providers import Bucket
from analysis._stats import (
    RATIO_GRID,
    histogram_quantile,
    mixture_log_lambda,
    stratum_log_lr,
)
from analysis._threshold import format_value

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


def decide(
    spec: CompareSpec,
    state: SequentialState,
    *,
    metric: str,
    buckets_to_ms: float = 1.0,
) -> CompareResult:
    """Decide from the accumulated evidence; also updates the inconclusive counter."""
    n_c, n_p = state.canary_requests, state.primary_requests
    log_lambda = mixture_log_lambda(state.log_lr)
    max_log_lambda = max(state.max_log_lambda, log_lambda)
    p_value = min(1.0, math.exp(-log_lambda))
    lr = math.exp(min(log_lambda, 700.0))
    enough = n_c >= spec.min_sample_size and n_p >= spec.min_sample_size
    min_diff = spec.effective_min_difference

    if spec.test is CompareTest.ERROR_RATE:
        c_val = 100.0 * state.canary_events / n_c if n_c > 0 else None
        p_val = 100.0 * state.primary_events / n_p if n_p > 0 else None
        unit = "%"
        if metric == REQUEST_SUCCESS_RATE:
            label = "success rate"
            shown_c = None if c_val is None else 100.0 - c_val
            shown_p = None if p_val is None else 100.0 - p_val
        else:
            label = f"{metric} error rate"
            shown_c, shown_p = c_val, p_val
    else:
        unit = "ms"
        les = list(state.hist_le)
        c_val = (
            histogram_quantile(spec.quantile, les, list(state.canary_hist)) * buckets_to_ms
            if les
            else None
        )
        p_val = (
            histogram_quantile(spec.quantile, les, list(state.primary_hist)) * buckets_to_ms
            if les
            else None
        )
        c_val = None if c_val is None or math.isnan(c_val) else c_val
        p_val = None if p_val is None or math.isnan(p_val) else p_val
        qname = f"p{spec.quantile * 100:g}"
        label = f"request duration {qname}" if metric == REQUEST_DURATION else f"{metric} {qname}"
        shown_c, shown_p = c_val, p_val

    difference = None if c_val is None or p_val is None else c_val - p_val
    if c_val is None or p_val is None:
        ratio = None
    elif p_val > 0:
        ratio = c_val / p_val
    else:
        ratio = math.inf if c_val > 0 else 1.0

    comparison = Comparison(
        test=spec.test,
        canary_value=c_val,
        primary_value=p_val,
        difference=difference,
        ratio=ratio,
        p_value=p_value,
        likelihood_ratio=lr,
        canary_samples=round(n_c),
        primary_samples=round(n_p),
        canary_events=round(state.canary_events),
        primary_events=round(state.primary_events),
    )
    value = shown_c
    head = f"{label} {'n/a' if shown_c is None else format_value(shown_c, unit)}"
    head += f" (primary {'n/a' if shown_p is None else format_value(shown_p, unit)}, n={_n(n_c)})"
    state = replace(state, max_log_lambda=max_log_lambda)

    if not enough:
        count = state.inconclusive + 1
        state = replace(state, inconclusive=count)
        need = (
            f"too little data: {_n(min(n_c, n_p))} of {spec.min_sample_size:,} requests "
            "on the smaller side"
        )
        if count > spec.max_inconclusive:
            tail = f"{need}, still inconclusive after {count} checks (maxInconclusive {spec.max_inconclusive})"
            outcome = (
                Outcome.FAIL if spec.on_max_inconclusive is OnMaxInconclusive.FAIL else Outcome.PASS
            )
            return CompareResult(outcome, comparison, f"{head}, {tail}", False, state, value, unit)
        tail = f"{need} (inconclusive {count} of {spec.max_inconclusive})"
        return CompareResult(
            Outcome.INCONCLUSIVE, comparison, f"{head}, {tail}", False, state, value, unit
        )

    state = replace(state, inconclusive=0)
    significant = log_lambda >= math.log(1.0 / spec.alpha)
    if spec.test is CompareTest.ERROR_RATE:
        gap = "" if difference is None else f"worse by {format_value(difference)} points"
    else:
        gap = (
            ""
            if difference is None or ratio is None
            else f"slower by {format_value((ratio - 1) * 100)}% (+{format_value(difference, unit)})"
        )
    relevant = (
        difference is not None
        and ratio is not None
        and difference >= min_diff
        and ratio >= spec.allowed_increase
    )
    if significant and relevant:
        return CompareResult(
            Outcome.FAIL,
            comparison,
            f"{head}, {gap}, {_p(p_value)}",
            spec.fail_fast,
            state,
            value,
            unit,
        )
    if significant:
        tail = (
            f"statistically worse ({_p(p_value)}) but within allowedIncrease "
            f"{spec.allowed_increase:g} / minDifference {format_value(min_diff)}"
        )
    else:
        tail = f"no significant regression, {_p(p_value)}"
    return CompareResult(Outcome.PASS, comparison, f"{head}, {tail}", False, state, value, unit)
