"""`canary wait` the way a CI pipeline runs it: a process, against the sandbox, with the
operator as a process (issue 15, "Waiting for a release in CI").

Each test reads what the pipeline sees, the exit code, stdout and stderr: a promoted release
exits 0 (also when the wait started before the controller noticed the change, with the
previous release's Promoted=True still in the status), a rolled-back one 1 with the failed
check printed, a timeout 2 saying what it waited for and where the canary is, a missing
canary 3, and an unusable cluster 4 in one line, never a traceback. ``-o json`` parses.
There are no sleeps: each step waits on a condition (the wait's own output, the canary's
phase), with generous outer limits for a loaded machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from canary.adapters.kube import KubeClient
from kubesandbox import SandboxThread
from tests.e2e.support import (
    CANARY,
    OperatorProcess,
    canary_manifest,
    deployment_manifest,
    eventually,
    start_operator,
)
from tests.http_fixtures import RecordingServer, Reply
from tests.sandbox_fixtures import Kubectl

pytestmark = pytest.mark.slow

NS = "default"
API_VERSION = "canary.gitops.dev/v1beta1"
OUTER = 180.0  # seconds: the limit no healthy run comes near, even on a loaded machine
PROMETHEUS_QUERY = "/api/v1/query"


def deployment(image: str) -> dict[str, Any]:
    return deployment_manifest("podinfo", NS, image)


def canary(metrics: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    analysis: dict[str, Any] = {"interval": "10s", "threshold": 1, "iterations": 2}
    if metrics:
        analysis["metrics"] = metrics
    return canary_manifest("podinfo", NS, analysis, progressDeadlineSeconds=120)


SUCCESS_RATE = {"name": "success-rate", "interval": "1m", "thresholdRange": {"min": 99}}


def prometheus_answer(value: float) -> Reply:
    """What Prometheus answers to an instant query whose result is ``value``."""
    return Reply(
        body={
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, str(value)]}]},
        }
    )


@dataclass(frozen=True)
class Finished:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Wait:
    """``canary wait`` as a child process; its output can be read line by line meanwhile."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.seen: dict[str, list[str]] = {"stdout": [], "stderr": []}

    @classmethod
    async def start(cls, kubeconfig: Path | str, *args: str) -> Wait:
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env.update(PYTHONUNBUFFERED="1", NO_COLOR="1", COLUMNS="200")
        proc = await asyncio.create_subprocess_exec(
            CANARY,
            "wait",
            *args,
            "--kubeconfig",
            str(kubeconfig),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        return cls(proc)

    async def line(self, fragment: str, stream: str = "stdout") -> str:
        """The first line of ``stream`` containing ``fragment`` (progress is on stdout, or
        on stderr with ``-o json``)."""
        reader = self.proc.stdout if stream == "stdout" else self.proc.stderr
        assert reader is not None
        async with asyncio.timeout(OUTER):
            while True:
                line = (await reader.readline()).decode()
                if not line:
                    raise AssertionError(f"{stream} ended without {fragment!r}: {self.seen}")
                self.seen[stream].append(line)
                if fragment in line:
                    return line

    async def finish(self) -> Finished:
        try:
            async with asyncio.timeout(OUTER):
                stdout, stderr = await self.proc.communicate()
        except TimeoutError:
            self.proc.kill()
            raise
        assert self.proc.returncode is not None
        return Finished(
            self.proc.returncode,
            "".join(self.seen["stdout"]) + stdout.decode(),
            "".join(self.seen["stderr"]) + stderr.decode(),
        )


async def canary_wait(kubeconfig: Path | str, *args: str) -> Finished:
    return await (await Wait.start(kubeconfig, *args)).finish()


async def phase(kube: KubeClient) -> str:
    obj = await kube.get(API_VERSION, "Canary", "podinfo", NS)
    return str(((obj or {}).get("status") or {}).get("phase") or "")


async def initialized(kube: KubeClient) -> None:
    async def done() -> bool:
        return await phase(kube) == "Initialized"

    await eventually(done, timeout=OUTER, what="the canary to initialize")


async def set_image(kube: KubeClient, image: str) -> None:
    template = deployment(image)["spec"]["template"]
    await kube.patch("apps/v1", "Deployment", "podinfo", NS, {"spec": {"template": template}})


async def primary_images(kube: KubeClient) -> list[str]:
    primary = await kube.get("apps/v1", "Deployment", "podinfo-primary", NS)
    assert primary is not None
    return [c["image"] for c in primary["spec"]["template"]["spec"]["containers"]]


def no_traceback(result: Finished) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr


class TestOutcomes:
    async def test_a_wait_started_before_the_controller_saw_the_new_image_exits_0_once_it_is_promoted(
        self,
        cluster: SandboxThread,
        kube: KubeClient,
        tmp_path: Path,
        operators: list[OperatorProcess],
    ) -> None:
        cluster.apply_manifest(deployment("podinfo:v1"))
        cluster.apply_manifest(canary())
        first = start_operator(cluster, tmp_path, operators)
        await initialized(kube)
        # The controller is away when the image changes: the status keeps the last
        # release's Promoted=True, the trap `kubectl wait` falls into.
        first.stop()
        await set_image(kube, "podinfo:v2")
        wait = await Wait.start(cluster.kubeconfig_path, "podinfo", "-o", "json")
        line = await wait.line("waiting for the controller to start analysing podinfo:v2", "stderr")
        assert "Initialized" in line
        assert wait.proc.returncode is None

        start_operator(cluster, tmp_path, operators)
        result = await wait.finish()

        assert result.code == 0, result.stderr
        data = result.json()
        assert data["result"] == "Promoted"
        assert data["exitCode"] == 0
        assert data["waitedFor"]["release"]["images"] == ["podinfo:v2"]
        assert data["phase"] == "Succeeded"
        assert data["timing"]["waitedSeconds"] > 0
        assert await primary_images(kube) == ["podinfo:v2"]
        assert "Progressing" in result.stderr  # one progress line per change, on stderr

    async def test_a_rolled_back_image_exits_1_naming_the_failed_check(
        self,
        cluster: SandboxThread,
        kube: KubeClient,
        tmp_path: Path,
        operators: list[OperatorProcess],
        recording_server: RecordingServer,
    ) -> None:
        recording_server.default(PROMETHEUS_QUERY, prometheus_answer(91.2))
        cluster.apply_manifest(deployment("podinfo:v1"))
        cluster.apply_manifest(canary(metrics=[SUCCESS_RATE | {"query": "vector(91.2)"}]))
        start_operator(cluster, tmp_path, operators, "--metrics-server", recording_server.base_url)
        await initialized(kube)
        await set_image(kube, "podinfo:v2")

        result = await canary_wait(cluster.kubeconfig_path, "podinfo", "--image", "podinfo:v2")

        assert result.code == 1, (result.stdout, result.stderr)
        assert "failed: podinfo.default: rolled back: failed checks threshold reached 1" in (
            result.stdout
        )
        assert "failed check: success-rate Fail:" in result.stdout
        assert "91.2" in result.stdout
        assert await phase(kube) == "Failed"
        assert await primary_images(kube) == ["podinfo:v1"]
        no_traceback(result)

        again = await canary_wait(
            cluster.kubeconfig_path, "podinfo", "--image", "podinfo:v2", "-o", "json"
        )
        assert again.code == 1
        data = again.json()
        assert (data["result"], data["failedMetrics"]) == ("Failed", ["success-rate"])
        assert [m["outcome"] for m in data["analysis"]] == ["Fail"]

    async def test_a_release_that_does_not_come_exits_2_saying_what_it_waited_for_and_where_the_canary_is(
        self, cluster: SandboxThread, kube: KubeClient
    ) -> None:
        cluster.apply_manifest(deployment("podinfo:v1"))
        cluster.apply_manifest(canary())

        result = await canary_wait(
            cluster.kubeconfig_path, "podinfo", "--image", "podinfo:v9", "--timeout", "2s"
        )

        assert result.code == 2
        assert (
            "error: timed out after 2s waiting for image podinfo:v9 of podinfo.default; "
            "it is not initialized" in result.stderr
        )
        no_traceback(result)

    async def test_a_missing_canary_exits_3_and_json_says_so(self, cluster: SandboxThread) -> None:
        result = await canary_wait(cluster.kubeconfig_path, "nope", "-o", "json")
        assert result.code == 3
        assert "error: canary 'nope' not found in namespace 'default'" in result.stderr
        assert result.json()["result"] == "NotFound"
        no_traceback(result)


class TestRevisions:
    """Waiting for a Git revision, with the status a GitOps-managed canary has."""

    GOOD = "main@sha1:" + "a1" * 20
    BAD = "main@sha1:" + "b2" * 20

    async def canary_with_status(
        self, cluster: SandboxThread, kube: KubeClient, status: Mapping[str, Any]
    ) -> None:
        cluster.apply_manifest(canary())
        await kube.patch(
            API_VERSION, "Canary", "podinfo", NS, {"status": dict(status)}, subresource="status"
        )

    async def test_a_promoted_revision_given_by_its_short_commit_exits_0(
        self, cluster: SandboxThread, kube: KubeClient
    ) -> None:
        await self.canary_with_status(
            cluster,
            kube,
            {"phase": "Succeeded", "lastGoodRevision": self.GOOD, "currentRevision": self.GOOD},
        )
        result = await canary_wait(cluster.kubeconfig_path, "podinfo", "--revision", "a1a1a1a")
        assert result.code == 0, result.stderr
        assert "promoted: podinfo.default: a1a1a1a is promoted (after" in result.stdout
        assert self.GOOD in result.stdout

    async def test_a_rolled_back_revision_exits_1_with_its_failed_check_and_git_revert(
        self, cluster: SandboxThread, kube: KubeClient
    ) -> None:
        await self.canary_with_status(
            cluster,
            kube,
            {
                "phase": "Failed",
                "currentRevision": self.BAD,
                "lastGoodRevision": self.GOOD,
                "message": "Rolled back podinfo.default: failed checks threshold reached 2.",
                "analysis": [
                    {
                        "name": "error-rate",
                        "outcome": "Fail",
                        "summary": "error-rate 12.5 > 5",
                        "time": "2024-05-01T12:00:00Z",
                    },
                    {"name": "latency", "outcome": "Pass", "summary": "fine", "time": ""},
                ],
                "gitRevert": {
                    "state": "Reverted",
                    "goodRevision": self.GOOD,
                    "badRevision": self.BAD,
                    "commit": "c0ffee1234567890",
                },
            },
        )
        result = await canary_wait(
            cluster.kubeconfig_path, "podinfo", "--revision", self.BAD, "-o", "json"
        )
        assert result.code == 1
        data = result.json()
        assert data["why"] == "rolled back: failed checks threshold reached 2"
        assert data["failedMetrics"] == ["error-rate"]
        assert data["gitRevert"]["commit"] == "c0ffee1234567890"
        assert data["revision"] == self.BAD

        text = await canary_wait(cluster.kubeconfig_path, "podinfo", "--revision", self.BAD)
        assert text.code == 1
        assert "failed check: error-rate Fail: error-rate 12.5 > 5" in text.stdout
        assert "latency" not in text.stdout.split("rolled back")[1]
        assert f"Git revert: Reverted: {self.BAD} -> {self.GOOD} in commit c0ffee123456" in (
            text.stdout
        )

    async def test_a_rollback_waits_briefly_for_its_git_revert_and_names_the_commit(
        self, cluster: SandboxThread, kube: KubeClient
    ) -> None:
        failed = {
            "phase": "Failed",
            "currentRevision": self.BAD,
            "lastGoodRevision": self.GOOD,
            "message": "Rolled back podinfo.default: failed checks threshold reached 1.",
            "gitRevert": {"state": "Pending", "goodRevision": self.GOOD, "badRevision": self.BAD},
        }
        await self.canary_with_status(cluster, kube, failed)
        wait = await Wait.start(cluster.kubeconfig_path, "podinfo", "--revision", self.BAD)
        await wait.line("Failed")
        reverted = {"state": "Reverted", "commit": "feedbeef00112233"}
        await kube.patch(
            API_VERSION,
            "Canary",
            "podinfo",
            NS,
            {"status": {"gitRevert": reverted}},
            subresource="status",
        )
        result = await wait.finish()
        assert result.code == 1
        assert f"Git revert: Reverted: {self.BAD} -> {self.GOOD} in commit feedbeef0011" in (
            result.stdout
        )


class TestKubectlWait:
    """What `kubectl wait --for=condition=Promoted` can rely on (docs/cli.md): the condition
    carries the generation it was decided on, so kubectl waits for the controller to see a
    change of the Canary, and a new revision turns it Unknown until it is promoted."""

    async def test_kubectl_wait_waits_for_the_controller_to_see_a_canary_edit(
        self,
        cluster: SandboxThread,
        kube: KubeClient,
        tmp_path: Path,
        operators: list[OperatorProcess],
    ) -> None:
        kubectl = Kubectl(cluster.kubeconfig_path, tmp_path / "kubectl-home")
        (tmp_path / "kubectl-home").mkdir()
        cluster.apply_manifest(deployment("podinfo:v1"))
        cluster.apply_manifest(canary())
        first = start_operator(cluster, tmp_path, operators)
        await initialized(kube)
        first.stop()
        edited = canary()
        edited["spec"]["analysis"]["threshold"] = 3  # a new generation of the Canary
        cluster.apply_manifest(edited)

        def wait_promoted(timeout: str) -> subprocess.CompletedProcess[str]:
            return kubectl(
                "wait",
                "-n",
                NS,
                "canary/podinfo",
                "--for=condition=Promoted",
                f"--timeout={timeout}",
                check=False,
                timeout=OUTER,
            )

        # Promoted=True, but computed for generation 1: kubectl does not take it.
        stale = await asyncio.to_thread(wait_promoted, "3s")
        assert stale.returncode != 0, stale.stdout
        assert "timed out" in stale.stderr

        start_operator(cluster, tmp_path, operators)
        seen = await asyncio.to_thread(wait_promoted, "120s")
        assert seen.returncode == 0, seen.stderr
        obj = await kube.get(API_VERSION, "Canary", "podinfo", NS)
        assert obj is not None
        conditions = {c["type"]: c for c in obj["status"]["conditions"]}
        assert conditions["Promoted"]["observedGeneration"] == obj["metadata"]["generation"] == 2

    async def test_after_a_new_image_kubectl_wait_returns_only_once_it_is_promoted(
        self,
        cluster: SandboxThread,
        kube: KubeClient,
        tmp_path: Path,
        operators: list[OperatorProcess],
    ) -> None:
        kubectl = Kubectl(cluster.kubeconfig_path, tmp_path / "kubectl-home")
        (tmp_path / "kubectl-home").mkdir()
        cluster.apply_manifest(deployment("podinfo:v1"))
        cluster.apply_manifest(canary())
        start_operator(cluster, tmp_path, operators)
        await initialized(kube)
        await set_image(kube, "podinfo:v2")
        # The first of the two waits docs/cli.md gives for kubectl alone: the controller saw it.
        saw = await asyncio.to_thread(
            kubectl,
            "wait",
            "-n",
            NS,
            "canary/podinfo",
            "--for=condition=Promoted=Unknown",
            "--timeout=120s",
            timeout=OUTER,
        )
        assert saw.returncode == 0
        done = await asyncio.to_thread(
            kubectl,
            "wait",
            "-n",
            NS,
            "canary/podinfo",
            "--for=condition=Promoted",
            "--timeout=120s",
            timeout=OUTER,
        )
        assert done.returncode == 0
        assert await primary_images(kube) == ["podinfo:v2"]
        assert await phase(kube) == "Succeeded"

    async def test_after_kubectl_set_image_promoted_turns_unknown_long_before_the_next_interval(
        self,
        cluster: SandboxThread,
        kube: KubeClient,
        tmp_path: Path,
        operators: list[OperatorProcess],
    ) -> None:
        """The target's new pod template wakes the Canary's job: the controller does not
        wait for the Canary's next scheduled pass to notice it."""
        kubectl = Kubectl(cluster.kubeconfig_path, tmp_path / "kubectl-home")
        (tmp_path / "kubectl-home").mkdir()
        cluster.apply_manifest(deployment("podinfo:v1"))
        hourly = canary()
        # 12 minutes at the operators' --time-scale 0.2: the next scheduled pass after the
        # initialization is far beyond the wait's limit below.
        hourly["spec"]["analysis"]["interval"] = "1h"
        cluster.apply_manifest(hourly)
        start_operator(cluster, tmp_path, operators)
        await initialized(kube)

        kubectl("set", "image", "-n", NS, "deployment/podinfo", "podinfod=podinfo:v2")
        seen = await asyncio.to_thread(
            kubectl,
            "wait",
            "-n",
            NS,
            "canary/podinfo",
            "--for=condition=Promoted=Unknown",
            "--timeout=120s",
            check=False,
            timeout=OUTER,
        )

        assert seen.returncode == 0, seen.stderr
        obj = await kube.get(API_VERSION, "Canary", "podinfo", NS)
        assert obj is not None
        conditions = {c["type"]: c for c in obj["status"]["conditions"]}
        assert conditions["Promoted"]["reason"] == "Progressing"
        assert obj["status"]["phase"] == "Progressing"


class TestNoCluster:
    async def test_a_missing_kubeconfig_is_one_line_and_exit_4(self, tmp_path: Path) -> None:
        result = await canary_wait(tmp_path / "absent", "podinfo")
        assert result.code == 4
        assert result.stderr.strip().count("\n") == 0
        assert "no kubeconfig" in result.stderr
        no_traceback(result)

    async def test_an_unreachable_api_server_is_one_line_and_exit_4(self, tmp_path: Path) -> None:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: dead\n"
            "clusters: [{name: dead, cluster: {server: 'http://127.0.0.1:9'}}]\n"
            "contexts: [{name: dead, context: {cluster: dead, user: u}}]\n"
            "users: [{name: u, user: {token: t}}]\n"
        )
        result = await canary_wait(kubeconfig, "podinfo")
        assert result.code == 4
        assert result.stderr.startswith("error: cannot reach the API server")
        assert result.stderr.strip().count("\n") == 0
        no_traceback(result)
