"""``canary simulate --report``: the decision report of the demo's two releases.

The pictures are written under pytest's tmp_path (the path is printed: ``pytest -s``) for
people to open; nothing generated is kept in the repository.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from canary.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "simulate"
SVG = "{http://www.w3.org/2000/svg}"
runner = CliRunner()


def simulate(scenario: str, report: Path) -> None:
    result = runner.invoke(
        app,
        [
            "simulate",
            str(EXAMPLES / "podinfo.yaml"),
            "-s",
            str(EXAMPLES / scenario),
            "-o",
            "json",
            "--report",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"wrote the decision report to {report}" in result.stderr
    print(f"\ndecision report of {scenario}: {report}")


def svg_of(path: Path) -> ET.Element:
    return ET.fromstring(path.read_text(encoding="utf-8"))


def texts(root: ET.Element, cls: str | None = None) -> list[str]:
    found = [e for e in root.iter() if cls is None or cls in (e.get("class") or "").split()]
    return ["".join(t.itertext()) for e in found for t in e.iter(f"{SVG}text")]


def verdicts(root: ET.Element, metric: str) -> list[str]:
    (group,) = [e for e in root.iter() if e.get("data-metric") == metric and e.tag == f"{SVG}g"]
    return [str(e.get("data-verdict")) for e in group.iter() if e.get("data-verdict")]


def test_the_good_release_shows_its_promotion(tmp_path: Path) -> None:
    svg, html = tmp_path / "good-release.svg", tmp_path / "good-release.html"
    simulate("good-release.yaml", svg)
    simulate("good-release.yaml", html)
    root = svg_of(svg)
    assert "test/podinfo · Succeeded · run 1 of 1: main@sha1:2222222 · Succeeded" in texts(root)
    labels = texts(root, "decision-label")
    assert labels[-3:] == ["promoting", "finalising", "promoted"]
    assert set(verdicts(root, "request-success-rate")) == {"pass"}
    points = [e for e in root.iter() if "weight-point" in (e.get("class") or "")]
    weights = ["".join(e.itertext()).split("canary ")[1].split("%")[0] for e in points]
    assert weights == ["10", "20", "30", "40", "50"]
    page = html.read_text(encoding="utf-8")
    assert "Promotion completed! Scaling down podinfo.test" in page
    assert "● Pass 99.8%" in page


def test_the_bad_release_shows_the_rollback_and_the_failed_metric(tmp_path: Path) -> None:
    svg, html = tmp_path / "bad-release.svg", tmp_path / "bad-release.html"
    simulate("bad-release.yaml", svg)
    simulate("bad-release.yaml", html)
    root = svg_of(svg)
    heading = "test/podinfo · Failed · run 1 of 1: main@sha1:3333333 · Failed"
    assert heading in texts(root)
    labels = texts(root, "decision-label")
    assert {"rollback", "failed", "Git reverted"} <= set(labels)
    assert verdicts(root, "request-success-rate") == ["pass", "fail", "fail"]
    assert verdicts(root, "request-duration") == ["pass", "pass", "pass"]
    hover = " ".join("".join(e.itertext()) for e in root.iter() if e.get("data-verdict") == "fail")
    assert "Fail: 92.1%" in hover
    caption = " ".join(texts(root, "caption-revert"))
    assert "bad main@sha1:3333333 → good main@sha1:2222222" in caption
    assert "commit revert-of-main@sha1:3333333" in caption
    page = html.read_text(encoding="utf-8")
    assert "✗ Fail 92.1%" in page and "2/2" in page  # the second failed check of two
    assert "Rolling back podinfo.test failed checks threshold reached 2" in page


@pytest.mark.parametrize("suffix", ["json", "png"])
def test_the_suffix_picks_the_format(tmp_path: Path, suffix: str) -> None:
    import shutil

    if suffix == "png" and shutil.which("rsvg-convert") is None:
        pytest.skip("rsvg-convert not installed")
    target = tmp_path / f"bad.{suffix}"
    simulate("bad-release.yaml", target)
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG" if suffix == "png" else b"{")
