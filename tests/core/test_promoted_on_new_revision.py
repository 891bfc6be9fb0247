"""The Promoted condition never outlives the release it was about (issue 15).

Right after ``kubectl set image`` the last release's ``Promoted=True`` is still in the
status; ``kubectl wait --for=condition=Promoted`` returned at once on it. The pass that sees
a new revision changes the condition (status and reason) whatever it can do with the
revision: start its run (Unknown / Progressing), wait for the primary (Unknown /
Progressing), refuse it as known-bad (False / KnownBad). Every managed condition carries the
Canary's metadata.generation the pass decided on (``observedGeneration``), which kubectl
compares with the spec's generation.
"""

from __future__ import annotations

from canary.core import Outcome, Readiness
from canary.core.status import with_conditions
from canary.model import CanaryStatus, Condition, Phase
from tests.core.harness import (
    NOW0,
    Script,
    World,
    canary_doc,
    fail_from,
    finished,
    new_revision,
    run,
    set_world,
)

CANARY = canary_doc({"stepWeight": 50})


def promoted(status: CanaryStatus) -> Condition:
    found = status.condition("Promoted")
    assert found is not None
    return found


def test_the_tick_that_detects_a_new_revision_after_a_promotion_makes_promoted_unknown() -> None:
    # v2 is promoted (Promoted=True), then v3 arrives: the tick that sees it flips the condition.
    first = run(CANARY, 10, until=finished)
    assert first.last.phase is Phase.SUCCEEDED
    assert promoted(first.last.status).status == "True"

    detected = run(
        CANARY,
        1,
        Script(before={1: new_revision("v3")}),
        start="initialized",
        status=first.last.status,
        world=first.world,
    )
    condition = promoted(detected[1].status)
    assert detected[1].phase is Phase.PROGRESSING
    assert (condition.status, condition.reason) == ("Unknown", "Progressing")
    assert condition.last_transition_time == detected[1].now.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_new_revision_waiting_for_the_primary_is_already_not_promoted() -> None:
    # The primary is not ready when v2 arrives: the run cannot start (the phase stays
    # Initialized), but Promoted stops saying True in that same tick, and the run then
    # starts once the primary is ready.
    busy = Readiness.waiting("1 of 2 replicas updated")
    result = run(
        CANARY,
        3,
        Script(primary_ready={1: busy, 2: busy, 3: Readiness.ok()}),
    )
    assert [t.phase for t in result.ticks] == [
        Phase.INITIALIZED,
        Phase.INITIALIZED,
        Phase.PROGRESSING,
    ]
    waiting = promoted(result[1].status)
    assert (waiting.status, waiting.reason) == ("Unknown", "Progressing")
    assert waiting.message == "New revision detected, waiting to start its analysis."
    started = promoted(result[3].status)
    assert (started.status, started.reason) == ("Unknown", "Progressing")
    assert started.last_transition_time == waiting.last_transition_time


def test_an_idle_canary_without_a_new_revision_stays_promoted() -> None:
    result = run(CANARY, 3, start="initialized")
    assert {(promoted(t.status).status, promoted(t.status).reason) for t in result.ticks} == {
        ("True", "Initialized")
    }


def test_a_refused_known_bad_release_is_not_promoted() -> None:
    # v2 fails and is rolled back; the target goes back to v1 (Git revert), a fix v3 is
    # promoted, then v2 comes back: it is refused, and Promoted is False / KnownBad, not the
    # True v3 left behind.
    script = Script(
        metrics=fail_from(3, Outcome.FAIL),
        before={6: set_world(template_hash="v1")},  # the Git revert converged
    )
    result = run(CANARY, 7, script)
    assert result[4].phase is Phase.FAILED
    fixed = run(
        CANARY,
        8,
        Script(before={1: new_revision("v3")}),
        start="initialized",
        status=result.last.status,
        world=result.world,
        until=finished,
    )
    assert fixed.last.phase is Phase.SUCCEEDED
    comeback = run(
        CANARY,
        1,
        Script(before={1: new_revision("v2")}),
        start="initialized",
        status=fixed.last.status,
        world=fixed.world,
    )
    refused = comeback[1]
    assert refused.status.refused
    assert refused.phase is Phase.SUCCEEDED
    condition = promoted(refused.status)
    assert (condition.status, condition.reason) == ("False", "KnownBad")
    assert condition.message == refused.status.refused


def test_conditions_carry_the_generation_the_pass_decided_on() -> None:
    result = run(CANARY, 2, world=World(generation=7))
    for record in result.ticks:
        assert record.status.observed_generation == 7
        assert {c.observed_generation for c in record.status.conditions} == {7}
    assert promoted(result[1].status).to_dict()["observedGeneration"] == 7


def test_a_spec_edit_moves_observed_generation_but_not_the_transition_time() -> None:
    result = run(
        CANARY,
        3,
        Script(before={3: set_world(generation=2)}),
        start="initialized",
    )
    before, after = promoted(result[2].status), promoted(result[3].status)
    assert (before.observed_generation, after.observed_generation) == (1, 2)
    assert (after.status, after.reason) == (before.status, before.reason)
    assert after.last_transition_time == before.last_transition_time
    assert after.last_update_time == result[3].now.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_condition_without_a_generation_writes_none() -> None:
    # 0 would tell kubectl wait the condition is older than any spec: it would never return.
    status = with_conditions(
        CanaryStatus(phase=Phase.SUCCEEDED), CanaryStatus(), "Deployment", NOW0
    )
    assert "observedGeneration" not in promoted(status).to_dict()
    assert Condition.from_dict({**promoted(status).to_dict(), "observedGeneration": 3}) == (
        Condition(**{**_fields(promoted(status)), "observed_generation": 3})
    )


def _fields(condition: Condition) -> dict[str, object]:
    return {name: getattr(condition, name) for name in Condition.__slots__}
