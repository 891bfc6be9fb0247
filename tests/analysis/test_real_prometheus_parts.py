"""The parts of a window against Debian's Prometheus scraping real demo-app processes.

Two pairs of apps (canary and primary each) at 200 requests/s of their own, scraped every
second.  In one pair the load's client retries each failed request 19 times and every
retry fails too (1% of requests fail, errors come in clusters of twenty, about 20 clusters
per side and window: 17% of the recorded requests); in the other the errors are
independent (20%).  The judge reads each side's
counts in parts of its window from the raw counters, and the parts must tell the clusters
from independent errors: Pearson's statistic of the canary's share of the errors over the
parts, per degree of freedom, is several times 1 for the first pair (each part's share is
set by a few clusters of twenty) and about 1 for the second.  Over three windows the
statistic has some 20 to 30 degrees of freedom: for independent errors, above 2.5 per degree
is chi-squared's 20 above 50 (one in 10,000); for the clusters, below 3 would need their
share to scatter less than a seventh of what twenty at a time make it (one in a million).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from analysis import (
    Outcome,
    PrometheusProvider,
    ProviderConfig,
    QueryContext,
    SequentialState,
    evaluate,
    metric_check_from_spec,
)
from analysis._builtin import builtin_queries
from analysis._parts import part_count, read_parts
from tests.prometheus_fixtures import DemoApp, PrometheusServer

pytestmark = pytest.mark.slow

RPS = 200.0
WINDOW_S = 10
COUNT = "http_request_duration_seconds_count"
POD = 'kubernetes_pod_name=~"{{ target }}-[0-9a-z]+-[0-9a-z]+"'


@pytest.fixture(scope="module")
def lab(
    prometheus_server: PrometheusServer, demo_app_factory: Callable[..., DemoApp]
) -> PrometheusServer:
    """The Prometheus scraping both pairs, once it holds two judged windows of them."""
    pairs = [("retried", 0.01, 19), ("plain", 0.2, 0)]
    sides = [
        (f"{name}{suffix}", rate, retries)
        for name, rate, retries in pairs
        for suffix in ("", "-primary")
    ]
    apps = [
        demo_app_factory(
            workload=workload,
            pod=f"{workload}-7d9f8b6c4-x1y2z",
            error_rate=error_rate,
            self_load=RPS,
            seed=10 + seed,
            extra_args=["--retries", str(retries)],
        )
        for seed, (workload, error_rate, retries) in enumerate(sides)
    ]
    prometheus_server.set_targets(apps)
    # Three judged windows of 10 s, ending 2 s ago (the newest scrape may not be in yet).
    prometheus_server.wait_for_samples(apps, window="34s", samples=32)
    return prometheus_server


def provider(server: PrometheusServer) -> PrometheusProvider:
    return PrometheusProvider(ProviderConfig(address=server.url, timeout_seconds=5.0))


def ctx(target: str) -> QueryContext:
    return QueryContext(name=target, namespace="test", target=target, provider="kubernetes")


async def three_windows(lab: PrometheusServer, target: str) -> SequentialState:
    check = metric_check_from_spec(
        {"name": "request-success-rate", "interval": f"{WINDOW_S}s", "compare": {"warmup": "0s"}},
        path="m",
    )
    end = datetime.now(UTC) - timedelta(seconds=2)
    verdict = None
    for back in (2, 1, 0):
        now = end - timedelta(seconds=WINDOW_S * back)
        verdict = await evaluate(check, ctx(target), provider(lab), now=now, previous=verdict)
        assert verdict.outcome is not Outcome.ERROR, verdict.summary
    assert verdict is not None and verdict.state is not None
    return verdict.state


class TestPartsOfAWindow:
    async def test_the_parts_hold_the_windows_counts_cut_by_the_scrapes(
        self, lab: PrometheusServer
    ) -> None:
        window = f"{WINDOW_S}s"
        canary = builtin_queries(ctx("plain"), interval=window).counters
        primary = builtin_queries(ctx("plain"), interval=window, primary=True).counters
        assert canary is not None and primary is not None
        now = datetime.now(UTC) - timedelta(seconds=2)
        parts = await part_count(provider(lab), canary, now=now)
        parts_c, parts_p = await read_parts(
            provider(lab), canary, primary, now=now, seconds=WINDOW_S, parts=parts
        )
        # A 1 s scrape: about one part per second (10 or 11 samples in a 10 s window, fewer
        # if a loaded machine missed a scrape).
        assert 5 <= len(parts_c) <= 11 and len(parts_p) == len(parts_c)
        for parts in (parts_c, parts_p):
            requests = sum(n for n, _ in parts)
            errors = sum(x for _, x in parts)
            assert requests == pytest.approx(RPS * WINDOW_S, rel=0.3)
            assert errors == pytest.approx(0.2 * requests, rel=0.3)
            # Each part saw a scrape (but one, when the window held a sample at both ends).
            assert sum(n > 0 for n, _ in parts) >= len(parts) - 1

    async def test_retried_errors_show_as_clusters_independent_ones_do_not(
        self, lab: PrometheusServer
    ) -> None:
        retried = await three_windows(lab, "retried")
        plain = await three_windows(lab, "plain")
        ratios = {}
        for name, state in (("retried", retried), ("plain", plain)):
            pearson = sum(p for p, _ in state.within)
            df = sum(d for _, d in state.within)
            assert df >= 15, (name, state.within)
            ratios[name] = pearson / df
        assert ratios["retried"] > 3.0 and ratios["plain"] < 2.5, ratios

    async def test_a_metric_with_its_own_queries_is_judged_without_parts(
        self, lab: PrometheusServer
    ) -> None:
        check = metric_check_from_spec(
            {
                "name": "request-success-rate",
                "interval": f"{WINDOW_S}s",
                "compare": {
                    "warmup": "0s",
                    "requestsQuery": f"sum(increase({COUNT}{{{POD}}}[{{{{ interval }}}}]))",
                    "errorsQuery": f'sum(increase({COUNT}{{{POD},status=~"5.*"}}[{{{{ interval }}}}]))',
                },
            },
            path="m",
        )
        v = await evaluate(check, ctx("retried"), provider(lab), now=datetime.now(UTC))
        assert v.state is not None and v.outcome is not Outcome.ERROR, v.summary
        assert v.state.within == ()
