"""The ``canary`` and ``kubectl-canary`` commands as a user runs them: as processes.

``--version``, the usage text naming the way the command was called, help that never cuts an
option name short in a narrow terminal, shell completion, and a ``--help`` that loads none of
the heavy modules (numpy, the Kubernetes client, the model, the analysis): what makes it fast.
There is no timing assertion here; bench/cli_startup.py measures the time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path

import pytest
import typer

from canary.cli import app
from canary.commands import COMMANDS, load

from .conftest import REPO

BIN = Path(sys.executable).parent
CANARY = BIN / "canary"
KUBECTL_CANARY = BIN / "kubectl-canary"
HEAVY = (
    "numpy",
    "kubernetes",
    "httpx",
    "aiohttp",
    "analysis",
    "jsonschema",
    "prometheus_client",
    "canary.model",
    "canary.adapters",
    "canary.controller",
    "canary.simulation",
)


def run(
    *args: str | Path, env: Mapping[str, str] | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    for script in (CANARY, KUBECTL_CANARY):
        assert script.exists(), f"{script} is missing: reinstall with pip install -e ."
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(a) for a in args],
        cwd=REPO,
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def imported_by(*args: str) -> set[str]:
    """The modules in ``sys.modules`` after the ``canary`` script ran with ``args``, in a fresh
    interpreter (``python -X importtime`` would miss those loaded by importlib.import_module)."""
    code = (
        "import json, runpy, sys\n"
        "sys.argv = sys.argv[1:]\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('MODULES ' + json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    result = run(sys.executable, "-c", code, CANARY, *args)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("MODULES "), result.stderr
    loaded: list[str] = json.loads(last.removeprefix("MODULES "))
    return set(loaded)


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY))


# --------------------------------------------------------------------------- version


def test_version_prints_the_distribution_version() -> None:
    result = run(CANARY, "--version")
    assert (result.returncode, result.stdout) == (0, f"canary-engine {version('canary-engine')}\n")


def test_the_kubectl_plugin_prints_the_same_version() -> None:
    assert run(KUBECTL_CANARY, "--version").stdout == run(CANARY, "--version").stdout


# --------------------------------------------------------------------------- kubectl plugin


def test_usage_names_canary_when_called_as_canary() -> None:
    result = run(CANARY, "get", "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: canary get [OPTIONS] [NAME]")


def test_usage_names_kubectl_canary_when_called_as_the_plugin() -> None:
    top = run(KUBECTL_CANARY, "--help")
    command = run(KUBECTL_CANARY, "get", "--help")
    assert top.stdout.startswith("Usage: kubectl canary [OPTIONS] COMMAND [ARGS]...")
    assert command.stdout.startswith("Usage: kubectl canary get [OPTIONS] [NAME]")


def test_a_usage_error_of_the_plugin_names_kubectl_canary() -> None:
    result = run(KUBECTL_CANARY, "get", "--no-such-option")
    assert result.returncode == 2
    assert "Usage: kubectl canary get" in result.stderr
    assert "Try 'kubectl canary get --help' for help." in result.stderr


def test_the_plugin_offers_no_shell_completion_of_its_own() -> None:
    # `--install-completion` would write a script for a command named "kubectl canary".
    assert "completion" not in run(KUBECTL_CANARY, "--help").stdout


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_finds_the_plugin_and_runs_it() -> None:
    result = run("kubectl", "canary", "lint", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: kubectl canary lint [OPTIONS]")


def test_kubectl_canary_get_runs_the_get_command(tmp_path: Path) -> None:
    missing = tmp_path / "no-kubeconfig"
    result = run(KUBECTL_CANARY, "get", "--kubeconfig", str(missing))
    assert result.returncode == 2
    assert f"{missing}: no kubeconfig" in result.stderr
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- help


def option_names() -> dict[str, list[str]]:
    """Every option name of every command (loaded in this process to read them)."""
    group = typer.main.get_command(app)
    found: dict[str, list[str]] = {}
    with typer.Context(group) as ctx:
        for name in ["", *group.list_commands(ctx)]:  # type: ignore[attr-defined]
            command = group.get_command(ctx, name) if name else group  # type: ignore[attr-defined]
            found[name] = [
                o
                for p in command.get_params(ctx)
                for o in (*p.opts, *p.secondary_opts)
                if o.startswith("-")
            ]
    return found


def test_every_command_is_listed_and_has_options() -> None:
    names = option_names()
    assert set(COMMANDS) | {"run", "simulate", "sandbox", "demo"} <= set(names)
    assert all("--help" in options for options in names.values())


@pytest.mark.parametrize("columns", ["60", "80"])
def test_help_never_cuts_an_option_name_short(columns: str) -> None:
    for command, options in option_names().items():
        text = run(CANARY, *([command] if command else []), "--help", env={"COLUMNS": columns})
        assert text.returncode == 0, text.stderr
        for option in options:
            spelled = re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text.stdout)
            assert spelled, f"`canary {command} --help` at {columns} columns: {option} is cut"


def test_top_level_help_lists_every_command_with_its_whole_summary() -> None:
    text = run(CANARY, "--help", env={"COLUMNS": "80"}).stdout
    commands = "".join(text.partition("Commands:")[2].split())  # wrapped lines, joined again
    for name, (_, summary) in COMMANDS.items():
        assert name + "".join(summary.split()) in commands, name


def test_each_listed_summary_is_the_first_line_of_its_commands_docstring() -> None:
    for name, (_, summary) in COMMANDS.items():
        doc = load(name).__doc__ or ""
        assert doc.strip().splitlines()[0] == summary, name


def test_help_imports_no_command_module_and_nothing_heavy() -> None:
    modules = imported_by("--help")
    assert heavy(modules) == []
    assert sorted(m for m in modules if m.startswith("canary.commands.")) == [
        "canary.commands._common"
    ]


def test_a_commands_help_imports_its_module_but_nothing_heavy() -> None:
    modules = imported_by("lint", "--help")
    assert "canary.commands.lint" in modules
    assert heavy(modules) == []


# --------------------------------------------------------------------------- completion


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_commands_and_options_with_the_shown_script() -> None:
    script = (
        "source <(canary --show-completion)\n"
        "COMP_WORDS=(canary li); COMP_CWORD=1; _canary_completion canary\n"
        'echo "${COMPREPLY[*]}"\n'
        "COMP_WORDS=(canary status --ev); COMP_CWORD=2; _canary_completion canary\n"
        'echo "${COMPREPLY[*]}"\n'
    )
    result = run("bash", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["lint", "--events"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_install_completion_writes_a_script_and_sources_it_from_bashrc(tmp_path: Path) -> None:
    result = run("bash", "-c", "canary --install-completion", env={"HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    installed = tmp_path / ".bash_completions" / "canary.sh"
    assert "_canary_completion" in installed.read_text()
    assert str(installed) in (tmp_path / ".bashrc").read_text()
