"""Microsoft Teams: an Adaptive Card for a Workflows ("Power Automate") webhook.

Teams' Office 365 connector webhooks (the ``MessageCard`` that Flagger sends)
were retired in 2026; the replacement is a Workflows webhook running "Post to a
channel when a webhook request is received", which expects
``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "content": <AdaptiveCard>}]}``.
The card has the title in the severity's colour (Good / Warning / Attention),
the body text, a FactSet, one line per metric, and a subtle context line.
Workflows answers 202 Accepted; any 2xx counts as delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from canary.adapters.notifiers.base import WebhookSender
from canary.adapters.notifiers.rendering import Message
from canary.model.canary import Severity

__all__ = ["ADAPTIVE_CARD_CONTENT_TYPE", "MSTeamsSender", "adaptive_card"]

ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_VERSION = "1.4"

_COLOURS = {Severity.INFO: "Good", Severity.WARN: "Warning", Severity.ERROR: "Attention"}


def _text_block(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **extra}


def adaptive_card(message: Message) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        _text_block(
            message.title, size="Medium", weight="Bolder", color=_COLOURS[message.severity]
        ),
    ]
    body.extend(_text_block(line) for line in message.text.splitlines() if line.strip())
    if message.facts:
        body.append(
            {
                "type": "FactSet",
                "facts": [{"title": name, "value": value} for name, value in message.facts],
            }
        )
    if message.checks:
        body.append(_text_block("Analysis", weight="Bolder", spacing="Medium"))
        for check in message.checks:
            extra: dict[str, Any] = {"spacing": "None"}
            if not check.passing:
                extra["color"] = "Attention"
            body.append(_text_block(check.text, **extra))
    if message.context:
        body.append(_text_block(message.context, isSubtle=True, size="Small"))
    card: dict[str, Any] = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    if message.commit_url:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": "Revert commit", "url": message.commit_url}
        ]
    return card


@dataclass(frozen=True, slots=True)
class MSTeamsSender(WebhookSender):
    provider_type: ClassVar[str] = "msteams"
    min_interval: ClassVar[float] = 0.25

    def payload(self, message: Message) -> dict[str, Any]:
        return {
            "type": "message",
            "attachments": [
                {
                    "contentType": ADAPTIVE_CARD_CONTENT_TYPE,
                    "contentUrl": None,
                    "content": adaptive_card(message),
                }
            ],
        }
