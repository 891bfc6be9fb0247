"""The Canary status: the controller's only memory.

Principle 2 of the design: a restarted controller knows only what the status
says. `CanaryStatus` is the typed, frozen view of it with Flagger's fields
(phase, canaryWeight, failedChecks, iterations, lastAppliedSpec, ...) and ours
(the Git revision under analysis, the last good revision, the Git revert's
progress, the last verdict per metric, handled commands). `from_dict` is lenient
(a hand-edited or older status never crashes the controller); `to_dict` writes
the JSON shape of the CRD.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

T = TypeVar("T")


class Phase(StrEnum):
    NONE = ""
    INITIALIZING = "Initializing"
    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    WAITING_PROMOTION = "WaitingPromotion"
    PROMOTING = "Promoting"
    FINALISING = "Finalising"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"


# Phases in which a run is under way (Flagger's shouldAdvance set).
RUNNING_PHASES = frozenset(
    {Phase.PROGRESSING, Phase.WAITING, Phase.WAITING_PROMOTION, Phase.PROMOTING, Phase.FINALISING}
)


class RevertState(StrEnum):
    PENDING = "Pending"
    PROPOSED = "Proposed"  # pull-request mode: waiting for the pull request to be merged
    REVERTED = "Reverted"
    ALREADY_REVERTED = "AlreadyReverted"
    SUPERSEDED = "Superseded"
    UNRESOLVED = "Unresolved"  # a person has to act (see message); ended by retry or a new revision
    FAILED = "Failed"
    SKIPPED = "Skipped"

    @property
    def finished(self) -> bool:
        return self in (
            RevertState.REVERTED,
            RevertState.ALREADY_REVERTED,
            RevertState.SUPERSEDED,
            RevertState.UNRESOLVED,
            RevertState.SKIPPED,
        )


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str
    last_update_time: str = ""
    last_transition_time: str = ""
    observed_generation: int = 0  # the Canary's metadata.generation it was computed for

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastUpdateTime": self.last_update_time,
            "lastTransitionTime": self.last_transition_time,
        }
        if self.observed_generation > 0:  # 0 would read as "older than the spec" (kubectl wait)
            out["observedGeneration"] = self.observed_generation
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Condition:
        return cls(
            type=str(d.get("type", "")),
            status=str(d.get("status", "Unknown")),
            reason=str(d.get("reason", "")),
            message=str(d.get("message", "")),
            last_update_time=str(d.get("lastUpdateTime", "") or ""),
            last_transition_time=str(d.get("lastTransitionTime", "") or ""),
            observed_generation=_int(d.get("observedGeneration")),
        )


@dataclass(frozen=True, slots=True)
class GitRevertStatus:
    state: RevertState
    good_revision: str
    bad_revision: str
    reason: str = ""
    commit: str = ""
    message: str = ""
    attempts: int = 0
    last_attempt_time: str = ""
    retriable: bool = True
    pull_request: str = ""
    files: tuple[str, ...] = ()
    images: tuple[str, ...] = ()  # the failed release's images (kept from image automation)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": self.state.value,
            "retriable": self.retriable,
            "goodRevision": self.good_revision,
            "badRevision": self.bad_revision,
            "reason": self.reason,
            "commit": self.commit,
            "message": self.message,
            "attempts": self.attempts,
            "lastAttemptTime": self.last_attempt_time,
        }
        if self.pull_request:
            out["pullRequest"] = self.pull_request
        if self.files:
            out["files"] = list(self.files)
        if self.images:
            out["images"] = list(self.images)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GitRevertStatus | None:
        try:
            state = RevertState(str(d.get("state", "")))
        except ValueError:
            return None
        return cls(
            state=state,
            good_revision=str(d.get("goodRevision", "") or ""),
            bad_revision=str(d.get("badRevision", "") or ""),
            reason=str(d.get("reason", "") or ""),
            commit=str(d.get("commit", "") or ""),
            message=str(d.get("message", "") or ""),
            attempts=_int(d.get("attempts")),
            last_attempt_time=str(d.get("lastAttemptTime", "") or ""),
            retriable=d.get("retriable") is not False,
            pull_request=str(d.get("pullRequest", "") or ""),
            files=_strings(d.get("files")),
            images=_strings(d.get("images")),
        )


@dataclass(frozen=True, slots=True)
class VerdictFlags:
    """How the core treats a verdict beyond its outcome (each written only when true).

    ``advisory``: the metric has ``dryRun: true``: reported, never acted on.
    ``warming_up``: the canary is inside the judge's warm-up: observed, not acted on.
    ``may_advance``: inconclusive, but the weight may step up to collect data
    (``compare.onInconclusive: advance``); never promoted on.
    ``stalled``: inconclusive with the budget spent and nothing to fall back on.
    """

    advisory: bool = False
    warming_up: bool = False
    may_advance: bool = False
    stalled: bool = False

    def to_dict(self) -> dict[str, bool]:
        flags = {
            "advisory": self.advisory,
            "warmingUp": self.warming_up,
            "mayAdvance": self.may_advance,
            "stalled": self.stalled,
        }
        return {key: True for key, on in flags.items() if on}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VerdictFlags:
        return cls(
            advisory=d.get("advisory") is True,
            warming_up=d.get("warmingUp") is True,
            may_advance=d.get("mayAdvance") is True,
            stalled=d.get("stalled") is True,
        )


@dataclass(frozen=True, slots=True)
class MetricStatus:
    """The last verdict of one metric, as shown in status, Events and messages."""

    name: str
    outcome: str  # Pass | Fail | Inconclusive | NoData | Error
    summary: str
    value: float | None = None
    threshold: str = ""
    primary_value: float | None = None
    time: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    flags: VerdictFlags = field(default_factory=VerdictFlags)

    @property
    def advisory(self) -> bool:
        return self.flags.advisory

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "outcome": self.outcome,
            "summary": self.summary,
            "time": self.time,
        }
        if self.value is not None:
            out["value"] = self.value
        if self.threshold:
            out["threshold"] = self.threshold
        if self.primary_value is not None:
            out["primaryValue"] = self.primary_value
        out.update(self.flags.to_dict())
        if self.details:
            out["details"] = dict(self.details)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MetricStatus:
        details = d.get("details")
        return cls(
            name=str(d.get("name", "")),
            outcome=str(d.get("outcome", "")),
            summary=str(d.get("summary", "")),
            value=_float(d.get("value")),
            threshold=str(d.get("threshold", "") or ""),
            primary_value=_float(d.get("primaryValue")),
            time=str(d.get("time", "") or ""),
            details=dict(details) if isinstance(details, Mapping) else {},
            flags=VerdictFlags.from_dict(d),
        )


@dataclass(frozen=True, slots=True)
class HistoryVerdict:
    """One metric's verdict at one tick of ``status.analysisHistory`` (kept small: the
    numbers behind it stay in ``status.analysis`` for the last tick only)."""

    name: str
    outcome: str
    value: float | None = None
    primary_value: float | None = None
    samples: int | None = None  # the canary's requests so far (compare metrics)
    flags: VerdictFlags = field(default_factory=VerdictFlags)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "outcome": self.outcome}
        if self.value is not None:
            out["value"] = self.value
        if self.primary_value is not None:
            out["primaryValue"] = self.primary_value
        if self.samples is not None:
            out["samples"] = self.samples
        out.update(self.flags.to_dict())
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HistoryVerdict:
        samples = d.get("samples")
        return cls(
            name=_text(d, "name"),
            outcome=_text(d, "outcome"),
            value=_float(d.get("value")),
            primary_value=_float(d.get("primaryValue")),
            samples=_int(samples) if samples is not None else None,
            flags=VerdictFlags.from_dict(d),
        )


@dataclass(frozen=True, slots=True)
class HistoryTick:
    """The verdicts of one analysis tick, at the canary weight they were made at."""

    time: str
    weight: int
    verdicts: tuple[HistoryVerdict, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "weight": self.weight,
            "verdicts": [v.to_dict() for v in self.verdicts],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HistoryTick:
        return cls(
            time=_text(d, "time"),
            weight=_int(d.get("weight")),
            verdicts=_records(d.get("verdicts"), HistoryVerdict.from_dict),
        )


@dataclass(frozen=True, slots=True)
class AnalysisRun:
    """One run's analysis in ``status.analysisHistory``: its revision, when it started and
    ended, how it ended, and its last ticks (newest last)."""

    revision: str
    started: str
    ended: str = ""  # "" while the run is under way
    result: str = ""  # Succeeded | Failed | Restarted ("" while under way)
    reason: str = ""  # why it failed or restarted
    ticks: tuple[HistoryTick, ...] = ()

    @property
    def open(self) -> bool:
        return not self.ended

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"revision": self.revision, "started": self.started}
        if self.ended:
            out["ended"] = self.ended
        if self.result:
            out["result"] = self.result
        if self.reason:
            out["reason"] = self.reason
        out["ticks"] = [t.to_dict() for t in self.ticks]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AnalysisRun:
        return cls(
            revision=_text(d, "revision"),
            started=_text(d, "started"),
            ended=_text(d, "ended"),
            result=_text(d, "result"),
            reason=_text(d, "reason"),
            ticks=_records(d.get("ticks"), HistoryTick.from_dict),
        )


@dataclass(frozen=True, slots=True)
class KnownBad:
    """A release that failed its analysis (``status.knownBad``, newest last).

    ``images`` are the images the failed run introduced (those the primary did not run; empty
    when only configuration changed); ``template`` the target's pod template hash. A later
    revision of the target that brings one of these images back, or this exact template, is
    not analysed again until someone runs ``canary retry``, which forgets the entry.
    """

    revision: str
    images: tuple[str, ...] = ()
    template: str = ""
    failed_at: str = ""
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "images": list(self.images),
            "template": self.template,
            "failedAt": self.failed_at,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KnownBad:
        images = d.get("images")
        return cls(
            revision=str(d.get("revision", "") or ""),
            images=tuple(str(i) for i in images if isinstance(i, str))
            if isinstance(images, list)
            else (),
            template=str(d.get("template", "") or ""),
            failed_at=str(d.get("failedAt", "") or ""),
            reason=str(d.get("reason", "") or ""),
        )


@dataclass(frozen=True, slots=True)
class PendingAlert:
    """An alert recorded with the transition that caused it, until each destination has it
    (``status.pendingAlerts``, oldest first).

    ``key`` identifies the alert (the canary, the run and the transition: replaying a pass
    gives the same key); ``destinations`` are the ones still owed it (an AlertProvider as
    ``namespace/name``, or ``global``); ``alert`` holds what the message is made of (the
    facts of `canary.core.actions.Alert`) and nothing secret: no address, token or proxy.
    """

    key: str
    kind: str
    created: str  # RFC 3339: when the transition was recorded (the message's timestamp)
    destinations: tuple[str, ...] = ()
    alert: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "created": self.created,
            "destinations": list(self.destinations),
            "alert": dict(self.alert),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PendingAlert:
        alert = d.get("alert")
        return cls(
            key=_text(d, "key"),
            kind=_text(d, "kind"),
            created=_text(d, "created"),
            destinations=_strings(d.get("destinations")),
            alert=dict(alert) if isinstance(alert, Mapping) else {},
        )


@dataclass(frozen=True, slots=True)
class CanaryStatus:
    phase: Phase = Phase.NONE
    canary_weight: int = 0
    failed_checks: int = 0
    iterations: int = 0
    last_applied_spec: str = ""
    last_promoted_spec: str = ""
    tracked_configs: Mapping[str, str] = field(default_factory=dict)
    last_transition_time: str = ""
    conditions: tuple[Condition, ...] = ()
    session_affinity_cookie: str = ""
    previous_session_affinity_cookie: str = ""
    primary_session_affinity_cookie: str = ""
    # ours
    observed_generation: int = 0
    current_revision: str = ""
    last_good_revision: str = ""
    promoted_configs: Mapping[str, str] | None = None  # tracked configs the primary runs
    previous_images: tuple[str, ...] = ()  # what the primary ran when the run started
    run_start_time: str = ""
    git_revert: GitRevertStatus | None = None
    analysis: tuple[MetricStatus, ...] = ()
    analysis_history: tuple[AnalysisRun, ...] = ()  # newest last, bounded (canary.core.history)
    inconclusive_checks: int = 0
    stalled: str = ""  # why the analysis is stalled (the AnalysisStalled condition); "" if not
    handled_commands: Mapping[str, str] = field(default_factory=dict)
    message: str = ""
    known_bad: tuple[KnownBad, ...] = ()
    refused: str = ""  # why the target's current revision was not analysed (a known-bad release)
    pending_alerts: tuple[PendingAlert, ...] = ()  # alerts not yet delivered (canary.core.outbox)

    def with_(self, **changes: Any) -> CanaryStatus:
        return replace(self, **changes)

    def condition(self, kind: str) -> Condition | None:
        for c in self.conditions:
            if c.type == kind:
                return c
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value,
            "canaryWeight": self.canary_weight,
            "failedChecks": self.failed_checks,
            "iterations": self.iterations,
            "lastAppliedSpec": self.last_applied_spec,
            "lastPromotedSpec": self.last_promoted_spec,
            "trackedConfigs": dict(self.tracked_configs),
            "lastTransitionTime": self.last_transition_time,
            "conditions": [c.to_dict() for c in self.conditions],
            "sessionAffinityCookie": self.session_affinity_cookie,
            "previousSessionAffinityCookie": self.previous_session_affinity_cookie,
            "primarySessionAffinityCookie": self.primary_session_affinity_cookie,
            "observedGeneration": self.observed_generation,
            "currentRevision": self.current_revision,
            "lastGoodRevision": self.last_good_revision,
            "promotedConfigs": dict(self.promoted_configs)
            if self.promoted_configs is not None
            else None,
            "runStartTime": self.run_start_time,
            "previousImages": list(self.previous_images),
            "gitRevert": self.git_revert.to_dict() if self.git_revert else None,
            "analysis": [m.to_dict() for m in self.analysis],
            "analysisHistory": [r.to_dict() for r in self.analysis_history],
            "inconclusiveChecks": self.inconclusive_checks,
            "stalled": self.stalled,
            "handledCommands": dict(self.handled_commands),
            "message": self.message,
            "knownBad": [k.to_dict() for k in self.known_bad],
            "refused": self.refused,
            # absent when empty: a merge patch of null removes it, and a status that never had
            # one is not written again for it
            "pendingAlerts": [p.to_dict() for p in self.pending_alerts]
            if self.pending_alerts
            else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> CanaryStatus:
        """Read a stored status; a missing or malformed field reads as its default (and so
        does a status that is not an object at all)."""
        if not isinstance(d, Mapping):
            return cls()
        revert = d.get("gitRevert")
        promoted = d.get("promotedConfigs")
        return cls(
            phase=_phase(d.get("phase")),
            canary_weight=_int(d.get("canaryWeight")),
            failed_checks=_int(d.get("failedChecks")),
            iterations=_int(d.get("iterations")),
            last_applied_spec=_text(d, "lastAppliedSpec"),
            last_promoted_spec=_text(d, "lastPromotedSpec"),
            tracked_configs=_str_map(d.get("trackedConfigs")),
            last_transition_time=_text(d, "lastTransitionTime"),
            conditions=_records(d.get("conditions"), Condition.from_dict),
            session_affinity_cookie=_text(d, "sessionAffinityCookie"),
            previous_session_affinity_cookie=_text(d, "previousSessionAffinityCookie"),
            primary_session_affinity_cookie=_text(d, "primarySessionAffinityCookie"),
            observed_generation=_int(d.get("observedGeneration")),
            current_revision=_text(d, "currentRevision"),
            last_good_revision=_text(d, "lastGoodRevision"),
            promoted_configs=_str_map(promoted) if isinstance(promoted, Mapping) else None,
            run_start_time=_text(d, "runStartTime"),
            previous_images=_strings(d.get("previousImages")),
            git_revert=GitRevertStatus.from_dict(revert) if isinstance(revert, Mapping) else None,
            analysis=_records(d.get("analysis"), MetricStatus.from_dict),
            analysis_history=_records(d.get("analysisHistory"), AnalysisRun.from_dict),
            inconclusive_checks=_int(d.get("inconclusiveChecks")),
            stalled=_text(d, "stalled"),
            handled_commands=_str_map(d.get("handledCommands")),
            message=_text(d, "message"),
            known_bad=_records(d.get("knownBad"), KnownBad.from_dict),
            refused=_text(d, "refused"),
            pending_alerts=tuple(
                p
                for p in _records(d.get("pendingAlerts"), PendingAlert.from_dict)
                if p.key and p.destinations
            ),
        )


# Lenient readers of stored fields: whatever a hand edit or an older version left there,
# a field reads as a value of its type (its default when it cannot), never as an exception.


def _phase(value: object) -> Phase:
    try:
        return Phase(str(value or ""))
    except ValueError:
        return Phase.NONE


def _text(d: Mapping[str, Any], key: str) -> str:
    """The field as text; absent, null, empty or zero read as ``""``."""
    return str(d.get(key) or "")


def _str_map(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _strings(value: object) -> tuple[str, ...]:
    """The strings of a list (other items are dropped); ``()`` for anything but a list."""
    return tuple(i for i in value if isinstance(i, str)) if isinstance(value, list) else ()


def _records(value: object, parse: Callable[[Mapping[str, Any]], T]) -> tuple[T, ...]:
    """Each object of a list, parsed (other items are dropped); ``()`` for anything but a list."""
    if not isinstance(value, list):
        return ()
    return tuple(parse(item) for item in value if isinstance(item, Mapping))


# An integer as text: an optional sign, then ASCII digits ("--5" and "²" are not integers;
# str.isdigit accepts "²", which int() then refuses).
_INTEGER = re.compile(r"[-+]?[0-9]+")


def _int(value: object) -> int:
    """An integer, or a whole float, or the text of one; 0 for anything else."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    return 0


def _float(value: object) -> float | None:
    """A finite number as a float; None for anything else: a boolean, NaN, an infinity, an
    integer beyond the float range (``10**400``, on which ``float()`` raises)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        found = float(value)
    except OverflowError:
        return None
    return found if math.isfinite(found) else None
