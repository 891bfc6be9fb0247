"""GitOps adapters: the built-in Git reconciler, the Git revert engine, and revision discovery.

This package is how canary-engine keeps Git the single source of truth. After a failed canary
(traffic already back on the primary), :class:`Reverter` commits to the branch a change that
restores the target's files to the last good revision, pushed without force; the reconciler
that manages the target (the built-in :class:`GitSourceReconciler`, Flux or Argo CD) then
converges the cluster to the good version. :mod:`.revision` tells, from the cluster objects,
which repository, branch, path and commit a target came from.

Everything that talks to Git goes through the git CLI (:class:`Git`), with a timeout on every
call and credentials kept out of argv, URLs, logs and messages. See ``docs/gitops.md``.
"""

from canary.adapters.gitops.credentials import (
    CredentialsError,
    GitCredentials,
    Redactor,
    credentials_from_secret,
)
from canary.adapters.gitops.git import Git, GitError, GitFailure
from canary.adapters.gitops.manifests import (
    LoadedManifests,
    Manifest,
    ManifestError,
    ManifestFiles,
    ManifestNote,
    ObjectRef,
    find_manifest_files,
    load_manifests,
)
from canary.adapters.gitops.reconciler import (
    FIELD_MANAGER,
    Condition,
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
from canary.adapters.gitops.revert import (
    DEFAULT_IDENTITY,
    AlreadyReverted,
    CommitIdentity,
    NothingToRevert,
    RetryPolicy,
    Reverted,
    Reverter,
    RevertFailed,
    RevertRequest,
    RevertResult,
    Superseded,
    UndoneCommit,
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
from canary.adapters.gitops.workspace import GitRepository, Workspace

__all__ = [
    "ANNOTATION_REVISION",
    "ANNOTATION_SOURCE",
    "ANNOTATION_SOURCE_PATH",
    "DEFAULT_IDENTITY",
    "FIELD_MANAGER",
    "AlreadyReverted",
    "CommitIdentity",
    "Condition",
    "CredentialsError",
    "Git",
    "GitCredentials",
    "GitError",
    "GitFailure",
    "GitOrigin",
    "GitRepository",
    "GitSourceReconciler",
    "GitSourceSpec",
    "GitSourceSpecError",
    "GitSourceStatus",
    "KubeApply",
    "KubeApplyError",
    "LoadedManifests",
    "ManagerRef",
    "Manifest",
    "ManifestError",
    "ManifestFiles",
    "ManifestNote",
    "NoOrigin",
    "NothingToRevert",
    "ObjectRef",
    "ReconcileResult",
    "Redactor",
    "RetryPolicy",
    "RevertFailed",
    "RevertRequest",
    "RevertResult",
    "Reverted",
    "Reverter",
    "SourceRef",
    "Superseded",
    "UndoneCommit",
    "Workspace",
    "credentials_from_secret",
    "find_manifest_files",
    "flux_source_ref",
    "format_revision",
    "load_manifests",
    "manager_of",
    "origin_from_argocd",
    "origin_from_flux",
    "origin_from_gitsource",
    "parse_gitsource_spec",
    "parse_revision",
    "plan_apply",
    "plan_prune",
]
