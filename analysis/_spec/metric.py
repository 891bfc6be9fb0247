"""One ``spec.analysis.metrics[]`` entry: its typed form and its one parser.

The Canary parser (``canary.model``) calls :func:`parse_metric` for each entry
and keeps the :class:`MetricCheck` it returns; the controller hands that same
object to ``analysis.evaluate`` once it has fetched the MetricTemplate's query
(:meth:`MetricCheck.with_template_query`).  So an entry is read once, by one set
of rules, and a problem found at admission is the problem found at run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from analysis._spec.compare import CompareSpec, read_compare
from analysis._spec.fields import Problems, read_bool, read_number, type_name
from analysis._spec.vocabulary import (
    BUILTIN_METRICS,
    PROMQL_DURATION_RE,
    MetricKind,
    promql_seconds,
)

__all__ = ["DEFAULT_METRIC_INTERVAL", "MetricCheck", "metric_check_from_spec", "parse_metric"]

DEFAULT_METRIC_INTERVAL = "1m"


@dataclass(frozen=True, slots=True)
class MetricCheck:
    """One ``analysis.metrics[]`` entry, parsed.

    ``query`` is the inline ``metrics[].query``, or the referenced MetricTemplate's
    ``spec.query`` once resolved (``None`` until then, and for builtin metrics).
    ``template`` is the MetricTemplate's name.  ``min``/``max`` come from
    ``thresholdRange``; ``threshold`` is the deprecated single bound.  ``dry_run``
    (``dryRun: true``, as in Argo Rollouts) makes the metric advisory: it runs and is
    reported, but its verdict never fails, holds or rolls back the canary.
    """

    name: str
    interval: str = DEFAULT_METRIC_INTERVAL
    min: float | None = None
    max: float | None = None
    threshold: float | None = None
    query: str | None = None
    kind: MetricKind = MetricKind.BUILTIN
    template: str | None = None
    variables: tuple[tuple[str, str], ...] = ()
    compare: CompareSpec | None = None
    path: str = "spec.analysis.metrics[0]"
    dry_run: bool = False

    @property
    def variables_map(self) -> dict[str, str]:
        return dict(self.variables)

    def with_template_query(self, query: str) -> MetricCheck:
        """This check with its MetricTemplate's ``spec.query``, which the caller fetched."""
        return replace(self, query=query)


def parse_metric(entry: object, *, path: str, template: str | None = None) -> MetricCheck:
    """Parse one ``spec.analysis.metrics[]`` mapping into a :class:`MetricCheck`.

    Raises :class:`~analysis.AnalysisSpecErrors` listing every problem, each naming its
    field (``spec.analysis.metrics[1].interval``).  ``template`` is the name in the entry's ``templateRef`` (the caller reads the
    reference, whose namespace is its business): such a metric runs the
    template's query even if its name is a builtin one, as the controller
    resolves it later with :meth:`MetricCheck.with_template_query`.
    """
    problems = Problems()
    check = _read_metric(entry, path, problems, from_template=template is not None)
    problems.raise_all()
    assert check is not None  # no problem means a check
    return replace(check, template=template)


def metric_check_from_spec(
    entry: Mapping[str, object],
    *,
    path: str,
    template_query: str | None = None,
    template_name: str | None = None,
) -> MetricCheck:
    """Build a resolved :class:`MetricCheck` from one mapping; raise its first problem.

    ``template_query`` is the ``spec.query`` of the MetricTemplate named by
    ``templateRef`` (the caller fetched it).  A metric with a template query
    uses it even if its name is a builtin one (Flagger would run both).  For
    callers holding a raw mapping (tests, tools); the controller uses the check
    that the Canary parser made with :func:`parse_metric`.
    """
    problems = Problems()
    check = _read_metric(entry, path, problems, from_template=template_query is not None)
    if problems.found:
        raise problems.found[0]
    assert check is not None  # no problem means a check
    if template_query is None:
        return replace(check, template=template_name)
    return replace(check, template=template_name).with_template_query(template_query)


def _read_metric(
    entry: object, path: str, problems: Problems, *, from_template: bool
) -> MetricCheck | None:
    """Record every problem of one entry in ``problems``, in field order; the check if none."""
    if not isinstance(entry, Mapping):
        problems.add(path, f"expected a map, got {type_name(entry)}")
        return None
    mark = len(problems)
    name = _read_name(entry, path, problems)
    interval = _read_interval(entry, path, problems)
    lo, hi = _read_threshold_range(entry, path, problems)
    threshold = read_number(entry, "threshold", path, problems, None)
    variables = _read_variables(entry, path, problems)
    inline = _read_inline_query(entry, path, problems)
    kind = _kind(name, inline, entry, path, problems, from_template=from_template)
    dry_run = read_bool(entry, "dryRun", path, problems, False)
    compare = None
    if entry.get("compare") is not None:
        builtin_name = name if kind is MetricKind.BUILTIN else None
        compare = read_compare(
            entry["compare"], f"{path}.compare", problems, metric_name=builtin_name
        )
    if problems.since(mark) or name is None or kind is None:
        return None
    return MetricCheck(
        name=name,
        interval=interval,
        min=lo,
        max=hi,
        threshold=threshold,
        query=inline if kind is MetricKind.INLINE else None,
        kind=kind,
        variables=variables,
        compare=compare,
        path=path,
        dry_run=dry_run,
    )


def _read_name(entry: Mapping[str, object], path: str, problems: Problems) -> str | None:
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        problems.add(f"{path}.name", f"expected a non-empty string, got {type_name(name)}")
        return None
    return name


_GRAPHITE_MINUTES = re.compile(r"^[0-9]+min$")


def _read_interval(entry: Mapping[str, object], path: str, problems: Problems) -> str:
    """A PromQL range (it lands in the query as ``[{{ interval }}]``); ``1m`` when absent."""
    interval = entry.get("interval")
    if interval is None:
        return DEFAULT_METRIC_INTERVAL
    if isinstance(interval, str) and _GRAPHITE_MINUTES.match(interval):
        # Flagger's Graphite examples write minutes as Graphite does ("1min").
        return interval.removesuffix("in")
    if not isinstance(interval, str) or not PROMQL_DURATION_RE.match(interval):
        problems.add(
            f"{path}.interval",
            f"expected a duration such as 1m or 30s, got {type_name(interval)}",
        )
        return DEFAULT_METRIC_INTERVAL
    if promql_seconds(interval) <= 0:
        # A range over no time counts nothing, and Prometheus refuses it outright ("duration
        # must be greater than 0"): every check would have been an Error.
        problems.add(f"{path}.interval", f"expected a duration above 0 such as 1m, got {interval}")
        return DEFAULT_METRIC_INTERVAL
    return interval


def _read_threshold_range(
    entry: Mapping[str, object], path: str, problems: Problems
) -> tuple[float | None, float | None]:
    tr = entry.get("thresholdRange")
    if tr is None:
        return None, None
    where = f"{path}.thresholdRange"
    if not isinstance(tr, Mapping):
        problems.add(where, "expected a map with min and/or max")
        return None, None
    lo = read_number(tr, "min", where, problems, None)
    hi = read_number(tr, "max", where, problems, None)
    if lo is not None and hi is not None and lo > hi:
        problems.add(where, f"expected min <= max, got {lo:g} > {hi:g}")
        return None, None
    return lo, hi


def _read_variables(
    entry: Mapping[str, object], path: str, problems: Problems
) -> tuple[tuple[str, str], ...]:
    raw_vars = entry.get("templateVariables")
    if raw_vars is None:
        return ()
    if not isinstance(raw_vars, Mapping):
        problems.add(f"{path}.templateVariables", "expected a map of string to string")
        return ()
    variables: list[tuple[str, str]] = []
    for k, v in raw_vars.items():
        if not isinstance(k, str) or not isinstance(v, str):
            problems.add(f"{path}.templateVariables.{k}", f"expected a string, got {type_name(v)}")
        else:
            variables.append((k, v))
    return tuple(variables)


def _read_inline_query(entry: Mapping[str, object], path: str, problems: Problems) -> str | None:
    inline = entry.get("query")
    if inline is not None and (not isinstance(inline, str) or not inline.strip()):
        problems.add(f"{path}.query", f"expected a non-empty query string, got {type_name(inline)}")
        return None
    return inline


def _kind(
    name: str | None,
    inline: str | None,
    entry: Mapping[str, object],
    path: str,
    problems: Problems,
    *,
    from_template: bool,
) -> MetricKind | None:
    """Where the query comes from: a template wins over an inline query, which wins over a builtin.

    ``None`` when nothing can run; that is a problem of its own only when the
    name and the query were valid (otherwise their own problems say it).
    """
    if from_template:
        return MetricKind.TEMPLATE
    if inline is not None:
        return MetricKind.INLINE
    if name in BUILTIN_METRICS:
        return MetricKind.BUILTIN
    if name is not None and entry.get("query") is None:
        problems.add(
            path,
            f"metric {name!r} has no usable query: expected a builtin name "
            "(request-success-rate, request-duration), a templateRef or a query",
        )
    return None
