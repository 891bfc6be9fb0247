"""Each provider's payload, as received by a real HTTP server, against the provider's documented format."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import jsonschema
import pytest

from canary.adapters.notifiers import (
    GENERIC_SCHEMA,
    NotificationDispatcher,
    ProviderRef,
    ResolvedProvider,
)
from canary.adapters.notifiers.msteams import ADAPTIVE_CARD_CONTENT_TYPE
from canary.core.actions import Alert
from canary.model.canary import AlertRef, Severity
from tests.http_fixtures import RecordedRequest, RecordingServer, Reply
from tests.notify.samples import (
    NOW,
    TOKEN,
    canary,
    promoted,
    provider,
    reverted,
    threshold_reached,
    waiting,
)

COLOURS = {Severity.INFO: "#2eb886", Severity.WARN: "#daa038", Severity.ERROR: "#a30200"}
SEVERITY_SAMPLES: Mapping[Severity, Callable[[], Alert]] = {
    Severity.INFO: promoted,
    Severity.WARN: waiting,
    Severity.ERROR: threshold_reached,
}

Deliver = Callable[..., Any]


@pytest.fixture
async def deliver(recording_server: RecordingServer) -> AsyncIterator[Deliver]:
    """``await deliver(resolved, alert)`` posts through a dispatcher and returns what the server got."""
    dispatchers: list[NotificationDispatcher] = []

    async def run(resolved: ResolvedProvider, alert: Alert, path: str = "/hook") -> RecordedRequest:
        async def resolve(ref: ProviderRef) -> ResolvedProvider | None:
            return resolved

        dispatcher = NotificationDispatcher(resolve, cluster="prod-eu-1", clock=lambda: NOW)
        dispatchers.append(dispatcher)
        c = canary(alerts=(AlertRef(name="a", provider_name=resolved.provider.name),))
        before = len(recording_server.requests_to(path))
        await dispatcher.notify(c, alert)
        requests = await recording_server.wait_for(before + 1, path=path)
        assert await dispatcher.wait_idle(5)
        return requests[-1]

    yield run
    for dispatcher in dispatchers:
        await dispatcher.aclose(1)


def _texts(blocks: list[dict[str, Any]]) -> str:
    out = []
    for block in blocks:
        if "text" in block:
            out.append(block["text"]["text"])
        out.extend(f["text"] for f in block.get("fields", []))
        out.extend(e["text"] for e in block.get("elements", []))
    return "\n".join(out)


class TestSlack:
    async def test_block_kit_in_a_coloured_attachment_with_a_fallback(
        self, recording_server: RecordingServer, deliver: Deliver
    ) -> None:
        got = await deliver(
            provider("slack", recording_server.url("/services/T/B/X"), channel="deploys"),
            promoted(),
            "/services/T/B/X",
        )
        assert got.method == "POST"
        assert got.header("content-type") == "application/json"
        body = got.json()
        assert body["text"].startswith("Promoted: podinfo.test")
        assert body["channel"] == "deploys" and body["username"] == "canary-engine"
        (attachment,) = body["attachments"]
        blocks = attachment["blocks"]
        assert blocks[0]["type"] == "header" and blocks[0]["text"]["type"] == "plain_text"
        assert len(blocks[0]["text"]["text"]) <= 150
        assert blocks[-1]["type"] == "context"
        for block in blocks:
            assert block["type"] in {"header", "section", "context"}
            if block["type"] == "section":
                assert ("text" in block) or ("fields" in block)
                assert len(block.get("fields", [])) <= 10
                if "text" in block:
                    assert (
                        block["text"]["type"] == "mrkdwn" and 0 < len(block["text"]["text"]) <= 3000
                    )
        text = _texts(blocks)
        assert "main@sha1:4f9c2e1ab3d2" in text and "main@sha1:77aa0b3c9e10" in text
        assert "12m34s" in text and "request-success-rate passed" in text and "prod-eu-1" in text

    @pytest.mark.parametrize("severity", list(Severity))
    async def test_attachment_colour_follows_severity(
        self, recording_server: RecordingServer, deliver: Deliver, severity: Severity
    ) -> None:
        got = await deliver(provider("slack", recording_server.url()), SEVERITY_SAMPLES[severity]())
        assert got.json()["attachments"][0]["color"] == COLOURS[severity]

    async def test_token_is_sent_as_bearer(
        self, recording_server: RecordingServer, deliver: Deliver
    ) -> None:
        got = await deliver(provider("slack", recording_server.url(), token=TOKEN), promoted())
        assert got.header("authorization") == f"Bearer {TOKEN}"

    async def test_no_token_no_authorization_header(
        self, recording_server: RecordingServer, deliver: Deliver
    ) -> None:
        got = await deliver(provider("slack", recording_server.url()), promoted())
        assert got.header("authorization") is None

    async def test_user_text_is_escaped_for_mrkdwn(
        self, recording_server: RecordingServer, deliver: Deliver
    ) -> None:
        from dataclasses import replace

        got = await deliver(
            provider("slack", recording_server.url()),
            replace(promoted(), message="<!channel> & co"),
        )
        section = got.json()["attachments"][0]["blocks"][1]["text"]["text"]
        assert "&lt;!channel&gt; &amp; co" in section and "<!channel>" not in section


class TestMSTeams:
    async def test_workflows_adaptive_card(
        self, recording_server: RecordingServer, deliver: Deliver
    ) -> None:
        recording_server.script("/workflows/x", Reply(202, b""))
        got = await deliver(
            provider("msteams", recording_server.url("/workflows/x")),
            threshold_reached(),
            "/workflows/x",
        )
        body = got.json()
        assert body["type"] == "message"
        (attachment,) = body["attachments"]
        assert attachment["contentType"] == ADAPTIVE_CARD_CONTENT_TYPE
        card = attachment["content"]
        assert card["type"] == "AdaptiveCard"
        assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
        assert card["version"] == "1.4"
        title = card["body"][0]
        assert title == {
            "type": "TextBlock",
            "text": "Rolled back: checks failed: podinfo.test",
            "wrap": True,
            "size": "Medium",
            "weight": "Bolder",
            "color": "Attention",
        }
        for element in card["body"]:
            assert element["type"] in {"TextBlock", "FactSet"}
        (facts,) = [e for e in card["body"] if e["type"] == "FactSet"]
        assert {"title": "Failed checks", "value": "5 of 5"} in facts["facts"]
        texts = [e["text"] for e in card["body"] if e["type"] == "TextBlock"]
        assert any("value 91.2, threshold >= 99, primary 99.8" in t for t in texts)

    @pytest.mark.parametrize(
        ("severity", "colour"),
        [(Severity.INFO, "Good"), (Severity.WARN, "Warning"), (Severity.ERROR, "Attention")],
    )
    async def test_title_colour_follows_severity(
        self, recording_server: RecordingServer, deliver: Deliver, severity: Severity, colour: str
    ) -> None:
        got = await deliver(
            provider("msteams", recording_server.url()), SEVERITY_SAMPLES[severity]()
        )
        assert got.json()["attachments"][0]["content"]["body"][0]["color"] == colour


class TestDiscord:
    async def test_content_and_embed_with_integer_colour_to_the_plain_url(
        self, recording_server: RecordingServer, deliver: Deliver
    ) -> None:
        recording_server.script("/api/webhooks/1/tok", Reply(204, b""))
        got = await deliver(
            provider("discord", recording_server.url("/api/webhooks/1/tok")),
            threshold_reached(),
            "/api/webhooks/1/tok",
        )
        assert got.path == "/api/webhooks/1/tok"  # no Slack-compatibility suffix
        body = got.json()
        assert 0 < len(body["content"]) <= 2000
        assert body["allowed_mentions"] == {"parse": []}
        (embed,) = body["embeds"]
        assert isinstance(embed["color"], int) and embed["color"] == 0xA30200
        assert len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
        assert len(embed["fields"]) <= 25
        for f in embed["fields"]:
            assert set(f) == {"name", "value", "inline"} and len(f["value"]) <= 1024
        assert embed["timestamp"] == "2026-03-01T12:30:00+00:00"
        assert "Failed checks threshold reached 5" in embed["description"]

    async def test_204_counts_as_delivered(self, recording_server: RecordingServer) -> None:
        recording_server.script("/hook", Reply(204, b""))
        failures: list[str] = []
        outcomes: list[tuple[str, str]] = []
        resolved = provider("discord", recording_server.url())

        async def resolve(ref: ProviderRef) -> ResolvedProvider:
            return resolved

        dispatcher = NotificationDispatcher(
            resolve,
            on_failure=lambda c, a, r: failures.append(r),
            metrics=lambda t, o: outcomes.append((t, o)),
        )
        await dispatcher.notify(
            canary(alerts=(AlertRef(name="a", provider_name="on-call"),)), promoted()
        )
        assert await dispatcher.wait_idle(5)
        await dispatcher.aclose(1)
        assert failures == [] and outcomes == [("discord", "sent")]


class TestGoogleChat:
    async def test_cards_v2_message(
        self, recording_server: RecordingServer, deliver: Deliver
    ) -> None:
        got = await deliver(
            provider("gchat", recording_server.url("/v1/spaces/AAA/messages")),
            promoted(),
            "/v1/spaces/AAA/messages",
        )
        body = got.json()
        (card,) = body["cardsV2"]
        assert card["cardId"] == "canary-alert"
        assert card["card"]["header"]["title"] == "Promoted: podinfo.test"
        assert "prod-eu-1" in card["card"]["header"]["subtitle"]
        widget_kinds = {"textParagraph", "decoratedText", "buttonList"}
        for section in card["card"]["sections"]:
            assert section["widgets"]
            for widget in section["widgets"]:
                assert len(widget) == 1 and next(iter(widget)) in widget_kinds
        details = next(s for s in card["card"]["sections"] if s.get("header") == "Details")
        assert {"topLabel": "Duration", "text": "12m34s", "wrapText": True} in [
            w["decoratedText"] for w in details["widgets"]
        ]

    async def test_revert_commit_link_is_a_button(self, recording_server: RecordingServer) -> None:
        resolved = provider("gchat", recording_server.url())

        async def resolve(ref: ProviderRef) -> ResolvedProvider:
            return resolved

        dispatcher = NotificationDispatcher(
            resolve, commit_link=lambda ns, sha: f"https://git.example/commit/{sha}"
        )
        await dispatcher.notify(
            canary(alerts=(AlertRef(name="a", provider_name="on-call"),)), reverted()
        )
        (got,) = await recording_server.wait_for(1)
        await dispatcher.aclose(2)
        sections = got.json()["cardsV2"][0]["card"]["sections"]
        buttons = [
            w["buttonList"]["buttons"][0]
            for s in sections
            for w in s["widgets"]
            if "buttonList" in w
        ]
        assert buttons == [
            {
                "text": "Revert commit",
                "onClick": {
                    "openLink": {
                        "url": "https://git.example/commit/9d1e0c5b7a3f2e4d6c8b0a1f3e5d7c9b1a2f4e6d"
                    }
                },
            }
        ]


class TestRocketChat:
    async def test_slack_like_attachments(
        self, recording_server: RecordingServer, deliver: Deliver
    ) -> None:
        got = await deliver(provider("rocket", recording_server.url()), threshold_reached())
        body = got.json()
        assert body["channel"] == "general" and body["username"] == "canary-engine"
        main, analysis = body["attachments"]
        assert main["color"] == "#a30200"
        assert {"title": "Failed checks", "value": "5 of 5", "short": True} in main["fields"]
        assert analysis["title"] == "Analysis" and "request-success-rate FAILED" in analysis["text"]


class TestGeneric:
    async def test_payload_matches_the_documented_schema(
        self, recording_server: RecordingServer, deliver: Deliver
    ) -> None:
        got = await deliver(
            provider("generic", recording_server.url(), token=TOKEN), threshold_reached()
        )
        body = got.json()
        jsonschema.validate(body, GENERIC_SCHEMA)
        assert got.header("authorization") == f"Bearer {TOKEN}"
        assert body["kind"] == "ThresholdReached" and body["severity"] == "error"
        assert body["message"] == "Failed checks threshold reached 5"
        assert (body["canary"], body["namespace"], body["cluster"]) == (
            "podinfo",
            "test",
            "prod-eu-1",
        )
        assert (body["failedChecks"], body["threshold"], body["weight"]) == (5, 5, 20)
        assert body["analysis"][0] == {
            "name": "request-success-rate",
            "outcome": "Fail",
            "summary": "success rate 91.2% is below the minimum 99%",
            "value": 91.2,
            "threshold": ">= 99",
            "primaryValue": 99.8,
        }
        assert body["timestamp"] == "2026-03-01T12:30:00Z"

    async def test_template_sets_text_and_keeps_message(
        self, recording_server: RecordingServer, deliver: Deliver
    ) -> None:
        got = await deliver(
            provider("generic", recording_server.url(), template="{kind} {canary}@{cluster}"),
            reverted(),
        )
        body = got.json()
        jsonschema.validate(body, GENERIC_SCHEMA)
        assert body["text"] == "GitReverted podinfo@prod-eu-1"
        assert body["message"] == "Reverted main@sha1:4f9c2e1ab3d2 in Git."
        assert body["revertCommit"] == "9d1e0c5b7a3f2e4d6c8b0a1f3e5d7c9b1a2f4e6d"


class TestProxy:
    async def test_posts_go_through_the_configured_proxy(
        self, recording_server: RecordingServer, deliver: Deliver
    ) -> None:
        # The recording server plays an HTTP proxy: it receives the absolute-form request.
        got = await deliver(
            provider(
                "generic", "http://notifications.invalid/proxied", proxy=recording_server.base_url
            ),
            promoted(),
            "/proxied",
        )
        assert got.host == "notifications.invalid"
        assert got.json()["kind"] == "Promoted"
