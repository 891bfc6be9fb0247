"""``canary convert``: Flagger manifests become ours, keep their comments, and then lint clean."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from canary.model.schema import load_documents, parse_documents

from .conftest import EXAMPLES, Invoke

FLAGGER = sorted((EXAMPLES.parent / "tests" / "fixtures" / "flagger").glob("*.yaml"))
OURS = "canary.gitops.dev/v1beta1"
THEIRS = "flagger.app/v1beta1"


def rel(path: Path) -> str:
    return str(path.relative_to(EXAMPLES.parent))


def lint_errors(cli: Invoke, path: Path) -> list[dict[str, object]]:
    result = cli("lint", "-o", "json", str(path))
    report = json.loads(result.stdout)
    errors = [i for i in report["issues"] if i["severity"] == "error"]
    assert (result.exit_code == 0) == (not errors)
    return errors


@pytest.mark.parametrize("path", FLAGGER, ids=rel)
def test_flagger_example_converts_to_stdout_and_then_lints_clean(
    cli: Invoke, path: Path, tmp_path: Path
) -> None:
    assert lint_errors(cli, path), "the unconverted example should need conversion"
    result = cli("convert", str(path))
    assert result.exit_code == 0, result.stderr
    converted = tmp_path / path.name
    converted.write_text(result.stdout)
    assert lint_errors(cli, converted) == []
    # Only apiVersion values changed, each reported on stderr with document and line.
    before = [d for _, d in load_documents(path)]
    after = [d for _, d in load_documents(converted)]
    flagger_objects = sum(1 for d in before if d.get("apiVersion") == THEIRS)
    assert sum(1 for d in after if d.get("apiVersion") == OURS) >= flagger_objects
    assert all(
        THEIRS not in line
        for line in result.stdout.splitlines()
        if not line.lstrip().startswith("#")
    )
    assert result.stderr.count(f"{THEIRS} -> {OURS}") >= flagger_objects
    assert f"{path}: document 1, line " in result.stderr


def test_whole_directory_in_one_stream(cli: Invoke, tmp_path: Path) -> None:
    result = cli("convert", str(EXAMPLES.parent / "tests" / "fixtures" / "flagger"))
    assert result.exit_code == 0
    stream = tmp_path / "all.yaml"
    stream.write_text(result.stdout)
    documents = [d for _, d in parse_documents(result.stdout)]
    expected = sum(len(load_documents(p)) for p in FLAGGER)
    assert len(documents) == expected
    assert lint_errors(cli, stream) == []
    assert f"in {len(FLAGGER)} files of {len(FLAGGER)}" in result.stderr


def test_in_place_keeps_comments_and_layout(cli: Invoke, tmp_path: Path) -> None:
    source = EXAMPLES.parent / "tests" / "fixtures" / "flagger" / "gatewayapi-session-affinity.yaml"
    target = tmp_path / source.name
    shutil.copy(source, target)
    original = source.read_text()
    assert "#" in original, "the example must have comments for this test to mean anything"

    result = cli("convert", "--in-place", str(target))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    rewritten = target.read_text()
    # Exactly the apiVersion values changed: line by line, the rest is byte-identical.
    assert rewritten == original.replace(f"apiVersion: {THEIRS}", f"apiVersion: {OURS}")
    assert rewritten != original
    assert [line for line in rewritten.splitlines() if line.lstrip().startswith("#")] == [
        line for line in original.splitlines() if line.lstrip().startswith("#")
    ]
    assert lint_errors(cli, target) == []
    assert "rewrote" in result.stderr


def test_in_place_leaves_files_without_flagger_objects_alone(cli: Invoke, tmp_path: Path) -> None:
    target = tmp_path / "ours.yaml"
    shutil.copy(EXAMPLES / "canaries" / "argocd-blue-green.yaml", target)
    before = target.stat().st_mtime_ns, target.read_text()
    result = cli("convert", "-i", str(target))
    assert result.exit_code == 0
    assert (target.stat().st_mtime_ns, target.read_text()) == before
    assert "nothing to convert" in result.stderr


def test_json_output(cli: Invoke) -> None:
    one = cli(
        "convert",
        "-o",
        "json",
        str(EXAMPLES.parent / "tests" / "fixtures" / "flagger" / "istio-progressive.yaml"),
    )
    assert one.exit_code == 0
    obj = json.loads(one.stdout)
    assert (obj["apiVersion"], obj["kind"]) == (OURS, "Canary")

    many = cli(
        "convert",
        "-o",
        "json",
        str(EXAMPLES.parent / "tests" / "fixtures" / "flagger" / "metric-templates.yaml"),
    )
    listed = json.loads(many.stdout)
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "List")
    assert [item["apiVersion"] for item in listed["items"]] == [OURS] * 3


def test_stdin_to_stdout(cli: Invoke) -> None:
    text = (
        EXAMPLES.parent / "tests" / "fixtures" / "flagger" / "kubernetes-blue-green.yaml"
    ).read_text()
    result = cli("convert", "-", input=text)
    assert result.exit_code == 0
    assert result.stdout == text.replace(f"apiVersion: {THEIRS}", f"apiVersion: {OURS}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-i", "-o", "json", "x.yaml"], "cannot be combined with -o json"),
        (["-i", "-"], "stdin (-) cannot be rewritten"),
        (["missing.yaml"], "missing.yaml: no such file or directory"),
    ],
)
def test_bad_usage_exits_2(cli: Invoke, args: list[str], message: str) -> None:
    result = cli("convert", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_unreadable_yaml_exits_2(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: x\n")
    result = cli("convert", str(path))
    assert result.exit_code == 2
    assert f"{path}: document 1: " in result.stderr


SHARED_ANCHOR = f"""\
# The apiVersion value is shared with an annotation through an anchor.
apiVersion: &v {THEIRS}
kind: AlertProvider
metadata:
  name: slack
  annotations:
    origin: *v
spec:
  type: slack
  address: https://hooks.slack.com/x
"""


def test_text_that_cannot_be_rewritten_in_place_is_left_alone(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "anchored.yaml"
    path.write_text(SHARED_ANCHOR)
    result = cli("convert", "-i", str(path))
    assert result.exit_code == 1
    assert "left unchanged" in result.stderr
    assert path.read_text() == SHARED_ANCHOR

    # To stdout it still converts, re-serialised (without the comment), and says so.
    printed = cli("convert", str(path))
    assert printed.exit_code == 0
    assert "without its comments" in printed.stderr
    [(_, doc)] = parse_documents(printed.stdout)
    assert doc["apiVersion"] == OURS
    assert doc["metadata"]["annotations"]["origin"] == THEIRS
