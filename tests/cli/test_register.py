"""`register(app)` adds the operator commands, and they do not collide with canary/cli.py's."""

from __future__ import annotations

import subprocess
import sys

import typer

from canary.commands import COMMANDS, register

from .conftest import REPO


def names(app: typer.Typer, *, ours: bool) -> set[str]:
    found = set()
    for command in app.registered_commands:
        callback = command.callback
        assert callback is not None
        if callback.__module__.startswith("canary.commands") == ours:
            found.add(command.name or callback.__name__.replace("_", "-"))
    return found


def test_register_adds_exactly_the_operator_commands() -> None:
    app = typer.Typer()
    register(app)
    assert names(app, ours=True) == set(COMMANDS)
    assert names(app, ours=False) == set()


def test_no_clash_with_the_commands_of_canary_cli() -> None:
    from canary.cli import app

    assert names(app, ours=False).isdisjoint(COMMANDS)


def test_registering_imports_nothing_heavy() -> None:
    # `canary --help` must stay fast: the Kubernetes client and the model load on first use.
    code = (
        "import sys, typer\n"
        "from canary.commands import register\n"
        "register(typer.Typer())\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'aiohttp', 'analysis')"
        " or m.startswith(('canary.model', 'canary.adapters'))]\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
