"""Sparklines: each metric's values over a run's ticks, in eight unicode blocks ``▁▂▃▄▅▆▇█``.

``canary status`` (canary.commands.history) and the demo's panel draw one per metric from
``status.analysisHistory``: a run's ticks, oldest first, one block per tick. A compare
metric gets two lines on one scale, the canary's and the primary's, so their heights can be
compared. The blocks are scaled between the lowest and the highest value drawn (the scale is
printed beside them), so a trend shows even when the threshold is far away; the bound is
printed as text, and each canary block is coloured by the verdict of its tick. A tick
without a value (the metric was not measured, no data; NaN and infinities, which the
history never stores) is a gap, a space. A flat series (one tick, or constant values) sits
at mid-height. Colour only repeats what the text says (the verdicts column, the bound), so
``NO_COLOR`` and piped output stay readable. Everything here is pure: plain values in,
strings and rich Text out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from canary.commands.stored import number, records

__all__ = [
    "BLOCKS",
    "GAP",
    "Trend",
    "last_run_sparks",
    "levels",
    "run_trends",
    "scale",
    "sparkline",
    "styled_sparkline",
    "trend_lines",
]

BLOCKS = "▁▂▃▄▅▆▇█"
GAP = " "
MIDDLE = 3  # ▄: where a flat series is drawn
PRIMARY_STYLE = "blue"

Values = Sequence[float | None]
VerdictStyle = Callable[[Mapping[str, Any]], str]


def scale(*series: Values) -> tuple[float, float] | None:
    """The lowest and the highest finite value of all ``series``; None when there is none."""
    found = [v for s in series for v in (number(x) for x in s) if v is not None]
    return (min(found), max(found)) if found else None


def _share(value: float, low: float, high: float) -> float:
    """Where ``value`` lies from ``low`` (0) to ``high`` (1). A span beyond the float range
    (-1e308 to 1e308) is taken in halves: halving those is exact."""
    if math.isfinite(high - low):
        return (value - low) / (high - low)
    return (value / 2 - low / 2) / (high / 2 - low / 2)


def levels(values: Values, bounds: tuple[float, float] | None = None) -> list[int | None]:
    """The block (0 to 7) of each value on ``bounds`` (default: the values' own scale);
    None for a missing value. Values outside ``bounds`` are clamped."""
    low, high = bounds or scale(values) or (0.0, 0.0)
    out: list[int | None] = []
    for raw in values:
        value = number(raw)
        if value is None:
            out.append(None)
        elif high <= low:
            out.append(MIDDLE)
        else:
            share = _share(min(max(value, low), high), low, high)
            out.append(math.floor(share * (len(BLOCKS) - 1) + 0.5))  # half up
    return out


def sparkline(values: Values, bounds: tuple[float, float] | None = None) -> str:
    """``▁▄█ ▂``: one block per value, a space for a missing one."""
    return "".join(GAP if lv is None else BLOCKS[lv] for lv in levels(values, bounds))


def styled_sparkline(
    values: Values, styles: Sequence[str], bounds: tuple[float, float] | None = None
) -> Text:
    """The sparkline with each block in its style (``styles[i]`` for ``values[i]``)."""
    text = Text()
    for index, block in enumerate(sparkline(values, bounds)):
        text.append(block, style=styles[index] if index < len(styles) else "")
    return text


@dataclass(frozen=True, slots=True)
class Trend:
    """One metric over a run: the canary's values per tick, the primary's (a compare
    metric; else all None) and the style of each tick's verdict."""

    name: str
    canary: tuple[float | None, ...]
    primary: tuple[float | None, ...]
    styles: tuple[str, ...]

    @property
    def compared(self) -> bool:
        return any(v is not None for v in self.primary)


def run_trends(
    ticks: Sequence[Mapping[str, Any]], verdict_style: VerdictStyle | None = None
) -> list[Trend]:
    """The trend of each metric of a run's ticks (``analysisHistory[].ticks``), in the order
    the metrics first appear; ``verdict_style`` colours a tick's block by its verdict."""
    names: list[str] = []
    for tick in ticks:
        for verdict in records(tick.get("verdicts")):
            name = verdict.get("name")
            if isinstance(name, str) and name not in names:
                names.append(name)
    trends = []
    for name in names:
        canary: list[float | None] = []
        primary: list[float | None] = []
        styles: list[str] = []
        for tick in ticks:
            found = next((v for v in records(tick.get("verdicts")) if v.get("name") == name), None)
            canary.append(number(found.get("value")) if found else None)
            primary.append(number(found.get("primaryValue")) if found else None)
            styles.append(verdict_style(found) if found and verdict_style else "")
        trends.append(Trend(name, tuple(canary), tuple(primary), tuple(styles)))
    return trends


def _scale_text(bounds: tuple[float, float] | None) -> str:
    if bounds is None:
        return "no values"
    low, high = bounds
    return f"{low:.4g}" if low == high else f"{low:.4g}..{high:.4g}"


def trend_lines(trends: Sequence[Trend], bounds: Mapping[str, str] | None = None) -> list[Text]:
    """One line per metric (two for a compare metric: canary, then primary, on one scale):
    the name, the blocks, their scale and the metric's bound (``bounds``: metric name to its
    threshold text, ``>= 99%``)::

        request-success-rate          ▁▃▆█  97.1..99.6  bound >= 99%
        latency              canary   ▂▁▅█  12..48      bound <= 500ms
                             primary  ▁▁▂▂
    """
    if not trends:
        return []
    name_width = max(len(t.name) for t in trends)
    sides = any(t.compared for t in trends)
    spark_width = max(len(t.canary) for t in trends)
    lines = []
    for trend in trends:
        shared = scale(trend.canary, trend.primary)
        bound = (bounds or {}).get(trend.name, "")
        line = Text(trend.name.ljust(name_width) + "  ")
        if sides:
            line.append(("canary" if trend.compared else "").ljust(8), style="dim")
        line.append_text(styled_sparkline(trend.canary, trend.styles, shared))
        line.append(" " * (spark_width - len(trend.canary)) + "  " + _scale_text(shared))
        if bound:
            line.append(f"  bound {bound}", style="dim")
        lines.append(line)
        if trend.compared:
            second = Text(" " * (name_width + 2))
            second.append("primary ", style="dim")
            second.append(sparkline(trend.primary, shared), style=PRIMARY_STYLE)
            lines.append(second)
    return lines


def last_run_sparks(
    history: Any, verdict_style: VerdictStyle | None = None, *, ticks: int = 20
) -> dict[str, Text]:
    """Per metric, the sparkline of the newest run of ``status.analysisHistory`` (its last
    ``ticks`` ticks), with the primary's line under the canary's for a compare metric."""
    runs = records(history)
    newest = records(runs[-1].get("ticks")) if runs else []
    sparks = {}
    for trend in run_trends(newest[-ticks:] if ticks > 0 else [], verdict_style):
        shared = scale(trend.canary, trend.primary)
        text = styled_sparkline(trend.canary, trend.styles, shared)
        if trend.compared:
            text.append("\n")
            text.append(sparkline(trend.primary, shared), style=PRIMARY_STYLE)
        sparks[trend.name] = text
    return sparks
