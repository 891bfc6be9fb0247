"""``status.analysisHistory``: the verdicts of the current run and of the last few runs.

``status.analysis`` holds only the last tick's verdicts; the history keeps the sequence, so
``canary status`` can show how a run got where it is (three inconclusive ticks, then a
pass at 20%, ...). It lives in the Canary status, written with everything else in the
pass's one status write, so it is bounded and compact: at most `HISTORY_RUNS` runs (the
current one included, newest last), `HISTORY_TICKS` ticks of the open run and
`CLOSED_RUN_TICKS` of each ended one (the newest kept: how it ended), and per verdict only
the name, the outcome, the canary's and the primary's value (to four significant digits),
the canary's requests so far and the flags that are set. With two metrics a full history is
about 14 KB of JSON: every pass that analyses writes it whole (a merge patch replaces
lists), so its size is paid per pass, not once.

A run is opened by its first analysed tick and closed by the way it ends (promoted, rolled
back, restarted by a new revision). These are pure functions of the stored history.
"""

from __future__ import annotations

import math
from dataclasses import replace

from canary.core.observations import MetricResult
from canary.core.tick import Tick
from canary.core.times import iso
from canary.model.status import AnalysisRun, HistoryTick, HistoryVerdict

HISTORY_RUNS = 3
HISTORY_TICKS = 30
CLOSED_RUN_TICKS = 10

SUCCEEDED = "Succeeded"
FAILED = "Failed"
RESTARTED = "Restarted"


def _compact(value: float | None) -> float | None:
    """Four significant digits (enough to read a trend); None for what JSON cannot hold."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.4g}")


def history_verdict(result: MetricResult) -> HistoryVerdict:
    return HistoryVerdict(
        name=result.name,
        outcome=result.outcome.value,
        value=_compact(result.value),
        primary_value=_compact(result.primary_value),
        samples=result.samples,
        flags=result.flags,
    )


def record_tick(
    history: tuple[AnalysisRun, ...],
    results: tuple[MetricResult, ...],
    *,
    revision: str,
    run_started: str,
    now: str,
    weight: int,
) -> tuple[AnalysisRun, ...]:
    """The history with one more tick of verdicts, in the open run or a new one.

    ``run_started`` is ``status.runStartTime``; a run restarted by a new revision keeps
    that time, so a new history run that would start before the last one ended starts
    where that one ended: the restart (``now``, the first tick analysed, was a few ticks
    late for a run that began with the restart, and read as another kind of start than
    the first run's).
    """
    tick = HistoryTick(now, weight, tuple(history_verdict(r) for r in results))
    runs = list(history)
    if runs and runs[-1].open:
        run = runs[-1]
        runs[-1] = replace(run, ticks=(*run.ticks, tick)[-HISTORY_TICKS:])
    else:
        if not run_started:
            started = now
        elif not runs or run_started >= runs[-1].ended:
            started = run_started
        else:  # restarted mid-run by a new revision: it began as the last one ended
            started = runs[-1].ended or now
        runs.append(AnalysisRun(revision=revision, started=started, ticks=(tick,)))
    return tuple(runs[-HISTORY_RUNS:])


def close_run(
    history: tuple[AnalysisRun, ...], *, now: str, result: str, reason: str = ""
) -> tuple[AnalysisRun, ...]:
    """The history with its open run (if any) ended ``now`` with ``result``."""
    if not history or not history[-1].open:
        return history
    run = history[-1]
    ticks = run.ticks[-CLOSED_RUN_TICKS:]
    return (*history[:-1], replace(run, ended=now, result=result, reason=reason, ticks=ticks))


def end_run(t: Tick, result: str, reason: str = "") -> None:
    """The run ends (``result``): close its history, and a stall ends with it."""
    t.set(
        analysis_history=close_run(
            t.status.analysis_history, now=iso(t.obs.now), result=result, reason=reason
        ),
        stalled="",
    )
