"""Recorded alerts: written with the transition, delivered after, removed once delivered.

The real `CanaryController` and the real `NotificationDispatcher` over the in-memory API
server (`FakeKube`), posting to a Slack-shaped receiver on loopback. "A controller killed"
is a dispatcher closed at once with its delivery in flight, and a new controller and
dispatcher over the same cluster; the operator killed with SIGKILL is in
tests/e2e/test_notifications_and_gates.py. Tests wait for conditions, never for time.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from canary.adapters.notifiers import (
    NotificationDispatcher,
    PrometheusNotificationMetrics,
    RetryPolicy,
)
from canary.controller.notify import AlertProviderResolver, PendingAlertClearer
from canary.controller.reconcile import CanaryController
from canary.core import EmitEvent, EventType
from canary.model import API_VERSION, Phase
from canary.model.canary import Canary
from canary.ports import Unavailable
from canary.testing import (
    DEFAULT_ANALYSIS,
    FakeKube,
    Fakes,
    canary_manifest,
    controller,
    deployment,
)
from canary.testing.builders import set_image
from tests.http_fixtures import RecordingServer, Reply

NS, NAME = "test", "podinfo"
REF = f"{NS}/{NAME}"
SECRET_PATH = "/services/T0DURABLE/B0DURABLE/xoxs-durable-5e1f"
TOKEN = "xoxb-durable-token-0042"
DESTINATION = f"{NS}/on-call"
QUICK = RetryPolicy(base_delay=0.05, max_delay=0.2, give_up_after=20.0)


def alert_provider() -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "AlertProvider",
        "metadata": {"name": "on-call", "namespace": NS},
        "spec": {"type": "slack", "channel": "deploys", "secretRef": {"name": "on-call-webhook"}},
    }


def webhook_secret(address: str) -> dict[str, Any]:
    data = {"address": address, "token": TOKEN}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "on-call-webhook", "namespace": NS},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


@dataclass
class World:
    """One cluster, and the controllers that ran against it (the last one is current)."""

    kube: FakeKube
    receiver: RecordingServer
    retry: RetryPolicy
    clear_attempts: int = 8
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    dispatchers: list[NotificationDispatcher] = field(default_factory=list)
    ctl: CanaryController | None = None
    fakes: Fakes | None = None

    def __post_init__(self) -> None:
        self.metrics = PrometheusNotificationMetrics(self.registry)  # one for every controller

    def start(self) -> CanaryController:
        """A controller (new process): a fresh dispatcher, nothing remembered."""
        ctl, fakes = controller(kube=self.kube)
        events = fakes.events

        async def on_failure(canary: Canary, alert: Any, reason: str) -> None:
            await events.emit(canary, EmitEvent(EventType.WARNING, reason))

        dispatcher = NotificationDispatcher(
            AlertProviderResolver(self.kube),
            on_failure=on_failure,
            on_settled=PendingAlertClearer(self.kube, attempts=self.clear_attempts, backoff=0.01),
            metrics=self.metrics,
            retry=self.retry,
            pacing={"slack": 0.0},
        )
        ctl.notifier = dispatcher
        self.dispatchers.append(dispatcher)
        self.ctl, self.fakes = ctl, fakes
        return ctl

    @property
    def dispatcher(self) -> NotificationDispatcher:
        return self.dispatchers[-1]

    async def passes(self, count: int) -> None:
        assert self.ctl is not None
        for _ in range(count):
            await self.ctl.run_pass(NS, NAME)

    def stored(self) -> dict[str, Any]:
        obj = self.kube.peek(API_VERSION, "Canary", NAME, NS)
        assert obj is not None
        return dict(obj.get("status") or {})

    def pending(self) -> list[dict[str, Any]]:
        return list(self.stored().get("pendingAlerts") or [])

    def count(self, outcome: str, provider_type: str = "slack") -> float:
        value = self.registry.get_sample_value(
            "canary_notifications_total", {"provider_type": provider_type, "outcome": outcome}
        )
        return value or 0.0

    async def idle(self) -> None:
        assert await self.dispatcher.wait_idle(30), "deliveries did not finish in time"

    def accepted_kinds(self) -> list[str]:
        return [_kind(r.json()) for r in self.receiver.accepted_to(SECRET_PATH)]


def _kind(payload: dict[str, Any]) -> str:
    """The alert kind a Slack post is about (its context line ends with it)."""
    blocks = payload["attachments"][0]["blocks"]
    context = next(b for b in blocks if b["type"] == "context")
    return str(context["elements"][0]["text"]).rsplit(" · ", 1)[-1]


Make = Callable[..., Awaitable[World]]


@pytest.fixture
async def world(recording_server: RecordingServer) -> AsyncIterator[Make]:
    made: list[World] = []

    async def make(retry: RetryPolicy = QUICK, clear_attempts: int = 8) -> World:
        analysis = {
            **DEFAULT_ANALYSIS,
            "alerts": [{"name": "team", "providerRef": {"name": "on-call"}}],
        }
        kube = FakeKube()
        kube.seed(
            deployment(),
            canary_manifest(analysis=analysis),
            alert_provider(),
            webhook_secret(recording_server.url(SECRET_PATH)),
        )
        w = World(kube, recording_server, retry, clear_attempts)
        w.start()
        made.append(w)
        return w

    yield make
    for w in made:
        for dispatcher in w.dispatchers:
            await dispatcher.aclose(0.5)


class TestRecordedWithTheTransition:
    async def test_the_alert_is_in_the_status_write_of_its_transition_and_leaves_once_delivered(
        self, world: Make, recording_server: RecordingServer
    ) -> None:
        release = asyncio.Event()
        recording_server.script(SECRET_PATH, Reply(200, hold=release))
        w = await world()

        await w.passes(2)  # the second pass records the Initialized transition
        (pending,) = w.pending()
        assert w.stored()["phase"] == "Initialized"
        assert pending["kind"] == "Initialized" and pending["destinations"] == [DESTINATION]
        assert pending["alert"]["message"] == "New Deployment detected, initialization completed."
        text = json.dumps(w.stored())
        assert SECRET_PATH not in text and TOKEN not in text and "127.0.0.1" not in text

        await recording_server.wait_for(1, path=SECRET_PATH)  # posted, not answered yet
        await w.passes(3)  # passes go on; the held post delays nothing
        assert len(recording_server.requests_to(SECRET_PATH)) == 1

        release.set()
        await w.idle()
        assert w.pending() == []
        assert w.accepted_kinds() == ["Initialized"]
        assert w.count("sent") == 1

    async def test_a_controller_started_after_one_died_mid_delivery_sends_each_exactly_once(
        self, world: Make, recording_server: RecordingServer
    ) -> None:
        recording_server.script(SECRET_PATH, Reply(200, hold=asyncio.Event()))
        w = await world()
        await w.passes(2)
        await recording_server.wait_for(1, path=SECRET_PATH)  # Initialized: in flight, stalled
        set_image(w.kube, NAME, NS, "podinfo:v2")
        await w.passes(1)  # Started: waits behind it, in memory
        await w.dispatcher.aclose(0)  # killed
        assert [p["kind"] for p in w.pending()] == ["Initialized", "Started"]
        assert len(recording_server.requests_to(SECRET_PATH)) == 1

        w.start()
        await w.passes(1)
        await recording_server.wait_accepted(2, path=SECRET_PATH, within=10)
        await w.idle()
        await w.passes(2)
        await w.idle()
        assert w.accepted_kinds() == ["Initialized", "Started"]
        assert w.pending() == []

    async def test_a_stopping_controller_leaves_the_alerts_it_has_not_sent_to_the_next_one(
        self, world: Make, recording_server: RecordingServer
    ) -> None:
        release = asyncio.Event()
        recording_server.script(SECRET_PATH, Reply(200, hold=release))
        w = await world()
        await w.passes(2)
        await recording_server.wait_for(1, path=SECRET_PATH)
        set_image(w.kube, NAME, NS, "podinfo:v2")
        await w.passes(1)
        closing = asyncio.create_task(w.dispatcher.aclose(10))
        await asyncio.sleep(0)  # one turn of the loop: aclose has begun (it takes nothing new)
        release.set()  # the post in flight completes within the grace ...
        await closing
        assert w.accepted_kinds() == ["Initialized"]
        # ... and is removed from the status; Started was not tried: it waits for the next.
        assert [p["kind"] for p in w.pending()] == ["Started"]
        assert len(recording_server.requests_to(SECRET_PATH)) == 1

    async def test_a_delivered_alert_whose_removal_failed_is_not_sent_again_and_a_pass_removes_it(
        self, world: Make, recording_server: RecordingServer
    ) -> None:
        w = await world(clear_attempts=2)
        await w.passes(1)
        # The status write that records Initialized succeeds; both removals after it fail.
        w.kube.before(
            "patch",
            lambda kube: kube.fail(
                "patch", kind="Canary", subresource="status", times=2, error=_outage()
            ),
            kind="Canary",
            subresource="status",
        )
        await w.passes(1)
        await w.idle()
        assert w.accepted_kinds() == ["Initialized"]
        assert [p["kind"] for p in w.pending()] == ["Initialized"]  # still recorded

        await w.passes(1)  # this process knows it delivered it: the pass removes it
        await w.idle()
        assert w.pending() == []
        assert w.accepted_kinds() == ["Initialized"]
        assert len(recording_server.requests_to(SECRET_PATH)) == 1

    async def test_a_pass_written_while_a_delivery_removed_its_alert_keeps_both_changes(
        self, world: Make, recording_server: RecordingServer
    ) -> None:
        w = await world()
        await w.passes(2)
        await w.idle()
        assert w.pending() == []
        release = asyncio.Event()
        recording_server.script(SECRET_PATH, Reply(200, hold=release))
        set_image(w.kube, NAME, NS, "podinfo:v2")
        await w.passes(1)  # Started: recorded and posted (held)
        assert [p["kind"] for p in w.pending()] == ["Started"]

        def delivered_meanwhile(kube: FakeKube) -> None:
            release.set()  # the removal races the next pass's status write

            def remove(obj: dict[str, Any]) -> None:
                obj["status"].pop("pendingAlerts", None)

            kube.edit(API_VERSION, "Canary", NAME, NS, remove)

        w.kube.before("patch", delivered_meanwhile, kind="Canary", subresource="status")
        await w.passes(1)
        await w.idle()
        assert w.stored()["canaryWeight"] == 10  # the pass was written, not run again
        assert w.pending() == []
        assert w.accepted_kinds() == ["Initialized", "Started"]


class TestReadingTheAlertProvider:
    async def test_an_api_error_reading_the_alert_provider_or_its_secret_is_retried(
        self, world: Make
    ) -> None:
        w = await world()
        w.kube.fail(
            "get", kind="AlertProvider", error=Unavailable("etcd leader changed", status=500)
        )
        w.kube.fail("get", kind="Secret", error=Unavailable("etcd leader changed", status=500))
        await w.passes(2)
        await w.idle()
        assert w.accepted_kinds() == ["Initialized"]
        assert w.fakes is not None and w.fakes.events.warnings(REF) == []
        assert w.pending() == []


class TestTimeBudget:
    async def test_a_burst_of_429s_beyond_five_attempts_is_delivered_once_within_the_budget(
        self, world: Make, recording_server: RecordingServer
    ) -> None:
        limited = Reply(429, "rate_limited", headers={"Retry-After": "0.2"})
        recording_server.script(SECRET_PATH, *[limited] * 7)
        w = await world()
        await w.passes(2)
        await w.idle()
        requests = recording_server.requests_to(SECRET_PATH)
        assert len(requests) == 8
        gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(requests)]
        assert min(gaps) >= 0.19, gaps  # Retry-After honoured every time
        assert w.accepted_kinds() == ["Initialized"] and w.count("sent") == 1
        assert w.pending() == []

    async def test_a_message_not_delivered_within_the_budget_is_given_up_visibly(
        self, world: Make, recording_server: RecordingServer
    ) -> None:
        recording_server.default(SECRET_PATH, Reply(500, "rollup_error"))
        w = await world(RetryPolicy(base_delay=0.05, max_delay=0.1, give_up_after=0.6))
        await w.passes(2)
        await w.idle()
        assert w.fakes is not None
        (warning,) = [m for m in w.fakes.events.warnings(REF) if m.startswith("Notification")]
        assert warning.startswith(
            "Notification Initialized for podinfo.test failed: "
            "slack AlertProvider test/on-call: gave up after "
        )
        assert warning.endswith("HTTP 500: rollup_error")
        assert SECRET_PATH not in warning and TOKEN not in warning
        assert w.count("failed") == 1
        assert w.pending() == []  # given up: it leaves the status
        assert w.stored()["phase"] == Phase.INITIALIZED.value


def _outage() -> Unavailable:
    return Unavailable("the API server is restarting", status=503)
