"""An async launcher for a real Prometheus (Debian's ``prometheus`` package) on loopback.

``canary demo`` and the benchmarks judge canaries with the controller's real PromQL, so
they need a real Prometheus scraping real processes, started and stopped by the program
itself without blocking its event loop. This module is that launcher:

* :func:`find_prometheus` locates the binary, or raises :class:`PrometheusNotInstalled`
  whose message is the exact command that installs it;
* :class:`Prometheus` writes a configuration whose only scrape job reads its targets from
  a ``file_sd`` file, starts the server on a free 127.0.0.1 port with its storage in a
  working directory, waits until it is ready, and stops it (SIGTERM, then SIGKILL);
* :meth:`Prometheus.set_targets` replaces the scrape targets (with their labels, such as
  ``kubernetes_namespace`` and ``kubernetes_pod_name``, which is what the HTTP observer's
  built-in queries select on) and can wait until all of them are up.

The server runs in its own session, so a Ctrl-C in the terminal reaches only the program
that owns it (which then stops it in order); on Linux it is also told to exit when that
program dies (``setpriv --pdeathsig``), so a killed demo leaves no Prometheus behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from canary.errors import CanaryError

__all__ = [
    "INSTALL_COMMAND",
    "Prometheus",
    "PrometheusError",
    "PrometheusNotInstalled",
    "ScrapeTarget",
    "find_prometheus",
    "log_tail",
    "parent_death_prefix",
    "spawn_logged",
    "stop_process",
]

INSTALL_COMMAND = "sudo apt-get install -y --no-install-recommends prometheus"
LOOPBACK = "127.0.0.1"


class PrometheusError(CanaryError, RuntimeError):
    """Prometheus could not be started or did not answer as expected."""


class PrometheusNotInstalled(PrometheusError):
    """The ``prometheus`` binary is not on this machine."""

    def __init__(self) -> None:
        super().__init__(
            "Prometheus is not installed (no 'prometheus' on PATH or in /usr/bin). "
            f"Install Debian's package with:\n    {INSTALL_COMMAND}\n"
            "(or run ./dev setup, which installs everything the demo and the tests need)"
        )


def find_prometheus(binary: str | None = None) -> str:
    """The path of the ``prometheus`` binary (``binary`` if given and present)."""
    candidates: list[str | None] = [binary, shutil.which("prometheus"), "/usr/bin/prometheus"]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise PrometheusNotInstalled()


def parent_death_prefix(signal_name: str = "TERM") -> list[str]:
    """A command prefix that sends the child ``signal_name`` when its parent dies (Linux).

    The kernel sends the signal when the *thread* that started the child exits, so start
    children from a thread that lives as long as they should (the main thread, normally).
    Empty where ``setpriv`` is not available.
    """
    if not sys.platform.startswith("linux"):
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", signal_name, "--"] if setpriv else []


async def stop_process(proc: asyncio.subprocess.Process, timeout: float = 10.0) -> int:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; returns the exit code."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    return proc.returncode if proc.returncode is not None else -1


async def spawn_logged(
    args: Sequence[str], log_path: Path, *, env: Mapping[str, str] | None = None
) -> asyncio.subprocess.Process:
    """Start ``args`` with its output and errors appended to ``log_path``, in a session of
    its own: a Ctrl-C in the demo's terminal reaches the demo, which stops its children in
    order, rather than every child at once."""
    with log_path.open("ab") as log:
        return await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )


def log_tail(log_path: Path, lines: int) -> str:
    """The last ``lines`` lines of a child's log, for an error message ("" if unreadable)."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _duration(seconds: float) -> str:
    """Prometheus duration syntax for a number of seconds (milliseconds precision)."""
    millis = max(1, round(seconds * 1000))
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


@dataclass(frozen=True, slots=True)
class ScrapeTarget:
    """One ``host:port`` to scrape at ``/metrics``, with the labels its series get."""

    address: str
    labels: Mapping[str, str] = field(default_factory=dict)


class Prometheus:
    """A Prometheus server process with replaceable ``file_sd`` scrape targets.

    ``async with Prometheus(workdir) as prom:`` starts it; ``prom.url`` is its address.
    """

    def __init__(
        self,
        workdir: str | Path,
        *,
        binary: str | None = None,
        port: int = 0,
        scrape_interval: float = 1.0,
        job: str = "sandbox",
        extra_args: Sequence[str] = (),
        die_with_parent: bool = True,
    ) -> None:
        self.workdir = Path(workdir)
        self.binary = find_prometheus(binary)
        self.port = port
        self.scrape_interval = scrape_interval
        self.job = job
        self.extra_args = tuple(extra_args)
        self.die_with_parent = die_with_parent
        self.proc: asyncio.subprocess.Process | None = None
        self._targets: tuple[ScrapeTarget, ...] = ()

    # ------------------------------------------------------------------ paths

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "prometheus.yml"

    @property
    def targets_path(self) -> Path:
        return self.workdir / "targets.json"

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def targets(self) -> tuple[ScrapeTarget, ...]:
        return self._targets

    # --------------------------------------------------------------- lifecycle

    def _write_config(self) -> None:
        interval = _duration(self.scrape_interval)
        config = {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "evaluation_interval": interval,
            },
            "scrape_configs": [
                {
                    "job_name": self.job,
                    "file_sd_configs": [
                        {"files": [str(self.targets_path)], "refresh_interval": "1s"}
                    ],
                }
            ],
        }
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML

    def _write_targets(self, targets: Sequence[ScrapeTarget]) -> None:
        groups = [{"targets": [t.address], "labels": dict(t.labels)} for t in targets]
        self.workdir.mkdir(parents=True, exist_ok=True)
        temporary = self.targets_path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(groups, indent=2) + "\n")
        os.replace(temporary, self.targets_path)  # atomic: Prometheus never reads half a file

    async def start(self, timeout: float = 30.0) -> Prometheus:
        """Start the server and wait until ``/-/ready`` answers; retries a port taken meanwhile."""
        if self.proc is not None and self.proc.returncode is None:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "data").mkdir(exist_ok=True)
        self._write_targets(self._targets)
        self._write_config()
        fixed_port = self.port != 0
        attempts = 1 if fixed_port else 3
        for attempt in range(attempts):
            if not fixed_port:
                self.port = _free_port()
            if await self._launch(timeout):
                return self
            if attempt + 1 < attempts and "address already in use" in self._log_tail():
                continue
            break
        raise PrometheusError(
            f"Prometheus did not become ready on {self.url} within {timeout:g}s; "
            f"last lines of {self.log_path}:\n{self._log_tail()}"
        )

    async def _launch(self, timeout: float) -> bool:
        args = [
            *(parent_death_prefix() if self.die_with_parent else []),
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--storage.tsdb.retention.time=1d",
            *self.extra_args,
        ]
        self.proc = await spawn_logged(args, self.log_path)
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    return False
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/-/ready")).status_code == 200:
                        return True
                await asyncio.sleep(0.1)
        await stop_process(self.proc)
        return False

    def _log_tail(self, lines: int = 15) -> str:
        return log_tail(self.log_path, lines)

    async def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout`` seconds)."""
        if self.proc is None:
            return None
        return await stop_process(self.proc, timeout)

    async def __aenter__(self) -> Prometheus:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ targets

    async def set_targets(
        self, targets: Sequence[ScrapeTarget], *, wait: bool = False, timeout: float = 15.0
    ) -> None:
        """Scrape exactly ``targets`` from now on; with ``wait``, until each one is up."""
        self._targets = tuple(targets)
        self._write_targets(self._targets)
        if wait:
            await self.wait_for_targets(self._targets, timeout=timeout)

    async def active_targets(self) -> list[dict[str, Any]]:
        """``/api/v1/targets``' active targets (labels, health, lastError, ...)."""
        async with httpx.AsyncClient(timeout=5.0) as client:
            r = await client.get(f"{self.url}/api/v1/targets", params={"state": "active"})
            r.raise_for_status()
            active: list[dict[str, Any]] = r.json()["data"]["activeTargets"]
            return active

    async def wait_for_targets(
        self, targets: Sequence[ScrapeTarget], *, timeout: float = 15.0
    ) -> None:
        """Wait until every target is scraped successfully with exactly its labels."""

        def key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
            return tuple(sorted((k, v) for k, v in labels.items() if not k.startswith("__")))

        wanted = {
            (t.address, key({**t.labels, "instance": t.address, "job": self.job})) for t in targets
        }
        deadline = time.monotonic() + timeout
        while True:
            try:
                up = {
                    (str(t["labels"].get("instance")), key(t["labels"]))
                    for t in await self.active_targets()
                    if t.get("health") == "up"
                }
            except (httpx.HTTPError, KeyError, ValueError):
                up = set()
            if wanted <= up:
                return
            if time.monotonic() > deadline:
                missing = ", ".join(sorted(address for address, _ in wanted - up))
                raise PrometheusError(f"scrape targets not up after {timeout:g}s: {missing}")
            await asyncio.sleep(0.2)

    # ------------------------------------------------------------------ queries

    async def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query; the ``result`` list of the answer."""
        async with httpx.AsyncClient(timeout=5.0) as client:
            r = await client.get(f"{self.url}/api/v1/query", params={"query": promql})
            r.raise_for_status()
            body = r.json()
        if body.get("status") != "success":
            raise PrometheusError(f"query {promql!r} failed: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def value(self, promql: str) -> float | None:
        """The single value of an instant query, or None when it has no result."""
        result = await self.query(promql)
        if not result:
            return None
        return float(result[0]["value"][1])
