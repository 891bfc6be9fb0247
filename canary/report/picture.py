"""The decision picture: one self-contained SVG of a run, readable at a glance.

From top to bottom, on one shared time axis (UTC, minutes since the run started): the
decisions (phase transitions, gates, promotion, rollback, Git revert) as labelled vertical
markers through every panel; the traffic weights of the primary and the canary (step lines,
percent); one panel per metric with its value per tick against its threshold range (a
shaded band: the values that pass) or, for compare metrics, the canary against the primary
(two lines) with the canary's requests per tick and the Inconclusive holds hatched, and
behind them, thin and faint, the series the metrics server measured when the command read
them (``series-line-canary``, ``series-line-primary``); the
failed checks accumulating toward ``analysis.threshold``; then a caption with the judge's
last evidence and the Git revert. Each verdict is drawn in a colour *and* a shape (pass: a
filled circle, fail: a cross, inconclusive: a triangle, stalled: a square, warm-up: a
diamond, advisory: a hollow circle), so the picture does not depend on colour alone; each
mark carries ``class="verdict verdict-KIND"`` and a ``<title>`` for hover text.

Hand-written SVG, not a chart library. Measured (wheels from PyPI, December 2026):
matplotlib 3.11 is a 9.9 MB wheel (25 MB installed) and pulls numpy, pillow, fonttools,
kiwisolver, contourpy (42 MB of wheels in all); pygal 3.1 is small (133 KB wheel, 400 KB
installed) but its SVG loads its tooltip script from a CDN unless disabled, it has no
per-point shapes, shaded threshold bands or vertical decision markers, and its output is
hard to assert on. This module is a few hundred lines with no dependency: the picture is
exactly what the issue asks for, its elements are named for tests and for the dashboard's
stylesheet, and the CLI gains no weight (the operator image none at all: canary.controller
never imports canary.report). Everything here is a pure function of the report.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape as _escape

from canary.commands.stored import printable
from canary.report.model import (
    ADVISORY,
    FAIL,
    INCONCLUSIVE,
    PASS,
    STALLED,
    UNKNOWN,
    WARMUP,
    DecisionReport,
    MeasuredPoint,
    MetricSeries,
    Tick,
    parse_time,
)

__all__ = ["COLOURS", "MARKER_COLOURS", "decision_svg", "nice_ticks"]

COLOURS = {
    PASS: "#1a7f37",
    FAIL: "#cf222e",
    INCONCLUSIVE: "#bf8700",
    STALLED: "#9a6700",
    WARMUP: "#0969da",
    ADVISORY: "#6e7781",
    UNKNOWN: "#8250df",
}
LABELS = {
    PASS: "pass",
    FAIL: "fail / no data / error",
    INCONCLUSIVE: "inconclusive",
    STALLED: "stalled",
    WARMUP: "warm-up",
    ADVISORY: "advisory (not acted on)",
    UNKNOWN: "unknown outcome",
}
MARKER_COLOURS = {
    "transition": "#57606a",
    "gate": "#8250df",
    "promotion": "#1a7f37",
    "rollback": "#cf222e",
    "revert": "#bc4c00",
}
CANARY_COLOUR = "#d4a72c"
CANARY_LINE = "#bc4c00"
PRIMARY_LINE = "#0969da"
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif"

LEFT, RIGHT = 78, 24  # plot margins (the y-axis labels on the left)
WEIGHT_H, METRIC_H, CHECKS_H = 110, 120, 80
GAP = 34  # between panels: room for each panel's title
LABEL_ROW = 15


def esc(text: object) -> str:
    """Text and attribute values, escaped for XML (quotes too). The characters XML forbids
    (control characters, U+FFFE: a status or an Event may hold them) are dropped: one of
    them makes the whole picture unreadable (``rsvg-convert`` refuses it, a browser shows an
    error)."""
    return _escape(printable(str(text)), {'"': "&quot;", "'": "&#39;"})


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:.4g}"
    return f"{text}{unit}" if unit in ("%", "") else f"{text} {unit}"


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round axis values covering ``low..high`` (about ``count`` of them); ``[0.0]`` when
    that range is not finite (nor its span)."""
    if not math.isfinite(low) or not math.isfinite(high) or not math.isfinite(high - low):
        return [0.0]
    if high <= low:
        high = low + (abs(low) * 0.1 or 1.0)
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks: list[float] = []
    value = first
    while (not ticks or ticks[-1] < high - step * 1e-9) and len(ticks) < 20:
        ticks.append(round(value, 10))
        value += step
    return ticks


_TIME_STEPS = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _time_ticks(duration: float) -> list[float]:
    step = next(
        (s for s in _TIME_STEPS if duration / s <= 8), 86400 * math.ceil(duration / 86400 / 8)
    )
    return [i * step for i in range(int(duration // step) + 1)]


def _elapsed(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"+{hours}:{minutes:02d}:{secs:02d}" if hours else f"+{minutes}:{secs:02d}"


@dataclass(frozen=True, slots=True)
class _Frame:
    """The shared time axis."""

    x0: float
    x1: float
    duration: float

    def x(self, offset: float) -> float:
        span = self.duration or 1.0
        return round(self.x0 + (self.x1 - self.x0) * min(max(offset, 0.0), span) / span, 2)


@dataclass(frozen=True, slots=True)
class _Scale:
    top: float
    bottom: float
    low: float
    high: float

    def y(self, value: float) -> float:
        span = (self.high - self.low) or 1.0
        clamped = min(max(value, self.low), self.high)
        return round(self.bottom - (self.bottom - self.top) * (clamped - self.low) / span, 2)


def _shape(kind: str, x: float, y: float, title: str, *, legend: bool = False) -> str:
    """A verdict's mark; ``legend``: the key's sample (not a verdict of the run)."""
    colour = COLOURS.get(kind, COLOURS[INCONCLUSIVE])
    cls = f"legend-mark legend-{esc(kind)}" if legend else f"verdict verdict-{esc(kind)}"
    data = "data-legend" if legend else "data-verdict"
    head = f'<g class="{cls}" {data}="{esc(kind)}"><title>{esc(title)}</title>'
    r = 5.0
    if kind == PASS:
        body = f'<circle cx="{x}" cy="{y}" r="{r}" fill="{colour}" stroke="#fff"/>'
    elif kind == FAIL:
        body = (
            f'<path d="M{x - r},{y - r}L{x + r},{y + r}M{x - r},{y + r}L{x + r},{y - r}" '
            f'stroke="{colour}" stroke-width="3" fill="{colour}"/>'
        )
    elif kind == INCONCLUSIVE:
        body = (
            f'<path d="M{x},{y - r - 1}L{x + r + 1},{y + r}L{x - r - 1},{y + r}Z" '
            f'fill="{colour}" stroke="#fff"/>'
        )
    elif kind == STALLED:
        body = f'<rect x="{x - r}" y="{y - r}" width="{2 * r}" height="{2 * r}" fill="{colour}"/>'
    elif kind == WARMUP:
        body = (
            f'<path d="M{x},{y - r - 1}L{x + r + 1},{y}L{x},{y + r + 1}L{x - r - 1},{y}Z" '
            f'fill="{colour}" stroke="#fff"/>'
        )
    elif kind == UNKNOWN:  # a hollow square: neither a pass, a fail nor a hold
        body = (
            f'<rect x="{x - r}" y="{y - r}" width="{2 * r}" height="{2 * r}" fill="#fff" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
    else:  # advisory
        body = f'<circle cx="{x}" cy="{y}" r="{r}" fill="#fff" stroke="{colour}" stroke-width="2"/>'
    return head + body + "</g>"


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: int = 11,
    anchor: str = "start",
    cls: str = "",
    fill: str = "#24292f",
    weight: str = "normal",
    rotate: bool = False,
) -> str:
    klass = f' class="{esc(cls)}"' if cls else ""
    transform = f' transform="rotate(-90 {x} {y})"' if rotate else ""
    return (
        f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
        f'font-weight="{weight}"{klass}{transform}>{esc(text)}</text>'
    )


def _polyline(
    points: Sequence[tuple[float, float]],
    colour: str,
    *,
    dash: str = "",
    cls: str = "",
    width: float = 2,
) -> str:
    if len(points) < 2:
        return ""
    path = " ".join(f"{x},{y}" for x, y in points)
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    klass = f' class="{esc(cls)}"' if cls else ""
    return f'<polyline{klass} points="{path}" fill="none" stroke="{colour}" stroke-width="{width}"{dashes}/>'


def _y_axis(
    scale: _Scale, frame: _Frame, values: Iterable[float], label: str, unit: str
) -> list[str]:
    parts = [f'<g class="y-axis" data-label="{esc(label)}">']
    for value in values:
        y = scale.y(value)
        parts.append(
            f'<line x1="{frame.x0}" y1="{y}" x2="{frame.x1}" y2="{y}" stroke="#eaeef2"/>'
            f'<text class="y-tick" x="{frame.x0 - 6}" y="{y + 4}" font-size="10" '
            f'text-anchor="end" fill="#57606a" data-value="{value:g}">{esc(_num(value, unit if unit == "%" else ""))}</text>'
        )
    middle = (scale.top + scale.bottom) / 2
    parts.append(_text(14, middle, label, size=11, anchor="middle", cls="axis-label", rotate=True))
    parts.append("</g>")
    return parts


def _panel_frame(frame: _Frame, top: float, bottom: float, title: str, cls: str) -> list[str]:
    return [
        f'<rect class="panel {esc(cls)}" x="{frame.x0}" y="{top}" width="{frame.x1 - frame.x0}" '
        f'height="{bottom - top}" fill="#fff" stroke="#d0d7de"/>',
        _text(frame.x0, top - 7, title, size=12, weight="600", cls="panel-title"),
    ]


def _tick_gap(ticks: Sequence[Tick]) -> float:
    gaps = sorted(b.offset - a.offset for a, b in itertools.pairwise(ticks) if b.offset > a.offset)
    return gaps[len(gaps) // 2] if gaps else 60.0


def _weights(report: DecisionReport, frame: _Frame, top: float) -> list[str]:
    bottom = top + WEIGHT_H
    scale = _Scale(top + 4, bottom - 2, 0.0, 100.0)
    parts = [
        '<g class="weights">',
        *_panel_frame(frame, top, bottom, "Traffic weight (%)", "panel-weights"),
    ]
    parts += _y_axis(scale, frame, (0, 25, 50, 75, 100), "weight (%)", "%")
    # Each tick judged the weight that served since the previous tick: a step line ending there.
    gap = _tick_gap(report.ticks)
    canary: list[tuple[float, float]] = []
    previous = max(report.ticks[0].offset - gap, 0.0) if report.ticks else 0.0
    for tick in report.ticks:
        canary += [
            (frame.x(previous), scale.y(tick.weight)),
            (frame.x(tick.offset), scale.y(tick.weight)),
        ]
        previous = tick.offset
    if report.ticks and report.run is not None and report.run.ended:
        ended = _offset(report, report.run.ended)
        last = report.ticks[-1].weight
        canary += [(frame.x(ended), scale.y(last)), (frame.x(ended), scale.y(0))]
        if ended < report.duration:
            canary.append((frame.x(report.duration), scale.y(0)))
    primary = [(x, round(scale.y(100 - _unscale(scale, y)), 2)) for x, y in canary]
    parts.append(_polyline(primary, PRIMARY_LINE, dash="6 3", cls="weight-primary"))
    parts.append(_polyline(canary, CANARY_LINE, cls="weight-canary"))
    for tick in report.ticks:
        parts.append(
            f'<circle class="weight-point" cx="{frame.x(tick.offset)}" cy="{scale.y(tick.weight)}" r="2.5" '
            f'fill="{CANARY_LINE}"><title>{esc(f"{tick.time}: canary {tick.weight}%, primary {100 - tick.weight}%")}</title></circle>'
        )
    if report.max_weight:
        y = scale.y(report.max_weight)
        parts.append(
            f'<line class="max-weight" x1="{frame.x0}" y1="{y}" x2="{frame.x1}" y2="{y}" stroke="#8c959f" stroke-dasharray="2 3"/>'
        )
        parts.append(
            _text(
                frame.x1 - 4,
                y - 3,
                f"maxWeight {report.max_weight}%",
                size=9,
                anchor="end",
                fill="#57606a",
            )
        )
    parts += _legend(
        frame.x1, top - 7, (("primary", PRIMARY_LINE, "6 3"), ("canary", CANARY_LINE, ""))
    )
    parts.append("</g>")
    return parts


def _unscale(scale: _Scale, y: float) -> float:
    return scale.low + (scale.bottom - y) * (scale.high - scale.low) / (
        (scale.bottom - scale.top) or 1.0
    )


def _offset(report: DecisionReport, time: str) -> float:
    at, start = parse_time(time), parse_time(report.start)
    return (at - start).total_seconds() if at and start else 0.0


def _legend(right: float, y: float, items: Sequence[tuple[str, str, str]]) -> list[str]:
    parts, x = [], right
    for label, colour, dash in reversed(items):
        width = 7 * len(label) + 30
        x -= width
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<g class="legend-item"><line x1="{x}" y1="{y - 4}" x2="{x + 20}" y2="{y - 4}" stroke="{colour}" stroke-width="2"{dashes}/>'
            + _text(x + 24, y, label, size=10, fill="#57606a")
            + "</g>"
        )
    return parts


# The farthest a metric panel's scale reaches: padded, the span of -1e307..1e307 stays
# within the float range (that of a threshold of 1e308 would not, and collapse the axis).
_EDGE = 1e307


def _extent(values: Sequence[float]) -> tuple[float, float]:
    return (min(values), max(values)) if values else (0.0, 1.0)


def _drawable(low: float, high: float) -> bool:
    return abs(low) <= _EDGE and abs(high) <= _EDGE


def _metric_scale(
    metric: MetricSeries, top: float, bottom: float, duration: float
) -> tuple[_Scale, list[float]]:
    """The panel's scale: the values (both sides for compare metrics), the measured series
    within the time axis, and the bounds."""
    values = [p.verdict.value for p in metric.points if p.verdict.value is not None]
    if metric.compare:
        values += [
            p.verdict.primary_value for p in metric.points if p.verdict.primary_value is not None
        ]
    if metric.measured is not None:
        values += [
            p.value
            for p in (*metric.measured.canary, *metric.measured.primary)
            if 0.0 <= p.offset <= duration
        ]
    bounds = [b for b in (metric.low, metric.high) if b is not None and math.isfinite(b)]
    low, high = _extent(values + bounds)
    if not _drawable(low, high):  # a bound like 1e308: the values alone, the band fills it
        low, high = _extent(values)
    low, high = max(low, -_EDGE), min(high, _EDGE)  # values beyond sit on the edge
    pad = (high - low) * 0.15 or (abs(high) * 0.05 or 1.0)
    axis = nice_ticks(low - pad if low - pad >= 0 or low < 0 else 0.0, high + pad)
    return _Scale(top + 6, bottom - 6, axis[0], axis[-1]), axis


def _metric_title(metric: MetricSeries) -> str:
    if metric.compare:
        kind = "canary vs primary"
    else:
        kind = f"threshold {metric.threshold}" if metric.threshold else "no threshold"
    advisory = " · advisory (dryRun)" if metric.advisory else ""
    return f"{metric.name} ({metric.unit or 'value'}) · {kind}{advisory}"


def _band(metric: MetricSeries, scale: _Scale, frame: _Frame) -> list[str]:
    """The threshold range: a shaded band of the values that pass, its bounds dashed."""
    if metric.low is None and metric.high is None:
        return []
    y_top = scale.y(metric.high if metric.high is not None else scale.high)
    y_bottom = scale.y(metric.low if metric.low is not None else scale.low)
    low = "" if metric.low is None else f"{metric.low:g}"
    high = "" if metric.high is None else f"{metric.high:g}"
    parts = [
        f'<rect class="threshold-band" x="{frame.x0}" y="{y_top}" width="{frame.x1 - frame.x0}" '
        f'height="{round(y_bottom - y_top, 2)}" fill="#1a7f37" fill-opacity="0.09" '
        f'data-low="{low}" data-high="{high}">'
        f"<title>{esc(f'passes: {metric.threshold}')}</title></rect>"
    ]
    for bound in (b for b in (metric.low, metric.high) if b is not None):
        y = scale.y(bound)
        parts.append(
            f'<line class="threshold-line" x1="{frame.x0}" y1="{y}" x2="{frame.x1}" y2="{y}" '
            f'stroke="#1a7f37" stroke-dasharray="4 3" data-value="{bound:g}"/>'
        )
        parts.append(
            _text(
                frame.x1 - 4,
                y - 3,
                _num(bound, metric.unit),
                size=9,
                anchor="end",
                fill="#1a7f37",
                cls="threshold-label",
            )
        )
    return parts


def _holds(report: DecisionReport, metric: MetricSeries, frame: _Frame, top: float) -> list[str]:
    """Inconclusive holds, hatched: the ticks where the weight held for more data (the
    model's `Tick.held`), on the metrics whose verdicts held it (`TickVerdict.holds`; one
    that may advance stepped the weight up, or waited for another metric)."""
    half = min(max((frame.x(_tick_gap(report.ticks)) - frame.x(0)) * 0.4, 3.0), 14.0)
    held = {t.offset for t in report.ticks if t.held}
    return [
        f'<rect class="inconclusive-hold" x="{round(frame.x(p.offset) - half, 2)}" y="{top}" '
        f'width="{round(2 * half, 2)}" height="{METRIC_H}" fill="url(#cr-hatch)">'
        f"<title>{esc(f'{p.time}: inconclusive, holding for more data')}</title></rect>"
        for p in metric.points
        if p.offset in held and p.verdict.holds
    ]


def _segments(
    points: Sequence[MeasuredPoint], step: float, frame: _Frame
) -> list[list[MeasuredPoint]]:
    """The points within the time axis, split where the server had none (a gap of more
    than two steps)."""
    segments: list[list[MeasuredPoint]] = []
    last: float | None = None
    for point in points:
        if not 0.0 <= point.offset <= frame.duration:
            continue
        if last is None or point.offset - last > 2 * step:
            segments.append([])
        segments[-1].append(point)
        last = point.offset
    return segments


def _measured(metric: MetricSeries, scale: _Scale, frame: _Frame) -> list[str]:
    """The series the metrics server measured, thin and faint behind the verdict marks."""
    measured = metric.measured
    if measured is None:
        return []
    parts = ['<g class="measured">']
    for side, points, colour, dash in (
        ("primary", measured.primary, PRIMARY_LINE, ' stroke-dasharray="4 2"'),
        ("canary", measured.canary, CANARY_LINE, ""),
    ):
        for segment in _segments(points, measured.step, frame):
            path = " ".join(f"{frame.x(p.offset)},{scale.y(p.value)}" for p in segment)
            values = [p.value for p in segment]
            hover = (
                f"{side}, measured every {measured.step:g}s: {segment[0].time} to "
                f"{segment[-1].time}, {_num(min(values), metric.unit)} to "
                f"{_num(max(values), metric.unit)}"
            )
            parts.append(
                f'<polyline class="series-line series-line-{side}" data-points="{len(segment)}" '
                f'points="{path}" fill="none" stroke="{colour}" stroke-width="1" '
                f'stroke-opacity="0.55"{dash}><title>{esc(hover)}</title></polyline>'
            )
    parts.append("</g>")
    return parts


def _lines(metric: MetricSeries, scale: _Scale, frame: _Frame, top: float) -> list[str]:
    """The canary's values (and the primary's, for compare metrics) as lines."""
    parts = []
    if metric.compare or metric.measured is not None:
        primary = [
            (frame.x(p.offset), scale.y(p.verdict.primary_value))
            for p in metric.points
            if p.verdict.primary_value is not None
        ]
        parts.append(_polyline(primary, PRIMARY_LINE, dash="6 3", cls="series-primary"))
        suffix = "" if metric.compare else " (measured)"  # the per-tick line stays grey
        legend = (("primary" + suffix, PRIMARY_LINE, "6 3"), ("canary" + suffix, CANARY_LINE, ""))
        parts += _legend(frame.x1, top - 7, legend)
    canary = [
        (frame.x(p.offset), scale.y(p.verdict.value))
        for p in metric.points
        if p.verdict.value is not None
    ]
    colour = CANARY_LINE if metric.compare else "#57606a"
    parts.append(_polyline(canary, colour, cls="series-canary", width=1.5))
    return parts


def _marks(metric: MetricSeries, scale: _Scale, frame: _Frame) -> list[str]:
    """Each tick's verdict (no data: on the axis), and the canary's requests beneath."""
    parts = []
    unit = metric.unit
    for point in metric.points:
        v = point.verdict
        y = scale.bottom if v.value is None else scale.y(v.value)
        hover = f"{point.time} · {v.outcome}: {_num(v.value, unit)}"
        if v.primary_value is not None:
            hover += f" (primary {_num(v.primary_value, unit)})"
        if v.samples is not None:
            hover += f" · {v.samples:,} canary requests"
        parts.append(_shape(v.kind, frame.x(point.offset), y, hover))
        if metric.compare and v.samples is not None and len(metric.points) <= 16:
            parts.append(
                _text(
                    frame.x(point.offset),
                    scale.bottom + 3,
                    f"n={v.samples:,}",
                    size=8,
                    anchor="middle",
                    fill="#57606a",
                    cls="samples",
                )
            )
    return parts


def _metric(report: DecisionReport, metric: MetricSeries, frame: _Frame, top: float) -> list[str]:
    bottom = top + METRIC_H
    scale, axis = _metric_scale(metric, top, bottom, frame.duration)
    return [
        f'<g class="metric" data-metric="{esc(metric.name)}">',
        *_panel_frame(frame, top, bottom, _metric_title(metric), "panel-metric"),
        *_band(metric, scale, frame),
        *_y_axis(scale, frame, axis, metric.unit or "value", metric.unit),
        *_holds(report, metric, frame, top),
        *_measured(metric, scale, frame),
        *_lines(metric, scale, frame, top),
        *_marks(metric, scale, frame),
        "</g>",
    ]


def _checks(report: DecisionReport, frame: _Frame, top: float) -> list[str]:
    bottom = top + CHECKS_H
    most = max([report.threshold, *(t.failed_checks for t in report.ticks)])
    scale = _Scale(top + 6, bottom - 4, 0.0, float(most + 1))
    title = f"Failed checks (rollback at {report.threshold})"
    parts = ['<g class="failed-checks">', *_panel_frame(frame, top, bottom, title, "panel-checks")]
    step = max(1, math.ceil((most + 1) / 4))
    parts += _y_axis(scale, frame, range(0, most + 2, step), "checks", "")
    y = scale.y(report.threshold)
    parts.append(
        f'<line class="threshold-checks" x1="{frame.x0}" y1="{y}" x2="{frame.x1}" y2="{y}" stroke="{COLOURS[FAIL]}" '
        f'stroke-dasharray="5 3" data-value="{report.threshold}"/>'
    )
    parts.append(
        _text(
            frame.x1 - 4,
            y - 3,
            f"threshold {report.threshold}: rollback",
            size=9,
            anchor="end",
            fill=COLOURS[FAIL],
        )
    )
    width = max(min((frame.x(_tick_gap(report.ticks)) - frame.x(0)) * 0.5, 24.0), 4.0)
    for tick in report.ticks:
        if tick.failed_checks <= 0:
            continue
        x = frame.x(tick.offset)
        y_top = scale.y(tick.failed_checks)
        colour = COLOURS[FAIL] if tick.failed else "#ff8182"
        parts.append(
            f'<rect class="failed-check{" failed-now" if tick.failed else ""}" x="{round(x - width / 2, 2)}" y="{y_top}" '
            f'width="{round(width, 2)}" height="{round(scale.bottom - y_top, 2)}" fill="{colour}" data-count="{tick.failed_checks}">'
            f"<title>{esc(f'{tick.time}: {tick.failed_checks} failed check(s)')}</title></rect>"
        )
    parts.append("</g>")
    return parts


def _label_rows(xs: Sequence[float], labels: Sequence[str], right: float) -> list[tuple[int, bool]]:
    """A row per label so that no two labels in a row overlap, and whether the label sits on
    the marker's left (near the right edge)."""
    ends: list[float] = []
    placed = []
    for x, label in zip(xs, labels, strict=True):
        width = 6.2 * len(label) + 8
        left = x + width > right
        start, end = (x - width, x) if left else (x, x + width)
        row = next((i for i, last in enumerate(ends) if last < start), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = end
        placed.append((row, left))
    return placed


def _time_axis(report: DecisionReport, frame: _Frame, y: float) -> list[str]:
    start = parse_time(report.start)
    parts = [
        f'<g class="x-axis"><line x1="{frame.x0}" y1="{y}" x2="{frame.x1}" y2="{y}" stroke="#57606a"/>'
    ]
    for offset in _time_ticks(frame.duration):
        x = frame.x(offset)
        clock = ""
        if start is not None:
            from datetime import timedelta

            try:
                clock = (start + timedelta(seconds=offset)).strftime("%H:%M:%S")
            except OverflowError:  # the axis runs past the year 9999: no clock there
                clock = ""
        parts.append(f'<line x1="{x}" y1="{y}" x2="{x}" y2="{y + 4}" stroke="#57606a"/>')
        parts.append(_text(x, y + 15, _elapsed(offset), size=10, anchor="middle", cls="x-tick"))
        if clock:
            parts.append(_text(x, y + 27, clock, size=9, anchor="middle", fill="#6e7781"))
    label = "time (min:s since"
    label += f" {report.start}; clock times UTC)" if report.start else " the start)"
    parts.append(
        _text((frame.x0 + frame.x1) / 2, y + 44, label, size=11, anchor="middle", cls="axis-label")
    )
    parts.append("</g>")
    return parts


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    return lines


def _evidence(metric: MetricSeries) -> str | None:
    """A compare metric's last evidence in one line; None without."""
    c = metric.comparison
    if c is None:
        return None
    unit = metric.unit
    bits = [f"{metric.name}: canary {_num(c.canary, unit)} vs primary {_num(c.primary, unit)}"]
    if c.canary_samples is not None or c.primary_samples is not None:
        bits.append(
            f"samples {c.canary_samples or 0:,} canary / {c.primary_samples or 0:,} primary"
        )
    if c.needed_samples is not None:
        bits.append(f"need ~{c.needed_samples:,}" + (f" ({c.scatter})" if c.scatter else ""))
    if c.p_value is not None:
        bits.append(f"p = {c.p_value:.3g}")
    if c.likelihood_ratio is not None:
        bits.append(f"likelihood ratio {c.likelihood_ratio:.3g}")
    if metric.last_outcome:
        bits.append(f"last verdict {metric.last_outcome}")
    return " · ".join(bits)


def _revert_line(report: DecisionReport) -> str | None:
    revert = report.revert
    if revert is None:
        return None
    text = f"Git revert: {revert.state or '?'} · bad {revert.bad_revision or '-'}"
    text += f" → good {revert.good_revision or '-'}"
    extras = (
        ("commit ", revert.commit),
        ("pull request ", revert.pull_request),
        ("", revert.message),
    )
    return text + "".join(f" · {label}{value}" for label, value in extras if value)


def _caption(report: DecisionReport) -> list[tuple[str, str]]:
    """(class, line) of the caption: the judge's evidence, the Git revert, how the run ended."""
    lines = [("caption-compare", e) for e in map(_evidence, report.metrics) if e]
    revert = _revert_line(report)
    if revert:
        lines.append(("caption-revert", revert))
    if report.run is not None and report.run.reason:
        lines.append(("caption-reason", f"Run {report.run.result or 'ended'}: {report.run.reason}"))
    return [(cls, piece) for cls, text in lines for piece in _wrap(text, 130)]


def _header(report: DecisionReport) -> list[str]:
    run = report.run
    heading = f"{report.title} · {report.phase or 'no phase'}"
    sub = "no analysis recorded yet"
    if run is not None:
        heading += f" · run {run.number} of {len(report.runs)}: {run.revision or '-'}"
        heading += f" · {run.result or 'under way'}"
        sub = f"started {run.started or '?'}" + (f", ended {run.ended}" if run.ended else "")
    return [
        _text(12, 22, heading, size=15, weight="600", cls="heading"),
        _text(12, 40, sub, size=11, fill="#57606a", cls="subheading"),
    ]


def _decision_markers(
    report: DecisionReport, frame: _Frame, top: float, bottom: float, width: int
) -> list[str]:
    """A vertical line per decision through all panels, its label staggered above them."""
    markers = report.markers
    xs = [frame.x(m.offset) for m in markers]
    rows = _label_rows(xs, [m.label for m in markers], width - 4)
    parts = ['<g class="decisions">']
    for marker, x, (row, left) in zip(markers, xs, rows, strict=True):
        colour = MARKER_COLOURS.get(marker.kind, "#57606a")
        label_y = top + LABEL_ROW * (row + 1)
        dash = "" if marker.kind in ("promotion", "rollback") else "3 3"
        parts.append(
            f'<g class="decision decision-{esc(marker.kind)}" data-kind="{esc(marker.kind)}" '
            f'data-time="{esc(marker.time)}"><title>{esc(f"{marker.time}: {marker.message}")}</title>'
            f'<line x1="{x}" y1="{label_y + 3}" x2="{x}" y2="{bottom}" stroke="{colour}" '
            f'stroke-width="1.5" stroke-dasharray="{dash}"/>'
            + _text(
                x - 3 if left else x + 3,
                label_y,
                marker.label,
                size=10,
                fill=colour,
                weight="600",
                cls="decision-label",
                anchor="end" if left else "start",
            )
            + "</g>"
        )
    parts.append("</g>")
    return parts


def _label_row_count(report: DecisionReport, frame: _Frame, width: int) -> int:
    xs = [frame.x(m.offset) for m in report.markers]
    rows = _label_rows(xs, [m.label for m in report.markers], width - 4)
    return (max(row for row, _ in rows) + 1) if rows else 0


def _verdict_legend(y: float, *, unknown: bool = False) -> list[str]:
    """The key of the marks; ``unknown``: the run has a verdict of an unknown outcome, whose
    key then comes last (on a row of its own: the one row is full)."""
    parts, x = [], float(LEFT)
    for kind in (PASS, FAIL, INCONCLUSIVE, STALLED, WARMUP, ADVISORY):
        parts.append(_shape(kind, x, y, LABELS[kind], legend=True))
        parts.append(_text(x + 9, y + 4, LABELS[kind], size=10, fill="#57606a"))
        x += 6.2 * len(LABELS[kind]) + 30
    if unknown:
        parts.append(_shape(UNKNOWN, LEFT, y + 18, LABELS[UNKNOWN], legend=True))
        parts.append(_text(LEFT + 9, y + 22, LABELS[UNKNOWN], size=10, fill="#57606a"))
    parts.append(
        f'<rect x="{x}" y="{y - 6}" width="14" height="12" fill="url(#cr-hatch)" stroke="#bf8700"/>'
        + _text(x + 18, y + 4, "inconclusive hold", size=10, fill="#57606a")
    )
    return parts


def _panels(report: DecisionReport, frame: _Frame, y: float, width: int) -> tuple[list[str], float]:
    """The weights, a panel per metric, the failed checks, the time axis and the decisions."""
    decisions_top = y
    y += LABEL_ROW * _label_row_count(report, frame, width) + GAP - 2
    if not (report.ticks or report.markers):
        text = "No analysis tick is recorded for this canary yet."
        return [_text(12, y + 10, text, size=12, cls="empty")], y + 30
    body = _weights(report, frame, y)
    y += WEIGHT_H + GAP
    for metric in report.metrics:
        body += _metric(report, metric, frame, y)
        y += METRIC_H + GAP
    body += _checks(report, frame, y)
    y += CHECKS_H
    body += _time_axis(report, frame, y)
    body += _decision_markers(report, frame, decisions_top, y, width)
    return body, y + 56


def decision_svg(report: DecisionReport, *, width: int = 960) -> str:
    """The run of ``report`` as one SVG document (no scripts, no external references)."""
    width = max(width, 480)
    frame = _Frame(LEFT, width - RIGHT, (report.duration or 60.0) * 1.03)
    body = _header(report)
    panels, y = _panels(report, frame, 52.0, width)
    body += panels
    unknown = any(v.kind == UNKNOWN for t in report.ticks for v in t.verdicts)
    body += _verdict_legend(y, unknown=unknown)
    y += 40 if unknown else 22
    for cls, text in _caption(report):
        body.append(_text(12, y, text, size=11, cls=f"caption {cls}"))
        y += 16
    height = math.ceil(y + 8)
    desc = f"Decision report of canary {report.title}"
    if report.run is not None:
        run = report.run
        desc += f": run of {run.revision or 'unknown revision'}, {run.result or 'under way'}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="canary-decision" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{esc(desc)}" '
        f'style="{FONT}"><title>{esc(desc)}</title>'
        '<defs><pattern id="cr-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff8c5"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#d4a72c" stroke-width="2"/></pattern></defs>'
        f'<rect width="{width}" height="{height}" fill="#f6f8fa"/>' + "".join(body) + "</svg>\n"
    )
