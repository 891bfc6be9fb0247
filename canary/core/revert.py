"""Rollback by reverting Git: scheduling the revert and recording what the shell did.

A rollback fixes the cluster at once, but Git still declares the failed release, and the
GitOps reconciler would apply it again. So a rollback schedules a revert of the target's
change (``status.gitRevert``, Pending) and asks for the next pass at once; the idle ticks
after it ask the shell to revert (a `RevertRequest`) until the revert is done, proposed in
a pull request, superseded, or needs a person. The state lives in the status, so a
restarted controller carries on where the last one stopped.
"""

from __future__ import annotations

from dataclasses import replace

from canary.core.actions import AlertKind
from canary.core.observations import Outcome, RevertAnswer, RevertRequest, RevertResultKind
from canary.core.tick import Flow, Tick
from canary.core.times import iso, parse_iso
from canary.model.canary import Severity
from canary.model.status import GitRevertStatus, RevertState

REVERT_BACKOFF_SECONDS = 5.0  # a retriable Git failure: 5 s, 10 s, 20 s ... up to 5 min
REVERT_BACKOFF_MAX_SECONDS = 300.0

_WAITING = (RevertState.PENDING, RevertState.FAILED, RevertState.PROPOSED)


def replace_revert(revert: GitRevertStatus, **changes: object) -> GitRevertStatus:
    return replace(revert, **changes)  # type: ignore[arg-type]


def schedule_git_revert(t: Tick, reason: str) -> None:
    """After a rollback: a Pending revert, or a Skipped one saying why none can be made.

    Its reason is the rollback's, then each metric's finding that is not in it yet, named
    once (a judge's summary usually starts with the metric's name already)."""
    good = t.status.last_good_revision
    bad = t.status.current_revision
    details = [reason]
    for metric in t.status.analysis:
        summary = metric.summary
        if metric.outcome == Outcome.PASS.value or (summary and summary in reason):
            continue  # a conclusive rollback's reason already quotes its finding
        if summary.startswith(metric.name):  # the judge's words name it already
            details.append(summary)
        else:
            details.append(f"{metric.name}: {summary}" if summary else metric.name)
    text = "; ".join(details)
    skipped = _why_no_revert(t, good, bad)
    if skipped:
        revert = GitRevertStatus(RevertState.SKIPPED, good, bad, text, message=skipped)
    else:
        known = t.status.known_bad[-1:] if t.status.known_bad else ()
        images = known[0].images if known and known[0].revision == bad else ()
        revert = GitRevertStatus(RevertState.PENDING, good, bad, text, images=images)
        t.requeue_after = 0.0
    t.set(git_revert=revert)


def _why_no_revert(t: Tick, good: str, bad: str) -> str:
    if not t.spec.gitops.revert:
        return "spec.gitops.revert is false"
    if not bad:
        if good and t.obs.revision is not None and t.obs.revision.revision == good:
            # The run's revision was never known (canary.core.revisions.names_another_release).
            return (
                f"the failed revision is the last good one: Git still names {good} (the failed "
                "release was not made from Git, or Git has not reported it yet)"
            )
        return (
            "the Git revision of the target is unknown (no GitSource, Flux or Argo CD manages it)"
        )
    if not good:
        return "no good revision is known yet"
    if good == bad:
        return "the failed revision is the last good one"
    return ""


def revert_due(t: Tick, revert: GitRevertStatus) -> bool:
    """Whether a waiting revert should be tried now: a retriable failure backs off
    (5 s doubling to 5 min, on the controller's clock), an open pull request is
    looked at once per analysis interval."""
    if revert.state is RevertState.PENDING or not revert.last_attempt_time:
        return True
    last = parse_iso(revert.last_attempt_time)
    if last is None:
        return True
    if revert.state is RevertState.PROPOSED:
        wait = float(t.spec.interval_seconds)
    else:
        wait = min(
            REVERT_BACKOFF_SECONDS * 2 ** max(0, revert.attempts - 1),
            REVERT_BACKOFF_MAX_SECONDS,
        )
    elapsed = (t.obs.now.replace(tzinfo=None) - last).total_seconds()
    if elapsed >= wait:
        return True
    t.requeue_within(wait - elapsed)
    return False


def process_git_revert(t: Tick) -> Flow[None]:
    """On an idle tick: ask the shell to revert, if a revert waits and is due."""
    revert = t.status.git_revert
    if revert is None or revert.state not in _WAITING:
        return
    if revert.state is RevertState.FAILED and not revert.retriable:
        return
    if not revert_due(t, revert):
        return
    answer = yield from t.ask_revert(
        RevertRequest(revert.good_revision, revert.bad_revision, revert.reason, revert.images)
    )
    if answer.kind is RevertResultKind.FAILED:
        _failed(t, revert, answer)
    elif answer.kind is RevertResultKind.PROPOSED:
        _proposed(t, revert, answer)
    elif answer.kind is RevertResultKind.UNRESOLVED:
        _unresolved(t, revert, answer)
    else:
        _finished(t, revert, answer)


def _failed(t: Tick, revert: GitRevertStatus, answer: RevertAnswer) -> None:
    attempts = revert.attempts + 1
    t.set(
        git_revert=replace_revert(
            revert,
            state=RevertState.FAILED,
            message=answer.message,
            attempts=attempts,
            last_attempt_time=iso(t.obs.now),
            retriable=answer.retriable,
            files=answer.files or revert.files,
        )
    )
    t.event(
        f"Git revert of {revert.bad_revision} failed (attempt {attempts}): {answer.message}",
        warning=True,
    )
    if revert.state is not RevertState.FAILED:  # alert once, not on every retry
        then = (
            "retrying at a growing interval until it works"
            if answer.retriable
            else "it will not be retried: act on Git, then canary retry or a new revision"
        )
        t.alert(
            AlertKind.REVERT_FAILED,
            Severity.ERROR,
            f"Git revert failed: {answer.message}. Traffic stays on the primary; {then}.",
            pull_request=revert.pull_request,
        )


def _proposed(t: Tick, revert: GitRevertStatus, answer: RevertAnswer) -> None:
    # A pull request seen before (a poll, or a forge outage in between) is no news.
    changed = revert.pull_request != answer.url
    t.set(
        git_revert=replace_revert(
            revert,
            state=RevertState.PROPOSED,
            commit=answer.commit,
            message=answer.message,
            attempts=revert.attempts + 1 if changed else revert.attempts,
            last_attempt_time=iso(t.obs.now),
            retriable=True,
            pull_request=answer.url,
            files=answer.files or revert.files,
        )
    )
    if not changed:
        return
    t.event(
        f"Opened pull request {answer.url} to revert {t.target_id} in Git to {revert.good_revision}"
    )
    t.alert(
        AlertKind.REVERT_PROPOSED,
        Severity.WARN,
        f"Git revert proposed in pull request {answer.url}: the branch is protected; "
        "merge it to bring Git back to the last good revision "
        f"{revert.good_revision}.",
        revert_commit=answer.commit,
        pull_request=answer.url,
    )


def _unresolved(t: Tick, revert: GitRevertStatus, answer: RevertAnswer) -> None:
    pull_request = answer.url or revert.pull_request
    t.set(
        git_revert=replace_revert(
            revert,
            state=RevertState.UNRESOLVED,
            message=answer.message,
            attempts=revert.attempts + 1,
            last_attempt_time=iso(t.obs.now),
            retriable=False,
            pull_request=pull_request,
            files=answer.files or revert.files,
        )
    )
    t.event(f"Git revert of {revert.bad_revision} not possible: {answer.message}", warning=True)
    t.alert(
        AlertKind.REVERT_FAILED,
        Severity.ERROR,
        f"Git revert not possible: {answer.message}. Traffic stays on the primary; "
        "Git still declares the failed version until a person acts.",
        pull_request=pull_request,
    )


_FINISHED = {
    RevertResultKind.REVERTED: RevertState.REVERTED,
    RevertResultKind.ALREADY_REVERTED: RevertState.ALREADY_REVERTED,
    RevertResultKind.SUPERSEDED: RevertState.SUPERSEDED,
}


def _finished(t: Tick, revert: GitRevertStatus, answer: RevertAnswer) -> None:
    state = _FINISHED[answer.kind]
    pull_request = answer.url or revert.pull_request
    t.set(
        git_revert=replace_revert(
            revert,
            state=state,
            commit=answer.commit,
            message=answer.message,
            attempts=revert.attempts + 1,
            last_attempt_time=iso(t.obs.now),
            pull_request=pull_request,
            files=answer.files or revert.files,
        )
    )
    if state is RevertState.REVERTED or (
        state is RevertState.ALREADY_REVERTED and (answer.commit or pull_request)
    ):
        # REVERTED, or our own commit pushed by a pass whose status write never happened
        # (the alert that pass would have sent goes out now), or our pull request merged.
        merged = f" (pull request {pull_request} merged)" if pull_request else ""
        commit = f": commit {answer.commit}" if answer.commit else ""
        t.event(f"Reverted {t.target_id} in Git to {revert.good_revision}{commit}{merged}")
        t.alert(
            AlertKind.REVERTED,
            Severity.INFO,
            f"Git reverted to the last good revision {revert.good_revision}.",
            revert_commit=answer.commit,
            pull_request=pull_request,
        )
    elif state is RevertState.ALREADY_REVERTED:
        t.event(f"Git already holds the revert of {revert.bad_revision}")
    else:
        t.event(f"Git revert of {revert.bad_revision} not needed: {answer.message}")
