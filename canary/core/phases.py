"""Every phase change the machine can make, in one table.

The phase is what people watch (``kubectl get canaries``, ``kubectl wait``) and what the
next tick branches on, so where it can go from where must be readable in one place rather
than pieced together from a dozen ``set(phase=...)`` calls. Like h11's ``_state.py``, the
machine never writes a phase itself: it names a :class:`Trigger` (what happened) and
:func:`transition` looks the new phase up in :data:`TRANSITIONS`, refusing a pair the
table does not hold. A refused pair is a bug in the machine, never a user error, so it is
loud rather than silently kept.

The from-phases of each row are exactly the phases the machine's guards let through at the
place the trigger fires, not only those a well-behaved run passes through: a status can be
edited by hand, or written by Flagger, and a phase the table left out would turn such a
status into a crash on every pass. Where a row looks wide, its comment says why.

Each trigger leads to one phase; several triggers may share it (there are many ways to
fail), because the trigger is what the Events and alerts of the tick talk about.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType

from canary.errors import CanaryError
from canary.model.status import RUNNING_PHASES, Phase

__all__ = [
    "ANALYSING",
    "IDLE",
    "IN_RUN",
    "NOT_INITIALIZED",
    "RUNNING",
    "TRANSITIONS",
    "Trigger",
    "UndefinedTransition",
    "transition",
]

# ------------------------------------------------------------------------ phase groups

NOT_INITIALIZED = frozenset({Phase.NONE, Phase.INITIALIZING})
"""The primary is not serving yet: the target still takes the traffic."""

RUNNING = RUNNING_PHASES
"""Flagger's shouldAdvance set: a revision is being handled (Waiting included, so a
closed confirm-rollout gate is asked again every tick even when nothing changes)."""

IN_RUN = RUNNING - {Phase.WAITING}
"""A run has started (the target is scaled up): a revision report names the revision
under analysis, and a confirm-rollout gate is no longer asked."""

ANALYSING = frozenset({Phase.PROGRESSING, Phase.WAITING_PROMOTION})
"""The run is still judging the canary: it can be restarted, aborted or rolled back by
the analysis. Once promoting, the primary is already changing and only a broken primary
ends the run."""

IDLE = frozenset(Phase) - NOT_INITIALIZED - RUNNING
"""Initialized and nothing under way. Terminating and Terminated are here because a tick
without a deletion treats them like any finished run (the machine itself never enters
Terminating: only a status written by Flagger holds it)."""

INITIALIZED_ONWARDS = frozenset(Phase) - NOT_INITIALIZED
EVERY_PHASE = frozenset(Phase)


class Trigger(StrEnum):
    """What happened, in the words of the table: the cause of a phase change."""

    PRIMARY_ABSENT = "PrimaryAbsent"  # the primary workload does not exist (yet, or again)
    PRIMARY_NOT_READY = "PrimaryNotReady"  # while initializing: wait, never roll back
    INITIALIZED = "Initialized"  # the primary serves; the target is scaled to zero
    RETRIED = "Retried"  # canary retry: a failed or known-bad release analysed again
    GATE_CLOSED = "GateClosed"  # the confirm-rollout gate said no
    RUN_STARTED = "RunStarted"  # a new revision passed the confirm-rollout gate
    REVISION_CHANGED = "RevisionChanged"  # a newer revision arrived mid-analysis
    ABORTED = "Aborted"  # canary abort
    PRIMARY_FAILED = "PrimaryFailed"  # the primary cannot become ready
    CANARY_FAILED = "CanaryFailed"  # the target cannot become ready (progress deadline)
    ROLLBACK_REQUESTED = "RollbackRequested"  # a rollback webhook said yes
    ANALYSIS_FAILED = "AnalysisFailed"  # the failed-checks threshold, or a conclusive regression
    ANALYSIS_SKIPPED = "AnalysisSkipped"  # skipAnalysis: promoted at once
    PROMOTION_WITHHELD = "PromotionWithheld"  # the confirm-promotion gate said no
    SWITCHED_TO_CANARY = "SwitchedToCanary"  # blue/green: the gate passed, all traffic on it
    PROMOTION_STARTED = "PromotionStarted"  # the template is copied into the primary
    TRAFFIC_ON_PRIMARY = "TrafficOnPrimary"  # all traffic back on the promoted primary
    PROMOTION_FINISHED = "PromotionFinished"  # the target is scaled down
    PROMOTION_FAILED = "PromotionFailed"  # the primary broke while being promoted
    DELETED = "Deleted"  # the Canary is deleted with revertOnDeletion


_ROWS: tuple[tuple[Iterable[Phase], Trigger, Phase], ...] = (
    # Initialization. A primary deleted behind our back is created again from any phase.
    (EVERY_PHASE, Trigger.PRIMARY_ABSENT, Phase.INITIALIZING),
    (NOT_INITIALIZED, Trigger.PRIMARY_NOT_READY, Phase.INITIALIZING),
    (NOT_INITIALIZED, Trigger.INITIALIZED, Phase.INITIALIZED),
    # Starting a run. A retry is allowed wherever a known-bad refusal can stand, which is
    # any initialized phase (the refusal outlives a re-initialization).
    (INITIALIZED_ONWARDS, Trigger.RETRIED, Phase.PROGRESSING),
    (IDLE | {Phase.WAITING}, Trigger.GATE_CLOSED, Phase.WAITING),
    (IDLE | {Phase.WAITING}, Trigger.RUN_STARTED, Phase.PROGRESSING),
    (ANALYSING, Trigger.REVISION_CHANGED, Phase.PROGRESSING),
    # Rolling back. An abort or a broken primary can end a revision before its run starts.
    (IDLE | {Phase.WAITING} | ANALYSING, Trigger.ABORTED, Phase.FAILED),
    (IDLE | {Phase.WAITING} | ANALYSING, Trigger.PRIMARY_FAILED, Phase.FAILED),
    (IN_RUN, Trigger.CANARY_FAILED, Phase.FAILED),
    (ANALYSING, Trigger.ROLLBACK_REQUESTED, Phase.FAILED),
    (ANALYSING, Trigger.ANALYSIS_FAILED, Phase.FAILED),
    # Promoting.
    ({Phase.PROGRESSING}, Trigger.ANALYSIS_SKIPPED, Phase.SUCCEEDED),
    (ANALYSING, Trigger.PROMOTION_WITHHELD, Phase.WAITING_PROMOTION),
    (ANALYSING, Trigger.SWITCHED_TO_CANARY, Phase.PROGRESSING),
    (ANALYSING, Trigger.PROMOTION_STARTED, Phase.PROMOTING),
    ({Phase.PROMOTING}, Trigger.TRAFFIC_ON_PRIMARY, Phase.FINALISING),
    ({Phase.FINALISING}, Trigger.PROMOTION_FINISHED, Phase.SUCCEEDED),
    ({Phase.PROMOTING, Phase.FINALISING}, Trigger.PROMOTION_FAILED, Phase.FAILED),
    # Deletion gives the cluster back whatever the phase.
    (EVERY_PHASE, Trigger.DELETED, Phase.TERMINATED),
)


def _flatten(
    rows: Iterable[tuple[Iterable[Phase], Trigger, Phase]],
) -> Mapping[tuple[Phase, Trigger], Phase]:
    table: dict[tuple[Phase, Trigger], Phase] = {}
    for sources, trigger, target in rows:
        for source in sorted(sources):
            if table.setdefault((source, trigger), target) is not target:
                raise ValueError(f"two rows for {source.value or 'None'} on {trigger.value}")
    return MappingProxyType(table)


TRANSITIONS: Mapping[tuple[Phase, Trigger], Phase] = _flatten(_ROWS)
"""(phase now, trigger) -> the next phase; a pair not here is a bug in the machine."""


class UndefinedTransition(CanaryError):
    """The machine tried a phase change the table does not allow: a bug, never retried."""

    def __init__(self, phase: Phase, trigger: Trigger) -> None:
        super().__init__(
            f"no transition from phase {phase.value or 'None'!r} on {trigger.value}: "
            "canary/core/phases.py does not allow it"
        )
        self.phase = phase
        self.trigger = trigger


def transition(phase: Phase, trigger: Trigger) -> Phase:
    """The phase after ``trigger`` fires in ``phase``; raises `UndefinedTransition`."""
    try:
        return TRANSITIONS[(phase, trigger)]
    except KeyError:
        raise UndefinedTransition(phase, trigger) from None
