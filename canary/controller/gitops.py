"""GitOps in the operator: revisions of targets, Git reverts, and GitSource passes.

Three jobs, each wiring a library of `canary.adapters.gitops` to the cluster:

* `revisions.detect(canary, target)` — which Git revision the target's spec came
  from: the built-in reconciler's annotations plus its GitSource, a Flux
  Kustomization and its GitRepository, or an Argo CD Application (``spec.gitops.source``
  names one explicitly; otherwise the target's own markers say). Revisions are
  written ``<branch>@sha1:<sha>``.
* `reverter.revert(canary, good, bad, reason)` — the core asks for it after a
  rollback: find the files that hold the target (and the ConfigMaps and Secrets
  it tracks) at the good and bad revisions, and commit the revert with the
  identity of the GitSource (``commitAuthor``) or the controller's default.
* GitSource passes on each source's interval (leader only), with the status
  written after each pass.

Credentials come from the Secrets the sources name and never reach logs,
Events or status text: the gitops library redacts every message it returns.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from canary.adapters.gitops import (
    AlreadyReverted,
    CommitIdentity,
    CredentialsError,
    GitCredentials,
    GitOrigin,
    GitRepository,
    GitSourceReconciler,
    GitSourceSpecError,
    GitSourceStatus,
    NoOrigin,
    NothingToRevert,
    ObjectRef,
    Reverted,
    Reverter,
    RevertFailed,
    RevertRequest,
    SourceRef,
    Superseded,
    Workspace,
    credentials_from_secret,
    flux_source_ref,
    format_revision,
    manager_of,
    origin_from_argocd,
    origin_from_flux,
    origin_from_gitsource,
    parse_gitsource_spec,
    parse_revision,
)
from canary.adapters.gitops.kube import PortKubeApply
from canary.core import RevertAnswer, RevertResultKind, Revision
from canary.model import API_VERSION, Canary
from canary.ports import Kube, KubeError

log = logging.getLogger("canary.gitops")

FLUX_KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
FLUX_GITREPOSITORY = ("source.toolkit.fluxcd.io/v1", "GitRepository")
ARGOCD_APPLICATION = ("argoproj.io/v1alpha1", "Application")
ARGOCD_NAMESPACE = "argocd"


class Leader(Protocol):
    @property
    def is_leader(self) -> bool: ...


def _decode(secret: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            out[str(key)] = base64.b64decode(str(value)).decode()
    for key, value in (secret.get("stringData") or {}).items():
        out[str(key)] = str(value)
    return out


class Revisions:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    async def origin(self, canary: Canary, target: Mapping[str, Any]) -> GitOrigin | NoOrigin:
        source = canary.spec.gitops.source
        if source is not None:
            kind, name, namespace = source.kind, source.name, source.namespace
        else:
            manager = manager_of(target)
            if manager is None:
                return NoOrigin(
                    "no GitSource, Flux Kustomization or Argo CD Application manages the target"
                )
            kind = {"gitsource": "GitSource", "flux": "Kustomization", "argocd": "Application"}[
                manager.manager
            ]
            name, namespace = manager.name, manager.namespace
        if kind == "GitSource":
            gs = await self.kube.get(API_VERSION, "GitSource", name, namespace or canary.namespace)
            if gs is None:
                return NoOrigin(f"GitSource {namespace or canary.namespace}/{name} not found")
            return origin_from_gitsource(target, gs)
        if kind == "Kustomization":
            kustomization = await self.kube.get(
                *FLUX_KUSTOMIZATION, name, namespace or "flux-system"
            )
            if kustomization is None:
                return NoOrigin(f"Flux Kustomization {namespace or 'flux-system'}/{name} not found")
            ref = flux_source_ref(kustomization)
            repo = await self.kube.get(*FLUX_GITREPOSITORY, ref[1], ref[0]) if ref else None
            return origin_from_flux(kustomization, repo)
        application = await self.kube.get(*ARGOCD_APPLICATION, name, namespace or ARGOCD_NAMESPACE)
        if application is None:
            return NoOrigin(f"Argo CD Application {namespace or ARGOCD_NAMESPACE}/{name} not found")
        return origin_from_argocd(application)

    async def detect(self, canary: Canary, target: Mapping[str, Any]) -> Revision | None:
        try:
            origin = await self.origin(canary, target)
        except KubeError as exc:
            log.debug("revision of %s/%s unknown: %s", canary.namespace, canary.name, exc)
            return None
        if isinstance(origin, NoOrigin):
            return None
        return Revision(
            format_revision(origin.branch or "HEAD", origin.revision),
            f"{origin.manager} {origin.owner}",
        )


_CONFIG_KINDS = {"configmap": "ConfigMap", "secret": "Secret"}


def _default_namespace(canary: Canary, origin: GitOrigin) -> str:
    """The namespace the reconciler gives to manifests that name none: the GitSource's own
    for the built-in one; for Flux and Argo CD the canary's (their target namespace)."""
    if origin.manager == "gitsource":
        namespace, _, _ = origin.owner.rpartition("/")
        return namespace or canary.namespace
    return canary.namespace


class GitReverter:
    def __init__(
        self, kube: Kube, revisions: Revisions, reverter: Reverter, identity: CommitIdentity
    ) -> None:
        self.kube = kube
        self.revisions = revisions
        self.reverter = reverter
        self.identity = identity

    async def _credentials(self, origin: GitOrigin) -> GitCredentials | None:
        if not origin.secret:
            return None
        namespace, _, name = origin.secret.partition("/")
        secret = await self.kube.get("v1", "Secret", name, namespace)
        if secret is None:
            raise CredentialsError(f"Secret {origin.secret} not found")
        return credentials_from_secret(
            _decode(secret), encoded=False, where=f"Secret {origin.secret}"
        )

    async def _identity(self, canary: Canary, origin: GitOrigin) -> CommitIdentity:
        if origin.manager != "gitsource":
            return self.identity
        namespace, _, name = origin.owner.rpartition("/")
        gs = await self.kube.get(API_VERSION, "GitSource", name, namespace or canary.namespace)
        author = ((gs or {}).get("spec") or {}).get("commitAuthor") or {}
        if author.get("name") and author.get("email"):
            return CommitIdentity(str(author["name"]), str(author["email"]))
        return self.identity

    async def _tracked_configs(self, canary: Canary) -> list[ObjectRef]:
        """The ConfigMaps and Secrets the failed run tracked (``status.trackedConfigs``, keys
        ``configmap/<name>`` and ``secret/<name>``): a bad release can live in them too."""
        body = await self.kube.get(API_VERSION, "Canary", canary.name, canary.namespace)
        tracked = ((body or {}).get("status") or {}).get("trackedConfigs") or {}
        refs = []
        for key in tracked if isinstance(tracked, Mapping) else ():
            kind, _, name = str(key).partition("/")
            api_kind = _CONFIG_KINDS.get(kind)
            if api_kind and name:
                refs.append(ObjectRef("v1", api_kind, canary.namespace, name))
        return refs

    async def revert(
        self, canary: Canary, good_revision: str, bad_revision: str, reason: str
    ) -> RevertAnswer:
        spec = canary.spec
        target = await self.kube.get(
            spec.target_ref.api_version or "apps/v1",
            spec.target_ref.kind,
            spec.target_ref.name,
            canary.namespace,
        )
        if target is None:
            return RevertAnswer(
                RevertResultKind.FAILED, message="the target does not exist", retriable=True
            )
        origin = await self.revisions.origin(canary, target)
        if isinstance(origin, NoOrigin):
            return RevertAnswer(RevertResultKind.FAILED, message=origin.reason, retriable=True)
        good, bad = parse_revision(good_revision), parse_revision(bad_revision)
        if good is None or bad is None:
            return RevertAnswer(
                RevertResultKind.FAILED,
                message=f"not Git revisions: {good_revision!r}, {bad_revision!r}",
                retriable=False,
            )
        try:
            credentials = await self._credentials(origin)
        except CredentialsError as exc:
            return RevertAnswer(RevertResultKind.FAILED, message=str(exc), retriable=True)
        repository = GitRepository(origin.url, origin.branch or "main", credentials)
        refs = [
            ObjectRef(
                spec.target_ref.api_version or "apps/v1",
                spec.target_ref.kind,
                canary.namespace,
                spec.target_ref.name,
            ),
            *await self._tracked_configs(canary),
        ]
        located = await self.reverter.locate_files(
            repository,
            origin.path,
            refs,
            [good.sha, bad.sha],
            default_namespace=_default_namespace(canary, origin),
        )
        if isinstance(located, RevertFailed):
            return RevertAnswer(
                RevertResultKind.FAILED, message=located.reason, retriable=located.retriable
            )
        files = tuple(dict.fromkeys((*origin.files, *located.files, *spec.gitops.paths)))
        if not files:
            return RevertAnswer(
                RevertResultKind.FAILED,
                message=f"no file under {origin.path or '/'} declares the target",
                retriable=True,
            )
        result = await self.reverter.revert(
            RevertRequest(
                repository=repository,
                files=files,
                good_revision=good.sha,
                bad_revision=bad.sha,
                canary=f"{canary.namespace}/{canary.name}",
                reason=tuple(part.strip() for part in reason.split(";") if part.strip()),
                target=spec.target_ref.name,
                author=await self._identity(canary, origin),
            )
        )
        if isinstance(result, Reverted):
            return RevertAnswer(
                RevertResultKind.REVERTED,
                commit=result.commit_sha,
                message=f"undid {len(result.reverted_commits)} commit(s)",
            )
        if isinstance(result, AlreadyReverted):
            return RevertAnswer(RevertResultKind.ALREADY_REVERTED, commit=result.commit_sha or "")
        if isinstance(result, NothingToRevert):
            return RevertAnswer(RevertResultKind.SUPERSEDED, message=result.reason)
        if isinstance(result, Superseded):
            return RevertAnswer(
                RevertResultKind.SUPERSEDED,
                message=getattr(result, "reason", "") or "a newer change touched the same lines",
            )
        return RevertAnswer(
            RevertResultKind.FAILED, message=result.reason, retriable=result.retriable
        )


@dataclass
class _SourceJob:
    task: asyncio.Task[None]
    wake: asyncio.Event
    generation: object = None


class GitOpsWiring:
    """Holds the workspace, the reverter and the GitSource jobs."""

    def __init__(self, kube: Kube, *, cache_dir: Path, author_name: str, author_email: str) -> None:
        self.kube = kube
        self.workspace = Workspace(cache_dir)
        identity = CommitIdentity(author_name, author_email)
        self.revisions = Revisions(kube)
        self.reverter = GitReverter(kube, self.revisions, Reverter(self.workspace), identity)
        self.reconciler = GitSourceReconciler(self.workspace, PortKubeApply(kube))
        self.jobs: dict[tuple[str, str], _SourceJob] = {}

    def seen(self, namespace: str, name: str, body: Mapping[str, Any], leader: Leader) -> None:
        generation = (body.get("metadata") or {}).get("generation")
        job = self.jobs.get((namespace, name))
        if job is not None and not job.task.done():
            # A spec change: reconcile now. Other events (our own status writes above all)
            # must not wake the loop, or every pass that changes the status runs twice, and a
            # status that changes on every pass turns the loop into a busy one.
            if generation != job.generation:
                job.generation = generation
                job.wake.set()
            return
        wake = asyncio.Event()
        task = asyncio.create_task(
            self._loop(namespace, name, leader, wake), name=f"gitsource:{namespace}/{name}"
        )
        self.jobs[(namespace, name)] = _SourceJob(task, wake, generation)

    async def forget(self, namespace: str, name: str) -> None:
        job = self.jobs.pop((namespace, name), None)
        if job is not None:
            job.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job.task

    async def stop(self) -> None:
        for key in list(self.jobs):
            await self.forget(*key)

    async def aclose(self) -> None:
        await self.stop()

    async def _loop(self, namespace: str, name: str, leader: Leader, wake: asyncio.Event) -> None:
        while True:
            wake.clear()
            delay = 60.0
            try:
                if leader.is_leader:
                    delay = await self.run_pass(namespace, name)
                else:
                    delay = 5.0
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("GitSource %s/%s pass failed", namespace, name)
                delay = 30.0
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=delay)

    async def run_pass(self, namespace: str, name: str) -> float:
        body = await self.kube.get(API_VERSION, "GitSource", name, namespace)
        if body is None:
            return 60.0
        source = SourceRef(namespace=namespace, name=name)
        previous = GitSourceStatus.from_dict(body.get("status") or {})

        async def not_ready(reason: str, message: str) -> None:
            condition = _condition("False", reason, message, body.get("status"))
            await self._patch_status(namespace, name, {"conditions": [condition]})

        try:
            spec = parse_gitsource_spec(body.get("spec"), f"GitSource {namespace}/{name} spec")
        except GitSourceSpecError as exc:
            await not_ready("InvalidSpec", str(exc))
            return 60.0
        credentials = None
        if spec.secret_name and not spec.suspend:  # suspended: the reconciler only says so
            secret = await self.kube.get("v1", "Secret", spec.secret_name, namespace)
            if secret is None:
                await not_ready(
                    "SecretNotFound", f"Secret {namespace}/{spec.secret_name} not found"
                )
                return spec.interval_seconds
            try:
                credentials = credentials_from_secret(
                    _decode(secret), encoded=False, where=f"Secret {namespace}/{spec.secret_name}"
                )
            except CredentialsError as exc:
                await not_ready("InvalidSecret", str(exc))
                return spec.interval_seconds
        result = await self.reconciler.reconcile(
            source, spec, credentials=credentials, previous=previous, now=datetime.now(UTC)
        )
        status = result.status.to_dict()
        status["observedGeneration"] = (body.get("metadata") or {}).get("generation")
        await self._patch_status(namespace, name, status)
        return spec.interval_seconds

    async def _patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        try:
            await self.kube.patch(
                API_VERSION,
                "GitSource",
                name,
                namespace,
                {"status": dict(status)},
                subresource="status",
            )
        except KubeError as exc:
            log.warning("cannot write the status of GitSource %s/%s: %s", namespace, name, exc)


def _condition(status: str, reason: str, message: str, previous: object) -> dict[str, str]:
    """A Ready condition; lastTransitionTime changes only when its status does, so writing
    the same failure again is a no-op for the API server (and for watchers)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = previous.get("conditions") if isinstance(previous, Mapping) else None
    for old in conditions if isinstance(conditions, list) else ():
        if isinstance(old, Mapping) and old.get("type") == "Ready" and old.get("status") == status:
            stamp = str(old.get("lastTransitionTime") or stamp)
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": stamp,
    }
