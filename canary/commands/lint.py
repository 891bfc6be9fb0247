"""``canary lint``: check manifests offline before they reach a cluster.

Why: the API server takes a Canary with a misspelt field and silently drops it, a MetricTemplate
with broken PromQL fails only when a release reaches its first analysis step, and the controller
reports a semantic mistake (a strategy that never advances, a provider it cannot drive) only
after the manifest is applied. ``canary lint`` runs the same three layers on a laptop or in CI,
and reports every problem of every document at once with its file, document and field path:

1. the CRD schemas (:func:`canary.model.schema.validate`: what the API server would refuse or
   drop);
2. the semantic rules of the model (:func:`canary.model.parse_canary` and friends: what the
   controller could not run);
3. the PromQL of MetricTemplates, inline ``query`` metrics and the ``compare`` judge's own
   queries, rendered and parsed by ``promtool`` when it is installed
   (:mod:`canary.commands.promql`).

The engine (:func:`lint_inputs`) returns a :class:`LintReport`; the command only prints it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from canary.commands._common import (
    EXIT_FAILURE,
    InputFile,
    Output,
    dump,
    err,
    escape,
    expand_inputs,
    fail,
    out,
    plural,
    write_stdout,
)

if TYPE_CHECKING:
    from analysis import QueryContext
    from canary.model import MetricSpec

__all__ = ["Finding", "LintReport", "lint_command", "lint_inputs"]

Severity = Literal["error", "warning"]
Check = Literal["yaml", "schema", "rules", "promql"]

OUR_GROUP = "canary.gitops.dev"
FLAGGER_GROUP = "flagger.app"
PLACEHOLDER_VALUES = ("placeholder", "1")
_VARIABLE = re.compile(r"\{\{-?\s*variables\.(.+?)\s*-?\}\}")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: where (file, document from 1, field path) and what."""

    file: str
    document: int
    severity: Severity
    path: str
    message: str
    check: Check
    kind: str = ""
    name: str = ""

    def location(self) -> str:
        return f"{self.file}: document {self.document}"

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.location()}: {self.severity}: {where}{self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "document": self.document,
            "kind": self.kind,
            "name": self.name,
            "path": self.path,
            "severity": self.severity,
            "message": self.message,
            "check": self.check,
        }


@dataclass(slots=True)
class FileReport:
    file: str
    objects: int = 0  # objects of our kinds (and Flagger's), checked
    skipped: int = 0  # objects of other kinds
    manifests: bool = True  # False: a walked file without any Kubernetes object (not checked)


@dataclass(slots=True)
class LintReport:
    files: list[FileReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    promtool: str | None = None
    promtool_version: str = ""  # set once promtool has parsed the queries
    queries: int = 0  # PromQL expressions checked with promtool
    unchecked_queries: int = 0  # PromQL found but not checked (no promtool)

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    def to_json(self) -> dict[str, Any]:
        by_file: dict[str, list[Finding]] = {}
        for finding in self.findings:
            by_file.setdefault(finding.file, []).append(finding)
        return {
            "ok": self.errors == 0,
            "summary": {
                "files": sum(1 for f in self.files if f.manifests),
                "objects": sum(f.objects for f in self.files),
                "skipped": sum(f.skipped for f in self.files),
                "filesWithoutObjects": sum(1 for f in self.files if not f.manifests),
                "errors": self.errors,
                "warnings": self.warnings,
                "queries": self.queries,
                "promtool": self.promtool_version or None,  # set when promtool parsed queries
            },
            "files": [
                {
                    "file": f.file,
                    "checked": f.manifests,
                    "objects": f.objects,
                    "skipped": f.skipped,
                    "errors": sum(1 for x in by_file.get(f.file, ()) if x.severity == "error"),
                    "warnings": sum(1 for x in by_file.get(f.file, ()) if x.severity == "warning"),
                }
                for f in self.files
            ],
            "issues": [f.to_json() for f in self.findings],
        }


# --------------------------------------------------------------------------- the engine


@dataclass(frozen=True, slots=True)
class _Object:
    """One object of ours, located: ``prefix`` is ``items[2]`` inside a v1 List, else ""."""

    file: str
    document: int
    prefix: str
    doc: Mapping[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind") or "")

    @property
    def name(self) -> str:
        meta = self.doc.get("metadata")
        return str(meta.get("name") or "") if isinstance(meta, Mapping) else ""

    @property
    def namespace(self) -> str:
        meta = self.doc.get("metadata")
        ns = meta.get("namespace") if isinstance(meta, Mapping) else None
        return ns if isinstance(ns, str) and ns else "default"

    def finding(self, severity: Severity, path: str, message: str, check: Check) -> Finding:
        return Finding(
            self.file,
            self.document,
            severity,
            _join(self.prefix, path),
            message,
            check,
            self.kind,
            self.name,
        )


def _join(prefix: str, path: str) -> str:
    if not prefix:
        return path
    if not path:
        return prefix
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"


def _is_ours(doc: Mapping[str, Any]) -> bool:
    """Ours or Flagger's, or an apiVersion no object can have (the schema check refuses it)."""
    from canary.model.schema import api_version_problem

    api_version = doc.get("apiVersion")
    if not isinstance(api_version, str):
        return False
    if api_version_problem(api_version) is not None:
        return True
    group = api_version.rpartition("/")[0]
    return group in (OUR_GROUP, FLAGGER_GROUP)


def _is_manifest(doc: Mapping[str, Any]) -> bool:
    return "apiVersion" in doc or "kind" in doc


def _objects(file: str, number: int, doc: Mapping[str, Any]) -> tuple[list[_Object], int]:
    """Our objects in one document (List items expanded) and the count of other objects."""
    if doc.get("apiVersion") == "v1" and doc.get("kind") == "List":
        items = doc.get("items")
        if items is not None and not isinstance(items, list):
            return [_Object(file, number, "", doc)], 0  # the schema check says items is no list
        ours: list[_Object] = []
        others = 0
        for index, item in enumerate(items if isinstance(items, list) else ()):
            if isinstance(item, Mapping) and _is_ours(item):
                ours.append(_Object(file, number, f"items[{index}]", item))
            else:
                others += 1
        return ours, others
    if _is_ours(doc) or not (isinstance(doc.get("apiVersion"), str) and doc.get("kind")):
        # An object without apiVersion or kind is reported by the schema check.
        return [_Object(file, number, "", doc)], 0
    return [], 1


def lint_inputs(
    inputs: Sequence[InputFile],
    *,
    promtool: str | None,
    default_provider: str = "kubernetes",
    read: Callable[[InputFile], str] = InputFile.read,
) -> LintReport:
    """Check every document of every input; PromQL only when ``promtool`` is given."""
    from canary.model.schema import read_documents

    report = LintReport(promtool=promtool)
    objects: list[_Object] = []
    secrets: dict[tuple[str, str], frozenset[str]] = {}
    for source in inputs:
        text = read(source)
        file_report = FileReport(source.label)
        report.files.append(file_report)
        documents, problems = read_documents(text, source.label)
        if source.walked and not problems and not any(_is_manifest(doc) for _, doc in documents):
            file_report.manifests = False  # e.g. a `canary simulate` scenario next to manifests
            continue
        report.findings.extend(
            Finding(source.label, problem.document, "error", "", problem.reason, "yaml")
            for problem in problems
        )
        for number, doc in documents:
            objects += _check_document(
                source.label, number, doc, file_report, report, default_provider
            )
            secrets.update(_secret_keys(doc))
    _providers(objects, secrets, report, default_provider)
    _promql(objects, report, default_provider)
    order = {f.file: i for i, f in enumerate(report.files)}
    report.findings.sort(key=lambda f: (order.get(f.file, 0), f.document, f.path))
    return report


def _check_document(
    file: str,
    number: int,
    doc: Mapping[str, Any],
    file_report: FileReport,
    report: LintReport,
    default_provider: str,
) -> list[_Object]:
    """The schema and the semantic rules of one document; returns its objects of ours."""
    from canary.model.schema import validate

    ours, others = _objects(file, number, doc)
    file_report.skipped += others
    if not ours:
        return []
    file_report.objects += len(ours)
    whole = _Object(file, number, "", doc)
    schema = [
        whole.finding(issue.severity, issue.path, issue.message, "schema")
        for issue in validate(doc)
    ]
    report.findings.extend(schema)
    schema_paths = {f.path for f in schema}
    schema_failed = any(f.severity == "error" for f in schema)
    for obj in ours:
        for finding in _semantic(obj, default_provider, schema_failed):
            if finding.path not in schema_paths:
                report.findings.append(finding)
    return ours


# --------------------------------------------------------------------------- semantic rules


def _converted(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """A Flagger object as if converted: the schema check already said it needs converting."""
    from canary.model.convert import convert_document

    return convert_document(doc)[0]


def _semantic(obj: _Object, default_provider: str, schema_failed: bool) -> list[Finding]:
    from canary.model import (
        SpecError,
        SpecIssue,
        parse_alert_provider,
        parse_canary,
        parse_metric_template,
    )

    doc = _converted(obj.doc)
    kind = obj.kind
    issues: list[SpecIssue] = []
    try:
        if kind == "Canary":
            issues = list(parse_canary(doc, default_provider=default_provider).warnings)
        elif kind == "MetricTemplate":
            parse_metric_template(doc)
        elif kind == "AlertProvider":
            parse_alert_provider(doc)
        elif kind == "GitSource":
            issues = _gitsource_issues(doc)
    except SpecError as exc:
        issues = list(exc.issues)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        if not schema_failed:
            raise
        # The semantic rules assume a schema-valid object; the schema errors say what to fix.
        return [
            obj.finding(
                "warning",
                "",
                f"the semantic rules were not applied because of the schema errors ({exc!r})",
                "rules",
            )
        ]
    findings = []
    for issue in issues:
        severity: Severity = issue.severity
        message = issue.message
        findings.append(obj.finding(severity, issue.path, message, "rules"))
    return findings


def _gitsource_issues(doc: Mapping[str, Any]) -> list[Any]:
    from canary.adapters.gitops.reconciler import GitSourceSpecError, parse_gitsource_spec
    from canary.model import SpecIssue

    try:
        parse_gitsource_spec(doc.get("spec"))
    except GitSourceSpecError as exc:
        issues = []
        for problem in exc.problems:
            path, _, message = problem.partition(": ")
            issues.append(SpecIssue(path, message or problem))
        return issues
    return []


# --------------------------------------------------------------------------- providers


def _secret_keys(doc: Mapping[str, Any]) -> dict[tuple[str, str], frozenset[str]]:
    """The keys of a v1 Secret document (data and stringData) by (namespace, name)."""
    if doc.get("apiVersion") != "v1" or doc.get("kind") != "Secret":
        return {}
    meta = doc.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        return {}
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else "default"
    keys: set[str] = set()
    for part in ("data", "stringData"):
        values = doc.get(part)
        if isinstance(values, Mapping):
            keys.update(str(k) for k, v in values.items() if v not in (None, ""))
    return {(str(namespace), str(meta["name"])): frozenset(keys)}


def _providers(
    objects: Iterable[_Object],
    secrets: Mapping[tuple[str, str], frozenset[str]],
    report: LintReport,
    default_provider: str,
) -> None:
    """What each MetricTemplate's provider needs and the files can show.

    A Secret named by ``secretRef`` that is among the linted files must hold the keys its
    provider type reads (one that lives only in the cluster cannot be checked here). The
    query of a non-Prometheus template is rendered with placeholder names, so a broken
    template is found before a release reaches its first analysis step (Prometheus
    queries go further, through promtool).
    """
    from analysis import QueryContext, TemplateError, render_query, vendor

    objects = list(objects)
    _compare_providers(objects, report)
    for obj in objects:
        if obj.kind != "MetricTemplate":
            continue
        spec = obj.doc.get("spec")
        provider = spec.get("provider") if isinstance(spec, Mapping) else None
        if not isinstance(provider, Mapping) or not isinstance(spec, Mapping):
            continue
        row = vendor(str(provider.get("type") or "prometheus"))
        if row is None:
            continue
        ref = provider.get("secretRef")
        name = ref.get("name") if isinstance(ref, Mapping) else None
        keys = secrets.get((obj.namespace, name)) if isinstance(name, str) else None
        if keys is not None:
            missing = [k for k in row.secret_keys if k not in keys]
            web = provider.get("web")
            headers = web.get("secretHeaders") if isinstance(web, Mapping) else None
            if isinstance(headers, Mapping):
                missing += [str(k) for k in headers.values() if str(k) not in keys]
            if missing:
                report.findings.append(
                    obj.finding(
                        "error",
                        "spec.provider.secretRef.name",
                        f"Secret {obj.namespace}/{name} has no "
                        f"{' and '.join(repr(k) for k in missing)} key "
                        f"(a {row.type} provider reads it)",
                        "rules",
                    )
                )
        query = spec.get("query")
        if row.type == "prometheus" or not isinstance(query, str):
            continue
        ctx = QueryContext(
            name="podinfo", namespace=obj.namespace, target="podinfo", provider=default_provider
        )
        variables = dict.fromkeys(_VARIABLE.findall(query), PLACEHOLDER_VALUES[0])
        try:
            rendered = render_query(query, ctx, variables=variables)
        except TemplateError as exc:
            report.findings.append(
                obj.finding("error", "spec.query", f"invalid query template: {exc}", "rules")
            )
            continue
        problem = _query_shape_problem(row.module, rendered)
        if problem is not None:
            report.findings.append(obj.finding("error", "spec.query", problem, "rules"))


def _query_shape_problem(module_name: str, query: str) -> str | None:
    """What the provider's own offline check (``check_query``, where it has one) says of
    ``query``: a CloudWatch query that is no JSON array, a Graphite one without a target."""
    import importlib

    from analysis import QueryError

    check = getattr(importlib.import_module(module_name), "check_query", None)
    if check is None:
        return None
    try:
        check(query)
    except QueryError as exc:
        return str(exc)
    return None


def _compare_providers(objects: Sequence[_Object], report: LintReport) -> None:
    """A Canary metric that compares on a MetricTemplate whose provider cannot feed the test."""
    from analysis import compare_problem

    provider_types: dict[tuple[str, str], str] = {}
    for obj in objects:
        spec = obj.doc.get("spec")
        provider = spec.get("provider") if isinstance(spec, Mapping) else None
        if obj.kind == "MetricTemplate" and isinstance(provider, Mapping):
            provider_types[(obj.namespace, obj.name)] = str(provider.get("type") or "prometheus")
    for obj in objects:
        spec = obj.doc.get("spec")
        analysis = spec.get("analysis") if isinstance(spec, Mapping) else None
        metrics = analysis.get("metrics") if isinstance(analysis, Mapping) else None
        if obj.kind != "Canary" or not isinstance(metrics, list):
            continue
        for index, metric in enumerate(metrics):
            if not isinstance(metric, Mapping):
                continue
            compare, ref = metric.get("compare"), metric.get("templateRef")
            if not isinstance(compare, Mapping) or not isinstance(ref, Mapping):
                continue
            namespace = str(ref.get("namespace") or obj.namespace)
            type_ = provider_types.get((namespace, str(ref.get("name"))))
            test = compare.get("test") or (
                "latency" if metric.get("name") == "request-duration" else "errorRate"
            )
            problem = compare_problem(type_, str(test)) if type_ else None
            if problem is not None:
                path = f"spec.analysis.metrics[{index}].compare"
                report.findings.append(obj.finding("error", path, problem, "rules"))


# --------------------------------------------------------------------------- PromQL


@dataclass(frozen=True, slots=True)
class _Template:
    obj: _Object
    query: str
    variables: tuple[str, ...]


@dataclass(slots=True)
class _Query:
    """One expression to give promtool, and what to report when it fails."""

    expression: str
    obj: _Object
    path: str
    describe: str  # "the query", "MetricTemplate test/latency as used here", ...
    template: _Template | None = None  # the template it came from (for placeholder retries)
    placeholder: bool = False  # rendered with placeholder values for templateVariables
    result: str | None = None


def _template_of(obj: _Object) -> _Template | None:
    spec = obj.doc.get("spec")
    if not isinstance(spec, Mapping):
        return None
    provider = spec.get("provider")
    ptype = provider.get("type") if isinstance(provider, Mapping) else None
    query = spec.get("query")
    if ptype not in (None, "", "prometheus") or not isinstance(query, str) or not query.strip():
        return None
    return _Template(obj, query, tuple(dict.fromkeys(_VARIABLE.findall(query))))


def _promql(objects: Iterable[_Object], report: LintReport, default_provider: str) -> None:
    objects = list(objects)
    templates = _templates(objects)
    queries: list[_Query] = []
    template_queries: dict[int, _Query] = {}
    for template in templates.values():
        query = _render_placeholders(template, PLACEHOLDER_VALUES[0], default_provider, report)
        if query is not None:
            queries.append(query)
            template_queries[id(template)] = query
    for obj in objects:
        if obj.kind == "Canary":
            queries += _canary_queries(obj, templates, report, default_provider)

    if not queries:
        return
    if report.promtool is None:
        report.unchecked_queries = len(queries)
        return
    if not _check(queries, template_queries, report, default_provider):
        report.unchecked_queries = len(queries)
        return
    _report_invalid(queries, template_queries, report)


def _templates(objects: Iterable[_Object]) -> dict[tuple[str, str], _Template]:
    """The Prometheus MetricTemplates among ``objects`` by (namespace, name); the first wins."""
    templates: dict[tuple[str, str], _Template] = {}
    for obj in objects:
        if obj.kind == "MetricTemplate":
            template = _template_of(obj)
            if template is not None:
                templates.setdefault((obj.namespace, obj.name), template)
    return templates


def _render_placeholders(
    template: _Template, value: str, default_provider: str, report: LintReport
) -> _Query | None:
    """A template's query on its own, every ``templateVariables`` entry set to ``value``:
    which canary uses it (and with what) is not known, but its syntax can still be checked."""
    from analysis import QueryContext, TemplateError, render_query

    ctx = QueryContext(
        name=template.obj.name or "podinfo",
        namespace=template.obj.namespace,
        target=template.obj.name or "podinfo",
        provider=default_provider,
    )
    try:
        rendered = render_query(
            template.query, ctx, variables=dict.fromkeys(template.variables, value)
        )
    except TemplateError as exc:
        report.findings.append(
            template.obj.finding("error", "spec.query", f"invalid query template: {exc}", "promql")
        )
        return None
    return _Query(
        rendered,
        template.obj,
        "spec.query",
        "the query",
        template=template,
        placeholder=bool(template.variables),
    )


def _canary_queries(
    obj: _Object,
    templates: Mapping[tuple[str, str], _Template],
    report: LintReport,
    default_provider: str,
) -> list[_Query]:
    """The queries of a Canary's metrics, rendered as the controller would render them."""
    from canary.model import SpecError, parse_canary

    try:
        canary = parse_canary(_converted(obj.doc), default_provider=default_provider)
    except SpecError:
        return []  # reported by the semantic rules
    analysis = canary.spec.analysis
    if analysis is None:
        return []
    ctx = canary.query_context(default_provider)
    queries: list[_Query] = []
    for metric in analysis.metrics:
        query: _Query | None = None
        prometheus = True  # builtin and inline metrics query the Canary's Prometheus
        if metric.query is not None and metric.template_ref is None:
            query = _inline_query(obj, metric, metric.query, ctx, report)
        elif metric.template_ref is not None:
            ref = metric.template_ref
            template = templates.get((ref.namespace or canary.namespace, ref.name))
            # None: not among the linted files (it may live in the cluster), or not Prometheus.
            prometheus = template is not None
            if template is not None:
                query = _template_query(obj, metric, template, ctx, report)
        if query is not None:
            queries.append(query)
        queries += _compare_queries(obj, metric, ctx, report, prometheus=prometheus)
        problem = _builtin_compare_problem(metric, ctx)
        if problem is not None:
            report.findings.append(obj.finding("error", f"{metric.path}.compare", problem, "rules"))
    return queries


def _inline_query(
    obj: _Object, metric: MetricSpec, query: str, ctx: QueryContext, report: LintReport
) -> _Query | None:
    from analysis import TemplateError, render_query

    try:
        rendered = render_query(
            query, ctx, interval=metric.interval, variables=dict(metric.template_variables)
        )
    except TemplateError as exc:
        report.findings.append(
            obj.finding("error", f"{metric.path}.query", f"invalid query: {exc}", "promql")
        )
        return None
    return _Query(rendered, obj, f"{metric.path}.query", "the query")


def _compare_queries(
    obj: _Object, metric: MetricSpec, ctx: QueryContext, report: LintReport, *, prometheus: bool
) -> list[_Query]:
    """The ``compare`` judge's own queries, checked as an inline ``query`` is.

    Why: the controller renders ``requestsQuery``, ``errorsQuery`` and ``bucketsQuery`` on
    every tick with the same names and ``templateVariables`` as the metric's query, and a
    broken one makes every verdict an Error, so a good release is rolled back. Only a
    Prometheus metric's queries go to promtool: another provider's are in its own language.
    """
    from analysis import TemplateError, render_query

    compare = metric.compare
    if compare is None:
        return []
    queries: list[_Query] = []
    for key, query in (
        ("requestsQuery", compare.requests_query),
        ("errorsQuery", compare.errors_query),
        ("bucketsQuery", compare.buckets_query),
    ):
        if query is None:
            continue
        path = f"{metric.path}.compare.{key}"
        try:
            rendered = render_query(
                query, ctx, interval=metric.interval, variables=dict(metric.template_variables)
            )
        except TemplateError as exc:
            check: Check = "promql" if prometheus else "rules"
            report.findings.append(obj.finding("error", path, f"invalid query: {exc}", check))
            continue
        if prometheus:
            queries.append(_Query(rendered, obj, path, "the query"))
    return queries


def _builtin_compare_problem(metric: MetricSpec, ctx: QueryContext) -> str | None:
    """Why the ``compare`` judge of a builtin metric cannot run on the canary's provider.

    Why: APISIX and Knative name no primary series, and Skipper's duration has no buckets, so
    every tick of such a judge is an Error. The decision is the controller's own: the builtin
    queries it renders for each side (:func:`analysis.builtin_queries`), and its words.
    ``compare``'s own queries replace the builtin ones, and then nothing is missing.
    """
    from analysis import AnalysisSpecError, CompareTest, builtin_queries

    compare = metric.compare
    if compare is None or not metric.is_builtin:
        return None
    latency = compare.test is CompareTest.LATENCY
    if (compare.buckets_query if latency else compare.requests_query) is not None:
        return None
    try:
        for primary in (False, True):
            queries = builtin_queries(ctx, interval=metric.interval, primary=primary)
            if latency:
                queries.buckets  # noqa: B018 - raises where the provider has no histogram
    except AnalysisSpecError as exc:
        return exc.detail
    return None


def _template_query(
    obj: _Object, metric: MetricSpec, template: _Template, ctx: QueryContext, report: LintReport
) -> _Query | None:
    """A template's query rendered for one canary's metric. Only a problem with the metric's
    ``templateVariables`` is reported here: the template's own errors are reported on it."""
    from analysis import TemplateError, render_query

    where = f"MetricTemplate {template.obj.namespace}/{template.obj.name}"
    try:
        rendered = render_query(
            template.query,
            ctx,
            interval=metric.interval,
            variables=dict(metric.template_variables),
        )
    except TemplateError as exc:
        if "templateVariables" in str(exc):
            report.findings.append(
                obj.finding(
                    "error", f"{metric.path}.templateVariables", f"{where}: {exc}", "promql"
                )
            )
        return None
    return _Query(
        rendered,
        obj,
        f"{metric.path}.templateRef",
        f"the query of {where}, rendered for this canary,",
        template=template,
    )


def _check(
    queries: Sequence[_Query],
    template_queries: Mapping[int, _Query],
    report: LintReport,
    default_provider: str,
) -> bool:
    """Give every query to promtool and keep its verdict on the query; False (with a warning)
    when promtool itself fails, so that nothing is reported as checked."""
    from canary.commands.promql import PromtoolError, check_expressions, promtool_version

    assert report.promtool is not None
    try:
        for query, result in zip(
            queries,
            check_expressions(report.promtool, [q.expression for q in queries]),
            strict=True,
        ):
            query.result = result
        # A template whose variables hold numbers, not names: try again with a number.
        pairs = [
            (q, r)
            for q in template_queries.values()
            if q.result is not None and q.placeholder and q.template is not None
            if (
                r := _render_placeholders(
                    q.template, PLACEHOLDER_VALUES[1], default_provider, report
                )
            )
            is not None
        ]
        results = check_expressions(report.promtool, [r.expression for _, r in pairs])
        for (query, _), result in zip(pairs, results, strict=True):
            if result is None:
                query.result = None
    except PromtoolError as exc:
        err.print(f"[yellow]warning:[/yellow] PromQL not checked: {escape(str(exc))}")
        return False
    report.queries = len(queries)
    report.promtool_version = promtool_version(report.promtool) or "unknown"
    return True


def _report_invalid(
    queries: Iterable[_Query], template_queries: Mapping[int, _Query], report: LintReport
) -> None:
    """A finding for each query promtool refused. A canary's use of a template that is itself
    invalid is not reported again; a query rendered with placeholders is only a warning,
    since the real values may make it valid."""
    failed_templates = {
        id(q.template) for q in template_queries.values() if q.result is not None and q.template
    }
    for query in queries:
        if query.result is None:
            continue
        if query.path.endswith(".templateRef") and id(query.template) in failed_templates:
            continue  # the template itself is reported
        severity: Severity = "error"
        message = f"{query.describe} is not valid PromQL: {query.result}"
        if query.placeholder:
            names = (
                ", ".join(f"variables.{v}" for v in query.template.variables)
                if query.template
                else ""
            )
            message += f" (rendered with placeholder values for {names})"
            severity = "warning"
        report.findings.append(query.obj.finding(severity, query.path, message, "promql"))


# --------------------------------------------------------------------------- the command


def lint_command(
    files: Annotated[
        list[str],
        typer.Argument(
            metavar="FILE",
            help="YAML files or directories (walked for *.yaml and *.yml); - reads stdin.",
        ),
    ],
    output: Annotated[
        Output, typer.Option("--output", "-o", help="text for people; json or yaml for scripts.")
    ] = Output.TEXT,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 on warnings too, not only on errors.")
    ] = False,
    promql: Annotated[
        bool,
        typer.Option("--promql/--no-promql", help="Check PromQL with promtool when it is on PATH."),
    ] = True,
    provider: Annotated[
        str,
        typer.Option(
            "--provider",
            help="The controller's default routing provider (canary run --provider), for "
            "canaries without spec.provider.",
        ),
    ] = "kubernetes",
) -> None:
    """Check Canary, MetricTemplate, AlertProvider and GitSource YAML offline.

    Three layers: the CRD schemas, the semantic rules of the controller, and PromQL (with
    promtool). Exit 1 when any error is found (any warning too, with --strict).
    """
    from canary.commands.promql import find_promtool

    inputs = expand_inputs(files)
    if not inputs:
        raise fail("no YAML files found in " + ", ".join(files))
    promtool = find_promtool() if promql else None
    report = lint_inputs(inputs, promtool=promtool, default_provider=provider)

    if output is Output.TEXT:
        _print_text(report)
    else:
        write_stdout(dump(report.to_json(), output))
    if promql and promtool is None and report.unchecked_queries:
        err.print(
            f"[yellow]note:[/yellow] promtool is not on PATH: "
            f"{plural(report.unchecked_queries, 'PromQL query', 'PromQL queries')} not checked "
            "(Debian: apt-get install prometheus)",
            highlight=False,
        )
    if report.errors or (strict and report.warnings):
        raise typer.Exit(EXIT_FAILURE)


def _print_text(report: LintReport) -> None:
    for finding in report.findings:
        colour = "red" if finding.severity == "error" else "yellow"
        where = f"{escape(finding.path)}: " if finding.path else ""
        out.print(
            f"{escape(finding.location())}: [{colour}]{finding.severity}[/{colour}]: "
            f"{where}{escape(finding.message)}",
            highlight=False,
            soft_wrap=True,
        )
    checked = [f for f in report.files if f.manifests]
    objects = sum(f.objects for f in report.files)
    skipped = sum(f.skipped for f in report.files)
    ignored = len(report.files) - len(checked)
    parts = [f"{plural(len(checked), 'file')}, {plural(objects, 'object')} checked"]
    if skipped:
        parts.append(f"{plural(skipped, 'object')} of other kinds skipped")
    if ignored:
        parts.append(f"{plural(ignored, 'file')} without Kubernetes objects ignored")
    if report.queries:
        version = f" {report.promtool_version}" if report.promtool_version else ""
        parts.append(
            f"{plural(report.queries, 'PromQL query', 'PromQL queries')} parsed by promtool{version}"
        )
    counts = f"{plural(report.errors, 'error')}, {plural(report.warnings, 'warning')}"
    colour = "red" if report.errors else ("yellow" if report.warnings else "green")
    out.print(f"{'; '.join(parts)}: [{colour}]{counts}[/{colour}]", highlight=False, soft_wrap=True)
