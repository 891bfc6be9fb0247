"""Blue/green, A/B testing, traffic mirroring and the kubernetes provider.

Reference: flagger.md 2.2 step 26, 2.11; checklist items 25, 26, 27, 28.
"""

from __future__ import annotations

import pytest

from canary.core import HookRequest, Outcome, Promote, Routes, SetRoutes
from canary.model import HookType, Phase
from tests.core.harness import (
    Script,
    canary_doc,
    finished,
    hook,
    run,
    running_status,
    running_world,
    single_step,
)

MATCH = [{"headers": {"x-canary": {"exact": "insider"}}}]


def test_item26_blue_green_one_iteration() -> None:
    """Progressing x3 → Promoting → Finalising → Succeeded."""
    result = run(canary_doc({"iterations": 1}), 10, until=finished)
    assert result.phases() == [Phase.PROGRESSING] * 3 + [
        Phase.PROMOTING,
        Phase.FINALISING,
        Phase.SUCCEEDED,
    ]
    assert result.routes() == [(100, 0), (100, 0), (0, 100), (0, 100), (100, 0), (100, 0)]
    assert [t.iterations for t in result.ticks[:3]] == [0, 1, 2]
    assert result[2].events == (
        "Starting canary analysis for podinfo.test",
        "Advance podinfo.test canary iteration 1/1",
    )
    assert result[3].events == ("Routing all traffic to canary",)
    assert result[3].set_routes == (SetRoutes(0, 100, False),)
    assert Promote() in result[4].actions
    assert result[5].has_event("Routing all traffic to primary")


@pytest.mark.parametrize("n", [2, 3, 5], ids=["item26-n2", "item26-n3", "item26-n5"])
def test_item26_blue_green_counts_iterations_then_switches_then_promotes(n: int) -> None:
    result = run(canary_doc({"iterations": n}), n + 8, until=finished)
    # tick 1 scale up, ticks 2..n+1 iterations 1..n, tick n+2 switch, tick n+3 promote
    assert [t.iterations for t in result.ticks[: n + 2]] == [*range(n + 1), n + 1]
    assert result.first(Phase.PROMOTING) == n + 3
    assert result.first(Phase.SUCCEEDED) == n + 5
    switches = [t.tick for t in result.ticks if SetRoutes(0, 100, False) in t.set_routes]
    assert switches == [n + 2]


def test_item26_blue_green_failing_check_does_not_count_an_iteration() -> None:
    doc = canary_doc({"iterations": 2, "threshold": 3})
    result = run(doc, 5, Script(metrics={3: Outcome.FAIL}))
    assert [t.iterations for t in result.ticks] == [0, 1, 1, 2, 3]
    assert [t.failed_checks for t in result.ticks] == [0, 0, 1, 1, 1]


def test_item28_blue_green_mirrors_every_iteration_until_the_switch() -> None:
    result = run(canary_doc({"iterations": 2, "mirror": True}), 10, until=finished)
    mirrored = [(t.tick, t.routes) for t in result.ticks]
    assert mirrored[:5] == [
        (1, Routes(100, 0, False)),
        (2, Routes(100, 0, True)),
        (3, Routes(100, 0, True)),
        (4, Routes(0, 100, False)),
        (5, Routes(0, 100, False)),
    ]
    assert result[2].has_event("Start traffic mirroring for podinfo.test")
    assert result[4].events == ("Stop traffic mirroring and route all traffic to canary",)
    assert result.first(Phase.PROMOTING) == 5


def test_item25_ab_testing() -> None:
    """Checklist 25: each passing tick routes matching traffic to the canary, iterations++;
    promotion when iterations == n."""
    result = run(canary_doc({"iterations": 2, "match": MATCH}), 10, until=finished)
    assert result.phases() == [Phase.PROGRESSING] * 3 + [
        Phase.PROMOTING,
        Phase.FINALISING,
        Phase.SUCCEEDED,
    ]
    assert [t.iterations for t in result.ticks[:3]] == [0, 1, 2]
    assert [t.set_routes for t in result.ticks[:4]] == [
        (),
        (SetRoutes(0, 100, False),),
        (SetRoutes(0, 100, False),),
        (),
    ]
    assert result[2].has_event("Advance podinfo.test canary iteration 1/2")
    assert result[3].has_event("Advance podinfo.test canary iteration 2/2")
    assert Promote() in result[4].actions


def test_item25_ab_confirm_promotion_when_iterations_done() -> None:
    doc = canary_doc(
        {"iterations": 2, "match": MATCH, "webhooks": [hook("promo", "confirm-promotion")]}
    )
    result = run(doc, 6, Script(hooks={"promo": lambda t: t >= 5}))
    assert result.phases()[:5] == [Phase.PROGRESSING] * 3 + [
        Phase.WAITING_PROMOTION,
        Phase.PROMOTING,
    ]
    assert [t for t, _ in result.hook_requests(HookType.CONFIRM_PROMOTION)] == [4, 5]


def test_ab_and_blue_green_status_weight_follows_the_routes() -> None:
    """Ours: status.canaryWeight shows the canary's share once traffic is routed to it."""
    result = run(canary_doc({"iterations": 2, "match": MATCH}), 3)
    assert [t.weight for t in result.ticks] == [0, 100, 100]


def test_item28_mirroring_one_mirrored_step_before_the_first_increase() -> None:
    """Checklist 28: first step 100/0 mirrored, next 90/10 not mirrored."""
    result = run(
        canary_doc({"stepWeight": 10, "maxWeight": 30, "mirror": True}), 12, until=finished
    )
    assert [t.routes for t in result.ticks[:5]] == [
        Routes(100, 0, False),
        Routes(100, 0, True),
        Routes(90, 10, False),
        Routes(80, 20, False),
        Routes(70, 30, False),
    ]
    assert result[2].events == (
        "Starting canary analysis for podinfo.test",
        "Start traffic mirroring for podinfo.test",
    )
    assert result[3].analysed  # the mirrored tick is not a "first tick" again
    assert not result[3].has_event("Starting canary analysis")
    assert result.first(Phase.PROMOTING) == 6


def test_item40_confirm_traffic_increase_is_skipped_while_mirrored() -> None:
    doc = canary_doc(
        {"stepWeight": 10, "mirror": True, "webhooks": [hook("cti", "confirm-traffic-increase")]}
    )
    record = single_step(doc, running_status(weight=0), running_world(100, 0, mirrored=True))
    assert (
        HookRequest("cti", HookType.CONFIRM_TRAFFIC_INCREASE, "Progressing") not in record.requests
    )
    assert record.set_routes == (SetRoutes(90, 10, False),)


def test_item27_kubernetes_provider_forces_ten_iterations_and_never_routes() -> None:
    """Checklist 27: no traffic shifting, iterations forced to 10, promotion → Finalising."""
    doc = canary_doc({"interval": "1m"}, provider="kubernetes")
    result = run(doc, 20, until=finished)
    assert all(t.set_routes == () for t in result.ticks)
    assert result.world.routes == Routes(100, 0, False)
    assert [t.iterations for t in result.ticks[:12]] == [*range(11), 11]
    assert result[11].has_event("Advance podinfo.test canary iteration 10/10")
    assert not result[12].has_event("Routing all traffic to canary")
    # it routes nothing, so it does not say all traffic is on the new version
    assert result[12].has_event("Iterations of podinfo.test done (10/10), promoting next")
    assert result[12].status.message == "Iterations done (10/10); promoting next."
    assert result.first(Phase.PROMOTING) == 13
    assert result.first(Phase.FINALISING) == 14
    assert result.first(Phase.SUCCEEDED) == 15


def test_item27_kubernetes_provider_warns_that_progressive_traffic_is_unsupported() -> None:
    doc = canary_doc({"interval": "1m"}, provider="kubernetes")
    result = run(doc, 3)
    assert {
        "Progressive traffic is not supported when using the kubernetes provider",
        "Setting canaryAnalysis.iterations: 10",
    } <= set(result.events())


def test_item27_kubernetes_provider_keeps_explicit_iterations() -> None:
    doc = canary_doc({"iterations": 2}, provider="kubernetes")
    result = run(doc, 10, until=finished)
    assert not any("not supported" in e for e in result.events())
    assert result.first(Phase.PROMOTING) == 5


def test_item27_kubernetes_promotion_goes_straight_to_finalising() -> None:
    doc = canary_doc({"iterations": 2}, provider="kubernetes")
    record = single_step(doc, running_status(Phase.PROMOTING, iterations=3), running_world())
    assert record.phase is Phase.FINALISING
    assert record.set_routes == ()


def test_item31_blue_green_waiting_promotion_then_switch() -> None:
    """Difference (machine.py run_blue_green): once the gate opens the phase goes back to
    Progressing for the traffic switch; the next passing tick promotes."""
    doc = canary_doc({"iterations": 2, "webhooks": [hook("promo", "confirm-promotion")]})
    result = run(doc, 10, Script(hooks={"promo": lambda t: t >= 6}), until=finished)
    assert result.phases() == [
        Phase.PROGRESSING,
        Phase.PROGRESSING,
        Phase.PROGRESSING,
        Phase.WAITING_PROMOTION,
        Phase.WAITING_PROMOTION,
        Phase.PROGRESSING,
        Phase.PROMOTING,
        Phase.FINALISING,
        Phase.SUCCEEDED,
    ]
    assert [t.iterations for t in result.ticks[:6]] == [0, 1, 2, 2, 2, 3]
    assert result[6].set_routes == (SetRoutes(0, 100, False),)
    assert [t for t, _ in result.hook_requests(HookType.CONFIRM_PROMOTION)] == [4, 5, 6]
