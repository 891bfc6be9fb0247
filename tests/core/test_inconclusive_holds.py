"""Inconclusive verdicts hold explicitly, never fail by themselves; advisory metrics never act.

An inconclusive result holds the step. Its refinements decide the rest: a warming-up result
holds silently, a result that may advance lets the weight step up but never promotes (nor
finishes the iterations), a stalled one holds with the AnalysisStalled condition and one
alert per stall. A ``dryRun`` metric is reported and never fails, holds or rolls back.
"""

from __future__ import annotations

from collections.abc import Callable

from canary.core import AlertKind, MetricResult, Outcome
from canary.model import Phase, Severity
from tests.core.harness import Script, canary_doc, run

SUCCESS = "request-success-rate"
DURATION = "request-duration"
TWO_METRICS = [
    {"name": SUCCESS, "thresholdRange": {"min": 99}},
    {"name": DURATION, "thresholdRange": {"max": 500}, "dryRun": True},
]

Results = Callable[[int, tuple[str, ...]], tuple[MetricResult, ...] | None]


def passed(name: str = SUCCESS) -> MetricResult:
    return MetricResult(name, Outcome.PASS, f"{name} passed", value=99.9)


def inconclusive(name: str = SUCCESS, **flags: bool) -> MetricResult:
    return MetricResult(
        name,
        Outcome.INCONCLUSIVE,
        f"{name}: too little data",
        samples=40,
        primary_samples=380,
        needed_samples=1200,
        **flags,
    )


def per_tick(plan: dict[int, MetricResult], default: MetricResult | None = None) -> Results:
    """One metric's result per tick (the default elsewhere: a pass)."""

    def results(tick: int, names: tuple[str, ...]) -> tuple[MetricResult, ...]:
        return (plan.get(tick, default or passed(names[0])),)

    return results


class TestMayAdvance:
    def test_inconclusive_that_may_advance_steps_up_but_holds_at_the_last_step(self) -> None:
        doc = canary_doc({"stepWeight": 10, "maxWeight": 30})
        plan = {tick: inconclusive(may_advance=True) for tick in range(3, 9)}
        result = run(doc, 10, Script(results=per_tick(plan)))
        assert result.canary_weights_set()[:3] == [10, 20, 30]
        assert all(t.phase is Phase.PROGRESSING for t in result.ticks[:8])
        assert result[8].weight == 30 and result[8].has_event("does not promote")
        assert result.first(Phase.PROMOTING) == 9  # the first conclusive pass promotes
        assert all(t.failed_checks == 0 for t in result.ticks)
        assert result[8].status.inconclusive_checks == 6

    def test_one_result_that_may_not_advance_holds_the_step(self) -> None:
        metrics = [
            {"name": SUCCESS, "thresholdRange": {"min": 99}},
            {"name": DURATION, "thresholdRange": {"max": 500}},
        ]
        doc = canary_doc({"stepWeight": 10, "maxWeight": 30, "metrics": metrics})

        def results(tick: int, names: tuple[str, ...]) -> tuple[MetricResult, ...] | None:
            return (inconclusive(may_advance=True), inconclusive(DURATION)) if tick == 3 else None

        result = run(doc, 3, Script(results=results))
        assert result[3].set_routes == ()
        assert result[3].has_event("waiting for more data")

    def test_a_held_tick_names_what_holds_it_and_never_claims_a_step_up(self) -> None:
        """An advance-able verdict's summary says it steps up (the judge's words); held by
        another metric, warming up or inconclusive without advance, the weight does not move,
        so the Event, the message and the alert name the holder and say the other waits."""
        metrics = [
            {"name": SUCCESS, "thresholdRange": {"min": 99}},
            {"name": DURATION, "thresholdRange": {"max": 500}},
        ]
        doc = canary_doc({"stepWeight": 10, "maxWeight": 30, "metrics": metrics})
        stepping = MetricResult(
            SUCCESS,
            Outcome.INCONCLUSIVE,
            f"{SUCCESS}: too little data; stepping up for more traffic (onInconclusive: advance)",
            may_advance=True,
        )
        duration = {
            3: inconclusive(DURATION, warming_up=True),
            4: MetricResult(DURATION, Outcome.INCONCLUSIVE, "too little data (1 of 3)"),
        }

        def results(tick: int, names: tuple[str, ...]) -> tuple[MetricResult, ...] | None:
            return (stepping, duration[tick]) if tick in duration else None

        result = run(doc, 4, Script(results=results))
        waits = f"{SUCCESS} inconclusive, waits for it (onInconclusive: advance)"
        halt = "Halt podinfo.test advancement waiting for more data: "
        assert result[3].events == (f"{halt}{DURATION} warming up; {waits}",)
        assert result[4].events == (f"{halt}{DURATION}: too little data (1 of 3); {waits}",)
        for record in (result[3], result[4]):
            assert record.set_routes == () and record.weight == 10
            said = [*record.events, record.status.message, *(a.message for a in record.alerts)]
            assert not [text for text in said if "stepping up" in text]
        assert result[3].status.message.endswith(f"{DURATION} warming up; {waits}")
        assert [a.message for a in result[3].alerts] == [
            f"Canary analysis is inconclusive: {DURATION} warming up; {waits}"
        ]

    def test_ab_testing_reaches_its_last_iteration_but_never_promotes_on_an_inconclusive_tick(
        self,
    ) -> None:
        # Iteration 2 of 3 is not the last step (the analysis is not told it is, and lets
        # it advance without counting a hold): holding there held the canary for ever.
        doc = canary_doc(
            {"iterations": 3, "match": [{"headers": {"x-canary": {"exact": "insider"}}}]}
        )
        plan = {tick: inconclusive(may_advance=True) for tick in range(2, 7)}
        result = run(doc, 8, Script(results=per_tick(plan)))
        iterations = [t.iterations for t in result.ticks]
        assert max(iterations[:6]) == 3  # iteration 3 of 3 waits for a conclusive tick
        assert result[6].has_event("at iteration 3/3: an inconclusive analysis does not promote")
        assert result.first(Phase.PROMOTING) is not None
        assert result.first(Phase.PROMOTING) > 6  # type: ignore[operator]


class TestStall:
    def test_a_stall_holds_sets_a_condition_and_alerts_once(self) -> None:
        doc = canary_doc({"stepWeight": 10, "maxWeight": 30})
        plan = {tick: inconclusive(stalled=True) for tick in range(3, 8)}
        result = run(doc, 9, Script(results=per_tick(plan)))
        stalled = result[5].status
        condition = stalled.condition("AnalysisStalled")
        assert condition is not None and condition.status == "True"
        assert (
            "success-rate: too little data (the primary: 380 requests); waiting for more traffic"
            in condition.message
        )
        assert "canary promote --full" in condition.message and "canary abort" in condition.message
        promoted = stalled.condition("Promoted")
        assert promoted is not None and promoted.reason == "Progressing"
        assert [t.weight for t in result.ticks[2:7]] == [10] * 5
        alerts = [(t.tick, a.kind) for t in result.ticks for a in t.alerts]
        assert [a for a in alerts if a[1] is AlertKind.ANALYSIS_STALLED] == [
            (3, AlertKind.ANALYSIS_STALLED)
        ]
        assert not [a for a in alerts if a[1] is AlertKind.INCONCLUSIVE]
        assert all(t.failed_checks == 0 for t in result.ticks)

    def test_a_stall_ends_when_the_data_decides(self) -> None:
        doc = canary_doc({"stepWeight": 10, "maxWeight": 30})
        plan = {tick: inconclusive(stalled=True) for tick in range(3, 5)}
        result = run(doc, 6, Script(results=per_tick(plan)))
        assert result[4].status.stalled
        assert result[5].status.stalled == ""
        assert result[5].status.condition("AnalysisStalled") is None
        assert result[5].set_routes  # the step moves again

    def test_a_second_stall_alerts_again(self) -> None:
        doc = canary_doc({"stepWeight": 10, "maxWeight": 50})
        plan = {3: inconclusive(stalled=True), 5: inconclusive(stalled=True)}
        result = run(doc, 6, Script(results=per_tick(plan)))
        stalls = [
            t.tick for t in result.ticks for a in t.alerts if a.kind.value == "AnalysisStalled"
        ]
        assert stalls == [3, 5]
        assert all(
            a.severity is Severity.WARN
            for a in result.alerts()
            if a.kind.value == "AnalysisStalled"
        )


class TestWarmUp:
    def test_warming_up_holds_silently_with_one_event_per_run(self) -> None:
        doc = canary_doc({"stepWeight": 10, "maxWeight": 30})
        plan = {3: inconclusive(warming_up=True), 4: inconclusive(warming_up=True)}
        result = run(doc, 8, Script(results=per_tick(plan)))
        assert [t.weight for t in result.ticks[1:5]] == [10, 10, 10, 20]
        kinds = {a.kind for a in result.alerts()}
        assert AlertKind.INCONCLUSIVE not in kinds and AlertKind.ANALYSIS_STALLED not in kinds
        warm_events = [e for e in result.events() if "warming up" in e]
        assert len(warm_events) == 1
        assert result[4].status.inconclusive_checks == 0
        assert result.first(Phase.PROMOTING) is not None


class TestAdvisory:
    def test_a_failing_advisory_metric_never_fails_holds_or_rolls_back(self) -> None:
        doc = canary_doc(
            {"stepWeight": 10, "maxWeight": 30, "threshold": 1, "metrics": TWO_METRICS}
        )
        outcomes = [Outcome.FAIL, Outcome.NODATA, Outcome.ERROR, Outcome.INCONCLUSIVE]

        def results(tick: int, names: tuple[str, ...]) -> tuple[MetricResult, ...]:
            bad = outcomes[tick % len(outcomes)]
            advisory = MetricResult(
                DURATION, bad, f"{DURATION} {bad.value}", advisory=True, fail_fast=True
            )
            return (passed(), advisory)

        result = run(doc, 8, Script(results=results))
        assert all(t.failed_checks == 0 for t in result.ticks)
        assert result.canary_weights_set()[:3] == [10, 20, 30]
        assert result.first(Phase.PROMOTING) == 5
        assert result.first(Phase.FAILED) is None
        assert {a.kind for a in result.alerts()} <= {AlertKind.STARTED, AlertKind.PROMOTED}
        recorded = result[3].status.analysis[1]
        assert recorded.advisory and recorded.to_dict()["advisory"] is True
        assert any("Advisory metric request-duration (dryRun" in e for e in result.events())

    def test_an_advisory_event_is_not_repeated_while_the_outcome_stays(self) -> None:
        doc = canary_doc({"stepWeight": 10, "maxWeight": 50, "metrics": TWO_METRICS})

        def results(tick: int, names: tuple[str, ...]) -> tuple[MetricResult, ...]:
            slow = MetricResult(DURATION, Outcome.FAIL, "slow", advisory=True)
            return (passed(), slow)

        result = run(doc, 6, Script(results=results))
        assert len([e for e in result.events() if "Advisory metric" in e]) == 1

    def test_an_advisory_metric_leaving_the_warm_up_inconclusive_is_reported_once(self) -> None:
        """A warm-up verdict is recorded as Inconclusive, but it is no outcome: the first
        inconclusive verdict after it is news (one Event), the same outcome after is not."""
        doc = canary_doc({"stepWeight": 10, "maxWeight": 50, "metrics": TWO_METRICS})
        warm = inconclusive(DURATION, warming_up=True, advisory=True)
        unsure = inconclusive(DURATION, advisory=True)
        plan = {3: warm, 4: warm, 5: unsure, 6: unsure, 7: unsure}

        def results(tick: int, names: tuple[str, ...]) -> tuple[MetricResult, ...]:
            return (passed(), plan.get(tick, passed(DURATION)))

        result = run(doc, 7, Script(results=results))
        reported = [
            (t.tick, e) for t in result.ticks for e in t.events if e.startswith("Advisory metric")
        ]
        assert reported == [
            (
                5,
                f"Advisory metric {DURATION} (dryRun, not acted on) of podinfo.test: "
                f"Inconclusive: {DURATION}: too little data",
            )
        ]


class TestLastStep:
    """The analysis is told when a pass would take the run's last step (the compare judge
    then holds for the evidence its configured effect needs; docs/analysis.md)."""

    @staticmethod
    def last_steps(result: object) -> list[bool]:
        from canary.core import AnalysisRequest

        return [
            r.last_step
            for tick in result.ticks  # type: ignore[attr-defined]
            for r in tick.requests
            if isinstance(r, AnalysisRequest)
        ]

    def test_a_canary_is_at_its_last_step_at_max_weight(self) -> None:
        # analyses at 10%, 20% and 30%: only a pass at 30% promotes
        result = run(canary_doc({"stepWeight": 10, "maxWeight": 30}), 6)
        assert self.last_steps(result) == [False, False, True]
        assert result.first(Phase.PROMOTING) is not None

    def test_ab_testing_is_at_its_last_step_at_its_last_iteration(self) -> None:
        doc = canary_doc(
            {"iterations": 3, "match": [{"headers": {"x-canary": {"exact": "insider"}}}]}
        )
        result = run(doc, 7)
        assert self.last_steps(result) == [False, False, True]
        assert result.first(Phase.PROMOTING) is not None
