"""``import canary``: a small public surface, every name importable, nothing heavy on import.

The package's ``__init__`` resolves its names lazily (PEP 562), so the checks that
matter are that each name really resolves to the object its defining module exports,
and that a bare ``import canary`` — measured in a fresh interpreter, where nothing was
imported before — loads no submodule and no heavy dependency.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from importlib.metadata import version

import pytest

import canary

EXPECTED = [
    "Canary",
    "CanaryError",
    "CanaryStatus",
    "Decision",
    "Observations",
    "Phase",
    "Settings",
    "SpecError",
    "__version__",
    "parse_canary",
    "parse_scenario",
    "simulate",
    "step",
]

DEFINED_IN = {
    "Canary": "canary.model",
    "CanaryError": "canary.errors",
    "CanaryStatus": "canary.model",
    "Decision": "canary.core",
    "Observations": "canary.core",
    "Phase": "canary.model",
    "Settings": "canary.settings",
    "SpecError": "canary.model",
    "parse_canary": "canary.model",
    "parse_scenario": "canary.simulation",
    "simulate": "canary.simulation",
    "step": "canary.core",
}

HEAVY = ("numpy", "aiohttp", "kubernetes", "httpx", "yaml", "prometheus_client", "jsonschema")


def modules_after(code: str) -> list[str]:
    """The modules loaded by ``code`` in a fresh interpreter."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_the_public_names_are_exactly_these_in_sorted_order() -> None:
    assert canary.__all__ == EXPECTED
    assert sorted(EXPECTED) == EXPECTED


def test_every_public_name_is_the_object_its_module_defines() -> None:
    for name, module in DEFINED_IN.items():
        assert getattr(canary, name) is getattr(importlib.import_module(module), name), name
    assert canary.__version__ == version("canary-engine")
    assert set(DEFINED_IN) | {"__version__"} == set(canary.__all__)


def test_star_import_gives_every_public_name() -> None:
    namespace: dict[str, object] = {}
    exec("from canary import *", namespace)
    assert set(EXPECTED) <= set(namespace)


def test_dir_lists_the_public_names_and_the_testing_submodule() -> None:
    listed = dir(canary)
    assert set(EXPECTED) <= set(listed)
    assert "testing" in listed
    assert listed == sorted(listed)


def test_an_unknown_name_is_an_attribute_error_that_lists_the_public_names() -> None:
    with pytest.raises(AttributeError, match=r"module 'canary' has no attribute 'Canery'") as err:
        _ = canary.Canery  # type: ignore[attr-defined]
    assert "parse_canary" in str(err.value)
    assert not hasattr(canary, "nothing_here")


def test_testing_is_a_submodule_reachable_as_an_attribute_but_not_exported() -> None:
    assert canary.testing.FakeKube is importlib.import_module("canary.testing").FakeKube
    assert "testing" not in canary.__all__


def test_importing_canary_loads_no_submodule_and_no_heavy_dependency() -> None:
    loaded = modules_after("import canary")
    assert [m for m in loaded if m == "canary" or m.startswith("canary.")] == ["canary"]
    assert [m for m in loaded if m.split(".")[0] in HEAVY] == []


def test_a_name_imports_only_what_defines_it() -> None:
    loaded = modules_after("import canary\ncanary.Phase\ncanary.Settings\ncanary.CanaryError")
    assert "canary.model" in loaded and "canary.settings" in loaded
    assert not [m for m in loaded if m.startswith(("canary.controller", "canary.adapters"))]
    assert "canary.simulation" not in loaded
    assert not [m for m in loaded if m.split(".")[0] in ("aiohttp", "kubernetes")]
