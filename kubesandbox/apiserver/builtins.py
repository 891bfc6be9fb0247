"""Defaulting and validation of built-in types, as far as the controller and tests see them.

A real API server fills defaults into Deployments, Pods and Services (replicas, rollout
strategy, progress deadline, image pull policy, Service ports and cluster IP, ...) and
rejects objects that cannot work (a Deployment whose selector does not match its template,
a changed selector). Controllers compare and hash these objects, so the sandbox applies
the same defaults; validation is deliberately limited to the rules listed here and in
docs/sandbox.md.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable
from typing import Any

from .errors import Cause
from .selectors import SelectorError, selector_from_object

JsonObj = dict[str, Any]

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

_PATH_SEGMENT_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})


def validate_name(kind: str, name: str, field: str = "metadata.name") -> list[Cause]:
    """Name rules per kind: DNS label for Namespace/Service, path segment for RBAC, else subdomain."""
    if kind in _PATH_SEGMENT_KINDS:
        if name in (".", "..") or "/" in name or "%" in name:
            return [
                Cause(
                    field,
                    "FieldValueInvalid",
                    f"Invalid value: \"{name}\": may not contain '/' or '%'",
                )
            ]
        return []
    if kind == "Namespace":
        ok, limit, what = DNS1123_LABEL.match(name), 63, "a lowercase RFC 1123 label"
    elif kind == "Service":
        ok, limit, what = DNS1035_LABEL.match(name), 63, "a DNS-1035 label"
    else:
        ok, limit, what = DNS1123_SUBDOMAIN.match(name), 253, "a lowercase RFC 1123 subdomain"
    if not ok or len(name) > limit:
        return [
            Cause(
                field,
                "FieldValueInvalid",
                f'Invalid value: "{name}": {what} must consist of lower case alphanumeric characters, '
                f"'-' or '.', and must start and end with an alphanumeric character (at most {limit} characters)",
            )
        ]
    return []


def validate_labels(labels: Any, field: str = "metadata.labels") -> list[Cause]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [Cause(field, "FieldValueTypeInvalid", "Invalid value: expected a map of strings")]
    causes: list[Cause] = []
    for key, value in labels.items():
        prefix, _, name = str(key).rpartition("/")
        if (
            not name
            or len(name) > 63
            or not _LABEL_NAME.match(name)
            or (prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)))
        ):
            causes.append(
                Cause(
                    f"{field}",
                    "FieldValueInvalid",
                    f"Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
        if not isinstance(value, str):
            causes.append(
                Cause(
                    f"{field}[{key}]",
                    "FieldValueTypeInvalid",
                    "Invalid value: label values must be strings",
                )
            )
        elif len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                Cause(
                    f"{field}",
                    "FieldValueInvalid",
                    f"Invalid value: \"{value}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.' (at most 63 characters)",
                )
            )
    return causes


def validate_annotations(annotations: Any) -> list[Cause]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [
            Cause(
                "metadata.annotations",
                "FieldValueTypeInvalid",
                "Invalid value: expected a map of strings",
            )
        ]
    return [
        Cause(
            f"metadata.annotations[{k}]",
            "FieldValueTypeInvalid",
            "Invalid value: annotation values must be strings",
        )
        for k, v in annotations.items()
        if not isinstance(v, str)
    ]


# --- defaulting ------------------------------------------------------------------------------


def _default_container(c: JsonObj) -> None:
    if not isinstance(c, dict):
        return
    image = str(c.get("image", ""))
    if "imagePullPolicy" not in c:
        tag = image.rsplit("/", 1)[-1]
        c["imagePullPolicy"] = (
            "Always"
            if ("@" not in tag and (":" not in tag or tag.endswith(":latest")))
            else "IfNotPresent"
        )
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for probe_key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = c.get(probe_key)
        if isinstance(probe, dict):
            probe.setdefault("timeoutSeconds", 1)
            probe.setdefault("periodSeconds", 10)
            probe.setdefault("successThreshold", 1)
            probe.setdefault("failureThreshold", 3)


def default_pod_spec(spec: Any) -> None:
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            _default_container(c)


def _default_template(obj: JsonObj) -> None:
    template = (obj.get("spec") or {}).get("template")
    if isinstance(template, dict):
        template.setdefault("metadata", {})
        if isinstance(template["metadata"], dict):
            template["metadata"].setdefault("creationTimestamp", None)
        default_pod_spec(template.get("spec"))


def _default_deployment(obj: JsonObj) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_rolling_update(spec, "strategy", max_unavailable="25%", max_surge="25%")
    _default_template(obj)


def _default_rolling_update(
    spec: JsonObj, key: str, *, max_unavailable: int | str, max_surge: int | str
) -> None:
    """``spec[key]`` (a Deployment's strategy, a DaemonSet's updateStrategy) defaults to a
    rolling update with these bounds."""
    strategy = spec.setdefault(key, {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            ru = strategy.setdefault("rollingUpdate", {})
            if isinstance(ru, dict):
                ru.setdefault("maxUnavailable", max_unavailable)
                ru.setdefault("maxSurge", max_surge)


def _default_replicaset(obj: JsonObj) -> None:
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict):
        spec.setdefault("replicas", 1)
    _default_template(obj)


def _default_daemonset(obj: JsonObj) -> None:
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict):
        spec.setdefault("revisionHistoryLimit", 10)
        _default_rolling_update(spec, "updateStrategy", max_unavailable=1, max_surge=0)
    _default_template(obj)


def _default_statefulset(obj: JsonObj) -> None:
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault(
            "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
        )
    _default_template(obj)


def _default_pod(obj: JsonObj) -> None:
    default_pod_spec(obj.setdefault("spec", {}))


def _default_service(obj: JsonObj) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])
    if spec["type"] != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")


def _default_secret(obj: JsonObj) -> None:
    obj.setdefault("type", "Opaque")
    # Like the real server: stringData is write-only, merged into data (base64).
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        existing = obj.get("data")
        data: dict[str, Any] = dict(existing) if isinstance(existing, dict) else {}
        for key, value in string_data.items():
            data[str(key)] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data


def _default_namespace(obj: JsonObj) -> None:
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict):
        spec.setdefault("finalizers", ["kubernetes"])
    meta = obj.setdefault("metadata", {})
    labels = meta.setdefault("labels", {}) if isinstance(meta, dict) else None
    if isinstance(labels, dict) and isinstance(meta, dict):
        labels.setdefault("kubernetes.io/metadata.name", meta.get("name", ""))


def _default_crd(obj: JsonObj) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    names = spec.get("names")
    if isinstance(names, dict) and isinstance(names.get("kind"), str):
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("conversion", {"strategy": "None"})


_DEFAULTERS: dict[str, Callable[[JsonObj], None]] = {
    "Deployment": _default_deployment,
    "ReplicaSet": _default_replicaset,
    "DaemonSet": _default_daemonset,
    "StatefulSet": _default_statefulset,
    "Pod": _default_pod,
    "Service": _default_service,
    "Secret": _default_secret,
    "Namespace": _default_namespace,
    "CustomResourceDefinition": _default_crd,
}


def apply_defaults(kind: str, obj: JsonObj) -> None:
    """Fill the server-side defaults of a built-in kind, in place."""
    fn = _DEFAULTERS.get(kind)
    if fn is not None:
        fn(obj)


# --- validation ------------------------------------------------------------------------------


def _validate_containers(containers: Any, field: str, *, required: bool) -> list[Cause]:
    if containers is None or containers == []:
        return [Cause(field, "FieldValueRequired", "Required value")] if required else []
    if not isinstance(containers, list):
        return [Cause(field, "FieldValueTypeInvalid", "Invalid value: expected a list")]
    causes: list[Cause] = []
    names: set[str] = set()
    for i, c in enumerate(containers):
        path = f"{field}[{i}]"
        if not isinstance(c, dict):
            causes.append(Cause(path, "FieldValueTypeInvalid", "Invalid value: expected an object"))
            continue
        name = c.get("name")
        if not name:
            causes.append(Cause(f"{path}.name", "FieldValueRequired", "Required value"))
        elif name in names:
            causes.append(
                Cause(f"{path}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"')
            )
        else:
            names.add(str(name))
        if not c.get("image"):
            causes.append(Cause(f"{path}.image", "FieldValueRequired", "Required value"))
    return causes


def _validate_workload(
    obj: JsonObj, old: JsonObj | None, *, needs_selector: bool = True
) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "FieldValueRequired", "Required value")]
    causes: list[Cause] = []
    replicas = spec.get("replicas")
    if replicas is not None and (
        not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0
    ):
        causes.append(
            Cause(
                "spec.replicas",
                "FieldValueInvalid",
                f"Invalid value: {replicas}: must be greater than or equal to 0",
            )
        )
    selector = spec.get("selector")
    template = spec.get("template") if isinstance(spec.get("template"), dict) else None
    if needs_selector:
        if not selector:
            causes.append(Cause("spec.selector", "FieldValueRequired", "Required value"))
        else:
            try:
                parsed = selector_from_object(selector, "spec.selector")
            except SelectorError as exc:
                causes.append(Cause("spec.selector", "FieldValueInvalid", f"Invalid value: {exc}"))
            else:
                if parsed.empty:
                    causes.append(
                        Cause(
                            "spec.selector",
                            "FieldValueInvalid",
                            "Invalid value: empty selector is invalid for deployment",
                        )
                    )
                labels = ((template or {}).get("metadata") or {}).get("labels") or {}
                if not parsed.empty and not parsed.matches(labels):
                    causes.append(
                        Cause(
                            "spec.template.metadata.labels",
                            "FieldValueInvalid",
                            "Invalid value: `selector` does not match template `labels`",
                        )
                    )
        if old is not None and (old.get("spec") or {}).get("selector") != selector:
            causes.append(
                Cause("spec.selector", "FieldValueInvalid", "Invalid value: field is immutable")
            )
    if template is None:
        causes.append(Cause("spec.template", "FieldValueRequired", "Required value"))
    else:
        pod_spec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
        causes += _validate_containers(
            pod_spec.get("containers"), "spec.template.spec.containers", required=True
        )
        causes += validate_labels(
            (template.get("metadata") or {}).get("labels"), "spec.template.metadata.labels"
        )
    return causes


def _validate_pod(obj: JsonObj, old: JsonObj | None) -> list[Cause]:
    spec: JsonObj = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
    return _validate_containers(spec.get("containers"), "spec.containers", required=True)


def _validate_service(obj: JsonObj, old: JsonObj | None) -> list[Cause]:
    spec: JsonObj = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
    causes: list[Cause] = []
    stype = spec.get("type", "ClusterIP")
    if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        causes.append(
            Cause(
                "spec.type",
                "FieldValueNotSupported",
                f'Unsupported value: "{stype}": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
            )
        )
    ports = spec.get("ports") or []
    if not ports and stype != "ExternalName" and spec.get("clusterIP") != "None":
        causes.append(Cause("spec.ports", "FieldValueRequired", "Required value"))
    names: set[str] = set()
    for i, port in enumerate(ports if isinstance(ports, list) else []):
        if not isinstance(port, dict):
            continue
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            causes.append(
                Cause(
                    f"spec.ports[{i}].port",
                    "FieldValueInvalid",
                    f"Invalid value: {number}: must be between 1 and 65535, inclusive",
                )
            )
        if len(ports) > 1 and not port.get("name"):
            causes.append(Cause(f"spec.ports[{i}].name", "FieldValueRequired", "Required value"))
        if port.get("name") in names:
            causes.append(
                Cause(
                    f"spec.ports[{i}].name",
                    "FieldValueDuplicate",
                    f'Duplicate value: "{port.get("name")}"',
                )
            )
        names.add(str(port.get("name")))
    if old is not None:
        old_ip = (old.get("spec") or {}).get("clusterIP")
        if old_ip and spec.get("clusterIP") not in (None, "", old_ip):
            causes.append(
                Cause(
                    "spec.clusterIP",
                    "FieldValueInvalid",
                    f'Invalid value: "{spec.get("clusterIP")}": field is immutable',
                )
            )
    return causes


def _validate_crd_update(obj: JsonObj, old: JsonObj | None) -> list[Cause]:
    if old is None:
        return []
    causes = []
    new_spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    if new_spec.get("scope") != old_spec.get("scope"):
        causes.append(
            Cause(
                "spec.scope",
                "FieldValueInvalid",
                f'Invalid value: "{new_spec.get("scope")}": field is immutable',
            )
        )
    return causes


_VALIDATORS: dict[str, Callable[[JsonObj, JsonObj | None], list[Cause]]] = {
    "Deployment": _validate_workload,
    "ReplicaSet": _validate_workload,
    "DaemonSet": _validate_workload,
    "StatefulSet": _validate_workload,
    "Pod": _validate_pod,
    "Service": _validate_service,
    "CustomResourceDefinition": _validate_crd_update,
}


def validate(kind: str, obj: JsonObj, old: JsonObj | None) -> list[Cause]:
    fn = _VALIDATORS.get(kind)
    return fn(obj, old) if fn is not None else []


class ClusterIPAllocator:
    """Hands out Service cluster IPs from 10.96.0.0/16 (never routed, never contacted)."""

    def __init__(self) -> None:
        self._net = ipaddress.ip_network("10.96.0.0/16")
        self._next = 10
        self._used: set[str] = set()

    def allocate(self) -> str:
        while True:
            candidate = str(self._net[self._next % (self._net.num_addresses - 2) + 1])
            self._next += 1
            if candidate not in self._used:
                self._used.add(candidate)
                return candidate

    def reserve(self, ip: str) -> None:
        self._used.add(ip)

    def release(self, ip: str) -> None:
        self._used.discard(ip)
