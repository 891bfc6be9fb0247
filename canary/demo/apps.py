"""The application side of ``canary demo``: one real HTTP process per role, behaving like its image.

The sandbox has no kubelet and no containers, so the demo plays them. Two demo-app
processes (``canary/demo/demoapp.py``) serve every request the traffic generator
routes: one plays the pods of ``podinfo-primary``, the other the pods of ``podinfo`` (the
canary). :class:`VersionFollower` watches the image of each Deployment and reconfigures
the process that plays it (``POST /admin/config``), so "the pods run their image": after a
promotion the primary process behaves like v2, and while v3 is analysed the canary process
fails 5% of its requests. :class:`ForwardingBackend` is the traffic generator's backend:
it sends each request to the process of the version the routing chose, over HTTP.

Prometheus scrapes both processes with the target labels the HTTP observer's built-in
queries select on: ``kubernetes_namespace`` and ``kubernetes_pod_name``. A process serves
every pod of its Deployment, so its label is a fixed pod-like name of the right shape
(``podinfo-demoapp-1`` for the canary, ``podinfo-primary-demoapp-1`` for the primary),
which keeps each series continuous across rollouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from canary.ports import Kube, KubeError

from .prometheus import ScrapeTarget, parent_death_prefix, stop_process
from .traffic import TrafficRequest, Version

__all__ = [
    "BEHAVIOURS",
    "Behaviour",
    "DemoAppProcess",
    "ForwardingBackend",
    "VersionFollower",
    "behaviour_for",
    "image_tag",
]

DEMOAPP = Path(__file__).resolve().parent / "demoapp.py"


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What a version of the demo application does."""

    error_rate: float  # probability of a 500
    latency_ms: float  # median latency (log-normal)
    description: str


BEHAVIOURS: Mapping[str, Behaviour] = {
    "v1": Behaviour(0.0, 30.0, "healthy"),
    "v2": Behaviour(0.0, 25.0, "healthy, a little faster"),
    "v3": Behaviour(0.05, 40.0, "fails 5% of requests"),
}
UNKNOWN = Behaviour(0.0, 30.0, "unknown image: behaves like v1")


def image_tag(image: str) -> str:
    """``registry/podinfo:v2`` -> ``v2`` (``latest`` without a tag; digests kept whole)."""
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return name.split("@", 1)[1]
    return name.split(":", 1)[1] if ":" in name else "latest"


def behaviour_for(image: str) -> tuple[str, Behaviour]:
    tag = image_tag(image)
    return tag, BEHAVIOURS.get(tag, UNKNOWN)


class DemoAppProcess:
    """One ``demoapp.py`` process on a free loopback port, playing all pods of a Deployment."""

    def __init__(
        self,
        role: Version,
        *,
        deployment: str,
        namespace: str,
        pod_label: str,
        log_path: Path,
        version: str = "v1",
        seed: int | None = None,
    ) -> None:
        self.role = role
        self.deployment = deployment
        self.namespace = namespace
        self.pod_label = pod_label
        self.log_path = log_path
        self.version = version
        self.seed = seed
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def scrape_target(self) -> ScrapeTarget:
        return ScrapeTarget(
            f"127.0.0.1:{self.port}",
            {
                "kubernetes_namespace": self.namespace,
                "kubernetes_pod_name": self.pod_label,
                "role": self.role,
            },
        )

    async def start(self, timeout: float = 15.0) -> DemoAppProcess:
        behaviour = BEHAVIOURS.get(self.version, UNKNOWN)
        args = [
            # KILL, not TERM: the app's SIGTERM handler can deadlock (it starts a thread from
            # the handler), and when the demo is gone nobody would escalate to SIGKILL.
            *parent_death_prefix("KILL"),
            sys.executable, str(DEMOAPP),
            "--host", "127.0.0.1", "--port", "0",
            "--version", self.version,
            "--namespace", self.namespace, "--workload", self.deployment,
            "--error-rate", str(behaviour.error_rate),
            "--latency-ms", str(behaviour.latency_ms),
            "--latency-sigma", "0.3",
            *(["--seed", str(self.seed)] if self.seed is not None else []),
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            line = b""
        text = line.decode(errors="replace").strip()
        if "listening on http://" not in text:
            await self.stop()
            raise RuntimeError(
                f"the demo app for {self.deployment} did not start: {text or 'no output'} "
                f"(see {self.log_path})"
            )
        self.port = int(text.rsplit(":", 1)[1])
        return self

    async def configure(self, version: str, behaviour: Behaviour) -> None:
        """Make the process behave like ``version`` from now on."""
        async with httpx.AsyncClient(timeout=5.0) as client:
            r = await client.post(
                f"{self.url}/admin/config",
                json={"errorRate": behaviour.error_rate, "latencyMs": behaviour.latency_ms},
            )
            r.raise_for_status()
        self.version = version

    async def stop(self) -> None:
        if self.proc is not None:
            await stop_process(self.proc, timeout=5.0)


class VersionFollower:
    """Keeps each process behaving like the image its Deployment runs now."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        processes: Mapping[str, DemoAppProcess],
        *,
        on_change: Callable[[DemoAppProcess, str, str, Behaviour], None] | None = None,
        interval: float = 0.25,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.processes = dict(processes)  # Deployment name -> process
        self.on_change = on_change
        self.interval = interval
        self.images: dict[str, str] = {}

    async def sync_once(self) -> None:
        for deployment, process in self.processes.items():
            try:
                obj = await self.kube.get("apps/v1", "Deployment", deployment, self.namespace)
            except KubeError:
                continue
            containers = (((obj or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
            images = [str(c.get("image", "")) for c in containers.get("containers") or ()]
            if not images or images[0] == self.images.get(deployment):
                continue
            version, behaviour = behaviour_for(images[0])
            previous = process.version
            try:
                await process.configure(version, behaviour)
            except httpx.HTTPError:
                continue  # try again on the next round
            self.images[deployment] = images[0]
            if self.on_change is not None and version != previous:
                self.on_change(process, previous, version, behaviour)

    async def run(self) -> None:
        while True:
            await self.sync_once()
            await asyncio.sleep(self.interval)


class ForwardingBackend:
    """The traffic generator's backend: each request goes to the process of its version."""

    def __init__(self, processes: Mapping[Version, DemoAppProcess]) -> None:
        self.processes = dict(processes)
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    async def __call__(self, version: Version, pod: str, request: TrafficRequest) -> int | None:
        process = self.processes[version]
        headers = {"Host": request.host, "X-Pod": pod}
        response = await self.client.get(f"{process.url}{request.path}", headers=headers)
        return response.status_code

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.aclose()
