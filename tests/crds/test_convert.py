"""canary.model.convert: Flagger manifests become ours by changing apiVersions only."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.model.convert import Change, ConversionError, convert_document, convert_text
from canary.model.schema import DocumentError, load_documents, parse_documents, validate

from .support import EXAMPLES

FLAGGER = "flagger.app/v1beta1"
OURS = "canary.gitops.dev/v1beta1"
FLAGGER_EXAMPLES = sorted((EXAMPLES.parent / "tests" / "fixtures" / "flagger").glob("*.yaml"))


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths where two parsed documents differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            sub = f"{path}.{key}" if path else key
            out += differences(a.get(key), b.get(key), sub) if key in a and key in b else [sub]
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [path]


def flagger_canary() -> dict[str, Any]:
    return {
        "apiVersion": FLAGGER,
        "kind": "Canary",
        "metadata": {"name": "podinfo"},
        "spec": {
            "targetRef": {"kind": "Deployment", "name": "podinfo"},
            "service": {"port": 80},
            "analysis": {
                "interval": "1m",
                "threshold": 1,
                "stepWeight": 10,
                "metrics": [
                    {"name": "a", "templateRef": {"name": "a", "apiVersion": FLAGGER}},
                    {"name": "b", "templateRef": {"name": "b"}},
                    {"name": "c", "templateRef": {"name": "c", "apiVersion": "example.com/v1"}},
                ],
            },
        },
    }


class TestConvertDocument:
    @pytest.mark.parametrize("kind", ["Canary", "MetricTemplate", "AlertProvider"])
    def test_flagger_kinds_get_our_api_version(self, kind: str) -> None:
        doc = {"apiVersion": FLAGGER, "kind": kind, "metadata": {"name": "x"}, "spec": {"k": "v"}}
        converted, changes = convert_document(doc, provider=None)
        assert converted == {**doc, "apiVersion": OURS}
        assert changes == [Change("apiVersion", FLAGGER, OURS)]

    def test_nested_template_refs_are_converted_and_nothing_else(self) -> None:
        doc = flagger_canary()
        converted, changes = convert_document(doc, provider=None)
        assert [c.path for c in changes] == [
            "apiVersion",
            "spec.analysis.metrics[0].templateRef.apiVersion",
        ]
        assert differences(doc, converted) == [c.path for c in changes]
        assert (
            converted["spec"]["analysis"]["metrics"][2]["templateRef"]["apiVersion"]
            == "example.com/v1"
        )

    def test_deprecated_canary_analysis_too(self) -> None:
        doc = flagger_canary()
        doc["spec"]["canaryAnalysis"] = doc["spec"].pop("analysis")
        _, changes = convert_document(doc)
        assert "spec.canaryAnalysis.metrics[0].templateRef.apiVersion" in [c.path for c in changes]

    def test_our_canary_with_a_flagger_template_ref(self) -> None:
        doc = flagger_canary()
        doc["apiVersion"] = OURS
        _, changes = convert_document(doc)
        assert [c.path for c in changes] == ["spec.analysis.metrics[0].templateRef.apiVersion"]

    def test_input_is_left_alone(self) -> None:
        doc = flagger_canary()
        before = copy.deepcopy(doc)
        converted, _ = convert_document(doc)
        assert doc == before
        converted["spec"]["service"]["port"] = 1
        assert doc["spec"]["service"]["port"] == 80

    @pytest.mark.parametrize(
        "doc",
        [
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}},
            {"apiVersion": FLAGGER, "kind": "Unknown"},
            {"apiVersion": "flagger.app/v1alpha3", "kind": "Canary"},
            {"apiVersion": OURS, "kind": "Canary", "spec": {"analysis": {"metrics": "junk"}}},
        ],
    )
    def test_other_documents_are_unchanged(self, doc: dict[str, Any]) -> None:
        converted, changes = convert_document(doc)
        assert (converted, changes) == (doc, [])

    def test_a_malformed_spec_does_not_stop_the_conversion(self) -> None:
        converted, changes = convert_document(
            {"apiVersion": FLAGGER, "kind": "Canary", "spec": "junk"}
        )
        assert converted == {"apiVersion": OURS, "kind": "Canary", "spec": "junk"}
        assert [c.path for c in changes] == ["apiVersion"]

    def test_list_items(self) -> None:
        doc = {
            "apiVersion": "v1",
            "kind": "List",
            "items": [{"apiVersion": "v1", "kind": "Secret"}, flagger_canary()],
        }
        converted, changes = convert_document(doc, provider=None)
        assert [c.path for c in changes] == [
            "items[1].apiVersion",
            "items[1].spec.analysis.metrics[0].templateRef.apiVersion",
        ]
        assert converted["items"][1]["apiVersion"] == OURS

    def test_a_canary_without_provider_gets_the_one_it_ran_on_under_flagger(self) -> None:
        doc = flagger_canary()
        converted, changes = convert_document(doc)
        assert converted["spec"]["provider"] == "istio"  # Flagger's -mesh-provider default
        assert changes[-1].path == "spec.provider" and changes[-1].new == "istio"
        linkerd, _ = convert_document(doc, provider="linkerd")
        assert linkerd["spec"]["provider"] == "linkerd"
        doc["spec"]["provider"] = "nginx"
        kept, changes = convert_document(doc)
        assert kept["spec"]["provider"] == "nginx"
        assert all(c.path != "spec.provider" for c in changes)

    def test_conversion_is_idempotent(self) -> None:
        once, _ = convert_document(flagger_canary())
        twice, changes = convert_document(once)
        assert (twice, changes) == (once, [])


class TestFlaggerExamples:
    @pytest.mark.parametrize("path", FLAGGER_EXAMPLES, ids=lambda p: p.name)
    def test_converted_example_is_valid_and_differs_only_in_api_versions(self, path: Path) -> None:
        for _, doc in load_documents(path):
            converted, changes = convert_document(doc)
            assert validate(converted) == []
            diff = differences(doc, converted)
            assert diff == [c.path for c in changes]
            assert all(p.endswith("apiVersion") for p in diff)


class TestConvertText:
    SAMPLE = (
        "# podinfo canary  (comment kept)\n"
        "apiVersion: flagger.app/v1beta1   # trailing comment\n"
        "kind: Canary\n"
        "metadata: {name: podinfo}\n"
        "spec:\n"
        "  analysis:\n"
        "    metrics:\n"
        "      - name: a\n"
        "        templateRef: {name: a, apiVersion: 'flagger.app/v1beta1'}\n"
        "---\n"
        'apiVersion: "flagger.app/v1beta1"\n'
        "kind: AlertProvider\n"
        "spec:\n"
        "  type:    slack\n"
        "---\n"
        "apiVersion: apps/v1\n"
        "kind: Deployment   # flagger.app/v1beta1 in a comment stays\n"
    )

    def test_only_the_values_change(self) -> None:
        out, changes = convert_text(self.SAMPLE, "sample.yaml", provider=None)
        before, after = self.SAMPLE.splitlines(), out.splitlines()
        assert len(before) == len(after)
        changed = [i + 1 for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        assert changed == [2, 9, 11] == [c.line for c in changes]
        assert [c.document for c in changes] == [1, 1, 2]
        assert after[1] == "apiVersion: canary.gitops.dev/v1beta1   # trailing comment"
        assert after[8] == "        templateRef: {name: a, apiVersion: 'canary.gitops.dev/v1beta1'}"
        assert after[10] == 'apiVersion: "canary.gitops.dev/v1beta1"'
        assert out.replace(OURS, FLAGGER) == self.SAMPLE

    def test_the_provider_line_is_inserted_at_the_specs_indentation(self) -> None:
        out, changes = convert_text(self.SAMPLE, "sample.yaml")
        lines = out.splitlines()
        assert lines[4:7] == ["spec:", "  provider: istio", "  analysis:"]
        assert [c.path for c in changes if c.document == 1] == [
            "apiVersion",
            "spec.provider",
            "spec.analysis.metrics[0].templateRef.apiVersion",
        ]
        assert [c.line for c in changes if c.path == "spec.provider"] == [6]

    def test_a_flow_style_spec_cannot_take_a_provider_in_place(self) -> None:
        text = "apiVersion: flagger.app/v1beta1\nkind: Canary\nspec: {analysis: {}}\n"
        with pytest.raises(ConversionError, match="cannot add provider in place"):
            convert_text(text, "f.yaml")
        assert convert_text(text, "f.yaml", provider=None)[1]

    def test_text_and_document_forms_agree(self) -> None:
        out, _ = convert_text(self.SAMPLE)
        expected = [convert_document(doc)[0] for _, doc in parse_documents(self.SAMPLE)]
        assert [doc for _, doc in parse_documents(out)] == expected

    @pytest.mark.parametrize("path", FLAGGER_EXAMPLES, ids=lambda p: p.name)
    def test_examples_round_trip(self, path: Path) -> None:
        text = path.read_text()
        out, changes = convert_text(text, str(path))
        assert changes and out.replace(OURS, FLAGGER) == text
        again, more = convert_text(out, str(path))
        assert (again, more) == (out, [])

    def test_nothing_to_do(self) -> None:
        text = "apiVersion: v1\nkind: ConfigMap\ndata: {a: flagger.app/v1beta1}\n"
        assert convert_text(text) == (text, [])

    def test_block_scalar_api_version_is_refused(self) -> None:
        # A plain-looking value written as a folded scalar: cannot be rewritten in place.
        text = "apiVersion: >-\n  flagger.app/v1beta1\nkind: Canary\n"
        with pytest.raises(ConversionError, match="document 1: apiVersion"):
            convert_text(text, "f.yaml")

    def test_shared_anchor_is_refused_rather_than_changing_other_fields(self) -> None:
        text = "apiVersion: &v flagger.app/v1beta1\nkind: MetricTemplate\nmetadata:\n  labels: {origin: *v}\n"
        with pytest.raises(ConversionError, match="more than the apiVersion"):
            convert_text(text, "f.yaml")

    def test_anchor_and_tag_are_kept(self) -> None:
        text = "apiVersion: &v !!str flagger.app/v1beta1\nkind: AlertProvider\n"
        out, _ = convert_text(text)
        assert out == f"apiVersion: &v !!str {OURS}\nkind: AlertProvider\n"

    def test_invalid_yaml(self) -> None:
        with pytest.raises(DocumentError):
            convert_text("apiVersion: [\n", "f.yaml")

    def test_change_renders_its_location(self) -> None:
        assert (
            str(Change("apiVersion", FLAGGER, OURS, 2, 7))
            == f"document 2, line 7: apiVersion: {FLAGGER} -> {OURS}"
        )
        assert str(Change("apiVersion", FLAGGER, OURS)) == f"apiVersion: {FLAGGER} -> {OURS}"

    @settings(max_examples=40, deadline=None)
    @given(
        comment=st.from_regex(r"\A[a-z ]{0,20}\Z"),
        indent=st.integers(min_value=2, max_value=6),
        quote=st.sampled_from(["", "'", '"']),
    )
    def test_layout_survives_any_comment_indent_and_quoting(
        self, comment: str, indent: int, quote: str
    ) -> None:
        pad = " " * indent
        text = (
            f"# {comment}\n"
            f"apiVersion: {quote}{FLAGGER}{quote}  # {comment}\n"
            "kind: MetricTemplate\n"
            "spec:\n"
            f"{pad}provider:\n{pad}{pad}type: prometheus  # {comment}\n"
            f"{pad}query: up\n"
        )
        out, changes = convert_text(text)
        assert len(changes) == 1
        assert out == text.replace(f"{quote}{FLAGGER}{quote}", f"{quote}{OURS}{quote}")
        [(_, doc)] = parse_documents(out)
        assert doc["apiVersion"] == OURS
