"""The operator-facing commands of ``canary``: lint, convert, get, status, the gates, wait.

Why a package of its own: ``canary/cli.py`` holds the commands that run things (``run``,
``simulate``, ``sandbox``); the commands people use around a release — checking manifests,
migrating from Flagger, looking at canaries, answering their gates — are many and each has its
own module here. Nothing here imports ``canary.cli`` (that would be an import cycle).

:data:`COMMANDS` names each command's function and its one-line summary. ``canary.cli`` loads
a command's module only when that command runs or shows its help, so ``canary --help`` lists
the commands from the summaries without importing any of them (tests/cli/test_entry_points.py
checks that each summary is the first line of its command's docstring). :func:`register` adds them all
at once, the plain Typer way (the tests' application does that).

docs/cli.md documents every command, option, output format, exit code and the annotation
protocol of the gate commands.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import typer

__all__ = ["COMMANDS", "load", "register"]

# name -> ("module:function", the first line of the function's docstring)
COMMANDS: dict[str, tuple[str, str]] = {
    "lint": (
        "canary.commands.lint:lint_command",
        "Check Canary, MetricTemplate, AlertProvider and GitSource YAML offline.",
    ),
    "convert": (
        "canary.commands.convert:convert_command",
        "Convert Flagger flagger.app/v1beta1 manifests to canary.gitops.dev/v1beta1.",
    ),
    "get": (
        "canary.commands.show:get_command",
        "List canaries: phase, weight, failed checks, the revision under analysis and the last "
        "good one.",
    ),
    "status": (
        "canary.commands.show:status_command",
        "One canary in detail: progress, workloads, metric verdicts over time, Git revert, "
        "conditions, Events.",
    ),
    "report": (
        "canary.commands.report:report_command",
        "The decision report of a canary's run: weights, metrics, verdicts, decisions, Git revert.",
    ),
    "promote": (
        "canary.commands.gates:promote_command",
        "Open the gate the canary waits at (confirm-rollout, confirm-promotion), or --full: "
        "promote now.",
    ),
    "abort": (
        "canary.commands.gates:abort_command",
        "Roll the canary back now: traffic to the primary, and the Git revert if enabled.",
    ),
    "retry": (
        "canary.commands.gates:retry_command",
        "Run the failed revision of a Failed canary again.",
    ),
    "pause": (
        "canary.commands.gates:pause_command",
        "Hold the canary at its current step until resume (annotation paused=true).",
    ),
    "resume": (
        "canary.commands.gates:resume_command",
        "Continue a paused canary (removes the paused annotation).",
    ),
    "wait": (
        "canary.commands.wait:wait_command",
        "Wait until a release is promoted (exit 0) or fails (1); 2 on timeout, 3 if no such "
        "canary.",
    ),
    "dashboard": (
        "canary.commands.dashboard:dashboard_command",
        "A local web UI: canaries live, each one's decision picture and verdicts, the gates.",
    ),
}


def load(name: str) -> Callable[..., Any]:
    """The function of the command ``name`` (its module is imported now)."""
    module, _, attribute = COMMANDS[name][0].partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), attribute)
    return function


def register(app: typer.Typer) -> None:
    """Add the operator commands to ``app``, importing them all now."""
    for name in COMMANDS:
        app.command(name)(load(name))
