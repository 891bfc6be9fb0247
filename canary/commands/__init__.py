"""The operator-facing commands of ``canary``: lint, convert, get, status and the gates.

Why a package of its own: ``canary/cli.py`` holds the commands that run things (``run``,
``simulate``, ``sandbox``); the commands people use around a release — checking manifests,
migrating from Flagger, looking at canaries, answering their gates — are many and each has its
own module here. ``canary.cli`` adds them with :func:`register`; nothing here imports
``canary.cli`` (that would be an import cycle), and heavy imports happen inside the commands so
``canary --help`` stays fast.

docs/cli.md documents every command, option, output format, exit code and the annotation
protocol of the gate commands.
"""

from __future__ import annotations

import typer

__all__ = ["COMMANDS", "register"]

COMMANDS = (
    "lint",
    "convert",
    "get",
    "status",
    "promote",
    "abort",
    "retry",
    "pause",
    "resume",
)


def register(app: typer.Typer) -> None:
    """Add the operator commands to ``app`` (the ``canary`` Typer application)."""
    from canary.commands.convert import convert_command
    from canary.commands.gates import (
        abort_command,
        pause_command,
        promote_command,
        resume_command,
        retry_command,
    )
    from canary.commands.lint import lint_command
    from canary.commands.show import get_command, status_command

    app.command("lint")(lint_command)
    app.command("convert")(convert_command)
    app.command("get")(get_command)
    app.command("status")(status_command)
    app.command("promote")(promote_command)
    app.command("abort")(abort_command)
    app.command("retry")(retry_command)
    app.command("pause")(pause_command)
    app.command("resume")(resume_command)
