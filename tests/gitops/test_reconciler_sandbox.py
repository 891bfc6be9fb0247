"""A GitSource pass end to end: a real bare repository, the real Kubernetes adapter and the
sandbox API server (server-side apply over HTTP on loopback)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from canary.adapters.gitops import (
    ANNOTATION_REVISION,
    ANNOTATION_SOURCE,
    FIELD_MANAGER,
    GitSourceReconciler,
    SourceRef,
    Workspace,
    parse_gitsource_spec,
)
from canary.adapters.gitops.kube import PortKubeApply
from canary.adapters.kube import KubeClient
from canary.controller.events import EventRecorder
from canary.controller.gitops import GitOpsWiring
from tests.git_fixtures import BareRepo
from tests.gitops.conftest import configmap, deployment

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: test\n"
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: podinfo
  namespace: test
spec:
  selector: {app: podinfo}
  ports: [{port: 80, targetPort: 9898}]
"""


@pytest.fixture
def app(bare_repo: Callable[..., BareRepo]) -> BareRepo:
    return bare_repo(
        "fleet",
        {
            "apps/ns.yaml": NAMESPACE,
            "apps/podinfo.yaml": deployment() + "---\n" + SERVICE,
            "apps/config.yaml": configmap(),
        },
    )


async def test_apply_mark_and_prune_against_the_sandbox_api(
    app: BareRepo, workspace: Workspace, kube_api: Any
) -> None:
    kube = KubeClient(kube_api, qps=None)
    reconciler = GitSourceReconciler(workspace, PortKubeApply(kube))
    source = SourceRef("flux-system", "fleet")
    spec = parse_gitsource_spec({"url": app.file_url, "path": "apps", "prune": True})

    first = await reconciler.reconcile(source, spec)

    assert first.ready, first.status.conditions
    live = await kube.get("apps/v1", "Deployment", "podinfo", "test")
    assert live is not None
    annotations = live["metadata"]["annotations"]
    assert annotations[ANNOTATION_SOURCE] == "flux-system/fleet"
    assert annotations[ANNOTATION_REVISION] == f"main@sha1:{app.head()}"
    managers = {m.get("manager") for m in live["metadata"].get("managedFields", [])}
    assert FIELD_MANAGER in managers

    app.commit({"apps/config.yaml": None}, "drop the config map")
    second = await reconciler.reconcile(source, spec, previous=first.status)

    assert second.ready, second.status.conditions
    assert [r.name for r in second.pruned] == ["podinfo-config"]
    assert await kube.get("v1", "ConfigMap", "podinfo-config", "test") is None
    assert await kube.get("v1", "Service", "podinfo", "test") is not None


async def test_a_kind_the_server_does_not_know_is_apply_failed_with_its_message(
    app: BareRepo, workspace: Workspace, kube_api: Any
) -> None:
    app.commit(
        {"apps/widget.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"},
        "add a widget",
    )
    reconciler = GitSourceReconciler(workspace, PortKubeApply(KubeClient(kube_api, qps=None)))

    result = await reconciler.reconcile(
        SourceRef("test", "fleet"), parse_gitsource_spec({"url": app.file_url, "path": "apps"})
    )

    ready = result.status.condition("Ready")
    assert ready is not None and ready.reason == "ApplyFailed"
    assert "Widget/test/w (example.com/v1) from apps/widget.yaml document 1" in ready.message
    assert "example.com/v1" in ready.message.split("rejected:", 1)[1]


async def test_a_failed_build_is_a_condition_and_a_warning_event_and_the_fix_applies(
    app: BareRepo, tmp_path: Path, sandbox: Any, kube_api: Any
) -> None:
    """The operator's GitSource job: status and Events through the real Kubernetes adapter."""
    await sandbox.apply_file(ROOT / "crds" / "gitsource.yaml")
    kube = KubeClient(kube_api, qps=None)
    wiring = GitOpsWiring(
        kube,
        cache_dir=tmp_path / "cache",
        author_name="canary-engine",
        author_email="canary-engine@users.noreply.local",
        events=EventRecorder(kube),
    )
    await kube.create(
        {
            "apiVersion": "canary.gitops.dev/v1beta1",
            "kind": "GitSource",
            "metadata": {"name": "fleet", "namespace": "default"},
            "spec": {"url": app.file_url, "path": "apps"},
        }
    )
    broken = app.commit(
        {"apps/kustomization.yaml": "resources: [ns.yaml, podinfo.yaml, missing.yaml]\n"},
        "a kustomization that does not build",
    )

    await wiring.run_pass("default", "fleet")

    gitsource = await kube.get("canary.gitops.dev/v1beta1", "GitSource", "fleet", "default")
    assert gitsource is not None
    (ready,) = [c for c in gitsource["status"]["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "BuildFailed")
    assert ready["message"].startswith(f"main@sha1:{broken}: apps/kustomization.yaml: ")
    assert "missing.yaml" in ready["message"]
    events = [
        e
        for e in await kube.list("v1", "Event", "default")
        if e["involvedObject"].get("kind") == "GitSource"
    ]
    assert [(e["type"], e["reason"], e["message"]) for e in events] == [
        ("Warning", "BuildFailed", ready["message"])
    ]
    assert await kube.get("apps/v1", "Deployment", "podinfo", "test") is None

    fixed = app.commit(
        {"apps/kustomization.yaml": "resources: [ns.yaml, podinfo.yaml, config.yaml]\n"},
        "fix the kustomization",
    )
    await wiring.run_pass("default", "fleet")

    gitsource = await kube.get("canary.gitops.dev/v1beta1", "GitSource", "fleet", "default")
    assert gitsource is not None
    status = gitsource["status"]
    assert status["lastAppliedRevision"] == f"main@sha1:{fixed}"
    assert status["kustomizeVersion"].startswith("v")
    assert await kube.get("apps/v1", "Deployment", "podinfo", "test") is not None
    await wiring.aclose()
