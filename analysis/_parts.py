"""How a window's errors fell within it: each side's counts in parts of the window.

Why: the error test divides its evidence by the overdispersion of the counts, and between
windows that takes many windows to learn; a request and its failing retries land in one
part of a window, so the parts show clusters from the first judged window on
(:func:`analysis._stats.part_scatter`, :func:`analysis._compare.add_window`).

How, and why not ``increase`` over shorter ranges: ``increase(x[15s])`` on a 15 s scrape sees
one or two samples, extrapolates each to the whole range and misses what happened between
two ranges, which doubles some events, drops others and reads as clusters where there are
none.  The parts are read instead from the raw counters' sums (:class:`CounterQueries`) at
the parts' boundaries, one range query per counter: the difference between two boundaries
is exactly what the scrapes between them saw, so every event is in exactly one part.  The
window is cut into as many parts as a series has samples in it (at most
:data:`MOST_PARTS`), so a part holds about one scrape; a finer cut would leave parts with no
new sample.  The parts' requests are read too and the events weighed by them, so a part
that saw more traffic, or two scrapes of a pod where another saw one, does not pass for a
cluster.

The parts only ever add to what the judge knows: a provider that cannot answer, a counter
that went down (a pod restarted), a series with fewer points than asked: the window is
judged without its parts, as before.  Only the builtin metrics have parts (their counters
are known); a metric with its own ``requestsQuery``/``errorsQuery`` is judged without.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from analysis._builtin import CounterQueries
from analysis._providers import MetricProvider
from analysis._spec.errors import AnalysisError

__all__ = ["MOST_PARTS", "Parts", "window_parts"]

MOST_PARTS = 12
"""Parts a window is cut into at most (a 5 s scrape and a 1 m interval)."""

Parts = tuple[tuple[float, float], ...]
"""One side's (requests, errors) per part of the window, oldest first."""


async def window_parts(
    provider: MetricProvider,
    canary: CounterQueries,
    primary: CounterQueries,
    *,
    now: datetime,
    seconds: float,
) -> tuple[Parts, Parts]:
    """Each side's (requests, errors) in the parts of the window of ``seconds`` ending ``now``;
    ``()`` for a side whose parts could not be read."""
    try:
        samples = await provider.run_query(canary.samples, at=now)
    except AnalysisError:
        return (), ()
    count = int(samples) if math.isfinite(samples) else 0
    parts = min(MOST_PARTS, count)
    if parts < 2 or seconds <= 0:
        return (), ()
    step = seconds / parts
    start = now - timedelta(seconds=seconds)
    # Half a step past the end: the last boundary is ``now`` whatever the rounding of the step.
    end = now + timedelta(seconds=step / 2)
    queries = (canary.requests, canary.errors, primary.requests, primary.errors)
    try:
        series = await asyncio.gather(
            *(provider.query_samples(q, start=start, end=end, step_seconds=step) for q in queries)
        )
    except AnalysisError:
        return (), ()
    return differences(series[0], series[1], parts), differences(series[2], series[3], parts)


def differences(requests: Sequence[float], errors: Sequence[float], parts: int) -> Parts:
    """(requests, errors) between consecutive boundaries; ``()`` unless both counters have a
    value at each of the ``parts + 1`` boundaries and neither ever went down."""
    if len(requests) != parts + 1 or len(errors) != parts + 1:
        return ()
    out = []
    for i in range(parts):
        n, x = requests[i + 1] - requests[i], errors[i + 1] - errors[i]
        if not (math.isfinite(n) and math.isfinite(x)) or n < 0 or x < 0:
            return ()
        out.append((n, x))
    return tuple(out)
