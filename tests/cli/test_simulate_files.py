"""`canary simulate` reads its files as `canary lint` and kubectl read them.

Before, the command loaded them with ``yaml.safe_load_all``: a duplicate key silently kept its
last value, and ``alpha: 1e-3`` was the string "1e-3". Run in-process with the real ``canary``
application (simulate is not one of the operator commands of ``make_app``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from canary.cli import app

CANARY = """\
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
    maxWeight: 50
    stepWeight: 10
    metrics:
      - name: request-success-rate
        interval: 1m
        thresholdRange: {min: 99}
        compare: {alpha: ALPHA}
"""
SCENARIO = """\
ticks: 12
defaults:
  metrics: {request-success-rate: 99.9}
steps:
  - at: 2
    release: {template: v2, revision: main@sha1:2222222}
"""


def simulate(tmp_path: Path, canary: str, scenario: str = SCENARIO) -> Result:
    canary_file, scenario_file = tmp_path / "canary.yaml", tmp_path / "scenario.yaml"
    canary_file.write_text(canary)
    scenario_file.write_text(scenario)
    return CliRunner().invoke(
        app, ["simulate", str(canary_file), "-s", str(scenario_file), "--format", "json"]
    )


def assert_usage_error(result: Result) -> None:
    """Exit 2 with a message, never an exception escaping the command."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


class TestNumbers:
    @pytest.mark.parametrize("alpha", ["1e-3", "5E-2", ".01", "1.e-2"])
    def test_an_alpha_written_as_kubectl_reads_a_number_is_accepted(
        self, tmp_path: Path, alpha: str
    ) -> None:
        result = simulate(tmp_path, CANARY.replace("ALPHA", alpha))
        assert result.exit_code == 0, result.output
        assert len(result.stdout.splitlines()) == 12  # one row per tick

    def test_a_quoted_alpha_is_still_a_string_and_named(self, tmp_path: Path) -> None:
        result = simulate(tmp_path, CANARY.replace("ALPHA", '"1e-3"'))
        assert_usage_error(result)
        assert "spec.analysis.metrics[0].compare.alpha:" in result.stderr
        assert '"1e-3"' in result.stderr

    @pytest.mark.parametrize("alpha", ["1e400", "1.0e+400"])
    def test_an_alpha_too_large_for_a_number_is_named_not_a_crash(
        self, tmp_path: Path, alpha: str
    ) -> None:
        result = simulate(tmp_path, CANARY.replace("ALPHA", alpha))
        assert_usage_error(result)
        assert "spec.analysis.metrics[0].compare.alpha: expected a number" in result.stderr
        assert f'got "{alpha}"' in result.stderr


class TestDuplicateKeys:
    def test_a_duplicate_key_in_the_canary_names_the_file_the_line_and_the_key(
        self, tmp_path: Path
    ) -> None:
        canary = CANARY.replace("ALPHA", "0.05").replace(
            "    stepWeight: 10\n", "    stepWeight: 10\n    stepWeight: 25\n"
        )
        result = simulate(tmp_path, canary)
        assert_usage_error(result)
        assert f"{tmp_path / 'canary.yaml'}: document 1: line 13, column 5:" in result.stderr
        assert "key 'stepWeight' appears twice in one mapping (first on line 12)" in result.stderr

    def test_a_duplicate_key_in_the_scenario_names_the_file_the_line_and_the_key(
        self, tmp_path: Path
    ) -> None:
        scenario = SCENARIO.replace("ticks: 12\n", "ticks: 12\nticks: 3\n")
        result = simulate(tmp_path, CANARY.replace("ALPHA", "0.05"), scenario)
        assert_usage_error(result)
        assert f"{tmp_path / 'scenario.yaml'}: document 1: line 2, column 1:" in result.stderr
        assert "key 'ticks' appears twice" in result.stderr

    def test_a_duplicate_key_deep_in_the_scenario_is_found(self, tmp_path: Path) -> None:
        scenario = SCENARIO.replace("  - at: 2\n", "  - at: 2\n    at: 4\n")
        result = simulate(tmp_path, CANARY.replace("ALPHA", "0.05"), scenario)
        assert_usage_error(result)
        assert "line 6, column 5:" in result.stderr and "key 'at' appears twice" in result.stderr


class TestUnreadableFiles:
    def test_a_file_that_is_not_utf8_is_named(self, tmp_path: Path) -> None:
        (tmp_path / "scenario.yaml").write_bytes(b"ticks: \xff\xfe\n")
        (tmp_path / "canary.yaml").write_text(CANARY.replace("ALPHA", "0.05"))
        result = CliRunner().invoke(
            app,
            ["simulate", str(tmp_path / "canary.yaml"), "-s", str(tmp_path / "scenario.yaml")],
        )
        assert_usage_error(result)
        assert f"{tmp_path / 'scenario.yaml'}: cannot read: not UTF-8 text" in result.stderr
