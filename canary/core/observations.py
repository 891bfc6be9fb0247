"""What the core is told about the world at one tick.

The shell gathers `Observations` before calling `step`: the target and primary
workloads as plain facts (template hash, tracked config checksums, readiness
computed from their status), the weights read back from the routing object
(the object is the truth, not the status), the time, the Git revision the
target came from, and the commands on the Canary.

Some facts are expensive or have side effects (calling a gate webhook, running
the metric queries, committing a Git revert). The core asks for those with
`Request`s and the shell answers each with an `Answer` (`canary.core.drive` feeds
them to the tick as it runs). ``answers`` holds answers known in advance: a tick
can be replayed from its final observations, and `step` answers only from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

# The outcome of one metric check is analysis's own enum (its pure part, no numpy):
# a verdict's outcome is a MetricResult's outcome, with no translation between them.
from analysis.spec import Outcome as Outcome
from canary.model.canary import HookType
from canary.model.commands import Commands
from canary.model.status import VerdictFlags


@dataclass(frozen=True, slots=True)
class Readiness:
    """A workload's readiness: ready, or why not and whether waiting can help."""

    ready: bool
    message: str = ""
    retriable: bool = True

    @classmethod
    def ok(cls) -> Readiness:
        return cls(True)

    @classmethod
    def waiting(cls, message: str) -> Readiness:
        return cls(False, message, True)

    @classmethod
    def failed(cls, message: str) -> Readiness:
        return cls(False, message, False)


@dataclass(frozen=True, slots=True)
class TargetObservation:
    """The user's workload (``targetRef``) as it is now."""

    template_hash: str
    readiness: Readiness
    tracked_configs: Mapping[str, str] = field(default_factory=dict)
    images: tuple[str, ...] = ()
    selector_error: str = ""  # no app/name/app.kubernetes.io/name selector label


@dataclass(frozen=True, slots=True)
class PrimaryObservation:
    """The ``<target>-primary`` workload the controller manages."""

    readiness: Readiness
    images: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Routes:
    """Weights as read back from the routing object."""

    primary: int
    canary: int
    mirrored: bool = False


@dataclass(frozen=True, slots=True)
class Revision:
    """Where the target's current spec came from in Git (if anyone knows).

    ``leads``: the report can change *before* the target does (it is read from an object
    that a second controller turns into the target: a HelmRelease, an Argo CD Application
    with a Helm chart), so a report that differs while the target has not changed names the
    next release, not the current one."""

    revision: str  # e.g. "main@sha1:0123abc..." or a bare commit sha
    source: str = ""  # e.g. "GitSource default/apps", "Kustomization flux-system/apps"
    leads: bool = False


@dataclass(frozen=True, slots=True)
class MetricResult:
    """The judged result of one metric at one tick.

    An INCONCLUSIVE result holds the step, refined by the judge's flags:
    ``warming_up`` (inside the warm-up: held silently), ``may_advance`` (the weight may
    step up to collect data, but the canary is never promoted on it) and ``stalled``
    (the inconclusive budget is spent with nothing to fall back on: the canary holds,
    says so in a condition and alerts once). ``advisory`` (the metric's ``dryRun``):
    reported, but never fails, holds or rolls back the canary. ``samples`` and
    ``primary_samples`` are the requests each side has so far, ``needed_samples``
    the canary requests the judge expects to need (compare metrics; None otherwise).
    """

    name: str
    outcome: Outcome
    summary: str  # the sentence quoted in Events and notifications
    value: float | None = None
    threshold: str = ""
    primary_value: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    fail_fast: bool = False  # conclusive statistical failure: roll back now
    warming_up: bool = False
    may_advance: bool = False
    stalled: bool = False
    advisory: bool = False
    samples: int | None = None
    primary_samples: int | None = None
    needed_samples: int | None = None

    @property
    def flags(self) -> VerdictFlags:
        return VerdictFlags(
            advisory=self.advisory,
            warming_up=self.warming_up,
            may_advance=self.may_advance,
            stalled=self.stalled,
        )


def threshold_text(low: float | None, high: float | None, unit: str = "") -> str:
    """A metric's bounds as `MetricResult.threshold` states them (``>= 99% and <= 500ms``)."""
    bounds = []
    if low is not None:
        bounds.append(f">= {low:g}{unit}")
    if high is not None:
        bounds.append(f"<= {high:g}{unit}")
    return " and ".join(bounds)


# ------------------------------------------------------------------ requests & answers


@dataclass(frozen=True, slots=True)
class HookRequest:
    """Call one webhook (a gate or a check) and report whether it said yes."""

    hook: str  # webhook name
    type: HookType
    phase: str  # the phase reported in the payload


@dataclass(frozen=True, slots=True)
class HookAnswer:
    ok: bool
    message: str = ""  # the error or the response body on failure


@dataclass(frozen=True, slots=True)
class AnalysisRequest:
    """Run and judge every metric of ``spec.analysis.metrics``.

    ``last_step`` is true when a passing tick would take the run's last step
    (promote, finish the iterations): only there does a statistical judge hold
    for the evidence its configured effect needs.
    """

    metrics: tuple[str, ...]
    last_step: bool = True


@dataclass(frozen=True, slots=True)
class RevertRequest:
    """Revert the target's change in Git from ``bad_revision`` to ``good_revision``.
    ``images`` are the failed release's images, kept from coming back through image
    automation."""

    good_revision: str
    bad_revision: str
    reason: str
    images: tuple[str, ...] = ()


class RevertResultKind(StrEnum):
    REVERTED = "Reverted"
    ALREADY_REVERTED = "AlreadyReverted"
    SUPERSEDED = "Superseded"
    PROPOSED = "Proposed"  # pull-request mode: the revert waits in an open pull request
    UNRESOLVED = "Unresolved"  # the change cannot be isolated, or its pull request was declined
    FAILED = "Failed"


@dataclass(frozen=True, slots=True)
class RevertAnswer:
    """The shell's answer to a :class:`RevertRequest`. ``url`` is the pull request (if any),
    ``files`` the repository files the revert changes (or the ones in question)."""

    kind: RevertResultKind
    commit: str = ""
    message: str = ""
    retriable: bool = True
    url: str = ""
    files: tuple[str, ...] = ()


Request = HookRequest | AnalysisRequest | RevertRequest
Answer = HookAnswer | tuple[MetricResult, ...] | RevertAnswer


def request_key(request: Request) -> str:
    """A stable key under which the answer to a request is stored."""
    if isinstance(request, HookRequest):
        return f"hook/{request.type.value}/{request.hook}"
    if isinstance(request, AnalysisRequest):
        return "analysis"
    return f"revert/{request.bad_revision}"


@dataclass(frozen=True, slots=True)
class Observations:
    now: datetime
    target: TargetObservation | None  # None: the target does not exist
    primary: PrimaryObservation | None = None  # None: not created yet
    routes: Routes | None = None  # None: routing objects not there yet
    revision: Revision | None = None
    commands: Commands = field(default_factory=Commands)
    deleting: bool = False
    generation: int = 0
    answers: Mapping[str, Answer] = field(default_factory=dict)
    # The pass was woken early by a change to the Canary (a command, an edit), not by its
    # interval: it acts on the change but takes no analysis step (machine.py, step 24).
    woken: bool = False

    def answer(self, request: Request) -> Answer | None:
        return self.answers.get(request_key(request))

    def with_answer(self, request: Request, answer: Answer) -> Observations:
        merged = dict(self.answers)
        merged[request_key(request)] = answer
        return replace(self, answers=merged)
