"""The workload adapter: observes the target and primary, and executes workload actions.

Why it exists: the core decides with facts ("the target's revision is X, it is not
ready because ...") and asks for absolute actions ("the primary exists", "the target
has zero replicas", "the primary runs the target's template"). This module is the
bridge for Deployments and DaemonSets: it reads the objects through the `Kube` port,
turns them into `TargetObservation`/`PrimaryObservation`, and carries out
`EnsurePrimary`, `Promote`, `ScaleTarget`, `ReconcilePrimaryScaler`,
`PauseTargetScaler` and `Finalize`.

Every action is absolute and idempotent — it reads the current state and changes only
what differs — so the controller can repeat any of them after a crash (design
principle 2). All decisions about *what* the objects should look like are pure
functions in `canary.adapters.primary`, `canary.adapters.configtracker` and
`canary.adapters.readiness`; here are only reads, writes and conflict retries.
The controller writes Events and the Canary's status, never this module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from canary.adapters.configtracker import (
    ConfigRef,
    config_checksum,
    config_refs,
    is_tracked,
    primary_config,
    primary_config_name,
)
from canary.adapters.metadata import is_controlled_by
from canary.adapters.primary import (
    DEFAULT_SELECTOR_LABELS,
    SCALE_TO_ZERO_KEY,
    SCALE_TO_ZERO_KEYS,
    hpa_differs,
    images,
    primary_daemonset,
    primary_deployment,
    primary_hpa,
    primary_name,
    promoted_primary,
    revision_id,
    scale_up_replicas,
    selector_error,
    selector_label,
    template_hash,
)
from canary.adapters.readiness import readiness
from canary.adapters.scalers import ScaledObjects, is_scaled_object, scaling_bounds
from canary.core.actions import ScaleMode
from canary.core.observations import PrimaryObservation, TargetObservation
from canary.errors import CanaryError
from canary.model.canary import API_VERSION, FLAGGER_API_VERSION, Canary
from canary.ports import AlreadyExists, Conflict, Kube, NotFound, Obj
from canary.settings import Settings

__all__ = ["KubeWorkloads", "WorkloadError", "WorkloadOptions", "WorkloadSnapshot"]

SUPPORTED_KINDS = ("Deployment", "DaemonSet")
DEFAULT_HPA_API_VERSION = "autoscaling/v2"


class WorkloadError(CanaryError):
    """A workload action cannot be carried out as things are (missing target, no selector
    label, a missing mandatory ConfigMap/Secret, a foreign primary...). The message is
    written for a Warning Event; retrying later may succeed once the user fixes it."""


@dataclass(frozen=True, slots=True)
class WorkloadOptions:
    """Controller-wide settings (Flagger's flags ``-selector-labels``,
    ``-include-label-prefix``, ``-enable-config-tracking``)."""

    selector_labels: tuple[str, ...] = DEFAULT_SELECTOR_LABELS
    include_label_prefixes: tuple[str, ...] = ("*",)
    config_tracking: bool = True
    conflict_retries: int = 5

    @classmethod
    def of(cls, settings: Settings) -> WorkloadOptions:
        """The options `canary run`'s settings give (the operator and the test kit alike)."""
        return cls(
            selector_labels=settings.selector_labels,
            include_label_prefixes=settings.include_label_prefixes,
            config_tracking=settings.config_tracking,
        )


@dataclass(frozen=True, slots=True)
class WorkloadSnapshot:
    """What `KubeWorkloads.observe_details` saw: the observations and the problems that do
    not fit in them (a mandatory ConfigMap/Secret that does not exist)."""

    target: TargetObservation | None
    primary: PrimaryObservation | None
    config_errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Config:
    ref: ConfigRef
    obj: Obj


class KubeWorkloads:
    """Deployment and DaemonSet targets, through the `Kube` port."""

    def __init__(self, kube: Kube, options: WorkloadOptions | None = None) -> None:
        self.kube = kube
        self.options = options or WorkloadOptions()
        #: The target's template hash by (namespace, name), kept with the resourceVersion it
        #: was computed from: an idle pass observes an unchanged target, and hashing its
        #: canonical JSON again was a fifth of observing it.
        self._hashes: dict[tuple[str, str], tuple[str, str]] = {}
        self.scaled_objects = ScaledObjects(
            kube,
            error=WorkloadError,
            check_owner=self._check_owner,
            include_label_prefixes=self.options.include_label_prefixes,
            conflict_retries=self.options.conflict_retries,
        )

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _kind(canary: Canary) -> str:
        kind = canary.spec.target_ref.kind or "Deployment"
        if kind not in SUPPORTED_KINDS:
            raise WorkloadError(f"targetRef kind {kind} is not supported (Deployment or DaemonSet)")
        return kind

    @staticmethod
    def _api_version(canary: Canary) -> str:
        return canary.spec.target_ref.api_version or "apps/v1"

    def _describe(self, canary: Canary, name: str | None = None) -> str:
        return f"{self._kind(canary)} {name or canary.spec.target_ref.name}.{canary.namespace}"

    async def _get_target(self, canary: Canary) -> Obj | None:
        return await self.kube.get(
            self._api_version(canary),
            self._kind(canary),
            canary.spec.target_ref.name,
            canary.namespace,
        )

    async def _get_primary(self, canary: Canary) -> Obj | None:
        return await self.kube.get(
            self._api_version(canary),
            self._kind(canary),
            primary_name(canary.spec.target_ref.name),
            canary.namespace,
        )

    async def _read(self, canary: Canary, name: str) -> Mapping[str, Any] | None:
        return await self.kube.read(
            self._api_version(canary), self._kind(canary), name, canary.namespace
        )

    def _template_hash(self, canary: Canary, target: Mapping[str, Any]) -> str:
        version = (target.get("metadata") or {}).get("resourceVersion") or ""
        key = (canary.namespace, canary.spec.target_ref.name)
        held = self._hashes.get(key)
        if held is not None and version and held[0] == version:
            return held[1]
        digest = template_hash((target.get("spec") or {}).get("template") or {})
        self._hashes[key] = (version, digest)
        return digest

    async def _require_target(self, canary: Canary) -> Obj:
        target = await self._get_target(canary)
        if target is None:
            raise WorkloadError(f"{self._describe(canary)} not found")
        return target

    def _label(self, target: Obj) -> tuple[str, str]:
        found = selector_label(target, self.options.selector_labels)
        if found is None:
            raise WorkloadError(selector_error(target, self.options.selector_labels))
        return found

    async def _target_configs(
        self, canary: Canary, target: Mapping[str, Any]
    ) -> tuple[list[_Config], list[str]]:
        """The tracked configs of the target (fetched) and the errors for missing ones."""
        if not self.options.config_tracking:
            return [], []
        pod_spec = ((target.get("spec") or {}).get("template") or {}).get("spec") or {}
        refs = sorted(config_refs(pod_spec))

        async def fetch(ref: ConfigRef) -> Obj | None:
            return await self.kube.get("v1", ref.api_kind, ref.name, canary.namespace)

        objs = await asyncio.gather(*(fetch(ref) for ref in refs))
        found: list[_Config] = []
        errors: list[str] = []
        for ref, obj in zip(refs, objs, strict=True):
            if obj is None:
                if not ref.optional:
                    errors.append(
                        f"{ref.api_kind} {ref.name}.{canary.namespace} not found "
                        f"(referenced by {self._describe(canary)})"
                    )
                continue
            obj.setdefault("kind", ref.api_kind)
            if is_tracked(obj):
                found.append(_Config(ref, obj))
        return found, errors

    async def _strict_configs(self, canary: Canary, target: Obj) -> list[_Config]:
        configs, errors = await self._target_configs(canary, target)
        if errors:
            raise WorkloadError("; ".join(errors))
        return configs

    @staticmethod
    def _checksums(configs: list[_Config]) -> dict[str, str]:
        return {c.ref.key: config_checksum(c.obj) for c in configs}

    def _revision(self, target: Obj, configs: list[_Config]) -> str:
        template = (target.get("spec") or {}).get("template") or {}
        return revision_id(template_hash(template), self._checksums(configs))

    # ------------------------------------------------------------------ observe

    async def observe(
        self, canary: Canary, *, now: datetime | None = None, since: datetime | None = None
    ) -> tuple[TargetObservation | None, PrimaryObservation | None]:
        """The target (None if missing) and the primary (None if not created yet).

        ``now`` is the tick's time (readiness deadlines); ``since`` is when the current
        rollout began, used only for DaemonSets, which have no progress conditions.
        """
        snapshot = await self.observe_details(canary, now=now, since=since)
        return snapshot.target, snapshot.primary

    async def observe_details(
        self, canary: Canary, *, now: datetime | None = None, since: datetime | None = None
    ) -> WorkloadSnapshot:
        """`observe`, plus the config errors (missing mandatory ConfigMaps/Secrets are left
        out of ``tracked_configs`` and reported here, so a run is never stuck on them)."""
        now = now or datetime.now(UTC)
        analysis = canary.spec.analysis_or_default
        deadline = canary.spec.progress_deadline_seconds
        # Read, not owned (`Kube.read`): observing only looks, and an idle pass observes.
        target, primary = await asyncio.gather(
            self._read(canary, canary.spec.target_ref.name),
            self._read(canary, primary_name(canary.spec.target_ref.name)),
        )

        primary_obs = None
        if primary is not None:
            primary_obs = PrimaryObservation(
                readiness=readiness(
                    primary, analysis.primary_ready_threshold, deadline, now, since
                ),
                images=images(primary),
            )
        if target is None:
            return WorkloadSnapshot(None, primary_obs)

        configs, errors = await self._target_configs(canary, target)
        target_obs = TargetObservation(
            template_hash=self._template_hash(canary, target),
            readiness=readiness(target, analysis.canary_ready_threshold, deadline, now, since),
            tracked_configs=self._checksums(configs),
            images=images(target),
            selector_error=selector_error(target, self.options.selector_labels),
        )
        return WorkloadSnapshot(target_obs, primary_obs, tuple(errors))

    async def tracked_configs(self, canary: Canary) -> dict[str, str]:
        """``status.trackedConfigs`` for the target as it is now (empty if it is missing)."""
        target = await self._get_target(canary)
        if target is None:
            return {}
        configs, _ = await self._target_configs(canary, target)
        return self._checksums(configs)

    # ------------------------------------------------------------------ primary

    async def ensure_primary(self, canary: Canary) -> None:
        """Create ``<target>-primary`` and the ``-primary`` configs if the primary is missing.

        An existing primary is left alone (promotion updates it), unless another
        controller owns it: then two canaries fight over one target.
        """
        target = await self._require_target(canary)
        label, value = self._label(target)
        primary = await self._get_primary(canary)
        if primary is not None:
            self._check_owner(canary, primary)
            return
        configs = await self._strict_configs(canary, target)
        await self._sync_primary_configs(canary, configs)
        await self._create_primary(canary, target, label, value, configs)

    def _check_owner(self, canary: Canary, obj: Obj) -> None:
        if not is_controlled_by(obj, canary):
            name = (obj.get("metadata") or {}).get("name")
            raise WorkloadError(
                f"{obj.get('kind')} {name}.{canary.namespace} is controlled by another owner; "
                f"is another Canary targeting {canary.spec.target_ref.name}?"
            )

    async def _create_primary(
        self, canary: Canary, target: Obj, label: str, value: str, configs: list[_Config]
    ) -> None:
        build = primary_daemonset if self._kind(canary) == "DaemonSet" else primary_deployment
        obj = build(
            target,
            canary,
            label=label,
            label_value=value,
            revision=self._revision(target, configs),
            renamed=[c.ref for c in configs],
            include_label_prefixes=self.options.include_label_prefixes,
        )
        try:
            await self.kube.create(obj)
        except AlreadyExists:
            pass  # created concurrently; promotion will bring it up to date

    async def promote(self, canary: Canary) -> None:
        """Make the primary run the target's template (and current configs).

        Syncs the ``-primary`` ConfigMaps/Secrets first, then replaces the primary with a
        `promoted_primary` copy; a stale read (Conflict) is retried on a fresh read. When
        nothing differs nothing is written, so repeating a promotion restarts no pods.
        """
        target = await self._require_target(canary)
        label, value = self._label(target)
        configs = await self._strict_configs(canary, target)
        await self._sync_primary_configs(canary, configs)
        revision = self._revision(target, configs)
        copy_replicas = canary.spec.autoscaler_ref is None
        for _ in range(max(1, self.options.conflict_retries)):
            primary = await self._get_primary(canary)
            if primary is None:
                await self._create_primary(canary, target, label, value, configs)
                return
            self._check_owner(canary, primary)
            desired = promoted_primary(
                primary,
                target,
                label=label,
                label_value=value,
                revision=revision,
                renamed=[c.ref for c in configs],
                copy_replicas=copy_replicas,
                include_label_prefixes=self.options.include_label_prefixes,
            )
            if _same_workload(primary, desired):
                return
            try:
                await self.kube.replace(desired)
                return
            except Conflict:
                target = await self._require_target(canary)
                continue
        raise WorkloadError(
            f"promoting {self._describe(canary)}: the primary kept changing "
            f"({self.options.conflict_retries} conflicts)"
        )

    async def _sync_primary_configs(self, canary: Canary, configs: list[_Config]) -> None:
        await asyncio.gather(*(self._sync_primary_config(canary, c) for c in configs))

    async def _sync_primary_config(self, canary: Canary, config: _Config) -> None:
        desired = primary_config(config.obj, canary, self.options.include_label_prefixes)
        kind = str(desired["kind"])
        name = primary_config_name(config.ref.name)
        for _ in range(max(1, self.options.conflict_retries)):
            existing = await self.kube.get("v1", kind, name, canary.namespace)
            if existing is None:
                try:
                    await self.kube.create(desired)
                    return
                except AlreadyExists:
                    continue
            self._check_owner(canary, existing)
            if not _config_differs(existing, desired):
                return
            if existing.get("immutable") or (existing.get("type") or "") != (
                desired.get("type") or ""
            ):
                # Immutable data and a Secret's type cannot change in place.
                await self.kube.delete("v1", kind, name, canary.namespace)
                continue
            updated = {**desired, "metadata": {**desired["metadata"], **_identity(existing)}}
            try:
                await self.kube.replace(updated)
                return
            except (Conflict, NotFound):
                continue
        raise WorkloadError(f"{kind} {name}.{canary.namespace} kept changing while being synced")

    # ------------------------------------------------------------------ scaling

    async def scale_target(self, canary: Canary, mode: ScaleMode) -> None:
        """Zero: no target pods (Deployment replicas 0; DaemonSet node selector
        ``canary.gitops.dev/scale-to-zero: "true"``). Up: Flagger's ScaleFromZero rules."""
        target = await self._get_target(canary)
        if target is None:
            if mode is ScaleMode.ZERO:
                return  # nothing runs: the action's goal holds
            raise WorkloadError(f"{self._describe(canary)} not found")
        if self._kind(canary) == "DaemonSet":
            await self._scale_daemonset(canary, target, mode)
            return
        replicas = (target.get("spec") or {}).get("replicas")
        if mode is ScaleMode.ZERO:
            if replicas != 0:
                await self._set_replicas(canary, 0)
            return
        if isinstance(replicas, int) and replicas > 0:
            return
        primary, hpa = await asyncio.gather(self._get_primary(canary), self._get_target_hpa(canary))
        await self._set_replicas(canary, scale_up_replicas(target, primary, hpa))

    async def _set_replicas(self, canary: Canary, replicas: int) -> None:
        await self.kube.patch(
            self._api_version(canary),
            self._kind(canary),
            canary.spec.target_ref.name,
            canary.namespace,
            {"spec": {"replicas": replicas}},
        )

    async def _scale_daemonset(self, canary: Canary, target: Obj, mode: ScaleMode) -> None:
        pod_spec = ((target.get("spec") or {}).get("template") or {}).get("spec") or {}
        selector = pod_spec.get("nodeSelector") or {}
        if mode is ScaleMode.ZERO:
            if selector.get(SCALE_TO_ZERO_KEY) == "true":
                return
            change: dict[str, Any] = {SCALE_TO_ZERO_KEY: "true"}
        else:
            present = [k for k in SCALE_TO_ZERO_KEYS if k in selector]
            if not present:
                return
            change = dict.fromkeys(present)  # null removes the key (merge patch)
        await self.kube.patch(
            self._api_version(canary),
            "DaemonSet",
            canary.spec.target_ref.name,
            canary.namespace,
            {"spec": {"template": {"spec": {"nodeSelector": change}}}},
        )

    async def _get_target_hpa(self, canary: Canary) -> Obj | None:
        ref = canary.spec.autoscaler_ref
        if ref is None:
            return None
        if is_scaled_object(ref):
            scaled_object = await self.scaled_objects.get_target(canary)
            return None if scaled_object is None else scaling_bounds(scaled_object)
        # Read through autoscaling/v2 whatever apiVersion the Canary names (v2beta2 is no
        # longer served since Kubernetes 1.26; all versions share the same objects).
        return await self.kube.get(
            DEFAULT_HPA_API_VERSION,
            "HorizontalPodAutoscaler",
            ref.name,
            canary.namespace,
        )

    async def reconcile_primary_scaler(self, canary: Canary, init: bool) -> None:
        """Create ``<hpa>-primary`` (a copy of the target's HPA aimed at the primary) if it
        is missing; outside initialization also bring its spec up to date."""
        ref = canary.spec.autoscaler_ref
        if ref is None:
            return
        if is_scaled_object(ref):
            await self.scaled_objects.reconcile_primary(canary, init)
            return
        if ref.kind != "HorizontalPodAutoscaler":
            raise WorkloadError(f"autoscalerRef kind {ref.kind} is not supported")
        source = await self._get_target_hpa(canary)
        if source is None:
            raise WorkloadError(f"HorizontalPodAutoscaler {ref.name}.{canary.namespace} not found")
        desired = primary_hpa(
            source, canary, ref, include_label_prefixes=self.options.include_label_prefixes
        )
        name = desired["metadata"]["name"]
        for _ in range(max(1, self.options.conflict_retries)):
            existing = await self.kube.get(
                DEFAULT_HPA_API_VERSION, "HorizontalPodAutoscaler", name, canary.namespace
            )
            if existing is None:
                try:
                    await self.kube.create(desired)
                    return
                except AlreadyExists:
                    continue
            self._check_owner(canary, existing)
            if init or not hpa_differs(existing, desired):
                return
            updated = {
                **existing,
                "apiVersion": DEFAULT_HPA_API_VERSION,
                "kind": "HorizontalPodAutoscaler",
                "spec": desired["spec"],
            }
            try:
                await self.kube.replace(updated)
                return
            except Conflict:
                continue
        raise WorkloadError(f"HorizontalPodAutoscaler {name}.{canary.namespace} kept changing")

    async def pause_target_scaler(self, canary: Canary, paused: bool) -> None:
        """Nothing to do for an HPA: it leaves a workload at zero replicas alone (as Flagger).
        A KEDA ScaledObject is paused at zero replicas with an annotation (`scalers`)."""
        if is_scaled_object(canary.spec.autoscaler_ref):
            await self.scaled_objects.pause_target(canary, paused)

    async def finalize(self, canary: Canary) -> None:
        """``revertOnDeletion``: give the target its pods back — the primary's replica count,
        or the scale-up rules if there is no primary; a DaemonSet loses its zero selector."""
        if is_scaled_object(canary.spec.autoscaler_ref):  # else KEDA holds the target at 0
            await self.scaled_objects.pause_target(canary, False, missing_ok=True)
        target = await self._get_target(canary)
        if target is None:
            return
        if self._kind(canary) == "DaemonSet":
            await self._scale_daemonset(canary, target, ScaleMode.UP)
            return
        primary = await self._get_primary(canary)
        if primary is None:
            await self.scale_target(canary, ScaleMode.UP)
            return
        wanted = (primary.get("spec") or {}).get("replicas")
        wanted = wanted if isinstance(wanted, int) else 1
        if (target.get("spec") or {}).get("replicas") != wanted:
            await self._set_replicas(canary, wanted)

    # ------------------------------------------------------------------ conflicts

    async def find_conflicting_canaries(self, canary: Canary) -> list[str]:
        """Other Canaries in the namespace with the same target (ours, and Flagger's when its
        API is served, reported as ``flagger.app/<name>``). Sorted."""
        return await conflicting_canaries(self.kube, canary, self._kind(canary))


async def conflicting_canaries(
    kube: Kube, canary: Canary, kind: str, api_group: str | None = None
) -> list[str]:
    """The other Canaries of the namespace whose target has this kind and name (and, when
    ``api_group`` is given, API group: a Knative Service is not a core Service)."""
    name = canary.spec.target_ref.name
    found: list[str] = []
    for api_version, prefix in ((API_VERSION, ""), (FLAGGER_API_VERSION, "flagger.app/")):
        try:
            items = await kube.read_list(api_version, "Canary", canary.namespace)
        except NotFound:
            continue  # that API is not installed
        for item in items:
            item_name = str((item.get("metadata") or {}).get("name", ""))
            if not prefix and item_name == canary.name:
                continue
            ref = (item.get("spec") or {}).get("targetRef") or {}
            if ref.get("name") != name or (ref.get("kind") or "Deployment") != kind:
                continue
            group = str(ref.get("apiVersion") or "").rpartition("/")[0]
            if api_group is None or group == api_group:
                found.append(prefix + item_name)
    return sorted(found)


def _identity(existing: Mapping[str, Any]) -> dict[str, Any]:
    meta = existing.get("metadata") or {}
    return {k: meta[k] for k in ("resourceVersion", "uid") if k in meta}


def _config_differs(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    for field in ("data", "binaryData", "type", "immutable"):
        if (existing.get(field) or None) != (desired.get(field) or None):
            return True
    old = existing.get("metadata") or {}
    new = desired.get("metadata") or {}
    return (old.get("labels") or {}) != (new.get("labels") or {}) or [
        (r.get("uid"), bool(r.get("controller"))) for r in old.get("ownerReferences") or ()
    ] != [(r.get("uid"), bool(r.get("controller"))) for r in new.get("ownerReferences") or ()]


def _same_workload(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    cmeta = current.get("metadata") or {}
    dmeta = desired.get("metadata") or {}
    return (
        current.get("spec") == desired.get("spec")
        and (cmeta.get("labels") or {}) == (dmeta.get("labels") or {})
        and (cmeta.get("annotations") or {}) == (dmeta.get("annotations") or {})
    )
