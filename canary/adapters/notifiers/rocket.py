"""Rocket.Chat: its Slack-compatible incoming-webhook payload.

Rocket.Chat's incoming webhooks take ``text`` (Markdown), ``channel``,
``username`` and Slack-style ``attachments`` with ``color``, ``title``,
``text`` and ``fields`` ({title, value, short}); Block Kit is not understood, so
the message is laid out with attachments only: one coloured attachment with the
facts, and one with the analysis lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from canary.adapters.notifiers.base import WebhookSender
from canary.adapters.notifiers.rendering import Message, truncate

__all__ = ["RocketSender"]

TEXT_LIMIT = 5000


@dataclass(frozen=True, slots=True)
class RocketSender(WebhookSender):
    provider_type: ClassVar[str] = "rocket"
    min_interval: ClassVar[float] = 0.2

    def payload(self, message: Message) -> dict[str, Any]:
        main: dict[str, Any] = {
            "color": message.colour,
            "title": message.title,
            "text": truncate(message.text, TEXT_LIMIT),
            "fields": [
                {"title": name, "value": value, "short": len(value) <= 40}
                for name, value in message.facts
            ],
        }
        if message.commit_url:
            main["title_link"] = message.commit_url
        attachments = [main]
        if message.checks:
            attachments.append(
                {
                    "color": message.colour,
                    "title": "Analysis",
                    "text": truncate(message.analysis_text, TEXT_LIMIT),
                }
            )
        body: dict[str, Any] = {
            "text": truncate(f"*{message.title}*", TEXT_LIMIT),
            "attachments": attachments,
        }
        return self.with_channel_and_user(body)
