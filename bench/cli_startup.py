"""How long the ``canary`` command takes to start: ``canary --help`` must answer within 0.3 s.

Each case runs the installed console script (``.venv/bin/canary``, ``kubectl-canary``) as a
process, ``--runs`` times after one warm-up run, and reports the wall time (min, median, max),
the number of modules the process loaded, and which heavy ones it loaded (numpy, the Kubernetes
client, httpx, aiohttp, the analysis, jsonschema, the model: none may load for ``--help``).
Two floors put the numbers in context: the interpreter alone, and ``import typer``.

    .venv/bin/python -m bench.cli_startup              # the table (docs/performance.md)
    .venv/bin/python -m bench.cli_startup --runs 50
    .venv/bin/python -m bench.cli_startup --imports    # also where `canary --help` spends it

The wall time includes starting the interpreter; on a loaded machine it varies from run to
run, so the minimum and the median are the figures to compare.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
TARGET_SECONDS = 0.3
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
)
_MODULES = (
    "import json, runpy, sys\n"
    "sys.argv = sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
    "except SystemExit:\n"
    "    pass\n"
    "print('MODULES ' + json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
)


@dataclass(frozen=True)
class Case:
    label: str
    argv: tuple[str, ...]
    script: str | None = None  # the console script, to list the modules it loads


CASES = (
    Case("python -c pass (the interpreter alone)", (sys.executable, "-c", "pass")),
    Case("python -c 'import typer'", (sys.executable, "-c", "import typer")),
    Case("canary --help", (str(BIN / "canary"), "--help"), "canary"),
    Case("canary --version", (str(BIN / "canary"), "--version"), "canary"),
    Case("kubectl-canary --help", (str(BIN / "kubectl-canary"), "--help"), "kubectl-canary"),
    Case("canary lint --help", (str(BIN / "canary"), "lint", "--help"), "canary"),
    Case("canary status --help", (str(BIN / "canary"), "status", "--help"), "canary"),
)


@dataclass(frozen=True)
class Result:
    case: Case
    seconds: list[float]
    modules: list[str]

    @property
    def heavy(self) -> list[str]:
        return sorted({h for h in HEAVY for m in self.modules if m == h or m.startswith(h + ".")})


def wall_times(argv: tuple[str, ...], runs: int) -> list[float]:
    subprocess.run(argv, capture_output=True, check=False)  # warm the page cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return times


def loaded_modules(case: Case) -> list[str]:
    if case.script is None:
        return []
    argv = (sys.executable, "-c", _MODULES, str(BIN / case.script), *case.argv[1:])
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    modules: list[str] = (
        json.loads(last.removeprefix("MODULES ")) if last.startswith("MODULES ") else []
    )
    return modules


def measure(runs: int) -> list[Result]:
    return [Result(case, wall_times(case.argv, runs), loaded_modules(case)) for case in CASES]


def table(results: list[Result], runs: int) -> str:
    lines = [
        f"| command ({runs} runs) | min | median | max | modules loaded | heavy modules loaded |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for result in results:
        times = result.seconds
        heavy = ", ".join(result.heavy) or ("none" if result.case.script else "-")
        count = str(len(result.modules)) if result.case.script else "-"
        lines.append(
            f"| `{result.case.label}` | {min(times):.3f} s | {statistics.median(times):.3f} s "
            f"| {max(times):.3f} s | {count} | {heavy} |"
        )
    return "\n".join(lines)


def slowest_imports(argv: tuple[str, ...], count: int = 12) -> str:
    """The imports of one run at the top two levels, by cumulative time (``-X importtime``):
    ``canary.cli`` and what it imports directly."""
    result = subprocess.run(
        (sys.executable, "-X", "importtime", *argv), capture_output=True, text=True, check=False
    )
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _, cumulative, name = line.split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        if cumulative.strip().isdigit() and depth <= 1:
            rows.append((int(cumulative), "  " * depth + name.strip()))
    rows.sort(reverse=True)
    return "\n".join(f"  {us / 1000:7.1f} ms  {name}" for us, name in rows[:count])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per case (after a warm-up)")
    parser.add_argument("--imports", action="store_true", help="where `canary --help` spends it")
    options = parser.parse_args()
    results = measure(options.runs)
    print(table(results, options.runs))
    help_run = next(r for r in results if r.case.label == "canary --help")
    median = statistics.median(help_run.seconds)
    verdict = "met" if median <= TARGET_SECONDS and not help_run.heavy else "NOT met"
    print(f"\ncanary --help: median {median:.3f} s, target <= {TARGET_SECONDS} s: {verdict}")
    if options.imports:
        print("\nslowest top-level imports of `canary --help` (python -X importtime, one run):")
        print(slowest_imports((str(BIN / "canary"), "--help")))


if __name__ == "__main__":
    main()
