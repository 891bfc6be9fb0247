"""Turn Flagger manifests into canary-engine manifests.

Why this exists: canary-engine keeps Flagger's field names and meanings, so moving a Canary,
MetricTemplate or AlertProvider over is a change of ``apiVersion`` from ``flagger.app/v1beta1``
to ``canary.gitops.dev/v1beta1`` (plus the same change inside ``templateRef.apiVersion`` of the
metrics), and one more thing: a Flagger Canary without ``spec.provider`` ran on its install's
``-mesh-provider`` (``istio`` by default), while ``canary run`` defaults to ``kubernetes``, so
the converted Canary says its provider (``provider``, :data:`FLAGGER_DEFAULT_PROVIDER` unless
told otherwise). ``canary convert`` uses this module.

Two forms:

* :func:`convert_document` works on parsed objects and returns a new object (the input is left
  alone) and the list of changes;
* :func:`convert_text` rewrites the YAML text itself, touching only the characters of the
  changed values, so comments, key order, quoting and layout survive (``canary convert
  --in-place``). It checks its own result: the rewritten text must parse to exactly what
  :func:`convert_document` produces, or it raises :class:`ConversionError` instead of writing
  something surprising.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from canary.errors import CanaryError
from canary.model.schema import (
    API_VERSION,
    FLAGGER_API_VERSION,
    FLAGGER_KINDS,
    DocumentError,
    api_version_problem,
    format_path,
    parse_documents,
)

__all__ = [
    "FLAGGER_DEFAULT_PROVIDER",
    "Change",
    "ConversionError",
    "Leftover",
    "convert_document",
    "convert_text",
    "leftovers",
]

_ANALYSIS_FIELDS = ("analysis", "canaryAnalysis")
#: Flagger's -mesh-provider default: what a Flagger Canary without spec.provider ran on.
FLAGGER_DEFAULT_PROVIDER = "istio"
_FLAGGER_GROUP_PREFIX = FLAGGER_API_VERSION.split("/")[0] + "/"


@dataclass(frozen=True, slots=True)
class Change:
    """One rewritten value. ``document`` and ``line`` (both from 1) are set by convert_text."""

    path: str
    old: str
    new: str
    document: int | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = ""
        if self.document is not None:
            where += f"document {self.document}"
        if self.line is not None:
            where += f"{', ' if where else ''}line {self.line}"
        return f"{where + ': ' if where else ''}{self.path}: {self.old} -> {self.new}"


class ConversionError(CanaryError, ValueError):
    """The text could not be rewritten safely (the file is then left untouched by callers)."""


Path = tuple[str | int, ...]


def _is_convertible(api_version: Any, kind: Any) -> bool:
    return api_version == FLAGGER_API_VERSION and isinstance(kind, str) and kind in FLAGGER_KINDS


def _targets(doc: Mapping[str, Any], prefix: Path = ()) -> Iterator[Path]:
    """Paths of the apiVersion values that must change in one parsed object."""
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if api_version == "v1" and kind == "List":
        items = doc.get("items")
        if isinstance(items, list):
            for index, item in enumerate(items):
                if isinstance(item, Mapping):
                    yield from _targets(item, (*prefix, "items", index))
        return
    if _is_convertible(api_version, kind):
        yield (*prefix, "apiVersion")
    if kind != "Canary" or api_version not in (FLAGGER_API_VERSION, API_VERSION):
        return
    spec = doc.get("spec")
    if not isinstance(spec, Mapping):
        return
    for field in _ANALYSIS_FIELDS:
        analysis = spec.get(field)
        metrics = analysis.get("metrics") if isinstance(analysis, Mapping) else None
        if not isinstance(metrics, list):
            continue
        for index, metric in enumerate(metrics):
            ref = metric.get("templateRef") if isinstance(metric, Mapping) else None
            if isinstance(ref, Mapping) and ref.get("apiVersion") == FLAGGER_API_VERSION:
                yield (*prefix, "spec", field, "metrics", index, "templateRef", "apiVersion")


@dataclass(frozen=True, slots=True)
class Leftover:
    """An object that looks like Flagger's but is not converted: which field, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


_FLAGGER_KINDS_TEXT = "a Canary, MetricTemplate or AlertProvider"


def leftovers(doc: Mapping[str, Any], prefix: Path = ()) -> list[Leftover]:
    """What in ``doc`` (or in the items of a ``v1`` ``List``) names Flagger's API group but is
    left as it is: a malformed apiVersion, another version, a kind that is not a string or not
    one Flagger serves. ``canary convert`` warns about each; ``canary lint`` rejects them."""
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if api_version == "v1" and kind == "List":
        items = doc.get("items")
        return [
            found
            for index, item in enumerate(items if isinstance(items, list) else ())
            if isinstance(item, Mapping)
            for found in leftovers(item, (*prefix, "items", index))
        ]
    if not isinstance(api_version, str) or not api_version.startswith(_FLAGGER_GROUP_PREFIX):
        return []
    where = format_path((*prefix, "apiVersion"))
    if api_version_problem(api_version) is not None:
        reason = f"{api_version!r} is not a valid apiVersion (Flagger's is {FLAGGER_API_VERSION})"
        return [Leftover(where, f"{reason}; left unchanged")]
    if api_version != FLAGGER_API_VERSION:
        return [Leftover(where, f"{api_version} is not {FLAGGER_API_VERSION}; left unchanged")]
    if not _is_convertible(api_version, kind):
        got = repr(kind) if isinstance(kind, str) else _shape(kind)
        return [
            Leftover(
                format_path((*prefix, "kind")),
                f"expected {_FLAGGER_KINDS_TEXT}, got {got}; left unchanged",
            )
        ]
    return []


def _shape(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _providerless(doc: Mapping[str, Any], prefix: Path = ()) -> Iterator[Path]:
    """Paths of the ``spec`` of each Flagger Canary that names no ``provider``."""
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if api_version == "v1" and kind == "List":
        items = doc.get("items")
        for index, item in enumerate(items if isinstance(items, list) else ()):
            if isinstance(item, Mapping):
                yield from _providerless(item, (*prefix, "items", index))
        return
    spec = doc.get("spec")
    if kind == "Canary" and _is_convertible(api_version, kind) and isinstance(spec, Mapping):
        if not spec.get("provider"):
            yield (*prefix, "spec")


def convert_document(
    doc: Mapping[str, Any], *, provider: str | None = FLAGGER_DEFAULT_PROVIDER
) -> tuple[dict[str, Any], list[Change]]:
    """Convert one object (or a ``v1`` ``List``); other objects come back equal and unchanged.

    ``provider`` is written into a Flagger Canary without ``spec.provider`` (None: nothing).
    """
    out: dict[str, Any] = copy.deepcopy(dict(doc))
    changes: list[Change] = []
    specs = list(_providerless(doc)) if provider else []
    for path in _targets(doc):
        parent: Any = out
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = API_VERSION
        changes.append(Change(format_path(path), FLAGGER_API_VERSION, API_VERSION))
    for path in specs:
        spec: Any = out
        for part in path:
            spec = spec[part]
        spec["provider"] = provider
        changes.append(Change(format_path((*path, "provider")), _UNSET, str(provider)))
    return out, changes


_UNSET = "(unset: Flagger's -mesh-provider)"


# --------------------------------------------------------------------------- text form


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(part, int):
        if isinstance(node, yaml.SequenceNode) and part < len(node.value):
            child: yaml.Node = node.value[part]
            return child
        return None
    if isinstance(node, yaml.MappingNode):
        found: yaml.Node | None = None
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                found = value  # the last one wins, as in the parsed object
        return found
    return None


def _node_at(root: yaml.Node, path: Path) -> yaml.Node | None:
    node: yaml.Node | None = root
    for part in path:
        if node is None:
            return None
        node = _child(node, part)
    return node


def _locate(root: yaml.Node, path: Path) -> yaml.ScalarNode | None:
    node = _node_at(root, path)
    return node if isinstance(node, yaml.ScalarNode) else None


def _spelled(node: yaml.ScalarNode, value: str) -> str:
    if node.style in ('"', "'"):
        return f"{node.style}{value}{node.style}"
    return value


def convert_text(
    text: str, source: str = "<string>", *, provider: str | None = FLAGGER_DEFAULT_PROVIDER
) -> tuple[str, list[Change]]:
    """Rewrite the apiVersion values in YAML text, keeping everything else byte for byte.

    Raises :class:`~canary.model.schema.DocumentError` for unreadable YAML and
    :class:`ConversionError` when a value cannot be rewritten in place (a block scalar, or an
    alias shared with something that must not change).
    """
    documents = parse_documents(text, source)
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:  # pragma: no cover - parse_documents failed first
        raise DocumentError(source, 0, str(exc)) from exc

    edits: list[tuple[int, int, str]] = []
    changes: list[Change] = []
    expected: list[dict[str, Any]] = []
    for number, doc in documents:
        converted, _ = convert_document(doc, provider=provider)
        expected.append(converted)
        root = nodes[number - 1]
        for path in _providerless(doc) if provider else ():
            edits.append(
                _provider_line(
                    text, _node_at(root, path), f"{source}: document {number}", str(provider)
                )
            )
            changes.append(
                Change(
                    format_path((*path, "provider")),
                    _UNSET,
                    str(provider),
                    document=number,
                    line=_first_line(_node_at(root, path)),
                )
            )
        for path in _targets(doc):
            node = _locate(root, path)
            where = f"{source}: document {number}: {format_path(path)}"
            start, end = (node.start_mark.index, node.end_mark.index) if node else (0, 0)
            # The node's span may begin with an anchor or a tag: keep those, swap the value.
            written = _spelled(node, FLAGGER_API_VERSION) if node else ""
            if node is None or node.style in ("|", ">") or not text[start:end].endswith(written):
                raise ConversionError(f"{where}: cannot rewrite this value in place")
            edits.append((end - len(written), end, _spelled(node, API_VERSION)))
            changes.append(
                Change(
                    format_path(path),
                    FLAGGER_API_VERSION,
                    API_VERSION,
                    document=number,
                    line=node.start_mark.line + 1,
                )
            )

    out = text
    for start, end, replacement in sorted(set(edits), reverse=True):
        out = out[:start] + replacement + out[end:]

    result = [doc for _, doc in parse_documents(out, source)]
    if not _same(result, expected):
        raise ConversionError(
            f"{source}: rewriting in place would change more than the apiVersion values "
            "(YAML anchors or aliases shared with other fields?); convert this file by hand"
        )
    return out, sorted(changes, key=lambda c: (c.document or 0, c.line or 0))


def _provider_line(
    text: str, spec: yaml.Node | None, where: str, provider: str
) -> tuple[int, int, str]:
    """The insertion of ``provider: <provider>`` as the first line of a block-style spec."""
    if not isinstance(spec, yaml.MappingNode) or spec.flow_style or not spec.value:
        raise ConversionError(f"{where}: spec: cannot add provider in place")
    first = spec.value[0][0]
    start = first.start_mark.index - first.start_mark.column
    indent = " " * first.start_mark.column
    if text[start : first.start_mark.index].strip():
        raise ConversionError(f"{where}: spec: cannot add provider in place")
    return (start, start, f"{indent}provider: {provider}\n")


def _first_line(spec: yaml.Node | None) -> int | None:
    if isinstance(spec, yaml.MappingNode) and spec.value:
        return int(spec.value[0][0].start_mark.line) + 1
    return None


def _same(a: Any, b: Any) -> bool:
    """``a == b``, except that a NaN (``.nan`` in YAML) equals a NaN: the text of an unchanged
    ``.nan`` is unchanged, yet ``nan != nan`` would refuse every file that holds one."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
