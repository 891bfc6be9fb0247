"""The `canary` command (and `kubectl canary`, the same commands as a kubectl plugin).

Human output first (tables, sentences, colour on a terminal), `-o json` for
scripts. Exit codes: 0 success; 1 the command ran but the outcome is a failure
(lint found errors, `--expect` did not hold, the controller stopped on an
error); 2 bad usage or unreadable input (a file that does not parse, a field
with the wrong type — the message names the file, the document and the field).

Start-up is kept short (`canary --help` in well under 0.3 s, bench/cli_startup.py): the
operator commands of :mod:`canary.commands` are imported only when one of them runs or shows
its help (:class:`LazyGroup`), and the commands here import what they need inside their
bodies. The help is click's plain layout, not rich's panels: it never cuts an option name
short in a narrow terminal, and it needs no Markdown renderer to start.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from canary.commands import COMMANDS
from canary.commands._common import fail

if TYPE_CHECKING:
    from canary.model.errors import SpecError

PROG = "canary"
KUBECTL_PROG = "kubectl canary"  # how kubectl runs the kubectl-canary plugin
COMPLETION_OPTIONS = ("install_completion", "show_completion")


class _LazyCommands(MutableMapping[str, Any]):
    """A group's commands where those of :data:`canary.commands.COMMANDS` are built on first
    use: listing the names or the summaries imports nothing."""

    def __init__(self, loaded: MutableMapping[str, Any], settings: Mapping[str, Any]) -> None:
        self._loaded = loaded
        self._settings = settings

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded and name in COMMANDS:
            self._loaded[name] = _build(name, self._settings)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._loaded
        yield from (name for name in COMMANDS if name not in self._loaded)

    def __len__(self) -> int:
        return len(set(self._loaded) | set(COMMANDS))

    def __contains__(self, name: object) -> bool:
        return name in self._loaded or name in COMMANDS

    def summary(self, name: str) -> str | None:
        """The one-line help of a command (None: hidden), without building it if not built."""
        if name not in self._loaded and name in COMMANDS:
            return COMMANDS[name][1]
        command = self._loaded[name]
        if command.hidden:
            return None
        return (command.short_help or command.help or "").strip().split("\n")[0]


def _build(name: str, settings: Mapping[str, Any]) -> Any:
    """The click command of an operator command, made by Typer from its function."""
    from canary.commands import load

    single = typer.Typer(add_completion=False, **settings)
    single.command(name)(load(name))
    return typer.main.get_command(single)


class LazyGroup(TyperGroup):
    """The ``canary`` group: operator commands load on first use, summaries wrap, never cut."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands(
            self.commands,
            {"rich_markup_mode": self.rich_markup_mode, "pretty_exceptions_enable": False},
        )

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # the names only: the values would build every command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        commands = self.commands
        assert isinstance(commands, _LazyCommands)
        summaries = [(name, commands.summary(name)) for name in self.list_commands(ctx)]
        rows = [(name, summary) for name, summary in summaries if summary is not None]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _print_version(value: bool) -> None:
    """``--version``: the version of the installed distribution (its package metadata)."""
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            installed = version("canary-engine")
        except PackageNotFoundError:  # a bare checkout, not installed
            installed = "0+unknown"
        typer.echo(f"canary-engine {installed}")
        raise typer.Exit()


app = typer.Typer(
    name=PROG,
    help="canary-engine: progressive delivery for Kubernetes, with rollback in Git.",
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print the version of canary-engine and exit.",
        ),
    ] = False,
) -> None:
    """canary-engine: progressive delivery for Kubernetes, with rollback in Git."""


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


def read_text(path: Path) -> str:
    """A file's text, or a clear error naming it."""
    from canary.commands._common import escape

    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(escape(f"{path}: cannot read: {exc.strerror or exc}")) from None
    except UnicodeDecodeError as exc:
        raise fail(escape(f"{path}: cannot read: not UTF-8 text ({exc.reason})")) from None


def read_yaml(path: Path, text: str | None = None) -> list[Any]:
    """All documents of a YAML file, or a clear error naming the file (and the document and
    line when the YAML is at fault).

    Why the loader of :mod:`canary.model.schema`: a file must mean the same to ``canary
    simulate`` as to ``canary lint`` and kubectl. ``yaml.safe_load_all`` kept the last of two
    duplicate keys without a word, read ``1e-3`` as a string and timestamps as datetimes.
    """
    from canary.commands._common import escape
    from canary.model.schema import DocumentError, parse_yaml

    if text is None:
        text = read_text(path)
    try:
        return [doc for _, doc in parse_yaml(text, str(path))]
    except DocumentError as exc:
        raise fail(escape(str(exc))) from None


def spec_error(path: Path, exc: SpecError, what: str = "") -> typer.Exit:
    lines = [f"{path}{(' ' + what) if what else ''} is not valid:"]
    lines += [f"  {issue}" for issue in exc.errors or exc.issues]
    return fail("\n".join(lines))


# --------------------------------------------------------------------------- simulate


@app.command()
def simulate(
    canary_file: Annotated[
        Path,
        typer.Argument(
            metavar="CANARY.yaml", help="The Canary manifest (a multi-document file is fine)."
        ),
    ],
    scenario_file: Annotated[
        Path,
        typer.Option(
            "--scenario",
            "-s",
            metavar="SCENARIO.yaml",
            help="What the world does, tick by tick (docs/simulate.md).",
        ),
    ],
    fmt: Annotated[
        Format,
        typer.Option(
            "--format", "-o", help="table for people, json for tools (one object per tick)."
        ),
    ] = Format.TABLE,
    expect: Annotated[
        str | None,
        typer.Option(
            "--expect", metavar="PHASE", help="Exit 1 unless the last tick ends in this phase."
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            metavar="FILE",
            help="Also write the decision report of the run (HTML; .svg/.png/.json by suffix).",
        ),
    ] = None,
) -> None:
    """Dry-run a Canary's policy against a scenario with the real state machine."""
    import json

    from canary.model import Phase, parse_canary
    from canary.model.errors import SpecError
    from canary.simulation import (
        check_scenario,
        load_canary_doc,
        load_metric_templates,
        parse_scenario,
    )
    from canary.simulation import simulate as run

    if expect is not None:  # said now, not after the run as a phase that "differs"
        phases = {p.value.lower(): p.value for p in Phase if p.value}
        if expect.lower() not in phases:
            raise fail(f"--expect: expected one of {', '.join(phases.values())}, got {expect!r}")
        expect = phases[expect.lower()]
    canary_text = read_text(canary_file)  # once: it may be a pipe
    try:
        canary_docs = read_yaml(canary_file, canary_text)
        canary_doc = load_canary_doc(canary_docs)
        parse_canary(canary_doc)  # the Canary's own errors are named against its file
    except SpecError as exc:
        raise spec_error(canary_file, exc) from None
    _say_lint_findings(canary_file, canary_text)
    scenario_docs = read_yaml(scenario_file)
    if len(scenario_docs) != 1:
        raise fail(
            f"{scenario_file}: expected exactly one YAML document, found {len(scenario_docs)}"
        )
    try:
        scenario = parse_scenario(scenario_docs[0])
        check_scenario(canary_doc, scenario)
    except SpecError as exc:
        raise spec_error(scenario_file, exc, "(scenario)") from None
    try:
        # The file's MetricTemplates: where the controller cannot use one, the run says so.
        records = run(canary_doc, scenario, templates=load_metric_templates(canary_docs))
    except SpecError as exc:
        raise spec_error(canary_file, exc) from None

    rows = [r.to_json() for r in records]
    if fmt is Format.JSON:
        for row in rows:
            sys.stdout.write(json.dumps(row, sort_keys=False) + "\n")
    else:
        _simulation_table(scenario.name, rows)
    if report is not None:
        _write_report(canary_doc, records, report)
    if expect is not None and rows and rows[-1]["phase"] != expect:
        raise fail(
            f"expected the last tick to be {expect}, it is {rows[-1]['phase'] or 'empty'}", code=1
        )


def _say_lint_findings(canary_file: Path, text: str) -> None:
    """What ``canary lint`` finds in the Canary's file, on stderr before the run.

    Why: the simulation reads the Canary as the controller will, and both drop what the API
    server would drop, so ``dryrun: true`` (for ``dryRun``) simulated a metric that fails the
    canary without a word, and a provider the judge cannot compare with ran as if it could.
    Said, not refused: the run still shows what the policy as written does.
    """
    from canary.commands._common import InputFile
    from canary.commands.lint import lint_inputs

    try:
        report = lint_inputs(
            [InputFile(str(canary_file), canary_file)], promtool=None, read=lambda _: text
        )
    except Exception as exc:  # a bug of lint must not stop the simulation
        typer.echo(f"canary lint: could not check {canary_file}: {exc}", err=True)
        return
    for finding in report.findings:
        typer.echo(f"canary lint: {finding}", err=True)


def _write_report(canary_doc: Mapping[str, Any], records: Sequence[Any], path: Path) -> None:
    """``simulate --report FILE``: the decision report of the simulated run (canary.report)."""
    from canary.commands._common import err
    from canary.report.output import RenderError
    from canary.report.simulated import write_simulated_report

    try:
        fmt = write_simulated_report(canary_doc, records, path)
    except RenderError as exc:
        raise fail(str(exc), code=1) from None
    except OSError as exc:
        raise fail(f"{path}: cannot write: {exc.strerror or exc}", code=1) from None
    err.print(f"wrote the decision report to {path} ({fmt})", highlight=False, markup=False)


def _metric_line(metric: Mapping[str, Any]) -> str:
    """A metric that did not pass (or passed after inconclusive checks), in the table: its name
    (once), advisory or not, and why."""
    from rich.markup import escape

    name, summary = metric["name"], metric["summary"]
    label = f"{name} (advisory)" if metric.get("advisory") else name
    text = (
        summary
        if summary.startswith(name) and not metric.get("advisory")
        else f"{label}: {summary}"
    )
    return f"[dim]{escape(text)}[/dim]"


def _simulation_table(name: str, rows: Sequence[Mapping[str, Any]]) -> None:
    from rich import box
    from rich.table import Table

    from canary.commands._common import out

    table = Table(
        title=f"canary simulate: {name}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    table.add_column("#", justify="right")
    table.add_column("time", no_wrap=True)
    table.add_column("phase", no_wrap=True)
    table.add_column("weights", justify="center", no_wrap=True)
    table.add_column("failed", justify="right")
    table.add_column("iter", justify="right")
    table.add_column("what happened", overflow="fold", ratio=1, min_width=30)
    colours = {
        "Succeeded": "green",
        "Failed": "red",
        "Waiting": "yellow",
        "WaitingPromotion": "yellow",
    }
    held: set[str] = set()  # the metrics the tick before held, or onMaxInconclusive decided
    for row in rows:
        lines = [e["message"] for e in row["events"]]
        # A metric line the tick's Events already quote would say the same thing twice. A
        # pass right after inconclusive checks (not a warm-up) says how the hold ended (the
        # judge's evidence, or the fallback of onMaxInconclusive), which no Event says; so
        # does each pass the fallback decides after it, and the first the judge decides again.
        lines += [
            _metric_line(m)
            for m in row["metrics"]
            if (m["outcome"] != "Pass" or m["name"] in held)
            and not any(m["summary"] in line for line in lines)
        ]
        held = {
            m["name"]
            for m in row["metrics"]
            if (m["outcome"] == "Inconclusive" and not m.get("warmingUp")) or m.get("fallback")
        }
        lines += [
            f"[{'red' if a['severity'] == 'error' else 'cyan'}]alert ({a['severity']}): {a['message']}[/]"
            for a in row["alerts"]
        ]
        if row["hooksCalled"]:
            lines.append(f"[dim]hooks: {', '.join(row['hooksCalled'])}[/dim]")
        weights = f"{row['primaryWeight']}/{row['canaryWeight']}" + (
            " m" if row["mirrored"] else ""
        )
        phase = row["phase"] or "-"
        table.add_row(
            str(row["tick"]),
            row["time"][11:19],
            f"[{colours.get(phase, 'default')}]{phase}[/]",
            weights,
            str(row["failedChecks"]),
            str(row["iterations"]),
            "\n".join(lines) or "[dim]-[/dim]",
        )
    if out.is_terminal:
        out.print(table)
        return
    # Piped or redirected: the same table without the padding that fills each row to the
    # console's width (a diff or a grep of the output should not see 160 columns of spaces).
    with out.capture() as captured:
        out.print(table)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


# --------------------------------------------------------------------------- run


@app.command()
def run(
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            help="Watch this namespace; repeat for several (default: all namespaces).",
        ),
    ] = None,
    watch_label_selector: Annotated[
        str | None,
        typer.Option(
            "--watch-label-selector",
            help="Only Canaries whose labels match (sharding: one controller per shard label).",
        ),
    ] = None,
    kube_api_qps: Annotated[
        float,
        typer.Option("--kube-api-qps", help="Requests per second to the API server (0: no limit)."),
    ] = 100.0,
    kube_api_burst: Annotated[
        int, typer.Option("--kube-api-burst", help="Requests allowed in a burst above the QPS.")
    ] = 250,
    max_concurrent_passes: Annotated[
        int,
        typer.Option(
            "--max-concurrent-passes", help="Passes (Canaries and GitSources) run at the same time."
        ),
    ] = 32,
    kubeconfig: Annotated[
        str | None,
        typer.Option(
            "--kubeconfig",
            envvar="KUBECONFIG",
            help="Kubeconfig file (default: in-cluster, then ~/.kube/config).",
        ),
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="Kubeconfig context.")] = None,
    provider: Annotated[
        str,
        typer.Option(
            "--provider",
            help="Default routing provider for canaries without spec.provider (Flagger's -mesh-provider).",
        ),
    ] = "kubernetes",
    metrics_server: Annotated[
        str, typer.Option("--metrics-server", help="Default Prometheus for built-in metrics.")
    ] = "http://prometheus:9090",
    listen: Annotated[
        str, typer.Option("--listen", help="Address for /metrics, /healthz and /readyz.")
    ] = "0.0.0.0:8080",
    leader_election: Annotated[
        bool,
        typer.Option(
            "--leader-election/--no-leader-election", help="Elect one active replica with a Lease."
        ),
    ] = False,
    leader_namespace: Annotated[
        str | None,
        typer.Option(
            "--leader-election-namespace", help="Namespace of the Lease (default: the pod's)."
        ),
    ] = None,
    leader_election_id: Annotated[
        str,
        typer.Option(
            "--leader-election-id",
            help="Name of the Lease (give each shard its own).",
        ),
    ] = "canary-engine-leader",
    cluster_name: Annotated[
        str, typer.Option("--cluster-name", help="Named in every notification.")
    ] = "",
    event_webhook: Annotated[
        str | None,
        typer.Option("--event-webhook", help="Receives every event (env EVENT_WEBHOOK_URL)."),
    ] = None,
    git_cache: Annotated[
        Path | None, typer.Option("--git-cache", help="Working copies of Git repositories.")
    ] = None,
    git_author_name: Annotated[str, typer.Option("--git-author-name")] = "canary-engine",
    git_author_email: Annotated[
        str, typer.Option("--git-author-email")
    ] = "canary-engine@users.noreply.local",
    lease_duration: Annotated[
        float,
        typer.Option(
            "--leader-election-lease-duration",
            help="Seconds a leader holds the Lease without renewing.",
        ),
    ] = 15.0,
    lease_renew: Annotated[
        float,
        typer.Option("--leader-election-renew-period", help="Seconds between Lease renewals."),
    ] = 5.0,
    time_scale: Annotated[
        float,
        typer.Option(
            "--time-scale",
            help="Multiply every analysis interval (demos and tests; 1 in production).",
        ),
    ] = 1.0,
    slack_url: Annotated[
        str, typer.Option("--slack-url", help="Global Slack webhook (env SLACK_URL wins).")
    ] = "",
    slack_token: Annotated[
        str, typer.Option("--slack-token", help="Slack bot token (env SLACK_TOKEN).")
    ] = "",
    slack_channel: Annotated[
        str, typer.Option("--slack-channel", help="Slack channel (env SLACK_CHANNEL).")
    ] = "",
    slack_user: Annotated[
        str, typer.Option("--slack-user", help="Slack user name (env SLACK_USER).")
    ] = "canary-engine",
    slack_proxy_url: Annotated[
        str, typer.Option("--slack-proxy-url", help="Proxy for Slack (env SLACK_PROXY_URL).")
    ] = "",
    msteams_url: Annotated[
        str, typer.Option("--msteams-url", help="Global Teams webhook (env MSTEAMS_URL).")
    ] = "",
    msteams_proxy_url: Annotated[
        str, typer.Option("--msteams-proxy-url", help="Proxy for Teams (env MSTEAMS_PROXY_URL).")
    ] = "",
    selector_labels: Annotated[
        str,
        typer.Option(
            "--selector-labels",
            help="Comma-separated labels that may select a target's pods, first match wins "
            "(Flagger's -selector-labels).",
        ),
    ] = "app,name,app.kubernetes.io/name",
    include_label_prefix: Annotated[
        str,
        typer.Option(
            "--include-label-prefix",
            help="Comma-separated prefixes of the target's labels and annotations copied to "
            "the primary; * copies all (Flagger's -include-label-prefix).",
        ),
    ] = "*",
    config_tracking: Annotated[
        bool,
        typer.Option(
            "--enable-config-tracking/--disable-config-tracking",
            help="Copy the ConfigMaps and Secrets a target uses to -primary twins and restart "
            "the analysis when they change (Flagger's -enable-config-tracking).",
        ),
    ] = True,
    ingress_annotations_prefix: Annotated[
        str,
        typer.Option(
            "--ingress-annotations-prefix",
            help="Prefix of the NGINX canary annotations (Flagger's -ingress-annotations-prefix).",
        ),
    ] = "nginx.ingress.kubernetes.io",
    ingress_class: Annotated[
        str,
        typer.Option(
            "--ingress-class",
            help="Ingress class set on the routing objects of contour (Flagger's -ingress-class).",
        ),
    ] = "",
    no_cross_namespace_refs: Annotated[
        bool,
        typer.Option(
            "--no-cross-namespace-refs",
            help="Refuse MetricTemplates and AlertProviders in another namespace than the "
            "Canary's (Flagger's -no-cross-namespace-refs).",
        ),
    ] = False,
    flagger_metrics: Annotated[
        bool,
        typer.Option(
            "--flagger-metrics/--no-flagger-metrics",
            help="Also serve Flagger's own metrics on /metrics (flagger_canary_status, "
            "flagger_info, ...) for Flagger's dashboards and alerts.",
        ),
    ] = True,
    log_format: Annotated[str, typer.Option("--log-format", help="text or json.")] = "text",
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Run the operator against the cluster of the current kubeconfig (or in-cluster)."""
    import asyncio
    import os

    from canary.commands._common import escape
    from canary.controller.logs import configure_logging
    from canary.controller.operator import OperatorError, run_operator
    from canary.settings import ChatSettings, Settings

    configure_logging(log_format, log_level)
    host, _, port = listen.rpartition(":")
    port = port or "8080"
    if not port.isdigit() or int(port) > 65535:
        raise fail(escape(f"--listen {listen}: expected HOST:PORT, such as 127.0.0.1:8080"))
    optional: dict[str, object] = {"git_cache": git_cache} if git_cache is not None else {}
    try:
        options = Settings.from_environment(
            os.environ,
            namespaces=tuple(namespace or ()),
            watch_label_selector=watch_label_selector or None,
            kube_api_qps=kube_api_qps,
            kube_api_burst=kube_api_burst,
            max_concurrent_passes=max(1, max_concurrent_passes),
            kubeconfig=kubeconfig,
            context=context,
            default_provider=provider,
            metrics_server=metrics_server,
            listen_host=host or "0.0.0.0",
            listen_port=int(port),
            leader_election=leader_election,
            leader_namespace=leader_namespace,
            leader_election_id=leader_election_id,
            cluster_name=cluster_name,
            event_webhook=event_webhook,
            git_author_name=git_author_name,
            git_author_email=git_author_email,
            lease_seconds=lease_duration,
            lease_renew_seconds=lease_renew,
            time_scale=time_scale,
            selector_labels=_comma_list(selector_labels),
            include_label_prefixes=_comma_list(include_label_prefix),
            config_tracking=config_tracking,
            ingress_annotations_prefix=ingress_annotations_prefix,
            ingress_class=ingress_class,
            no_cross_namespace_refs=no_cross_namespace_refs,
            flagger_metrics=flagger_metrics,
            chat=ChatSettings(
                slack_url=slack_url,
                slack_token=slack_token,
                slack_channel=slack_channel,
                slack_user=slack_user,
                slack_proxy_url=slack_proxy_url,
                msteams_url=msteams_url,
                msteams_proxy_url=msteams_proxy_url,
            ),
            **optional,
        )
    except ValueError as exc:  # a malformed environment variable (CANARY_STARTUP_TIMEOUT)
        raise fail(escape(str(exc))) from None
    try:
        asyncio.run(run_operator(options))
    except OperatorError as exc:  # one line saying what is wrong and what to do; exit 1
        raise fail(escape(str(exc)), code=1) from None
    except KeyboardInterrupt:
        pass


def _comma_list(text: str) -> tuple[str, ...]:
    """``a, b,c`` as ``("a", "b", "c")``: Flagger's list flags are comma-separated."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


# --------------------------------------------------------------------------- sandbox


@app.command()
def sandbox(
    port: Annotated[
        int, typer.Option("--port", help="Port of the API server on 127.0.0.1 (0: any free port).")
    ] = 6443,
    kubeconfig: Annotated[
        Path, typer.Option("--kubeconfig", help="Where to write the kubeconfig.")
    ] = Path(".sandbox/kubeconfig"),
    with_routers: Annotated[
        bool,
        typer.Option(
            "--routers/--no-routers", help="Also install Istio, Gateway API and SMI CRDs."
        ),
    ] = True,
) -> None:
    """Start the local Kubernetes API sandbox (with our CRDs) until Ctrl-C."""
    from kubesandbox import run_sandbox

    crds = sorted(_crd_dir().glob("*.yaml"))
    if with_routers:
        crds += sorted((_crd_dir() / "routers").glob("*.yaml"))
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    run_sandbox("127.0.0.1", port, kubeconfig, crds)


def _crd_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "crds", here / "_data" / "crds"):
        if candidate.is_dir():
            return candidate
    raise fail(
        "cannot find the CRD directory (crds/ in a checkout, canary/_data/crds when installed)",
        code=1,
    )


# --------------------------------------------------------------------------- demo


@app.command()
def demo(
    fast: Annotated[
        bool, typer.Option("--fast", help="Play faster (analysis intervals shortened), for CI.")
    ] = False,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave everything running at the end, until Ctrl-C.")
    ] = False,
    port: Annotated[
        int, typer.Option("--port", help="Port of the sandbox API server (0: any free port).")
    ] = 0,
    workdir: Annotated[
        Path,
        typer.Option("--workdir", help="Where the kubeconfig, the Git repository and the logs go."),
    ] = Path(".demo"),
    summary: Annotated[
        Path | None,
        typer.Option("--summary", metavar="PATH", help="Also write the JSON summary here."),
    ] = None,
) -> None:
    """The whole loop on this machine: v2 promoted step by step, v3 rolled back and reverted in Git."""
    from canary.demo.story import demo_command

    demo_command(fast=fast, keep=keep, port=port, workdir=workdir, summary=summary)


def main() -> None:
    """The ``canary`` console script."""
    app()


def kubectl_main() -> None:
    """The ``kubectl-canary`` console script: kubectl runs it for ``kubectl canary ...``.

    The same commands; the usage lines (and click's "Try 'kubectl canary get --help'") name
    ``kubectl canary``. No completion options: a script installed for a command named
    "kubectl canary" would not work, and ``canary --install-completion`` covers the commands.
    """
    command = typer.main.get_command(app)
    command.params = [p for p in command.params if p.name not in COMPLETION_OPTIONS]
    command.main(prog_name=KUBECTL_PROG, complete_var="_KUBECTL_CANARY_COMPLETE")


if __name__ == "__main__":  # pragma: no cover
    main()
