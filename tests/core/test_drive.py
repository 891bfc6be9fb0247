"""`drive`, `step` and `run_now`: one tick, however its answers arrive.

The controller answers over the network, `canary simulate` and the harness from a script;
all three must get the same decision from the same answers, and the world must be asked
each question once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator

import pytest

from canary.core import (
    AnalysisRequest,
    Answer,
    Decision,
    HookAnswer,
    HookRequest,
    MetricResult,
    Observations,
    Outcome,
    Request,
    drive,
    run_now,
    step,
)
from canary.model import Canary, CanaryStatus, HookType, Phase
from tests.core.harness import (
    NOW0,
    canary_doc,
    hook,
    load_canary,
    running_status,
    running_world,
)

GATED = canary_doc(
    {"stepWeight": 10, "webhooks": [hook("load", "rollout"), hook("smoke", "rollout")]}
)
PASS = (MetricResult("request-success-rate", Outcome.PASS, "success rate 99.9%"),)


def _answer(request: Request) -> Answer:
    if isinstance(request, HookRequest):
        return HookAnswer(True)
    assert isinstance(request, AnalysisRequest)
    return PASS


def _inputs() -> tuple[Canary, CanaryStatus, Observations]:
    """A canary at 10% whose tick asks two rollout hooks, then the metrics."""
    world = running_world(90, 10)
    status = running_status(weight=10)
    return load_canary(GATED), status, world.observe(NOW0, status)


def test_drive_asks_each_question_in_order_and_decides() -> None:
    canary, status, obs = _inputs()
    asked: list[Request] = []

    async def answer(request: Request) -> Answer:
        asked.append(request)
        return _answer(request)

    decision = run_now(drive(canary, status, obs, answer))
    assert asked == [
        HookRequest("load", HookType.ROLLOUT, "Progressing"),
        HookRequest("smoke", HookType.ROLLOUT, "Progressing"),
        AnalysisRequest(("request-success-rate",), last_step=False),
    ]
    assert decision.final and decision.status.canary_weight == 20


def test_drive_takes_answers_already_in_the_observations_without_asking() -> None:
    canary, status, obs = _inputs()
    for request in (
        HookRequest("load", HookType.ROLLOUT, "Progressing"),
        HookRequest("smoke", HookType.ROLLOUT, "Progressing"),
    ):
        obs = obs.with_answer(request, HookAnswer(True))
    asked: list[Request] = []

    async def answer(request: Request) -> Answer:
        asked.append(request)
        return _answer(request)

    run_now(drive(canary, status, obs, answer))
    assert asked == [AnalysisRequest(("request-success-rate",), last_step=False)]


def test_step_asks_for_the_first_missing_answer_and_changes_nothing() -> None:
    canary, status, obs = _inputs()
    first = step(canary, status, obs)
    assert first == Decision(
        status=status, requests=(HookRequest("load", HookType.ROLLOUT, "Progressing"),)
    )
    assert not first.final


def test_step_with_every_answer_gives_drives_decision() -> None:
    canary, status, obs = _inputs()
    answered = obs
    for request in (
        HookRequest("load", HookType.ROLLOUT, "Progressing"),
        HookRequest("smoke", HookType.ROLLOUT, "Progressing"),
        AnalysisRequest(("request-success-rate",), last_step=False),
    ):
        answered = answered.with_answer(request, _answer(request))

    async def answer(request: Request) -> Answer:
        return _answer(request)

    assert step(canary, status, answered) == run_now(drive(canary, status, obs, answer))


async def test_drive_runs_in_an_event_loop_with_answers_that_really_wait() -> None:
    canary, status, obs = _inputs()

    async def answer(request: Request) -> Answer:
        await asyncio.sleep(0)  # a network call, in the controller
        return _answer(request)

    decision = await drive(canary, status, obs, answer)
    assert decision.status.phase is Phase.PROGRESSING and decision.status.canary_weight == 20


class _Suspends:
    def __await__(self) -> Generator[None, None, None]:
        yield  # what an awaited I/O call does: hand control to an event loop


def test_run_now_refuses_a_coroutine_that_suspends() -> None:
    canary, status, obs = _inputs()

    async def answer(request: Request) -> Answer:
        await _Suspends()
        return _answer(request)

    with pytest.raises(RuntimeError, match="suspended"):
        run_now(drive(canary, status, obs, answer))
