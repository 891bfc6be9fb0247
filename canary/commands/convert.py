"""``canary convert``: move Flagger manifests over to canary-engine.

Why: canary-engine reads Flagger's field names, so a migration is a change of ``apiVersion``
(``flagger.app/v1beta1`` → ``canary.gitops.dev/v1beta1``, also inside ``templateRef``) — but
doing that by hand over a repository of manifests is error-prone, and a ``sed`` would also hit
comments and unrelated objects. This command rewrites exactly those values with
:func:`canary.model.convert.convert_text`, keeping comments, key order and quoting, either to
stdout or in place, and tells on stderr what it changed. The result is meant to pass
``canary lint``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from canary.commands._common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    DataOutput,
    InputFile,
    dump,
    err,
    escape,
    expand_inputs,
    fail,
    plural,
    warn,
    write_stdout,
)

if TYPE_CHECKING:
    from canary.model.convert import Change

__all__ = ["convert_command"]


def convert_command(
    files: Annotated[
        list[str],
        typer.Argument(
            metavar="FILE",
            help="Flagger manifests: files or directories (walked for *.yaml, *.yml); - reads stdin.",
        ),
    ],
    in_place: Annotated[
        bool,
        typer.Option("--in-place", "-i", help="Rewrite the files instead of printing the result."),
    ] = False,
    output: Annotated[
        DataOutput,
        typer.Option("--output", "-o", help="yaml keeps comments and layout; json for scripts."),
    ] = DataOutput.YAML,
    provider: Annotated[
        str,
        typer.Option(
            "--provider",
            help="Written into Flagger Canaries without spec.provider: your Flagger install's "
            "-mesh-provider ('' writes nothing, and canary run's --provider applies).",
        ),
    ] = "istio",
) -> None:
    """Convert Flagger flagger.app/v1beta1 manifests to canary.gitops.dev/v1beta1.

    apiVersion values change (of Canary, MetricTemplate and AlertProvider objects and of the
    metrics' templateRef), and a Canary without spec.provider gets the provider it ran on
    under Flagger (--provider: istio, Flagger's default); comments, order and quoting are
    kept. What changed is reported on stderr.
    """
    from canary.model.schema import parse_documents

    inputs = _inputs(files, in_place, output)
    code = 0
    texts: list[str] = []
    objects: list[dict[str, Any]] = []
    converted_files = changed_values = 0
    for source in inputs:
        converted = _convert(source, in_place, provider.strip() or None)
        if isinstance(converted, int):
            code = max(code, converted)
            continue
        new_text, changes = converted
        for change in changes:
            err.print(
                f"{escape(source.label)}: {escape(str(change))}", highlight=False, soft_wrap=True
            )
        if changes:
            converted_files += 1
            changed_values += len(changes)
        elif in_place or len(inputs) > 1:
            err.print(f"{escape(source.label)}: nothing to convert", style="dim", highlight=False)

        if in_place:
            if changes and source.path is not None:
                _replace(source.path, new_text)
        elif output is DataOutput.JSON:
            objects.extend(doc for _, doc in parse_documents(new_text, source.label))
        else:
            texts.append(new_text)

    if not in_place:
        _write(output, texts, objects)
    verb = "rewrote" if in_place else "converted"
    err.print(
        f"{verb} {plural(changed_values, 'value')} in {plural(converted_files, 'file')}"
        + (f" of {len(inputs)}" if len(inputs) > 1 else ""),
        highlight=False,
    )
    if code:
        raise typer.Exit(code)


def _inputs(files: list[str], in_place: bool, output: DataOutput) -> list[InputFile]:
    """The files to convert, once the options are known to go together."""
    if in_place and output is DataOutput.JSON:
        raise fail(
            "--in-place rewrites the YAML files as they are: it cannot be combined with -o json"
        )
    inputs = expand_inputs(files)
    if in_place and any(source.path is None for source in inputs):
        raise fail("--in-place needs files: stdin (-) cannot be rewritten")
    if not inputs:
        raise fail("no YAML files found in " + ", ".join(files))
    return inputs


def _convert(
    source: InputFile, in_place: bool, provider: str | None
) -> tuple[str, list[Change]] | int:
    """The converted text of one file and what changed, or the exit code of its error.

    A file whose YAML cannot be rewritten in place keeping its layout is still converted when
    printing (re-serialised, losing its comments), but never rewritten: a file is changed
    only the way ``convert_text`` changes it.
    """
    from canary.model.convert import ConversionError, convert_document, convert_text
    from canary.model.schema import DocumentError, parse_documents

    text = source.read()
    try:
        converted = convert_text(text, source.label, provider=provider)
        _warn_leftovers(source.label, text)
        return converted
    except DocumentError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return EXIT_USAGE
    except ConversionError as exc:
        if in_place:
            err.print(
                f"[red]error:[/red] {escape(str(exc))}; the file is left unchanged "
                f"(`canary convert {escape(source.label)} > new.yaml` converts it without "
                "keeping comments)",
                highlight=False,
                soft_wrap=True,
            )
            return EXIT_FAILURE
        warn(f"{exc}; printing it re-serialised, without its comments")
    _warn_leftovers(source.label, text)
    documents = [
        convert_document(doc, provider=provider) for _, doc in parse_documents(text, source.label)
    ]
    new_text = "---\n".join(dump(doc, DataOutput.YAML) for doc, _ in documents)
    return new_text, [change for _, doc_changes in documents for change in doc_changes]


def _warn_leftovers(label: str, text: str) -> None:
    """A warning for each object that names Flagger's API but is not converted (its text is
    left as it was): ``canary lint`` rejects it, this says which field to look at."""
    from canary.model.convert import leftovers
    from canary.model.schema import parse_documents

    for number, doc in parse_documents(text, label):
        for leftover in leftovers(doc):
            warn(escape(f"{label}: document {number}: {leftover}"))


def _write(output: DataOutput, texts: list[str], objects: list[dict[str, Any]]) -> None:
    """Print the converted files: one YAML stream, or one JSON object (a List for several)."""
    if output is not DataOutput.JSON:
        write_stdout(_concatenate(texts))
    elif objects:
        single = len(objects) == 1
        payload = objects[0] if single else {"apiVersion": "v1", "kind": "List", "items": objects}
        write_stdout(dump(payload, DataOutput.JSON))


def _concatenate(texts: list[str]) -> str:
    """Several files as one YAML stream."""
    parts: list[str] = []
    for text in texts:
        if not text.strip():
            continue
        if not text.endswith("\n"):
            text += "\n"
        if parts and not text.lstrip().startswith("---"):
            text = "---\n" + text
        parts.append(text)
    return "".join(parts)


def _replace(path: Path, text: str) -> None:
    """Write atomically (a crash leaves the old or the new file), keeping the file's mode."""
    mode = path.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
