"""Tests of the decision-quality benchmark: one small class, in-process.

They check the report's structure (tables, targets, counts that add up) and the perfect
test's arithmetic, never what the numbers should be: those move with the statistics and are
the benchmark's to report. What they do check is that docs/analysis.md reports them: one
class, run on the full corpus, must print exactly what the docs show for it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench.decision_quality import QUICK, report
from bench.evidence import (
    DETECTABLE_CATCH,
    DETECTABLE_NATS,
    REJECT_NATS,
    analysis_minutes,
    catch_probability,
    expected_evidence,
    kinds,
)
from bench.report import cell_evidence
from bench.simulator import ERR_1_2_LATE, ERR_GROWING, GOOD, P99_GROWING, Release, ReleaseWorld
from bench.worlds import CLASSES, build_corpus

CLASS = "diurnal"


def test_quick_class_report_adds_up() -> None:
    text, data = report(["--quick", "--class", CLASS, "--workers", "1"])
    klass = next(k for k in CLASSES if k.name == CLASS)
    assert klass.title in text
    assert "thr FR" in text and "cmp missed" in text and "Evidence a perfect test" in text
    assert "Targets (compare judge)" in text
    [only] = data["classes"]
    assert only["name"] == CLASS
    good, bad = QUICK
    assert len(only["cells"]) == sum(1 + len(row.effects) for row in klass.rows)
    for cell in only["cells"]:
        n = good if cell["effect"] == "good" else bad
        for policy in ("threshold", "compare"):
            tally = cell[policy]
            assert tally["n"] == n
            assert tally["promoted"] + tally["rolledBack"] + tally["held"] == n
        assert (cell["evidence"] is None) == (cell["effect"] == "good")
        accidental = cell["threshold"]["rightByAccident"]
        assert 0 <= accidental <= cell["threshold"]["rolledBack"]
        assert cell["effect"] != "good" or accidental == 0
    statuses = {t["status"] for t in only["targets"]}
    assert statuses <= {"MET", "MISSED", "not detectable", "out of reach", "n/a", "info"}
    assert len(only["targets"]) == 6


def test_markdown_tables() -> None:
    text, _ = report(["--quick", "--class", CLASS, "--workers", "1", "--markdown"])
    assert "| world | release | n | thr FR |" in text
    assert "|---|---|" in text
    assert "### Targets (compare judge)" in text


def test_a_perfect_test_rolls_back_sooner_the_more_evidence_comes_per_minute() -> None:
    """The first minute the expected evidence reaches the rejection level: present exactly
    when the whole analysis reaches it, and sooner at higher traffic for the same effect."""
    assert REJECT_NATS < DETECTABLE_NATS
    firsts: dict[str, list[int]] = {}
    for (_, row, effect), release in build_corpus(7, 0, 20, {"errors-2x"}):
        assert effect != "good"
        e = expected_evidence(release)
        assert (e.first_minute is not None) == (e.nats >= REJECT_NATS), e
        assert e.first_minute is None or 1 <= e.first_minute <= e.minutes
        if e.detectable:
            assert e.first_minute is not None
        firsts.setdefault(row, []).append(
            e.minutes + 1 if e.first_minute is None else e.first_minute
        )
    slowest = {row: max(minutes) for row, minutes in firsts.items()}
    fastest = {row: min(minutes) for row, minutes in firsts.items()}
    assert slowest["total 500 req/s"] <= fastest["total 50 req/s"], firsts
    assert slowest["total 50 req/s"] <= fastest["total 20 req/s"], firsts


def test_a_rerun_row_runs_the_same_releases_and_counts_once_in_the_class() -> None:
    """The declared-retries rows rerun their row's releases, the judge told the retry policy;
    the class's false-rollback total counts each release once and names the rerun beside it."""
    corpus = build_corpus(7, 3, 2, {"clustered"})
    by_row: dict[str, list[tuple[str, Release]]] = {}
    for (_, row, effect), release in corpus:
        by_row.setdefault(row, []).append((effect, release))
    klass = next(k for k in CLASSES if k.name == "clustered")
    reruns = [row for row in klass.rows if row.rerun_of is not None]
    assert reruns
    for rerun in reruns:
        mine, theirs = by_row[rerun.label], by_row[rerun.rerun_of or ""]
        assert [(e, r.seed) for e, r in mine] == [(e, r.seed) for e, r in theirs]
        assert all(r.world.declared_retries > 0 for _, r in mine)
    _, data = report(["--quick", "--class", "clustered", "--workers", "1"])
    [only] = data["classes"]
    own_good = sum(
        c["compare"]["n"]
        for c in only["cells"]
        if c["effect"] == "good" and all(c["world"] != r.label for r in reruns)
    )
    fr = next(t for t in only["targets"] if t["target"].startswith("false rollbacks"))
    assert f" of {own_good});" in fr["detail"]
    assert "the same releases rerun (" in fr["detail"]


def _simulated_catch(release: Release, rng: np.random.Generator, draws: int) -> float:
    """How often the perfect test itself passes the rejection level: each minute's requests of
    each kind drawn on both sides, the canary's share of each kind judged by its exact log
    likelihood ratio (the true effect against the canary's traffic share)."""
    k = kinds(release)
    llr = np.zeros(draws)
    for n_c, weight in analysis_minutes(release):
        n_p = n_c * (1 - weight) / weight
        c_rate, p_rate = n_c * k.regressed, n_p * k.null
        seen = c_rate + p_rate > 0
        share = np.clip(c_rate[seen] / (c_rate + p_rate)[seen], 1e-12, 1 - 1e-12)
        x_c = rng.poisson(c_rate[seen], (draws, int(seen.sum())))
        x_p = rng.poisson(p_rate[seen], (draws, int(seen.sum())))
        llr += (x_c * np.log(share / weight) + x_p * np.log((1 - share) / (1 - weight))).sum(1)
    return float(np.mean(llr >= REJECT_NATS))


def test_a_perfect_tests_catch_rate_is_what_simulating_the_perfect_test_gives() -> None:
    """The normal approximation behind "detectable", checked against the test it stands for,
    release by release, for errors at 20 req/s (caught about three times in four) and a tail
    test on bursty traffic (most caught, a few about half the time). Seeded: the tolerances
    are three standard errors of 4,000 draws, tighter than what a variance of 1.5E instead of
    2E would change (about 3 points at E = 10)."""
    rng = np.random.default_rng(5)
    rows = {
        ("errors-2x", "total 20 req/s"): "err-1-2",
        ("bursty", "total 2 req/s, gamma-Poisson"): "p99-25-shift",
    }
    corpus = build_corpus(11, 0, 15, {"errors-2x", "bursty"})
    picked = [r for (c, row, e), r in corpus if rows.get((c, row)) == e]
    assert len(picked) == 30
    approx = np.array([expected_evidence(r).catch for r in picked])
    simulated = np.array([_simulated_catch(r, rng, 4000) for r in picked])
    assert approx.min() < 0.7 and approx.max() > 0.95  # the whole range, not certain catches
    assert np.abs(approx - simulated).max() < 0.022, np.abs(approx - simulated).max()
    assert abs(approx.mean() - simulated.mean()) < 0.006


def test_a_cell_is_detectable_when_a_perfect_test_catches_98_percent_of_its_releases() -> None:
    """Not when its median release is easy: a cell where one release in ten offers next to no
    evidence is not detectable at the 2% target, however much the others offer."""
    [release] = [r for _, r in build_corpus(3, 0, 1, {"errors-2x"})][-1:]
    easy = expected_evidence(release)
    assert easy.catch > 0.999 and easy.detectable
    hard = replace(easy, nats=1.0, catch=catch_probability(1.0))
    assert not hard.detectable
    assert cell_evidence([easy] * 49 + [hard]).detectable
    mixed = cell_evidence([easy] * 9 + [hard])
    assert mixed.nats == easy.nats and not mixed.detectable
    assert 0.89 < mixed.catch < 0.91
    assert catch_probability(DETECTABLE_NATS) == pytest.approx(DETECTABLE_CATCH, abs=0.002)


def test_a_releases_evidence_follows_its_own_traffic() -> None:
    """In a bursty world, the same regression offers less evidence in a release whose minutes
    happened to be quiet: the evidence is the release's, and its expected canary requests are
    those its world serves (within the Poisson noise of the simulator's own minutes)."""
    corpus = [r for (_, row, e), r in build_corpus(13, 0, 30, {"bursty"}) if e == "p99-25-shift"]
    corpus = [r for r in corpus if r.world.total_rps == 2.0]
    requests = [expected_evidence(r).canary_requests for r in corpus]
    assert max(requests) > 2 * min(requests)
    for r, expected in zip(corpus, requests, strict=True):
        world = ReleaseWorld(r)
        served = sum(
            world.minute(t, weight).canary_requests
            for t, (_, weight) in enumerate(analysis_minutes(r), start=1)
        )
        assert abs(served - expected) < 5 * math.sqrt(expected) + 1, (served, expected)


def test_a_regression_that_begins_late_is_the_primarys_twin_until_then() -> None:
    """Before its onset the late canary serves exactly what its good twin serves (the same
    draws), and a perfect test collects nothing from those minutes; from the onset on it is
    worse, and its evidence is less than the same regression's from the first minute."""
    [(_, late)] = [
        (k, r) for k, r in build_corpus(17, 0, 1, {"changing"}) if k[2] == ERR_1_2_LATE.name
    ][:1]
    twin, early = (
        ReleaseWorld(replace(late, effect=GOOD)),
        replace(late, effect=replace(ERR_1_2_LATE, onset=1)),
    )
    world = ReleaseWorld(late)
    for t in range(1, ERR_1_2_LATE.onset):
        mine, theirs = world.minute(t, 0.2), twin.minute(t, 0.2)
        assert (mine.canary_requests, mine.canary_errors) == (
            theirs.canary_requests,
            theirs.canary_errors,
        )
        assert mine.canary_hist.tolist() == theirs.canary_hist.tolist()
        assert kinds(late, t).regressed.tolist() == kinds(late, t).null.tolist()
    after = range(ERR_1_2_LATE.onset, ERR_1_2_LATE.onset + 5)
    assert sum(world.minute(t, 0.5).canary_errors for t in after) > sum(
        twin.minute(t, 0.5).canary_errors for t in after
    )
    assert 0 < expected_evidence(late).nats < expected_evidence(early).nats


def test_a_growing_regression_gets_worse_every_minute_up_to_its_peak() -> None:
    for effect, ratio in (
        (ERR_GROWING, ERR_GROWING.error_ratio_at),
        (P99_GROWING, P99_GROWING.median_ratio_at),
    ):
        ratios = [ratio(t) for t in range(1, 80)]
        start = effect.error_ratio if effect.is_error else effect.median_ratio
        assert ratios[:3] == pytest.approx([start, start * effect.growth, start * effect.growth**2])
        assert all(b >= a for a, b in itertools.pairwise(ratios))
        assert max(ratios) == effect.peak
    assert ERR_GROWING.median_ratio_at(30) == 1.0 and P99_GROWING.error_ratio_at(30) == 1.0


def test_the_table_in_docs_is_the_benchmarks_output() -> None:
    """docs/analysis.md carries the full run's output; one class, run alone on the full corpus,
    prints the same section and the same targets (a class's releases depend on its own seeds
    only), so a change that moves the numbers without a new run of the docs fails here."""
    text, _ = report(["--class", CLASS, "--markdown", "--workers", "1"])
    docs = (Path(__file__).resolve().parents[1] / "docs" / "analysis.md").read_text()
    output = docs.split("### The benchmark's output\n", 1)[1]
    section = text.split("\n### ", 1)[1].split("\n### Targets", 1)[0]
    assert "\n#### " + section in output
    targets = text.split("### Targets (compare judge)\n", 1)[1].strip()
    assert targets in output
