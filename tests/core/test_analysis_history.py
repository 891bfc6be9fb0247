"""``status.analysisHistory``: the verdicts of the current run and the last runs, bounded.

Every analysed tick adds the verdicts (name, outcome, compact values, the canary's requests,
the flags) at the weight they were judged at to the open run; the way a run ends closes it;
the history keeps at most three runs and the newest thirty ticks of each, so the status
stays small.
"""

from __future__ import annotations

from canary.core import MetricResult, Outcome
from canary.core.history import (
    CLOSED_RUN_TICKS,
    HISTORY_RUNS,
    HISTORY_TICKS,
    close_run,
    record_tick,
)
from canary.model import AnalysisRun, CanaryStatus, Phase
from tests.core.harness import Script, canary_doc, fail_from, finished, new_revision, run

DOC = canary_doc({"stepWeight": 25, "maxWeight": 50, "threshold": 2})


def result(outcome: Outcome = Outcome.PASS, **extra: object) -> MetricResult:
    return MetricResult("request-success-rate", outcome, "s", **extra)  # type: ignore[arg-type]


class TestRecording:
    def test_a_promoted_run_keeps_each_analysed_tick_at_its_weight(self) -> None:
        outcomes = {3: Outcome.INCONCLUSIVE}
        run_result = run(DOC, 12, Script(metrics=outcomes), until=finished)
        assert run_result.last.phase is Phase.SUCCEEDED
        (history,) = run_result.status.analysis_history
        assert history.result == "Succeeded" and history.ended
        assert history.revision == run_result.status.current_revision
        assert [t.weight for t in history.ticks] == [25, 25, 50]
        assert [t.verdicts[0].outcome for t in history.ticks] == ["Inconclusive", "Pass", "Pass"]
        assert history.ticks[0].time < history.ticks[1].time

    def test_a_rolled_back_run_ends_failed_with_its_reason(self) -> None:
        run_result = run(DOC, 12, Script(metrics=fail_from(3)), until=finished)
        assert run_result.last.phase is Phase.FAILED
        history = run_result.status.analysis_history[-1]
        assert history.result == "Failed"
        assert "failed checks threshold reached 2" in history.reason
        assert [t.verdicts[0].outcome for t in history.ticks] == ["Fail", "Fail"]

    def test_a_new_revision_mid_run_restarts_the_history_and_forgets_the_verdicts(self) -> None:
        script = Script(before={4: new_revision("v3", "main@sha1:3333")})
        run_result = run(DOC, 6, script, new_git_revision="main@sha1:2222")
        restarted = run_result[4].status
        assert [r.result for r in restarted.analysis_history] == ["Restarted"]
        assert restarted.analysis_history[0].reason == "new revision main@sha1:3333"
        assert restarted.analysis == ()  # the old revision's evidence is not carried over
        after = run_result.status.analysis_history
        assert len(after) == 2 and after[-1].open and after[-1].revision == "main@sha1:3333"

    def test_values_are_kept_to_four_significant_digits_with_samples_and_flags(self) -> None:
        history = record_tick(
            (),
            (
                result(
                    Outcome.INCONCLUSIVE,
                    value=99.87654,
                    primary_value=float("nan"),
                    samples=40,
                    may_advance=True,
                ),
            ),
            revision="r1",
            run_started="2026-01-01T00:00:00Z",
            now="2026-01-01T00:01:00Z",
            weight=10,
        )
        verdict = history[0].ticks[0].verdicts[0]
        assert verdict.value == 99.88 and verdict.primary_value is None
        assert verdict.to_dict() == {
            "name": "request-success-rate",
            "outcome": "Inconclusive",
            "value": 99.88,
            "samples": 40,
            "mayAdvance": True,
        }


class TestBounds:
    def test_a_long_run_keeps_its_newest_ticks(self) -> None:
        history: tuple[AnalysisRun, ...] = ()
        for minute in range(HISTORY_TICKS + 5):
            history = record_tick(
                history,
                (result(),),
                revision="r1",
                run_started="2026-01-01T00:00:00Z",
                now=f"2026-01-01T{minute // 60:02d}:{minute % 60:02d}:30Z",
                weight=minute,
            )
        (only,) = history
        assert len(only.ticks) == HISTORY_TICKS
        assert only.ticks[0].weight == 5 and only.ticks[-1].weight == HISTORY_TICKS + 4
        assert only.started == "2026-01-01T00:00:00Z"
        (ended,) = close_run(history, now="2026-01-01T01:00:00Z", result="Succeeded")
        assert len(ended.ticks) == CLOSED_RUN_TICKS  # an ended run keeps how it ended
        assert ended.ticks[-1].weight == HISTORY_TICKS + 4

    def test_only_the_last_runs_are_kept(self) -> None:
        history: tuple[AnalysisRun, ...] = ()
        for index in range(HISTORY_RUNS + 2):
            now = f"2026-01-0{index + 1}T00:00:00Z"
            history = record_tick(
                history, (result(),), revision=f"r{index}", run_started=now, now=now, weight=10
            )
            history = close_run(history, now=now, result="Succeeded")
        assert [r.revision for r in history] == [f"r{i}" for i in range(2, HISTORY_RUNS + 2)]

    def test_a_restarted_run_that_kept_its_start_time_starts_at_the_restart(self) -> None:
        # A new revision restarts the run and keeps runStartTime: the new run began when the
        # last one ended (T02), not at its first analysed tick (T03, after its warm-up ticks
        # or a pre-rollout hook), nor at the first run's start (T00).
        first = record_tick((), (result(),), revision="r1", run_started="T00", now="T01", weight=10)
        closed = close_run(first, now="T02", result="Restarted")
        second = record_tick(
            closed, (result(),), revision="r2", run_started="T00", now="T03", weight=10
        )
        assert second[-1].started == "T02"


class TestStatus:
    def test_the_history_round_trips_through_the_status(self) -> None:
        run_result = run(DOC, 12, Script(metrics={3: Outcome.INCONCLUSIVE}), until=finished)
        status = run_result.status
        assert CanaryStatus.from_dict(status.to_dict()) == status

    def test_a_mangled_history_reads_as_what_can_be_read(self) -> None:
        status = CanaryStatus.from_dict(
            {
                "analysisHistory": [
                    "junk",
                    {"revision": 3, "ticks": [{"weight": "x", "verdicts": [{"name": "m"}, 1]}]},
                ],
                "stalled": None,
            }
        )
        (history,) = status.analysis_history
        assert history.revision == "3" and history.ticks[0].weight == 0
        assert history.ticks[0].verdicts[0].name == "m"
        assert status.stalled == ""
