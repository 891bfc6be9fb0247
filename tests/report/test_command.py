"""``canary report`` against the sandbox API server: a Canary with a recorded status and Events."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.cli.conftest import Cluster, Invoke
from tests.report._data import EVENTS, FIRST, SECOND, canary

SVG = "{http://www.w3.org/2000/svg}"


def kube(cluster: Cluster, *args: str) -> list[str]:
    return [*args, "--kubeconfig", cluster.kubeconfig]


@pytest.fixture
def recorded(cluster: Cluster) -> Cluster:
    obj = canary()
    cluster.canary("podinfo", spec=obj["spec"], status=obj["status"])
    for at, kind, message in EVENTS:
        cluster.event("podinfo", message, type=kind, at=at)
    return cluster


def test_json_is_the_reports_data(cli: Invoke, recorded: Cluster) -> None:
    result = cli(*kube(recorded, "report", "podinfo", "-n", "test", "-o", "json"))
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["run"]["revision"] == SECOND and data["phase"] == "Progressing"
    errors = next(m for m in data["metrics"] if m["name"] == "error-rate")
    assert errors["comparison"]["primarySamples"] == 16000
    assert [m["label"] for m in data["markers"]] == [
        "new revision",
        "analysis started",
        "gate: promotion",
    ]


def test_svg_of_the_failed_run(cli: Invoke, recorded: Cluster) -> None:
    result = cli(*kube(recorded, "report", "podinfo", "-n", "test", "--run", "1", "-o", "svg"))
    assert result.exit_code == 0, result.stderr
    root = ET.fromstring(result.stdout)
    text = " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))
    assert f"run 1 of 2: {FIRST} · Failed" in text
    assert "Git revert: Reverted" in text and "commit c0ffee1234567890" in text
    kinds = [e.get("data-verdict") for e in root.iter() if e.get("data-verdict")]
    assert kinds.count("fail") == 2
    labels = [
        "".join(e.itertext()) for e in root.iter() if "decision-label" in (e.get("class") or "")
    ]
    # (Events of the same second come back in the API's order)
    assert labels[:2] == ["new revision", "analysis started"]
    assert sorted(labels[2:4]) == ["failed", "rollback"] and labels[4] == "Git reverted"


def test_html_to_a_file(cli: Invoke, recorded: Cluster, tmp_path: Path) -> None:
    target = tmp_path / "podinfo.html"
    result = cli(
        *kube(
            recorded, "report", "podinfo", "-n", "test", "--run", "1", "--output-file", str(target)
        )
    )
    assert result.exit_code == 0, result.stderr
    assert f"wrote {target} (html)" in result.stderr
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<script" not in page
    assert "✗ Fail 92.1%" in page  # the verdict table
    assert "Rolling back podinfo.test failed checks threshold reached 2" in page
    assert "c0ffee1234567890" in page


def test_missing_canary_exits_1(cli: Invoke, cluster: Cluster) -> None:
    cluster.namespace("test")
    result = cli(*kube(cluster, "report", "nope", "-n", "test"))
    assert result.exit_code == 1
    assert "canary 'nope' not found in namespace 'test'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_run_not_kept_is_bad_usage(cli: Invoke, recorded: Cluster) -> None:
    result = cli(*kube(recorded, "report", "podinfo", "-n", "test", "--run", "5"))
    assert result.exit_code == 2
    assert "--run run 5: the history keeps 2 run(s)" in result.stderr


def test_unreachable_api_server_exits_1(cli: Invoke, tmp_path: Path) -> None:
    from kubesandbox.kubeconfig import write_kubeconfig

    path = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")
    result = cli("report", "podinfo", "-n", "test", "--kubeconfig", str(path))
    assert result.exit_code == 1
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_png_without_rsvg_convert_says_what_to_install(
    cli: Invoke, recorded: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    result = cli(*kube(recorded, "report", "podinfo", "-n", "test", "-f", str(tmp_path / "r.png")))
    assert result.exit_code == 1
    assert "apt-get install librsvg2-bin" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(shutil.which("rsvg-convert") is None, reason="rsvg-convert not installed")
def test_png(cli: Invoke, recorded: Cluster, tmp_path: Path) -> None:
    target = tmp_path / "r.png"
    result = cli(*kube(recorded, "report", "podinfo", "-n", "test", "-f", str(target)))
    assert result.exit_code == 0, result.stderr
    assert target.read_bytes().startswith(b"\x89PNG")
