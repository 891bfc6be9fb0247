"""API aggregation, as kube-aggregator does it: a group-version served by a Service.

Some APIs a cluster answers are not in the API server at all: ``metrics.k8s.io`` (the
metrics-server), ``external.metrics.k8s.io`` and ``custom.metrics.k8s.io`` (prometheus-adapter,
KEDA, the Datadog cluster agent, Keptn's metrics adapter). An adapter registers itself with an
``apiregistration.k8s.io/v1`` APIService named ``<version>.<group>`` whose ``spec.service``
(``namespace``, ``name``, ``port``, default 443) names the Service in front of it; from then on
the API server proxies every request under ``/apis/<group>/<version>`` (the group-version's
discovery document included) to that Service, lists the group in ``/apis`` and answers
``/apis/<group>`` itself. A client cannot tell an aggregated API from a built-in one, which is
why the canary controller's ``externalmetrics`` provider reads through the API server.

What the sandbox does, and where it differs from a real cluster:

* the Service is resolved to one address through its ``Endpoints`` (then its EndpointSlices,
  label ``kubernetes.io/service-name``), as kube-aggregator does with
  ``--enable-aggregator-routing``; a Service without a selector plus a hand-written Endpoints
  object pointing at ``127.0.0.1`` is how a test (or a developer) plugs an adapter in;
* only loopback addresses are proxied to: the sandbox never reaches out of the machine;
* the scheme is HTTPS as in a real cluster (checked against ``spec.caBundle`` for the name
  ``<service>.<namespace>.svc``, or not at all with ``spec.insecureSkipTLSVerify``), except
  when the Service port (or the Endpoints port) says ``appProtocol: http``: a loopback adapter
  written for a test need not bring a certificate;
* the request goes out with the caller's method, path, query, body, ``Accept`` and
  ``Content-Type``, without its ``Authorization``, and with the caller's identity in
  ``X-Remote-User``/``X-Remote-Group`` (kube-aggregator's request-header authentication);
  the answer comes back as it is (status, body, content type);
* a backend that cannot be reached is a 503 ``Status`` with reason ``ServiceUnavailable``
  ("the server is currently unable to handle the request: ..."), as kube-aggregator answers
  for an unavailable APIService; ``status.conditions`` of the APIService are not maintained;
* watches are not streamed through (the whole answer is read before it is relayed).
"""

from __future__ import annotations

import base64
import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from .errors import ApiError
from .store import Store

__all__ = ["APISERVICES", "Aggregator", "Backend"]

APISERVICES = "apiregistration.k8s.io/v1/apiservices"
_UNAVAILABLE = "the server is currently unable to handle the request"
_FORWARDED_HEADERS = ("Accept", "Content-Type", "User-Agent")
PROXY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Backend:
    """Where one aggregated group-version is served, resolved from its Service."""

    host: str
    port: int
    scheme: str
    service: str  # "<namespace>/<name>", for messages
    server_name: str  # the name the backend's certificate must carry
    ssl: ssl.SSLContext | bool

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def _unavailable(why: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", f"{_UNAVAILABLE}: {why}")


def _version_order(service: Mapping[str, Any]) -> tuple[int, str]:
    spec = service.get("spec") or {}
    return (-int(spec.get("versionPriority") or 0), str(spec.get("version") or ""))


class Aggregator:
    """Finds the APIService of a group-version and proxies requests to its Service."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ registrations

    def _apiservices(self) -> list[dict[str, Any]]:
        """The APIServices served by a Service (``spec.service`` set; local ones have none)."""
        listing = self.store.read_list(APISERVICES, None)
        return [
            item
            for item in listing.get("items") or ()
            if isinstance((item.get("spec") or {}).get("service"), Mapping)
        ]

    def apiservice(self, group: str, version: str) -> dict[str, Any] | None:
        """The APIService that serves ``group/version`` through a Service, if any."""
        if not group:
            return None
        for item in self._apiservices():
            spec = item.get("spec") or {}
            if spec.get("group") == group and spec.get("version") == version:
                return item
        return None

    def api_group(self, group: str) -> dict[str, Any] | None:
        """``/apis/<group>`` of an aggregated group (kube-aggregator answers it itself)."""
        services = sorted(
            (s for s in self._apiservices() if (s.get("spec") or {}).get("group") == group),
            key=_version_order,
        )
        if not services:
            return None
        entries = [
            {"groupVersion": f"{group}/{s['spec']['version']}", "version": s["spec"]["version"]}
            for s in services
        ]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": entries,
            "preferredVersion": entries[0],
        }

    def merge_group_list(self, listing: dict[str, Any]) -> dict[str, Any]:
        """``/apis`` with the aggregated groups the registry does not serve appended."""
        known = {g.get("name") for g in listing.get("groups") or ()}
        extra: list[dict[str, Any]] = []
        for group in sorted({str(s["spec"].get("group") or "") for s in self._apiservices()}):
            if group and group not in known:
                doc = self.api_group(group)
                if doc is not None:
                    doc.pop("kind")
                    doc.pop("apiVersion")
                    extra.append(doc)
        if extra:
            listing = {**listing, "groups": [*(listing.get("groups") or ()), *extra]}
        return listing

    # ------------------------------------------------------------------ resolution

    def _read(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.store.read(resource, namespace, name)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def backend(self, apiservice: Mapping[str, Any]) -> Backend:
        """The loopback address of the APIService's Service; 503 when there is none."""
        spec = apiservice.get("spec") or {}
        ref = spec.get("service") or {}
        namespace = str(ref.get("namespace") or "")
        name = str(ref.get("name") or "")
        port = int(ref.get("port") or 443)
        where = f"{namespace}/{name}"
        service = self._read("v1/services", namespace, name)
        if service is None:
            raise _unavailable(f'service "{where}" not found')
        service_port = next(
            (
                p
                for p in (service.get("spec") or {}).get("ports") or ()
                if int(p.get("port") or 0) == port
            ),
            None,
        )
        if service_port is None:
            raise _unavailable(f'service "{where}" has no port {port}')
        port_name = str(service_port.get("name") or "")
        found = self._from_endpoints(namespace, name, port_name) or self._from_slices(
            namespace, name, port_name
        )
        if found is None:
            raise _unavailable(f'no endpoints available for service "{where}"')
        host, target_port, endpoint_protocol = found
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise _unavailable(
                f'endpoint {host} of service "{where}" is not a loopback address '
                "(the sandbox proxies only to this machine)"
            )
        protocol = service_port.get("appProtocol") or endpoint_protocol
        server_name = f"{name}.{namespace}.svc"
        if protocol == "http":
            return Backend(host, target_port, "http", where, server_name, False)
        return Backend(host, target_port, "https", where, server_name, self._tls(spec))

    @staticmethod
    def _tls(spec: Mapping[str, Any]) -> ssl.SSLContext | bool:
        if spec.get("insecureSkipTLSVerify"):
            return False
        bundle = spec.get("caBundle")
        if bundle:
            pem = base64.b64decode(str(bundle)).decode("ascii", errors="replace")
            return ssl.create_default_context(cadata=pem)
        return ssl.create_default_context()

    def _from_endpoints(
        self, namespace: str, name: str, port_name: str
    ) -> tuple[str, int, str | None] | None:
        endpoints = self._read("v1/endpoints", namespace, name)
        if endpoints is None:
            return None
        for subset in endpoints.get("subsets") or ():
            # Endpoints ports carry the names of the Service's ports ("" for an unnamed one).
            match = next(
                (p for p in subset.get("ports") or () if str(p.get("name") or "") == port_name),
                None,
            )
            addresses: list[dict[str, Any]] = subset.get("addresses") or []
            if match is not None and addresses and addresses[0].get("ip"):
                return str(addresses[0]["ip"]), int(match["port"]), match.get("appProtocol")
        return None

    def _from_slices(
        self, namespace: str, name: str, port_name: str
    ) -> tuple[str, int, str | None] | None:
        listing = self.store.read_list(
            "discovery.k8s.io/v1/endpointslices",
            namespace,
            label_selector=f"kubernetes.io/service-name={name}",
        )
        for piece in listing.get("items") or ():
            match = next(
                (p for p in piece.get("ports") or () if str(p.get("name") or "") == port_name),
                None,
            )
            if match is None or match.get("port") is None:
                continue
            for endpoint in piece.get("endpoints") or ():
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                addresses = endpoint.get("addresses") or ()
                if addresses:
                    return str(addresses[0]), int(match["port"]), match.get("appProtocol")
        return None

    # ------------------------------------------------------------------ proxying

    async def proxy(
        self, request: web.Request, apiservice: Mapping[str, Any], *, user: str
    ) -> web.Response:
        """Relay ``request`` to the APIService's backend and its answer back."""
        backend = self.backend(apiservice)
        headers = {h: request.headers[h] for h in _FORWARDED_HEADERS if h in request.headers}
        headers["X-Remote-User"] = user
        headers["X-Remote-Group"] = "system:authenticated"
        body = await request.read()
        url = URL(backend.base_url + request.raw_path, encoded=True)
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=PROXY_TIMEOUT)
            )
        try:
            async with self._session.request(
                request.method,
                url,
                data=body or None,
                headers=headers,
                ssl=backend.ssl,
                server_hostname=backend.server_name if backend.scheme == "https" else None,
                allow_redirects=False,
            ) as response:
                data = await response.read()
                content_type = response.headers.get("Content-Type", "application/json")
                return web.Response(
                    status=response.status, body=data, headers={"Content-Type": content_type}
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            detail = str(exc) or type(exc).__name__
            raise _unavailable(
                f'error trying to reach service "{backend.service}" at {backend.base_url}: {detail}'
            ) from None
