"""``canary lint``: examples pass, broken fixtures fail at their declared field paths, PromQL."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.commands import promql as promql_module
from canary.commands.promql import check_expressions
from canary.model.schema import load_documents

from .conftest import BROKEN, EXAMPLES, Invoke

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")


def is_manifest(doc: dict[str, Any]) -> bool:
    return "apiVersion" in doc or "kind" in doc


def manifest_files(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.rglob("*.y*ml") if any(is_manifest(d) for _, d in load_documents(p))
    )


FLAGGER = sorted((EXAMPLES.parent / "tests" / "fixtures" / "flagger").glob("*.yaml"))
NATIVE = [p for p in manifest_files(EXAMPLES) if p not in FLAGGER]
SCENARIOS = sorted(
    p for p in EXAMPLES.rglob("*.y*ml") if not any(is_manifest(d) for _, d in load_documents(p))
)
BROKEN_FILES = sorted(BROKEN.glob("*.yaml"))

_EXPECT = re.compile(r"^# expect: (?:document (\d+): )?(error|warning) (\S+)$")
_EXPECT_LOAD = re.compile(r"^# expect-load-error: document (\d+): line (\d+)$")


def rel(path: Path) -> str:
    return str(path.relative_to(EXAMPLES.parent))


def lint_json(cli: Invoke, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("lint", "-o", "json", *args)
    return result.exit_code, json.loads(result.stdout)


def test_the_example_sets_are_not_empty() -> None:
    assert len(NATIVE) >= 4 and len(FLAGGER) >= 5 and len(BROKEN_FILES) >= 20
    assert SCENARIOS, "examples/simulate holds scenarios, which lint must ignore in a walk"


# ----------------------------------------------------------------------------- examples


@pytest.mark.parametrize("path", NATIVE, ids=rel)
def test_native_example_passes_without_any_issue(cli: Invoke, path: Path) -> None:
    result = cli("lint", "--strict", str(path))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "0 errors, 0 warnings" in result.stdout


def test_walking_examples_ignores_scenarios_and_passes(cli: Invoke) -> None:
    code, report = lint_json(cli, str(EXAMPLES / "canaries"), str(EXAMPLES / "simulate"))
    assert code == 0, report["issues"]
    files = {Path(f["file"]).name: f for f in report["files"]}
    for scenario in SCENARIOS:
        assert files[scenario.name]["checked"] is False
    assert report["summary"]["filesWithoutObjects"] == len(SCENARIOS)
    assert report["summary"]["errors"] == 0


@pytest.mark.parametrize("path", FLAGGER, ids=rel)
def test_flagger_example_is_only_told_to_convert(cli: Invoke, path: Path) -> None:
    code, report = lint_json(cli, str(path))
    assert code == 1
    flagger_docs = {
        n for n, d in load_documents(path) if d.get("apiVersion") == "flagger.app/v1beta1"
    }
    errors = [i for i in report["issues"] if i["severity"] == "error"]
    assert {(i["document"], i["path"]) for i in errors} == {(n, "apiVersion") for n in flagger_docs}
    assert all("canary convert" in i["message"] for i in errors)


def test_objects_of_other_kinds_are_skipped_and_counted(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: b}\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: banana}\n---\n"
        "apiVersion: canary.gitops.dev/v1beta1\nkind: AlertProvider\nmetadata: {name: a}\n"
        "spec: {type: slack, address: 'https://hooks.slack.com/x'}\n"
    )
    code, report = lint_json(cli, str(path))
    assert code == 0
    assert report["summary"] | {"promtool": None} == {
        "files": 1,
        "objects": 1,
        "skipped": 2,
        "filesWithoutObjects": 0,
        "errors": 0,
        "warnings": 0,
        "queries": 0,
        "promtool": None,
    }
    text = cli("lint", str(path)).stdout
    assert "1 file, 1 object checked; 2 objects of other kinds skipped" in text


# ----------------------------------------------------------------------------- broken fixtures


def expectations(path: Path) -> tuple[set[tuple[int, str, str]], tuple[int, int] | None]:
    issues: set[tuple[int, str, str]] = set()
    load_error = None
    for line in path.read_text().splitlines():
        if match := _EXPECT.match(line):
            issues.add((int(match[1] or 1), match[2], match[3]))
        elif match := _EXPECT_LOAD.match(line):
            load_error = (int(match[1]), int(match[2]))
    assert issues or load_error, f"{path.name} declares no expectation"
    return issues, load_error


@pytest.mark.parametrize("path", BROKEN_FILES, ids=lambda p: p.name)
def test_broken_fixture_is_rejected_at_its_field_paths(cli: Invoke, path: Path) -> None:
    expected, load_error = expectations(path)
    code, report = lint_json(cli, str(path))
    # Warnings alone (a field the API server would drop) fail only with --strict.
    assert code == (1 if load_error or any(s == "error" for _, s, _ in expected) else 0)
    assert lint_json(cli, "--strict", str(path))[0] == 1
    found = {(i["document"], i["severity"], i["path"]) for i in report["issues"]}
    if load_error is not None:
        document, line = load_error
        [issue] = report["issues"]
        assert (issue["document"], issue["check"], issue["severity"]) == (document, "yaml", "error")
        assert f"line {line}," in issue["message"]
    else:
        missing = expected - found
        assert not missing, f"not reported: {missing}; reported: {found}"
        # Nothing is reported about documents the fixture says are fine.
        assert {i["document"] for i in report["issues"]} <= {d for d, _, _ in expected}
    # The text form names file, document, severity and field path on one line.
    text = cli("lint", str(path)).stdout
    for document, severity, field in expected:
        assert f"{path}: document {document}: {severity}: {field}: " in text


def test_several_files_report_each_problem_once_and_exit_1(cli: Invoke) -> None:
    files = [str(BROKEN / "step-weight-typo.yaml"), str(EXAMPLES / "canaries")]
    code, report = lint_json(cli, *files)
    assert code == 1
    assert [(Path(i["file"]).name, i["severity"], i["path"]) for i in report["issues"]] == [
        ("step-weight-typo.yaml", "error", "spec.analysis"),
        ("step-weight-typo.yaml", "warning", "spec.analysis.stepweight"),
    ]


# ----------------------------------------------------------------------------- output and exit codes


def test_json_output_shape(cli: Invoke) -> None:
    code, report = lint_json(cli, str(BROKEN / "second-document-broken.yaml"))
    assert code == 1
    assert set(report) == {"ok", "summary", "files", "issues"}
    assert report["ok"] is False
    assert set(report["summary"]) == {
        "files", "objects", "skipped", "filesWithoutObjects", "errors", "warnings", "queries", "promtool"
    }  # fmt: skip
    assert report["files"] == [
        {
            "file": str(BROKEN / "second-document-broken.yaml"),
            "checked": True,
            "objects": 2,
            "skipped": 0,
            "errors": 1,
            "warnings": 0,
        }
    ]
    [issue] = report["issues"]
    assert issue == {
        "file": str(BROKEN / "second-document-broken.yaml"),
        "document": 2,
        "kind": "Canary",
        "name": "podinfo",
        "path": "spec.analysis.webhooks[0].name",
        "severity": "error",
        "message": "required field 'name' is missing",
        "check": "schema",
    }


def test_yaml_output_is_the_same_report(cli: Invoke) -> None:
    path = str(BROKEN / "second-document-broken.yaml")
    as_yaml = yaml.safe_load(cli("lint", "-o", "yaml", path).stdout)
    assert as_yaml == json.loads(cli("lint", "-o", "json", path).stdout)


def test_warnings_pass_unless_strict(cli: Invoke) -> None:
    path = str(BROKEN / "threshold-range-typo.yaml")
    assert cli("lint", path).exit_code == 0
    assert cli("lint", "--strict", path).exit_code == 1


def test_missing_file_is_bad_usage(cli: Invoke, tmp_path: Path) -> None:
    result = cli("lint", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "nope.yaml: no such file or directory" in result.stderr


def test_directory_without_yaml_is_bad_usage(cli: Invoke, tmp_path: Path) -> None:
    result = cli("lint", str(tmp_path))
    assert result.exit_code == 2
    assert "no YAML files found" in result.stderr


def test_stdin(cli: Invoke) -> None:
    text = (BROKEN / "interval-not-a-duration.yaml").read_text()
    result = cli("lint", "-", input=text)
    assert result.exit_code == 1
    assert "<stdin>: document 1: error: spec.analysis.interval: " in result.stdout


def test_semantic_rules_beyond_the_schema(cli: Invoke, tmp_path: Path) -> None:
    # Schema-valid, but the kubernetes provider cannot do A/B testing.
    path = tmp_path / "ab.yaml"
    path.write_text(
        "apiVersion: canary.gitops.dev/v1beta1\nkind: Canary\nmetadata: {name: ab}\n"
        "spec:\n  targetRef: {kind: Deployment, name: ab}\n  service: {port: 80}\n"
        "  analysis:\n    interval: 1m\n    threshold: 2\n    iterations: 5\n"
        "    match: [{headers: {x-canary: {exact: 'yes'}}}]\n"
    )
    code, report = lint_json(cli, str(path))
    assert code == 1
    assert [(i["path"], i["check"]) for i in report["issues"]] == [("spec.analysis.match", "rules")]
    # The controller's default provider decides: with istio it is fine.
    assert lint_json(cli, "--provider", "istio", str(path))[0] == 0


# ----------------------------------------------------------------------------- PromQL


TEMPLATE = """\
apiVersion: canary.gitops.dev/v1beta1
kind: MetricTemplate
metadata:
  name: {name}
  namespace: test
spec:
  provider:
    type: prometheus
    address: http://prometheus:9090
  query: {query}
"""

CANARY_WITH_METRICS = """\
apiVersion: canary.gitops.dev/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  targetRef: {{kind: Deployment, name: podinfo}}
  service: {{port: 9898}}
  analysis:
    interval: 1m
    threshold: 5
    stepWeight: 10
    metrics:
{metrics}
"""


def write(tmp_path: Path, name: str, *documents: str) -> Path:
    path = tmp_path / name
    path.write_text("---\n".join(documents))
    return path


@needs_promtool
def test_metric_template_with_invalid_promql_is_rejected(cli: Invoke, tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "bad.yaml",
        TEMPLATE.format(name="ok", query="'sum(rate(http_requests_total[{{ interval }}]))'"),
        TEMPLATE.format(
            name="broken",
            query="'sum(rate(http_requests_total{namespace=\"{{ namespace }}\"}[{{ interval }}])'",
        ),
    )
    code, report = lint_json(cli, str(bad))
    assert code == 1
    [issue] = report["issues"]
    assert (issue["document"], issue["path"], issue["check"], issue["name"]) == (
        2, "spec.query", "promql", "broken"
    )  # fmt: skip
    assert "not valid PromQL" in issue["message"] and "parse error" in issue["message"]
    assert report["summary"]["queries"] == 2
    assert report["summary"]["promtool"]


@needs_promtool
def test_inline_query_and_template_use_are_checked_with_the_canary_names(
    cli: Invoke, tmp_path: Path
) -> None:
    metrics = """\
      - name: inline
        query: sum(rate(requests{pod=~"{{ target }}-.*"}[{{ interval }}])) /
        thresholdRange: {max: 1}
      - name: latency
        templateRef: {name: quantile}
        templateVariables: {q: "0.99"}
        thresholdRange: {max: 500}
      - name: latency-missing-variable
        templateRef: {name: quantile}
        thresholdRange: {max: 500}
"""
    path = write(
        tmp_path,
        "metrics.yaml",
        TEMPLATE.format(
            name="quantile",
            query="'histogram_quantile({{ variables.q }}, sum(rate(latency_bucket{app=\"{{ target }}\"}[1m])) by (le))'",
        ),
        CANARY_WITH_METRICS.format(metrics=metrics),
    )
    code, report = lint_json(cli, str(path))
    assert code == 1
    assert [(i["document"], i["severity"], i["path"]) for i in report["issues"]] == [
        (2, "error", "spec.analysis.metrics[0].query"),
        (2, "error", "spec.analysis.metrics[2].templateVariables"),
    ]
    assert "unexpected end of input" in report["issues"][0]["message"]
    assert "templateVariables has no key 'q'" in report["issues"][1]["message"]


@needs_promtool
def test_valid_promql_with_numeric_template_variables_passes(cli: Invoke, tmp_path: Path) -> None:
    # A variable used as a number: the first placeholder (a name) fails, a number passes.
    path = write(
        tmp_path,
        "q.yaml",
        TEMPLATE.format(
            name="q",
            query="'histogram_quantile({{ variables.q }}, sum(rate(x_bucket[{{ interval }}])) by (le))'",
        ),
    )
    assert lint_json(cli, "--strict", str(path))[0] == 0


def test_template_syntax_errors_are_found_without_promtool(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(promql_module, "find_promtool", lambda: None)
    path = write(
        tmp_path, "t.yaml", TEMPLATE.format(name="t", query="'sum(up{job=\"{{ job }}\"})'")
    )
    code, report = lint_json(cli, str(path))
    assert code == 1
    [issue] = report["issues"]
    assert (
        issue["path"] == "spec.query" and "unknown template variable {{ job }}" in issue["message"]
    )


def test_without_promtool_promql_is_skipped_with_one_note(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(promql_module, "find_promtool", lambda: None)
    path = write(
        tmp_path,
        "bad.yaml",
        TEMPLATE.format(name="a", query="'sum(rate(x[1m])'"),
        TEMPLATE.format(name="b", query="'sum(rate(y[1m])'"),
    )
    result = cli("lint", str(path))
    assert result.exit_code == 0
    assert result.stderr.count("promtool is not on PATH") == 1
    assert "2 PromQL queries not checked" in result.stderr
    code, report = lint_json(cli, str(path))
    assert (code, report["summary"]["queries"], report["summary"]["promtool"]) == (0, 0, None)


def test_no_promql_option_skips_promtool_silently(cli: Invoke, tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", TEMPLATE.format(name="a", query="'sum(rate(x[1m])'"))
    result = cli("lint", "--no-promql", str(path))
    assert result.exit_code == 0
    assert "promtool" not in result.stderr


def test_non_prometheus_templates_are_not_parsed_as_promql(cli: Invoke) -> None:
    # tests/fixtures/flagger/metric-templates.yaml has Datadog and CloudWatch queries.
    _, report = lint_json(
        cli, str(EXAMPLES.parent / "tests" / "fixtures" / "flagger" / "metric-templates.yaml")
    )
    assert all(i["check"] != "promql" for i in report["issues"])
    assert report["summary"]["queries"] == (1 if PROMTOOL else 0)


@needs_promtool
def test_promtool_complaints_are_attributed_to_their_expressions() -> None:
    assert PROMTOOL is not None
    results = check_expressions(
        PROMTOOL, ["up", "sum(rate(x[1m])", "rate(x[5m])", "histogram_quantile(0.9, foo"]
    )
    assert results[0] is None and results[2] is None
    assert results[1] is not None and "unclosed left parenthesis" in results[1]
    assert results[3] is not None and "unclosed left parenthesis" in results[3]
    assert check_expressions(PROMTOOL, []) == []


def test_lint_accepts_the_whole_examples_directory(cli: Invoke) -> None:
    """Issue 8's criterion as a user runs it: `canary lint examples/` finds no error."""
    code, report = lint_json(cli, str(EXAMPLES))
    assert code == 0, report
    assert report["summary"]["errors"] == 0
    assert report["summary"]["objects"] >= 15


DATADOG_TEMPLATE = """\
apiVersion: canary.gitops.dev/v1beta1
kind: MetricTemplate
metadata:
  name: latency
  namespace: test
spec:
  provider:
    type: datadog
    secretRef:
      name: datadog
  query: {query}
"""

DATADOG_SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: datadog
  namespace: test
stringData:
{keys}
"""


def test_a_provider_secret_in_the_files_must_hold_the_keys_its_type_reads(
    cli: Invoke, tmp_path: Path
) -> None:
    query = "'avg:trace.http.request.duration{kube_deployment:{{ target }}}'"
    path = write(
        tmp_path,
        "datadog.yaml",
        DATADOG_TEMPLATE.format(query=query),
        DATADOG_SECRET.format(keys="  datadog_api_key: k"),
    )
    code, report = lint_json(cli, str(path))
    assert code == 1
    [issue] = report["issues"]
    assert issue["path"] == "spec.provider.secretRef.name", issue
    assert "'datadog_application_key'" in issue["message"], issue

    complete = "  datadog_api_key: k\n  datadog_application_key: a"
    write(
        tmp_path,
        "datadog.yaml",
        DATADOG_TEMPLATE.format(query=query),
        DATADOG_SECRET.format(keys=complete),
    )
    code, report = lint_json(cli, str(path))
    assert (code, report["issues"]) == (0, [])


def test_a_provider_without_the_secret_its_type_needs_is_named(cli: Invoke, tmp_path: Path) -> None:
    text = DATADOG_TEMPLATE.format(query="avg:x").replace(
        "    secretRef:\n      name: datadog\n", ""
    )
    code, report = lint_json(cli, str(write(tmp_path, "datadog.yaml", text)))
    assert code == 1
    assert [(i["path"], i["check"]) for i in report["issues"]] == [
        ("spec.provider.secretRef", "rules")
    ], report["issues"]
    assert "'datadog_api_key' and 'datadog_application_key'" in report["issues"][0]["message"]


def test_a_broken_template_of_another_provider_is_found_offline(
    cli: Invoke, tmp_path: Path
) -> None:
    path = write(
        tmp_path, "datadog.yaml", DATADOG_TEMPLATE.format(query="'avg:x{app:{{ tagret }}}'")
    )
    code, report = lint_json(cli, str(path))
    assert code == 1
    [issue] = report["issues"]
    assert (issue["path"], issue["check"]) == ("spec.query", "rules"), issue
    assert "tagret" in issue["message"], issue


def test_a_compare_on_a_provider_that_cannot_count_the_window_is_an_error(
    cli: Invoke, tmp_path: Path
) -> None:
    canary = """\
apiVersion: canary.gitops.dev/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 1m
    threshold: 2
    stepWeight: 10
    metrics:
      - name: errors
        templateRef: {name: latency}
        compare: {test: errorRate, requestsQuery: "count:x", errorsQuery: "count:y"}
"""
    path = write(tmp_path, "both.yaml", DATADOG_TEMPLATE.format(query="avg:x"), canary)
    code, report = lint_json(cli, str(path))
    assert code == 1
    [issue] = report["issues"]
    assert (issue["kind"], issue["path"]) == ("Canary", "spec.analysis.metrics[0].compare"), issue
    assert "a datadog provider answers over its own window" in issue["message"], issue


COMPARE_METRICS = """\
      - name: errors
        query: sum(rate(http_requests_total{{pod=~"{{{{ target }}}}-.*"}}[{{{{ interval }}}}]))
        thresholdRange: {{max: 100}}
        compare:
          test: errorRate
          requestsQuery: {requests}
          errorsQuery: {errors}
      - name: latency
        query: sum(rate(http_requests_total{{pod=~"{{{{ target }}}}-.*"}}[{{{{ interval }}}}]))
        thresholdRange: {{max: 100}}
        compare:
          test: latency
          bucketsQuery: {buckets}
"""
GOOD_REQUESTS = "'sum(increase(http_requests_total{pod=~\"{{ target }}-.*\"}[{{ interval }}]))'"
GOOD_ERRORS = (
    '\'sum(increase(http_requests_total{code=~"5..",pod=~"{{ target }}-.*"}[{{ interval }}]))\''
)
GOOD_BUCKETS = "'sum by (le) (increase(latency_bucket{pod=~\"{{ target }}-.*\"}[{{ interval }}]))'"


def test_a_misspelt_variable_in_a_compare_query_is_an_error_without_promtool(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(promql_module, "find_promtool", lambda: None)
    metrics = COMPARE_METRICS.format(
        requests=GOOD_REQUESTS.replace("{{ target }}", "{{ tagret }}"),
        errors=GOOD_ERRORS,
        buckets=GOOD_BUCKETS.replace("{{ target }}", "{{ variables.pod }}"),
    )
    path = write(tmp_path, "c.yaml", CANARY_WITH_METRICS.format(metrics=metrics))
    code, report = lint_json(cli, str(path))
    assert code == 1
    assert [(i["file"], i["severity"], i["path"]) for i in report["issues"]] == [
        (str(path), "error", "spec.analysis.metrics[0].compare.requestsQuery"),
        (str(path), "error", "spec.analysis.metrics[1].compare.bucketsQuery"),
    ], report["issues"]
    requests, buckets = (i["message"] for i in report["issues"])
    assert requests.startswith("invalid query: unknown template variable {{ tagret }}")
    assert "templateVariables has no key 'pod'" in buckets
    text = cli("lint", str(path)).stdout
    assert (
        f"{path}: document 1: error: spec.analysis.metrics[0].compare.requestsQuery: "
        "invalid query: unknown template variable {{ tagret }}" in text
    ), text


@needs_promtool
def test_a_compare_query_that_is_not_promql_is_an_error(cli: Invoke, tmp_path: Path) -> None:
    metrics = COMPARE_METRICS.format(
        requests=GOOD_REQUESTS,
        errors=GOOD_ERRORS.replace("]))'", "])'"),  # unbalanced parenthesis
        buckets=GOOD_BUCKETS.replace("]))'", "])'"),
    )
    path = write(tmp_path, "c.yaml", CANARY_WITH_METRICS.format(metrics=metrics))
    code, report = lint_json(cli, str(path))
    assert code == 1
    assert [(i["severity"], i["path"], i["check"]) for i in report["issues"]] == [
        ("error", "spec.analysis.metrics[0].compare.errorsQuery", "promql"),
        ("error", "spec.analysis.metrics[1].compare.bucketsQuery", "promql"),
    ], report["issues"]
    assert all(
        "is not valid PromQL" in i["message"] and "unclosed left parenthesis" in i["message"]
        for i in report["issues"]
    ), report["issues"]
    # Two metric queries and three compare queries went to promtool.
    assert report["summary"]["queries"] == 5

    good = COMPARE_METRICS.format(requests=GOOD_REQUESTS, errors=GOOD_ERRORS, buckets=GOOD_BUCKETS)
    write(tmp_path, "c.yaml", CANARY_WITH_METRICS.format(metrics=good))
    code, report = lint_json(cli, "--strict", str(path))
    assert (code, report["issues"]) == (0, []), report["issues"]


BUILTIN_COMPARE_CANARY = """\
apiVersion: canary.gitops.dev/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
{provider}
  service: {{port: 9898}}
  analysis:
    interval: 1m
    threshold: 2
    stepWeight: 10
    metrics:
      - name: {metric}
        compare: {compare}
"""
_DEPLOYMENT = "  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}"
APISIX = (
    f"  provider: apisix\n{_DEPLOYMENT}\n"
    "  routeRef: {apiVersion: apisix.apache.org/v2, kind: ApisixRoute, name: podinfo}"
)
KNATIVE = (
    "  provider: knative\n"
    "  targetRef: {apiVersion: serving.knative.dev/v1, kind: Service, name: podinfo}"
)
SKIPPER_INGRESS = (
    f"{_DEPLOYMENT}\n"
    "  ingressRef: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: podinfo}"
)


@pytest.mark.parametrize(
    ("provider", "options", "metric", "words", "own_queries"),
    [
        (
            APISIX,
            (),
            "request-success-rate",
            "the statistical judge needs the primary's metrics, and provider 'apisix' has none",
            f"{{requestsQuery: {GOOD_REQUESTS}, errorsQuery: {GOOD_ERRORS}}}",
        ),
        (
            KNATIVE,
            (),
            "request-success-rate",
            "the statistical judge needs the primary's metrics, and provider 'knative' has none",
            f"{{requestsQuery: {GOOD_REQUESTS}, errorsQuery: {GOOD_ERRORS}}}",
        ),
        (
            f"  provider: skipper\n{SKIPPER_INGRESS}",
            (),
            "request-duration",
            "the latency test has no builtin buckets for provider skipper",
            f"{{bucketsQuery: {GOOD_BUCKETS}}}",
        ),
        (  # the controller's default provider, for a Canary without spec.provider
            SKIPPER_INGRESS,
            ("--provider", "skipper"),
            "request-duration",
            "the latency test has no builtin buckets for provider skipper",
            f"{{bucketsQuery: {GOOD_BUCKETS}}}",
        ),
    ],
    ids=["apisix", "knative", "skipper", "skipper-by-default"],
)
def test_a_builtin_compare_without_the_providers_series_is_an_error(
    cli: Invoke,
    tmp_path: Path,
    provider: str,
    options: tuple[str, ...],
    metric: str,
    words: str,
    own_queries: str,
) -> None:
    canary = BUILTIN_COMPARE_CANARY.format(provider=provider, metric=metric, compare="{}")
    path = write(tmp_path, "c.yaml", canary)
    code, report = lint_json(cli, *options, str(path))
    assert code == 1
    [issue] = report["issues"]
    assert (issue["file"], issue["kind"], issue["path"], issue["check"]) == (
        str(path), "Canary", "spec.analysis.metrics[0].compare", "rules"
    ), issue  # fmt: skip
    assert words in issue["message"], issue

    # compare's own queries replace the builtin ones the provider lacks.
    canary = BUILTIN_COMPARE_CANARY.format(provider=provider, metric=metric, compare=own_queries)
    write(tmp_path, "c.yaml", canary)
    code, report = lint_json(cli, *options, str(path))
    assert (code, report["issues"]) == (0, []), report["issues"]


def test_a_builtin_compare_on_a_provider_with_primary_series_passes(
    cli: Invoke, tmp_path: Path
) -> None:
    for metric in ("request-success-rate", "request-duration"):
        canary = BUILTIN_COMPARE_CANARY.format(
            provider=f"  provider: istio\n{_DEPLOYMENT}", metric=metric, compare="{}"
        )
        code, report = lint_json(cli, "--strict", str(write(tmp_path, "c.yaml", canary)))
        assert (code, report["issues"]) == (0, []), (metric, report["issues"])


@pytest.mark.parametrize(
    ("warmup", "said"),
    [
        ("0s", None),
        ("30s", "the warm-up is that window, 1m"),  # shorter than the interval: one interval
        ("1m", None),
        ("10m", None),
        ("11m", "11 intervals of 1m"),  # holds silently that long after every release
    ],
)
def test_a_warm_up_under_one_or_over_ten_intervals_is_a_warning(
    cli: Invoke, tmp_path: Path, warmup: str, said: str | None
) -> None:
    # The run's first window is a whole interval long, so 30s of a 1m metric counts as the
    # interval, and the user is told; eleven intervals of silence are legal, and said too.
    canary = BUILTIN_COMPARE_CANARY.format(
        provider=f"  provider: istio\n{_DEPLOYMENT}",
        metric="request-success-rate",
        compare=f"{{warmup: {warmup}}}",
    )
    code, report = lint_json(cli, str(write(tmp_path, "c.yaml", canary)))
    assert code == 0
    paths = [(i["severity"], i["path"]) for i in report["issues"]]
    expected = [("warning", "spec.analysis.metrics[0].compare.warmup")] if said else []
    assert paths == expected, report["issues"]
    if said:
        assert said in report["issues"][0]["message"]


@pytest.mark.parametrize(
    ("schedule", "said"),
    [
        ("stepWeight: 10", None),  # the weight steps up: what advance is for
        ("iterations: 5\n    match: [{headers: {x-canary: {exact: insider}}}]", "A/B testing"),
        ("iterations: 5", "blue/green"),
    ],
)
def test_advance_on_iterations_that_change_no_weight_is_a_warning(
    cli: Invoke, tmp_path: Path, schedule: str, said: str | None
) -> None:
    # A/B and blue/green iterations bring the canary no more traffic: advance only moves on
    # to the next iteration, and its holds all come at the last one.
    canary = BUILTIN_COMPARE_CANARY.format(
        provider=f"  provider: istio\n{_DEPLOYMENT}",
        metric="request-success-rate",
        compare="{onInconclusive: advance}",
    ).replace("stepWeight: 10", schedule)
    code, report = lint_json(cli, str(write(tmp_path, "c.yaml", canary)))
    assert code == 0
    paths = [(i["severity"], i["path"]) for i in report["issues"]]
    expected = [("warning", "spec.analysis.metrics[0].compare.onInconclusive")] if said else []
    assert paths == expected, report["issues"]
    if said:
        assert f"{said}'s iterations change no weight" in report["issues"][0]["message"]


@pytest.mark.parametrize(
    ("provider", "query", "words"),
    [
        ("{type: cloudwatch, region: eu-west-1}", '\'{"Id": "m1"}\'', "JSON array"),
        ("{type: graphite, address: 'http://graphite'}", "'sumSeries(a.b)'", "has no target"),
        ("{type: keptn}", "'keptnmetric/only-a-name'", "keptn"),
    ],
)
def test_a_query_the_provider_cannot_run_is_found_offline(
    cli: Invoke, tmp_path: Path, provider: str, query: str, words: str
) -> None:
    text = (
        "apiVersion: canary.gitops.dev/v1beta1\nkind: MetricTemplate\n"
        f"metadata: {{name: m, namespace: test}}\nspec:\n  provider: {provider}\n"
        f"  query: {query}\n"
    )
    code, report = lint_json(cli, str(write(tmp_path, "t.yaml", text)))
    assert code == 1
    [issue] = report["issues"]
    assert (issue["path"], issue["check"]) == ("spec.query", "rules"), issue
    assert words in issue["message"], issue
