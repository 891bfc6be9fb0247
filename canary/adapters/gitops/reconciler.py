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

from canary.adapters.gitops.credentials import GitCredentials, Redactor
from canary.adapters.gitops.git import GitError, check_branch, check_relative_path, check_url
from canary.adapters.gitops.kustomize import Kustomize, KustomizeError
from canary.adapters.gitops.manifests import (
    Manifest,
    ManifestError,
    ObjectRef,
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
    "Condition",
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
}


def parse_gitsource_spec(spec: object, where: str = "spec") -> GitSourceSpec:
    """Validate a GitSource ``spec``; every problem is reported with its field path."""
    if not isinstance(spec, Mapping):
        raise GitSourceSpecError([f"{where}: expected a mapping, got {type(spec).__name__}"])
    problems: list[str] = []
    problems += [f"{where}.{k}: unknown field" for k in spec if k not in _SPEC_KEYS]

    def text(key: str, default: str | None) -> str | None:
        value = spec.get(key, default)
        if value is None or isinstance(value, str):
            return value
        problems.append(f"{where}.{key}: expected a string, got {type(value).__name__}")
        return default

    def flag(key: str, default: bool) -> bool:
        value = spec.get(key, default)
        if isinstance(value, bool):
            return value
        problems.append(f"{where}.{key}: expected true or false, got {value!r}")
        return False

    def checked(key: str, fn: Callable[[str], str], value: str | None) -> str:
        if value is None:
            return ""
        try:
            return fn(value)
        except GitError as exc:
            problems.append(f"{where}.{key}: {exc.message.partition(': ')[2] or exc.message}")
            return value

    url = text("url", None)
    if not url:
        problems.append(f"{where}.url: required (file://, ssh://, git:// or https:// URL)")
    url = checked("url", check_url, url) if url else ""
    branch = checked("branch", check_branch, text("branch", "main"))
    path = checked("path", lambda p: check_relative_path(p, what="path"), text("path", "") or "")
    interval = timeout = 60.0
    for key in ("interval", "timeout"):
        raw = spec.get(key, "1m" if key == "interval" else "60s")
        try:
            seconds = parse_duration(raw, f"{where}.{key}")
        except GitSourceSpecError as exc:
            problems.extend(exc.problems)
            continue
        if seconds <= 0:
            problems.append(f"{where}.{key}: expected a positive duration, got {raw!r}")
        elif key == "interval":
            interval = seconds
        else:
            timeout = seconds
    secret_name: str | None = None
    secret_ref = spec.get("secretRef")
    if secret_ref is not None:
        if not isinstance(secret_ref, Mapping) or not isinstance(secret_ref.get("name"), str):
            problems.append(f"{where}.secretRef.name: expected the name of a Secret")
        elif not _DNS_NAME.match(secret_ref["name"]):
            problems.append(
                f"{where}.secretRef.name: expected a Kubernetes object name, got {secret_ref['name']!r}"
            )
        else:
            secret_name = secret_ref["name"]
    author: CommitIdentity | None = None
    raw_author = spec.get("commitAuthor")
    if raw_author is not None:
        if not isinstance(raw_author, Mapping):
            problems.append(f"{where}.commitAuthor: expected a mapping with name and email")
        else:
            name, email = raw_author.get("name"), raw_author.get("email")
            if not isinstance(name, str) or not isinstance(email, str):
                problems.append(f"{where}.commitAuthor: expected string fields name and email")
            else:
                try:
                    author = CommitIdentity(name, email).validated(f"{where}.commitAuthor")
                except ValueError as exc:
                    problems.append(str(exc))
    suspend, prune = flag("suspend", False), flag("prune", True)
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

    async def get(self, ref: ObjectRef) -> Mapping[str, Any] | None:
        """The live object, or None when it does not exist."""
        ...

    async def delete(self, ref: ObjectRef) -> bool:
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
class Condition:
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
    def from_dict(cls, data: Mapping[str, Any]) -> Condition:
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
    inventory: tuple[ObjectRef, ...] = ()
    conditions: tuple[Condition, ...] = ()
    kustomize_version: str | None = None

    def condition(self, type_: str) -> Condition | None:
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
                ObjectRef.from_dict(e) for e in entries if isinstance(e, Mapping) and e.get("name")
            ),
            conditions=tuple(
                Condition.from_dict(c)
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
    previous: Iterable[Condition],
    updates: Iterable[tuple[str, ConditionStatus, str, str]],
    now: datetime,
) -> tuple[Condition, ...]:
    """Merge ``(type, status, reason, message)`` updates into conditions, keeping the
    transition time of a condition whose status did not change."""
    result = {c.type: c for c in previous}
    for type_, status, reason, message in updates:
        old = result.get(type_)
        since = old.last_transition_time if old and old.status == status else _timestamp(now)
        result[type_] = Condition(type_, status, reason, message, since)
    order = ["Ready", "Reconciling"]
    return tuple(
        sorted(
            result.values(), key=lambda c: (order.index(c.type) if c.type in order else 9, c.type)
        )
    )


# -- pure planning ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedObject:
    ref: ObjectRef
    body: Mapping[str, Any]
    location: str


@dataclass(frozen=True, slots=True)
class ApplyPlan:
    objects: tuple[PlannedObject, ...]
    notes: tuple[str, ...] = ()

    @property
    def inventory(self) -> tuple[ObjectRef, ...]:
        return tuple(o.ref for o in self.objects)


def _rank(ref: ObjectRef, cluster_scoped: frozenset[tuple[str, str]]) -> int:
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
    seen: dict[ObjectRef, str] = {}
    planned: list[tuple[int, int, PlannedObject]] = []
    notes: list[str] = []
    for index, manifest in enumerate(manifests):
        body = copy.deepcopy(dict(manifest.body))
        meta = body.setdefault("metadata", {})
        ref = ObjectRef.of(body)
        if (ref.group, ref.kind) in scoped:
            if "namespace" in meta:
                notes.append(
                    f"{manifest.location}: {ref.kind} is cluster-scoped; metadata.namespace ignored"
                )
                del meta["namespace"]
        elif not meta.get("namespace"):
            meta["namespace"] = source.namespace
        ref = ObjectRef.of(body)
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
    previous: Iterable[ObjectRef],
    current: Iterable[ObjectRef],
    *,
    cluster_scoped: frozenset[tuple[str, str]] = CLUSTER_SCOPED,
) -> tuple[ObjectRef, ...]:
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
    applied: tuple[ObjectRef, ...] = ()
    pruned: tuple[ObjectRef, ...] = ()
    notes: tuple[str, ...] = ()
    requeue_after: float = 60.0


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
        prev = previous or GitSourceStatus()
        stamp = now or datetime.now(UTC)
        redact = Redactor.for_credentials(credentials)
        interval = spec.interval_seconds
        kustomize_version = prev.kustomize_version

        def finish(
            ready: ConditionStatus,
            reason: str,
            message: str,
            *,
            applied_rev: str | None = prev.last_applied_revision,
            attempted_rev: str | None = prev.last_attempted_revision,
            inventory: tuple[ObjectRef, ...] = prev.inventory,
            applied: tuple[ObjectRef, ...] = (),
            pruned: tuple[ObjectRef, ...] = (),
            notes: tuple[str, ...] = (),
        ) -> ReconcileResult:
            message = redact(message)
            conditions = set_conditions(
                prev.conditions,
                [("Ready", ready, reason, message), ("Reconciling", "False", reason, message)],
                stamp,
            )
            status = GitSourceStatus(
                applied_rev, attempted_rev, inventory, conditions, kustomize_version
            )
            if ready != "True":
                level = logging.WARNING
            elif applied_rev != prev.last_applied_revision:
                level = logging.INFO
            else:
                level = logging.DEBUG  # the same revision re-applied: routine
            logger.log(level, "GitSource %s: %s: %s", source, reason, message)
            return ReconcileResult(
                status,
                ready == "True",
                applied,
                pruned,
                tuple(redact(n) for n in notes),
                interval,
            )

        if spec.suspend:
            conditions = set_conditions(
                prev.conditions,
                [("Reconciling", "False", "Suspended", "spec.suspend is true; nothing applied")],
                stamp,
            )
            return ReconcileResult(
                replace(prev, conditions=conditions), True, requeue_after=interval
            )

        repo = GitRepository(spec.url, spec.branch, credentials)
        try:
            async with self.workspace.open(repo, network_timeout=spec.timeout_seconds) as copy_:
                head = await copy_.fetch(depth=1)
                revision = format_revision(spec.branch, head)
                if progress is not None:
                    await progress(
                        GitSourceStatus(
                            prev.last_applied_revision,
                            revision,
                            prev.inventory,
                            set_conditions(
                                prev.conditions,
                                [("Reconciling", "True", "Progressing", f"applying {revision}")],
                                stamp,
                            ),
                            prev.kustomize_version,
                        )
                    )
                tree = await copy_.snapshot(head)
                try:
                    loaded = await render_manifests(tree, spec.path, kustomize=self.kustomize)
                    if loaded.kustomizations:
                        kustomize_version = await self.kustomize.version()
                    plan = plan_apply(
                        loaded.manifests,
                        source=source,
                        revision=revision,
                        cluster_scoped=self.cluster_scoped,
                    )
                except KustomizeError as exc:
                    kustomize_version = await self.kustomize.version()
                    return finish(
                        "False", "BuildFailed", f"{revision}: {exc}", attempted_rev=revision
                    )
                except ManifestError as exc:
                    return finish(
                        "False", "ManifestInvalid", f"{revision}: {exc}", attempted_rev=revision
                    )
        except GitError as exc:
            return finish("False", "CloneFailed", exc.message)
        notes = tuple(str(n) for n in loaded.notes) + plan.notes
        applied: list[ObjectRef] = []
        for obj in plan.objects:
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
                inventory = tuple(dict.fromkeys((*prev.inventory, *applied, obj.ref)))
                return finish(
                    "False",
                    "ApplyFailed",
                    f"{revision}: apply of {obj.ref} from {obj.location} was rejected: {why}",
                    attempted_rev=revision,
                    inventory=inventory,
                    applied=tuple(applied),
                    notes=notes,
                )
            applied.append(obj.ref)
        inventory = plan.inventory
        pruned: list[ObjectRef] = []
        prune_failures: list[str] = []
        kept: list[ObjectRef] = []
        if spec.prune:
            for ref in plan_prune(prev.inventory, inventory, cluster_scoped=self.cluster_scoped):
                try:
                    live = await asyncio.wait_for(self.kube.get(ref), timeout=self.apply_timeout)
                    if live is None:
                        continue
                    owner = ((live.get("metadata") or {}).get("annotations") or {}).get(
                        ANNOTATION_SOURCE
                    )
                    if owner != str(source):
                        notes += (f"{ref}: not pruned, it is not marked as applied by {source}",)
                        continue
                    await asyncio.wait_for(self.kube.delete(ref), timeout=self.apply_timeout)
                    pruned.append(ref)
                except (KubeApplyError, TimeoutError) as exc:
                    why = exc.message if isinstance(exc, KubeApplyError) else "timed out"
                    prune_failures.append(f"{ref}: {why}")
                    kept.append(ref)
        final_inventory = tuple(dict.fromkeys((*inventory, *kept)))
        if prune_failures:
            return finish(
                "False",
                "PruneFailed",
                f"{revision}: applied {len(applied)} objects, but pruning failed: "
                + "; ".join(prune_failures),
                applied_rev=revision,
                attempted_rev=revision,
                inventory=final_inventory,
                applied=tuple(applied),
                pruned=tuple(pruned),
                notes=notes,
            )
        summary = f"applied revision {revision}: {len(applied)} objects"
        if pruned:
            summary += f", pruned {len(pruned)}"
        return finish(
            "True",
            "Succeeded",
            summary,
            applied_rev=revision,
            attempted_rev=revision,
            inventory=final_inventory,
            applied=tuple(applied),
            pruned=tuple(pruned),
            notes=notes,
        )
