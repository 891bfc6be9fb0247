"""What the core tells the shell to do: actions, effects and the decision.

Actions change the cluster and are *absolute and idempotent* ("routes are
90/10", "the target has 0 replicas"), so repeating one after a crash is
harmless. The shell runs them in order and writes the new status only after all
succeeded (design principle 2). Effects (Events, alerts, post-rollout hooks)
happen after the status is written: a restart never repeats a notification for
a transition that is already recorded.

Every class here is frozen data; the executor in `canary.controller` maps each
to one adapter call.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from canary.core.observations import Request
from canary.model.canary import HookType, Severity
from canary.model.status import CanaryStatus, MetricStatus

# ------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class ReconcileServices:
    """Create or update ``<svc>-canary`` and ``<svc>-primary``."""


@dataclass(frozen=True, slots=True)
class EnsurePrimary:
    """Create ``<target>-primary`` (and ``-primary`` ConfigMaps/Secrets) if missing."""


@dataclass(frozen=True, slots=True)
class ReconcilePrimaryScaler:
    """Create/update the ``<hpa>-primary`` autoscaler from the target's."""

    init: bool


@dataclass(frozen=True, slots=True)
class ReconcileApex:
    """Point the apex Service ``<svc>`` at the primary pods."""


@dataclass(frozen=True, slots=True)
class ReconcileRouter:
    """Create or update the routing objects without touching weights or mirroring."""


@dataclass(frozen=True, slots=True)
class SetRoutes:
    primary: int
    canary: int
    mirrored: bool = False


class ScaleMode(StrEnum):
    ZERO = "zero"
    UP = "up"  # Flagger's ScaleFromZero rules (checklist item 11)


@dataclass(frozen=True, slots=True)
class ScaleTarget:
    mode: ScaleMode


@dataclass(frozen=True, slots=True)
class PauseTargetScaler:
    paused: bool


@dataclass(frozen=True, slots=True)
class Promote:
    """Copy the target's pod template (and configs) into the primary."""


@dataclass(frozen=True, slots=True)
class Finalize:
    """Give the cluster back on deletion (``revertOnDeletion``)."""


Action = (
    ReconcileServices
    | EnsurePrimary
    | ReconcilePrimaryScaler
    | ReconcileApex
    | ReconcileRouter
    | SetRoutes
    | ScaleTarget
    | PauseTargetScaler
    | Promote
    | Finalize
)

# ------------------------------------------------------------------------- effects


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True, slots=True)
class EmitEvent:
    type: EventType
    message: str


class AlertKind(StrEnum):
    """Why an alert is sent (Flagger's catalogue, reference 5.1, plus ours)."""

    INITIALIZED = "Initialized"
    STARTED = "Started"
    WAITING_APPROVAL = "WaitingApproval"
    WAITING_PROMOTION = "WaitingPromotion"
    WAITING_TRAFFIC_INCREASE = "WaitingTrafficIncrease"
    ROLLBACK_WEBHOOK = "RollbackWebhook"
    ABORTED = "Aborted"
    THRESHOLD_REACHED = "ThresholdReached"
    REGRESSION = "Regression"  # the statistical judge's conclusive FAIL (compare.failFast)
    PROGRESS_DEADLINE = "ProgressDeadline"
    PROMOTION_FAILED = "PromotionFailed"
    PROMOTED = "Promoted"
    SKIPPED = "Skipped"
    INCONCLUSIVE = "Inconclusive"
    # inconclusive with its budget spent and nothing to fall back on: needs traffic or a person
    ANALYSIS_STALLED = "AnalysisStalled"
    REVERTED = "GitReverted"
    REVERT_PROPOSED = "GitRevertProposed"
    REVERT_FAILED = "GitRevertFailed"
    KNOWN_BAD = "KnownBad"


@dataclass(frozen=True, slots=True)
class Alert:
    """A notification for people, with everything a message needs.

    ``message`` is Flagger's exact sentence; the rest lets a notifier write a
    message worth reading (which check failed with its numbers, the revisions,
    the revert commit, how long the run took).
    """

    kind: AlertKind
    severity: Severity
    message: str
    with_metadata: bool = False  # Flagger's Target / threshold / deadline / routing fields
    canary_name: str = ""
    namespace: str = ""
    target: str = ""  # "Deployment/podinfo.test"
    revision: str = ""  # the revision under analysis
    previous_revision: str = ""  # the last good one
    images: tuple[str, ...] = ()
    previous_images: tuple[str, ...] = ()
    weight: int = 0
    failed_checks: int = 0
    threshold: int = 0
    duration_seconds: float | None = None
    analysis: tuple[MetricStatus, ...] = ()
    revert_commit: str = ""
    pull_request: str = ""  # the revert's pull request (pull-request mode)
    failure: str = ""  # the last failed check in words (a webhook's or a metric's)
    fields: tuple[tuple[str, str], ...] = ()  # Flagger's metadata fields, ordered
    mute: bool = False  # a gate hook with muteAlert


@dataclass(frozen=True, slots=True)
class SendAlert:
    alert: Alert


@dataclass(frozen=True, slots=True)
class CallHooks:
    """Fire-and-report hooks (post-rollout): failures only produce Events."""

    type: HookType
    phase: str


Effect = EmitEvent | SendAlert | CallHooks


# ------------------------------------------------------------------------- decision


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one tick.

    `drive` always returns a final decision. Only `step`, which answers from the
    observations alone, returns one that is not: ``requests`` then names the
    answer it lacks, and ``actions`` and ``effects`` are empty.
    ``requeue_after`` asks for the next pass sooner than the analysis interval
    (seconds), e.g. to follow a primary rollout or to revert Git right after a
    rollback.
    """

    status: CanaryStatus
    actions: tuple[Action, ...] = ()
    effects: tuple[Effect, ...] = ()
    requests: tuple[Request, ...] = ()
    requeue_after: float | None = None

    @property
    def final(self) -> bool:
        return not self.requests

    @property
    def events(self) -> tuple[EmitEvent, ...]:
        return tuple(e for e in self.effects if isinstance(e, EmitEvent))

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return tuple(e.alert for e in self.effects if isinstance(e, SendAlert))
