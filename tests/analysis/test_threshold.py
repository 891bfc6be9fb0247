"""The threshold judge (Flagger's thresholdRange semantics) and evaluate() without compare."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import (
    AnalysisSpecError,
    MetricCheck,
    MetricKind,
    NoDataError,
    Outcome,
    PrometheusAPIError,
    PrometheusProvider,
    ProviderConfig,
    QueryContext,
    QueryTimeoutError,
    Verdict,
    evaluate,
    judge_threshold,
    metric_check_from_spec,
)
from tests.analysis.fakes import CountsProvider

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="kubernetes")

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


class TestRangeSemantics:
    @settings(deadline=None)
    @given(value=finite, lo=finite, hi=finite)
    def test_fails_iff_outside_the_bounds(self, value: float, lo: float, hi: float) -> None:
        result = judge_threshold("m", value, min=lo, max=hi)
        assert (result.outcome is Outcome.FAIL) == (value < lo or value > hi)

    @settings(deadline=None)
    @given(value=finite)
    def test_equality_passes_at_both_bounds(self, value: float) -> None:
        assert judge_threshold("m", value, min=value).outcome is Outcome.PASS
        assert judge_threshold("m", value, max=value).outcome is Outcome.PASS

    @settings(deadline=None)
    @given(value=finite)
    def test_no_bounds_always_passes(self, value: float) -> None:
        assert judge_threshold("m", value).outcome is Outcome.PASS

    @settings(deadline=None)
    @given(value=finite, bound=finite)
    def test_single_bounds(self, value: float, bound: float) -> None:
        assert (judge_threshold("m", value, min=bound).outcome is Outcome.FAIL) == (value < bound)
        assert (judge_threshold("m", value, max=bound).outcome is Outcome.FAIL) == (value > bound)

    def test_nan_is_an_error_never_a_pass(self) -> None:
        # NaN from Prometheus is NoData before it gets here (the provider says so); a NaN
        # that reaches the judge is an impossible reading.
        result = judge_threshold("m", math.nan, max=1)
        assert result.outcome is Outcome.ERROR
        assert result.summary == "m NaN is impossible: NaN is not a measurement"


SUCCESS_RATE = "request-success-rate"
DURATION = "request-duration"


class TestImpossibleValues:
    """A reading the metric cannot take is an Error, whatever the bounds (issue 15)."""

    @pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 1e308, 100.5, -0.1, -1e308])
    def test_a_success_rate_outside_0_to_100_percent_is_an_error(self, value: float) -> None:
        for bounds in ({"min": 99.0}, {"max": 1e309}, {"threshold": 99.0}, {}):
            result = judge_threshold(SUCCESS_RATE, value, **bounds)  # type: ignore[arg-type]
            assert result.outcome is Outcome.ERROR, (value, bounds, result)
            assert "impossible" in result.summary

    def test_the_sentence_says_what_is_possible(self) -> None:
        assert (
            judge_threshold(SUCCESS_RATE, 1e308, min=99).summary
            == "success rate 1e+308% is impossible: a success rate is between 0% and 100%"
        )
        assert (
            judge_threshold(DURATION, -3.0, max=500).summary
            == "request duration -3ms is impossible: a request duration is never below 0ms"
        )
        assert (
            judge_threshold(SUCCESS_RATE, math.inf, min=99).summary
            == "success rate +Inf% is impossible: an infinite value is not a measurement"
        )

    @pytest.mark.parametrize("value", [0.0, 100.0, 100.0 + 1e-12, 50.0])
    def test_the_edges_of_the_range_and_rounding_noise_are_judged(self, value: float) -> None:
        assert judge_threshold(SUCCESS_RATE, value, min=0).outcome is Outcome.PASS

    @pytest.mark.parametrize("value", [-1.0, math.inf, math.nan])
    def test_a_negative_or_infinite_duration_is_an_error(self, value: float) -> None:
        assert judge_threshold(DURATION, value, max=500).outcome is Outcome.ERROR

    def test_a_long_duration_is_possible_and_fails_its_maximum(self) -> None:
        assert judge_threshold(DURATION, 1e308, max=500).outcome is Outcome.FAIL

    @pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
    def test_custom_metrics_have_no_range_but_nan_and_infinities_are_errors(
        self, value: float
    ) -> None:
        assert judge_threshold("errors", value, max=5).outcome is Outcome.ERROR
        assert judge_threshold("errors", value, min=5).outcome is Outcome.ERROR

    @pytest.mark.parametrize("value", [-1e308, -5.0, 1e308])
    def test_custom_metrics_judge_any_finite_value(self, value: float) -> None:
        assert judge_threshold("errors", value, min=-1e309).outcome is Outcome.PASS

    @settings(deadline=None)
    @given(
        value=st.floats(allow_nan=True, allow_infinity=True),
        lo=st.none() | finite,
        hi=st.none() | finite,
    )
    def test_a_success_rate_passes_only_when_it_is_a_percentage(
        self, value: float, lo: float | None, hi: float | None
    ) -> None:
        result = judge_threshold(SUCCESS_RATE, value, min=lo, max=hi)
        if result.outcome is Outcome.PASS:
            assert math.isfinite(value) and -1e-6 <= value <= 100 + 1e-6
        if not math.isfinite(value) or not -1 <= value <= 101:
            assert result.outcome is Outcome.ERROR


class TestDeprecatedThreshold:
    def test_success_rate_threshold_is_a_minimum(self) -> None:
        r = judge_threshold("request-success-rate", 98.0, threshold=99)
        assert (r.outcome, r.min, r.max) == (Outcome.FAIL, 99, None)
        assert judge_threshold("request-success-rate", 99.5, threshold=99).outcome is Outcome.PASS

    def test_duration_threshold_is_a_maximum_in_ms(self) -> None:
        r = judge_threshold("request-duration", 501.0, threshold=500)
        assert (r.outcome, r.min, r.max, r.unit) == (Outcome.FAIL, None, 500, "ms")

    def test_custom_threshold_is_a_maximum_and_zero_fails_positive_values(self) -> None:
        assert judge_threshold("errors", 0.5, threshold=0).outcome is Outcome.FAIL
        assert judge_threshold("errors", 0.0, threshold=0).outcome is Outcome.PASS

    def test_threshold_range_wins_over_threshold(self) -> None:
        r = judge_threshold("request-success-rate", 95.0, min=90, threshold=99)
        assert (r.outcome, r.min) == (Outcome.PASS, 90)


class TestSentences:
    def test_flagger_style_success_rate(self) -> None:
        assert (
            judge_threshold("request-success-rate", 98.6912, min=99).summary
            == "success rate 98.69% < 99%"
        )

    def test_flagger_style_duration(self) -> None:
        assert (
            judge_threshold("request-duration", 1515.3, max=500).summary
            == "request duration 1515ms > 500ms"
        )

    def test_custom_metric(self) -> None:
        assert (
            judge_threshold("custom:queue", 12.345, max=10, label="queue", unit="").summary
            == "queue 12.35 > 10"
        )

    def test_pass_sentence_names_the_bounds(self) -> None:
        assert (
            judge_threshold("request-success-rate", 99.5, min=99).summary
            == "success rate 99.5% >= 99%"
        )


class FakeProvider(CountsProvider):
    """An in-memory MetricProvider: answers by substring of the query, records queries."""

    def __init__(self, answers: Mapping[str, float | Exception]) -> None:
        super().__init__(lambda query, _primary, _errors: self._answer(query))
        self.answers = dict(answers)

    def _answer(self, query: str) -> float | Exception:
        for key, value in self.answers.items():
            if key in query:
                return value
        return NoDataError(f"no values found for query {query!r}", query=query)

    @property
    def asked(self) -> list[str]:
        """The queries asked, in order."""
        return [query for query, _ in self.queries]


class TestEvaluateThreshold:
    async def test_builtin_success_rate_fails_with_flagger_sentence(self) -> None:
        check = metric_check_from_spec(
            {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"},
            path="spec.analysis.metrics[0]",
        )
        provider = FakeProvider({"http_request_duration_seconds_count": 98.69})
        v = await evaluate(check, CTX, provider, now=NOW)
        assert (v.outcome, v.summary, v.value, v.min, v.unit) == (
            Outcome.FAIL,
            "success rate 98.69% < 99%",
            98.69,
            99,
            "%",
        )
        assert v.failed_check and not v.conclusive
        assert provider.asked == [v.query]

    async def test_http_observer_duration_is_converted_to_ms_without_truncation(self) -> None:
        check = metric_check_from_spec(
            {"name": "request-duration", "thresholdRange": {"max": 500}}, path="m[0]"
        )
        v = await evaluate(check, CTX, FakeProvider({"histogram_quantile": 0.5004}), now=NOW)
        assert v.value == pytest.approx(500.4)
        assert v.outcome is Outcome.FAIL  # Flagger truncates to 500ms and passes

    async def test_template_metric_renders_variables(self) -> None:
        check = metric_check_from_spec(
            {"name": "errors", "thresholdRange": {"max": 5}, "templateVariables": {"svc": "api"}},
            path="m[0]",
            template_query='sum(rate(errors{svc="{{ variables.svc }}",ns="{{ namespace }}"}[{{ interval }}]))',
        )
        provider = FakeProvider({"errors": 3.0})
        v = await evaluate(check, CTX, provider, now=NOW)
        assert v.outcome is Outcome.PASS
        assert provider.asked == ['sum(rate(errors{svc="api",ns="test"}[1m]))']

    async def test_no_data_builtin_uses_flaggers_words(self) -> None:
        check = metric_check_from_spec(
            {"name": "request-success-rate", "thresholdRange": {"min": 99}}, path="m"
        )
        v = await evaluate(check, CTX, FakeProvider({}), now=NOW)
        assert v.outcome is Outcome.NODATA and v.failed_check
        assert v.summary.startswith(
            "no values found for prometheus metric request-success-rate probably podinfo.test is not receiving traffic"
        )

    async def test_no_data_custom_metric(self) -> None:
        check = metric_check_from_spec(
            {"name": "q", "query": "sum(x)", "thresholdRange": {"max": 1}}, path="m"
        )
        v = await evaluate(check, CTX, FakeProvider({}), now=NOW)
        assert v.outcome is Outcome.NODATA
        assert v.summary.startswith("no values found for custom metric: q:")

    async def test_query_errors_are_error_verdicts(self) -> None:
        check = metric_check_from_spec(
            {"name": "request-success-rate", "thresholdRange": {"min": 99}}, path="m"
        )
        boom = PrometheusAPIError(
            "Prometheus rejected query 'x' (HTTP 400, bad_data): parse error", query="x"
        )
        v = await evaluate(check, CTX, FakeProvider({"http": boom}), now=NOW)
        assert (v.outcome, v.error) == (Outcome.ERROR, "PrometheusAPIError")
        assert v.summary.startswith("Prometheus query failed: Prometheus rejected query")

    async def test_timeouts_are_error_verdicts(self) -> None:
        check = metric_check_from_spec(
            {"name": "t", "query": "x", "thresholdRange": {"max": 1}}, path="m"
        )
        v = await evaluate(
            check, CTX, FakeProvider({"x": QueryTimeoutError("did not answer within 5s")}), now=NOW
        )
        assert v.outcome is Outcome.ERROR
        assert v.summary == "Metric query failed for t: did not answer within 5s"

    async def test_render_errors_are_error_verdicts_naming_the_variable(self) -> None:
        check = MetricCheck(
            name="t", query='x{a="{{ variables.nope }}"}', kind=MetricKind.TEMPLATE, max=1
        )
        v = await evaluate(check, CTX, FakeProvider({}), now=NOW)
        assert v.outcome is Outcome.ERROR and "variables.nope" in v.summary

    async def test_unknown_mesh_provider_is_an_error_verdict(self) -> None:
        check = metric_check_from_spec(
            {"name": "request-duration", "thresholdRange": {"max": 1}}, path="m"
        )
        ctx = QueryContext(name="a", namespace="b", target="c", provider="meshy")
        v = await evaluate(check, ctx, FakeProvider({}), now=NOW)
        assert v.outcome is Outcome.ERROR and "unknown provider 'meshy'" in v.summary

    async def test_verdict_round_trips_through_status(self) -> None:
        check = metric_check_from_spec(
            {"name": "request-success-rate", "thresholdRange": {"min": 99}}, path="m"
        )
        v = await evaluate(check, CTX, FakeProvider({"http": 99.25}), now=NOW)
        status = v.to_status()
        assert status["outcome"] == "Pass" and status["evaluatedAt"] == "2024-05-01T12:00:00.000Z"
        assert Verdict.from_status(status) == v


class TestEvaluateImpossibleReadings:
    @pytest.mark.parametrize("reading", [math.inf, 1e308, -2.0, math.nan])
    async def test_an_impossible_success_rate_is_an_error_naming_the_query(
        self, reading: float
    ) -> None:
        check = metric_check_from_spec(
            {"name": SUCCESS_RATE, "thresholdRange": {"min": 99}}, path="m"
        )
        v = await evaluate(check, CTX, FakeProvider({"http": reading}), now=NOW)
        assert (v.outcome, v.error, v.value) == (Outcome.ERROR, "ImpossibleValue", None)
        assert v.failed_check
        assert v.query is not None and v.summary.endswith(f"; check the query: {v.query}")
        assert v.summary.startswith("success rate ")
        # The status stays JSON (NaN and infinities are not).
        json.dumps(v.to_status(), allow_nan=False)
        assert Verdict.from_status(v.to_status()) == v

    async def test_a_negative_duration_is_an_error(self) -> None:
        check = metric_check_from_spec({"name": DURATION, "thresholdRange": {"max": 500}}, path="m")
        v = await evaluate(check, CTX, FakeProvider({"histogram_quantile": -0.25}), now=NOW)
        assert v.outcome is Outcome.ERROR
        assert "request duration -250ms is impossible" in v.summary

    async def test_an_infinite_custom_metric_is_an_error_naming_the_query(self) -> None:
        check = metric_check_from_spec(
            {"name": "ratio", "query": "sum(ok) / sum(total)", "thresholdRange": {"min": 0.9}},
            path="m",
        )
        v = await evaluate(check, CTX, FakeProvider({"sum(ok)": math.inf}), now=NOW)
        assert v.outcome is Outcome.ERROR
        assert v.summary == (
            "ratio +Inf is impossible: an infinite value is not a measurement; "
            "check the query: sum(ok) / sum(total)"
        )

    @respx.mock
    async def test_plus_inf_from_prometheus_is_an_error_and_nan_stays_no_data(self) -> None:
        check = metric_check_from_spec(
            {"name": SUCCESS_RATE, "thresholdRange": {"min": 99}}, path="m"
        )
        prometheus = PrometheusProvider(ProviderConfig(address="http://prom.test:9090"))
        for text, outcome in (
            ("+Inf", Outcome.ERROR),
            ("1e308", Outcome.ERROR),
            ("NaN", Outcome.NODATA),
        ):
            body = {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, text]}]},
            }
            respx.get("http://prom.test:9090/api/v1/query").mock(
                return_value=httpx.Response(200, json=body)
            )
            v = await evaluate(check, CTX, prometheus, now=NOW)
            assert v.outcome is outcome, (text, v.summary)
            assert v.failed_check


class TestMetricSpecParsing:
    def test_metric_without_query_or_builtin_name_is_rejected(self) -> None:
        with pytest.raises(AnalysisSpecError, match="no usable query") as info:
            metric_check_from_spec({"name": "latency"}, path="spec.analysis.metrics[2]")
        assert info.value.path == "spec.analysis.metrics[2]"

    @pytest.mark.parametrize(
        ("entry", "path"),
        [
            ({"name": ""}, "m.name"),
            ({"name": "request-duration", "interval": "1 min"}, "m.interval"),
            ({"name": "request-duration", "thresholdRange": {"min": "a"}}, "m.thresholdRange.min"),
            (
                {"name": "request-duration", "thresholdRange": {"min": 5, "max": 1}},
                "m.thresholdRange",
            ),
            ({"name": "request-duration", "templateVariables": {"a": 1}}, "m.templateVariables.a"),
        ],
    )
    def test_errors_name_the_field(self, entry: dict[str, object], path: str) -> None:
        with pytest.raises(AnalysisSpecError) as info:
            metric_check_from_spec(entry, path="m")
        assert info.value.path == path

    def test_template_wins_over_builtin_name_and_inline_query(self) -> None:
        check = metric_check_from_spec(
            {"name": "request-success-rate", "query": "inline"}, path="m", template_query="tpl"
        )
        assert (check.kind, check.query) == (MetricKind.TEMPLATE, "tpl")
        check = metric_check_from_spec({"name": "x", "query": "inline"}, path="m")
        assert (check.kind, check.query) == (MetricKind.INLINE, "inline")
