"""InfluxDB behind :class:`~analysis.MetricProvider`, with Flagger's ``influxdb`` semantics.

A MetricTemplate of type ``influxdb`` holds a Flux query; its Secret holds ``token`` and
``org`` (Flagger refuses a Secret without either); the address is the user's (no default,
as in Flagger). Flux needs InfluxDB 2.x, Cloud, or 1.8 with Flux enabled.

Each reading is one call of the InfluxDB v2 query API, as the Go client Flagger uses makes
it: ``POST <address>/api/v2/query?org=<org>`` with ``Authorization: Token <token>``,
``Accept: application/csv`` and the JSON body ``{"query": <flux>, "type": "flux",
"dialect": {... "annotations": ["datatype", "group", "default"]}}``. The window is the
query's own ``range(start: -{{ interval }})``: Flux durations are PromQL's (``30s``, ``1m``,
``1h``), so ``{{ interval }}`` needs no translation. When the caller asks about a past
tick (``at``), the body's ``now`` (RFC 3339) moves Flux's ``now()``, so relative ranges end
there; Flagger always asks about now.

InfluxDB answers annotated CSV (parsed here with the stdlib ``csv`` module): blocks of
``#datatype``/``#group``/``#default`` rows, a header (``,result,table,_start,...,_value``)
and records, a blank line between blocks; each distinct ``(result, table)`` is one table
(one series). A runtime error arrives in-band, with HTTP 200, as a block whose header is
``,error,reference``: that is a :class:`~analysis.QueryError` carrying InfluxDB's words.

Which number is the metric's value, and why: the ``_value`` of the *first record*, as
Flagger takes it (the Go client's first ``Record().Value()``). A Flux query for a check
ends in an aggregate (``count()``, ``mean()``, ``last()``), so that is its one row.
Differences from Flagger, each one a louder answer where Flagger is silent:

* no record is :class:`~analysis.NoDataError` (Flagger returns 0, which would pass an
  error-count check without data); a null ``_value`` (after ``#default``) or NaN too;
* several tables are :class:`~analysis.MultipleSeriesError`: without ``group()`` an
  aggregate runs per series (per pod, per status code) and Flagger judges whichever table
  came first;
* ``long`` and ``unsignedLong`` values are numbers: ``count()`` yields a ``long``, which
  Flagger refuses as "invalid response" although its docs' example ends in ``count()``;
  strings, booleans and times are a :class:`~analysis.QueryError`.

``is_online`` asks ``GET /health`` (status ``pass``); Flagger instead queries a bucket
named ``default``, which need not exist.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from analysis._http import SingleValue, VendorHTTP, short
from analysis._spec.errors import (
    AnalysisSpecError,
    MultipleSeriesError,
    NoDataError,
    QueryError,
)
from analysis._spec.provider import ProviderConfig

__all__ = ["ANNOTATIONS", "CsvTable", "InfluxDBProvider", "parse_annotated_csv"]

ANNOTATIONS = ("datatype", "group", "default")
_NUMERIC = {"double", "long", "unsignedLong"}


@dataclass(frozen=True)
class CsvTable:
    """One block of an annotated CSV answer: its columns, their types and defaults, rows."""

    columns: tuple[str, ...]
    datatypes: tuple[str, ...] = ()
    defaults: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = field(default=())

    def cell(self, row: Sequence[str], column: str) -> str:
        """The value of ``column`` in ``row``, its ``#default`` when empty."""
        i = self.columns.index(column)
        value = row[i] if i < len(row) else ""
        if value == "" and i < len(self.defaults):
            return self.defaults[i]
        return value

    def datatype(self, column: str) -> str:
        i = self.columns.index(column)
        return self.datatypes[i] if i < len(self.datatypes) else ""


def parse_annotated_csv(text: str) -> list[CsvTable]:
    """The blocks of an annotated (or plain) CSV answer, in order; blank lines split them."""
    blocks: list[CsvTable] = []
    for lines in _blocks(text):
        annotations: dict[str, tuple[str, ...]] = {}
        header: tuple[str, ...] | None = None
        rows: list[tuple[str, ...]] = []
        for row in csv.reader(lines):
            if not row:
                continue
            if row[0].startswith("#") and header is None:
                annotations[row[0][1:]] = tuple(row)
            elif header is None:
                header = tuple(row)
            else:
                rows.append(tuple(row))
        if header is None:
            continue
        blocks.append(
            CsvTable(
                columns=header,
                datatypes=annotations.get("datatype", ()),
                defaults=annotations.get("default", ()),
                rows=tuple(rows),
            )
        )
    return blocks


def _blocks(text: str) -> Iterator[list[str]]:
    """The lines of each block; a line with nothing but whitespace ends a block."""
    block: list[str] = []
    for line in io.StringIO(text, newline=""):
        if line.strip() == "":
            if block:
                yield block
            block = []
        else:
            block.append(line)
    if block:
        yield block


class InfluxDBProvider(SingleValue):
    """InfluxDB's v2 Flux query API; see the module docstring for the value used."""

    title = "InfluxDB"

    def __init__(
        self,
        config: ProviderConfig,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not config.address:
            raise AnalysisSpecError(
                "spec.provider.address",
                "an influxdb provider needs the address of InfluxDB "
                "(spec.provider.address or the Secret's 'address' key)",
            )
        token = config.secret_value("token") or config.token
        org = config.secret_value("org")
        missing = [k for k, v in (("token", token), ("org", org)) if not v]
        if missing:
            raise AnalysisSpecError(
                "spec.provider.secretRef",
                f"an influxdb provider needs {' and '.join(repr(k) for k in missing)} "
                "in its Secret",
            )
        assert token is not None and org is not None
        self._config = config
        self._org = org
        self._token = token
        self._http = VendorHTTP(config, self.title, client=client, transport=transport)
        self._base = config.address.rstrip("/")

    @property
    def config(self) -> ProviderConfig:
        return self._config

    def __repr__(self) -> str:
        return f"InfluxDBProvider(address={self._http.where!r})"

    def request_body(self, query: str, at: datetime | None = None) -> dict[str, Any]:
        """The JSON body of ``POST /api/v2/query`` for ``query`` (``now`` when ``at``)."""
        body: dict[str, Any] = {
            "query": query,
            "type": "flux",
            "dialect": {
                "header": True,
                "delimiter": ",",
                "annotations": list(ANNOTATIONS),
                "commentPrefix": "#",
                "dateTimeFormat": "RFC3339",
            },
        }
        if at is not None:
            when = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
            body["now"] = when.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return body

    async def run_query(self, query: str, *, at: datetime | None = None) -> float:
        response = await self._http.send(
            "POST",
            f"{self._base}/api/v2/query",
            query=query,
            params=[("org", self._org)],
            headers=(
                ("Authorization", f"Token {self._token}"),
                ("Accept", "application/csv"),
            ),
            json_body=self.request_body(query, at),
        )
        return self._first_value(response.text, query)

    async def is_online(self) -> bool:
        try:
            body = await self._http.get_json(f"{self._base}/health", query="GET /health")
        except QueryError:
            return False
        return isinstance(body, dict) and body.get("status") == "pass"

    def _first_value(self, text: str, query: str) -> float:
        blocks = parse_annotated_csv(text)
        for block in blocks:
            if "error" in block.columns and "reference" in block.columns and block.rows:
                said = self._http.clean(block.cell(block.rows[0], "error"))
                raise QueryError(
                    f"InfluxDB failed to run query {short(query)!r}: {said}", query=query
                )
        tables: dict[tuple[str, str], tuple[CsvTable, tuple[str, ...]]] = {}
        for block in blocks:
            if "_value" not in block.columns:
                raise self._no_value_column(block, query)
            for row in block.rows:
                key = (
                    block.cell(row, "result") if "result" in block.columns else "",
                    block.cell(row, "table") if "table" in block.columns else "",
                )
                tables.setdefault(key, (block, row))
        if not tables:
            raise NoDataError(
                f"InfluxDB returned no records for query {short(query)!r}", query=query
            )
        if len(tables) > 1:
            raise MultipleSeriesError(
                f"InfluxDB query {short(query)!r} returned {len(tables)} tables where one was "
                "expected (merge them before the aggregate, e.g. with |> group())",
                query=query,
                series=len(tables),
            )
        block, row = next(iter(tables.values()))
        return self._value(block, row, query)

    def _no_value_column(self, block: CsvTable, query: str) -> QueryError:
        start = self._http.clean(" ".join(",".join(block.columns).split())[:80])
        return QueryError(
            f"InfluxDB answered query {short(query)!r} with a table without a _value column "
            f"(a pivot or map removed it, or the body is not annotated CSV): {start!r}",
            query=query,
        )

    def _value(self, block: CsvTable, row: Sequence[str], query: str) -> float:
        raw = block.cell(row, "_value")
        datatype = block.datatype("_value")
        if raw == "":
            raise NoDataError(
                f"InfluxDB query {short(query)!r} returned a null _value", query=query
            )
        if datatype and datatype not in _NUMERIC:
            raise QueryError(
                f"InfluxDB query {short(query)!r} returned a {datatype} _value {raw[:40]!r}, "
                "not a number",
                query=query,
            )
        try:
            value = float(raw)
        except ValueError:
            raise QueryError(
                f"InfluxDB query {short(query)!r} returned a non-numeric _value {raw[:40]!r}",
                query=query,
            ) from None
        if math.isnan(value):
            raise NoDataError(f"InfluxDB query {short(query)!r} returned NaN", query=query)
        return value
