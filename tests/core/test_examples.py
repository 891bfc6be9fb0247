"""The shipped example Canaries, driven tick by tick: Flagger's tick counts for the same spec.

For every Canary in examples/ (Flagger manifests converted by changing the apiVersion) the
expected ticks are computed from the spec the way reference/flagger.md 2.3 counts them
(tick 1 detects the revision and scales up; tick 2 runs pre-rollout and the first step;
every further passing tick advances once; Promoting, the traffic shift back, Finalising,
Succeeded), and a failing run rolls back on the tick after the threshold-th failed check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.core import Outcome, effective_analysis
from canary.model import Canary, Phase, Strategy, parse_canary
from canary.model.convert import convert_document
from tests.core.harness import Script, fail_from, finished, run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _documents() -> list[Any]:
    params: list[Any] = []
    for path in sorted(EXAMPLES.glob("**/*.yaml")):
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as error:
            params.append(pytest.param(path, None, str(error), id=str(path.relative_to(EXAMPLES))))
            continue
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") == "Canary":
                name = f"{path.relative_to(EXAMPLES)}:{(doc.get('metadata') or {}).get('name')}"
                params.append(pytest.param(path, doc, "", id=name))
    return params


DOCUMENTS = _documents()


def load(doc: dict[str, Any]) -> Canary:
    if str(doc.get("apiVersion", "")).startswith("flagger.app/"):
        doc, _ = convert_document(doc)
    return parse_canary(doc)


def expected_ticks(canary: Canary) -> tuple[int, int, int]:
    """(Promoting, Finalising, Succeeded) ticks for a run where every check passes."""
    analysis = effective_analysis(canary)
    kubernetes = canary.spec.provider == "kubernetes"
    strategy = analysis.strategy
    if strategy is Strategy.CANARY:
        weight, advances = 0, 0
        while weight < analysis.max_weight:
            weight = min(100, weight + analysis.next_step_weight(weight))
            advances += 1
        promoting = advances + 2
        canary_weight = weight
    elif strategy is Strategy.BLUE_GREEN:
        promoting = analysis.iterations + 3
        canary_weight = 0 if kubernetes else 100
    else:
        promoting = analysis.iterations + 2
        canary_weight = 100
    shift = 1
    step = analysis.step_weight_promotion
    if step > 0 and not kubernetes:
        primary, shift = 100 - canary_weight, 0
        while primary < 100:
            primary = min(100, primary + step)
            shift += 1
        shift = max(shift, 1)
    finalising = promoting + shift
    return promoting, finalising, finalising + 1


def test_examples_hold_canaries() -> None:
    assert len(DOCUMENTS) >= 3


@pytest.mark.parametrize(("path", "doc", "error"), DOCUMENTS)
def test_example_promotes_after_the_ticks_flagger_needs(
    path: Path, doc: dict[str, Any] | None, error: str
) -> None:
    assert doc is not None, f"{path}: {error}"
    canary = load(doc)
    if canary.spec.skips_analysis:
        result = run(canary, 6, until=finished)
        assert result.phases() == [Phase.PROGRESSING, Phase.SUCCEEDED]
        return
    promoting, finalising, succeeded = expected_ticks(canary)
    result = run(canary, succeeded + 3, until=finished)
    assert result.first(Phase.PROMOTING) == promoting, result.phases()
    assert result.first(Phase.FINALISING) == finalising, result.phases()
    assert result.first(Phase.SUCCEEDED) == succeeded, result.phases()
    assert result.last.tick == succeeded


@pytest.mark.parametrize(("path", "doc", "error"), DOCUMENTS)
def test_example_rolls_back_on_the_tick_after_the_threshold(
    path: Path, doc: dict[str, Any] | None, error: str
) -> None:
    assert doc is not None, f"{path}: {error}"
    canary = load(doc)
    analysis = canary.spec.analysis
    if canary.spec.skips_analysis or analysis is None or not analysis.metrics:
        pytest.skip("no metrics to fail")
    first_failure = 3  # tick 2 runs pre-rollout, tick 3 is the first analysis
    result = run(canary, 20, Script(metrics=fail_from(first_failure, Outcome.FAIL)), until=finished)
    assert result.last.phase is Phase.FAILED
    assert result.last.tick == first_failure + analysis.threshold
    assert result[result.last.tick - 1].failed_checks == analysis.threshold
