"""One reconcile pass of one Canary: observe → step → execute → write status → effects.

This is the imperative shell around the pure core. It reads the Canary from the
watch cache (an idle pass makes no API call), gathers the observations through the
adapters, lets `canary.core.drive` decide (answering its requests
for gate answers, metric verdicts and Git reverts), runs the actions in order,
and writes the status once, only after every action succeeded, with the
Canary's resourceVersion as a precondition. Effects (Events, alerts,
post-rollout hooks) run after the status is written, so a controller killed at
any line repeats at most idempotent actions. The alerts of a pass are recorded in
that same write (``status.pendingAlerts``, `canary.core.outbox`) and handed to the
notifier after it; a destination leaves the record once it has the message, so a
controller killed in between delivers them after its restart instead of losing them.

A Canary that cannot be parsed gets a ``SpecValid=False`` condition and one
Warning Event naming the fields; it never disturbs other canaries. A Canary whose router
needs kinds the API server does not serve (``provider: istio`` without Istio's CRDs) gets a
``RouterReady=False`` condition and one Warning Event naming them and what to install, and
nothing is created for it until they are served: the pass looks again at a growing delay
(:data:`ROUTER_API_RETRY_SECONDS`), with one log line each time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from canary.controller.events import EventRecorder
from canary.controller.logs import describe
from canary.controller.metrics import Metrics
from canary.core import (
    Action,
    AnalysisRequest,
    Answer,
    CallHooks,
    Decision,
    EmitEvent,
    EnsurePrimary,
    EventType,
    Finalize,
    HookAnswer,
    HookRequest,
    Observations,
    PauseTargetScaler,
    Promote,
    ReconcileApex,
    ReconcilePrimaryScaler,
    ReconcileRouter,
    ReconcileServices,
    Request,
    RevertAnswer,
    RevertRequest,
    RevertResultKind,
    Routes,
    ScaleTarget,
    SendAlert,
    SetRoutes,
    drive,
    step,
)
from canary.core.outbox import MAX_PENDING_ALERTS, merge_pending, pending_alerts, with_pending
from canary.model import (
    API_VERSION,
    Canary,
    CanaryStatus,
    Commands,
    Phase,
    SpecError,
    cross_namespace_refs,
    parse_canary,
)
from canary.model.canary import DEFAULT_INTERVAL_SECONDS
from canary.model.duration import DurationError, parse_duration
from canary.model.status import PendingAlert
from canary.ports import (
    Analyzer,
    Conflict,
    Discovery,
    GitReverter,
    Kube,
    KubeError,
    Leader,
    Notifier,
    RequiredApi,
    RevisionSource,
    Router,
    Services,
    WebhookCaller,
    Workloads,
)
from canary.settings import Settings
from canary.timestamps import format_time, parse_time

log = logging.getLogger("canary.controller")

FINALIZER = "finalizer.canary.gitops.dev"
STANDBY_SECONDS = 5.0
STATUS_RETRIES = 3
SPEC_VALID = "SpecValid"
ROUTER_READY = "RouterReady"
_SHELL_CONDITIONS = frozenset({SPEC_VALID, ROUTER_READY})  # written by the shell, not the core
ACTION_RETRY_SECONDS = 10.0
#: Delays (before --time-scale) between the checks of a router's missing APIs.
ROUTER_API_RETRY_SECONDS = (10.0, 30.0, 60.0, 120.0, 300.0)


PENDING_ALERTS = "pendingAlerts"


def _without_pending(status: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k != PENDING_ALERTS}


def checksum(status: CanaryStatus) -> str:
    """A run's identity for webhook payloads (Flagger: hash of configs + template)."""
    raw = json.dumps([dict(status.tracked_configs), status.last_applied_spec], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:10]


def _now() -> datetime:
    return datetime.now(UTC)


def status_patch(
    raw: Mapping[str, Any], before: Mapping[str, Any], after: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON merge patch from the stored status to ours.

    Only our own top-level fields are written (others' fields are left alone), and in
    nested maps a key that is gone is deleted with ``null``: a merge patch otherwise
    only ever adds keys, and a ConfigMap the target stopped using would stay tracked.
    """
    out: dict[str, Any] = {}
    for key, value in after.items():
        if key not in raw:
            if value is not None:
                out[key] = value
        elif raw[key] != value:
            out[key] = _nested(raw[key], value)
        elif before.get(key) != value:
            out[key] = value
    return out


def _nested(old: Any, new: Any) -> Any:
    if not (isinstance(old, Mapping) and isinstance(new, Mapping)):
        return new
    out: dict[str, Any] = {k: None for k in old if k not in new}
    for key, value in new.items():
        if key not in old or old[key] != value:
            out[key] = _nested(old.get(key), value) if key in old else value
    return out


def _parse_time(text: str) -> datetime | None:
    try:
        return parse_time(text)
    except ValueError:
        return None


def router_apis_message(provider: str, missing: tuple[RequiredApi, ...]) -> str:
    """What the user reads when a router's kinds are not served: which, and what to install."""
    installs = "; ".join(dict.fromkeys(api.install for api in missing))
    return (
        f"provider {provider} needs {', '.join(str(api) for api in missing)}, which the API "
        f"server does not serve: {installs}. Nothing is created for this canary until then"
    )


def body_interval(body: Mapping[str, Any]) -> float:
    """The interval of a Canary we may not be able to parse (for retry timing)."""
    spec = body.get("spec") or {}
    analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
    try:
        return max(10.0, parse_duration(str(analysis.get("interval") or "1m")))
    except DurationError:
        return float(DEFAULT_INTERVAL_SECONDS)


class CanaryController:
    """Runs passes; holds every adapter the shell needs."""

    def __init__(
        self,
        *,
        kube: Kube,
        workloads: Workloads,
        services: Services,
        routers: Callable[[str], Router],
        webhooks: WebhookCaller,
        notifier: Notifier,
        analyzer: Analyzer,
        reverter: GitReverter,
        revisions: RevisionSource,
        events: EventRecorder,
        leader: Leader,
        metrics: Metrics,
        settings: Settings,
        discovery: Discovery | None = None,
    ) -> None:
        self.kube = kube
        self.discovery = discovery  # None: a router's kinds are taken as served
        self.workloads = workloads
        self.services = services
        self.routers = routers
        self.webhooks = webhooks
        self.notifier = notifier
        self.analyzer = analyzer
        self.reverter = reverter
        self.revisions = revisions
        self.events = events
        self.leader = leader
        self.metrics = metrics
        self.settings = settings
        self._invalid: dict[tuple[str, str], str] = {}
        #: Canaries waiting for their router's kinds: the message, and the checks so far.
        self._router_waits: dict[tuple[str, str], tuple[str, int]] = {}
        #: The last parse of each Canary, by resourceVersion: an idle pass reads an
        #: unchanged object, and parsing it again was a fifth of that pass's CPU.
        self._parsed: dict[tuple[str, str], tuple[str, Canary, CanaryStatus]] = {}
        self._status_dicts: dict[tuple[str, str], tuple[CanaryStatus, dict[str, Any]]] = {}

    # ------------------------------------------------------------------ a pass

    async def run_woken_pass(self, namespace: str, name: str) -> float | None:
        """A pass woken early by a change to the Canary (a command, an edit): it acts on
        the change, but the run's next analysis step waits for its interval (a ``canary
        promote`` while no gate waits must not advance the canary a step early)."""
        return await self.run_pass(namespace, name, woken=True)

    async def run_pass(self, namespace: str, name: str, *, woken: bool = False) -> float | None:
        if not self.leader.is_leader:
            return STANDBY_SECONDS  # a standby reads nothing
        # Lent by the watch cache (`Kube.read`): a pass never changes the body it read.
        body = await self.kube.read(API_VERSION, "Canary", name, namespace)
        if body is None:
            self._parsed.pop((namespace, name), None)
            self._status_dicts.pop((namespace, name), None)
            self._router_waits.pop((namespace, name), None)
            return None
        interval = body_interval(body)
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            return await self._finalize_deleted(body)
        try:
            canary, stored = self._parse(body)
        except SpecError as exc:
            await self._report_invalid(body, exc)
            return interval
        # The spec parses now and the router's kinds are served (checked below): a
        # SpecValid=False or RouterReady=False left from before goes.
        status = stored.with_(
            conditions=tuple(c for c in stored.conditions if c.type not in _SHELL_CONDITIONS)
        )
        if status.phase in (Phase.NONE, Phase.INITIALIZING) and await self._yields_target(
            canary, body
        ):
            return interval
        self._invalid.pop((namespace, name), None)
        await self._deliver_pending(canary, stored)  # recorded by an earlier pass (or process)
        missing = await self._missing_apis(canary)
        if missing:
            return await self._wait_for_apis(canary, stored, missing)
        body = await self._sync_finalizer(body, canary)
        started = asyncio.get_running_loop().time()
        decision, target_obj, router = await self._decide(canary, status, body, woken=woken)
        if not self.leader.is_leader:
            return min(interval, 5.0)
        failed = await self._execute(canary, decision.actions, target_obj, router)
        if failed:
            return min(ACTION_RETRY_SECONDS, interval)
        recorded, dropped = self._record_alerts(canary, stored, decision)
        if not await self._write_status_retrying(body, stored, recorded):
            log.info("canary %s/%s changed during the pass; running it again", namespace, name)
            return 0.0
        await self._run_effects(canary, decision, recorded=True)
        await self._deliver_pending(canary, recorded)
        await self._give_up(canary, dropped)
        self.metrics.observe_duration(canary, asyncio.get_running_loop().time() - started)
        self.metrics.record(
            canary, status, decision.status, decision.status.phase.value or "Initializing"
        )
        if decision.requeue_after is not None:
            return decision.requeue_after
        return float(canary.spec.interval_seconds)

    async def _missing_apis(self, canary: Canary) -> tuple[RequiredApi, ...]:
        """The kinds the canary's router writes that the API server does not serve."""
        if self.discovery is None:
            return ()
        router = self.routers(canary.spec.provider or self.settings.default_provider)
        missing = []
        for api in router.required_apis(canary):
            if not await self.discovery.served(api.api_version, api.kind):
                missing.append(api)
        if not missing:
            self._router_waits.pop((canary.namespace, canary.name), None)
        return tuple(missing)

    async def _wait_for_apis(
        self, canary: Canary, stored: CanaryStatus, missing: tuple[RequiredApi, ...]
    ) -> float:
        """Report the router's missing kinds (condition and Event once, a log line per
        check) and return the delay before the next check; nothing else is done."""
        key = (canary.namespace, canary.name)
        message = router_apis_message(
            canary.spec.provider or self.settings.default_provider, missing
        )
        previous, checks = self._router_waits.get(key, ("", 0))
        delay = ROUTER_API_RETRY_SECONDS[min(checks, len(ROUTER_API_RETRY_SECONDS) - 1)]
        self._router_waits[key] = (message, checks + 1)
        if previous != message:  # the Event logs the message: one line for this check too
            await self.events.emit(canary, EmitEvent(EventType.WARNING, message))
        else:
            log.warning(
                "%s/%s: still waiting for %s; checking again in %.3gs",
                canary.namespace,
                canary.name,
                ", ".join(str(api) for api in missing),
                delay * self.settings.time_scale,
            )
        held = stored.condition(ROUTER_READY)
        if held is None or (held.status, held.message) != ("False", message):
            conditions = _false_condition(stored, ROUTER_READY, "APINotServed", message)
            await self._note_status(*key, {"conditions": conditions}, ROUTER_READY)
        return delay

    async def _note_status(
        self, namespace: str, name: str, fields: Mapping[str, Any], what: str
    ) -> None:
        """Write a few status fields outside a pass's decision (a spec error, a conflict, a
        missing router API): best effort, a failure is one log line and the next pass
        writes again."""
        try:
            await self.kube.patch(
                API_VERSION,
                "Canary",
                name,
                namespace,
                {"status": dict(fields)},
                subresource="status",
            )
        except KubeError as err:
            log.warning("cannot record %s of %s/%s: %s", what, namespace, name, err)

    def _parse(self, body: Mapping[str, Any]) -> tuple[Canary, CanaryStatus]:
        """The Canary and its stored status, parsed once per resourceVersion (both are
        frozen, so a pass can never change the memoized copy)."""
        meta = body.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        version = meta.get("resourceVersion") or ""
        memo = self._parsed.get(key)
        if memo is not None and version and memo[0] == version:
            return memo[1], memo[2]
        canary = parse_canary(body, default_provider=self.settings.default_provider)
        if self.settings.no_cross_namespace_refs and cross_namespace_refs(canary):
            raise SpecError(cross_namespace_refs(canary))
        stored = CanaryStatus.from_dict(body.get("status"))
        self._parsed[key] = (version, canary, stored)
        return canary, stored

    def _status_dict(self, body: Mapping[str, Any], status: CanaryStatus) -> dict[str, Any]:
        """``status.to_dict()``, kept while the same parsed status is read again (the
        memo of `_parse` hands out the same object until the Canary changes)."""
        meta = body.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        held = self._status_dicts.get(key)
        if held is not None and held[0] is status:
            return held[1]
        as_dict = status.to_dict()
        self._status_dicts[key] = (status, as_dict)
        return as_dict

    async def _decide(
        self,
        canary: Canary,
        status: CanaryStatus,
        body: Mapping[str, Any],
        *,
        woken: bool = False,
    ) -> tuple[Decision, Mapping[str, Any] | None, Router]:
        spec = canary.spec
        router = self.routers(spec.provider or self.settings.default_provider)
        target_obj = await self.kube.read(
            spec.target_ref.api_version or "apps/v1",
            spec.target_ref.kind,
            spec.target_ref.name,
            canary.namespace,
        )
        now = _now()
        since = _parse_time(status.last_transition_time)
        target, primary = await self.workloads.observe(canary, now=now, since=since)
        routes: Routes | None = None
        if primary is not None:
            routes = await router.get_routes(canary)
        revision = (
            await self.revisions.detect(canary, target_obj) if target_obj is not None else None
        )
        commands = Commands.from_annotations(canary.annotations, status.handled_commands)
        obs = Observations(
            now=now,
            target=target,
            primary=primary,
            routes=routes,
            revision=revision,
            commands=commands,
            generation=canary.generation,
            woken=woken,
        )
        run_id = checksum(status)

        async def answer(request: Request) -> Answer:
            if isinstance(request, HookRequest):
                hook = next(
                    h
                    for h in spec.analysis_or_default.webhooks
                    if h.name == request.hook and h.type is request.type
                )
                return await self.webhooks.call(canary, hook, request.phase, run_id)
            if isinstance(request, AnalysisRequest):
                previous = [m.to_dict() for m in status.analysis]
                return await self.analyzer.analyze(
                    canary, obs.now, previous, last_step=request.last_step
                )
            if isinstance(request, RevertRequest):
                return await self._revert(canary, request)
            raise TypeError(f"unknown request {request!r}")  # pragma: no cover - a closed union

        decision = await drive(canary, status, obs, answer)
        return decision, target_obj, router

    async def _revert(self, canary: Canary, request: RevertRequest) -> RevertAnswer:
        try:
            return await self.reverter.revert(canary, request)
        except Exception as exc:  # a reverter bug must not wedge the canary
            log.error(
                "git revert for %s/%s crashed: %s", canary.namespace, canary.name, describe(exc)
            )
            log.debug("the crash of the git revert", exc_info=exc)
            return RevertAnswer(
                RevertResultKind.FAILED, message=f"internal error: {type(exc).__name__}"
            )

    # ------------------------------------------------------------------ actions

    async def _execute(
        self,
        canary: Canary,
        actions: tuple[Action, ...],
        target_obj: Mapping[str, Any] | None,
        router: Router,
    ) -> bool:
        """Run actions in order; on the first failure emit a Warning and stop (True)."""
        for action in actions:
            if not self.leader.is_leader:
                return True
            try:
                await self._one(canary, action, target_obj, router)
            except Exception as exc:  # an action failing ends the pass, never the controller
                what = type(action).__name__
                # The Event is logged (one line, WARNING); the traceback only at DEBUG.
                log.debug("%s/%s: %s failed", canary.namespace, canary.name, what, exc_info=exc)
                await self.events.emit(
                    canary, EmitEvent(EventType.WARNING, f"{what} failed: {exc}")
                )
                return True
        return False

    async def _one(
        self, canary: Canary, action: Action, target_obj: Mapping[str, Any] | None, router: Router
    ) -> None:
        if isinstance(action, ReconcileServices):
            if target_obj is not None:
                await self.services.initialize(canary, target_obj)
        elif isinstance(action, EnsurePrimary):
            await self.workloads.ensure_primary(canary)
        elif isinstance(action, ReconcilePrimaryScaler):
            await self.workloads.reconcile_primary_scaler(canary, action.init)
        elif isinstance(action, ReconcileApex):
            if target_obj is not None:
                await self.services.reconcile_apex(canary, target_obj)
        elif isinstance(action, ReconcileRouter):
            await router.reconcile(canary)
        elif isinstance(action, SetRoutes):
            await router.set_routes(canary, action.primary, action.canary, action.mirrored)
        elif isinstance(action, ScaleTarget):
            await self.workloads.scale_target(canary, action.mode)
        elif isinstance(action, PauseTargetScaler):
            await self.workloads.pause_target_scaler(canary, action.paused)
        elif isinstance(action, Promote):
            await self.workloads.promote(canary)
        elif isinstance(action, Finalize):
            await self.workloads.finalize(canary)
            await self.services.finalize(canary, target_obj)
            await router.finalize(canary)
        else:  # pragma: no cover - the action union is closed
            raise TypeError(f"unknown action {action!r}")

    # ------------------------------------------------------------------ status

    async def _write_status(
        self, body: Mapping[str, Any], old: CanaryStatus, new: CanaryStatus
    ) -> None:
        before = self._status_dict(body, old)
        # An idle pass decides the status it read: one dict serves both sides of the diff.
        after = before if new == old else new.to_dict()
        changed = status_patch(body.get("status") or {}, before, after)
        if not changed:
            return
        meta = body.get("metadata") or {}
        patch = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": changed}
        await self.kube.patch(
            API_VERSION, "Canary", meta["name"], meta["namespace"], patch, subresource="status"
        )

    async def _write_status_retrying(
        self, body: Mapping[str, Any], old: CanaryStatus, new: CanaryStatus
    ) -> bool:
        """Write the status; False when the Canary changed in a way the decision missed.

        A Conflict caused by metadata alone (an annotation, a label, the GitSource's
        marks) leaves the decision valid: the same status is written again on the fresh
        resourceVersion. Re-deciding would repeat the pass's actions, e.g. step the
        weight twice within one interval.
        """
        meta = body.get("metadata") or {}
        for _ in range(STATUS_RETRIES):
            try:
                await self._write_status(body, old, new)
                return True
            except Conflict:
                fresh = await self.kube.get(
                    API_VERSION, "Canary", meta.get("name", ""), meta.get("namespace")
                )
                if fresh is None:
                    return True  # deleted meanwhile: nothing to record
                same_spec = (fresh.get("metadata") or {}).get("generation") == meta.get(
                    "generation"
                )
                theirs, ours = fresh.get("status") or {}, body.get("status") or {}
                if not same_spec or _without_pending(theirs) != _without_pending(ours):
                    return False
                if theirs.get(PENDING_ALERTS) != ours.get(PENDING_ALERTS):
                    # A delivery removed what it delivered: keep that, and add ours.
                    stored = CanaryStatus.from_dict({PENDING_ALERTS: theirs.get(PENDING_ALERTS)})
                    new = new.with_(
                        pending_alerts=merge_pending(
                            old.pending_alerts, new.pending_alerts, stored.pending_alerts
                        )
                    )
                body = fresh
        return False

    def _record_alerts(
        self, canary: Canary, stored: CanaryStatus, decision: Decision
    ) -> tuple[CanaryStatus, tuple[PendingAlert, ...]]:
        """The status to write: the pass's alerts recorded in ``pendingAlerts`` (each with
        the destinations it is owed), and what this process has delivered since taken out;
        plus the oldest records beyond the limit, which are given up."""
        status = decision.status
        alerts = decision.alerts
        if not alerts and not status.pending_alerts:
            return status, ()
        owner = canary.uid or f"{canary.namespace}/{canary.name}"
        added = pending_alerts(
            owner,
            stored,
            ((a, self.notifier.destinations(canary, a)) for a in alerts),
            format_time(_now()),
        )
        return with_pending(status, added, self.notifier.settled)

    async def _deliver_pending(self, canary: Canary, status: CanaryStatus) -> None:
        for pending in status.pending_alerts:
            await self.notifier.deliver(canary, pending)

    async def _give_up(self, canary: Canary, dropped: tuple[PendingAlert, ...]) -> None:
        for pending in dropped:
            self.metrics.notifications.labels(provider_type="none", outcome="failed").inc()
            self.metrics.notification_failures.labels(provider_type="none").inc()
            await self.events.emit(
                canary,
                EmitEvent(
                    EventType.WARNING,
                    f"Notification {pending.kind} for {canary.name}.{canary.namespace} failed: "
                    f"given up, more than {MAX_PENDING_ALERTS} notifications are waiting",
                ),
            )

    async def _run_effects(
        self, canary: Canary, decision: Decision, *, recorded: bool = False
    ) -> None:
        """Events, alerts and post-rollout hooks. ``recorded``: the alerts with somewhere to
        go are in the status written (`_record_alerts`) and leave with `_deliver_pending`."""
        status = decision.status
        for effect in decision.effects:
            if isinstance(effect, EmitEvent):
                await self.events.emit(canary, effect)
            elif isinstance(effect, SendAlert):
                if not recorded or not self.notifier.destinations(canary, effect.alert):
                    await self.notifier.notify(canary, effect.alert)
            elif isinstance(effect, CallHooks):
                for hook in canary.spec.analysis_or_default.hooks(effect.type):
                    result: HookAnswer = await self.webhooks.call(
                        canary, hook, effect.phase, checksum(status)
                    )
                    if result.ok:
                        await self.events.emit(
                            canary,
                            EmitEvent(EventType.NORMAL, f"Post-rollout check {hook.name} passed"),
                        )
                    else:
                        await self.events.emit(
                            canary,
                            EmitEvent(
                                EventType.WARNING,
                                f"Post-rollout hook {hook.name} failed {result.message}",
                            ),
                        )

    # ------------------------------------------------------------------ spec errors, finalizer, deletion

    async def _yields_target(self, canary: Canary, body: Mapping[str, Any]) -> bool:
        """Two canaries on one target are reported, not fought over: the older one keeps it.

        Checked while a canary initializes (a canary that already owns its primary
        never gives it up); Flagger's own Canaries always win.
        """
        others = await self.workloads.find_conflicting_canaries(canary)
        if not others:
            return False
        mine = str((body.get("metadata") or {}).get("creationTimestamp") or "")
        winner = None
        for other in others:
            if other.startswith("flagger.app/"):
                winner = other
                break
            obj = await self.kube.read(API_VERSION, "Canary", other, canary.namespace)
            theirs = str(((obj or {}).get("metadata") or {}).get("creationTimestamp") or "")
            if (theirs, other) < (mine, canary.name):
                winner = other
                break
        if winner is None:
            return False
        message = (
            f"Canary {winner} already manages {canary.spec.target_ref.kind} "
            f"{canary.spec.target_ref.name}.{canary.namespace}; {canary.name} waits and changes nothing"
        )
        if self._invalid.get((canary.namespace, canary.name)) != message:
            self._invalid[(canary.namespace, canary.name)] = message
            await self.events.emit(canary, EmitEvent(EventType.WARNING, message))
            await self._note_status(
                canary.namespace, canary.name, {"message": message}, "the conflict"
            )
        return True

    async def _report_invalid(self, body: Mapping[str, Any], exc: SpecError) -> None:
        meta = body.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        message = "; ".join(str(i) for i in exc.errors) or str(exc)
        status = CanaryStatus.from_dict(body.get("status"))
        conditions = _false_condition(status, SPEC_VALID, "InvalidSpec", message)
        if self._invalid.get((namespace, name)) != message:
            self._invalid[(namespace, name)] = message
            stub = Canary(
                name=name, namespace=namespace, spec=_stub_spec(), uid=str(meta.get("uid", ""))
            )
            await self.events.emit(
                stub, EmitEvent(EventType.WARNING, f"Invalid Canary spec: {message}")
            )
            fields = {"conditions": conditions, "message": f"Invalid spec: {message}"}
            await self._note_status(namespace, name, fields, "the spec error")

    async def _sync_finalizer(self, body: Mapping[str, Any], canary: Canary) -> Mapping[str, Any]:
        meta = body.get("metadata") or {}
        finalizers = list(meta.get("finalizers") or [])
        want = canary.spec.revert_on_deletion
        if want == (FINALIZER in finalizers):
            return body
        updated = [f for f in finalizers if f != FINALIZER] + ([FINALIZER] if want else [])
        return await self.kube.patch(
            API_VERSION,
            "Canary",
            canary.name,
            canary.namespace,
            {"metadata": {"finalizers": updated, "resourceVersion": meta.get("resourceVersion")}},
        )

    async def _finalize_deleted(self, body: Mapping[str, Any]) -> float | None:
        meta = body.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        self._parsed.pop(key, None)
        self._status_dicts.pop(key, None)
        if FINALIZER not in (meta.get("finalizers") or []):
            return None
        try:
            canary = parse_canary(body, default_provider=self.settings.default_provider)
        except SpecError as exc:
            # Keep the finalizer: dropping it now could let the primary be collected while
            # the target sits at zero replicas. Fix the spec (or remove the finalizer by hand).
            await self._report_invalid(body, exc)
            stub = Canary(
                name=str(meta.get("name")),
                namespace=str(meta.get("namespace")),
                spec=_stub_spec(),
                uid=str(meta.get("uid", "")),
            )
            await self.events.emit(
                stub,
                EmitEvent(
                    EventType.WARNING,
                    "Cannot restore the target on deletion while the spec is invalid; fix it or remove the finalizer",
                ),
            )
            return body_interval(body)
        status = CanaryStatus.from_dict(body.get("status"))
        if status.phase not in (Phase.NONE, Phase.INITIALIZING):  # never took the target over
            spec = canary.spec
            router = self.routers(spec.provider or self.settings.default_provider)
            target_obj = await self.kube.get(
                spec.target_ref.api_version or "apps/v1",
                spec.target_ref.kind,
                spec.target_ref.name,
                canary.namespace,
            )
            decision = step(
                canary,
                status,
                Observations(now=_now(), target=None, deleting=True, generation=canary.generation),
            )
            if await self._execute(canary, decision.actions, target_obj, router):
                return ACTION_RETRY_SECONDS
            await self._run_effects(canary, decision)
        finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
        try:
            await self.kube.patch(
                API_VERSION,
                "Canary",
                str(meta.get("name")),
                str(meta.get("namespace")),
                {
                    "metadata": {
                        "finalizers": finalizers,
                        "resourceVersion": meta.get("resourceVersion"),
                    }
                },
            )
        except Conflict:
            return 0.0  # someone else changed the list: read it again, never write back theirs
        return None


def _stub_spec() -> Any:
    from canary.model import ObjectRef, ServiceSpec
    from canary.model.canary import CanarySpec

    return CanarySpec(
        target_ref=ObjectRef(kind="Deployment", name=""), service=ServiceSpec(name="", port=0)
    )


def _false_condition(
    status: CanaryStatus, kind: str, reason: str, message: str
) -> list[dict[str, Any]]:
    """The status's conditions with ``kind`` replaced by a False one saying ``message``."""
    conditions = [c.to_dict() for c in status.conditions if c.type != kind]
    stamp = format_time(_now())
    conditions.append(
        {
            "type": kind,
            "status": "False",
            "reason": reason,
            "message": message,
            "lastUpdateTime": stamp,
            "lastTransitionTime": stamp,
        }
    )
    return conditions
