"""build_report: a run of the recorded history, its verdicts, the judge's evidence, decisions."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from canary.report.model import RunChoiceError, build_report
from tests.report._data import FIRST, GOOD, SECOND, canary, events


def test_the_last_run_by_default() -> None:
    report = build_report(canary(), events())
    assert report.run is not None
    assert (report.run.number, report.run.revision, report.run.result) == (2, SECOND, "")
    assert [r.revision for r in report.runs] == [FIRST, SECOND]
    assert [t.weight for t in report.ticks] == [10, 10]
    assert report.threshold == 2 and report.max_weight == 50


def test_a_run_is_chosen_by_number_from_the_oldest_or_from_the_end() -> None:
    first = build_report(canary(), events(), run=1)
    assert first.run is not None and first.run.revision == FIRST
    assert build_report(canary(), events(), run=-2).run == first.run
    assert first.run.result == "Failed"
    # The failing run: the values per tick, the failed checks accumulating to the threshold.
    rate = next(m for m in first.metrics if m.name == "request-success-rate")
    assert [p.verdict.value for p in rate.points] == [99.9, 92.1, 91.5]
    assert [p.verdict.kind for p in rate.points] == ["pass", "fail", "fail"]
    assert (rate.low, rate.high, rate.unit) == (99.0, None, "%")
    assert [t.failed_checks for t in first.ticks] == [0, 1, 2]
    assert [m.name for m in first.metrics] == ["request-success-rate", "request-duration"]


@pytest.mark.parametrize("run", [3, -3, 7])
def test_a_run_the_history_does_not_keep_is_an_error(run: int) -> None:
    with pytest.raises(RunChoiceError, match="keeps 2 run"):
        build_report(canary(), events(), run=run)


def test_compare_metric_carries_the_judges_evidence_and_the_holds() -> None:
    report = build_report(canary(), events())
    errors = next(m for m in report.metrics if m.name == "error-rate")
    assert errors.compare
    assert [(p.verdict.value, p.verdict.primary_value) for p in errors.points] == [
        (0.8, 0.5),
        (0.6, 0.55),
    ]
    assert [p.verdict.samples for p in errors.points] == [120, 1840]
    assert [p.verdict.kind for p in errors.points] == ["inconclusive", "pass"]
    assert [t.held for t in report.ticks] == [True, False]
    c = errors.comparison
    assert c is not None
    assert (c.canary_samples, c.primary_samples, c.needed_samples) == (1840, 16000, 3200)
    assert (c.p_value, c.likelihood_ratio, c.test) == (0.031, 24.5, "ratio")
    assert (c.dispersion, c.scatter) == (6.83, "scatter x6.8")
    assert replace(c, dispersion=1.2).scatter == "" and replace(c, dispersion=None).scatter == ""
    # An earlier run has no evidence: status.analysis is the newest tick's.
    first = build_report(canary(), events(), run=1)
    assert all(m.comparison is None for m in first.metrics)


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ({"stepWeights": [10, 25, 50]}, 50),
        ({"stepWeights": [10, 25, 50], "maxWeight": 80}, 50),  # Flagger: the steps win
        ({"maxWeight": 30, "stepWeight": 10}, 30),
        ({"stepWeight": 10}, 0),  # no line: neither is declared
    ],
)
def test_max_weight_is_the_controllers_last_step_for_step_weights(
    weights: dict[str, object], expected: int
) -> None:
    """The report's maxWeight is where the controller stops stepping: the last
    ``stepWeights`` entry when there are steps (a ``maxWeight`` is then ignored), else
    ``maxWeight``; it read ``maxWeight`` alone, 0 for every ``stepWeights`` canary."""
    doc = canary()
    analysis = doc["spec"]["analysis"]
    del analysis["maxWeight"], analysis["stepWeight"]
    analysis.update(weights)
    report = build_report(doc, events())
    assert report.max_weight == expected
    assert report.to_dict()["maxWeight"] == expected


def test_decisions_come_from_the_events_of_the_run_window() -> None:
    first = build_report(canary(), events(), run=1)
    assert [(m.kind, m.label) for m in first.markers] == [
        ("transition", "new revision"),
        ("transition", "analysis started"),
        ("rollback", "rollback"),
        ("rollback", "failed"),
        ("revert", "Git reverted"),
    ]
    assert first.start == "2024-05-01T09:59:00Z"  # the new revision, a minute before
    assert first.markers[0].offset == 0.0
    second = build_report(canary(), events())
    assert [m.label for m in second.markers] == [
        "new revision",
        "analysis started",
        "gate: promotion",
    ]


def test_the_revert_is_shown_with_the_run_it_reverted() -> None:
    first = build_report(canary(), events(), run=1)
    assert first.revert is not None
    assert (first.revert.bad_revision, first.revert.good_revision) == (FIRST, GOOD)
    assert first.revert.commit == "c0ffee1234567890"
    assert build_report(canary(), events()).revert is None


def test_the_run_end_is_marked_even_when_its_events_expired() -> None:
    report = build_report(canary(), [], run=1)
    assert [(m.kind, m.label) for m in report.markers] == [("rollback", "rolled back")]
    assert report.markers[0].time == "2024-05-01T10:04:00Z"


def test_no_history_is_an_empty_report_not_an_error() -> None:
    obj = canary()
    obj["status"] = {"phase": "Initialized"}
    report = build_report(obj, [])
    assert report.run is None and report.ticks == () and report.phase == "Initialized"
    with pytest.raises(RunChoiceError):
        build_report(obj, [], run=2)


def test_malformed_status_reads_leniently() -> None:
    obj = canary()
    obj["status"]["analysisHistory"] = [
        "junk",
        {"revision": 3, "ticks": [{"time": "not a time", "weight": "x", "verdicts": [1]}]},
    ]
    report = build_report(obj, [{"message": None}])
    assert report.run is not None and len(report.ticks) == 1


def test_to_dict_is_json() -> None:
    data = build_report(canary(), events()).to_dict()
    text = json.dumps(data)
    assert data["run"]["revision"] == SECOND
    assert data["metrics"][1]["comparison"]["neededSamples"] == 3200
    assert data["ticks"][0]["verdicts"][1]["primaryValue"] == 0.5
    assert "failedChecks" in text


def test_a_repeated_event_counts_in_the_later_run_at_its_last_time() -> None:
    """The API keeps a repeated message as one Event (count, first and last time): the second
    run's "New revision detected" is that Event's last time, and the run before it ends before
    the second run's window starts, even when the two runs are close (a fast demo)."""
    aggregated = [
        {
            "type": "Normal",
            "reason": "Synced",
            "message": "New revision detected! Scaling up podinfo.test",
            "count": 2,
            "firstTimestamp": "2024-05-01T09:59:00Z",
            "lastTimestamp": "2024-05-01T10:59:00Z",
        },
        *[e for e in events() if not e["message"].startswith("New revision")],
    ]
    second = build_report(canary(), aggregated)
    revisions = [m for m in second.markers if m.label == "new revision"]
    assert [m.time for m in revisions] == ["2024-05-01T10:59:00Z"]
    assert all(m.time >= "2024-05-01T10:04:01Z" for m in second.markers), second.markers
    first = build_report(canary(), aggregated, run=1)
    assert [m.time for m in first.markers if m.label == "new revision"] == ["2024-05-01T09:59:00Z"]
