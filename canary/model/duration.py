"""Durations as Kubernetes and Flagger users write them.

Flagger's CRD pattern for intervals is ``^[0-9]+(m|s)``; users also write Go
durations (``1m30s``, ``500ms``, ``1h``). We accept the Go syntax everywhere and
return whole or fractional seconds, with an error message that shows an example.
"""

from __future__ import annotations

import re

from canary.errors import CanaryError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$")


class DurationError(CanaryError, ValueError):
    pass


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration such as ``30s``, ``1m``, ``1m30s``, ``500ms``."""
    value = text.strip()
    if not value or not _WHOLE.match(value):
        raise DurationError(f'expected a duration like "30s", "1m" or "1m30s", got "{text}"')
    return sum(float(num) * _UNITS[unit] for num, unit in _PART.findall(value))


def format_duration(seconds: float) -> str:
    """The shortest Go-style spelling of a duration (``90`` -> ``1m30s``)."""
    if seconds < 1 and seconds > 0:
        return f"{round(seconds * 1000)}ms"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if secs or not out:
        out += f"{secs}s"
    return out
