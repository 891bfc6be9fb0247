"""Sparklines per metric (canary.commands.sparkline): the exact blocks for given series, the
trend lines of a run, and ``canary status`` drawing them for a Canary with history."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from rich.console import Console

from canary.commands.history import glyph, history_view, requests_text
from canary.commands.sparkline import (
    Trend,
    last_run_sparks,
    levels,
    run_trends,
    scale,
    sparkline,
    styled_sparkline,
    trend_lines,
)
from canary.demo.ui import DemoView, render_panel

from .conftest import Cluster, Invoke

NAN = float("nan")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 3, 4, 5, 6, 7, 8], "▁▂▃▄▅▆▇█"),
        ([8, 7, 6, 5, 4, 3, 2, 1], "█▇▆▅▄▃▂▁"),
        ([0, 100], "▁█"),
        ([99.0, 99.5, 100.0], "▁▅█"),  # halfway: ▅
        ([5, 5, 5], "▄▄▄"),  # constant: mid-height
        ([42], "▄"),  # a single tick
        ([1, None, 8], "▁ █"),  # missing: a gap
        ([1, NAN, 8], "▁ █"),  # NaN (never stored, but never drawn either)
        ([1, float("inf"), 8], "▁ █"),
        ([None, 3.0], " ▄"),
        ([None, None], "  "),
        ([], ""),
        ([-1, 0, 1], "▁▅█"),  # halfway is 3.5 blocks up: rounded up to ▅
        ([0, 5, 14], "▁▄█"),  # 2.5 rounds up too (not to the even 2)
    ],
)
def test_sparkline_blocks(values: list[float | None], expected: str) -> None:
    assert sparkline(values) == expected


def test_levels_clamp_to_given_bounds_and_share_a_scale() -> None:
    assert levels([0, 50, 200], (0.0, 100.0)) == [0, 4, 7]  # 3.5 -> 4; 200 clamped to the top
    assert scale([1, None, 3], [0.5, NAN]) == (0.5, 3.0)
    assert scale([None], [NAN]) is None
    assert scale([True, 2.0]) == (2.0, 2.0)  # booleans are not numbers here
    canary, primary = [1.0, 4.0], [1.0, 1.0]
    shared = scale(canary, primary)
    assert (sparkline(canary, shared), sparkline(primary, shared)) == ("▁█", "▁▁")
    assert sparkline(primary) == "▄▄"  # on its own scale a flat line


def test_styled_sparkline_colours_each_block() -> None:
    text = styled_sparkline([1, None, 3], ["green", "", "red"])
    assert text.plain == "▁ █"
    assert [(s.start, s.end, str(s.style)) for s in text.spans] == [
        (0, 1, "green"),
        (2, 3, "red"),
    ]


TICKS: list[dict[str, Any]] = [
    {"weight": 10, "verdicts": [
        {"name": "request-success-rate", "outcome": "Inconclusive", "warmingUp": True},
        {"name": "latency", "outcome": "Pass", "value": 120, "primaryValue": 100},
    ]},
    {"weight": 20, "verdicts": [
        {"name": "request-success-rate", "outcome": "Pass", "value": 99.2},
        {"name": "latency", "outcome": "Pass", "value": 150, "primaryValue": 110},
    ]},
    {"weight": 30, "verdicts": [
        {"name": "request-success-rate", "outcome": "Fail", "value": 97.1},
        {"name": "latency", "outcome": "Fail", "value": 480, "primaryValue": 100},
    ]},
    {"weight": 30, "verdicts": [
        {"name": "request-success-rate", "outcome": "Pass", "value": 99.6},
    ]},
]  # fmt: skip


def _style(verdict: Mapping[str, Any]) -> str:
    return glyph(verdict)[1]


def test_run_trends_read_the_ticks() -> None:
    rate, latency = run_trends(TICKS, _style)
    assert rate == Trend(
        "request-success-rate",
        (None, 99.2, 97.1, 99.6),
        (None, None, None, None),
        ("blue", "green", "red", "green"),
    )
    assert not rate.compared
    assert latency.canary == (120.0, 150.0, 480.0, None)
    assert latency.primary == (100.0, 110.0, 100.0, None)
    assert latency.styles == ("green", "green", "red", "")
    assert latency.compared
    assert run_trends([]) == []
    assert run_trends([{"verdicts": "junk"}, {}]) == []


def test_trend_lines_exact_text() -> None:
    bounds = {"request-success-rate": ">= 99%", "latency": "<= 500ms"}
    lines = [line.plain for line in trend_lines(run_trends(TICKS, _style), bounds)]
    assert lines == [
        "request-success-rate           ▇▁█  97.1..99.6  bound >= 99%",
        "latency               canary  ▁▂█   100..480  bound <= 500ms",
        "                      primary ▁▁▁ ",
    ]
    assert trend_lines([]) == []
    alone = [line.plain for line in trend_lines(run_trends(TICKS[:1]))]
    assert alone == [
        "request-success-rate             no values",  # a gap: not measured yet
        "latency               canary  █  100..120",
        "                      primary ▁",
    ]


def test_trend_lines_colour_canary_blocks_by_verdict() -> None:
    first = trend_lines(run_trends(TICKS, _style))[0]
    blocks = {str(s.style) for s in first.spans if s.end - s.start == 1}
    assert {"green", "red"} <= blocks


def test_history_view_draws_the_sparklines_without_colour() -> None:
    history = [{"revision": "main@abc", "started": "t0", "ticks": TICKS}]
    analysis = [{"name": "request-success-rate", "threshold": ">= 99%"}]
    view = history_view(history, analysis, all_runs=False)
    console = Console(width=120, no_color=True, force_terminal=False, record=True)
    console.print(view)
    text = console.export_text()
    assert "request-success-rate           ▇▁█  97.1..99.6  bound >= 99%" in text
    assert "                      primary ▁▁▁" in text
    assert "\x1b[" not in text


def test_demo_panel_shows_a_trend_per_metric() -> None:
    view = DemoView(
        canary={
            "phase": "Progressing",
            "analysis": [
                {"name": "request-success-rate", "outcome": "Pass", "value": 99.6},
                {"name": "latency", "outcome": "Fail", "value": 480, "primaryValue": 100},
            ],
            "analysisHistory": [{"revision": "r", "started": "t", "ticks": TICKS}],
        },
        thresholds={"request-success-rate": ">= 99%"},
    )
    console = Console(width=140, no_color=True, force_terminal=False, record=True)
    console.print(render_panel(view, width=140))
    text = console.export_text()
    rows = [line.strip("│ ") for line in text.splitlines()]
    assert next(r for r in rows if "request-success-rate" in r).endswith("Pass       ▇▁█")
    assert next(r for r in rows if "latency" in r).endswith("Fail      ▁▂█")
    assert "▁▁▁" in rows  # the primary's line, under the canary's


STATUS: dict[str, Any] = {
    "phase": "Progressing",
    "canaryWeight": 30,
    "currentRevision": "main@sha1:0123456789abcdef0123456789abcdef01234567",
    "analysis": [
        {"name": "request-success-rate", "outcome": "Pass", "summary": "ok", "value": 99.6,
         "threshold": ">= 99%", "time": "2024-05-01T11:04:00Z"},
    ],
    "analysisHistory": [
        {"revision": "main@sha1:0123456789abcdef0123456789abcdef01234567",
         "started": "2024-05-01T11:00:00Z",
         "ticks": [{"time": f"2024-05-01T11:0{i}:00Z", **tick} for i, tick in enumerate(TICKS)]},
    ],
}  # fmt: skip


def test_canary_status_shows_a_sparkline_per_metric(cli: Invoke, cluster: Cluster) -> None:
    cluster.canary("podinfo", status=STATUS)
    args = ["status", "podinfo", "-n", "test", "--events", "0", "--kubeconfig", cluster.kubeconfig]
    text = cli(*args).stdout
    assert "request-success-rate           ▇▁█  97.1..99.6  bound >= 99%" in text
    assert "latency               canary  ▁▂█   100..480" in text
    assert "                      primary ▁▁▁" in text
    assert "\x1b[" not in text  # piped: no escape codes, the text says it all


def test_last_run_sparks_draw_the_newest_run() -> None:
    history = [
        {"revision": "old", "ticks": [{"verdicts": [{"name": "latency", "value": 1}]}]},
        {"revision": "new", "ticks": TICKS},
    ]
    sparks = last_run_sparks(history, _style)
    assert {name: text.plain for name, text in sparks.items()} == {
        "request-success-rate": " ▇▁█",
        "latency": "▁▂█ \n▁▁▁ ",  # the primary's line under the canary's
    }
    assert last_run_sparks(history, ticks=2)["request-success-rate"].plain == "▁█"
    assert last_run_sparks(None) == last_run_sparks([]) == last_run_sparks("junk") == {}
    assert last_run_sparks([{"ticks": "junk"}]) == {}


@pytest.mark.parametrize(
    ("comparison", "shown"),
    [
        ({"canarySamples": 1840, "primarySamples": 16000}, "1,840 / 16,000"),
        (
            {"canarySamples": 1840, "primarySamples": 16000, "neededSamples": 3200},
            "1,840 / 16,000 (need ~3,200)",
        ),
        (
            {
                "canarySamples": 4000,
                "primarySamples": 36000,
                "neededSamples": 25455,
                "dispersion": 6.83,
            },
            "4,000 / 36,000 (need ~25,455, scatter x6.8)",
        ),
        (
            {
                "canarySamples": 4000,
                "primarySamples": 36000,
                "neededSamples": 8246,
                "dispersion": 1.2,
            },
            "4,000 / 36,000 (need ~8,246)",
        ),
    ],
)
def test_the_requests_column_says_why_so_many_are_needed(
    comparison: dict[str, Any], shown: str
) -> None:
    assert requests_text({"details": {"comparison": comparison}}) == shown
