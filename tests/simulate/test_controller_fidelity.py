"""`canary simulate` does what the controller would do where a review found it did not.

Each class is one finding: a metric the controller turns into an Error on every check was
judged on its scripted values and promoted; the judge's inconclusive count and its
``onMaxInconclusive: threshold`` fallback were not the judge's; scenario mistakes were
silently nothing; the JSON's ``fallback`` flag was neither documented nor always true.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.simulate.test_simulate_cli import (
    ROOT,
    first_tick,
    metric_of,
    simulate_json,
    simulate_run,
    written,
)

RELEASE_AT_3 = "steps:\n  - at: 3\n    release: {template: v2, revision: main@sha1:2}\n"

DATADOG_COMPARE = """\
apiVersion: canary.gitops.dev/v1beta1
kind: MetricTemplate
metadata: {name: errors, namespace: test}
spec:
  provider: {type: datadog, address: https://api.datadoghq.com, secretRef: {name: dd}}
  query: "sum:errors{app:{{ target }}}"
---
apiVersion: canary.gitops.dev/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  provider: istio
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1m
    threshold: 2
    maxWeight: 30
    stepWeight: 10
    metrics:
      - name: dd-errors
        templateRef: {name: errors}
        thresholdRange: {max: 5}
        compare:
          test: errorRate
          requestsQuery: "sum:requests{app:{{ target }}}"
          errorsQuery: "sum:errors{app:{{ target }}}"
"""

KNATIVE_COMPARE = """\
apiVersion: canary.gitops.dev/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  provider: knative
  targetRef: {apiVersion: serving.knative.dev/v1, kind: Service, name: podinfo}
  analysis:
    interval: 1m
    threshold: 2
    maxWeight: 30
    stepWeight: 10
    metrics:
      - name: request-success-rate
        compare: COMPARE
"""

LEGACY_THRESHOLD = """\
apiVersion: canary.gitops.dev/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  provider: istio
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1m
    threshold: 2
    maxWeight: 30
    stepWeight: 10
    metrics:
      - name: request-success-rate
        interval: 1m
        threshold: 95
        compare: {maxInconclusive: 1}
"""


def verdicts(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [m for r in rows for m in r["metrics"] if m["name"] == name]


class TestMetricsTheControllerCannotJudge:
    """The controller fails every check of these metrics (canary/adapters/analysis.py asks
    ``compare_problem``; analysis/_evaluate.py renders the builtin queries for the primary):
    so does the simulation, and a scripted good release is rolled back."""

    @pytest.mark.parametrize("value", ["1", "0", "inconclusive"])
    def test_a_compare_test_its_template_provider_cannot_feed_fails_every_check(
        self, tmp_path: Path, value: str
    ) -> None:
        canary = written(tmp_path, "c.yaml", DATADOG_COMPARE)
        scenario = written(
            tmp_path,
            "s.yaml",
            f"ticks: 12\ndefaults: {{metrics: {{dd-errors: {value}}}}}\n" + RELEASE_AT_3,
        )
        rows = simulate_json(canary, scenario)
        judged = verdicts(rows, "dd-errors")
        assert judged and all(m["outcome"] == "Error" for m in judged)
        assert judged[0]["summary"].startswith(
            "metric dd-errors (MetricTemplate test/errors): compare errorRate counts over the "
            "judged window"
        )
        # Two failed checks (threshold 2), then the rollback: the controller's ticks.
        assert [r["failedChecks"] for r in rows[4:6]] == [1, 2]
        assert first_tick(rows, "Failed") == 7
        assert "Succeeded" not in {r["phase"] for r in rows}

    def test_expect_succeeded_fails_for_such_a_canary(self, tmp_path: Path) -> None:
        canary = written(tmp_path, "c.yaml", DATADOG_COMPARE)
        scenario = written(
            tmp_path, "s.yaml", "ticks: 12\ndefaults: {metrics: {dd-errors: 1}}\n" + RELEASE_AT_3
        )
        result = simulate_run(canary, scenario, "--expect", "Succeeded")
        assert result.exit_code == 1
        assert "expected the last tick to be Succeeded, it is Failed" in result.stderr

    @pytest.mark.parametrize("value", ["99.9", "inconclusive", "warmup"])
    def test_a_builtin_compare_on_a_provider_without_primary_metrics_fails_every_check(
        self, tmp_path: Path, value: str
    ) -> None:
        canary = written(tmp_path, "c.yaml", KNATIVE_COMPARE.replace("COMPARE", "{}"))
        scenario = written(
            tmp_path,
            "s.yaml",
            f"ticks: 14\ndefaults: {{metrics: {{request-success-rate: {value}}}}}\n" + RELEASE_AT_3,
        )
        rows = simulate_json(canary, scenario)
        judged = verdicts(rows, "request-success-rate")
        assert judged and all(m["outcome"] == "Error" for m in judged)
        assert judged[0]["summary"].startswith(
            "Metric query failed for request-success-rate: spec.provider: the statistical "
            "judge needs the primary's metrics, and provider 'knative' has none"
        )
        assert first_tick(rows, "Failed") == 7
        assert rows[-1]["phase"] == "Failed"

    def test_without_a_warm_up_the_threshold_check_runs_first_then_the_judge_errors(
        self, tmp_path: Path
    ) -> None:
        # evaluate() runs the threshold check first: outside the warm-up a value outside the
        # thresholdRange is its verdict; one within it goes on to the judge, whose queries
        # cannot be rendered.
        canary = written(
            tmp_path,
            "c.yaml",
            KNATIVE_COMPARE.replace(
                "compare: COMPARE", "thresholdRange: {min: 99}\n        compare: {warmup: 0s}"
            ),
        )
        scenario = written(
            tmp_path,
            "s.yaml",
            "ticks: 6\ndefaults: {metrics: {request-success-rate: 99.9}}\n"
            + RELEASE_AT_3
            + "  - at: 6\n    metrics: {request-success-rate: 90}\n",
        )
        rows = simulate_json(canary, scenario)
        fifth, sixth = (metric_of(r, "request-success-rate") for r in rows[4:6])
        assert fifth["outcome"] == "Error" and fifth["summary"].startswith("Metric query failed")
        assert (sixth["outcome"], sixth["summary"]) == ("Fail", "success rate 90% < 99%")


class TestTheJudgesInconclusiveCount:
    def test_on_max_inconclusive_threshold_falls_back_to_the_deprecated_threshold(
        self, tmp_path: Path
    ) -> None:
        # The judge is asked with has_threshold from _has_bounds(), which counts `threshold`.
        canary = written(tmp_path, "c.yaml", LEGACY_THRESHOLD)
        scenario = written(
            tmp_path,
            "s.yaml",
            "ticks: 16\ndefaults: {metrics: {request-success-rate: inconclusive}}\n" + RELEASE_AT_3,
        )
        rows = simulate_json(canary, scenario, "--expect", "Succeeded")
        seventh = metric_of(rows[6], "request-success-rate")
        assert seventh["outcome"] == "Pass" and seventh["fallback"] is True
        assert seventh["summary"].endswith("threshold decides: within >= 95")
        assert all(not r["stalled"] for r in rows)

    def test_a_failed_threshold_check_keeps_the_judges_inconclusive_count(
        self, tmp_path: Path
    ) -> None:
        # evaluate() returns the threshold check's Fail with the judge's state carried over
        # it: the streak goes on from 2, not from 0.
        scenario = written(
            tmp_path,
            "s.yaml",
            "ticks: 10\ndefaults:\n  metrics: {request-success-rate: inconclusive, "
            "request-duration: 100}\n"
            + RELEASE_AT_3
            + "  - at: 8\n    metrics: {request-success-rate: 90}\n",
        )
        rows = simulate_json("podinfo-compare.yaml", scenario)
        said = [metric_of(r, "request-success-rate")["summary"] for r in rows[5:10]]
        assert "(inconclusive 2 of 3, scripted)" in said[1]
        assert said[2] == "success rate 90% < 95%"
        assert "(inconclusive 3 of 3, scripted)" in said[3]
        assert "still inconclusive after 4 checks" in said[4]
        assert metric_of(rows[9], "request-success-rate")["fallback"] is True

    def test_a_check_the_fallback_did_not_decide_is_not_marked_as_decided_by_it(
        self, tmp_path: Path
    ) -> None:
        # A failed query after fallback passes carries the judge's count, not the mark of a
        # check onMaxInconclusive decided.
        scenario = written(
            tmp_path,
            "s.yaml",
            "ticks: 11\ndefaults:\n  metrics: {request-success-rate: inconclusive, "
            "request-duration: 100}\n"
            + RELEASE_AT_3
            + "  - at: 10\n    metrics: {request-success-rate: nodata}\n",
        )
        rows = simulate_json("podinfo-compare.yaml", scenario)
        assert metric_of(rows[8], "request-success-rate")["fallback"] is True
        nodata = metric_of(rows[9], "request-success-rate")
        assert nodata["outcome"] == "NoData" and "fallback" not in nodata
        after = metric_of(rows[10], "request-success-rate")
        assert after["fallback"] is True and "after 5 checks" in after["summary"]  # 4, kept, 5


class TestScenarioMistakes:
    def scenario_error(self, tmp_path: Path, scenario: str) -> str:
        path = written(tmp_path, "s.yaml", scenario)
        result = simulate_run("podinfo.yaml", path)
        assert result.exit_code == 2, result.output
        assert f"{path} (scenario) is not valid:" in result.stderr
        return " ".join(result.stderr.split())

    def test_an_unknown_key_in_a_release_is_an_error_naming_the_expected_keys(
        self, tmp_path: Path
    ) -> None:
        said = self.scenario_error(tmp_path, "steps:\n  - at: 3\n    release: {templat: v2}\n")
        assert (
            "steps[0].release.templat: unknown field; did you mean template? "
            "expected one of template, revision"
        ) in said

    @pytest.mark.parametrize(
        ("scenario", "said"),
        [
            (
                "ticks: 5\nsteps:\n  - at: 9\n    metrics: {request-success-rate: 99}\n",
                "steps[0].at: tick 9 is past the last tick: the scenario has 5 ticks",
            ),
            (
                "ticks: 5\nsteps:\n  - from: 9\n    metrics: {request-success-rate: 99}\n",
                "steps[0].from: tick 9 is past the last tick: the scenario has 5 ticks",
            ),
            (
                "steps:\n  - at: 40\n    metrics: {request-success-rate: 99}\n",
                "steps[0].at: tick 40 is past the last tick: the scenario has 30 ticks "
                "(ticks is not set; 30 is the default)",
            ),
        ],
        ids=["at", "from", "default-ticks"],
    )
    def test_a_step_past_the_last_tick_is_an_error_naming_the_tick_count(
        self, tmp_path: Path, scenario: str, said: str
    ) -> None:
        assert said in self.scenario_error(tmp_path, scenario)

    def test_an_error_in_a_steps_spec_is_named_in_the_step(self, tmp_path: Path) -> None:
        said = self.scenario_error(
            tmp_path,
            "steps:\n  - at: 3\n    spec: {analysis: {metrics: "
            "[{name: request-success-rate, compare: {alfa: 1}}]}}\n",
        )
        assert "steps[0].spec.analysis.metrics[0].compare.alfa: unknown field;" in said

    @pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
    def test_a_metric_value_that_is_not_a_finite_number_is_refused(
        self, tmp_path: Path, value: str
    ) -> None:
        said = self.scenario_error(
            tmp_path,
            f"ticks: 5\nsteps:\n  - at: 2\n    metrics: {{request-success-rate: {value}}}\n",
        )
        assert (
            f"steps[0].metrics.request-success-rate: expected a finite number, got {value}"
        ) in said


def test_the_docs_name_every_flag_a_metric_verdict_can_carry() -> None:
    # docs/simulate.md is the JSON contract: a flag the output adds must be in its table.
    rows = simulate_json("podinfo-compare.yaml", "low-traffic-threshold.yaml")
    rows += simulate_json("podinfo-low-traffic.yaml", "low-traffic-hold.yaml")
    rows += simulate_json("podinfo-compare.yaml", "advisory-metric.yaml")
    flags = {k for r in rows for m in r["metrics"] for k in m} - {"name", "outcome", "summary"}
    assert "fallback" in flags
    docs = (ROOT / "docs" / "simulate.md").read_text()
    row = next(line for line in docs.splitlines() if line.startswith("| `metrics` |"))
    assert flags <= set(re.findall(r"`(\w+)`", row)), sorted(flags)
