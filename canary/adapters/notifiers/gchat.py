"""Google Chat: a ``cardsV2`` card message for a space's incoming webhook.

Google Chat represents cards as ``cardsV2``: a list of ``{cardId, card}``
where a card has a ``header`` (title, subtitle) and ``sections`` of
``widgets``. We use ``textParagraph`` for the body (its HTML subset lets the
first line carry the severity colour, which Flagger's gchat notifier lacks),
``decoratedText`` with a ``topLabel`` for each fact, and one paragraph for the
analysis. Text from the alert is HTML-escaped before it goes in.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, ClassVar

from canary.adapters.notifiers.base import WebhookSender
from canary.adapters.notifiers.rendering import Message, truncate

__all__ = ["GoogleChatSender", "google_chat_card"]

CARD_ID = "canary-alert"
TEXT_LIMIT = 4000


def _html(text: str) -> str:
    return html.escape(text, quote=False).replace("\n", "<br>")


def google_chat_card(message: Message) -> dict[str, Any]:
    subtitle = message.context or message.subject
    body = f'<font color="{message.colour}"><b>{_html(message.alert.severity.value.upper())}</b></font>'
    if message.text:
        body += "<br>" + _html(truncate(message.text, TEXT_LIMIT))
    sections: list[dict[str, Any]] = [{"widgets": [{"textParagraph": {"text": body}}]}]
    if message.facts:
        sections.append(
            {
                "header": "Details",
                "widgets": [
                    {"decoratedText": {"topLabel": name, "text": _html(value), "wrapText": True}}
                    for name, value in message.facts
                ],
            }
        )
    if message.checks:
        lines = "<br>".join(
            _html(c.text) if c.passing else f'<font color="#a30200">{_html(c.text)}</font>'
            for c in message.checks
        )
        sections.append(
            {
                "header": "Analysis",
                "widgets": [{"textParagraph": {"text": truncate(lines, TEXT_LIMIT)}}],
            }
        )
    if message.commit_url:
        sections.append(
            {
                "widgets": [
                    {
                        "buttonList": {
                            "buttons": [
                                {
                                    "text": "Revert commit",
                                    "onClick": {"openLink": {"url": message.commit_url}},
                                }
                            ]
                        }
                    }
                ]
            }
        )
    return {
        "cardId": CARD_ID,
        "card": {"header": {"title": message.title, "subtitle": subtitle}, "sections": sections},
    }


@dataclass(frozen=True, slots=True)
class GoogleChatSender(WebhookSender):
    provider_type: ClassVar[str] = "gchat"
    min_interval: ClassVar[float] = 0.2

    def payload(self, message: Message) -> dict[str, Any]:
        return {"cardsV2": [google_chat_card(message)]}
