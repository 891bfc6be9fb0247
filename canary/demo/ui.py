"""What ``canary demo`` shows: a live panel on a terminal, plain progress lines elsewhere.

The demo is for watching a release happen, so its output has two audiences: a person at a
terminal (a live panel redrawn in place, with the phase, the traffic split as a bar, each
metric's last value against its threshold, the Git revert state and the recent Events;
Slack messages and milestones scroll above it) and a log (CI, a pipe), where every change
is one timestamped line. The orchestrator (``canary.demo.story``) keeps a
:class:`DemoView` up to date and calls the reporter; the reporters only render.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from canary.commands.history import glyph
from canary.commands.sparkline import last_run_sparks

from .slack import SlackMessage

__all__ = [
    "DemoView",
    "EventLine",
    "LiveReporter",
    "PlainReporter",
    "Reporter",
    "make_reporter",
    "render_summary",
]

PHASE_STYLE = {
    "Succeeded": "bold green",
    "Failed": "bold red",
    "Progressing": "bold yellow",
    "Promoting": "bold cyan",
    "Finalising": "bold cyan",
    "Initialized": "bold blue",
    "Waiting": "yellow",
    "WaitingPromotion": "yellow",
}
OUTCOME_STYLE = {"Pass": "green", "Fail": "red", "NoData": "red", "Error": "red"}
SLACK_STYLE = {"#2eb886": "green", "#daa038": "yellow", "#a30200": "red"}


@dataclass(frozen=True, slots=True)
class EventLine:
    seen: float  # seconds since the demo started
    type: str  # Normal | Warning
    message: str
    count: int = 1


@dataclass
class DemoView:
    """Everything the panel shows; the orchestrator writes it, reporters read it."""

    started: float = field(default_factory=time.monotonic)
    stage: str = "starting"
    canary: Mapping[str, Any] = field(default_factory=dict)  # the Canary's status
    thresholds: Mapping[str, str] = field(default_factory=dict)  # metric -> ">= 99%"
    threshold: int = 0  # failed checks allowed
    max_weight: int = 100
    route: tuple[int, int] | None = None  # HTTPRoute weights (primary, canary)
    versions: dict[str, str] = field(default_factory=dict)  # "primary"/"canary" -> "v2"
    rate: float = 0.0  # requests per second, last window
    canary_share: float = 0.0
    errors: float = 0.0  # share of failed requests, last window
    events: list[EventLine] = field(default_factory=list)
    git_head: str = ""
    source_revision: str = ""  # what the GitSource applied last

    def elapsed(self, now: float | None = None) -> float:
        return (now if now is not None else time.monotonic()) - self.started

    @property
    def phase(self) -> str:
        return str(self.canary.get("phase") or "")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def short_revision(revision: str) -> str:
    """``main@sha1:0123456789...`` -> ``main@0123456``."""
    branch, sep, rest = revision.partition("@")
    if not sep:
        return revision[:12]
    return f"{branch}@{rest.removeprefix('sha1:')[:7]}"


def _unit(threshold: str) -> str:
    for unit in ("%", "ms"):
        if threshold.endswith(unit):
            return unit
    return ""


def metric_rows(view: DemoView) -> list[tuple[str, str, str, str, str]]:
    """(name, value, threshold, outcome, summary) per metric, spec order first."""
    seen = {
        str(m.get("name")): m for m in view.canary.get("analysis") or () if isinstance(m, Mapping)
    }
    names = list(view.thresholds) + [n for n in seen if n not in view.thresholds]
    rows = []
    for name in names:
        verdict = seen.get(name, {})
        threshold = str(verdict.get("threshold") or view.thresholds.get(name, ""))
        value = verdict.get("value")
        text = f"{float(value):.2f}{_unit(threshold)}" if isinstance(value, int | float) else "-"
        rows.append(
            (
                name,
                text,
                threshold,
                str(verdict.get("outcome") or "-"),
                str(verdict.get("summary") or ""),
            )
        )
    return rows


def weight_bar(primary: int, canary: int, width: int = 40) -> Text:
    total = primary + canary or 100
    cells = round(width * canary / total)
    bar = Text()
    bar.append("█" * (width - cells), style="blue")
    bar.append("█" * cells, style="yellow")
    return bar


def render_panel(view: DemoView, width: int = 120) -> RenderableType:
    status = view.canary
    phase = view.phase or "-"
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()

    headline = Text()
    headline.append(phase, style=PHASE_STYLE.get(phase, "bold"))
    message = str(status.get("message") or "")
    if message:
        headline.append(f"  {message}", style="dim")
    grid.add_row("Canary", headline)

    revision = Text(short_revision(str(status.get("currentRevision") or "")) or "-")
    good = str(status.get("lastGoodRevision") or "")
    if good:
        revision.append(f"   last good {short_revision(good)}", style="dim")
    grid.add_row("Revision", revision)

    grid.add_row("Weights", _weights(view, width))
    grid.add_row(
        "Traffic",
        Text(
            f"{view.rate:5.1f} req/s, {view.canary_share * 100:4.1f}% served by the canary, "
            f"{view.errors * 100:4.1f}% failed",
            style="dim" if view.rate == 0 else "",
        ),
    )
    checks = Text(f"{status.get('failedChecks', 0)} failed of {view.threshold} allowed")
    checks.append(f"   iterations {status.get('iterations', 0)}", style="dim")
    grid.add_row("Checks", checks)

    grid.add_row("Analysis", _metrics(view))

    revert = status.get("gitRevert")
    if isinstance(revert, Mapping) and revert.get("state"):
        grid.add_row("Git revert", _revert(revert))
    git = Text(f"head {view.git_head[:7] or '-'}")
    if view.source_revision:
        git.append(f"   GitSource applied {short_revision(view.source_revision)}", style="dim")
    grid.add_row("Git", git)

    grid.add_row("Events", _events(view) if view.events else Text("-", style="dim"))

    title = f"canary demo · {view.stage} · {_clock(view.elapsed())}"
    return Panel(grid, title=title, title_align="left", border_style="cyan")


def _weights(view: DemoView, width: int) -> Text:
    """The two versions and their weights around a bar that fits the terminal."""
    primary_w, canary_w = view.route or (100, 0)
    traffic = Text()
    traffic.append(f"primary {view.versions.get('primary', '?')} {primary_w:>3}% ", style="blue")
    traffic.append_text(weight_bar(primary_w, canary_w, width=max(10, min(40, width - 62))))
    traffic.append(f" {canary_w:>3}% canary {view.versions.get('canary', '?')}", style="yellow")
    traffic.append(f"   (max {view.max_weight}%)", style="dim")
    return traffic


def _metrics(view: DemoView) -> Table:
    metrics = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=False)
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    metrics.add_column("threshold")
    metrics.add_column("outcome")
    metrics.add_column("trend", no_wrap=True)  # canary (primary below: compare)
    sparks = last_run_sparks(view.canary.get("analysisHistory"), lambda v: glyph(v)[1])
    for name, value, threshold, outcome, _ in metric_rows(view):
        style = OUTCOME_STYLE.get(outcome, "")
        metrics.add_row(name, value, threshold, Text(outcome, style=style), sparks.get(name, ""))
    return metrics


def _revert(revert: Mapping[str, Any]) -> Text:
    text = Text(str(revert["state"]), style="bold")
    if revert.get("commit"):
        text.append(f"  commit {str(revert['commit'])[:7]}")
    if revert.get("badRevision"):
        text.append(
            f"  {short_revision(str(revert['badRevision']))} -> "
            f"{short_revision(str(revert.get('goodRevision') or ''))}",
            style="dim",
        )
    if revert.get("message"):
        text.append(f"  {revert['message']}", style="dim")
    return text


def _events(view: DemoView) -> Text:
    """The last six events, warnings in red."""
    events = Text()
    for index, line in enumerate(view.events[-6:]):
        style = "red" if line.type == "Warning" else "dim"
        count = f" (x{line.count})" if line.count > 1 else ""
        events.append(
            ("\n" if index else "") + f"{_clock(line.seen)}  {line.message}{count}", style=style
        )
    return events


def render_slack(message: SlackMessage) -> RenderableType:
    """A Slack message as a small card."""
    body = Table.grid(padding=(0, 1))
    body.add_column()
    if message.text:
        body.add_row(Text(message.text))
    if message.facts:
        facts = Table.grid(padding=(0, 2))
        facts.add_column(style="bold", no_wrap=True)
        facts.add_column()
        for name, value in message.facts:
            facts.add_row(name, value)
        body.add_row(facts)
    for line in message.analysis:
        body.add_row(Text(f"• {line}", style="dim"))
    if message.context:
        body.add_row(Text(message.context, style="dim italic"))
    style = SLACK_STYLE.get(message.color, "magenta")
    channel = f" #{message.channel}" if message.channel else ""
    return Panel(
        body,
        title=f"Slack{channel}: {message.title}",
        title_align="left",
        border_style=style,
    )


def render_summary(summary: Mapping[str, Any]) -> RenderableType:
    """The end-of-demo summary: outcome, timings, ``git log``, where things are."""
    parts: list[RenderableType] = []
    outcome = Table.grid(padding=(0, 2))
    outcome.add_column(no_wrap=True)
    outcome.add_column()
    for label, ok, detail in summary.get("checks", ()):
        mark = Text("✔", style="bold green") if ok else Text("✘", style="bold red")
        outcome.add_row(mark, Text(f"{label}  ", style="bold").append(str(detail), style=""))
    parts.append(outcome)

    timings = Table(title="Timings", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    timings.add_column("what")
    timings.add_column("seconds", justify="right")
    for label, seconds in summary.get("timingRows", ()):
        timings.add_row(label, "-" if seconds is None else f"{seconds:.1f}")
    parts.append(timings)

    if summary.get("error"):
        parts.append(Text(f"\n{summary['error']}\n", style="red"))
    log = str(summary.get("gitLog") or "").rstrip()
    if log:
        parts.append(Text("git log --oneline (the demo repository)", style="bold"))
        parts.append(Text(log))
    where = summary.get("where") or {}
    if where:
        files = Table.grid(padding=(0, 2))
        files.add_column(style="bold", no_wrap=True)
        files.add_column()
        for label, path in where.items():
            files.add_row(label, str(path))
        parts.append(Text(""))
        parts.append(files)
    ok = bool(summary.get("ok"))
    return Panel(
        Group(*parts),
        title="canary demo: " + ("done" if ok else "FAILED"),
        title_align="left",
        border_style="green" if ok else "red",
    )


class Reporter(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def note(self, text: str, *, style: str = "") -> None: ...
    def slack(self, message: SlackMessage) -> None: ...
    def refresh(self) -> None: ...
    def summary(self, summary: Mapping[str, Any]) -> None: ...
    def print(self, renderable: RenderableType | str) -> None: ...


class LiveReporter:
    """A rich Live panel; notes and Slack messages are printed above it."""

    def __init__(self, view: DemoView, console: Console) -> None:
        self.view = view
        self.console = console
        self.live: Live | None = None
        self._running = False

    def start(self) -> None:
        if not self._running:
            self.live = Live(
                get_renderable=lambda: render_panel(self.view, self.console.width),
                console=self.console,
                refresh_per_second=4,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self.live.start()
            self._running = True

    def stop(self) -> None:
        if self._running and self.live is not None:
            self.live.stop()
        self._running = False

    def note(self, text: str, *, style: str = "") -> None:
        line = Text(f"{_clock(self.view.elapsed())}  ", style="dim")
        line.append(text, style=style or "bold")
        self.console.print(line)

    def slack(self, message: SlackMessage) -> None:
        self.console.print(render_slack(message))

    def refresh(self) -> None:
        if self._running and self.live is not None:
            self.live.refresh()

    def summary(self, summary: Mapping[str, Any]) -> None:
        self.stop()
        self.console.print(render_panel(self.view, self.console.width))
        self.console.print(render_summary(summary))

    def print(self, renderable: RenderableType | str) -> None:
        self.console.print(renderable)


class PlainReporter:
    """One line per change, for logs and CI."""

    def __init__(self, view: DemoView, console: Console) -> None:
        self.view = view
        self.console = console
        self._last: dict[str, Any] = {}
        self._events = 0
        self._verdicts: set[tuple[str, str]] = set()

    def _line(self, text: str) -> None:
        self.console.print(
            f"[{_clock(self.view.elapsed())}] {text}", markup=False, highlight=False, soft_wrap=True
        )

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def note(self, text: str, *, style: str = "") -> None:
        self._line(f"== {text}")

    def slack(self, message: SlackMessage) -> None:
        channel = f" #{message.channel}" if message.channel else ""
        self._line(f"slack{channel}: {message.title}")
        for line in message.text.splitlines():
            self._line(f"    {line}")
        for name, value in message.facts:
            self._line(f"    {name}: {value}")
        for line in message.analysis:
            self._line(f"    - {line}")
        if message.context:
            self._line(f"    ({message.context})")

    def refresh(self) -> None:
        view, status = self.view, self.view.canary
        now = {
            "phase": view.phase,
            "route": view.route,
            "failed": status.get("failedChecks"),
            "revert": (status.get("gitRevert") or {}).get("state"),
            "versions": dict(view.versions),
            "source": view.source_revision,
        }
        for change in self._changes(now):
            self._line(change)
        self._new_verdicts()
        for line in view.events[self._events :]:
            self._line(f"event{' WARNING' if line.type == 'Warning' else ''}: {line.message}")
        self._events = len(view.events)
        self._last = now

    def _changes(self, now: Mapping[str, Any]) -> list[str]:
        """A line for each part of the view that changed since the last refresh."""
        view, status, last = self.view, self.view.canary, self._last
        lines = []
        if now["phase"] != last.get("phase") and now["phase"]:
            lines.append(f"canary phase: {now['phase']}  {status.get('message') or ''}".rstrip())
        if now["route"] != last.get("route") and view.route is not None:
            primary, canary = view.route
            lines.append(
                f"weights: primary {view.versions.get('primary', '?')} {primary}% / "
                f"canary {view.versions.get('canary', '?')} {canary}%"
            )
        if now["failed"] != last.get("failed") and now["failed"]:
            lines.append(f"failed checks: {now['failed']} of {view.threshold}")
        if now["revert"] != last.get("revert") and now["revert"]:
            revert = status.get("gitRevert") or {}
            commit = str(revert.get("commit") or "")[:7]
            lines.append(f"git revert: {now['revert']}{'  commit ' + commit if commit else ''}")
        if now["versions"] != last.get("versions"):
            lines.append(
                "pods run: primary "
                + view.versions.get("primary", "?")
                + ", canary "
                + view.versions.get("canary", "?")
            )
        if now["source"] != last.get("source") and now["source"]:
            lines.append(f"GitSource applied {short_revision(str(now['source']))}")
        return lines

    def _new_verdicts(self) -> None:
        """Print each metric verdict once: a verdict is new when its time or value is."""
        view, status = self.view, self.view.canary
        for name, value, threshold, outcome, summary in metric_rows(view):
            verdict_time = next(
                (
                    str(m.get("time"))
                    for m in status.get("analysis") or ()
                    if isinstance(m, Mapping) and m.get("name") == name
                ),
                "",
            )
            key = (name, verdict_time + outcome + value)
            if outcome != "-" and key not in self._verdicts:
                self._verdicts.add(key)
                self._line(f"metric {name}: {value} (threshold {threshold}) {outcome}  {summary}")

    def summary(self, summary: Mapping[str, Any]) -> None:
        self._line("== summary")
        for label, ok, detail in summary.get("checks", ()):
            self._line(f"  [{'ok' if ok else 'FAILED'}] {label}  {detail}")
        if summary.get("error"):
            self._line(f"  error: {summary['error']}")
        for label, seconds in summary.get("timingRows", ()):
            self._line(f"  {label}: {'-' if seconds is None else f'{seconds:.1f}s'}")
        self._line("  git log --oneline (the demo repository):")
        for line in str(summary.get("gitLog") or "").splitlines():
            self._line(f"    {line}")
        for label, path in (summary.get("where") or {}).items():
            self._line(f"  {label}: {path}")

    def print(self, renderable: RenderableType | str) -> None:
        self.console.print(renderable)


def make_reporter(view: DemoView, console: Console, *, live: bool | None = None) -> Reporter:
    """A live panel on a terminal, plain lines otherwise (``live`` forces either)."""
    use_live = console.is_terminal and not console.is_dumb_terminal if live is None else live
    if use_live:
        return LiveReporter(view, console)
    return PlainReporter(view, console)


def event_lines(events: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str, int]]:
    """(name, type, message, count) of Events, oldest first."""

    def key(e: Mapping[str, Any]) -> tuple[str, int]:
        meta = e.get("metadata") or {}
        return (
            str(e.get("firstTimestamp") or meta.get("creationTimestamp") or ""),
            int(meta.get("resourceVersion") or 0),
        )

    return [
        (
            str((e.get("metadata") or {}).get("name")),
            str(e.get("type") or "Normal"),
            str(e.get("message") or ""),
            int(e.get("count") or 1),
        )
        for e in sorted(events, key=key)
    ]
