"""GitOps in the operator: revisions of targets, Git reverts, and GitSource passes.

Three jobs, each wiring a library of `canary.adapters.gitops` to the cluster:

* `revisions.detect(canary, target)` — which Git revision the target's spec came
  from: the built-in reconciler's annotations plus its GitSource, a Flux
  Kustomization and its GitRepository, or an Argo CD Application (``spec.gitops.source``
  names one explicitly; otherwise the target's own markers say). A target made by
  Flux's helm-controller from a HelmRelease, or by Argo CD from an Application with a
  Helm chart, is followed one step further: the revision is the one that applied the
  HelmRelease or the Application. Revisions are written ``<branch>@sha1:<sha>``.
* `reverter.revert(canary, request)` — the core asks for it after a rollback: say how
  the owner makes the target (a subject: the rendered path, a HelmRelease, an
  Application), and let the reverter restore exactly the part of the change that altered
  it, pushed or proposed as a pull request (``spec.gitops.revert.mode``). Then keep Flux's
  image automation from pushing the failed image again (:class:`ImageAutomationGuard`).
* GitSource passes on each source's interval (leader only), with the status
  written after each pass and a Warning Event when a pass fails.

Credentials come from the Secrets the sources name and never reach logs,
Events or status text: the gitops library redacts every message it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from canary.adapters.gitops import (
    AlreadyReverted,
    ArgoApplicationSubject,
    ChartDirSubject,
    CommitIdentity,
    CredentialsError,
    GitCredentials,
    GitError,
    GitOrigin,
    GitRepository,
    GitRevertRequest,
    GitSourceReconciler,
    GitSourceSpecError,
    GitSourceStatus,
    HelmReleaseSubject,
    Kustomize,
    ManifestRef,
    NoOrigin,
    Proposed,
    PullRequestSettings,
    Reverted,
    Reverter,
    RevertFailed,
    SourceRef,
    Subject,
    Superseded,
    Unresolved,
    WorkloadSubject,
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
    revert_branch,
)
from canary.adapters.gitops.forges import ForgeError, forge_target
from canary.adapters.gitops.imagepolicy import (
    ImagePolicyError,
    add_exclusion_to_manifest,
    exclusion_patch,
    find_image_repository_manifest,
    find_setter_markers,
    split_image,
    tag_exclusion_pattern,
)
from canary.adapters.gitops.kube import PortKubeApply
from canary.adapters.gitops.revision import Via, helm_release_of
from canary.adapters.secrets import read_secret
from canary.controller.events import EventRecorder
from canary.core import RevertAnswer, RevertRequest, RevertResultKind, Revision
from canary.model import API_VERSION, Canary
from canary.ports import Kube, KubeError, Leader
from canary.timestamps import format_time

log = logging.getLogger("canary.gitops")

FLUX_KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
FLUX_GITREPOSITORY = ("source.toolkit.fluxcd.io/v1", "GitRepository")
FLUX_HELMRELEASE = ("helm.toolkit.fluxcd.io/v2", "HelmRelease")
ARGOCD_APPLICATION = ("argoproj.io/v1alpha1", "Application")
ARGOCD_NAMESPACE = "argocd"
IMAGE_POLICY_VERSIONS = ("image.toolkit.fluxcd.io/v1beta2", "image.toolkit.fluxcd.io/v1")
IMAGE_AUTOMATION_NAMESPACE = "flux-system"  # a setter marker without a namespace: Flux's default


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def settled(obj: Mapping[str, Any], via: Via | None) -> bool:
    """Whether the controller between Git and the target has acted on ``obj``'s current
    spec: helm-controller's ``status.observedGeneration``, Argo CD's ``status.sync`` (synced,
    compared with the current source). A target applied directly is always settled."""
    if via is None:
        return True
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
    assert isinstance(status, Mapping)
    if via.kind == "HelmRelease":
        generation = _meta(obj).get("generation")
        return generation is not None and status.get("observedGeneration") == generation
    sync = status.get("sync") if isinstance(status.get("sync"), Mapping) else {}
    assert isinstance(sync, Mapping)
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    compared = sync.get("comparedTo") if isinstance(sync.get("comparedTo"), Mapping) else {}
    assert isinstance(compared, Mapping)
    same_source = compared.get("source") == spec.get("source") and compared.get(
        "sources"
    ) == spec.get("sources")
    operation = (
        status.get("operationState") if isinstance(status.get("operationState"), Mapping) else {}
    )
    assert isinstance(operation, Mapping)
    return sync.get("status") == "Synced" and same_source and operation.get("phase") != "Running"


def _is_chart_application(application: Mapping[str, Any]) -> bool:
    spec = application.get("spec") if isinstance(application.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    sources: list[Any] = (
        spec["sources"] if isinstance(spec.get("sources"), list) else [spec.get("source")]
    )
    return any(isinstance(s, Mapping) and s.get("chart") for s in sources)


class Revisions:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    async def _via(
        self, target: Mapping[str, Any]
    ) -> tuple[Mapping[str, Any], Via | None] | NoOrigin:
        """The object kept in Git that makes ``target``: itself, its HelmRelease, or its Argo
        CD Application with a Helm chart source."""
        helm = helm_release_of(target)
        if helm is not None:
            namespace, name = helm
            release = await self.kube.get(*FLUX_HELMRELEASE, name, namespace)
            if release is None:
                return NoOrigin(f"HelmRelease {namespace}/{name}, which made the target, not found")
            return release, Via(FLUX_HELMRELEASE[0], "HelmRelease", namespace, name)
        manager = manager_of(target)
        if manager is not None and manager.manager == "argocd":
            namespace = manager.namespace or ARGOCD_NAMESPACE
            application = await self.kube.get(*ARGOCD_APPLICATION, manager.name, namespace)
            if application is not None and _is_chart_application(application):
                via = Via(ARGOCD_APPLICATION[0], "Application", namespace, manager.name)
                return application, via
        return target, None

    async def origin(self, canary: Canary, target: Mapping[str, Any]) -> GitOrigin | NoOrigin:
        made_by = await self._via(target)
        if isinstance(made_by, NoOrigin):
            return made_by
        owner_obj, via = made_by
        source = canary.spec.gitops.source
        if source is not None:
            kind, name, namespace = source.kind, source.name, source.namespace
        else:
            manager = manager_of(owner_obj)
            if manager is None:
                what = f"{via.kind} {via.namespace}/{via.name}" if via else "the target"
                return NoOrigin(
                    f"no GitSource, Flux Kustomization or Argo CD Application manages {what}"
                )
            kind = {"gitsource": "GitSource", "flux": "Kustomization", "argocd": "Application"}[
                manager.manager
            ]
            name, namespace = manager.name, manager.namespace
        origin: GitOrigin | NoOrigin
        if kind == "GitSource":
            gs = await self.kube.get(API_VERSION, "GitSource", name, namespace or canary.namespace)
            if gs is None:
                return NoOrigin(f"GitSource {namespace or canary.namespace}/{name} not found")
            origin = origin_from_gitsource(owner_obj, gs)
        elif kind == "Kustomization":
            kustomization = await self.kube.get(
                *FLUX_KUSTOMIZATION, name, namespace or "flux-system"
            )
            if kustomization is None:
                return NoOrigin(f"Flux Kustomization {namespace or 'flux-system'}/{name} not found")
            ref = flux_source_ref(kustomization)
            repo = await self.kube.get(*FLUX_GITREPOSITORY, ref[1], ref[0]) if ref else None
            origin = origin_from_flux(kustomization, repo)
        else:
            application = await self.kube.get(
                *ARGOCD_APPLICATION, name, namespace or ARGOCD_NAMESPACE
            )
            if application is None:
                return NoOrigin(
                    f"Argo CD Application {namespace or ARGOCD_NAMESPACE}/{name} not found"
                )
            origin = origin_from_argocd(application)
        if isinstance(origin, GitOrigin) and via is not None:
            origin = replace(origin, via=via, files=())
        return origin

    async def detect(self, canary: Canary, target: Mapping[str, Any]) -> Revision | None:
        try:
            made_by = await self._via(target)
            if not isinstance(made_by, NoOrigin) and made_by[1] is not None:
                owner_obj, via = made_by
                # The HelmRelease or Application may carry the new revision before its
                # controller has made the target from it, or before our cache of the target
                # has seen that: the revision would be credited to the old target. Unknown
                # until both have caught up.
                fresh_as = getattr(self.kube, "fresh_as", None)
                version = _meta(owner_obj).get("resourceVersion")
                if not settled(owner_obj, via) or (
                    fresh_as is not None
                    and not fresh_as(
                        str(target.get("apiVersion") or "apps/v1"),
                        str(target.get("kind") or "Deployment"),
                        _meta(target).get("namespace"),
                        version,
                    )
                ):
                    return None
            origin = await self.origin(canary, target)
        except KubeError as exc:
            log.debug("revision of %s/%s unknown: %s", canary.namespace, canary.name, exc)
            return None
        if isinstance(origin, NoOrigin):
            return None
        return Revision(
            format_revision(origin.branch or "HEAD", origin.revision),
            f"{origin.manager} {origin.owner}",
            leads=origin.via is not None,
        )


_CONFIG_KINDS = {"configmap": "ConfigMap", "secret": "Secret"}


def _default_namespace(canary: Canary, origin: GitOrigin) -> str:
    """The namespace the reconciler gives to manifests that name none: the GitSource's own
    for the built-in one; for Flux and Argo CD the canary's (their target namespace)."""
    return origin.default_namespace or canary.namespace


def subject_for(
    canary: Canary, origin: GitOrigin, tracked: tuple[tuple[str, str], ...] = ()
) -> Subject:
    """How ``origin``'s owner makes the canary's target from the repository."""
    namespace = _default_namespace(canary, origin)
    via = origin.via  # a HelmRelease or an Application (Revisions._via makes no other)
    if via is not None:
        ref = ManifestRef(via.api_version, via.kind, via.namespace, via.name)
        if via.kind == "HelmRelease":
            return HelmReleaseSubject(
                ref,
                source_path=origin.path,
                default_namespace=namespace,
                force_namespace=origin.target_namespace,
            )
        return ArgoApplicationSubject(
            ref,
            source_path=origin.path,
            default_namespace=namespace,
            repository=origin.url,
        )
    if origin.chart_value_files is not None:
        return ChartDirSubject(origin.path, origin.chart_value_files)
    target = canary.spec.target_ref
    return WorkloadSubject(
        ManifestRef(target.api_version or "apps/v1", target.kind, canary.namespace, target.name),
        source_path=origin.path,
        default_namespace=namespace,
        force_namespace=origin.target_namespace,
        tracked=tracked,
    )


def _same_host_https(api_url: str, repository_url: str) -> bool:
    api = urlsplit(api_url)
    repo = urlsplit(repository_url) if "://" in repository_url else None
    repo_host = repo.hostname if repo else repository_url.partition("@")[2].partition(":")[0]
    api_host = (api.hostname or "").lower()
    same = bool(repo_host) and (
        api_host == str(repo_host).lower() or api_host == f"api.{str(repo_host).lower()}"
    )
    return api.scheme == "https" and same


class GitOpsReverter:
    """The operator's `canary.ports.GitReverter`: finds where the target came from, the
    credentials and the commit identity in the cluster, and lets the gitops library's
    `Reverter` restore the part of the change that altered the target."""

    def __init__(
        self,
        kube: Kube,
        revisions: Revisions,
        reverter: Reverter,
        identity: CommitIdentity,
    ) -> None:
        self.kube = kube
        self.revisions = revisions
        self.reverter = reverter
        self.identity = identity
        self.guard = ImageAutomationGuard(kube, reverter)
        self._guarded: set[tuple[str, str]] = set()  # (canary, bad revision), this process

    async def _secret(self, namespace: str, name: str) -> dict[str, str]:
        values = await read_secret(self.kube, name, namespace)
        if values is None:
            raise CredentialsError(f"Secret {namespace}/{name} not found")
        return values

    async def _credentials(self, origin: GitOrigin) -> GitCredentials | None:
        if not origin.secret:
            return None
        namespace, _, name = origin.secret.partition("/")
        return credentials_from_secret(
            await self._secret(namespace, name), encoded=False, where=f"Secret {origin.secret}"
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

    async def _tracked_configs(self, canary: Canary) -> tuple[tuple[str, str], ...]:
        """The ConfigMaps and Secrets the failed run tracked (``status.trackedConfigs``, keys
        ``configmap/<name>`` and ``secret/<name>``): a bad release can live in them too."""
        body = await self.kube.get(API_VERSION, "Canary", canary.name, canary.namespace)
        tracked = ((body or {}).get("status") or {}).get("trackedConfigs") or {}
        refs = []
        for key in tracked if isinstance(tracked, Mapping) else ():
            kind, _, name = str(key).partition("/")
            api_kind = _CONFIG_KINDS.get(kind)
            if api_kind and name:
                refs.append((api_kind, name))
        return tuple(refs)

    async def _pull_request(
        self, canary: Canary, origin: GitOrigin, credentials: GitCredentials | None
    ) -> PullRequestSettings | None:
        gitops = canary.spec.gitops
        if gitops.mode != "pullRequest":
            return None
        settings = gitops.pull_request
        forge = forge_target(origin.url, kind=settings.provider, api_url=settings.api_url)
        if settings.secret_name:
            where = f"Secret {canary.namespace}/{settings.secret_name}"
            values = await self._secret(canary.namespace, settings.secret_name)
            token = values.get("token") or values.get("bearerToken") or values.get("password")
            if not token:
                raise CredentialsError(f"{where}: expected a key token (or password)")
            return PullRequestSettings(forge, token=token, username=values.get("username"))
        # Without a Secret of its own, the forge gets the Git credentials only where Git
        # sends them anyway: the repository's own host, over HTTPS (an apiURL in a Canary
        # must never carry another namespace's Git token somewhere else).
        if not _same_host_https(forge.api_url, origin.url):
            raise CredentialsError(
                f"spec.gitops.revert.pullRequest.apiURL: {forge.api_url} is not the "
                "repository's own host over https; name a Secret with the forge token in "
                "spec.gitops.revert.pullRequest.secretRef"
            )
        creds = credentials or GitCredentials()
        return PullRequestSettings(
            forge,
            token=creds.token,
            username=creds.username if creds.password else None,
            password=creds.password,
        )

    async def revert(self, canary: Canary, request: RevertRequest) -> RevertAnswer:
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
        good, bad = parse_revision(request.good_revision), parse_revision(request.bad_revision)
        if good is None or bad is None:
            return RevertAnswer(
                RevertResultKind.FAILED,
                message=f"not Git revisions: {request.good_revision!r}, {request.bad_revision!r}",
                retriable=False,
            )
        try:
            credentials = await self._credentials(origin)
            pull_request = await self._pull_request(canary, origin, credentials)
        except CredentialsError as exc:
            return RevertAnswer(RevertResultKind.FAILED, message=str(exc), retriable=True)
        except ForgeError as exc:
            return RevertAnswer(
                RevertResultKind.FAILED, message=exc.message, retriable=exc.kind.retriable
            )
        repository = GitRepository(origin.url, origin.branch or "main", credentials)
        author = await self._identity(canary, origin)
        result = await self.reverter.revert(
            GitRevertRequest(
                repository=repository,
                files=tuple(spec.gitops.paths),
                good_revision=good.sha,
                bad_revision=bad.sha,
                canary=f"{canary.namespace}/{canary.name}",
                reason=tuple(part.strip() for part in request.reason.split(";") if part.strip()),
                target=spec.target_ref.name,
                author=author,
                subject=subject_for(canary, origin, await self._tracked_configs(canary)),
                pull_request=pull_request,
            )
        )
        answer = _answer(result)
        key = (f"{canary.namespace}/{canary.name}", bad.sha)
        fresh = (
            isinstance(result, Reverted)
            or (isinstance(result, Proposed) and key not in self._guarded)
            or (isinstance(result, AlreadyReverted) and bool(result.commit_sha))
        )
        if fresh and request.images:
            side = (
                revert_branch(f"{canary.namespace}/{canary.name}", bad.sha)
                if isinstance(result, Proposed)
                else None
            )
            note = await self.guard.protect(
                canary, repository, request.images, author=author, branch=side
            )
            self._guarded.add(key)
            if note:
                answer = replace(answer, message=f"{answer.message}; {note}".strip("; "))
        return answer


def _answer(result: Any) -> RevertAnswer:
    if isinstance(result, Reverted):
        return RevertAnswer(
            RevertResultKind.REVERTED,
            commit=result.commit_sha,
            message=f"undid {len(result.reverted_commits)} commit(s)",
            files=result.files,
        )
    if isinstance(result, Proposed):
        return RevertAnswer(
            RevertResultKind.PROPOSED,
            commit=result.commit_sha,
            url=result.url,
            message=f"pull request {result.url} from branch {result.branch}",
            files=result.files,
        )
    if isinstance(result, AlreadyReverted):
        return RevertAnswer(
            RevertResultKind.ALREADY_REVERTED, commit=result.commit_sha or "", url=result.url
        )
    if isinstance(result, Superseded):
        return RevertAnswer(RevertResultKind.SUPERSEDED, message=result.reason)
    if isinstance(result, Unresolved):
        return RevertAnswer(
            RevertResultKind.UNRESOLVED, message=result.reason, files=result.files, url=result.url
        )
    assert isinstance(result, RevertFailed)
    return RevertAnswer(
        RevertResultKind.FAILED,
        message=result.reason,
        retriable=result.retriable,
        files=result.files,
    )


def _policies_in(files: Mapping[str, str]) -> dict[tuple[str, str], None]:
    """(namespace, name) of every ImagePolicy a setter marker names, in files that parse."""
    found: dict[tuple[str, str], None] = {}
    for path, text in files.items():
        try:
            markers = find_setter_markers(text, path)
        except (ImagePolicyError, ValueError) as exc:
            log.debug("setter markers of %s not read: %s", path, exc)
            continue
        for marker in markers:
            namespace = marker.policy_namespace or IMAGE_AUTOMATION_NAMESPACE
            found[(namespace, marker.policy_name)] = None
    return found


def _exclusion_edit(
    name: str, namespace: str, pattern: str
) -> Callable[[Mapping[str, str]], dict[str, str]]:
    """The edit that adds ``pattern`` to the ImageRepository's manifest in the given files
    (nothing when it is not there, ambiguous, or already excluded)."""

    def edit(files: Mapping[str, str]) -> dict[str, str]:
        try:
            located = find_image_repository_manifest(files, name=name, namespace=namespace)
            if located is None:
                return {}
            path, _ = located
            change = add_exclusion_to_manifest(
                files[path], name=name, namespace=namespace, pattern=pattern, file=path
            )
        except (ImagePolicyError, ValueError) as exc:
            log.warning("exclusion for ImageRepository %s/%s not written: %s", namespace, name, exc)
            return {}
        return {path: change.text} if change.changed else {}

    return edit


class ImageAutomationGuard:
    """Keeps Flux's image automation from choosing a failed image's tag again.

    The setter markers in the repository (``# {"$imagepolicy": "<ns>:<policy>"}``) name the
    ImagePolicies that write image tags into it; each reads an ImageRepository, whose
    ``spec.exclusionList`` takes the failed tag (``^<tag>$``): in the repository when the
    ImageRepository's manifest lives there (a commit, or on the revert's side branch in
    pull-request mode), else on the live object when no GitOps reconciler owns it. Where
    neither is possible, the note says exactly what to add, and where. Never raises: a file
    that does not parse, an ambiguous manifest or an API error become notes and log lines.
    """

    def __init__(self, kube: Kube, reverter: Reverter) -> None:
        self.kube = kube
        self.reverter = reverter

    async def _image_object(self, kind: str, name: str, namespace: str) -> Mapping[str, Any] | None:
        """An ImagePolicy or ImageRepository of Flux's image automation, in the first API
        version the cluster serves it in (None when none has it)."""
        for version in IMAGE_POLICY_VERSIONS:
            with contextlib.suppress(KubeError):
                found = await self.kube.get(version, kind, name, namespace)
                if found is not None:
                    return found
        return None

    async def protect(
        self,
        canary: Canary,
        repository: GitRepository,
        images: tuple[str, ...],
        *,
        author: CommitIdentity,
        branch: str | None = None,
    ) -> str:
        try:
            marked = await self.reverter.files_containing(repository, "$imagepolicy", branch=branch)
        except GitError as exc:
            return f"image automation not checked: {exc.message}"
        policies = await asyncio.to_thread(_policies_in, marked)
        notes: list[str] = []
        for image in images:
            try:
                repository_name, tag, _ = split_image(image)
            except ValueError:
                continue
            if not tag:
                continue
            for namespace, name in policies:
                note = await self._exclude(
                    canary, repository, namespace, name, repository_name, tag, author, branch
                )
                if note:
                    notes.append(note)
        return "; ".join(notes)

    async def _exclude(
        self,
        canary: Canary,
        repository: GitRepository,
        namespace: str,
        policy_name: str,
        image_repository: str,
        tag: str,
        author: CommitIdentity,
        branch: str | None,
    ) -> str:
        policy = await self._image_object("ImagePolicy", policy_name, namespace)
        if policy is None:
            return ""
        ref = ((policy.get("spec") or {}).get("imageRepositoryRef")) or {}
        repo_name = str(ref.get("name") or "")
        repo_namespace = str(ref.get("namespace") or namespace)
        live = await self._image_object("ImageRepository", repo_name, repo_namespace)
        if live is None or str((live.get("spec") or {}).get("image", "")) != image_repository:
            return ""
        try:
            pattern = tag_exclusion_pattern(tag)
        except ValueError as exc:
            return f"could not exclude {tag} from image automation: {exc}"
        where = f"ImageRepository {repo_namespace}/{repo_name}"
        edit = _exclusion_edit(repo_name, repo_namespace, pattern)
        try:
            files = await self.reverter.files_containing(
                repository, "ImageRepository", branch=branch
            )
        except GitError as exc:
            files = {}
            log.warning("cannot read %s for %s: %s", repository.display, where, exc.message)
        in_git = await asyncio.to_thread(_located, files, repo_name, repo_namespace)
        if in_git is not None:
            message = (
                f"Exclude {image_repository}:{tag} from image automation\n\n"
                f"Canary {canary.namespace}/{canary.name} failed with this tag; {where} no longer "
                f"offers it to ImagePolicy {namespace}/{policy_name}.\n\n"
                f"Canary: {canary.namespace}/{canary.name}\n"
                f"Canary-Excludes: {image_repository}:{tag}\n"
            )
            try:
                commit = await self.reverter.commit_edit(
                    repository, "ImageRepository", edit, message, author=author, branch=branch
                )
            except GitError as exc:
                return f"could not exclude {tag} from image automation in {in_git}: {exc.message}"
            if commit is None:
                return f"image automation already excludes {tag} ({where}, {in_git})"
            return f"excluded tag {tag} from image automation in {in_git} ({commit[:12]})"
        labels = _meta(live).get("labels") or {}
        annotations = _meta(live).get("annotations") or {}
        managed = (
            any(
                str(k).startswith(("kustomize.toolkit.fluxcd.io/", "argocd.argoproj.io/"))
                for k in {**labels, **annotations}
            )
            or "canary.gitops.dev/source" in annotations
        )
        if managed:
            return (
                f"image automation may push {tag} again: add {pattern!r} to spec.exclusionList of "
                f"{where} in the repository that declares it (it is applied by GitOps, but not "
                f"from {repository.display})"
            )
        patch = exclusion_patch(live, pattern)
        if patch is None:
            return f"image automation already excludes {tag} ({where})"
        try:
            await self.kube.patch(
                str(live.get("apiVersion")), "ImageRepository", repo_name, repo_namespace, patch
            )
        except KubeError as exc:
            return f"could not exclude {tag} on {where}: {exc}"
        return f"excluded tag {tag} from image automation on the live {where}"


def _located(files: Mapping[str, str], name: str, namespace: str) -> str | None:
    try:
        found = find_image_repository_manifest(files, name=name, namespace=namespace)
    except (ImagePolicyError, ValueError) as exc:
        log.warning("ImageRepository %s/%s in Git not used: %s", namespace, name, exc)
        return None
    return found[0] if found is not None else None


class GitOpsWiring:
    """Holds the workspace, the reverter and the GitSource pass (the scheduler runs it)."""

    def __init__(
        self,
        kube: Kube,
        *,
        cache_dir: Path,
        author_name: str,
        author_email: str,
        events: EventRecorder | None = None,
    ) -> None:
        self.kube = kube
        self.events = events
        self.workspace = Workspace(cache_dir)
        kustomize = Kustomize()
        identity = CommitIdentity(author_name, author_email)
        self.revisions = Revisions(kube)
        self.reverter = GitOpsReverter(
            kube, self.revisions, Reverter(self.workspace, kustomize=kustomize), identity
        )
        self.reconciler = GitSourceReconciler(
            self.workspace, PortKubeApply(kube), kustomize=kustomize
        )
        self.leader: Leader | None = None  # set by the operator; None: always act

    async def aclose(self) -> None:
        """Nothing of its own to close: the scheduler owns the GitSource jobs."""

    async def job_pass(self, namespace: str, name: str) -> float | None:
        """The scheduler's pass for one GitSource (leader only); None once it is gone."""
        if self.leader is not None and not self.leader.is_leader:
            return 5.0  # a standby reads nothing
        return await self.run_pass(namespace, name)

    async def run_pass(self, namespace: str, name: str) -> float | None:
        body = await self.kube.get(API_VERSION, "GitSource", name, namespace)
        if body is None:
            return None
        source = SourceRef(namespace=namespace, name=name)
        previous = GitSourceStatus.from_dict(body.get("status") or {})

        involved = {
            "apiVersion": API_VERSION,
            "kind": "GitSource",
            "name": name,
            "namespace": namespace,
            "uid": str((body.get("metadata") or {}).get("uid", "")),
        }

        async def not_ready(reason: str, message: str) -> None:
            condition = _condition("False", reason, message, body.get("status"))
            await self._patch_status(namespace, name, {"conditions": [condition]})
            if self.events is not None:
                await self.events.emit_about(involved, "Warning", reason, message)

        try:
            spec = parse_gitsource_spec(body.get("spec"), f"GitSource {namespace}/{name} spec")
        except GitSourceSpecError as exc:
            await not_ready("InvalidSpec", str(exc))
            return 60.0
        credentials = None
        if spec.secret_name and not spec.suspend:  # suspended: the reconciler only says so
            secret = await read_secret(self.kube, spec.secret_name, namespace)
            if secret is None:
                await not_ready(
                    "SecretNotFound", f"Secret {namespace}/{spec.secret_name} not found"
                )
                return spec.interval_seconds
            try:
                credentials = credentials_from_secret(
                    secret, encoded=False, where=f"Secret {namespace}/{spec.secret_name}"
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
        ready = result.status.condition("Ready")
        if ready is not None and ready.status != "True" and self.events is not None:
            # One Warning Event per failure (repeats are aggregated by the recorder).
            await self.events.emit_about(involved, "Warning", ready.reason, ready.message)
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
    stamp = format_time(datetime.now(UTC))
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
