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
from itertools import chain, pairwise
from typing import Any

from analysis._spec.errors import AnalysisSpecError
from analysis._spec.fields import type_name
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
    key: str = ""
    """What the evidence was gathered under (:func:`analysis._compare.run_key`: the test, its
    alpha, allowedIncrease, quantile, warm-up, the metric's interval and queries): a check
    under other settings starts a new run. Empty in states written before it was kept."""
    matched: tuple[float, float] = (0.0, 0.0)
    """The primary as the canary saw it: the canary's requests in windows where the primary
    had traffic, and the events the canary would have had there at the primary's rate of each
    window. Their ratio is the primary's rate weighted as the canary's traffic, the fair
    number to set against the canary's when the weight and the base rate change over a run
    (the crude totals compare early primary windows with late canary ones)."""

    def to_status(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "windowEnd": _iso(self.window_end, exact=True),
            "logLR": [_exact(x) for x in self.log_lr],
            "canary": [_num(self.canary_requests), _num(self.canary_events)],
            "primary": [_num(self.primary_requests), _num(self.primary_events)],
            "maxLogLambda": _exact(self.max_log_lambda),
            "windows": self.windows,
            "inconclusive": self.inconclusive,
        }
        if self.started is not None:
            d["started"] = _iso(self.started, exact=True)
        if self.recent:
            d["recent"] = [[_num(x) for x in w] for w in self.recent]
        if self.recent_caps:
            d["recentCaps"] = [_exact(x) for x in self.recent_caps]
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
        if self.key:
            d["key"] = self.key
        if self.hist_le:
            d["hist"] = {
                "le": [_num(x) for x in self.hist_le],
                "canary": [_num(x) for x in self.canary_hist],
                "primary": [_num(x) for x in self.primary_hist],
            }
        return d

    @classmethod
    def from_status(cls, d: Mapping[str, Any]) -> SequentialState:
        """Rebuild a state stored by :meth:`to_status`; a bad one is a ``AnalysisSpecError``.

        The error names the field, and the judge starts a new run on it (``_restore``).  Why
        every shape and number is checked, not only the types: a state restored from a
        status that :meth:`to_status` could not have written (a row of ``recent`` cut short,
        histograms of unequal lengths, a count of ``"+Inf"``, which is how :func:`_num`
        writes an infinite number) went on into the judge and made ``evaluate`` raise, or
        wrote infinite evidence back into a status that was no longer JSON.
        """
        if not isinstance(d, Mapping):
            raise _corrupt("", f"expected a mapping, got {type_name(d)}")
        try:
            hist = d.get("hist") or {}
            if not isinstance(hist, Mapping):
                raise _corrupt("hist", f"expected a mapping, got {type_name(hist)}")
            le = _reals(hist.get("le", ()), "hist.le", finite=False)
            if any(math.isnan(x) for x in le) or not all(a < b for a, b in pairwise(le)):
                raise _corrupt("hist.le", "expected bucket boundaries in increasing order")
            canary_hist = _reals(hist.get("canary", ()), "hist.canary", count=True)
            primary_hist = _reals(hist.get("primary", ()), "hist.primary", count=True)
            if not len(le) == len(canary_hist) == len(primary_hist):
                raise _corrupt(
                    "hist",
                    f"expected as many counts as boundaries, got {len(le)} boundaries, "
                    f"{len(canary_hist)} canary and {len(primary_hist)} primary counts",
                )
            recent = _recent(d.get("recent", ()))
            caps = _reals(d.get("recentCaps", ()), "recentCaps", count=True)
            if len(caps) > len(recent):
                raise _corrupt(
                    "recentCaps",
                    f"expected at most one cap per recent window ({len(recent)}), got {len(caps)}",
                )
            canary = _reals(d["canary"], "canary", length=2, count=True)
            primary = _reals(d["primary"], "primary", length=2, count=True)
            warm = _reals(d.get("warm", (0, 0, 0, 0)), "warm", length=4, count=True)
            matched = _reals(d.get("matched", (0, 0)), "matched", length=2, count=True)
            _events_of(canary[0], canary[1], "canary")
            _events_of(primary[0], primary[1], "primary")
            _events_of(warm[0], warm[1], "warm")
            _events_of(warm[2], warm[3], "warm")
            # a sum of each window's canary requests times the primary's rate: a few ulps over
            # the requests at a primary that failed every request, never more
            _events_of(matched[0] * (1.0 + 1e-9), matched[1], "matched")
            started = d.get("started")
            return cls(
                window_end=_when(d["windowEnd"], "windowEnd"),
                log_lr=_reals(d["logLR"], "logLR"),
                canary_requests=canary[0],
                canary_events=canary[1],
                primary_requests=primary[0],
                primary_events=primary[1],
                max_log_lambda=_real(d.get("maxLogLambda", 0.0), "maxLogLambda"),
                windows=_whole(d.get("windows", 0), "windows"),
                inconclusive=_whole(d.get("inconclusive", 0), "inconclusive"),
                hist_le=le,
                canary_hist=canary_hist,
                primary_hist=primary_hist,
                started=_when(started, "started") if started else None,
                recent=recent,
                recent_caps=caps,
                last_step=d.get("lastStep") is True,
                warm=(warm[0], warm[1], warm[2], warm[3]),
                warm_windows=_whole(d.get("warmWindows", 0), "warmWindows"),
                bounds=_reals(d.get("bounds", ()), "bounds"),
                warm_bounds=_reals(d.get("warmBounds", ()), "warmBounds"),
                matched=(matched[0], matched[1]),
                key=_key(d.get("key", "")),
            )
        except AnalysisSpecError:
            raise
        except KeyError as exc:
            raise _corrupt(str(exc.args[0]), "missing") from None
        except (TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
            raise _corrupt("", str(exc)) from None


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
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
            # OverflowError: JSON's integers have no limit, and float() of a longer one raises
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
    """An instant of a status, in UTC: a time that UTC cannot hold (``0001-01-01T00:00+01:00``)
    raises ``OverflowError`` here, where the caller takes it for a corrupt status, and not when
    the verdict is written."""
    t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)


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


def _exact(x: float) -> float | str:
    """Evidence (nats) exactly as it is: a finite float survives JSON bit for bit, and the
    judge must decide the same after a save and a restore.  A non-finite one is written as
    :func:`_num` writes it, so the status stays strict JSON (and reading it back starts a
    new run: no evidence is infinite)."""
    if math.isfinite(x):
        return float(x)
    return "NaN" if math.isnan(x) else ("+Inf" if x > 0 else "-Inf")


_SPECIAL = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
"""The strings :func:`_num` writes for numbers JSON has no word for."""


def _corrupt(name: str, message: str) -> AnalysisSpecError:
    """The error of a stored state that :meth:`SequentialState.to_status` could not have
    written; ``name`` is the field (empty: the state as a whole)."""
    path = f"status.state.{name}" if name else "status.state"
    return AnalysisSpecError(path, f"cannot restore sequential state: {message}")


def _real(x: object, name: str, *, finite: bool = True, count: bool = False) -> float:
    """One stored number: a JSON number, or one of the strings of :data:`_SPECIAL`.

    Why ``finite`` by default: a count or a log likelihood ratio is never infinite or NaN
    (the judge's rounding and sums raised on them); only a histogram's bucket boundary may be
    ``+Inf``.
    Why no other strings, nor booleans: :meth:`SequentialState.to_status` writes none.
    """
    if isinstance(x, str) and x in _SPECIAL:
        value = _SPECIAL[x]
    elif isinstance(x, int | float) and not isinstance(x, bool):
        try:
            value = float(x)
        except OverflowError:  # an integer of more digits than a float holds
            value = math.inf
    else:
        raise _corrupt(name, f"expected a number, got {type_name(x)}")
    if finite and not math.isfinite(value):
        raise _corrupt(name, f"expected a finite number, got {type_name(x)}")
    if count and value < 0:
        raise _corrupt(name, f"expected a count (0 or more), got {type_name(x)}")
    return value


def _reals(
    x: object, name: str, *, length: int | None = None, finite: bool = True, count: bool = False
) -> tuple[float, ...]:
    """A stored list of numbers (see :func:`_real`), of ``length`` numbers when given.

    Why a string is refused: iterated, ``"12"`` read as the numbers 1 and 2."""
    if not isinstance(x, list | tuple):
        raise _corrupt(name, f"expected a list of numbers, got {type_name(x)}")
    if length is not None and len(x) != length:
        raise _corrupt(name, f"expected {length} numbers, got {len(x)}")
    # The usual case, checked at once (this runs every tick, for every number of the state):
    # plain JSON numbers, finite, and not below 0 where counts are asked.  Anything else is
    # read one by one, for the error that names the element.
    values = _plain(x, finite=finite, count=count)
    if values is not None:
        return values
    return tuple(_real(v, f"{name}[{i}]", finite=finite, count=count) for i, v in enumerate(x))


def _key(value: object) -> str:
    """A stored :attr:`SequentialState.key`: a short string, or a corrupt state."""
    if not isinstance(value, str) or len(value) > 64:
        raise _corrupt("key", f"expected a short string, got {type_name(value)}")
    return value


_NUMBERS = frozenset((float, int))


def _plain(
    x: list[Any] | tuple[Any, ...], *, finite: bool, count: bool
) -> tuple[float, ...] | None:
    """``x`` as floats when every element is a plain JSON number, finite where asked (their
    sum is finite then, and only then, short of a sum past 1e308), and not below 0 where
    counts are asked; None otherwise."""
    if not set(map(type, x)) <= _NUMBERS:  # bool is not int here: a type, not isinstance
        return None
    try:
        values = tuple(map(float, x))
    except OverflowError:  # an integer of more digits than a float holds
        return None
    if finite and not math.isfinite(sum(values)):
        return None
    if count and values and min(values) < 0:
        return None
    return values


def _recent(x: object) -> tuple[tuple[float, ...], ...]:
    """The stored counts of the recent windows: per window canary and primary requests, then
    canary and primary events per tested boundary (4 numbers or more, an even number), as
    :func:`~analysis._compare.add_window` keeps them and the scatter reads them."""
    if not isinstance(x, list | tuple):
        raise _corrupt("recent", f"expected a list of windows, got {type_name(x)}")
    if all(isinstance(w, list | tuple) for w in x):
        # The usual case, all windows at once (up to 60 of them, every tick).
        flat = _plain(tuple(chain.from_iterable(x)), finite=True, count=True)
        if flat is not None:
            rows, start = [], 0
            for w in x:
                rows.append(flat[start : start + len(w)])
                start += len(w)
            return _checked_windows(rows)
    return _checked_windows([_reals(w, f"recent[{i}]", count=True) for i, w in enumerate(x)])


def _checked_windows(rows: list[tuple[float, ...]]) -> tuple[tuple[float, ...], ...]:
    """The recent windows, each of a length :func:`_recent` reads, none with more events than
    requests."""
    for i, row in enumerate(rows):
        if len(row) < 4 or len(row) % 2:
            raise _corrupt(
                f"recent[{i}]",
                "expected requests on both sides, then events on both sides per tested "
                f"boundary (an even number of 4 or more), got {len(row)} numbers",
            )
        if max(row[2::2]) > row[0] or max(row[3::2]) > row[1]:
            for k in range(2, len(row), 2):  # which one, for the message
                _events_of(row[0], row[k], f"recent[{i}]")
                _events_of(row[1], row[k + 1], f"recent[{i}]")
    return tuple(rows)


def _events_of(requests: float, events: float, name: str) -> None:
    """Events are some of the requests: the judge never counts more of them (a window's are
    cut to its requests), and more read back as a rate over 100%."""
    if events > requests:
        raise _corrupt(
            name, f"expected no more events than requests, got {events:g} of {requests:g}"
        )


def _whole(x: object, name: str) -> int:
    """A stored count of windows or checks: a whole number, 0 or more."""
    value = _real(x, name, count=True)
    if not value.is_integer():
        raise _corrupt(name, f"expected a whole number, got {type_name(x)}")
    return int(value)


def _when(x: object, name: str) -> datetime:
    """A stored instant (RFC 3339, as :func:`_iso` writes it)."""
    if not isinstance(x, str):
        raise _corrupt(name, f"expected a time, got {type_name(x)}")
    try:
        return _parse_iso(x)
    except (ValueError, OverflowError):
        raise _corrupt(name, f"expected a time, got {type_name(x)}") from None


def _opt_int(x: object) -> int | None:
    return None if x is None else int(x)  # type: ignore[call-overload]


def _opt_float(x: object) -> float | None:
    if x is None:
        return None
    if isinstance(x, str):
        special = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}
        return special[x] if x in special else float(x)
    return float(x)  # type: ignore[arg-type]
