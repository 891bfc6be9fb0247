"""A small typed reader over JSON-like dicts that remembers where it is.

Manifests arrive as plain dicts (from YAML or the API server). `Reader` walks them
with typed accessors (`str`, `int`, `bool`, `obj`, `list`) that record an issue
with the exact field path instead of raising on the first bad value; the parser
then decides once, at the end, whether the document is usable. A wrong type is
reported and the field falls back to its default so later checks still run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from enum import Enum
from typing import Any, TypeVar

from canary.model.errors import SpecError, SpecIssue

T = TypeVar("T")
E = TypeVar("E", bound=Enum)

_MISSING: Any = object()


def describe(value: object) -> str:
    """A short, user-facing description of a value's type for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f'string "{shown}"'
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


class Issues:
    """The issues collected while reading one document."""

    def __init__(self) -> None:
        self.items: list[SpecIssue] = []

    def error(self, path: str, message: str) -> None:
        self.items.append(SpecIssue(path, message, "error"))

    def warning(self, path: str, message: str) -> None:
        self.items.append(SpecIssue(path, message, "warning"))

    @property
    def has_errors(self) -> bool:
        return any(i.severity == "error" for i in self.items)

    def raise_if_errors(self) -> None:
        if self.has_errors:
            raise SpecError(self.items)


class Reader:
    """Typed access to one JSON object at a known path."""

    def __init__(self, data: object, path: str, issues: Issues) -> None:
        self.path = path
        self.issues = issues
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            issues.error(path, f"expected an object, got {describe(data)}")
            data = {}
        self.data: Mapping[str, Any] = data

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str, default: Any = None) -> Any:
        value = self.data.get(key)
        return default if value is None else value

    def _typed(
        self,
        key: str,
        default: T,
        check: Callable[[Any], bool],
        expected: str,
        required: bool,
    ) -> T:
        value = self.data.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.issues.error(self.at(key), f"required field is missing ({expected})")
            return default
        if not check(value):
            self.issues.error(self.at(key), f"expected {expected}, got {describe(value)}")
            return default
        return value  # type: ignore[no-any-return]

    def string(self, key: str, default: str = "", *, required: bool = False) -> str:
        return self._typed(key, default, lambda v: isinstance(v, str), "a string", required)

    def opt_str(self, key: str) -> str | None:
        value = self.string(key, "")
        return value or None

    def choice(self, key: str, kind: type[E], default: E, *, what: str, expected: str = "") -> E:
        """A member of ``kind`` by value, or ``default`` when absent or empty; an unknown
        value is an error naming ``what`` and what is ``expected`` (default: every value)."""
        raw = self.string(key)
        if not raw:
            return default
        try:
            return kind(raw)
        except ValueError:
            allowed = expected or "one of: " + ", ".join(str(m.value) for m in kind)
            self.issues.error(self.at(key), f'unknown {what} "{raw}", expected {allowed}')
            return default

    def boolean(self, key: str, default: bool = False) -> bool:
        return self._typed(key, default, lambda v: isinstance(v, bool), "a boolean", False)

    def integer(
        self,
        key: str,
        default: int = 0,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        def is_int(v: Any) -> bool:
            return (isinstance(v, int) and not isinstance(v, bool)) or (
                isinstance(v, float) and v.is_integer()
            )

        raw = self.data.get(key)
        value = int(self._typed(key, default, is_int, "an integer", required))
        if raw is not None and is_int(raw):
            if minimum is not None and value < minimum:
                self.issues.error(self.at(key), f"must be at least {minimum}, got {value}")
                return default
            if maximum is not None and value > maximum:
                self.issues.error(self.at(key), f"must be at most {maximum}, got {value}")
                return default
        return value

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.issues.error(self.at(key), f"expected a number, got {describe(value)}")
            return None
        if math.isnan(float(value)):
            self.issues.error(self.at(key), "expected a number, got NaN")
            return None
        return float(value)

    def obj(self, key: str, *, required: bool = False) -> Reader | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.issues.error(self.at(key), "required field is missing (an object)")
            return None
        if not isinstance(value, Mapping):
            self.issues.error(self.at(key), f"expected an object, got {describe(value)}")
            return None
        return Reader(value, self.at(key), self.issues)

    def items(self, key: str) -> Iterator[tuple[str, Any]]:
        """Yield (path, item) for a list field; a non-list is reported."""
        value = self.data.get(key)
        if value is None:
            return
        if not isinstance(value, list):
            self.issues.error(self.at(key), f"expected a list, got {describe(value)}")
            return
        for index, item in enumerate(value):
            yield f"{self.at(key)}[{index}]", item

    def objects(self, key: str) -> Iterator[Reader]:
        for path, item in self.items(key):
            yield Reader(item, path, self.issues)

    def str_list(self, key: str) -> tuple[str, ...]:
        out: list[str] = []
        for path, item in self.items(key):
            if isinstance(item, str):
                out.append(item)
            else:
                self.issues.error(path, f"expected a string, got {describe(item)}")
        return tuple(out)

    def int_list(self, key: str) -> tuple[int, ...]:
        out: list[int] = []
        for path, item in self.items(key):
            if isinstance(item, int) and not isinstance(item, bool):
                out.append(item)
            else:
                self.issues.error(path, f"expected an integer, got {describe(item)}")
        return tuple(out)

    def str_map(self, key: str) -> dict[str, str]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.issues.error(self.at(key), f"expected an object of strings, got {describe(value)}")
            return {}
        out: dict[str, str] = {}
        for k, v in value.items():
            if isinstance(v, str):
                out[str(k)] = v
            elif isinstance(v, int | float | bool):
                out[str(k)] = str(v).lower() if isinstance(v, bool) else str(v)
            else:
                self.issues.error(f"{self.at(key)}.{k}", f"expected a string, got {describe(v)}")
        return out

    def obj_list(self, key: str) -> tuple[dict[str, Any], ...]:
        """A list of free-form objects (mesh-shaped fields we pass through)."""
        out: list[dict[str, Any]] = []
        for path, item in self.items(key):
            if isinstance(item, Mapping):
                out.append(dict(item))
            else:
                self.issues.error(path, f"expected an object, got {describe(item)}")
        return tuple(out)

    def free(self, key: str) -> dict[str, Any] | None:
        """A free-form object passed through to a router or a judge."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.issues.error(self.at(key), f"expected an object, got {describe(value)}")
            return None
        return dict(value)
