"""``canary wait NAME``: block until a release is promoted or rolled back, for CI pipelines.

Why: a pipeline that deploys wants one command that ends when the release has an outcome,
with an exit code that says which. ``kubectl wait --for=condition=Promoted`` cannot be that
command: right after ``kubectl set image`` the condition still holds the previous release's
``True``, and it cannot tell one release from the next (docs/cli.md says what it can do).
``canary status -w`` never ends by itself.

What it waits for (canary.commands.release decides, from what it reads): a Git revision
(``--revision``), the release whose target runs an image (``--image``), or, without either,
the release the target holds when the wait starts. The answer is always about that release,
never about the canary's phase, so the previous release's ``Succeeded`` cannot end the wait.
Without options, a target whose release is already promoted ends the wait at once (exit 0,
saying so); to wait for a release not applied yet (a commit Flux has not applied), name it.

How: the Canary and its target are followed with watches (a field selector on the name; the
watch is renewed, and everything read again, at least every `WATCH_SECONDS`); after each
change the Canary, the target, the primary and the target's tracked configs are read and
judged. A progress line is printed when what it shows changes (phase, weight, failed
checks, the last verdicts), not on every tick. The API server going away mid-wait is
reported once and retried with a backoff until the deadline; an unusable kubeconfig, an
API server that cannot be reached at the start, missing CRDs or a refused read end the
command at once with one line.

Exit codes: 0 promoted; 1 failed (rolled back, refused as a known-bad release, its
promotion failed) or superseded; 2 timed out (also bad usage, as for every command); 3 the
canary does not exist (or was deleted); 4 the cluster could not be asked; 130 Ctrl-C.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from canary.commands._common import Output, dump, err, escape, fail, out, write_stdout
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
from canary.commands.stored import count, mapping, printable, records, string

if TYPE_CHECKING:  # loaded when the command runs: `canary --help` stays fast
    from canary.commands.release import Verdict, Wanted

__all__ = ["EXIT_CODES", "Result", "progress_line", "wait_command"]

DEFAULT_TIMEOUT = "10m"
WATCH_SECONDS = 60  # a watch is renewed, and everything read again, at least this often
REVERT_GRACE_SECONDS = 15.0  # after a rollback, how long the Git revert may take to be told
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 8.0  # retrying an API server that went away

EXIT_TIMEOUT, EXIT_NOT_FOUND, EXIT_NO_CLUSTER, EXIT_INTERRUPTED = 2, 3, 4, 130
RUNNING = ("Progressing", "Waiting", "WaitingPromotion", "Promoting", "Finalising")
FAILING = ("Fail", "Error", "NoData")


class Result(StrEnum):
    PROMOTED = "Promoted"
    FAILED = "Failed"
    SUPERSEDED = "Superseded"
    TIMED_OUT = "TimedOut"
    NOT_FOUND = "NotFound"


EXIT_CODES = {
    Result.PROMOTED: 0,
    Result.FAILED: 1,
    Result.SUPERSEDED: 1,
    Result.TIMED_OUT: EXIT_TIMEOUT,
    Result.NOT_FOUND: EXIT_NOT_FOUND,
}


@dataclass(frozen=True, slots=True)
class WaitRequest:
    name: str
    namespace: str
    revision: str
    image: str
    timeout: float  # seconds
    timeout_text: str


@dataclass(frozen=True, slots=True)
class Seen:
    """The objects read after one change: the Canary, its target and primary (None when
    missing or not read), and the target's tracked configs (None: not read)."""

    canary: Mapping[str, Any]
    target: Mapping[str, Any] | None = None
    primary: Mapping[str, Any] | None = None
    configs: Mapping[str, str] | None = None

    @property
    def status(self) -> Mapping[str, Any]:
        status = self.canary.get("status")
        return status if isinstance(status, Mapping) else {}

    @property
    def spec(self) -> Mapping[str, Any]:
        spec = self.canary.get("spec")
        return spec if isinstance(spec, Mapping) else {}


@dataclass(frozen=True, slots=True)
class Ending:
    result: Result
    verdict: Verdict | None
    seen: Seen | None
    started: datetime
    ended: datetime
    note: str = ""  # why it ended without a verdict (deleted, the API server unreachable)


# --------------------------------------------------------------------------- reading


def _target_ref(canary: Mapping[str, Any]) -> tuple[str, str, str]:
    ref = mapping(mapping(canary.get("spec")).get("targetRef"))
    return (
        str(ref.get("apiVersion") or "apps/v1"),
        str(ref.get("kind") or "Deployment"),
        str(ref.get("name") or ""),
    )


async def _get(client: Any, api_version: str, kind: str, name: str, ns: str) -> Any:
    from canary.ports import NotFound

    if not name:
        return None
    try:
        return await client.get(api_version, kind, name, ns)
    except NotFound:  # a kind the server does not serve: no such target
        return None


async def _configs(client: Any, canary: Mapping[str, Any]) -> dict[str, str] | None:
    """The target's tracked ConfigMap and Secret checksums as the controller computes them;
    None when they cannot be read (Secrets a CI account may not read, say)."""
    from canary.adapters.workloads import KubeWorkloads
    from canary.errors import CanaryError
    from canary.model import parse_canary

    try:
        return await KubeWorkloads(client).tracked_configs(parse_canary(canary))
    except CanaryError:
        return None


async def read(client: Any, request: WaitRequest) -> Seen | None:
    """The Canary and, unless a Git revision is waited for, its target, primary and configs."""
    canary = await client.get(API_VERSION, CANARY_KIND, request.name, request.namespace)
    if canary is None:
        return None
    if request.revision:
        return Seen(canary)
    api_version, kind, name = _target_ref(canary)
    target, primary = await asyncio.gather(
        _get(client, api_version, kind, name, request.namespace),
        _get(client, api_version, kind, f"{name}-primary", request.namespace),
    )
    configs = await _configs(client, canary) if target is not None else None
    return Seen(canary, target, primary, configs)


def _snapshot(seen: Seen) -> Any:
    from canary.commands.release import snapshot

    return snapshot(seen.canary, seen.target, seen.primary, seen.configs)


# --------------------------------------------------------------------------- following


@dataclass
class _Changes:
    """Watches that set ``changed`` whenever an object they follow changes (and after each
    fresh list). A transient failure is told to ``trouble`` and retried with a backoff; a
    definite one (forbidden, not served) of a ``fatal`` watch is kept in ``failure``."""

    client: Any
    trouble: Callable[[BaseException | None], None]
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    failure: BaseException | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def follow(self, api_version: str, kind: str, name: str, ns: str, *, fatal: bool) -> None:
        self.tasks.append(asyncio.create_task(self._follow(api_version, kind, name, ns, fatal)))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _follow(self, api_version: str, kind: str, name: str, ns: str, fatal: bool) -> None:
        from canary.ports import Conflict, Forbidden, Invalid, KubeError, NotFound

        selector, delay = f"metadata.name={name}", BACKOFF_FIRST
        while True:
            try:
                _, version = await self.client.list_versioned(
                    api_version, kind, ns, field_selector=selector
                )
                self.changed.set()
                self.trouble(None)
                delay = BACKOFF_FIRST
                async for event in self.client.watch(
                    api_version,
                    kind,
                    ns,
                    field_selector=selector,
                    resource_version=version,
                    timeout_seconds=WATCH_SECONDS,
                ):
                    if event.type != "BOOKMARK":
                        self.changed.set()
            except Conflict:  # 410 Gone: the version is too old; list again
                continue
            except (Forbidden, NotFound, Invalid) as exc:
                if fatal:
                    self.failure = exc
                    self.changed.set()
                return
            except KubeError as exc:
                self.trouble(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)


async def follow(client: Any, request: WaitRequest, wanted: Wanted, report: Reporter) -> Ending:
    """Read, judge, and wait for the next change until the release has an outcome or the
    time is up. The first read is not retried: a cluster that cannot be asked at all is
    told at once (the caller's error handling)."""
    loop = asyncio.get_running_loop()
    started = datetime.now(UTC)
    deadline = loop.time() + request.timeout
    seen = await read(client, request)
    if seen is None:
        return Ending(Result.NOT_FOUND, None, None, started, datetime.now(UTC))
    report.header(request, wanted)
    changes = _Changes(client, report.trouble)
    changes.follow(API_VERSION, CANARY_KIND, request.name, request.namespace, fatal=True)
    api_version, kind, name = _target_ref(seen.canary)
    if not request.revision and name:
        changes.follow(api_version, kind, name, request.namespace, fatal=False)
    state = _Loop(client, request, report, changes, deadline, started, seen, wanted)
    try:
        return await state.run()
    finally:
        await changes.close()


@dataclass
class _Loop:
    client: Any
    request: WaitRequest
    report: Reporter
    changes: _Changes
    deadline: float
    started: datetime
    seen: Seen
    wanted: Wanted
    verdict: Verdict | None = None

    def end(self, result: Result, note: str = "", seen: Seen | None = None) -> Ending:
        return Ending(
            result, self.verdict, seen or self.seen, self.started, datetime.now(UTC), note
        )

    async def run(self) -> Ending:
        from canary.commands.release import judge

        loop = asyncio.get_running_loop()
        settle = self.deadline  # after a rollback: until when to wait for its Git revert
        while True:
            self.verdict = judge(self.wanted, _snapshot(self.seen))
            self.wanted = self.verdict.wanted
            self.report.progress(self.seen, self.verdict)
            if not self.verdict.outcome.final:
                settle = self.deadline
            elif not _revert_pending(self.seen, self.verdict):
                return self.end(Result(self.verdict.outcome.value))
            elif settle == self.deadline:
                settle = min(self.deadline, loop.time() + REVERT_GRACE_SECONDS)
            if not await self._next(settle):
                return self._out_of_time()
            found = await self._read_again()
            if found is None:
                return self.end(Result.NOT_FOUND, "it was deleted while waiting", self.seen)
            self.seen = found

    async def _next(self, until: float) -> bool:
        """Wait for the next change; False when ``until`` comes first."""
        if asyncio.get_running_loop().time() >= until:
            return False
        try:
            async with asyncio.timeout_at(until):
                await self.changes.changed.wait()
        except TimeoutError:
            return False
        self.changes.changed.clear()
        if self.changes.failure is not None:
            raise self.changes.failure
        return True

    async def _read_again(self) -> Seen | None:
        """A fresh read; the last one when the API server is away (the watch retries it)."""
        from canary.ports import Forbidden, Invalid, KubeError, NotFound

        try:
            return await read(self.client, self.request)
        except (Forbidden, NotFound, Invalid):
            raise
        except KubeError as exc:
            self.report.trouble(exc)
            return self.seen

    def _out_of_time(self) -> Ending:
        verdict = self.verdict
        if verdict is not None and verdict.outcome.final:  # the revert took longer: say so
            return self.end(Result(verdict.outcome.value))
        return self.end(Result.TIMED_OUT, self.report.lost)


def _revert_pending(seen: Seen, verdict: Verdict) -> bool:
    """A rollback of this release whose Git revert is scheduled but not made yet."""
    revert = seen.status.get("gitRevert")
    return (
        verdict.outcome.value == Result.FAILED
        and verdict.current_run
        and isinstance(revert, Mapping)
        and revert.get("state") == "Pending"
    )


# --------------------------------------------------------------------------- output


def _analysis(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return records(status.get("analysis"))


def progress_line(seen: Seen, verdict: Verdict) -> str:
    """What the canary is doing, in one line (no time: equal lines are printed once); what
    the status says is shown without control characters or line breaks."""
    status, spec = seen.status, seen.spec
    phase = string(status.get("phase")) or "not initialized"
    parts = [phase]
    if phase in RUNNING:
        weight, iterations = (
            count(status.get("canaryWeight"), 0),
            count(status.get("iterations"), 0),
        )
        parts.append(
            f"iteration {iterations}" if iterations and not weight else f"weight {weight}%"
        )
    failed = count(status.get("failedChecks"), 0)
    if failed:
        threshold = count(
            mapping(spec.get("analysis") or spec.get("canaryAnalysis")).get("threshold"), 0
        )
        parts.append(f"{failed}/{threshold or '?'} failed checks")
    verdicts = [
        f"{string(m.get('name')) or '?'} {string(m.get('outcome')) or '?'}"
        + (" (advisory)" if m.get("advisory") is True else "")
        for m in _analysis(status)
    ]
    if verdicts and (phase in RUNNING or verdict.current_run):
        parts.append(", ".join(verdicts))
    if not verdict.outcome.final:
        parts.append(f"· {verdict.why}")
    return printable("  ".join(parts), newlines=False)


@dataclass
class Reporter:
    """The human side of a wait: progress lines (stdout, or stderr when stdout is for a
    script) and the API server's comings and goings, each told once."""

    console: Console
    clock: Callable[[], float]
    started: float = 0.0
    last: str = ""
    lost: str = ""

    def header(self, request: WaitRequest, wanted: Wanted) -> None:
        self.console.print(
            f"Waiting up to {request.timeout_text} for {escape(wanted.describe())} "
            f"of {escape(request.name)}.{escape(request.namespace)}",
            highlight=False,
        )

    def progress(self, seen: Seen, verdict: Verdict) -> None:
        line = progress_line(seen, verdict)
        if line != self.last:
            self.last = line
            self.console.print(f"[dim]{self._elapsed()}[/dim]  {escape(line)}", highlight=False)

    def trouble(self, problem: BaseException | None) -> None:
        if problem is None:
            if self.lost:
                self.console.print(f"[dim]{self._elapsed()}[/dim]  the API server answers again")
            self.lost = ""
        elif not self.lost:
            self.lost = f"the API server could not be reached: {problem}"
            self.console.print(
                f"[dim]{self._elapsed()}[/dim]  [yellow]{escape(self.lost)}; retrying[/yellow]",
                highlight=False,
            )

    def _elapsed(self) -> str:
        seconds = int(max(0.0, self.clock() - self.started))
        return f"{seconds // 60:02d}:{seconds % 60:02d}"


def _where(seen: Seen | None) -> str:
    """Where the canary is, for a timeout."""
    if seen is None:
        return ""
    status = seen.status
    phase = string(status.get("phase")) or "not initialized"
    text = f"it is {phase}"
    if phase in RUNNING:
        text += f" at weight {count(status.get('canaryWeight'), 0)}%"
    revision = string(status.get("currentRevision"))
    if revision:
        text += f", revision {revision}"
    message = string(status.get("message"))
    return text + (f": {message}" if message else "")


def _failed_checks(ending: Ending) -> list[Mapping[str, Any]]:
    if ending.verdict is None or not ending.verdict.current_run or ending.seen is None:
        return []
    return [
        m
        for m in _analysis(ending.seen.status)
        if string(m.get("outcome")) in FAILING and m.get("advisory") is not True
    ]


def _revert_text(revert: Mapping[str, Any]) -> str:
    state = string(revert.get("state")) or "?"
    message = string(revert.get("message"))
    if state == "Skipped":
        return f"none ({message or 'skipped'})"
    bad, good = string(revert.get("badRevision")), string(revert.get("goodRevision"))
    text = f"{state}: {bad or '?'} -> {good or '?'}"
    if commit := string(revert.get("commit")):
        text += f" in commit {commit[:12]}"
    if pull_request := string(revert.get("pullRequest")):
        text += f", pull request {pull_request}"
    if state == "Pending":
        text += " (not made yet: canary status shows it)"
    elif message:
        text += f" ({message})"
    return text


def _not_found(ending: Ending, request: WaitRequest) -> str:
    text = f"canary {request.name!r} not found in namespace {request.namespace!r}"
    return text + (f" ({ending.note})" if ending.note else "")


def _timed_out(ending: Ending, request: WaitRequest) -> str:
    what = ending.verdict.wanted.describe() if ending.verdict else "the release"
    where = "; ".join(part for part in (_where(ending.seen), ending.note) if part)
    text = f"timed out after {request.timeout_text} waiting for {what} of "
    return text + f"{request.name}.{request.namespace}" + (f"; {where}" if where else "")


def render_end(ending: Ending, request: WaitRequest, console: Console) -> None:
    """The outcome for people; a timeout or a missing canary as an error line on stderr."""
    who = f"{request.name}.{request.namespace}"
    verdict = ending.verdict
    if ending.result is Result.NOT_FOUND:
        fail(escape(_not_found(ending, request)), EXIT_NOT_FOUND)
        return
    if ending.result is Result.TIMED_OUT or verdict is None:
        fail(escape(_timed_out(ending, request)), EXIT_TIMEOUT)  # it quotes the status
        return
    took = _took(ending)
    revision = f", revision {verdict.revision}" if verdict.revision else ""
    if ending.result is Result.PROMOTED:
        console.print(
            f"[green]promoted:[/green] {escape(who)}: {escape(verdict.why)} "
            f"({escape(took + revision)})",
            highlight=False,
        )
        return
    label = "failed" if ending.result is Result.FAILED else "superseded"
    console.print(
        f"[red]{label}:[/red] {escape(who)}: {escape(verdict.why)} ({escape(took + revision)})",
        highlight=False,
    )
    for metric in _failed_checks(ending):
        console.print(
            f"  failed check: {escape(string(metric.get('name')))} "
            f"{escape(string(metric.get('outcome')))}: {escape(string(metric.get('summary')))}",
            highlight=False,
        )
    revert = ending.seen.status.get("gitRevert") if ending.seen and verdict.current_run else None
    if isinstance(revert, Mapping):
        console.print(f"  Git revert: {escape(_revert_text(revert))}", highlight=False)


def _took(ending: Ending) -> str:
    from canary.model.duration import format_duration

    return f"after {format_duration((ending.ended - ending.started).total_seconds())}"


def ending_data(ending: Ending, request: WaitRequest) -> dict[str, Any]:
    """The JSON (or YAML) form of the outcome."""
    verdict, seen = ending.verdict, ending.seen
    status = seen.status if seen else {}
    if ending.result is Result.TIMED_OUT:
        why = _timed_out(ending, request)
    elif ending.result is Result.NOT_FOUND:
        why = _not_found(ending, request)
    else:
        why = verdict.why if verdict else ""
    return {
        "name": request.name,
        "namespace": request.namespace,
        "result": ending.result.value,
        "exitCode": EXIT_CODES[ending.result],
        "why": why,
        "waitedFor": _wanted_data(ending, request),
        "revision": (verdict.revision if verdict else "") or None,
        "phase": string(status.get("phase")),
        "canaryWeight": count(status.get("canaryWeight"), 0),
        "failedChecks": count(status.get("failedChecks"), 0),
        "message": string(status.get("message")),
        "analysis": [dict(m) for m in _analysis(status)],
        "failedMetrics": [string(m.get("name")) for m in _failed_checks(ending)],
        "gitRevert": dict(mapping(status.get("gitRevert"))) or None,
        "timing": _timing(ending, status),
    }


def _wanted_data(ending: Ending, request: WaitRequest) -> dict[str, Any]:
    wanted = ending.verdict.wanted if ending.verdict else None
    release = wanted.release if wanted else None
    return {
        "revision": request.revision or None,
        "image": request.image or None,
        "release": {"template": release.template, "images": list(release.images)}
        if release
        else None,
        "followed": list(wanted.followed) if wanted else [],
    }


def _timing(ending: Ending, status: Mapping[str, Any]) -> dict[str, Any]:
    from canary.timestamps import format_time

    return {
        "started": format_time(ending.started),
        "ended": format_time(ending.ended),
        "waitedSeconds": round((ending.ended - ending.started).total_seconds(), 3),
        "runStarted": string(status.get("runStartTime")) or None,
        "lastTransition": string(status.get("lastTransitionTime")) or None,
    }


# --------------------------------------------------------------------------- the command

RevisionOpt = Annotated[
    str | None,
    typer.Option(
        "--revision",
        metavar="REV",
        help="Wait for this Git revision: main@sha1:<sha>, a commit or its first 7+ digits.",
    ),
]
ImageOpt = Annotated[
    str | None,
    typer.Option(
        "--image",
        metavar="IMAGE",
        help="Wait for the release whose target runs this image (as written in the pod template).",
    ),
]
TimeoutOpt = Annotated[
    str,
    typer.Option(
        "--timeout", metavar="DURATION", help="Give up after this long (exit 2): 90s, 10m, 1h."
    ),
]
OutputOpt = Annotated[
    Output,
    typer.Option(
        "--output", "-o", help="text for people; json or yaml: one document with the outcome."
    ),
]


def wait_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The canary.")],
    namespace: NamespaceOpt = None,
    revision: RevisionOpt = None,
    image: ImageOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    output: OutputOpt = Output.TEXT,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Wait until a release is promoted (exit 0) or fails (1); 2 on timeout, 3 if no such canary.

    Without --revision or --image: the release the target holds now (exit 0 at once when it
    is already promoted).
    """
    if revision and image:
        raise fail("--revision and --image exclude each other")
    seconds = _seconds(timeout)
    options = ClusterOptions(kubeconfig, context)
    code = _asking_the_cluster(
        lambda: _run(
            options,
            WaitRequest(
                name=name,
                namespace=namespace or resolve_context(options).namespace,
                revision=(revision or "").strip(),
                image=(image or "").strip(),
                timeout=seconds,
                timeout_text=timeout,
            ),
            output,
        )
    )
    if code:
        raise typer.Exit(code)


def _seconds(timeout: str) -> float:
    from canary.model.duration import DurationError, parse_duration

    try:
        seconds = parse_duration(timeout)
    except DurationError as exc:
        raise fail(f"--timeout: {exc}") from None
    if seconds <= 0:
        raise fail("--timeout: must be more than 0s")
    return seconds


def _asking_the_cluster(run: Callable[[], int]) -> int:
    """``run()``'s exit code; a failure to ask the cluster (its one-line message already
    printed by the shared handling) becomes `EXIT_NO_CLUSTER`, never a code of the wait,
    and Ctrl-C (which the shared handling ends with 0) `EXIT_INTERRUPTED`, never "promoted"."""
    try:
        return run()
    except typer.Exit as exc:
        code = EXIT_INTERRUPTED if exc.exit_code == 0 else EXIT_NO_CLUSTER
        raise typer.Exit(code) from None


def _run(options: ClusterOptions, request: WaitRequest, output: Output) -> int:
    from canary.commands.release import Wanted

    console = out if output is Output.TEXT else err
    wanted = Wanted(revision=request.revision, image=request.image)

    async def work(client: Any) -> int:
        loop = asyncio.get_running_loop()
        report = Reporter(console, loop.time, started=loop.time())
        ending = await follow(client, request, wanted, report)
        render_end(ending, request, console)
        if output is not Output.TEXT:
            data = ending_data(ending, request)
            write_stdout(dump(data, output))  # strict JSON: a NaN in the status is null
        return EXIT_CODES[ending.result]

    return run_with_kube(options, work)
