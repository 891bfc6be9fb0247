"""canary-engine: progressive delivery for Kubernetes (Flagger's Canary, judged statistically,
rolled back in Git).

The front door for using the engine as a library: the Canary model, the pure state
machine, the simulator, the settings and the root error, under one name::

    import canary

    doc = yaml.safe_load(open("canary.yaml"))
    spec = canary.parse_canary(doc)                      # typed, validated, frozen
    rows = canary.simulate(doc, canary.parse_scenario(scenario))   # a dry run
    decision = canary.step(spec, canary.CanaryStatus(), observations)

Every name is imported on first use (PEP 562), so ``import canary`` stays cheap: the
CLI, the operator and tools that only need one submodule do not pay for numpy,
aiohttp or the Kubernetes client through this file. ``canary.testing`` (fakes of every
port, for tests) is a submodule, reachable as an attribute too.
"""

from __future__ import annotations

# Not `typing.TYPE_CHECKING`: importing typing alone would double the cost of this file.
# Type checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from canary import testing as testing
    from canary.core import Decision, Observations, step
    from canary.errors import CanaryError
    from canary.model import Canary, CanaryStatus, Phase, SpecError, parse_canary
    from canary.settings import Settings
    from canary.simulation import parse_scenario, simulate

    __version__: str

__all__ = [
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

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
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

# submodules reachable as attributes without importing them first
_SUBMODULES = frozenset({"testing"})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("canary-engine")
    except PackageNotFoundError:  # running from a bare checkout
        return "0+unknown"


# Hidden from type checkers: they see the names through the imports above, and a visible
# module __getattr__ would make them accept any misspelt name as well.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        """Import a public name on first use and keep it, so the second access is free."""
        import importlib

        if name == "__version__":
            value: Any = _version()
        elif name in _EXPORTS:
            value = getattr(importlib.import_module(_EXPORTS[name]), name)
        elif name in _SUBMODULES:
            return importlib.import_module(f"{__name__}.{name}")
        else:
            raise AttributeError(
                f"module {__name__!r} has no attribute {name!r}; "
                f"its public names are: {', '.join(__all__)}"
            )
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
