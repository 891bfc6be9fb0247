"""The rendered manifests against the sandbox API server: accepted as objects, installed with
the documented ``kubectl apply -k``, and the real operator, running with the credentials of
the controller's service account, makes only calls the rendered RBAC allows."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from canary.controller.operator import run_operator
from canary.settings import Settings
from kubesandbox import Sandbox, SandboxThread

from .api_calls import WATCHED_NAMESPACE_CALLS
from .support import (
    COMPONENTS,
    CONTROLLER_NAMESPACE,
    DEPLOY,
    KUBECTL,
    OVERLAYS,
    SERVICE_ACCOUNT,
    Authorizer,
    Obj,
    Request,
    render,
)
from .test_rbac import ALL_RECORDED

WATCHED = "apps"
USER = f"system:serviceaccount:{CONTROLLER_NAMESPACE}:{SERVICE_ACCOUNT}"
#: Kinds the sandbox serves no API for: a cluster has them only with their operator's CRDs.
NOT_SERVED = {"ServiceMonitor": "the Prometheus Operator's CRDs are not installed in the sandbox"}


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


@pytest.mark.parametrize("overlay", OVERLAYS)
async def test_the_sandbox_accepts_every_object(overlay: str) -> None:
    sb = await Sandbox.start(simulate_workloads=False)
    try:
        await sb.apply_manifest(namespace(WATCHED))  # the namespaced overlay binds into it
        applied = 0
        for obj in render(f"overlays/{overlay}", COMPONENTS):
            if obj["kind"] in NOT_SERVED:
                continue
            stored = await sb.apply_manifest(obj)
            assert stored["metadata"]["name"] == obj["metadata"]["name"]
            assert stored["metadata"].get("uid"), (
                f"{obj['kind']} {obj['metadata']['name']} was not stored"
            )
            applied += 1
        assert applied >= 17
    finally:
        await sb.stop()


@pytest.fixture
def sandbox_thread(tmp_path: Path) -> Iterator[SandboxThread]:
    sb = SandboxThread(speed=10.0, kubeconfig_path=tmp_path / "admin.kubeconfig").start()
    try:
        yield sb
    finally:
        sb.stop()


def kubectl(sb: SandboxThread, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(sb.kubeconfig_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_kubectl_apply_k_installs_the_cluster_wide_overlay(sandbox_thread: SandboxThread) -> None:
    done = kubectl(sandbox_thread, "apply", "-k", str(DEPLOY / "overlays" / "cluster-wide"))
    assert done.returncode == 0, done.stderr
    assert "deployment.apps/canary-engine created" in done.stdout
    got = kubectl(
        sandbox_thread,
        "get",
        "deployment",
        "canary-engine",
        "-n",
        CONTROLLER_NAMESPACE,
        "-o",
        "name",
    )
    assert got.stdout.strip() == "deployment.apps/canary-engine"


def test_the_namespaced_overlay_needs_its_namespace(sandbox_thread: SandboxThread) -> None:
    overlay = str(DEPLOY / "overlays" / "namespaced")
    missing = kubectl(sandbox_thread, "apply", "--server-side", "-k", overlay)
    assert missing.returncode != 0 and f'namespaces "{WATCHED}" not found' in missing.stderr
    sandbox_thread.apply_manifest(namespace(WATCHED))
    done = kubectl(sandbox_thread, "apply", "--server-side", "-k", overlay)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- the operator

PODINFO: Obj = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "podinfo", "namespace": WATCHED, "labels": {"app": "podinfo"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "podinfo"}},
        "template": {
            "metadata": {"labels": {"app": "podinfo"}},
            "spec": {
                "containers": [{"name": "podinfo", "image": "ghcr.io/stefanprodan/podinfo:6.0.0"}]
            },
        },
    },
}
CANARY: Obj = {
    "apiVersion": "canary.gitops.dev/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "podinfo", "namespace": WATCHED},
    "spec": {
        "provider": "kubernetes",
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898},
        "analysis": {"interval": "1s", "threshold": 2, "iterations": 2},
    },
}


def canary_phase(sb: SandboxThread) -> str | None:
    def read() -> Any:
        return sb.store.get("canaries.canary.gitops.dev", "podinfo", WATCHED)

    body = sb.call(read)
    return ((body or {}).get("status") or {}).get("phase")


#: How far each run goes: the whole initialization for the default install; the first pass
#: for the namespaced one (kopf's namespaced watches and the Lease are what differ; each
#: run costs kopf's 5 s shutdown grace, so the directory stays within its time budget).
UNTIL = {"cluster-wide": "Initialized", "namespaced": "Initializing"}


@pytest.mark.slow
@pytest.mark.parametrize("overlay", OVERLAYS)
async def test_the_operator_stays_within_its_rbac(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Install the overlay, run `canary run` as the service account until the Canary is
    initialized, and authorize every request of the audit log against the rendered RBAC."""
    until = UNTIL[overlay]
    objs = render(f"overlays/{overlay}")
    sb = SandboxThread(speed=10.0, kubeconfig_path=tmp_path / "admin.kubeconfig").start()
    try:
        sb.apply_manifest(namespace(WATCHED))
        for obj in objs:
            sb.apply_manifest(obj)
        sb.apply_manifest(PODINFO)
        sb.apply_manifest(CANARY)
        kubeconfig = sb.write_kubeconfig(tmp_path / "controller.kubeconfig", user=USER)
        options = Settings.from_environment(
            {"POD_NAMESPACE": CONTROLLER_NAMESPACE, "POD_NAME": "canary-engine-0"},
            namespaces=(WATCHED,) if overlay == "namespaced" else (),
            kubeconfig=str(kubeconfig),
            leader_election=True,
            listen_host="127.0.0.1",
            listen_port=0,
            identity="canary-engine-0",
            git_cache=tmp_path / "git",
        )
        stop = asyncio.Event()
        operator = asyncio.create_task(run_operator(options, stop=stop))
        phase = None

        def event_written() -> bool:
            """The Event of the phase is written after the status: wait for both."""
            return until != "Initialized" or any(
                e.user == USER and e.resource == "events" and e.verb == "create"
                for e in list(sb.audit)
            )

        try:
            for _ in range(900):  # an outer limit of 90 s: the condition ends the wait
                await asyncio.sleep(0.1)
                phase = canary_phase(sb)
                if (phase == until and event_written()) or operator.done():
                    break
        finally:
            stop.set()
            await asyncio.wait_for(operator, 30)
        audit = [entry for entry in sb.audit if entry.user == USER]
    finally:
        sb.stop()

    rbac = Authorizer(objs)
    denied: set[str] = set()
    seen: set[tuple[str, str, str]] = set()
    for entry in audit:
        if not entry.resource:
            continue  # discovery (/api, /apis/...): every authenticated user may read it
        resource = f"{entry.resource}/{entry.subresource}" if entry.subresource else entry.resource
        name = None if entry.verb in ("create", "list", "watch") else (entry.name or None)
        request = Request(entry.api_group, resource, entry.verb, entry.namespace or None, name)
        if not rbac.allows(request):
            denied.add(f"{entry.verb} {entry.path}")
        seen.add((entry.api_group, resource, entry.verb))
    assert denied == set(), "requests the RBAC of the overlay would refuse"
    assert seen - ALL_RECORDED == set(), "calls missing from tests/deploy/api_calls.py"
    assert phase == until, (
        f"the Canary did not get to {until} (phase {phase}); calls seen: {sorted(seen)}"
    )
    # The run exercised the main parts: kopf's watch, the Lease, workloads, Services, status.
    expected = [
        ("canary.gitops.dev", "canaries", "watch"),
        ("coordination.k8s.io", "leases", "create"),
        ("apps", "deployments", "create"),
        ("", "services", "create"),
        ("canary.gitops.dev", "canaries/status", "patch"),
    ]
    if until == "Initialized":
        expected += [("apps", "deployments", "patch"), ("", "events", "create")]
    assert sorted(set(expected) - seen) == []
    assert len(seen & set(WATCHED_NAMESPACE_CALLS)) >= 8
