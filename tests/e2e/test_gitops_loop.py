"""Issue 6 end to end: a bad commit is rolled back in the cluster *and* reverted in Git.

The real operator (`canary run` as a process) runs against the sandbox, Git is a bare
repository served on loopback by `git daemon` or `git http-backend`, and commits are made
from a separate clone the way a developer pushes them. Three origins of the target are
exercised:

* the built-in reconciler (a `GitSource`): commit a good image, the reconciler applies it,
  the canary promotes and records the revision; commit a bad image, the run fails, the
  revert commit appears in Git, the reconciler applies it, the target is back on the
  promoted template, no new run starts, and the history keeps every commit;
* Flux and Argo CD: the test plays the reconciler (applies the manifests with the markers
  Flux or Argo CD would leave, and records the applied revision in the owner's status);
  the revert lands in the repository, branch and path the owner names, nowhere else;
* credentials: a token from a Secret reaches the HTTP server but never the operator's
  debug log, Events, statuses, commit messages or the Git cache.

A fast static check closes the file: nothing under `canary/` can force-push or reset a
remote branch.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import json
import secrets
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.adapters.kube import KubeClient
from kubesandbox import SandboxThread
from tests.e2e.support import OperatorProcess, eventually, start_operator
from tests.git_fixtures import (
    BareRepo,
    GitDaemon,
    SmartHttpServer,
    create_bare_repo,
    run_git,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NS = "default"
API = "canary.gitops.dev/v1beta1"
NEVER_READY = "sandbox.canary.gitops.dev/behaviour"
SCALE_UP = "New revision detected! Scaling up podinfo.default"


# -- manifests as a developer keeps them in Git ------------------------------------------------


def deployment_yaml(image: str, *, never_ready: bool = False, config: bool = False) -> str:
    """The target. No `replicas`: the canary owns the scale, the reconciler the template.
    With `config`, its pods read the ConfigMap podinfo-config (a tracked config)."""
    annotations = f"\n      annotations:\n        {NEVER_READY}: never-ready" if never_ready else ""
    env_from = (
        "\n          envFrom:\n            - configMapRef:\n                name: podinfo-config"
    )
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: {NS}
  labels:
    app: podinfo
spec:
  selector:
    matchLabels:
      app: podinfo
  template:
    metadata:
      labels:
        app: podinfo{annotations}
    spec:
      containers:
        - name: podinfod
          image: {image}
          ports:
            - containerPort: 9898{env_from if config else ""}
"""


def canary_yaml() -> str:
    """Fails a never-ready canary 4 s after it stops progressing; one analysis iteration."""
    return f"""\
apiVersion: {API}
kind: Canary
metadata:
  name: podinfo
  namespace: {NS}
spec:
  provider: kubernetes
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  progressDeadlineSeconds: 4
  service:
    port: 9898
  analysis:
    interval: 10s
    threshold: 1
    iterations: 1
"""


def configmap_yaml(colour: str, *, name: str = "other") -> str:
    return f"""\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: {NS}
data:
  colour: {colour}
"""


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def git_root(tmp_path: Path) -> Path:
    root = tmp_path / "srv"
    root.mkdir()
    return root


@pytest.fixture
def daemon(git_root: Path) -> Iterator[GitDaemon]:
    server = GitDaemon(git_root).start()
    try:
        yield server
    finally:
        server.stop()


# -- reading the cluster ------------------------------------------------------------------------


async def canary_status(kube: KubeClient) -> dict[str, Any]:
    obj = await kube.get(API, "Canary", "podinfo", NS)
    return dict((obj or {}).get("status") or {})


async def canary_events(kube: KubeClient) -> list[str]:
    return [
        str(e.get("message"))
        for e in await kube.list("v1", "Event", NS)
        if (e.get("involvedObject") or {}).get("kind") == "Canary"
        for _ in range(int(e.get("count") or 1))
    ]


async def target_template(kube: KubeClient) -> dict[str, Any]:
    obj = await kube.get("apps/v1", "Deployment", "podinfo", NS)
    assert obj is not None
    return dict(obj["spec"]["template"])


def image_of(template: dict[str, Any]) -> str:
    return str(template["spec"]["containers"][0]["image"])


def template_annotations(template: dict[str, Any]) -> dict[str, str]:
    return dict((template.get("metadata") or {}).get("annotations") or {})


async def wait_for_phase(kube: KubeClient, phase: str, *, timeout: float, what: str) -> None:
    async def probe() -> bool:
        return (await canary_status(kube)).get("phase") == phase

    await eventually(probe, timeout=timeout, what=what)


async def wait_for_revert(kube: KubeClient, *, timeout: float = 60) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def probe() -> dict[str, Any] | None:
        seen.update(await canary_status(kube))
        revert = seen.get("gitRevert") or {}
        if seen.get("phase") == "Failed" and revert.get("state") == "Reverted":
            return dict(revert)
        return None

    try:
        return await eventually(
            probe, timeout=timeout, what="the failed run's revert commit (gitRevert Reverted)"
        )
    except AssertionError as exc:
        details = {k: seen.get(k) for k in ("phase", "message", "gitRevert", "currentRevision")}
        raise AssertionError(f"{exc}; canary status: {details}") from None


async def wait_for_template(kube: KubeClient, image: str, *, timeout: float = 30) -> None:
    async def probe() -> bool:
        template = await target_template(kube)
        return image_of(template) == image and NEVER_READY not in template_annotations(template)

    await eventually(probe, timeout=timeout, what=f"the target's template to be {image} again")


async def assert_no_new_run(kube: KubeClient, runs: int, *, seconds: float) -> None:
    """Phase stays Failed and no further run starts, over several analysis intervals."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while loop.time() < until:
        current = await canary_status(kube)
        assert current.get("phase") == "Failed", current
        assert (await canary_events(kube)).count(SCALE_UP) == runs
        await asyncio.sleep(0.5)


def trailer_values(repo: BareRepo, rev: str, key: str) -> list[str]:
    return [value for k, value in repo.trailers(rev) if k == key]


def first_parent_history(repo: BareRepo, branch: str) -> list[str]:
    return run_git("rev-list", "--first-parent", branch, cwd=repo.path).split()


# -- 1. the whole loop with the built-in reconciler -------------------------------------------


async def test_a_bad_commit_is_reverted_in_git_and_the_reconciler_restores_the_good_template(
    cluster: SandboxThread,
    kube: KubeClient,
    tmp_path: Path,
    git_root: Path,
    daemon: GitDaemon,
    operators: list[OperatorProcess],  # last: stopped before the Git server goes away
) -> None:
    repo = create_bare_repo(
        git_root,
        "fleet",
        {
            "apps/podinfo/deployment.yaml": deployment_yaml("podinfo:v1"),
            "apps/podinfo/canary.yaml": canary_yaml(),
            "apps/other/configmap.yaml": configmap_yaml("blue"),
        },
        message="podinfo v1",
    )
    v1 = repo.head()
    cluster.apply_manifest(
        {
            "apiVersion": API,
            "kind": "GitSource",
            "metadata": {"name": "fleet", "namespace": NS},
            "spec": {
                "url": daemon.url_for(repo),
                "branch": "main",
                "path": "apps",
                "interval": "2s",
                "prune": True,
            },
        }
    )
    start_operator(cluster, tmp_path, operators, "--log-level", "debug")

    # The reconciler applies v1; the canary initializes on it and calls it good.
    await wait_for_phase(kube, "Initialized", timeout=45, what="the canary to initialize")
    assert (await canary_status(kube)).get("lastGoodRevision") == f"main@sha1:{v1}"

    # A good image: applied, analysed, promoted; its revision becomes the last good one.
    v2 = repo.commit({"apps/podinfo/deployment.yaml": deployment_yaml("podinfo:v2")}, "podinfo v2")
    await wait_for_phase(kube, "Succeeded", timeout=60, what="v2 to be promoted")
    promoted = await canary_status(kube)
    assert promoted["lastGoodRevision"] == f"main@sha1:{v2}"
    primary = await kube.get("apps/v1", "Deployment", "podinfo-primary", NS)
    assert primary is not None
    assert image_of(primary["spec"]["template"]) == "podinfo:v2"

    # A bad image, then an unrelated change on top: the run fails at its progress deadline.
    v3 = repo.commit(
        {"apps/podinfo/deployment.yaml": deployment_yaml("podinfo:v3", never_ready=True)},
        "podinfo v3",
    )
    unrelated = repo.commit(
        {"apps/other/configmap.yaml": configmap_yaml("green")}, "other: colour green"
    )
    revert = await wait_for_revert(kube)
    revert_sha = str(revert["commit"])
    assert revert["goodRevision"] == f"main@sha1:{v2}"
    assert revert["badRevision"] in (f"main@sha1:{v3}", f"main@sha1:{unrelated}")

    # The revert commit is on the branch, on top of everything, and says what and why.
    assert repo.head() == revert_sha
    message = repo.message(revert_sha)
    assert "default/podinfo" in message.splitlines()[0]
    assert "progress deadline exceeded" in message
    assert trailer_values(repo, revert_sha, "Canary") == ["default/podinfo"]
    assert trailer_values(repo, revert_sha, "Canary-Good-Revision") == [v2]
    assert trailer_values(repo, revert_sha, "Canary-Reverts") == [v3]
    assert repo.author_of(revert_sha) == ("canary-engine", "canary-engine@users.noreply.local")

    # Only the target's file went back; the unrelated later change stays.
    assert repo.show(revert_sha, "apps/podinfo/deployment.yaml") == deployment_yaml("podinfo:v2")
    assert repo.show(revert_sha, "apps/other/configmap.yaml") == configmap_yaml("green")
    assert repo.show(revert_sha, "apps/podinfo/canary.yaml") == canary_yaml()

    # The reconciler applies the revert: the target is back on the promoted template.
    await wait_for_template(kube, "podinfo:v2")

    async def applied_revert() -> bool:
        gs = await kube.get(API, "GitSource", "fleet", NS)
        return ((gs or {}).get("status") or {}).get("lastAppliedRevision") == (
            f"main@sha1:{revert_sha}"
        )

    await eventually(applied_revert, timeout=20, what="the GitSource to apply the revert")
    other = await kube.get("v1", "ConfigMap", "other", NS)
    assert other is not None and other["data"] == {"colour": "green"}

    # No new run: the reverted template is the promoted one (two runs: v2 and v3).
    await assert_no_new_run(kube, 2, seconds=6)
    final = await canary_status(kube)
    assert final["gitRevert"]["state"] == "Reverted"
    assert final["gitRevert"]["attempts"] == 1
    assert final["lastGoodRevision"] == f"main@sha1:{v2}"

    # Nothing rewritten: every commit ever made is on the branch, in order, and nothing else.
    history = first_parent_history(repo, "main")
    assert history == [revert_sha, unrelated, v3, v2, v1]
    assert repo.all_commits() == set(history)
    assert [subject for _, subject in repo.log()][1:] == [
        "other: colour green",
        "podinfo v3",
        "podinfo v2",
        "podinfo v1",
    ]


# -- 2. Flux- and Argo CD-shaped owners ---------------------------------------------------------


def crd(group: str, kind: str, plural: str) -> dict[str, Any]:
    """A minimal CRD: any spec and status, with the status subresource."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1" if group != "argoproj.io" else "v1alpha1",
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


class PlayedReconciler:
    """Plays Flux's kustomize-controller or Argo CD's application controller.

    `sync(sha)` applies the manifests under the owner's path at `sha` (server-side apply,
    forced, as both do) with the markers that reconciler leaves on objects, and records
    the revision in the owner's status.

    Like the real controllers, it writes the status *after* the objects: a pass in between
    sees the new template under the old revision, and the controller corrects the run's
    revision once the report catches up (tests/core/test_revision_tracking.py).
    """

    def __init__(self, flavour: str, kube: KubeClient, repo: BareRepo, path: str) -> None:
        self.flavour = flavour
        self.kube = kube
        self.repo = repo
        self.path = path

    async def install(self, url: str, branch: str) -> None:
        if self.flavour == "flux":
            await self.kube.create(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}
            )
            await self.kube.create(
                {
                    "apiVersion": "source.toolkit.fluxcd.io/v1",
                    "kind": "GitRepository",
                    "metadata": {"name": "fleet", "namespace": "flux-system"},
                    "spec": {"url": url, "ref": {"branch": branch}, "interval": "1m"},
                }
            )
            await self.kube.create(
                {
                    "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                    "kind": "Kustomization",
                    "metadata": {"name": "apps", "namespace": "flux-system"},
                    "spec": {
                        "interval": "1m",
                        "path": f"./{self.path}",
                        "prune": True,
                        "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                    },
                }
            )
        else:
            await self.kube.create(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}}
            )
            await self.kube.create(
                {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Application",
                    "metadata": {"name": "podinfo", "namespace": "argocd"},
                    "spec": {
                        "project": "default",
                        "source": {"repoURL": url, "path": self.path, "targetRevision": branch},
                        "destination": {
                            "server": "https://kubernetes.default.svc",
                            "namespace": NS,
                        },
                    },
                }
            )

    def manifests(self, sha: str) -> list[dict[str, Any]]:
        names = run_git(
            "ls-tree", "-r", "--name-only", sha, "--", self.path, cwd=self.repo.path
        ).split()
        out: list[dict[str, Any]] = []
        for name in sorted(names):
            text = self.repo.show(sha, name)
            assert text is not None
            out += [doc for doc in yaml.safe_load_all(text) if doc]
        return out

    async def sync(self, sha: str) -> None:
        branch = self.repo.branch
        for obj in self.manifests(sha):
            meta = obj.setdefault("metadata", {})
            if self.flavour == "flux":
                meta.setdefault("labels", {}).update(
                    {
                        "kustomize.toolkit.fluxcd.io/name": "apps",
                        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
                    }
                )
                manager = "kustomize-controller"
            else:
                group = obj["apiVersion"].rpartition("/")[0] if "/" in obj["apiVersion"] else ""
                meta.setdefault("annotations", {})["argocd.argoproj.io/tracking-id"] = (
                    f"podinfo:{group}/{obj['kind']}:{meta.get('namespace', NS)}/{meta['name']}"
                )
                manager = "argocd-controller"
            await self.kube.apply(obj, field_manager=manager, force=True)
        # Like the real reconcilers: apply first, report the revision afterwards.
        if self.flavour == "flux":
            await self.kube.patch(
                "kustomize.toolkit.fluxcd.io/v1",
                "Kustomization",
                "apps",
                "flux-system",
                {
                    "status": {
                        "lastAppliedRevision": f"{branch}@sha1:{sha}",
                        "lastAttemptedRevision": f"{branch}@sha1:{sha}",
                    }
                },
                subresource="status",
            )
        else:
            await self.kube.patch(
                "argoproj.io/v1alpha1",
                "Application",
                "podinfo",
                "argocd",
                {"status": {"sync": {"status": "Synced", "revision": sha}}},
                subresource="status",
            )


@pytest.mark.parametrize("flavour", ["flux", "argocd"])
async def test_the_revert_goes_to_the_repository_branch_and_path_the_owner_names(
    flavour: str,
    cluster: SandboxThread,
    kube: KubeClient,
    tmp_path: Path,
    git_root: Path,
    daemon: GitDaemon,
    operators: list[OperatorProcess],  # last: stopped before the Git server goes away
) -> None:
    # Two clusters in one repository; the owner follows branch "production" and clusters/prod.
    # "main" exists too and must not move.
    create_bare_repo(
        git_root,
        "fleet",
        {
            "clusters/prod/podinfo.yaml": deployment_yaml("podinfo:v1"),
            "clusters/prod/canary.yaml": canary_yaml(),
            "clusters/staging/podinfo.yaml": deployment_yaml("podinfo:v1"),
        },
        branch="production",
        message="podinfo v1",
    )
    repo = BareRepo(git_root / "fleet.git", "production")
    run_git("branch", "main", "production", cwd=repo.path)
    v1 = repo.head()
    for group, kind, plural in (
        ("source.toolkit.fluxcd.io", "GitRepository", "gitrepositories"),
        ("kustomize.toolkit.fluxcd.io", "Kustomization", "kustomizations"),
        ("argoproj.io", "Application", "applications"),
    ):
        cluster.apply_manifest(crd(group, kind, plural))
    played = PlayedReconciler(flavour, kube, repo, "clusters/prod")
    await played.install(daemon.url_for(repo), "production")
    await played.sync(v1)
    start_operator(cluster, tmp_path, operators)

    await wait_for_phase(kube, "Initialized", timeout=45, what="the canary to initialize")
    assert (await canary_status(kube)).get("lastGoodRevision") == f"production@sha1:{v1}"

    v2 = repo.commit({"clusters/prod/podinfo.yaml": deployment_yaml("podinfo:v2")}, "prod: v2")
    await played.sync(v2)
    await wait_for_phase(kube, "Succeeded", timeout=60, what="v2 to be promoted")
    assert (await canary_status(kube))["lastGoodRevision"] == f"production@sha1:{v2}"

    # The bad change touches both clusters' files in one commit.
    bad = deployment_yaml("podinfo:v3", never_ready=True)
    v3 = repo.commit(
        {"clusters/prod/podinfo.yaml": bad, "clusters/staging/podinfo.yaml": bad}, "v3 everywhere"
    )
    await played.sync(v3)
    revert = await wait_for_revert(kube)
    revert_sha = str(revert["commit"])
    assert revert["badRevision"] == f"production@sha1:{v3}"

    assert repo.head() == revert_sha
    assert first_parent_history(repo, "production") == [revert_sha, v3, v2, v1]
    assert run_git("rev-parse", "refs/heads/main", cwd=repo.path).strip() == v1
    assert repo.show(revert_sha, "clusters/prod/podinfo.yaml") == deployment_yaml("podinfo:v2")
    assert repo.show(revert_sha, "clusters/staging/podinfo.yaml") == bad
    changed = run_git(
        "diff-tree", "--no-commit-id", "--name-only", "-r", revert_sha, cwd=repo.path
    ).split()
    assert changed == ["clusters/prod/podinfo.yaml"]
    assert trailer_values(repo, revert_sha, "Canary-Reverts") == [v3]
    assert trailer_values(repo, revert_sha, "Canary-Bad-Revision") == [v3]

    # The played reconciler applies the revert; the canary does not start again.
    await played.sync(revert_sha)
    await wait_for_template(kube, "podinfo:v2")
    await assert_no_new_run(kube, 2, seconds=6)


# -- 3. credentials never leak -------------------------------------------------------------------


def read_tree(root: Path, pattern: str) -> list[str]:
    return [p.read_bytes().decode("latin-1") for p in root.glob(pattern) if p.is_file()]


def secret_forms(token: str) -> set[str]:
    raw = token.encode()
    return {
        token,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(b"Bearer " + raw).decode(),
        urllib.parse.quote(token, safe=""),
    }


async def test_a_token_from_a_secret_never_reaches_logs_events_status_or_commits(
    cluster: SandboxThread,
    kube: KubeClient,
    tmp_path: Path,
    operators: list[OperatorProcess],
    git_root: Path,
) -> None:
    token = f"e2e-{secrets.token_hex(20)}"
    forms = secret_forms(token)
    # The target reads a tracked ConfigMap kept in its own file; the bad release changes both.
    repo = create_bare_repo(
        git_root,
        "fleet",
        {
            "apps/podinfo/deployment.yaml": deployment_yaml("podinfo:v1", config=True),
            "apps/podinfo/settings.yaml": configmap_yaml("v1", name="podinfo-config"),
            "apps/podinfo/canary.yaml": canary_yaml(),
        },
        message="podinfo v1",
    )
    v1 = repo.head()
    server = SmartHttpServer(git_root, tokens={token}).start()
    try:
        cluster.apply_manifest(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "git-auth", "namespace": NS},
                "type": "Opaque",
                "data": {"token": base64.b64encode(token.encode()).decode()},
            }
        )
        cluster.apply_manifest(
            {
                "apiVersion": API,
                "kind": "GitSource",
                "metadata": {"name": "fleet", "namespace": NS},
                "spec": {
                    "url": server.url_for(repo),
                    "path": "apps",
                    "interval": "2s",
                    "secretRef": {"name": "git-auth"},
                },
            }
        )
        op = start_operator(cluster, tmp_path, operators, "--log-level", "debug")
        await wait_for_phase(kube, "Initialized", timeout=45, what="the canary to initialize")

        bad = repo.commit(
            {
                "apps/podinfo/deployment.yaml": deployment_yaml(
                    "podinfo:v3", never_ready=True, config=True
                ),
                "apps/podinfo/settings.yaml": configmap_yaml("v3", name="podinfo-config"),
            },
            "podinfo v3",
        )
        revert = await wait_for_revert(kube)
        revert_sha = str(revert["commit"])
        assert repo.head() == revert_sha
        assert trailer_values(repo, revert_sha, "Canary-Reverts") == [bad]
        # Both of the target's files went back: its manifest and the ConfigMap it tracks.
        assert repo.show(revert_sha, "apps/podinfo/deployment.yaml") == deployment_yaml(
            "podinfo:v1", config=True
        )
        assert repo.show(revert_sha, "apps/podinfo/settings.yaml") == configmap_yaml(
            "v1", name="podinfo-config"
        )
        await wait_for_template(kube, "podinfo:v1")

        # Then the server stops accepting the token: git's own error path runs too.
        before_refusal = len(server.requests)
        server.tokens.clear()
        server.tokens.add("someone-else")

        async def refused() -> str | None:
            gs = await kube.get(API, "GitSource", "fleet", NS)
            for condition in ((gs or {}).get("status") or {}).get("conditions") or ():
                if condition.get("type") == "Ready" and condition.get("reason") == "CloneFailed":
                    return str(condition.get("message"))
            return None

        await eventually(refused, timeout=20, what="the GitSource to report CloneFailed")
        op.stop()
    finally:
        server.stop()

    # The flow really used the token: fetches and the push were authorised with it; then the
    # same token was refused.
    accepted = server.requests[:before_refusal]
    assert accepted and all(r.authorization == f"Bearer {token}" for r in accepted)
    assert all(r.status == 200 for r in accepted)
    assert any(r.method == "POST" and "git-receive-pack" in r.path for r in accepted)
    assert any(r.status == 401 for r in server.requests[before_refusal:])
    assert first_parent_history(repo, "main") == [revert_sha, bad, v1]

    log_text = op.output()
    assert "DEBUG" in log_text and "git fetch" in log_text, "the log is not debug-level"
    events = await kube.list("v1", "Event", None)
    assert any("Reverted podinfo.default in Git" in str(e.get("message")) for e in events)
    canary_obj = await kube.get(API, "Canary", "podinfo", NS)
    gitsource = await kube.get(API, "GitSource", "fleet", NS)
    assert canary_obj is not None and gitsource is not None
    messages = run_git("log", "--all", "--format=%B", cwd=repo.path)
    cache_files = read_tree(tmp_path, "git-cache-*/**/*")
    assert cache_files, "the operator's Git cache is empty"
    places = {
        "operator log": log_text,
        "Events": json.dumps(events),
        "Canary": json.dumps(canary_obj),
        "GitSource": json.dumps(gitsource),
        "commit messages": messages,
        "Git cache": "\n".join(cache_files),
    }
    leaks = [(where, form) for where, text in places.items() for form in forms if form in text]
    assert leaks == []


# -- 4. no history rewriting anywhere under canary/ -------------------------------------------

#: The push guard in the gitops package must name the options it refuses.
GUARD_NAMES = {"_FORBIDDEN_PUSH_FLAGS", "_FORCED_REFSPEC"}
#: Forbidden as a whole string literal anywhere (outside docstrings and the guard).
FORBIDDEN_EXACT = {"--force", "--force-with-lease", "--force-if-includes", "--mirror"}
#: Forbidden inside any string literal.
FORBIDDEN_FRAGMENTS = (
    "--force-with-lease",
    "--force-if-includes",
    "+refs/",
    "push -f",
    "push --force",
    "reset --hard",
    "update-ref -d",
)
#: Forbidden as an argument of a call that also passes "push".
FORBIDDEN_PUSH_ARGS = {"-f", "--delete", "-d", "--prune", "--all", "--mirror"}


def _skipped_literals(tree: ast.AST) -> set[int]:
    """Docstrings, the push guard's own lists, and `typer.Option(...)` flag names (a CLI
    option called --force is not an argument to git)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                skipped.add(id(body[0].value))
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id in GUARD_NAMES for t in node.targets
        ):
            skipped.update(id(n) for n in ast.walk(node.value))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "Option"
        ):
            skipped.update(id(a) for a in node.args if isinstance(a, ast.Constant))
    return skipped


def _push_offences(call: ast.Call) -> list[str]:
    """A call that passes "push": no force, deletion or mirror flag, no "+" refspec."""
    out = []
    for arg in call.args:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            if arg.value in FORBIDDEN_PUSH_ARGS or arg.value.startswith("+"):
                out.append(arg.value)
        elif isinstance(arg, ast.JoinedStr) and arg.values:
            first = arg.values[0]
            if isinstance(first, ast.Constant) and str(first.value).startswith("+"):
                out.append(ast.unparse(arg))
    return out


def test_no_source_under_canary_passes_a_force_flag_to_git() -> None:
    files = sorted((ROOT / "canary").rglob("*.py"))
    assert len(files) > 50
    offences: list[str] = []
    pushes: list[str] = []
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        skipped = _skipped_literals(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and any(
                isinstance(a, ast.Constant) and a.value == "push" for a in node.args
            ):
                offences += [f"{rel}:{node.lineno}: push {bad!r}" for bad in _push_offences(node)]
                if not rel.startswith("canary/demo/"):  # the demo's developer pushes too
                    pushes.append(rel)
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
                continue
            if id(node) in skipped:
                continue
            value = node.value
            if value.strip() in FORBIDDEN_EXACT or any(f in value for f in FORBIDDEN_FRAGMENTS):
                offences.append(f"{rel}:{node.lineno}: {value!r}")
        # Not in comments or docstrings either: nothing may even suggest a forced update.
        for number, line in enumerate(text.splitlines(), 1):
            if any(f in line for f in ("push -f", "push --force", "reset --hard origin")):
                offences.append(f"{rel}:{number}: {line.strip()}")
    assert offences == []
    # What `canary run` can reach pushes in one place: the gitops workspace's plain
    # fast-forward `<commit>:refs/heads/<branch>` (its shape is checked in tests/gitops).
    assert pushes == ["canary/adapters/gitops/workspace.py"]
