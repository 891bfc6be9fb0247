"""``canary report NAME``: the decision report of a run, as one self-contained file.

Why: ``canary status`` tells a release decision as text; the report draws it (canary.report):
the weights over time, each metric against its threshold or the canary against the primary,
the failed checks toward the threshold, the decisions on the time axis and the Git revert. It
reads the Canary and its Events through the kubeconfig, like ``status``, so it works for a
canary under way and for a finished one (the runs ``status.analysisHistory`` keeps; ``--run``).
The formats: ``html`` (default; the picture and the tables), ``svg``, ``png`` (needs
``rsvg-convert``) and ``json`` (the report's data). Without ``--output-file`` it writes to
stdout. Exit codes: 0 written; 1 no such canary, the cluster said no or is unreachable, or PNG
cannot be drawn; 2 bad usage (a run the history does not keep, an unusable kubeconfig).

With ``--metrics-server URL`` (else the Canary's ``spec.metricsServer``; no address is
guessed) it also draws the builtin metrics' series over the run's window, canary and primary,
as Prometheus measured them (canary.report.measured). When they cannot be read the report is
written all the same, and one line on stderr says which series are missing and why.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from canary.commands._common import EXIT_FAILURE, EXIT_USAGE, err, fail
from canary.commands.cluster import (
    API_VERSION,
    CANARY_KIND,
    ClusterOptions,
    ContextOpt,
    KubeconfigOpt,
    NamespaceOpt,
    resolve_context,
    run_with_kube,
)
from canary.report.output import ReportFormat

if TYPE_CHECKING:
    from canary.report.model import DecisionReport

__all__ = ["read_canary", "report_command"]

MAX_EVENTS = 500
DEFAULT_PROVIDER = "kubernetes"  # the controller's default spec.provider


async def read_canary(
    client: Any, name: str, namespace: str
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The Canary and its Events (oldest first); None when there is no such canary."""
    from canary.ports import KubeError

    obj = await client.get(API_VERSION, CANARY_KIND, name, namespace)
    if obj is None:
        return None
    try:
        events: list[dict[str, Any]] = await client.list(
            "v1",
            "Event",
            namespace,
            field_selector=f"involvedObject.kind={CANARY_KIND},involvedObject.name={name}",
        )
    except KubeError:
        events = []  # no permission to list Events: the report still has the status
    return obj, events[-MAX_EVENTS:]


def _with_series(
    report: DecisionReport,
    canary: dict[str, Any],
    events: list[dict[str, Any]],
    run: int | None,
    metrics_server: str | None,
) -> DecisionReport:
    """The report with the metric series from the metrics server, when one is known; when
    they cannot be read, the report as it is and one line on stderr saying why."""
    from canary.report.measured import fetch_series, metrics_server_of
    from canary.report.model import build_report

    address = (metrics_server or "").strip() or metrics_server_of(canary)
    if not address:
        return report
    fetched = fetch_series(address, canary, report, DEFAULT_PROVIDER)
    if fetched.problems:
        err.print(
            f"metric series missing from {address}: {fetched.summary()}",
            highlight=False,
            markup=False,
        )
    if not fetched.series:
        return report
    return build_report(canary, events, run=run, measured=fetched.series)


def report_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The canary.")],
    namespace: NamespaceOpt = None,
    run: Annotated[
        int | None,
        typer.Option(
            "--run",
            help="Which run of status.analysisHistory: 1 the oldest kept, -1 the last (default).",
        ),
    ] = None,
    output: Annotated[
        ReportFormat | None,
        typer.Option(
            "--output",
            "-o",
            help="html (default, or the --output-file suffix), svg, png (needs rsvg-convert), "
            "json (the report's data).",
        ),
    ] = None,
    output_file: Annotated[
        Path | None,
        typer.Option("--output-file", "-f", metavar="FILE", help="Write here, not to stdout."),
    ] = None,
    metrics_server: Annotated[
        str | None,
        typer.Option(
            "--metrics-server",
            metavar="URL",
            help="Prometheus to read the builtin metrics' series from (default: the Canary's "
            "spec.metricsServer; none: no series).",
        ),
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """The decision report of a canary's run: weights, metrics, verdicts, decisions, Git revert."""
    from canary.report.model import RunChoiceError, build_report
    from canary.report.output import RenderError, format_for, render

    fmt = format_for(str(output_file) if output_file else None, output)
    if fmt is ReportFormat.PNG and output_file is None and sys.stdout.isatty():
        raise fail("-o png writes binary data: give --output-file FILE.png (or pipe it)")
    options = ClusterOptions(kubeconfig, context)
    scope = namespace or resolve_context(options).namespace

    async def work(client: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        found = await read_canary(client, name, scope)
        if found is None:
            raise fail(f"canary {name!r} not found in namespace {scope!r}", EXIT_FAILURE)
        return found

    canary, events = run_with_kube(options, work)
    try:
        report = build_report(canary, events, run=run)
    except RunChoiceError as exc:
        raise fail(f"--run {exc}", EXIT_USAGE) from None
    report = _with_series(report, canary, events, run, metrics_server)
    try:
        data = render(report, fmt)
    except RenderError as exc:
        raise fail(str(exc), EXIT_FAILURE) from None
    if output_file is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        output_file.write_bytes(data)
    except OSError as exc:
        raise fail(f"{output_file}: cannot write: {exc.strerror or exc}", EXIT_FAILURE) from None
    err.print(f"wrote {output_file} ({fmt.value})", highlight=False, markup=False)
