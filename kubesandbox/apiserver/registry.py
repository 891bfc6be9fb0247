"""What the sandbox API server serves: resource types, CRD registration and discovery.

A real API server's behaviour differs per resource (scope, status and scale subresources,
generation tracking, field selectors, printer columns, strategic-merge support); each
served ``group/version/plural`` is described here by one frozen :class:`ResourceType`.
:class:`Registry` holds the built-in types, adds and removes the types of a
CustomResourceDefinition when it is created, changed or deleted, and renders the legacy
discovery documents (``/api``, ``/apis``, ``/apis/<group>/<version>``) kopf, the Kubernetes
client and kubectl read at start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import Cause

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")

_BASE_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


@dataclass(frozen=True)
class PrinterColumn:
    """One column of ``kubectl get`` output (a CRD's ``additionalPrinterColumns`` entry)."""

    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class ScaleSpec:
    """Where a type keeps the numbers the ``/scale`` subresource exposes."""

    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: str | None = None  # None: render .spec.selector (built-ins)


@dataclass(frozen=True)
class Converter:
    """Converts between a served form and the storage form of a shared resource."""

    to_storage: Callable[[dict[str, Any]], dict[str, Any]]
    from_storage: Callable[[dict[str, Any]], dict[str, Any]]
    field_aliases: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResourceType:
    """One served ``group/version/plural`` and the semantics the server gives it."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    status_subresource: bool = False
    scale: ScaleSpec | None = None
    has_generation: bool = False
    is_crd: bool = False
    schema: Mapping[str, Any] | None = None
    printer_columns: tuple[PrinterColumn, ...] = ()
    extra_fields: frozenset[str] = frozenset()
    storage_group: str | None = None  # shared storage with another group (events.k8s.io)
    storage_version: str | None = None
    converter: Converter | None = None
    crd_name: str | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def key(self) -> tuple[str, str]:
        """The storage key: every version (and alias group) of a resource shares it."""
        return (self.group if self.storage_group is None else self.storage_group, self.plural)

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def selectable_fields(self) -> frozenset[str]:
        return (
            _BASE_FIELDS
            | self.extra_fields
            | frozenset(self.converter.field_aliases if self.converter else {})
        )

    @property
    def strategic_merge(self) -> bool:
        return not self.is_crd

    @property
    def subresources(self) -> tuple[str, ...]:
        subs = []
        if self.status_subresource:
            subs.append("status")
        if self.scale is not None:
            subs.append("scale")
        return tuple(subs)


# --- events.k8s.io/v1 <-> v1 conversion ----------------------------------------------------

_EVENT_RENAMES = (
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("source", "deprecatedSource"),
    ("reportingComponent", "reportingController"),
)
_EVENT_COMMON = (
    "metadata",
    "reason",
    "type",
    "action",
    "eventTime",
    "related",
    "reportingInstance",
    "series",
)


def _event_to_core(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "Event"}
    for key in _EVENT_COMMON:
        if key in obj:
            out[key] = obj[key]
    for core, new in _EVENT_RENAMES:
        if new in obj:
            out[core] = obj[new]
    return out


def _event_from_core(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    for key in _EVENT_COMMON:
        if key in obj:
            out[key] = obj[key]
    for core, new in _EVENT_RENAMES:
        if core in obj:
            out[new] = obj[core]
    return out


EVENTS_CONVERTER = Converter(
    to_storage=_event_to_core,
    from_storage=_event_from_core,
    field_aliases={
        "regarding.kind": "involvedObject.kind",
        "regarding.namespace": "involvedObject.namespace",
        "regarding.name": "involvedObject.name",
        "regarding.uid": "involvedObject.uid",
        "regarding.apiVersion": "involvedObject.apiVersion",
        "regarding.resourceVersion": "involvedObject.resourceVersion",
        "regarding.fieldPath": "involvedObject.fieldPath",
        "reportingController": "reportingComponent",
        "deprecatedSource": "source",
    },
)

# --- built-in types --------------------------------------------------------------------------

_EVENT_FIELDS = frozenset(
    {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    }
)
_POD_FIELDS = frozenset(
    {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    }
)


def _apps_workload(kind: str, short_name: str, *, scalable: bool = True) -> ResourceType:
    """An ``apps/v1`` workload: namespaced, in ``kubectl get all``, with a status subresource,
    a generation and (all but a DaemonSet) a scale subresource."""
    singular = kind.lower()
    return ResourceType(
        "apps",
        "v1",
        f"{singular}s",
        singular,
        kind,
        True,
        (short_name,),
        ("all",),
        status_subresource=True,
        scale=ScaleSpec() if scalable else None,
        has_generation=True,
    )


def _builtin_types() -> list[ResourceType]:
    rt = ResourceType
    return [
        rt(
            "",
            "v1",
            "namespaces",
            "namespace",
            "Namespace",
            False,
            ("ns",),
            status_subresource=True,
            extra_fields=frozenset({"status.phase"}),
        ),
        rt(
            "",
            "v1",
            "nodes",
            "node",
            "Node",
            False,
            ("no",),
            status_subresource=True,
            extra_fields=frozenset({"spec.unschedulable"}),
        ),
        rt(
            "",
            "v1",
            "pods",
            "pod",
            "Pod",
            True,
            ("po",),
            ("all",),
            status_subresource=True,
            extra_fields=_POD_FIELDS,
        ),
        rt(
            "",
            "v1",
            "services",
            "service",
            "Service",
            True,
            ("svc",),
            ("all",),
            status_subresource=True,
        ),
        rt("", "v1", "endpoints", "endpoints", "Endpoints", True, ("ep",)),
        rt("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",)),
        rt("", "v1", "secrets", "secret", "Secret", True, extra_fields=frozenset({"type"})),
        rt("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ("sa",)),
        rt("", "v1", "events", "event", "Event", True, ("ev",), extra_fields=_EVENT_FIELDS),
        _apps_workload("Deployment", "deploy"),
        _apps_workload("ReplicaSet", "rs"),
        _apps_workload("DaemonSet", "ds", scalable=False),
        _apps_workload("StatefulSet", "sts"),
        rt(
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            "HorizontalPodAutoscaler",
            True,
            ("hpa",),
            ("all",),
            status_subresource=True,
            has_generation=True,
        ),
        rt(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "ingress",
            "Ingress",
            True,
            ("ing",),
            status_subresource=True,
            has_generation=True,
        ),
        rt(
            "networking.k8s.io",
            "v1",
            "ingressclasses",
            "ingressclass",
            "IngressClass",
            False,
            has_generation=True,
        ),
        rt("coordination.k8s.io", "v1", "leases", "lease", "Lease", True),
        rt(
            "events.k8s.io",
            "v1",
            "events",
            "event",
            "Event",
            True,
            ("ev",),
            storage_group="",
            converter=EVENTS_CONVERTER,
            extra_fields=_EVENT_FIELDS,
        ),
        rt(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "customresourcedefinition",
            "CustomResourceDefinition",
            False,
            ("crd", "crds"),
            ("api-extensions",),
            status_subresource=True,
            has_generation=True,
        ),
        rt("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", True),
        rt("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", False),
        rt("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", True),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "clusterrolebinding",
            "ClusterRoleBinding",
            False,
        ),
        rt(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            "PodDisruptionBudget",
            True,
            ("pdb",),
            status_subresource=True,
            has_generation=True,
        ),
        rt("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", True),
        # kube-aggregator's registrations: the server proxies a group-version to a Service.
        rt(
            "apiregistration.k8s.io",
            "v1",
            "apiservices",
            "apiservice",
            "APIService",
            False,
            categories=("api-extensions",),
            status_subresource=True,
        ),
    ]


# Group order of /apis (built-ins first, as a real server lists them); CRD groups follow.
_BUILTIN_GROUP_ORDER = (
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "autoscaling",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "apiextensions.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
)


# --- CRD parsing -----------------------------------------------------------------------------

_PLURAL_RE_TEXT = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


def crd_problems(crd: Mapping[str, Any]) -> list[Cause]:
    """Structural checks a real server makes on a CustomResourceDefinition (the subset we need)."""
    import re

    causes: list[Cause] = []
    spec = crd.get("spec")
    if not isinstance(spec, Mapping):
        return [Cause("spec", "FieldValueRequired", "Required value")]
    group = spec.get("group")
    names = spec.get("names") if isinstance(spec.get("names"), Mapping) else None
    if not isinstance(group, str) or not group:
        causes.append(Cause("spec.group", "FieldValueRequired", "Required value"))
    elif "." not in group:
        causes.append(
            Cause(
                "spec.group",
                "FieldValueInvalid",
                f'Invalid value: "{group}": should be a domain with at least one dot',
            )
        )
    if names is None:
        causes.append(Cause("spec.names", "FieldValueRequired", "Required value"))
    else:
        for key in ("plural", "kind"):
            if not isinstance(names.get(key), str) or not names.get(key):
                causes.append(Cause(f"spec.names.{key}", "FieldValueRequired", "Required value"))
        plural = names.get("plural")
        if isinstance(plural, str) and plural and not re.match(_PLURAL_RE_TEXT, plural):
            causes.append(
                Cause(
                    "spec.names.plural",
                    "FieldValueInvalid",
                    f"Invalid value: \"{plural}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
                )
            )
        if isinstance(plural, str) and isinstance(group, str):
            expected = f"{plural}.{group}"
            actual = (crd.get("metadata") or {}).get("name")
            if actual != expected:
                causes.append(
                    Cause(
                        "metadata.name",
                        "FieldValueInvalid",
                        f'Invalid value: "{actual}": must be spec.names.plural+"."+spec.group',
                    )
                )
    scope = spec.get("scope")
    if scope not in ("Namespaced", "Cluster"):
        causes.append(
            Cause(
                "spec.scope",
                "FieldValueNotSupported",
                f'Unsupported value: "{scope}": supported values: "Cluster", "Namespaced"',
            )
        )
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        causes.append(
            Cause(
                "spec.versions",
                "FieldValueInvalid",
                "Invalid value: must have exactly one version marked as storage version",
            )
        )
        return causes
    storage = [v for v in versions if isinstance(v, Mapping) and v.get("storage")]
    if len(storage) != 1:
        causes.append(
            Cause(
                "spec.versions",
                "FieldValueInvalid",
                "Invalid value: must have exactly one version marked as storage version",
            )
        )
    seen: set[str] = set()
    for i, version in enumerate(versions):
        path = f"spec.versions[{i}]"
        if not isinstance(version, Mapping):
            causes.append(Cause(path, "FieldValueTypeInvalid", "Invalid value: expected an object"))
            continue
        vname = version.get("name")
        if not isinstance(vname, str) or not vname:
            causes.append(Cause(f"{path}.name", "FieldValueRequired", "Required value"))
        elif vname in seen:
            causes.append(
                Cause(f"{path}.name", "FieldValueDuplicate", f'Duplicate value: "{vname}"')
            )
        else:
            seen.add(vname)
        if "served" not in version:
            causes.append(Cause(f"{path}.served", "FieldValueRequired", "Required value"))
        if "storage" not in version:
            causes.append(Cause(f"{path}.storage", "FieldValueRequired", "Required value"))
        schema = (
            (version.get("schema") or {}).get("openAPIV3Schema")
            if isinstance(version.get("schema"), Mapping)
            else None
        )
        if not isinstance(schema, Mapping):
            causes.append(
                Cause(
                    f"{path}.schema.openAPIV3Schema",
                    "FieldValueRequired",
                    "Required value: schemas are required",
                )
            )
        elif schema.get("type") != "object":
            causes.append(
                Cause(
                    f"{path}.schema.openAPIV3Schema.type",
                    "FieldValueRequired",
                    "Required value: must be object at the root",
                )
            )
    return causes


def crd_resource_types(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The served resource types of a (valid) CustomResourceDefinition, one per served version."""
    spec = crd["spec"]
    names = spec["names"]
    group = spec["group"]
    plural = names["plural"]
    kind = names["kind"]
    storage_version = next(v["name"] for v in spec["versions"] if v.get("storage"))
    out: list[ResourceType] = []
    for version in spec["versions"]:
        if not version.get("served"):
            continue
        subresources = version.get("subresources") or {}
        scale = subresources.get("scale")
        columns = tuple(
            PrinterColumn(
                name=str(c.get("name", "")),
                type=str(c.get("type", "string")),
                json_path=str(c.get("jsonPath", "")),
                description=str(c.get("description", "")),
                priority=int(c.get("priority", 0) or 0),
                format=str(c.get("format", "")),
            )
            for c in version.get("additionalPrinterColumns") or []
        )
        selectable = frozenset(
            str(f.get("jsonPath", "")).lstrip(".") for f in version.get("selectableFields") or []
        )
        out.append(
            ResourceType(
                group=group,
                version=version["name"],
                plural=plural,
                singular=names.get("singular") or kind.lower(),
                kind=kind,
                namespaced=spec.get("scope") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status_subresource="status" in subresources,
                scale=(
                    ScaleSpec(
                        spec_replicas_path=scale.get("specReplicasPath", ".spec.replicas"),
                        status_replicas_path=scale.get("statusReplicasPath", ".status.replicas"),
                        label_selector_path=scale.get("labelSelectorPath") or "",
                    )
                    if isinstance(scale, Mapping)
                    else None
                ),
                has_generation=True,
                is_crd=True,
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                printer_columns=columns,
                extra_fields=selectable,
                storage_version=storage_version,
                crd_name=crd["metadata"]["name"],
            )
        )
    return out


# --- the registry ----------------------------------------------------------------------------


class Registry:
    """All served resource types, indexed for O(1) lookup by group/version/plural."""

    def __init__(self) -> None:
        self._by_gv: dict[tuple[str, str], dict[str, ResourceType]] = {}
        self._crd_types: dict[str, list[ResourceType]] = {}
        self._find_cache: dict[str, ResourceType | None] = {}
        self._storage_cache: dict[tuple[str, str], ResourceType | None] = {}
        for t in _builtin_types():
            self._add(t)

    def _add(self, t: ResourceType) -> None:
        self._find_cache.clear()
        self._storage_cache.clear()
        self._by_gv.setdefault((t.group, t.version), {})[t.plural] = t

    def _remove(self, t: ResourceType) -> None:
        self._find_cache.clear()
        self._storage_cache.clear()
        plurals = self._by_gv.get((t.group, t.version))
        if plurals is not None:
            plurals.pop(t.plural, None)
            if not plurals:
                del self._by_gv[(t.group, t.version)]

    # lookups

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gv.get((group, version), {}).get(plural)

    def has_group_version(self, group: str, version: str) -> bool:
        return (group, version) in self._by_gv

    def all_types(self) -> Iterable[ResourceType]:
        for plurals in self._by_gv.values():
            yield from plurals.values()

    def storage_type(self, key: tuple[str, str]) -> ResourceType | None:
        """The type whose version is the storage version for a storage key."""
        if key in self._storage_cache:
            return self._storage_cache[key]
        found = self._storage_type(key)
        self._storage_cache[key] = found
        return found

    def _storage_type(self, key: tuple[str, str]) -> ResourceType | None:
        candidates = [t for t in self.all_types() if t.key == key and t.converter is None]
        for t in candidates:
            if t.storage_version is None or t.storage_version == t.version:
                return t
        return candidates[0] if candidates else None

    def find(self, name: str) -> ResourceType | None:
        """Resolve ``plural``, ``plural.group``, ``Kind``, short name or ``group/version/plural``."""
        if name in self._find_cache:
            return self._find_cache[name]
        found = self._find(name)
        self._find_cache[name] = found
        return found

    def _find(self, name: str) -> ResourceType | None:
        if name.count("/") == 2:
            g, v, p = name.split("/")
            return self.lookup(g, v, p)
        if name.count("/") == 1:
            v, p = name.split("/")
            return self.lookup("", v, p)
        plural, _, group = name.partition(".")
        best: ResourceType | None = None
        for t in self.all_types():
            if t.converter is not None:
                continue
            names = {t.plural, t.singular, t.kind.lower(), *t.short_names}
            if (plural.lower() in names or name == t.kind) and (not group or group == t.group):
                if t.storage_version is None or t.storage_version == t.version:
                    if best is None or (best.group and not t.group):
                        best = t
        return best

    def kind_type(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for t in self._by_gv.get((group, version), {}).values():
            if t.kind == kind:
                return t
        return None

    # CRDs

    def set_crd(self, crd: Mapping[str, Any]) -> list[ResourceType]:
        name = crd["metadata"]["name"]
        for t in self._crd_types.pop(name, []):
            self._remove(t)
        types = crd_resource_types(crd)
        for t in types:
            existing = self.lookup(t.group, t.version, t.plural)
            if existing is not None and not existing.is_crd:
                continue  # never shadow a built-in
            self._add(t)
        self._crd_types[name] = types
        return types

    def drop_crd(self, name: str) -> list[ResourceType]:
        types = self._crd_types.pop(name, [])
        for t in types:
            self._remove(t)
        return types

    def crd_types(self, name: str) -> list[ResourceType]:
        return list(self._crd_types.get(name, []))

    # discovery

    def _groups(self) -> list[str]:
        present = {g for (g, _v) in self._by_gv if g}
        ordered = [g for g in _BUILTIN_GROUP_ORDER if g in present]
        ordered += sorted(present - set(ordered))
        return ordered

    def _versions(self, group: str) -> list[str]:
        versions = [v for (g, v) in self._by_gv if g == group]
        preferred = None
        for t in self.all_types():
            if t.group == group and t.storage_version == t.version:
                preferred = t.version
        return sorted(versions, key=lambda v: (v != preferred, _version_priority(v)))

    def api_versions(self) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}
            ],
        }

    def api_group(self, group: str) -> dict[str, Any] | None:
        versions = self._versions(group)
        if not versions:
            return None
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": entries,
            "preferredVersion": entries[0],
        }

    def api_group_list(self) -> dict[str, Any]:
        groups = [self.api_group(g) for g in self._groups()]
        for g in groups:
            if g is not None:
                g.pop("kind")
                g.pop("apiVersion")
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [g for g in groups if g]}

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        plurals = self._by_gv.get((group, version))
        if plurals is None:
            return None
        resources: list[dict[str, Any]] = []
        for t in sorted(plurals.values(), key=lambda t: t.plural):
            entry: dict[str, Any] = {
                "name": t.plural,
                "singularName": t.singular,
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": list(t.verbs),
            }
            if t.short_names:
                entry["shortNames"] = list(t.short_names)
            if t.categories:
                entry["categories"] = list(t.categories)
            resources.append(entry)
            if t.status_subresource:
                resources.append(
                    {
                        "name": f"{t.plural}/status",
                        "singularName": "",
                        "namespaced": t.namespaced,
                        "kind": t.kind,
                        "verbs": list(SUBRESOURCE_VERBS),
                    }
                )
            if t.scale is not None:
                resources.append(
                    {
                        "name": f"{t.plural}/scale",
                        "singularName": "",
                        "namespaced": t.namespaced,
                        "group": "autoscaling",
                        "version": "v1",
                        "kind": "Scale",
                        "verbs": list(SUBRESOURCE_VERBS),
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version ordering: GA > beta > alpha, then by numbers, descending."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0)
    major = int(m[1])
    level = {"alpha": 2, "beta": 1, None: 0}[m[2]]
    minor = int(m[3] or 0)
    return (level, -major, -minor)
