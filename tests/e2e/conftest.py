"""Fixtures every end-to-end module shares: the sandbox cluster, a client, operators.

`cluster` is a sandbox API server in its own thread with all CRDs installed (ours
and the routers'); `kube` is the async client the tests read it with; `operators`
collects the `canary run` processes a test starts and stops them afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from canary.adapters.kube import KubeClient, connect
from kubesandbox import SandboxThread
from tests.e2e.support import ROOT, OperatorProcess
from tests.http_fixtures import recording_server  # noqa: F401  (a loopback Slack, forge, ...)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SandboxThread]:
    with SandboxThread(speed=10.0, kubeconfig_path=tmp_path / "kubeconfig") as sb:
        for crd in [
            *sorted((ROOT / "crds").glob("*.yaml")),
            *sorted((ROOT / "crds" / "routers").glob("*.yaml")),
        ]:
            sb.apply_file(crd)
        yield sb


@pytest.fixture
async def kube(cluster: SandboxThread) -> AsyncIterator[KubeClient]:
    client = await connect(str(cluster.kubeconfig_path))
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def operators() -> Iterator[list[OperatorProcess]]:
    """The operators a test starts, stopped after it.

    The tail of each one's log is printed at teardown: pytest shows it only when the test
    failed, and a failure on a loaded CI machine is then explained by what the operator did.
    """
    started: list[OperatorProcess] = []
    yield started
    for op in started:
        op.stop()
        tail = op.output().splitlines()[-200:]
        print(f"--- the last {len(tail)} lines of {op.log.name} ---", *tail, sep="\n")
