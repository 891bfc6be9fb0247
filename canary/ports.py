"""The seams between the controller and the outside world.

One small Protocol per external system, in the spirit of Flagger's
one-interface-per-seam (``set_routes/get_routes``, ``run_query/is_online``,
``post``), so the controller is written against these and each adapter module in
`canary.adapters` implements exactly one. Tests replace an adapter below its
seam; the sandbox replaces the whole cluster above the HTTP seam.

Kubernetes errors are translated at the boundary into one small tree::

    KubeError
     ├── NotFound        (404)
     ├── Conflict        (409: stale resourceVersion, or an apply conflict)
     ├── AlreadyExists   (409 on create)
     ├── Invalid         (422, with the server's field causes)
     ├── Forbidden       (401/403)
     └── Unavailable     (timeouts, connection errors, 429/5xx)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from canary.core.actions import Alert, EmitEvent, ScaleMode
from canary.core.observations import (
    HookAnswer,
    MetricResult,
    PrimaryObservation,
    RevertAnswer,
    RevertRequest,
    Revision,
    Routes,
    TargetObservation,
)
from canary.errors import CanaryError
from canary.model.canary import Canary, WebhookSpec
from canary.model.status import PendingAlert

Obj = dict[str, Any]
PatchType = Literal["merge", "json", "strategic"]


class KubeError(CanaryError):
    """A Kubernetes API call failed; `status` is the HTTP status when known."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    pass


class AlreadyExists(KubeError):
    pass


class Invalid(KubeError):
    def __init__(
        self, message: str, *, causes: Sequence[Mapping[str, str]] = (), status: int | None = 422
    ) -> None:
        super().__init__(message, status=status)
        self.causes = tuple(causes)


class Forbidden(KubeError):
    pass


class Unavailable(KubeError):
    @property
    def transient(self) -> bool:
        return True


class Kube(Protocol):
    """Generic access to any API resource by apiVersion and kind."""

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        """The object, or None when it does not exist: the caller's own copy."""
        ...

    async def read(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Mapping[str, Any] | None:
        """The object for reading only, or None when it does not exist.

        It may be the watch cache's own copy, shared with every other reader, so it must
        never be changed: an idle pass reads a handful of objects and copying each was
        the largest part of its CPU. Use `get` for an object to change and write back.
        (The fakes in `canary.testing` hand out objects that raise on any change.)
        """
        ...

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]: ...

    async def read_list(
        self, api_version: str, kind: str, namespace: str, *, label_selector: str | None = None
    ) -> Sequence[Mapping[str, Any]]:
        """The objects of one namespace for reading only: `list` as `read` is to `get`.

        They may be the watch cache's own, shared with every reader, so they must never be
        changed; a check that looks at every Canary of a namespace would otherwise copy them
        all on every initializing pass.
        """
        ...

    async def create(self, obj: Obj) -> Obj: ...

    async def replace(self, obj: Obj) -> Obj:
        """PUT; the object's resourceVersion is a precondition (Conflict if stale)."""
        ...

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Any,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
    ) -> Obj: ...

    async def apply(self, obj: Obj, *, field_manager: str, force: bool = False) -> Obj:
        """Server-side apply."""
        ...

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: Literal["Background", "Foreground", "Orphan"] = "Background",
    ) -> bool:
        """True if something was deleted, False if it was already gone."""
        ...


class Workloads(Protocol):
    """The target and its ``-primary`` clone (Deployment or DaemonSet)."""

    async def observe(
        self, canary: Canary, *, now: datetime | None = None, since: datetime | None = None
    ) -> tuple[TargetObservation | None, PrimaryObservation | None]:
        """The target (None if missing) and the primary (None if not created yet).

        ``now`` is the tick's time (readiness deadlines); ``since`` is when the current
        rollout began (DaemonSets have no progress conditions of their own).
        """
        ...

    async def ensure_primary(self, canary: Canary) -> None: ...

    async def promote(self, canary: Canary) -> None: ...

    async def scale_target(self, canary: Canary, mode: ScaleMode) -> None: ...

    async def reconcile_primary_scaler(self, canary: Canary, init: bool) -> None: ...

    async def pause_target_scaler(self, canary: Canary, paused: bool) -> None: ...

    async def finalize(self, canary: Canary) -> None: ...

    async def find_conflicting_canaries(self, canary: Canary) -> list[str]:
        """Other Canaries with the same target (Flagger's as ``flagger.app/<name>``)."""
        ...


class Services(Protocol):
    """The ``<svc>``, ``<svc>-primary`` and ``<svc>-canary`` Services."""

    async def initialize(self, canary: Canary, target: Mapping[str, Any]) -> None:
        """Create or update ``<svc>-primary`` and ``<svc>-canary``."""
        ...

    async def reconcile_apex(self, canary: Canary, target: Mapping[str, Any]) -> None:
        """Point the apex ``<svc>`` at the primary pods (taking it over if it exists)."""
        ...

    async def finalize(self, canary: Canary, target: Mapping[str, Any] | None) -> None:
        """Give the apex Service back to the target (``revertOnDeletion``)."""
        ...


class RevisionSource(Protocol):
    async def detect(self, canary: Canary, target: Mapping[str, Any]) -> Revision | None:
        """The Git revision the target's current spec came from, if any reconciler says."""
        ...


@dataclass(frozen=True, slots=True)
class RequiredApi:
    """A kind a router writes, and what to install when the API server does not serve it."""

    api_version: str
    kind: str
    install: str  # "install Istio (its CRDs in networking.istio.io)"

    def __str__(self) -> str:
        return f"{self.api_version} {self.kind}"


class Discovery(Protocol):
    """What the API server serves (discovery, cached per process)."""

    async def served(self, api_version: str, kind: str) -> bool:
        """Whether ``kind`` is served in ``api_version``; `Unavailable` when the server
        cannot tell now."""
        ...


class Router(Protocol):
    """The traffic seam: one implementation per ``spec.provider``."""

    def required_apis(self, canary: Canary) -> tuple[RequiredApi, ...]:
        """The kinds this router writes for ``canary`` that a cluster may lack (a mesh's
        CRDs): the controller checks them before it creates anything for the canary."""
        ...

    async def reconcile(self, canary: Canary) -> None:
        """Create or update the routing objects; never reset weights or mirroring."""
        ...

    async def set_routes(
        self, canary: Canary, primary: int, canary_weight: int, mirrored: bool
    ) -> None: ...

    async def get_routes(self, canary: Canary) -> Routes | None:
        """The weights the routing object holds now; None if it does not exist yet."""
        ...

    async def finalize(self, canary: Canary) -> None:
        """Restore what the controller took over (``revertOnDeletion``)."""
        ...


class WebhookCaller(Protocol):
    async def call(
        self, canary: Canary, hook: WebhookSpec, phase: str, checksum: str
    ) -> HookAnswer: ...

    async def post_event(self, canary: Canary, event: EmitEvent, phase: str, checksum: str) -> None:
        """Forward a recorded event to `event` hooks or the global event webhook."""
        ...


class Notifier(Protocol):
    """Alerts to people. An alert the controller records in ``status.pendingAlerts`` is
    handed over with `deliver` after the status write (again after a restart); one with no
    status to record it in goes with `notify`."""

    async def notify(self, canary: Canary, alert: Alert) -> None:
        """Queue the alert for delivery; never blocks a tick and never raises."""
        ...

    def destinations(self, canary: Canary, alert: Alert) -> tuple[str, ...]:
        """Where the alert goes (``namespace/name`` of each AlertProvider, or ``global``);
        empty when nobody listens (nothing to record)."""
        ...

    async def deliver(self, canary: Canary, pending: PendingAlert) -> None:
        """Queue a recorded alert for each destination not yet delivered or queued in this
        process; never blocks a pass and never raises. When a destination is done (sent,
        or given up after the budget), the notifier's owner removes it from the status."""
        ...

    def settled(self, key: str, destination: str) -> bool:
        """Whether this process is done with one destination of a recorded alert."""
        ...


class Analyzer(Protocol):
    async def analyze(
        self,
        canary: Canary,
        now: datetime,
        previous: Sequence[Mapping[str, Any]],
        *,
        last_step: bool = True,
    ) -> tuple[MetricResult, ...]:
        """Run and judge every metric; failures come back as results, not exceptions.

        ``last_step``: a passing tick would promote (see ``AnalysisRequest``)."""
        ...


class GitReverter(Protocol):
    async def revert(self, canary: Canary, request: RevertRequest) -> RevertAnswer:
        """Revert ``request.bad_revision`` to ``request.good_revision`` in Git (push, or a
        pull request); failures come back as answers, not exceptions."""
        ...


class EventSink(Protocol):
    async def emit(self, canary: Canary, event: EmitEvent) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class Leader(Protocol):
    """Whether this replica holds the Lease (``canary.controller.leader``) and may act now:
    the reconcile pass and the Git work ask it before they write."""

    @property
    def is_leader(self) -> bool: ...
