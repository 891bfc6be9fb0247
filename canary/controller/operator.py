"""`canary run`: the operator process.

One Kubernetes client for the process (``kubernetes.aio`` behind `canary.adapters.kube`),
watch caches over it (`canary.adapters.cache`) that every adapter reads through, and one
scheduler (`scheduler`) that runs a job per Canary and per GitSource, woken by the caches'
events. This module wires them together, elects a leader among replicas, serves /metrics,
/healthz and /readyz, and shuts down cleanly on SIGTERM or SIGINT.

kopf is not used: the caches already watch every kind a pass reads, so kopf's own watches,
its client and its event loop would be a second copy of the same machinery
(docs/concepts.md records the decision).

Nothing here knows about the sandbox: the same code runs against any API server
reachable through a kubeconfig or the pod's service account.

Start-up, in order: bind ``--listen`` (a port in use is one line, exit 1), load the kubeconfig,
check our CRDs, retrying a server that does not answer (`canary.controller.startup` says what
is transient and what is definite), then wire and run. While it runs, ``/readyz`` is not ready
when one of our CRDs is not served (deleted while running); the watch caches wait for it to
come back and the controller carries on by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from canary.adapters.analysis import MetricAnalyzer
from canary.adapters.cache import CachedKube
from canary.adapters.kube import KubeClient
from canary.adapters.routers import make_router
from canary.adapters.targets import TargetServices, TargetWorkloads
from canary.adapters.webhooks import HttpWebhookCaller
from canary.adapters.workloads import WorkloadOptions
from canary.controller import heap
from canary.controller.events import EventRecorder
from canary.controller.gitops import GitOpsWiring
from canary.controller.leader import AlwaysLeader, LeaderElector
from canary.controller.metrics import Metrics
from canary.controller.notify import build_notifier
from canary.controller.reconcile import CanaryController
from canary.controller.scheduler import JobKind, Scheduler, generation
from canary.controller.startup import OperatorError, connect_api, listen_error, wait_for_api
from canary.controller.targets import TARGET_API_VERSION, TARGET_KINDS, TargetKey, TargetWatch
from canary.model import API_GROUP, API_VERSION
from canary.ports import Router
from canary.settings import Settings

log = logging.getLogger("canary.operator")

#: Our kinds and their CRDs' plurals (the CRD of kind K is ``<plural>.canary.gitops.dev``).
OUR_KINDS = {
    "Canary": "canaries",
    "MetricTemplate": "metrictemplates",
    "AlertProvider": "alertproviders",
    "GitSource": "gitsources",
}
REQUIRED_CRDS = tuple(OUR_KINDS.values())
INSTALL_CRDS = "kubectl apply -f crds/ (or kubectl apply -k deploy/base)"

__all__ = [
    "OUR_KINDS",
    "REQUIRED_CRDS",
    "Health",
    "OperatorError",  # defined in canary.controller.startup, raised here too
    "OperatorOptions",
    "Runtime",
    "build_runtime",
    "check_crds",
    "run_operator",
    "serve_health",
    "watch",
    "watched_namespaces",
]

OperatorOptions = Settings  # the name the first versions used


def watched_namespaces(options: Settings) -> tuple[str, ...] | None:
    """The namespaces to watch, or None for all of them."""
    return options.watched_namespaces


async def check_crds(kube: KubeClient) -> None:
    missing = []
    for plural in REQUIRED_CRDS:
        name = f"{plural}.{API_GROUP}"
        if await kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name) is None:
            missing.append(name)
    if missing:
        raise OperatorError(
            "the CustomResourceDefinitions are not installed: "
            + ", ".join(missing)
            + f". Install them with: {INSTALL_CRDS}"
        )


@dataclass
class Runtime:
    """Everything the running operator holds."""

    kube: CachedKube
    controller: CanaryController
    scheduler: Scheduler
    leader: LeaderElector | AlwaysLeader
    metrics: Metrics
    closers: list[Any]
    gitops: GitOpsWiring
    ready: bool = False


async def build_runtime(options: Settings, kube: CachedKube) -> Runtime:
    metrics = Metrics(
        provider=options.default_provider, version=_version(), flagger=options.flagger_metrics
    )
    webhooks = HttpWebhookCaller(event_webhook_url=options.event_webhook)

    async def forward(canary: Any, event: Any) -> None:
        await webhooks.post_event(canary, event, "", "")

    events = EventRecorder(kube, instance=options.identity, forward=forward)
    notifier = build_notifier(kube, options, events, metrics)
    gitops = GitOpsWiring(
        kube,
        cache_dir=options.git_cache,
        author_name=options.git_author_name,
        author_email=options.git_author_email,
        events=events,
    )
    leader = _leader(options, kube)
    controller = CanaryController(
        kube=kube,
        workloads=TargetWorkloads(kube, WorkloadOptions.of(options)),
        services=TargetServices(kube, selector_labels=options.selector_labels),
        routers=_router_factory(options, kube),
        webhooks=webhooks,
        notifier=notifier,
        analyzer=MetricAnalyzer(
            kube,
            default_address=options.metrics_server,
            default_provider=options.default_provider,
            same_namespace_only=options.no_cross_namespace_refs,
        ),
        reverter=gitops.reverter,
        revisions=gitops.revisions,
        events=events,
        leader=leader,
        metrics=metrics,
        settings=options,
        discovery=kube,
    )
    gitops.leader = leader
    return Runtime(
        kube=kube,
        controller=controller,
        scheduler=_scheduler(options, controller, gitops, metrics),
        leader=leader,
        metrics=metrics,
        closers=[webhooks, notifier, gitops],
        gitops=gitops,
    )


def _leader(options: Settings, kube: CachedKube) -> LeaderElector | AlwaysLeader:
    """A Lease election with --leader-election, else this replica always leads."""
    if not options.leader_election:
        return AlwaysLeader()
    return LeaderElector(
        kube,
        namespace=options.leader_namespace or (options.watched_namespaces or ("default",))[0],
        name=options.leader_election_id,
        identity=options.identity,
        lease_seconds=options.lease_seconds,
        renew_seconds=options.lease_renew_seconds,
    )


def _router_factory(options: Settings, kube: CachedKube) -> Callable[[str], Router]:
    """The router of a provider, made the first time a canary asks for it: most clusters use
    one or two providers, and each router only reads what its provider needs."""
    routers: dict[str, Router] = {}

    def router_for(provider: str) -> Router:
        if provider not in routers:
            routers[provider] = make_router(
                provider,
                kube,
                ingress_annotations_prefix=options.ingress_annotations_prefix,
                ingress_class=options.ingress_class,
                include_label_prefixes=options.include_label_prefixes,
            )
        return routers[provider]

    return router_for


def _scheduler(
    options: Settings, controller: CanaryController, gitops: GitOpsWiring, metrics: Metrics
) -> Scheduler:
    """One scheduler for both kinds. Canaries present at startup are spread over their
    first interval; a GitSource is woken early only by a new spec, not by our status writes."""
    return Scheduler(
        {
            "Canary": JobKind(
                controller.run_pass,
                first_delay=_canary_interval,
                run_woken=controller.run_woken_pass,
            ),
            "GitSource": JobKind(gitops.job_pass, fingerprint=generation),
        },
        time_scale=options.time_scale,
        max_concurrent=options.max_concurrent_passes,
        on_lateness=metrics.lateness.observe,
        on_count=metrics.set_total,
    )


def _canary_interval(body: Mapping[str, Any]) -> float:
    from canary.controller.reconcile import body_interval

    return body_interval(body)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("canary-engine")
    except Exception:  # pragma: no cover - running from a bare checkout
        return "dev"


def watch(runtime: Runtime) -> TargetWatch:
    """Feed the scheduler from the caches: every Canary and GitSource event, and the new
    pod templates of the Canaries' targets (`canary.controller.targets`), heard from the
    Deployment and DaemonSet informers the passes start (none is started for it)."""
    scheduler = runtime.scheduler
    targets = _target_watch(runtime)

    async def canary_event(kind: str, obj: dict[str, Any]) -> None:
        targets.canary_event(kind, obj)
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        if not namespace:
            return
        if kind == "DELETED":
            await scheduler.forget(namespace, name, str(meta.get("uid") or ""))
            target = ((obj.get("spec") or {}).get("targetRef") or {}).get("name") or name
            runtime.metrics.forget(name, namespace, str(target))
        else:
            scheduler.seen(namespace, name, obj)

    async def gitsource_event(kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        if not namespace:
            return
        if kind == "DELETED":
            await scheduler.forget(namespace, name, str(meta.get("uid") or ""), kind="GitSource")
        else:
            scheduler.seen(namespace, name, obj, kind="GitSource")

    runtime.kube.listen(API_VERSION, "Canary", canary_event)
    runtime.kube.listen(API_VERSION, "GitSource", gitsource_event)
    return targets


def _target_watch(runtime: Runtime) -> TargetWatch:
    """The index of the Canaries' targets, following (not starting) their informers."""
    kube = runtime.kube

    def peek(target: TargetKey) -> Mapping[str, Any] | None:
        kind, namespace, name = target
        return kube.peek(TARGET_API_VERSION, kind, name, namespace)

    targets = TargetWatch(runtime.scheduler.wake, peek)
    for kind in TARGET_KINDS:
        kube.listen(TARGET_API_VERSION, kind, targets.listener(kind), start=False)
    return targets


@dataclass
class Health:
    """What /healthz and /readyz answer, from the first second of the process on."""

    state: str = "starting: connecting to the API server"
    runtime: Runtime | None = None

    def live(self) -> tuple[bool, str]:
        """Alive once wired (a startup probe waits for it), and from then on."""
        if self.runtime is None:
            return False, self.state
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        """Ready once wired, unless one of our CRDs is not served (deleted while running)."""
        runtime = self.runtime
        if runtime is None or not runtime.ready:
            return False, self.state
        missing = [
            f"the CustomResourceDefinition {OUR_KINDS.get(i.kind, i.kind.lower())}.{API_GROUP} "
            f"is not installed ({i.kind} is not served); install it: {INSTALL_CRDS}"
            for i in runtime.kube.not_served(API_GROUP)
        ]
        if missing:
            return False, "not ready: " + "; ".join(missing)
        return True, "ready"


async def serve_health(health: Health, host: str, port: int) -> web.AppRunner:
    """/metrics, /healthz and /readyz on ``host:port``; OperatorError when it cannot bind."""

    async def metrics(_: web.Request) -> web.Response:
        runtime = health.runtime
        # In a thread: at 10,000 Canaries a scrape is half a million lines, seconds of
        # work that would otherwise hold up every pass due meanwhile.
        body = await asyncio.to_thread(runtime.metrics.exposition) if runtime is not None else b""
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def answer(state: tuple[bool, str]) -> web.Response:
        ok, text = state
        return web.Response(status=200 if ok else 503, text=text)

    async def healthz(_: web.Request) -> web.Response:
        return answer(health.live())

    async def readyz(_: web.Request) -> web.Response:
        return answer(health.ready())

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise listen_error(host, port, exc) from None
    return runner


@contextlib.contextmanager
def _stop_on_signals(stopping: asyncio.Event, *, install: bool) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stopping`` while the operator runs (when ``install``)."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if install else ()
    for signum in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stopping.set)
    try:
        yield
    finally:
        for signum in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)


async def run_operator(options: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or `stop` is set). OperatorError, with one line for the
    person running it, when it cannot start."""
    stopping = stop or asyncio.Event()
    health = Health()
    with _stop_on_signals(stopping, install=stop is None):
        site = await serve_health(health, options.listen_host, options.listen_port)
        try:
            client = await connect_api(options)
            try:
                health.state = f"starting: checking the CRDs at {client.host}"
                if await wait_for_api(
                    client.host,
                    lambda: check_crds(client),
                    timeout=options.startup_timeout,
                    stopping=stopping,
                ):
                    await _run(options, client, health, stopping)
            finally:
                await client.aclose()
        finally:
            await site.cleanup()


async def _run(
    options: Settings, client: KubeClient, health: Health, stopping: asyncio.Event
) -> None:
    """Wire the operator over ``client`` and run it until ``stopping`` is set."""
    kube = CachedKube(
        client,
        namespaces=watched_namespaces(options),
        canary_selector=options.watch_label_selector,
    )
    runtime: Runtime | None = None
    untime_gc: Callable[[], None] | None = None
    heap_keeper: asyncio.Task[None] | None = None
    try:
        runtime = await build_runtime(options, kube)
        untime_gc = runtime.metrics.time_gc()
        health.runtime = runtime
        runtime.leader.start()
        watch(runtime)
        runtime.ready = True
        scope = watched_namespaces(options)
        log.info(
            "canary-engine %s watching %s%s",
            _version(),
            f"namespaces {', '.join(scope)}" if scope else "all namespaces",
            f" (Canaries matching {options.watch_label_selector})"
            if options.watch_label_selector
            else "",
        )
        if not await kube.wait_synced(timeout=120.0):
            log.warning("the caches did not finish their first listing within 120s; going on")
        runtime.scheduler.starting = False
        heap.settle()
        heap_keeper = asyncio.create_task(heap.keep_heap(), name="heap")
        await stopping.wait()
        log.info("stopping")
    finally:
        if runtime is not None:
            runtime.ready = False
            await runtime.scheduler.stop()
            # The notifier finishes (or abandons) its in-flight post while this replica still
            # holds the lease: the next leader must not resend a message whose removal from
            # status.pendingAlerts has not landed yet.
            for closer in runtime.closers:
                with contextlib.suppress(Exception):
                    await closer.aclose()
            await runtime.leader.stop()
        if heap_keeper is not None:
            heap_keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heap_keeper
        gc.unfreeze()  # an operator run in-process (a test, the demo) leaves no frozen heap
        if untime_gc is not None:
            untime_gc()
        await kube.aclose()
