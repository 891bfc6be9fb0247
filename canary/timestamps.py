"""Timestamps as Kubernetes writes them (RFC 3339 in UTC): the one place that spells them.

``metav1.Time`` is whole seconds with a ``Z`` (``2026-03-01T12:00:00Z``); ``MicroTime``
(Leases, some Events) adds microseconds. Naive datetimes are taken as UTC. Pure: no clock
is read here; callers pass the moment.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_micro", "format_time", "parse_time"]

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MICRO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """``metav1.Time``: whole seconds, UTC, ``Z``."""
    return _utc(moment).strftime(TIME_FORMAT)


def format_micro(moment: datetime) -> str:
    """``metav1.MicroTime``: microseconds, UTC, ``Z``."""
    return _utc(moment).strftime(MICRO_FORMAT)


def parse_time(text: str) -> datetime | None:
    """Either form (or RFC 3339 with an offset) as an aware UTC datetime; None if unreadable."""
    value = text.strip()
    for pattern in (TIME_FORMAT, MICRO_FORMAT):
        try:
            return datetime.strptime(value, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return _utc(parsed)
    except (ValueError, OverflowError):  # past the calendar in UTC: 0001-01-01T00:00:00+01:00
        return None
