"""GitOps adapters: the built-in Git reconciler, the Git revert engine, and revision discovery.

This package is how canary-engine keeps Git the single source of truth. After a failed canary
(traffic already back on the primary), :class:`Reverter` commits to the branch a change that
restores exactly what made the target differ from the last good revision (found by rendering
both revisions with real kustomize, :mod:`.attribution`), pushed without force or proposed as
a pull request (:mod:`.forges`); the reconciler that manages the target (the built-in
:class:`GitSourceReconciler`, Flux or Argo CD) then converges the cluster to the good version.
:mod:`.revision` tells, from the cluster objects, which repository, branch, path and commit a
target came from; :mod:`.subjects` what of a rendering makes the target.

Everything that talks to Git goes through the git CLI (:class:`Git`), with a timeout on every
call and credentials kept out of argv, URLs, logs and messages. See ``docs/gitops.md``.
"""

from canary.adapters.gitops.credentials import (
    CredentialsError,
    GitCredentials,
    credentials_from_secret,
    redactor_for,
)
from canary.adapters.gitops.git import Git, GitError, GitFailure
from canary.adapters.gitops.kustomize import Kustomize, KustomizeError
from canary.adapters.gitops.manifests import (
    LoadedManifests,
    Manifest,
    ManifestError,
    ManifestNote,
    ManifestRef,
)
from canary.adapters.gitops.reconciler import (
    FIELD_MANAGER,
    GitSourceCondition,
    GitSourceReconciler,
    GitSourceSpec,
    GitSourceSpecError,
    GitSourceStatus,
    KubeApply,
    KubeApplyError,
    ReconcileResult,
    SourceRef,
    parse_gitsource_spec,
    plan_apply,
    plan_prune,
)
from canary.adapters.gitops.render import render_manifests
from canary.adapters.gitops.revert import (
    DEFAULT_IDENTITY,
    AlreadyReverted,
    CommitIdentity,
    GitRevertRequest,
    Proposed,
    PullRequestSettings,
    PushRetryPolicy,
    Reverted,
    Reverter,
    RevertFailed,
    RevertResult,
    Superseded,
    UndoneCommit,
    Unresolved,
    revert_branch,
)
from canary.adapters.gitops.revision import (
    ANNOTATION_REVISION,
    ANNOTATION_SOURCE,
    ANNOTATION_SOURCE_PATH,
    GitOrigin,
    ManagerRef,
    NoOrigin,
    flux_source_ref,
    format_revision,
    manager_of,
    origin_from_argocd,
    origin_from_flux,
    origin_from_gitsource,
    parse_revision,
)
from canary.adapters.gitops.subjects import (
    ArgoApplicationSubject,
    ChartDirSubject,
    HelmReleaseSubject,
    Subject,
    WorkloadSubject,
)
from canary.adapters.gitops.workspace import GitRepository, Workspace

__all__ = [
    "ANNOTATION_REVISION",
    "ANNOTATION_SOURCE",
    "ANNOTATION_SOURCE_PATH",
    "DEFAULT_IDENTITY",
    "FIELD_MANAGER",
    "AlreadyReverted",
    "ArgoApplicationSubject",
    "ChartDirSubject",
    "CommitIdentity",
    "CredentialsError",
    "Git",
    "GitCredentials",
    "GitError",
    "GitFailure",
    "GitOrigin",
    "GitRepository",
    "GitRevertRequest",
    "GitSourceCondition",
    "GitSourceReconciler",
    "GitSourceSpec",
    "GitSourceSpecError",
    "GitSourceStatus",
    "HelmReleaseSubject",
    "KubeApply",
    "KubeApplyError",
    "Kustomize",
    "KustomizeError",
    "LoadedManifests",
    "ManagerRef",
    "Manifest",
    "ManifestError",
    "ManifestNote",
    "ManifestRef",
    "NoOrigin",
    "Proposed",
    "PullRequestSettings",
    "PushRetryPolicy",
    "ReconcileResult",
    "RevertFailed",
    "RevertResult",
    "Reverted",
    "Reverter",
    "SourceRef",
    "Subject",
    "Superseded",
    "UndoneCommit",
    "Unresolved",
    "WorkloadSubject",
    "Workspace",
    "credentials_from_secret",
    "flux_source_ref",
    "format_revision",
    "manager_of",
    "origin_from_argocd",
    "origin_from_flux",
    "origin_from_gitsource",
    "parse_gitsource_spec",
    "parse_revision",
    "plan_apply",
    "plan_prune",
    "redactor_for",
    "render_manifests",
    "revert_branch",
]
