"""Which release ``canary wait`` waits for, and what became of it.

Why a module of its own: the hard part of waiting for a release is not the waiting but
knowing *which* release the status speaks of. Right after ``kubectl set image`` the status
still says ``Succeeded`` (and ``Promoted=True``) about the previous release, and a status
written by a run may name the previous Git revision for a while (Flux writes its revision
after applying). So nothing here asks "is the canary Succeeded"; every question is "is
*this* release promoted, failed, or still on its way".

A release is identified the way the controller identifies it (canary.core.revisions):

* by the target's pod-template hash and the checksums of the ConfigMaps and Secrets it
  tracks, which the status records as ``lastAppliedSpec``/``trackedConfigs`` (the run under
  way, or the last one) and ``lastPromotedSpec``/``promotedConfigs`` (what the primary runs),
  and, for releases that failed, in ``knownBad``;
* by its Git revision when a GitOps tool names it: ``currentRevision``, ``lastGoodRevision``,
  ``knownBad[].revision`` and the runs of ``analysisHistory``;
* by its images, read from the target and the primary.

A `Wanted` names the release one of three ways: a Git revision (``--revision``), an image
(``--image``: the release whose target runs it), or nothing: the target's release as the
wait starts. Image and default waits *capture* the release (its template hash) the first
time the target holds it, so a Git revert that puts the old template back later cannot
pass for a promotion. A release replaced by a newer one before it finished is followed to
the newer one (a newer commit, or a newer template with the same image), and named in
``Wanted.followed``; one that can no longer be promoted (the target dropped the image, or
went back to the promoted release) is `Outcome.SUPERSEDED`.

Everything here is a pure function of the objects the command read (canary.commands.wait
reads them after every change and calls :func:`judge`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from canary.adapters.primary import images, template_hash
from canary.model.commands import RETRY
from canary.model.status import RUNNING_PHASES, AnalysisRun, CanaryStatus, Phase

__all__ = [
    "Outcome",
    "Release",
    "Snapshot",
    "Verdict",
    "Wanted",
    "judge",
    "release_of",
    "same_revision",
    "snapshot",
]

SUCCEEDED, FAILED, RESTARTED = "Succeeded", "Failed", "Restarted"  # analysisHistory results
_NOT_STARTED = frozenset({Phase.NONE, Phase.INITIALIZING})
_REVISION = re.compile(r"^(?:(?P<ref>.+)[@/])?(?:sha(?:1|256):)?(?P<sha>[0-9a-fA-F]{7,64})$")


class Outcome(StrEnum):
    WAITING = "Waiting"  # not decided yet
    PROMOTED = "Promoted"
    FAILED = "Failed"  # rolled back, refused as known-bad, or its promotion failed
    SUPERSEDED = "Superseded"  # replaced before it finished; it cannot be promoted any more

    @property
    def final(self) -> bool:
        return self is not Outcome.WAITING


@dataclass(frozen=True, slots=True)
class Release:
    """One release of the target: its pod-template hash (the controller's), the checksums of
    its tracked ConfigMaps and Secrets (None: they could not be read), and its images."""

    template: str
    configs: Mapping[str, str] | None = None
    images: tuple[str, ...] = ()

    def label(self) -> str:
        return ", ".join(self.images) or f"template {self.template[:8]}"

    def same_as(self, other: Release) -> bool:
        if self.template != other.template:
            return False
        return self.configs is None or other.configs is None or self.configs == other.configs


@dataclass(frozen=True, slots=True)
class Wanted:
    """The release waited for (module docstring); ``release`` once captured."""

    revision: str = ""
    image: str = ""
    release: Release | None = None
    followed: tuple[str, ...] = ()  # the releases a newer one replaced while waiting

    def describe(self) -> str:
        if self.revision:
            return f"revision {self.revision}"
        if self.release is not None:
            return f"the release of {self.release.label()}"
        if self.image:
            return f"image {self.image}"
        return "the target's current release"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the command read: the status, the Canary's annotations, the target's release now
    (None: no target, or not read) and the images the primary runs."""

    status: CanaryStatus
    annotations: Mapping[str, str]
    target: Release | None = None
    primary_images: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    """What became of the wanted release, in one sentence (``why``). ``current_run``: the
    status's verdicts, message and Git revert are about this release's run."""

    outcome: Outcome
    wanted: Wanted
    why: str
    revision: str = ""  # the release's Git revision, when the status names it
    current_run: bool = False


# --------------------------------------------------------------------------- reading


def release_of(workload: Mapping[str, Any], configs: Mapping[str, str] | None) -> Release:
    template = (workload.get("spec") or {}).get("template") or {}
    return Release(template_hash(template), configs, images(workload))


def snapshot(
    canary: Mapping[str, Any],
    target: Mapping[str, Any] | None = None,
    primary: Mapping[str, Any] | None = None,
    configs: Mapping[str, str] | None = None,
) -> Snapshot:
    annotations = (canary.get("metadata") or {}).get("annotations") or {}
    return Snapshot(
        status=CanaryStatus.from_dict(canary.get("status")),
        annotations={str(k): str(v) for k, v in annotations.items()},
        target=release_of(target, configs) if target is not None else None,
        primary_images=images(primary) if primary is not None else (),
    )


def same_revision(recorded: str, wanted: str) -> bool:
    """Whether a revision the status records is the one asked for: equal, or the same
    commit (``main@sha1:<sha>``, ``sha1:<sha>``, ``main/<sha>``, ``<sha>``; the asked one
    may be shortened to 7 characters; a branch given on both sides must agree)."""
    recorded, wanted = recorded.strip(), wanted.strip()
    if not recorded or not wanted:
        return False
    if recorded == wanted:
        return True
    have, want = _REVISION.match(recorded), _REVISION.match(wanted)
    if have is None or want is None:
        return False
    refs = [_branch(m.group("ref")) for m in (have, want)]
    if all(refs) and refs[0] != refs[1]:
        return False
    return have.group("sha").lower().startswith(want.group("sha").lower())


def _branch(ref: str | None) -> str:
    return (ref or "").removeprefix("refs/heads/")


# --------------------------------------------------------------------------- judging


def judge(wanted: Wanted, snap: Snapshot) -> Verdict:
    """What became of ``wanted`` by ``snap`` (its ``wanted`` may have captured or followed a
    release: pass it to the next call)."""
    if _retry_requested(snap):
        return Verdict(
            Outcome.WAITING, wanted, "canary retry was requested: waiting for the controller"
        )
    if wanted.revision:
        return _by_revision(wanted, snap)
    captured = _capture(wanted, snap)
    if captured.release is None:
        return _not_in_target(captured, snap)
    verdict = _by_release(captured, captured.release, snap)
    if verdict.outcome is Outcome.WAITING:
        return _replaced(verdict, snap)
    return verdict


def _retry_requested(snap: Snapshot) -> bool:
    token = snap.annotations.get(RETRY, "")
    return bool(token) and snap.status.handled_commands.get("retry") != token


def _capture(wanted: Wanted, snap: Snapshot) -> Wanted:
    if wanted.release is not None or snap.target is None:
        return wanted
    if wanted.image and wanted.image not in snap.target.images:
        return wanted
    return replace(wanted, release=snap.target)


def _configs_agree(
    release: Release, recorded: Mapping[str, str] | None, status: CanaryStatus
) -> bool:
    """Whether ``release``'s configs are those recorded; unknown ones, or a controller that
    tracks none (config tracking off), leave the template to decide alone."""
    if release.configs is None or recorded is None:
        return True
    if not (status.tracked_configs or status.promoted_configs):
        return True
    return dict(recorded) == dict(release.configs)


def _by_release(wanted: Wanted, release: Release, snap: Snapshot) -> Verdict:
    status = snap.status
    if (
        status.phase not in _NOT_STARTED
        and status.last_promoted_spec == release.template
        and _configs_agree(release, status.promoted_configs, status)
    ):
        return Verdict(
            Outcome.PROMOTED,
            wanted,
            f"{release.label()} is promoted: the primary runs it",
            revision=status.last_good_revision,
        )
    failure = _failure(wanted, release, status)
    if failure is not None:
        return failure
    return Verdict(Outcome.WAITING, wanted, _on_its_way(release, status))


def _failure(wanted: Wanted, release: Release, status: CanaryStatus) -> Verdict | None:
    applied = status.last_applied_spec == release.template
    if (
        status.phase is Phase.FAILED
        and applied
        and _configs_agree(release, status.tracked_configs, status)
    ):
        return Verdict(
            Outcome.FAILED,
            wanted,
            f"rolled back: {_rollback_reason(status)}",
            revision=status.current_revision,
            current_run=True,
        )
    if status.refused and applied:
        return Verdict(Outcome.FAILED, wanted, status.refused, revision=status.current_revision)
    for known in reversed(status.known_bad):
        if known.template == release.template:
            return Verdict(
                Outcome.FAILED,
                wanted,
                f"it failed its analysis at {known.failed_at or '?'}: {known.reason.strip()}",
                revision=known.revision,
            )
    return None


def _rollback_reason(status: CanaryStatus) -> str:
    """Why the last run was rolled back: as remembered with the known-bad release, else as
    its history says, else from the status message."""
    for known in reversed(status.known_bad):
        if known.template == status.last_applied_spec and known.reason.strip():
            return known.reason.strip()
    run = status.analysis_history[-1] if status.analysis_history else None
    if run is not None and run.result == FAILED and run.started >= status.run_start_time:
        return run.reason.strip() or "the analysis failed"
    message = status.message.strip().removesuffix(".")
    head, colon, reason = message.partition(": ")
    return reason if colon and head.startswith("Rolled back") else message or "the analysis failed"


def _on_its_way(release: Release, status: CanaryStatus) -> str:
    phase = status.phase
    if phase in _NOT_STARTED:
        return "the canary is initializing"
    if phase is Phase.WAITING:
        return "a new release waits at the confirm-rollout gate"
    if phase in RUNNING_PHASES:
        if status.last_applied_spec != release.template:
            return "the canary is analysing an earlier release first"
        if phase in (Phase.PROMOTING, Phase.FINALISING):
            return f"promoting {release.label()}"
        return f"analysing {release.label()}"
    return (
        f"waiting for the controller to start analysing {release.label()} "
        "(a new pod template wakes it at once; a config-only change waits for its next pass)"
    )


def _replaced(verdict: Verdict, snap: Snapshot) -> Verdict:
    """An undecided release the target no longer holds: followed to the newer release, or
    superseded when it can no longer be promoted."""
    wanted, live, status = verdict.wanted, snap.target, snap.status
    old = wanted.release
    if live is None or old is None or live.same_as(old):
        return verdict
    if wanted.image and wanted.image not in live.images:
        return Verdict(
            Outcome.SUPERSEDED,
            wanted,
            f"the target no longer runs {wanted.image} (it runs {live.label()}): "
            f"{wanted.image} was not promoted",
        )
    if not wanted.image and live.template == status.last_promoted_spec:
        return Verdict(
            Outcome.SUPERSEDED,
            wanted,
            f"the target went back to the promoted release ({live.label()}) before "
            f"{old.label()} was promoted",
        )
    followed = replace(wanted, release=live, followed=(*wanted.followed, old.label()))
    return _by_release(followed, live, snap)


def _not_in_target(wanted: Wanted, snap: Snapshot) -> Verdict:
    """No release captured yet: the target does not exist, or does not run the image."""
    image, status = wanted.image, snap.status
    if not image:
        return Verdict(Outcome.WAITING, wanted, "the target does not exist")
    if (
        image in snap.primary_images
        and status.phase not in _NOT_STARTED
        and status.phase not in (Phase.PROMOTING, Phase.FINALISING)
    ):
        return Verdict(
            Outcome.PROMOTED,
            wanted,
            f"{image} is promoted: the primary runs it",
            revision=status.last_good_revision,
        )
    for known in reversed(status.known_bad):
        if image in known.images:
            return Verdict(
                Outcome.FAILED,
                wanted,
                f"{image} failed its analysis at {known.failed_at or '?'}: {known.reason.strip()}",
                revision=known.revision,
            )
    runs = snap.target.label() if snap.target is not None else "nothing (it does not exist)"
    why = f"waiting for {image} to reach the target (it runs {runs})"
    return Verdict(Outcome.WAITING, wanted, why)


def _newest_run(status: CanaryStatus, revision: str) -> AnalysisRun | None:
    for run in reversed(status.analysis_history):
        if same_revision(run.revision, revision):
            return run
    return None


def _by_revision(wanted: Wanted, snap: Snapshot) -> Verdict:
    """The release named by its Git revision, as the status's revision fields record it."""
    rev, status = wanted.revision, snap.status
    run = _newest_run(status, rev)
    promoted = run is not None and run.result == SUCCEEDED
    if promoted or same_revision(status.last_good_revision, rev):
        return Verdict(
            Outcome.PROMOTED, wanted, f"{rev} is promoted", revision=status.last_good_revision
        )
    current = same_revision(status.current_revision, rev)
    if current and status.phase in RUNNING_PHASES:
        return Verdict(
            Outcome.WAITING, wanted, f"analysing {rev}", revision=status.current_revision
        )
    failed = _revision_failure(wanted, status, run, current=current)
    if failed is not None:
        return failed
    if run is not None and run.result == RESTARTED and status.current_revision and not current:
        newer = replace(wanted, revision=status.current_revision, followed=(*wanted.followed, rev))
        return _by_revision(newer, snap)
    at = status.current_revision or status.last_good_revision
    hint = (
        ""
        if at
        else "; the status names no Git revision (no GitSource, Flux Kustomization or Argo CD "
        "Application manages the target?): wait with --image, or without options"
    )
    return Verdict(
        Outcome.WAITING, wanted, f"waiting for {rev} to reach the canary (at {at or '-'}){hint}"
    )


def _revision_failure(
    wanted: Wanted, status: CanaryStatus, run: AnalysisRun | None, *, current: bool
) -> Verdict | None:
    rev = wanted.revision
    if current and status.phase is Phase.FAILED and not status.refused:
        why = f"rolled back: {_rollback_reason(status)}"
        revision = status.current_revision
        return Verdict(Outcome.FAILED, wanted, why, revision=revision, current_run=True)
    if current and status.refused:
        return Verdict(Outcome.FAILED, wanted, status.refused, revision=status.current_revision)
    for known in reversed(status.known_bad):
        if same_revision(known.revision, rev):
            why = f"it failed its analysis at {known.failed_at or '?'}: {known.reason.strip()}"
            return Verdict(Outcome.FAILED, wanted, why, revision=known.revision)
    if run is not None and run.result == FAILED:
        why = f"rolled back at {run.ended}: {run.reason or 'the analysis failed'}"
        return Verdict(Outcome.FAILED, wanted, why, revision=run.revision)
    return None
