"""Issue 11 end to end: the Git revert on the repository layouts people really keep.

One sandbox cluster, one real operator (`canary run` as a process) and one `git daemon` play
eleven layouts side by side, each in its own namespace with its own repository:

* applied by the built-in GitSource, which renders with real ``kubectl kustomize``: plain
  manifests; a base and an overlay whose release is an ``images:`` entry; an overlay with a
  patch file; a component; a commit that changes the image and an unrelated file; two bad
  commits in a row; a good commit on top of the bad one; an image-automation setter;
* made by Helm from an object kept in Git (the GitSource applies it, a played controller
  renders it, as Flux's helm-controller and Argo CD would): a HelmRelease with inline values;
  a HelmRelease whose values come from a ConfigMap manifest; an Argo CD Application with Helm
  parameters.

A release fails by its image alone: the sandbox runs an image whose tag ends with
``-never-ready`` as never ready, so the canary misses its progress deadline and rolls back.
For each layout the module records what happened (`LayoutRun`) and one test per layout checks
it: the release was applied, the canary rolled back, the revert commit changes exactly what
the bad revision changed for the target and nothing else, and the cluster is back on the good
image. The image-automation layout also plays Flux's automation after the revert and checks
that it does not push the bad tag again. docs/gitops.md has the table of these layouts.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.adapters.kube import KubeClient, connect
from kubesandbox import SandboxThread
from tests.e2e.support import ROOT, OperatorProcess, eventually, start_operator
from tests.git_fixtures import BareRepo, GitDaemon, create_bare_repo, run_git
from tests.gitops.image_automation import PlayedImageAutomation

pytestmark = pytest.mark.slow

API = "canary.gitops.dev/v1beta1"
IMAGE = "ghcr.io/acme/podinfo"
GOOD_TAG, BAD_TAG = "1.0.0", "1.1.0-never-ready"
GOOD_IMAGE, BAD_IMAGE = f"{IMAGE}:{GOOD_TAG}", f"{IMAGE}:{BAD_TAG}"
TIMEOUT = 120.0  # eleven canaries share two cores: generous, waited on conditions


# -- manifests ------------------------------------------------------------------------------


def deployment(
    image: str = GOOD_IMAGE, *, name: str = "podinfo", namespace: str | None = None, env: str = ""
) -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    extra = f"\n          env:\n            - {{name: MODE, value: {env}}}" if env else ""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}{ns}
spec:
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: app
          image: {image}{extra}
"""


def kustomization(body: str) -> str:
    return "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" + body


def overlay(ns: str, podinfo: str = GOOD_TAG, backend: str = "2.0.0", extra: str = "") -> str:
    return kustomization(
        f"namespace: {ns}\nresources: [../../base]\nimages:\n"
        f"  - name: {IMAGE}\n    newTag: {podinfo}\n"
        f"  - name: ghcr.io/acme/backend\n    newTag: {backend}\n{extra}"
    )


BASE = {
    "apps/base/kustomization.yaml": kustomization("resources: [podinfo.yaml, backend.yaml]\n"),
    "apps/base/podinfo.yaml": deployment(),
    "apps/base/backend.yaml": deployment("ghcr.io/acme/backend:2.0.0", name="backend"),
}


def image_patch(tag: str) -> str:
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: podinfo}\nspec:\n"
        "  template:\n    spec:\n      containers:\n"
        f"        - name: app\n          image: {IMAGE}:{tag}\n"
    )


def component(tag: str) -> str:
    return (
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n"
        "  - target: {kind: Deployment, name: podinfo}\n    patch: |-\n"
        "      - op: replace\n        path: /spec/template/spec/containers/0/image\n"
        f"        value: {IMAGE}:{tag}\n"
    )


def helmrelease(ns: str, tag: str, *, values_from: bool = False, interval: str = "5m") -> str:
    values = f"  values:\n    image:\n      repository: {IMAGE}\n      tag: {tag}\n"
    if values_from:
        values = "  valuesFrom:\n    - kind: ConfigMap\n      name: podinfo-values\n"
    return f"""\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: {ns}
spec:
  interval: {interval}
  chart:
    spec:
      chart: podinfo
      version: 6.5.0
      sourceRef: {{kind: HelmRepository, name: podinfo}}
{values}"""


def values_configmap(ns: str, tag: str, replicas: int = 2) -> str:
    return f"""\
apiVersion: v1
kind: ConfigMap
metadata:
  name: podinfo-values
  namespace: {ns}
data:
  values.yaml: |
    replicaCount: {replicas}
    image:
      repository: {IMAGE}
      tag: {tag}
"""


def application(ns: str, tag: str, prune: str = "false") -> str:
    return f"""\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: podinfo
  namespace: {ns}
spec:
  project: default
  destination: {{server: https://kubernetes.default.svc, namespace: {ns}}}
  source:
    repoURL: https://charts.example.com/podinfo
    chart: podinfo
    targetRevision: 6.5.0
    helm:
      parameters:
        - name: image.repository
          value: {IMAGE}
        - name: image.tag
          value: "{tag}"
  syncPolicy: {{automated: {{prune: {prune}}}}}
"""


def automation_objects(ns: str) -> str:
    return f"""\
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageRepository
metadata:
  name: podinfo
  namespace: {ns}
spec:
  image: {IMAGE}
  interval: 5m
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: {ns}
spec:
  imageRepositoryRef:
    name: podinfo
  policy:
    alphabetical:
      order: asc
"""


def marked_deployment(ns: str, tag: str) -> str:
    return deployment(namespace=ns).replace(
        f"image: {GOOD_IMAGE}", f'image: {IMAGE}:{tag} # {{"$imagepolicy": "{ns}:podinfo"}}'
    )


def canary(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {
            "provider": "kubernetes",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "progressDeadlineSeconds": 4,
            "service": {"port": 9898},
            "analysis": {"interval": "10s", "threshold": 1, "iterations": 1},
        },
    }


def crd(group: str, version: str, kind: str, plural: str) -> dict[str, Any]:
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
                    "name": version,
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


# -- played controllers ---------------------------------------------------------------------


def _values(release: dict[str, Any], configmaps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for ref in (release.get("spec") or {}).get("valuesFrom") or ():
        data = (configmaps.get(ref["name"]) or {}).get("data") or {}
        values.update(yaml.safe_load(data.get("values.yaml", "")) or {})
    values.update((release.get("spec") or {}).get("values") or {})
    return values


def rendered_deployment(
    ns: str, image: str, labels: dict[str, str], annotations: dict[str, str]
) -> dict[str, Any]:
    body = yaml.safe_load(deployment(image, namespace=ns))
    body["metadata"]["labels"] = labels
    body["metadata"]["annotations"] = annotations
    return dict(body)


async def play_helm_controller(kube: KubeClient, ns: str) -> None:
    """Flux's helm-controller for a one-template chart: the Deployment's image is
    ``{image.repository}:{image.tag}`` of the release's values."""
    while True:
        for release in await kube.list("helm.toolkit.fluxcd.io/v2", "HelmRelease", ns):
            configmaps = {c["metadata"]["name"]: c for c in await kube.list("v1", "ConfigMap", ns)}
            image = _values(release, configmaps).get("image") or {}
            if not image.get("repository") or not image.get("tag"):
                continue  # a valuesFrom ConfigMap not applied yet: helm-controller waits too
            name = release["metadata"]["name"]
            body = rendered_deployment(
                ns,
                f"{image.get('repository')}:{image.get('tag')}",
                {
                    "helm.toolkit.fluxcd.io/name": name,
                    "helm.toolkit.fluxcd.io/namespace": ns,
                    "app.kubernetes.io/managed-by": "Helm",
                },
                {"meta.helm.sh/release-name": name, "meta.helm.sh/release-namespace": ns},
            )
            await kube.apply(body, field_manager="helm-controller", force=True)
            # Like helm-controller: the release is reconciled once the objects are applied.
            generation = release["metadata"].get("generation")
            if (release.get("status") or {}).get("observedGeneration") != generation:
                await kube.patch(
                    "helm.toolkit.fluxcd.io/v2",
                    "HelmRelease",
                    name,
                    ns,
                    {"status": {"observedGeneration": generation}},
                    subresource="status",
                )
        await asyncio.sleep(0.3)  # a poll of the played controller, not a wait for a result


async def play_argocd_helm(kube: KubeClient, ns: str) -> None:
    """Argo CD's application controller for a Helm chart source: ``helm.parameters`` set
    ``image.repository`` and ``image.tag``; objects carry Argo CD's tracking annotation."""
    while True:
        for app in await kube.list("argoproj.io/v1alpha1", "Application", ns):
            params = {
                p["name"]: p["value"]
                for p in (((app.get("spec") or {}).get("source") or {}).get("helm") or {}).get(
                    "parameters"
                )
                or ()
            }
            name = app["metadata"]["name"]
            body = rendered_deployment(
                ns,
                f"{params.get('image.repository')}:{params.get('image.tag')}",
                {},
                {"argocd.argoproj.io/tracking-id": f"{ns}_{name}:apps/Deployment:{ns}/podinfo"},
            )
            await kube.apply(body, field_manager="argocd-controller", force=True)
            # Like Argo CD: synced, compared with the source it applied.
            source = (app.get("spec") or {}).get("source")
            sync = {"status": "Synced", "comparedTo": {"source": source}}
            if ((app.get("status") or {}).get("sync") or {}) != sync:
                await kube.patch(
                    "argoproj.io/v1alpha1",
                    "Application",
                    name,
                    ns,
                    {"status": {"sync": sync}},
                    subresource="status",
                )
        await asyncio.sleep(0.3)  # a poll of the played controller, not a wait for a result


# -- the layouts ----------------------------------------------------------------------------


@dataclass
class Layout:
    """A repository layout: its files at the good revision, how the bad release is committed,
    and what the revert commit must change (``{file: [-old, +new, ...]}``)."""

    name: str
    path: str
    files: Callable[[str], dict[str, str]]
    release: Callable[[BareRepo, str], Awaitable[None]]
    expected: Callable[[str], dict[str, list[str]]]
    player: Callable[[KubeClient, str], Awaitable[None]] | None = None
    automation: bool = False

    @property
    def namespace(self) -> str:
        return f"l-{self.name}"


def commit(
    files: dict[str, str | None], message: str
) -> Callable[[BareRepo, str], Awaitable[None]]:
    async def release(repo: BareRepo, ns: str) -> None:
        repo.commit({k: (v.replace("{ns}", ns) if v else v) for k, v in files.items()}, message)

    return release


def tag_line(old: str, new: str, indent: int = 4) -> list[str]:
    pad = " " * indent
    return [f"-{pad}newTag: {old}", f"+{pad}newTag: {new}"]


async def _two_bad_commits(repo: BareRepo, ns: str) -> None:
    repo.commit({"apps/podinfo.yaml": deployment(BAD_IMAGE, namespace=ns)}, "podinfo 1.1.0")
    repo.commit(
        {"apps/podinfo.yaml": deployment(BAD_IMAGE, namespace=ns, env="fast")}, "podinfo: fast"
    )


async def _good_on_top(repo: BareRepo, ns: str) -> None:
    repo.commit({"apps/overlays/prod/kustomization.yaml": overlay(ns, BAD_TAG)}, "podinfo 1.1.0")
    repo.commit(
        {"apps/overlays/prod/kustomization.yaml": overlay(ns, BAD_TAG, "2.1.0")}, "backend 2.1.0"
    )


LAYOUTS = [
    Layout(
        "plain",
        "apps",
        lambda ns: {"apps/podinfo.yaml": deployment(namespace=ns)},
        commit({"apps/podinfo.yaml": deployment(BAD_IMAGE, namespace="{ns}")}, "podinfo 1.1.0"),
        lambda ns: {
            "apps/podinfo.yaml": [
                f"-          image: {BAD_IMAGE}",
                f"+          image: {GOOD_IMAGE}",
            ]
        },
    ),
    Layout(
        "overlay-images",
        "apps/overlays/prod",
        lambda ns: {**BASE, "apps/overlays/prod/kustomization.yaml": overlay(ns)},
        commit(
            {"apps/overlays/prod/kustomization.yaml": overlay("{ns}", BAD_TAG, "2.1.0")},
            "release podinfo 1.1.0 and backend 2.1.0",
        ),
        lambda ns: {"apps/overlays/prod/kustomization.yaml": tag_line(BAD_TAG, GOOD_TAG)},
    ),
    Layout(
        "overlay-patch",
        "apps/overlays/prod",
        lambda ns: {
            **BASE,
            "apps/overlays/prod/kustomization.yaml": kustomization(
                f"namespace: {ns}\nresources: [../../base]\npatches:\n  - path: image.yaml\n"
            ),
            "apps/overlays/prod/image.yaml": image_patch(GOOD_TAG),
        },
        commit({"apps/overlays/prod/image.yaml": image_patch(BAD_TAG)}, "podinfo 1.1.0"),
        lambda ns: {
            "apps/overlays/prod/image.yaml": [
                f"-          image: {BAD_IMAGE}",
                f"+          image: {GOOD_IMAGE}",
            ]
        },
    ),
    Layout(
        "component",
        "apps/overlays/prod",
        lambda ns: {
            **BASE,
            "apps/components/release/kustomization.yaml": component(GOOD_TAG),
            "apps/overlays/prod/kustomization.yaml": kustomization(
                f"namespace: {ns}\nresources: [../../base]\n"
                "components: [../../components/release]\n"
            ),
        },
        commit({"apps/components/release/kustomization.yaml": component(BAD_TAG)}, "1.1.0"),
        lambda ns: {
            "apps/components/release/kustomization.yaml": [
                f"-        value: {BAD_IMAGE}",
                f"+        value: {GOOD_IMAGE}",
            ]
        },
    ),
    Layout(
        "image-and-unrelated-file",
        "apps",
        lambda ns: {"apps/podinfo.yaml": deployment(namespace=ns), "docs/README.md": "v1\n"},
        commit(
            {
                "apps/podinfo.yaml": deployment(BAD_IMAGE, namespace="{ns}"),
                "docs/README.md": "v1.1 is out\n",
            },
            "podinfo 1.1.0, and the docs",
        ),
        lambda ns: {
            "apps/podinfo.yaml": [
                f"-          image: {BAD_IMAGE}",
                f"+          image: {GOOD_IMAGE}",
            ]
        },
    ),
    Layout(
        "two-bad-commits",
        "apps",
        lambda ns: {"apps/podinfo.yaml": deployment(namespace=ns)},
        _two_bad_commits,
        lambda ns: {
            "apps/podinfo.yaml": [
                f"-          image: {BAD_IMAGE}",
                "-          env:",
                "-            - {name: MODE, value: fast}",
                f"+          image: {GOOD_IMAGE}",
            ]
        },
    ),
    Layout(
        "good-commit-on-top",
        "apps/overlays/prod",
        lambda ns: {**BASE, "apps/overlays/prod/kustomization.yaml": overlay(ns)},
        _good_on_top,
        lambda ns: {"apps/overlays/prod/kustomization.yaml": tag_line(BAD_TAG, GOOD_TAG)},
    ),
    Layout(
        "helmrelease-values",
        "releases",
        lambda ns: {"releases/podinfo.yaml": helmrelease(ns, GOOD_TAG)},
        commit(
            {"releases/podinfo.yaml": helmrelease("{ns}", BAD_TAG, interval="1m")},
            "podinfo 1.1.0, reconcile every minute",
        ),
        lambda ns: {"releases/podinfo.yaml": [f"-      tag: {BAD_TAG}", f"+      tag: {GOOD_TAG}"]},
        player=play_helm_controller,
    ),
    Layout(
        "helmrelease-values-configmap",
        "releases",
        lambda ns: {
            "releases/podinfo.yaml": helmrelease(ns, GOOD_TAG, values_from=True),
            "releases/values.yaml": values_configmap(ns, GOOD_TAG),
        },
        commit({"releases/values.yaml": values_configmap("{ns}", BAD_TAG)}, "podinfo 1.1.0"),
        lambda ns: {"releases/values.yaml": [f"-      tag: {BAD_TAG}", f"+      tag: {GOOD_TAG}"]},
        player=play_helm_controller,
    ),
    Layout(
        "argocd-helm-parameters",
        "argocd",
        lambda ns: {"argocd/podinfo.yaml": application(ns, GOOD_TAG)},
        commit(
            {"argocd/podinfo.yaml": application("{ns}", BAD_TAG, prune="true")},
            "podinfo 1.1.0, prune",
        ),
        lambda ns: {
            "argocd/podinfo.yaml": [
                f'-          value: "{BAD_TAG}"',
                f'+          value: "{GOOD_TAG}"',
            ]
        },
        player=play_argocd_helm,
    ),
    Layout(
        "image-automation",
        "apps",
        lambda ns: {
            "apps/podinfo.yaml": marked_deployment(ns, GOOD_TAG),
            "apps/automation.yaml": automation_objects(ns),
        },
        lambda repo, ns: asyncio.sleep(0),  # the played automation makes the release
        lambda ns: {
            "apps/podinfo.yaml": [
                f'-          image: {BAD_IMAGE} # {{"$imagepolicy": "{ns}:podinfo"}}',
                f'+          image: {GOOD_IMAGE} # {{"$imagepolicy": "{ns}:podinfo"}}',
            ]
        },
        automation=True,
    ),
]


# -- playing every layout -------------------------------------------------------------------


@dataclass
class LayoutRun:
    good: str = ""
    bad: str = ""
    applied_bad_image: bool = False
    rolled_back: bool = False
    revert: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, list[str]] = field(default_factory=dict)
    revert_parent: str = ""
    image_after: str = ""
    phase_after: str = ""
    automation_commits_after_revert: list[str | None] = field(default_factory=list)
    exclusion_commit: str = ""
    history: list[str] = field(default_factory=list)
    error: str = ""
    details: str = ""


def changed_lines(repo: BareRepo, sha: str) -> dict[str, list[str]]:
    out = run_git("show", "--format=", "-U0", "--no-renames", sha, cwd=repo.path)
    found: dict[str, list[str]] = {}
    current = ""
    for line in out.splitlines():
        if line.startswith(("+++ ", "--- ")):
            if line[4:] != "/dev/null":
                current = line[6:]
            continue
        if line.startswith(("+", "-")) and current:
            found.setdefault(current, []).append(line)
    return found


async def image_of(kube: KubeClient, ns: str, name: str = "podinfo") -> str:
    obj = await kube.get("apps/v1", "Deployment", name, ns)
    if obj is None:
        return ""
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


async def status_of(kube: KubeClient, ns: str) -> dict[str, Any]:
    obj = await kube.get(API, "Canary", "podinfo", ns)
    return dict((obj or {}).get("status") or {})


async def play(
    layout: Layout, kube: KubeClient, daemon: GitDaemon, git_root: Path, record: LayoutRun
) -> None:
    ns = layout.namespace
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    repo = create_bare_repo(git_root, layout.name, layout.files(ns), message="good")
    record.good = repo.head()
    await kube.create(
        {
            "apiVersion": API,
            "kind": "GitSource",
            "metadata": {"name": "fleet", "namespace": ns},
            "spec": {"url": daemon.url_for(repo), "path": layout.path, "interval": "1s"},
        }
    )
    player = asyncio.create_task(layout.player(kube, ns)) if layout.player else None
    automation = None
    if layout.automation:
        registry: dict[str, list[str]] = {IMAGE: [GOOD_TAG]}
        objects: list[dict[str, Any]] = []
        automation = PlayedImageAutomation(repo, registry, lambda: objects, namespace=ns)

        async def refresh() -> None:
            objects[:] = [
                *await kube.list("image.toolkit.fluxcd.io/v1beta2", "ImageRepository", ns),
                *await kube.list("image.toolkit.fluxcd.io/v1beta2", "ImagePolicy", ns),
            ]

    try:

        async def good_applied() -> bool:
            return await image_of(kube, ns) == GOOD_IMAGE

        await eventually(good_applied, timeout=TIMEOUT, what=f"{ns}: the good target applied")
        await kube.create(canary(ns))

        async def initialized() -> bool:
            status = await status_of(kube, ns)
            return status.get("phase") == "Initialized" and bool(status.get("lastGoodRevision"))

        await eventually(initialized, timeout=TIMEOUT, what=f"{ns}: the canary to initialize")
        if automation is not None:
            # The registry gets the new tag; one automation pass writes it into Git.
            registry[IMAGE].append(BAD_TAG)

            async def policies_seen() -> bool:
                await refresh()
                return len(objects) == 2

            await eventually(policies_seen, timeout=TIMEOUT, what=f"{ns}: the image policy")
            assert automation.run_once() is not None, "the automation wrote no release"
        else:
            await layout.release(repo, ns)
        record.bad = repo.head()

        async def bad_applied() -> bool:
            return await image_of(kube, ns) == BAD_IMAGE

        await eventually(bad_applied, timeout=TIMEOUT, what=f"{ns}: the release applied")
        record.applied_bad_image = True

        async def reverted() -> dict[str, Any] | None:
            status = await status_of(kube, ns)
            revert = status.get("gitRevert") or {}
            if status.get("phase") == "Failed":
                record.rolled_back = True
            if revert.get("state") in ("Reverted", "Unresolved", "Failed") and (
                revert.get("state") != "Failed" or not revert.get("retriable", True)
            ):
                return dict(revert)
            return None

        record.revert = await eventually(reverted, timeout=TIMEOUT, what=f"{ns}: the revert")
        sha = str(record.revert.get("commit") or "")
        if sha:
            record.changed = changed_lines(repo, sha)
            record.revert_parent = run_git("log", "-1", "--format=%P", sha, cwd=repo.path).strip()

        async def good_again() -> bool:
            return await image_of(kube, ns) == GOOD_IMAGE

        await eventually(good_again, timeout=TIMEOUT, what=f"{ns}: the good image again")
        record.image_after = await image_of(kube, ns)
        if automation is not None:
            head = repo.head()

            async def applied_head() -> bool:
                gs = await kube.get(API, "GitSource", "fleet", ns)
                done = ((gs or {}).get("status") or {}).get("lastAppliedRevision")
                return done == f"main@sha1:{repo.head()}"

            await eventually(applied_head, timeout=TIMEOUT, what=f"{ns}: the exclusion applied")
            if repo.head() != sha:
                record.exclusion_commit = repo.head()
            # Flux's automation runs again, twice: the failed tag must not come back.
            for _ in range(2):
                await refresh()
                record.automation_commits_after_revert.append(automation.run_once())
            assert head == repo.head() or record.exclusion_commit
        final = await status_of(kube, ns)
        record.phase_after = str(final.get("phase"))
        if record.phase_after != "Failed":
            events = await kube.list("v1", "Event", ns)
            record.details = json.dumps(
                {
                    "status": {
                        k: final.get(k)
                        for k in ("message", "currentRevision", "lastGoodRevision", "gitRevert")
                    },
                    "events": [str(e.get("message")) for e in events][-20:],
                },
                indent=1,
            )
        record.history = run_git("rev-list", "--first-parent", "main", cwd=repo.path).split()
    except Exception:
        record.error = traceback.format_exc()
        record.revert = record.revert or (await status_of(kube, ns)).get("gitRevert") or {}
    finally:
        if player is not None:
            player.cancel()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LayoutRun]]:
    tmp = tmp_path_factory.mktemp("layouts")
    git_root = tmp / "srv"
    git_root.mkdir()
    daemon = GitDaemon(git_root).start()
    operators: list[OperatorProcess] = []
    records = {layout.name: LayoutRun() for layout in LAYOUTS}
    try:
        with SandboxThread(speed=10.0, kubeconfig_path=tmp / "kubeconfig") as cluster:
            for path in sorted((ROOT / "crds").glob("*.yaml")):
                cluster.apply_file(path)
            for definition in (
                crd("helm.toolkit.fluxcd.io", "v2", "HelmRelease", "helmreleases"),
                crd("argoproj.io", "v1alpha1", "Application", "applications"),
                crd("image.toolkit.fluxcd.io", "v1beta2", "ImageRepository", "imagerepositories"),
                crd("image.toolkit.fluxcd.io", "v1beta2", "ImagePolicy", "imagepolicies"),
            ):
                cluster.apply_manifest(definition)
            start_operator(cluster, tmp, operators)

            async def all_layouts() -> None:
                kube = await connect(str(cluster.kubeconfig_path))
                try:
                    await asyncio.gather(
                        *(play(lay, kube, daemon, git_root, records[lay.name]) for lay in LAYOUTS)
                    )
                finally:
                    await kube.aclose()

            asyncio.run(all_layouts())
            for op in operators:
                op.stop()
            yield records
    finally:
        for op in operators:
            op.stop()
        daemon.stop()
        if any(r.error for r in records.values()):
            log = tmp / "operator-0.log"
            print(log.read_text()[-20000:] if log.exists() else "no operator log")


@pytest.mark.parametrize("layout", LAYOUTS, ids=[lay.name for lay in LAYOUTS])
def test_the_release_is_rolled_back_and_reverted_in_git_to_exactly_the_good_target(
    layout: Layout, runs: dict[str, LayoutRun]
) -> None:
    run = runs[layout.name]
    assert not run.error, f"{layout.name}: {run.error}\nrevert: {run.revert}"
    assert run.applied_bad_image and run.rolled_back
    assert run.revert.get("state") == "Reverted", run.revert
    assert run.revert.get("goodRevision") == f"main@sha1:{run.good}"
    # The revert commit changes exactly what the bad revision changed for the target.
    assert run.changed == layout.expected(layout.namespace)
    assert run.revert_parent in run.history  # on top of the branch, nothing rewritten
    assert run.history[-1] == run.good
    assert run.image_after == GOOD_IMAGE
    assert run.phase_after == "Failed", run.details  # the reverted template starts no new run


def test_image_automation_does_not_push_the_failed_tag_again(runs: dict[str, LayoutRun]) -> None:
    run = runs["image-automation"]
    assert not run.error, run.error
    assert run.exclusion_commit, "no exclusion was committed for the ImageRepository"
    assert run.automation_commits_after_revert == [None, None]
    assert "excluded tag" in str(run.revert.get("message"))
