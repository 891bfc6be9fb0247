"""``CanaryStatus.from_dict`` on a hand-edited status: every field reads as a value of its type.

The controller and ``canary wait`` read the stored status through it, and its promise is that
a hand-edited or older status never crashes them: a field that cannot be read is its default.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canary.model.status import CanaryStatus

COUNTS = ["canaryWeight", "failedChecks", "iterations", "inconclusiveChecks", "observedGeneration"]


@pytest.mark.parametrize("text", ["--5", "²", "٣"])
@pytest.mark.parametrize("field", COUNTS)
def test_a_count_written_as_text_that_is_no_ascii_integer_reads_as_zero(
    field: str, text: str
) -> None:
    assert getattr(CanaryStatus.from_dict({field: text}), _attribute(field)) == 0


def test_a_count_written_as_the_text_of_an_integer_reads_as_it() -> None:
    for text, value in (("7", 7), (" 7 ", 7), ("-5", -5), ("+3", 3)):
        assert CanaryStatus.from_dict({"canaryWeight": text}).canary_weight == value, text


def test_integers_written_as_text_deep_in_the_status_read_strictly() -> None:
    status = CanaryStatus.from_dict(
        {
            "gitRevert": {"state": "Reverted", "attempts": "--2"},
            "analysisHistory": [
                {"ticks": [{"weight": "²", "verdicts": [{"name": "m", "samples": "--5"}]}]}
            ],
        }
    )
    assert status.git_revert is not None and status.git_revert.attempts == 0
    tick = status.analysis_history[0].ticks[0]
    assert (tick.weight, tick.verdicts[0].samples) == (0, 0)


@pytest.mark.parametrize("value", [10**400, float("nan"), float("inf")])
def test_a_value_that_is_no_finite_number_reads_as_none(value: Any) -> None:
    status = CanaryStatus.from_dict(
        {
            "analysis": [{"name": "m", "value": value, "primaryValue": value}],
            "analysisHistory": [{"ticks": [{"verdicts": [{"name": "m", "value": value}]}]}],
        }
    )
    assert (status.analysis[0].value, status.analysis[0].primary_value) == (None, None)
    assert status.analysis_history[0].ticks[0].verdicts[0].value is None


@pytest.mark.parametrize("state", [5, "x", [1], True])
def test_a_status_that_is_no_object_reads_as_the_empty_status(state: Any) -> None:
    assert CanaryStatus.from_dict(state) == CanaryStatus()


def test_revert_files_and_images_that_are_no_list_read_as_none() -> None:
    revert = CanaryStatus.from_dict(
        {"gitRevert": {"state": "Reverted", "files": 5, "images": True}}
    ).git_revert
    assert revert is not None and (revert.files, revert.images) == ((), ())


def _attribute(field: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in field)


_KEYS = st.sampled_from(
    [
        *COUNTS,
        "phase",
        "gitRevert",
        "analysis",
        "analysisHistory",
        "knownBad",
        "pendingAlerts",
        "conditions",
        "trackedConfigs",
        "promotedConfigs",
        "previousImages",
        "handledCommands",
        "state",
        "attempts",
        "files",
        "images",
        "ticks",
        "verdicts",
        "weight",
        "samples",
        "value",
        "destinations",
    ]
)
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**400, "--5", "²", "Reverted", "Pending"]),
    st.floats(),
    st.text(max_size=4),
)
_TREES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=5)),
    max_leaves=20,
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_TREES)
def test_no_stored_status_crashes_the_reader(stored: Any) -> None:
    status = CanaryStatus.from_dict(stored)
    assert CanaryStatus.from_dict(status.to_dict()).to_dict() == status.to_dict()
