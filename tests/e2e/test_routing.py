"""Traffic routing end to end: the real operator walks the weights on every provider.

Issue 4's second and third "Done when", checked the way a user would see them:

* A Canary on each provider (``kubernetes``, ``nginx``, ``istio``, ``gatewayapi:v1``,
  ``gatewayapi:v1beta1``, ``linkerd``, ``smi:v1alpha1|2|3``) is run by ``canary run``
  against the sandbox. After a new revision, every weight the routing object holds is
  read back with the provider's router (`Router.get_routes`), and the traffic
  generator (`canary.demo.traffic`), which resolves requests through the routing
  objects as the data plane would, sends ``N`` requests against a snapshot of the
  namespace taken while that weight held. The measured canary share must lie within
  four binomial standard deviations of the weight (``4·sqrt(p(1-p)/N)``; exactly 0 or 1
  at the ends), the weights seen must be the spec's schedule, and the run must end
  ``Succeeded`` with the object back at primary 100 / canary 0.

  Measuring never races the controller: the routing object's resourceVersion is read
  before the read-back and after the generator's snapshot, and the snapshot's copy of
  the object must carry that same resourceVersion; a window in which the object
  changed is discarded and measured again. Nor does it race the clock: each weight
  holds until it was measured, through a ``confirm-traffic-increase`` gate (a real
  webhook server) that the test opens for exactly one step after each measurement,
  so a loaded machine slows the run down instead of skipping a weight.

* Invalid combinations (A/B testing on ``kubernetes`` or SMI, mirroring on ``nginx``,
  ``linkerd`` or SMI, ``nginx`` without ``ingressRef``, Gateway API without
  ``gatewayRefs``) get a ``SpecValid=False`` condition and one Warning Event naming
  the field, while the operator keeps running and a valid Canary in the same
  namespace initializes.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from canary.adapters.kube import KubeClient
from canary.adapters.routers import make_router
from canary.core.observations import Routes
from canary.demo.traffic import (
    ApisixEntry,
    ContourEntry,
    Entry,
    GatewayEntry,
    GlooEntry,
    IngressEntry,
    ServiceEntry,
    Snapshot,
    TraefikEntry,
    TrafficGenerator,
    TrafficRequest,
    TrafficWindow,
    Version,
)
from canary.model import parse_canary
from kubesandbox import SandboxThread
from tests.e2e.support import OperatorProcess, eventually
from tests.http_fixtures import RecordingServer, Reply

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NS = "default"
API = "canary.gitops.dev/v1beta1"

TIME_SCALE = 0.1  # a 10 s analysis interval is 1 s: a tick a second
STEP_WEIGHT, MAX_WEIGHT = 25, 50
SCHEDULE = (25, 50)  # the canary weights stepWeight 25 / maxWeight 50 walks through
N = 1000  # requests per measured window
GATE = "/confirm-traffic-increase"  # the gate's path on the test's webhook server
SIGMAS = 4.0
SEED = 20240601

OLD_IMAGE, NEW_IMAGE = "podinfo:6.0.0", "podinfo:6.1.0"
HOST = "app.example.com"


def tolerance(p: float, n: int = N) -> float:
    """Allowed |measured share - p|: SIGMAS binomial standard deviations (0 at p = 0 or 1)."""
    return SIGMAS * math.sqrt(p * (1 - p) / n)


# ============================================================================ providers


@dataclass(frozen=True)
class Setup:
    """What a provider needs in the Canary, where its routing object is, how clients enter."""

    service: dict[str, Any]
    spec: dict[str, Any]
    entry: Entry
    obj: tuple[str, str, str]  # apiVersion, kind, name of the routing object
    generator: dict[str, Any] = field(default_factory=dict)


INGRESS_REF = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"}
GATEWAY_SERVICE = {"gatewayRefs": [{"name": "public-gw"}], "hosts": [HOST]}

SETUPS: dict[str, Setup] = {
    # Plain Services cannot split: the apex always selects the primary.
    "kubernetes": Setup({}, {}, ServiceEntry(NS, "podinfo"), ("v1", "Service", "podinfo")),
    "nginx": Setup(
        {},
        {"ingressRef": INGRESS_REF},
        IngressEntry(NS, "podinfo"),
        ("networking.k8s.io/v1", "Ingress", "podinfo-canary"),
    ),
    "istio": Setup(
        {},
        {},
        ServiceEntry(NS, "podinfo"),
        ("networking.istio.io/v1beta1", "VirtualService", "podinfo"),
    ),
    "gatewayapi:v1": Setup(
        GATEWAY_SERVICE,
        {},
        GatewayEntry(NS, "public-gw", HOST),
        ("gateway.networking.k8s.io/v1", "HTTPRoute", "podinfo"),
    ),
    "gatewayapi:v1beta1": Setup(
        GATEWAY_SERVICE,
        {},
        GatewayEntry(NS, "public-gw", HOST),
        ("gateway.networking.k8s.io/v1beta1", "HTTPRoute", "podinfo"),
        {"gateway_version": "v1beta1"},
    ),
    # GAMMA: the HTTPRoute's parent is the apex Service, clients stay inside the mesh.
    "linkerd": Setup(
        {},
        {},
        ServiceEntry(NS, "podinfo"),
        ("gateway.networking.k8s.io/v1beta1", "HTTPRoute", "podinfo"),
        {"gateway_version": "v1beta1"},
    ),
    **{
        f"smi:{version}": Setup(
            {},
            {},
            ServiceEntry(NS, "podinfo"),
            (f"split.smi-spec.io/{version}", "TrafficSplit", "podinfo"),
            {"smi_version": version},
        )
        for version in ("v1alpha1", "v1alpha2", "v1alpha3")
    },
    # Kuma: a cluster-scoped TrafficRoute splits the apex's kuma.io/service tag.
    "kuma": Setup(
        {}, {}, ServiceEntry(NS, "podinfo"), ("kuma.io/v1alpha1", "TrafficRoute", "podinfo")
    ),
    # OSM: Flagger's SMI v1alpha2 TrafficSplit.
    "osm": Setup(
        {},
        {},
        ServiceEntry(NS, "podinfo"),
        ("split.smi-spec.io/v1alpha2", "TrafficSplit", "podinfo"),
        {"smi_version": "v1alpha2"},
    ),
    # App Mesh: VirtualService -> router -> virtual nodes -> their DNS names (the Services).
    "appmesh": Setup(
        {"meshName": "global"},
        {},
        ServiceEntry(NS, "podinfo"),
        ("appmesh.k8s.aws/v1beta1", "VirtualService", f"podinfo.{NS}"),
    ),
    "appmesh:v1beta2": Setup(
        {}, {}, ServiceEntry(NS, "podinfo"), ("appmesh.k8s.aws/v1beta2", "VirtualRouter", "podinfo")
    ),
    # Contour: the user's root HTTPProxy for the host includes the Canary's HTTPProxy.
    "contour": Setup(
        {}, {}, ContourEntry(NS, HOST), ("projectcontour.io/v1", "HTTPProxy", "podinfo")
    ),
    # Gloo Edge: the user's VirtualService delegates to the RouteTable; the Upstreams copy the
    # settings of the user's Upstream (spec.upstreamRef).
    "gloo": Setup(
        {},
        {"upstreamRef": {"apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "name": "podinfo"}},
        GlooEntry(NS, HOST),
        ("gateway.solo.io/v1", "RouteTable", "podinfo"),
    ),
    # Traefik: the user's IngressRoute -> TraefikService podinfo -> primary/canary Services.
    "traefik": Setup(
        {}, {}, TraefikEntry(NS, HOST), ("traefik.io/v1alpha1", "TraefikService", "podinfo")
    ),
    # APISIX: the clone of the user's ApisixRoute outranks it (priority 10000).
    "apisix": Setup(
        {},
        {
            "routeRef": {
                "apiVersion": "apisix.apache.org/v2",
                "kind": "ApisixRoute",
                "name": "podinfo",
            }
        },
        ApisixEntry(NS, HOST),
        ("apisix.apache.org/v2", "ApisixRoute", "podinfo-podinfo-canary"),
    ),
    # Skipper: the weighted copy of the user's Ingress outranks it (Weight(100)) until False().
    "skipper": Setup(
        {},
        {"ingressRef": INGRESS_REF},
        IngressEntry(NS, "podinfo"),
        ("networking.k8s.io/v1", "Ingress", "podinfo-canary"),
    ),
}


# ============================================================================ manifests


def deployment(name: str = "podinfo", image: str = OLD_IMAGE) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "podinfod", "image": image, "ports": [{"containerPort": 9898}]}
                    ]
                },
            },
        },
    }


def ingress() -> dict[str, Any]:
    """The user's Ingress for nginx: host app.example.com, / -> Service podinfo."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "podinfo",
            "namespace": NS,
            "annotations": {"kubernetes.io/ingress.class": "nginx"},
        },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": HOST,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {
                                    "service": {"name": "podinfo", "port": {"number": 9898}}
                                },
                            }
                        ]
                    },
                }
            ],
        },
    }


def contour_root_proxy() -> dict[str, Any]:
    """The user's root HTTPProxy for contour: host app.example.com, / -> HTTPProxy podinfo."""
    return {
        "apiVersion": "projectcontour.io/v1",
        "kind": "HTTPProxy",
        "metadata": {"name": "podinfo-ingress", "namespace": NS},
        "spec": {
            "virtualhost": {"fqdn": HOST},
            "includes": [{"name": "podinfo", "namespace": NS, "conditions": [{"prefix": "/"}]}],
        },
    }


def gloo_objects() -> list[dict[str, Any]]:
    """The user's Gloo VirtualService (/ delegated to RouteTable podinfo) and the Upstream
    whose connection settings the generated Upstreams copy (spec.upstreamRef)."""
    virtual_service = {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "virtualHost": {
                "domains": [HOST],
                "routes": [
                    {
                        "matchers": [{"prefix": "/"}],
                        "delegateAction": {"ref": {"name": "podinfo", "namespace": NS}},
                    }
                ],
            }
        },
    }
    upstream = {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Upstream",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "kube": {"serviceName": "podinfo", "serviceNamespace": NS, "servicePort": 9898},
            "connectionConfig": {"maxRequestsPerConnection": 51},
        },
    }
    return [virtual_service, upstream]


def traefik_ingress_route() -> dict[str, Any]:
    """The user's IngressRoute for traefik: host app.example.com -> TraefikService podinfo."""
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "IngressRoute",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "entryPoints": ["web"],
            "routes": [
                {
                    "kind": "Rule",
                    "match": f"Host(`{HOST}`) && PathPrefix(`/`)",
                    "services": [{"name": "podinfo", "kind": "TraefikService", "port": 9898}],
                }
            ],
        },
    }


def apisix_route() -> dict[str, Any]:
    """The user's ApisixRoute for apisix: host app.example.com, /* -> Service podinfo."""
    return {
        "apiVersion": "apisix.apache.org/v2",
        "kind": "ApisixRoute",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "http": [
                {
                    "name": "podinfo",
                    "match": {"hosts": [HOST], "paths": ["/*"]},
                    "backends": [{"serviceName": "podinfo", "servicePort": 9898}],
                }
            ]
        },
    }


def skipper_ingress() -> dict[str, Any]:
    """The user's Ingress for skipper: the nginx one, of class skipper."""
    obj = ingress()
    obj["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "skipper"}
    obj["spec"]["ingressClassName"] = "skipper"
    return obj


#: What the user applies besides the Deployment and the Canary, per provider.
USER_OBJECTS: dict[str, list[dict[str, Any]]] = {
    "contour": [contour_root_proxy()],
    "gloo": gloo_objects(),
    "traefik": [traefik_ingress_route()],
    "apisix": [apisix_route()],
    "skipper": [skipper_ingress()],
}


def canary(
    name: str,
    provider: str,
    *,
    service: dict[str, Any] | None = None,
    analysis: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Canary with no metrics (every check passes) on a 10 s interval."""
    return {
        "apiVersion": API,
        "kind": "Canary",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "provider": provider,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898, **(service or {})},
            "analysis": {
                "interval": "10s",
                "threshold": 2,
                **(analysis or {"stepWeight": STEP_WEIGHT, "maxWeight": MAX_WEIGHT}),
            },
            **spec,
        },
    }


# ============================================================================ fixtures


@pytest.fixture
def operator(cluster: SandboxThread, tmp_path: Path) -> Iterator[OperatorProcess]:
    op = OperatorProcess(cluster.kubeconfig_path, tmp_path / "operator.log", time_scale=TIME_SCALE)
    op.start()
    yield op
    # Shutdown is not under test here (the invalid-combinations test stops it gracefully);
    # SIGTERM currently costs 5 s once a Canary was seen (kopf waits for the scheduler's jobs).
    op.kill()
    print(op.output()[-6000:])  # shown by pytest only when the test failed


# ============================================================================ reading


async def status_of(kube: KubeClient, name: str) -> dict[str, Any]:
    obj = await kube.get(API, "Canary", name, NS)
    return dict((obj or {}).get("status") or {})


async def canary_events(kube: KubeClient, name: str) -> list[dict[str, Any]]:
    return [
        e
        for e in await kube.list("v1", "Event", NS)
        if (e.get("involvedObject") or {}).get("kind") == "Canary"
        and (e.get("involvedObject") or {}).get("name") == name
    ]


def resource_version(obj: dict[str, Any] | None) -> str | None:
    return None if obj is None else str((obj.get("metadata") or {}).get("resourceVersion"))


def in_snapshot(
    snapshot: Snapshot, kind: str, name: str, api_version: str = ""
) -> dict[str, Any] | None:
    """The snapshot's copy of the routing object."""
    if kind == "Service":
        return dict(snapshot.services[name]) if name in snapshot.services else None
    if api_version.split("/")[0] in ("kuma.io", "appmesh.k8s.aws"):
        meshes = {
            "TrafficRoute": snapshot.traffic_routes,
            "VirtualService": snapshot.appmesh_services,
            "VirtualRouter": snapshot.appmesh_routers,
        }[kind]
        return next((dict(o) for o in meshes if o["metadata"]["name"] == name), None)
    objects = {
        "Ingress": snapshot.ingresses,
        "VirtualService": snapshot.virtual_services,
        "HTTPRoute": snapshot.http_routes,
        "TrafficSplit": snapshot.traffic_splits,
        "HTTPProxy": snapshot.http_proxies,
        "RouteTable": snapshot.route_tables,
        "TraefikService": snapshot.traefik_services,
        "ApisixRoute": snapshot.apisix_routes,
    }[kind]
    return next((dict(o) for o in objects if o["metadata"]["name"] == name), None)


# ============================================================================ measuring


@dataclass
class Served:
    """A backend that remembers which pods served each version."""

    by: Counter[tuple[Version, str]] = field(default_factory=Counter)

    async def __call__(self, version: Version, pod: str, request: TrafficRequest) -> int | None:
        self.by[(version, pod)] += 1
        return None


@dataclass(frozen=True)
class Measurement:
    routes: Routes
    phase: str
    window: TrafficWindow
    images: dict[Version, frozenset[str]]  # the images of the pods that served each version

    def describe(self) -> str:
        return (
            f"{self.phase} at {self.routes.primary}/{self.routes.canary}: "
            f"canary share {self.window.canary_share:.3f} of {self.window.routed} "
            f"(unrouted {self.window.unrouted}, unavailable {self.window.unavailable}), "
            f"images {dict(self.images)}"
        )


class Observer:
    """Follows a run: the weights the routing object holds, and the split measured at each.

    With a ``gate`` (the webhook server behind the Canary's confirm-traffic-increase hook,
    closed by default), each weight holds until it was measured: the observer then lets
    exactly one gate call through. It opens again only after a later call was refused,
    which proves the opened one was spent; if that call's step did not land, the weight is
    unchanged and measured, so the gate opens again.
    """

    def __init__(
        self, kube: KubeClient, provider: str, setup: Setup, gate: RecordingServer | None = None
    ) -> None:
        self.kube = kube
        self.gate = gate
        self.opened_at: int | None = None  # gate calls seen when it was last opened
        self.provider = provider
        self.setup = setup
        self.router = make_router(provider, kube)
        self.backend = Served()
        self.gen = TrafficGenerator(
            kube, setup.entry, backend=self.backend, seed=SEED, **setup.generator
        )
        self.weights: list[int] = []  # the canary weight each time it changed
        self.measured: dict[tuple[int, str], Measurement] = {}  # (index in weights, phase)
        self.discarded = 0

    async def routes(self) -> tuple[Routes | None, str, str | None]:
        """(routes read back, phase, resourceVersion of the object while they were read)."""
        body = await self.kube.get(API, "Canary", "podinfo", NS)
        assert body is not None
        phase = str((body.get("status") or {}).get("phase") or "")
        spec = parse_canary(body)
        api_version, kind, name = self.setup.obj
        before = resource_version(await self.kube.get(api_version, kind, name, NS))
        routes = await self.router.get_routes(spec)
        after = resource_version(await self.kube.get(api_version, kind, name, NS))
        return routes, phase, (before if before == after else None)

    async def measure(self, routes: Routes, phase: str, version: str) -> Measurement | None:
        """N requests against a snapshot that holds ``routes``; None if the object moved."""
        api_version, kind, name = self.setup.obj
        snapshot = await self.gen.refresh()
        after = resource_version(await self.kube.get(api_version, kind, name, NS))
        if (
            after != version
            or resource_version(in_snapshot(snapshot, kind, name, api_version)) != version
        ):
            self.discarded += 1
            return None
        self.backend.by.clear()
        window = await self.gen.send(N)
        image_of = {
            p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in snapshot.pods
        }
        images: dict[Version, set[str]] = {"primary": set(), "canary": set()}
        for version_, pod in self.backend.by:
            images[version_].add(image_of.get(pod, "?"))
        return Measurement(routes, phase, window, {k: frozenset(v) for k, v in images.items()})

    async def follow(self, *, timeout: float) -> Measurement:
        """Poll until the run has Succeeded and the final state was measured; the last one."""
        deadline = time.monotonic() + timeout
        while True:
            # Counted before the read: a refusal counted here came after any step it follows.
            calls = len(self.gate.requests_to(GATE)) if self.gate is not None else 0
            routes, phase, version = await self.routes()
            if routes is not None:
                if not self.weights or self.weights[-1] != routes.canary:
                    self.weights.append(routes.canary)
                index = len(self.weights) - 1
                key = (index, phase)
                if version is not None and key not in self.measured:
                    measurement = await self.measure(routes, phase, version)
                    if measurement is not None:
                        self.measured[key] = measurement
                        if phase == "Succeeded":
                            return measurement
                if any(i == index for i, _ in self.measured):
                    self.open_gate(calls)
            if time.monotonic() > deadline:
                seen = "\n  ".join(m.describe() for m in self.measured.values())
                raise AssertionError(
                    f"{self.provider}: no Succeeded run within {timeout:g}s; phase {phase!r}, "
                    f"weights {self.weights}, measured:\n  {seen}"
                )
            await asyncio.sleep(0.05)

    def open_gate(self, calls: int) -> None:
        """Let the next gate call through, unless the last opening may be unspent."""
        if self.gate is None:
            return
        # Opened at n calls: call n+1 spends it, call n+2 (refused) proves it was spent.
        if self.opened_at is None or calls >= self.opened_at + 2:
            self.gate.script(GATE, Reply(200, "open"))
            self.opened_at = len(self.gate.requests_to(GATE))


# ============================================================================ tests


class TestWeightsWalkOnEveryProvider:
    @pytest.mark.parametrize("provider", list(SETUPS))
    async def test_measured_split_matches_each_weight_and_the_run_is_promoted(
        self,
        provider: str,
        cluster: SandboxThread,
        kube: KubeClient,
        operator: OperatorProcess,
        recording_server: RecordingServer,
    ) -> None:
        setup = SETUPS[provider]
        cluster.apply_manifest(deployment())
        if provider == "nginx":
            cluster.apply_manifest(ingress())
        for obj in USER_OBJECTS.get(provider, ()):
            cluster.apply_manifest(obj)
        # Plain Services never shift, so they have no step to hold; the others hold each
        # weight at a confirm-traffic-increase gate until the observer has measured it.
        gate = None if provider == "kubernetes" else recording_server
        analysis = None
        if gate is not None:
            gate.default(GATE, Reply(403, "closed"))
            hook = {"name": "measured", "type": "confirm-traffic-increase", "url": gate.url(GATE)}
            analysis = {"stepWeight": STEP_WEIGHT, "maxWeight": MAX_WEIGHT, "webhooks": [hook]}
        cluster.apply_manifest(
            canary("podinfo", provider, service=setup.service, analysis=analysis, **setup.spec)
        )

        async def initialized() -> bool:
            return (await status_of(kube, "podinfo")).get("phase") == "Initialized"

        await eventually(initialized, timeout=30, what=f"{provider}: the canary to initialize")
        observer = Observer(kube, provider, setup, gate)
        start, phase, _ = await observer.routes()
        assert start == Routes(100, 0), (provider, start, phase)

        patch = deployment(image=NEW_IMAGE)["spec"]["template"]
        await kube.patch("apps/v1", "Deployment", "podinfo", NS, {"spec": {"template": patch}})
        final = await observer.follow(timeout=120)  # an outer limit; a quiet run takes ~10 s

        report = "\n  ".join(m.describe() for m in observer.measured.values())
        context = f"{provider}: weights {observer.weights}, measured:\n  {report}"
        # The weights seen are the spec's schedule, then back to the promoted primary;
        # plain Services never shift.
        if provider == "kubernetes":
            assert observer.weights == [0], context
        else:
            assert observer.weights == [0, *SCHEDULE, 0], context
        # Every weight was measured while it held, and the split matched it.
        measured_weights = {index for index, _ in observer.measured}
        assert measured_weights == set(range(len(observer.weights))), context
        for m in observer.measured.values():
            p = m.routes.canary / 100
            window = m.window
            assert window.routed == N, context
            assert window.unrouted == window.unavailable == window.failed == 0, context
            assert abs(window.canary_share - p) <= tolerance(p), (m.describe(), context)
            # The canary Service sends to the new revision's pods only.
            assert m.images["canary"] <= {NEW_IMAGE}, (m.describe(), context)
            if m.phase == "Progressing":
                assert m.images["primary"] == {OLD_IMAGE}, (m.describe(), context)
        # The run ends promoted, routing all traffic to the primary, now on the new image.
        assert final.routes == Routes(100, 0), context
        assert final.window.primary == N and final.images["primary"] == {NEW_IMAGE}, context
        assert any(phase == "Progressing" for _, phase in observer.measured), context
        if gate is not None:  # each step, the promoting one included, passed the gate
            assert len(gate.accepted_to(GATE)) >= len(SCHEDULE) + 1, gate.requests

        events = await canary_events(kube, "podinfo")
        messages = Counter(str(e.get("message")) for e in events)
        # A primary whose rollout outlasts a tick (1 s here, at --time-scale 0.1, on a busy
        # machine) is waited for, with a Warning that says so: a state, not a fault; so is
        # the test's own gate, held closed until a weight was measured.
        waiting = ("not ready: waiting for rollout to finish", "waiting for traffic increase")
        warnings = {
            str(e.get("message"))
            for e in events
            if e.get("type") == "Warning" and not any(w in str(e.get("message")) for w in waiting)
        }
        assert messages[f"Promotion completed! Scaling down podinfo.{NS}"] == 1, messages
        if provider == "kubernetes":
            assert warnings == {
                "Progressive traffic is not supported when using the kubernetes provider",
                "Setting canaryAnalysis.iterations: 10",
            }, messages
        else:
            assert not warnings, messages
            for weight in SCHEDULE:
                assert messages[f"Advance podinfo.{NS} canary weight {weight}"] == 1, messages
            assert messages["Routing all traffic to primary"] == 1, messages


# name -> (provider, extra spec, analysis, the field the error must name)
INVALID: dict[str, tuple[str, dict[str, Any], dict[str, Any] | None, str]] = {
    "ab-on-kubernetes": (
        "kubernetes",
        {},
        {"iterations": 2, "match": [{"headers": {"x-canary": {"exact": "insider"}}}]},
        "spec.analysis.match",
    ),
    "ab-on-smi": (
        "smi:v1alpha3",
        {},
        {"iterations": 2, "match": [{"headers": {"x-canary": {"exact": "insider"}}}]},
        "spec.analysis.match",
    ),
    "mirror-on-nginx": (
        "nginx",
        {"ingressRef": INGRESS_REF},
        {"iterations": 2, "mirror": True},
        "spec.analysis.mirror",
    ),
    "mirror-on-linkerd": ("linkerd", {}, {"iterations": 2, "mirror": True}, "spec.analysis.mirror"),
    "nginx-without-ingress": ("nginx", {}, None, "spec.ingressRef"),
    "gateway-without-refs": ("gatewayapi:v1", {}, None, "spec.service.gatewayRefs"),
}


class TestInvalidCombinations:
    async def test_each_gets_a_condition_and_an_event_naming_the_field_and_others_carry_on(
        self,
        cluster: SandboxThread,
        kube: KubeClient,
        operator: OperatorProcess,
    ) -> None:
        cluster.apply_manifest(ingress())
        for name, (provider, spec, analysis, _) in INVALID.items():
            cluster.apply_manifest(deployment(name))
            cluster.apply_manifest(canary(name, provider, analysis=analysis, **spec))
        cluster.apply_manifest(deployment())
        cluster.apply_manifest(canary("podinfo", "nginx", ingressRef=INGRESS_REF))

        async def spec_invalid(name: str) -> dict[str, Any] | None:
            conditions = (await status_of(kube, name)).get("conditions") or []
            return next(
                (c for c in conditions if c["type"] == "SpecValid" and c["status"] == "False"),
                None,
            )

        async def valid_initialized() -> bool:
            return (await status_of(kube, "podinfo")).get("phase") == "Initialized"

        await eventually(valid_initialized, timeout=30, what="the valid canary to initialize")
        for name, (_, _, _, path) in INVALID.items():
            condition = await eventually(
                functools.partial(spec_invalid, name),
                timeout=15,
                what=f"SpecValid=False on {name}",
            )
            assert condition["reason"] == "InvalidSpec", condition
            assert path in condition["message"], (name, condition)
            warnings = [
                e
                for e in await canary_events(kube, name)
                if e.get("type") == "Warning" and path in str(e.get("message"))
            ]
            assert len(warnings) == 1 and warnings[0].get("count", 1) == 1, (name, warnings)
            # Nothing was done to the workload of an invalid Canary.
            assert await kube.get("apps/v1", "Deployment", f"{name}-primary", NS) is None, name
            target = await kube.get("apps/v1", "Deployment", name, NS)
            assert target is not None and target["spec"]["replicas"] == 2, name

        assert operator.proc is not None and operator.proc.poll() is None, operator.output()
        assert "Traceback" not in operator.output(), operator.output()
        assert operator.stop() == 0, operator.output()

    async def test_a_fixed_canary_initializes_and_loses_the_condition(
        self,
        cluster: SandboxThread,
        kube: KubeClient,
        operator: OperatorProcess,
    ) -> None:
        cluster.apply_manifest(deployment())
        cluster.apply_manifest(canary("podinfo", "gatewayapi:v1"))  # no service.gatewayRefs

        async def condition() -> dict[str, Any] | None:
            conditions = (await status_of(kube, "podinfo")).get("conditions") or []
            return next((c for c in conditions if c["type"] == "SpecValid"), None)

        invalid = await eventually(condition, timeout=15, what="SpecValid=False")
        assert invalid["status"] == "False" and "spec.service.gatewayRefs" in invalid["message"]

        refs = {"gatewayRefs": [{"name": "public-gw"}]}
        await kube.patch(API, "Canary", "podinfo", NS, {"spec": {"service": refs}})

        async def initialized() -> dict[str, Any] | None:
            current = await status_of(kube, "podinfo")
            return current if current.get("phase") == "Initialized" else None

        current = await eventually(initialized, timeout=30, what="the fixed canary to initialize")
        route = await kube.get("gateway.networking.k8s.io/v1", "HTTPRoute", "podinfo", NS)
        assert route is not None, "the fixed canary's HTTPRoute"
        assert [p["name"] for p in route["spec"]["parentRefs"]] == ["public-gw"], route
        stale = [
            c
            for c in current.get("conditions") or []
            if c["type"] == "SpecValid" and c["status"] == "False"
        ]
        assert stale == [], "SpecValid=False must go once the spec is fixed"
