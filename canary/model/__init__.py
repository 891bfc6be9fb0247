"""Typed, frozen Canary resources: parsing, defaults, validation with field paths.

Nothing here does I/O or knows about Kubernetes clients; the controller, the
CLI (`canary lint`, `canary simulate`) and the tests all read manifests through
this package.
"""

from canary.model.canary import (
    API_GROUP,
    API_VERSION,
    BUILTIN_METRICS,
    FLAGGER_API_VERSION,
    SUPPORTED_PROVIDERS,
    AlertRef,
    AnalysisSpec,
    AutoscalerRef,
    Canary,
    CanarySpec,
    GitOpsSpec,
    HookType,
    MetricSpec,
    ObjectRef,
    ServiceSpec,
    SessionAffinity,
    Severity,
    Strategy,
    ThresholdRange,
    WebhookSpec,
    parse_canary,
)
from canary.model.commands import Commands
from canary.model.errors import SpecError, SpecIssue
from canary.model.resources import (
    AlertProvider,
    MetricTemplate,
    parse_alert_provider,
    parse_metric_template,
)
from canary.model.status import (
    AnalysisRun,
    CanaryStatus,
    Condition,
    GitRevertStatus,
    HistoryTick,
    HistoryVerdict,
    KnownBad,
    MetricStatus,
    Phase,
    RevertState,
    VerdictFlags,
)

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "BUILTIN_METRICS",
    "FLAGGER_API_VERSION",
    "SUPPORTED_PROVIDERS",
    "AlertProvider",
    "AlertRef",
    "AnalysisRun",
    "AnalysisSpec",
    "AutoscalerRef",
    "Canary",
    "CanarySpec",
    "CanaryStatus",
    "Commands",
    "Condition",
    "GitOpsSpec",
    "GitRevertStatus",
    "HistoryTick",
    "HistoryVerdict",
    "HookType",
    "KnownBad",
    "MetricSpec",
    "MetricStatus",
    "MetricTemplate",
    "ObjectRef",
    "Phase",
    "RevertState",
    "ServiceSpec",
    "SessionAffinity",
    "Severity",
    "SpecError",
    "SpecIssue",
    "Strategy",
    "ThresholdRange",
    "VerdictFlags",
    "WebhookSpec",
    "parse_alert_provider",
    "parse_canary",
    "parse_metric_template",
]
