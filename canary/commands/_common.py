"""Small pieces every operator command shares: consoles, errors, output formats, input files.

They are the conventions of the whole ``canary`` command (human output first, ``-o json|yaml``
for scripts, exit code 2 for bad usage or unreadable input, errors naming the file):
``canary/cli.py`` prints through the same consoles and :func:`fail`, importing them from here;
nothing here imports ``canary.cli`` (it registers these commands, so that would be a cycle).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)  # messages name files: never wrap them

# Exit codes (docs/cli.md): 0 success, 1 the command ran but the outcome is a failure,
# 2 bad usage or unreadable input.
EXIT_FAILURE = 1
EXIT_USAGE = 2

STDIN = "-"
YAML_SUFFIXES = (".yaml", ".yml")


class Output(StrEnum):
    TEXT = "text"
    JSON = "json"
    YAML = "yaml"


class DataOutput(StrEnum):
    """Formats of commands whose output is manifests (there is no separate text form)."""

    YAML = "yaml"
    JSON = "json"


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: message`` on stderr; raise the returned Exit. The message loses its
    control characters: it may quote what a cluster holds (a status message, a name)."""
    from canary.commands.stored import printable  # here: `canary --help` loads this module

    err.print(
        f"[red]error:[/red] {printable(message)}", highlight=False, markup=True, soft_wrap=True
    )
    return typer.Exit(code)


def warn(message: str) -> None:
    from canary.commands.stored import printable

    err.print(f"[yellow]warning:[/yellow] {printable(message)}", highlight=False, soft_wrap=True)


def escape(text: str) -> str:
    """Text that rich prints verbatim: user data may contain ``[brackets]`` (markup), and
    control characters (a terminal escape sequence in a status message), which are dropped."""
    from rich.markup import escape as _escape

    from canary.commands.stored import printable

    return _escape(printable(text))


def json_text(data: Any, *, compact: bool = False) -> str:
    """``data`` as strict JSON, indented (``compact``: on one line, a watch's stream). A
    number JSON cannot hold (NaN, an infinity, ``10**400`` in a hand-edited status) is
    ``null``: ``json.dumps`` alone would print ``NaN``, which parsers such as jq refuse."""
    from canary.commands.stored import json_ready

    if compact:
        return json.dumps(json_ready(data), separators=(",", ":"), allow_nan=False)
    return json.dumps(json_ready(data), indent=2, sort_keys=False, allow_nan=False)


def dump(data: Any, fmt: Output | DataOutput) -> str:
    """``data`` as JSON (indented, strict: see :func:`json_text`) or YAML (block style, keys
    in the order given)."""
    if fmt == "json":
        return json_text(data) + "\n"
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def write_stdout(text: str) -> None:
    """Raw text on stdout (no rich markup, no wrapping): what scripts read."""
    sys.stdout.write(text)
    sys.stdout.flush()


# --------------------------------------------------------------------------- input files


@dataclass(frozen=True, slots=True)
class InputFile:
    """One YAML input: ``path`` is None for stdin. ``walked``: found inside a directory."""

    label: str
    path: Path | None
    walked: bool = False

    def read(self) -> str:
        """The text; raises the Exit of :func:`fail` (code 2) when it cannot be read."""
        if self.path is None:
            text = sys.stdin.read()
            try:
                text.encode("utf-8")  # undecodable bytes arrive as lone surrogates
            except UnicodeEncodeError:
                raise fail(f"{self.label}: cannot read: not UTF-8 text") from None
            return text
        try:
            return self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise fail(f"{self.label}: cannot read: not UTF-8 text ({exc.reason})") from None
        except OSError as exc:
            raise fail(f"{self.label}: cannot read: {exc.strerror or exc}") from None


def expand_inputs(arguments: Iterable[str]) -> list[InputFile]:
    """Files named on the command line; directories are walked for ``*.yaml`` and ``*.yml``.

    A missing path is bad usage (exit 2). Hidden directories (``.git``) are not entered.
    """
    found: list[InputFile] = []
    seen: set[Path] = set()
    for argument in arguments:
        if argument == STDIN:
            found.append(InputFile("<stdin>", None))
            continue
        path = Path(argument)
        if path.is_dir():
            for child in _walk(path):
                if child.resolve() not in seen:
                    seen.add(child.resolve())
                    found.append(InputFile(str(child), child, walked=True))
        elif path.exists():
            if path.resolve() not in seen:
                seen.add(path.resolve())
                found.append(InputFile(str(path), path))
        else:
            raise fail(f"{argument}: no such file or directory")
    return found


def _walk(directory: Path) -> Iterator[Path]:
    for child in sorted(directory.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            yield from _walk(child)
        elif child.suffix in YAML_SUFFIXES and child.is_file():
            yield child


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else (many or word + 's')}"
