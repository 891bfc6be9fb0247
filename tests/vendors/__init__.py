"""Loopback stand-ins for the hosted metric services, each following its vendor's documented API.

Each module here (``datadog``, ``newrelic`` ...) has one subclass of :class:`VendorServer`: a
real aiohttp server on 127.0.0.1 that checks what a real service checks (the path, the
parameters, the credentials in their documented header) and answers in the vendor's
documented shapes. A test sets what the service knows with :meth:`VendorServer.answer`
(a number, or None for an empty answer) or makes it misbehave with
:meth:`VendorServer.fail_with` (a status and the vendor's error body, or a slow answer).
Every request is kept in ``requests``, so a test can assert what was sent and that no
credential came back in a message.

The same classes serve the unit tests of each provider (``tests/analysis/test_<vendor>.py``)
and the end-to-end test in which a canary in the sandbox is promoted on good numbers and
rolled back on bad ones from each provider (``tests/e2e/test_metric_providers.py``): a
subclass also says which MetricTemplate and Secret a user would write for it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Not `web`: the submodule tests.vendors.web would replace that name in this package.
from aiohttp import web as aioweb

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    body: bytes

    def param(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Failure:
    """How the service misbehaves: an HTTP error with a body, or an answer after ``delay``."""

    status: int = 500
    body: Any = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "application/json"


class VendorServer:
    """A vendor's API on loopback; subclasses add the routes and what a user writes.

    Subclasses implement :meth:`add_routes` (handlers call :meth:`seen` first and answer
    from :attr:`value`, or with :meth:`failure_response`), :meth:`provider` (the
    ``spec.provider`` of a MetricTemplate pointed at this server), :meth:`secret_data`
    (the Secret's keys, or None when the type needs none) and :meth:`query` (a query as
    the vendor's documentation would write it for ``target`` in ``namespace``).
    """

    type: str = ""

    def __init__(self) -> None:
        self.value: float | None = 1.0
        self.failure: Failure | None = None
        self.requests: list[Seen] = []
        self._runner: aioweb.AppRunner | None = None
        self.port = 0

    # -- what a test drives ---------------------------------------------------

    def answer(self, value: float | None) -> None:
        """What every query returns from now on; None is an empty answer (no data)."""
        self.value = value
        self.failure = None

    def fail_with(self, failure: Failure | None) -> None:
        self.failure = failure

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    # -- what a user writes ---------------------------------------------------

    def provider(self) -> dict[str, Any]:
        raise NotImplementedError

    def secret_data(self) -> dict[str, str] | None:
        raise NotImplementedError

    def query(self, target: str, namespace: str) -> str:
        raise NotImplementedError

    def metric_template(self, name: str, namespace: str, target: str) -> dict[str, Any]:
        """The MetricTemplate a user writes for this service (its Secret named ``name``)."""
        provider = self.provider()
        if self.secret_data() is not None:
            provider = {**provider, "secretRef": {"name": name}}
        return {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"provider": provider, "query": self.query(target, namespace)},
        }

    def secret(self, name: str, namespace: str) -> dict[str, Any] | None:
        data = self.secret_data()
        if data is None:
            return None
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "stringData": data,
        }

    # -- for subclasses -------------------------------------------------------

    def add_routes(self, app: aioweb.Application) -> None:
        raise NotImplementedError

    async def seen(self, request: aioweb.Request) -> Seen:
        body = await request.read()
        record = Seen(
            method=request.method,
            path=request.path,
            query=tuple(request.query.items()),
            headers=dict(request.headers),
            body=body,
        )
        self.requests.append(record)
        return record

    async def failure_response(self) -> aioweb.Response | None:
        """The scripted failure's answer (after its delay), or None to answer normally."""
        failure = self.failure
        if failure is None:
            return None
        if failure.delay:
            await asyncio.sleep(failure.delay)
            if failure.status < 400:
                return None
        text = failure.body if isinstance(failure.body, str) else json.dumps(failure.body)
        return aioweb.Response(status=failure.status, text=text, content_type=failure.content_type)

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> VendorServer:
        app = aioweb.Application()
        self.add_routes(app)
        self._runner = aioweb.AppRunner(app)
        await self._runner.setup()
        site = aioweb.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
