"""Decoding of the Kubernetes protobuf request bodies kubectl sends for a few simple kinds.

kubectl's typed generators (``kubectl create namespace``, ``create configmap``,
``create secret generic``, ``create serviceaccount``, ``create deployment``,
``create service``) send
``Content-Type: application/vnd.kubernetes.protobuf`` and accept JSON back. The sandbox
answers in JSON only, so it decodes just these bodies: the ``k8s\\x00`` envelope
(``runtime.Unknown``) and the fields of Namespace, ConfigMap, Secret, ServiceAccount,
Deployment and Service that those commands set (fields not modelled here are dropped). Any other kind gets a 415 that says to use ``kubectl create -f`` or
``apply`` (which send JSON).
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

MAGIC = b"k8s\x00"

# field number -> (json name, type); types: string, bytes, int, bool, time, msg:<Name>,
# map:string (map<string,string>), map:bytes (map<string,bytes>), map:<Message>; a leading
# "*" = repeated; a trailing "!" = a pointer field whose zero value is meaningful. Other
# zero values ("", 0, false) are dropped, as the JSON encoding's omitempty would.
Schema = dict[int, tuple[str, str]]

_SCHEMAS: dict[str, Schema] = {
    "Unknown": {
        1: ("typeMeta", "msg:TypeMeta"),
        2: ("raw", "bytes"),
        3: ("contentEncoding", "string"),
        4: ("contentType", "string"),
    },
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "ObjectMeta": {
        1: ("name", "string"),
        2: ("generateName", "string"),
        3: ("namespace", "string"),
        4: ("selfLink", "string"),
        5: ("uid", "string"),
        6: ("resourceVersion", "string"),
        7: ("generation", "int"),
        8: ("creationTimestamp", "time"),
        9: ("deletionTimestamp", "time"),
        10: ("deletionGracePeriodSeconds", "int"),
        11: ("labels", "map:string"),
        12: ("annotations", "map:string"),
        13: ("ownerReferences", "*msg:OwnerReference"),
        14: ("finalizers", "*string"),
    },
    "OwnerReference": {
        1: ("kind", "string"),
        3: ("name", "string"),
        4: ("uid", "string"),
        5: ("apiVersion", "string"),
        6: ("controller", "bool"),
        7: ("blockOwnerDeletion", "bool"),
    },
    "Time": {1: ("seconds", "int"), 2: ("nanos", "int")},
    "Namespace": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("spec", "msg:NamespaceSpec"),
        3: ("status", "msg:NamespaceStatus"),
    },
    "NamespaceSpec": {1: ("finalizers", "*string")},
    "NamespaceStatus": {1: ("phase", "string")},
    "ConfigMap": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("data", "map:string"),
        3: ("binaryData", "map:bytes"),
        4: ("immutable", "bool"),
    },
    "Secret": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("data", "map:bytes"),
        3: ("type", "string"),
        4: ("stringData", "map:string"),
        5: ("immutable", "bool"),
    },
    "ServiceAccount": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("secrets", "*msg:ObjectReference"),
        3: ("imagePullSecrets", "*msg:LocalObjectReference"),
        4: ("automountServiceAccountToken", "bool"),
    },
    "ObjectReference": {
        1: ("kind", "string"),
        2: ("namespace", "string"),
        3: ("name", "string"),
        4: ("uid", "string"),
        5: ("apiVersion", "string"),
        6: ("resourceVersion", "string"),
        7: ("fieldPath", "string"),
    },
    "LocalObjectReference": {1: ("name", "string")},
    "Deployment": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:DeploymentSpec")},
    "DeploymentSpec": {
        1: ("replicas", "int!"),
        2: ("selector", "msg:LabelSelector"),
        3: ("template", "msg:PodTemplateSpec"),
        4: ("strategy", "msg:DeploymentStrategy"),
        5: ("minReadySeconds", "int"),
        6: ("revisionHistoryLimit", "int!"),
        7: ("paused", "bool"),
        9: ("progressDeadlineSeconds", "int!"),
    },
    "DeploymentStrategy": {
        1: ("type", "string"),
        2: ("rollingUpdate", "msg:RollingUpdateDeployment"),
    },
    "RollingUpdateDeployment": {1: ("maxUnavailable", "intorstr"), 2: ("maxSurge", "intorstr")},
    "IntOrString": {1: ("type", "int!"), 2: ("intVal", "int!"), 3: ("strVal", "string")},
    "LabelSelector": {
        1: ("matchLabels", "map:string"),
        2: ("matchExpressions", "*msg:LabelSelectorRequirement"),
    },
    "LabelSelectorRequirement": {
        1: ("key", "string"),
        2: ("operator", "string"),
        3: ("values", "*string"),
    },
    "PodTemplateSpec": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:PodSpec")},
    "PodSpec": {
        2: ("containers", "*msg:Container"),
        3: ("restartPolicy", "string"),
        4: ("terminationGracePeriodSeconds", "int!"),
        6: ("dnsPolicy", "string"),
        7: ("nodeSelector", "map:string"),
        8: ("serviceAccountName", "string"),
        14: ("securityContext", "msg:Empty"),
        19: ("schedulerName", "string"),
        20: ("initContainers", "*msg:Container"),
    },
    "Container": {
        1: ("name", "string"),
        2: ("image", "string"),
        3: ("command", "*string"),
        4: ("args", "*string"),
        5: ("workingDir", "string"),
        6: ("ports", "*msg:ContainerPort"),
        7: ("env", "*msg:EnvVar"),
        8: ("resources", "msg:ResourceRequirements"),
        13: ("terminationMessagePath", "string"),
        14: ("imagePullPolicy", "string"),
        20: ("terminationMessagePolicy", "string"),
    },
    "ContainerPort": {
        1: ("name", "string"),
        2: ("hostPort", "int"),
        3: ("containerPort", "int"),
        4: ("protocol", "string"),
        5: ("hostIP", "string"),
    },
    "EnvVar": {1: ("name", "string"), 2: ("value", "string")},
    "ResourceRequirements": {1: ("limits", "map:Quantity"), 2: ("requests", "map:Quantity")},
    "Quantity": {1: ("string", "string")},
    "Empty": {},
    "Service": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:ServiceSpec")},
    "ServiceSpec": {
        1: ("ports", "*msg:ServicePort"),
        2: ("selector", "map:string"),
        3: ("clusterIP", "string"),
        4: ("type", "string"),
        5: ("externalIPs", "*string"),
        7: ("sessionAffinity", "string"),
        10: ("externalName", "string"),
    },
    "ServicePort": {
        1: ("name", "string"),
        2: ("protocol", "string"),
        3: ("port", "int"),
        4: ("targetPort", "intorstr"),
        5: ("nodePort", "int"),
        6: ("appProtocol", "string"),
    },
}

DECODABLE_KINDS = frozenset(
    {"Namespace", "ConfigMap", "Secret", "ServiceAccount", "Deployment", "Service"}
)


class ProtobufError(ValueError):
    """The body is not a protobuf message the sandbox can decode."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
            if pos > len(data):
                raise ProtobufError("truncated field")
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _map_entry(data: bytes, value_type: str) -> tuple[str, Any]:
    key, value = "", "" if value_type == "string" else b""
    for number, _wire, raw in _fields(data):
        if number == 1:
            key = bytes(raw).decode()
        elif number == 2 and value_type == "Quantity":
            value = decode_message(bytes(raw), "Quantity").get("string", "")
        elif number == 2:
            value = bytes(raw).decode() if value_type == "string" else bytes(raw)
    if isinstance(value, bytes):
        return key, base64.b64encode(value).decode()
    return key, value


def decode_message(data: bytes, type_name: str) -> dict[str, Any]:
    schema = _SCHEMAS[type_name]
    out: dict[str, Any] = {}
    for number, _wire, raw in _fields(data):
        if number not in schema:
            continue  # a field we do not model: dropped
        name, kind = schema[number]
        repeated = kind.startswith("*")
        keep_zero = kind.endswith("!")
        kind = kind.strip("*!")
        if kind == "string":
            value: Any = bytes(raw).decode()
        elif kind == "bytes":
            value = bytes(raw)
        elif kind == "int":
            value = _signed(int(raw))
        elif kind == "bool":
            value = bool(raw)
        elif kind == "time":
            t = decode_message(bytes(raw), "Time")
            if not t.get("seconds"):
                continue
            value = dt.datetime.fromtimestamp(int(t["seconds"]), dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
        elif kind == "intorstr":
            ios = decode_message(bytes(raw), "IntOrString")
            value = ios.get("strVal", "") if ios.get("type") == 1 else int(ios.get("intVal", 0))
        elif kind.startswith("map:"):
            k, v = _map_entry(bytes(raw), kind[4:])
            out.setdefault(name, {})[k] = v
            continue
        elif kind.startswith("msg:"):
            value = decode_message(bytes(raw), kind[4:])
        else:
            raise AssertionError(kind)
        if (
            not repeated
            and not keep_zero
            and value in ("", 0, False)
            and not isinstance(value, dict)
        ):
            continue  # proto2 encodes zero values; JSON's omitempty would not
        if repeated:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out


def decode_object(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded object as JSON-shaped data (only the kinds in ``DECODABLE_KINDS``)."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf envelope")
    unknown = decode_message(body[len(MAGIC) :], "Unknown")
    type_meta = unknown.get("typeMeta") or {}
    kind = str(type_meta.get("kind", ""))
    if kind not in DECODABLE_KINDS:
        raise ProtobufError(
            f"the sandbox decodes protobuf only for {', '.join(sorted(DECODABLE_KINDS))}, not {kind or 'this body'}; "
            "send JSON (kubectl create -f / apply do)"
        )
    obj = decode_message(unknown.get("raw", b""), kind)
    obj["apiVersion"] = type_meta.get("apiVersion", "v1")
    obj["kind"] = kind
    return obj
