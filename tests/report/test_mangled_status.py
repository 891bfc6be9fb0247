"""``canary report`` on a mangled status: every format renders, and shows only what it can read.

Threshold texts whose number cannot be read (``>= 99.5.``) or is infinite are no bounds;
times whose UTC form falls outside the calendar are unreadable; numbers beyond the float
range and negative counts are absent; an outcome no judge gives is drawn as unknown and
holds nothing; characters XML forbids never reach the SVG or the HTML (an unreadable SVG
would fail ``-o png`` too).
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from canary.report.model import DecisionReport, build_report
from canary.report.output import ReportFormat, render
from tests.cli._mangled import EVENTS, EVIL, canary, mangled, statuses, strict_json

SVG = "{http://www.w3.org/2000/svg}"
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]")


def every_format(report: DecisionReport) -> dict[str, str]:
    """The text formats, checked the way their readers read them."""
    svg = render(report, ReportFormat.SVG).decode()
    ET.fromstring(svg)  # well-formed XML
    html = render(report, ReportFormat.HTML).decode()
    strict_json(render(report, ReportFormat.JSON))
    for text in (svg, html):
        assert not CONTROL.search(text)
    assert not re.search(r'="[^"]*\b(nan|inf)\b', svg), "a number SVG cannot hold"
    return {"svg": svg, "html": html}


def metric(report: DecisionReport, name: str) -> Any:
    return next(m for m in report.metrics if m.name == name)


def y_ticks(svg: str, name: str) -> list[float]:
    """The values on the y-axis of the panel of metric ``name``."""
    root = ET.fromstring(svg)
    panel = next(g for g in root.iter(f"{SVG}g") if g.get("data-metric") == name)
    return [
        float(t.get("data-value") or "nan")
        for t in panel.iter(f"{SVG}text")
        if t.get("class") == "y-tick"
    ]


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    ("threshold", "low", "high"),
    [
        (">= 99.5.", None, None),
        ("< 1.5.0", None, None),
        (">= .", None, None),
        ("<= 500ms and >= 99.5.", None, 500.0),
    ],
)
def test_a_bound_whose_number_cannot_be_read_is_no_bound(
    threshold: str, low: float | None, high: float | None
) -> None:
    report = build_report(mangled((("analysis", 1, "threshold"), threshold)), EVENTS)
    latency = metric(report, "latency")
    assert (latency.low, latency.high, latency.threshold) == (low, high, threshold)
    every_format(report)


def test_an_infinite_bound_is_no_bound() -> None:
    report = build_report(mangled((("analysis", 1, "threshold"), "<= 1e999")), EVENTS)
    assert metric(report, "latency").high is None
    assert 'data-high="inf"' not in every_format(report)["svg"]


def test_bounds_beyond_any_value_leave_the_panel_scaled_to_the_values() -> None:
    threshold = "<= 1e308 and >= -1e308"
    report = build_report(mangled((("analysis", 1, "threshold"), threshold)), EVENTS)
    latency = metric(report, "latency")
    assert (latency.low, latency.high) == (-1e308, 1e308)  # still the metric's bounds
    axis = y_ticks(every_format(report)["svg"], "latency")
    assert len(axis) > 2 and min(axis) <= 79 and 82 <= max(axis) < 100


# --------------------------------------------------------------------------- times


def test_times_whose_utc_form_is_outside_the_calendar_are_unreadable() -> None:
    report = build_report(
        mangled(
            (("analysisHistory", 0, "started"), "0001-01-01T00:00:00+01:00"),
            (("analysisHistory", 0, "ended"), "9999-12-31T23:59:59-01:00"),
            (("analysisHistory", 0, "ticks", 0, "time"), "9999-12-31T23:59:59-01:00"),
        ),
        [dict(EVENTS[0], lastTimestamp="0001-01-01T00:00:00+01:00")],
    )
    assert (report.start, report.end) == ("2024-05-01T12:02:00Z", "2024-05-01T12:02:00Z")
    assert [t.offset for t in report.ticks] == [0.0, 0.0]  # the unreadable one: at the start
    every_format(report)


def test_a_run_at_the_end_of_the_calendar_is_drawn_without_clocks_past_it() -> None:
    report = build_report(
        mangled(
            (("analysisHistory", 0, "started"), "9999-12-31T23:59:00Z"),
            (("analysisHistory", 0, "ticks", 0, "time"), "9999-12-31T23:59:00Z"),
            (("analysisHistory", 0, "ticks", 1, "time"), "9999-12-31T23:59:00Z"),
        ),
        [],
    )
    assert report.start == "9999-12-31T23:59:00Z"
    assert "23:59:00" in every_format(report)["svg"]


def test_lowercase_rfc3339_times_are_read() -> None:
    report = build_report(
        mangled(
            (("analysisHistory", 0, "started"), "2024-05-01t12:00:00z"),
            (("analysisHistory", 0, "ticks", 0, "time"), "2024-05-01t12:01:00z"),
            (("analysisHistory", 0, "ticks", 1, "time"), "2024-05-01t12:02:00z"),
        ),
        [],
    )
    assert report.start == "2024-05-01T12:00:00Z"
    assert [t.offset for t in report.ticks] == [60.0, 120.0]


# --------------------------------------------------------------------------- values


def test_an_outcome_no_judge_gives_is_drawn_as_unknown_and_holds_nothing() -> None:
    report = build_report(
        mangled((("analysisHistory", 0, "ticks", 0, "verdicts", 1, "outcome"), "Skipped")), EVENTS
    )
    (first, _) = metric(report, "latency").points
    assert (first.verdict.outcome, first.verdict.kind, first.verdict.holds) == (
        "Skipped",
        "unknown",
        False,
    )
    assert not report.ticks[0].held
    formats = every_format(report)
    root = ET.fromstring(formats["svg"])
    assert any(g.get("data-verdict") == "unknown" for g in root.iter(f"{SVG}g"))
    assert any(g.get("data-legend") == "unknown" for g in root.iter(f"{SVG}g"))
    assert not any(r.get("class") == "inconclusive-hold" for r in root.iter(f"{SVG}rect"))
    assert "□ Skipped 80" in formats["html"]
    # as recorded, Inconclusive: a hold, and no unknown outcome to explain in the legend
    report = build_report(canary(), EVENTS)
    assert report.ticks[0].held and metric(report, "latency").points[0].verdict.holds
    root = ET.fromstring(every_format(report)["svg"])
    assert not any(g.get("data-legend") == "unknown" for g in root.iter(f"{SVG}g"))


def test_numbers_beyond_the_float_range_are_no_numbers() -> None:
    huge = 10**400
    report = build_report(
        mangled(
            (("analysisHistory", 0, "ticks", 0, "verdicts", 1, "value"), huge),
            (("analysisHistory", 0, "ticks", 0, "verdicts", 1, "samples"), huge),
            (("analysis", 1, "details", "comparison", "dispersion"), huge),
            (("analysis", 1, "details", "comparison", "canarySamples"), huge),
        ),
        EVENTS,
    )
    latency = metric(report, "latency")
    assert (latency.points[0].verdict.value, latency.points[0].verdict.samples) == (None, None)
    assert latency.comparison.dispersion is None and latency.comparison.scatter == ""
    assert latency.comparison.canary_samples is None
    every_format(report)


def test_negative_counts_are_no_counts() -> None:
    report = build_report(
        mangled(
            (("analysisHistory", 0, "ticks", 0, "verdicts", 1, "samples"), -5),
            (("analysisHistory", 0, "ticks", 0, "weight"), -10),
            (("analysis", 1, "details", "comparison", "canarySamples"), -5),
            (("analysis", 1, "details", "comparison", "neededSamples"), -1),
        ),
        EVENTS,
    )
    latency = metric(report, "latency")
    assert latency.points[0].verdict.samples is None and report.ticks[0].weight == 0
    assert (latency.comparison.canary_samples, latency.comparison.needed_samples) == (None, None)
    assert "need ~" not in every_format(report)["html"]


# --------------------------------------------------------------------------- characters


def _hostile() -> dict[str, Any]:
    obj = mangled(
        (("analysisHistory", 0, "revision"), "main@" + EVIL + "\x00\ufffe"),
        (("analysisHistory", 0, "ticks", 0, "verdicts", 1, "name"), "lat\x1bency"),
        (("analysis", 1, "summary"), EVIL),
        (("message",), EVIL),
    )
    obj["metadata"]["name"] = "pod\x01info"
    return obj


def test_characters_xml_forbids_never_reach_the_svg_or_the_html() -> None:
    report = build_report(_hostile(), [dict(EVENTS[0], message="Rolling back: " + EVIL)])
    formats = every_format(report)
    assert "main@webhook said [2J]0;pwned[31mFAIL[0m" in formats["svg"]
    assert "test/podinfo" in formats["svg"] and "test/podinfo" in formats["html"]
    assert "Rolling back: webhook said [2J]0;pwned[31mFAIL[0m" in formats["html"]


@pytest.mark.skipif(shutil.which("rsvg-convert") is None, reason="needs rsvg-convert")
def test_a_status_with_control_characters_still_makes_a_png() -> None:
    report = build_report(_hostile(), [dict(EVENTS[0], message="Rolling back: " + EVIL)])
    assert render(report, ReportFormat.PNG).startswith(b"\x89PNG")


# --------------------------------------------------------------------------- any mangling


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(statuses())
def test_no_mangled_status_breaks_the_report(state: dict[str, Any]) -> None:
    every_format(build_report(canary(state), EVENTS))
