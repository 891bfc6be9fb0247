"""Minimal OpenAPI v3 documents, just enough for kubectl's field-validation handshake.

kubectl (1.27+) refuses ``apply``/``create`` with "failed to download openapi" unless it can
tell whether the server validates fields itself. It reads ``/openapi/v3`` (an index of
group-versions) and, for the object's group-version, looks for a PATCH operation tagged
with the object's ``x-kubernetes-group-version-kind`` that accepts the ``fieldValidation``
query parameter; if found it sends ``fieldValidation=Strict`` and lets the server validate.
These documents contain only those operations and no schemas, so kubectl computes
strategic merge patches from its compiled-in types (the PATCH operations deliberately do
not advertise the strategic-merge content type) and ``kubectl explain`` has nothing to show.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .registry import Registry, ResourceType

_PATCH_CONTENT = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
]


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _group_versions(registry: Registry) -> list[tuple[str, str]]:
    return sorted({(t.group, t.version) for t in registry.all_types()})


def _operation(t: ResourceType) -> dict[str, Any]:
    return {
        "operationId": f"patch{t.kind}",
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": t.group, "version": t.version, "kind": t.kind},
        "parameters": [
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
            {"name": "force", "in": "query", "schema": {"type": "boolean"}},
        ],
        "requestBody": {
            "content": {ct: {"schema": {"type": "object"}} for ct in _PATCH_CONTENT},
            "required": True,
        },
        "responses": {"200": {"description": "OK"}},
    }


def document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI v3 document of one group-version, or None if it is not served."""
    if not registry.has_group_version(group, version):
        return None
    paths: dict[str, Any] = {}
    base = "/" + _gv_path(group, version)
    for t in sorted(registry.all_types(), key=lambda t: t.plural):
        if (t.group, t.version) != (group, version):
            continue
        item_path = (
            f"{base}/namespaces/{{namespace}}/{t.plural}/{{name}}"
            if t.namespaced
            else f"{base}/{t.plural}/{{name}}"
        )
        paths[item_path] = {"patch": _operation(t)}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (canary sandbox)", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }


def index(registry: Registry) -> dict[str, Any]:
    """``/openapi/v3``: one entry per served group-version with a content hash."""
    out: dict[str, Any] = {}
    for group, version in _group_versions(registry):
        doc = document(registry, group, version)
        digest = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:64].upper()
        path = _gv_path(group, version)
        out[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": out}
