"""A ``canary``-like Typer application with only the operator commands registered.

The tests drive the commands through it (in-process with CliRunner, or as a subprocess with
``python -m tests.cli._app`` for the watch modes), so they do not depend on how ``canary/cli.py``
wires :func:`canary.commands.register`.
"""

from __future__ import annotations

import typer

from canary.commands import register


def make_app() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """canary (operator commands only)."""

    register(app)
    return app


if __name__ == "__main__":
    make_app()()
