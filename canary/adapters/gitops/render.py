"""The objects a path of a Git checkout declares, as a GitOps reconciler would apply them.

One function for both users of the question "what does this path make": the GitSource
reconciler (what to apply) and the reverter (what the target looks like at a revision).
A path is walked as :func:`~canary.adapters.gitops.manifests.plan_sources` describes: plain
manifest files are parsed here, kustomization directories are built with real kustomize
(:class:`~canary.adapters.gitops.kustomize.Kustomize`), in the walk's order.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from canary.adapters.gitops.kustomize import Kustomize
from canary.adapters.gitops.manifests import (
    LoadedManifests,
    Manifest,
    ManifestError,
    ManifestNote,
    load_files,
    plan_sources,
)

__all__ = ["render_manifests"]


async def render_manifests(
    root: Path, path: str = "", *, kustomize: Kustomize, strict: bool = True
) -> LoadedManifests:
    """Every object under ``path`` of the checkout ``root``, with where it came from.

    With ``strict`` (the default) the first problem raises :class:`ManifestError` (a
    :class:`~canary.adapters.gitops.kustomize.KustomizeError` for a failed build, with
    kustomize's message); otherwise problems are collected in ``errors``.
    """
    plan = await asyncio.to_thread(plan_sources, root, path, strict=strict)
    manifests: list[Manifest] = []
    notes: list[ManifestNote] = list(plan.notes)
    errors: list[ManifestError] = list(plan.errors)
    batch: list[str] = []

    async def flush() -> None:
        if batch:
            found, more_notes, more_errors = await asyncio.to_thread(
                load_files, plan.root, list(batch), strict=strict
            )
            manifests.extend(found)
            notes.extend(more_notes)
            errors.extend(more_errors)
            batch.clear()

    for kind, rel in plan.units:
        if kind == "file":
            batch.append(rel)
            continue
        await flush()
        try:
            build = await kustomize.build(plan.root, rel)
        except ManifestError as exc:
            if strict:
                raise
            errors.append(exc)
            continue
        notes.extend(ManifestNote(rel, None, warning) for warning in build.warnings)
        manifests.extend(
            Manifest(obj.body, obj.origin, 0, rendered_by=rel) for obj in build.objects
        )
    await flush()
    return LoadedManifests(
        tuple(manifests),
        tuple(notes),
        plan.files,
        tuple(errors),
        plan.kustomizations,
    )
