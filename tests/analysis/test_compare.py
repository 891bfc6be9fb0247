"""The statistical judge: the compare field, numerical pieces, properties, state, evaluate()."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import (
    AnalysisSpecError,
    Bucket,
    CompareResult,
    CompareSpec,
    CompareTest,
    MetricCheck,
    NoDataError,
    OnMaxInconclusive,
    Outcome,
    QueryContext,
    SequentialState,
    Verdict,
    Window,
    _compare,
    add_histograms,
    add_window,
    decide,
    evaluate,
    metric_check_from_spec,
    new_state,
    parse_compare,
)
from analysis._compare import EVIDENCE_FLOOR, RANKS, _without_wild_window, window_from_histograms
from analysis._stats import (
    RATIO_GRID,
    histogram_quantile,
    normal_cdf,
    normal_quantile,
    stratum_log_lr,
)
from tests.analysis.fakes import CountsProvider

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)
SR = "request-success-rate"
ERR = parse_compare({"warmup": "0s"}, "c", metric_name=SR)
LAT = parse_compare({"minSampleSize": 50, "warmup": "0s"}, "c", metric_name="request-duration")
SEVERITY = {Outcome.PASS: 0, Outcome.INCONCLUSIVE: 1, Outcome.FAIL: 2}


def judge(windows: list[Window], spec: CompareSpec = ERR) -> tuple[Outcome, float, SequentialState]:
    state = new_state(T0)
    for i, w in enumerate(windows):
        state = add_window(state, w, spec, window_end=T0 + timedelta(minutes=i + 1))
    r = decide(spec, state, metric=SR, last_step=False)
    return r.outcome, r.comparison.likelihood_ratio, r.state


class TestParseCompare:
    def test_defaults_for_builtins(self) -> None:
        spec = parse_compare({}, "c", metric_name=SR)
        assert spec == CompareSpec(test=CompareTest.ERROR_RATE)
        assert (spec.alpha, spec.min_sample_size, spec.max_inconclusive, spec.fail_fast) == (
            0.01,
            100,
            5,
            True,
        )
        assert spec.effective_min_difference == 0.1
        assert parse_compare({}, "c", metric_name="request-duration").test is CompareTest.LATENCY

    def test_error_message_names_path_and_expectation(self) -> None:
        with pytest.raises(AnalysisSpecError) as info:
            parse_compare(
                {"minSampleSize": "abc"}, "spec.analysis.metrics[1].compare", metric_name=SR
            )
        assert str(info.value) == (
            'spec.analysis.metrics[1].compare.minSampleSize: expected a positive integer, got "abc"'
        )

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("alpha", 0),
            ("alpha", 0.7),
            ("alpha", "0.01"),
            ("allowedIncrease", 0.9),
            ("allowedIncrease", 1e12),
            ("minDifference", -1),
            ("minSampleSize", 0),
            ("minSampleSize", 1.5),
            ("maxInconclusive", -1),
            ("onMaxInconclusive", "maybe"),
            ("quantile", 1.0),
            ("failFast", "yes"),
            ("test", "p99"),
            ("bucketsUnit", "us"),
            ("retries", -1),
            ("retries", 101),
            ("retries", 1.5),
            ("retries", True),
            ("bogus", 1),
        ],
    )
    def test_invalid_values_name_the_field(self, field: str, value: object) -> None:
        with pytest.raises(AnalysisSpecError) as info:
            parse_compare({field: value}, "m.compare", metric_name=SR)
        assert info.value.path == f"m.compare.{field}"

    def test_custom_metrics_need_a_test_and_queries(self) -> None:
        with pytest.raises(AnalysisSpecError) as info:
            parse_compare({}, "m.compare")
        assert info.value.path == "m.compare.test"
        with pytest.raises(AnalysisSpecError) as info:
            parse_compare({"test": "errorRate"}, "m.compare")
        assert info.value.path == "m.compare.requestsQuery"
        with pytest.raises(AnalysisSpecError) as info:
            parse_compare({"test": "errorRate", "requestsQuery": "a"}, "m.compare")
        assert info.value.path == "m.compare.errorsQuery"
        with pytest.raises(AnalysisSpecError) as info:
            parse_compare({"test": "latency"}, "m.compare")
        assert info.value.path == "m.compare.bucketsQuery"
        spec = parse_compare(
            {"test": "latency", "bucketsQuery": "b", "bucketsUnit": "ms"}, "m.compare"
        )
        assert (spec.buckets_query, spec.buckets_unit) == ("b", "ms")

    def test_retries_set_where_an_error_test_starts_its_dispersion(self) -> None:
        assert parse_compare({}, "c", metric_name=SR).dispersion_start == 1.0
        assert parse_compare({"retries": 0}, "c", metric_name=SR).dispersion_start == 1.0
        assert parse_compare({"retries": 3}, "c", metric_name=SR).dispersion_start == 4.0
        with pytest.raises(AnalysisSpecError) as info:
            parse_compare({"retries": 2}, "m.compare", metric_name="request-duration")
        assert info.value.path == "m.compare.retries"
        assert "only allowed with test: errorRate" in str(info.value)

    def test_the_mesh_retry_policy_is_taken_only_where_the_metric_says_nothing(self) -> None:
        own = parse_compare({"retries": 0}, "c", metric_name=SR)
        assert own.with_mesh_retries(3) == own
        assert parse_compare({}, "c", metric_name=SR).with_mesh_retries(3).retries == 3
        assert parse_compare({}, "c", metric_name=SR).with_mesh_retries(500).retries == 100
        latency = parse_compare({}, "c", metric_name="request-duration")
        assert latency.with_mesh_retries(3) == latency

    def test_metric_check_carries_the_compare_spec(self) -> None:
        check = metric_check_from_spec(
            {"name": SR, "compare": {"alpha": 0.05, "onMaxInconclusive": "pass"}}, path="m[0]"
        )
        assert check.compare is not None
        assert (check.compare.alpha, check.compare.on_max_inconclusive) == (
            0.05,
            OnMaxInconclusive.PASS,
        )


class TestNumerics:
    @pytest.mark.parametrize(("canary_n", "primary_n"), [(2.0**53, 1.0), (1.0, 2.0**53)])
    def test_the_most_lopsided_window_gives_finite_evidence(
        self, canary_n: float, primary_n: float
    ) -> None:
        # A share that rounds to 1 made log1p(-1) raise ValueError out of the judge.
        lr = stratum_log_lr(canary_n, 5.0, primary_n, 1.0, 1.1)
        assert np.all(np.isfinite(lr))
        state = add_window(new_state(T0), Window(canary_n, 5.0, primary_n, 1.0), ERR, window_end=T1)
        result = decide(ERR, state, metric=SR, last_step=False)
        assert math.isfinite(result.comparison.likelihood_ratio)

    @pytest.mark.parametrize(
        ("p", "z"),
        [
            (0.5, 0.0),
            (0.975, 1.959963984540054),
            (0.99, 2.3263478740408408),
            (1e-6, -4.753424308822899),
        ],
    )
    def test_normal_quantile_known_values(self, p: float, z: float) -> None:
        assert normal_quantile(p) == pytest.approx(z, abs=1e-9)

    @settings(deadline=None)
    @given(st.floats(min_value=1e-12, max_value=1 - 1e-12))
    def test_normal_quantile_inverts_the_cdf(self, p: float) -> None:
        assert normal_cdf(normal_quantile(p)) == pytest.approx(p, rel=1e-7, abs=1e-13)

    def test_histogram_quantile_interpolates_like_promql(self) -> None:
        les = [0.1, 0.2, 0.5, math.inf]
        assert histogram_quantile(0.25, les, [0, 50, 100, 100]) == pytest.approx(0.15)
        assert histogram_quantile(0.99, les, [0, 0, 90, 100]) == pytest.approx(
            0.5
        )  # in +Inf bucket
        assert math.isnan(histogram_quantile(0.5, les, [0, 0, 0, 0]))

    def test_degenerate_windows_carry_no_evidence(self) -> None:
        for args in [(0, 0, 100, 3), (100, 3, 0, 0), (100, 0, 100, 0)]:
            assert not np.any(stratum_log_lr(*args, theta0=1.1))


counts = st.integers(min_value=1, max_value=5000)


@st.composite
def windows(draw: st.DrawFn, *, max_windows: int = 6) -> list[tuple[int, int, int, int]]:
    out = []
    for _ in range(draw(st.integers(1, max_windows))):
        n_c, n_p = draw(counts), draw(counts)
        out.append((n_c, draw(st.integers(0, n_c)), n_p, draw(st.integers(0, n_p))))
    return out


class TestErrorRateProperties:
    @settings(deadline=None)
    @given(
        st.lists(
            st.tuples(st.integers(1, 3000), st.floats(0, 0.5), st.integers(1, 20)),
            min_size=1,
            max_size=8,
        )
    )
    def test_identical_rates_never_fail(self, data: list[tuple[int, float, int]]) -> None:
        ws = []
        for n, rate, m in data:
            x = round(n * rate)
            ws.append(Window(n, x, n * m, x * m))  # primary has m times the traffic, same rate
        outcome, lr, _ = judge(ws)
        assert outcome is not Outcome.FAIL
        assert lr <= 1.0 + 1e-9

    @settings(deadline=None)
    @given(windows())
    def test_a_better_canary_is_never_failed(self, ws: list[tuple[int, int, int, int]]) -> None:
        # the test is one-sided: swapping roles of a FAIL never gives a FAIL
        fwd, _, _ = judge([Window(*w) for w in ws])
        back, _, _ = judge([Window(w[2], w[3], w[0], w[1]) for w in ws])
        assert not (fwd is Outcome.FAIL and back is Outcome.FAIL)

    @settings(deadline=None)
    @given(windows())
    def test_the_evidence_does_not_depend_on_window_order(
        self, ws: list[tuple[int, int, int, int]]
    ) -> None:
        # Each window's evidence is its own. The verdict may depend on the order through
        # the scatter, which asks whether neighbouring windows agree (a canary that starts
        # failing mid-run is no scatter: docs/analysis.md, "A ratio that changes"), and the
        # evidence through its floor, which restarts a bet sunk 20 nats deep (TestALongRun):
        # without it, the sum is the same in any order.
        with mock.patch.object(_compare, "EVIDENCE_FLOOR", math.inf):
            _, _, s1 = judge([Window(*w) for w in ws])
            _, _, s2 = judge([Window(*w) for w in reversed(ws)])
        assert s1.log_lr == pytest.approx(s2.log_lr, rel=1e-9, abs=1e-9)

    @settings(deadline=None)
    @given(windows(), st.integers(0, 6), st.integers(1, 500))
    def test_more_canary_errors_never_lower_the_evidence_for_a_regression(
        self, ws: list[tuple[int, int, int, int]], index: int, extra: int
    ) -> None:
        # Per alternative and before the dispersion correction, the evidence is
        # monotone in the canary's errors (the dispersion may then discount it).
        i = index % len(ws)
        n_c, x_c, n_p, x_p = ws[i]
        worse = list(ws)
        worse[i] = (n_c, min(n_c, x_c + extra), n_p, x_p)
        _, _, s1 = judge([Window(*w) for w in ws])
        _, _, s2 = judge([Window(*w) for w in worse])
        assert all(b >= a - 1e-9 for a, b in zip(s1.log_lr, s2.log_lr, strict=True))

    def test_a_clear_regression_fails_with_the_numbers(self) -> None:
        state = new_state(T0)
        for k in (1, 2):
            state = add_window(
                state, Window(920, 26, 8000, 32), ERR, window_end=T0 + timedelta(minutes=k)
            )
        r = decide(ERR, state, metric=SR)
        assert r.outcome is Outcome.FAIL and r.conclusive
        c = r.comparison
        assert (c.canary_samples, c.primary_samples, c.canary_events, c.primary_events) == (
            1840,
            16000,
            52,
            64,
        )
        assert c.canary_value == pytest.approx(100 * 52 / 1840)
        assert c.difference == pytest.approx(100 * 52 / 1840 - 100 * 64 / 16000)
        assert c.p_value <= 0.01 and c.likelihood_ratio >= 100
        assert (
            r.summary
            == "success rate 97.17% (primary 99.6%, n=1,840), worse by 2.43 points, p=0.0011"
        )

    def test_one_interval_alone_cannot_fail_however_bad(self) -> None:
        # A pod that fails for a minute is not a regression: each interval's
        # evidence is capped below the rejection level, the next one decides.
        state = add_window(
            new_state(T0), Window(1000, 400, 9000, 90), ERR, window_end=T0 + timedelta(minutes=1)
        )
        first = decide(ERR, state, metric=SR, last_step=False)
        assert first.outcome is Outcome.PASS
        assert "worse in these numbers, not significant yet (p=" in first.summary
        state = add_window(
            first.state, Window(1000, 400, 9000, 90), ERR, window_end=T0 + timedelta(minutes=2)
        )
        assert decide(ERR, state, metric=SR).outcome is Outcome.FAIL

    @pytest.mark.parametrize(("alpha", "floor"), [(0.01, 0.01), (0.001, 0.001), (0.1, 0.01)])
    def test_one_interval_alone_cannot_erase_the_evidence_of_the_others(
        self, alpha: float, floor: float
    ) -> None:
        # A minute in which a primary pod fails makes the canary look far better: its
        # likelihood ratio for a regression is e^-1350, but it costs at most log(1/alpha)
        # (and 4.6 nats when alpha is larger than 1%).
        spec = parse_compare({"warmup": "0s", "alpha": alpha}, "c", metric_name=SR)
        assert min(stratum_log_lr(1000, 10, 9000, 2000, spec.allowed_increase)) < -1000

        def run(first_minute: Window) -> SequentialState:
            state = add_window(
                new_state(T0), first_minute, spec, window_end=T0 + timedelta(minutes=1)
            )
            for k in range(2, 5):  # then three minutes of a canary failing twice as often
                state = add_window(
                    state, Window(1000, 40, 9000, 180), spec, window_end=T0 + timedelta(minutes=k)
                )
            return state

        after_bad_pod = run(Window(1000, 10, 9000, 2000))
        after_calm = run(Window(1000, 10, 9000, 90))
        buried = max(after_calm.log_lr) - max(after_bad_pod.log_lr)
        assert 0 < buried <= math.log(1 / floor) + 1e-9

    def test_the_cap_scales_with_the_window_length(self) -> None:
        # Ten 6-second windows of a 1m interval may add no more than one minute's worth.
        state = new_state(T0)
        for k in range(1, 11):
            state = add_window(
                state, Window(100, 40, 900, 9), ERR, window_end=T0 + timedelta(seconds=6 * k)
            )
        one_minute = add_window(
            new_state(T0), Window(1000, 400, 9000, 90), ERR, window_end=T0 + timedelta(minutes=1)
        )
        # (each window's stake of 1 - alpha costs the ten a hundredth of a nat more than the one)
        assert max(state.log_lr) <= max(one_minute.log_lr)
        assert max(state.log_lr) == pytest.approx(max(one_minute.log_lr), abs=0.05)

    @pytest.mark.parametrize("minutes", [2, 5])
    def test_a_window_longer_than_the_interval_cannot_fail_alone(self, minutes: int) -> None:
        # An analysis interval of 2m on a metric of 1m, or a tick delayed by a restart: the
        # window is longer than one interval, and scaled with its length its cap let one
        # bad minute in it decide the run. It adds no more than one interval's.
        long = add_window(
            new_state(T0),
            Window(1000 * minutes, 400, 9000 * minutes, 90),
            ERR,
            window_end=T0 + timedelta(minutes=minutes),
        )
        one = add_window(
            new_state(T0), Window(1000, 400, 9000, 90), ERR, window_end=T0 + timedelta(minutes=1)
        )
        assert max(long.log_lr) == pytest.approx(max(one.log_lr))
        first = decide(ERR, long, metric=SR, last_step=False)
        assert first.outcome is Outcome.PASS
        state = add_window(
            first.state,
            Window(1000, 400, 9000, 90),
            ERR,
            window_end=T0 + timedelta(minutes=minutes + 1),
        )
        assert decide(ERR, state, metric=SR).outcome is Outcome.FAIL

    def test_false_alarms_stay_below_alpha_under_repeated_looks(self) -> None:
        rng = np.random.default_rng(7)
        runs, looks, fails = 400, 10, 0
        for _ in range(runs):
            state = new_state(T0)
            p = rng.uniform(0.001, 0.05)
            for k in range(looks):
                n_c, n_p = int(rng.integers(30, 3000)), int(rng.integers(300, 30000))
                w = Window(n_c, rng.binomial(n_c, p), n_p, rng.binomial(n_p, p))
                state = add_window(state, w, ERR, window_end=T0 + timedelta(minutes=k))
                if decide(ERR, state, metric=SR).outcome is Outcome.FAIL:
                    fails += 1
                    break
        assert fails / runs <= ERR.alpha


class TestPracticalGuards:
    def test_tiny_absolute_gap_does_not_fail(self) -> None:
        # 3 errors in 60k canary requests vs none in 600k primary: significant but irrelevant
        outcome, _, _ = judge([Window(60000, 3, 600000, 0)])
        assert outcome is Outcome.PASS

    def test_allowed_increase_tolerates_small_ratios(self) -> None:
        spec = parse_compare(
            {"allowedIncrease": 3.0, "minDifference": 0, "warmup": "0s"}, "c", metric_name=SR
        )
        outcome, _, _ = judge([Window(20000, 400, 200000, 2000)], spec)  # 2% vs 1%: ratio 2 < 3
        assert outcome is Outcome.PASS

    def test_the_primary_is_weighed_as_the_canary_saw_it(self) -> None:
        # The weight grows from 1% to 50% while the shared base rate falls from 4% to 1%: the
        # canary fails twice as often as the primary in every window, but the crude totals
        # set the primary's early, error-heavy windows against the canary's late ones: 2.63%
        # against 2.64%, the canary would look no worse than the primary at all.
        weights_and_rates = [(0.01, 0.04), (0.05, 0.03), (0.25, 0.015), (0.5, 0.01)]
        windows = [
            Window(100_000 * w, 100_000 * w * 2 * rate, 100_000 * (1 - w), 100_000 * (1 - w) * rate)
            for w, rate in weights_and_rates
        ]
        state = new_state(T0)
        for i, w in enumerate(windows):
            state = add_window(state, w, ERR, window_end=T0 + timedelta(minutes=i + 1))
        r = decide(ERR, state, metric=SR, last_step=False)
        crude = 100 * state.primary_events / state.primary_requests
        assert r.comparison.canary_value is not None and r.comparison.primary_value is not None
        assert r.comparison.canary_value < crude  # what the crude totals would compare
        assert r.comparison.ratio == pytest.approx(2.0)
        assert r.outcome is Outcome.FAIL
        assert "(primary 98.69%" in r.summary  # 100% - the matched 1,065 / 81,000


def scarce(spec: CompareSpec, ticks: int, **kw: bool) -> list[CompareResult]:
    state, results = new_state(T0), []
    for k in range(1, ticks + 1):
        state = add_window(state, Window(10, 0, 10, 0), spec, window_end=T0 + timedelta(minutes=k))
        r = decide(spec, state, metric=SR, **kw)
        state = r.state
        results.append(r)
    return results


class TestInconclusive:
    def test_scarce_data_holds_then_stalls_without_a_threshold(self) -> None:
        spec = parse_compare({"maxInconclusive": 2, "warmup": "0s"}, "c", metric_name=SR)
        results = scarce(spec, 4)
        assert [r.outcome for r in results] == [Outcome.INCONCLUSIVE] * 4
        assert [r.stalled for r in results] == [False, False, True, True]
        assert "still inconclusive after 3 checks (maxInconclusive 2)" in results[2].summary
        assert results[2].summary.endswith("; holding")  # the controller says how to resume

    def test_scarce_data_falls_back_to_a_passing_threshold(self) -> None:
        spec = parse_compare({"maxInconclusive": 1, "warmup": "0s"}, "c", metric_name=SR)
        results = scarce(spec, 3, has_threshold=True)
        assert [r.outcome for r in results] == [
            Outcome.INCONCLUSIVE,
            Outcome.PASS,
            Outcome.PASS,
        ]
        assert "the thresholdRange decides, and it passed" in results[1].summary

    def test_fail_is_an_explicit_choice_and_never_conclusive(self) -> None:
        spec = parse_compare(
            {"maxInconclusive": 2, "onMaxInconclusive": "fail", "warmup": "0s"},
            "c",
            metric_name=SR,
        )
        results = scarce(spec, 4)
        assert [r.outcome for r in results] == [
            Outcome.INCONCLUSIVE,
            Outcome.INCONCLUSIVE,
            Outcome.FAIL,
            Outcome.FAIL,
        ]
        assert not results[2].conclusive  # a failed check, not an immediate rollback

    def test_on_max_inconclusive_pass(self) -> None:
        spec = parse_compare(
            {"maxInconclusive": 0, "onMaxInconclusive": "pass", "warmup": "0s"},
            "c",
            metric_name=SR,
        )
        r = scarce(spec, 1)[0]
        assert r.outcome is Outcome.PASS and not r.conclusive

    def test_advance_lets_the_step_move_but_never_promotes(self) -> None:
        spec = parse_compare(
            {"maxInconclusive": 1, "onInconclusive": "advance", "warmup": "0s"},
            "c",
            metric_name=SR,
        )
        early = scarce(spec, 3, last_step=False)
        assert all(r.outcome is Outcome.INCONCLUSIVE and r.may_advance for r in early)
        assert all(r.state.inconclusive == 0 for r in early)  # stepping up is not a hold
        last = scarce(spec, 3, last_step=True)
        assert [r.may_advance for r in last] == [False, False, False]
        assert [r.stalled for r in last] == [False, True, True]

    def test_enough_data_resets_the_counter(self) -> None:
        state = add_window(
            new_state(T0), Window(10, 0, 10, 0), ERR, window_end=T0 + timedelta(minutes=1)
        )
        state = decide(ERR, state, metric=SR).state
        assert state.inconclusive == 1
        state = add_window(state, Window(500, 1, 500, 1), ERR, window_end=T0 + timedelta(minutes=2))
        assert decide(ERR, state, metric=SR, last_step=False).state.inconclusive == 0

    def test_a_regression_fails_before_the_minimum_sample(self) -> None:
        # The evidence is valid at any sample size: waiting for 100 requests
        # would only expose more users to a canary that fails half its requests.
        state = new_state(T0)
        for k in (1, 2, 3):
            state = add_window(
                state, Window(30, 15, 300, 3), ERR, window_end=T0 + timedelta(minutes=k)
            )
        r = decide(ERR, state, metric=SR)
        assert r.comparison.canary_samples < ERR.min_sample_size
        assert r.outcome is Outcome.FAIL


class TestScatterInTheMessage:
    @staticmethod
    def run(canary_errors: list[int]) -> CompareResult:
        state = new_state(T0)
        for k, errors in enumerate(canary_errors, 1):
            window = Window(1000, errors, 9000, 108)
            state = add_window(state, window, ERR, window_end=T0 + timedelta(minutes=k))
            result = decide(ERR, state, metric=SR, last_step=False)
            state = result.state
        return result

    def test_scattered_errors_say_why_the_test_needs_so_many_requests(self) -> None:
        # The canary's errors come a whole minute's worth at once (a retry storm): 24, then
        # none, as often as the primary's steady rate would give 12 a minute.
        scattered = self.run([0, 24, 0, 24])
        steady = self.run([12, 12, 12, 12])
        assert scattered.comparison.dispersion > 5
        shown = f"{scattered.comparison.dispersion:.1f}"
        assert scattered.summary.endswith(
            f"canary requests to detect, errors {shown}x as scattered as independent ones; "
            "4,000 so far)"
        )
        assert scattered.comparison.needed_samples is not None
        assert steady.comparison.needed_samples is not None
        assert scattered.comparison.needed_samples > 3 * steady.comparison.needed_samples
        assert "scattered" not in steady.summary

    def test_declared_retries_are_named_as_where_the_figure_comes_from(self) -> None:
        # Steady errors, but retries declared: the estimate starts at 3 and the verdict says
        # the figure is the declared policy's, not something the windows showed.
        spec = parse_compare({"retries": 2}, "c", metric_name=SR)
        state = new_state(T0)
        for k in range(1, 4):
            window = Window(1000, 12, 9000, 108)
            state = add_window(state, window, spec, window_end=T0 + timedelta(minutes=k))
            result = decide(spec, state, metric=SR, last_step=False)
            state = result.state
        assert 2.0 < result.comparison.dispersion < 3.0
        assert (
            "as scattered as independent ones (starting from 2 declared retries)" in result.summary
        )

    def test_a_hold_for_evidence_at_the_last_step_says_it_too(self) -> None:
        # 4,000 canary requests a minute whose errors swing 0.6% <-> 1.8% (the primary: 1.2%
        # steady); at the last step the judge holds for the requests it needs.
        state = new_state(T0)
        for k, rate in enumerate([0.006, 0.018], 1):
            window = Window(4000, round(4000 * rate), 36000, round(36000 * 0.012))
            state = add_window(state, window, ERR, window_end=T0 + timedelta(minutes=k))
            held = decide(ERR, state, metric=SR, last_step=True)
            state = held.state
        assert held.outcome is Outcome.INCONCLUSIVE
        shown = f"{held.comparison.dispersion:.1f}"
        assert float(shown) >= 1.5
        assert f"canary requests needed to detect x2, errors {shown}x as scattered as " in (
            held.summary
        )


class TestARegressionThatStartsLate:
    @pytest.mark.parametrize("factor", [3, 10, 30])
    def test_a_canary_that_starts_failing_mid_run_is_rolled_back(self, factor: int) -> None:
        # 1% like the primary for three minutes, then `factor` times that. Around one common
        # ratio the windows disagreed, the scatter read the regression as clusters (phi up
        # to 30), and a canary failing 30% of its requests was promoted.
        def windows(k: int) -> Window:
            return Window(1000, 10 * (factor if k > 3 else 1), 9000, 90)

        runs = run_errors(windows, 10)
        assert any(r.outcome is Outcome.FAIL for r in runs)
        first = next(k for k, r in enumerate(runs, 1) if r.outcome is Outcome.FAIL)
        assert first <= 7
        assert runs[first - 1].comparison.dispersion < 2.0


class TestALongRun:
    def test_a_regression_after_a_long_good_run_is_caught_within_minutes(self) -> None:
        # 150 good minutes at 10,000 canary requests a minute, then 5% errors against 1%:
        # the evidence against a regression is floored, so it need not first be paid back
        # (without the floor: 96 minutes, and exp() overflowed 331 good minutes in).
        state = new_state(T0)
        spec = parse_compare({}, "c", metric_name=SR)
        for minute in range(1, 200):
            bad = minute > 150
            window = Window(10_000, 500 if bad else 100, 90_000, 900)
            state = add_window(state, window, spec, window_end=T0 + timedelta(minutes=minute))
            result = decide(spec, state, metric=SR, last_step=False)
            state = result.state
            if result.outcome is Outcome.FAIL:
                break
        assert result.outcome is Outcome.FAIL and result.conclusive, result.summary
        assert 150 < minute <= 160, minute
        assert min(state.log_lr) >= -EVIDENCE_FLOOR - 5.0

    def test_a_late_regression_is_not_vetoed_by_rates_the_good_hours_dilute(self) -> None:
        # 300 good minutes, then 2% errors against 1%: significant within minutes thanks to
        # the floor, but the run-long rates (1.05% against 1% at minute 330) are within
        # allowedIncrease; the last 60 windows' are not, and say so (without them: minute
        # 334, 24 later).
        state = new_state(T0)
        spec = parse_compare({}, "c", metric_name=SR)
        for minute in range(1, 400):
            canary_errors = 20 if minute > 300 else 10
            window = Window(1000, canary_errors, 9000, 90)
            state = add_window(state, window, spec, window_end=T0 + timedelta(minutes=minute))
            result = decide(spec, state, metric=SR, last_step=False)
            state = result.state
            if result.outcome is Outcome.FAIL:
                break
        assert result.outcome is Outcome.FAIL, result.summary
        assert 300 < minute <= 330, minute
        assert "over the last 60 windows (canary 98.8" in result.summary, result.summary
        assert "the run-long values hide a regression that began late" in result.summary

    def test_evidence_stored_before_the_floor_does_not_overflow(self) -> None:
        # A status written before the floor may hold -800 nats: the p-value is 1, no
        # OverflowError, and the next window starts from the floor.
        spec = ERR
        state = add_window(new_state(T0), Window(1000, 10, 9000, 90), spec, window_end=T1)
        deep = dataclasses.replace(state, log_lr=tuple(-800.0 for _ in state.log_lr))
        result = decide(spec, deep, metric=SR, last_step=False)
        assert result.outcome is Outcome.PASS and result.comparison.p_value == 1.0
        later = add_window(
            deep, Window(1000, 10, 9000, 90), spec, window_end=T1 + timedelta(minutes=1)
        )
        assert -EVIDENCE_FLOOR - 5.0 <= min(later.log_lr) <= -EVIDENCE_FLOOR


class TestWarmup:
    @pytest.mark.parametrize(
        ("window", "said"),
        [
            (Window(1, 0, 10, 0), "errors 0% of 1 canary request vs 0% of 10 on the primary"),
            (Window(0, 0, 10, 1), "no canary requests yet; errors 10% of 10 on the primary"),
            # "vs none on the primary" read as no errors there, not as no requests
            (Window(5, 1, 0, 0), "errors 20% of 5 canary requests; no primary requests yet"),
            (
                Window(0, 0, 0, 0),
                "warming up (60s observed, not judged): no requests yet on either side",
            ),
        ],
    )
    def test_a_warm_up_says_its_counts_in_words(self, window: Window, said: str) -> None:
        spec = parse_compare({}, "c", metric_name=SR)
        state = add_window(new_state(T0), window, spec, window_end=T0 + timedelta(minutes=1))
        assert decide(spec, state, metric=SR).summary.endswith(said)

    def test_a_judged_window_ends_the_warm_up_for_good(self) -> None:
        # Whatever the spec says later (a longer warm-up), a run that has judged a window is
        # past its warm-up: taken back into it, the evidence froze and a failing canary passed.
        short = parse_compare({"warmup": "1m"}, "c", metric_name=SR)
        longer = parse_compare({"warmup": "10m"}, "c", metric_name=SR)
        state = new_state(T0)
        for k, spec in ((1, short), (2, short), (3, longer)):
            state = add_window(
                state, Window(1000, 10, 9000, 90), spec, window_end=T0 + timedelta(minutes=k)
            )
        assert (state.warm_windows, state.windows) == (1, 2)

    def test_warm_up_windows_are_reported_not_judged(self) -> None:
        spec = parse_compare({}, "c", metric_name=SR)  # warm-up: one interval by default
        state = add_window(
            new_state(T0), Window(600, 300, 6000, 60), spec, window_end=T0 + timedelta(minutes=1)
        )
        r = decide(spec, state, metric=SR)
        assert r.outcome is Outcome.INCONCLUSIVE and r.warming_up
        assert r.state.inconclusive == 0  # warming up spends no inconclusive budget
        assert set(r.state.log_lr) == {0.0}
        assert (
            "warming up (60s observed, not judged): errors 50% of 600 canary requests" in r.summary
        )
        state = add_window(
            r.state, Window(600, 6, 6000, 60), spec, window_end=T0 + timedelta(minutes=2)
        )
        after = decide(spec, state, metric=SR, last_step=False)
        assert after.outcome is Outcome.PASS and not after.warming_up
        assert after.comparison.canary_events == 6  # the warm-up's 300 errors are not judged

    @pytest.mark.parametrize("stalled_minute", ["first judged", "warm-up"])
    def test_the_boundaries_are_the_lower_of_the_warm_primarys_and_the_first_windows(
        self, stalled_minute: str
    ) -> None:
        # A primary pod stalls: a fifth of the primary's requests are five times slower. In
        # the first judged minute, its pooled boundaries would sit far out, where the later
        # windows have no slow requests, and the warm primary's usual tail sets them; in the
        # warm-up, the first judged minute's pooled ones stand.
        spec = parse_compare({"minSampleSize": 50}, "c", metric_name="request-duration")
        canary = hist([200, 600, 180, 18, 2, 0])
        usual = hist([2000, 6000, 1800, 180, 20, 0])
        stalled = hist([1600, 4800, 1440, 544, 1200, 416])
        warm_primary, first_primary = (
            (usual, stalled) if stalled_minute == "first judged" else (stalled, usual)
        )
        warm = add_histograms(
            new_state(T0, CompareTest.LATENCY), canary, warm_primary, spec, window_end=T1
        )
        assert warm.bounds == () and warm.warm_bounds
        first = add_histograms(
            warm, canary, first_primary, spec, window_end=T1 + timedelta(minutes=1)
        )
        _, pooled = window_from_histograms(
            canary, first_primary, spec.quantile, RANKS[CompareTest.LATENCY]
        )
        lower = min(warm.warm_bounds, pooled, key=lambda bounds: bounds[0])
        assert first.bounds == lower and warm.warm_bounds[0] != pooled[0]
        assert (lower == warm.warm_bounds) is (stalled_minute == "first judged")
        assert first.warm_bounds == ()  # a candidate no longer, once the boundaries are fixed
        restored = SequentialState.from_status(json.loads(json.dumps(warm.to_status())))
        assert restored.warm_bounds == warm.warm_bounds

    def test_a_warm_up_shorter_than_the_interval_is_the_first_window(self) -> None:
        # The first window is a whole interval long; a window that ends past the warm-up is
        # judged, so 30s of a 1m metric counts as the interval (it would leave nothing out).
        spec = parse_compare({"warmup": "30s"}, "c", metric_name=SR)
        assert spec.warmup_for(60.0) == 60.0 and spec.warmup_for(10.0) == 30.0
        first = add_window(
            new_state(T0), Window(600, 60, 6000, 60), spec, window_end=T0 + timedelta(minutes=1)
        )
        assert decide(spec, first, metric=SR).warming_up
        second = add_window(
            first, Window(600, 6, 6000, 60), spec, window_end=T0 + timedelta(minutes=2)
        )
        assert not decide(spec, second, metric=SR).warming_up
        assert parse_compare({"warmup": "0s"}, "c", metric_name=SR).warmup_for(60.0) == 0.0

    def test_warmup_zero_judges_from_the_first_window(self) -> None:
        spec = parse_compare({"warmup": "0s"}, "c", metric_name=SR)
        state = add_window(
            new_state(T0), Window(600, 6, 6000, 60), spec, window_end=T0 + timedelta(minutes=1)
        )
        assert not decide(spec, state, metric=SR).warming_up


class TestPower:
    def test_the_last_step_holds_for_the_evidence_the_effect_needs(self) -> None:
        state = add_window(
            new_state(T0), Window(5000, 50, 5000, 50), ERR, window_end=T0 + timedelta(minutes=1)
        )
        held = decide(ERR, state, metric=SR, last_step=True)
        assert held.outcome is Outcome.INCONCLUSIVE and not held.stalled
        needed = held.comparison.needed_samples
        assert needed is not None and 5000 < needed <= 5000 * (ERR.max_inconclusive + 1)
        assert f"holding for the {needed:,} canary requests needed to detect x2" in held.summary
        assert decide(ERR, state, metric=SR, last_step=False).outcome is Outcome.PASS

    def test_out_of_reach_evidence_passes_and_says_so(self) -> None:
        state = add_window(
            new_state(T0), Window(200, 1, 2000, 10), ERR, window_end=T0 + timedelta(minutes=1)
        )
        r = decide(ERR, state, metric=SR, last_step=True)
        assert r.outcome is Outcome.PASS
        assert "canary requests to detect; 200 so far" in r.summary

    @pytest.mark.parametrize(
        ("log_lambda", "error_holds", "latency_holds"),
        [(2.0, True, True), (1.0, False, True), (0.0, False, False), (-1.0, False, False)],
    )
    def test_at_the_last_step_latency_holds_while_the_evidence_favours_a_regression(
        self, log_lambda: float, error_holds: bool, latency_holds: bool
    ) -> None:
        # Plenty of requests and no errors: neither test holds for the requests it needs,
        # only for evidence that leans (errors: p < 0.25; latency: likelihood ratio over 1).
        def held(spec: CompareSpec, metric: str) -> bool:
            state = new_state(T0, spec.test)
            state = dataclasses.replace(
                state,
                log_lr=tuple(log_lambda for _ in state.log_lr),
                windows=3,
                canary_requests=1e7,
                primary_requests=1e7,
            )
            r = decide(spec, state, metric=metric, last_step=True)
            assert r.outcome is not Outcome.FAIL
            assert ("leaning towards a regression" in r.summary) == (
                r.outcome is Outcome.INCONCLUSIVE
            )
            return r.outcome is Outcome.INCONCLUSIVE

        assert held(ERR, SR) == error_holds
        assert held(LAT, "request-duration") == latency_holds

    def test_needed_samples_shrink_as_the_effect_to_detect_grows(self) -> None:
        def needed(detect: float) -> int:
            spec = parse_compare({"detectIncrease": detect, "warmup": "0s"}, "c", metric_name=SR)
            state = add_window(
                new_state(T0),
                Window(2000, 20, 2000, 20),
                spec,
                window_end=T0 + timedelta(minutes=1),
            )
            n = decide(spec, state, metric=SR).comparison.needed_samples
            assert n is not None
            return n

        assert needed(1.5) > needed(2.0) > needed(5.0)


def hist(
    counts_per_bucket: list[int], les: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, math.inf)
) -> list[Bucket]:
    running, out = 0, []
    for le, c in zip(les, counts_per_bucket, strict=True):
        running += c
        out.append((le, float(running)))
    return out


class TestLatencyProperties:
    @settings(deadline=None)
    @given(st.lists(st.integers(0, 400), min_size=6, max_size=6), st.integers(1, 10))
    def test_identical_distributions_never_fail(self, per_bucket: list[int], m: int) -> None:
        state = add_histograms(
            new_state(T0, CompareTest.LATENCY),
            hist(per_bucket),
            hist([c * m for c in per_bucket]),
            LAT,
            window_end=T0,
        )
        assert decide(LAT, state, metric="request-duration").outcome is not Outcome.FAIL

    @settings(deadline=None)
    @given(
        st.lists(st.integers(0, 300), min_size=6, max_size=6),
        st.integers(0, 4),
        st.integers(1, 300),
    )
    def test_slower_canary_is_never_judged_better(
        self, per_bucket: list[int], src: int, moved: int
    ) -> None:
        primary = hist([c * 5 for c in per_bucket])
        slower = list(per_bucket)
        k = min(moved, slower[src])
        slower[src] -= k
        slower[src + 1] += k  # k requests move one bucket slower
        base = decide(
            LAT,
            add_histograms(
                new_state(T0, CompareTest.LATENCY), hist(per_bucket), primary, LAT, window_end=T1
            ),
            metric="d",
        )
        worse = decide(
            LAT,
            add_histograms(
                new_state(T0, CompareTest.LATENCY), hist(slower), primary, LAT, window_end=T1
            ),
            metric="d",
        )
        assert SEVERITY[worse.outcome] >= SEVERITY[base.outcome]

    def test_a_slow_canary_fails_with_quantiles_in_ms(self) -> None:
        primary = hist([2000, 6000, 1800, 180, 20, 0])
        canary = hist([50, 300, 400, 200, 50, 0])
        state = add_histograms(
            new_state(T0, CompareTest.LATENCY), canary, primary, LAT, window_end=T1
        )
        state = add_histograms(state, canary, primary, LAT, window_end=T1 + timedelta(minutes=1))
        r = decide(LAT, state, metric="request-duration", buckets_to_ms=1000)
        assert r.outcome is Outcome.FAIL
        assert r.comparison.canary_value is not None and r.comparison.primary_value is not None
        assert r.comparison.canary_value > 2 * r.comparison.primary_value
        assert r.summary.startswith("request duration p99 ")


def run_errors(windows: Callable[[int], Window], ticks: int) -> list[CompareResult]:
    state, out = new_state(T0), []
    for k in range(1, ticks + 1):
        state = add_window(state, windows(k), ERR, window_end=T0 + timedelta(minutes=k))
        r = decide(ERR, state, metric=SR, last_step=False)
        out.append(r)
        state = r.state
    return out


def run_latency(
    canary: list[Bucket],
    primary: Callable[[int], list[Bucket]],
    ticks: int,
    spec: CompareSpec = LAT,
) -> list[CompareResult]:
    state, out = new_state(T0, CompareTest.LATENCY), []
    for k in range(1, ticks + 1):
        window_end = T0 + timedelta(minutes=k)
        state = add_histograms(state, canary, primary(k), spec, window_end=window_end)
        r = decide(spec, state, metric="request-duration", buckets_to_ms=1000, last_step=False)
        out.append(r)
        state = r.state
    return out


USUAL = hist([2000, 6000, 1800, 180, 20, 0])
STALLED = hist([1600, 4800, 1440, 544, 1200, 416])  # a fifth of the requests 5x slower


class TestOneWildWindowOfThePrimary:
    """A wild minute of the primary sets its run-long values; the relevance check asks the
    rest (the counts decide significance window by window either way)."""

    def test_errors_a_worse_canary_fails_though_a_failing_minute_sets_the_primarys_rate(
        self,
    ) -> None:
        # In minute 2 a primary pod fails a sixth of the primary's requests: the primary's
        # rate over the run is then above the canary's, which fails twice as often as the
        # primary in every other minute.
        runs = run_errors(lambda k: Window(1000, 20, 9000, 1500 if k == 2 else 90), 6)
        assert [r.outcome for r in runs] == [Outcome.PASS] * 5 + [Outcome.FAIL]
        assert runs[-1].summary == (
            "success rate 98% (primary 96.39%, n=6,000), worse by 1 point leaving out one "
            "window in which the primary failed far more (errors there: canary 20 of 1,000, "
            "primary 1,500 of 9,000; the rest: canary 98%, primary 99%), p=0.0023"
        )

    def test_errors_the_rest_must_still_show_a_relevant_gap(self) -> None:
        # Significant, and without the wild window 0.05% against 0.025%: below minDifference
        # (0.1 points), so no FAIL.
        runs = run_errors(lambda k: Window(20000, 10, 180000, 2000 if k == 2 else 45), 10)
        assert runs[-1].comparison.p_value < ERR.alpha
        assert all(r.outcome is Outcome.PASS for r in runs)
        assert "statistically worse (p=0.0082) but within" in runs[-1].summary

    def test_only_the_primarys_wild_window_is_left_out(self) -> None:
        # A wild window in which the canary had the events shows a regression; it hides
        # none, and leaving it out must not be offered as the reason for a FAIL.
        recent = ((1000.0, 9000.0, 20.0, 90.0),) * 5 + ((1000.0, 9000.0, 500.0, 90.0),)
        state = dataclasses.replace(
            new_state(T0),
            recent=recent,
            canary_requests=6000.0,
            canary_events=600.0,
            primary_requests=54000.0,
            primary_events=540.0,
            matched=(6000.0, 60.0),  # each window's canary requests at the primary's rate
            windows=6,
        )
        comparison = decide(ERR, state, metric=SR).comparison
        evidence = (tuple(1.0 for _ in RATIO_GRID), (1.0,))
        assert _without_wild_window(ERR, state, SR, comparison, evidence, 1.0) is None
        primary_wild = (*recent[:5], (1000.0, 9000.0, 20.0, 1500.0))
        state = dataclasses.replace(
            state,
            recent=primary_wild,
            canary_events=120.0,
            primary_events=1950.0,
            matched=(6000.0, 50.0 + 1000.0 * 1500.0 / 9000.0),
        )
        said = _without_wild_window(ERR, state, SR, comparison, evidence, 1.0)
        assert said is not None and "the rest: canary 98%, primary 99%" in said

    def test_latency_a_slower_canary_fails_though_a_stalled_minute_sets_the_primarys_p99(
        self,
    ) -> None:
        # In minute 2 a primary pod stalls: the primary's p99 over the run is then above the
        # canary's, which is slower than the primary's in every other minute.
        canary = hist([200, 560, 200, 30, 10, 0])
        runs = run_latency(canary, lambda k: STALLED if k == 2 else USUAL, 5)
        assert [r.outcome for r in runs] == [Outcome.PASS] * 4 + [Outcome.FAIL]
        comparison = runs[-1].comparison
        assert comparison.canary_value is not None and comparison.primary_value is not None
        assert comparison.canary_value < comparison.primary_value  # 100 against 193 ms
        assert runs[-1].summary.startswith(
            "request duration p99 100ms (primary 193ms, n=5,000), 4% of the canary's requests "
            "took over 50ms, 2% of the primary's, leaving out one window in which the primary "
            "was far slower (21.6% of its requests over 50ms"
        )

    @pytest.mark.parametrize(
        ("case", "canary", "primary", "settings"),
        [
            # a set minDifference asks the run-long quantiles, and keeps the stall's veto
            ("minDifference set", [200, 560, 200, 30, 10, 0], None, {"minDifference": 5}),
            # no wild window: more canary requests past the p90's boundary, fewer past the
            # p99's; significant at the p90's boundary, and the p99s' sign vetoes it
            (
                "slower body, faster p99",
                [200, 300, 250, 240, 10, 0],
                [3000, 4000, 1100, 700, 150, 50],
                {},
            ),
        ],
    )
    def test_latency_vetoes_that_stay(
        self,
        case: str,
        canary: list[int],
        primary: list[int] | None,
        settings: dict[str, Any],
    ) -> None:
        spec = parse_compare(
            {"minSampleSize": 50, "warmup": "0s", **settings}, "c", metric_name="request-duration"
        )
        steady = hist(primary) if primary is not None else None
        runs = run_latency(
            hist(canary), lambda k: steady or (STALLED if k == 2 else USUAL), 10, spec
        )
        assert runs[-1].comparison.p_value < spec.alpha, case
        assert all(r.outcome is Outcome.PASS for r in runs), case

    def test_latency_both_quantiles_past_the_last_boundary(self) -> None:
        # 6% against 2.2% of the requests past 200 ms: both p99s read 200 ms.
        primary = hist([3000, 4000, 1100, 500, 200, 200])
        canary = hist([300, 400, 110, 50, 80, 60])
        runs = run_latency(canary, lambda k: primary, 2)
        assert runs[-1].outcome is Outcome.FAIL
        assert runs[-1].summary.startswith("request duration p99 over 200ms (primary over 200ms")
        assert "slower where these buckets cannot measure it (both over 200ms)" in (
            runs[-1].summary
        )

    @pytest.mark.parametrize("min_difference", [0, 50])
    def test_a_canary_quantile_past_the_last_boundary_is_a_lower_bound(
        self, min_difference: int
    ) -> None:
        # Every canary request takes over 200 ms, where the primary's p99 is 190 ms: the
        # canary's p99 reads as 200 ms, 10 ms slower, but only the buckets stop there. A
        # minDifference of 50 ms vetoed it, and the canary was promoted.
        spec = parse_compare(
            {"warmup": "0s", "minDifference": min_difference}, "c", metric_name="request-duration"
        )
        primary = hist([2000, 6000, 1000, 0, 1000, 0])
        runs = run_latency(hist([0, 0, 0, 0, 0, 100]), lambda k: primary, 4, spec)
        assert runs[-1].outcome is Outcome.FAIL
        assert runs[-1].summary.startswith("request duration p99 over 200ms (primary 190ms")
        assert "slower by at least 5.26% (+10ms)" in runs[-1].summary

    def test_a_latency_veto_names_what_latency_asks(self) -> None:
        # Latency is not vetoed by allowedIncrease (the test itself asks it): the sentence
        # names the quantile and minDifference instead.
        spec = parse_compare(
            {"minSampleSize": 50, "warmup": "0s", "minDifference": 5},
            "c",
            metric_name="request-duration",
        )
        canary = hist([200, 560, 200, 30, 10, 0])
        runs = run_latency(canary, lambda k: STALLED if k == 2 else USUAL, 10, spec)
        assert runs[-1].outcome is Outcome.PASS
        assert "but its p99 is within minDifference 5ms of the primary's" in runs[-1].summary
        assert "allowedIncrease" not in runs[-1].summary


class TestState:
    def test_status_round_trip_through_json(self) -> None:
        state = add_histograms(
            new_state(T0, CompareTest.LATENCY),
            hist([5, 10, 5, 1, 0, 0]),
            hist([50, 100, 50, 9, 1, 0]),
            LAT,
            window_end=T1,
        )
        r = decide(LAT, state, metric="request-duration")
        v = Verdict(
            metric="request-duration",
            outcome=r.outcome,
            summary=r.summary,
            evaluated_at=T0,
            judge="compare",
            value=r.value,
            unit=r.unit,
            comparison=r.comparison,
            state=r.state,
        )
        restored = Verdict.from_status(json.loads(json.dumps(v.to_status())))
        assert restored == v
        assert restored.state is not None and restored.state.hist_le[-1] == math.inf
        again = decide(LAT, restored.state, metric="request-duration")
        assert (again.outcome, again.summary) == (
            r.outcome,
            r.summary.replace("(inconclusive 1 of 5)", "(inconclusive 2 of 5)"),
        )

    def test_corrupt_state_is_a_spec_error(self) -> None:
        with pytest.raises(AnalysisSpecError, match=r"status\.state"):
            SequentialState.from_status({"windowEnd": "x"})
        with pytest.raises(AnalysisSpecError, match=r"status"):
            Verdict.from_status({"metric": SR, "outcome": "Pass", "state": ["oops"]})

    def test_the_judges_clock_survives_the_round_trip_to_the_microsecond(self) -> None:
        # Cut to the millisecond, a window ending 600 us after T1 came back ending at T1,
        # and the warm-up's end moved between a verdict and its status.
        end = T1 + timedelta(microseconds=600)
        state = add_window(new_state(T0), Window(100, 1, 900, 9), ERR, window_end=end)
        restored = SequentialState.from_status(json.loads(json.dumps(state.to_status())))
        assert (restored.window_end, restored.started) == (state.window_end, state.started)

    def test_fractional_counts_never_make_a_rate_over_100_percent(self) -> None:
        # increase() extrapolates: 2.6 requests, every one failed. Rounding the errors but
        # not the requests gave 3 errors of 2.6 requests: a success rate of -15%.
        state = add_window(new_state(T0), Window(2.6, 2.6, 120.4, 1.2), ERR, window_end=T1)
        assert (state.canary_requests, state.canary_events) == (3.0, 3.0)
        r = decide(ERR, state, metric=SR)
        assert r.value is not None and 0.0 <= r.value <= 100.0


CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="kubernetes")


def rates(
    canary_err: float, primary_err: float, n_c: float = 1000, n_p: float = 9000
) -> Callable[[str, bool, bool], float]:
    def answer(query: str, primary: bool, errors: bool) -> float:
        n = n_p if primary else n_c
        return n * (primary_err if primary else canary_err) if errors else n

    return answer


class TestEvaluateCompare:
    async def test_windows_chain_without_gaps_or_overlap(self) -> None:
        check = metric_check_from_spec(
            {"name": SR, "interval": "1m", "compare": {"warmup": "0s"}}, path="m"
        )
        provider = CountsProvider(rates(0.01, 0.01))
        v1 = await evaluate(check, CTX, provider, now=T0)
        assert all("[60s]" in q for q, _ in provider.queries)
        assert all(at == T0 for _, at in provider.queries)
        provider.queries.clear()
        v2 = await evaluate(
            check,
            CTX,
            provider,
            now=T0 + timedelta(seconds=75),
            previous=v1.to_status(),
            last_step=False,
        )
        assert all("[75s]" in q for q, _ in provider.queries)
        assert v2.state is not None and v2.state.windows == 2
        assert v2.comparison is not None and v2.comparison.canary_samples == 2000
        assert v2.outcome is Outcome.PASS
        # values in the unit the metric shows: success rates, where the comparison has error rates
        assert (v2.value, v2.primary_value) == (pytest.approx(99.0), pytest.approx(99.0))
        assert v2.comparison.primary_value == pytest.approx(1.0)

    @pytest.mark.parametrize(
        ("canary_errors", "outcome"), [(250.0, Outcome.ERROR), (101.3, Outcome.INCONCLUSIVE)]
    )
    async def test_more_errors_than_requests_is_an_error_not_a_regression(
        self, canary_errors: float, outcome: Outcome
    ) -> None:
        # 250 errors of 100 requests: the errors query counts other requests than the
        # requests query. Capped at 100, they read as a 0% success rate and failed the
        # canary. A little over (increase() extrapolates each series) is a canary that
        # fails every request, and is judged.
        check = metric_check_from_spec(
            {"name": SR, "interval": "1m", "compare": {"warmup": "0s"}}, path="m"
        )

        def answer(query: str, primary: bool, errors: bool) -> float:
            if primary:
                return 9.0 if errors else 900.0
            return canary_errors if errors else 100.0

        v = await evaluate(check, CTX, CountsProvider(answer), now=T0)
        assert v.outcome is outcome
        if outcome is Outcome.ERROR:
            assert v.summary == (
                "request-success-rate: the canary's errors outnumber its requests (250 errors "
                "of 100 requests in 60s): do the requests and errors queries count the same "
                "requests?"
            )

    @pytest.mark.parametrize(
        ("answer", "why"),
        [
            (math.inf, "inf: a count is a finite number"),
            (-math.inf, "-inf: a count is a finite number"),
            (-500.0, "-500: a count cannot be below 0"),
            (1e17, "1e+17: more than any window counts (2^53)"),
        ],
    )
    async def test_a_count_no_count_can_be_is_an_error_naming_the_query(
        self, answer: float, why: str
    ) -> None:
        # Read as 0, as they were, an errors query answering +Inf or -500 (a custom query
        # that divides by zero, or subtracts) passed the canary with "0 errors"; 1e17
        # requests raised a ValueError out of the judge's arithmetic.
        check = metric_check_from_spec(
            {"name": SR, "interval": "1m", "compare": {"warmup": "0s"}}, path="m"
        )

        def counts(query: str, primary: bool, errors: bool) -> float:
            if primary:
                return 9.0 if errors else 900.0
            return answer if errors else 100.0

        v = await evaluate(check, CTX, CountsProvider(counts), now=T0)
        assert v.outcome is Outcome.ERROR
        assert v.summary == (
            f"request-success-rate: the canary's errors query answered {why}; does it count "
            "requests?"
        )

    async def test_a_histogram_count_no_window_holds_is_an_error_not_a_run_restarting(
        self,
    ) -> None:
        # Counts near 1e307 summed to infinity in the stored histograms, which the next tick
        # could not read back: the run restarted on every tick, saying nothing.
        check = metric_check_from_spec(
            {"name": "request-duration", "compare": {"warmup": "0s"}}, path="m"
        )

        def buckets(primary: bool) -> list[Bucket]:
            return [(0.1, 1e307), (math.inf, 1e307)]

        v = await evaluate(check, CTX, CountsProvider(rates(0, 0), buckets=buckets), now=T0)
        assert v.outcome is Outcome.ERROR
        assert v.summary.startswith(
            "request-duration: the canary's histogram query answered 1e+307: more than any "
            "window counts (2^53)"
        )

    async def test_a_count_a_little_below_zero_is_read_as_zero(self) -> None:
        # A query that subtracts two counts, each extrapolated by increase() on its own,
        # can give -0.4 where there were none: rounding, not an impossible answer.
        check = metric_check_from_spec(
            {"name": SR, "interval": "1m", "compare": {"warmup": "0s"}}, path="m"
        )

        def counts(query: str, primary: bool, errors: bool) -> float:
            return (-0.4 if errors else 1000.0) if not primary else (9.0 if errors else 9000.0)

        v = await evaluate(check, CTX, CountsProvider(counts), now=T0)
        assert v.outcome is Outcome.PASS, v.summary
        assert v.comparison is not None and v.comparison.canary_value == 0.0

    async def test_histograms_with_no_boundary_in_common_are_an_error_not_a_blind_pass(
        self,
    ) -> None:
        # The new version exposes other buckets: with no finite boundary in common the
        # test counted every request of both sides past +Inf only, got no evidence ever,
        # and promoted a canary three times slower "not significant".
        check = metric_check_from_spec(
            {"name": "request-duration", "compare": {"warmup": "0s"}}, path="m"
        )
        primary_les = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, math.inf)
        canary_les = (0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, math.inf)

        def buckets(primary: bool) -> list[Bucket]:
            les = primary_les if primary else canary_les
            return [(le, 1000.0 * min(1.0, i / 4)) for i, le in enumerate(les, start=1)]

        v = await evaluate(check, CTX, CountsProvider(rates(0, 0), buckets=buckets), now=T0)
        assert v.outcome is Outcome.ERROR
        assert v.summary == (
            "request-duration: the canary's and the primary's histograms have no bucket "
            "boundary in common (canary le: 0.04, 0.08, 0.16, 0.32, …; primary le: 0.05, 0.1, "
            "0.25, 0.5, …): the latency test compares both sides at the same boundaries; do "
            "both versions expose the same buckets?"
        )

    async def test_a_side_with_fewer_buckets_is_read_at_the_boundaries_both_have(self) -> None:
        # The canary dropped two buckets: its missing boundaries were filled in from the one
        # below, every canary request over 250 ms read as slower than 1 s, and its p99 was
        # reported "over 1000ms" (its own buckets say "over 250ms").
        check = metric_check_from_spec(
            {"name": "request-duration", "compare": {"warmup": "0s"}}, path="m"
        )
        full = {0.05: 0.70, 0.1: 0.90, 0.25: 0.97, 0.5: 0.985, 1.0: 1.0, math.inf: 1.0}

        def buckets(primary: bool) -> list[Bucket]:
            n = 9000.0 if primary else 1000.0
            return [
                (le, n * share)
                for le, share in full.items()
                if primary or le <= 0.25 or math.isinf(le)
            ]

        provider = CountsProvider(rates(0, 0), buckets=buckets)
        v = await evaluate(check, CTX, provider, now=T0)
        later = await evaluate(check, CTX, provider, now=T1, previous=v)
        for verdict in (v, later):
            assert "p99 over 250ms (primary over 250ms" in verdict.summary, verdict.summary
        assert later.state is not None and later.state.hist_le == (0.05, 0.1, 0.25, math.inf)

    @pytest.mark.parametrize(
        ("canary", "primary", "les", "gap"),
        [
            # Slower in its body, the same tail: the quantiles are equal, neither past the
            # last boundary (it read "slower where these buckets cannot measure it (both
            # over 417ms)", a sentence for quantiles past the last boundary).
            (
                (0.5, 0.8, 0.98, 0.995, 1.0),
                (0.5, 0.9, 0.98, 0.995, 1.0),
                (0.05, 0.1, 0.25, 0.5, math.inf),
                "more of its requests are slow, at the same p99",
            ),
            # A primary whose p99 is 0 (an le="0" bucket, a queue mostly empty): no
            # percentage to show (it read "slower by +Inf%").
            (
                (0.95, 0.985, 0.995, 1.0, 1.0),
                (0.995, 0.998, 0.999, 1.0, 1.0),
                (0.0, 0.005, 0.01, 0.025, math.inf),
                "slower by 7.5ms",
            ),
        ],
    )
    async def test_a_latency_failure_says_how_much_slower_in_words_a_user_reads(
        self,
        canary: tuple[float, ...],
        primary: tuple[float, ...],
        les: tuple[float, ...],
        gap: str,
    ) -> None:
        check = metric_check_from_spec(
            {"name": "request-duration", "compare": {"warmup": "0s"}}, path="m"
        )

        def buckets(is_primary: bool) -> list[Bucket]:
            n, shares = (9000.0, primary) if is_primary else (1000.0, canary)
            return [(le, n * share) for le, share in zip(les, shares, strict=True)]

        provider = CountsProvider(rates(0, 0), buckets=buckets)
        v = None
        for minute in range(1, 4):
            v = await evaluate(check, CTX, provider, now=T0 + timedelta(minutes=minute), previous=v)
        assert v is not None
        assert v.outcome is Outcome.FAIL, v.summary
        assert f", {gap}, p" in v.summary, v.summary
        assert "Inf" not in v.summary and "inf" not in v.summary

    async def test_a_clock_that_steps_back_inside_the_warm_up_stays_in_it(self) -> None:
        # The other side of the rule above: a run still warming up is not ended by a clock
        # that steps back a few seconds (a cold canary's failing threshold is not acted on).
        check = metric_check_from_spec(
            {"name": SR, "thresholdRange": {"min": 99}, "compare": {"warmup": "5m"}}, path="m"
        )

        def answer(query: str, primary: bool, errors: bool) -> float:
            if "rate(" in query and "increase" not in query:
                return 90.0
            return 1000.0 * ((0.1 if not primary else 0.001) if errors else 1.0)

        provider = CountsProvider(answer)
        v = None
        for at in (T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)):
            v = await evaluate(check, CTX, provider, now=at, previous=v)
            assert v.outcome is Outcome.INCONCLUSIVE and "warming up" in v.summary, v.summary
        back = await evaluate(
            check, CTX, provider, now=T0 + timedelta(minutes=2, seconds=-5), previous=v
        )
        assert back.outcome is Outcome.INCONCLUSIVE and "warming up" in back.summary, back.summary

    async def test_a_clock_gone_back_before_the_run_is_no_warm_up(self) -> None:
        # A restart on a skewed node: the run's first window began after "now". Read as
        # inside the warm-up, a failing thresholdRange was not acted on.
        check = metric_check_from_spec(
            {"name": SR, "thresholdRange": {"min": 99}, "compare": {}}, path="m"
        )
        reading = {"rate": 99.9}

        def answer(query: str, primary: bool, errors: bool) -> float:
            if "rate(" in query and "increase" not in query:
                return reading["rate"]
            return 1000.0 * (0.001 if errors else 1.0)

        provider = CountsProvider(answer)
        v = None
        for minute in (1, 2, 3):
            v = await evaluate(check, CTX, provider, now=T0 + timedelta(minutes=minute), previous=v)
        assert v is not None
        assert v.outcome is Outcome.PASS, v.summary
        reading["rate"] = 50.0
        back = await evaluate(check, CTX, provider, now=T0 + timedelta(seconds=30), previous=v)
        assert (back.outcome, back.judge) == (Outcome.FAIL, "threshold"), back.summary

    async def test_an_empty_histogram_is_no_data_not_a_crash(self) -> None:
        # The Prometheus provider says an empty vector is no data; another provider may
        # answer no buckets at all, and evaluate() must not raise.
        check = metric_check_from_spec({"name": "request-duration", "compare": {}}, path="m")
        provider = CountsProvider(rates(0, 0), buckets=lambda primary: [])
        v = await evaluate(check, CTX, provider, now=T0)
        assert v.outcome is Outcome.NODATA
        assert "no histogram buckets for the canary" in v.summary

    async def test_re_evaluating_right_away_returns_the_previous_verdict(self) -> None:
        check = metric_check_from_spec({"name": SR, "compare": {}}, path="m")
        provider = CountsProvider(rates(0.01, 0.01))
        v1 = await evaluate(check, CTX, provider, now=T0)
        calls = len(provider.queries)
        v2 = await evaluate(
            check, CTX, provider, now=T0 + timedelta(seconds=3), previous=v1.to_status()
        )
        assert v2 == v1 and len(provider.queries) == calls

    async def test_a_pass_repeated_at_the_last_step_is_asked_as_the_last_step_asks(
        self,
    ) -> None:
        # A PASS that let an earlier step advance, repeated because the next check came
        # sooner than a window: at the last step it must not promote evidence that leans
        # towards a regression (6% errors against none; before, such a canary was promoted).
        check = metric_check_from_spec({"name": SR, "compare": {"warmup": "0s"}}, path="m")
        provider = CountsProvider(rates(0.06, 0.0, n_c=160, n_p=480))
        v1 = await evaluate(check, CTX, provider, now=T0, last_step=False)
        assert v1.outcome is Outcome.PASS and "not significant yet" in v1.summary
        calls = len(provider.queries)
        soon = T0 + timedelta(seconds=4)
        v2 = await evaluate(check, CTX, provider, now=soon, previous=v1.to_status())
        assert len(provider.queries) == calls  # no new window
        assert v2.outcome is Outcome.INCONCLUSIVE, v2.summary
        assert "leaning towards a regression" in v2.summary
        assert v2.state == v1.state  # the hold counts no check until a new window comes
        v3 = await evaluate(check, CTX, provider, now=soon, previous=v2.to_status())
        assert v3 == v2
        # before the last step, the repeated PASS stands
        early = await evaluate(
            check, CTX, provider, now=soon, previous=v1.to_status(), last_step=False
        )
        assert early == v1

    async def test_a_pass_decided_at_the_last_step_stands_when_repeated(self) -> None:
        # Once decided for the last step (here after its hold budget is spent), a PASS is
        # not held again on the same evidence by a check that brings no new window.
        check = metric_check_from_spec(
            {"name": SR, "compare": {"warmup": "0s", "maxInconclusive": 1}}, path="m"
        )
        v = await evaluate(check, CTX, CountsProvider(rates(0.06, 0.0, 160, 480)), now=T0)
        assert v.outcome is Outcome.INCONCLUSIVE and "leaning" in v.summary, v.summary
        calm = CountsProvider(rates(0.0, 0.0, 160, 480))
        v = await evaluate(check, CTX, calm, now=T0 + timedelta(minutes=1), previous=v)
        assert v.outcome is Outcome.PASS, v.summary
        provider = calm
        again = await evaluate(check, CTX, provider, now=T0 + timedelta(seconds=64), previous=v)
        assert again == v

    async def test_a_stale_threshold_failure_is_not_repeated(self) -> None:
        # The thresholdRange failed on the last pass; on this one, sooner than a window, it
        # passes: the answer is the judge's own on its evidence, not the old FAIL again (it
        # was counted as a second failed check).
        check = metric_check_from_spec(
            {"name": SR, "thresholdRange": {"min": 90}, "compare": {"warmup": "0s"}}, path="m"
        )
        reading = {"rate": 100.0}

        def answer(query: str, primary: bool, errors: bool) -> float:
            if "rate(" in query and "increase" not in query:
                return reading["rate"]
            return 1000.0 * (0.01 if errors else 1.0)

        provider = CountsProvider(answer)
        v1 = await evaluate(check, CTX, provider, now=T0, last_step=False)
        assert v1.judge == "compare" and v1.outcome is Outcome.PASS, v1.summary
        reading["rate"] = 85.0
        v2 = await evaluate(
            check, CTX, provider, now=T0 + timedelta(seconds=4), previous=v1, last_step=False
        )
        assert (v2.outcome, v2.judge) == (Outcome.FAIL, "threshold")
        reading["rate"] = 99.0
        v3 = await evaluate(
            check, CTX, provider, now=T0 + timedelta(seconds=8), previous=v2, last_step=False
        )
        assert (v3.outcome, v3.judge) == (Outcome.PASS, "compare"), v3.summary
        assert v3.state == v1.state

    async def test_a_tick_a_moment_short_of_ten_seconds_adds_a_window(self) -> None:
        # Ticks every 10 s come a few milliseconds either side of it: both add a window.
        check = metric_check_from_spec({"name": SR, "compare": {"warmup": "0s"}}, path="m")
        provider = CountsProvider(rates(0.01, 0.01))
        v1 = await evaluate(check, CTX, provider, now=T0)
        soon = T0 + timedelta(seconds=9, milliseconds=990)
        v2 = await evaluate(check, CTX, provider, now=soon, previous=v1)
        assert v2.state is not None and v2.state.windows == 2
        v3 = await evaluate(check, CTX, provider, now=soon + timedelta(seconds=5), previous=v2)
        assert v3 == v2

    async def test_regression_fails_conclusively_after_the_warm_up(self) -> None:
        check = metric_check_from_spec({"name": SR, "compare": {}}, path="m")
        provider = CountsProvider(rates(0.05, 0.005))
        v = None
        for k in range(3):
            v = await evaluate(
                check,
                CTX,
                provider,
                now=T0 + timedelta(minutes=k),
                previous=None if v is None else v.to_status(),
            )
            assert (v.outcome is Outcome.FAIL) == (k == 2), v.summary
        assert v is not None and v.conclusive and v.judge == "compare"
        assert v.summary.startswith(
            "success rate 95% (primary 99.5%, n=2,000), worse by 4.5 points, p=0.001"
        )

    async def test_no_error_series_counts_as_zero_errors(self) -> None:
        def answer(query: str, primary: bool, errors: bool) -> float | Exception:
            return NoDataError("no values") if errors else 500.0

        check = metric_check_from_spec({"name": SR, "compare": {"warmup": "0s"}}, path="m")
        v = await evaluate(check, CTX, CountsProvider(answer), now=T0)
        assert v.outcome is Outcome.PASS and v.comparison is not None
        assert (v.comparison.canary_events, v.comparison.primary_events) == (0, 0)

    async def test_no_canary_traffic_is_no_data_and_keeps_the_evidence(self) -> None:
        check = metric_check_from_spec({"name": SR, "compare": {}}, path="m")
        v1 = await evaluate(check, CTX, CountsProvider(rates(0.01, 0.01)), now=T0)

        def none(query: str, primary: bool, errors: bool) -> float | Exception:
            return NoDataError("no values")

        v2 = await evaluate(
            check, CTX, CountsProvider(none), now=T0 + timedelta(minutes=1), previous=v1.to_status()
        )
        assert v2.outcome is Outcome.NODATA and v2.failed_check
        assert v2.state == v1.state  # window end not advanced: the next window covers the gap

    @pytest.mark.parametrize("name", [SR, "request-duration"])
    async def test_a_primary_without_traffic_is_named_not_the_canary(self, name: str) -> None:
        # Flagger's words blame the target for no data; when the primary's side is the silent
        # one, "probably podinfo.test is not receiving traffic" sent people to the canary.
        check = metric_check_from_spec({"name": name, "compare": {}}, path="m")

        def silent_primary(query: str, primary: bool, errors: bool) -> float | Exception:
            return NoDataError("no values") if primary else 100.0

        def buckets(primary: bool) -> list[Bucket]:
            return [] if primary else [(0.1, 90.0), (0.5, 100.0), (math.inf, 100.0)]

        v = await evaluate(check, CTX, CountsProvider(silent_primary, buckets=buckets), now=T0)
        assert v.outcome is Outcome.NODATA
        assert "probably podinfo-primary.test is not receiving traffic" in v.summary

    async def test_failing_threshold_wins_and_keeps_the_evidence(self) -> None:
        check = metric_check_from_spec(
            {"name": SR, "thresholdRange": {"min": 99}, "compare": {}}, path="m"
        )

        def answer(query: str, primary: bool, errors: bool) -> float:
            return 90.0 if "rate(" in query and "increase" not in query else 1000.0

        warm = await evaluate(check, CTX, CountsProvider(answer), now=T0)
        assert warm.outcome is Outcome.INCONCLUSIVE and warm.warming_up
        assert warm.summary.endswith("success rate 90% < 99% (not acted on during the warm-up)")
        v = await evaluate(
            check,
            CTX,
            CountsProvider(answer),
            now=T0 + timedelta(minutes=1),
            previous=warm.to_status(),
        )
        assert (v.outcome, v.judge, v.summary) == (
            Outcome.FAIL,
            "threshold",
            "success rate 90% < 99%",
        )
        assert not v.conclusive
        assert v.state == warm.state  # the comparison's evidence is carried over untouched

    async def test_latency_from_builtin_buckets(self) -> None:
        check = metric_check_from_spec(
            {"name": "request-duration", "compare": {"minSampleSize": 50, "warmup": "0s"}},
            path="m",
        )
        primary = hist([2000, 6000, 1800, 180, 20, 0])
        canary = hist([50, 300, 400, 200, 50, 0])
        provider = CountsProvider(rates(0, 0), buckets=lambda p: primary if p else canary)
        v = await evaluate(check, CTX, provider, now=T0)
        v = await evaluate(
            check, CTX, provider, now=T0 + timedelta(minutes=1), previous=v.to_status()
        )
        assert v.outcome is Outcome.FAIL and v.unit == "ms"
        assert all("http_request_duration_seconds_bucket" in q for q, _ in provider.queries)

    async def test_a_latency_run_on_coarse_buckets_carries_its_evidence_from_tick_to_tick(
        self,
    ) -> None:
        # 20% of the pooled requests above 20 ms, none above 50 ms: the boundary of the
        # wider tail is the quantile's own, and the run keeps three blocks, not four.
        check = metric_check_from_spec(
            {"name": "request-duration", "compare": {"minSampleSize": 50, "warmup": "0s"}},
            path="m",
        )
        primary = hist([3600, 3600, 1800, 0, 0, 0])
        canary = hist([400, 400, 200, 0, 0, 0])
        provider = CountsProvider(rates(0, 0), buckets=lambda p: primary if p else canary)
        v = await evaluate(check, CTX, provider, now=T0, last_step=False)
        for k in (1, 2):
            v = await evaluate(
                check,
                CTX,
                provider,
                now=T0 + timedelta(minutes=k),
                previous=v.to_status(),
                last_step=False,
            )
        assert v.state is not None and v.state.bounds == (0.02, 0.05, 0.1)
        assert v.state.windows == 3 and v.comparison is not None
        assert v.comparison.canary_samples == 3000

    async def test_template_compare_renders_both_sides(self) -> None:
        check = MetricCheck(
            name="errors",
            query="unused",
            compare=parse_compare(
                {
                    "test": "errorRate",
                    "requestsQuery": 'sum(increase(req{app="{{ target }}"}[{{ interval }}]))',
                    "errorsQuery": 'sum(increase(req{app="{{ target }}",code=~"5.*"}[{{ interval }}]))',
                    "warmup": "0s",
                },
                "m.compare",
            ),
        )
        provider = CountsProvider(rates(0.01, 0.01))
        v = await evaluate(check, CTX, provider, now=T0, last_step=False)
        assert v.outcome is Outcome.PASS
        assert sorted(q for q, _ in provider.queries) == [
            'sum(increase(req{app="podinfo",code=~"5.*"}[60s]))',
            'sum(increase(req{app="podinfo"}[60s]))',
            'sum(increase(req{app="podinfo-primary",code=~"5.*"}[60s]))',
            'sum(increase(req{app="podinfo-primary"}[60s]))',
        ]
        assert v.summary.startswith("errors error rate 1% (primary 1%")
