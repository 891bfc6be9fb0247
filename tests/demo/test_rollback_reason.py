"""The demo's summary says why v3 was rolled back, and is not [ok] for the wrong reason."""

from __future__ import annotations

from typing import Any

from canary.demo.story import rollback_reason

V3 = "main@sha1:3333333"


def history(*verdicts: dict[str, Any], revision: str = V3) -> dict[str, Any]:
    return {
        "analysisHistory": [
            {
                "revision": "main@sha1:2222222",
                "ticks": [{"verdicts": [{"name": "x", "outcome": "Error"}]}],
            },
            {"revision": revision, "ticks": [{"verdicts": list(verdicts)}]},
        ]
    }


def test_a_rollback_on_the_error_rate_is_the_right_reason() -> None:
    status = history(
        {"name": "request-success-rate", "outcome": "Fail", "value": 96.41},
        {"name": "request-duration", "outcome": "Pass", "value": 87.5},
    )
    assert rollback_reason(status, V3) == (
        True,
        "on its error rate: request-success-rate Fail at 96.41",
    )


def test_a_rollback_on_missing_data_is_the_wrong_reason() -> None:
    status = history({"name": "request-success-rate", "outcome": "NoData"})
    right, text = rollback_reason(status, V3)
    assert not right and text == "for the wrong reason: request-success-rate NoData"


def test_an_advisory_failure_is_not_a_reason() -> None:
    status = history(
        {"name": "request-duration", "outcome": "Fail", "advisory": True},
        {"name": "request-success-rate", "outcome": "Fail", "value": 95},
    )
    assert rollback_reason(status, V3)[0]


def test_no_recorded_failure_is_not_ok() -> None:
    assert rollback_reason(history(revision="main@sha1:other"), V3) == (
        False,
        "no failed check recorded for its run",
    )
