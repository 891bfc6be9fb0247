"""The YAML loader of canary.model.schema reads a manifest as kubectl does.

kubectl (sigs.k8s.io/yaml, go-yaml v2) reads ``1e-3`` as a number, as YAML 1.2 does; PyYAML's
YAML 1.1 float needs a dot and a signed exponent, so ``alpha: 1e-3`` used to be a string.
Both entry points are checked: ``parse_documents`` (``canary lint``) and ``parse_yaml``
(``canary simulate``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from canary.model.schema import DocumentError, parse_documents, parse_yaml, validate

Parse = Callable[[str, str], list[tuple[int, Any]]]
PARSERS = pytest.mark.parametrize("parse", [parse_documents, parse_yaml], ids=["lint", "simulate"])


def value_of(parse: Parse, text: str) -> Any:
    [(_, doc)] = parse(f"v: {text}\n", "f.yaml")
    return doc["v"]


@PARSERS
@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("1e-3", 0.001),
        ("+1E3", 1000.0),
        ("1E+3", 1000.0),
        (".5", 0.5),
        ("-.5", -0.5),
        ("1.", 1.0),
        ("1.0e3", 1000.0),  # YAML 1.1 wants the exponent's sign
        (".5e1", 5.0),
        ("1.0e-3", 0.001),  # a YAML 1.1 float is still one
    ],
)
def test_yaml_1_2_floats_are_numbers(parse: Parse, text: str, number: float) -> None:
    value = value_of(parse, text)
    assert isinstance(value, float) and value == number


@PARSERS
@pytest.mark.parametrize("text", ['"1e-3"', "'1e-3'", "!!str 1e-3", "'.5'"])
def test_a_quoted_number_stays_a_string(parse: Parse, text: str) -> None:
    assert value_of(parse, text) == text.removeprefix("!!str ").strip("'\"")


@PARSERS
@pytest.mark.parametrize("text", ["1.2.3", "1e3x", "1e", "e3", "."])
def test_text_that_only_looks_like_a_number_stays_a_string(parse: Parse, text: str) -> None:
    # Not here, on purpose: ``09``, ``0o17`` and ``1_000e3``, which go-yaml reads as 9.0, 15
    # and 1e6 and this loader keeps as strings (YAML 1.1 octal rules, no ``_`` in floats). A
    # manifest that means a number writes it plainly; the readers then name the field.
    assert value_of(parse, text) == text


@PARSERS
@pytest.mark.parametrize(
    ("text", "number"), [("10", 10), ("-3", -3), ("1_000", 1000), ("0x1F", 31)]
)
def test_integers_stay_integers(parse: Parse, text: str, number: int) -> None:
    value = value_of(parse, text)
    assert type(value) is int and value == number


@PARSERS
@pytest.mark.parametrize("text", ["1e400", "-1e400", "1.0e+400", ".5e999"])
def test_a_float_too_large_for_float64_stays_a_string_as_kubectl_reads_it(
    parse: Parse, text: str
) -> None:
    # go-yaml keeps what strconv.ParseFloat rejects as a string; never infinity.
    assert value_of(parse, text) == text


def test_an_overflowing_alpha_is_an_error_naming_the_field() -> None:
    [(_, doc)] = parse_documents(
        "apiVersion: canary.gitops.dev/v1beta1\nkind: Canary\nmetadata: {name: x}\nspec:\n"
        "  targetRef: {apiVersion: apps/v1, kind: Deployment, name: x}\n  service: {port: 80}\n"
        "  analysis:\n    interval: 1m\n    threshold: 2\n    stepWeight: 10\n    metrics:\n"
        "      - name: request-success-rate\n        compare: {alpha: 1e400}\n",
        "c.yaml",
    )
    assert [(i.path, i.message) for i in validate(doc)] == [
        ("spec.analysis.metrics[0].compare.alpha", "expected a number, got string '1e400'")
    ]


@PARSERS
def test_timestamps_stay_strings(parse: Parse) -> None:
    [(_, doc)] = parse("t: 2025-01-01T00:00:00Z\nd: 2025-01-01\n", "f.yaml")
    assert doc == {"t": "2025-01-01T00:00:00Z", "d": "2025-01-01"}


@PARSERS
@pytest.mark.parametrize(("text", "boolean"), [("yes", True), ("on", True), ("No", False)])
def test_yaml_1_1_booleans_stay_booleans_as_kubectl_reads_them(
    parse: Parse, text: str, boolean: bool
) -> None:
    assert value_of(parse, text) is boolean


def test_pyyamls_own_safe_loader_is_left_as_it_was() -> None:
    # The resolver is added to the project's loader class only, never to yaml.SafeLoader.
    assert yaml.safe_load("v: 1e-3") == {"v": "1e-3"}


class TestParseYaml:
    def test_documents_of_any_shape_are_returned_and_empty_ones_counted(self) -> None:
        text = "- a\n---\n---\nticks: 5\n---\n42\n"
        assert parse_yaml(text, "s.yaml") == [(1, ["a"]), (3, {"ticks": 5}), (4, 42)]

    def test_a_duplicate_key_names_the_file_the_document_the_line_and_the_key(self) -> None:
        with pytest.raises(DocumentError) as caught:
            parse_yaml("a: 1\n---\nsteps:\n  - at: 2\n    at: 3\n", "s.yaml")
        assert (caught.value.file, caught.value.document) == ("s.yaml", 2)
        assert "line 5" in caught.value.reason and "'at' appears twice" in caught.value.reason

    def test_a_recursive_alias_is_an_error_not_a_hang(self) -> None:
        with pytest.raises(DocumentError, match="nested more than"):
            parse_yaml("a: &x [*x]\n", "s.yaml")
