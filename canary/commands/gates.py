"""``canary promote|abort|retry|pause|resume``: answer a canary's gates from the command line.

Why: a release sometimes needs a person — open a confirm gate, stop a bad rollout now, run a
failed revision again, hold everything while an incident is looked at. These commands do it the
way canary.model.commands defines it: by annotating the Canary, so ``kubectl annotate`` does the
same and no extra API or webhook receiver is needed. A one-shot command writes a token
``<RFC3339 UTC time> by <user>`` that the controller acts on once (recording it in
``status.handledCommands`` and, with the user, in an Event); pausing is the ``paused: "true"``
annotation, resuming removes it.

Before writing, the command reads the Canary: a missing one is refused (exit 1), and a command
the phase makes moot (abort on a Succeeded canary) is refused with an explanation unless
``--force``. ``--wait`` then follows ``status.handledCommands`` until the controller took it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from canary.commands._common import (
    EXIT_FAILURE,
    Output,
    dump,
    escape,
    fail,
    out,
    warn,
    write_stdout,
)
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
from canary.timestamps import format_micro, format_time

__all__ = [
    "GateRequest",
    "abort_command",
    "make_token",
    "pause_command",
    "plan",
    "promote_command",
    "resume_command",
    "retry_command",
]

DEFAULT_WAIT_SECONDS = 120.0

# Phases as strings (canary.model.status.Phase values), to keep this module light.
WAITING, PROGRESSING, WAITING_PROMOTION = "Waiting", "Progressing", "WaitingPromotion"
PROMOTING, FINALISING = "Promoting", "Finalising"
SUCCEEDED, FAILED = "Succeeded", "Failed"


@dataclass(frozen=True, slots=True)
class GateRequest:
    """What a command would do to one Canary, decided from its current state."""

    command: str  # promote, promote-full, abort, retry, pause, resume
    annotation: str
    handled_key: str | None  # key in status.handledCommands (one-shot commands)
    patch: Mapping[str, Any] | None  # the merge patch; None: nothing to write
    effect: str  # "will open its waiting gate on the next tick"
    moot: str = ""  # why the phase makes it pointless, after the name ("is Succeeded: ...")
    token: str = ""


def make_token(user: str, now: datetime, avoid: Collection[str] = ()) -> str:
    """``2024-05-01T12:00:00Z by alice``: RFC 3339 UTC, finer if the second is already taken.

    The controller acts on a token once, so a second command in the same second must differ
    from the first one (and from the last handled one).
    """
    who = user or "unknown"
    now = now.astimezone(UTC)
    token = f"{format_time(now)} by {who}"
    if token in avoid:
        token = f"{format_micro(now)} by {who}"
    return token


def _phase(obj: Mapping[str, Any]) -> str:
    status = obj.get("status")
    phase = status.get("phase") if isinstance(status, Mapping) else None
    return phase if isinstance(phase, str) else ""


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    return annotations if isinstance(annotations, Mapping) else {}


def _handled(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status")
    handled = status.get("handledCommands") if isinstance(status, Mapping) else None
    return handled if isinstance(handled, Mapping) else {}


def _terminating(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata")
    return isinstance(meta, Mapping) and bool(meta.get("deletionTimestamp"))


def _described(phase: str) -> str:
    return phase or "not started (the controller has not initialised it yet)"


def plan(command: str, obj: Mapping[str, Any], user: str, now: datetime) -> GateRequest:
    """Decide what ``command`` does to the Canary ``obj`` (pure: tested without a cluster)."""
    from canary.model import commands as protocol

    phase = _phase(obj)
    annotations = _annotations(obj)
    if command == "pause":
        if _paused(annotations):
            return GateRequest(
                command, protocol.PAUSED, None, None, "is already paused: nothing to do"
            )
        return GateRequest(
            command,
            protocol.PAUSED,
            None,
            {"metadata": {"annotations": {protocol.PAUSED: "true"}}},
            "will stop at its current step on the next tick (traffic stays where it is) "
            "until `canary resume`",
        )
    if command == "resume":
        if protocol.PAUSED not in annotations:
            return GateRequest(command, protocol.PAUSED, None, None, "is not paused: nothing to do")
        return GateRequest(
            command,
            protocol.PAUSED,
            None,
            {"metadata": {"annotations": {protocol.PAUSED: None}}},
            "will continue from where it stopped on the next tick",
        )

    key = {"promote": "promote", "promote-full": "promoteFull", "abort": "abort", "retry": "retry"}[
        command
    ]
    annotation = protocol.ONE_SHOT[key]
    avoid = {str(annotations.get(annotation, "")), str(_handled(obj).get(key, ""))}
    token = make_token(user, now, avoid)
    moot = ""
    if command == "promote":
        effect = {
            WAITING: "will open its confirm-rollout gate on the next tick",
            WAITING_PROMOTION: "will open its confirm-promotion gate on the next tick",
            PROGRESSING: "will open its waiting gate (confirm-traffic-increase) on the next tick",
        }.get(phase, "would find no gate waiting")
        if phase not in (WAITING, WAITING_PROMOTION, PROGRESSING):
            moot = f"is {_described(phase)}: no gate is waiting"
    elif command == "promote-full":
        effect = "will skip the rest of the analysis and promote on the next tick"
        if phase == WAITING:
            effect = (
                "will skip the analysis once the run starts (its confirm-rollout gate still "
                "waits for its webhook or `canary promote`)"
            )
        if phase not in (WAITING, PROGRESSING, WAITING_PROMOTION):
            moot = f"is {_described(phase)}: no analysis is running"
    elif command == "abort":
        effect = "will roll back to the primary on the next tick (and revert in Git if enabled)"
        if phase in (PROMOTING, FINALISING):
            moot = f"is {phase}: the primary is already being promoted"
        elif phase not in (WAITING, PROGRESSING, WAITING_PROMOTION):
            moot = f"is {_described(phase)}: nothing is running"
    else:  # retry
        effect = "will run the failed revision again on the next tick"
        if phase != FAILED:
            moot = f"is {_described(phase)}: only a Failed canary can be retried"
    if _terminating(obj):
        moot = "is being deleted"
    return GateRequest(
        command,
        annotation,
        key,
        {"metadata": {"annotations": {annotation: token}}},
        effect,
        moot,
        token,
    )


def _paused(annotations: Mapping[str, Any]) -> bool:
    from canary.model.commands import PAUSED

    value = annotations.get(PAUSED)
    return isinstance(value, str) and value.strip().lower() in ("true", "yes", "1")


# --------------------------------------------------------------------------- running one


WaitOpt = Annotated[
    bool,
    typer.Option("--wait", help="Wait until the controller has handled the command."),
]
TimeoutOpt = Annotated[
    float,
    typer.Option("--timeout", min=0, help="With --wait: give up after this many seconds (exit 1)."),
]
ForceOpt = Annotated[
    bool,
    typer.Option("--force", help="Write the command even when the canary's phase makes it moot."),
]
ByOpt = Annotated[
    str | None,
    typer.Option(
        "--by",
        help="Who asks, as recorded in the token and the Event (default: the kubeconfig user).",
    ),
]
OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="text for people; json or yaml for scripts.")
]


def _run(
    command: str,
    name: str,
    namespace: str | None,
    kubeconfig: str | None,
    context: str | None,
    *,
    force: bool = False,
    wait: bool = False,
    timeout: float = DEFAULT_WAIT_SECONDS,
    by: str | None = None,
    output: Output = Output.TEXT,
) -> None:
    options = ClusterOptions(kubeconfig, context)
    ctx = resolve_context(options)
    ask = _Ask(
        command, name, namespace or ctx.namespace, by or ctx.user, force, wait, timeout, output
    )
    result = run_with_kube(options, ask.send)
    if output is not Output.TEXT:
        write_stdout(dump(result, output))
    if wait and result.get("handled") is False:
        raise typer.Exit(EXIT_FAILURE)


@dataclass(frozen=True, slots=True)
class _Ask:
    """One gate command as asked on the command line, its namespace and user resolved."""

    command: str
    name: str
    namespace: str
    user: str
    force: bool
    wait: bool
    timeout: float
    output: Output

    @property
    def label(self) -> str:
        return f"{self.name}.{self.namespace}"

    @property
    def verb(self) -> str:
        return self.command.replace("-full", " --full")

    @property
    def text(self) -> bool:
        return self.output is Output.TEXT

    async def send(self, client: Any) -> dict[str, Any]:
        """Read the canary, write the command's annotation and, with --wait, follow it."""
        obj = await client.get(API_VERSION, CANARY_KIND, self.name, self.namespace)
        if obj is None:
            raise fail(
                f"canary {self.name!r} not found in namespace {self.namespace!r}: nothing written",
                EXIT_FAILURE,
            )
        request = plan(self.command, obj, self.user, datetime.now(UTC))
        result: dict[str, Any] = {
            "command": self.command,
            "name": self.name,
            "namespace": self.namespace,
            "phase": _phase(obj),
            "annotation": request.annotation,
            "token": request.token or None,
            "written": False,
            "moot": request.moot or None,
            "handled": None,
        }
        self._refuse_if_moot(request)
        if request.patch is None:
            if self.text:
                out.print(f"{escape(self.label)} {escape(request.effect)}", highlight=False)
            return result
        self._warn_before_writing(obj, request)
        await client.patch(API_VERSION, CANARY_KIND, self.name, self.namespace, dict(request.patch))
        result["written"] = True
        if self.text:
            self._print_written(request)
        if self.wait and request.handled_key:
            result.update(
                await _wait(client, self.name, self.namespace, request, self.timeout, self.output)
            )
        elif self.wait and self.text:
            out.print(
                f"[dim]--wait has nothing to wait for: {self.command} is not a one-shot command[/dim]"
            )
        return result

    def _refuse_if_moot(self, request: GateRequest) -> None:
        """A command the phase makes moot is refused, unless --force (then only warned of)."""
        if not request.moot:
            return
        if not self.force:
            raise fail(
                f"{self.verb} refused: {self.label} {request.moot}; nothing written "
                "(--force writes it anyway)",
                EXIT_FAILURE,
            )
        warn(f"{self.label} {request.moot}; writing the {self.verb} request anyway (--force)")

    def _warn_before_writing(self, obj: Mapping[str, Any], request: GateRequest) -> None:
        """Say what the write will not do: resume a suspended canary, or keep an earlier
        request the controller has not handled yet."""
        spec = obj.get("spec")
        if self.command == "resume" and isinstance(spec, Mapping) and spec.get("suspend") is True:
            warn(
                f"{self.label} also has spec.suspend: true; it stays suspended until that is false"
            )
        previous = _annotations(obj).get(request.annotation)
        if request.handled_key and previous and _handled(obj).get(request.handled_key) != previous:
            warn(f"replacing a {self.verb} request the controller has not handled yet ({previous})")

    def _print_written(self, request: GateRequest) -> None:
        out.print(
            f"{escape(self.verb)} requested: {escape(self.label)} {escape(request.effect)}",
            highlight=False,
        )
        if request.token:
            shown = f"{request.annotation}={request.token}"
        elif self.command == "pause":
            shown = f"{request.annotation}=true"
        else:
            shown = f"{request.annotation} removed"
        out.print(f"[dim]annotation {escape(shown)}[/dim]", highlight=False)


async def _wait(
    client: Any, name: str, namespace: str, request: GateRequest, seconds: float, output: Output
) -> dict[str, Any]:
    from canary.commands.show import watch_loop

    key = request.handled_key or ""

    async def fetch() -> Mapping[str, Any] | None:
        obj: Mapping[str, Any] | None = await client.get(API_VERSION, CANARY_KIND, name, namespace)
        return obj

    def done(obj: Mapping[str, Any] | None) -> bool:
        return obj is None or _handled(obj).get(key) == request.token

    if output is Output.TEXT:
        out.print(f"[dim]waiting up to {seconds:g}s for the controller…[/dim]", highlight=False)
    try:
        async with asyncio.timeout(seconds):
            last = await watch_loop(fetch, _ignore, until=done)
    except TimeoutError:
        last = await fetch()
    if last is None:
        if output is Output.TEXT:
            out.print(
                f"[yellow]{escape(name)}.{escape(namespace)} was deleted while waiting[/yellow]"
            )
        return {"handled": False}
    handled = _handled(last).get(key) == request.token
    status = last.get("status")
    message = status.get("message") if isinstance(status, Mapping) else ""
    if output is Output.TEXT:
        if handled:
            out.print(
                f"[green]handled[/green]: {escape(name)}.{escape(namespace)} is "
                f"{escape(_phase(last) or 'not started')}"
                + (f": {escape(str(message))}" if message else ""),
                highlight=False,
            )
        else:
            out.print(
                f"[red]not handled within {seconds:g}s[/red]: is the controller running "
                "(`canary run`, or its Deployment's logs)?",
                highlight=False,
            )
    return {"handled": handled, "phaseAfter": _phase(last), "message": message or ""}


def _ignore(_: Any) -> None:
    return None


# --------------------------------------------------------------------------- the commands


NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The canary.")]


def promote_command(
    name: NameArg,
    full: Annotated[
        bool,
        typer.Option("--full", help="Skip the rest of the analysis and promote now."),
    ] = False,
    namespace: NamespaceOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = DEFAULT_WAIT_SECONDS,
    by: ByOpt = None,
    output: OutputOpt = Output.TEXT,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Open the gate the canary waits at (confirm-rollout, confirm-promotion), or --full: promote now."""
    _run(
        "promote-full" if full else "promote",
        name,
        namespace,
        kubeconfig,
        context,
        force=force,
        wait=wait,
        timeout=timeout,
        by=by,
        output=output,
    )


def _one_shot(command: str, doc: str) -> Callable[..., None]:
    def run(
        name: NameArg,
        namespace: NamespaceOpt = None,
        force: ForceOpt = False,
        wait: WaitOpt = False,
        timeout: TimeoutOpt = DEFAULT_WAIT_SECONDS,
        by: ByOpt = None,
        output: OutputOpt = Output.TEXT,
        kubeconfig: KubeconfigOpt = None,
        context: ContextOpt = None,
    ) -> None:
        _run(
            command,
            name,
            namespace,
            kubeconfig,
            context,
            force=force,
            wait=wait,
            timeout=timeout,
            by=by,
            output=output,
        )

    run.__doc__ = doc
    run.__name__ = f"{command}_command"
    return run


def _toggle(command: str, doc: str) -> Callable[..., None]:
    def run(
        name: NameArg,
        namespace: NamespaceOpt = None,
        output: OutputOpt = Output.TEXT,
        kubeconfig: KubeconfigOpt = None,
        context: ContextOpt = None,
    ) -> None:
        _run(command, name, namespace, kubeconfig, context, output=output)

    run.__doc__ = doc
    run.__name__ = f"{command}_command"
    return run


abort_command = _one_shot(
    "abort", "Roll the canary back now: traffic to the primary, and the Git revert if enabled."
)
retry_command = _one_shot("retry", "Run the failed revision of a Failed canary again.")
pause_command = _toggle(
    "pause", "Hold the canary at its current step until resume (annotation paused=true)."
)
resume_command = _toggle("resume", "Continue a paused canary (removes the paused annotation).")
