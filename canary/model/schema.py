"""Offline validation of manifests against canary-engine's own CustomResourceDefinitions.

Why this exists: a typo in a Canary is found far too late when only the API server looks at it.
The server silently drops unknown fields (the most common Flagger mistake: `stepweight`,
`thresholdrange`), and users see a canary that "does nothing". `canary lint`, the tests and the
controller call :func:`validate` to get every problem at once, each with a Kubernetes-style field
path (``spec.analysis.metrics[0].interval``), without a cluster.

The CRD files in ``crds/`` are the single source of truth: the schemas are read from them (from
the checkout, or from ``canary/_data/crds`` inside an installed wheel) and evaluated with the
``jsonschema`` package. The Kubernetes extensions that ``jsonschema`` ignores are emulated here:

* pruning: a field the schema does not declare is reported as a warning and removed before
  validation, as the API server does (``x-kubernetes-preserve-unknown-fields`` stops it);
* ``x-kubernetes-int-or-string`` accepts an integer or a string;
* ``nullable``: a null is allowed where declared, and dropped elsewhere (as the server does).

This module is pure: no network, no Kubernetes client. Semantic checks (what the controller can or
cannot do with a valid object) live elsewhere; this module answers "would the API server take it,
and would it keep every field?".
"""

from __future__ import annotations

import datetime as _dt
import difflib
import functools
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError

from canary.errors import CanaryError

__all__ = [
    "API_VERSION",
    "FLAGGER_API_VERSION",
    "FLAGGER_KINDS",
    "GROUP",
    "VERSION",
    "DocumentError",
    "DocumentIssue",
    "KubeLoader",
    "KubeScalarLoader",
    "ResourceSchema",
    "SchemaIssue",
    "Severity",
    "api_version_problem",
    "crd_dir",
    "crd_files",
    "format_path",
    "load_documents",
    "load_resource_schemas",
    "parse_documents",
    "parse_yaml",
    "read_documents",
    "validate",
    "validate_file",
]

GROUP = "canary.gitops.dev"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
FLAGGER_GROUP = "flagger.app"
FLAGGER_API_VERSION = f"{FLAGGER_GROUP}/v1beta1"
FLAGGER_KINDS = frozenset({"Canary", "MetricTemplate", "AlertProvider"})

Severity = Literal["error", "warning"]

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # .../canary
_CRD_CANDIDATES = (
    _PACKAGE_ROOT / "_data" / "crds",  # installed wheel (force-included by pyproject)
    _PACKAGE_ROOT.parent / "crds",  # source checkout / editable install
)


@dataclass(frozen=True, slots=True)
class SchemaIssue:
    """One problem found in one object.

    ``path`` is a Kubernetes field path (``spec.service.port``, ``metadata.labels[app]``); an
    empty path means the object as a whole.
    """

    path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.severity}: {self.path or '(object)'}: {self.message}"


@dataclass(frozen=True, slots=True)
class DocumentIssue:
    """A :class:`SchemaIssue` located in a file: ``document`` counts YAML documents from 1."""

    file: str
    document: int
    issue: SchemaIssue

    def __str__(self) -> str:
        where = f"{self.file}: document {self.document}"
        return (
            f"{where}: {self.issue.severity}: {self.issue.path or '(object)'}: {self.issue.message}"
        )


class DocumentError(CanaryError, ValueError):
    """A file that cannot be read as Kubernetes manifests (YAML syntax, duplicate keys, ...)."""

    def __init__(self, file: str, document: int, message: str) -> None:
        super().__init__(f"{file}: document {document}: {message}")
        self.file = file
        self.document = document
        self.reason = message


@dataclass(frozen=True, slots=True)
class ResourceSchema:
    """The ``openAPIV3Schema`` of one served version of one of our CRDs."""

    group: str
    version: str
    kind: str
    plural: str
    schema: Mapping[str, Any]
    source: Path

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


# --------------------------------------------------------------------------- CRD files


def _find_crd_dir(candidates: Iterable[Path]) -> Path:
    tried = []
    for candidate in candidates:
        if (candidate / "canary.yaml").is_file():
            return candidate
        tried.append(str(candidate))
    raise FileNotFoundError(
        "canary-engine CRDs not found; expected canary.yaml in one of: " + ", ".join(tried)
    )


def crd_dir() -> Path:
    """The directory that holds the CRD YAML files (packaged data first, then the checkout)."""
    return _find_crd_dir(_CRD_CANDIDATES)


def crd_files(directory: Path | None = None) -> list[Path]:
    """Every CRD file, sorted by name."""
    return sorted((directory or crd_dir()).glob("*.yaml"))


def load_resource_schemas(directory: Path | None = None) -> dict[tuple[str, str], ResourceSchema]:
    """Read the CRD files; key is ``(apiVersion, kind)`` for every served version.

    The files are read once per directory; the schemas are shared, so treat them as read-only.
    """
    return dict(_load_schemas(directory or crd_dir()))


@functools.cache
def _load_schemas(directory: Path) -> tuple[tuple[tuple[str, str], ResourceSchema], ...]:
    out: list[tuple[tuple[str, str], ResourceSchema]] = []
    for path in crd_files(directory):
        for number, doc in load_documents(path):
            if doc.get("kind") != "CustomResourceDefinition":
                continue
            try:
                spec = doc["spec"]
                group, names = spec["group"], spec["names"]
                for version in spec["versions"]:
                    if not version.get("served", False):
                        continue
                    resource = ResourceSchema(
                        group=group,
                        version=version["name"],
                        kind=names["kind"],
                        plural=names["plural"],
                        schema=version["schema"]["openAPIV3Schema"],
                        source=path,
                    )
                    out.append(((resource.api_version, resource.kind), resource))
            except (KeyError, TypeError) as exc:
                raise DocumentError(
                    str(path), number, f"not a usable CustomResourceDefinition: missing {exc}"
                ) from exc
    return tuple(out)


@functools.cache
def _validator(directory: Path, api_version: str, kind: str) -> Draft7Validator:
    resource = dict(_load_schemas(directory))[(api_version, kind)]
    return Draft7Validator(_to_json_schema(resource.schema))


# --------------------------------------------------------------------------- YAML


_BaseLoader: type[yaml.SafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)  # libyaml if built


_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"
# YAML 1.2's core-schema float, as go-yaml (kubectl, sigs.k8s.io/yaml) reads it, less the
# digits-only strings (integers, for which the YAML 1.1 int rule above it stays in charge):
# ``1e-3``, ``+1E3``, ``.5``, ``-.5``, ``1.``. PyYAML's YAML 1.1 rule needs a dot and a signed
# exponent (``1.0e-3``), so without this ``alpha: 1e-3`` was the string "1e-3".
_YAML12_FLOAT = re.compile(
    r"""^[-+]?(?:(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?
             |[0-9]+[eE][-+]?[0-9]+)$""",
    re.VERBOSE,
)
# Any finite spelling of a float once underscores are gone (not ``.inf``, not ``1:30.5``).
_DECIMAL_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")


class KubeScalarLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader whose scalars mean what they mean to kubectl: timestamps stay strings,
    ``1e-3`` is a number (YAML 1.2 floats), ``1e400`` a string, and ``yes``/``on`` stay
    booleans (kubectl's go-yaml v2 reads YAML 1.1 booleans too). Every YAML reader of the
    project builds on it (:class:`KubeLoader` adds kubectl's refusal of duplicate keys), so a
    manifest means the same to lint, simulate, the built-in GitOps reconciler and kubectl.
    Known differences, all in spellings nobody means as numbers: go-yaml reads ``09``,
    ``0o17`` and ``1_000e3`` as 9.0, 15 and 1e6, this loader keeps them strings."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        """The tag of a node; a float too large for a float64 (``1e400``) is a string.

        Why: go-yaml keeps a number ``strconv.ParseFloat`` rejects as a string, so the API
        server says "must be of type number" rather than taking infinity, which JSON cannot
        carry; Python would make it ``inf`` and a field without bounds would accept it. The
        field readers then name the field: ``expected a number, got string '1e400'``.
        """
        tag = super().resolve(kind, value, implicit)
        if tag == _FLOAT_TAG and implicit[0] and isinstance(value, str):
            digits = value.replace("_", "")
            if _DECIMAL_FLOAT.match(digits) and math.isinf(float(digits)):
                return _STR_TAG
        return tag


KubeScalarLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
KubeScalarLoader.add_implicit_resolver(_FLOAT_TAG, _YAML12_FLOAT, list("-+.0123456789"))


class KubeLoader(KubeScalarLoader):
    """:class:`KubeScalarLoader` that also refuses a duplicate key, as kubectl does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                continue  # the base class reports unhashable keys
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice in one mapping (first on line {seen[key]}); "
                    "kubectl rejects this and other tools silently keep only the last one",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def parse_documents(text: str, source: str = "<string>") -> list[tuple[int, dict[str, Any]]]:
    """Parse YAML text into ``(document number, object)`` pairs, numbered from 1.

    Empty documents are skipped but counted, so numbers match the positions in the file. Raises
    :class:`DocumentError` naming ``source``, the document and the line.
    """
    documents, problems = read_documents(text, source)
    if problems:
        raise problems[0]
    return documents


def read_documents(
    text: str, source: str = "<string>"
) -> tuple[list[tuple[int, dict[str, Any]]], list[DocumentError]]:
    """:func:`parse_documents` that goes on past a document that is not a mapping.

    Returns the objects and the problems, in document order: every document that is not a
    mapping (a list, a string) is one problem and the next documents are still read; YAML that
    does not parse (or a duplicate key) is the last problem, as nothing after it can be
    trusted. ``canary lint`` reports every document this way.
    """
    out: list[tuple[int, dict[str, Any]]] = []
    problems: list[DocumentError] = []
    try:
        for number, doc in _load(text, source):
            if doc is None:
                continue
            if not isinstance(doc, dict):
                problems.append(
                    DocumentError(
                        source,
                        number,
                        f"expected a mapping (a Kubernetes object), got {_describe(doc)}",
                    )
                )
                continue
            try:
                out.append((number, _normalise(doc)))
            except _TooDeep as exc:
                problems.append(DocumentError(source, number, str(exc)))
    except DocumentError as exc:
        problems.append(exc)
    return out, problems


def parse_yaml(text: str, source: str = "<string>") -> list[tuple[int, Any]]:
    """Every non-empty document of a YAML file, of any shape, read as ``canary lint`` reads
    manifests; numbered from 1 as :func:`parse_documents` numbers them.

    Why: the files ``canary simulate`` takes (a Canary, a scenario) must mean the same there
    as in ``canary lint`` and to kubectl: a duplicate key is an error, ``1e-3`` a number, a
    timestamp a string. A scenario is not a Kubernetes object, so the shape is left to the
    caller. Raises :class:`DocumentError` naming ``source``, the document and the line.
    """
    out: list[tuple[int, Any]] = []
    for number, doc in _load(text, source):
        if doc is None:
            continue
        try:
            out.append((number, _normalise(doc)))
        except _TooDeep as exc:
            raise DocumentError(source, number, str(exc)) from None
    return out


def _load(text: str, source: str) -> Iterator[tuple[int, Any]]:
    """``(document number, document)`` for each document, empty ones as None, with
    :class:`KubeLoader`; YAML that does not parse raises :class:`DocumentError` (the end)."""
    loader = KubeLoader(text)
    number = 0
    try:
        while True:
            number += 1  # the document about to be read: check_data() parses its start
            try:
                if not loader.check_data():
                    return
                doc = loader.get_data()
            except yaml.YAMLError as exc:
                raise DocumentError(source, number, _yaml_error(exc)) from None
            yield number, doc
    finally:
        loader.dispose()


def load_documents(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """Read a YAML file into ``(document number, object)`` pairs; see :func:`parse_documents`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DocumentError(str(path), 0, f"cannot read the file: {exc}") from exc
    return parse_documents(text, str(path))


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    text = f"{context}, {problem}" if context else str(problem)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: invalid YAML: {text}"
    return f"invalid YAML: {text}"


MAX_DEPTH = 100  # nesting levels of one document; real manifests stay far below


class _TooDeep(ValueError):
    """A document nested deeper than MAX_DEPTH, or an alias inside the node it names."""


def _normalise(value: Any, depth: int = 0) -> Any:
    """Give a parsed document the shape the API server sees: string keys, timestamps as text.

    Raises :class:`_TooDeep` past :data:`MAX_DEPTH` levels: a recursive alias (``a: &x [*x]``)
    would otherwise never end, and nothing after this check has to guard its recursion.
    """
    if isinstance(value, Mapping | list | tuple) and depth >= MAX_DEPTH:
        raise _TooDeep(
            f"nested more than {MAX_DEPTH} levels deep (or a YAML alias inside the node it names)"
        )
    if isinstance(value, Mapping):
        return {
            str(k) if not isinstance(k, str) else k: _normalise(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_normalise(v, depth + 1) for v in value]
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    return value


# --------------------------------------------------------------------------- paths


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class _MapKey(str):
    """A key of a map (``labels``, ``templateVariables``), not a field: shown in brackets."""

    __slots__ = ()


def format_path(parts: Iterable[str | int]) -> str:
    """``("spec", "metrics", 0, "name")`` → ``spec.metrics[0].name``.

    Map keys and keys that are not identifiers go in brackets, as in Kubernetes' own messages:
    ``metadata.labels[app]``, ``spec.analysis.match[0].headers[x-canary]``.
    """
    out = ""
    for part in parts:
        if isinstance(part, int | _MapKey) or not _IDENTIFIER.match(part):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _mark_map_keys(schema: Mapping[str, Any] | None, parts: Iterable[str | int]) -> list[str | int]:
    """Follow ``parts`` through ``schema`` and mark the keys that index a map."""
    out: list[str | int] = []
    node = schema
    for part in parts:
        if node is None:
            out.append(part)
        elif isinstance(part, int):
            items = node.get("items")
            node = items if isinstance(items, Mapping) else None
            out.append(part)
        elif part in (node.get("properties") or {}):
            node = node["properties"][part]
            out.append(part)
        elif isinstance(node.get("additionalProperties"), Mapping):
            node = node["additionalProperties"]
            out.append(_MapKey(part))
        else:
            node = None
            out.append(part)
    return out


# --------------------------------------------------------------------------- validation


def api_version_problem(api_version: str) -> str | None:
    """Why ``api_version`` cannot be the apiVersion of any object, or None when it is well formed.

    The API server reads ``GROUP/VERSION``, or ``VERSION`` alone for the core group (``v1``):
    a second slash, an empty part or a blank inside is refused before any schema is looked at.
    """
    parts = api_version.split("/")
    if len(parts) <= 2 and all(part and not any(c.isspace() for c in part) for part in parts):
        return None
    return (
        f"{api_version!r} is not a valid apiVersion: expected GROUP/VERSION (such as "
        f"{API_VERSION}) or, for the core group, VERSION alone (such as v1)"
    )


def validate(doc: Mapping[str, Any]) -> list[SchemaIssue]:
    """Check one Kubernetes object against our CRDs.

    Objects of other API groups (Deployments, Services, ...) are not ours to judge: no issues. A
    ``v1`` ``List`` is checked item by item. A Flagger ``flagger.app/v1beta1`` object gets an
    error pointing at ``canary convert`` and is then checked as if converted.
    """
    return _validate(doc, ())


def validate_file(path: str | Path) -> list[DocumentIssue]:
    """Validate every document of a YAML file. Raises :class:`DocumentError` if unreadable."""
    return [
        DocumentIssue(str(path), number, issue)
        for number, doc in load_documents(path)
        for issue in validate(doc)
    ]


def _header_issues(doc: Any, prefix: tuple[str | int, ...]) -> list[SchemaIssue]:
    """What makes ``doc`` no Kubernetes object at all: not a mapping, nested too deep, no
    apiVersion or kind strings, an apiVersion no API server reads."""
    if not isinstance(doc, Mapping):
        return [_issue(prefix, f"expected a Kubernetes object (a mapping), got {_describe(doc)}")]
    try:
        _normalise(doc)
    except _TooDeep as exc:
        return [_issue(prefix, str(exc))]
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not (isinstance(api_version, str) and api_version and isinstance(kind, str) and kind):
        return [
            _issue(
                (*prefix, field),
                "expected a non-empty string "
                f"({'missing' if value is None else 'got ' + _describe(value)})",
            )
            for field, value in (("apiVersion", api_version), ("kind", kind))
            if not isinstance(value, str) or not value
        ]
    malformed = api_version_problem(api_version)
    return [_issue((*prefix, "apiVersion"), malformed)] if malformed is not None else []


def _validate(doc: Any, prefix: tuple[str | int, ...]) -> list[SchemaIssue]:
    header = _header_issues(doc, prefix)
    if header:
        return header
    doc = _normalise(doc)
    api_version, kind = doc["apiVersion"], doc["kind"]
    issues: list[SchemaIssue] = []

    if api_version == "v1" and kind == "List":
        items = doc.get("items") or []
        if not isinstance(items, list):
            return [_issue((*prefix, "items"), f"expected a list, got {_describe(items)}")]
        return [
            issue
            for i, item in enumerate(items)
            for issue in _validate(item, (*prefix, "items", i))
        ]

    group, _, version = api_version.rpartition("/")
    directory = crd_dir()
    schemas = dict(_load_schemas(directory))

    if group == FLAGGER_GROUP:
        if version == "v1beta1" and kind in FLAGGER_KINDS:
            issues.append(
                _issue(
                    (*prefix, "apiVersion"),
                    f"{api_version} is Flagger's API; canary-engine serves the same {kind} fields as "
                    f"{API_VERSION}: run `canary convert` (or change apiVersion) to switch",
                )
            )
            converted = {**doc, "apiVersion": API_VERSION}
            return issues + _validate(converted, prefix)
        return [
            _issue(
                (*prefix, "apiVersion"),
                f"{api_version} {kind} is not a Flagger v1beta1 Canary, MetricTemplate or AlertProvider, "
                "so it cannot be converted to canary-engine",
            )
        ]

    if group != GROUP:
        return []

    if (api_version, kind) not in schemas:
        served = sorted({k for (_, k) in schemas})
        versions = sorted({av for (av, k) in schemas if k == kind})
        if versions:
            return [
                _issue(
                    (*prefix, "apiVersion"),
                    f"{kind} is served as {', '.join(versions)}, not {api_version}",
                )
            ]
        hint = _suggest(kind, served)
        return [
            _issue(
                (*prefix, "kind"),
                f"unknown kind {kind!r} in {GROUP}; expected one of {', '.join(served)}{hint}",
            )
        ]

    schema = schemas[(api_version, kind)].schema
    issues.extend(_check_metadata(doc.get("metadata"), prefix))
    warnings: list[SchemaIssue] = []
    pruned = _prune(doc, schema, prefix, warnings, root=True)
    errors = _schema_errors(_validator(directory, api_version, kind), schema, pruned, prefix)
    return issues + errors + warnings


def _issue(parts: Sequence[str | int], message: str, severity: Severity = "error") -> SchemaIssue:
    return SchemaIssue(format_path(parts), message, severity)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _suggest(word: str, candidates: Iterable[str]) -> str:
    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    if word.lower() in lowered:
        return f"; did you mean {lowered[word.lower()]!r}?"
    close = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)  # alfa: alpha (0.67)
    return f"; did you mean {close[0]!r}?" if close else ""


_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _check_metadata(meta: Any, prefix: tuple[str | int, ...]) -> list[SchemaIssue]:
    """The parts of ObjectMeta validation that users trip over (the CRD schema cannot say them)."""
    where = (*prefix, "metadata")
    if meta is None:
        return [_issue((*where, "name"), "required field 'name' is missing (no metadata)")]
    if not isinstance(meta, Mapping):
        return [_issue(where, f"expected a mapping, got {_describe(meta)}")]
    issues: list[SchemaIssue] = []
    name = meta.get("name")
    if name is None and not meta.get("generateName"):
        issues.append(_issue((*where, "name"), "required field 'name' is missing"))
    elif name is not None and (
        not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name)
    ):
        issues.append(
            _issue(
                (*where, "name"),
                "expected a lower-case RFC 1123 name (a-z, 0-9, '-', '.', at most 253 characters), "
                f"got {_describe(name)}",
            )
        )
    namespace = meta.get("namespace")
    if namespace is not None and (
        not isinstance(namespace, str) or len(namespace) > 63 or not _DNS_LABEL.match(namespace)
    ):
        issues.append(
            _issue(
                (*where, "namespace"),
                "expected a lower-case RFC 1123 label (a-z, 0-9, '-', at most 63 characters), "
                f"got {_describe(namespace)}",
            )
        )
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if values is None:
            continue
        if not isinstance(values, Mapping):
            issues.append(_issue((*where, field), f"expected a mapping, got {_describe(values)}"))
            continue
        for key, value in values.items():
            if not isinstance(value, str):
                issues.append(
                    _issue(
                        (*where, field, _MapKey(key)),
                        f"expected a string, got {_describe(value)} (quote it in YAML)",
                    )
                )
    return issues


def _prune(
    value: Any,
    node: Mapping[str, Any],
    path: tuple[str | int, ...],
    warnings: list[SchemaIssue],
    *,
    root: bool = False,
) -> Any:
    """Return ``value`` without the fields the API server would drop; note each as a warning."""
    if isinstance(value, Mapping) and node.get("type", "object") != "object":
        return value  # a mapping where a scalar or a list belongs: validation says so, once
    if isinstance(value, Mapping):
        properties: Mapping[str, Any] | None = node.get("properties")
        additional = node.get("additionalProperties")
        preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
        out: dict[str, Any] = {}
        for key, child in value.items():
            child_path = (*path, key)
            if properties is not None and key in properties:
                sub = properties[key]
                if child is None and not sub.get("nullable"):
                    continue  # the API server drops nulls of non-nullable fields
                if root and key == "metadata":
                    out[key] = child  # ObjectMeta is validated by the server, not pruned
                else:
                    out[key] = _prune(child, sub, child_path, warnings)
            elif isinstance(additional, Mapping):
                out[key] = _prune(child, additional, (*path, _MapKey(key)), warnings)
            elif (
                preserve
                or node.get("x-kubernetes-int-or-string")
                or (properties is None and "type" not in node)
            ):
                out[key] = child
            else:
                known = list(properties or ())
                hint = _suggest(key, known)
                warnings.append(
                    _issue(
                        child_path,
                        f"unknown field {key!r} would be dropped by the API server "
                        f"(and rejected by kubectl's strict validation){hint}",
                        "warning",
                    )
                )
        return out
    if isinstance(value, list) and isinstance(node.get("items"), Mapping):
        return [_prune(item, node["items"], (*path, i), warnings) for i, item in enumerate(value)]
    return value


_IGNORED_KEYWORDS = frozenset(
    {"description", "default", "format", "nullable", "example", "externalDocs"}
)


def _to_json_schema(node: Mapping[str, Any]) -> dict[str, Any]:
    """Translate a structural OpenAPI v3 schema into JSON Schema with the x- keywords applied.

    Pruning happens before validation, so no ``additionalProperties: false`` is needed.
    """
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "not") or (
            key == "additionalProperties" and isinstance(value, Mapping)
        ):
            out[key] = _to_json_schema(value)
        elif key in ("oneOf", "anyOf", "allOf"):
            out[key] = [_to_json_schema(sub) for sub in value]
        elif key.startswith("x-kubernetes-") or key in _IGNORED_KEYWORDS:
            continue
        else:
            out[key] = value
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        # OpenAPI v3.0 marks a bound exclusive with a boolean next to it; JSON Schema draft 7
        # (jsonschema's) takes the bound itself, and would read `true` as the number 1.
        if out.pop(exclusive, False) is True and bound in out:
            out[exclusive] = out.pop(bound)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("anyOf", None)
        out["type"] = ["integer", "string"]
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _schema_errors(
    validator: Draft7Validator,
    schema: Mapping[str, Any],
    doc: Mapping[str, Any],
    prefix: tuple[str | int, ...],
) -> list[SchemaIssue]:
    found: dict[tuple[str, str], tuple[str, SchemaIssue]] = {}
    for error in validator.iter_errors(doc):
        path = (*prefix, *_mark_map_keys(schema, error.absolute_path))
        for issue in _explain(error, path):
            found.setdefault((issue.path, issue.message), (str(error.validator), issue))
    # A value of the wrong type: what its enum or pattern would add says nothing more.
    mistyped = {issue.path for keyword, issue in found.values() if keyword == "type"}
    kept = [
        issue
        for keyword, issue in found.values()
        if keyword == "type" or issue.path not in mistyped
    ]
    return sorted(kept, key=lambda issue: (issue.path, issue.message))


def _explain(error: ValidationError, path: tuple[str | int, ...]) -> Iterator[SchemaIssue]:
    keyword, expected, instance = error.validator, error.validator_value, error.instance
    if keyword == "required":
        for name in expected:
            if isinstance(instance, Mapping) and name not in instance:
                yield _issue((*path, name), f"required field {name!r} is missing")
    elif keyword == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        wanted = " or ".join(_TYPE_NAMES.get(str(k), str(k)) for k in kinds if k != "null")
        yield _issue(path, f"expected {wanted}, got {_describe(instance)}")
    elif keyword == "enum":
        allowed = ", ".join('"" (empty)' if v == "" else repr(v) for v in expected)
        yield _issue(
            path,
            f"expected one of {allowed}; got {_describe(instance)}{_suggest_value(instance, expected)}",
        )
    elif keyword == "pattern":
        yield _issue(path, _pattern_message(path, expected, instance))
    elif keyword in ("oneOf", "anyOf") and _only_required(error.schema[keyword]):
        yield from _explain_alternatives(keyword, error.schema[keyword], instance, path)
    elif keyword == "maxProperties":
        names = ", ".join(error.schema.get("properties", {}))
        yield _issue(
            path, f"set at most {expected} of {names}; got {', '.join(map(str, instance))}"
        )
    elif keyword in _BOUNDS:
        yield _issue(path, f"{_BOUNDS[keyword]} {expected}; got {_describe(instance)}")
    else:
        yield _issue(path, f"does not satisfy {keyword!r} = {expected!r}")


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "object": "a mapping",
    "array": "a list",
}

_BOUNDS = {
    "minimum": "expected a value of at least",
    "maximum": "expected a value of at most",
    "exclusiveMinimum": "expected a value greater than",
    "exclusiveMaximum": "expected a value less than",
    "minLength": "expected a string with at least this many characters:",
    "maxLength": "expected a string with at most this many characters:",
    "minItems": "expected at least this many items:",
    "maxItems": "expected at most this many items:",
}


def _suggest_value(instance: Any, allowed: Sequence[Any]) -> str:
    if not isinstance(instance, str):
        return ""
    return _suggest(instance, [v for v in allowed if isinstance(v, str) and v])


_PATTERN_HINTS = {
    "interval": "a duration such as 30s, 1m or 1h",
    "timeout": "a duration such as 10s or 1m",
    "url": "a Git URL: https://, http://, ssh://, git://, file:// or user@host:path",
}


def _pattern_message(path: Sequence[str | int], pattern: str, instance: Any) -> str:
    field = next((p for p in reversed(path) if isinstance(p, str)), "")
    hint = _PATTERN_HINTS.get(field)
    shown = _describe(instance)
    if hint:
        return f"expected {hint} (pattern {pattern}); got {shown}"
    return f"expected a value matching {pattern}; got {shown}"


def _only_required(alternatives: Any) -> bool:
    return isinstance(alternatives, list) and all(
        isinstance(alt, Mapping) and set(alt) == {"required"} for alt in alternatives
    )


def _explain_alternatives(
    keyword: str,
    alternatives: Sequence[Mapping[str, Any]],
    instance: Any,
    path: tuple[str | int, ...],
) -> Iterator[SchemaIssue]:
    """Explain a oneOf/anyOf of required-field sets in terms of fields, not schemas."""
    present = set(instance) if isinstance(instance, Mapping) else set()
    sets = [list(alt["required"]) for alt in alternatives]
    common = [f for f in sets[0] if all(f in s for s in sets[1:])]
    choices = [next((f for f in s if f not in common), "") for s in sets]
    choice_text = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
    needs = f"needs {', '.join(common)} and " if common else "needs "
    needs += ("exactly one of " if keyword == "oneOf" else "at least one of ") + choice_text
    missing_common = [f for f in common if f not in present]
    chosen = [c for c in choices if c in present]
    for name in missing_common:
        yield _issue(
            (*path, name),
            f"required field {name!r} is missing ({format_path(path) or 'object'} {needs})",
        )
    if missing_common:
        return
    if not chosen:
        yield _issue(path, f"{needs}; none is set")
    elif keyword == "oneOf" and len(chosen) > 1:
        yield _issue(path, f"{needs}; {' and '.join(chosen)} are set, keep only one")
