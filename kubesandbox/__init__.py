"""The sandbox: a local Kubernetes API server plus a workload simulator, on loopback.

Tests, ``canary demo``, ``canary sandbox`` and the benchmarks run the real controller
(kopf + ``kubernetes.aio``) and kubectl against it over HTTP, because no real cluster is
available where they run. :class:`Sandbox` runs in the caller's event loop;
:class:`SandboxThread` runs the same thing in its own thread and loop (needed when the
caller's loop hosts a kopf operator, which would deadlock against a server in the same
loop); :func:`run_sandbox` is the blocking entry behind ``canary sandbox``.

The operator (``canary run``) never imports this package. docs/sandbox.md describes how to
start it and every known difference from a real API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import yaml

from .apiserver import ApiError, ApiServer, AuditEntry, Store
from .kubeconfig import token_for, write_kubeconfig

__all__ = ["Sandbox", "SandboxThread", "load_manifests", "run_sandbox"]

T = TypeVar("T")


def load_manifests(path: str | Path) -> list[dict[str, Any]]:
    """Every object in a YAML file (multi-document, ``List`` kinds expanded) or a directory of them."""
    source = Path(path)
    files = (
        sorted(p for p in source.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
        if source.is_dir()
        else [source]
    )
    out: list[dict[str, Any]] = []
    for file in files:
        try:
            docs = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
        except yaml.YAMLError as exc:
            raise ValueError(f"{file}: not valid YAML: {exc}") from None
        for index, doc in enumerate(docs):
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise ValueError(f"{file}: document {index} is not a mapping")
            if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
                out.extend(item for item in doc["items"] if isinstance(item, dict))
            else:
                out.append(doc)
    return out


class Sandbox:
    """API server + store + workload simulator in the current event loop."""

    def __init__(self, server: ApiServer, simulator: Any | None) -> None:
        self.server = server
        self.simulator = simulator

    @classmethod
    async def start(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        simulate_workloads: bool = True,
        speed: float = 1.0,
        *,
        history_size: int = 20000,
        bookmark_interval: float = 15.0,
        audit_path: Path | None = None,
        tokens: Mapping[str, str] | None = None,
        nodes: int = 2,
        ready_delay: float = 1.0,
    ) -> Sandbox:
        """Start serving on ``host:port`` (0 = any free port) and, optionally, simulating workloads.

        ``history_size`` is the number of watch events kept per resource type: a watch can
        resume from, and a paged or exact list be served at, any resourceVersion no older
        than that many changes of its type; older ones get 410 Expired (a test makes it
        tiny to exercise a client's relist). ``bookmark_interval`` is the number of seconds
        between the bookmarks of an idle watch with ``allowWatchBookmarks=true``.
        """
        store = Store(history_size=history_size)
        server = ApiServer(
            store, tokens=tokens, audit_path=audit_path, bookmark_interval=bookmark_interval
        )
        simulator = None
        if simulate_workloads:
            from .workloads import WorkloadSimulator

            simulator = WorkloadSimulator(store, speed=speed, nodes=nodes, ready_delay=ready_delay)
            simulator.start()
        try:
            await server.start(host, port)
        except BaseException:
            if simulator is not None:
                await simulator.stop()
            raise
        return cls(server, simulator)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def store(self) -> Store:
        return self.server.store

    @property
    def audit(self) -> list[AuditEntry]:
        return self.server.audit

    def token_for(self, user: str) -> str:
        """A bearer token the server maps to ``user`` (registered on first use)."""
        token = token_for(user)
        self.server.tokens[token] = user
        return token

    def write_kubeconfig(
        self, path: str | Path, user: str = "admin", namespace: str = "default"
    ) -> Path:
        """Write a kubeconfig whose token authenticates as ``user``."""
        self.token_for(user)
        return write_kubeconfig(path, self.url, user=user, namespace=namespace)

    async def apply_manifest(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create the object, or replace it if it exists (as ``kubectl replace`` would)."""
        return self.store.apply_manifest(obj)

    async def apply_file(self, path: str | Path) -> list[dict[str, Any]]:
        """Apply every object of a YAML file or directory, in order."""
        return [self.store.apply_manifest(obj) for obj in load_manifests(path)]

    async def stop(self) -> None:
        if self.simulator is not None:
            await self.simulator.stop()
        await self.server.stop()

    async def __aenter__(self) -> Sandbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class SandboxThread:
    """A :class:`Sandbox` in its own thread and event loop, usable from synchronous code.

    ``with SandboxThread() as sb:`` gives ``sb.url`` and ``sb.kubeconfig_path`` (a kubeconfig
    in a private temporary directory unless ``kubeconfig_path`` is given). ``sb.call(fn)``
    runs a function in the sandbox's loop (for consistent reads of ``sb.store``).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        simulate_workloads: bool = True,
        speed: float = 1.0,
        kubeconfig_path: str | Path | None = None,
        user: str = "admin",
        crds: Iterable[str | Path] = (),
        startup_timeout: float = 30.0,
        **options: Any,
    ) -> None:
        self._kwargs = {
            "host": host,
            "port": port,
            "simulate_workloads": simulate_workloads,
            "speed": speed,
            **options,
        }
        self._kubeconfig_path = Path(kubeconfig_path) if kubeconfig_path else None
        self._user = user
        self._crds = [Path(p) for p in crds]
        self._startup_timeout = startup_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._sandbox: Sandbox | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._done: asyncio.Event | None = None

    # lifecycle

    def start(self) -> SandboxThread:
        self._thread = threading.Thread(target=self._main, name="canary-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._startup_timeout):
            raise TimeoutError(f"the sandbox did not start within {self._startup_timeout} s")
        if self._failure is not None:
            raise RuntimeError(f"the sandbox failed to start: {self._failure!r}") from self._failure
        if self._kubeconfig_path is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="canary-sandbox-")
            self._kubeconfig_path = Path(self._tmpdir.name) / "kubeconfig"
        self.sandbox.write_kubeconfig(self._kubeconfig_path, user=self._user)
        for crd in self._crds:
            self.apply_file(crd)
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        self._done = asyncio.Event()
        try:
            self._sandbox = await Sandbox.start(**self._kwargs)
        except BaseException as exc:
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        await self._done.wait()
        await self._sandbox.stop()

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._done is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._done.set)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError("the sandbox thread did not stop in time")
            self._thread = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> SandboxThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # access

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            raise RuntimeError("the sandbox is not running")
        return self._sandbox

    @property
    def url(self) -> str:
        return self.sandbox.url

    @property
    def kubeconfig_path(self) -> Path:
        if self._kubeconfig_path is None:
            raise RuntimeError("the sandbox is not running")
        return self._kubeconfig_path

    @property
    def store(self) -> Store:
        """Direct store access; prefer :meth:`call` for reads that must be consistent."""
        return self.sandbox.store

    @property
    def audit(self) -> list[AuditEntry]:
        return self.sandbox.audit

    def run(self, coro: Awaitable[T], timeout: float = 30.0) -> T:
        """Run a coroutine in the sandbox's loop and wait for its result."""
        if self._loop is None:
            raise RuntimeError("the sandbox is not running")

        async def wrapper() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 30.0, **kwargs: Any) -> T:
        """Call ``fn(*args, **kwargs)`` in the sandbox's loop (atomic with respect to API requests)."""
        if self._loop is None:
            raise RuntimeError("the sandbox is not running")
        future: Future[T] = Future()

        def invoke() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(invoke)
        return future.result(timeout)

    def write_kubeconfig(self, path: str | Path, user: str = "admin") -> Path:
        return self.call(self.sandbox.write_kubeconfig, path, user)

    def apply_manifest(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        return self.call(self.store.apply_manifest, obj)

    def apply_file(self, path: str | Path) -> list[dict[str, Any]]:
        objects = load_manifests(path)
        return self.call(lambda: [self.store.apply_manifest(o) for o in objects])


def _why_not_bound(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "address already in use (another API server?)"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    return exc.strerror or str(exc)


def run_sandbox(host: str, port: int, kubeconfig: Path, crds: list[Path]) -> None:
    """Serve until SIGINT/SIGTERM: API server + simulator, CRDs applied, kubeconfig written."""

    async def main() -> None:
        try:
            sandbox = await Sandbox.start(host=host, port=port)
        except OSError as exc:
            # One line, exit 1: most often a real API server (or another sandbox) on 6443.
            raise SystemExit(
                f"error: cannot serve the sandbox API on {host}:{port}: "
                f"{_why_not_bound(exc)}; choose another port with --port (0: any free port)"
            ) from None
        try:
            for path in crds:
                try:
                    await sandbox.apply_file(path)
                except (ValueError, ApiError) as exc:
                    raise SystemExit(f"cannot apply {path}: {exc}") from None
            written = sandbox.write_kubeconfig(kubeconfig)
            print(f"sandbox API server: {sandbox.url}", flush=True)
            print(f"kubeconfig: {written}", flush=True)
            print(f"try: KUBECONFIG={written} kubectl get namespaces", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            await sandbox.stop()

    asyncio.run(main())
