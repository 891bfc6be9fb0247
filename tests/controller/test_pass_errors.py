"""A pass that fails is one log line with its cause; the traceback only at DEBUG (issue 15).

An error of ours (the API server said no, a router could not write) is a WARNING; anything
else (a bug) an ERROR; either way one line, then the pass is retried after a backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from canary.controller.logs import describe
from canary.controller.scheduler import Scheduler
from canary.ports import Unavailable

NS = "test"


async def run_failing_once(error: Exception) -> Scheduler:
    """A job whose first pass raises ``error`` and whose second ends it; both have run."""
    calls: list[int] = []
    done = asyncio.Event()

    async def run_pass(namespace: str, name: str) -> float | None:
        calls.append(1)
        if len(calls) == 1:
            raise error
        done.set()
        return None

    scheduler = Scheduler(run_pass, time_scale=0.001)
    scheduler.starting = False
    scheduler.seen(NS, "podinfo", {"metadata": {"name": "podinfo", "namespace": NS}})
    await asyncio.wait_for(done.wait(), timeout=120)
    return scheduler


def records(caplog: pytest.LogCaptureFixture, keep: Callable[[logging.LogRecord], bool]) -> list:
    return [r for r in caplog.records if r.name == "canary.scheduler" and keep(r)]


async def test_an_error_of_ours_is_one_warning_line_and_the_traceback_is_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="canary.scheduler")
    error = Unavailable("PATCH /apis/x failed:\nthe server is\nrestarting", status=503)
    await run_failing_once(error)

    above_debug = records(caplog, lambda r: r.levelno > logging.DEBUG)
    assert [(r.levelname, r.getMessage()) for r in above_debug] == [
        (
            "WARNING",
            "pass for Canary test/podinfo failed: Unavailable: PATCH /apis/x failed: the "
            "server is restarting; retrying in 0.002s",
        )
    ]
    assert above_debug[0].exc_info is None
    debug = records(caplog, lambda r: r.levelno == logging.DEBUG and r.exc_info is not None)
    assert len(debug) == 1 and debug[0].exc_info is not None
    assert debug[0].exc_info[1] is error


async def test_a_bug_is_one_error_line_and_the_traceback_is_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="canary.scheduler")
    await run_failing_once(KeyError("spec"))
    lines = records(caplog, lambda r: True)
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in lines] == [
        (
            "ERROR",
            "pass for Canary test/podinfo failed: KeyError: 'spec'; retrying in 0.002s",
            None,
        )
    ]


def test_describe_is_one_line_with_the_type() -> None:
    assert describe(ValueError("a\n  b")) == "ValueError: a b"
    assert describe(TimeoutError()) == "TimeoutError"
