"""Slack: Block Kit inside a severity-coloured attachment, with a plain-text fallback.

Works with incoming webhooks (``https://hooks.slack.com/services/...``, answer
``200 ok``) and with a bot token posting to ``chat.postMessage`` (answer ``200``
with ``{"ok": false, "error": ...}`` on failure, which is recognised here).
The layout: a header with the title, a section with the body text, sections of
facts (at most ten fields each, Slack's limit), a section listing the analysis,
and a context line. The top-level ``text`` is the notification fallback that
Slack requires next to ``blocks``. Slack allows about one message per second
per webhook, so the delivery module paces posts to one destination.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from canary.adapters.notifiers.base import WebhookSender
from canary.adapters.notifiers.rendering import Message, truncate

__all__ = ["SlackSender", "mrkdwn_escape", "slack_blocks"]

HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
FIELDS_PER_SECTION = 10
FALLBACK_LIMIT = 4000


def mrkdwn_escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_blocks(message: Message) -> list[dict[str, Any]]:
    """The Block Kit blocks of a message (shared with Rocket.Chat-style layouts)."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate(message.title, HEADER_LIMIT),
                "emoji": True,
            },
        }
    ]
    if message.text:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": truncate(mrkdwn_escape(message.text), SECTION_LIMIT),
                },
            }
        )
    facts = [
        {
            "type": "mrkdwn",
            "text": truncate(f"*{mrkdwn_escape(name)}*\n{mrkdwn_escape(value)}", FIELD_LIMIT),
        }
        for name, value in message.facts
    ]
    for start in range(0, len(facts), FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": facts[start : start + FIELDS_PER_SECTION]})
    if message.checks:
        lines = "\n".join(f"• {mrkdwn_escape(c.text)}" for c in message.checks)
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": truncate(f"*Analysis*\n{lines}", SECTION_LIMIT)},
            }
        )
    if message.commit_url:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"<{message.commit_url}|Revert commit>"},
            }
        )
    if message.context:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": truncate(mrkdwn_escape(message.context), FIELD_LIMIT),
                    }
                ],
            }
        )
    return blocks


@dataclass(frozen=True, slots=True)
class SlackSender(WebhookSender):
    provider_type: ClassVar[str] = "slack"
    min_interval: ClassVar[float] = 1.0

    def payload(self, message: Message) -> dict[str, Any]:
        fallback = truncate(message.plain, FALLBACK_LIMIT)
        body: dict[str, Any] = {
            "text": fallback,
            "attachments": [
                {"color": message.colour, "fallback": fallback, "blocks": slack_blocks(message)},
            ],
        }
        return self.with_channel_and_user(body)

    def failure(self, status: int, body: bytes) -> str | None:
        if not 200 <= status < 300:
            return f"HTTP {status}"
        if body.lstrip().startswith(b"{"):
            try:
                answer = json.loads(body)
            except ValueError:
                return None
            if isinstance(answer, dict) and answer.get("ok") is False:
                return f"Slack API error {str(answer.get('error', 'unknown'))[:80]}"
        return None
