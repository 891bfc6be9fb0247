"""``spec.provider.web``: the request the generic ``web`` provider sends, and where its number is.

Argo Rollouts' web metric, on a MetricTemplate::

    spec:
      provider:
        type: web
        address: https://checks.example.com      # optional: a relative query joins it
        secretRef: {name: checks}                # keys named by secretHeaders
        headers: {Accept: [application/json]}
        web:
          method: POST                           # GET (default), POST or PUT
          body: '{"app": "{{ target }}", "window": "{{ interval }}"}'
          jsonPath: "{$.data.errorRate}"
          secretHeaders: {Authorization: token}  # header -> key of the Secret
      query: /api/v1/errors?ns={{ namespace }}   # the URL, absolute or relative to address

The URL is the template's ``query`` (rendered like every query); the body is rendered with the
same variables when the metric runs (:func:`analysis.provider_config` with ``render``).

``jsonPath`` is Kubernetes JSONPath, as Argo Rollouts evaluates it (client-go's
``util/jsonpath``): one expression in braces, ``{$.data.errorRate}`` or ``{.data.errorRate}``
(the braces may be left out). This module compiles it, so a bad path is reported with the
MetricTemplate, naming ``spec.provider.web.jsonPath`` and the column of the mistake, instead of
failing at the first canary. The subset understood is what users of Argo's web metric write::

    $  .key  ['key'] ["key"]  [2] [-1]  [*] .*  [1:3]  ..key (recursive)
    [?(@.name == "p99")]  [?(@.ok)]       filters: ==, !=, <, <=, >, >= against a number,
                                          a quoted string, true, false or null

Why hand-written rather than a library: the two maintained Python JSONPath libraries
(``jsonpath-ng`` 1.17, 820 kB with its own ply-based parser, ~25 ms to import;
``python-jsonpath`` 2.2, 830 kB, ~55 ms to import) follow Goessner's or RFC 9535's grammar,
not Kubernetes' (braces, ``{.key}`` without ``$``), so the braces would be ours to strip
anyway; neither would simply keep the error messages naming the field; and this part of the
package must stay dependency-free and cheap to import (``canary.model`` parses every
MetricTemplate with it). The subset above is about 150 lines with no dependency; Kubernetes'
``range``/``end`` templates, unions (``['a','b']``) and text around the braces are refused
with a clear message. (Sizes installed, import times measured with -X importtime on Python 3.11.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from analysis._spec.fields import Problems, type_name

__all__ = [
    "WEB_METHODS",
    "JsonPath",
    "JsonPathError",
    "WebSpec",
    "compile_json_path",
    "parse_web_spec",
]

WEB_METHODS = ("GET", "POST", "PUT")

# RFC 9110's token: what a header name may be made of.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True, slots=True)
class WebSpec:
    """The parsed ``spec.provider.web``; ``body`` is a template until rendered."""

    json_path: str
    method: str = "GET"
    body: str | None = None
    secret_headers: tuple[tuple[str, str], ...] = ()  # (header, Secret key)

    def with_body(self, body: str | None) -> WebSpec:
        return replace(self, body=body)


def parse_web_spec(raw: object, path: str, problems: Problems) -> WebSpec | None:
    """``spec.provider.web``, with each bad field added to ``problems``; None when absent."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.add(path, f"expected a map with jsonPath, got {type_name(raw)}")
        return None
    json_path = raw.get("jsonPath")
    if not isinstance(json_path, str) or not json_path.strip():
        problems.add(
            f"{path}.jsonPath",
            f"expected a JSONPath such as {{$.data.value}}, got {type_name(json_path)}",
        )
        json_path = ""
    else:
        try:
            compile_json_path(json_path)
        except JsonPathError as exc:
            problems.add(f"{path}.jsonPath", str(exc))
    method = raw.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in WEB_METHODS:
        problems.add(f"{path}.method", f"expected one of {', '.join(WEB_METHODS)}, got {method!r}")
        method = "GET"
    body = raw.get("body")
    if body is not None and not isinstance(body, str):
        problems.add(f"{path}.body", f"expected a string (a template), got {type_name(body)}")
        body = None
    headers: list[tuple[str, str]] = []
    raw_headers = raw.get("secretHeaders") or {}
    if not isinstance(raw_headers, Mapping):
        problems.add(f"{path}.secretHeaders", "expected a map of header name to Secret key")
    else:
        for name, key in raw_headers.items():
            if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
                problems.add(
                    f"{path}.secretHeaders",
                    f"expected HTTP header names as keys (letters, digits, -), got {name!r}",
                )
                continue
            if not isinstance(key, str) or not key:
                problems.add(
                    f"{path}.secretHeaders.{name}",
                    f"expected the name of a key of the Secret, got {type_name(key)}",
                )
                continue
            headers.append((name, key))
    known = {"jsonPath", "method", "body", "secretHeaders"}
    for extra in sorted(set(map(str, raw)) - known):
        problems.add(
            f"{path}.{extra}", f"unknown field; expected one of {', '.join(sorted(known))}"
        )
    return WebSpec(
        json_path=json_path.strip(),
        method=method.upper() if isinstance(method, str) else "GET",
        body=body,
        secret_headers=tuple(headers),
    )


# -- jsonPath: Kubernetes JSONPath, the subset Argo users write ------------------------------


class JsonPathError(ValueError):
    """``jsonPath`` is not a JSONPath this provider reads; the message says where and why."""


@dataclass(frozen=True, slots=True)
class _Key:
    name: str


@dataclass(frozen=True, slots=True)
class _Index:
    index: int


@dataclass(frozen=True, slots=True)
class _Wildcard:
    pass


@dataclass(frozen=True, slots=True)
class _Slice:
    start: int | None
    stop: int | None


@dataclass(frozen=True, slots=True)
class _Filter:
    """``[?(@.a.b op literal)]``, or ``[?(@.a.b)]`` (present and not null) when ``op`` is None."""

    path: tuple[str, ...]
    op: str | None
    literal: Any


@dataclass(frozen=True, slots=True)
class _Descend:
    """``..`` followed by ``step``: ``step`` applied to a node and every node below it."""

    step: _Key | _Index | _Wildcard | _Slice | _Filter


_Step = _Key | _Index | _Wildcard | _Slice | _Filter | _Descend
_MISSING = object()


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A compiled ``jsonPath``: ``text`` as written, ``steps`` to follow from the document."""

    text: str
    steps: tuple[_Step, ...]

    def find(self, document: Any) -> list[Any]:
        """Every value the path selects in ``document``, in document order (maybe none)."""
        current = [document]
        for step in self.steps:
            current = [found for node in current for found in _apply(step, node)]
        return current


def compile_json_path(text: str) -> JsonPath:
    """``text`` (``{$.data.value}``, ``{.data.value}`` or ``$.data.value``) compiled.

    Raises :class:`JsonPathError` naming the column of the mistake.
    """
    written = text.strip()
    inner = written
    if written.startswith("{"):
        if not written.endswith("}"):
            raise JsonPathError(f"{written!r} opens a brace it does not close")
        inner = written[1:-1].strip()
    if "{" in inner or "}" in inner:
        raise JsonPathError(
            f"{written!r} has text or expressions around the braces; write one expression, "
            "such as {$.data.value}"
        )
    if inner.split(" ")[0] in ("range", "end"):
        raise JsonPathError(
            f"{written!r}: range/end templates are not read; select one value, "
            "such as {$.items[0].value}"
        )
    return JsonPath(text=written, steps=_Parser(inner, written).steps())


class _Parser:
    """A left-to-right reader of one JSONPath expression (the part inside the braces)."""

    _NAME = re.compile(r"[^.\[\]{}()\s'\"=!<>@,*?:]+")
    _NUMBER = re.compile(r"-?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)")
    _INT = re.compile(r"-?\d+")

    def __init__(self, text: str, written: str) -> None:
        self.text = text
        self.written = written
        self.pos = 0

    def fail(self, what: str) -> JsonPathError:
        return JsonPathError(f"{self.written!r}: {what} at column {self.pos + 1} of {self.text!r}")

    def peek(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def expect(self, token: str) -> None:
        self.space()
        if not self.peek(token):
            raise self.fail(f"expected {token!r}")
        self.pos += len(token)

    def space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def steps(self) -> tuple[_Step, ...]:
        if not self.text:
            raise self.fail("an empty expression; expected a path such as $.data.value")
        if self.peek("$"):
            self.pos += 1
        elif not (self.peek(".") or self.peek("[")):
            raise self.fail("a path starts with $ (or . for the document itself)")
        steps: list[_Step] = []
        while self.pos < len(self.text):
            if self.peek(".."):
                self.pos += 2
                inner = self.bracket() if self.peek("[") else self.dotted()
                steps.append(_Descend(inner))
            elif self.peek("."):
                self.pos += 1
                steps.append(self.dotted())
            elif self.peek("["):
                steps.append(self.bracket())
            else:
                raise self.fail(f"unexpected {self.text[self.pos]!r}")
        return tuple(steps)

    def dotted(self) -> _Key | _Wildcard:
        if self.peek("*"):
            self.pos += 1
            return _Wildcard()
        match = self._NAME.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected a key name after '.'")
        self.pos = match.end()
        return _Key(match.group())

    def quoted(self) -> str:
        quote = self.text[self.pos]
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if char == quote:
                return "".join(out)
            out.append(char)
        raise self.fail(f"a string opened with {quote} is not closed")

    def bracket(self) -> _Key | _Index | _Wildcard | _Slice | _Filter:
        self.pos += 1  # [
        self.space()
        step: _Key | _Index | _Wildcard | _Slice | _Filter
        if self.peek("*"):
            self.pos += 1
            step = _Wildcard()
        elif self.peek("'") or self.peek('"'):
            step = _Key(self.quoted())
        elif self.peek("?"):
            self.pos += 1
            step = self.filter()
        else:
            step = self.index_or_slice()
        self.space()
        if self.peek(","):
            raise self.fail("unions ([a,b]) are not read; select one value")
        self.expect("]")
        return step

    def index_or_slice(self) -> _Index | _Slice:
        bounds: list[int | None] = []
        while True:
            self.space()
            match = self._INT.match(self.text, self.pos)
            if match is not None:
                self.pos = match.end()
            bounds.append(int(match.group()) if match is not None else None)
            self.space()
            if not self.peek(":"):
                break
            self.pos += 1
        if len(bounds) == 1:
            if bounds[0] is None:
                raise self.fail("expected an index, *, a 'key' or a ?(filter) after '['")
            return _Index(bounds[0])
        if len(bounds) > 2:
            raise self.fail("slices with a step ([a:b:c]) are not read")
        return _Slice(bounds[0], bounds[1])

    def filter(self) -> _Filter:
        self.expect("(")
        self.expect("@")
        path: list[str] = []
        while True:
            if self.peek("."):
                self.pos += 1
                match = self._NAME.match(self.text, self.pos)
                if match is None:
                    raise self.fail("expected a key name after '@.'")
                self.pos = match.end()
                path.append(match.group())
            elif self.peek("['") or self.peek('["'):
                self.pos += 1
                path.append(self.quoted())
                self.expect("]")
            else:
                break
        self.space()
        if self.peek(")"):
            self.pos += 1
            return _Filter(tuple(path), None, None)
        for op in ("==", "!=", "<=", ">=", "<", ">"):
            if self.peek(op):
                self.pos += len(op)
                break
        else:
            raise self.fail("expected ==, !=, <, <=, >, >= or ')' in the filter")
        self.space()
        literal = self.literal()
        self.expect(")")
        return _Filter(tuple(path), op, literal)

    def literal(self) -> Any:
        if self.peek("'") or self.peek('"'):
            return self.quoted()
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.peek(word):
                self.pos += len(word)
                return value
        match = self._NUMBER.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected a number, a quoted string, true, false or null")
        self.pos = match.end()
        return float(match.group())


def _apply(step: _Step, node: Any) -> list[Any]:
    """The values ``step`` selects under one node."""
    if isinstance(step, _Key):
        return [node[step.name]] if isinstance(node, Mapping) and step.name in node else []
    if isinstance(step, _Index):
        if isinstance(node, list) and -len(node) <= step.index < len(node):
            return [node[step.index]]
        return []
    if isinstance(step, _Wildcard):
        if isinstance(node, list):
            return list(node)
        return list(node.values()) if isinstance(node, Mapping) else []
    if isinstance(step, _Slice):
        return list(node[step.start : step.stop]) if isinstance(node, list) else []
    if isinstance(step, _Filter):
        items = node if isinstance(node, list) else []
        return [item for item in items if _matches(step, item)]
    found: list[Any] = []
    for each in _descendants(node):
        found.extend(_apply(step.step, each))
    return found


def _descendants(node: Any) -> list[Any]:
    """``node`` and every node below it, in document order."""
    out = [node]
    children = (
        node if isinstance(node, list) else node.values() if isinstance(node, Mapping) else []
    )
    for child in children:
        out.extend(_descendants(child))
    return out


def _matches(step: _Filter, item: Any) -> bool:
    """Whether ``item`` passes the filter; a missing key or values of different kinds never do."""
    value: Any = item
    for key in step.path:
        value = value.get(key, _MISSING) if isinstance(value, Mapping) else _MISSING
        if value is _MISSING:
            return False
    if step.op is None:
        return value is not None
    wanted = step.literal
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = float(value)  # JSON has one kind of number; the literal was read as a float
    if type(value) is not type(wanted):
        return step.op == "!="
    if step.op in ("==", "!="):
        return bool(value == wanted) == (step.op == "==")
    if not isinstance(value, float | str):
        return False
    if step.op == "<":
        return bool(value < wanted)
    if step.op == "<=":
        return bool(value <= wanted)
    if step.op == ">":
        return bool(value > wanted)
    return bool(value >= wanted)
