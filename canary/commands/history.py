"""The analysis history in ``canary status``: the verdicts of a run over time, one row per metric.

``status.analysis`` says how the last tick went; ``status.analysisHistory`` keeps the
sequence (canary.core.history). Here each run becomes a small table: per metric, one glyph
per analysed tick (oldest first), the last values and the requests behind them, then a
sparkline of each metric's values (canary.commands.sparkline) and the canary weight each tick
was judged at. For compare metrics the last verdict also says how many requests each side
has and how many the judge expects to need to detect the configured
effect (``details.comparison.neededSamples``). Rendering is pure: it reads plain dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from canary.commands.sparkline import run_trends, trend_lines
from canary.commands.stored import count, mapping, number, records, string

__all__ = ["GLYPHS", "LEGEND", "glyph", "history_view", "requests_text", "value_text"]

GLYPHS = {
    "pass": ("✓", "green"),
    "fail": ("✗", "red"),
    "inconclusive": ("…", "yellow"),
    "stalled": ("‖", "bold yellow"),
    "warmup": ("~", "blue"),
    "advisory": ("○", "dim"),
    "unknown": ("?", "magenta"),
}
LEGEND = (
    "✓ pass  ✗ fail/no data/error  … inconclusive  ‖ stalled  ~ warm-up  ○ advisory, not passing"
    "  ? unknown outcome"
)
FAILING = frozenset({"Fail", "NoData", "Error"})


def _state_count(counts: Any, index: int) -> int | None:
    """One count of a list of counts of the sequential state (None: not a count, e.g.
    negative or beyond the float range). The state keeps them as floats: rounded."""
    if not isinstance(counts, list) or len(counts) <= index:
        return None
    value = number(counts[index])
    return round(value) if value is not None and value >= 0 else None


def glyph(verdict: Mapping[str, Any]) -> tuple[str, str]:
    """The glyph and style of one verdict of the history. An outcome no judge gives (a
    hand edit, a newer controller: ``Skipped``, ``""``, a list) is drawn as unknown, not as
    inconclusive: inconclusive says the weight held for data, which nothing here says."""
    outcome = string(verdict.get("outcome"))
    if verdict.get("advisory") is True and outcome != "Pass":
        return GLYPHS["advisory"]
    if verdict.get("warmingUp") is True:
        return GLYPHS["warmup"]
    if verdict.get("stalled") is True:
        return GLYPHS["stalled"]
    if outcome == "Pass":
        return GLYPHS["pass"]
    if outcome in FAILING:
        return GLYPHS["fail"]
    if outcome == "Inconclusive":
        return GLYPHS["inconclusive"]
    return GLYPHS["unknown"]


def value_text(value: Any) -> str:
    """A stored value as shown (``99.62``); ``-`` for anything that is not a finite number
    (a boolean, NaN, ``10**400``, a text)."""
    found = number(value)
    return f"{found:.4g}" if found is not None else "-"


def requests_text(metric: Mapping[str, Any]) -> str:
    """``1,840 / 16,000 (need ~3,200)``: a compare verdict's requests per side (canary /
    primary) and the canary requests needed to detect the configured effect; ``-`` without.
    Where the events scatter, why so many are needed: ``(need ~25,455, scatter x6.8)``."""
    details = mapping(metric.get("details"))
    comparison = mapping(details.get("comparison"))
    canary, primary = (
        count(comparison.get("canarySamples")),
        count(comparison.get("primarySamples")),
    )
    if canary is None and primary is None:
        return _carried_requests(details)
    text = f"{canary or 0:,} / {primary or 0:,}"
    needed = count(comparison.get("neededSamples"))
    if needed is not None:
        from canary.report.model import scatter_text  # lightly: see scatter_text

        scatter = scatter_text(comparison.get("dispersion"))
        text += f" (need ~{needed:,}{', ' + scatter if scatter else ''})"
    return text


def _carried_requests(details: Mapping[str, Any]) -> str:
    """A compared metric whose ``thresholdRange`` failed and decided the tick alone: its
    verdict carries the comparison's running totals ([requests, events] per side) as of the
    last compared window, or, right after the warm-up, the warm-up's counts ([canary
    requests, events, primary requests, events]); labelled, since neither is this tick's."""
    if details.get("judge") != "threshold" or details.get("error"):
        return "-"  # a failed query carries the evidence too, but measured nothing
    state = mapping(details.get("state"))
    canary, primary = _state_count(state.get("canary"), 0), _state_count(state.get("primary"), 0)
    label = "last compared"
    if not canary and not primary:
        canary, primary = _state_count(state.get("warm"), 0), _state_count(state.get("warm"), 2)
        label = "warm-up"
    if canary is None and primary is None:
        return "-"
    return f"{canary or 0:,} / {primary or 0:,} ({label})"


def _names(ticks: Sequence[Mapping[str, Any]]) -> list[str]:
    """The metrics of a run, in the order they first appear."""
    names: list[str] = []
    for tick in ticks:
        for verdict in records(tick.get("verdicts")):
            name = verdict.get("name")
            if isinstance(name, str) and name not in names:
                names.append(name)
    return names


def _row(
    name: str, ticks: Sequence[Mapping[str, Any]], last: Mapping[str, Any] | None
) -> list[RenderableType]:
    sequence = Text()
    latest: Mapping[str, Any] = {}
    for tick in ticks:
        found = [v for v in records(tick.get("verdicts")) if v.get("name") == name]
        if found:
            mark, style = glyph(found[0])
            sequence.append(mark, style=style)
            latest = found[0]
        else:
            sequence.append("·", style="dim")
    label = Text(name)
    if latest.get("advisory") is True:
        label.append(" (advisory)", style="dim")
    samples = count(latest.get("samples"))
    requests = requests_text(last) if last is not None else (f"{samples:,}" if samples else "-")
    return [
        label,
        sequence,
        Text(string(latest.get("outcome")) or "-"),
        value_text(latest.get("value")),
        value_text(latest.get("primaryValue")),
        Text(requests),
    ]


def _title(run: Mapping[str, Any], current: bool) -> str:
    revision = string(run.get("revision")) or "-"
    started = string(run.get("started")) or "?"
    ended = string(run.get("ended"))
    if not ended:
        return f"Analysis of {revision} (started {started}, under way)"
    result = string(run.get("result")) or "ended"
    reason = string(run.get("reason"))
    ending = f"{result} {ended}" + (f": {reason}" if reason else "")
    which = "Last run" if current else "Earlier run"
    return f"{which}: {revision} (started {started}, {ending})"


def _run_table(
    run: Mapping[str, Any], current: bool, last: Sequence[Mapping[str, Any]]
) -> RenderableType:
    ticks = records(run.get("ticks"))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for header in ("METRIC", "VERDICTS", "LAST", "VALUE", "PRIMARY", "REQUESTS"):
        table.add_column(header, overflow="fold" if header == "VERDICTS" else "ellipsis")
    by_name = {string(m.get("name")): m for m in last}
    newest = current and not string(run.get("ended"))  # status.analysis: its last verdicts
    for name in _names(ticks):
        table.add_row(*_row(name, ticks, by_name.get(name) if newest else None))
    weights = " ".join(str(count(t.get("weight"), 0)) for t in ticks)
    title = Text(_title(run, current), style="italic")
    bounds = {name: string(m.get("threshold")) for name, m in by_name.items()}
    trends = trend_lines(run_trends(ticks, lambda v: glyph(v)[1]), bounds)
    return Group(title, table, *trends, Text(f"weights (%): {weights}", style="dim"))


def history_view(
    history: Sequence[Mapping[str, Any]],
    analysis: Sequence[Mapping[str, Any]],
    *,
    all_runs: bool,
) -> RenderableType | None:
    """The newest run (and, with ``all_runs``, the earlier ones, newest first); None when
    the history is empty. ``analysis`` is ``status.analysis``, the newest verdicts in full."""
    runs = [r for r in records(list(history)) if records(r.get("ticks"))]
    if not runs:
        return None
    shown = list(reversed(runs)) if all_runs else runs[-1:]
    parts: list[RenderableType] = [
        _run_table(run, index == 0, analysis) for index, run in enumerate(shown)
    ]
    parts.append(Text(LEGEND, style="dim"))
    if not all_runs and len(runs) > 1:
        parts.append(Text(f"{len(runs) - 1} earlier run(s): canary status --history", style="dim"))
    return Group(*parts)
