"""The seam between judging and fetching: the metric provider Protocol and its factory.

Judges only see numbers; everything that talks to a metric server hides behind
:class:`MetricProvider`.  A provider is built from a
:class:`~analysis.ProviderConfig` (the MetricTemplate's ``spec.provider`` with
its Secret already resolved, see :mod:`analysis._spec.provider`) by
:func:`make_provider`, the one place that turns a provider type into code that
talks to a server.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Protocol, runtime_checkable

from analysis._spec.provider import ProviderConfig, check_provider_type
from analysis._spec.vocabulary import Bucket

__all__ = ["MetricProvider", "make_provider"]


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


def make_provider(config: ProviderConfig, *, path: str = "spec.provider.type") -> MetricProvider:
    """Return a provider for ``config``; unknown or unsupported types name ``path``."""
    check_provider_type(config.type, path)
    # Loaded on use so that importing analysis stays free of httpx (pure spec parsing).
    module = importlib.import_module("analysis._prometheus")
    provider: MetricProvider = module.PrometheusProvider(config)
    return provider
