"""The codebase's own rules, enforced by the test suite rather than by review.

The import contracts (pyproject.toml, [tool.importlinter]) keep `canary.core`
pure and `analysis` independent of `canary`; ruff and mypy --strict keep the code
consistent. They run here so `./dev test` and CI fail when a rule is broken.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_import_contracts_hold() -> None:
    result = run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_finds_nothing() -> None:
    result = run(str(BIN / "ruff"), "check", "canary", "analysis", "kubesandbox", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_passes() -> None:
    result = run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_error_of_canary_hangs_under_one_root() -> None:
    """canary/errors.py: one root, so a boundary can catch "ours" and ask `transient`."""
    import importlib
    import inspect
    import pkgutil

    import canary
    from canary.errors import CanaryError

    strays = []
    for info in pkgutil.walk_packages(canary.__path__, "canary."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == info.name
                and not name.startswith("_")
                and not issubclass(obj, CanaryError)
            ):
                strays.append(f"{info.name}.{name}")
    assert strays == []
