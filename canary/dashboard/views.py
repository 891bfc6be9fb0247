"""The dashboard's HTML, rendered from the Canaries as the API returns them (pure: no I/O).

Every value from the cluster goes through :func:`e` (HTML escaping, quotes included), so a
Canary field holding ``<script>`` is shown as text. The live part of each page (``#live``) is
also what the event stream sends when something changes. Nothing here reads a Secret, and
nothing shown comes from one.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from canary.commands.show import age, canary_row, short_revision
from canary.commands.stored import count, mapping, number, printable, records, string
from canary.dashboard.board import Problem

__all__ = [
    "GATES",
    "Gate",
    "Page",
    "RevertLinks",
    "detail_live",
    "e",
    "error_page",
    "list_live",
    "page",
]

#: The gates a page offers, in order: (command, button label, confirm the danger).
GATES: tuple[tuple[str, str], ...] = (
    ("promote", "Promote"),
    ("abort", "Abort"),
    ("retry", "Retry"),
    ("pause", "Pause"),
    ("resume", "Resume"),
)


def e(value: Any) -> str:
    """``value`` as HTML text (``<``, ``>``, ``&`` and quotes escaped), without the control
    characters a status or an Event may hold (HTML forbids them; ESC and NUL show as boxes
    or break the page's XML-minded readers)."""
    return html.escape("" if value is None else printable(str(value)), quote=True)


def canary_path(namespace: str, name: str) -> str:
    return f"/canaries/{quote(namespace, safe='')}/{quote(name, safe='')}"


@dataclass(frozen=True, slots=True)
class Page:
    """A whole page: its title, the live part, where its updates stream from."""

    title: str
    live: str
    stream: str = ""
    write_enabled: bool = False
    version: int = 0
    notice: str = ""  # the outcome of a gate request, above the live part (kept by updates)


@dataclass(frozen=True, slots=True)
class Gate:
    """One gate button as planned by :func:`canary.commands.gates.plan` for the canary now."""

    command: str
    label: str
    effect: str
    refused: str = ""  # why it is moot now (the button is disabled)


@dataclass(frozen=True, slots=True)
class RevertLinks:
    """The Git repository's web page and where it came from ("" when unknown)."""

    web_url: str = ""
    found: str = ""
    commit_url: str = ""
    source: str = ""  # kind/name of the GitOps source, when the Canary names one


@dataclass(frozen=True, slots=True)
class Detail:
    obj: Mapping[str, Any]
    picture: str  # SVG markup from canary.report.picture (or an escaped message)
    workloads: Sequence[Mapping[str, Any]] = ()
    events: Sequence[Mapping[str, Any]] = ()
    links: RevertLinks = field(default_factory=RevertLinks)
    gates: Sequence[Gate] = ()
    write_enabled: bool = False
    csrf: str = ""


# --------------------------------------------------------------------------- layout


def page(current: Page) -> str:
    mode = (
        '<span class="mode">write actions <strong>enabled</strong></span>'
        if current.write_enabled
        else '<span class="mode">read-only (start with --enable-write for the gates)</span>'
    )
    stream = f' data-stream="{e(current.stream)}"' if current.stream else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(current.title)} · canary dashboard</title>"
        '<link rel="stylesheet" href="/assets/dashboard.css">'
        '<script src="/assets/live.js" defer></script>'
        "</head><body>"
        '<header><h1><a href="/">canary dashboard</a></h1>'
        '<span id="connection" class="connection">'
        f"{'connecting…' if current.stream else ''}</span>{mode}</header>"
        + (
            f'<main><div class="banner note" id="notice">{e(current.notice)}</div>'
            if current.notice
            else "<main>"
        )
        + f'<div id="live"{stream} data-version="{current.version}">{current.live}</div></main>'
        "</body></html>\n"
    )


def error_page(status: int, title: str, message: str) -> str:
    body = (
        f'<div class="banner"><strong>{e(title)}</strong>{e(message)}</div>'
        '<p><a href="/">Back to the canaries</a></p>'
    )
    return page(Page(f"{status} {title}", body))


def banner(problem: Problem | None) -> str:
    if problem is None:
        return ""
    hint = f'<div class="muted">{e(problem.hint)}</div>' if problem.hint else ""
    return (
        f'<div class="banner" id="problem" role="alert"><strong>{e(problem.title)}</strong>'
        f"<div>{e(problem.detail)}</div>{hint}</div>"
    )


# --------------------------------------------------------------------------- the list


def _weights(status: Mapping[str, Any]) -> tuple[int, int]:
    canary = min(100, count(status.get("canaryWeight"), 0))
    return 100 - canary, canary


def _verdicts(status: Mapping[str, Any]) -> str:
    chips = []
    for metric in records(status.get("analysis")):
        outcome = string(metric.get("outcome")) or "?"
        chips.append(
            f'<span class="verdict outcome-{e(outcome)}" data-metric="{e(metric.get("name"))}" '
            f'title="{e(metric.get("summary"))}">{e(metric.get("name"))}: {e(outcome)}</span>'
        )
    return "".join(chips) or '<span class="muted">-</span>'


def list_live(
    canaries: Sequence[Mapping[str, Any]],
    problem: Problem | None,
    namespaces: Sequence[str] | None,
    now: datetime,
) -> str:
    where = "all namespaces" if not namespaces else "namespaces " + ", ".join(namespaces)
    head = f'<h2>Canaries <span class="muted">({e(where)})</span></h2>'
    if not canaries:
        empty = "" if problem else f'<p class="muted" id="empty">No canaries in {e(where)}.</p>'
        return banner(problem) + head + empty
    rows = []
    for obj in canaries:
        row = canary_row(obj)
        status = mapping(obj.get("status"))
        primary, canary = _weights(status)
        phase = row["phase"] or "-"
        flags = []
        if row["paused"]:
            flags.append("paused")
        if row["suspended"]:
            flags.append("suspended")
        flag_text = f' <span class="muted">{e(", ".join(flags))}</span>' if flags else ""
        rows.append(
            f'<tr data-canary="{e(row["namespace"])}/{e(row["name"])}" '
            f'data-phase="{e(row["phase"])}" data-weight="{canary}">'
            f'<td><a href="{e(canary_path(row["namespace"], row["name"]))}">{e(row["name"])}</a></td>'
            f"<td>{e(row['namespace'])}</td>"
            f'<td><span class="phase phase-{e(phase)}">{e(phase)}</span>{flag_text}</td>'
            f'<td class="num weight">{canary}% / {primary}%</td>'
            f'<td class="num">{row["failedChecks"]}</td>'
            f'<td class="mono" title="{e(row["currentRevision"])}">'
            f"{e(short_revision(row['currentRevision']))}</td>"
            f"<td>{_verdicts(status)}</td>"
            f'<td class="num">{e(age(row["creationTimestamp"], now))}</td>'
            "</tr>"
        )
    table = (
        '<table id="canaries"><thead><tr><th>Name</th><th>Namespace</th><th>Phase</th>'
        '<th class="num">Weight canary / primary</th><th class="num">Failed checks</th>'
        "<th>Revision</th><th>Last verdicts</th>"
        '<th class="num">Age</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>"
    )
    return banner(problem) + head + table


# --------------------------------------------------------------------------- one canary


def detail_live(detail: Detail, problem: Problem | None, now: datetime) -> str:
    obj = detail.obj
    row = canary_row(obj)
    status = mapping(obj.get("status"))
    primary, canary = _weights(status)
    phase = row["phase"] or "not started"
    parts = [banner(problem)]
    parts.append(
        f'<h2 id="title" data-phase="{e(row["phase"])}" data-weight="{canary}">'
        f'{e(row["name"])}<span class="muted">.{e(row["namespace"])}</span> '
        f'<span class="phase phase-{e(phase)}" id="phase">{e(phase)}</span></h2>'
    )
    facts = [
        (
            "Traffic",
            f'<progress max="100" value="{canary}"></progress> '
            f'<span id="weight">canary {canary}% / primary {primary}%</span>',
        ),
        ("Failed checks", e(row["failedChecks"])),
        ("Revision", f"<code>{e(row['currentRevision'] or '-')}</code>"),
        ("Last good revision", f"<code>{e(row['lastGoodRevision'] or '-')}</code>"),
        ("Last transition", e(age(row["lastTransitionTime"], now)) + " ago"),
    ]
    if row["paused"]:
        facts.append(("Paused", "yes (canary resume continues it)"))
    if row["suspended"]:
        facts.append(("Suspended", "spec.suspend: true"))
    message = string(status.get("message"))
    if message:
        facts.append(("Message", f'<span id="message">{e(message)}</span>'))
    parts.append(
        '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"
    )
    parts.append('<h2>Decision</h2><div class="picture" id="picture">' + detail.picture + "</div>")
    parts.append(_verdict_table(status))
    parts.append(_gates(detail))
    parts.append(_revert(status, detail.links))
    parts.append(_workloads(detail.workloads))
    parts.append(_events(detail.events, now))
    return "".join(parts)


def _verdict_table(status: Mapping[str, Any]) -> str:
    rows = []
    for metric in records(status.get("analysis")):
        outcome = string(metric.get("outcome")) or "?"
        value = number(metric.get("value"))
        shown = "-" if value is None else f"{value:g}"
        rows.append(
            f'<tr data-metric="{e(metric.get("name"))}" data-outcome="{e(outcome)}">'
            f"<td>{e(metric.get('name'))}</td>"
            f'<td><span class="verdict outcome-{e(outcome)}">{e(outcome)}</span></td>'
            f'<td class="num">{e(shown)}</td><td>{e(metric.get("threshold") or "-")}</td>'
            f'<td>{e(metric.get("summary"))}</td><td class="mono">{e(metric.get("time"))}</td>'
            "</tr>"
        )
    if not rows:
        return '<h2>Verdicts</h2><p class="muted" id="verdicts">No verdicts yet.</p>'
    return (
        '<h2>Verdicts</h2><table id="verdicts"><thead><tr><th>Metric</th><th>Verdict</th>'
        '<th class="num">Value</th><th>Threshold</th><th>Summary</th><th>Time</th></tr></thead>'
        "<tbody>" + "".join(rows) + "</tbody></table>"
    )


def _gates(detail: Detail) -> str:
    if not detail.write_enabled:
        return (
            '<h2>Gates</h2><p class="muted" id="gates">Read-only: the gates (promote, abort, '
            "retry, pause, resume) appear when the dashboard runs with --enable-write.</p>"
        )
    meta = mapping(detail.obj.get("metadata"))
    base = canary_path(string(meta.get("namespace")), string(meta.get("name")))
    forms = []
    for gate in detail.gates:
        disabled = " disabled" if gate.refused else ""
        title = gate.refused or gate.effect
        danger = ' class="danger"' if gate.command == "abort" else ""
        forms.append(
            f'<form method="post" action="{e(base)}/gates/{e(gate.command)}">'
            f'<input type="hidden" name="csrf" value="{e(detail.csrf)}">'
            f'<button type="submit" name="gate" value="{e(gate.command)}" id="gate-{e(gate.command)}"'
            f'{danger} title="{e(title)}"{disabled}>{e(gate.label)}</button></form>'
        )
    return (
        '<h2>Gates</h2><div class="gates" id="gates">'
        + "".join(forms)
        + '</div><p class="muted">Each button writes the annotation that <code>canary '
        "&lt;gate&gt;</code> writes; the controller acts on it at its next tick.</p>"
    )


def _link(url: str, text: str) -> str:
    if url.startswith(("https://", "http://")):
        return f'<a href="{e(url)}" rel="noopener noreferrer">{e(text)}</a>'
    return e(text)


def _revert(status: Mapping[str, Any], links: RevertLinks) -> str:
    revert = status.get("gitRevert")
    source = (
        f'<p class="muted">Repository: {_link(links.web_url, links.web_url)} ({e(links.found)})</p>'
        if links.web_url
        else ""
    )
    if not isinstance(revert, Mapping):
        return '<h2>Git revert</h2><p class="muted" id="revert">No Git revert.</p>' + source
    state = string(revert.get("state")) or "?"
    commit = string(revert.get("commit"))
    pull = string(revert.get("pullRequest"))
    facts = [
        ("State", f'<span class="revert-{e(state)}" id="revert-state">{e(state)}</span>'),
        ("Bad revision", f"<code>{e(revert.get('badRevision') or '-')}</code>"),
        ("Good revision", f"<code>{e(revert.get('goodRevision') or '-')}</code>"),
    ]
    if commit:
        facts.append(
            ("Commit", f'<span id="revert-commit">{_link(links.commit_url, commit[:12])}</span>')
        )
    if pull:
        facts.append(("Pull request", f'<span id="revert-pr">{_link(pull, pull)}</span>'))
    attempts = count(revert.get("attempts"), 0)
    if attempts > 1:
        facts.append(("Attempts", e(attempts)))
    why = string(revert.get("message")) or string(revert.get("reason"))
    if why:
        facts.append(("Message", e(why)))
    return (
        '<h2>Git revert</h2><dl class="facts" id="revert">'
        + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
        + "</dl>"
        + source
    )


def _workloads(workloads: Sequence[Mapping[str, Any]]) -> str:
    if not workloads:
        return ""
    rows = "".join(
        f"<tr><td>{e(w.get('role'))}</td><td>{e(w.get('kind'))}/{e(w.get('name'))}</td>"
        f'<td class="mono">{e(", ".join(str(i) for i in w.get("images") or ()) or "-")}</td>'
        f'<td class="num">{e(w.get("readyReplicas"))}/{e(w.get("replicas"))}</td>'
        f"<td>{e(w.get('message'))}</td></tr>"
        for w in workloads
    )
    return (
        '<h2>Workloads</h2><table id="workloads"><thead><tr><th>Role</th><th>Workload</th>'
        '<th>Images</th><th class="num">Ready</th><th>State</th></tr></thead><tbody>'
        + rows
        + "</tbody></table>"
    )


def _events(events: Sequence[Mapping[str, Any]], now: datetime) -> str:
    if not events:
        return ""
    rows = "".join(
        f"<tr><td>{e(ev.get('type'))}</td><td>{e(ev.get('reason'))}</td>"
        f'<td class="num">{e(age(string(ev.get("lastTimestamp")), now))}</td>'
        f"<td>{e(ev.get('message'))}</td></tr>"
        for ev in reversed(list(events))
    )
    return (
        '<h2>Recent events</h2><table id="events"><thead><tr><th>Type</th><th>Reason</th>'
        '<th class="num">Age</th><th>Message</th></tr></thead><tbody>' + rows + "</tbody></table>"
    )
