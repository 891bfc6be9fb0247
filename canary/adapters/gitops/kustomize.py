"""Real kustomize: ``kubectl kustomize`` on a directory of a Git snapshot.

Why the real tool and not a reimplementation: kustomize's semantics (``images:``, strategic
merge and JSON 6902 patches, components, name prefixes and suffixes, labels, generators with
content hashes, replacements, overlays of overlays) are large and keep evolving; any
imitation would apply something other than what Flux's kustomize-controller or Argo CD
apply, which is exactly the bug this module exists to avoid. ``kubectl`` carries kustomize
(v5 in every kubectl since 1.27), ``./dev`` installs it, and a build takes about 0.1 s of
one process.

How a build runs:

* A small wrapper kustomization is written next to the tree (a hidden directory inside the
  snapshot) with ``resources: [../<dir>]`` and ``buildMetadata: [originAnnotations]``, so
  every rendered object says which file (or which generator in which kustomization.yaml) it
  came from. The annotation is removed from the objects before they are returned; the
  origin is kept as :attr:`RenderedObject.origin`.
* kustomize runs with its default load restrictor (``LoadRestrictionsRootOnly``): a
  kustomization may read files only below its own directory, while ``resources`` and
  ``components`` may point at other kustomization directories (``../../base``). This keeps a
  commit from reading the controller's own files (its service account token, say) into a
  ConfigMap. Flux relaxes this inside the repository; see docs/gitops.md.
* The child process gets a fixed environment (``PATH`` and a private ``HOME``), a time limit,
  and is killed with its process group when the limit expires or the pass is cancelled
  (:mod:`canary.adapters.process`).

Errors come back as :class:`KustomizeError` with kustomize's own message, cleaned of klog
prefixes and of the snapshot's absolute path, so that it reads with repository-relative
paths in a condition or an Event.
"""

from __future__ import annotations

import asyncio
import json
import os
import posixpath
import re
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from canary.adapters.gitops.manifests import ManifestError, ManifestLoader
from canary.adapters.process import ProcessNotFound, ProcessTimeout, run_process

__all__ = [
    "KUSTOMIZATION_NAMES",
    "Build",
    "Kustomize",
    "KustomizeError",
    "RenderedObject",
]

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
_WRAPPER_PREFIX = ".canary-engine-build-"
_KLOG = re.compile(r'^[EWI]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] "command failed" err=', re.M)


class KustomizeError(ManifestError):
    """kustomize refused to build a directory. ``file`` is the kustomization file."""


@dataclass(frozen=True, slots=True)
class RenderedObject:
    """One object of a build and where it came from (repository-relative): ``origin`` is
    the manifest file, or the kustomization.yaml whose generator made it."""

    body: Mapping[str, Any]
    origin: str


@dataclass(frozen=True, slots=True)
class Build:
    """The objects of one build, in kustomize's order, and kustomize's warnings."""

    objects: tuple[RenderedObject, ...]
    warnings: tuple[str, ...] = ()


class Kustomize:
    """Builds kustomizations with ``kubectl kustomize`` (or a standalone ``kustomize``)."""

    def __init__(self, binary: str = "kubectl", *, timeout: float = 60.0) -> None:
        self.binary = binary
        self.timeout = timeout
        self._version: str | None = None
        self._version_lock = asyncio.Lock()

    def _argv(self, directory: Path) -> list[str]:
        if Path(self.binary).name.startswith("kustomize"):
            return [self.binary, "build", str(directory)]
        return [self.binary, "kustomize", str(directory)]

    def _environment(self, home: Path) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home)}
        # Remote bases are fetched by git: never prompt, never read the user's config.
        env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"})
        for key in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy"):
            if key in os.environ:
                env[key] = os.environ[key]
        return env

    async def version(self) -> str:
        """kustomize's version (``v5.5.0``), asked once per process; ``unknown`` if the
        binary does not say."""
        async with self._version_lock:
            if self._version is None:
                self._version = await self._ask_version()
            return self._version

    async def _ask_version(self) -> str:
        standalone = Path(self.binary).name.startswith("kustomize")
        argv = (
            [self.binary, "version"]
            if standalone
            else [self.binary, "version", "--client", "-o", "json"]
        )
        try:
            out = await run_process(
                argv, env={"PATH": os.environ.get("PATH", os.defpath)}, time_limit=self.timeout
            )
        except (ProcessTimeout, ProcessNotFound):
            return "unknown"
        text = out.stdout.decode("utf-8", errors="replace").strip()
        if standalone:
            return text.splitlines()[0] if text else "unknown"
        try:
            return str(json.loads(text).get("kustomizeVersion") or "unknown")
        except (ValueError, AttributeError):
            return "unknown"

    async def build(self, root: Path, directory: str) -> Build:
        """Build the kustomization in ``directory`` (relative to ``root``, the checkout).

        Raises :class:`KustomizeError` naming the kustomization file with kustomize's message.
        """
        clean = directory.strip("/") or "."
        root, kfile, wrapper = await asyncio.to_thread(_prepare, Path(root), clean)
        try:
            out = await run_process(
                self._argv(wrapper),
                env=self._environment(wrapper),
                time_limit=self.timeout,
                cwd=root,
            )
        except ProcessTimeout as exc:
            raise KustomizeError(kfile, None, f"kustomize build {exc}") from None
        except ProcessNotFound:
            raise KustomizeError(
                kfile,
                None,
                f"cannot run {self.binary!r} to build the kustomization; install kubectl "
                "(it includes kustomize) on the controller's PATH",
            ) from None
        finally:
            await asyncio.to_thread(shutil.rmtree, wrapper, True)
        if out.returncode != 0:
            message = clean_message(out.stderr.decode("utf-8", errors="replace"), root, wrapper)
            raise KustomizeError(kfile, None, f"kustomize build failed: {message}")
        stderr = out.stderr.decode("utf-8", errors="replace")
        return Build(
            _parse(out.stdout, kfile, wrapper_rel=wrapper.name),
            tuple(warnings_of(stderr)),
        )


def _prepare(root: Path, clean: str) -> tuple[Path, str, Path]:
    """Resolve the checkout, name the kustomization file, write the wrapper next to it."""
    root = root.resolve()
    names = [n for n in KUSTOMIZATION_NAMES if (root / clean / n).is_file()]
    name = names[0] if names else "kustomization.yaml"
    kfile = name if clean == "." else f"{clean}/{name}"
    wrapper = root / f"{_WRAPPER_PREFIX}{secrets.token_hex(6)}"
    target = "../" + ("" if clean == "." else clean)
    _write_wrapper(wrapper, target.rstrip("/") or "..")
    return root, kfile, wrapper


def _write_wrapper(wrapper: Path, target: str) -> None:
    wrapper.mkdir()
    (wrapper / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources:\n  - {json.dumps(target)}\n"
        "buildMetadata: [originAnnotations]\n",
        encoding="utf-8",
    )


def clean_message(stderr: str, root: Path, wrapper: Path) -> str:
    """kustomize's error without klog's prefix, warnings, or the snapshot's absolute path."""
    lines = [
        line for line in stderr.splitlines() if line.strip() and not line.startswith("# Warning:")
    ]
    text = "\n".join(lines)
    match = _KLOG.search(text)
    if match:
        text = text[match.end() :]
        if text.startswith("<"):
            text = text[1:].rsplit(">", 1)[0]
        elif text.startswith('"'):
            try:
                text = json.loads(text.strip().splitlines()[0])
            except ValueError:
                text = text.strip('"')
    text = text.replace(f"{wrapper}/", "").replace(str(wrapper), ".")
    text = text.replace(f"{root}/", "").replace(str(root), ".")
    # Paths outside the checkout: relative to it too (never the controller's own layout).
    top = f"/{root.parts[1]}/" if len(root.parts) > 1 else "/"
    text = re.sub(
        rf"{re.escape(top)}[^\s'\":]*",
        lambda m: os.path.relpath(m.group(0), root),
        text,
    )
    text = " ".join(text.split())
    text = text.removeprefix("Error: ")
    return text[:2000] or "no message"


def warnings_of(stderr: str) -> list[str]:
    return [
        line.removeprefix("# Warning:").strip()
        for line in stderr.splitlines()
        if line.startswith("# Warning:")
    ]


def _origin(annotations: dict[str, Any], wrapper_rel: str, fallback: str) -> str:
    raw = annotations.pop(ORIGIN_ANNOTATION, None)
    if not isinstance(raw, str):
        return fallback
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError:
        return fallback
    if not isinstance(data, Mapping):
        return fallback
    if data.get("repo"):
        return f"{data['repo']}//{data.get('path', '')}".rstrip("/")
    where = data.get("path") or data.get("configuredIn")
    if not isinstance(where, str) or not where:
        return fallback
    joined = posixpath.normpath(posixpath.join(wrapper_rel, where))
    return joined.removeprefix("./")


def _parse(stdout: bytes, kfile: str, *, wrapper_rel: str) -> tuple[RenderedObject, ...]:
    try:
        documents = list(yaml.load_all(stdout.decode("utf-8"), Loader=ManifestLoader))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise KustomizeError(kfile, None, f"kustomize printed invalid YAML: {exc}") from None
    found: list[RenderedObject] = []
    for doc in documents:
        if not isinstance(doc, dict):
            continue
        meta = doc.get("metadata")
        origin = kfile
        if isinstance(meta, dict):
            annotations = meta.get("annotations")
            if isinstance(annotations, dict):
                origin = _origin(annotations, wrapper_rel, kfile)
                if not annotations:
                    del meta["annotations"]
        found.append(RenderedObject(doc, origin))
    return tuple(found)
