"""The revert restores exactly what made the target bad, on the layouts people keep in Git.

Each test builds a real repository (a bare repository, commits pushed as a developer would),
commits a good and a bad revision in one of the layouts Flux and Argo CD users keep, and
asks the reverter to revert the canary's target. The reverter renders with real
``kubectl kustomize``; the assertions look at the revert commit itself: which files and
which lines it changes, and that everything else of the bad commit stays.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from canary.adapters.gitops import (
    ArgoApplicationSubject,
    ChartDirSubject,
    GitRepository,
    GitRevertRequest,
    HelmReleaseSubject,
    ManifestRef,
    Reverted,
    Reverter,
    Subject,
    Unresolved,
    WorkloadSubject,
)
from canary.adapters.gitops.attribution import _Scratch
from canary.adapters.gitops.manifests import Manifest
from tests.git_fixtures import BareRepo, run_git

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is needed")

PODINFO = ManifestRef("apps/v1", "Deployment", "prod", "podinfo")


def deployment(name: str = "podinfo", image: str = "ghcr.io/org/podinfo:1.0.0") -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: app
          image: {image}
"""


def overlay(podinfo_tag: str = "1.0.0", backend_tag: str = "2.0.0", extra: str = "") -> str:
    return f"""\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: prod
resources:
  - ../../base
images:
  - name: ghcr.io/org/podinfo
    newTag: {podinfo_tag}
  - name: ghcr.io/org/backend
    newTag: {backend_tag}
{extra}"""


BASE = {
    "apps/base/kustomization.yaml": "resources: [podinfo.yaml, backend.yaml]\n",
    "apps/base/podinfo.yaml": deployment(),
    "apps/base/backend.yaml": deployment("backend", "ghcr.io/org/backend:2.0.0"),
}


def request(repo: BareRepo, good: str, bad: str, subject: Subject) -> GitRevertRequest:
    return GitRevertRequest(
        repository=GitRepository(repo.file_url, "main"),
        good_revision=good,
        bad_revision=bad,
        canary="prod/podinfo",
        reason=("request-success-rate 91% < 99%",),
        subject=subject,
    )


def overlay_subject(path: str = "apps/overlays/prod") -> WorkloadSubject:
    return WorkloadSubject(PODINFO, source_path=path, default_namespace="prod")


def changed_lines(repo: BareRepo, commit: str) -> dict[str, list[str]]:
    """The lines a commit removes and adds, per file (``-old`` / ``+new``)."""
    out = run_git("show", "--format=", "-U0", "--no-renames", commit, cwd=repo.path)
    found: dict[str, list[str]] = {}
    current = ""
    for line in out.splitlines():
        if line.startswith("+++ ") or line.startswith("--- "):
            name = line[4:]
            if name != "/dev/null":
                current = name[2:]
                found.setdefault(current, [])
            continue
        if line.startswith(("+", "-")) and current:
            found[current].append(line)
    return {k: v for k, v in found.items() if v}


@pytest.fixture
def fleet(bare_repo: Callable[..., BareRepo]) -> BareRepo:
    return bare_repo(
        "fleet",
        {
            **BASE,
            "apps/overlays/prod/kustomization.yaml": overlay(),
            "README.md": "fleet\n",
        },
    )


class TestKustomizeOverlays:
    async def test_an_images_entry_is_reverted_and_the_other_apps_new_tag_stays(
        self, fleet: BareRepo, reverter: Reverter
    ) -> None:
        good = fleet.head()
        bad = fleet.commit(
            {"apps/overlays/prod/kustomization.yaml": overlay("1.1.0", "2.1.0")},
            "release podinfo 1.1.0 and backend 2.1.0",
        )

        result = await reverter.revert(request(fleet, good, bad, overlay_subject()))

        assert isinstance(result, Reverted)
        assert changed_lines(fleet, result.commit_sha) == {
            "apps/overlays/prod/kustomization.yaml": ["-    newTag: 1.1.0", "+    newTag: 1.0.0"]
        }
        assert fleet.show("main", "apps/overlays/prod/kustomization.yaml") == overlay(
            "1.0.0", "2.1.0"
        )
        message = fleet.message(result.commit_sha)
        assert "other change(s) kept" in message and "Deployment podinfo" in message

    async def test_a_patch_file_that_sets_the_image_is_restored(
        self, fleet: BareRepo, reverter: Reverter
    ) -> None:
        patch = (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: podinfo}\nspec:\n"
            "  template:\n    spec:\n      containers:\n"
            "        - name: app\n          image: ghcr.io/org/podinfo:{tag}\n"
        )
        good = fleet.commit(
            {
                # No images: entry here; the patch file carries podinfo's image.
                "apps/overlays/prod/kustomization.yaml": (
                    "namespace: prod\nresources: [../../base]\npatches:\n  - path: image.yaml\n"
                ),
                "apps/overlays/prod/image.yaml": patch.replace("{tag}", "1.0.5"),
            },
            "patch podinfo's image",
        )
        bad = fleet.commit(
            {"apps/overlays/prod/image.yaml": patch.replace("{tag}", "1.1.0"), "README.md": "x\n"},
            "podinfo 1.1.0, and docs",
        )

        result = await reverter.revert(request(fleet, good, bad, overlay_subject()))

        assert isinstance(result, Reverted)
        assert list(changed_lines(fleet, result.commit_sha)) == ["apps/overlays/prod/image.yaml"]
        assert fleet.show("main", "README.md") == "x\n"

    async def test_a_component_and_a_base_manifest_outside_the_path_are_found(
        self, fleet: BareRepo, reverter: Reverter
    ) -> None:
        component = (
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n"
            "  - target: {kind: Deployment, name: podinfo}\n    patch: |-\n"
            "      - op: add\n        path: /spec/template/metadata/annotations\n"
            '        value: {tier: "VALUE"}\n'
        )
        good = fleet.commit(
            {
                "apps/components/tier/kustomization.yaml": component.replace("VALUE", "gold"),
                "apps/overlays/prod/kustomization.yaml": overlay(
                    extra="components:\n  - ../../components/tier\n"
                ),
            },
            "tier component",
        )
        bad = fleet.commit(
            {
                "apps/components/tier/kustomization.yaml": component.replace("VALUE", "bronze"),
                "apps/base/podinfo.yaml": deployment().replace("name: app", "name: application"),
                "apps/base/backend.yaml": deployment("backend", "ghcr.io/org/backend:2.0.0")
                + "# a comment\n",
            },
            "tier bronze, rename the container, comment backend",
        )

        result = await reverter.revert(request(fleet, good, bad, overlay_subject()))

        assert isinstance(result, Reverted)
        assert sorted(changed_lines(fleet, result.commit_sha)) == [
            "apps/base/podinfo.yaml",
            "apps/components/tier/kustomization.yaml",
        ]
        assert fleet.show("main", "apps/base/backend.yaml").endswith("# a comment\n")

    async def test_two_bad_commits_in_a_row_are_undone_together(
        self, fleet: BareRepo, reverter: Reverter
    ) -> None:
        good = fleet.head()
        first = fleet.commit(
            {"apps/overlays/prod/kustomization.yaml": overlay("1.1.0")}, "podinfo 1.1.0"
        )
        second = fleet.commit(
            {"apps/base/podinfo.yaml": deployment().replace("name: app", "name: web")},
            "rename podinfo's container",
        )

        result = await reverter.revert(request(fleet, good, second, overlay_subject()))

        assert isinstance(result, Reverted)
        assert {c.sha for c in result.reverted_commits} == {first, second}
        assert fleet.show("main", "apps/base/podinfo.yaml") == deployment()
        assert fleet.show("main", "apps/overlays/prod/kustomization.yaml") == overlay()

    async def test_a_good_commit_on_top_of_the_bad_one_is_kept(
        self, fleet: BareRepo, reverter: Reverter
    ) -> None:
        good = fleet.head()
        bad = fleet.commit(
            {"apps/overlays/prod/kustomization.yaml": overlay("1.1.0")}, "podinfo 1.1.0"
        )
        on_top = overlay("1.1.0", "2.2.0", extra="commonAnnotations: {owner: web}\n")
        fleet.commit({"apps/overlays/prod/kustomization.yaml": on_top}, "backend 2.2.0, owner")

        result = await reverter.revert(request(fleet, good, bad, overlay_subject()))

        assert isinstance(result, Reverted)
        assert fleet.show("main", "apps/overlays/prod/kustomization.yaml") == overlay(
            "1.0.0", "2.2.0", extra="commonAnnotations: {owner: web}\n"
        )

    async def test_a_generated_configmap_the_target_reads_is_reverted(
        self, fleet: BareRepo, reverter: Reverter
    ) -> None:
        env_from = "          envFrom:\n            - configMapRef: {name: podinfo-config}\n"
        generator = "configMapGenerator:\n  - name: podinfo-config\n    literals: [color=COLOR]\n"
        good = fleet.commit(
            {
                "apps/base/podinfo.yaml": deployment() + env_from,
                "apps/overlays/prod/kustomization.yaml": overlay(
                    extra=generator.replace("COLOR", "blue")
                ),
            },
            "podinfo reads its config",
        )
        bad = fleet.commit(
            {
                "apps/overlays/prod/kustomization.yaml": overlay(
                    "1.0.0", "2.5.0", extra=generator.replace("COLOR", "red")
                )
            },
            "red, and backend 2.5.0",
        )

        result = await reverter.revert(request(fleet, good, bad, overlay_subject()))

        assert isinstance(result, Reverted)
        assert changed_lines(fleet, result.commit_sha) == {
            "apps/overlays/prod/kustomization.yaml": [
                "-    literals: [color=red]",
                "+    literals: [color=blue]",
            ]
        }

    async def test_plain_manifests_with_an_unrelated_change_in_the_same_commit(
        self, bare_repo: Callable[..., BareRepo], reverter: Reverter
    ) -> None:
        repo = bare_repo(
            "plain",
            {
                "apps/podinfo.yaml": deployment().replace(
                    "name: podinfo\n", "name: podinfo\n  namespace: prod\n", 1
                ),
                "apps/other.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
            },
        )
        good = repo.head()
        bad = repo.commit(
            {
                "apps/podinfo.yaml": deployment(image="ghcr.io/org/podinfo:9").replace(
                    "name: podinfo\n", "name: podinfo\n  namespace: prod\n", 1
                ),
                "apps/other.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\n",
            },
            "podinfo 9 and rename x",
        )

        result = await reverter.revert(request(repo, good, bad, overlay_subject("apps")))

        assert isinstance(result, Reverted)
        assert list(changed_lines(repo, result.commit_sha)) == ["apps/podinfo.yaml"]


class TestCannotIsolate:
    async def test_a_change_that_does_not_touch_the_target_is_unresolved_naming_its_files(
        self, fleet: BareRepo, reverter: Reverter
    ) -> None:
        good = fleet.head()
        bad = fleet.commit(
            {"apps/overlays/prod/kustomization.yaml": overlay("1.0.0", "2.9.0")}, "backend 2.9.0"
        )

        result = await reverter.revert(request(fleet, good, bad, overlay_subject()))

        assert isinstance(result, Unresolved)
        assert "renders the same" in result.reason
        assert "apps/base/podinfo.yaml" in result.files
        assert fleet.head() == bad

    async def test_a_target_missing_from_the_path_is_unresolved(
        self, fleet: BareRepo, reverter: Reverter
    ) -> None:
        good = fleet.head()
        bad = fleet.commit({"apps/overlays/prod/kustomization.yaml": overlay("1.1.0")}, "1.1.0")
        subject = replace(overlay_subject(), target=replace(PODINFO, name="frontend"))

        result = await reverter.revert(request(fleet, good, bad, subject))

        assert isinstance(result, Unresolved)
        assert "Deployment frontend is not among the objects of apps/overlays/prod" in result.reason


HELMRELEASE = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: prod
spec:
  interval: {interval}
  chart:
    spec:
      chart: podinfo
      version: "6.5.0"
      sourceRef: {{kind: HelmRepository, name: podinfo}}
  values:
    image:
      tag: {tag}
  valuesFrom:
    - kind: ConfigMap
      name: podinfo-values
"""

VALUES_CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: podinfo-values
  namespace: prod
data:
  values.yaml: |
    replicaCount: {replicas}
"""


class TestHelm:
    @pytest.fixture
    def releases(self, bare_repo: Callable[..., BareRepo]) -> BareRepo:
        return bare_repo(
            "releases",
            {
                "prod/podinfo.yaml": HELMRELEASE.format(interval="5m", tag="6.5.0"),
                "prod/values.yaml": VALUES_CONFIGMAP.format(replicas=2),
            },
        )

    @staticmethod
    def subject() -> HelmReleaseSubject:
        return HelmReleaseSubject(
            ManifestRef("helm.toolkit.fluxcd.io/v2", "HelmRelease", "prod", "podinfo"),
            source_path="prod",
        )

    async def test_inline_values_are_reverted_and_an_interval_change_kept(
        self, releases: BareRepo, reverter: Reverter
    ) -> None:
        good = releases.head()
        bad = releases.commit(
            {"prod/podinfo.yaml": HELMRELEASE.format(interval="1m", tag="6.6.0")},
            "podinfo 6.6.0, reconcile every minute",
        )

        result = await reverter.revert(request(releases, good, bad, self.subject()))

        assert isinstance(result, Reverted)
        assert changed_lines(releases, result.commit_sha) == {
            "prod/podinfo.yaml": ["-      tag: 6.6.0", "+      tag: 6.5.0"]
        }

    async def test_a_values_configmap_manifest_is_reverted(
        self, releases: BareRepo, reverter: Reverter
    ) -> None:
        good = releases.head()
        bad = releases.commit(
            {"prod/values.yaml": VALUES_CONFIGMAP.format(replicas=7)}, "scale podinfo to 7"
        )

        result = await reverter.revert(request(releases, good, bad, self.subject()))

        assert isinstance(result, Reverted)
        assert list(changed_lines(releases, result.commit_sha)) == ["prod/values.yaml"]

    async def test_argo_cd_application_helm_parameters_are_reverted(
        self, bare_repo: Callable[..., BareRepo], reverter: Reverter
    ) -> None:
        app = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: podinfo
  namespace: argocd
spec:
  project: default
  destination: {{server: https://kubernetes.default.svc, namespace: prod}}
  source:
    repoURL: https://stefanprodan.github.io/podinfo
    chart: podinfo
    targetRevision: 6.5.0
    helm:
      parameters:
        - name: image.tag
          value: "{tag}"
  syncPolicy: {{automated: {{prune: {prune}}}}}
"""
        repo = bare_repo("apps", {"argocd/podinfo.yaml": app.format(tag="6.5.0", prune="false")})
        good = repo.head()
        bad = repo.commit(
            {"argocd/podinfo.yaml": app.format(tag="6.6.0", prune="true")}, "6.6.0, prune"
        )
        subject = ArgoApplicationSubject(
            ManifestRef("argoproj.io/v1alpha1", "Application", "argocd", "podinfo"),
            source_path="argocd",
        )

        result = await reverter.revert(request(repo, good, bad, subject))

        assert isinstance(result, Reverted)
        assert changed_lines(repo, result.commit_sha) == {
            "argocd/podinfo.yaml": ['-          value: "6.6.0"', '+          value: "6.5.0"']
        }

    async def test_a_chart_directory_values_file_is_reverted(
        self, bare_repo: Callable[..., BareRepo], reverter: Reverter
    ) -> None:
        repo = bare_repo(
            "charts",
            {
                "charts/podinfo/Chart.yaml": "apiVersion: v2\nname: podinfo\nversion: 1.0.0\n",
                "charts/podinfo/templates/deploy.yaml": "image: {{ .Values.tag }}\n",
                "charts/podinfo/values.yaml": "tag: 6.5.0\n",
                "charts/other/values.yaml": "tag: 1\n",
            },
        )
        good = repo.head()
        bad = repo.commit(
            {"charts/podinfo/values.yaml": "tag: 6.6.0\n", "charts/other/values.yaml": "tag: 2\n"},
            "bump both",
        )

        result = await reverter.revert(request(repo, good, bad, ChartDirSubject("charts/podinfo")))

        assert isinstance(result, Reverted)
        assert list(changed_lines(repo, result.commit_sha)) == ["charts/podinfo/values.yaml"]
        assert repo.show("main", "charts/other/values.yaml") == "tag: 2\n"


class TestTreeShapes:
    async def test_a_file_that_became_a_directory_in_the_same_range_does_not_stop_the_revert(
        self, bare_repo: Callable[..., BareRepo], reverter: Reverter
    ) -> None:
        repo = bare_repo(
            "shapes",
            {
                "apps/podinfo.yaml": deployment().replace(
                    "name: podinfo\n", "name: podinfo\n  namespace: prod\n", 1
                ),
                "docs/runbook": "restart it\n",
            },
        )
        good = repo.head()
        bad = repo.commit(
            {
                "docs/runbook": None,
                "docs/runbook/README.md": "restart it, then call\n",
                "apps/podinfo.yaml": deployment(image="ghcr.io/org/podinfo:9").replace(
                    "name: podinfo\n", "name: podinfo\n  namespace: prod\n", 1
                ),
            },
            "podinfo 9; the runbook becomes a directory",
        )

        result = await reverter.revert(request(repo, good, bad, overlay_subject("apps")))

        assert isinstance(result, Reverted)
        assert list(changed_lines(repo, result.commit_sha)) == ["apps/podinfo.yaml"]
        assert repo.show("main", "docs/runbook/README.md") == "restart it, then call\n"


def test_the_scratch_copy_never_reads_outside_itself(tmp_path: Path) -> None:
    outside = tmp_path / "controller-token"
    outside.write_text("s3cret")
    root = tmp_path / "copy"
    (root / "charts" / "app").mkdir(parents=True)
    (root / "charts" / "app" / "values.yaml").write_text("tag: 1\n")
    (root / "charts" / "app" / "token.yaml").symlink_to(outside)
    (root / "charts" / "escape").symlink_to(tmp_path)
    scratch = _Scratch(root, {})

    assert scratch.read("charts/app/values.yaml") == b"tag: 1\n"
    assert scratch.read("charts/app/token.yaml") == str(outside).encode()  # the link, as git
    assert scratch.read("../controller-token") is None
    assert scratch.read(str(outside)) is None
    assert scratch.read("charts/escape/controller-token") is None
    assert scratch.list("charts") == ["charts/app/token.yaml", "charts/app/values.yaml"]
    assert scratch.list("charts/escape") == ()
    assert scratch.list("..") == ()


def test_chart_paths_that_leave_the_repository_are_not_followed() -> None:
    class Files:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def read(self, path: str) -> bytes | None:
            self.asked.append(path)
            return b"x"

        def list(self, directory: str) -> list[str]:
            self.asked.append(f"list {directory}")
            return []

    release = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "podinfo", "namespace": "prod"},
        "spec": {
            "chart": {
                "spec": {
                    "chart": "../../..",
                    "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                    "valuesFiles": ["../../etc/passwd", "/etc/hostname", "charts/values.yaml"],
                }
            }
        },
    }
    files = Files()
    subject = HelmReleaseSubject(
        ManifestRef("helm.toolkit.fluxcd.io/v2", "HelmRelease", "prod", "podinfo")
    )
    projection = subject.project([Manifest(release, "prod/podinfo.yaml", 1)], files)
    assert projection.found
    assert files.asked == ["charts/values.yaml"]
