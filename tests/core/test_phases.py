"""The phase table (canary/core/phases.py): consistent, complete, and the only way to move.

The table is the one place that says where a canary can go from where, so these tests
hold it to that: every phase change the machine makes goes through it, every trigger in
it is one the machine really fires, and a pair it does not hold is refused.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import canary.core
from canary.core import Outcome, Readiness, Trigger, UndefinedTransition, transition
from canary.core.phases import IDLE, IN_RUN, NOT_INITIALIZED, RUNNING, TRANSITIONS
from canary.errors import CanaryError
from canary.model import Phase
from canary.model.commands import ABORT, RETRY
from tests.core.harness import (
    Script,
    World,
    canary_doc,
    ended,
    fail_from,
    finished,
    hook,
    new_revision,
    run,
    running_status,
    running_world,
    single_step,
    with_annotation,
)

CORE = Path(canary.core.__file__).parent
TOKEN = "2026-03-01T12:00:00Z by alice"
FAILED = Readiness.failed("ProgressDeadlineExceeded")

# ------------------------------------------------------------------ the table itself


def test_an_undefined_transition_is_refused() -> None:
    with pytest.raises(UndefinedTransition) as refused:
        transition(Phase.SUCCEEDED, Trigger.PROMOTION_FAILED)
    assert refused.value.phase is Phase.SUCCEEDED
    assert refused.value.trigger is Trigger.PROMOTION_FAILED
    assert "Succeeded" in str(refused.value) and "PromotionFailed" in str(refused.value)


def test_a_refused_transition_is_a_bug_not_a_transient_error() -> None:
    error = UndefinedTransition(Phase.NONE, Trigger.TRAFFIC_ON_PRIMARY)
    assert isinstance(error, CanaryError) and not error.transient


def test_a_defined_transition_gives_the_tables_phase() -> None:
    assert transition(Phase.PROGRESSING, Trigger.PROMOTION_STARTED) is Phase.PROMOTING
    assert transition(Phase.WAITING, Trigger.GATE_CLOSED) is Phase.WAITING


def test_each_trigger_leads_to_exactly_one_phase() -> None:
    targets: dict[Trigger, set[Phase]] = {}
    for (_, trigger), target in TRANSITIONS.items():
        targets.setdefault(trigger, set()).add(target)
    assert set(targets) == set(Trigger), "a trigger with no row"
    assert {t: p for t, p in targets.items() if len(p) > 1} == {}


def test_the_phase_groups_partition_the_phases() -> None:
    assert set(Phase) == NOT_INITIALIZED | RUNNING | IDLE
    assert not (NOT_INITIALIZED & RUNNING or NOT_INITIALIZED & IDLE or RUNNING & IDLE)
    assert IN_RUN < RUNNING


def _reachable_from(start: Phase) -> set[Phase]:
    seen = {start}
    frontier = [start]
    while frontier:
        phase = frontier.pop()
        for (source, _), target in TRANSITIONS.items():
            if source is phase and target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


def test_every_phase_but_terminating_is_reachable_from_a_new_canary() -> None:
    """Terminating is Flagger's: only a status written by it holds the phase."""
    assert set(Phase) - _reachable_from(Phase.NONE) == {Phase.TERMINATING}


@pytest.mark.parametrize("phase", sorted(RUNNING), ids=str)
def test_every_run_can_still_end_either_way(phase: Phase) -> None:
    """No running phase is a trap: a run can always still succeed, and still fail."""
    assert _reachable_from(phase) >= {Phase.SUCCEEDED, Phase.FAILED}


# ------------------------------------------------------------------ the machine uses it


def _phase_keywords() -> Iterator[tuple[str, int]]:
    for path in sorted(CORE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and any(k.arg == "phase" for k in node.keywords):
                yield path.name, node.lineno


def test_the_phase_is_written_only_by_tick_move() -> None:
    """`Tick.move` consults the table; any other ``phase=`` write would bypass it."""
    writes = list(_phase_keywords())
    assert len(writes) == 1 and writes[0][0] == "tick.py", writes


def _trace(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Phase, Trigger]]:
    """Record every (phase, trigger) the machine looks up, still enforcing the table."""
    import canary.core.tick

    taken: list[tuple[Phase, Trigger]] = []
    real = canary.core.tick.transition

    def recording(phase: Phase, trigger: Trigger) -> Phase:
        taken.append((phase, trigger))
        return real(phase, trigger)

    monkeypatch.setattr(canary.core.tick, "transition", recording)
    return taken


def _fresh(script: Script | None = None, world: World | None = None) -> None:
    run(canary_doc({"stepWeight": 50}), 3, script, start="fresh", world=world)


def _promoted(**analysis: object) -> None:
    run(canary_doc({"stepWeight": 50, **analysis}), 12, until=finished)


def _withheld(kind: str) -> None:
    doc = canary_doc({"stepWeight": 50, "webhooks": [hook("gate", kind)]})
    run(doc, 6, Script(hooks={"gate": False}), until=ended(Phase.WAITING, Phase.WAITING_PROMOTION))


def _rolled_back(script: Script, **analysis: object) -> None:
    run(canary_doc({"stepWeight": 10, "threshold": 1, **analysis}), 8, script, until=finished)


def _retried() -> None:
    before = {6: with_annotation(RETRY, TOKEN)}  # rolled back on tick 4
    run(canary_doc({"stepWeight": 10, "threshold": 1}), 6, Script(fail_from(2), before=before))


def _deleted() -> None:
    world = running_world(90, 10)
    world.deleting = True
    doc = canary_doc({"stepWeight": 10}, revertOnDeletion=True)
    single_step(doc, running_status(weight=10), world)


SCENARIOS: dict[Trigger, Callable[[], None]] = {
    Trigger.PRIMARY_ABSENT: _fresh,
    Trigger.PRIMARY_NOT_READY: lambda: _fresh(Script(primary_ready=Readiness.waiting("starting"))),
    Trigger.INITIALIZED: _fresh,
    Trigger.RETRIED: _retried,
    Trigger.GATE_CLOSED: lambda: _withheld("confirm-rollout"),
    Trigger.RUN_STARTED: _promoted,
    Trigger.REVISION_CHANGED: lambda: _rolled_back(Script(before={3: new_revision("v3")})),
    Trigger.ABORTED: lambda: _rolled_back(Script(before={2: with_annotation(ABORT, TOKEN)})),
    Trigger.PRIMARY_FAILED: lambda: _rolled_back(Script(primary_ready={2: FAILED})),
    Trigger.CANARY_FAILED: lambda: _rolled_back(Script(canary_ready={2: FAILED})),
    Trigger.ROLLBACK_REQUESTED: lambda: _rolled_back(
        Script(hooks={"rollback": True}), webhooks=[hook("rollback", "rollback")]
    ),
    Trigger.ANALYSIS_FAILED: lambda: _rolled_back(Script(metrics={3: Outcome.FAIL})),
    Trigger.ANALYSIS_SKIPPED: lambda: run(
        canary_doc({"stepWeight": 50}, skipAnalysis=True), 3, until=finished
    ),
    Trigger.PROMOTION_WITHHELD: lambda: _withheld("confirm-promotion"),
    Trigger.SWITCHED_TO_CANARY: lambda: _promoted(iterations=2, stepWeight=0),
    Trigger.PROMOTION_STARTED: _promoted,
    Trigger.TRAFFIC_ON_PRIMARY: _promoted,
    Trigger.PROMOTION_FINISHED: _promoted,
    Trigger.PROMOTION_FAILED: lambda: run(
        canary_doc({"stepWeight": 50}), 8, Script(primary_ready={5: FAILED}), until=finished
    ),
    Trigger.DELETED: _deleted,
}


def test_every_trigger_has_a_scenario() -> None:
    assert set(SCENARIOS) == set(Trigger)


@pytest.mark.parametrize("trigger", list(SCENARIOS), ids=[t.value for t in SCENARIOS])
def test_the_machine_fires_every_trigger_of_the_table(
    trigger: Trigger, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = _trace(monkeypatch)
    SCENARIOS[trigger]()
    assert trigger in {fired for _, fired in taken}, taken
    # and each lookup was one the table holds (transition would have raised otherwise)
    assert all(pair in TRANSITIONS for pair in taken)
