"""The threshold judge: Flagger's ``thresholdRange`` semantics, as a pure function.

A check fails iff ``value < min`` or ``value > max``; either bound may be
absent and equality passes.  The deprecated single ``threshold`` keeps
Flagger's meaning when no ``thresholdRange`` is given: a minimum for
``request-success-rate``, a maximum in milliseconds for ``request-duration``
and a maximum for every other metric.  The result sentence follows Flagger's
wording ("success rate 98.69% < 99%") so Events read the same.

A value the metric cannot take is an **Error**, never judged against the bounds: NaN or an
infinity for any metric, and for the built-in metrics a value outside their possible range (a
success rate is a percentage, 0 to 100; a duration is never negative). An impossible reading
means the query is wrong (a ratio upside down, a division by zero), and judging it would let
``+Inf`` or ``1e308 %`` pass a minimum success rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from analysis._spec.vocabulary import REQUEST_DURATION, REQUEST_SUCCESS_RATE, Outcome

__all__ = [
    "POSSIBLE_RANGES",
    "ThresholdResult",
    "effective_bounds",
    "format_value",
    "impossible_value",
    "judge_threshold",
    "metric_label",
]

#: The values a built-in metric can take (in its unit: percent, milliseconds).
POSSIBLE_RANGES: Mapping[str, tuple[float, float]] = {
    REQUEST_SUCCESS_RATE: (0.0, 100.0),
    REQUEST_DURATION: (0.0, math.inf),
}
#: Rounding a ratio of sums may land a hair outside its range (100.00000000000001 %).
_RANGE_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    outcome: Outcome
    value: float
    min: float | None
    max: float | None
    unit: str
    summary: str


def metric_label(name: str) -> tuple[str, str]:
    """Human label and unit of a metric (builtins get Flagger's words)."""
    if name == REQUEST_SUCCESS_RATE:
        return "success rate", "%"
    if name == REQUEST_DURATION:
        return "request duration", "ms"
    return name, ""


def format_value(x: float, unit: str = "") -> str:
    """Compact number for sentences: ``98.69%``, ``1515ms``, ``0.25``."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return ("+Inf" if x > 0 else "-Inf") + unit
    if abs(x) >= 1e12:  # an absurd reading stays readable: 1e+308%, not 309 digits
        text = f"{x:.3g}"
    elif unit == "ms" and abs(x) >= 100:
        text = f"{x:.0f}"
    else:
        text = f"{x:.2f}".rstrip("0").rstrip(".")
        if text in ("-0", ""):
            text = "0"
        if text == "0" and x != 0:
            text = f"{x:.3g}"
    return text + unit


def impossible_value(name: str, value: float, unit: str = "") -> str | None:
    """Why ``value`` cannot be a reading of metric ``name``, or None when it can.

    Any metric: NaN or an infinity. A built-in metric (:data:`POSSIBLE_RANGES`): a value
    outside its range. Custom metrics have no known range, so only NaN and infinities count.
    """
    if math.isnan(value):
        return "NaN is not a measurement"
    if math.isinf(value):
        return "an infinite value is not a measurement"
    bounds = POSSIBLE_RANGES.get(name)
    if bounds is None:
        return None
    lo, hi = bounds
    slack = _RANGE_TOLERANCE * max(1.0, abs(lo), abs(hi) if math.isfinite(hi) else 1.0)
    if lo - slack <= value <= hi + slack:
        return None
    if math.isinf(hi):
        return f"a {metric_label(name)[0]} is never below {format_value(lo, unit)}"
    return (
        f"a {metric_label(name)[0]} is between {format_value(lo, unit)} "
        f"and {format_value(hi, unit)}"
    )


def effective_bounds(
    name: str, min_: float | None, max_: float | None, threshold: float | None
) -> tuple[float | None, float | None]:
    """Bounds after applying the deprecated ``threshold`` (only when no range is set)."""
    if min_ is not None or max_ is not None or threshold is None:
        return min_, max_
    if name == REQUEST_SUCCESS_RATE:
        return threshold, None
    return None, threshold


def judge_threshold(
    name: str,
    value: float,
    *,
    min: float | None = None,
    max: float | None = None,
    threshold: float | None = None,
    label: str | None = None,
    unit: str | None = None,
) -> ThresholdResult:
    """Judge ``value`` against the bounds; pure, total, no I/O."""
    default_label, default_unit = metric_label(name)
    label = default_label if label is None else label
    unit = default_unit if unit is None else unit
    lo, hi = effective_bounds(name, min, max, threshold)
    shown = f"{label} {format_value(value, unit)}"
    impossible = impossible_value(name, value, unit)
    if impossible is not None:
        return ThresholdResult(
            Outcome.ERROR, value, lo, hi, unit, f"{shown} is impossible: {impossible}"
        )
    if lo is not None and value < lo:
        return ThresholdResult(
            Outcome.FAIL, value, lo, hi, unit, f"{shown} < {format_value(lo, unit)}"
        )
    if hi is not None and value > hi:
        return ThresholdResult(
            Outcome.FAIL, value, lo, hi, unit, f"{shown} > {format_value(hi, unit)}"
        )
    if lo is not None and hi is not None:
        within = f"within [{format_value(lo, unit)}, {format_value(hi, unit)}]"
    elif lo is not None:
        within = f">= {format_value(lo, unit)}"
    elif hi is not None:
        within = f"<= {format_value(hi, unit)}"
    else:
        within = "(no bounds set)"
    return ThresholdResult(Outcome.PASS, value, lo, hi, unit, f"{shown} {within}")
