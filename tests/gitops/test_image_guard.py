"""Keeping Flux's image automation from a failed tag: where the exclusion goes, and what
never breaks the revert (files that are not YAML, two clusters declaring the same
ImageRepository, a person committing at the same moment).

Real bare repositories; the cluster side is a small in-memory stand-in for the port the
guard uses (``get`` and ``patch``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from canary.adapters.gitops import CommitIdentity, GitRepository, Reverter
from canary.controller.gitops import ImageAutomationGuard
from canary.model import parse_canary
from tests.core.harness import canary_doc
from tests.git_fixtures import BareRepo, run_git

IMAGE = "ghcr.io/acme/podinfo"
CANARY = parse_canary(canary_doc({"stepWeight": 50}))
AUTHOR = CommitIdentity()

DEPLOYMENT = f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: podinfo, namespace: flux-system}}
spec:
  template:
    spec:
      containers:
        - name: app
          image: {IMAGE}:1.0.0 # {{"$imagepolicy": "flux-system:podinfo"}}
"""

IMAGE_REPOSITORY = f"""\
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  image: {IMAGE}  # scanned every five minutes
  interval: 5m
"""


class FakeKube:
    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = {
            (o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects
        }
        self.patches: list[tuple[str, dict[str, Any]]] = []

    async def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> Any:
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found and found["apiVersion"] == api_version else None

    async def patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, body: Mapping[str, Any]
    ) -> Any:
        self.patches.append((name, dict(body)))
        return self.objects[(kind, namespace, name)]


def live(labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1beta2",
            "kind": "ImagePolicy",
            "metadata": {"name": "podinfo", "namespace": "flux-system"},
            "spec": {"imageRepositoryRef": {"name": "podinfo"}},
        },
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1beta2",
            "kind": "ImageRepository",
            "metadata": {
                "name": "podinfo",
                "namespace": "flux-system",
                "labels": labels or {},
                "resourceVersion": "7",
            },
            "spec": {"image": IMAGE},
        },
    ]


def guard(kube: FakeKube, reverter: Reverter) -> ImageAutomationGuard:
    return ImageAutomationGuard(kube, reverter)  # type: ignore[arg-type]


async def test_the_exclusion_is_committed_next_to_the_image_repository_in_git(
    bare_repo: Callable[..., BareRepo], reverter: Reverter
) -> None:
    repo = bare_repo(
        "fleet",
        {
            "apps/podinfo.yaml": DEPLOYMENT,
            "flux/images.yaml": IMAGE_REPOSITORY,
            "README.md": 'Mark image lines with `# {"$imagepolicy": "ns:name"}`: not YAML\n',
            "notes.yaml": "{$imagepolicy: [unclosed\n",  # broken YAML that mentions a marker
        },
    )
    kube = FakeKube(live())

    note = await guard(kube, reverter).protect(
        CANARY, GitRepository(repo.file_url), (f"{IMAGE}:1.1.0",), author=AUTHOR
    )

    assert note.startswith("excluded tag 1.1.0 from image automation in flux/images.yaml (")
    text = repo.show("main", "flux/images.yaml")
    assert text is not None
    assert "exclusionList:" in text and "^1\\.1\\.0$" in text and "^.*\\.sig$" in text
    assert "# scanned every five minutes" in text  # the user's comment is kept
    subject = run_git("log", "-1", "--format=%s", cwd=repo.path).strip()
    assert subject == f"Exclude {IMAGE}:1.1.0 from image automation"
    assert kube.patches == []

    again = await guard(kube, reverter).protect(
        CANARY, GitRepository(repo.file_url), (f"{IMAGE}:1.1.0",), author=AUTHOR
    )
    assert "already excludes 1.1.0" in again
    assert len(repo.log()) == 2


async def test_an_image_repository_only_in_the_cluster_is_patched_live(
    bare_repo: Callable[..., BareRepo], reverter: Reverter
) -> None:
    repo = bare_repo("fleet", {"apps/podinfo.yaml": DEPLOYMENT})
    kube = FakeKube(live())

    note = await guard(kube, reverter).protect(
        CANARY, GitRepository(repo.file_url), (f"{IMAGE}:1.1.0",), author=AUTHOR
    )

    assert (
        note
        == "excluded tag 1.1.0 from image automation on the live ImageRepository flux-system/podinfo"
    )
    ((name, patch),) = kube.patches
    assert name == "podinfo"
    assert patch["spec"]["exclusionList"] == ["^.*\\.sig$", "^1\\.1\\.0$"]


@pytest.mark.parametrize(
    "files",
    [
        {},  # applied by Flux from another repository
        {  # two clusters declare it: which one to edit is not ours to guess
            "clusters/a/images.yaml": IMAGE_REPOSITORY,
            "clusters/b/images.yaml": IMAGE_REPOSITORY,
        },
    ],
    ids=["another-repository", "declared-twice"],
)
async def test_where_the_exclusion_cannot_be_written_the_note_says_what_to_add(
    bare_repo: Callable[..., BareRepo], reverter: Reverter, files: dict[str, str]
) -> None:
    repo = bare_repo("fleet", {"apps/podinfo.yaml": DEPLOYMENT, **files})
    kube = FakeKube(live({"kustomize.toolkit.fluxcd.io/name": "flux-system"}))

    note = await guard(kube, reverter).protect(
        CANARY, GitRepository(repo.file_url), (f"{IMAGE}:1.1.0",), author=AUTHOR
    )

    assert note.startswith("image automation may push 1.1.0 again: add '^1\\\\.1\\\\.0$'")
    assert "spec.exclusionList of ImageRepository flux-system/podinfo" in note
    assert kube.patches == [] and len(repo.log()) == 1


async def test_a_commit_landing_meanwhile_is_kept_by_the_exclusion_commit(
    bare_repo: Callable[..., BareRepo], reverter: Reverter
) -> None:
    repo = bare_repo("fleet", {"flux/images.yaml": IMAGE_REPOSITORY})
    slower = IMAGE_REPOSITORY.replace("interval: 5m", "interval: 15m")
    calls = 0

    def edit(files: Mapping[str, str]) -> dict[str, str]:
        nonlocal calls
        calls += 1
        if calls == 1:  # a person pushes between our read and our push
            repo.commit({"flux/images.yaml": slower}, "scan less often")
        text = files["flux/images.yaml"]
        return {
            "flux/images.yaml": text.replace("  interval:", "  exclusionList: ['^x$']\n  interval:")
        }

    commit = await reverter.commit_edit(
        GitRepository(repo.file_url), "ImageRepository", edit, "Exclude x\n", author=AUTHOR
    )

    assert commit is not None and calls == 2
    text = repo.show("main", "flux/images.yaml")
    assert text is not None and "interval: 15m" in text and "exclusionList: ['^x$']" in text
    assert [s for _, s in repo.log()][:2] == ["Exclude x", "scan less often"]
