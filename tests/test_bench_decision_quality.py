"""Smoke test of the decision-quality benchmark: one small class, quick corpus, in-process.

It checks the report's structure (tables, targets, counts that add up), never the
numbers themselves: those move with the statistics and are the benchmark's to report.
"""

from __future__ import annotations

from bench.decision_quality import QUICK, report
from bench.worlds import CLASSES

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
    assert statuses <= {"MET", "MISSED", "not detectable", "n/a", "info"}
    assert len(only["targets"]) == 6


def test_markdown_tables() -> None:
    text, _ = report(["--quick", "--class", CLASS, "--workers", "1", "--markdown"])
    assert "| world | release | n | thr FR |" in text
    assert "|---|---|" in text
    assert "### Targets (compare judge)" in text
