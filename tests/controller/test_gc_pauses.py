"""The controller times its garbage collections: each one stops every pass."""

from __future__ import annotations

import gc

from canary.controller.metrics import Metrics


def full_collections(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value(
        "canary_engine_gc_pause_seconds_count", {"generation": "2"}
    )
    return value or 0.0


def test_collections_are_timed_by_generation_until_the_timing_stops() -> None:
    metrics = Metrics()
    stop = metrics.time_gc()
    try:
        gc.collect()
        gc.collect()
        assert full_collections(metrics) >= 2
        total = metrics.registry.get_sample_value(
            "canary_engine_gc_pause_seconds_sum", {"generation": "2"}
        )
        assert total is not None and total > 0
    finally:
        stop()
    counted = full_collections(metrics)
    gc.collect()
    assert full_collections(metrics) == counted
