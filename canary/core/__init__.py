"""The pure core: the canary state machine and its data.

One tick is one `Decision` from a Canary, its status and the observations: `drive` runs
the tick, asking an answer function for the facts it needs on the way (the controller
calls webhooks and Prometheus there; `run_now` runs it without an event loop when the
answers are at hand), and `step` replays a tick from observations that carry the
answers. The core performs no I/O, uses no clock and imports no framework
(import-linter enforces this), so it can be tested with tables and properties and
replayed offline. Its phases and their transitions are one table, `canary.core.phases`.
"""

from canary.core.actions import (
    Action,
    Alert,
    AlertKind,
    CallHooks,
    Decision,
    Effect,
    EmitEvent,
    EnsurePrimary,
    EventType,
    Finalize,
    PauseTargetScaler,
    Promote,
    ReconcileApex,
    ReconcilePrimaryScaler,
    ReconcileRouter,
    ReconcileServices,
    ScaleMode,
    ScaleTarget,
    SendAlert,
    SetRoutes,
)
from canary.core.machine import AnswerFunction, drive, effective_analysis, run_now, step
from canary.core.observations import (
    AnalysisRequest,
    Answer,
    HookAnswer,
    HookRequest,
    MetricResult,
    Observations,
    Outcome,
    PrimaryObservation,
    Readiness,
    Request,
    RevertAnswer,
    RevertRequest,
    RevertResultKind,
    Revision,
    Routes,
    TargetObservation,
    threshold_text,
)
from canary.core.phases import TRANSITIONS, Trigger, UndefinedTransition, transition

__all__ = [
    "TRANSITIONS",
    "Action",
    "Alert",
    "AlertKind",
    "AnalysisRequest",
    "Answer",
    "AnswerFunction",
    "CallHooks",
    "Decision",
    "Effect",
    "EmitEvent",
    "EnsurePrimary",
    "EventType",
    "Finalize",
    "HookAnswer",
    "HookRequest",
    "MetricResult",
    "Observations",
    "Outcome",
    "PauseTargetScaler",
    "PrimaryObservation",
    "Promote",
    "Readiness",
    "ReconcileApex",
    "ReconcilePrimaryScaler",
    "ReconcileRouter",
    "ReconcileServices",
    "Request",
    "RevertAnswer",
    "RevertRequest",
    "RevertResultKind",
    "Revision",
    "Routes",
    "ScaleMode",
    "ScaleTarget",
    "SendAlert",
    "SetRoutes",
    "TargetObservation",
    "Trigger",
    "UndefinedTransition",
    "drive",
    "effective_analysis",
    "run_now",
    "step",
    "threshold_text",
    "transition",
]
