"""The one async entry point the controller calls per metric per tick: :func:`evaluate`.

This is the imperative shell of the package: it renders queries, asks the
provider for numbers (concurrently, each call with the provider's timeout),
and hands the numbers to the pure judges.  It never raises for a bad metric:
every problem becomes a :class:`~analysis.Verdict` with outcome NoData or
Error and a sentence in Flagger's wording, so one broken metric cannot crash
the reconcile pass of its canary (let alone of other canaries).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from analysis._builtin import BuiltinQueries, builtin_queries, builtin_query
from analysis._compare import (
    CompareResult,
    Window,
    add_histograms,
    add_window,
    decide,
    is_run_of,
    new_state,
    run_key,
)
from analysis._providers import MetricProvider
from analysis._spec.compare import CompareSpec
from analysis._spec.errors import (
    AnalysisError,
    AnalysisSpecError,
    NoDataError,
    QueryError,
    TemplateError,
)
from analysis._spec.metric import MetricCheck
from analysis._spec.templates import QueryContext, render_query
from analysis._spec.vocabulary import (
    BUILTIN_METRICS,
    REQUEST_DURATION,
    Bucket,
    CompareTest,
    MetricKind,
    Outcome,
    promql_seconds,
)
from analysis._threshold import judge_threshold, metric_label
from analysis._verdict import SequentialState, Verdict

__all__ = ["MIN_WINDOW_SECONDS", "evaluate", "interval_seconds"]

MIN_WINDOW_SECONDS = 10.0
"""A compare check called again sooner than this after its last window adds no window: the
judge's last decision stands, or is taken again on the same evidence (:func:`_no_new_window`)."""

TICK_SLACK_SECONDS = 1.0
"""How much sooner than :data:`MIN_WINDOW_SECONDS` a check may come and still add a window: the
scheduler's ticks at an analysis interval of 10 s come a few milliseconds either side of it,
and half of them fell short (windows of 10-20 s instead of 10)."""


def interval_seconds(interval: str) -> float:
    """Seconds in a PromQL duration such as ``1m30s``."""
    try:
        return promql_seconds(interval)
    except ValueError as exc:
        raise AnalysisSpecError("interval", str(exc)) from None


def _has_bounds(check: MetricCheck) -> bool:
    return check.min is not None or check.max is not None or check.threshold is not None


def _restore(previous: Verdict | Mapping[str, Any] | None) -> Verdict | None:
    if previous is None or isinstance(previous, Verdict):
        return previous
    try:
        return Verdict.from_status(previous)
    except AnalysisSpecError:
        return None


def _failure(
    check: MetricCheck,
    ctx: QueryContext,
    exc: AnalysisError,
    *,
    now: datetime,
    query: str | None,
    judge: str,
    state: SequentialState | None,
) -> Verdict:
    builtin = check.kind is MetricKind.BUILTIN
    if isinstance(exc, NoDataError):
        outcome = Outcome.NODATA
        if builtin:
            who = f"{ctx.target}-primary" if isinstance(exc, _PrimaryNoData) else ctx.target
            summary = (
                f"no values found for prometheus metric {check.name} probably "
                f"{who}.{ctx.namespace} is not receiving traffic: {exc}"
            )
        else:
            summary = f"no values found for custom metric: {check.name}: {exc}"
    else:
        outcome = Outcome.ERROR
        if isinstance(exc, ImpossibleCountsError):
            summary = f"{check.name}: {exc}"
        elif builtin and isinstance(exc, QueryError):
            summary = f"Prometheus query failed: {exc}"
        else:
            summary = f"Metric query failed for {check.name}: {exc}"
    label, unit = metric_label(check.name)
    del label
    return Verdict(
        metric=check.name,
        outcome=outcome,
        summary=summary,
        evaluated_at=now,
        judge=judge,
        unit=unit,
        min=check.min,
        max=check.max,
        query=query,
        error=type(exc).__name__,
        state=state,
    )


async def _threshold(
    check: MetricCheck,
    ctx: QueryContext,
    provider: MetricProvider,
    *,
    now: datetime,
    state: SequentialState | None,
) -> Verdict:
    query: str | None = None
    try:
        scale = 1.0
        if check.kind is MetricKind.BUILTIN:
            queries = builtin_queries(ctx, interval=check.interval)
            query = builtin_query(check.name, queries)
            if check.name == REQUEST_DURATION:
                scale = queries.duration_to_ms
        else:
            if check.query is None:
                raise AnalysisSpecError(
                    check.path,
                    f"metric {check.name!r} has no query: its MetricTemplate "
                    f"{check.template or ''} was not resolved (MetricCheck.with_template_query)",
                )
            interval = check.interval
            if getattr(provider, "interval_in_seconds", False):
                interval = f"{max(1, round(interval_seconds(interval)))}s"
            query = render_query(check.query, ctx, interval=interval, variables=check.variables_map)
        value = await provider.run_query(query) * scale
    except AnalysisError as exc:
        return _failure(check, ctx, exc, now=now, query=query, judge="threshold", state=state)
    return _judged(check, value, query, now=now, state=state)


def _judged(
    check: MetricCheck, value: float, query: str, *, now: datetime, state: SequentialState | None
) -> Verdict:
    """The threshold verdict of one reading of ``query``."""
    if check.kind is MetricKind.BUILTIN:
        result = judge_threshold(
            check.name, value, min=check.min, max=check.max, threshold=check.threshold
        )
    else:
        result = judge_threshold(
            f"custom:{check.name}",
            value,
            min=check.min,
            max=check.max,
            threshold=check.threshold,
            label=check.name,
            unit="",
        )
    impossible = result.outcome is Outcome.ERROR
    # An impossible reading (NaN, an infinity, a success rate of 1e308 %) means the query is
    # wrong: the verdict names it. The reading is in the summary only, since NaN and
    # infinities have no place in a JSON status.
    return Verdict(
        metric=check.name,
        outcome=result.outcome,
        summary=f"{result.summary}; check the query: {query}" if impossible else result.summary,
        evaluated_at=now,
        judge="threshold",
        value=None if impossible else value,
        unit=result.unit,
        min=result.min,
        max=result.max,
        query=query,
        error="ImpossibleValue" if impossible else None,
        state=state,
    )


def _render_side(
    check: MetricCheck, spec: CompareSpec, ctx: QueryContext, window: str, *, primary: bool
) -> tuple[str, str, float]:
    """(requests or buckets query, errors query, bucket-to-ms factor) for one side."""
    side = ctx.for_primary() if primary else ctx
    variables = check.variables_map
    if spec.test is CompareTest.ERROR_RATE:
        if spec.requests_query is not None and spec.errors_query is not None:
            return (
                render_query(spec.requests_query, side, interval=window, variables=variables),
                render_query(spec.errors_query, side, interval=window, variables=variables),
                1.0,
            )
        q = builtin_queries(ctx, interval=window, primary=primary)
        return q.requests, q.errors, 1.0
    if spec.buckets_query is not None:
        to_ms = 1000.0 if spec.buckets_unit == "s" else 1.0
        return (
            render_query(spec.buckets_query, side, interval=window, variables=variables),
            "",
            to_ms,
        )
    bq: BuiltinQueries = builtin_queries(ctx, interval=window, primary=primary)
    return bq.buckets, "", 1000.0 if bq.buckets_unit == "s" else 1.0


class _PrimaryNoData(NoDataError):
    """No data on the primary's side of a comparison: its verdict names the primary, not the
    canary (Flagger's "probably podinfo.test is not receiving traffic" blamed the canary
    for the primary's silence)."""


async def _count(
    provider: MetricProvider, query: str, at: datetime, *, zero_if_empty: bool, what: str
) -> float:
    try:
        value = await provider.run_query(query, at=at)
    except NoDataError as exc:
        if zero_if_empty:
            return 0.0
        if what.startswith("the primary's"):
            raise _PrimaryNoData(str(exc), query=query) from None
        raise
    _countable(value, query, what)
    return max(0.0, value)


async def _histograms(
    provider: MetricProvider, canary: str, primary: str, at: datetime
) -> tuple[tuple[Bucket, ...], tuple[Bucket, ...]]:
    """Both sides' histograms, each with buckets a count can be, on boundaries in common."""
    b_c, b_p = await asyncio.gather(
        _buckets(provider, canary, at, primary=False),
        _buckets(provider, primary, at, primary=True),
    )
    for side, buckets, side_query in (("canary", b_c, canary), ("primary", b_p, primary)):
        if not buckets:  # Prometheus says so itself; another provider may not
            gone = _PrimaryNoData if side == "primary" else NoDataError
            raise gone(f"no histogram buckets for the {side}", query=side_query)
        most = max(count for _, count in buckets)
        _countable(most, side_query, f"the {side}'s histogram query")
    _comparable(b_c, b_p, canary)
    return b_c, b_p


async def _buckets(
    provider: MetricProvider, query: str, at: datetime, *, primary: bool
) -> tuple[Bucket, ...]:
    """One side's histogram; the primary's silence is said to be the primary's."""
    try:
        return tuple(await provider.query_buckets(query, at=at))
    except NoDataError as exc:
        if primary:
            raise _PrimaryNoData(str(exc), query=query) from None
        raise


# The largest count a float holds exactly; no window of any service has more requests, and
# past it the judge's arithmetic (a share of 1 - 1e-17) is no longer arithmetic.
MAX_COUNT = float(2**53)


def _countable(value: float, query: str, what: str) -> None:
    """Raise when a count query answers what no count can be: an infinity, a number below
    zero by more than rounding (a query that subtracts two counts, each extrapolated by
    increase() on its own, can give -0.4 where there were none), or more than a float
    counts exactly.

    Read as 0, as they were, an errors query answering +Inf or -500 (a custom query that
    divides by zero, or subtracts) passed the canary with "0 errors".
    """
    if math.isfinite(value) and -IMPOSSIBLE_SLACK <= value <= MAX_COUNT:
        return
    if not math.isfinite(value):
        why = "a count is a finite number"
    elif value < 0:
        why = "a count cannot be below 0"
    else:
        why = "more than any window counts (2^53)"
    raise ImpossibleCountsError(
        f"{what} answered {value:g}: {why}; does it count requests?", query=query
    )


# How far a side's errors may exceed its requests before the two queries are taken to
# count different things: Prometheus' increase() extrapolates each series on its own, so a
# canary that fails every request can show 101 errors of 100 requests; never 250.
IMPOSSIBLE_EXCESS = 0.1
IMPOSSIBLE_SLACK = 2.0


class ImpossibleCountsError(QueryError):
    """The queries answered, with counts that cannot be: more errors than requests, an
    infinity, a count below zero, histograms with no bucket boundary in common."""


def _possible(requests: float, errors: float, side: str, query: str, window: str) -> None:
    """Raise QueryError when the errors query counts far more than the requests query.

    The judge would otherwise cap the errors at the requests and fail the canary on
    numbers that cannot be (a mismatched ``errorsQuery``: 250 errors of 100 requests read
    as a 0% success rate), where the threshold judge calls an impossible value an Error.
    """
    requests = requests if math.isfinite(requests) and requests > 0 else 0.0
    if errors > requests * (1.0 + IMPOSSIBLE_EXCESS) + IMPOSSIBLE_SLACK:
        counted = f"{requests:,.0f}"
        raise ImpossibleCountsError(
            f"the {side}'s errors outnumber its requests ({errors:,.0f} errors of {counted} "
            f"request{'' if counted == '1' else 's'} in {window}): do the requests and errors "
            "queries count the same requests?",
            query=query,
        )


def _comparable(canary: Sequence[Bucket], primary: Sequence[Bucket], query: str) -> None:
    """Raise when the two histograms have no finite bucket boundary in common.

    The latency test counts each side's requests past the same boundaries; with none in
    common (the new version exposes other buckets: exponential ones, or milliseconds where
    the primary has seconds) every request of both sides is past +Inf's only, the test gets
    no evidence ever, and a canary three times slower was promoted "not significant".
    """
    shared = {le for le, _ in canary} & {le for le, _ in primary}
    if any(math.isfinite(le) for le in shared):
        return

    def shown(buckets: Sequence[Bucket]) -> str:
        les = sorted(le for le, _ in buckets if math.isfinite(le))
        head = ", ".join(f"{le:g}" for le in les[:4])
        return (head + (", …" if len(les) > 4 else "")) or "none"

    raise ImpossibleCountsError(
        "the canary's and the primary's histograms have no bucket boundary in common "
        f"(canary le: {shown(canary)}; primary le: {shown(primary)}): the latency test "
        "compares both sides at the same boundaries; do both versions expose the same buckets?",
        query=query,
    )


async def _compare(
    check: MetricCheck,
    spec: CompareSpec,
    ctx: QueryContext,
    provider: MetricProvider,
    *,
    now: datetime,
    prev: Verdict | None,
    last_step: bool,
    has_threshold: bool,
    key: str,
) -> Verdict:
    prev_state = prev.state if prev is not None else None
    if prev_state is not None and not is_run_of(prev_state, spec.test):
        prev_state = None
    period = interval_seconds(check.interval)
    if prev_state is not None:
        prev_state = replace(prev_state, key=key)  # a state written before keys were kept
        elapsed = (now - prev_state.window_end).total_seconds()
        if elapsed < -TICK_SLACK_SECONDS and prev is not None:
            return _clock_behind(check, prev, prev_state, now=now, behind=-elapsed)
        if elapsed < MIN_WINDOW_SECONDS - TICK_SLACK_SECONDS and prev is not None:
            return _no_new_window(
                check,
                spec,
                ctx,
                prev,
                prev_state,
                now=now,
                last_step=last_step,
                has_threshold=has_threshold,
            )
        state = prev_state
    else:
        elapsed = period
        state = replace(new_state(now - timedelta(seconds=elapsed), spec.test), key=key)
    window = f"{max(1, round(elapsed))}s"
    query: str | None = None
    try:
        c_main, c_err, to_ms = _render_side(check, spec, ctx, window, primary=False)
        p_main, p_err, _ = _render_side(check, spec, ctx, window, primary=True)
        query = c_main
        if spec.test is CompareTest.ERROR_RATE:
            n_c, x_c, n_p, x_p = await asyncio.gather(
                _count(
                    provider, c_main, now, zero_if_empty=False, what="the canary's requests query"
                ),
                _count(provider, c_err, now, zero_if_empty=True, what="the canary's errors query"),
                _count(
                    provider, p_main, now, zero_if_empty=False, what="the primary's requests query"
                ),
                _count(provider, p_err, now, zero_if_empty=True, what="the primary's errors query"),
            )
            _possible(n_c, x_c, "canary", c_err, window)
            _possible(n_p, x_p, "primary", p_err, window)
            state = add_window(
                state, Window(n_c, x_c, n_p, x_p), spec, window_end=now, interval_seconds=period
            )
        else:
            b_c, b_p = await _histograms(provider, c_main, p_main, now)
            state = add_histograms(state, b_c, b_p, spec, window_end=now, interval_seconds=period)
    except AnalysisError as exc:
        return _failure(check, ctx, exc, now=now, query=query, judge="compare", state=prev_state)
    result = decide(
        spec,
        state,
        metric=_label(check),
        buckets_to_ms=to_ms,
        last_step=last_step,
        has_threshold=has_threshold,
    )
    return _compared(check, result, now=now, query=query)


def _run_key(check: MetricCheck, spec: CompareSpec, ctx: QueryContext) -> str:
    """What this metric's evidence is gathered under (:func:`~analysis._compare.run_key`):
    its compare settings, its interval and where its counts come from (its own queries, the
    template's or the query's text, or the provider's builtin queries)."""
    queries = (
        check.kind.value,
        check.query or "",
        ctx.provider if check.kind is MetricKind.BUILTIN else "",
        spec.requests_query or "",
        spec.errors_query or "",
        spec.buckets_query or "",
    )
    return run_key(spec, interval=check.interval, queries=queries)


def _rerun(old: SequentialState, spec: CompareSpec, key: str) -> SequentialState:
    """A new run's empty evidence after the settings changed: its first window starts where
    the old run's last one ended (none counted twice, none skipped), and its warm-up counts
    from the old run's start. Why: the warm-up is the canary's, whose pods are no younger for
    a commit that changed a setting; counted again, it hid a failing ``thresholdRange``."""
    fresh = new_state(old.window_end, spec.test)
    return replace(fresh, started=old.started or old.window_end, key=key)


def _clock_behind(
    check: MetricCheck, prev: Verdict, state: SequentialState, *, now: datetime, behind: float
) -> Verdict:
    """A check whose clock reads before the end of the last judged window: it holds, and
    judges nothing until its clock passes that time.

    Why: a controller whose clock steps back (leadership moves to a node whose clock lags)
    has no window to count; taken for "no new window yet", the last decision was repeated
    without a query, a PASS five minutes long while the canary failed half its requests, and
    at the last step the stale evidence promoted it. An Inconclusive hold is what the
    controller does while the data cannot be read; the judge's count does not move.
    """
    warming = state.windows == 0  # still in the warm-up: it holds as the warm-up does
    summary = (
        f"{_label(check)}: {'warming up; ' if warming else ''}the clock reads {behind:.0f}s "
        f"before the end of the last window ({state.window_end.astimezone(UTC):%H:%M:%S} UTC);"
        " did it step back? not judging until it passes that time"
    )
    return Verdict(
        metric=check.name,
        outcome=Outcome.INCONCLUSIVE,
        summary=summary,
        evaluated_at=now,
        judge="compare",
        comparison=prev.comparison,
        primary_value=prev.primary_value,
        warming_up=warming,
        state=state,
    )


def _label(check: MetricCheck) -> str:
    """The metric's name in a verdict's words; a template named like a builtin says so."""
    if check.kind is not MetricKind.BUILTIN and check.name in BUILTIN_METRICS:
        return f"{check.name} (template)"
    return check.name


def _no_new_window(
    check: MetricCheck,
    spec: CompareSpec,
    ctx: QueryContext,
    prev: Verdict,
    state: SequentialState,
    *,
    now: datetime,
    last_step: bool,
    has_threshold: bool,
) -> Verdict:
    """A check sooner than :data:`MIN_WINDOW_SECONDS` after the last window: nothing to add.

    The judge's last decision stands when it was made for the same kind of step.  Otherwise
    it is taken again on the same evidence, and the state stays the last window's, so that
    nothing is counted twice (a hold counts no check until a new window comes):

    * a PASS decided before the last step, now at the last step: repeated, it promoted the
      canary without the last step's hold for evidence that leans towards a regression
      (``canary demo --fast``, checks 4 s apart: a canary failing 6% of its requests
      against none on the primary, p = 0.019, was promoted so);
    * a verdict that was not the judge's decision (the ``thresholdRange``'s FAIL of the last
      pass, a failed query): this pass asked the threshold again and it passed, so the
      judge's answer is its own; repeated, the stale FAIL was counted as a second failed
      check.
    """
    decided = prev.judge == "compare" and prev.comparison is not None
    if decided and state.last_step == last_step:
        return prev
    try:
        to_ms = _render_side(check, spec, ctx, "1m", primary=False)[2]
    except AnalysisError:
        return prev
    result = decide(
        spec,
        state,
        metric=_label(check),
        buckets_to_ms=to_ms,
        last_step=last_step,
        has_threshold=has_threshold,
    )
    return replace(_compared(check, result, now=now, query=prev.query), state=state)


def _compared(
    check: MetricCheck, result: CompareResult, *, now: datetime, query: str | None
) -> Verdict:
    """The verdict of a compare check from the judge's result."""
    return Verdict(
        metric=check.name,
        outcome=result.outcome,
        summary=result.summary,
        evaluated_at=now,
        judge="compare",
        value=result.value,
        unit=result.unit,
        query=query,
        comparison=result.comparison,
        conclusive=result.conclusive,
        warming_up=result.warming_up,
        may_advance=result.may_advance,
        stalled=result.stalled,
        primary_value=result.primary_value,
        state=result.state,
    )


def _in_warmup(check: MetricCheck, spec: CompareSpec, prev: Verdict | None, now: datetime) -> bool:
    """Whether the window that ends ``now`` lies inside the run's warm-up."""
    try:
        period = interval_seconds(check.interval)
    except AnalysisSpecError:
        return False
    state = prev.state if prev is not None else None
    if state is not None and state.windows > 0:
        return False  # a judged window ends the warm-up for good
    started = state.started if state is not None else None
    if started is None:
        started = now - timedelta(seconds=period)
    # A clock that went back (a restart on a skewed node) does not take the run back into
    # its warm-up: read as one, it kept a failing thresholdRange from being acted on. The run
    # is never earlier than its last window.
    latest = max(now, state.window_end) if state is not None else now
    return spec.in_warmup(period, (latest - started).total_seconds())


async def evaluate(
    check: MetricCheck,
    ctx: QueryContext,
    provider: MetricProvider,
    *,
    now: datetime,
    previous: Verdict | Mapping[str, Any] | None = None,
    last_step: bool = True,
) -> Verdict:
    """Judge one metric at one tick.

    ``previous`` is this metric's last verdict of the *current run* (a
    :class:`Verdict` or the dict its ``to_status()`` produced); pass ``None``
    when a new run starts.  Without ``compare`` the metric gets Flagger's
    threshold check.  With ``compare`` and bounds, the threshold check runs
    first and a non-passing threshold verdict wins (the comparison's evidence
    is carried over untouched); otherwise the comparison decides.
    ``last_step`` says whether a PASS now would promote the canary (the last
    weight step or iteration); only there does the compare judge hold for more
    evidence.  During ``compare.warmup`` a failing threshold check is reported
    but not acted on, like the comparison itself.
    Never raises for metric problems: they come back as NoData/Error verdicts.
    """
    prev = _restore(previous)
    spec = check.compare
    key = _run_key(check, spec, ctx) if spec is not None else ""
    changed = False
    if spec is not None and prev is not None and prev.state is not None:
        if prev.state.key not in ("", key):  # gathered under other settings: a new run
            prev, changed = replace(prev, state=_rerun(prev.state, spec, key)), True
    carried = prev.state if prev is not None else None
    bounded = _has_bounds(check)
    if spec is None or bounded:
        verdict = await _threshold(check, ctx, provider, now=now, state=carried)
        if spec is None:
            return verdict
        if verdict.outcome is not Outcome.PASS and not _in_warmup(check, spec, prev, now):
            return verdict
        threshold_note = "" if verdict.outcome is Outcome.PASS else verdict.summary
    else:
        threshold_note = ""
    try:
        judged = await _compare(
            check,
            spec,
            ctx,
            provider,
            now=now,
            prev=prev,
            last_step=last_step,
            has_threshold=bounded,
            key=key,
        )
    except (AnalysisSpecError, TemplateError) as exc:
        return _failure(check, ctx, exc, now=now, query=None, judge="compare", state=carried)
    if changed:
        summary = f"{judged.summary} (a new run: the metric's compare settings changed)"
        judged = replace(judged, summary=summary)
    if threshold_note and judged.warming_up:
        summary = f"{judged.summary}; {threshold_note} (not acted on during the warm-up)"
        return replace(judged, summary=summary)
    return judged
