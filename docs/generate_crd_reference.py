"""Render docs/crd-reference.md from the CRDs in crds/ (the schemas are the source of truth).

Run `python docs/generate_crd_reference.py` after changing a CRD; a test fails when the
committed reference is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "crd-reference.md"
MAX_DEPTH = 6


def _type(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    kind = node.get("type", "object" if node.get("x-kubernetes-preserve-unknown-fields") else "")
    if kind == "array":
        return f"[]{_type(node.get('items') or {})}"
    if kind == "object" and "additionalProperties" in node and not node.get("properties"):
        return f"map[string]{_type(node['additionalProperties'] or {})}"
    return str(kind or "any")


def _details(node: dict[str, Any]) -> str:
    parts = []
    if "enum" in node:
        parts.append("one of " + ", ".join(f"`{v}`" if v != "" else '`""`' for v in node["enum"]))
    if "default" in node:
        parts.append(f"default `{node['default']}`")
    if "pattern" in node:
        parts.append(f"pattern `{node['pattern']}`")
    for key, word, strict in (("minimum", "≥", ">"), ("maximum", "≤", "<")):
        if key in node:
            exclusive = node.get(f"exclusive{key.capitalize()}") is True
            parts.append(f"{strict if exclusive else word} {node[key]}")
    return "; ".join(parts)


def _rows(node: dict[str, Any], path: str, required: bool, depth: int, out: list[str]) -> None:
    description = " ".join(str(node.get("description", "")).split())
    extra = _details(node)
    text = description + (f" ({extra})" if extra else "")
    if path:
        cell = text.replace("|", "\\|")
        out.append(f"| `{path}` | {_type(node)} | {'yes' if required else ''} | {cell} |")
    if depth >= MAX_DEPTH:
        return
    target = node
    if node.get("type") == "array":
        target = node.get("items") or {}
        path = f"{path}[]"
    needed = set(target.get("required") or [])
    for name, child in sorted((target.get("properties") or {}).items()):
        _rows(child, f"{path}.{name}" if path else name, name in needed, depth + 1, out)


def render() -> str:
    lines = [
        "# CRD reference",
        "",
        "Generated from `crds/*.yaml` by `docs/generate_crd_reference.py`; do not edit by hand.",
        "Field names follow Flagger's `flagger.app/v1beta1` where Flagger has the field.",
        "",
    ]
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                schema = version["schema"]["openAPIV3Schema"]
                lines += [f"## {spec['names']['kind']} (`{spec['group']}/{version['name']}`)", ""]
                if schema.get("description"):
                    lines += [" ".join(str(schema["description"]).split()), ""]
                lines += ["| Field | Type | Required | Meaning |", "|---|---|---|---|"]
                rows: list[str] = []
                for part in ("spec", "status"):
                    if part in (schema.get("properties") or {}):
                        _rows(schema["properties"][part], part, part in (schema.get("required") or []), 0, rows)
                lines += rows + [""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    OUT.write_text(render())
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
