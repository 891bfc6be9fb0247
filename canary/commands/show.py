"""``canary get`` and ``canary status``: what the canaries are doing, read from the API server.

Why: ``kubectl get canaries`` shows Flagger's printer columns, but not what an operator asks
during a release — how far the traffic shift is, which metric failed and why, whether the bad
revision was reverted in Git, and what the controller said lately. ``get`` is the one-line-per-
canary overview (with our revision columns); ``status NAME`` is the whole story of one canary
(phase, a progress bar towards maxWeight or the iterations, the last verdict of every metric,
the verdicts of the run over time (canary.commands.history; ``--history`` adds the earlier
runs), the Git revert, the conditions, the pending commands and the recent Events). ``-w`` keeps
either on screen and re-renders when something changes (polling once a second: simple, and it
survives API server restarts); with ``-o json|yaml`` it prints one document per change.

The data is gathered into plain dicts first (also the JSON output), then rendered; rendering is
pure, so it is tested without a cluster.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from canary.commands._common import (
    EXIT_FAILURE,
    Output,
    dump,
    fail,
    json_text,
    out,
    write_stdout,
)
from canary.commands.cluster import (
    API_VERSION,
    CANARY_KIND,
    ClusterOptions,
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    resolve_context,
    run_with_kube,
)
from canary.commands.history import history_view, requests_text, value_text
from canary.commands.stored import (
    count,
    mapping,
    parse_time,
    printable_tree,
    records,
    string,
    strings,
)

__all__ = [
    "age",
    "canary_detail",
    "canary_row",
    "event_row",
    "get_command",
    "list_canaries",
    "read_detail",
    "read_events",
    "render_detail",
    "render_rows",
    "short_revision",
    "status_command",
    "watch_loop",
]

T = TypeVar("T")

PHASE_STYLES = {
    "Succeeded": "bold green",
    "Failed": "bold red",
    "Progressing": "cyan",
    "Promoting": "bold cyan",
    "Finalising": "bold cyan",
    "Waiting": "yellow",
    "WaitingPromotion": "yellow",
    "Initializing": "blue",
    "Initialized": "blue",
    "Terminating": "magenta",
    "Terminated": "magenta",
}
OUTCOME_STYLES = {
    "Pass": "green",
    "Fail": "red",
    "Error": "red",
    "Inconclusive": "yellow",
    "NoData": "yellow",
}
FINISHED_PHASES = ("Promoting", "Finalising", "Succeeded")
DEFAULT_EVENTS = 10
POLL_SECONDS = 1.0
_SHA = re.compile(r"^(?P<head>.*?)(?:sha1:)?(?P<sha>[0-9a-f]{12,64})$")

WatchOpt = Annotated[
    bool,
    typer.Option("--watch", "-w", help="Keep watching; re-render on every change (Ctrl-C ends)."),
]
OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="text for people; json or yaml for scripts.")
]


# --------------------------------------------------------------------------- data


def _paused(meta: Mapping[str, Any]) -> bool:
    from canary.model.commands import PAUSED

    value = mapping(meta.get("annotations")).get(PAUSED)
    return isinstance(value, str) and value.strip().lower() in ("true", "yes", "1")


def canary_row(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The overview of one Canary (one table row, one JSON object of ``get``)."""
    meta, spec, status = (mapping(obj.get(k)) for k in ("metadata", "spec", "status"))
    return {
        "name": string(meta.get("name")),
        "namespace": string(meta.get("namespace")),
        "phase": string(status.get("phase")),
        "paused": _paused(meta),
        "suspended": spec.get("suspend") is True,
        "canaryWeight": count(status.get("canaryWeight"), 0),
        "failedChecks": count(status.get("failedChecks"), 0),
        "iterations": count(status.get("iterations"), 0),
        "currentRevision": string(status.get("currentRevision")),
        "lastGoodRevision": string(status.get("lastGoodRevision")),
        "lastTransitionTime": string(status.get("lastTransitionTime")),
        "creationTimestamp": string(meta.get("creationTimestamp")),
    }


def _plan(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Strategy and the scale of the progress bar, from the spec (parsed like the controller)."""
    from canary.model import SpecError, parse_canary

    try:
        canary = parse_canary(obj)
    except SpecError as exc:
        raw = mapping(mapping(obj.get("spec")).get("analysis"))
        iterations = count(raw.get("iterations"), 0)
        weights = raw.get("stepWeights")
        last_step = count(weights[-1]) if isinstance(weights, list) and weights else None
        max_weight = last_step if last_step is not None else count(raw.get("maxWeight")) or 100
        return {
            "strategy": "blue-green" if iterations else "canary",
            "provider": string(mapping(obj.get("spec")).get("provider")),
            "target": "",
            "maxWeight": max_weight,
            "stepWeight": count(raw.get("stepWeight"), 0),
            "maxIterations": iterations,
            "threshold": count(raw.get("threshold"), 0),
            "specErrors": [str(issue) for issue in exc.errors],
        }
    analysis = canary.spec.analysis_or_default
    target = canary.spec.target_ref
    return {
        "strategy": analysis.strategy.value,
        "provider": canary.spec.provider or "",
        "target": f"{target.kind}/{target.name}",
        "maxWeight": analysis.max_weight,
        "stepWeight": analysis.step_weight,
        "stepWeights": list(analysis.step_weights),
        "maxIterations": analysis.iterations,
        "threshold": analysis.threshold,
        "specErrors": [],
    }


def _pending_commands(meta: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, str]:
    from canary.model.commands import ONE_SHOT

    annotations = mapping(meta.get("annotations"))
    handled = mapping(status.get("handledCommands"))
    pending = {}
    for key, annotation in ONE_SHOT.items():
        value = annotations.get(annotation)
        if isinstance(value, str) and value and handled.get(key) != value:
            pending[key] = value
    return pending


def event_row(obj: Mapping[str, Any]) -> dict[str, Any]:
    """One Event as ``status`` and the dashboard show it (its time: the last it happened)."""
    meta = mapping(obj.get("metadata"))
    last = (
        string(obj.get("lastTimestamp"))
        or string(obj.get("eventTime"))
        or string(obj.get("firstTimestamp"))
        or string(meta.get("creationTimestamp"))
    )
    return {
        "type": string(obj.get("type")) or "Normal",
        "reason": string(obj.get("reason")),
        "message": string(obj.get("message")),
        "count": count(obj.get("count")) or 1,
        "lastTimestamp": last,
    }


def canary_detail(
    obj: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    workloads: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Everything ``status`` shows about one Canary (also its JSON output)."""
    meta, status = mapping(obj.get("metadata")), mapping(obj.get("status"))
    detail = canary_row(obj)
    detail.update(_plan(obj))
    revert = status.get("gitRevert")
    detail.update(
        {
            "inconclusiveChecks": count(status.get("inconclusiveChecks"), 0),
            "message": string(status.get("message")),
            "analysis": [dict(m) for m in records(status.get("analysis"))],
            "analysisHistory": [dict(r) for r in records(status.get("analysisHistory"))],
            "stalled": string(status.get("stalled")),
            "pendingAlerts": [
                {
                    "kind": string(a.get("kind")),
                    "created": string(a.get("created")),
                    "destinations": strings(a.get("destinations")),
                }
                for a in records(status.get("pendingAlerts"))
            ],
            "gitRevert": dict(revert) if isinstance(revert, Mapping) else None,
            "knownBad": [dict(k) for k in records(status.get("knownBad"))],
            "refused": string(status.get("refused")),
            "conditions": [dict(c) for c in records(status.get("conditions"))],
            "pendingCommands": _pending_commands(meta, status),
            "handledCommands": dict(mapping(status.get("handledCommands"))),
            "workloads": [dict(w) for w in workloads],
            "events": [event_row(e) for e in events],
        }
    )
    return detail


def _percent(value: Any) -> int:
    return (
        value
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100
        else 100
    )


_MISSING = {
    "primary": "not created yet (the controller creates it on its first pass)",
    "canary": "not found",
}


def workload_row(
    role: str,
    ref: Mapping[str, str],
    obj: Mapping[str, Any] | None,
    *,
    threshold: int = 100,
    deadline_seconds: int = 600,
    now: datetime | None = None,
    error: str = "",
) -> dict[str, Any]:
    """The primary or the canary (the target) as ``status`` shows it: images, replicas the way
    ``kubectl get`` counts them, and the controller's readiness verdict (``message`` says why
    not). ``obj`` is None when the workload does not exist (or could not be read: ``error``)."""
    from canary.adapters.readiness import readiness

    row: dict[str, Any] = {
        "role": role,
        "kind": ref["kind"],
        "name": ref["name"],
        "found": obj is not None,
        "images": [],
        "replicas": 0,
        "readyReplicas": 0,
        "updatedReplicas": 0,
        "availableReplicas": 0,
        "ready": False,
        "message": error or ("" if obj is not None else _MISSING[role]),
    }
    if obj is None:
        return row
    spec, status = mapping(obj.get("spec")), mapping(obj.get("status"))
    containers = mapping(mapping(spec.get("template")).get("spec")).get("containers")
    row["images"] = [string(c.get("image")) for c in records(containers) if string(c.get("image"))]
    if ref["kind"] == "DaemonSet":
        row["replicas"] = count(status.get("desiredNumberScheduled"), 0)
        counts = ("numberReady", "updatedNumberScheduled", "numberAvailable")
    else:
        row["replicas"] = count(spec.get("replicas", 1), 0)  # 1: the API server's default
        counts = ("readyReplicas", "updatedReplicas", "availableReplicas")
    for field, key in zip(
        ("readyReplicas", "updatedReplicas", "availableReplicas"), counts, strict=True
    ):
        row[field] = count(status.get(key), 0)
    verdict = readiness(
        {"kind": ref["kind"], **obj}, threshold, deadline_seconds, now or datetime.now(UTC)
    )
    row["ready"] = verdict.ready
    row["message"] = "ready" if verdict.ready else verdict.message
    if row["replicas"] == 0 and ref["kind"] != "DaemonSet":
        row["message"] = "scaled to zero"
    return row


def _workload_refs(obj: Mapping[str, Any]) -> list[tuple[str, dict[str, str], int]]:
    """(role, reference, ready threshold) of the primary and the canary, from ``targetRef``."""
    spec = mapping(obj.get("spec"))
    target = mapping(spec.get("targetRef"))
    name = string(target.get("name"))
    if not name:
        return []
    kind = string(target.get("kind")) or "Deployment"
    api_version = string(target.get("apiVersion")) or "apps/v1"
    analysis = mapping(spec.get("analysis"))
    return [
        (
            "primary",
            {"apiVersion": api_version, "kind": kind, "name": f"{name}-primary"},
            _percent(analysis.get("primaryReadyThreshold")),
        ),
        (
            "canary",
            {"apiVersion": api_version, "kind": kind, "name": name},
            _percent(analysis.get("canaryReadyThreshold")),
        ),
    ]


# --------------------------------------------------------------------------- text


def age(value: str, now: datetime | None = None) -> str:
    """kubectl's short durations: 45s, 3m12s, 25m, 5h10m, 3d."""
    then = parse_time(value)
    if then is None:
        return "-"
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if days < 2:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def short_revision(revision: str) -> str:
    """``main@sha1:0123456789abcdef...`` → ``main@01234567``."""
    match = _SHA.match(revision)
    if not revision or match is None:
        return revision or "-"
    return f"{match.group('head')}{match.group('sha')[:8]}"


def _phase_text(row: Mapping[str, Any]) -> Text:
    phase = row["phase"] or "-"
    text = Text(phase, style=PHASE_STYLES.get(phase, ""))
    if row["suspended"]:
        text.append(" (suspended)", style="magenta")
    elif row["paused"]:
        text.append(" (paused)", style="magenta")
    return text


def render_rows(rows: Sequence[Mapping[str, Any]], now: datetime | None = None) -> RenderableType:
    """The ``get`` table: one line per canary (a value's control characters dropped, its line
    breaks made spaces: see `printable_tree`)."""
    rows = printable_tree(rows, newlines=False)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for header, justify in (
        ("NAME", "left"),
        ("NAMESPACE", "left"),
        ("STATUS", "left"),
        ("WEIGHT", "right"),
        ("FAILED", "right"),
        ("REVISION", "left"),
        ("LAST GOOD", "left"),
        ("LAST TRANSITION", "right"),
    ):
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            Text(row["name"]),
            Text(row["namespace"]),
            _phase_text(row),
            str(row["canaryWeight"]),
            Text(str(row["failedChecks"]), style="red" if row["failedChecks"] else ""),
            Text(short_revision(row["currentRevision"])),
            Text(short_revision(row["lastGoodRevision"])),
            age(row["lastTransitionTime"], now),
        )
    return table


def _progress(detail: Mapping[str, Any]) -> RenderableType:
    phase = detail["phase"]
    iterations = detail["strategy"] in ("blue-green", "ab-testing") and detail["maxIterations"]
    if iterations:
        total, done = detail["maxIterations"], detail["iterations"]
        label = f"{done}/{total} iterations"
    else:
        total, done = detail["maxWeight"] or 100, detail["canaryWeight"]
        label = f"weight {done}/{total}%"
    if phase in FINISHED_PHASES:
        done = total
        label = "promoted" if phase == "Succeeded" else f"promoting ({label})"
    elif phase == "Failed":
        label = f"rolled back ({label})"
    style = "red" if phase == "Failed" else ("green" if phase == "Succeeded" else "cyan")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_row(
        ProgressBar(
            total=max(total, 1),
            completed=min(done, total),
            width=30,
            complete_style=style,
            finished_style=style,
        ),
        Text(label),
    )
    return grid


def render_detail(
    detail: Mapping[str, Any], now: datetime | None = None, *, all_runs: bool = False
) -> RenderableType:
    """The ``status`` view of one canary (``all_runs``: the earlier runs' verdicts too).

    Every text of ``detail`` comes from the cluster (the status, the Events, the spec) and
    anyone who may edit the status may put a terminal escape sequence in it: the view is
    drawn from a copy without control characters (`printable_tree`), not field by field, so
    no field can be forgotten."""
    detail = printable_tree(detail)
    title = Text(f"{detail['name']}.{detail['namespace']}  ", style="bold")
    title.append_text(_phase_text(detail))
    parts: list[RenderableType] = [title, _info(detail, now)]
    if detail.get("workloads"):
        parts.append(_workloads(detail["workloads"]))
    if detail["analysis"]:
        parts.append(_metrics(detail["analysis"]))
    history = history_view(
        detail.get("analysisHistory") or (), detail["analysis"], all_runs=all_runs
    )
    if history is not None:
        parts.append(history)
    if detail["conditions"]:
        parts.append(_conditions(detail["conditions"], now))
    if detail["events"]:
        parts.append(_events(detail["events"], now))
    else:
        parts.append(Text("No events.", style="dim"))
    return Group(*parts)


def _info(detail: Mapping[str, Any], now: datetime | None = None) -> RenderableType:
    """The header's rows: what the canary is, how far it got, and what needs attention."""
    info = Table.grid(padding=(0, 2))
    info.add_column(style="dim", no_wrap=True)
    info.add_column()
    strategy = detail["strategy"] + (f" via {detail['provider']}" if detail["provider"] else "")
    if detail["target"]:
        info.add_row("Target", Text(f"{detail['target']}  ({strategy})"))
    else:
        info.add_row("Strategy", Text(strategy))
    info.add_row("Progress", _progress(detail))
    checks = f"{detail['failedChecks']}/{detail['threshold'] or '-'} failed checks"
    if detail["inconclusiveChecks"]:
        # ticks, any metric's (the judges count their own holds: "check 3 of 5")
        ticks = detail["inconclusiveChecks"]
        checks += f", inconclusive {ticks} tick{'' if ticks == 1 else 's'} in a row"
    info.add_row("Checks", Text(checks, style="red" if detail["failedChecks"] else ""))
    revision = detail["currentRevision"] or "-"
    info.add_row("Revision", Text(f"{revision}  (last good: {detail['lastGoodRevision'] or '-'})"))
    if detail["gitRevert"]:
        info.add_row(
            "Git revert", _revert(detail["gitRevert"], string(detail.get("currentRevision")))
        )
    if detail["refused"]:
        info.add_row("Not analysed", Text(detail["refused"], style="yellow"))
    if detail["knownBad"]:
        info.add_row("Known bad", _known_bad(detail["knownBad"]))
    stalled = detail.get("stalled")
    if stalled:
        info.add_row("Stalled", Text(stalled, style="bold yellow"))
    if detail.get("pendingAlerts"):
        info.add_row("Messages", _pending(detail["pendingAlerts"], now))
    if detail["message"] and detail["message"] != f"Analysis stalled: {stalled}":
        info.add_row("Message", Text(detail["message"]))
    for problem in detail.get("specErrors") or ():
        info.add_row("Spec error", Text(problem, style="red"))
    pending = detail["pendingCommands"]
    if pending:
        info.add_row(
            "Pending",
            Text("\n".join(f"{key}: {token}" for key, token in pending.items()), style="yellow"),
        )
    return info


def _pending(pending: Sequence[Mapping[str, Any]], now: datetime | None) -> Text:
    """Messages recorded but not yet delivered (``status.pendingAlerts``): kind, age, to whom."""
    lines = [
        f"{p['kind']} waiting {age(p['created'], now)} for {', '.join(p['destinations']) or '-'}"
        for p in pending
    ]
    return Text("\n".join(lines), style="yellow")


def _revert(revert: Mapping[str, Any], current_revision: str = "") -> Text:
    """The Git revert's state (coloured by how it went), revisions, commit or pull request;
    labelled as an earlier run's when it is not about the revision under analysis now."""
    state = string(revert.get("state"))
    style = (
        "red"
        if state in ("Failed", "Unresolved")
        else ("yellow" if state in ("Pending", "Proposed") else "green")
    )
    text = Text(state, style=style)
    bad, good = string(revert.get("badRevision")), string(revert.get("goodRevision"))
    extra = [f"{bad or '?'} → {good or '?'}"]
    if commit := string(revert.get("commit")):
        extra.append(f"commit {commit[:12]}")
    if pull_request := string(revert.get("pullRequest")):
        extra.append(f"pull request {pull_request}")
    if (attempts := count(revert.get("attempts"), 0)) > 1:
        extra.append(f"{attempts} attempts")
    text.append("  " + ", ".join(extra))
    if current_revision and bad and bad != current_revision:
        text.append(f"  (an earlier run's: {bad} failed before {current_revision})", style="dim")
    if why := string(revert.get("message")) or string(revert.get("reason")):
        text.append(f"\n{why}", style="dim")
    return text


def _known_bad(known_bad: Sequence[Mapping[str, Any]]) -> Text:
    """The last three revisions known to fail, with their images (or "configuration")."""
    return Text(
        "\n".join(
            f"{string(k.get('revision')) or '?'}  "
            f"{', '.join(strings(k.get('images'))) or 'configuration'}  "
            f"({string(k.get('failedAt'))})"
            for k in known_bad[-3:]
        ),
        style="dim",
    )


def _section(title: str, headers: Sequence[str]) -> Table:
    """A titled table of the status view; its last column (the prose) folds, the others cut."""
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
    )
    for header in headers:
        table.add_column(header, overflow="fold" if header == headers[-1] else "ellipsis")
    return table


def _workloads(workloads: Sequence[Mapping[str, Any]]) -> Table:
    """The primary and the canary: images, replicas as ``kubectl get`` counts them, readiness."""
    table = _section(
        "Workloads", ("ROLE", "NAME", "IMAGES", "READY", "UP-TO-DATE", "AVAILABLE", "STATUS")
    )
    table.columns[2].overflow = "fold"  # an image reference is never cut short
    for row in workloads:
        if not row["found"]:
            style = "dim" if row["message"] == _MISSING["primary"] else "red"
            table.add_row(
                Text(row["role"]),
                Text(row["name"]),
                "-",
                "-",
                "-",
                "-",
                Text(row["message"], style=style),
            )
            continue
        style = (
            "green" if row["ready"] else ("dim" if row["message"] == "scaled to zero" else "yellow")
        )
        table.add_row(
            Text(row["role"]),
            Text(row["name"]),
            Text("\n".join(row["images"]) or "-"),
            f"{row['readyReplicas']}/{row['replicas']}",
            str(row["updatedReplicas"]),
            str(row["availableReplicas"]),
            Text(row["message"], style=style),
        )
    return table


def _metrics(analysis: Sequence[Mapping[str, Any]]) -> Table:
    """The last verdict of each metric; REQUESTS (canary / primary, and the canary requests
    needed to detect the configured effect) when a metric is compared with the primary."""
    compared = any(requests_text(m) != "-" for m in analysis)
    headers = ("NAME", "OUTCOME", "VALUE", "THRESHOLD") + (("REQUESTS",) if compared else ())
    metrics = _section("Metrics", (*headers, "SUMMARY"))
    for metric in analysis:
        outcome = string(metric.get("outcome"))
        name = Text(string(metric.get("name")))
        if metric.get("advisory") is True:
            name.append(" (advisory)", style="dim")
        style = "dim" if metric.get("advisory") is True else OUTCOME_STYLES.get(outcome, "")
        cells: list[RenderableType] = [
            name,
            Text(outcome or "-", style=style),
            value_text(metric.get("value")),
            Text(string(metric.get("threshold")) or "-"),
        ]
        if compared:
            cells.append(Text(requests_text(metric)))
        metrics.add_row(*cells, Text(string(metric.get("summary"))))
    return metrics


def _conditions(found: Iterable[Mapping[str, Any]], now: datetime | None) -> Table:
    conditions = _section("Conditions", ("TYPE", "STATUS", "REASON", "AGE", "MESSAGE"))
    for condition in found:
        state = string(condition.get("status"))
        conditions.add_row(
            Text(string(condition.get("type"))),
            Text(state, style="green" if state == "True" else ("red" if state == "False" else "")),
            Text(string(condition.get("reason"))),
            age(string(condition.get("lastTransitionTime")), now),
            Text(string(condition.get("message"))),
        )
    return conditions


def _events(found: Iterable[Mapping[str, Any]], now: datetime | None) -> Table:
    events = _section("Events", ("AGE", "TYPE", "REASON", "MESSAGE"))
    for event in found:
        count = f" (x{event['count']})" if event["count"] > 1 else ""
        events.add_row(
            age(event["lastTimestamp"], now),
            Text(event["type"], style="yellow" if event["type"] == "Warning" else ""),
            Text(event["reason"]),
            Text(event["message"] + count),
        )
    return events


# --------------------------------------------------------------------------- reading


async def list_canaries(client: Any, namespace: str | None) -> list[dict[str, Any]]:
    items = await client.list(API_VERSION, CANARY_KIND, namespace)
    rows = [canary_row(item) for item in items]
    return sorted(rows, key=lambda r: (r["namespace"], r["name"]))


async def read_detail(client: Any, name: str, namespace: str, events: int) -> dict[str, Any] | None:
    obj = await client.get(API_VERSION, CANARY_KIND, name, namespace)
    if obj is None:
        return None
    found, workloads = await asyncio.gather(
        read_events(client, name, namespace, events), read_workloads(client, obj, namespace)
    )
    return canary_detail(obj, found, workloads)


async def read_events(client: Any, name: str, namespace: str, events: int) -> list[dict[str, Any]]:
    """The last ``events`` Events of a Canary, oldest first; none without the right to list them."""
    if events <= 0:
        return []
    from canary.ports import KubeError

    try:
        found: list[dict[str, Any]] = await client.list(
            "v1",
            "Event",
            namespace,
            field_selector=f"involvedObject.kind={CANARY_KIND},involvedObject.name={name}",
        )
    except KubeError:
        return []  # Events are a nicety: no permission to list them is not a failure
    found.sort(key=lambda e: event_row(e)["lastTimestamp"])
    return found[-events:]


async def read_workloads(
    client: Any, obj: Mapping[str, Any], namespace: str
) -> list[dict[str, Any]]:
    """The primary and the canary of ``obj`` (a Canary), read like the Canary itself."""
    from canary.ports import KubeError

    spec = mapping(obj.get("spec"))
    deadline = spec.get("progressDeadlineSeconds")
    deadline = deadline if isinstance(deadline, int) and not isinstance(deadline, bool) else 600

    async def one(role: str, ref: dict[str, str], threshold: int) -> dict[str, Any]:
        try:
            found = await client.get(ref["apiVersion"], ref["kind"], ref["name"], namespace)
        except KubeError as exc:  # no permission, or a kind the API server does not serve
            return workload_row(role, ref, None, error=f"cannot read: {exc}")
        return workload_row(role, ref, found, threshold=threshold, deadline_seconds=deadline)

    return list(await asyncio.gather(*(one(*entry) for entry in _workload_refs(obj))))


async def watch_loop(
    fetch: Callable[[], Awaitable[T]],
    show: Callable[[T], None],
    *,
    interval: float = POLL_SECONDS,
    until: Callable[[T], bool] | None = None,
) -> T:
    """Fetch every ``interval`` seconds and call ``show`` with each result that differs.

    Returns the first result for which ``until`` holds (never, without ``until``: Ctrl-C ends).
    """
    previous: Any = object()
    while True:
        current = await fetch()
        if current != previous:
            show(current)
            previous = current
        if until is not None and until(current):
            return current
        await asyncio.sleep(interval)


def _append(renderable: RenderableType) -> None:
    """Watching into a pipe or a log: each change printed after the previous one."""
    out.print(renderable)
    out.print()


def _stream(output: Output) -> Callable[[Any], None]:
    """Machine output of a watch: one JSON line (strict JSON), or one YAML document, per change."""

    def show(data: Any) -> None:
        if output is Output.JSON:
            write_stdout(json_text(data, compact=True) + "\n")
        else:
            write_stdout("---\n" + dump(data, output))

    return show


# --------------------------------------------------------------------------- commands


def get_command(
    name: Annotated[
        str | None,
        typer.Argument(metavar="NAME", help="One canary (default: all in the namespace)."),
    ] = None,
    namespace: NamespaceOpt = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Canaries of every namespace.")
    ] = False,
    output: OutputOpt = Output.TEXT,
    watch: WatchOpt = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """List canaries: phase, weight, failed checks, the revision under analysis and the last good one."""
    if name and all_namespaces:
        raise fail("a NAME and --all-namespaces exclude each other")
    if namespace and all_namespaces:
        raise fail("--namespace and --all-namespaces exclude each other")
    options = ClusterOptions(kubeconfig, context)
    scope = None if all_namespaces else (namespace or resolve_context(options).namespace)

    async def fetch(client: Any) -> list[dict[str, Any]]:
        rows = await list_canaries(client, scope)
        if name:
            rows = [r for r in rows if r["name"] == name]
        return rows

    def as_data(rows: list[dict[str, Any]]) -> Any:
        return rows[0] if name and rows else {"items": rows}

    async def work(client: Any) -> None:
        rows = await fetch(client)
        if name and not rows:
            raise fail(f"canary {name!r} not found in namespace {scope!r}", EXIT_FAILURE)
        if not watch:
            if output is Output.TEXT:
                if rows:
                    out.print(render_rows(rows))
                else:
                    where = "any namespace" if scope is None else f"namespace {scope!r}"
                    out.print(f"No canaries in {where}.", highlight=False)
            else:
                write_stdout(dump(as_data(rows), output))
            return
        if output is not Output.TEXT:
            show = _stream(output)
            await watch_loop(lambda: fetch(client), lambda rows: show(as_data(rows)))
            return
        if not out.is_terminal:  # a pipe or a log: append each change
            await watch_loop(lambda: fetch(client), lambda rows: _append(render_rows(rows)))
            return
        with Live(render_rows(rows), console=out, auto_refresh=False) as live:
            await watch_loop(
                lambda: fetch(client), lambda rows: live.update(render_rows(rows), refresh=True)
            )

    run_with_kube(options, work)


def status_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The canary.")],
    namespace: NamespaceOpt = None,
    output: OutputOpt = Output.TEXT,
    watch: WatchOpt = False,
    events: Annotated[
        int, typer.Option("--events", min=0, help="How many recent Events to show (0: none).")
    ] = DEFAULT_EVENTS,
    history: Annotated[
        bool,
        typer.Option(
            "--history", help="Also the verdicts of the earlier runs (the current run's always)."
        ),
    ] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """One canary in detail: progress, workloads, metric verdicts over time, Git revert, conditions, Events."""
    options = ClusterOptions(kubeconfig, context)
    scope = namespace or resolve_context(options).namespace

    async def work(client: Any) -> None:
        detail = await read_detail(client, name, scope, events)
        if detail is None:
            raise fail(f"canary {name!r} not found in namespace {scope!r}", EXIT_FAILURE)
        if not watch:
            if output is Output.TEXT:
                out.print(render_detail(detail, all_runs=history))
            else:
                write_stdout(dump(detail, output))
            return

        async def fetch() -> dict[str, Any] | None:
            return await read_detail(client, name, scope, events)

        def gone() -> RenderableType:
            return Text(f"canary {name}.{scope} does not exist (any more)", style="yellow")

        if output is not Output.TEXT:
            show = _stream(output)
            await watch_loop(
                fetch,
                lambda d: show(
                    d if d is not None else {"name": name, "namespace": scope, "deleted": True}
                ),
            )
            return

        def view(found: dict[str, Any] | None) -> RenderableType:
            return render_detail(found, all_runs=history) if found else gone()

        if not out.is_terminal:  # a pipe or a log: append each change
            await watch_loop(fetch, lambda found: _append(view(found)))
            return
        with Live(view(detail), console=out, auto_refresh=False) as live:
            await watch_loop(fetch, lambda found: live.update(view(found), refresh=True))

    run_with_kube(options, work)
