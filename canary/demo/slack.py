"""A local Slack-compatible webhook receiver for ``canary demo``.

The demo must show the messages canary-engine sends without a Slack workspace, so it
points an AlertProvider of type ``slack`` at this server. It accepts what a Slack
incoming webhook accepts (``POST`` of JSON with ``text``, Block Kit ``blocks``, or
``attachments`` holding either blocks or legacy ``title``/``text``/``fields``), answers
``200 ok`` like Slack, keeps every message, and hands a readable digest of each one
(title, body, facts, analysis lines, and the alert kind from the context line) to a
callback, which the demo prints.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["SlackMessage", "SlackReceiver", "digest"]

_BOLD_NAME = re.compile(r"^\*(?P<name>[^*\n]+)\*\n(?P<value>.*)$", re.DOTALL)
_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")


def _unescape(text: str) -> str:
    """Slack mrkdwn back to plain text: entities, ``<url|label>`` links."""
    text = _LINK.sub(r"\2 (\1)", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """One received message, reduced to what a person reads."""

    received: float  # time.time()
    path: str
    title: str
    text: str
    facts: tuple[tuple[str, str], ...] = ()
    analysis: tuple[str, ...] = ()
    context: str = ""
    color: str = ""
    channel: str = ""
    username: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The alert kind canary-engine puts last on its context line (``Promoted``, ...)."""
        if self.context:
            return self.context.rsplit("·", 1)[-1].strip()
        return ""

    def fact(self, name: str) -> str:
        return next((value for key, value in self.facts if key == name), "")

    def to_json(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "kind": self.kind,
            "title": self.title,
            "text": self.text,
            "facts": [list(f) for f in self.facts],
            "analysis": list(self.analysis),
            "context": self.context,
            "color": self.color,
            "channel": self.channel,
        }


def _block_texts(blocks: Iterable[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"title": "", "text": [], "facts": [], "analysis": [], "context": ""}
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        text = block.get("text")
        body = str(text.get("text", "")) if isinstance(text, Mapping) else ""
        if kind == "header":
            out["title"] = out["title"] or _unescape(body)
        elif kind == "section":
            for item in block.get("fields") or ():
                if isinstance(item, Mapping):
                    value = _unescape(str(item.get("text", "")))
                    match = _BOLD_NAME.match(value)
                    if match:
                        out["facts"].append((match["name"], match["value"].strip()))
                    else:
                        out["facts"].append(("", value))
            if body.startswith("*Analysis*"):
                lines = _unescape(body).splitlines()[1:]
                out["analysis"] += [line.lstrip("•").strip() for line in lines if line.strip()]
            elif body:
                out["text"].append(_unescape(body))
        elif kind == "context":
            parts = [
                str(e.get("text", ""))
                for e in block.get("elements") or ()
                if isinstance(e, Mapping)
            ]
            out["context"] = _unescape(" ".join(parts))
    return out


def _add_attachment(parts: dict[str, Any], attachment: Mapping[str, Any]) -> None:
    """Add an attachment's texts to ``parts``: its blocks, or the fields of a legacy
    attachment (Flagger's format); the first title and context found win."""
    inner = _block_texts(attachment.get("blocks") or ())
    for key in ("title", "context"):
        parts[key] = parts[key] or inner[key]
    for key in ("text", "facts", "analysis"):
        parts[key] += inner[key]
    if attachment.get("title"):  # legacy attachment (Flagger's format)
        parts["title"] = parts["title"] or _unescape(str(attachment["title"]))
    if attachment.get("text") and not attachment.get("blocks"):
        parts["text"].append(_unescape(str(attachment["text"])))
    for item in attachment.get("fields") or ():
        if isinstance(item, Mapping):
            parts["facts"].append((str(item.get("title", "")), str(item.get("value", ""))))


def digest(
    payload: Mapping[str, Any], *, path: str = "/", received: float | None = None
) -> SlackMessage:
    """Reduce a Slack webhook payload to a :class:`SlackMessage`."""
    color = ""
    parts = _block_texts(payload.get("blocks") or ())
    for attachment in payload.get("attachments") or ():
        if isinstance(attachment, Mapping):
            color = color or str(attachment.get("color", ""))
            _add_attachment(parts, attachment)
    title: str = parts["title"]
    texts: list[str] = parts["text"]
    fallback = _unescape(str(payload.get("text", "")))
    if not title:
        first, _, rest = fallback.partition("\n")
        title, fallback = first, rest
    if not texts and fallback:
        texts = [fallback]
    return SlackMessage(
        received=time.time() if received is None else received,
        path=path,
        title=title,
        text="\n".join(texts).strip(),
        facts=tuple(parts["facts"]),
        analysis=tuple(parts["analysis"]),
        context=str(parts["context"]),
        color=color,
        channel=str(payload.get("channel", "")),
        username=str(payload.get("username", "")),
        raw=dict(payload),
    )


class SlackReceiver:
    """An aiohttp server on 127.0.0.1 that takes Slack webhook posts on any path."""

    def __init__(
        self, on_message: Callable[[SlackMessage], None] | None = None, *, host: str = "127.0.0.1"
    ) -> None:
        self.host = host
        self.port = 0
        self.messages: list[SlackMessage] = []
        self.on_message = on_message
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The webhook address to give an AlertProvider."""
        return f"http://{self.host}:{self.port}/services/demo/webhook"

    async def _post(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            payload = json.loads(raw)
        except ValueError:
            form = await request.post()  # Slack also takes payload=<json> form posts
            try:
                payload = json.loads(str(form.get("payload", "")))
            except ValueError:
                return web.Response(status=400, text="invalid_payload")
        if not isinstance(payload, Mapping):
            return web.Response(status=400, text="invalid_payload")
        message = digest(payload, path=request.path)
        if not (message.title or message.text):
            return web.Response(status=400, text="no_text")
        self.messages.append(message)
        if self.on_message is not None:
            self.on_message(message)
        return web.Response(text="ok")

    async def start(self) -> SlackReceiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
