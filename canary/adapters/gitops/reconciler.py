"""The built-in Git reconciler: one pass of a ``GitSource``, written against a small apply port.

A pass fetches the branch head (shallow), renders the objects under ``spec.path`` (plain
manifests, and kustomizations built with real kustomize, :mod:`.render`), applies every
object with server-side apply under the field manager ``canary-engine-gitsource``, marks each
one with where it came from, prunes objects it applied before that are gone from Git (only
with ``prune: true`` and only objects that carry our source annotation), and returns the new
status. The Kubernetes side is the :class:`KubeApply` Protocol, so the operator wires it to the
real ``kubernetes.aio`` adapter and tests use an in-memory fake.

Pure parts (:func:`parse_gitsource_spec`, :func:`plan_apply`, :func:`plan_prune`, the status
and condition helpers) are separate from the I/O in :class:`GitSourceReconciler`.

Marks on every applied object (``metadata.annotations``, never the pod template, so marking
does not restart pods):

* ``canary.gitops.dev/source: <namespace>/<gitsource name>``
* ``canary.gitops.dev/revision: <branch>@sha1:<40 hex digits>`` (Flux's revision format)
* ``canary.gitops.dev/source-path: <repository-relative file>``
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

from canary.adapters.gitops.credentials import GitCredentials, redactor_for
from canary.adapters.gitops.git import GitError, check_branch, check_relative_path, check_url
from canary.adapters.gitops.kustomize import Kustomize, KustomizeError
from canary.adapters.gitops.manifests import (
    Manifest,
    ManifestError,
    ManifestRef,
)
from canary.adapters.gitops.render import render_manifests
from canary.adapters.gitops.revert import CommitIdentity
from canary.adapters.gitops.revision import (
    ANNOTATION_REVISION,
    ANNOTATION_SOURCE,
    ANNOTATION_SOURCE_PATH,
    format_revision,
)
from canary.adapters.gitops.workspace import GitRepository, Workspace
from canary.adapters.redaction import Redactor
from canary.errors import CanaryError
from canary.model.duration import DurationError
from canary.model.duration import parse_duration as model_duration
from canary.timestamps import format_time

__all__ = [
    "ANNOTATION_REVISION",
    "ANNOTATION_SOURCE",
    "ANNOTATION_SOURCE_PATH",
    "FIELD_MANAGER",
    "ApplyPlan",
    "GitSourceCondition",
    "GitSourceReconciler",
    "GitSourceSpec",
    "GitSourceSpecError",
    "GitSourceStatus",
    "KubeApply",
    "KubeApplyError",
    "PlannedObject",
    "ReconcileResult",
    "SourceRef",
    "format_revision",
    "parse_duration",
    "parse_gitsource_spec",
    "plan_apply",
    "plan_prune",
]

logger = logging.getLogger("canary.adapters.gitops.reconciler")

FIELD_MANAGER = "canary-engine-gitsource"

#: Kinds that live outside namespaces, by (API group, kind). CRDs in the same pass add theirs.
CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("networking.k8s.io", "IngressClass"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("apiregistration.k8s.io", "APIService"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("policy", "PodSecurityPolicy"),
        ("gateway.networking.k8s.io", "GatewayClass"),
    }
)

_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


# -- spec ------------------------------------------------------------------------------------------


class GitSourceSpecError(CanaryError, ValueError):
    """A GitSource spec is invalid; ``problems`` are ``"<field path>: <what was expected>"``."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class GitSourceSpec:
    url: str
    branch: str = "main"
    path: str = ""
    interval_seconds: float = 60.0
    timeout_seconds: float = 60.0
    suspend: bool = False
    prune: bool = True
    secret_name: str | None = None
    commit_author: CommitIdentity | None = None


def parse_duration(value: object, where: str) -> float:
    """A Go-style duration (``30s``, ``5m``, ``1h30m``, ``500ms``) in seconds: the one parser
    of :mod:`canary.model.duration`, with the field's path in the error."""
    try:
        if isinstance(value, bool) or not isinstance(value, str):
            raise DurationError(str(value))
        return model_duration(value)
    except DurationError:
        raise GitSourceSpecError(
            [f"{where}: expected a duration like 30s, 5m or 1h30m, got {value!r}"]
        ) from None


_SPEC_KEYS = {
    "url",
    "branch",
    "path",
    "interval",
    "timeout",
    "suspend",
    "prune",
    "secretRef",
    "commitAuthor",
    "webURL",  # the repository's web page, for the dashboard's links (not used to reconcile)
}


def parse_gitsource_spec(spec: object, where: str = "spec") -> GitSourceSpec:
    """Validate a GitSource ``spec``; every problem is reported with its field path."""
    if not isinstance(spec, Mapping):
        raise GitSourceSpecError([f"{where}: expected a mapping, got {type(spec).__name__}"])
    problems: list[str] = []
    problems += [f"{where}.{k}: unknown field" for k in spec if k not in _SPEC_KEYS]
    fields = _SpecFields(spec, where, problems)
    url = fields.text("url", None)
    if not url:
        problems.append(f"{where}.url: required (file://, ssh://, git:// or https:// URL)")
    url = fields.checked("url", check_url, url) if url else ""
    branch = fields.checked("branch", check_branch, fields.text("branch", "main"))
    path = fields.checked(
        "path", lambda p: check_relative_path(p, what="path"), fields.text("path", "") or ""
    )
    interval = _positive_duration(spec, where, "interval", "1m", problems)
    timeout = _positive_duration(spec, where, "timeout", "60s", problems)
    secret_name = _secret_name(spec.get("secretRef"), f"{where}.secretRef.name", problems)
    author = _commit_author(spec.get("commitAuthor"), f"{where}.commitAuthor", problems)
    suspend, prune = fields.flag("suspend", False), fields.flag("prune", True)
    web_url = fields.text("webURL", None)
    if web_url is not None and not re.match(r"^https?://[^@/]+(/.*)?$", web_url):
        problems.append(
            f"{where}.webURL: expected an http(s) URL without credentials, got {web_url!r}"
        )
    if problems:
        raise GitSourceSpecError(problems)
    return GitSourceSpec(
        url=url,
        branch=branch,
        path=path,
        interval_seconds=interval,
        timeout_seconds=timeout,
        suspend=suspend,
        prune=prune,
        secret_name=secret_name,
        commit_author=author,
    )


@dataclass(frozen=True, slots=True)
class _SpecFields:
    """Reads a spec's scalar fields, adding each problem (with its path) to ``problems`` and
    going on with a default, so one pass over a spec reports all that is wrong with it."""

    spec: Mapping[Any, Any]
    where: str
    problems: list[str]

    def text(self, key: str, default: str | None) -> str | None:
        value = self.spec.get(key, default)
        if value is None or isinstance(value, str):
            return value
        self.problems.append(f"{self.where}.{key}: expected a string, got {type(value).__name__}")
        return default

    def flag(self, key: str, default: bool) -> bool:
        value = self.spec.get(key, default)
        if isinstance(value, bool):
            return value
        self.problems.append(f"{self.where}.{key}: expected true or false, got {value!r}")
        return False

    def checked(self, key: str, fn: Callable[[str], str], value: str | None) -> str:
        if value is None:
            return ""
        try:
            return fn(value)
        except GitError as exc:
            self.problems.append(
                f"{self.where}.{key}: {exc.message.partition(': ')[2] or exc.message}"
            )
            return value


def _positive_duration(
    spec: Mapping[Any, Any], where: str, key: str, default: str, problems: list[str]
) -> float:
    """``spec[key]`` in seconds. When it is not a positive duration the problem is recorded
    and 60 stands in, so that parsing goes on to report the spec's other problems."""
    raw = spec.get(key, default)
    try:
        seconds = parse_duration(raw, f"{where}.{key}")
    except GitSourceSpecError as exc:
        problems.extend(exc.problems)
        return 60.0
    if seconds <= 0:
        problems.append(f"{where}.{key}: expected a positive duration, got {raw!r}")
        return 60.0
    return seconds


def _secret_name(secret_ref: object, where: str, problems: list[str]) -> str | None:
    if secret_ref is None:
        return None
    if not isinstance(secret_ref, Mapping) or not isinstance(secret_ref.get("name"), str):
        problems.append(f"{where}: expected the name of a Secret")
        return None
    name: str = secret_ref["name"]
    if not _DNS_NAME.match(name):
        problems.append(f"{where}: expected a Kubernetes object name, got {name!r}")
        return None
    return name


def _commit_author(raw: object, where: str, problems: list[str]) -> CommitIdentity | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: expected a mapping with name and email")
        return None
    name, email = raw.get("name"), raw.get("email")
    if not isinstance(name, str) or not isinstance(email, str):
        problems.append(f"{where}: expected string fields name and email")
        return None
    try:
        return CommitIdentity(name, email).validated(where)
    except ValueError as exc:
        problems.append(str(exc))
        return None


# -- the Kubernetes port -------------------------------------------------------------------------


class KubeApplyError(CanaryError):
    """The API server refused a request. ``message`` is the server's own message."""

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason


@runtime_checkable
class KubeApply(Protocol):
    """What the reconciler needs from Kubernetes. Implementations raise :class:`KubeApplyError`
    with the API server's message when a request is refused, and apply a timeout of their own.
    """

    async def apply(
        self, body: Mapping[str, Any], *, field_manager: str, force_conflicts: bool
    ) -> Mapping[str, Any]:
        """Server-side apply ``body`` (PATCH ``application/apply-patch+yaml`` with
        ``fieldManager``; ``force=true`` when ``force_conflicts``). Returns the live object."""
        ...

    async def get(self, ref: ManifestRef) -> Mapping[str, Any] | None:
        """The live object, or None when it does not exist."""
        ...

    async def delete(self, ref: ManifestRef) -> bool:
        """Delete (background propagation); False when it was already gone."""
        ...

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> Sequence[Mapping[str, Any]]:
        """Objects of a kind (all namespaces when ``namespace`` is None)."""
        ...


# -- status ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


ConditionStatus = Literal["True", "False", "Unknown"]


@dataclass(frozen=True, slots=True)
class GitSourceCondition:
    """A condition of a GitSource's status: a metav1.Condition, without the
    ``lastUpdateTime`` that a Canary's conditions carry (``canary.model.Condition``)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str
    last_transition_time: str

    def to_dict(self) -> dict[str, str]:
        return {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": self.last_transition_time,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GitSourceCondition:
        status = str(data.get("status", "Unknown"))
        return cls(
            type=str(data.get("type", "")),
            status=status if status in ("True", "False") else "Unknown",  # type: ignore[arg-type]
            reason=str(data.get("reason", "")),
            message=str(data.get("message", "")),
            last_transition_time=str(data.get("lastTransitionTime", "")),
        )


@dataclass(frozen=True, slots=True)
class GitSourceStatus:
    """The GitSource's ``status``. ``to_dict`` gives the camelCase form for the API."""

    last_applied_revision: str | None = None
    last_attempted_revision: str | None = None
    inventory: tuple[ManifestRef, ...] = ()
    conditions: tuple[GitSourceCondition, ...] = ()
    kustomize_version: str | None = None

    def condition(self, type_: str) -> GitSourceCondition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lastAppliedRevision": self.last_applied_revision,
            "lastAttemptedRevision": self.last_attempted_revision,
            "inventory": [ref.to_dict() for ref in self.inventory],
            "conditions": [c.to_dict() for c in self.conditions],
            "kustomizeVersion": self.kustomize_version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> GitSourceStatus:
        if not data:
            return cls()
        inventory = data.get("inventory") or []
        entries = inventory if isinstance(inventory, list) else []
        return cls(
            last_applied_revision=data.get("lastAppliedRevision"),
            last_attempted_revision=data.get("lastAttemptedRevision"),
            inventory=tuple(
                ManifestRef.from_dict(e)
                for e in entries
                if isinstance(e, Mapping) and e.get("name")
            ),
            conditions=tuple(
                GitSourceCondition.from_dict(c)
                for c in data.get("conditions") or []
                if isinstance(c, Mapping)
            ),
            kustomize_version=(
                str(data["kustomizeVersion"]) if data.get("kustomizeVersion") else None
            ),
        )


def _timestamp(now: datetime) -> str:
    return format_time(now)


def set_conditions(
    previous: Iterable[GitSourceCondition],
    updates: Iterable[tuple[str, ConditionStatus, str, str]],
    now: datetime,
) -> tuple[GitSourceCondition, ...]:
    """Merge ``(type, status, reason, message)`` updates into conditions, keeping the
    transition time of a condition whose status did not change."""
    result = {c.type: c for c in previous}
    for type_, status, reason, message in updates:
        old = result.get(type_)
        since = old.last_transition_time if old and old.status == status else _timestamp(now)
        result[type_] = GitSourceCondition(type_, status, reason, message, since)
    order = ["Ready", "Reconciling"]
    return tuple(
        sorted(
            result.values(), key=lambda c: (order.index(c.type) if c.type in order else 9, c.type)
        )
    )


# -- pure planning ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedObject:
    ref: ManifestRef
    body: Mapping[str, Any]
    location: str


@dataclass(frozen=True, slots=True)
class ApplyPlan:
    objects: tuple[PlannedObject, ...]
    notes: tuple[str, ...] = ()

    @property
    def inventory(self) -> tuple[ManifestRef, ...]:
        return tuple(o.ref for o in self.objects)


def _rank(ref: ManifestRef, cluster_scoped: frozenset[tuple[str, str]]) -> int:
    if (ref.group, ref.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        return 0
    if (ref.group, ref.kind) == ("", "Namespace"):
        return 1
    if (ref.group, ref.kind) in cluster_scoped:
        return 2
    return 3


def crd_scopes(manifests: Iterable[Manifest]) -> frozenset[tuple[str, str]]:
    """(group, kind) of cluster-scoped custom resources declared by CRDs among ``manifests``."""
    found = set()
    for m in manifests:
        ref = m.ref
        if (ref.group, ref.kind) != ("apiextensions.k8s.io", "CustomResourceDefinition"):
            continue
        spec = m.body.get("spec") or {}
        names = spec.get("names") or {}
        if spec.get("scope") == "Cluster" and spec.get("group") and names.get("kind"):
            found.add((str(spec["group"]), str(names["kind"])))
    return frozenset(found)


def plan_apply(
    manifests: Sequence[Manifest],
    *,
    source: SourceRef,
    revision: str,
    cluster_scoped: frozenset[tuple[str, str]] = CLUSTER_SCOPED,
) -> ApplyPlan:
    """Annotated objects in apply order: CRDs, Namespaces, other cluster-scoped kinds, then
    the rest (manifest order within each group). Namespaced objects without a namespace get
    the GitSource's namespace. Raises ManifestError for an object declared twice."""
    scoped = cluster_scoped | crd_scopes(manifests)
    seen: dict[ManifestRef, str] = {}
    planned: list[tuple[int, int, PlannedObject]] = []
    notes: list[str] = []
    for index, manifest in enumerate(manifests):
        body = copy.deepcopy(dict(manifest.body))
        meta = body.setdefault("metadata", {})
        ref = ManifestRef.of(body)
        if (ref.group, ref.kind) in scoped:
            if "namespace" in meta:
                notes.append(
                    f"{manifest.location}: {ref.kind} is cluster-scoped; metadata.namespace ignored"
                )
                del meta["namespace"]
        elif not meta.get("namespace"):
            meta["namespace"] = source.namespace
        ref = ManifestRef.of(body)
        if ref in seen:
            raise ManifestError(
                manifest.source_file,
                manifest.document,
                f"{ref.kind} {ref.namespace + '/' if ref.namespace else ''}{ref.name} is "
                f"already declared in {seen[ref]}",
            )
        seen[ref] = manifest.location
        annotations = meta.get("annotations")
        annotations = dict(annotations) if isinstance(annotations, Mapping) else {}
        annotations[ANNOTATION_SOURCE] = str(source)
        annotations[ANNOTATION_REVISION] = revision
        annotations[ANNOTATION_SOURCE_PATH] = manifest.source_file
        meta["annotations"] = annotations
        planned.append((_rank(ref, scoped), index, PlannedObject(ref, body, manifest.location)))
    planned.sort(key=lambda item: (item[0], item[1]))
    return ApplyPlan(tuple(p for _, _, p in planned), tuple(notes))


def plan_prune(
    previous: Iterable[ManifestRef],
    current: Iterable[ManifestRef],
    *,
    cluster_scoped: frozenset[tuple[str, str]] = CLUSTER_SCOPED,
) -> tuple[ManifestRef, ...]:
    """Objects in the previous inventory that are no longer declared, in delete order
    (namespaced objects first, Namespaces and CRDs last)."""
    keep = set(current)
    gone = [ref for ref in dict.fromkeys(previous) if ref not in keep]
    return tuple(sorted(gone, key=lambda r: -_rank(r, cluster_scoped)))


# -- the pass ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    status: GitSourceStatus
    ready: bool
    applied: tuple[ManifestRef, ...] = ()
    pruned: tuple[ManifestRef, ...] = ()
    notes: tuple[str, ...] = ()
    requeue_after: float = 60.0


@dataclass(frozen=True, slots=True)
class _Pass:
    """What one pass fixes at its start, so every way out of it is written by :meth:`finish`.

    Each outcome names only what it changes: the revisions and inventory left as None keep
    the previous status's, so a failed pass never forgets what is applied.
    """

    source: SourceRef
    prev: GitSourceStatus
    stamp: datetime
    redact: Redactor
    interval: float

    def suspended(self) -> ReconcileResult:
        conditions = set_conditions(
            self.prev.conditions,
            [("Reconciling", "False", "Suspended", "spec.suspend is true; nothing applied")],
            self.stamp,
        )
        return ReconcileResult(
            replace(self.prev, conditions=conditions), True, requeue_after=self.interval
        )

    def progressing(self, revision: str) -> GitSourceStatus:
        """The status shown while ``revision`` is being applied."""
        prev = self.prev
        return GitSourceStatus(
            prev.last_applied_revision,
            revision,
            prev.inventory,
            set_conditions(
                prev.conditions,
                [("Reconciling", "True", "Progressing", f"applying {revision}")],
                self.stamp,
            ),
            prev.kustomize_version,
        )

    def finish(
        self,
        ready: ConditionStatus,
        reason: str,
        message: str,
        *,
        kustomize_version: str | None,
        applied_rev: str | None = None,
        attempted_rev: str | None = None,
        inventory: tuple[ManifestRef, ...] | None = None,
        applied: tuple[ManifestRef, ...] = (),
        pruned: tuple[ManifestRef, ...] = (),
        notes: tuple[str, ...] = (),
    ) -> ReconcileResult:
        prev = self.prev
        applied_rev = prev.last_applied_revision if applied_rev is None else applied_rev
        attempted_rev = prev.last_attempted_revision if attempted_rev is None else attempted_rev
        message = self.redact(message)
        conditions = set_conditions(
            prev.conditions,
            [("Ready", ready, reason, message), ("Reconciling", "False", reason, message)],
            self.stamp,
        )
        status = GitSourceStatus(
            applied_rev,
            attempted_rev,
            prev.inventory if inventory is None else inventory,
            conditions,
            kustomize_version,
        )
        if ready != "True":
            level = logging.WARNING
        elif applied_rev != prev.last_applied_revision:
            level = logging.INFO
        else:
            level = logging.DEBUG  # the same revision re-applied: routine
        logger.log(level, "GitSource %s: %s: %s", self.source, reason, message)
        return ReconcileResult(
            status,
            ready == "True",
            applied,
            pruned,
            tuple(self.redact(n) for n in notes),
            self.interval,
        )


@dataclass(frozen=True, slots=True)
class _Rendered:
    """A revision's objects, planned and ready to apply."""

    revision: str
    plan: ApplyPlan
    notes: tuple[str, ...]
    kustomize_version: str | None


@dataclass(frozen=True, slots=True)
class _Pruned:
    """What pruning did: ``kept`` are the objects it failed to delete, which stay in the
    inventory so that a later pass tries them again."""

    pruned: tuple[ManifestRef, ...] = ()
    kept: tuple[ManifestRef, ...] = ()
    failures: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass
class GitSourceReconciler:
    """Runs GitSource passes. ``kube`` is the cluster port; ``workspace`` the Git cache."""

    workspace: Workspace
    kube: KubeApply
    kustomize: Kustomize = field(default_factory=Kustomize)
    field_manager: str = FIELD_MANAGER
    apply_timeout: float = 30.0
    cluster_scoped: frozenset[tuple[str, str]] = field(default=CLUSTER_SCOPED)

    async def reconcile(
        self,
        source: SourceRef,
        spec: GitSourceSpec,
        *,
        credentials: GitCredentials | None = None,
        previous: GitSourceStatus | None = None,
        now: datetime | None = None,
        progress: Callable[[GitSourceStatus], Awaitable[None]] | None = None,
    ) -> ReconcileResult:
        """One pass. Never raises for Git, manifest or apply problems: they become the
        ``Ready=False`` condition (reasons CloneFailed, BuildFailed for a kustomize error,
        ManifestInvalid, ApplyFailed, PruneFailed) with a message that names the file,
        document or object. The last applied revision stays applied and recorded."""
        run = _Pass(
            source,
            previous or GitSourceStatus(),
            now or datetime.now(UTC),
            redactor_for(credentials),
            spec.interval_seconds,
        )
        if spec.suspend:
            return run.suspended()
        try:
            rendered = await self._render(run, spec, credentials, progress)
        except GitError as exc:
            return run.finish(
                "False", "CloneFailed", exc.message, kustomize_version=run.prev.kustomize_version
            )
        if isinstance(rendered, ReconcileResult):
            return rendered
        applied = await self._apply(run, rendered)
        if isinstance(applied, ReconcileResult):
            return applied
        return await self._prune_and_finish(run, spec, rendered, applied)

    async def _render(
        self,
        run: _Pass,
        spec: GitSourceSpec,
        credentials: GitCredentials | None,
        progress: Callable[[GitSourceStatus], Awaitable[None]] | None,
    ) -> _Rendered | ReconcileResult:
        """Fetch the branch head and plan its objects; a build or manifest error ends the
        pass here (a Git error is raised, for :meth:`reconcile` to report)."""
        kustomize_version = run.prev.kustomize_version
        repo = GitRepository(spec.url, spec.branch, credentials)
        async with self.workspace.open(repo, network_timeout=spec.timeout_seconds) as copy_:
            head = await copy_.fetch(depth=1)
            revision = format_revision(spec.branch, head)
            if progress is not None:
                await progress(run.progressing(revision))
            tree = await copy_.snapshot(head)
            try:
                loaded = await render_manifests(tree, spec.path, kustomize=self.kustomize)
                if loaded.kustomizations:
                    kustomize_version = await self.kustomize.version()
                plan = plan_apply(
                    loaded.manifests,
                    source=run.source,
                    revision=revision,
                    cluster_scoped=self.cluster_scoped,
                )
            except KustomizeError as exc:
                return run.finish(
                    "False",
                    "BuildFailed",
                    f"{revision}: {exc}",
                    kustomize_version=await self.kustomize.version(),
                    attempted_rev=revision,
                )
            except ManifestError as exc:
                return run.finish(
                    "False",
                    "ManifestInvalid",
                    f"{revision}: {exc}",
                    kustomize_version=kustomize_version,
                    attempted_rev=revision,
                )
        notes = tuple(str(n) for n in loaded.notes) + plan.notes
        return _Rendered(revision, plan, notes, kustomize_version)

    async def _apply(
        self, run: _Pass, rendered: _Rendered
    ) -> tuple[ManifestRef, ...] | ReconcileResult:
        """Apply every planned object in order; the first refusal ends the pass."""
        applied: list[ManifestRef] = []
        for obj in rendered.plan.objects:
            try:
                await asyncio.wait_for(
                    self.kube.apply(
                        obj.body, field_manager=self.field_manager, force_conflicts=True
                    ),
                    timeout=self.apply_timeout,
                )
            except (KubeApplyError, TimeoutError) as exc:
                why = (
                    exc.message
                    if isinstance(exc, KubeApplyError)
                    else (f"no answer within {self.apply_timeout:g}s")
                )
                # Keep everything we may have created, so a later pass can still prune it.
                inventory = tuple(dict.fromkeys((*run.prev.inventory, *applied, obj.ref)))
                return run.finish(
                    "False",
                    "ApplyFailed",
                    f"{rendered.revision}: apply of {obj.ref} from {obj.location} was "
                    f"rejected: {why}",
                    kustomize_version=rendered.kustomize_version,
                    attempted_rev=rendered.revision,
                    inventory=inventory,
                    applied=tuple(applied),
                    notes=rendered.notes,
                )
            applied.append(obj.ref)
        return tuple(applied)

    async def _prune_and_finish(
        self, run: _Pass, spec: GitSourceSpec, rendered: _Rendered, applied: tuple[ManifestRef, ...]
    ) -> ReconcileResult:
        revision = rendered.revision
        inventory = rendered.plan.inventory
        done = (
            await self._prune(run.source, run.prev.inventory, inventory)
            if spec.prune
            else _Pruned()
        )
        final_inventory = tuple(dict.fromkeys((*inventory, *done.kept)))
        notes = rendered.notes + done.notes
        if done.failures:
            reason: str = "PruneFailed"
            ready: ConditionStatus = "False"
            summary = (
                f"{revision}: applied {len(applied)} objects, but pruning failed: "
                + "; ".join(done.failures)
            )
        else:
            reason, ready = "Succeeded", "True"
            summary = f"applied revision {revision}: {len(applied)} objects"
            if done.pruned:
                summary += f", pruned {len(done.pruned)}"
        return run.finish(
            ready,
            reason,
            summary,
            kustomize_version=rendered.kustomize_version,
            applied_rev=revision,
            attempted_rev=revision,
            inventory=final_inventory,
            applied=applied,
            pruned=done.pruned,
            notes=notes,
        )

    async def _prune(
        self,
        source: SourceRef,
        previous: tuple[ManifestRef, ...],
        current: tuple[ManifestRef, ...],
    ) -> _Pruned:
        """Delete what Git no longer declares, but only objects marked as ours: an object
        someone else took over since (or never ours) is left alone, with a note."""
        pruned: list[ManifestRef] = []
        failures: list[str] = []
        kept: list[ManifestRef] = []
        notes: list[str] = []
        for ref in plan_prune(previous, current, cluster_scoped=self.cluster_scoped):
            try:
                live = await asyncio.wait_for(self.kube.get(ref), timeout=self.apply_timeout)
                if live is None:
                    continue
                owner = ((live.get("metadata") or {}).get("annotations") or {}).get(
                    ANNOTATION_SOURCE
                )
                if owner != str(source):
                    notes.append(f"{ref}: not pruned, it is not marked as applied by {source}")
                    continue
                await asyncio.wait_for(self.kube.delete(ref), timeout=self.apply_timeout)
                pruned.append(ref)
            except (KubeApplyError, TimeoutError) as exc:
                why = exc.message if isinstance(exc, KubeApplyError) else "timed out"
                failures.append(f"{ref}: {why}")
                kept.append(ref)
        return _Pruned(tuple(pruned), tuple(kept), tuple(failures), tuple(notes))
