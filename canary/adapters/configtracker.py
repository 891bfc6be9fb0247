"""ConfigMap and Secret tracking, as pure functions over plain dicts.

Why it exists: a new release is not only a new pod template. Changing a ConfigMap or
Secret that the pods read is a release too, and Flagger treats it as one
(reference/flagger.md 2.14): it finds the objects the target's pod spec refers to,
keeps a checksum of each in ``status.trackedConfigs`` (keys ``configmap/<name>`` and
``secret/<name>``), starts a run when a checksum changes, and gives the primary its own
``<name>-primary`` copies so that editing the original does not touch the running
stable version until promotion.

Everything here is pure: discovery of the references, the filters (opt-out annotation,
Secret types), the checksum, the ``-primary`` copy and the reference rewrite in a pod
spec. `canary.adapters.workloads` does the reads and writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from canary.adapters.metadata import filter_metadata, owner_reference
from canary.jsontree import json_copy
from canary.model.canary import Canary

__all__ = [
    "OPT_OUT_ANNOTATIONS",
    "TRACKED_SECRET_TYPES",
    "ConfigRef",
    "config_checksum",
    "config_refs",
    "go_json",
    "is_tracked",
    "primary_config",
    "primary_config_name",
    "rename_config_refs",
    "tracking_disabled",
]

ConfigKind = Literal["configmap", "secret"]

# Registry credentials and service-account tokens are not application configuration.
TRACKED_SECRET_TYPES = frozenset(
    {"Opaque", "kubernetes.io/basic-auth", "kubernetes.io/ssh-auth", "kubernetes.io/tls"}
)
OPT_OUT_ANNOTATIONS = ("canary.gitops.dev/config-tracking", "flagger.app/config-tracking")


@dataclass(frozen=True, slots=True, order=True)
class ConfigRef:
    """A ConfigMap or Secret the pod spec refers to.

    ``optional`` is True only if *every* reference to the object is optional: one
    mandatory reference makes a missing object an error.
    """

    kind: ConfigKind
    name: str
    optional: bool = False

    @property
    def key(self) -> str:
        """The key in ``status.trackedConfigs``: ``configmap/<name>`` or ``secret/<name>``."""
        return f"{self.kind}/{self.name}"

    @property
    def api_kind(self) -> str:
        return "ConfigMap" if self.kind == "configmap" else "Secret"


# ----------------------------------------------------------------------------- discovery


def _containers(pod_spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for field in ("initContainers", "containers"):
        for container in pod_spec.get(field) or ():
            if isinstance(container, Mapping):
                yield container


#: Where a reference sits, by the kind of place: (field, what it names, field of the name).
_Fields = tuple[tuple[str, ConfigKind, str], ...]
_VOLUME: _Fields = (("configMap", "configmap", "name"), ("secret", "secret", "secretName"))
_PROJECTED: _Fields = (("configMap", "configmap", "name"), ("secret", "secret", "name"))
_ENV: _Fields = (("configMapKeyRef", "configmap", "name"), ("secretKeyRef", "secret", "name"))
_ENV_FROM: _Fields = (("configMapRef", "configmap", "name"), ("secretRef", "secret", "name"))


def _refs_in(place: object, fields: _Fields) -> Iterator[tuple[ConfigKind, Any, str]]:
    if not isinstance(place, Mapping):
        return
    for field, kind, name_key in fields:
        if isinstance(place.get(field), Mapping):
            yield kind, place[field], name_key


def _walk_refs(pod_spec: Mapping[str, Any]) -> Iterator[tuple[ConfigKind, Any, str]]:
    """Every place a pod spec names a ConfigMap or Secret: (kind, holder dict, name key)."""
    for volume in pod_spec.get("volumes") or ():
        yield from _refs_in(volume, _VOLUME)
        projected = volume.get("projected") if isinstance(volume, Mapping) else None
        if isinstance(projected, Mapping):
            for source in projected.get("sources") or ():
                yield from _refs_in(source, _PROJECTED)
    for container in _containers(pod_spec):
        for env in container.get("env") or ():
            yield from _refs_in(env.get("valueFrom") if isinstance(env, Mapping) else None, _ENV)
        for env_from in container.get("envFrom") or ():
            yield from _refs_in(env_from, _ENV_FROM)


def config_refs(pod_spec: Mapping[str, Any]) -> frozenset[ConfigRef]:
    """The ConfigMaps and Secrets referenced by volumes, projected volumes, ``env`` and
    ``envFrom`` of containers and initContainers."""
    optional: dict[tuple[ConfigKind, str], bool] = {}
    for kind, holder, name_key in _walk_refs(pod_spec):
        name = holder.get(name_key)
        if not isinstance(name, str) or not name:
            continue
        is_optional = holder.get("optional") is True
        key = (kind, name)
        optional[key] = optional.get(key, True) and is_optional
    return frozenset(ConfigRef(kind, name, opt) for (kind, name), opt in optional.items())


# ----------------------------------------------------------------------------- filters


def tracking_disabled(obj: Mapping[str, Any]) -> bool:
    """The object opted out with ``canary.gitops.dev/config-tracking: disabled`` (or
    Flagger's ``flagger.app/config-tracking``); any value starting with "disable" counts."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return any(str(annotations.get(key, "")).startswith("disable") for key in OPT_OUT_ANNOTATIONS)


def is_tracked(obj: Mapping[str, Any]) -> bool:
    """Whether a fetched ConfigMap/Secret takes part in tracking and gets a ``-primary`` copy."""
    if tracking_disabled(obj):
        return False
    if obj.get("kind") == "Secret":
        return str(obj.get("type") or "Opaque") in TRACKED_SECRET_TYPES
    return True


# ----------------------------------------------------------------------------- checksum


_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def go_json(value: Any) -> str:
    """JSON as Go's ``json.Marshal`` writes it: sorted keys, no spaces, HTML-safe escapes.

    Matching Go's bytes keeps our checksums equal to Flagger's for the same data, so a
    Canary migrated from Flagger does not see every tracked config as changed.
    """
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in _GO_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


def config_checksum(obj: Mapping[str, Any]) -> str:
    """First 16 hex characters of SHA-256 over the JSON of the object's data.

    ``data`` for both kinds (a Secret's values are the base64 strings the API returns);
    a ConfigMap with ``binaryData`` hashes both maps, so binary changes count too.
    """
    data: Any = obj.get("data")
    if obj.get("kind") == "ConfigMap" and obj.get("binaryData"):
        data = {"binaryData": obj.get("binaryData"), "data": obj.get("data")}
    digest = hashlib.sha256(go_json(data).encode("utf-8")).hexdigest()
    return digest[:16]


# ----------------------------------------------------------------------------- primary copies


def primary_config_name(name: str) -> str:
    return f"{name}-primary"


def primary_config(
    source: Mapping[str, Any],
    canary: Canary,
    include_label_prefixes: tuple[str, ...] = ("*",),
) -> dict[str, Any]:
    """The ``<name>-primary`` copy of a ConfigMap or Secret.

    Data, binary data, type and immutability are copied; labels are filtered like the
    primary workload's; the Canary becomes the controlling owner and the source's own
    owners (e.g. a SealedSecret) are kept as non-controlling owners.
    """
    meta = source.get("metadata") or {}
    owners = [owner_reference(canary)]
    for ref in meta.get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("uid") != canary.uid:
            owners.append({**ref, "controller": False})
    copy_: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": source.get("kind"),
        "metadata": {
            "name": primary_config_name(str(meta.get("name"))),
            "namespace": meta.get("namespace") or canary.namespace,
            "labels": filter_metadata(meta.get("labels") or {}, include_label_prefixes),
            "ownerReferences": owners,
        },
    }
    for field in ("data", "binaryData", "type", "immutable"):
        if source.get(field) is not None:
            copy_[field] = json_copy(source[field])
    return copy_


def rename_config_refs(
    pod_spec: Mapping[str, Any],
    rename: Mapping[tuple[str, str], str] | Callable[[str, str], str | None],
) -> dict[str, Any]:
    """A copy of ``pod_spec`` whose references to the given configs use the new names.

    ``rename`` maps ``(kind, name)`` (kind ``configmap``/``secret``) to the new name, or is
    a function returning the new name or None to keep the reference as it is.
    """
    result = json_copy(dict(pod_spec))

    def lookup(kind: str, name: str) -> str | None:
        if callable(rename):
            return rename(kind, name)
        return rename.get((kind, name))

    for kind, holder, name_key in _walk_refs(result):
        name = holder.get(name_key)
        if isinstance(name, str):
            new = lookup(kind, name)
            if new:
                holder[name_key] = new
    return result
