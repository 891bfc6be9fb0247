"""Issue 11 end to end: protected branches, in push mode and in pull-request mode.

The repositories are protected the way forges protect a branch: a server-side pre-receive
hook (served by `git daemon`) refuses pushes to ``main`` except an admin's, with GitHub's own
words. The forge API is a loopback server that follows GitHub's documented pull-request
endpoints (tests/gitops/forge_servers.py); Slack is a loopback receiver. The real operator
runs as a process, and is killed with SIGKILL in the middle of the pull-request flow.

* push mode: the refused push ends as a clear, non-retried failure — status, Warning Event
  and Slack message quote the server and say to use pull-request mode — and the revert
  commit is kept on a side branch;
* pull-request mode: one pull request is opened, its URL is in the status, the Event and
  the Slack message; after a kill -9 and a restart it is found again, not duplicated; once a
  person merges it, the revert is done and the cluster converges to the good image.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from canary.adapters.gitops import revert_branch
from canary.adapters.kube import KubeClient
from kubesandbox import SandboxThread
from tests.e2e.support import OperatorProcess, eventually, start_operator
from tests.git_fixtures import BareRepo, GitDaemon, create_bare_repo, run_git
from tests.gitops.forge_servers import PROJECTS, ForgeServer
from tests.http_fixtures import RecordingServer

pytestmark = pytest.mark.slow

API = "canary.gitops.dev/v1beta1"
IMAGE = "ghcr.io/acme/podinfo"
GOOD, BAD = f"{IMAGE}:1.0.0", f"{IMAGE}:1.1.0-never-ready"
SLACK = "/services/T000/B000/slack"
TIMEOUT = 90.0


def deployment(ns: str, image: str) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: {ns}
spec:
  selector:
    matchLabels: {{app: podinfo}}
  template:
    metadata:
      labels: {{app: podinfo}}
    spec:
      containers:
        - name: app
          image: {image}
"""


def secret(ns: str, name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def canary(ns: str, revert: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "progressDeadlineSeconds": 4,
            "service": {"port": 9898},
            "analysis": {
                "interval": "10s",
                "threshold": 1,
                "iterations": 1,
                "alerts": [{"name": "team", "providerRef": {"name": "slack"}}],
            },
            "gitops": {"revert": revert},
        },
    }


async def setup(
    cluster: SandboxThread,
    kube: KubeClient,
    ns: str,
    repo: BareRepo,
    url: str,
    revert: Any,
    slack: RecordingServer,
    extra: tuple[dict[str, Any], ...] = (),
) -> None:
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for obj in (
        secret(ns, "slack-url", address=slack.url(SLACK)),
        {
            "apiVersion": API,
            "kind": "AlertProvider",
            "metadata": {"name": "slack", "namespace": ns},
            "spec": {"type": "slack", "channel": "deploys", "secretRef": {"name": "slack-url"}},
        },
        {
            "apiVersion": API,
            "kind": "GitSource",
            "metadata": {"name": "fleet", "namespace": ns},
            "spec": {"url": url, "path": "apps", "interval": "1s"},
        },
        *extra,
    ):
        cluster.apply_manifest(obj)

    async def applied() -> bool:
        return await image_of(kube, ns) == GOOD

    await eventually(applied, timeout=TIMEOUT, what=f"{ns}: the target applied")
    cluster.apply_manifest(canary(ns, revert))


async def image_of(kube: KubeClient, ns: str) -> str:
    obj = await kube.get("apps/v1", "Deployment", "podinfo", ns)
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"]) if obj else ""


async def status_of(kube: KubeClient, ns: str) -> dict[str, Any]:
    obj = await kube.get(API, "Canary", "podinfo", ns)
    return dict((obj or {}).get("status") or {})


async def events_of(kube: KubeClient, ns: str) -> list[str]:
    return [str(e.get("message")) for e in await kube.list("v1", "Event", ns)]


def slack_texts(slack: RecordingServer) -> list[str]:
    return [json.dumps(r.json()) for r in slack.requests_to(SLACK)]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[GitDaemon, Path]]:
    root = tmp_path / "srv"
    root.mkdir()
    server = GitDaemon(root).start()
    try:
        yield server, root
    finally:
        server.stop()


@pytest.fixture
async def forge() -> AsyncIterator[ForgeServer]:
    server = ForgeServer("github")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_protected_branch_in_push_mode_and_in_pull_request_mode(
    cluster: SandboxThread,
    kube: KubeClient,
    tmp_path: Path,
    daemon: tuple[GitDaemon, Path],
    forge: ForgeServer,
    recording_server: RecordingServer,
    operators: list[OperatorProcess],
) -> None:
    git, root = daemon
    slack = recording_server
    push_repo = create_bare_repo(root, "push", {"apps/podinfo.yaml": deployment("push", GOOD)})
    # The forge hosts this one as acme/podinfo (PROJECTS["github"]); the URL path says so.
    pr_repo = create_bare_repo(root, "acme/podinfo", {"apps/podinfo.yaml": deployment("pr", GOOD)})
    for repo in (push_repo, pr_repo):
        repo.protect("main")  # only the admin (the test's developer) may push to main
    pull_request = {
        "mode": "pullRequest",
        "pullRequest": {
            "provider": "github",
            "apiURL": forge.api_url,
            "secretRef": {"name": "forge-token"},
        },
    }
    start_operator(cluster, tmp_path, operators)
    await setup(cluster, kube, "push", push_repo, git.url_for(push_repo), True, slack)
    await setup(
        cluster,
        kube,
        "pr",
        pr_repo,
        git.url_for(pr_repo),
        pull_request,
        slack,
        (secret("pr", "forge-token", token=forge.token),),
    )
    assert PROJECTS["github"] == "acme/podinfo"

    for ns in ("push", "pr"):

        async def initialized(ns: str = ns) -> bool:
            return (await status_of(kube, ns)).get("phase") == "Initialized"

        await eventually(initialized, timeout=TIMEOUT, what=f"{ns}: the canary to initialize")
    push_bad = push_repo.commit({"apps/podinfo.yaml": deployment("push", BAD)}, "podinfo 1.1.0")
    pr_bad = pr_repo.commit({"apps/podinfo.yaml": deployment("pr", BAD)}, "podinfo 1.1.0")

    # -- push mode: a clear failure, not retried, the revert kept on a side branch ------------
    async def refused() -> dict[str, Any] | None:
        revert = (await status_of(kube, "push")).get("gitRevert") or {}
        return dict(revert) if revert.get("state") == "Failed" else None

    revert = await eventually(refused, timeout=TIMEOUT, what="push: the refused revert")
    assert revert["retriable"] is False
    assert "GH006: Protected branch update failed for refs/heads/main" in revert["message"]
    assert "spec.gitops.revert.mode: pullRequest" in revert["message"]
    side = revert_branch("push/podinfo", push_bad)
    assert side in push_repo.branches()
    assert push_repo.head() == push_bad  # main untouched
    assert any("GH006" in e for e in await events_of(kube, "push"))

    async def slack_failure() -> bool:
        return any("Git revert failed" in t and "GH006" in t for t in slack_texts(slack))

    await eventually(slack_failure, timeout=TIMEOUT, what="the Slack message of the failure")

    # -- pull-request mode: one pull request, its URL everywhere -------------------------------
    url = forge.pull_url(1)

    async def proposed() -> dict[str, Any] | None:
        revert = (await status_of(kube, "pr")).get("gitRevert") or {}
        return dict(revert) if revert.get("state") == "Proposed" else None

    revert = await eventually(proposed, timeout=TIMEOUT, what="pr: the revert's pull request")
    assert revert["pullRequest"] == url
    assert [(p.head, p.base) for p in forge.pulls] == [
        (revert_branch("pr/podinfo", pr_bad), "main")
    ]
    assert pr_repo.head() == pr_bad
    assert any(f"Opened pull request {url}" in e for e in await events_of(kube, "pr"))

    async def slack_proposed() -> bool:
        return any(
            "Revert proposed in a pull request" in t and url in t for t in slack_texts(slack)
        )

    await eventually(slack_proposed, timeout=TIMEOUT, what="the Slack message with the PR")

    # kill -9 in the middle, and a new controller: the pull request is found, not duplicated.
    operators[-1].kill()
    gets_before = len(forge.gets())
    start_operator(cluster, tmp_path, operators)

    async def looked_again() -> bool:
        return len(forge.gets()) > gets_before

    await eventually(looked_again, timeout=TIMEOUT, what="the new controller to look at the PR")
    assert len(forge.posts()) == 1 and len(forge.pulls) == 1
    assert (await status_of(kube, "pr"))["gitRevert"]["pullRequest"] == url

    # A person merges it: Git holds the revert, the cluster converges, the canary says so.
    work = pr_repo._work()
    run_git("fetch", "--quiet", "origin", revert_branch("pr/podinfo", pr_bad), cwd=work)
    run_git("merge", "--quiet", "--no-ff", "-m", "Merge pull request #1", "FETCH_HEAD", cwd=work)
    run_git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=work)
    forge.merge(1)

    async def merged() -> dict[str, Any] | None:
        revert = (await status_of(kube, "pr")).get("gitRevert") or {}
        return dict(revert) if revert.get("state") == "AlreadyReverted" else None

    revert = await eventually(merged, timeout=TIMEOUT, what="pr: the merged revert")
    assert revert["pullRequest"] == url and revert["commit"]

    async def good_again() -> bool:
        return await image_of(kube, "pr") == GOOD

    await eventually(good_again, timeout=TIMEOUT, what="pr: the good image again")

    async def slack_merged() -> bool:
        return any("Reverted in Git" in t and url in t for t in slack_texts(slack))

    await eventually(slack_merged, timeout=TIMEOUT, what="the Slack message of the merge")
    assert len(forge.posts()) == 1
    await asyncio.sleep(0)
