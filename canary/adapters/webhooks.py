"""Flagger's webhooks: gates, checks, rollback signals, event hooks and the global event webhook.

`HttpWebhookCaller` implements the `canary.ports.WebhookCaller` seam with
Flagger's semantics (reference/flagger.md 1.5, 2.12), so a load tester or an
approval service written for Flagger works unchanged:

* a POST of ``{name, namespace, phase, checksum, metadata}`` with
  ``Content-Type: application/json``; the caller computes ``checksum`` (the run
  identity) and passes the phase;
* success means HTTP status **<= 202**, exactly as Flagger: 203-299 are
  failures, and so is 204 No Content;
* on failure the response body (sanitised and truncated) is the message, so an
  approval service can say why it refused;
* ``timeout`` (default 10 s) bounds the whole call, retries included, like the
  request context Flagger shares across its retries;
* ``retries`` follows go-retryablehttp: connection errors, 429 and 5xx (except
  501) are retried up to ``retries`` times with exponential backoff from 1 s to
  30 s, and a ``Retry-After`` on 429/503 is honoured;
* ``disableTLS`` skips certificate verification;
* event hooks receive ``metadata.eventMessage``, ``eventType`` and
  ``timestamp`` (unix milliseconds as a string) which user metadata cannot
  override; the global event webhook (``-event-webhook`` /
  ``EVENT_WEBHOOK_URL``) receives every event of canaries that define no
  ``event`` hook.

Nothing here raises into the controller: `call` answers with a `HookAnswer`,
`post_event` logs failures. Hook URLs are redacted (path and query hidden) in
every message and log record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from canary.adapters.notifiers.httpio import (
    HttpClients,
    backoff_delay,
    http_redactor,
    parse_retry_after,
    sanitize_body,
)
from canary.adapters.redaction import Redactor
from canary.core.actions import EmitEvent
from canary.core.observations import HookAnswer
from canary.model.canary import DEFAULT_WEBHOOK_TIMEOUT_SECONDS, Canary, HookType, WebhookSpec

__all__ = [
    "EVENT_KEYS",
    "HttpWebhookCaller",
    "event_payload",
    "hook_payload",
    "is_success",
]

log = logging.getLogger("canary.webhooks")

EVENT_KEYS = ("eventMessage", "eventType", "timestamp")
GLOBAL_EVENT_HOOK = "event-webhook"
BODY_LIMIT = 500


def is_success(status: int) -> bool:
    """Flagger's rule: a webhook passed iff its status is at most 202."""
    return status <= 202


def _retriable(status: int) -> bool:
    # go-retryablehttp's DefaultRetryPolicy: 429 and 5xx except 501 Not Implemented.
    return status == 429 or (status >= 500 and status != 501)


def hook_payload(
    canary: Canary, phase: str, checksum: str, metadata: Mapping[str, str]
) -> dict[str, Any]:
    """The JSON body Flagger sends to every webhook."""
    return {
        "name": canary.name,
        "namespace": canary.namespace,
        "phase": phase,
        "checksum": checksum,
        "metadata": dict(metadata),
    }


def event_payload(
    canary: Canary,
    event: EmitEvent,
    phase: str,
    checksum: str,
    metadata: Mapping[str, str],
    now_ms: int,
) -> dict[str, Any]:
    """An event hook's body: the user's metadata plus the event keys, which always win."""
    merged = dict(metadata)
    merged["eventMessage"] = event.message
    merged["eventType"] = event.type.value
    merged["timestamp"] = str(now_ms)
    return hook_payload(canary, phase, checksum, merged)


class HttpWebhookCaller:
    """Calls Canary webhooks over HTTP with Flagger's semantics (see the module docstring).

    ``clients`` is the shared client pool (one client per TLS-verification
    setting is used); ``backoff_min``/``backoff_max`` are go-retryablehttp's 1 s
    and 30 s, adjustable for tests; ``clock`` gives unix seconds for event
    timestamps.
    """

    def __init__(
        self,
        clients: HttpClients | None = None,
        *,
        event_webhook_url: str | None = None,
        backoff_min: float = 1.0,
        backoff_max: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._own_clients = clients is None
        self._clients = clients or HttpClients()
        self._event_webhook = event_webhook_url or None
        self._backoff_min = backoff_min
        self._backoff_max = backoff_max
        self._clock = clock

    async def aclose(self) -> None:
        if self._own_clients:
            await self._clients.aclose()

    async def call(
        self, canary: Canary, hook: WebhookSpec, phase: str, checksum: str
    ) -> HookAnswer:
        """Call one gate, check or rollback hook; ok iff it answered with status <= 202."""
        payload = hook_payload(canary, phase, checksum, hook.metadata)
        return await self._post(hook, payload)

    async def post_event(self, canary: Canary, event: EmitEvent, phase: str, checksum: str) -> None:
        """Forward one recorded event to the canary's ``event`` hooks, else to the global webhook."""
        now_ms = int(self._clock() * 1000)
        analysis = canary.spec.analysis
        hooks = analysis.hooks(HookType.EVENT) if analysis is not None else ()
        if not hooks and self._event_webhook:
            hooks = (
                WebhookSpec(name=GLOBAL_EVENT_HOOK, url=self._event_webhook, type=HookType.EVENT),
            )
        for hook in hooks:
            payload = event_payload(canary, event, phase, checksum, hook.metadata, now_ms)
            answer = await self._post(hook, payload)
            if not answer.ok:
                log.warning(
                    "event webhook %s for %s.%s failed: %s",
                    hook.name,
                    canary.name,
                    canary.namespace,
                    answer.message,
                )

    # ---------------------------------------------------------------------- HTTP

    async def _post(self, hook: WebhookSpec, payload: Mapping[str, Any]) -> HookAnswer:
        redact = http_redactor((hook.url,))
        limit = (
            hook.timeout_seconds if hook.timeout_seconds > 0 else DEFAULT_WEBHOOK_TIMEOUT_SECONDS
        )
        if not hook.url:
            return HookAnswer(False, f"webhook {hook.name} has no url")
        try:
            async with asyncio.timeout(limit):
                return await self._attempts(hook, payload, redact)
        except TimeoutError:
            return HookAnswer(False, f"webhook {hook.name} timed out after {limit:g}s")
        except Exception as exc:  # never let a webhook crash a tick
            return HookAnswer(
                False, redact(f"webhook {hook.name} failed: {type(exc).__name__}: {exc}")
            )

    async def _attempts(
        self, hook: WebhookSpec, payload: Mapping[str, Any], redact: Redactor
    ) -> HookAnswer:
        client = self._clients.get(verify=not hook.disable_tls)
        retries = max(0, hook.retries)
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                response = await client.post(
                    hook.url,
                    json=dict(payload),
                    headers={"Content-Type": "application/json"},
                    timeout=hook.timeout_seconds
                    if hook.timeout_seconds > 0
                    else DEFAULT_WEBHOOK_TIMEOUT_SECONDS,
                    follow_redirects=True,
                )
            except httpx.TimeoutException:
                raise TimeoutError from None
            except httpx.TransportError as exc:
                detail = redact(str(exc)).strip() or type(exc).__name__
                answer = HookAnswer(False, f"webhook {hook.name} could not connect: {detail}")
                retriable = True
            except httpx.HTTPError as exc:
                return HookAnswer(
                    False, redact(f"webhook {hook.name} failed: {type(exc).__name__}: {exc}")
                )
            else:
                status = response.status_code
                if is_success(status):
                    return HookAnswer(True, "")
                body = sanitize_body(response.content, BODY_LIMIT)
                reason = response.reason_phrase or ""
                text = f"{status} {reason}".strip()
                answer = HookAnswer(False, redact(f"{text}: {body}" if body else text))
                retriable = _retriable(status)
                if status in (429, 503):
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if not retriable or attempt >= retries:
                if attempt > 0:
                    return HookAnswer(False, f"{answer.message} (after {attempt + 1} attempts)")
                return answer
            delay = (
                min(retry_after, self._backoff_max)
                if retry_after is not None
                else backoff_delay(attempt, base=self._backoff_min, cap=self._backoff_max)
            )
            attempt += 1
            await asyncio.sleep(delay)


if TYPE_CHECKING:
    from canary.ports import WebhookCaller

    def _implements_the_port(caller: HttpWebhookCaller) -> WebhookCaller:
        return caller
