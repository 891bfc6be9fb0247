"""How a window's errors fell within it: each side's counts in parts of the window.

Why: the error test divides its evidence by the overdispersion of the counts, and between
windows that takes many windows to learn; a request and its failing retries land in one
part of a window and push the canary's share of that part's errors to one side, so the
parts show clusters within every judged window (:func:`analysis._stats.share_over_parts`,
:func:`analysis._compare.add_window`).

How, and why not ``increase`` over shorter ranges: ``increase(x[15s])`` on a 15 s scrape sees
one or two samples, extrapolates each to the whole range and misses what happened between
two ranges, which doubles some events, drops others and reads as clusters where there are
none.  The parts are read instead from the raw counters' sums (:class:`CounterQueries`) at
the parts' boundaries, one range query per counter: the difference between two boundaries
is exactly what the scrapes between them saw, so every event is in exactly one part.  The
window is cut into as many parts as a series has samples in it (at most
:data:`MOST_PARTS`), so a part holds about one scrape; a finer cut would leave parts with no
new sample.  The parts' requests are read too, so a part that saw more of one side's
traffic (two scrapes of a pod where another saw one) does not pass for a cluster.

The parts only ever add to what the judge knows: a provider that cannot answer, a counter
that went down (a pod restarted, a pod gone), a series with fewer points than asked: the
window is judged without its parts, as before (logged at debug level).  Only the builtin
metrics have parts (their counters are known); a metric with its own
``requestsQuery``/``errorsQuery`` is judged without.  Cost: one query more in the round of
the window's counts, and a second round of four range queries.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from analysis._builtin import CounterQueries
from analysis._providers import MetricProvider
from analysis._spec.errors import AnalysisError

__all__ = ["MOST_PARTS", "Parts", "differences", "part_count", "read_parts"]

_log = logging.getLogger(__name__)

_UNREADABLE = (AnalysisError, NotImplementedError)
"""What leaves a window without parts: a failed query (an :class:`AnalysisError`), or a
provider that has no range queries (the protocol's ``query_samples`` not implemented)."""

MOST_PARTS = 12
"""Parts a window is cut into at most (a 5 s scrape and a 1 m interval)."""

Parts = tuple[tuple[float, float], ...]
"""One side's (requests, errors) per part of the window, oldest first."""


async def part_count(
    provider: MetricProvider, counters: CounterQueries | None, *, now: datetime
) -> int:
    """How many parts the window ending ``now`` can be cut into: the samples a series of the
    canary's requests counter has in it, at most :data:`MOST_PARTS`; 0 for none (fewer than
    two, no counters, or no answer)."""
    if counters is None:
        return 0
    try:
        samples = await provider.run_query(counters.samples, at=now)
    except _UNREADABLE as exc:
        _log.debug("no parts for %s: %s", counters.samples, exc)
        return 0
    count = min(MOST_PARTS, int(samples)) if math.isfinite(samples) else 0
    return count if count >= 2 else 0


async def read_parts(
    provider: MetricProvider,
    canary: CounterQueries,
    primary: CounterQueries,
    *,
    now: datetime,
    seconds: float,
    parts: int,
) -> tuple[Parts, Parts]:
    """Each side's (requests, errors) in ``parts`` equal parts of the window of ``seconds``
    ending ``now``; ``()`` for a side whose parts could not be read."""
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
    except _UNREADABLE as exc:
        _log.debug("no parts for %s: %s", canary.requests, exc)
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
