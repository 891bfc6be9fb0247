"""The controller's Kubernetes client as an `analysis.KubeReader`, for the in-cluster metric providers.

Two metric provider types read the Kubernetes API instead of a vendor's address: ``keptn``
(the ``status.value`` of a KeptnMetric) and ``externalmetrics`` (``external.metrics.k8s.io``,
served by a metric adapter behind the API server). The ``analysis`` package knows no
Kubernetes client (an import contract forbids ``canary``), so it asks for a
:class:`analysis.KubeReader`: ``get_path(path, params) -> dict | None``. This module is that
reader over :meth:`canary.adapters.kube.KubeClient.get_path` — the controller's own
connection, identity, rate limit and timeout — and translates the client's errors into the
analysis package's, so a failed read becomes a metric verdict with a sentence, never an
exception the analyzer does not expect:

=====================================  ==============================================
``NotFound`` (404)                     ``None`` (the provider says what is missing)
``Forbidden`` (401/403)                ``UnauthorizedError``: grant the controller's
                                       service account ``get`` on the resource
``Invalid`` (400/422)                  ``BadQueryError`` (e.g. a label selector the
                                       metric adapter rejects)
``Unavailable`` caused by a timeout    ``QueryTimeoutError``
``Unavailable`` (refused, 429, 5xx,    ``ProviderUnavailableError`` (a 503 of the API
an aggregated API's backend down)      server when a metric adapter is down)
any other ``KubeError``                ``HTTPStatusError`` with its status
=====================================  ==============================================

Reads always go to the API server, never to the controller's watch cache: these objects
(KeptnMetrics) and answers (external metrics) are not cached, and each tick wants the
latest value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysis import (
    BadQueryError,
    HTTPStatusError,
    KubeReader,
    ProviderUnavailableError,
    QueryError,
    QueryTimeoutError,
    UnauthorizedError,
)
from canary.adapters.kube import KubeClient
from canary.ports import Forbidden, Invalid, KubeError, Unavailable

__all__ = ["KubePathReader", "kube_reader_for"]


class KubePathReader:
    """An :class:`analysis.KubeReader` over a :class:`KubeClient`; see the module docstring."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def get_path(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> Mapping[str, Any] | None:
        try:
            return await self.client.get_path(path, params)
        except KubeError as exc:
            raise translate(exc, path) from None


def translate(exc: KubeError, path: str) -> QueryError:
    """The analysis error a failed read of ``path`` means (the API server's message kept)."""
    said = str(exc) or f"HTTP {exc.status}"
    status = exc.status or 0
    if isinstance(exc, Forbidden):
        return UnauthorizedError(
            f"the Kubernetes API refused to let the controller read {path} (HTTP {status}): "
            f"{said}; grant its service account 'get' on that resource",
            query=path,
            status_code=status,
        )
    if isinstance(exc, Invalid):
        return BadQueryError(
            f"the Kubernetes API rejected the request for {path} (HTTP {status}): {said}",
            query=path,
            status_code=status,
        )
    if isinstance(exc, Unavailable):
        if isinstance(exc.__cause__, TimeoutError):
            return QueryTimeoutError(
                f"the Kubernetes API did not answer in time reading {path}: {said}", query=path
            )
        return ProviderUnavailableError(
            f"the Kubernetes API could not serve {path}"
            + (f" (HTTP {status})" if status else "")
            + f": {said}",
            query=path,
        )
    return HTTPStatusError(
        f"the Kubernetes API answered HTTP {status} reading {path}: {said}",
        query=path,
        status_code=status,
    )


def kube_reader_for(kube: object) -> KubePathReader | None:
    """The reader over the `KubeClient` behind ``kube``: the client itself, or the one a
    wrapper holds in ``.kube`` (the controller's `CachedKube`); None when there is none
    (a test's in-memory fake), in which case the two providers answer that no client was given.
    """
    seen = 0
    while kube is not None and seen < 4:
        if isinstance(kube, KubeClient):
            return KubePathReader(kube)
        kube = getattr(kube, "__dict__", {}).get("kube")
        seen += 1
    return None


class SameNamespaceReader:
    """A reader that refuses paths into another namespace than ``namespace``.

    `canary run --no-cross-namespace-refs` bounds what a Canary may read through its metric
    queries too: ``keptnmetric/<namespace>/<name>`` and ``<namespace>/<metric>`` name a
    namespace, which the controller would otherwise read with its own identity.
    """

    def __init__(self, reader: KubeReader, namespace: str) -> None:
        self.reader = reader
        self.namespace = namespace

    async def get_path(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> Mapping[str, Any] | None:
        parts = path.split("/")
        if "namespaces" in parts:
            index = parts.index("namespaces")
            named = parts[index + 1] if index + 1 < len(parts) else ""
            if named != self.namespace:
                raise BadQueryError(
                    f"{path} is in namespace {named}, not the Canary's ({self.namespace}), and "
                    "cross-namespace references are disabled (--no-cross-namespace-refs)",
                    query=path,
                )
        return await self.reader.get_path(path, params)
