"""Smoke test of the decision-quality benchmark: one small class, quick corpus, in-process.

It checks the report's structure (tables, targets, counts that add up), never the
numbers themselves: those move with the statistics and are the benchmark's to report.
"""

from __future__ import annotations

from bench.decision_quality import QUICK, report
from bench.evidence import DETECTABLE_NATS, REJECT_NATS, expected_evidence
from bench.simulator import Release
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
    for row in reruns:
        mine, theirs = by_row[row.label], by_row[row.rerun_of or ""]
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
