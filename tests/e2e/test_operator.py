"""The operator end to end: `canary run` as a process, the sandbox as the cluster.

Issue 3's behaviours, checked the way a user would see them: initialization
creates the primary and the Services and scales the target to zero; an image
change progresses and is promoted; a canary that never becomes ready is rolled
back at its progress deadline; a controller killed mid-run is replaced by a new
one that resumes from the status with no second promotion; two controllers at
once elect one leader, and the other takes over when the leader dies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from canary.adapters.kube import KubeClient
from kubesandbox import SandboxThread
from tests.e2e.support import OperatorProcess, eventually, start_operator

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NS = "default"


def deployment(image: str, *, never_ready: bool = False) -> dict[str, Any]:
    annotations = {"sandbox.canary.gitops.dev/behaviour": "never-ready"} if never_ready else {}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "podinfo"}},
            "template": {
                "metadata": {"labels": {"app": "podinfo"}, "annotations": annotations},
                "spec": {
                    "containers": [
                        {"name": "podinfod", "image": image, "ports": [{"containerPort": 9898}]}
                    ]
                },
            },
        },
    }


def canary(*, deadline: int = 60, iterations: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "canary.gitops.dev/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "progressDeadlineSeconds": deadline,
            "service": {"port": 9898},
            "analysis": {"interval": "10s", "threshold": 2, "iterations": iterations},
        },
    }


async def status(kube: KubeClient) -> dict[str, Any]:
    obj = await kube.get("canary.gitops.dev/v1beta1", "Canary", "podinfo", NS)
    return dict((obj or {}).get("status") or {})


async def phase_is(kube: KubeClient, phase: str) -> bool:
    return (await status(kube)).get("phase") == phase


async def events(kube: KubeClient) -> dict[str, int]:
    """Event message -> how many times it was recorded (aggregated Events count)."""
    out: dict[str, int] = {}
    for event in await kube.list("v1", "Event", NS):
        if (event.get("involvedObject") or {}).get("kind") == "Canary":
            message = str(event.get("message"))
            out[message] = out.get(message, 0) + int(event.get("count") or 1)
    return out


async def _contains(text: Any, fragment: str) -> str:
    value = str(await text)
    return value if fragment in value else ""


async def initialized(kube: KubeClient) -> None:
    await eventually(
        lambda: phase_is(kube, "Initialized"), timeout=30, what="the canary to initialize"
    )


async def set_image(kube: KubeClient, image: str, *, never_ready: bool = False) -> None:
    patch = deployment(image, never_ready=never_ready)["spec"]["template"]
    await kube.patch("apps/v1", "Deployment", "podinfo", NS, {"spec": {"template": patch}})


class TestLifecycle:
    async def test_initialization_creates_the_primary_and_services_and_scales_the_target_to_zero(
        self,
        cluster: SandboxThread,
        kube: KubeClient,
        tmp_path: Path,
        operators: list[OperatorProcess],
    ) -> None:
        cluster.apply_manifest(deployment("podinfo:v1"))
        cluster.apply_manifest(canary())
        start_operator(cluster, tmp_path, operators)
        await initialized(kube)

        primary = await kube.get("apps/v1", "Deployment", "podinfo-primary", NS)
        assert primary is not None
        assert primary["spec"]["selector"]["matchLabels"] == {"app": "podinfo-primary"}
        assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:v1"
        assert primary["metadata"]["ownerReferences"][0]["kind"] == "Canary"
        target = await kube.get("apps/v1", "Deployment", "podinfo", NS)
        assert target is not None and target["spec"]["replicas"] == 0
        for name, selector in (
            ("podinfo", "podinfo-primary"),
            ("podinfo-primary", "podinfo-primary"),
            ("podinfo-canary", "podinfo"),
        ):
            service = await kube.get("v1", "Service", name, NS)
            assert service is not None, name
            assert service["spec"]["selector"] == {"app": selector}, name
        conditions = {c["type"]: c for c in (await status(kube))["conditions"]}
        assert conditions["Promoted"]["status"] == "True"
        assert "Initialization done! podinfo.default" in await events(kube)

    async def test_an_image_change_progresses_and_is_promoted(
        self,
        cluster: SandboxThread,
        kube: KubeClient,
        tmp_path: Path,
        operators: list[OperatorProcess],
    ) -> None:
        cluster.apply_manifest(deployment("podinfo:v1"))
        cluster.apply_manifest(canary())
        start_operator(cluster, tmp_path, operators)
        await initialized(kube)
        await set_image(kube, "podinfo:v2")

        await eventually(lambda: phase_is(kube, "Progressing"), timeout=30, what="the run to start")
        await eventually(lambda: phase_is(kube, "Succeeded"), timeout=60, what="the promotion")
        primary = await kube.get("apps/v1", "Deployment", "podinfo-primary", NS)
        assert primary is not None
        assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:v2"
        target = await kube.get("apps/v1", "Deployment", "podinfo", NS)
        assert target is not None and target["spec"]["replicas"] == 0
        seen = await events(kube)
        assert seen.get("Copying podinfo.default template spec to podinfo-primary.default") == 1
        assert seen.get("Promotion completed! Scaling down podinfo.default") == 1

    async def test_a_canary_that_never_becomes_ready_is_rolled_back_at_its_deadline(
        self,
        cluster: SandboxThread,
        kube: KubeClient,
        tmp_path: Path,
        operators: list[OperatorProcess],
    ) -> None:
        cluster.apply_manifest(deployment("podinfo:v1"))
        cluster.apply_manifest(canary(deadline=3))
        start_operator(cluster, tmp_path, operators)
        await initialized(kube)
        await set_image(kube, "podinfo:broken", never_ready=True)

        await eventually(lambda: phase_is(kube, "Failed"), timeout=60, what="the rollback")
        primary = await kube.get("apps/v1", "Deployment", "podinfo-primary", NS)
        assert primary is not None
        assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:v1"
        target = await kube.get("apps/v1", "Deployment", "podinfo", NS)
        assert target is not None and target["spec"]["replicas"] == 0
        seen = await events(kube)
        assert any(
            m.startswith("Rolling back podinfo.default progress deadline exceeded") for m in seen
        )
        conditions = {c["type"]: c for c in (await status(kube))["conditions"]}
        assert conditions["Promoted"]["status"] == "False"

    async def test_a_second_canary_on_the_same_target_is_reported_and_changes_nothing(
        self,
        cluster: SandboxThread,
        kube: KubeClient,
        tmp_path: Path,
        operators: list[OperatorProcess],
    ) -> None:
        cluster.apply_manifest(deployment("podinfo:v1"))
        cluster.apply_manifest(canary())
        start_operator(cluster, tmp_path, operators)
        await initialized(kube)
        rival = canary()
        rival["metadata"]["name"] = "podinfo-rival"
        cluster.apply_manifest(rival)

        async def reported() -> str:
            obj = await kube.get("canary.gitops.dev/v1beta1", "Canary", "podinfo-rival", NS)
            return str(((obj or {}).get("status") or {}).get("message") or "")

        message = await eventually(
            lambda: _contains(reported(), "already manages"), timeout=30, what="the conflict report"
        )
        assert "Canary podinfo already manages Deployment podinfo.default" in message
        obj = await kube.get("canary.gitops.dev/v1beta1", "Canary", "podinfo-rival", NS)
        assert ((obj or {}).get("status") or {}).get("phase") in (None, "")
        assert any("podinfo-rival waits" in m for m in await events(kube))
        assert await phase_is(kube, "Initialized")


class TestRestartsAndReplicas:
    async def test_a_killed_controller_is_replaced_and_the_run_resumes_without_a_second_promotion(
        self,
        cluster: SandboxThread,
        kube: KubeClient,
        tmp_path: Path,
        operators: list[OperatorProcess],
    ) -> None:
        cluster.apply_manifest(deployment("podinfo:v1"))
        cluster.apply_manifest(canary(iterations=3))
        first = start_operator(cluster, tmp_path, operators)
        await initialized(kube)
        await set_image(kube, "podinfo:v2")

        async def mid_run() -> bool:
            current = await status(kube)
            return (
                current.get("phase") == "Progressing" and int(current.get("iterations") or 0) >= 1
            )

        await eventually(mid_run, timeout=60, what="the run to be under way")
        reached = int((await status(kube)).get("iterations") or 0)
        first.kill()
        start_operator(cluster, tmp_path, operators)

        history: list[tuple[str, int]] = []

        async def promoted() -> bool:
            current = await status(kube)
            history.append((str(current.get("phase")), int(current.get("iterations") or 0)))
            return current.get("phase") == "Succeeded"

        await eventually(promoted, timeout=90, what="the new controller to finish the run")
        # the run resumed from status: iterations never went back below where it was
        progressing = [n for phase, n in history if phase == "Progressing"]
        assert all(n >= reached for n in progressing), (reached, history)
        seen = await events(kube)
        assert seen.get("Copying podinfo.default template spec to podinfo-primary.default") == 1
        assert seen.get("Promotion completed! Scaling down podinfo.default") == 1
        assert seen.get("New revision detected! Scaling up podinfo.default") == 1

    async def test_two_controllers_elect_one_leader_and_the_other_takes_over(
        self,
        cluster: SandboxThread,
        kube: KubeClient,
        tmp_path: Path,
        operators: list[OperatorProcess],
    ) -> None:
        cluster.apply_manifest(deployment("podinfo:v1"))
        cluster.apply_manifest(canary())
        election = (
            "--leader-election",
            "--leader-election-namespace",
            NS,
            "--leader-election-lease-duration",
            "4",
            "--leader-election-renew-period",
            "1",
        )
        alpha = start_operator(cluster, tmp_path, operators, *election, user="alpha")
        beta = start_operator(cluster, tmp_path, operators, *election, user="beta")
        await initialized(kube)

        def writers() -> set[str]:
            return {
                entry.user
                for entry in cluster.audit
                if entry.verb in ("create", "update", "patch")
                and entry.resource in ("deployments", "services", "canaries")
                and entry.user in ("alpha", "beta")  # not the test's own writes
            }

        assert len(writers()) == 1, writers()
        leader = next(iter(writers()))
        survivor, victim = (beta, alpha) if leader == "alpha" else (alpha, beta)
        victim.kill()
        await set_image(kube, "podinfo:v2")
        await eventually(
            lambda: phase_is(kube, "Succeeded"), timeout=90, what="the survivor to promote"
        )
        assert writers() == {"alpha", "beta"}, "the other replica took over after the leader died"
        assert survivor.proc is not None and survivor.proc.poll() is None


class TestProcess:
    async def test_start_up_fails_clearly_when_the_crds_are_missing(self, tmp_path: Path) -> None:
        with SandboxThread(speed=10.0, kubeconfig_path=tmp_path / "kubeconfig") as bare:
            op = OperatorProcess(bare.kubeconfig_path, tmp_path / "operator.log").start()
            assert op.proc is not None
            code = op.proc.wait(timeout=60)
        assert code == 1
        output = op.output()
        assert "the CustomResourceDefinitions are not installed" in output
        assert "canaries.canary.gitops.dev" in output and "kubectl apply -f crds/" in output
        assert "Traceback" not in output

    async def test_health_metrics_json_logs_and_a_clean_sigterm(
        self,
        cluster: SandboxThread,
        kube: KubeClient,
        tmp_path: Path,
        operators: list[OperatorProcess],
    ) -> None:
        cluster.apply_manifest(deployment("podinfo:v1"))
        cluster.apply_manifest(canary())
        op = start_operator(
            cluster, tmp_path, operators, "--log-format", "json", "--cluster-name", "e2e"
        )
        await initialized(kube)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{op.port}", timeout=5) as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/readyz")).status_code == 200
            metrics = (await http.get("/metrics")).text
        assert 'canary_engine_canary_status{name="podinfo",namespace="default"} 1.0' in metrics
        assert 'canary_engine_canary_total{namespace="default"} 1.0' in metrics
        assert "canary_engine_tick_lateness_seconds_count" in metrics
        assert op.stop() == 0
        lines = [line for line in op.output().splitlines() if line.strip()]
        records = [json.loads(line) for line in lines]
        assert {"time", "level", "logger", "message"} <= set(records[0])
        assert any(
            r["message"] == "default/podinfo: Initialization done! podinfo.default" for r in records
        )
