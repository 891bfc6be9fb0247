"""Decision-quality benchmark: Flagger's threshold policy vs the statistical judge, same releases.

Run it with::

    .venv/bin/python -m bench.decision_quality               # full corpus (~3 min, 2 workers)
    .venv/bin/python -m bench.decision_quality --quick       # a small corpus (under a minute)
    .venv/bin/python -m bench.decision_quality --class cold-start --markdown
    .venv/bin/python -m bench.decision_quality -o json > results.json

Ten classes of release (bench/worlds.py), each a world with rows (a traffic
level, a bucket layout, a schedule) of good releases and the relevant bad ones.
Per class it prints, for the threshold judge and the compare judge side by
side: false rollbacks (good releases rolled back), missed regressions (bad
releases promoted), held (undecided when the run ends), and median minutes to
roll back and to promote; then the evidence a perfect test could collect about
each regression within the schedule (bench/evidence.py); then the issue's
targets for the compare judge, class by class: MET, MISSED, or "not detectable".
The full corpus is 400 good releases per row and 150 bad ones per (row,
effect): 26,900 releases, 28,000 runs (a rerun row, ``Row.rerun_of``, runs another row's
releases again with the judge told more); ``--quick`` takes 30 and 12 (2,082 releases, 2,166
runs).
Progress goes to stderr.  Seeded and deterministic: the same command prints the
same numbers, whatever the number of workers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from bench.evidence import DETECTABLE_CATCH, DETECTABLE_NATS, expected_evidence
from bench.report import (
    Cell,
    Target,
    cell_evidence,
    class_targets,
    render_class,
    render_targets,
)
from bench.simulator import (
    GOOD,
    MAX_DURATION_MS,
    MAX_MINUTES,
    MIN_SUCCESS_RATE,
    THRESHOLD,
    Outcomes,
    Release,
    run_pair,
)
from bench.worlds import CLASSES, Key, WorldClass, build_corpus, class_names

QUICK = (30, 12)
FULL = (400, 150)


def _run_all(releases: Sequence[Release], workers: int, progress: bool) -> list[Outcomes]:
    results: list[Outcomes] = []
    started = time.monotonic()
    step = max(1, len(releases) // 20)

    def collect(it: Iterable[Outcomes]) -> None:
        for i, pair in enumerate(it, start=1):
            results.append(pair)
            if progress and (i % step == 0 or i == len(releases)):
                elapsed = time.monotonic() - started
                print(
                    f"  {i:,}/{len(releases):,} releases ({100 * i / len(releases):.0f}%), "
                    f"{elapsed:.0f}s",
                    file=sys.stderr,
                    flush=True,
                )

    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            collect(pool.map(run_pair, releases, chunksize=16))
    else:
        collect(run_pair(r) for r in releases)
    return results


def _cells(
    classes: Sequence[WorldClass],
    corpus: Sequence[tuple[Key, Release]],
    results: Sequence[Outcomes],
) -> dict[str, list[Cell]]:
    """Tally the results per (class, row, effect), in the classes' own order."""
    cells: dict[Key, Cell] = {}
    out: dict[str, list[Cell]] = {}
    for klass in classes:
        out[klass.name] = []
        for row in klass.rows:
            for effect in (GOOD, *row.effects):
                cell = Cell(row.label, effect, rerun=row.rerun_of is not None)
                cells[(klass.name, row.label, effect.name)] = cell
                out[klass.name].append(cell)
    evidence: dict[Key, list[Any]] = {}
    for (key, release), outcomes in zip(corpus, results, strict=True):
        cells[key].add(outcomes)
        if release.effect != GOOD:
            evidence.setdefault(key, []).append(expected_evidence(release))
    for key, evs in evidence.items():
        cells[key].evidence = cell_evidence(evs)
    return out


def _header(
    args: argparse.Namespace, n: int, reruns: int, elapsed: float, markdown: bool
) -> list[str]:
    pad = "- " if markdown else "  "
    runs = (
        f"{n - reruns:,} releases"
        if not reruns
        else (
            f"{n - reruns:,} releases, {n:,} runs ({reruns:,} of them rerun with the judge told more)"
        )
    )
    return [
        "Decision-quality benchmark: Flagger's threshold policy vs the compare judge "
        "(same releases)",
        "",
        f"{pad}seed {args.seed}; {runs}: {args.good} good releases per row, "
        f"{args.bad} bad per cell; {elapsed:.0f}s on {args.workers} worker(s).",
        f"{pad}Threshold policy (Flagger): interval 1m, threshold {THRESHOLD}, success rate >= "
        f"{MIN_SUCCESS_RATE:g}%, p99 <= {MAX_DURATION_MS:g} ms on the last minute; no canary "
        "request is NoData, a failed check.",
        f"{pad}Compare policy: compare on both builtin metrics at their defaults, no threshold "
        "bounds, the controller's handling of FAIL, conclusive FAIL and INCONCLUSIVE.",
        f"{pad}Both run the same schedule on the same minute-by-minute world; a run undecided "
        f"after {MAX_MINUTES} minutes is held. Times are minutes from the first minute of "
        "canary traffic.",
        f"{pad}FR = false rollbacks (good releases rolled back), missed = bad releases "
        "promoted, held = neither when the run ends (stalled: the judge paused the canary).",
        f"{pad}thr by accident = bad releases the threshold policy rolled back although it rolls "
        "back their good twin too (the same release and world without the regression): right "
        "by accident; the compare judge's missed regressions are held against the threshold "
        "policy's missed plus these.",
        f"{pad}Unless a class says otherwise: base error rate log-uniform 0.1-2%, latency "
        "log-normal (median 20-100 ms, shape 0.3-0.5) on the demo app's buckets, drift 5%/min "
        "(errors) and 2.5%/min (latency), 5% chance per minute of x3 traffic and of a shared x4 "
        "error incident; schedule stepWeight 10, maxWeight 50.",
        f"{pad}Per class: one table of decisions, then the evidence a perfect test could collect "
        "about each regression; the targets of the compare judge come last.",
        "",
    ]


def _json(
    args: argparse.Namespace,
    classes: Sequence[WorldClass],
    cells: dict[str, list[Cell]],
    targets: dict[str, list[Target]],
    elapsed: float,
) -> dict[str, Any]:
    def cell_json(c: Cell) -> dict[str, Any]:
        e = c.evidence
        return {
            "world": c.row,
            "rerun": c.rerun,
            "effect": c.effect.name,
            "release": c.effect.label,
            "threshold": c.threshold.to_json() | {"rightByAccident": c.accidental},
            "compare": c.compare.to_json(),
            "evidence": None
            if e is None
            else {
                "minutes": e.minutes,
                "canaryRequests": round(e.canary_requests, 1),
                "eventsIfGood": round(e.null_events, 2),
                "extraEvents": round(e.extra_events, 2),
                "events": e.events,
                "nats": round(e.nats, 2),
                "perfectTestCatches": round(e.catch, 4),
                "detectable": e.detectable,
                "perfectTestRollsBackAtMinute": e.first_minute,
            },
        }

    return {
        "seed": args.seed,
        "goodPerRow": args.good,
        "badPerCell": args.bad,
        "maxMinutes": MAX_MINUTES,
        "detectableCatch": DETECTABLE_CATCH,  # a cell: the share of its releases caught
        "oneReleaseDetectableNats": round(DETECTABLE_NATS, 2),
        "elapsedSeconds": round(elapsed, 1),
        "classes": [
            {
                "name": k.name,
                "title": k.title,
                "model": k.model,
                "cells": [cell_json(c) for c in cells[k.name]],
                "targets": [
                    {"target": t.label, "status": t.status, "detail": t.detail}
                    for t in targets[k.name]
                ],
            }
            for k in classes
        ],
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.decision_quality", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument("--good", type=int, help=f"good releases per row ({FULL[0]})")
    parser.add_argument("--bad", type=int, help=f"bad releases per row and effect ({FULL[1]})")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK[0]} good / {QUICK[1]} bad per cell"
    )
    parser.add_argument(
        "--class",
        dest="classes",
        action="append",
        choices=class_names(),
        metavar="NAME",
        help=f"run this class only (repeatable): {', '.join(class_names())}",
    )
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text")
    return parser


def report(argv: Sequence[str] | None = None) -> tuple[str, dict[str, Any]]:
    """Run the benchmark; the printed report and its JSON form."""
    args = _parser().parse_args(argv)
    sizes = QUICK if args.quick else FULL
    args.good = sizes[0] if args.good is None else args.good
    args.bad = sizes[1] if args.bad is None else args.bad
    names = set(args.classes) if args.classes else None
    classes = [k for k in CLASSES if names is None or k.name in names]
    started = time.monotonic()
    corpus = build_corpus(args.seed, args.good, args.bad, names)
    results = _run_all([r for _, r in corpus], args.workers, progress=len(corpus) > 2000)
    elapsed = time.monotonic() - started
    cells = _cells(classes, corpus, results)
    targets = {k.name: class_targets(cells[k.name]) for k in classes}
    md = args.markdown
    rerun_rows = {(k.name, row.label) for k in classes for row in k.rows if row.rerun_of}
    reruns = sum((name, row) in rerun_rows for (name, row, _), _ in corpus)
    lines = _header(args, len(corpus), reruns, elapsed, md)
    for klass in classes:
        lines += render_class(klass, cells[klass.name], md)
    lines += render_targets(classes, targets, md)
    data = _json(args, classes, cells, targets, elapsed)
    text = json.dumps(data, indent=2) if args.output == "json" else "\n".join(lines)
    return text, data


def main(argv: Sequence[str] | None = None) -> int:
    text, _ = report(argv)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
