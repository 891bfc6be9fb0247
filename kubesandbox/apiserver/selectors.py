"""Label and field selectors, parsed once per request and matched per object.

Kubernetes clients filter server-side (``?labelSelector=app=x,tier in (a,b)``,
``?fieldSelector=metadata.name=x``) and workload controllers match Pods through a
``LabelSelector`` object (``matchLabels`` / ``matchExpressions``). Both end up as the same
frozen :class:`LabelSelector`, so the simulator and the HTTP layer share one matcher.
A malformed selector raises :class:`SelectorError`, which the server answers with 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    """The selector text (or object) is malformed; the message says where."""


_KEY_RE = re.compile(
    r"^([a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$"
)
_VALUE_RE = re.compile(r"^([a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?)?$")

_OPERATORS = ("in", "notin", "=", "==", "!=", "exists", "!", "gt", "lt")


@dataclass(frozen=True)
class Requirement:
    """One ``key op values`` term; ``op`` is one of in, notin, exists, !, gt, lt."""

    key: str
    op: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "in":
            return present and labels[self.key] in self.values
        if self.op == "notin":
            return not present or labels[self.key] not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("gt", "lt"):
            if not present:
                return False
            try:
                have = int(labels[self.key])
            except ValueError:
                return False
            bound = int(next(iter(self.values)))
            return have > bound if self.op == "gt" else have < bound
        raise AssertionError(self.op)


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        parts = []
        for r in self.requirements:
            if r.op == "exists":
                parts.append(r.key)
            elif r.op == "!":
                parts.append("!" + r.key)
            elif r.op == "in" and len(r.values) == 1:
                parts.append(f"{r.key}={next(iter(r.values))}")
            elif r.op == "notin" and len(r.values) == 1:
                parts.append(f"{r.key}!={next(iter(r.values))}")
            elif r.op in ("gt", "lt"):
                parts.append(f"{r.key}{'>' if r.op == 'gt' else '<'}{next(iter(r.values))}")
            else:
                parts.append(f"{r.key} {r.op} ({','.join(sorted(r.values))})")
        return ",".join(parts)


def _check_key(key: str, where: str) -> str:
    if not key or len(key) > 317 or not _KEY_RE.match(key):
        raise SelectorError(f"invalid label key {key!r} in {where}")
    return key


def _check_value(value: str, where: str) -> str:
    if len(value) > 63 or not _VALUE_RE.match(value):
        raise SelectorError(f"invalid label value {value!r} in {where}")
    return value


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unbalanced parenthesis in selector {text!r}")
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise SelectorError(f"unbalanced parenthesis in selector {text!r}")
    parts.append("".join(current))
    return parts


_SET_RE = re.compile(r"^\s*(?P<key>[^\s!=<>()]+)\s+(?P<op>in|notin)\s*\((?P<vals>[^()]*)\)\s*$")
_CMP_RE = re.compile(r"^\s*(?P<key>[^\s!=<>()]+)\s*(?P<op>==|=|!=|>|<)\s*(?P<val>[^\s!=<>()]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(?P<neg>!)?\s*(?P<key>[^\s!=<>()]+)\s*$")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse the ``labelSelector`` query syntax (``a=b,c!=d,e in (x,y),f,!g``)."""
    if text is None or not text.strip():
        return LabelSelector()
    reqs: list[Requirement] = []
    for raw in _split_top(text):
        if not raw.strip():
            raise SelectorError(f"empty requirement in label selector {text!r}")
        if m := _SET_RE.match(raw):
            key = _check_key(m["key"], "label selector")
            vals = frozenset(
                _check_value(v.strip(), "label selector") for v in m["vals"].split(",")
            )
            reqs.append(Requirement(key, m["op"], vals))
        elif m := _CMP_RE.match(raw):
            key = _check_key(m["key"], "label selector")
            op = m["op"]
            if op in ("<", ">"):
                if not re.fullmatch(r"-?\d+", m["val"]):
                    raise SelectorError(f"{m['val']!r} is not an integer in label selector")
                reqs.append(Requirement(key, "gt" if op == ">" else "lt", frozenset({m["val"]})))
            else:
                val = _check_value(m["val"], "label selector")
                reqs.append(Requirement(key, "notin" if op == "!=" else "in", frozenset({val})))
        elif m := _EXISTS_RE.match(raw):
            key = _check_key(m["key"], "label selector")
            reqs.append(Requirement(key, "!" if m["neg"] else "exists"))
        else:
            raise SelectorError(f"unable to parse requirement {raw.strip()!r} in label selector")
    return LabelSelector(tuple(reqs))


def selector_from_object(obj: Mapping[str, Any] | None, where: str = "selector") -> LabelSelector:
    """Build a selector from a ``metav1.LabelSelector`` object (``matchLabels``/``matchExpressions``).

    ``None`` or ``{}`` selects everything, as for Kubernetes list calls; workload
    controllers check for an empty selector themselves.
    """
    if not obj:
        return LabelSelector()
    if not isinstance(obj, Mapping):
        raise SelectorError(f"{where}: expected an object with matchLabels/matchExpressions")
    reqs: list[Requirement] = []
    match_labels = obj.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise SelectorError(f"{where}.matchLabels: expected a map of strings")
    for key, value in match_labels.items():
        reqs.append(Requirement(str(key), "in", frozenset({str(value)})))
    exprs = obj.get("matchExpressions") or []
    if not isinstance(exprs, list):
        raise SelectorError(f"{where}.matchExpressions: expected a list")
    for i, expr in enumerate(exprs):
        path = f"{where}.matchExpressions[{i}]"
        if not isinstance(expr, Mapping) or "key" not in expr or "operator" not in expr:
            raise SelectorError(f"{path}: expected key and operator")
        op = str(expr["operator"])
        values = frozenset(str(v) for v in expr.get("values") or [])
        if op == "In":
            if not values:
                raise SelectorError(f"{path}.values: must be specified for operator In")
            reqs.append(Requirement(str(expr["key"]), "in", values))
        elif op == "NotIn":
            if not values:
                raise SelectorError(f"{path}.values: must be specified for operator NotIn")
            reqs.append(Requirement(str(expr["key"]), "notin", values))
        elif op == "Exists":
            reqs.append(Requirement(str(expr["key"]), "exists"))
        elif op == "DoesNotExist":
            reqs.append(Requirement(str(expr["key"]), "!"))
        else:
            raise SelectorError(
                f"{path}.operator: unsupported value {op!r}; expected In, NotIn, Exists, DoesNotExist"
            )
    return LabelSelector(tuple(reqs))


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    value: str
    negate: bool


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of ``field=value`` / ``field!=value`` terms."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, lookup: Callable[[str], str]) -> bool:
        return all((lookup(r.field) == r.value) != r.negate for r in self.requirements)

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(r.field for r in self.requirements)

    def value_of(self, field: str) -> str | None:
        """The value required by an ``=`` term on ``field`` (used as an index hint)."""
        for r in self.requirements:
            if r.field == field and not r.negate:
                return r.value
        return None


def _split_escaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_field_selector(text: str | None) -> FieldSelector:
    """Parse ``fieldSelector`` (``a=b,c!=d``; ``\\,`` and ``\\=`` escape separators)."""
    if text is None or not text.strip():
        return FieldSelector()
    reqs: list[FieldRequirement] = []
    for raw in _split_escaped(text, ","):
        term = raw.strip()
        if not term:
            continue
        m = re.match(r"^((?:[^\\=!]|\\.)+?)\s*(!=|==|=)\s*(.*)$", term)
        if not m:
            raise SelectorError(
                f"invalid field selector: {term!r}: expected field=value or field!=value"
            )
        reqs.append(FieldRequirement(m[1].strip(), _unescape(m[3].strip()), m[2] == "!="))
    return FieldSelector(tuple(reqs))


def field_value(obj: Mapping[str, Any], dotted: str) -> str:
    """The string value of a dotted field path, as field selectors compare it."""
    cur: Any = obj
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return ""
        cur = cur[part]
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)
