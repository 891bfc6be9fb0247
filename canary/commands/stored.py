"""Reading what a Canary's status (and its Events) hold, for people: any value in, a safe one out.

Why: the status the CLI shows is not only what this controller wrote. An older CRD keeps
fields it does not know, a person edits the status with ``kubectl``, a write is cut half
way: any field may hold any JSON value — a number where a list belongs, a list where a text
belongs, ``10**400``, NaN, an escape sequence. The commands that show a status (``get``,
``status``, ``wait``, ``report``, the dashboard) read every field through these functions,
so a mangled field shows as absent (``-`` on screen, ``null`` in JSON) instead of crashing
the command or misleading its reader. Each function returns a value of its type, or "none"
(``None``, ``""``, an empty list); none of them raises.

The controller reads the status through ``CanaryStatus.from_dict`` (canary.model.status),
with the same leniency but its own defaults; the model may not import the CLI side, so the
two stay separate. Everything here is pure and imports only the standard library, so
``canary --help`` stays fast (tests/cli/test_register.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, overload

from canary.timestamps import parse_time as _parse_rfc3339

__all__ = [
    "count",
    "integer",
    "json_ready",
    "mapping",
    "number",
    "parse_time",
    "printable",
    "printable_tree",
    "records",
    "string",
    "strings",
]

# C0 controls but tab and newline, DEL, C1 controls (ESC starts terminal sequences, CSI is
# one in C1), lone surrogates (no UTF-8 terminal or file can hold them) and the two
# noncharacters XML forbids (U+FFFE, U+FFFF): none is text a person should be sent.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_LINE_BREAKS = re.compile("[\t\n]")


def mapping(value: Any) -> Mapping[str, Any]:
    """An object; ``{}`` for anything else."""
    return value if isinstance(value, Mapping) else {}


def records(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a list (other items are dropped); ``[]`` for anything but a list."""
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def string(value: Any) -> str:
    """A string; ``""`` for anything else (a number or a list is not a name or a message)."""
    return value if isinstance(value, str) else ""


def strings(value: Any) -> list[str]:
    """The strings of a list (other items are dropped). A lone string is a list of one: a
    person who wrote ``images: nginx:1.2`` meant one image, not nine letters."""
    if isinstance(value, str):
        return [value] if value else []
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def number(value: Any) -> float | None:
    """A finite number as a float; None for anything else. A boolean is not a number (JSON
    ``true`` would show as 1), and neither are NaN, the infinities and integers beyond the
    float range (``10**400``), which no formatter or scale can use."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        found = float(value)
    except OverflowError:
        return None
    return found if math.isfinite(found) else None


def integer(value: Any) -> int | None:
    """A whole number (``3`` or ``3.0``) within the float range; None for anything else."""
    found = number(value)
    if found is None or not found.is_integer():
        return None
    return value if isinstance(value, int) else int(found)


@overload
def count(value: Any) -> int | None: ...
@overload
def count(value: Any, default: int) -> int: ...
def count(value: Any, default: int | None = None) -> int | None:
    """A count (requests, checks, replicas, a weight): a whole number, zero or more;
    ``default`` for anything else. A negative count is no count: ``-5 requests`` misleads."""
    found = integer(value)
    return found if found is not None and found >= 0 else default


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time as an aware UTC datetime; None when it is not one.

    Kubernetes writes ``2024-05-01T12:00:00Z``; RFC 3339 also allows a lowercase ``t`` and
    ``z`` and an offset, and a naive time is read as UTC (canary.timestamps). A time whose UTC
    form is outside the years 1 to 9999 (``0001-01-01T00:00:00+01:00``) is unreadable too:
    converting it would raise.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return _parse_rfc3339(value)
    except (OverflowError, ValueError):
        return None


def printable(value: str, *, newlines: bool = True) -> str:
    """``value`` without control characters (ESC, BEL, NUL, CR, the C1 range), lone surrogates
    and the noncharacters XML forbids: a status edited by anyone may hold a terminal escape
    sequence (clear the screen, retitle the window, a fake link) or a character that makes an
    SVG invalid. Tabs and newlines stay; with ``newlines=False`` they become spaces (a value
    shown on one line)."""
    cleaned = _UNPRINTABLE.sub("", value)
    return cleaned if newlines else _LINE_BREAKS.sub(" ", cleaned)


def printable_tree(value: Any, *, newlines: bool = True) -> Any:
    """A decoded JSON tree (dicts, lists, scalars) with every string, keys too, made
    :func:`printable`: what a renderer is given, so no field it shows can slip through."""
    if isinstance(value, str):
        return printable(value, newlines=newlines)
    if isinstance(value, Mapping):
        return {
            printable_tree(k, newlines=newlines): printable_tree(v, newlines=newlines)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [printable_tree(v, newlines=newlines) for v in value]
    return value


def json_ready(value: Any) -> Any:
    """A decoded JSON tree as strict JSON can hold it: a number that is not a finite float
    (NaN, the infinities, ``10**400``) becomes None (``null``); ``json.dumps`` would print
    ``NaN`` or ``Infinity``, which JSON parsers refuse."""
    if isinstance(value, Mapping):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool) and number(value) is None:
        return None
    return value
