"""The compact per-Canary families expose what prometheus_client's own would."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from canary.controller.metrics import Metrics
from canary.controller.series import GaugeFamily, HistogramFamily
from canary.model import CanaryStatus, Phase, parse_canary


def lines(text: str) -> list[str]:
    """A scrape's lines, sorted, without prometheus_client's ``_created`` samples."""
    return sorted(line for line in text.splitlines() if "_created" not in line)


def exposition(registry: CollectorRegistry) -> list[str]:
    return lines(generate_latest(registry).decode())


def test_a_histogram_family_scrapes_as_prometheus_clients_histogram() -> None:
    ours_registry, theirs_registry = CollectorRegistry(), CollectorRegistry()
    ours = HistogramFamily("pass_seconds", "Pass time", ["name", "namespace"], ours_registry)
    theirs = Histogram("pass_seconds", "Pass time", ["name", "namespace"], registry=theirs_registry)
    # On a bound, between bounds, past the last finite one, and two series.
    for name, value in (("a", 0.005), ("a", 0.3), ("a", 42.0), ("b", 0.0), ("a", 0.3)):
        ours.labels(name, "apps").observe(value)
        theirs.labels(name, "apps").observe(value)
    assert exposition(ours_registry) == exposition(theirs_registry)
    assert lines(ours.render()) == exposition(theirs_registry)  # its own text, the same
    assert (
        ours_registry.get_sample_value(
            "pass_seconds_bucket", {"name": "a", "namespace": "apps", "le": "0.5"}
        )
        == 3.0
    )


def test_a_gauge_family_scrapes_as_prometheus_clients_gauge_and_forgets_a_removed_series() -> None:
    ours_registry, theirs_registry = CollectorRegistry(), CollectorRegistry()
    ours = GaugeFamily("weight", "Weight", ["workload", "namespace"], ours_registry)
    theirs = Gauge("weight", "Weight", ["workload", "namespace"], registry=theirs_registry)
    for family in (ours, theirs):
        family.labels("web", "apps").set(10)
        family.labels("web-primary", "apps").set(90)
        family.labels("web", "apps").set(20)  # replaces, does not add
        family.labels("gone", "apps").set(1)
        family.remove("gone", "apps")
    assert exposition(ours_registry) == exposition(theirs_registry)
    assert lines(ours.render()) == exposition(theirs_registry)  # its own text, the same
    assert ours_registry.get_sample_value("weight", {"workload": "web", "namespace": "apps"}) == 20


def test_the_wrong_number_of_labels_is_refused() -> None:
    family = GaugeFamily("g", "G", ["name", "namespace"], CollectorRegistry())
    with pytest.raises(ValueError, match="expected labels"):
        family.labels("only-one")


def test_a_scrape_beside_passes_that_add_series_sees_whole_series() -> None:
    """The scrape can run in another thread than the passes that add series."""
    registry = CollectorRegistry()
    family = HistogramFamily("pass_seconds", "Pass time", ["name"], registry)
    done = threading.Event()

    def passes() -> None:
        for i in range(20_000):
            family.labels(f"c{i}").observe(0.01)
        done.set()

    writer = threading.Thread(target=passes)
    writer.start()
    while not done.is_set():
        for metric in registry.collect():
            counts = {
                s.labels["name"]: s.value for s in metric.samples if s.name.endswith("_count")
            }
            assert set(counts.values()) <= {1.0}
    writer.join()
    assert len(exposition(registry)) == 20_000 * 17 + 2  # 15 buckets, count, sum; HELP, TYPE


def test_label_values_and_help_are_escaped_as_prometheus_client_does() -> None:
    ours_registry, theirs_registry = CollectorRegistry(), CollectorRegistry()
    ours = GaugeFamily("g", 'Help with \\ and\na "quote"', ["name"], ours_registry)
    theirs = Gauge("g", 'Help with \\ and\na "quote"', ["name"], registry=theirs_registry)
    for family in (ours, theirs):
        family.labels('we\\ird\n"name"').set(1)
    assert lines(ours.render()) == exposition(theirs_registry)


def test_the_controllers_scrape_is_what_generate_latest_writes_for_its_registry() -> None:
    metrics = Metrics(version="v", provider="istio", flagger=True)
    canary = parse_canary(
        {
            "apiVersion": "canary.gitops.dev/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "web", "namespace": "apps"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "service": {"port": 9898},
                "analysis": {"interval": "1m", "threshold": 2, "stepWeight": 10, "maxWeight": 50},
            },
        }
    )
    metrics.set_total("apps", 1)
    metrics.observe_duration(canary, 0.02)
    metrics.record(canary, CanaryStatus(), CanaryStatus(phase=Phase.PROGRESSING), "Progressing")
    metrics.lateness.observe(0.3)
    scraped = lines(metrics.exposition().decode())
    assert scraped == exposition(metrics.registry)
    assert any(line.startswith("flagger_canary_duration_seconds_bucket{") for line in scraped)
    assert any(line.startswith("canary_engine_tick_lateness_seconds_bucket{") for line in scraped)
