"""Rendering deploy/ with kubectl's kustomize, and a small RBAC authorizer over the result."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

OVERLAYS = ("cluster-wide", "namespaced")
COMPONENTS = ("servicemonitor", "gitsource-apply")
CONTROLLER_NAMESPACE = "canary-engine"
SERVICE_ACCOUNT = "canary-engine"

Obj = dict[str, Any]


_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: CRDs are big


#: deploy/ uses kustomize components, `labels`, `replacements` and local-config objects:
#: kustomize v5, built into kubectl 1.27 and newer (Debian 12's kubectl 1.20 has v2).
MIN_KUSTOMIZE = (5, 0)


class RenderError(Exception):
    pass


@functools.cache
def kustomize_version() -> tuple[int, ...]:
    """The version of the kustomize built into kubectl, e.g. ``(5, 5, 0)``."""
    done = subprocess.run(
        [KUBECTL, "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RenderError(f"kubectl version failed:\n{done.stderr}")
    raw = str(json.loads(done.stdout).get("kustomizeVersion") or "v0")
    return tuple(int(part) for part in raw.lstrip("v").split("-")[0].split(".") if part.isdigit())


def _kustomize(directory: Path) -> list[Obj]:
    done = subprocess.run(
        [KUBECTL, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        found = ".".join(map(str, kustomize_version()))
        raise RenderError(
            f"kubectl kustomize {directory} failed (kubectl's kustomize is v{found}; deploy/ needs "
            f"v{'.'.join(map(str, MIN_KUSTOMIZE))} or newer):\n{done.stderr}"
        )
    return [doc for doc in yaml.load_all(done.stdout, Loader=_LOADER) if doc]


@functools.cache
def _render_cached(relative: str, components: tuple[str, ...]) -> tuple[str, ...]:
    if not components:
        objs = _kustomize(DEPLOY / relative)
    else:
        # A throwaway kustomization next to nothing: the overlay and the components are
        # directories, which kustomize may load from outside its root (files it may not).
        with tempfile.TemporaryDirectory(prefix="canary-deploy-") as tmp:
            up = os.path.relpath(DEPLOY, tmp)
            lines = [
                "apiVersion: kustomize.config.k8s.io/v1beta1",
                "kind: Kustomization",
                "resources:",
                f"  - {up}/{relative}",
                "components:",
                *(f"  - {up}/components/{c}" for c in components),
            ]
            Path(tmp, "kustomization.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
            objs = _kustomize(Path(tmp))
    # Cache JSON text so that every caller gets fresh, mutable objects.
    return tuple(json.dumps(o) for o in objs)


def render(relative: str, components: Sequence[str] = ()) -> list[Obj]:
    """``kubectl kustomize deploy/<relative>``, optionally with components added."""
    return [json.loads(text) for text in _render_cached(relative, tuple(components))]


def kinds(objs: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted(str(o["kind"]) for o in objs)


def find(objs: Iterable[Obj], kind: str, name: str, namespace: str | None = None) -> Obj:
    for obj in objs:
        meta = obj.get("metadata") or {}
        if obj.get("kind") == kind and meta.get("name") == name:
            if namespace is None or meta.get("namespace") == namespace:
                return obj
    raise LookupError(f"no {kind} {name} (namespace {namespace}) in the rendered output")


def controller_container(objs: Iterable[Obj]) -> Obj:
    deployment = find(objs, "Deployment", "canary-engine", CONTROLLER_NAMESPACE)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: Obj = containers[0]
    return container


# --------------------------------------------------------------------------- RBAC


@dataclass(frozen=True)
class Request:
    """One API request as the RBAC authorizer sees it. ``namespace`` None: cluster scope."""

    group: str
    resource: str  # with "/subresource" when there is one
    verb: str
    namespace: str | None
    name: str | None = None


def _rule_allows(rule: Mapping[str, Any], request: Request) -> bool:
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    verbs = rule.get("verbs") or []
    names = rule.get("resourceNames") or []
    if "*" not in groups and request.group not in groups:
        return False
    if "*" not in verbs and request.verb not in verbs:
        return False
    base, _, sub = request.resource.partition("/")
    resource_ok = (
        "*" in resources
        or request.resource in resources
        or (bool(sub) and f"*/{sub}" in resources)
        or (bool(sub) and f"{base}/*" in resources)
    )
    if not resource_ok:
        return False
    return not names or (request.name is not None and request.name in names)


class Authorizer:
    """RBAC for one service account over a set of rendered objects.

    Implements the parts of Kubernetes' RBAC authorizer the manifests use: ClusterRoleBindings
    grant a ClusterRole everywhere; RoleBindings grant a Role of their namespace, or a
    ClusterRole, in their namespace only; rules match by apiGroups, resources (with
    subresources and ``*``), verbs and resourceNames. Aggregation is not supported (and
    not used).
    """

    def __init__(
        self,
        objs: Iterable[Obj],
        namespace: str = CONTROLLER_NAMESPACE,
        name: str = SERVICE_ACCOUNT,
    ) -> None:
        objs = list(objs)
        cluster_roles = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ClusterRole"}
        roles = {
            (o["metadata"]["namespace"], o["metadata"]["name"]): o
            for o in objs
            if o["kind"] == "Role"
        }
        for cluster_role in cluster_roles.values():
            assert "aggregationRule" not in cluster_role, (
                "aggregated ClusterRoles are not supported"
            )
        # (namespace or None, rules)
        self.grants: list[tuple[str | None, list[Mapping[str, Any]]]] = []
        for binding in objs:
            if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
                continue
            if not any(
                s.get("kind") == "ServiceAccount"
                and s.get("name") == name
                and s.get("namespace") == namespace
                for s in binding.get("subjects") or []
            ):
                continue
            ref = binding["roleRef"]
            where = (
                None
                if binding["kind"] == "ClusterRoleBinding"
                else binding["metadata"]["namespace"]
            )
            role: Obj | None
            if ref["kind"] == "ClusterRole":
                role = cluster_roles.get(ref["name"])
            else:
                assert where is not None, "a ClusterRoleBinding cannot refer to a Role"
                role = roles.get((where, ref["name"]))
            if role is None:
                raise LookupError(
                    f"{binding['kind']} {binding['metadata']['name']} refers to a missing {ref['kind']} {ref['name']}"
                )
            self.grants.append((where, list(role.get("rules") or [])))

    def allows(self, request: Request) -> bool:
        for where, rules in self.grants:
            if where is not None and where != request.namespace:
                continue  # a RoleBinding grants nothing outside its namespace (nor cluster-scoped)
            if any(_rule_allows(rule, request) for rule in rules):
                return True
        return False

    def granted(self) -> set[tuple[str, str, str]]:
        """Every (group, resource, verb) some rule grants (wildcards kept as they are)."""
        out: set[tuple[str, str, str]] = set()
        for _, rules in self.grants:
            for rule in rules:
                for group in rule.get("apiGroups") or []:
                    for resource in rule.get("resources") or []:
                        for verb in rule.get("verbs") or []:
                            out.add((group, resource, verb))
        return out
