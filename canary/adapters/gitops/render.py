"""The objects a path of a Git checkout declares, as a GitOps reconciler would apply them.

One function for both users of the question "what does this path make": the GitSource
reconciler (what to apply) and the reverter (what the target looks like at a revision).
A path is walked as :func:`~canary.adapters.gitops.manifests.plan_sources` describes: plain
manifest files are parsed here, kustomization directories are built with real kustomize
(:class:`~canary.adapters.gitops.kustomize.Kustomize`), in the walk's order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from pathlib import Path

from canary.adapters.gitops.kustomize import Build, Kustomize
from canary.adapters.gitops.manifests import (
    LoadedManifests,
    Manifest,
    ManifestError,
    ManifestNote,
    load_files,
    plan_sources,
)

__all__ = ["CONCURRENT_BUILDS", "render_manifests"]

#: kustomize builds of one rendering that run at the same time.
CONCURRENT_BUILDS = 4


async def render_manifests(
    root: Path,
    path: str = "",
    *,
    kustomize: Kustomize,
    strict: bool = True,
    only: Collection[str] | None = None,
) -> LoadedManifests:
    """Every object under ``path`` of the checkout ``root``, with where it came from.

    With ``strict`` (the default) the first problem raises :class:`ManifestError` (a
    :class:`~canary.adapters.gitops.kustomize.KustomizeError` for a failed build, with
    kustomize's message); otherwise problems are collected in ``errors``. ``only`` limits
    the rendering to these units (``kustomize:<dir>``, ``file:<path>``, see
    :func:`~canary.adapters.gitops.subjects.unit_of`): the reverter renders only what makes
    its target, once it knows.
    """
    plan = await asyncio.to_thread(plan_sources, root, path, strict=strict)
    units = [(k, r) for k, r in plan.units if only is None or f"{k}:{r}" in only]
    # Builds run a few at a time (each is one kubectl process); results keep the walk's order.
    gate = asyncio.Semaphore(CONCURRENT_BUILDS)

    async def build(rel: str) -> Build | ManifestError:
        async with gate:
            try:
                return await kustomize.build(plan.root, rel)
            except ManifestError as exc:
                return exc

    builds = {rel: asyncio.ensure_future(build(rel)) for kind, rel in units if kind == "kustomize"}
    files = [rel for kind, rel in units if kind == "file"]
    try:
        loaded_files = await asyncio.to_thread(load_files, plan.root, files, strict=strict)
        outcome = {rel: await task for rel, task in builds.items()}
    finally:
        for task in builds.values():
            task.cancel()  # after a strict failure (or a cancellation), no build goes on alone
    by_file: dict[str, list[Manifest]] = {}
    for manifest in loaded_files[0]:
        by_file.setdefault(manifest.source_file, []).append(manifest)
    manifests: list[Manifest] = []
    notes: list[ManifestNote] = [*plan.notes, *loaded_files[1]]
    errors: list[ManifestError] = [*plan.errors, *loaded_files[2]]
    for kind, rel in units:
        if kind == "file":
            manifests.extend(by_file.get(rel, ()))
            continue
        result = outcome[rel]
        if isinstance(result, ManifestError):
            if strict:
                raise result
            errors.append(result)
            continue
        notes.extend(ManifestNote(rel, None, warning) for warning in result.warnings)
        manifests.extend(
            Manifest(obj.body, obj.origin, 0, rendered_by=rel) for obj in result.objects
        )
    return LoadedManifests(
        tuple(manifests),
        tuple(notes),
        plan.files,
        tuple(errors),
        plan.kustomizations,
    )
