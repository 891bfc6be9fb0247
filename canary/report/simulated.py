"""The decision report of a simulated run (``canary simulate --report FILE``).

The simulator keeps the Canary status the core wrote at each tick and the Events it emitted;
here they become what the report reads from a cluster: the Canary (the manifest with the last
tick's status) and one Kubernetes-shaped Event per emitted message, timed at its tick.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from canary.core import EmitEvent
from canary.report.model import DecisionReport, build_report
from canary.report.output import format_for, render
from canary.simulation import TickRecord
from canary.timestamps import format_time

__all__ = ["simulated_canary", "simulated_events", "simulated_report", "write_simulated_report"]


def simulated_canary(
    canary_doc: Mapping[str, Any], records: Sequence[TickRecord]
) -> dict[str, Any]:
    """The Canary as the API would return it after the last tick."""
    doc = dict(canary_doc)
    if records:
        doc["status"] = records[-1].decision.status.to_dict()
    return doc


def simulated_events(records: Sequence[TickRecord]) -> list[dict[str, Any]]:
    """The Events of the run, as ``core/v1`` Events (reason ``Synced``, like the controller's)."""
    found: list[dict[str, Any]] = []
    for record in records:
        at = format_time(record.time)
        for effect in record.decision.effects:
            if isinstance(effect, EmitEvent):
                found.append(
                    {
                        "type": effect.type.value,
                        "reason": "Synced",
                        "message": effect.message,
                        "count": 1,
                        "firstTimestamp": at,
                        "lastTimestamp": at,
                    }
                )
    return found


def simulated_report(
    canary_doc: Mapping[str, Any], records: Sequence[TickRecord], *, run: int | None = None
) -> DecisionReport:
    return build_report(simulated_canary(canary_doc, records), simulated_events(records), run=run)


def write_simulated_report(
    canary_doc: Mapping[str, Any], records: Sequence[TickRecord], path: Path
) -> str:
    """Write the report of the simulated run to ``path`` (HTML, or SVG, PNG or JSON by its
    suffix); the format written. Raises RenderError (PNG without rsvg-convert) or OSError."""
    fmt = format_for(str(path), None)
    path.write_bytes(render(simulated_report(canary_doc, records), fmt))
    return fmt.value
