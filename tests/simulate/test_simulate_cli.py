"""`canary simulate` as a user runs it: the shipped examples, the JSON contract, bad input.

The examples must show Flagger's tick-by-tick behaviour (reference/flagger.md 2.3):
a step-10/max-50 canary promotes after Flagger's ticks, and a canary with
threshold 2 rolls back on the tick after its second failed check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from canary.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "simulate"
runner = CliRunner()


def simulate_run(canary: str | Path, scenario: str | Path, *extra: str) -> Result:
    """``canary simulate``; a ``str`` names a shipped example, a ``Path`` is a file."""
    return runner.invoke(
        app,
        [
            "simulate",
            str(EXAMPLES / canary if isinstance(canary, str) else canary),
            "-s",
            str(EXAMPLES / scenario if isinstance(scenario, str) else scenario),
            *extra,
        ],
    )


def simulate_json(canary: str | Path, scenario: str | Path, *extra: str) -> list[dict[str, Any]]:
    """The JSON rows of a run (see :func:`simulate_run`)."""
    result = simulate_run(canary, scenario, "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def example(name: str) -> dict[str, Any]:
    """A shipped example Canary, to change one field of in a test."""
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return doc


def written(tmp_path: Path, name: str, content: dict[str, Any] | str) -> Path:
    """``content`` (a Canary as data, or a scenario's text) in a file of ``tmp_path``."""
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


def first_tick(rows: list[dict[str, Any]], phase: str) -> int:
    return int(next(r["tick"] for r in rows if r["phase"] == phase))


class TestShippedExamples:
    def test_good_release_promotes_after_flaggers_ticks(self) -> None:
        rows = simulate_json("podinfo.yaml", "good-release.yaml")
        detected = first_tick(rows, "Progressing")
        # Flagger 2.3: tick1 detect, tick2..6 weights 10..50, tick7 promote, tick8 finalise, tick9 done.
        weights = [
            r["canaryWeight"] for r in rows if r["tick"] > detected and r["phase"] == "Progressing"
        ]
        assert weights == [10, 20, 30, 40, 50]
        assert first_tick(rows, "Promoting") == detected + 6
        assert first_tick(rows, "Finalising") == detected + 7
        assert first_tick(rows, "Succeeded") == detected + 8
        assert rows[-1]["lastGoodRevision"] == "main@sha1:2222222"

    def test_bad_release_rolls_back_on_the_tick_after_the_second_failure(self) -> None:
        rows = simulate_json("podinfo.yaml", "bad-release.yaml")
        failures = [r["tick"] for r in rows if any("Halt" in e["message"] for e in r["events"])]
        assert len(failures) == 2 and failures[1] == failures[0] + 1
        rolled_back = first_tick(rows, "Failed")
        assert rolled_back == failures[1] + 1
        row = rows[rolled_back - 1]
        assert row["primaryWeight"] == 100 and row["canaryWeight"] == 0
        assert {
            "kind": "ThresholdReached",
            "severity": "error",
            "message": "Failed checks threshold reached 2",
        } in row["alerts"]
        reverted = [r for r in rows if r["gitRevert"] and r["gitRevert"]["state"] == "Reverted"]
        assert reverted and reverted[0]["gitRevert"]["goodRevision"] == "main@sha1:2222222"
        assert reverted[0]["gitRevert"]["badRevision"] == "main@sha1:3333333"

    def test_ab_testing_counts_iterations_then_promotes(self) -> None:
        rows = simulate_json("podinfo-ab.yaml", "ab-testing.yaml", "--expect", "Succeeded")
        progressing = [r for r in rows if r["phase"] == "Progressing" and r["iterations"] > 0]
        assert [r["iterations"] for r in progressing] == [1, 2, 3, 4, 5]
        assert all((r["primaryWeight"], r["canaryWeight"]) == (0, 100) for r in progressing)

    def test_blue_green_on_kubernetes_never_shifts_traffic(self) -> None:
        rows = simulate_json("podinfo-bluegreen.yaml", "blue-green.yaml", "--expect", "Succeeded")
        assert all(r["canaryWeight"] == 0 for r in rows)
        assert ["pre-rollout/smoke"] in [r["hooksCalled"] for r in rows]

    def test_gates_wait_for_a_person(self) -> None:
        rows = simulate_json("podinfo-gates.yaml", "gates.yaml", "--expect", "Succeeded")
        assert [r["phase"] for r in rows[2:4]] == ["Waiting", "Waiting"]
        waiting = [r for r in rows if r["phase"] == "WaitingPromotion"]
        assert waiting, "the promotion gate should hold the canary"
        opened = first_tick(rows, "Promoting")
        assert any("opened by alice" in e["message"] for e in rows[opened - 1]["events"])
        # one warn alert per wait, not one per tick
        warn = [a for r in rows for a in r["alerts"] if a["kind"] == "WaitingPromotion"]
        assert len(warn) == 1


def alerts_of(rows: list[dict[str, Any]], kind: str) -> list[int]:
    return [r["tick"] for r in rows for a in r["alerts"] if a["kind"] == kind]


def metric_of(row: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in row["metrics"] if m["name"] == name)


class TestHoldsWarmUpAndAdvisoryMetrics:
    """The issue-14 scenarios: warm-up, a low-traffic hold and its fallbacks, dryRun."""

    def test_a_warming_up_canary_holds_silently_then_is_promoted(self) -> None:
        rows = simulate_json("podinfo-compare.yaml", "warm-up.yaml", "--expect", "Succeeded")
        assert [(r["tick"], r["canaryWeight"]) for r in rows[3:6]] == [(4, 10), (5, 10), (6, 20)]
        cold = metric_of(rows[4], "request-success-rate")  # 91%, below its thresholdRange
        assert cold["warmingUp"] is True and cold["outcome"] == "Inconclusive"
        assert cold["summary"].endswith("success rate 91% < 95% (not acted on during the warm-up)")
        assert all(r["failedChecks"] == 0 and r["inconclusiveChecks"] == 0 for r in rows)
        assert alerts_of(rows, "Inconclusive") == [] and alerts_of(rows, "AnalysisStalled") == []
        warm = [e for r in rows for e in r["events"] if "warming up" in e["message"]]
        assert len(warm) == 1
        assert first_tick(rows, "Promoting") == 10  # a tick later than a warm release

    @pytest.mark.parametrize(
        ("warmup", "warm_ticks"),
        [("0s", []), (None, [5]), ("30s", [5]), ("2m", [5, 6]), ("150s", [5, 6])],
    )
    def test_the_warm_up_is_derived_from_the_canary_as_the_judge_derives_it(
        self, tmp_path: Path, warmup: str | None, warm_ticks: list[int]
    ) -> None:
        # The judge's clock: the run's first window began one metric interval before its
        # first check (tick 5); a check is warm while its window ends within compare.warmup.
        canary = example("podinfo-compare.yaml")
        compare = canary["spec"]["analysis"]["metrics"][0]["compare"]
        if warmup is not None:
            compare["warmup"] = warmup
        scenario = (
            "ticks: 9\ndefaults: {metrics: {request-success-rate: 99.9, request-duration: 180}}\n"
            "steps:\n  - at: 3\n    release: {template: v2, revision: main@sha1:2}\n"
            "  - from: 5\n    metrics: {request-success-rate: 90}\n"  # cold, then failing
        )
        rows = simulate_json(
            written(tmp_path, "canary.yaml", canary), written(tmp_path, "s.yaml", scenario)
        )
        warm = [
            r["tick"]
            for r in rows
            if any(m.get("warmingUp") for m in r["metrics"] if m["name"] == "request-success-rate")
        ]
        assert warm == warm_ticks
        first_failed = next(r["tick"] for r in rows if r["failedChecks"] > 0)
        assert first_failed == 5 + len(warm_ticks)  # the thresholdRange acts after the warm-up

    @pytest.mark.parametrize("failed", ["nodata", "error"])
    def test_a_failed_first_query_starts_no_warm_up_clock(
        self, tmp_path: Path, failed: str
    ) -> None:
        # The judge stores no evidence for a query that failed at the run's first check, so
        # its warm-up begins at the first answer: the cold 91% of tick 6 is not acted on.
        scenario = (
            "ticks: 8\ndefaults: {metrics: {request-success-rate: 99.9, request-duration: 180}}\n"
            "steps:\n  - at: 3\n    release: {template: v2, revision: main@sha1:2}\n"
            f"  - {{at: 5, metrics: {{request-success-rate: {failed}}}}}\n"
            "  - {at: 6, metrics: {request-success-rate: 91}}\n"
        )
        rows = simulate_json("podinfo-compare.yaml", written(tmp_path, "s.yaml", scenario))
        assert rows[4]["failedChecks"] == 1  # the failed query is a failed check
        sixth = metric_of(rows[5], "request-success-rate")
        assert sixth["warmingUp"] is True and "not acted on during the warm-up" in sixth["summary"]
        assert [r["failedChecks"] for r in rows[5:]] == [1, 1, 1]
        assert rows[-1]["phase"] == "Progressing"

    def test_a_low_traffic_hold_falls_back_to_the_threshold_range(self) -> None:
        rows = simulate_json(
            "podinfo-compare.yaml", "low-traffic-threshold.yaml", "--expect", "Succeeded"
        )
        # the warm-up, then three inconclusive checks hold (maxInconclusive 3)
        held = [r["canaryWeight"] for r in rows[4:8]]
        assert held == [10, 10, 10, 10]
        assert metric_of(rows[4], "request-success-rate")["warmingUp"] is True
        fourth = metric_of(rows[8], "request-success-rate")
        assert fourth["outcome"] == "Pass" and "thresholdRange decides" in fourth["summary"]
        assert rows[8]["canaryWeight"] == 20
        assert all(r["failedChecks"] == 0 for r in rows)
        assert alerts_of(rows, "Inconclusive") == [6]  # one alert for the streak

    def test_a_low_traffic_canary_steps_up_stalls_once_and_resumes(self) -> None:
        rows = simulate_json(
            "podinfo-low-traffic.yaml", "low-traffic-hold.yaml", "--expect", "Succeeded"
        )
        weights = [r["canaryWeight"] for r in rows[3:13]]
        assert weights == [10, 10, 25, 50, 50, 50, 50, 50, 50, 50]  # 10, 10: the warm-up
        assert all(r["phase"] == "Progressing" for r in rows[3:13])  # never promoted on them
        # Stepping up counts nothing, as in the judge: the count starts at 50%, the last step,
        # and the fifth check there is past maxInconclusive 4.
        said = [metric_of(r, "request-success-rate")["summary"] for r in rows[5:11]]
        assert all("stepping up for more traffic" in s for s in said[:2])
        assert [f"inconclusive {k} of 4" in s for k, s in enumerate(said[2:], 1)] == [True] * 4
        stalled = [r["tick"] for r in rows if r["stalled"]]
        assert stalled == list(range(12, 14))
        assert "canary promote --full" in rows[11]["stalled"]
        assert metric_of(rows[11], "request-success-rate")["stalled"] is True
        assert alerts_of(rows, "AnalysisStalled") == [12]
        assert all(r["failedChecks"] == 0 for r in rows)
        assert first_tick(rows, "Promoting") == 14

    def test_an_advisory_metric_is_reported_and_never_acted_on(self) -> None:
        rows = simulate_json(
            "podinfo-compare.yaml", "advisory-metric.yaml", "--expect", "Succeeded"
        )
        assert first_tick(rows, "Promoting") == 10  # the ticks of a good release, warm-up included
        assert all(r["failedChecks"] == 0 for r in rows)
        duration = metric_of(rows[4], "request-duration")
        assert (duration["outcome"], duration["advisory"]) == ("Fail", True)
        assert metric_of(rows[6], "request-duration")["outcome"] == "Error"
        advisory_events = [
            r["tick"] for r in rows for e in r["events"] if "Advisory metric" in e["message"]
        ]
        assert advisory_events == [5, 7, 8]  # when its outcome changes, not every tick

    @pytest.mark.parametrize(
        ("on_max", "bounds", "outcome", "stalled", "failed"),
        [
            ("pass", False, "Pass", False, 0),
            ("fail", False, "Fail", False, 1),
            ("hold", True, "Inconclusive", True, 0),
            ("threshold", True, "Pass", False, 0),
            ("threshold", False, "Inconclusive", True, 0),
        ],
    )
    def test_max_inconclusive_is_honoured_for_scripted_inconclusive_values(
        self, tmp_path: Path, on_max: str, bounds: bool, outcome: str, stalled: bool, failed: int
    ) -> None:
        metric = {
            "name": "request-success-rate",
            "interval": "1m",
            "compare": {"maxInconclusive": 2, "onMaxInconclusive": on_max},
        }
        if bounds:
            metric["thresholdRange"] = {"min": 99}
        canary = example("podinfo.yaml")
        canary["spec"]["analysis"]["metrics"] = [metric]
        scenario = (
            "ticks: 9\ndefaults: {metrics: {request-success-rate: inconclusive}}\n"
            "steps:\n  - at: 3\n    release: {template: v2, revision: main@sha1:2}\n"
        )
        rows = simulate_json(
            written(tmp_path, "canary.yaml", canary), written(tmp_path, "s.yaml", scenario)
        )
        assert metric_of(rows[4], "request-success-rate")["warmingUp"] is True  # not counted
        checks = [metric_of(r, "request-success-rate") for r in rows[5:8]]
        assert [c["outcome"] for c in checks[:2]] == ["Inconclusive", "Inconclusive"]
        third = checks[2]  # the third inconclusive check in a row, past maxInconclusive 2
        assert third["outcome"] == outcome
        assert third.get("stalled", False) is stalled
        assert rows[7]["failedChecks"] == failed
        assert (rows[7]["stalled"] != "") is stalled

    def test_stepping_up_for_traffic_spends_no_inconclusive_budget(self, tmp_path: Path) -> None:
        # As in the judge (analysis/_compare.py, _scarce): with onInconclusive: advance, a
        # check with a step left steps up and is not counted; only at the last step does
        # maxInconclusive 0 make the first inconclusive check a failed one.
        canary = example("podinfo-low-traffic.yaml")
        canary["spec"]["analysis"]["metrics"][0]["compare"] = {
            "maxInconclusive": 0,
            "onInconclusive": "advance",
            "onMaxInconclusive": "fail",
        }
        rows = simulate_json(written(tmp_path, "canary.yaml", canary), "low-traffic-hold.yaml")
        first_failure = next(r for r in rows if r["failedChecks"] > 0)
        assert first_failure["canaryWeight"] == 50
        assert [r["canaryWeight"] for r in rows[3:7]] == [10, 10, 25, 50]

    @pytest.mark.parametrize(
        ("example_canary", "iterations"), [("podinfo-ab.yaml", 5), ("podinfo-bluegreen.yaml", 3)]
    )
    @pytest.mark.parametrize(("on_max", "phase"), [("hold", "Progressing"), ("fail", "Failed")])
    def test_iterations_step_up_for_traffic_to_the_last_one_where_holds_count(
        self, tmp_path: Path, example_canary: str, iterations: int, on_max: str, phase: str
    ) -> None:
        # The strategies held at the iteration before the last, which the judge is not told
        # is the last step: it let the step advance there, uncounted, and the canary was
        # held for ever, never stalled nor failed.
        canary = example(example_canary)
        canary["spec"]["analysis"]["metrics"] = [
            {
                "name": "request-success-rate",
                "compare": {
                    "maxInconclusive": 2,
                    "onInconclusive": "advance",
                    "onMaxInconclusive": on_max,
                },
            }
        ]
        scenario = (
            "ticks: 30\ndefaults: {metrics: {request-success-rate: inconclusive}}\n"
            "steps:\n  - at: 3\n    release: {template: v2, revision: main@sha1:2}\n"
        )
        rows = simulate_json(
            written(tmp_path, "canary.yaml", canary), written(tmp_path, "s.yaml", scenario)
        )
        assert max(r["iterations"] for r in rows) == iterations
        assert rows[-1]["phase"] == phase
        if on_max == "hold":
            assert rows[-1]["stalled"]
            assert [a["kind"] for r in rows for a in r["alerts"]].count("AnalysisStalled") == 1

    def test_a_failed_query_does_not_reset_the_inconclusive_count(self, tmp_path: Path) -> None:
        # The judge keeps its stored state when a query fails (analysis/_evaluate.py), so the
        # count goes on after an error: the fourth inconclusive check is past maxInconclusive 3.
        scenario = (
            "ticks: 12\ndefaults: {metrics: {request-success-rate: 99.9, request-duration: 180}}\n"
            "steps:\n  - at: 3\n    release: {template: v2, revision: main@sha1:2}\n"
            "  - {from: 6, to: 8, metrics: {request-success-rate: inconclusive}}\n"
            "  - {at: 9, metrics: {request-success-rate: error}}\n"
            "  - {at: 10, metrics: {request-success-rate: inconclusive}}\n"
        )
        rows = simulate_json("podinfo-compare.yaml", written(tmp_path, "s.yaml", scenario))
        assert metric_of(rows[8], "request-success-rate")["outcome"] == "Error"
        tenth = metric_of(rows[9], "request-success-rate")
        assert "still inconclusive after 4 checks (maxInconclusive 3" in tenth["summary"]

    def test_a_metric_a_step_adds_or_strips_is_checked_where_it_applies(
        self, tmp_path: Path
    ) -> None:
        # From tick 4 the success rate loses its compare block: inconclusive is then an error;
        # request-duration gains one at tick 6, where inconclusive is fine.
        scenario = tmp_path / "s.yaml"
        scenario.write_text(
            "ticks: 9\nsteps:\n"
            "  - from: 4\n    spec:\n      analysis:\n        metrics:\n"
            "          - {name: request-success-rate, interval: 1m, thresholdRange: {min: 99}}\n"
            "          - {name: request-duration, interval: 1m, compare: {test: latency}}\n"
            "  - {at: 6, metrics: {request-duration: inconclusive}}\n"
            "  - {at: 7, metrics: {request-success-rate: regression}}\n"
        )
        result = runner.invoke(
            app, ["simulate", str(EXAMPLES / "podinfo-compare.yaml"), "-s", str(scenario)]
        )
        assert result.exit_code == 2
        assert "steps[2].metrics.request-success-rate: regression is a word" in result.stderr
        assert "request-duration" not in result.stderr
        assert "Traceback" not in result.output

    @pytest.mark.parametrize("fail_fast", [True, False])
    def test_a_scripted_regression_is_the_judges_fail(
        self, tmp_path: Path, fail_fast: bool
    ) -> None:
        canary = example("podinfo-compare.yaml")
        canary["spec"]["analysis"]["metrics"][0]["compare"]["failFast"] = fail_fast
        scenario = (
            "ticks: 10\ndefaults: {metrics: {request-success-rate: 99.9, request-duration: 180}}\n"
            "steps:\n  - at: 3\n    release: {template: v2, revision: main@sha1:2}\n"
            "  - from: 5\n    metrics: {request-success-rate: regression}\n"
        )
        rows = simulate_json(
            written(tmp_path, "canary.yaml", canary), written(tmp_path, "s.yaml", scenario)
        )
        # the judge never fails a canary inside its warm-up, whatever the canary shows
        assert metric_of(rows[4], "request-success-rate")["warmingUp"] is True
        check = metric_of(rows[5], "request-success-rate")
        assert check["outcome"] == "Fail"
        if fail_fast:  # conclusive: rolled back at once, no failed check counted first
            assert (rows[5]["phase"], rows[5]["failedChecks"]) == ("Failed", 0)
        else:  # a failed check like a threshold's: threshold 2 of them first
            assert (rows[5]["phase"], rows[5]["failedChecks"]) == ("Progressing", 1)
            assert rows[-1]["phase"] == "Failed"


class TestOutputContract:
    def test_every_row_has_the_documented_fields(self) -> None:
        rows = simulate_json("podinfo.yaml", "good-release.yaml")
        documented = {
            "tick",
            "time",
            "phase",
            "primaryWeight",
            "canaryWeight",
            "mirrored",
            "failedChecks",
            "iterations",
            "actions",
            "events",
            "alerts",
            "hooksCalled",
            "metrics",
            "gitRevert",
            "revision",
            "lastGoodRevision",
            "message",
            "inconclusiveChecks",
            "stalled",
        }
        for row in rows:
            assert documented <= set(row)
            assert row["primaryWeight"] + row["canaryWeight"] == 100

    def test_table_output_names_the_scenario(self) -> None:
        result = simulate_run("podinfo.yaml", "bad-release.yaml")
        assert result.exit_code == 0
        assert "a bad release is rolled back" in result.stdout
        assert "Failed checks threshold reached 2" in result.stdout

    def test_a_piped_table_has_no_padding_and_says_each_verdict_once(self) -> None:
        result = simulate_run("podinfo-low-traffic.yaml", "low-traffic-hold.yaml")
        assert result.exit_code == 0
        lines = result.stdout.splitlines()
        assert lines and all(line == line.rstrip() for line in lines)
        # The Event quotes the verdict; the metric's own line would repeat it.
        assert result.stdout.count("(inconclusive 1 of 4, scripted)") == 1

    def test_the_table_says_how_a_hold_ended(self) -> None:
        # After three inconclusive checks the thresholdRange decides and the step advances: no
        # Event says why, so the metric's pass is shown on each tick the fallback decided (ticks
        # 9 and 10: the scripted quiet hour lasts five checks), then once more when the judge
        # decides again, and not on later ones.
        result = simulate_run("podinfo-compare.yaml", "low-traffic-threshold.yaml")
        assert result.exit_code == 0
        text = " ".join(result.stdout.split())
        for weight, checks in ((20, 4), (30, 5)):
            assert (
                f"Advance podinfo.test canary weight {weight} request-success-rate: still "
                f"inconclusive after {checks} checks"
            ) in text
        assert text.count("thresholdRange decides: within >= 95") == 2
        assert "Advance podinfo.test canary weight 40 request-success-rate: success rate" in text
        assert text.count("request-success-rate: success rate 99.8% >= 95%") == 1

    def test_after_the_hold_the_judges_own_passes_are_not_shown(self, tmp_path: Path) -> None:
        # Values that change after the fallback: the first pass the judge decides again says
        # how the hold ended, the next ones are ordinary passes (they were all shown while
        # each said something new).
        scenario = (EXAMPLES / "low-traffic-threshold.yaml").read_text() + (
            "  - at: 11\n    metrics: {request-success-rate: 99.7}\n"
            "  - at: 12\n    metrics: {request-success-rate: 99.6}\n"
        )
        path = written(tmp_path, "s.yaml", scenario)
        result = simulate_run("podinfo-compare.yaml", path)
        assert result.exit_code == 0
        text = " ".join(result.stdout.split())
        assert "weight 40 request-success-rate: success rate 99.7% >= 95%" in text
        assert "99.6%" not in text

    def test_what_lint_finds_in_the_canary_is_said_before_the_run(self, tmp_path: Path) -> None:
        # A misspelt dryRun is dropped as the API server drops it, so the metric is not
        # advisory in the run: the user is told, on stderr, and the JSON stays clean.
        canary = (EXAMPLES / "podinfo-compare.yaml").read_text()
        assert "        dryRun: true" in canary
        path = written(tmp_path, "c.yaml", canary.replace("dryRun: true", "dryrun: true"))
        result = simulate_run(path, "advisory-metric.yaml", "-o", "json")
        assert result.exit_code == 0
        assert "canary lint:" in result.stderr
        assert "spec.analysis.metrics[1].dryrun: unknown field 'dryrun'" in result.stderr
        assert "did you mean 'dryRun'?" in result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        assert rows[-1]["phase"] == "Failed"  # not advisory: its latency rolls the canary back
        clean = simulate_run("podinfo-compare.yaml", "advisory-metric.yaml", "-o", "json")
        assert clean.exit_code == 0 and "canary lint" not in clean.stderr

    def test_a_canary_read_from_a_pipe_is_read_once_and_linted(self, tmp_path: Path) -> None:
        # A pipe can be read once: the simulation and lint's findings both come from it.
        import os
        import threading

        canary = (EXAMPLES / "podinfo-compare.yaml").read_text()
        fifo = tmp_path / "canary.fifo"
        os.mkfifo(fifo)

        def feed() -> None:
            fifo.write_text(canary.replace("dryRun: true", "dryrun: true"))

        writer = threading.Thread(target=feed)
        writer.start()
        result = simulate_run(fifo, "advisory-metric.yaml")
        writer.join(timeout=60)
        assert result.exit_code == 0, result.output
        assert "unknown field 'dryrun'" in result.stderr

    def test_the_warm_up_is_not_a_hold_whose_end_the_table_explains(self) -> None:
        result = simulate_run("podinfo-compare.yaml", "warm-up.yaml")
        assert result.exit_code == 0
        text = " ".join(result.stdout.split())
        assert "warming up" in text
        assert "request-success-rate: success rate" not in text  # no pass line after it

    def test_expect_fails_when_the_phase_differs(self) -> None:
        result = runner.invoke(
            app,
            [
                "simulate",
                str(EXAMPLES / "podinfo.yaml"),
                "-s",
                str(EXAMPLES / "bad-release.yaml"),
                "--expect",
                "Succeeded",
            ],
        )
        assert result.exit_code == 1
        assert "expected the last tick to be Succeeded, it is Failed" in result.stderr

    def test_expect_names_a_phase_that_does_not_exist_before_the_run(self) -> None:
        # A typo in CI read as a policy failure ("expected the last tick to be Bogus").
        result = simulate_run("podinfo.yaml", "good-release.yaml", "--expect", "Bogus")
        assert result.exit_code == 2
        assert "--expect: expected one of Initializing, " in result.stderr
        assert "got 'Bogus'" in result.stderr
        assert result.stdout == ""  # refused before the run

    def test_expect_takes_a_phase_in_any_case(self) -> None:
        result = simulate_run("podinfo.yaml", "good-release.yaml", "--expect", "succeeded")
        assert result.exit_code == 0, result.stderr


class TestBadInput:
    @pytest.mark.parametrize(
        ("patch", "path"),
        [
            (
                "  analysis: {interval: soon, threshold: 1, stepWeight: 10}",
                "spec.analysis.interval",
            ),
            ("  provider: istio\n  analysis: {interval: 1m, threshold: 1}", "spec.analysis"),
            ("  provider: envoy-magic\n  analysis: {interval: 1m, stepWeight: 5}", "spec.provider"),
            ("  analysis: {interval: 1m, stepWeight: ten}", "spec.analysis.stepWeight"),
        ],
        ids=["bad-interval", "never-advances", "unknown-provider", "wrong-type"],
    )
    def test_a_malformed_canary_names_the_field(
        self, tmp_path: Path, patch: str, path: str
    ) -> None:
        canary = tmp_path / "canary.yaml"
        canary.write_text(
            "apiVersion: canary.gitops.dev/v1beta1\nkind: Canary\nmetadata: {name: x}\nspec:\n"
            "  targetRef: {kind: Deployment, name: x}\n  service: {port: 80}\n" + patch + "\n"
        )
        result = runner.invoke(
            app, ["simulate", str(canary), "-s", str(EXAMPLES / "good-release.yaml")]
        )
        assert result.exit_code == 2
        assert f"{path}:" in result.stderr
        assert "Traceback" not in result.output

    def test_a_missing_target_ref_is_named(self, tmp_path: Path) -> None:
        canary = tmp_path / "canary.yaml"
        canary.write_text(
            "apiVersion: canary.gitops.dev/v1beta1\nkind: Canary\nmetadata: {name: x}\nspec:\n  service: {port: 80}\n"
        )
        result = runner.invoke(
            app, ["simulate", str(canary), "-s", str(EXAMPLES / "good-release.yaml")]
        )
        assert result.exit_code == 2
        assert "spec.targetRef: required field is missing" in result.stderr

    @pytest.mark.parametrize(
        ("scenario", "said"),
        [
            ("ticks: 5\nfoo: 1\n", "foo: unknown field; expected one of name, ticks"),
            (
                "defaults:\n  metric: {request-success-rate: 99}\n",
                "defaults.metric: unknown field; did you mean metrics?",
            ),
            (
                "steps:\n  - at: 2\n    comands: {abort: now}\n",
                "steps[0].comands: unknown field; did you mean commands?",
            ),
            (
                "steps:\n  - at: 2\n    commands: {promot: now}\n",
                "steps[0].commands.promot: unknown field; did you mean promote?",
            ),
            (
                "steps:\n  - {at: 8, from: 6, metrics: {request-success-rate: 90}}\n",
                "steps[0]: expected `at: N` or `from: N` / `to: M`, not both (from with at)",
            ),
        ],
        ids=["top-level", "defaults", "step", "command", "at-and-from"],
    )
    def test_a_misspelt_scenario_field_is_an_error_not_nothing(
        self, tmp_path: Path, scenario: str, said: str
    ) -> None:
        path = tmp_path / "s.yaml"
        path.write_text(scenario)
        result = runner.invoke(app, ["simulate", str(EXAMPLES / "podinfo.yaml"), "-s", str(path)])
        assert result.exit_code == 2
        assert said in result.stderr
        assert str(path) in result.stderr

    @pytest.mark.parametrize(
        ("metrics", "said"),
        [
            (
                "{request-sucess-rate: 99}",
                "defaults.metrics.request-sucess-rate: the Canary has no metric of that name; "
                "did you mean request-success-rate?",
            ),
            (
                "{request-duration: warmup}",
                "defaults.metrics.request-duration: warmup is a word of the statistical judge",
            ),
            (
                "{request-duration: regression}",
                "defaults.metrics.request-duration: regression is a word of the statistical judge",
            ),
        ],
        ids=["unknown-metric", "warmup-without-compare", "regression-without-compare"],
    )
    def test_a_scripted_metric_the_canary_cannot_ask_for_is_an_error(
        self, tmp_path: Path, metrics: str, said: str
    ) -> None:
        path = tmp_path / "s.yaml"
        path.write_text(f"ticks: 5\ndefaults:\n  metrics: {metrics}\n")
        result = runner.invoke(
            app, ["simulate", str(EXAMPLES / "podinfo-compare.yaml"), "-s", str(path)]
        )
        assert result.exit_code == 2
        assert said in result.stderr.replace("\n", " ")
        assert str(path) in result.stderr

    def test_a_file_without_a_canary_is_named_not_a_traceback(self, tmp_path: Path) -> None:
        path = tmp_path / "svc.yaml"
        path.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n")
        result = runner.invoke(
            app, ["simulate", str(path), "-s", str(EXAMPLES / "good-release.yaml")]
        )
        assert result.exit_code == 2
        assert f"{path} is not valid:\n  no document of kind Canary; found Service" in result.stderr
        assert result.exception is None or isinstance(result.exception, SystemExit)

    def test_a_malformed_scenario_names_the_field(self, tmp_path: Path) -> None:
        scenario = tmp_path / "s.yaml"
        scenario.write_text(
            "ticks: 5\nsteps:\n  - at: 2\n    metrics: {request-success-rate: high}\n"
        )
        result = runner.invoke(
            app, ["simulate", str(EXAMPLES / "podinfo.yaml"), "-s", str(scenario)]
        )
        assert result.exit_code == 2
        assert "steps[0].metrics.request-success-rate" in result.stderr

    def test_invalid_yaml_names_the_line(self, tmp_path: Path) -> None:
        scenario = tmp_path / "s.yaml"
        scenario.write_text("ticks: 5\nsteps: [\n")
        result = runner.invoke(
            app, ["simulate", str(EXAMPLES / "podinfo.yaml"), "-s", str(scenario)]
        )
        assert result.exit_code == 2
        assert "invalid YAML" in result.stderr and "line 3" in result.stderr
