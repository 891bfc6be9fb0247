"""Shipped examples validate cleanly; every broken fixture fails exactly where it says."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from canary.model import parse_alert_provider, parse_canary, parse_metric_template
from canary.model.convert import convert_document
from canary.model.schema import DocumentError, load_documents, validate, validate_file

from .support import BROKEN, EXAMPLES


def is_manifest(doc: dict[str, object]) -> bool:
    """Kubernetes objects; examples/ also holds other YAML (e.g. simulation scenarios)."""
    return "apiVersion" in doc or "kind" in doc


NATIVE_EXAMPLES = sorted(
    p for p in EXAMPLES.rglob("*.y*ml") if any(is_manifest(d) for _, d in load_documents(p))
)
# Flagger's own manifests live with the fixtures: `canary lint examples/` accepts everything
# there, and Flagger manifests pass lint only after `canary convert`.
FLAGGER_EXAMPLES = sorted((EXAMPLES.parent / "tests" / "fixtures" / "flagger").glob("*.yaml"))
ALL_EXAMPLES = NATIVE_EXAMPLES + FLAGGER_EXAMPLES
BROKEN_FIXTURES = sorted(BROKEN.glob("*.yaml"))

_EXPECT = re.compile(r"^# expect: (?:document (\d+): )?(error|warning) (\S+)$")
_EXPECT_LOAD = re.compile(r"^# expect-load-error: document (\d+): line (\d+)$")


def rel(path: Path) -> str:
    return str(path.relative_to(EXAMPLES.parent))


def test_there_are_examples_of_both_kinds() -> None:
    assert len(FLAGGER_EXAMPLES) >= 5
    assert len(NATIVE_EXAMPLES) >= 4


@pytest.mark.parametrize("path", NATIVE_EXAMPLES, ids=rel)
def test_native_example_has_no_issue_at_all(path: Path) -> None:
    manifests = [(n, d) for n, d in load_documents(path) if is_manifest(d)]
    assert [f"document {n}: {issue}" for n, d in manifests for issue in validate(d)] == []


@pytest.mark.parametrize("path", FLAGGER_EXAMPLES, ids=rel)
def test_flagger_example_only_needs_conversion(path: Path) -> None:
    docs = load_documents(path)
    issues = validate_file(path)
    flagger_docs = [n for n, d in docs if d["apiVersion"] == "flagger.app/v1beta1"]
    assert flagger_docs, "a Flagger example must contain Flagger objects"
    assert [(i.document, i.issue.path) for i in issues] == [(n, "apiVersion") for n in flagger_docs]
    assert all("canary convert" in i.issue.message for i in issues)


@pytest.mark.parametrize("path", FLAGGER_EXAMPLES, ids=rel)
def test_flagger_example_validates_after_conversion(path: Path) -> None:
    for _, doc in load_documents(path):
        converted, _ = convert_document(doc)
        assert validate(converted) == []


def test_examples_cover_every_kind_and_the_extensions() -> None:
    docs = [d for p in ALL_EXAMPLES for _, d in load_documents(p) if is_manifest(d)]
    kinds = {(d["apiVersion"], d["kind"]) for d in docs}
    for kind in ("Canary", "MetricTemplate", "AlertProvider"):
        assert ("flagger.app/v1beta1", kind) in kinds
    for kind in ("Canary", "MetricTemplate", "AlertProvider", "GitSource"):
        assert ("canary.gitops.dev/v1beta1", kind) in kinds
    canaries = [d["spec"] for d in docs if d["kind"] == "Canary"]
    assert {c["gitops"].get("source", {}).get("kind") for c in canaries if "gitops" in c} >= {
        "GitSource",
        "Kustomization",
        "Application",
    }
    assert any(c.get("gitops", {}).get("revert") is False for c in canaries)
    strategies = {
        key
        for c in canaries
        for key in ("iterations", "stepWeight", "stepWeights")
        if key in c["analysis"]
    }
    assert strategies == {"iterations", "stepWeight", "stepWeights"}


# ----------------------------------------------------------------------------- broken fixtures


def expectations(path: Path) -> tuple[set[tuple[int, str, str]], tuple[int, int] | None]:
    issues: set[tuple[int, str, str]] = set()
    load_error: tuple[int, int] | None = None
    for line in path.read_text().splitlines():
        if match := _EXPECT.match(line):
            issues.add((int(match[1] or 1), match[2], match[3]))
        elif match := _EXPECT_LOAD.match(line):
            load_error = (int(match[1]), int(match[2]))
    assert issues or load_error, f"{path.name} declares no '# expect:' line"
    return issues, load_error


def test_there_are_broken_fixtures() -> None:
    assert len(BROKEN_FIXTURES) >= 20


@pytest.mark.parametrize("path", BROKEN_FIXTURES, ids=lambda p: p.name)
def test_broken_fixture_fails_exactly_where_expected(path: Path) -> None:
    expected, load_error = expectations(path)
    if load_error is not None:
        with pytest.raises(DocumentError) as caught:
            validate_file(path)
        document, line = load_error
        assert caught.value.document == document
        assert caught.value.file == str(path)
        assert f"line {line}," in caught.value.reason
        assert str(caught.value).startswith(f"{path}: document {document}: ")
        return
    found = {(i.document, i.issue.severity, i.issue.path) for i in validate_file(path)}
    assert found == expected


@pytest.mark.parametrize(
    "path", [p for p in NATIVE_EXAMPLES if p.parent.name == "canaries"], ids=rel
)
def test_native_example_is_also_semantically_valid(path: Path) -> None:
    # The schema says "the API server keeps it"; the model says "the controller can run it".
    parsers: dict[str, Callable[[Mapping[str, Any]], object]] = {
        "Canary": parse_canary,
        "MetricTemplate": parse_metric_template,
        "AlertProvider": parse_alert_provider,
    }
    for _, doc in load_documents(path):
        parser = parsers.get(doc["kind"])
        if parser is not None:
            parser(doc)  # raises SpecError with every problem
