"""The threshold judge: Flagger's ``thresholdRange`` semantics, as a pure function.

A check fails iff ``value < min`` or ``value > max``; either bound may be
absent and equality passes.  The deprecated single ``threshold`` keeps
Flagger's meaning when no ``thresholdRange`` is given: a minimum for
``request-success-rate``, a maximum in milliseconds for ``request-duration``
and a maximum for every other metric.  The result sentence follows Flagger's
wording ("success rate 98.69% < 99%") so Events read the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from analysis._spec.vocabulary import REQUEST_DURATION, REQUEST_SUCCESS_RATE, Outcome

__all__ = ["ThresholdResult", "effective_bounds", "format_value", "judge_threshold", "metric_label"]


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
    if unit == "ms" and abs(x) >= 100:
        text = f"{x:.0f}"
    else:
        text = f"{x:.2f}".rstrip("0").rstrip(".")
        if text in ("-0", ""):
            text = "0"
        if text == "0" and x != 0:
            text = f"{x:.3g}"
    return text + unit


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
    if math.isnan(value):
        return ThresholdResult(Outcome.NODATA, value, lo, hi, unit, f"{shown}: no value")
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
