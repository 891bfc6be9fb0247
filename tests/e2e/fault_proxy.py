"""A reverse proxy in front of the sandbox API server that fails chosen requests.

The operator under test gets a kubeconfig pointing here (`kubeconfig_through`) instead of
at the sandbox: every request is passed on as it came (headers, body, the user's bearer
token) and every answer is streamed back as it arrives (watches included), except the
requests a `Fault` names, which get the answer a real API server gives when etcd has a bad
moment (a ``Status`` with ``reason: InternalError``) without reaching the sandbox.

    proxy = await FaultProxy(cluster.url, faults=[Fault("GET", path, status=500)]).start()
    kubeconfig = kubeconfig_through(cluster.kubeconfig_path, proxy.url, tmp_path / "k")
    ...
    assert proxy.faulted() == [("GET", path, 500)]

`FaultProxy.seen` is every request with the status it was answered with. The proxy runs
in the test's event loop, like the receivers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

__all__ = ["Fault", "FaultProxy", "kubeconfig_through"]

MESSAGE = "injected by the test's fault proxy"
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "upgrade",
        "host",
    }
)


@dataclass
class Fault:
    """Answer the next ``times`` requests ``method path`` (the path without its query)
    with ``status`` instead of passing them on."""

    method: str
    path: str
    status: int = 500
    times: int = 1

    def take(self, method: str, path: str) -> bool:
        if self.times <= 0 or method != self.method or path != self.path:
            return False
        self.times -= 1
        return True


class FaultProxy:
    def __init__(self, upstream: str, *, faults: Iterable[Fault] = ()) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = list(faults)
        self.seen: list[tuple[str, str, int]] = []  # (method, path, status) of every request
        self._faulted: list[tuple[str, str, int]] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    async def start(self) -> FaultProxy:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10), auto_decompress=False
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def faulted(self) -> list[tuple[str, str, int]]:
        """The requests answered by a fault: (method, path, status)."""
        return list(self._faulted)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        for fault in self.faults:
            if fault.take(request.method, request.path):
                self._faulted.append((request.method, request.path, fault.status))
                self.seen.append((request.method, request.path, fault.status))
                return _status(fault.status)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read()
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body or None
        ) as upstream:
            self.seen.append((request.method, request.path, upstream.status))
            response = web.StreamResponse(status=upstream.status)
            for name, value in upstream.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    response.headers[name] = value
            response.enable_chunked_encoding()
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (aiohttp.ClientError, ConnectionResetError):
                pass  # either side went away: the stream ends here, as a real one would
            await response.write_eof()
            return response


def _status(code: int) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": MESSAGE,
        "reason": "InternalError",
        "code": code,
    }
    return web.Response(status=code, text=json.dumps(body), content_type="application/json")


def kubeconfig_through(kubeconfig: Path, proxy_url: str, target: Path) -> Path:
    """A copy of ``kubeconfig`` whose clusters are reached through the proxy."""
    config = yaml.safe_load(Path(kubeconfig).read_text(encoding="utf-8"))
    for cluster in config.get("clusters") or []:
        cluster.setdefault("cluster", {})["server"] = proxy_url
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    target.chmod(0o600)
    return target
