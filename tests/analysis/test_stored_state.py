"""The judge's evidence as the Canary status stores it: a corrupt stored state starts a new run.

The status is the controller's only memory, and a person, an older controller or a bad
write may leave a state in it that ``SequentialState.to_status`` could not have written.
``evaluate`` must then start a new run (the restore's ``AnalysisSpecError``), never raise,
and every status it writes must be strict JSON (Kubernetes stores no NaN or Infinity).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import math
import pathlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import (
    AnalysisSpecError,
    Bucket,
    MetricCheck,
    QueryContext,
    SequentialState,
    Verdict,
    evaluate,
    metric_check_from_spec,
)
from tests.analysis.fakes import CountsProvider

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CTX = QueryContext(name="podinfo", namespace="test", target="podinfo", provider="kubernetes")
SR = "request-success-rate"
RD = "request-duration"
CANARY_REQUESTS = 1000.0
"""Canary requests per window: a new run's first window shows exactly these."""


def _counts(query: str, primary: bool, errors: bool) -> float:
    n = 9 * CANARY_REQUESTS if primary else CANARY_REQUESTS
    return n * 0.01 if errors else n


def _histogram(primary: bool) -> list[Bucket]:
    scale = 9.0 if primary else 1.0
    per_bucket = [(0.01, 200), (0.02, 560), (0.05, 200), (0.1, 30), (0.2, 10), (math.inf, 0)]
    out, running = [], 0.0
    for le, count in per_bucket:
        running += count * scale
        out.append((le, running))
    return out


def steady() -> CountsProvider:
    """A fake metric server with the same traffic every window: 1% errors on both sides, and
    the same latency histogram (cumulative, seconds) on both sides."""
    return CountsProvider(_counts, buckets=_histogram)


def check_of(name: str) -> MetricCheck:
    compare = {"warmup": "1m", "minSampleSize": 50}
    return metric_check_from_spec({"name": name, "interval": "1m", "compare": compare}, path="m")


def tick(check: MetricCheck, minute: float, previous: Verdict | dict[str, Any] | None) -> Verdict:
    now = T0 + timedelta(minutes=minute)
    return asyncio.run(evaluate(check, CTX, steady(), now=now, previous=previous))


@cache
def _stored(name: str, ticks: int) -> str:
    check, v = check_of(name), None
    for k in range(ticks):
        v = tick(check, k, v.to_status() if v is not None else None)
    assert v is not None
    return json.dumps(v.to_status(), allow_nan=False)


def stored(name: str, ticks: int = 4) -> dict[str, Any]:
    """The status a real run wrote after ``ticks`` ticks, read back as the controller reads
    it (a fresh copy each time: the tests edit it)."""
    status: dict[str, Any] = json.loads(_stored(name, ticks))
    return status


def strict_json(v: Verdict) -> dict[str, Any]:
    """The status ``v`` writes, through the strict JSON Kubernetes stores."""
    status: dict[str, Any] = json.loads(json.dumps(v.to_status(), allow_nan=False))
    return status


def assert_new_run(v: Verdict) -> None:
    """``v`` judged one window of a new run, not the stored evidence and the window after it."""
    assert v.state is not None
    assert (v.state.windows, v.state.warm_windows) == (0, 1)  # the warm-up's first window
    strict_json(v)


def next_tick(name: str, status: dict[str, Any]) -> Verdict:
    return tick(check_of(name), 4, status)


class TestNumbersThatAreNotFinite:
    @pytest.mark.parametrize("side", ["canary", "primary"])
    @pytest.mark.parametrize("count", ["+Inf", "-Inf", "NaN"])
    def test_a_stored_count_that_is_not_finite_starts_a_new_run_instead_of_raising(
        self, side: str, count: str
    ) -> None:
        # The status writes an infinite or NaN number as these strings (_num); read back,
        # they reached round() in the judge: OverflowError, ValueError out of evaluate().
        status = stored(SR)
        status["state"][side] = [count, 10]
        assert_new_run(next_tick(SR, status))

    def test_a_stored_count_of_infinity_names_the_field(self) -> None:
        status = stored(SR)
        status["state"]["canary"] = ["+Inf", 10]
        with pytest.raises(AnalysisSpecError) as info:
            SequentialState.from_status(status["state"])
        assert info.value.path == "status.state.canary[0]"
        assert "expected a finite number" in str(info.value)

    def test_a_stored_count_too_large_for_a_float_starts_a_new_run_instead_of_raising(
        self,
    ) -> None:
        # JSON's integers have no limit; float() of this one raised OverflowError, which the
        # restore did not take for a corrupt state.
        status = stored(SR)
        status["state"]["primary"] = [10**400, 10]
        assert_new_run(next_tick(SR, status))

    def test_infinite_stored_evidence_starts_a_new_run_and_the_status_stays_strict_json(
        self,
    ) -> None:
        # Accepted, it went on into the new status as a raw inf: not JSON Kubernetes stores.
        status = stored(SR)
        status["state"]["logLR"][0] = "+Inf"
        assert_new_run(next_tick(SR, status))

    @pytest.mark.parametrize(
        ("field", "change"),
        [
            ("logLR", lambda s: dataclasses.replace(s, log_lr=(math.nan, *s.log_lr[1:]))),
            ("maxLogLambda", lambda s: dataclasses.replace(s, max_log_lambda=math.inf)),
            (
                "recentCaps",
                lambda s: dataclasses.replace(s, recent_caps=(-math.inf, *s.recent_caps[1:])),
            ),
        ],
        ids=["logLR", "maxLogLambda", "recentCaps"],
    )
    def test_evidence_that_is_not_finite_is_written_as_strict_json(
        self, field: str, change: Callable[[SequentialState], SequentialState]
    ) -> None:
        # Written raw, it made a status Kubernetes does not store; written as _num writes
        # numbers JSON has no word for, it reads back as a corrupt state: a new run.
        state = Verdict.from_status(stored(RD)).state
        assert state is not None and state.recent_caps
        written = json.dumps(change(state).to_status(), allow_nan=False)
        with pytest.raises(AnalysisSpecError) as info:
            SequentialState.from_status(json.loads(written))
        assert info.value.path in (f"status.state.{field}", f"status.state.{field}[0]")
        assert "expected a finite number" in str(info.value)


class TestShapes:
    @pytest.mark.parametrize(
        "row", [[CANARY_REQUESTS], [], [1000, 9000, 10], [1000, 9000, 10, 90, 5]]
    )
    def test_a_recent_window_with_too_few_or_odd_counts_starts_a_new_run(
        self, row: list[float]
    ) -> None:
        # Rows of fewer than two numbers raised IndexError in the scatter.
        status = stored(SR)
        status["state"]["recent"][0] = row
        assert_new_run(next_tick(SR, status))
        with pytest.raises(AnalysisSpecError) as info:
            SequentialState.from_status(status["state"])
        assert info.value.path == "status.state.recent[0]"

    def test_a_string_where_the_recent_windows_belong_starts_a_new_run(self) -> None:
        # Iterated, "12" read as two windows of one count each (1 and 2).
        status = stored(SR)
        status["state"]["recent"] = "12"
        assert_new_run(next_tick(SR, status))
        with pytest.raises(AnalysisSpecError, match=r"status\.state\.recent: .*got \"12\""):
            SequentialState.from_status(status["state"])

    @pytest.mark.parametrize("side", ["le", "canary", "primary"])
    def test_latency_histograms_of_unequal_length_start_a_new_run(self, side: str) -> None:
        # zip(strict=True) raised ValueError out of evaluate() when the window was added.
        status = stored(RD)
        status["state"]["hist"][side].pop()
        assert_new_run(next_tick(RD, status))
        with pytest.raises(AnalysisSpecError) as info:
            SequentialState.from_status(status["state"])
        assert info.value.path == "status.state.hist"

    @pytest.mark.parametrize(
        ("field", "when"),
        [
            ("windowEnd", "9999-12-31T23:59:59-01:00"),
            ("started", "0001-01-01T00:00:00+01:00"),
        ],
    )
    def test_a_stored_time_that_utc_cannot_hold_starts_a_new_run(
        self, field: str, when: str
    ) -> None:
        # Read as it was, it raised OverflowError out of evaluate() when the new status was
        # written in UTC.
        status = stored(SR)
        status["state"][field] = when
        assert_new_run(next_tick(SR, status))

    def test_more_stored_events_than_requests_start_a_new_run(self) -> None:
        # 2,000 errors of 1,000 canary requests read as a success rate of -100%.
        status = stored(SR)
        requests = status["state"]["canary"][0]
        status["state"]["canary"] = [requests, 2 * requests]
        assert_new_run(next_tick(SR, status))


# -- any one field, any JSON value ----------------------------------------------------------

Path = tuple[str | int, ...]


def _paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every place in a stored status: each key and list element, at any depth."""
    items: Any = value.items() if isinstance(value, dict) else enumerate(value)
    for key, inner in items:
        yield (*prefix, key)
        if isinstance(inner, dict | list):
            yield from _paths(inner, (*prefix, key))


BASES = {
    # name, ticks: every field a run of each test writes (warm-up and judged windows, recent
    # windows, matched totals; latency's histograms, boundaries and caps), and a latency run
    # still in its warm-up (the primary's boundaries of the warm-up)
    "errors": (SR, 4),
    "latency": (RD, 4),
    "latency warm-up": (RD, 1),
}

NUMBERS = st.one_of(
    # Up to a trillion: counts far beyond that break the judge's arithmetic on live data as
    # well (more than 1e16 canary requests per primary request), which is not about storing.
    st.integers(-(10**12), 10**12),
    st.floats(-1e12, 1e12, allow_nan=False),
    st.sampled_from([10**400, -(10**400), 0.5, 1e-300, 2**53 + 1]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    NUMBERS,
    st.sampled_from(["+Inf", "-Inf", "NaN", "", "1", "12", "abc", "2024-05-01T12:00:00Z"]),
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2024-05-01"]),
    st.text(max_size=5),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)


def _edits(original: Any) -> st.SearchStrategy[Callable[[Any], Any]]:
    """What can become of one stored value: any JSON value, or the value itself a little off
    (a list one element short or long, a number scaled or negated, wrapped, turned to text)."""
    out: list[st.SearchStrategy[Callable[[Any], Any]]] = [JSON.map(lambda new: lambda _: new)]
    if isinstance(original, list) and original:
        out.append(st.just(lambda v: v[:-1]))
        out.append(st.just(lambda v: [*v, v[-1]]))
    if isinstance(original, int | float) and not isinstance(original, bool):
        out.append(st.floats(-1e6, 1e6).map(lambda k: lambda v: v * k))
        out.append(st.just(lambda v: -v))
    out.append(st.just(lambda v: [v]))
    out.append(st.just(str))
    return st.one_of(out)


DELETE = object()


@st.composite
def corrupt_statuses(draw: st.DrawFn) -> tuple[str, dict[str, Any], Path]:
    base = draw(st.sampled_from(sorted(BASES)))
    name, ticks = BASES[base]
    status = stored(name, ticks)
    path = draw(st.sampled_from(sorted(_paths(status), key=repr)))
    parent: Any = status
    for key in path[:-1]:
        parent = parent[key]
    original = parent[path[-1]]
    edit = draw(st.one_of(_edits(original), st.just(DELETE)))
    if edit is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = edit(copy.deepcopy(original))
    return name, status, path


class TestAnyCorruption:
    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(corrupt_statuses(), st.sampled_from([60.0, 3.0]))
    def test_any_json_value_in_one_stored_field_restores_or_starts_a_new_run(
        self, corrupt: tuple[str, dict[str, Any], Path], seconds: float
    ) -> None:
        # 60 s later a window is added to the evidence; 3 s later there is no new window and
        # the stored decision is repeated or taken again on the stored evidence.
        name, status, _ = corrupt
        json.dumps(status, allow_nan=False)  # what Kubernetes could hold
        try:
            restored: Verdict | None = Verdict.from_status(status)
        except AnalysisSpecError:
            restored = None  # evaluate() starts a new run on it
        now = T0 + timedelta(minutes=3, seconds=seconds)
        v = asyncio.run(evaluate(check_of(name), CTX, steady(), now=now, previous=status))
        written = strict_json(v)
        if restored is None:
            assert_new_run(v)
            # the judge's own state round-trips exactly: it decides the same after a restart
            again = Verdict.from_status(written)
            assert again == v and again.state == v.state
        else:
            # a restored state is written as the judge writes one (a field it would not have
            # written, such as warm counts without warm windows, is left out), then exactly
            once = Verdict.from_status(strict_json(restored))
            twice = Verdict.from_status(strict_json(once))
            assert twice == once and twice.state == once.state


class TestAnOlderStatus:
    """Statuses the previous release wrote (``status_2cdd73e.json``: four ticks of each builtin
    metric, by the code of commit 2cdd73e) go on as the same run: checking every field now
    must not restart a run that was sound."""

    @pytest.mark.parametrize("name", [SR, RD])
    def test_a_status_the_previous_release_wrote_goes_on_as_the_same_run(self, name: str) -> None:
        stored = json.loads((pathlib.Path(__file__).parent / "status_2cdd73e.json").read_text())[
            name
        ]
        before = Verdict.from_status(stored)
        assert before.state is not None and before.state.windows == 3
        after = asyncio.run(
            evaluate(
                check_of(name),
                CTX,
                steady(),
                now=before.evaluated_at + timedelta(minutes=1),
                previous=stored,
                last_step=False,
            )
        )
        assert after.state is not None and after.state.windows == 4, after.summary
        assert after.state.started == before.state.started
        assert after.state.key  # the settings it was gathered under, from now on


def _changed(name: str, **compare: Any) -> MetricCheck:
    spec = {"warmup": "1m", "minSampleSize": 50, **compare}
    return metric_check_from_spec({"name": name, "interval": "1m", "compare": spec}, path="m")


class TestSettingsChangedMidRun:
    """A commit that changes what the evidence was gathered under starts a new run; one that
    changes only how it is decided goes on with it."""

    @pytest.mark.parametrize(
        ("name", "change"),
        [
            (SR, {"alpha": 0.2}),
            (SR, {"allowedIncrease": 1.5}),
            (SR, {"warmup": "10m"}),
            (RD, {"quantile": 0.5}),
        ],
        ids=["alpha", "allowedIncrease", "warmup", "quantile"],
    )
    def test_a_changed_setting_starts_a_new_run_that_says_why(
        self, name: str, change: dict[str, Any]
    ) -> None:
        # Before: a warm-up lengthened mid-run took the run back into it, and the evidence
        # frozen before the change passed a canary failing half its requests; a quantile
        # changed to 0.5 was shown as "p50" while the p99's boundaries were tested.
        before = Verdict.from_status(stored(name))
        assert before.state is not None and before.state.windows == 3
        after = tick(_changed(name, **change), 4, stored(name))
        assert after.state is not None
        assert after.summary.endswith("(a new run: the metric's compare settings changed)")
        assert after.state.canary_requests + after.state.warm[0] == CANARY_REQUESTS
        # contiguous with the old run's windows, and as warm as the canary is
        assert after.state.started == before.state.started
        if "warmup" in change:  # ten minutes from the canary's start: still warming up
            assert after.warming_up and after.state.warm_windows == 1
        else:
            assert not after.warming_up and after.state.windows == 1

    @pytest.mark.parametrize(
        "change",
        [{"minSampleSize": 500}, {"maxInconclusive": 2}, {"detectIncrease": 3}, {"retries": 2}],
    )
    def test_a_setting_only_the_decision_reads_goes_on_with_the_evidence(
        self, change: dict[str, Any]
    ) -> None:
        after = tick(_changed(SR, **change), 4, stored(SR))
        assert after.state is not None and after.state.windows == 4, after.summary
        assert "a new run" not in after.summary


class TestAClockThatStepsBack:
    """A check whose clock reads before the last judged window's end holds, judging nothing,
    until its clock passes that time."""

    def test_it_holds_without_a_query_and_then_judges_the_window_from_where_it_stopped(
        self,
    ) -> None:
        # Before: read as "no new window yet", the last PASS was repeated without a query for
        # as long as the clock lagged, and at the last step it promoted on stale evidence.
        before = Verdict.from_status(stored(SR))
        assert before.state is not None
        provider = steady()
        behind = asyncio.run(
            evaluate(
                check_of(SR),
                CTX,
                provider,
                now=before.state.window_end - timedelta(minutes=3),
                previous=stored(SR),
                last_step=True,
            )
        )
        assert behind.outcome.value == "Inconclusive" and provider.queries == []
        assert "the clock reads 180s before the end of the last window" in behind.summary
        assert behind.state == before.state  # nothing counted, nothing lost
        caught_up = asyncio.run(
            evaluate(
                check_of(SR),
                CTX,
                provider,
                now=before.state.window_end + timedelta(minutes=1),
                previous=behind.to_status(),
                last_step=True,
            )
        )
        assert caught_up.state is not None and caught_up.state.windows == before.state.windows + 1
        assert caught_up.outcome.value != "Inconclusive" or "clock" not in caught_up.summary
