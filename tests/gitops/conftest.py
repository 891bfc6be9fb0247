"""Shared fixtures for the GitOps adapter tests: real git servers and a Git cache per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary.adapters.gitops import PushRetryPolicy, Reverter, Workspace
from tests.git_fixtures import bare_repo, git_daemon, git_http, git_server_root  # noqa: F401
from tests.sandbox_fixtures import kube_api, sandbox, sandbox_factory  # noqa: F401

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: test
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: podinfo
  template:
    metadata:
      labels:
        app: podinfo
    spec:
      containers:
        - name: podinfo
          image: ghcr.io/stefanprodan/podinfo:{version}
          env:
            - name: LOG_LEVEL
              value: {log_level}
"""

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: podinfo-config
  namespace: test
data:
  color: {color}
"""


def deployment(version: str = "6.0.0", *, replicas: int = 2, log_level: str = "info") -> str:
    return DEPLOYMENT.format(version=version, replicas=replicas, log_level=log_level)


def configmap(color: str = "blue") -> str:
    return CONFIGMAP.format(color=color)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "cache", network_timeout=20, local_timeout=20)


@pytest.fixture
def reverter(workspace: Workspace) -> Reverter:
    return Reverter(
        workspace, retry=PushRetryPolicy(attempts=4, initial_delay=0.01, max_delay=0.05)
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start a git server (daemon or smart HTTP) are end-to-end: mark them slow."""
    here = Path(__file__).parent
    for item in items:
        uses_server = {"git_daemon", "git_http"} & set(getattr(item, "fixturenames", ()))
        if uses_server and here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slow)
