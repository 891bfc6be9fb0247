"""What a path of a checkout declares: plain files and documents, kustomizations built with
real ``kubectl kustomize``, and errors that name the file (and kustomize's own words)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from canary.adapters.gitops import (
    Kustomize,
    KustomizeError,
    LoadedManifests,
    ManifestError,
    render_manifests,
)
from tests.gitops.conftest import configmap, deployment

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is needed")

KUSTOMIZE = Kustomize()


async def load_manifests(root: Path, path: str = "", *, strict: bool = True) -> LoadedManifests:
    return await render_manifests(root, path, kustomize=KUSTOMIZE, strict=strict)


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
    async def test_multi_document_files_remember_file_and_document(self, tmp_path: Path) -> None:
        write(tmp_path, {"deploy/app.yaml": f"---\n{deployment()}---\n---\n{SERVICE}"})

        loaded = await load_manifests(tmp_path, "deploy")

        assert [(m.ref.kind, m.source_file, m.document) for m in loaded.manifests] == [
            ("Deployment", "deploy/app.yaml", 1),
            ("Service", "deploy/app.yaml", 3),
        ]
        assert loaded.notes == ()  # the empty document 2 is skipped silently

    async def test_recursive_sorted_and_json_with_hidden_entries_skipped(
        self, tmp_path: Path
    ) -> None:
        write(
            tmp_path,
            {
                "apps/b/svc.yml": SERVICE,
                "apps/a/cm.json": '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}',
                "apps/.github/workflow.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: no}\n",
                "apps/readme.md": "not yaml",
            },
        )

        loaded = await load_manifests(tmp_path, "./apps/")

        assert loaded.files == ("apps/a/cm.json", "apps/b/svc.yml")
        assert [m.ref.name for m in loaded.manifests] == ["x", "podinfo"]

    async def test_mappings_without_kind_are_skipped_with_a_note(self, tmp_path: Path) -> None:
        write(tmp_path, {"values.yaml": "replicas: 3\n", "svc.yaml": SERVICE})

        loaded = await load_manifests(tmp_path)

        assert [m.ref.kind for m in loaded.manifests] == ["Service"]
        assert [str(n) for n in loaded.notes] == [
            "values.yaml document 1: no apiVersion/kind: not a Kubernetes object, skipped"
        ]

    async def test_list_kind_is_expanded(self, tmp_path: Path) -> None:
        write(
            tmp_path,
            {
                "list.yaml": "apiVersion: v1\nkind: List\nitems:\n"
                "- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
                "- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n"
            },
        )

        loaded = await load_manifests(tmp_path)

        assert [(m.ref.name, m.location) for m in loaded.manifests] == [
            ("a", "list.yaml document 1 item 0"),
            ("b", "list.yaml document 1 item 1"),
        ]

    async def test_timestamps_stay_strings(self, tmp_path: Path) -> None:
        write(
            tmp_path,
            {
                "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {day: 2024-05-01}\n"
            },
        )
        (manifest,) = (await load_manifests(tmp_path)).manifests
        assert manifest.body["data"]["day"] == "2024-05-01"

    async def test_numbers_are_read_as_kubectl_reads_them(self, tmp_path: Path) -> None:
        # YAML 1.1 (PyYAML's) makes 1e-3 a string, which the API server would refuse for a
        # number field; kubectl's YAML 1.2 floats make it a number, and keep 1e400 a string.
        write(
            tmp_path,
            {
                "c.yaml": "apiVersion: v1\nkind: Thing\nmetadata: {name: a}\n"
                "spec: {alpha: 1e-3, half: .5, big: 1e400, count: 10, quoted: '1e-3'}\n"
            },
        )
        (manifest,) = (await load_manifests(tmp_path)).manifests
        assert manifest.body["spec"] == {
            "alpha": 0.001,
            "half": 0.5,
            "big": "1e400",
            "count": 10,
            "quoted": "1e-3",
        }


OVERLAY_BASE = {
    "base/kustomization.yaml": "resources: [deployment.yaml, service.yaml]\n",
    "base/deployment.yaml": deployment("6.0.0").replace("  namespace: test\n", ""),
    "base/service.yaml": SERVICE,
    "base/unused.yaml": configmap("red"),
}


class TestKustomization:
    async def test_an_overlay_is_built_with_images_prefix_labels_and_namespace(
        self, tmp_path: Path
    ) -> None:
        write(
            tmp_path,
            {
                **OVERLAY_BASE,
                "overlays/prod/kustomization.yaml": (
                    "resources: [../../base]\n"
                    "namespace: prod\n"
                    "namePrefix: prod-\n"
                    "labels:\n- pairs: {team: web}\n"
                    "images:\n- name: ghcr.io/stefanprodan/podinfo\n  newTag: 6.0.3\n"
                ),
            },
        )

        loaded = await load_manifests(tmp_path, "overlays/prod")

        assert loaded.kustomizations == ("overlays/prod",)
        assert loaded.files == ()
        deploy, service = sorted(loaded.manifests, key=lambda m: m.ref.kind)
        assert (deploy.ref.name, deploy.ref.namespace) == ("prod-podinfo", "prod")
        container = deploy.body["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "ghcr.io/stefanprodan/podinfo:6.0.3"
        assert deploy.body["metadata"]["labels"]["team"] == "web"
        # Each object says which file it came from; kustomize's origin annotation is gone.
        assert deploy.source_file == "base/deployment.yaml"
        assert service.source_file == "base/service.yaml"
        assert deploy.location == "base/deployment.yaml (kustomize build overlays/prod)"
        assert "annotations" not in deploy.body["metadata"]

    async def test_patches_components_and_generators_work_as_in_kustomize(
        self, tmp_path: Path
    ) -> None:
        write(
            tmp_path,
            {
                **OVERLAY_BASE,
                "components/debug/kustomization.yaml": (
                    "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
                    "patches:\n- target: {kind: Deployment}\n  patch: |-\n"
                    "    - op: replace\n      path: /spec/replicas\n      value: 5\n"
                ),
                "app/kustomization.yaml": (
                    "resources: [../base]\n"
                    "components: [../components/debug]\n"
                    "patches: [{path: image.yaml}]\n"
                    "configMapGenerator:\n- name: podinfo-config\n  literals: [color=green]\n"
                ),
                "app/image.yaml": (
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: podinfo}\n"
                    "spec:\n  template:\n    spec:\n      containers:\n"
                    "      - name: podinfo\n        image: podinfo:patched\n"
                ),
            },
        )

        loaded = await load_manifests(tmp_path, "app")

        by_kind = {m.ref.kind: m for m in loaded.manifests}
        deploy = by_kind["Deployment"].body
        assert deploy["spec"]["replicas"] == 5
        assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:patched"
        generated = by_kind["ConfigMap"]
        assert generated.ref.name.startswith("podinfo-config-")  # the content hash
        assert generated.source_file == "app/kustomization.yaml"  # made by its generator

    async def test_a_kustomization_under_a_plain_directory_is_built_the_rest_read_as_files(
        self, tmp_path: Path
    ) -> None:
        write(
            tmp_path,
            {
                "cluster/ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: test}\n",
                "cluster/app/Kustomization": "resources: [a.yaml]\n",
                "cluster/app/a.yaml": SERVICE,
                "cluster/app/b.yaml": configmap(),
            },
        )

        loaded = await load_manifests(tmp_path, "cluster")

        assert loaded.files == ("cluster/ns.yaml",)
        assert loaded.kustomizations == ("cluster/app",)
        assert sorted(m.ref.kind for m in loaded.manifests) == ["Namespace", "Service"]

    @pytest.mark.parametrize(
        ("kustomization", "words"),
        [
            ("resources: [missing.yaml]\n", "missing.yaml"),
            ("resources: [../../outside]\n", "outside"),
            ("patches: [{path: ../secret.yaml}]\n", "is not in or below"),
            ("resources: deploy.yaml\n", "kustomize build failed"),
        ],
    )
    async def test_a_failed_build_names_the_kustomization_with_kustomizes_message(
        self, tmp_path: Path, kustomization: str, words: str
    ) -> None:
        write(
            tmp_path / "repo",
            {
                "app/kustomization.yaml": kustomization,
                "app/deploy.yaml": SERVICE,
                "secret.yaml": SERVICE,
            },
        )

        with pytest.raises(KustomizeError) as info:
            await load_manifests(tmp_path / "repo", "app")

        assert info.value.file == "app/kustomization.yaml"
        assert words in str(info.value)
        assert str(tmp_path) not in str(info.value)  # paths are repository-relative

    async def test_a_cycle_is_refused_by_kustomize(self, tmp_path: Path) -> None:
        write(
            tmp_path,
            {
                "a/kustomization.yaml": "resources: [../b]\n",
                "b/kustomization.yaml": "resources: [../a]\n",
            },
        )
        with pytest.raises(KustomizeError, match="cycle"):
            await load_manifests(tmp_path, "a")

    async def test_the_build_leaves_nothing_behind_in_the_checkout(self, tmp_path: Path) -> None:
        write(tmp_path, OVERLAY_BASE)

        def listing() -> list[Path]:
            return sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

        before = listing()
        await load_manifests(tmp_path, "base")
        assert listing() == before

    async def test_kustomize_reports_its_version(self) -> None:
        assert (await KUSTOMIZE.version()).startswith("v")


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
            (  # kubectl refuses it; applying the last of the two would deploy what nobody read
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  k: '1'\n  k: '2'\n",
                "deploy/app.yaml document 1: invalid YAML: key 'k' appears twice",
            ),
        ],
    )
    async def test_errors_name_file_and_document(
        self, tmp_path: Path, text: str, expected: str
    ) -> None:
        write(tmp_path, {"deploy/app.yaml": text})

        with pytest.raises(ManifestError) as info:
            await load_manifests(tmp_path, "deploy")

        assert str(info.value).startswith(expected)
        assert info.value.file == "deploy/app.yaml"

    async def test_yaml_error_reports_the_line(self, tmp_path: Path) -> None:
        write(tmp_path, {"a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [x\n"})
        with pytest.raises(ManifestError, match=r"line \d+, column \d+"):
            await load_manifests(tmp_path)

    async def test_invalid_json_names_the_file(self, tmp_path: Path) -> None:
        write(tmp_path, {"a.json": '{"apiVersion": '})
        with pytest.raises(ManifestError, match=r"^a\.json document 1: invalid JSON"):
            await load_manifests(tmp_path)

    async def test_missing_path_and_escape_are_errors(self, tmp_path: Path) -> None:
        with pytest.raises(ManifestError, match="nowhere: path not found"):
            await load_manifests(tmp_path, "nowhere")
        with pytest.raises(ManifestError, match="outside the repository"):
            await load_manifests(tmp_path / "x", "../..")

    async def test_lenient_mode_collects_errors_and_keeps_going(self, tmp_path: Path) -> None:
        write(tmp_path, {"a.yaml": "- broken\n", "b.yaml": SERVICE})

        loaded = await load_manifests(tmp_path, strict=False)

        assert [m.ref.kind for m in loaded.manifests] == ["Service"]
        assert [e.file for e in loaded.errors] == ["a.yaml"]
