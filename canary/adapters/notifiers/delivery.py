"""Delivery that never hurts a rollout: queue, pace, retry, give up, report.

`NotificationDispatcher` implements the `canary.ports.Notifier` seam. Its
``notify()`` only puts the alert on an in-memory queue and returns, so a slow,
rate-limited or dead chat service can never delay or fail a reconcile tick.
Behind the queue:

* one router task takes alerts in order, asks the controller's resolver for the
  AlertProviders the canary names, applies the routing rules
  (`canary.adapters.notifiers.routing.route`) and renders one request per
  destination;
* one worker task per destination (a webhook address) posts them one at a
  time: a timeout per attempt (the AlertProvider's ``timeout``, 5 s by
  default), pacing to the provider's rate (Slack about one message per second,
  so a burst queues instead of failing), exponential backoff on 429 (honouring
  ``Retry-After``, in seconds or as an HTTP date, capped), 5xx and connection
  errors, no retry on other 4xx, and a bound on attempts and on total time;
* a delivery that fails for good becomes a call of ``on_failure(canary, alert,
  reason)`` (the controller turns it into a Warning Event) and a count in
  ``canary_notification_failures_total{provider_type}``; every delivery is
  counted in ``canary_notifications_total{provider_type, outcome}``.

Reasons, log records and counters never carry the webhook URL, the token or the
proxy: every text that leaves a delivery goes through the sender's `Redactor`.

The same alert is not sent twice after a restart because the core emits alerts
only after the status that records the transition is written. On top of that,
callers may pass an idempotency key (`idempotency_key`); exact duplicates of a
key for the same destination are dropped for the lifetime of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

import httpx
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from canary.adapters.notifiers.base import (
    NotifierConfigError,
    OutgoingRequest,
    ResolvedProvider,
    Sender,
)
from canary.adapters.notifiers.factory import make_sender
from canary.adapters.notifiers.httpio import (
    HttpClients,
    backoff_delay,
    http_redactor,
    parse_retry_after,
    sanitize_body,
)
from canary.adapters.notifiers.rendering import CommitLinker, RenderContext, now_utc
from canary.adapters.notifiers.routing import GlobalNotifierConfig, ProviderRef, route, wanted_refs
from canary.adapters.redaction import Redactor
from canary.core.actions import Alert
from canary.model.canary import Canary

__all__ = [
    "DeliveryOutcome",
    "FailureCallback",
    "MetricsRecorder",
    "NotificationDispatcher",
    "PrometheusNotificationMetrics",
    "ProviderResolver",
    "RetryPolicy",
    "idempotency_key",
]

log = logging.getLogger("canary.notifications")

FailureCallback = Callable[[Canary, Alert, str], Awaitable[None] | None]
"""Called once per delivery that failed for good; the reason holds no secrets."""

ProviderResolver = Callable[[ProviderRef], Awaitable[ResolvedProvider | None]]
"""Reads an AlertProvider and its Secret; None when the AlertProvider does not exist.

May raise `NotifierConfigError` (e.g. no address); anything else it raises is
reported as "could not read" without its text.
"""

MetricsRecorder = Callable[[str, str], None]
"""``(provider_type, outcome)`` for every delivery."""

UNROUTED = "none"  # provider_type label when no provider could be determined


class DeliveryOutcome(StrEnum):
    """How one notification delivery ended (the ``outcome`` label of its metric).

    Not a metric check's outcome (that is ``analysis.Outcome``): sent, failed, or
    dropped as a duplicate of one already sent.
    """

    SENT = "sent"
    FAILED = "failed"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one delivery tries before it is reported as failed."""

    max_attempts: int = 5
    base_delay: float = 1.0  # first backoff; doubles per attempt
    max_delay: float = 30.0  # cap of the exponential backoff
    max_retry_after: float = 60.0  # cap on a server's Retry-After
    give_up_after: float = 300.0  # total seconds from the first attempt


class PrometheusNotificationMetrics:
    """The two notification counters, registered in ``registry`` (or passed in)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = REGISTRY,
        *,
        total: Counter | None = None,
        failures: Counter | None = None,
    ) -> None:
        self.total = total or Counter(
            "canary_notifications_total",
            "Notification deliveries by provider type and outcome (sent, failed, duplicate).",
            ["provider_type", "outcome"],
            registry=registry,
        )
        self.failures = failures or Counter(
            "canary_notification_failures_total",
            "Notifications that could not be delivered, by provider type.",
            ["provider_type"],
            registry=registry,
        )

    def __call__(self, provider_type: str, outcome: str) -> None:
        self.total.labels(provider_type=provider_type, outcome=outcome).inc()
        if outcome == DeliveryOutcome.FAILED:
            self.failures.labels(provider_type=provider_type).inc()


def idempotency_key(canary: Canary, alert: Alert, transition: str) -> str:
    """A key identifying one alert of one status transition (e.g. its condition's lastTransitionTime)."""
    who = canary.uid or f"{canary.namespace}/{canary.name}"
    return f"{who}|{alert.kind.value}|{alert.revision}|{transition}"


@dataclass(slots=True)
class _Job:
    canary: Canary
    alert: Alert
    sender: Sender
    request: OutgoingRequest
    dedupe: tuple[str, str] | None


@dataclass(slots=True)
class _Destination:
    queue: asyncio.Queue[_Job]
    min_interval: float
    next_allowed: float = 0.0
    task: asyncio.Task[None] | None = None
    current: _Job | None = None


@dataclass(slots=True)
class _Attempt:
    problem: str | None = None
    retriable: bool = False
    retry_after: float | None = None


_DEFAULT_RETRY = RetryPolicy()


@dataclass(slots=True)
class _State:
    pending: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False


class NotificationDispatcher:
    """The `Notifier` of the controller: queued, paced, retried, redacted delivery.

    ``resolve`` reads AlertProviders for the router (the controller passes a
    function over its cache and Secrets); ``global_config`` is the notifier of
    canaries without ``alerts``; ``cluster`` is named in every message.
    """

    def __init__(
        self,
        resolve: ProviderResolver | None = None,
        *,
        global_config: GlobalNotifierConfig | None = None,
        cluster: str = "",
        clients: HttpClients | None = None,
        on_failure: FailureCallback | None = None,
        metrics: MetricsRecorder | None = None,
        retry: RetryPolicy = _DEFAULT_RETRY,
        queue_size: int = 1000,
        resolve_timeout: float = 5.0,
        pacing: Mapping[str, float] | None = None,
        commit_link: CommitLinker | None = None,
        clock: Callable[[], datetime] = now_utc,
        dedupe_capacity: int = 10_000,
    ) -> None:
        self._resolve = resolve
        self._global = global_config
        self._cluster = cluster
        self._own_clients = clients is None
        self._clients = clients or HttpClients()
        self._on_failure = on_failure
        self._metrics = metrics
        self._retry = retry
        self._queue_size = queue_size
        self._resolve_timeout = resolve_timeout
        self._pacing = dict(pacing or {})
        self._commit_link = commit_link
        self._clock = clock
        self._dedupe_capacity = dedupe_capacity
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._inbox: asyncio.Queue[tuple[Canary, Alert, str | None]] = asyncio.Queue(
            maxsize=queue_size
        )
        self._router: asyncio.Task[None] | None = None
        self._destinations: dict[str, _Destination] = {}
        self._state = _State()
        self._state.idle.set()
        self._callbacks: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------------- public API

    async def notify(self, canary: Canary, alert: Alert, *, key: str | None = None) -> None:
        """Queue ``alert`` and return at once; never raises."""
        try:
            if self._state.closed:
                log.warning(
                    "notification %s for %s/%s dropped: the notifier is closed",
                    alert.kind.value,
                    canary.namespace,
                    canary.name,
                )
                return
            try:
                self._inbox.put_nowait((canary, alert, key))
            except asyncio.QueueFull:
                self._record(UNROUTED, DeliveryOutcome.FAILED)
                self._report(
                    canary,
                    alert,
                    f"notification {alert.kind.value} dropped: the notification queue is full",
                )
                return
            self._add_pending(1)
            if self._router is None or self._router.done():
                self._router = asyncio.create_task(
                    self._route_forever(), name="notifications-router"
                )
        except Exception:  # never fail a tick because of a notification
            log.exception("could not queue notification %s", alert.kind.value)

    async def wait_idle(self, within: float) -> bool:
        """Wait until every queued alert was delivered or reported; False after ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                await self._state.idle.wait()
                if self._callbacks:
                    await asyncio.gather(*list(self._callbacks), return_exceptions=True)
        except TimeoutError:
            return False
        return True

    async def aclose(self, grace: float = 10.0) -> None:
        """Stop accepting alerts, deliver what is queued within ``grace`` seconds, then stop."""
        if self._state.closed and self._router is None and not self._destinations:
            return
        self._state.closed = True
        drained = await self.wait_idle(grace)
        undelivered: list[_Job] = []
        if not drained:
            for destination in self._destinations.values():
                if destination.current is not None:
                    undelivered.append(destination.current)
                while not destination.queue.empty():
                    undelivered.append(destination.queue.get_nowait())
        tasks = [
            t
            for t in (self._router, *(d.task for d in self._destinations.values()))
            if t is not None
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._router = None
        self._destinations.clear()
        if not drained:
            for job in undelivered:
                self._record(job.sender.provider_type, DeliveryOutcome.FAILED)
            lost = len(undelivered) + self._inbox.qsize()
            log.warning("notifier closed with %d notification(s) not delivered", lost)
        for task in list(self._callbacks):
            task.cancel()
        await asyncio.gather(*list(self._callbacks), return_exceptions=True)
        if self._own_clients:
            await self._clients.aclose()

    # ------------------------------------------------------------------- routing

    def _add_pending(self, count: int) -> None:
        self._state.pending += count
        if self._state.pending > 0:
            self._state.idle.clear()

    def _done(self) -> None:
        self._state.pending -= 1
        if self._state.pending <= 0:
            self._state.pending = 0
            self._state.idle.set()

    async def _route_forever(self) -> None:
        while True:
            canary, alert, key = await self._inbox.get()
            try:
                await self._dispatch(canary, alert, key)
            except Exception as exc:
                log.error(
                    "routing notification %s failed: %s", alert.kind.value, type(exc).__name__
                )
            finally:
                self._done()

    async def _lookup(self, ref: ProviderRef) -> tuple[ResolvedProvider | None, str]:
        if self._resolve is None:
            return None, f"AlertProvider {ref} cannot be read: no resolver configured"
        try:
            async with asyncio.timeout(self._resolve_timeout):
                provider = await self._resolve(ref)
        except NotifierConfigError as exc:
            return None, f"AlertProvider {ref} is invalid: {exc}"
        except TimeoutError:
            return None, f"AlertProvider {ref} could not be read within {self._resolve_timeout:g}s"
        except Exception as exc:
            return None, f"AlertProvider {ref} could not be read ({type(exc).__name__})"
        if provider is None:
            return None, f"AlertProvider {ref} not found"
        return provider, ""

    async def _dispatch(self, canary: Canary, alert: Alert, key: str | None) -> None:
        resolved: dict[ProviderRef, ResolvedProvider] = {}
        problems: dict[ProviderRef, str] = {}
        for ref in wanted_refs(canary, alert):
            provider, problem = await self._lookup(ref)
            if provider is not None:
                resolved[ref] = provider
            else:
                problems[ref] = problem
        context = RenderContext(
            now=self._clock(), cluster=self._cluster, commit_link=self._commit_link
        )
        for target in route(canary, alert, resolved, self._global):
            if target.provider is None:
                missing = problems.get(target.ref) if target.ref else None
                self._record(UNROUTED, DeliveryOutcome.FAILED)
                self._report(canary, alert, f"{target.via}: {missing or 'AlertProvider not found'}")
                continue
            provider = target.provider
            redact = http_redactor((provider.address, provider.token, provider.proxy))
            try:
                sender = make_sender(provider)
                request = sender.render(alert, context)
            except NotifierConfigError as exc:
                self._record(provider.type, DeliveryOutcome.FAILED)
                self._report(canary, alert, redact(f"{provider.describe()} is invalid: {exc}"))
                continue
            except Exception as exc:
                self._record(provider.type, DeliveryOutcome.FAILED)
                self._report(
                    canary,
                    alert,
                    f"{provider.describe()}: could not render the message ({type(exc).__name__})",
                )
                continue
            dedupe = (key, provider.destination_id) if key else None
            if dedupe is not None:
                if dedupe in self._seen:
                    self._seen.move_to_end(dedupe)
                    self._record(provider.type, DeliveryOutcome.DUPLICATE)
                    log.debug(
                        "duplicate notification %s to %s dropped",
                        alert.kind.value,
                        provider.describe(),
                    )
                    continue
                self._remember(dedupe)
            self._enqueue(_Job(canary, alert, sender, request, dedupe))

    def _remember(self, dedupe: tuple[str, str]) -> None:
        self._seen[dedupe] = None
        while len(self._seen) > self._dedupe_capacity:
            self._seen.popitem(last=False)

    def _enqueue(self, job: _Job) -> None:
        dest_id = job.sender.resolved.destination_id
        destination = self._destinations.get(dest_id)
        if destination is None:
            interval = self._pacing.get(job.sender.provider_type, job.sender.min_interval)
            destination = _Destination(
                queue=asyncio.Queue(maxsize=self._queue_size), min_interval=interval
            )
            self._destinations[dest_id] = destination
        if destination.task is None or destination.task.done():
            destination.task = asyncio.create_task(
                self._deliver_forever(destination), name=f"notifications-{dest_id}"
            )
        try:
            destination.queue.put_nowait(job)
        except asyncio.QueueFull:
            self._failed(
                job, "the destination's queue is full (it has been failing or slow for a while)"
            )
            return
        self._add_pending(1)

    # ------------------------------------------------------------------ delivery

    async def _deliver_forever(self, destination: _Destination) -> None:
        while True:
            job = await destination.queue.get()
            destination.current = job
            try:
                await self._deliver(destination, job)
            except Exception as exc:
                self._failed(job, f"unexpected {type(exc).__name__} while sending")
            finally:
                destination.current = None
                self._done()

    async def _deliver(self, destination: _Destination, job: _Job) -> None:
        loop = asyncio.get_running_loop()
        policy = self._retry
        provider = job.sender.resolved
        timeout = (
            provider.provider.timeout_seconds if provider.provider.timeout_seconds > 0 else 5.0
        )
        client = self._clients.get(proxy=provider.proxy)
        redact = job.sender.redactor()
        started = loop.time()
        attempts = 0
        last = _Attempt()
        while attempts < max(1, policy.max_attempts):
            wait = destination.next_allowed - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            attempts += 1
            last = await self._attempt(client, job, timeout, redact)
            destination.next_allowed = loop.time() + destination.min_interval
            if last.problem is None:
                self._record(job.sender.provider_type, DeliveryOutcome.SENT)
                log.debug(
                    "notification %s sent to %s (attempt %d)",
                    job.alert.kind.value,
                    provider.describe(),
                    attempts,
                )
                return
            if not last.retriable or attempts >= policy.max_attempts:
                break
            if last.retry_after is not None:
                delay = min(last.retry_after, policy.max_retry_after)
            else:
                delay = backoff_delay(attempts - 1, base=policy.base_delay, cap=policy.max_delay)
            if loop.time() + delay - started > policy.give_up_after:
                break
            log.info(
                "notification %s to %s failed (%s); retrying in %.3gs",
                job.alert.kind.value,
                provider.describe(),
                last.problem,
                delay,
            )
            # The pause holds the whole destination: a 429 applies to every message to it.
            destination.next_allowed = max(destination.next_allowed, loop.time() + delay)
        if last.retriable:
            self._failed(
                job,
                f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}: {last.problem}",
            )
        else:
            self._failed(job, f"rejected: {last.problem}")

    async def _attempt(
        self, client: httpx.AsyncClient, job: _Job, limit: float, redact: Redactor
    ) -> _Attempt:
        request = job.request
        try:
            async with asyncio.timeout(limit):
                response = await client.post(
                    request.url,
                    content=request.encoded(),
                    headers=dict(request.headers),
                    timeout=limit,
                    follow_redirects=False,
                )
        except (TimeoutError, httpx.TimeoutException):
            return _Attempt(f"no answer within {limit:g}s", retriable=True)
        except httpx.TransportError as exc:
            detail = redact(str(exc)).strip()
            return _Attempt(
                f"connection failed ({type(exc).__name__}{': ' + detail if detail else ''})",
                retriable=True,
            )
        except httpx.HTTPError as exc:
            return _Attempt(f"request failed ({type(exc).__name__})", retriable=False)
        status = response.status_code
        problem = job.sender.failure(status, response.content)
        if problem is None:
            return _Attempt()
        body = sanitize_body(response.content, 200)
        if body and body not in problem:
            problem += f": {body}"
        problem = redact(problem)
        retriable = status == 429 or status >= 500
        retry_after = None
        if retriable:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is None and status == 429:
                retry_after = _json_retry_after(response.content)
        return _Attempt(problem, retriable=retriable, retry_after=retry_after)

    # ------------------------------------------------------------------ reporting

    def _failed(self, job: _Job, what: str) -> None:
        if job.dedupe is not None:
            self._seen.pop(job.dedupe, None)  # a later identical alert may try again
        self._record(job.sender.provider_type, DeliveryOutcome.FAILED)
        reason = job.sender.redactor()(f"{job.sender.resolved.describe()}: {what}")
        self._report(job.canary, job.alert, reason)

    def _record(self, provider_type: str, outcome: DeliveryOutcome) -> None:
        if self._metrics is None:
            return
        try:
            self._metrics(provider_type, outcome.value)
        except Exception:
            log.exception("notification metrics failed")

    def _report(self, canary: Canary, alert: Alert, reason: str) -> None:
        message = (
            f"Notification {alert.kind.value} for {canary.name}.{canary.namespace} failed: {reason}"
        )
        log.warning("%s", message)
        if self._on_failure is None:
            return
        try:
            result = self._on_failure(canary, alert, message)
        except Exception:
            log.exception("the notification failure callback failed")
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(_guarded(result))
            self._callbacks.add(task)
            task.add_done_callback(self._callbacks.discard)


async def _guarded(result: Awaitable[None]) -> None:
    try:
        async with asyncio.timeout(10):
            await result
    except Exception:
        log.exception("the notification failure callback failed")


def _json_retry_after(body: bytes) -> float | None:
    # Discord puts the wait (seconds) in the JSON body of a 429.
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        value = json.loads(body).get("retry_after")
        if isinstance(value, int | float) and value >= 0:
            return float(value)
    return None


if TYPE_CHECKING:
    from canary.ports import Notifier

    def _implements_the_port(dispatcher: NotificationDispatcher) -> Notifier:
        return dispatcher
