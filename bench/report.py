"""Tallies, targets and tables of the decision-quality benchmark (text, Markdown, JSON).

A *cell* is one (class, row, effect): its releases' decisions under both
policies, and for bad releases the evidence a perfect test could collect.  The
targets are the issue's, checked per class for the statistical judge.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.evidence import DETECTABLE_CATCH, DETECTABLE_NATS, REJECT_NATS, Evidence
from bench.simulator import Effect, Outcomes, Result
from bench.worlds import WorldClass

__all__ = ["Cell", "Tally", "Target", "class_targets", "render_class", "render_targets"]

MAX_FALSE_ROLLBACKS = 0.005
MAX_MISSED = 0.02


@dataclass
class Tally:
    """One policy's decisions on the releases of a cell."""

    n: int = 0
    promoted: int = 0
    rolled_back: int = 0
    held: int = 0
    stalled: int = 0
    rollback_minutes: list[int] = field(default_factory=list)
    promote_minutes: list[int] = field(default_factory=list)

    def add(self, r: Result) -> None:
        self.n += 1
        if r.rolled_back:
            self.rolled_back += 1
            self.rollback_minutes.append(r.minutes)
        elif r.promoted:
            self.promoted += 1
            self.promote_minutes.append(r.minutes)
        else:
            self.held += 1
            self.stalled += r.reason == "stalled"

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "promoted": self.promoted,
            "rolledBack": self.rolled_back,
            "held": self.held,
            "stalled": self.stalled,
            "medianMinutesToRollBack": _json_num(median(self.rollback_minutes)),
            "medianMinutesToPromote": _json_num(median(self.promote_minutes)),
        }


@dataclass
class Cell:
    row: str
    effect: Effect
    threshold: Tally = field(default_factory=Tally)
    compare: Tally = field(default_factory=Tally)
    evidence: Evidence | None = None  # bad releases: the evidence of its releases (cell_evidence)
    accidental: int = 0  # threshold rollbacks of bad releases whose good twin it rolls back too
    rerun: bool = False  # the releases of another row, the judge told more (Row.rerun_of)

    def add(self, outcomes: Outcomes) -> None:
        self.threshold.add(outcomes.threshold)
        self.compare.add(outcomes.compare)
        twin = outcomes.threshold_twin
        if twin is not None and twin.rolled_back and outcomes.threshold.rolled_back:
            self.accidental += 1

    @property
    def good(self) -> bool:
        return self.effect.name == "good"

    def wrong(self, tally: Tally) -> int:
        """False rollbacks (good releases) or missed regressions (bad ones)."""
        return tally.rolled_back if self.good else tally.promoted

    @property
    def detectable(self) -> bool:
        return self.evidence is not None and self.evidence.detectable


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else math.nan


def cell_evidence(evs: Sequence[Evidence]) -> Evidence:
    """The median release's figures, and the share of all the releases a perfect test catches.

    A release whose evidence never reaches the rejection level counts as the slowest.
    """
    firsts = sorted(math.inf if e.first_minute is None else e.first_minute for e in evs)
    first = firsts[(len(firsts) - 1) // 2]  # the lower median: a minute that was measured
    return Evidence(
        minutes=evs[0].minutes,
        canary_requests=median([e.canary_requests for e in evs]),
        null_events=median([e.null_events for e in evs]),
        extra_events=median([e.extra_events for e in evs]),
        nats=median([e.nats for e in evs]),
        events=evs[0].events,
        first_minute=None if math.isinf(first) else int(first),
        catch=statistics.fmean(e.catch for e in evs),
    )


def _json_num(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 3)


def _pct(k: int, n: int) -> str:
    return f"{100.0 * k / n:.1f}%" if n else "n/a"


def _min(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1f}"


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    status: str  # "MET", "MISSED", "not detectable", "out of reach", "n/a" or "info"
    detail: str


def _own(cells: Sequence[Cell]) -> list[Cell]:
    """The cells whose releases are their own: a class's totals count each release once, and
    a rerun row (the same releases, the judge told more) is reported beside them."""
    return [c for c in cells if not c.rerun]


def _false_rollbacks(cells: Sequence[Cell]) -> Target:
    good = [c for c in _own(cells) if c.good]
    k = sum(c.compare.rolled_back for c in good)
    n = sum(c.compare.n for c in good)
    worst = max(good, key=lambda c: c.compare.rolled_back / max(c.compare.n, 1))
    ok = n > 0 and k / n <= MAX_FALSE_ROLLBACKS
    detail = (
        f"{_pct(k, n)} ({k} of {n}); worst row {worst.row}: "
        f"{_pct(worst.compare.rolled_back, worst.compare.n)}"
    )
    reruns = [c for c in cells if c.good and c.rerun]
    if reruns:
        k_r = sum(c.compare.rolled_back for c in reruns)
        n_r = sum(c.compare.n for c in reruns)
        detail += f"; the same releases rerun ({', '.join(c.row for c in reruns)}): "
        detail += f"{_pct(k_r, n_r)} ({k_r} of {n_r})"
    return Target("false rollbacks of good releases <= 0.5%", "MET" if ok else "MISSED", detail)


def _missed(cells: Sequence[Cell]) -> Target:
    label = "missed regressions <= 2% at 2x errors / +25% p99, where detectable"
    targets = [c for c in cells if c.effect.target]
    if not targets:
        return Target(label, "n/a", "no such regression in this class")
    shown = [c for c in _own(targets) if c.detectable]
    hidden = [c for c in targets if not c.detectable]
    note = ""
    if hidden:
        note = "; not detectable: " + ", ".join(
            f"{c.row} {c.effect.name} ({_perfect(c)})" for c in hidden
        )
    reruns = [c for c in targets if c.rerun and c.detectable]
    if reruns:
        note += "; the same releases rerun: " + ", ".join(
            f"{c.row} {c.effect.name} {_pct(c.compare.promoted, c.compare.n)}" for c in reruns
        )
    if not shown:
        return Target(label, "not detectable", note.removeprefix("; not detectable: "))
    worst = max(shown, key=lambda c: c.compare.promoted / max(c.compare.n, 1))
    rate = worst.compare.promoted / max(worst.compare.n, 1)
    detail = (
        f"worst {worst.row} {worst.effect.name}: {_pct(worst.compare.promoted, worst.compare.n)}"
        f" (threshold {_pct(worst.threshold.promoted, worst.threshold.n)}){note}"
    )
    return Target(label, "MET" if rate <= MAX_MISSED else "MISSED", detail)


def _perfect(c: Cell) -> str:
    e = c.evidence
    if e is None:
        return "no evidence"
    return f"{e.nats:.1f} nats, a perfect test catches {100 * e.catch:.1f}%"


def _never_worse(cells: Sequence[Cell], good: bool) -> Target:
    what = "false rollbacks" if good else "missed regressions"
    label = f"never more {what} than the threshold judge (row by row"
    label += ")" if good else ", detectable rows, its catches by accident aside)"
    rows = [c for c in cells if c.good == good and (good or c.detectable)]
    if not rows:
        return Target(label, "not detectable", "no detectable regression in this class")
    worse = [c for c in rows if c.wrong(c.compare) > c.wrong(c.threshold) + c.accidental]
    detail = "; ".join(
        f"{c.row} {c.effect.name}: {_pct(c.wrong(c.compare), c.compare.n)} vs "
        f"{_pct(c.wrong(c.threshold), c.threshold.n)}"
        + (f" (+{_pct(c.accidental, c.threshold.n)} by accident)" if c.accidental else "")
        for c in worse
    )
    return Target(label, "MISSED" if worse else "MET", detail or f"{len(rows)} rows")


def _time_to_roll_back(cells: Sequence[Cell]) -> Target:
    """Met when the compare judge's median is at most half the threshold judge's.

    Where a perfect test could not roll back that soon either (the first minute its
    expected evidence reaches the rejection level, over the same rollbacks), the
    target is out of reach, and says by how much.
    """
    label = "median time to roll back <= half the threshold judge's (detectable rows)"
    rows = [c for c in _own(cells) if not c.good and c.detectable]
    if not rows:
        return Target(label, "not detectable", "no detectable regression in this class")
    thr = median([m for c in rows for m in c.threshold.rollback_minutes])
    cmp = median([m for c in rows for m in c.compare.rollback_minutes])
    detail = f"{_min(cmp)} vs {_min(thr)} min"
    if not math.isnan(cmp) and not math.isnan(thr) and cmp <= thr / 2:
        return Target(label, "MET", detail)
    limit = median(
        [
            float(c.evidence.first_minute)
            for c in rows
            if c.evidence is not None and c.evidence.first_minute is not None
            for _ in range(c.compare.rolled_back)
        ]
    )
    detail += f"; a perfect test: {_min(limit)} min"
    if not math.isnan(limit) and not math.isnan(thr) and limit > thr / 2:
        return Target(label, "out of reach", detail)
    return Target(label, "MISSED", detail)


def _time_to_promote(cells: Sequence[Cell]) -> Target:
    good = [c for c in _own(cells) if c.good]
    thr = median([m for c in good for m in c.threshold.promote_minutes])
    cmp = median([m for c in good for m in c.compare.promote_minutes])
    held = sum(c.compare.held for c in good)
    n = sum(c.compare.n for c in good)
    growth = "" if math.isnan(cmp - thr) else f" ({cmp - thr:+.1f} min)"
    return Target(
        "time to promote a good release (not a target)",
        "info",
        f"{_min(cmp)} vs {_min(thr)} min{growth}; {_pct(held, n)} of good releases held",
    )


def class_targets(cells: Sequence[Cell]) -> list[Target]:
    return [
        _false_rollbacks(cells),
        _missed(cells),
        _never_worse(cells, good=True),
        _never_worse(cells, good=False),
        _time_to_roll_back(cells),
        _time_to_promote(cells),
    ]


# --------------------------------------------------------------------------- tables


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> list[str]:
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        return lines + ["| " + " | ".join(r) + " |" for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first = f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}"
        rest = "  ".join(f"{c:>{w}}" for c, w in zip(cells[2:], widths[2:], strict=True))
        return f"  {first}  {rest}".rstrip()

    return [line(headers), *(line(r) for r in rows)]


DECISION_HEADERS = (
    "world",
    "release",
    "n",
    "thr FR",
    "thr missed",
    "thr by accident",
    "thr held",
    "cmp FR",
    "cmp missed",
    "cmp held",
    "roll back min thr/cmp",
    "promote min thr/cmp",
)


def _decision_row(c: Cell) -> list[str]:
    t, s = c.threshold, c.compare
    fr = (_pct(t.rolled_back, t.n), _pct(s.rolled_back, s.n)) if c.good else ("·", "·")
    missed = ("·", "·") if c.good else (_pct(t.promoted, t.n), _pct(s.promoted, s.n))
    accident = "·" if c.good else _pct(c.accidental, t.n)
    held_s = _pct(s.held, s.n) + (f" ({s.stalled} stalled)" if s.stalled else "")
    return [
        c.row,
        c.effect.label,
        str(t.n),
        fr[0],
        missed[0],
        accident,
        _pct(t.held, t.n),
        fr[1],
        missed[1],
        held_s,
        f"{_min(median(t.rollback_minutes))} / {_min(median(s.rollback_minutes))}",
        f"{_min(median(t.promote_minutes))} / {_min(median(s.promote_minutes))}",
    ]


EVIDENCE_HEADERS = (
    "world",
    "release",
    "minutes",
    "canary requests",
    "events if good",
    "extra events",
    "nats",
    "a perfect test catches",
    "detectable",
    "perfect test rolls back (min)",
)


def _evidence_row(c: Cell) -> list[str]:
    e = c.evidence
    assert e is not None
    return [
        c.row,
        c.effect.label,
        str(e.minutes),
        f"{e.canary_requests:,.0f}",
        f"{e.null_events:,.1f} {e.events}",
        f"{e.extra_events:,.1f}",
        f"{e.nats:,.1f}",
        f"{100 * e.catch:.1f}%",
        "yes" if e.detectable else "no",
        "-" if e.first_minute is None else str(e.first_minute),
    ]


def render_class(klass: WorldClass, cells: Sequence[Cell], markdown: bool) -> list[str]:
    schedules = sorted({row.world.schedule.name for row in klass.rows})
    lines = [
        f"### {klass.title} (`--class {klass.name}`)" if markdown else klass.title,
        "",
        f"{'' if markdown else '  '}World: {klass.model}; schedule: {', '.join(schedules)}.",
        "",
        *table(DECISION_HEADERS, [_decision_row(c) for c in cells], markdown),
        "",
        f"{'' if markdown else '  '}Evidence a perfect test could collect about each regression "
        f"over the schedule and the last step's hold (the median release's figures; a perfect "
        f"test catches a release whose expected evidence is E nats with probability "
        f"Phi((E - {REJECT_NATS:.1f}) / sqrt(2E)), shown as the mean over the cell's releases, "
        f"each with its own traffic; detectable when that is at least "
        f"{100 * DETECTABLE_CATCH:g}%, about {DETECTABLE_NATS:.1f} nats for one release; a "
        f"perfect test rolls back in the first minute the expected evidence reaches the "
        f"rejection level, {REJECT_NATS:.1f} nats):",
        "",
        *table(EVIDENCE_HEADERS, [_evidence_row(c) for c in cells if not c.good], markdown),
        "",
    ]
    return lines


def render_targets(
    classes: Sequence[WorldClass], targets: dict[str, list[Target]], markdown: bool
) -> list[str]:
    lines = ["### Targets (compare judge)" if markdown else "Targets (compare judge)", ""]
    for klass in classes:
        lines.append(f"**{klass.title}**" if markdown else f"  {klass.title}")
        for t in targets[klass.name]:
            text = f"{t.status}: {t.label}: {t.detail}"
            lines.append(f"- {text}" if markdown else f"    {t.status:<14} {t.label}: {t.detail}")
        lines.append("")
    return lines
