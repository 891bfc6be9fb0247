"""The dashboard's pages on a mangled status: rendered, with what can be read, and clean HTML.

Pure (views and the picture), no cluster and no browser: a scalar where the verdicts belong
is no verdicts, a value that is not a finite number is ``-``, and no control character of
the status or its Events reaches the page.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings

from canary.commands.show import event_row
from canary.dashboard import views
from canary.report.model import build_report
from canary.report.picture import decision_svg
from tests.cli._mangled import EVENTS, EVIL, NOW, canary, mangled, statuses

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]")


def detail_page(obj: dict[str, Any], events: list[dict[str, Any]] = EVENTS) -> str:
    detail = views.Detail(
        obj=obj,
        picture=decision_svg(build_report(obj, events)),
        events=[event_row(e) for e in events],
    )
    return views.detail_live(detail, None, NOW)


def verdict_row(page: str, metric: str) -> str:
    found = re.search(rf'<tr data-metric="{metric}".*?</tr>', page)
    assert found, page
    return found.group(0)


def test_a_number_where_the_verdicts_belong_shows_no_verdicts() -> None:
    obj = mangled((("analysis",), 5))
    assert '<p class="muted" id="verdicts">No verdicts yet.</p>' in detail_page(obj)
    listed = views.list_live([obj], None, None, NOW)
    assert '<td class="num weight">30% / 70%</td>' in listed
    assert '<span class="muted">-</span>' in listed  # no verdict chips


def test_values_that_are_no_finite_numbers_show_as_no_value() -> None:
    page = detail_page(
        mangled((("analysis", 0, "value"), 10**400), (("analysis", 1, "value"), True))
    )
    assert '<td class="num">-</td>' in verdict_row(page, "request-success-rate")
    assert '<td class="num">-</td>' in verdict_row(page, "latency")


def test_negative_counts_are_no_counts() -> None:
    obj = mangled((("canaryWeight",), -30), (("failedChecks",), -2))
    listed = views.list_live([obj], None, None, NOW)
    assert '<td class="num weight">0% / 100%</td><td class="num">0</td>' in listed
    assert "<dt>Failed checks</dt><dd>0</dd>" in detail_page(obj)


def test_control_characters_never_reach_the_page() -> None:
    obj = mangled(
        (("message",), EVIL),
        (("analysis", 0, "summary"), EVIL),
        (("gitRevert", "message"), EVIL),
        (("currentRevision",), "main@\x1b[2J"),
    )
    page = detail_page(obj, [dict(EVENTS[0], message=EVIL)])
    assert not CONTROL.search(page)
    assert '<span id="message">webhook said [2J]0;pwned[31mFAIL[0m</span>' in page
    assert not CONTROL.search(views.list_live([obj], None, None, NOW))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(statuses())
def test_no_mangled_status_breaks_the_dashboard(state: dict[str, Any]) -> None:
    obj = canary(state)
    page = detail_page(obj)
    assert '<h2 id="title"' in page and not CONTROL.search(page)
    assert not CONTROL.search(views.list_live([obj], None, None, NOW))
