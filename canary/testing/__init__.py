"""Fakes of every port of the controller, for tests of a reconcile pass without a cluster.

In the spirit of kopf.testing and of Flagger's controller tests (``fake`` clientsets
under the real controllers): each fake is in-memory, typed, satisfies its Protocol
(mypy checks an assignment to the port type in each module), records what it was
asked, and can be told to fail. `controller` builds a `CanaryController` wired with
all of them::

    ctl, fakes = canary.testing.controller(deployment(), canary_manifest())
    await ctl.run_pass("test", "podinfo")
    assert fakes.status("podinfo", "test").phase is Phase.INITIALIZING

The fakes, what they emulate, and what they do not:

`FakeKube` (`canary.ports.Kube`)
    An in-memory API server: objects by (apiVersion, kind, namespace, name),
    resourceVersion preconditions (`Conflict`), generation, the status subresource,
    finalizers and ``deletionTimestamp``, merge and JSON patches, label and field
    selectors. Calls are recorded as `KubeCall`; `FakeKube.fail` injects errors;
    `FakeKube.before` lets a test write between the controller's read and its write.
    Not emulated: admission and validation, apply's field ownership, garbage
    collection, watches, and every controller (no pods, no Deployment status).
`FakeWorkloads` (`canary.ports.Workloads`)
    The real `canary.adapters.workloads.KubeWorkloads` over the same kube, so the primary,
    its promotion and the target's scaling are the operator's own objects. Readiness
    is what the test says (`FakeWorkloads.set_readiness`; ready by default), since no
    Deployment controller runs.
`FakeServices` (`canary.ports.Services`)
    The real `ServiceRouter` over the same kube: ``<svc>``, ``<svc>-primary`` and
    ``<svc>-canary`` as the operator writes them.
`FakeRouter`, `FakeRouters` (`canary.ports.Router` and the ``routers`` factory)
    Weights in memory per Canary, for any provider: created at 100/0 by ``reconcile``,
    read back by ``get_routes``, validated like the real routers (`RouterError`).
    No routing objects are written (each provider's router has its own tests).
`FakeWebhooks` (`canary.ports.WebhookCaller`)
    Answers by hook name (yes by default; a rollback hook says no). No HTTP.
`FakeNotifier` (`canary.ports.Notifier`)
    Keeps the alerts. No providers, rendering or delivery.
`FakeAnalyzer` (`canary.ports.Analyzer`)
    One verdict per metric of the Canary, by name (pass by default). No queries.
`FakeReverter` (`canary.ports.GitReverter`)
    One scripted answer (reverted, by default); keeps the requests. No Git.
`FakeRevisions` (`canary.ports.RevisionSource`)
    The Git revision per Canary as the test sets it; unknown otherwise.
`FakeEvents` (the controller's `EventRecorder`, `canary.ports.EventSink`)
    Keeps every Event in order; writes core/v1 Events only with ``post=True``.
`FakeLeader` (the controller's `Leader`)
    A flag: leading unless the test steps it down. No Lease.
`FakeClock` (`canary.ports.Clock`)
    Time that moves only when the test moves it; `FakeKube` stamps objects with it.
    (`CanaryController` reads the wall clock itself: status timestamps in a pass are
    real time, so tests here assert no timestamps.)

The controller's `Metrics` are the real ones, on a registry of their own.

Production code never imports this package (an import-linter contract keeps it so).
"""

from __future__ import annotations

from canary.testing.builders import DEFAULT_ANALYSIS, canary_manifest, deployment, set_image
from canary.testing.clock import EPOCH, FakeClock
from canary.testing.fakes import (
    Call,
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
    InjectedError,
    RecordedEvent,
    Recorder,
)
from canary.testing.kube import ANY, FakeKube, Key, KubeCall, merge_patch
from canary.testing.wiring import Fakes, controller

__all__ = [
    "ANY",
    "DEFAULT_ANALYSIS",
    "EPOCH",
    "Call",
    "FakeAnalyzer",
    "FakeClock",
    "FakeEvents",
    "FakeKube",
    "FakeLeader",
    "FakeNotifier",
    "FakeReverter",
    "FakeRevisions",
    "FakeRouter",
    "FakeRouters",
    "FakeServices",
    "FakeWebhooks",
    "FakeWorkloads",
    "Fakes",
    "InjectedError",
    "Key",
    "KubeCall",
    "RecordedEvent",
    "Recorder",
    "canary_manifest",
    "controller",
    "deployment",
    "merge_patch",
    "set_image",
]
