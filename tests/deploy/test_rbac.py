"""The RBAC of deploy/ covers every API call the controller makes, and grants nothing else.

The calls are recorded in api_calls.py (with where each comes from). The rendered
ClusterRoles, Roles and bindings are evaluated by a small RBAC authorizer (support.py)
as the API server would for the controller's service account. A scan of the code for
calls with a literal kind catches a new call that was not recorded.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from .api_calls import (
    CONTROLLER_NAMESPACE,
    CRD_NAMES,
    GITSOURCE_DEMO_CALLS,
    LEADER_ELECTION_CALLS,
    LEASE_NAME,
    STARTUP_CALLS,
    WATCHED_NAMESPACE_CALLS,
    ApiCall,
)
from .support import ROOT, Authorizer, Request, render

WATCHED = "apps"  # the namespace overlays/namespaced watches
ALL_RECORDED = {*WATCHED_NAMESPACE_CALLS, *LEADER_ELECTION_CALLS, *STARTUP_CALLS}


def request(call: ApiCall, namespace: str | None, name: str | None = "some-object") -> Request:
    group, resource, verb = call
    if verb in ("list", "watch", "create"):
        name = None  # these requests carry no object name
    return Request(group, resource, verb, namespace, name)


def authorizer(overlay: str, *components: str) -> Authorizer:
    return Authorizer(render(f"overlays/{overlay}", components))


# --------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("call", WATCHED_NAMESPACE_CALLS, ids="/".join)
def test_cluster_wide_allows_the_call_in_every_namespace(call: ApiCall) -> None:
    rbac = authorizer("cluster-wide")
    for namespace in (WATCHED, "team-a", CONTROLLER_NAMESPACE):
        assert rbac.allows(request(call, namespace))
    if call[2] in ("list", "watch"):  # the caches watch all namespaces at once
        assert rbac.allows(request(call, None))


@pytest.mark.parametrize("call", WATCHED_NAMESPACE_CALLS, ids="/".join)
def test_namespaced_allows_the_call_in_the_watched_namespace_only(call: ApiCall) -> None:
    rbac = authorizer("namespaced")
    assert rbac.allows(request(call, WATCHED))
    assert not rbac.allows(request(call, "team-a"))
    assert not rbac.allows(request(call, None))


@pytest.mark.parametrize("overlay", ["cluster-wide", "namespaced"])
def test_leader_election_on_its_lease_only(overlay: str) -> None:
    rbac = authorizer(overlay)
    for call in LEADER_ELECTION_CALLS:
        assert rbac.allows(request(call, CONTROLLER_NAMESPACE, LEASE_NAME)), call
        assert not rbac.allows(request(call, "kube-system", LEASE_NAME)), call
    get, _create, update = LEADER_ELECTION_CALLS
    assert not rbac.allows(request(get, CONTROLLER_NAMESPACE, "someone-elses-lease"))
    assert not rbac.allows(request(update, CONTROLLER_NAMESPACE, "someone-elses-lease"))


@pytest.mark.parametrize("overlay", ["cluster-wide", "namespaced"])
def test_startup_reads_our_crds_and_no_other(overlay: str) -> None:
    rbac = authorizer(overlay)
    (call,) = STARTUP_CALLS
    for name in CRD_NAMES:
        assert rbac.allows(request(call, None, name))
    assert not rbac.allows(request(call, None, "virtualservices.networking.istio.io"))
    assert not rbac.allows(Request(call[0], call[1], "list", None))


# --------------------------------------------------------------------------- nothing else


@pytest.mark.parametrize("overlay", ["cluster-wide", "namespaced"])
def test_the_rules_grant_exactly_the_recorded_calls(overlay: str) -> None:
    granted = authorizer(overlay).granted()
    assert sorted(granted - ALL_RECORDED) == [], "granted but never used"
    assert sorted(ALL_RECORDED - granted) == [], "used but not granted"


def test_no_rule_uses_a_wildcard() -> None:
    for obj in render("overlays/cluster-wide", ("servicemonitor", "gitsource-apply")):
        for rule in obj.get("rules") or []:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(key, []), (
                    f"{obj['kind']} {obj['metadata']['name']}: {rule}"
                )


def test_the_controller_cannot_escalate() -> None:
    rbac = authorizer("cluster-wide")
    for resource in ("roles", "clusterroles", "rolebindings", "clusterrolebindings"):
        for verb in ("create", "update", "patch", "bind", "escalate"):
            assert not rbac.allows(
                Request("rbac.authorization.k8s.io", resource, verb, WATCHED, "x")
            )
    assert not rbac.allows(Request("", "pods", "create", WATCHED))
    assert not rbac.allows(Request("", "pods", "list", WATCHED))
    # Secrets are listed and watched (the watch cache keeps those a target can use, as
    # Flagger's controller does), but only in the namespaces it manages: the namespaced
    # install cannot read another namespace's Secrets.
    namespaced = authorizer("namespaced")
    assert not namespaced.allows(Request("", "secrets", "list", None))
    assert not namespaced.allows(Request("", "secrets", "get", "kube-system", "x"))


# --------------------------------------------------------------------------- GitSource apply


def test_gitsource_apply_component_covers_the_demo_kinds() -> None:
    without = authorizer("cluster-wide")
    with_component = authorizer("cluster-wide", "gitsource-apply")
    for call in GITSOURCE_DEMO_CALLS:
        assert with_component.allows(request(call, "team-a"))
    # The base RBAC cannot apply or prune: the component is what adds it.
    assert not without.allows(request(("apps", "deployments", "delete"), "team-a"))
    assert not without.allows(request(("canary.gitops.dev", "canaries", "create"), "team-a"))
    extra = with_component.granted() - without.granted()
    assert extra <= set(GITSOURCE_DEMO_CALLS)


# --------------------------------------------------------------------------- code scan

#: (apiGroup, resource) of each kind the controller names literally in an API call.
KIND_RESOURCES: dict[str, tuple[str, str]] = {
    "Canary": ("canary.gitops.dev", "canaries"),
    "MetricTemplate": ("canary.gitops.dev", "metrictemplates"),
    "AlertProvider": ("canary.gitops.dev", "alertproviders"),
    "GitSource": ("canary.gitops.dev", "gitsources"),
    "Deployment": ("apps", "deployments"),
    "DaemonSet": ("apps", "daemonsets"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "Service": ("", "services"),
    "ConfigMap": ("", "configmaps"),
    "Secret": ("", "secrets"),
    "Event": ("", "events"),
    "Ingress": ("networking.k8s.io", "ingresses"),
    "VirtualService": ("networking.istio.io", "virtualservices"),
    "DestinationRule": ("networking.istio.io", "destinationrules"),
    "HTTPRoute": ("gateway.networking.k8s.io", "httproutes"),
    "TrafficSplit": ("split.smi-spec.io", "trafficsplits"),
    "Lease": ("coordination.k8s.io", "leases"),
    "CustomResourceDefinition": ("apiextensions.k8s.io", "customresourcedefinitions"),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "kustomizations"),
    "GitRepository": ("source.toolkit.fluxcd.io", "gitrepositories"),
    "Application": ("argoproj.io", "applications"),
    "HelmRelease": ("helm.toolkit.fluxcd.io", "helmreleases"),
    "ImagePolicy": ("image.toolkit.fluxcd.io", "imagepolicies"),
    "ImageRepository": ("image.toolkit.fluxcd.io", "imagerepositories"),
    "ScaledObject": ("keda.sh", "scaledobjects"),
    "HTTPProxy": ("projectcontour.io", "httpproxies"),
    "RouteTable": ("gateway.solo.io", "routetables"),
    "Upstream": ("gloo.solo.io", "upstreams"),
    "TraefikService": ("traefik.io", "traefikservices"),
    "ApisixRoute": ("apisix.apache.org", "apisixroutes"),
    "TrafficRoute": ("kuma.io", "trafficroutes"),
    "VirtualNode": ("appmesh.k8s.aws", "virtualnodes"),
    "VirtualRouter": ("appmesh.k8s.aws", "virtualrouters"),
    "Revision": ("serving.knative.dev", "revisions"),
}
#: Kinds whose name two groups share: the group the call's apiVersion names decides.
GROUPED_RESOURCES: dict[tuple[str, str], str] = {
    ("appmesh.k8s.aws", "VirtualService"): "virtualservices",
    ("serving.knative.dev", "Service"): "services",
}
#: KubeClient (and router ObjectStore) methods → RBAC verbs.
METHOD_VERBS: dict[str, tuple[str, ...]] = {
    "get": ("get",),
    "read": ("get",),
    "list": ("list",),
    "watch": ("watch",),
    "create": ("create",),
    "replace": ("update",),
    "patch": ("patch",),
    "apply": ("patch",),
    "delete": ("delete",),
    "converge": ("get", "create", "update"),
}
RECEIVERS = ("kube", "store")
SCANNED = ("canary/controller", "canary/adapters")
FLAGGER_NAMES = {"FLAGGER_API_VERSION"}


def _module_tuples(tree: ast.Module) -> dict[str, tuple[str, ...]]:
    """Module-level ``NAME = ("...", "...")`` constants (``kube.get(*NAME, ...)``)."""
    out: dict[str, tuple[str, ...]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple):
            values = [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
            if len(values) == len(node.value.elts) and all(isinstance(v, str) for v in values):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        out[target.id] = tuple(str(v) for v in values)
    return out


def _string_constants() -> dict[str, str]:
    """Every module-level ``NAME = "..."`` of the scanned code (``KEDA_API_VERSION`` ...)."""
    out: dict[str, str] = {}
    for directory in SCANNED:
        for path in sorted((ROOT / directory).rglob("*.py")):
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if (
                    isinstance(node, ast.Assign)
                    and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)
                ):
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            out[target.id] = node.value.value
    return out


def _literal(node: ast.expr, strings: dict[str, str]) -> str | None:
    """A string literal, or a module constant named by ``NAME`` or ``module.NAME``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    name = node.id if isinstance(node, ast.Name) else None
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        name = node.attr if node.value.id != "self" else None
    return strings.get(name) if name else None


def scanned_calls() -> Iterator[tuple[str, ApiCall]]:
    """``(where, (group, resource, verb))`` for every API call with a literal kind."""
    strings = _string_constants()
    for directory in SCANNED:
        for path in sorted((ROOT / directory).rglob("*.py")):
            if path.name == "kube.py" and path.parent.name == "adapters":
                continue  # the client itself
            tree = ast.parse(path.read_text(encoding="utf-8"))
            tuples = _module_tuples(tree)
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                if node.func.attr not in METHOD_VERBS:
                    continue
                receiver = ast.unparse(node.func.value).split(".")[-1]
                if receiver not in RECEIVERS:
                    continue
                args: list[ast.expr] = []
                for arg in node.args:
                    if (
                        isinstance(arg, ast.Starred)
                        and isinstance(arg.value, ast.Name)
                        and arg.value.id in tuples
                    ):
                        args += [ast.Constant(v) for v in tuples[arg.value.id]]
                    else:
                        args.append(arg)
                kind = _literal(args[1], strings) if len(args) >= 2 else None
                if kind is None:
                    continue  # the kind is not literal: a generic call (GitSource apply, ...)
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                api_version = _literal(args[0], strings)
                named_group = api_version.rpartition("/")[0] if api_version else None
                if named_group is not None and (named_group, kind) in GROUPED_RESOURCES:
                    group, resource = named_group, GROUPED_RESOURCES[(named_group, kind)]
                else:
                    assert kind in KIND_RESOURCES, (
                        f"{where}: a call on {kind}: add it to KIND_RESOURCES and api_calls.py"
                    )
                    group, resource = KIND_RESOURCES[kind]
                if (
                    kind == "Canary"
                    and isinstance(args[0], ast.Name)
                    and args[0].id in FLAGGER_NAMES
                ):
                    group = "flagger.app"
                for keyword in node.keywords:
                    if keyword.arg == "subresource" and isinstance(keyword.value, ast.Constant):
                        resource = f"{resource}/{keyword.value.value!s}"
                for verb in METHOD_VERBS[node.func.attr]:
                    yield where, (group, resource, verb)


def test_every_call_in_the_code_is_recorded() -> None:
    found = list(scanned_calls())
    assert len(found) >= 20, "the scan found almost nothing: has the code's style changed?"
    missing = sorted({f"{where}: {call}" for where, call in found if call not in ALL_RECORDED})
    assert missing == [], "calls missing from tests/deploy/api_calls.py (and deploy/base/rbac.yaml)"


def test_the_scan_sees_calls_of_each_part() -> None:
    files = {Path(where.split(":")[0]).name for where, _ in scanned_calls()}
    assert {
        "reconcile.py",
        "leader.py",
        "events.py",
        "workloads.py",
        "operator.py",
        "gitops.py",
    } <= files
