"""Fixtures for the operator commands: a CLI runner, and a sandbox API server holding canaries.

The sandbox runs in its own thread (``SandboxThread``) because CliRunner calls the commands,
which call ``asyncio.run`` themselves. Canaries are created and given a status through the real
HTTP API (the ``/status`` subresource), as the controller would write it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import typer
from typer.testing import CliRunner, Result

from canary.adapters.kube import KubeClient, connect
from kubesandbox import SandboxThread
from tests.sandbox_fixtures import *  # noqa: F403

from ._app import make_app

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"
EXAMPLES = REPO / "examples"
BROKEN = REPO / "tests" / "fixtures" / "broken"
API_VERSION = "canary.gitops.dev/v1beta1"
NAMESPACE = "test"

CANARY_SPEC: dict[str, Any] = {
    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
    "service": {"port": 9898},
    "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10},
}


@pytest.fixture
def app() -> typer.Typer:
    return make_app()


Invoke = Callable[..., Result]


@pytest.fixture
def cli(app: typer.Typer) -> Invoke:
    """``cli("lint", path, input=..., env=...)``: run a command, exceptions propagate."""
    runner = CliRunner()

    def invoke(
        *args: str, input: str | None = None, env: Mapping[str, str] | None = None
    ) -> Result:
        return runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)

    return invoke


@dataclass
class Cluster:
    """A sandbox with canary-engine's CRDs, and helpers to put canaries in it."""

    sandbox: SandboxThread

    @property
    def kubeconfig(self) -> str:
        return str(self.sandbox.kubeconfig_path)

    def run(self, work: Callable[[KubeClient], Awaitable[T]]) -> T:
        """``work(client)`` with a client of the sandbox, in a private event loop."""

        async def main() -> T:
            async with await connect(self.kubeconfig) as client:
                return await work(client)

        return asyncio.run(main())

    def namespace(self, name: str) -> None:
        self.sandbox.apply_manifest(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )

    def canary(
        self,
        name: str = "podinfo",
        namespace: str = NAMESPACE,
        *,
        spec: Mapping[str, Any] | None = None,
        status: Mapping[str, Any] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create a Canary and write ``status`` through the status subresource."""
        self.namespace(namespace)
        meta: dict[str, Any] = {"name": name, "namespace": namespace}
        if annotations:
            meta["annotations"] = dict(annotations)
        body = {
            "apiVersion": API_VERSION,
            "kind": "Canary",
            "metadata": meta,
            "spec": dict(spec or CANARY_SPEC),
        }

        async def create(client: KubeClient) -> dict[str, Any]:
            created = await client.create(body)
            if status is not None:
                created = await client.patch(
                    API_VERSION,
                    "Canary",
                    name,
                    namespace,
                    {"status": dict(status)},
                    subresource="status",
                )
            return created

        return self.run(create)

    def set_status(self, name: str, status: Mapping[str, Any], namespace: str = NAMESPACE) -> None:
        self.run(
            lambda client: client.patch(
                API_VERSION,
                "Canary",
                name,
                namespace,
                {"status": dict(status)},
                subresource="status",
            )
        )

    def get(self, name: str = "podinfo", namespace: str = NAMESPACE) -> dict[str, Any]:
        found = self.run(lambda client: client.get(API_VERSION, "Canary", name, namespace))
        assert found is not None
        return found

    def annotations(self, name: str = "podinfo", namespace: str = NAMESPACE) -> dict[str, str]:
        return dict(self.get(name, namespace)["metadata"].get("annotations") or {})

    def event(
        self,
        name: str,
        message: str,
        *,
        namespace: str = NAMESPACE,
        type: str = "Normal",
        count: int = 1,
        at: str = "2024-05-01T12:00:00Z",
    ) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{name}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": "Canary",
                "name": name,
                "namespace": namespace,
            },
            "reason": "Synced",
            "message": message,
            "type": type,
            "count": count,
            "firstTimestamp": at,
            "lastTimestamp": at,
            "source": {"component": "canary-engine"},
        }
        self.run(lambda client: client.create(body))


@pytest.fixture
def cluster(sandbox_thread_factory: Callable[..., SandboxThread]) -> Iterator[Cluster]:
    sandbox = sandbox_thread_factory(simulate_workloads=False, crds=sorted(CRD_DIR.glob("*.yaml")))
    yield Cluster(sandbox)
