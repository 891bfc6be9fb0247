"""Fakes of the controller's other ports: workloads, Services, routers, webhooks, ...

Each fake records what it was asked as `Call`s (method, ``namespace/name`` of the
Canary, the arguments that matter), answers from state a test sets, and can be told
to fail a method with `Recorder.fail`. See `canary.testing` for what each one
emulates and what it does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from canary.adapters.routers import DEFAULT_SELECTOR_LABELS, RouterError
from canary.adapters.targets import TargetServices, TargetWorkloads
from canary.adapters.workloads import WorkloadOptions
from canary.controller.events import EventRecorder
from canary.core import (
    Alert,
    EmitEvent,
    EventType,
    HookAnswer,
    MetricResult,
    Outcome,
    PrimaryObservation,
    Readiness,
    RevertAnswer,
    RevertRequest,
    RevertResultKind,
    Revision,
    Routes,
    ScaleMode,
    TargetObservation,
)
from canary.errors import CanaryError
from canary.model import Canary, HookType, WebhookSpec
from canary.model.canary import TOTAL_WEIGHT
from canary.model.status import PendingAlert
from canary.ports import Kube, RequiredApi

if TYPE_CHECKING:
    from canary.ports import (
        Analyzer,
        EventSink,
        GitReverter,
        Leader,
        Notifier,
        RevisionSource,
        Router,
        Services,
        WebhookCaller,
        Workloads,
    )

__all__ = [
    "Call",
    "FakeAnalyzer",
    "FakeEvents",
    "FakeLeader",
    "FakeNotifier",
    "FakeReverter",
    "FakeRevisions",
    "FakeRouter",
    "FakeRouters",
    "FakeServices",
    "FakeWebhooks",
    "FakeWorkloads",
    "InjectedError",
    "RecordedEvent",
    "Recorder",
]


class InjectedError(CanaryError):
    """The default error `Recorder.fail` raises: a failure a test asked for."""


@dataclass(frozen=True, slots=True)
class Call:
    """One call of a fake: the method, the Canary (``namespace/name``), what was passed."""

    method: str
    canary: str
    args: tuple[Any, ...] = ()


def _key(canary: Canary) -> str:
    return f"{canary.namespace}/{canary.name}"


@dataclass(slots=True)
class _Fault:
    method: str
    canary: str | None
    error: BaseException
    times: int | None


class Recorder:
    """Records calls and raises the failures a test injected; the base of every fake."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._faults: list[_Fault] = []

    def fail(
        self,
        method: str,
        error: BaseException | None = None,
        *,
        canary: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (for ``canary``, "ns/name", if given)
        raise ``error`` (default `InjectedError`); ``times=None``: every call."""
        if not hasattr(self, method):
            raise AttributeError(f"{type(self).__name__} has no method {method!r}")
        self._faults.append(
            _Fault(
                method,
                canary,
                error or InjectedError(f"{type(self).__name__}.{method} failed (injected)"),
                times,
            )
        )

    def called(self, method: str | None = None, canary: str | None = None) -> list[Call]:
        """The calls of one method (all if None), optionally for one Canary."""
        return [
            c
            for c in self.calls
            if (method is None or c.method == method) and (canary is None or c.canary == canary)
        ]

    def methods(self, canary: str | None = None) -> list[str]:
        """The names of the methods called, in order."""
        return [c.method for c in self.called(canary=canary)]

    def _record(self, method: str, canary: str, *args: Any) -> None:
        self.calls.append(Call(method, canary, args))
        for fault in self._faults:
            if fault.method != method or fault.canary not in (None, canary):
                continue
            if fault.times is not None:
                if fault.times <= 0:
                    continue
                fault.times -= 1
            raise fault.error


# ------------------------------------------------------------------ workloads


class FakeWorkloads(Recorder):
    """The `Workloads` port: the real adapter's objects, with readiness set by the test.

    Object work (creating ``<target>-primary``, promotion, scaling, the ``-primary``
    ConfigMaps and HPAs, conflicting canaries) is delegated to the real
    `canary.adapters.workloads.KubeWorkloads` over the same `Kube`, so the objects a test
    finds in `FakeKube` are the ones the operator would write. What a fake cluster
    cannot supply is readiness (no kubelet, no Deployment controller): a workload is
    ready unless the test says otherwise with `set_readiness`, by object name.
    """

    def __init__(self, kube: Kube, options: WorkloadOptions | None = None) -> None:
        super().__init__()
        self.real = TargetWorkloads(kube, options)
        self.readiness: dict[tuple[str, str], Readiness] = {}

    def set_readiness(self, namespace: str, name: str, readiness: Readiness) -> None:
        """How `observe` reports the workload ``namespace/name`` from now on."""
        self.readiness[(namespace, name)] = readiness

    def _ready(self, namespace: str, name: str) -> Readiness:
        return self.readiness.get((namespace, name), Readiness.ok())

    async def observe(
        self, canary: Canary, *, now: datetime | None = None, since: datetime | None = None
    ) -> tuple[TargetObservation | None, PrimaryObservation | None]:
        self._record("observe", _key(canary), now, since)
        target, primary = await self.real.observe(canary, now=now, since=since)
        name = canary.spec.target_ref.name
        if target is not None:
            target = TargetObservation(
                template_hash=target.template_hash,
                readiness=self._ready(canary.namespace, name),
                tracked_configs=target.tracked_configs,
                images=target.images,
                selector_error=target.selector_error,
            )
        if primary is not None:
            primary = PrimaryObservation(
                readiness=self._ready(canary.namespace, f"{name}-primary"),
                images=primary.images,
            )
        return target, primary

    async def ensure_primary(self, canary: Canary) -> None:
        self._record("ensure_primary", _key(canary))
        await self.real.ensure_primary(canary)

    async def promote(self, canary: Canary) -> None:
        self._record("promote", _key(canary))
        await self.real.promote(canary)

    async def scale_target(self, canary: Canary, mode: ScaleMode) -> None:
        self._record("scale_target", _key(canary), mode)
        await self.real.scale_target(canary, mode)

    async def reconcile_primary_scaler(self, canary: Canary, init: bool) -> None:
        self._record("reconcile_primary_scaler", _key(canary), init)
        await self.real.reconcile_primary_scaler(canary, init)

    async def pause_target_scaler(self, canary: Canary, paused: bool) -> None:
        self._record("pause_target_scaler", _key(canary), paused)
        await self.real.pause_target_scaler(canary, paused)

    async def finalize(self, canary: Canary) -> None:
        self._record("finalize", _key(canary))
        await self.real.finalize(canary)

    async def find_conflicting_canaries(self, canary: Canary) -> list[str]:
        self._record("find_conflicting_canaries", _key(canary))
        return await self.real.find_conflicting_canaries(canary)


class FakeServices(Recorder):
    """The `Services` port: records, and delegates to the real `ServiceRouter`, so the
    Services in `FakeKube` are the operator's own."""

    def __init__(self, kube: Kube, *, selector_labels: Sequence[str] | None = None) -> None:
        super().__init__()
        self.real = TargetServices(kube, selector_labels=selector_labels or DEFAULT_SELECTOR_LABELS)

    async def initialize(self, canary: Canary, target: Mapping[str, Any]) -> None:
        self._record("initialize", _key(canary))
        await self.real.initialize(canary, target)

    async def reconcile_apex(self, canary: Canary, target: Mapping[str, Any]) -> None:
        self._record("reconcile_apex", _key(canary))
        await self.real.reconcile_apex(canary, target)

    async def finalize(self, canary: Canary, target: Mapping[str, Any] | None) -> None:
        self._record("finalize", _key(canary))
        await self.real.finalize(canary, target)


# ------------------------------------------------------------------ traffic


class FakeRouter(Recorder):
    """The `Router` port for any provider: weights held in memory, per Canary.

    Emulates what the controller relies on: `reconcile` creates the routing "object"
    at 100/0 and never resets weights; `get_routes` reads back what `set_routes` wrote
    (None before `reconcile`); weights that are not a split of 100 raise `RouterError`
    as every real router does. It writes no objects to the cluster (each provider's
    objects are tested with its own router) and `finalize` only drops the entry.
    """

    def __init__(self, provider: str = "kubernetes") -> None:
        super().__init__()
        self.provider = provider
        self.routes: dict[str, Routes] = {}
        self.requires: tuple[RequiredApi, ...] = ()  # what `required_apis` answers

    def required_apis(self, canary: Canary) -> tuple[RequiredApi, ...]:
        return self.requires

    async def reconcile(self, canary: Canary) -> None:
        key = _key(canary)
        self._record("reconcile", key)
        self.routes.setdefault(key, Routes(TOTAL_WEIGHT, 0, False))

    async def set_routes(
        self, canary: Canary, primary: int, canary_weight: int, mirrored: bool
    ) -> None:
        key = _key(canary)
        self._record("set_routes", key, primary, canary_weight, mirrored)
        for value in (primary, canary_weight):
            if isinstance(value, bool) or not 0 <= value <= TOTAL_WEIGHT:
                raise RouterError(
                    f"weights must be between 0 and 100, got {primary}/{canary_weight}"
                )
        if primary + canary_weight != TOTAL_WEIGHT:
            raise RouterError(f"weights must add up to 100, got {primary}+{canary_weight}")
        self.routes[key] = Routes(primary, canary_weight, mirrored)

    async def get_routes(self, canary: Canary) -> Routes | None:
        key = _key(canary)
        self._record("get_routes", key)
        return self.routes.get(key)

    async def finalize(self, canary: Canary) -> None:
        key = _key(canary)
        self._record("finalize", key)
        self.routes.pop(key, None)

    def weights_set(self, canary: str | None = None) -> list[tuple[int, int]]:
        """(primary, canary) of every `set_routes` call, in order."""
        return [(c.args[0], c.args[1]) for c in self.called("set_routes", canary)]


class FakeRouters:
    """The controller's ``routers`` factory: one `FakeRouter` per provider, on demand."""

    def __init__(self) -> None:
        self.by_provider: dict[str, FakeRouter] = {}
        self.asked: list[str] = []

    def __call__(self, provider: str) -> FakeRouter:
        self.asked.append(provider)
        return self[provider]

    def __getitem__(self, provider: str) -> FakeRouter:
        """The provider's router (created if it was never asked for), without recording."""
        if provider not in self.by_provider:
            self.by_provider[provider] = FakeRouter(provider)
        return self.by_provider[provider]


# ------------------------------------------------------------------ hooks, alerts, analysis


class FakeWebhooks(Recorder):
    """The `WebhookCaller` port: gate and check answers by hook name.

    A hook says yes unless `answers` says otherwise, except a ``rollback`` hook, which
    says no (yes would mean "roll back now"). No HTTP, no payload, no retries.
    """

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[str, HookAnswer] = {}
        self.events: list[tuple[str, EmitEvent]] = []

    def answer(self, hook: str, ok: bool, message: str = "") -> None:
        self.answers[hook] = HookAnswer(ok, message or ("" if ok else f"{hook} said no (403)"))

    async def call(
        self, canary: Canary, hook: WebhookSpec, phase: str, checksum: str
    ) -> HookAnswer:
        self._record("call", _key(canary), hook.name, hook.type, phase, checksum)
        default = HookAnswer(hook.type is not HookType.ROLLBACK)
        return self.answers.get(hook.name, default)

    async def post_event(self, canary: Canary, event: EmitEvent, phase: str, checksum: str) -> None:
        self._record("post_event", _key(canary), event, phase, checksum)
        self.events.append((_key(canary), event))


class FakeNotifier(Recorder):
    """The `Notifier` port: keeps every alert; no providers, no delivery, no rendering."""

    def __init__(self) -> None:
        super().__init__()
        self.alerts: list[Alert] = []

    async def notify(self, canary: Canary, alert: Alert) -> None:
        self._record("notify", _key(canary), alert.kind)
        self.alerts.append(alert)

    def destinations(self, canary: Canary, alert: Alert) -> tuple[str, ...]:
        return ()  # nothing is recorded in the status: every alert comes to `notify`

    async def deliver(self, canary: Canary, pending: PendingAlert) -> None:
        self._record("deliver", _key(canary), pending.key)

    def settled(self, key: str, destination: str) -> bool:
        return False


class FakeAnalyzer(Recorder):
    """The `Analyzer` port: one verdict per metric of the Canary, from `outcomes`.

    Metrics pass unless `outcomes` (by metric name) or `default` say otherwise; a
    `MetricResult` in `outcomes` is returned as is. No queries, no judges.
    """

    def __init__(self, default: Outcome = Outcome.PASS) -> None:
        super().__init__()
        self.default = default
        self.outcomes: dict[str, Outcome | MetricResult] = {}

    async def analyze(
        self,
        canary: Canary,
        now: datetime,
        previous: Sequence[Mapping[str, Any]],
        *,
        last_step: bool = True,
    ) -> tuple[MetricResult, ...]:
        self._record("analyze", _key(canary), now, tuple(previous))
        results = []
        for metric in canary.spec.analysis_or_default.metrics:
            planned = self.outcomes.get(metric.name, self.default)
            if isinstance(planned, MetricResult):
                results.append(planned)
                continue
            value = 99.9 if planned is Outcome.PASS else 80.0
            results.append(
                MetricResult(
                    name=metric.name,
                    outcome=planned,
                    summary=f"{metric.name} {planned.value.lower()} (value {value})",
                    value=None if planned in (Outcome.NODATA, Outcome.ERROR) else value,
                    threshold=">= 99",
                    advisory=metric.dry_run,  # as the real analyzer marks a dryRun metric
                )
            )
        return tuple(results)


# ------------------------------------------------------------------ GitOps


class FakeReverter(Recorder):
    """The `GitReverter` port: answers every revert with `answer` (default: reverted as
    commit ``c0ffee1``) and keeps the requests. No Git, no forge."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = RevertAnswer(RevertResultKind.REVERTED, commit="c0ffee1")
        self.requests: list[RevertRequest] = []

    async def revert(self, canary: Canary, request: RevertRequest) -> RevertAnswer:
        self._record("revert", _key(canary), request)
        self.requests.append(request)
        return self.answer


class FakeRevisions(Recorder):
    """The `RevisionSource` port: the Git revision of each target, as the test sets it
    (by ``namespace/name`` of the Canary); None (unknown) otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.revisions: dict[str, Revision] = {}

    async def detect(self, canary: Canary, target: Mapping[str, Any]) -> Revision | None:
        self._record("detect", _key(canary))
        return self.revisions.get(_key(canary))


# ------------------------------------------------------------------ events, leadership


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An Event as the controller emitted it (before aggregation)."""

    object: str  # "namespace/name" of the Canary (or of the involved object)
    type: EventType
    message: str
    kind: str = "Canary"


class FakeEvents(EventRecorder):
    """The controller's `EventRecorder`: keeps every Event it is given, in order.

    The controller takes the concrete recorder, so this is a subclass. By default it
    writes nothing to the cluster (no aggregation, no webhook forwarding); with
    ``post=True`` it also runs the real recorder, which creates and aggregates core/v1
    Events through the `Kube` it was given.
    """

    def __init__(self, kube: Kube, *, post: bool = False) -> None:
        super().__init__(kube, instance="canary-testing")
        self.post_to_kube = post
        self.recorded: list[RecordedEvent] = []

    async def emit(self, canary: Canary, event: EmitEvent) -> None:
        self.recorded.append(RecordedEvent(_key(canary), event.type, event.message))
        if self.post_to_kube:
            await super().emit(canary, event)

    async def emit_about(
        self, involved: Mapping[str, str], type_: str, reason: str, message: str
    ) -> None:
        where = f"{involved.get('namespace', '')}/{involved.get('name', '')}"
        self.recorded.append(
            RecordedEvent(where, EventType(type_), message, kind=str(involved.get("kind", "")))
        )
        if self.post_to_kube:
            await super().emit_about(involved, type_, reason, message)

    def messages(self, canary: str | None = None, type_: EventType | None = None) -> list[str]:
        """The messages, in order, optionally of one object and one type."""
        return [
            e.message
            for e in self.recorded
            if (canary is None or e.object == canary) and (type_ is None or e.type is type_)
        ]

    def warnings(self, canary: str | None = None) -> list[str]:
        return self.messages(canary, EventType.WARNING)


@dataclass
class FakeLeader:
    """The controller's `Leader`: leading unless a test says otherwise (no Lease)."""

    is_leader: bool = True
    history: list[bool] = field(default_factory=list)

    def step_down(self) -> None:
        self.history.append(False)
        self.is_leader = False

    def take_over(self) -> None:
        self.history.append(True)
        self.is_leader = True


if TYPE_CHECKING:  # each fake satisfies its port (checked by mypy)
    from canary.testing.kube import FakeKube

    _kube = FakeKube()
    _workloads: Workloads = FakeWorkloads(_kube)
    _services: Services = FakeServices(_kube)
    _router: Router = FakeRouter()
    _webhooks: WebhookCaller = FakeWebhooks()
    _notifier: Notifier = FakeNotifier()
    _analyzer: Analyzer = FakeAnalyzer()
    _reverter: GitReverter = FakeReverter()
    _revisions: RevisionSource = FakeRevisions()
    _events: EventSink = FakeEvents(_kube)
    _leader: Leader = FakeLeader()
