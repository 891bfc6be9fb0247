"""Fixtures: a sandbox API server on loopback and a `KubeClient` connected to it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from canary.adapters.kube import KubeClient, connect
from canary.adapters.workloads import KubeWorkloads
from canary.model.canary import API_VERSION, Canary, parse_canary

T = TypeVar("T")

NAMESPACE = "test"


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    within: float = 10.0,
    interval: float = 0.05,
) -> T:
    """Poll ``probe`` until ``accept`` holds for its result; fail with the last one after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {within}s; last value: {value!r}")
        await asyncio.sleep(interval)


async def _client(sandbox: Any, tmp_path: Path) -> KubeClient:
    path = sandbox.write_kubeconfig(tmp_path / "kubeconfig")
    client = await connect(str(path), request_timeout=10.0)
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    return client


@pytest.fixture
async def api_sandbox() -> AsyncIterator[Any]:
    """The sandbox API server alone (no workload simulation)."""
    from kubesandbox import Sandbox

    sandbox = await Sandbox.start(simulate_workloads=False)
    try:
        yield sandbox
    finally:
        await sandbox.stop()


@pytest.fixture
async def kube(api_sandbox: Any, tmp_path: Path) -> AsyncIterator[KubeClient]:
    client = await _client(api_sandbox, tmp_path)
    try:
        yield client
    finally:
        await client.aclose()


def minimal_crd(group: str, kind: str, plural: str) -> dict[str, Any]:
    """A CRD that accepts any spec: these tests exercise the adapters, not the schema
    (tests/crds does), and the full schema costs half a second to install."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1beta1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


async def install_canary_crd(client: KubeClient) -> None:
    await client.create(minimal_crd("canary.gitops.dev", "Canary", "canaries"))


async def make_canary(
    client: KubeClient,
    name: str = "podinfo",
    *,
    target: str = "podinfo",
    kind: str = "Deployment",
    **spec: Any,
) -> Canary:
    """Create a Canary in the sandbox and parse it as the controller would (real uid)."""
    body: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target},
        "service": {"port": 9898},
        "analysis": {"interval": "10s", "threshold": 2, "iterations": 3},
    }
    body.update(spec)
    created = await client.create(
        {
            "apiVersion": API_VERSION,
            "kind": "Canary",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": body,
        }
    )
    return parse_canary(created)


@pytest.fixture
async def workloads(kube: KubeClient) -> KubeWorkloads:
    await install_canary_crd(kube)
    return KubeWorkloads(kube)


@pytest.fixture
async def sim_sandbox() -> AsyncIterator[Any]:
    """The sandbox API server with its workload simulator (pods become ready quickly)."""
    from kubesandbox import Sandbox

    sandbox = await Sandbox.start(simulate_workloads=True, ready_delay=0.2)
    try:
        yield sandbox
    finally:
        await sandbox.stop()


@pytest.fixture
async def sim_kube(sim_sandbox: Any, tmp_path: Path) -> AsyncIterator[KubeClient]:
    client = await _client(sim_sandbox, tmp_path)
    try:
        await install_canary_crd(client)
        yield client
    finally:
        await client.aclose()
