"""Every metric provider, once end to end: a canary promoted on good numbers, rolled back on bad.

One operator (``canary run`` as a process) drives one canary per provider side by side in
the sandbox. Each canary's only metric is a MetricTemplate of its provider, pointed at that
vendor's loopback stand-in (``tests/vendors``), which checks what the real service checks
(the path, the parameters, the credentials in their header, the signature) and answers in
the vendor's documented shapes. Three releases follow:

1. the services report a good number: every canary is promoted;
2. they report a bad one: every canary is rolled back, and its status names the metric;
3. they refuse the credentials (HTTP 401/403 with the vendor's error body): every canary is
   rolled back for the errors, the Events say the credentials were refused, and no
   credential of any Secret reaches an Event, the status or the operator's log.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from canary.adapters.kube import KubeClient
from canary.model.convert import convert_document
from kubesandbox import SandboxThread
from tests.e2e.support import (
    CANARY_API,
    OperatorProcess,
    canary_manifest,
    deployment_manifest,
    eventually,
    start_operator,
)
from tests.vendors import Failure, VendorServer
from tests.vendors.keptn import KeptnMetrics

pytestmark = pytest.mark.slow

NS = "default"
GOOD, BAD = 0.5, 5.0  # the metric must stay at or below 1
OUTER = 120.0
# Secret keys that hold credentials (others hold an account id, a project, an org).
CREDENTIAL_WORDS = (
    "key",
    "token",
    "password",
    "secret",
)  # generous outer limit of every wait: the condition ends it
# One module per hosted service in tests/vendors, each with one VendorServer subclass.
VENDOR_MODULES = (
    "datadog",
    "newrelic",
    "dynatrace",
    "cloudwatch",
    "stackdriver",
    "graphite",
    "influxdb",
    "splunk",
    "web",
    "externalmetrics",
)
# What each vendor answers to credentials it does not know, as its documentation shows.
REFUSALS: dict[str, Failure] = {
    "datadog": Failure(403, {"errors": ["Forbidden"]}),
    "newrelic": Failure(401, {"error": "Invalid query key"}),
    "dynatrace": Failure(401, {"error": {"code": 401, "message": "Token Authentication failed"}}),
    "cloudwatch": Failure(
        403,
        {"__type": "InvalidClientTokenId", "message": "The security token included is invalid"},
    ),
    "stackdriver": Failure(
        401, {"error": {"code": 401, "message": "Request had invalid credentials"}}
    ),
    "graphite": Failure(401, "Unauthorized", content_type="text/plain"),
    "influxdb": Failure(401, {"code": "unauthorized", "message": "unauthorized access"}),
    "splunk": Failure(401, {"code": 401, "message": "Unauthorized"}),
    "web": Failure(401, {"message": "bad token"}),
    # Behind the API server's aggregation layer: the adapter refuses the controller's user.
    "externalmetrics": Failure(
        403,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": "Forbidden",
            "code": 403,
            "message": "external metrics are forbidden to this user",
        },
    ),
}
# What the Events say when the credentials are refused (default: "refused the credentials").
REFUSED_WORDS = {"externalmetrics": "refused to let the controller read"}


def vendor_classes() -> list[type[VendorServer]]:
    found = []
    for name in VENDOR_MODULES:
        module = importlib.import_module(f"tests.vendors.{name}")
        [cls] = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type)
            and issubclass(obj, VendorServer)
            and obj is not VendorServer
            and obj.__module__ == module.__name__
        ]
        found.append(cls)
    return found


@pytest.fixture
async def vendors() -> AsyncIterator[list[VendorServer]]:
    servers = [await cls().start() for cls in vendor_classes()]
    try:
        yield servers
    finally:
        await asyncio.gather(*(s.close() for s in servers))


def converted(template: dict[str, Any]) -> dict[str, Any]:
    """A Flagger MetricTemplate as `canary convert` makes it ours (the sandbox serves ours)."""
    doc, _ = convert_document(template)
    return dict(doc)


def user_template(server: VendorServer, name: str) -> dict[str, Any]:
    """The server's MetricTemplate with ``{{ target }}`` and ``{{ namespace }}`` in its query.

    The stand-ins write their queries for given names; a user's template names no canary,
    so the controller's rendering is part of what runs here.
    """
    text = server.query("tgtmark", "nsmark")
    text = text.replace("tgtmark", "{{ target }}").replace("nsmark", "{{ namespace }}")
    template = server.metric_template(server.type, NS, name)  # the names it will be asked for
    template["spec"]["query"] = text
    return converted(template)


def one_metric(type_: str) -> dict[str, Any]:
    """The analysis of a canary whose only metric is the MetricTemplate named ``type_``."""
    metric = {
        "name": f"{type_}-errors",
        "templateRef": {"name": type_},
        "thresholdRange": {"max": 1},
        "interval": "1m",
    }
    return {"interval": "10s", "threshold": 2, "iterations": 2, "metrics": [metric]}


class Named:
    """A participant by its provider type alone (keptn has no server)."""

    def __init__(self, type_: str) -> None:
        self.type = type_


def app(server: VendorServer | Named) -> str:
    return f"app-{server.type}"


async def states(kube: KubeClient, names: list[str]) -> dict[str, tuple[str, str]]:
    """Each canary's (phase, lastAppliedSpec): the spec says which release the phase is about."""
    found = {}
    for name in names:
        obj = await kube.get(CANARY_API, "Canary", name, NS)
        status = (obj or {}).get("status") or {}
        found[name] = (str(status.get("phase") or ""), str(status.get("lastAppliedSpec") or ""))
    return found


async def all_in(kube: KubeClient, names: list[str], phase: str) -> dict[str, str] | None:
    seen = {name: p for name, (p, _) in (await states(kube, names)).items()}
    return seen if all(p == phase for p in seen.values()) else None


async def release(
    kube: KubeClient, servers: list[VendorServer | Named], image: str, phase: str, what: str
) -> None:
    """Roll ``image`` out to every participant; wait until each canary ended this release in
    ``phase``. A phase alone would not do: the previous release may have ended in the same
    one, so each canary must also have moved on to a new ``lastAppliedSpec``."""
    names = [app(s) for s in servers]
    before = {name: spec for name, (_, spec) in (await states(kube, names)).items()}
    for server in servers:
        template = deployment_manifest(app(server), NS, image)["spec"]["template"]
        await kube.patch("apps/v1", "Deployment", app(server), NS, {"spec": {"template": template}})
    last: dict[str, tuple[str, str]] = {}

    async def ended() -> dict[str, tuple[str, str]] | None:
        nonlocal last
        last = await states(kube, names)
        done = all(p == phase and spec != before[n] for n, (p, spec) in last.items())
        return last if done else None

    try:
        await eventually(ended, timeout=OUTER, what=what)
    except AssertionError:
        behind = [n for n, (p, spec) in last.items() if p != phase or spec == before[n]]
        messages = {n: await status_message(kube, n) for n in behind}
        for n in behind:
            deployment = await kube.get("apps/v1", "Deployment", n, NS) or {}
            messages[n] += (
                f" deployment: generation {deployment.get('metadata', {}).get('generation')}, "
            )
            messages[n] += f"status {json.dumps(deployment.get('status'))}"
        shown = {
            n: p + (" (previous release)" if spec == before[n] else "")
            for n, (p, spec) in last.items()
        }
        raise AssertionError(f"{what}: {shown}; {json.dumps(messages, indent=1)}") from None


async def status_message(kube: KubeClient, name: str) -> str:
    obj = await kube.get(CANARY_API, "Canary", name, NS)
    status = (obj or {}).get("status") or {}
    return json.dumps({"message": status.get("message"), "analysis": status.get("analysis")})


async def event_messages(kube: KubeClient, name: str) -> list[str]:
    return [
        str(e.get("message"))
        for e in await kube.list("v1", "Event", NS)
        if (e.get("involvedObject") or {}).get("name") == name
    ]


async def test_every_provider_promotes_on_good_numbers_and_rolls_back_on_bad_ones(
    cluster: SandboxThread,
    kube: KubeClient,
    tmp_path: Path,
    operators: list[OperatorProcess],
    vendors: list[VendorServer],
) -> None:
    credentials: list[str] = []
    for server in vendors:
        for obj in getattr(server, "registration", list)():
            cluster.apply_manifest(obj)
    keptn = KeptnMetrics()
    for obj in keptn.manifests(NS):
        cluster.apply_manifest(obj)
    cluster.apply_manifest(deployment_manifest("app-keptn", NS, "podinfo:6.0.0"))
    cluster.apply_manifest(converted(keptn.metric_template("keptn", NS, "app-keptn")))
    cluster.apply_manifest(canary_manifest("app-keptn", NS, one_metric("keptn")))
    await keptn.set_value(kube, NS, GOOD)
    for server in vendors:
        name = app(server)
        cluster.apply_manifest(deployment_manifest(name, NS, "podinfo:6.0.0"))
        secret = server.secret(server.type, NS)
        if secret is not None:
            cluster.apply_manifest(secret)
            credentials += [
                value
                for key, value in secret["stringData"].items()
                if any(word in key.lower() for word in CREDENTIAL_WORDS)
            ]
        cluster.apply_manifest(user_template(server, name))
        cluster.apply_manifest(canary_manifest(name, NS, one_metric(server.type)))
        server.answer(GOOD)
    start_operator(cluster, tmp_path, operators)
    names = [app(s) for s in vendors] + ["app-keptn"]
    await eventually(
        lambda: all_in(kube, names, "Initialized"),
        timeout=OUTER,
        what="every canary to initialize",
    )

    everyone: list[VendorServer | Named] = [*vendors, Named("keptn")]
    await release(kube, everyone, "podinfo:6.0.1", "Succeeded", "every canary to be promoted")
    for server in vendors:
        sent = [str(r.query) + r.body.decode(errors="replace") for r in server.requests]
        # The query reached the service rendered for this canary.
        assert any(app(server) in text for text in sent), (server.type, sent[-1:])

    for server in vendors:
        server.answer(BAD)
    await keptn.set_value(kube, NS, BAD)
    await release(kube, everyone, "podinfo:6.0.2", "Failed", "every canary to be rolled back")
    for who in everyone:
        message = await status_message(kube, app(who))
        assert f"{who.type}-errors" in message, (who.type, message)

    for server in vendors:
        server.fail_with(REFUSALS[server.type])
    await keptn.set_error(kube, NS, "prometheus provider: connection refused")
    await release(
        kube, everyone, "podinfo:6.0.3", "Failed", "every canary to be rolled back for errors"
    )
    leaks = []
    logs = "\n".join(op.output() for op in operators)
    for server in vendors:
        words = REFUSED_WORDS.get(server.type, "refused the credentials")

        async def refused(name: str = app(server), words: str = words) -> list[str] | None:
            found = await event_messages(kube, name)
            return found if any(words in e for e in found) else None

        events = await eventually(refused, timeout=OUTER, what=f"{server.type}: {words!r}")
        seen = "\n".join(events) + await status_message(kube, app(server)) + logs
        leaks += [(server.type, c[:4]) for c in credentials if c in seen]
    assert leaks == []

    async def keptn_refused() -> list[str] | None:
        found = await event_messages(kube, "app-keptn")
        return found if any("connection refused" in e for e in found) else None

    await eventually(keptn_refused, timeout=OUTER, what="keptn: 'connection refused'")
