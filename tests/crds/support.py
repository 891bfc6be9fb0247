"""Shared helpers for the CRD tests: repository paths, schema walking, a tiny JSONPath."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from canary.model.schema import load_documents

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"
EXAMPLES = REPO / "examples"
BROKEN = REPO / "tests" / "fixtures" / "broken"

CRD_NAMES = ("canary", "metrictemplate", "alertprovider", "gitsource")


@functools.cache
def crd(name: str) -> dict[str, Any]:
    """The parsed CRD (shared between tests: copy it before changing it)."""
    docs = load_documents(CRD_DIR / f"{name}.yaml")
    assert len(docs) == 1, f"{name}.yaml must hold exactly one CRD"
    return docs[0][1]


def root_schema(doc: Mapping[str, Any]) -> dict[str, Any]:
    versions = doc["spec"]["versions"]
    assert len(versions) == 1
    schema: dict[str, Any] = versions[0]["schema"]["openAPIV3Schema"]
    return schema


def node_at(schema: Mapping[str, Any], dotted: str) -> Mapping[str, Any]:
    """Follow ``spec.analysis.metrics[].name`` (``[]`` = array items, ``{}`` = map values)."""
    node = schema
    for part in dotted.split("."):
        name, suffixes = re.match(r"^([^\[{]*)((?:\[\]|\{\})*)$", part).groups()  # type: ignore[union-attr]
        if name:
            props = node.get("properties") or {}
            if name not in props:
                raise KeyError(f"{dotted}: no field {name!r} (known: {sorted(props)})")
            node = props[name]
        for suffix in re.findall(r"\[\]|\{\}", suffixes):
            key = "items" if suffix == "[]" else "additionalProperties"
            if not isinstance(node.get(key), Mapping):
                raise KeyError(f"{dotted}: {part} has no {key}")
            node = node[key]
    return node


def walk(node: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every schema node below ``node`` (not inside junctors), with a readable path."""
    yield path, node
    for name, sub in (node.get("properties") or {}).items():
        yield from walk(sub, f"{path}.{name}" if path else name)
    if isinstance(node.get("items"), Mapping):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), Mapping):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


_SEGMENT = re.compile(r'\.([A-Za-z0-9_-]+)|\[\?\(@\.([A-Za-z0-9_]+)=="([^"]*)"\)\]')


def jsonpath(obj: Any, expression: str) -> list[Any]:
    """The subset of kubectl's JSONPath that printer columns use: ``.a.b`` and ``[?(@.k=="v")]``."""
    position, current = 0, [obj]
    while position < len(expression):
        match = _SEGMENT.match(expression, position)
        if match is None:
            raise ValueError(f"unsupported JSONPath {expression!r} at {position}")
        field, key, value = match.groups()
        nxt: list[Any] = []
        for item in current:
            if field is not None and isinstance(item, Mapping) and field in item:
                nxt.append(item[field])
            elif key is not None and isinstance(item, list):
                nxt.extend(e for e in item if isinstance(e, Mapping) and e.get(key) == value)
        current, position = nxt, match.end()
    return current


def schema_path_of(expression: str) -> str:
    """``.status.conditions[?(@.type=="Ready")].status`` → ``status.conditions[].status``."""
    return re.sub(r"\[\?\([^)]*\)\]", "[]", expression).lstrip(".")
