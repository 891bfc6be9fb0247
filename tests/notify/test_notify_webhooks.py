"""Flagger's webhook semantics against real HTTP servers: payload, status rule, retries, timeouts, TLS, events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from canary.adapters.webhooks import HttpWebhookCaller, is_success
from canary.core.actions import EmitEvent, EventType
from canary.model.canary import HookType, WebhookSpec
from tests.http_fixtures import RecordingServer, Reply
from tests.notify.samples import canary

CLOCK = 1_767_225_600.123  # a fixed unix time in seconds


@pytest.fixture
async def caller() -> AsyncIterator[HttpWebhookCaller]:
    c = HttpWebhookCaller(backoff_min=0.05, backoff_max=0.2, clock=lambda: CLOCK)
    yield c
    await c.aclose()


def hook(url: str, **options: object) -> WebhookSpec:
    return WebhookSpec(name=str(options.pop("name", "gate")), url=url, **options)  # type: ignore[arg-type]


class TestPayload:
    async def test_flaggers_payload_as_json(
        self, recording_server: RecordingServer, caller: HttpWebhookCaller
    ) -> None:
        spec = hook(
            recording_server.url("/gate/check"),
            type=HookType.CONFIRM_PROMOTION,
            metadata={"team": "web"},
        )
        answer = await caller.call(canary(), spec, "Progressing", "85d557f47b")
        assert answer.ok
        (got,) = recording_server.requests
        assert (got.method, got.path) == ("POST", "/gate/check")
        assert got.header("content-type") == "application/json"
        assert got.json() == {
            "name": "podinfo",
            "namespace": "test",
            "phase": "Progressing",
            "checksum": "85d557f47b",
            "metadata": {"team": "web"},
        }


class TestStatusRule:
    @pytest.mark.parametrize(
        ("status", "ok"),
        [(200, True), (201, True), (202, True), (203, False), (204, False), (299, False)],
    )
    async def test_success_means_at_most_202(
        self, recording_server: RecordingServer, caller: HttpWebhookCaller, status: int, ok: bool
    ) -> None:
        recording_server.script("/hook", Reply(status, b""))
        answer = await caller.call(canary(), hook(recording_server.url()), "Progressing", "c")
        assert answer.ok is ok
        assert is_success(status) is ok

    async def test_the_body_explains_a_refusal(
        self, recording_server: RecordingServer, caller: HttpWebhookCaller
    ) -> None:
        recording_server.script("/hook", Reply(403, "approval pending:\n\tticket\x07 CHG-42"))
        answer = await caller.call(canary(), hook(recording_server.url()), "Progressing", "c")
        assert not answer.ok
        assert answer.message == "403 Forbidden: approval pending: ticket CHG-42"

    async def test_a_long_body_is_truncated(
        self, recording_server: RecordingServer, caller: HttpWebhookCaller
    ) -> None:
        recording_server.script("/hook", Reply(500, "x" * 10_000))
        answer = await caller.call(canary(), hook(recording_server.url()), "Progressing", "c")
        assert not answer.ok and len(answer.message) < 600 and answer.message.endswith("…")


class TestRetries:
    async def test_500_then_200_passes_with_retries(
        self, recording_server: RecordingServer, caller: HttpWebhookCaller
    ) -> None:
        recording_server.script("/hook", Reply(500, b"busy"), Reply(200))
        answer = await caller.call(
            canary(), hook(recording_server.url(), retries=2), "Progressing", "c"
        )
        assert answer.ok
        assert len(recording_server.requests) == 2

    async def test_retries_are_bounded(
        self, recording_server: RecordingServer, caller: HttpWebhookCaller
    ) -> None:
        recording_server.default("/hook", Reply(500, b"busy"))
        answer = await caller.call(
            canary(), hook(recording_server.url(), retries=2), "Progressing", "c"
        )
        assert not answer.ok
        assert answer.message == "500 Internal Server Error: busy (after 3 attempts)"
        assert len(recording_server.requests) == 3

    @pytest.mark.parametrize(
        ("status", "retries", "expected_requests"),
        [(500, 0, 1), (400, 3, 1), (501, 3, 1), (429, 1, 2), (503, 1, 2)],
    )
    async def test_which_answers_are_retried(
        self,
        recording_server: RecordingServer,
        caller: HttpWebhookCaller,
        status: int,
        retries: int,
        expected_requests: int,
    ) -> None:
        recording_server.default("/hook", Reply(status))
        answer = await caller.call(
            canary(), hook(recording_server.url(), retries=retries), "Progressing", "c"
        )
        assert not answer.ok
        assert len(recording_server.requests) == expected_requests

    async def test_429_retry_after_is_honoured(self, recording_server: RecordingServer) -> None:
        recording_server.script("/hook", Reply(429, headers={"Retry-After": "1"}), Reply(200))
        caller = HttpWebhookCaller(backoff_min=0.01, backoff_max=5)
        try:
            answer = await caller.call(
                canary(), hook(recording_server.url(), retries=1), "Progressing", "c"
            )
        finally:
            await caller.aclose()
        assert answer.ok
        first, second = recording_server.requests
        assert second.received_at - first.received_at >= 0.95

    async def test_a_dead_address_fails_clearly(
        self, dead_url: str, caller: HttpWebhookCaller
    ) -> None:
        answer = await caller.call(canary(), hook(dead_url, retries=1), "Progressing", "c")
        assert not answer.ok
        assert answer.message.startswith("webhook gate could not connect")
        assert "(after 2 attempts)" in answer.message


class TestTimeouts:
    async def test_a_slow_hook_times_out_with_a_clear_message(
        self, recording_server: RecordingServer, caller: HttpWebhookCaller
    ) -> None:
        recording_server.default("/hook", Reply(200, delay=10))
        loop = asyncio.get_running_loop()
        started = loop.time()
        answer = await caller.call(
            canary(), hook(recording_server.url(), timeout_seconds=0.3), "Progressing", "c"
        )
        assert loop.time() - started < 1.5
        assert answer == answer.__class__(False, "webhook gate timed out after 0.3s")

    async def test_the_timeout_bounds_retries_too(self, recording_server: RecordingServer) -> None:
        recording_server.default("/hook", Reply(500))
        caller = HttpWebhookCaller(backoff_min=0.2, backoff_max=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            answer = await caller.call(
                canary(),
                hook(recording_server.url(), retries=50, timeout_seconds=0.5),
                "Progressing",
                "c",
            )
        finally:
            await caller.aclose()
        assert loop.time() - started < 1.5
        assert not answer.ok and "timed out after 0.5s" in answer.message
        assert 1 <= len(recording_server.requests) < 10  # 50 retries were allowed


class TestTLS:
    async def test_self_signed_certificate_fails_unless_disable_tls(
        self, https_recording_server: RecordingServer, caller: HttpWebhookCaller
    ) -> None:
        url = https_recording_server.url("/secure")
        refused = await caller.call(canary(), hook(url), "Progressing", "c")
        assert not refused.ok and "could not connect" in refused.message
        accepted = await caller.call(canary(), hook(url, disable_tls=True), "Progressing", "c")
        assert accepted.ok
        assert len(https_recording_server.requests) == 1


class TestEvents:
    async def test_event_hooks_get_the_event_keys_which_metadata_cannot_override(
        self, recording_server: RecordingServer, caller: HttpWebhookCaller
    ) -> None:
        spec = hook(
            recording_server.url("/events"),
            name="events",
            type=HookType.EVENT,
            metadata={
                "eventMessage": "spoofed",
                "eventType": "Spoof",
                "timestamp": "0",
                "env": "prod",
            },
        )
        c = canary(webhooks=(spec,))
        event = EmitEvent(
            EventType.WARNING, "Halt podinfo.test advancement external check load-test failed 500"
        )
        await caller.post_event(c, event, "Progressing", "abc")
        (got,) = recording_server.requests
        assert got.json() == {
            "name": "podinfo",
            "namespace": "test",
            "phase": "Progressing",
            "checksum": "abc",
            "metadata": {
                "eventMessage": "Halt podinfo.test advancement external check load-test failed 500",
                "eventType": "Warning",
                "timestamp": "1767225600123",
                "env": "prod",
            },
        }

    async def test_the_global_event_webhook_gets_events_of_canaries_without_event_hooks(
        self, recording_server: RecordingServer
    ) -> None:
        caller = HttpWebhookCaller(
            event_webhook_url=recording_server.url("/global"), clock=lambda: CLOCK
        )
        own = hook(recording_server.url("/own"), name="own", type=HookType.EVENT)
        gate = hook(recording_server.url("/gate"), type=HookType.CONFIRM_ROLLOUT)
        try:
            await caller.post_event(
                canary(webhooks=(gate,)),
                EmitEvent(EventType.NORMAL, "Initialization done! podinfo.test"),
                "Initialized",
                "x",
            )
            await caller.post_event(
                canary(webhooks=(own,)),
                EmitEvent(EventType.NORMAL, "Promotion completed!"),
                "Succeeded",
                "y",
            )
        finally:
            await caller.aclose()
        (global_event,) = recording_server.requests_to("/global")
        assert global_event.json()["metadata"] == {
            "eventMessage": "Initialization done! podinfo.test",
            "eventType": "Normal",
            "timestamp": "1767225600123",
        }
        (own_event,) = recording_server.requests_to("/own")
        assert own_event.json()["phase"] == "Succeeded"
        assert recording_server.requests_to("/gate") == []

    async def test_no_event_hook_and_no_global_webhook_posts_nothing(
        self, recording_server: RecordingServer, caller: HttpWebhookCaller
    ) -> None:
        await caller.post_event(canary(), EmitEvent(EventType.NORMAL, "x"), "Progressing", "c")
        assert recording_server.requests == []

    async def test_a_failing_event_hook_is_logged_not_raised(
        self, dead_url: str, caller: HttpWebhookCaller, caplog: pytest.LogCaptureFixture
    ) -> None:
        spec = hook(dead_url + "?token=EVENTSECRET", name="events", type=HookType.EVENT)
        with caplog.at_level(logging.DEBUG):
            await caller.post_event(
                canary(webhooks=(spec,)), EmitEvent(EventType.NORMAL, "x"), "Progressing", "c"
            )
        assert "event webhook events for podinfo.test failed" in caplog.text
        assert "EVENTSECRET" not in caplog.text


class TestSecrets:
    async def test_hook_urls_do_not_appear_in_answers_or_logs(
        self,
        recording_server: RecordingServer,
        caller: HttpWebhookCaller,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        url = recording_server.url("/approve/HOOKSECRET") + "?sig=SIGSECRET"
        recording_server.default("/approve/HOOKSECRET", Reply(500, f"bad request to {url}"))
        with caplog.at_level(logging.DEBUG):
            answer = await caller.call(canary(), hook(url, retries=1), "Progressing", "c")
        assert not answer.ok
        for text in (answer.message, caplog.text):
            assert "HOOKSECRET" not in text and "SIGSECRET" not in text

    async def test_an_empty_url_is_an_answer_not_a_crash(self, caller: HttpWebhookCaller) -> None:
        answer = await caller.call(canary(), hook(""), "Progressing", "c")
        assert answer == answer.__class__(False, "webhook gate has no url")

    async def test_an_invalid_url_is_an_answer_not_a_crash(self, caller: HttpWebhookCaller) -> None:
        answer = await caller.call(canary(), hook("ftp://example.test/x"), "Progressing", "c")
        assert not answer.ok and "gate" in answer.message
