"""Status timestamps as the core reads and writes them.

The core never reads a clock: ``now`` arrives in the observations, possibly aware. The
status stores RFC 3339 strings; the core compares moments naive, in UTC, so that a
status written by another tool (or by hand) with or without an offset compares alike.
"""

from __future__ import annotations

from datetime import datetime

from canary.timestamps import format_time, parse_time


def iso(moment: datetime) -> str:
    return format_time(moment)


def parse_iso(text: str) -> datetime | None:
    """A status timestamp as a naive UTC datetime (the core compares with ``now`` naive)."""
    parsed = parse_time(text) if text else None
    return parsed.replace(tzinfo=None) if parsed is not None else None
