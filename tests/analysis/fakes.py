"""Fakes of the analysis tests: a metric provider answering from callables, per side.

Below the provider seam only (what ``evaluate`` asks and how it reads the answers); the
providers themselves are tested against real HTTP servers and a real Prometheus.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from analysis import Bucket

__all__ = ["CountsProvider"]


class CountsProvider:
    """Fake provider answering count and bucket queries from callables per side."""

    def __init__(
        self,
        answer: Callable[[str, bool, bool], float | Exception],
        buckets: Callable[[bool], list[Bucket]] | None = None,
    ) -> None:
        self.answer = answer
        self.buckets = buckets
        self.queries: list[tuple[str, datetime | None]] = []

    async def run_query(self, query: str, *, at: datetime | None = None) -> float:
        self.queries.append((query, at))
        primary = "podinfo-primary" in query
        errors = '5.*"' in query
        value = self.answer(query, primary, errors)
        if isinstance(value, Exception):
            raise value
        return value

    async def is_online(self) -> bool:
        return True

    async def query_samples(
        self, query: str, *, start: datetime, end: datetime, step_seconds: float
    ) -> tuple[float, ...]:
        raise NotImplementedError

    async def query_buckets(self, query: str, *, at: datetime | None = None) -> tuple[Bucket, ...]:
        self.queries.append((query, at))
        assert self.buckets is not None
        return tuple(self.buckets("podinfo-primary" in query))
