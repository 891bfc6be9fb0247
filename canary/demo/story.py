"""``canary demo``: the whole progressive-delivery loop on one machine, played start to end.

People (and CI) need to see canary-engine work before they own a cluster with a mesh, a
Prometheus and a GitOps setup, so this module assembles all of it locally, with real
processes wherever the product talks to something:

* the sandbox API server and workload simulator (in a thread of this process), with the
  CRDs applied;
* a real Prometheus (Debian's package) scraping two demo-app processes, one playing the
  primary's pods and one the canary's, each behaving like the image its Deployment runs;
* a traffic generator that routes requests by the HTTPRoute canary-engine writes;
* a bare Git repository with the demo manifests (``examples/demo``) and a GitSource for it;
* the controller itself, ``canary run``, as a subprocess (as users run it);
* a Slack-compatible receiver that prints every message it gets.

Then it plays: v2 (healthy) is committed and promoted step by step; v3 (5% errors) is
committed, fails its analysis, is rolled back, and canary-engine reverts its commit in Git,
after which the GitSource converges the cluster back to v2. The terminal shows the live
state; the end is a summary with ``git log`` and the timings (and, with ``--summary``, a
JSON file with the same facts, which the end-to-end test reads). Every process is stopped
on exit, on Ctrl-C and on SIGTERM; ``--keep`` leaves everything running until Ctrl-C.

Run it as ``canary demo`` (``python -m canary.cli demo`` without the installed script): the
command's options are declared once, on the CLI, which calls :func:`demo_command`; this
module never imports the CLI back.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import typer
import yaml
from rich.console import Console

from canary.adapters.kube import KubeClient, connect
from canary.errors import CanaryError
from canary.ports import KubeError
from kubesandbox import SandboxThread

from .apps import BEHAVIOURS, Behaviour, DemoAppProcess, ForwardingBackend, VersionFollower
from .git import Commit, DemoGitError, DemoRepository
from .prometheus import (
    Prometheus,
    PrometheusError,
    PrometheusNotInstalled,
    log_tail,
    parent_death_prefix,
    spawn_logged,
    stop_process,
)
from .slack import SlackMessage, SlackReceiver
from .traffic import GatewayEntry, TrafficGenerator
from .ui import DemoView, EventLine, Reporter, event_lines, make_reporter

__all__ = ["DemoError", "DemoOptions", "DemoStopped", "Pace", "demo_command", "run_demo"]

T = TypeVar("T")

NAMESPACE = "demo"
CANARY = "podinfo"
GITSOURCE = "demo"
GATEWAY = "public"
HOST = "podinfo.demo.local"
API = "canary.gitops.dev/v1beta1"
MANIFEST = "deploy/podinfo.yaml"
MARKER = ".canary-demo"
ERROR_WINDOW = 10  # seconds: the success rate's interval in examples/demo/deploy/canary.yaml
ROLLBACK_KINDS = ("Regression", "ThresholdReached")  # the judge's, or two failed checks
GIT_INSTALL = "sudo apt-get install -y --no-install-recommends git"

EXIT_FAILED = 1
EXIT_SETUP = 2
EXIT_INTERRUPTED = 130


def rollback_reason(status: Mapping[str, Any], revision: str) -> tuple[bool, str]:
    """Why the run of ``revision`` was rolled back, from ``status.analysisHistory``: right
    (True) only when every failing verdict was the success rate failing on errors; a run
    rolled back on NoData or a query Error failed for the wrong reason."""
    runs = [
        r
        for r in status.get("analysisHistory") or ()
        if isinstance(r, Mapping) and r.get("revision") == revision
    ]
    failing: list[tuple[str, str, object]] = []
    for run in runs[-1:]:
        for tick in run.get("ticks") or ():
            for v in tick.get("verdicts") or ():
                if v.get("outcome") in ("Fail", "NoData", "Error") and not v.get("advisory"):
                    failing.append((str(v.get("name")), str(v.get("outcome")), v.get("value")))
    if not failing:
        return False, "no failed check recorded for its run"
    right = all(
        name == "request-success-rate" and outcome == "Fail" for name, outcome, _ in failing
    )
    shown = "; ".join(
        f"{name} {outcome}" + (f" at {value:g}" if isinstance(value, int | float) else "")
        for name, outcome, value in failing[-3:]
    )
    return right, ("on its error rate: " if right else "for the wrong reason: ") + shown


class DemoStopped(CanaryError):
    """A signal (SIGTERM, SIGHUP) stopped the demo; everything it started was stopped too."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


class DemoError(CanaryError):
    """The demo could not continue; the message says what and where to look."""

    def __init__(self, message: str, *, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Pace:
    """How fast the demo plays."""

    time_scale: float  # the controller's --time-scale (10 s analysis interval x this)
    speed: float  # the sandbox's simulation speed (Pods ready after 1 s / speed)
    rate: float  # requests per second from the traffic generator
    warmup: float  # seconds v1 serves alone before v2 is committed
    pause: float  # seconds between the end of v2 and the commit of v3
    timeout: float  # limit for each stage (initialization, promotion, rollback, revert)


NORMAL = Pace(time_scale=1.0, speed=2.0, rate=40.0, warmup=8.0, pause=6.0, timeout=240.0)
FAST = Pace(time_scale=0.4, speed=5.0, rate=50.0, warmup=3.0, pause=2.0, timeout=120.0)


@dataclass
class DemoOptions:
    fast: bool = False
    keep: bool = False
    port: int = 0
    workdir: Path = Path(".demo")
    summary: Path | None = None
    live: bool | None = None  # None: a live panel on a terminal, plain lines otherwise


@dataclass
class Milestones:
    """Monotonic times of what happened (None until it happens)."""

    v2_commit: float | None = None
    v2_started: float | None = None
    v2_promoted: float | None = None
    v3_commit: float | None = None
    v3_started: float | None = None
    v3_rolled_back: float | None = None
    reverted: float | None = None
    converged: float | None = None

    @staticmethod
    def span(start: float | None, end: float | None) -> float | None:
        return None if start is None or end is None else round(end - start, 2)


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _find_dir(*candidates: Path, what: str) -> Path:
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise DemoError(
        f"cannot find {what} (looked in {', '.join(str(c) for c in candidates)})", code=EXIT_SETUP
    )


def crd_files() -> list[Path]:
    here = Path(__file__).resolve().parent.parent
    base = _find_dir(_repo_root() / "crds", here / "_data" / "crds", what="the CRDs")
    return sorted(base.glob("*.yaml")) + sorted((base / "routers").glob("*.yaml"))


def example_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    return _find_dir(
        _repo_root() / "examples" / "demo",
        here / "_data" / "examples" / "demo",
        what="the demo manifests (examples/demo)",
    )


def prepare_workdir(workdir: Path) -> Path:
    """An empty working directory; a previous demo's directory is cleared, anything else refused."""
    workdir = workdir.resolve()
    if workdir.exists():
        if not workdir.is_dir():
            raise DemoError(f"--workdir {workdir} exists and is not a directory", code=EXIT_SETUP)
        entries = list(workdir.iterdir())
        if entries and not (workdir / MARKER).exists():
            raise DemoError(
                f"--workdir {workdir} is not empty and was not made by canary demo; "
                "choose another directory or remove it",
                code=EXIT_SETUP,
            )
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("made by canary demo; cleared by the next run\n")
    (workdir / "logs").mkdir()
    return workdir


def _revision(commit: Commit | str) -> str:
    sha = commit.sha if isinstance(commit, Commit) else commit
    return f"main@sha1:{sha}"


def _route_weights(route: Mapping[str, Any] | None) -> tuple[int, int] | None:
    if not route:
        return None
    rules = (route.get("spec") or {}).get("rules") or []
    if not rules:
        return None
    weights = {
        str(b.get("name")): int(b.get("weight", 1)) for b in rules[0].get("backendRefs") or ()
    }
    primary, canary = weights.get(f"{CANARY}-primary", 0), weights.get(f"{CANARY}-canary", 0)
    total = primary + canary
    if total <= 0:
        return None
    canary_pct = round(100 * canary / total)
    return 100 - canary_pct, canary_pct


class Operator:
    """``canary run`` as a subprocess, its output in a log file."""

    def __init__(self, args: list[str], log_path: Path, health_url: str) -> None:
        self.args = args
        self.log_path = log_path
        self.health_url = health_url
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def log_tail(self, lines: int = 25) -> str:
        return log_tail(self.log_path, lines)

    async def start(self, timeout: float = 60.0) -> None:
        drop = ("KUBECONFIG", "EVENT_WEBHOOK_URL", "SLACK_", "MSTEAMS_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = await spawn_logged([*parent_death_prefix(), *self.args], self.log_path, env=env)
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    raise DemoError(
                        f"the controller exited with code {self.proc.returncode}; "
                        f"last lines of {self.log_path}:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self.health_url)).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise DemoError(
            f"the controller was not ready within {timeout:g}s; last lines of {self.log_path}:\n"
            f"{self.log_tail()}"
        )

    def check(self) -> None:
        if self.proc is not None and self.proc.returncode is not None:
            raise DemoError(
                f"the controller exited with code {self.proc.returncode}; "
                f"last lines of {self.log_path}:\n{self.log_tail()}"
            )

    async def stop(self) -> None:
        if self.proc is not None:
            await stop_process(self.proc, timeout=20.0)


@dataclass(frozen=True, slots=True)
class _GitHistory:
    """What the summary tells of the demo repository."""

    oneline: str = ""  # ``git log --oneline``
    commits: tuple[dict[str, str], ...] = ()
    trailers: Mapping[str, list[str]] = field(default_factory=dict)  # of the revert commit


@dataclass
class Demo:
    options: DemoOptions
    console: Console
    pace: Pace = field(init=False)
    view: DemoView = field(default_factory=DemoView)
    times: Milestones = field(default_factory=Milestones)
    commits: dict[str, Commit] = field(default_factory=dict)
    slack_messages: list[SlackMessage] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)
    phases: list[tuple[float, str, str]] = field(default_factory=list)  # (elapsed, phase, revision)

    def __post_init__(self) -> None:
        self.pace = FAST if self.options.fast else NORMAL
        self.reporter: Reporter = make_reporter(self.view, self.console, live=self.options.live)
        self.workdir = self.options.workdir
        self.background: list[asyncio.Task[None]] = []
        self.kube: KubeClient | None = None
        self.sandbox: SandboxThread | None = None
        self.operator: Operator | None = None
        self.prometheus: Prometheus | None = None
        self.slack: SlackReceiver | None = None
        self.apps: dict[str, DemoAppProcess] = {}
        self.backend: ForwardingBackend | None = None
        self.traffic: TrafficGenerator | None = None
        self.repo: DemoRepository | None = None
        self.canary_obj: dict[str, Any] = {}
        self.target_obj: dict[str, Any] = {}
        self.gitsource_obj: dict[str, Any] = {}
        self._events: dict[str, int] = {}
        self._phase: tuple[str, str] = ("", "")

    # ================================================================= the play

    async def run(self) -> dict[str, Any]:
        self.preflight()
        self.workdir = prepare_workdir(self.options.workdir)
        self.reporter.start()
        try:
            try:
                await self.set_up()
                await self.initialize()
                await self.release_v2()
                await self.release_v3()
            except DemoGitError as exc:
                raise DemoError(f"a git command of the demo failed: {exc}") from None
            except KubeError as exc:
                raise DemoError(f"the sandbox API refused a request of the demo: {exc}") from None
            summary = await self.summarize(ok=True)
        except DemoError as exc:
            summary = await self.summarize(ok=False, error=str(exc))
            self.reporter.summary(summary)
            self.write_summary(summary)
            raise
        self.reporter.summary(summary)
        self.write_summary(summary)
        if self.options.keep:
            await self.keep_running()
        return summary

    def preflight(self) -> None:
        if shutil.which("git") is None:
            raise DemoError(
                f"git is not installed. Install it with:\n    {GIT_INSTALL}", code=EXIT_SETUP
            )
        try:
            Prometheus(self.options.workdir / "prometheus")  # finds the binary, starts nothing
        except PrometheusNotInstalled as exc:
            raise DemoError(str(exc), code=EXIT_SETUP) from None
        self.crds = crd_files()
        self.examples = example_dir()

    async def set_up(self) -> None:
        """Start every part of the play, in the order each needs the ones before it."""
        note = self.reporter.note
        logs = self.workdir / "logs"

        note("Starting the sandbox API server and workload simulator, applying the CRDs")
        self.view.stage = "setting up"
        await self._start_sandbox()
        note("Starting the demo application (one process for the primary, one for the canary)")
        await self._start_apps(logs)
        note("Starting Prometheus (scrape interval 1s)")
        await self._start_prometheus()

        self.slack = SlackReceiver(self.on_slack)
        await self.slack.start()
        note(f"Slack-compatible receiver listening on {self.slack.url}")

        note("Creating the Git repository with podinfo v1")
        self.repo = DemoRepository(self.workdir / "git")
        self.commits["v1"] = await self.repo.create(
            self.examples, "Deploy podinfo v1 with a canary"
        )
        self.view.git_head = self.commits["v1"].sha

        await self.create_cluster_objects()

        note("Starting the controller (canary run)")
        await self._start_operator(logs)
        self._start_background()

    async def _start_sandbox(self) -> None:
        sandbox = SandboxThread(
            port=self.options.port,
            speed=self.pace.speed,
            kubeconfig_path=self.workdir / "kubeconfig",
            crds=self.crds,
        )
        self.sandbox = sandbox  # stopped by close() even if it starts only halfway
        try:
            await asyncio.to_thread(sandbox.start)
        except (RuntimeError, TimeoutError, OSError) as exc:
            cause = exc.__cause__ or exc
            where = f"port {self.options.port}" if self.options.port else "a free port"
            raise DemoError(
                f"cannot start the sandbox API server on {where}: {cause}", code=EXIT_SETUP
            ) from None
        self.kube = await connect(str(sandbox.kubeconfig_path), qps=None)

    async def _start_apps(self, logs: Path) -> None:
        self.apps = {
            f"{CANARY}-primary": DemoAppProcess(
                "primary",
                deployment=f"{CANARY}-primary",
                namespace=NAMESPACE,
                pod_label=f"{CANARY}-primary-demoapp-1",
                log_path=logs / "demoapp-primary.log",
                seed=1,
            ),
            CANARY: DemoAppProcess(
                "canary",
                deployment=CANARY,
                namespace=NAMESPACE,
                pod_label=f"{CANARY}-demoapp-1",
                log_path=logs / "demoapp-canary.log",
                seed=2,
            ),
        }
        try:
            await asyncio.gather(*(app.start() for app in self.apps.values()))
        except RuntimeError as exc:
            raise DemoError(str(exc)) from None
        for app in self.apps.values():
            self.pids[f"demoapp-{app.role}"] = app.pid or 0
            self.view.versions[app.role] = app.version

    async def _start_prometheus(self) -> None:
        self.prometheus = Prometheus(self.workdir / "prometheus", job="demo")
        await self.prometheus.set_targets([a.scrape_target for a in self.apps.values()])
        try:
            await self.prometheus.start()
        except PrometheusError as exc:
            raise DemoError(str(exc)) from None
        self.pids["prometheus"] = self.prometheus.pid or 0

    async def _start_operator(self, logs: Path) -> None:
        """``canary run`` as a process of its own, as an operator would run it."""
        assert self.sandbox is not None and self.prometheus is not None
        listen = f"127.0.0.1:{_free_port()}"
        self.operator = Operator(
            [
                sys.executable,
                "-m",
                "canary.cli",
                "run",
                "--kubeconfig",
                str(self.sandbox.kubeconfig_path),
                "--listen",
                listen,
                "--metrics-server",
                self.prometheus.url,
                "--cluster-name",
                "demo",
                "--time-scale",
                f"{self.pace.time_scale:g}",
                "--git-cache",
                str(self.workdir / "git-cache"),
            ],
            logs / "operator.log",
            f"http://{listen}/readyz",
        )
        await self.operator.start()
        self.pids["operator"] = self.operator.pid or 0

    def _start_background(self) -> None:
        """The tasks that run through the whole play: follow the versions the pods run,
        send traffic through the gateway, and watch the canary."""
        kube = self.kube
        assert kube is not None
        follower = VersionFollower(kube, NAMESPACE, self.apps, on_change=self.on_version_change)
        self.backend = ForwardingBackend({app.role: app for app in self.apps.values()})
        self.traffic = TrafficGenerator(
            kube,
            GatewayEntry(NAMESPACE, GATEWAY, HOST),
            backend=self.backend,
            rate=self.pace.rate,
            seed=7,
        )
        self.background = [
            asyncio.create_task(follower.run(), name="demo:versions"),
            asyncio.create_task(self.traffic.run(), name="demo:traffic"),
            asyncio.create_task(self.monitor(), name="demo:monitor"),
        ]

    async def create_cluster_objects(self) -> None:
        assert self.kube is not None and self.slack is not None and self.repo is not None
        note = self.reporter.note
        kube = self.kube
        namespace = yaml.safe_load((self.examples / "cluster" / "namespace.yaml").read_text())
        await kube.apply(namespace, field_manager="canary-demo", force=True)
        await kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "slack-webhook", "namespace": NAMESPACE},
                "type": "Opaque",
                "data": {"address": base64.b64encode(self.slack.url.encode()).decode()},
            },
            field_manager="canary-demo",
            force=True,
        )
        source = yaml.safe_load((self.examples / "cluster" / "gitsource.yaml").read_text())
        source["spec"]["url"] = self.repo.url
        await kube.apply(source, field_manager="canary-demo", force=True)
        note(
            f"Created namespace {NAMESPACE}, Secret slack-webhook and GitSource {GITSOURCE} "
            f"({self.repo.url}, path deploy, every 2s)"
        )

    async def initialize(self) -> None:
        note = self.reporter.note
        self.view.stage = "v1: initializing"
        note("Waiting for the GitSource to apply v1 and canary-engine to initialize the canary")
        v1 = _revision(self.commits["v1"])
        await self.until(
            lambda: self.view.source_revision == v1,
            "the GitSource to apply v1",
            hint="GitSource status: " + "{gitsource}",
        )
        await self.until(lambda: self.view.phase == "Initialized", "the canary to be initialized")
        assert self.prometheus is not None
        try:
            await self.prometheus.wait_for_targets(
                [a.scrape_target for a in self.apps.values()], timeout=30
            )
        except PrometheusError as exc:
            raise DemoError(str(exc)) from None
        note(
            "podinfo v1 is the primary: all traffic goes to podinfo-primary through the "
            "HTTPRoute canary-engine wrote",
            style="bold green",
        )
        self.view.stage = "v1 serving"
        await self.sleep(self.pace.warmup)

    async def release(self, version: str) -> Commit:
        assert self.repo is not None
        behaviour = BEHAVIOURS[version]
        current = "v1" if version == "v2" else "v2"
        await self.repo.pull()
        await self.repo.edit(MANIFEST, f"image: podinfo:{current}", f"image: podinfo:{version}")
        commit = await self.repo.commit_all(f"Release podinfo {version}")
        self.commits[version] = commit
        self.view.git_head = commit.sha
        self.reporter.note(
            f'Committed {commit.short} "Release podinfo {version}" ({behaviour.description}); '
            "the GitSource applies it within 2s",
            style="bold magenta",
        )
        return commit

    async def release_v2(self) -> None:
        self.view.stage = "v2: analysing (healthy)"
        commit = await self.release("v2")
        self.times.v2_commit = time.monotonic()
        revision = _revision(commit)
        await self.until(lambda: self.run_of(revision) is not None, "the analysis of v2 to start")
        self.times.v2_started = time.monotonic()

        def promoted() -> bool:
            if self.run_of(revision) == "Failed":
                raise DemoError(
                    "v2 (healthy) was rolled back: "
                    + str(self.view.canary.get("message") or "")
                    + self.analysis_text()
                    + self.operator_hint()
                )
            return self.run_of(revision) == "Succeeded"

        await self.until(promoted, "v2 to be promoted")
        self.times.v2_promoted = time.monotonic()
        self.reporter.note(
            f"v2 promoted in {self.times.v2_promoted - self.times.v2_commit:.0f}s after its commit",
            style="bold green",
        )
        await self.wait_slack("Promoted", "the Slack message about the promotion of v2")
        self.view.stage = "v2 serving"
        await self.sleep(self.pace.pause)

    async def clear_canary_window(self) -> None:
        """Wait until v2's canary requests have left the metric window v3 will be judged on.

        The success rate reads the last 10 s of the canary pods' series. Right after a
        promotion that window still holds the previous canary's healthy requests, which
        would dilute v3's errors in its first checks. The first check of a run comes about
        two analysis intervals after the commit, so the window must be clear of all but that
        much; with 10 s windows (and the judge's first window a warm-up, observed, not
        judged) the wait is short or none.
        """
        prometheus = self.prometheus
        assert prometheus is not None
        lead = 2 * 10 * self.pace.time_scale
        window = max(1, round(ERROR_WINDOW - lead))
        label = self.apps[CANARY].pod_label
        query = (
            "sum(increase(http_request_duration_seconds_count{"
            f'kubernetes_namespace="{NAMESPACE}",kubernetes_pod_name="{label}"'
            f"}}[{window}s]))"
        )

        async def canary_requests() -> float:
            try:
                return await prometheus.value(query) or 0.0
            except (PrometheusError, httpx.HTTPError):
                return 0.0

        if await canary_requests() < 0.5:
            return
        self.reporter.note(
            f"Waiting until v2's canary requests have left the {ERROR_WINDOW}s metric window, "
            "so that v3 is judged on its own requests only"
        )
        deadline = time.monotonic() + ERROR_WINDOW + 10
        while time.monotonic() < deadline and await canary_requests() >= 0.5:
            await self.sleep(1.0)

    async def release_v3(self) -> None:
        assert self.repo is not None
        await self.clear_canary_window()
        self.view.stage = "v3: analysing (5% errors)"
        commit = await self.release("v3")
        self.times.v3_commit = time.monotonic()
        revision = _revision(commit)
        await self.until(lambda: self.run_of(revision) is not None, "the analysis of v3 to start")
        self.times.v3_started = time.monotonic()

        def rolled_back() -> bool:
            if self.run_of(revision) == "Succeeded":
                raise DemoError(
                    "v3 (5% errors) was promoted: its analysis never saw the errors"
                    + self.analysis_text()
                    + self.operator_hint()
                )
            return self.run_of(revision) == "Failed"

        await self.until(rolled_back, "v3 to be rolled back")
        self.times.v3_rolled_back = time.monotonic()
        self.v3_reason = rollback_reason(self.view.canary, revision)
        self.reporter.note(
            f"v3 rolled back in {self.times.v3_rolled_back - self.times.v3_commit:.0f}s after its "
            "commit: all traffic is on the primary (v2) again",
            style="bold red",
        )
        self.view.stage = "v3: reverting in Git"

        def reverted() -> bool:
            revert = self.view.canary.get("gitRevert") or {}
            state = str(revert.get("state") or "")
            if state == "Failed" and revert.get("retriable") is False:
                raise DemoError(f"the Git revert failed: {revert.get('message')}")
            if state in ("Superseded", "Skipped"):
                raise DemoError(f"the Git revert was {state}: {revert.get('message')}")
            return state in ("Reverted", "AlreadyReverted") and bool(revert.get("commit"))

        await self.until(reverted, "canary-engine to revert v3 in Git")
        self.times.reverted = time.monotonic()
        revert_sha = str(self.view.canary["gitRevert"]["commit"])
        await self.repo.pull()
        self.commits["revert"] = await self.repo.head()
        self.view.git_head = revert_sha
        self.reporter.note(
            f'canary-engine pushed {revert_sha[:7]} "{self.commits["revert"].subject}"',
            style="bold magenta",
        )
        self.view.stage = "v3: converging back to v2"
        target_revision = _revision(revert_sha)

        def converged() -> bool:
            annotations = (self.target_obj.get("metadata") or {}).get("annotations") or {}
            containers = (
                ((self.target_obj.get("spec") or {}).get("template") or {}).get("spec") or {}
            ).get("containers") or [{}]
            return (
                annotations.get("canary.gitops.dev/revision") == target_revision
                and containers[0].get("image") == "podinfo:v2"
            )

        await self.until(converged, "the GitSource to apply the revert (podinfo back to v2)")
        self.times.converged = time.monotonic()
        self.reporter.note(
            "The GitSource applied the revert: Git and the cluster both say podinfo v2 again",
            style="bold green",
        )
        await self.wait_slack(ROLLBACK_KINDS, "the Slack message about the rollback of v3")
        with contextlib.suppress(DemoError):
            await self.wait_slack("GitReverted", "the Slack message about the revert", timeout=15)
        self.view.stage = "done"

    # ============================================================ observation

    v3_reason: tuple[bool, str] = (False, "not rolled back")

    def run_of(self, revision: str) -> str | None:
        """The phase of the run that analyses ``revision``, None before it starts."""
        status = self.view.canary
        if status.get("currentRevision") != revision:
            return None
        phase = str(status.get("phase") or "")
        return phase if phase not in ("", "Initialized") else None

    async def monitor(self) -> None:
        """Poll the cluster twice a second and keep the view up to date."""
        assert self.kube is not None and self.traffic is not None
        kube = self.kube
        last_window = time.monotonic()
        while True:
            try:
                canary, route, target, source, events = await asyncio.gather(
                    kube.get(API, "Canary", CANARY, NAMESPACE),
                    kube.get("gateway.networking.k8s.io/v1", "HTTPRoute", CANARY, NAMESPACE),
                    kube.get("apps/v1", "Deployment", CANARY, NAMESPACE),
                    kube.get(API, "GitSource", GITSOURCE, NAMESPACE),
                    kube.list(
                        "v1",
                        "Event",
                        NAMESPACE,
                        field_selector=f"involvedObject.name={CANARY},involvedObject.kind=Canary",
                    ),
                )
            except (KubeError, OSError, TimeoutError):
                await asyncio.sleep(0.5)
                continue
            self.canary_obj = canary or {}
            self.target_obj = target or {}
            self.gitsource_obj = source or {}
            self.view.route = _route_weights(route)  # the routing object is the truth
            self.update_view(events)
            now = time.monotonic()
            if now - last_window >= 2.0:
                window = self.traffic.take_window()
                span = max(window.ended - window.started, 1e-6)
                self.view.rate = window.routed / span
                self.view.canary_share = window.canary_share
                self.view.errors = window.failed / window.routed if window.routed else 0.0
                last_window = now
            self.reporter.refresh()
            await asyncio.sleep(0.5)

    def update_view(self, events: list[dict[str, Any]]) -> None:
        view = self.view
        spec = self.canary_obj.get("spec") or {}
        analysis = spec.get("analysis") or {}
        view.canary = dict(self.canary_obj.get("status") or {})
        view.threshold = int(analysis.get("threshold") or 0)
        view.max_weight = int(analysis.get("maxWeight") or 100)
        thresholds: dict[str, str] = {}
        for metric in analysis.get("metrics") or ():
            bounds = metric.get("thresholdRange") or {}
            unit = {"request-success-rate": "%", "request-duration": "ms"}.get(
                metric.get("name"), ""
            )
            parts = []
            if "min" in bounds:
                parts.append(f">= {bounds['min']:g}{unit}")
            if "max" in bounds:
                parts.append(f"<= {bounds['max']:g}{unit}")
            thresholds[str(metric.get("name"))] = " and ".join(parts)
        view.thresholds = thresholds
        view.source_revision = str(
            (self.gitsource_obj.get("status") or {}).get("lastAppliedRevision") or ""
        )
        phase = view.phase
        revision = str(view.canary.get("currentRevision") or "")
        if phase and (phase, revision) != self._phase:
            self.phases.append((round(view.elapsed(), 2), phase, revision))
            self._phase = (phase, revision)
        for name, kind, message, count in event_lines(events):
            if self._events.get(name) == count:
                continue
            self._events[name] = count
            view.events.append(EventLine(view.elapsed(), kind, message, count))

    def on_slack(self, message: SlackMessage) -> None:
        self.slack_messages.append(message)
        self.reporter.slack(message)

    def on_version_change(
        self, process: DemoAppProcess, previous: str, version: str, behaviour: Behaviour
    ) -> None:
        self.view.versions[process.role] = version
        self.reporter.note(
            f"{process.deployment} now runs podinfo:{version} ({behaviour.description}): "
            f"the {process.role} process was reconfigured",
            style="dim",
        )

    def analysis_text(self) -> str:
        lines = [
            f"\n  {m.get('name')}: {m.get('outcome')} {m.get('summary')}"
            for m in self.view.canary.get("analysis") or ()
            if isinstance(m, Mapping)
        ]
        return "".join(lines)

    def operator_hint(self) -> str:
        log = self.operator.log_path if self.operator else self.workdir / "logs" / "operator.log"
        return f"\n(the controller's log: {log})"

    # ============================================================== waiting

    def check_background(self) -> None:
        for task in self.background:
            if task.done() and not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                raise DemoError(f"{task.get_name()} stopped: {exc!r}")
        if self.operator is not None:
            self.operator.check()

    async def until(
        self,
        predicate: Callable[[], bool],
        what: str,
        *,
        hint: str = "",
        timeout: float | None = None,
    ) -> None:
        limit = self.pace.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            self.check_background()
            if predicate():
                return
            if time.monotonic() > deadline:
                status = self.view.canary
                details = (
                    f"\n  canary phase {status.get('phase') or '-'}: {status.get('message') or ''}"
                    + self.analysis_text()
                )
                if "{gitsource}" in hint:
                    conditions = (self.gitsource_obj.get("status") or {}).get("conditions") or []
                    details += "\n  " + hint.replace("{gitsource}", json.dumps(conditions))
                raise DemoError(
                    f"timed out after {limit:g}s waiting for {what}{details}{self.operator_hint()}"
                )
            await asyncio.sleep(0.2)

    async def wait_slack(
        self, kind: str | tuple[str, ...], what: str, *, timeout: float = 30.0
    ) -> SlackMessage:
        kinds = (kind,) if isinstance(kind, str) else kind
        found: list[SlackMessage] = []

        def arrived() -> bool:
            found[:] = [m for m in self.slack_messages if m.kind in kinds]
            return bool(found)

        await self.until(arrived, what, timeout=timeout)
        return found[-1]

    async def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_background()
            await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    # ============================================================== the end

    async def summarize(self, *, ok: bool, error: str | None = None) -> dict[str, Any]:
        t = self.times
        history = await self._git_history()
        v2 = self.commits.get("v2")
        v3 = self.commits.get("v3")
        revert = self.commits.get("revert")
        promoted = t.v2_promoted is not None
        rolled_back = t.v3_rolled_back is not None
        checks = self._checks(history.trailers)
        timings = self._timings()
        timing_rows = [
            ("v2: commit -> promoted", timings["v2Promotion"]),
            ("v3: commit -> rolled back", timings["v3Rollback"]),
            ("v3: commit -> revert commit pushed", timings["v3Revert"]),
            ("revert commit -> cluster back on v2", timings["v3Converged"]),
            ("whole demo", timings["total"]),
        ]
        kubeconfig = self.workdir / "kubeconfig"
        where = {
            "kubeconfig": kubeconfig,
            "repository": self.repo.bare if self.repo else "",
            "logs": self.workdir / "logs",
            "summary": self.workdir / "summary.json",
        }
        return {
            "ok": ok and all(c[1] for c in checks),
            "error": error,
            "fast": self.options.fast,
            "workdir": str(self.workdir),
            "kubeconfig": str(kubeconfig),
            "checks": checks,
            "timingRows": timing_rows,
            "timings": timings,
            "gitLog": history.oneline,
            "repository": {
                "url": self.repo.url if self.repo else "",
                "commits": list(history.commits),
                "releases": {k: c.sha for k, c in self.commits.items()},
                "revertTrailers": dict(history.trailers),
            },
            "v2": {"promoted": promoted, "commit": v2.sha if v2 else None},
            "v3": {
                "rolledBack": rolled_back,
                "commit": v3.sha if v3 else None,
                "revertCommit": revert.sha if revert else None,
                "gitRevert": self.view.canary.get("gitRevert") if rolled_back else None,
            },
            "slack": [m.to_json() for m in self.slack_messages],
            "phases": [list(p) for p in self.phases],
            "processes": dict(self.pids),
            "where": {k: str(v) for k, v in where.items()},
        }

    async def _git_history(self) -> _GitHistory:
        """The demo repository's history, as far as it can be read: the summary is written
        even when the play stopped before (or while) the repository was made."""
        oneline = ""
        commits: tuple[dict[str, str], ...] = ()
        trailers: Mapping[str, list[str]] = {}
        if self.repo is not None and self.repo.bare.exists():
            with contextlib.suppress(DemoGitError):
                oneline = await self.repo.oneline()
                commits = tuple(
                    {"sha": c.sha, "subject": c.subject, "author": c.author}
                    for c in await self.repo.log()
                )
                if "revert" in self.commits:
                    trailers = await self.repo.trailers(self.commits["revert"].sha)
        return _GitHistory(oneline, commits, trailers)

    def _checks(self, trailers: Mapping[str, list[str]]) -> list[tuple[str, bool, str]]:
        """What the demo promises, each with whether it held and a few words of evidence."""
        t = self.times
        v3 = self.commits.get("v3")
        revert = self.commits.get("revert")
        names_v3 = bool(v3 and revert and trailers.get("Canary-Bad-Revision") == [v3.sha])
        kinds = [m.kind for m in self.slack_messages]
        v2_time = Milestones.span(t.v2_commit, t.v2_promoted)
        v3_time = Milestones.span(t.v3_commit, t.v3_rolled_back)
        return [
            (
                "v2 promoted",
                t.v2_promoted is not None,
                f"{v2_time:.0f}s after its commit" if v2_time is not None else "",
            ),
            (
                "v3 rolled back for its errors",
                t.v3_rolled_back is not None and self.v3_reason[0],
                (f"{v3_time:.0f}s after its commit; " if v3_time is not None else "")
                + self.v3_reason[1],
            ),
            (
                "v3 reverted in Git",
                names_v3,
                f'commit {revert.short} "{revert.subject}"' if revert else "",
            ),
            (
                "cluster back on v2",
                t.converged is not None,
                "applied by the GitSource" if t.converged else "",
            ),
            (
                "Slack messages",
                "Promoted" in kinds and any(k in kinds for k in ROLLBACK_KINDS),
                ", ".join(kinds) if kinds else "none received",
            ),
        ]

    def _timings(self) -> dict[str, float | None]:
        t = self.times
        return {
            "v2Promotion": Milestones.span(t.v2_commit, t.v2_promoted),
            "v3Rollback": Milestones.span(t.v3_commit, t.v3_rolled_back),
            "v3Revert": Milestones.span(t.v3_commit, t.reverted),
            "v3RevertAfterRollback": Milestones.span(t.v3_rolled_back, t.reverted),
            "v3Converged": Milestones.span(t.reverted, t.converged),
            "total": round(self.view.elapsed(), 2),
        }

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        text = json.dumps(summary, indent=2, default=str) + "\n"
        paths = [self.workdir / "summary.json"]
        if self.options.summary is not None:
            paths.append(self.options.summary)
        for path in paths:
            with contextlib.suppress(OSError):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)

    async def keep_running(self) -> None:
        kubeconfig = self.workdir / "kubeconfig"
        self.reporter.print(
            "\nEverything keeps running (controller, sandbox, Prometheus, traffic) until Ctrl-C.\n"
            f"  export KUBECONFIG={kubeconfig}\n"
            "  kubectl -n demo get canaries,deployments,httproutes\n"
            "  canary status podinfo -n demo -w\n"
            "  canary report podinfo -n demo --run 1 -o html -f v2.html   # the promotion\n"
            "  canary report podinfo -n demo -o html -f v3.html           # the rollback\n"
            "  canary dashboard -n demo --enable-write\n"
            f"  Prometheus: {self.prometheus.url if self.prometheus else '-'}\n"
            f"  Git: git clone {self.repo.url if self.repo else '-'}\n"
        )
        self.view.stage = "kept running (--keep): Ctrl-C stops everything"
        self.reporter.start()
        while True:
            await self.sleep(3600)

    async def close(self) -> None:
        """Stop everything, newest first; never raises."""
        with contextlib.suppress(Exception):  # the terminal may be gone already
            self.reporter.stop()
        for task in self.background:
            task.cancel()
        for task in self.background:
            with contextlib.suppress(BaseException):
                await task
        steps: list[Callable[[], Awaitable[Any]]] = []
        if self.operator is not None:
            steps.append(self.operator.stop)
        if self.backend is not None:
            steps.append(self.backend.aclose)
        steps += [app.stop for app in self.apps.values()]
        if self.prometheus is not None:
            steps.append(self.prometheus.stop)
        if self.slack is not None:
            steps.append(self.slack.stop)
        if self.kube is not None:
            steps.append(self.kube.aclose)
        for step in steps:
            with contextlib.suppress(Exception):
                await step()
        if self.sandbox is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.sandbox.stop)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_demo(options: DemoOptions, console: Console | None = None) -> dict[str, Any]:
    """Play the demo; returns the summary (also written to ``<workdir>/summary.json``)."""
    demo = Demo(options, console or Console())
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    received: list[int] = []

    def stop(signum: int) -> None:
        received.append(signum)
        if task is not None:
            task.cancel()

    for signum in (signal.SIGTERM, signal.SIGHUP):  # kill, or the terminal went away
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.add_signal_handler(signum, stop, signum)
    try:
        return await demo.run()
    except asyncio.CancelledError:
        if received:
            raise DemoStopped(received[0]) from None
        raise
    finally:
        await asyncio.shield(demo.close())
        for signum in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
                loop.remove_signal_handler(signum)


def _finished_ok(workdir: Path) -> bool:
    """Whether this run's summary (the work directory is cleared at start) says it succeeded."""
    try:
        return bool(json.loads((workdir / "summary.json").read_text()).get("ok"))
    except (OSError, ValueError):
        return False


def demo_command(
    *,
    fast: bool = False,
    keep: bool = False,
    port: int = 0,
    workdir: Path = Path(".demo"),
    summary: Path | None = None,
) -> None:
    """Play the whole loop locally: v2 promoted step by step, v3 rolled back and reverted in Git."""
    console = Console()
    options = DemoOptions(fast=fast, keep=keep, port=port, workdir=workdir, summary=summary)
    try:
        result = asyncio.run(run_demo(options, console))
    except DemoError as exc:
        console.print(f"[bold red]canary demo failed:[/bold red] {exc}", highlight=False)
        raise typer.Exit(exc.code) from None
    except (KeyboardInterrupt, DemoStopped) as exc:
        with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
            console.print("canary demo: stopped; every process it started was stopped too.")
        if keep and _finished_ok(options.workdir):
            return  # with --keep, Ctrl-C is how a successful demo ends
        code = 128 + exc.signum if isinstance(exc, DemoStopped) else EXIT_INTERRUPTED
        raise typer.Exit(code) from None
    if not result.get("ok"):
        raise typer.Exit(EXIT_FAILED)
