"""``canary.timestamps``: the controller's reading of the times a status and Events hold."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from canary.timestamps import parse_time


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_time_whose_utc_form_is_past_the_calendar_is_unreadable(text: str) -> None:
    # Converting it to UTC raised OverflowError out of the controller's reconcile, leader
    # election and delivery, which read such times from a status anyone may edit.
    assert parse_time(text) is None


def test_an_offset_time_is_read_in_utc() -> None:
    assert parse_time("2024-05-01T14:00:00+02:00") == datetime(2024, 5, 1, 12, tzinfo=UTC)
