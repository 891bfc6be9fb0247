"""canary.commands.stored: any value of a status in, a value of the asked type (or none) out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from canary.commands.stored import (
    count,
    integer,
    json_ready,
    number,
    parse_time,
    printable,
    records,
    strings,
)


@pytest.mark.parametrize("value", [True, None, "1", [1], 10**400, float("nan"), float("-inf")])
def test_only_finite_numbers_are_numbers(value: Any) -> None:
    assert number(value) is None


def test_whole_numbers_and_counts() -> None:
    assert (integer(3), integer(3.0), integer(3.5), integer(True)) == (3, 3, None, None)
    assert (count(0), count(-1), count(-1, 0), count("7", 0)) == (0, None, 0, 0)


def test_lists_of_records_and_of_strings() -> None:
    assert records([{"a": 1}, 2, "x", None]) == [{"a": 1}]
    assert records({"a": 1}) == [] and records(5) == []
    assert strings(["a", 1, None, "b"]) == ["a", "b"]
    assert (strings("nginx:1.2"), strings(""), strings(5)) == (["nginx:1.2"], [], [])


def test_printable_text_keeps_tabs_and_line_breaks_unless_asked_for_one_line() -> None:
    raw = "a\x1b[31mb\x07\r\x00c\x85d\ufffe\ud800\te\nf"
    assert printable(raw) == "a[31mbcd\te\nf"
    assert printable(raw, newlines=False) == "a[31mbcd e f"
    assert printable("漢字 é ✓") == "漢字 é ✓"


def test_times_are_rfc3339_in_utc_or_none() -> None:
    found = parse_time("2024-05-01t14:00:00+02:00")
    assert found is not None and found.isoformat() == "2024-05-01T12:00:00+00:00"
    for value in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "nope", "", 5):
        assert parse_time(value) is None


def test_json_ready_trees_hold_null_for_numbers_json_cannot_hold() -> None:
    tree = {"a": [float("nan"), 1.5, 10**400, True, 7], "b": {"c": float("inf")}}
    text = json.dumps(json_ready(tree), allow_nan=False)
    assert json.loads(text) == {"a": [None, 1.5, None, True, 7], "b": {"c": None}}
