"""Delivery never hurts a rollout: notify() returns at once; retries, pacing, give-up and reporting.

Every test posts to a real aiohttp server on 127.0.0.1 (or to a closed port) and
waits for conditions with deadlines, never with sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

import pytest
from prometheus_client import CollectorRegistry

from canary.adapters.notifiers import (
    GlobalNotifierConfig,
    NotificationDispatcher,
    PrometheusNotificationMetrics,
    ProviderRef,
    ProviderResolver,
    ResolvedProvider,
    RetryPolicy,
    idempotency_key,
)
from canary.core.actions import Alert
from canary.model.canary import AlertRef, Canary
from tests.http_fixtures import RecordingServer, Reply
from tests.notify.samples import (
    SECRET_PATH,
    TOKEN,
    canary,
    promoted,
    provider,
    threshold_reached,
    waiting,
)

FAST = RetryPolicy(
    max_attempts=3, base_delay=0.05, max_delay=0.2, max_retry_after=5.0, give_up_after=30.0
)
NOTIFY_BUDGET = 0.05  # notify() must return within this, whatever the server does


@dataclass
class Harness:
    """A dispatcher wired to recorders of failures and counters."""

    registry: CollectorRegistry
    providers: dict[ProviderRef, ResolvedProvider] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    dispatcher: NotificationDispatcher | None = None

    def count(self, provider_type: str, outcome: str) -> float:
        value = self.registry.get_sample_value(
            "canary_notifications_total", {"provider_type": provider_type, "outcome": outcome}
        )
        return value or 0.0

    def failure_count(self, provider_type: str) -> float:
        value = self.registry.get_sample_value(
            "canary_notification_failures_total", {"provider_type": provider_type}
        )
        return value or 0.0

    async def notify(
        self, alert: Alert, c: Canary | None = None, *, key: str | None = None
    ) -> float:
        """Notify and return how long the call took (loop time)."""
        assert self.dispatcher is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with asyncio.timeout(1):
            await self.dispatcher.notify(
                c or canary(alerts=(AlertRef(name="a", provider_name="on-call"),)), alert, key=key
            )
        return loop.time() - started


Make = Callable[..., Harness]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    harnesses: list[Harness] = []

    def build(
        resolved: ResolvedProvider | None = None,
        resolver: ProviderResolver | None = None,
        **options: object,
    ) -> Harness:
        harness = Harness(registry=CollectorRegistry())
        if resolved is not None:
            harness.providers[ProviderRef("test", resolved.provider.name)] = resolved

        async def resolve(ref: ProviderRef) -> ResolvedProvider | None:
            return harness.providers.get(ref)

        async def on_failure(c: Canary, a: Alert, reason: str) -> None:
            harness.failures.append(reason)

        options.setdefault("retry", FAST)
        # Provider rate limits are tested on their own (TestPacing); elsewhere they only cost time.
        options.setdefault(
            "pacing", dict.fromkeys(("slack", "msteams", "discord", "rocket", "gchat"), 0.0)
        )
        harness.dispatcher = NotificationDispatcher(
            resolver or resolve,
            on_failure=on_failure,
            metrics=PrometheusNotificationMetrics(harness.registry),
            **options,  # type: ignore[arg-type]
        )
        harnesses.append(harness)
        return harness

    yield build
    for harness in harnesses:
        assert harness.dispatcher is not None
        await harness.dispatcher.aclose(1)


async def idle(harness: Harness, within: float = 10.0) -> None:
    assert harness.dispatcher is not None
    assert await harness.dispatcher.wait_idle(within), "deliveries did not finish in time"


class TestNotifyNeverBlocks:
    async def test_returns_before_the_server_answers(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        release = asyncio.Event()
        recording_server.script("/hook", Reply(200, hold=release))
        h = make(provider("slack", recording_server.url()))
        assert await h.notify(promoted()) < NOTIFY_BUDGET
        await recording_server.wait_for(1)
        assert recording_server.in_flight == 1  # the answer is still pending
        assert h.count("slack", "sent") == 0
        release.set()
        await idle(h)
        assert h.count("slack", "sent") == 1 and h.failures == []

    async def test_a_slow_destination_does_not_delay_another(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        release = asyncio.Event()
        recording_server.script("/slow", Reply(200, hold=release))
        h = make(provider("slack", recording_server.url("/slow"), name="slow"))
        h.providers[ProviderRef("test", "fast")] = provider(
            "generic", recording_server.url("/fast"), name="fast"
        )
        both = canary(
            alerts=(
                AlertRef(name="s", provider_name="slow"),
                AlertRef(name="f", provider_name="fast"),
            )
        )
        assert await h.notify(promoted(), both) < NOTIFY_BUDGET
        await recording_server.wait_for(1, path="/fast")
        await recording_server.wait_for(1, path="/slow")
        assert recording_server.in_flight == 1
        release.set()
        await idle(h)
        assert h.count("slack", "sent") == h.count("generic", "sent") == 1


class TestRetries:
    async def test_429_honours_retry_after(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        recording_server.script(
            "/hook", Reply(429, b"rate_limited", headers={"Retry-After": "1"}), Reply(200)
        )
        h = make(provider("slack", recording_server.url()))
        assert await h.notify(promoted()) < NOTIFY_BUDGET
        first, second = await recording_server.wait_for(2)
        assert second.received_at - first.received_at >= 0.95
        await idle(h)
        assert h.count("slack", "sent") == 1 and h.failures == []

    async def test_retry_after_is_capped(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        recording_server.script("/hook", Reply(429, headers={"Retry-After": "3600"}), Reply(200))
        h = make(
            provider("generic", recording_server.url()), retry=replace(FAST, max_retry_after=0.1)
        )
        await h.notify(promoted())
        first, second = await recording_server.wait_for(2, within=3)
        assert 0.09 <= second.received_at - first.received_at < 2
        await idle(h)
        assert h.count("generic", "sent") == 1

    async def test_discord_retry_after_from_the_json_body(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        recording_server.script(
            "/hook",
            Reply(429, {"message": "You are being rate limited.", "retry_after": 0.3}),
            Reply(204, b""),
        )
        h = make(provider("discord", recording_server.url()))
        await h.notify(promoted())
        first, second = await recording_server.wait_for(2)
        assert second.received_at - first.received_at >= 0.29
        await idle(h)
        assert h.count("discord", "sent") == 1

    async def test_500_then_success_is_delivered(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        recording_server.script("/hook", Reply(500, b"rollup_error"), Reply(200))
        h = make(provider("slack", recording_server.url()))
        assert await h.notify(threshold_reached()) < NOTIFY_BUDGET
        await recording_server.wait_for(2)
        await idle(h)
        assert h.count("slack", "sent") == 1 and h.failure_count("slack") == 0 and h.failures == []

    async def test_persistent_500_gives_up_and_reports(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        recording_server.default("/hook", Reply(500, b"rollup_error"))
        h = make(provider("slack", recording_server.url()))
        assert await h.notify(threshold_reached()) < NOTIFY_BUDGET
        await idle(h)
        assert len(recording_server.requests) == FAST.max_attempts
        (reason,) = h.failures
        assert "ThresholdReached for podinfo.test failed" in reason
        assert (
            "slack AlertProvider test/on-call: gave up after 3 attempts: HTTP 500: rollup_error"
            in reason
        )
        assert h.failure_count("slack") == 1 and h.count("slack", "failed") == 1

    async def test_other_4xx_is_not_retried(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        recording_server.default("/hook", Reply(400, b"invalid_payload"))
        h = make(provider("slack", recording_server.url()))
        await h.notify(promoted())
        await idle(h)
        assert len(recording_server.requests) == 1
        (reason,) = h.failures
        assert "rejected: HTTP 400: invalid_payload" in reason

    async def test_slack_api_error_in_a_200_is_a_failure(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        recording_server.default("/hook", Reply(200, {"ok": False, "error": "channel_not_found"}))
        h = make(provider("slack", recording_server.url(), token=TOKEN))
        await h.notify(promoted())
        await idle(h)
        assert len(recording_server.requests) == 1
        assert "rejected: Slack API error channel_not_found" in h.failures[0]

    async def test_a_timeout_is_retried_then_reported(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        recording_server.default("/hook", Reply(200, delay=10))
        h = make(
            provider("msteams", recording_server.url(), timeout=0.2),
            retry=replace(FAST, max_attempts=2),
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await h.notify(promoted()) < NOTIFY_BUDGET
        await idle(h)
        assert loop.time() - started < 3
        assert len(recording_server.requests) == 2
        (reason,) = h.failures
        assert "gave up after 2 attempts: no answer within 0.2s" in reason
        assert h.failure_count("msteams") == 1

    async def test_a_dead_address_is_reported(self, dead_url: str, make: Make) -> None:
        h = make(provider("discord", dead_url))
        assert await h.notify(threshold_reached()) < NOTIFY_BUDGET
        await idle(h)
        (reason,) = h.failures
        assert (
            "discord AlertProvider test/on-call: gave up after 3 attempts: connection failed (ConnectError"
            in reason
        )
        assert h.failure_count("discord") == 1

    async def test_give_up_after_bounds_total_time(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        recording_server.default("/hook", Reply(503, headers={"Retry-After": "2"}))
        h = make(
            provider("generic", recording_server.url()),
            retry=RetryPolicy(max_attempts=10, give_up_after=1.0),
        )
        await h.notify(promoted())
        await idle(h)
        assert len(recording_server.requests) == 1  # waiting 2 s would exceed the 1 s budget
        assert "gave up after 1 attempt: HTTP 503" in h.failures[0]


class TestPacing:
    async def test_a_burst_to_slack_is_paced_not_failed(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        h = make(provider("slack", recording_server.url()), pacing={"slack": 0.3})
        for _ in range(3):
            assert await h.notify(promoted()) < NOTIFY_BUDGET
        requests = await recording_server.wait_for(3)
        gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(requests)]
        assert all(gap >= 0.29 for gap in gaps), gaps
        await idle(h)
        assert h.count("slack", "sent") == 3 and h.failures == []

    async def test_slack_default_pace_is_one_per_second(self) -> None:
        from canary.adapters.notifiers.slack import SlackSender

        assert SlackSender.min_interval == 1.0


class TestDuplicates:
    async def test_the_same_key_is_sent_once(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        h = make(provider("generic", recording_server.url()))
        c = canary(alerts=(AlertRef(name="a", provider_name="on-call"),))
        key = idempotency_key(c, promoted(), "2026-03-01T12:30:00Z")
        await h.notify(promoted(), c, key=key)
        await h.notify(promoted(), c, key=key)
        await h.notify(promoted(), c, key=idempotency_key(c, promoted(), "2026-03-01T13:00:00Z"))
        await idle(h)
        assert len(recording_server.requests) == 2
        assert h.count("generic", "duplicate") == 1 and h.count("generic", "sent") == 2

    async def test_without_a_key_nothing_is_dropped(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        h = make(provider("generic", recording_server.url()))
        await h.notify(waiting())
        await h.notify(waiting())
        await idle(h)
        assert len(recording_server.requests) == 2

    async def test_a_failed_key_may_be_sent_again(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        recording_server.script("/hook", Reply(400))
        h = make(provider("generic", recording_server.url()))
        await h.notify(promoted(), key="k")
        await idle(h)
        await h.notify(promoted(), key="k")
        await idle(h)
        assert len(recording_server.requests) == 2
        assert h.count("generic", "sent") == 1 and h.count("generic", "failed") == 1


class TestConfigurationProblems:
    async def test_a_missing_alert_provider_is_reported(self, make: Make) -> None:
        h = make()
        await h.notify(promoted(), canary(alerts=(AlertRef(name="a", provider_name="nowhere"),)))
        await idle(h)
        (reason,) = h.failures
        assert "alerts[0] a: AlertProvider test/nowhere not found" in reason
        assert h.failure_count("none") == 1

    async def test_an_invalid_template_is_reported_with_its_path(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        h = make(provider("slack", recording_server.url(), template="{oops}"))
        await h.notify(promoted())
        await idle(h)
        assert recording_server.requests == []
        assert "spec.messageTemplate: unknown field '{oops}'" in h.failures[0]

    async def test_a_resolver_error_is_reported_without_its_text(self, make: Make) -> None:
        async def broken(ref: ProviderRef) -> ResolvedProvider | None:
            raise RuntimeError(f"secret {TOKEN} unreadable")

        h = make(resolver=broken)
        await h.notify(promoted())
        await idle(h)
        (reason,) = h.failures
        assert TOKEN not in reason
        assert "AlertProvider test/on-call could not be read (RuntimeError)" in reason

    async def test_the_global_notifier_gets_alerts_of_canaries_without_alerts(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        h = make(
            global_config=GlobalNotifierConfig(
                slack_url=recording_server.url("/global"), slack_channel="ops"
            )
        )
        await h.notify(threshold_reached(), canary())
        (got,) = await recording_server.wait_for(1, path="/global")
        assert got.json()["channel"] == "ops"
        await idle(h)
        assert h.count("slack", "sent") == 1

    async def test_a_full_queue_drops_and_reports(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        h = make(provider("generic", recording_server.url()), queue_size=1)
        await h.notify(promoted())
        await h.notify(promoted())  # the router has not run yet: the inbox holds one alert
        await idle(h)
        assert len(recording_server.requests) == 1
        assert any("queue is full" in r for r in h.failures)


class TestSecretsStayHidden:
    async def test_no_log_record_or_reason_contains_the_url_path_or_token(
        self,
        recording_server: RecordingServer,
        dead_url: str,
        make: Make,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        path = f"/services/{SECRET_PATH}"
        echo = f"invalid token {TOKEN} for {recording_server.url(path)}"
        recording_server.default(path, Reply(500, echo))
        recording_server.default("/slow/" + SECRET_PATH, Reply(200, delay=10))
        recording_server.default("/ok/" + SECRET_PATH, Reply(200))
        h = make(provider("slack", recording_server.url(path), token=TOKEN, name="echo"))
        h.providers[ProviderRef("test", "slow")] = provider(
            "msteams",
            recording_server.url("/slow/" + SECRET_PATH),
            token=TOKEN,
            timeout=0.2,
            name="slow",
        )
        h.providers[ProviderRef("test", "dead")] = provider(
            "discord", f"{dead_url}/{SECRET_PATH}", token=TOKEN, name="dead"
        )
        h.providers[ProviderRef("test", "ok")] = provider(
            "generic", recording_server.url("/ok/" + SECRET_PATH), token=TOKEN, name="ok"
        )
        everywhere = canary(
            alerts=tuple(AlertRef(name=n, provider_name=n) for n in ("echo", "slow", "dead", "ok"))
        )
        await h.notify(threshold_reached(), everywhere)
        await idle(h)
        assert len(h.failures) == 3 and h.count("generic", "sent") == 1
        texts = [r.getMessage() for r in caplog.records] + h.failures
        texts += [caplog.text]
        assert any("HTTP Request" in r.getMessage() for r in caplog.records), (
            "httpx request logs were captured"
        )
        for text in texts:
            assert SECRET_PATH not in text and TOKEN not in text
            assert "T0SECRET" not in text
        assert any(
            "***" in reason for reason in h.failures
        )  # the echoed body was redacted, not dropped


class TestShutdown:
    async def test_aclose_delivers_what_is_queued(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        recording_server.default("/hook", Reply(200, delay=0.05))
        h = make(provider("generic", recording_server.url()))
        for _ in range(3):
            await h.notify(promoted())
        assert h.dispatcher is not None
        await h.dispatcher.aclose(5)
        assert len(recording_server.requests) == 3 and h.count("generic", "sent") == 3

    async def test_aclose_stops_at_its_deadline(
        self, recording_server: RecordingServer, make: Make
    ) -> None:
        recording_server.default("/hook", Reply(200, hold=asyncio.Event()))
        h = make(provider("generic", recording_server.url()))
        await h.notify(promoted())
        await h.notify(promoted())
        await recording_server.wait_for(1)
        assert h.dispatcher is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        await h.dispatcher.aclose(0.2)
        assert loop.time() - started < 2
        assert h.count("generic", "failed") == 2  # the one in flight and the one queued
        await h.notify(promoted())  # after close: dropped, not raised
        assert len(recording_server.requests) == 1
