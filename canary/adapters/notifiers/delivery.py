"""Delivery that never hurts a rollout and never loses a recorded alert.

`NotificationDispatcher` implements the `canary.ports.Notifier` seam. It takes alerts in
two ways, and both return at once, so a slow, rate-limited or dead chat service can
never delay or fail a reconcile pass:

* ``deliver(canary, pending)``: an alert the controller recorded in the Canary's status
  (``status.pendingAlerts``, `canary.core.outbox`) with the destinations it is owed. Each
  destination is delivered once per process, whatever how often the record is handed
  over; when it is delivered or given up, ``on_settled(canary, key, destination,
  outcome)`` tells the controller, which removes it from the status. A record found
  after a restart is simply handed over again.
* ``notify(canary, alert)``: fire and forget, for alerts with no status to record them in
  (a Canary being deleted).

Behind them, one lane per destination (an AlertProvider, or the global notifier) takes
its messages in order:

* it reads the AlertProvider and its Secret through the controller's resolver, and an
  error reading them (an API server's 500, a timeout) is retried like a failed post; a
  missing or invalid AlertProvider is reported at once;
* it renders the message (at the time the alert was recorded, so a second attempt says
  the same) and posts it: a timeout per attempt (the AlertProvider's ``timeout``, 5 s by
  default), pacing to the provider's rate (Slack about one message per second, shared by
  every lane posting to the same address, so a burst queues instead of failing),
  exponential backoff on 429 (honouring ``Retry-After``, in seconds or as an HTTP date,
  capped), 5xx and connection errors, no retry on other 4xx;
* tries stop when the message's time budget (`RetryPolicy.give_up_after`, counted from
  when it was queued; at least one attempt) is spent: the delivery failed for good
  becomes a call of ``on_failure(canary, alert, reason)`` (the controller turns it into
  a Warning Event) and a count in ``canary_notification_failures_total{provider_type}``;
  every delivery is counted in ``canary_notifications_total{provider_type, outcome}``.

Reasons, log records and counters never carry the webhook URL, the token or the proxy:
every text that leaves a delivery goes through the sender's `Redactor`.
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
from canary.adapters.notifiers.routing import GLOBAL, GlobalNotifierConfig, ProviderRef
from canary.adapters.redaction import Redactor
from canary.core.actions import Alert
from canary.core.outbox import alert_from_record
from canary.model.canary import Canary
from canary.model.status import PendingAlert
from canary.timestamps import parse_time

__all__ = [
    "DeliveryOutcome",
    "FailureCallback",
    "MetricsRecorder",
    "NotificationDispatcher",
    "PrometheusNotificationMetrics",
    "ProviderResolver",
    "RetryPolicy",
    "SettledCallback",
    "idempotency_key",
]

log = logging.getLogger("canary.notifications")

FailureCallback = Callable[[Canary, Alert, str], Awaitable[None] | None]
"""Called once per delivery that failed for good; the reason holds no secrets."""

SettledCallback = Callable[[Canary, str, str, "DeliveryOutcome"], Awaitable[None] | None]
"""``(canary, key, destination, outcome)``: a recorded alert's delivery is over (sent or
failed for good); the controller removes the destination from ``status.pendingAlerts``."""

ProviderResolver = Callable[[ProviderRef], Awaitable[ResolvedProvider | None]]
"""Reads an AlertProvider and its Secret; None when the AlertProvider does not exist.

May raise `NotifierConfigError` (e.g. no address), which is final; anything else it raises
(an API error, a timeout) is retried within the budget and, in the end, reported as
"could not read" without its text.
"""

MetricsRecorder = Callable[[str, str], None]
"""``(provider_type, outcome)`` for every delivery."""

UNROUTED = "none"  # provider_type label when no provider could be determined
SETTLED_CALLBACK_SECONDS = 60.0  # the controller's status write, with its own retries


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
    """How hard one delivery tries before it is reported as failed.

    ``give_up_after`` is the message's budget, counted from when it was queued: reading
    the AlertProvider, waiting for its turn and every attempt included. ``max_attempts``
    (None: no limit but the budget) bounds the posts, and the reads of the AlertProvider.
    """

    max_attempts: int | None = None
    base_delay: float = 1.0  # first backoff; doubles per attempt
    max_delay: float = 30.0  # cap of the exponential backoff
    max_retry_after: float = 60.0  # cap on a server's Retry-After
    give_up_after: float = 120.0

    def exhausted(self, attempts: int) -> bool:
        return self.max_attempts is not None and attempts >= max(1, self.max_attempts)


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
    """A key identifying one alert of one status transition, for ``notify(key=...)``
    (recorded alerts carry the key `canary.core.outbox.alert_key` made)."""
    who = canary.uid or f"{canary.namespace}/{canary.name}"
    return f"{who}|{alert.kind.value}|{alert.revision}|{transition}"


@dataclass(slots=True)
class _Job:
    """One message for one destination."""

    canary: Canary
    alert: Alert
    destination: str  # "namespace/name" of an AlertProvider, or "global"
    via: str  # how messages name the route: "alerts[0] on-call", "global"
    key: str | None  # the idempotency key, if any
    durable: bool  # recorded in the status: settle it when done
    created: datetime | None  # the message's time (a recorded alert's), else now
    queued: float = 0.0  # loop time; the budget runs from here
    provider_type: str = UNROUTED


@dataclass(slots=True)
class _Lane:
    queue: asyncio.Queue[_Job]
    task: asyncio.Task[None] | None = None
    current: _Job | None = None
    provider_type: str = UNROUTED  # of the last AlertProvider read (for the jobs still queued)


@dataclass(slots=True)
class _Pace:
    """One webhook address: posts are spaced by ``min_interval``; a 429 holds it all."""

    min_interval: float
    next_allowed: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(slots=True)
class _Attempt:
    problem: str | None = None
    retriable: bool = False
    retry_after: float | None = None


@dataclass(slots=True)
class _Lookup:
    provider: ResolvedProvider | None = None
    problem: str = ""
    retriable: bool = False


_DEFAULT_RETRY = RetryPolicy()


@dataclass(slots=True)
class _State:
    pending: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False


class NotificationDispatcher:
    """The `Notifier` of the controller: queued, paced, retried, redacted delivery.

    ``resolve`` reads AlertProviders (the controller passes a function over its cache and
    Secrets); ``global_config`` is the notifier of canaries without ``alerts``;
    ``cluster`` is named in every message.
    """

    def __init__(
        self,
        resolve: ProviderResolver | None = None,
        *,
        global_config: GlobalNotifierConfig | None = None,
        cluster: str = "",
        clients: HttpClients | None = None,
        on_failure: FailureCallback | None = None,
        on_settled: SettledCallback | None = None,
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
        self._on_settled = on_settled
        self._metrics = metrics
        self._retry = retry
        self._queue_size = queue_size
        self._resolve_timeout = resolve_timeout
        self._pacing = dict(pacing or {})
        self._commit_link = commit_link
        self._clock = clock
        self._dedupe_capacity = dedupe_capacity
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()  # notify(key=...)
        self._settled: OrderedDict[tuple[str, str], DeliveryOutcome] = OrderedDict()
        self._in_flight: set[tuple[str, str]] = set()
        self._lanes: dict[str, _Lane] = {}
        self._paces: dict[str, _Pace] = {}
        self._state = _State()
        self._state.idle.set()
        self._callbacks: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------------- public API

    def destinations(self, canary: Canary, alert: Alert) -> tuple[str, ...]:
        """Where ``alert`` goes (Flagger's routing rules, see `routing`): each AlertProvider
        as ``namespace/name``, or ``global``; empty when muted or nobody listens."""
        if alert.mute:
            return ()
        analysis = canary.spec.analysis
        entries = analysis.alerts if analysis is not None else ()
        if not entries:
            return (GLOBAL,) if self._global is not None and self._global.enabled else ()
        out: list[str] = []
        for entry in entries:
            if entry.accepts(alert.severity):
                ref = str(
                    ProviderRef(entry.provider_namespace or canary.namespace, entry.provider_name)
                )
                if ref not in out:
                    out.append(ref)
        return tuple(out)

    def settled(self, key: str, destination: str) -> bool:
        """Whether this process is done with one destination of a recorded alert."""
        return (key, destination) in self._settled

    async def deliver(self, canary: Canary, pending: PendingAlert) -> None:
        """Deliver a recorded alert to each destination it is owed and this process has not
        sent or queued yet; returns at once and never raises."""
        try:
            if self._state.closed:
                return  # it stays in the status for the next controller
            alert = alert_from_record(pending.kind, pending.alert)
            for destination in pending.destinations:
                ident = (pending.key, destination)
                if ident in self._in_flight or ident in self._settled:
                    continue
                if alert is None:
                    self._unknown_kind(canary, pending, destination)
                    continue
                job = _Job(
                    canary,
                    alert,
                    destination,
                    self._via(canary, destination),
                    pending.key,
                    durable=True,
                    created=_time(pending.created),
                )
                if self._enqueue(job):
                    self._in_flight.add(ident)
        except Exception:  # never fail a pass because of a notification
            log.exception("could not queue notification %s", pending.kind)

    async def notify(self, canary: Canary, alert: Alert, *, key: str | None = None) -> None:
        """Queue ``alert`` (not recorded anywhere) and return at once; never raises."""
        try:
            if self._state.closed:
                log.warning(
                    "notification %s for %s/%s dropped: the notifier is closed",
                    alert.kind.value,
                    canary.namespace,
                    canary.name,
                )
                return
            for destination in self.destinations(canary, alert):
                job = _Job(
                    canary, alert, destination, self._via(canary, destination), key, False, None
                )
                self._enqueue(job)
        except Exception:  # never fail a tick because of a notification
            log.exception("could not queue notification %s", alert.kind.value)

    async def wait_idle(self, within: float) -> bool:
        """Wait until every queued alert was delivered or reported; False after ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                await self._state.idle.wait()
                while self._callbacks:
                    await asyncio.gather(*list(self._callbacks), return_exceptions=True)
        except TimeoutError:
            return False
        return True

    async def aclose(self, grace: float = 10.0) -> None:
        """Stop accepting alerts, deliver what is queued within ``grace`` seconds, then stop.

        Recorded alerts still queued then stay in the Canaries' status: the next controller
        delivers them. The others are counted as failed.
        """
        if self._state.closed and not self._lanes:
            return
        self._state.closed = True
        drained = await self.wait_idle(grace)
        undelivered: list[_Job] = []
        if not drained:
            for lane in self._lanes.values():
                known = lane.provider_type
                if lane.current is not None:
                    undelivered.append(lane.current)
                    known = lane.current.provider_type
                while not lane.queue.empty():
                    job = lane.queue.get_nowait()
                    job.provider_type = known
                    undelivered.append(job)
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._lanes.clear()
        if self._callbacks:  # a removal from the status under way: let it land if it can
            await asyncio.wait(list(self._callbacks), timeout=2.0)
        if undelivered:
            kept = sum(1 for job in undelivered if job.durable)
            for job in undelivered:
                if not job.durable:
                    self._record(job.provider_type, DeliveryOutcome.FAILED)
            log.warning(
                "notifier closed with %d notification(s) not delivered "
                "(%d stay pending in the Canaries' status for the next start)",
                len(undelivered),
                kept,
            )
        for task in list(self._callbacks):
            task.cancel()
        await asyncio.gather(*list(self._callbacks), return_exceptions=True)
        if self._own_clients:
            await self._clients.aclose()

    # ------------------------------------------------------------------- queueing

    def _via(self, canary: Canary, destination: str) -> str:
        if destination == GLOBAL:
            return GLOBAL
        analysis = canary.spec.analysis
        for index, entry in enumerate(analysis.alerts if analysis is not None else ()):
            ref = ProviderRef(entry.provider_namespace or canary.namespace, entry.provider_name)
            if str(ref) == destination:
                return f"alerts[{index}] {entry.name}"
        return f"AlertProvider {destination}"

    def _first_time(self, job: _Job, provider: ResolvedProvider) -> bool:
        """``notify(key=...)``: a key is sent once per destination (a failure releases it)."""
        if job.key is None or job.durable:
            return True
        ident = (job.key, job.destination)
        if ident in self._seen:
            self._seen.move_to_end(ident)
            self._record(provider.type, DeliveryOutcome.DUPLICATE)
            log.debug(
                "duplicate notification %s to %s dropped", job.alert.kind.value, provider.describe()
            )
            return False
        self._seen[ident] = None
        while len(self._seen) > self._dedupe_capacity:
            self._seen.popitem(last=False)
        return True

    def _enqueue(self, job: _Job) -> bool:
        lane = self._lanes.get(job.destination)
        if lane is None:
            lane = _Lane(queue=asyncio.Queue(maxsize=self._queue_size))
            self._lanes[job.destination] = lane
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(
                self._run_lane(lane), name=f"notifications-{job.destination}"
            )
        job.queued = asyncio.get_running_loop().time()
        try:
            lane.queue.put_nowait(job)
        except asyncio.QueueFull:
            if job.durable:
                log.warning(
                    "notification %s for %s/%s waits in the status: the queue of %s is full",
                    job.alert.kind.value,
                    job.canary.namespace,
                    job.canary.name,
                    job.via,
                )
            else:
                self._release(job)
                self._record(UNROUTED, DeliveryOutcome.FAILED)
                self._report(
                    job.canary,
                    job.alert,
                    f"notification {job.alert.kind.value} dropped: the notification queue is full",
                )
            return False
        self._add_pending(1)
        return True

    def _add_pending(self, count: int) -> None:
        self._state.pending += count
        if self._state.pending > 0:
            self._state.idle.clear()

    def _done(self) -> None:
        self._state.pending -= 1
        if self._state.pending <= 0:
            self._state.pending = 0
            self._state.idle.set()

    # ------------------------------------------------------------------ delivery

    async def _run_lane(self, lane: _Lane) -> None:
        while True:
            job = await lane.queue.get()
            lane.current = job
            try:
                if not self._left_for_the_next(job):
                    await self._deliver(job)
                lane.provider_type = job.provider_type
            except Exception as exc:
                self._failed(job, f"{job.via}: unexpected {type(exc).__name__} while sending")
            finally:
                lane.current = None
                self._done()

    def _left_for_the_next(self, job: _Job) -> bool:
        """Once closing, a recorded alert is not tried (again): it stays in the status and
        the next controller sends it, instead of this one and the next both sending it."""
        if not (job.durable and self._state.closed):
            return False
        if job.key is not None:
            self._in_flight.discard((job.key, job.destination))
        return True

    async def _deliver(self, job: _Job) -> None:
        provider = await self._provider(job)
        if provider is None:
            return
        if not self._first_time(job, provider):
            return
        job.provider_type = provider.type
        redact = http_redactor((provider.address, provider.token, provider.proxy))
        context = RenderContext(
            now=job.created or self._clock(), cluster=self._cluster, commit_link=self._commit_link
        )
        try:
            sender = make_sender(provider)
            request = sender.render(job.alert, context)
        except NotifierConfigError as exc:
            self._failed(job, redact(f"{provider.describe()} is invalid: {exc}"))
            return
        except Exception as exc:
            self._failed(
                job, f"{provider.describe()}: could not render the message ({type(exc).__name__})"
            )
            return
        await self._post(job, sender, request)

    async def _provider(self, job: _Job) -> ResolvedProvider | None:
        """The job's destination, read again after a transient error within the budget;
        None when it failed for good (reported)."""
        if job.destination == GLOBAL:
            provider = self._global.provider() if self._global is not None else None
            if provider is None:
                self._failed(job, "global: the global notifier is not configured")
            return provider
        namespace, _, name = job.destination.partition("/")
        ref = ProviderRef(namespace, name)
        loop = asyncio.get_running_loop()
        attempts = 0
        while True:
            attempts += 1
            found = await self._lookup(ref)
            if found.provider is not None:
                return found.provider
            delay = backoff_delay(
                attempts - 1, base=self._retry.base_delay, cap=self._retry.max_delay
            )
            if (
                not found.retriable
                or self._retry.exhausted(attempts)
                or loop.time() + delay - job.queued > self._retry.give_up_after
            ):
                self._failed(job, f"{job.via}: {found.problem}")
                return None
            log.info("%s; reading it again in %.3gs", found.problem, delay)
            await asyncio.sleep(delay)
            if self._left_for_the_next(job):
                return None

    async def _lookup(self, ref: ProviderRef) -> _Lookup:
        if self._resolve is None:
            return _Lookup(problem=f"AlertProvider {ref} cannot be read: no resolver configured")
        try:
            async with asyncio.timeout(self._resolve_timeout):
                provider = await self._resolve(ref)
        except NotifierConfigError as exc:
            return _Lookup(problem=f"AlertProvider {ref} is invalid: {exc}")
        except TimeoutError:
            return _Lookup(
                problem=f"AlertProvider {ref} could not be read within {self._resolve_timeout:g}s",
                retriable=True,
            )
        except Exception as exc:
            return _Lookup(
                problem=f"AlertProvider {ref} could not be read ({type(exc).__name__})",
                retriable=True,
            )
        if provider is None:
            return _Lookup(problem=f"AlertProvider {ref} not found")
        return _Lookup(provider)

    def _pace(self, sender: Sender) -> _Pace:
        address = sender.resolved.destination_id
        pace = self._paces.get(address)
        if pace is None:
            interval = self._pacing.get(sender.provider_type, sender.min_interval)
            pace = self._paces[address] = _Pace(interval)
        return pace

    async def _post(self, job: _Job, sender: Sender, request: OutgoingRequest) -> None:
        loop = asyncio.get_running_loop()
        policy = self._retry
        provider = sender.resolved
        timeout = (
            provider.provider.timeout_seconds if provider.provider.timeout_seconds > 0 else 5.0
        )
        client = self._clients.get(proxy=provider.proxy)
        redact = sender.redactor()
        pace = self._pace(sender)
        attempts = 0
        while True:
            async with pace.lock:
                wait = pace.next_allowed - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                attempts += 1
                last = await self._attempt(client, sender, request, timeout, redact)
                pace.next_allowed = loop.time() + pace.min_interval
            if last.problem is None:
                self._sent(job, provider, attempts)
                return
            if last.retry_after is not None:
                delay = min(last.retry_after, policy.max_retry_after)
            else:
                delay = backoff_delay(attempts - 1, base=policy.base_delay, cap=policy.max_delay)
            if (
                not last.retriable
                or policy.exhausted(attempts)
                or loop.time() + delay - job.queued > policy.give_up_after
            ):
                break
            log.info(
                "notification %s to %s failed (%s); retrying in %.3gs",
                job.alert.kind.value,
                provider.describe(),
                last.problem,
                delay,
            )
            # The pause holds the whole address: a 429 applies to every message to it.
            pace.next_allowed = max(pace.next_allowed, loop.time() + delay)
            if self._left_for_the_next(job):
                return
        if last.retriable:
            plural = "s" if attempts != 1 else ""
            what = f"gave up after {attempts} attempt{plural}: {last.problem}"
        else:
            what = f"rejected: {last.problem}"
        self._failed(job, redact(f"{provider.describe()}: {what}"))

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        sender: Sender,
        request: OutgoingRequest,
        limit: float,
        redact: Redactor,
    ) -> _Attempt:
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
        problem = sender.failure(status, response.content)
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

    def _sent(self, job: _Job, provider: ResolvedProvider, attempts: int) -> None:
        self._record(job.provider_type, DeliveryOutcome.SENT)
        log.debug(
            "notification %s sent to %s (attempt %d)",
            job.alert.kind.value,
            provider.describe(),
            attempts,
        )
        self._settle(job, DeliveryOutcome.SENT)

    def _failed(self, job: _Job, reason: str) -> None:
        """A delivery failed for good: count it, report it, and settle a recorded one."""
        self._release(job)
        self._record(job.provider_type, DeliveryOutcome.FAILED)
        self._report(job.canary, job.alert, reason)
        self._settle(job, DeliveryOutcome.FAILED)

    def _release(self, job: _Job) -> None:
        if job.key is not None and not job.durable:
            self._seen.pop(
                (job.key, job.destination), None
            )  # a later identical alert may try again

    def _settle(self, job: _Job, outcome: DeliveryOutcome) -> None:
        if not job.durable or job.key is None:
            return
        ident = (job.key, job.destination)
        self._in_flight.discard(ident)
        self._settled[ident] = outcome
        while len(self._settled) > self._dedupe_capacity:
            self._settled.popitem(last=False)
        on_settled = self._on_settled
        if on_settled is not None:
            self._callback(
                lambda: on_settled(job.canary, ident[0], ident[1], outcome),
                SETTLED_CALLBACK_SECONDS,
            )

    def _unknown_kind(self, canary: Canary, pending: PendingAlert, destination: str) -> None:
        ident = (pending.key, destination)
        self._settled[ident] = DeliveryOutcome.FAILED
        self._record(UNROUTED, DeliveryOutcome.FAILED)
        message = (
            f"Notification {pending.kind or '(no kind)'} for {canary.name}.{canary.namespace} "
            "failed: this version of the controller does not know the alert kind"
        )
        log.warning("%s", message)
        if self._on_settled is not None:
            on_settled = self._on_settled
            self._callback(
                lambda: on_settled(canary, pending.key, destination, DeliveryOutcome.FAILED),
                SETTLED_CALLBACK_SECONDS,
            )

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
        if self._on_failure is not None:
            on_failure = self._on_failure
            self._callback(lambda: on_failure(canary, alert, message), 10.0)

    def _callback(self, call: Callable[[], Awaitable[None] | None], limit: float) -> None:
        try:
            result = call()
        except Exception:
            log.exception("a notification callback failed")
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(_guarded(result, limit))
            self._callbacks.add(task)
            task.add_done_callback(self._callbacks.discard)


async def _guarded(result: Awaitable[None], limit: float) -> None:
    try:
        async with asyncio.timeout(limit):
            await result
    except Exception:
        log.exception("a notification callback failed")


def _time(text: str) -> datetime | None:
    try:
        return parse_time(text) if text else None
    except ValueError:
        return None


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
