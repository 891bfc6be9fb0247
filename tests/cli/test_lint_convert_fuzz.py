"""``canary lint`` and ``canary convert`` on any YAML: findings naming the field, never a traceback.

Found by fuzzing (issue 15): a Flagger document whose ``kind`` is a list or a mapping, or a
MetricTemplate whose ``spec.provider.type`` is one, ended both commands with a traceback and no
report for any file; a Canary whose apiVersion has two slashes was skipped silently. The
regressions are pinned first, through the CLI as a process. Then hypothesis feeds random YAML —
random nested structures, random values at the known field paths of Canary, MetricTemplate and
AlertProvider documents, several documents per file — to both commands, in-process and as a
process, and checks that the exit code is 0 or 1, that nothing prints a traceback, and that
every document is reported: checked, skipped as another kind, or named in a finding.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from canary.cli import app
from canary.commands._common import InputFile
from canary.commands.lint import LintReport, lint_inputs
from canary.model.convert import convert_document, convert_text, leftovers
from canary.model.schema import DocumentError, parse_documents

from .conftest import REPO

CANARY = Path(sys.executable).parent / "canary"
OURS = "canary.gitops.dev/v1beta1"
FLAGGER = "flagger.app/v1beta1"
MALFORMED = ["flagger.app//v1beta1", "canary.gitops.dev/v1beta1/x", "canary.gitops.dev/", "/v1"]

CANARY_DOC: dict[str, Any] = {
    "apiVersion": OURS,
    "kind": "Canary",
    "metadata": {"name": "podinfo", "namespace": "test"},
    "spec": {
        "provider": "kubernetes",
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898, "targetPort": 9898},
        "analysis": {
            "interval": "1m",
            "threshold": 5,
            "maxWeight": 50,
            "stepWeight": 10,
            "metrics": [
                {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
                {
                    "name": "latency",
                    "templateRef": {"name": "latency", "namespace": "test", "apiVersion": FLAGGER},
                    "templateVariables": {"route": "podinfo"},
                    "thresholdRange": {"max": 500},
                    "interval": "1m",
                },
            ],
            "webhooks": [
                {"name": "load", "type": "rollout", "url": "http://load/", "timeout": "5s"}
            ],
            "alerts": [{"name": "on-call", "severity": "error", "providerRef": {"name": "slack"}}],
        },
    },
}
TEMPLATE_DOC: dict[str, Any] = {
    "apiVersion": FLAGGER,
    "kind": "MetricTemplate",
    "metadata": {"name": "latency", "namespace": "test"},
    "spec": {
        "provider": {"type": "prometheus", "address": "http://prometheus:9090"},
        "query": 'histogram_quantile(0.99, rate(x{route="{{ variables.route }}"}[{{ interval }}]))',
    },
}
PROVIDER_DOC: dict[str, Any] = {
    "apiVersion": OURS,
    "kind": "AlertProvider",
    "metadata": {"name": "slack", "namespace": "test"},
    "spec": {"type": "slack", "channel": "deploys", "address": "https://hooks.slack.com/x"},
}
BASES = (CANARY_DOC, TEMPLATE_DOC, PROVIDER_DOC)
# Scalar fields that a list or a mapping must never get past unreported.
SCALAR_FIELDS: dict[str, tuple[tuple[str | int, ...], ...]] = {
    "Canary": (
        ("apiVersion",),
        ("kind",),
        ("metadata", "name"),
        ("spec", "provider"),
        ("spec", "targetRef", "kind"),
        ("spec", "analysis", "interval"),
        ("spec", "analysis", "metrics", 1, "templateRef", "apiVersion"),
        ("spec", "analysis", "alerts", 0, "severity"),
    ),
    "MetricTemplate": (
        ("apiVersion",),
        ("kind",),
        ("spec", "provider", "type"),
        ("spec", "query"),
    ),
    "AlertProvider": (("apiVersion",), ("kind",), ("spec", "type"), ("spec", "address")),
}

keys = st.sampled_from(
    ["apiVersion", "kind", "metadata", "spec", "items", "name", "type"]
) | st.text(max_size=6)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["Canary", "MetricTemplate", "List", "v1", OURS, FLAGGER, *MALFORMED, ""])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=10,
)


def paths(node: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [prefix] if prefix else []
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in children:
        found += paths(child, (*prefix, key))
    return found


def put(doc: dict[str, Any], path: Sequence[str | int], value: Any) -> None:
    node: Any = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def dotted(path: Sequence[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A known document with random values at some of its field paths."""
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        put(doc, draw(st.sampled_from(paths(doc))), draw(values))
    return doc


@dataclass(frozen=True)
class Mistyped:
    """A known document with a list or a mapping where a string belongs."""

    doc: dict[str, Any]
    path: str


@st.composite
def mistyped(draw: st.DrawFn) -> Mistyped:
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    path = draw(st.sampled_from(SCALAR_FIELDS[doc["kind"]]))
    wrong = draw(
        st.lists(values, min_size=1, max_size=2) | st.dictionaries(keys, values, min_size=1)
    )
    put(doc, path, wrong)
    return Mistyped(doc, dotted(path))


documents = (
    mutated()
    | st.dictionaries(keys, values, max_size=5)
    | st.builds(lambda items: {"apiVersion": "v1", "kind": "List", "items": items}, values)
    | values  # a document that is no mapping at all
)


def dump(docs: Sequence[Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)


def lint_text(text: str) -> LintReport:
    return lint_inputs([InputFile("fuzz.yaml", None)], promtool=None, read=lambda _: text)


def expected_objects(doc: Mapping[str, Any]) -> int:
    """What lint counts (checked or skipped) for one mapping document."""
    if doc.get("apiVersion") == "v1" and doc.get("kind") == "List":
        items = doc.get("items")
        return len(items) if isinstance(items, list) else 0 if items is None else 1
    return 1


def assert_every_document_reported(docs: Sequence[Any], report: LintReport) -> None:
    [file] = report.files
    findings = {(f.document, f.check) for f in report.findings}
    assert {f.file for f in report.findings} <= {"fuzz.yaml"}
    counted = 0
    for number, doc in enumerate(docs, start=1):
        if doc is None:
            continue  # an empty document: nothing to report
        if isinstance(doc, dict):
            counted += expected_objects(doc)
        else:
            assert (number, "yaml") in findings, f"document {number} ({doc!r}) is not reported"
    assert file.objects + file.skipped == counted


# --------------------------------------------------------------------------- the regressions

REGRESSIONS = {
    "kind-list": (f"apiVersion: {FLAGGER}\nkind: [Canary]\nmetadata: {{name: a}}\n", "kind"),
    "kind-map": (f"apiVersion: {FLAGGER}\nkind: {{Canary: 1}}\nmetadata: {{name: a}}\n", "kind"),
    "provider-type-list": (
        f"apiVersion: {FLAGGER}\nkind: MetricTemplate\nmetadata: {{name: t}}\n"
        "spec: {provider: {type: [prometheus]}, query: up}\n",
        "spec.provider.type",
    ),
    "provider-type-map": (
        f"apiVersion: {OURS}\nkind: MetricTemplate\nmetadata: {{name: t}}\n"
        "spec: {provider: {type: {a: b}}, query: up}\n",
        "spec.provider.type",
    ),
    "two-slashes": (
        "apiVersion: flagger.app//v1beta1\nkind: Canary\nmetadata: {name: a}\nspec: {}\n",
        "apiVersion",
    ),
}
VALID_SECOND = f"---\n{yaml.safe_dump(PROVIDER_DOC, sort_keys=False)}"


def run_canary(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CANARY), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.mark.parametrize("case", sorted(REGRESSIONS))
def test_lint_names_the_field_and_the_file_and_checks_the_other_documents(
    case: str, tmp_path: Path
) -> None:
    text, field = REGRESSIONS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text + VALID_SECOND)

    result = run_canary("lint", "--no-promql", str(path))

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert f"{path}: document 1: error: {field}: " in result.stdout
    assert "1 file, 2 objects checked" in result.stdout


@pytest.mark.parametrize("case", sorted(REGRESSIONS))
def test_convert_goes_through_every_document_without_a_traceback(case: str, tmp_path: Path) -> None:
    text, _ = REGRESSIONS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text + VALID_SECOND)

    result = run_canary("convert", str(path))

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert len(list(yaml.safe_load_all(result.stdout))) == 2


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (REGRESSIONS["kind-list"][0], "kind: expected a Canary, MetricTemplate or AlertProvider"),
        (REGRESSIONS["two-slashes"][0], "apiVersion: 'flagger.app//v1beta1' is not a valid"),
    ],
)
def test_convert_warns_about_a_flagger_object_it_leaves_unchanged(
    text: str, field: str, tmp_path: Path
) -> None:
    path = tmp_path / "flagger.yaml"
    path.write_text(text)

    result = run_canary("convert", str(path))

    assert result.returncode == 0
    assert f"warning: {path}: document 1: {field}" in result.stderr
    assert result.stdout == text


@pytest.mark.parametrize("api_version", MALFORMED)
def test_a_malformed_api_version_is_an_error_whatever_the_kind(api_version: str) -> None:
    doc = {**CANARY_DOC, "apiVersion": api_version}
    report = lint_text(dump([doc, {**doc, "kind": "Deployment"}]))
    errors = [(f.document, f.path) for f in report.findings if f.severity == "error"]
    assert (1, "apiVersion") in errors and (2, "apiVersion") in errors


def test_a_document_that_is_not_a_mapping_does_not_hide_the_next_ones() -> None:
    report = lint_text("- a list\n---\nplain text\n---\n" + dump([CANARY_DOC]))
    assert [(f.document, f.check) for f in report.findings] == [(1, "yaml"), (2, "yaml")]
    assert report.files[0].objects == 1


def test_a_recursive_alias_is_reported_not_followed_forever() -> None:
    report = lint_text("a: &x [*x]\n")
    [finding] = report.findings
    assert (finding.document, finding.check) == (1, "yaml")
    assert "nested more than" in finding.message


def test_stdin_that_is_not_utf8_is_bad_input_not_a_traceback() -> None:
    result = subprocess.run(
        [str(CANARY), "lint", "--no-promql", "-"],
        input=b"apiVersion: v1\nkind: \xff\n",
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert b"<stdin>: cannot read: not UTF-8 text" in result.stderr
    assert b"Traceback" not in result.stderr


# --------------------------------------------------------------------------- properties

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(st.lists(documents, min_size=1, max_size=4))
def test_lint_reports_every_document_of_any_yaml(docs: list[Any]) -> None:
    report = lint_text(dump(docs))
    assert_every_document_reported(docs, report)


@FUZZ
@given(st.lists(mistyped(), min_size=1, max_size=3))
def test_lint_names_a_scalar_field_given_a_list_or_a_mapping(cases: list[Mistyped]) -> None:
    report = lint_text(dump([case.doc for case in cases]))
    for number, case in enumerate(cases, start=1):
        named = {f.path for f in report.findings if f.document == number and f.severity == "error"}
        assert case.path in named, f"document {number}: {case.path} not named in {named}"


@FUZZ
@given(st.lists(documents, min_size=1, max_size=4))
def test_convert_rewrites_only_api_versions_of_any_yaml(docs: list[Any]) -> None:
    text = dump(docs)
    try:
        out, changes = convert_text(text, "fuzz.yaml")
    except DocumentError as exc:  # only a document that is not a Kubernetes object
        assert any(d is not None and not isinstance(d, dict) for d in docs), exc
        return
    originals = [doc for _, doc in parse_documents(text)]
    converted = [doc for _, doc in parse_documents(out)]
    assert json.dumps(converted) == json.dumps([convert_document(d)[0] for d in originals])
    assert len(changes) == sum(len(convert_document(d)[1]) for d in originals)
    for doc in originals:
        for leftover in leftovers(doc):
            assert leftover.path.endswith(("apiVersion", "kind"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(documents, min_size=1, max_size=4), st.sampled_from(["lint", "convert"]))
def test_the_commands_in_process_exit_0_or_1_without_a_traceback(
    docs: list[Any], command: str
) -> None:
    args = ["lint", "--no-promql", "-o", "json", "-"] if command == "lint" else ["convert", "-"]
    result = CliRunner().invoke(app, args, input=dump(docs))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    not_objects = any(d is not None and not isinstance(d, dict) for d in docs)
    allowed = {0, 1, 2} if command == "convert" and not_objects else {0, 1}
    assert result.exit_code in allowed, result.output
    assert "Traceback" not in result.output
    if command == "lint":
        summary = json.loads(result.stdout)["summary"]
        counted = sum(expected_objects(d) for d in docs if isinstance(d, dict))
        assert summary["objects"] + summary["skipped"] == counted


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(documents | mistyped().map(lambda m: m.doc), min_size=1, max_size=4))
def test_the_commands_as_processes_exit_0_or_1_without_a_traceback(docs: list[Any]) -> None:
    text = dump(docs)
    lint = subprocess.run(
        [str(CANARY), "lint", "-o", "json", "-"],  # with promtool when it is installed
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    convert = subprocess.run(
        [str(CANARY), "convert", "-"], input=text, capture_output=True, text=True, timeout=120
    )
    assert lint.returncode in (0, 1), lint.stderr
    not_objects = any(d is not None and not isinstance(d, dict) for d in docs)
    assert convert.returncode in ((0, 1, 2) if not_objects else (0, 1)), convert.stderr
    for result in (lint, convert):
        assert "Traceback" not in result.stdout + result.stderr
    summary = json.loads(lint.stdout)["summary"]
    counted = sum(expected_objects(d) for d in docs if isinstance(d, dict))
    assert summary["objects"] + summary["skipped"] == counted
