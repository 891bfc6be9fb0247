"""Conditions and transition times derived from the status fields.

Conditions are never decided separately: they are a function of the phase (the
``Promoted`` condition exactly as Flagger writes it, reference/flagger.md 1.2), of the Git
revert state (our ``GitReverted`` condition), of a known-bad release (``KnownBad``) and of a
stalled analysis (``AnalysisStalled``, present while ``status.stalled`` says what the
analysis needs). A condition keeps its lastTransitionTime while its status does not change;
``status.lastTransitionTime`` moves whenever any field people watch changes.

``Promoted`` says whether the target's *current* revision is promoted, so it never keeps the
last release's True once a new revision is seen. Two cases beyond Flagger's table: a new
revision that is detected but cannot start yet (the primary is not ready) is Unknown /
Progressing in the pass that sees it, and a known-bad release that is refused is False /
KnownBad. Every managed condition carries ``observedGeneration`` (the Canary's
metadata.generation the pass decided on), which ``kubectl wait`` compares with the spec's.
"""

from __future__ import annotations

from datetime import datetime

from canary.model.status import CanaryStatus, Condition, Phase, RevertState
from canary.timestamps import format_time

PROMOTED = "Promoted"
GIT_REVERTED = "GitReverted"
KNOWN_BAD = "KnownBad"
ANALYSIS_STALLED = "AnalysisStalled"
MANAGED = (PROMOTED, GIT_REVERTED, KNOWN_BAD, ANALYSIS_STALLED)


def _iso(moment: datetime) -> str:
    return format_time(moment)


def promoted_condition(phase: Phase, kind: str) -> tuple[str, str, str]:
    """(status, reason, message) of the Promoted condition for a phase."""
    table: dict[Phase, tuple[str, str]] = {
        Phase.INITIALIZED: ("True", f"{kind} initialization completed."),
        Phase.WAITING: ("Unknown", "Waiting for approval."),
        Phase.WAITING_PROMOTION: ("Unknown", "Waiting for approval."),
        Phase.PROGRESSING: ("Unknown", "New revision detected, progressing canary analysis."),
        Phase.PROMOTING: ("Unknown", "Canary analysis completed, starting primary rolling update."),
        Phase.FINALISING: ("Unknown", "Canary analysis completed, routing all traffic to primary."),
        Phase.SUCCEEDED: ("True", "Canary analysis completed successfully, promotion finished."),
        Phase.FAILED: ("False", f"Canary analysis failed, {kind} scaled to zero."),
        # Difference: Flagger falls through to the initialization message here.
        Phase.TERMINATING: ("Unknown", "Canary is being deleted, restoring the target."),
        Phase.TERMINATED: ("Unknown", "Canary deleted, the target serves traffic again."),
    }
    status, message = table.get(
        phase, ("Unknown", f"New {kind} detected, starting initialization.")
    )
    reason = phase.value or Phase.INITIALIZING.value
    return status, reason, message


def _revert_condition(status: CanaryStatus) -> tuple[str, str, str] | None:
    revert = status.git_revert
    if revert is None:
        return None
    state = revert.state
    if state is RevertState.PENDING:
        return (
            "Unknown",
            "Pending",
            f"Reverting {revert.bad_revision} to {revert.good_revision} in Git.",
        )
    if state is RevertState.PROPOSED:
        return (
            "Unknown",
            "PullRequestOpen",
            f"The revert of {revert.bad_revision} waits in pull request {revert.pull_request}.",
        )
    if state is RevertState.REVERTED:
        return "True", "Reverted", f"Reverted to {revert.good_revision} in commit {revert.commit}."
    if state is RevertState.ALREADY_REVERTED:
        if revert.pull_request:
            return (
                "True",
                "PullRequestMerged",
                f"Pull request {revert.pull_request} merged: Git holds {revert.good_revision}'s "
                "content.",
            )
        return "True", "AlreadyReverted", f"Git already holds {revert.good_revision}'s content."
    if state is RevertState.UNRESOLVED:
        return "False", "Unresolved", revert.message or "The revert needs a person."
    if state is RevertState.FAILED:
        return (
            "False",
            "RevertFailed",
            f"Cannot revert {revert.bad_revision} (attempt {revert.attempts}): {revert.message}",
        )
    if state is RevertState.SUPERSEDED:
        return "False", "Superseded", revert.message or "A newer change replaced the failed one."
    return "False", "Skipped", revert.message or "No revert was made."


PENDING_REVISION = (
    "Unknown",
    "Progressing",
    "New revision detected, waiting to start its analysis.",
)


def _promoted(status: CanaryStatus, kind: str, pending_revision: bool) -> tuple[str, str, str]:
    """The Promoted condition: the phase's (Flagger's table), unless the target's current
    revision is refused as known-bad or is new and not started yet (module docstring)."""
    if status.refused:
        return "False", "KnownBad", status.refused
    if pending_revision:
        return PENDING_REVISION
    return promoted_condition(status.phase, kind)


def _set(
    conditions: list[Condition],
    old: CanaryStatus,
    kind: str,
    value: tuple[str, str, str],
    now: str,
    generation: int,
) -> None:
    status, reason, message = value
    previous = old.condition(kind)
    if previous is not None and (
        previous.status,
        previous.reason,
        previous.message,
        previous.observed_generation,
    ) == (status, reason, message, generation):
        conditions.append(previous)
        return
    transition = (
        previous.last_transition_time if previous is not None and previous.status == status else now
    )
    conditions.append(Condition(kind, status, reason, message, now, transition or now, generation))


_WATCHED = (
    "phase",
    "canaryWeight",
    "failedChecks",
    "iterations",
    "lastAppliedSpec",
    "lastPromotedSpec",
    "gitRevert",
    "message",
    "stalled",
)


def with_conditions(
    status: CanaryStatus,
    old: CanaryStatus,
    kind: str,
    now: datetime,
    *,
    pending_revision: bool = False,
) -> CanaryStatus:
    """Fill in conditions and lastTransitionTime for a new status. ``pending_revision``: the
    target has a new revision the pass saw but did not start (the phase is still idle)."""
    stamp = _iso(now)
    generation = status.observed_generation
    conditions: list[Condition] = []
    promoted = _promoted(status, kind, pending_revision)
    _set(conditions, old, PROMOTED, promoted, stamp, generation)
    revert = _revert_condition(status)
    if revert is not None:
        _set(conditions, old, GIT_REVERTED, revert, stamp, generation)
    if status.refused:
        known_bad = ("True", "KnownBadRelease", status.refused)
        _set(conditions, old, KNOWN_BAD, known_bad, stamp, generation)
    if status.stalled:
        stalled = ("True", "InconclusiveBudgetSpent", status.stalled)
        _set(conditions, old, ANALYSIS_STALLED, stalled, stamp, generation)
    others = [c for c in status.conditions if c.type not in MANAGED]
    new = status.with_(conditions=tuple(conditions + others))
    before, after = old.to_dict(), new.to_dict()
    if any(before.get(k) != after.get(k) for k in _WATCHED) or not old.last_transition_time:
        new = new.with_(last_transition_time=stamp)
    return new
