"""``status.pendingAlerts``: the key, the record of an alert, and how a pass's list is formed.

The outbox is what makes a notification survive a controller killed between the status
write that records a transition and the delivery of its message (canary.core.outbox).
"""

from __future__ import annotations

from dataclasses import replace

from canary.core.actions import Alert, AlertKind
from canary.core.outbox import (
    MAX_PENDING_ALERTS,
    alert_from_record,
    alert_key,
    alert_record,
    merge_pending,
    pending_alerts,
    with_pending,
    without_destination,
)
from canary.model.canary import Severity
from canary.model.status import CanaryStatus, MetricStatus, PendingAlert, Phase

RUNNING = CanaryStatus(
    phase=Phase.PROGRESSING,
    canary_weight=20,
    last_applied_spec="v3",
    last_transition_time="2026-03-01T12:30:00Z",
    current_revision="main@sha1:3333",
)

ROLLED_BACK = Alert(
    kind=AlertKind.THRESHOLD_REACHED,
    severity=Severity.ERROR,
    message="Failed checks threshold reached 2",
    with_metadata=True,
    canary_name="podinfo",
    namespace="apps",
    target="Deployment/podinfo.apps",
    revision="main@sha1:3333",
    previous_revision="main@sha1:2222",
    images=("podinfo:3.0",),
    previous_images=("podinfo:2.0",),
    weight=20,
    failed_checks=2,
    threshold=2,
    duration_seconds=754.5,
    analysis=(
        MetricStatus(
            name="request-success-rate",
            outcome="Fail",
            summary="success rate 91.2% is below the minimum 99%",
            value=91.2,
            threshold=">= 99",
            details={"judge": {"running": "state that is not for messages"}},
        ),
    ),
    revert_commit="",
    failure="Halt podinfo.apps advancement request-success-rate 91.2 < 99",
    fields=(("Target", "Deployment/podinfo.apps"), ("Failed checks threshold", "2")),
)


def pending(key: str, *destinations: str) -> PendingAlert:
    return PendingAlert(key, "Promoted", "2026-03-01T12:30:00Z", destinations, {"message": key})


class TestKey:
    def test_a_pass_replayed_from_the_same_status_gives_the_same_key(self) -> None:
        assert alert_key("uid-1", RUNNING, ROLLED_BACK) == alert_key("uid-1", RUNNING, ROLLED_BACK)

    def test_another_transition_canary_or_kind_gives_another_key(self) -> None:
        key = alert_key("uid-1", RUNNING, ROLLED_BACK)
        assert alert_key("uid-1", RUNNING.with_(canary_weight=30), ROLLED_BACK) != key
        assert alert_key("uid-2", RUNNING, ROLLED_BACK) != key
        promoted = Alert(kind=AlertKind.PROMOTED, severity=Severity.INFO, message="Promoted")
        assert alert_key("uid-1", RUNNING, promoted) != key
        assert alert_key("uid-1", RUNNING, ROLLED_BACK, 1) != key

    def test_the_pending_alerts_of_the_status_do_not_change_the_key(self) -> None:
        waiting = RUNNING.with_(pending_alerts=(pending("k", "apps/on-call"),))
        assert alert_key("uid-1", waiting, ROLLED_BACK) == alert_key("uid-1", RUNNING, ROLLED_BACK)

    def test_the_key_names_the_kind(self) -> None:
        assert alert_key("uid-1", RUNNING, ROLLED_BACK).startswith("ThresholdReached-")


class TestRecord:
    def test_an_alert_comes_back_from_its_record_without_the_judges_details(self) -> None:
        back = alert_from_record("ThresholdReached", alert_record(ROLLED_BACK))
        assert back is not None
        assert back.analysis[0].details == {}
        expected = replace(ROLLED_BACK, analysis=(replace(ROLLED_BACK.analysis[0], details={}),))
        assert back == expected

    def test_a_kind_this_version_does_not_know_gives_nothing(self) -> None:
        assert alert_from_record("SomethingNew", alert_record(ROLLED_BACK)) is None

    def test_a_hand_edited_record_reads_as_defaults(self) -> None:
        back = alert_from_record(
            "Promoted",
            {"severity": "loud", "weight": "ten", "images": "podinfo", "analysis": [3, None]},
        )
        assert back is not None
        assert (back.severity, back.weight, back.images, back.analysis) == (
            Severity.INFO,
            0,
            (),
            (),
        )


class TestPendingList:
    def test_an_alert_going_nowhere_is_not_recorded(self) -> None:
        promoted = Alert(kind=AlertKind.PROMOTED, severity=Severity.INFO, message="Promoted")
        records = pending_alerts(
            "uid-1", RUNNING, [(ROLLED_BACK, ()), (promoted, ("apps/on-call",))], "t"
        )
        assert [(r.kind, r.destinations) for r in records] == [("Promoted", ("apps/on-call",))]

    def test_delivered_destinations_leave_and_an_alert_with_none_left_goes(self) -> None:
        status = RUNNING.with_(
            pending_alerts=(pending("a", "apps/team", "apps/pager"), pending("b", "global"))
        )
        done = {("a", "apps/pager"), ("b", "global")}
        kept, dropped = with_pending(status, (), lambda k, d: (k, d) in done)
        assert kept.pending_alerts == (pending("a", "apps/team"),) and dropped == ()

    def test_a_key_already_waiting_is_not_added_twice(self) -> None:
        status = RUNNING.with_(pending_alerts=(pending("a", "global"),))
        kept, _ = with_pending(status, (pending("a", "global"), pending("b", "global")), _never)
        assert [p.key for p in kept.pending_alerts] == ["a", "b"]

    def test_beyond_the_limit_the_oldest_are_given_up(self) -> None:
        status = RUNNING.with_(
            pending_alerts=tuple(pending(f"old{i}", "global") for i in range(MAX_PENDING_ALERTS))
        )
        kept, dropped = with_pending(status, (pending("new", "global"),), _never)
        assert [p.key for p in dropped] == ["old0"]
        assert len(kept.pending_alerts) == MAX_PENDING_ALERTS
        assert kept.pending_alerts[-1].key == "new"

    def test_a_pass_written_over_a_delivery_keeps_both(self) -> None:
        old = (pending("a", "apps/team", "apps/pager"), pending("b", "global"))
        new = (*old, pending("c", "global"))  # the pass added c
        fresh = (pending("a", "apps/team"),)  # meanwhile: a delivered to pager, b delivered
        merged = merge_pending(old, new, fresh)
        assert merged == (pending("a", "apps/team"), pending("c", "global"))

    def test_one_destination_done_leaves_the_others(self) -> None:
        both = (pending("a", "apps/team", "apps/pager"), pending("b", "global"))
        assert without_destination(both, "a", "apps/team") == (
            pending("a", "apps/pager"),
            pending("b", "global"),
        )
        assert without_destination(both, "b", "global") == both[:1]


class TestInTheStatus:
    def test_pending_alerts_round_trip_and_are_absent_when_none_wait(self) -> None:
        status = RUNNING.with_(pending_alerts=(pending("a", "apps/team"),))
        assert CanaryStatus.from_dict(status.to_dict()) == status
        assert RUNNING.to_dict()["pendingAlerts"] is None

    def test_a_record_without_key_or_destination_is_dropped_when_read(self) -> None:
        read = CanaryStatus.from_dict(
            {"pendingAlerts": [{"kind": "Promoted"}, {"key": "k", "destinations": []}, "x"]}
        )
        assert read.pending_alerts == ()


def _never(key: str, destination: str) -> bool:
    return False
