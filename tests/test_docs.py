"""The docs a user reads stay true: generated references are current, links resolve."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def crd_reference_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen", ROOT / "docs" / "generate_crd_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_crd_reference_is_generated_from_the_current_crds() -> None:
    module = crd_reference_generator()
    committed = (ROOT / "docs" / "crd-reference.md").read_text()
    assert committed == module.render(), "run: python docs/generate_crd_reference.py"


def test_the_crd_reference_tells_exclusive_bounds_from_inclusive_ones() -> None:
    details = crd_reference_generator()._details
    exclusive = {"minimum": 0, "exclusiveMinimum": True, "maximum": 0.5, "exclusiveMaximum": True}
    assert details(exclusive) == "> 0; < 0.5"
    assert details({"minimum": 0.5, "maximum": 1, "exclusiveMaximum": False}) == "≥ 0.5; ≤ 1"


def test_the_compare_schema_shown_in_analysis_md_is_the_crds() -> None:
    text = (ROOT / "docs" / "analysis.md").read_text()
    block = re.search(r"CRD schema \(crds/canary\.yaml carries it.*?```yaml\n(.*?)```", text, re.S)
    assert block is not None, "docs/analysis.md: the compare block's CRD schema is gone"
    crd = yaml.safe_load((ROOT / "crds" / "canary.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    metric = spec["properties"]["analysis"]["properties"]["metrics"]["items"]

    def without_descriptions(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: without_descriptions(v) for k, v in node.items() if k != "description"}
        return node

    shown = yaml.safe_load(block.group(1))["compare"]
    assert shown == without_descriptions(metric["properties"]["compare"])


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = re.sub(r"`[^`\n]*`", "", page.read_text())  # code spans hold regexes, not links
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_the_provider_table_has_a_row_per_provider_with_its_secret_keys_and_compare() -> None:
    from analysis import VENDORS

    text = (ROOT / "docs" / "analysis.md").read_text()
    rows = {
        m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z]+)` \|.*\|$", text, re.MULTILINE)
    }
    assert set(rows) >= {v.type for v in VENDORS}
    for vendor in VENDORS:
        row = rows[vendor.type]
        assert all(f"`{key}`" in row for key in vendor.secret_keys), row
        compares = "thresholds only" not in row
        assert compares == bool(vendor.compare_tests), row
    for example in (ROOT / "examples" / "providers").glob("*.yaml"):
        assert example.stem in rows, f"{example.name} is not in docs/analysis.md's table"
