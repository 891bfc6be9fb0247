"""Object metadata the controller writes on what it generates: owners and copied labels.

Why it exists: every generated object (``<target>-primary``, ``-primary`` ConfigMaps and
Secrets, ``<hpa>-primary``) is owned by its Canary and carries a filtered copy of the
source's labels and annotations. The filter matters for GitOps: a GitOps tool's
ownership marks copied onto a generated object make that tool adopt it, and then prune
it because it is not in Git. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from canary.model.canary import API_VERSION, Canary

__all__ = [
    "ALWAYS_DROPPED_KEYS",
    "ALWAYS_DROPPED_MARKERS",
    "filter_metadata",
    "is_controlled_by",
    "owner_reference",
]

# Keys containing these never reach a generated object: Flux (kustomize/helm controller
# ownership labels) and Argo CD (tracking-id annotation) would otherwise claim it.
ALWAYS_DROPPED_MARKERS = ("toolkit.fluxcd.io", "argocd.argoproj.io")
# Keys that describe the source object itself, or belong to another controller.
ALWAYS_DROPPED_KEYS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        "deployment.kubernetes.io/revision",
        "deprecated.daemonset.template.generation",
    }
)


def filter_metadata(
    values: Mapping[str, str], include_prefixes: Iterable[str] = ("*",)
) -> dict[str, str]:
    """Labels or annotations to copy: keys starting with one of ``include_prefixes``.

    ``"*"`` (or an empty prefix) includes every key. GitOps ownership keys and keys of
    `ALWAYS_DROPPED_KEYS` are always dropped.
    """
    prefixes = tuple(include_prefixes)
    everything = any(p in ("*", "") for p in prefixes)
    result: dict[str, str] = {}
    for key, value in values.items():
        if key in ALWAYS_DROPPED_KEYS or any(m in key for m in ALWAYS_DROPPED_MARKERS):
            continue
        if everything or any(key.startswith(p) for p in prefixes):
            result[key] = value
    return result


def owner_reference(canary: Canary) -> dict[str, Any]:
    """The controlling owner reference to the Canary (garbage collection on deletion)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "name": canary.name,
        "uid": canary.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("controller"):
            return str(ref.get("uid") or "")
    return None


def is_controlled_by(obj: Mapping[str, Any], canary: Canary) -> bool:
    """True if the object has no controlling owner or is controlled by this Canary."""
    uid = controller_uid(obj)
    return uid is None or not canary.uid or uid == canary.uid
