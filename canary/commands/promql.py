"""PromQL syntax checks with Prometheus' own ``promtool``, for ``canary lint``.

Why: a MetricTemplate with a typo in its query is accepted by the API server and by our schema,
and fails only when a canary reaches its first analysis step — in production, halfway through a
release. Prometheus' parser is the only authority on PromQL, so ``canary lint`` asks it rather
than carrying a parser of its own: every expression becomes a recording rule in one temporary
rules file, ``promtool check rules`` parses them all in one process, and its complaints are
mapped back to the expressions by the rule names. When promtool is not installed the check is
skipped (and ``canary lint`` says so once).

Templates are rendered with :func:`analysis.render_query` before the check, because ``{{ ... }}``
is not PromQL; the caller chooses the values (a canary's own names, or placeholders).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from canary.errors import CanaryError

__all__ = ["PromtoolError", "check_expressions", "find_promtool", "promtool_version"]

_RULE = "canary_lint:expr_{}"
_COMPLAINT = re.compile(r'"canary_lint:expr_(\d+)":\s*(.*)$')
_PREFIXES = ("could not parse expression: ",)
TIMEOUT_SECONDS = 60.0


class PromtoolError(CanaryError, RuntimeError):
    """promtool could not be run, or answered in a way we cannot map to the expressions."""


def find_promtool() -> str | None:
    """The path of ``promtool`` on PATH, or None."""
    return shutil.which("promtool")


def promtool_version(promtool: str) -> str:
    """``2.42.0`` (or "" when promtool does not say)."""
    try:
        result = subprocess.run(
            [promtool, "--version"], capture_output=True, text=True, timeout=TIMEOUT_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    match = re.search(r"version (\S+)", result.stdout + result.stderr)
    return match.group(1) if match else ""


def check_expressions(promtool: str, expressions: Sequence[str]) -> list[str | None]:
    """For each expression: None when promtool parses it, else promtool's complaint.

    One promtool run for all of them; if the answer cannot be attributed to expressions (an
    unknown output format), each expression is checked on its own.
    """
    if not expressions:
        return []
    code, output = _run(promtool, expressions)
    if code == 0:
        return [None] * len(expressions)
    found: dict[int, str] = {}
    for line in output.splitlines():
        match = _COMPLAINT.search(line)
        if match and int(match.group(1)) < len(expressions):
            index = int(match.group(1))
            message = _clean(match.group(2))
            found[index] = f"{found[index]}; {message}" if index in found else message
    if found:
        return [found.get(i) for i in range(len(expressions))]
    if len(expressions) == 1:
        return [_clean(_last_lines(output)) or f"promtool failed with exit code {code}"]
    return [check_expressions(promtool, [expression])[0] for expression in expressions]


def _run(promtool: str, expressions: Sequence[str]) -> tuple[int, str]:
    rules = {
        "groups": [
            {
                "name": "canary-lint",
                "rules": [
                    {"record": _RULE.format(i), "expr": expression}
                    for i, expression in enumerate(expressions)
                ],
            }
        ]
    }
    with tempfile.TemporaryDirectory(prefix="canary-lint-") as directory:
        path = Path(directory) / "queries.rules.yaml"
        path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
        try:
            result = subprocess.run(
                [promtool, "check", "rules", str(path)],
                capture_output=True,
                text=True,
                timeout=TIMEOUT_SECONDS,
            )
        except OSError as exc:
            raise PromtoolError(f"cannot run {promtool}: {exc.strerror or exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise PromtoolError(f"{promtool} did not answer within {TIMEOUT_SECONDS:g} s") from exc
        output = (result.stdout + "\n" + result.stderr).replace(str(path), "<query>")
    return result.returncode, output


def _clean(message: str) -> str:
    message = message.strip()
    for prefix in _PREFIXES:
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message


def _last_lines(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    useful = [
        line for line in lines if line not in ("FAILED:", "SUCCESS") and "Checking" not in line
    ]
    return "; ".join(useful[-3:])
