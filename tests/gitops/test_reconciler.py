"""The GitSource reconciler: spec parsing, apply planning, pruning and whole passes.

Passes run against real bare repositories (file:// and git daemon) and an in-memory fake of
the KubeApply port that behaves like server-side apply (it stores what it is given, per object).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from canary.adapters.gitops import (
    ANNOTATION_REVISION,
    ANNOTATION_SOURCE,
    ANNOTATION_SOURCE_PATH,
    FIELD_MANAGER,
    CommitIdentity,
    GitSourceReconciler,
    GitSourceSpec,
    GitSourceSpecError,
    GitSourceStatus,
    KubeApply,
    KubeApplyError,
    Manifest,
    ManifestError,
    ManifestRef,
    SourceRef,
    Workspace,
    parse_gitsource_spec,
    plan_apply,
    plan_prune,
)
from tests.git_fixtures import BareRepo, GitDaemon
from tests.gitops.conftest import configmap, deployment

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SOURCE = SourceRef("flux-system", "apps")


class FakeKube:
    """Server-side apply in memory: objects keyed by identity, with the last applier."""

    def __init__(self) -> None:
        self.objects: dict[ManifestRef, dict[str, Any]] = {}
        self.managers: dict[ManifestRef, tuple[str, bool]] = {}
        self.calls: list[tuple[str, ManifestRef]] = []
        self.reject: dict[str, str] = {}  # object name -> server message

    async def apply(
        self, body: Mapping[str, Any], *, field_manager: str, force_conflicts: bool
    ) -> Mapping[str, Any]:
        ref = ManifestRef.of(body)
        self.calls.append(("apply", ref))
        if ref.name in self.reject:
            raise KubeApplyError(self.reject[ref.name], status=422, reason="Invalid")
        self.objects[ref] = copy.deepcopy(dict(body))
        self.managers[ref] = (field_manager, force_conflicts)
        return self.objects[ref]

    async def get(self, ref: ManifestRef) -> Mapping[str, Any] | None:
        self.calls.append(("get", ref))
        return self.objects.get(ref)

    async def delete(self, ref: ManifestRef) -> bool:
        self.calls.append(("delete", ref))
        return self.objects.pop(ref, None) is not None

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> Sequence[Mapping[str, Any]]:
        probe = ManifestRef(api_version, kind, None, "")
        return [
            o
            for r, o in self.objects.items()
            if (r.group, r.kind) == (probe.group, probe.kind) and namespace in (None, r.namespace)
        ]


def test_fake_satisfies_the_port() -> None:
    assert isinstance(FakeKube(), KubeApply)


NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: test\n"
CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Cluster
  names: {kind: Widget, plural: widgets}
"""
WIDGET = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: nope\n"
SERVICE = "apiVersion: v1\nkind: Service\nmetadata:\n  name: podinfo\nspec: {}\n"


def manifest(text: str, file: str = "a.yaml", doc: int = 1) -> Manifest:
    import yaml

    return Manifest(yaml.safe_load(text), file, doc)


class TestSpec:
    def test_defaults(self) -> None:
        spec = parse_gitsource_spec({"url": "https://git.example.test/org/app.git"})
        assert spec == GitSourceSpec(url="https://git.example.test/org/app.git")
        assert (spec.branch, spec.path, spec.interval_seconds, spec.prune) == (
            "main",
            "",
            60.0,
            True,  # as the CRD's default
        )

    def test_all_fields(self) -> None:
        spec = parse_gitsource_spec(
            {
                "url": "ssh://git@git.example.test/org/app.git",
                "branch": "release/1.x",
                "path": "./clusters/prod/",
                "interval": "1h30m",
                "timeout": "500ms",
                "suspend": True,
                "prune": True,
                "secretRef": {"name": "git-auth"},
                "commitAuthor": {"name": "Bot", "email": "bot@example.test"},
            }
        )
        assert spec.path == "clusters/prod"
        assert spec.interval_seconds == 5400.0
        assert spec.timeout_seconds == 0.5
        assert spec.secret_name == "git-auth"
        assert spec.commit_author == CommitIdentity("Bot", "bot@example.test")

    def test_every_problem_is_reported_with_its_field_path(self) -> None:
        with pytest.raises(GitSourceSpecError) as info:
            parse_gitsource_spec(
                {
                    "url": "https://user:hunter2@git.example.test/app.git",
                    "branch": "bad..branch",
                    "path": "../up",
                    "interval": "often",
                    "prune": "yes",
                    "secretRef": {},
                    "commitAuthor": {"name": "Bot", "email": "no-at-sign"},
                    "intervall": "1m",
                },
                where="GitSource default/apps spec",
            )
        problems = info.value.problems
        fields = [p.split(":")[0] for p in problems]
        prefix = "GitSource default/apps spec"
        assert fields == [
            f"{prefix}.intervall",
            f"{prefix}.url",
            f"{prefix}.branch",
            f"{prefix}.path",
            f"{prefix}.interval",
            f"{prefix}.secretRef.name",
            f"{prefix}.commitAuthor.email",
            f"{prefix}.prune",
        ]
        assert "hunter2" not in str(info.value)
        assert "never in the URL" in problems[1]

    def test_missing_url(self) -> None:
        with pytest.raises(GitSourceSpecError, match=r"spec\.url: required"):
            parse_gitsource_spec({})


class TestPlanApply:
    def test_crds_and_namespaces_first_then_manifest_order(self) -> None:
        plan = plan_apply(
            [
                manifest(SERVICE),
                manifest(WIDGET),
                manifest(NAMESPACE),
                manifest(CRD),
                manifest(configmap()),
            ],
            source=SOURCE,
            revision="main@sha1:" + "a" * 40,
        )
        assert [o.ref.kind for o in plan.objects] == [
            "CustomResourceDefinition",
            "Namespace",
            "Widget",
            "Service",
            "ConfigMap",
        ]

    def test_namespaces_default_to_the_gitsource_and_cluster_kinds_have_none(self) -> None:
        plan = plan_apply(
            [
                manifest(SERVICE),
                manifest(NAMESPACE),
                manifest(CRD),
                manifest(WIDGET),
                manifest(configmap()),
            ],
            source=SOURCE,
            revision="r",
        )
        namespaces = {o.ref.kind: o.ref.namespace for o in plan.objects}
        assert namespaces == {
            "Service": "flux-system",
            "Namespace": None,
            "CustomResourceDefinition": None,
            "Widget": None,  # cluster-scoped by the CRD declared alongside
            "ConfigMap": "test",  # explicit namespace kept
        }
        assert plan.notes == (
            "a.yaml document 1: Widget is cluster-scoped; metadata.namespace ignored",
        )

    def test_annotations_are_added_and_existing_ones_kept_without_touching_the_input(self) -> None:
        original = manifest(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations: {team: a}\n",
            file="deploy/c.yaml",
        )
        before = copy.deepcopy(dict(original.body))

        (planned,) = plan_apply([original], source=SOURCE, revision="main@sha1:" + "b" * 40).objects

        assert planned.body["metadata"]["annotations"] == {
            "team": "a",
            ANNOTATION_SOURCE: "flux-system/apps",
            ANNOTATION_REVISION: "main@sha1:" + "b" * 40,
            ANNOTATION_SOURCE_PATH: "deploy/c.yaml",
        }
        assert dict(original.body) == before

    def test_an_object_declared_twice_is_an_error_naming_both_places(self) -> None:
        with pytest.raises(ManifestError) as info:
            plan_apply(
                [manifest(SERVICE, "a.yaml", 1), manifest(SERVICE, "b.yaml", 3)],
                source=SOURCE,
                revision="r",
            )
        assert str(info.value) == (
            "b.yaml document 3: Service flux-system/podinfo is already declared in a.yaml document 1"
        )


class TestPlanPrune:
    def test_gone_objects_namespaced_first_namespaces_and_crds_last(self) -> None:
        ns = ManifestRef("v1", "Namespace", None, "old")
        crd = ManifestRef(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", None, "w.example.com"
        )
        svc = ManifestRef("v1", "Service", "old", "s")
        kept = ManifestRef("v1", "ConfigMap", "test", "c")
        assert plan_prune([ns, crd, svc, kept], [kept]) == (svc, ns, crd)

    def test_version_change_is_not_a_removal(self) -> None:
        old = ManifestRef("autoscaling/v1", "HorizontalPodAutoscaler", "t", "h")
        new = ManifestRef("autoscaling/v2", "HorizontalPodAutoscaler", "t", "h")
        assert plan_prune([old], [new]) == ()


@pytest.fixture
def app(bare_repo: Callable[..., BareRepo]) -> BareRepo:
    return bare_repo(
        "apps",
        {
            "clusters/test/ns.yaml": NAMESPACE,
            "clusters/test/podinfo.yaml": deployment()
            + "---\n"
            + SERVICE.replace("podinfo\n", "podinfo\n  namespace: test\n", 1),
            "clusters/test/config.yaml": configmap(),
            "README.md": "docs\n",
        },
    )


def spec_for(url: str, **extra: Any) -> GitSourceSpec:
    return parse_gitsource_spec({"url": url, "path": "clusters/test", **extra})


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@pytest.fixture
def reconciler(workspace: Workspace, kube: FakeKube) -> GitSourceReconciler:
    return GitSourceReconciler(workspace, kube)


class TestPass:
    async def test_first_pass_applies_everything_marked_with_source_and_revision(
        self, app: BareRepo, git_daemon: GitDaemon, reconciler: GitSourceReconciler, kube: FakeKube
    ) -> None:
        head = app.head()
        result = await reconciler.reconcile(SOURCE, spec_for(git_daemon.url_for(app)), now=NOW)

        assert result.ready
        revision = f"main@sha1:{head}"
        assert result.status.last_applied_revision == revision
        assert result.status.last_attempted_revision == revision
        ready = result.status.condition("Ready")
        assert ready is not None and (ready.status, ready.reason) == ("True", "Succeeded")
        assert [r.kind for r in result.applied] == [
            "Namespace",
            "ConfigMap",
            "Deployment",
            "Service",
        ]
        deploy = kube.objects[ManifestRef("apps/v1", "Deployment", "test", "podinfo")]
        assert deploy["metadata"]["annotations"] == {
            ANNOTATION_SOURCE: "flux-system/apps",
            ANNOTATION_REVISION: revision,
            ANNOTATION_SOURCE_PATH: "clusters/test/podinfo.yaml",
        }
        assert "annotations" not in deploy["spec"]["template"]["metadata"]
        assert set(kube.managers.values()) == {(FIELD_MANAGER, True)}
        assert result.status.to_dict()["inventory"][0] == {
            "apiVersion": "v1",
            "kind": "Namespace",
            "name": "test",
        }

    async def test_removed_objects_are_pruned_only_when_marked_as_ours(
        self, app: BareRepo, reconciler: GitSourceReconciler, kube: FakeKube
    ) -> None:
        spec = spec_for(app.file_url, prune=True)
        first = await reconciler.reconcile(SOURCE, spec, now=NOW)
        app.commit(
            {"clusters/test/config.yaml": None, "clusters/test/podinfo.yaml": deployment()},
            "drop config and service",
        )
        service = ManifestRef("v1", "Service", "test", "podinfo")
        kube.objects[service]["metadata"]["annotations"][ANNOTATION_SOURCE] = "other/source"

        second = await reconciler.reconcile(SOURCE, spec, previous=first.status, now=NOW)

        assert second.ready
        assert second.pruned == (ManifestRef("v1", "ConfigMap", "test", "podinfo-config"),)
        assert service in kube.objects  # adopted by someone else: left alone
        assert any("not marked as applied by flux-system/apps" in n for n in second.notes)
        assert [r.kind for r in second.status.inventory] == ["Namespace", "Deployment"]

    async def test_without_prune_nothing_is_deleted(
        self, app: BareRepo, reconciler: GitSourceReconciler, kube: FakeKube
    ) -> None:
        spec = spec_for(app.file_url, prune=False)
        first = await reconciler.reconcile(SOURCE, spec, now=NOW)
        app.commit({"clusters/test/config.yaml": None}, "drop config")

        second = await reconciler.reconcile(SOURCE, spec, previous=first.status, now=NOW)

        assert second.ready and second.pruned == ()
        assert ManifestRef("v1", "ConfigMap", "test", "podinfo-config") in kube.objects
        assert not any(call[0] == "delete" for call in kube.calls)

    async def test_invalid_manifest_names_file_and_document_and_keeps_the_last_revision(
        self, app: BareRepo, reconciler: GitSourceReconciler, kube: FakeKube
    ) -> None:
        spec = spec_for(app.file_url, prune=True)
        first = await reconciler.reconcile(SOURCE, spec, now=NOW)
        bad = app.commit({"clusters/test/config.yaml": configmap() + "---\n- oops\n"}, "broken")
        applied_before = len(kube.calls)

        second = await reconciler.reconcile(SOURCE, spec, previous=first.status, now=NOW)

        assert not second.ready
        ready = second.status.condition("Ready")
        assert ready is not None and ready.reason == "ManifestInvalid"
        assert ready.message == (
            f"main@sha1:{bad}: clusters/test/config.yaml document 2: "
            "expected a mapping with apiVersion and kind, got a list"
        )
        assert second.status.last_applied_revision == first.status.last_applied_revision
        assert second.status.last_attempted_revision == f"main@sha1:{bad}"
        assert second.status.inventory == first.status.inventory
        assert len(kube.calls) == applied_before  # nothing applied, nothing pruned

    async def test_an_overlay_is_applied_as_kustomize_builds_it_with_its_source_files(
        self, app: BareRepo, reconciler: GitSourceReconciler, kube: FakeKube
    ) -> None:
        app.commit(
            {
                "clusters/test/kustomization.yaml": (
                    "namespace: test\nresources: [ns.yaml, podinfo.yaml, config.yaml]\n"
                    "images:\n- name: ghcr.io/stefanprodan/podinfo\n  newTag: 6.1.0\n"
                ),
                "clusters/prod/kustomization.yaml": "resources: [../test]\nnamePrefix: prod-\n",
            },
            "an overlay",
        )

        result = await reconciler.reconcile(SOURCE, spec_for(app.file_url), now=NOW)

        assert result.ready
        assert result.status.kustomize_version and result.status.kustomize_version.startswith("v")
        deploy = kube.objects[ManifestRef("apps/v1", "Deployment", "test", "podinfo")]
        image = deploy["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == "ghcr.io/stefanprodan/podinfo:6.1.0"  # the release, not the base's tag
        assert deploy["metadata"]["annotations"][ANNOTATION_SOURCE_PATH] == (
            "clusters/test/podinfo.yaml"
        )
        assert result.status.to_dict()["kustomizeVersion"] == result.status.kustomize_version

    async def test_a_failed_build_is_build_failed_with_kustomizes_words_and_keeps_the_last_revision(
        self, app: BareRepo, reconciler: GitSourceReconciler, kube: FakeKube
    ) -> None:
        spec = spec_for(app.file_url, prune=True)
        first = await reconciler.reconcile(SOURCE, spec, now=NOW)
        bad = app.commit(
            {"clusters/test/kustomization.yaml": "resources: [podinfo.yaml, missing.yaml]\n"},
            "a broken kustomization",
        )
        calls_before = len(kube.calls)

        second = await reconciler.reconcile(SOURCE, spec, previous=first.status, now=NOW)

        ready = second.status.condition("Ready")
        assert ready is not None and (ready.status, ready.reason) == ("False", "BuildFailed")
        assert ready.message.startswith(f"main@sha1:{bad}: clusters/test/kustomization.yaml: ")
        assert "missing.yaml" in ready.message
        assert second.status.last_applied_revision == first.status.last_applied_revision
        assert second.status.inventory == first.status.inventory
        assert len(kube.calls) == calls_before  # nothing applied, nothing pruned

    async def test_rejected_apply_reports_the_servers_message_and_the_object(
        self, app: BareRepo, reconciler: GitSourceReconciler, kube: FakeKube
    ) -> None:
        kube.reject["podinfo-config"] = 'ConfigMap "podinfo-config" is invalid: data: Too long'

        result = await reconciler.reconcile(SOURCE, spec_for(app.file_url, prune=True), now=NOW)

        ready = result.status.condition("Ready")
        assert ready is not None and (ready.status, ready.reason) == ("False", "ApplyFailed")
        assert "ConfigMap/test/podinfo-config (v1)" in ready.message
        assert "from clusters/test/config.yaml document 1" in ready.message
        assert 'ConfigMap "podinfo-config" is invalid: data: Too long' in ready.message
        assert result.status.last_applied_revision is None
        assert result.applied == (ManifestRef("v1", "Namespace", None, "test"),)
        # what may exist in the cluster stays in the inventory, to be pruned later
        assert ManifestRef("v1", "ConfigMap", "test", "podinfo-config") in result.status.inventory

    async def test_unreachable_repository_is_clone_failed(
        self, reconciler: GitSourceReconciler, tmp_path: Path
    ) -> None:
        missing = (tmp_path / "nope.git").as_uri()
        result = await reconciler.reconcile(SOURCE, spec_for(missing), now=NOW)

        ready = result.status.condition("Ready")
        assert ready is not None and (ready.status, ready.reason) == ("False", "CloneFailed")
        assert "nope.git" in ready.message
        assert result.status.last_attempted_revision is None

    async def test_suspended_source_does_nothing(
        self, app: BareRepo, reconciler: GitSourceReconciler, kube: FakeKube
    ) -> None:
        result = await reconciler.reconcile(SOURCE, spec_for(app.file_url, suspend=True), now=NOW)
        assert kube.calls == []
        reconciling = result.status.condition("Reconciling")
        assert reconciling is not None and reconciling.reason == "Suspended"

    async def test_progress_is_reported_and_transition_times_kept(
        self, app: BareRepo, reconciler: GitSourceReconciler
    ) -> None:
        seen: list[GitSourceStatus] = []

        async def progress(status: GitSourceStatus) -> None:
            seen.append(status)

        spec = spec_for(app.file_url)
        first = await reconciler.reconcile(SOURCE, spec, now=NOW, progress=progress)
        later = NOW + timedelta(minutes=5)
        second = await reconciler.reconcile(SOURCE, spec, previous=first.status, now=later)

        assert len(seen) == 1
        reconciling = seen[0].condition("Reconciling")
        assert reconciling is not None and reconciling.status == "True"
        assert seen[0].last_attempted_revision == f"main@sha1:{app.head()}"
        ready1, ready2 = first.status.condition("Ready"), second.status.condition("Ready")
        assert ready1 is not None and ready2 is not None
        assert ready2.last_transition_time == ready1.last_transition_time == "2026-11-22T12:00:00Z"

    async def test_status_round_trips_through_its_dict_form(
        self, app: BareRepo, reconciler: GitSourceReconciler
    ) -> None:
        result = await reconciler.reconcile(SOURCE, spec_for(app.file_url), now=NOW)
        assert GitSourceStatus.from_dict(result.status.to_dict()) == result.status


class TestPortBridge:
    async def test_port_errors_become_apply_errors_with_the_servers_causes(self) -> None:
        from canary.adapters.gitops.kube import PortKubeApply
        from canary.ports import Invalid

        class RefusingKube:
            async def apply(self, obj: Any, *, field_manager: str, force: bool = False) -> Any:
                raise Invalid(
                    'Deployment.apps "podinfo" is invalid',
                    causes=[{"field": "spec.replicas", "message": "must be >= 0"}],
                )

        bridge = PortKubeApply(RefusingKube())  # type: ignore[arg-type]
        with pytest.raises(KubeApplyError) as info:
            await bridge.apply(
                {"kind": "Deployment"}, field_manager=FIELD_MANAGER, force_conflicts=True
            )

        assert info.value.message == (
            'Deployment.apps "podinfo" is invalid (spec.replicas: must be >= 0)'
        )
        assert (info.value.status, info.value.reason) == (422, "Invalid")
