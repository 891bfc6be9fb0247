"""`controller()`: a `CanaryController` wired with every fake, in one call."""

from __future__ import annotations

from dataclasses import dataclass

from canary.adapters.workloads import WorkloadOptions
from canary.controller.metrics import Metrics
from canary.controller.reconcile import CanaryController
from canary.model import API_VERSION, CanaryStatus
from canary.ports import Obj
from canary.settings import Settings
from canary.testing.fakes import (
    FakeAnalyzer,
    FakeEvents,
    FakeLeader,
    FakeNotifier,
    FakeReverter,
    FakeRevisions,
    FakeRouter,
    FakeRouters,
    FakeServices,
    FakeWebhooks,
    FakeWorkloads,
)
from canary.testing.kube import FakeKube

__all__ = ["Fakes", "controller"]


@dataclass(frozen=True)
class Fakes:
    """Every fake a `CanaryController` from `controller` was built with."""

    kube: FakeKube
    workloads: FakeWorkloads
    services: FakeServices
    routers: FakeRouters
    webhooks: FakeWebhooks
    notifier: FakeNotifier
    analyzer: FakeAnalyzer
    reverter: FakeReverter
    revisions: FakeRevisions
    events: FakeEvents
    leader: FakeLeader
    metrics: Metrics
    settings: Settings

    def router(self, provider: str | None = None) -> FakeRouter:
        """The router of ``provider`` (default: the settings' default provider)."""
        return self.routers[provider or self.settings.default_provider]

    def canary(self, name: str, namespace: str) -> Obj:
        """The Canary as stored now (AssertionError if it does not exist)."""
        obj = self.kube.peek(API_VERSION, "Canary", name, namespace)
        assert obj is not None, f"Canary {namespace}/{name} does not exist"
        return obj

    def status(self, name: str, namespace: str) -> CanaryStatus:
        """The stored status of a Canary, parsed."""
        return CanaryStatus.from_dict(self.canary(name, namespace).get("status"))


def controller(
    *objects: Obj,
    settings: Settings | None = None,
    kube: FakeKube | None = None,
    post_events: bool = False,
) -> tuple[CanaryController, Fakes]:
    """A controller over fakes only, with ``objects`` already in the cluster.

    ``post_events``: also write core/v1 Events to the fake cluster (see `FakeEvents`).
    """
    kube = kube or FakeKube()
    kube.seed(*objects)
    settings = settings or Settings(identity="canary-testing")
    fakes = Fakes(
        kube=kube,
        workloads=FakeWorkloads(kube, WorkloadOptions.of(settings)),
        services=FakeServices(kube, selector_labels=settings.selector_labels),
        routers=FakeRouters(),
        webhooks=FakeWebhooks(),
        notifier=FakeNotifier(),
        analyzer=FakeAnalyzer(),
        reverter=FakeReverter(),
        revisions=FakeRevisions(),
        events=FakeEvents(kube, post=post_events),
        leader=FakeLeader(),
        metrics=Metrics(),
        settings=settings,
    )
    built = CanaryController(
        kube=fakes.kube,
        workloads=fakes.workloads,
        services=fakes.services,
        routers=fakes.routers,
        webhooks=fakes.webhooks,
        notifier=fakes.notifier,
        analyzer=fakes.analyzer,
        reverter=fakes.reverter,
        revisions=fakes.revisions,
        events=fakes.events,
        leader=fakes.leader,
        metrics=fakes.metrics,
        settings=settings,
    )
    return built, fakes
