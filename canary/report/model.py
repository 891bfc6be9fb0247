"""The decision report's data: one run of a canary, read from what the controller recorded.

:func:`build_report` reads a Canary as the API returns it (a plain dict: ``metadata``,
``spec``, ``status``) and the Kubernetes Events about it, and returns a frozen
:class:`DecisionReport`: the run's ticks (time, canary weight, each metric's verdict with its
value, the primary's value for compare metrics and the canary's requests), the failed checks
accumulating toward ``analysis.threshold``, each metric's threshold range (from the spec,
else from the threshold text the judge reported), the judge's evidence of the last verdict
(``status.analysis[].details.comparison``: samples on each side, needed samples, p-value,
likelihood ratio), the decisions taken (phase transitions, gates, promotion, rollback, Git
revert: from the Events, and the run's end from the history when its Event has expired) and
the Git revert. It is pure: no I/O, no clock; everything it shows comes from status and
Events, which never hold secrets. The metric series of the builtin metrics, when the command
could read them from the metrics server (canary.report.measured), come in as ``measured``.

A run is one entry of ``status.analysisHistory`` (oldest first, at most three are kept);
``run`` picks it: ``1`` is the oldest kept, ``-1`` (the default) the newest.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from canary.commands.stored import (
    count,
    json_ready,
    mapping,
    number,
    parse_time,
    records,
    string,
)
from canary.errors import CanaryError

__all__ = [
    "Comparison",
    "DecisionReport",
    "Event",
    "Marker",
    "Measured",
    "MeasuredInput",
    "MeasuredPoint",
    "MetricPoint",
    "MetricSeries",
    "Revert",
    "RunChoiceError",
    "RunSummary",
    "Tick",
    "TickVerdict",
    "build_report",
    "parse_time",
    "verdict_kind",
]

# Verdict kinds, as the picture colours and shapes them (canary.commands.history's glyphs).
PASS = "pass"
FAIL = "fail"
INCONCLUSIVE = "inconclusive"
STALLED = "stalled"
WARMUP = "warmup"
ADVISORY = "advisory"
UNKNOWN = "unknown"  # an outcome no judge gives (a hand edit, a newer controller)
FAILING = frozenset({"Fail", "NoData", "Error"})

# Units of the builtin metrics (analysis: request-success-rate in percent, duration in ms).
BUILTIN_UNITS = {"request-success-rate": "%", "request-duration": "ms"}

# Decision kinds of markers.
TRANSITION = "transition"
GATE = "gate"
PROMOTION = "promotion"
ROLLBACK = "rollback"
REVERT = "revert"

# How an Event's message reads as a decision: (pattern, kind, label). First match wins;
# messages that match none (weight steps, halts for data, failed checks) are not markers:
# the ticks show them.
_DECISIONS: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern), kind, label)
    for pattern, kind, label in (
        (r"^New revision detected! Restarting", TRANSITION, "restarted: new revision"),
        (r"^New revision detected", TRANSITION, "new revision"),
        (r"^Starting canary analysis", TRANSITION, "analysis started"),
        (r"^Retrying the failed revision", GATE, "retry"),
        (r"^Analysing .* known-bad release", GATE, "retry (known bad)"),
        (r"^Pre-rollout check \S+ passed", GATE, "pre-rollout passed"),
        (r"pre-rollout check \S+ failed", GATE, "pre-rollout failed"),
        (r"waiting for traffic increase approval", GATE, "gate: traffic increase"),
        (r"waiting for promotion approval", GATE, "gate: promotion"),
        (r"waiting for approval", GATE, "gate: rollout"),
        (r"^Skipping the rest of the analysis", GATE, "promote --full"),
        (r"^Rolling back .*: aborted", ROLLBACK, "aborted"),
        (r"^Rolling back .* manual webhook", ROLLBACK, "rollback webhook"),
        (r"^Rolling back", ROLLBACK, "rollback"),
        (r"^Canary failed!", ROLLBACK, "failed"),
        (r"^Promotion of .* failed", ROLLBACK, "promotion failed"),
        (r"^Copying .* template spec", PROMOTION, "promoting"),
        (r"^Routing all traffic to primary", PROMOTION, "finalising"),
        (r"^Promotion completed!", PROMOTION, "promoted"),
        (r"^Reverted .* in Git", REVERT, "Git reverted"),
        (r"^Opened pull request", REVERT, "revert PR opened"),
        (r"^Git already holds the revert", REVERT, "already reverted"),
        (r"^Git revert of .* (failed|not possible)", REVERT, "Git revert failed"),
        (r"^Git revert of .* not needed", REVERT, "revert not needed"),
        (r"^Terminat", TRANSITION, "terminating"),
    )
)
# A bound of a threshold text: the operator, a number (as the judges print it: a sign, digits
# with at most one point, an exponent) and its unit. What is not one (``>= 99.5.``) is no bound.
_BOUND = re.compile(r"([<>]=?)\s*(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*([^\s]*)")
_NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


class RunChoiceError(CanaryError, ValueError):
    """``run`` names no run of the history."""


# --------------------------------------------------------------------------- the tree


@dataclass(frozen=True, slots=True)
class TickVerdict:
    """One metric's verdict at one tick."""

    name: str
    outcome: str  # Pass | Fail | Inconclusive | NoData | Error (else drawn as unknown)
    kind: str  # pass | fail | inconclusive | stalled | warmup | advisory | unknown
    value: float | None = None
    primary_value: float | None = None
    samples: int | None = None  # the canary's requests so far (compare metrics)
    advisory: bool = False
    may_advance: bool = False

    @property
    def holds(self) -> bool:
        """Whether this verdict holds the weight for more data: a binding inconclusive (or
        stalled) verdict that may not step up (``mayAdvance``: the weight steps on). An
        unknown outcome holds nothing: nothing says the controller waited for data."""
        return self.kind in (INCONCLUSIVE, STALLED) and not self.advisory and not self.may_advance


@dataclass(frozen=True, slots=True)
class Tick:
    """One analysis tick: when, at which canary weight, the verdicts, and the failed checks
    counted so far in the run (from the recorded ticks)."""

    time: str
    offset: float  # seconds since the report's start
    weight: int
    verdicts: tuple[TickVerdict, ...]
    failed: bool  # a binding metric failed: one failed check
    failed_checks: int  # cumulative, this tick included
    held: bool  # a binding metric was inconclusive: the weight held (an Inconclusive hold)

    def verdict(self, name: str) -> TickVerdict | None:
        for v in self.verdicts:
            if v.name == name:
                return v
        return None


@dataclass(frozen=True, slots=True)
class MetricPoint:
    time: str
    offset: float
    verdict: TickVerdict


@dataclass(frozen=True, slots=True)
class Comparison:
    """The judge's evidence of a compare metric's last verdict (``details.comparison``)."""

    test: str = ""
    canary: float | None = None
    primary: float | None = None
    difference: float | None = None
    ratio: float | None = None
    p_value: float | None = None
    likelihood_ratio: float | None = None
    canary_samples: int | None = None
    primary_samples: int | None = None
    needed_samples: int | None = None
    interval: tuple[float, float] | None = None
    dispersion: float | None = None

    @property
    def scatter(self) -> str:
        return scatter_text(self.dispersion)


def scatter_text(dispersion: Any) -> str:
    """``scatter x6.8`` where the events scatter enough to explain why so many requests are
    needed (1.5 times what independent requests give, as the verdict says it); empty
    otherwise, and for anything that is not a number (a status as stored)."""
    # Imported here: the CLI registers `canary report` and `canary status` by importing
    # their modules, and registering must not import the analysis package
    # (tests/cli/test_register.py).
    from analysis.spec import SCATTERED

    value = number(dispersion)
    if value is None or value < SCATTERED:
        return ""
    return f"scatter x{value:.1f}"


@dataclass(frozen=True, slots=True)
class MeasuredPoint:
    """One point of a metric's series as the metrics server measured it."""

    time: str
    offset: float  # seconds since the report's start (negative: before it)
    value: float


@dataclass(frozen=True, slots=True)
class Measured:
    """A builtin metric's series over the run's window (a Prometheus range query per side),
    in the metric's unit; a side the server had no data for is empty."""

    canary: tuple[MeasuredPoint, ...]
    primary: tuple[MeasuredPoint, ...]
    step: float  # seconds between points


# What the command read: per metric, the (time, value) points of the canary and the primary.
MeasuredInput = tuple[Sequence[tuple[datetime, float]], Sequence[tuple[datetime, float]], float]


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """One metric over the run: its bounds, unit and verdict per tick."""

    name: str
    unit: str
    low: float | None  # thresholdRange.min
    high: float | None  # thresholdRange.max
    threshold: str  # as the judge stated it (">= 99%"), "" when unknown
    compare: bool  # judged canary against primary
    advisory: bool
    points: tuple[MetricPoint, ...]
    last_outcome: str = ""
    last_summary: str = ""
    comparison: Comparison | None = None
    measured: Measured | None = None  # the series from the metrics server, when read


@dataclass(frozen=True, slots=True)
class Event:
    time: str  # the last time it happened
    first_time: str
    type: str  # Normal | Warning
    reason: str
    message: str
    count: int


@dataclass(frozen=True, slots=True)
class Marker:
    """A decision on the time axis."""

    time: str
    offset: float
    kind: str  # transition | gate | promotion | rollback | revert
    label: str
    message: str
    warning: bool = False


@dataclass(frozen=True, slots=True)
class Revert:
    state: str
    good_revision: str
    bad_revision: str
    commit: str = ""
    pull_request: str = ""
    message: str = ""
    reason: str = ""
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class RunSummary:
    number: int  # 1-based, oldest kept first
    revision: str
    started: str
    ended: str
    result: str  # Succeeded | Failed | Restarted | "" (under way)
    reason: str
    ticks: int


@dataclass(frozen=True, slots=True)
class DecisionReport:
    name: str
    namespace: str
    phase: str
    canary_weight: int
    failed_checks: int  # status.failedChecks (the current run's)
    threshold: int  # analysis.threshold: failed checks that roll back
    max_weight: int
    current_revision: str
    last_good_revision: str
    message: str
    last_transition_time: str
    runs: tuple[RunSummary, ...]
    run: RunSummary | None  # the run shown (None: no analysis recorded yet)
    start: str  # the time axis (ISO 8601); "" without a run
    end: str
    duration: float  # seconds from start to end
    ticks: tuple[Tick, ...]
    metrics: tuple[MetricSeries, ...]
    markers: tuple[Marker, ...]
    events: tuple[Event, ...]
    revert: Revert | None
    conditions: tuple[Mapping[str, str], ...]

    @property
    def title(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``canary report -o json``)."""
        data = asdict(self)
        data["conditions"] = [dict(c) for c in self.conditions]
        ready: dict[str, Any] = _json_ready(data)
        return ready


def _json_ready(value: Any) -> Any:
    """camelCase keys, and ``null`` for a number JSON cannot hold (`stored.json_ready`)."""
    if isinstance(value, Mapping):
        return {_camel(str(k)): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return json_ready(value)


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.capitalize() for part in rest)


# --------------------------------------------------------------------------- readers


# Every field is read through canary.commands.stored (mapping, records, string, count,
# number, parse_time): a hand-edited or half-written status shows as absent values, never as
# an exception or a misleading one.


def verdict_kind(outcome: str, *, advisory: bool, warming_up: bool, stalled: bool) -> str:
    """How a verdict is drawn (the order of canary.commands.history.glyph): an outcome no
    judge gives is unknown, never inconclusive (which would draw a hold)."""
    if advisory and outcome != "Pass":
        return ADVISORY
    if warming_up:
        return WARMUP
    if stalled:
        return STALLED
    if outcome == "Pass":
        return PASS
    if outcome in FAILING:
        return FAIL
    if outcome == "Inconclusive":
        return INCONCLUSIVE
    return UNKNOWN


def _verdict(d: Mapping[str, Any]) -> TickVerdict:
    outcome = string(d.get("outcome"))
    advisory = d.get("advisory") is True
    return TickVerdict(
        name=string(d.get("name")),
        outcome=outcome,
        kind=verdict_kind(
            outcome,
            advisory=advisory,
            warming_up=d.get("warmingUp") is True,
            stalled=d.get("stalled") is True,
        ),
        value=number(d.get("value")),
        primary_value=number(d.get("primaryValue")),
        samples=count(d.get("samples")),
        advisory=advisory,
        may_advance=d.get("mayAdvance") is True,
    )


def _event(obj: Mapping[str, Any]) -> Event:
    meta = mapping(obj.get("metadata"))
    created = string(meta.get("creationTimestamp"))
    last = string(obj.get("lastTimestamp")) or string(obj.get("eventTime")) or created
    first = string(obj.get("firstTimestamp")) or string(obj.get("eventTime")) or last
    return Event(
        time=last or first,
        first_time=first,
        type=string(obj.get("type")) or "Normal",
        reason=string(obj.get("reason")),
        message=string(obj.get("message")),
        count=count(obj.get("count")) or 1,
    )


def _decision(message: str) -> tuple[str, str] | None:
    for pattern, kind, label in _DECISIONS:
        if pattern.search(message):
            return kind, label
    return None


def _bounds(text: str) -> tuple[float | None, float | None, str]:
    """``>= 99% and <= 500ms`` -> (99, 500, unit). A bound whose number is unreadable
    (``>= 99.5.``, ``>= .``) or infinite (``<= 1e999``) is no bound."""
    low = high = None
    unit = ""
    for op, digits, suffix in _BOUND.findall(text):
        value = number(float(digits)) if _NUMBER.fullmatch(digits) else None
        if value is None:
            continue
        if op.startswith(">"):
            low = value
        else:
            high = value
        unit = unit or suffix
    return low, high, unit


def _comparison(details: Mapping[str, Any]) -> Comparison | None:
    d = mapping(details.get("comparison"))
    if not d:
        return None
    interval = d.get("interval")
    bounds = (
        (number(interval[0]), number(interval[1]))
        if isinstance(interval, list) and len(interval) == 2
        else (None, None)
    )
    return Comparison(
        test=string(d.get("test")),
        canary=number(d.get("canary")),
        primary=number(d.get("primary")),
        difference=number(d.get("difference")),
        ratio=number(d.get("ratio")),
        p_value=number(d.get("pValue")),
        likelihood_ratio=number(d.get("likelihoodRatio")),
        canary_samples=count(d.get("canarySamples")),
        primary_samples=count(d.get("primarySamples")),
        needed_samples=count(d.get("neededSamples")),
        dispersion=number(d.get("dispersion")),
        interval=(bounds[0], bounds[1])
        if bounds[0] is not None and bounds[1] is not None
        else None,
    )


def _revert(d: Mapping[str, Any]) -> Revert | None:
    if not d:
        return None
    return Revert(
        state=string(d.get("state")),
        good_revision=string(d.get("goodRevision")),
        bad_revision=string(d.get("badRevision")),
        commit=string(d.get("commit")),
        pull_request=string(d.get("pullRequest")),
        message=string(d.get("message")),
        reason=string(d.get("reason")),
        attempts=count(d.get("attempts")) or 0,
    )


def _choose(runs: Sequence[Mapping[str, Any]], run: int | None) -> int | None:
    """The index of the chosen run; None when there is none."""
    if not runs:
        if run is not None and run not in (0, -1):
            raise RunChoiceError(f"run {run}: no analysis is recorded yet")
        return None
    if run is None or run == 0:
        return len(runs) - 1
    index = run - 1 if run > 0 else len(runs) + run
    if not 0 <= index < len(runs):
        raise RunChoiceError(
            f"run {run}: the history keeps {len(runs)} run(s) (1..{len(runs)}, or -1 for the last)"
        )
    return index


def _metric_specs(spec: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    analysis = mapping(spec.get("analysis") or spec.get("canaryAnalysis"))
    return {string(m.get("name")): m for m in records(analysis.get("metrics"))}


# --------------------------------------------------------------------------- building


@dataclass(frozen=True, slots=True)
class _Run:
    """The chosen run, read: its raw record, its ticks' times and its window."""

    record: Mapping[str, Any]
    index: int
    newest: bool
    times: list[datetime]
    started: datetime | None
    ended: datetime | None
    following: datetime | None  # when the next run started
    preceding: datetime | None = None  # when the run before it ended

    @property
    def first(self) -> datetime | None:
        return min([*self.times, *([self.started] if self.started else [])], default=None)

    def window(self) -> tuple[float, float | None] | None:
        """The Events of the run: from a little before it started (the new revision is
        detected an interval before the first analysis), but after the run before it ended,
        until the next run started."""
        first = self.first
        if first is None:
            return None
        gap = (self.times[1] - self.times[0]).total_seconds() if len(self.times) > 1 else 60.0
        low = first.timestamp() - max(gap, 60.0) * 1.5
        if self.preceding is not None:  # Event times are whole seconds: its end is its own
            low = max(low, self.preceding.timestamp() + 1.0)
        if self.following is not None:
            return low, self.following.timestamp()
        return low, (self.ended.timestamp() + 3600.0 if self.ended is not None else None)


def _read_run(history: Sequence[Mapping[str, Any]], index: int) -> _Run:
    record = history[index]
    raw_ticks = records(record.get("ticks"))
    following = (
        parse_time(string(history[index + 1].get("started"))) if index + 1 < len(history) else None
    )
    preceding = parse_time(string(history[index - 1].get("ended"))) if index > 0 else None
    return _Run(
        record=record,
        index=index,
        newest=index == len(history) - 1,
        times=[t for t in (parse_time(string(r.get("time"))) for r in raw_ticks) if t],
        started=parse_time(string(record.get("started"))),
        ended=parse_time(string(record.get("ended"))),
        following=following,
        preceding=preceding,
    )


_Decision = tuple[datetime, Event, str, str]  # when, the Event, kind, label


def _decisions(run: _Run | None, events: Sequence[Event]) -> list[_Decision]:
    """The decisions of the run's window, each message once (a gate asked on every tick is
    one decision), and the run's end when its Event has expired."""
    window = run.window() if run is not None else None
    if run is None or window is None:
        return []
    low, high = window
    found: list[_Decision] = []
    seen: set[str] = set()
    for event in events:
        decision = _decision(event.message)
        if decision is None or event.message in seen:
            continue
        # A repeated Event is one object (count, first and last time): a message that came
        # again in a later run ("New revision detected") counts there at its last time.
        times = [parse_time(event.first_time), parse_time(event.time)]
        at = next(
            (
                t
                for t in times
                if t is not None and t.timestamp() >= low and (high is None or t.timestamp() < high)
            ),
            None,
        )
        if at is None:
            continue
        seen.add(event.message)
        found.append((at, event, *decision))
    result = string(run.record.get("result"))
    if run.ended is not None and result in ("Succeeded", "Failed"):
        wanted = PROMOTION if result == "Succeeded" else ROLLBACK
        if not any(kind == wanted for _, _, kind, _ in found):
            reason = string(run.record.get("reason"))
            message = f"Run {result}{': ' + reason if reason else ''}"
            ended = string(run.record.get("ended"))
            label = "promoted" if result == "Succeeded" else "rolled back"
            found.append((run.ended, Event(ended, ended, "Normal", "", message, 1), wanted, label))
    return sorted(found, key=lambda d: d[0])


def _ticks(raw_ticks: Sequence[Mapping[str, Any]], offset: _Offset) -> list[Tick]:
    """The run's ticks, the failed checks counted along."""
    ticks: list[Tick] = []
    counted = 0
    for raw in raw_ticks:
        verdicts = tuple(_verdict(v) for v in records(raw.get("verdicts")))
        binding = [v for v in verdicts if not v.advisory and v.kind != WARMUP]
        failed = any(v.outcome in FAILING for v in binding)
        counted += 1 if failed else 0
        held = not failed and any(v.holds for v in binding)
        time = string(raw.get("time"))
        ticks.append(
            Tick(
                time=time,
                offset=offset(parse_time(time)),
                weight=count(raw.get("weight")) or 0,
                verdicts=verdicts,
                failed=failed,
                failed_checks=counted,
                held=held,
            )
        )
    return ticks


class _Offset:
    """Seconds since the report's start."""

    def __init__(self, start: datetime | None) -> None:
        self.base = start.timestamp() if start is not None else 0.0

    def __call__(self, at: datetime | None) -> float:
        return at.timestamp() - self.base if at is not None else 0.0


def _bounds_of(
    name: str, spec: Mapping[str, Any], text: str
) -> tuple[float | None, float | None, str]:
    """A metric's pass range and unit: the spec's thresholdRange, else the judge's text."""
    low, high, unit = _bounds(text)
    rng = mapping(spec.get("thresholdRange"))
    if rng:
        low, high = number(rng.get("min")), number(rng.get("max"))
    elif low is None and high is None and (bound := number(spec.get("threshold"))) is not None:
        # Flagger's deprecated single bound: a minimum for the success rate, else a maximum
        low, high = (bound, None) if name == "request-success-rate" else (None, bound)
    return low, high, BUILTIN_UNITS.get(name, unit)


def _series(
    name: str, spec: Mapping[str, Any], latest: Mapping[str, Any], ticks: Sequence[Tick]
) -> MetricSeries:
    points = tuple(
        MetricPoint(t.time, t.offset, v) for t in ticks if (v := t.verdict(name)) is not None
    )
    text = string(latest.get("threshold"))
    low, high, unit = _bounds_of(name, spec, text)
    return MetricSeries(
        name=name,
        unit=unit,
        low=low,
        high=high,
        threshold=text or _threshold_text(low, high, unit),
        compare="compare" in spec or any(p.verdict.primary_value is not None for p in points),
        advisory=spec.get("dryRun") is True or any(p.verdict.advisory for p in points),
        points=points,
        last_outcome=string(latest.get("outcome")),
        last_summary=string(latest.get("summary")),
        comparison=_comparison(mapping(latest.get("details"))) if latest else None,
    )


def _metrics(
    spec: Mapping[str, Any], status: Mapping[str, Any], ticks: Sequence[Tick], newest: bool
) -> tuple[MetricSeries, ...]:
    """The run's metrics, in the order of the spec, then any others its ticks name; a metric
    of the spec the run never judged is left out. ``status.analysis`` (the last verdicts in
    full) belongs to the newest run only."""
    specs = _metric_specs(spec)
    last = {string(m.get("name")): m for m in records(status.get("analysis"))} if newest else {}
    names = list(specs)
    for tick in ticks:
        names += [v.name for v in tick.verdicts if v.name not in names]
    judged = {v.name for t in ticks for v in t.verdicts}
    return tuple(
        _series(name, specs.get(name, {}), last.get(name, {}), ticks)
        for name in names
        if name in judged or not ticks
    )


def _summaries(history: Sequence[Mapping[str, Any]]) -> tuple[RunSummary, ...]:
    return tuple(
        RunSummary(
            number=i + 1,
            revision=string(r.get("revision")),
            started=string(r.get("started")),
            ended=string(r.get("ended")),
            result=string(r.get("result")),
            reason=string(r.get("reason")),
            ticks=len(records(r.get("ticks"))),
        )
        for i, r in enumerate(history)
    )


def _measured(entry: MeasuredInput, offset: _Offset) -> Measured:
    canary, primary, step = entry

    def points(side: Sequence[tuple[datetime, float]]) -> tuple[MeasuredPoint, ...]:
        return tuple(
            MeasuredPoint(_iso(at), round(offset(at), 3), value)
            for at, value in side
            if math.isfinite(value)
        )

    return Measured(canary=points(canary), primary=points(primary), step=step)


def _with_measured(
    metrics: Sequence[MetricSeries], measured: Mapping[str, MeasuredInput], offset: _Offset
) -> tuple[MetricSeries, ...]:
    return tuple(
        replace(m, measured=_measured(measured[m.name], offset)) if m.name in measured else m
        for m in metrics
    )


def build_report(
    canary: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    *,
    run: int | None = None,
    measured: Mapping[str, MeasuredInput] | None = None,
) -> DecisionReport:
    """The report of one run of ``canary`` (``run``: 1 the oldest kept, -1 the newest);
    ``measured``: the metric series read from the metrics server, per metric name."""
    meta, spec, status = (mapping(canary.get(k)) for k in ("metadata", "spec", "status"))
    analysis_spec = mapping(spec.get("analysis") or spec.get("canaryAnalysis"))
    history = records(status.get("analysisHistory"))
    index = _choose(history, run)
    chosen = _read_run(history, index) if index is not None else None
    all_events = sorted((_event(e) for e in events), key=lambda e: (e.first_time, e.time))
    decisions = _decisions(chosen, all_events)
    moments = [*(chosen.times if chosen else []), *(at for at, *_ in decisions)]
    if chosen is not None and chosen.started is not None:
        moments.append(chosen.started)
    if chosen is not None and chosen.ended is not None:
        moments.append(chosen.ended)
    start, end = min(moments, default=None), max(moments, default=None)
    offset = _Offset(start)
    ticks = _ticks(records(chosen.record.get("ticks")) if chosen else [], offset)
    summaries = _summaries(history)
    revert = _revert(mapping(status.get("gitRevert")))
    revision = string(chosen.record.get("revision")) if chosen else ""
    threshold = count(analysis_spec.get("threshold")) or 1
    return DecisionReport(
        name=string(meta.get("name")),
        namespace=string(meta.get("namespace")),
        phase=string(status.get("phase")),
        canary_weight=count(status.get("canaryWeight")) or 0,
        failed_checks=count(status.get("failedChecks")) or 0,
        threshold=max(threshold, 1),
        max_weight=_max_weight(analysis_spec),
        current_revision=string(status.get("currentRevision")),
        last_good_revision=string(status.get("lastGoodRevision")),
        message=string(status.get("message")),
        last_transition_time=string(status.get("lastTransitionTime")),
        runs=summaries,
        run=summaries[index] if index is not None else None,
        start=_iso(start),
        end=_iso(end),
        duration=offset(end),
        ticks=tuple(ticks),
        metrics=_with_measured(
            _metrics(spec, status, ticks, chosen is not None and chosen.newest),
            measured or {},
            offset,
        ),
        markers=tuple(_marker(d, offset) for d in decisions),
        events=tuple(all_events),
        revert=revert if revert and revert.bad_revision in ("", revision) else None,
        conditions=_conditions(status),
    )


def _max_weight(analysis: Mapping[str, Any]) -> int:
    """The weight the steps stop at, as the controller computes it (`AnalysisSpec.max_weight`:
    the last ``stepWeights`` entry, else ``maxWeight``); 0 (no line) when neither is set."""
    raw = analysis.get("stepWeights")
    steps = tuple(w for w in map(count, raw if isinstance(raw, list) else []) if w is not None)
    declared = count(analysis.get("maxWeight")) or 0
    if not steps and declared <= 0:
        return 0
    # imported here: `canary` commands load this module, and the model is heavy to import
    # for them (tests/cli/test_register.py)
    from canary.model.canary import AnalysisSpec

    return AnalysisSpec(max_weight_field=declared, step_weights=steps).max_weight


def _marker(decision: _Decision, offset: _Offset) -> Marker:
    at, event, kind, label = decision
    return Marker(
        time=at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        offset=offset(at),
        kind=kind,
        label=label,
        message=event.message,
        warning=event.type == "Warning" or kind == ROLLBACK,
    )


def _conditions(status: Mapping[str, Any]) -> tuple[Mapping[str, str], ...]:
    keys = ("type", "status", "reason", "message", "lastTransitionTime")
    return tuple({k: string(c.get(k)) for k in keys} for c in records(status.get("conditions")))


def _iso(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else ""


def _threshold_text(low: float | None, high: float | None, unit: str) -> str:
    bounds = []
    if low is not None:
        bounds.append(f">= {low:g}{unit}")
    if high is not None:
        bounds.append(f"<= {high:g}{unit}")
    return " and ".join(bounds)
