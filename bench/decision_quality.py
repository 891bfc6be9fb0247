"""Decision-quality benchmark: Flagger's threshold policy vs the statistical judge, same releases.

Run it with::

    .venv/bin/python -m bench.decision_quality            # full corpus (~1-2 min on 2 cores)
    .venv/bin/python -m bench.decision_quality --quick    # a smaller corpus, for a smoke run

It prints the corpus parameters, then per policy side by side: false rollbacks
(good releases rolled back) per traffic class, missed regressions (bad releases
promoted) per effect and traffic class, and median times to decision; then
each target of the statistical judge with MET or MISSED.  Seeded and
deterministic: the same command prints the same numbers.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from bench.simulator import (
    EFFECTS,
    GOOD,
    MAX_DURATION_MS,
    MAX_WEIGHT,
    MIN_SUCCESS_RATE,
    STEP_WEIGHT,
    THRESHOLD,
    TRAFFIC_CLASSES,
    Release,
    Result,
    run_statistical,
    run_threshold,
)


def build_corpus(seed: int, n_good: int, n_bad: int) -> list[Release]:
    rng = np.random.default_rng(seed)
    releases: list[Release] = []
    for effect in (GOOD, *EFFECTS):
        count = n_good if effect is GOOD else n_bad
        for rps in TRAFFIC_CLASSES:
            for _ in range(count):
                base = (
                    effect.fixed_base_error
                    if effect.fixed_base_error is not None
                    else float(math.exp(rng.uniform(math.log(0.001), math.log(0.02))))
                )
                releases.append(
                    Release(
                        seed=int(rng.integers(0, 2**63 - 1)),
                        canary_rps=rps,
                        base_error=base,
                        median_ms=float(rng.uniform(20.0, 100.0)),
                        sigma=float(rng.uniform(0.3, 0.5)),
                        effect=effect,
                    )
                )
    return releases


def _run(release: Release) -> tuple[Result, Result]:
    return run_threshold(release), run_statistical(release)


def _pct(k: int, n: int) -> str:
    return f"{100.0 * k / n:5.1f}%" if n else "   n/a"


def _median(xs: Sequence[int]) -> float:
    return float(statistics.median(xs)) if xs else math.nan


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decision_quality", description=__doc__)
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument("--good", type=int, default=250, help="good releases per traffic class")
    parser.add_argument(
        "--bad", type=int, default=80, help="bad releases per effect and traffic class"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="40 good / 15 bad per class")
    args = parser.parse_args(argv)
    if args.quick:
        args.good, args.bad = 40, 15

    started = time.monotonic()
    corpus = build_corpus(args.seed, args.good, args.bad)
    if args.workers > 1:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            results = list(pool.map(_run, corpus, chunksize=64))
    else:
        results = [_run(r) for r in corpus]
    elapsed = time.monotonic() - started

    print(
        "Decision-quality benchmark: Flagger threshold policy vs statistical judge (same releases)"
    )
    print(f"  seed {args.seed}; {len(corpus)} releases; {elapsed:.1f}s")
    print(
        "  corpus: base error rate log-uniform 0.1-2%; canary traffic at the first step "
        f"{', '.join(f'{r:g}' for r in TRAFFIC_CLASSES)} requests/s (total = 10x);"
    )
    print(
        "          latency log-normal, median 20-100 ms, shape 0.3-0.5; drift: shared log-normal "
        "random walk (sd 5%/min errors, 2.5%/min latency);"
    )
    print(
        "          bursts: each minute 5% chance of x3 traffic and 5% chance of a shared x4 error "
        "incident; Poisson arrivals, binomial errors."
    )
    print(
        f"  schedule: interval 1m, threshold {THRESHOLD}, stepWeight {STEP_WEIGHT}, maxWeight "
        f"{MAX_WEIGHT}; threshold policy: success rate >= {MIN_SUCCESS_RATE:g}%, p99 <= "
        f"{MAX_DURATION_MS:g} ms; statistical: compare on both metrics, defaults "
        "(alpha 0.01, allowedIncrease 1.1, minSampleSize 100, maxInconclusive 5)."
    )
    print()

    by_key: dict[tuple[str, float], list[tuple[Result, Result]]] = {}
    for release, pair in zip(corpus, results, strict=True):
        by_key.setdefault((release.effect.name, release.canary_rps), []).append(pair)

    print("False rollbacks (good releases rolled back)")
    print(f"  {'canary req/s':>12}  {'n':>5}  {'threshold':>9}  {'statistical':>11}")
    all_good: list[tuple[Result, Result]] = []
    for rps in TRAFFIC_CLASSES:
        pairs = by_key[(GOOD.name, rps)]
        all_good += pairs
        t = sum(p[0].rolled_back for p in pairs)
        s = sum(p[1].rolled_back for p in pairs)
        print(f"  {rps:>12g}  {len(pairs):>5}  {_pct(t, len(pairs)):>9}  {_pct(s, len(pairs)):>11}")
    t_all = sum(p[0].rolled_back for p in all_good)
    s_all = sum(p[1].rolled_back for p in all_good)
    print(
        f"  {'all':>12}  {len(all_good):>5}  {_pct(t_all, len(all_good)):>9}  {_pct(s_all, len(all_good)):>11}"
    )
    print()

    print("Missed regressions (bad releases promoted)")
    print(f"  {'effect':<32} {'canary req/s':>12}  {'n':>4}  {'threshold':>9}  {'statistical':>11}")
    missed: dict[tuple[str, float], tuple[float, float]] = {}
    for effect in EFFECTS:
        for rps in TRAFFIC_CLASSES:
            pairs = by_key[(effect.name, rps)]
            t = sum(not p[0].rolled_back for p in pairs)
            s = sum(not p[1].rolled_back for p in pairs)
            missed[(effect.name, rps)] = (t / len(pairs), s / len(pairs))
            print(
                f"  {effect.label:<32} {rps:>12g}  {len(pairs):>4}  {_pct(t, len(pairs)):>9}  "
                f"{_pct(s, len(pairs)):>11}"
            )
    print()

    bad_pairs = [p for (name, _), ps in by_key.items() if name != GOOD.name for p in ps]
    t_rb = [p[0].minutes for p in bad_pairs if p[0].rolled_back]
    s_rb = [p[1].minutes for p in bad_pairs if p[1].rolled_back]
    t_pr = [p[0].minutes for p in all_good if not p[0].rolled_back]
    s_pr = [p[1].minutes for p in all_good if not p[1].rolled_back]
    print("Median time to decision (minutes)")
    print(f"  {'':<40} {'threshold':>9}  {'statistical':>11}")
    print(f"  {'roll back a bad release':<40} {_median(t_rb):>9.1f}  {_median(s_rb):>11.1f}")
    print(f"  {'promote a good release':<40} {_median(t_pr):>9.1f}  {_median(s_pr):>11.1f}")
    for effect in EFFECTS:
        pairs = [p for rps in TRAFFIC_CLASSES for p in by_key[(effect.name, rps)]]
        t_e = [p[0].minutes for p in pairs if p[0].rolled_back]
        s_e = [p[1].minutes for p in pairs if p[1].rolled_back]
        label = f"roll back: {effect.label}"
        print(f"  {label:<40} {_median(t_e):>9.1f}  {_median(s_e):>11.1f}")
    print()

    def worst(effect_name: str, min_rps: float) -> float:
        return max(missed[(effect_name, r)][1] for r in TRAFFIC_CLASSES if r >= min_rps)

    checks = [
        ("false rollbacks over all good releases <= 1%", s_all / len(all_good), 0.01),
        ("missed, errors 1% -> 5% at >= 1 req/s <= 5% (worst class)", worst("err-1-5", 1), 0.05),
        ("missed, errors 1% -> 2% at >= 10 req/s <= 5% (worst class)", worst("err-1-2", 10), 0.05),
        (
            "missed, p99 +50% (shift) at >= 5 req/s <= 5% (worst class)",
            worst("p99-50-shift", 5),
            0.05,
        ),
        (
            "missed, p99 +50% (tail only) at >= 5 req/s <= 5% (worst class)",
            worst("p99-50-tail", 5),
            0.05,
        ),
    ]
    print("Targets of the statistical judge")
    for label, value, limit in checks:
        print(f"  {'MET   ' if value <= limit else 'MISSED'} {label}: {100 * value:.1f}%")
    ratio = _median(s_rb) / _median(t_rb)
    print(
        f"  {'MET   ' if ratio <= 0.5 else 'MISSED'} median time to roll back <= half the threshold "
        f"policy's: {_median(s_rb):.1f} vs {_median(t_rb):.1f} min (ratio {ratio:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
