"""The package's public surface: the façade exports, the independence from ``canary``."""

from __future__ import annotations

import subprocess
import sys

import analysis


def test_every_name_in_all_is_exported() -> None:
    missing = [name for name in analysis.__all__ if not hasattr(analysis, name)]
    assert missing == []
    assert len(set(analysis.__all__)) == len(analysis.__all__)


def test_public_objects_come_from_private_modules_only() -> None:
    for name in analysis.__all__:
        module = getattr(getattr(analysis, name), "__module__", "analysis._x")
        assert module.startswith(("analysis._", "builtins", "typing")), (name, module)


def test_outcome_values_are_the_status_api() -> None:
    assert [o.value for o in analysis.Outcome] == [
        "Pass",
        "Fail",
        "Inconclusive",
        "NoData",
        "Error",
    ]


def test_importing_analysis_does_not_import_canary() -> None:
    code = "import sys, analysis; print(sorted(m for m in sys.modules if m == 'canary' or m.startswith('canary.')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_every_error_is_an_analysis_error() -> None:
    errors = [getattr(analysis, n) for n in analysis.__all__ if n.endswith("Error")]
    assert errors and all(issubclass(e, analysis.AnalysisError) for e in errors)


def test_importing_analysis_stays_free_of_io_libraries_until_used() -> None:
    code = (
        "import sys, analysis\n"
        "before = sorted(m for m in ('httpx', 'asyncio') if m in sys.modules)\n"
        "analysis.PrometheusProvider\n"
        "print(before, 'httpx' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[] True"


def test_every_lazy_name_is_public_and_typed_for_checkers() -> None:
    """The I/O names load on first use; the TYPE_CHECKING block must list each of them."""
    import ast
    from pathlib import Path

    lazy = set(analysis._LAZY)  # type: ignore[attr-defined]
    assert lazy <= set(analysis.__all__)
    tree = ast.parse(Path(analysis.__file__).read_text())
    guarded = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for sub in node.body
        if isinstance(sub, ast.ImportFrom)
        for alias in sub.names
    }
    assert guarded == lazy
