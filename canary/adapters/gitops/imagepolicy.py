"""Keeping Flux's image automation from pushing a reverted tag again.

After a failed release is reverted in Git, Flux's image automation would write the bad tag back
on its next run: an ``ImageUpdateAutomation`` rewrites every YAML scalar marked with a setter
comment to the latest image its ``ImagePolicy`` selects, and the bad tag is still the latest. The
way to stop it is to exclude the tag where the policy reads its tags: the
``spec.exclusionList`` of the ``ImageRepository`` named by the policy's
``spec.imageRepositoryRef`` (``image.toolkit.fluxcd.io`` v1beta2 and v1). That list holds
regular expressions (Go RE2 syntax) matched anywhere in a tag; when it is unset *or empty* Flux
uses ``["^.*\\.sig$"]`` (cosign signatures), and setting it replaces that default, so the
default is kept when the list is created.

Setter markers are line comments holding JSON, after the scalar they mark::

    image: ghcr.io/org/podinfo:6.0.1 # {"$imagepolicy": "flux-system:podinfo"}
    tag: 6.0.1 # {"$imagepolicy": "flux-system:podinfo:tag"}
    repository: ghcr.io/org/podinfo # {"$imagepolicy": "flux-system:podinfo:name"}
    image: ghcr.io/org/podinfo:6.0.1 # {"$ref": "#/definitions/io.k8s.cli.setters.flux-system:podinfo"}

The first three are Flux's documented forms (whole image, tag only, name only); the last is the
long kyaml setter reference that the shorthand stands for. As in Flux, the ``#`` characters are
stripped and the rest must parse as a JSON object, so ``#{"$imagepolicy":"ns:p"}`` counts and a
comment with anything after the JSON does not; ``ns:name`` always names a namespace and a
policy (``"podinfo:tag"`` is the policy ``tag`` in namespace ``podinfo``). A marker naming only
the policy (``{"$imagepolicy": "podinfo"}``) is not one of Flux's documented forms; it is read
with ``policy_namespace=None`` and callers resolve it against the automation's namespace.
Suffixes other than ``:tag`` and ``:name`` are not read. A marker counts where kyaml reads it:
at the end of the line on which a scalar value ends (not on the line above, not after a flow
collection or a block scalar's header).

Why ruamel.yaml and not a hand-written text edit. Finding the right place to edit needs a real
YAML parser: the ImageRepository may be any document of a multi-document file, ``spec`` and
the list may be block or flow style, keys may be quoted, a block scalar elsewhere may contain
the very words we look for, and a new item must be quoted the way YAML requires. ruamel.yaml is
the maintained round-trip YAML library; here it gives every node's exact position, renders the
inserted scalars (in the quoting style of their neighbours), and re-parses the result to check
the edit. Its cost, measured on this project's Python 3.11 with ruamel.yaml 0.19.1: a 115 KiB
wheel, 529 KiB of pure-Python source (1.3 MiB with bytecode), no dependencies and no compiled
part (the optional ``ruamel.yaml.clibz`` accelerator is not needed); ``import ruamel.yaml``
takes about 20 ms in a fresh interpreter and about 8 ms once PyYAML and the standard modules it
shares are loaded, which the controller already does. For comparison PyYAML with its C loader
is 3.2 MiB installed and about 18 ms to import.

The file is not re-dumped by ruamel, though: its round-trip dump (measured on a Flux manifest)
re-indents every block sequence to one style, writes ``~`` as an empty value, shifts end-of-line
comments on re-indented lines, and rewrites a trailing comment-only document. The edit is
instead spliced into the original text at positions ruamel reports, so every byte outside the
inserted lines stays as it was, and the spliced text is parsed again to check that the list is
exactly the old one plus the new pattern.

Everything here is a pure function over text and dicts: no files, no network.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from canary.errors import CanaryError

__all__ = [
    "DEFAULT_EXCLUSION",
    "ExclusionEdit",
    "ImagePolicyError",
    "SetterMarker",
    "add_exclusion_to_manifest",
    "exclusion_patch",
    "find_image_repository_manifest",
    "find_setter_markers",
    "markers_for_image",
    "split_image",
    "tag_exclusion_pattern",
]

IMAGE_GROUP = "image.toolkit.fluxcd.io"
DEFAULT_EXCLUSION = "^.*\\.sig$"
"""Flux's exclusion list when ``spec.exclusionList`` is unset or empty."""
SETTER_SHORTHAND = "$imagepolicy"
SETTER_REF_PREFIX = "#/definitions/io.k8s.cli.setters."

MarkerField = Literal["image", "tag", "name"]

_SIBLING_LINES = 3
"""How far (in lines) a ``:name`` marker may sit from its ``:tag`` marker to count as a pair."""
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_GO_META = frozenset("\\.+*?()|[]{}^$")
_NULL_TAG = "tag:yaml.org,2002:null"
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass(frozen=True, slots=True)
class SetterMarker:
    """One Flux setter comment and the scalar it marks.

    ``line`` is 1-based. ``policy_namespace`` is None when the marker names only the policy.
    ``field`` tells what the value holds: the whole image (``repo:tag``), the tag, or the
    repository name. ``value`` is the scalar as it stands in the file."""

    file: str
    line: int
    policy_namespace: str | None
    policy_name: str
    field: MarkerField
    value: str

    @property
    def policy(self) -> tuple[str | None, str]:
        return (self.policy_namespace, self.policy_name)


@dataclass(frozen=True, slots=True)
class ExclusionEdit:
    """The result of :func:`add_exclusion_to_manifest`. ``document`` is 1-based."""

    text: str
    changed: bool
    document: int


class ImagePolicyError(CanaryError, ValueError):
    """A manifest or object cannot be read or edited as needed.

    The message names where (``file`` and ``document``, or ``subject`` for a live object), the
    field, and what was expected: ``clusters/prod/podinfo.yaml document 2: spec.exclusionList:
    expected a list of regular expressions, got a mapping``."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        document: int | None = None,
        field: str | None = None,
        subject: str | None = None,
    ) -> None:
        self.file = file
        self.document = document
        self.field = field
        self.subject = subject
        self.message = message
        where = subject or file
        if file is not None and document is not None:
            where = f"{where} document {document}"
        text = f"{field}: {message}" if field else message
        super().__init__(f"{where}: {text}" if where else text)


# -- images and patterns ---------------------------------------------------------------------


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``(repository, tag, digest)`` of an image reference.

    ``ghcr.io/org/app:1.2`` gives ``("ghcr.io/org/app", "1.2", None)``; a registry port is part
    of the repository (``localhost:5000/app:1.2``); ``app@sha256:...`` gives the digest and
    ``app:1.2@sha256:...`` both. The repository is returned as written (no ``docker.io``
    added)."""
    if not image or image != image.strip():
        raise ValueError(f"not an image reference: {image!r}")
    name, at, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag: str | None = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    if not name:
        raise ValueError(f"not an image reference: {image!r}")
    return name, tag or None, (digest or None) if at else None


def tag_exclusion_pattern(tag: str) -> str:
    """An anchored regular expression matching exactly ``tag`` and nothing else.

    Flux matches exclusion patterns anywhere in a tag, so ``6.0.1`` alone would also exclude
    ``16.0.1`` and ``6.0.10`` (and ``6a0b1``: an unescaped dot matches any character). The
    escaping is Go's ``regexp.QuoteMeta``, so the pattern is valid RE2."""
    if not _TAG.fullmatch(tag):
        raise ValueError(f"not an image tag: {tag!r}")
    return "^" + "".join(f"\\{c}" if c in _GO_META else c for c in tag) + "$"


def _canonical_repository(repository: str) -> str:
    """Docker Hub spellings made equal: ``nginx``, ``docker.io/nginx``,
    ``index.docker.io/library/nginx`` all become ``docker.io/library/nginx``."""
    first, slash, rest = repository.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost"):
        first, rest = "docker.io", repository
    if first == "index.docker.io":
        first = "docker.io"
    if first == "docker.io" and "/" not in rest:
        rest = f"library/{rest}"
    return f"{first}/{rest}"


def _same_image(value: str, repository: str, tag: str | None, digest: str | None) -> bool:
    try:
        other_repo, other_tag, other_digest = split_image(value)
    except ValueError:
        return False
    if _canonical_repository(other_repo) != _canonical_repository(repository):
        return False
    if tag is not None and other_tag != tag:
        return False
    if digest is not None and other_digest != digest:
        return False
    return tag is not None or digest is not None


def markers_for_image(markers: Iterable[SetterMarker], image: str) -> tuple[SetterMarker, ...]:
    """The markers that set ``image`` (``repo:tag``, ``repo@sha256:...`` or both) or its tag.

    A whole-image marker counts when its value is that image (Docker Hub spellings compare
    equal; a digest in the marker's value is ignored when ``image`` has none). A tag marker
    counts when its value is the image's tag and, if a name marker of the same policy sits
    within a few lines of it in the same file (the usual ``repository:``/``tag:`` pair), that
    marker names the image's repository. Name markers alone do not count: they never carry the
    tag. Raises ValueError when ``image`` is not an image reference."""
    repository, tag, digest = split_image(image)
    pool = tuple(markers)
    found: list[SetterMarker] = []
    for marker in pool:
        if marker.field == "image":
            if _same_image(marker.value, repository, tag, digest):
                found.append(marker)
        elif marker.field == "tag" and tag is not None and marker.value == tag:
            siblings = [
                m
                for m in pool
                if m.field == "name"
                and m.file == marker.file
                and m.policy == marker.policy
                and abs(m.line - marker.line) <= _SIBLING_LINES
            ]
            if siblings:
                nearest = min(siblings, key=lambda m: abs(m.line - marker.line))
                name = _canonical_repository(nearest.value) if nearest.value else ""
                if name != _canonical_repository(repository):
                    continue
            found.append(marker)
    return tuple(found)


# -- YAML plumbing ---------------------------------------------------------------------------

_local = threading.local()


def _parser() -> YAML:
    """A ruamel composer for this thread (a YAML instance is not safe to share)."""
    parser: YAML | None = getattr(_local, "parser", None)
    if parser is None:
        parser = YAML(typ="safe", pure=True)
        _local.parser = parser
    return parser


def _renderer() -> YAML:
    renderer: YAML | None = getattr(_local, "renderer", None)
    if renderer is None:
        renderer = YAML(typ="rt", pure=True)
        renderer.width = 4096
        _local.renderer = renderer
    return renderer


def _problem(exc: YAMLError) -> str:
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is not None:
            return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
        return str(problem)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _compose(text: str, file: str, *, lenient: bool = False) -> list[Node]:
    """Every document's node tree (an empty document is a null scalar)."""
    documents: list[Node] = []
    stream: Iterator[Node] = _parser().compose_all(text)
    try:
        while True:
            try:
                node = next(stream)
            except StopIteration:
                return documents
            except YAMLError as exc:
                if lenient:
                    return documents
                raise ImagePolicyError(
                    f"invalid YAML: {_problem(exc)}", file=file, document=len(documents) + 1
                ) from None
            documents.append(node)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def _is_string(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _STR_TAG


def _empty_span(node: Node) -> bool:
    return bool(node.start_mark.index == node.end_mark.index)


def _describe(node: Node | None) -> str:
    if node is None:
        return "nothing"
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if _is_null(node):
        return "null"
    if _is_string(node):
        return "a string"
    tag = str(node.tag or "")
    if tag.endswith(":bool"):
        return "a boolean"
    if tag.endswith((":int", ":float")):
        return "a number"
    return f"a {tag.rsplit(':', 1)[-1]}"


def _lookup(mapping: MappingNode, key: str) -> list[tuple[Node, Node]]:
    return [(k, v) for k, v in mapping.value if isinstance(k, ScalarNode) and k.value == key]


def _scalar_at(node: Node, *path: str) -> str | None:
    for key in path:
        if not isinstance(node, MappingNode):
            return None
        pairs = _lookup(node, key)
        if len(pairs) != 1:
            return None
        node = pairs[0][1]
    return str(node.value) if isinstance(node, ScalarNode) and not _is_null(node) else None


def _declares(
    root: Node, name: str, namespace: str | None
) -> Literal["exact", "unspecified"] | None:
    """Whether a document is the ImageRepository ``name`` (in ``namespace``), and how well the
    namespace matched: ``exact`` when both sides give the same one, ``unspecified`` when either
    side gives none."""
    if _scalar_at(root, "kind") != "ImageRepository":
        return None
    api_version = _scalar_at(root, "apiVersion") or ""
    if not api_version.startswith(f"{IMAGE_GROUP}/"):
        return None
    if _scalar_at(root, "metadata", "name") != name:
        return None
    declared = _scalar_at(root, "metadata", "namespace")
    if namespace and declared:
        return "exact" if namespace == declared else None
    return "unspecified"


def _best_match(
    candidates: list[tuple[Literal["exact", "unspecified"], str, int]],
    name: str,
    namespace: str | None,
    file: str | None,
) -> tuple[str, int] | None:
    if not candidates:
        return None
    exact = [c for c in candidates if c[0] == "exact"]
    best = exact or candidates
    if len(best) > 1:
        places = ", ".join(f"{f} document {d}" for _, f, d in best)
        raise ImagePolicyError(
            f"ImageRepository {_ref(name, namespace)} is declared more than once ({places}); "
            "give the namespace to choose one",
            file=file,
            field="metadata.name",
        )
    return best[0][1], best[0][2]


def _ref(name: str, namespace: str | None) -> str:
    return f"{namespace}/{name}" if namespace else name


# -- setter markers --------------------------------------------------------------------------


def _setter_name(comment: str) -> str | None:
    """The setter a line comment (the text after its first ``#``) names, read as kyaml reads
    it: further ``#`` stripped, then a JSON object of strings with ``$imagepolicy``, or a
    ``$ref`` to a setter definition."""
    try:
        data = json.loads(comment.lstrip("#"))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    shorthand = data.get(SETTER_SHORTHAND)
    if isinstance(shorthand, str) and shorthand and all(isinstance(v, str) for v in data.values()):
        if shorthand.startswith("${") and shorthand.endswith("}"):
            shorthand = shorthand[2:-1]
        return shorthand
    ref = data.get("$ref")
    if isinstance(ref, str) and ref.startswith(SETTER_REF_PREFIX):
        return ref[len(SETTER_REF_PREFIX) :].replace("~1", "/").replace("~0", "~")
    return None


def _parse_setter(setter: str) -> tuple[str | None, str, MarkerField] | None:
    parts = setter.split(":")
    field: MarkerField = "image"
    if len(parts) == 3 and parts[2] in ("tag", "name"):
        field = "tag" if parts[2] == "tag" else "name"
        parts = parts[:2]
    if len(parts) == 1 and parts[0]:
        return None, parts[0], field
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1], field
    return None


def _line_break(text: str, index: int) -> int:
    """Index of the first line break at or after ``index`` (``len(text)`` when none)."""
    for position in range(index, len(text)):
        if text[position] in "\n\r":
            return position
    return len(text)


def _value_nodes(root: Node) -> Iterator[Node]:
    """``root`` and the nodes below it that are values (not keys), each once (an alias is
    not followed twice), in document order."""
    seen: set[int] = set()
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, MappingNode):
            stack.extend(value for _, value in reversed(node.value))
        elif isinstance(node, SequenceNode):
            stack.extend(reversed(node.value))


def _marked_scalars(root: Node) -> Iterator[ScalarNode]:
    """Value scalars (not keys), each once, in document order."""
    return (node for node in _value_nodes(root) if isinstance(node, ScalarNode))


def find_setter_markers(text: str, file: str) -> tuple[SetterMarker, ...]:
    """Every Flux setter comment in a YAML text, with the scalar it marks, in line order.

    Raises :class:`ImagePolicyError` (naming the file and document) when the text is not YAML.
    A text without ``$imagepolicy`` or a setter reference is not parsed at all."""
    if SETTER_SHORTHAND not in text and SETTER_REF_PREFIX not in text:
        return ()
    found: list[SetterMarker] = []
    for root in _compose(text, file):
        for node in _marked_scalars(root):
            if node.style in ("|", ">") or _empty_span(node):
                continue
            end = node.end_mark.index
            rest = text[end : _line_break(text, end)]
            comment = re.match(r"[ \t]+#(.*)", rest)
            if comment is None:
                continue
            setter = _setter_name(comment.group(1))
            parsed = _parse_setter(setter) if setter else None
            if parsed is None:
                continue
            namespace, policy, field = parsed
            found.append(
                SetterMarker(
                    file=file,
                    line=node.end_mark.line + 1,
                    policy_namespace=namespace,
                    policy_name=policy,
                    field=field,
                    value=str(node.value),
                )
            )
    return tuple(sorted(found, key=lambda m: m.line))


# -- editing the exclusion list in Git -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Edit:
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class _Place:
    file: str
    document: int

    def error(self, field: str | None, message: str) -> ImagePolicyError:
        return ImagePolicyError(message, file=self.file, document=self.document, field=field)


def _styled(value: str, style: str | None) -> str:
    styled: str = value
    if style == '"':
        styled = DoubleQuotedScalarString(value)
    elif style == "'":
        styled = SingleQuotedScalarString(value)
    return styled


def _render(values: list[str], style: str | None, *, flow: bool) -> list[str]:
    """Each value as ruamel writes it as a list item: quoted only when YAML needs it, or in
    ``style`` (``"`` or ``'``) to match the neighbours."""
    rendered: list[str] = []
    for value in values:
        sequence = CommentedSeq([_styled(value, style)])
        if flow:
            sequence.fa.set_flow_style()
        buffer = io.StringIO()
        _renderer().dump(sequence, buffer)
        out = buffer.getvalue().rstrip("\r\n")
        rendered.append(out[1:-1] if flow else out[2:])
    return rendered


def _next_line(text: str, index: int) -> int:
    """Start of the line after the one holding ``index`` (``len(text)`` at the end)."""
    position = _line_break(text, index)
    if text.startswith("\r\n", position):
        return position + 2
    return min(position + 1, len(text))


def _content_end(node: Node, place: _Place, field: str) -> tuple[int, int]:
    """(index, column) where a value's own text ends, looking through block collections to
    their last scalar (a block collection's end mark lies after trailing comments)."""
    if isinstance(node, ScalarNode) or getattr(node, "flow_style", False) or not node.value:
        return node.end_mark.index, node.end_mark.column
    if isinstance(node, MappingNode):
        key, last = node.value[-1]
        if last.start_mark.index < key.end_mark.index:
            raise place.error(field, "ends with an alias; add the pattern by hand")
        if _is_null(last) and _empty_span(last):
            return key.end_mark.index, key.end_mark.column
        return _content_end(last, place, field)
    last = node.value[-1]
    previous = node.value[-2].end_mark.index if len(node.value) > 1 else node.start_mark.index
    if last.start_mark.index < previous:
        raise place.error(field, "ends with an alias; add the pattern by hand")
    return _content_end(last, place, field)


def _insertion_point(text: str, node: Node, place: _Place, field: str) -> int:
    """Where lines following ``node`` go: after its last line (a block scalar's end mark is
    already at the start of a line: its trailing line breaks are part of it)."""
    index, column = _content_end(node, place, field)
    if column == 0 and index > 0:
        return index
    return _next_line(text, index)


def _sequence_offset(root: Node) -> int:
    """How far this document indents a block list under its key (``key:`` / ``- item``): the
    first example found, else 2."""
    for node in _value_nodes(root):
        if not isinstance(node, MappingNode):
            continue
        for key, value in node.value:
            if (
                isinstance(value, SequenceNode)
                and value.value
                and not value.flow_style
                and value.start_mark.line > key.start_mark.line
            ):
                return max(0, int(value.start_mark.column - key.start_mark.column))
    return 2


def _string_items(sequence: SequenceNode, place: _Place) -> list[str]:
    items: list[str] = []
    for index, item in enumerate(sequence.value):
        if not _is_string(item):
            raise place.error(
                f"spec.exclusionList[{index}]",
                f"expected a string (a regular expression), got {_describe(item)}",
            )
        items.append(str(item.value))
    return items


def _insert_lines(text: str, at: int, lines: list[str], newline: str) -> _Edit:
    block = "".join(line + newline for line in lines)
    if at == len(text) and text and not text.endswith(("\n", "\r")):
        block = newline + block
    return _Edit(at, at, block)


def _apply(text: str, edits: list[_Edit]) -> str:
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.text + text[edit.end :]
    return text


_Plan = tuple[list[_Edit], list[str]]


def _plan_edits(
    text: str, root: MappingNode, spec: Node, pattern: str, place: _Place
) -> _Plan | None:
    """The text edits that add ``pattern``, and the list they produce; None when the pattern
    is already in effect."""
    if not isinstance(spec, MappingNode):
        raise place.error("spec", f"expected a mapping, got {_describe(spec)}")
    pairs = _lookup(spec, "exclusionList")
    if len(pairs) > 1:
        raise place.error("spec.exclusionList", "appears more than once")
    key, value = pairs[0] if pairs else (None, None)
    if key is not None and value is not None and value.start_mark.index < key.end_mark.index:
        raise place.error("spec.exclusionList", "is an alias; add the pattern by hand")
    if isinstance(value, SequenceNode):
        return _extend_list(text, value, pattern, place)
    if value is not None and not _is_null(value):
        raise place.error(
            "spec.exclusionList",
            f"expected a list of regular expressions, got {_describe(value)}",
        )
    if pattern == DEFAULT_EXCLUSION:
        return None
    if spec.flow_style:
        return _new_flow_list(text, spec, key, value, pattern, place)
    return _new_block_list(text, root, spec, key, value, pattern, place)


def _extend_list(text: str, value: SequenceNode, pattern: str, place: _Place) -> _Plan | None:
    """Append to an existing list, in its style; ``[]`` becomes Flux's default plus
    ``pattern``."""
    field = "spec.exclusionList"
    current = _string_items(value, place)
    if pattern in (current or [DEFAULT_EXCLUSION]):
        return None
    if not current:
        wanted = [DEFAULT_EXCLUSION, pattern]
        flow = f"[{', '.join(_render(wanted, None, flow=True))}]"
        return [_Edit(value.start_mark.index, value.end_mark.index, flow)], wanted
    last = value.value[-1]
    style = last.style if last.style in ('"', "'") else None
    if value.flow_style:
        at = _content_end(last, place, field)[0]
        if at <= value.start_mark.index:
            raise place.error(field, "ends with an alias; add the pattern by hand")
        (item,) = _render([pattern], style, flow=True)
        return [_Edit(at, at, f", {item}")], [*current, pattern]
    at = _insertion_point(text, value, place, field)
    (item,) = _render([pattern], style, flow=False)
    line_start = last.start_mark.index - last.start_mark.column
    dash = re.search(r"-[ \t]+(?:[&!]\S*[ \t]+)*$", text[line_start : last.start_mark.index])
    if dash is None:
        raise place.error(field, "has an unusual layout; add the pattern by hand")
    line = " " * dash.start() + "-" + " " * (last.start_mark.column - dash.start() - 1) + item
    newline = "\r\n" if "\r\n" in text else "\n"
    return [_insert_lines(text, at, [line], newline)], [*current, pattern]


def _new_flow_list(
    text: str, spec: MappingNode, key: Node | None, value: Node | None, pattern: str, place: _Place
) -> _Plan:
    """``spec: {...}`` (JSON too): the list in flow style, keys quoted like their neighbours."""
    wanted = [DEFAULT_EXCLUSION, pattern]
    last_key = spec.value[-1][0] if spec.value else None
    quote = '"' if last_key is not None and last_key.style == '"' else None
    flow = f"[{', '.join(_render(wanted, quote, flow=True))}]"
    if key is not None and value is not None:
        if _empty_span(value):
            colon = text.index(":", key.end_mark.index)
            return [_Edit(colon + 1, colon + 1, f" {flow}")], wanted
        return [_Edit(value.start_mark.index, value.end_mark.index, flow)], wanted
    (name,) = _render(["exclusionList"], quote, flow=True)
    if spec.value:
        at = _content_end(spec.value[-1][1], place, "spec")[0]
        return [_Edit(at, at, f", {name}: {flow}")], wanted
    at = spec.end_mark.index - 1
    if text[at] != "}":
        raise place.error("spec", "could not find the end of the flow mapping")
    return [_Edit(at, at, f"{name}: {flow}")], wanted


def _new_block_list(
    text: str,
    root: MappingNode,
    spec: MappingNode,
    key: Node | None,
    value: Node | None,
    pattern: str,
    place: _Place,
) -> _Plan:
    """A block list under ``exclusionList:`` (kept, with its comment, when it was null), or a
    new key at the end of ``spec``, indented like the document's other lists."""
    wanted = [DEFAULT_EXCLUSION, pattern]
    newline = "\r\n" if "\r\n" in text else "\n"
    indent = spec.value[0][0].start_mark.column
    offset = _sequence_offset(root)
    lines = [" " * (indent + offset) + "- " + item for item in _render(wanted, None, flow=False)]
    if key is None or value is None:
        at = _insertion_point(text, spec, place, "spec")
        lines.insert(0, " " * indent + "exclusionList:")
        return [_insert_lines(text, at, lines, newline)], wanted
    if _empty_span(value):
        at = _next_line(text, key.end_mark.index)
        return [_insert_lines(text, at, lines, newline)], wanted
    start = value.start_mark.index  # exclusionList: ~ (or null): drop the value, keep the rest
    while start > key.end_mark.index and text[start - 1] in " \t":
        start -= 1
    at = _next_line(text, value.end_mark.index)
    drop = _Edit(start, value.end_mark.index, "")
    return [drop, _insert_lines(text, at, lines, newline)], wanted


def add_exclusion_to_manifest(
    text: str, *, name: str, namespace: str | None, pattern: str, file: str
) -> ExclusionEdit:
    """Add ``pattern`` to ``spec.exclusionList`` of the ImageRepository ``name`` in a
    (multi-document) YAML file, changing nothing else.

    The document is the one with ``kind: ImageRepository``, an ``image.toolkit.fluxcd.io/*``
    apiVersion and ``metadata.name`` ``name``; the namespace must match when both the document
    and ``namespace`` give one (a document with exactly the namespace wins over one without).
    An unset, null or empty list is created with Flux's default ``^.*\\.sig$`` first, so
    signatures stay excluded. A new item is written in the quoting style of the item before
    it; a new list is indented like the document's other lists. Only the added lines (and,
    for ``exclusionList: ~``, that line) differ from ``text``.

    ``changed`` is False, with ``text`` returned as given, when the pattern is already in
    effect. Raises :class:`ImagePolicyError` naming the file, the document and the field when
    the document is missing or ambiguous, ``spec`` is not a mapping, the list is not a list of
    strings, or the text is not YAML."""
    if not pattern or any(c in pattern for c in "\r\n\t\x00"):
        raise ValueError(f"not a single-line regular expression: {pattern!r}")
    documents = _compose(text, file)
    candidates = [
        (match, file, number)
        for number, root in enumerate(documents, start=1)
        if (match := _declares(root, name, namespace)) is not None
    ]
    best = _best_match(candidates, name, namespace, file)
    if best is None:
        raise ImagePolicyError(
            f"no document declares ImageRepository {_ref(name, namespace)} "
            f"(kind: ImageRepository, apiVersion: {IMAGE_GROUP}/*)",
            file=file,
            field="metadata.name",
        )
    number = best[1]
    place = _Place(file, number)
    root = documents[number - 1]
    if not isinstance(root, MappingNode):  # _declares read kind from it: never true
        raise place.error(None, f"expected a mapping, got {_describe(root)}")
    specs = _lookup(root, "spec")
    if len(specs) != 1:
        raise place.error(
            "spec", "expected a mapping, got nothing" if not specs else "appears more than once"
        )
    plan = _plan_edits(text, root, specs[0][1], pattern, place)
    if plan is None:
        return ExclusionEdit(text=text, changed=False, document=number)
    edits, wanted = plan
    new_text = _apply(text, edits)
    _check(new_text, place, len(documents), wanted)
    return ExclusionEdit(text=new_text, changed=True, document=number)


def _check(text: str, place: _Place, count: int, wanted: list[str]) -> None:
    """Parse the edited text again: same number of documents, and the list is ``wanted``."""
    try:
        documents = _compose(text, place.file)
    except ImagePolicyError as exc:
        raise place.error(
            "spec.exclusionList", f"the edit would break the file ({exc.message}); add it by hand"
        ) from None
    got: list[str] | None = None
    if len(documents) == count:
        node: Node | None = documents[place.document - 1]
        for key in ("spec", "exclusionList"):
            pairs = _lookup(node, key) if isinstance(node, MappingNode) else []
            node = pairs[0][1] if len(pairs) == 1 else None
        if isinstance(node, SequenceNode):
            got = [str(item.value) for item in node.value]
    if got != wanted:
        raise place.error(
            "spec.exclusionList",
            f"the edit did not produce {wanted!r} (got {got!r}); add the pattern by hand",
        )


def exclusion_patch(live: Mapping[str, Any], pattern: str) -> dict[str, Any] | None:
    """A JSON merge patch that adds ``pattern`` to a live ImageRepository's exclusion list, or
    None when it is already in effect.

    A merge patch replaces a list whole, so the patch carries the full new list (Flux's default
    first when the list was unset or empty) and, when the object has one, its
    ``metadata.resourceVersion``: the API server then refuses the patch (409 Conflict) if
    someone changed the object since it was read, instead of silently dropping their item."""
    meta: Mapping[str, Any] = live.get("metadata") or {}
    if not isinstance(meta, Mapping):
        meta = {}
    subject = f"ImageRepository {_ref(str(meta.get('name', '')), meta.get('namespace'))}"
    spec = live.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise ImagePolicyError(
            f"expected a mapping, got {type(spec).__name__}", subject=subject, field="spec"
        )
    current = spec.get("exclusionList")
    if current is None:
        current = []
    if not isinstance(current, list) or not all(isinstance(p, str) for p in current):
        raise ImagePolicyError(
            f"expected a list of regular expressions, got {current!r}",
            subject=subject,
            field="spec.exclusionList",
        )
    effective = current or [DEFAULT_EXCLUSION]
    if pattern in effective:
        return None
    patch: dict[str, Any] = {"spec": {"exclusionList": [*effective, pattern]}}
    version = meta.get("resourceVersion")
    if version:
        patch["metadata"] = {"resourceVersion": version}
    return patch


def find_image_repository_manifest(
    files: Mapping[str, str], *, name: str, namespace: str | None
) -> tuple[str, int] | None:
    """Which file (repository-relative path) and document (1-based) declares the
    ImageRepository ``name``; namespaces are matched as in :func:`add_exclusion_to_manifest`.

    Files that are not YAML are skipped (documents before a syntax error still count). Raises
    :class:`ImagePolicyError` when several documents match equally well."""
    candidates: list[tuple[Literal["exact", "unspecified"], str, int]] = []
    for path in sorted(files):
        text = files[path]
        if "ImageRepository" not in text:
            continue
        for number, root in enumerate(_compose(text, path, lenient=True), start=1):
            match = _declares(root, name, namespace)
            if match is not None:
                candidates.append((match, path, number))
    return _best_match(candidates, name, namespace, None)
