"""Errors that come in clusters, end to end: demo apps whose client retries, Debian's
Prometheus scraping them every second, the compare judge reading ten 10 s windows.

One pair (canary and primary) serves 200 requests/s of its own and its client retries each
failed request 49 times, every retry failing too: errors come in clusters of 50, two to five
per side and window.  The other pair fails 10% of its requests independently.  The judge
measures how much more the canary's share of the errors scatters between windows than
independent requests allow (``comparison.dispersion``), divides its evidence by it, and a
verdict that says how many requests the test needs says why (whether the windows already
hold them depends on how the clusters fell).

Why ten windows: with so few clusters a window's share is often exactly balanced, and one
window may be left out as wild, so the estimate is far noisier than chi-squared's
approximation says.  Simulated with the judge's own ``scatter`` (clusters of 50, Poisson
counts of them per side and window, 4,000 runs): with six windows 1.7-2.7% of runs measure
a dispersion below 2 (and six windows here failed that way in two of four runs that followed
other Prometheus tests); with ten, 0.03%.  Independent errors measured above 2 in 0.3% of
runs, above 4 in none.  Told the client's retries (``compare.retries: 49``), the same windows
start the estimate at 50 with the weight of four windows: 4 x 49 / 13 (about 15) higher with
nine degrees of freedom.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from analysis import Outcome, QueryContext, Verdict, metric_check_from_spec
from tests.prometheus_fixtures import DemoApp, PrometheusServer, judge_run

pytestmark = pytest.mark.slow

RPS = 200.0
WINDOW_S = 10
WINDOWS = 10


@pytest.fixture(scope="module")
def lab(
    prometheus_server: PrometheusServer, demo_app_factory: Callable[..., DemoApp]
) -> PrometheusServer:
    """The Prometheus scraping both pairs, once it holds the judged windows of them."""
    pairs = [("retried", 0.002, 49), ("plain", 0.1, 0)]
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
            seed=20 + seed,
            extra_args=["--retries", str(retries)],
        )
        for seed, (workload, error_rate, retries) in enumerate(sides)
    ]
    prometheus_server.set_targets(apps)
    # The windows end 2 s ago (the newest scrape may not be in yet).
    window = WINDOW_S * WINDOWS + 4
    # The samples take as long to arrive as the windows last: the outer limit is three times that.
    prometheus_server.wait_for_samples(
        apps, window=f"{window}s", samples=window - 2, timeout=3.0 * window
    )
    return prometheus_server


async def judged(
    lab: PrometheusServer,
    target: str,
    retries: int | None = None,
    end: datetime | None = None,
) -> Verdict:
    """The verdict of the last 10 s window of a run of ``request-success-rate`` (the windows
    ending at ``end``, by default 2 s ago), told ``compare.retries`` when given."""
    compare: dict[str, object] = {"warmup": "0s"}
    if retries is not None:
        compare["retries"] = retries
    check = metric_check_from_spec(
        {"name": "request-success-rate", "interval": f"{WINDOW_S}s", "compare": compare},
        path="m",
    )
    ctx = QueryContext(name=target, namespace="test", target=target, provider="kubernetes")
    verdict = await judge_run(
        check, ctx, lab.url, windows=WINDOWS, window_seconds=WINDOW_S, end=end
    )
    assert verdict.comparison is not None
    return verdict


class TestErrorsInClusters:
    async def test_retried_errors_scatter_and_the_verdict_says_so(
        self, lab: PrometheusServer
    ) -> None:
        retried = await judged(lab, "retried")
        plain = await judged(lab, "plain")
        assert retried.comparison is not None and plain.comparison is not None
        assert retried.comparison.dispersion > 2.0, retried.summary
        assert plain.comparison.dispersion < 4.0, plain.summary
        # Same rates on both sides: no regression.  A verdict that says how many requests
        # the test needs says why when the errors scatter, and only then.
        assert retried.outcome is Outcome.PASS, retried.summary
        for verdict in (retried, plain):
            assert verdict.comparison is not None
            waiting = "canary requests to detect" in verdict.summary
            scattered = verdict.comparison.dispersion >= 1.5
            shown = f"errors {verdict.comparison.dispersion:.1f}x as scattered as independent ones;"
            assert (shown in verdict.summary) == (waiting and scattered), verdict.summary

    async def test_declared_retries_start_the_scatter_at_the_clusters_size(
        self, lab: PrometheusServer
    ) -> None:
        # The same windows (the same end), judged once as they are and once told that
        # the client retries 49 times: the estimate starts at clusters of 50 with the weight
        # of four windows, so it ends higher, and the verdict says where the figure comes from.
        end = datetime.now(UTC) - timedelta(seconds=2)
        measured = await judged(lab, "retried", end=end)
        told = await judged(lab, "retried", retries=49, end=end)
        assert measured.comparison is not None and told.comparison is not None
        assert told.comparison.dispersion > measured.comparison.dispersion + 5, told.summary
        assert told.outcome is Outcome.PASS, told.summary
        # Like the clause above, it comes with a verdict that says how many requests it needs
        # (at a dispersion of 15 or more, ten windows of 200 requests/s are far from enough).
        clause = "as scattered as independent ones (starting from 49 declared retries)"
        assert (clause in told.summary) == ("canary requests to detect" in told.summary)
