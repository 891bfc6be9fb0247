"""The classes of release the decision benchmark covers, each a named world with rows.

A class is one kind of trouble a real release meets (low traffic, cold start,
coarse histogram buckets, ...).  Each row of a class is one world (a traffic
level, a bucket layout, a schedule) and holds good releases and the bad ones
relevant to that trouble.  Release parameters are drawn from a generator seeded
by (seed, class, row, effect), so one class run alone (``--class``) gives the
same numbers as in the full run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.simulator import (
    AB_TESTING,
    EFFECTS,
    ERR_1_2,
    ERR_1_2_LATE,
    ERR_1_5,
    ERR_GROWING,
    GOOD,
    ISTIO,
    LINKERD,
    NGINX,
    P99_25_LATE,
    P99_25_SHIFT,
    P99_25_TAIL,
    P99_50_SHIFT,
    P99_50_TAIL,
    P99_GROWING,
    STEP_WEIGHTS,
    Effect,
    Release,
    World,
    draw_release,
)

__all__ = ["CLASSES", "Row", "WorldClass", "build_corpus", "class_names"]


@dataclass(frozen=True, slots=True)
class Row:
    """One world of a class, with the bad effects it is tried with (good releases always)."""

    label: str
    world: World
    effects: tuple[Effect, ...]
    rerun_of: str | None = None
    """The label of the row whose releases this one runs again, in a world that differs in
    what the judge is told (the seeds are that row's: the two rows are the same releases)."""


@dataclass(frozen=True, slots=True)
class WorldClass:
    name: str
    title: str
    model: str  # one sentence: what is special about this world
    rows: tuple[Row, ...]


def _steady() -> WorldClass:
    rows = tuple(
        Row(f"canary {rps:g} req/s (total {10 * rps:g})", World(total_rps=10 * rps), EFFECTS)
        for rps in (1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
    )
    return WorldClass(
        "steady",
        "1. Steady traffic (the original corpus)",
        "steady warm independent traffic, Poisson arrivals, binomial errors, shared drift, "
        "bursts and incidents; rows by canary traffic at the first step (10%)",
        rows,
    )


def _low() -> WorldClass:
    effects = (ERR_1_2, ERR_1_5, P99_50_SHIFT)
    rows = tuple(
        Row(f"total {rps:g} req/s", World(total_rps=rps), effects) for rps in (0.2, 0.5, 1.0, 2.0)
    )
    return WorldClass(
        "low-traffic",
        "2. Low total traffic",
        "total traffic 0.2-2 requests/s, the canary gets its weight's share",
        rows,
    )


def _diurnal() -> WorldClass:
    effects = (ERR_1_2, P99_25_SHIFT)
    rows = (
        Row("falling 50 -> 50/F req/s", World(total_rps=50.0, diurnal="falling"), effects),
        Row("rising 50/F -> 50 req/s", World(total_rps=50.0, diurnal="rising"), effects),
    )
    return WorldClass(
        "diurnal",
        "3. Diurnal traffic",
        "total traffic falls (or rises) by a factor F = 3-5 along a cosine over the "
        "schedule's 5 nominal minutes, then turns back (period 10 min)",
        rows,
    )


def _bursty() -> WorldClass:
    effects = (ERR_1_2, P99_25_SHIFT)
    rows = tuple(
        Row(f"total {rps:g} req/s, gamma-Poisson", World(total_rps=rps, bursty=True), effects)
        for rps in (2.0, 20.0)
    )
    return WorldClass(
        "bursty",
        "4. Bursty request counts",
        "each minute's request count is gamma-Poisson (negative binomial), gamma shape 0.5-2, "
        "shared by both versions",
        rows,
    )


def _clustered() -> WorldClass:
    effects = (ERR_1_2,)
    rows = (
        tuple(
            Row(f"retries x2-3, total {rps:g} req/s", World(total_rps=rps, retries=True), effects)
            for rps in (20.0, 100.0)
        )
        + tuple(
            Row(
                f"retries x2-3 declared (attempts 3), total {rps:g} req/s",
                World(total_rps=rps, retries=True, declared_retries=3),
                effects,
                rerun_of=f"retries x2-3, total {rps:g} req/s",
            )
            for rps in (20.0, 100.0)
        )
        + tuple(
            Row(
                f"one bad pod, total {rps:g} req/s",
                World(total_rps=rps, bad_pod_prob=0.04),
                effects,
            )
            for rps in (20.0, 100.0)
        )
        + tuple(
            Row(
                f"one stalled pod, total {rps:g} req/s",
                World(total_rps=rps, stall_prob=0.04),
                (P99_25_SHIFT,),
            )
            for rps in (20.0, 100.0)
        )
    )
    return WorldClass(
        "clustered",
        "5. Clustered errors and slow requests",
        "(a) every failing request is retried 2-3 times on the same version and the retries "
        "fail too (declared: the Canary says so, service.retries.attempts 3); (b) each minute, each side with probability 4%, one of its 2-6 pods fails "
        "20-50% of its requests; (c) each minute, each side with probability 4%, one of its "
        "2-6 pods stalls and every request it serves that minute takes 3-10 times as long",
        rows,
    )


def _cold_start() -> WorldClass:
    effects = (ERR_1_2, P99_25_SHIFT)
    rows = tuple(
        Row(f"total {rps:g} req/s", World(total_rps=rps, cold_start=True), effects)
        for rps in (20.0, 100.0)
    )
    return WorldClass(
        "cold-start",
        "6. Cold start",
        "the canary starts with errors x5-10 and latency x2-3, decaying linearly to its "
        "steady behaviour over 1-2 minutes; bad releases are cold too",
        rows,
    )


def _tail() -> WorldClass:
    effects = (P99_25_TAIL, P99_50_TAIL)
    rows = tuple(
        Row(f"{layout.name}, primary p99 {lo:g}-{hi:g} ms", world, effects)
        for layout, lo, hi in ((ISTIO, 150, 240), (LINKERD, 210, 290), (NGINX, 150, 240))
        for world in (World(total_rps=50.0, layout=layout, p99_ms=(lo, hi)),)
    )
    return WorldClass(
        "tail-latency",
        "7. Tail-only latency regressions on real bucket layouts",
        "total 50 requests/s; log-normal latency, shape 0.3-0.6, median set so that the "
        "primary's p99 lies between two coarse bucket boundaries; a bad canary's fastest 90% "
        "are unchanged and its slower requests stretch so that its p99 grows by 25% or 50%",
        rows,
    )


def _errors_2x() -> WorldClass:
    rows = tuple(
        Row(f"total {rps:g} req/s", World(total_rps=rps), (ERR_1_2,))
        for rps in (20.0, 50.0, 100.0, 500.0)
    )
    return WorldClass(
        "errors-2x",
        "8. Errors 1% -> 2% at moderate to high traffic",
        "steady traffic at 20-500 requests/s total",
        rows,
    )


def _schedules() -> WorldClass:
    effects = (ERR_1_2, P99_25_SHIFT)
    rows = tuple(
        Row(
            f"{schedule.name}, total {rps:g} req/s",
            World(total_rps=rps, schedule=schedule),
            effects,
        )
        for schedule in (STEP_WEIGHTS, AB_TESTING)
        for rps in (20.0, 200.0)
    )
    return WorldClass(
        "schedules",
        "9. Other schedules",
        "steady traffic; Flagger's stepWeights [1, 5, 25, 50], and A/B testing "
        "(iterations: 10, 10% of the traffic by header)",
        rows,
    )


def _changing() -> WorldClass:
    effects = (ERR_1_2_LATE, P99_25_LATE, ERR_GROWING, P99_GROWING)
    rows = tuple(
        Row(f"total {rps:g} req/s", World(total_rps=rps), effects) for rps in (20.0, 100.0)
    )
    return WorldClass(
        "changing",
        "10. Regressions that begin or grow during the run",
        "steady traffic; the bad canary is like the primary until minute 3 and then worse by "
        "the target effects, or worse from its first minute and more so every minute after "
        "(errors x1.5, latencies x1.1: a leak)",
        rows,
    )


CLASSES: tuple[WorldClass, ...] = (
    _steady(),
    _low(),
    _diurnal(),
    _bursty(),
    _clustered(),
    _cold_start(),
    _tail(),
    _errors_2x(),
    _schedules(),
    _changing(),
)


def class_names() -> list[str]:
    return [c.name for c in CLASSES]


Key = tuple[str, str, str]  # class name, row label, effect name


def build_corpus(
    seed: int, n_good: int, n_bad: int, names: set[str] | None = None
) -> list[tuple[Key, Release]]:
    """Every release of the chosen classes, keyed by (class, row, effect); deterministic."""
    corpus: list[tuple[Key, Release]] = []
    for ci, klass in enumerate(CLASSES):
        if names is not None and klass.name not in names:
            continue
        # A row's seeds are its position among the rows that run releases of their own, so
        # a rerun row (``Row.rerun_of``) changes no other row's releases.
        own = [row.label for row in klass.rows if row.rerun_of is None]
        for row in klass.rows:
            ri = own.index(row.rerun_of or row.label)
            for ei, effect in enumerate((GOOD, *row.effects)):
                rng = np.random.default_rng([seed, ci, ri, ei])
                count = n_good if effect == GOOD else n_bad
                key = (klass.name, row.label, effect.name)
                corpus += [(key, draw_release(rng, row.world, effect)) for _ in range(count)]
    return corpus
