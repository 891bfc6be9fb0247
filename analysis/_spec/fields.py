"""Typed reads of one field of a spec mapping that record a problem instead of raising.

Every parser of the pure part reads its mapping through these helpers and one
:class:`Problems` per spec.  A bad field is recorded with its path and read as
its default, so the next field is still checked: the Canary parser can show a
user every problem of a metric at once, while ``metric_check_from_spec`` and
``provider_config_from_spec`` still raise the first one, exactly as before.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypeVar

from analysis._spec.errors import AnalysisSpecError, AnalysisSpecErrors

__all__ = ["Problems", "read_bool", "read_int", "read_number", "read_text", "type_name"]


class Problems:
    """The problems found in one spec, in the order found."""

    def __init__(self) -> None:
        self.found: list[AnalysisSpecError] = []

    def __len__(self) -> int:
        return len(self.found)

    def add(self, path: str, message: str) -> None:
        self.found.append(AnalysisSpecError(path, message))

    def add_error(self, error: AnalysisSpecError) -> None:
        """Record an error raised by a check (it may be a subclass the caller tells apart)."""
        self.found.extend(error.problems)

    def since(self, count: int) -> bool:
        """Whether a problem was recorded after the first ``count`` (a mark taken earlier)."""
        return len(self.found) > count

    def raise_all(self) -> None:
        """Raise :class:`AnalysisSpecErrors` listing every problem, if there is any."""
        if self.found:
            raise AnalysisSpecErrors(self.found)


_Default = TypeVar("_Default", float, None)
"""What :func:`read_number` gives for an absent or bad value: a number, or None."""


def type_name(v: object) -> str:
    """How a bad value is quoted in messages, in the words of the YAML the user wrote: strings
    in double quotes, ``true``/``false``/``null`` as YAML spells them (not Python's ``True``
    and ``None``), a mapping or a list by its kind, numbers as they are."""
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int) and abs(v) > INT64_MAX:
        return f"a number of {len(str(abs(v)))} digits"
    if isinstance(v, Mapping):
        return "a mapping"
    if isinstance(v, list | tuple):
        return "a list"
    return repr(v)


def read_number(
    d: Mapping[str, object],
    key: str,
    path: str,
    problems: Problems,
    default: _Default,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    what: str = "a number",
) -> float | _Default:
    """A finite number within ``[lo, hi]`` (ends excluded when ``*_open``), or ``default``."""
    if key not in d or d[key] is None:
        return default
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not _finite_float(v):
        problems.add(f"{path}.{key}", f"expected {what}, got {type_name(v)}")
        return default
    x = float(v)
    too_low = lo is not None and (x < lo or (lo_open and x == lo))
    too_high = hi is not None and (x > hi or (hi_open and x == hi))
    if too_low or too_high:
        problems.add(f"{path}.{key}", f"expected {what}, got {type_name(v)}")
        return default
    return x


def read_int(
    d: Mapping[str, object],
    key: str,
    path: str,
    problems: Problems,
    default: int,
    *,
    lo: int,
    what: str,
) -> int:
    """An integer (not a boolean) of at least ``lo``, or ``default``."""
    if key not in d or d[key] is None:
        return default
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or v > INT64_MAX:
        problems.add(f"{path}.{key}", f"expected {what}, got {type_name(v)}")
        return default
    return v


INT64_MAX = 2**63 - 1
"""The largest integer the API server stores (an ``integer`` field is an int64)."""


def _finite_float(v: float) -> bool:
    """Whether ``v`` is a finite float64; a Python int too large for one is not (YAML lets a
    manifest carry a 400-digit integer, and ``math.isfinite`` raises on it)."""
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def read_bool(
    d: Mapping[str, object], key: str, path: str, problems: Problems, default: bool
) -> bool:
    """``true`` or ``false``, or ``default`` when absent or bad."""
    v = d.get(key, default)
    if not isinstance(v, bool):
        problems.add(f"{path}.{key}", f"expected true or false, got {type_name(v)}")
        return default
    return v


def read_text(d: Mapping[str, object], key: str, path: str, problems: Problems) -> str | None:
    """A string with something else than blanks in it, or ``None`` when absent or bad."""
    if key not in d or d[key] is None:
        return None
    v = d[key]
    if not isinstance(v, str) or not v.strip():
        problems.add(f"{path}.{key}", f"expected a non-empty string, got {type_name(v)}")
        return None
    return v
