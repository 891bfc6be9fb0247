"""A GitSource pass end to end: a real bare repository, the real Kubernetes adapter and the
sandbox API server (server-side apply over HTTP on loopback)."""

from __future__ import annotations

from collections.abc import Callable
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
from tests.git_fixtures import BareRepo
from tests.gitops.conftest import configmap, deployment

pytestmark = pytest.mark.slow

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
