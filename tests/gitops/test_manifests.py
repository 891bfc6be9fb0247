"""Loading manifests from a checkout: files, documents, kustomizations, errors and lookups."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary.adapters.gitops import (
    ManifestError,
    ObjectRef,
    find_manifest_files,
    load_manifests,
)
from tests.gitops.conftest import configmap, deployment


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: podinfo
spec:
  ports: [{port: 80}]
"""


class TestPlainFiles:
    def test_multi_document_files_remember_file_and_document(self, tmp_path: Path) -> None:
        write(tmp_path, {"deploy/app.yaml": f"---\n{deployment()}---\n---\n{SERVICE}"})

        loaded = load_manifests(tmp_path, "deploy")

        assert [(m.ref.kind, m.source_file, m.document) for m in loaded.manifests] == [
            ("Deployment", "deploy/app.yaml", 1),
            ("Service", "deploy/app.yaml", 3),
        ]
        assert loaded.notes == ()  # the empty document 2 is skipped silently

    def test_recursive_sorted_and_json_with_hidden_entries_skipped(self, tmp_path: Path) -> None:
        write(
            tmp_path,
            {
                "apps/b/svc.yml": SERVICE,
                "apps/a/cm.json": '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}',
                "apps/.github/workflow.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: no}\n",
                "apps/readme.md": "not yaml",
            },
        )

        loaded = load_manifests(tmp_path, "./apps/")

        assert loaded.files == ("apps/a/cm.json", "apps/b/svc.yml")
        assert [m.ref.name for m in loaded.manifests] == ["x", "podinfo"]

    def test_mappings_without_kind_are_skipped_with_a_note(self, tmp_path: Path) -> None:
        write(tmp_path, {"values.yaml": "replicas: 3\n", "svc.yaml": SERVICE})

        loaded = load_manifests(tmp_path)

        assert [m.ref.kind for m in loaded.manifests] == ["Service"]
        assert [str(n) for n in loaded.notes] == [
            "values.yaml document 1: no apiVersion/kind: not a Kubernetes object, skipped"
        ]

    def test_list_kind_is_expanded(self, tmp_path: Path) -> None:
        write(
            tmp_path,
            {
                "list.yaml": "apiVersion: v1\nkind: List\nitems:\n"
                "- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
                "- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n"
            },
        )

        loaded = load_manifests(tmp_path)

        assert [(m.ref.name, m.location) for m in loaded.manifests] == [
            ("a", "list.yaml document 1 item 0"),
            ("b", "list.yaml document 1 item 1"),
        ]

    def test_timestamps_stay_strings(self, tmp_path: Path) -> None:
        write(
            tmp_path,
            {
                "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {day: 2024-05-01}\n"
            },
        )
        (manifest,) = load_manifests(tmp_path).manifests
        assert manifest.body["data"]["day"] == "2024-05-01"


class TestKustomization:
    def test_only_listed_resources_are_read_recursively(self, tmp_path: Path) -> None:
        write(
            tmp_path,
            {
                "app/kustomization.yaml": "resources:\n- deploy.yaml\n- ../base\nnamePrefix: x-\n",
                "app/deploy.yaml": deployment(),
                "app/ignored.yaml": configmap(),
                "base/kustomization.yml": "resources: [svc.yaml]\n",
                "base/svc.yaml": SERVICE,
                "base/unused.yaml": configmap("red"),
            },
        )

        loaded = load_manifests(tmp_path, "app")

        assert loaded.files == ("app/deploy.yaml", "base/svc.yaml")
        assert [str(n) for n in loaded.notes] == [
            "app/kustomization.yaml: only 'resources' is followed; ignored: namePrefix"
        ]

    def test_nested_kustomization_under_a_plain_directory_is_honoured(self, tmp_path: Path) -> None:
        write(
            tmp_path,
            {
                "cluster/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: test}\n",
                "cluster/app/Kustomization": "resources: [a.yaml]\n",
                "cluster/app/a.yaml": SERVICE,
                "cluster/app/b.yaml": configmap(),
            },
        )

        loaded = load_manifests(tmp_path, "cluster")

        assert loaded.files == ("cluster/app/a.yaml", "cluster/ns.yaml")

    @pytest.mark.parametrize(
        ("kustomization", "message"),
        [
            (
                "resources: [missing.yaml]\n",
                "app/kustomization.yaml: resources[0]: 'missing.yaml' not found",
            ),
            (
                "resources: [https://github.com/x/y//deploy]\n",
                "app/kustomization.yaml: resources[0]: remote resource",
            ),
            (
                "resources: [../../outside]\n",
                "app/kustomization.yaml: resources[0]: '../../outside' is outside",
            ),
            (
                "resources: deploy.yaml\n",
                "app/kustomization.yaml: resources: expected a list, got a string",
            ),
        ],
    )
    def test_bad_resources_name_the_kustomization(
        self, tmp_path: Path, kustomization: str, message: str
    ) -> None:
        write(
            tmp_path / "repo", {"app/kustomization.yaml": kustomization, "app/deploy.yaml": SERVICE}
        )

        with pytest.raises(ManifestError) as info:
            load_manifests(tmp_path / "repo", "app")

        assert str(info.value).startswith(message)

    def test_cycle_is_an_error(self, tmp_path: Path) -> None:
        write(
            tmp_path,
            {
                "a/kustomization.yaml": "resources: [../b]\n",
                "b/kustomization.yaml": "resources: [../a]\n",
            },
        )
        with pytest.raises(ManifestError, match="cycle"):
            load_manifests(tmp_path, "a")


class TestErrors:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (
                f"{SERVICE}---\n- a\n- b\n",
                "deploy/app.yaml document 2: expected a mapping with apiVersion and kind, got a list",
            ),
            (
                f"{SERVICE}---\njust text\n",
                "deploy/app.yaml document 2: expected a mapping with apiVersion and kind, got a string",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
                "deploy/app.yaml document 1: metadata.name: expected a non-empty string",
            ),
            (
                "apiVersion: v1\nkind: [x]\nmetadata: {name: a}\n",
                "deploy/app.yaml document 1: kind: expected a non-empty string, got a list",
            ),
            (
                f"{SERVICE}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n",
                "deploy/app.yaml document 2: invalid YAML",
            ),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, annotations: [x]}\n",
                "deploy/app.yaml document 1: metadata.annotations: expected a mapping",
            ),
        ],
    )
    def test_errors_name_file_and_document(self, tmp_path: Path, text: str, expected: str) -> None:
        write(tmp_path, {"deploy/app.yaml": text})

        with pytest.raises(ManifestError) as info:
            load_manifests(tmp_path, "deploy")

        assert str(info.value).startswith(expected)
        assert info.value.file == "deploy/app.yaml"

    def test_yaml_error_reports_the_line(self, tmp_path: Path) -> None:
        write(tmp_path, {"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n"})
        with pytest.raises(ManifestError, match=r"line \d+, column \d+"):
            load_manifests(tmp_path)

    def test_invalid_json_names_the_file(self, tmp_path: Path) -> None:
        write(tmp_path, {"a.json": '{"apiVersion": '})
        with pytest.raises(ManifestError, match=r"^a\.json document 1: invalid JSON"):
            load_manifests(tmp_path)

    def test_missing_path_and_escape_are_errors(self, tmp_path: Path) -> None:
        with pytest.raises(ManifestError, match="nowhere: path not found"):
            load_manifests(tmp_path, "nowhere")
        with pytest.raises(ManifestError, match="outside the repository"):
            load_manifests(tmp_path / "x", "../..")

    def test_lenient_mode_collects_errors_and_keeps_going(self, tmp_path: Path) -> None:
        write(tmp_path, {"a.yaml": "- broken\n", "b.yaml": SERVICE})

        loaded = load_manifests(tmp_path, strict=False)

        assert [m.ref.kind for m in loaded.manifests] == ["Service"]
        assert [e.file for e in loaded.errors] == ["a.yaml"]


class TestFindManifestFiles:
    def test_finds_target_and_tracked_configs_by_group_kind_namespace_name(
        self, tmp_path: Path
    ) -> None:
        write(
            tmp_path,
            {
                "deploy/app.yaml": deployment(),
                "deploy/config.yaml": configmap(),
                "deploy/svc.yaml": SERVICE,
                "deploy/broken.yaml": "- nope\n",
                "other/app.yaml": deployment().replace("namespace: test", "namespace: prod"),
            },
        )
        target = ObjectRef("apps/v1beta2", "Deployment", "test", "podinfo")  # version ignored
        config = ObjectRef("v1", "ConfigMap", "test", "podinfo-config")
        missing = ObjectRef("v1", "Secret", "test", "podinfo-token")

        found = find_manifest_files(tmp_path, "", [target, config, missing])

        assert found.files == ("deploy/app.yaml", "deploy/config.yaml")
        assert found.found[target] == ("deploy/app.yaml",)
        assert found.missing == (missing,)

    def test_manifest_without_namespace_matches_the_default_namespace(self, tmp_path: Path) -> None:
        write(tmp_path, {"svc.yaml": SERVICE})
        in_test = ObjectRef("v1", "Service", "test", "podinfo")

        assert find_manifest_files(tmp_path, "", [in_test], default_namespace="test").files == (
            "svc.yaml",
        )
        assert find_manifest_files(tmp_path, "", [in_test], default_namespace="prod").files == ()

    def test_group_matters(self, tmp_path: Path) -> None:
        write(tmp_path, {"d.yaml": deployment()})
        other_group = ObjectRef("example.com/v1", "Deployment", "test", "podinfo")
        assert find_manifest_files(tmp_path, "", [other_group]).missing == (other_group,)
