"""One parse of every metric and provider spec: analysis's parsers, used by the model.

``parse_metric`` and ``parse_provider_spec`` report every problem of a spec at
once (the Canary parser shows them all); the older ``*_from_spec`` functions
still raise the first one.  The Canary and MetricTemplate parsers keep the typed
objects these parsers return, and the controller evaluates exactly those.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from analysis import (
    AnalysisSpecError,
    AnalysisSpecErrors,
    MetricCheck,
    MetricKind,
    Outcome,
    ProviderSpec,
    QueryContext,
    UnknownProviderError,
    evaluate,
    metric_check_from_spec,
    parse_compare,
    parse_metric,
    parse_provider_spec,
    provider_config,
)
from canary.model import SpecError as CanarySpecError
from canary.model import parse_canary, parse_metric_template

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="kubernetes")

BAD_ENTRY: dict[str, Any] = {
    "name": "latency",
    "interval": "1 min",
    "thresholdRange": {"min": "a"},
    "templateVariables": {"k": 1},
}


def problem_paths(exc: AnalysisSpecError) -> list[str]:
    return [p.path for p in exc.problems]


class TestMetricSpecs:
    def test_every_bad_field_of_a_metric_is_reported_in_field_order(self) -> None:
        with pytest.raises(AnalysisSpecErrors) as info:
            parse_metric(BAD_ENTRY, path="m")
        assert problem_paths(info.value) == [
            "m.interval",
            "m.thresholdRange.min",
            "m.templateVariables.k",
            "m",  # and it has nothing to run
        ]
        assert info.value.path == "m.interval" and "(and 3 more)" in str(info.value)

    @pytest.mark.parametrize(
        ("compare", "said"),
        [
            (True, "m.compare: expected a map, got true"),
            (
                {"minSampleSize": True},
                "m.compare.minSampleSize: expected a positive integer, got true",
            ),
            ({"failFast": None}, "m.compare.failFast: expected true or false, got null"),
            ({"alpha": [0.01]}, "got a list"),
            ({None: 1}, "m.compare.null: unknown field"),
            ({"alpha": 10**400}, "m.compare.alpha: expected a number between 0 and 0.5"),
            ({"minSampleSize": 2**63}, "m.compare.minSampleSize: expected a positive integer"),
        ],
        ids=["true", "bool-for-int", "null", "list", "null-key", "huge-number", "past-int64"],
    )
    def test_a_bad_value_is_quoted_as_the_yaml_spells_it(self, compare: object, said: str) -> None:
        entry = {"name": "request-success-rate", "compare": compare}
        with pytest.raises(AnalysisSpecErrors) as info:
            parse_metric(entry, path="m")
        assert any(said in str(p) for p in info.value.problems), info.value.problems

    @pytest.mark.parametrize("interval", ["0s", "0m", "0h0m"])
    def test_an_interval_of_no_time_is_refused(self, interval: str) -> None:
        # A range over no time counts nothing, and Prometheus refuses it outright: every
        # check would have been an Error, and with compare there was no warm-up either.
        entry = {"name": "request-success-rate", "interval": interval, "compare": {}}
        with pytest.raises(AnalysisSpecErrors) as info:
            parse_metric(entry, path="m")
        assert [str(p) for p in info.value.problems] == [
            f"m.interval: expected a duration above 0 such as 1m, got {interval}"
        ]

    def test_the_raw_mapping_builder_still_raises_only_the_first_problem(self) -> None:
        with pytest.raises(AnalysisSpecError) as info:
            metric_check_from_spec(BAD_ENTRY, path="m")
        assert type(info.value) is AnalysisSpecError and info.value.path == "m.interval"

    def test_compare_problems_come_with_the_metrics_own(self) -> None:
        entry = {
            "name": "request-success-rate",
            "interval": "1 min",
            "compare": {"alpha": 2, "minSampleSize": 0},
        }
        with pytest.raises(AnalysisSpecErrors) as info:
            parse_metric(entry, path="m")
        assert problem_paths(info.value) == [
            "m.interval",
            "m.compare.alpha",
            "m.compare.minSampleSize",
        ]

    def test_a_rule_between_compare_fields_waits_until_each_field_is_valid(self) -> None:
        with pytest.raises(AnalysisSpecErrors) as info:
            parse_compare({"test": "errorRate", "requestsQuery": 5, "errorsQuery": "x"}, "c")
        assert problem_paths(info.value) == ["c.requestsQuery"]

    def test_a_bad_query_is_not_also_reported_as_nothing_to_run(self) -> None:
        with pytest.raises(AnalysisSpecErrors) as info:
            parse_metric({"name": "errors", "query": "  "}, path="m")
        assert problem_paths(info.value) == ["m.query"]

    def test_a_template_metric_waits_for_its_templates_query(self) -> None:
        check = parse_metric(
            {"name": "request-success-rate", "query": "inline"}, path="m", template="errors"
        )
        assert (check.kind, check.template, check.query) == (MetricKind.TEMPLATE, "errors", None)
        assert check.with_template_query("sum(up)").query == "sum(up)"

    async def test_an_unresolved_template_metric_is_an_error_verdict_not_a_crash(self) -> None:
        check = parse_metric(
            {"name": "errors", "thresholdRange": {"max": 1}}, path="m", template="t"
        )

        class NeverAsked:
            async def run_query(self, query: str, *, at: datetime | None = None) -> float:
                raise AssertionError("no query without a template")

        verdict = await evaluate(check, CTX, NeverAsked(), now=NOW)  # type: ignore[arg-type]
        assert verdict.outcome is Outcome.ERROR and "not resolved" in verdict.summary


class TestProviderSpecs:
    def test_every_bad_field_of_a_provider_is_reported_and_keeps_its_error_class(self) -> None:
        with pytest.raises(AnalysisSpecErrors) as info:
            parse_provider_spec({"type": "datadogg", "headers": {"X": [1]}, "secretRef": {}})
        assert problem_paths(info.value) == [
            "spec.provider.type",
            "spec.provider.headers.X",
            "spec.provider.secretRef.name",
        ]
        assert isinstance(info.value.problems[0], UnknownProviderError)

    def test_the_secrets_address_and_credentials_complete_the_spec(self) -> None:
        spec = parse_provider_spec(
            {"address": "http://a:9090/", "headers": {"X-Org": "o"}, "secretRef": {"name": "s"}}
        )
        assert spec == ProviderSpec(
            address="http://a:9090/", headers=(("X-Org", "o"),), secret_name="s"
        )
        config = provider_config(spec, secret={"address": "https://b:9090/", "token": "t"})
        assert (config.address, config.token, config.headers) == (
            "https://b:9090",
            "t",
            (("X-Org", "o"),),
        )

    def test_without_any_address_the_default_prometheus_is_used(self) -> None:
        config = provider_config(ProviderSpec(), default_address="http://metrics:9090")
        assert (config.type, config.address) == ("prometheus", "http://metrics:9090")


def canary_doc(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "canary.gitops.dev/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {"interval": "1m", "threshold": 2, "stepWeight": 10, "metrics": metrics},
        },
    }


class TestTheModelKeepsTheParsedSpecs:
    def test_a_canarys_metric_is_the_check_analysis_evaluates(self) -> None:
        entry = {
            "name": "request-success-rate",
            "thresholdRange": {"min": 99},
            "compare": {"minSampleSize": 50},
        }
        [metric] = parse_canary(canary_doc([entry])).spec.analysis_or_default.metrics
        path = "spec.analysis.metrics[0]"
        assert isinstance(metric.check, MetricCheck)
        assert metric.check == metric_check_from_spec(entry, path=path)
        assert metric.compare is not None and metric.compare.min_sample_size == 50
        assert (metric.is_builtin, metric.path) == (True, path)

    def test_a_template_metric_keeps_its_reference_and_waits_for_the_query(self) -> None:
        entry = {
            "name": "errors",
            "templateRef": {"name": "error-rate", "namespace": "ops"},
            "templateVariables": {"svc": "api"},
            "thresholdRange": {"max": 1},
        }
        [metric] = parse_canary(canary_doc([entry])).spec.analysis_or_default.metrics
        assert metric.template_ref is not None and metric.template_ref.namespace == "ops"
        assert (metric.check.kind, metric.check.template) == (MetricKind.TEMPLATE, "error-rate")
        assert metric.template_variables == {"svc": "api"} and metric.query is None

    def test_every_problem_of_a_metric_becomes_an_issue_at_its_path(self) -> None:
        entry = {
            "name": "m",
            "interval": "1 minute",
            "thresholdRange": {"min": 5, "max": 1},
            "query": "up",
        }
        with pytest.raises(CanarySpecError) as info:
            parse_canary(canary_doc([entry]))
        paths = [i.path for i in info.value.errors]
        assert "spec.analysis.metrics[0].interval" in paths
        assert "spec.analysis.metrics[0].thresholdRange" in paths

    def test_a_duplicate_metric_name_is_reported_at_the_second_one(self) -> None:
        entry = {"name": "request-success-rate", "thresholdRange": {"min": 99}}
        with pytest.raises(CanarySpecError) as info:
            parse_canary(canary_doc([entry, entry]))
        assert [i.path for i in info.value.errors] == ["spec.analysis.metrics[1].name"]

    def test_a_metric_templates_provider_is_analysis_provider_spec(self) -> None:
        template = parse_metric_template(
            {
                "apiVersion": "canary.gitops.dev/v1beta1",
                "kind": "MetricTemplate",
                "metadata": {"name": "error-rate", "namespace": "ops"},
                "spec": {
                    "provider": {"address": "http://prom:9090", "secretRef": {"name": "prom-auth"}},
                    "query": "sum(rate(errors[{{ interval }}]))",
                },
            }
        )
        assert template.provider == ProviderSpec(
            address="http://prom:9090", secret_name="prom-auth"
        )

    def test_a_metric_templates_unknown_provider_is_reported_at_its_type(self) -> None:
        doc = {
            "kind": "MetricTemplate",
            "metadata": {"name": "t"},
            "spec": {"provider": {"type": "prom"}},
        }
        with pytest.raises(CanarySpecError) as info:
            parse_metric_template(doc)
        assert [i.path for i in info.value.errors] == ["spec.provider.type", "spec.query"]
