"""From an `Alert` to words people read: titles, facts, analysis lines and templates.

The core hands over an `Alert` carrying Flagger's exact sentence plus the facts
behind it (revisions, images, weights, each metric's verdict, the revert
commit). This module turns that into a provider-neutral `Message` — a title, a
body text, ordered facts and one line per metric — that every provider module
lays out in its own format. Keeping the wording here means Slack, Teams,
Discord, Google Chat, Rocket.Chat and the generic webhook tell the same story.

The body text can be replaced per AlertProvider with ``spec.messageTemplate``:
a deliberately tiny template language, ``{field}`` placeholders over the names
in `TEMPLATE_FIELDS` and ``{{``/``}}`` for literal braces. There are no
expressions, attribute lookups, filters or format specs, so a template cannot
execute code or reach into objects; an unknown field is an error found when the
template is compiled (`validate_template`), not when an alert is sent.

Everything here is pure: the time arrives in `RenderContext`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from canary.core.actions import Alert, AlertKind
from canary.errors import CanaryError
from canary.model.canary import Severity
from canary.model.status import MetricStatus

__all__ = [
    "MAX_TEMPLATE_LENGTH",
    "SEVERITY_COLOURS",
    "TEMPLATE_FIELDS",
    "CheckLine",
    "CommitLinker",
    "Message",
    "MessageTemplate",
    "NotificationTemplateError",
    "RenderContext",
    "check_line",
    "compile_template",
    "format_duration",
    "format_number",
    "now_utc",
    "render_message",
    "template_fields",
    "truncate",
    "validate_template",
]

# Severity colours shared by every provider that has one: green, amber, red.
SEVERITY_COLOURS: Mapping[Severity, str] = {
    Severity.INFO: "#2eb886",
    Severity.WARN: "#daa038",
    Severity.ERROR: "#a30200",
}

_HEADLINES: Mapping[AlertKind, str] = {
    AlertKind.INITIALIZED: "Initialized",
    AlertKind.STARTED: "Analysis started",
    AlertKind.WAITING_APPROVAL: "Waiting for approval",
    AlertKind.WAITING_PROMOTION: "Waiting for promotion approval",
    AlertKind.WAITING_TRAFFIC_INCREASE: "Waiting for traffic increase approval",
    AlertKind.ROLLBACK_WEBHOOK: "Rolled back by webhook",
    AlertKind.ABORTED: "Aborted",
    AlertKind.THRESHOLD_REACHED: "Rolled back: checks failed",
    AlertKind.REGRESSION: "Rolled back: conclusively worse than the primary",
    AlertKind.PROGRESS_DEADLINE: "Rolled back: progress deadline exceeded",
    AlertKind.PROMOTION_FAILED: "Promotion failed",
    AlertKind.PROMOTED: "Promoted",
    AlertKind.SKIPPED: "Promoted without analysis",
    AlertKind.INCONCLUSIVE: "Analysis inconclusive",
    AlertKind.ANALYSIS_STALLED: "Analysis stalled",
    AlertKind.REVERTED: "Reverted in Git",
    AlertKind.REVERT_PROPOSED: "Revert proposed in a pull request",
    AlertKind.REVERT_FAILED: "Git revert failed",
    AlertKind.KNOWN_BAD: "Known-bad release not analysed",
}

_PROMOTIONS = frozenset({AlertKind.PROMOTED, AlertKind.SKIPPED})
_ROLLBACKS = frozenset(
    {
        AlertKind.ROLLBACK_WEBHOOK,
        AlertKind.ABORTED,
        AlertKind.THRESHOLD_REACHED,
        AlertKind.REGRESSION,
        AlertKind.PROGRESS_DEADLINE,
        AlertKind.PROMOTION_FAILED,
    }
)
_NOT_PASSING = frozenset({"Fail", "Error", "NoData", "Inconclusive"})
_FAILING = frozenset({"Fail", "Error", "NoData"})
# Alerts whose message is their headline and the summaries of the checks behind them,
# which the text lists one check per line with its numbers: the message is not repeated.
_TOLD_BY_THE_CHECKS = frozenset({AlertKind.REGRESSION, AlertKind.INCONCLUSIVE})
_OUTCOME_WORDS: Mapping[str, str] = {
    "Pass": "passed",
    "Fail": "FAILED",
    "Inconclusive": "inconclusive",
    "NoData": "no data",
    "Error": "error",
}

CommitLinker = Callable[[str, str], str | None]
"""``(namespace, commit) -> URL or None``: how the controller links a commit (it knows the repository)."""


@dataclass(frozen=True, slots=True)
class RenderContext:
    """What a message needs besides the alert: the cluster name and the time."""

    now: datetime
    cluster: str = ""
    commit_link: CommitLinker | None = None


@dataclass(frozen=True, slots=True)
class CheckLine:
    """One metric of the analysis, as a sentence with its numbers."""

    name: str
    outcome: str
    text: str

    @property
    def passing(self) -> bool:
        return self.outcome == "Pass"


@dataclass(frozen=True, slots=True)
class Message:
    """A provider-neutral message; providers only lay it out."""

    alert: Alert
    title: str
    text: str  # the body: the default text or the rendered messageTemplate
    facts: tuple[tuple[str, str], ...]
    checks: tuple[CheckLine, ...]
    context: str  # a short footer: canary, cluster, kind
    cluster: str
    timestamp: datetime
    commit_url: str | None = None

    @property
    def severity(self) -> Severity:
        return self.alert.severity

    @property
    def colour(self) -> str:
        return SEVERITY_COLOURS[self.alert.severity]

    @property
    def subject(self) -> str:
        """``name.namespace``, the way Flagger names a canary in messages."""
        return _subject(self.alert)

    @property
    def plain(self) -> str:
        """Title and body in one plain-text string (notification fallbacks)."""
        return f"{self.title}\n{self.text}" if self.text else self.title

    @property
    def analysis_text(self) -> str:
        return "\n".join(c.text for c in self.checks)


# --------------------------------------------------------------------- formatting


def format_number(value: float | None) -> str:
    if value is None:
        return ""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0 or math.isnan(seconds):
        return ""
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"


def _subject(alert: Alert) -> str:
    if alert.canary_name and alert.namespace:
        return f"{alert.canary_name}.{alert.namespace}"
    return alert.canary_name or alert.namespace or "canary"


def _short(commit: str) -> str:
    return commit[:12] if re.fullmatch(r"[0-9a-f]{13,64}", commit) else commit


def _version(revision: str, images: tuple[str, ...]) -> str:
    if revision and images:
        return f"{revision} ({', '.join(images)})"
    return revision or ", ".join(images)


def check_line(metric: MetricStatus) -> CheckLine:
    numbers = []
    if metric.value is not None:
        numbers.append(f"value {format_number(metric.value)}")
    if metric.threshold:
        numbers.append(f"threshold {metric.threshold}")
    if metric.primary_value is not None:
        numbers.append(f"primary {format_number(metric.primary_value)}")
    word = _OUTCOME_WORDS.get(metric.outcome, metric.outcome)
    if metric.advisory:
        word += " (advisory, dryRun: not acted on)"
    text = f"{metric.name} {word}"
    if numbers:
        text += f" ({', '.join(numbers)})"
    if metric.summary:
        text += f": {metric.summary}"
    return CheckLine(name=metric.name, outcome=metric.outcome, text=text)


# ------------------------------------------------------------------- default text


def _default_text(alert: Alert, commit_ref: str) -> str:
    version = _version(alert.revision, alert.images)
    previous = _version(alert.previous_revision, alert.previous_images)
    if previous == version:
        previous = ""  # the status already records the new revision as the good one
    told = alert.kind in _TOLD_BY_THE_CHECKS and _checks_behind(alert)
    lines = [alert.message] if alert.message and not told else []
    return "\n".join(lines + _story(alert, version, previous, commit_ref))


def _checks_behind(alert: Alert) -> list[MetricStatus]:
    """The binding checks that made a rollback fail, or an analysis not conclusive."""
    outcomes = _FAILING if alert.kind in _ROLLBACKS else _NOT_PASSING
    return [m for m in alert.analysis if m.outcome in outcomes and not m.advisory]


def _story(alert: Alert, version: str, previous: str, commit_ref: str) -> list[str]:
    """What happened, in the words that fit the kind of alert."""
    duration = format_duration(alert.duration_seconds)
    if alert.kind in _PROMOTIONS:
        lines = []
        if version:
            lines.append(
                f"Now serving {version}" + (f", replacing {previous}." if previous else ".")
            )
        if duration:
            lines.append(f"The release took {duration}.")
        return lines
    if alert.kind in _ROLLBACKS:
        return _rollback_story(alert, version, previous, duration)
    if alert.kind in (AlertKind.INCONCLUSIVE, AlertKind.ANALYSIS_STALLED):
        return [f"Not conclusive: {check_line(m).text}" for m in _checks_behind(alert)]
    if alert.kind is AlertKind.REVERTED:
        return [_reverted(version, previous, commit_ref, alert.pull_request)]
    if alert.kind is AlertKind.REVERT_PROPOSED:
        return [
            f"The branch is protected: merge pull request {alert.pull_request} to bring Git back"
            + (f" to {previous}." if previous else " to the last good revision.")
        ]
    if alert.kind is AlertKind.REVERT_FAILED and version:
        return [
            f"The cluster is back on the primary, but Git still holds {version}"
            + (f" (last good: {previous})." if previous else ".")
        ]
    if alert.kind is AlertKind.STARTED and version:
        return [f"Analysing {version}" + (f" against {previous}." if previous else ".")]
    return []


def _rollback_story(alert: Alert, version: str, previous: str, duration: str) -> list[str]:
    """What was rolled back, and the checks that made it fail."""
    lines = []
    if version:
        lines.append(f"Rolled back {version}" + (f" to {previous}." if previous else "."))
    at_weight = f", at canary weight {alert.weight}%." if alert.weight else "."
    if alert.kind is AlertKind.REGRESSION:
        # One significant finding decides (compare.failFast): no count of failed checks.
        lines.append("The statistical judge found it conclusively worse" + at_weight)
    elif alert.threshold:
        lines.append(
            f"Failed checks: {alert.failed_checks} of {alert.threshold} allowed" + at_weight
        )
    failing = _checks_behind(alert)
    lines.extend(f"Failed check: {check_line(m).text}" for m in failing)
    if not failing and alert.failure:
        lines.append(f"Failed check: {alert.failure}")
    if duration:
        lines.append(f"The analysis ran for {duration}.")
    return lines


def _reverted(version: str, previous: str, commit_ref: str, pull_request: str) -> str:
    what = f"Reverted {version}" if version else "Reverted the release"
    if previous:
        what += f" to {previous}"
    if commit_ref:
        what += f" with commit {commit_ref}"
    if pull_request:
        what += f" (pull request {pull_request} merged)"
    return what + "."


def _facts(alert: Alert, cluster: str, commit_ref: str) -> tuple[tuple[str, str], ...]:
    """The alert's facts as (name, value), ours first, then the alert's own fields that
    do not repeat one of ours."""
    facts = [*_release_facts(alert, cluster), *_run_facts(alert, commit_ref)]
    seen = {name.lower() for name, _ in facts}
    for name, value in alert.fields:
        if name.lower() not in seen and value:
            facts.append((name, value))
            seen.add(name.lower())
    return tuple(facts)


def _release_facts(alert: Alert, cluster: str) -> list[tuple[str, str]]:
    """Where, and which release replaces which."""
    facts: list[tuple[str, str]] = []
    if cluster:
        facts.append(("Cluster", cluster))
    if alert.target:
        facts.append(("Target", alert.target))
    if alert.revision:
        facts.append(("Revision", alert.revision))
    if alert.previous_revision and alert.previous_revision != alert.revision:
        facts.append(("Previous revision", alert.previous_revision))
    if alert.images:
        facts.append(("Image" if len(alert.images) == 1 else "Images", ", ".join(alert.images)))
    if alert.previous_images and alert.previous_images != alert.images:
        label = "Previous image" if len(alert.previous_images) == 1 else "Previous images"
        facts.append((label, ", ".join(alert.previous_images)))
    return facts


def _run_facts(alert: Alert, commit_ref: str) -> list[tuple[str, str]]:
    """How far the run got, and what was done in Git."""
    facts: list[tuple[str, str]] = []
    if alert.weight:
        facts.append(("Canary weight", f"{alert.weight}%"))
    # A conclusive regression rolls back on one finding: a count of checks is not its cause.
    counted = alert.kind is not AlertKind.REGRESSION
    if alert.threshold and counted and (alert.failed_checks or alert.kind in _ROLLBACKS):
        facts.append(("Failed checks", f"{alert.failed_checks} of {alert.threshold}"))
    duration = format_duration(alert.duration_seconds)
    if duration:
        facts.append(("Duration", duration))
    if commit_ref:
        facts.append(("Revert commit", commit_ref))
    if alert.pull_request:
        facts.append(("Pull request", alert.pull_request))
    return facts


# ---------------------------------------------------------------------- templates


class NotificationTemplateError(CanaryError, ValueError):
    """A messageTemplate that cannot be used; ``problems`` lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(problems))


TEMPLATE_FIELDS: Mapping[str, str] = {
    "canary": "the Canary's name",
    "namespace": "the Canary's namespace",
    "cluster": "the cluster name given to the controller (may be empty)",
    "kind": "why the alert was sent, e.g. Promoted, ThresholdReached, GitReverted",
    "severity": "info, warn or error",
    "title": "the headline, e.g. 'Promoted: podinfo.test'",
    "message": "Flagger's sentence for this alert, e.g. 'Failed checks threshold reached 5'",
    "text": "the default body text (what is sent without a template)",
    "target": "the workload, e.g. Deployment/podinfo.test",
    "revision": "the revision under analysis",
    "previousRevision": "the last good revision",
    "images": "the container images under analysis, comma separated",
    "previousImages": "the images of the last good revision",
    "weight": "the canary traffic weight in percent",
    "failedChecks": "the number of failed checks",
    "threshold": "how many failed checks cause a rollback",
    "duration": "how long the run took, e.g. 12m30s",
    "analysis": "one line per metric with its outcome, value, threshold and primary value",
    "failedAnalysis": "the lines of the metrics that did not pass",
    "revertCommit": "the Git commit that reverted the release",
    "revertCommitUrl": "a link to the revert commit, when the controller knows the repository",
    "pullRequest": "the revert's pull request (spec.gitops.revert.mode pullRequest)",
    "fields": "Flagger's metadata fields, one 'Name: value' per line",
    "timestamp": "when the alert was rendered (RFC 3339, UTC)",
}

MAX_TEMPLATE_LENGTH = 4000
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|\{|\}")


@dataclass(frozen=True, slots=True)
class _Field:
    name: str


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """A compiled messageTemplate: literal text and field references."""

    source: str
    parts: tuple[str | _Field, ...] = field(repr=False)

    def render(self, values: Mapping[str, str]) -> str:
        return "".join(p if isinstance(p, str) else values.get(p.name, "") for p in self.parts)


def _parse(text: str) -> tuple[tuple[str | _Field, ...], list[str]]:
    parts: list[str | _Field] = []
    problems: list[str] = []
    if len(text) > MAX_TEMPLATE_LENGTH:
        problems.append(
            f"the template is {len(text)} characters long; at most {MAX_TEMPLATE_LENGTH} are allowed"
        )
    position = 0
    for match in _TOKEN.finditer(text):
        if match.start() > position:
            parts.append(text[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token == "{{":
            parts.append("{")
        elif token == "}}":
            parts.append("}")
        elif token == "{":
            problems.append(
                f"unclosed '{{' at character {match.start() + 1} (write '{{{{' for a literal brace)"
            )
        elif token == "}":
            problems.append(
                f"single '}}' at character {match.start() + 1} (write '}}}}' for a literal brace)"
            )
        else:
            name = (match.group(1) or "").strip()
            if not name:
                problems.append(f"empty field '{{}}' at character {match.start() + 1}")
            elif name not in TEMPLATE_FIELDS:
                problems.append(
                    f"unknown field '{{{name}}}' at character {match.start() + 1}; "
                    f"known fields: {', '.join(TEMPLATE_FIELDS)}"
                )
            else:
                parts.append(_Field(name))
    if position < len(text):
        parts.append(text[position:])
    return tuple(parts), problems


def validate_template(text: str) -> list[str]:
    """Every problem of a messageTemplate (empty when it is usable)."""
    return _parse(text)[1]


def compile_template(text: str) -> MessageTemplate:
    """Compile a messageTemplate; raise `NotificationTemplateError` listing every problem."""
    parts, problems = _parse(text)
    if problems:
        raise NotificationTemplateError(problems)
    return MessageTemplate(source=text, parts=parts)


def template_fields(message: Message) -> dict[str, str]:
    """The values a template can use, all strings."""
    alert = message.alert
    return {
        "canary": alert.canary_name,
        "namespace": alert.namespace,
        "cluster": message.cluster,
        "kind": alert.kind.value,
        "severity": alert.severity.value,
        "title": message.title,
        "message": alert.message,
        "text": message.text,
        "target": alert.target,
        "revision": alert.revision,
        "previousRevision": alert.previous_revision,
        "images": ", ".join(alert.images),
        "previousImages": ", ".join(alert.previous_images),
        "weight": str(alert.weight),
        "failedChecks": str(alert.failed_checks),
        "threshold": str(alert.threshold),
        "duration": format_duration(alert.duration_seconds),
        "analysis": message.analysis_text,
        "failedAnalysis": "\n".join(c.text for c in message.checks if not c.passing),
        "revertCommit": alert.revert_commit,
        "revertCommitUrl": message.commit_url or "",
        "pullRequest": alert.pull_request,
        "fields": "\n".join(f"{name}: {value}" for name, value in alert.fields),
        "timestamp": message.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


# ------------------------------------------------------------------------ message


def render_message(
    alert: Alert, context: RenderContext, template: MessageTemplate | None = None
) -> Message:
    """The message for ``alert``; ``template`` (if any) replaces the body text."""
    commit_url = None
    if alert.revert_commit:
        if alert.revert_commit.startswith(("https://", "http://")):
            commit_url = alert.revert_commit
        elif context.commit_link is not None:
            commit_url = context.commit_link(alert.namespace, alert.revert_commit)
    commit_ref = alert.revert_commit
    if commit_ref and commit_url != commit_ref:
        commit_ref = (
            _short(commit_ref) if commit_url is None else f"{_short(commit_ref)} ({commit_url})"
        )
    headline = _HEADLINES.get(alert.kind, alert.kind.value)
    context_line = " · ".join(
        p
        for p in (
            f"{alert.namespace}/{alert.canary_name}" if alert.canary_name else "",
            context.cluster,
            alert.kind.value,
        )
        if p
    )
    message = Message(
        alert=alert,
        title=f"{headline}: {_subject(alert)}",
        text=_default_text(alert, commit_ref),
        facts=_facts(alert, context.cluster, commit_ref),
        checks=tuple(check_line(m) for m in alert.analysis),
        context=context_line,
        cluster=context.cluster,
        timestamp=context.now,
        commit_url=commit_url,
    )
    if template is None:
        return message
    rendered = template.render(template_fields(message)).strip()
    return replace(message, text=rendered)


def now_utc() -> datetime:
    return datetime.now(UTC)
