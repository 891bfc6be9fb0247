"""Discord: ``content`` plus one embed with an integer colour, posted to the plain webhook URL.

Flagger posts a Slack payload to ``<url>/slack`` (Discord's Slack-compatible
endpoint). We post Discord's own format to the URL as given, which renders
better and keeps the integer ``color`` Discord expects. Discord answers 204 No
Content on success and allows about five posts per two seconds per webhook.
``allowed_mentions`` is empty so text from a manifest can never ping
``@everyone``. Embed limits (title 256, description 4096, 25 fields, field name
256 and value 1024 characters) are respected by truncation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from canary.adapters.notifiers.base import WebhookSender
from canary.adapters.notifiers.rendering import Message, truncate

__all__ = ["DiscordSender", "discord_colour"]

CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
MAX_FIELDS = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048


def discord_colour(hex_colour: str) -> int:
    """``#rrggbb`` as the integer Discord wants."""
    return int(hex_colour.lstrip("#"), 16)


@dataclass(frozen=True, slots=True)
class DiscordSender(WebhookSender):
    provider_type: ClassVar[str] = "discord"
    min_interval: ClassVar[float] = 0.4

    def payload(self, message: Message) -> dict[str, Any]:
        fields: list[dict[str, Any]] = [
            {
                "name": truncate(name, FIELD_NAME_LIMIT),
                "value": truncate(value, FIELD_VALUE_LIMIT),
                "inline": len(value) <= 40,
            }
            for name, value in message.facts
        ]
        if message.checks:
            fields.append(
                {
                    "name": "Analysis",
                    "value": truncate("\n".join(c.text for c in message.checks), FIELD_VALUE_LIMIT),
                    "inline": False,
                }
            )
        embed: dict[str, Any] = {
            "title": truncate(message.title, TITLE_LIMIT),
            "color": discord_colour(message.colour),
            "fields": fields[:MAX_FIELDS],
            "timestamp": message.timestamp.isoformat(),
        }
        if message.text:
            embed["description"] = truncate(message.text, DESCRIPTION_LIMIT)
        if message.commit_url:
            embed["url"] = message.commit_url
        if message.context:
            embed["footer"] = {"text": truncate(message.context, FOOTER_LIMIT)}
        body: dict[str, Any] = {
            "content": truncate(message.title, CONTENT_LIMIT),
            "embeds": [embed],
            "allowed_mentions": {"parse": []},
        }
        if self.resolved.provider.username:
            body["username"] = self.resolved.provider.username
        return body
