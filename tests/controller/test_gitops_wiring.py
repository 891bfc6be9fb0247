"""The operator's GitOps wiring, in pure parts: which subject a revert uses for each owner,
and where the Git credentials may be sent as a forge token."""

from __future__ import annotations

import pytest

from canary.adapters.gitops import (
    ArgoApplicationSubject,
    ChartDirSubject,
    GitOrigin,
    HelmReleaseSubject,
    WorkloadSubject,
)
from canary.adapters.gitops.revision import Via
from canary.controller.gitops import _same_host_https, subject_for
from canary.model import parse_canary
from tests.core.harness import canary_doc

CANARY = parse_canary(canary_doc({"stepWeight": 50}))


def origin(**extra: object) -> GitOrigin:
    base: dict[str, object] = dict(
        manager="gitsource",
        owner="flux-system/fleet",
        url="https://git.example.com/acme/fleet.git",
        branch="main",
        path="apps/prod",
        revision="1" * 40,
    )
    base.update(extra)
    return GitOrigin(**base)  # type: ignore[arg-type]


def test_a_workload_is_found_in_its_owners_path_with_the_owners_namespace_rules() -> None:
    subject = subject_for(CANARY, origin(target_namespace="prod"), (("ConfigMap", "cfg"),))
    assert isinstance(subject, WorkloadSubject)
    assert (subject.target.kind, subject.target.name, subject.target.namespace) == (
        "Deployment",
        "podinfo",
        "test",
    )
    assert subject.source_path == "apps/prod"
    assert subject.default_namespace == "flux-system"  # the GitSource's own namespace
    assert subject.force_namespace == "prod"
    assert subject.tracked == (("ConfigMap", "cfg"),)


@pytest.mark.parametrize(
    ("via", "kind"),
    [
        (Via("helm.toolkit.fluxcd.io/v2", "HelmRelease", "apps", "podinfo"), HelmReleaseSubject),
        (Via("argoproj.io/v1alpha1", "Application", "argocd", "podinfo"), ArgoApplicationSubject),
    ],
)
def test_a_target_made_by_helm_is_reverted_through_the_object_kept_in_git(
    via: Via, kind: type
) -> None:
    assert isinstance(subject_for(CANARY, origin(via=via)), kind)


def test_an_argo_cd_chart_directory_is_a_chart_subject() -> None:
    subject = subject_for(CANARY, origin(manager="argocd", chart_value_files=("prod.yaml",)))
    assert subject == ChartDirSubject("apps/prod", ("prod.yaml",))


@pytest.mark.parametrize(
    ("api", "repository", "allowed"),
    [
        ("https://api.github.com", "https://github.com/acme/fleet.git", True),
        ("https://gitlab.example.com/api/v4", "git@gitlab.example.com:acme/fleet.git", True),
        ("https://ghe.example.com/api/v3", "ssh://git@ghe.example.com/acme/fleet.git", True),
        ("http://gitlab.example.com/api/v4", "https://gitlab.example.com/acme/fleet.git", False),
        ("https://collector.evil.example/api", "https://github.com/acme/fleet.git", False),
    ],
)
def test_git_credentials_go_only_to_the_repositorys_own_host_over_https(
    api: str, repository: str, allowed: bool
) -> None:
    assert _same_host_https(api, repository) is allowed
