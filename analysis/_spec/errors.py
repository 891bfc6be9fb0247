"""The exceptions the analysis package raises, in one small tree.

Callers (the controller) need to tell "the spec is wrong" from "the metric
server has no data yet" from "the metric server is down", because each gets a
different outcome and message.  Every error is translated at the boundary where
it happens (template renderer, HTTP client) into one of these, so no httpx or
numpy exception ever leaves the package::

    AnalysisError                      base of everything below
    ├── AnalysisSpecError              bad input; ``path`` names the field
    │   ├── AnalysisSpecErrors         every bad field of one spec at once (``problems``)
    │   ├── UnknownProviderError       provider type nobody knows
    │   └── ProviderNotSupportedError  a Flagger provider type we do not implement yet
    ├── TemplateError                  query template cannot be rendered
    └── QueryError                     a query did not yield the expected number(s)
        ├── NoDataError                empty result or NaN (no traffic yet?)
        ├── MultipleSeriesError        several series where one value was expected
        ├── ProviderUnavailableError   connection refused, DNS, TLS, ...
        │   └── QueryTimeoutError      no answer within the timeout
        ├── HTTPStatusError            HTTP 4xx/5xx without a more precise meaning
        │   └── UnauthorizedError      HTTP 401/403: the credentials are missing, wrong or too weak
        ├── BadQueryError              the server rejected the query itself (syntax, unknown metric)
        └── PrometheusAPIError         Prometheus said ``status: error`` (errorType, error)

The spec errors are named for the package (canary's own manifests have a
``canary.model.SpecError``, which the Canary parser builds from these).

Messages never contain credentials: the HTTP layer never formats headers, and
the provider configuration hides secrets from ``repr``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AnalysisError",
    "AnalysisSpecError",
    "AnalysisSpecErrors",
    "BadQueryError",
    "HTTPStatusError",
    "MultipleSeriesError",
    "NoDataError",
    "PrometheusAPIError",
    "ProviderNotSupportedError",
    "ProviderUnavailableError",
    "QueryError",
    "QueryTimeoutError",
    "TemplateError",
    "UnauthorizedError",
    "UnknownProviderError",
]


class AnalysisError(Exception):
    """Base class of every error raised by the analysis package."""


class AnalysisSpecError(AnalysisError, ValueError):
    """Bad input: ``path`` is the field (e.g. ``spec.analysis.metrics[1].compare.alpha``)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.detail = message
        super().__init__(f"{path}: {message}")

    @property
    def problems(self) -> tuple[AnalysisSpecError, ...]:
        """Every problem this error reports: itself (a :class:`AnalysisSpecErrors` has several)."""
        return (self,)


class AnalysisSpecErrors(AnalysisSpecError):
    """Every problem found in one spec, for callers that report them all at once.

    The Canary parser shows a user every bad field of a manifest in one round trip,
    so the ``parse_*`` functions do not stop at the first problem: they raise this,
    with each problem in ``problems`` in the order found.  Its own ``path`` is the
    first problem's, so code that handles a plain :class:`AnalysisSpecError` still works.
    """

    def __init__(self, problems: Sequence[AnalysisSpecError]) -> None:
        if not problems:
            raise ValueError("AnalysisSpecErrors needs at least one problem")
        self._problems = tuple(p for problem in problems for p in problem.problems)
        first = self._problems[0]
        more = len(self._problems) - 1
        super().__init__(first.path, first.detail + (f" (and {more} more)" if more else ""))

    @property
    def problems(self) -> tuple[AnalysisSpecError, ...]:
        return self._problems


class UnknownProviderError(AnalysisSpecError):
    """The provider type is not a name any metric provider uses."""


class ProviderNotSupportedError(AnalysisSpecError):
    """The provider type is one of Flagger's, but canary-engine does not implement it yet."""


class TemplateError(AnalysisError, ValueError):
    """A query template could not be rendered (unknown variable, unbalanced braces, ...)."""


class QueryError(AnalysisError):
    """A query did not produce the number(s) the caller asked for."""

    def __init__(self, message: str, *, query: str | None = None) -> None:
        self.query = query
        super().__init__(message)


class NoDataError(QueryError):
    """The query returned no series, or NaN (typically: no traffic in the window)."""


class MultipleSeriesError(QueryError):
    """The query returned several series where exactly one value was expected."""

    def __init__(self, message: str, *, query: str | None = None, series: int = 0) -> None:
        self.series = series
        super().__init__(message, query=query)


class ProviderUnavailableError(QueryError):
    """The metric server could not be reached (refused, DNS, TLS, reset)."""


class QueryTimeoutError(ProviderUnavailableError):
    """The metric server did not answer within the configured timeout."""


class HTTPStatusError(QueryError):
    """The metric server answered with an HTTP error and no structured error body."""

    def __init__(self, message: str, *, query: str | None = None, status_code: int = 0) -> None:
        self.status_code = status_code
        super().__init__(message, query=query)


class UnauthorizedError(HTTPStatusError):
    """The metric server refused the credentials (HTTP 401 or 403): fix the Secret, not the query."""


class BadQueryError(QueryError):
    """The metric server rejected the query itself: it will fail the same way every tick."""

    def __init__(self, message: str, *, query: str | None = None, status_code: int = 0) -> None:
        self.status_code = status_code
        super().__init__(message, query=query)


class PrometheusAPIError(QueryError):
    """Prometheus answered ``status: error``; ``error_type`` is e.g. ``bad_data``."""

    def __init__(
        self,
        message: str,
        *,
        query: str | None = None,
        status_code: int = 0,
        error_type: str = "",
    ) -> None:
        self.status_code = status_code
        self.error_type = error_type
        super().__init__(message, query=query)
