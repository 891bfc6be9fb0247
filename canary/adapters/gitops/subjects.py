"""What of a rendered Git tree decides how the canary's target looks: a *projection*.

The reverter asks one question many times: "does this version of the tree make the same
target as the last good revision?" A projection answers it for one kind of owner, as a
canonical text (sorted JSON) that is equal exactly when the target would be equal:

* :class:`WorkloadSubject` — the target is in the rendering itself (plain manifests or a
  kustomization, applied by a GitSource, a Flux Kustomization or an Argo CD Application):
  the target object plus every ConfigMap and Secret its pod template refers to (names
  included, so a generator's content hash counts) and the configs the canary tracked;
* :class:`HelmReleaseSubject` — Flux's helm-controller makes the target from a
  ``HelmRelease`` kept in Git: the release's chart reference, values, ``valuesFrom``
  (with the referenced ConfigMaps and Secrets as rendered) and post-renderers, plus the
  chart's files when the chart lives in the same repository;
* :class:`ArgoApplicationSubject` — Argo CD makes the target from an ``Application`` kept in
  Git whose source is a Helm chart: the Application's source(s) (chart, version, Helm
  parameters, values, value files), plus the chart's files when they live in this repository;
* :class:`ChartDirSubject` — the owner renders a Helm chart directory of this repository
  (an Argo CD Application with ``path`` pointing at a chart): every file of the chart and
  its value files.

Charts are never rendered here (no helm binary): a change of values or chart version is
attributed to the target because the release is the target's only source.

Everything here is pure: the caller renders (:func:`~canary.adapters.gitops.render.
render_manifests`) and passes a ``read`` function for raw files.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from canary.adapters.gitops.manifests import Manifest, ManifestRef

__all__ = [
    "ArgoApplicationSubject",
    "ChartDirSubject",
    "FileReader",
    "HelmReleaseSubject",
    "Projection",
    "Subject",
    "WorkloadSubject",
    "config_refs_of",
    "unit_of",
]


#: Reads a repository-relative file of the tree being projected: its bytes, or None.
#: ``list`` gives the files under a directory (repository-relative, sorted).
class FileReader(Protocol):
    def read(self, path: str) -> bytes | None: ...

    def list(self, directory: str) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True)
class Projection:
    """The part of a tree that decides the target. ``found`` is False when the subject is
    not in the rendering at all; ``origins`` are the files the projected objects came from."""

    key: str
    found: bool
    origins: tuple[str, ...] = ()
    describe: str = ""
    units: tuple[str, ...] = ()  # the render units the projected objects came from


def unit_of(manifest: Manifest) -> str:
    """The render unit an object came from: ``kustomize:<dir>`` or ``file:<path>``."""
    if manifest.rendered_by is not None:
        return f"kustomize:{manifest.rendered_by}"
    return f"file:{manifest.source_file}"


def _units(manifests: Iterable[Manifest | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(unit_of(m) for m in manifests if m is not None))


class Subject(Protocol):
    """One owner of a target; ``source_path`` is the path the owner renders."""

    @property
    def source_path(self) -> str: ...

    def describe(self) -> str: ...

    def project(self, manifests: Sequence[Manifest], files: FileReader) -> Projection: ...


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _matches(
    manifest: Manifest,
    ref: ManifestRef,
    default_namespace: str | None,
    force_namespace: str | None = None,
) -> bool:
    got = manifest.ref
    if (got.group, got.kind, got.name) != (ref.group, ref.kind, ref.name):
        return False
    namespace = force_namespace or got.namespace or default_namespace
    return namespace is None or ref.namespace is None or namespace == ref.namespace


def _dig(obj: object, *path: str) -> Any:
    node = obj
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def config_refs_of(workload: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """(kind, name) of every ConfigMap and Secret the pod template of ``workload`` uses:
    ``envFrom``, ``env[].valueFrom``, volumes (incl. projected) and image pull secrets."""
    spec = _dig(workload, "spec", "template", "spec")
    if not isinstance(spec, Mapping):
        return ()
    found: list[tuple[str, str]] = []

    def add(kind: str, name: object) -> None:
        if isinstance(name, str) and name and (kind, name) not in found:
            found.append((kind, name))

    containers = [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
    ]
    for container in containers:
        if not isinstance(container, Mapping):
            continue
        for source in container.get("envFrom") or []:
            add("ConfigMap", _dig(source, "configMapRef", "name"))
            add("Secret", _dig(source, "secretRef", "name"))
        for env in container.get("env") or []:
            add("ConfigMap", _dig(env, "valueFrom", "configMapKeyRef", "name"))
            add("Secret", _dig(env, "valueFrom", "secretKeyRef", "name"))
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, Mapping):
            continue
        add("ConfigMap", _dig(volume, "configMap", "name"))
        add("Secret", _dig(volume, "secret", "secretName"))
        for source in _dig(volume, "projected", "sources") or []:
            add("ConfigMap", _dig(source, "configMap", "name"))
            add("Secret", _dig(source, "secret", "name"))
    for pull in spec.get("imagePullSecrets") or []:
        add("Secret", _dig(pull, "name"))
    return tuple(found)


def _find_all(
    manifests: Iterable[Manifest],
    ref: ManifestRef,
    default_namespace: str | None,
    force_namespace: str | None = None,
) -> list[Manifest]:
    return [m for m in manifests if _matches(m, ref, default_namespace, force_namespace)]


def _find(
    manifests: Iterable[Manifest],
    ref: ManifestRef,
    default_namespace: str | None,
    force_namespace: str | None = None,
) -> Manifest | None:
    found = _find_all(manifests, ref, default_namespace, force_namespace)
    return found[0] if found else None


def _copies(
    manifests: Iterable[Manifest],
    ref: ManifestRef,
    default_namespace: str | None,
    force_namespace: str | None = None,
) -> list[Any]:
    """Every declaration of ``ref`` after the first one. Part of every projection: a tree
    that declares the target twice (a manifest moved, with the old file restored) is never
    the good tree, whichever copy comes first."""
    return [m.body for m in _find_all(manifests, ref, default_namespace, force_namespace)[1:]]


def _configs(
    manifests: Sequence[Manifest],
    names: Iterable[tuple[str, str]],
    namespace: str | None,
    default_namespace: str | None,
    force_namespace: str | None,
) -> tuple[dict[str, Any], list[str], list[Manifest]]:
    out: dict[str, Any] = {}
    origins: list[str] = []
    used: list[Manifest] = []
    for kind, name in names:
        found = _find(
            manifests, ManifestRef("v1", kind, namespace, name), default_namespace, force_namespace
        )
        ref = ManifestRef("v1", kind, namespace, name)
        out[f"{kind}/{name}"] = dict(found.body) if found is not None else None
        extra = _copies(manifests, ref, default_namespace, force_namespace)
        if extra:
            out[f"{kind}/{name} copies"] = extra
        if found is not None:
            origins.append(found.source_file)
        used.extend(_find_all(manifests, ref, default_namespace, force_namespace))
    return out, origins, used


@dataclass(frozen=True, slots=True)
class WorkloadSubject:
    """The target itself is in the rendering of ``source_path``.

    ``default_namespace`` is what the owner gives objects without one (a GitSource its own
    namespace, Flux and Argo CD their target namespace); ``force_namespace`` overrides every
    object's namespace (Flux ``spec.targetNamespace``). ``tracked`` are extra ConfigMaps and
    Secrets (``(kind, name)``) the canary tracked."""

    target: ManifestRef
    source_path: str = ""
    default_namespace: str | None = None
    force_namespace: str | None = None
    tracked: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        return f"{self.target.kind} {self.target.name}"

    def project(self, manifests: Sequence[Manifest], files: FileReader) -> Projection:
        target = _find(manifests, self.target, self.default_namespace, self.force_namespace)
        if target is None:
            return Projection(_canonical({"target": None}), False, (), self.describe())
        names = list(dict.fromkeys((*config_refs_of(target.body), *self.tracked)))
        configs, origins, used = _configs(
            manifests,
            names,
            self.target.namespace,
            self.default_namespace,
            self.force_namespace,
        )
        targets = _find_all(manifests, self.target, self.default_namespace, self.force_namespace)
        copies = [m.body for m in targets[1:]]
        key = _canonical({"target": target.body, "copies": copies, "configs": configs})
        return Projection(
            key,
            True,
            tuple(dict.fromkeys((target.source_file, *origins))),
            self.describe(),
            _units((*targets, *used)),
        )


def _chart_files(files: FileReader, directory: str) -> dict[str, str]:
    """Every file of a chart directory, by path, as text (bytes shown as hex if not UTF-8)."""
    out: dict[str, str] = {}
    for path in files.list(directory):
        content = files.read(path)
        if content is None:
            continue
        try:
            out[path] = content.decode("utf-8")
        except UnicodeDecodeError:
            out[path] = content.hex()
    return out


def _repo_path(base: str, relative: str) -> str | None:
    """``relative`` (to ``base``) as a repository path; None when it leaves the repository
    (``..`` above the root, or an absolute path): such a file is never read."""
    text = relative.strip()
    if text.startswith("/"):
        return None
    joined = posixpath.normpath(posixpath.join(base or ".", text))
    if joined == ".":
        return ""
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        return None
    return joined


def _read_values(files: FileReader, chart: dict[str, str], path: str | None) -> None:
    if path is None:
        return
    content = files.read(path)
    chart[path] = content.decode("utf-8", "replace") if content else ""


@dataclass(frozen=True, slots=True)
class HelmReleaseSubject:
    """A Flux ``HelmRelease`` (helm.toolkit.fluxcd.io) in the rendering of ``source_path``
    makes the target."""

    release: ManifestRef
    source_path: str = ""
    default_namespace: str | None = None
    force_namespace: str | None = None
    same_repository_sources: tuple[str, ...] = ()  # GitRepository names that are this repo

    def describe(self) -> str:
        return f"HelmRelease {self.release.name}"

    def project(self, manifests: Sequence[Manifest], files: FileReader) -> Projection:
        found = _find(manifests, self.release, self.default_namespace, self.force_namespace)
        if found is None:
            return Projection(_canonical({"release": None}), False, (), self.describe())
        spec = found.body.get("spec") if isinstance(found.body.get("spec"), Mapping) else {}
        assert isinstance(spec, Mapping)
        relevant = {
            key: spec.get(key)
            for key in (
                "chart",
                "chartRef",
                "values",
                "valuesFrom",
                "postRenderers",
                "releaseName",
                "targetNamespace",
            )
        }
        names = []
        for item in spec.get("valuesFrom") or []:
            kind, name = _dig(item, "kind"), _dig(item, "name")
            if kind in ("ConfigMap", "Secret") and isinstance(name, str):
                names.append((str(kind), name))
        configs, origins, used = _configs(
            manifests,
            names,
            self.release.namespace,
            self.default_namespace,
            self.force_namespace,
        )
        chart: dict[str, str] = {}
        chart_spec = _dig(spec, "chart", "spec")
        source = _dig(chart_spec, "sourceRef")
        if (
            isinstance(chart_spec, Mapping)
            and _dig(source, "kind") == "GitRepository"
            and (
                not self.same_repository_sources
                or _dig(source, "name") in self.same_repository_sources
            )
            and isinstance(chart_spec.get("chart"), str)
        ):
            directory = _repo_path("", str(chart_spec["chart"]))
            chart = _chart_files(files, directory) if directory is not None else {}
            for values_file in chart_spec.get("valuesFiles") or []:
                if isinstance(values_file, str):
                    _read_values(files, chart, _repo_path("", values_file))
        releases = _find_all(manifests, self.release, self.default_namespace, self.force_namespace)
        copies = [m.body for m in releases[1:]]
        key = _canonical(
            {"release": relevant, "copies": copies, "configs": configs, "chart": chart}
        )
        return Projection(
            key,
            True,
            tuple(dict.fromkeys((found.source_file, *origins, *chart))),
            self.describe(),
            _units((*releases, *used)),
        )


@dataclass(frozen=True, slots=True)
class ArgoApplicationSubject:
    """An Argo CD ``Application`` in the rendering of ``source_path`` makes the target from
    a Helm chart; ``repository`` is this repository's URL (a chart with a ``path`` in it is
    read from the tree)."""

    application: ManifestRef
    source_path: str = ""
    default_namespace: str | None = None
    repository: str = ""

    def describe(self) -> str:
        return f"Application {self.application.name}"

    def project(self, manifests: Sequence[Manifest], files: FileReader) -> Projection:
        found = _find(manifests, self.application, self.default_namespace)
        if found is None:
            return Projection(_canonical({"application": None}), False, (), self.describe())
        spec = found.body.get("spec") if isinstance(found.body.get("spec"), Mapping) else {}
        assert isinstance(spec, Mapping)
        sources: list[Any] = (
            spec["sources"] if isinstance(spec.get("sources"), list) else [spec.get("source")]
        )
        chart: dict[str, str] = {}
        for source in sources:
            path = _dig(source, "path")
            if isinstance(path, str) and _same_repo(_dig(source, "repoURL"), self.repository):
                directory = _repo_path("", path)
                if directory is None:
                    continue
                chart.update(_chart_files(files, directory))
                for values_file in _dig(source, "helm", "valueFiles") or []:
                    if isinstance(values_file, str):
                        _read_values(files, chart, _repo_path(directory, values_file))
        applications = _find_all(manifests, self.application, self.default_namespace)
        copies = [m.body for m in applications[1:]]
        key = _canonical({"sources": sources, "copies": copies, "chart": chart})
        return Projection(
            key,
            True,
            tuple(dict.fromkeys((found.source_file, *chart))),
            self.describe(),
            _units(applications),
        )


def _same_repo(url: object, repository: str) -> bool:
    def norm(text: str) -> str:
        text = text.strip().rstrip("/").removesuffix(".git").lower()
        return text.split("://", 1)[-1].split("@", 1)[-1].replace(":", "/")

    return isinstance(url, str) and bool(repository) and norm(url) == norm(repository)


@dataclass(frozen=True, slots=True)
class ChartDirSubject:
    """The owner renders the Helm chart in ``source_path`` with ``value_files`` (relative
    to the chart, as Argo CD's ``helm.valueFiles``)."""

    source_path: str = ""
    value_files: tuple[str, ...] = field(default_factory=tuple)
    renders: ClassVar[bool] = False  # a chart's templates are not manifests

    def describe(self) -> str:
        return f"chart {self.source_path or '.'}"

    def project(self, manifests: Sequence[Manifest], files: FileReader) -> Projection:
        chart = _chart_files(files, self.source_path)
        for values_file in self.value_files:
            _read_values(files, chart, _repo_path(self.source_path, values_file))
        found = bool(chart)
        return Projection(_canonical({"chart": chart}), found, tuple(chart), self.describe())


ProjectFn = Callable[[Sequence[Manifest], FileReader], Projection]
