"""deploy/: every overlay renders with kubectl's kustomize, and the output is what the API
server accepts (offline, against the Kubernetes OpenAPI schemas of kubernetes-validate)."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter

import kubernetes_validate
import pytest
import yaml

from .support import (
    COMPONENTS,
    CONTROLLER_NAMESPACE,
    DEPLOY,
    KUBECTL,
    MIN_KUSTOMIZE,
    OVERLAYS,
    ROOT,
    Obj,
    controller_container,
    find,
    kinds,
    kustomize_version,
    render,
)

#: The oldest and the newest Kubernetes the manifests are checked against.
KUBERNETES_VERSIONS = ("1.27.0", "1.37.0")

COMMON_LABELS = {
    "app.kubernetes.io/part-of": "canary-engine",
    "app.kubernetes.io/managed-by": "kustomize",
}

#: Kinds kubernetes-validate has no schema for, and why that is acceptable.
NO_SCHEMA = {
    "ServiceMonitor": "a Prometheus Operator CRD, not part of Kubernetes; "
    "test_servicemonitor_scrapes_the_metrics_port checks it against the Service instead",
}

BASE_KINDS = [
    "ClusterRole",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "CustomResourceDefinition",
    "CustomResourceDefinition",
    "CustomResourceDefinition",
    "Deployment",
    "Namespace",
    "PodDisruptionBudget",
    "Role",
    "RoleBinding",
    "Service",
    "ServiceAccount",
]
EXPECTED_KINDS = {
    "base": BASE_KINDS,
    "overlays/cluster-wide": sorted([*BASE_KINDS, "ClusterRoleBinding"]),
    "overlays/namespaced": sorted([*BASE_KINDS, "RoleBinding"]),
}
COMPONENT_KINDS = {
    "servicemonitor": ["ServiceMonitor"],
    "gitsource-apply": ["ClusterRole", "ClusterRoleBinding"],
}

RENDERINGS = [
    *((target, ()) for target in EXPECTED_KINDS),
    *((f"overlays/{overlay}", (component,)) for overlay in OVERLAYS for component in COMPONENTS),
    ("overlays/cluster-wide", COMPONENTS),
]


def rendering_id(case: tuple[str, tuple[str, ...]]) -> str:
    target, components = case
    return "+".join([target, *components])


def all_objects() -> list[tuple[str, Obj]]:
    """Every distinct rendered object, with a label naming one rendering it came from."""
    seen: dict[str, tuple[str, Obj]] = {}
    for target, components in RENDERINGS:
        for obj in render(target, components):
            key = json.dumps(obj, sort_keys=True)
            seen.setdefault(
                key,
                (
                    f"{rendering_id((target, components))}: {obj['kind']} {obj['metadata']['name']}",
                    obj,
                ),
            )
    return sorted(seen.values(), key=lambda pair: pair[0])


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("case", RENDERINGS, ids=rendering_id)
def test_renders_with_the_expected_kinds(case: tuple[str, tuple[str, ...]]) -> None:
    target, components = case
    expected = list(EXPECTED_KINDS[target])
    for component in components:
        expected += COMPONENT_KINDS[component]
    assert kinds(render(target, components)) == sorted(expected)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_namespaced_object_lands_in_the_controller_namespace(overlay: str) -> None:
    objs = render(f"overlays/{overlay}", COMPONENTS)
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}
    for obj in objs:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in cluster_scoped:
            assert namespace is None, f"{obj['kind']} {obj['metadata']['name']}"
        elif (
            overlay == "namespaced"
            and obj["kind"] == "RoleBinding"
            and obj["metadata"]["name"] == "canary-engine"
        ):
            assert namespace == "apps"  # the watched namespace
        else:
            assert namespace == CONTROLLER_NAMESPACE, f"{obj['kind']} {obj['metadata']['name']}"


def test_no_two_objects_share_a_name() -> None:
    for overlay in OVERLAYS:
        objs = render(f"overlays/{overlay}", COMPONENTS)
        keys = Counter(
            (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs
        )
        assert [k for k, n in keys.items() if n > 1] == []


# --------------------------------------------------------------------------- offline validation


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_for_the_api_server(version: str) -> None:
    checked = skipped = 0
    problems: list[str] = []
    for label, obj in all_objects():
        if obj["kind"] in NO_SCHEMA:
            skipped += 1
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            problems.append(f"{label}: {where}: {exc.message}")
        checked += 1
    assert problems == []
    assert checked >= 17 and skipped == 1


def test_strict_validation_would_catch_a_misspelt_field() -> None:
    deployment = copy.deepcopy(find(render("base"), "Deployment", "canary-engine"))
    security = deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    security["readOnlyRootFileSystem"] = security.pop("readOnlyRootFilesystem")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_kubernetes_validate_has_no_schema_for_the_skipped_kinds() -> None:
    monitor = find(
        render("overlays/cluster-wide", ("servicemonitor",)), "ServiceMonitor", "canary-engine"
    )
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(monitor, KUBERNETES_VERSIONS[-1], strict=True)


# --------------------------------------------------------------------------- CRD copies


def test_deploy_crds_are_identical_to_crds() -> None:
    sources = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    copies = sorted(
        p.name for p in (DEPLOY / "crds").glob("*.yaml") if p.name != "kustomization.yaml"
    )
    assert copies == sources, "run deploy/sync-crds.sh"
    for name in sources:
        assert (DEPLOY / "crds" / name).read_bytes() == (ROOT / "crds" / name).read_bytes(), (
            f"deploy/crds/{name} differs from crds/{name}: run deploy/sync-crds.sh"
        )
    kustomization = yaml.safe_load(
        (DEPLOY / "crds" / "kustomization.yaml").read_text(encoding="utf-8")
    )
    assert sorted(kustomization["resources"]) == sources


def test_rendered_crds_are_the_crds() -> None:
    rendered = {
        o["metadata"]["name"]: o for o in render("base") if o["kind"] == "CustomResourceDefinition"
    }
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        source = yaml.safe_load(path.read_text(encoding="utf-8"))
        expected = copy.deepcopy(source)
        expected["metadata"]["labels"] = {**source["metadata"].get("labels", {}), **COMMON_LABELS}
        assert rendered[source["metadata"]["name"]] == expected


# --------------------------------------------------------------------------- the controller


def test_deployment_runs_the_operator_with_leader_election() -> None:
    objs = render("overlays/cluster-wide")
    deployment = find(objs, "Deployment", "canary-engine")
    container = controller_container(objs)
    assert deployment["spec"]["replicas"] == 2
    assert container["image"] == "ghcr.io/canary-engine/canary-engine:0.1.0"
    args = container["args"]
    assert args[0] == "run"
    assert "--leader-election" in args
    assert args[args.index("--log-format") + 1] == "json"
    assert args[args.index("--git-cache") + 1] == "/var/cache/canary-engine"
    assert not any(a.startswith("--namespace") for a in args)


def test_pod_identity_comes_from_the_downward_api() -> None:
    env = {e["name"]: e for e in controller_container(render("base"))["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_probes_and_port() -> None:
    container = controller_container(render("base"))
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_resources_are_requested_and_limited() -> None:
    resources = controller_container(render("base"))["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"cpu", "memory"}


def test_security_context_meets_the_restricted_pod_security_standard() -> None:
    objs = render("base")
    pod = find(objs, "Deployment", "canary-engine")["spec"]["template"]["spec"]
    container = controller_container(objs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    namespace = find(objs, "Namespace", CONTROLLER_NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_writable_paths_are_volumes() -> None:
    objs = render("base")
    pod = find(objs, "Deployment", "canary-engine")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in controller_container(objs)["volumeMounts"]}
    assert set(mounts) == {"/var/cache/canary-engine", "/tmp"}
    for name in mounts.values():
        assert "emptyDir" in volumes[name]
    env = {e["name"]: e.get("value") for e in controller_container(objs)["env"]}
    assert env["HOME"] == env["TMPDIR"] == "/tmp"


def test_service_and_pdb_select_the_controller_pods() -> None:
    objs = render("base")
    labels = find(objs, "Deployment", "canary-engine")["spec"]["template"]["metadata"]["labels"]
    service = find(objs, "Service", "canary-engine")
    pdb = find(objs, "PodDisruptionBudget", "canary-engine")
    for selector in (service["spec"]["selector"], pdb["spec"]["selector"]["matchLabels"]):
        assert selector and all(labels.get(k) == v for k, v in selector.items())
    assert service["spec"]["ports"] == [
        {"name": "http-metrics", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]
    assert pdb["spec"]["minAvailable"] == 1


def test_servicemonitor_scrapes_the_metrics_port() -> None:
    objs = render("overlays/cluster-wide", ("servicemonitor",))
    monitor = find(objs, "ServiceMonitor", "canary-engine", CONTROLLER_NAMESPACE)
    service = find(objs, "Service", "canary-engine", CONTROLLER_NAMESPACE)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    labels = service["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [CONTROLLER_NAMESPACE]}
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert [(e["port"], e["path"]) for e in monitor["spec"]["endpoints"]] == [
        ("http-metrics", "/metrics")
    ]
    assert monitor["spec"]["endpoints"][0]["port"] in port_names


def test_namespaced_overlay_watches_one_namespace() -> None:
    objs = render("overlays/namespaced")
    container = controller_container(objs)
    assert "--namespace=$(WATCH_NAMESPACE)" in container["args"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    binding = find(objs, "RoleBinding", "canary-engine")
    assert env["WATCH_NAMESPACE"] == binding["metadata"]["namespace"] == "apps"
    # The kubelet expands $(WATCH_NAMESPACE) in args from the container's env.
    reference = re.fullmatch(r"--namespace=\$\(([A-Z_]+)\)", container["args"][-1])
    assert reference and reference.group(1) in env
    # the settings object is local to kustomize and never reaches the cluster
    assert not [o for o in objs if o["kind"] == "ConfigMap"]
    assert not [
        o
        for o in objs
        if o["kind"] == "ClusterRoleBinding" and o["metadata"]["name"] == "canary-engine"
    ]


# --------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    out: list[tuple[str, str]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    return instructions[starts[-1] :]


def test_dockerfile_runs_canary_as_a_numeric_non_root_user() -> None:
    stage = final_stage(dockerfile_instructions())
    assert stage[0] == ("FROM", "python:3.11-slim")
    users = [rest for word, rest in stage if word == "USER"]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0
    pod = find(render("base"), "Deployment", "canary-engine")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(user)
    entrypoints = [rest for word, rest in stage if word == "ENTRYPOINT"]
    assert entrypoints and yaml.safe_load(entrypoints[-1]) == ["canary"]


def test_dockerfile_installs_git_and_the_project() -> None:
    instructions = dockerfile_instructions()
    stage = final_stage(instructions)
    runs = " ".join(rest for word, rest in stage if word == "RUN")
    assert re.search(r"apt-get install .*\bgit\b", runs)
    assert "openssh-client" in runs
    assert re.search(r"pip install .*\.whl", runs)
    copied: list[str] = []
    for word, rest in instructions:
        if word == "COPY" and not rest.startswith("--from"):
            copied += rest.split()[:-1]
    for needed in ("pyproject.toml", "canary", "analysis", "crds"):
        assert needed in copied, f"the Dockerfile does not copy {needed}"
        assert (ROOT / needed).exists()


def test_dockerfile_matches_the_git_cache_of_the_deployment() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert "CANARY_GIT_CACHE=/var/cache/canary-engine" in text
    assert "HOME=/tmp" in text


def test_install_doc_names_the_placeholder_image_and_the_overlays() -> None:
    doc = (ROOT / "docs" / "install.md").read_text(encoding="utf-8")
    assert "ghcr.io/canary-engine/canary-engine:0.1.0" in doc
    for overlay in OVERLAYS:
        assert f"deploy/overlays/{overlay}" in doc


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_carries_the_part_of_label(overlay: str) -> None:
    """docs/install.md uninstalls the cluster roles by this label."""
    for obj in render(f"overlays/{overlay}", COMPONENTS):
        labels = obj["metadata"].get("labels") or {}
        assert labels.get("app.kubernetes.io/part-of") == "canary-engine", (
            f"{obj['kind']} {obj['metadata']['name']}"
        )


def test_kubectl_has_a_recent_enough_kustomize() -> None:
    found = kustomize_version()
    assert found >= MIN_KUSTOMIZE, (
        f"kubectl at {KUBECTL} has kustomize {found}; deploy/ needs {MIN_KUSTOMIZE} or newer "
        "(kubectl 1.27+)"
    )
