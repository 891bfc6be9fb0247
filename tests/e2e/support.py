"""Helpers for end-to-end tests: the real operator as a process against the sandbox.

`OperatorProcess` runs `canary run` exactly as a user would (a subprocess with a
kubeconfig), so a test can SIGKILL it mid-run and start another: the restart and
high-availability behaviour is then the product's, not a test double's. Time
runs faster with `--time-scale` (a 10 s analysis interval becomes 2 s).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
CANARY_API = "canary.gitops.dev/v1beta1"
CANARY = str(Path(sys.executable).parent / "canary")
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoggedProcess:
    """A ``canary`` command as a user runs it: a process writing to ``log``, stopped with
    SIGTERM (SIGKILL after 20 s), its output read back from the log."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.args = args
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("KUBECONFIG", None)  # only the --kubeconfig given
        with self.log.open("ab") as handle:
            self.proc = subprocess.Popen(
                self.args, stdout=handle, stderr=subprocess.STDOUT, env=env
            )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful shutdown — a crash at an arbitrary line."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class OperatorProcess(LoggedProcess):
    def __init__(self, kubeconfig: Path, log: Path, *extra: str, time_scale: float = 0.2) -> None:
        self.kubeconfig = kubeconfig
        self.port = free_port()
        super().__init__(
            [
                CANARY,
                "run",
                "--kubeconfig",
                str(kubeconfig),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--time-scale",
                str(time_scale),
                "--git-cache",
                str(log.parent / f"git-cache-{self.port}"),
                *extra,
            ],
            log,
        )

    def start(self) -> OperatorProcess:
        self.spawn()
        return self


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float, what: str, interval: float = 0.2
) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await probe()
        except Exception as exc:  # the API may be briefly unavailable; keep polling
            last = exc
        if last:
            return last  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {what}; last seen: {last!r}"
            )
        await asyncio.sleep(interval)


def start_operator(
    cluster: Any,
    tmp_path: Path,
    operators: list[OperatorProcess],
    *extra: str,
    user: str = "admin",
) -> OperatorProcess:
    """Start `canary run` against a SandboxThread as `user`; `operators` stops it later."""
    kubeconfig = cluster.write_kubeconfig(
        tmp_path / f"kubeconfig-{user}-{len(operators)}", user=user
    )
    op = OperatorProcess(kubeconfig, tmp_path / f"operator-{len(operators)}.log", *extra)
    operators.append(op.start())
    return op


def deployment_manifest(
    name: str, namespace: str, image: str, *, replicas: int = 1, container: str = "podinfod"
) -> dict[str, Any]:
    """A Deployment the sandbox runs: one container of ``image``, labelled ``app: name``."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": container, "image": image}]},
            },
        },
    }


def canary_manifest(
    name: str,
    namespace: str,
    analysis: dict[str, Any],
    *,
    provider: str = "kubernetes",
    **spec: Any,
) -> dict[str, Any]:
    """A Canary of the Deployment ``name`` on port 9898, with ``analysis`` and extra spec fields."""
    return {
        "apiVersion": CANARY_API,
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "provider": provider,
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898},
            "analysis": analysis,
            **spec,
        },
    }
