"""What every notifier shares: the resolved destination, the request, the sender seam.

The controller reads an AlertProvider and its Secret and hands the values over
as a `ResolvedProvider` (the Secret's ``address`` overrides ``spec.address``,
``token`` becomes ``Authorization: Bearer``, ``proxy`` overrides
``spec.proxy``). A provider module turns a rendered `Message` into an
`OutgoingRequest` and judges the response; the delivery module does the HTTP.
Splitting it this way keeps each provider module a pure function of the message
(easy to test against the provider's documented format) and keeps retries,
pacing and redaction in one place.

The address, token and proxy are secrets: they are hidden from ``repr`` and the
errors raised here never quote them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from canary.adapters.notifiers.httpio import http_redactor
from canary.adapters.notifiers.rendering import (
    Message,
    MessageTemplate,
    RenderContext,
    render_message,
)
from canary.adapters.redaction import Redactor
from canary.core.actions import Alert
from canary.errors import CanaryError
from canary.model.errors import SpecIssue
from canary.model.resources import AlertProvider

__all__ = [
    "NotifierConfigError",
    "OutgoingRequest",
    "ResolvedProvider",
    "Sender",
    "WebhookSender",
]


class NotifierConfigError(CanaryError, ValueError):
    """An AlertProvider that cannot be used; ``issues`` name the fields.

    Messages never contain the address, token or proxy.
    """

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("; ".join(str(i) for i in self.issues))


@dataclass(frozen=True, slots=True)
class ResolvedProvider:
    """An AlertProvider with its Secret applied: where and how to post."""

    provider: AlertProvider = field(repr=False)
    address: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    proxy: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"ResolvedProvider({self.describe()})"

    @property
    def type(self) -> str:
        return self.provider.type

    def describe(self) -> str:
        """How messages name this destination (never the address)."""
        p = self.provider
        if not p.namespace:
            return f"global {p.type} notifier"
        return f"{p.type} AlertProvider {p.namespace}/{p.name}"

    @property
    def destination_id(self) -> str:
        """A stable, non-secret identity of the endpoint (pacing and de-duplication)."""
        digest = hashlib.sha256(
            f"{self.type}\0{self.address}\0{self.provider.channel}".encode()
        ).hexdigest()
        return f"{self.type}:{digest[:16]}"

    @classmethod
    def from_secret(
        cls, provider: AlertProvider, secret: Mapping[str, str] | None = None
    ) -> ResolvedProvider:
        """Apply the Secret's decoded data (keys ``address``, ``token``, ``proxy``).

        Raises `NotifierConfigError` when no address is left.
        """
        data = {k: v.strip() for k, v in (secret or {}).items() if isinstance(v, str)}
        address = data.get("address") or (provider.address or "").strip()
        if not address:
            where = (
                f'spec.address or the "address" key of Secret {provider.secret_name}'
                if provider.secret_name
                else "spec.address"
            )
            raise NotifierConfigError(
                [SpecIssue("spec.address", f"no webhook address: set {where}")]
            )
        return cls(
            provider=provider,
            address=address,
            token=data.get("token") or None,
            proxy=data.get("proxy") or provider.proxy or None,
        )


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """One POST: where, which headers, which JSON body."""

    url: str = field(repr=False)
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def encoded(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode()


class Sender(Protocol):
    """A configured destination that can render alerts and judge answers."""

    @property
    def provider_type(self) -> str: ...

    @property
    def resolved(self) -> ResolvedProvider: ...

    @property
    def min_interval(self) -> float:
        """Seconds between two posts to this destination (the provider's rate limit)."""
        ...

    def render(self, alert: Alert, context: RenderContext) -> OutgoingRequest:
        """The request for ``alert`` (the AlertProvider's messageTemplate applied)."""
        ...

    def failure(self, status: int, body: bytes) -> str | None:
        """None if the answer means delivered, else why not (no secrets)."""
        ...

    def redactor(self) -> Redactor: ...


@dataclass(frozen=True, slots=True)
class WebhookSender:
    """Base of the provider modules: a JSON POST to the resolved address.

    Subclasses set ``provider_type`` and ``min_interval`` and implement `payload`.
    """

    resolved: ResolvedProvider
    template: MessageTemplate | None = None

    provider_type: ClassVar[str] = ""
    min_interval: ClassVar[float] = 0.0

    def payload(self, message: Message) -> dict[str, Any]:
        raise NotImplementedError

    def render(self, alert: Alert, context: RenderContext) -> OutgoingRequest:
        return self.request(render_message(alert, context, self.template))

    def request(self, message: Message) -> OutgoingRequest:
        headers = {"Content-Type": "application/json"}
        if self.resolved.token:
            headers["Authorization"] = f"Bearer {self.resolved.token}"
        return OutgoingRequest(
            url=self.resolved.address, body=self.payload(message), headers=headers
        )

    def failure(self, status: int, body: bytes) -> str | None:
        if 200 <= status < 300:
            return None
        return f"HTTP {status}"

    def redactor(self) -> Redactor:
        return http_redactor((self.resolved.address, self.resolved.token, self.resolved.proxy))

    def with_channel_and_user(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with the AlertProvider's channel and user name, for the services that
        take them in the message (Slack, Rocket.Chat); left out when not set, so the
        webhook's own defaults apply."""
        provider = self.resolved.provider
        if provider.channel:
            body["channel"] = provider.channel
        if provider.username:
            body["username"] = provider.username
        return body


def is_http_url(value: str) -> bool:
    """An absolute http(s) URL with a host."""
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def check_address(address: str, issues: list[SpecIssue]) -> None:
    """Add an issue if the address is not an absolute http(s) URL (without quoting it: it
    may hold a token)."""
    if not is_http_url(address):
        issues.append(
            SpecIssue(
                "spec.address",
                "the webhook address (spec.address or the Secret's address key) is not an http(s) URL",
            )
        )


def check_proxy(proxy: str, issues: list[SpecIssue]) -> None:
    """Add an issue if the proxy is not an http(s) URL (without quoting it)."""
    if not is_http_url(proxy):
        issues.append(
            SpecIssue(
                "spec.proxy",
                "the proxy (spec.proxy or the Secret's proxy key) is not an http(s) URL",
            )
        )
