"""Revision discovery: which repository, branch, path and commit a target came from."""

from __future__ import annotations

from typing import Any

import pytest

from canary.adapters.gitops import (
    GitOrigin,
    ManagerRef,
    NoOrigin,
    flux_source_ref,
    manager_of,
    origin_from_argocd,
    origin_from_flux,
    origin_from_gitsource,
    parse_revision,
)
from canary.adapters.gitops.revision import ParsedRevision

SHA = "0123456789abcdef0123456789abcdef01234567"


def target(
    annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "annotations": annotations or {},
            "labels": labels or {},
        },
    }


class TestParseRevision:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (f"main@sha1:{SHA}", ParsedRevision("main", SHA)),
            (f"refs/heads/release/1.x@sha1:{SHA}", ParsedRevision("release/1.x", SHA)),
            (f"refs/tags/v1.0@sha1:{SHA}", ParsedRevision(None, SHA)),
            (f"sha1:{SHA}", ParsedRevision(None, SHA)),
            (f"main/{SHA}", ParsedRevision("main", SHA)),
            (SHA.upper(), ParsedRevision(None, SHA)),
            (f"feature/x@sha1:{SHA}", ParsedRevision("feature/x", SHA)),
        ],
    )
    def test_known_forms(self, text: str, expected: ParsedRevision) -> None:
        assert parse_revision(text) == expected

    @pytest.mark.parametrize("text", [None, "", "main", "main@sha1:abc", "v1.2.3", 42, f"{SHA}x"])
    def test_not_a_revision(self, text: object) -> None:
        assert parse_revision(text) is None


class TestManagerOf:
    def test_our_annotation_first(self) -> None:
        obj = target(
            {"canary.gitops.dev/source": "flux-system/apps"},
            {"kustomize.toolkit.fluxcd.io/name": "apps"},
        )
        assert manager_of(obj) == ManagerRef("gitsource", "flux-system", "apps")

    def test_flux_labels(self) -> None:
        obj = target(
            labels={
                "kustomize.toolkit.fluxcd.io/name": "apps",
                "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
            }
        )
        assert manager_of(obj) == ManagerRef("flux", "flux-system", "apps")

    def test_argocd_tracking_annotation(self) -> None:
        plain = target({"argocd.argoproj.io/tracking-id": "podinfo:apps/Deployment:test/podinfo"})
        namespaced = target(
            {"argocd.argoproj.io/tracking-id": "team-a_podinfo:apps/Deployment:test/podinfo"}
        )
        assert manager_of(plain) == ManagerRef("argocd", None, "podinfo")
        assert manager_of(namespaced) == ManagerRef("argocd", "team-a", "podinfo")

    def test_unmanaged(self) -> None:
        assert manager_of(target()) is None
        assert manager_of({}) is None


GITSOURCE: dict[str, Any] = {
    "apiVersion": "canary.gitops.dev/v1beta1",
    "kind": "GitSource",
    "metadata": {"name": "apps", "namespace": "flux-system"},
    "spec": {
        "url": "https://git.example.test/org/fleet.git",
        "branch": "prod",
        "path": "./clusters/prod",
        "secretRef": {"name": "git-auth"},
    },
}


class TestFromGitSource:
    def test_revision_file_and_secret(self) -> None:
        obj = target(
            {
                "canary.gitops.dev/source": "flux-system/apps",
                "canary.gitops.dev/revision": f"prod@sha1:{SHA}",
                "canary.gitops.dev/source-path": "clusters/prod/podinfo.yaml",
            }
        )
        assert origin_from_gitsource(obj, GITSOURCE) == GitOrigin(
            manager="gitsource",
            owner="flux-system/apps",
            url="https://git.example.test/org/fleet.git",
            branch="prod",
            path="clusters/prod",
            revision=SHA,
            secret="flux-system/git-auth",
            files=("clusters/prod/podinfo.yaml",),
        )

    def test_missing_annotation_says_so(self) -> None:
        result = origin_from_gitsource(target(), GITSOURCE)
        assert result == NoOrigin("test/podinfo: annotation canary.gitops.dev/revision is missing")


KUSTOMIZATION: dict[str, Any] = {
    "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
    "kind": "Kustomization",
    "metadata": {"name": "apps", "namespace": "flux-system"},
    "spec": {"path": "./apps/prod", "sourceRef": {"kind": "GitRepository", "name": "fleet"}},
    "status": {"lastAppliedRevision": f"main@sha1:{SHA}"},
}
GITREPOSITORY: dict[str, Any] = {
    "apiVersion": "source.toolkit.fluxcd.io/v1",
    "kind": "GitRepository",
    "metadata": {"name": "fleet", "namespace": "flux-system"},
    "spec": {
        "url": "ssh://git@git.example.test/org/fleet.git",
        "ref": {"branch": "main"},
        "secretRef": {"name": "flux-system"},
    },
}


class TestFromFlux:
    def test_kustomization_and_git_repository(self) -> None:
        assert flux_source_ref(KUSTOMIZATION) == ("flux-system", "fleet")
        assert origin_from_flux(KUSTOMIZATION, GITREPOSITORY) == GitOrigin(
            manager="flux",
            owner="flux-system/apps",
            url="ssh://git@git.example.test/org/fleet.git",
            branch="main",
            path="apps/prod",
            revision=SHA,
            secret="flux-system/flux-system",
        )

    def test_not_yet_applied(self) -> None:
        pending = {**KUSTOMIZATION, "status": {}}
        result = origin_from_flux(pending, GITREPOSITORY)
        assert isinstance(result, NoOrigin)
        assert "status.lastAppliedRevision is not set yet" in result.reason

    def test_tag_pinned_repository_cannot_be_reverted(self) -> None:
        pinned = {**GITREPOSITORY, "spec": {"url": "https://x/y.git", "ref": {"tag": "v1.0.0"}}}
        result = origin_from_flux(KUSTOMIZATION, pinned)
        assert isinstance(result, NoOrigin) and "spec.ref.tag pins a tag" in result.reason

    def test_oci_source_is_not_git(self) -> None:
        oci = {**KUSTOMIZATION, "spec": {"sourceRef": {"kind": "OCIRepository", "name": "x"}}}
        assert flux_source_ref(oci) is None
        assert isinstance(origin_from_flux(oci, None), NoOrigin)


APPLICATION: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Application",
    "metadata": {"name": "podinfo", "namespace": "argocd"},
    "spec": {
        "source": {
            "repoURL": "https://git.example.test/org/fleet.git",
            "path": "apps/podinfo",
            "targetRevision": "main",
        }
    },
    "status": {"sync": {"status": "Synced", "revision": SHA}},
}


class TestFromArgoCD:
    def test_single_source(self) -> None:
        assert origin_from_argocd(APPLICATION) == GitOrigin(
            manager="argocd",
            owner="argocd/podinfo",
            url="https://git.example.test/org/fleet.git",
            branch="main",
            path="apps/podinfo",
            revision=SHA,
        )

    def test_head_means_the_default_branch(self) -> None:
        app = {
            **APPLICATION,
            "spec": {"source": {**APPLICATION["spec"]["source"], "targetRevision": "HEAD"}},
        }
        result = origin_from_argocd(app)
        assert isinstance(result, GitOrigin) and result.branch is None

    def test_multi_source_picks_the_one_git_path(self) -> None:
        app = {
            **APPLICATION,
            "spec": {
                "sources": [
                    {
                        "repoURL": "https://charts.example.test",
                        "chart": "redis",
                        "targetRevision": "17.0.0",
                    },
                    {
                        "repoURL": "https://git.example.test/org/fleet.git",
                        "path": "apps/podinfo",
                        "targetRevision": "main",
                    },
                ]
            },
            "status": {"sync": {"revisions": ["17.0.0", SHA]}},
        }
        result = origin_from_argocd(app)
        assert isinstance(result, GitOrigin)
        assert (result.path, result.revision) == ("apps/podinfo", SHA)

    def test_helm_chart_and_pinned_commit_are_not_revertable(self) -> None:
        chart = {
            **APPLICATION,
            "spec": {"source": {"repoURL": "https://c", "chart": "x", "targetRevision": "1"}},
        }
        pinned = {
            **APPLICATION,
            "spec": {"source": {**APPLICATION["spec"]["source"], "targetRevision": SHA}},
        }
        assert isinstance(origin_from_argocd(chart), NoOrigin)
        result = origin_from_argocd(pinned)
        assert isinstance(result, NoOrigin) and "pins commit" in result.reason
