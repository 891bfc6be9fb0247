"""Thousands of objects stay fast; the thread wrapper and the ``canary sandbox`` entry point work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubesandbox import SandboxThread, load_manifests
from tests.sandbox_fixtures import KUBECTL

from .conftest import WIDGET_CRD, wait_until

ROOT = Path(__file__).resolve().parents[2]


class TestManyObjects:
    async def test_gets_stay_fast_with_thousands_of_objects(self, api: Any) -> None:
        for i in range(3000):
            api.store.create(
                "configmaps",
                "default",
                {"metadata": {"name": f"cm-{i}", "labels": {"i": str(i % 10)}}},
                manager="t",
            )
        async with aiohttp.ClientSession() as session:
            durations = []
            for i in range(0, 3000, 30):
                started = time.perf_counter()
                async with session.get(
                    f"{api.url}/api/v1/namespaces/default/configmaps/cm-{i}"
                ) as rsp:
                    assert rsp.status == 200
                    await rsp.read()
                durations.append(time.perf_counter() - started)
            durations.sort()
            assert durations[len(durations) // 2] < 0.01  # median GET under 10 ms at 3000 objects
            async with session.get(
                f"{api.url}/api/v1/namespaces/default/configmaps", params={"labelSelector": "i=3"}
            ) as rsp:
                body = await rsp.json()
            assert len(body["items"]) == 300


class TestSandboxThread:
    def test_thread_serves_and_stops(self, tmp_path: Path) -> None:
        with SandboxThread(
            simulate_workloads=False, kubeconfig_path=tmp_path / "kc", crds=[]
        ) as sb:
            sb.apply_manifest(WIDGET_CRD)
            assert sb.url.startswith("http://127.0.0.1:")
            assert "server: " + sb.url in sb.kubeconfig_path.read_text()
            assert (
                sb.call(sb.store.get, "customresourcedefinitions", "widgets.example.gitops.dev")
                is not None
            )
            url = sb.url
        with pytest.raises(OSError):
            import socket

            host, port = url.removeprefix("http://").split(":")
            socket.create_connection((host, int(port)), timeout=1).close()

    def test_load_manifests_expands_lists_and_directories(self, tmp_path: Path) -> None:
        (tmp_path / "a.yaml").write_text(
            "kind: ConfigMapList\napiVersion: v1\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: x}}\n---\n"
        )
        (tmp_path / "b.yml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\n")
        assert [o["metadata"]["name"] for o in load_manifests(tmp_path)] == ["x", "y"]
        (tmp_path / "bad.yaml").write_text("- just\n- a list\n")
        with pytest.raises(ValueError, match=r"bad\.yaml"):
            load_manifests(tmp_path / "bad.yaml")


@pytest.mark.slow
def test_run_sandbox_serves_until_sigterm(tmp_path: Path) -> None:
    import yaml

    crd = tmp_path / "crd.yaml"
    crd.write_text(yaml.safe_dump(WIDGET_CRD))
    kubeconfig = tmp_path / "kubeconfig"
    code = (
        "from pathlib import Path; from kubesandbox import run_sandbox; "
        f"run_sandbox('127.0.0.1', 0, Path({str(kubeconfig)!r}), [Path({str(crd)!r})])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: kubeconfig.exists() or proc.poll() is not None, within=20)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "KUBECACHEDIR": str(tmp_path / "cache"),
            "HOME": str(tmp_path),
        }
        out = subprocess.run(
            [KUBECTL, "get", "widgets"], env=env, capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0, out.stderr
        assert "No resources found" in out.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "sandbox API server: http://127.0.0.1:" in stdout
    assert f"kubeconfig: {kubeconfig}" in stdout


class TestSharedFixtures:
    async def test_sandbox_and_kube_api_fixtures(self, sandbox: Any, kube_api: Any) -> None:
        from kubernetes.aio import client as k8s

        core: Any = k8s.CoreV1Api(kube_api)
        nodes = await core.list_node()
        assert sorted(n.metadata.name for n in nodes.items) == ["sandbox-node-1", "sandbox-node-2"]
        assert sandbox.audit[-1].user == "admin" and sandbox.audit[-1].resource == "nodes"

    def test_sandbox_thread_and_kubectl_fixtures(
        self, sandbox_thread: SandboxThread, kubectl: Any
    ) -> None:
        out = kubectl("get", "nodes", "-o", "name")
        assert out.stdout.split() == ["node/sandbox-node-1", "node/sandbox-node-2"]
        assert any(e.resource == "nodes" and e.verb == "list" for e in list(sandbox_thread.audit))
