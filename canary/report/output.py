"""The report's file formats: html, svg, json (text) and png (the SVG through rsvg-convert).

Shared by ``canary report`` and ``canary simulate --report``. PNG is drawn by
``rsvg-convert`` (Debian's librsvg2-bin) when it is installed: the picture stays a pure
function, and no imaging library is added to the CLI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from enum import StrEnum
from pathlib import Path

from canary.errors import CanaryError
from canary.report.model import DecisionReport

__all__ = ["RSVG", "RenderError", "ReportFormat", "format_for", "rasterize", "render"]

RSVG = "rsvg-convert"


class ReportFormat(StrEnum):
    HTML = "html"
    SVG = "svg"
    PNG = "png"
    JSON = "json"


class RenderError(CanaryError):
    """The report cannot be drawn in the format asked (one line, for the user)."""


def format_for(path: str | None, chosen: ReportFormat | None) -> ReportFormat:
    """``chosen``, else the one the file's suffix names, else HTML."""
    if chosen is not None:
        return chosen
    suffix = Path(path).suffix.lower().lstrip(".") if path else ""
    aliases = {"htm": ReportFormat.HTML, "xhtml": ReportFormat.HTML}
    try:
        return aliases.get(suffix) or ReportFormat(suffix)
    except ValueError:
        return ReportFormat.HTML


def rasterize(svg: str, *, width: int = 1440) -> bytes:
    """The SVG as PNG; RenderError when rsvg-convert is missing or fails."""
    program = shutil.which(RSVG)
    if program is None:
        raise RenderError(
            f"-o png needs {RSVG}: install it (Debian/Ubuntu: apt-get install librsvg2-bin; "
            "macOS: brew install librsvg), or use -o svg or -o html"
        )
    try:
        done = subprocess.run(
            [program, "--format=png", f"--width={width}", "--keep-aspect-ratio"],
            input=svg.encode("utf-8"),
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RenderError(f"{RSVG} failed: {exc}") from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError(f"{RSVG} failed: {why[0] if why else f'exit {done.returncode}'}")
    return done.stdout


def render(report: DecisionReport, fmt: ReportFormat) -> bytes:
    """The report in ``fmt``, as the bytes of the file."""
    if fmt is ReportFormat.JSON:
        return (json.dumps(report.to_dict(), indent=2) + "\n").encode("utf-8")
    from canary.report.picture import decision_svg

    if fmt is ReportFormat.SVG:
        return decision_svg(report).encode("utf-8")
    if fmt is ReportFormat.PNG:
        return rasterize(decision_svg(report))
    from canary.report.html import decision_html

    return decision_html(report).encode("utf-8")
