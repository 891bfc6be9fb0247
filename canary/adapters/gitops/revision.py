"""Which Git revision (and which repository, branch and path) introduced a target's change.

A canary run records the revision it analyses so that, when it fails, the reverter knows what to
undo (good..bad) and where to push. Three reconcilers can manage the target, each recording the
revision somewhere else:

* the built-in GitSource: annotations ``canary.gitops.dev/source`` (``<ns>/<name>``),
  ``canary.gitops.dev/revision`` (``<branch>@sha1:<sha>``) and ``canary.gitops.dev/source-path``
  on the object itself; URL, branch and path come from the GitSource;
* Flux: labels ``kustomize.toolkit.fluxcd.io/name`` / ``/namespace`` on the object; the
  Kustomization's ``status.lastAppliedRevision``, ``spec.path`` and ``spec.sourceRef``; the
  GitRepository's ``spec.url``, ``spec.ref.branch`` and ``spec.secretRef``;
* Argo CD: annotation ``argocd.argoproj.io/tracking-id`` (or the instance label) on the object;
  the Application's ``status.sync.revision`` and ``spec.source.repoURL`` / ``path`` /
  ``targetRevision``.

A target can also be made from Git one step removed: Flux's helm-controller makes it from a
``HelmRelease`` (labels ``helm.toolkit.fluxcd.io/name`` / ``/namespace``, or Helm's own
``meta.helm.sh/release-name`` annotations), and Argo CD from an ``Application`` whose source is
a Helm chart. Git then holds the HelmRelease or the Application, applied by one of the three
reconcilers above: :func:`helm_release_of` finds the HelmRelease, and the caller takes the
origin of *that* object and records it in :attr:`GitOrigin.via`.

Everything here is a pure function over the objects' dicts (as read from the API): the caller
fetches the objects, these functions read them. A missing piece is not an exception but a
:class:`NoOrigin` with the reason, ready for a status condition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ANNOTATION_REVISION",
    "ANNOTATION_SOURCE",
    "ANNOTATION_SOURCE_PATH",
    "GitOrigin",
    "ManagerRef",
    "NoOrigin",
    "ParsedRevision",
    "Via",
    "flux_source_ref",
    "format_revision",
    "helm_release_of",
    "manager_of",
    "origin_from_argocd",
    "origin_from_flux",
    "origin_from_gitsource",
    "parse_revision",
]

ANNOTATION_SOURCE = "canary.gitops.dev/source"
ANNOTATION_REVISION = "canary.gitops.dev/revision"
ANNOTATION_SOURCE_PATH = "canary.gitops.dev/source-path"
FLUX_NAME_LABEL = "kustomize.toolkit.fluxcd.io/name"
FLUX_NAMESPACE_LABEL = "kustomize.toolkit.fluxcd.io/namespace"
ARGOCD_TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"
ARGOCD_INSTANCE_LABEL = "argocd.argoproj.io/instance"
APP_INSTANCE_LABEL = "app.kubernetes.io/instance"
HELM_NAME_LABEL = "helm.toolkit.fluxcd.io/name"
HELM_NAMESPACE_LABEL = "helm.toolkit.fluxcd.io/namespace"
HELM_RELEASE_NAME_ANNOTATION = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE_ANNOTATION = "meta.helm.sh/release-namespace"

Manager = Literal["gitsource", "flux", "argocd"]

_SHA = r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}"
_REVISION_FORMS = (
    # Flux v2 and ours: "<ref>@sha1:<sha>" (ref may be "refs/heads/main" or "main")
    re.compile(rf"^(?P<ref>.+)@sha(?:1|256):(?P<sha>{_SHA})$"),
    # bare digest: "sha1:<sha>"
    re.compile(rf"^sha(?:1|256):(?P<sha>{_SHA})$"),
    # Flux v1 style: "<branch>/<sha>"
    re.compile(rf"^(?P<ref>.+)/(?P<sha>{_SHA})$"),
    # Argo CD and plain git: "<sha>"
    re.compile(rf"^(?P<sha>{_SHA})$"),
)


@dataclass(frozen=True, slots=True)
class ParsedRevision:
    branch: str | None
    sha: str


def parse_revision(text: object) -> ParsedRevision | None:
    """Read any of ``main@sha1:<sha>``, ``refs/heads/main@sha1:<sha>``, ``sha1:<sha>``,
    ``main/<sha>`` and ``<sha>``. Tags (``v1@sha1:...`` from ``refs/tags/``) give no branch."""
    if not isinstance(text, str):
        return None
    value = text.strip()
    for pattern in _REVISION_FORMS:
        match = pattern.match(value)
        if not match:
            continue
        groups = match.groupdict()
        ref = groups.get("ref")
        branch: str | None = None
        if ref:
            if ref.startswith("refs/heads/"):
                branch = ref.removeprefix("refs/heads/")
            elif not ref.startswith("refs/"):
                branch = ref
        return ParsedRevision(branch, groups["sha"].lower())
    return None


def format_revision(branch: str, sha: str) -> str:
    """``main@sha1:<sha>``: the branch and commit, in Flux's format (our annotation too)."""
    return f"{branch}@sha1:{sha}"


@dataclass(frozen=True, slots=True)
class ManagerRef:
    """Who applies the target: a GitSource, a Flux Kustomization or an Argo CD Application.
    ``namespace`` is None when the marker does not say (Argo CD instance labels)."""

    manager: Manager
    namespace: str | None
    name: str


@dataclass(frozen=True, slots=True)
class Via:
    """The object kept in Git that makes the target: a Flux ``HelmRelease`` or an Argo CD
    ``Application`` with a Helm chart source."""

    api_version: str
    kind: str
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class GitOrigin:
    """Where the target's manifests live and the commit the cluster runs.

    ``branch`` None means the remote's default branch (Argo CD ``targetRevision: HEAD``).
    ``files`` is a hint (the built-in reconciler records the exact file). ``secret`` names
    the Secret holding Git credentials as ``<namespace>/<name>``, when known.
    """

    manager: Manager
    owner: str
    url: str
    branch: str | None
    path: str
    revision: str
    secret: str | None = None
    files: tuple[str, ...] = ()
    target_namespace: str | None = None  # Flux spec.targetNamespace: every object's namespace
    via: Via | None = None
    chart_value_files: tuple[str, ...] | None = None  # Argo CD: the path is a Helm chart

    @property
    def default_namespace(self) -> str | None:
        """The namespace this owner gives objects that name none (None: unknown)."""
        if self.manager == "gitsource":
            namespace, _, _ = self.owner.rpartition("/")
            return namespace or None
        return None


@dataclass(frozen=True, slots=True)
class NoOrigin:
    reason: str


def _meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    meta = (obj or {}).get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _str_map(value: object) -> Mapping[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _name(obj: Mapping[str, Any] | None) -> str:
    meta = _meta(obj)
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _dig(obj: Mapping[str, Any] | None, *path: str) -> Any:
    node: Any = obj
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _clean_path(path: object) -> str:
    text = str(path or "").strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return "" if text in (".", "/") else text.strip("/")


def manager_of(target: Mapping[str, Any]) -> ManagerRef | None:
    """Which reconciler manages ``target``, from its annotations and labels (ours first)."""
    meta = _meta(target)
    annotations = _str_map(meta.get("annotations"))
    labels = _str_map(meta.get("labels"))
    source = annotations.get(ANNOTATION_SOURCE)
    if source and "/" in source:
        namespace, _, name = source.partition("/")
        return ManagerRef("gitsource", namespace, name)
    if labels.get(FLUX_NAME_LABEL):
        return ManagerRef("flux", labels.get(FLUX_NAMESPACE_LABEL), labels[FLUX_NAME_LABEL])
    tracking = annotations.get(ARGOCD_TRACKING_ANNOTATION)
    if tracking:
        app = tracking.split(":", 1)[0]
        # Applications outside the control-plane namespace are written "<ns>_<name>".
        if "_" in app:
            namespace, _, name = app.partition("_")
            return ManagerRef("argocd", namespace, name)
        return ManagerRef("argocd", None, app)
    if labels.get(ARGOCD_INSTANCE_LABEL):
        return ManagerRef("argocd", None, labels[ARGOCD_INSTANCE_LABEL])
    return None


def helm_release_of(target: Mapping[str, Any]) -> tuple[str, str] | None:
    """(namespace, name) of the Flux HelmRelease that made ``target``, from helm-controller's
    labels, else Helm's release annotations (the release name is then taken as the
    HelmRelease's name, helm-controller's default)."""
    meta = _meta(target)
    labels = _str_map(meta.get("labels"))
    annotations = _str_map(meta.get("annotations"))
    name = labels.get(HELM_NAME_LABEL)
    if name:
        return (labels.get(HELM_NAMESPACE_LABEL) or str(meta.get("namespace", "")), name)
    release = annotations.get(HELM_RELEASE_NAME_ANNOTATION)
    if release and labels.get("app.kubernetes.io/managed-by") == "Helm":
        namespace = annotations.get(HELM_RELEASE_NAMESPACE_ANNOTATION) or str(
            meta.get("namespace", "")
        )
        return (namespace, release)
    return None


def origin_from_gitsource(
    target: Mapping[str, Any], gitsource: Mapping[str, Any]
) -> GitOrigin | NoOrigin:
    """From the built-in reconciler's annotations on ``target`` and its GitSource object."""
    annotations = _str_map(_meta(target).get("annotations"))
    raw = annotations.get(ANNOTATION_REVISION)
    parsed = parse_revision(raw)
    if parsed is None:
        return NoOrigin(
            f"{_name(target)}: annotation {ANNOTATION_REVISION} is "
            f"{'missing' if raw is None else f'not a revision ({raw!r})'}"
        )
    spec = gitsource.get("spec") if isinstance(gitsource.get("spec"), Mapping) else {}
    url = _dig(spec, "url")
    if not isinstance(url, str) or not url:
        return NoOrigin(f"GitSource {_name(gitsource)}: spec.url is missing")
    branch = _dig(spec, "branch") or parsed.branch or "main"
    secret_name = _dig(spec, "secretRef", "name")
    namespace = _meta(gitsource).get("namespace")
    source_path = annotations.get(ANNOTATION_SOURCE_PATH)
    return GitOrigin(
        manager="gitsource",
        owner=_name(gitsource),
        url=url,
        branch=str(branch),
        path=_clean_path(_dig(spec, "path")),
        revision=parsed.sha,
        secret=f"{namespace}/{secret_name}" if secret_name and namespace else None,
        files=(source_path,) if source_path else (),
    )


def origin_from_flux(
    kustomization: Mapping[str, Any], git_repository: Mapping[str, Any] | None
) -> GitOrigin | NoOrigin:
    """From a Flux Kustomization and the GitRepository its ``spec.sourceRef`` names."""
    where = f"Kustomization {_name(kustomization)}"
    source_kind = _dig(kustomization, "spec", "sourceRef", "kind")
    if source_kind != "GitRepository":
        return NoOrigin(f"{where}: spec.sourceRef.kind is {source_kind!r}, not GitRepository")
    raw = _dig(kustomization, "status", "lastAppliedRevision")
    parsed = parse_revision(raw)
    if parsed is None:
        return NoOrigin(
            f"{where}: status.lastAppliedRevision is "
            f"{'not set yet' if raw is None else f'not a Git revision ({raw!r})'}"
        )
    if git_repository is None:
        return NoOrigin(
            f"{where}: GitRepository {_dig(kustomization, 'spec', 'sourceRef', 'name')!r} not found"
        )
    repo_where = f"GitRepository {_name(git_repository)}"
    url = _dig(git_repository, "spec", "url")
    if not isinstance(url, str) or not url:
        return NoOrigin(f"{repo_where}: spec.url is missing")
    ref = _dig(git_repository, "spec", "ref")
    ref = ref if isinstance(ref, Mapping) else {}
    branch = ref.get("branch")
    if not branch:
        pinned = next((k for k in ("tag", "semver", "commit", "name") if ref.get(k)), None)
        if pinned:
            return NoOrigin(
                f"{repo_where}: spec.ref.{pinned} pins a {pinned}, not a branch; a revert "
                "needs a branch to push to"
            )
        branch = parsed.branch or "master"  # Flux's default when spec.ref is empty
    secret_name = _dig(git_repository, "spec", "secretRef", "name")
    namespace = _meta(git_repository).get("namespace")
    target_namespace = _dig(kustomization, "spec", "targetNamespace")
    return GitOrigin(
        manager="flux",
        owner=_name(kustomization),
        url=url,
        branch=str(branch),
        path=_clean_path(_dig(kustomization, "spec", "path")),
        revision=parsed.sha,
        secret=f"{namespace}/{secret_name}" if secret_name and namespace else None,
        target_namespace=str(target_namespace) if target_namespace else None,
    )


def flux_source_ref(kustomization: Mapping[str, Any]) -> tuple[str, str] | None:
    """(namespace, name) of the GitRepository a Kustomization reads, for the caller to fetch."""
    ref = _dig(kustomization, "spec", "sourceRef")
    if not isinstance(ref, Mapping) or ref.get("kind") != "GitRepository" or not ref.get("name"):
        return None
    namespace = ref.get("namespace") or _meta(kustomization).get("namespace")
    return (str(namespace), str(ref["name"]))


def _argocd_source(application: Mapping[str, Any], where: str) -> tuple[Any, Any] | NoOrigin:
    """The Application's Git source and the revision it synced: ``spec.source``, or among
    ``spec.sources`` the only one with a path (the others are charts or value files)."""
    spec = application.get("spec") if isinstance(application.get("spec"), Mapping) else {}
    source = _dig(spec, "source")
    if isinstance(source, Mapping):
        return source, _dig(application, "status", "sync", "revision")
    sources = _dig(spec, "sources")
    revisions = _dig(application, "status", "sync", "revisions")
    if not isinstance(sources, list) or not sources:
        return NoOrigin(f"{where}: spec.source is missing")
    git_sources = [
        (i, s)
        for i, s in enumerate(sources)
        if isinstance(s, Mapping) and s.get("path") is not None
    ]
    if len(git_sources) != 1:
        return NoOrigin(
            f"{where}: spec.sources has {len(git_sources)} Git sources with a path; "
            "expected exactly one"
        )
    index, source = git_sources[0]
    revision = revisions[index] if isinstance(revisions, list) and len(revisions) > index else None
    return source, revision


def origin_from_argocd(application: Mapping[str, Any]) -> GitOrigin | NoOrigin:
    """From an Argo CD Application (single source, or the one Git source with a path)."""
    where = f"Application {_name(application)}"
    chosen = _argocd_source(application, where)
    if isinstance(chosen, NoOrigin):
        return chosen
    source, revision_raw = chosen
    if _dig(source, "chart"):
        return NoOrigin(f"{where}: the source is a Helm chart, not a Git path")
    parsed = parse_revision(revision_raw)
    if parsed is None:
        return NoOrigin(
            f"{where}: status.sync.revision is "
            f"{'not set yet' if revision_raw is None else f'not a commit ({revision_raw!r})'}"
        )
    url = _dig(source, "repoURL")
    if not isinstance(url, str) or not url:
        return NoOrigin(f"{where}: spec.source.repoURL is missing")
    target = str(_dig(source, "targetRevision") or "HEAD")
    if re.fullmatch(_SHA, target):
        return NoOrigin(f"{where}: targetRevision pins commit {target}; a revert needs a branch")
    branch: str | None = None if target == "HEAD" else target.removeprefix("refs/heads/")
    helm = _dig(source, "helm")
    value_files = _dig(helm, "valueFiles") if isinstance(helm, Mapping) else None
    return GitOrigin(
        manager="argocd",
        owner=_name(application),
        url=url,
        branch=branch,
        path=_clean_path(_dig(source, "path")),
        revision=parsed.sha,
        chart_value_files=(
            tuple(str(v) for v in value_files or ()) if isinstance(helm, Mapping) else None
        ),
    )
