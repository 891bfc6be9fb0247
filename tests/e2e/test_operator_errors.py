"""`canary run` when something is wrong, as the person running it sees it (issue 15).

The operator runs as a process (`canary run`), against the sandbox API server or nothing:

* no kubeconfig, an API server nobody answers at, CRDs that are not installed: one line on
  stderr saying what is wrong and what to do, exit code 1, no traceback;
* one 500 from the API server at start-up (a fault proxy in front of the sandbox): one log
  line, tried again, and the operator starts;
* the ``--listen`` port already taken (by a second `canary run`), or the sandbox's port: one
  line naming the address and the flag that changes it, exit code 1;
* the Canary CRD deleted while the operator runs: it keeps running, says so in its log (a
  line per attempt, not per tick) and in /readyz, and carries on when the CRD is back;
* ``provider: istio`` without Istio's CRDs: a ``RouterReady=False`` condition and one Warning
  Event naming the API and what to install, nothing created for the canary (no primary, no
  Services), and the canary initializes once the CRDs are installed.

No test sleeps for synchronisation: each waits for a condition with a generous limit.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from canary.adapters.kube import KubeClient, connect
from kubesandbox import SandboxThread
from tests.e2e.fault_proxy import Fault, FaultProxy, kubeconfig_through
from tests.e2e.support import (
    CANARY,
    OperatorProcess,
    canary_manifest,
    deployment_manifest,
    eventually,
    free_port,
    start_operator,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NS = "default"
API = "canary.gitops.dev/v1beta1"
CANARY_CRD = "canaries.canary.gitops.dev"
CRD_CHECK = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CANARY_CRD}"


# ----------------------------------------------------------------------------- helpers


def run_canary(
    *args: str, env: dict[str, str] | None = None, timeout: float = 90.0
) -> subprocess.CompletedProcess[str]:
    """`canary ARGS` to its end, stdout and stderr apart."""
    environment = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    environment.update(env or {}, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [CANARY, *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The failed command's stderr: exactly one line, ``error: ...``, and exit code 1."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def deployment(name: str = "podinfo") -> dict[str, Any]:
    return deployment_manifest(name, NS, "podinfo:6.0.0", replicas=2, container="app")


def canary(name: str = "podinfo", provider: str = "kubernetes") -> dict[str, Any]:
    analysis = {"interval": "10s", "threshold": 2, "iterations": 2}
    return canary_manifest(name, NS, analysis, provider=provider)


async def status_of(kube: KubeClient, name: str = "podinfo") -> dict[str, Any]:
    obj = await kube.get(API, "Canary", name, NS)
    return dict((obj or {}).get("status") or {})


async def initialized(kube: KubeClient, name: str = "podinfo") -> bool:
    return (await status_of(kube, name)).get("phase") == "Initialized"


async def readyz(op: OperatorProcess) -> httpx.Response | None:
    async with httpx.AsyncClient(timeout=5) as http:
        try:
            return await http.get(f"http://127.0.0.1:{op.port}/readyz")
        except httpx.HTTPError:
            return None


def alive(op: OperatorProcess) -> bool:
    return op.proc is not None and op.proc.poll() is None


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[SandboxThread]:
    """A sandbox with our CRDs only: no Istio, Gateway API or SMI."""
    with SandboxThread(speed=10.0, kubeconfig_path=tmp_path / "kubeconfig") as sb:
        for crd in sorted((ROOT / "crds").glob("*.yaml")):
            sb.apply_file(crd)
        yield sb


@pytest.fixture
async def bare_kube(bare: SandboxThread) -> AsyncIterator[KubeClient]:
    client = await connect(str(bare.kubeconfig_path))
    try:
        yield client
    finally:
        await client.aclose()


# ----------------------------------------------------------------------------- start-up


class TestStartUp:
    def test_no_kubeconfig_is_one_line_and_exit_1(self, tmp_path: Path) -> None:
        proc = run_canary(
            "run", "--listen", f"127.0.0.1:{free_port()}", env={"HOME": str(tmp_path)}
        )
        line = one_error_line(proc)
        assert f"no kubeconfig: {tmp_path}/.kube/config does not exist" in line
        assert "--kubeconfig" in line and "KUBECONFIG" in line

    def test_a_kubeconfig_that_does_not_parse_is_one_line(self, tmp_path: Path) -> None:
        broken = tmp_path / "kubeconfig"
        broken.write_text("clusters: [unclosed\n")
        proc = run_canary(
            "run", "--kubeconfig", str(broken), "--listen", f"127.0.0.1:{free_port()}"
        )
        line = one_error_line(proc)
        assert f"cannot use the kubeconfig {broken}" in line and "--kubeconfig" in line

    def test_an_unreachable_api_server_is_tried_again_then_one_line(
        self, bare: SandboxThread, tmp_path: Path
    ) -> None:
        dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        kubeconfig = kubeconfig_through(bare.kubeconfig_path, dead, tmp_path / "dead.kubeconfig")
        proc = run_canary(
            "run",
            "--kubeconfig",
            str(kubeconfig),
            "--listen",
            f"127.0.0.1:{free_port()}",
            env={"CANARY_STARTUP_TIMEOUT": "3"},
        )
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        retries, last = lines[:-1], lines[-1]
        assert retries and all(
            f"WARNING canary.operator: the API server at {dead}: cannot connect: connection "
            "refused; trying again in" in line
            for line in retries
        ), proc.stderr
        assert last == (
            f"error: cannot reach the API server at {dead} (cannot connect: connection refused; "
            "tried for 3s); check that the cluster is running and that the kubeconfig points "
            "at it (--kubeconfig, --context)"
        ), proc.stderr

    def test_missing_crds_are_one_line_at_once(self, tmp_path: Path) -> None:
        with SandboxThread(speed=10.0, kubeconfig_path=tmp_path / "kubeconfig") as empty:
            proc = run_canary(
                "run",
                "--kubeconfig",
                str(empty.kubeconfig_path),
                "--listen",
                f"127.0.0.1:{free_port()}",
            )
        line = one_error_line(proc)
        assert "the CustomResourceDefinitions are not installed: canaries.canary.gitops.dev" in line
        assert "kubectl apply -f crds/" in line

    async def test_one_500_at_the_crd_check_is_tried_again_and_the_operator_starts(
        self, bare: SandboxThread, tmp_path: Path, operators: list[OperatorProcess]
    ) -> None:
        proxy = await FaultProxy(bare.url, faults=[Fault("GET", CRD_CHECK, status=500)]).start()
        try:
            kubeconfig = kubeconfig_through(
                bare.kubeconfig_path, proxy.url, tmp_path / "proxied.kubeconfig"
            )
            op = OperatorProcess(kubeconfig, tmp_path / "operator.log")
            operators.append(op.start())

            async def ready() -> bool:
                response = await readyz(op)
                return response is not None and response.status_code == 200

            await eventually(ready, timeout=180, what="/readyz to answer 200 after the 500")
            assert proxy.faulted() == [("GET", CRD_CHECK, 500)]
            assert [m for m, p, s in proxy.seen if p == CRD_CHECK] == ["GET", "GET"]
            # Off the loop: the proxy serves the operator's last calls while it stops.
            assert await asyncio.to_thread(op.stop) == 0
        finally:
            await proxy.close()
        output = op.output()
        assert "Traceback" not in output, output
        retries = [line for line in output.splitlines() if "trying again in 1s" in line]
        assert len(retries) == 1, output
        assert "HTTP 500: injected by the test's fault proxy" in retries[0], output


class TestPortsInUse:
    async def test_a_second_canary_run_on_the_same_port_is_one_line_naming_it(
        self, bare: SandboxThread, tmp_path: Path, operators: list[OperatorProcess]
    ) -> None:
        first = start_operator(bare, tmp_path, operators)

        async def serving() -> bool:
            return await readyz(first) is not None

        await eventually(serving, timeout=180, what="the first operator to serve HTTP")
        proc = run_canary(
            "run",
            "--kubeconfig",
            str(first.kubeconfig),
            "--listen",
            f"127.0.0.1:{first.port}",
        )
        line = one_error_line(proc)
        assert line == (
            f"error: cannot serve /metrics, /healthz and /readyz on 127.0.0.1:{first.port}: "
            "address already in use (another canary run on this host?); choose another "
            "address with --listen HOST:PORT"
        )
        assert alive(first), first.output()

    def test_the_sandbox_on_a_port_in_use_is_one_line_naming_the_flag(self, tmp_path: Path) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            proc = run_canary(
                "sandbox",
                "--port",
                str(port),
                "--no-routers",
                "--kubeconfig",
                str(tmp_path / "kubeconfig"),
            )
        line = one_error_line(proc)
        assert line == (
            f"error: cannot serve the sandbox API on 127.0.0.1:{port}: address already in "
            "use (another API server?); choose another port with --port (0: any free port)"
        )


# ----------------------------------------------------------------------------- running


class TestWhileRunning:
    async def test_a_pass_failed_by_the_api_server_is_one_warning_line_and_is_retried(
        self,
        bare: SandboxThread,
        bare_kube: KubeClient,
        tmp_path: Path,
        operators: list[OperatorProcess],
    ) -> None:
        status = f"/apis/canary.gitops.dev/v1beta1/namespaces/{NS}/canaries/podinfo/status"
        proxy = await FaultProxy(bare.url, faults=[Fault("PATCH", status, 503, times=2)]).start()
        try:
            bare.apply_manifest(deployment())
            bare.apply_manifest(canary())
            kubeconfig = kubeconfig_through(
                bare.kubeconfig_path, proxy.url, tmp_path / "proxied.kubeconfig"
            )
            op = OperatorProcess(kubeconfig, tmp_path / "operator.log")
            operators.append(op.start())
            await eventually(
                lambda: initialized(bare_kube), timeout=180, what="the canary to initialize"
            )
            assert len(proxy.faulted()) == 2
            assert await asyncio.to_thread(op.stop) == 0  # the proxy serves it meanwhile
        finally:
            await proxy.close()
        output = op.output()
        assert "Traceback" not in output, output
        failed = [line for line in output.splitlines() if "pass for Canary" in line]
        assert len(failed) == 2, output
        for line in failed:
            assert " WARNING canary.scheduler: pass for Canary default/podinfo failed: " in line
            assert "Unavailable: injected by the test's fault proxy; retrying in" in line

    async def test_the_canary_crd_deleted_and_created_again(
        self,
        bare: SandboxThread,
        bare_kube: KubeClient,
        tmp_path: Path,
        operators: list[OperatorProcess],
    ) -> None:
        bare.apply_manifest(deployment())
        bare.apply_manifest(canary())
        op = start_operator(bare, tmp_path, operators)
        await eventually(
            lambda: initialized(bare_kube), timeout=180, what="the canary to initialize"
        )

        await bare_kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", CANARY_CRD)

        async def not_ready() -> str | None:
            response = await readyz(op)
            if response is None or response.status_code != 503:
                return None
            return response.text

        reason = await eventually(not_ready, timeout=180, what="/readyz to say the CRD is gone")
        assert reason.startswith(
            f"not ready: the CustomResourceDefinition {CANARY_CRD} is not installed"
        ), reason
        assert "kubectl apply -f crds/" in reason

        # While it is gone: one log line per attempt, at a growing delay, not one per tick.
        def not_served_lines() -> list[str]:
            return [
                line
                for line in op.output().splitlines()
                if "Canary (canary.gitops.dev/v1beta1) is not served by the API server" in line
            ]

        async def three_attempts() -> list[str] | None:
            lines = not_served_lines()
            return lines if len(lines) >= 3 else None

        lines = await eventually(three_attempts, timeout=180, what="three attempts to list")
        assert all(" WARNING canary.adapters.cache: " in line for line in lines), lines
        assert [line.rsplit("listing again in ", 1)[1] for line in lines[:3]] == [
            "1s",
            "2s",
            "5s",
        ], lines
        assert alive(op), op.output()
        assert (await readyz(op)) is not None

        bare.apply_file(ROOT / "crds" / "canary.yaml")
        bare.apply_manifest(canary())

        async def ready_again() -> bool:
            response = await readyz(op)
            return response is not None and response.status_code == 200

        await eventually(ready_again, timeout=180, what="/readyz to be ready again")
        await eventually(
            lambda: initialized(bare_kube), timeout=180, what="the new canary to initialize"
        )
        assert op.stop() == 0, op.output()
        output = op.output()
        assert "Traceback" not in output, output
        assert "Canary (canary.gitops.dev/v1beta1) is served again: resuming" in output
        assert len(not_served_lines()) <= 5, output  # 1 + 2 + 5 + 10 s: never one per tick
        assert "pass for Canary" not in output, output

    async def test_istio_without_its_crds_gets_a_condition_and_an_event_and_nothing_else(
        self,
        bare: SandboxThread,
        bare_kube: KubeClient,
        tmp_path: Path,
        operators: list[OperatorProcess],
    ) -> None:
        bare.apply_manifest(deployment())
        bare.apply_manifest(canary(provider="istio"))
        op = start_operator(bare, tmp_path, operators)

        async def router_not_ready() -> dict[str, Any] | None:
            conditions = (await status_of(bare_kube)).get("conditions") or []
            return next((c for c in conditions if c["type"] == "RouterReady"), None)

        condition = await eventually(router_not_ready, timeout=180, what="RouterReady=False")
        message = (
            "provider istio needs networking.istio.io/v1beta1 VirtualService, "
            "networking.istio.io/v1beta1 DestinationRule, which the API server does not "
            "serve: install Istio (its CRDs in networking.istio.io). Nothing is created for "
            "this canary until then"
        )
        assert (condition["status"], condition["reason"], condition["message"]) == (
            "False",
            "APINotServed",
            message,
        )

        async def warnings() -> list[dict[str, Any]]:
            return [
                e
                for e in await bare_kube.list("v1", "Event", NS)
                if (e.get("involvedObject") or {}).get("name") == "podinfo"
                and e.get("type") == "Warning"
            ]

        events = await eventually(warnings, timeout=180, what="the Warning Event")
        assert [e["message"] for e in events] == [message]

        # Nothing was created half-way, and the next checks (2 s, 6 s at --time-scale 0.2)
        # create nothing either.
        async def checked_again() -> bool:
            return "still waiting for networking.istio.io/v1beta1 VirtualService" in op.output()

        await eventually(checked_again, timeout=180, what="a second check of the Istio APIs")
        for kind, name in (
            ("Deployment", "podinfo-primary"),
            ("Service", "podinfo-primary"),
            ("Service", "podinfo-canary"),
            ("Service", "podinfo"),
        ):
            api = "apps/v1" if kind == "Deployment" else "v1"
            assert await bare_kube.get(api, kind, name, NS) is None, (kind, name)
        target = await bare_kube.get("apps/v1", "Deployment", "podinfo", NS)
        assert target is not None and target["spec"]["replicas"] == 2
        assert (await status_of(bare_kube)).get("phase") in (None, "")
        assert alive(op), op.output()

        # Istio installed: the canary initializes and the condition goes.
        bare.apply_file(ROOT / "crds" / "routers" / "istio.yaml")
        await eventually(
            lambda: initialized(bare_kube), timeout=120, what="the canary to initialize"
        )
        assert await router_not_ready() is None
        assert op.stop() == 0, op.output()
        output = op.output()
        assert "Traceback" not in output, output
        assert "pass for Canary" not in output, output  # no failed pass: nothing raised
