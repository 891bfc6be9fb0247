"""The layers of analysis hold at run time, where the import contracts cannot look.

The contracts (pyproject.toml) see import statements; they cannot see that
importing ``analysis.spec`` runs ``analysis/__init__.py`` too, nor what a lazy
name loads.  A fresh interpreter can: the core and the model must come up
without numpy or any I/O library, and the one ``Outcome`` must be shared.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

import analysis
import analysis.spec
from canary.core import Outcome as CoreOutcome

HEAVY = ("numpy", "httpx", "aiohttp", "asyncio", "yaml", "jsonschema")


def heavy_modules_loaded(imports: str, *, then: str = "") -> list[str]:
    """Which of ``HEAVY`` a fresh interpreter holds after ``import <imports>`` and ``then``."""
    code = (
        f"import sys\nimport {imports}\n{then}\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded: list[str] = ast.literal_eval(out.stdout.strip())
    return loaded


@pytest.mark.parametrize("module", ["canary.core", "canary.model", "analysis.spec", "analysis"])
def test_importing_a_pure_layer_loads_neither_numpy_nor_an_io_library(module: str) -> None:
    assert heavy_modules_loaded(module) == []


def test_the_core_and_the_model_together_stay_free_of_numpy() -> None:
    assert heavy_modules_loaded("canary.core, canary.model") == []


def test_the_compare_judge_loads_numpy_on_first_use() -> None:
    assert heavy_modules_loaded("analysis", then="analysis.decide") == ["numpy"]


def test_there_is_one_outcome_enum_for_verdicts_and_the_core() -> None:
    assert CoreOutcome is analysis.Outcome is analysis.spec.Outcome


def test_the_pure_facade_is_a_part_of_the_full_facade() -> None:
    assert set(analysis.spec.__all__) <= set(analysis.__all__)
    for name in analysis.spec.__all__:
        assert getattr(analysis.spec, name) is getattr(analysis, name), name
