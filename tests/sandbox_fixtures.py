"""Reusable pytest fixtures that start the sandbox Kubernetes API (see docs/sandbox.md).

Other test directories load them from their ``conftest.py``::

    from tests.sandbox_fixtures import *  # noqa: F401,F403

* ``sandbox`` — a :class:`~kubesandbox.Sandbox` in the test's own event loop (async
  tests that talk to it with ``kubernetes.aio`` or httpx). Never run a kopf operator or a
  blocking subprocess in the same loop: use ``sandbox_thread`` for those.
* ``sandbox_factory`` — ``await sandbox_factory(speed=..., history_size=...)`` for options.
* ``sandbox_thread`` — a :class:`~kubesandbox.SandboxThread` (own thread and loop) with
  ``.url`` and ``.kubeconfig_path``; ``sandbox_thread_factory(**options)`` for options.
* ``kube_api`` — a ``kubernetes.aio`` ``ApiClient`` bound to ``sandbox``.
* ``kubectl`` — runs the real kubectl against ``sandbox_thread`` (``kubectl("get", "pods")``
  returns the completed process; ``check=True`` raises with stderr on failure).

The fixtures simulate workloads at ``speed=10`` (Pods ready after ~0.1 s) unless told
otherwise. Every server listens on 127.0.0.1 and an ephemeral port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubesandbox import Sandbox, SandboxThread

__all__ = [
    "DEFAULT_SPEED",
    "Kubectl",
    "kube_api",
    "kubectl",
    "sandbox",
    "sandbox_factory",
    "sandbox_thread",
    "sandbox_thread_factory",
]

DEFAULT_SPEED = 10.0
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture
async def sandbox_factory() -> AsyncIterator[Callable[..., Awaitable[Sandbox]]]:
    started: list[Sandbox] = []

    async def start(**options: Any) -> Sandbox:
        options.setdefault("speed", DEFAULT_SPEED)
        options.setdefault("host", "127.0.0.1")
        sb = await Sandbox.start(**options)
        started.append(sb)
        return sb

    try:
        yield start
    finally:
        for sb in reversed(started):
            await sb.stop()


@pytest.fixture
async def sandbox(sandbox_factory: Callable[..., Awaitable[Sandbox]]) -> Sandbox:
    return await sandbox_factory()


@pytest.fixture
def sandbox_thread_factory(tmp_path: Path) -> Iterator[Callable[..., SandboxThread]]:
    started: list[SandboxThread] = []

    def start(**options: Any) -> SandboxThread:
        options.setdefault("speed", DEFAULT_SPEED)
        options.setdefault("kubeconfig_path", tmp_path / f"kubeconfig-{len(started)}")
        sb = SandboxThread(**options).start()
        started.append(sb)
        return sb

    try:
        yield start
    finally:
        for sb in reversed(started):
            sb.stop()


@pytest.fixture
def sandbox_thread(sandbox_thread_factory: Callable[..., SandboxThread]) -> SandboxThread:
    return sandbox_thread_factory()


@pytest.fixture
async def kube_api(sandbox: Sandbox) -> AsyncIterator[Any]:
    from kubernetes.aio import client

    configuration = client.Configuration(host=sandbox.url)
    configuration.api_key = {"BearerToken": sandbox.token_for("admin")}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    async with client.ApiClient(configuration) as api:
        yield api


class Kubectl:
    """The real kubectl, pointed at one sandbox, with a private discovery cache."""

    def __init__(self, kubeconfig: Path, cache_dir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["KUBECACHEDIR"] = str(self.cache_dir)
        env["HOME"] = str(self.cache_dir)
        return env

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [KUBECTL, *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
            )
        return proc


@pytest.fixture
def kubectl(sandbox_thread: SandboxThread, tmp_path: Path) -> Kubectl:
    cache = tmp_path / "kubectl-home"
    cache.mkdir(exist_ok=True)
    return Kubectl(sandbox_thread.kubeconfig_path, cache)
