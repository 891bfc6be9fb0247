"""Reusable real-process fixtures: Debian's Prometheus and demo-app processes on loopback.

Any test package can use them by importing the fixtures into its conftest::

    from tests.prometheus_fixtures import demo_app_factory, prometheus_server  # noqa: F401

``prometheus_server`` is one session-wide Prometheus (scrape interval 1 s, temp
storage, free port, lifecycle API on) whose scrape targets tests replace with
:meth:`PrometheusServer.set_targets`; ``demo_app_factory`` starts demo-app
processes (``canary.demo.demoapp``) and stops them after the test module.
Everything listens on 127.0.0.1 only.  A missing ``prometheus`` binary fails
the test with the install hint instead of skipping it.
"""

from __future__ import annotations

import functools
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from analysis import (
    MetricCheck,
    Outcome,
    PrometheusProvider,
    ProviderConfig,
    QueryContext,
    Verdict,
    evaluate,
)

INSTALL_HINT = "apt-get install -y --no-install-recommends prometheus"
LOOPBACK = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEMOAPP = REPO_ROOT / "canary" / "demo" / "demoapp.py"


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``predicate`` until it is true; fail the test naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except (httpx.HTTPError, OSError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def _stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    return proc.returncode


# -- demo app -------------------------------------------------------------------


@dataclass
class DemoApp:
    """A running demo-app process and the target labels Prometheus should give it."""

    proc: subprocess.Popen[str]
    port: int
    namespace: str
    pod: str
    workload: str

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def target_labels(self) -> dict[str, str]:
        return {"kubernetes_namespace": self.namespace, "kubernetes_pod_name": self.pod}

    def set_config(self, **changes: float) -> dict[str, Any]:
        """``POST /admin/config`` (keys errorRate, latencyMs, latencySigma, selfLoad)."""
        r = httpx.post(f"{self.url}/admin/config", json=changes, timeout=5.0)
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    def stop(self) -> int | None:
        return _stop_process(self.proc)


def start_demo_app(
    *,
    workload: str,
    pod: str,
    namespace: str = "test",
    version: str = "v1",
    error_rate: float = 0.0,
    latency_ms: float = 10.0,
    latency_sigma: float = 0.3,
    self_load: float = 0.0,
    seed: int | None = None,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 10.0,
) -> DemoApp:
    """Start the demo app (``canary/demo/demoapp.py``) on a free loopback port; wait until it serves."""
    args = [
        # Run the file itself: it is self-contained, and this skips the import of the
        # kubesandbox package (whose __init__ may load much more than the demo app needs).
        sys.executable, str(DEMOAPP),
        "--host", LOOPBACK, "--port", "0",
        "--version", version, "--namespace", namespace, "--workload", workload,
        "--error-rate", str(error_rate), "--latency-ms", str(latency_ms),
        "--latency-sigma", str(latency_sigma), "--self-load", str(self_load),
        *(["--seed", str(seed)] if seed is not None else []),
        *extra_args,
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT, env=env
    )
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + startup_timeout
    line = ""
    while time.monotonic() < deadline and proc.poll() is None:
        if sel.select(timeout=0.1):
            line = proc.stdout.readline()
            break
    sel.close()
    if "listening on http://" not in line:
        _stop_process(proc)
        rest = proc.stdout.read() if proc.stdout else ""
        pytest.fail(f"demo app did not start within {startup_timeout:g}s: {line}{rest}")
    port = int(line.strip().rsplit(":", 1)[1])
    app = DemoApp(proc=proc, port=port, namespace=namespace, pod=pod, workload=workload)
    wait_until(
        lambda: httpx.get(f"{app.url}/healthz", timeout=1.0).status_code == 200,
        timeout=startup_timeout,
        what=f"demo app {workload} on {app.address}",
    )
    return app


# -- Prometheus -----------------------------------------------------------------


@dataclass
class PrometheusServer:
    """A real Prometheus process on loopback with replaceable static scrape targets."""

    workdir: Path
    binary: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    scrape_interval: str = "1s"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "prometheus.yml"

    def _write_config(self, targets: Sequence[tuple[str, Mapping[str, str]]]) -> None:
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {
                    "job_name": "demo",
                    "static_configs": [
                        {"targets": [address], "labels": dict(labels)}
                        for address, labels in targets
                    ],
                }
            ],
        }
        # JSON is valid YAML; no YAML writer needed.
        self.config_path.write_text(json.dumps(config, indent=2))

    def start(self, timeout: float = 15.0) -> None:
        self._write_config([])
        (self.workdir / "data").mkdir(exist_ok=True)
        log = (self.workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address={LOOPBACK}:{self.port}",
                "--web.enable-lifecycle",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc = self.proc
        wait_until(
            lambda: (
                proc.poll() is None
                and httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200
            ),
            timeout=timeout,
            what=f"Prometheus ready on {self.url} (log: {self.workdir / 'prometheus.log'})",
        )

    def set_targets(self, apps: Sequence[DemoApp], *, timeout: float = 15.0) -> None:
        """Scrape exactly ``apps`` from now on; wait until every one is up."""
        self._write_config([(a.address, a.target_labels) for a in apps])
        r = httpx.post(f"{self.url}/-/reload", timeout=5.0)
        r.raise_for_status()
        wanted = {a.address for a in apps}

        def all_up() -> bool:
            data = httpx.get(f"{self.url}/api/v1/targets", timeout=2.0).json()["data"]
            up = {t["labels"]["instance"] for t in data["activeTargets"] if t["health"] == "up"}
            return wanted <= up

        wait_until(all_up, timeout=timeout, what=f"targets {sorted(wanted)} up")

    def query(self, query: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=5.0)
        r.raise_for_status()
        result: list[dict[str, Any]] = r.json()["data"]["result"]
        return result

    def wait_for_samples(
        self, apps: Sequence[DemoApp], *, window: str, samples: int, timeout: float = 60.0
    ) -> None:
        """Wait until every app has at least ``samples`` scrapes inside ``window``."""

        def enough(query: str) -> bool:
            result = self.query(query)
            return bool(result) and float(result[0]["value"][1]) >= samples

        for app in apps:
            q = f'count_over_time(up{{instance="{app.address}"}}[{window}])'
            wait_until(
                functools.partial(enough, q),
                timeout=timeout,
                interval=0.25,
                what=f"{samples} scrapes of {app.address} in {window}",
            )

    def stop(self) -> int | None:
        return _stop_process(self.proc) if self.proc is not None else None

    def restart(self, timeout: float = 15.0) -> None:
        """Start again after :meth:`stop`, same port, storage and configuration."""
        log = (self.workdir / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address={LOOPBACK}:{self.port}",
                "--web.enable-lifecycle",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc = self.proc
        wait_until(
            lambda: (
                proc.poll() is None
                and httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200
            ),
            timeout=timeout,
            what=f"Prometheus ready again on {self.url}",
        )


async def judge_run(
    check: MetricCheck,
    ctx: QueryContext,
    prometheus_url: str,
    *,
    windows: int,
    window_seconds: int,
    end: datetime | None = None,
) -> Verdict:
    """The last verdict of a run of ``windows`` consecutive windows of ``window_seconds``
    ending at ``end`` (by default 2 s ago: the newest scrape may not be in yet), each
    evaluated as the controller does it, the previous verdict carried through its status
    form; the run stops at a FAIL, and no verdict may be an ERROR (a query the fixtures'
    Prometheus cannot answer is the test's mistake, not a verdict)."""
    provider = PrometheusProvider(ProviderConfig(address=prometheus_url, timeout_seconds=5.0))
    end = end or datetime.now(UTC) - timedelta(seconds=2)
    verdict: Verdict | None = None
    for back in reversed(range(windows)):
        verdict = await evaluate(
            check,
            ctx,
            provider,
            now=end - timedelta(seconds=back * window_seconds),
            previous=None if verdict is None else verdict.to_status(),
            last_step=False,
        )
        assert verdict.outcome is not Outcome.ERROR, verdict.summary
        if verdict.outcome is Outcome.FAIL:
            break
    assert verdict is not None
    return verdict


def prometheus_binary() -> str:
    """Path of Debian's prometheus binary; fails the test with the install hint if missing."""
    found = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if found is None:
        pytest.fail(f"the prometheus binary is not installed; install it with: {INSTALL_HINT}")
    return found


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """One real Prometheus for the whole session (targets replaced per test module)."""
    server = PrometheusServer(
        workdir=tmp_path_factory.mktemp("prometheus"), binary=prometheus_binary()
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def demo_app_factory() -> Iterator[Callable[..., DemoApp]]:
    """Start demo apps with :func:`start_demo_app` arguments; all are stopped after the module."""
    started: list[DemoApp] = []

    def factory(**kwargs: Any) -> DemoApp:
        app = start_demo_app(**kwargs)
        started.append(app)
        return app

    try:
        yield factory
    finally:
        for app in started:
            app.stop()
