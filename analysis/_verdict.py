"""What a check concluded, in the form the Canary status stores it.

The controller gets a :class:`Verdict` back for each metric at each tick.
Verdicts round-trip through ``to_status()`` / ``from_status()`` because the
Canary status is the controller's only memory: the sequential test's running
evidence (:class:`SequentialState`) travels inside the stored verdict and is
handed back on the next tick.  Numbers are stored at full precision, because a
replay needs them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from analysis._spec.errors import AnalysisSpecError
from analysis._spec.vocabulary import CompareTest, Outcome

__all__ = ["Comparison", "SequentialState", "Verdict"]


@dataclass(frozen=True, slots=True)
class SequentialState:
    """Running evidence of a sequential test, stored in the Canary status between ticks.

    ``log_lr`` holds, per alternative of the mixture (one block of the ratio
    grid per tested boundary), the log likelihood ratio summed over all windows
    so far, each window's share capped (see :mod:`analysis._compare`).  Totals are
    for reporting and for the minimum-sample guard; ``recent`` keeps the counts
    of the last windows that had events (canary and primary requests, then
    canary and primary events per tested boundary), from which the dispersion
    of the counts is measured.  ``started`` is where the run's first window began, and ``warm``
    the counts seen during the warm-up, which are reported but never judged.
    ``bounds`` are the latency test's bucket boundaries, fixed at the first
    judged window.
    ``window_end`` is where the next window starts, so windows never overlap and
    none is skipped, however irregular the ticks.
    """

    window_end: datetime
    log_lr: tuple[float, ...]
    canary_requests: float = 0.0
    canary_events: float = 0.0
    primary_requests: float = 0.0
    primary_events: float = 0.0
    max_log_lambda: float = 0.0
    windows: int = 0
    inconclusive: int = 0
    hist_le: tuple[float, ...] = ()
    canary_hist: tuple[float, ...] = ()
    primary_hist: tuple[float, ...] = ()
    started: datetime | None = None
    recent: tuple[tuple[float, ...], ...] = ()
    recent_caps: tuple[float, ...] = ()
    """The cap (nats) each window of ``recent`` was added under, the last ``len(recent_caps)``
    of them (latency only; states written before the caps were kept have none): a window
    shorter than the analysis interval is capped at its share of the interval's cap, and
    taking a wild window's evidence back must take back what it added, no more."""
    last_step: bool = False
    """Whether the judge last decided on this evidence for the last step (where a PASS
    promotes): a check with no new window repeats that decision only for the same step."""
    warm: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    warm_windows: int = 0
    bounds: tuple[float, ...] = ()
    warm_bounds: tuple[float, ...] = ()
    """The boundaries the primary alone gave in the warm-up's last window with primary traffic
    (the primary is warm while the canary warms up, and no judged window's labels are in
    them); a candidate for the run's boundaries, dropped once those are fixed."""
    matched: tuple[float, float] = (0.0, 0.0)
    """The primary as the canary saw it: the canary's requests in windows where the primary
    had traffic, and the events the canary would have had there at the primary's rate of each
    window. Their ratio is the primary's rate weighted as the canary's traffic, the fair
    number to set against the canary's when the weight and the base rate change over a run
    (the crude totals compare early primary windows with late canary ones)."""

    def to_status(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "windowEnd": _iso(self.window_end, exact=True),
            "logLR": list(self.log_lr),
            "canary": [_num(self.canary_requests), _num(self.canary_events)],
            "primary": [_num(self.primary_requests), _num(self.primary_events)],
            "maxLogLambda": self.max_log_lambda,
            "windows": self.windows,
            "inconclusive": self.inconclusive,
        }
        if self.started is not None:
            d["started"] = _iso(self.started, exact=True)
        if self.recent:
            d["recent"] = [[_num(x) for x in w] for w in self.recent]
        if self.recent_caps:
            d["recentCaps"] = list(self.recent_caps)
        if self.last_step:
            d["lastStep"] = True
        if self.warm_windows:
            d["warm"] = [_num(x) for x in self.warm]
            d["warmWindows"] = self.warm_windows
        if self.bounds:
            d["bounds"] = [_num(x) for x in self.bounds]
        if self.warm_bounds:
            d["warmBounds"] = [_num(x) for x in self.warm_bounds]
        if self.matched[0] > 0:
            d["matched"] = [_num(x) for x in self.matched]
        if self.hist_le:
            d["hist"] = {
                "le": [("+Inf" if math.isinf(x) else _num(x)) for x in self.hist_le],
                "canary": [_num(x) for x in self.canary_hist],
                "primary": [_num(x) for x in self.primary_hist],
            }
        return d

    @classmethod
    def from_status(cls, d: Mapping[str, Any]) -> SequentialState:
        try:
            hist = d.get("hist") or {}
            return cls(
                window_end=_parse_iso(str(d["windowEnd"])),
                log_lr=tuple(float(x) for x in d["logLR"]),
                canary_requests=float(d["canary"][0]),
                canary_events=float(d["canary"][1]),
                primary_requests=float(d["primary"][0]),
                primary_events=float(d["primary"][1]),
                max_log_lambda=float(d.get("maxLogLambda", 0.0)),
                windows=int(d.get("windows", 0)),
                inconclusive=int(d.get("inconclusive", 0)),
                hist_le=tuple(float(x) for x in hist.get("le", ())),
                canary_hist=tuple(float(x) for x in hist.get("canary", ())),
                primary_hist=tuple(float(x) for x in hist.get("primary", ())),
                started=_parse_iso(str(d["started"])) if d.get("started") else None,
                recent=tuple(tuple(float(x) for x in w) for w in d.get("recent", ())),
                recent_caps=tuple(float(x) for x in d.get("recentCaps", ())),
                last_step=d.get("lastStep") is True,
                warm=_four(d.get("warm", (0, 0, 0, 0))),
                warm_windows=int(d.get("warmWindows", 0)),
                bounds=tuple(float(x) for x in d.get("bounds", ())),
                warm_bounds=tuple(float(x) for x in d.get("warmBounds", ())),
                matched=_two(d.get("matched", (0, 0))),
            )
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise AnalysisSpecError(
                "status.state", f"cannot restore sequential state: {exc}"
            ) from None


@dataclass(frozen=True, slots=True)
class Comparison:
    """The numbers behind a canary-vs-primary verdict."""

    test: CompareTest
    canary_value: float | None
    primary_value: float | None
    difference: float | None
    ratio: float | None
    p_value: float
    likelihood_ratio: float
    canary_samples: int
    primary_samples: int
    interval: tuple[float, float] | None = None
    canary_events: int = 0
    primary_events: int = 0
    needed_samples: int | None = None
    """Canary requests expected to be needed to detect ``compare.detectIncrease`` (None: unknown)."""
    dispersion: float = 1.0
    """How much more the counts vary than independent requests would (1: not at all)."""

    def to_status(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "test": self.test.value,
            "canary": _num(self.canary_value),
            "primary": _num(self.primary_value),
            "difference": _num(self.difference),
            "ratio": _num(self.ratio),
            "pValue": _num(self.p_value),
            "likelihoodRatio": _num(self.likelihood_ratio),
            "canarySamples": self.canary_samples,
            "primarySamples": self.primary_samples,
            "canaryEvents": self.canary_events,
            "primaryEvents": self.primary_events,
            "neededSamples": self.needed_samples,
            "dispersion": None if self.dispersion == 1.0 else _num(self.dispersion),
        }
        if self.interval is not None:
            d["interval"] = [_num(self.interval[0]), _num(self.interval[1])]
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_status(cls, d: Mapping[str, Any]) -> Comparison:
        interval = d.get("interval")
        return cls(
            test=CompareTest(d["test"]),
            canary_value=_opt_float(d.get("canary")),
            primary_value=_opt_float(d.get("primary")),
            difference=_opt_float(d.get("difference")),
            ratio=_opt_float(d.get("ratio")),
            p_value=float(d.get("pValue", 1.0)),
            likelihood_ratio=float(d.get("likelihoodRatio", 1.0)),
            canary_samples=int(d.get("canarySamples", 0)),
            primary_samples=int(d.get("primarySamples", 0)),
            interval=(float(interval[0]), float(interval[1])) if interval else None,
            canary_events=int(d.get("canaryEvents", 0)),
            primary_events=int(d.get("primaryEvents", 0)),
            needed_samples=_opt_int(d.get("neededSamples")),
            dispersion=float(d.get("dispersion", 1.0)),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of one check of one metric at one tick.

    ``summary`` is the sentence for Events and notifications.  ``conclusive``
    marks a statistical FAIL that should roll back at once (``compare.failFast``)
    instead of counting as one failed check.  An INCONCLUSIVE verdict holds the
    step, with three refinements: ``warming_up`` (the canary is inside
    ``compare.warmup``: evidence is observed, not acted on), ``may_advance``
    (``compare.onInconclusive: advance``: the weight may step up to collect data,
    but the canary is not promoted on it) and ``stalled`` (the inconclusive
    budget is spent and there is no threshold to fall back on: the canary holds
    until more data arrives or a person decides).  ``primary_value`` is the
    primary's measurement in the unit ``value`` shows the canary's (a success
    rate for ``request-success-rate``; the comparison holds error rates).  ``state`` is the sequential test's
    evidence, to be handed back through ``previous`` on the next tick.
    """

    metric: str
    outcome: Outcome
    summary: str
    evaluated_at: datetime
    judge: str = "threshold"
    value: float | None = None
    unit: str = ""
    min: float | None = None
    max: float | None = None
    query: str | None = None
    comparison: Comparison | None = None
    conclusive: bool = False
    error: str | None = None
    warming_up: bool = False
    may_advance: bool = False
    stalled: bool = False
    primary_value: float | None = None
    state: SequentialState | None = field(default=None, compare=False)

    @property
    def failed_check(self) -> bool:
        """True when Flagger would count a failed check (Fail, NoData, Error)."""
        return self.outcome in (Outcome.FAIL, Outcome.NODATA, Outcome.ERROR)

    def to_status(self) -> dict[str, Any]:
        """A compact JSON-able dict for the Canary status (``from_status`` restores it)."""
        d: dict[str, Any] = {
            "metric": self.metric,
            "outcome": self.outcome.value,
            "summary": self.summary,
            "evaluatedAt": _iso(self.evaluated_at),
            "judge": self.judge,
            "value": _num(self.value),
            "primaryValue": _num(self.primary_value),
            "unit": self.unit or None,
            "min": _num(self.min),
            "max": _num(self.max),
            "query": self.query,
            "conclusive": self.conclusive or None,
            "error": self.error,
            "warmingUp": self.warming_up or None,
            "mayAdvance": self.may_advance or None,
            "stalled": self.stalled or None,
        }
        if self.comparison is not None:
            d["comparison"] = self.comparison.to_status()
        if self.state is not None:
            d["state"] = self.state.to_status()
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_status(cls, d: Mapping[str, Any]) -> Verdict:
        """Rebuild a verdict stored by :meth:`to_status`; a bad dict is a ``AnalysisSpecError``."""
        try:
            comparison = d.get("comparison")
            state = d.get("state")
            return cls(
                metric=str(d["metric"]),
                outcome=Outcome(d["outcome"]),
                summary=str(d.get("summary", "")),
                evaluated_at=_parse_iso(str(d["evaluatedAt"])),
                judge=str(d.get("judge", "threshold")),
                value=_opt_float(d.get("value")),
                primary_value=_opt_float(d.get("primaryValue")),
                unit=str(d.get("unit", "")),
                min=_opt_float(d.get("min")),
                max=_opt_float(d.get("max")),
                query=d.get("query"),
                comparison=Comparison.from_status(comparison) if comparison else None,
                conclusive=bool(d.get("conclusive", False)),
                error=d.get("error"),
                warming_up=bool(d.get("warmingUp", False)),
                may_advance=bool(d.get("mayAdvance", False)),
                stalled=bool(d.get("stalled", False)),
                state=SequentialState.from_status(state) if state else None,
            )
        except AnalysisSpecError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise AnalysisSpecError("status", f"cannot restore a verdict: {exc}") from None


# -- helpers ------------------------------------------------------------------


def _iso(t: datetime, *, exact: bool = False) -> str:
    """RFC 3339 in UTC, to the millisecond; ``exact`` keeps the microseconds.

    The judge's own clock (``windowEnd``, ``started``) is exact: cut to the millisecond,
    the warm-up's end and the "no new window" cut-off moved between a verdict and its
    status, and a tick decided differently after a restart than without one.
    """
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    timespec = "microseconds" if exact else "milliseconds"
    return t.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def _parse_iso(s: str) -> datetime:
    t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _num(x: float | None) -> float | int | str | None:
    """JSON-safe number at full precision (replay needs it); integral floats become ints."""
    if x is None:
        return None
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if float(x).is_integer() and abs(x) < 2**53:
        return int(x)
    return float(x)


def _four(w: Any) -> tuple[float, float, float, float]:
    a, b, c, d = (float(x) for x in w)
    return a, b, c, d


def _two(w: Any) -> tuple[float, float]:
    a, b = (float(x) for x in w)
    return a, b


def _opt_int(x: object) -> int | None:
    return None if x is None else int(x)  # type: ignore[call-overload]


def _opt_float(x: object) -> float | None:
    if x is None:
        return None
    if isinstance(x, str):
        special = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
        return special[x] if x in special else float(x)
    return float(x)  # type: ignore[arg-type]
