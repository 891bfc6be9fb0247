"""`canary run`: the operator process.

kopf supplies the watch machinery and the event loop; this module wires the
adapters into a `CanaryController`, registers the kopf handlers (watch events
only: the per-canary jobs of `scheduler` do the work, so no kopf finalizer or
progress annotation lands on user objects), elects a leader among replicas,
serves /metrics, /healthz and /readyz, and shuts down cleanly on SIGTERM.

Nothing here knows about the sandbox: the same code runs against any API server
reachable through a kubeconfig or the pod's service account.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from canary.adapters.analysis import MetricAnalyzer
from canary.adapters.kube import KubeClient, connect
from canary.adapters.routers import ServiceRouter, make_router
from canary.adapters.webhooks import HttpWebhookCaller
from canary.adapters.workloads import WorkloadOptions, Workloads
from canary.controller.events import EventRecorder
from canary.controller.gitops import GitOpsWiring
from canary.controller.leader import AlwaysLeader, LeaderElector
from canary.controller.metrics import Metrics
from canary.controller.notify import build_notifier
from canary.controller.reconcile import CanaryController, Settings
from canary.controller.scheduler import Scheduler
from canary.model import API_GROUP
from canary.ports import Router

log = logging.getLogger("canary.operator")

VERSION = "v1beta1"
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
REQUIRED_CRDS = ("canaries", "metrictemplates", "alertproviders", "gitsources")


class OperatorError(Exception):
    """A reason the operator cannot start, meant for the person running it."""


@dataclass
class OperatorOptions:
    namespace: str | None = None  # None: every namespace
    kubeconfig: str | None = None
    context: str | None = None
    default_provider: str = "kubernetes"
    metrics_server: str = "http://prometheus:9090"
    listen_host: str = "0.0.0.0"
    listen_port: int = 8080
    leader_election: bool = False
    leader_namespace: str | None = None
    identity: str = field(default_factory=lambda: default_identity(os.environ))
    cluster_name: str = ""
    event_webhook: str | None = None
    git_cache: Path = field(
        default_factory=lambda: Path(os.environ.get("CANARY_GIT_CACHE", "/tmp/canary-engine/git"))
    )
    git_author_name: str = "canary-engine"
    git_author_email: str = "canary-engine@users.noreply.local"
    selector_labels: tuple[str, ...] = ("app", "name", "app.kubernetes.io/name")
    include_label_prefixes: tuple[str, ...] = ("*",)
    config_tracking: bool = True
    ingress_annotations_prefix: str = "nginx.ingress.kubernetes.io"
    lease_seconds: float = 15.0
    lease_renew_seconds: float = 5.0
    time_scale: float = 1.0  # demos and tests: every interval multiplied by this
    notifier_flags: dict[str, str] = field(default_factory=dict)  # slack_url, msteams_url, ...
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def default_identity(environ: Mapping[str, str]) -> str:
    """Unique per process: two replicas on one host must not share a Lease identity."""
    base = environ.get("POD_NAME") or socket.gethostname()
    return f"{base}_{uuid.uuid4().hex[:8]}"


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
            + ". Install them with: kubectl apply -f crds/ (or kubectl apply -k deploy/base)"
        )


@dataclass
class Runtime:
    """Everything the handlers need, kept in kopf's memo."""

    kube: KubeClient
    controller: CanaryController
    scheduler: Scheduler
    leader: LeaderElector | AlwaysLeader
    metrics: Metrics
    closers: list[Any]
    gitops: GitOpsWiring
    ready: bool = False


async def build_runtime(options: OperatorOptions, kube: KubeClient) -> Runtime:
    metrics = Metrics(provider=options.default_provider, version=_version())
    webhooks = HttpWebhookCaller(
        event_webhook_url=options.event_webhook or options.environ.get("EVENT_WEBHOOK_URL")
    )

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
    routers: dict[str, Router] = {}

    def router_for(provider: str) -> Router:
        if provider not in routers:
            routers[provider] = make_router(
                provider, kube, ingress_annotations_prefix=options.ingress_annotations_prefix
            )
        return routers[provider]

    if options.leader_election:
        leader: LeaderElector | AlwaysLeader = LeaderElector(
            kube,
            namespace=options.leader_namespace
            or options.environ.get("POD_NAMESPACE")
            or options.namespace
            or "default",
            identity=options.identity,
            lease_seconds=options.lease_seconds,
            renew_seconds=options.lease_renew_seconds,
        )
    else:
        leader = AlwaysLeader()
    controller = CanaryController(
        kube=kube,
        workloads=Workloads(
            kube,
            WorkloadOptions(
                selector_labels=options.selector_labels,
                include_label_prefixes=options.include_label_prefixes,
                config_tracking=options.config_tracking,
            ),
        ),
        services=ServiceRouter(kube, selector_labels=options.selector_labels),
        routers=router_for,
        webhooks=webhooks,
        notifier=notifier,
        analyzer=MetricAnalyzer(
            kube, default_address=options.metrics_server, default_provider=options.default_provider
        ),
        reverter=gitops.reverter,
        revisions=gitops.revisions,
        events=events,
        leader=leader,
        metrics=metrics,
        settings=Settings(
            default_provider=options.default_provider, cluster_name=options.cluster_name
        ),
    )
    scheduler = Scheduler(
        controller.run_pass,
        time_scale=options.time_scale,
        on_lateness=metrics.lateness.observe,
        on_count=lambda namespace, count: metrics.total.labels(namespace).set(count),
    )
    return Runtime(
        kube=kube,
        controller=controller,
        scheduler=scheduler,
        leader=leader,
        metrics=metrics,
        closers=[webhooks, notifier, gitops],
        gitops=gitops,
    )


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("canary-engine")
    except Exception:  # pragma: no cover - running from a bare checkout
        return "dev"


def register(registry: kopf.OperatorRegistry, runtime: Runtime, options: OperatorOptions) -> None:
    @kopf.on.startup(registry=registry)
    async def _configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False  # we post our own Events (aggregated, reason Synced)
        settings.scanning.disabled = True
        settings.networking.request_timeout = 60
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.persistence.finalizer = "canary.gitops.dev/kopf"

    in_cluster = options.kubeconfig is None and os.path.exists(SERVICE_ACCOUNT_TOKEN)

    @kopf.on.login(registry=registry)
    async def _login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        if in_cluster:
            return kopf.login_with_service_account(**kwargs)
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.cleanup(registry=registry)
    async def _cleanup(**_: Any) -> None:
        # Stop our own tasks inside kopf's shutdown, or kopf waits for them.
        runtime.ready = False
        await runtime.scheduler.stop()
        await runtime.gitops.stop()

    @kopf.on.event(API_GROUP, VERSION, "canaries", registry=registry)
    async def _canary_event(
        *, type: str, name: str, namespace: str | None, body: kopf.Body, **_: Any
    ) -> None:
        if namespace is None:
            return
        if type == "DELETED":
            await runtime.scheduler.forget(
                namespace, name, str(body.get("metadata", {}).get("uid") or "")
            )
        else:
            runtime.scheduler.seen(namespace, name, dict(body))

    @kopf.on.event(API_GROUP, VERSION, "gitsources", registry=registry)
    async def _gitsource_event(
        *, type: str, name: str, namespace: str | None, body: kopf.Body, **_: Any
    ) -> None:
        if namespace is None:
            return
        if type == "DELETED":
            await runtime.gitops.forget(namespace, name)
        else:
            runtime.gitops.seen(namespace, name, dict(body), runtime.leader)


async def serve_health(runtime: Runtime, host: str, port: int) -> web.AppRunner:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(runtime.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        if not runtime.ready:
            return web.Response(status=503, text="starting")
        return web.Response(text="ready")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def run_operator(options: OperatorOptions, *, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or `stop` is set)."""
    if options.kubeconfig:
        os.environ["KUBECONFIG"] = options.kubeconfig
    kube = await connect(options.kubeconfig, options.context)
    runtime: Runtime | None = None
    health: web.AppRunner | None = None
    try:
        await check_crds(kube)
        runtime = await build_runtime(options, kube)
        health = await serve_health(runtime, options.listen_host, options.listen_port)
        runtime.leader.start()
        registry = kopf.OperatorRegistry()
        register(registry, runtime, options)
        runtime.ready = True
        stop_flag: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        watcher = None
        if stop is not None:

            async def relay() -> None:
                await stop.wait()
                if not stop_flag.done():
                    stop_flag.set_result(None)

            watcher = asyncio.create_task(relay())
        log.info(
            "canary-engine %s watching %s",
            _version(),
            f"namespace {options.namespace}" if options.namespace else "all namespaces",
        )
        await kopf.operator(
            registry=registry,
            standalone=True,
            namespaces=[options.namespace] if options.namespace else [],
            clusterwide=options.namespace is None,
            # Only a real flag: kopf waits 5 s on SIGTERM for a waiter of an unset one.
            stop_flag=stop_flag if stop is not None else None,
            memo=kopf.Memo(runtime=runtime),
        )
        if watcher is not None:
            watcher.cancel()
    finally:
        if runtime is not None:
            runtime.ready = False
            await runtime.scheduler.stop()
            await runtime.gitops.stop()
            await runtime.leader.stop()
            for closer in runtime.closers:
                with contextlib.suppress(Exception):
                    await closer.aclose()
        if health is not None:
            await health.cleanup()
        await kube.aclose()
