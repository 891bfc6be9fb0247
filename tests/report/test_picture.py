"""decision_svg: a well-formed, self-contained picture with the facts in the right places."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from canary.report.model import DecisionReport, build_report
from canary.report.picture import COLOURS, decision_svg, nice_ticks
from tests.report._data import canary, events

SVG = "{http://www.w3.org/2000/svg}"


def parse(report: DecisionReport) -> ET.Element:
    return ET.fromstring(decision_svg(report))


def by_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if cls in (e.get("class") or "").split()]


def texts(element: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in element.iter(f"{SVG}text")]


def test_it_is_self_contained_svg() -> None:
    svg = decision_svg(build_report(canary(), events()))
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert "<script" not in svg.lower() and "http://" not in svg.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert "href" not in svg and "@import" not in svg


def test_axes_are_labelled_with_units() -> None:
    root = parse(build_report(canary(), events(), run=1))
    labels = [" ".join(texts(e)) for e in by_class(root, "axis-label")]
    assert "weight (%)" in labels
    assert "%" in labels  # request-success-rate
    assert "ms" in labels  # request-duration
    assert any(label.startswith("time (min:s since 2024-05-01T09:59:00Z") for label in labels)
    titles = [" ".join(texts(e)) for e in by_class(root, "panel-title")]
    assert "request-duration (ms) · threshold <= 500ms" in titles
    assert "Failed checks (rollback at 2)" in titles


def test_one_marker_per_decision_labelled() -> None:
    report = build_report(canary(), events(), run=1)
    root = parse(report)
    decisions = by_class(root, "decision")
    assert [d.get("data-kind") for d in decisions] == [m.kind for m in report.markers]
    assert [" ".join(texts(d)) for d in decisions] == [
        "new revision",
        "analysis started",
        "rollback",
        "failed",
        "Git reverted",
    ]


def test_each_tick_is_drawn_in_its_verdicts_class_colour_and_shape() -> None:
    root = parse(build_report(canary(), events(), run=1))
    (rate,) = [
        g for g in by_class(root, "metric") if g.get("data-metric") == "request-success-rate"
    ]
    marks = by_class(rate, "verdict")
    assert [m.get("data-verdict") for m in marks] == ["pass", "fail", "fail"]
    assert "verdict-fail" in (marks[1].get("class") or "")
    shape = next(iter(marks[1].iter(f"{SVG}path")))
    assert shape.get("stroke") == COLOURS["fail"]
    assert next(iter(marks[0].iter(f"{SVG}circle"))).get("fill") == COLOURS["pass"]
    assert "92.1%" in "".join(marks[1].itertext())  # the hover title says the value
    # the failed checks accumulate: bars of 1 then 2 against a threshold line at 2
    bars = by_class(root, "failed-check")
    assert [b.get("data-count") for b in bars] == ["1", "2"]
    assert by_class(root, "threshold-checks")[0].get("data-value") == "2"


def _axis(group: ET.Element) -> tuple[float, float, float, float]:
    """Two (value, y) of the group's y axis."""
    ticks = by_class(group, "y-tick")
    (a, b) = ticks[0], ticks[-1]
    # the tick labels sit 4 px below their value's line
    return (
        float(a.get("data-value") or 0),
        float(a.get("y") or 0) - 4,
        float(b.get("data-value") or 0),
        float(b.get("y") or 0) - 4,
    )


@pytest.mark.parametrize(
    ("metric", "edge", "value"),
    [("request-success-rate", "bottom", 99.0), ("request-duration", "top", 500.0)],
)
def test_the_threshold_band_is_where_the_axis_says(metric: str, edge: str, value: float) -> None:
    root = parse(build_report(canary(), events(), run=1))
    (group,) = [g for g in by_class(root, "metric") if g.get("data-metric") == metric]
    v1, y1, v2, y2 = _axis(group)

    def y(v: float) -> float:
        return y1 + (v - v1) * (y2 - y1) / (v2 - v1)

    (band,) = by_class(group, "threshold-band")
    top = float(band.get("y") or 0)
    bottom = top + float(band.get("height") or 0)
    assert abs((bottom if edge == "bottom" else top) - y(value)) < 1.0
    # the passing value sits inside the band, the failing one below it
    marks = by_class(group, "verdict")
    if metric == "request-success-rate":
        passing = float(next(marks[0].iter(f"{SVG}circle")).get("cy") or 0)
        assert top <= passing <= bottom
        failing = by_class(group, "series-canary")[0].get("points", "").split()[1]
        assert float(failing.split(",")[1]) > bottom


def test_compare_metric_shows_both_lines_samples_and_the_hold() -> None:
    root = parse(build_report(canary(), events()))
    (group,) = [g for g in by_class(root, "metric") if g.get("data-metric") == "error-rate"]
    assert by_class(group, "series-primary") and by_class(group, "series-canary")
    assert [" ".join(texts(s)) for s in by_class(group, "samples")] == ["n=120", "n=1,840"]
    assert len(by_class(group, "inconclusive-hold")) == 1
    caption = " ".join(" ".join(texts(e)) for e in by_class(root, "caption-compare"))
    assert "samples 1,840 canary / 16,000 primary" in caption
    assert "need ~3,200 (scatter x6.8)" in caption and "p = 0.031" in caption


def _rate_holds(may_advance: bool) -> list[ET.Element]:
    doc = canary()
    tick = doc["status"]["analysisHistory"][1]["ticks"][0]
    tick["verdicts"][1]["mayAdvance"] = may_advance
    root = parse(build_report(doc, events()))
    (group,) = [g for g in by_class(root, "metric") if g.get("data-metric") == "error-rate"]
    return by_class(group, "inconclusive-hold")


def test_an_inconclusive_verdict_that_may_advance_is_not_hatched_as_a_hold() -> None:
    """``mayAdvance``: the weight stepped up to collect data, it did not hold (the model's
    `Tick.held` says so too); the hatch marks only the ticks that held for more data."""
    assert len(_rate_holds(may_advance=False)) == 1
    assert _rate_holds(may_advance=True) == []


def test_the_max_weight_line_of_step_weights_is_at_the_last_step() -> None:
    """A ``stepWeights`` canary stops at its last step (the controller's maxWeight), so
    the weight panel draws its line there, not nowhere."""
    doc = canary()
    analysis = doc["spec"]["analysis"]
    del analysis["maxWeight"], analysis["stepWeight"]
    analysis["stepWeights"] = [10, 25, 50]
    root = parse(build_report(doc, events()))
    assert len(by_class(root, "max-weight")) == 1
    assert "maxWeight 50%" in texts(root)


def test_the_revert_is_in_the_caption() -> None:
    root = parse(build_report(canary(), events(), run=1))
    caption = " ".join(" ".join(texts(e)) for e in by_class(root, "caption-revert"))
    assert "Reverted" in caption and "commit c0ffee1234567890" in caption
    assert "bad main@sha1:aaaaaaaaaaaa → good main@sha1:9999999" in caption


def test_hostile_names_stay_text() -> None:
    obj = canary(metric='<script>alert("x")</script>&')
    obj["metadata"]["name"] = "<img src=x onerror=alert(1)>"
    hostile = [
        {
            "type": "Warning",
            "message": 'Rolling back <script>alert("m")</script>',
            "lastTimestamp": "2024-05-01T10:04:00Z",
        }
    ]
    svg = decision_svg(build_report(obj, hostile, run=1))
    root = ET.fromstring(svg)
    assert "<script" not in svg and "<img" not in svg
    assert not list(root.iter(f"{SVG}script"))
    assert any('<script>alert("x")</script>&' in t for t in texts(root))


def test_an_empty_report_still_draws() -> None:
    obj = canary()
    obj["status"] = {"phase": "Initialized"}
    root = parse(build_report(obj, []))
    assert "No analysis tick is recorded for this canary yet." in texts(root)


def test_nice_ticks_cover_the_range() -> None:
    ticks = nice_ticks(91.2, 100.4)
    assert ticks[0] <= 91.2 and ticks[-1] >= 100.4 and len(ticks) <= 8
