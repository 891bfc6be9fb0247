"""The seam between judging and fetching: the metric provider Protocol and its factory.

Judges only see numbers; everything that talks to a metric server hides behind
:class:`MetricProvider`.  A provider is built from a
:class:`~analysis.ProviderConfig` (the MetricTemplate's ``spec.provider`` with
its Secret already resolved, see :mod:`analysis._spec.provider`) by
:func:`make_provider`, the one place that turns a provider type into code that
talks to a server. Which module that is, is a row of :mod:`analysis._spec.vendors`.

Two providers (``keptn``, ``externalmetrics``) read the Kubernetes API rather than a
vendor's address; the caller hands them a :class:`KubeReader`, so this package stays
free of any Kubernetes client.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from analysis._spec.errors import ProviderUnavailableError
from analysis._spec.provider import ProviderConfig, check_provider_type
from analysis._spec.vendors import vendor
from analysis._spec.vocabulary import Bucket

__all__ = ["KubeReader", "MetricProvider", "make_provider"]


@runtime_checkable
class KubeReader(Protocol):
    """Read access to the Kubernetes API by path, for the providers that live in it.

    ``get_path("/apis/metrics.keptn.sh/v1beta1/namespaces/ns/keptnmetrics/name")`` returns
    the decoded JSON, or None when the API answers 404. Any other failure raises a
    :class:`~analysis.QueryError` subclass (the caller translates its client's errors).
    """

    async def get_path(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> Mapping[str, Any] | None: ...


@runtime_checkable
class MetricProvider(Protocol):
    """What a metric server must offer to the judges.

    ``run_query`` returns exactly one number or raises a :class:`~analysis.QueryError`
    subclass (``NoDataError`` for an empty result or NaN).  ``query_samples`` runs
    a range query and returns the values of its single series, oldest first.
    ``query_buckets`` runs an instant query grouped ``by (le)`` and returns the
    cumulative buckets sorted by ``le`` (``+Inf`` included).
    """

    async def run_query(self, query: str, *, at: datetime | None = None) -> float: ...

    async def is_online(self) -> bool: ...

    async def query_samples(
        self, query: str, *, start: datetime, end: datetime, step_seconds: float
    ) -> tuple[float, ...]: ...

    async def query_buckets(
        self, query: str, *, at: datetime | None = None
    ) -> tuple[Bucket, ...]: ...


def make_provider(
    config: ProviderConfig,
    *,
    path: str = "spec.provider.type",
    kube: KubeReader | None = None,
) -> MetricProvider:
    """Return a provider for ``config``; unknown types name ``path``.

    ``kube`` is needed by the types that read the Kubernetes API (``keptn``,
    ``externalmetrics``); without it they raise :class:`~analysis.ProviderUnavailableError`.
    """
    check_provider_type(config.type, path)
    row = vendor(config.type)
    assert row is not None  # check_provider_type raised for a type without a row
    # Loaded on use so that importing analysis stays free of httpx (pure spec parsing).
    module = importlib.import_module(row.module)
    cls = getattr(module, row.cls)
    if row.kube:
        if kube is None:
            raise ProviderUnavailableError(
                f"a {row.type} provider reads the Kubernetes API, and no client was given"
            )
        provider: MetricProvider = cls(config, kube=kube)
    else:
        provider = cls(config)
    return provider
