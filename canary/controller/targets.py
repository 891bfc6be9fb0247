"""Wake a Canary's job when its target gets a new release, not at its next interval.

``kubectl set image deployment/podinfo ...`` changes the target, not the Canary, so the
controller used to notice it at the Canary's next scheduled pass, up to one analysis interval
later (and ``kubectl wait --for=condition=Promoted`` returned at once, on the previous
release's ``True``). :class:`TargetWatch` hears the events of the Deployment and DaemonSet
informers the watch caches run anyway for the passes (``CachedKube.listen(..., start=False)``:
it starts none of its own) and wakes the jobs of the Canaries whose target has a new pod
template. The woken pass sees the new revision and starts the run (``Promoted`` turns
``Unknown``); the analysis steps still come at the Canary's scheduled passes.

* An index target → Canary names, kept from the Canaries' events (created, ``spec.targetRef``
  edited, deleted). A target is (kind, namespace, name): a Deployment or a DaemonSet in the
  Canary's namespace. Workloads no Canary targets cost one dictionary lookup per event.
* Per indexed target, the last ``metadata.generation`` seen and the revision it had (the
  `template_hash` of its pod template, as the pass computes it). An event of the same
  generation (a status update: most of a workload's events) costs two lookups. A new
  generation hashes the pod template, and wakes only when the revision changed: scaling (an
  autoscaler, ``kubectl scale``, the controller's own scaling of the target and the
  DaemonSet's scale-to-zero node selector) is a new generation, not a new release.
* The first sighting of a target (the informer's first listing, a Canary created for a
  workload not seen yet) records it and wakes nothing: the Canary's own pass reads it.

No API call: the events come from the caches and the index is in memory (about 0.6 KB per
Canary). The work per event does not grow with the number of Canaries or workloads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from canary.adapters.primary import template_hash

__all__ = ["TARGET_API_VERSION", "TARGET_KINDS", "TargetKey", "TargetWatch", "target_of"]

log = logging.getLogger("canary.targets")

#: The kinds a Canary targets (`spec.targetRef.kind`, Deployment when empty), and the API
#: version of their informers (the passes read targets as ``apps/v1``).
TARGET_KINDS = ("Deployment", "DaemonSet")
TARGET_API_VERSION = "apps/v1"
#: (kind, namespace, name) of a target.
TargetKey = tuple[str, str, str]
#: The cached object of a target, or None when it is not cached (yet): never an API call.
Peek = Callable[[TargetKey], Mapping[str, Any] | None]


@dataclass(frozen=True, slots=True)
class _Seen:
    generation: object  # None after the target was deleted: its re-creation is a change
    revision: str


def target_of(namespace: str, body: Mapping[str, Any]) -> TargetKey | None:
    """The target of a Canary body, or None when it names none we follow."""
    ref = (body.get("spec") or {}).get("targetRef")
    if not isinstance(ref, Mapping):
        return None
    kind, name = str(ref.get("kind") or "Deployment"), str(ref.get("name") or "")
    if kind not in TARGET_KINDS or not name:
        return None
    return (kind, namespace, name)


def _revision(body: Mapping[str, Any]) -> str:
    return template_hash((body.get("spec") or {}).get("template") or {})


def _names(body: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]]:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or ""), meta


class TargetWatch:
    """Which Canaries target which workloads, and the revision each workload was seen at.

    ``wake(namespace, name)`` wakes a Canary's job (`Scheduler.wake`); ``peek`` reads a target
    from the cache when a Canary starts targeting it, so that its next new generation is told
    apart from a first sighting (optional: without it, the next event is the first sighting).
    """

    def __init__(self, wake: Callable[[str, str], None], peek: Peek | None = None) -> None:
        self._wake = wake
        self._peek = peek
        self._canaries: dict[TargetKey, set[str]] = {}  # target -> Canary names
        self._targets: dict[tuple[str, str], TargetKey] = {}  # (namespace, Canary) -> target
        self._seen: dict[TargetKey, _Seen] = {}

    def canaries(self, target: TargetKey) -> frozenset[str]:
        """The Canaries that target ``target`` (by name, in its namespace)."""
        return frozenset(self._canaries.get(target, ()))

    def __len__(self) -> int:
        """How many targets are indexed."""
        return len(self._canaries)

    # -- what the caches tell ------------------------------------------------------------

    def listener(self, kind: str) -> Callable[[str, Mapping[str, Any]], None]:
        """The cache listener of one target kind (`CachedKube.listen`)."""

        def heard(event: str, body: Mapping[str, Any]) -> None:
            self.target_event(kind, event, body)

        return heard

    def canary_event(self, event: str, body: Mapping[str, Any]) -> None:
        """A Canary was created, changed or deleted: keep the index."""
        namespace, name, _ = _names(body)
        if not namespace or not name:
            return
        target = None if event == "DELETED" else target_of(namespace, body)
        held = self._targets.get((namespace, name))
        if held == target:
            return  # most Canary events: our own status writes
        if held is not None:
            self._unlink(held, name)
            del self._targets[(namespace, name)]
        if target is not None:
            self._link(target, name)
            self._targets[(namespace, name)] = target

    def target_event(self, kind: str, event: str, body: Mapping[str, Any]) -> None:
        """A Deployment or DaemonSet changed: wake the Canaries targeting it when its pod
        template did (a new generation with another revision)."""
        namespace, name, meta = _names(body)
        key = (kind, namespace, name)
        canaries = self._canaries.get(key)
        if canaries is None:
            return  # no Canary targets it
        seen = self._seen.get(key)
        if event == "DELETED":
            if seen is not None:
                self._seen[key] = _Seen(None, seen.revision)
            return
        generation = meta.get("generation")
        if seen is not None and seen.generation == generation:
            return  # a status update
        revision = _revision(body)
        self._seen[key] = _Seen(generation, revision)
        if seen is None or seen.revision == revision:
            return  # first sighting, or scaled: no new release
        log.debug(
            "%s %s/%s has a new pod template (generation %s): waking %s",
            kind,
            namespace,
            name,
            generation,
            ", ".join(sorted(canaries)),
        )
        for canary in sorted(canaries):
            self._wake(namespace, canary)

    # -- the index -----------------------------------------------------------------------

    def _link(self, target: TargetKey, canary: str) -> None:
        self._canaries.setdefault(target, set()).add(canary)
        if target in self._seen or self._peek is None:
            return
        body = self._peek(target)
        if body is not None:
            generation = (body.get("metadata") or {}).get("generation")
            self._seen[target] = _Seen(generation, _revision(body))

    def _unlink(self, target: TargetKey, canary: str) -> None:
        names = self._canaries.get(target)
        if names is None:
            return
        names.discard(canary)
        if not names:
            del self._canaries[target]
            self._seen.pop(target, None)
