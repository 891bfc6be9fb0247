"""The generic ``web`` provider: Argo Rollouts' web metric on a MetricTemplate.

Any HTTP endpoint that answers JSON can feed a canary's analysis: the template's rendered
``query`` is the URL (absolute, or relative to ``spec.provider.address``), ``web.method`` and
``web.body`` (rendered with the query's variables) say what to send, and ``web.jsonPath``
(Kubernetes JSONPath in braces, ``{$.data.errorRate}``; see :mod:`analysis._spec.web`) says
where the number is in the answer. Flagger has no such provider; Argo Rollouts does, and this
one reads the same fields.

Headers are ``spec.provider.headers`` plus, for each ``web.secretHeaders`` entry, the header
with the value of that key of the template's Secret (a bearer token, an API key), so no
credential has to be written in a manifest. A body goes out as ``application/json`` unless
the headers say otherwise, as in Argo.

Argo keeps whatever the path selects as text and lets ``successCondition`` judge it; a
threshold judges a number, so the value must be one:

* a JSON number, or a string holding one (``"0.25"``);
* a boolean: ``true`` is 1 and ``false`` is 0, so Argo's ``result == true`` becomes
  ``thresholdRange: {min: 1}``;
* a list of exactly one of those (what a ``[*]`` or filter over one element gives).

A path that selects nothing, ``null``, an empty list or NaN is "no data"
(:class:`~analysis.NoDataError`, naming the path), several values are
:class:`~analysis.MultipleSeriesError`, and anything else (an object, a word) is a
:class:`~analysis.QueryError` saying what was found there. Only 2xx answers are read; the rest
become the error tree of :mod:`analysis._http`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from analysis._http import SingleValue, VendorHTTP, short
from analysis._spec.errors import (
    BadQueryError,
    HTTPStatusError,
    MultipleSeriesError,
    NoDataError,
    QueryError,
)
from analysis._spec.provider import ProviderConfig
from analysis._spec.web import JsonPath, JsonPathError, WebSpec, compile_json_path

__all__ = ["WebProvider", "number_at"]

_TITLE = "web endpoint"


class WebProvider(SingleValue):
    """One JSON endpoint behind :class:`~analysis.MetricProvider`; see the module docstring."""

    title = _TITLE

    def __init__(
        self,
        config: ProviderConfig,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if config.web is None:
            raise QueryError("a web provider needs spec.provider.web with a jsonPath")
        self.config = config
        self.web: WebSpec = config.web
        try:
            self.path: JsonPath = compile_json_path(self.web.json_path)
        except JsonPathError as exc:  # the spec parser reports it first; a config built by hand
            raise BadQueryError(f"spec.provider.web.jsonPath: {exc}") from None
        self.http = VendorHTTP(config, _TITLE, client=client, transport=transport)

    def __repr__(self) -> str:
        return f"WebProvider(address={self.http.where!r}, jsonPath={self.path.text!r})"

    def url(self, query: str) -> str:
        """The URL of ``query``: itself when absolute, else joined to the provider's address."""
        target = query.strip()
        if target.startswith(("http://", "https://")):
            return target
        if not self.config.address:
            raise BadQueryError(
                f"the web query {short(target)!r} is not an absolute http(s):// URL and "
                "spec.provider.address is not set; write the full URL in the query or set "
                "spec.provider.address (or the Secret's 'address' key)",
                query=query,
            )
        return f"{self.config.address.rstrip('/')}/{target.lstrip('/')}"

    def _headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = []
        for header, key in self.web.secret_headers:
            value = self.config.secret_value(key)
            if value is None:
                raise QueryError(
                    f"spec.provider.web.secretHeaders.{header}: the Secret has no {key!r} key"
                )
            headers.append((header, value))
        given = {name.lower() for name, _ in (*self.config.headers, *headers)}
        if "accept" not in given:
            headers.append(("Accept", "application/json"))
        if self.web.body is not None and "content-type" not in given:
            headers.append(("Content-Type", "application/json"))
        return headers

    async def run_query(self, query: str, *, at: datetime | None = None) -> float:
        """The number at ``jsonPath`` in the answer to ``query``; ``at`` is not used: the
        endpoint decides its own window (``{{ interval }}`` in the URL or body)."""
        del at
        url = self.url(query)
        response = await self.http.send(
            self.web.method,
            url,
            query=query,
            headers=self._headers(),
            content=self.web.body,
        )
        if not 200 <= response.status_code < 300:
            raise HTTPStatusError(
                self.http.clean(
                    f"{_TITLE} at {short(url)} answered HTTP {response.status_code}, "
                    "expected 2xx with a JSON body"
                ),
                query=query,
                status_code=response.status_code,
            )
        document = self.http.decode(response, query)
        return number_at(self.path, document, query=query, clean=self.http.clean)

    async def is_online(self) -> bool:
        """Always true: a web endpoint has no health check of its own, its query says it all."""
        return True


def number_at(
    path: JsonPath,
    document: Any,
    *,
    query: str,
    clean: Callable[[str], str] = str,
) -> float:
    """The one number ``path`` selects in ``document``; see the module docstring for the rules.

    ``clean`` masks credentials in messages that quote the answer.
    """
    said = clean

    found = path.find(document)
    where = f"jsonPath {path.text}"
    if not found:
        raise NoDataError(
            f"{where} selected nothing in the answer to {short(query)!r}", query=query
        )
    if len(found) > 1:
        raise MultipleSeriesError(
            f"{where} selected {len(found)} values in the answer to {short(query)!r}, "
            "expected one; narrow the path (an index, a filter)",
            query=query,
            series=len(found),
        )
    value = found[0]
    if isinstance(value, list):
        if not value:
            raise NoDataError(
                f"{where} is an empty list in the answer to {short(query)!r}", query=query
            )
        if len(value) > 1:
            raise MultipleSeriesError(
                f"{where} is a list of {len(value)} values in the answer to {short(query)!r}, "
                "expected one; select an element ([0]) or filter",
                query=query,
                series=len(value),
            )
        value = value[0]
    if value is None:
        raise NoDataError(f"{where} is null in the answer to {short(query)!r}", query=query)
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    number: float
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise QueryError(
                said(
                    f"{where} is the string {short(value, 60)!r} in the answer to "
                    f"{short(query)!r}, not a number"
                ),
                query=query,
            ) from None
    else:
        kind = "an object" if isinstance(value, dict) else f"a {type(value).__name__}"
        keys = (
            f" with keys {', '.join(sorted(map(str, value))[:5])}"
            if isinstance(value, dict)
            else ""
        )
        raise QueryError(
            said(f"{where} is {kind}{keys} in the answer to {short(query)!r}, not a number"),
            query=query,
        )
    if math.isnan(number):
        raise NoDataError(f"{where} is NaN in the answer to {short(query)!r}", query=query)
    return number
