"""The routing CRDs in crds/routers are valid and serve the versions the routers write."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS: list[dict[str, Any]] = [
    doc
    for path in sorted((ROOT / "crds" / "routers").glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc
]
BY_NAME = {doc["metadata"]["name"]: doc for doc in DOCS}


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_valid_customresourcedefinition(name: str) -> None:
    kubernetes_validate.validate(BY_NAME[name], "1.37.0", strict=True)


@pytest.mark.parametrize(
    ("name", "versions"),
    [
        ("virtualservices.networking.istio.io", {"v1", "v1beta1", "v1alpha3"}),
        ("destinationrules.networking.istio.io", {"v1", "v1beta1", "v1alpha3"}),
        ("httproutes.gateway.networking.k8s.io", {"v1", "v1beta1"}),
        ("trafficsplits.split.smi-spec.io", {"v1alpha1", "v1alpha2", "v1alpha3"}),
        ("services.serving.knative.dev", {"v1"}),
        ("revisions.serving.knative.dev", {"v1"}),
    ],
)
def test_served_versions_and_one_storage_version(name: str, versions: set[str]) -> None:
    served = BY_NAME[name]["spec"]["versions"]
    assert {v["name"] for v in served if v["served"]} == versions
    assert sum(1 for v in served if v["storage"]) == 1
    for v in served:
        spec_schema = v["schema"]["openAPIV3Schema"]["properties"]["spec"]
        assert spec_schema["x-kubernetes-preserve-unknown-fields"] is True
