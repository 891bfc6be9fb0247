"""Real HTTP servers on loopback for tests: record what arrives, answer what the test scripts.

Any test package can use these. Import the fixtures in a ``conftest.py``::

    from tests.http_fixtures import dead_url, https_recording_server, recording_server  # noqa: F401

* ``recording_server`` is a started `RecordingServer` (aiohttp on 127.0.0.1, a
  free port, plain HTTP). Every request is recorded as a `RecordedRequest`
  (method, path, host, query, headers, raw body, parsed JSON). Answers are
  scripted per path with `RecordingServer.script` — a status, a body, headers
  such as ``Retry-After``, a delay, or a hold until the test releases it — and
  default to ``200 ok`` once a script runs out. Because it also accepts
  absolute-form request targets, it can stand in for an HTTP proxy.
  `RecordingServer.accepted` is the receiver's log of messages taken: the requests it
  answered with a 2xx while the client was still there to read the answer (a request
  whose client gave up or died during a hold is in ``requests`` only, as a Slack that
  never answered has not posted anything the sender can know of).
* ``https_recording_server`` is the same over TLS with a throw-away self-signed
  certificate (made with the ``openssl`` command; the test is skipped without it).
* ``dead_url`` is an http URL on 127.0.0.1 whose port was just closed:
  connections are refused at once.

Tests wait for requests with `RecordingServer.wait_for` (a deadline, never a
sleep). Closing the server releases held and delayed answers first, so teardown
never waits for a handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes | str | Mapping[str, Any] | list[Any] = b"ok"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    hold: asyncio.Event | None = None  # answer only once this is set (or the server closes)

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, bytes):
            return self.body, headers
        if isinstance(self.body, str):
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            return self.body.encode(), headers
        headers.setdefault("Content-Type", "application/json")
        return json.dumps(self.body).encode(), headers


@dataclass(frozen=True)
class RecordedRequest:
    """What reached the server."""

    method: str
    path: str
    host: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    received_at: float  # the event loop's clock

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class RecordingServer:
    """An aiohttp server on 127.0.0.1 that records requests and plays scripted replies."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._defaults: dict[str, Reply] = {}
        self._closing = asyncio.Event()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.requests: list[RecordedRequest] = []
        self.accepted: list[RecordedRequest] = []
        self.in_flight = 0
        self.port = 0

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> RecordingServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0, ssl_context=self._ssl)
        await site.start()
        sockets = self._runner.addresses
        self.port = int(sockets[0][1])
        return self

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ scripting

    @property
    def base_url(self) -> str:
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{LOOPBACK}:{self.port}"

    def url(self, path: str = "/hook") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def script(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to ``path`` with ``replies``, in order."""
        self._scripts[path].extend(replies)

    def default(self, path: str, reply: Reply) -> None:
        """Answer ``path`` with ``reply`` once its script is used up (instead of ``200 ok``)."""
        self._defaults[path] = reply

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def accepted_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.accepted if r.path == path]

    async def wait_accepted(
        self, count: int, *, path: str | None = None, within: float = 5.0
    ) -> list[RecordedRequest]:
        """Wait until ``count`` requests (to ``path``, if given) were accepted (see the
        module docstring); fail the test after ``within`` s."""

        def matching() -> list[RecordedRequest]:
            return self.accepted if path is None else self.accepted_to(path)

        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(lambda: len(matching()) >= count)
        except TimeoutError:
            pytest.fail(
                f"expected {count} accepted request(s) to {path or 'any path'} within {within}s, "
                f"got {len(matching())}"
            )
        return matching()

    async def wait_for(
        self, count: int, *, path: str | None = None, within: float = 5.0
    ) -> list[RecordedRequest]:
        """Wait until ``count`` requests (to ``path``, if given) arrived; fail the test after ``within`` s."""

        def matching() -> list[RecordedRequest]:
            return self.requests if path is None else self.requests_to(path)

        try:
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(lambda: len(matching()) >= count)
        except TimeoutError:
            pytest.fail(
                f"expected {count} request(s) to {path or 'any path'} within {within}s, got {len(matching())}"
            )
        return matching()

    # ------------------------------------------------------------------- handling

    def _next_reply(self, path: str) -> Reply:
        script = self._scripts.get(path)
        if script:
            return script.popleft()
        return self._defaults.get(path, Reply())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            host=request.host,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            received_at=asyncio.get_running_loop().time(),
        )
        reply = self._next_reply(request.path)
        async with self._changed:
            self.requests.append(recorded)
            self._changed.notify_all()
        self.in_flight += 1
        try:
            if reply.hold is not None:
                await _first_of(reply.hold.wait(), self._closing.wait())
            if reply.delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(reply.delay):
                        await self._closing.wait()
        finally:
            self.in_flight -= 1
        transport = request.transport
        if 200 <= reply.status < 300 and transport is not None and not transport.is_closing():
            async with self._changed:
                self.accepted.append(recorded)
                self._changed.notify_all()
        payload, headers = reply.encoded()
        return web.Response(status=reply.status, body=payload, headers=headers)


async def _first_of(*waits: Any) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def self_signed_context(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed for a self-signed certificate")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
async def recording_server() -> AsyncIterator[RecordingServer]:
    server = await RecordingServer().start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def https_recording_server(tmp_path: Path) -> AsyncIterator[RecordingServer]:
    server = await RecordingServer(ssl_context=self_signed_context(tmp_path)).start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def dead_url() -> str:
    """An http URL on loopback where nothing listens (the port was just closed)."""
    return f"http://{LOOPBACK}:{free_port()}/hook"


@contextlib.asynccontextmanager
async def never_finishing_url() -> AsyncIterator[str]:
    """An http URL on loopback whose answer never ends: a 200 with a chunked JSON body sent a
    byte of whitespace at a time, each well within any per-read timeout, so only a deadline
    on the whole request ends a call to it. Leaving the block stops the server and awaits
    its handlers."""
    done = asyncio.Event()
    handlers: list[asyncio.Task[None]] = []

    async def dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            while not done.is_set():
                writer.write(b"1\r\n \r\n")
                await writer.drain()
                await asyncio.sleep(0.05)  # the slow server's pace, not a synchronisation
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up and closed the connection
        finally:
            writer.close()

    server = await asyncio.start_server(dribble, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        done.set()
        server.close()
        await asyncio.gather(*handlers)
        await server.wait_closed()
