"""Small shared helpers of the sandbox API server: timestamps, name suffixes, JSON copies.

Kept in one place so that every module renders times and generated names the way a real
API server does (RFC 3339 seconds for timestamps, microseconds for ``MicroTime``, the
consonant-and-digit alphabet of ``generateName`` suffixes).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

# The alphabet Kubernetes uses for generated name suffixes (no vowels, no confusables).
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

JsonObj = dict[str, Any]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rfc3339(when: dt.datetime | None = None) -> str:
    return (when or utcnow()).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(when: dt.datetime | None = None) -> str:
    return (when or utcnow()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> dt.datetime | None:
    """Parse an RFC 3339 timestamp as the API uses it; ``None`` if it is not one."""
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(NAME_ALPHABET) for _ in range(length))


def deep_copy(value: Any) -> Any:
    """Copy a JSON value (dicts, lists, scalars) much faster than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_copy(v) for v in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def age(timestamp: str | None, now: dt.datetime | None = None) -> str:
    """Render an age the way kubectl does (``5s``, ``3m2s``, ``4h``, ``2d3h``)."""
    if not timestamp:
        return "<unknown>"
    when = parse_time(timestamp)
    if when is None:
        return "<unknown>"
    seconds = max(0, int(((now or utcnow()) - when).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        rest_m = minutes % 60
        return f"{hours}h{rest_m}m" if hours < 8 and rest_m else f"{hours}h"
    days = hours // 24
    if days < 8:
        rest_h = hours % 24
        return f"{days}d{rest_h}h" if rest_h else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y"
