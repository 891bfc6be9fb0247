"""Kubernetes manifests read from a directory of a Git checkout.

Both the GitSource reconciler (what to apply) and the reverter (which files hold a Canary's
target) need the same answer to "which objects does this path declare, and where exactly":
every loaded object remembers its repository-relative file and its document number, and every
error names them (``deploy/app.yaml document 2: expected a mapping with apiVersion and kind,
got a list``).

Rules:

* Under a directory, ``*.yaml``, ``*.yml`` and ``*.json`` files are read recursively, in sorted
  order; names starting with a dot (``.git``, ``.github``) are skipped.
* A directory holding ``kustomization.yaml``, ``kustomization.yml`` or ``Kustomization`` is not
  read here: it is listed in :attr:`SourcePlan.kustomizations` and built with real kustomize
  (:mod:`.render`, :mod:`.kustomize`), as Flux and Argo CD build it. Its subdirectories are
  not walked.
* Multi-document files are split; empty documents are skipped silently, mappings without
  ``apiVersion``/``kind`` are skipped with a note, anything else that is not a mapping is an error.
  ``kind: List`` documents are expanded into their items.
* YAML timestamps stay strings (a date in an annotation must not become a ``date`` object).

Nothing here writes, starts a process or talks to the network; callers run it in a worker
thread. :func:`~canary.adapters.gitops.render.render_manifests` puts the two halves together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from canary.errors import CanaryError
from canary.model.schema import KubeLoader

__all__ = [
    "KUSTOMIZATION_NAMES",
    "LoadedManifests",
    "Manifest",
    "ManifestError",
    "ManifestLoader",
    "ManifestNote",
    "ManifestRef",
    "SourcePlan",
    "load_files",
    "plan_sources",
]

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class ManifestLoader(KubeLoader):
    """Safe YAML read as kubectl reads it (:class:`KubeLoader`): a Canary in Git with
    ``alpha: 1e-3`` is applied with the number, not with the string PyYAML's YAML 1.1 rules
    make of it, and a mapping with a duplicate key is refused (naming the key and both
    lines), where applying the last of the two would deploy something nobody reviewed."""


@dataclass(frozen=True, slots=True)
class ManifestRef:
    """An object's identity, in Git and in the cluster (a GitSource's inventory, a revert's
    subject). Equality ignores the API version but not the group, so ``apps/v1`` and
    ``apps/v1beta2`` name the same Deployment (unlike ``canary.model.ObjectRef``, a Canary's
    reference fields as written)."""

    api_version: str = field(compare=False)
    kind: str
    namespace: str | None
    name: str
    group: str = field(init=False)

    def __post_init__(self) -> None:
        group = self.api_version.rsplit("/", 1)[0] if "/" in self.api_version else ""
        object.__setattr__(self, "group", group)

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name} ({self.api_version})"

    def to_dict(self) -> dict[str, str]:
        out = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManifestRef:
        return cls(
            str(data.get("apiVersion", "")),
            str(data.get("kind", "")),
            (str(data["namespace"]) if data.get("namespace") else None),
            str(data.get("name", "")),
        )

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ManifestRef:
        meta = obj.get("metadata") or {}
        return cls(
            str(obj.get("apiVersion", "")),
            str(obj.get("kind", "")),
            (str(meta["namespace"]) if meta.get("namespace") else None),
            str(meta.get("name", "")),
        )


@dataclass(frozen=True, slots=True)
class Manifest:
    """One object from Git. ``body`` is the parsed document; treat it as read-only.

    ``rendered_by`` is the kustomization directory whose build produced the object (None for
    a plain file); ``source_file`` is then the file kustomize says it came from, and
    ``document`` is 0 (kustomize does not say which document)."""

    body: Mapping[str, Any]
    source_file: str
    document: int
    item: int | None = None
    rendered_by: str | None = None

    @property
    def ref(self) -> ManifestRef:
        return ManifestRef.of(self.body)

    @property
    def location(self) -> str:
        if self.rendered_by is not None:
            return f"{self.source_file} (kustomize build {self.rendered_by})"
        where = f"{self.source_file} document {self.document}"
        return where if self.item is None else f"{where} item {self.item}"


@dataclass(frozen=True, slots=True)
class ManifestNote:
    """Something skipped or ignored while loading, worth telling the user about."""

    file: str
    document: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.document is None else f"{self.file} document {self.document}"
        return f"{where}: {self.message}"


class ManifestError(CanaryError, ValueError):
    """A manifest cannot be used. The message names the file and the document number."""

    def __init__(self, file: str, document: int | None, message: str) -> None:
        self.file = file
        self.document = document
        self.message = message
        where = file if document is None else f"{file} document {document}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class LoadedManifests:
    """Objects of a path. ``files`` are the plain files read; ``kustomizations`` the
    directories built with kustomize."""

    manifests: tuple[Manifest, ...]
    notes: tuple[ManifestNote, ...]
    files: tuple[str, ...]
    errors: tuple[ManifestError, ...] = ()
    kustomizations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SourcePlan:
    """What a path holds, in apply order: plain manifest files and kustomization directories
    (repository-relative), plus notes and (when not strict) errors met while walking."""

    root: Path
    units: tuple[tuple[str, str], ...]  # ("file", path) or ("kustomize", directory)
    notes: tuple[ManifestNote, ...]
    errors: tuple[ManifestError, ...]

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(p for kind, p in self.units if kind == "file")

    @property
    def kustomizations(self) -> tuple[str, ...]:
        return tuple(p for kind, p in self.units if kind == "kustomize")


def _describe(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


class _Walker:
    def __init__(self, root: Path, strict: bool) -> None:
        self.root = root.resolve()
        self.strict = strict
        self.notes: list[ManifestNote] = []
        self.errors: list[ManifestError] = []
        self.units: list[tuple[str, str]] = []
        self._seen: set[tuple[str, str]] = set()

    def rel(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    def fail(self, error: ManifestError) -> None:
        if self.strict:
            raise error
        self.errors.append(error)

    def inside(self, path: Path) -> bool:
        try:
            path.resolve().relative_to(self.root)
        except ValueError:
            return False
        return True

    def add(self, kind: str, path: Path) -> None:
        unit = (kind, self.rel(path) or ".")
        if unit not in self._seen:
            self._seen.add(unit)
            self.units.append(unit)

    def collect(self, directory: Path) -> None:
        if any((directory / n).is_file() for n in KUSTOMIZATION_NAMES):
            self.add("kustomize", directory)
            return
        for entry in sorted(directory.iterdir(), key=lambda p: p.name):
            if entry.name.startswith("."):
                continue
            if not self.inside(entry):
                self.notes.append(
                    ManifestNote(
                        self.rel_or_name(entry), None, "link leaves the repository; skipped"
                    )
                )
                continue
            if entry.is_dir():
                self.collect(entry)
            elif entry.is_file() and entry.suffix.lower() in MANIFEST_SUFFIXES:
                self.add("file", entry)

    def rel_or_name(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.name


def _yaml_problem(exc: BaseException) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(problem)


def _documents(path: Path, rel: str) -> Iterator[tuple[int, object]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ManifestError(rel, None, "expected UTF-8 text") from None
    if path.suffix.lower() == ".json":
        try:
            yield 1, json.loads(text) if text.strip() else None
        except json.JSONDecodeError as exc:
            raise ManifestError(
                rel, 1, f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
        return
    number = 0
    stream = yaml.load_all(text, Loader=ManifestLoader)
    while True:
        try:
            doc = next(stream)
        except StopIteration:
            return
        except yaml.YAMLError as exc:
            raise ManifestError(rel, number + 1, f"invalid YAML: {_yaml_problem(exc)}") from None
        number += 1
        yield number, doc


def _check_object(obj: Mapping[str, Any], where: str) -> str | None:
    """Return an error message for an object that has apiVersion and kind, or None."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not api_version.strip():
        return f"{where}apiVersion: expected a non-empty string, got {_describe(api_version)}"
    if not isinstance(kind, str) or not kind.strip():
        return f"{where}kind: expected a non-empty string, got {_describe(kind)}"
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return f"{where}metadata: expected a mapping with a name, got {_describe(meta)}"
    name = meta.get("name")
    if not isinstance(name, str) or not name.strip():
        return f"{where}metadata.name: expected a non-empty string, got {_describe(name)}"
    namespace = meta.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not namespace.strip()):
        return f"{where}metadata.namespace: expected a non-empty string, got {_describe(namespace)}"
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is not None and not isinstance(value, dict):
            return f"{where}metadata.{key}: expected a mapping, got {_describe(value)}"
    return None


def _is_list(doc: Mapping[str, Any]) -> bool:
    """``kind: List`` (or ``<Kind>List`` with items and no name) wraps several objects."""
    kind = doc.get("kind")
    if kind == "List":
        return True
    meta = doc.get("metadata")
    named = isinstance(meta, dict) and bool(meta.get("name"))
    return isinstance(kind, str) and kind.endswith("List") and "items" in doc and not named


def _load_file(walker: _Walker, rel: str) -> list[Manifest]:
    path = walker.root / rel
    found: list[Manifest] = []
    try:
        for number, doc in _documents(path, rel):
            if doc is None:
                continue
            if not isinstance(doc, dict):
                walker.fail(
                    ManifestError(
                        rel,
                        number,
                        f"expected a mapping with apiVersion and kind, got {_describe(doc)}",
                    )
                )
                continue
            if "apiVersion" not in doc or "kind" not in doc:
                if doc:
                    walker.notes.append(
                        ManifestNote(
                            rel, number, "no apiVersion/kind: not a Kubernetes object, skipped"
                        )
                    )
                continue
            if _is_list(doc):
                items = doc.get("items")
                if not isinstance(items, list):
                    walker.fail(
                        ManifestError(
                            rel, number, f"items: expected a list, got {_describe(items)}"
                        )
                    )
                    continue
                for index, item in enumerate(items):
                    if not isinstance(item, dict):
                        walker.fail(
                            ManifestError(
                                rel,
                                number,
                                f"items[{index}]: expected a mapping with apiVersion and kind, "
                                f"got {_describe(item)}",
                            )
                        )
                        continue
                    problem = _check_object(item, f"items[{index}].")
                    if problem:
                        walker.fail(ManifestError(rel, number, problem))
                        continue
                    found.append(Manifest(item, rel, number, index))
                continue
            problem = _check_object(doc, "")
            if problem:
                walker.fail(ManifestError(rel, number, problem))
                continue
            found.append(Manifest(doc, rel, number))
    except ManifestError as exc:
        walker.fail(exc)
    return found


def plan_sources(root: Path, path: str = "", *, strict: bool = True) -> SourcePlan:
    """What ``path`` (a directory or a single file) of the tree ``root`` holds.

    A directory with a kustomization is one kustomize unit; any other directory is walked
    for manifest files, and its subdirectories with a kustomization become kustomize units
    (what Flux does for a path without a kustomization). With ``strict`` (the default) the
    first problem raises :class:`ManifestError`; otherwise problems are collected.
    """
    walker = _Walker(Path(root), strict)
    clean = path.strip().strip("/")
    clean = "" if clean in ("", ".", "./") else clean.removeprefix("./")
    start = walker.root / clean
    shown = clean or "."
    if not walker.inside(start):
        walker.fail(ManifestError(shown, None, "path is outside the repository"))
    elif start.is_dir():
        walker.collect(start)
    elif start.is_file():
        walker.add("file", start)
    else:
        walker.fail(ManifestError(shown, None, "path not found in the repository"))
    return SourcePlan(walker.root, tuple(walker.units), tuple(walker.notes), tuple(walker.errors))


def load_files(
    root: Path, files: Iterable[str], *, strict: bool = True
) -> tuple[tuple[Manifest, ...], tuple[ManifestNote, ...], tuple[ManifestError, ...]]:
    """Parse plain manifest files (repository-relative) of the tree ``root``."""
    walker = _Walker(Path(root), strict)
    manifests: list[Manifest] = []
    for rel in files:
        manifests.extend(_load_file(walker, rel))
    return tuple(manifests), tuple(walker.notes), tuple(walker.errors)
