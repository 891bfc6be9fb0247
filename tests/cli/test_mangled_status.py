"""``canary get``, ``status`` and ``wait`` on a mangled status: nothing crashes, nothing misleads.

A status edited by hand, kept by an older CRD or half written may hold any JSON value in any
field. The views show what can be read and leave out the rest: a scalar where a list belongs
is an empty list, a value that is not a finite number is ``-`` (``null`` in JSON), a negative
count is no count, an outcome no judge gives is drawn as unknown, and no control character
of the status reaches the terminal. The JSON outputs are strict JSON.
"""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from rich.console import Console, RenderableType

from canary.commands import wait
from canary.commands._common import Output, dump
from canary.commands.cluster import ClusterOptions
from canary.commands.history import LEGEND, glyph, history_view, requests_text
from canary.commands.release import Outcome, Verdict, Wanted
from canary.commands.show import _stream, age, canary_detail, canary_row, render_detail, render_rows
from canary.commands.wait import Ending, Result, Seen, WaitRequest, progress_line

from ._mangled import EVENTS, EVIL, NOW, canary, mangled, statuses, strict_json

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def shown(renderable: RenderableType, *, colour: bool = False) -> str:
    """What a terminal receives (``colour``: a colour terminal, with rich's own styles)."""
    console = Console(
        file=io.StringIO(),
        width=160,
        color_system="truecolor" if colour else None,
        force_terminal=colour,
    )
    console.print(renderable)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(output, str)
    return output


def status_text(obj: dict[str, Any], *, all_runs: bool = True) -> str:
    return shown(render_detail(canary_detail(obj, EVENTS), NOW, all_runs=all_runs))


def row_of(text: str, name: str) -> str:
    """The line of ``text`` that starts with ``name`` (a table row)."""
    return next(line for line in text.splitlines() if line.startswith(name))


def waiting(reason: str = "waiting for the analysis") -> Verdict:
    return Verdict(Outcome.WAITING, Wanted(), reason)


# --------------------------------------------------------------------------- wrong types


@pytest.mark.parametrize(
    "field", ["analysis", "analysisHistory", "pendingAlerts", "knownBad", "conditions"]
)
@pytest.mark.parametrize("value", [5, 1.5, True])
def test_a_number_where_a_list_belongs_reads_as_nothing_recorded(field: str, value: Any) -> None:
    obj = mangled(((field,), value))
    detail = canary_detail(obj, EVENTS)
    assert detail[field] == []
    text = status_text(obj)
    assert text.startswith("podinfo.test  Progressing")
    assert "weight 30/50%" in text
    assert strict_json(dump(detail, Output.JSON))[field] == []
    assert "podinfo" in shown(render_rows([canary_row(obj)], NOW))


def test_wait_reads_a_number_where_the_verdicts_belong_as_no_verdicts() -> None:
    obj = mangled((("analysis",), 5))
    line = progress_line(Seen(obj), waiting())
    assert line == "Progressing  weight 30%  2/5 failed checks  · waiting for the analysis"


def test_alert_destinations_and_known_bad_images_written_as_one_text_are_one_entry() -> None:
    obj = mangled(
        (("pendingAlerts", 0, "destinations"), "slack"), (("knownBad", 0, "images"), "nginx:1.2")
    )
    text = status_text(obj)
    assert "Failed waiting 30m for slack" in text
    assert "r1  nginx:1.2  (2024)" in text


def test_alert_destinations_and_known_bad_images_that_are_no_text_are_none() -> None:
    obj = mangled((("pendingAlerts", 0, "destinations"), 5), (("knownBad", 0, "images"), 5))
    text = status_text(obj)
    assert "Failed waiting 30m for -" in text
    assert "r1  configuration  (2024)" in text


def test_the_age_of_a_pending_alert_is_counted_from_the_moment_given() -> None:
    later = datetime(2024, 5, 1, 17, 0, tzinfo=UTC)
    detail = canary_detail(canary(), EVENTS)
    assert "Failed waiting 5h for slack" in shown(render_detail(detail, later))


@pytest.mark.parametrize("outcome", [["Fail"], {"a": 1}, 5])
def test_a_verdict_outcome_that_is_no_text_is_drawn_as_unknown(outcome: Any) -> None:
    assert glyph({"name": "latency", "outcome": outcome}) == ("?", "magenta")
    obj = mangled((("analysisHistory", 0, "ticks", 0, "verdicts", 1, "outcome"), outcome))
    text = status_text(obj)
    assert re.search(r"^latency\s+\?✓\s+Pass", text, re.MULTILINE), text


@pytest.mark.parametrize("outcome", ["Skipped", "", "pass", "inconclusive"])
def test_an_outcome_no_judge_gives_is_drawn_as_unknown_not_as_inconclusive(outcome: str) -> None:
    assert glyph({"outcome": outcome}) == ("?", "magenta")
    assert glyph({"outcome": "Inconclusive"})[0] == "…"
    history = canary()["status"]["analysisHistory"]
    for tick in history[0]["ticks"]:
        for verdict in tick["verdicts"]:
            verdict["outcome"] = outcome
    text = shown(history_view(history, [], all_runs=False))
    assert re.search(r"^latency\s+\?\?\s", text, re.MULTILINE), text
    assert "? unknown outcome" in LEGEND and LEGEND in text.replace("\n", "")


def test_a_boolean_value_is_shown_as_no_value() -> None:
    obj = mangled((("analysis", 1, "value"), True))
    assert re.match(r"latency\s+Inconclusive\s+-\s+<= 500ms", row_of(status_text(obj), "latency"))


def test_numbers_beyond_the_float_range_are_shown_as_no_value() -> None:
    huge = 10**400
    obj = mangled(
        (("analysis", 1, "value"), huge),
        (("analysis", 1, "details", "comparison", "dispersion"), huge),
        (("analysis", 0, "details", "state", "canary"), [huge, 1]),
        (("analysisHistory", 0, "ticks", 1, "verdicts", 1, "value"), huge),
    )
    text = status_text(obj, all_runs=False)
    assert re.match(
        r"latency\s+Inconclusive\s+-\s+<= 500ms\s+1,840 / 16,000 \(need ~3,200\)\s",
        row_of(text, "latency"),
    )
    assert (
        strict_json(dump(canary_detail(obj, EVENTS), Output.JSON))["analysis"][1]["value"] is None
    )


def test_negative_counts_of_requests_are_not_shown() -> None:
    comparison = {"canarySamples": -5, "primarySamples": -7, "neededSamples": -1}
    assert requests_text({"details": {"comparison": comparison}}) == "-"
    comparison = {"canarySamples": 1840, "primarySamples": 16000, "neededSamples": -1}
    assert requests_text({"details": {"comparison": comparison}}) == "1,840 / 16,000"
    state = {"canary": [-5, 1], "primary": [900, 9]}
    assert requests_text({"details": {"judge": "threshold", "state": state}}) == (
        "0 / 900 (last compared)"
    )


def test_a_negative_weight_or_count_of_failed_checks_reads_as_none() -> None:
    row = canary_row(mangled((("canaryWeight",), -30), (("failedChecks",), -2)))
    assert (row["canaryWeight"], row["failedChecks"]) == (0, 0)


# --------------------------------------------------------------------------- times


def test_lowercase_rfc3339_times_are_read() -> None:
    assert age("2024-05-01t12:01:00z", NOW) == "29m"
    assert age("2024-05-01t14:01:00+02:00", NOW) == "29m"


def test_a_time_whose_utc_form_is_outside_the_calendar_is_unreadable() -> None:
    assert age("0001-01-01T00:00:00+01:00", NOW) == "-"
    assert age("9999-12-31T23:59:59-01:00", NOW) == "-"


# --------------------------------------------------------------------------- strict JSON


def _non_finite() -> dict[str, Any]:
    return mangled(
        (("analysis", 1, "value"), float("nan")),
        (("analysis", 1, "primaryValue"), float("inf")),
        (("analysis", 0, "value"), 10**400),
    )


def test_status_json_holds_numbers_json_cannot_hold_as_null() -> None:
    found = strict_json(dump(canary_detail(_non_finite(), EVENTS), Output.JSON))
    assert found["analysis"][1]["value"] is None
    assert found["analysis"][1]["primaryValue"] is None
    assert found["analysis"][0]["value"] is None
    assert found["analysis"][1]["details"]["comparison"]["canary"] == 81.0


def test_status_watch_streams_strict_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    _stream(Output.JSON)(canary_detail(_non_finite(), EVENTS))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert strict_json(lines[0])["analysis"][1]["value"] is None


def test_wait_json_holds_numbers_json_cannot_hold_as_null(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    obj = _non_finite()
    moment = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    async def follow(*_: Any) -> Ending:
        verdict = Verdict(Outcome.PROMOTED, Wanted(), "promoted", current_run=True)
        return Ending(Result.PROMOTED, verdict, Seen(obj), moment, moment)

    monkeypatch.setattr(wait, "follow", follow)
    monkeypatch.setattr(wait, "run_with_kube", lambda _options, work: asyncio.run(work(None)))
    request = WaitRequest("podinfo", "test", "", "", 60.0, "1m")
    code = wait._run(ClusterOptions(None, None), request, Output.JSON)
    assert code == 0
    found = strict_json(capsys.readouterr().out)
    assert found["result"] == "Promoted"
    assert [m["value"] for m in found["analysis"]] == [None, None]


# --------------------------------------------------------------------------- control characters


def _hostile() -> dict[str, Any]:
    obj = mangled(
        (("message",), EVIL + "\nsecond line"),
        (("stalled",), EVIL),
        (("currentRevision",), "main@" + EVIL),
        (("analysis", 0, "summary"), EVIL),
        (("analysis", 1, "name"), "lat\x1b[8mency"),
        (("analysisHistory", 0, "revision"), EVIL),
        (("conditions", 0, "message"), EVIL),
        (("gitRevert", "message"), EVIL),
        (("knownBad", 0, "images"), [EVIL]),
        (("pendingAlerts", 0, "kind"), EVIL),
    )
    obj["metadata"]["name"] = "pod\x1b[2Jinfo"
    return obj


@pytest.mark.parametrize("colour", [False, True])
def test_control_characters_of_the_status_never_reach_the_terminal(colour: bool) -> None:
    obj = _hostile()
    events = [dict(EVENTS[0], message=EVIL, reason="\x07Synced")]
    text = shown(render_detail(canary_detail(obj, events), NOW, all_runs=True), colour=colour)
    for sequence in ("\x1b[2J", "\x1b]0;", "\x07", "\x1b[31mFAIL", "\x1b[8m"):
        assert sequence not in text
    if not colour:
        assert not CONTROL.search(text)
        assert text.startswith("pod[2Jinfo.test  Progressing")
        assert "webhook said [2J]0;pwned[31mFAIL[0m" in text
        assert re.search(r"^\s+second line", text, re.MULTILINE)  # a line break is kept
    rows = shown(render_rows([canary_row(obj)], NOW), colour=colour)
    assert "\x1b[2J" not in rows and "\x07" not in rows
    if not colour:
        assert not CONTROL.search(rows)


def test_the_progress_line_of_wait_carries_no_control_character_nor_line_break() -> None:
    obj = mangled((("phase",), "Progressing"), (("analysis", 0, "name"), "rate\x1b[2J\nx"))
    line = progress_line(Seen(obj), waiting("waiting: " + EVIL))
    assert not CONTROL.search(line) and "\n" not in line
    assert "rate[2J x Pass" in line and line.endswith("webhook said [2J]0;pwned[31mFAIL[0m")


# --------------------------------------------------------------------------- any mangling


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(statuses())
def test_no_mangled_status_breaks_get_status_or_wait(state: dict[str, Any]) -> None:
    obj = canary(state)
    detail = canary_detail(obj, EVENTS)
    for all_runs in (False, True):
        text = shown(render_detail(detail, NOW, all_runs=all_runs))
        assert text.startswith("podinfo.test") and not CONTROL.search(text)
    assert not CONTROL.search(shown(render_rows([canary_row(obj)], NOW)))
    strict_json(dump(detail, Output.JSON))
    strict_json(dump({"items": [canary_row(obj)]}, Output.JSON))
    dump(detail, Output.YAML)
    line = progress_line(Seen(obj), waiting())
    assert not CONTROL.search(line) and "\n" not in line
